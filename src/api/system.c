/* system.c: the service routes (/version, /healthz, /readyz, /metrics) and
 * the response helpers every api/ handler answers through: JSON bodies, the
 * one error shape of docs/api.md, and the log line for each refusal.
 * Called by the router in app/. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/metrics.h"

#ifndef STEWARD_VERSION
#define STEWARD_VERSION "0.0.0-dev" /* CMake defines the real one */
#endif

/* ---- response helpers ----------------------------------------------------- */

static int dump_to_buf(const char *text, size_t len, void *data)
{
    return buf_append((struct buf *)data, text, len);
}

/* JSON text of j plus a newline (friendlier to curl users); 0 or -1. */
static int set_json_body(struct response *resp, int status, const json_t *j)
{
    struct buf b = {0};
    int rc = json_dump_callback(j, dump_to_buf, &b, JSON_COMPACT | JSON_ENCODE_ANY);
    if (rc == 0)
        rc = buf_append(&b, "\n", 1);
    if (rc == 0)
        rc = response_set(resp, status, "application/json", b.data, b.len);
    buf_free(&b);
    return rc < 0 ? -1 : 0;
}

/* {"error": {"code": ..., "message": ...}} plus the members of extra
 * (stolen; may be NULL). NULL on out of memory. */
static json_t *error_json(const char *code, const char *message, json_t *extra)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                          message ? message : "");
    /* json_pack refuses a message that is not UTF-8 (it may quote input);
     * the code alone still tells the client what happened. */
    if (!j)
        j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", code);
    if (j && extra && json_object_update_missing(j, extra) < 0) {
        json_decref(j);
        j = NULL;
    }
    json_decref(extra);
    return j;
}

static void error_response(struct response *resp, int status, const char *code,
                           const char *message, json_t *extra)
{
    json_t *j = error_json(code, message, extra);
    if (!j || set_json_body(resp, status, j) < 0) {
        static const char fallback[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
        response_set(resp, status, "application/json", fallback, sizeof fallback - 1);
    }
    json_decref(j);
}

void api_error(struct response *resp, int status, const char *code, const char *message)
{
    error_response(resp, status, code, message, NULL);
}

void api_log_refusal(const struct request *req, int status, const char *code,
                     const char *message)
{
    char route[160], reason[256];
    log_msg(status >= 500 ? LOG_WARN : LOG_INFO, "api_error",
            "req=%s method=%s route=%s status=%d code=%s reason=%s", req->id, req->method,
            log_quote(route, sizeof route, req->path), status, code,
            log_quote(reason, sizeof reason, message));
}

void api_fail(const struct request *req, struct response *resp, int status, const char *code,
              const char *message)
{
    api_log_refusal(req, status, code, message);
    error_response(resp, status, code, message, NULL);
}

void api_fail_with(const struct request *req, struct response *resp, int status,
                   const char *code, const char *message, json_t *extra)
{
    api_log_refusal(req, status, code, message);
    error_response(resp, status, code, message, extra);
}

void api_fail_store(const struct request *req, struct response *resp, int rc, const char *what)
{
    char msg[256];
    switch (rc) {
    case STORE_NOTFOUND:
        snprintf(msg, sizeof msg, "%s: not found", what);
        api_fail(req, resp, 404, "not_found", msg);
        break;
    case STORE_CONFLICT:
        snprintf(msg, sizeof msg, "%s: conflicts with existing data", what);
        api_fail(req, resp, 409, "conflict", msg);
        break;
    case STORE_UNAVAILABLE:
        snprintf(msg, sizeof msg, "%s: database unavailable, retry later", what);
        api_fail(req, resp, 503, "unavailable", msg);
        (void)response_add_header(resp, "Retry-After", "5"); /* a hint only */
        break;
    default:
        snprintf(msg, sizeof msg, "%s: internal storage error", what);
        api_fail(req, resp, 500, "internal", msg);
        break;
    }
}

int api_send_json(const struct request *req, struct response *resp, int status, json_t *j)
{
    int rc = j ? set_json_body(resp, status, j) : -1;
    json_decref(j);
    if (rc < 0)
        api_fail(req, resp, 500, "internal", "could not build the JSON answer");
    return rc;
}

/* 1 when the raw query names this parameter. Keys are compared undecoded:
 * ours are plain ASCII, and this only tells "absent" from "did not fit". */
static int query_present(const struct request *req, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = req->query; p && *p;) {
        size_t seg = strcspn(p, "&");
        if (seg >= n && strncmp(p, name, n) == 0 && (seg == n || p[n] == '='))
            return 1;
        p += seg;
        if (*p == '&')
            p++;
    }
    return 0;
}

int api_query_text(const struct request *req, struct response *resp, const char *name,
                   char *buf, size_t n, const char **out)
{
    *out = request_query(req, name, buf, n);
    if (*out || !query_present(req, name))
        return 0;
    char msg[128];
    snprintf(msg, sizeof msg, "query parameter %s is longer than %zu characters", name, n - 1);
    api_fail(req, resp, 400, "bad_request", msg);
    return -1;
}

int api_query_int(const struct request *req, struct response *resp, const char *name,
                  int64_t def, int64_t min, int64_t max, int64_t *out)
{
    char text[32], msg[160];
    const char *v = NULL;
    if (api_query_text(req, resp, name, text, sizeof text, &v) < 0)
        return -1;
    if (!v) {
        *out = def;
        return 0;
    }
    /* Digits only (an optional leading '-'), so "10abc", " 5" and "" are
     * refused rather than read as something the client did not mean. */
    const char *p = v + (*v == '-');
    int ok = *p != '\0';
    int64_t n = 0;
    for (; ok && *p; p++) {
        if (*p < '0' || *p > '9' || n > (INT64_MAX - 9) / 10)
            ok = 0;
        else
            n = n * 10 + (*p - '0');
    }
    if (*v == '-')
        n = -n;
    if (!ok || n < min || n > max) {
        snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", name,
                 (long long)min, (long long)max);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    *out = n;
    return 0;
}

/* ---- service routes ---------------------------------------------------------- */

void api_version(struct worker *w, struct request *req, struct response *resp)
{
    (void)w;
    api_send_json(req, resp, 200, json_pack("{s:s}", "version", STEWARD_VERSION));
}

void api_healthz(struct worker *w, struct request *req, struct response *resp)
{
    (void)w;
    (void)req;
    response_set(resp, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

void api_readyz(struct worker *w, struct request *req, struct response *resp)
{
    int rc = store_ping(w->store);
    if (rc == STORE_OK) {
        response_set(resp, 200, "text/plain; charset=utf-8", "ready\n", 6);
        return;
    }
    log_warn("readyz_failed", "req=%s rc=%d", req->id, rc);
    response_set(resp, 503, "text/plain; charset=utf-8", "database unavailable\n", 21);
    (void)response_add_header(resp, "Retry-After", "5"); /* a hint only */
}

void api_metrics(struct worker *w, struct request *req, struct response *resp)
{
    int64_t depth = -1;
    int rc = store_queue_depth(w->store, &depth);
    if (rc != STORE_OK) {
        /* Still serve the counters: a scrape that fails entirely hides the
         * very numbers that would explain a database problem. */
        log_warn("metrics_queue_depth_failed", "req=%s rc=%d", req->id, rc);
        depth = -1;
    }
    struct buf b = {0};
    if (metrics_render(&b, (long long)depth) < 0 ||
        response_set(resp, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len) < 0)
        api_fail(req, resp, 500, "internal", "could not render metrics");
    buf_free(&b);
}
