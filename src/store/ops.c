/* ops.c: the store area for operators (store_ops.h): admin users, API key management, the append-only
 * audit log, webhooks with their persisted delivery queue, and the
 * dashboard's figures. Written once on sql.h for every backend (migration 8). */
#include "store/store.h"
#include "store/sql.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

/* Runs a one-row-changing statement: NOTFOUND when no row changed. */
static int exec_one(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    int rc = sql_exec(s, st, op, code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

/* ---- admin users ---------------------------------------------------------- */

void store_admin_user_clear(struct store_admin_user *u)
{
    if (!u)
        return;
    free(u->name);
    free(u->role);
    free(u->password_hash);
    memset(u, 0, sizeof *u);
}

void store_admin_users_free(struct store_admin_user *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_admin_user_clear(&list[i]);
    free(list);
}

int store_admin_user_add(struct store *s, const char *name, const char *password_hash,
                         const char *role, int64_t now)
{
    static const char sql[] = "INSERT INTO admin_users (name, password_hash, role, created_at)"
                              " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.user_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_text(st, 2, password_hash, &code);
    sql_bind_text(st, 3, role, &code);
    sql_bind_int(st, 4, now, &code);
    rc = exec_one(s, st, "ops.user_add", code);
    return rc == STORE_NOTFOUND ? STORE_CONFLICT : rc;
}

static int read_user(struct sql_stmt *st, struct store_admin_user *u, int with_hash)
{
    int oom = 0;
    memset(u, 0, sizeof *u);
    u->name = sql_col_strdup(st, 0, &oom);
    u->role = sql_col_strdup(st, 1, &oom);
    u->created_at = sql_col_int(st, 2);
    u->last_login_at = sql_col_int(st, 3);
    if (with_hash)
        u->password_hash = sql_col_strdup(st, 4, &oom);
    return oom ? -1 : 0;
}

int store_admin_user_get(struct store *s, const char *name, struct store_admin_user *out)
{
    static const char sql[] =
        "SELECT name, role, created_at, last_login_at, password_hash"
        " FROM admin_users WHERE name = ?1";
    int rc = STORE_OK, code = 0;
    memset(out, 0, sizeof *out);
    struct sql_stmt *st = sql_prepare(s, sql, "ops.user_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    rc = sql_first_row(s, st, "ops.user_get", code);
    if (rc != STORE_OK)
        return rc;
    int bad = read_user(st, out, 1);
    sql_done(st);
    if (bad) {
        store_admin_user_clear(out);
        return sql_out_of_memory("ops.user_get");
    }
    return STORE_OK;
}

int store_admin_user_list(struct store *s, struct store_admin_user **out, size_t *n)
{
    static const char sql[] =
        "SELECT name, role, created_at, last_login_at FROM admin_users ORDER BY name";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.user_list", &rc);
    if (!st)
        return rc;
    struct store_admin_user *list = NULL;
    size_t cap = 0, count = 0;
    int row, code = 0;
    while ((row = sql_next_row(s, st, "ops.user_list", code)) == 1) {
        if (array_grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            read_user(st, &list[count++], 0) < 0) {
            sql_done(st);
            store_admin_users_free(list, count);
            return sql_out_of_memory("ops.user_list");
        }
    }
    if (row < 0) {
        store_admin_users_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

int store_admin_user_update(struct store *s, const char *name, const char *password_hash,
                            const char *role)
{
    static const char sql[] =
        "UPDATE admin_users SET password_hash = COALESCE(CAST(?2 AS TEXT), password_hash),"
        " role = COALESCE(CAST(?3 AS TEXT), role) WHERE name = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.user_update", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_text(st, 2, password_hash, &code);
    sql_bind_text(st, 3, role, &code);
    return exec_one(s, st, "ops.user_update", code);
}

int store_admin_user_delete(struct store *s, const char *name)
{
    static const char sql[] = "DELETE FROM admin_users WHERE name = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.user_delete", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    return exec_one(s, st, "ops.user_delete", code);
}

int store_admin_user_signin_ok(struct store *s, const char *name, int64_t now)
{
    static const char sql[] = "UPDATE admin_users SET last_login_at = ?2 WHERE name = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.signin_ok", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_int(st, 2, now, &code);
    return exec_one(s, st, "ops.signin_ok", code);
}

static int count_query(struct store *s, const char *sql, const char *op, const char *arg,
                       int64_t *count)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    if (arg)
        sql_bind_text(st, 1, arg, &code);
    rc = sql_first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    *count = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

int store_web_throttle_unlock(struct store *s, const char *realm, const char *key)
{
    static const char sql[] = "UPDATE web_throttle SET failures = 0, locked_until = 0"
                              " WHERE realm = ?1 AND key = ?2";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.throttle_unlock", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, realm, &code);
    sql_bind_text(st, 2, key, &code);
    return sql_exec(s, st, "ops.throttle_unlock", code);
}

int store_admin_user_count(struct store *s, int64_t *count)
{
    static const char sql[] = "SELECT COUNT(*) FROM admin_users";
    return count_query(s, sql, "ops.user_count", NULL, count);
}

/* ---- API keys ------------------------------------------------------------- */

void store_apikeys_free(struct store_apikey *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].id);
        free(list[i].name);
        free(list[i].role);
    }
    free(list);
}

int store_apikey_list(struct store *s, struct store_apikey **out, size_t *n)
{
    static const char sql[] = "SELECT substr(hash, 1, 16), name, role, created_at, last_used_at"
                              " FROM api_keys ORDER BY created_at, hash";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.apikey_list", &rc);
    if (!st)
        return rc;
    struct store_apikey *list = NULL;
    size_t cap = 0, count = 0;
    int row, code = 0;
    while ((row = sql_next_row(s, st, "ops.apikey_list", code)) == 1) {
        int oom = array_grow((void **)&list, &cap, count, sizeof *list);
        if (!oom) {
            struct store_apikey *k = &list[count++];
            memset(k, 0, sizeof *k);
            k->id = sql_col_strdup(st, 0, &oom);
            k->name = sql_col_strdup(st, 1, &oom);
            k->role = sql_col_strdup(st, 2, &oom);
            k->created_at = sql_col_int(st, 3);
            k->last_used_at = sql_col_int(st, 4);
        }
        if (oom) {
            sql_done(st);
            store_apikeys_free(list, count);
            return sql_out_of_memory("ops.apikey_list");
        }
    }
    if (row < 0) {
        store_apikeys_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

int store_apikey_delete(struct store *s, const char *id)
{
    static const char sql[] = "DELETE FROM api_keys WHERE substr(hash, 1, 16) = ?1";
    if (!id || strlen(id) != 16)
        return STORE_NOTFOUND;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.apikey_delete", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    return exec_one(s, st, "ops.apikey_delete", code);
}

int store_apikey_touch(struct store *s, const char *hash, int64_t now)
{
    static const char sql[] = "UPDATE api_keys SET last_used_at = ?2 WHERE hash = ?1"
                              " AND (last_used_at IS NULL OR last_used_at < ?2 - 60)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.apikey_touch", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, hash, &code);
    sql_bind_int(st, 2, now, &code);
    return sql_exec(s, st, "ops.apikey_touch", code);
}

int store_apikey_count_role(struct store *s, const char *role, int64_t *count)
{
    static const char sql[] = "SELECT COUNT(*) FROM api_keys WHERE role = ?1";
    return count_query(s, sql, "ops.apikey_count", role, count);
}

/* ---- audit log ------------------------------------------------------------ */

void store_audit_free(struct store_audit *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        struct store_audit *a = &list[i];
        free(a->actor);
        free(a->role);
        free(a->method);
        free(a->path);
        free(a->action);
        free(a->target);
        free(a->remote_addr);
        free(a->request_id);
    }
    free(list);
}

int store_audit_add(struct store *s, const struct store_audit *a)
{
    static const char sql[] =
        "INSERT INTO audit_log (at, actor, role, method, path, action, target, status,"
        " remote_addr, request_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.audit_add", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, a->at, &code);
    sql_bind_text(st, 2, a->actor ? a->actor : "anonymous", &code);
    sql_bind_text(st, 3, a->role, &code);
    sql_bind_text(st, 4, a->method, &code);
    sql_bind_text(st, 5, a->path, &code);
    sql_bind_text(st, 6, a->action ? a->action : "", &code);
    sql_bind_text(st, 7, a->target, &code);
    sql_bind_int(st, 8, a->status, &code);
    sql_bind_text(st, 9, a->remote_addr, &code);
    sql_bind_text(st, 10, a->request_id, &code);
    return sql_exec(s, st, "ops.audit_add", code);
}

static int read_audit(struct sql_stmt *st, struct store_audit *a)
{
    int oom = 0;
    memset(a, 0, sizeof *a);
    a->id = sql_col_int(st, 0);
    a->at = sql_col_int(st, 1);
    a->actor = sql_col_strdup(st, 2, &oom);
    a->role = sql_col_strdup(st, 3, &oom);
    a->method = sql_col_strdup(st, 4, &oom);
    a->path = sql_col_strdup(st, 5, &oom);
    a->action = sql_col_strdup(st, 6, &oom);
    a->target = sql_col_strdup(st, 7, &oom);
    a->status = (int)sql_col_int(st, 8);
    a->remote_addr = sql_col_strdup(st, 9, &oom);
    a->request_id = sql_col_strdup(st, 10, &oom);
    return oom ? -1 : 0;
}

int store_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit **out,
                     size_t *n)
{
    static const char sql[] =
        "SELECT id, at, actor, role, method, path, action, target, status, remote_addr,"
        " request_id FROM audit_log"
        " WHERE (CAST(?1 AS TEXT) IS NULL OR actor = ?1)"
        " AND (CAST(?2 AS TEXT) IS NULL OR method = ?2)"
        " AND (CAST(?3 AS TEXT) IS NULL OR target LIKE '%' || ?3 || '%' OR path LIKE '%' || ?3 || '%')"
        " AND at >= ?4 AND (?5 = 0 OR at < ?5) AND status >= ?6"
        " ORDER BY id DESC LIMIT ?7 OFFSET ?8";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.audit_list", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, f->actor, &code);
    sql_bind_text(st, 2, f->method, &code);
    sql_bind_text(st, 3, f->target, &code);
    sql_bind_int(st, 4, f->since, &code);
    sql_bind_int(st, 5, f->until, &code);
    sql_bind_int(st, 6, f->min_status, &code);
    sql_bind_int(st, 7, f->limit > 0 ? f->limit : 100, &code);
    sql_bind_int(st, 8, f->offset, &code);
    struct store_audit *list = NULL;
    size_t cap = 0, count = 0;
    int row;
    while ((row = sql_next_row(s, st, "ops.audit_list", code)) == 1) {
        code = 0;
        if (array_grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            read_audit(st, &list[count++]) < 0) {
            sql_done(st);
            store_audit_free(list, count);
            return sql_out_of_memory("ops.audit_list");
        }
    }
    if (row < 0) {
        store_audit_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

/* ---- webhooks ------------------------------------------------------------- */

void store_webhook_clear(struct store_webhook *h)
{
    if (!h)
        return;
    free(h->url);
    free(h->secret);
    free(h->events);
    free(h->description);
    memset(h, 0, sizeof *h);
}

void store_webhooks_free(struct store_webhook *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_webhook_clear(&list[i]);
    free(list);
}

int store_webhook_add(struct store *s, const struct store_webhook *h, int64_t now, int64_t *id)
{
    static const char sql[] =
        "INSERT INTO webhooks (url, secret, events, enabled, description, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.webhook_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, h->url, &code);
    sql_bind_text(st, 2, h->secret, &code);
    sql_bind_text(st, 3, h->events ? h->events : "*", &code);
    sql_bind_int(st, 4, h->enabled ? 1 : 0, &code);
    sql_bind_text(st, 5, h->description, &code);
    sql_bind_int(st, 6, now, &code);
    rc = sql_first_row(s, st, "ops.webhook_add", code);
    if (rc != STORE_OK)
        return rc;
    *id = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

static int read_webhook(struct sql_stmt *st, struct store_webhook *h)
{
    int oom = 0;
    memset(h, 0, sizeof *h);
    h->id = sql_col_int(st, 0);
    h->url = sql_col_strdup(st, 1, &oom);
    h->secret = sql_col_strdup(st, 2, &oom);
    h->events = sql_col_strdup(st, 3, &oom);
    h->enabled = (int)sql_col_int(st, 4);
    h->description = sql_col_strdup(st, 5, &oom);
    h->created_at = sql_col_int(st, 6);
    return oom ? -1 : 0;
}

int store_webhook_get(struct store *s, int64_t id, struct store_webhook *out)
{
    static const char sql[] = "SELECT id, url, secret, events, enabled, description, created_at"
                              " FROM webhooks WHERE id = ?1";
    int rc = STORE_OK, code = 0;
    memset(out, 0, sizeof *out);
    struct sql_stmt *st = sql_prepare(s, sql, "ops.webhook_get", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    rc = sql_first_row(s, st, "ops.webhook_get", code);
    if (rc != STORE_OK)
        return rc;
    int bad = read_webhook(st, out);
    sql_done(st);
    if (bad) {
        store_webhook_clear(out);
        return sql_out_of_memory("ops.webhook_get");
    }
    return STORE_OK;
}

int store_webhook_list(struct store *s, int enabled_only, struct store_webhook **out, size_t *n)
{
    static const char sql[] = "SELECT id, url, secret, events, enabled, description, created_at"
                              " FROM webhooks WHERE (?1 = 0 OR enabled = 1) ORDER BY id";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.webhook_list", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, enabled_only ? 1 : 0, &code);
    struct store_webhook *list = NULL;
    size_t cap = 0, count = 0;
    int row;
    while ((row = sql_next_row(s, st, "ops.webhook_list", code)) == 1) {
        code = 0;
        if (array_grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            read_webhook(st, &list[count++]) < 0) {
            sql_done(st);
            store_webhooks_free(list, count);
            return sql_out_of_memory("ops.webhook_list");
        }
    }
    if (row < 0) {
        store_webhooks_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

int store_webhook_update(struct store *s, int64_t id, const struct store_webhook *h)
{
    static const char sql[] =
        "UPDATE webhooks SET url = COALESCE(CAST(?2 AS TEXT), url),"
        " secret = COALESCE(CAST(?3 AS TEXT), secret),"
        " events = COALESCE(CAST(?4 AS TEXT), events),"
        " enabled = CASE WHEN ?5 < 0 THEN enabled ELSE ?5 END,"
        " description = COALESCE(CAST(?6 AS TEXT), description)"
        " WHERE id = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.webhook_update", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    sql_bind_text(st, 2, h->url, &code);
    sql_bind_text(st, 3, h->secret, &code);
    sql_bind_text(st, 4, h->events, &code);
    sql_bind_int(st, 5, h->enabled < 0 ? -1 : h->enabled ? 1 : 0, &code);
    sql_bind_text(st, 6, h->description, &code);
    return exec_one(s, st, "ops.webhook_update", code);
}

int store_webhook_delete(struct store *s, int64_t id)
{
    static const char sql[] = "DELETE FROM webhooks WHERE id = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.webhook_delete", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    return exec_one(s, st, "ops.webhook_delete", code);
}

/* ---- webhook deliveries --------------------------------------------------- */

static void delivery_clear(struct store_delivery *d)
{
    free(d->event_id);
    free(d->event_type);
    free(d->payload);
    free(d->status);
    free(d->last_error);
    free(d->url);
    free(d->secret);
    memset(d, 0, sizeof *d);
}

void store_deliveries_free(struct store_delivery *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        delivery_clear(&list[i]);
    free(list);
}

int store_delivery_add(struct store *s, int64_t webhook_id, const char *event_id,
                       const char *event_type, const char *payload, int64_t now, int64_t *id)
{
    static const char sql[] =
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, status,"
        " next_try_at, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5) RETURNING id";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.delivery_add", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, webhook_id, &code);
    sql_bind_text(st, 2, event_id, &code);
    sql_bind_text(st, 3, event_type, &code);
    sql_bind_text(st, 4, payload, &code);
    sql_bind_int(st, 5, now, &code);
    rc = sql_first_row(s, st, "ops.delivery_add", code);
    if (rc != STORE_OK)
        return rc;
    if (id)
        *id = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

/* Columns shared by the claim and list queries, in read_delivery's order. */
#define DELIVERY_COLS                                                                           \
    "d.id, d.webhook_id, d.event_id, d.event_type, d.payload, d.status, d.attempts,"            \
    " d.next_try_at, d.last_http_status, d.last_error, d.created_at, d.delivered_at"

static int read_delivery(struct sql_stmt *st, struct store_delivery *d, int with_target)
{
    int oom = 0;
    memset(d, 0, sizeof *d);
    d->id = sql_col_int(st, 0);
    d->webhook_id = sql_col_int(st, 1);
    d->event_id = sql_col_strdup(st, 2, &oom);
    d->event_type = sql_col_strdup(st, 3, &oom);
    d->payload = sql_col_strdup(st, 4, &oom);
    d->status = sql_col_strdup(st, 5, &oom);
    d->attempts = sql_col_int(st, 6);
    d->next_try_at = sql_col_int(st, 7);
    d->last_http_status = sql_col_int(st, 8);
    d->last_error = sql_col_strdup(st, 9, &oom);
    d->created_at = sql_col_int(st, 10);
    d->delivered_at = sql_col_int(st, 11);
    if (with_target) {
        d->url = sql_col_strdup(st, 12, &oom);
        d->secret = sql_col_strdup(st, 13, &oom);
    }
    return oom ? -1 : 0;
}

static int delivery_rows(struct store *s, struct sql_stmt *st, const char *op, int code,
                         int with_target, struct store_delivery **out, size_t *n)
{
    struct store_delivery *list = NULL;
    size_t cap = 0, count = 0;
    int row;
    while ((row = sql_next_row(s, st, op, code)) == 1) {
        code = 0;
        if (array_grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            read_delivery(st, &list[count++], with_target) < 0) {
            sql_done(st);
            store_deliveries_free(list, count);
            return sql_out_of_memory(op);
        }
    }
    if (row < 0) {
        store_deliveries_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

/* Takes one due delivery for lease_secs: 1 when this caller got it. */
static int delivery_lease(struct store *s, int64_t id, int64_t now, int64_t until)
{
    static const char sql[] = "UPDATE webhook_deliveries SET next_try_at = ?3"
                              " WHERE id = ?1 AND status = 'pending' AND next_try_at <= ?2";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.delivery_lease", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    sql_bind_int(st, 2, now, &code);
    sql_bind_int(st, 3, until, &code);
    rc = sql_exec(s, st, "ops.delivery_lease", code);
    if (rc != STORE_OK)
        return rc;
    return sql_changes(s) > 0 ? 1 : 0;
}

int store_delivery_claim(struct store *s, int64_t now, int64_t lease_secs, int64_t limit,
                         struct store_delivery **out, size_t *n)
{
    static const char sql[] =
        "SELECT " DELIVERY_COLS ", w.url, w.secret FROM webhook_deliveries d"
        " JOIN webhooks w ON w.id = d.webhook_id"
        " WHERE d.status = 'pending' AND d.next_try_at <= ?1 AND w.enabled = 1"
        " ORDER BY d.next_try_at, d.id LIMIT ?2";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.delivery_due", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    sql_bind_int(st, 2, limit > 0 ? limit : 100, &code);
    struct store_delivery *list = NULL;
    size_t count = 0;
    rc = delivery_rows(s, st, "ops.delivery_due", code, 1, &list, &count);
    if (rc != STORE_OK)
        return rc;
    /* The leases in one transaction: one commit for the batch. */
    int nested = 0;
    rc = count ? sql_atomic_begin(s, "ops.delivery_claim", &nested) : STORE_OK;
    if (rc != STORE_OK) {
        store_deliveries_free(list, count);
        return rc;
    }
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        int got = delivery_lease(s, list[i].id, now, now + lease_secs);
        if (got < 0) {
            (void)sql_atomic_end(s, nested, got, "ops.delivery_claim");
            store_deliveries_free(list, count);
            return got;
        }
        if (got) {
            struct store_delivery t = list[kept];
            list[kept++] = list[i];
            list[i] = t;
        }
    }
    rc = count ? sql_atomic_end(s, nested, STORE_OK, "ops.delivery_claim") : STORE_OK;
    if (rc != STORE_OK) {
        store_deliveries_free(list, count);
        return rc;
    }
    /* Those another node leased first are dropped here. */
    for (size_t i = kept; i < count; i++)
        delivery_clear(&list[i]);
    if (kept == 0) {
        free(list);
        list = NULL;
    }
    *out = list;
    *n = kept;
    return STORE_OK;
}

int store_delivery_result(struct store *s, int64_t id, const char *status, int64_t attempts,
                          int64_t next_try_at, int64_t http_status, const char *error,
                          int64_t now)
{
    static const char sql[] =
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_try_at = ?4,"
        " last_http_status = ?5, last_error = ?6,"
        " delivered_at = CASE WHEN ?2 = 'delivered' THEN ?7 ELSE delivered_at END"
        " WHERE id = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.delivery_result", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    sql_bind_text(st, 2, status, &code);
    sql_bind_int(st, 3, attempts, &code);
    sql_bind_int(st, 4, next_try_at, &code);
    if (http_status > 0)
        sql_bind_int(st, 5, http_status, &code);
    else
        sql_bind_null(st, 5, &code);
    sql_bind_text(st, 6, error, &code);
    sql_bind_int(st, 7, now, &code);
    return exec_one(s, st, "ops.delivery_result", code);
}

int store_delivery_prune(struct store *s, int64_t before, int64_t *deleted)
{
    static const char sql[] = "DELETE FROM webhook_deliveries WHERE status <> 'pending'"
                              " AND created_at < ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.delivery_prune", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, before, &code);
    rc = sql_exec(s, st, "ops.delivery_prune", code);
    if (deleted)
        *deleted = rc == STORE_OK ? sql_changes(s) : 0;
    return rc;
}

int store_delivery_list(struct store *s, int64_t webhook_id, const char *status, int64_t limit,
                        int64_t offset, struct store_delivery **out, size_t *n)
{
    static const char sql[] = "SELECT " DELIVERY_COLS " FROM webhook_deliveries d"
                              " WHERE d.webhook_id = ?1"
                              " AND (CAST(?2 AS TEXT) IS NULL OR d.status = ?2)"
                              " ORDER BY d.id DESC LIMIT ?3 OFFSET ?4";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.delivery_list", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, webhook_id, &code);
    sql_bind_text(st, 2, status, &code);
    sql_bind_int(st, 3, limit > 0 ? limit : 50, &code);
    sql_bind_int(st, 4, offset, &code);
    return delivery_rows(s, st, "ops.delivery_list", code, 0, out, n);
}

/* ---- dashboard figures ---------------------------------------------------- */

int store_ops_stats(struct store *s, int64_t now, struct store_ops_stats *out)
{
    static const char devices[] =
        "SELECT COUNT(*), COUNT(CASE WHEN status = 2 THEN 1 END),"
        " COUNT(CASE WHEN status = 3 THEN 1 END),"
        " COUNT(CASE WHEN status = 2 AND last_seen_at >= ?1 THEN 1 END)"
        " FROM enrollments WHERE parent_id IS NULL";
    static const char queue[] =
        "SELECT COUNT(CASE WHEN active = 1 THEN 1 END),"
        " COUNT(CASE WHEN status IN ('Error', 'CommandFormatError') AND updated_at >= ?1"
        " THEN 1 END) FROM queue";
    memset(out, 0, sizeof *out);
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, devices, "ops.stats_devices", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now - 86400, &code);
    rc = sql_first_row(s, st, "ops.stats_devices", code);
    if (rc != STORE_OK)
        return rc;
    out->devices_total = sql_col_int(st, 0);
    out->devices_enrolled = sql_col_int(st, 1);
    out->devices_checked_out = sql_col_int(st, 2);
    out->seen_24h = sql_col_int(st, 3);
    sql_done(st);
    code = 0;
    st = sql_prepare(s, queue, "ops.stats_queue", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now - 86400, &code);
    rc = sql_first_row(s, st, "ops.stats_queue", code);
    if (rc != STORE_OK)
        return rc;
    out->commands_pending = sql_col_int(st, 0);
    out->commands_failed_24h = sql_col_int(st, 1);
    sql_done(st);
    return STORE_OK;
}

int store_ops_seen_histogram(struct store *s, int64_t now, int64_t bucket_secs, int64_t *buckets,
                             size_t nb)
{
    static const char sql[] =
        "SELECT (last_seen_at - ?1) / ?2, COUNT(*) FROM enrollments"
        " WHERE parent_id IS NULL AND last_seen_at >= ?1 AND last_seen_at < ?3"
        " GROUP BY (last_seen_at - ?1) / ?2";
    memset(buckets, 0, nb * sizeof *buckets);
    if (bucket_secs <= 0 || nb == 0)
        return STORE_OK;
    int64_t start = now - bucket_secs * (int64_t)nb;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.stats_seen", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, start, &code);
    sql_bind_int(st, 2, bucket_secs, &code);
    sql_bind_int(st, 3, now + 1, &code);
    int row;
    while ((row = sql_next_row(s, st, "ops.stats_seen", code)) == 1) {
        code = 0;
        int64_t b = sql_col_int(st, 0);
        if (b >= (int64_t)nb)
            b = (int64_t)nb - 1;
        if (b >= 0)
            buckets[b] += sql_col_int(st, 1);
    }
    return row < 0 ? row : STORE_OK;
}

int store_ops_os_versions(struct store *s, size_t max, char **versions, int64_t *counts,
                          size_t *n)
{
    static const char sql[] =
        "SELECT os_version, COUNT(*) FROM enrollments WHERE parent_id IS NULL AND status = 2"
        " GROUP BY os_version ORDER BY COUNT(*) DESC, os_version LIMIT ?1";
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "ops.stats_os", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, (int64_t)max, &code);
    int row;
    while ((row = sql_next_row(s, st, "ops.stats_os", code)) == 1) {
        code = 0;
        int oom = 0;
        versions[*n] = sql_col_strdup(st, 0, &oom);
        counts[*n] = sql_col_int(st, 1);
        if (oom) {
            sql_done(st);
            for (size_t i = 0; i < *n; i++)
                free(versions[i]);
            *n = 0;
            return sql_out_of_memory("ops.stats_os");
        }
        (*n)++;
    }
    if (row < 0) {
        for (size_t i = 0; i < *n; i++)
            free(versions[i]);
        *n = 0;
    }
    return row < 0 ? row : STORE_OK;
}

int store_ops_compliance_stats(struct store *s, struct store_ops_compliance *out)
{
    static const char policies[] = "SELECT COUNT(*) FROM compliance_policies WHERE enabled = 1";
    static const char worst[] =
        "SELECT w.worst, COUNT(*) FROM (SELECT s.enrollment_id,"
        " MAX(CASE s.state WHEN 'noncompliant' THEN 2 WHEN 'unknown' THEN 1 ELSE 0 END) AS worst"
        " FROM compliance_state s JOIN compliance_policies p ON p.id = s.policy_id"
        " JOIN enrollments e ON e.id = s.enrollment_id"
        " WHERE p.enabled = 1 AND e.status = 2 GROUP BY s.enrollment_id) w GROUP BY w.worst";
    memset(out, 0, sizeof *out);
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, policies, "ops.stats_policies", &rc);
    if (!st)
        return rc;
    rc = sql_first_row(s, st, "ops.stats_policies", 0);
    if (rc != STORE_OK)
        return rc;
    out->policies = sql_col_int(st, 0);
    sql_done(st);
    st = sql_prepare(s, worst, "ops.stats_compliance", &rc);
    if (!st)
        return rc;
    int row;
    while ((row = sql_next_row(s, st, "ops.stats_compliance", 0)) == 1) {
        int64_t w = sql_col_int(st, 0), n = sql_col_int(st, 1);
        if (w == 2)
            out->noncompliant = n;
        else if (w == 1)
            out->unknown = n;
    }
    return row < 0 ? row : STORE_OK;
}
