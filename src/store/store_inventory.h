/* store_inventory.h: store.h's section for the command catalog's state and the device inventory, included by
 * store.h (include store.h, not this). Implemented in store/inventory.c on sql.h, so
 * every backend runs the same code. */
#ifndef STEWARD_STORE_INVENTORY_H
#define STEWARD_STORE_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
