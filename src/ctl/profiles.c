/* profiles.c: `stewardctl profiles …` and `groups …`: build a profile from a
 * JSON spec, import a profile file (XML, binary or signed), list, show,
 * download (signed), delete, per-device convergence status; groups with
 * static members, rules and assigned profiles. Over /api/v1/profiles and
 * /api/v1/groups (docs/profiles.md). Called by main.c's dispatch. */
#include "ctl/profiles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"

const struct ctl_optspec ctl_profiles_download_opts[] = {{"out", 1}, {"version", 1}, {NULL, 0}};
const struct ctl_optspec ctl_groups_create_opts[] = {
    {"description", 1}, {"rules", 1}, {NULL, 0}};

/* The whole file, malloc'd, or NULL after printing why. */
static char *read_file(struct ctl *c, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b = {0};
    char chunk[8192];
    size_t n;
    if (!f) {
        ctl_fail(c, "cannot open %s", path);
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, n) < 0) {
            fclose(f);
            buf_free(&b);
            ctl_fail(c, "out of memory");
            return NULL;
        }
    fclose(f);
    if (!b.data)
        buf_append(&b, "", 0);
    return buf_steal(&b, len);
}

/* "/api/v1/<kind>/<id>[/<tail>]" with id encoded. */
static int item_path(struct buf *p, const char *kind, const char *id, const char *tail)
{
    char *e = ctl_url_encode(id);
    int rc = e ? buf_printf(p, "/api/v1/%s/%s%s%s", kind, e, tail ? "/" : "", tail ? tail : "")
               : -1;
    free(e);
    return rc;
}

/* Sends and prints the answer as key: value lines (JSON with --json). */
static int call_show(struct ctl *c, const char *method, const char *path, const json_t *body,
                     const char *done)
{
    struct ctl_response r;
    int rc = ctl_call(c, method, path, body, &r);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        struct buf out = {0};
        if (!json_is_object(r.json))
            rc = ctl_unexpected(c, &r);
        else if ((done && buf_printf(&out, "%s\n\n", done) < 0) ||
                 ctl_render_keyvalues(r.json, &out) < 0 || ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}

static int want_args(struct ctl *c, const struct ctl_args *a, size_t n, const char *usage)
{
    if (a->npos == n)
        return 0;
    ctl_fail(c, "usage: stewardctl %s", usage);
    return -1;
}

/* ---- profiles ---- */

int ctl_profiles_build(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "profiles build SPEC.json") < 0)
        return CTL_EXIT_USAGE;
    json_error_t je;
    json_t *spec = json_load_file(a->pos[0], JSON_REJECT_DUPLICATES, &je);
    if (!spec) {
        ctl_fail(c, "%s: line %d: %s", a->pos[0], je.line, je.text);
        return CTL_EXIT_USAGE;
    }
    int rc = call_show(c, "POST", "/api/v1/profiles", spec, "Profile stored.");
    json_decref(spec);
    return rc;
}

int ctl_profiles_import(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "profiles import FILE.mobileconfig") < 0)
        return CTL_EXIT_USAGE;
    size_t len = 0;
    char *data = read_file(c, a->pos[0], &len);
    if (!data)
        return CTL_EXIT_FAIL;
    char *b64 = ids_b64_encode((const uint8_t *)data, len);
    free(data);
    json_t *body = b64 ? json_pack("{s:s}", "import", b64) : NULL;
    free(b64);
    if (!body) {
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    int rc = call_show(c, "POST", "/api/v1/profiles", body, "Profile imported.");
    json_decref(body);
    return rc;
}

static int render_profiles(const json_t *answer, struct buf *out)
{
    static const char *const headers[] = {"IDENTIFIER", "VERSION", "NAME", "SOURCE",
                                          "SECRETS", "SUPERVISED", "GROUPS"};
    static const char *const fields[] = {"identifier", "version", "display_name", "source",
                                         "has_secrets", "supervised_only", "groups"};
    static const struct ctl_list_view view = {
        .key = "profiles", .ncols = 7, .headers = headers, .fields = fields,
        .singular = "profile", .plural = "profiles",
    };
    return ctl_render_list(answer, &view, out);
}

int ctl_profiles_list(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "profiles list") < 0)
        return CTL_EXIT_USAGE;
    return ctl_get_and_render(c, "/api/v1/profiles", render_profiles);
}

/* GET /api/v1/<kind>/<the one argument>, printed as call_show does. */
static int show_item(struct ctl *c, const struct ctl_args *a, const char *kind, const char *usage)
{
    if (want_args(c, a, 1, usage) < 0)
        return CTL_EXIT_USAGE;
    struct buf p = {0};
    int rc = item_path(&p, kind, a->pos[0], NULL) < 0
                 ? CTL_EXIT_FAIL
                 : call_show(c, "GET", p.data, NULL, NULL);
    buf_free(&p);
    return rc;
}

int ctl_profiles_show(struct ctl *c, const struct ctl_args *a)
{
    return show_item(c, a, "profiles", "profiles show IDENTIFIER");
}

int ctl_profiles_delete(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "profiles delete IDENTIFIER") < 0)
        return CTL_EXIT_USAGE;
    struct buf p = {0};
    int rc = item_path(&p, "profiles", a->pos[0], NULL) < 0
                 ? CTL_EXIT_FAIL
                 : call_show(c, "DELETE", p.data, NULL, "Deleted; devices that have it get a RemoveProfile.");
    buf_free(&p);
    return rc;
}

static int render_status(const json_t *answer, struct buf *out)
{
    static const char *const headers[] = {"DEVICE", "STATE", "DESIRED", "INSTALLED", "ACTION",
                                          "DETAIL", "UPDATED"};
    static const char *const fields[] = {"device", "state", "desired_version",
                                         "installed_version", "action", "detail", "updated_at"};
    static const struct ctl_list_view view = {
        .key = "devices", .ncols = 7, .headers = headers, .fields = fields,
        .singular = "device", .plural = "devices",
    };
    return ctl_render_list(answer, &view, out);
}

int ctl_profiles_status(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "profiles status IDENTIFIER") < 0)
        return CTL_EXIT_USAGE;
    struct buf p = {0};
    int rc = item_path(&p, "profiles", a->pos[0], "status") < 0
                 ? CTL_EXIT_FAIL
                 : ctl_get_and_render(c, p.data, render_status);
    buf_free(&p);
    return rc;
}

int ctl_profiles_download(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "profiles download IDENTIFIER [--out FILE]") < 0)
        return CTL_EXIT_USAGE;
    struct buf p = {0};
    if (item_path(&p, "profiles", a->pos[0], "mobileconfig") < 0 ||
        (ctl_args_get(a, "version") && ctl_query_add(&p, "version", ctl_args_get(a, "version")) < 0)) {
        buf_free(&p);
        return CTL_EXIT_FAIL;
    }
    struct ctl_client *cl = ctl_connect(c);
    struct ctl_response r;
    int rc = cl && ctl_request(cl, "GET", p.data, NULL, 1, &r) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
    buf_free(&p);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (ctl_report_http_error(c, &r)) {
        ctl_response_free(&r);
        return CTL_EXIT_FAIL;
    }
    char name[600];
    const char *out = ctl_args_get(a, "out");
    if (!out) {
        snprintf(name, sizeof name, "%s.mobileconfig", a->pos[0]);
        out = name;
    }
    FILE *f = fopen(out, "wb");
    if (!f || fwrite(r.body, 1, r.len, f) != r.len || fclose(f) != 0) {
        ctl_fail(c, "cannot write %s", out);
        rc = CTL_EXIT_FAIL;
    } else {
        fprintf(c->out, "Wrote %s (%zu bytes, signed; secrets left out).\n", out, r.len);
    }
    ctl_response_free(&r);
    return rc;
}

/* ---- groups ---- */

int ctl_groups_create(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "groups create NAME [--description TEXT] [--rules JSON]") < 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_pack("{s:s}", "name", a->pos[0]);
    const char *d = ctl_args_get(a, "description"), *rules = ctl_args_get(a, "rules");
    if (d)
        json_object_set_new(body, "description", json_string(d));
    if (rules) {
        json_error_t je;
        json_t *r = json_loads(rules, 0, &je);
        if (!r) {
            json_decref(body);
            ctl_fail(c, "--rules: not JSON: %s", je.text);
            return CTL_EXIT_USAGE;
        }
        json_object_set_new(body, "rules", r);
    }
    int rc = call_show(c, "POST", "/api/v1/groups", body, "Group created.");
    json_decref(body);
    return rc;
}

static int render_groups(const json_t *answer, struct buf *out)
{
    static const char *const headers[] = {"NAME", "MEMBERS", "PROFILES", "RULES", "DESCRIPTION"};
    static const char *const fields[] = {"name", "members", "profiles", "rules", "description"};
    static const struct ctl_list_view view = {
        .key = "groups", .ncols = 5, .headers = headers, .fields = fields,
        .singular = "group", .plural = "groups",
    };
    return ctl_render_list(answer, &view, out);
}

int ctl_groups_list(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "groups list") < 0)
        return CTL_EXIT_USAGE;
    return ctl_get_and_render(c, "/api/v1/groups", render_groups);
}

/* The group with its static members, its devices (rules included) and profiles. */
int ctl_groups_show(struct ctl *c, const struct ctl_args *a)
{
    return show_item(c, a, "groups", "groups show NAME");
}

int ctl_groups_add(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos < 2) {
        ctl_fail(c, "usage: stewardctl groups add NAME DEVICE...");
        return CTL_EXIT_USAGE;
    }
    json_t *devs = json_array();
    for (size_t i = 1; i < a->npos; i++)
        json_array_append_new(devs, json_string(a->pos[i]));
    json_t *body = json_pack("{s:o}", "devices", devs);
    struct buf p = {0};
    int rc = item_path(&p, "groups", a->pos[0], "members") < 0
                 ? CTL_EXIT_FAIL
                 : call_show(c, "POST", p.data, body, "Members added.");
    buf_free(&p);
    json_decref(body);
    return rc;
}

/* DELETE /api/v1/groups/NAME/<kind>/<item>. */
static int group_delete(struct ctl *c, const struct ctl_args *a, const char *kind,
                        const char *usage, const char *done)
{
    if (want_args(c, a, 2, usage) < 0)
        return CTL_EXIT_USAGE;
    struct buf p = {0};
    char *e = ctl_url_encode(a->pos[1]);
    int rc = !e || item_path(&p, "groups", a->pos[0], kind) < 0 || buf_printf(&p, "/%s", e) < 0
                 ? CTL_EXIT_FAIL
                 : call_show(c, "DELETE", p.data, NULL, done);
    free(e);
    buf_free(&p);
    return rc;
}

int ctl_groups_remove(struct ctl *c, const struct ctl_args *a)
{
    return group_delete(c, a, "members", "groups remove NAME DEVICE", "Member removed.");
}

int ctl_groups_assign(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 2, "groups assign NAME PROFILE") < 0)
        return CTL_EXIT_USAGE;
    json_t *body = json_pack("{s:s}", "profile", a->pos[1]);
    struct buf p = {0};
    int rc = item_path(&p, "groups", a->pos[0], "profiles") < 0
                 ? CTL_EXIT_FAIL
                 : call_show(c, "POST", p.data, body, "Assigned.");
    buf_free(&p);
    json_decref(body);
    return rc;
}

int ctl_groups_unassign(struct ctl *c, const struct ctl_args *a)
{
    return group_delete(c, a, "profiles", "groups unassign NAME PROFILE", "Unassigned.");
}
