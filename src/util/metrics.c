/* metrics.c: the process-wide counters and histograms behind metrics.h, and
 * their Prometheus text rendering. Recorded from every handler thread (the
 * router for requests, mdm/ for check-ins, the store for database calls) and
 * rendered by api_metrics. All state is C11 atomics: no locks on the hot path. */
#include "util/metrics.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define ROUTE_NAME_MAX 64
#define STATUS_MIN 100
#define STATUS_MAX 599
#define STATUS_SLOTS (STATUS_MAX - STATUS_MIN + 1)

enum slot_state { SLOT_FREE = 0, SLOT_CLAIMED, SLOT_READY };

/* One route's counters. The name is written once by the thread that claims
 * the slot, then published with state = SLOT_READY (release); readers see it
 * only after an acquire load of SLOT_READY, so it never changes under them. */
struct route_slot {
    atomic_int state;
    char name[ROUTE_NAME_MAX];
    atomic_uint_fast64_t by_status[STATUS_SLOTS]; /* index status - 100 */
    atomic_uint_fast64_t seconds_ns;              /* summed request time */
};

static const double bucket_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,    0.25,  0.5,    1,     2.5,   5};
#define NBUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

struct histogram {
    const char *name;
    const char *help;
    atomic_uint_fast64_t buckets[NBUCKETS + 1]; /* per bucket (not cumulative); last is +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns; /* integer nanoseconds: exact under concurrent adds */
};

/* The one global mutable state of the library (see metrics.h): counters only.
 * Slot METRICS_MAX_ROUTES is "other", for routes past the limit. */
static struct route_slot routes[METRICS_MAX_ROUTES + 1];
static struct histogram checkin_hist = {
    .name = "steward_checkin_duration_seconds",
    .help = "Time to handle one device round trip (check-in or connect).",
};
static struct histogram db_hist = {
    .name = "steward_db_duration_seconds",
    .help = "Time of one storage call or transaction.",
};

static struct route_slot *other_slot(void)
{
    struct route_slot *s = &routes[METRICS_MAX_ROUTES];
    int expected = SLOT_FREE;
    if (atomic_compare_exchange_strong(&s->state, &expected, SLOT_CLAIMED)) {
        strcpy(s->name, "other");
        atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
    }
    return s;
}

/* Waits out another thread's claim (it only copies a short name). */
static int slot_wait_ready(struct route_slot *s)
{
    int st;
    while ((st = atomic_load_explicit(&s->state, memory_order_acquire)) == SLOT_CLAIMED)
        sched_yield();
    return st;
}

/* The slot for a route name: an existing slot with the same name, or the
 * first free one, claimed with a CAS so two threads never take the same slot
 * and a name never gets two slots (slots fill in order and are never freed,
 * so a scan that reaches a free slot has seen every earlier name). */
static struct route_slot *route_slot_for(const char *route)
{
    if (!route || !*route || strlen(route) >= ROUTE_NAME_MAX)
        return other_slot();
    for (size_t i = 0; i < METRICS_MAX_ROUTES; i++) {
        struct route_slot *s = &routes[i];
        int st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == SLOT_FREE) {
            int expected = SLOT_FREE;
            if (atomic_compare_exchange_strong(&s->state, &expected, SLOT_CLAIMED)) {
                strcpy(s->name, route);
                atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
                return s;
            }
            st = expected;
        }
        if (st == SLOT_CLAIMED)
            st = slot_wait_ready(s);
        if (st == SLOT_READY && strcmp(s->name, route) == 0)
            return s;
    }
    return other_slot();
}

static uint64_t seconds_to_ns(double seconds)
{
    if (!(seconds > 0)) /* also NaN */
        return 0;
    if (seconds > 1e9)
        seconds = 1e9;
    return (uint64_t)(seconds * 1e9 + 0.5);
}

void metrics_request(const char *route, int status, double seconds)
{
    struct route_slot *s = route_slot_for(route);
    if (status == 0)
        status = 200; /* struct response: 0 means 200 */
    if (status < STATUS_MIN || status > STATUS_MAX)
        status = 500;
    atomic_fetch_add_explicit(&s->by_status[status - STATUS_MIN], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->seconds_ns, seconds_to_ns(seconds), memory_order_relaxed);
}

static void histogram_observe(struct histogram *h, double seconds)
{
    size_t i = 0;
    while (i < NBUCKETS && !(seconds <= bucket_bounds[i]))
        i++;
    /* NaN lands in +Inf, which is as good a place as any for nonsense. */
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, seconds_to_ns(seconds), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metrics_checkin(double seconds) { histogram_observe(&checkin_hist, seconds); }
void metrics_db(double seconds) { histogram_observe(&db_hist, seconds); }

/* ---- rendering --------------------------------------------------------------- */

/* Route names come from the router, but escape them as Prometheus label
 * values anyway (backslash, quote, newline) so the output always parses. */
static int put_label(struct buf *out, const char *v)
{
    for (; *v; v++) {
        int rc;
        if (*v == '\\')
            rc = buf_puts(out, "\\\\");
        else if (*v == '"')
            rc = buf_puts(out, "\\\"");
        else if (*v == '\n')
            rc = buf_puts(out, "\\n");
        else
            rc = buf_append(out, v, 1);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int render_requests(struct buf *out)
{
    int rc = buf_puts(out, "# HELP steward_http_requests_total HTTP requests by route and status.\n"
                           "# TYPE steward_http_requests_total counter\n");
    for (size_t i = 0; rc == 0 && i <= METRICS_MAX_ROUTES; i++) {
        struct route_slot *s = &routes[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_READY)
            continue;
        for (int k = 0; rc == 0 && k < STATUS_SLOTS; k++) {
            uint64_t n = atomic_load_explicit(&s->by_status[k], memory_order_relaxed);
            if (n == 0)
                continue;
            rc |= buf_puts(out, "steward_http_requests_total{route=\"");
            rc |= put_label(out, s->name);
            rc |= buf_printf(out, "\",status=\"%d\"} %llu\n", k + STATUS_MIN,
                             (unsigned long long)n);
        }
    }
    if (rc == 0)
        rc = buf_puts(out, "# HELP steward_http_request_duration_seconds Time spent handling "
                           "requests, by route.\n"
                           "# TYPE steward_http_request_duration_seconds summary\n");
    for (size_t i = 0; rc == 0 && i <= METRICS_MAX_ROUTES; i++) {
        struct route_slot *s = &routes[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_READY)
            continue;
        uint64_t ns = atomic_load_explicit(&s->seconds_ns, memory_order_relaxed);
        uint64_t count = 0;
        for (int k = 0; k < STATUS_SLOTS; k++)
            count += atomic_load_explicit(&s->by_status[k], memory_order_relaxed);
        rc |= buf_puts(out, "steward_http_request_duration_seconds_sum{route=\"");
        rc |= put_label(out, s->name);
        rc |= buf_printf(out, "\"} %llu.%09llu\n", (unsigned long long)(ns / 1000000000u),
                         (unsigned long long)(ns % 1000000000u));
        rc |= buf_puts(out, "steward_http_request_duration_seconds_count{route=\"");
        rc |= put_label(out, s->name);
        rc |= buf_printf(out, "\"} %llu\n", (unsigned long long)count);
    }
    return rc < 0 ? -1 : 0;
}

/* Buckets are rendered cumulative, as Prometheus wants; the count is taken
 * as the +Inf bucket's value so the two always agree within one scrape even
 * while other threads keep recording. */
static int render_histogram(struct buf *out, struct histogram *h)
{
    int rc = buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    uint64_t cumulative = 0;
    for (size_t i = 0; rc == 0 && i <= NBUCKETS; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < NBUCKETS)
            rc |= buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", h->name, bucket_bounds[i],
                             (unsigned long long)cumulative);
        else
            rc |= buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", h->name,
                             (unsigned long long)cumulative);
    }
    uint64_t ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    if (rc == 0)
        rc |= buf_printf(out, "%s_sum %llu.%09llu\n%s_count %llu\n", h->name,
                         (unsigned long long)(ns / 1000000000u),
                         (unsigned long long)(ns % 1000000000u), h->name,
                         (unsigned long long)cumulative);
    return rc < 0 ? -1 : 0;
}

/* Set by the expiry watcher's thread, read by /metrics: plain atomics. */
static atomic_llong cert_expiring = -1; /* -1 until the watcher ran once */
static atomic_int cert_within_days;
static atomic_llong cert_soonest = -1;

void metrics_cert_expiry(long long expiring, int within_days, long long soonest_seconds)
{
    atomic_store(&cert_within_days, within_days);
    atomic_store(&cert_soonest, soonest_seconds);
    atomic_store(&cert_expiring, expiring);
}

static int render_cert_expiry(struct buf *out)
{
    long long n = atomic_load(&cert_expiring);
    if (n < 0)
        return 0;
    if (buf_printf(out, "# HELP steward_certs_expiring Issued device certificates expiring soon.\n"
                        "# TYPE steward_certs_expiring gauge\n"
                        "steward_certs_expiring{within=\"%dd\"} %lld\n",
                   atomic_load(&cert_within_days), n) < 0)
        return -1;
    long long soonest = atomic_load(&cert_soonest);
    if (soonest < 0)
        return 0;
    return buf_printf(out, "# HELP steward_cert_soonest_expiry_days Days until the soonest issued "
                           "device certificate expires.\n"
                           "# TYPE steward_cert_soonest_expiry_days gauge\n"
                           "steward_cert_soonest_expiry_days %.2f\n",
                      (double)soonest / 86400.0) < 0 ? -1 : 0;
}

/* ---- APNs push outcomes and push-certificate expiry (core/push.c) ---- */
static const char *const push_outcomes[] = {
    "ok", "unregistered", "rejected", "certificate_refused", "throttled", "retry",
    "skipped_unregistered", "skipped_no_token", "skipped_no_certificate", "skipped_backoff",
    "skipped_not_enrolled", "other"};
#define NPUSH_OUTCOMES (sizeof push_outcomes / sizeof push_outcomes[0])
static atomic_uint_fast64_t push_counts[NPUSH_OUTCOMES];
static atomic_llong push_cert_expiring = -1;
static _Atomic double push_cert_soonest = -1;

void metrics_push(const char *outcome)
{
    size_t i = 0;
    while (i < NPUSH_OUTCOMES - 1 && strcmp(push_outcomes[i], outcome) != 0)
        i++;
    atomic_fetch_add(&push_counts[i], 1);
}

void metrics_push_cert_expiry(long long expiring_30d, double soonest_days)
{
    atomic_store(&push_cert_soonest, soonest_days);
    atomic_store(&push_cert_expiring, expiring_30d);
}

static int render_push(struct buf *out)
{
    if (buf_printf(out, "# HELP steward_push_total APNs pushes by outcome.\n"
                        "# TYPE steward_push_total counter\n") < 0)
        return -1;
    for (size_t i = 0; i < NPUSH_OUTCOMES; i++)
        if (buf_printf(out, "steward_push_total{outcome=\"%s\"} %llu\n", push_outcomes[i],
                       (unsigned long long)atomic_load(&push_counts[i])) < 0)
            return -1;
    long long n = atomic_load(&push_cert_expiring);
    if (n < 0)
        return 0;
    if (buf_printf(out, "# HELP steward_push_certs_expiring Push certificates expiring soon.\n"
                        "# TYPE steward_push_certs_expiring gauge\n"
                        "steward_push_certs_expiring{within=\"30d\"} %lld\n", n) < 0)
        return -1;
    double soonest = atomic_load(&push_cert_soonest);
    if (soonest < -1e8)
        return 0;
    return buf_printf(out, "# HELP steward_push_cert_soonest_expiry_days Days until the soonest "
                           "push certificate expires.\n"
                           "# TYPE steward_push_cert_soonest_expiry_days gauge\n"
                           "steward_push_cert_soonest_expiry_days %.2f\n", soonest) < 0 ? -1 : 0;
}

int metrics_render(struct buf *out, long long queue_depth)
{
    if (render_push(out) < 0)
        return -1;
    if (render_requests(out) < 0)
        return -1;
    if (queue_depth >= 0 &&
        buf_printf(out, "# HELP steward_queue_depth Commands waiting for devices.\n"
                        "# TYPE steward_queue_depth gauge\nsteward_queue_depth %lld\n",
                   queue_depth) < 0)
        return -1;
    if (render_histogram(out, &checkin_hist) < 0 || render_histogram(out, &db_hist) < 0)
        return -1;
    return render_cert_expiry(out);
}
