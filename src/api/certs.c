/* certs.c: the certificate routes of the admin API: one-time SCEP challenges
 * (POST /api/v1/scep/challenges), the certificate records (GET
 * /api/v1/certs, /api/v1/certs/{serial}) and the operator's decisions on
 * them (revoke, approve, reject). Decodes and checks, then calls
 * core/certs.c. Called by the router in app/ after api_authenticate. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/certs.h"
#include "core/certs_expiry.h"
#include "scep/scep.h"
#include "util/config.h"

#define SERIAL_MAX 129
#define CREATED_FOR_MAX 256
#define REASON_MAX 512
#define MAX_TTL (30 * 86400)
#define DAY 86400

/* ---- shared pieces ------------------------------------------------------------ */

/* The public view of a certificate record (docs/api.md `<cert>`). */
static json_t *cert_json(const struct store_cert *c)
{
    return json_pack("{s:s,s:s,s:s?,s:o,s:o,s:s?,s:s,s:o,s:s?,s:s?,s:s?,s:o}",
                     "serial", c->serial_hex, "subject", c->subject, "fingerprint",
                     c->fingerprint, "not_before", api_time_json(c->not_before), "not_after",
                     api_time_json(c->not_after), "device", c->enrollment_id, "status", c->status,
                     "revoked_at", api_time_json(c->revoked_at), "revoke_reason",
                     c->revoke_reason, "renewed_from", c->renewed_from, "transaction_id",
                     c->transaction_id, "created_at", api_time_json(c->created_at));
}

/* The stored serial for a path segment; -1 after answering 400. */
static int path_serial(const struct request *req, struct response *resp, const char *in,
                       char out[SERIAL_MAX])
{
    if (certs_serial_normalize(in, out, SERIAL_MAX) == 0)
        return 0;
    api_fail(req, resp, 400, "bad_request", "the serial must be a positive hexadecimal number");
    return -1;
}

/* Answers 200 with the record as it is now (after a change). */
static void send_record(struct worker *w, const struct request *req, struct response *resp,
                        const char *serial)
{
    struct store_cert *c = NULL;
    int rc = store_cert_get_by_serial(w->store, serial, &c);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no certificate with this serial");
        return;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the certificate");
        return;
    }
    api_send_json(req, resp, 200, cert_json(c));
    store_cert_free(c);
}

/* 409 naming the status the record is in instead of the one needed. */
static void fail_wrong_status(struct worker *w, const struct request *req, struct response *resp,
                              const char *serial, const char *wanted)
{
    struct store_cert *c = NULL;
    char msg[160];
    if (store_cert_get_by_serial(w->store, serial, &c) == STORE_OK)
        snprintf(msg, sizeof msg, "the certificate is %s, not %s", c->status, wanted);
    else
        snprintf(msg, sizeof msg, "the certificate is not %s", wanted);
    store_cert_free(c);
    api_fail(req, resp, 409, "conflict", msg);
}

/* Maps a certs_rc other than CERTS_OK and CERTS_BAD_REQUEST to an answer. */
static void fail_certs(const struct request *req, struct response *resp, int rc, int store_rc,
                       const char *what)
{
    if (rc == CERTS_NOTFOUND)
        api_fail(req, resp, 404, "not_found", "no certificate with this serial");
    else if (rc == CERTS_STORE)
        api_fail_store(req, resp, store_rc, what);
    else
        api_fail(req, resp, 500, "internal", what);
}

/* An optional JSON object body with only the given keys: *out NULL when the
 * body is empty. 0, or -1 after answering 400. */
static int optional_body(const struct request *req, struct response *resp,
                         const char *const *known, size_t nknown, json_t **out)
{
    *out = NULL;
    const char *body = req->body ? (const char *)req->body : "";
    size_t n = req->body_len;
    while (n > 0 && strchr(" \t\r\n", body[n - 1]))
        n--;
    if (n == 0)
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    char msg[256];
    if (!root) {
        snprintf(msg, sizeof msg, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        api_fail(req, resp, 400, "bad_json", msg);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        api_fail(req, resp, 400, "bad_request", "the body must be a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        size_t i = 0;
        while (i < nknown && strcmp(key, known[i]) != 0)
            i++;
        if (i == nknown) {
            snprintf(msg, sizeof msg, "unknown field \"%.64s\"", key);
            json_decref(root);
            api_fail(req, resp, 400, "bad_request", msg);
            return -1;
        }
    }
    *out = root;
    return 0;
}

/* An optional string member of at most max bytes: *out NULL when absent.
 * 0, or -1 after answering 400. */
static int optional_text(const struct request *req, struct response *resp, json_t *root,
                         const char *name, size_t max, const char **out)
{
    *out = NULL;
    json_t *v = root ? json_object_get(root, name) : NULL;
    if (!v)
        return 0;
    char msg[128];
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        json_string_length(v) > max) {
        snprintf(msg, sizeof msg, "\"%s\" must be a string of at most %zu bytes", name, max);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* ---- POST /api/v1/scep/challenges ------------------------------------------------ */

static int read_ttl(const struct request *req, struct response *resp, json_t *root,
                    int64_t def, int64_t *ttl)
{
    *ttl = def;
    json_t *v = root ? json_object_get(root, "ttl_seconds") : NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_TTL) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"ttl_seconds\" must be an integer from 1 to %d", MAX_TTL);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    *ttl = (int64_t)json_integer_value(v);
    return 0;
}

void api_scep_challenge_create(struct worker *w, struct request *req, struct response *resp)
{
    const struct config *cfg = w->svc->cfg;
    if (strcmp(cfg->scep_challenge, "dynamic") != 0) {
        /* The challenge would be refused (static) or ignored (none). */
        api_fail(req, resp, 409, "conflict",
                 "scep_challenge is not \"dynamic\": one-time challenges are not used");
        return;
    }
    static const char *const known[] = {"ttl_seconds", "created_for"};
    json_t *root = NULL;
    const char *created_for = NULL;
    int64_t ttl = 0;
    if (optional_body(req, resp, known, 2, &root) < 0)
        return;
    if (read_ttl(req, resp, root, cfg->scep_challenge_ttl > 0 ? cfg->scep_challenge_ttl : 3600,
                 &ttl) < 0 ||
        optional_text(req, resp, root, "created_for", CREATED_FOR_MAX, &created_for) < 0) {
        json_decref(root);
        return;
    }
    char challenge[33];
    int64_t expires = 0;
    int store_rc = STORE_OK;
    int rc = certs_challenge_create(w->store, created_for, ttl, (int64_t)time(NULL), challenge,
                                    &expires, &store_rc);
    json_decref(root);
    if (rc == CERTS_STORE) {
        api_fail_store(req, resp, store_rc, "storing the challenge");
        return;
    }
    if (rc != CERTS_OK) {
        api_fail(req, resp, 500, "internal", "cannot make a challenge");
        return;
    }
    api_send_json(req, resp, 201, json_pack("{s:s,s:o}", "challenge", challenge, "expires_at",
                                            api_time_json(expires)));
}

/* ---- GET /api/v1/certs -------------------------------------------------------------- */

static int valid_cert_status(const char *s)
{
    return strcmp(s, "pending") == 0 || strcmp(s, "issued") == 0 ||
           strcmp(s, "rejected") == 0 || strcmp(s, "revoked") == 0;
}

/* Fills the filter from the query; -1 after answering 400. */
static int read_cert_filter(const struct request *req, struct response *resp,
                            struct store_cert_filter *f, char *status, size_t status_n,
                            char *device, size_t device_n)
{
    int64_t days = -1;
    memset(f, 0, sizeof *f);
    if (api_query_int(req, resp, "limit", 100, 1, 1000, &f->limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &f->offset) < 0 ||
        api_query_int(req, resp, "expiring_within_days", -1, 0, 36500, &days) < 0 ||
        api_query_text(req, resp, "status", status, status_n, &f->status) < 0 ||
        api_query_text(req, resp, "device", device, device_n, &f->enrollment_id) < 0)
        return -1;
    if (f->status && !*f->status)
        f->status = NULL;
    if (f->enrollment_id && !*f->enrollment_id)
        f->enrollment_id = NULL;
    if (f->status && !valid_cert_status(f->status)) {
        api_fail(req, resp, 400, "bad_request",
                 "status must be one of pending, issued, rejected, revoked");
        return -1;
    }
    if (days >= 0) {
        /* Still valid now, and no longer valid within the window. */
        int64_t now = (int64_t)time(NULL);
        f->valid_at = now;
        f->expiring_before = now + days * DAY + 1;
    }
    return 0;
}

/* A listed certificate with its re-enrollment state from the expiry
 * watcher: "reenroll" is "due", "queued" (new profile sent) or null. */
static json_t *listed_cert_json(struct worker *w, const struct store_cert *c)
{
    json_t *j = cert_json(c);
    int64_t due_at = 0, queued_at = 0;
    int rc = j ? certs_reenroll_state(w->store, c->serial_hex, &due_at, &queued_at) : STORE_ERR;
    const char *state = rc != STORE_OK ? NULL : queued_at ? "queued" : "due";
    if (j && (json_object_set_new(j, "reenroll", state ? json_string(state) : json_null()) < 0 ||
              json_object_set_new(j, "reenroll_due_at", api_time_json(rc == STORE_OK ? due_at : 0)) < 0)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *cert_list_json(struct worker *w, struct store_cert **list, size_t n, int64_t total,
                              const struct store_cert_filter *f)
{
    json_t *certs = json_array();
    for (size_t i = 0; certs && i < n; i++) {
        if (json_array_append_new(certs, listed_cert_json(w, list[i])) < 0) {
            json_decref(certs);
            return NULL;
        }
    }
    if (!certs)
        return NULL;
    return json_pack("{s:o,s:I,s:I,s:I}", "certs", certs, "total", (json_int_t)total, "limit",
                     (json_int_t)f->limit, "offset", (json_int_t)f->offset);
}

void api_certs_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_cert_filter f;
    char status[32], device[1024];
    if (read_cert_filter(req, resp, &f, status, sizeof status, device, sizeof device) < 0)
        return;
    struct store_cert **list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = store_cert_list(w->store, &f, &list, &n, &total);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing certificates");
        return;
    }
    api_send_json(req, resp, 200, cert_list_json(w, list, n, total, &f));
    store_cert_list_free(list, n);
}

void api_certs_get(struct worker *w, struct request *req, struct response *resp,
                   const char *serial)
{
    char hex[SERIAL_MAX];
    if (path_serial(req, resp, serial, hex) < 0)
        return;
    send_record(w, req, resp, hex);
}

/* ---- decisions ---------------------------------------------------------------------- */

void api_certs_revoke(struct worker *w, struct request *req, struct response *resp,
                      const char *serial)
{
    static const char *const known[] = {"reason"};
    char hex[SERIAL_MAX];
    json_t *root = NULL;
    const char *reason = NULL;
    if (path_serial(req, resp, serial, hex) < 0 || optional_body(req, resp, known, 1, &root) < 0)
        return;
    if (optional_text(req, resp, root, "reason", REASON_MAX, &reason) < 0) {
        json_decref(root);
        return;
    }
    int store_rc = STORE_OK;
    int rc = certs_revoke(w->store, hex, reason, (int64_t)time(NULL), &store_rc);
    json_decref(root);
    if (rc == CERTS_OK)
        send_record(w, req, resp, hex);
    else if (rc == CERTS_BAD_REQUEST)
        fail_wrong_status(w, req, resp, hex, "issued");
    else
        fail_certs(req, resp, rc, store_rc, "revoking the certificate");
}

void api_certs_approve(struct worker *w, struct request *req, struct response *resp,
                       const char *serial)
{
    char hex[SERIAL_MAX];
    if (path_serial(req, resp, serial, hex) < 0)
        return;
    if (!w->svc->ca) {
        api_fail(req, resp, 503, "unavailable", "the CA is not loaded: cannot issue");
        return;
    }
    struct certs_policy policy;
    scep_policy(w->svc->cfg, &policy);
    const char *reason = NULL;
    int store_rc = STORE_OK;
    int rc = certs_approve(w->store, w->svc->ca, &policy, hex, (int64_t)time(NULL), NULL,
                           &reason, &store_rc);
    if (rc == CERTS_OK)
        send_record(w, req, resp, hex);
    else if (rc == CERTS_BAD_REQUEST)
        fail_wrong_status(w, req, resp, hex, "pending");
    else
        fail_certs(req, resp, rc, store_rc, reason ? reason : "approving the request");
}

void api_certs_reject(struct worker *w, struct request *req, struct response *resp,
                      const char *serial)
{
    char hex[SERIAL_MAX];
    if (path_serial(req, resp, serial, hex) < 0)
        return;
    int store_rc = STORE_OK;
    int rc = certs_reject(w->store, hex, (int64_t)time(NULL), &store_rc);
    if (rc == CERTS_OK)
        send_record(w, req, resp, hex);
    else if (rc == CERTS_BAD_REQUEST)
        fail_wrong_status(w, req, resp, hex, "pending");
    else
        fail_certs(req, resp, rc, store_rc, "rejecting the request");
}
