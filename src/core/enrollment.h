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
int enrollment_checkout(struct store *s, const char *id, int64_t now);
int enrollment_bootstrap_set(struct store *s, const char *id, const uint8_t *token, size_t len,
                             int64_t now);

#endif
