/* apns.h: the APNs HTTP/2 provider client (Apple's provider API, see
 * ../shared/PROTOCOL.md §6). One apns_client per topic (push/client.c, on
 * libnghttp2 and OpenSSL) holds a few long-lived TLS connections,
 * authenticated with the push certificate, each carrying many concurrent
 * streams. It sends continuously: whenever a stream is free it pulls the
 * next push from its caller, and hands each answer back as it arrives, so
 * the connections never drain between batches; idle connections are
 * checked with HTTP/2 PING. The request building and response
 * classification are separate pure functions (push/apns.c, unit-tested).
 * Used by core/push.c's send thread; nothing here touches the store. */
#ifndef STEWARD_APNS_H
#define STEWARD_APNS_H

#include <stddef.h>
#include <stdint.h>

#define APNS_PRODUCTION_URL "https://api.push.apple.com"
#define APNS_SANDBOX_URL "https://api.sandbox.push.apple.com"

/* What steward does about one answer. */
enum apns_outcome {
    APNS_OK,           /* 200: delivered to APNs */
    APNS_UNREGISTERED, /* 410 Unregistered, 400 BadDeviceToken: stop until a TokenUpdate */
    APNS_REJECTED,     /* another 4xx about this request: recorded, not retried */
    APNS_CERT_REFUSED, /* 403 BadCertificate…: stop the whole topic */
    APNS_THROTTLED,    /* 429: back off for this token */
    APNS_RETRY,        /* 5xx, connection error, GOAWAY: retry later */
};
const char *apns_outcome_name(enum apns_outcome o);

/* ---- request building and response parsing (pure) ------------------------ */

/* Checks a device token (even-length lowercase or uppercase hex, 16 to 200
 * digits) and writes "/3/device/<token in lowercase>". 0 or -1. */
int apns_path(char *out, size_t n, const char *token_hex);
/* Writes the body exactly {"mdm":"<magic>"}; -1 when magic is empty, too
 * long or holds a character a JSON string would have to escape. */
int apns_body(char *out, size_t n, const char *magic);
/* The apns-expiration value for a time-to-live: "0" (deliver once, no
 * storing) when ttl <= 0, else now + ttl. */
int64_t apns_expiration(int64_t now, int64_t ttl);
/* Classifies an answer: status 0 means no HTTP answer (connection error).
 * reason receives APNs' "reason" (or "" when none); *timestamp the 410's
 * "timestamp" (milliseconds, 0 when absent). */
enum apns_outcome apns_classify(long status, const char *body, size_t len, char *reason,
                                size_t reason_n, int64_t *timestamp);

/* ---- the client ---------------------------------------------------------- */

/* One push: inputs, then the answer. */
struct apns_push {
    const char *token_hex;
    const char *magic;
    void *user;                /* the caller's, untouched */
    /* out */
    long status;               /* HTTP status, 0 when none arrived */
    enum apns_outcome outcome;
    char reason[64];           /* APNs' reason, or a transport error */
    char apns_id[64];
    int64_t timestamp;         /* 410's timestamp (ms) */
};

struct apns_opts {
    const char *url;     /* base URL: APNS_PRODUCTION_URL, APNS_SANDBOX_URL, or a mock */
    const char *ca_file; /* CA bundle verifying the server; NULL = the system's */
    int64_t ttl;         /* seconds for apns-expiration (0: "0") */
    int priority;        /* 10 or 5 */
    long connections;    /* most TLS connections (default 2) */
    long streams;        /* most concurrent streams per connection (default 500) */
    long timeout_ms;     /* per push (default 15000) */
    /* Liveness: a connection that has received nothing for ping_interval_ms
     * (or, while pushes wait on it, for ping_timeout_ms) is sent an HTTP/2
     * PING; one unanswered for ping_timeout_ms drops the connection (its
     * waiting pushes come back as APNS_RETRY) and the next push opens a
     * new one. Defaults 60000 and 5000. */
    long ping_interval_ms;
    long ping_timeout_ms;
    /* Where pushes come from and answers go, both called on the thread
     * running apns_clients_run: next returns the next push to send (the
     * caller keeps it alive until done) or NULL when none waits; done is
     * called once per push next returned, with its outcome set. */
    struct apns_push *(*next)(void *arg);
    void (*done)(struct apns_push *p, void *arg);
    void *arg;
};

struct apns_client;

/* A client for topic with the push certificate and key (PEM). NULL with
 * *err malloc'd when the URL, certificate or key cannot be used or o has
 * no next/done. */
struct apns_client *apns_client_new(const char *topic, const char *cert_pem, const char *key_pem,
                                    const struct apns_opts *o, char **err);
/* One round of work for clients cs[0..n) on a thread that has SIGPIPE
 * blocked or ignored (a peer that closed then makes a write fail with
 * EPIPE rather than end the process): pushes are pulled (next) onto
 * every free stream, connections opened as needed, frames written, then
 * all connections (and wake_fd, when >= 0) are polled for at most wait_ms
 * (-1: until something happens), and what arrived is read: answers (done),
 * PING acknowledgements, GOAWAY. Timed-out pushes, dead or silent
 * connections end here too. A malformed token or magic is answered
 * APNS_REJECTED without sending. When no connection can be opened, the
 * pushes pulled meanwhile come back as APNS_RETRY with the reason.
 * Returns 1 when wake_fd became readable (the caller drains it), else 0. */
int apns_clients_run(struct apns_client *const *cs, size_t n, int wake_fd, int wait_ms);
/* Pushes on streams, waiting for their answers. */
size_t apns_client_inflight(const struct apns_client *c);
/* Connections lost or not opened since the last HTTP answer (the caller's
 * circuit breaker). */
int apns_client_failures(const struct apns_client *c);
/* Frees c; pushes still waiting get done(APNS_RETRY) first. Accepts NULL. */
void apns_client_free(struct apns_client *c);

#endif
