/* store_compliance.h: store.h's section for compliance policies, per-device
 * policy states and their history, included by store.h (include store.h,
 * not this). Implemented in store/compliance.c on sql.h, so every backend
 * runs the same code. Used by core/compliance.c. */
#ifndef STEWARD_STORE_COMPLIANCE_H
#define STEWARD_STORE_COMPLIANCE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* ---- policies --------------------------------------------------------------
 * rules, scope and actions are JSON text, checked by core/compliance.c. */
struct store_compliance_policy {
    int64_t id;
    char *name;
    char *description; /* may be NULL */
    int enabled;
    char *rules;
    char *scope;
    int64_t grace_seconds;
    char *actions;
    int wipe_enabled;
    int64_t in_scope;     /* devices in scope at the last fleet evaluation */
    int64_t evaluated_at; /* last fleet evaluation, 0 = never */
    int64_t created_at, updated_at;
};
void store_compliance_policy_clear(struct store_compliance_policy *p); /* frees the strings */
void store_compliance_policies_free(struct store_compliance_policy *p, size_t n);

/* CONFLICT when the name is taken. *id (may be NULL) gets the new id. */
int store_compliance_policy_add(struct store *s, const struct store_compliance_policy *p,
                                int64_t now, int64_t *id);
/* Replaces every field but the counters; NOTFOUND, CONFLICT (name taken). */
int store_compliance_policy_update(struct store *s, const struct store_compliance_policy *p,
                                   int64_t now);
int store_compliance_policy_get(struct store *s, int64_t id, struct store_compliance_policy *out);
/* Deletes the policy and its states (history stays). NOTFOUND. */
int store_compliance_policy_delete(struct store *s, int64_t id);
/* Every policy ordered by id (enabled_only: just the enabled ones). */
int store_compliance_policies_list(struct store *s, int enabled_only,
                                   struct store_compliance_policy **out, size_t *n);
/* Records a fleet evaluation of a policy. */
int store_compliance_policy_evaluated(struct store *s, int64_t id, int64_t in_scope, int64_t now);

/* ---- facts the rules read ----------------------------------------------------
 * Every scan reads the whole fleet (only_id NULL: enrolled device channels)
 * or one enrollment, and calls fn per row; fn returning non-zero stops the
 * scan with STORE_ERR. Strings are borrowed for the call. */
struct store_compliance_device {
    const char *id;
    int64_t last_seen_at;     /* 0 = never */
    const char *os_version;   /* NULL = never reported */
    int supervised;           /* -1 unknown */
    int passcode_present;     /* -1 unknown */
    int passcode_compliant;   /* -1 unknown */
    int encryption_caps;      /* -1 unknown */
    int64_t device_at, security_at; /* last DeviceInformation / SecurityInfo, 0 = never */
};
typedef int (*store_compliance_device_fn)(void *ctx, const struct store_compliance_device *d);
int store_compliance_scan_devices(struct store *s, const char *only_id,
                                  store_compliance_device_fn fn, void *ctx);

/* Keyed facts: (enrollment id, text, number) rows. */
enum store_compliance_fact {
    STORE_CFACT_APP,          /* key: bundle id installed; num 1 */
    STORE_CFACT_PROFILE,      /* key: profile identifier installed; num is_managed */
    STORE_CFACT_RESTRICTION,  /* key: global restriction name; text its value */
    STORE_CFACT_REPORTED,     /* key: inventory section name; num when last answered */
    STORE_CFACT_ROAMING,      /* key: IsRoaming or DataRoamingEnabled; text value, num updated */
    STORE_CFACT_CERT_EXPIRY,  /* key unused; num: earliest certificate not_after below `below` */
};
typedef int (*store_compliance_fact_fn)(void *ctx, const char *id, const char *text, int64_t num);
int store_compliance_scan_facts(struct store *s, enum store_compliance_fact kind,
                                const char *key, int64_t below, const char *only_id,
                                store_compliance_fact_fn fn, void *ctx);

/* ---- states -------------------------------------------------------------------- */
struct store_compliance_state {
    const char *enrollment_id;
    int64_t policy_id;
    const char *state; /* "compliant", "noncompliant", "unknown" */
    const char *rule;  /* failing rule, NULL when compliant */
    const char *observed;
    int64_t since;         /* in this state since */
    int64_t evaluated_at;  /* last time the result changed or actions ran */
    int64_t episode_since; /* non-compliance episode start, 0 = none */
    const char *fired;     /* JSON {"action": time} of this episode, NULL = none */
};
typedef int (*store_compliance_state_fn)(void *ctx, const struct store_compliance_state *st);
/* The rows of one enrollment, or all (only_id NULL), ordered by
 * (enrollment id, policy id). */
int store_compliance_states_scan(struct store *s, const char *only_id,
                                 store_compliance_state_fn fn, void *ctx);
/* Writes st only when the stored row of (device, policy) is still old as
 * the caller read it (old NULL: only when there is no row): the one
 * conditional statement that decides, between evaluations racing on any
 * node, which one moves the state and fires the actions it records in
 * fired. STORE_CONFLICT when the row changed meanwhile (nothing written). */
int store_compliance_state_claim(struct store *s, const struct store_compliance_state *old,
                                 const struct store_compliance_state *st);
int store_compliance_state_delete(struct store *s, const char *id, int64_t policy_id);
/* Rows of the listing: state filter (NULL = every non-compliant or unknown
 * row), policy filter (0 = any), one page ordered by device, policy. */
int store_compliance_states_list(struct store *s, const char *state, int64_t policy_id,
                                 int64_t limit, int64_t offset, store_compliance_state_fn fn,
                                 void *ctx, int64_t *total);
/* Per policy: how many rows are in `state`. fn gets (ctx, policy id, count). */
typedef int (*store_compliance_count_fn)(void *ctx, int64_t policy_id, const char *state,
                                         int64_t count);
int store_compliance_state_counts(struct store *s, store_compliance_count_fn fn, void *ctx);

/* ---- history --------------------------------------------------------------------
 * kind: "transition" (old_state → new_state, rule, observed), "action"
 * (action, detail), "lost", "wipe". */
struct store_compliance_event {
    int64_t at;
    int64_t policy_id; /* 0 = none */
    char *policy_name;
    char *kind;
    char *old_state, *new_state, *rule, *observed, *action, *detail;
};
void store_compliance_events_free(struct store_compliance_event *e, size_t n);
int store_compliance_history_add(struct store *s, const char *id,
                                 const struct store_compliance_event *e);
/* Newest first, at most limit. */
int store_compliance_history_get(struct store *s, const char *id, int64_t limit,
                                 struct store_compliance_event **out, size_t *n);

/* ---- per device ------------------------------------------------------------------ */
int store_compliance_device_evaluated(struct store *s, const char *id, int64_t now);
/* Marks a device lost (message and phone may be NULL). */
int store_compliance_device_lost(struct store *s, const char *id, const char *message,
                                 const char *phone, int64_t now);
int store_compliance_device_wiped(struct store *s, const char *id, int64_t now);
struct store_compliance_device_info {
    int64_t evaluated_at, lost_at, wiped_at;
    char *lost_message, *lost_phone;
};
/* NOTFOUND when never evaluated nor marked. Free the strings. */
int store_compliance_device_info(struct store *s, const char *id,
                                 struct store_compliance_device_info *out);

#endif
