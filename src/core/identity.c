/* identity.c: the certificate ↔ enrollment binding rules behind identity.h.
 * One certificate serves one enrollment; an enrollment answers only to the
 * certificate it authenticated with. Re-enrollment (a fresh Authenticate)
 * rebinds, since the device proved the new certificate chains to our CA. */
#include "core/identity.h"

#include <time.h>

#include "core/certs.h"

#include <stdlib.h>
#include <string.h>

/* IDENTITY_OK, IDENTITY_REVOKED, or IDENTITY_STORE. */
static int not_revoked(struct store *s, const char *cert_fp, int *store_rc)
{
    const char *reason = NULL;
    int rc = certs_check_not_revoked(s, cert_fp, &reason, store_rc);
    if (rc == CERTS_OK)
        return IDENTITY_OK;
    return rc == CERTS_STORE ? IDENTITY_STORE : IDENTITY_REVOKED;
}

int identity_check_authenticate(struct store *s, const char *device_id, const char *cert_fp,
                                int *store_rc)
{
    int revoked = not_revoked(s, cert_fp, store_rc);
    if (revoked != IDENTITY_OK)
        return revoked;
    char *holder = NULL;
    int rc = store_enrollment_by_cert(s, cert_fp, &holder);
    if (rc == STORE_NOTFOUND)
        return IDENTITY_OK;
    if (rc != STORE_OK) {
        *store_rc = rc;
        return IDENTITY_STORE;
    }
    int same = strcmp(holder, device_id) == 0;
    free(holder);
    return same ? IDENTITY_OK : IDENTITY_IN_USE;
}

int identity_check(struct store *s, const char *binding_id, const char *cert_fp, int *store_rc)
{
    int64_t last_seen = 0;
    return identity_check_seen(s, binding_id, cert_fp, store_rc, &last_seen);
}

int identity_check_seen(struct store *s, const char *binding_id, const char *cert_fp,
                        int *store_rc, int64_t *last_seen)
{
    *last_seen = 0;
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(s, binding_id, &e);
    if (rc == STORE_NOTFOUND)
        return IDENTITY_UNKNOWN;
    if (rc != STORE_OK) {
        *store_rc = rc;
        return IDENTITY_STORE;
    }
    int result = IDENTITY_OK;
    *last_seen = e->last_seen_at;
    if (e->status == ENROLLMENT_CHECKED_OUT)
        result = IDENTITY_UNKNOWN;
    else if (!e->cert_fp || strcmp(e->cert_fp, cert_fp) != 0)
        result = IDENTITY_MISMATCH;
    store_enrollment_free(e);
    if (result == IDENTITY_MISMATCH) {
        /* First use of a renewed certificate: the binding moves to it. */
        int rc = certs_rebind_renewed(s, binding_id, cert_fp, (int64_t)time(NULL), store_rc);
        if (rc == CERTS_OK)
            result = IDENTITY_OK;
        else if (rc == CERTS_STORE)
            return IDENTITY_STORE;
    }
    if (result == IDENTITY_OK)
        result = not_revoked(s, cert_fp, store_rc);
    return result;
}

const char *identity_reason(int rc)
{
    switch (rc) {
    case IDENTITY_OK: return "ok";
    case IDENTITY_UNKNOWN: return "unknown device: not enrolled";
    case IDENTITY_MISMATCH: return "certificate is not the one bound to this enrollment";
    case IDENTITY_IN_USE: return "certificate is bound to another enrollment";
    case IDENTITY_REVOKED: return "certificate is revoked";
    default: return "identity check failed";
    }
}
