/* push.c: the push service behind push.h. Callers append entries to an
 * in-memory queue under a mutex (a hash of waiting ids coalesces repeats).
 * Three threads, each with its own store connection, form a pipeline so
 * the APNs connections are kept busy while the database works:
 *   lookup: takes ready entries in batches, looks each device up (token,
 *           PushMagic, topic, unregistered mark, back-off), sorts by topic;
 *   send:   queues each job on its topic, whose apns_client (created from
 *           the stored certificate and kept for its connections) pulls
 *           jobs onto streams as they free up and hands answers back one
 *           by one, so the connections stay full across batches; a topic
 *           whose connections keep failing opens a circuit breaker for a
 *           while, a 403 disables its certificate. A token APNs reports
 *           gone (410, 400 BadDeviceToken) is held in memory until every
 *           batch looked up before its mark was stored has been sent, so
 *           no later batch pushes it again (the gone set below);
 *   record: writes the outcomes (16 rows per upsert, a transaction per
 *           2,000), answers waiters and
 *           requeues what APNs asked to retry with jittered exponential
 *           back-off.
 * One batch at most waits for the send stage, which takes it once fewer
 * pushes wait for a stream than the connections carry; so batch n+1 is
 * looked up while batch n is in flight and batch n-1 is recorded. */
#include "core/push.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/events.h"
#include "push/apns.h"
#include "store/store.h"
#include "util/config.h"
#include "util/log.h"
#include "util/metrics.h"

#define HASH_BUCKETS 65536
/* Devices looked up together (50 per query) and recorded together. */
#define BATCH_MAX 5000
/* Outcomes are committed this many at a time, so a large batch holds
 * SQLite's write lock only briefly between check-ins' writes. */
#define RECORD_TX 2000
#define MAX_TOPICS 32
#define BREAKER_FAILURES 3
/* Completed batches waiting for the record stage before the send stage
 * stops taking new ones (bounds memory when the store is slow). */
#define RECORD_BACKLOG 2
#define GONE_BUCKETS 1024
#define SPARE_BATCHES 4
#define DELIVER_CHUNK 256

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

struct job;
struct push_service;

/* A topic's client and the jobs waiting for one of its streams (the send
 * thread's alone). */
struct topic_client {
    struct push_service *ps;
    char topic[256];
    char fingerprint[80];
    struct apns_client *c;
    int64_t open_until_ms; /* circuit breaker: no pushes before this */
    int failures_seen;     /* the client's failure count the breaker last acted on */
    int stale;             /* certificates changed: new client once this one is idle */
    int refused;           /* APNs answered 403: disable once idle */
    char refused_reason[64];
    struct job **q;        /* ring of waiting jobs */
    size_t qhead, qlen, qcap;
};

/* One batch moving through the pipeline. */
struct batch {
    struct job *jobs;
    size_t n;
    int64_t now;        /* unix seconds when it was looked up */
    uint64_t seq;       /* order in which the lookup stage took it, from 1 */
    size_t left;        /* jobs the send stage has not finished */
    size_t stale;       /* a recorded batch kept for reuse: jobs whose targets to free */
    struct batch *next; /* send stage's batches in flight, or the record queue */
};

/* A token APNs reported gone that lookups may not see yet. */
struct gone {
    struct gone *next;
    char *token;
    int64_t at;           /* the batch's time, as recorded (unregistered_at) */
    uint64_t visible_seq; /* batches from this seq on see the stored mark; UINT64_MAX until stored */
};

struct push_service {
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* new entries (lookup thread) */
    pthread_cond_t moved; /* a batch moved between stages, or a stage ended */
    pthread_t lookup_thread, send_thread, record_thread;
    int started, stop, certs_changed;
    struct batch *to_send;              /* looked up, waiting for the send stage */
    struct batch *rec_head, *rec_tail;  /* sent, waiting for the record stage */
    size_t rec_n;
    uint64_t lookup_seq;                /* seq of the last batch the lookup stage took */
    size_t batches;                     /* taken by the lookup stage, not yet recorded */
    struct batch *spare;                /* finished batches kept for reuse */
    size_t nspare;
    int lookup_done, send_done;
    int wake_fd;                        /* eventfd: wakes the send stage from its poll */
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
    /* send thread only */
    struct batch *active_head, *active_tail; /* taken, not yet finished; by seq */
    size_t queued;                           /* jobs waiting in topics' queues */
    uint64_t taken_seq;                      /* seq of the last batch taken */
    /* the gone set: send thread adds and reads, record thread marks stored */
    pthread_mutex_t gone_mu;
    struct gone *gone[GONE_BUCKETS];
    atomic_size_t ngone;
    unsigned seed;
    _Atomic(struct events *) events; /* push.failed webhooks, or NULL */
};

static void wake_send(struct push_service *ps);

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
    /* Made before taking mu, which the pipeline's threads need: a long list
     * would otherwise hold them all up while it is allocated. */
    struct entry *first = NULL, *last = NULL;
    size_t made = 0;
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
        if (last)
            last->next = e;
        else
            first = e;
        last = e;
        made++;
    }
    pthread_mutex_lock(&ps->mu);
    w->left = made;
    if (first) {
        if (ps->tail)
            ps->tail->next = first;
        else
            ps->head = first;
        ps->tail = last;
        ps->pending += made;
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
    wake_send(ps);
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
    struct batch *b;
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
            jobs[n++] = (struct job){.e = e};
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
        jobs[n++] = (struct job){.e = e};
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

/* Frees every topic's client and queue (the send stage has ended). */
static void topics_drop(struct push_service *ps)
{
    for (size_t i = 0; i < ps->ntopics; i++) {
        apns_client_free(ps->topics[i].c);
        free(ps->topics[i].q);
    }
    ps->ntopics = 0;
}

static struct apns_push *pull(void *arg);
static void pushed(struct apns_push *p, void *arg);

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
        tc->ps = ps;
        snprintf(tc->topic, sizeof tc->topic, "%s", topic);
    }
    char *err = NULL;
    struct apns_opts o = ps->apns;
    o.next = pull;
    o.done = pushed;
    o.arg = tc;
    tc->c = apns_client_new(topic, cert->cert_pem, cert->key_pem, &o, &err);
    tc->failures_seen = 0;
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

/* Counts and logs one job's outcome, decides a retry, and fills *row
 * with what to store; 0 when nothing is stored for it. */
static int record(struct push_service *ps, struct job *j, int64_t now, unsigned *rng,
                  struct store_push_outcome *row)
{
    struct entry *e = j->e;
    if (j->skip) {
        metrics_push(skip_metric(j->skip));
        log_debug("push skipped", "id=%s why=%s", e->id, j->skip);
        if (!j->t || (strcmp(j->skip, "no_certificate") != 0 &&
                      strcmp(j->skip, "certificate_disabled") != 0))
            return 0;
        *row = (struct store_push_outcome){.id = e->id, .result = j->skip};
        return 1;
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
    *row = (struct store_push_outcome){.id = e->id, .status = (int)p->status, .result = result,
                                       .apns_id = p->apns_id[0] ? p->apns_id : NULL,
                                       .unregistered_token = gone,
                                       .backoff_until = backoff_until};
    return 1;
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

/* Frees the targets a recorded batch still holds. The lookup stage does it
 * before reusing the batch, so targets are freed on the thread that
 * allocated them, just before it allocates as many again: the heap stays
 * the same size instead of shrinking and growing (and page-faulting) per
 * batch. */
static void batch_drop_targets(struct batch *b)
{
    for (size_t k = 0; k < b->stale; k++)
        store_push_target_free(b->jobs[k].t);
    b->stale = 0;
}

static void batch_free(struct batch *b)
{
    if (b) {
        batch_drop_targets(b);
        free(b->jobs);
        free(b);
    }
}

/* A batch with room for BATCH_MAX jobs: a spare one, or new (caller holds
 * mu). */
static struct batch *batch_get(struct push_service *ps)
{
    struct batch *b = ps->spare;
    if (b) {
        ps->spare = b->next;
        ps->nspare--;
    } else if ((b = calloc(1, sizeof *b)) != NULL &&
               !(b->jobs = malloc(BATCH_MAX * sizeof *b->jobs))) {
        free(b);
        return NULL;
    }
    b->next = NULL;
    b->n = b->left = 0;
    return b;
}

/* Keeps a finished batch for the next one (caller holds mu): its memory
 * stays mapped, so a push storm does not page-fault a megabyte per batch. */
static void batch_put(struct push_service *ps, struct batch *b)
{
    if (ps->nspare >= SPARE_BATCHES) {
        batch_free(b);
        return;
    }
    b->next = ps->spare;
    ps->spare = b;
    ps->nspare++;
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
    /* Sorted so each topic's jobs come together; the usual single topic
     * needs no sort. */
    const char *topic = NULL;
    int mixed = 0;
    for (size_t i = 0; i < b->n && !mixed; i++) {
        const struct job *j = &b->jobs[i];
        if (j->skip)
            continue;
        if (!topic)
            topic = j->t->topic;
        else
            mixed = strcmp(topic, j->t->topic) != 0;
    }
    if (mixed)
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
        struct batch *b = batch_get(ps);
        if (!b) {
            log_error("push: out of memory for a batch", "%s", "");
            timed_wait(&ps->wake, &ps->mu, 1000);
            continue;
        }
        if (b->stale) {
            pthread_mutex_unlock(&ps->mu);
            batch_drop_targets(b);
            pthread_mutex_lock(&ps->mu);
        }
        /* An idle pipeline starts with small batches, so the first pushes
         * go out while the bulk is still being looked up. */
        static const size_t ramp[] = {500, 2000};
        size_t max = ps->batches < 2 ? ramp[ps->batches] : BATCH_MAX;
        int64_t wait_ms = -1;
        size_t n = take_ready(ps, b->jobs, max, now_ms(), &wait_ms);
        if (n == 0) {
            batch_put(ps, b);
            timed_wait(&ps->wake, &ps->mu, wait_ms);
            continue;
        }
        b->seq = ++ps->lookup_seq;
        ps->batches++;
        pthread_mutex_unlock(&ps->mu);
        b->n = n;
        b->now = (int64_t)time(NULL);
        lookup_batch(ps, b, &rng);
        pthread_mutex_lock(&ps->mu);
        ps->to_send = b;
        pthread_cond_broadcast(&ps->moved);
        wake_send(ps);
    }
    ps->lookup_done = 1;
    pthread_cond_broadcast(&ps->moved);
    wake_send(ps);
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

/* ---- the gone set ------------------------------------------------------------
 * A token APNs reports gone is marked in the store by the record stage,
 * but batches already looked up do not see that mark; until they have all
 * been sent, the send stage checks them against this set. An entry is made
 * visible (gone_stored) once the record stage committed the mark, with the
 * seq of the first batch whose lookup started after that; it is dropped once
 * no batch older than that seq is left to send. */

static struct gone **gone_slot(struct push_service *ps, const char *token)
{
    struct gone **pp = &ps->gone[hash_id(token) % GONE_BUCKETS];
    while (*pp && strcmp((*pp)->token, token) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* APNs just reported token gone (send thread). */
static void gone_add(struct push_service *ps, const char *token, int64_t at)
{
    pthread_mutex_lock(&ps->gone_mu);
    struct gone **slot = gone_slot(ps, token), *g = *slot;
    if (!g && (g = calloc(1, sizeof *g)) != NULL && !(g->token = strdup(token))) {
        free(g);
        g = NULL;
    }
    if (!g) {
        log_warn("push: out of memory remembering a gone token", "%s", "");
    } else {
        if (!*slot) {
            *slot = g;
            atomic_fetch_add(&ps->ngone, 1);
        }
        g->at = at > g->at ? at : g->at;
        g->visible_seq = UINT64_MAX;
    }
    pthread_mutex_unlock(&ps->gone_mu);
}

/* 1 when t's token was reported gone after its last TokenUpdate, as the
 * store will say once the mark is recorded (send thread). */
static int gone_has(struct push_service *ps, const struct store_push_target *t)
{
    if (atomic_load(&ps->ngone) == 0)
        return 0;
    pthread_mutex_lock(&ps->gone_mu);
    struct gone *g = *gone_slot(ps, t->token_hex);
    int gone = g && t->token_updated_at <= g->at;
    pthread_mutex_unlock(&ps->gone_mu);
    return gone;
}

/* The record stage stored token's mark; batches from seq on see it. */
static void gone_stored(struct push_service *ps, const char *token, uint64_t seq)
{
    pthread_mutex_lock(&ps->gone_mu);
    struct gone *g = *gone_slot(ps, token);
    if (g && g->visible_seq == UINT64_MAX)
        g->visible_seq = seq;
    pthread_mutex_unlock(&ps->gone_mu);
}

/* Drops entries every batch still to be sent (seq >= oldest) can see. */
static void gone_prune(struct push_service *ps, uint64_t oldest)
{
    if (atomic_load(&ps->ngone) == 0)
        return;
    pthread_mutex_lock(&ps->gone_mu);
    for (size_t i = 0; i < GONE_BUCKETS; i++)
        for (struct gone **pp = &ps->gone[i]; *pp;) {
            struct gone *g = *pp;
            if (g->visible_seq <= oldest) {
                *pp = g->next;
                free(g->token);
                free(g);
                atomic_fetch_sub(&ps->ngone, 1);
            } else {
                pp = &g->next;
            }
        }
    pthread_mutex_unlock(&ps->gone_mu);
}


/* ---- the send stage ------------------------------------------------------------ */

static void wake_send(struct push_service *ps)
{
    uint64_t one = 1;
    if (write(ps->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("push: cannot wake the send stage", "err=\"%s\"", strerror(errno));
}

/* j is finished as far as sending goes (outcome or skip set). */
static void job_done(struct job *j)
{
    j->b->left--;
}

static int queue_push(struct push_service *ps, struct topic_client *tc, struct job *j)
{
    if (tc->qlen == tc->qcap) {
        size_t cap = tc->qcap ? tc->qcap * 2 : 1024;
        struct job **q = malloc(cap * sizeof *q);
        if (!q)
            return -1;
        for (size_t i = 0; i < tc->qlen; i++)
            q[i] = tc->q[(tc->qhead + i) % tc->qcap];
        free(tc->q);
        tc->q = q;
        tc->qcap = cap;
        tc->qhead = 0;
    }
    tc->q[(tc->qhead + tc->qlen++) % tc->qcap] = j;
    ps->queued++;
    return 0;
}

static struct job *queue_pop(struct push_service *ps, struct topic_client *tc)
{
    if (tc->qlen == 0)
        return NULL;
    struct job *j = tc->q[tc->qhead];
    tc->qhead = (tc->qhead + 1) % tc->qcap;
    tc->qlen--;
    ps->queued--;
    return j;
}

/* Ends every job waiting on tc as not sent, for why (retried after
 * requeue_ms when that is > 0 and the push is asynchronous). */
static void queue_drain(struct push_service *ps, struct topic_client *tc, const char *why,
                        int requeue_ms)
{
    for (struct job *j; (j = queue_pop(ps, tc)) != NULL;) {
        j->skip = why;
        if (requeue_ms > 0 && !j->e->w)
            j->requeue_ms = requeue_ms;
        job_done(j);
    }
}

/* apns_opts.next: the topic's next job to push, skipping tokens just
 * reported gone. */
static struct apns_push *pull(void *arg)
{
    struct topic_client *tc = arg;
    struct push_service *ps = tc->ps;
    if (tc->stale || tc->refused || tc->open_until_ms)
        return NULL;
    for (struct job *j; (j = queue_pop(ps, tc)) != NULL;) {
        if (gone_has(ps, j->t)) {
            j->skip = "unregistered";
            job_done(j);
            continue;
        }
        j->p.user = j;
        return &j->p;
    }
    return NULL;
}

/* apns_opts.done: APNs' answer for one job (or why there was none). */
static void pushed(struct apns_push *p, void *arg)
{
    struct topic_client *tc = arg;
    struct job *j = p->user;
    if (p->outcome == APNS_UNREGISTERED)
        gone_add(tc->ps, j->t->token_hex, j->b->now);
    if (p->outcome == APNS_CERT_REFUSED && !tc->refused) {
        tc->refused = 1;
        snprintf(tc->refused_reason, sizeof tc->refused_reason, "%s",
                 p->reason[0] ? p->reason : "BadCertificate");
    }
    job_done(j);
}

/* Puts a looked-up batch's jobs on their topics' queues (or ends them at
 * once when they cannot be sent). */
static void dispatch(struct push_service *ps, struct batch *b)
{
    int64_t ms = now_ms();
    b->left = b->n;
    b->next = NULL;
    if (ps->active_tail)
        ps->active_tail->next = b;
    else
        ps->active_head = b;
    ps->active_tail = b;
    ps->taken_seq = b->seq;
    struct topic_client *tc = NULL;
    for (size_t i = 0; i < b->n; i++) {
        struct job *j = &b->jobs[i];
        j->b = b;
        if (j->skip) {
            job_done(j);
            continue;
        }
        if (!tc || strcmp(tc->topic, j->t->topic) != 0) { /* a topic's jobs come together */
            const char *why = NULL;
            tc = topic_find(ps, j->t->topic);
            if (!tc || (!tc->c && !tc->stale))
                tc = topic_client(ps, j->t->topic, &why);
            if (!tc) {
                size_t k = i;
                for (; k < b->n && !b->jobs[k].skip &&
                       strcmp(b->jobs[k].t->topic, j->t->topic) == 0;
                     k++) {
                    b->jobs[k].b = b;
                    b->jobs[k].skip = why;
                    job_done(&b->jobs[k]);
                }
                i = k - 1;
                continue;
            }
        }
        if (tc->open_until_ms > ms) {
            j->skip = "circuit_open";
            if (!j->e->w)
                j->requeue_ms = (int)(tc->open_until_ms - ms);
            job_done(j);
        } else if (queue_push(ps, tc, j) < 0) {
            j->skip = "out_of_memory";
            job_done(j);
        }
    }
}

/* Between rounds: the circuit breaker, a refused certificate, replaced
 * certificates, and clients for topics whose jobs wait without one. */
static void topics_tend(struct push_service *ps, unsigned *rng)
{
    int64_t ms = now_ms();
    for (size_t i = 0; i < ps->ntopics; i++) {
        struct topic_client *tc = &ps->topics[i];
        if (tc->open_until_ms && tc->open_until_ms <= ms)
            tc->open_until_ms = 0; /* half open: the next push tries again */
        int f = tc->c ? apns_client_failures(tc->c) : 0;
        if (f < tc->failures_seen)
            tc->failures_seen = f;
        if (f >= BREAKER_FAILURES && f > tc->failures_seen) {
            tc->failures_seen = f;
            tc->open_until_ms = ms + backoff_ms(rng, f);
            log_warn("apns circuit open", "topic=%s failures=%d for_ms=%lld", tc->topic, f,
                     (long long)(tc->open_until_ms - ms));
        }
        if (tc->open_until_ms)
            queue_drain(ps, tc, "circuit_open", (int)(tc->open_until_ms - ms));
        if (tc->refused && tc->c && apns_client_inflight(tc->c) == 0) {
            log_error("apns refused the push certificate; topic disabled until a new one is "
                      "imported",
                      "topic=%s reason=%s", tc->topic, tc->refused_reason);
            store_pushcert_disable(ps->send_store, tc->topic, tc->refused_reason, ms / 1000);
            apns_client_free(tc->c);
            tc->c = NULL;
            tc->refused = 0;
            queue_drain(ps, tc, "certificate_disabled", 0);
        }
        if (tc->stale && (!tc->c || apns_client_inflight(tc->c) == 0)) {
            apns_client_free(tc->c);
            tc->c = NULL;
            tc->stale = 0;
        }
        if (!tc->c && tc->qlen > 0) {
            const char *why = NULL;
            if (!topic_client(ps, tc->topic, &why))
                queue_drain(ps, tc, why, 0);
        }
    }
}

/* Moves finished batches to the record stage (takes mu). */
static void hand_over(struct push_service *ps)
{
    struct batch *done = NULL, **tail = &done;
    for (struct batch **pp = &ps->active_head, *prev = NULL; *pp;) {
        struct batch *b = *pp;
        if (b->left > 0) {
            prev = b;
            pp = &b->next;
            continue;
        }
        *pp = b->next;
        if (ps->active_tail == b)
            ps->active_tail = prev;
        b->next = NULL;
        *tail = b;
        tail = &b->next;
    }
    gone_prune(ps, ps->active_head ? ps->active_head->seq : ps->taken_seq + 1);
    if (!done)
        return;
    pthread_mutex_lock(&ps->mu);
    for (struct batch *b = done, *next; b; b = next) {
        next = b->next;
        b->next = NULL;
        if (ps->rec_tail)
            ps->rec_tail->next = b;
        else
            ps->rec_head = b;
        ps->rec_tail = b;
        ps->rec_n++;
    }
    pthread_cond_broadcast(&ps->moved);
    pthread_mutex_unlock(&ps->mu);
}

/* Stage 2: keeps the topics' connections full; the only thread touching
 * their clients. Takes the next looked-up batch once fewer jobs wait for a
 * stream than the connections carry, and ends once the lookup stage has
 * and every batch taken is finished. */
static void *send_thread(void *arg)
{
    struct push_service *ps = arg;
    unsigned rng = ps->seed ^ 0x85ebca6bu;
    /* Writes to a connection APNs closed fail with EPIPE instead of a
     * SIGPIPE ending the process (steward ignores it too; this thread's
     * mask makes the service safe in any program). */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    size_t window = (size_t)(ps->apns.connections > 0 ? ps->apns.connections : 2) *
                    (size_t)(ps->apns.streams > 0 ? ps->apns.streams : 500);
    for (;;) {
        struct batch *b = NULL;
        pthread_mutex_lock(&ps->mu);
        if (ps->certs_changed) {
            ps->certs_changed = 0;
            for (size_t i = 0; i < ps->ntopics; i++)
                ps->topics[i].stale = 1;
        }
        if (ps->to_send && ps->queued < window && ps->rec_n < RECORD_BACKLOG) {
            b = ps->to_send;
            ps->to_send = NULL;
            pthread_cond_broadcast(&ps->moved);
        }
        int end = ps->lookup_done && !ps->to_send && !b && !ps->active_head;
        pthread_mutex_unlock(&ps->mu);
        if (end)
            break;
        if (b)
            dispatch(ps, b);
        topics_tend(ps, &rng);
        struct apns_client *cs[MAX_TOPICS];
        size_t n = 0;
        for (size_t i = 0; i < ps->ntopics; i++)
            if (ps->topics[i].c)
                cs[n++] = ps->topics[i].c;
        /* Waits for answers, timers, or the wake fd (a batch looked up, one
         * recorded, stop); a second at most, for the breaker's clock. */
        uint64_t count;
        if (apns_clients_run(cs, n, ps->wake_fd, b ? 0 : 1000) &&
            read(ps->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
            log_warn("push: cannot read the wake fd", "err=\"%s\"", strerror(errno));
        hand_over(ps);
    }
    pthread_mutex_lock(&ps->mu);
    ps->send_done = 1;
    pthread_cond_broadcast(&ps->moved);
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

/* Stage 3's work on one batch: outcomes in transactions of RECORD_TX, then
 * waiters and retries (under mu). */
static void record_batch(struct push_service *ps, struct batch *b, unsigned *rng)
{
    struct store_push_outcome rows[RECORD_TX];
    for (size_t from = 0; from < b->n; from += RECORD_TX) {
        size_t to = b->n - from < RECORD_TX ? b->n : from + RECORD_TX, n = 0;
        for (size_t k = from; k < to; k++)
            n += (size_t)record(ps, &b->jobs[k], b->now, rng, &rows[n]);
        int tx = store_begin(ps->record_store) == STORE_OK;
        int rc = store_push_record_many(ps->record_store, rows, n, b->now);
        if (rc != STORE_OK)
            log_warn("cannot record some pushes", "pushes=%zu rc=%d", n, rc);
        if (tx && store_commit(ps->record_store) != STORE_OK)
            store_rollback(ps->record_store);
    }
    int64_t ms = now_ms();
    uint64_t visible = 0;
    /* mu is taken for DELIVER_CHUNK jobs at a time: the send stage takes it
     * every round and must not wait for a whole batch. */
    for (size_t from = 0; from < b->n; from += DELIVER_CHUNK) {
        size_t to = b->n - from < DELIVER_CHUNK ? b->n : from + DELIVER_CHUNK;
        pthread_mutex_lock(&ps->mu);
        /* Committed: batches the lookup stage takes from now on see the marks. */
        if (!visible)
            visible = ps->lookup_seq + 1;
        for (size_t k = from; k < to; k++) {
            struct job *j = &b->jobs[k];
            if (!j->skip && j->p.outcome == APNS_UNREGISTERED)
                gone_stored(ps, j->t->token_hex, visible);
            deliver(ps, j, ms);
        }
        pthread_cond_signal(&ps->wake); /* retries requeued: the lookup stage's wait changes */
        pthread_mutex_unlock(&ps->mu);
    }
    b->stale = b->n; /* targets freed by the lookup stage (batch_drop_targets) */
}

/* Stage 3: records sent batches. Ends once the send stage has. */
static void *record_thread(void *arg)
{
    struct push_service *ps = arg;
    unsigned rng = ps->seed ^ 0xc2b2ae35u;
    pthread_mutex_lock(&ps->mu);
    for (;;) {
        if (!ps->rec_head) {
            if (ps->send_done)
                break;
            pthread_cond_wait(&ps->moved, &ps->mu);
            continue;
        }
        struct batch *b = ps->rec_head;
        ps->rec_head = b->next;
        if (!ps->rec_head)
            ps->rec_tail = NULL;
        ps->rec_n--;
        wake_send(ps); /* the send stage may have been waiting for room here */
        pthread_mutex_unlock(&ps->mu);
        record_batch(ps, b, &rng);
        pthread_mutex_lock(&ps->mu);
        ps->batches--;
        batch_put(ps, b);
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
    pthread_mutex_init(&ps->gone_mu, NULL);
    pthread_cond_init(&ps->wake, NULL);
    pthread_cond_init(&ps->moved, NULL);
    ps->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ps->wake_fd < 0) {
        *err = strdup("push: cannot make an eventfd");
        push_service_free(ps);
        return NULL;
    }
    snprintf(ps->url, sizeof ps->url, "%s", cfg->apns_url);
    snprintf(ps->ca, sizeof ps->ca, "%s", cfg->apns_ca);
    ps->apns = (struct apns_opts){
        .url = ps->url, .ca_file = ps->ca[0] ? ps->ca : NULL, .ttl = cfg->apns_expiration,
        .priority = (int)cfg->apns_priority, .connections = cfg->apns_connections,
        .streams = cfg->apns_streams, .timeout_ms = cfg->apns_timeout * 1000,
        .ping_interval_ms = cfg->apns_ping_interval * 1000,
        .ping_timeout_ms = cfg->apns_ping_timeout * 1000,
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
        wake_send(ps);
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
    gone_prune(ps, UINT64_MAX);
    for (struct batch *b = ps->spare, *next; b; b = next) {
        next = b->next;
        batch_free(b);
    }
    store_close(ps->lookup_store);
    store_close(ps->send_store);
    store_close(ps->record_store);
    if (ps->wake_fd >= 0)
        close(ps->wake_fd);
    pthread_cond_destroy(&ps->wake);
    pthread_cond_destroy(&ps->moved);
    pthread_mutex_destroy(&ps->gone_mu);
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
