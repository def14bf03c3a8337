/* client.c: the APNs provider client of apns.h, HTTP/2 on libnghttp2 over
 * OpenSSL. One apns_client per topic holds one TLS context (the push
 * certificate loaded once) and up to apns_opts.connections long-lived
 * connections; a new one opens only when every open one carries its most
 * streams. apns_clients_run is the poll loop of the caller's thread: it
 * pulls pushes onto free streams (apns_opts.next), writes the frames
 * nghttp2 queued in large TLS records, and hands each push back
 * (apns_opts.done) as its stream closes, so streams are refilled as answers
 * arrive rather than batch by batch. A connection that fails, is sent
 * GOAWAY or stops answering PINGs takes no more streams; its unanswered
 * pushes come back as APNS_RETRY for core/push.c to retry. */
#include "push/apns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define MAX_CONNS 64
#define MAX_POLL 256 /* connections polled at once by apns_clients_run */
#define RESP_MAX 512
#define CONNECT_TIMEOUT_MS 10000
#define REOPEN_AFTER_MS 1000 /* after a failed open, pushes fail fast this long */
#define OUT_MAX 16384 /* one full TLS record */

struct conn;

/* One push on a stream. Streams come from the client's pool and sit on
 * its in-flight list, oldest first (they share one timeout, so the head
 * is the next to expire). */
struct stream {
    struct apns_push *p;
    struct conn *c;
    struct stream *prev, *next; /* in-flight list, or next in the free pool */
    int32_t id;
    int64_t deadline_ms;
    char path[224];
    char body[160];
    size_t body_len, body_off;
    char resp[RESP_MAX];
    size_t resp_len;
};

struct conn {
    struct apns_client *cl;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    size_t active;      /* our streams still open on it */
    int dead;           /* I/O or protocol failure: drop it */
    int goaway;         /* the server said GOAWAY: no new streams */
    char why[96];       /* why it died */
    int64_t last_recv_ms;  /* when bytes last arrived */
    int64_t busy_since_ms; /* when active last went from 0 to 1 */
    int64_t ping_sent_ms;  /* an unanswered PING went out then; 0: none */
    uint8_t out[OUT_MAX + 1024];
    size_t out_len, out_off; /* frames waiting to be written */
    const uint8_t *spill;    /* a frame from nghttp2 that did not fit in out */
    size_t spill_len;
};

struct apns_client {
    char *topic;
    char host[256];
    char port[8];
    char authority[280];
    int host_is_ip;
    struct apns_opts o;
    SSL_CTX *ctx;
    nghttp2_session_callbacks *cbs;
    struct conn *conns[MAX_CONNS];
    size_t nconns;
    struct stream *head, *tail; /* in flight, oldest first */
    struct stream *pool;        /* free streams */
    size_t inflight;
    int failures;          /* connections lost or not opened since the last answer */
    int64_t reopen_ms;     /* no new connection attempt before this */
    char open_why[128];    /* why the last attempt failed */
    size_t topic_len, authority_len;
    char priority[4];
    char expiration[24];
    size_t expiration_len;
    int64_t expiration_at; /* unix second expiration was computed for */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail_item(struct apns_push *p, enum apns_outcome o, const char *why)
{
    p->status = 0;
    p->outcome = o;
    snprintf(p->reason, sizeof p->reason, "%s", why ? why : "");
}

/* ---- a stream's end ------------------------------------------------------ */

/* Ends stream st with its answer, or as a retry for why when none came,
 * hands its push back and returns st to the pool. */
static void stream_finish(struct stream *st, uint32_t h2_error, const char *why)
{
    struct apns_client *cl = st->c->cl;
    st->c->active--;
    cl->inflight--;
    if (st->prev)
        st->prev->next = st->next;
    else
        cl->head = st->next;
    if (st->next)
        st->next->prev = st->prev;
    else
        cl->tail = st->prev;
    struct apns_push *p = st->p;
    if (p->status != 0 && h2_error == NGHTTP2_NO_ERROR && !why) {
        p->outcome = apns_classify(p->status, st->resp, st->resp_len, p->reason,
                                   sizeof p->reason, &p->timestamp);
        cl->failures = 0;
    } else {
        char buf[64];
        if (!why) {
            if (h2_error == NGHTTP2_REFUSED_STREAM)
                why = "GOAWAY: stream refused, not processed";
            else {
                snprintf(buf, sizeof buf, "stream reset by APNs (%s)",
                         nghttp2_http2_strerror(h2_error));
                why = buf;
            }
        }
        fail_item(p, APNS_RETRY, why);
    }
    st->p = NULL;
    st->c = NULL;
    st->id = 0;
    st->prev = NULL;
    st->next = cl->pool;
    cl->pool = st;
    cl->o.done(p, cl->o.arg);
}

/* ---- nghttp2 callbacks ------------------------------------------------------ */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *u)
{
    (void)flags;
    (void)u;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        long status = 0;
        for (size_t i = 0; i < valuelen && i < 3 && value[i] >= '0' && value[i] <= '9'; i++)
            status = status * 10 + (value[i] - '0');
        if (status >= 200) /* a 1xx is informational: the answer follows */
            st->p->status = status;
    } else if (namelen == 7 && memcmp(name, "apns-id", 7) == 0) {
        size_t k = valuelen < sizeof st->p->apns_id - 1 ? valuelen : sizeof st->p->apns_id - 1;
        memcpy(st->p->apns_id, value, k);
        st->p->apns_id[k] = '\0';
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *u)
{
    (void)flags;
    (void)u;
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    size_t room = RESP_MAX - 1 - st->resp_len;
    size_t take = len < room ? len : room;
    memcpy(st->resp + st->resp_len, data, take);
    st->resp_len += take;
    st->resp[st->resp_len] = '\0';
    return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    (void)s;
    struct conn *c = u;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = 1;
        snprintf(c->why, sizeof c->why, "GOAWAY from APNs (%s)",
                 nghttp2_http2_strerror(f->goaway.error_code));
    } else if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->ping_sent_ms = 0;
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
    (void)u;
    struct stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_finish(st, code, NULL);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *u)
{
    (void)s;
    (void)u;
    struct stream *st = src->ptr;
    if (st->id != id) /* the push timed out and its stream slot was reused */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t left = st->body_len - st->body_off;
    size_t k = left < len ? left : len;
    memcpy(buf, st->body + st->body_off, k);
    st->body_off += k;
    if (st->body_off == st->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_fail(struct conn *c, const char *fmt, const char *detail)
{
    if (!c->dead)
        snprintf(c->why, sizeof c->why, fmt, detail ? detail : "");
    c->dead = 1;
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    if (c->h2)
        nghttp2_session_del(c->h2);
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* Waits for fd to be ready for events until deadline; 1 ready, 0 not. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    int64_t left = deadline - mono_ms();
    if (left <= 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, (int)left) > 0;
}

/* A connected non-blocking TCP socket to the client's host, or -1. */
static int tcp_connect(struct apns_client *cl, int64_t deadline, char *why, size_t whyn)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(cl->host, cl->port, &hints, &ai);
    if (rc != 0) {
        snprintf(why, whyn, "cannot resolve %.60s: %s", cl->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    snprintf(why, whyn, "cannot connect to %.60s:%s", cl->host, cl->port);
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int err = 0;
        socklen_t len = sizeof err;
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 &&
            (errno != EINPROGRESS || !wait_fd(fd, POLLOUT, deadline) ||
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)) {
            snprintf(why, whyn, "cannot connect to %.60s:%s: %s", cl->host, cl->port,
                     strerror(err ? err : errno == EINPROGRESS ? ETIMEDOUT : errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

/* The TLS handshake: the server's certificate verified for the host, ALPN h2. */
static int tls_handshake(struct apns_client *cl, struct conn *c, int64_t deadline)
{
    c->ssl = SSL_new(cl->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(c, "out of memory%s", NULL);
        return -1;
    }
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    if (cl->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, cl->host) != 1
                       : (SSL_set_tlsext_host_name(c->ssl, cl->host) != 1 ||
                          X509_VERIFY_PARAM_set1_host(vp, cl->host, 0) != 1)) {
        conn_fail(c, "cannot set the TLS host name%s", NULL);
        return -1;
    }
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(c->ssl, rc);
        if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
            wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
            continue;
        long vr = SSL_get_verify_result(c->ssl);
        unsigned long le = ERR_peek_last_error();
        conn_fail(c, "TLS handshake with APNs failed: %s",
                  vr != X509_V_OK ? X509_verify_cert_error_string(vr)
                  : e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? "timed out"
                  : le ? ERR_reason_error_string(le)
                       : "connection closed");
        return -1;
    }
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        conn_fail(c, "server did not speak HTTP/2%s", NULL);
        return -1;
    }
    return 0;
}

/* Opens one more connection; NULL with why set when it cannot. */
static struct conn *conn_open(struct apns_client *cl, char *why, size_t whyn)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(why, whyn, "out of memory");
        return NULL;
    }
    c->cl = cl;
    int64_t deadline = mono_ms() + CONNECT_TIMEOUT_MS;
    c->fd = tcp_connect(cl, deadline, why, whyn);
    if (c->fd < 0) {
        free(c);
        return NULL;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (tls_handshake(cl, c, deadline) < 0 || nghttp2_session_client_new(&c->h2, cl->cbs, c) != 0 ||
        nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 1) != 0) {
        snprintf(why, whyn, "%s", c->dead ? c->why : "out of memory");
        conn_free(c);
        return NULL;
    }
    c->last_recv_ms = mono_ms();
    return c;
}

/* Writes what nghttp2 has queued, gathered into records of up to OUT_MAX
 * bytes; stops (without failing) when the socket is full. */
static void conn_flush(struct conn *c)
{
    while (!c->dead) {
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            for (;;) {
                if (c->spill_len) {
                    size_t k = c->spill_len < sizeof c->out - c->out_len
                                   ? c->spill_len
                                   : sizeof c->out - c->out_len;
                    memcpy(c->out + c->out_len, c->spill, k);
                    c->out_len += k;
                    c->spill += k;
                    c->spill_len -= k;
                    if (c->spill_len)
                        break;
                }
                if (c->out_len >= OUT_MAX)
                    break;
                const uint8_t *data = NULL;
                ssize_t n = nghttp2_session_mem_send(c->h2, &data);
                if (n < 0) {
                    conn_fail(c, "HTTP/2 error: %s", nghttp2_strerror((int)n));
                    return;
                }
                if (n == 0)
                    break;
                c->spill = data;
                c->spill_len = (size_t)n;
            }
            if (c->out_len == 0)
                return;
        }
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
            conn_fail(c, "connection to APNs lost while writing%s", NULL);
        return;
    }
}

/* Reads whatever arrived and hands it to nghttp2 (which runs the callbacks). */
static void conn_read(struct conn *c)
{
    uint8_t buf[16384];
    while (!c->dead) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n > 0) {
            c->last_recv_ms = mono_ms();
            ssize_t used = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
            if (used < 0)
                conn_fail(c, "HTTP/2 error from APNs: %s", nghttp2_strerror((int)used));
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return;
        unsigned long le = e == SSL_ERROR_SSL ? ERR_peek_last_error() : 0;
        if (le)
            conn_fail(c, "TLS error from APNs: %s", ERR_reason_error_string(le));
        else
            conn_fail(c, "%s", c->goaway ? c->why : "connection closed by APNs");
    }
}


/* Splits "https://host[:port][/…]" into host and port. */
static int parse_url(struct apns_client *c, const char *url, char **err)
{
    static const char scheme[] = "https://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        *err = strdup("APNs URL must start with https://");
        return -1;
    }
    const char *h = url + sizeof scheme - 1, *end = h + strcspn(h, "/");
    const char *hend, *colon;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (!hend)
            goto bad;
        colon = hend + 1 < end && hend[1] == ':' ? hend + 1 : NULL;
        h++;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        hend = colon ? colon : end;
    }
    size_t hl = (size_t)(hend - h), pl = colon ? (size_t)(end - colon - 1) : 3;
    if (hl == 0 || hl >= sizeof c->host || pl == 0 || pl >= sizeof c->port)
        goto bad;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    if (colon) {
        memcpy(c->port, colon + 1, pl);
        c->port[pl] = '\0';
    } else {
        memcpy(c->port, "443", 4);
    }
    unsigned char addr[16];
    c->host_is_ip = inet_pton(AF_INET, c->host, addr) == 1 || inet_pton(AF_INET6, c->host, addr) == 1;
    int ipv6 = strchr(c->host, ':') != NULL;
    snprintf(c->authority, sizeof c->authority, "%s%s%s%s%s", ipv6 ? "[" : "", c->host,
             ipv6 ? "]" : "", colon ? ":" : "", colon ? c->port : "");
    return 0;
bad:
    *err = strdup("APNs URL has no usable host and port");
    return -1;
}

/* The TLS context every connection of the client shares: the push
 * certificate (with any chain after it) and key, the server verified
 * against ca_file or the system's roots, TLS 1.2+, ALPN h2 only. */
static const char *make_tls_context(struct apns_client *c, const char *cert_pem,
                                    const char *key_pem)
{
    SSL_CTX *ctx = c->ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return "out of memory setting up TLS";
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* APNs may send each answer in a TLS record of its own: reading ahead
     * takes many records per read() instead of two reads (header, body)
     * per record. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 65536);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = "\x02h2";
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0)
        return "out of memory setting up TLS";
    if (c->o.ca_file ? SSL_CTX_load_verify_locations(ctx, c->o.ca_file, NULL) != 1
                     : SSL_CTX_set_default_verify_paths(ctx) != 1)
        return "cannot load the CA certificates verifying APNs";
    const char *why = NULL;
    BIO *b = BIO_new_mem_buf(cert_pem, -1);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1)
        why = "the push certificate cannot be used";
    for (X509 *x; !why && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL;)
        if (SSL_CTX_add_extra_chain_cert(ctx, x) != 1) { /* takes x on success */
            X509_free(x);
            why = "the push certificate's chain cannot be used";
        }
    X509_free(leaf);
    BIO_free(b);
    b = why ? NULL : BIO_new_mem_buf(key_pem, -1);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    if (!why && (!key || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
                 SSL_CTX_check_private_key(ctx) != 1))
        why = "the push certificate's key cannot be used";
    EVP_PKEY_free(key);
    BIO_free(b);
    ERR_clear_error();
    return why;
}




static int conn_wants_out(const struct conn *c)
{
    return c->out_off < c->out_len || c->spill_len || nghttp2_session_want_write(c->h2);
}

/* Streams this connection can still take. */
static size_t conn_room(const struct conn *c)
{
    if (c->dead || c->goaway)
        return 0;
    uint32_t peer = nghttp2_session_get_remote_settings(c->h2,
                                                        NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    size_t cap = (size_t)c->cl->o.streams < peer ? (size_t)c->cl->o.streams : peer;
    return c->active < cap ? cap - c->active : 0;
}

/* Drops connections that died or are finished after a GOAWAY, failing
 * their unanswered pushes as retries. */
static void conns_sweep(struct apns_client *cl)
{
    for (size_t i = 0; i < cl->nconns;) {
        struct conn *c = cl->conns[i];
        int finished = c->goaway && c->active == 0 && !conn_wants_out(c);
        if (!c->dead && !finished &&
            (nghttp2_session_want_read(c->h2) || nghttp2_session_want_write(c->h2))) {
            i++;
            continue;
        }
        if (c->dead)
            log_warn("APNs connection dropped", "topic=%s why=\"%s\" unanswered=%zu", cl->topic,
                     c->why[0] ? c->why : "connection lost", c->active);
        if (c->active > 0)
            cl->failures++;
        for (struct stream *st = cl->head, *next; st && c->active > 0; st = next) {
            next = st->next;
            if (st->c == c)
                stream_finish(st, NGHTTP2_NO_ERROR, c->why[0] ? c->why : "connection lost");
        }
        conn_free(c);
        cl->conns[i] = cl->conns[--cl->nconns];
    }
}

/* ---- liveness ---------------------------------------------------------------- */

/* Sends a PING on a connection that has been silent too long, and fails
 * one whose PING went unanswered: without it a connection that died
 * silently (a NAT or firewall dropping its state) would hold every push put
 * on it until its timeout. Silent means nothing received for
 * ping_interval_ms when idle, for ping_timeout_ms while pushes wait. */
static void conn_check_alive(struct conn *c, int64_t now)
{
    const struct apns_opts *o = &c->cl->o;
    if (c->dead)
        return;
    if (c->ping_sent_ms) {
        if (now - c->ping_sent_ms >= o->ping_timeout_ms) {
            char why[80];
            snprintf(why, sizeof why, "no answer to a PING from APNs within %ld ms",
                     o->ping_timeout_ms);
            conn_fail(c, "%s", why);
        }
        return;
    }
    int64_t quiet = c->active ? now - (c->last_recv_ms > c->busy_since_ms ? c->last_recv_ms
                                                                         : c->busy_since_ms)
                              : now - c->last_recv_ms;
    if (quiet < (c->active ? o->ping_timeout_ms : o->ping_interval_ms))
        return;
    if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) != 0) {
        conn_fail(c, "cannot send a PING to APNs%s", NULL);
        return;
    }
    c->ping_sent_ms = now;
}

/* Milliseconds until conn_check_alive has something to do on c. */
static int64_t conn_alive_due(const struct conn *c, int64_t now)
{
    const struct apns_opts *o = &c->cl->o;
    if (c->ping_sent_ms)
        return c->ping_sent_ms + o->ping_timeout_ms - now;
    if (c->active) {
        int64_t since = c->last_recv_ms > c->busy_since_ms ? c->last_recv_ms : c->busy_since_ms;
        return since + o->ping_timeout_ms - now;
    }
    return c->last_recv_ms + o->ping_interval_ms - now;
}

/* ---- the client ------------------------------------------------------------- */

static pthread_once_t ssl_once = PTHREAD_ONCE_INIT;
static void ssl_init_once(void)
{
    OPENSSL_init_ssl(0, NULL);
}

size_t apns_client_inflight(const struct apns_client *c)
{
    return c->inflight;
}

int apns_client_failures(const struct apns_client *c)
{
    return c->failures;
}

void apns_client_free(struct apns_client *c)
{
    if (!c)
        return;
    while (c->head) {
        struct stream *st = c->head;
        nghttp2_session_set_stream_user_data(st->c->h2, st->id, NULL);
        stream_finish(st, NGHTTP2_NO_ERROR, "APNs client closed");
    }
    for (size_t i = 0; i < c->nconns; i++)
        conn_free(c->conns[i]);
    for (struct stream *st = c->pool, *next; st; st = next) {
        next = st->next;
        free(st);
    }
    if (c->cbs)
        nghttp2_session_callbacks_del(c->cbs);
    SSL_CTX_free(c->ctx);
    free(c->topic);
    free(c);
}

struct apns_client *apns_client_new(const char *topic, const char *cert_pem, const char *key_pem,
                                    const struct apns_opts *o, char **err)
{
    pthread_once(&ssl_once, ssl_init_once);
    *err = NULL;
    if (!o->next || !o->done) {
        *err = strdup("the APNs client needs next and done callbacks");
        return NULL;
    }
    struct apns_client *c = calloc(1, sizeof *c);
    if (!c || !(c->topic = strdup(topic)) || nghttp2_session_callbacks_new(&c->cbs) != 0) {
        apns_client_free(c);
        *err = strdup("out of memory setting up the APNs client");
        return NULL;
    }
    c->o = *o;
    if (c->o.connections <= 0)
        c->o.connections = 2;
    if (c->o.connections > MAX_CONNS)
        c->o.connections = MAX_CONNS;
    if (c->o.streams <= 0)
        c->o.streams = 500;
    if (c->o.timeout_ms <= 0)
        c->o.timeout_ms = 15000;
    if (c->o.ping_interval_ms <= 0)
        c->o.ping_interval_ms = 60000;
    if (c->o.ping_timeout_ms <= 0)
        c->o.ping_timeout_ms = 5000;
    if (c->o.priority != 5)
        c->o.priority = 10;
    snprintf(c->priority, sizeof c->priority, "%d", c->o.priority);
    c->o.url = NULL; /* not kept: the caller owns the strings */
    if (parse_url(c, o->url && *o->url ? o->url : APNS_PRODUCTION_URL, err) < 0) {
        apns_client_free(c);
        return NULL;
    }
    c->o.ca_file = o->ca_file && *o->ca_file ? o->ca_file : NULL;
    const char *why = make_tls_context(c, cert_pem ? cert_pem : "", key_pem ? key_pem : "");
    c->o.ca_file = NULL;
    if (why) {
        apns_client_free(c);
        *err = strdup(why);
        return NULL;
    }
    c->topic_len = strlen(c->topic);
    c->authority_len = strlen(c->authority);
    nghttp2_session_callbacks_set_on_header_callback(c->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c->cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c->cbs, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(c->cbs, on_close);
    return c;
}

/* Fills st for p; -1 when p cannot be sent (its outcome is set). */
static int stream_prepare(struct stream *st, struct apns_push *p)
{
    memset(p->apns_id, 0, sizeof p->apns_id);
    p->timestamp = 0;
    p->status = 0;
    st->p = p;
    st->body_off = st->resp_len = 0;
    if (apns_path(st->path, sizeof st->path, p->token_hex) < 0) {
        fail_item(p, APNS_REJECTED, "BadDeviceToken (not hex)");
        return -1;
    }
    if (apns_body(st->body, sizeof st->body, p->magic) < 0) {
        fail_item(p, APNS_REJECTED, "bad PushMagic");
        return -1;
    }
    st->body_len = strlen(st->body);
    if (st->body_len > 999) {
        fail_item(p, APNS_REJECTED, "bad PushMagic");
        return -1;
    }
    return 0;
}

#define NV(n, v, vl)                                                                       \
    {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vl),                                  \
     NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}

/* Starts st's stream on c and puts it on the in-flight list; -1 when
 * nghttp2 refuses (c takes no more). */
static int stream_start(struct apns_client *cl, struct conn *c, struct stream *st, int64_t now)
{
    char len[4]; /* the body is at most 159 bytes */
    size_t ll = 0;
    if (st->body_len >= 100)
        len[ll++] = (char)('0' + st->body_len / 100);
    if (st->body_len >= 10)
        len[ll++] = (char)('0' + st->body_len / 10 % 10);
    len[ll++] = (char)('0' + st->body_len % 10);
    nghttp2_nv h[] = {
        NV(":method", "POST", 4),
        NV(":scheme", "https", 5),
        NV(":authority", cl->authority, cl->authority_len),
        /* unique per push: kept out of HPACK's table so it does not push the topic out */
        {(uint8_t *)":path", (uint8_t *)st->path, 5, strlen(st->path),
         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE | NGHTTP2_NV_FLAG_NO_INDEX},
        NV("apns-topic", cl->topic, cl->topic_len),
        NV("apns-push-type", "mdm", 3),
        NV("apns-priority", cl->priority, strlen(cl->priority)),
        NV("apns-expiration", cl->expiration, cl->expiration_len),
        NV("content-type", "application/json", 16),
        {(uint8_t *)"content-length", (uint8_t *)len, 14, ll, NGHTTP2_NV_FLAG_NO_COPY_NAME},
    };
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->h2, NULL, h, sizeof h / sizeof h[0], &dp, st);
    if (id < 0) {
        c->goaway = 1; /* stream ids exhausted or session closing: open another */
        return -1;
    }
    st->id = id;
    st->c = c;
    st->deadline_ms = now + cl->o.timeout_ms;
    st->next = NULL;
    st->prev = cl->tail;
    if (cl->tail)
        cl->tail->next = st;
    else
        cl->head = st;
    cl->tail = st;
    if (c->active++ == 0)
        c->busy_since_ms = now;
    cl->inflight++;
    return 0;
}

/* An open connection with room for a stream, or NULL. */
static struct conn *conn_with_room(struct apns_client *cl)
{
    for (size_t i = 0; i < cl->nconns; i++)
        if (conn_room(cl->conns[i]) > 0)
            return cl->conns[i];
    return NULL;
}

/* Opens one more connection for a push; NULL with why when it cannot (a
 * failure stands for REOPEN_AFTER_MS, so a queue of pushes fails fast
 * rather than each waiting for its own connect). */
static struct conn *conn_add(struct apns_client *cl, int64_t now, char *why, size_t whyn)
{
    if (now < cl->reopen_ms) {
        snprintf(why, whyn, "%s", cl->open_why);
        return NULL;
    }
    struct conn *c = conn_open(cl, why, whyn);
    if (c) {
        cl->conns[cl->nconns++] = c;
    } else {
        cl->failures++;
        cl->reopen_ms = mono_ms() + REOPEN_AFTER_MS;
        snprintf(cl->open_why, sizeof cl->open_why, "%s", why);
    }
    return c;
}

/* A stream from the pool (or a new one); NULL when memory ran out. */
static struct stream *stream_get(struct apns_client *cl)
{
    struct stream *st = cl->pool;
    if (st) {
        cl->pool = st->next;
        st->next = NULL;
        return st;
    }
    return calloc(1, sizeof *st);
}

static void stream_put(struct apns_client *cl, struct stream *st)
{
    st->p = NULL;
    st->next = cl->pool;
    cl->pool = st;
}

/* Pulls pushes onto every free stream. When no connection can be opened
 * at all, what is pulled fails at once as a retry for that reason. */
static void fill(struct apns_client *cl, int64_t now)
{
    int64_t unix_now = (int64_t)time(NULL);
    if (unix_now != cl->expiration_at) {
        cl->expiration_at = unix_now;
        snprintf(cl->expiration, sizeof cl->expiration, "%" PRId64,
                 apns_expiration(unix_now, cl->o.ttl));
        cl->expiration_len = strlen(cl->expiration);
    }
    for (;;) {
        char why[128] = "";
        struct conn *c = conn_with_room(cl);
        if (!c && cl->nconns >= (size_t)cl->o.connections)
            return; /* every stream busy: the next answer frees one */
        struct apns_push *p = cl->o.next(cl->o.arg);
        if (!p)
            return;
        if (!c)
            c = conn_add(cl, now, why, sizeof why);
        struct stream *st = c ? stream_get(cl) : NULL;
        if (!st) {
            fail_item(p, APNS_RETRY, c ? "out of memory" : why);
            cl->o.done(p, cl->o.arg);
            continue;
        }
        if (stream_prepare(st, p) < 0) {
            stream_put(cl, st);
            cl->o.done(p, cl->o.arg);
            continue;
        }
        if (stream_start(cl, c, st, now) < 0) {
            stream_put(cl, st);
            fail_item(p, APNS_RETRY, "APNs connection closing");
            cl->o.done(p, cl->o.arg);
        }
    }
}

/* Ends pushes past their deadline as retries (with RST_STREAM to APNs). */
static void expire(struct apns_client *cl, int64_t now)
{
    while (cl->head && cl->head->deadline_ms <= now) {
        struct stream *st = cl->head;
        nghttp2_session_set_stream_user_data(st->c->h2, st->id, NULL);
        nghttp2_submit_rst_stream(st->c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        stream_finish(st, NGHTTP2_NO_ERROR, "timeout waiting for APNs");
    }
}


int apns_clients_run(struct apns_client *const *cs, size_t n, int wake_fd, int wait_ms)
{
    int64_t now = mono_ms();
    struct pollfd pf[MAX_POLL + 1];
    struct conn *pc[MAX_POLL];
    size_t np = 0;
    int64_t wait = wait_ms < 0 ? INT64_MAX : wait_ms;
    for (size_t k = 0; k < n; k++) {
        struct apns_client *cl = cs[k];
        fill(cl, now);
        if (cl->head && cl->head->deadline_ms - now < wait)
            wait = cl->head->deadline_ms - now;
        for (size_t i = 0; i < cl->nconns && np < MAX_POLL; i++) {
            struct conn *c = cl->conns[i];
            conn_flush(c);
            int64_t due = conn_alive_due(c, now);
            if (due < wait)
                wait = due;
            pc[np] = c;
            pf[np++] = (struct pollfd){.fd = c->fd,
                                       .events = (short)(POLLIN | (conn_wants_out(c) ? POLLOUT : 0))};
        }
    }
    size_t nfd = np;
    if (wake_fd >= 0)
        pf[nfd++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
    if (wait < 0)
        wait = 0;
    int ready = nfd ? poll(pf, nfd, wait > 60000 ? 60000 : (int)wait) : 0;
    if (nfd == 0 && wait > 0 && wait != INT64_MAX) {
        struct timespec ts = {wait / 1000, (wait % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; ready > 0 && i < np; i++) {
        if (pf[i].revents & (POLLIN | POLLERR | POLLHUP))
            conn_read(pc[i]);
        if (pf[i].revents & POLLOUT)
            conn_flush(pc[i]);
    }
    now = mono_ms();
    for (size_t k = 0; k < n; k++) {
        struct apns_client *cl = cs[k];
        expire(cl, now);
        for (size_t i = 0; i < cl->nconns; i++)
            conn_check_alive(cl->conns[i], now); /* a PING goes out on the next round */
        conns_sweep(cl);
    }
    return wake_fd >= 0 && ready > 0 && (pf[np].revents & POLLIN);
}
