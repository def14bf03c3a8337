/* inventory.c (api): GET /api/v1/devices with inventory filters (OS version,
 * model, supervised, passcode, encryption, battery, app, profile, expiring
 * certificate, last seen) and GET /api/v1/devices/{id}/inventory/{section}.
 * Filters are parsed strictly: a bad value is a 400 naming the parameter.
 * Called by api/devices.c (the listing) and the router (sections). */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/inventory.h"
#include "plist/pl.h"

#define TEXT_MAX 256

/* The query parameters that make a listing an inventory filter. */
static const char *const filter_params[] = {
    "os", "os_min", "os_max", "model", "supervised", "passcode", "encryption", "battery_below",
    "app", "profile", "cert_expiring_days", "seen_before", "seen_after",
};

int api_inventory_filter_requested(const struct request *req)
{
    char buf[4096];
    for (size_t i = 0; i < sizeof filter_params / sizeof filter_params[0]; i++)
        if (request_query(req, filter_params[i], buf, sizeof buf))
            return 1;
    return 0;
}

/* A text parameter; *out NULL when absent or empty. -1 after a 400. */
static int text_param(const struct request *req, struct response *resp, const char *name,
                      char *buf, const char **out)
{
    if (api_query_text(req, resp, name, buf, TEXT_MAX, out) < 0)
        return -1;
    if (*out && !**out)
        *out = NULL;
    return 0;
}

static int bad(const struct request *req, struct response *resp, const char *msg)
{
    api_fail(req, resp, 400, "bad_request", msg);
    return -1;
}

/* true/false (also 1/0, yes/no) into *out (-1 when absent). */
static int bool_param(const struct request *req, struct response *resp, const char *name,
                      int *out)
{
    char buf[TEXT_MAX], msg[128];
    const char *v = NULL;
    *out = -1;
    if (text_param(req, resp, name, buf, &v) < 0)
        return -1;
    if (!v)
        return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
        *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
        *out = 0;
    else {
        snprintf(msg, sizeof msg, "%s must be true or false", name);
        return bad(req, resp, msg);
    }
    return 0;
}

/* An OS version ("17", "17.4", "17.4.1") into its number (-1 when absent). */
static int os_param(const struct request *req, struct response *resp, const char *name,
                    int64_t *out)
{
    char buf[TEXT_MAX], msg[128];
    const char *v = NULL;
    *out = -1;
    if (text_param(req, resp, name, buf, &v) < 0)
        return -1;
    if (!v)
        return 0;
    *out = inventory_os_num(v);
    if (*out < 0) {
        snprintf(msg, sizeof msg, "%s must be an OS version such as 17.4 or 17.4.1", name);
        return bad(req, resp, msg);
    }
    return 0;
}

/* Unix seconds, or an RFC 3339 UTC time (2026-11-28T12:00:00Z) or a date
 * (2026-11-28), into *out (0 when absent). */
static int time_param(const struct request *req, struct response *resp, const char *name,
                      int64_t *out)
{
    char buf[TEXT_MAX], msg[160];
    const char *v = NULL;
    *out = 0;
    if (text_param(req, resp, name, buf, &v) < 0)
        return -1;
    if (!v)
        return 0;
    char *end = NULL;
    long long secs = strtoll(v, &end, 10);
    if (end && *end == '\0' && secs > 0) {
        *out = secs;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(v, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!rest || *rest) {
        memset(&tm, 0, sizeof tm);
        rest = strptime(v, "%Y-%m-%d", &tm);
    }
    if (!rest || *rest) {
        snprintf(msg, sizeof msg,
                 "%s must be Unix seconds, a UTC time (2026-11-28T12:00:00Z) or a date", name);
        return bad(req, resp, msg);
    }
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* The whole filter from the query; -1 after a 400. Text values live in bufs. */
static int read_inventory_filter(const struct request *req, struct response *resp,
                                 struct store_inv_filter *f, char bufs[6][TEXT_MAX])
{
    const char *status = NULL;
    int64_t enc = -1, battery = -1, days = 0;
    memset(f, 0, sizeof *f);
    if (api_query_int(req, resp, "limit", 100, 1, 1000, &f->limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &f->offset) < 0 ||
        text_param(req, resp, "search", bufs[0], &f->search) < 0 ||
        text_param(req, resp, "serial", bufs[1], &f->serial_number) < 0 ||
        text_param(req, resp, "status", bufs[2], &status) < 0 ||
        text_param(req, resp, "model", bufs[3], &f->model) < 0 ||
        text_param(req, resp, "app", bufs[4], &f->app) < 0 ||
        text_param(req, resp, "profile", bufs[5], &f->profile) < 0 ||
        os_param(req, resp, "os", &f->os_eq) < 0 || os_param(req, resp, "os_min", &f->os_min) < 0 ||
        os_param(req, resp, "os_max", &f->os_max) < 0 ||
        bool_param(req, resp, "supervised", &f->supervised) < 0 ||
        bool_param(req, resp, "passcode", &f->passcode) < 0 ||
        api_query_int(req, resp, "encryption", -1, 0, 3, &enc) < 0 ||
        api_query_int(req, resp, "battery_below", -1, 1, 101, &battery) < 0 ||
        api_query_int(req, resp, "cert_expiring_days", 0, 1, 36500, &days) < 0 ||
        time_param(req, resp, "seen_before", &f->seen_before) < 0 ||
        time_param(req, resp, "seen_after", &f->seen_after) < 0)
        return -1;
    if (status && !(f->status = api_status_from_name(status)))
        return bad(req, resp, "status must be one of authenticated, enrolled, checked_out");
    f->encryption = (int)enc;
    f->battery_below = (int)battery;
    if (days > 0) {
        int64_t now = (int64_t)time(NULL);
        f->cert_expiring_from = now;
        f->cert_expiring_to = now + days * 86400;
    }
    return 0;
}

void api_inventory_devices_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_inv_filter f;
    char bufs[6][TEXT_MAX];
    if (read_inventory_filter(req, resp, &f, bufs) < 0)
        return;
    char **ids = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = inventory_find(w->store, &f, &ids, &n, &total);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "filtering devices");
        return;
    }
    json_t *devices = json_array();
    for (size_t i = 0; devices && i < n; i++) {
        struct store_enrollment *e = NULL;
        rc = store_enrollment_get(w->store, ids[i], &e);
        if (rc == STORE_NOTFOUND)
            continue; /* removed between the two reads */
        if (rc != STORE_OK)
            break;
        if (json_array_append_new(devices, api_device_json(e)) < 0) {
            json_decref(devices);
            devices = NULL;
        }
        store_enrollment_free(e);
    }
    store_inv_ids_free(ids, n);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        json_decref(devices);
        api_fail_store(req, resp, rc, "reading devices");
        return;
    }
    api_send_json(req, resp, 200,
                  devices ? json_pack("{s:o,s:I,s:I,s:I}", "devices", devices, "total",
                                      (json_int_t)total, "limit", (json_int_t)f.limit, "offset",
                                      (json_int_t)f.offset)
                          : NULL);
}

/* ---- sections ------------------------------------------------------------------ */

/* A typed value as JSON (docs/inventory.md): strings, bools, numbers, dates
 * as RFC 3339, data as base64 text, arrays and dicts as JSON. */
static json_t *value_json(const struct store_inv_value *v)
{
    if (!v->value)
        return json_null();
    if (!strcmp(v->type, "bool"))
        return json_boolean(!strcmp(v->value, "true"));
    if (!strcmp(v->type, "int"))
        return json_integer(strtoll(v->value, NULL, 10));
    if (!strcmp(v->type, "real"))
        return json_real(strtod(v->value, NULL));
    if (!strcmp(v->type, "date"))
        return api_time_json(strtoll(v->value, NULL, 10));
    if (!strcmp(v->type, "plist")) {
        const char *err = NULL;
        plist_t p = pl_parse((const uint8_t *)v->value, strlen(v->value), &err);
        json_t *j = p ? plist_to_json(p) : NULL;
        plist_free(p);
        return j ? j : json_null();
    }
    return json_string(v->value);
}

static json_t *values_json(const struct store_inv_value *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++)
        if (json_object_set_new(o, v[i].name, value_json(&v[i])) < 0) {
            json_decref(o);
            return NULL;
        }
    return o;
}

static json_t *cell_json(char type, const char *text)
{
    if (!text)
        return json_null();
    switch (type) {
    case 'i': return json_integer(strtoll(text, NULL, 10));
    case 'b': return json_boolean(strtoll(text, NULL, 10) != 0);
    case 't': return api_time_json(strtoll(text, NULL, 10));
    default: return json_string(text);
    }
}

static json_t *table_json(const struct store_inv_table *t)
{
    json_t *items = json_array();
    const struct store_inv_shape *sh = t->shape;
    for (size_t r = 0; items && r < t->nrows; r++) {
        json_t *o = json_object();
        for (size_t c = 0; o && c < sh->ncols; c++)
            if (json_object_set_new(o, sh->cols[c], cell_json(sh->types[c],
                                                              t->cells[r * sh->ncols + c])) < 0) {
                json_decref(o);
                o = NULL;
            }
        if (!o || json_array_append_new(items, o) < 0) {
            json_decref(items);
            return NULL;
        }
    }
    return items;
}

static const char sections_message[] =
    "no such inventory section; one of device, security, profiles, certificates, apps, "
    "managed-apps, provisioning-profiles, restrictions, history";

void api_device_inventory(struct worker *w, struct request *req, struct response *resp,
                          const char *id, const char *section_name)
{
    int section = inventory_section_from_name(section_name);
    if (section < 0) {
        api_fail(req, resp, 404, "not_found", sections_message);
        return;
    }
    int64_t limit = 0;
    if (api_query_int(req, resp, "limit", 1000, 1, 100000, &limit) < 0)
        return;
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(w->store, id, &e);
    store_enrollment_free(e);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no device with this id");
        return;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the device");
        return;
    }
    json_t *body = NULL;
    if (section == INVENTORY_DEVICE || section == INVENTORY_SECURITY) {
        struct store_inv_value *v = NULL;
        size_t n = 0;
        rc = inventory_values(w->store, id, section, &v, &n);
        if (rc == STORE_OK)
            body = json_pack("{s:s,s:s,s:o*}", "device_id", id, "section", section_name, "values",
                             values_json(v, n));
        store_inv_values_free(v, n);
    } else {
        struct store_inv_table *t = NULL;
        rc = inventory_rows(w->store, id, section, limit, &t);
        if (rc == STORE_OK)
            body = json_pack("{s:s,s:s,s:I,s:I,s:o*}", "device_id", id, "section",
                             section_name, "count", (json_int_t)t->nrows, "total",
                             (json_int_t)t->nrows, "items", table_json(t));
        store_inv_table_free(t);
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the inventory");
        return;
    }
    api_send_json(req, resp, 200, body);
}
