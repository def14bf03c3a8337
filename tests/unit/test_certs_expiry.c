/* test_certs_expiry.c: the certificate-expiry watcher (core/certs_expiry.c)
 * on a real SQLite store: which certificates count as expiring, which
 * enrollments become due for re-enrollment (once, with an event), the
 * queued flag, purging of spent challenges, the metrics it sets; and the
 * periodic-job scheduler (core/scheduler.c), inline and on its thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/certs_expiry.h"
#include "core/scheduler.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/metrics.h"

#define DAY 86400
#define NOW 1900000000

struct fixture {
    char dir[64];
    char dsn[128];
    struct store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/steward-expiry.XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    snprintf(f->dsn, sizeof f->dsn, "sqlite:%s/t.db", f->dir);
    char *err = NULL;
    if (store_open(f->dsn, &f->s, &err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void add_cert(struct fixture *f, const char *serial, const char *status, int64_t not_after,
                     const char *enrollment, const char *renewed_from)
{
    char fp[80];
    snprintf(fp, sizeof fp, "fp-%s", serial);
    struct store_cert c = {
        .serial_hex = (char *)serial, .subject = "CN=x", .fingerprint = fp,
        .not_before = NOW - 300 * DAY, .not_after = not_after, .status = (char *)status,
        .enrollment_id = (char *)enrollment, .renewed_from = (char *)renewed_from,
        .created_at = NOW - 300 * DAY,
    };
    assert_int_equal(store_cert_add(f->s, &c), STORE_OK);
}

static void test_expiry_check(void **state)
{
    struct fixture *f = *state;
    add_cert(f, "01", "issued", NOW + 5 * DAY, "DEV-A", NULL);   /* due */
    add_cert(f, "02", "issued", NOW + 60 * DAY, "DEV-B", NULL);  /* not yet */
    add_cert(f, "03", "issued", NOW - DAY, "DEV-C", NULL);       /* already expired */
    add_cert(f, "04", "revoked", NOW + 2 * DAY, "DEV-D", NULL);  /* revoked */
    add_cert(f, "05", "issued", NOW + 10 * DAY, NULL, NULL);     /* serves no device yet */
    add_cert(f, "06", "issued", NOW + 3 * DAY, "DEV-E", NULL);   /* renewed below */
    add_cert(f, "07", "issued", NOW + 365 * DAY, "DEV-E", "fp-06");
    assert_int_equal(store_challenge_add(f->s, "h-expired", "t", NOW - 7200, NOW - 3600), STORE_OK);
    assert_int_equal(store_challenge_add(f->s, "h-used", "t", NOW - 60, NOW + 3600), STORE_OK);
    assert_int_equal(store_challenge_consume(f->s, "h-used", NOW - 30), STORE_OK);
    assert_int_equal(store_challenge_add(f->s, "h-live", "t", NOW - 60, NOW + 3600), STORE_OK);

    struct certs_expiry_report r;
    assert_int_equal(certs_expiry_check(f->s, NOW, 30, &r), STORE_OK);
    assert_int_equal(r.expiring, 3); /* 01, 05, 06 */
    assert_int_equal(r.soonest, NOW + 3 * DAY);
    assert_int_equal(r.newly_due, 1); /* 01 only */
    assert_int_equal(r.purged, 2);
    /* the live challenge survives, the spent ones are gone */
    assert_int_equal(store_challenge_consume(f->s, "h-live", NOW), STORE_OK);
    assert_int_equal(store_challenge_consume(f->s, "h-expired", NOW), STORE_NOTFOUND);

    struct store_reenroll *due = NULL;
    size_t n = 0;
    assert_int_equal(certs_reenroll_due(f->s, NOW, 0, &due, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].serial, "01");
    assert_string_equal(due[0].enrollment_id, "DEV-A");
    assert_int_equal(due[0].not_after, NOW + 5 * DAY);
    store_reenroll_list_free(due, n);

    /* A second run marks nothing new. */
    assert_int_equal(certs_expiry_check(f->s, NOW + 60, 30, &r), STORE_OK);
    assert_int_equal(r.newly_due, 0);
    assert_int_equal(r.purged, 1); /* h-live was used above */

    /* The enrollment engineer sends the profile: no longer listed as due. */
    int64_t due_at = 0, queued_at = 0;
    assert_int_equal(certs_reenroll_state(f->s, "01", &due_at, &queued_at), STORE_OK);
    assert_int_equal(due_at, NOW);
    assert_int_equal(queued_at, 0);
    assert_int_equal(certs_reenroll_sent(f->s, "01", NOW + 100), STORE_OK);
    assert_int_equal(certs_reenroll_state(f->s, "01", &due_at, &queued_at), STORE_OK);
    assert_int_equal(queued_at, NOW + 100);
    assert_int_equal(certs_reenroll_due(f->s, NOW, 0, &due, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(due);
    assert_int_equal(certs_reenroll_sent(f->s, "02", NOW), STORE_NOTFOUND);
    assert_int_equal(certs_reenroll_state(f->s, "02", &due_at, &queued_at), STORE_NOTFOUND);

    /* A wider window catches 02 too. */
    assert_int_equal(certs_expiry_check(f->s, NOW, 90, &r), STORE_OK);
    assert_int_equal(r.newly_due, 1);
    assert_int_equal(r.expiring, 4);

    /* The metric shows the last run. */
    struct buf out = {0};
    assert_int_equal(metrics_render(&out, -1), 0);
    assert_non_null(strstr(out.data, "steward_certs_expiring{within=\"90d\"} 4\n"));
    assert_non_null(strstr(out.data, "steward_cert_soonest_expiry_days 3.00\n"));
    buf_free(&out);
}

static atomic_int runs;
static void count_job(struct store *s, void *arg, int64_t now)
{
    (void)now;
    assert_non_null(s);
    assert_ptr_equal(arg, &runs);
    atomic_fetch_add(&runs, 1);
}

static void test_scheduler(void **state)
{
    struct fixture *f = *state;
    struct sched *sc = sched_new(f->dsn);
    assert_non_null(sc);
    assert_int_equal(sched_add(sc, "count", 0, 0, count_job, &runs), -1); /* bad interval */
    assert_int_equal(sched_add(sc, "count", 10, 0, count_job, &runs), 0);
    /* Inline: due at once, then every 10 s. */
    atomic_store(&runs, 0);
    assert_int_equal(sched_run_due(sc, f->s, 1000), 1);
    assert_int_equal(sched_run_due(sc, f->s, 1005), 0);
    assert_int_equal(sched_run_due(sc, f->s, 1010), 1);
    assert_int_equal(atomic_load(&runs), 2);
    sched_free(sc);

    /* On its thread, with its own connection: runs at once, stops cleanly. */
    sc = sched_new(f->dsn);
    assert_int_equal(sched_add(sc, "count", 3600, 0, count_job, &runs), 0);
    atomic_store(&runs, 0);
    assert_int_equal(sched_start(sc), 0);
    assert_int_equal(sched_add(sc, "late", 10, 0, count_job, &runs), -1); /* after start */
    for (int i = 0; i < 100 && atomic_load(&runs) == 0; i++)
        usleep(20000);
    sched_free(sc);
    assert_int_equal(atomic_load(&runs), 1);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expiry_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
