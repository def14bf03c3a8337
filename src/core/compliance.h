/* compliance.h: compliance policies over the inventory. A policy is a rule
 * tree (leaf rules over a device's inventory combined with all/any), a
 * scope, a grace period and actions. The engine compiles the enabled
 * policies into a set, loads the facts the set needs for one device or the
 * whole fleet (a few indexed scans, not a query per device), evaluates every
 * device in scope to compliant, non-compliant (with the failing rule and
 * the observed value) or unknown (data missing or older than max_age), and
 * records transitions and actions (each fired once per non-compliance
 * episode, even when evaluations race: see apply() in compliance.c). Also lost mode and the confirmed wipe. Called by api/compliance.c,
 * core/inventory.c (after an inventory answer) and app/serve.c (schedule). */
#ifndef STEWARD_COMPLIANCE_H
#define STEWARD_COMPLIANCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

enum compliance_state { COMPLIANCE_COMPLIANT, COMPLIANCE_NONCOMPLIANT, COMPLIANCE_UNKNOWN };
const char *compliance_state_name(enum compliance_state st);
/* -1 when not a state name. */
int compliance_state_from_name(const char *name);

/* Start-up settings (before threads start; read-only afterwards). max_age:
 * seconds after which inventory data counts as stale (0 = never). */
void compliance_configure(int64_t max_age);

/* Group scopes: the lead wires the groups area here. fn fills the member
 * enrollment ids of a group (malloc'd array of malloc'd strings). Without
 * a resolver a group-scoped policy covers no device (logged). */
typedef int (*compliance_group_fn)(struct store *s, const char *group, char ***ids, size_t *n);
void compliance_set_group_resolver(compliance_group_fn fn);

/* Numeric dotted version compare ("17.10" > "17.9", "17" == "17.0.0"):
 * 0 with *cmp <0/0/>0, or -1 when either is not a version. */
int compliance_version_cmp(const char *a, const char *b, int *cmp);

/* ---- policies: validation --------------------------------------------------- */

/* Checks a policy as the API receives it (name, description, enabled,
 * rules, scope, grace_seconds, actions, wipe_enabled) and fills p (strings
 * malloc'd: store_compliance_policy_clear). partial: only the members present
 * replace p's (an update). 0, or -1 with a reason in err. */
int compliance_policy_from_json(json_t *j, int partial, struct store_compliance_policy *p,
                                char *err, size_t errlen);
/* The API view of a policy (rules, scope and actions as JSON). */
json_t *compliance_policy_json(const struct store_compliance_policy *p);

/* ---- the engine (pure, for tests and the loaders) --------------------------- */

struct compliance_set;

/* Inventory sections whose age matters, beside DeviceInformation/SecurityInfo. */
enum compliance_section { CSEC_PROFILES, CSEC_CERTIFICATES, CSEC_APPS, CSEC_RESTRICTIONS, CSEC_N };

/* What the rules read about one device. has[] and restriction[] are indexed
 * by the set's slots (compliance_set_slot). */
struct compliance_facts {
    char *id;
    int64_t last_seen;
    char *os_version;
    int supervised, passcode_present, passcode_compliant, encryption_caps; /* -1 unknown */
    int64_t device_at, security_at;   /* 0 = never answered */
    int64_t reported[CSEC_N];         /* when each list was last answered, 0 = never */
    int64_t cert_min;                 /* earliest certificate expiry below the horizon, 0 none */
    int is_roaming, data_roaming;     /* -1 unknown */
    int64_t roaming_at;
    unsigned char *has;               /* per item slot: 0 absent, 1 installed, 2 managed profile */
    char **restriction;               /* per restriction slot: global value or NULL */
};

enum compliance_slot_kind { CSLOT_APP, CSLOT_PROFILE, CSLOT_RESTRICTION };

/* Compiles policies (each one's rules and scope parsed); a policy that does
 * not parse is skipped with a log line. NULL when out of memory. */
struct compliance_set *compliance_set_new(const struct store_compliance_policy *p, size_t n);
void compliance_set_free(struct compliance_set *set);
size_t compliance_set_count(const struct compliance_set *set);
/* The slot of an identifier (app/profile) or restriction name, -1 when no
 * rule names it. */
int compliance_set_slot(const struct compliance_set *set, enum compliance_slot_kind kind,
                        const char *name);
/* Facts ready for the set: has/restriction arrays allocated, everything
 * unknown. NULL when out of memory. */
int compliance_facts_init(const struct compliance_set *set, struct compliance_facts *f);
void compliance_facts_clear(const struct compliance_set *set, struct compliance_facts *f);

struct compliance_result {
    enum compliance_state state;
    char rule[128];     /* the failing (or unknown) rule, "" when compliant */
    char observed[256]; /* what the device showed */
};
/* Evaluates policy i of the set over f at now. */
void compliance_eval(const struct compliance_set *set, size_t i, const struct compliance_facts *f,
                     int64_t now, struct compliance_result *out);

/* ---- evaluation with the store ------------------------------------------------ */

struct compliance_run {
    size_t devices, policies, evaluated; /* evaluated: (device, policy) pairs in scope */
    size_t noncompliant, unknown;        /* pairs in those states after the run */
    size_t transitions, actions;
    size_t skipped; /* pairs another evaluation changed meanwhile (left to it) */
};
/* Every enrolled device against every enabled policy; own transaction for
 * the writes. */
int compliance_evaluate_fleet(struct store *s, int64_t now, struct compliance_run *run);
/* One device, in the caller's transaction when there is one (savepoint). */
int compliance_evaluate_device(struct store *s, const char *id, int64_t now,
                               struct compliance_run *run);
/* The hook core/inventory.c calls after an inventory answer was stored:
 * evaluates the device when policies exist; failures are logged only. */
void compliance_on_inventory(struct store *s, const char *id, const char *request_type,
                             int64_t now);
/* The scheduler job (arg unused). */
void compliance_job(struct store *s, void *arg, int64_t now);

/* ---- reading (for the API) ----------------------------------------------------- */

/* A state row as the API shows it. */
json_t *compliance_state_json(const struct store_compliance_state *st);
/* GET /api/v1/devices/{id}/compliance: overall state, each enabled policy
 * in scope (no row = compliant), lost/wipe marks and the newest
 * history_limit events. NOTFOUND for an unknown device. */
int compliance_device_report(struct store *s, const char *id, int64_t history_limit,
                             json_t **out);

/* ---- notification ---------------------------------------------------------------- */
struct compliance_notice {
    const char *device;
    const char *policy;
    int64_t policy_id;
    const char *state;
    const char *rule;
    const char *observed;
    const char *event; /* "noncompliant", "lost", "wipe" */
};
/* The one place notifications leave: a log line, and a webhook event
 * "compliance.<event>" when compliance_set_events gave an event sink. */
void compliance_notify(const struct compliance_notice *n);
struct events;
/* At start-up, before any thread evaluates (NULL: log only). */
void compliance_set_events(struct events *ev);

/* ---- lost mode and wipe ------------------------------------------------------------- */
struct compliance_lost_result {
    size_t profiles_removed, apps_removed; /* commands queued */
    char lock_uuid[128];
};
/* Marks the device lost: DeviceLock with message and phone (replacing a
 * DeviceLock still waiting; lock_uuid "" when one was already delivered),
 * RemoveProfile for each managed profile (not the MDM enrollment profile
 * itself) and RemoveApplication for each managed app in its inventory.
 * Audited with who (the operator; may be NULL) in the compliance history
 * and as the device's security_action event. Own transaction. NOTFOUND for
 * an unknown device, CONFLICT when it is not enrolled. */
int compliance_device_lost(struct store *s, const char *id, const char *message,
                           const char *phone, const char *who, int64_t now,
                           struct compliance_lost_result *r);
/* Queues EraseDevice (the caller checked the confirmation), audited as
 * lost mode is. QUEUE_ALREADY_PENDING (nothing done) when an EraseDevice
 * already waits for the device. */
int compliance_device_wipe(struct store *s, const char *id, const char *who, int64_t now,
                           char uuid[128]);

#endif
