/* store_ops.h: store.h's section for admin users, roles, the audit log and
 * webhooks, included by store.h (include store.h, not this). Implemented in
 * store/ops.c on sql.h, so every backend runs the same code. */
#ifndef STEWARD_STORE_OPS_H
#define STEWARD_STORE_OPS_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
