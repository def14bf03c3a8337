/* identity.h: binding a device identity certificate to one enrollment.
 * Authenticate binds the certificate (unless another live enrollment holds
 * it); every later message must come with the bound certificate. Transport
 * checks (chain, signature) happen before, in mdm/auth.c; this is the
 * storage-side rule. Called by mdm/. */
#ifndef STEWARD_IDENTITY_H
#define STEWARD_IDENTITY_H

#include "store/store.h"

enum identity_rc {
    IDENTITY_OK = 0,
    IDENTITY_UNKNOWN = -10,      /* no such enrollment (or checked out) */
    IDENTITY_MISMATCH = -11,     /* enrollment bound to another certificate */
    IDENTITY_IN_USE = -12,       /* certificate bound to another enrollment */
    IDENTITY_STORE = -13,        /* storage failed; see *store_rc */
    IDENTITY_REVOKED = -14,      /* the certificate is revoked */
};

/* For Authenticate: may cert_fp be bound to device id? */
int identity_check_authenticate(struct store *s, const char *device_id, const char *cert_fp,
                                int *store_rc);
/* For every other message: does the enrollment (or, for a user channel, its
 * device channel binding_id) exist, live, with this certificate bound?
 * A user channel's first TokenUpdate passes when its device channel matches.
 * A certificate issued by renewal of the bound one takes over the binding
 * here, on its first use (core/certs.c); a revoked certificate never passes. */
int identity_check(struct store *s, const char *binding_id, const char *cert_fp, int *store_rc);
/* The same, also giving the enrollment's last_seen_at (0 when never), so the
 * caller can skip a last-seen write that would change nothing. */
int identity_check_seen(struct store *s, const char *binding_id, const char *cert_fp,
                        int *store_rc, int64_t *last_seen);

const char *identity_reason(int rc);

#endif
