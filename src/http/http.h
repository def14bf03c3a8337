/* http.h: the HTTP layer. Listeners (HTTPS with optional client certificates,
 * and plain HTTP for deployments behind a TLS-terminating proxy) run on I/O
 * threads (one libevent loop each, SO_REUSEPORT); each parsed request is handed
 * to a pool of handler threads, so a slow handler (say a slow database call)
 * never stalls the connections of an I/O loop. The layer knows nothing of MDM:
 * app code supplies one handler function and per-worker context.
 * Called by app/serve.c. */
#ifndef STEWARD_HTTP_H
#define STEWARD_HTTP_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/buf.h"

struct http_header {
    char *name;
    char *value;
};

/* A request as handlers see it. Everything is owned by the HTTP layer and
 * valid until the handler returns. */
struct request {
    const char *method;          /* "GET", "PUT", … */
    char *path;                  /* raw (percent-encoded) path without the query, e.g. "/mdm/connect" */
    char *query;                 /* raw query string after '?', or NULL */
    struct http_header *headers; /* as received */
    size_t nheaders;
    uint8_t *body;               /* NUL-terminated for convenience (not counted in body_len) */
    size_t body_len;
    X509 *peer_cert;             /* TLS client certificate, or NULL (plain HTTP, or none sent) */
    STACK_OF(X509) *peer_chain;  /* intermediates the client sent, or NULL */
    long peer_verify;            /* X509_V_OK when peer_cert chained to the client CA at handshake */
    int tls;                     /* 1 when it came over the HTTPS listener */
    char remote_addr[64];        /* peer IP address, no port */
    char id[17];                 /* request id, 16 hex characters, for logs and X-Request-Id */
    struct timespec start;       /* CLOCK_MONOTONIC when the request was read */
};

/* Case-insensitive header lookup; NULL when absent. */
const char *request_header(const struct request *req, const char *name);
/* A query parameter, percent-decoded into buf; NULL when absent. */
const char *request_query(const struct request *req, const char *name, char *buf, size_t n);

#define RESPONSE_MAX_HEADERS 8

/* A response built by a handler. body is owned by the response. */
struct response {
    int status;                  /* 0 means 200 */
    char content_type[96];       /* "" means no Content-Type header */
    struct buf body;
    struct http_header headers[RESPONSE_MAX_HEADERS]; /* extra headers, strings owned */
    size_t nheaders;
};

int response_add_header(struct response *resp, const char *name, const char *value);
/* Sets status, content type and body (copied). Returns 0 or -1. */
int response_set(struct response *resp, int status, const char *content_type,
                 const void *body, size_t len);
/* A text/plain error with a reason line, used for 4xx/5xx answers. */
int response_text(struct response *resp, int status, const char *reason);
void response_clear(struct response *resp);

/* One handler runs per request on a pool thread, with that thread's context. */
typedef void (*http_handler_fn)(void *worker_ctx, struct request *req, struct response *resp);
/* The optional fast path, tried first on the I/O thread that read the request
 * (with that loop's own context): it answers what it can without waiting on
 * anything (a lock, a slow query) and returns 1, or returns 0 with resp
 * untouched and the request goes to the pool. It saves the two thread
 * hand-offs, which cost more than the work on the requests devices make most. */
typedef int (*http_fast_fn)(void *io_ctx, struct request *req, struct response *resp);
typedef void *(*http_worker_init_fn)(void *arg, int index); /* NULL = failure */
typedef void (*http_worker_fini_fn)(void *worker_ctx);

struct http_server_opts {
    const char *https_listen;     /* "127.0.0.1:8443"; NULL or "" to disable; port 0 = any */
    const char *http_listen;      /* plain HTTP; NULL or "" to disable */
    const char *tls_cert_file;    /* server certificate chain (PEM) */
    const char *tls_key_file;     /* server key (PEM) */
    const char *client_ca_file;   /* CA(s) client certificates are checked against */
    int io_threads;               /* event loops; 0 = one per core */
    int workers;                  /* handler threads; 0 = 4 per core */
    size_t max_body;              /* bytes; larger bodies get 413 */
    size_t max_header;            /* bytes of request line + headers; larger get 431/400 */
    int read_timeout;             /* seconds a request may take to arrive */
    int idle_timeout;             /* seconds a keep-alive connection may sit idle */
    http_handler_fn handler;
    http_worker_init_fn worker_init;
    http_worker_fini_fn worker_fini;
    http_fast_fn fast_handler;    /* optional; needs io_init */
    http_worker_init_fn io_init;  /* an I/O thread's fast-path context (index = loop); NULL = none */
    http_worker_fini_fn io_fini;
    void *arg;
};

struct http_server;

/* Binds, loads TLS material and starts all threads. On error returns NULL and
 * sets *err (malloc'd, caller frees). */
struct http_server *http_server_start(const struct http_server_opts *opts, char **err);
/* Bound ports (useful with port 0). -1 when that listener is disabled. */
int http_server_https_port(const struct http_server *srv);
int http_server_http_port(const struct http_server *srv);
/* Stops accepting, finishes in-flight requests, joins threads, frees. */
void http_server_stop(struct http_server *srv);

#endif
