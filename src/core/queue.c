/* queue.c: the command queue service behind queue.h: command validation,
 * one stored payload per command, per-enrollment queue rows, and the
 * report-then-next exchange the connect endpoint runs. */
#include "core/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plist/pl.h"

static const char *const report_statuses[] = {
    "Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow",
};

int queue_status_valid(const char *status)
{
    if (!status)
        return 0;
    for (size_t i = 0; i < sizeof report_statuses / sizeof report_statuses[0]; i++)
        if (strcmp(status, report_statuses[i]) == 0)
            return 1;
    return 0;
}

int queue_command_prepare(plist_t command, const char **err)
{
    if (!command || plist_get_node_type(command) != PLIST_DICT) {
        *err = "command is not a dictionary";
        return -1;
    }
    plist_t inner = plist_dict_get_item(command, "Command");
    if (!inner || plist_get_node_type(inner) != PLIST_DICT) {
        *err = "command has no Command dictionary";
        return -1;
    }
    const char *type = pl_str(inner, "RequestType");
    if (!type || !*type) {
        *err = "Command has no RequestType string";
        return -1;
    }
    if (strlen(type) >= QUEUE_REQUEST_TYPE_MAX) {
        *err = "RequestType too long";
        return -1;
    }
    plist_t uuid = plist_dict_get_item(command, "CommandUUID");
    if (uuid) {
        const char *u = pl_str(command, "CommandUUID");
        if (!u || !*u || strlen(u) > 127) {
            *err = "CommandUUID must be a non-empty string of at most 127 characters";
            return -1;
        }
        return 0;
    }
    char fresh[UUID_STR_LEN];
    if (ids_uuid(fresh) < 0) {
        *err = "no randomness for a CommandUUID";
        return -1;
    }
    plist_dict_set_item(command, "CommandUUID", plist_new_string(fresh));
    return 0;
}

int queue_enqueue(struct store *s, plist_t command, const char *const *ids, size_t n, int64_t now,
                  struct queue_enqueued *out, int *per_id)
{
    plist_t inner = plist_dict_get_item(command, "Command");
    const char *type = pl_str(inner, "RequestType");
    const char *uuid = pl_str(command, "CommandUUID");
    if (!type || !uuid)
        return STORE_ERR; /* not prepared: a caller bug */
    snprintf(out->uuid, sizeof out->uuid, "%s", uuid);
    snprintf(out->request_type, sizeof out->request_type, "%s", type);
    out->queued = 0;

    char *xml = NULL;
    size_t len = 0;
    if (pl_to_xml(command, &xml, &len) < 0)
        return STORE_ERR;
    int rc = store_command_create(s, uuid, type, (const uint8_t *)xml, len, now);
    free(xml);
    if (rc != STORE_OK)
        return rc;

    for (size_t i = 0; i < n; i++) {
        struct store_enrollment *e = NULL;
        int r = store_enrollment_get(s, ids[i], &e);
        if (r == STORE_OK && e->status == ENROLLMENT_CHECKED_OUT)
            r = QUEUE_CHECKED_OUT;
        store_enrollment_free(e);
        if (r == STORE_OK)
            r = store_queue_add(s, ids[i], uuid, now);
        per_id[i] = r;
        if (r == STORE_OK)
            out->queued++;
        else if (r == STORE_ERR || r == STORE_UNAVAILABLE)
            return r;
    }
    return STORE_OK;
}

int queue_exchange(struct store *s, const char *enrollment_id, const char *status,
                   const char *command_uuid, const uint8_t *raw, size_t raw_len, int64_t now,
                   struct store_command **next)
{
    *next = NULL;
    int idle = strcmp(status, "Idle") == 0;
    int report_rc = STORE_OK;
    if (!idle) {
        report_rc = store_queue_report(s, enrollment_id, command_uuid, status, raw, raw_len, now);
        if (report_rc != STORE_OK && report_rc != STORE_NOTFOUND)
            return report_rc;
    }
    /* A NotNow'd command waits for the next Idle-started exchange: iOS says
     * NotNow when it cannot run the command now and polls again by itself once
     * conditions change; resending it inside the same exchange would loop. */
    /* Commands past their deadline are marked Expired, never delivered. */
    int rc = store_queue_expire_enrollment(s, enrollment_id, now, NULL);
    if (rc != STORE_OK)
        return rc;
    rc = store_queue_next(s, enrollment_id, idle, now, next);
    if (rc == STORE_NOTFOUND)
        rc = STORE_OK;
    if (rc != STORE_OK)
        return rc;
    return report_rc;
}
