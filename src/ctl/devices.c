/* devices.c: `stewardctl devices list` and `devices show`: GET
 * /api/v1/devices (filters and paging as query parameters) and GET
 * /api/v1/devices/{id}, printed as a table or key: value lines.
 * Called by main.c's dispatch. */
#include "ctl/ctl.h"
#include "ctl/inventory.h"

#include <stdlib.h>
#include <string.h>

const struct ctl_optspec ctl_devices_list_opts[] = {
    {"search", 1}, {"status", 1}, {"serial", 1}, {"limit", 1}, {"offset", 1}, {"filter", 1},
    {NULL, 0},
};

static const char *const LIST_HEADERS[] = {"ID", "TYPE", "STATUS", "SERIAL",
                                           "OS", "PRODUCT", "NAME", "LAST SEEN"};
static const char *const LIST_FIELDS[] = {"id", "type", "status", "serial_number",
                                          "os_version", "product_name", "device_name",
                                          "last_seen_at"};
#define LIST_NCOLS (sizeof LIST_HEADERS / sizeof LIST_HEADERS[0])

static int valid_status(const char *s)
{
    return strcmp(s, "authenticated") == 0 || strcmp(s, "enrolled") == 0 ||
           strcmp(s, "checked_out") == 0;
}

/* Checks the flags and builds the request path. Returns CTL_EXIT_OK, or
 * the exit code after printing why (usage error, out of memory). */
static int list_path(struct ctl *c, const struct ctl_args *a, struct buf *path)
{
    const char *status = ctl_args_get(a, "status");
    if (a->npos) {
        ctl_fail(c, "devices list takes no arguments (got \"%s\")", a->pos[0]);
        return CTL_EXIT_USAGE;
    }
    if (status && !valid_status(status)) {
        ctl_fail(c, "--status must be authenticated, enrolled or checked_out");
        return CTL_EXIT_USAGE;
    }
    static const char *const counts[] = {"limit", "offset"};
    for (size_t i = 0; i < 2; i++) {
        const char *v = ctl_args_get(a, counts[i]);
        if (v && !ctl_is_count(v)) {
            ctl_fail(c, "--%s wants a whole number (got \"%s\")", counts[i], v);
            return CTL_EXIT_USAGE;
        }
    }
    static const char *const params[] = {"search", "status", "serial", "limit", "offset"};
    int rc = buf_puts(path, "/api/v1/devices");
    for (size_t i = 0; rc == 0 && i < sizeof params / sizeof params[0]; i++) {
        const char *v = ctl_args_get(a, params[i]);
        if (v)
            rc = ctl_query_add(path, params[i], v);
    }
    if (rc < 0) {
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    return ctl_inventory_filters(c, a, path);
}

/* Renders the list answer; exposed to the unit test through the .c file. */
static int render_device_list(const json_t *answer, struct buf *out)
{
    static const struct ctl_list_view view = {
        .key = "devices", .ncols = LIST_NCOLS, .headers = LIST_HEADERS, .fields = LIST_FIELDS,
        .singular = "device", .plural = "devices",
    };
    return ctl_render_list(answer, &view, out);
}

int ctl_devices_list(struct ctl *c, const struct ctl_args *a)
{
    struct buf path = {0};
    int rc = list_path(c, a, &path);
    if (rc != CTL_EXIT_OK) {
        buf_free(&path);
        return rc;
    }
    rc = ctl_get_and_render(c, path.data, render_device_list);
    buf_free(&path);
    return rc;
}

int ctl_devices_show(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "devices show wants exactly one device id");
        return CTL_EXIT_USAGE;
    }
    struct buf path = {0};
    char *id = ctl_url_encode(a->pos[0]);
    if (!id || buf_printf(&path, "/api/v1/devices/%s", id) < 0) {
        free(id);
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    free(id);
    int rc = ctl_get_and_render(c, path.data, ctl_render_keyvalues);
    buf_free(&path);
    return rc;
}
