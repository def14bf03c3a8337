/* push.c: the push service behind push.h. Callers append entries to an
 * in-memory queue under a mutex (a hash of waiting ids coalesces repeats).
 * Three threads, each with its own store connection, form a pipeline so
 * the APNs connections are kept busy while the database works:
 *   lookup: takes ready entries in batches, looks each device up (token,
 *           PushMagic, topic, unregistered mark, back-off), sorts by topic;
 *   send:   sends each topic's group through that topic's apns_client
 *           (created from the stored certificate and kept for its
 *           connections); a topic whose batches keep failing opens a
 *           circuit breaker for a while, a 403 disables its certificate;
 *   record: writes the outcomes (a transaction per 2,000), answers waiters and
 *           requeues what APNs asked to retry with jittered exponential
 *           back-off.
 * One batch at most waits between two stages, so batch n+1 is looked up
 * while batch n is in flight and batch n-1 is recorded. */
#include "core/push.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/events.h"
#include "push/apns.h"
#include "store/store.h"
#include "util/config.h"
#include "util/log.h"
#include "util/metrics.h"

#define HASH_BUCKETS 65536
/* A batch is sent as a whole and the send stage waits for its last answer
 * before starting the next, so its size sets how often the connections
 * drain: 10,000 keeps that to one window in ten at 2 x 500 streams
 * (bench/push: 2,000 gave about 0.6 of the rate). */
#define BATCH_MAX 10000
/* Outcomes are committed this many at a time, so a large batch holds
 * SQLite's write lock only briefly between check-ins' writes. */
#define RECORD_TX 2000
#define MAX_TOPICS 32
#define BREAKER_FAILURES 3

struct waiter {
    pthread_cond_t cond;
    size_t left;
    struct push_result *out;
};

struct entry {
    struct entry *next;  /* queue order */
    struct entry *hnext; /* hash chain (coalescable entries only) */
    char *id;
    int64_t ready_ms;
    int attempts;
    struct waiter *w; /* NULL for coalesced asynchronous pushes */
    size_t wi;
};

struct topic_client {
    char topic[256];
    char fingerprint[80];
    struct apns_client *c;
    int64_t open_until_ms; /* circuit breaker: no pushes before this */
    int failures;          /* consecutive failed batches */
};

/* One batch moving through the pipeline. */
struct batch {
    struct job *jobs;
    size_t n;
    int64_t now; /* unix seconds when it was looked up */
};

struct push_service {
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* new entries (lookup thread) */
    pthread_cond_t moved; /* a batch moved between stages, or a stage ended */
    pthread_t lookup_thread, send_thread, record_thread;
    int started, stop, certs_changed;
    struct batch *to_send, *to_record; /* the batch waiting for each stage */
    int lookup_done, send_done;
    struct entry *head, *tail; /* new entries, in ready order (nearly) */
    struct entry *retry;       /* retries, unordered */
    struct entry *hash[HASH_BUCKETS];
    size_t pending;
    struct store *lookup_store, *send_store, *record_store;
    struct apns_opts apns;
    char url[CONFIG_STR], ca[CONFIG_STR];
    int64_t coalesce_ms, retry_max, repush_after;
    struct topic_client topics[MAX_TOPICS];
    size_t ntopics;
    unsigned seed;
    _Atomic(struct events *) events; /* push.failed webhooks, or NULL */
};

void push_set_events(struct push_service *ps, struct events *ev)
{
    if (ps)
        atomic_store(&ps->events, ev);
}

/* A "push.failed" webhook for an answer that will not be retried. */
static void emit_failed(struct push_service *ps, const char *id, const struct apns_push *p)
{
    struct events *ev = atomic_load(&ps->events);
    if (!ev || !events_wanted(ev, "push.failed"))
        return;
    events_emit(ev, "push.failed",
                json_pack("{s:{s:s},s:{s:I,s:s,s:s}}", "device", "id", id, "push", "status",
                          (json_int_t)p->status, "outcome", apns_outcome_name(p->outcome),
                          "reason", p->reason));
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash_id(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % HASH_BUCKETS;
}

static struct entry **hash_slot(struct push_service *ps, const char *id)
{
    struct entry **pp = &ps->hash[hash_id(id)];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void entry_free(struct entry *e)
{
    if (e) {
        free(e->id);
        free(e);
    }
}

/* ---- queueing (any thread) ---------------------------------------------- */

static void append(struct push_service *ps, struct entry *e)
{
    e->next = NULL;
    if (ps->tail)
        ps->tail->next = e;
    else
        ps->head = e;
    ps->tail = e;
    ps->pending++;
}

int push_devices(struct push_service *ps, const char *const *ids, size_t n)
{
    int rc = 0;
    int64_t ready = now_ms() + ps->coalesce_ms;
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < n; i++) {
        struct entry **slot = hash_slot(ps, ids[i]);
        if (*slot)
            continue; /* already waiting: coalesced */
        struct entry *e = calloc(1, sizeof *e);
        if (!e || !(e->id = strdup(ids[i]))) {
            free(e);
            rc = -1;
            break;
        }
        e->ready_ms = ready;
        *slot = e;
        append(ps, e);
    }
    pthread_cond_signal(&ps->wake);
    pthread_mutex_unlock(&ps->mu);
    return rc;
}

int push_devices_wait(struct push_service *ps, const char *const *ids, size_t n,
                      struct push_result *out, int timeout_s)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].result, sizeof out[i].result, "timeout");
    }
    /* On the heap: entries still in flight after a timeout finish with it
     * (the last one frees it once the caller has abandoned it). */
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->out = out;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    int rc = 0;
    int64_t ready = now_ms();
    pthread_mutex_lock(&ps->mu);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = calloc(1, sizeof *e);
        if (!e || !(e->id = strdup(ids[i]))) {
            free(e);
            snprintf(out[i].result, sizeof out[i].result, "out of memory");
            rc = -1;
            continue;
        }
        e->ready_ms = ready;
        e->w = w;
        e->wi = i;
        w->left++;
        append(ps, e);
    }
    pthread_cond_signal(&ps->wake);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_s > 0 ? timeout_s : 30;
    while (w->left > 0)
        if (pthread_cond_timedwait(&w->cond, &ps->mu, &until) == ETIMEDOUT)
            break;
    int done = w->left == 0;
    if (!done) {
        rc = -1;
        w->out = NULL; /* abandoned: the last entry frees it */
    }
    pthread_mutex_unlock(&ps->mu);
    if (done) {
        pthread_cond_destroy(&w->cond);
        free(w);
    }
    return rc;
}

/* An entry of a waiter is finished (caller holds mu). */
static void waiter_release(struct waiter *w)
{
    if (--w->left > 0)
        return;
    if (w->out) {
        pthread_cond_signal(&w->cond);
    } else {
        pthread_cond_destroy(&w->cond);
        free(w);
    }
}

void push_service_certs_changed(struct push_service *ps)
{
    pthread_mutex_lock(&ps->mu);
    ps->certs_changed = 1;
    pthread_mutex_unlock(&ps->mu);
}

size_t push_service_pending(struct push_service *ps)
{
    pthread_mutex_lock(&ps->mu);
    size_t n = ps->pending;
    pthread_mutex_unlock(&ps->mu);
    return n;
}

/* ---- the push thread ------------------------------------------------------ */

/* One entry being pushed in this batch. */
struct job {
    struct entry *e;
    struct store_push_target *t;
    const char *skip;      /* set when not sent: why */
    int requeue_ms;        /* >0: retry after this many ms */
    struct apns_push p;
};

/* Takes up to max ready entries (caller holds mu). Sets *wait_ms to how long
 * until the next one is ready when none is. */
static size_t take_ready(struct push_service *ps, struct job *jobs, size_t max, int64_t now,
                         int64_t *wait_ms)
{
    size_t n = 0;
    int64_t next = INT64_MAX;
    for (struct entry **pp = &ps->retry; *pp && n < max;) {
        struct entry *e = *pp;
        if (e->ready_ms <= now) {
            *pp = e->next;
            jobs[n++].e = e;
        } else {
            next = e->ready_ms < next ? e->ready_ms : next;
            pp = &e->next;
        }
    }
    while (ps->head && n < max && ps->head->ready_ms <= now) {
        struct entry *e = ps->head;
        ps->head = e->next;
        if (!ps->head)
            ps->tail = NULL;
        if (!e->w) {
            struct entry **slot = hash_slot(ps, e->id);
            if (*slot == e)
                *slot = e->hnext;
        }
        jobs[n++].e = e;
    }
    if (ps->head && ps->head->ready_ms < next)
        next = ps->head->ready_ms;
    *wait_ms = next == INT64_MAX ? -1 : next - now;
    return n;
}

static struct topic_client *topic_find(struct push_service *ps, const char *topic)
{
    for (size_t i = 0; i < ps->ntopics; i++)
        if (strcmp(ps->topics[i].topic, topic) == 0)
            return &ps->topics[i];
    return NULL;
}

static void topics_drop(struct push_service *ps)
{
    for (size_t i = 0; i < ps->ntopics; i++)
        apns_client_free(ps->topics[i].c);
    ps->ntopics = 0;
}

/* The client for topic, made from the stored certificate; NULL with *why. */
static struct topic_client *topic_client(struct push_service *ps, const char *topic,
                                         const char **why)
{
    struct topic_client *tc = topic_find(ps, topic);
    if (tc && tc->c)
        return tc;
    struct store_pushcert *cert = NULL;
    int rc = store_pushcert_get(ps->send_store, topic, &cert);
    if (rc == STORE_NOTFOUND) {
        *why = "no_certificate";
        return NULL;
    }
    if (rc != STORE_OK) {
        *why = "storage_error";
        return NULL;
    }
    if (cert->disabled_reason) {
        *why = "certificate_disabled";
        store_pushcert_free(cert);
        return NULL;
    }
    if (!tc) {
        if (ps->ntopics == MAX_TOPICS || strlen(topic) >= sizeof tc->topic) {
            *why = "too_many_topics";
            store_pushcert_free(cert);
            return NULL;
        }
        tc = &ps->topics[ps->ntopics++];
        memset(tc, 0, sizeof *tc);
        snprintf(tc->topic, sizeof tc->topic, "%s", topic);
    }
    char *err = NULL;
    tc->c = apns_client_new(topic, cert->cert_pem, cert->key_pem, &ps->apns, &err);
    if (!tc->c) {
        log_error("apns client", "topic=%s err=\"%s\"", topic, err ? err : "?");
        free(err);
        *why = "client_error";
    } else {
        snprintf(tc->fingerprint, sizeof tc->fingerprint, "%s",
                 cert->fingerprint ? cert->fingerprint : "");
    }
    store_pushcert_free(cert);
    return tc->c ? tc : NULL;
}

/* rng: the calling thread's own generator state. */
static int backoff_ms(unsigned *rng, int attempts)
{
    int base = 1000 << (attempts < 8 ? attempts : 8); /* 2 s, 4 s, … ~4 min */
    *rng = *rng * 1103515245u + 12345u;
    return base / 2 + (int)((*rng >> 8) % (unsigned)base); /* jitter: 0.5x to 1.5x */
}

/* Decides whether the device of j, looked up (rc, j->t), can be pushed now. */
static void prepare(struct job *j, int rc, int64_t now, unsigned *rng)
{
    if (rc == STORE_OK && !j->t)
        rc = STORE_NOTFOUND;
    if (rc == STORE_NOTFOUND) {
        j->skip = "not_found";
        return;
    }
    if (rc != STORE_OK) {
        j->skip = "storage_error";
        j->requeue_ms = j->e->w ? 0 : backoff_ms(rng, j->e->attempts);
        return;
    }
    struct store_push_target *t = j->t;
    if (t->status != ENROLLMENT_ENROLLED)
        j->skip = "not_enrolled";
    else if (!t->token_hex || !t->push_magic)
        j->skip = "no_token";
    else if (!t->topic)
        j->skip = "no_topic";
    else if (store_push_target_unregistered(t))
        j->skip = "unregistered";
    else if (t->backoff_until > now) {
        j->skip = "backoff";
        if (!j->e->w)
            j->requeue_ms = (int)((t->backoff_until - now) * 1000);
    }
    if (!j->skip) {
        j->p.token_hex = t->token_hex;
        j->p.magic = t->push_magic;
    }
}

static int by_topic(const void *a, const void *b)
{
    const struct job *x = a, *y = b;
    const char *tx = x->skip ? "" : x->t->topic, *ty = y->skip ? "" : y->t->topic;
    return strcmp(tx, ty);
}

static const char *skip_metric(const char *skip)
{
    if (strcmp(skip, "unregistered") == 0) return "skipped_unregistered";
    if (strcmp(skip, "no_token") == 0) return "skipped_no_token";
    if (strcmp(skip, "no_certificate") == 0 || strcmp(skip, "certificate_disabled") == 0)
        return "skipped_no_certificate";
    if (strcmp(skip, "backoff") == 0 || strcmp(skip, "circuit_open") == 0)
        return "skipped_backoff";
    if (strcmp(skip, "not_enrolled") == 0 || strcmp(skip, "not_found") == 0)
        return "skipped_not_enrolled";
    return "other";
}

/* Sends one topic's group [from, to) and sets each job's outcome. */
static void send_group(struct push_service *ps, struct job *jobs, size_t from, size_t to,
                       int64_t now, unsigned *rng)
{
    const char *topic = jobs[from].t->topic, *why = NULL;
    struct topic_client *tc = topic_client(ps, topic, &why);
    struct topic_client *known = tc ? tc : topic_find(ps, topic);
    if (known && known->open_until_ms > now * 1000) {
        why = "circuit_open";
        tc = NULL;
    }
    if (!tc) {
        for (size_t i = from; i < to; i++) {
            jobs[i].skip = why;
            if (strcmp(why, "circuit_open") == 0 && !jobs[i].e->w)
                jobs[i].requeue_ms = (int)(known->open_until_ms - now * 1000);
        }
        return;
    }
    size_t n = to - from;
    struct apns_push *items = calloc(n, sizeof *items);
    if (!items) {
        for (size_t i = from; i < to; i++)
            jobs[i].skip = "out_of_memory";
        return;
    }
    for (size_t i = 0; i < n; i++)
        items[i] = jobs[from + i].p;
    size_t answered = apns_client_send(tc->c, items, n);
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        struct job *j = &jobs[from + i];
        j->p = items[i];
        refused |= j->p.outcome == APNS_CERT_REFUSED;
    }
    free(items);
    /* The breaker counts batches where nothing got an HTTP answer. */
    if (answered == 0) {
        if (++tc->failures >= BREAKER_FAILURES) {
            tc->open_until_ms = now * 1000 + backoff_ms(rng, tc->failures);
            log_warn("apns circuit open", "topic=%s failures=%d for_ms=%lld", topic,
                     tc->failures, (long long)(tc->open_until_ms - now * 1000));
        }
    } else {
        tc->failures = 0;
    }
    if (refused) {
        const char *reason = "BadCertificate";
        for (size_t i = from; i < to; i++)
            if (jobs[i].p.outcome == APNS_CERT_REFUSED && jobs[i].p.reason[0])
                reason = jobs[i].p.reason;
        log_error("apns refused the push certificate; topic disabled until a new one is imported",
                  "topic=%s reason=%s", topic, reason);
        store_pushcert_disable(ps->send_store, topic, reason, now);
        apns_client_free(tc->c);
        tc->c = NULL;
    }
}

/* Records one job's outcome and decides a retry. */
static void record(struct push_service *ps, struct job *j, int64_t now, unsigned *rng)
{
    struct entry *e = j->e;
    if (j->skip) {
        metrics_push(skip_metric(j->skip));
        log_debug("push skipped", "id=%s why=%s", e->id, j->skip);
        if (j->t && (strcmp(j->skip, "no_certificate") == 0 ||
                     strcmp(j->skip, "certificate_disabled") == 0))
            store_push_record(ps->record_store, e->id, now, 0, j->skip, NULL, NULL, 0);
        return;
    }
    struct apns_push *p = &j->p;
    metrics_push(apns_outcome_name(p->outcome));
    const char *result = p->outcome == APNS_OK ? "ok" : p->reason[0] ? p->reason : "error";
    const char *gone = p->outcome == APNS_UNREGISTERED ? j->t->token_hex : NULL;
    int64_t backoff_until = 0;
    if (p->outcome == APNS_THROTTLED || p->outcome == APNS_RETRY) {
        if (!e->w && e->attempts + 1 < ps->retry_max) {
            j->requeue_ms = backoff_ms(rng, e->attempts);
            if (p->outcome == APNS_THROTTLED)
                backoff_until = now + j->requeue_ms / 1000;
        }
    }
    if (p->outcome == APNS_OK)
        log_debug("pushed", "id=%s apns_id=%s", e->id, p->apns_id);
    else
        log_info("push failed", "id=%s status=%ld outcome=%s reason=\"%s\"", e->id, p->status,
                 apns_outcome_name(p->outcome), p->reason);
    if (p->outcome != APNS_OK && !j->requeue_ms)
        emit_failed(ps, e->id, p);
    int rc = store_push_record(ps->record_store, e->id, now, (int)p->status, result,
                               p->apns_id[0] ? p->apns_id : NULL, gone, backoff_until);
    if (rc != STORE_OK)
        log_warn("cannot record push", "id=%s rc=%d", e->id, rc);
}

/* Hands results to waiters and requeues retries (caller holds mu). */
static void deliver(struct push_service *ps, struct job *j, int64_t now_millis)
{
    struct entry *e = j->e;
    if (e->w && e->w->out) {
        struct push_result *r = &e->w->out[e->wi];
        r->status = j->skip ? 0 : (int)j->p.status;
        snprintf(r->result, sizeof r->result, "%s",
                 j->skip ? j->skip
                 : j->p.outcome == APNS_OK ? "ok"
                 : j->p.reason[0]          ? j->p.reason
                                           : "error");
        snprintf(r->apns_id, sizeof r->apns_id, "%s", j->skip ? "" : j->p.apns_id);
    }
    if (e->w)
        waiter_release(e->w);
    ps->pending--;
    if (j->requeue_ms > 0 && !e->w) {
        struct entry **slot = hash_slot(ps, e->id);
        if (!*slot) { /* a newer request for the same id supersedes the retry */
            e->attempts++;
            e->ready_ms = now_millis + j->requeue_ms;
            e->next = ps->retry;
            ps->retry = e;
            ps->pending++;
            return;
        }
    }
    entry_free(e);
}

static void batch_free(struct batch *b)
{
    if (b) {
        free(b->jobs);
        free(b);
    }
}

/* Waits on cond until wait_ms (-1 or over a minute: a minute) passes. */
static void timed_wait(pthread_cond_t *cond, pthread_mutex_t *mu, int64_t wait_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ms = wait_ms < 0 || wait_ms > 60000 ? 60000 : wait_ms;
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cond, mu, &until);
}

/* Stage 1's work on one batch: every device looked up at once, judged,
 * and the batch sorted by topic. */
static void lookup_batch(struct push_service *ps, struct batch *b, unsigned *rng)
{
    const char **ids = malloc(b->n * sizeof *ids);
    struct store_push_target **ts = malloc(b->n * sizeof *ts);
    int rc = ids && ts ? STORE_OK : STORE_ERR;
    for (size_t i = 0; rc == STORE_OK && i < b->n; i++)
        ids[i] = b->jobs[i].e->id;
    if (rc == STORE_OK)
        rc = store_push_targets_get(ps->lookup_store, ids, b->n, ts);
    if (rc != STORE_OK)
        log_warn("push: cannot look devices up", "devices=%zu rc=%d", b->n, rc);
    for (size_t i = 0; i < b->n; i++) {
        b->jobs[i].t = rc == STORE_OK ? ts[i] : NULL;
        prepare(&b->jobs[i], rc, b->now, rng);
    }
    free(ids);
    free(ts);
    qsort(b->jobs, b->n, sizeof *b->jobs, by_topic);
}

/* Stage 1: ready entries become looked-up batches sorted by topic. Takes
 * entries only when the send stage has room, so what waits stays in the
 * queue where repeats still coalesce. */
static void *lookup_thread(void *arg)
{
    struct push_service *ps = arg;
    unsigned rng = ps->seed ^ 0x9e3779b9u;
    pthread_mutex_lock(&ps->mu);
    while (!ps->stop) {
        if (ps->to_send) {
            pthread_cond_wait(&ps->moved, &ps->mu);
            continue;
        }
        struct batch *b = calloc(1, sizeof *b);
        size_t max = ps->pending < BATCH_MAX ? ps->pending : BATCH_MAX; /* ready <= pending */
        struct job *jobs = b ? calloc(max ? max : 1, sizeof *jobs) : NULL;
        if (!jobs) {
            free(b);
            log_error("push: out of memory for a batch", "%s", "");
            timed_wait(&ps->wake, &ps->mu, 1000);
            continue;
        }
        int64_t wait_ms = -1;
        size_t n = take_ready(ps, jobs, max, now_ms(), &wait_ms);
        if (n == 0) {
            free(jobs);
            free(b);
            timed_wait(&ps->wake, &ps->mu, wait_ms);
            continue;
        }
        pthread_mutex_unlock(&ps->mu);
        b->jobs = jobs;
        b->n = n;
        b->now = (int64_t)time(NULL);
        lookup_batch(ps, b, &rng);
        pthread_mutex_lock(&ps->mu);
        ps->to_send = b;
        pthread_cond_broadcast(&ps->moved);
    }
    ps->lookup_done = 1;
    pthread_cond_broadcast(&ps->moved);
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

/* Stage 2's work on one batch: each topic's group through its client. */
static void send_batch(struct push_service *ps, struct batch *b, unsigned *rng)
{
    struct job *jobs = b->jobs;
    size_t i = 0, n = b->n;
    while (i < n && jobs[i].skip)
        i++;
    while (i < n) {
        size_t k = i + 1;
        while (k < n && strcmp(jobs[k].t->topic, jobs[i].t->topic) == 0)
            k++;
        send_group(ps, jobs, i, k, b->now, rng);
        i = k;
    }
}

/* Stage 2: sends looked-up batches; the only thread touching the topics'
 * clients. Ends once the lookup stage has and nothing waits for it. */
static void *send_thread(void *arg)
{
    struct push_service *ps = arg;
    unsigned rng = ps->seed ^ 0x85ebca6bu;
    pthread_mutex_lock(&ps->mu);
    for (;;) {
        if (ps->certs_changed) {
            ps->certs_changed = 0;
            topics_drop(ps);
        }
        if (!ps->to_send) {
            if (ps->lookup_done)
                break;
            pthread_cond_wait(&ps->moved, &ps->mu);
            continue;
        }
        struct batch *b = ps->to_send;
        ps->to_send = NULL;
        pthread_cond_broadcast(&ps->moved);
        pthread_mutex_unlock(&ps->mu);
        send_batch(ps, b, &rng);
        pthread_mutex_lock(&ps->mu);
        while (ps->to_record)
            pthread_cond_wait(&ps->moved, &ps->mu);
        ps->to_record = b;
        pthread_cond_broadcast(&ps->moved);
    }
    ps->send_done = 1;
    pthread_cond_broadcast(&ps->moved);
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

/* Stage 3's work on one batch: outcomes in transactions of RECORD_TX, then
 * waiters and retries (under mu). */
static void record_batch(struct push_service *ps, struct batch *b, unsigned *rng)
{
    for (size_t from = 0; from < b->n; from += RECORD_TX) {
        size_t to = b->n - from < RECORD_TX ? b->n : from + RECORD_TX;
        int tx = store_begin(ps->record_store) == STORE_OK;
        for (size_t k = from; k < to; k++)
            record(ps, &b->jobs[k], b->now, rng);
        if (tx && store_commit(ps->record_store) != STORE_OK)
            store_rollback(ps->record_store);
    }
    int64_t ms = now_ms();
    pthread_mutex_lock(&ps->mu);
    for (size_t k = 0; k < b->n; k++) {
        deliver(ps, &b->jobs[k], ms);
        store_push_target_free(b->jobs[k].t);
    }
    pthread_cond_signal(&ps->wake); /* retries requeued: the lookup stage's wait changes */
    pthread_mutex_unlock(&ps->mu);
}

/* Stage 3: records sent batches. Ends once the send stage has. */
static void *record_thread(void *arg)
{
    struct push_service *ps = arg;
    unsigned rng = ps->seed ^ 0xc2b2ae35u;
    pthread_mutex_lock(&ps->mu);
    for (;;) {
        if (!ps->to_record) {
            if (ps->send_done)
                break;
            pthread_cond_wait(&ps->moved, &ps->mu);
            continue;
        }
        struct batch *b = ps->to_record;
        ps->to_record = NULL;
        pthread_cond_broadcast(&ps->moved);
        pthread_mutex_unlock(&ps->mu);
        record_batch(ps, b, &rng);
        batch_free(b);
        pthread_mutex_lock(&ps->mu);
    }
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

/* Starts the stages downstream first; when one cannot start, the stage
 * before it is told its successor is done so everything started can end.
 * ps->started counts the threads running. */
static int start_threads(struct push_service *ps)
{
    if (pthread_create(&ps->record_thread, NULL, record_thread, ps) != 0)
        return -1;
    ps->started = 1;
    if (pthread_create(&ps->send_thread, NULL, send_thread, ps) != 0) {
        pthread_mutex_lock(&ps->mu);
        ps->send_done = 1;
        pthread_cond_broadcast(&ps->moved);
        pthread_mutex_unlock(&ps->mu);
        return -1;
    }
    ps->started = 2;
    if (pthread_create(&ps->lookup_thread, NULL, lookup_thread, ps) != 0) {
        pthread_mutex_lock(&ps->mu);
        ps->lookup_done = 1;
        pthread_cond_broadcast(&ps->moved);
        pthread_mutex_unlock(&ps->mu);
        return -1;
    }
    ps->started = 3;
    return 0;
}

struct push_service *push_service_new(const struct config *cfg, char **err)
{
    *err = NULL;
    struct push_service *ps = calloc(1, sizeof *ps);
    if (!ps) {
        *err = strdup("out of memory");
        return NULL;
    }
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->wake, NULL);
    pthread_cond_init(&ps->moved, NULL);
    snprintf(ps->url, sizeof ps->url, "%s", cfg->apns_url);
    snprintf(ps->ca, sizeof ps->ca, "%s", cfg->apns_ca);
    ps->apns = (struct apns_opts){
        .url = ps->url, .ca_file = ps->ca[0] ? ps->ca : NULL, .ttl = cfg->apns_expiration,
        .priority = (int)cfg->apns_priority, .connections = cfg->apns_connections,
        .streams = cfg->apns_streams, .timeout_ms = cfg->apns_timeout * 1000,
    };
    ps->coalesce_ms = cfg->push_coalesce_ms;
    ps->retry_max = cfg->push_retry_max;
    ps->repush_after = cfg->push_repush_after;
    ps->seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)ps;
    struct store **stores[] = {&ps->lookup_store, &ps->send_store, &ps->record_store};
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        char *serr = NULL;
        if (store_open(cfg->database, stores[i], &serr) != STORE_OK) {
            if (asprintf(err, "push: cannot open the database: %s", serr ? serr : "?") < 0)
                *err = NULL;
            free(serr);
            push_service_free(ps);
            return NULL;
        }
    }
    if (start_threads(ps) < 0) {
        *err = strdup("push: cannot start its threads");
        push_service_free(ps);
        return NULL;
    }
    return ps;
}

void push_service_free(struct push_service *ps)
{
    if (!ps)
        return;
    if (ps->started) {
        /* The lookup stage stops taking entries; batches already taken
         * finish sending and are recorded before the later stages end. */
        pthread_mutex_lock(&ps->mu);
        ps->stop = 1;
        pthread_cond_broadcast(&ps->wake);
        pthread_cond_broadcast(&ps->moved);
        pthread_mutex_unlock(&ps->mu);
        if (ps->started >= 3)
            pthread_join(ps->lookup_thread, NULL);
        if (ps->started >= 2)
            pthread_join(ps->send_thread, NULL);
        pthread_join(ps->record_thread, NULL);
    }
    for (struct entry *e = ps->head, *next; e; e = next) {
        next = e->next;
        if (e->w)
            waiter_release(e->w);
        entry_free(e);
    }
    for (struct entry *e = ps->retry, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    topics_drop(ps);
    store_close(ps->lookup_store);
    store_close(ps->send_store);
    store_close(ps->record_store);
    pthread_cond_destroy(&ps->wake);
    pthread_cond_destroy(&ps->moved);
    pthread_mutex_destroy(&ps->mu);
    free(ps);
}

void push_repush_job(struct store *s, void *arg, int64_t now)
{
    struct push_service *ps = arg;
    if (ps->repush_after <= 0)
        return;
    char **ids = NULL;
    size_t n = 0;
    int64_t before = now - ps->repush_after;
    int rc = store_push_due(s, now, before, before, 10000, &ids, &n);
    if (rc != STORE_OK) {
        log_warn("re-push: cannot list devices", "rc=%d", rc);
        return;
    }
    if (n) {
        log_info("re-pushing silent devices with waiting commands", "devices=%zu", n);
        if (push_devices(ps, (const char *const *)ids, n) < 0)
            log_warn("re-push: out of memory", "%s", "");
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}
