/* mock.h: steward-apns-mock, a strict stand-in for Apple's APNs provider API
 * in tests and benchmarks. main.c parses options, accepts TLS connections
 * (client certificate required, ALPN h2 only) and runs one thread per
 * connection; conn.c speaks HTTP/2 on libnghttp2; check.c decides each
 * push's answer from Apple's documented rules and the configured failures
 * (pure, no I/O); main.c also records pushes and wakes devices. */
#ifndef STEWARD_APNSMOCK_H
#define STEWARD_APNSMOCK_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#define MOCK_MAX_BODY 4096 /* Apple's limit for MDM-sized payloads */

/* One configured answer: token ("*" = any) → status + reason. */
struct mock_rule {
    char token[208];
    int status;
    char reason[64];
};

struct mock_config {
    struct mock_rule *rules;
    size_t nrules;
    long fail_first;      /* --fail N: the first N pushes get 503 */
    const char *wake_exec;
    const char *log_path;
    int refuse_cert;      /* --refuse-cert: every push 403 BadCertificate */
    long max_streams;
    long delay_ms;        /* --delay-ms: every answer this late */
    long stall_after;     /* --stall-after N: connections open at the N-th answer go silent */
    int quiet;
    const char *anonymous_topic; /* topic of clients without a certificate (bench only) */
};

/* A request as received (HTTP/2 pseudo-headers and the headers APNs reads). */
struct mock_request {
    char method[16];
    char path[300];
    char topic[256];
    char push_type[32];
    char priority[16];
    char expiration[32];
    char apns_id[64];
    int has_topic, has_push_type, has_priority, has_expiration, has_apns_id;
    int duplicate_header;
    char body[MOCK_MAX_BODY + 1];
    size_t body_len;
    int body_too_large;
};

/* The answer. token/magic are filled when the path and body were valid. */
struct mock_answer {
    int status;
    char reason[64];
    char token[208];
    char magic[160];
};

/* Applies Apple's checks then the rules. cert_topic is the client
 * certificate's UID; n_seen counts pushes before this one (for --fail). */
void mock_check(const struct mock_config *cfg, const struct mock_request *r,
                const char *cert_topic, long n_seen, struct mock_answer *a);

/* Serves one accepted TLS connection until it closes (conn.c); index
 * counts accepted connections from 0. */
void mock_serve_conn(const struct mock_config *cfg, SSL *ssl, const char *cert_topic, long index);

/* Called by conn.c for every answered push: counts, logs and wakes (main.c).
 * Returns the number of pushes seen before this one. */
long mock_next_seq(void);
/* --stall-after: the answer numbered seq (from 0) was sent; 1 when
 * connection index must go silent now. */
void mock_answered(const struct mock_config *cfg, long seq);
int mock_conn_stalled(long index);
void mock_record(const struct mock_config *cfg, const char *topic, const struct mock_request *r,
                 const struct mock_answer *a, const char *apns_id);

#endif
