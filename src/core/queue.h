/* queue.h: the command queue service. Operators enqueue a command (a plist
 * dict with Command.RequestType) once for many enrollments; devices drain it
 * over the connect endpoint, one report and one next command per exchange.
 * Called by api/ (enqueue, list, cancel) and mdm/connect.c (report, next). */
#ifndef STEWARD_QUEUE_H
#define STEWARD_QUEUE_H

#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/ids.h"

#define QUEUE_REQUEST_TYPE_MAX 128

struct queue_enqueued {
    char uuid[128];                          /* CommandUUID as stored */
    char request_type[QUEUE_REQUEST_TYPE_MAX];
    size_t queued;                           /* enrollments that got it */
};

/* Validates a command (dict with a Command dict holding a RequestType string;
 * CommandUUID a non-empty string of at most 127 characters when present) and
 * adds a fresh CommandUUID when absent. Takes no ownership. 0, or -1 with
 * *err set to a static reason. */
int queue_command_prepare(plist_t command, const char **err);

/* Stores the (prepared) command once and queues it for each of ids[0..n).
 * per_id[i] receives STORE_OK, STORE_NOTFOUND (unknown enrollment),
 * STORE_CONFLICT (already queued), a checked-out refusal (QUEUE_CHECKED_OUT)
 * or QUEUE_ALREADY_PENDING.
 * Returns STORE_OK when the command was stored (even if no id took it),
 * STORE_CONFLICT when the CommandUUID exists, or another store_rc. */
#define QUEUE_CHECKED_OUT (-100)
/* per_id for a destructive command (the catalog's CAT_ONE_PENDING:
 * DeviceLock, EraseDevice, ClearPasscode) when one of its type already
 * waits for the device: never queued twice, whichever path queues it (raw,
 * typed, retry, compliance), checked with the device's enrollment row
 * locked until the enqueue transaction ends. */
#define QUEUE_ALREADY_PENDING (-101)

/* Waking devices that got commands: the push service registers a waker at
 * start-up (none in tests and without APNs). Areas that queue commands on
 * their own (profile convergence, compliance actions) call queue_wake with
 * what queue_enqueue reported; only the ids whose per_id is STORE_OK are
 * woken (per_id NULL: all). Pushes are coalesced and leave after a short
 * delay, so calling this just before the enclosing transaction commits is
 * fine. The periodic inventory refresh does not: a pass over the whole fleet
 * would be a push storm, and the re-push job (push_repush_after) wakes
 * devices whose commands wait. */
typedef void (*queue_waker)(void *arg, const char *const *ids, size_t n);
void queue_set_waker(queue_waker fn, void *arg);
void queue_wake(const char *const *ids, const int *per_id, size_t n);
int queue_enqueue(struct store *s, plist_t command, const char *const *ids, size_t n, int64_t now,
                  struct queue_enqueued *out, int *per_id);

/* queue_enqueue for ids the caller has already checked (known, not checked
 * out) inside the same transaction: skips the per-id lookup. per_id[i] is
 * STORE_OK, STORE_NOTFOUND, STORE_CONFLICT or QUEUE_ALREADY_PENDING. */
int queue_enqueue_checked(struct store *s, plist_t command, const char *const *ids, size_t n,
                          int64_t now, struct queue_enqueued *out, int *per_id);

/* The fleet case of a typed command: stores the command and, in one
 * statement, queues it for every one of ids if each is known, not checked
 * out and has what needs asks (store_queue_add_many_if). STORE_OK with
 * out->queued n when every id took it, or 0 when one did not: then no id
 * was queued, and the caller rolls its transaction back (the command is
 * stored) to check each id for its own answer. STORE_CONFLICT when the
 * CommandUUID exists, or another store_rc. Never for a destructive type
 * (a twin is looked for per device) nor a payload per device. */
int queue_enqueue_fleet(struct store *s, plist_t command, const char *const *ids, size_t n,
                        const struct store_target_needs *needs, int64_t now,
                        struct queue_enqueued *out);

/* Reads a connect-endpoint report and answers with the next command:
 * status "Idle" → the oldest waiting command, NotNow'd ones included;
 * any other valid status → stores the report (raw bytes as received), then
 * the next waiting command, NotNow'd ones held back until the next Idle.
 * *next is NULL when nothing waits. Returns STORE_OK, STORE_NOTFOUND when a
 * report names a command not queued for this enrollment (then *next is still
 * served), or another store_rc. */
int queue_exchange(struct store *s, const char *enrollment_id, const char *status,
                   const char *command_uuid, const uint8_t *raw, size_t raw_len, int64_t now,
                   struct store_command **next);

/* queue_exchange, also giving the reported command (uuid, type, payload;
 * caller frees with store_command_free) in *reported when the report was
 * stored (NULL otherwise, and for an Idle), so the caller's inventory update
 * need not read it again. */
int queue_exchange_report(struct store *s, const char *enrollment_id, const char *status,
                          const char *command_uuid, const uint8_t *raw, size_t raw_len,
                          int64_t now, struct store_command **reported,
                          struct store_command **next);
/* queue_exchange_report for a report (not an Idle) with the common case of
 * the identity check in the same call (store_queue_report_next_checked):
 * when chk->ok comes back 0, nothing was written and the caller applies
 * the full identity rules. */
int queue_exchange_report_checked(struct store *s, struct store_report_check *chk,
                                  const char *enrollment_id, const char *status,
                                  const char *command_uuid, const uint8_t *raw, size_t raw_len,
                                  int64_t now, struct store_command **reported,
                                  struct store_command **next);

/* 1 when status is one of Apple's report statuses (Idle, Acknowledged, Error,
 * CommandFormatError, NotNow). */
int queue_status_valid(const char *status);
/* 1 when the queue audits a report of this RequestType with this status
 * (a security action's answer, unless NotNow): the audit row is written in
 * the report's transaction. */
int queue_report_audited(const char *request_type, const char *status);

#endif
