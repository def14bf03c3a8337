/* store_apps.h: store.h's section for the commands-and-apps area (issue 6):
 * the AccessRights each enrollment granted, command lifecycle (deadline,
 * expiry, cancel everywhere, retry lineage, per-command status), managed
 * apps steward hosts or installs from the App Store, and VPP redemption code
 * pools. Included by store.h (include store.h, not this). Implemented in
 * store/apps.c on sql.h, so every backend runs the same code. */
#ifndef STEWARD_STORE_APPS_H
#define STEWARD_STORE_APPS_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* ---- access rights --------------------------------------------------------
 * The com.apple.mdm AccessRights the enrollment's profile granted (8191, all
 * of them, until set). NOTFOUND when the enrollment is unknown. */
int store_enrollment_access_rights_set(struct store *s, const char *id, int64_t rights);
int store_enrollment_access_rights_get(struct store *s, const char *id, int64_t *rights);

/* ---- command lifecycle ---------------------------------------------------- */

/* Records a command's deadline (expires_at 0: none; ttl: the seconds it was
 * given, reused by a retry), the command it retries (or NULL) and who sent
 * it (or NULL). Call after store_command_create, in the same transaction. */
int store_command_meta_set(struct store *s, const char *uuid, int64_t expires_at, int64_t ttl,
                           const char *retry_of, const char *created_by);

struct store_command_meta {
    char *request_type;
    int64_t created_at;
    int64_t expires_at; /* 0: none */
    int64_t ttl;        /* 0: none */
    char *retry_of;     /* NULL unless a retry */
    char *created_by;   /* NULL when unknown */
};
void store_command_meta_free(struct store_command_meta *m); /* accepts NULL */
/* Any stored command (meta fields 0/NULL when it has no meta row). */
int store_command_meta_get(struct store *s, const char *uuid, struct store_command_meta **out);

/* The periodic sweep: marks Expired every row still waiting to be delivered
 * (never sent, or NotNow) whose command's deadline passed. Between sweeps
 * store_queue_next marks such a row itself when it reaches the head of a
 * device's queue, and never delivers it. *n (may be NULL) gets the number
 * of rows expired. */
int store_queue_expire_due(struct store *s, int64_t now, int64_t *n);

/* Cancels a command on every enrollment it still waits for (status
 * Canceled, kept in the history). *n gets the rows canceled; NOTFOUND when
 * the command does not exist. */
int store_command_cancel_all(struct store *s, const char *uuid, int64_t now, int64_t *n);

/* The status of a command on each enrollment, ordered by enrollment id. */
struct store_command_target {
    char *enrollment_id;
    char *status;        /* Pending, NotNow, Acknowledged, Error, CommandFormatError, Expired, Canceled */
    int64_t delivered_at;
    int64_t updated_at;
    char *retried_as;    /* the retry's CommandUUID, or NULL */
};
void store_command_targets_free(struct store_command_target *t, size_t n);
int store_command_targets(struct store *s, const char *uuid, int64_t limit,
                          struct store_command_target **out, size_t *n);

/* The enrollments where a command failed (Error, CommandFormatError or
 * Expired) and was not retried yet: malloc'd array of malloc'd ids. */
int store_command_failed_targets(struct store *s, const char *uuid, char ***ids, size_t *n);
/* Records that the row (enrollment, uuid) was retried as retry_uuid. */
int store_command_mark_retried(struct store *s, const char *enrollment_id, const char *uuid,
                               const char *retry_uuid);

/* What the checks of a typed command need to know about one target, in one
 * read: status, serial, whether an UnlockToken is stored, the AccessRights
 * granted, and supervision and the App Store from inventory (-1: unknown). */
struct store_target_facts {
    int status;            /* enum store_enrollment_status */
    char serial[64];
    int has_unlock_token;
    int64_t access_rights;
    int supervised;        /* 1, 0, or -1 when inventory does not know */
    int app_store_allowed; /* 1, 0, or -1 */
};
/* NOTFOUND when the enrollment is unknown. */
int store_command_target_facts(struct store *s, const char *id, struct store_target_facts *f);
/* The same for n ids at once (ids_json: a JSON array of them), in one
 * statement: found[i] is 1 and facts[i] filled for each known id. inventory
 * 0: supervised and app_store_allowed are left -1 (inventory not read). */
int store_command_target_facts_many(struct store *s, const char *ids_json, size_t n,
                                    int inventory, struct store_target_facts *facts, int *found);

/* A stored command's RequestType into out (truncated to n). NOTFOUND when
 * unknown. */
int store_command_request_type(struct store *s, const char *uuid, char *out, size_t n);

/* The stored command plist (malloc'd). NOTFOUND when unknown. */
int store_command_payload(struct store *s, const char *uuid, uint8_t **payload, size_t *len);

/* Queues an existing command for n enrollments in one statement (ids_json:
 * a JSON array of the n ids, known and not checked out), all or nothing:
 * STORE_CONFLICT (nothing kept) when not every id took it, so the caller
 * can go id by id with store_queue_add for each id's outcome. */
int store_queue_add_many(struct store *s, const char *ids_json, size_t n, const char *uuid,
                         int64_t now);
/* store_queue_add_many for ids nobody checked: all or nothing too, and
 * STORE_CONFLICT (nothing kept) also when an id is unknown or checked out. */
int store_queue_add_many_enrolled(struct store *s, const char *ids_json, size_t n,
                                  const char *uuid, int64_t now);

/* What a typed command asks of every device (core/catalog.h's cat_needs). */
struct store_target_needs {
    int64_t rights; /* AccessRights bits that must all be granted */
    int supervised; /* 1: not where inventory says unsupervised */
    int app_store;  /* 1: not where inventory says the App Store is disabled */
};
/* store_queue_add_many_enrolled that also requires needs of each
 * enrollment (supervision and the App Store unknown to inventory pass):
 * STORE_CONFLICT (nothing kept) when an id is unknown, checked out or
 * lacks one of them. */
int store_queue_add_many_if(struct store *s, const char *ids_json, size_t n, const char *uuid,
                            int64_t now, const struct store_target_needs *needs);

/* Whether a command of this RequestType waits for the enrollment. */
int store_queue_has_pending_type(struct store *s, const char *enrollment_id,
                                 const char *request_type, int *pending);
/* Inside the caller's enqueue transaction, before store_queue_has_pending_type:
 * locks the device's enrollment row until the transaction ends (PostgreSQL;
 * SQLite has one writer anyway), so the check that keeps a destructive
 * command from being queued twice holds even for two nodes at once. Lock
 * several devices in id order (as the compliance fleet run goes), so two
 * transactions never wait for each other in a circle. */
int store_queue_lock_device(struct store *s, const char *enrollment_id);

/* ---- apps ----------------------------------------------------------------- */

struct store_app {
    char *id;
    char *kind;            /* "enterprise" (hosted .ipa) or "store" (App Store) */
    char *name;
    char *bundle_id;
    char *version;
    int64_t itunes_store_id; /* 0 when none */
    int64_t ipa_size;
    char *ipa_sha256;
    int64_t created_at;
    int64_t codes_free;    /* unused redemption codes (listing and get) */
    int64_t codes_used;
};
void store_app_free(struct store_app *a); /* accepts NULL */
void store_app_list_free(struct store_app **list, size_t n);

/* Stores an app (id, kind, created_at required; ipa may be NULL). CONFLICT
 * when the id exists. */
int store_app_add(struct store *s, const struct store_app *a, const uint8_t *ipa, size_t ipa_len);
int store_app_get(struct store *s, const char *id, struct store_app **out);
int store_app_list(struct store *s, struct store_app ***out, size_t *n);
/* The hosted .ipa (malloc'd). NOTFOUND when the app or its .ipa is missing. */
int store_app_ipa(struct store *s, const char *id, uint8_t **out, size_t *len);
int store_app_delete(struct store *s, const char *id);

/* Adds redemption codes to an app's pool; *added counts the new ones (a
 * code already in the pool is skipped). NOTFOUND when the app is unknown. */
int store_app_codes_add(struct store *s, const char *app_id, const char *const *codes, size_t n,
                        int64_t now, size_t *added);
/* The code this enrollment holds for the app, or the next unused one, now
 * assigned to it (one per device). *code malloc'd. NOTFOUND when the pool
 * has none left. */
int store_app_code_take(struct store *s, const char *app_id, const char *enrollment_id,
                        int64_t now, char **code);

#endif
