/* sqlite.c: the SQLite backend of sql.h and store.h's connection calls. One
 * struct store is one SQLite connection (opened NOMUTEX: each HTTP worker
 * thread owns one and never shares it), in WAL mode with a 5 s busy timeout,
 * with every statement prepared once per connection and reset after use.
 * store_open (store.c) reaches it through store_sqlite_open; core.c and the
 * areas reach it through sql.h. */
#include <sqlite3.h>
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

#define BUSY_TIMEOUT_MS 5000

/* IMMEDIATE takes the write lock up front: a deferred transaction that reads
 * and then writes can fail with SQLITE_BUSY_SNAPSHOT without the busy handler
 * ever waiting. */
static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_begin_read[] = "BEGIN";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT store_op";
static const char sql_release[] = "RELEASE store_op";
static const char sql_rollback_to[] = "ROLLBACK TO store_op";
static const char sql_ping[] = "SELECT 1";

/* Statements keyed by the address of their SQL text: an open addressing
 * table that never shrinks (a connection prepares each statement once). The
 * wrappers live in the table itself, so a statement costs no allocation
 * beyond SQLite's own. */
#define STMT_SLOTS 512

struct lite_stmt {
    struct sql_stmt base;
    sqlite3_stmt *st;
};

struct stmt_slot {
    const char *sql;
    struct lite_stmt w;
};

struct lite {
    struct store base;
    sqlite3 *db;
    int last_code; /* extended result code of the last failure */
    struct stmt_slot slots[STMT_SLOTS];
};

static const struct store_backend lite_backend;

static struct lite *L(struct store *s)
{
    return (struct lite *)s;
}

static sqlite3_stmt *raw(struct sql_stmt *st)
{
    return ((struct lite_stmt *)st)->st;
}

/* ---- errors --------------------------------------------------------------- */

/* Maps an SQLite result code to a store_rc; logs what the caller cannot see.
 * Only the operation name and SQLite's message are logged, never values. */
static int fail(struct lite *l, const char *op, int code)
{
    l->last_code = code;
    char q[256];
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        log_warn("store busy", "op=%s err=%s", op, log_quote(q, sizeof q, sqlite3_errmsg(l->db)));
        return STORE_UNAVAILABLE;
    case SQLITE_CONSTRAINT:
        log_debug("store conflict", "op=%s err=%s", op,
                  log_quote(q, sizeof q, sqlite3_errmsg(l->db)));
        return STORE_CONFLICT;
    default:
        log_error("store error", "op=%s code=%d err=%s", op, code,
                  log_quote(q, sizeof q, sqlite3_errmsg(l->db)));
        return STORE_ERR;
    }
}

static int lite_last_was_fk(struct store *s)
{
    return L(s)->last_code == SQLITE_CONSTRAINT_FOREIGNKEY;
}

/* ---- statements ----------------------------------------------------------- */

static size_t slot_of(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 40) % STMT_SLOTS;
}

static struct sql_stmt *lite_prepare(struct store *s, const char *sql, const char *op, int *rc)
{
    struct lite *l = L(s);
    size_t i = slot_of(sql);
    for (size_t probes = 0; probes < STMT_SLOTS; probes++, i = (i + 1) % STMT_SLOTS) {
        struct stmt_slot *slot = &l->slots[i];
        if (slot->sql == sql)
            return &slot->w.base;
        if (slot->sql)
            continue;
        sqlite3_stmt *st = NULL;
        int code = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (code != SQLITE_OK) {
            sqlite3_finalize(st);
            *rc = fail(l, op, code);
            return NULL;
        }
        slot->sql = sql;
        slot->w.base.be = &lite_backend;
        slot->w.st = st;
        return &slot->w.base;
    }
    log_error("store error", "op=%s err=\"statement cache full\"", op);
    *rc = STORE_ERR;
    return NULL;
}

/* Resets a cached statement for its next use. Its step result was already
 * handled, and reset only repeats that code, so the return value is moot. */
static void lite_done(struct sql_stmt *st)
{
    (void)sqlite3_reset(raw(st));
    (void)sqlite3_clear_bindings(raw(st));
}

/* The bind helpers accumulate the first failure in *code (SQLITE_OK so far).
 * Values are bound SQLITE_STATIC: every caller resets before returning, so
 * the pointers outlive their use. */
static void lite_bind_text(struct sql_stmt *st, int i, const char *v, int *code)
{
    if (*code != SQLITE_OK)
        return;
    *code = v ? sqlite3_bind_text(raw(st), i, v, -1, SQLITE_STATIC)
              : sqlite3_bind_null(raw(st), i);
}

static void lite_bind_int(struct sql_stmt *st, int i, int64_t v, int *code)
{
    if (*code == SQLITE_OK)
        *code = sqlite3_bind_int64(raw(st), i, v);
}

static void lite_bind_null(struct sql_stmt *st, int i, int *code)
{
    if (*code == SQLITE_OK)
        *code = sqlite3_bind_null(raw(st), i);
}

/* NULL data binds SQL NULL; an empty non-NULL buffer binds an empty blob. */
static void lite_bind_blob(struct sql_stmt *st, int i, const uint8_t *v, size_t len, int *code)
{
    if (*code != SQLITE_OK)
        return;
    if (!v)
        *code = sqlite3_bind_null(raw(st), i);
    else if (len == 0)
        *code = sqlite3_bind_zeroblob(raw(st), i, 0);
    else
        *code = sqlite3_bind_blob64(raw(st), i, v, (sqlite3_uint64)len, SQLITE_STATIC);
}

/* sqlite3_step, timed for /metrics' steward_db_duration_seconds: every
 * statement of every store call passes here, so it is the one place to
 * measure database latency (two vDSO clock reads per step). */
static int timed_step(sqlite3_stmt *st)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int code = sqlite3_step(st);
    clock_gettime(CLOCK_MONOTONIC, &b);
    metrics_db((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return code;
}

/* Runs a statement that returns no rows. A statement with RETURNING rows
 * (SQLite makes every change on the first step and buffers those rows) is
 * stepped to its end so the change is complete before the reset. */
static int lite_exec(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    if (code == SQLITE_OK) {
        do
            code = timed_step(raw(st));
        while (code == SQLITE_ROW);
        if (code == SQLITE_DONE)
            code = SQLITE_OK;
    }
    int rc = code == SQLITE_OK ? STORE_OK : fail(L(s), op, code);
    lite_done(st);
    return rc;
}

/* Steps to the first row: STORE_OK with the row ready, NOTFOUND, or an
 * error (the statement is then already reset). */
static int lite_first_row(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    if (code == SQLITE_OK)
        code = timed_step(raw(st));
    if (code == SQLITE_ROW)
        return STORE_OK;
    int rc = code == SQLITE_DONE ? STORE_NOTFOUND : fail(L(s), op, code);
    lite_done(st);
    return rc;
}

static int lite_next_row(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    if (code == SQLITE_OK)
        code = timed_step(raw(st));
    if (code == SQLITE_ROW)
        return 1;
    int rc = code == SQLITE_DONE ? 0 : fail(L(s), op, code);
    lite_done(st);
    return rc;
}

static int lite_col_is_null(struct sql_stmt *st, int col)
{
    return sqlite3_column_type(raw(st), col) == SQLITE_NULL;
}

static int64_t lite_col_int(struct sql_stmt *st, int col)
{
    return sqlite3_column_type(raw(st), col) == SQLITE_NULL ? 0
                                                           : sqlite3_column_int64(raw(st), col);
}

static const char *lite_col_text(struct sql_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(raw(st), col);
}

/* Copies a blob column; NULL stays NULL. A zero-length blob still gets a
 * (1-byte) allocation so the caller can tell it from NULL. */
static uint8_t *lite_col_blobdup(struct sql_stmt *st, int col, size_t *len, int *oom)
{
    *len = 0;
    if (sqlite3_column_type(raw(st), col) == SQLITE_NULL)
        return NULL;
    const void *v = sqlite3_column_blob(raw(st), col);
    int n = sqlite3_column_bytes(raw(st), col);
    if (!v && n > 0) {
        *oom = 1;
        return NULL;
    }
    uint8_t *copy = malloc(n > 0 ? (size_t)n : 1);
    if (!copy) {
        *oom = 1;
        return NULL;
    }
    if (n > 0)
        memcpy(copy, v, (size_t)n);
    *len = (size_t)n;
    return copy;
}

static int64_t lite_changes(struct store *s)
{
    return sqlite3_changes64(L(s)->db);
}

/* ---- transactions ----------------------------------------------------------- */

static int run(struct store *s, const char *sql, const char *op)
{
    int rc = STORE_OK;
    struct sql_stmt *st = lite_prepare(s, sql, op, &rc);
    return st ? lite_exec(s, st, op, SQLITE_OK) : rc;
}

static int lite_in_tx(struct store *s)
{
    return !sqlite3_get_autocommit(L(s)->db);
}

static int lite_begin(struct store *s)
{
    return run(s, sql_begin, "begin");
}

static int lite_begin_read(struct store *s)
{
    return run(s, sql_begin_read, "begin_read");
}

static int lite_commit(struct store *s)
{
    return run(s, sql_commit, "commit");
}

static int lite_rollback(struct store *s)
{
    return run(s, sql_rollback, "rollback");
}

static int lite_savepoint(struct store *s, const char *op)
{
    return run(s, sql_savepoint, op);
}

static int lite_release(struct store *s, const char *op)
{
    return run(s, sql_release, op);
}

static int lite_rollback_to(struct store *s, const char *op)
{
    return run(s, sql_rollback_to, op);
}

static int lite_ping(struct store *s)
{
    int rc = STORE_OK;
    struct sql_stmt *st = lite_prepare(s, sql_ping, "ping", &rc);
    if (!st)
        return rc;
    rc = lite_first_row(s, st, "ping", SQLITE_OK);
    if (rc == STORE_OK)
        lite_done(st);
    return rc == STORE_NOTFOUND ? STORE_ERR : rc;
}

static int lite_set_lock_wait(struct store *s, int ms)
{
    int code = sqlite3_busy_timeout(L(s)->db, ms);
    return code == SQLITE_OK ? STORE_OK : fail(L(s), "set_lock_wait", code);
}

static void lite_close(struct store *s)
{
    struct lite *l = L(s);
    for (int i = 0; i < STMT_SLOTS; i++)
        sqlite3_finalize(l->slots[i].w.st);
    /* With every statement finalized close cannot be busy; an open
     * transaction is rolled back by SQLite. */
    int code = sqlite3_close(l->db);
    if (code != SQLITE_OK)
        log_error("store close failed", "code=%d", code);
    free(l);
}

static const struct store_backend lite_backend = {
    .name = "sqlite",
    .dialect = STORE_DIALECT_SQLITE,
    .prepare = lite_prepare,
    .bind_text = lite_bind_text,
    .bind_int = lite_bind_int,
    .bind_null = lite_bind_null,
    .bind_blob = lite_bind_blob,
    .exec = lite_exec,
    .first_row = lite_first_row,
    .next_row = lite_next_row,
    .done = lite_done,
    .col_is_null = lite_col_is_null,
    .col_int = lite_col_int,
    .col_text = lite_col_text,
    .col_blobdup = lite_col_blobdup,
    .changes = lite_changes,
    .last_was_fk = lite_last_was_fk,
    .in_tx = lite_in_tx,
    .begin = lite_begin,
    .begin_read = lite_begin_read,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .savepoint = lite_savepoint,
    .release = lite_release,
    .rollback_to = lite_rollback_to,
    .ping = lite_ping,
    .set_lock_wait = lite_set_lock_wait,
    .close = lite_close,
};

/* ---- open, migrate ------------------------------------------------------- */

static void set_err(char **err, const char *what, const char *detail)
{
    if (!err)
        return;
    if (asprintf(err, "%s: %s", what, detail ? detail : "unknown error") < 0)
        *err = NULL;
}

static int exec_sql(struct lite *l, const char *sql, const char *op, char **err)
{
    int code = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
    if (code == SQLITE_OK)
        return STORE_OK;
    set_err(err, op, sqlite3_errmsg(l->db));
    return fail(l, op, code);
}

static int set_wal(struct lite *l, char **err)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (code == SQLITE_OK)
        code = timed_step(st);
    if (code == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            log_warn("store not in WAL mode", "mode=%s", mode ? mode : "unknown");
    } else {
        set_err(err, "cannot enable WAL", sqlite3_errmsg(l->db));
        rc = fail(l, "open.wal", code);
    }
    sqlite3_finalize(st);
    return rc;
}

static int configure(struct lite *l, char **err)
{
    int code = sqlite3_extended_result_codes(l->db, 1);
    if (code == SQLITE_OK)
        code = sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
    if (code != SQLITE_OK) {
        set_err(err, "cannot configure database", sqlite3_errmsg(l->db));
        return fail(l, "open.configure", code);
    }
    int rc = set_wal(l, err);
    /* NORMAL under WAL loses no committed transaction when the process dies
     * (only on power loss), at a fraction of FULL's fsyncs. */
    if (rc == STORE_OK)
        rc = exec_sql(l, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "open.pragmas",
                      err);
    return rc;
}

static int read_version(struct lite *l, int *version, char **err)
{
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(l->db, "SELECT COALESCE(max(version), 0) FROM schema_version",
                                  -1, &st, NULL);
    if (code == SQLITE_OK)
        code = timed_step(st);
    int rc = STORE_OK;
    if (code == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
    } else {
        set_err(err, "cannot read schema version", sqlite3_errmsg(l->db));
        rc = fail(l, "open.version", code);
    }
    sqlite3_finalize(st);
    return rc;
}

static int apply_migration(struct lite *l, const struct store_migration *m, char **err)
{
    char *sql = store_migration_render(m->sql, STORE_DIALECT_SQLITE);
    if (!sql) {
        set_err(err, "cannot render migration", m->name);
        return sql_out_of_memory("open.migrate");
    }
    int rc = exec_sql(l, sql, "open.migrate", err);
    free(sql);
    if (rc != STORE_OK)
        return rc;
    char record[128];
    snprintf(record, sizeof record,
             "INSERT INTO schema_version (version, applied_at) VALUES (%d, %lld)", m->version,
             (long long)time(NULL));
    rc = exec_sql(l, record, "open.migrate", err);
    if (rc == STORE_OK)
        log_info("store migrated", "version=%d name=\"%s\"", m->version, m->name);
    return rc;
}

/* Several processes may open a fresh database at once: the write lock taken
 * by BEGIN IMMEDIATE serialises them, and the version is read under it, so
 * each migration runs exactly once. */
static int migrate(struct lite *l, char **err)
{
    struct store *s = &l->base;
    int rc = lite_begin(s);
    if (rc != STORE_OK) {
        set_err(err, "cannot lock database for migration", sqlite3_errmsg(l->db));
        return rc;
    }
    rc = exec_sql(l, store_schema_version_sql, "open.migrate", err);
    int version = 0;
    if (rc == STORE_OK)
        rc = read_version(l, &version, err);
    s->version_at_open = version;
    if (rc == STORE_OK)
        rc = store_migrations_check_version(version, err);
    for (size_t i = 0; rc == STORE_OK && i < store_migrations_count; i++) {
        if (store_migrations[i].version <= version)
            continue;
        rc = apply_migration(l, &store_migrations[i], err);
        if (rc == STORE_OK)
            version = store_migrations[i].version;
    }
    rc = sql_atomic_end(s, 0, rc, "open.migrate");
    if (rc == STORE_OK)
        s->version = version;
    else if (err && !*err)
        set_err(err, "cannot commit migration", sqlite3_errmsg(l->db));
    return rc;
}

int store_sqlite_open(const char *path, struct store **out, char **err)
{
    if (err)
        *err = NULL;
    *out = NULL;
    struct lite *l = calloc(1, sizeof *l);
    if (!l) {
        set_err(err, "cannot open database", "out of memory");
        return STORE_ERR;
    }
    l->base.be = &lite_backend;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int code = sqlite3_open_v2(path, &l->db, flags, NULL);
    int rc = STORE_OK;
    if (code != SQLITE_OK) {
        set_err(err, "cannot open database", l->db ? sqlite3_errmsg(l->db) : "out of memory");
        rc = l->db ? fail(l, "open", code) : STORE_ERR;
    }
    if (rc == STORE_OK)
        rc = configure(l, err);
    if (rc == STORE_OK)
        rc = migrate(l, err);
    if (rc != STORE_OK) {
        lite_close(&l->base);
        return rc;
    }
    *out = &l->base;
    return STORE_OK;
}
