/* push.c: the push routes (docs/api.md "Push"): push certificates
 * (GET/PUT /api/v1/pushcerts, GET /api/v1/pushcerts/{topic}), pushing now
 * (POST /api/v1/push, and NanoMDM's GET /v1/push/{id,id,…}), and the push
 * hook the enqueue routes call. Decodes and checks requests, then hands
 * the work to core/push_certs.c and core/push.c. Called by the router in
 * app/ after api_authenticate. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/push.h"
#include "core/push_certs.h"
#include "util/ids.h"
#include "util/log.h"

/* ---- certificates -------------------------------------------------------- */

static json_t *pushcert_json(struct store *s, const struct store_pushcert *c, int64_t now,
                             const char *default_topic)
{
    int64_t devices = 0;
    if (store_push_topic_devices(s, c->topic, NULL, &devices) != STORE_OK)
        devices = -1;
    int w = pushcert_warn_days(c->not_after, now);
    char warning[96] = "";
    if (w == -1)
        snprintf(warning, sizeof warning, "expired");
    else if (w > 0)
        snprintf(warning, sizeof warning, "expires within %d day%s", w, w == 1 ? "" : "s");
    json_t *j = json_pack("{s:s,s:s?,s:s?,s:s?,s:o,s:o,s:f,s:o,s:s?,s:o,s:I,s:b,s:o,s:o}",
                          "topic", c->topic, "subject", c->subject, "serial", c->serial,
                          "fingerprint", c->fingerprint, "not_before", api_time_json(c->not_before),
                          "not_after", api_time_json(c->not_after), "days_left",
                          (double)(c->not_after - now) / 86400.0, "expiry_warning",
                          warning[0] ? json_string(warning) : json_null(), "disabled_reason",
                          c->disabled_reason, "disabled_at", api_time_json(c->disabled_at),
                          "devices", (json_int_t)devices, "default",
                          default_topic && strcmp(default_topic, c->topic) == 0, "created_at",
                          api_time_json(c->created_at), "updated_at",
                          api_time_json(c->updated_at));
    return j;
}

void api_pushcerts_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_pushcert **list = NULL;
    size_t n = 0;
    int rc = store_pushcert_list(w->store, 0, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing push certificates");
        return;
    }
    char def[256] = "";
    if (store_pushcert_topic_default(w->store, def, sizeof def) != STORE_OK)
        def[0] = '\0';
    int64_t now = (int64_t)time(NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, pushcert_json(w->store, list[i], now, def)) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    store_pushcert_list_free(list, n);
    api_send_json(req, resp, 200,
                  arr ? json_pack("{s:o,s:s?,s:b}", "pushcerts", arr, "default_topic",
                                  def[0] ? def : NULL, "push_enabled", w->svc->push != NULL)
                      : NULL);
}

void api_pushcerts_get(struct worker *w, struct request *req, struct response *resp,
                       const char *topic)
{
    struct store_pushcert *c = NULL;
    int rc = store_pushcert_get(w->store, topic, &c);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the push certificate");
        return;
    }
    char def[256] = "";
    if (store_pushcert_topic_default(w->store, def, sizeof def) != STORE_OK)
        def[0] = '\0';
    api_send_json(req, resp, 200,
                  json_pack("{s:o}", "pushcert",
                            pushcert_json(w->store, c, (int64_t)time(NULL), def)));
    store_pushcert_free(c);
}

/* Parses the PUT body into c: {"cert","key"[,"password"]} or {"p12","password"}. */
static int decode_import(const struct request *req, struct response *resp, json_t *root,
                         struct store_pushcert *c, int *force)
{
    static const char *const known[] = {"cert", "key", "p12", "password", "force"};
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(k, known[i]) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            api_fail(req, resp, 400, "bad_request",
                     "unknown field (expected cert, key, p12, password, force)");
            return -1;
        }
    }
    json_t *cert = json_object_get(root, "cert"), *key = json_object_get(root, "key");
    json_t *p12 = json_object_get(root, "p12"), *pw = json_object_get(root, "password");
    json_t *f = json_object_get(root, "force");
    if ((pw && !json_is_string(pw)) || (f && !json_is_boolean(f))) {
        api_fail(req, resp, 400, "bad_request", "\"password\" must be a string, \"force\" a boolean");
        return -1;
    }
    *force = json_is_true(f);
    const char *password = pw ? json_string_value(pw) : NULL;
    char err[400];
    int rc;
    int64_t now = (int64_t)time(NULL);
    if (p12 && !cert && !key) {
        if (!json_is_string(p12)) {
            api_fail(req, resp, 400, "bad_request", "\"p12\" must be the PKCS#12 file in base64");
            return -1;
        }
        size_t len = 0;
        uint8_t *der = ids_b64_decode(json_string_value(p12), json_string_length(p12), &len);
        if (!der) {
            api_fail(req, resp, 400, "bad_request", "\"p12\" is not valid base64");
            return -1;
        }
        rc = pushcert_parse_p12(der, len, password, now, c, err, sizeof err);
        free(der);
    } else if (json_is_string(cert) && json_is_string(key) && !p12) {
        rc = pushcert_parse_pem(json_string_value(cert), json_string_length(cert),
                                json_string_value(key), json_string_length(key), password, now, c,
                                err, sizeof err);
    } else {
        api_fail(req, resp, 400, "bad_request",
                 "give either \"cert\" and \"key\" (PEM strings) or \"p12\" (base64) with "
                 "\"password\"");
        return -1;
    }
    if (rc != PUSHCERT_OK) {
        api_fail(req, resp, 400, "invalid_certificate", err);
        return -1;
    }
    return 0;
}

void api_pushcerts_put(struct worker *w, struct request *req, struct response *resp)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        api_fail(req, resp, 400, "bad_request", "the body must be a JSON object");
        return;
    }
    struct store_pushcert c;
    memset(&c, 0, sizeof c);
    int force = 0;
    if (decode_import(req, resp, root, &c, &force) < 0) {
        json_decref(root);
        return;
    }
    json_decref(root);
    char err[600];
    int replaced = 0;
    int64_t now = (int64_t)time(NULL);
    int rc = pushcert_import(w->store, &c, force, now, &replaced, err, sizeof err);
    if (rc == PUSHCERT_TOPIC_MISMATCH) {
        api_fail(req, resp, 409, "topic_mismatch", err);
    } else if (rc != PUSHCERT_OK) {
        api_fail(req, resp, 500, "internal", err);
    } else {
        if (w->svc->push)
            push_service_certs_changed(w->svc->push);
        char def[256] = "";
        if (store_pushcert_topic_default(w->store, def, sizeof def) != STORE_OK)
            def[0] = '\0';
        api_send_json(req, resp, replaced ? 200 : 201,
                      json_pack("{s:o,s:b}", "pushcert", pushcert_json(w->store, &c, now, def),
                                "replaced", replaced));
    }
    pushcert_clear(&c);
}

/* ---- pushing -------------------------------------------------------------- */

#define PUSH_WAIT_SECONDS 30

void api_push_after_enqueue(struct worker *w, const char *const *ids, const int *per_id, size_t n)
{
    if (!w->svc->push)
        return;
    const char **ok = calloc(n ? n : 1, sizeof *ok);
    if (!ok)
        return;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!per_id || per_id[i] == STORE_OK)
            ok[m++] = ids[i];
    /* Without any push certificate no device can be woken: say so once
     * rather than have the push service look every device up to find out. */
    if (m && !pushcert_any(w->store))
        log_info("devices not pushed: no push certificate", "devices=%zu", m);
    else if (m && push_devices(w->svc->push, ok, m) < 0)
        log_warn("push after enqueue: out of memory", "devices=%zu", m);
    free(ok);
}

int api_push_wait(struct worker *w, const char *const *ids, size_t n, struct push_result *out)
{
    if (!w->svc->push) {
        for (size_t i = 0; i < n; i++) {
            memset(&out[i], 0, sizeof out[i]);
            snprintf(out[i].result, sizeof out[i].result, "push_disabled");
        }
        return -1;
    }
    return push_devices_wait(w->svc->push, ids, n, out, PUSH_WAIT_SECONDS);
}

void api_push_create(struct worker *w, struct request *req, struct response *resp)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *arr = json_is_object(root) ? json_object_get(root, "devices") : NULL;
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (!json_is_object(root) || json_object_size(root) != 1 || n == 0) {
        json_decref(root);
        api_fail(req, resp, 400, "bad_request",
                 "the body must be {\"devices\": [ids…]} with at least one id");
        return;
    }
    if (n > API_MAX_COMMAND_DEVICES) {
        json_decref(root);
        api_fail(req, resp, 400, "bad_request", "\"devices\" names more than 10000 devices");
        return;
    }
    const char **ids = calloc(n, sizeof *ids);
    struct push_result *out = calloc(n, sizeof *out);
    if (!ids || !out) {
        api_fail(req, resp, 500, "internal", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = json_string_value(json_array_get(arr, i));
        if (!ids[i] || !ids[i][0]) {
            api_fail(req, resp, 400, "bad_request", "every device id must be a non-empty string");
            goto done;
        }
    }
    if (!w->svc->push) {
        api_fail(req, resp, 503, "push_disabled", "pushing is off (apns_url is empty)");
        goto done;
    }
    api_push_wait(w, ids, n, out);
    json_t *devices = json_object();
    size_t pushed = 0;
    for (size_t i = 0; devices && i < n; i++) {
        pushed += out[i].status == 200;
        json_t *d = json_pack("{s:b,s:i,s:s,s:s?}", "pushed", out[i].status == 200, "status",
                              out[i].status, "result", out[i].result, "apns_id",
                              out[i].apns_id[0] ? out[i].apns_id : NULL);
        json_object_set_new(devices, ids[i], d);
    }
    log_info("push requested", "req=%s devices=%zu pushed=%zu", req->id, n, pushed);
    api_send_json(req, resp, 200,
                  devices ? json_pack("{s:o,s:I,s:I}", "devices", devices, "pushed",
                                      (json_int_t)pushed, "failed", (json_int_t)(n - pushed))
                          : NULL);
done:
    free(ids);
    free(out);
    json_decref(root);
}

/* NanoMDM's APIResult for a push: {"status": {id: {"push_result": apns-id}
 * | {"push_error": why}}}, 200 when all pushed, 207 some, 500 none. */
void api_nanomdm_push(struct worker *w, struct request *req, struct response *resp,
                      const char *segment)
{
    char *copy = strdup(segment);
    size_t max = 1;
    for (const char *p = segment; *p; p++)
        max += *p == ',';
    const char **ids = calloc(max, sizeof *ids);
    struct push_result *out = calloc(max, sizeof *out);
    size_t n = 0;
    if (!copy || !ids || !out) {
        api_send_json(req, resp, 500, json_pack("{s:s}", "push_error", "out of memory"));
        goto done;
    }
    char *save = NULL;
    for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < n && strcmp(ids[i], id) != 0)
            i++;
        if (i == n)
            ids[n++] = id;
    }
    if (n == 0 || n > API_MAX_COMMAND_DEVICES) {
        const char *why = n ? "too many enrollment ids" : "no enrollment id given";
        api_log_refusal(req, 500, "push_error", why);
        api_send_json(req, resp, 500, json_pack("{s:s}", "push_error", why));
        goto done;
    }
    api_push_wait(w, ids, n, out);
    json_t *status = json_object();
    size_t pushed = 0;
    for (size_t i = 0; status && i < n; i++) {
        int ok = out[i].status == 200;
        pushed += ok;
        json_object_set_new(status, ids[i],
                            ok ? json_pack("{s:s}", "push_result", out[i].apns_id)
                               : json_pack("{s:s}", "push_error", out[i].result));
    }
    int code = pushed == n ? 200 : pushed == 0 ? 500 : 207;
    if (code != 200)
        api_log_refusal(req, code, "push_error", "some enrollments were not pushed");
    json_t *j = status ? json_pack("{s:o}", "status", status) : NULL;
    if (j && pushed == 0)
        json_object_set_new(j, "push_error", json_string("no enrollment was pushed"));
    api_send_json(req, resp, code, j);
done:
    free(copy);
    free(ids);
    free(out);
}

void api_push_nanomdm_status(struct worker *w, json_t *j, const char *const *ids,
                             const int *per_id, size_t n)
{
    if (!j || !w->svc->push || n == 0)
        return;
    const char **ok = calloc(n, sizeof *ok);
    struct push_result *out = calloc(n, sizeof *out);
    size_t m = 0;
    for (size_t i = 0; ok && out && i < n; i++)
        if (per_id[i] == STORE_OK)
            ok[m++] = ids[i];
    if (m) {
        api_push_wait(w, ok, m, out);
        json_t *status = json_object_get(j, "status");
        if (!status) {
            status = json_object();
            json_object_set_new(j, "status", status);
        }
        size_t pushed = 0;
        for (size_t i = 0; status && i < m; i++) {
            json_t *entry = json_object_get(status, ok[i]);
            if (!entry) {
                entry = json_object();
                json_object_set_new(status, ok[i], entry);
            }
            if (out[i].status == 200) {
                pushed++;
                json_object_set_new(entry, "push_result", json_string(out[i].apns_id));
            } else {
                json_object_set_new(entry, "push_error", json_string(out[i].result));
            }
        }
        if (pushed == 0)
            json_object_set_new(j, "push_error", json_string("no enrollment was pushed"));
    }
    free(ok);
    free(out);
}

/* GET /api/v1/devices/{id}/push: the device's push state. */
void api_device_push(struct worker *w, struct request *req, struct response *resp, const char *id)
{
    struct store_push_target *t = NULL;
    int rc = store_push_target_get(w->store, id, &t);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the device's push state");
        return;
    }
    json_t *j = json_pack(
        "{s:s,s:{s:s?,s:b,s:o,s:i,s:s?,s:s?,s:I,s:I,s:o,s:b,s:o}}", "id", t->id, "push", "topic",
        t->topic, "has_token", t->token_hex != NULL, "last_push_at", api_time_json(t->last_push_at),
        "last_status", t->last_status, "last_result", t->last_result, "last_apns_id",
        t->last_apns_id, "pushes", (json_int_t)t->pushes, "failures", (json_int_t)t->failures,
        "unregistered_at", api_time_json(t->unregistered_at), "unregistered",
        store_push_target_unregistered(t), "backoff_until", api_time_json(t->backoff_until));
    store_push_target_free(t);
    api_send_json(req, resp, 200, j);
}
