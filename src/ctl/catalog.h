/* catalog.h: stewardctl's typed-command and app commands (catalog.c):
 * device lock/wipe/clear-passcode/query/settings, apps install/remove/
 * upload/list/codes, commands show/retry and cancel everywhere. Each builds
 * a typed POST /api/v1/commands (docs/commands.md) or an apps route, so the
 * server's refusals reach the operator as they are. Registered in main.c. */
#ifndef STEWARD_CTL_CATALOG_H
#define STEWARD_CTL_CATALOG_H

#include "ctl/ctl.h"

int ctl_device_lock(struct ctl *c, const struct ctl_args *a);
int ctl_device_wipe(struct ctl *c, const struct ctl_args *a);
int ctl_device_clear_passcode(struct ctl *c, const struct ctl_args *a);
int ctl_device_query(struct ctl *c, const struct ctl_args *a);
int ctl_device_settings(struct ctl *c, const struct ctl_args *a);
int ctl_apps_install(struct ctl *c, const struct ctl_args *a);
int ctl_apps_remove(struct ctl *c, const struct ctl_args *a);
int ctl_apps_upload(struct ctl *c, const struct ctl_args *a);
int ctl_apps_list(struct ctl *c, const struct ctl_args *a);
int ctl_apps_codes(struct ctl *c, const struct ctl_args *a);
int ctl_commands_show(struct ctl *c, const struct ctl_args *a);
int ctl_commands_retry(struct ctl *c, const struct ctl_args *a);
/* commands cancel UUID: everywhere (commands.c keeps ID UUID: one device). */
int ctl_commands_cancel_all(struct ctl *c, const char *uuid);

extern const struct ctl_optspec ctl_device_lock_opts[];
extern const struct ctl_optspec ctl_device_wipe_opts[];
extern const struct ctl_optspec ctl_device_settings_opts[];
extern const struct ctl_optspec ctl_apps_install_opts[];
extern const struct ctl_optspec ctl_apps_upload_opts[];
extern const struct ctl_optspec ctl_apps_codes_opts[];
extern const struct ctl_optspec ctl_ttl_opts[];

/* The request body of a typed command for one device (new reference). */
json_t *ctl_typed_body(const char *device, const char *request_type);

#endif
