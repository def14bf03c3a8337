/* store_profiles.h: store.h's section for configuration profiles (stored
 * versioned), device groups, profile-to-group assignments and per-device
 * convergence state, included by store.h (include store.h, not this).
 * Implemented in store/profiles.c on sql.h, so every backend runs the same
 * code. */
#ifndef STEWARD_STORE_PROFILES_H
#define STEWARD_STORE_PROFILES_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
