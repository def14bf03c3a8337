/* test_metrics.c: util/metrics.c. Parses the rendered Prometheus text and
 * checks request counts by route and status, histogram buckets (cumulative,
 * _sum, _count), the queue-depth gauge, label escaping, the route limit, and
 * exact totals when many threads record at once. The counters are process
 * globals, so every check compares a scrape before and after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "util/metrics.h"

/* One scrape: "series value" lines, comments skipped. */
struct scrape {
    char *text;
};

static struct scrape scrape(long long depth)
{
    struct buf b = {0};
    assert_int_equal(metrics_render(&b, depth), 0);
    assert_non_null(b.data);
    assert_int_equal(b.data[b.len - 1], '\n');
    struct scrape s = {buf_steal(&b, NULL)};
    return s;
}

/* The value of a series ("name{labels}" exactly as rendered), or -1 when absent. */
static double value_of(const struct scrape *s, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = s->text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            end = line + strlen(line);
        if (line[0] != '#' && (size_t)(end - line) > n && strncmp(line, series, n) == 0 &&
            line[n] == ' ')
            return strtod(line + n + 1, NULL);
        line = *end ? end + 1 : end;
    }
    return -1;
}

/* Like value_of, absent counting as 0 (a counter never touched). */
static double count_of(const struct scrape *s, const char *series)
{
    double v = value_of(s, series);
    return v < 0 ? 0 : v;
}

static int lines_matching(const struct scrape *s, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *line = s->text; line && *line;) {
        if (strncmp(line, prefix, len) == 0)
            n++;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return n;
}

static void scrape_free(struct scrape *s) { free(s->text); }

static void test_request_counts(void **state)
{
    (void)state;
    const char *ok = "steward_http_requests_total{route=\"/test/a\",status=\"200\"}";
    const char *nf = "steward_http_requests_total{route=\"/test/a\",status=\"404\"}";
    const char *cnt = "steward_http_request_duration_seconds_count{route=\"/test/a\"}";
    const char *sum = "steward_http_request_duration_seconds_sum{route=\"/test/a\"}";
    struct scrape before = scrape(-1);
    metrics_request("/test/a", 200, 0.5);
    metrics_request("/test/a", 200, 0.25);
    metrics_request("/test/a", 0, 0.125); /* 0 means 200 */
    metrics_request("/test/a", 404, 1.0);
    metrics_request("/test/b", 200, 0.0);
    struct scrape after = scrape(-1);
    assert_int_equal(count_of(&after, ok) - count_of(&before, ok), 3);
    assert_int_equal(count_of(&after, nf) - count_of(&before, nf), 1);
    assert_int_equal(count_of(&after, cnt) - count_of(&before, cnt), 4);
    assert_true(value_of(&after, sum) - count_of(&before, sum) > 1.875 - 1e-9);
    assert_true(value_of(&after, sum) - count_of(&before, sum) < 1.875 + 1e-9);
    /* Statuses never seen get no line. */
    assert_true(value_of(&after, "steward_http_requests_total{route=\"/test/a\",status=\"500\"}") < 0);
    scrape_free(&before);
    scrape_free(&after);
}

static const char *const le[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                 "0.1",    "0.25",  "0.5",    "1",     "2.5",   "5",    "+Inf"};
#define NLE (sizeof le / sizeof le[0])

static double bucket(const struct scrape *s, const char *name, const char *bound)
{
    char series[160];
    snprintf(series, sizeof series, "%s_bucket{le=\"%s\"}", name, bound);
    return value_of(s, series);
}

/* Every bucket line present, cumulative (never decreasing), +Inf == _count. */
static void check_histogram_shape(const struct scrape *s, const char *name)
{
    char series[160];
    double prev = 0;
    for (size_t i = 0; i < NLE; i++) {
        double v = bucket(s, name, le[i]);
        if (v < 0)
            fail_msg("%s has no le=%s bucket", name, le[i]);
        assert_true(v >= prev);
        prev = v;
    }
    snprintf(series, sizeof series, "%s_count", name);
    assert_true(value_of(s, series) == prev);
    snprintf(series, sizeof series, "%s_sum", name);
    assert_true(value_of(s, series) >= 0);
    snprintf(series, sizeof series, "# TYPE %s histogram", name);
    assert_non_null(strstr(s->text, series));
}

static void test_histogram(void **state)
{
    (void)state;
    const char *h = "steward_checkin_duration_seconds";
    struct scrape before = scrape(-1);
    metrics_checkin(0.0001); /* le 0.0005 */
    metrics_checkin(0.0005); /* on the bound: still le 0.0005 */
    metrics_checkin(0.003);  /* le 0.005 */
    metrics_checkin(0.7);    /* le 1 */
    metrics_checkin(10);     /* only +Inf */
    struct scrape after = scrape(-1);
    check_histogram_shape(&after, h);
    check_histogram_shape(&after, "steward_db_duration_seconds");
    /* Expected cumulative increase per bound, in le[] order. */
    static const int expect[NLE] = {2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 5};
    for (size_t i = 0; i < NLE; i++) {
        double d = bucket(&after, h, le[i]) - bucket(&before, h, le[i]);
        if (d != expect[i])
            fail_msg("le=%s grew by %g, expected %d", le[i], d, expect[i]);
    }
    char series[96];
    snprintf(series, sizeof series, "%s_count", h);
    assert_true(value_of(&after, series) - value_of(&before, series) == 5);
    snprintf(series, sizeof series, "%s_sum", h);
    double dsum = value_of(&after, series) - value_of(&before, series);
    assert_true(dsum > 10.7036 - 1e-6 && dsum < 10.7036 + 1e-6);
    scrape_free(&before);
    scrape_free(&after);
}

static void test_queue_depth(void **state)
{
    (void)state;
    struct scrape with = scrape(7);
    assert_true(value_of(&with, "steward_queue_depth") == 7);
    assert_non_null(strstr(with.text, "# TYPE steward_queue_depth gauge\n"));
    struct scrape without = scrape(-1);
    assert_true(value_of(&without, "steward_queue_depth") < 0);
    scrape_free(&with);
    scrape_free(&without);
}

static void test_label_escaping(void **state)
{
    (void)state;
    metrics_request("/q\"uote\\back", 201, 0);
    struct scrape s = scrape(-1);
    assert_true(value_of(&s, "steward_http_requests_total{route=\"/q\\\"uote\\\\back\","
                             "status=\"201\"}") >= 1);
    scrape_free(&s);
}

#define THREADS 8
#define PER_THREAD 20000

static void *record_many(void *arg)
{
    long t = (long)(intptr_t)arg;
    char route[32];
    for (int i = 0; i < PER_THREAD; i++) {
        /* Each thread walks the routes in its own order, so first use of a
         * route (slot registration) races between threads too. */
        snprintf(route, sizeof route, "/race/%ld", (i + t) % 10);
        metrics_request(route, i % 2 ? 200 : 503, 0.001);
        metrics_request("/race/hot", 200, 0.001); /* every thread, one counter */
        metrics_db(0.002);
    }
    return NULL;
}

static void test_concurrent_totals(void **state)
{
    (void)state;
    struct scrape before = scrape(-1);
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, record_many, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    struct scrape after = scrape(-1);
    double total = 0;
    for (int r = 0; r < 10; r++) {
        char series[128], prefix[128];
        snprintf(series, sizeof series,
                 "steward_http_requests_total{route=\"/race/%d\",status=\"200\"}", r);
        total += count_of(&after, series) - count_of(&before, series);
        snprintf(series, sizeof series,
                 "steward_http_requests_total{route=\"/race/%d\",status=\"503\"}", r);
        total += count_of(&after, series) - count_of(&before, series);
        /* One slot per name: exactly one line per (route, status). */
        snprintf(prefix, sizeof prefix, "steward_http_requests_total{route=\"/race/%d\",", r);
        assert_int_equal(lines_matching(&after, prefix), 2);
    }
    assert_true(total == (double)THREADS * PER_THREAD);
    const char *hot = "steward_http_requests_total{route=\"/race/hot\",status=\"200\"}";
    assert_true(count_of(&after, hot) - count_of(&before, hot) == (double)THREADS * PER_THREAD);
    const char *dbc = "steward_db_duration_seconds_count";
    assert_true(value_of(&after, dbc) - value_of(&before, dbc) == (double)THREADS * PER_THREAD);
    /* Sums are kept in integer nanoseconds: exact, not float-drifted. */
    const char *dbs = "steward_db_duration_seconds_sum";
    double ds = value_of(&after, dbs) - value_of(&before, dbs);
    assert_true(ds > THREADS * PER_THREAD * 0.002 - 1e-6 && ds < THREADS * PER_THREAD * 0.002 + 1e-6);
    const char *le5 = "steward_db_duration_seconds_bucket{le=\"0.0025\"}";
    const char *le1 = "steward_db_duration_seconds_bucket{le=\"0.001\"}";
    assert_true(value_of(&after, le5) - value_of(&before, le5) == (double)THREADS * PER_THREAD);
    assert_true(value_of(&after, le1) - value_of(&before, le1) == 0);
    scrape_free(&before);
    scrape_free(&after);
}

/* Runs last: it fills every route slot. */
static void test_route_limit(void **state)
{
    (void)state;
    const char *other = "steward_http_requests_total{route=\"other\",status=\"200\"}";
    struct scrape before = scrape(-1);
    char route[128];
    for (int i = 0; i < METRICS_MAX_ROUTES + 10; i++) {
        snprintf(route, sizeof route, "/fill/%d", i);
        metrics_request(route, 200, 0);
    }
    memset(route, 'x', 100);
    route[100] = '\0';
    metrics_request(route, 200, 0); /* too long for a slot */
    metrics_request(NULL, 200, 0);
    struct scrape after = scrape(-1);
    /* Every named slot is now taken; all the rest counted as "other". */
    int named = lines_matching(&after, "steward_http_request_duration_seconds_count{route=");
    assert_int_equal(named, METRICS_MAX_ROUTES + 1); /* + "other" */
    double fill = 0;
    for (int i = 0; i < METRICS_MAX_ROUTES + 10; i++) {
        char series[128];
        snprintf(series, sizeof series,
                 "steward_http_requests_total{route=\"/fill/%d\",status=\"200\"}", i);
        fill += count_of(&after, series);
    }
    double to_other = count_of(&after, other) - count_of(&before, other);
    assert_true(fill + to_other == METRICS_MAX_ROUTES + 10 + 2);
    assert_true(to_other >= 12);
    scrape_free(&before);
    scrape_free(&after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_counts),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_queue_depth),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_concurrent_totals),
        cmocka_unit_test(test_route_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
