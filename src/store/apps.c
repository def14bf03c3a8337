/* apps.c: store_apps.h on sql.h (migration 7): enrollments' AccessRights,
 * the command lifecycle beside the queue (deadlines and expiry, cancel
 * everywhere, retries, per-command status), hosted and App Store apps and
 * their VPP redemption code pools. Called by api/typed.c, api/apps.c,
 * core/queue.c (expiry before each delivery) and the expiry sweep job. */
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "store/store.h"

/* ---- access rights ---------------------------------------------------------- */

static const char sql_rights_set[] = "UPDATE enrollments SET access_rights = ?2 WHERE id = ?1";
static const char sql_rights_get[] = "SELECT access_rights FROM enrollments WHERE id = ?1";

int store_enrollment_access_rights_set(struct store *s, const char *id, int64_t rights)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_rights_set, "access_rights_set", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, rights, &code);
    rc = sql_exec(s, st, "access_rights_set", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_enrollment_access_rights_get(struct store *s, const char *id, int64_t *rights)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_rights_get, "access_rights_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "access_rights_get", code);
    if (rc != STORE_OK)
        return rc;
    *rights = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

/* ---- command lifecycle --------------------------------------------------------- */

static const char sql_meta_set[] =
    "INSERT INTO command_meta (uuid, expires_at, ttl, retry_of, created_by)"
    " VALUES (?1, NULLIF(?2, 0), NULLIF(?3, 0), ?4, ?5)"
    " ON CONFLICT (uuid) DO UPDATE SET expires_at = excluded.expires_at, ttl = excluded.ttl,"
    " retry_of = excluded.retry_of, created_by = excluded.created_by";
static const char sql_meta_get[] =
    "SELECT c.request_type, c.created_at, COALESCE(m.expires_at, 0), COALESCE(m.ttl, 0),"
    " m.retry_of, m.created_by FROM commands c LEFT JOIN command_meta m ON m.uuid = c.uuid"
    " WHERE c.uuid = ?1";

/* A row waits to be delivered while it was never sent or was NotNow'd; a
 * row sent and not yet answered is the device's now and never expires.
 * "+active": the statements on one command (expire, cancel everywhere, the
 * failed targets) seek queue_key by its uuid; the unary plus keeps SQLite
 * from taking queue_device's active range instead (all the fleet's waiting,
 * or answered, rows) as an equally good index. */
#define WAITING_UNSENT "+active = 1 AND (delivered_at IS NULL OR status = 'NotNow')"
static const char sql_expire_due[] =
    "UPDATE queue SET status = 'Expired', active = 0, updated_at = ?1"
    " WHERE " WAITING_UNSENT " AND command_uuid IN"
    " (SELECT uuid FROM command_meta WHERE swept = 0 AND expires_at <= ?1)";
static const char sql_expire_swept[] =
    "UPDATE command_meta SET swept = 1 WHERE swept = 0 AND expires_at <= ?1";
static const char sql_cancel_all[] =
    "UPDATE queue SET status = 'Canceled', active = 0, updated_at = ?2"
    " WHERE command_uuid = ?1 AND +active = 1";
static const char sql_command_exists[] = "SELECT 1 FROM commands WHERE uuid = ?1";
static const char sql_targets[] =
    "SELECT enrollment_id, COALESCE(status, 'Pending'), COALESCE(delivered_at, 0),"
    " COALESCE(updated_at, 0), retried_as FROM queue WHERE command_uuid = ?1"
    " ORDER BY enrollment_id LIMIT ?2";
static const char sql_failed_targets[] =
    "SELECT enrollment_id FROM queue WHERE command_uuid = ?1 AND +active = 0"
    " AND status IN ('Error', 'CommandFormatError', 'Expired') AND retried_as IS NULL"
    " ORDER BY enrollment_id";
static const char sql_mark_retried[] =
    "UPDATE queue SET retried_as = ?3 WHERE enrollment_id = ?1 AND command_uuid = ?2";
static const char sql_pending_type[] =
    "SELECT 1 FROM queue q JOIN commands c ON c.uuid = q.command_uuid"
    " WHERE q.enrollment_id = ?1 AND q.active = 1 AND c.request_type = ?2 LIMIT 1";

int store_command_meta_set(struct store *s, const char *uuid, int64_t expires_at, int64_t ttl,
                           const char *retry_of, const char *created_by)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_meta_set, "command_meta_set", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    sql_bind_int(st, 2, expires_at, &code);
    sql_bind_int(st, 3, ttl, &code);
    sql_bind_text(st, 4, retry_of, &code);
    sql_bind_text(st, 5, created_by, &code);
    rc = sql_exec(s, st, "command_meta_set", code);
    if (rc == STORE_CONFLICT && sql_last_was_fk(s))
        rc = STORE_NOTFOUND;
    return rc;
}

void store_command_meta_free(struct store_command_meta *m)
{
    if (!m)
        return;
    free(m->request_type);
    free(m->retry_of);
    free(m->created_by);
    free(m);
}

int store_command_meta_get(struct store *s, const char *uuid, struct store_command_meta **out)
{
    *out = NULL;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_meta_get, "command_meta_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    rc = sql_first_row(s, st, "command_meta_get", code);
    if (rc != STORE_OK)
        return rc;
    struct store_command_meta *m = calloc(1, sizeof *m);
    int oom = !m;
    if (m) {
        m->request_type = sql_col_strdup(st, 0, &oom);
        m->created_at = sql_col_int(st, 1);
        m->expires_at = sql_col_int(st, 2);
        m->ttl = sql_col_int(st, 3);
        m->retry_of = sql_col_strdup(st, 4, &oom);
        m->created_by = sql_col_strdup(st, 5, &oom);
    }
    sql_done(st);
    if (oom) {
        store_command_meta_free(m);
        return sql_out_of_memory("command_meta_get");
    }
    *out = m;
    return STORE_OK;
}

int store_queue_expire_due(struct store *s, int64_t now, int64_t *n)
{
    int nested = 0;
    int rc = sql_atomic_begin(s, "queue_expire_due", &nested);
    if (rc != STORE_OK)
        return rc;
    int64_t changed = 0;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_expire_due, "queue_expire_due", &rc);
    if (st) {
        sql_bind_int(st, 1, now, &code);
        rc = sql_exec(s, st, "queue_expire_due", code);
        changed = rc == STORE_OK ? sql_changes(s) : 0;
    }
    if (rc == STORE_OK && (st = sql_prepare(s, sql_expire_swept, "queue_expire_due", &rc))) {
        code = 0;
        sql_bind_int(st, 1, now, &code);
        rc = sql_exec(s, st, "queue_expire_due", code);
    }
    rc = sql_atomic_end(s, nested, rc, "queue_expire_due");
    if (n)
        *n = rc == STORE_OK ? changed : 0;
    return rc;
}

static int command_exists(struct store *s, const char *uuid)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_command_exists, "command_exists", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    rc = sql_first_row(s, st, "command_exists", code);
    if (rc == STORE_OK)
        sql_done(st);
    return rc;
}

int store_command_cancel_all(struct store *s, const char *uuid, int64_t now, int64_t *n)
{
    *n = 0;
    int rc = command_exists(s, uuid);
    if (rc != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_cancel_all, "command_cancel_all", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    sql_bind_int(st, 2, now, &code);
    rc = sql_exec(s, st, "command_cancel_all", code);
    if (rc == STORE_OK)
        *n = sql_changes(s);
    return rc;
}

void store_command_targets_free(struct store_command_target *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].enrollment_id);
        free(t[i].status);
        free(t[i].retried_as);
    }
    free(t);
}

int store_command_targets(struct store *s, const char *uuid, int64_t limit,
                          struct store_command_target **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = command_exists(s, uuid);
    if (rc != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_targets, "command_targets", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    sql_bind_int(st, 2, limit > 0 ? limit : 1000, &code);
    size_t cap = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "command_targets", code)) == 1) {
        code = 0;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_command_target *g = realloc(*out, ncap * sizeof *g);
            if (!g) {
                oom = 1;
                break;
            }
            *out = g;
            cap = ncap;
        }
        struct store_command_target *t = &(*out)[(*n)++];
        memset(t, 0, sizeof *t);
        t->enrollment_id = sql_col_strdup(st, 0, &oom);
        t->status = sql_col_strdup(st, 1, &oom);
        t->delivered_at = sql_col_int(st, 2);
        t->updated_at = sql_col_int(st, 3);
        t->retried_as = sql_col_strdup(st, 4, &oom);
        if (oom)
            break;
    }
    if (row == 1) {
        sql_done(st);
        rc = sql_out_of_memory("command_targets");
    } else {
        rc = row;
    }
    if (rc != STORE_OK) {
        store_command_targets_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* Collects column 0 of every row into a malloc'd array of strings. */
static int collect_strings(struct store *s, struct sql_stmt *st, int code, const char *op,
                           char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, op, code)) == 1) {
        code = 0;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **g = realloc(*out, ncap * sizeof *g);
            if (!g) {
                oom = 1;
                break;
            }
            *out = g;
            cap = ncap;
        }
        (*out)[*n] = sql_col_strdup(st, 0, &oom);
        if (oom)
            break;
        (*n)++;
    }
    int rc = row;
    if (row == 1) {
        sql_done(st);
        rc = sql_out_of_memory(op);
    }
    if (rc != STORE_OK) {
        for (size_t i = 0; i < *n; i++)
            free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int store_command_failed_targets(struct store *s, const char *uuid, char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    int rc = command_exists(s, uuid);
    if (rc != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_failed_targets, "command_failed_targets", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    return collect_strings(s, st, code, "command_failed_targets", ids, n);
}

int store_command_mark_retried(struct store *s, const char *enrollment_id, const char *uuid,
                               const char *retry_uuid)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_mark_retried, "command_mark_retried", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    sql_bind_text(st, 3, retry_uuid, &code);
    return sql_exec(s, st, "command_mark_retried", code);
}

static const char sql_target_facts[] =
    "SELECT e.status, e.serial_number, e.unlock_token IS NOT NULL, e.access_rights,"
    " COALESCE(d.supervised, -1), COALESCE(d.app_store_allowed, -1)"
    " FROM enrollments e LEFT JOIN inv_device d ON d.enrollment_id = e.id WHERE e.id = ?1";

#define FACT_COLS                                                                                  \
    "e.status, e.serial_number, e.unlock_token IS NOT NULL, e.access_rights,"                     \
    " COALESCE(d.supervised, -1), COALESCE(d.app_store_allowed, -1)"
static const char sql_target_facts_many_sqlite[] =
    "SELECT j.key, " FACT_COLS " FROM json_each(?1) j JOIN enrollments e ON e.id = j.value"
    " LEFT JOIN inv_device d ON d.enrollment_id = e.id";
static const char sql_target_facts_many_pg[] =
    "SELECT j.n - 1, " FACT_COLS
    " FROM json_array_elements_text(CAST(?1 AS json)) WITH ORDINALITY AS j (value, n)"
    " JOIN enrollments e ON e.id = j.value LEFT JOIN inv_device d ON d.enrollment_id = e.id";
/* The same without the inventory row (supervision, App Store read as
 * unknown): one B-tree seek fewer per device. */
#define FACT_COLS_E "e.status, e.serial_number, e.unlock_token IS NOT NULL, e.access_rights, -1, -1"
static const char sql_target_facts_many_e_sqlite[] =
    "SELECT j.key, " FACT_COLS_E " FROM json_each(?1) j JOIN enrollments e ON e.id = j.value";
static const char sql_target_facts_many_e_pg[] =
    "SELECT j.n - 1, " FACT_COLS_E
    " FROM json_array_elements_text(CAST(?1 AS json)) WITH ORDINALITY AS j (value, n)"
    " JOIN enrollments e ON e.id = j.value";

static void facts_from_row(struct sql_stmt *st, int first, struct store_target_facts *f)
{
    memset(f, 0, sizeof *f);
    f->status = (int)sql_col_int(st, first);
    const char *serial = sql_col_text(st, first + 1);
    if (serial) {
        size_t n = strlen(serial);
        n = n < sizeof f->serial ? n : sizeof f->serial - 1;
        memcpy(f->serial, serial, n);
        f->serial[n] = '\0';
    }
    f->has_unlock_token = sql_col_int(st, first + 2) != 0;
    f->access_rights = sql_col_int(st, first + 3);
    int64_t sup = sql_col_int(st, first + 4), store = sql_col_int(st, first + 5);
    f->supervised = sup < 0 ? -1 : sup != 0;
    f->app_store_allowed = store < 0 ? -1 : store != 0;
}

int store_command_target_facts_many(struct store *s, const char *ids_json, size_t n,
                                    int inventory, struct store_target_facts *facts, int *found)
{
    memset(found, 0, n * sizeof *found);
    int pg = sql_dialect(s) == STORE_DIALECT_POSTGRES;
    const char *sql = inventory ? (pg ? sql_target_facts_many_pg : sql_target_facts_many_sqlite)
                                : (pg ? sql_target_facts_many_e_pg : sql_target_facts_many_e_sqlite);
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "command_target_facts", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, ids_json, &code);
    int row;
    while ((row = sql_next_row(s, st, "command_target_facts", code)) == 1) {
        code = 0;
        int64_t i = sql_col_int(st, 0);
        if (i >= 0 && (size_t)i < n) {
            facts_from_row(st, 1, &facts[i]);
            found[i] = 1;
        }
    }
    return row;
}

int store_command_target_facts(struct store *s, const char *id, struct store_target_facts *f)
{
    memset(f, 0, sizeof *f);
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_target_facts, "command_target_facts", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "command_target_facts", code);
    if (rc != STORE_OK)
        return rc;
    f->status = (int)sql_col_int(st, 0);
    const char *serial = sql_col_text(st, 1);
    if (serial) {
        size_t n = strlen(serial);
        n = n < sizeof f->serial ? n : sizeof f->serial - 1;
        memcpy(f->serial, serial, n);
        f->serial[n] = '\0';
    }
    f->has_unlock_token = sql_col_int(st, 2) != 0;
    f->access_rights = sql_col_int(st, 3);
    int64_t sup = sql_col_int(st, 4), store = sql_col_int(st, 5);
    f->supervised = sup < 0 ? -1 : sup != 0;
    f->app_store_allowed = store < 0 ? -1 : store != 0;
    sql_done(st);
    return STORE_OK;
}

static const char sql_request_type[] = "SELECT request_type FROM commands WHERE uuid = ?1";

int store_command_request_type(struct store *s, const char *uuid, char *out, size_t n)
{
    out[0] = '\0';
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_request_type, "command_request_type", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    rc = sql_first_row(s, st, "command_request_type", code);
    if (rc != STORE_OK)
        return rc;
    const char *t = sql_col_text(st, 0);
    size_t len = t ? strlen(t) : 0;
    len = len < n ? len : n - 1;
    if (t)
        memcpy(out, t, len);
    out[len] = '\0';
    sql_done(st);
    return STORE_OK;
}

/* One statement for the whole fleet: the ids arrive as one JSON array. The
 * queue has no foreign keys (migration 14): joining enrollments and the
 * command is what keeps an unknown device or command out, one lookup per
 * row (the command's is made once). */
static const char sql_queue_add_many_sqlite[] =
    "INSERT INTO queue (enrollment_id, command_uuid, created_at)"
    " SELECT e.id, c.uuid, ?3 FROM commands c, json_each(?1) j"
    " JOIN enrollments e ON e.id = j.value WHERE c.uuid = ?2"
    " ON CONFLICT (enrollment_id, command_uuid) DO NOTHING";
static const char sql_queue_add_many_pg[] =
    "INSERT INTO queue (enrollment_id, command_uuid, created_at)"
    " SELECT e.id, c.uuid, ?3 FROM commands c, json_array_elements_text(CAST(?1 AS json)) j"
    " JOIN enrollments e ON e.id = j.value WHERE c.uuid = ?2"
    " ON CONFLICT (enrollment_id, command_uuid) DO NOTHING";

/* Runs one of the bulk queue inserts (?1 ids, ?2 uuid, ?3 now, ?4 the
 * checked-out status when the statement has it, ?5 needs' rights, ?6 and
 * ?7 its supervised and app_store when one is set) atomically: CONFLICT,
 * with nothing kept, unless every one of the n ids got its row. */
static int queue_add_many_run(struct store *s, const char *sql, const char *ids_json, size_t n,
                              const char *uuid, int64_t now, int with_status,
                              const struct store_target_needs *needs)
{
    int nested = 0;
    int rc = sql_atomic_begin(s, "queue_add_many", &nested);
    if (rc != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "queue_add_many", &rc);
    if (st) {
        sql_bind_text(st, 1, ids_json, &code);
        sql_bind_text(st, 2, uuid, &code);
        sql_bind_int(st, 3, now, &code);
        if (with_status)
            sql_bind_int(st, 4, ENROLLMENT_CHECKED_OUT, &code);
        if (needs)
            sql_bind_int(st, 5, needs->rights, &code);
        if (needs && (needs->supervised || needs->app_store)) {
            sql_bind_int(st, 6, needs->supervised != 0, &code);
            sql_bind_int(st, 7, needs->app_store != 0, &code);
        }
        rc = sql_exec(s, st, "queue_add_many", code);
        if (rc == STORE_OK && sql_changes(s) != (int64_t)n)
            rc = STORE_CONFLICT;
    }
    return sql_atomic_end(s, nested, rc, "queue_add_many");
}

int store_queue_add_many(struct store *s, const char *ids_json, size_t n, const char *uuid,
                         int64_t now)
{
    const char *sql = sql_dialect(s) == STORE_DIALECT_POSTGRES ? sql_queue_add_many_pg
                                                                : sql_queue_add_many_sqlite;
    return queue_add_many_run(s, sql, ids_json, n, uuid, now, 0, NULL);
}

/* The same for ids not checked yet: only enrollments that exist and are
 * not checked out (?4) get a row, so a short count says some id could not
 * take it. */
static const char sql_queue_add_enrolled_sqlite[] =
    "INSERT INTO queue (enrollment_id, command_uuid, created_at)"
    " SELECT e.id, c.uuid, ?3 FROM commands c, json_each(?1) j"
    " JOIN enrollments e ON e.id = j.value WHERE c.uuid = ?2 AND e.status <> ?4"
    " ON CONFLICT (enrollment_id, command_uuid) DO NOTHING";
static const char sql_queue_add_enrolled_pg[] =
    "INSERT INTO queue (enrollment_id, command_uuid, created_at)"
    " SELECT e.id, c.uuid, ?3 FROM commands c, json_array_elements_text(CAST(?1 AS json)) j"
    " JOIN enrollments e ON e.id = j.value WHERE c.uuid = ?2 AND e.status <> ?4"
    " ON CONFLICT (enrollment_id, command_uuid) DO NOTHING";

int store_queue_add_many_enrolled(struct store *s, const char *ids_json, size_t n,
                                  const char *uuid, int64_t now)
{
    const char *sql = sql_dialect(s) == STORE_DIALECT_POSTGRES ? sql_queue_add_enrolled_pg
                                                                : sql_queue_add_enrolled_sqlite;
    return queue_add_many_run(s, sql, ids_json, n, uuid, now, 1, NULL);
}

/* The same, and each enrollment has what the typed checks ask (api/typed.c
 * check_target): every AccessRights bit of ?5; when ?6 (?7), supervision
 * (the App Store) not known to be off in its inventory row, unknown being
 * let through. The inventory row is joined only when one of them is asked. */
#define ADD_IF_SELECT(from_ids)                                                                    \
    "INSERT INTO queue (enrollment_id, command_uuid, created_at)"                                  \
    " SELECT e.id, c.uuid, ?3 FROM commands c, " from_ids " JOIN enrollments e ON e.id = j.value"
#define ADD_IF_WHERE                                                                               \
    " WHERE c.uuid = ?2 AND e.status <> ?4 AND (e.access_rights & ?5) = ?5"
#define ADD_IF_INVENTORY                                                                           \
    " AND (?6 = 0 OR COALESCE(d.supervised, -1) <> 0)"                                             \
    " AND (?7 = 0 OR COALESCE(d.app_store_allowed, -1) <> 0)"
#define ADD_IF_END " ON CONFLICT (enrollment_id, command_uuid) DO NOTHING"
#define IDS_SQLITE "json_each(?1) j"
#define IDS_PG "json_array_elements_text(CAST(?1 AS json)) j"
#define INV_JOIN " LEFT JOIN inv_device d ON d.enrollment_id = e.id"
static const char *const sql_queue_add_if[2][2] = {
    {ADD_IF_SELECT(IDS_SQLITE) ADD_IF_WHERE ADD_IF_END,
     ADD_IF_SELECT(IDS_SQLITE) INV_JOIN ADD_IF_WHERE ADD_IF_INVENTORY ADD_IF_END},
    {ADD_IF_SELECT(IDS_PG) ADD_IF_WHERE ADD_IF_END,
     ADD_IF_SELECT(IDS_PG) INV_JOIN ADD_IF_WHERE ADD_IF_INVENTORY ADD_IF_END},
};

int store_queue_add_many_if(struct store *s, const char *ids_json, size_t n, const char *uuid,
                            int64_t now, const struct store_target_needs *needs)
{
    int pg = sql_dialect(s) == STORE_DIALECT_POSTGRES;
    int inventory = needs->supervised || needs->app_store;
    return queue_add_many_run(s, sql_queue_add_if[pg][inventory], ids_json, n, uuid, now, 1,
                              needs);
}

static const char sql_command_payload[] = "SELECT payload FROM commands WHERE uuid = ?1";

int store_command_payload(struct store *s, const char *uuid, uint8_t **payload, size_t *len)
{
    *payload = NULL;
    *len = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_command_payload, "command_payload", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    rc = sql_first_row(s, st, "command_payload", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *payload = sql_col_blobdup(st, 0, len, &oom);
    sql_done(st);
    return oom ? sql_out_of_memory("command_payload") : STORE_OK;
}

int store_queue_has_pending_type(struct store *s, const char *enrollment_id,
                                 const char *request_type, int *pending)
{
    *pending = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_pending_type, "queue_pending_type", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, request_type, &code);
    rc = sql_first_row(s, st, "queue_pending_type", code);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    *pending = 1;
    sql_done(st);
    return STORE_OK;
}

/* The device's enrollment row locked until the transaction ends, taken
 * before the pending check of a destructive command: two transactions (on
 * any node) cannot both find nothing pending for the device and both queue.
 * A row lock rather than an advisory lock: it takes no room in
 * PostgreSQL's lock table, whatever the number of devices. SQLite needs
 * none: BEGIN IMMEDIATE already makes one writer at a time. */
static const char sql_device_lock_pg[] = "SELECT 1 FROM enrollments WHERE id = ?1 FOR UPDATE";

int store_queue_lock_device(struct store *s, const char *enrollment_id)
{
    if (sql_dialect(s) != STORE_DIALECT_POSTGRES)
        return STORE_OK;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_device_lock_pg, "queue_device_lock", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, enrollment_id, &code);
    rc = sql_first_row(s, st, "queue_device_lock", code);
    if (rc == STORE_OK)
        sql_done(st);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/* ---- apps ------------------------------------------------------------------------ */

#define APP_COLS                                                                                   \
    "a.id, a.kind, a.name, a.bundle_id, a.version, COALESCE(a.itunes_store_id, 0), a.ipa_size,"    \
    " a.ipa_sha256, a.created_at,"                                                                 \
    " (SELECT count(*) FROM app_codes c WHERE c.app_id = a.id AND c.used_at IS NULL),"             \
    " (SELECT count(*) FROM app_codes c WHERE c.app_id = a.id AND c.used_at IS NOT NULL)"
static const char sql_app_add[] =
    "INSERT INTO apps (id, kind, name, bundle_id, version, itunes_store_id, ipa, ipa_size,"
    " ipa_sha256, created_at) VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, 0), ?7, ?8, ?9, ?10)";
static const char sql_app_get[] = "SELECT " APP_COLS " FROM apps a WHERE a.id = ?1";
static const char sql_app_list[] = "SELECT " APP_COLS " FROM apps a ORDER BY a.created_at, a.id";
static const char sql_app_ipa[] = "SELECT ipa FROM apps WHERE id = ?1 AND ipa IS NOT NULL";
static const char sql_app_delete[] = "DELETE FROM apps WHERE id = ?1";
static const char sql_code_add[] =
    "INSERT INTO app_codes (app_id, code, created_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (app_id, code) DO NOTHING";
static const char sql_code_held[] =
    "SELECT code FROM app_codes WHERE app_id = ?1 AND enrollment_id = ?2 LIMIT 1";
/* One statement picks and assigns the code; on PostgreSQL SKIP LOCKED lets
 * concurrent takers pass over a row another is taking, and the used_at
 * condition is checked again on the locked row. */
#define TAKE_HEAD                                                                                  \
    "UPDATE app_codes SET used_at = ?3, enrollment_id = ?2 WHERE used_at IS NULL AND id ="          \
    " (SELECT id FROM app_codes WHERE app_id = ?1 AND used_at IS NULL ORDER BY id LIMIT 1"
#define TAKE_TAIL ") RETURNING code"
static const char sql_code_take_sqlite[] = TAKE_HEAD TAKE_TAIL;
static const char sql_code_take_pg[] = TAKE_HEAD " FOR UPDATE SKIP LOCKED" TAKE_TAIL;

void store_app_free(struct store_app *a)
{
    if (!a)
        return;
    free(a->id);
    free(a->kind);
    free(a->name);
    free(a->bundle_id);
    free(a->version);
    free(a->ipa_sha256);
    free(a);
}

void store_app_list_free(struct store_app **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_app_free(list[i]);
    free(list);
}

int store_app_add(struct store *s, const struct store_app *a, const uint8_t *ipa, size_t ipa_len)
{
    if (!a->id || !a->kind)
        return STORE_ERR;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_app_add, "app_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, a->id, &code);
    sql_bind_text(st, 2, a->kind, &code);
    sql_bind_text(st, 3, a->name, &code);
    sql_bind_text(st, 4, a->bundle_id, &code);
    sql_bind_text(st, 5, a->version, &code);
    sql_bind_int(st, 6, a->itunes_store_id, &code);
    sql_bind_blob(st, 7, ipa, ipa_len, &code);
    sql_bind_int(st, 8, ipa ? (int64_t)ipa_len : 0, &code);
    sql_bind_text(st, 9, a->ipa_sha256, &code);
    sql_bind_int(st, 10, a->created_at, &code);
    return sql_exec(s, st, "app_add", code);
}

static struct store_app *app_from_row(struct sql_stmt *st, int *oom)
{
    struct store_app *a = calloc(1, sizeof *a);
    if (!a) {
        *oom = 1;
        return NULL;
    }
    a->id = sql_col_strdup(st, 0, oom);
    a->kind = sql_col_strdup(st, 1, oom);
    a->name = sql_col_strdup(st, 2, oom);
    a->bundle_id = sql_col_strdup(st, 3, oom);
    a->version = sql_col_strdup(st, 4, oom);
    a->itunes_store_id = sql_col_int(st, 5);
    a->ipa_size = sql_col_int(st, 6);
    a->ipa_sha256 = sql_col_strdup(st, 7, oom);
    a->created_at = sql_col_int(st, 8);
    a->codes_free = sql_col_int(st, 9);
    a->codes_used = sql_col_int(st, 10);
    return a;
}

int store_app_get(struct store *s, const char *id, struct store_app **out)
{
    *out = NULL;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_app_get, "app_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "app_get", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    struct store_app *a = app_from_row(st, &oom);
    sql_done(st);
    if (oom) {
        store_app_free(a);
        return sql_out_of_memory("app_get");
    }
    *out = a;
    return STORE_OK;
}

int store_app_list(struct store *s, struct store_app ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql_app_list, "app_list", &rc);
    if (!st)
        return rc;
    size_t cap = 0;
    int row, oom = 0, code = 0;
    while ((row = sql_next_row(s, st, "app_list", code)) == 1) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_app **g = realloc(*out, ncap * sizeof *g);
            if (!g) {
                oom = 1;
                break;
            }
            *out = g;
            cap = ncap;
        }
        (*out)[(*n)++] = app_from_row(st, &oom);
        if (oom)
            break;
    }
    rc = row;
    if (row == 1) {
        sql_done(st);
        rc = sql_out_of_memory("app_list");
    }
    if (rc != STORE_OK) {
        store_app_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int store_app_ipa(struct store *s, const char *id, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_app_ipa, "app_ipa", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "app_ipa", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *out = sql_col_blobdup(st, 0, len, &oom);
    sql_done(st);
    return oom ? sql_out_of_memory("app_ipa") : STORE_OK;
}

int store_app_delete(struct store *s, const char *id)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_app_delete, "app_delete", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_exec(s, st, "app_delete", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_app_codes_add(struct store *s, const char *app_id, const char *const *codes, size_t n,
                        int64_t now, size_t *added)
{
    *added = 0;
    struct store_app *a = NULL;
    int rc = store_app_get(s, app_id, &a);
    store_app_free(a);
    if (rc != STORE_OK)
        return rc;
    int nested = 0;
    rc = sql_atomic_begin(s, "app_codes_add", &nested);
    if (rc != STORE_OK)
        return rc;
    size_t count = 0;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        int code = 0;
        struct sql_stmt *st = sql_prepare(s, sql_code_add, "app_codes_add", &rc);
        if (!st)
            break;
        sql_bind_text(st, 1, app_id, &code);
        sql_bind_text(st, 2, codes[i], &code);
        sql_bind_int(st, 3, now, &code);
        rc = sql_exec(s, st, "app_codes_add", code);
        if (rc == STORE_OK)
            count += (size_t)sql_changes(s);
    }
    rc = sql_atomic_end(s, nested, rc, "app_codes_add");
    if (rc == STORE_OK)
        *added = count;
    return rc;
}

static int code_query(struct store *s, const char *sql, const char *app_id,
                      const char *enrollment_id, int64_t now, int with_now, char **code_out)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "app_code_take", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, app_id, &code);
    sql_bind_text(st, 2, enrollment_id, &code);
    if (with_now)
        sql_bind_int(st, 3, now, &code);
    rc = sql_first_row(s, st, "app_code_take", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *code_out = sql_col_strdup(st, 0, &oom);
    /* Finish the statement (an UPDATE … RETURNING buffers its rows). */
    int row = sql_next_row(s, st, "app_code_take", 0);
    if (row == 1) {
        sql_done(st);
        row = STORE_OK;
    }
    if (oom || !*code_out) {
        free(*code_out);
        *code_out = NULL;
        return sql_out_of_memory("app_code_take");
    }
    return row;
}

int store_app_code_take(struct store *s, const char *app_id, const char *enrollment_id,
                        int64_t now, char **code)
{
    *code = NULL;
    int rc = code_query(s, sql_code_held, app_id, enrollment_id, now, 0, code);
    if (rc != STORE_NOTFOUND)
        return rc;
    const char *sql =
        sql_dialect(s) == STORE_DIALECT_POSTGRES ? sql_code_take_pg : sql_code_take_sqlite;
    return code_query(s, sql, app_id, enrollment_id, now, 1, code);
}
