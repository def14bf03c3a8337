/* lifecycle.c: one command across all its devices (docs/commands.md):
 * GET /api/v1/commands/{uuid} (status per device, deadline, lineage),
 * DELETE /api/v1/commands/{uuid} (cancel everywhere it still waits),
 * POST /api/v1/commands/{uuid}/retry (a new command for the devices where
 * it failed or expired), and GET /api/v1/catalog (the command catalog). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/catalog.h"
#include "core/queue.h"
#include "plist/pl.h"
#include "util/log.h"

/* ---- GET /api/v1/commands/{uuid} ------------------------------------------- */

static json_t *target_json(const struct store_command_target *t)
{
    return json_pack("{s:s,s:s,s:o,s:o,s:s?}", "device", t->enrollment_id, "status", t->status,
                     "delivered_at", api_time_json(t->delivered_at), "updated_at",
                     api_time_json(t->updated_at), "retried_as", t->retried_as);
}

void api_command_get(struct worker *w, struct request *req, struct response *resp,
                     const char *uuid)
{
    int64_t limit;
    if (api_query_int(req, resp, "limit", 1000, 1, 100000, &limit) < 0)
        return;
    struct store_command_meta *m = NULL;
    int rc = store_command_meta_get(w->store, uuid, &m);
    struct store_command_target *t = NULL;
    size_t n = 0;
    if (rc == STORE_OK)
        rc = store_command_targets(w->store, uuid, limit, &t, &n);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no command with this uuid");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "loading the command");
    } else {
        json_t *devices = json_array();
        json_t *counts = json_object();
        for (size_t i = 0; devices && counts && i < n; i++) {
            json_array_append_new(devices, target_json(&t[i]));
            json_t *c = json_object_get(counts, t[i].status);
            json_object_set_new(counts, t[i].status,
                                json_integer(c ? json_integer_value(c) + 1 : 1));
        }
        api_send_json(req, resp, 200,
                      json_pack("{s:s,s:s,s:o,s:o,s:I,s:s?,s:s?,s:o,s:o}", "command_uuid", uuid,
                                "request_type", m->request_type, "created_at",
                                api_time_json(m->created_at), "expires_at",
                                api_time_json(m->expires_at), "ttl", (json_int_t)m->ttl,
                                "retry_of", m->retry_of, "created_by", m->created_by, "counts",
                                counts, "devices", devices));
    }
    store_command_meta_free(m);
    store_command_targets_free(t, n);
}

/* ---- DELETE /api/v1/commands/{uuid} --------------------------------------- */

void api_command_cancel_all(struct worker *w, struct request *req, struct response *resp,
                            const char *uuid)
{
    int64_t n = 0;
    int rc = store_command_cancel_all(w->store, uuid, (int64_t)time(NULL), &n);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no command with this uuid");
        return;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "canceling the command");
        return;
    }
    char who[96];
    api_caller_name(w, req, who, sizeof who);
    log_warn("command_canceled_everywhere", "req=%s by=%s uuid=%s devices=%lld", req->id,
             who[0] ? who : "?", uuid, (long long)n);
    api_send_json(req, resp, 200, json_pack("{s:s,s:I}", "command_uuid", uuid, "canceled",
                                            (json_int_t)n));
}

/* ---- POST /api/v1/commands/{uuid}/retry ------------------------------------- */

/* The original command's plist with a fresh CommandUUID. */
static plist_t retry_payload(struct store *s, const char *uuid, int *rc)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    *rc = store_command_payload(s, uuid, &raw, &len);
    if (*rc != STORE_OK)
        return NULL;
    const char *why = NULL;
    plist_t p = pl_parse_dict(raw, len, &why);
    free(raw);
    if (p)
        plist_dict_remove_item(p, "CommandUUID");
    if (!p || queue_command_prepare(p, &why) < 0) {
        if (p)
            plist_free(p);
        *rc = STORE_ERR;
        return NULL;
    }
    return p;
}

static int retry_tx(struct store *s, const char *uuid, plist_t p, char **ids, size_t n,
                    const struct store_command_meta *m, const char *who,
                    struct queue_enqueued *out, int *per_id)
{
    int64_t now = (int64_t)time(NULL);
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = queue_enqueue(s, p, (const char *const *)ids, n, now, out, per_id);
    if (rc == STORE_OK)
        rc = store_command_meta_set(s, out->uuid, m->ttl > 0 ? now + m->ttl : 0, m->ttl, uuid,
                                    who[0] ? who : NULL);
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        if (per_id[i] == STORE_OK)
            rc = store_command_mark_retried(s, ids[i], uuid, out->uuid);
    if (rc == STORE_OK && out->queued > 0) {
        rc = store_commit(s);
        if (rc != STORE_OK)
            store_rollback(s);
        return rc;
    }
    store_rollback(s);
    return rc;
}

/* The optional body {"ttl": seconds} gives the retry its own deadline
 * (default: the original's ttl, counted from now). */
static int retry_ttl(const struct request *req, struct response *resp, int64_t *ttl)
{
    if (req->body_len == 0)
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
    json_t *v = json_object_get(root, "ttl");
    int ok = json_is_object(root) && (!v || (json_is_integer(v) && json_integer_value(v) >= 0));
    if (ok && v)
        *ttl = json_integer_value(v);
    json_decref(root);
    if (!ok)
        api_fail(req, resp, 400, "bad_request", "the body is {\"ttl\": seconds} or empty");
    return ok ? 0 : -1;
}

void api_command_retry(struct worker *w, struct request *req, struct response *resp,
                       const char *uuid)
{
    struct store_command_meta *m = NULL;
    char **ids = NULL;
    size_t n = 0;
    int *per_id = NULL;
    plist_t p = NULL;
    int rc = store_command_meta_get(w->store, uuid, &m);
    if (rc == STORE_OK && retry_ttl(req, resp, &m->ttl) < 0) {
        store_command_meta_free(m);
        return;
    }
    if (rc == STORE_OK)
        rc = store_command_failed_targets(w->store, uuid, &ids, &n);
    if (rc == STORE_OK && n > 0)
        p = retry_payload(w->store, uuid, &rc);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no command with this uuid");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "retrying the command");
    } else if (n == 0) {
        api_fail(req, resp, 409, "nothing_to_retry",
                 "the command did not fail or expire on any device (or was retried already)");
    } else if (!(per_id = calloc(n, sizeof *per_id))) {
        api_fail(req, resp, 500, "internal", "out of memory");
    } else {
        char who[96];
        api_caller_name(w, req, who, sizeof who);
        struct queue_enqueued out = {0};
        rc = retry_tx(w->store, uuid, p, ids, n, m, who, &out, per_id);
        if (rc != STORE_OK) {
            api_fail_store(req, resp, rc, "retrying the command");
        } else if (out.queued == 0) {
            api_fail(req, resp, 409, "nothing_to_retry",
                     "none of the devices it failed on can take it now");
        } else {
            json_t *devs = json_array();
            const char **took = calloc(n, sizeof *took);
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                if (per_id[i] == STORE_OK) {
                    json_array_append_new(devs, json_string(ids[i]));
                    if (took)
                        took[k++] = ids[i];
                }
            if (k)
                api_commands_enqueued(w, took, k);
            free(took);
            log_info("command_retried", "req=%s by=%s uuid=%s as=%s devices=%zu", req->id,
                     who[0] ? who : "?", uuid, out.uuid, out.queued);
            api_send_json(req, resp, 200,
                          json_pack("{s:s,s:s,s:s,s:o}", "command_uuid", out.uuid, "retry_of",
                                    uuid, "request_type", out.request_type, "devices", devs));
        }
    }
    if (p)
        plist_free(p);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(per_id);
    store_command_meta_free(m);
}

/* ---- GET /api/v1/catalog --------------------------------------------------------- */

static json_t *keys_json(const struct cat_key *keys, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const struct cat_key *k = &keys[i];
        json_t *o = json_pack("{s:s,s:s,s:b}", "key", k->name, "type",
                              catalog_type_name(k->type), "required",
                              (k->flags & CAT_REQUIRED) != 0);
        if (k->flags & CAT_MACOS)
            json_object_set_new(o, "macos_only", json_true());
        if (k->type == CAT_ARRAY)
            json_object_set_new(o, "items", json_string(catalog_type_name(k->item)));
        if (k->sub)
            json_object_set_new(o, "keys", keys_json(k->sub, k->nsub));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *rights_json(unsigned rights)
{
    json_t *a = json_array();
    for (unsigned bit = 1; a && bit <= RIGHTS_ALL; bit <<= 1)
        if (rights & bit)
            json_array_append_new(a, json_string(catalog_right_name(bit)));
    return a;
}

void api_catalog(struct worker *w, struct request *req, struct response *resp)
{
    (void)w;
    size_t n = 0, ns = 0;
    const struct cat_command *c = catalog_commands(&n);
    const struct cat_setting *st = catalog_settings(&ns);
    json_t *cmds = json_array();
    for (size_t i = 0; cmds && i < n; i++)
        json_array_append_new(
            cmds, json_pack("{s:s,s:I,s:o,s:b,s:b,s:b,s:o}", "request_type", c[i].request_type,
                            "access_rights", (json_int_t)c[i].rights, "rights",
                            rights_json(c[i].rights), "supervised", c[i].supervised,
                            "security_action", (c[i].flags & CAT_SECURITY) != 0,
                            "confirmation", (c[i].flags & CAT_CONFIRM) != 0, "keys",
                            keys_json(c[i].keys, c[i].nkeys)));
    json_t *items = json_array();
    for (size_t i = 0; items && i < ns; i++)
        json_array_append_new(items, json_pack("{s:s,s:o,s:b,s:o}", "item", st[i].item, "rights",
                                               rights_json(st[i].rights), "supervised",
                                               st[i].supervised, "keys",
                                               keys_json(st[i].keys, st[i].nkeys)));
    api_send_json(req, resp, 200, json_pack("{s:o,s:o}", "commands", cmds, "settings", items));
}
