/* commands.c: POST /api/v1/commands (one command, JSON or base64 plist, for
 * many devices), GET /api/v1/devices/{id}/commands (queue and history) and
 * DELETE /api/v1/devices/{id}/commands/{uuid} (cancel a waiting command).
 * Decodes and checks the request, then hands the work to core/queue.c.
 * Called by the router in app/ after api_authenticate. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/queue.h"
#include "plist/pl.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/log.h"

/* ---- POST /api/v1/commands: decoding ----------------------------------- */

/* The request, decoded. ids point into the parsed JSON (root). */
struct create_req {
    json_t *root;
    const char **ids; /* distinct device ids, in request order (point into root) */
    size_t nids;
    plist_t command;  /* the full command: {Command: {...}, CommandUUID: ...} */
    int64_t ttl;      /* seconds it may wait to be delivered, 0: no deadline */
};

static void create_req_free(struct create_req *c)
{
    json_decref(c->root);
    free(c->ids);
    if (c->command)
        plist_free(c->command);
}

/* Answers 400 with msg and returns -1 (keeps the decoding steps short). */
static int bad(const struct request *req, struct response *resp, const char *msg)
{
    api_fail(req, resp, 400, "bad_request", msg);
    return -1;
}

static int check_keys(const struct request *req, struct response *resp, json_t *root)
{
    static const char *const known[] = {"devices", "command", "command_plist", "command_uuid",
                                        "ttl"};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(key, known[i]) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            char msg[160];
            char shown[64];
            snprintf(shown, sizeof shown, "%s", key);
            snprintf(msg, sizeof msg, "unknown field \"%s\" (expected devices, command, "
                                      "command_plist, command_uuid, ttl)", shown);
            return bad(req, resp, msg);
        }
    }
    return 0;
}

/* "devices": a non-empty array of non-empty strings; duplicates are
 * dropped (ids_unique) so each id is queued once. */
static int decode_devices(const struct request *req, struct response *resp,
                          struct create_req *c)
{
    json_t *arr = json_object_get(c->root, "devices");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return bad(req, resp, "\"devices\" must be a non-empty array of device ids");
    size_t n = json_array_size(arr);
    if (n > API_MAX_COMMAND_DEVICES) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"devices\" names more than %d devices",
                 API_MAX_COMMAND_DEVICES);
        return bad(req, resp, msg);
    }
    c->ids = calloc(n, sizeof *c->ids);
    if (!c->ids) {
        api_fail(req, resp, 500, "internal", "out of memory");
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *id = json_string_value(v);
        if (!id || !*id || strlen(id) != json_string_length(v))
            return bad(req, resp, "\"devices\" entries must be non-empty strings");
        c->ids[i] = id;
    }
    c->nids = n;
    if (ids_unique(c->ids, &c->nids) < 0) {
        api_fail(req, resp, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

/* "command" (the Command dict as JSON) or "command_plist" (base64 of the
 * full command plist): exactly one of them. */
static int decode_command(const struct request *req, struct response *resp,
                          struct create_req *c)
{
    json_t *cmd = json_object_get(c->root, "command");
    json_t *b64 = json_object_get(c->root, "command_plist");
    char msg[256];
    if (!cmd == !b64)
        return bad(req, resp, "give exactly one of \"command\" and \"command_plist\"");
    if (cmd) {
        if (!json_is_object(cmd))
            return bad(req, resp, "\"command\" must be an object (the Command dictionary)");
        char err[160];
        plist_t inner = json_to_plist(cmd, err, sizeof err);
        if (!inner) {
            snprintf(msg, sizeof msg, "\"command\": %s", err);
            return bad(req, resp, msg);
        }
        if (plist_get_node_type(inner) != PLIST_DICT) {
            plist_free(inner);
            return bad(req, resp, "\"command\" must be an object (the Command dictionary)");
        }
        c->command = plist_new_dict();
        if (!c->command) {
            plist_free(inner);
            api_fail(req, resp, 500, "internal", "out of memory");
            return -1;
        }
        plist_dict_set_item(c->command, "Command", inner);
        return 0;
    }
    if (!json_is_string(b64))
        return bad(req, resp, "\"command_plist\" must be a base64 string");
    size_t len = 0;
    uint8_t *raw = ids_b64_decode(json_string_value(b64), json_string_length(b64), &len);
    if (!raw)
        return bad(req, resp, "\"command_plist\" is not valid base64");
    const char *why = NULL;
    c->command = pl_parse_dict(raw, len, &why);
    free(raw);
    if (!c->command) {
        snprintf(msg, sizeof msg, "\"command_plist\": %s", why);
        return bad(req, resp, msg);
    }
    return 0;
}

static int decode_create(const struct request *req, struct response *resp, struct create_req *c)
{
    json_error_t jerr;
    const char *body = req->body ? (const char *)req->body : "";
    c->root = json_loadb(body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!c->root) {
        char msg[256];
        snprintf(msg, sizeof msg, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        api_fail(req, resp, 400, "bad_json", msg);
        return -1;
    }
    if (!json_is_object(c->root))
        return bad(req, resp, "the body must be a JSON object");
    if (json_object_get(c->root, "request_type")) {
        /* Typed commands follow the same roles: erasing, clearing a passcode… is admin's. */
        const char *type = json_string_value(json_object_get(c->root, "request_type"));
        if (api_request_type_needs_admin(type) && api_require_role(req, resp, API_ROLE_ADMIN) < 0)
            return -1;
        return 1; /* a typed command (typed.c) */
    }
    if (check_keys(req, resp, c->root) < 0 || decode_devices(req, resp, c) < 0 ||
        decode_command(req, resp, c) < 0)
        return -1;
    json_t *uuid = json_object_get(c->root, "command_uuid");
    if (uuid) {
        if (!json_is_string(uuid) || json_string_length(uuid) == 0 ||
            strlen(json_string_value(uuid)) != json_string_length(uuid))
            return bad(req, resp, "\"command_uuid\" must be a non-empty string");
        plist_dict_set_item(c->command, "CommandUUID", plist_new_string(json_string_value(uuid)));
    }
    json_t *ttl = json_object_get(c->root, "ttl");
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
                json_integer_value(ttl) > API_MAX_TTL))
        return bad(req, resp, "\"ttl\" must be a number of seconds (>= 0)");
    c->ttl = ttl ? json_integer_value(ttl) : 0;
    const char *why = NULL;
    if (queue_command_prepare(c->command, &why) < 0)
        return bad(req, resp, why);
    /* Roles: operators send commands, but erasing a device is admin's. */
    if (api_command_needs_admin(c->command) && api_require_role(req, resp, API_ROLE_ADMIN) < 0)
        return -1;
    return 0;
}

/* ---- after an enqueue ------------------------------------------------------ */

void api_commands_enqueued(struct worker *w, const char *const *ids, size_t n)
{
    /* Wake them: APNs, when a push certificate and apns_url are set. */
    api_push_after_enqueue(w, ids, NULL, n);
}

/* ?nopush=1 (any value but "" and "0"): queue without waking the devices. */
int api_nopush_requested(const struct request *req)
{
    char text[16];
    const char *v = request_query(req, "nopush", text, sizeof text);
    return v && *v && strcmp(v, "0") != 0;
}

/* ---- POST /api/v1/commands: the answer ---------------------------------- */

static const char *enqueue_error(int rc)
{
    switch (rc) {
    case STORE_NOTFOUND:
        return "unknown device";
    case QUEUE_CHECKED_OUT:
        return "device is checked out";
    case STORE_CONFLICT:
        return "already queued";
    case QUEUE_ALREADY_PENDING:
        return "already pending: a command of this type waits for the device";
    default:
        return "could not queue";
    }
}

/* {"<id>": {"queued": true} | {"queued": false, "error": "..."}, ...} */
static json_t *per_device_json(const struct create_req *c, const int *per_id)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < c->nids; i++) {
        json_t *d = per_id[i] == STORE_OK
                        ? json_pack("{s:b}", "queued", 1)
                        : json_pack("{s:b,s:s}", "queued", 0, "error", enqueue_error(per_id[i]));
        if (json_object_set_new(o, c->ids[i], d) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* The same answer written as text (with the newline api_send_json ends
 * with): one request may name a whole fleet, and a JSON object per device
 * cost more than queueing them. */
static int answer_text(struct buf *b, const struct queue_enqueued *out,
                       const struct create_req *c, const int *per_id)
{
    int rc = buf_puts(b, "{\"command_uuid\":") < 0 || buf_json_string(b, out->uuid) < 0 ||
             buf_puts(b, ",\"request_type\":") < 0 || buf_json_string(b, out->request_type) < 0 ||
             buf_puts(b, ",\"devices\":{") < 0;
    for (size_t i = 0; !rc && i < c->nids; i++) {
        rc = (i && buf_puts(b, ",") < 0) || buf_json_string(b, c->ids[i]) < 0;
        if (!rc && per_id[i] == STORE_OK)
            rc = buf_puts(b, ":{\"queued\":true}") < 0;
        else if (!rc)
            rc = buf_puts(b, ":{\"queued\":false,\"error\":") < 0 ||
                 buf_json_string(b, enqueue_error(per_id[i])) < 0 || buf_puts(b, "}") < 0;
    }
    return rc || buf_puts(b, "}}\n") < 0 ? -1 : 0;
}

int api_enqueue_tx(struct store *s, plist_t command, const char *const *ids, size_t n,
                   struct queue_enqueued *out, int *per_id)
{
    return api_enqueue_tx_meta(s, command, ids, n, 0, NULL, out, per_id);
}

int api_enqueue_tx_meta(struct store *s, plist_t command, const char *const *ids, size_t n,
                        int64_t ttl, const char *who, struct queue_enqueued *out, int *per_id)
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    int64_t now = (int64_t)time(NULL);
    rc = queue_enqueue(s, command, ids, n, now, out, per_id);
    /* The deadline the connect endpoint and the sweep honour, and who sent it. */
    if (rc == STORE_OK && out->queued > 0 && (ttl > 0 || (who && *who)))
        rc = store_command_meta_set(s, out->uuid, ttl > 0 ? now + ttl : 0, ttl, NULL,
                                    who && *who ? who : NULL);
    if (rc == STORE_OK && out->queued > 0) {
        rc = store_commit(s);
        if (rc != STORE_OK)
            store_rollback(s);
        return rc;
    }
    store_rollback(s);
    return rc;
}

void api_commands_create(struct worker *w, struct request *req, struct response *resp)
{
    struct create_req c = {0};
    int typed = decode_create(req, resp, &c);
    if (typed == 1)
        api_typed_create(w, req, resp, c.root);
    if (typed != 0) {
        create_req_free(&c);
        return;
    }
    int *per_id = calloc(c.nids, sizeof *per_id);
    struct queue_enqueued out = {0};
    if (!per_id) {
        api_fail(req, resp, 500, "internal", "out of memory");
        create_req_free(&c);
        return;
    }
    char who[96];
    api_caller_name(w, req, who, sizeof who);
    int rc = api_enqueue_tx_meta(w->store, c.command, c.ids, c.nids, c.ttl, who, &out, per_id);
    size_t pending = 0;
    for (size_t i = 0; rc == STORE_OK && i < c.nids; i++)
        pending += per_id[i] == QUEUE_ALREADY_PENDING;
    if (rc == STORE_CONFLICT) {
        api_fail(req, resp, 409, "conflict", "a command with this command_uuid already exists");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "queueing the command");
    } else if (out.queued == 0 && pending == c.nids) {
        api_fail_with(req, resp, 409, "already_pending",
                      "a command of this type already waits for every listed device",
                      json_pack("{s:o}", "devices", per_device_json(&c, per_id)));
    } else if (out.queued == 0) {
        /* The error shape, plus why each device refused. */
        api_fail_with(req, resp, 404, "not_found", "no listed device could take the command",
                      json_pack("{s:o}", "devices", per_device_json(&c, per_id)));
    } else {
        const char **took = api_nopush_requested(req) ? NULL : calloc(out.queued, sizeof *took);
        size_t k = 0;
        for (size_t i = 0; took && i < c.nids; i++)
            if (per_id[i] == STORE_OK)
                took[k++] = c.ids[i];
        if (k)
            api_commands_enqueued(w, took, k);
        free(took);
        int status = out.queued == c.nids ? 200 : 207;
        log_info("command_queued", "req=%s uuid=%s type=%s queued=%zu of=%zu", req->id, out.uuid,
                 out.request_type, out.queued, c.nids);
        struct buf b = {0};
        if (answer_text(&b, &out, &c, per_id) < 0)
            api_fail(req, resp, 500, "internal", "out of memory");
        else
            response_set(resp, status, "application/json", b.data, b.len);
        buf_free(&b);
    }
    free(per_id);
    create_req_free(&c);
}

/* ---- GET /api/v1/devices/{id}/commands ----------------------------------- */

/* The device's last report as JSON, or null when there is none (or it
 * cannot be shown as JSON; the raw bytes stay stored). */
static json_t *result_json(const struct request *req, const struct store_queue_item *it)
{
    if (!it->result || it->result_len == 0)
        return json_null();
    const char *why = NULL;
    plist_t p = pl_parse(it->result, it->result_len, &why);
    json_t *j = p ? plist_to_json(p) : NULL;
    if (p)
        plist_free(p);
    if (!j) {
        log_warn("command_result_unshowable", "req=%s uuid=%s reason=\"%s\"", req->id, it->uuid,
                 why ? why : "not representable as JSON");
        return json_null();
    }
    return j;
}

static json_t *queue_item_json(const struct request *req, const struct store_queue_item *it)
{
    return json_pack("{s:s?,s:s?,s:s?,s:o,s:o,s:o,s:i,s:o}", "command_uuid", it->uuid,
                     "request_type", it->request_type, "status", it->status, "created_at",
                     api_time_json(it->created_at), "delivered_at", api_time_json(it->delivered_at),
                     "updated_at", api_time_json(it->updated_at), "delivery_count",
                     it->delivery_count, "result", result_json(req, it));
}

void api_device_commands_list(struct worker *w, struct request *req, struct response *resp,
                              const char *id)
{
    int64_t limit;
    if (api_query_int(req, resp, "limit", 100, 1, 1000, &limit) < 0)
        return;
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(w->store, id, &e);
    store_enrollment_free(e);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no device with this id");
        return;
    }
    struct store_queue_item *items = NULL;
    size_t n = 0;
    if (rc == STORE_OK)
        rc = store_queue_list(w->store, id, limit, &items, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing the device's commands");
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++) {
        if (json_array_append_new(list, queue_item_json(req, &items[i])) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    store_queue_items_free(items, n);
    api_send_json(req, resp, 200, list ? json_pack("{s:o}", "commands", list) : NULL);
}

/* ---- DELETE /api/v1/devices/{id}/commands/{uuid} --------------------------- */

void api_device_command_cancel(struct worker *w, struct request *req, struct response *resp,
                               const char *id, const char *uuid)
{
    int rc = store_queue_cancel(w->store, id, uuid, (int64_t)time(NULL));
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "this command is not waiting for this device");
        return;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "canceling the command");
        return;
    }
    log_info("command_canceled", "req=%s uuid=%s", req->id, uuid);
    api_send_json(req, resp, 200, json_pack("{s:b}", "canceled", 1));
}
