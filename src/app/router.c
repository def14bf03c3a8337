/* router.c: maps method + path to a front-end handler, the one place where
 * the front ends are composed. Also applies what every route shares: the
 * API key check on admin routes, the device-route body limit, one log line
 * per failed request, and per-route metrics. Called by the HTTP layer on a
 * handler thread for every request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "app/app.h"
#include "mdm/mdm.h"
#include "scep/scep.h"
#include "util/log.h"
#include "util/metrics.h"

#define ROUTE_MAX_PARAMS 2
#define ROUTE_MAX_SEGMENTS 8
#define ROUTE_PARAM_MAX 1024

enum route_access { ROUTE_OPEN, ROUTE_ADMIN, ROUTE_DEVICE };

typedef void (*handler0)(struct worker *, struct request *, struct response *);
typedef void (*handler1)(struct worker *, struct request *, struct response *, const char *);
typedef void (*handler2)(struct worker *, struct request *, struct response *, const char *,
                         const char *);

struct route {
    const char *method;
    const char *pattern; /* segments; "*" matches one segment, passed as a parameter */
    enum route_access access;
    handler0 h0;
    handler1 h1;
    handler2 h2;
};

static const struct route routes[] = {
    {"PUT", "/mdm/checkin", ROUTE_DEVICE, mdm_handle_checkin, NULL, NULL},
    {"PUT", "/mdm/connect", ROUTE_DEVICE, mdm_handle_connect, NULL, NULL},
    {"PUT", "/mdm", ROUTE_DEVICE, mdm_handle_any, NULL, NULL},
    {"GET", "/api/v1/devices", ROUTE_ADMIN, api_devices_list, NULL, NULL},
    {"GET", "/api/v1/devices/*", ROUTE_ADMIN, NULL, api_devices_get, NULL},
    {"GET", "/api/v1/devices/*/commands", ROUTE_ADMIN, NULL, api_device_commands_list, NULL},
    {"GET", "/api/v1/devices/*/inventory/*", ROUTE_ADMIN, NULL, NULL, api_device_inventory},
    {"DELETE", "/api/v1/devices/*/commands/*", ROUTE_ADMIN, NULL, NULL, api_device_command_cancel},
    {"POST", "/api/v1/commands", ROUTE_ADMIN, api_commands_create, NULL, NULL},
    {"PUT", "/v1/enqueue/*", ROUTE_ADMIN, NULL, api_nanomdm_enqueue, NULL},
    {"POST", "/api/v1/scep/challenges", ROUTE_ADMIN, api_scep_challenge_create, NULL, NULL},
    {"GET", "/api/v1/certs", ROUTE_ADMIN, api_certs_list, NULL, NULL},
    {"GET", "/api/v1/certs/*", ROUTE_ADMIN, NULL, api_certs_get, NULL},
    {"POST", "/api/v1/certs/*/revoke", ROUTE_ADMIN, NULL, api_certs_revoke, NULL},
    {"POST", "/api/v1/certs/*/approve", ROUTE_ADMIN, NULL, api_certs_approve, NULL},
    {"POST", "/api/v1/certs/*/reject", ROUTE_ADMIN, NULL, api_certs_reject, NULL},
    {"GET", "/scep", ROUTE_OPEN, scep_handle, NULL, NULL},
    {"POST", "/scep", ROUTE_OPEN, scep_handle, NULL, NULL},
    {"GET", "/scep/crl", ROUTE_OPEN, scep_handle_crl, NULL, NULL},
    {"GET", "/version", ROUTE_OPEN, api_version, NULL, NULL},
    {"GET", "/healthz", ROUTE_OPEN, api_healthz, NULL, NULL},
    {"GET", "/readyz", ROUTE_OPEN, api_readyz, NULL, NULL},
    {"GET", "/metrics", ROUTE_OPEN, api_metrics, NULL, NULL},

    /* push (issue 5): push certificates, push now */

    /* enrollment (issue 4): portal, Profile Service, enrollment users */

    /* commands and apps (issue 6) */

    /* profiles and groups (issue 7) */

    /* operators (issue 9): console, sessions, admins, audit, webhooks */

    /* compliance (issue 10) */
    {"GET", "/api/v1/compliance", ROUTE_ADMIN, api_compliance_summary, NULL, NULL},
    {"POST", "/api/v1/compliance/evaluate", ROUTE_ADMIN, api_compliance_evaluate, NULL, NULL},
    {"GET", "/api/v1/compliance/policies", ROUTE_ADMIN, api_compliance_policies_list, NULL, NULL},
    {"POST", "/api/v1/compliance/policies", ROUTE_ADMIN, api_compliance_policies_create, NULL, NULL},
    {"GET", "/api/v1/compliance/policies/*", ROUTE_ADMIN, NULL, api_compliance_policies_get, NULL},
    {"PUT", "/api/v1/compliance/policies/*", ROUTE_ADMIN, NULL, api_compliance_policies_update, NULL},
    {"DELETE", "/api/v1/compliance/policies/*", ROUTE_ADMIN, NULL, api_compliance_policies_delete, NULL},
    {"GET", "/api/v1/devices/*/compliance", ROUTE_ADMIN, NULL, api_device_compliance, NULL},
    {"POST", "/api/v1/devices/*/lost", ROUTE_ADMIN, NULL, api_device_lost, NULL},
    {"POST", "/api/v1/devices/*/wipe", ROUTE_ADMIN, NULL, api_device_wipe, NULL},

};
#define NROUTES (sizeof routes / sizeof routes[0])

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes one path segment [s, s+n) into out. -1 when malformed, too
 * long, or when it decodes to a NUL or a '/' (never part of a valid id). */
static int decode_segment(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
            if (a < 0 || b < 0)
                return -1;
            c = (char)(a * 16 + b);
            if (c == '\0' || c == '/')
                return -1;
            i += 2;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

struct match {
    const struct route *route;
    int path_known;  /* some route has this path (for 405 vs 404) */
    int bad_param;   /* a parameter failed to decode */
    char params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    int nparams;
};

/* Matches path against pattern segment by segment; wildcards are decoded
 * into m->params. 1 on match. The request path arrives raw (not decoded) so
 * an encoded '/' inside an id cannot split segments. */
static int match_pattern(const char *pattern, const char *path, struct match *m)
{
    const char *p = pattern, *q = path;
    m->nparams = 0;
    m->bad_param = 0;
    while (*p && *q) {
        if (*p != '/' || *q != '/')
            return 0;
        p++;
        q++;
        size_t pl = strcspn(p, "/"), ql = strcspn(q, "/");
        if (pl == 1 && *p == '*') {
            if (ql == 0 || m->nparams >= ROUTE_MAX_PARAMS)
                return 0;
            if (decode_segment(q, ql, m->params[m->nparams], ROUTE_PARAM_MAX) < 0)
                m->bad_param = 1;
            m->nparams++;
        } else if (pl != ql || strncmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl;
        q += ql;
    }
    return *p == '\0' && (*q == '\0' || strcmp(q, "/") == 0);
}

static void route_find(const struct request *req, struct match *m)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < NROUTES; i++) {
        struct match t;
        if (!match_pattern(routes[i].pattern, req->path, &t))
            continue;
        m->path_known = 1;
        int head_ok = strcmp(req->method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0;
        if (strcmp(req->method, routes[i].method) == 0 || head_ok) {
            memcpy(m->params, t.params, sizeof t.params);
            m->nparams = t.nparams;
            m->bad_param = t.bad_param;
            m->route = &routes[i];
            return;
        }
    }
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int is_api_path(const char *path)
{
    return strncmp(path, "/api/", 5) == 0 || strncmp(path, "/v1/", 4) == 0;
}

static void reply_no_route(struct request *req, struct response *resp, const struct match *m)
{
    int status = m->path_known ? 405 : 404;
    const char *msg = m->path_known ? "method not allowed on this path" : "no such route";
    if (is_api_path(req->path))
        api_error(resp, status, status == 405 ? "method_not_allowed" : "not_found", msg);
    else
        response_text(resp, status, msg);
}

static void run_route(struct worker *w, struct request *req, struct response *resp,
                      const struct match *m)
{
    const struct route *r = m->route;
    const struct config *cfg = w->svc->cfg;
    if (m->bad_param) {
        api_error(resp, 400, "bad_request", "malformed percent-encoding in the path");
        return;
    }
    if (r->access == ROUTE_DEVICE && req->body_len > (size_t)cfg->max_body_device) {
        response_text(resp, 413, "body larger than max_body_device");
        return;
    }
    if (r->access != ROUTE_DEVICE && req->body_len > (size_t)cfg->max_body_api) {
        api_error(resp, 413, "too_large", "body larger than max_body_api");
        return;
    }
    if (r->access == ROUTE_ADMIN && api_authenticate(w, req, resp) < 0)
        return;
    if (r->h0)
        r->h0(w, req, resp);
    else if (r->h1)
        r->h1(w, req, resp, m->params[0]);
    else
        r->h2(w, req, resp, m->params[0], m->params[1]);
}

/* Per-route metrics and the request log line, for both paths. */
static void account(struct request *req, struct response *resp, const char *pattern)
{
    int status = resp->status ? resp->status : 200;
    double secs = seconds_since(&req->start);
    metrics_request(pattern, status, secs);
    if (status >= 400 || log_enabled(LOG_DEBUG)) {
        char q[300];
        log_msg(status >= 500 ? LOG_WARN : status >= 400 ? LOG_INFO : LOG_DEBUG, "request",
                "rid=%s addr=%s method=%s path=%s status=%d dur_ms=%.2f", req->id,
                req->remote_addr, req->method, log_quote(q, sizeof q, req->path), status,
                secs * 1000);
    }
}

void app_route(void *worker_ctx, struct request *req, struct response *resp)
{
    struct worker *w = worker_ctx;
    struct match m;
    route_find(req, &m);
    if (m.route)
        run_route(w, req, resp, &m);
    else
        reply_no_route(req, resp, &m);
    account(req, resp, m.route ? m.route->pattern : "unmatched");
}

/* The I/O-thread fast path covers the one request that dominates a fleet's
 * traffic: a device's Idle on the command endpoint when nothing waits. */
int app_route_fast(void *io_ctx, struct request *req, struct response *resp)
{
    struct worker *w = io_ctx;
    if (strcmp(req->method, "PUT") != 0 ||
        req->body_len > (size_t)w->svc->cfg->max_body_device)
        return 0;
    const char *pattern = strcmp(req->path, "/mdm/connect") == 0 ? "/mdm/connect"
                          : strcmp(req->path, "/mdm") == 0       ? "/mdm"
                                                                 : NULL;
    if (!pattern || !mdm_fast_idle(w, req, resp))
        return 0;
    account(req, resp, pattern);
    return 1;
}
