/* compliance_int.h: what compliance.c (the store half) reads of a compiled
 * set from compliance_rules.c (the pure half). Internal to core/compliance*. */
#ifndef STEWARD_COMPLIANCE_INT_H
#define STEWARD_COMPLIANCE_INT_H

#include "core/compliance.h"

struct compliance_policy_view {
    int64_t id;
    const char *name;
    json_t *scope;   /* borrowed */
    json_t *actions; /* borrowed */
    int64_t grace;
    int wipe_enabled;
};
const struct compliance_policy_view *compliance_set_policy(const struct compliance_set *set,
                                                           size_t i,
                                                           struct compliance_policy_view *v);

/* Bits: 1 << enum compliance_section for each list a rule reads, plus: */
#define COMPLIANCE_NEED_ROAMING (1u << 8)
#define COMPLIANCE_NEED_CERTS (1u << 9)
unsigned compliance_set_needs(const struct compliance_set *set, int64_t *cert_days_max);

/* The i-th slot over both kinds (NULL past the end), with its kind and its
 * index within that kind. */
const char *compliance_set_slot_name(const struct compliance_set *set, size_t i,
                                     enum compliance_slot_kind *kind, int *slot);

#endif
