/* push.h: waking devices through APNs. A push_service owns an in-memory
 * queue of enrollment ids and three pipelined threads (lookup, send,
 * record), each with its own store connection: other areas hand it ids
 * (push_devices never blocks on the network, so a push storm never holds up
 * a check-in), repeats coalesce within push_coalesce_ms, and batches are
 * looked up, pushed per topic through push/apns.h's HTTP/2 client, and
 * their outcomes recorded (store_push.h, metrics).
 * Built by app/serve.c into struct service's push pointer. Push certificate
 * import and checks live in core/push_certs.c (push_certs.h). */
#ifndef STEWARD_CORE_PUSH_H
#define STEWARD_CORE_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct store;
struct push_service;

/* What one synchronous push came to (push_devices_wait). */
struct push_result {
    int status;       /* APNs' HTTP status; 0 when nothing was sent */
    char result[64];  /* "ok", APNs' reason, or why it was not sent */
    char apns_id[64]; /* the apns-id of a 200 */
};

/* Starts the service for cfg (apns_url, apns_ca, apns_*, push_*). NULL with
 * *err malloc'd when the store cannot be opened or the thread not started. */
struct push_service *push_service_new(const struct config *cfg, char **err);
struct events;
/* Where "push.failed" webhook events go (NULL: none); any time. */
void push_set_events(struct push_service *ps, struct events *ev);
/* Stops the thread (pending pushes are dropped) and frees. Accepts NULL. */
void push_service_free(struct push_service *ps);

/* Queues pushes for ids (copied), coalesced with pushes already waiting for
 * the same id; retried with back-off on 429/5xx. 0, or -1 when memory ran
 * out (some may have been queued). Never blocks on the network. */
int push_devices(struct push_service *ps, const char *const *ids, size_t n);
/* Pushes ids now, without coalescing or retries, and waits (at most
 * timeout_s seconds) for each result: out[i] for ids[i]. 0, or -1 on
 * timeout or out of memory (unanswered entries say "timeout"). */
int push_devices_wait(struct push_service *ps, const char *const *ids, size_t n,
                      struct push_result *out, int timeout_s);
/* A push certificate was imported: reload clients before the next push. */
void push_service_certs_changed(struct push_service *ps);
/* Pushes waiting in memory (queued or being sent). */
size_t push_service_pending(struct push_service *ps);

/* The scheduled re-push: devices with waiting commands that have not
 * checked in for push_repush_after seconds (and were not pushed since) are
 * pushed again. Runs on the scheduler thread; arg is the push_service. */
void push_repush_job(struct store *s, void *arg, int64_t now);

#endif
