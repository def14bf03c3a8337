/* pgsql.c: the PostgreSQL backend of sql.h and store.h's connection calls,
 * on libpq. One struct store is one session, owned by one thread (each HTTP
 * worker has its own). Statements are written in the neutral dialect: ?N
 * becomes $N once, and each text is prepared once per session (lazily, at
 * its first execution, when the kinds of its parameters are known). Integers
 * and text travel as text, blobs in binary. A lost session (server stopped,
 * restarted, network) is reopened transparently where nothing can have
 * happened on it yet: a session the server ended while it sat idle is
 * noticed before the next transaction or statement and reopened at once,
 * and a BEGIN or a statement outside a transaction that the server refused
 * because it was shutting down runs again on a new session. Anything else
 * (the server gone mid-transaction, or still down) fails the call with
 * STORE_UNAVAILABLE (the caller answers 503) and is retried on a later call,
 * at most every RECONNECT_PAUSE_MS. Migrations run under an advisory lock
 * so several nodes may start at once. store_open (store.c) reaches it via
 * store_pgsql_open. */
#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/backend.h"
#include "store/migrations.h"
#include "store/sql.h"
#include "store/store.h"
#include "util/log.h"
#include "util/metrics.h"

#define STMT_SLOTS 512
#define MAX_PARAMS 100
#define MAX_PENDING 8
/* How long a broken session waits before the next reconnect attempt: a
 * stopped server refuses at once, so without a pause every request would
 * try again. */
#define RECONNECT_PAUSE_MS 250
/* pg_advisory_lock key for migrations: "stwd" in ASCII. */
#define MIGRATION_LOCK_KEY 0x73747764

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); fixed forever. */
#define OID_BYTEA 17
#define OID_INT8 20

struct pg;

struct pg_stmt {
    struct sql_stmt base;
    struct pg *pg;
    char *text;          /* the statement with $N parameters */
    int nparams;
    unsigned session;    /* the session it was prepared on; 0 = not yet */
    char name[16];
    PGresult *res;       /* the current execution's rows */
    int row, nrows;
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
    unsigned types[MAX_PARAMS];    /* what this execution binds */
    unsigned declared[MAX_PARAMS]; /* what the session's statement was prepared with */
    char ints[MAX_PARAMS][24];     /* integers as text */
};

struct stmt_slot {
    const char *sql;
    struct pg_stmt *st;
};

struct pg {
    struct store base;
    PGconn *conn;
    unsigned session;   /* bumped by every (re)connect: prepared statements belong to one */
    unsigned next_name;
    int tx;             /* a transaction is open, as the caller sees it */
    int tx_lost;        /* the session died inside it: fail until the caller ends it */
    /* Commands without effect on data (the caller's BEGIN, SAVEPOINT,
     * RELEASE) not sent yet: they go out with the next statement, in one
     * round trip, or are dropped when nothing ran after them. */
    const char *pending[MAX_PENDING];
    int npending;
    int wrote;          /* the open transaction ran something besides plain SELECTs */
    int async_pending;  /* a read-only transaction's COMMIT went out unanswered: read it first */
    int down;           /* reconnecting failed since the last working session */
    double down_since;  /* when the session was found lost (monotonic seconds) */
    int last_fk;
    int64_t changes;
    double retry_at;    /* no reconnect attempt before this (monotonic seconds) */
    struct stmt_slot slots[STMT_SLOTS];
};

static const struct store_backend pg_backend;

static struct pg *P(struct store *s)
{
    return (struct pg *)s;
}

static struct pg_stmt *S(struct sql_stmt *st)
{
    return (struct pg_stmt *)st;
}

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- errors and the session ------------------------------------------------ */

static int sqlstate_is(const char *state, const char *prefix)
{
    return state && strncmp(state, prefix, strlen(prefix)) == 0;
}

/* The server or the way to it is gone (or going): the caller answers 503
 * and the session is reopened later. */
static int unavailable_state(const char *state)
{
    return sqlstate_is(state, "08") ||     /* connection exception */
           sqlstate_is(state, "57P") ||    /* admin/crash shutdown, cannot connect now */
           sqlstate_is(state, "53") ||     /* insufficient resources */
           sqlstate_is(state, "40001") ||  /* serialization failure: retry */
           sqlstate_is(state, "40P01") ||  /* deadlock detected: retry */
           sqlstate_is(state, "55P03") ||  /* lock not available */
           sqlstate_is(state, "57014");    /* query canceled (statement timeout) */
}

static void note_broken(struct pg *p)
{
    if (p->tx)
        p->tx_lost = 1;
    p->tx = 0;
}

/* Maps a failed result (res may be NULL) to a store_rc and logs it. Only the
 * operation, the SQLSTATE and the server's message are logged, never values. */
static int fail(struct pg *p, const PGresult *res, const char *op)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(p->conn);
    char q[256];
    log_quote(q, sizeof q, msg ? msg : "unknown error");
    p->last_fk = 0;
    if (PQstatus(p->conn) == CONNECTION_BAD || unavailable_state(state)) {
        if (PQstatus(p->conn) == CONNECTION_BAD)
            note_broken(p);
        log_warn("store unavailable", "op=%s state=%s err=%s", op, state ? state : "-", q);
        return STORE_UNAVAILABLE;
    }
    if (sqlstate_is(state, "23")) {
        p->last_fk = strcmp(state, "23503") == 0;
        log_debug("store conflict", "op=%s state=%s err=%s", op, state, q);
        return STORE_CONFLICT;
    }
    log_error("store error", "op=%s state=%s err=%s", op, state ? state : "-", q);
    return STORE_ERR;
}

static int pg_last_was_fk(struct store *s)
{
    return P(s)->last_fk;
}

/* Session settings every statement relies on: hex bytea text (decoded by
 * pg_col_blobdup), UTF-8, standard strings (ESCAPE '\' means a backslash). */
static const char session_setup[] =
    "SET bytea_output = 'hex'; SET client_encoding = 'UTF8';"
    " SET standard_conforming_strings = on; SET client_min_messages = warning";

static int simple(struct pg *p, const char *sql, const char *op);

/* The server's notices (and a termination notice read while idle) go to the
 * log instead of libpq's default, stderr. */
static void log_notice(void *arg, const char *message)
{
    (void)arg;
    char q[256];
    log_debug("store notice", "msg=%s", log_quote(q, sizeof q, message));
}

static int setup_session(struct pg *p, const char *op)
{
    return simple(p, session_setup, op);
}

/* Whether the server ended this session while it sat idle (shutdown,
 * restart, pg_terminate_backend, a dropped network): it said so, or closed
 * the socket, and libpq has not read that yet. One non-blocking read. */
static int session_ended_idle(struct pg *p)
{
    if (PQstatus(p->conn) != CONNECTION_OK)
        return 1;
    if (PQtransactionStatus(p->conn) != PQTRANS_IDLE)
        return 0; /* a transaction of ours is open: its own statements find out */
    /* An idle session has nothing to read (no LISTEN here) unless the server
     * is ending it: a termination notice, then end of file. */
    struct pollfd fd = {.fd = PQsocket(p->conn), .events = POLLIN};
    for (int i = 0; i < 4 && poll(&fd, 1, 0) > 0; i++) {
        if (!PQconsumeInput(p->conn) || PQstatus(p->conn) != CONNECTION_OK)
            return 1;
        (void)PQisBusy(p->conn); /* parses what came: a notice goes to log_notice */
        if (PQstatus(p->conn) != CONNECTION_OK)
            return 1;
    }
    return 0;
}

static int reconnect(struct pg *p, const char *op)
{
    double now = now_mono();
    if (!p->down && p->down_since == 0)
        p->down_since = now;
    if (p->down && now < p->retry_at)
        return STORE_UNAVAILABLE;
    PQreset(p->conn);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        char q[256];
        /* Every worker retries every RECONNECT_PAUSE_MS: warn once per outage. */
        log_msg(p->down ? LOG_DEBUG : LOG_WARN, "store reconnect failed", "op=%s err=%s", op,
                log_quote(q, sizeof q, PQerrorMessage(p->conn)));
        p->down = 1;
        p->retry_at = now_mono() + RECONNECT_PAUSE_MS / 1000.0;
        return STORE_UNAVAILABLE;
    }
    p->session++;
    p->tx = 0;
    p->async_pending = 0;
    if (PQpipelineStatus(p->conn) != PQ_PIPELINE_OFF)
        (void)PQexitPipelineMode(p->conn); /* a fresh session has nothing pending */
    int rc = setup_session(p, op);
    if (rc == STORE_OK) {
        log_info("store reconnected", "op=%s after_ms=%.0f", op,
                 (now_mono() - p->down_since) * 1000.0);
        p->down = 0;
        p->down_since = 0;
    }
    return rc;
}

/* Reads the answer to a COMMIT that pg_commit sent without waiting (a
 * transaction that only read: nothing depends on it), before the session
 * is used again. A failure there is only logged; a lost session shows up
 * in PQstatus for the caller. */
static void drain_async(struct pg *p)
{
    if (!p->async_pending)
        return;
    p->async_pending = 0;
    PGresult *res;
    while ((res = PQgetResult(p->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            char q[256];
            log_warn("store read-only commit failed", "err=%s",
                     log_quote(q, sizeof q, PQresultErrorMessage(res)));
        }
        PQclear(res);
    }
}

/* A usable session, reopening a lost one (after a failed attempt, at most
 * every RECONNECT_PAUSE_MS). check_idle looks for a session the server
 * ended while it was idle, before a statement that starts something; inside
 * a transaction whose session died, nothing runs until the caller ends that
 * transaction: its earlier writes are gone. */
static int ensure_session(struct pg *p, const char *op, int check_idle)
{
    drain_async(p);
    if (p->tx_lost) {
        log_debug("store unavailable", "op=%s err=\"session lost inside a transaction\"", op);
        return STORE_UNAVAILABLE;
    }
    if (PQstatus(p->conn) == CONNECTION_OK && !(check_idle && !p->tx && session_ended_idle(p)))
        return STORE_OK;
    return reconnect(p, op);
}

/* Whether a failed statement may simply run again on a new session: the
 * session is gone, no transaction of the caller's was open on it, and the
 * server either never started the statement or said it ended the session
 * (shutdown, restart: SQLSTATE 57P01-57P03) before committing it. */
static int may_retry(struct pg *p, const PGresult *res, int was_tx, int starts_tx)
{
    if (was_tx || PQstatus(p->conn) == CONNECTION_OK)
        return 0;
    if (starts_tx)
        return 1;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return sqlstate_is(state, "57P01") || sqlstate_is(state, "57P02") ||
           sqlstate_is(state, "57P03");
}

/* Runs a command without parameters or rows (BEGIN, COMMIT, …). */
static int simple(struct pg *p, const char *sql, const char *op)
{
    drain_async(p);
    double t0 = now_mono();
    PGresult *res = PQexec(p->conn, sql);
    metrics_db(now_mono() - t0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK
                 ? STORE_OK
                 : fail(p, res, op);
    PQclear(res);
    return rc;
}

/* ---- statements ------------------------------------------------------------ */

/* "?N" (or a bare "?", numbered on from the last) becomes "$N"; quoted
 * literals and identifiers are copied untouched. NULL when out of memory. */
static char *translate(const char *sql, int *nparams)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 2 + 1); /* "?" → "$NN" at most doubles a bare "?" */
    if (!out)
        return NULL;
    size_t j = 0;
    int last = 0, max = 0;
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = sql[i];
        if (quote) {
            out[j++] = c;
            if (c == quote)
                quote = 0;
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            out[j++] = c;
            continue;
        }
        if (c != '?') {
            out[j++] = c;
            continue;
        }
        int num = 0;
        while (i + 1 < n && sql[i + 1] >= '0' && sql[i + 1] <= '9')
            num = num * 10 + (sql[++i] - '0');
        if (num == 0)
            num = last + 1;
        last = num;
        if (num > max)
            max = num;
        j += (size_t)sprintf(out + j, "$%d", num);
    }
    out[j] = '\0';
    *nparams = max;
    return out;
}

static size_t slot_of(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 40) % STMT_SLOTS;
}

static struct pg_stmt *stmt_new(struct pg *p, const char *sql, const char *op, int *rc)
{
    struct pg_stmt *st = calloc(1, sizeof *st);
    if (!st) {
        *rc = sql_out_of_memory(op);
        return NULL;
    }
    st->text = translate(sql, &st->nparams);
    if (!st->text) {
        free(st);
        *rc = sql_out_of_memory(op);
        return NULL;
    }
    if (st->nparams > MAX_PARAMS) {
        log_error("store error", "op=%s err=\"more than %d parameters\"", op, MAX_PARAMS);
        free(st->text);
        free(st);
        *rc = STORE_ERR;
        return NULL;
    }
    st->base.be = &pg_backend;
    st->pg = p;
    snprintf(st->name, sizeof st->name, "s%u", ++p->next_name);
    return st;
}

static struct sql_stmt *pg_prepare(struct store *s, const char *sql, const char *op, int *rc)
{
    struct pg *p = P(s);
    int erc = ensure_session(p, op, 0);
    if (erc != STORE_OK) {
        *rc = erc;
        return NULL;
    }
    size_t i = slot_of(sql);
    for (size_t probes = 0; probes < STMT_SLOTS; probes++, i = (i + 1) % STMT_SLOTS) {
        struct stmt_slot *slot = &p->slots[i];
        if (slot->sql == sql)
            return &slot->st->base;
        if (slot->sql)
            continue;
        struct pg_stmt *st = stmt_new(p, sql, op, rc);
        if (!st)
            return NULL;
        slot->sql = sql;
        slot->st = st;
        return &st->base;
    }
    log_error("store error", "op=%s err=\"statement cache full\"", op);
    *rc = STORE_ERR;
    return NULL;
}

/* Bind failures: a parameter number out of range. */
static int param_ok(struct pg_stmt *st, int i, int *code)
{
    if (*code != 0)
        return 0;
    if (i < 1 || i > st->nparams) {
        *code = STORE_ERR;
        return 0;
    }
    return 1;
}

static void pg_bind_null(struct sql_stmt *sst, int i, int *code)
{
    struct pg_stmt *st = S(sst);
    if (!param_ok(st, i, code))
        return;
    st->values[i - 1] = NULL;
    st->lengths[i - 1] = 0;
    st->formats[i - 1] = 0;
    st->types[i - 1] = 0;
}

static void pg_bind_text(struct sql_stmt *sst, int i, const char *v, int *code)
{
    struct pg_stmt *st = S(sst);
    if (!param_ok(st, i, code))
        return;
    st->values[i - 1] = v;
    st->lengths[i - 1] = 0;
    st->formats[i - 1] = 0;
    st->types[i - 1] = 0; /* the server infers it from where it is used */
}

static void pg_bind_int(struct sql_stmt *sst, int i, int64_t v, int *code)
{
    struct pg_stmt *st = S(sst);
    if (!param_ok(st, i, code))
        return;
    snprintf(st->ints[i - 1], sizeof st->ints[i - 1], "%lld", (long long)v);
    st->values[i - 1] = st->ints[i - 1];
    st->lengths[i - 1] = 0;
    st->formats[i - 1] = 0;
    /* Declared bigint: left to inference, "NULLIF(?4, 0)" would be a
     * 32-bit integer and refuse a time after 2038. */
    st->types[i - 1] = OID_INT8;
}

static void pg_bind_blob(struct sql_stmt *sst, int i, const uint8_t *v, size_t len, int *code)
{
    struct pg_stmt *st = S(sst);
    if (!param_ok(st, i, code))
        return;
    if (len > (size_t)0x7fffffff) {
        *code = STORE_ERR;
        return;
    }
    /* An empty non-NULL blob needs a non-NULL pointer to stay non-NULL. */
    st->values[i - 1] = v ? (v && len == 0 ? (const char *)"" : (const char *)v) : NULL;
    st->lengths[i - 1] = (int)len;
    st->formats[i - 1] = 1;
    st->types[i - 1] = OID_BYTEA;
}

static void pg_done(struct sql_stmt *sst)
{
    struct pg_stmt *st = S(sst);
    PQclear(st->res);
    st->res = NULL;
    st->row = st->nrows = 0;
    for (int i = 0; i < st->nparams; i++) {
        st->values[i] = NULL;
        st->formats[i] = 0;
        st->types[i] = 0;
    }
}

/* Prepares the statement on this session when it is not yet, or when this
 * execution binds a type the prepared one left to inference (a NULL first,
 * a bigint now): declared types only ever go from unknown to known. */
static int ensure_prepared(struct pg *p, struct pg_stmt *st, const char *op)
{
    int redo = st->session != p->session;
    for (int i = 0; !redo && i < st->nparams; i++)
        redo = st->types[i] && st->declared[i] != st->types[i];
    if (!redo)
        return STORE_OK;
    if (st->session == p->session) {
        char dealloc[40];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", st->name);
        int rc = simple(p, dealloc, op);
        if (rc != STORE_OK)
            return rc;
    } else {
        memset(st->declared, 0, sizeof st->declared);
    }
    for (int i = 0; i < st->nparams; i++)
        if (st->types[i])
            st->declared[i] = st->types[i];
    PGresult *res = PQprepare(p->conn, st->name, st->text, st->nparams, st->declared);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? STORE_OK : fail(p, res, op);
    PQclear(res);
    if (rc == STORE_OK)
        st->session = p->session;
    return rc;
}

/* Reads one query's result in pipeline mode (and the NULL that ends it). */
static PGresult *pipeline_result(struct pg *p)
{
    PGresult *res = PQgetResult(p->conn);
    if (res && PQgetResult(p->conn) != NULL) {
        PQclear(res);
        return NULL; /* out of step */
    }
    return res;
}

/* Sends the pending commands and st in one round trip (libpq's pipeline
 * mode) and returns st's result, or the first pending command's failure
 * (st then never ran), or NULL when the session broke on the way (the
 * failure is in PQstatus then). */
static PGresult *exec_pipelined(struct pg *p, struct pg_stmt *st, const char *const *pending,
                                int npending)
{
    if (!PQenterPipelineMode(p->conn))
        return NULL;
    int sent = 1;
    for (int i = 0; sent && i < npending; i++)
        sent = PQsendQueryParams(p->conn, pending[i], 0, NULL, NULL, NULL, NULL, 0);
    sent = sent &&
           PQsendQueryPrepared(p->conn, st->name, st->nparams, st->values, st->lengths,
                               st->formats, 0) &&
           PQpipelineSync(p->conn);
    PGresult *res = NULL, *failed = NULL;
    int in_step = sent;
    for (int i = 0; in_step && i < npending; i++) {
        PGresult *r = pipeline_result(p);
        in_step = r != NULL;
        if (r && !failed && PQresultStatus(r) != PGRES_COMMAND_OK)
            failed = r;
        else
            PQclear(r);
    }
    if (in_step) {
        res = pipeline_result(p);
        PGresult *sync = res ? PQgetResult(p->conn) : NULL;
        in_step = res && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
        PQclear(sync);
    }
    if (failed || !in_step) {
        PQclear(res);
        res = failed;
    }
    if (!PQexitPipelineMode(p->conn) && PQstatus(p->conn) == CONNECTION_OK) {
        /* results out of step with what was sent: start over on a new session */
        log_error("store error", "op=pipeline err=\"unexpected results; reconnecting\"");
        PQclear(res);
        res = NULL;
        PQreset(p->conn);
        p->session++;
        (void)setup_session(p, "pipeline");
        note_broken(p);
    }
    return res;
}

static int is_begin(const char *sql)
{
    return strncmp(sql, "BEGIN", 5) == 0;
}

/* Executes with the bound values; on success st->res holds the rows. The
 * first statement of a transaction carries its deferred BEGIN. Outside a
 * transaction (or with that BEGIN), a statement the server refused because
 * it was ending the session runs once more on a new one (may_retry). */
static int execute(struct pg *p, struct pg_stmt *st, const char *op, int code)
{
    if (code != 0) {
        log_error("store error", "op=%s err=\"bad parameter\"", op);
        return STORE_ERR;
    }
    /* A pending BEGIN: the caller's transaction starts with this statement,
     * so nothing has happened on the session yet. */
    const char *pending[MAX_PENDING];
    int npending = p->npending;
    memcpy(pending, p->pending, sizeof pending);
    int begin = npending > 0 && is_begin(pending[0]);
    int was_tx = p->tx && !begin;
    for (int attempt = 0;; attempt++) {
        p->npending = 0;
        if (begin) { /* (again) a transaction that starts with this statement */
            p->tx_lost = 0;
            p->tx = 0; /* not open on the server yet: the session may be checked */
        }
        int rc = ensure_session(p, op, !was_tx);
        if (rc == STORE_OK)
            rc = ensure_prepared(p, st, op);
        if (begin)
            p->tx = 1; /* the caller's transaction, opening with this statement */
        if (rc != STORE_OK) {
            /* preparing has no effect: a session found gone meanwhile is retried */
            if (rc == STORE_UNAVAILABLE && attempt == 0 && !was_tx &&
                PQstatus(p->conn) != CONNECTION_OK)
                continue;
            if (npending)
                note_broken(p); /* what the caller opened is not open */
            return rc;
        }
        double t0 = now_mono();
        PGresult *res = npending ? exec_pipelined(p, st, pending, npending)
                                 : PQexecPrepared(p->conn, st->name, st->nparams, st->values,
                                                  st->lengths, st->formats, 0);
        metrics_db(now_mono() - t0);
        ExecStatusType status = PQresultStatus(res);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            rc = fail(p, res, op);
            int again = rc == STORE_UNAVAILABLE && attempt == 0 &&
                        may_retry(p, res, was_tx, begin);
            PQclear(res);
            if (again)
                continue;
            return rc;
        }
        const char *n = PQcmdTuples(res);
        p->changes = n && *n ? strtoll(n, NULL, 10) : 0;
        if (p->tx && strncmp(PQcmdStatus(res), "SELECT", 6) != 0)
            p->wrote = 1;
        st->res = res;
        st->nrows = PQntuples(res);
        st->row = 0;
        return STORE_OK;
    }
}

static int pg_exec(struct store *s, struct sql_stmt *sst, const char *op, int code)
{
    int rc = execute(P(s), S(sst), op, code);
    pg_done(sst);
    return rc;
}

static int pg_first_row(struct store *s, struct sql_stmt *sst, const char *op, int code)
{
    struct pg_stmt *st = S(sst);
    int rc = execute(P(s), st, op, code);
    if (rc == STORE_OK && st->nrows > 0)
        return STORE_OK;
    pg_done(sst);
    return rc == STORE_OK ? STORE_NOTFOUND : rc;
}

static int pg_next_row(struct store *s, struct sql_stmt *sst, const char *op, int code)
{
    struct pg_stmt *st = S(sst);
    if (!st->res) {
        int rc = execute(P(s), st, op, code);
        if (rc != STORE_OK) {
            pg_done(sst);
            return rc;
        }
    } else {
        st->row++;
    }
    if (st->row < st->nrows)
        return 1;
    pg_done(sst);
    return 0;
}

static int pg_col_is_null(struct sql_stmt *sst, int col)
{
    struct pg_stmt *st = S(sst);
    return PQgetisnull(st->res, st->row, col);
}

static const char *pg_col_text(struct sql_stmt *sst, int col)
{
    struct pg_stmt *st = S(sst);
    if (PQgetisnull(st->res, st->row, col))
        return NULL;
    return PQgetvalue(st->res, st->row, col);
}

/* Integers arrive as decimal text; booleans as t/f. NULL reads as 0. */
static int64_t pg_col_int(struct sql_stmt *sst, int col)
{
    const char *v = pg_col_text(sst, col);
    if (!v)
        return 0;
    if (v[0] == 't' && v[1] == '\0')
        return 1;
    if (v[0] == 'f' && v[1] == '\0')
        return 0;
    return strtoll(v, NULL, 10);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* bytea arrives in text results as "\x" and hex (bytea_output = hex, set at
 * connect); decoded straight into the copy the caller gets. */
static uint8_t *pg_col_blobdup(struct sql_stmt *sst, int col, size_t *len, int *oom)
{
    *len = 0;
    const char *v = pg_col_text(sst, col);
    if (!v)
        return NULL;
    size_t n = strlen(v);
    if (n < 2 || v[0] != '\\' || v[1] != 'x' || (n - 2) % 2 != 0) {
        log_error("store error", "op=col_blob err=\"bytea not in hex format\"");
        *oom = 1;
        return NULL;
    }
    size_t bytes = (n - 2) / 2;
    uint8_t *out = malloc(bytes ? bytes : 1);
    if (!out) {
        *oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < bytes; i++) {
        int hi = hexval(v[2 + 2 * i]), lo = hexval(v[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(out);
            *oom = 1;
            return NULL;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = bytes;
    return out;
}

static int64_t pg_changes(struct store *s)
{
    return P(s)->changes;
}

/* ---- transactions ----------------------------------------------------------- */

static int pg_in_tx(struct store *s)
{
    return P(s)->tx || P(s)->tx_lost;
}

/* BEGIN, or the ping's SELECT 1: nothing happens before them, so a session
 * found gone on the way is reopened and they run once more. */
static int simple_fresh(struct pg *p, const char *sql, const char *op)
{
    for (int attempt = 0;; attempt++) {
        int rc = ensure_session(p, op, 1);
        if (rc == STORE_OK)
            rc = simple(p, sql, op);
        if (rc == STORE_UNAVAILABLE && attempt == 0 && !p->tx_lost &&
            PQstatus(p->conn) != CONNECTION_OK)
            continue;
        return rc;
    }
}

/* Holds a command without effect on data until the next statement carries
 * it (execute); a full queue is sent on its own first. */
static int push_pending(struct pg *p, const char *sql, const char *op);

/* Opens the caller's transaction lazily: the BEGIN goes out with its first
 * statement, saving a round trip; a transaction that runs nothing costs none.
 * The session is checked then, as for any statement. */
static int tx_start(struct store *s, const char *sql, const char *op)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return STORE_UNAVAILABLE;
    p->npending = 0;
    p->wrote = 0;
    p->tx = 1;
    return push_pending(p, sql, op);
}

/* Sends the pending commands by themselves, for what cannot carry them. */
static int flush_pending(struct pg *p, const char *op)
{
    int n = p->npending;
    p->npending = 0;
    for (int i = 0; i < n; i++) {
        int rc = is_begin(p->pending[i]) ? simple_fresh(p, p->pending[i], op)
                                         : simple(p, p->pending[i], op);
        p->tx = 1; /* a reconnect on the way cleared it */
        if (rc != STORE_OK) {
            note_broken(p);
            return rc;
        }
    }
    return STORE_OK;
}

static int push_pending(struct pg *p, const char *sql, const char *op)
{
    if (p->npending == MAX_PENDING) {
        int rc = flush_pending(p, op);
        if (rc != STORE_OK)
            return rc;
    }
    p->pending[p->npending++] = sql;
    return STORE_OK;
}

/* Drops what is pending at the end of a transaction: none of it changes
 * data, and COMMIT or ROLLBACK ends savepoints too. 1 when the BEGIN itself
 * was never sent (so there is nothing to end on the server). */
static int drop_pending(struct pg *p)
{
    int unsent = p->npending > 0 && is_begin(p->pending[0]);
    p->npending = 0;
    return unsent;
}

/* READ COMMITTED: writers do not queue behind one lock as in SQLite; the
 * store functions make each check-and-change one conditional statement. */
static int pg_begin(struct store *s)
{
    return tx_start(s, "BEGIN", "begin");
}

/* One snapshot for several reads. Not READ ONLY: a rare write inside
 * (connect's renewal rebinding) must still work, as in SQLite. */
static int pg_begin_read(struct store *s)
{
    return tx_start(s, "BEGIN ISOLATION LEVEL REPEATABLE READ", "begin_read");
}

/* Ends the caller's transaction whose session died: its writes are gone. */
static int end_lost(struct pg *p, int commit)
{
    p->tx_lost = 0;
    p->tx = 0;
    if (commit)
        log_warn("store unavailable", "op=commit err=\"session lost inside the transaction\"");
    return commit ? STORE_UNAVAILABLE : STORE_OK;
}

static int pg_commit(struct store *s)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return end_lost(p, 1);
    if (drop_pending(p)) { /* nothing ran: nothing to end */
        p->tx = 0;
        return STORE_OK;
    }
    /* A transaction that only read has nothing to make durable: its COMMIT
     * goes out without waiting, and its answer is read before the session's
     * next command (drain_async). */
    if (!p->wrote && PQtransactionStatus(p->conn) == PQTRANS_INTRANS &&
        PQsendQuery(p->conn, "COMMIT")) {
        p->async_pending = 1;
        p->tx = 0;
        return STORE_OK;
    }
    /* COMMIT of a transaction an error aborted answers ROLLBACK, not an error. */
    int aborted = PQtransactionStatus(p->conn) == PQTRANS_INERROR;
    int rc = simple(p, aborted ? "ROLLBACK" : "COMMIT", "commit");
    p->tx = 0;
    if (aborted && rc == STORE_OK) {
        log_error("store error", "op=commit err=\"transaction aborted by an earlier error\"");
        rc = STORE_ERR;
    }
    return rc;
}

static int pg_rollback(struct store *s)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return end_lost(p, 0);
    if (drop_pending(p)) {
        p->tx = 0;
        return STORE_OK;
    }
    int rc = simple(p, "ROLLBACK", "rollback");
    p->tx = 0;
    return rc;
}

static const char sp_set[] = "SAVEPOINT store_op";
static const char sp_release[] = "RELEASE store_op";

static int pg_savepoint(struct store *s, const char *op)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return STORE_UNAVAILABLE;
    p->wrote = 1; /* a savepoint guards writes: this transaction's COMMIT is waited for */
    return push_pending(p, sp_set, op);
}

/* A savepoint nothing ran under is simply dropped, released or undone. */
static int pop_unused_savepoint(struct pg *p)
{
    if (p->npending > 0 && p->pending[p->npending - 1] == sp_set) {
        p->npending--;
        return 1;
    }
    return 0;
}

static int pg_release(struct store *s, const char *op)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return STORE_UNAVAILABLE;
    return pop_unused_savepoint(p) ? STORE_OK : push_pending(p, sp_release, op);
}

static int pg_rollback_to(struct store *s, const char *op)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return STORE_UNAVAILABLE;
    if (pop_unused_savepoint(p))
        return STORE_OK;
    int rc = flush_pending(p, op);
    return rc == STORE_OK ? simple(p, "ROLLBACK TO store_op", op) : rc;
}

static int pg_ping(struct store *s)
{
    struct pg *p = P(s);
    if (p->tx_lost)
        return STORE_UNAVAILABLE;
    return simple_fresh(p, "SELECT 1", "ping");
}

static void pg_close(struct store *s)
{
    struct pg *p = P(s);
    for (int i = 0; i < STMT_SLOTS; i++) {
        struct pg_stmt *st = p->slots[i].st;
        if (!st)
            continue;
        PQclear(st->res);
        free(st->text);
        free(st);
    }
    PQfinish(p->conn); /* an open transaction is rolled back by the server */
    free(p);
}

static const struct store_backend pg_backend = {
    .name = "postgres",
    .dialect = STORE_DIALECT_POSTGRES,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int = pg_bind_int,
    .bind_null = pg_bind_null,
    .bind_blob = pg_bind_blob,
    .exec = pg_exec,
    .first_row = pg_first_row,
    .next_row = pg_next_row,
    .done = pg_done,
    .col_is_null = pg_col_is_null,
    .col_int = pg_col_int,
    .col_text = pg_col_text,
    .col_blobdup = pg_col_blobdup,
    .changes = pg_changes,
    .last_was_fk = pg_last_was_fk,
    .in_tx = pg_in_tx,
    .begin = pg_begin,
    .begin_read = pg_begin_read,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .ping = pg_ping,
    .close = pg_close,
};

/* ---- open and migrate ---------------------------------------------------------- */

static void set_err(char **err, const char *what, const char *detail)
{
    if (!err || *err)
        return;
    if (asprintf(err, "%s: %s", what, detail && *detail ? detail : "unknown error") < 0)
        *err = NULL;
    /* libpq's messages end in a newline */
    size_t n = *err ? strlen(*err) : 0;
    while (n > 0 && ((*err)[n - 1] == '\n' || (*err)[n - 1] == ' '))
        (*err)[--n] = '\0';
}

/* Runs SQL text (several statements allowed) for migrations, with *err set
 * to the server's message on failure. */
static int run_script(struct pg *p, const char *sql, const char *op, char **err)
{
    PGresult *res = PQexec(p->conn, sql);
    ExecStatusType status = PQresultStatus(res);
    int rc = STORE_OK;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        set_err(err, op, PQresultErrorMessage(res));
        rc = fail(p, res, op);
    }
    PQclear(res);
    return rc;
}

static int read_version(struct pg *p, int *version, char **err)
{
    PGresult *res = PQexec(p->conn, "SELECT COALESCE(max(version), 0) FROM schema_version");
    int rc = STORE_OK;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        *version = atoi(PQgetvalue(res, 0, 0));
    } else {
        set_err(err, "cannot read schema version", PQresultErrorMessage(res));
        rc = fail(p, res, "open.version");
    }
    PQclear(res);
    return rc;
}

static int apply_migration(struct pg *p, const struct store_migration *m, char **err)
{
    char *sql = store_migration_render(m->sql, STORE_DIALECT_POSTGRES);
    if (!sql) {
        set_err(err, "cannot render migration", m->name);
        return sql_out_of_memory("open.migrate");
    }
    int rc = run_script(p, sql, "open.migrate", err);
    free(sql);
    if (rc != STORE_OK)
        return rc;
    char record[128];
    snprintf(record, sizeof record,
             "INSERT INTO schema_version (version, applied_at) VALUES (%d, %lld)", m->version,
             (long long)time(NULL));
    rc = run_script(p, record, "open.migrate", err);
    if (rc == STORE_OK)
        log_info("store migrated", "backend=postgres version=%d name=\"%s\"", m->version,
                 m->name);
    return rc;
}

static int migrate_locked(struct pg *p, char **err)
{
    int rc = run_script(p, "BEGIN", "open.migrate", err);
    if (rc != STORE_OK)
        return rc;
    rc = run_script(p, store_schema_version_sql, "open.migrate", err);
    int version = 0;
    if (rc == STORE_OK)
        rc = read_version(p, &version, err);
    p->base.version_at_open = version;
    if (rc == STORE_OK && store_migrations_check_version(version, err) < 0)
        rc = STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < store_migrations_count; i++) {
        if (store_migrations[i].version <= version)
            continue;
        rc = apply_migration(p, &store_migrations[i], err);
        if (rc == STORE_OK)
            version = store_migrations[i].version;
    }
    if (rc == STORE_OK)
        rc = run_script(p, "COMMIT", "open.migrate", err);
    else
        (void)run_script(p, "ROLLBACK", "open.migrate", NULL); /* the first error wins */
    if (rc == STORE_OK)
        p->base.version = version;
    return rc;
}

/* Several nodes may start on a fresh database at once: a session-level
 * advisory lock lets one migrate while the others wait, and each reads the
 * version under it, so every migration runs exactly once. */
static int migrate(struct pg *p, char **err)
{
    char lock[64];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", MIGRATION_LOCK_KEY);
    int rc = run_script(p, lock, "open.migrate_lock", err);
    if (rc != STORE_OK)
        return rc;
    rc = migrate_locked(p, err);
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", MIGRATION_LOCK_KEY);
    int urc = run_script(p, lock, "open.migrate_unlock", rc == STORE_OK ? err : NULL);
    return rc != STORE_OK ? rc : urc;
}

/* steward answers a device's report once the commit that stored it
 * returned, and the device then forgets it: with synchronous_commit = off a
 * PostgreSQL crash can lose such reports (docs/deployment.md). steward does
 * not override the server's choice (remote_apply and the like are
 * stronger); it says so, once per process. Best effort: a failed SHOW only
 * means no warning. */
static atomic_int async_commit_warned;

static void warn_if_async_commit(struct pg *p)
{
    PGresult *res = PQexec(p->conn, "SHOW synchronous_commit");
    int off = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
              strcmp(PQgetvalue(res, 0, 0), "off") == 0;
    PQclear(res);
    if (off && !atomic_exchange(&async_commit_warned, 1))
        log_warn("postgres synchronous_commit is off",
                 "risk=\"a database crash can lose reports devices were already answered for\""
                 " see=docs/deployment.md");
}

static int connect_session(struct pg *p, const char *conninfo, char **err)
{
    /* The DSN's own settings come last, so they win over these defaults. */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"5", "steward", conninfo, NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn) {
        set_err(err, "cannot connect to PostgreSQL", "out of memory");
        return STORE_ERR;
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        set_err(err, "cannot connect to PostgreSQL", PQerrorMessage(p->conn));
        log_error("store unavailable", "op=open backend=postgres");
        return STORE_UNAVAILABLE;
    }
    p->session = 1;
    PQsetNoticeProcessor(p->conn, log_notice, NULL);
    int rc = run_script(p, session_setup, "open.session", err);
    if (rc == STORE_OK)
        warn_if_async_commit(p);
    return rc;
}

int store_pgsql_open(const char *conninfo, struct store **out, char **err)
{
    if (err)
        *err = NULL;
    *out = NULL;
    struct pg *p = calloc(1, sizeof *p);
    if (!p) {
        set_err(err, "cannot open database", "out of memory");
        return STORE_ERR;
    }
    p->base.be = &pg_backend;
    int rc = connect_session(p, conninfo, err);
    if (rc == STORE_OK)
        rc = migrate(p, err);
    if (rc != STORE_OK) {
        pg_close(&p->base);
        return rc;
    }
    *out = &p->base;
    return STORE_OK;
}
