/* store_enroll.h: store.h's section for enrollment users, portal sessions and OTA enrollment records, included by
 * store.h (include store.h, not this). Implemented in store/enroll.c on sql.h, so
 * every backend runs the same code. */
#ifndef STEWARD_STORE_ENROLL_H
#define STEWARD_STORE_ENROLL_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
