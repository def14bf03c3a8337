/* enrollment.c: check-in services behind enrollment.h. Each runs in one
 * storage transaction with an event row, so an enrollment's state and its
 * history never disagree. */
#include "core/enrollment.h"

#include "core/certs.h"


static int finish(struct store *s, int rc)
{
    if (rc == STORE_OK)
        return store_commit(s);
    int rb = store_rollback(s);
    (void)rb; /* the original error is the one worth reporting */
    return rc;
}

int enrollment_authenticate(struct store *s, const struct store_enrollment *e, int64_t now)
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = store_enrollment_authenticate(s, e, now);
    if (rc == STORE_OK)
        rc = store_event_add(s, e->id, "Authenticate", e->os_version, now);
    if (rc == STORE_OK && e->cert_fp) {
        /* Our certificate record learns which device it serves. */
        int store_rc = STORE_OK;
        if (certs_note_binding(s, e->cert_fp, e->id, &store_rc) != CERTS_OK)
            rc = store_rc != STORE_OK ? store_rc : STORE_ERR;
    }
    return finish(s, rc);
}

int enrollment_token_update_then(struct store *s, const struct store_enrollment *e, int64_t now,
                                 int *first, enrollment_first_fn on_first, void *arg)
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = store_enrollment_token_update(s, e, now, first);
    if (rc == STORE_OK)
        rc = store_event_add(s, e->id, *first ? "Enrolled" : "TokenUpdate", NULL, now);
    if (rc == STORE_OK && *first && on_first)
        (void)on_first(s, e->id, now, arg); /* best effort, logged by on_first */
    return finish(s, rc);
}

int enrollment_token_update(struct store *s, const struct store_enrollment *e, int64_t now,
                            int *first)
{
    return enrollment_token_update_then(s, e, now, first, NULL, NULL);
}

int enrollment_checkout(struct store *s, const char *id, int64_t now)
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = store_enrollment_checkout(s, id, now);
    if (rc == STORE_OK)
        rc = store_event_add(s, id, "CheckOut", NULL, now);
    return finish(s, rc);
}

int enrollment_bootstrap_set(struct store *s, const char *id, const uint8_t *token, size_t len,
                             int64_t now)
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = store_bootstrap_token_set(s, id, token, len);
    if (rc == STORE_OK)
        rc = store_event_add(s, id, token ? "SetBootstrapToken" : "RemoveBootstrapToken", NULL, now);
    return finish(s, rc);
}
