/* certs_expiry.c: the certificate-expiry watcher behind certs_expiry.h,
 * run by the scheduler thread (app/serve.c registers it) and by tests.
 * Everything it finds is kept in the store (cert_reenroll rows, events), so
 * any node of a shared database sees the same due list. */
#include "core/certs_expiry.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/metrics.h"

#define DAY 86400

/* An event on each enrollment this run marked due (due_at == now). */
static int note_new_due(struct store *s, int64_t now)
{
    struct store_reenroll *list = NULL;
    size_t n = 0;
    int rc = store_pki_reenroll_list(s, now, 1, 0, &list, &n);
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        if (list[i].due_at != now)
            continue;
        char detail[160];
        snprintf(detail, sizeof detail, "serial=%s not_after=%lld", list[i].serial,
                 (long long)list[i].not_after);
        rc = store_event_add(s, list[i].enrollment_id, "cert_reenroll_due", detail, now);
        log_warn("certificate due for re-enrollment", "device=\"%s\" serial=%s days_left=%lld",
                 list[i].enrollment_id, list[i].serial,
                 (long long)((list[i].not_after - now) / DAY));
    }
    store_reenroll_list_free(list, n);
    return rc;
}

int certs_expiry_check(struct store *s, int64_t now, int days, struct certs_expiry_report *r)
{
    struct certs_expiry_report rep = {0};
    int64_t before = now + (int64_t)days * DAY;
    int rc = store_pki_reenroll_mark(s, now, before, &rep.newly_due);
    if (rc == STORE_OK && rep.newly_due > 0)
        rc = note_new_due(s, now);
    if (rc == STORE_OK)
        rc = store_pki_expiry_stats(s, now, before, &rep.expiring, &rep.soonest);
    if (rc == STORE_OK)
        rc = store_pki_challenges_purge(s, now, &rep.purged);
    if (rc != STORE_OK) {
        log_warn("certificate expiry check failed", "rc=%d", rc);
        return rc;
    }
    metrics_cert_expiry(rep.expiring, days, rep.soonest ? rep.soonest - now : -1);
    if (rep.expiring > 0)
        log_warn("device certificates expiring", "count=%lld within_days=%d soonest_days=%lld",
                 (long long)rep.expiring, days, (long long)((rep.soonest - now) / DAY));
    log_info("certificate expiry check", "expiring=%lld newly_due=%lld challenges_purged=%lld",
             (long long)rep.expiring, (long long)rep.newly_due, (long long)rep.purged);
    if (r)
        *r = rep;
    return STORE_OK;
}

void certs_expiry_job(struct store *s, void *arg, int64_t now)
{
    const int *days = arg;
    certs_expiry_check(s, now, days ? *days : 30, NULL);
}

int certs_reenroll_due(struct store *s, int64_t now, int64_t limit, struct store_reenroll **out,
                       size_t *n)
{
    return store_pki_reenroll_list(s, now, 1, limit, out, n);
}

int certs_reenroll_sent(struct store *s, const char *serial, int64_t now)
{
    return store_pki_reenroll_queued(s, serial, now);
}

int certs_reenroll_state(struct store *s, const char *serial, int64_t *due_at,
                         int64_t *queued_at)
{
    return store_pki_reenroll_get(s, serial, due_at, queued_at);
}
