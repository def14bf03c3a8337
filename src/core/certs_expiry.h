/* certs_expiry.h: the certificate-expiry watcher. A scheduled job (see
 * core/scheduler.h) that counts device certificates expiring soon (metric and
 * warning), records enrollments due for re-enrollment (an event per
 * enrollment, a flag in the certificate API) and deletes spent SCEP
 * challenges. The enrollment area sends the new enrollment profile to what
 * certs_reenroll_due lists and then calls certs_reenroll_sent. */
#ifndef STEWARD_CERTS_EXPIRY_H
#define STEWARD_CERTS_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct certs_expiry_report {
    int64_t expiring;   /* issued certificates expiring within the window */
    int64_t soonest;    /* earliest not_after of an issued, unexpired certificate; 0 = none */
    int64_t newly_due;  /* enrollments marked due by this run */
    int64_t purged;     /* challenges deleted */
};

/* One run at now with a window of days: marks due enrollments (event
 * "cert_reenroll_due" for each new one), purges challenges, logs a warning
 * when any certificate expires within the window, and updates the
 * steward_certs_expiring metrics. 0, or a negative store_rc. */
int certs_expiry_check(struct store *s, int64_t now, int days, struct certs_expiry_report *r);

/* The scheduler job: arg points at an int, the window in days. */
void certs_expiry_job(struct store *s, void *arg, int64_t now);

/* Enrollments due for re-enrollment whose new profile was not sent yet,
 * soonest expiry first (at most limit; <= 0: 1000). Free the array with
 * store_reenroll_list_free. STORE_OK or an error. */
int certs_reenroll_due(struct store *s, int64_t now, int64_t limit, struct store_reenroll **out,
                       size_t *n);
/* The re-enrollment for certificate serial was sent. NOTFOUND when it was
 * not due. */
int certs_reenroll_sent(struct store *s, const char *serial, int64_t now);

/* One certificate's re-enrollment state for the API: STORE_OK with
 * due_at (and queued_at, 0 until sent), or STORE_NOTFOUND when not due. */
int certs_reenroll_state(struct store *s, const char *serial, int64_t *due_at,
                         int64_t *queued_at);

#endif
