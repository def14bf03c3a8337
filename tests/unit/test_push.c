/* test_push.c: the APNs request building and response classification
 * (push/apns.h), the push certificate expiry thresholds, and the push store
 * area (store_push.h): certificates by topic and the default topic, the
 * unregistered mark that lasts until a newer TokenUpdate, back-off and the
 * re-push list. On SQLite, or on PostgreSQL when STEWARD_TEST_DSN says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/push_certs.h"
#include "push/apns.h"
#include "store/store.h"
#include "store_fixture.h"
#include "util/log.h"

#define TOKEN "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

static void test_path(void **state)
{
    (void)state;
    char out[300];
    assert_int_equal(apns_path(out, sizeof out, TOKEN), 0);
    assert_string_equal(out, "/3/device/abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    assert_int_equal(apns_path(out, sizeof out, "abc"), -1);          /* too short */
    assert_int_equal(apns_path(out, sizeof out, "0123456789abcdefg1"), -1); /* not hex */
    assert_int_equal(apns_path(out, sizeof out, "0123456789abcdef0"), -1); /* odd */
    assert_int_equal(apns_path(out, sizeof out, NULL), -1);
    assert_int_equal(apns_path(out, 20, TOKEN), -1); /* does not fit */
}

static void test_body(void **state)
{
    (void)state;
    char out[200];
    assert_int_equal(apns_body(out, sizeof out, "6C1C3E4B-5D2A-4F8E-9B7A-0D1E2F3A4B5C"), 0);
    assert_string_equal(out, "{\"mdm\":\"6C1C3E4B-5D2A-4F8E-9B7A-0D1E2F3A4B5C\"}");
    assert_int_equal(apns_body(out, sizeof out, ""), -1);
    assert_int_equal(apns_body(out, sizeof out, "a\"b"), -1);
    assert_int_equal(apns_body(out, sizeof out, "a\\b"), -1);
    assert_int_equal(apns_body(out, sizeof out, "a\nb"), -1);
    assert_int_equal(apns_body(out, 10, "6C1C3E4B"), -1);
}

static void test_expiration(void **state)
{
    (void)state;
    assert_int_equal(apns_expiration(1000, 0), 0);
    assert_int_equal(apns_expiration(1000, 86400), 87400);
}

static void test_classify(void **state)
{
    (void)state;
    char reason[64];
    int64_t ts;
    assert_int_equal(apns_classify(200, "", 0, reason, sizeof reason, &ts), APNS_OK);
    const char *gone = "{\"reason\":\"Unregistered\",\"timestamp\":1700000000000}";
    assert_int_equal(apns_classify(410, gone, strlen(gone), reason, sizeof reason, &ts),
                     APNS_UNREGISTERED);
    assert_string_equal(reason, "Unregistered");
    assert_true(ts == 1700000000000LL);
    const char *bad = "{\"reason\":\"BadDeviceToken\"}";
    assert_int_equal(apns_classify(400, bad, strlen(bad), reason, sizeof reason, &ts),
                     APNS_UNREGISTERED);
    const char *topic = "{\"reason\":\"TopicDisallowed\"}";
    assert_int_equal(apns_classify(400, topic, strlen(topic), reason, sizeof reason, &ts),
                     APNS_REJECTED);
    assert_string_equal(reason, "TopicDisallowed");
    const char *cert = "{\"reason\":\"BadCertificateEnvironment\"}";
    assert_int_equal(apns_classify(403, cert, strlen(cert), reason, sizeof reason, &ts),
                     APNS_CERT_REFUSED);
    assert_int_equal(apns_classify(429, NULL, 0, reason, sizeof reason, &ts), APNS_THROTTLED);
    assert_int_equal(apns_classify(500, "x", 1, reason, sizeof reason, &ts), APNS_RETRY);
    assert_int_equal(apns_classify(503, NULL, 0, reason, sizeof reason, &ts), APNS_RETRY);
    assert_int_equal(apns_classify(0, NULL, 0, reason, sizeof reason, &ts), APNS_RETRY);
    assert_int_equal(apns_classify(413, "not json", 8, reason, sizeof reason, &ts), APNS_REJECTED);
    assert_string_equal(reason, "");
}

static void test_warn_days(void **state)
{
    (void)state;
    int64_t now = 1000000000, day = 86400;
    assert_int_equal(pushcert_warn_days(now + 60 * day, now), 0);
    assert_int_equal(pushcert_warn_days(now + 30 * day, now), 30);
    assert_int_equal(pushcert_warn_days(now + 20 * day, now), 30);
    assert_int_equal(pushcert_warn_days(now + 10 * day, now), 14);
    assert_int_equal(pushcert_warn_days(now + 5 * day, now), 7);
    assert_int_equal(pushcert_warn_days(now + 3600, now), 1);
    assert_int_equal(pushcert_warn_days(now, now), -1);
}

/* ---- the store area ---------------------------------------------------------- */


static int setup(void **state)
{
    return store_test_setup(state, "test_push");
}

static int teardown(void **state)
{
    return store_test_teardown(state);
}

static void put_cert(struct store *s, const char *topic, int64_t not_after, int64_t now)
{
    struct store_pushcert c = {.topic = (char *)topic, .cert_pem = "CERT", .key_pem = "KEY",
                               .subject = "CN=x", .serial = "01", .fingerprint = "ff",
                               .not_before = now - 10, .not_after = not_after};
    assert_int_equal(store_pushcert_put(s, &c, now), STORE_OK);
}

static void enroll(struct store *s, const char *id, const char *topic, const char *token,
                   int64_t now)
{
    struct store_enrollment e = {.id = (char *)id, .type = "Device", .udid = (char *)id,
                                 .topic = (char *)topic};
    assert_int_equal(store_enrollment_authenticate(s, &e, now), STORE_OK);
    e.token_hex = (char *)token;
    e.push_magic = "MAGIC";
    int first = 0;
    assert_int_equal(store_enrollment_token_update(s, &e, now, &first), STORE_OK);
}

static void test_certs(void **state)
{
    struct store_test *f = *state;
    char topic[256];
    assert_int_equal(store_pushcert_topic_default(f->s, topic, sizeof topic), STORE_NOTFOUND);
    put_cert(f->s, "com.apple.mgmt.A", 5000, 100);
    put_cert(f->s, "com.apple.mgmt.B", 9000, 100);
    assert_int_equal(store_pushcert_topic_default(f->s, topic, sizeof topic), STORE_OK);
    assert_string_equal(topic, "com.apple.mgmt.B"); /* expires last */
    assert_int_equal(store_pushcert_topic_default(f->s, topic, 4), STORE_CONFLICT);
    assert_int_equal(store_pushcert_disable(f->s, "com.apple.mgmt.B", "BadCertificate", 200),
                     STORE_OK);
    assert_int_equal(store_pushcert_topic_default(f->s, topic, sizeof topic), STORE_OK);
    assert_string_equal(topic, "com.apple.mgmt.A"); /* a disabled one is not offered */
    struct store_pushcert *c = NULL;
    assert_int_equal(store_pushcert_get(f->s, "com.apple.mgmt.B", &c), STORE_OK);
    assert_string_equal(c->disabled_reason, "BadCertificate");
    assert_string_equal(c->key_pem, "KEY");
    store_pushcert_free(c);
    put_cert(f->s, "com.apple.mgmt.B", 9500, 300); /* re-import enables it */
    assert_int_equal(store_pushcert_get(f->s, "com.apple.mgmt.B", &c), STORE_OK);
    assert_null(c->disabled_reason);
    assert_int_equal(c->created_at, 100);
    assert_int_equal(c->updated_at, 300);
    store_pushcert_free(c);
    struct store_pushcert **list = NULL;
    size_t n = 0;
    assert_int_equal(store_pushcert_list(f->s, 0, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_null(list[0]->key_pem);
    store_pushcert_list_free(list, n);
    assert_int_equal(store_pushcert_disable(f->s, "nope", "x", 1), STORE_NOTFOUND);

    enroll(f->s, "D1", "com.apple.mgmt.A", TOKEN, 100);
    int64_t count = -1;
    assert_int_equal(store_push_topic_devices(f->s, "com.apple.mgmt.A", NULL, &count), STORE_OK);
    assert_int_equal(count, 1);
    assert_int_equal(store_push_topic_devices(f->s, NULL, "com.apple.mgmt.A", &count), STORE_OK);
    assert_int_equal(count, 0);
    assert_int_equal(store_push_topic_devices(f->s, NULL, "com.apple.mgmt.C", &count), STORE_OK);
    assert_int_equal(count, 1);
}

static void test_unregistered_until_token_update(void **state)
{
    struct store_test *f = *state;
    enroll(f->s, "D1", "com.apple.mgmt.A", TOKEN, 100);
    struct store_push_target *t = NULL;
    assert_int_equal(store_push_target_get(f->s, "D1", &t), STORE_OK);
    assert_int_equal(t->pushes, 0);
    assert_false(store_push_target_unregistered(t));
    store_push_target_free(t);

    assert_int_equal(store_push_record(f->s, "D1", 200, 200, "ok", "ID-1", NULL, 0), STORE_OK);
    assert_int_equal(store_push_record(f->s, "D1", 210, 410, "Unregistered", NULL, TOKEN, 0),
                     STORE_OK);
    /* a later not-sent outcome keeps the mark */
    assert_int_equal(store_push_record(f->s, "D1", 220, 0, "no_certificate", NULL, NULL, 0),
                     STORE_OK);
    assert_int_equal(store_push_target_get(f->s, "D1", &t), STORE_OK);
    assert_true(store_push_target_unregistered(t));
    assert_int_equal(t->pushes, 2);
    assert_int_equal(t->failures, 2);
    assert_int_equal(t->unregistered_at, 210);
    assert_string_equal(t->last_result, "no_certificate");
    store_push_target_free(t);

    enroll(f->s, "D1", "com.apple.mgmt.A", TOKEN, 300); /* a newer TokenUpdate */
    assert_int_equal(store_push_target_get(f->s, "D1", &t), STORE_OK);
    assert_false(store_push_target_unregistered(t));
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "nope", &t), STORE_NOTFOUND);
}

static void test_repush_due(void **state)
{
    struct store_test *f = *state;
    enroll(f->s, "D1", "com.apple.mgmt.A", TOKEN, 100);
    enroll(f->s, "D2", "com.apple.mgmt.A", TOKEN, 100);
    enroll(f->s, "D3", "com.apple.mgmt.A", TOKEN, 100);
    assert_int_equal(store_command_create(f->s, "C1", "ProfileList", (const uint8_t *)"x", 1, 100),
                     STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D1", "C1", 100), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D2", "C1", 100), STORE_OK);
    /* D3 has nothing waiting; D2 is held off by a 429 */
    assert_int_equal(store_push_record(f->s, "D2", 150, 429, "TooManyRequests", NULL, NULL, 5000),
                     STORE_OK);
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(store_push_due(f->s, 1000, 900, 900, 100, &ids, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "D1");
    free(ids[0]);
    free(ids);
    /* pushed recently: not due again */
    assert_int_equal(store_push_record(f->s, "D1", 950, 200, "ok", NULL, NULL, 0), STORE_OK);
    assert_int_equal(store_push_due(f->s, 1000, 900, 900, 100, &ids, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(ids);
    /* once the back-off is over D2 is due */
    assert_int_equal(store_push_due(f->s, 6000, 5900, 5900, 100, &ids, &n), STORE_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Many ids at once: more than one query's worth, a repeated id, unknown
 * ids; each answer lands at its id's index, with its own push state. */
static void test_targets_bulk(void **state)
{
    struct store_test *f = *state;
    enum { N = 120 };
    char names[N][16];
    const char *ids[N + 3];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "B%03d", i);
        enroll(f->s, names[i], "com.apple.mgmt.A", TOKEN, 100);
        ids[N - 1 - i] = names[i]; /* reversed: rows come back in another order */
    }
    assert_int_equal(store_push_record(f->s, "B007", 150, 410, "Unregistered", NULL, TOKEN, 0),
                     STORE_OK);
    ids[N] = "nope";
    ids[N + 1] = "B007"; /* again, in another chunk */
    ids[N + 2] = "";
    struct store_push_target *out[N + 3];
    assert_int_equal(store_push_targets_get(f->s, ids, N + 3, out), STORE_OK);
    for (int i = 0; i < N; i++) {
        assert_non_null(out[i]);
        assert_string_equal(out[i]->id, ids[i]);
        assert_string_equal(out[i]->token_hex, TOKEN);
        assert_int_equal(store_push_target_unregistered(out[i]), strcmp(ids[i], "B007") == 0);
    }
    assert_null(out[N]);
    assert_non_null(out[N + 1]);
    assert_string_equal(out[N + 1]->id, "B007");
    assert_true(store_push_target_unregistered(out[N + 1]));
    assert_null(out[N + 2]);
    for (int i = 0; i < N + 3; i++)
        store_push_target_free(out[i]);
}

/* Outcomes recorded many at once: full chunks of 50 rows in one statement,
 * a repeated id (row by row, the later one wins), a short tail, an unknown
 * enrollment (its row alone fails), each row as store_push_record writes it. */
static void test_record_many(void **state)
{
    struct store_test *f = *state;
    enum { N = 130 };
    char names[N][16];
    struct store_push_outcome o[N + 2];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "R%03d", i);
        enroll(f->s, names[i], "com.apple.mgmt.A", TOKEN, 100);
        o[i] = (struct store_push_outcome){.id = names[i], .status = 200, .result = "ok",
                                           .apns_id = "ID"};
    }
    o[3] = (struct store_push_outcome){.id = "R003", .status = 410, .result = "Unregistered",
                                       .unregistered_token = TOKEN};
    o[60] = (struct store_push_outcome){.id = "R060", .status = 429, .result = "TooManyRequests",
                                        .backoff_until = 5000};
    o[70] = (struct store_push_outcome){.id = "R060", .status = 200, .result = "ok"}; /* again */
    o[N] = (struct store_push_outcome){.id = "R001", .status = 0, .result = "no_certificate"};
    o[N + 1] = (struct store_push_outcome){.id = "R002", .status = 200, .result = "ok"};
    o[10].id = "NOPE"; /* no such enrollment: only its row fails */
    assert_int_not_equal(store_push_record_many(f->s, o, N + 2, 200), STORE_OK);

    struct store_push_target *t = NULL;
    assert_int_equal(store_push_target_get(f->s, "R000", &t), STORE_OK);
    assert_int_equal(t->last_push_at, 200);
    assert_int_equal(t->last_status, 200);
    assert_string_equal(t->last_apns_id, "ID");
    assert_int_equal(t->pushes, 1);
    assert_int_equal(t->failures, 0);
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R003", &t), STORE_OK);
    assert_true(store_push_target_unregistered(t));
    assert_int_equal(t->unregistered_at, 200);
    assert_int_equal(t->failures, 1);
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R060", &t), STORE_OK);
    assert_int_equal(t->pushes, 2);
    assert_int_equal(t->failures, 1);
    assert_int_equal(t->backoff_until, 0); /* the later 200 cleared it */
    assert_string_equal(t->last_result, "ok");
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R001", &t), STORE_OK);
    assert_string_equal(t->last_result, "no_certificate");
    assert_int_equal(t->pushes, 1); /* not sent: not counted */
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R002", &t), STORE_OK);
    assert_int_equal(t->pushes, 2);
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R010", &t), STORE_OK);
    assert_int_equal(t->pushes, 0); /* its outcome went to "NOPE" */
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R011", &t), STORE_OK);
    assert_int_equal(t->pushes, 1); /* in the chunk with the bad row */
    store_push_target_free(t);
    assert_int_equal(store_push_target_get(f->s, "R129", &t), STORE_OK);
    assert_int_equal(t->pushes, 1);
    store_push_target_free(t);
}

int main(void)
{
    log_set_level(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_expiration),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_warn_days),
        T(test_certs),
        T(test_unregistered_until_token_update),
        T(test_repush_due),
        T(test_targets_bulk),
        T(test_record_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
