/* operators.c: the routes that manage who may use steward and what they
 * did: admin users (/api/v1/users), API keys (/api/v1/keys), the audit log
 * (/api/v1/audit, JSON, JSON lines or CSV) and the audit entry the router
 * writes for every change (api_audit_record). Called by the router in app/
 * after api_authorize. */
#include "api/api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/password.h"
#include "web/console_auth.h"

json_t *api_json_body(const struct request *req, struct response *resp)
{
    json_error_t jerr;
    const char *body = req->body ? (const char *)req->body : "";
    json_t *j = json_loadb(body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof msg, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        api_fail(req, resp, 400, "bad_json", msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_fail(req, resp, 400, "bad_request", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Names of users and keys: 1-64 of [A-Za-z0-9._@-], so they read the same
 * in the log, the audit log and a URL. */
static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._@-", s[i]))
            return 0;
    return 1;
}

/* The "role" member: a role, or NULL (absent) with *bad set when invalid. */
static const char *role_member(json_t *body, int *bad)
{
    json_t *r = json_object_get(body, "role");
    if (!r)
        return NULL;
    const char *s = json_string_value(r);
    if (!s || api_role_from_name(s) == API_ROLE_NONE) {
        *bad = 1;
        return NULL;
    }
    return s;
}

/* ---- roles per command ---------------------------------------------------- */

int api_request_type_needs_admin(const char *type)
{
    static const char *const destructive[] = {"EraseDevice", "DeleteUser", "ClearPasscode",
                                              "ClearRestrictionsPassword"};
    for (size_t i = 0; type && i < sizeof destructive / sizeof destructive[0]; i++)
        if (strcmp(type, destructive[i]) == 0)
            return 1;
    return 0;
}

int api_command_needs_admin(plist_t command)
{
    plist_t cmd = plist_dict_get_item(command, "Command");
    plist_t rt = cmd ? plist_dict_get_item(cmd, "RequestType") : NULL;
    char *type = NULL;
    if (!rt || plist_get_node_type(rt) != PLIST_STRING)
        return 0;
    plist_get_string_val(rt, &type);
    int yes = api_request_type_needs_admin(type);
    free(type);
    return yes;
}

/* ---- users --------------------------------------------------------------- */

static json_t *user_json(const struct store_admin_user *u, int locked)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:b}", "name", u->name, "role", u->role, "created_at",
                     api_time_json(u->created_at), "last_login_at",
                     api_time_json(u->last_login_at), "locked", locked > 0);
}

void api_users_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_admin_user *list = NULL;
    size_t n = 0;
    int rc = store_admin_user_list(w->store, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing users");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, user_json(&list[i], console_auth_locked(w, list[i].name)));
    store_admin_users_free(list, n);
    api_send_json(req, resp, 200, arr ? json_pack("{s:o}", "users", arr) : NULL);
}

/* The "password" member hashed into h: 0, or -1 after answering 400/500. */
static int hash_password(const struct request *req, struct response *resp, json_t *body,
                         char h[PASSWORD_HASH_MAX])
{
    const char *pw = json_string_value(json_object_get(body, "password"));
    if (!pw || strlen(pw) < 8 || strlen(pw) > PASSWORD_MAX_LEN) {
        api_fail(req, resp, 400, "bad_request", "\"password\" must be a string of 8 to 1024 characters");
        return -1;
    }
    if (password_hash(pw, h, PASSWORD_HASH_MAX) < 0) {
        api_fail(req, resp, 500, "internal", "could not hash the password");
        return -1;
    }
    return 0;
}

void api_users_create(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    int bad = 0;
    const char *role = role_member(body, &bad);
    char h[PASSWORD_HASH_MAX];
    if (!name_ok(name) || bad || !role) {
        api_fail(req, resp, 400, "bad_request",
                 "\"name\" (1-64 of A-Z a-z 0-9 . _ @ -) and \"role\" (viewer, operator, admin) are required");
    } else if (hash_password(req, resp, body, h) == 0) {
        int64_t now = (int64_t)time(NULL);
        int rc = store_admin_user_add(w->store, name, h, role, now);
        if (rc == STORE_CONFLICT)
            api_fail(req, resp, 409, "conflict", "a user with this name exists");
        else if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "adding the user");
        else
            api_send_json(req, resp, 201,
                          json_pack("{s:s,s:s,s:o}", "name", name, "role", role, "created_at",
                                    api_time_json(now)));
    }
    json_decref(body);
}

void api_users_update(struct worker *w, struct request *req, struct response *resp,
                      const char *name)
{
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    int bad = 0;
    const char *role = role_member(body, &bad);
    char h[PASSWORD_HASH_MAX];
    const char *hash = NULL;
    if (bad) {
        api_fail(req, resp, 400, "bad_request", "\"role\" must be viewer, operator or admin");
        json_decref(body);
        return;
    }
    if (json_object_get(body, "password")) {
        if (hash_password(req, resp, body, h) < 0) {
            json_decref(body);
            return;
        }
        hash = h;
    }
    if (!hash && !role) {
        api_fail(req, resp, 400, "bad_request", "nothing to change: give \"password\" and/or \"role\"");
    } else {
        int rc = store_admin_user_update(w->store, name, hash, role);
        if (rc == STORE_OK && hash)
            rc = console_auth_unlock(w, name); /* a new password lifts a lock-out */
        if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "updating the user");
        else
            api_send_json(req, resp, 200, json_pack("{s:s,s:b}", "name", name, "updated", 1));
    }
    json_decref(body);
}

void api_users_delete(struct worker *w, struct request *req, struct response *resp,
                      const char *name)
{
    int rc = store_admin_user_delete(w->store, name);
    if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "deleting the user");
    else
        api_send_json(req, resp, 200, json_pack("{s:s,s:b}", "name", name, "deleted", 1));
}

/* ---- API keys ------------------------------------------------------------ */

void api_keys_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_apikey *list = NULL;
    size_t n = 0;
    int rc = store_apikey_list(w->store, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing API keys");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:o}", "id", list[i].id, "name",
                                             list[i].name, "role", list[i].role, "created_at",
                                             api_time_json(list[i].created_at), "last_used_at",
                                             api_time_json(list[i].last_used_at)));
    store_apikeys_free(list, n);
    api_send_json(req, resp, 200, arr ? json_pack("{s:o}", "keys", arr) : NULL);
}

void api_keys_create(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    int bad = 0;
    const char *role = role_member(body, &bad);
    char secret[65], key[72], hash[65];
    if (!name_ok(name) || bad || !role) {
        api_fail(req, resp, 400, "bad_request",
                 "\"name\" (1-64 of A-Z a-z 0-9 . _ @ -) and \"role\" (viewer, operator, admin) are required");
    } else if (ids_random_hex(32, secret) < 0) {
        api_fail(req, resp, 500, "internal", "no randomness for a key");
    } else {
        /* The same shape as `steward apikey create`: shown once, stored hashed. */
        snprintf(key, sizeof key, "stw_%s", secret);
        ids_sha256_hex((const uint8_t *)key, strlen(key), hash);
        int64_t now = (int64_t)time(NULL);
        int rc = store_apikey_add(w->store, name, hash, role, now);
        char id[17];
        snprintf(id, sizeof id, "%.16s", hash);
        if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "adding the API key");
        else
            api_send_json(req, resp, 201,
                          json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", id, "name", name, "role", role,
                                    "key", key, "created_at", api_time_json(now)));
    }
    json_decref(body);
}

void api_keys_delete(struct worker *w, struct request *req, struct response *resp,
                     const char *id)
{
    int rc = store_apikey_delete(w->store, id);
    if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "deleting the API key");
    else
        api_send_json(req, resp, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
}

/* ---- audit log ------------------------------------------------------------ */

void api_audit_record(struct worker *w, const struct request *req, const struct response *resp,
                      const char *action, const char *target)
{
    const struct api_actor *a = api_current_actor();
    struct store_audit e = {
        .at = (int64_t)time(NULL),
        .actor = (char *)(a->name[0] ? a->name : "anonymous"),
        .role = (char *)(a->role ? api_role_name(a->role) : NULL),
        .method = (char *)req->method,
        .path = req->path,
        .action = (char *)action,
        .target = (char *)target,
        .status = resp->status ? resp->status : 200,
        .remote_addr = (char *)req->remote_addr,
        .request_id = (char *)req->id,
    };
    int rc = store_audit_add(w->store, &e);
    if (rc != STORE_OK) {
        char q[200];
        log_error("audit entry not written", "req=%s actor=%s action=%s status=%d rc=%d", req->id,
                  e.actor, log_quote(q, sizeof q, action), e.status, rc);
    }
}

static json_t *audit_json(const struct store_audit *a)
{
    return json_pack("{s:I,s:o,s:s,s:s?,s:s,s:s,s:s,s:s?,s:i,s:s?,s:s?}", "id", (json_int_t)a->id,
                     "at", api_time_json(a->at), "actor", a->actor, "role", a->role, "method",
                     a->method, "path", a->path, "action", a->action, "target", a->target,
                     "status", a->status, "remote_addr", a->remote_addr, "request_id",
                     a->request_id);
}

/* One CSV field, quoted when it holds a separator, quote or line break; a
 * leading = + - @ is prefixed with ' so spreadsheets do not run it. */
static void csv_field(struct buf *b, const char *s, int last)
{
    s = s ? s : "";
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        buf_puts(b, "\"");
    if (strchr("=+-@", s[0]) && s[0])
        buf_puts(b, "'");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_puts(b, "\"\"");
        else
            buf_append(b, p, 1);
    }
    if (quote)
        buf_puts(b, "\"");
    buf_puts(b, last ? "\r\n" : ",");
}

static int audit_csv(struct buf *b, const struct store_audit *list, size_t n)
{
    buf_puts(b, "id,at,actor,role,method,path,action,target,status,remote_addr,request_id\r\n");
    for (size_t i = 0; i < n; i++) {
        const struct store_audit *a = &list[i];
        char id[24], at[32], st[16];
        time_t t = (time_t)a->at;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(id, sizeof id, "%lld", (long long)a->id);
        snprintf(st, sizeof st, "%d", a->status);
        csv_field(b, id, 0);
        csv_field(b, at, 0);
        csv_field(b, a->actor, 0);
        csv_field(b, a->role, 0);
        csv_field(b, a->method, 0);
        csv_field(b, a->path, 0);
        csv_field(b, a->action, 0);
        csv_field(b, a->target, 0);
        csv_field(b, st, 0);
        csv_field(b, a->remote_addr, 0);
        csv_field(b, a->request_id, 1);
    }
    return b->data || n == 0 ? 0 : -1;
}

static int audit_jsonl(struct buf *b, const struct store_audit *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *j = audit_json(&list[i]);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (!s || buf_puts(b, s) < 0 || buf_puts(b, "\n") < 0) {
            free(s);
            return -1;
        }
        free(s);
    }
    return 0;
}

static void audit_send_text(const struct request *req, struct response *resp, const char *format,
                            const struct store_audit *list, size_t n)
{
    struct buf b = {0};
    int csv = strcmp(format, "csv") == 0;
    int rc = csv ? audit_csv(&b, list, n) : audit_jsonl(&b, list, n);
    if (rc < 0 || response_set(resp, 200, csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
                               b.data ? b.data : "", b.len) < 0)
        api_fail(req, resp, 500, "internal", "could not build the export");
    else
        response_add_header(resp, "Content-Disposition",
                            csv ? "attachment; filename=\"steward-audit.csv\""
                                : "attachment; filename=\"steward-audit.jsonl\"");
    buf_free(&b);
}

void api_audit_list(struct worker *w, struct request *req, struct response *resp)
{
    char actor[200], method[16], target[256], format[16];
    const char *fmt = NULL;
    struct store_audit_filter f = {0};
    int64_t failed = 0;
    if (api_query_text(req, resp, "actor", actor, sizeof actor, &f.actor) < 0 ||
        api_query_text(req, resp, "method", method, sizeof method, &f.method) < 0 ||
        api_query_text(req, resp, "target", target, sizeof target, &f.target) < 0 ||
        api_query_text(req, resp, "format", format, sizeof format, &fmt) < 0 ||
        api_query_int(req, resp, "since", 0, 0, INT64_MAX / 2, &f.since) < 0 ||
        api_query_int(req, resp, "until", 0, 0, INT64_MAX / 2, &f.until) < 0 ||
        api_query_int(req, resp, "failed", 0, 0, 1, &failed) < 0)
        return;
    if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "jsonl") != 0 && strcmp(fmt, "csv") != 0) {
        api_fail(req, resp, 400, "bad_request", "format must be json, jsonl or csv");
        return;
    }
    int export = fmt && strcmp(fmt, "json") != 0;
    if (api_query_int(req, resp, "limit", export ? 10000 : 100, 1, export ? 100000 : 1000,
                      &f.limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT64_MAX / 2, &f.offset) < 0)
        return;
    f.min_status = failed ? 400 : 0;
    struct store_audit *list = NULL;
    size_t n = 0;
    int rc = store_audit_list(w->store, &f, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the audit log");
        return;
    }
    if (export) {
        audit_send_text(req, resp, fmt, list, n);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
            json_array_append_new(arr, audit_json(&list[i]));
        api_send_json(req, resp, 200,
                      arr ? json_pack("{s:o,s:I,s:I}", "entries", arr, "limit", (json_int_t)f.limit,
                                      "offset", (json_int_t)f.offset)
                          : NULL);
    }
    store_audit_free(list, n);
}

/* ---- dashboard figures ---------------------------------------------------- */

#define STATS_OS_MAX 12

void api_stats(struct worker *w, struct request *req, struct response *resp)
{
    int64_t now = (int64_t)time(NULL);
    struct store_ops_stats st;
    int64_t hours[24], expiring = 0, soonest = 0;
    char *versions[STATS_OS_MAX];
    int64_t counts[STATS_OS_MAX];
    size_t nv = 0;
    struct store_ops_compliance comp = {0};
    int64_t days = w->svc->cfg->cert_expiry_days;
    int rc = store_begin_read(w->store);
    if (rc == STORE_OK) {
        rc = store_ops_stats(w->store, now, &st);
        if (rc == STORE_OK)
            rc = store_ops_seen_histogram(w->store, now, 3600, hours, 24);
        if (rc == STORE_OK)
            rc = store_pki_expiry_stats(w->store, now, now + days * 86400, &expiring, &soonest);
        if (rc == STORE_OK)
            rc = store_ops_os_versions(w->store, STATS_OS_MAX, versions, counts, &nv);
        if (rc == STORE_OK)
            rc = store_ops_compliance_stats(w->store, &comp);
        int crc = store_commit(w->store);
        if (rc == STORE_OK)
            rc = crc;
    }
    if (rc != STORE_OK) {
        for (size_t i = 0; i < nv; i++)
            free(versions[i]);
        api_fail_store(req, resp, rc, "computing the figures");
        return;
    }
    json_t *h = json_array(), *os = json_array();
    for (size_t i = 0; h && i < 24; i++)
        json_array_append_new(h, json_integer(hours[i]));
    for (size_t i = 0; os && i < nv; i++) {
        json_array_append_new(os, json_pack("{s:s,s:I}", "version",
                                            versions[i] ? versions[i] : "unknown", "count",
                                            (json_int_t)counts[i]));
        free(versions[i]);
    }
    json_t *j = json_pack(
        "{s:o,s:{s:I,s:I,s:I,s:I},s:o,s:o,s:{s:I,s:I},s:{s:I,s:I,s:o},s:n,s:o,s:{s:I,s:I,s:I}}",
        "generated_at",
        api_time_json(now), "devices", "enrolled", (json_int_t)st.devices_enrolled, "total",
        (json_int_t)st.devices_total, "checked_out", (json_int_t)st.devices_checked_out,
        "seen_24h", (json_int_t)st.seen_24h, "checkins_by_hour", h ? h : json_array(),
        "os_versions", os ? os : json_array(), "commands", "pending",
        (json_int_t)st.commands_pending, "failed_24h", (json_int_t)st.commands_failed_24h,
        "certs", "expiring", (json_int_t)expiring, "within_days", (json_int_t)days,
        "soonest_expiry", api_time_json(soonest), "push_failures_24h", "noncompliant",
        comp.policies ? json_integer(comp.noncompliant) : json_null(), "compliance", "policies",
        (json_int_t)comp.policies, "noncompliant", (json_int_t)comp.noncompliant, "unknown",
        (json_int_t)comp.unknown);
    api_send_json(req, resp, 200, j);
}
