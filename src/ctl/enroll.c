/* enroll.c: `stewardctl enroll profile` writes the signed enrollment
 * profile (application/x-apple-aspen-config, DER CMS) to stdout, refusing
 * to write binary to a terminal; `enroll list` prints the enrollment
 * records as a table. Called by main.c's dispatch. */
#include "ctl/enroll.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const struct ctl_optspec ctl_enroll_profile_opts[] = {
    {"user", 1}, {"configurator", 0}, {NULL, 0},
};
const struct ctl_optspec ctl_enroll_list_opts[] = {
    {"user", 1}, {"status", 1}, {"limit", 1}, {"offset", 1}, {NULL, 0},
};

int ctl_enroll_profile(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos) {
        ctl_fail(c, "enroll profile takes no arguments (got \"%s\")", a->pos[0]);
        return CTL_EXIT_USAGE;
    }
    if (c->out == stdout && isatty(fileno(stdout))) {
        ctl_fail(c, "the profile is binary: redirect it, e.g. > enroll.mobileconfig");
        return CTL_EXIT_USAGE;
    }
    struct buf path = {0};
    const char *user = ctl_args_get(a, "user");
    if (buf_puts(&path, "/api/v1/enroll/profile") < 0 ||
        (user && ctl_query_add(&path, "user", user) < 0) ||
        (ctl_args_has(a, "configurator") && ctl_query_add(&path, "method", "configurator") < 0)) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    struct ctl_client *cl = ctl_connect(c);
    struct ctl_response r;
    memset(&r, 0, sizeof r);
    int rc = CTL_EXIT_FAIL;
    if (cl && ctl_request(cl, "GET", path.data, NULL, 1, &r) == 0) {
        if (ctl_report_http_error(c, &r) == 0)
            rc = fwrite(r.body, 1, r.len, c->out) == r.len && fflush(c->out) == 0
                     ? CTL_EXIT_OK
                     : CTL_EXIT_FAIL;
    }
    buf_free(&path);
    ctl_response_free(&r);
    return rc;
}

static const char *const HEADERS[] = {"ID", "USER", "METHOD", "STATUS", "DEVICE", "CREATED"};
static const char *const FIELDS[] = {"id", "user", "method", "status", "enrollment_id",
                                     "created_at"};

static int render(const json_t *answer, struct buf *out)
{
    static const struct ctl_list_view view = {
        .key = "enrollments", .ncols = 6, .headers = HEADERS, .fields = FIELDS,
        .singular = "enrollment", .plural = "enrollments",
    };
    return ctl_render_list(answer, &view, out);
}

int ctl_enroll_list(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos) {
        ctl_fail(c, "enroll list takes no arguments (got \"%s\")", a->pos[0]);
        return CTL_EXIT_USAGE;
    }
    const char *names[] = {"user", "status", "limit", "offset"};
    struct buf path = {0};
    int rc = buf_puts(&path, "/api/v1/enrollments");
    for (size_t i = 0; rc >= 0 && i < 4; i++) {
        const char *v = ctl_args_get(a, names[i]);
        if (v)
            rc = ctl_query_add(&path, names[i], v);
    }
    if (rc < 0) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    rc = ctl_get_and_render(c, path.data, render);
    buf_free(&path);
    return rc;
}

int ctl_devices_unenroll(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "devices unenroll wants exactly one device id");
        return CTL_EXIT_USAGE;
    }
    char *enc = ctl_url_encode(a->pos[0]);
    struct buf path = {0};
    if (!enc || buf_printf(&path, "/api/v1/devices/%s/unenroll", enc) < 0) {
        free(enc);
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    free(enc);
    struct ctl_response r;
    int rc = ctl_call(c, "POST", path.data, NULL, &r);
    buf_free(&path);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        const char *uuid = json_string_value(json_object_get(r.json, "command_uuid"));
        struct buf out = {0};
        if (!uuid)
            rc = ctl_unexpected(c, &r);
        else if (buf_puts(&out, "RemoveProfile queued for ") < 0 ||
                 ctl_put_clean(&out, a->pos[0]) < 0 || buf_puts(&out, " (command ") < 0 ||
                 ctl_put_clean(&out, uuid) < 0 ||
                 buf_puts(&out, "); the enrollment is marked unenrolled.\n") < 0 ||
                 ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}
