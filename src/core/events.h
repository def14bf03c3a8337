/* events.h: what happened in steward, told to other systems. Areas call
 * events_emit (or the compact helpers below) on their handler thread; the
 * event is queued in memory and one delivery thread, with its own store
 * connection, writes one webhook_deliveries row per subscribed webhook
 * (the persisted queue: pending rows survive a restart, and several nodes
 * share them under a lease) and POSTs each as JSON signed with
 * HMAC-SHA256, retrying with doubling backoff (docs/webhooks.md).
 * Started and stopped by app/serve.c; reached as w->svc->events (NULL when
 * off: every call accepts NULL and does nothing). */
#ifndef STEWARD_EVENTS_H
#define STEWARD_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct events;

/* Opens the delivery thread's store connection and starts it. NULL (logged)
 * on failure. cfg must outlive it. */
struct events *events_start(const struct config *cfg);
/* Delivers what is queued in memory to the store, then stops. Accepts NULL. */
void events_stop(struct events *ev);

/* 1 when some enabled webhook subscribes to type (from a cache refreshed
 * every few seconds and on events_reload): lets callers skip building a
 * payload nobody wants. */
int events_wanted(struct events *ev, const char *type);
/* Queues an event. data is an object whose members join the envelope
 * {"topic", "event_id", "created_at"}; the reference is stolen (NULL means
 * no members). Never blocks on the network or the store. */
void events_emit(struct events *ev, const char *type, json_t *data);
/* Webhooks changed (API): refresh the subscription cache now. */
void events_reload(struct events *ev);
/* Wakes the delivery thread (a delivery was added directly). */
void events_poke(struct events *ev);

/* MicroMDM/NanoMDM-compatible check-in event (topic "mdm.<MessageType>"):
 * {"checkin_event": {"udid", "enrollment_id", "url_params", "raw_payload"}}. */
void events_mdm_checkin(struct events *ev, const char *message_type, const char *udid,
                        const char *enrollment_id, const uint8_t *raw, size_t len);
/* "mdm.Connect" with {"acknowledge_event": {"udid", "status", "command_uuid",
 * "url_params", "raw_payload"}}, plus steward's command.completed (Acknowledged,
 * Error, CommandFormatError), command.failed (Error, CommandFormatError) and
 * command.not_now. */
void events_mdm_connect(struct events *ev, const char *id, const char *udid, const char *status,
                        const char *command_uuid, const uint8_t *raw, size_t len);
/* A device event ("device.enrolled", "device.checked_out", …) with {"device": {"id"}}. */
void events_device(struct events *ev, const char *type, const char *id);

/* Records that the API key with this SHA-256 hex was used: written to the
 * store (last_used_at) by the delivery thread, so a read request never
 * waits on a write lock. Uses beyond what is pending are dropped. */
void events_key_used(struct events *ev, const char *key_hash);

/* ---- shared with the API and tests ---- */

/* 1 when filter (comma-separated; "*" all; "mdm.*" a family) selects type. */
int events_filter_match(const char *filter, const char *type);
/* The signature header value for body sent at timestamp t:
 * "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>". out: 128 bytes. 0 or -1. */
int events_sign(const char *secret, int64_t t, const char *body, size_t len, char *out,
                size_t outlen);
/* Seconds before attempt number attempts+1 (attempts >= 1 made so far). */
int64_t events_backoff(int64_t base, int64_t attempts);

/* The scheduler job (arg: the struct events): a cert.expiring summary when
 * any issued certificate expires within cert_expiry_days. */
struct store;
void events_cert_expiring_job(struct store *s, void *arg, int64_t now);

/* The scheduler job (arg: the struct events): deletes finished webhook
 * deliveries older than webhook_log_days. */
void events_retention_job(struct store *s, void *arg, int64_t now);

#endif
