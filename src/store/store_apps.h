/* store_apps.h: store.h's section for command TTLs, managed apps and VPP
 * codes, included by store.h (include store.h, not this). Implemented in
 * store/apps.c on sql.h, so every backend runs the same code. */
#ifndef STEWARD_STORE_APPS_H
#define STEWARD_STORE_APPS_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
