/* compliance.h: stewardctl's compliance commands (compliance.c): policies
 * list|create|show|delete, compliance status [ID], compliance evaluate,
 * devices lost and devices wipe. Registered in main.c's table. */
#ifndef STEWARD_CTL_COMPLIANCE_H
#define STEWARD_CTL_COMPLIANCE_H

#include "ctl/ctl.h"

int ctl_compliance_policies(struct ctl *c, const struct ctl_args *a);
int ctl_compliance_status(struct ctl *c, const struct ctl_args *a);
int ctl_compliance_evaluate(struct ctl *c, const struct ctl_args *a);
int ctl_devices_lost(struct ctl *c, const struct ctl_args *a);
int ctl_devices_wipe(struct ctl *c, const struct ctl_args *a);
extern const struct ctl_optspec ctl_compliance_policies_opts[];
extern const struct ctl_optspec ctl_compliance_status_opts[];
extern const struct ctl_optspec ctl_compliance_evaluate_opts[];
extern const struct ctl_optspec ctl_devices_lost_opts[];
extern const struct ctl_optspec ctl_devices_wipe_opts[];

#endif
