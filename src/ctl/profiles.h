/* profiles.h: stewardctl's configuration profile and group commands
 * (profiles.c), registered in main.c's table. */
#ifndef STEWARD_CTL_PROFILES_H
#define STEWARD_CTL_PROFILES_H

#include "ctl/ctl.h"

int ctl_profiles_build(struct ctl *c, const struct ctl_args *a);
int ctl_profiles_import(struct ctl *c, const struct ctl_args *a);
int ctl_profiles_list(struct ctl *c, const struct ctl_args *a);
int ctl_profiles_show(struct ctl *c, const struct ctl_args *a);
int ctl_profiles_download(struct ctl *c, const struct ctl_args *a);
int ctl_profiles_delete(struct ctl *c, const struct ctl_args *a);
int ctl_profiles_status(struct ctl *c, const struct ctl_args *a);
extern const struct ctl_optspec ctl_profiles_download_opts[];
int ctl_groups_create(struct ctl *c, const struct ctl_args *a);
int ctl_groups_list(struct ctl *c, const struct ctl_args *a);
int ctl_groups_show(struct ctl *c, const struct ctl_args *a);
int ctl_groups_add(struct ctl *c, const struct ctl_args *a);
int ctl_groups_remove(struct ctl *c, const struct ctl_args *a);
int ctl_groups_assign(struct ctl *c, const struct ctl_args *a);
int ctl_groups_unassign(struct ctl *c, const struct ctl_args *a);
extern const struct ctl_optspec ctl_groups_create_opts[];

#endif
