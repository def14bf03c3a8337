/* api.h: the admin REST API front end (docs/api.md): API-key authentication,
 * device and command routes, the NanoMDM-compatible enqueue route, service
 * routes (/version, /healthz, /readyz, /metrics), and the JSON <-> plist
 * mapping they share. The router in app/ matches method and path, url-decodes
 * path segments, calls api_authenticate for admin routes, then the handler. */
#ifndef STEWARD_API_H
#define STEWARD_API_H

#include <jansson.h>
#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

#include "core/service.h"
#include "http/http.h"
#include "store/store.h"

/* ---- authentication (auth.c) ------------------------------------------- */

/* Checks the API key in `Authorization: Bearer <key>` or `Basic
 * base64(user:key)` (any user name). Returns 0 when the key is known; else
 * fills resp (401 with WWW-Authenticate, or 503/500 when the store fails),
 * logs the refusal and returns -1. */
int api_authenticate(struct worker *w, struct request *req, struct response *resp);

/* ---- roles and the caller (auth.c) -------------------------------------- */

/* Ordered: each role may do what the ones below it may. */
enum api_role { API_ROLE_NONE = 0, API_ROLE_VIEWER, API_ROLE_OPERATOR, API_ROLE_ADMIN };

const char *api_role_name(enum api_role r);            /* "viewer", …, "none" */
enum api_role api_role_from_name(const char *name);    /* API_ROLE_NONE when unknown */

/* Who made the request this handler thread is serving. */
struct api_actor {
    char name[160];     /* "key:<name>" or "user:<name>"; "" before authentication */
    enum api_role role;
    int session;        /* 1 when it came with a console session cookie */
};
const struct api_actor *api_current_actor(void);
void api_actor_reset(void); /* the router calls it before each request */
void api_actor_set(const char *kind, const char *name, enum api_role role, int session);

/* api_authenticate, then the role check: 403 forbidden (logged) when the
 * caller's role is below need. 0 when allowed, else -1 with resp filled. */
int api_authorize(struct worker *w, struct request *req, struct response *resp,
                  enum api_role need);
/* Only the role check, for handlers whose need depends on the body (a
 * wipe needs admin on a route operators may use). */
int api_require_role(const struct request *req, struct response *resp, enum api_role need);

/* ---- shared response helpers (system.c) -------------------------------- */

/* Fills resp with `{"error": {"code": code, "message": message}}` as JSON. */
void api_error(struct response *resp, int status, const char *code, const char *message);
/* api_error plus one log line (request id, method, route, status, reason):
 * what every handler uses for a 4xx/5xx answer. */
void api_fail(const struct request *req, struct response *resp, int status, const char *code,
              const char *message);
/* Only the log line of api_fail, for answers whose body is not the error
 * shape (the NanoMDM-compatible route). */
void api_log_refusal(const struct request *req, int status, const char *code,
                     const char *message);
/* api_fail with more top-level members beside "error" (extra: an object,
 * stolen, may be NULL), e.g. per-device reasons. */
void api_fail_with(const struct request *req, struct response *resp, int status,
                   const char *code, const char *message, json_t *extra);
/* Maps a store_rc to an answer: NOTFOUND 404, CONFLICT 409, UNAVAILABLE 503,
 * anything else 500. what names the operation for the log and message. */
void api_fail_store(const struct request *req, struct response *resp, int rc, const char *what);
/* Serialises j (compact) into resp with the given status; takes ownership of
 * j (NULL means out of memory: answers 500). Returns 0 or -1. */
int api_send_json(const struct request *req, struct response *resp, int status, json_t *j);

/* A query parameter, percent-decoded into buf: 0 with *out NULL when
 * absent, 0 with *out = buf when present, -1 after answering 400 when it
 * does not fit in n bytes. */
int api_query_text(const struct request *req, struct response *resp, const char *name,
                   char *buf, size_t n, const char **out);
/* A decimal query parameter in [min, max], def when absent. Returns 0, or
 * -1 after answering 400 bad_request naming the parameter. */
int api_query_int(const struct request *req, struct response *resp, const char *name,
                  int64_t def, int64_t min, int64_t max, int64_t *out);

/* ---- JSON <-> plist (json_plist.c) ------------------------------------- */

/* Deepest nesting of arrays/objects accepted either way. */
#define API_JSON_MAX_DEPTH 32

/* Converts JSON to a plist as docs/api.md maps it: string, bool, integer
 * (negative ones stored as their int64 bit pattern, as libplist 2.2 has only
 * PLIST_UINT), real, object -> dict, array; {"$data": base64} -> data and
 * {"$date": RFC 3339} -> date (objects with exactly that one key; dates keep
 * fractions to about a microsecond, 1933-2069 as libplist 2.2 allows). null is
 * refused (plists have no null). Returns a new plist (caller plist_free()s),
 * or NULL with a reason in err. */
plist_t json_to_plist(json_t *j, char *err, size_t errlen);

/* The reverse: a new JSON value (caller json_decref()s), or NULL when p holds
 * something JSON cannot carry (non-UTF-8 text, nesting beyond the limit) or
 * memory ran out. Non-finite reals become null. */
json_t *plist_to_json(plist_t p);

/* An RFC 3339 UTC string for Unix time t, or JSON null when t is 0. */
json_t *api_time_json(int64_t t);

/* The public view of an enrollment (docs/api.md `<device>`). Never includes
 * the unlock token, push magic or bootstrap token. NULL on out of memory. */
json_t *api_device_json(const struct store_enrollment *e);

/* "authenticated", "enrolled", "checked_out" for an enum store_enrollment_status
 * (NULL when unknown), and back (0 when unknown). */
const char *api_status_name(int status);
int api_status_from_name(const char *name);

/* ---- devices (devices.c) ------------------------------------------------ */

/* GET /api/v1/devices?search=&serial=&status=&limit=&offset= */
void api_devices_list(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/devices/{id} */
void api_devices_get(struct worker *w, struct request *req, struct response *resp,
                     const char *id);

/* ---- inventory (inventory.c) -------------------------------------------- */

/* 1 when the query names an inventory filter (os, os_min, os_max, model,
 * supervised, passcode, encryption, battery_below, app, profile,
 * cert_expiring_days, seen_before, seen_after). */
int api_inventory_filter_requested(const struct request *req);
/* GET /api/v1/devices with inventory filters (and search, serial, status). */
void api_inventory_devices_list(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/devices/{id}/inventory/{section}?limit= */
void api_device_inventory(struct worker *w, struct request *req, struct response *resp,
                          const char *id, const char *section);

/* ---- commands (commands.c) ---------------------------------------------- */

/* Most devices one POST /api/v1/commands may name. */
#define API_MAX_COMMAND_DEVICES 100000

/* Runs queue_enqueue for a prepared command in one transaction (store_begin
 * .. commit), keeping nothing when no id took it, so the same CommandUUID
 * may be sent again. Returns STORE_OK with out and per_id filled, or the
 * store_rc that stopped it (CONFLICT: the CommandUUID exists). Shared by
 * both enqueue routes. */
struct queue_enqueued;
int api_enqueue_tx(struct store *s, plist_t command, const char *const *ids, size_t n,
                   struct queue_enqueued *out, int *per_id);
/* The same with a deadline (ttl seconds from now, 0: none) and the sender
 * (API key or operator name, may be NULL) kept in the command's lifecycle
 * row, in the same transaction: raw commands' "ttl" (commands.c). */
int api_enqueue_tx_meta(struct store *s, plist_t command, const char *const *ids, size_t n,
                        int64_t ttl, const char *who, struct queue_enqueued *out, int *per_id);
/* The longest "ttl" a command may carry (ten years, in seconds). */
#define API_MAX_TTL (10LL * 365 * 86400)

/* 1 for the commands only an admin may send (EraseDevice, DeleteUser,
 * ClearPasscode, ClearRestrictionsPassword; operators.c). */
int api_command_needs_admin(plist_t command);
/* The same by request type (typed commands: {"request_type": …}). */
int api_request_type_needs_admin(const char *type);

/* POST /api/v1/commands */
void api_commands_create(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/devices/{id}/commands?limit= */
void api_device_commands_list(struct worker *w, struct request *req, struct response *resp,
                              const char *id);
/* DELETE /api/v1/devices/{id}/commands/{uuid} */
void api_device_command_cancel(struct worker *w, struct request *req, struct response *resp,
                               const char *id, const char *uuid);

/* ---- commands and apps (issue 6): typed.c, lifecycle.c, apps.c ----------- */

/* Called after every committed enqueue with the devices that took a
 * command: the one place all enqueue routes end, where push goes. */
void api_commands_enqueued(struct worker *w, const char *const *ids, size_t n);
/* 1 when the request asks to queue without a push (?nopush=1). */
int api_nopush_requested(const struct request *req);
/* The name of the API key that made the request into buf ("" when unknown). */
void api_caller_name(struct worker *w, const struct request *req, char *buf, size_t n);
/* "devices": a non-empty array of distinct ids (pointing into root; *ids
 * malloc'd). 0, or -1 after answering 400. */
int api_decode_devices(const struct request *req, struct response *resp, json_t *root,
                       const char ***ids, size_t *n);

struct cat_command;
struct typed_opts {
    int64_t ttl;              /* seconds to deliver it by; 0: no deadline */
    const char *command_uuid; /* or NULL for a fresh one */
    const char *retry_of;     /* the command this retries, or NULL */
    const char *vpp_app;      /* queue ApplyRedemptionCode from this app's pool after it */
    const char *vpp_bundle;   /* … for this bundle id */
    char who[96];             /* API key name, for the audit */
};
/* POST /api/v1/commands with "request_type" (root: the parsed body). */
void api_typed_create(struct worker *w, struct request *req, struct response *resp, json_t *root);
/* Checks cmd (a Command dict of type c) and each device, enqueues it for
 * those that may take it and answers. Takes no ownership. */
void api_typed_submit(struct worker *w, struct request *req, struct response *resp,
                      const struct cat_command *c, plist_t cmd, const char *const *ids,
                      size_t nids, const struct typed_opts *o);

/* GET /api/v1/commands/{uuid}: the command and its status per device. */
void api_command_get(struct worker *w, struct request *req, struct response *resp,
                     const char *uuid);
/* DELETE /api/v1/commands/{uuid}: cancels it on every device it waits for. */
void api_command_cancel_all(struct worker *w, struct request *req, struct response *resp,
                            const char *uuid);
/* POST /api/v1/commands/{uuid}/retry: a new command for the devices where it
 * failed (Error, CommandFormatError, Expired). */
void api_command_retry(struct worker *w, struct request *req, struct response *resp,
                       const char *uuid);
/* GET /api/v1/catalog: the command catalog as JSON. */
void api_catalog(struct worker *w, struct request *req, struct response *resp);

/* Apps: POST/GET /api/v1/apps, GET/DELETE /api/v1/apps/{id},
 * POST /api/v1/apps/{id}/codes, POST /api/v1/apps/{id}/install, and the
 * device-facing GET /apps/{id}/manifest.plist and /apps/{id}/app.ipa. */
void api_apps_create(struct worker *w, struct request *req, struct response *resp);
void api_apps_list(struct worker *w, struct request *req, struct response *resp);
void api_apps_get(struct worker *w, struct request *req, struct response *resp, const char *id);
void api_apps_delete(struct worker *w, struct request *req, struct response *resp,
                     const char *id);
void api_apps_codes_add(struct worker *w, struct request *req, struct response *resp,
                        const char *id);
void api_apps_install(struct worker *w, struct request *req, struct response *resp,
                      const char *id);
void api_apps_manifest(struct worker *w, struct request *req, struct response *resp,
                       const char *id);
void api_apps_ipa(struct worker *w, struct request *req, struct response *resp, const char *id);

/* ---- NanoMDM-compatible enqueue (nanomdm.c) ----------------------------- */

/* PUT /v1/enqueue/{ids}: ids is the one path segment, comma-separated. */
void api_nanomdm_enqueue(struct worker *w, struct request *req, struct response *resp,
                         const char *ids);

/* ---- service routes (system.c), no key needed --------------------------- */

void api_version(struct worker *w, struct request *req, struct response *resp);
void api_healthz(struct worker *w, struct request *req, struct response *resp);
void api_readyz(struct worker *w, struct request *req, struct response *resp);
void api_metrics(struct worker *w, struct request *req, struct response *resp);

/* ---- certificates and SCEP challenges (certs.c) ------------------------- */

/* POST /api/v1/scep/challenges: a one-time challenge, shown once. */
void api_scep_challenge_create(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/certs?status=&expiring_within_days=&device=&limit=&offset= */
void api_certs_list(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/certs/{serial} */
void api_certs_get(struct worker *w, struct request *req, struct response *resp,
                   const char *serial);
/* POST /api/v1/certs/{serial}/revoke, /approve and /reject */
void api_certs_revoke(struct worker *w, struct request *req, struct response *resp,
                      const char *serial);
void api_certs_approve(struct worker *w, struct request *req, struct response *resp,
                       const char *serial);
void api_certs_reject(struct worker *w, struct request *req, struct response *resp,
                      const char *serial);

/* ---- profiles and groups (profiles.c; docs/profiles.md) ----------------- */

void api_profiles_create(struct worker *w, struct request *req, struct response *resp);
void api_profiles_list(struct worker *w, struct request *req, struct response *resp);
void api_profiles_get(struct worker *w, struct request *req, struct response *resp, const char *id);
void api_profiles_mobileconfig(struct worker *w, struct request *req, struct response *resp,
                               const char *id);
void api_profiles_delete(struct worker *w, struct request *req, struct response *resp,
                         const char *id);
void api_profiles_status(struct worker *w, struct request *req, struct response *resp,
                         const char *id);
void api_device_profiles(struct worker *w, struct request *req, struct response *resp,
                         const char *id);
void api_groups_create(struct worker *w, struct request *req, struct response *resp);
void api_groups_list(struct worker *w, struct request *req, struct response *resp);
void api_groups_get(struct worker *w, struct request *req, struct response *resp,
                    const char *name);
void api_groups_update(struct worker *w, struct request *req, struct response *resp,
                       const char *name);
void api_groups_delete(struct worker *w, struct request *req, struct response *resp,
                       const char *name);
void api_groups_members_add(struct worker *w, struct request *req, struct response *resp,
                            const char *name);
void api_groups_member_remove(struct worker *w, struct request *req, struct response *resp,
                              const char *name, const char *id);
void api_groups_assign(struct worker *w, struct request *req, struct response *resp,
                       const char *name);
void api_groups_unassign(struct worker *w, struct request *req, struct response *resp,
                         const char *name, const char *profile);
void api_device_attribute_put(struct worker *w, struct request *req, struct response *resp,
                              const char *id, const char *name);
void api_device_attribute_delete(struct worker *w, struct request *req, struct response *resp,
                                 const char *id, const char *name);
/* ---- operators (operators.c, webhooks.c, stats.c) ---------------------- */

/* GET/POST /api/v1/users, PATCH/DELETE /api/v1/users/{name} */
void api_users_list(struct worker *w, struct request *req, struct response *resp);
void api_users_create(struct worker *w, struct request *req, struct response *resp);
void api_users_update(struct worker *w, struct request *req, struct response *resp,
                      const char *name);
void api_users_delete(struct worker *w, struct request *req, struct response *resp,
                      const char *name);
/* GET/POST /api/v1/keys, DELETE /api/v1/keys/{id} */
void api_keys_list(struct worker *w, struct request *req, struct response *resp);
void api_keys_create(struct worker *w, struct request *req, struct response *resp);
void api_keys_delete(struct worker *w, struct request *req, struct response *resp,
                     const char *id);
/* GET /api/v1/audit?actor=&method=&target=&since=&until=&failed=&limit=&offset=&format= */
void api_audit_list(struct worker *w, struct request *req, struct response *resp);
/* Appends the audit entry for a change the router just ran (called by the
 * router for every non-GET API request, whatever the outcome). */
void api_audit_record(struct worker *w, const struct request *req, const struct response *resp,
                      const char *action, const char *target);
/* GET /api/v1/stats: the dashboard's figures. */
void api_stats(struct worker *w, struct request *req, struct response *resp);
/* GET/POST /api/v1/webhooks, PATCH/DELETE /api/v1/webhooks/{id},
 * GET /api/v1/webhooks/{id}/deliveries, POST /api/v1/webhooks/{id}/test */
void api_webhooks_list(struct worker *w, struct request *req, struct response *resp);
void api_webhooks_create(struct worker *w, struct request *req, struct response *resp);
void api_webhooks_update(struct worker *w, struct request *req, struct response *resp,
                         const char *id);
void api_webhooks_delete(struct worker *w, struct request *req, struct response *resp,
                         const char *id);
void api_webhooks_deliveries(struct worker *w, struct request *req, struct response *resp,
                             const char *id);
void api_webhooks_test(struct worker *w, struct request *req, struct response *resp,
                       const char *id);

/* A JSON object body: a new reference, or NULL after answering 400. */
json_t *api_json_body(const struct request *req, struct response *resp);
/* ---- push (push.c, issue 5) ---------------------------------------------- */

/* GET /api/v1/pushcerts, GET /api/v1/pushcerts/{topic}, PUT /api/v1/pushcerts */
void api_pushcerts_list(struct worker *w, struct request *req, struct response *resp);
void api_pushcerts_get(struct worker *w, struct request *req, struct response *resp,
                       const char *topic);
void api_pushcerts_put(struct worker *w, struct request *req, struct response *resp);
/* POST /api/v1/push {"devices": [...]}: pushes now, answers per device. */
void api_push_create(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/devices/{id}/push: last push, result, unregistered mark. */
void api_device_push(struct worker *w, struct request *req, struct response *resp, const char *id);
/* GET /v1/push/{id,id,...}: NanoMDM's push route and answer. */
void api_nanomdm_push(struct worker *w, struct request *req, struct response *resp,
                      const char *ids);
/* After an enqueue: pushes (coalesced, never blocking) the ids whose
 * per_id is STORE_OK (per_id NULL: all). No-op when push is off. */
void api_push_after_enqueue(struct worker *w, const char *const *ids, const int *per_id, size_t n);
/* NanoMDM's enqueue: pushes the queued ids now and adds push_result /
 * push_error to the APIResult's "status" map in j. */
void api_push_nanomdm_status(struct worker *w, json_t *j, const char *const *ids,
                             const int *per_id, size_t n);
void api_device_remove(struct worker *w, struct request *req, struct response *resp,
                       const char *id);
/* ---- compliance (compliance.c) ------------------------------------------ */

/* /api/v1/compliance/policies: GET list, POST create; /{id}: GET, PUT
 * (members given replace the stored ones), DELETE. */
void api_compliance_policies_list(struct worker *w, struct request *req, struct response *resp);
void api_compliance_policies_create(struct worker *w, struct request *req,
                                    struct response *resp);
void api_compliance_policies_get(struct worker *w, struct request *req, struct response *resp,
                                 const char *id);
void api_compliance_policies_update(struct worker *w, struct request *req,
                                    struct response *resp, const char *id);
void api_compliance_policies_delete(struct worker *w, struct request *req,
                                    struct response *resp, const char *id);
/* GET /api/v1/compliance?state=&policy=&limit=&offset= */
void api_compliance_summary(struct worker *w, struct request *req, struct response *resp);
/* POST /api/v1/compliance/evaluate (body empty or {"device": id}) */
void api_compliance_evaluate(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/devices/{id}/compliance?history= */
void api_device_compliance(struct worker *w, struct request *req, struct response *resp,
                           const char *id);
/* POST /api/v1/devices/{id}/lost {message, phone}; POST /api/v1/devices/{id}/wipe {confirm} */
void api_device_lost(struct worker *w, struct request *req, struct response *resp,
                     const char *id);
void api_device_wipe(struct worker *w, struct request *req, struct response *resp,
                     const char *id);

#endif
