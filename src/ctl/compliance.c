/* compliance.c (stewardctl): compliance policies (list, create from a JSON
 * file, show, delete), the fleet's or one device's compliance, evaluation
 * on demand, lost mode and the confirmed wipe, over /api/v1/compliance… and
 * /api/v1/devices/{id}/{compliance,lost,wipe}. Called by main.c's dispatch. */
#include "ctl/compliance.h"

#include <stdlib.h>
#include <string.h>

const struct ctl_optspec ctl_compliance_policies_opts[] = {{"file", 1}, {NULL, 0}};
const struct ctl_optspec ctl_compliance_status_opts[] = {
    {"state", 1}, {"policy", 1}, {"limit", 1}, {NULL, 0}};
const struct ctl_optspec ctl_compliance_evaluate_opts[] = {{"device", 1}, {NULL, 0}};
const struct ctl_optspec ctl_devices_lost_opts[] = {{"message", 1}, {"phone", 1}, {NULL, 0}};
const struct ctl_optspec ctl_devices_wipe_opts[] = {{"confirm", 1}, {NULL, 0}};

/* Renders rows of objects as a table of fields. -1 on OOM. */
static int table_of(json_t *arr, size_t ncols, const char *const *headers,
                    const char *const *fields, struct buf *out)
{
    struct ctl_table *t = ctl_table_new(ncols, headers);
    if (!t)
        return -1;
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(arr, i, row) {
        char *cells[8] = {0};
        for (size_t k = 0; k < ncols && k < 8; k++)
            cells[k] = ctl_json_text(json_object_get(row, fields[k]));
        rc = ctl_table_add(t, (const char *const *)cells);
        for (size_t k = 0; k < ncols && k < 8; k++)
            free(cells[k]);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = ctl_table_render(t, out);
    ctl_table_free(t);
    return rc;
}

static const char *const H_POL[] = {"ID", "NAME", "ENABLED", "IN SCOPE", "GRACE S", "WIPE",
                                    "EVALUATED"};
static const char *const F_POL[] = {"id", "name", "enabled", "devices_in_scope",
                                    "grace_seconds", "wipe_enabled", "evaluated_at"};

static int render_policies(const json_t *answer, struct buf *out)
{
    json_t *arr = json_object_get(answer, "policies");
    if (!json_is_array(arr))
        return -1;
    if (json_array_size(arr) == 0)
        return buf_printf(out, "No compliance policies.\n");
    return table_of(arr, 7, H_POL, F_POL, out);
}

static int render_policy(const json_t *answer, struct buf *out)
{
    if (!json_is_object(answer))
        return -1;
    return ctl_render_keyvalues(answer, out);
}

/* An id-ish positional as an encoded path segment; NULL after a message. */
static char *encoded(struct ctl *c, const char *s)
{
    char *e = ctl_url_encode(s);
    if (!e)
        ctl_fail(c, "out of memory");
    return e;
}

static json_t *read_json_file(struct ctl *c, const char *file)
{
    json_error_t je;
    json_t *j = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &je) : json_load_file(file, 0, &je);
    if (!j)
        ctl_fail(c, "%s: line %d: %s", file, je.line, je.text);
    return j;
}

static int send_and_render(struct ctl *c, const char *method, const char *path, json_t *body,
                           ctl_render_fn render)
{
    struct ctl_response r;
    int rc = ctl_call(c, method, path, body, &r);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        struct buf out = {0};
        if (!r.json || render(r.json, &out) < 0)
            rc = ctl_unexpected(c, &r);
        else if (ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}

int ctl_compliance_policies(struct ctl *c, const struct ctl_args *a)
{
    const char *verb = a->npos ? a->pos[0] : NULL;
    if (verb && strcmp(verb, "list") == 0 && a->npos == 1)
        return ctl_get_and_render(c, "/api/v1/compliance/policies", render_policies);
    if (verb && strcmp(verb, "create") == 0 && a->npos == 1) {
        const char *file = ctl_args_get(a, "file");
        if (!file) {
            ctl_fail(c, "policies create wants --file FILE (the policy as JSON; - reads stdin)");
            return CTL_EXIT_USAGE;
        }
        json_t *body = read_json_file(c, file);
        if (!body)
            return CTL_EXIT_USAGE;
        int rc = send_and_render(c, "POST", "/api/v1/compliance/policies", body, render_policy);
        json_decref(body);
        return rc;
    }
    if (verb && (strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) && a->npos == 2) {
        char *id = encoded(c, a->pos[1]);
        struct buf path = {0};
        if (!id || buf_printf(&path, "/api/v1/compliance/policies/%s", id) < 0) {
            free(id);
            buf_free(&path);
            return CTL_EXIT_FAIL;
        }
        free(id);
        int rc = strcmp(verb, "show") == 0
                     ? ctl_get_and_render(c, path.data, render_policy)
                     : send_and_render(c, "DELETE", path.data, NULL, render_policy);
        buf_free(&path);
        return rc;
    }
    ctl_fail(c, "usage: compliance policies list | create --file FILE | show ID | delete ID");
    return CTL_EXIT_USAGE;
}

static const char *const H_STATE[] = {"DEVICE", "POLICY", "STATE", "RULE", "OBSERVED", "SINCE"};
static const char *const F_STATE[] = {"device", "policy_id", "state", "rule", "observed", "since"};
static const char *const H_SUM[] = {"ID", "POLICY", "IN SCOPE", "COMPLIANT", "NONCOMPLIANT",
                                    "UNKNOWN"};
static const char *const F_SUM[] = {"id", "name", "devices_in_scope", "compliant",
                                    "noncompliant", "unknown"};

static int render_fleet(const json_t *answer, struct buf *out)
{
    json_t *pols = json_object_get(answer, "policies"), *rows = json_object_get(answer, "states");
    if (!json_is_array(pols) || !json_is_array(rows))
        return -1;
    if (table_of(pols, 6, H_SUM, F_SUM, out) < 0 || buf_printf(out, "\n") < 0)
        return -1;
    if (json_array_size(rows) == 0)
        return buf_printf(out, "No device out of compliance.\n");
    if (table_of(rows, 6, H_STATE, F_STATE, out) < 0)
        return -1;
    return buf_printf(out, "%zu of %lld states\n", json_array_size(rows),
                      (long long)json_integer_value(json_object_get(answer, "total")));
}

static const char *const H_DEV[] = {"POLICY", "STATE", "RULE", "OBSERVED", "SINCE", "ACTIONS"};
static const char *const F_DEV[] = {"policy", "state", "rule", "observed", "since",
                                    "actions_fired"};
static const char *const H_HIST[] = {"AT", "KIND", "POLICY", "FROM", "TO", "ACTION", "DETAIL"};
static const char *const F_HIST[] = {"at", "kind", "policy", "from", "to", "action", "detail"};

static int render_device(const json_t *answer, struct buf *out)
{
    json_t *pols = json_object_get(answer, "policies"), *hist = json_object_get(answer, "history");
    if (!json_is_array(pols) || !json_is_array(hist))
        return -1;
    const char *state = json_string_value(json_object_get(answer, "state"));
    if (buf_printf(out, "device: %s\nstate: %s\n", json_string_value(json_object_get(answer, "device")),
                   state ? state : "?") < 0)
        return -1;
    json_t *lost = json_object_get(answer, "lost");
    if (json_is_object(lost) &&
        buf_printf(out, "lost: since %s\n", json_string_value(json_object_get(lost, "at"))) < 0)
        return -1;
    if (buf_printf(out, "\n") < 0 || table_of(pols, 6, H_DEV, F_DEV, out) < 0)
        return -1;
    if (json_array_size(hist) == 0)
        return 0;
    return buf_printf(out, "\nHistory:\n") < 0 ? -1 : table_of(hist, 7, H_HIST, F_HIST, out);
}

int ctl_compliance_status(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos > 1) {
        ctl_fail(c, "compliance status takes at most one device id");
        return CTL_EXIT_USAGE;
    }
    struct buf path = {0};
    int rc = 0;
    if (a->npos == 1) {
        char *id = encoded(c, a->pos[0]);
        rc = id ? buf_printf(&path, "/api/v1/devices/%s/compliance", id) : -1;
        free(id);
    } else {
        rc = buf_printf(&path, "/api/v1/compliance");
        static const char *const keys[] = {"state", "policy", "limit"};
        for (size_t i = 0; rc == 0 && i < 3; i++) {
            const char *v = ctl_args_get(a, keys[i]);
            if (v)
                rc = ctl_query_add(&path, keys[i], v);
        }
    }
    if (rc < 0) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    rc = ctl_get_and_render(c, path.data, a->npos == 1 ? render_device : render_fleet);
    buf_free(&path);
    return rc;
}

static int render_keyvalues(const json_t *answer, struct buf *out)
{
    return json_is_object(answer) ? ctl_render_keyvalues(answer, out) : -1;
}

int ctl_compliance_evaluate(struct ctl *c, const struct ctl_args *a)
{
    json_t *body = NULL;
    const char *dev = ctl_args_get(a, "device");
    if (dev)
        body = json_pack("{s:s}", "device", dev);
    int rc = send_and_render(c, "POST", "/api/v1/compliance/evaluate", body, render_keyvalues);
    json_decref(body);
    return rc;
}

/* POST /api/v1/devices/{id}/<what> with body. */
static int device_post(struct ctl *c, const char *id, const char *what, json_t *body)
{
    char *e = encoded(c, id);
    struct buf path = {0};
    int rc = CTL_EXIT_FAIL;
    if (e && buf_printf(&path, "/api/v1/devices/%s/%s", e, what) == 0)
        rc = send_and_render(c, "POST", path.data, body, render_keyvalues);
    free(e);
    buf_free(&path);
    return rc;
}

int ctl_devices_lost(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "devices lost wants one device id");
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_object();
    const char *m = ctl_args_get(a, "message"), *p = ctl_args_get(a, "phone");
    if (m)
        json_object_set_new(body, "message", json_string(m));
    if (p)
        json_object_set_new(body, "phone", json_string(p));
    int rc = device_post(c, a->pos[0], "lost", body);
    json_decref(body);
    return rc;
}

int ctl_devices_wipe(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "devices wipe wants one device id");
        return CTL_EXIT_USAGE;
    }
    const char *confirm = ctl_args_get(a, "confirm");
    if (!confirm || strcmp(confirm, a->pos[0]) != 0) {
        ctl_fail(c, "a wipe erases the device: repeat its id with --confirm ID");
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s}", "confirm", confirm);
    int rc = device_post(c, a->pos[0], "wipe", body);
    json_decref(body);
    return rc;
}
