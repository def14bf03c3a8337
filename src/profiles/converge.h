/* converge.h: role-based assignment that converges. Group membership
 * (static, or rules over inventory: model, OS version, supervised, user,
 * custom attributes) and profile assignments give each device a desired
 * set; compared with what steward installed (profile_states, refreshed from
 * ProfileList answers), it queues InstallProfile / RemoveProfile, never a
 * duplicate of a command still waiting, and never for a profile steward did
 * not install. A plain profile goes out as one signed command shared by
 * every device needing it; one holding secrets is encrypted per device.
 * Called by the API after changes, by the ProfileList/InstallProfile/
 * RemoveProfile result handlers, and by a scheduler job. */
#ifndef STEWARD_CONVERGE_H
#define STEWARD_CONVERGE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct config;
struct profile_signer;

/* Start-up (before serving): loads the profile-signing identity (the TLS
 * certificate and key of cfg) and registers the result handlers. 0 or -1. */
int converge_init(const struct config *cfg);
/* Uses signer (owned by the caller) instead: tests and benchmarks. */
void converge_set_signer(const struct profile_signer *signer);
void converge_shutdown(void);
/* The signing identity in use, or NULL. */
const struct profile_signer *converge_signer(void);

struct converge_stats {
    size_t devices;        /* devices looked at */
    size_t installs;       /* InstallProfile queued (device × profile) */
    size_t removes;        /* RemoveProfile queued */
    size_t not_applicable; /* supervised-only profiles held back */
    size_t commands;       /* commands stored */
    size_t waiting;        /* already waiting: nothing queued */
};

/* Converges one device (only) or every enrolled device (NULL). */
int converge_run(struct store *s, const char *only, int64_t now, struct converge_stats *st);
/* The scheduler job (arg unused). */
void converge_job(struct store *s, void *arg, int64_t now);

/* ---- the pure diff, public for the benchmark ------------------------------------ */

struct converge_profile {
    const char *identifier;
    int64_t version;
    const char *payload_uuid;
    int supervised_only, has_secrets;
};
struct converge_group {
    const char *name;
    void *rules;         /* parsed rules (converge_rules_parse), NULL = static only */
    size_t *profiles;    /* indexes into the profile array */
    size_t nprofiles;
};
/* One decision: device index, profile index (install) or state index (remove). */
enum converge_op { CONVERGE_INSTALL, CONVERGE_REMOVE, CONVERGE_NA, CONVERGE_INSTALLED,
                   CONVERGE_ERROR, CONVERGE_FORGET, CONVERGE_DONE };
struct converge_action {
    enum converge_op op;
    size_t device;
    size_t profile; /* INSTALL, NA, INSTALLED, ERROR */
    size_t state;   /* REMOVE, FORGET; and the state when one exists (else SIZE_MAX) */
};
struct converge_input {
    const struct converge_profile *profiles; /* sorted by identifier */
    size_t nprofiles;
    const struct converge_group *groups;     /* sorted by name */
    size_t ngroups;
    const struct store_pdevice *devices;     /* sorted by id (strcmp) */
    size_t ndevices;
    const struct store_pair *members;        /* (group, device), sorted by device (strcmp) */
    size_t nmembers;
    const struct store_pstate *states;       /* sorted by enrollment_id (strcmp) */
    size_t nstates;
};
/* The actions converging every device of in; *out malloc'd. 0 or -1 (OOM). */
int converge_plan(const struct converge_input *in, struct converge_action **out, size_t *n,
                  size_t *waiting);
/* Group rules from JSON text: NULL on error with err set. Free with
 * converge_rules_free. */
void *converge_rules_parse(const char *json, char *err, size_t errlen);
void converge_rules_free(void *rules);

#endif
