/* inventory.c (stewardctl): `devices list --filter KEY=VALUE` and `devices
 * inventory ID SECTION` over GET /api/v1/devices and
 * GET /api/v1/devices/{id}/inventory/{section}: device and security as
 * "key: value" lines, the list sections as tables of their main columns.
 * Called by main.c's dispatch and devices.c. */
#include "ctl/inventory.h"

#include <stdlib.h>
#include <string.h>

/* The filter keys the server knows (docs/api.md); checked here so a typo is
 * a usage error before any request. */
static const char *const filter_keys[] = {
    "os", "os_min", "os_max", "model", "supervised", "passcode", "encryption", "battery_below",
    "app", "profile", "cert_expiring_days", "seen_before", "seen_after",
};

static int known_filter(const char *key, size_t n)
{
    for (size_t i = 0; i < sizeof filter_keys / sizeof filter_keys[0]; i++)
        if (strlen(filter_keys[i]) == n && strncmp(filter_keys[i], key, n) == 0)
            return 1;
    return 0;
}

int ctl_inventory_filters(struct ctl *c, const struct ctl_args *a, struct buf *path)
{
    for (size_t i = 0; i < a->nflags; i++) {
        if (strcmp(a->flags[i].name, "filter") != 0)
            continue;
        const char *f = a->flags[i].value;
        const char *eq = f ? strchr(f, '=') : NULL;
        if (!eq || eq == f) {
            ctl_fail(c, "--filter wants KEY=VALUE (got \"%s\")", f ? f : "");
            return CTL_EXIT_USAGE;
        }
        if (!known_filter(f, (size_t)(eq - f))) {
            ctl_fail(c, "--filter: unknown key \"%.*s\" (one of os, os_min, os_max, model, "
                        "supervised, passcode, encryption, battery_below, app, profile, "
                        "cert_expiring_days, seen_before, seen_after)",
                     (int)(eq - f), f);
            return CTL_EXIT_USAGE;
        }
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)(eq - f), f);
        if (ctl_query_add(path, key, eq + 1) < 0) {
            ctl_fail(c, "out of memory");
            return CTL_EXIT_FAIL;
        }
    }
    return CTL_EXIT_OK;
}

const struct ctl_optspec ctl_devices_inventory_opts[] = {{"limit", 1}, {NULL, 0}};

/* ---- rendering ---- */

struct section_view {
    const char *section;
    struct ctl_list_view view;
};

#define VIEW(sec, hdrs, flds, one, many)                                                      \
    {sec, {"items", sizeof hdrs / sizeof hdrs[0], hdrs, flds, one, many}}

static const char *const H_PROFILES[] = {"IDENTIFIER", "NAME", "VERSION", "MANAGED",
                                         "PAYLOAD TYPES", "SIGNER"};
static const char *const F_PROFILES[] = {"identifier", "display_name", "version", "is_managed",
                                         "payload_types", "signer"};
static const char *const H_CERTS[] = {"COMMON NAME", "ISSUER", "EXPIRES", "IDENTITY"};
static const char *const F_CERTS[] = {"common_name", "issuer", "not_after", "is_identity"};
static const char *const H_APPS[] = {"IDENTIFIER", "NAME", "VERSION", "SHORT VERSION",
                                     "BUNDLE SIZE", "DYNAMIC SIZE"};
static const char *const F_APPS[] = {"identifier", "name", "version", "short_version",
                                     "bundle_size", "dynamic_size"};
static const char *const H_MANAGED[] = {"IDENTIFIER", "STATUS", "FLAGS", "VALIDATED", "UPDATED"};
static const char *const F_MANAGED[] = {"identifier", "status", "management_flags",
                                        "is_validated", "updated_at"};
static const char *const H_PROV[] = {"NAME", "UUID", "EXPIRES"};
static const char *const F_PROV[] = {"name", "uuid", "expiry"};
static const char *const H_RESTR[] = {"SCOPE", "KIND", "NAME", "VALUE"};
static const char *const F_RESTR[] = {"scope", "kind", "name", "value"};
static const char *const H_HIST[] = {"AT", "SECTION", "ITEM", "CHANGE", "OLD", "NEW"};
static const char *const F_HIST[] = {"at", "section", "item", "change", "old_value", "new_value"};

static const struct section_view views[] = {
    VIEW("profiles", H_PROFILES, F_PROFILES, "profile", "profiles"),
    VIEW("certificates", H_CERTS, F_CERTS, "certificate", "certificates"),
    VIEW("apps", H_APPS, F_APPS, "app", "apps"),
    VIEW("managed-apps", H_MANAGED, F_MANAGED, "managed app", "managed apps"),
    VIEW("provisioning-profiles", H_PROV, F_PROV, "provisioning profile",
         "provisioning profiles"),
    VIEW("restrictions", H_RESTR, F_RESTR, "restriction", "restrictions"),
    VIEW("history", H_HIST, F_HIST, "change", "changes"),
};

int ctl_inventory_render(const char *section, const json_t *answer, struct buf *out)
{
    if (!strcmp(section, "device") || !strcmp(section, "security")) {
        const json_t *values = json_object_get(answer, "values");
        if (!json_is_object(values))
            return -1;
        if (json_object_size(values) == 0)
            return buf_printf(out, "No %s information yet.\n", section);
        return ctl_render_keyvalues(values, out);
    }
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (!strcmp(views[i].section, section))
            return ctl_render_list(answer, &views[i].view, out);
    return -1;
}

/* ctl_get_and_render takes a plain function: one per section. */
#define RENDERER(fn, sec)                                                                     \
    static int fn(const json_t *answer, struct buf *out)                                    \
    {                                                                                         \
        return ctl_inventory_render(sec, answer, out);                                        \
    }
RENDERER(r_device, "device")
RENDERER(r_security, "security")
RENDERER(r_profiles, "profiles")
RENDERER(r_certs, "certificates")
RENDERER(r_apps, "apps")
RENDERER(r_managed, "managed-apps")
RENDERER(r_prov, "provisioning-profiles")
RENDERER(r_restr, "restrictions")
RENDERER(r_hist, "history")

static const struct {
    const char *name;
    ctl_render_fn fn;
} renderers[] = {
    {"device", r_device},   {"security", r_security},       {"profiles", r_profiles},
    {"certificates", r_certs}, {"apps", r_apps},            {"managed-apps", r_managed},
    {"provisioning-profiles", r_prov}, {"restrictions", r_restr}, {"history", r_hist},
};

int ctl_devices_inventory(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 2) {
        ctl_fail(c, "devices inventory wants a device id and a section");
        return CTL_EXIT_USAGE;
    }
    ctl_render_fn fn = NULL;
    for (size_t i = 0; i < sizeof renderers / sizeof renderers[0]; i++)
        if (!strcmp(renderers[i].name, a->pos[1]))
            fn = renderers[i].fn;
    if (!fn) {
        ctl_fail(c, "unknown section \"%s\" (one of device, security, profiles, certificates, "
                    "apps, managed-apps, provisioning-profiles, restrictions, history)",
                 a->pos[1]);
        return CTL_EXIT_USAGE;
    }
    const char *limit = ctl_args_get(a, "limit");
    if (limit && !ctl_is_count(limit)) {
        ctl_fail(c, "--limit wants a whole number (got \"%s\")", limit);
        return CTL_EXIT_USAGE;
    }
    struct buf path = {0};
    char *id = ctl_url_encode(a->pos[0]);
    int rc = id && buf_printf(&path, "/api/v1/devices/%s/inventory/%s", id, a->pos[1]) == 0 ? 0
                                                                                             : -1;
    if (rc == 0 && limit)
        rc = ctl_query_add(&path, "limit", limit);
    free(id);
    if (rc < 0) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    rc = ctl_get_and_render(c, path.data, fn);
    buf_free(&path);
    return rc;
}
