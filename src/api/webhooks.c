/* webhooks.c: the webhook routes (/api/v1/webhooks…): endpoints with their
 * event filters and secrets, each one's delivery log, and a test delivery.
 * The deliveries themselves are core/events.c's work; changes here tell it
 * to reload its subscriptions. Called by the router in app/. */
#include "api/api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/events.h"
#include "util/ids.h"
#include "util/log.h"

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_EVENTS_MAX 1024

static json_t *webhook_json(const struct store_webhook *h)
{
    return json_pack("{s:I,s:s,s:s,s:b,s:s?,s:o}", "id", (json_int_t)h->id, "url", h->url,
                     "events", h->events, "enabled", h->enabled, "description", h->description,
                     "created_at", api_time_json(h->created_at));
}

/* An id path segment: 0 with *id, or -1 after answering 404. */
static int parse_id(const struct request *req, struct response *resp, const char *text,
                    int64_t *id)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || v <= 0) {
        api_fail(req, resp, 404, "not_found", "no such webhook");
        return -1;
    }
    *id = v;
    return 0;
}

static int url_ok(const char *u)
{
    if (!u || strlen(u) > WEBHOOK_URL_MAX)
        return 0;
    if (strncasecmp(u, "http://", 7) != 0 && strncasecmp(u, "https://", 8) != 0)
        return 0;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

/* "events": a string ("*", "device.enrolled,mdm.*") or an array of them,
 * written into out comma-joined. 0, 1 when absent, -1 when invalid. */
static int events_member(json_t *body, char *out, size_t outlen)
{
    json_t *e = json_object_get(body, "events");
    if (!e)
        return 1;
    out[0] = '\0';
    json_t *one = json_is_string(e) ? e : NULL;
    size_t n = one ? 1 : json_is_array(e) ? json_array_size(e) : 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(one ? one : json_array_get(e, i));
        if (!s || !*s)
            return -1;
        for (const char *p = s; *p; p++)
            if (!isalnum((unsigned char)*p) && !strchr("._*-, ", *p))
                return -1;
        size_t len = strlen(out), slen = strlen(s);
        if (len + slen + 2 > outlen)
            return -1;
        if (len)
            out[len++] = ',';
        memcpy(out + len, s, slen + 1); /* fits: checked above */
    }
    return 0;
}

void api_webhooks_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_webhook *list = NULL;
    size_t n = 0;
    int rc = store_webhook_list(w->store, 0, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing webhooks");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, webhook_json(&list[i]));
    store_webhooks_free(list, n);
    api_send_json(req, resp, 200, arr ? json_pack("{s:o}", "webhooks", arr) : NULL);
}

/* The members a create or update may carry, checked; fills h (pointing into
 * body or events). 0, or -1 after answering 400. */
static int decode_webhook(const struct request *req, struct response *resp, json_t *body,
                          struct store_webhook *h, char *events, size_t evlen)
{
    static const char *const known[] = {"url", "secret", "events", "enabled", "description"};
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        size_t i = 0;
        while (i < 5 && strcmp(key, known[i]) != 0)
            i++;
        if (i == 5) {
            api_fail(req, resp, 400, "bad_request",
                     "unknown field (expected url, secret, events, enabled, description)");
            return -1;
        }
    }
    json_t *url = json_object_get(body, "url"), *secret = json_object_get(body, "secret");
    json_t *enabled = json_object_get(body, "enabled"), *desc = json_object_get(body, "description");
    if (url && !url_ok(json_string_value(url))) {
        api_fail(req, resp, 400, "bad_request", "\"url\" must be an http:// or https:// URL");
        return -1;
    }
    if (secret && (!json_is_string(secret) || json_string_length(secret) < 16 ||
                   json_string_length(secret) > 256)) {
        api_fail(req, resp, 400, "bad_request", "\"secret\" must be 16 to 256 characters");
        return -1;
    }
    if (enabled && !json_is_boolean(enabled)) {
        api_fail(req, resp, 400, "bad_request", "\"enabled\" must be true or false");
        return -1;
    }
    if (desc && (!json_is_string(desc) || json_string_length(desc) > 500)) {
        api_fail(req, resp, 400, "bad_request", "\"description\" must be a string of at most 500 characters");
        return -1;
    }
    int erc = events_member(body, events, evlen);
    if (erc < 0) {
        api_fail(req, resp, 400, "bad_request",
                 "\"events\" must be \"*\" or event types (\"device.enrolled\", \"mdm.*\"), as a "
                 "string or an array");
        return -1;
    }
    h->url = (char *)json_string_value(url);
    h->secret = (char *)json_string_value(secret);
    h->events = erc == 0 ? events : NULL;
    h->enabled = enabled ? json_is_true(enabled) : -1;
    h->description = (char *)json_string_value(desc);
    return 0;
}

void api_webhooks_create(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    struct store_webhook h = {0};
    char events[WEBHOOK_EVENTS_MAX], secret[65];
    if (decode_webhook(req, resp, body, &h, events, sizeof events) < 0) {
        json_decref(body);
        return;
    }
    if (!h.url) {
        api_fail(req, resp, 400, "bad_request", "\"url\" is required");
        json_decref(body);
        return;
    }
    if (!h.secret) { /* generated, and shown this once */
        if (ids_random_hex(32, secret) < 0) {
            api_fail(req, resp, 500, "internal", "no randomness for a secret");
            json_decref(body);
            return;
        }
        h.secret = secret;
    }
    if (!h.events)
        h.events = "*";
    if (h.enabled < 0)
        h.enabled = 1;
    int64_t now = (int64_t)time(NULL), id = 0;
    int rc = store_webhook_add(w->store, &h, now, &id);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "adding the webhook");
    } else {
        h.id = id;
        h.created_at = now;
        json_t *j = webhook_json(&h);
        if (j)
            json_object_set_new(j, "secret", json_string(h.secret));
        api_send_json(req, resp, 201, j);
        events_reload(w->svc->events);
    }
    json_decref(body);
}

void api_webhooks_update(struct worker *w, struct request *req, struct response *resp,
                         const char *idtext)
{
    int64_t id;
    if (parse_id(req, resp, idtext, &id) < 0)
        return;
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    struct store_webhook h = {0};
    char events[WEBHOOK_EVENTS_MAX];
    if (decode_webhook(req, resp, body, &h, events, sizeof events) == 0) {
        int rc = store_webhook_update(w->store, id, &h);
        struct store_webhook now = {0};
        if (rc == STORE_OK)
            rc = store_webhook_get(w->store, id, &now);
        if (rc != STORE_OK) {
            api_fail_store(req, resp, rc, "updating the webhook");
        } else {
            api_send_json(req, resp, 200, webhook_json(&now));
            events_reload(w->svc->events);
        }
        store_webhook_clear(&now);
    }
    json_decref(body);
}

void api_webhooks_delete(struct worker *w, struct request *req, struct response *resp,
                         const char *idtext)
{
    int64_t id;
    if (parse_id(req, resp, idtext, &id) < 0)
        return;
    int rc = store_webhook_delete(w->store, id);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "deleting the webhook");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:I,s:b}", "id", (json_int_t)id, "deleted", 1));
    events_reload(w->svc->events);
}

static json_t *delivery_json(const struct store_delivery *d)
{
    json_t *payload = json_loads(d->payload, 0, NULL);
    return json_pack("{s:I,s:s,s:s,s:s,s:I,s:o,s:o,s:s?,s:o,s:o,s:o}", "id", (json_int_t)d->id,
                     "event_id", d->event_id, "event", d->event_type, "status", d->status,
                     "attempts", (json_int_t)d->attempts, "next_try_at",
                     strcmp(d->status, "pending") == 0 ? api_time_json(d->next_try_at) : json_null(),
                     "last_http_status",
                     d->last_http_status ? json_integer(d->last_http_status) : json_null(),
                     "last_error", d->last_error, "created_at", api_time_json(d->created_at),
                     "delivered_at", api_time_json(d->delivered_at), "payload",
                     payload ? payload : json_null());
}

void api_webhooks_deliveries(struct worker *w, struct request *req, struct response *resp,
                             const char *idtext)
{
    int64_t id, limit, offset;
    char status[16];
    const char *st = NULL;
    if (parse_id(req, resp, idtext, &id) < 0 ||
        api_query_text(req, resp, "status", status, sizeof status, &st) < 0 ||
        api_query_int(req, resp, "limit", 50, 1, 1000, &limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT64_MAX / 2, &offset) < 0)
        return;
    struct store_webhook h;
    int rc = store_webhook_get(w->store, id, &h);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the webhook");
        return;
    }
    store_webhook_clear(&h);
    struct store_delivery *list = NULL;
    size_t n = 0;
    rc = store_delivery_list(w->store, id, st, limit, offset, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing deliveries");
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, delivery_json(&list[i]));
    store_deliveries_free(list, n);
    api_send_json(req, resp, 200,
                  arr ? json_pack("{s:o,s:I,s:I}", "deliveries", arr, "limit", (json_int_t)limit,
                                  "offset", (json_int_t)offset)
                      : NULL);
}

void api_webhooks_test(struct worker *w, struct request *req, struct response *resp,
                       const char *idtext)
{
    int64_t id;
    if (parse_id(req, resp, idtext, &id) < 0)
        return;
    struct store_webhook h;
    int rc = store_webhook_get(w->store, id, &h);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the webhook");
        return;
    }
    store_webhook_clear(&h);
    char eid[UUID_STR_LEN], at[32];
    int64_t now = (int64_t)time(NULL), did = 0;
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *j = ids_uuid(eid) == 0
                    ? json_pack("{s:s,s:s,s:s,s:{s:s}}", "topic", "webhook.test", "event_id", eid,
                                "created_at", at, "requested_by", "actor",
                                api_current_actor()->name)
                    : NULL;
    char *payload = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!payload) {
        api_fail(req, resp, 500, "internal", "could not build the test event");
        return;
    }
    rc = store_delivery_add(w->store, id, eid, "webhook.test", payload, now, &did);
    free(payload);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "queueing the test delivery");
        return;
    }
    events_poke(w->svc->events);
    api_send_json(req, resp, 202, json_pack("{s:I,s:s}", "delivery_id", (json_int_t)did,
                                            "event_id", eid));
}
