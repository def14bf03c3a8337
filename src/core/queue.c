/* queue.c: the command queue service behind queue.h: command validation,
 * one stored payload per command, per-enrollment queue rows (a destructive
 * command never twice for a device while one waits), and the
 * report-then-next exchange the connect endpoint runs. */
#include "core/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/catalog.h"
#include <jansson.h>
#include "plist/pl.h"
#include "util/log.h"

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

/* Stores the command's payload once. */
static int command_store(struct store *s, plist_t command, int64_t now, struct queue_enqueued *out)
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
    return rc;
}

/* ---- one destructive command at a time ----------------------------------- */

/* 1 when the catalog says a command of this type is never queued twice for
 * a device while one waits (DeviceLock, EraseDevice, ClearPasscode). */
static int one_pending_type(const char *type)
{
    const struct cat_command *c = type ? catalog_find(type) : NULL;
    return c && (c->flags & CAT_ONE_PENDING);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Locks the devices' enrollment rows for the pending checks, in id order:
 * the order the compliance fleet run takes them in, so transactions locking
 * overlapping devices wait for each other without deadlocking. */
static int lock_devices(struct store *s, const char *const *ids, size_t n)
{
    if (n == 1)
        return store_queue_lock_device(s, ids[0]);
    const char **v = malloc(n * sizeof *v);
    if (!v)
        return STORE_ERR;
    memcpy(v, ids, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_id);
    int rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        rc = store_queue_lock_device(s, v[i]);
    free(v);
    return rc;
}

/* STORE_OK when the command may be queued for id, QUEUE_ALREADY_PENDING
 * when one of its type waits there, or a store_rc. Runs in the enqueue
 * transaction, after lock_devices. */
static int one_pending_guard(struct store *s, const char *type, const char *id)
{
    int pending = 0;
    int rc = store_queue_has_pending_type(s, id, type, &pending);
    if (rc != STORE_OK)
        return rc;
    if (pending) {
        char q[160];
        log_info("command_not_queued", "device=%s type=%s reason=\"one already waits\"",
                 log_quote(q, sizeof q, id), type);
    }
    return pending ? QUEUE_ALREADY_PENDING : STORE_OK;
}

/* All of ids in one statement: 1 when every id was queued so, 0 when the
 * caller should go id by id (nothing was kept), or a store_rc. */
static int enqueue_bulk(struct store *s, const char *uuid, const char *const *ids, size_t n,
                        int64_t now)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, json_string(ids[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!text)
        return 0;
    int rc = store_queue_add_many(s, text, n, uuid, now);
    free(text);
    if (rc == STORE_OK)
        return 1;
    return rc == STORE_CONFLICT || rc == STORE_NOTFOUND ? 0 : rc;
}

int queue_enqueue_checked(struct store *s, plist_t command, const char *const *ids, size_t n,
                          int64_t now, struct queue_enqueued *out, int *per_id)
{
    int rc = command_store(s, command, now, out);
    int guarded = one_pending_type(out->request_type);
    if (rc == STORE_OK && guarded)
        rc = lock_devices(s, ids, n);
    if (rc == STORE_OK && n > 1 && !guarded) {
        int bulk = enqueue_bulk(s, out->uuid, ids, n, now);
        if (bulk < 0)
            return bulk;
        if (bulk == 1) {
            for (size_t i = 0; i < n; i++)
                per_id[i] = STORE_OK;
            out->queued = n;
            return STORE_OK;
        }
    }
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        int r = guarded ? one_pending_guard(s, out->request_type, ids[i]) : STORE_OK;
        if (r == STORE_OK)
            r = store_queue_add(s, ids[i], out->uuid, now);
        per_id[i] = r;
        if (r == STORE_OK)
            out->queued++;
        else if (r == STORE_ERR || r == STORE_UNAVAILABLE)
            return r;
    }
    return rc;
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

    int guarded = one_pending_type(type);
    if (guarded && n && (rc = lock_devices(s, ids, n)) != STORE_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct store_enrollment *e = NULL;
        int r = store_enrollment_get(s, ids[i], &e);
        if (r == STORE_OK && e->status == ENROLLMENT_CHECKED_OUT)
            r = QUEUE_CHECKED_OUT;
        store_enrollment_free(e);
        if (r == STORE_OK && guarded)
            r = one_pending_guard(s, type, ids[i]);
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

/* The device's answer to a security action (DeviceLock, EraseDevice,
 * ClearPasscode) is audited like the request was: a warn line and an event.
 * type is the command's RequestType, read with the report. Best effort: the
 * report itself is already stored. */
static void audit_security_result(struct store *s, const char *enrollment_id, const char *uuid,
                                  const char *type, const char *status, int64_t now)
{
    if (!uuid || !type || strcmp(status, "NotNow") == 0)
        return;
    const struct cat_command *c = catalog_find(type);
    if (!c || !(c->flags & CAT_SECURITY))
        return;
    char q[160];
    log_warn("security_action_result", "device=%s type=%s uuid=%s status=%s",
             log_quote(q, sizeof q, enrollment_id), type, uuid, status);
    char detail[256];
    snprintf(detail, sizeof detail, "%s answered %s (command %s)", type, status, uuid);
    store_event_add(s, enrollment_id, "security_action_result", detail, now);
}

int queue_exchange_report(struct store *s, const char *enrollment_id, const char *status,
                          const char *command_uuid, const uint8_t *raw, size_t raw_len,
                          int64_t now, struct store_command **reported,
                          struct store_command **next)
{
    if (reported)
        *reported = NULL;
    *next = NULL;
    /* A NotNow'd command waits for the next Idle-started exchange: iOS says
     * NotNow when it cannot run the command now and polls again by itself once
     * conditions change; resending it inside the same exchange would loop.
     * Commands past their deadline are marked Expired, never delivered
     * (the claim passes over them). */
    if (strcmp(status, "Idle") == 0) {
        int rc = store_queue_next(s, enrollment_id, 1, now, next);
        return rc == STORE_NOTFOUND ? STORE_OK : rc;
    }
    struct store_command *rep = NULL;
    int rc = store_queue_report_next(s, enrollment_id, command_uuid, status, raw, raw_len, now,
                                     &rep, next);
    if (rc == STORE_OK)
        audit_security_result(s, enrollment_id, command_uuid, rep->request_type, status, now);
    if (reported)
        *reported = rep;
    else
        store_command_free(rep);
    return rc;
}

int queue_exchange(struct store *s, const char *enrollment_id, const char *status,
                   const char *command_uuid, const uint8_t *raw, size_t raw_len, int64_t now,
                   struct store_command **next)
{
    return queue_exchange_report(s, enrollment_id, status, command_uuid, raw, raw_len, now, NULL,
                                 next);
}

/* ---- waking devices ---------------------------------------------------------- */

/* Set once at start-up, before any thread queues; read-only afterwards. */
static queue_waker waker;
static void *waker_arg;

void queue_set_waker(queue_waker fn, void *arg)
{
    waker = fn;
    waker_arg = arg;
}

void queue_wake(const char *const *ids, const int *per_id, size_t n)
{
    if (!waker || n == 0)
        return;
    const char **took = calloc(n, sizeof *took);
    if (!took) {
        log_warn("devices not woken: out of memory", "devices=%zu", n);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!per_id || per_id[i] == STORE_OK)
            took[k++] = ids[i];
    if (k)
        waker(waker_arg, took, k);
    free(took);
}
