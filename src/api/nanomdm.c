/* nanomdm.c: PUT /v1/enqueue/{id,id,...}, NanoMDM's raw-plist enqueue API,
 * so NanoMDM tooling (cmdr.py, its shell tools) works unchanged.
 * Answers follow NanoMDM's docs/openapi.yaml: an APIResult JSON with 200
 * (all queued), 207 (some failed) or 500 (all failed); unless ?nopush, the
 * queued enrollments are pushed and each gets push_result (the apns-id) or
 * push_error in "status". Called by the router in app/ after api_authenticate. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "core/queue.h"
#include "plist/pl.h"
#include "util/log.h"

/* Splits the comma-separated path segment into distinct, non-empty ids.
 * *ids points into *copy (both malloc'd; caller frees both). 0 or -1. */
static int split_ids(const char *segment, char **copy, const char ***ids, size_t *n)
{
    size_t max = 1;
    for (const char *p = segment; *p; p++)
        max += *p == ',';
    *n = 0;
    *copy = strdup(segment);
    *ids = calloc(max, sizeof **ids);
    if (!*copy || !*ids)
        return -1;
    char *save = NULL;
    for (char *id = strtok_r(*copy, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < *n && strcmp((*ids)[i], id) != 0)
            i++;
        if (i == *n) /* quadratic, but bounded by API_MAX_COMMAND_DEVICES */
            (*ids)[(*n)++] = id;
    }
    return 0;
}

/* An APIResult carrying only a top-level command_error, with status 500
 * (NanoMDM's "all failed"). */
static void all_failed(const struct request *req, struct response *resp, const char *why,
                       const struct queue_enqueued *out)
{
    api_log_refusal(req, 500, "command_error", why);
    json_t *j = json_pack("{s:s}", "command_error", why);
    if (j && out && out->uuid[0]) {
        json_object_set_new(j, "command_uuid", json_string(out->uuid));
        json_object_set_new(j, "request_type", json_string(out->request_type));
    }
    api_send_json(req, resp, 500, j);
}

static const char *command_error(int rc)
{
    switch (rc) {
    case STORE_NOTFOUND:
        return "enrollment not found";
    case QUEUE_CHECKED_OUT:
        return "enrollment is checked out";
    case STORE_CONFLICT:
        return "command already queued for this enrollment";
    case QUEUE_ALREADY_PENDING:
        return "a command of this type already waits for this enrollment";
    default:
        return "could not queue";
    }
}

/* {"status": {failed ids only}, "no_push": true?, "command_uuid", "request_type"} */
static json_t *api_result(const char *const *ids, size_t n, const int *per_id, int no_push,
                          const struct queue_enqueued *out)
{
    json_t *status = json_object();
    for (size_t i = 0; status && i < n; i++) {
        if (per_id[i] == STORE_OK)
            continue;
        if (json_object_set_new(status, ids[i],
                                json_pack("{s:s}", "command_error", command_error(per_id[i]))) < 0) {
            json_decref(status);
            return NULL;
        }
    }
    json_t *j = json_pack("{s:s,s:s}", "command_uuid", out->uuid, "request_type",
                          out->request_type);
    if (!status || !j) {
        json_decref(status);
        json_decref(j);
        return NULL;
    }
    int rc = 0;
    if (json_object_size(status) > 0) /* NanoMDM omits an empty status map */
        rc |= json_object_set(j, "status", status);
    if (no_push)
        rc |= json_object_set_new(j, "no_push", json_true());
    json_decref(status);
    if (rc < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

void api_nanomdm_enqueue(struct worker *w, struct request *req, struct response *resp,
                         const char *ids_segment)
{
    char nopush_text[64];
    const char *nopush = request_query(req, "nopush", nopush_text, sizeof nopush_text);
    int no_push = nopush && *nopush; /* NanoMDM: any non-empty value */

    char *copy = NULL;
    const char **ids = NULL;
    size_t n = 0;
    int *per_id = NULL;
    struct queue_enqueued out = {0};
    plist_t command = NULL;
    const char *why = NULL;
    if (split_ids(ids_segment, &copy, &ids, &n) < 0) {
        all_failed(req, resp, "out of memory", NULL);
        goto done;
    }
    if (n == 0 || n > API_MAX_COMMAND_DEVICES) {
        all_failed(req, resp, n ? "too many enrollment ids" : "no enrollment id given", NULL);
        goto done;
    }
    command = pl_parse_dict(req->body, req->body_len, &why);
    if (!command || queue_command_prepare(command, &why) < 0) {
        all_failed(req, resp, why, NULL);
        goto done;
    }
    per_id = calloc(n, sizeof *per_id);
    int rc = per_id ? api_enqueue_tx(w->store, command, ids, n, &out, per_id) : STORE_ERR;
    if (rc == STORE_CONFLICT) {
        all_failed(req, resp, "a command with this CommandUUID already exists", &out);
    } else if (rc == STORE_UNAVAILABLE) {
        all_failed(req, resp, "database unavailable", &out);
    } else if (rc != STORE_OK) {
        all_failed(req, resp, "storage error", &out);
    } else {
        /* No api_commands_enqueued here: NanoMDM's answer reports each
         * push's outcome, so the push is made (and waited for) below. */
        int status = out.queued == n ? 200 : out.queued == 0 ? 500 : 207;
        if (status != 200)
            api_log_refusal(req, status, "command_error", "some enrollments did not get it");
        else
            log_info("command_queued", "req=%s uuid=%s type=%s queued=%zu", req->id, out.uuid,
                     out.request_type, out.queued);
        json_t *j = api_result(ids, n, per_id, no_push, &out);
        if (!no_push && out.queued > 0) /* push (issue 5): wake the devices, as NanoMDM does */
            api_push_nanomdm_status(w, j, ids, per_id, n);
        api_send_json(req, resp, status, j);
    }
done:
    if (command)
        plist_free(command);
    free(per_id);
    free(ids);
    free(copy);
}
