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
#include "enroll/enroll.h"
#include "mdm/mdm.h"
#include "scep/scep.h"
#include "util/log.h"
#include "util/metrics.h"
#include "web/console.h"
#include "web/console_auth.h"

#define ROUTE_MAX_PARAMS 2
#define ROUTE_MAX_SEGMENTS 8
#define ROUTE_PARAM_MAX 1024

enum route_access { ROUTE_OPEN, ROUTE_ADMIN, ROUTE_DEVICE };

typedef void (*handler0)(struct worker *, struct request *, struct response *);
typedef void (*handler1)(struct worker *, struct request *, struct response *, const char *);
typedef void (*handler2)(struct worker *, struct request *, struct response *, const char *,
                         const char *);

/* The role an admin route needs. ROLE_DEFAULT (a route that names none)
 * means viewer for GET and admin for anything else. */
enum route_role { ROLE_DEFAULT = 0, ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMIN };

struct route {
    const char *method;
    const char *pattern; /* segments; "*" matches one segment, passed as a parameter */
    enum route_access access;
    handler0 h0;
    handler1 h1;
    handler2 h2;
    enum route_role role;
};

/* A route may leave out its role (areas merged before roles existed):
 * ROLE_DEFAULT then applies, so that is not a warning here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct route routes[] = {
    {"PUT", "/mdm/checkin", ROUTE_DEVICE, mdm_handle_checkin, NULL, NULL},
    {"PUT", "/mdm/connect", ROUTE_DEVICE, mdm_handle_connect, NULL, NULL},
    {"PUT", "/mdm", ROUTE_DEVICE, mdm_handle_any, NULL, NULL},
    {"GET", "/api/v1/devices", ROUTE_ADMIN, api_devices_list, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/devices/*", ROUTE_ADMIN, NULL, api_devices_get, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/devices/*/commands", ROUTE_ADMIN, NULL, api_device_commands_list, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/devices/*/inventory/*", ROUTE_ADMIN, NULL, NULL, api_device_inventory, ROLE_VIEWER},
    {"DELETE", "/api/v1/devices/*/commands/*", ROUTE_ADMIN, NULL, NULL, api_device_command_cancel, ROLE_OPERATOR},
    {"POST", "/api/v1/commands", ROUTE_ADMIN, api_commands_create, NULL, NULL, ROLE_OPERATOR},
    {"PUT", "/v1/enqueue/*", ROUTE_ADMIN, NULL, api_nanomdm_enqueue, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/scep/challenges", ROUTE_ADMIN, api_scep_challenge_create, NULL, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/certs", ROUTE_ADMIN, api_certs_list, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/certs/*", ROUTE_ADMIN, NULL, api_certs_get, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/certs/*/revoke", ROUTE_ADMIN, NULL, api_certs_revoke, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/certs/*/approve", ROUTE_ADMIN, NULL, api_certs_approve, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/certs/*/reject", ROUTE_ADMIN, NULL, api_certs_reject, NULL, ROLE_ADMIN},
    {"GET", "/scep", ROUTE_OPEN, scep_handle, NULL, NULL},
    {"POST", "/scep", ROUTE_OPEN, scep_handle, NULL, NULL},
    {"GET", "/scep/crl", ROUTE_OPEN, scep_handle_crl, NULL, NULL},
    {"GET", "/version", ROUTE_OPEN, api_version, NULL, NULL},
    {"GET", "/healthz", ROUTE_OPEN, api_healthz, NULL, NULL},
    {"GET", "/readyz", ROUTE_OPEN, api_readyz, NULL, NULL},
    {"GET", "/metrics", ROUTE_OPEN, api_metrics, NULL, NULL},

    /* push (issue 5): push certificates, push now */
    {"GET", "/api/v1/pushcerts", ROUTE_ADMIN, api_pushcerts_list, NULL, NULL, ROLE_VIEWER},
    {"PUT", "/api/v1/pushcerts", ROUTE_ADMIN, api_pushcerts_put, NULL, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/pushcerts/*", ROUTE_ADMIN, NULL, api_pushcerts_get, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/push", ROUTE_ADMIN, api_push_create, NULL, NULL, ROLE_OPERATOR},
    {"GET", "/api/v1/devices/*/push", ROUTE_ADMIN, NULL, api_device_push, NULL, ROLE_VIEWER},
    {"GET", "/v1/push/*", ROUTE_ADMIN, NULL, api_nanomdm_push, NULL, ROLE_OPERATOR},

    /* enrollment (issue 4): portal, Profile Service, enrollment users */
    {"GET", "/enroll", ROUTE_OPEN, enroll_portal_page, NULL, NULL},
    {"POST", "/enroll", ROUTE_OPEN, enroll_portal_signin, NULL, NULL},
    {"POST", "/enroll/signout", ROUTE_OPEN, enroll_portal_signout, NULL, NULL},
    {"GET", "/enroll/profile", ROUTE_OPEN, enroll_portal_profile, NULL, NULL},
    {"POST", "/enroll/ota", ROUTE_OPEN, enroll_ota, NULL, NULL},
    {"GET", "/api/v1/enroll/profile", ROUTE_ADMIN, enroll_api_profile, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/enroll/users", ROUTE_ADMIN, enroll_api_users_list, NULL, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/enroll/users", ROUTE_ADMIN, enroll_api_users_create, NULL, NULL, ROLE_ADMIN},
    {"PATCH", "/api/v1/enroll/users/*", ROUTE_ADMIN, NULL, enroll_api_user_patch, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/enrollments", ROUTE_ADMIN, enroll_api_records_list, NULL, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/devices/*/unenroll", ROUTE_ADMIN, NULL, enroll_api_unenroll, NULL, ROLE_ADMIN},

    /* commands and apps (issue 6) */
    {"GET", "/api/v1/catalog", ROUTE_ADMIN, api_catalog, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/commands/*", ROUTE_ADMIN, NULL, api_command_get, NULL, ROLE_VIEWER},
    {"DELETE", "/api/v1/commands/*", ROUTE_ADMIN, NULL, api_command_cancel_all, NULL, ROLE_OPERATOR},
    {"POST", "/api/v1/commands/*/retry", ROUTE_ADMIN, NULL, api_command_retry, NULL, ROLE_OPERATOR},
    {"POST", "/api/v1/apps", ROUTE_ADMIN, api_apps_create, NULL, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/apps", ROUTE_ADMIN, api_apps_list, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/apps/*", ROUTE_ADMIN, NULL, api_apps_get, NULL, ROLE_VIEWER},
    {"DELETE", "/api/v1/apps/*", ROUTE_ADMIN, NULL, api_apps_delete, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/apps/*/codes", ROUTE_ADMIN, NULL, api_apps_codes_add, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/apps/*/install", ROUTE_ADMIN, NULL, api_apps_install, NULL, ROLE_OPERATOR},
    {"GET", "/apps/*/manifest.plist", ROUTE_OPEN, NULL, api_apps_manifest, NULL},
    {"GET", "/apps/*/app.ipa", ROUTE_OPEN, NULL, api_apps_ipa, NULL},

    /* profiles and groups (issue 7) */
    {"POST", "/api/v1/profiles", ROUTE_ADMIN, api_profiles_create, NULL, NULL, ROLE_OPERATOR},
    {"GET", "/api/v1/profiles", ROUTE_ADMIN, api_profiles_list, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/profiles/*", ROUTE_ADMIN, NULL, api_profiles_get, NULL, ROLE_VIEWER},
    {"DELETE", "/api/v1/profiles/*", ROUTE_ADMIN, NULL, api_profiles_delete, NULL, ROLE_OPERATOR},
    {"GET", "/api/v1/profiles/*/mobileconfig", ROUTE_ADMIN, NULL, api_profiles_mobileconfig, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/profiles/*/status", ROUTE_ADMIN, NULL, api_profiles_status, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/devices/*/profiles", ROUTE_ADMIN, NULL, api_device_profiles, NULL, ROLE_VIEWER},
    {"PUT", "/api/v1/devices/*/attributes/*", ROUTE_ADMIN, NULL, NULL, api_device_attribute_put, ROLE_OPERATOR},
    {"DELETE", "/api/v1/devices/*/attributes/*", ROUTE_ADMIN, NULL, NULL, api_device_attribute_delete, ROLE_OPERATOR},
    {"POST", "/api/v1/groups", ROUTE_ADMIN, api_groups_create, NULL, NULL, ROLE_OPERATOR},
    {"GET", "/api/v1/groups", ROUTE_ADMIN, api_groups_list, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/groups/*", ROUTE_ADMIN, NULL, api_groups_get, NULL, ROLE_VIEWER},
    {"PUT", "/api/v1/groups/*", ROUTE_ADMIN, NULL, api_groups_update, NULL, ROLE_OPERATOR},
    {"DELETE", "/api/v1/groups/*", ROUTE_ADMIN, NULL, api_groups_delete, NULL, ROLE_OPERATOR},
    {"POST", "/api/v1/groups/*/members", ROUTE_ADMIN, NULL, api_groups_members_add, NULL, ROLE_OPERATOR},
    {"DELETE", "/api/v1/groups/*/members/*", ROUTE_ADMIN, NULL, NULL, api_groups_member_remove, ROLE_OPERATOR},
    {"POST", "/api/v1/groups/*/profiles", ROUTE_ADMIN, NULL, api_groups_assign, NULL, ROLE_OPERATOR},
    {"DELETE", "/api/v1/groups/*/profiles/*", ROUTE_ADMIN, NULL, NULL, api_groups_unassign, ROLE_OPERATOR},
    {"POST", "/api/v1/devices/*/remove", ROUTE_ADMIN, NULL, api_device_remove, NULL, ROLE_OPERATOR},

    /* operators (issue 9): console, sessions, admins, audit, webhooks */
    {"GET", "/console/", ROUTE_OPEN, console_index, NULL, NULL, ROLE_DEFAULT},
    {"GET", "/console", ROUTE_OPEN, console_redirect, NULL, NULL, ROLE_DEFAULT},
    {"GET", "/console/*", ROUTE_OPEN, NULL, console_file, NULL, ROLE_DEFAULT},
    {"POST", "/api/v1/session", ROUTE_OPEN, console_auth_signin, NULL, NULL, ROLE_DEFAULT},
    {"GET", "/api/v1/session", ROUTE_ADMIN, console_auth_whoami, NULL, NULL, ROLE_VIEWER},
    {"DELETE", "/api/v1/session", ROUTE_ADMIN, console_auth_signout, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/stats", ROUTE_ADMIN, api_stats, NULL, NULL, ROLE_VIEWER},
    {"GET", "/api/v1/audit", ROUTE_ADMIN, api_audit_list, NULL, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/users", ROUTE_ADMIN, api_users_list, NULL, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/users", ROUTE_ADMIN, api_users_create, NULL, NULL, ROLE_ADMIN},
    {"PATCH", "/api/v1/users/*", ROUTE_ADMIN, NULL, api_users_update, NULL, ROLE_ADMIN},
    {"DELETE", "/api/v1/users/*", ROUTE_ADMIN, NULL, api_users_delete, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/keys", ROUTE_ADMIN, api_keys_list, NULL, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/keys", ROUTE_ADMIN, api_keys_create, NULL, NULL, ROLE_ADMIN},
    {"DELETE", "/api/v1/keys/*", ROUTE_ADMIN, NULL, api_keys_delete, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/webhooks", ROUTE_ADMIN, api_webhooks_list, NULL, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/webhooks", ROUTE_ADMIN, api_webhooks_create, NULL, NULL, ROLE_ADMIN},
    {"PATCH", "/api/v1/webhooks/*", ROUTE_ADMIN, NULL, api_webhooks_update, NULL, ROLE_ADMIN},
    {"DELETE", "/api/v1/webhooks/*", ROUTE_ADMIN, NULL, api_webhooks_delete, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/webhooks/*/deliveries", ROUTE_ADMIN, NULL, api_webhooks_deliveries, NULL, ROLE_ADMIN},
    {"POST", "/api/v1/webhooks/*/test", ROUTE_ADMIN, NULL, api_webhooks_test, NULL, ROLE_ADMIN},

    /* compliance (issue 10) */
    {"GET", "/api/v1/compliance", ROUTE_ADMIN, api_compliance_summary, NULL, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/compliance/evaluate", ROUTE_ADMIN, api_compliance_evaluate, NULL, NULL, ROLE_OPERATOR},
    {"GET", "/api/v1/compliance/policies", ROUTE_ADMIN, api_compliance_policies_list, NULL, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/compliance/policies", ROUTE_ADMIN, api_compliance_policies_create, NULL, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/compliance/policies/*", ROUTE_ADMIN, NULL, api_compliance_policies_get, NULL, ROLE_VIEWER},
    {"PUT", "/api/v1/compliance/policies/*", ROUTE_ADMIN, NULL, api_compliance_policies_update, NULL, ROLE_ADMIN},
    {"DELETE", "/api/v1/compliance/policies/*", ROUTE_ADMIN, NULL, api_compliance_policies_delete, NULL, ROLE_ADMIN},
    {"GET", "/api/v1/devices/*/compliance", ROUTE_ADMIN, NULL, api_device_compliance, NULL, ROLE_VIEWER},
    {"POST", "/api/v1/devices/*/lost", ROUTE_ADMIN, NULL, api_device_lost, NULL, ROLE_OPERATOR},
    {"POST", "/api/v1/devices/*/wipe", ROUTE_ADMIN, NULL, api_device_wipe, NULL, ROLE_ADMIN},

};
#pragma GCC diagnostic pop
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

static enum api_role route_need(const struct route *r)
{
    switch (r->role) {
    case ROLE_VIEWER: return API_ROLE_VIEWER;
    case ROLE_OPERATOR: return API_ROLE_OPERATOR;
    case ROLE_ADMIN: return API_ROLE_ADMIN;
    default:
        return strcmp(r->method, "GET") == 0 ? API_ROLE_VIEWER : API_ROLE_ADMIN;
    }
}

/* Every request that may change something through the API (any method but
 * GET and HEAD on an API path, and a GET route marked operator) is
 * audited here, answered or refused, so no
 * handler can forget it. Device and SCEP routes are the protocol, not
 * operators' changes. */
static int audited(const struct request *req, const struct route *r)
{
    /* A GET that acts (NanoMDM's GET /v1/push/…) is marked operator; reads
     * that only need a higher role (the audit log itself) are not changes. */
    if ((strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
        !(r && r->access == ROUTE_ADMIN && r->role == ROLE_OPERATOR))
        return 0;
    if (r && r->access == ROUTE_DEVICE)
        return 0;
    return is_api_path(req->path);
}

static void audit(struct worker *w, struct request *req, struct response *resp,
                  const struct match *m)
{
    char action[160], target[2 * ROUTE_PARAM_MAX + 2] = "";
    snprintf(action, sizeof action, "%s %s", req->method, m->route ? m->route->pattern : "unmatched");
    for (int i = 0; m->route && !m->bad_param && i < m->nparams; i++) {
        size_t len = strlen(target);
        snprintf(target + len, sizeof target - len, "%s%s", i ? "/" : "", m->params[i]);
    }
    api_audit_record(w, req, resp, action, target[0] ? target : NULL);
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
    if (r->access == ROUTE_ADMIN && api_authorize(w, req, resp, route_need(r)) < 0)
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
    api_actor_reset();
    route_find(req, &m);
    if (m.route)
        run_route(w, req, resp, &m);
    else
        reply_no_route(req, resp, &m);
    if (audited(req, m.route))
        audit(w, req, resp, &m);
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
