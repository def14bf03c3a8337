/* compliance.c (api): compliance policies (CRUD), the fleet summary with
 * per-device states, a device's compliance with history, evaluation on
 * demand, lost mode and the confirmed wipe (docs/compliance.md). Decodes
 * and checks requests, then hands the work to core/compliance.c. Called by
 * the router in app/ after api_authenticate. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compliance.h"
#include "core/queue.h"

/* The JSON object body (NULL when empty and allow_empty); -1 after a 400. */
static int body_object(const struct request *req, struct response *resp, int allow_empty,
                       json_t **out)
{
    *out = NULL;
    const char *body = req->body ? (const char *)req->body : "";
    size_t n = req->body_len;
    while (n > 0 && strchr(" \t\r\n", body[n - 1]))
        n--;
    if (n == 0) {
        if (allow_empty)
            return 0;
        api_fail(req, resp, 400, "bad_request", "a JSON object body is required");
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof msg, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        api_fail(req, resp, 400, "bad_json", msg);
        return -1;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        api_fail(req, resp, 400, "bad_request", "the body must be a JSON object");
        return -1;
    }
    *out = root;
    return 0;
}

/* A policy id from the path; -1 after a 404. */
static int policy_id(const struct request *req, struct response *resp, const char *text,
                     int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v <= 0) {
        api_fail(req, resp, 404, "not_found", "no such policy (ids are positive integers)");
        return -1;
    }
    *id = v;
    return 0;
}

/* ---- policies ------------------------------------------------------------------ */

void api_compliance_policies_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_compliance_policy *p = NULL;
    size_t n = 0;
    int rc = store_compliance_policies_list(w->store, 0, &p, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing compliance policies");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, compliance_policy_json(&p[i]));
    store_compliance_policies_free(p, n);
    api_send_json(req, resp, 200, json_pack("{s:o, s:I}", "policies", arr, "count", (json_int_t)n));
}

void api_compliance_policies_create(struct worker *w, struct request *req,
                                    struct response *resp)
{
    json_t *body = NULL;
    if (body_object(req, resp, 0, &body) < 0)
        return;
    struct store_compliance_policy p = {0};
    char err[256];
    if (compliance_policy_from_json(body, 0, &p, err, sizeof err) < 0) {
        json_decref(body);
        store_compliance_policy_clear(&p);
        api_fail(req, resp, 400, "bad_request", err);
        return;
    }
    json_decref(body);
    int64_t now = (int64_t)time(NULL);
    int64_t id = 0;
    int rc = store_compliance_policy_add(w->store, &p, now, &id);
    if (rc == STORE_CONFLICT) {
        api_fail(req, resp, 409, "conflict", "a policy with this name exists");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "creating a compliance policy");
    } else {
        store_compliance_policy_clear(&p);
        rc = store_compliance_policy_get(w->store, id, &p);
        if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "reading the new policy");
        else
            api_send_json(req, resp, 201, compliance_policy_json(&p));
    }
    store_compliance_policy_clear(&p);
}

void api_compliance_policies_get(struct worker *w, struct request *req, struct response *resp,
                                 const char *idtext)
{
    int64_t id;
    if (policy_id(req, resp, idtext, &id) < 0)
        return;
    struct store_compliance_policy p;
    int rc = store_compliance_policy_get(w->store, id, &p);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading a compliance policy");
        return;
    }
    api_send_json(req, resp, 200, compliance_policy_json(&p));
    store_compliance_policy_clear(&p);
}

void api_compliance_policies_update(struct worker *w, struct request *req,
                                    struct response *resp, const char *idtext)
{
    int64_t id;
    json_t *body = NULL;
    if (policy_id(req, resp, idtext, &id) < 0 || body_object(req, resp, 0, &body) < 0)
        return;
    struct store_compliance_policy p;
    int rc = store_compliance_policy_get(w->store, id, &p);
    if (rc != STORE_OK) {
        json_decref(body);
        api_fail_store(req, resp, rc, "reading a compliance policy");
        return;
    }
    char err[256];
    if (compliance_policy_from_json(body, 1, &p, err, sizeof err) < 0) {
        json_decref(body);
        store_compliance_policy_clear(&p);
        api_fail(req, resp, 400, "bad_request", err);
        return;
    }
    json_decref(body);
    rc = store_compliance_policy_update(w->store, &p, (int64_t)time(NULL));
    store_compliance_policy_clear(&p);
    if (rc == STORE_CONFLICT) {
        api_fail(req, resp, 409, "conflict", "a policy with this name exists");
        return;
    }
    if (rc == STORE_OK)
        rc = store_compliance_policy_get(w->store, id, &p);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "updating a compliance policy");
        return;
    }
    api_send_json(req, resp, 200, compliance_policy_json(&p));
    store_compliance_policy_clear(&p);
}

void api_compliance_policies_delete(struct worker *w, struct request *req,
                                    struct response *resp, const char *idtext)
{
    int64_t id;
    if (policy_id(req, resp, idtext, &id) < 0)
        return;
    int rc = store_compliance_policy_delete(w->store, id);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "deleting a compliance policy");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}

/* ---- the fleet ------------------------------------------------------------------ */

struct summary {
    json_t *by_policy; /* id text -> {noncompliant, unknown} */
    json_t *rows;
};

static int on_count(void *ctx, int64_t policy_id, const char *state, int64_t count)
{
    struct summary *sm = ctx;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)policy_id);
    json_t *o = json_object_get(sm->by_policy, key);
    if (!o) {
        o = json_object();
        json_object_set_new(sm->by_policy, key, o);
    }
    return json_object_set_new(o, state, json_integer(count));
}

static int on_row(void *ctx, const struct store_compliance_state *st)
{
    struct summary *sm = ctx;
    return json_array_append_new(sm->rows, compliance_state_json(st));
}

static int64_t count_of(json_t *o, const char *state)
{
    return json_integer_value(json_object_get(o, state));
}

/* Per policy: in scope, compliant, noncompliant, unknown (compliant
 * devices have no row: in scope at the last fleet run minus the others). */
static json_t *policy_summary(const struct store_compliance_policy *p, json_t *counts,
                              int64_t *nc_total, int64_t *unk_total)
{
    int64_t nc = count_of(counts, "noncompliant"), unk = count_of(counts, "unknown");
    int64_t ok = p->in_scope - nc - unk;
    *nc_total += p->enabled ? nc : 0;
    *unk_total += p->enabled ? unk : 0;
    return json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "id", (json_int_t)p->id, "name",
                     p->name, "enabled", p->enabled, "devices_in_scope", (json_int_t)p->in_scope,
                     "compliant", (json_int_t)(ok > 0 ? ok : 0), "noncompliant", (json_int_t)nc,
                     "unknown", (json_int_t)unk, "evaluated_at", api_time_json(p->evaluated_at));
}

void api_compliance_summary(struct worker *w, struct request *req, struct response *resp)
{
    char sbuf[32], pbuf[32];
    const char *state = NULL, *policy = NULL;
    int64_t limit, offset, pid = 0;
    if (api_query_text(req, resp, "state", sbuf, sizeof sbuf, &state) < 0 ||
        api_query_text(req, resp, "policy", pbuf, sizeof pbuf, &policy) < 0 ||
        api_query_int(req, resp, "limit", 100, 1, 10000, &limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT32_MAX, &offset) < 0)
        return;
    if (state && compliance_state_from_name(state) < 0) {
        api_fail(req, resp, 400, "bad_request",
                 "state must be compliant, noncompliant or unknown");
        return;
    }
    if (policy) {
        char *end = NULL;
        pid = strtoll(policy, &end, 10);
        if (!*policy || *end || pid <= 0) {
            api_fail(req, resp, 400, "bad_request", "policy must be a policy id");
            return;
        }
    }
    struct summary sm = {json_object(), json_array()};
    struct store_compliance_policy *p = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = store_begin_read(w->store);
    if (rc == STORE_OK) {
        rc = store_compliance_policies_list(w->store, 0, &p, &n);
        if (rc == STORE_OK)
            rc = store_compliance_state_counts(w->store, on_count, &sm);
        if (rc == STORE_OK)
            rc = store_compliance_states_list(w->store, state, pid, limit, offset, on_row, &sm,
                                              &total);
        int end = store_commit(w->store);
        if (rc == STORE_OK)
            rc = end;
    }
    if (rc != STORE_OK) {
        store_compliance_policies_free(p, n);
        json_decref(sm.by_policy);
        json_decref(sm.rows);
        api_fail_store(req, resp, rc, "reading compliance");
        return;
    }
    json_t *pols = json_array();
    int64_t nc = 0, unk = 0;
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)p[i].id);
        json_array_append_new(pols, policy_summary(&p[i], json_object_get(sm.by_policy, key),
                                                   &nc, &unk));
    }
    store_compliance_policies_free(p, n);
    json_decref(sm.by_policy);
    api_send_json(req, resp, 200,
                  json_pack("{s:{s:I, s:I}, s:o, s:o, s:I}", "totals", "noncompliant",
                            (json_int_t)nc, "unknown", (json_int_t)unk, "policies", pols,
                            "states", sm.rows, "total", (json_int_t)total));
}

void api_compliance_evaluate(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = NULL;
    if (body_object(req, resp, 1, &body) < 0)
        return;
    const char *device = json_string_value(json_object_get(body, "device"));
    if (body && (json_object_size(body) > 1 || (json_object_size(body) == 1 && !device))) {
        json_decref(body);
        api_fail(req, resp, 400, "bad_request",
                 "the body is empty (the whole fleet) or {\"device\": id}");
        return;
    }
    struct compliance_run run;
    int64_t now = (int64_t)time(NULL);
    int rc;
    if (device) {
        rc = store_begin(w->store);
        if (rc == STORE_OK) {
            rc = compliance_evaluate_device(w->store, device, now, &run);
            if (rc == STORE_OK)
                rc = store_commit(w->store);
            else
                (void)store_rollback(w->store); /* the evaluation's error is reported */
        }
        if (rc == STORE_OK && run.devices == 0 && run.policies > 0)
            rc = STORE_NOTFOUND; /* (with no policy nothing was looked up) */
    } else {
        rc = compliance_evaluate_fleet(w->store, now, &run);
    }
    json_decref(body);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "evaluating compliance");
        return;
    }
    api_send_json(req, resp, 200,
                  json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "devices",
                            (json_int_t)run.devices, "policies", (json_int_t)run.policies,
                            "evaluated", (json_int_t)run.evaluated, "noncompliant",
                            (json_int_t)run.noncompliant, "unknown", (json_int_t)run.unknown,
                            "transitions", (json_int_t)run.transitions, "actions",
                            (json_int_t)run.actions));
}

/* ---- one device ------------------------------------------------------------------ */

void api_device_compliance(struct worker *w, struct request *req, struct response *resp,
                           const char *id)
{
    int64_t limit;
    if (api_query_int(req, resp, "history", 50, 0, 1000, &limit) < 0)
        return;
    json_t *out = NULL;
    int rc = compliance_device_report(w->store, id, limit ? limit : 1, &out);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading a device's compliance");
        return;
    }
    if (!limit)
        json_object_set_new(out, "history", json_array());
    api_send_json(req, resp, 200, out);
}

/* An optional string member of at most max bytes; -1 after a 400. */
static int opt_string(const struct request *req, struct response *resp, json_t *body,
                      const char *name, size_t max, const char **out)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v) || json_string_length(v) > max ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"%s\" must be a string of at most %zu bytes", name, max);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static void fail_device(const struct request *req, struct response *resp, int rc,
                        const char *what)
{
    if (rc == STORE_CONFLICT)
        api_fail(req, resp, 409, "not_enrolled", "the device is not enrolled");
    else if (rc == QUEUE_ALREADY_PENDING)
        api_fail(req, resp, 409, "already_pending", "an EraseDevice already waits for the device");
    else
        api_fail_store(req, resp, rc, what);
}

void api_device_lost(struct worker *w, struct request *req, struct response *resp,
                     const char *id)
{
    json_t *body = NULL;
    if (body_object(req, resp, 1, &body) < 0)
        return;
    const char *message = NULL, *phone = NULL;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "message") != 0 && strcmp(key, "phone") != 0) {
            json_decref(body);
            api_fail(req, resp, 400, "bad_request", "unknown field (expected message, phone)");
            return;
        }
    }
    if (opt_string(req, resp, body, "message", 1024, &message) < 0 ||
        opt_string(req, resp, body, "phone", 64, &phone) < 0) {
        json_decref(body);
        return;
    }
    struct compliance_lost_result r;
    char who[96];
    api_caller_name(w, req, who, sizeof who);
    int rc = compliance_device_lost(w->store, id, message, phone, who, (int64_t)time(NULL), &r);
    json_decref(body);
    if (rc != STORE_OK) {
        fail_device(req, resp, rc, "marking a device lost");
        return;
    }
    api_send_json(req, resp, 200,
                  json_pack("{s:s, s:b, s:s, s:I, s:I, s:s}", "device", id, "lost", 1,
                            "lock_command", r.lock_uuid[0] ? r.lock_uuid : "already delivered",
                            "profiles_removed",
                            (json_int_t)r.profiles_removed, "apps_removed",
                            (json_int_t)r.apps_removed, "wipe",
                            "not sent: POST /api/v1/devices/{id}/wipe with {\"confirm\": id}"));
}

void api_device_wipe(struct worker *w, struct request *req, struct response *resp,
                     const char *id)
{
    json_t *body = NULL;
    if (body_object(req, resp, 1, &body) < 0)
        return;
    const char *confirm = json_string_value(json_object_get(body, "confirm"));
    if (!confirm || strcmp(confirm, id) != 0 || json_object_size(body) != 1) {
        json_decref(body);
        api_fail(req, resp, 400, "confirmation_required",
                 "a wipe erases the device: send {\"confirm\": \"<the device id>\"}");
        return;
    }
    json_decref(body);
    char uuid[128] = "";
    char who[96];
    api_caller_name(w, req, who, sizeof who);
    int rc = compliance_device_wipe(w->store, id, who, (int64_t)time(NULL), uuid);
    if (rc != STORE_OK) {
        fail_device(req, resp, rc, "wiping a device");
        return;
    }
    api_send_json(req, resp, 200,
                  json_pack("{s:s, s:s}", "device", id, "erase_command", uuid));
}
