/* certs.h: stewardctl's certificate and SCEP commands (certs.c): `certs
 * list|show|revoke|expiring|approve|reject` and `scep challenge`, over the
 * /api/v1/certs and /api/v1/scep routes. Registered in main.c's table. */
#ifndef STEWARD_CTL_CERTS_H
#define STEWARD_CTL_CERTS_H

#include "ctl/ctl.h"

int ctl_certs_list(struct ctl *c, const struct ctl_args *a);
int ctl_certs_show(struct ctl *c, const struct ctl_args *a);
int ctl_certs_revoke(struct ctl *c, const struct ctl_args *a);
int ctl_certs_expiring(struct ctl *c, const struct ctl_args *a);
int ctl_certs_approve(struct ctl *c, const struct ctl_args *a);
int ctl_certs_reject(struct ctl *c, const struct ctl_args *a);
int ctl_scep_challenge(struct ctl *c, const struct ctl_args *a);

extern const struct ctl_optspec ctl_certs_list_opts[];
extern const struct ctl_optspec ctl_certs_revoke_opts[];
extern const struct ctl_optspec ctl_certs_expiring_opts[];
extern const struct ctl_optspec ctl_scep_challenge_opts[];

#endif
