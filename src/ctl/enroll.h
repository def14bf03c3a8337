/* enroll.h: stewardctl's enrollment commands (enroll.c): `enroll profile`
 * (the signed enrollment profile, for Apple Configurator and USB flows) and
 * `enroll list` (enrollment records) and `devices unenroll`, over
 * /api/v1/enroll/profile, /api/v1/enrollments and /api/v1/devices/{id}/unenroll. Registered in main.c's table. */
#ifndef STEWARD_CTL_ENROLL_H
#define STEWARD_CTL_ENROLL_H

#include "ctl/ctl.h"

int ctl_enroll_profile(struct ctl *c, const struct ctl_args *a);
int ctl_enroll_list(struct ctl *c, const struct ctl_args *a);
int ctl_devices_unenroll(struct ctl *c, const struct ctl_args *a);

extern const struct ctl_optspec ctl_enroll_profile_opts[];
extern const struct ctl_optspec ctl_enroll_list_opts[];

#endif
