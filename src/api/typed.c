/* typed.c: typed commands, POST /api/v1/commands with "request_type"
 * (docs/commands.md). Maps the JSON fields (snake_case or Apple's names) to
 * a Command dictionary by the catalog's types (core/catalog.h), validates
 * it, checks each target device (AccessRights, supervision, App Store,
 * UnlockToken, one pending security action), enqueues it once for every
 * device that may take it and answers per device. api_typed_submit is
 * shared with the apps routes (apps.c). Security actions are audited here. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/catalog.h"
#include "core/queue.h"
#include "plist/pl.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/log.h"

/* Fields of the request that are not command keys. */
static const char *const envelope[] = {"devices", "request_type", "command_uuid", "ttl",
                                       "confirm"};

static int is_envelope(const char *key)
{
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        if (strcmp(key, envelope[i]) == 0)
            return 1;
    return 0;
}

static void refuse(const struct request *req, struct response *resp, const char *code,
                   const char *message)
{
    api_fail(req, resp, 422, code, message);
}

/* ---- JSON -> plist by the catalog's types ------------------------------------ */

static plist_t from_json(const struct cat_key *k, enum cat_type type, json_t *v,
                         struct cat_error *err);

static plist_t wrong_type(const struct cat_key *k, enum cat_type type, struct cat_error *err)
{
    err->code = "wrong_type";
    snprintf(err->message, sizeof err->message, "%s must be %s %s", k->name,
             type == CAT_ARRAY || type == CAT_INTEGER ? "an" : "a", catalog_type_name(type));
    return NULL;
}

static const struct cat_key *key_by_name(const struct cat_key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (catalog_name_eq(keys[i].name, name))
            return &keys[i];
    return NULL;
}

/* An object's members into dict, each by the key it names (NULL keys: a
 * free-form dictionary, converted as is). skip names a member handled by
 * the caller. */
static int members_into(plist_t dict, const struct cat_key *keys, size_t n, json_t *obj,
                        const char *skip, struct cat_error *err)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        if (skip && catalog_name_eq(name, skip))
            continue;
        const struct cat_key *k = key_by_name(keys, n, name);
        if (!k) {
            err->code = "unknown_key";
            snprintf(err->message, sizeof err->message, "%.64s is not a key of this command",
                     name);
            return -1;
        }
        plist_t p = from_json(k, k->type, v, err);
        if (!p)
            return -1;
        plist_dict_set_item(dict, k->name, p);
    }
    return 0;
}

static plist_t data_from_json(const struct cat_key *k, json_t *v, struct cat_error *err)
{
    if (json_is_object(v)) {
        char why[160];
        plist_t p = json_to_plist(v, why, sizeof why);
        if (p && plist_get_node_type(p) == PLIST_DATA)
            return p;
        if (p)
            plist_free(p);
        return wrong_type(k, CAT_DATA, err);
    }
    if (!json_is_string(v))
        return wrong_type(k, CAT_DATA, err);
    size_t len = 0;
    uint8_t *raw = ids_b64_decode(json_string_value(v), json_string_length(v), &len);
    if (!raw) {
        err->code = "wrong_type";
        snprintf(err->message, sizeof err->message, "%s must be base64 data", k->name);
        return NULL;
    }
    plist_t p = plist_new_data((const char *)raw, len);
    free(raw);
    return p;
}

static plist_t from_json(const struct cat_key *k, enum cat_type type, json_t *v,
                         struct cat_error *err)
{
    char why[160];
    switch (type) {
    case CAT_STRING:
        return json_is_string(v) ? plist_new_string(json_string_value(v))
                                 : wrong_type(k, type, err);
    case CAT_INTEGER:
        return json_is_integer(v) && json_integer_value(v) >= 0
                   ? plist_new_uint((uint64_t)json_integer_value(v))
                   : wrong_type(k, type, err);
    case CAT_BOOLEAN:
        return json_is_boolean(v) ? plist_new_bool(json_is_true(v)) : wrong_type(k, type, err);
    case CAT_REAL:
        return json_is_number(v) ? plist_new_real(json_number_value(v)) : wrong_type(k, type, err);
    case CAT_DATA:
        return data_from_json(k, v, err);
    case CAT_DATE: {
        plist_t p = json_is_object(v) ? json_to_plist(v, why, sizeof why) : NULL;
        if (p && plist_get_node_type(p) == PLIST_DATE)
            return p;
        if (p)
            plist_free(p);
        return wrong_type(k, type, err);
    }
    case CAT_ARRAY: {
        if (!json_is_array(v))
            return wrong_type(k, type, err);
        plist_t arr = plist_new_array();
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it) {
            plist_t p = from_json(k, k->item, it, err);
            if (!p) {
                plist_free(arr);
                return NULL;
            }
            plist_array_append_item(arr, p);
        }
        return arr;
    }
    case CAT_DICT: {
        if (!json_is_object(v))
            return wrong_type(k, type, err);
        if (!k->sub) {
            plist_t p = json_to_plist(v, why, sizeof why);
            if (!p) {
                err->code = "wrong_type";
                snprintf(err->message, sizeof err->message, "%s: %s", k->name, why);
            }
            return p;
        }
        plist_t d = plist_new_dict();
        if (members_into(d, k->sub, k->nsub, v, NULL, err) < 0) {
            plist_free(d);
            return NULL;
        }
        return d;
    }
    }
    return wrong_type(k, type, err);
}

/* Settings: [{"item": "DataRoaming", "enabled": false}, …]; item names and
 * keys in either spelling. */
static plist_t settings_from_json(json_t *v, struct cat_error *err)
{
    if (!json_is_array(v) || json_array_size(v) == 0) {
        err->code = "wrong_type";
        snprintf(err->message, sizeof err->message,
                 "Settings must be a non-empty array of {\"item\": …} objects");
        return NULL;
    }
    plist_t arr = plist_new_array();
    size_t i;
    json_t *obj;
    json_array_foreach(v, i, obj) {
        json_t *item = NULL;
        const char *name;
        json_t *m;
        json_object_foreach(obj, name, m) if (catalog_name_eq(name, "Item")) item = m;
        const struct cat_setting *s =
            json_is_string(item) ? catalog_setting_find(json_string_value(item)) : NULL;
        if (!json_is_object(obj) || !s) {
            err->code = json_is_string(item) ? "unknown_setting" : "missing_key";
            snprintf(err->message, sizeof err->message,
                     json_is_string(item) ? "Settings[%zu].Item (%.64s) is not a Settings item"
                                          : "Settings[%zu].Item is required (a string)%.0s",
                     i, json_is_string(item) ? json_string_value(item) : "");
            plist_free(arr);
            return NULL;
        }
        plist_t d = plist_new_dict();
        plist_dict_set_item(d, "Item", plist_new_string(s->item));
        if (members_into(d, s->keys, s->nkeys, obj, "Item", err) < 0) {
            plist_free(d);
            plist_free(arr);
            return NULL;
        }
        plist_array_append_item(arr, d);
    }
    return arr;
}

/* The Command dictionary from the request's command fields. */
static plist_t command_from_json(const struct cat_command *c, json_t *root, struct cat_error *err)
{
    plist_t cmd = plist_new_dict();
    plist_dict_set_item(cmd, "RequestType", plist_new_string(c->request_type));
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v) {
        if (is_envelope(name))
            continue;
        const struct cat_key *k = key_by_name(c->keys, c->nkeys, name);
        if (!k) {
            err->code = "unknown_key";
            snprintf(err->message, sizeof err->message, "%.64s is not a key of %s", name,
                     c->request_type);
            plist_free(cmd);
            return NULL;
        }
        plist_t p = strcmp(c->request_type, "Settings") == 0 && strcmp(k->name, "Settings") == 0
                        ? settings_from_json(v, err)
                        : from_json(k, k->type, v, err);
        if (!p) {
            plist_free(cmd);
            return NULL;
        }
        plist_dict_set_item(cmd, k->name, p);
    }
    return cmd;
}

/* ---- the devices ------------------------------------------------------------- */

int api_decode_devices(const struct request *req, struct response *resp, json_t *root,
                       const char ***ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    json_t *arr = json_object_get(root, "devices");
    if (!json_is_array(arr) || json_array_size(arr) == 0 ||
        json_array_size(arr) > API_MAX_COMMAND_DEVICES) {
        char msg[128];
        snprintf(msg, sizeof msg, "\"devices\" must be a non-empty array of at most %d device ids",
                 API_MAX_COMMAND_DEVICES);
        api_fail(req, resp, 400, "bad_request", msg);
        return -1;
    }
    *ids = calloc(json_array_size(arr), sizeof **ids);
    if (!*ids) {
        api_fail(req, resp, 500, "internal", "out of memory");
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *id = json_string_value(v);
        if (!id || !*id || strlen(id) != json_string_length(v)) {
            free(*ids);
            *ids = NULL;
            api_fail(req, resp, 400, "bad_request", "\"devices\" entries must be non-empty strings");
            return -1;
        }
        (*ids)[i] = id;
    }
    *n = json_array_size(arr);
    if (ids_unique(*ids, n) < 0) { /* each id is queued once */
        free(*ids);
        *ids = NULL;
        *n = 0;
        api_fail(req, resp, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

/* What only some devices need: a refusal's message, the serial a security
 * action's audit names, a command of the device's own. */
struct target_more {
    char message[160];
    char serial[64];
    char uuid[128];
};

/* One device's outcome. Small, for a fleet of them: the rest is allocated
 * when a device needs it (more). */
struct target {
    const char *id;
    const char *code;          /* NULL: queued */
    const char *uuid;          /* the command it got: the request's, or more->uuid */
    struct target_more *more;  /* NULL until needed; freed with the targets */
    uint8_t *unlock;           /* ClearPasscode: the stored UnlockToken */
    size_t unlock_len;
};

/* t->more, allocated on first use; NULL when out of memory (the message
 * and serial then read as empty). */
static struct target_more *more(struct target *t)
{
    if (!t->more)
        t->more = calloc(1, sizeof *t->more);
    return t->more;
}

static const char *message_of(const struct target *t)
{
    return t->more ? t->more->message : "";
}

static int deny(struct target *t, const char *code, const char *fmt, const char *arg)
{
    t->code = code;
    if (more(t))
        snprintf(t->more->message, sizeof t->more->message, fmt, arg);
    return 0;
}

static void rights_missing(char *out, size_t n, int64_t granted, unsigned needed)
{
    unsigned missing = needed & ~(unsigned)granted;
    size_t o = (size_t)snprintf(out, n, "the enrollment's AccessRights (%lld) lack",
                                (long long)granted);
    for (unsigned bit = 1; bit <= RIGHTS_ALL && o < n; bit <<= 1)
        if (missing & bit)
            o += (size_t)snprintf(out + o, n - o, " %s (%u)", catalog_right_name(bit), bit);
}

/* The stored UnlockToken of a device (ClearPasscode). */
static int load_unlock_token(struct store *s, struct target *t)
{
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(s, t->id, &e);
    if (rc == STORE_OK && e->unlock_token) {
        t->unlock = e->unlock_token;
        t->unlock_len = e->unlock_token_len;
        e->unlock_token = NULL;
    }
    store_enrollment_free(e);
    return rc;
}

/* Whether the device may take the command, from its facts (found: 0 when
 * the enrollment is unknown); fills t->code when not. Returns a store_rc
 * only when the store failed. */
static int check_target(struct store *s, const struct cat_command *c,
                        const struct cat_needs *needs, const struct store_target_facts *f,
                        int found, struct target *t)
{
    if (!found)
        return deny(t, "unknown_device", "no device with this id%s", "");
    if ((c->flags & CAT_SECURITY) && more(t)) /* for the audit */
        snprintf(t->more->serial, sizeof t->more->serial, "%s", f->serial);
    if (f->status == ENROLLMENT_CHECKED_OUT)
        return deny(t, "checked_out", "the device is checked out%s", "");
    if ((c->flags & CAT_UNLOCK_TOKEN) && !f->has_unlock_token)
        return deny(t, "no_unlock_token",
                    "no UnlockToken stored for this device (it sends one in TokenUpdate "
                    "when it has a passcode)%s", "");
    if ((needs->rights & (unsigned)f->access_rights) != needs->rights) {
        t->code = "access_denied";
        if (more(t))
            rights_missing(t->more->message, sizeof t->more->message, f->access_rights,
                           needs->rights);
        return STORE_OK;
    }
    /* Unknown supervision or App Store state (no inventory yet) is let
     * through: the device itself refuses then. */
    if (needs->supervised && f->supervised == 0)
        return deny(t, "not_supervised", "%s is for supervised devices only", c->request_type);
    if (needs->app_store && f->app_store_allowed == 0)
        return deny(t, "app_store_disabled",
                    "the App Store is disabled on this device (restrictions)%s", "");
    if (c->flags & CAT_ONE_PENDING) {
        int pending = 0;
        int rc = store_queue_has_pending_type(s, t->id, c->request_type, &pending);
        if (rc != STORE_OK)
            return rc;
        if (pending)
            return deny(t, "already_pending", "a %s already waits for this device",
                        c->request_type);
    }
    return (c->flags & CAT_UNLOCK_TOKEN) ? load_unlock_token(s, t) : STORE_OK;
}

/* The facts of every target in one read, then the checks. */
static int check_targets(struct store *s, const struct cat_command *c,
                         const struct cat_needs *needs, struct target *t, size_t n)
{
    struct buf ids = {0};
    int bad = buf_append(&ids, "[", 1) < 0;
    for (size_t i = 0; !bad && i < n; i++)
        bad = (i && buf_append(&ids, ",", 1) < 0) || buf_json_string(&ids, t[i].id) < 0;
    char *text = bad || buf_append(&ids, "]", 1) < 0 ? NULL : ids.data;
    struct store_target_facts *facts = calloc(n, sizeof *facts);
    int *found = calloc(n, sizeof *found);
    /* supervision and the App Store come from inventory, read only when
     * the command needs them */
    int inventory = needs->supervised || needs->app_store;
    int rc = text && facts && found
                 ? store_command_target_facts_many(s, text, n, inventory, facts, found)
                 : STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        rc = check_target(s, c, needs, &facts[i], found[i], &t[i]);
    buf_free(&ids);
    free(facts);
    free(found);
    return rc;
}

/* ---- enqueueing ---------------------------------------------------------------- */

/* A prepared command ({Command, CommandUUID}) built around a copy of cmd. */
static plist_t wrap(plist_t cmd, const char *uuid, const char **why)
{
    plist_t full = plist_new_dict();
    plist_dict_set_item(full, "Command", plist_copy(cmd));
    if (uuid)
        plist_dict_set_item(full, "CommandUUID", plist_new_string(uuid));
    if (queue_command_prepare(full, why) < 0) {
        plist_free(full);
        return NULL;
    }
    return full;
}

/* Stores one command for ids (all checked) with its lifecycle row. */
static int enqueue_one(struct store *s, plist_t full, const char *const *ids, size_t n,
                       const struct typed_opts *o, int64_t now, int *per_id,
                       struct queue_enqueued *out)
{
    int rc = queue_enqueue_checked(s, full, ids, n, now, out, per_id);
    if (rc != STORE_OK)
        return rc;
    return store_command_meta_set(s, out->uuid, o->ttl > 0 ? now + o->ttl : 0, o->ttl,
                                  o->retry_of, o->who[0] ? o->who : NULL);
}

/* The redemption code step of a VPP install: ApplyRedemptionCode with one
 * code of the app's pool, right after the InstallApplication. */
static int enqueue_redemption(struct store *s, const struct typed_opts *o, struct target *t,
                              int64_t now)
{
    char *code = NULL;
    int rc = store_app_code_take(s, o->vpp_app, t->id, now, &code);
    if (rc == STORE_NOTFOUND) {
        return deny(t, "no_redemption_code", "the app's redemption code pool is empty%s", "");
    }
    if (rc != STORE_OK)
        return rc;
    plist_t cmd = plist_new_dict();
    plist_dict_set_item(cmd, "RequestType", plist_new_string("ApplyRedemptionCode"));
    plist_dict_set_item(cmd, "Identifier", plist_new_string(o->vpp_bundle));
    plist_dict_set_item(cmd, "RedemptionCode", plist_new_string(code));
    free(code);
    const char *why = NULL;
    plist_t full = wrap(cmd, NULL, &why);
    plist_free(cmd);
    if (!full)
        return STORE_ERR;
    int per = 0;
    struct queue_enqueued out = {0};
    rc = enqueue_one(s, full, &t->id, 1, o, now, &per, &out);
    plist_free(full);
    return rc;
}

/* Everything in one transaction: one shared payload for all accepted
 * devices, or one per device where the payload differs (UnlockToken). */
static int enqueue_all(struct store *s, const struct cat_command *c, plist_t cmd,
                       struct target *t, size_t n, const struct typed_opts *o, char *uuid_out,
                       size_t *queued)
{
    int64_t now = (int64_t)time(NULL);
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    int *per = calloc(n ? n : 1, sizeof *per);
    size_t *idx = calloc(n ? n : 1, sizeof *idx);
    int rc = ids && per && idx ? store_begin(s) : STORE_ERR;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!t[i].code) {
            idx[m] = i;
            ids[m++] = t[i].id;
        }
    const char *why = NULL;
    struct queue_enqueued out = {0};
    if (rc == STORE_OK && m > 0 && !(c->flags & CAT_UNLOCK_TOKEN)) {
        plist_t full = wrap(cmd, o->command_uuid, &why);
        rc = full ? enqueue_one(s, full, ids, m, o, now, per, &out) : STORE_ERR;
        if (full)
            plist_free(full);
        snprintf(uuid_out, 128, "%s", out.uuid);
        for (size_t j = 0; rc == STORE_OK && j < m; j++)
            t[idx[j]].uuid = uuid_out; /* one command for all of them */
    } else if (rc == STORE_OK) {
        for (size_t j = 0; rc == STORE_OK && j < m; j++) {
            struct target *d = &t[idx[j]];
            plist_t mine = plist_copy(cmd);
            plist_dict_set_item(mine, "UnlockToken",
                                plist_new_data((const char *)d->unlock, d->unlock_len));
            plist_t full = wrap(mine, m == 1 ? o->command_uuid : NULL, &why);
            plist_free(mine);
            rc = full ? enqueue_one(s, full, &d->id, 1, o, now, &per[j], &out) : STORE_ERR;
            if (full)
                plist_free(full);
            if (more(d)) {
                snprintf(d->more->uuid, sizeof d->more->uuid, "%s", out.uuid);
                d->uuid = d->more->uuid;
            } else if (rc == STORE_OK) {
                rc = STORE_ERR; /* its command is queued, but the answer could not name it */
            }
            if (j == 0)
                snprintf(uuid_out, 128, "%s", out.uuid);
        }
    }
    *queued = 0;
    for (size_t j = 0; rc == STORE_OK && j < m; j++) {
        struct target *d = &t[idx[j]];
        if (per[j] == QUEUE_ALREADY_PENDING) {
            deny(d, "already_pending", "a %s already waits for this device", c->request_type);
            continue;
        }
        if (per[j] != STORE_OK) {
            char why_not[32];
            snprintf(why_not, sizeof why_not, "%d", per[j]);
            deny(d, per[j] == STORE_CONFLICT ? "already_queued" : "not_queued",
                 "could not queue (%s)", why_not);
            continue;
        }
        if (o->vpp_app)
            rc = enqueue_redemption(s, o, d, now);
        if (rc == STORE_OK && !d->code)
            (*queued)++;
    }
    if (rc == STORE_OK && *queued > 0) {
        rc = store_commit(s);
        if (rc != STORE_OK)
            store_rollback(s);
    } else if (ids && per && idx) {
        store_rollback(s);
    }
    free(ids);
    free(per);
    free(idx);
    return rc;
}

/* The fleet case first: one statement queues the command for every target,
 * checking what SQL can (known, not checked out, AccessRights, supervision
 * and the App Store by inventory), without reading each one's facts. Only
 * when a target fails one of them (nothing is kept then), or the command is
 * checked per device in ways SQL is not (UnlockToken, one pending, the
 * security audit's serial, VPP codes), does the caller check each target for
 * its own answer: *queued 0. A CommandUUID that exists goes that way too,
 * so the answer is the checked path's. */
static int enqueue_fleet(struct store *s, const struct cat_command *c,
                         const struct cat_needs *needs, plist_t cmd, struct target *t, size_t n,
                         const struct typed_opts *o, char *uuid_out, size_t *queued)
{
    *queued = 0;
    if (n < 2 || (c->flags & (CAT_UNLOCK_TOKEN | CAT_ONE_PENDING | CAT_SECURITY)) || o->vpp_app)
        return STORE_OK;
    const char **ids = calloc(n, sizeof *ids);
    if (!ids)
        return STORE_ERR;
    const char *why = NULL;
    plist_t full = wrap(cmd, o->command_uuid, &why);
    int rc = full ? store_begin(s) : STORE_OK; /* a bad command_uuid: the checked path says so */
    if (!full || rc != STORE_OK) {
        free(ids);
        if (full)
            plist_free(full);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = t[i].id;
    int64_t now = (int64_t)time(NULL);
    struct store_target_needs sn = {
        .rights = needs->rights, .supervised = needs->supervised, .app_store = needs->app_store};
    struct queue_enqueued out = {0};
    rc = queue_enqueue_fleet(s, full, ids, n, &sn, now, &out);
    plist_free(full);
    free(ids);
    if (rc == STORE_OK && out.queued == n)
        rc = store_command_meta_set(s, out.uuid, o->ttl > 0 ? now + o->ttl : 0, o->ttl,
                                    o->retry_of, o->who[0] ? o->who : NULL);
    if (rc == STORE_OK && out.queued == n) {
        rc = store_commit(s);
        if (rc != STORE_OK) {
            store_rollback(s);
            return rc;
        }
        snprintf(uuid_out, 128, "%s", out.uuid);
        for (size_t i = 0; i < n; i++)
            t[i].uuid = uuid_out;
        *queued = n;
        return STORE_OK;
    }
    store_rollback(s);
    return rc == STORE_CONFLICT ? STORE_OK : rc;
}

/* ---- the answer ------------------------------------------------------------------ */

static json_t *targets_json(const struct target *t, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        json_t *d = t[i].code ? json_pack("{s:b,s:s,s:s}", "queued", 0, "code", t[i].code,
                                          "error", message_of(&t[i]))
                              : json_pack("{s:b,s:s}", "queued", 1, "command_uuid",
                                          t[i].uuid ? t[i].uuid : "");
        json_object_set_new(o, t[i].id, d);
    }
    return o;
}

/* The success answer, written directly: with a whole fleet in one request,
 * building a JSON object per device cost more than queueing them. */
static int answer_text(struct buf *b, const char *uuid, const char *type, const struct target *t,
                       size_t n)
{
    int rc = buf_puts(b, "{\"command_uuid\":") < 0 || buf_json_string(b, uuid) < 0 ||
             buf_puts(b, ",\"request_type\":") < 0 || buf_json_string(b, type) < 0 ||
             buf_puts(b, ",\"devices\":{") < 0;
    for (size_t i = 0; !rc && i < n; i++) {
        rc = (i && buf_puts(b, ",") < 0) || buf_json_string(b, t[i].id) < 0;
        if (!rc && t[i].code)
            rc = buf_puts(b, ":{\"queued\":false,\"code\":") < 0 ||
                 buf_json_string(b, t[i].code) < 0 || buf_puts(b, ",\"error\":") < 0 ||
                 buf_json_string(b, message_of(&t[i])) < 0 || buf_puts(b, "}") < 0;
        else if (!rc)
            rc = buf_puts(b, ":{\"queued\":true,\"command_uuid\":") < 0 ||
                 buf_json_string(b, t[i].uuid ? t[i].uuid : "") < 0 || buf_puts(b, "}") < 0;
    }
    return rc || buf_puts(b, "}}") < 0 ? -1 : 0;
}

/* Security actions: who asked what for which device, at warn level and as
 * an event on the device, whether it was queued or refused. */
static void audit(struct store *s, const struct request *req, const struct cat_command *c,
                  const struct typed_opts *o, const struct target *t, size_t n)
{
    if (!(c->flags & CAT_SECURITY))
        return;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        char q[160];
        const char *uuid = t[i].code || !t[i].uuid ? "-" : t[i].uuid;
        log_warn("security_action", "req=%s by=%s type=%s device=%s serial=%s uuid=%s result=%s",
                 req->id, o->who[0] ? o->who : "?", c->request_type,
                 log_quote(q, sizeof q, t[i].id), t[i].more ? t[i].more->serial : "", uuid,
                 t[i].code ? t[i].code : "queued");
        char detail[384];
        snprintf(detail, sizeof detail, "%s %s by %s (command %s)", c->request_type,
                 t[i].code ? t[i].code : "queued", o->who[0] ? o->who : "?", uuid);
        if (!t[i].code || strcmp(t[i].code, "unknown_device") != 0)
            store_event_add(s, t[i].id, "security_action", detail, now);
    }
}

/* The refusal code when no device took it: the one they share, else "refused". */
static const char *common_code(const struct target *t, size_t n)
{
    const char *code = n ? t[0].code : "refused";
    for (size_t i = 1; i < n; i++)
        if (strcmp(t[i].code, code) != 0)
            return "refused";
    return code;
}

void api_typed_submit(struct worker *w, struct request *req, struct response *resp,
                      const struct cat_command *c, plist_t cmd, const char *const *ids,
                      size_t nids, const struct typed_opts *o)
{
    struct cat_needs needs;
    struct cat_error err;
    if (catalog_check(c, cmd, &needs, &err) < 0) {
        refuse(req, resp, err.code, err.message);
        return;
    }
    struct target *t = calloc(nids, sizeof *t);
    if (!t) {
        api_fail(req, resp, 500, "internal", "out of memory");
        return;
    }
    for (size_t i = 0; i < nids; i++)
        t[i].id = ids[i];
    char uuid[128] = "";
    size_t queued = 0;
    int rc = enqueue_fleet(w->store, c, &needs, cmd, t, nids, o, uuid, &queued);
    if (rc == STORE_OK && queued == 0)
        rc = check_targets(w->store, c, &needs, t, nids);
    if (rc == STORE_OK && queued == 0)
        rc = enqueue_all(w->store, c, cmd, t, nids, o, uuid, &queued);
    if (rc == STORE_CONFLICT) {
        api_fail(req, resp, 409, "conflict", "a command with this command_uuid already exists");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "queueing the command");
    } else {
        audit(w->store, req, c, o, t, nids);
        if (queued == 0) {
            api_fail_with(req, resp, 422, common_code(t, nids),
                          "no listed device may take the command",
                          json_pack("{s:o}", "devices", targets_json(t, nids)));
        } else {
            const char **took = api_nopush_requested(req) ? NULL : calloc(queued, sizeof *took);
            size_t k = 0;
            for (size_t i = 0; took && i < nids; i++)
                if (!t[i].code)
                    took[k++] = t[i].id;
            if (k)
                api_commands_enqueued(w, took, k);
            free(took);
            log_info("command_queued", "req=%s uuid=%s type=%s queued=%zu of=%zu typed=1",
                     req->id, uuid, c->request_type, queued, nids);
            struct buf b = {0};
            if (answer_text(&b, uuid, c->request_type, t, nids) < 0)
                api_fail(req, resp, 500, "internal", "out of memory");
            else
                response_set(resp, queued == nids ? 200 : 207, "application/json", b.data, b.len);
            buf_free(&b);
        }
    }
    for (size_t i = 0; i < nids; i++) {
        free(t[i].unlock);
        free(t[i].more);
    }
    free(t);
}

/* ---- POST /api/v1/commands with request_type ------------------------------------ */

/* "ttl": seconds the command may wait to be delivered (0 or absent: no
 * deadline). */
static int decode_ttl(const struct request *req, struct response *resp, json_t *root,
                      int64_t *ttl)
{
    json_t *v = json_object_get(root, "ttl");
    *ttl = 0;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > API_MAX_TTL) {
        api_fail(req, resp, 400, "bad_request", "\"ttl\" must be a number of seconds (>= 0)");
        return -1;
    }
    *ttl = json_integer_value(v);
    return 0;
}

void api_typed_create(struct worker *w, struct request *req, struct response *resp, json_t *root)
{
    json_t *rt = json_object_get(root, "request_type");
    const char *type = json_string_value(rt);
    const struct cat_command *c = NULL;
    size_t n = 0;
    const struct cat_command *all = catalog_commands(&n);
    for (size_t i = 0; type && i < n && !c; i++)
        if (catalog_name_eq(all[i].request_type, type))
            c = &all[i];
    if (!c) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "unknown request_type \"%.64s\" (see docs/commands.md; send anything else as "
                 "\"command\" or \"command_plist\")",
                 type ? type : "");
        refuse(req, resp, "unknown_request_type", msg);
        return;
    }
    struct typed_opts o = {0};
    const char **ids = NULL;
    size_t nids = 0;
    if (decode_ttl(req, resp, root, &o.ttl) < 0 ||
        api_decode_devices(req, resp, root, &ids, &nids) < 0)
        return;
    api_caller_name(w, req, o.who, sizeof o.who);
    struct cat_error err;
    plist_t cmd = NULL;
    if (c->flags & CAT_CONFIRM && !json_is_true(json_object_get(root, "confirm"))) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s needs \"confirm\": true", c->request_type);
        refuse(req, resp, "confirmation_required", msg);
    } else if ((c->flags & CAT_UNLOCK_TOKEN) && (json_object_get(root, "unlock_token") ||
                                                 json_object_get(root, "UnlockToken"))) {
        refuse(req, resp, "bad_request",
               "UnlockToken is filled by steward from the device's TokenUpdate");
    } else if (!(cmd = command_from_json(c, root, &err))) {
        refuse(req, resp, err.code, err.message);
    } else {
        if (c->flags & CAT_UNLOCK_TOKEN) /* checked as present; replaced per device */
            plist_dict_set_item(cmd, "UnlockToken", plist_new_data("", 0));
        json_t *uuid = json_object_get(root, "command_uuid");
        if (uuid && !json_is_string(uuid)) {
            api_fail(req, resp, 400, "bad_request", "\"command_uuid\" must be a string");
        } else {
            o.command_uuid = json_string_value(uuid);
            api_typed_submit(w, req, resp, c, cmd, ids, nids, &o);
        }
        plist_free(cmd);
    }
    free(ids);
}
