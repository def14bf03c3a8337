/* store_profiles.h: store.h's section for configuration profiles (stored
 * versioned), device groups, profile-to-group assignments and per-device
 * convergence state, included by store.h (include store.h, not this).
 * Implemented in store/profiles.c on sql.h, so every backend runs the same
 * code. Used by core/profiles.c and api/profiles.c. */
#ifndef STEWARD_STORE_PROFILES_H
#define STEWARD_STORE_PROFILES_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* ---- profiles and versions -------------------------------------------------- */
struct store_profile {
    char *identifier;
    char *display_name;
    int64_t version;      /* this version (the current one in listings) */
    char *payload_uuid;   /* the version's top-level PayloadUUID */
    char *types;          /* PayloadTypes, comma-separated */
    char *flags;          /* validation warnings, one per line, or NULL */
    int has_secrets;
    int supervised_only;
    char *source;         /* "built" or "imported" */
    char *signer;         /* an imported profile's signer subject, or NULL */
    int64_t created_at;   /* the profile's */
    int64_t updated_at;   /* the version's */
    int64_t groups;       /* groups it is assigned to */
};
void store_profile_free(struct store_profile *p); /* accepts NULL */
void store_profiles_free(struct store_profile *p, size_t n);

/* Adds a version (1 for a new identifier, else current + 1) and makes it
 * current. p->version receives the new number. content is the unsigned plist. */
int store_profile_put(struct store *s, struct store_profile *p, const uint8_t *content,
                      size_t len, int64_t now);
/* A version (0 = current) with, when content is not NULL, its plist
 * (malloc'd). STORE_NOTFOUND when absent. */
int store_profile_get(struct store *s, const char *identifier, int64_t version,
                      struct store_profile **out, uint8_t **content, size_t *len);
/* Every profile at its current version, ordered by identifier. */
int store_profile_list(struct store *s, struct store_profile **out, size_t *n);
/* Deletes the profile, its versions and assignments (devices' states stay,
 * so convergence removes it from them). STORE_NOTFOUND when absent. */
int store_profile_delete(struct store *s, const char *identifier);

/* ---- groups --------------------------------------------------------------------- */
struct store_group {
    char *name;
    char *description;
    char *rules;       /* JSON text or NULL */
    int64_t created_at;
    int64_t members;   /* static members */
    int64_t profiles;  /* assigned profiles */
};
void store_groups_free(struct store_group *g, size_t n);
/* STORE_CONFLICT when the name exists. */
int store_group_create(struct store *s, const char *name, const char *description,
                       const char *rules, int64_t now);
/* Replaces description and rules (NULL description keeps it). NOTFOUND. */
int store_group_update(struct store *s, const char *name, const char *description,
                       const char *rules);
int store_group_delete(struct store *s, const char *name);
int store_group_get(struct store *s, const char *name, struct store_group **out);
int store_group_list(struct store *s, struct store_group **out, size_t *n);
/* Static membership; STORE_CONFLICT (FK) when the group or device is unknown. */
int store_group_member_add(struct store *s, const char *name, const char *id);
int store_group_member_remove(struct store *s, const char *name, const char *id);
/* Assignment of a profile to a group. */
int store_group_assign(struct store *s, const char *name, const char *identifier, int64_t now);
int store_group_unassign(struct store *s, const char *name, const char *identifier);

/* A custom attribute of a device (for group rules); NULL value deletes it. */
int store_device_attribute_set(struct store *s, const char *id, const char *name,
                               const char *value);

/* ---- bulk reads for convergence ------------------------------------------------
 * Text pairs (a, b) malloc'd: (group, enrollment) static members,
 * (group, identifier) assignments, (group, rules) groups with rules. */
struct store_pair {
    char *a, *b;
};
void store_pairs_free(struct store_pair *p, size_t n);
int store_profiles_members(struct store *s, struct store_pair **out, size_t *n);
int store_profiles_assignments(struct store *s, struct store_pair **out, size_t *n);
int store_profiles_group_rules(struct store *s, struct store_pair **out, size_t *n);

/* The enrolled device channels (only = one of them, or NULL for all) with
 * what group rules look at. */
struct store_pdevice {
    char *id;
    char *product_name, *model, *model_name, *user;
    int64_t os_num;   /* -1 unknown */
    int supervised;   /* -1 unknown */
    char *attrs;      /* "name=value\n" lines, or NULL */
};
void store_pdevices_free(struct store_pdevice *d, size_t n);
int store_profiles_devices(struct store *s, const char *only, struct store_pdevice **out,
                           size_t *n);

/* One device's state for one profile. cmd_active: 1 while its last command
 * waits, 0 answered, -1 no command; cmd_status the answer. */
struct store_pstate {
    char *enrollment_id;
    char *identifier;
    int64_t desired_version;   /* 0 = none */
    char *installed_uuid;      /* NULL = not installed */
    int64_t installed_version; /* 0 = unknown */
    char *state;   /* installing, installed, removing, not_applicable, error */
    char *action;  /* install, remove, or NULL */
    char *command_uuid;
    char *detail;
    int64_t updated_at;
    int cmd_active;
    char *cmd_status;
};
void store_pstates_free(struct store_pstate *p, size_t n);
/* States of one device (only), of one profile (identifier), or all (both
 * NULL), ordered by enrollment, identifier. */
int store_profiles_states(struct store *s, const char *only, const char *identifier,
                          struct store_pstate **out, size_t *n);
/* Upserts the row named by enrollment_id and identifier (cmd_* ignored). */
int store_profiles_state_put(struct store *s, const struct store_pstate *p, int64_t now);
int store_profiles_state_delete(struct store *s, const char *id, const char *identifier);
/* InstallProfile acknowledged: the state's desired version is installed. */
int store_profiles_ack_install(struct store *s, const char *id, const char *command_uuid,
                               int64_t now);
/* RemoveProfile acknowledged: the state row goes. */
int store_profiles_ack_remove(struct store *s, const char *id, const char *command_uuid);
/* After a full ProfileList: each state's installed_uuid becomes what the
 * device reported (inv_profiles), and steward's profiles it reports without
 * a state row get one. */
int store_profiles_sync_installed(struct store *s, const char *id, int64_t now);
/* The DER of the device's identity certificate. STORE_NOTFOUND when none. */
int store_profiles_identity(struct store *s, const char *id, uint8_t **der, size_t *len);

#endif
