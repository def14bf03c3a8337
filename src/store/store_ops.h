/* store_ops.h: store.h's section for admin users, roles, API key management, the audit log, webhooks with their delivery queue, and
 * the dashboard's figures, included by store.h (include store.h, not this).
 * Console sessions and sign-in throttling are web/session.c's (realm
 * "console"). Implemented in store/ops.c on sql.h, so every backend runs the same code.
 * Used by api/ (auth, admin routes), core/events.c and app/. */
#ifndef STEWARD_STORE_OPS_H
#define STEWARD_STORE_OPS_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* ---- admin users ---------------------------------------------------------- */

struct store_admin_user {
    char *name;
    char *role; /* "viewer", "operator", "admin" */
    char *password_hash; /* PHC string (util/password.h) */
    int64_t created_at;
    int64_t last_login_at; /* 0 when never */
};
void store_admin_user_clear(struct store_admin_user *u); /* frees the fields */
void store_admin_users_free(struct store_admin_user *list, size_t n);

/* CONFLICT when the name exists. */
int store_admin_user_add(struct store *s, const char *name, const char *password_hash,
                         const char *role, int64_t now);
/* NOTFOUND when unknown; out's fields are malloc'd (store_admin_user_clear). */
int store_admin_user_get(struct store *s, const char *name, struct store_admin_user *out);
/* Every user by name; password_hash is left NULL. */
int store_admin_user_list(struct store *s, struct store_admin_user **out, size_t *n);
/* Changes the hash and/or role (NULL keeps). NOTFOUND when unknown. */
int store_admin_user_update(struct store *s, const char *name, const char *password_hash,
                            const char *role);
int store_admin_user_delete(struct store *s, const char *name); /* NOTFOUND when unknown */
/* A successful sign-in: records the time. */
int store_admin_user_signin_ok(struct store *s, const char *name, int64_t now);
/* Lifts a sign-in lock-out of web/session.c's throttle (realm, key such as
 * "user:alice") and clears its failure count: an admin reset the password. */
int store_web_throttle_unlock(struct store *s, const char *realm, const char *key);
/* How many admin users exist. */
int store_admin_user_count(struct store *s, int64_t *count);

/* ---- API keys (added by store_apikey_add in store.h) ---------------------- */

struct store_apikey {
    char *id; /* the first 16 hex characters of the key's SHA-256: names it, reveals nothing */
    char *name;
    char *role;
    int64_t created_at;
    int64_t last_used_at;
};
void store_apikeys_free(struct store_apikey *list, size_t n);
int store_apikey_list(struct store *s, struct store_apikey **out, size_t *n);
/* Deletes the key whose id (16 hex) is given. NOTFOUND when none. */
int store_apikey_delete(struct store *s, const char *id);
/* Records a use, at most once a minute per key (cheap on the hot path). */
int store_apikey_touch(struct store *s, const char *hash, int64_t now);
/* How many keys hold role. */
int store_apikey_count_role(struct store *s, const char *role, int64_t *count);

/* ---- audit log ------------------------------------------------------------ */

struct store_audit {
    int64_t id; /* assigned on insert */
    int64_t at;
    char *actor;  /* "key:<name>", "user:<name>", "anonymous" */
    char *role;
    char *method;
    char *path;   /* as requested, without the query */
    char *action; /* the route pattern, e.g. "POST /api/v1/commands" */
    char *target; /* the path parameters, or NULL */
    int status;   /* the HTTP status answered */
    char *remote_addr;
    char *request_id;
};
void store_audit_free(struct store_audit *list, size_t n);
/* Appends one entry (a's id is ignored). */
int store_audit_add(struct store *s, const struct store_audit *a);

struct store_audit_filter {
    const char *actor;  /* exact, or NULL */
    const char *method; /* exact, or NULL */
    const char *target; /* substring of target or path, or NULL */
    int64_t since, until; /* at in [since, until); 0 = open */
    int64_t min_status; /* 0 = any; 400 = failures only */
    int64_t limit, offset;
};
/* Newest first. */
int store_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit **out,
                     size_t *n);

/* ---- webhooks ------------------------------------------------------------- */

struct store_webhook {
    int64_t id;
    char *url;
    char *secret;
    char *events; /* comma-separated event types; "*" for all; a "prefix.*" matches a family */
    char *description;
    int enabled;
    int64_t created_at;
};
void store_webhook_clear(struct store_webhook *h);
void store_webhooks_free(struct store_webhook *list, size_t n);
int store_webhook_add(struct store *s, const struct store_webhook *h, int64_t now, int64_t *id);
int store_webhook_get(struct store *s, int64_t id, struct store_webhook *out);
/* enabled_only: only those enabled. */
int store_webhook_list(struct store *s, int enabled_only, struct store_webhook **out, size_t *n);
/* NULL fields and enabled < 0 keep the stored value. NOTFOUND when unknown. */
int store_webhook_update(struct store *s, int64_t id, const struct store_webhook *h);
int store_webhook_delete(struct store *s, int64_t id);

struct store_delivery {
    int64_t id;
    int64_t webhook_id;
    char *event_id;
    char *event_type;
    char *payload; /* the JSON body sent */
    char *status;  /* "pending", "delivered", "failed" */
    int64_t attempts;
    int64_t next_try_at;
    int64_t last_http_status;
    char *last_error;
    int64_t created_at;
    int64_t delivered_at;
    char *url;    /* filled by store_delivery_claim only */
    char *secret; /* idem */
};
void store_deliveries_free(struct store_delivery *list, size_t n);
int store_delivery_add(struct store *s, int64_t webhook_id, const char *event_id,
                       const char *event_type, const char *payload, int64_t now, int64_t *id);
/* Claims up to limit pending deliveries due at now (of enabled webhooks),
 * oldest first: each is leased until now + lease_secs with one conditional
 * update, so two nodes never send the same one at once. */
int store_delivery_claim(struct store *s, int64_t now, int64_t lease_secs, int64_t limit,
                         struct store_delivery **out, size_t *n);
/* Records an attempt's outcome: status "delivered", "failed" (given up) or
 * "pending" (retry at next_try_at). */
int store_delivery_result(struct store *s, int64_t id, const char *status, int64_t attempts,
                          int64_t next_try_at, int64_t http_status, const char *error,
                          int64_t now);
/* Deletes delivered and failed deliveries created before `before`. */
int store_delivery_prune(struct store *s, int64_t before, int64_t *deleted);
/* One webhook's deliveries, newest first (status NULL = any). */
int store_delivery_list(struct store *s, int64_t webhook_id, const char *status, int64_t limit,
                        int64_t offset, struct store_delivery **out, size_t *n);

/* ---- dashboard figures ---------------------------------------------------- */

struct store_ops_stats {
    int64_t devices_enrolled;   /* device channels ENROLLED */
    int64_t devices_total;      /* device channels in any state */
    int64_t devices_checked_out;
    int64_t seen_24h;           /* device channels seen in the last 24 hours */
    int64_t commands_pending;   /* queue rows still waiting */
    int64_t commands_failed_24h; /* Error/CommandFormatError answers in the last 24 hours */
};
int store_ops_stats(struct store *s, int64_t now, struct store_ops_stats *out);
/* Device channels by last_seen_at in nb buckets of bucket_secs ending at
 * now (buckets[nb-1] is the latest). */
int store_ops_seen_histogram(struct store *s, int64_t now, int64_t bucket_secs, int64_t *buckets,
                             size_t nb);
/* The most common OS versions among enrolled device channels: up to max
 * pairs, versions malloc'd (NULL version = unknown). */
int store_ops_os_versions(struct store *s, size_t max, char **versions, int64_t *counts,
                          size_t *n);
/* Compliance over enrolled device channels by each device's worst state
 * under the enabled policies: policies (enabled), noncompliant, unknown
 * (devices with an unknown state and none non-compliant). */
struct store_ops_compliance {
    int64_t policies, noncompliant, unknown;
};
int store_ops_compliance_stats(struct store *s, struct store_ops_compliance *out);

#endif
