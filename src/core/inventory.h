/* inventory.h: the device inventory service. Command results dispatch by the
 * command's RequestType to small handlers (core/inventory_handlers.c) that
 * turn an Acknowledged answer into inventory rows and history; this module
 * also queues the inventory set (after enrollment and on a schedule) without
 * ever queueing a second copy of a query still waiting, and reads the
 * inventory for the API. Called by mdm/connect.c (results), mdm/checkin.c
 * (first TokenUpdate), app/serve.c (scheduler jobs) and api/inventory.c. */
#ifndef STEWARD_INVENTORY_H
#define STEWARD_INVENTORY_H

#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A result handler: parses one Acknowledged report (the whole dict the
 * device sent) for the command `command` (its Command dict as queued; may
 * be NULL) into the store. Runs inside the report's transaction. Returns
 * STORE_OK, or a store_rc (the handler's writes are then undone, the report
 * itself is still kept). A malformed answer is logged and skipped (STORE_OK). */
typedef int (*inventory_handler)(struct store *s, const char *id, plist_t command,
                                 plist_t report, int64_t now);

/* Adds (or replaces) the handler for a RequestType. Call at start-up,
 * before serving: the table is read without locks afterwards. 0, or -1 when
 * the table is full. */
int inventory_register(const char *request_type, inventory_handler h);
/* The handler for a RequestType (built-ins included), or NULL. */
inventory_handler inventory_handler_for(const char *request_type);
/* The filterable row (inventory's device columns) a DeviceInformation
 * answer carries, as its handler writes it: 0, or -1 when the report has no
 * QueryResponses dictionary. d's strings point into report. */
int inventory_device_row(plist_t report, struct store_inv_device *d);
/* The RequestTypes that have a handler (built-ins, then registered ones):
 * up to max of them into types; returns how many there are. */
size_t inventory_handler_types(const char **types, size_t max);

/* The connect endpoint's hook, called inside the exchange's transaction
 * after the report was stored: loads the command the report answers and,
 * for an Acknowledged one, runs its RequestType's handler in a savepoint.
 * Returns STORE_OK when nothing needed doing or the handler succeeded. */
int inventory_report(struct store *s, const char *id, const char *command_uuid,
                     const char *status, plist_t report, int64_t now);
/* The same for a command the caller already read with the report (its
 * RequestType and stored payload): no second read. compliance 0 skips the
 * compliance evaluation that follows a successful update (the caller read
 * that no policy is enabled). */
int inventory_report_command(struct store *s, const char *id, const char *status,
                             plist_t report, const char *type, const uint8_t *payload,
                             size_t len, int compliance, int64_t now);

/* ---- the inventory set and dedupe ---- */

/* The RequestTypes of the full inventory set, in the order they are queued. */
extern const char *const inventory_set_types[];
extern const size_t inventory_set_count;

/* A fresh command plist (CommandUUID included) for one inventory
 * RequestType: DeviceInformation asks every query PROTOCOL.md lists,
 * Restrictions asks for per-profile restrictions too. NULL when unknown. */
plist_t inventory_command_new(const char *request_type);

/* 1 when a command of the same RequestType (and, for DeviceInformation, the
 * same Queries) already waits for the enrollment, 0 when not, or a
 * negative store_rc. */
int inventory_is_pending(struct store *s, const char *id, plist_t command);

/* Queues command for each of ids[0..n) that has no equal command waiting
 * (inventory_is_pending): the payload is stored once, only if some id
 * takes it. *queued (may be NULL) counts ids that got it. Runs in the
 * caller's transaction or its own. */
int inventory_enqueue_unique(struct store *s, plist_t command, const char *const *ids, size_t n,
                             int64_t now, size_t *queued);

/* Queues the full inventory set for one enrollment (deduped) and records
 * the refresh time. Own transaction. */
int inventory_refresh_device(struct store *s, const char *id, int64_t now, size_t *queued);

/* Queues the set for every enrolled device whose last refresh is older than
 * interval seconds, batch devices per call of the store, until none is due.
 * *devices (may be NULL) counts devices refreshed. */
int inventory_refresh_due(struct store *s, int64_t interval, int64_t now, size_t *devices);

/* Deletes history older than days. */
int inventory_history_prune(struct store *s, int64_t days, int64_t now, int64_t *deleted);

/* ---- reading (for the API) ---- */

/* Devices matching every set condition of f, one page of ids ordered by id
 * (store_inv_ids_free), in one read snapshot with *total. */
int inventory_find(struct store *s, const struct store_inv_filter *f, char ***ids, size_t *n,
                   int64_t *total);
/* A device/security section's typed values (store_inv_values_free). */
int inventory_values(struct store *s, const char *id, int section, struct store_inv_value **v,
                     size_t *n);
/* A list section's rows (store_inv_table_free); history newest first. */
int inventory_rows(struct store *s, const char *id, int section, int64_t limit,
                   struct store_inv_table **t);

/* ---- helpers shared with the handlers and the API ---- */

/* "16.4.1" → 160401; -1 when not a version. */
int64_t inventory_os_num(const char *version);

/* The sections GET /api/v1/devices/{id}/inventory/{section} serves. */
enum inventory_section {
    INVENTORY_DEVICE,
    INVENTORY_SECURITY,
    INVENTORY_PROFILES,
    INVENTORY_CERTIFICATES,
    INVENTORY_APPS,
    INVENTORY_MANAGED_APPS,
    INVENTORY_PROVISIONING,
    INVENTORY_RESTRICTIONS,
    INVENTORY_HISTORY,
    INVENTORY_NSECTIONS
};
/* -1 when the name is not a section. */
int inventory_section_from_name(const char *name);
const char *inventory_section_name(int section);
/* A list section's store list, or -1 for device/security (typed values). */
int inventory_section_list(int section);

/* Handlers of the built-in RequestTypes (inventory_handlers.c). */
int inventory_on_device_information(struct store *s, const char *id, plist_t command,
                                    plist_t report, int64_t now);
int inventory_on_security_info(struct store *s, const char *id, plist_t command, plist_t report,
                               int64_t now);
int inventory_on_profile_list(struct store *s, const char *id, plist_t command, plist_t report,
                              int64_t now);
int inventory_on_certificate_list(struct store *s, const char *id, plist_t command,
                                  plist_t report, int64_t now);
int inventory_on_installed_apps(struct store *s, const char *id, plist_t command,
                                plist_t report, int64_t now);
int inventory_on_managed_apps(struct store *s, const char *id, plist_t command, plist_t report,
                              int64_t now);
int inventory_on_provisioning_profiles(struct store *s, const char *id, plist_t command,
                                       plist_t report, int64_t now);
int inventory_on_restrictions(struct store *s, const char *id, plist_t command, plist_t report,
                              int64_t now);

/* Writes a list answer and its history (added/removed/changed by key) in
 * one go; replace as store_inventory_rows_put. For the handlers. */
int inventory_put_list(struct store *s, const char *id, enum store_inv_list list,
                       const struct store_inv_cell *cells, size_t nrows, int replace,
                       int64_t now);
/* Writes typed values and the history of the ones that changed (keys in
 * `quiet` — a NULL-terminated list, may be NULL — change without history).
 * Values equal to the stored ones are not rewritten. */
int inventory_put_values(struct store *s, const char *id, const char *section,
                         const struct store_inv_value *v, size_t n, int replace,
                         const char *const *quiet, int64_t now);
/* A DeviceInformation answer: its filterable row d, then its values into
 * "device" as inventory_put_values (partial: values not answered stay),
 * the row written with the read (one round trip on PostgreSQL). */
int inventory_put_device_values(struct store *s, const char *id, const struct store_inv_device *d,
                                const struct store_inv_value *v, size_t n,
                                const char *const *quiet, int64_t now);

#endif
