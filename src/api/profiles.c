/* profiles.c: the admin API for configuration profiles, device groups,
 * assignments and convergence (docs/profiles.md, docs/api.md): build from
 * JSON or import an uploaded profile, list/show/download/delete, groups with
 * static members and rules, assignments, device attributes, and the
 * per-profile and per-device convergence state. Every change converges at
 * once (profiles/converge.c); secrets are never returned. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/queue.h"
#include "plist/pl.h"
#include "profiles/converge.h"
#include "profiles/profile.h"
#include "util/ids.h"
#include "util/log.h"

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* The body as a JSON object, or NULL after answering 400. */
static json_t *body_object(const struct request *req, struct response *resp)
{
    json_error_t je;
    json_t *j = json_loadb(req->body ? (const char *)req->body : "", req->body_len,
                           JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        char msg[256];
        if (j)
            snprintf(msg, sizeof msg, "the body must be a JSON object");
        else
            snprintf(msg, sizeof msg, "line %d column %d: %s", je.line, je.column, je.text);
        json_decref(j);
        api_fail(req, resp, 400, "bad_json", msg);
        return NULL;
    }
    return j;
}

/* Converges every device after a change; the counts go in the answer. */
static json_t *converge_now(struct worker *w)
{
    struct converge_stats st;
    int rc = converge_run(w->store, NULL, now_s(), &st);
    if (rc != STORE_OK) {
        log_warn("profile convergence failed", "rc=%d", rc);
        return json_pack("{s:s}", "error", "convergence failed; the scheduler will retry");
    }
    return json_pack("{s:I,s:I,s:I,s:I,s:I}", "devices", (json_int_t)st.devices, "installs",
                     (json_int_t)st.installs, "removes", (json_int_t)st.removes,
                     "not_applicable", (json_int_t)st.not_applicable, "settings",
                     (json_int_t)st.settings);
}

static json_t *lines_array(const char *text, char sep)
{
    json_t *a = json_array();
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len)
            json_array_append_new(a, json_stringn(p, len));
        p = e ? e + 1 : p + len;
    }
    return a;
}

static json_t *profile_json(const struct store_profile *p)
{
    json_t *o = json_pack("{s:s,s:s?,s:I,s:s?,s:o,s:o,s:b,s:b,s:s?,s:s?,s:o,s:o,s:I}",
                          "identifier", p->identifier, "display_name", p->display_name,
                          "version", (json_int_t)p->version, "payload_uuid", p->payload_uuid,
                          "payload_types", lines_array(p->types, ','), "flags",
                          lines_array(p->flags, '\n'), "has_secrets", p->has_secrets,
                          "supervised_only", p->supervised_only, "source", p->source, "signer",
                          p->signer, "created_at", api_time_json(p->created_at), "updated_at",
                          api_time_json(p->updated_at), "groups", (json_int_t)p->groups);
    return o;
}

/* ---- POST /api/v1/profiles: build (JSON) or import (a profile file) ---- */

static plist_t read_upload(const struct request *req, struct response *resp, int *built,
                           char **signer)
{
    char err[PROFILE_ERR_MAX] = "";
    size_t skip = 0;
    while (skip < req->body_len && (req->body[skip] == ' ' || req->body[skip] == '\n' ||
                                    req->body[skip] == '\r' || req->body[skip] == '\t'))
        skip++;
    plist_t root;
    if (skip < req->body_len && req->body[skip] == '{') {
        json_t *spec = body_object(req, resp);
        if (!spec)
            return NULL;
        json_t *imp = json_object_get(spec, "import");
        if (imp) { /* {"import": base64 of a profile file}, as stewardctl sends it */
            size_t len = 0;
            const char *b64 = json_string_value(imp);
            uint8_t *raw = b64 ? ids_b64_decode(b64, strlen(b64), &len) : NULL;
            *built = 0;
            root = raw ? profile_import(raw, len, signer, err, sizeof err) : NULL;
            if (!raw)
                snprintf(err, sizeof err, "import: expected base64 of a profile file");
            free(raw);
        } else {
            *built = 1;
            root = profile_build(spec, err, sizeof err);
        }
        json_decref(spec);
    } else {
        *built = 0;
        root = profile_import(req->body, req->body_len, signer, err, sizeof err);
    }
    if (!root)
        api_fail(req, resp, 400, "invalid_profile", err);
    return root;
}

void api_profiles_create(struct worker *w, struct request *req, struct response *resp)
{
    int built = 0;
    char *signer = NULL;
    plist_t root = read_upload(req, resp, &built, &signer);
    if (!root)
        return;
    struct profile_check c;
    char err[PROFILE_ERR_MAX] = "";
    if (profile_validate(root, &c, err, sizeof err) != 0) {
        api_fail(req, resp, 400, "invalid_profile", err);
        plist_free(root);
        free(signer);
        return;
    }
    char *xml = NULL;
    size_t len = 0;
    int rc = pl_to_xml(root, &xml, &len) == 0 ? STORE_OK : STORE_ERR;
    struct store_profile p = {
        .identifier = c.identifier, .display_name = c.display_name[0] ? c.display_name : NULL,
        .payload_uuid = c.uuid, .types = c.types, .flags = c.flags,
        .has_secrets = c.has_secrets, .supervised_only = c.supervised_only,
        .source = built ? "built" : "imported", .signer = signer,
    };
    if (rc == STORE_OK)
        rc = store_profile_put(w->store, &p, (const uint8_t *)xml, len, now_s());
    free(xml);
    plist_free(root);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "storing the profile");
    } else {
        log_info("profile_stored", "req=%s identifier=\"%s\" version=%lld source=%s types=%s",
                 req->id, p.identifier, (long long)p.version, p.source, c.types);
        struct store_profile *back = NULL;
        rc = store_profile_get(w->store, c.identifier, p.version, &back, NULL, NULL);
        if (rc != STORE_OK) {
            api_fail_store(req, resp, rc, "reading the profile");
        } else {
            json_t *j = profile_json(back);
            json_object_set_new(j, "convergence", converge_now(w));
            api_send_json(req, resp, 201, j);
        }
        store_profile_free(back);
    }
    profile_check_free(&c);
    free(signer);
}

void api_profiles_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_profile *p = NULL;
    size_t n = 0;
    int rc = store_profile_list(w->store, &p, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing profiles");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, profile_json(&p[i]));
    store_profiles_free(p, n);
    api_send_json(req, resp, 200, json_pack("{s:o,s:I,s:i}", "profiles", a, "total",
                                            (json_int_t)n, "offset", 0));
}

/* The stored profile (version from ?version=, current by default) parsed. */
static int load_profile(struct worker *w, struct request *req, struct response *resp,
                        const char *id, struct store_profile **p, plist_t *root)
{
    int64_t version = 0;
    if (api_query_int(req, resp, "version", 0, 0, INT64_MAX, &version) < 0)
        return -1;
    uint8_t *content = NULL;
    size_t len = 0;
    int rc = store_profile_get(w->store, id, version, p, &content, &len);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the profile");
        return -1;
    }
    const char *why = NULL;
    *root = pl_parse_dict(content, len, &why);
    free(content);
    if (!*root) {
        store_profile_free(*p);
        api_fail(req, resp, 500, "internal", "stored profile unreadable");
        return -1;
    }
    return 0;
}

void api_profiles_get(struct worker *w, struct request *req, struct response *resp,
                      const char *id)
{
    struct store_profile *p = NULL;
    plist_t root = NULL;
    if (load_profile(w, req, resp, id, &p, &root) < 0)
        return;
    plist_t shown = profile_strip_secrets(root);
    json_t *j = profile_json(p);
    json_object_set_new(j, "content", shown ? plist_to_json(shown) : json_null());
    plist_free(shown);
    plist_free(root);
    store_profile_free(p);
    api_send_json(req, resp, 200, j);
}

/* GET /api/v1/profiles/{id}/mobileconfig: signed, secrets left out. */
void api_profiles_mobileconfig(struct worker *w, struct request *req, struct response *resp,
                               const char *id)
{
    struct store_profile *p = NULL;
    plist_t root = NULL;
    if (load_profile(w, req, resp, id, &p, &root) < 0)
        return;
    plist_t shown = profile_strip_secrets(root);
    uint8_t *der = NULL;
    size_t len = 0;
    const struct profile_signer *sg = converge_signer();
    if (!sg || !shown || profile_sign(sg, shown, &der, &len) != 0) {
        api_fail(req, resp, 503, "unavailable", "no profile-signing identity");
    } else {
        response_set(resp, 200, "application/x-apple-aspen-config", der, len);
        char disp[400];
        snprintf(disp, sizeof disp, "attachment; filename=\"%s.mobileconfig\"", p->identifier);
        response_add_header(resp, "Content-Disposition", disp);
    }
    free(der);
    plist_free(shown);
    plist_free(root);
    store_profile_free(p);
}

void api_profiles_delete(struct worker *w, struct request *req, struct response *resp,
                         const char *id)
{
    int rc = store_profile_delete(w->store, id);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "deleting the profile");
        return;
    }
    log_info("profile_deleted", "req=%s identifier=\"%s\"", req->id, id);
    api_send_json(req, resp, 200, json_pack("{s:s,s:b,s:o}", "identifier", id, "deleted", 1,
                                            "convergence", converge_now(w)));
}

static json_t *state_json(const struct store_pstate *s, int with_device)
{
    json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:o}", "profile", s->identifier, "state",
                          s->state, "action", s->action, "command_uuid", s->command_uuid,
                          "detail", s->detail, "updated_at", api_time_json(s->updated_at));
    json_object_set_new(o, "desired_version",
                        s->desired_version ? json_integer(s->desired_version) : json_null());
    json_object_set_new(o, "installed_version",
                        s->installed_version ? json_integer(s->installed_version) : json_null());
    json_object_set_new(o, "installed", json_boolean(s->installed_uuid != NULL));
    if (with_device)
        json_object_set_new(o, "device", json_string(s->enrollment_id));
    return o;
}

/* GET /api/v1/profiles/{id}/status: each device's state for the profile. */
void api_profiles_status(struct worker *w, struct request *req, struct response *resp,
                         const char *id)
{
    struct store_pstate *st = NULL;
    size_t n = 0;
    int rc = store_profiles_states(w->store, NULL, id, &st, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading convergence");
        return;
    }
    json_t *devices = json_array(), *summary = json_object();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(devices, state_json(&st[i], 1));
        json_t *c = json_object_get(summary, st[i].state);
        json_object_set_new(summary, st[i].state,
                            json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    store_pstates_free(st, n);
    api_send_json(req, resp, 200,
                  json_pack("{s:s,s:o,s:o,s:I,s:i}", "profile", id, "summary", summary,
                            "devices", devices, "total", (json_int_t)n, "offset", 0));
}

/* GET /api/v1/devices/{id}/profiles: steward's state per profile, and every
 * profile the device last reported (ProfileList). */
void api_device_profiles(struct worker *w, struct request *req, struct response *resp,
                         const char *id)
{
    struct store_pstate *st = NULL;
    size_t n = 0;
    int rc = store_profiles_states(w->store, id, NULL, &st, &n);
    struct store_inv_table *t = NULL;
    if (rc == STORE_OK)
        rc = store_inventory_rows_get(w->store, id, STORE_INV_PROFILES, 0, &t);
    if (rc != STORE_OK) {
        store_pstates_free(st, n);
        api_fail_store(req, resp, rc, "reading the device's profiles");
        return;
    }
    json_t *mine = json_array(), *reported = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(mine, state_json(&st[i], 0));
    for (size_t r = 0; t && r < t->nrows; r++) {
        char **row = &t->cells[r * t->shape->ncols];
        int ours = 0;
        for (size_t i = 0; i < n && !ours; i++)
            ours = row[0] && strcmp(st[i].identifier, row[0]) == 0;
        json_array_append_new(reported,
                              json_pack("{s:s?,s:s?,s:b}", "identifier", row[0], "uuid", row[1],
                                        "steward", ours));
    }
    store_pstates_free(st, n);
    store_inv_table_free(t);
    api_send_json(req, resp, 200,
                  json_pack("{s:s,s:o,s:o}", "device", id, "profiles", mine, "reported",
                            reported));
}

/* ---- groups ---- */

static json_t *group_json(const struct store_group *g)
{
    json_t *rules = NULL;
    if (g->rules) {
        json_error_t je;
        rules = json_loads(g->rules, 0, &je);
    }
    json_error_t je;
    json_t *enter = g->enter_settings ? json_loads(g->enter_settings, 0, &je) : NULL;
    json_t *leave = g->leave_settings ? json_loads(g->leave_settings, 0, &je) : NULL;
    return json_pack("{s:s,s:s?,s:o,s:o,s:o,s:I,s:I,s:o}", "name", g->name, "description",
                     g->description, "rules", rules ? rules : json_null(), "enter_settings",
                     enter ? enter : json_null(), "leave_settings", leave ? leave : json_null(),
                     "members", (json_int_t)g->members, "profiles", (json_int_t)g->profiles,
                     "created_at", api_time_json(g->created_at));
}

/* "rules" of a group body as canonical JSON text (NULL = none), or -1. */
static int rules_text(const struct request *req, struct response *resp, json_t *body,
                      char **out)
{
    *out = NULL;
    json_t *r = json_object_get(body, "rules");
    if (!r || json_is_null(r))
        return 0;
    char *text = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS);
    char err[256] = "";
    void *parsed = text ? converge_rules_parse(text, err, sizeof err) : NULL;
    if (!parsed) {
        free(text);
        api_fail(req, resp, 400, "bad_request", err[0] ? err : "rules: unreadable");
        return -1;
    }
    converge_rules_free(parsed);
    *out = text;
    return 0;
}

/* "enter_settings" / "leave_settings": an array of Settings items (objects
 * with an "Item" string), as compact JSON text (NULL = none), or -1. */
static int settings_text(const struct request *req, struct response *resp, json_t *body,
                         const char *key, char **out)
{
    *out = NULL;
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    size_t i;
    json_t *item;
    int ok = json_is_array(v) && json_array_size(v) > 0;
    json_array_foreach(v, i, item) ok = ok && json_is_string(json_object_get(item, "Item"));
    char why[200] = "";
    plist_t check = ok ? json_to_plist(v, why, sizeof why) : NULL;
    plist_free(check);
    if (!check) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s: an array of Settings items ({\"Item\": ...})%s%s", key,
                 why[0] ? ": " : "", why);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    *out = json_dumps(v, JSON_COMPACT);
    return 0;
}

/* A group from a request body: rules and settings checked. 0 or -1 (answered). */
static int group_from_body(const struct request *req, struct response *resp, json_t *body,
                           struct store_group *g)
{
    g->description = (char *)json_string_value(json_object_get(body, "description"));
    if (rules_text(req, resp, body, &g->rules) < 0)
        return -1;
    if (settings_text(req, resp, body, "enter_settings", &g->enter_settings) < 0 ||
        settings_text(req, resp, body, "leave_settings", &g->leave_settings) < 0) {
        free(g->rules);
        free(g->enter_settings);
        g->rules = g->enter_settings = NULL;
        return -1;
    }
    return 0;
}

static void group_body_free(struct store_group *g)
{
    free(g->rules);
    free(g->enter_settings);
    free(g->leave_settings);
}

static int name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '/')
            return 0;
    return 1;
}

void api_groups_create(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "name"));
    struct store_group in = {.name = (char *)name};
    if (!name_ok(name)) {
        api_fail(req, resp, 400, "bad_request",
                 "\"name\" is required: 1-128 characters, no '/' or control characters");
    } else if (group_from_body(req, resp, body, &in) == 0) {
        int rc = store_group_create(w->store, &in, now_s());
        if (rc == STORE_CONFLICT) {
            api_fail(req, resp, 409, "conflict", "a group with this name exists");
        } else if (rc != STORE_OK) {
            api_fail_store(req, resp, rc, "creating the group");
        } else {
            struct store_group *g = NULL;
            rc = store_group_get(w->store, name, &g);
            if (rc != STORE_OK) {
                api_fail_store(req, resp, rc, "reading the group");
            } else {
                json_t *j = group_json(g);
                json_object_set_new(j, "convergence", converge_now(w));
                api_send_json(req, resp, 201, j);
            }
            store_groups_free(g, g ? 1 : 0);
        }
        group_body_free(&in);
    }
    json_decref(body);
}

void api_groups_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_group *g = NULL;
    size_t n = 0;
    int rc = store_group_list(w->store, &g, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing groups");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, group_json(&g[i]));
    store_groups_free(g, n);
    api_send_json(req, resp, 200, json_pack("{s:o,s:I,s:i}", "groups", a, "total",
                                            (json_int_t)n, "offset", 0));
}

/* The group's devices as convergence sees them (enrolled static members and
 * every enrolled device its rules match), the first GROUP_DEVICES_SHOWN of
 * them in id order: a page for the console, the total for the rest. */
#define GROUP_DEVICES_SHOWN 1000

static int group_devices(struct worker *w, const char *name, json_t *out)
{
    char **ids = NULL;
    size_t n = 0;
    int rc = converge_group_members(w->store, name, &ids, &n);
    if (rc != STORE_OK)
        return rc;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i < GROUP_DEVICES_SHOWN)
            json_array_append_new(a, json_string(ids[i]));
        free(ids[i]);
    }
    free(ids);
    json_object_set_new(out, "device_ids", a);
    json_object_set_new(out, "devices_total", json_integer((json_int_t)n));
    return STORE_OK;
}

/* Static members, devices and assigned profiles of one group. */
static json_t *group_detail(struct worker *w, const char *name, int *rc)
{
    struct store_pair *m = NULL, *a = NULL;
    size_t nm = 0, na = 0;
    *rc = store_profiles_members(w->store, &m, &nm);
    if (*rc == STORE_OK)
        *rc = store_profiles_assignments(w->store, &a, &na);
    json_t *members = json_array(), *profiles = json_array();
    for (size_t i = 0; i < nm; i++)
        if (strcmp(m[i].a, name) == 0)
            json_array_append_new(members, json_string(m[i].b));
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].a, name) == 0)
            json_array_append_new(profiles, json_string(a[i].b));
    store_pairs_free(m, nm);
    store_pairs_free(a, na);
    json_t *d = json_pack("{s:o,s:o}", "member_ids", members, "profile_ids", profiles);
    if (*rc == STORE_OK)
        *rc = group_devices(w, name, d);
    return d;
}

void api_groups_get(struct worker *w, struct request *req, struct response *resp,
                    const char *name)
{
    struct store_group *g = NULL;
    int rc = store_group_get(w->store, name, &g);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the group");
        return;
    }
    json_t *j = group_json(g);
    store_groups_free(g, 1);
    json_t *d = group_detail(w, name, &rc);
    if (rc != STORE_OK) {
        json_decref(j);
        json_decref(d);
        api_fail_store(req, resp, rc, "reading the group");
        return;
    }
    json_object_update(j, d);
    json_decref(d);
    api_send_json(req, resp, 200, j);
}

/* PUT /api/v1/groups/{name}: {"description", "rules"} (rules null = static only). */
void api_groups_update(struct worker *w, struct request *req, struct response *resp,
                       const char *name)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    struct store_group in = {.name = (char *)name};
    if (group_from_body(req, resp, body, &in) == 0) {
        int rc = store_group_update(w->store, &in);
        if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "updating the group");
        else
            api_send_json(req, resp, 200, json_pack("{s:s,s:o}", "name", name, "convergence",
                                                    converge_now(w)));
        group_body_free(&in);
    }
    json_decref(body);
}

void api_groups_delete(struct worker *w, struct request *req, struct response *resp,
                       const char *name)
{
    int rc = store_group_delete(w->store, name);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "deleting the group");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:s,s:b,s:o}", "name", name, "deleted", 1,
                                            "convergence", converge_now(w)));
}

/* POST /api/v1/groups/{name}/members: {"devices": ["id", ...]} */
void api_groups_members_add(struct worker *w, struct request *req, struct response *resp,
                            const char *name)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    json_t *devs = json_object_get(body, "devices");
    size_t i;
    json_t *d;
    int ok = json_is_array(devs) && json_array_size(devs) > 0;
    json_array_foreach(devs, i, d) ok = ok && json_is_string(d);
    if (!ok) {
        api_fail(req, resp, 400, "bad_request", "\"devices\": a non-empty array of device ids");
        json_decref(body);
        return;
    }
    int rc = store_begin(w->store);
    json_array_foreach(devs, i, d) {
        if (rc != STORE_OK)
            break;
        rc = store_group_member_add(w->store, name, json_string_value(d));
    }
    if (rc == STORE_OK)
        rc = store_commit(w->store);
    else
        store_rollback(w->store);
    if (rc == STORE_CONFLICT)
        api_fail(req, resp, 404, "not_found", "unknown group or device");
    else if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "adding members");
    else
        api_send_json(req, resp, 200, json_pack("{s:s,s:I,s:o}", "group", name, "added",
                                                (json_int_t)json_array_size(devs), "convergence",
                                                converge_now(w)));
    json_decref(body);
}

void api_groups_member_remove(struct worker *w, struct request *req, struct response *resp,
                              const char *name, const char *id)
{
    int rc = store_group_member_remove(w->store, name, id);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "removing the member");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:s,s:s,s:b,s:o}", "group", name, "device", id,
                                            "removed", 1, "convergence", converge_now(w)));
}

/* POST /api/v1/groups/{name}/profiles: {"profile": "identifier"} */
void api_groups_assign(struct worker *w, struct request *req, struct response *resp,
                       const char *name)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    const char *profile = json_string_value(json_object_get(body, "profile"));
    if (!profile) {
        api_fail(req, resp, 400, "bad_request", "\"profile\": the profile identifier");
    } else {
        int rc = store_group_assign(w->store, name, profile, now_s());
        if (rc == STORE_CONFLICT)
            api_fail(req, resp, 404, "not_found", "unknown group or profile");
        else if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "assigning the profile");
        else
            api_send_json(req, resp, 200,
                          json_pack("{s:s,s:s,s:b,s:o}", "group", name, "profile", profile,
                                    "assigned", 1, "convergence", converge_now(w)));
    }
    json_decref(body);
}

void api_groups_unassign(struct worker *w, struct request *req, struct response *resp,
                         const char *name, const char *profile)
{
    int rc = store_group_unassign(w->store, name, profile);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "unassigning the profile");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:s,s:s,s:b,s:o}", "group", name, "profile",
                                            profile, "assigned", 0, "convergence",
                                            converge_now(w)));
}

/* PUT /api/v1/devices/{id}/attributes/{name}: {"value": "..."}; DELETE clears. */
void api_device_attribute_put(struct worker *w, struct request *req, struct response *resp,
                              const char *id, const char *name)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    const char *value = json_string_value(json_object_get(body, "value"));
    if (!value || !name_ok(name)) {
        api_fail(req, resp, 400, "bad_request", "\"value\": a string");
    } else {
        int rc = store_device_attribute_set(w->store, id, name, value);
        if (rc == STORE_CONFLICT)
            api_fail(req, resp, 404, "not_found", "unknown device");
        else if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "setting the attribute");
        else
            api_send_json(req, resp, 200,
                          json_pack("{s:s,s:s,s:s,s:o}", "device", id, "name", name, "value",
                                    value, "convergence", converge_now(w)));
    }
    json_decref(body);
}

void api_device_attribute_delete(struct worker *w, struct request *req, struct response *resp,
                                 const char *id, const char *name)
{
    int rc = store_device_attribute_set(w->store, id, name, NULL);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "clearing the attribute");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:s,s:s,s:b,s:o}", "device", id, "name", name,
                                            "deleted", 1, "convergence", converge_now(w)));
}

/* ---- selective removal ---- */

/* Queues one command {RequestType: type, key: value} for the device. */
static int queue_one(struct worker *w, const char *id, const char *type, const char *key,
                     const char *value, json_t *queued)
{
    plist_t cmd = plist_new_dict();
    plist_t inner = plist_new_dict();
    plist_dict_set_item(inner, "RequestType", plist_new_string(type));
    plist_dict_set_item(inner, key, plist_new_string(value));
    plist_dict_set_item(cmd, "Command", inner);
    const char *why = NULL;
    int rc = queue_command_prepare(cmd, &why) == 0 ? STORE_OK : STORE_ERR;
    struct queue_enqueued out;
    int per_id = 0;
    const char *ids[] = {id};
    if (rc == STORE_OK)
        rc = api_enqueue_tx(w->store, cmd, ids, 1, &out, &per_id);
    if (rc == STORE_OK && per_id != STORE_OK)
        rc = per_id;
    if (rc == STORE_OK)
        json_array_append_new(queued, json_pack("{s:s,s:s,s:s}", "request_type", type, "target",
                                                value, "command_uuid", out.uuid));
    plist_free(cmd);
    return rc;
}

/* The strings of body[key] (an array), or -1 after answering 400. */
static int string_array(const struct request *req, struct response *resp, json_t *body,
                        const char *key, json_t **out)
{
    *out = json_object_get(body, key);
    if (!*out)
        return 0;
    size_t i;
    json_t *v;
    int ok = json_is_array(*out);
    json_array_foreach(*out, i, v) ok = ok && json_is_string(v) && json_string_length(v) > 0;
    if (!ok) {
        char msg[160];
        snprintf(msg, sizeof msg, "\"%s\": an array of non-empty strings", key);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    return 0;
}

/* POST /api/v1/devices/{id}/remove: {"profiles": [identifier], "provisioning_profiles":
 * [uuid], "apps": [bundle id]}: RemoveProfile / RemoveProvisioningProfile /
 * RemoveApplication for each, the device stays enrolled. A profile steward
 * still assigns to the device through a group is refused (409): convergence
 * would put it back; take the device out of the group instead. */
void api_device_remove(struct worker *w, struct request *req, struct response *resp,
                       const char *id)
{
    json_t *body = body_object(req, resp);
    if (!body)
        return;
    json_t *profiles, *prov, *apps;
    if (string_array(req, resp, body, "profiles", &profiles) < 0 ||
        string_array(req, resp, body, "provisioning_profiles", &prov) < 0 ||
        string_array(req, resp, body, "apps", &apps) < 0) {
        json_decref(body);
        return;
    }
    if (json_array_size(profiles) + json_array_size(prov) + json_array_size(apps) == 0) {
        api_fail(req, resp, 400, "bad_request",
                 "name something to remove: \"profiles\", \"provisioning_profiles\" or \"apps\"");
        json_decref(body);
        return;
    }
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(w->store, id, &e);
    store_enrollment_free(e);
    size_t i;
    json_t *v;
    json_array_foreach(profiles, i, v) {
        if (rc != STORE_OK)
            break;
        struct store_pstate *st = NULL;
        size_t n = 0;
        rc = store_profiles_states(w->store, id, json_string_value(v), &st, &n);
        int assigned = rc == STORE_OK && n == 1 && !(st[0].action && strcmp(st[0].action, "remove") == 0) &&
                       strcmp(st[0].state, "error") != 0;
        store_pstates_free(st, n);
        if (assigned) {
            char msg[400];
            snprintf(msg, sizeof msg,
                     "%s is assigned to this device through a group: remove the device from the "
                     "group or unassign the profile", json_string_value(v));
            api_fail(req, resp, 409, "conflict", msg);
            json_decref(body);
            return;
        }
    }
    json_t *queued = json_array();
    json_array_foreach(profiles, i, v) if (rc == STORE_OK) rc =
        queue_one(w, id, "RemoveProfile", "Identifier", json_string_value(v), queued);
    json_array_foreach(prov, i, v) if (rc == STORE_OK) rc =
        queue_one(w, id, "RemoveProvisioningProfile", "UUID", json_string_value(v), queued);
    json_array_foreach(apps, i, v) if (rc == STORE_OK) rc =
        queue_one(w, id, "RemoveApplication", "Identifier", json_string_value(v), queued);
    json_decref(body);
    if (rc == QUEUE_CHECKED_OUT) {
        json_decref(queued);
        api_fail(req, resp, 409, "conflict", "device is checked out");
    } else if (rc != STORE_OK) {
        json_decref(queued);
        api_fail_store(req, resp, rc, "queueing the removal");
    } else {
        log_info("selective_removal", "req=%s id=\"%s\" commands=%zu", req->id, id,
                 json_array_size(queued));
        api_send_json(req, resp, 200, json_pack("{s:s,s:o}", "device", id, "queued", queued));
    }
}
