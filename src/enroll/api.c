/* api.c: the enrollment routes of the admin API (docs/api.md): the signed
 * enrollment profile for Apple Configurator and USB flows, enrollment users
 * (list, create, change password or disable) and the enrollment records. */
#include "enroll/enroll.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/queue.h"
#include "store/store.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/password.h"

int enroll_user_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return 0;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            !strchr("._@-", *p))
            return 0;
    return 1;
}

/* ---- GET /api/v1/enroll/profile ---- */

void enroll_api_profile(struct worker *w, struct request *req, struct response *resp)
{
    char user[80], rid[33], chbuf[600], mbuf[32];
    const char *u = NULL, *why = NULL, *challenge = NULL, *method = NULL;
    if (api_query_text(req, resp, "user", user, sizeof user, &u) < 0 ||
        api_query_text(req, resp, "method", mbuf, sizeof mbuf, &method) < 0)
        return;
    if (!method)
        method = "profile";
    if (strcmp(method, "profile") != 0 && strcmp(method, "configurator") != 0) {
        api_fail(req, resp, 400, "bad_request", "\"method\" is profile or configurator");
        return;
    }
    if (u && !enroll_user_name_ok(u)) {
        api_fail(req, resp, 400, "bad_request", "\"user\" is not a valid user name");
        return;
    }
    struct enroll_ctx ctx;
    if (enroll_ctx_init(w, req, &ctx, &why) != 0) {
        api_fail(req, resp, 409, "not_configured", why);
        return;
    }
    int64_t now = (int64_t)time(NULL);
    char created_for[64];
    if (ids_random_hex(16, rid) != 0) {
        api_fail(req, resp, 500, "internal", "no randomness");
        return;
    }
    snprintf(created_for, sizeof created_for, "enroll:%s", rid);
    if (enroll_scep_challenge(w, created_for, chbuf, sizeof chbuf, &challenge) != 0) {
        api_fail(req, resp, 503, "unavailable", "cannot make a SCEP challenge");
        return;
    }
    int rc = store_enroll_record_add(w->store, rid, u, method, 0, NULL, now,
                                     now + w->svc->cfg->enroll_pending_ttl);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "recording the enrollment");
        return;
    }
    struct enroll_identity id = {challenge, u ? u : "Steward device", NULL};
    plist_t content = enroll_payloads_mdm(&ctx.st, &id);
    plist_t profile = content ? enroll_profile_wrap(&ctx.st, "profile", "Device enrollment",
                                                    "Enrolls this device in device management.",
                                                    content)
                              : NULL;
    if (!profile) {
        api_fail(req, resp, 500, "internal", "cannot build the profile");
        return;
    }
    enroll_send_profile(w, req, resp, profile, "enroll.mobileconfig");
}

/* ---- users ---- */

static json_t *user_json(const struct store_enroll_user *u)
{
    return json_pack("{s:s,s:b,s:o,s:o,s:o}", "name", u->name, "disabled", u->disabled,
                     "created_at", api_time_json(u->created_at), "updated_at",
                     api_time_json(u->updated_at), "last_sign_in_at",
                     api_time_json(u->last_sign_in_at));
}

void enroll_api_users_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_enroll_user *list = NULL;
    size_t n = 0;
    int rc = store_enroll_user_list(w->store, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing enrollment users");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, user_json(&list[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    store_enroll_user_list_free(list, n);
    api_send_json(req, resp, 200, arr ? json_pack("{s:o}", "users", arr) : NULL);
}

static json_t *json_body(const struct request *req, struct response *resp)
{
    json_error_t e;
    json_t *root = json_loadb((const char *)req->body, req->body_len, 0, &e);
    if (!json_is_object(root)) {
        json_decref(root);
        api_fail(req, resp, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return root;
}

/* The "password" member: NULL (after answering 400) when absent or unusable. */
static const char *password_of(const struct request *req, struct response *resp, json_t *root,
                               int required)
{
    json_t *v = json_object_get(root, "password");
    if (!v && !required)
        return "";
    const char *pw = json_string_value(v);
    if (!pw || strlen(pw) < 8 || strlen(pw) > PASSWORD_MAX_LEN) {
        api_fail(req, resp, 400, "bad_request",
                 "\"password\" must be a string of 8 to 1024 characters");
        return NULL;
    }
    return pw;
}

void enroll_api_users_create(struct worker *w, struct request *req, struct response *resp)
{
    json_t *root = json_body(req, resp);
    if (!root)
        return;
    const char *name = json_string_value(json_object_get(root, "name"));
    const char *pw = NULL;
    char hash[PASSWORD_HASH_MAX];
    if (!name || !enroll_user_name_ok(name)) {
        api_fail(req, resp, 400, "bad_request",
                 "\"name\" must be 1-64 characters of letters, digits, '.', '_', '@', '-'");
    } else if ((pw = password_of(req, resp, root, 1)) != NULL) {
        if (password_hash(pw, hash, sizeof hash) != 0) {
            api_fail(req, resp, 500, "internal", "cannot hash the password");
        } else {
            int rc = store_enroll_user_add(w->store, name, hash, (int64_t)time(NULL));
            if (rc == STORE_CONFLICT)
                api_fail(req, resp, 409, "conflict", "an enrollment user of that name exists");
            else if (rc != STORE_OK)
                api_fail_store(req, resp, rc, "adding the enrollment user");
            else
                api_send_json(req, resp, 201, json_pack("{s:s,s:b}", "name", name, "disabled", 0));
        }
    }
    json_decref(root);
}

void enroll_api_user_patch(struct worker *w, struct request *req, struct response *resp,
                           const char *name)
{
    json_t *root = json_body(req, resp);
    if (!root)
        return;
    json_t *dis = json_object_get(root, "disabled");
    const char *pw = json_object_get(root, "password") ? password_of(req, resp, root, 1) : "";
    int64_t now = (int64_t)time(NULL);
    int rc = STORE_OK;
    if (!pw)
        goto out;
    if (dis && !json_is_boolean(dis)) {
        api_fail(req, resp, 400, "bad_request", "\"disabled\" must be true or false");
        goto out;
    }
    if (!dis && !*pw) {
        api_fail(req, resp, 400, "bad_request", "give \"password\" and/or \"disabled\"");
        goto out;
    }
    if (*pw) {
        char hash[PASSWORD_HASH_MAX];
        if (password_hash(pw, hash, sizeof hash) != 0) {
            api_fail(req, resp, 500, "internal", "cannot hash the password");
            goto out;
        }
        rc = store_enroll_user_set_password(w->store, name, hash, now);
    }
    if (rc == STORE_OK && dis)
        rc = store_enroll_user_set_disabled(w->store, name, json_is_true(dis), now);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no such enrollment user");
        goto out;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "updating the enrollment user");
        goto out;
    }
    struct store_enroll_user u;
    if ((rc = store_enroll_user_get(w->store, name, &u)) != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the enrollment user");
        goto out;
    }
    api_send_json(req, resp, 200, user_json(&u));
    store_enroll_user_clear(&u);
out:
    json_decref(root);
}

/* ---- enrollment records ---- */

static json_t *opt_str(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *record_json(const struct store_enroll_record *r)
{
    json_t *dev = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "udid", opt_str(r->udid),
                            "serial", opt_str(r->serial), "imei", opt_str(r->imei), "iccid",
                            opt_str(r->iccid), "product", opt_str(r->product), "version",
                            opt_str(r->version), "mac", opt_str(r->mac), "device_name",
                            opt_str(r->device_name));
    return json_pack("{s:s,s:o,s:s,s:s,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id", r->id,
                     "user", opt_str(r->user_name), "method", r->method, "status", r->status,
                     "phase", r->phase, "device", dev ? dev : json_null(), "enrollment_id",
                     opt_str(r->enrollment_id), "reason", opt_str(r->reason), "created_at",
                     api_time_json(r->created_at), "updated_at", api_time_json(r->updated_at),
                     "expires_at", api_time_json(r->expires_at), "enrolled_at",
                     api_time_json(r->enrolled_at), "ended_at", api_time_json(r->ended_at));
}

void enroll_api_records_list(struct worker *w, struct request *req, struct response *resp)
{
    char ubuf[80], sbuf[32];
    const char *user = NULL, *status = NULL;
    int64_t limit = 0, offset = 0, total = 0;
    if (api_query_text(req, resp, "user", ubuf, sizeof ubuf, &user) < 0 ||
        api_query_text(req, resp, "status", sbuf, sizeof sbuf, &status) < 0 ||
        api_query_int(req, resp, "limit", 100, 1, 1000, &limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT64_MAX / 2, &offset) < 0)
        return;
    int64_t now = (int64_t)time(NULL);
    int rc = store_enroll_records_expire(w->store, now, NULL);
    struct store_enroll_record *list = NULL;
    size_t n = 0;
    if (rc == STORE_OK)
        rc = store_enroll_record_list(w->store, user, status, limit, offset, &list, &n, &total);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing enrollments");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, record_json(&list[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    store_enroll_record_list_free(list, n);
    api_send_json(req, resp, 200,
                  arr ? json_pack("{s:o,s:I}", "enrollments", arr, "total", (json_int_t)total)
                      : NULL);
}

/* ---- POST /api/v1/devices/{id}/unenroll ---- */

void enroll_api_unenroll(struct worker *w, struct request *req, struct response *resp,
                         const char *id)
{
    plist_t cmd = plist_new_dict(), inner = plist_new_dict();
    plist_dict_set_item(inner, "RequestType", plist_new_string("RemoveProfile"));
    plist_dict_set_item(inner, "Identifier", plist_new_string(ENROLL_PROFILE_IDENTIFIER));
    plist_dict_set_item(cmd, "Command", inner);
    const char *why = NULL;
    if (queue_command_prepare(cmd, &why) != 0) {
        plist_free(cmd);
        api_fail(req, resp, 500, "internal", why ? why : "cannot prepare RemoveProfile");
        return;
    }
    struct queue_enqueued out;
    memset(&out, 0, sizeof out);
    int per_id = 0;
    const char *ids[] = {id};
    int rc = api_enqueue_tx(w->store, cmd, ids, 1, &out, &per_id);
    plist_free(cmd);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "queueing RemoveProfile");
        return;
    }
    if (out.queued == 0) {
        api_fail(req, resp, 404, "not_found", "no enrolled device with this id");
        return;
    }
    rc = store_enroll_record_ended(w->store, id, "unenrolled", (int64_t)time(NULL));
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "marking the enrollment record");
        return;
    }
    char q[200];
    log_info("unenroll", "rid=%s id=%s command_uuid=%s", req->id, log_quote(q, sizeof q, id),
             out.uuid);
    api_send_json(req, resp, 202,
                  json_pack("{s:s,s:s,s:s}", "device", id, "command_uuid", out.uuid,
                            "request_type", "RemoveProfile"));
}
