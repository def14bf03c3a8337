/* operators.h: stewardctl's operator commands (operators.c): `whoami`,
 * `users list|add|set|delete`, `keys list|create|revoke`, `audit
 * list|export` and `webhooks list|add|set|delete|deliveries|test`, over
 * /api/v1/session, /users, /keys, /audit and /webhooks. Registered in
 * main.c's table. */
#ifndef STEWARD_CTL_OPERATORS_H
#define STEWARD_CTL_OPERATORS_H

#include "ctl/ctl.h"

int ctl_whoami(struct ctl *c, const struct ctl_args *a);
int ctl_users_list(struct ctl *c, const struct ctl_args *a);
int ctl_users_add(struct ctl *c, const struct ctl_args *a);
int ctl_users_set(struct ctl *c, const struct ctl_args *a);
int ctl_users_delete(struct ctl *c, const struct ctl_args *a);
int ctl_keys_list(struct ctl *c, const struct ctl_args *a);
int ctl_keys_create(struct ctl *c, const struct ctl_args *a);
int ctl_keys_revoke(struct ctl *c, const struct ctl_args *a);
int ctl_audit_list(struct ctl *c, const struct ctl_args *a);
int ctl_audit_export(struct ctl *c, const struct ctl_args *a);
int ctl_webhooks_list(struct ctl *c, const struct ctl_args *a);
int ctl_webhooks_add(struct ctl *c, const struct ctl_args *a);
int ctl_webhooks_set(struct ctl *c, const struct ctl_args *a);
int ctl_webhooks_delete(struct ctl *c, const struct ctl_args *a);
int ctl_webhooks_deliveries(struct ctl *c, const struct ctl_args *a);
int ctl_webhooks_test(struct ctl *c, const struct ctl_args *a);

extern const struct ctl_optspec ctl_users_opts[];
extern const struct ctl_optspec ctl_keys_opts[];
extern const struct ctl_optspec ctl_audit_opts[];
extern const struct ctl_optspec ctl_webhooks_opts[];
extern const struct ctl_optspec ctl_deliveries_opts[];

#endif
