/* store_compliance.h: store.h's section for compliance policies, per-device
 * policy states and their history, included by store.h (include store.h,
 * not this). Implemented in store/compliance.c on sql.h, so every backend
 * runs the same code. */
#ifndef STEWARD_STORE_COMPLIANCE_H
#define STEWARD_STORE_COMPLIANCE_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
