/* conn.c: one HTTP/2 connection of steward-apns-mock on libnghttp2 over a
 * blocking TLS socket (its own thread, started by main.c). Headers and DATA
 * of each stream fill a mock_request; at END_STREAM check.c decides the
 * answer, main.c records it, and the response goes out with Apple's
 * apns-id header and, for errors, Apple's {"reason": …} body (plus the
 * timestamp for 410); the frames of a round go out together in one TLS
 * record, over a TCP_NODELAY socket, as a server's would. --delay-ms holds
 * answers back on a queue until due;
 * --stall-after makes the connection go silent (see mock.h). */
#include "apnsmock/mock.h"

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct stream {
    struct mock_request req;
    char resp_body[256];
    size_t resp_len, resp_off;
    char apns_id[40];
    char status[8];
};

/* An answer held back by --delay-ms. */
struct delayed {
    int32_t id;
    int64_t due_ms;
};

struct conn {
    const struct mock_config *cfg;
    SSL *ssl;
    const char *cert_topic;
    long index;
    int broken;
    uint8_t out[16384]; /* frames gathered into one TLS record, as servers do */
    size_t out_len;
    struct delayed *delayed; /* ring, in arrival order (one delay: due order too) */
    size_t dhead, dlen, dcap;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(struct conn *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        int n = SSL_write(c->ssl, data + off, (int)(len - off));
        if (n <= 0) {
            c->broken = 1;
            return -1;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Writes the gathered frames (after each nghttp2_session_send). */
static int flush_out(struct conn *c)
{
    int rc = c->out_len ? write_all(c, c->out, c->out_len) : 0;
    c->out_len = 0;
    return rc;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *u)
{
    (void)s;
    (void)flags;
    struct conn *c = u;
    if (len > sizeof c->out - c->out_len && flush_out(c) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (len > sizeof c->out)
        return write_all(c, data, len) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : (ssize_t)len;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return (ssize_t)len;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    (void)u;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

/* Copies a header value into dst, flagging a repeat of the same header. */
static void take(char *dst, size_t n, int *has, const uint8_t *v, size_t vlen,
                 struct mock_request *r)
{
    if (*has)
        r->duplicate_header = 1;
    *has = 1;
    size_t k = vlen < n - 1 ? vlen : n - 1;
    memcpy(dst, v, k);
    dst[k] = '\0';
}

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
    struct mock_request *r = &st->req;
    int dummy = 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
    if (IS(":method"))
        take(r->method, sizeof r->method, &dummy, value, valuelen, r);
    else if (IS(":path"))
        take(r->path, sizeof r->path, &dummy, value, valuelen, r);
    else if (IS("apns-topic"))
        take(r->topic, sizeof r->topic, &r->has_topic, value, valuelen, r);
    else if (IS("apns-push-type"))
        take(r->push_type, sizeof r->push_type, &r->has_push_type, value, valuelen, r);
    else if (IS("apns-priority"))
        take(r->priority, sizeof r->priority, &r->has_priority, value, valuelen, r);
    else if (IS("apns-expiration"))
        take(r->expiration, sizeof r->expiration, &r->has_expiration, value, valuelen, r);
    else if (IS("apns-id"))
        take(r->apns_id, sizeof r->apns_id, &r->has_apns_id, value, valuelen, r);
#undef IS
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
    struct mock_request *r = &st->req;
    if (r->body_len + len > MOCK_MAX_BODY) {
        r->body_too_large = 1;
        return 0;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *u)
{
    (void)s;
    (void)id;
    (void)u;
    struct stream *st = src->ptr;
    size_t left = st->resp_len - st->resp_off;
    size_t k = left < len ? left : len;
    memcpy(buf, st->resp_body + st->resp_off, k);
    st->resp_off += k;
    if (st->resp_off == st->resp_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

static void new_apns_id(char out[40], const char *given)
{
    if (given && *given) {
        snprintf(out, 40, "%.36s", given);
        return;
    }
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        memset(b, 0x42, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static int respond(nghttp2_session *s, struct conn *c, int32_t id, struct stream *st)
{
    if (mock_conn_stalled(c->index))
        return 0; /* silent: the push is never answered */
    struct mock_answer a;
    long seq = mock_next_seq();
    mock_check(c->cfg, &st->req, c->cert_topic, seq, &a);
    new_apns_id(st->apns_id, st->req.has_apns_id && a.status != 400 ? st->req.apns_id : NULL);
    snprintf(st->status, sizeof st->status, "%d", a.status);
    if (a.status == 410) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        long long ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        st->resp_len = (size_t)snprintf(st->resp_body, sizeof st->resp_body,
                                        "{\"reason\":\"%s\",\"timestamp\":%lld}", a.reason, ms);
    } else if (a.status != 200) {
        st->resp_len = (size_t)snprintf(st->resp_body, sizeof st->resp_body,
                                        "{\"reason\":\"%s\"}", a.reason);
    }
    mock_record(c->cfg, st->req.topic, &st->req, &a, st->apns_id);
    nghttp2_nv hdrs[] = {
        {(uint8_t *)":status", (uint8_t *)st->status, 7, strlen(st->status),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"apns-id", (uint8_t *)st->apns_id, 7, strlen(st->apns_id),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, NGHTTP2_NV_FLAG_NONE},
    };
    mock_answered(c->cfg, seq);
    if (st->resp_len == 0)
        return nghttp2_submit_response(s, id, hdrs, 2, NULL);
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    return nghttp2_submit_response(s, id, hdrs, 3, &dp);
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
        !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    struct stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    struct conn *c = u;
    if (c->cfg->delay_ms > 0) {
        if (c->dlen == c->dcap) {
            size_t cap = c->dcap ? c->dcap * 2 : 64;
            struct delayed *d = malloc(cap * sizeof *d);
            if (!d)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            for (size_t i = 0; i < c->dlen; i++)
                d[i] = c->delayed[(c->dhead + i) % c->dcap];
            free(c->delayed);
            c->delayed = d;
            c->dcap = cap;
            c->dhead = 0;
        }
        c->delayed[(c->dhead + c->dlen++) % c->dcap] =
            (struct delayed){.id = f->hd.stream_id, .due_ms = mono_ms() + c->cfg->delay_ms};
        return 0;
    }
    return respond(s, c, f->hd.stream_id, st) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* Answers the held-back pushes that are due; milliseconds until the next
 * one is (-1: none waits). */
static int answer_due(nghttp2_session *s, struct conn *c)
{
    int64_t now = mono_ms();
    while (c->dlen > 0) {
        struct delayed *d = &c->delayed[c->dhead];
        if (d->due_ms > now)
            return (int)(d->due_ms - now);
        int32_t id = d->id;
        c->dhead = (c->dhead + 1) % c->dcap;
        c->dlen--;
        struct stream *st = nghttp2_session_get_stream_user_data(s, id);
        if (st && respond(s, c, id, st) != 0)
            c->broken = 1;
    }
    return -1;
}

/* A silent connection: reads nothing, answers nothing, until the client
 * closes it. */
static void stay_silent(SSL *ssl)
{
    struct pollfd p = {.fd = SSL_get_fd(ssl), .events = POLLRDHUP};
    for (;;) {
        int n = poll(&p, 1, 1000);
        if (n < 0 || (n > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))))
            return;
    }
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
    (void)code;
    (void)u;
    free(nghttp2_session_get_stream_user_data(s, id));
    nghttp2_session_set_stream_user_data(s, id, NULL);
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *u)
{
    (void)s;
    struct conn *c = u;
    if (!c->cfg->quiet)
        fprintf(stderr, "apns-mock: HTTP/2: %.*s (%d)\n", (int)len, msg, code);
    return 0;
}

void mock_serve_conn(const struct mock_config *cfg, SSL *ssl, const char *cert_topic, long index)
{
    struct conn c = {.cfg = cfg, .ssl = ssl, .cert_topic = cert_topic, .index = index};
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return;
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    /* Some clients (libcurl 7.88, which steward's provider used first)
     * send RST_STREAM for each stream once its answer is in (the stream is
     * already closed, so nothing is cancelled). nghttp2's
     * rapid-reset guard (CVE-2023-44487) would end a long-lived connection
     * after about a thousand of them; a provider connection carries far
     * more pushes than that, so the guard is set well above push rates. */
    nghttp2_option *opt = NULL;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return;
    }
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000000, 1000000);
    nghttp2_session *s = NULL;
    int rc = nghttp2_session_server_new2(&s, cb, &c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, 2);
    uint8_t buf[16384];
    while (!c.broken && (nghttp2_session_want_read(s) || nghttp2_session_want_write(s))) {
        int next_due = answer_due(s, &c);
        int sent = nghttp2_session_send(s);
        if (sent == 0 && flush_out(&c) < 0)
            break;
        if (sent != 0) {
            if (!cfg->quiet && !c.broken)
                fprintf(stderr, "apns-mock: HTTP/2 send error: %s\n", nghttp2_strerror(sent));
            break;
        }
        if (mock_conn_stalled(index)) {
            stay_silent(ssl);
            break;
        }
        if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s))
            break;
        if (next_due >= 0 && SSL_pending(ssl) <= 0) {
            struct pollfd p = {.fd = SSL_get_fd(ssl), .events = POLLIN};
            if (poll(&p, 1, next_due) == 0)
                continue; /* an answer is due before anything arrived */
        }
        /* Take everything already there before answering, so a client
         * that writes stream by stream gets its answers in batches. */
        int fails = 0;
        for (int round = 0; round < 64; round++) {
            if (round > 0) {
                struct pollfd p = {.fd = SSL_get_fd(ssl), .events = POLLIN};
                if (SSL_pending(ssl) <= 0 && poll(&p, 1, 0) <= 0)
                    break;
            }
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0) {
                int e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_READ && round > 0)
                    break; /* only a TLS record without data was there */
                if (!cfg->quiet && e != SSL_ERROR_ZERO_RETURN) {
                    unsigned long le = ERR_get_error();
                    fprintf(stderr, "apns-mock: read failed (TLS error %d: %s)\n", e,
                            le ? ERR_reason_error_string(le) : "?");
                }
                fails = 1;
                break;
            }
            ssize_t used = nghttp2_session_mem_recv(s, buf, (size_t)n);
            if (used < 0) {
                if (!cfg->quiet)
                    fprintf(stderr, "apns-mock: HTTP/2 error: %s\n", nghttp2_strerror((int)used));
                fails = 1;
                break;
            }
        }
        if (fails)
            break;
    }
    nghttp2_session_del(s);
    free(c.delayed);
}
