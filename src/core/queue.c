/* queue.c: the command queue service behind queue.h: command validation,
 * one stored payload per command, per-enrollment queue rows (a destructive
 * command never twice for a device while one waits), and the
 * report-then-next exchange the connect endpoint runs. */
#include "core/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/catalog.h"
#include "plist/pl.h"
#include "util/buf.h"
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

/* ids as the JSON array the bulk statements take (malloc'd; NULL when out
 * of memory). */
static char *ids_json(const char *const *ids, size_t n)
{
    struct buf b = {0};
    if (buf_json_string_array(&b, ids, n) < 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

/* All of ids in one statement (checked: the caller has vetted them; else
 * the statement itself skips unknown and checked-out ids): 1 when every id
 * was queued so, 0 when the caller should go id by id (nothing was kept),
 * or a store_rc. text: ids_json of them, or NULL to build it here. */
static int enqueue_bulk(struct store *s, const char *uuid, const char *const *ids, size_t n,
                        const char *text, int checked, int64_t now)
{
    char *mine = text ? NULL : ids_json(ids, n);
    if (!text && !(text = mine))
        return 0;
    int rc = checked ? store_queue_add_many(s, text, n, uuid, now)
                     : store_queue_add_many_enrolled(s, text, n, uuid, now);
    free(mine);
    if (rc == STORE_OK)
        return 1;
    return rc == STORE_CONFLICT || rc == STORE_NOTFOUND ? 0 : rc;
}

/* Queues the stored command out->uuid for checked ids: in bulk, else id by
 * id for each one's outcome. A type never queued twice (one_pending_type)
 * locks the devices and goes id by id, so each is checked for a twin. */
static int place_checked(struct store *s, const char *const *ids, size_t n, int64_t now,
                         struct queue_enqueued *out, int *per_id)
{
    int guarded = one_pending_type(out->request_type);
    if (guarded && n) {
        int rc = lock_devices(s, ids, n);
        if (rc != STORE_OK)
            return rc;
    }
    if (n > 1 && !guarded) {
        int bulk = enqueue_bulk(s, out->uuid, ids, n, NULL, 1, now);
        if (bulk < 0)
            return bulk;
        if (bulk == 1) {
            for (size_t i = 0; i < n; i++)
                per_id[i] = STORE_OK;
            out->queued += n;
            return STORE_OK;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int r = guarded ? one_pending_guard(s, out->request_type, ids[i]) : STORE_OK;
        if (r == STORE_OK)
            r = store_queue_add(s, ids[i], out->uuid, now);
        per_id[i] = r;
        if (r == STORE_OK)
            out->queued++;
        else if (r == STORE_ERR || r == STORE_UNAVAILABLE)
            return r;
    }
    return STORE_OK;
}

int queue_enqueue_checked(struct store *s, plist_t command, const char *const *ids, size_t n,
                          int64_t now, struct queue_enqueued *out, int *per_id)
{
    int rc = command_store(s, command, now, out);
    return rc == STORE_OK ? place_checked(s, ids, n, now, out, per_id) : rc;
}

int queue_enqueue_fleet(struct store *s, plist_t command, const char *const *ids, size_t n,
                        const struct store_target_needs *needs, int64_t now,
                        struct queue_enqueued *out)
{
    int rc = command_store(s, command, now, out);
    if (rc != STORE_OK)
        return rc;
    char *text = ids_json(ids, n);
    if (!text)
        return STORE_ERR;
    rc = store_queue_add_many_if(s, text, n, out->uuid, now, needs);
    free(text);
    if (rc == STORE_OK)
        out->queued = n;
    return rc == STORE_CONFLICT ? STORE_OK : rc;
}

/* Sorts ids into the ones that may take a command (known, not checked
 * out), with one read of their facts; per_id gets the others' refusal.
 * *ok (malloc'd, pointing into ids) and *ok_at (their positions). */
static int vet_ids(struct store *s, const char *const *ids, size_t n, const char *text,
                   int *per_id, const char ***ok, size_t **ok_at, size_t *nok)
{
    struct store_target_facts *facts = calloc(n, sizeof *facts);
    int *found = calloc(n, sizeof *found);
    *ok = calloc(n, sizeof **ok);
    *ok_at = calloc(n, sizeof **ok_at);
    *nok = 0;
    int rc = facts && found && *ok && *ok_at
                 ? store_command_target_facts_many(s, text, n, 0, facts, found)
                 : STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        per_id[i] = !found[i]                                     ? STORE_NOTFOUND
                    : facts[i].status == ENROLLMENT_CHECKED_OUT ? QUEUE_CHECKED_OUT
                                                                  : STORE_OK;
        if (per_id[i] == STORE_OK) {
            (*ok)[*nok] = ids[i];
            (*ok_at)[(*nok)++] = i;
        }
    }
    free(facts);
    free(found);
    return rc;
}

/* The fleet case first: every id queued by one statement. Only when some id
 * cannot take it (unknown, checked out), or the type is one never queued
 * twice, are the ids looked at, in one read, and the rest placed. */
int queue_enqueue(struct store *s, plist_t command, const char *const *ids, size_t n, int64_t now,
                  struct queue_enqueued *out, int *per_id)
{
    int rc = command_store(s, command, now, out);
    if (rc != STORE_OK)
        return rc;
    char *text = ids_json(ids, n);
    if (!text)
        return STORE_ERR;
    /* A guarded type is never placed unvetted: place_checked checks each. */
    int bulk = one_pending_type(out->request_type) ? 0
                                                  : enqueue_bulk(s, out->uuid, ids, n, text, 0, now);
    if (bulk == 1) {
        for (size_t i = 0; i < n; i++)
            per_id[i] = STORE_OK;
        out->queued = n;
        free(text);
        return STORE_OK;
    }
    const char **ok = NULL;
    size_t *ok_at = NULL, nok = 0;
    int *ok_rc = NULL;
    rc = bulk < 0 ? bulk : vet_ids(s, ids, n, text, per_id, &ok, &ok_at, &nok);
    free(text);
    if (rc == STORE_OK && nok > 0) {
        ok_rc = calloc(nok, sizeof *ok_rc);
        rc = ok_rc ? place_checked(s, ok, nok, now, out, ok_rc) : STORE_ERR;
        for (size_t j = 0; rc == STORE_OK && j < nok; j++)
            per_id[ok_at[j]] = ok_rc[j];
    }
    free(ok);
    free(ok_at);
    free(ok_rc);
    return rc;
}

int queue_report_audited(const char *request_type, const char *status)
{
    if (!request_type || !status || strcmp(status, "NotNow") == 0)
        return 0;
    const struct cat_command *c = catalog_find(request_type);
    return c && (c->flags & CAT_SECURITY);
}

/* The device's answer to a security action (DeviceLock, EraseDevice,
 * ClearPasscode) is audited like the request was: a warn line and an event.
 * type is the command's RequestType, read with the report. Best effort: the
 * report itself is already stored. */
static void audit_security_result(struct store *s, const char *enrollment_id, const char *uuid,
                                  const char *type, const char *status, int64_t now)
{
    if (!uuid || !queue_report_audited(type, status))
        return;
    char q[160];
    log_warn("security_action_result", "device=%s type=%s uuid=%s status=%s",
             log_quote(q, sizeof q, enrollment_id), type, uuid, status);
    char detail[256];
    snprintf(detail, sizeof detail, "%s answered %s (command %s)", type, status, uuid);
    store_event_add(s, enrollment_id, "security_action_result", detail, now);
}

/* The report and the next command (with chk, its identity check too),
 * then the audit of a security command's answer. */
static int report_then_audit(struct store *s, struct store_report_check *chk,
                             const char *enrollment_id, const char *status,
                             const char *command_uuid, const uint8_t *raw, size_t raw_len,
                             int64_t now, struct store_command **reported,
                             struct store_command **next)
{
    struct store_command *rep = NULL;
    int rc = chk ? store_queue_report_next_checked(s, chk, enrollment_id, command_uuid, status,
                                                   raw, raw_len, now, &rep, next)
                 : store_queue_report_next(s, enrollment_id, command_uuid, status, raw, raw_len,
                                           now, &rep, next);
    if (rc == STORE_OK)
        audit_security_result(s, enrollment_id, command_uuid, rep->request_type, status, now);
    if (reported)
        *reported = rep;
    else
        store_command_free(rep);
    return rc;
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
    return report_then_audit(s, NULL, enrollment_id, status, command_uuid, raw, raw_len, now,
                             reported, next);
}

int queue_exchange_report_checked(struct store *s, struct store_report_check *chk,
                                  const char *enrollment_id, const char *status,
                                  const char *command_uuid, const uint8_t *raw, size_t raw_len,
                                  int64_t now, struct store_command **reported,
                                  struct store_command **next)
{
    if (reported)
        *reported = NULL;
    *next = NULL;
    if (strcmp(status, "Idle") == 0)
        return STORE_ERR; /* an Idle has its own path (queue_exchange_report) */
    return report_then_audit(s, chk, enrollment_id, status, command_uuid, raw, raw_len, now,
                             reported, next);
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
