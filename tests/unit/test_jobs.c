/* test_jobs.c: store_jobs.h, the job rows several nodes share: add with
 * de-duplication, claim in run order under a lease, complete and fail only
 * by the holder, a dead holder's job reclaimed once its lease ends, and four
 * connections claiming at once never getting the same job. On SQLite, or on
 * PostgreSQL when STEWARD_TEST_DSN says so (store_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store_fixture.h"
#include "util/log.h"


static int setup(void **state)
{
    return store_test_setup(state, "test_jobs");
}

static int teardown(void **state)
{
    return store_test_teardown(state);
}

static int64_t add(struct store *s, const char *kind, const char *key, const char *payload,
                   int64_t run_at)
{
    int64_t id = 0;
    assert_int_equal(store_job_add(s, kind, key, (const uint8_t *)payload,
                                   payload ? strlen(payload) : 0, run_at, 100, &id),
                     STORE_OK);
    assert_true(id > 0);
    return id;
}

static void test_claim_order_and_lease(void **state)
{
    struct store_test *f = *state;
    int64_t late = add(f->s, "push", NULL, "late", 300);
    int64_t early = add(f->s, "push", NULL, "early", 200);
    add(f->s, "webhook", NULL, "other kind", 100);

    struct store_job *j = NULL;
    /* Nothing is due before 200. */
    assert_int_equal(store_job_claim(f->s, "push", "node-a", 150, 60, &j), STORE_NOTFOUND);
    assert_int_equal(store_job_claim(f->s, "push", "node-a", 400, 60, &j), STORE_OK);
    assert_int_equal(j->id, early);
    assert_string_equal(j->kind, "push");
    assert_int_equal(j->payload_len, 5);
    assert_memory_equal(j->payload, "early", 5);
    assert_int_equal(j->attempts, 1);
    store_job_free(j);

    /* node-b gets the other one; the leased one is not offered again. */
    assert_int_equal(store_job_claim(f->s, "push", "node-b", 401, 60, &j), STORE_OK);
    assert_int_equal(j->id, late);
    store_job_free(j);
    assert_int_equal(store_job_claim(f->s, "push", "node-c", 402, 60, &j), STORE_NOTFOUND);

    /* Only the holder completes. */
    assert_int_equal(store_job_complete(f->s, early, "node-b", 410), STORE_NOTFOUND);
    assert_int_equal(store_job_complete(f->s, early, "node-a", 410), STORE_OK);
    assert_int_equal(store_job_complete(f->s, early, "node-a", 411), STORE_NOTFOUND);

    /* node-b dies holding `late`: after its lease (401 + 60) node-c takes it. */
    assert_int_equal(store_job_claim(f->s, "push", "node-c", 460, 60, &j), STORE_NOTFOUND);
    assert_int_equal(store_job_claim(f->s, "push", "node-c", 461, 60, &j), STORE_OK);
    assert_int_equal(j->id, late);
    assert_int_equal(j->attempts, 2);
    store_job_free(j);
    /* The late holder's word no longer counts. */
    assert_int_equal(store_job_complete(f->s, late, "node-b", 470), STORE_NOTFOUND);

    /* A failure gives it back for later. */
    assert_int_equal(store_job_fail(f->s, late, "node-c", "APNs said 503", 600), STORE_OK);
    assert_int_equal(store_job_claim(f->s, "push", "node-a", 599, 60, &j), STORE_NOTFOUND);
    assert_int_equal(store_job_claim(f->s, "push", "node-a", 600, 60, &j), STORE_OK);
    assert_int_equal(j->attempts, 3);
    store_job_free(j);

    int64_t n = 0;
    assert_int_equal(store_job_pending(f->s, "push", &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_job_pending(f->s, NULL, &n), STORE_OK);
    assert_int_equal(n, 2);
    int64_t purged = 0;
    assert_int_equal(store_job_purge(f->s, 1000, &purged), STORE_OK);
    assert_int_equal(purged, 1); /* the completed one */
}

static void test_dedupe(void **state)
{
    struct store_test *f = *state;
    int64_t id = add(f->s, "push", "device-1", NULL, 100);
    int64_t other = 0;
    assert_int_equal(store_job_add(f->s, "push", "device-1", NULL, 0, 100, 100, &other),
                     STORE_CONFLICT);
    assert_int_equal(other, 0);
    add(f->s, "webhook", "device-1", NULL, 100); /* another kind: its own key space */

    /* Inside a caller's transaction the duplicate leaves it usable. */
    assert_int_equal(store_begin(f->s), STORE_OK);
    assert_int_equal(store_job_add(f->s, "push", "device-1", NULL, 0, 100, 100, NULL),
                     STORE_CONFLICT);
    add(f->s, "push", "device-2", NULL, 100);
    assert_int_equal(store_commit(f->s), STORE_OK);

    /* Once done, the key may be used again. */
    struct store_job *j = NULL;
    assert_int_equal(store_job_claim(f->s, "push", "n", 100, 60, &j), STORE_OK);
    assert_int_equal(j->id, id);
    assert_null(j->payload);
    assert_string_equal(j->dedupe_key, "device-1");
    store_job_free(j);
    assert_int_equal(store_job_complete(f->s, id, "n", 101), STORE_OK);
    add(f->s, "push", "device-1", NULL, 100);
}

#define JOBS 200
#define CLAIMERS 4

struct claimer {
    const char *dsn;
    char name[16];
    int claimed;
    int errors;
    int64_t ids[JOBS];
};

static void *claimer_main(void *arg)
{
    struct claimer *c = arg;
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(c->dsn, &s, &err) != STORE_OK) {
        free(err);
        c->errors++;
        return NULL;
    }
    for (;;) {
        struct store_job *j = NULL;
        int rc = store_job_claim(s, "bulk", c->name, 1000, 300, &j);
        if (rc == STORE_NOTFOUND)
            break;
        if (rc != STORE_OK) { /* SQLite busy beyond its timeout: try again */
            c->errors += rc != STORE_UNAVAILABLE;
            continue;
        }
        c->ids[c->claimed++] = j->id;
        if (store_job_complete(s, j->id, c->name, 1001) != STORE_OK)
            c->errors++;
        store_job_free(j);
    }
    store_close(s);
    return NULL;
}

static void test_concurrent_claims(void **state)
{
    struct store_test *f = *state;
    assert_int_equal(store_begin(f->s), STORE_OK);
    for (int i = 0; i < JOBS; i++)
        assert_int_equal(store_job_add(f->s, "bulk", NULL, NULL, 0, 900, 900, NULL), STORE_OK);
    assert_int_equal(store_commit(f->s), STORE_OK);

    static struct claimer c[CLAIMERS];
    pthread_t th[CLAIMERS];
    for (int i = 0; i < CLAIMERS; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].dsn = f->dsn;
        snprintf(c[i].name, sizeof c[i].name, "node-%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, claimer_main, &c[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < CLAIMERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(c[i].errors, 0);
        total += c[i].claimed;
    }
    assert_int_equal(total, JOBS); /* every job once … */
    for (int a = 0; a < CLAIMERS; a++) /* … and no job twice */
        for (int i = 0; i < c[a].claimed; i++)
            for (int b = a; b < CLAIMERS; b++)
                for (int k = (b == a ? i + 1 : 0); k < c[b].claimed; k++)
                    assert_true(c[a].ids[i] != c[b].ids[k]);
    int64_t n = -1;
    assert_int_equal(store_job_pending(f->s, "bulk", &n), STORE_OK);
    assert_int_equal(n, 0);
}

/* Scheduled runs shared by nodes: a first run is recorded, a second within
 * the interval is refused (another node ran it), one an interval later is
 * claimed, and a forced run (a node's first) always goes through. */
static void test_sched_claim(void **state)
{
    struct store_test *f = *state;
    assert_int_equal(store_sched_claim(f->s, "sweep", 60, 1000, "a:1", 0), STORE_OK);
    assert_int_equal(store_sched_claim(f->s, "sweep", 60, 1030, "b:2", 0), STORE_CONFLICT);
    assert_int_equal(store_sched_claim(f->s, "sweep", 60, 1058, "b:2", 0), STORE_CONFLICT);
    assert_int_equal(store_sched_claim(f->s, "sweep", 60, 1059, "b:2", 0), STORE_OK);
    assert_int_equal(store_sched_claim(f->s, "sweep", 60, 1060, "c:3", 1), STORE_OK);
    assert_int_equal(store_sched_claim(f->s, "other", 60, 1060, "c:3", 0), STORE_OK);
    assert_int_equal(store_sched_claim(f->s, "sweep", 60, 1100, "a:1", 0), STORE_CONFLICT);
}

int main(void)
{
    log_set_level(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_claim_order_and_lease),
        T(test_dedupe),
        T(test_concurrent_claims),
        T(test_sched_claim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
