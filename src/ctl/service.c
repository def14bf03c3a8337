/* service.c: `stewardctl version` (this program's and the server's /version)
 * and `stewardctl health` (/healthz and /readyz). These routes need no API
 * key, so they work before one is set up. Called by main.c's dispatch. */
#include "ctl/ctl.h"

#include <stdlib.h>
#include <string.h>

#ifndef STEWARD_VERSION
#define STEWARD_VERSION "0.0.0-dev" /* CMake defines the real one */
#endif

/* An unauthenticated GET. CTL_EXIT_OK with r filled (any status), or
 * CTL_EXIT_FAIL after the transport error was printed. */
static int get_open(struct ctl *c, const char *path, struct ctl_response *r)
{
    memset(r, 0, sizeof *r);
    struct ctl_client *client = ctl_connect(c);
    if (!client || ctl_request(client, "GET", path, NULL, 0, r) < 0)
        return CTL_EXIT_FAIL;
    return CTL_EXIT_OK;
}

int ctl_version(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos) {
        ctl_fail(c, "version takes no arguments");
        return CTL_EXIT_USAGE;
    }
    if (!c->opts.json) {
        fprintf(c->out, "stewardctl %s\n", STEWARD_VERSION);
        fflush(c->out);
    }
    struct ctl_response r;
    int rc = get_open(c, "/version", &r);
    if (rc == CTL_EXIT_OK) {
        if (c->opts.json)
            ctl_print_json(c, &r);
        const char *v = json_string_value(json_object_get(r.json, "version"));
        if (ctl_report_http_error(c, &r))
            rc = CTL_EXIT_FAIL;
        else if (!v)
            rc = ctl_unexpected(c, &r);
        else if (!c->opts.json) {
            struct buf out = {0};
            if (buf_puts(&out, "server     ") < 0 || ctl_put_clean(&out, v) < 0 ||
                buf_puts(&out, "\n") < 0 || ctl_write(c, &out) < 0)
                rc = CTL_EXIT_FAIL;
            buf_free(&out);
        }
    }
    ctl_response_free(&r);
    return rc;
}

/* One probe into report as {"http_status": N, "text": "<body, trimmed>"} and
 * a human line into out; *healthy is cleared unless it answered 200.
 * Returns 0 or -1 on out of memory. */
static int probe(const struct ctl_response *r, const char *name, json_t *report, struct buf *out,
                 int *healthy)
{
    char text[256];
    size_t len = r->len < sizeof text - 1 ? r->len : sizeof text - 1;
    memcpy(text, r->body, len);
    text[len] = '\0';
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    if (r->status >= 400 && r->json) /* an error shape: show its message */
        ctl_error_message(r, text, sizeof text);
    if (r->status != 200)
        *healthy = 0;
    json_t *jtext = json_string(text); /* NULL when not UTF-8: then left out */
    json_t *entry = json_pack("{s:I,s:o?}", "http_status", (json_int_t)r->status, "text", jtext);
    if (!entry || json_object_set_new(report, name, entry) < 0)
        return -1;
    if (buf_printf(out, "%s: ", name) < 0 || ctl_put_clean(out, text[0] ? text : "-") < 0 ||
        buf_printf(out, " (HTTP %ld)\n", r->status) < 0)
        return -1;
    return 0;
}

int ctl_health(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos) {
        ctl_fail(c, "health takes no arguments");
        return CTL_EXIT_USAGE;
    }
    static const char *const names[] = {"healthz", "readyz"};
    static const char *const paths[] = {"/healthz", "/readyz"};
    json_t *report = json_object();
    struct buf out = {0};
    int healthy = 1, rc = report ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    for (size_t i = 0; rc == CTL_EXIT_OK && i < 2; i++) {
        struct ctl_response r;
        rc = get_open(c, paths[i], &r);
        if (rc == CTL_EXIT_OK && probe(&r, names[i], report, &out, &healthy) < 0) {
            ctl_fail(c, "out of memory");
            rc = CTL_EXIT_FAIL;
        }
        ctl_response_free(&r);
    }
    if (rc == CTL_EXIT_OK) {
        char *text = c->opts.json ? json_dumps(report, JSON_INDENT(2)) : NULL;
        if (c->opts.json && text)
            fprintf(c->out, "%s\n", text);
        else if (!c->opts.json && ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        fflush(c->out);
        free(text);
        if (rc == CTL_EXIT_OK && !healthy) {
            ctl_fail(c, "the server is not healthy");
            rc = CTL_EXIT_FAIL;
        }
    }
    json_decref(report);
    buf_free(&out);
    return rc;
}
