/* sqlite.c: the SQLite backend of store.h. One struct store is one SQLite
 * connection (opened NOMUTEX: each HTTP worker thread owns one and never
 * shares it), in WAL mode with a 5 s busy timeout, with every statement
 * prepared once per connection and reset after use. store_open (store.c)
 * reaches it through store_sqlite_open. */
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/migrations.h"
#include "store/sql.h"
#include "store/store.h"
#include "util/log.h"
#include "util/metrics.h"

#define BUSY_TIMEOUT_MS 5000
#define DEFAULT_LIMIT 100

/* ---- the statement cache -------------------------------------------------
 * Statement ids index both the SQL table and each connection's cache. */
enum stmt_id {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_PING,
    ST_ENR_AUTHENTICATE,
    ST_ENR_CLEAR_BOOTSTRAP,
    ST_ENR_STATUS,
    ST_ENR_TOKEN_UPDATE,
    ST_ENR_CHECKOUT,
    ST_ENR_CHECKOUT_USERS,
    ST_ENR_GET,
    ST_ENR_TOUCH,
    ST_ENR_BY_CERT,
    ST_ENR_LIST,
    ST_ENR_COUNT,
    ST_BOOT_SET,
    ST_BOOT_DELETE,
    ST_BOOT_GET,
    ST_CMD_CREATE,
    ST_CMD_GET,
    ST_QUEUE_ADD,
    ST_QUEUE_CLAIM,
    ST_QUEUE_WAITING,
    ST_QUEUE_MARK,
    ST_RESULT_ADD,
    ST_QUEUE_LIST,
    ST_QUEUE_CANCEL,
    ST_QUEUE_DEPTH,
    ST_EVENT_ADD,
    ST_APIKEY_ADD,
    ST_APIKEY_LOOKUP,
    ST_CERT_ADD,
    ST_CERT_BY_FP,
    ST_CERT_STATUS_BY_FP,
    ST_CERT_BY_SERIAL,
    ST_CERT_BY_TID,
    ST_CERT_LIST,
    ST_CERT_COUNT,
    ST_CERT_STATUS,
    ST_CERT_REVOKE,
    ST_CERT_APPROVE,
    ST_CERT_REJECT,
    ST_CERT_SET_ENROLLMENT,
    ST_CHAL_ADD,
    ST_CHAL_CONSUME,
    ST_CHAL_STATE,
    ST_ENR_REBIND,
    ST_COUNT
};

/* The device-reported columns both check-in upserts write, bound as ?2..?18
 * in this order (id is ?1). A NULL field keeps the stored value. */
#define DEVICE_COLS                                                                               \
    "parent_id, type, udid, enrollment_id, user_id, user_short_name, user_long_name, topic, "    \
    "serial_number, os_version, build_version, product_name, model, model_name, device_name, "   \
    "imei, meid"
#define DEVICE_PARAMS "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18"
#define KEEP(c) c " = COALESCE(excluded." c ", enrollments." c ")"
#define DEVICE_KEEP                                                                               \
    KEEP("parent_id") ", " KEEP("type") ", " KEEP("udid") ", " KEEP("enrollment_id") ", "         \
    KEEP("user_id") ", " KEEP("user_short_name") ", " KEEP("user_long_name") ", "                 \
    KEEP("topic") ", " KEEP("serial_number") ", " KEEP("os_version") ", "                         \
    KEEP("build_version") ", " KEEP("product_name") ", " KEEP("model") ", "                       \
    KEEP("model_name") ", " KEEP("device_name") ", " KEEP("imei") ", " KEEP("meid")

#define ENR_COLS                                                                                  \
    "id, " DEVICE_COLS ", status, token_hex, push_magic, unlock_token, awaiting_configuration, "  \
    "cert_fp, created_at, authenticated_at, enrolled_at, token_updated_at, last_seen_at, "        \
    "checked_out_at"

/* search (?1, a LIKE pattern or NULL), serial number (?2), status (?3). */
#define ENR_FILTER                                                                                \
    " WHERE (?1 IS NULL OR id LIKE ?1 ESCAPE '\\' OR serial_number LIKE ?1 ESCAPE '\\'"           \
    " OR device_name LIKE ?1 ESCAPE '\\')"                                                        \
    " AND (?2 IS NULL OR serial_number = ?2) AND (?3 = 0 OR status = ?3)"

#define CERT_COLS_BUT_BLOBS                                                                       \
    "serial, subject, fingerprint, COALESCE(not_before, 0), COALESCE(not_after, 0),"              \
    " enrollment_id, status, COALESCE(revoked_at, 0), revoke_reason, transaction_id,"             \
    " renewed_from, created_at"
#define CERT_COLS CERT_COLS_BUT_BLOBS ", der, csr"
#define CERT_LIST_COLS CERT_COLS_BUT_BLOBS ", NULL, NULL"

/* status (?1 or NULL), expiring before (?2, 0 = any), unexpired at (?3, 0 =
 * any), enrollment (?4 or NULL). */
#define CERT_FILTER                                                                               \
    " WHERE (?1 IS NULL OR status = ?1)"                                                          \
    " AND (?2 = 0 OR (not_after IS NOT NULL AND not_after < ?2))"                                 \
    " AND (?3 = 0 OR not_after > ?3) AND (?4 IS NULL OR enrollment_id = ?4)"

static const char *const stmt_sql[ST_COUNT] = {
    /* IMMEDIATE takes the write lock up front: a deferred transaction that
     * reads and then writes can fail with SQLITE_BUSY_SNAPSHOT without the
     * busy handler ever waiting. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_op",
    [ST_RELEASE] = "RELEASE store_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_op",
    [ST_PING] = "SELECT 1",
    [ST_ENR_AUTHENTICATE] =
        "INSERT INTO enrollments (id, " DEVICE_COLS ", status, awaiting_configuration, cert_fp,"
        " created_at, authenticated_at)"
        " VALUES (?1, " DEVICE_PARAMS ", 1, ?19, ?20, ?21, ?21)"
        " ON CONFLICT (id) DO UPDATE SET " DEVICE_KEEP ", status = 1, token_hex = NULL,"
        " push_magic = NULL, unlock_token = NULL,"
        " awaiting_configuration = excluded.awaiting_configuration, " KEEP("cert_fp") ","
        " authenticated_at = excluded.authenticated_at, enrolled_at = NULL",
    [ST_ENR_CLEAR_BOOTSTRAP] = "DELETE FROM bootstrap_tokens WHERE enrollment_id = ?1",
    [ST_ENR_STATUS] = "SELECT status FROM enrollments WHERE id = ?1",
    [ST_ENR_TOKEN_UPDATE] =
        "INSERT INTO enrollments (id, " DEVICE_COLS ", status, token_hex, push_magic, unlock_token,"
        " awaiting_configuration, created_at, enrolled_at, token_updated_at)"
        " VALUES (?1, " DEVICE_PARAMS ", 2, ?19, ?20, ?21, ?22, ?23, ?23, ?23)"
        " ON CONFLICT (id) DO UPDATE SET " DEVICE_KEEP ", " KEEP("token_hex") ", "
        KEEP("push_magic") ", " KEEP("unlock_token") ","
        " awaiting_configuration = excluded.awaiting_configuration, status = 2,"
        " enrolled_at = CASE WHEN enrollments.status = 2 THEN enrollments.enrolled_at"
        " ELSE excluded.enrolled_at END,"
        " token_updated_at = excluded.token_updated_at",
    [ST_ENR_CHECKOUT] = "UPDATE enrollments SET status = 3, checked_out_at = ?2 WHERE id = ?1",
    /* User channels are "<id>:<user>": every id in [id || ':', id || ';') in
     * binary order, a range that needs no LIKE escaping of the device id. */
    [ST_ENR_CHECKOUT_USERS] =
        "UPDATE enrollments SET status = 3, checked_out_at = ?2"
        " WHERE (id > ?1 || ':' AND id < ?1 || ';') OR parent_id = ?1",
    [ST_ENR_GET] = "SELECT " ENR_COLS " FROM enrollments WHERE id = ?1",
    [ST_ENR_TOUCH] = "UPDATE enrollments SET last_seen_at = ?2 WHERE id = ?1"
                     " AND (last_seen_at IS NULL OR last_seen_at <= ?2 - ?3)",
    /* A device channel outranks a user channel carrying the same fingerprint,
     * then the most recent Authenticate wins. */
    [ST_ENR_BY_CERT] = "SELECT id FROM enrollments WHERE cert_fp = ?1 AND status <> 3"
                       " ORDER BY parent_id IS NULL DESC, authenticated_at DESC LIMIT 1",
    [ST_ENR_LIST] = "SELECT " ENR_COLS " FROM enrollments" ENR_FILTER
                    " ORDER BY id LIMIT ?4 OFFSET ?5",
    [ST_ENR_COUNT] = "SELECT count(*) FROM enrollments" ENR_FILTER,
    [ST_BOOT_SET] = "INSERT INTO bootstrap_tokens (enrollment_id, token) VALUES (?1, ?2)"
                    " ON CONFLICT (enrollment_id) DO UPDATE SET token = excluded.token",
    [ST_BOOT_DELETE] = "DELETE FROM bootstrap_tokens WHERE enrollment_id = ?1",
    [ST_BOOT_GET] = "SELECT token FROM bootstrap_tokens WHERE enrollment_id = ?1",
    [ST_CMD_CREATE] = "INSERT INTO commands (uuid, request_type, payload, created_at)"
                      " VALUES (?1, ?2, ?3, ?4)",
    [ST_CMD_GET] = "SELECT request_type, payload FROM commands WHERE uuid = ?1",
    [ST_QUEUE_ADD] = "INSERT INTO queue (enrollment_id, command_uuid, created_at)"
                     " VALUES (?1, ?2, ?3)",
    /* Oldest waiting row first; rowid breaks created_at ties in insertion
     * order, and the queue_next index already holds rows in that order. */
    [ST_QUEUE_CLAIM] =
        "UPDATE queue SET delivered_at = ?3, delivery_count = delivery_count + 1"
        " WHERE rowid = (SELECT rowid FROM queue WHERE enrollment_id = ?1 AND active = 1"
        " AND (status IS NULL OR (?2 <> 0 AND status = 'NotNow'))"
        " ORDER BY created_at, rowid LIMIT 1)"
        " RETURNING command_uuid",
    [ST_QUEUE_WAITING] =
        "SELECT 1 FROM queue WHERE enrollment_id = ?1 AND active = 1"
        " AND (status IS NULL OR (?2 <> 0 AND status = 'NotNow')) LIMIT 1",
    [ST_QUEUE_MARK] =
        "UPDATE queue SET status = ?3, updated_at = ?4,"
        " active = CASE WHEN ?3 = 'NotNow' THEN 1 ELSE 0 END"
        " WHERE enrollment_id = ?1 AND command_uuid = ?2 AND active = 1",
    [ST_RESULT_ADD] = "INSERT INTO results (enrollment_id, command_uuid, status, raw, received_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_QUEUE_LIST] =
        "SELECT q.command_uuid, c.request_type, COALESCE(q.status, 'Pending'), q.created_at,"
        " COALESCE(q.delivered_at, 0), COALESCE(q.updated_at, 0), q.delivery_count,"
        " (SELECT r.raw FROM results r WHERE r.enrollment_id = q.enrollment_id"
        "  AND r.command_uuid = q.command_uuid ORDER BY r.id DESC LIMIT 1)"
        " FROM queue q JOIN commands c ON c.uuid = q.command_uuid"
        " WHERE q.enrollment_id = ?1 ORDER BY q.created_at DESC, q.rowid DESC LIMIT ?2",
    [ST_QUEUE_CANCEL] =
        "DELETE FROM queue WHERE enrollment_id = ?1 AND command_uuid = ?2 AND active = 1",
    [ST_QUEUE_DEPTH] = "SELECT count(*) FROM queue WHERE active = 1",
    [ST_EVENT_ADD] = "INSERT INTO events (enrollment_id, type, detail, created_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [ST_APIKEY_ADD] = "INSERT INTO api_keys (hash, name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
    [ST_APIKEY_LOOKUP] = "SELECT name, role FROM api_keys WHERE hash = ?1",
    /* Times that do not apply yet (a pending request's validity, revoked_at
     * of a live certificate) are stored as NULL, read back as 0. */
    [ST_CERT_ADD] =
        "INSERT INTO certs (serial, fingerprint, subject, not_before, not_after, enrollment_id,"
        " status, revoked_at, revoke_reason, transaction_id, renewed_from, der, csr, created_at)"
        " VALUES (?1, ?2, ?3, NULLIF(?4, 0), NULLIF(?5, 0), ?6, ?7, NULLIF(?8, 0), ?9, ?10, ?11,"
        " ?12, ?13, ?14)",
    [ST_CERT_BY_FP] = "SELECT " CERT_COLS " FROM certs WHERE fingerprint = ?1",
    [ST_CERT_STATUS_BY_FP] = "SELECT status FROM certs WHERE fingerprint = ?1",
    [ST_CERT_BY_SERIAL] = "SELECT " CERT_COLS " FROM certs WHERE serial = ?1",
    /* A client may reuse a transaction id (a retried request); the newest
     * record is the one it is waiting for. */
    [ST_CERT_BY_TID] = "SELECT " CERT_COLS " FROM certs WHERE transaction_id = ?1"
                       " ORDER BY created_at DESC, rowid DESC LIMIT 1",
    [ST_CERT_LIST] = "SELECT " CERT_LIST_COLS " FROM certs" CERT_FILTER
                     " ORDER BY created_at DESC, serial DESC LIMIT ?5 OFFSET ?6",
    [ST_CERT_COUNT] = "SELECT count(*) FROM certs" CERT_FILTER,
    [ST_CERT_STATUS] = "SELECT status FROM certs WHERE serial = ?1",
    [ST_CERT_REVOKE] = "UPDATE certs SET status = 'revoked', revoked_at = ?2, revoke_reason = ?3"
                       " WHERE serial = ?1 AND status = 'issued'",
    [ST_CERT_APPROVE] =
        "UPDATE certs SET status = 'issued', fingerprint = ?2, der = ?3, not_before = ?4,"
        " not_after = ?5, csr = NULL WHERE serial = ?1 AND status = 'pending'",
    [ST_CERT_REJECT] = "UPDATE certs SET status = 'rejected', csr = NULL"
                       " WHERE serial = ?1 AND status = 'pending'",
    [ST_CERT_SET_ENROLLMENT] = "UPDATE certs SET enrollment_id = ?2 WHERE fingerprint = ?1",
    [ST_CHAL_ADD] = "INSERT INTO challenges (hash, created_for, created_at, expires_at)"
                    " VALUES (?1, ?2, ?3, ?4)",
    /* One UPDATE both checks and consumes, so two requests racing with the
     * same challenge cannot both win. */
    [ST_CHAL_CONSUME] = "UPDATE challenges SET used_at = ?2"
                        " WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
    [ST_CHAL_STATE] = "SELECT used_at IS NOT NULL FROM challenges WHERE hash = ?1",
    [ST_ENR_REBIND] = "UPDATE enrollments SET cert_fp = ?3 WHERE id = ?1 AND cert_fp = ?2",
};

/* sql.h's statements, keyed by the address of their SQL text: an open
 * addressing table that never shrinks (a connection prepares each area
 * statement once). */
#define AREA_SLOTS 512

struct area_stmt {
    const char *sql;
    sqlite3_stmt *st;
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT]; /* prepared on first use, finalized at close */
    struct area_stmt area[AREA_SLOTS];
    int version;                  /* schema version after migrations */
    int last_code;                /* extended result code of the last failure */
};

/* ---- errors --------------------------------------------------------------- */

/* Maps an SQLite result code to a store_rc; logs what the caller cannot see.
 * Only the operation name and SQLite's message are logged, never values. */
static int fail(struct store *s, const char *op, int code)
{
    s->last_code = code;
    char q[256];
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        log_warn("store busy", "op=%s err=%s", op, log_quote(q, sizeof q, sqlite3_errmsg(s->db)));
        return STORE_UNAVAILABLE;
    case SQLITE_CONSTRAINT:
        log_debug("store conflict", "op=%s err=%s", op,
                  log_quote(q, sizeof q, sqlite3_errmsg(s->db)));
        return STORE_CONFLICT;
    default:
        log_error("store error", "op=%s code=%d err=%s", op, code,
                  log_quote(q, sizeof q, sqlite3_errmsg(s->db)));
        return STORE_ERR;
    }
}

/* ---- statement helpers ---------------------------------------------------- */

static sqlite3_stmt *stmt_get(struct store *s, enum stmt_id id, const char *op, int *rc)
{
    if (s->stmt[id])
        return s->stmt[id];
    int code = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                  &s->stmt[id], NULL);
    if (code != SQLITE_OK) {
        sqlite3_finalize(s->stmt[id]);
        s->stmt[id] = NULL;
        *rc = fail(s, op, code);
        return NULL;
    }
    return s->stmt[id];
}

/* Resets a cached statement for its next use. Its step result was already
 * handled, and reset only repeats that code, so the return value is moot. */
static void stmt_done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* The bind helpers accumulate the first failure in *code (SQLITE_OK so far).
 * Values are bound SQLITE_STATIC: every caller resets before returning, so
 * the pointers outlive their use. */
static void bind_text(sqlite3_stmt *st, int i, const char *v, int *code)
{
    if (*code != SQLITE_OK)
        return;
    *code = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static void bind_int(sqlite3_stmt *st, int i, int64_t v, int *code)
{
    if (*code == SQLITE_OK)
        *code = sqlite3_bind_int64(st, i, v);
}

/* NULL data binds SQL NULL; an empty non-NULL buffer binds an empty blob. */
static void bind_blob(sqlite3_stmt *st, int i, const uint8_t *v, size_t len, int *code)
{
    if (*code != SQLITE_OK)
        return;
    if (!v)
        *code = sqlite3_bind_null(st, i);
    else if (len == 0)
        *code = sqlite3_bind_zeroblob(st, i, 0);
    else
        *code = sqlite3_bind_blob64(st, i, v, (sqlite3_uint64)len, SQLITE_STATIC);
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

/* Runs a statement that returns no rows. */
static int exec_stmt(struct store *s, sqlite3_stmt *st, const char *op, int code)
{
    if (code == SQLITE_OK) {
        code = timed_step(st);
        if (code == SQLITE_DONE)
            code = SQLITE_OK;
    }
    int rc = code == SQLITE_OK ? STORE_OK : fail(s, op, code);
    stmt_done(st);
    return rc;
}

/* Steps to the first row: STORE_OK with the row ready, NOTFOUND, or an
 * error (the statement is then already reset). */
static int first_row(struct store *s, sqlite3_stmt *st, const char *op, int code)
{
    if (code == SQLITE_OK)
        code = timed_step(st);
    if (code == SQLITE_ROW)
        return STORE_OK;
    int rc = code == SQLITE_DONE ? STORE_NOTFOUND : fail(s, op, code);
    stmt_done(st);
    return rc;
}

static int run(struct store *s, enum stmt_id id, const char *op)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, id, op, &rc);
    return st ? exec_stmt(s, st, op, SQLITE_OK) : rc;
}

static char *column_strdup(sqlite3_stmt *st, int col, int *oom)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    if (!v) {
        if (sqlite3_column_type(st, col) != SQLITE_NULL)
            *oom = 1;
        return NULL;
    }
    char *copy = strdup((const char *)v);
    if (!copy)
        *oom = 1;
    return copy;
}

/* Copies a blob column; NULL stays NULL. A zero-length blob still gets a
 * (1-byte) allocation so the caller can tell it from NULL. */
static uint8_t *column_blobdup(sqlite3_stmt *st, int col, size_t *len, int *oom)
{
    *len = 0;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const void *v = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
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

static int64_t column_time(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, col);
}

static int out_of_memory(const char *op)
{
    log_error("store out of memory", "op=%s", op);
    return STORE_ERR;
}

/* ---- atomic operations -----------------------------------------------------
 * A write made of several statements runs in its own transaction when the
 * caller has none (BEGIN IMMEDIATE, for the reason at ST_BEGIN), or in a
 * savepoint inside the caller's store_begin transaction. */

static int op_begin(struct store *s, const char *op, int *nested)
{
    *nested = !sqlite3_get_autocommit(s->db);
    int rc = run(s, *nested ? ST_SAVEPOINT : ST_BEGIN, op);
    return rc;
}

static void op_abort(struct store *s, int nested, const char *op)
{
    /* An error may already have rolled the whole transaction back; then
     * there is nothing left to undo here. */
    if (sqlite3_get_autocommit(s->db))
        return;
    if (nested) {
        if (run(s, ST_ROLLBACK_TO, op) == STORE_OK)
            (void)run(s, ST_RELEASE, op); /* logged by run; the first error wins */
    } else {
        (void)run(s, ST_ROLLBACK, op); /* logged by run; the first error wins */
    }
}

/* Commits (or releases) when rc is STORE_OK, undoes otherwise; returns the
 * operation's result. */
static int op_end(struct store *s, int nested, int rc, const char *op)
{
    if (rc == STORE_OK) {
        rc = run(s, nested ? ST_RELEASE : ST_COMMIT, op);
        if (rc == STORE_OK)
            return STORE_OK;
    }
    op_abort(s, nested, op);
    return rc;
}

/* ---- sql.h for the store areas --------------------------------------------
 * struct sql_stmt is sqlite3_stmt under another name; the wrappers reuse the
 * helpers above so every area statement is timed and logged the same way. */

static sqlite3_stmt *raw(struct sql_stmt *st)
{
    return (sqlite3_stmt *)st;
}

static size_t area_slot(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 40) % AREA_SLOTS;
}

struct sql_stmt *sql_prepare(struct store *s, const char *sql, const char *op, int *rc)
{
    size_t i = area_slot(sql);
    for (size_t probes = 0; probes < AREA_SLOTS; probes++, i = (i + 1) % AREA_SLOTS) {
        if (s->area[i].sql == sql)
            return (struct sql_stmt *)s->area[i].st;
        if (s->area[i].sql)
            continue;
        sqlite3_stmt *st = NULL;
        int code = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
        if (code != SQLITE_OK) {
            sqlite3_finalize(st);
            *rc = fail(s, op, code);
            return NULL;
        }
        s->area[i].sql = sql;
        s->area[i].st = st;
        return (struct sql_stmt *)st;
    }
    log_error("store error", "op=%s err=\"statement cache full\"", op);
    *rc = STORE_ERR;
    return NULL;
}

void sql_bind_text(struct sql_stmt *st, int i, const char *v, int *code)
{
    bind_text(raw(st), i, v, code);
}

void sql_bind_int(struct sql_stmt *st, int i, int64_t v, int *code)
{
    bind_int(raw(st), i, v, code);
}

void sql_bind_null(struct sql_stmt *st, int i, int *code)
{
    if (*code == SQLITE_OK)
        *code = sqlite3_bind_null(raw(st), i);
}

void sql_bind_blob(struct sql_stmt *st, int i, const uint8_t *v, size_t len, int *code)
{
    bind_blob(raw(st), i, v, len, code);
}

int sql_exec(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    return exec_stmt(s, raw(st), op, code);
}

int sql_first_row(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    return first_row(s, raw(st), op, code);
}

int sql_next_row(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    if (code == SQLITE_OK)
        code = timed_step(raw(st));
    if (code == SQLITE_ROW)
        return 1;
    int rc = code == SQLITE_DONE ? 0 : fail(s, op, code);
    stmt_done(raw(st));
    return rc;
}

void sql_done(struct sql_stmt *st)
{
    stmt_done(raw(st));
}

int sql_col_is_null(struct sql_stmt *st, int col)
{
    return sqlite3_column_type(raw(st), col) == SQLITE_NULL;
}

int64_t sql_col_int(struct sql_stmt *st, int col)
{
    return column_time(raw(st), col);
}

const char *sql_col_text(struct sql_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(raw(st), col);
}

char *sql_col_strdup(struct sql_stmt *st, int col, int *oom)
{
    return column_strdup(raw(st), col, oom);
}

uint8_t *sql_col_blobdup(struct sql_stmt *st, int col, size_t *len, int *oom)
{
    return column_blobdup(raw(st), col, len, oom);
}

int64_t sql_changes(struct store *s)
{
    return sqlite3_changes64(s->db);
}

int sql_atomic_begin(struct store *s, const char *op, int *nested)
{
    return op_begin(s, op, nested);
}

int sql_atomic_end(struct store *s, int nested, int rc, const char *op)
{
    return op_end(s, nested, rc, op);
}

int sql_out_of_memory(const char *op)
{
    return out_of_memory(op);
}

/* ---- open, migrate, close ------------------------------------------------- */

static void set_err(char **err, const char *what, const char *detail)
{
    if (!err)
        return;
    if (asprintf(err, "%s: %s", what, detail ? detail : "unknown error") < 0)
        *err = NULL;
}

static int exec_sql(struct store *s, const char *sql, const char *op, char **err)
{
    int code = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (code == SQLITE_OK)
        return STORE_OK;
    set_err(err, op, sqlite3_errmsg(s->db));
    return fail(s, op, code);
}

static int set_wal(struct store *s, char **err)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (code == SQLITE_OK)
        code = timed_step(st);
    if (code == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!mode || strcmp(mode, "wal") != 0)
            log_warn("store not in WAL mode", "mode=%s", mode ? mode : "unknown");
    } else {
        set_err(err, "cannot enable WAL", sqlite3_errmsg(s->db));
        rc = fail(s, "open.wal", code);
    }
    sqlite3_finalize(st);
    return rc;
}

static int configure(struct store *s, char **err)
{
    int code = sqlite3_extended_result_codes(s->db, 1);
    if (code == SQLITE_OK)
        code = sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (code != SQLITE_OK) {
        set_err(err, "cannot configure database", sqlite3_errmsg(s->db));
        return fail(s, "open.configure", code);
    }
    int rc = set_wal(s, err);
    /* NORMAL under WAL loses no committed transaction when the process dies
     * (only on power loss), at a fraction of FULL's fsyncs. */
    if (rc == STORE_OK)
        rc = exec_sql(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", "open.pragmas",
                      err);
    return rc;
}

static int read_version(struct store *s, int *version, char **err)
{
    sqlite3_stmt *st = NULL;
    int code = sqlite3_prepare_v2(s->db, "SELECT COALESCE(max(version), 0) FROM schema_version",
                                  -1, &st, NULL);
    if (code == SQLITE_OK)
        code = timed_step(st);
    int rc = STORE_OK;
    if (code == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
    } else {
        set_err(err, "cannot read schema version", sqlite3_errmsg(s->db));
        rc = fail(s, "open.version", code);
    }
    sqlite3_finalize(st);
    return rc;
}

static int apply_migration(struct store *s, const struct store_migration *m, char **err)
{
    char *sql = store_migration_render(m->sql, STORE_DIALECT_SQLITE);
    if (!sql) {
        set_err(err, "cannot render migration", m->name);
        return out_of_memory("open.migrate");
    }
    int rc = exec_sql(s, sql, "open.migrate", err);
    free(sql);
    if (rc != STORE_OK)
        return rc;
    char record[128];
    snprintf(record, sizeof record,
             "INSERT INTO schema_version (version, applied_at) VALUES (%d, %lld)", m->version,
             (long long)time(NULL));
    rc = exec_sql(s, record, "open.migrate", err);
    if (rc == STORE_OK)
        log_info("store migrated", "version=%d name=\"%s\"", m->version, m->name);
    return rc;
}

/* Several processes may open a fresh database at once: the write lock taken
 * by BEGIN IMMEDIATE serialises them, and the version is read under it, so
 * each migration runs exactly once. */
static int migrate(struct store *s, char **err)
{
    int rc = run(s, ST_BEGIN, "open.migrate");
    if (rc != STORE_OK) {
        set_err(err, "cannot lock database for migration", sqlite3_errmsg(s->db));
        return rc;
    }
    rc = exec_sql(s, store_schema_version_sql, "open.migrate", err);
    int version = 0;
    if (rc == STORE_OK)
        rc = read_version(s, &version, err);
    if (rc == STORE_OK && version > store_migrations_latest()) {
        char detail[96];
        snprintf(detail, sizeof detail, "version %d is newer than this program's %d", version,
                 store_migrations_latest());
        set_err(err, "database schema", detail);
        log_error("store schema too new", "version=%d known=%d", version,
                  store_migrations_latest());
        rc = STORE_ERR;
    }
    for (size_t i = 0; rc == STORE_OK && i < store_migrations_count; i++) {
        if (store_migrations[i].version <= version)
            continue;
        rc = apply_migration(s, &store_migrations[i], err);
        if (rc == STORE_OK)
            version = store_migrations[i].version;
    }
    rc = op_end(s, 0, rc, "open.migrate");
    if (rc == STORE_OK)
        s->version = version;
    else if (err && !*err)
        set_err(err, "cannot commit migration", sqlite3_errmsg(s->db));
    return rc;
}

int store_sqlite_open(const char *path, struct store **out, char **err)
{
    if (err)
        *err = NULL;
    *out = NULL;
    struct store *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, "cannot open database", "out of memory");
        return STORE_ERR;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int code = sqlite3_open_v2(path, &s->db, flags, NULL);
    int rc = STORE_OK;
    if (code != SQLITE_OK) {
        set_err(err, "cannot open database", s->db ? sqlite3_errmsg(s->db) : "out of memory");
        rc = s->db ? fail(s, "open", code) : STORE_ERR;
    }
    if (rc == STORE_OK)
        rc = configure(s, err);
    if (rc == STORE_OK)
        rc = migrate(s, err);
    if (rc != STORE_OK) {
        store_close(s);
        return rc;
    }
    *out = s;
    return STORE_OK;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    for (int i = 0; i < AREA_SLOTS; i++)
        sqlite3_finalize(s->area[i].st);
    /* With every statement finalized close cannot be busy; an open
     * transaction is rolled back by SQLite. */
    int code = sqlite3_close(s->db);
    if (code != SQLITE_OK)
        log_error("store close failed", "code=%d", code);
    free(s);
}

int store_ping(struct store *s)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_PING, "ping", &rc);
    if (!st)
        return rc;
    rc = first_row(s, st, "ping", SQLITE_OK);
    if (rc == STORE_OK)
        stmt_done(st);
    return rc == STORE_NOTFOUND ? STORE_ERR : rc;
}

int store_set_lock_wait(struct store *s, int ms)
{
    int code = sqlite3_busy_timeout(s->db, ms);
    return code == SQLITE_OK ? STORE_OK : fail(s, "set_lock_wait", code);
}

int store_schema_version(struct store *s)
{
    return s->version;
}

/* ---- transactions ----------------------------------------------------------- */

int store_begin(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        log_error("store error", "op=begin err=\"a transaction is already open\"");
        return STORE_ERR;
    }
    return run(s, ST_BEGIN, "begin");
}

int store_begin_read(struct store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        log_error("store error", "op=begin_read err=\"a transaction is already open\"");
        return STORE_ERR;
    }
    return run(s, ST_BEGIN_READ, "begin_read");
}

int store_commit(struct store *s)
{
    if (sqlite3_get_autocommit(s->db)) {
        log_error("store error", "op=commit err=\"no transaction is open\"");
        return STORE_ERR;
    }
    int rc = run(s, ST_COMMIT, "commit");
    /* A failed COMMIT can leave the transaction open; callers do not roll
     * back after a failed commit, so end it here. */
    if (rc != STORE_OK && !sqlite3_get_autocommit(s->db))
        (void)run(s, ST_ROLLBACK, "commit.rollback"); /* the commit error wins */
    return rc;
}

int store_rollback(struct store *s)
{
    /* SQLite rolls back on its own after some errors (SQLITE_FULL, …); the
     * caller's intent is then already met. */
    if (sqlite3_get_autocommit(s->db))
        return STORE_OK;
    return run(s, ST_ROLLBACK, "rollback");
}

/* ---- enrollments ------------------------------------------------------------ */

void store_enrollment_free(struct store_enrollment *e)
{
    if (!e)
        return;
    char **texts[] = {
        &e->id, &e->parent_id, &e->type, &e->udid, &e->enrollment_id, &e->user_id,
        &e->user_short_name, &e->user_long_name, &e->topic, &e->serial_number, &e->os_version,
        &e->build_version, &e->product_name, &e->model, &e->model_name, &e->device_name,
        &e->imei, &e->meid, &e->token_hex, &e->push_magic, &e->cert_fp,
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        free(*texts[i]);
    free(e->unlock_token);
    free(e);
}

/* Binds id (?1) and the DEVICE_COLS fields (?2..?18). */
static void bind_device(sqlite3_stmt *st, const struct store_enrollment *e, int *code)
{
    const char *fields[] = {
        e->id, e->parent_id, e->type, e->udid, e->enrollment_id, e->user_id,
        e->user_short_name, e->user_long_name, e->topic, e->serial_number, e->os_version,
        e->build_version, e->product_name, e->model, e->model_name, e->device_name, e->imei,
        e->meid,
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        bind_text(st, (int)i + 1, fields[i], code);
}

static int authenticate_upsert(struct store *s, const struct store_enrollment *e, int64_t now)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_AUTHENTICATE, "enrollment_authenticate", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_device(st, e, &code);
    bind_int(st, 19, e->awaiting_configuration ? 1 : 0, &code);
    bind_text(st, 20, e->cert_fp, &code);
    bind_int(st, 21, now, &code);
    return exec_stmt(s, st, "enrollment_authenticate", code);
}

static int clear_bootstrap(struct store *s, const char *id)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_CLEAR_BOOTSTRAP, "enrollment_authenticate", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    return exec_stmt(s, st, "enrollment_authenticate", code);
}

int store_enrollment_authenticate(struct store *s, const struct store_enrollment *e, int64_t now)
{
    if (!e || !e->id)
        return STORE_ERR;
    int nested = 0;
    int rc = op_begin(s, "enrollment_authenticate", &nested);
    if (rc != STORE_OK)
        return rc;
    rc = authenticate_upsert(s, e, now);
    if (rc == STORE_OK)
        rc = clear_bootstrap(s, e->id);
    return op_end(s, nested, rc, "enrollment_authenticate");
}

/* *status receives 0 when the enrollment does not exist. */
static int enrollment_status(struct store *s, const char *id, int *status, const char *op)
{
    *status = 0;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_STATUS, op, &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    rc = first_row(s, st, op, code);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    *status = sqlite3_column_int(st, 0);
    stmt_done(st);
    return STORE_OK;
}

static int token_update_upsert(struct store *s, const struct store_enrollment *e, int64_t now)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_TOKEN_UPDATE, "enrollment_token_update", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_device(st, e, &code);
    bind_text(st, 19, e->token_hex, &code);
    bind_text(st, 20, e->push_magic, &code);
    bind_blob(st, 21, e->unlock_token, e->unlock_token_len, &code);
    bind_int(st, 22, e->awaiting_configuration ? 1 : 0, &code);
    bind_int(st, 23, now, &code);
    return exec_stmt(s, st, "enrollment_token_update", code);
}

int store_enrollment_token_update(struct store *s, const struct store_enrollment *e, int64_t now,
                                  int *first)
{
    if (first)
        *first = 0;
    if (!e || !e->id)
        return STORE_ERR;
    int nested = 0;
    int rc = op_begin(s, "enrollment_token_update", &nested);
    if (rc != STORE_OK)
        return rc;
    int before = 0;
    rc = enrollment_status(s, e->id, &before, "enrollment_token_update");
    if (rc == STORE_OK)
        rc = token_update_upsert(s, e, now);
    rc = op_end(s, nested, rc, "enrollment_token_update");
    if (rc == STORE_OK && first)
        *first = before != ENROLLMENT_ENROLLED;
    return rc;
}

static int checkout_stmt(struct store *s, enum stmt_id id, const char *eid, int64_t now,
                         int *changed)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, id, "enrollment_checkout", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, eid, &code);
    bind_int(st, 2, now, &code);
    rc = exec_stmt(s, st, "enrollment_checkout", code);
    *changed = rc == STORE_OK ? sqlite3_changes(s->db) : 0;
    return rc;
}

int store_enrollment_checkout(struct store *s, const char *id, int64_t now)
{
    if (!id)
        return STORE_ERR;
    int nested = 0;
    int rc = op_begin(s, "enrollment_checkout", &nested);
    if (rc != STORE_OK)
        return rc;
    int changed = 0;
    rc = checkout_stmt(s, ST_ENR_CHECKOUT, id, now, &changed);
    if (rc == STORE_OK && changed == 0)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK)
        rc = checkout_stmt(s, ST_ENR_CHECKOUT_USERS, id, now, &changed);
    return op_end(s, nested, rc, "enrollment_checkout");
}

/* Builds an enrollment from a row of ENR_COLS. NULL when out of memory. */
static struct store_enrollment *enrollment_from_row(sqlite3_stmt *st)
{
    struct store_enrollment *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    int oom = 0;
    char **device[] = {
        &e->id, &e->parent_id, &e->type, &e->udid, &e->enrollment_id, &e->user_id,
        &e->user_short_name, &e->user_long_name, &e->topic, &e->serial_number, &e->os_version,
        &e->build_version, &e->product_name, &e->model, &e->model_name, &e->device_name,
        &e->imei, &e->meid,
    };
    int col = 0;
    for (size_t i = 0; i < sizeof device / sizeof device[0]; i++)
        *device[i] = column_strdup(st, col++, &oom);
    e->status = sqlite3_column_int(st, col++);
    e->token_hex = column_strdup(st, col++, &oom);
    e->push_magic = column_strdup(st, col++, &oom);
    e->unlock_token = column_blobdup(st, col++, &e->unlock_token_len, &oom);
    e->awaiting_configuration = sqlite3_column_int(st, col++);
    e->cert_fp = column_strdup(st, col++, &oom);
    e->created_at = column_time(st, col++);
    e->authenticated_at = column_time(st, col++);
    e->enrolled_at = column_time(st, col++);
    e->token_updated_at = column_time(st, col++);
    e->last_seen_at = column_time(st, col++);
    e->checked_out_at = column_time(st, col++);
    if (oom) {
        store_enrollment_free(e);
        return NULL;
    }
    return e;
}

int store_enrollment_get(struct store *s, const char *id, struct store_enrollment **out)
{
    *out = NULL;
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_GET, "enrollment_get", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    rc = first_row(s, st, "enrollment_get", code);
    if (rc != STORE_OK)
        return rc;
    *out = enrollment_from_row(st);
    stmt_done(st);
    return *out ? STORE_OK : out_of_memory("enrollment_get");
}

/* Runs an UPDATE/DELETE keyed by its bound values; NOTFOUND when no row
 * matched. */
static int change_one(struct store *s, sqlite3_stmt *st, const char *op, int code)
{
    int rc = exec_stmt(s, st, op, code);
    if (rc == STORE_OK && sqlite3_changes(s->db) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_enrollment_touch(struct store *s, const char *id, int64_t now)
{
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_TOUCH, "enrollment_touch", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    bind_int(st, 2, now, &code);
    bind_int(st, 3, STORE_TOUCH_INTERVAL, &code);
    return change_one(s, st, "enrollment_touch", code);
}

int store_enrollment_by_cert(struct store *s, const char *cert_fp, char **id_out)
{
    *id_out = NULL;
    if (!cert_fp)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_BY_CERT, "enrollment_by_cert", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, cert_fp, &code);
    rc = first_row(s, st, "enrollment_by_cert", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *id_out = column_strdup(st, 0, &oom);
    stmt_done(st);
    return *id_out ? STORE_OK : out_of_memory("enrollment_by_cert");
}

/* "%text%" with LIKE's wildcards and the escape character escaped, so the
 * operator's text matches literally. NULL when out of memory. */
static char *like_pattern(const char *text)
{
    size_t n = strlen(text);
    char *p = malloc(2 * n + 3);
    if (!p)
        return NULL;
    size_t j = 0;
    p[j++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
            p[j++] = '\\';
        p[j++] = text[i];
    }
    p[j++] = '%';
    p[j] = '\0';
    return p;
}

static void bind_filter(sqlite3_stmt *st, const struct store_enrollment_filter *f,
                        const char *pattern, int *code)
{
    bind_text(st, 1, pattern, code);
    bind_text(st, 2, f->serial_number, code);
    bind_int(st, 3, f->status, code);
}

static int count_enrollments(struct store *s, const struct store_enrollment_filter *f,
                             const char *pattern, int64_t *total)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_COUNT, "enrollment_list", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_filter(st, f, pattern, &code);
    rc = first_row(s, st, "enrollment_list", code);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *total = sqlite3_column_int64(st, 0);
    stmt_done(st);
    return STORE_OK;
}

/* Appends one row to a growing array of pointers. */
static int list_push(struct store_enrollment ***list, size_t *n, size_t *cap,
                     struct store_enrollment *e)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct store_enrollment **grown = realloc(*list, ncap * sizeof *grown);
        if (!grown)
            return -1;
        *list = grown;
        *cap = ncap;
    }
    (*list)[(*n)++] = e;
    return 0;
}

static int select_enrollments(struct store *s, const struct store_enrollment_filter *f,
                              const char *pattern, struct store_enrollment ***out, size_t *n)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_LIST, "enrollment_list", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_filter(st, f, pattern, &code);
    bind_int(st, 4, f->limit > 0 ? f->limit : DEFAULT_LIMIT, &code);
    bind_int(st, 5, f->offset > 0 ? f->offset : 0, &code);
    size_t cap = 0;
    while (code == SQLITE_OK && (code = timed_step(st)) == SQLITE_ROW) {
        struct store_enrollment *e = enrollment_from_row(st);
        if (!e || list_push(out, n, &cap, e) < 0) {
            store_enrollment_free(e);
            stmt_done(st);
            return out_of_memory("enrollment_list");
        }
        code = SQLITE_OK;
    }
    rc = code == SQLITE_DONE ? STORE_OK : fail(s, "enrollment_list", code);
    stmt_done(st);
    return rc;
}

int store_enrollment_list(struct store *s, const struct store_enrollment_filter *f,
                          struct store_enrollment ***out, size_t *n, int64_t *total)
{
    static const struct store_enrollment_filter no_filter = {0};
    *out = NULL;
    *n = 0;
    if (!f)
        f = &no_filter;
    char *pattern = NULL;
    if (f->search && *f->search && !(pattern = like_pattern(f->search)))
        return out_of_memory("enrollment_list");
    int rc = select_enrollments(s, f, pattern, out, n);
    if (rc == STORE_OK && total)
        rc = count_enrollments(s, f, pattern, total);
    free(pattern);
    if (rc != STORE_OK) {
        store_enrollment_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_enrollment_list_free(struct store_enrollment **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        store_enrollment_free(list[i]);
    free(list);
}

/* ---- bootstrap tokens ------------------------------------------------------- */

int store_bootstrap_token_set(struct store *s, const char *id, const uint8_t *data, size_t len)
{
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, data ? ST_BOOT_SET : ST_BOOT_DELETE, "bootstrap_token_set", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    if (data)
        bind_blob(st, 2, data, len, &code);
    rc = exec_stmt(s, st, "bootstrap_token_set", code);
    /* The only foreign key here is the enrollment. */
    if (rc == STORE_CONFLICT && s->last_code == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_bootstrap_token_get(struct store *s, const char *id, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_BOOT_GET, "bootstrap_token_get", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    rc = first_row(s, st, "bootstrap_token_get", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *out = column_blobdup(st, 0, len, &oom);
    stmt_done(st);
    return oom ? out_of_memory("bootstrap_token_get") : STORE_OK;
}

/* ---- commands and the queue ------------------------------------------------- */

int store_command_create(struct store *s, const char *uuid, const char *request_type,
                         const uint8_t *payload, size_t len, int64_t now)
{
    if (!uuid || !request_type || !payload)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CMD_CREATE, "command_create", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, uuid, &code);
    bind_text(st, 2, request_type, &code);
    bind_blob(st, 3, payload, len, &code);
    bind_int(st, 4, now, &code);
    return exec_stmt(s, st, "command_create", code);
}

int store_queue_add(struct store *s, const char *enrollment_id, const char *uuid, int64_t now)
{
    if (!enrollment_id || !uuid)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_ADD, "queue_add", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_text(st, 2, uuid, &code);
    bind_int(st, 3, now, &code);
    rc = exec_stmt(s, st, "queue_add", code);
    /* A missing enrollment or command shows up as a foreign-key failure;
     * the primary key failing means it is already queued (CONFLICT). */
    if (rc == STORE_CONFLICT && s->last_code == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = STORE_NOTFOUND;
    return rc;
}

void store_command_free(struct store_command *c)
{
    if (!c)
        return;
    free(c->uuid);
    free(c->request_type);
    free(c->payload);
    free(c);
}

/* Marks the oldest waiting row delivered and returns its uuid (malloc'd). */
static int queue_claim(struct store *s, const char *enrollment_id, int include_notnow,
                       int64_t now, char **uuid)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_CLAIM, "queue_next", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_int(st, 2, include_notnow ? 1 : 0, &code);
    bind_int(st, 3, now, &code);
    rc = first_row(s, st, "queue_next", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *uuid = column_strdup(st, 0, &oom);
    /* SQLite makes every change on the first step and buffers the RETURNING
     * rows; stepping to DONE ends the statement before it is reset. */
    code = timed_step(st);
    rc = code == SQLITE_DONE ? STORE_OK : fail(s, "queue_next", code);
    stmt_done(st);
    if (rc == STORE_OK && !*uuid)
        rc = out_of_memory("queue_next");
    return rc;
}

int store_queue_waiting(struct store *s, const char *enrollment_id, int include_notnow,
                        int *waiting)
{
    *waiting = 0;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_WAITING, "queue_waiting", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_int(st, 2, include_notnow ? 1 : 0, &code);
    rc = first_row(s, st, "queue_waiting", code);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    *waiting = 1;
    stmt_done(st);
    return STORE_OK;
}

static int command_load(struct store *s, struct store_command *c)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CMD_GET, "queue_next", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, c->uuid, &code);
    rc = first_row(s, st, "queue_next", code);
    if (rc == STORE_NOTFOUND)
        return STORE_ERR; /* the foreign key makes this impossible */
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    c->request_type = column_strdup(st, 0, &oom);
    c->payload = column_blobdup(st, 1, &c->payload_len, &oom);
    stmt_done(st);
    return oom ? out_of_memory("queue_next") : STORE_OK;
}

int store_queue_next(struct store *s, const char *enrollment_id, int include_notnow, int64_t now,
                     struct store_command **out)
{
    *out = NULL;
    if (!enrollment_id)
        return STORE_ERR;
    struct store_command *c = calloc(1, sizeof *c);
    if (!c)
        return out_of_memory("queue_next");
    int rc = queue_claim(s, enrollment_id, include_notnow, now, &c->uuid);
    if (rc == STORE_OK)
        rc = command_load(s, c);
    if (rc != STORE_OK) {
        store_command_free(c);
        return rc;
    }
    *out = c;
    return STORE_OK;
}

static int queue_mark(struct store *s, const char *enrollment_id, const char *uuid,
                      const char *status, int64_t now)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_MARK, "queue_report", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_text(st, 2, uuid, &code);
    bind_text(st, 3, status, &code);
    bind_int(st, 4, now, &code);
    return change_one(s, st, "queue_report", code);
}

static int result_add(struct store *s, const char *enrollment_id, const char *uuid,
                      const char *status, const uint8_t *raw, size_t raw_len, int64_t now)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_RESULT_ADD, "queue_report", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_text(st, 2, uuid, &code);
    bind_text(st, 3, status, &code);
    bind_blob(st, 4, raw, raw_len, &code);
    bind_int(st, 5, now, &code);
    return exec_stmt(s, st, "queue_report", code);
}

int store_queue_report(struct store *s, const char *enrollment_id, const char *uuid,
                       const char *status, const uint8_t *raw, size_t raw_len, int64_t now)
{
    if (!enrollment_id || !status)
        return STORE_ERR;
    if (!uuid)
        return STORE_NOTFOUND; /* nothing can be queued under no uuid */
    int nested = 0;
    int rc = op_begin(s, "queue_report", &nested);
    if (rc != STORE_OK)
        return rc;
    rc = queue_mark(s, enrollment_id, uuid, status, now);
    if (rc == STORE_OK)
        rc = result_add(s, enrollment_id, uuid, status, raw, raw_len, now);
    return op_end(s, nested, rc, "queue_report");
}

void store_queue_items_free(struct store_queue_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].uuid);
        free(items[i].request_type);
        free(items[i].status);
        free(items[i].result);
    }
    free(items);
}

static int item_from_row(sqlite3_stmt *st, struct store_queue_item *it)
{
    int oom = 0;
    memset(it, 0, sizeof *it);
    it->uuid = column_strdup(st, 0, &oom);
    it->request_type = column_strdup(st, 1, &oom);
    it->status = column_strdup(st, 2, &oom);
    it->created_at = sqlite3_column_int64(st, 3);
    it->delivered_at = sqlite3_column_int64(st, 4);
    it->updated_at = sqlite3_column_int64(st, 5);
    it->delivery_count = sqlite3_column_int(st, 6);
    it->result = column_blobdup(st, 7, &it->result_len, &oom);
    return oom ? -1 : 0;
}

int store_queue_list(struct store *s, const char *enrollment_id, int64_t limit,
                     struct store_queue_item **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (!enrollment_id)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_LIST, "queue_list", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_int(st, 2, limit > 0 ? limit : DEFAULT_LIMIT, &code);
    size_t cap = 0;
    while (code == SQLITE_OK && (code = timed_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_queue_item *grown = realloc(*items, ncap * sizeof *grown);
            if (!grown)
                break;
            *items = grown;
            cap = ncap;
        }
        /* Count the row before checking it so a partial item is freed too. */
        if (item_from_row(st, &(*items)[(*n)++]) < 0)
            break;
        code = SQLITE_OK;
    }
    if (code == SQLITE_DONE)
        rc = STORE_OK;
    else if (code == SQLITE_ROW)
        rc = out_of_memory("queue_list");
    else
        rc = fail(s, "queue_list", code);
    stmt_done(st);
    if (rc != STORE_OK) {
        store_queue_items_free(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

int store_queue_cancel(struct store *s, const char *enrollment_id, const char *uuid, int64_t now)
{
    (void)now; /* a canceled row is deleted, so there is nothing to stamp */
    if (!enrollment_id || !uuid)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_CANCEL, "queue_cancel", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_text(st, 2, uuid, &code);
    return change_one(s, st, "queue_cancel", code);
}

int store_queue_depth(struct store *s, int64_t *depth)
{
    *depth = 0;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_QUEUE_DEPTH, "queue_depth", &rc);
    if (!st)
        return rc;
    rc = first_row(s, st, "queue_depth", SQLITE_OK);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *depth = sqlite3_column_int64(st, 0);
    stmt_done(st);
    return STORE_OK;
}

/* ---- events and API keys ---------------------------------------------------- */

int store_event_add(struct store *s, const char *enrollment_id, const char *type,
                    const char *detail, int64_t now)
{
    if (!type)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_EVENT_ADD, "event_add", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, enrollment_id, &code);
    bind_text(st, 2, type, &code);
    bind_text(st, 3, detail, &code);
    bind_int(st, 4, now, &code);
    return exec_stmt(s, st, "event_add", code);
}

int store_apikey_add(struct store *s, const char *name, const char *hash, const char *role,
                     int64_t now)
{
    if (!name || !hash || !role)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_APIKEY_ADD, "apikey_add", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, hash, &code);
    bind_text(st, 2, name, &code);
    bind_text(st, 3, role, &code);
    bind_int(st, 4, now, &code);
    return exec_stmt(s, st, "apikey_add", code);
}

int store_apikey_lookup(struct store *s, const char *hash, char **name, char **role)
{
    *name = NULL;
    *role = NULL;
    if (!hash)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_APIKEY_LOOKUP, "apikey_lookup", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, hash, &code);
    rc = first_row(s, st, "apikey_lookup", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *name = column_strdup(st, 0, &oom);
    *role = column_strdup(st, 1, &oom);
    stmt_done(st);
    if (oom) {
        free(*name);
        free(*role);
        *name = *role = NULL;
        return out_of_memory("apikey_lookup");
    }
    return STORE_OK;
}

/* ---- certificates ------------------------------------------------------------ */

void store_cert_free(struct store_cert *c)
{
    if (!c)
        return;
    free(c->serial_hex);
    free(c->subject);
    free(c->fingerprint);
    free(c->enrollment_id);
    free(c->status);
    free(c->revoke_reason);
    free(c->transaction_id);
    free(c->renewed_from);
    free(c->der);
    free(c->csr);
    free(c);
}

int store_cert_add(struct store *s, const struct store_cert *c)
{
    if (!c || !c->serial_hex || !c->subject || !c->status)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_ADD, "cert_add", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, c->serial_hex, &code);
    bind_text(st, 2, c->fingerprint, &code);
    bind_text(st, 3, c->subject, &code);
    bind_int(st, 4, c->not_before, &code);
    bind_int(st, 5, c->not_after, &code);
    bind_text(st, 6, c->enrollment_id, &code);
    bind_text(st, 7, c->status, &code);
    bind_int(st, 8, c->revoked_at, &code);
    bind_text(st, 9, c->revoke_reason, &code);
    bind_text(st, 10, c->transaction_id, &code);
    bind_text(st, 11, c->renewed_from, &code);
    bind_blob(st, 12, c->der, c->der_len, &code);
    bind_blob(st, 13, c->csr, c->csr_len, &code);
    bind_int(st, 14, c->created_at, &code);
    return exec_stmt(s, st, "cert_add", code);
}

/* Builds a record from a row of CERT_COLS (or CERT_LIST_COLS). NULL when out
 * of memory. */
static struct store_cert *cert_from_row(sqlite3_stmt *st)
{
    struct store_cert *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    int oom = 0;
    c->serial_hex = column_strdup(st, 0, &oom);
    c->subject = column_strdup(st, 1, &oom);
    c->fingerprint = column_strdup(st, 2, &oom);
    c->not_before = column_time(st, 3);
    c->not_after = column_time(st, 4);
    c->enrollment_id = column_strdup(st, 5, &oom);
    c->status = column_strdup(st, 6, &oom);
    c->revoked_at = column_time(st, 7);
    c->revoke_reason = column_strdup(st, 8, &oom);
    c->transaction_id = column_strdup(st, 9, &oom);
    c->renewed_from = column_strdup(st, 10, &oom);
    c->created_at = column_time(st, 11);
    c->der = column_blobdup(st, 12, &c->der_len, &oom);
    c->csr = column_blobdup(st, 13, &c->csr_len, &oom);
    if (oom) {
        store_cert_free(c);
        return NULL;
    }
    return c;
}

/* The one-row lookups share this: key bound as ?1. */
static int cert_get(struct store *s, enum stmt_id id, const char *key, const char *op,
                    struct store_cert **out)
{
    *out = NULL;
    if (!key)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, id, op, &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, key, &code);
    rc = first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    *out = cert_from_row(st);
    stmt_done(st);
    return *out ? STORE_OK : out_of_memory(op);
}

int store_cert_status(struct store *s, const char *fp, char status[16])
{
    status[0] = '\0';
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_STATUS_BY_FP, "cert_status", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, fp, &code);
    rc = first_row(s, st, "cert_status", code);
    if (rc != STORE_OK)
        return rc;
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(status, 16, "%s", v ? (const char *)v : "");
    stmt_done(st);
    return STORE_OK;
}

int store_cert_get_by_fingerprint(struct store *s, const char *fp, struct store_cert **out)
{
    return cert_get(s, ST_CERT_BY_FP, fp, "cert_get_by_fingerprint", out);
}

int store_cert_get_by_serial(struct store *s, const char *serial_hex, struct store_cert **out)
{
    return cert_get(s, ST_CERT_BY_SERIAL, serial_hex, "cert_get_by_serial", out);
}

int store_cert_get_by_transaction(struct store *s, const char *transaction_id,
                                  struct store_cert **out)
{
    return cert_get(s, ST_CERT_BY_TID, transaction_id, "cert_get_by_transaction", out);
}

static void bind_cert_filter(sqlite3_stmt *st, const struct store_cert_filter *f, int *code)
{
    bind_text(st, 1, f->status, code);
    bind_int(st, 2, f->expiring_before, code);
    bind_int(st, 3, f->valid_at, code);
    bind_text(st, 4, f->enrollment_id, code);
}

static int count_certs(struct store *s, const struct store_cert_filter *f, int64_t *total)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_COUNT, "cert_list", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_cert_filter(st, f, &code);
    rc = first_row(s, st, "cert_list", code);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *total = sqlite3_column_int64(st, 0);
    stmt_done(st);
    return STORE_OK;
}

static int cert_list_push(struct store_cert ***list, size_t *n, size_t *cap, struct store_cert *c)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct store_cert **grown = realloc(*list, ncap * sizeof *grown);
        if (!grown)
            return -1;
        *list = grown;
        *cap = ncap;
    }
    (*list)[(*n)++] = c;
    return 0;
}

static int select_certs(struct store *s, const struct store_cert_filter *f,
                        struct store_cert ***out, size_t *n)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_LIST, "cert_list", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_cert_filter(st, f, &code);
    /* SQLite reads a negative LIMIT as "no limit". */
    bind_int(st, 5, f->limit == 0 ? DEFAULT_LIMIT : f->limit < 0 ? -1 : f->limit, &code);
    bind_int(st, 6, f->offset > 0 ? f->offset : 0, &code);
    size_t cap = 0;
    while (code == SQLITE_OK && (code = timed_step(st)) == SQLITE_ROW) {
        struct store_cert *c = cert_from_row(st);
        if (!c || cert_list_push(out, n, &cap, c) < 0) {
            store_cert_free(c);
            stmt_done(st);
            return out_of_memory("cert_list");
        }
        code = SQLITE_OK;
    }
    rc = code == SQLITE_DONE ? STORE_OK : fail(s, "cert_list", code);
    stmt_done(st);
    return rc;
}

int store_cert_list(struct store *s, const struct store_cert_filter *f, struct store_cert ***out,
                    size_t *n, int64_t *total)
{
    static const struct store_cert_filter no_filter = {0};
    *out = NULL;
    *n = 0;
    if (!f)
        f = &no_filter;
    int rc = select_certs(s, f, out, n);
    if (rc == STORE_OK && total)
        rc = count_certs(s, f, total);
    if (rc != STORE_OK) {
        store_cert_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_cert_list_free(struct store_cert **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        store_cert_free(list[i]);
    free(list);
}

/* After a status-guarded UPDATE matched nothing: NOTFOUND when the serial is
 * unknown, CONFLICT when it exists in another status. */
static int cert_why_unchanged(struct store *s, const char *serial_hex, const char *op)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_STATUS, op, &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, serial_hex, &code);
    rc = first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    stmt_done(st);
    return STORE_CONFLICT;
}

/* Runs a status-guarded UPDATE keyed by serial (?1), already bound. */
static int cert_transition(struct store *s, sqlite3_stmt *st, const char *serial_hex,
                           const char *op, int code)
{
    int rc = change_one(s, st, op, code);
    return rc == STORE_NOTFOUND ? cert_why_unchanged(s, serial_hex, op) : rc;
}

int store_cert_revoke(struct store *s, const char *serial_hex, const char *reason, int64_t now)
{
    if (!serial_hex)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_REVOKE, "cert_revoke", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, serial_hex, &code);
    bind_int(st, 2, now, &code);
    bind_text(st, 3, reason, &code);
    return cert_transition(s, st, serial_hex, "cert_revoke", code);
}

int store_cert_approve(struct store *s, const char *serial_hex, const char *fingerprint,
                       const uint8_t *der, size_t der_len, int64_t not_before, int64_t not_after)
{
    if (!serial_hex)
        return STORE_NOTFOUND;
    if (!fingerprint || !der)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_APPROVE, "cert_approve", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, serial_hex, &code);
    bind_text(st, 2, fingerprint, &code);
    bind_blob(st, 3, der, der_len, &code);
    bind_int(st, 4, not_before, &code);
    bind_int(st, 5, not_after, &code);
    return cert_transition(s, st, serial_hex, "cert_approve", code);
}

int store_cert_reject(struct store *s, const char *serial_hex, int64_t now)
{
    (void)now; /* the record keeps created_at; a rejection needs no stamp of its own */
    if (!serial_hex)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_REJECT, "cert_reject", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, serial_hex, &code);
    return cert_transition(s, st, serial_hex, "cert_reject", code);
}

int store_cert_set_enrollment(struct store *s, const char *fp, const char *enrollment_id)
{
    if (!fp)
        return STORE_NOTFOUND;
    if (!enrollment_id)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CERT_SET_ENROLLMENT, "cert_set_enrollment", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, fp, &code);
    bind_text(st, 2, enrollment_id, &code);
    return change_one(s, st, "cert_set_enrollment", code);
}

/* ---- challenges -------------------------------------------------------------- */

int store_challenge_add(struct store *s, const char *hash, const char *created_for, int64_t now,
                        int64_t expires_at)
{
    if (!hash)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CHAL_ADD, "challenge_add", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, hash, &code);
    bind_text(st, 2, created_for, &code);
    bind_int(st, 3, now, &code);
    bind_int(st, 4, expires_at, &code);
    return exec_stmt(s, st, "challenge_add", code);
}

/* Why consume matched nothing: unknown, used, or (otherwise) expired. */
static int challenge_why_refused(struct store *s, const char *hash)
{
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CHAL_STATE, "challenge_consume", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, hash, &code);
    rc = first_row(s, st, "challenge_consume", code);
    if (rc != STORE_OK)
        return rc;
    int used = sqlite3_column_int(st, 0);
    stmt_done(st);
    return used ? STORE_CHALLENGE_USED : STORE_CHALLENGE_EXPIRED;
}

int store_challenge_consume(struct store *s, const char *hash, int64_t now)
{
    if (!hash)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_CHAL_CONSUME, "challenge_consume", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, hash, &code);
    bind_int(st, 2, now, &code);
    rc = change_one(s, st, "challenge_consume", code);
    return rc == STORE_NOTFOUND ? challenge_why_refused(s, hash) : rc;
}

/* ---- renewal rebinding ------------------------------------------------------- */

int store_enrollment_rebind(struct store *s, const char *id, const char *old_fp,
                            const char *new_fp)
{
    if (!id || !old_fp || !new_fp)
        return STORE_ERR;
    int rc = STORE_OK;
    sqlite3_stmt *st = stmt_get(s, ST_ENR_REBIND, "enrollment_rebind", &rc);
    if (!st)
        return rc;
    int code = SQLITE_OK;
    bind_text(st, 1, id, &code);
    bind_text(st, 2, old_fp, &code);
    bind_text(st, 3, new_fp, &code);
    rc = change_one(s, st, "enrollment_rebind", code);
    if (rc != STORE_NOTFOUND)
        return rc;
    int status = 0;
    rc = enrollment_status(s, id, &status, "enrollment_rebind");
    if (rc != STORE_OK)
        return rc;
    return status ? STORE_CONFLICT : STORE_NOTFOUND;
}
