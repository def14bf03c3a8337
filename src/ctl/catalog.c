/* catalog.c: stewardctl's typed commands and apps (catalog.h): each verb
 * builds the JSON of a typed POST /api/v1/commands or an apps route and
 * prints what the server did per device (queued, or the refusal and why).
 * `device wipe` asks the operator to type the device's serial number
 * unless --yes. */
#include "ctl/catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct ctl_optspec ctl_ttl_opts[] = {{"ttl", 1}, {NULL, 0}};
const struct ctl_optspec ctl_device_lock_opts[] = {
    {"message", 1}, {"phone", 1}, {"ttl", 1}, {NULL, 0}};
const struct ctl_optspec ctl_device_wipe_opts[] = {
    {"yes", 0}, {"preserve-data-plan", 0}, {"disallow-proximity-setup", 0}, {"ttl", 1}, {NULL, 0}};
const struct ctl_optspec ctl_device_settings_opts[] = {
    {"data-roaming", 1}, {"voice-roaming", 1}, {"personal-hotspot", 1}, {"bluetooth", 1},
    {"name", 1},         {"time-zone", 1},     {"ttl", 1},              {NULL, 0}};
const struct ctl_optspec ctl_apps_install_opts[] = {
    {"itunes-id", 1}, {"manifest-url", 1}, {"bundle-id", 1}, {"app", 1},
    {"redemption-code", 0}, {"management-flags", 1}, {"ttl", 1}, {NULL, 0}};
const struct ctl_optspec ctl_apps_upload_opts[] = {
    {"bundle-id", 1}, {"version", 1}, {"name", 1}, {"itunes-id", 1}, {NULL, 0}};
const struct ctl_optspec ctl_apps_codes_opts[] = {{"file", 1}, {NULL, 0}};

#define CTL_MAX_UPLOAD (1024u * 1024 * 1024)

json_t *ctl_typed_body(const char *device, const char *request_type)
{
    return json_pack("{s:[s],s:s}", "devices", device, "request_type", request_type);
}

/* --ttl N into body; 0, or CTL_EXIT_USAGE after saying why. */
static int put_ttl(struct ctl *c, const struct ctl_args *a, json_t *body)
{
    const char *ttl = ctl_args_get(a, "ttl");
    if (!ttl)
        return 0;
    if (!ctl_is_count(ttl)) {
        ctl_fail(c, "--ttl wants a number of seconds");
        return CTL_EXIT_USAGE;
    }
    json_object_set_new(body, "ttl", json_integer(strtoll(ttl, NULL, 10)));
    return 0;
}

/* Prints "<type> queued for <id> (command <uuid>)" or the refusal per device. */
static int print_outcome(struct ctl *c, const struct ctl_response *r, const char *what)
{
    json_t *devs = json_object_get(r->json, "devices");
    if (!json_is_object(devs))
        return ctl_unexpected(c, r);
    struct buf out = {0};
    const char *id;
    json_t *d;
    int rc = CTL_EXIT_OK;
    json_object_foreach(devs, id, d) {
        int queued = json_is_true(json_object_get(d, "queued"));
        const char *detail = json_string_value(
            json_object_get(d, queued ? "command_uuid" : "error"));
        if (buf_puts(&out, what) < 0 ||
            buf_puts(&out, queued ? " queued for " : " refused for ") < 0 ||
            ctl_put_clean(&out, id) < 0 || buf_puts(&out, queued ? " (command " : ": ") < 0 ||
            ctl_put_clean(&out, detail ? detail : "?") < 0 ||
            buf_puts(&out, queued ? ")\n" : "\n") < 0)
            rc = CTL_EXIT_FAIL;
        if (!queued)
            rc = CTL_EXIT_FAIL;
    }
    if (ctl_write(c, &out) < 0)
        rc = CTL_EXIT_FAIL;
    buf_free(&out);
    return rc;
}

/* POSTs a typed command and prints the outcome. Takes body. */
static int send_typed(struct ctl *c, json_t *body, const char *what)
{
    struct ctl_response r;
    int rc = ctl_call(c, "POST", "/api/v1/commands", body, &r);
    if (!c->opts.json && r.status == 422 && json_object_get(r.json, "devices"))
        print_outcome(c, &r, what); /* why each device refused */
    else if (rc == CTL_EXIT_OK && !c->opts.json)
        rc = print_outcome(c, &r, what);
    ctl_response_free(&r);
    json_decref(body);
    return rc;
}

static int one_device(struct ctl *c, const struct ctl_args *a, const char *verb)
{
    if (a->npos != 1) {
        ctl_fail(c, "%s wants one device id", verb);
        return 0;
    }
    return 1;
}

/* ---- device lock / wipe / clear-passcode ----------------------------------- */

int ctl_device_lock(struct ctl *c, const struct ctl_args *a)
{
    if (!one_device(c, a, "device lock"))
        return CTL_EXIT_USAGE;
    json_t *body = ctl_typed_body(a->pos[0], "DeviceLock");
    if (ctl_args_get(a, "message"))
        json_object_set_new(body, "message", json_string(ctl_args_get(a, "message")));
    if (ctl_args_get(a, "phone"))
        json_object_set_new(body, "phone_number", json_string(ctl_args_get(a, "phone")));
    int rc = put_ttl(c, a, body);
    if (rc) {
        json_decref(body);
        return rc;
    }
    return send_typed(c, body, "DeviceLock");
}

/* The operator types the device's serial number to confirm an erase. */
static int confirm_wipe(struct ctl *c, const char *id)
{
    char *path = ctl_url_encode(id);
    struct buf p = {0};
    struct ctl_response r;
    int rc = path && buf_printf(&p, "/api/v1/devices/%s", path) == 0
                 ? ctl_call(c, "GET", p.data, NULL, &r)
                 : CTL_EXIT_FAIL;
    free(path);
    buf_free(&p);
    if (rc != CTL_EXIT_OK) {
        ctl_response_free(&r);
        return rc;
    }
    const char *serial = json_string_value(json_object_get(r.json, "serial_number"));
    char want[128];
    snprintf(want, sizeof want, "%s", serial ? serial : id);
    ctl_response_free(&r);
    fprintf(stderr, "This ERASES every piece of data on %s.\nType its serial number (%s) to "
                    "confirm: ", id, serial ? "as shown by devices show" : "no serial known: "
                                                                            "type the id");
    fflush(stderr);
    char line[256];
    if (!fgets(line, sizeof line, stdin)) {
        ctl_fail(c, "not confirmed: nothing was sent");
        return CTL_EXIT_FAIL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, want) != 0) {
        ctl_fail(c, "not confirmed (that is not the serial number): nothing was sent");
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

int ctl_device_wipe(struct ctl *c, const struct ctl_args *a)
{
    if (!one_device(c, a, "device wipe"))
        return CTL_EXIT_USAGE;
    if (!ctl_args_has(a, "yes")) {
        int rc = confirm_wipe(c, a->pos[0]);
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    json_t *body = ctl_typed_body(a->pos[0], "EraseDevice");
    json_object_set_new(body, "confirm", json_true());
    if (ctl_args_has(a, "preserve-data-plan"))
        json_object_set_new(body, "preserve_data_plan", json_true());
    if (ctl_args_has(a, "disallow-proximity-setup"))
        json_object_set_new(body, "disallow_proximity_setup", json_true());
    int rc = put_ttl(c, a, body);
    if (rc) {
        json_decref(body);
        return rc;
    }
    return send_typed(c, body, "EraseDevice");
}

int ctl_device_clear_passcode(struct ctl *c, const struct ctl_args *a)
{
    if (!one_device(c, a, "device clear-passcode"))
        return CTL_EXIT_USAGE;
    json_t *body = ctl_typed_body(a->pos[0], "ClearPasscode");
    int rc = put_ttl(c, a, body);
    if (rc) {
        json_decref(body);
        return rc;
    }
    return send_typed(c, body, "ClearPasscode");
}

/* ---- device query: the information set, one command each ---------------- */

int ctl_device_query(struct ctl *c, const struct ctl_args *a)
{
    if (!one_device(c, a, "device query"))
        return CTL_EXIT_USAGE;
    static const char *const types[] = {"DeviceInformation", "SecurityInfo", "ProfileList",
                                        "CertificateList", "InstalledApplicationList",
                                        "ProvisioningProfileList", "Restrictions"};
    int rc = CTL_EXIT_OK;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        json_t *body = ctl_typed_body(a->pos[0], types[i]);
        if (i == 0)
            json_object_set_new(
                body, "queries",
                json_pack("[sssssssssssss]", "DeviceName", "OSVersion", "BuildVersion",
                          "ModelName", "Model", "ProductName", "SerialNumber", "DeviceCapacity",
                          "AvailableDeviceCapacity", "BatteryLevel", "IsSupervised", "WiFiMAC",
                          "ServiceSubscriptions"));
        int one = send_typed(c, body, types[i]);
        if (one != CTL_EXIT_OK)
            rc = one;
    }
    return rc;
}

/* ---- device settings ---------------------------------------------------------- */

/* on/off/true/false → 1/0; -1 when neither. */
static int on_off(const char *v)
{
    if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        return 1;
    if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        return 0;
    return -1;
}

int ctl_device_settings(struct ctl *c, const struct ctl_args *a)
{
    if (!one_device(c, a, "device settings"))
        return CTL_EXIT_USAGE;
    static const struct {
        const char *flag, *item;
    } toggles[] = {{"data-roaming", "DataRoaming"},
                   {"voice-roaming", "VoiceRoaming"},
                   {"personal-hotspot", "PersonalHotspot"},
                   {"bluetooth", "Bluetooth"}};
    json_t *items = json_array();
    for (size_t i = 0; i < sizeof toggles / sizeof toggles[0]; i++) {
        const char *v = ctl_args_get(a, toggles[i].flag);
        if (!v)
            continue;
        if (on_off(v) < 0) {
            ctl_fail(c, "--%s is on or off", toggles[i].flag);
            json_decref(items);
            return CTL_EXIT_USAGE;
        }
        json_array_append_new(items, json_pack("{s:s,s:b}", "item", toggles[i].item, "enabled",
                                               on_off(v)));
    }
    if (ctl_args_get(a, "name"))
        json_array_append_new(items, json_pack("{s:s,s:s}", "item", "DeviceName", "device_name",
                                               ctl_args_get(a, "name")));
    if (ctl_args_get(a, "time-zone"))
        json_array_append_new(items, json_pack("{s:s,s:s}", "item", "TimeZone", "time_zone",
                                               ctl_args_get(a, "time-zone")));
    if (json_array_size(items) == 0) {
        ctl_fail(c, "device settings wants at least one setting (--data-roaming off, --name …)");
        json_decref(items);
        return CTL_EXIT_USAGE;
    }
    json_t *body = ctl_typed_body(a->pos[0], "Settings");
    json_object_set_new(body, "settings", items);
    int rc = put_ttl(c, a, body);
    if (rc) {
        json_decref(body);
        return rc;
    }
    return send_typed(c, body, "Settings");
}

/* ---- apps ----------------------------------------------------------------------- */

int ctl_apps_install(struct ctl *c, const struct ctl_args *a)
{
    if (!one_device(c, a, "apps install"))
        return CTL_EXIT_USAGE;
    const char *itunes = ctl_args_get(a, "itunes-id"), *url = ctl_args_get(a, "manifest-url");
    const char *bundle = ctl_args_get(a, "bundle-id"), *app = ctl_args_get(a, "app");
    if (!!itunes + !!url + !!bundle + !!app != 1) {
        ctl_fail(c, "apps install wants one of --itunes-id, --manifest-url, --bundle-id, --app");
        return CTL_EXIT_USAGE;
    }
    if (itunes && !ctl_is_count(itunes)) {
        ctl_fail(c, "--itunes-id is a number");
        return CTL_EXIT_USAGE;
    }
    const char *flags = ctl_args_get(a, "management-flags");
    if (flags && !ctl_is_count(flags)) {
        ctl_fail(c, "--management-flags is a number (1 remove with MDM, 4 no backup)");
        return CTL_EXIT_USAGE;
    }
    json_t *body = app ? json_pack("{s:[s]}", "devices", a->pos[0])
                       : ctl_typed_body(a->pos[0], "InstallApplication");
    if (itunes)
        json_object_set_new(body, "itunes_store_id", json_integer(strtoll(itunes, NULL, 10)));
    if (url)
        json_object_set_new(body, "manifest_url", json_string(url));
    if (bundle)
        json_object_set_new(body, "identifier", json_string(bundle));
    json_object_set_new(body, "management_flags",
                        json_integer(flags ? strtoll(flags, NULL, 10) : 1));
    if (app && ctl_args_has(a, "redemption-code"))
        json_object_set_new(body, "redemption_code", json_true());
    int rc = put_ttl(c, a, body);
    if (rc) {
        json_decref(body);
        return rc;
    }
    if (!app)
        return send_typed(c, body, "InstallApplication");
    char *enc = ctl_url_encode(app);
    struct buf p = {0};
    struct ctl_response r;
    rc = enc && buf_printf(&p, "/api/v1/apps/%s/install", enc) == 0
             ? ctl_call(c, "POST", p.data, body, &r)
             : CTL_EXIT_FAIL;
    if (!c->opts.json && (rc == CTL_EXIT_OK || r.status == 422) &&
        json_object_get(r.json, "devices"))
        rc = print_outcome(c, &r, "InstallApplication");
    free(enc);
    buf_free(&p);
    ctl_response_free(&r);
    json_decref(body);
    return rc;
}

int ctl_apps_remove(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 2) {
        ctl_fail(c, "apps remove wants a device id and a bundle id");
        return CTL_EXIT_USAGE;
    }
    json_t *body = ctl_typed_body(a->pos[0], "RemoveApplication");
    json_object_set_new(body, "identifier", json_string(a->pos[1]));
    return send_typed(c, body, "RemoveApplication");
}

static int read_file(const char *path, struct buf *b, char *why, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, n, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (b->len + got > CTL_MAX_UPLOAD || buf_append(b, chunk, got) < 0) {
            snprintf(why, n, "%s is too large", path);
            rc = -1;
        }
    if (rc == 0 && ferror(f)) {
        snprintf(why, n, "cannot read %s", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

static int print_app(struct ctl *c, const struct ctl_response *r)
{
    struct buf out = {0};
    int rc = ctl_render_keyvalues(r->json, &out) < 0 || ctl_write(c, &out) < 0 ? CTL_EXIT_FAIL
                                                                                : CTL_EXIT_OK;
    buf_free(&out);
    return rc;
}

int ctl_apps_upload(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "apps upload wants one .ipa file (or: apps upload --itunes-id N ...)");
        return CTL_EXIT_USAGE;
    }
    const char *bundle = ctl_args_get(a, "bundle-id");
    if (!bundle) {
        ctl_fail(c, "apps upload wants --bundle-id (the app's CFBundleIdentifier)");
        return CTL_EXIT_USAGE;
    }
    struct buf file = {0}, path = {0};
    char why[300];
    if (read_file(a->pos[0], &file, why, sizeof why) < 0) {
        ctl_fail(c, "%s", why);
        buf_free(&file);
        return CTL_EXIT_FAIL;
    }
    int ok = buf_puts(&path, "/api/v1/apps") == 0 && ctl_query_add(&path, "bundle_id", bundle) == 0;
    if (ok && ctl_args_get(a, "version"))
        ok = ctl_query_add(&path, "version", ctl_args_get(a, "version")) == 0;
    if (ok && ctl_args_get(a, "name"))
        ok = ctl_query_add(&path, "name", ctl_args_get(a, "name")) == 0;
    struct ctl_client *client = ok ? ctl_connect(c) : NULL;
    struct ctl_response r;
    memset(&r, 0, sizeof r);
    int rc = CTL_EXIT_FAIL;
    if (client && ctl_request_raw(client, "POST", path.data, file.data, file.len,
                                  "application/octet-stream", &r) == 0) {
        if (c->opts.json)
            ctl_print_json(c, &r);
        rc = ctl_report_http_error(c, &r) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
        if (rc == CTL_EXIT_OK && !c->opts.json)
            rc = print_app(c, &r);
    }
    ctl_response_free(&r);
    buf_free(&file);
    buf_free(&path);
    return rc;
}

static int render_apps(const json_t *answer, struct buf *out)
{
    static const char *const headers[] = {"ID", "KIND", "NAME", "BUNDLE", "VERSION",
                                          "ITUNES ID", "CODES FREE", "CODES USED"};
    static const char *const fields[] = {"id", "kind", "name", "bundle_id", "version",
                                         "itunes_store_id", "codes_free", "codes_used"};
    static const struct ctl_list_view view = {"apps", 8, headers, fields, "app", "apps"};
    return ctl_render_list(answer, &view, out);
}

int ctl_apps_list(struct ctl *c, const struct ctl_args *a)
{
    (void)a;
    return ctl_get_and_render(c, "/api/v1/apps", render_apps);
}

int ctl_apps_codes(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos < 2 || strcmp(a->pos[0], "import") != 0) {
        ctl_fail(c, "usage: apps codes import APPID (--file FILE | CODE ...)");
        return CTL_EXIT_USAGE;
    }
    json_t *codes = json_array();
    for (size_t i = 2; i < a->npos; i++)
        json_array_append_new(codes, json_string(a->pos[i]));
    const char *file = ctl_args_get(a, "file");
    if (file) {
        struct buf b = {0};
        char why[300];
        if (read_file(file, &b, why, sizeof why) < 0 || buf_append(&b, "", 1) < 0) {
            ctl_fail(c, "%s", why);
            buf_free(&b);
            json_decref(codes);
            return CTL_EXIT_FAIL;
        }
        for (char *save = NULL, *line = strtok_r(b.data, "\r\n", &save); line;
             line = strtok_r(NULL, "\r\n", &save))
            if (*line)
                json_array_append_new(codes, json_string(line));
        buf_free(&b);
    }
    char *enc = ctl_url_encode(a->pos[1]);
    struct buf p = {0};
    json_t *body = json_pack("{s:o}", "codes", codes);
    struct ctl_response r;
    int rc = enc && buf_printf(&p, "/api/v1/apps/%s/codes", enc) == 0
                 ? ctl_call(c, "POST", p.data, body, &r)
                 : CTL_EXIT_FAIL;
    if (rc == CTL_EXIT_OK && !c->opts.json)
        fprintf(c->out, "Imported %lld codes (%lld unused, %lld used).\n",
                (long long)json_integer_value(json_object_get(r.json, "added")),
                (long long)json_integer_value(json_object_get(r.json, "codes_free")),
                (long long)json_integer_value(json_object_get(r.json, "codes_used")));
    free(enc);
    buf_free(&p);
    json_decref(body);
    ctl_response_free(&r);
    return rc;
}

/* ---- commands show / retry / cancel everywhere --------------------------------- */

static int uuid_path(struct buf *p, const char *uuid, const char *suffix)
{
    char *enc = ctl_url_encode(uuid);
    int rc = enc ? buf_printf(p, "/api/v1/commands/%s%s", enc, suffix) : -1;
    free(enc);
    return rc;
}

static int render_command(const json_t *answer, struct buf *out)
{
    static const char *const headers[] = {"DEVICE", "STATUS", "DELIVERED", "UPDATED",
                                          "RETRIED AS"};
    static const char *const fields[] = {"device", "status", "delivered_at", "updated_at",
                                         "retried_as"};
    static const struct ctl_list_view view = {"devices", 5, headers, fields, "device",
                                              "devices"};
    json_t *head = json_deep_copy(answer);
    json_object_del(head, "devices");
    json_object_del(head, "counts");
    int rc = ctl_render_keyvalues(head, out) < 0 || buf_puts(out, "\n") < 0 ||
                     ctl_render_list(answer, &view, out) < 0
                 ? -1
                 : 0;
    json_decref(head);
    return rc;
}

int ctl_commands_show(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "commands show wants a command UUID");
        return CTL_EXIT_USAGE;
    }
    struct buf p = {0};
    int rc = uuid_path(&p, a->pos[0], "") == 0 ? ctl_get_and_render(c, p.data, render_command)
                                                : CTL_EXIT_FAIL;
    buf_free(&p);
    return rc;
}

int ctl_commands_retry(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "commands retry wants a command UUID");
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_object();
    int rc = put_ttl(c, a, body);
    struct buf p = {0};
    struct ctl_response r;
    memset(&r, 0, sizeof r);
    if (!rc)
        rc = uuid_path(&p, a->pos[0], "/retry") == 0 ? ctl_call(c, "POST", p.data, body, &r)
                                                     : CTL_EXIT_FAIL;
    if (rc == CTL_EXIT_OK && !c->opts.json)
        fprintf(c->out, "Retried as %s on %zu devices.\n",
                json_string_value(json_object_get(r.json, "command_uuid"))
                    ? json_string_value(json_object_get(r.json, "command_uuid"))
                    : "?",
                json_array_size(json_object_get(r.json, "devices")));
    buf_free(&p);
    json_decref(body);
    ctl_response_free(&r);
    return rc;
}
