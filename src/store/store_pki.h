/* store_pki.h: store.h's section for CA generations and certificate re-enrollment, included by
 * store.h (include store.h, not this). Implemented in store/pki.c on sql.h, so
 * every backend runs the same code. Used by core/certs_expiry.c. */
#ifndef STEWARD_STORE_PKI_H
#define STEWARD_STORE_PKI_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Deletes SCEP challenges that expired before now or were used. *deleted
 * (may be NULL) gets how many. STORE_OK or an error. */
int store_pki_challenges_purge(struct store *s, int64_t now, int64_t *deleted);

/* Issued certificates that serve an enrollment and expire in (now, before),
 * with no renewal issued for them yet: recorded as due for re-enrollment
 * (once each; due_at = now). *added (may be NULL) counts new rows. */
int store_pki_reenroll_mark(struct store *s, int64_t now, int64_t before, int64_t *added);

/* Issued certificates expiring in (now, before): how many, and the earliest
 * not_after of any issued, unexpired certificate (0 when none). */
int store_pki_expiry_stats(struct store *s, int64_t now, int64_t before, int64_t *count,
                           int64_t *soonest);

struct store_reenroll {
    char *serial;
    char *enrollment_id;
    int64_t not_after;
    int64_t due_at;
    int64_t queued_at; /* 0 until a re-enrollment was sent */
};
void store_reenroll_list_free(struct store_reenroll *list, size_t n);

/* Re-enrollments due, soonest expiry first, of certificates still issued and
 * unexpired at now; only those not yet queued when unqueued_only. At most
 * limit rows (limit <= 0: 1000). *out is a malloc'd array of *n. */
int store_pki_reenroll_list(struct store *s, int64_t now, int unqueued_only, int64_t limit,
                            struct store_reenroll **out, size_t *n);
/* One certificate's state: STORE_OK with due_at and queued_at set, or NOTFOUND. */
int store_pki_reenroll_get(struct store *s, const char *serial, int64_t *due_at,
                           int64_t *queued_at);
/* Marks a due re-enrollment as sent. NOTFOUND when the serial is not due. */
int store_pki_reenroll_queued(struct store *s, const char *serial, int64_t now);

#endif
