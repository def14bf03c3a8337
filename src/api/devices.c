/* devices.c: GET /api/v1/devices (filtered, paged list of enrollments) and
 * GET /api/v1/devices/{id}. Query parameters are checked strictly so a typo
 * gets a 400 rather than a silently different listing. Called by the router
 * in app/ after api_authenticate. */
#include "api/api.h"

#include <string.h>

#define FILTER_TEXT_MAX 256

/* A text filter from the query into buf; *out NULL when absent or empty.
 * Returns 0, or -1 after answering 400. */
static int query_text(const struct request *req, struct response *resp, const char *name,
                      char *buf, size_t n, const char **out)
{
    if (api_query_text(req, resp, name, buf, n, out) < 0)
        return -1;
    if (*out && !**out)
        *out = NULL;
    return 0;
}

/* Fills the store filter from the query; -1 after answering 400. */
static int read_filter(const struct request *req, struct response *resp,
                       struct store_enrollment_filter *f, char *search, char *serial)
{
    char status_text[32];
    const char *status = NULL;
    memset(f, 0, sizeof *f);
    if (api_query_int(req, resp, "limit", 100, 1, 1000, &f->limit) < 0 ||
        api_query_int(req, resp, "offset", 0, 0, INT64_MAX, &f->offset) < 0 ||
        query_text(req, resp, "search", search, FILTER_TEXT_MAX, &f->search) < 0 ||
        query_text(req, resp, "serial", serial, FILTER_TEXT_MAX, &f->serial_number) < 0 ||
        query_text(req, resp, "status", status_text, sizeof status_text, &status) < 0)
        return -1;
    if (status) {
        f->status = api_status_from_name(status);
        if (!f->status) {
            api_fail(req, resp, 400, "bad_request",
                     "status must be one of authenticated, enrolled, checked_out");
            return -1;
        }
    }
    return 0;
}

static json_t *device_list_json(struct store_enrollment **list, size_t n, int64_t total,
                                const struct store_enrollment_filter *f)
{
    json_t *devices = json_array();
    for (size_t i = 0; devices && i < n; i++) {
        if (json_array_append_new(devices, api_device_json(list[i])) < 0) {
            json_decref(devices);
            return NULL;
        }
    }
    if (!devices)
        return NULL;
    /* "o" steals devices, even when json_pack fails. */
    return json_pack("{s:o,s:I,s:I,s:I}", "devices", devices, "total", (json_int_t)total,
                     "limit", (json_int_t)f->limit, "offset", (json_int_t)f->offset);
}

void api_devices_list(struct worker *w, struct request *req, struct response *resp)
{
    if (api_inventory_filter_requested(req)) {
        api_inventory_devices_list(w, req, resp);
        return;
    }
    struct store_enrollment_filter f;
    char search[FILTER_TEXT_MAX], serial[FILTER_TEXT_MAX];
    if (read_filter(req, resp, &f, search, serial) < 0)
        return;
    struct store_enrollment **list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = store_enrollment_list(w->store, &f, &list, &n, &total);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing devices");
        return;
    }
    api_send_json(req, resp, 200, device_list_json(list, n, total, &f));
    store_enrollment_list_free(list, n);
}

void api_devices_get(struct worker *w, struct request *req, struct response *resp,
                     const char *id)
{
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(w->store, id, &e);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no device with this id");
        return;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "reading the device");
        return;
    }
    api_send_json(req, resp, 200, api_device_json(e));
    store_enrollment_free(e);
}
