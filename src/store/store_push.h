/* store_push.h: store.h's section for APNs push certificates and per-enrollment push state, included by
 * store.h (include store.h, not this). Implemented in store/push.c on sql.h, so
 * every backend runs the same code. */
#ifndef STEWARD_STORE_PUSH_H
#define STEWARD_STORE_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
