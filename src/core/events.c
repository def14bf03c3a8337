/* events.c: event fan-out to webhooks (events.h). Handler threads append to
 * an in-memory list under a mutex; the delivery thread moves it into the
 * store (one pending delivery per subscribed webhook), then claims due
 * deliveries and POSTs them with libcurl (one reused handle: keep-alive to
 * each receiver), recording every attempt. */
#include "core/events.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"

#define EVENTS_MEMORY_MAX 100000 /* queued in memory before the thread stores them */
#define EVENTS_CACHE_SECS 5      /* subscription cache lifetime (other nodes' changes) */
#define EVENTS_CLAIM_BATCH 100
#define EVENTS_KEYS_PENDING 32   /* distinct API keys whose use waits to be recorded */

struct pending_event {
    struct pending_event *next;
    char *type;
    char *id;
    char *body; /* the JSON sent */
};

struct events {
    const struct config *cfg;
    struct store *store; /* the delivery thread's */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop;
    int poked;
    struct pending_event *head, *tail;
    size_t queued;
    /* subscription cache: the filters of enabled webhooks */
    char **filters;
    size_t nfilters;
    int64_t cache_at; /* 0 = stale */
    CURL *curl;
    char used_keys[EVENTS_KEYS_PENDING][65];
    size_t nused;
};

/* ---- pure helpers ---------------------------------------------------------- */

int events_filter_match(const char *filter, const char *type)
{
    if (!filter || !type)
        return 0;
    const char *p = filter;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && p[m - 1] == ' ')
            m--;
        if (m == 1 && p[0] == '*')
            return 1;
        if (m >= 2 && p[m - 1] == '*' && p[m - 2] == '.' && strncmp(type, p, m - 1) == 0)
            return 1;
        if (m && strlen(type) == m && strncmp(type, p, m) == 0)
            return 1;
        p += n;
    }
    return 0;
}

int events_sign(const char *secret, int64_t t, const char *body, size_t len, char *out,
                size_t outlen)
{
    char ts[24];
    int tl = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    /* HMAC over "<t>." followed by the body, in one pass. */
    EVP_MAC *hm = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = hm ? EVP_MAC_CTX_new(hm) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t ml = 0;
    int ok = ctx && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tl) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)body, len) == 1 &&
             EVP_MAC_final(ctx, mac, &ml, sizeof mac) == 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(hm);
    maclen = (unsigned int)ml;
    if (!ok || maclen != 32)
        return -1;
    char hex[65];
    ids_hex(mac, maclen, hex);
    return snprintf(out, outlen, "t=%lld,v1=%s", (long long)t, hex) < (int)outlen ? 0 : -1;
}

int64_t events_backoff(int64_t base, int64_t attempts)
{
    int64_t d = base > 0 ? base : 1;
    for (int64_t i = 1; i < attempts && d < 3600; i++)
        d *= 2;
    return d < 3600 ? d : 3600;
}

/* ---- emitting -------------------------------------------------------------- */

static void pending_free(struct pending_event *p)
{
    if (!p)
        return;
    free(p->type);
    free(p->id);
    free(p->body);
    free(p);
}

static int cache_refresh(struct events *ev, int64_t now);

int events_wanted(struct events *ev, const char *type)
{
    if (!ev)
        return 0;
    int yes = 0;
    pthread_mutex_lock(&ev->mu);
    for (size_t i = 0; i < ev->nfilters && !yes; i++)
        yes = events_filter_match(ev->filters[i], type);
    pthread_mutex_unlock(&ev->mu);
    return yes;
}

static char *iso_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

void events_emit(struct events *ev, const char *type, json_t *data)
{
    if (!ev || !events_wanted(ev, type)) {
        json_decref(data);
        return;
    }
    char id[UUID_STR_LEN], at[32];
    json_t *env = json_object();
    if (!env || ids_uuid(id) < 0) {
        json_decref(env);
        json_decref(data);
        return;
    }
    json_object_set_new(env, "topic", json_string(type));
    json_object_set_new(env, "event_id", json_string(id));
    json_object_set_new(env, "created_at", json_string(iso_time((int64_t)time(NULL), at, sizeof at)));
    if (json_is_object(data))
        json_object_update(env, data);
    json_decref(data);
    struct pending_event *p = calloc(1, sizeof *p);
    if (p) {
        p->type = strdup(type);
        p->id = strdup(id);
        p->body = json_dumps(env, JSON_COMPACT);
    }
    json_decref(env);
    if (!p || !p->type || !p->id || !p->body) {
        pending_free(p);
        log_warn("event dropped", "type=%s reason=out_of_memory", type);
        return;
    }
    pthread_mutex_lock(&ev->mu);
    if (ev->queued >= EVENTS_MEMORY_MAX) {
        pthread_mutex_unlock(&ev->mu);
        log_warn("event dropped", "type=%s reason=queue_full", type);
        pending_free(p);
        return;
    }
    if (ev->tail)
        ev->tail->next = p;
    else
        ev->head = p;
    ev->tail = p;
    ev->queued++;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
}

void events_reload(struct events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    ev->cache_at = 0;
    ev->poked = 1;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
}

void events_poke(struct events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    ev->poked = 1;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
}

void events_key_used(struct events *ev, const char *key_hash)
{
    if (!ev || !key_hash || strlen(key_hash) != 64)
        return;
    pthread_mutex_lock(&ev->mu);
    size_t i = 0;
    while (i < ev->nused && strcmp(ev->used_keys[i], key_hash) != 0)
        i++;
    if (i == ev->nused && ev->nused < EVENTS_KEYS_PENDING)
        memcpy(ev->used_keys[ev->nused++], key_hash, 65);
    pthread_mutex_unlock(&ev->mu);
}

/* Writes the pending key uses (the delivery thread). */
static void record_key_uses(struct events *ev, int64_t now)
{
    char keys[EVENTS_KEYS_PENDING][65];
    pthread_mutex_lock(&ev->mu);
    size_t n = ev->nused;
    memcpy(keys, ev->used_keys, n * sizeof keys[0]);
    ev->nused = 0;
    pthread_mutex_unlock(&ev->mu);
    for (size_t i = 0; i < n; i++)
        if (store_apikey_touch(ev->store, keys[i], now) != STORE_OK)
            log_debug("api key use not recorded", "%s", "");
}

static json_t *raw_json(const uint8_t *raw, size_t len)
{
    char *b64 = raw && len ? ids_b64_encode(raw, len) : NULL;
    json_t *j = b64 ? json_string(b64) : json_null();
    free(b64);
    return j;
}

void events_mdm_checkin(struct events *ev, const char *message_type, const char *udid,
                        const char *enrollment_id, const uint8_t *raw, size_t len)
{
    char topic[64];
    snprintf(topic, sizeof topic, "mdm.%s", message_type);
    if (!events_wanted(ev, topic))
        return;
    events_emit(ev, topic,
                json_pack("{s:{s:s?,s:s?,s:{},s:o}}", "checkin_event", "udid", udid,
                          "enrollment_id", enrollment_id, "url_params", "raw_payload",
                          raw_json(raw, len)));
}

void events_mdm_connect(struct events *ev, const char *id, const char *udid, const char *status,
                        const char *command_uuid, const uint8_t *raw, size_t len)
{
    if (!ev || !status || strcmp(status, "Idle") == 0)
        return;
    if (events_wanted(ev, "mdm.Connect"))
        events_emit(ev, "mdm.Connect",
                    json_pack("{s:{s:s?,s:s?,s:s,s:s?,s:{},s:o}}", "acknowledge_event", "udid", udid,
                              "enrollment_id", id, "status", status, "command_uuid", command_uuid,
                              "url_params", "raw_payload", raw_json(raw, len)));
    int failed = strcmp(status, "Error") == 0 || strcmp(status, "CommandFormatError") == 0;
    const char *types[2] = {NULL, NULL};
    if (strcmp(status, "NotNow") == 0) {
        types[0] = "command.not_now";
    } else {
        types[0] = "command.completed";
        types[1] = failed ? "command.failed" : NULL;
    }
    for (int i = 0; i < 2 && types[i]; i++)
        if (events_wanted(ev, types[i]))
            events_emit(ev, types[i],
                        json_pack("{s:{s:s?,s:s},s:{s:s?,s:s},s:o}", "device", "id", id, "udid",
                                  udid ? udid : "", "command", "uuid", command_uuid, "status",
                                  status, "raw_payload", raw_json(raw, len)));
}

void events_device(struct events *ev, const char *type, const char *id)
{
    if (events_wanted(ev, type))
        events_emit(ev, type, json_pack("{s:{s:s}}", "device", "id", id));
}

/* ---- the delivery thread --------------------------------------------------- */

static void filters_free(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i]);
    free(f);
}

/* Reloads the enabled webhooks' filters when stale. 0 or a store_rc. */
static int cache_refresh(struct events *ev, int64_t now)
{
    pthread_mutex_lock(&ev->mu);
    int fresh = ev->cache_at && now - ev->cache_at < EVENTS_CACHE_SECS;
    pthread_mutex_unlock(&ev->mu);
    if (fresh)
        return STORE_OK;
    struct store_webhook *list = NULL;
    size_t n = 0;
    int rc = store_webhook_list(ev->store, 1, &list, &n);
    if (rc != STORE_OK)
        return rc;
    char **f = calloc(n ? n : 1, sizeof *f);
    for (size_t i = 0; f && i < n; i++) {
        f[i] = list[i].events;
        list[i].events = NULL;
    }
    store_webhooks_free(list, n);
    if (!f)
        return STORE_ERR;
    pthread_mutex_lock(&ev->mu);
    char **old = ev->filters;
    size_t oldn = ev->nfilters;
    ev->filters = f;
    ev->nfilters = n;
    ev->cache_at = now;
    pthread_mutex_unlock(&ev->mu);
    filters_free(old, oldn);
    return STORE_OK;
}

/* Stores the events taken from memory: one delivery per subscribed enabled
 * webhook, all in one transaction. */
static void store_events(struct events *ev, struct pending_event *list, int64_t now)
{
    if (!list)
        return;
    struct store_webhook *hooks = NULL;
    size_t nh = 0;
    int rc = store_webhook_list(ev->store, 1, &hooks, &nh);
    if (rc == STORE_OK)
        rc = store_begin(ev->store);
    size_t stored = 0;
    for (struct pending_event *p = list; rc == STORE_OK && p; p = p->next)
        for (size_t i = 0; rc == STORE_OK && i < nh; i++)
            if (events_filter_match(hooks[i].events, p->type)) {
                rc = store_delivery_add(ev->store, hooks[i].id, p->id, p->type, p->body, now, NULL);
                stored++;
            }
    if (rc == STORE_OK)
        rc = store_commit(ev->store);
    else if (hooks)
        (void)store_rollback(ev->store);
    if (rc != STORE_OK)
        log_error("events not stored", "rc=%d", rc);
    else if (stored)
        log_debug("events stored", "deliveries=%zu", stored);
    store_webhooks_free(hooks, nh);
    while (list) {
        struct pending_event *next = list->next;
        pending_free(list);
        list = next;
    }
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* One POST. Returns the HTTP status (0 when none came) with err set on failure. */
static long post_one(struct events *ev, const struct store_delivery *d, int64_t now, char *err,
                     size_t errlen)
{
    char sig[160], h_sig[200], h_event[160], h_id[120], h_ts[64];
    err[0] = '\0';
    if (events_sign(d->secret, now, d->payload, strlen(d->payload), sig, sizeof sig) < 0) {
        snprintf(err, errlen, "cannot sign");
        return 0;
    }
    snprintf(h_sig, sizeof h_sig, "X-Steward-Signature: %s", sig);
    snprintf(h_event, sizeof h_event, "X-Steward-Event: %s", d->event_type);
    snprintf(h_id, sizeof h_id, "X-Steward-Delivery: %s", d->event_id);
    snprintf(h_ts, sizeof h_ts, "X-Steward-Timestamp: %lld", (long long)now);
    struct curl_slist *hs = NULL, *t;
    const char *lines[] = {"Content-Type: application/json", "User-Agent: steward-webhooks",
                           h_sig, h_event, h_id, h_ts, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        t = curl_slist_append(hs, lines[i]);
        if (!t) {
            curl_slist_free_all(hs);
            snprintf(err, errlen, "out of memory");
            return 0;
        }
        hs = t;
    }
    CURL *c = ev->curl;
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, d->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(d->payload));
    curl_easy_setopt(c, CURLOPT_TIMEOUT, ev->cfg->webhook_timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, ev->cfg->webhook_timeout < 5 ? ev->cfg->webhook_timeout : 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    if (cc != CURLE_OK)
        snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(cc));
    else if (status < 200 || status > 299)
        snprintf(err, errlen, "receiver answered %ld", status);
    return status;
}

/* One attempt's outcome, kept until the batch's results are written. */
struct attempt {
    const char *state;
    int64_t attempts, next;
    long status;
    char err[300];
};

static void deliver_one(struct events *ev, const struct store_delivery *d, struct attempt *a)
{
    int64_t now = (int64_t)time(NULL);
    a->status = post_one(ev, d, now, a->err, sizeof a->err);
    a->attempts = d->attempts + 1;
    a->next = 0;
    if (!a->err[0]) {
        a->state = "delivered";
    } else if (a->attempts >= ev->cfg->webhook_max_attempts) {
        a->state = "failed";
    } else {
        a->state = "pending";
        a->next = (int64_t)time(NULL) + events_backoff(ev->cfg->webhook_retry_base, a->attempts);
    }
    char q[200];
    if (a->err[0])
        log_warn("webhook delivery failed", "webhook=%lld delivery=%lld event=%s attempt=%lld "
                 "err=%s next=%s", (long long)d->webhook_id, (long long)d->id, d->event_type,
                 (long long)a->attempts, log_quote(q, sizeof q, a->err), a->state);
    else
        log_debug("webhook delivered", "webhook=%lld delivery=%lld event=%s status=%ld",
                  (long long)d->webhook_id, (long long)d->id, d->event_type, a->status);
}

/* Writes a batch's outcomes in one transaction (no lock is held while
 * sending). A crash before this point re-sends the batch once the lease
 * ends: receivers see at-least-once delivery and can de-duplicate on
 * X-Steward-Delivery. */
static void record_attempts(struct events *ev, const struct store_delivery *list,
                            const struct attempt *a, size_t n)
{
    int64_t now = (int64_t)time(NULL);
    int rc = store_begin(ev->store);
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        rc = store_delivery_result(ev->store, list[i].id, a[i].state, a[i].attempts, a[i].next,
                                   a[i].status, a[i].err[0] ? a[i].err : NULL, now);
        if (rc == STORE_NOTFOUND)
            rc = STORE_OK; /* its webhook was deleted meanwhile */
    }
    if (rc == STORE_OK)
        rc = store_commit(ev->store);
    else
        (void)store_rollback(ev->store);
    if (rc != STORE_OK)
        log_error("webhook delivery results not stored", "count=%zu rc=%d", n, rc);
}

/* Sends what is due. Returns how many were claimed. */
static size_t deliver_due(struct events *ev)
{
    struct store_delivery *list = NULL;
    size_t n = 0;
    int64_t lease = ev->cfg->webhook_timeout * EVENTS_CLAIM_BATCH + 30;
    int rc = store_delivery_claim(ev->store, (int64_t)time(NULL), lease, EVENTS_CLAIM_BATCH, &list, &n);
    if (rc != STORE_OK) {
        log_warn("webhook deliveries not claimed", "rc=%d", rc);
        return 0;
    }
    struct attempt *a = n ? calloc(n, sizeof *a) : NULL;
    size_t done = 0;
    for (size_t i = 0; a && i < n; i++) {
        pthread_mutex_lock(&ev->mu);
        int stop = ev->stop;
        pthread_mutex_unlock(&ev->mu);
        if (stop)
            break; /* the rest are retried when their lease runs out */
        deliver_one(ev, &list[i], &a[i]);
        done++;
    }
    if (done)
        record_attempts(ev, list, a, done);
    free(a);
    store_deliveries_free(list, n);
    return n;
}

static void *events_main(void *arg)
{
    struct events *ev = arg;
    for (;;) {
        pthread_mutex_lock(&ev->mu);
        struct pending_event *taken = ev->head;
        ev->head = ev->tail = NULL;
        ev->queued = 0;
        int stop = ev->stop;
        ev->poked = 0;
        pthread_mutex_unlock(&ev->mu);
        int64_t now = (int64_t)time(NULL);
        store_events(ev, taken, now);
        record_key_uses(ev, now);
        if (stop)
            break;
        if (cache_refresh(ev, now) != STORE_OK)
            log_warn("webhook subscriptions not refreshed", "%s", "");
        size_t sent = deliver_due(ev);
        if (sent == EVENTS_CLAIM_BATCH)
            continue; /* more may be due */
        pthread_mutex_lock(&ev->mu);
        if (!ev->head && !ev->stop && !ev->poked) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&ev->cond, &ev->mu, &until);
        }
        pthread_mutex_unlock(&ev->mu);
    }
    return NULL;
}

struct events *events_start(const struct config *cfg)
{
    struct events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->cfg = cfg;
    char *err = NULL;
    if (store_open(cfg->database, &ev->store, &err) != STORE_OK) {
        log_error("events: cannot open database", "err=\"%s\"", err ? err : "?");
        free(err);
        free(ev);
        return NULL;
    }
    ev->curl = curl_easy_init();
    pthread_mutex_init(&ev->mu, NULL);
    pthread_cond_init(&ev->cond, NULL);
    if (!ev->curl || cache_refresh(ev, (int64_t)time(NULL)) != STORE_OK ||
        pthread_create(&ev->thread, NULL, events_main, ev) != 0) {
        log_error("events: cannot start the delivery thread", "%s", "");
        if (ev->curl)
            curl_easy_cleanup(ev->curl);
        filters_free(ev->filters, ev->nfilters);
        store_close(ev->store);
        pthread_mutex_destroy(&ev->mu);
        pthread_cond_destroy(&ev->cond);
        free(ev);
        return NULL;
    }
    return ev;
}

void events_stop(struct events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->mu);
    ev->stop = 1;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->mu);
    pthread_join(ev->thread, NULL);
    curl_easy_cleanup(ev->curl);
    filters_free(ev->filters, ev->nfilters);
    store_close(ev->store);
    pthread_mutex_destroy(&ev->mu);
    pthread_cond_destroy(&ev->cond);
    free(ev);
}

void events_cert_expiring_job(struct store *s, void *arg, int64_t now)
{
    struct events *ev = arg;
    if (!events_wanted(ev, "cert.expiring"))
        return;
    int64_t days = ev->cfg->cert_expiry_days, count = 0, soonest = 0;
    int rc = store_pki_expiry_stats(s, now, now + days * 86400, &count, &soonest);
    if (rc != STORE_OK) {
        log_warn("cert.expiring not computed", "rc=%d", rc);
        return;
    }
    if (count == 0)
        return;
    char at[32];
    events_emit(ev, "cert.expiring",
                json_pack("{s:{s:I,s:I,s:s}}", "certs", "expiring", (json_int_t)count,
                          "within_days", (json_int_t)days, "soonest_expiry",
                          iso_time(soonest, at, sizeof at)));
}

void events_retention_job(struct store *s, void *arg, int64_t now)
{
    struct events *ev = arg;
    int64_t deliveries = 0;
    if (ev->cfg->webhook_log_days <= 0)
        return;
    int rc = store_delivery_prune(s, now - ev->cfg->webhook_log_days * 86400, &deliveries);
    if (rc != STORE_OK)
        log_warn("webhook log retention failed", "rc=%d", rc);
    else if (deliveries)
        log_info("webhook log pruned", "deliveries=%lld", (long long)deliveries);
}
