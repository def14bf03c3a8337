/* push.c: the store area for APNs: push certificates by topic and each
 * enrollment's push state (migration 4). Written once on sql.h for every
 * backend; called by core/push.c (the push thread), core/push_certs.c
 * (import) and the API. */
#include "store/store.h"
#include "store/sql.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_pushcert_free(struct store_pushcert *c)
{
    if (!c)
        return;
    free(c->topic);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->subject);
    free(c->serial);
    free(c->fingerprint);
    free(c->disabled_reason);
    free(c);
}

void store_pushcert_list_free(struct store_pushcert **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_pushcert_free(list[i]);
    free(list);
}

int store_pushcert_put(struct store *s, const struct store_pushcert *c, int64_t now)
{
    static const char sql[] =
        "INSERT INTO push_certs (topic, cert_pem, key_pem, subject, serial, fingerprint,"
        " not_before, not_after, created_at, updated_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)"
        " ON CONFLICT (topic) DO UPDATE SET cert_pem = excluded.cert_pem,"
        " key_pem = excluded.key_pem, subject = excluded.subject, serial = excluded.serial,"
        " fingerprint = excluded.fingerprint, not_before = excluded.not_before,"
        " not_after = excluded.not_after, updated_at = excluded.updated_at,"
        " disabled_reason = NULL, disabled_at = NULL, warned_days = NULL";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.cert_put", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, c->topic, &code);
    sql_bind_text(st, 2, c->cert_pem, &code);
    sql_bind_text(st, 3, c->key_pem, &code);
    sql_bind_text(st, 4, c->subject, &code);
    sql_bind_text(st, 5, c->serial, &code);
    sql_bind_text(st, 6, c->fingerprint, &code);
    sql_bind_int(st, 7, c->not_before, &code);
    sql_bind_int(st, 8, c->not_after, &code);
    sql_bind_int(st, 9, now, &code);
    return sql_exec(s, st, "push.cert_put", code);
}

#define CERT_COLS                                                                             \
    "topic, cert_pem, subject, serial, fingerprint, not_before, not_after, created_at,"     \
    " updated_at, disabled_reason, disabled_at, warned_days"

static struct store_pushcert *read_cert_row(struct sql_stmt *st, int with_key)
{
    struct store_pushcert *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    int oom = 0;
    c->topic = sql_col_strdup(st, 0, &oom);
    c->cert_pem = sql_col_strdup(st, 1, &oom);
    c->subject = sql_col_strdup(st, 2, &oom);
    c->serial = sql_col_strdup(st, 3, &oom);
    c->fingerprint = sql_col_strdup(st, 4, &oom);
    c->not_before = sql_col_int(st, 5);
    c->not_after = sql_col_int(st, 6);
    c->created_at = sql_col_int(st, 7);
    c->updated_at = sql_col_int(st, 8);
    c->disabled_reason = sql_col_strdup(st, 9, &oom);
    c->disabled_at = sql_col_int(st, 10);
    c->warned_days = (int)sql_col_int(st, 11);
    if (with_key)
        c->key_pem = sql_col_strdup(st, 12, &oom);
    if (oom) {
        store_pushcert_free(c);
        return NULL;
    }
    return c;
}

int store_pushcert_get(struct store *s, const char *topic, struct store_pushcert **out)
{
    static const char sql[] = "SELECT " CERT_COLS ", key_pem FROM push_certs WHERE topic = ?1";
    *out = NULL;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.cert_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, topic, &code);
    rc = sql_first_row(s, st, "push.cert_get", code);
    if (rc != STORE_OK)
        return rc;
    *out = read_cert_row(st, 1);
    sql_done(st);
    return *out ? STORE_OK : sql_out_of_memory("push.cert_get");
}

int store_pushcert_list(struct store *s, int with_keys, struct store_pushcert ***out, size_t *n)
{
    static const char sql[] = "SELECT " CERT_COLS ", key_pem FROM push_certs ORDER BY topic";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql, "push.cert_list", &rc);
    if (!st)
        return rc;
    struct store_pushcert **list = NULL;
    size_t count = 0, cap = 0;
    int row;
    while ((row = sql_next_row(s, st, "push.cert_list", 0)) == 1) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct store_pushcert **grown = realloc(list, ncap * sizeof *grown);
            if (!grown) {
                sql_done(st);
                store_pushcert_list_free(list, count);
                return sql_out_of_memory("push.cert_list");
            }
            list = grown;
            cap = ncap;
        }
        list[count] = read_cert_row(st, with_keys);
        if (!list[count]) {
            sql_done(st);
            store_pushcert_list_free(list, count);
            return sql_out_of_memory("push.cert_list");
        }
        count++;
    }
    if (row < 0) {
        store_pushcert_list_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

int store_pushcert_topic_default(struct store *s, char *topic, size_t n)
{
    static const char sql[] =
        "SELECT topic FROM push_certs WHERE disabled_reason IS NULL"
        " ORDER BY not_after DESC, topic LIMIT 1";
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql, "push.topic_default", &rc);
    if (!st)
        return rc;
    rc = sql_first_row(s, st, "push.topic_default", 0);
    if (rc != STORE_OK)
        return rc;
    const char *t = sql_col_text(st, 0);
    size_t len = t ? strlen(t) : 0;
    if (!t || len >= n)
        rc = STORE_CONFLICT;
    else
        memcpy(topic, t, len + 1);
    sql_done(st);
    return rc;
}

int store_pushcert_disable(struct store *s, const char *topic, const char *reason, int64_t now)
{
    static const char sql[] =
        "UPDATE push_certs SET disabled_reason = ?2, disabled_at = ?3 WHERE topic = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.cert_disable", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, topic, &code);
    sql_bind_text(st, 2, reason, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_exec(s, st, "push.cert_disable", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_pushcert_set_warned(struct store *s, const char *topic, int days)
{
    static const char sql[] = "UPDATE push_certs SET warned_days = ?2 WHERE topic = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.cert_warned", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, topic, &code);
    sql_bind_int(st, 2, days, &code);
    return sql_exec(s, st, "push.cert_warned", code);
}

int store_push_topic_devices(struct store *s, const char *topic, const char *except, int64_t *n)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM enrollments WHERE status = 2 AND topic IS NOT NULL"
        " AND (CAST(?1 AS TEXT) IS NULL OR topic = ?1)"
        " AND (CAST(?2 AS TEXT) IS NULL OR topic <> ?2)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.topic_devices", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, topic, &code);
    sql_bind_text(st, 2, except, &code);
    rc = sql_first_row(s, st, "push.topic_devices", code);
    if (rc != STORE_OK)
        return rc;
    *n = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

void store_push_target_free(struct store_push_target *t)
{
    free(t); /* its strings live in the same block (read_target_row) */
}

#define TARGET_COLS                                                                        \
    "SELECT e.id, e.status, e.topic, e.token_hex, e.push_magic, e.token_updated_at,"       \
    " e.last_seen_at, p.last_push_at, p.last_status, p.last_result, p.last_apns_id,"       \
    " p.pushes, p.failures, p.unregistered_at, p.unregistered_token, p.backoff_until"      \
    " FROM enrollments e LEFT JOIN push_state p ON p.enrollment_id = e.id"

/* The target on st's current row; NULL when out of memory. */
/* One allocation holds the target and its strings (the push service reads
 * thousands a second, and frees them on another thread): the strings are
 * copied after the struct, and store_push_target_free frees the block. */
static struct store_push_target *read_target_row(struct sql_stmt *st)
{
    static const int str_cols[] = {0, 2, 3, 4, 9, 10, 14};
    const char *v[7];
    size_t len[7], total = sizeof(struct store_push_target);
    for (size_t i = 0; i < 7; i++) {
        v[i] = sql_col_text(st, str_cols[i]);
        len[i] = v[i] ? strlen(v[i]) + 1 : 0;
        total += len[i];
    }
    struct store_push_target *t = calloc(1, total);
    if (!t)
        return NULL;
    char *p = (char *)(t + 1);
    char **dst[7] = {&t->id, &t->topic, &t->token_hex, &t->push_magic, &t->last_result,
                     &t->last_apns_id, &t->unregistered_token};
    for (size_t i = 0; i < 7; i++)
        if (v[i]) {
            memcpy(p, v[i], len[i]);
            *dst[i] = p;
            p += len[i];
        }
    t->status = (int)sql_col_int(st, 1);
    t->token_updated_at = sql_col_int(st, 5);
    t->last_seen_at = sql_col_int(st, 6);
    t->last_push_at = sql_col_int(st, 7);
    t->last_status = (int)sql_col_int(st, 8);
    t->pushes = sql_col_int(st, 11);
    t->failures = sql_col_int(st, 12);
    t->unregistered_at = sql_col_int(st, 13);
    t->backoff_until = sql_col_int(st, 15);
    return t;
}

int store_push_target_get(struct store *s, const char *id, struct store_push_target **out)
{
    static const char sql[] = TARGET_COLS " WHERE e.id = ?1";
    *out = NULL;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.target_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "push.target_get", code);
    if (rc != STORE_OK)
        return rc;
    struct store_push_target *t = read_target_row(st);
    sql_done(st);
    if (!t)
        return sql_out_of_memory("push.target_get");
    *out = t;
    return STORE_OK;
}

#define TARGETS_CHUNK 50

/* One query for up to TARGETS_CHUNK ids (unused parameters bound NULL,
 * which match nothing); a row goes to every index asking for its id. */
static int targets_chunk(struct store *s, const char *const *ids, size_t n,
                         struct store_push_target **out)
{
    static const char sql[] = TARGET_COLS " WHERE e.id IN ("
        " ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
        " ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30,"
        " ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40, ?41, ?42, ?43, ?44,"
        " ?45, ?46, ?47, ?48, ?49, ?50)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.targets_get", &rc);
    if (!st)
        return rc;
    for (size_t i = 0; i < TARGETS_CHUNK; i++)
        sql_bind_text(st, (int)i + 1, i < n ? ids[i] : NULL, &code);
    int row;
    size_t from = 0; /* rows tend to come in the ids' order: look there first */
    while ((row = sql_next_row(s, st, "push.targets_get", code)) == 1) {
        code = 0;
        const char *id = sql_col_text(st, 0);
        size_t start = from;
        for (size_t k = 0; id && k < n; k++) {
            size_t i = (start + k) % n;
            if (out[i] || strcmp(ids[i], id) != 0)
                continue;
            if (!(out[i] = read_target_row(st))) {
                sql_done(st);
                return sql_out_of_memory("push.targets_get");
            }
            from = i + 1;
        }
    }
    return row < 0 ? row : STORE_OK;
}

int store_push_targets_get(struct store *s, const char *const *ids, size_t n,
                           struct store_push_target **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    for (size_t i = 0; i < n; i += TARGETS_CHUNK) {
        size_t k = n - i < TARGETS_CHUNK ? n - i : TARGETS_CHUNK;
        int rc = targets_chunk(s, ids + i, k, out + i);
        if (rc != STORE_OK) {
            for (size_t j = 0; j < n; j++) {
                store_push_target_free(out[j]);
                out[j] = NULL;
            }
            return rc;
        }
    }
    return STORE_OK;
}

int store_push_target_unregistered(const struct store_push_target *t)
{
    return t->unregistered_at && t->unregistered_token && t->token_hex &&
           strcmp(t->unregistered_token, t->token_hex) == 0 &&
           t->token_updated_at <= t->unregistered_at;
}

int store_push_record(struct store *s, const char *id, int64_t now, int status, const char *result,
                      const char *apns_id, const char *unregistered_token, int64_t backoff_until)
{
    /* ?6 NULL keeps an earlier unregistered mark: a later "not sent" outcome
     * does not make the token usable again; only a TokenUpdate does. */
    static const char sql[] =
        "INSERT INTO push_state (enrollment_id, last_push_at, last_status, last_result,"
        " last_apns_id, pushes, failures, unregistered_at, unregistered_token, backoff_until)"
        " VALUES (?1, ?2, ?3, ?4, ?5, CASE WHEN ?3 > 0 THEN 1 ELSE 0 END,"
        " CASE WHEN ?3 = 200 THEN 0 ELSE 1 END,"
        " CASE WHEN CAST(?6 AS TEXT) IS NULL THEN NULL ELSE ?2 END, ?6, ?7)"
        " ON CONFLICT (enrollment_id) DO UPDATE SET last_push_at = excluded.last_push_at,"
        " last_status = excluded.last_status, last_result = excluded.last_result,"
        " last_apns_id = excluded.last_apns_id,"
        " pushes = push_state.pushes + excluded.pushes,"
        " failures = push_state.failures + excluded.failures,"
        " unregistered_at = COALESCE(excluded.unregistered_at, push_state.unregistered_at),"
        " unregistered_token = COALESCE(excluded.unregistered_token, push_state.unregistered_token),"
        " backoff_until = excluded.backoff_until";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.record", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, now, &code);
    sql_bind_int(st, 3, status, &code);
    sql_bind_text(st, 4, result, &code);
    sql_bind_text(st, 5, apns_id, &code);
    sql_bind_text(st, 6, unregistered_token, &code);
    if (backoff_until)
        sql_bind_int(st, 7, backoff_until, &code);
    else
        sql_bind_null(st, 7, &code);
    return sql_exec(s, st, "push.record", code);
}

/* store_push_record_many's statement: RECORD_ROWS rows of store_push_record's
 * upsert, ?1 the shared time and six parameters per row (97 in all: the
 * PostgreSQL layer takes at most 100). Built once into a static buffer
 * (sql_prepare keys statements by their text's address). */
#define RECORD_ROWS 16
static char record_many_sql[RECORD_ROWS * 190 + 1024];
static pthread_once_t record_many_once = PTHREAD_ONCE_INIT;

static void record_many_build(void)
{
    char *p = record_many_sql, *end = record_many_sql + sizeof record_many_sql;
    p += snprintf(p, (size_t)(end - p),
                  "INSERT INTO push_state (enrollment_id, last_push_at, last_status, last_result,"
                  " last_apns_id, pushes, failures, unregistered_at, unregistered_token,"
                  " backoff_until) VALUES");
    for (int r = 0; r < RECORD_ROWS; r++) {
        int b = 2 + r * 6; /* id, status, result, apns_id, token, backoff */
        p += snprintf(p, (size_t)(end - p),
                      "%s (?%d, ?1, ?%d, ?%d, ?%d, CASE WHEN ?%d > 0 THEN 1 ELSE 0 END,"
                      " CASE WHEN ?%d = 200 THEN 0 ELSE 1 END,"
                      " CASE WHEN CAST(?%d AS TEXT) IS NULL THEN NULL ELSE ?1 END, ?%d, ?%d)",
                      r ? "," : "", b, b + 1, b + 2, b + 3, b + 1, b + 1, b + 4, b + 4, b + 5);
    }
    snprintf(p, (size_t)(end - p),
             " ON CONFLICT (enrollment_id) DO UPDATE SET last_push_at = excluded.last_push_at,"
             " last_status = excluded.last_status, last_result = excluded.last_result,"
             " last_apns_id = excluded.last_apns_id,"
             " pushes = push_state.pushes + excluded.pushes,"
             " failures = push_state.failures + excluded.failures,"
             " unregistered_at = COALESCE(excluded.unregistered_at, push_state.unregistered_at),"
             " unregistered_token = COALESCE(excluded.unregistered_token,"
             " push_state.unregistered_token),"
             " backoff_until = excluded.backoff_until");
}

static int record_one(struct store *s, const struct store_push_outcome *o, int64_t now)
{
    return store_push_record(s, o->id, now, o->status, o->result, o->apns_id,
                             o->unregistered_token, o->backoff_until);
}

/* Whether a failed statement must be fenced by a savepoint: on PostgreSQL
 * it aborts the caller's transaction; SQLite undoes just the statement. */
static int needs_savepoint(struct store *s)
{
    return sql_dialect(s) == STORE_DIALECT_POSTGRES;
}

/* RECORD_ROWS outcomes in one statement (in a savepoint where needed), so
 * that a failure leaves nothing behind to retry row by row. */
static int record_rows(struct store *s, const struct store_push_outcome *o, int64_t now)
{
    int nested = 0, fence = needs_savepoint(s), rc = STORE_OK;
    if (fence && (rc = sql_atomic_begin(s, "push.record_many", &nested)) != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, record_many_sql, "push.record_many", &rc);
    if (st) {
        sql_bind_int(st, 1, now, &code);
        for (int r = 0; r < RECORD_ROWS; r++) {
            int b = 2 + r * 6;
            sql_bind_text(st, b, o[r].id, &code);
            sql_bind_int(st, b + 1, o[r].status, &code);
            sql_bind_text(st, b + 2, o[r].result, &code);
            sql_bind_text(st, b + 3, o[r].apns_id, &code);
            sql_bind_text(st, b + 4, o[r].unregistered_token, &code);
            if (o[r].backoff_until)
                sql_bind_int(st, b + 5, o[r].backoff_until, &code);
            else
                sql_bind_null(st, b + 5, &code);
        }
        rc = sql_exec(s, st, "push.record_many", code);
    }
    return fence ? sql_atomic_end(s, nested, rc, "push.record_many") : rc;
}

int store_push_record_many(struct store *s, const struct store_push_outcome *o, size_t n,
                           int64_t now)
{
    pthread_once(&record_many_once, record_many_build);
    int first = STORE_OK;
    size_t i = 0;
    while (i < n) {
        /* A full chunk without a repeated id goes as one statement
         * (PostgreSQL refuses to upsert one row twice in a statement). */
        uint32_t h[RECORD_ROWS];
        size_t k = 0;
        int repeat = 0;
        while (k < RECORD_ROWS && i + k < n && !repeat) {
            uint32_t x = 2166136261u;
            for (const char *c = o[i + k].id; *c; c++)
                x = (x ^ (unsigned char)*c) * 16777619u;
            h[k] = x;
            for (size_t j = 0; j < k && !repeat; j++)
                repeat = h[j] == x && strcmp(o[i + j].id, o[i + k].id) == 0;
            if (!repeat)
                k++;
        }
        int rc = k == RECORD_ROWS ? record_rows(s, o + i, now) : STORE_ERR;
        if (rc == STORE_OK) {
            i += k;
            continue;
        }
        /* A short chunk row by row; a failed one too, each row in a
         * savepoint so that on PostgreSQL the bad row does not abort the
         * caller's transaction. */
        int fence = k == RECORD_ROWS && needs_savepoint(s);
        for (size_t j = 0; j < k; j++) {
            int nested = 0, r1 = STORE_OK;
            if (fence)
                r1 = sql_atomic_begin(s, "push.record", &nested);
            if (r1 == STORE_OK)
                r1 = record_one(s, &o[i + j], now);
            if (fence)
                r1 = sql_atomic_end(s, nested, r1, "push.record");
            if (r1 != STORE_OK && first == STORE_OK)
                first = r1;
        }
        i += k;
    }
    return first;
}

int store_push_due(struct store *s, int64_t now, int64_t silent_before, int64_t pushed_before,
                   int64_t limit, char ***ids, size_t *n)
{
    static const char sql[] =
        "SELECT e.id FROM enrollments e LEFT JOIN push_state p ON p.enrollment_id = e.id"
        " WHERE e.status = 2 AND e.token_hex IS NOT NULL"
        " AND COALESCE(e.last_seen_at, 0) < ?2"
        " AND COALESCE(p.last_push_at, 0) < ?3"
        " AND COALESCE(p.backoff_until, 0) <= ?1"
        " AND NOT (p.unregistered_token IS NOT NULL AND p.unregistered_token = e.token_hex"
        "          AND COALESCE(e.token_updated_at, 0) <= p.unregistered_at)"
        " AND EXISTS (SELECT 1 FROM queue q WHERE q.enrollment_id = e.id AND q.active = 1)"
        " ORDER BY e.id LIMIT ?4";
    *ids = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "push.due", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    sql_bind_int(st, 2, silent_before, &code);
    sql_bind_int(st, 3, pushed_before, &code);
    sql_bind_int(st, 4, limit > 0 ? limit : 1000, &code);
    char **list = NULL;
    size_t count = 0, cap = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "push.due", code)) == 1) {
        code = 0;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **grown = realloc(list, ncap * sizeof *grown);
            if (!grown) {
                oom = 1;
                sql_done(st);
                break;
            }
            list = grown;
            cap = ncap;
        }
        list[count] = sql_col_strdup(st, 0, &oom);
        if (oom) {
            sql_done(st);
            break;
        }
        count++;
    }
    if (oom || row < 0) {
        for (size_t i = 0; i < count; i++)
            free(list[i]);
        free(list);
        return oom ? sql_out_of_memory("push.due") : row;
    }
    *ids = list;
    *n = count;
    return STORE_OK;
}
