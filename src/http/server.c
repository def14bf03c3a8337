/* server.c: the engine behind http.h. Binds SO_REUSEPORT listeners, runs one
 * libevent loop per I/O thread (evhttp, with bufferevent_openssl for HTTPS),
 * copies each parsed request into a job for a pool of handler threads, and
 * sends the handler's response back from the loop that owns the connection.
 * Called by app/serve.c through http_server_start / http_server_stop. */
#include "http/http.h"
#include "http/memtrim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "util/log.h"

#define QUEUE_LIMIT 10000               /* waiting jobs before we answer 503 */
#define DEFAULT_MAX_BODY (16u << 20)
#define DEFAULT_MAX_HEADER (32u << 10)
#define DEFAULT_TIMEOUT 30              /* seconds */
#define LISTEN_BACKLOG 1024
#define DRAIN_TICK_MS 10
#define DRAIN_GRACE_MS 2000             /* how long stop waits for replies to flush */

enum { PHASE_RUN = 0, PHASE_CLOSE_LISTENERS = 1, PHASE_DRAIN = 2 };

struct io_thread;

/* One request on its way through the pool and back. Fields other than ev
 * may be read by the worker; ev is touched only on io's thread. */
struct job {
    struct job *next;
    struct io_thread *io;
    struct evhttp_request *ev;
    struct request req;
    struct response resp;
    char *block; /* header array, header strings, path and query in one allocation */
};

/* One evhttp (HTTPS or plain) inside an I/O thread. */
struct listener {
    struct io_thread *io;
    int tls;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
};

struct io_thread {
    struct http_server *srv;
    int index;
    pthread_t thread;
    int running;
    struct event_base *base;
    struct listener https, plain;
    struct event *done_ev;  /* activated by workers when replies wait in done_* */
    struct event *ctl_ev;   /* activated by http_server_stop */
    struct event *drain_ev; /* periodic check while stopping */
    struct event *trim_ev;  /* loop 0 only: memory back to the OS after a burst */
    pthread_mutex_t done_mu;
    struct job *done_head, *done_tail;
    atomic_int phase;
    atomic_long inflight;   /* jobs created here and not yet answered */
    uint32_t rid_prefix;    /* request ids: random per loop, then a counter */
    uint32_t rid_next;
    long writing;           /* replies handed to evhttp, not yet flushed (loop thread only) */
    struct timespec drain_deadline;
    void *ctx;              /* the fast path's context (opts.io_init), or NULL */
};

struct worker {
    struct http_server *srv;
    int index;
    pthread_t thread;
    int running;
    /* Idle workers wait on their own condition, in a stack (srv->idle):
     * a job wakes the one that went idle last, whose caches (its database
     * session's pages and plans, the CPU's) are the warmest. */
    pthread_cond_t cv;
    struct worker *idle_next;
    int idle;
};

struct http_server {
    struct http_server_opts opts; /* limits and callbacks; the strings are not kept */
    SSL_CTX *ssl_ctx;
    int https_port, http_port;
    int nio, nworkers;
    struct io_thread *io;
    struct worker *workers;
    /* The handler queue, shared by I/O threads (producers) and workers. */
    pthread_mutex_t mu;
    pthread_cond_t ready_cv;
    struct worker *idle; /* the stack of waiting workers, last idle on top */
    struct job *head, *tail;
    size_t queued;
    int closed, ready, init_failed;
    struct memtrim trim; /* TLS connections counted for memtrim (memtrim.h) */
};

/* ---- small helpers ---- */

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...)
{
    if (!err || *err)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0)
        *err = NULL;
    va_end(ap);
}

static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown";
}

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* libevent's own warnings go to our log instead of stderr. */
static void forward_libevent_log(int severity, const char *msg)
{
    char q[512];
    enum log_level level = severity >= EVENT_LOG_WARN ? LOG_WARN : LOG_DEBUG;
    log_msg(level, "libevent", "detail=%s", log_quote(q, sizeof q, msg));
}

static pthread_once_t libevent_once = PTHREAD_ONCE_INIT;
static int libevent_threads_ok; /* written once under libevent_once */

static void init_libevent(void)
{
    libevent_threads_ok = evthread_use_pthreads() == 0;
    event_set_log_callback(forward_libevent_log);
}

/* ---- TLS ---- */

/* Accept any client certificate at the TLS level: the verdict is kept in
 * SSL_get_verify_result, so the application can answer a proper 403 to a
 * certificate from another CA instead of a bare handshake failure. */
static int verify_accept_any(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

static void peer_of_fd(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(out, n, "?");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)n);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)n);
}

/* Logs TLS alerts: a fatal alert is how a failed handshake shows up. */
static void tls_info_cb(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_ALERT))
        return;
    int fatal = SSL_alert_type_string(ret)[0] == 'F';
    if (!fatal && !log_enabled(LOG_DEBUG))
        return;
    char peer[64];
    peer_of_fd(SSL_get_fd(ssl), peer, sizeof peer);
    log_msg(fatal ? LOG_INFO : LOG_DEBUG, (where & SSL_CB_WRITE) ? "tls_alert_sent" : "tls_alert_received",
            "remote=%s alert=\"%s\" state=\"%s\"", peer, SSL_alert_desc_string_long(ret),
            SSL_state_string_long(ssl));
}

static SSL_CTX *tls_context_new(const struct http_server_opts *o, char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_err(err, "SSL_CTX_new: %s", openssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* IGNORE_UNEXPECTED_EOF: a client that just closes an idle keep-alive
     * connection (no close_notify, as many do) is not a TLS error. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Idle keep-alive connections then hold no 16 KB record buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Resumption is by session tickets (stateless, shared by every I/O
     * thread); the id context must be set or resumption with client
     * certificates fails. No server-side cache: it would cost memory per
     * connection and a lock shared by all loops. */
    static const unsigned char sid_ctx[] = "steward-http";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* One TLS 1.3 ticket per handshake, not OpenSSL's default two. A second
     * ticket is for clients opening connections in parallel; a device holds
     * one at a time. Each ticket costs a serialise and re-parse of the session
     * with the client certificate in it (OpenSSL 3.0 decodes the public key
     * again), about a tenth of a full handshake's CPU (bench/checkin). */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_info_callback(ctx, tls_info_cb);

    if (!o->tls_cert_file || !o->tls_key_file) {
        set_err(err, "HTTPS needs tls_cert_file and tls_key_file");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert_file) != 1) {
        set_err(err, "server certificate %s: %s", o->tls_cert_file, openssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, "server key %s: %s", o->tls_key_file, openssl_reason());
        goto fail;
    }
    if (o->client_ca_file && *o->client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
            set_err(err, "client CA %s: %s", o->client_ca_file, openssl_reason());
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_file);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names); /* ctx takes ownership */
        /* Requested, not required: no SSL_VERIFY_FAIL_IF_NO_PEER_CERT. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_accept_any);
        SSL_CTX_set_verify_depth(ctx, 5);
    }
    ERR_clear_error();
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* evhttp asks for the bufferevent of each accepted HTTPS connection. If we
 * cannot make one, evhttp would fall back to a plain socket bufferevent, so
 * on_request refuses requests on the TLS listener that have no SSL. */
static struct bufferevent *make_tls_bufferevent(struct event_base *base, void *arg)
{
    struct listener *l = arg;
    SSL *ssl = SSL_new(l->io->srv->ssl_ctx);
    if (!ssl) {
        log_warn("tls_new_failed", "reason=\"%s\"", openssl_reason());
        ERR_clear_error();
        return NULL;
    }
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        /* Whether libevent already freed ssl is unclear on this path; a
         * leak under memory pressure beats a double free. */
        log_warn("tls_bufferevent_failed", "%s", "");
        return NULL;
    }
    /* Many clients (and devices) close without close_notify. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    memtrim_connection(&l->io->srv->trim);
    return bev;
}

/* ---- listening sockets ---- */

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char **err)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    const char *port = colon ? colon + 1 : spec;
    size_t hlen = colon ? (size_t)(colon - spec) : 0;
    if (hlen >= sizeof host || !*port) {
        set_err(err, "bad listen address \"%s\"", spec);
        return -1;
    }
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    char *h = host;
    if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') { /* [::1]:443 */
        host[hlen - 1] = '\0';
        h = host + 1;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(*h ? h : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        set_err(err, "listen address \"%s\": %s", spec, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void sockaddr_set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static int open_listen_socket(const struct sockaddr_storage *ss, socklen_t len, char **err)
{
    int one = 1;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(err, "socket: %s", strerror(errno));
        return -1;
    }
    /* TCP_NODELAY on the listener is inherited by accepted sockets on Linux:
     * without it a response's header and body records wait for the peer's
     * delayed ACK (40 ms). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        set_err(err, "setsockopt: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        set_err(err, "bind/listen port %d: %s", sockaddr_port(ss), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Opens n sockets on the same address with SO_REUSEPORT so the kernel
 * spreads connections over the I/O threads. The first may ask for port 0;
 * the others then take the port it got. */
static int open_listen_group(const char *spec, int n, int *fds, int *port_out, char **err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    if (parse_listen(spec, &ss, &len, err) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        fds[i] = open_listen_socket(&ss, len, err);
        if (fds[i] < 0)
            goto fail;
        if (i == 0) {
            struct sockaddr_storage bound;
            socklen_t blen = sizeof bound;
            if (getsockname(fds[0], (struct sockaddr *)&bound, &blen) != 0) {
                set_err(err, "getsockname: %s", strerror(errno));
                goto fail;
            }
            *port_out = sockaddr_port(&bound);
            sockaddr_set_port(&ss, *port_out);
        }
    }
    return 0;
fail:
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return -1;
}

/* ---- jobs ---- */

static void job_free(struct job *job)
{
    if (!job)
        return;
    X509_free(job->req.peer_cert);
    sk_X509_pop_free(job->req.peer_chain, X509_free);
    free(job->req.body);
    free(job->block);
    response_clear(&job->resp);
    free(job);
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return NULL;
    }
}

/* Copies headers, the raw (still percent-encoded) path and raw query into
 * one allocation. The path stays encoded so an encoded '/' inside an id can
 * never split a route's segments; the router decodes each segment. Returns 0
 * or 500 (out of memory). */
static int job_copy_target(struct job *job, struct evhttp_request *ev)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!path || !*path)
        path = "/";
    size_t plen = strlen(path);
    struct evkeyvalq *hdrs = evhttp_request_get_input_headers(ev);
    struct evkeyval *kv;
    size_t n = 0, bytes = plen + 1 + (query ? strlen(query) + 1 : 0);
    for (kv = hdrs->tqh_first; kv; kv = kv->next.tqe_next) {
        n++;
        bytes += strlen(kv->key) + strlen(kv->value) + 2;
    }
    job->block = malloc(n * sizeof(struct http_header) + bytes);
    if (!job->block)
        return 500;
    struct http_header *h = (struct http_header *)job->block;
    char *p = job->block + n * sizeof(struct http_header);
    size_t i = 0;
    for (kv = hdrs->tqh_first; kv; kv = kv->next.tqe_next) {
        size_t kl = strlen(kv->key) + 1, vl = strlen(kv->value) + 1;
        h[i].name = memcpy(p, kv->key, kl);
        p += kl;
        h[i].value = memcpy(p, kv->value, vl);
        p += vl;
        i++;
    }
    job->req.headers = h;
    job->req.nheaders = n;
    job->req.path = memcpy(p, path, plen + 1);
    p += plen + 1;
    if (query)
        job->req.query = memcpy(p, query, strlen(query) + 1);
    return 0;
}

static int job_copy_body(struct job *job, struct evhttp_request *ev)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    size_t len = evbuffer_get_length(in);
    job->req.body = malloc(len + 1);
    if (!job->req.body)
        return 500;
    if (len && evbuffer_remove(in, job->req.body, len) != (ev_ssize_t)len)
        return 500;
    job->req.body[len] = '\0';
    job->req.body_len = len;
    return 0;
}

/* Client certificate, its chain and the handshake's verdict. */
static int job_copy_tls(struct job *job, struct evhttp_connection *evcon)
{
    SSL *ssl = bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon));
    if (!ssl)
        return 400; /* see make_tls_bufferevent */
    job->req.tls = 1;
    job->req.peer_cert = SSL_get1_peer_certificate(ssl);
    job->req.peer_verify = SSL_get_verify_result(ssl);
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    if (chain && sk_X509_num(chain) > 0) {
        job->req.peer_chain = X509_chain_up_ref(chain);
        if (!job->req.peer_chain)
            return 500;
    }
    return 0;
}

/* Builds the job for an evhttp request. Returns 0, or the status to answer. */
static int job_from_request(struct listener *l, struct evhttp_request *ev, struct job **out)
{
    *out = NULL;
    const char *method = method_name(evhttp_request_get_command(ev));
    if (!method)
        return 405; /* evhttp_set_allowed_methods already filters these */
    struct job *job = calloc(1, sizeof *job);
    if (!job)
        return 500;
    job->io = l->io;
    job->ev = ev;
    job->req.method = method;
    job->req.peer_verify = X509_V_OK;
    clock_gettime(CLOCK_MONOTONIC, &job->req.start);
    /* A random per-loop prefix and a counter: unique, and no RNG call (with
     * its getpid) on every request. Only this loop's thread touches them. */
    snprintf(job->req.id, sizeof job->req.id, "%08x%08x", l->io->rid_prefix, l->io->rid_next++);
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evcon, &addr, &port);
    snprintf(job->req.remote_addr, sizeof job->req.remote_addr, "%s", addr ? addr : "");
    int rc = job_copy_target(job, ev);
    if (!rc)
        rc = job_copy_body(job, ev);
    if (!rc && l->tls)
        rc = job_copy_tls(job, evcon);
    if (rc) {
        job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}

/* ---- handler queue ---- */

/* Takes the worker that went idle last off the stack (srv->mu held), or
 * NULL when none waits. The caller signals its cv once it has unlocked: a
 * worker woken while the mutex is still held would only block on it. */
static struct worker *take_idle(struct http_server *srv)
{
    struct worker *w = srv->idle;
    if (!w)
        return NULL;
    srv->idle = w->idle_next;
    w->idle_next = NULL;
    w->idle = 0;
    return w;
}

/* Queues a job for the workers; -1 when stopping or when the queue is so long
 * that answering 503 now beats answering late. */
static int pool_push(struct http_server *srv, struct job *job)
{
    pthread_mutex_lock(&srv->mu);
    if (srv->closed || srv->queued >= QUEUE_LIMIT) {
        pthread_mutex_unlock(&srv->mu);
        return -1;
    }
    job->next = NULL;
    if (srv->tail)
        srv->tail->next = job;
    else
        srv->head = job;
    srv->tail = job;
    srv->queued++;
    struct worker *w = take_idle(srv);
    pthread_mutex_unlock(&srv->mu);
    if (w)
        pthread_cond_signal(&w->cv);
    return 0;
}

/* Hands a finished job back to its I/O loop (any thread). event_active is
 * thread-safe once evthread_use_pthreads ran before the base was made. */
static void io_post_done(struct job *job)
{
    struct io_thread *io = job->io;
    pthread_mutex_lock(&io->done_mu);
    if (io->done_tail)
        io->done_tail->next = job;
    else
        io->done_head = job;
    io->done_tail = job;
    pthread_mutex_unlock(&io->done_mu);
    event_active(io->done_ev, EV_READ, 0);
}

/* The first queued job, or NULL (srv->mu held). */
static struct job *queue_take(struct http_server *srv)
{
    struct job *job = srv->head;
    if (job) {
        srv->head = job->next;
        if (!srv->head)
            srv->tail = NULL;
        srv->queued--;
        job->next = NULL;
    }
    return job;
}

/* Takes w off the idle stack wherever it is (srv->mu held): it found a job
 * itself while on it. */
static void idle_remove(struct http_server *srv, struct worker *w)
{
    for (struct worker **p = &srv->idle; *p; p = &(*p)->idle_next)
        if (*p == w) {
            *p = w->idle_next;
            break;
        }
    w->idle_next = NULL;
    w->idle = 0;
}

/* Hands back done (w's finished job, or NULL) and returns w's next job, or
 * NULL once the pool is closed and empty. A worker with nothing to do goes
 * on top of the idle stack before its reply leaves: the request that reply
 * prompts (a device's next report on the same connection) then wakes this
 * same worker. A woken worker may find its job taken by one that just
 * finished its own; it goes back on top. */
static struct job *pool_next(struct worker *w, struct job *done)
{
    struct http_server *srv = w->srv;
    pthread_mutex_lock(&srv->mu);
    struct job *job;
    while (!(job = queue_take(srv)) && !srv->closed) {
        if (!w->idle) {
            w->idle = 1;
            w->idle_next = srv->idle;
            srv->idle = w;
        }
        if (done) {
            pthread_mutex_unlock(&srv->mu);
            io_post_done(done);
            done = NULL;
            pthread_mutex_lock(&srv->mu);
            continue; /* a job may have come meanwhile */
        }
        while (w->idle && !srv->closed)
            pthread_cond_wait(&w->cv, &srv->mu);
    }
    if (w->idle)
        idle_remove(srv, w);
    pthread_mutex_unlock(&srv->mu);
    if (done)
        io_post_done(done);
    return job;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct http_server *srv = w->srv;
    void *ctx = srv->opts.worker_init ? srv->opts.worker_init(srv->opts.arg, w->index) : srv->opts.arg;
    int failed = srv->opts.worker_init && !ctx;
    pthread_mutex_lock(&srv->mu);
    srv->ready++;
    if (failed)
        srv->init_failed = 1;
    pthread_cond_broadcast(&srv->ready_cv);
    pthread_mutex_unlock(&srv->mu);
    if (failed)
        return NULL;
    struct job *job;
    for (job = pool_next(w, NULL); job; job = pool_next(w, job))
        srv->opts.handler(ctx, &job->req, &job->resp);
    if (srv->opts.worker_fini)
        srv->opts.worker_fini(ctx);
    return NULL;
}

/* Closes the queue (workers finish what is queued, then exit) and joins. */
static void pool_close_and_join(struct http_server *srv)
{
    pthread_mutex_lock(&srv->mu);
    srv->closed = 1;
    struct worker *w;
    while ((w = take_idle(srv)) != NULL)
        pthread_cond_signal(&w->cv); /* under the mutex: few, and only once */
    pthread_mutex_unlock(&srv->mu);
    for (int i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].running) {
            pthread_join(srv->workers[i].thread, NULL);
            srv->workers[i].running = 0;
        }
}

static int pool_start(struct http_server *srv, char **err)
{
    int started = 0;
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        pthread_cond_init(&w->cv, NULL);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            set_err(err, "starting worker thread: %s", strerror(rc));
            break;
        }
        w->running = 1;
        started++;
    }
    pthread_mutex_lock(&srv->mu);
    while (srv->ready < started)
        pthread_cond_wait(&srv->ready_cv, &srv->mu);
    int failed = srv->init_failed;
    pthread_mutex_unlock(&srv->mu);
    if (failed)
        set_err(err, "worker_init failed");
    return started == srv->nworkers && !failed ? 0 : -1;
}

/* ---- replies (I/O thread) ---- */

static void free_body(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static void on_reply_written(struct evhttp_request *ev, void *arg)
{
    (void)ev;
    struct io_thread *io = arg;
    io->writing--;
}

static int status_has_body(int status) { return status >= 200 && status != 204 && status != 304; }

static void send_reply(struct job *job)
{
    struct evhttp_request *ev = job->ev;
    struct response *r = &job->resp;
    int status = r->status ? r->status : 200;
    if (status < 100 || status > 599) {
        log_warn("http_bad_status", "id=%s status=%d", job->req.id, status);
        status = 500;
        r->body.len = 0;
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(ev);
    if (r->content_type[0])
        evhttp_add_header(out, "Content-Type", r->content_type);
    for (size_t i = 0; i < r->nheaders; i++)
        if (evhttp_add_header(out, r->headers[i].name, r->headers[i].value) != 0)
            log_warn("http_bad_header", "id=%s", job->req.id);
    evhttp_add_header(out, "X-Request-Id", job->req.id);
    if (status_has_body(status)) {
        char len[24];
        snprintf(len, sizeof len, "%zu", r->body.len);
        evhttp_add_header(out, "Content-Length", len);
        /* HEAD gets the length of what GET would send, but no body. */
        if (r->body.len && strcmp(job->req.method, "HEAD") != 0) {
            size_t n;
            char *data = buf_steal(&r->body, &n);
            if (evbuffer_add_reference(evhttp_request_get_output_buffer(ev), data, n, free_body, NULL) != 0)
                free(data);
        }
    }
    if (evhttp_request_get_connection(ev)) {
        job->io->writing++;
        evhttp_request_set_on_complete_cb(ev, on_reply_written, job->io);
    }
    /* With no connection left (client went away) evhttp just frees ev. */
    evhttp_send_reply(ev, status, NULL, NULL);
    r->status = status;
}

static void finish_job(struct job *job)
{
    struct io_thread *io = job->io;
    send_reply(job);
    if (log_enabled(LOG_DEBUG)) {
        char qpath[256];
        log_debug("http_request", "id=%s method=%s path=%s status=%d ms=%.1f remote=%s tls=%d cert=%d bytes_in=%zu",
                  job->req.id, job->req.method, log_quote(qpath, sizeof qpath, job->req.path),
                  job->resp.status, ms_since(&job->req.start), job->req.remote_addr, job->req.tls,
                  job->req.peer_cert != NULL, job->req.body_len);
    }
    job_free(job);
    atomic_fetch_sub(&io->inflight, 1);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_thread *io = arg;
    pthread_mutex_lock(&io->done_mu);
    struct job *job = io->done_head;
    io->done_head = io->done_tail = NULL;
    pthread_mutex_unlock(&io->done_mu);
    while (job) {
        struct job *next = job->next;
        finish_job(job);
        job = next;
    }
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct listener *l = arg;
    struct job *job;
    int rc = job_from_request(l, ev, &job);
    if (rc) {
        log_info("http_request_rejected", "status=%d tls=%d", rc, l->tls);
        evhttp_send_error(ev, rc, NULL);
        return;
    }
    atomic_fetch_add(&l->io->inflight, 1);
    const struct http_server_opts *o = &l->io->srv->opts;
    if (o->fast_handler && l->io->ctx && o->fast_handler(l->io->ctx, &job->req, &job->resp)) {
        finish_job(job);
        return;
    }
    if (pool_push(l->io->srv, job) < 0) {
        log_warn("http_overloaded", "id=%s", job->req.id);
        response_text(&job->resp, 503, "server busy, try again later");
        response_add_header(&job->resp, "Retry-After", "5");
        finish_job(job);
    }
}

/* ---- I/O threads ---- */

static void close_listener(struct listener *l)
{
    if (l->http && l->bound) {
        evhttp_del_accept_socket(l->http, l->bound);
        l->bound = NULL;
    }
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_thread *io = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int late = now.tv_sec > io->drain_deadline.tv_sec ||
               (now.tv_sec == io->drain_deadline.tv_sec && now.tv_nsec >= io->drain_deadline.tv_nsec);
    if (atomic_load(&io->inflight) > 0)
        return; /* every job comes back: workers were joined before PHASE_DRAIN */
    if (io->writing > 0 && !late)
        return;
    if (io->writing > 0)
        log_warn("http_stop_unflushed", "io=%d replies=%ld", io->index, io->writing);
    event_base_loopbreak(io->base);
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_thread *io = arg;
    int phase = atomic_load(&io->phase);
    if (phase >= PHASE_CLOSE_LISTENERS) {
        close_listener(&io->https);
        close_listener(&io->plain);
    }
    if (phase >= PHASE_DRAIN && !event_pending(io->drain_ev, EV_TIMEOUT, NULL)) {
        clock_gettime(CLOCK_MONOTONIC, &io->drain_deadline);
        io->drain_deadline.tv_sec += DRAIN_GRACE_MS / 1000;
        io->drain_deadline.tv_nsec += (long)(DRAIN_GRACE_MS % 1000) * 1000000L;
        if (io->drain_deadline.tv_nsec >= 1000000000L) {
            io->drain_deadline.tv_sec++;
            io->drain_deadline.tv_nsec -= 1000000000L;
        }
        struct timeval tick = {0, DRAIN_TICK_MS * 1000};
        event_add(io->drain_ev, &tick);
    }
}

static void *io_main(void *arg)
{
    struct io_thread *io = arg;
    /* A write to a socket the peer closed must fail with EPIPE, not kill the
     * process; blocking SIGPIPE in this thread leaves the process's signal
     * dispositions alone. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (event_base_loop(io->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
        log_error("http_loop_failed", "io=%d", io->index);
    return NULL;
}

static struct evhttp *make_evhttp(struct listener *l)
{
    const struct http_server_opts *o = &l->io->srv->opts;
    struct evhttp *h = evhttp_new(l->io->base);
    if (!h)
        return NULL;
    evhttp_set_max_body_size(h, (ev_ssize_t)o->max_body);
    evhttp_set_max_headers_size(h, (ev_ssize_t)o->max_header);
    /* libevent 2.1 has one timeout per connection: it bounds reading a
     * request, an idle keep-alive connection and the TLS handshake alike. */
    int t = o->read_timeout;
    if (o->idle_timeout > 0 && o->idle_timeout < t)
        t = o->idle_timeout;
    struct timeval tv = {t, 0};
    evhttp_set_timeout_tv(h, &tv);
    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                      EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(h, NULL);
    /* Read (and drop) an oversized body before answering 413, so the close
     * does not reset the connection under the client's feet. */
    evhttp_set_flags(h, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(h, on_request, l);
    if (l->tls)
        evhttp_set_bevcb(h, make_tls_bufferevent, l);
    return h;
}

/* An epoll base with the change list: libevent turns a connection's read and
 * write interest on and off around every request; batching those changes
 * into the next epoll_wait saves an epoll_ctl each time. */
static struct event_base *new_event_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

static void on_trim_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct io_thread *io = arg;
    memtrim_tick(&io->srv->trim);
}

/* Loop 0 asks memtrim every MEMTRIM_TICK_MS whether a burst of handshakes
 * is over (one loop is enough: the trim covers every thread's arena). */
static int io_add_trim_timer(struct io_thread *io)
{
    io->trim_ev = event_new(io->base, -1, EV_PERSIST, on_trim_tick, io);
    struct timeval tv = {0, MEMTRIM_TICK_MS * 1000};
    return io->trim_ev && event_add(io->trim_ev, &tv) == 0 ? 0 : -1;
}

static int io_init(struct http_server *srv, struct io_thread *io, int index, int https, int plain)
{
    io->srv = srv;
    io->index = index;
    pthread_mutex_init(&io->done_mu, NULL);
    if (RAND_bytes((unsigned char *)&io->rid_prefix, sizeof io->rid_prefix) != 1)
        return -1;
    io->base = new_event_base();
    if (!io->base)
        return -1;
    io->done_ev = event_new(io->base, -1, 0, on_done, io);
    io->ctl_ev = event_new(io->base, -1, 0, on_control, io);
    io->drain_ev = event_new(io->base, -1, EV_PERSIST, on_drain_tick, io);
    if (!io->done_ev || !io->ctl_ev || !io->drain_ev)
        return -1;
    io->https.io = io->plain.io = io;
    io->https.tls = 1;
    if (https && !(io->https.http = make_evhttp(&io->https)))
        return -1;
    if (https && index == 0 && io_add_trim_timer(io) != 0)
        return -1;
    if (plain && !(io->plain.http = make_evhttp(&io->plain)))
        return -1;
    /* No context means no fast path on this loop, not a failure. */
    const struct http_server_opts *o = &srv->opts;
    if (o->fast_handler && o->io_init)
        io->ctx = o->io_init(o->arg, index);
    return 0;
}

static void io_free(struct io_thread *io)
{
    if (!io->base)
        return;
    /* Frees the remaining connections (and with them their requests). */
    if (io->https.http)
        evhttp_free(io->https.http);
    if (io->plain.http)
        evhttp_free(io->plain.http);
    struct job *job = io->done_head;
    while (job) { /* only after a failed start; their connections are gone */
        struct job *next = job->next;
        job_free(job);
        job = next;
    }
    if (io->done_ev)
        event_free(io->done_ev);
    if (io->ctl_ev)
        event_free(io->ctl_ev);
    if (io->drain_ev)
        event_free(io->drain_ev);
    if (io->trim_ev)
        event_free(io->trim_ev);
    event_base_free(io->base);
    pthread_mutex_destroy(&io->done_mu);
    if (io->ctx && io->srv->opts.io_fini)
        io->srv->opts.io_fini(io->ctx);
    io->ctx = NULL;
}

/* Gives each I/O thread's evhttp one socket of the group. */
static int attach_listeners(struct http_server *srv, const char *spec, int tls, int *port, char **err)
{
    int *fds = calloc((size_t)srv->nio, sizeof *fds);
    if (!fds) {
        set_err(err, "out of memory");
        return -1;
    }
    if (open_listen_group(spec, srv->nio, fds, port, err) < 0) {
        free(fds);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < srv->nio; i++) {
        struct listener *l = tls ? &srv->io[i].https : &srv->io[i].plain;
        if (rc == 0 && (l->bound = evhttp_accept_socket_with_handle(l->http, fds[i])) != NULL)
            continue; /* evhttp owns the fd now */
        if (rc == 0)
            set_err(err, "evhttp_accept_socket failed for %s", spec);
        rc = -1;
        close(fds[i]);
    }
    free(fds);
    return rc;
}

static void signal_io(struct http_server *srv, int phase)
{
    for (int i = 0; i < srv->nio; i++) {
        struct io_thread *io = &srv->io[i];
        if (!io->running)
            continue;
        atomic_store(&io->phase, phase);
        event_active(io->ctl_ev, EV_READ, 0);
    }
}

static void server_free(struct http_server *srv)
{
    for (int i = 0; srv->io && i < srv->nio; i++)
        io_free(&srv->io[i]);
    free(srv->io);
    for (int i = 0; srv->workers && i < srv->nworkers; i++)
        if (srv->workers[i].srv)
            pthread_cond_destroy(&srv->workers[i].cv);
    free(srv->workers);
    struct job *job = srv->head;
    while (job) {
        struct job *next = job->next;
        job_free(job);
        job = next;
    }
    SSL_CTX_free(srv->ssl_ctx);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->ready_cv);
    free(srv);
}

/* ---- public API ---- */

static void apply_defaults(struct http_server_opts *o)
{
    if (o->io_threads <= 0)
        o->io_threads = online_cpus();
    if (o->workers <= 0)
        o->workers = 4 * online_cpus();
    if (o->max_body == 0)
        o->max_body = DEFAULT_MAX_BODY;
    if (o->max_header == 0)
        o->max_header = DEFAULT_MAX_HEADER;
    if (o->read_timeout <= 0)
        o->read_timeout = DEFAULT_TIMEOUT;
    if (o->idle_timeout <= 0)
        o->idle_timeout = DEFAULT_TIMEOUT;
    /* Not kept: the caller's strings need not outlive this call. */
    o->https_listen = o->http_listen = NULL;
    o->tls_cert_file = o->tls_key_file = o->client_ca_file = NULL;
}

static int start_io_threads(struct http_server *srv, char **err)
{
    for (int i = 0; i < srv->nio; i++) {
        int rc = pthread_create(&srv->io[i].thread, NULL, io_main, &srv->io[i]);
        if (rc != 0) {
            set_err(err, "starting I/O thread: %s", strerror(rc));
            return -1;
        }
        srv->io[i].running = 1;
    }
    return 0;
}

struct http_server *http_server_start(const struct http_server_opts *opts, char **err)
{
    if (err)
        *err = NULL;
    int https = opts->https_listen && *opts->https_listen;
    int plain = opts->http_listen && *opts->http_listen;
    if (!opts->handler || (!https && !plain)) {
        set_err(err, "http: need a handler and at least one listener");
        return NULL;
    }
    pthread_once(&libevent_once, init_libevent);
    if (!libevent_threads_ok) {
        set_err(err, "evthread_use_pthreads failed");
        return NULL;
    }
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        set_err(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->ready_cv, NULL);
    srv->opts = *opts;
    apply_defaults(&srv->opts);
    srv->https_port = srv->http_port = -1;
    srv->nio = srv->opts.io_threads;
    srv->nworkers = srv->opts.workers;
    srv->io = calloc((size_t)srv->nio, sizeof *srv->io);
    srv->workers = calloc((size_t)srv->nworkers, sizeof *srv->workers);
    if (!srv->io || !srv->workers) {
        set_err(err, "out of memory");
        goto fail;
    }
    if (https && !(srv->ssl_ctx = tls_context_new(opts, err)))
        goto fail;
    for (int i = 0; i < srv->nio; i++)
        if (io_init(srv, &srv->io[i], i, https, plain) < 0) {
            set_err(err, "creating event loop");
            goto fail;
        }
    if (https && attach_listeners(srv, opts->https_listen, 1, &srv->https_port, err) < 0)
        goto fail;
    if (plain && attach_listeners(srv, opts->http_listen, 0, &srv->http_port, err) < 0)
        goto fail;
    if (pool_start(srv, err) < 0 || start_io_threads(srv, err) < 0) {
        http_server_stop(srv);
        return NULL;
    }
    log_info("http_started", "https_port=%d http_port=%d io_threads=%d workers=%d", srv->https_port,
             srv->http_port, srv->nio, srv->nworkers);
    return srv;
fail:
    server_free(srv);
    return NULL;
}

int http_server_https_port(const struct http_server *srv) { return srv ? srv->https_port : -1; }
int http_server_http_port(const struct http_server *srv) { return srv ? srv->http_port : -1; }

void http_server_stop(struct http_server *srv)
{
    if (!srv)
        return;
    /* 1. no new connections; 2. workers finish the queue (requests arriving
     * meanwhile on open connections get 503); 3. loops send the last
     * replies, wait for them to flush, and exit. */
    signal_io(srv, PHASE_CLOSE_LISTENERS);
    pool_close_and_join(srv);
    signal_io(srv, PHASE_DRAIN);
    for (int i = 0; i < srv->nio; i++)
        if (srv->io[i].running) {
            pthread_join(srv->io[i].thread, NULL);
            srv->io[i].running = 0;
        }
    server_free(srv);
    log_info("http_stopped", "%s", "");
}
