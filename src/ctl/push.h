/* push.h: stewardctl's push commands (push.c): `push-cert import|list|show`
 * over /api/v1/pushcerts and `push ID…` over /api/v1/push. Registered in
 * main.c's table. */
#ifndef STEWARD_CTL_PUSH_H
#define STEWARD_CTL_PUSH_H

#include "ctl/ctl.h"

int ctl_pushcert_import(struct ctl *c, const struct ctl_args *a);
int ctl_pushcert_list(struct ctl *c, const struct ctl_args *a);
int ctl_pushcert_show(struct ctl *c, const struct ctl_args *a);
int ctl_push(struct ctl *c, const struct ctl_args *a);

extern const struct ctl_optspec ctl_pushcert_import_opts[];
extern const struct ctl_optspec ctl_push_opts[];

#endif
