/* certs.c: `stewardctl certs …` and `scep challenge`: the device
 * certificates steward's CA issued (list, show, expiring soon), the
 * operator's decisions (revoke, approve or reject a pending request) and
 * one-time SCEP challenges, over /api/v1/certs and /api/v1/scep/challenges.
 * Printed as tables or key: value lines. Called by main.c's dispatch. */
#include "ctl/certs.h"

#include <stdlib.h>
#include <string.h>

const struct ctl_optspec ctl_certs_list_opts[] = {
    {"status", 1}, {"expiring", 1}, {"device", 1}, {"limit", 1}, {"offset", 1}, {NULL, 0},
};
const struct ctl_optspec ctl_certs_revoke_opts[] = {{"reason", 1}, {NULL, 0}};
const struct ctl_optspec ctl_certs_expiring_opts[] = {
    {"days", 1}, {"limit", 1}, {"offset", 1}, {NULL, 0},
};
const struct ctl_optspec ctl_scep_challenge_opts[] = {{"ttl", 1}, {"for", 1}, {NULL, 0}};

static const char *const LIST_HEADERS[] = {"SERIAL", "STATUS",    "SUBJECT",
                                           "DEVICE", "NOT AFTER", "REVOKED"};
static const char *const LIST_FIELDS[] = {"serial", "status",    "subject",
                                          "device", "not_after", "revoked_at"};
#define LIST_NCOLS (sizeof LIST_HEADERS / sizeof LIST_HEADERS[0])

#define DEFAULT_EXPIRING_DAYS "30"

static int valid_status(const char *s)
{
    return strcmp(s, "pending") == 0 || strcmp(s, "issued") == 0 ||
           strcmp(s, "rejected") == 0 || strcmp(s, "revoked") == 0;
}

/* Every named option, when given, must be a whole number. */
static int check_counts(struct ctl *c, const struct ctl_args *a, const char *const *names,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = ctl_args_get(a, names[i]);
        if (v && !ctl_is_count(v)) {
            ctl_fail(c, "--%s wants a whole number (got \"%s\")", names[i], v);
            return -1;
        }
    }
    return 0;
}

/* ---- listing ---------------------------------------------------------------------- */

/* Renders the list answer; exposed to the unit test through the .c file. */
static int render_cert_list(const json_t *answer, struct buf *out)
{
    static const struct ctl_list_view view = {
        .key = "certs", .ncols = LIST_NCOLS, .headers = LIST_HEADERS, .fields = LIST_FIELDS,
        .singular = "certificate", .plural = "certificates",
    };
    return ctl_render_list(answer, &view, out);
}

/* `certs expiring` also shows whether the expiry watcher marked the
 * device due for re-enrollment (due) or its new profile was sent (queued). */
static const char *const EXPIRING_HEADERS[] = {"SERIAL", "SUBJECT", "DEVICE", "NOT AFTER",
                                               "REENROLL"};
static const char *const EXPIRING_FIELDS[] = {"serial", "subject", "device", "not_after",
                                              "reenroll"};

static int render_expiring_list(const json_t *answer, struct buf *out)
{
    static const struct ctl_list_view view = {
        .key = "certs", .ncols = 5, .headers = EXPIRING_HEADERS, .fields = EXPIRING_FIELDS,
        .singular = "certificate", .plural = "certificates",
    };
    return ctl_render_list(answer, &view, out);
}

/* GETs path and prints the list. */
static int run_list(struct ctl *c, struct buf *path)
{
    return ctl_get_and_render(c, path->data, render_cert_list);
}

/* Appends the query parameters (query name, option value) that were given. */
static int add_params(struct buf *path, const char *const (*pairs)[2], size_t n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (pairs[i][1])
            rc = ctl_query_add(path, pairs[i][0], pairs[i][1]);
    return rc;
}

int ctl_certs_list(struct ctl *c, const struct ctl_args *a)
{
    static const char *const counts[] = {"expiring", "limit", "offset"};
    const char *status = ctl_args_get(a, "status");
    if (a->npos) {
        ctl_fail(c, "certs list takes no arguments (got \"%s\")", a->pos[0]);
        return CTL_EXIT_USAGE;
    }
    if (status && !valid_status(status)) {
        ctl_fail(c, "--status must be pending, issued, rejected or revoked");
        return CTL_EXIT_USAGE;
    }
    if (check_counts(c, a, counts, 3) < 0)
        return CTL_EXIT_USAGE;
    const char *const pairs[][2] = {
        {"status", status},
        {"expiring_within_days", ctl_args_get(a, "expiring")},
        {"device", ctl_args_get(a, "device")},
        {"limit", ctl_args_get(a, "limit")},
        {"offset", ctl_args_get(a, "offset")},
    };
    struct buf path = {0};
    int rc = CTL_EXIT_FAIL;
    if (buf_puts(&path, "/api/v1/certs") < 0 || add_params(&path, pairs, 5) < 0)
        ctl_fail(c, "out of memory");
    else
        rc = run_list(c, &path);
    buf_free(&path);
    return rc;
}

int ctl_certs_expiring(struct ctl *c, const struct ctl_args *a)
{
    static const char *const counts[] = {"days", "limit", "offset"};
    if (a->npos) {
        ctl_fail(c, "certs expiring takes no arguments (got \"%s\")", a->pos[0]);
        return CTL_EXIT_USAGE;
    }
    if (check_counts(c, a, counts, 3) < 0)
        return CTL_EXIT_USAGE;
    const char *days = ctl_args_get(a, "days");
    const char *const pairs[][2] = {
        {"status", "issued"},
        {"expiring_within_days", days ? days : DEFAULT_EXPIRING_DAYS},
        {"limit", ctl_args_get(a, "limit")},
        {"offset", ctl_args_get(a, "offset")},
    };
    struct buf path = {0};
    int rc = CTL_EXIT_FAIL;
    if (buf_puts(&path, "/api/v1/certs") < 0 || add_params(&path, pairs, 4) < 0)
        ctl_fail(c, "out of memory");
    else
        rc = ctl_get_and_render(c, path.data, render_expiring_list);
    buf_free(&path);
    return rc;
}

/* ---- one certificate --------------------------------------------------------------- */

/* "/api/v1/certs/<serial>[/<action>]" with the serial encoded. 0 or -1. */
static int cert_path(struct buf *path, const char *serial, const char *action)
{
    char *enc = ctl_url_encode(serial);
    int rc = enc ? buf_printf(path, "/api/v1/certs/%s%s%s", enc, action ? "/" : "",
                              action ? action : "")
                 : -1;
    free(enc);
    return rc < 0 ? -1 : 0;
}

/* Sends method to the certificate's path and prints the record it answers
 * with, after the line `done` ("Revoked") when not NULL. */
static int cert_call(struct ctl *c, const char *method, const char *serial, const char *action,
                     const json_t *body, const char *done)
{
    struct buf path = {0};
    if (cert_path(&path, serial, action) < 0) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    struct ctl_response r;
    int rc = ctl_call(c, method, path.data, body, &r);
    buf_free(&path);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        struct buf out = {0};
        const char *got = json_string_value(json_object_get(r.json, "serial"));
        if (!json_is_object(r.json) || !got)
            rc = ctl_unexpected(c, &r);
        else if ((done && (buf_printf(&out, "%s certificate ", done) < 0 ||
                           ctl_put_clean(&out, got) < 0 || buf_puts(&out, ".\n\n") < 0)) ||
                 ctl_render_keyvalues(r.json, &out) < 0 || ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}

static int want_serial(struct ctl *c, const struct ctl_args *a, const char *what)
{
    if (a->npos == 1)
        return 0;
    ctl_fail(c, "certs %s wants exactly one serial (hex, as `certs list` shows it)", what);
    return -1;
}

int ctl_certs_show(struct ctl *c, const struct ctl_args *a)
{
    if (want_serial(c, a, "show") < 0)
        return CTL_EXIT_USAGE;
    return cert_call(c, "GET", a->pos[0], NULL, NULL, NULL);
}

int ctl_certs_revoke(struct ctl *c, const struct ctl_args *a)
{
    if (want_serial(c, a, "revoke") < 0)
        return CTL_EXIT_USAGE;
    const char *reason = ctl_args_get(a, "reason");
    json_t *body = reason ? json_pack("{s:s}", "reason", reason) : NULL;
    if (reason && !body) {
        ctl_fail(c, "--reason must be UTF-8 text");
        return CTL_EXIT_USAGE;
    }
    int rc = cert_call(c, "POST", a->pos[0], "revoke", body, "Revoked");
    json_decref(body);
    return rc;
}

int ctl_certs_approve(struct ctl *c, const struct ctl_args *a)
{
    if (want_serial(c, a, "approve") < 0)
        return CTL_EXIT_USAGE;
    return cert_call(c, "POST", a->pos[0], "approve", NULL, "Approved and issued");
}

int ctl_certs_reject(struct ctl *c, const struct ctl_args *a)
{
    if (want_serial(c, a, "reject") < 0)
        return CTL_EXIT_USAGE;
    return cert_call(c, "POST", a->pos[0], "reject", NULL, "Rejected the request for");
}

/* ---- scep challenge ----------------------------------------------------------------- */

/* {"ttl_seconds": N, "created_for": "…"} from the flags; NULL on a bad value
 * (printed) or OOM. */
static json_t *challenge_body(struct ctl *c, const struct ctl_args *a, int *exit_code)
{
    const char *ttl = ctl_args_get(a, "ttl");
    const char *who = ctl_args_get(a, "for");
    *exit_code = CTL_EXIT_USAGE;
    if (ttl && (!ctl_is_count(ttl) || atol(ttl) < 1)) {
        ctl_fail(c, "--ttl wants a number of seconds, at least 1 (got \"%s\")", ttl);
        return NULL;
    }
    json_t *body = json_object();
    int rc = body ? 0 : -1;
    if (rc == 0 && ttl)
        rc = json_object_set_new(body, "ttl_seconds", json_integer(atol(ttl)));
    if (rc == 0 && who) {
        json_t *s = json_string(who);
        if (!s) {
            json_decref(body);
            ctl_fail(c, "--for must be UTF-8 text");
            return NULL;
        }
        rc = json_object_set_new(body, "created_for", s);
    }
    if (rc < 0) {
        json_decref(body);
        *exit_code = CTL_EXIT_FAIL;
        ctl_fail(c, "out of memory");
        return NULL;
    }
    return body;
}

int ctl_scep_challenge(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos) {
        ctl_fail(c, "scep challenge takes no arguments (got \"%s\")", a->pos[0]);
        return CTL_EXIT_USAGE;
    }
    int rc = CTL_EXIT_OK;
    json_t *body = challenge_body(c, a, &rc);
    if (!body)
        return rc;
    struct ctl_response r;
    rc = ctl_call(c, "POST", "/api/v1/scep/challenges", body, &r);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        const char *ch = json_string_value(json_object_get(r.json, "challenge"));
        const char *exp = json_string_value(json_object_get(r.json, "expires_at"));
        struct buf out = {0};
        if (!ch || !exp)
            rc = ctl_unexpected(c, &r);
        else if (buf_puts(&out, "challenge:   ") < 0 || ctl_put_clean(&out, ch) < 0 ||
                 buf_puts(&out, "\nexpires_at:  ") < 0 || ctl_put_clean(&out, exp) < 0 ||
                 buf_puts(&out, "\n(one use; shown only now)\n") < 0 || ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}
