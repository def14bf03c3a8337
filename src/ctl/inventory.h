/* inventory.h: stewardctl's inventory commands (inventory.c): the --filter
 * flags of `devices list` (inventory filters as query parameters) and
 * `devices inventory ID SECTION` (a table per section). Registered in
 * main.c's table; devices.c calls ctl_inventory_filters. */
#ifndef STEWARD_CTL_INVENTORY_H
#define STEWARD_CTL_INVENTORY_H

#include "ctl/ctl.h"

/* Appends every --filter KEY=VALUE of a to path as a query parameter.
 * Returns CTL_EXIT_OK, or CTL_EXIT_USAGE after printing why (unknown key,
 * no '='), or CTL_EXIT_FAIL when out of memory. */
int ctl_inventory_filters(struct ctl *c, const struct ctl_args *a, struct buf *path);

int ctl_devices_inventory(struct ctl *c, const struct ctl_args *a);
extern const struct ctl_optspec ctl_devices_inventory_opts[];

/* Renders one section's answer (exposed for the unit test). */
int ctl_inventory_render(const char *section, const json_t *answer, struct buf *out);

#endif
