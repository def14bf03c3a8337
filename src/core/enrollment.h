/* enrollment.h: the check-in services: Authenticate, TokenUpdate, CheckOut
 * and bootstrap tokens, each one storage transaction plus an event row.
 * The mdm/ front end decodes messages into struct store_enrollment and checks
 * the device's identity first (core/identity.h). Called by mdm/checkin.c. */
#ifndef STEWARD_ENROLLMENT_H
#define STEWARD_ENROLLMENT_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

int enrollment_authenticate(struct store *s, const struct store_enrollment *e, int64_t now);
/* *first = 1 when this TokenUpdate completed the enrollment. */
int enrollment_token_update(struct store *s, const struct store_enrollment *e, int64_t now,
                            int *first);
/* The same, and when it completes the enrollment, on_first(s, id, now, arg)
 * runs inside the same transaction, so nothing else (a scheduled job on any
 * node) sees the device enrolled without what on_first adds. on_first is
 * best effort: its failure must leave its own work undone (a savepoint) and
 * does not fail the TokenUpdate. */
typedef int (*enrollment_first_fn)(struct store *s, const char *id, int64_t now, void *arg);
int enrollment_token_update_then(struct store *s, const struct store_enrollment *e, int64_t now,
                                 int *first, enrollment_first_fn on_first, void *arg);
int enrollment_checkout(struct store *s, const char *id, int64_t now);
int enrollment_bootstrap_set(struct store *s, const char *id, const uint8_t *token, size_t len,
                             int64_t now);

#endif
