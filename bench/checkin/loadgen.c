/* loadgen.c: bench-loadgen, the check-in benchmark's load generator. One
 * thread, one epoll loop, non-blocking OpenSSL: C connections, each acting
 * as one device (its own client certificate for mTLS), sending PUT
 * /mdm/connect in a loop and checking every answer is 200. The same program
 * drives steward and the nginx reference, so the two see identical clients.
 * Modes: plain (HTTP + Mdm-Signature), keepalive (HTTPS mTLS), handshake (a
 * full TLS handshake per request), ack (answer each command Acknowledged),
 * hold (open C TLS connections and keep them idle), enroll (Authenticate +
 * TokenUpdate per device). With --inventory, ack mode answers a
 * DeviceInformation command as a device does, with the QueryResponses it
 * asked for (the same values every time). Prints one "RESULT key=value…" line.
 * Called by bench/checkin/run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "pki/pki.h"

enum mode { M_PLAIN, M_KEEPALIVE, M_HANDSHAKE, M_ACK, M_HOLD, M_ENROLL };
static const char *const mode_names[] = {"plain", "keepalive", "handshake", "ack", "hold", "enroll"};

/* Where one connection is in its life. */
enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_SEND, C_RECV, C_HELD, C_DONE };

/* What the connection sends next (ack and enroll modes have two kinds). */
enum next_req { R_IDLE, R_ACK, R_AUTH, R_TOKEN };

struct device {
    char udid[96];
    X509 *cert;
    EVP_PKEY *key;
    char *idle_req; /* the precomputed Idle request (plain mode: with its Mdm-Signature) */
    size_t idle_len;
};

struct conn {
    int fd;
    SSL *ssl;
    enum cstate st;
    int dev;                /* index into devices */
    int started;            /* had at least one complete response (warm-up) */
    enum next_req next;
    const char *out;        /* bytes being sent: a device's idle_req or own */
    size_t out_len, out_off;
    char *own;              /* a request built for this connection (ack/enroll) */
    char *in;               /* response bytes */
    size_t in_len, in_cap;
    struct timespec t0;     /* request start (handshake mode: connect start) */
    char uuid[128];         /* ack mode: the command to acknowledge */
    char *answer;           /* ack mode, --inventory: the QueryResponses to send, or NULL */
};

struct opts {
    enum mode mode;
    const char *host, *sni, *ca_file, *devices_file, *path, *ready_file, *cpu_pids;
    int port, conns, parallel, max_devices;
    int conn_close;         /* send "Connection: close" with every request */
    int inventory;          /* ack: answer DeviceInformation with QueryResponses */
    double duration, warmup_max;
};

struct stats {
    uint32_t *lat_us;       /* one per counted response */
    size_t nlat, cap;
    long ok, fail, errors, reconnects, drained, closed_held;
    int shown;              /* failures printed so far */
};

/* The whole run; main owns it and passes it down (no globals but the
 * signal flag). */
struct run {
    struct opts o;
    struct device *devs;
    int ndev;
    SSL_CTX *ctx;
    int ep;
    struct conn *conns;
    int live;               /* connections not yet C_DONE/C_FREE (hold: not yet held) */
    int warm;               /* connections that completed one response */
    int counting;           /* inside the measured window */
    int next_enroll_dev;    /* enroll: next device to hand out */
    struct stats s;
    struct sockaddr_in addr;
};

static volatile sig_atomic_t stop_flag; /* set by SIGTERM/SIGINT */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t us_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double us = (double)(t.tv_sec - t0->tv_sec) * 1e6 + (double)(t.tv_nsec - t0->tv_nsec) / 1e3;
    return us > 4e9 ? UINT32_MAX : (uint32_t)us;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- devices and requests ---- */

static const char plist_head[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
    "<plist version=\"1.0\">\n<dict>\n";
static const char plist_tail[] = "</dict>\n</plist>\n";

/* A body like iOS sends to the ServerURL; uuid NULL for Idle; extra (may
 * be NULL) is more of the dict, for an answer's data. malloc'd. */
static char *connect_body(const char *udid, const char *status, const char *uuid,
                          const char *extra)
{
    char *b = NULL;
    int n;
    if (uuid)
        n = asprintf(&b, "%s\t<key>CommandUUID</key>\n\t<string>%s</string>\n%s"
                         "\t<key>Status</key>\n\t<string>%s</string>\n"
                         "\t<key>UDID</key>\n\t<string>%s</string>\n%s",
                     plist_head, uuid, extra ? extra : "", status, udid, plist_tail);
    else
        n = asprintf(&b, "%s\t<key>Status</key>\n\t<string>%s</string>\n"
                         "\t<key>UDID</key>\n\t<string>%s</string>\n%s",
                     plist_head, status, udid, plist_tail);
    return n < 0 ? NULL : b;
}

/* Authenticate or TokenUpdate for enroll mode. malloc'd. */
static char *checkin_body(const struct device *d, enum next_req kind)
{
    char *b = NULL;
    const char *topic = "com.apple.mgmt.External.2c4a1e7f-9b43-4f0e-8d1e-5f2a3b6c7d8e";
    int n;
    if (kind == R_AUTH)
        n = asprintf(&b, "%s\t<key>MessageType</key>\n\t<string>Authenticate</string>\n"
                         "\t<key>Topic</key>\n\t<string>%s</string>\n"
                         "\t<key>UDID</key>\n\t<string>%s</string>\n"
                         "\t<key>SerialNumber</key>\n\t<string>BENCH%s</string>\n"
                         "\t<key>OSVersion</key>\n\t<string>18.1</string>\n"
                         "\t<key>ProductName</key>\n\t<string>iPhone15,2</string>\n%s",
                     plist_head, topic, d->udid, d->udid + strlen(d->udid) - 6, plist_tail);
    else
        n = asprintf(&b, "%s\t<key>MessageType</key>\n\t<string>TokenUpdate</string>\n"
                         "\t<key>Topic</key>\n\t<string>%s</string>\n"
                         "\t<key>UDID</key>\n\t<string>%s</string>\n"
                         "\t<key>Token</key>\n\t<data>q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=</data>\n"
                         "\t<key>PushMagic</key>\n\t<string>6C1C3E4B-5D2A-4F8E-9B7A-0D1E2F3A4B5C</string>\n"
                         "\t<key>AwaitingConfiguration</key>\n\t<false/>\n%s",
                     plist_head, topic, d->udid, plist_tail);
    return n < 0 ? NULL : b;
}

/* The full HTTP/1.1 request around body; sig may be NULL. malloc'd. */
static char *http_request(const struct opts *o, const char *path, const char *body,
                          const char *sig, size_t *len)
{
    /* Handshake mode closes from the client side after each answer; it asks
     * with "Connection: close" only under --conn-close (see README: steward
     * drops some such requests). */
    char *r = NULL;
    int n = asprintf(&r,
                     "PUT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: MDM/1.0\r\n"
                     "Content-Type: application/x-apple-aspen-mdm\r\n%s%s%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, o->sni, sig ? "Mdm-Signature: " : "", sig ? sig : "", sig ? "\r\n" : "",
                     o->conn_close ? "Connection: close\r\n" : "", strlen(body), body);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return r;
}

static int device_udid(X509 *cert, char *out, size_t n)
{
    return X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)n) > 0
               ? 0
               : -1;
}

/* Reads certificate+key pairs (bench-issue's output) and precomputes each
 * device's Idle request; plain mode signs the body once per device. */
static void load_devices(struct run *r)
{
    FILE *f = fopen(r->o.devices_file, "r");
    if (!f)
        die("%s: %s", r->o.devices_file, strerror(errno));
    int cap = 0;
    for (;;) {
        if (r->o.max_devices > 0 && r->ndev >= r->o.max_devices)
            break;
        X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
        if (!cert)
            break;
        EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        if (!key)
            die("%s: certificate %d has no key after it", r->o.devices_file, r->ndev);
        if (r->ndev == cap) {
            cap = cap ? 2 * cap : 256;
            r->devs = realloc(r->devs, (size_t)cap * sizeof *r->devs);
            if (!r->devs)
                die("out of memory");
        }
        struct device *d = &r->devs[r->ndev++];
        memset(d, 0, sizeof *d);
        d->cert = cert;
        d->key = key;
        if (device_udid(cert, d->udid, sizeof d->udid) < 0)
            die("certificate %d has no CN", r->ndev - 1);
    }
    ERR_clear_error();
    fclose(f);
    if (r->ndev == 0)
        die("%s holds no devices", r->o.devices_file);
    for (int i = 0; i < r->ndev; i++) {
        struct device *d = &r->devs[i];
        char *body = connect_body(d->udid, "Idle", NULL, NULL);
        char *sig = NULL;
        if (!body)
            die("out of memory");
        if (r->o.mode == M_PLAIN) {
            sig = pki_sign_mdm_signature(d->cert, d->key, (const uint8_t *)body, strlen(body));
            if (!sig)
                die("cannot sign for device %s", d->udid);
        }
        d->idle_req = http_request(&r->o, r->o.path, body, sig, &d->idle_len);
        if (!d->idle_req)
            die("out of memory");
        free(body);
        free(sig);
    }
}

/* ---- TLS ---- */

static SSL_CTX *client_ctx(const struct opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        die("SSL_CTX_new failed");
    if (SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1)
        die("cannot load CA %s", o->ca_file);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Every handshake is a full one: no tickets offered, no session kept. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static int tls_attach(struct run *r, struct conn *c)
{
    const struct device *d = &r->devs[c->dev];
    c->ssl = SSL_new(r->ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_use_certificate(c->ssl, d->cert) != 1 ||
        SSL_use_PrivateKey(c->ssl, d->key) != 1 ||
        SSL_set_tlsext_host_name(c->ssl, r->o.sni) != 1 || SSL_set1_host(c->ssl, r->o.sni) != 1)
        return -1;
    SSL_set_connect_state(c->ssl);
    return 0;
}

/* ---- statistics ---- */

static void record(struct run *r, struct conn *c, int ok)
{
    if (!r->counting)
        return;
    if (!ok) {
        r->s.fail++;
        return;
    }
    r->s.ok++;
    if (r->s.nlat == r->s.cap) {
        r->s.cap = r->s.cap ? 2 * r->s.cap : 1 << 16;
        r->s.lat_us = realloc(r->s.lat_us, r->s.cap * sizeof *r->s.lat_us);
        if (!r->s.lat_us)
            die("out of memory");
    }
    r->s.lat_us[r->s.nlat++] = us_since(&c->t0);
}

static void show_failure(struct run *r, const char *what, const char *detail, size_t n)
{
    if (r->s.shown++ >= 5)
        return;
    fprintf(stderr, "bench-loadgen: %s: %.*s\n", what, (int)(n > 300 ? 300 : n), detail);
}

/* ---- connection life ---- */

static void conn_close(struct run *r, struct conn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->in_len = 0;
    c->st = C_FREE;
}

static int conn_open(struct run *r, struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    c->in_len = 0;
    c->out = NULL;
    if (connect(c->fd, (struct sockaddr *)&r->addr, sizeof r->addr) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->st = C_CONNECTING;
    if (r->o.mode != M_PLAIN && tls_attach(r, c) < 0) {
        conn_close(r, c);
        return -1;
    }
    return 0;
}

/* Sets up the next request for c in c->out. */
static int prepare_request(struct run *r, struct conn *c)
{
    struct device *d = &r->devs[c->dev];
    free(c->own);
    c->own = NULL;
    if (c->next == R_IDLE) {
        c->out = d->idle_req;
        c->out_len = d->idle_len;
    } else {
        char *body = c->next == R_ACK ? connect_body(d->udid, "Acknowledged", c->uuid, c->answer)
                                      : checkin_body(d, c->next);
        const char *path = c->next == R_ACK ? r->o.path : "/mdm/checkin";
        if (!body)
            return -1;
        c->own = http_request(&r->o, path, body, NULL, &c->out_len);
        free(body);
        if (!c->own)
            return -1;
        c->out = c->own;
    }
    c->out_off = 0;
    c->in_len = 0;
    if (r->o.mode != M_HANDSHAKE)
        clock_gettime(CLOCK_MONOTONIC, &c->t0);
    c->st = C_SEND;
    return 0;
}

/* Reads into c->in until the socket would block. 1 = progress or would
 * block, 0 = peer closed, -1 = error. */
static int conn_read(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? 2 * c->in_cap : 8192;
            char *p = realloc(c->in, cap);
            if (!p)
                return -1;
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n;
        if (c->ssl) {
            size_t got = 0;
            /* SSL_get_error reads the thread's error queue first: a stale
             * entry (the last connection's unexpected EOF, say) would turn
             * this read's WANT_READ into a false error. */
            ERR_clear_error();
            int rc = SSL_read_ex(c->ssl, c->in + c->in_len, c->in_cap - c->in_len - 1, &got);
            if (rc == 1) {
                c->in_len += got;
                continue;
            }
            int e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 1;
            return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0)
            return 0;
        return errno == EAGAIN || errno == EINTR ? 1 : -1;
    }
}

/* 1 when all of c->out went out, 0 when the socket would block, -1 on error. */
static int conn_write(struct conn *c)
{
    while (c->out_off < c->out_len) {
        if (c->ssl) {
            size_t put = 0;
            ERR_clear_error(); /* see conn_read */
            int rc = SSL_write_ex(c->ssl, c->out + c->out_off, c->out_len - c->out_off, &put);
            if (rc == 1) {
                c->out_off += put;
                continue;
            }
            int e = SSL_get_error(c->ssl, rc);
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
        }
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0)
            c->out_off += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        else
            return -1;
    }
    return 1;
}

struct response {
    int status;
    size_t header_len, body_len;
    int close;
};

static const char *find_header(const char *h, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = h; p && p + nl < h + n; p = memchr(p, '\n', (size_t)(h + n - p))) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return p + nl + 1;
    }
    return NULL;
}

/* 1 when c->in holds a complete response (described in *rs), 0 when more
 * is needed, -1 when it is not HTTP we understand. */
static int parse_response(struct conn *c, struct response *rs)
{
    c->in[c->in_len] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return c->in_len > 65536 ? -1 : 0;
    rs->header_len = (size_t)(end - c->in) + 4;
    if (sscanf(c->in, "HTTP/1.%*d %d", &rs->status) != 1)
        return -1;
    const char *cl = find_header(c->in, rs->header_len, "Content-Length");
    if (!cl)
        return -1; /* both servers send Content-Length; chunked is not expected */
    rs->body_len = strtoul(cl, NULL, 10);
    const char *conn = find_header(c->in, rs->header_len, "Connection");
    rs->close = conn && strncasecmp(conn + strspn(conn, " "), "close", 5) == 0;
    return c->in_len >= rs->header_len + rs->body_len ? 1 : 0;
}

/* The CommandUUID inside a command plist. 0 found, -1 not. */
static int command_uuid(const char *body, size_t len, char *out, size_t n)
{
    static const char key[] = "<key>CommandUUID</key>";
    const char *k = memmem(body, len, key, sizeof key - 1);
    if (!k)
        return -1;
    const char *s = strstr(k, "<string>");
    const char *e = s ? strstr(s, "</string>") : NULL;
    if (!s || !e || (size_t)(e - s - 8) >= n)
        return -1;
    memcpy(out, s + 8, (size_t)(e - s - 8));
    out[e - s - 8] = '\0';
    return 0;
}

/* Answers a device gives to DeviceInformation queries (iOS's types). */
static const struct {
    const char *query, *value;
} device_answers[] = {
    {"OSVersion", "<string>18.1</string>"},
    {"BuildVersion", "<string>22B83</string>"},
    {"SerialNumber", "<string>F2LXBENCH0001</string>"},
    {"DeviceName", "<string>Bench iPhone</string>"},
    {"ModelName", "<string>iPhone</string>"},
    {"Model", "<string>MQ9T3LL/A</string>"},
    {"ProductName", "<string>iPhone15,2</string>"},
    {"BatteryLevel", "<real>0.81</real>"},
    {"IsSupervised", "<true/>"},
};

/* --inventory: the QueryResponses answering a DeviceInformation command
 * (each query of the table it asks), into c->answer; NULL for any other
 * command. 0, or -1 when out of memory. */
static int prepare_answer(struct conn *c, const char *body, size_t len)
{
    free(c->answer);
    c->answer = NULL;
    static const char devinfo[] = "<string>DeviceInformation</string>";
    if (!memmem(body, len, devinfo, sizeof devinfo - 1))
        return 0;
    char buf[2048];
    size_t o = (size_t)snprintf(buf, sizeof buf, "\t<key>QueryResponses</key>\n\t<dict>\n");
    for (size_t i = 0; i < sizeof device_answers / sizeof device_answers[0]; i++) {
        char q[96];
        int qn = snprintf(q, sizeof q, "<string>%s</string>", device_answers[i].query);
        if (!memmem(body, len, q, (size_t)qn))
            continue;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "\t\t<key>%s</key>\n\t\t%s\n",
                              device_answers[i].query, device_answers[i].value);
    }
    snprintf(buf + o, sizeof buf - o, "\t</dict>\n");
    c->answer = strdup(buf);
    return c->answer ? 0 : -1;
}

/* ---- what happens after each response, per mode ---- */

enum after { A_NEXT, A_RECONNECT, A_DONE, A_HOLD };

static enum after after_ack_mode(struct run *r, struct conn *c, const char *body, size_t len)
{
    int was_ack = c->next == R_ACK;
    if (len == 0 || command_uuid(body, len, c->uuid, sizeof c->uuid) < 0) {
        if (was_ack)
            record(r, c, 1);
        r->s.drained++; /* the device's queue is empty: nothing left to acknowledge */
        return A_DONE;
    }
    if (was_ack)
        record(r, c, 1);
    if (r->o.inventory && prepare_answer(c, body, len) < 0)
        die("out of memory");
    c->next = R_ACK;
    return A_NEXT;
}

static enum after after_enroll_mode(struct run *r, struct conn *c)
{
    record(r, c, 1);
    if (c->next == R_AUTH) {
        c->next = R_TOKEN;
        return A_NEXT;
    }
    if (r->next_enroll_dev >= r->ndev)
        return A_DONE;
    c->dev = r->next_enroll_dev++;
    c->next = R_AUTH;
    return A_RECONNECT;
}

static enum after on_response(struct run *r, struct conn *c, const struct response *rs)
{
    const char *body = c->in + rs->header_len;
    if (!c->started) {
        c->started = 1;
        r->warm++;
    }
    if (rs->status != 200) {
        record(r, c, 0);
        show_failure(r, "non-200 response", c->in, rs->header_len + rs->body_len);
        if (r->o.mode == M_ENROLL || r->o.mode == M_ACK || r->o.mode == M_HOLD)
            return A_DONE;
        return rs->close || r->o.mode == M_HANDSHAKE ? A_RECONNECT : A_NEXT;
    }
    switch (r->o.mode) {
    case M_HOLD:
        return A_HOLD;
    case M_ACK:
        return after_ack_mode(r, c, body, rs->body_len);
    case M_ENROLL:
        return after_enroll_mode(r, c);
    case M_HANDSHAKE:
        record(r, c, 1);
        return A_RECONNECT;
    default:
        record(r, c, 1);
        return rs->close ? A_RECONNECT : A_NEXT;
    }
}

static void conn_error(struct run *r, struct conn *c, const char *what)
{
    if (r->counting || r->o.mode == M_HOLD || r->o.mode == M_ENROLL) {
        r->s.errors++;
        unsigned long e = ERR_get_error();
        char buf[256];
        snprintf(buf, sizeof buf, "%s, device %s, state %d, %zu bytes in (%s; errno %s)", what,
                 r->devs[c->dev].udid, (int)c->st, c->in_len,
                 e ? ERR_reason_error_string(e) : "-", strerror(errno));
        show_failure(r, "connection error", buf, strlen(buf));
    }
    ERR_clear_error();
}

/* Starts (or restarts) a connection; one that cannot even start is done. */
static void conn_start(struct run *r, struct conn *c)
{
    if (conn_open(r, c) < 0) {
        conn_error(r, c, "connect");
        c->st = C_DONE;
        r->live--;
    }
}

static void reconnect(struct run *r, struct conn *c)
{
    conn_close(r, c);
    r->s.reconnects++;
    if (stop_flag) {
        c->st = C_DONE;
        r->live--;
        return;
    }
    conn_start(r, c); /* the socket's first EPOLLOUT drives it on */
}

static void finish(struct run *r, struct conn *c)
{
    conn_close(r, c);
    c->st = C_DONE;
    r->live--;
}

/* 1 connected, 0 still connecting, -1 failed (errno set). */
static int step_connecting(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    if (err != 0) {
        errno = err;
        return -1;
    }
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    return getpeername(c->fd, (struct sockaddr *)&peer, &plen) == 0 ? 1 : 0;
}

/* Runs c's state machine until it would block. */
static void drive(struct run *r, struct conn *c)
{
    for (;;) {
        switch (c->st) {
        case C_CONNECTING: {
            int rc = step_connecting(c);
            if (rc == 0)
                return;
            if (rc < 0) {
                conn_error(r, c, "connect");
                if (r->o.mode == M_HOLD) {
                    finish(r, c);
                    return;
                }
                reconnect(r, c);
                return;
            }
            c->st = c->ssl ? C_HANDSHAKE : C_SEND;
            if (c->st == C_SEND && prepare_request(r, c) < 0)
                die("out of memory");
            break;
        }
        case C_HANDSHAKE: {
            ERR_clear_error(); /* see conn_read */
            int rc = SSL_do_handshake(c->ssl);
            if (rc != 1) {
                int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return;
                conn_error(r, c, "TLS handshake");
                if (r->o.mode == M_HOLD) {
                    finish(r, c);
                    return;
                }
                reconnect(r, c);
                return;
            }
            if (prepare_request(r, c) < 0)
                die("out of memory");
            break;
        }
        case C_SEND: {
            int rc = conn_write(c);
            if (rc == 0)
                return;
            if (rc < 0) {
                conn_error(r, c, "write");
                reconnect(r, c);
                return;
            }
            c->st = C_RECV;
            break;
        }
        case C_RECV: {
            int rc = conn_read(c);
            struct response rs = {0};
            int pr = c->in_len ? parse_response(c, &rs) : 0;
            if (pr < 0) {
                show_failure(r, "unparsable response", c->in, c->in_len);
                r->s.errors++;
                reconnect(r, c);
                return;
            }
            if (pr == 0) {
                if (rc == 1)
                    return;
                conn_error(r, c, rc == 0 ? "server closed mid-response" : "read");
                reconnect(r, c);
                return;
            }
            enum after a = on_response(r, c, &rs);
            if (a == A_HOLD) {
                c->st = C_HELD;
                r->live--;
                return;
            }
            if (a == A_DONE) {
                finish(r, c);
                return;
            }
            if (a == A_RECONNECT || stop_flag) {
                if (stop_flag) {
                    finish(r, c);
                    return;
                }
                reconnect(r, c);
                return;
            }
            if (prepare_request(r, c) < 0)
                die("out of memory");
            break;
        }
        case C_HELD: {
            char b[256];
            int rc = c->ssl ? SSL_read(c->ssl, b, sizeof b) : (int)read(c->fd, b, sizeof b);
            if (rc > 0)
                continue;
            if (c->ssl) {
                int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return;
            } else if (rc < 0 && errno == EAGAIN) {
                return;
            }
            r->s.closed_held++; /* the server dropped an idle connection */
            conn_close(r, c);
            c->st = C_DONE;
            return;
        }
        default:
            return;
        }
    }
}

/* ---- server CPU from /proc ---- */

/* utime+stime of every pid in a comma-separated list, in seconds. */
static double pids_cpu(const char *list)
{
    if (!list || !*list)
        return 0;
    double ticks = 0;
    char *copy = strdup(list);
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%s/stat", p);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        unsigned long ut = 0, st = 0;
        /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime stime */
        if (rp && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                         &st) == 2)
            ticks += (double)(ut + st);
    }
    free(copy);
    return ticks / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- the loop ---- */

static void poll_once(struct run *r, int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(r->ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        if (c->st != C_FREE && c->st != C_DONE)
            drive(r, c);
    }
}

/* Opens connections while fewer than `parallel` are still getting ready
 * (hold mode: the listen backlogs stay short). */
static void open_more(struct run *r, int *opened)
{
    while (*opened < r->o.conns && r->live < r->o.parallel && !stop_flag) {
        struct conn *c = &r->conns[*opened];
        (*opened)++;
        r->live++;
        conn_start(r, c); /* the socket's first EPOLLOUT drives it on */
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(struct stats *s, double p)
{
    if (s->nlat == 0)
        return 0;
    size_t i = (size_t)(p * (double)(s->nlat - 1) + 0.5);
    return s->lat_us[i] / 1000.0;
}

static void write_ready(const char *path, long held, long failed)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "held=%ld failed=%ld\n", held, failed);
    if (fclose(f) == 0 && rename(tmp, path) != 0)
        perror(path);
}

/* Hold mode: open every connection, then sit until told to stop or the
 * duration passes, noticing connections the server closes. */
static void run_hold(struct run *r)
{
    int opened = 0;
    double t0 = now_s();
    while (!stop_flag && (opened < r->o.conns || r->live > 0)) {
        open_more(r, &opened);
        poll_once(r, 50);
        if (now_s() - t0 > 120)
            break;
    }
    long held = 0;
    for (int i = 0; i < r->o.conns; i++)
        held += r->conns[i].st == C_HELD;
    fprintf(stderr, "bench-loadgen: holding %ld connections (opened in %.1f s)\n", held,
            now_s() - t0);
    if (r->o.ready_file)
        write_ready(r->o.ready_file, held, r->s.errors);
    double until = now_s() + r->o.duration;
    while (!stop_flag && now_s() < until)
        poll_once(r, 200);
    held = 0;
    for (int i = 0; i < r->o.conns; i++)
        held += r->conns[i].st == C_HELD;
    printf("RESULT mode=hold conns=%d held=%ld errors=%ld closed_by_server=%ld\n", r->o.conns,
           held, r->s.errors, r->s.closed_held);
}

/* Load modes: warm up (every connection completes one response), then
 * count for `duration` seconds. */
static void run_load(struct run *r)
{
    int opened = 0;
    r->o.parallel = r->o.conns; /* all at once */
    open_more(r, &opened);
    double t0 = now_s();
    while (!stop_flag && r->warm < r->o.conns && r->live > 0 && now_s() - t0 < r->o.warmup_max)
        poll_once(r, 20);
    double cpu0 = pids_cpu(r->o.cpu_pids), self0 = self_cpu();
    double start = now_s(), end = start + r->o.duration, t;
    r->counting = 1;
    while (!stop_flag && (t = now_s()) < end && r->live > 0)
        poll_once(r, 20);
    double elapsed = now_s() - start;
    double cpu = pids_cpu(r->o.cpu_pids) - cpu0, self = self_cpu() - self0;
    r->counting = 0;
    qsort(r->s.lat_us, r->s.nlat, sizeof *r->s.lat_us, cmp_u32);
    double rps = elapsed > 0 ? (double)r->s.ok / elapsed : 0;
    printf("RESULT mode=%s conns=%d duration=%.2f ok=%ld fail=%ld errors=%ld reconnects=%ld "
           "drained=%ld rps=%.1f p50_ms=%.3f p99_ms=%.3f server_cpu_s=%.2f "
           "server_cpu_us_per_req=%.1f client_cpu_s=%.2f warm=%d\n",
           mode_names[r->o.mode], r->o.conns, elapsed, r->s.ok, r->s.fail, r->s.errors,
           r->s.reconnects, r->s.drained, rps, pct_ms(&r->s, 0.50), pct_ms(&r->s, 0.99), cpu,
           r->s.ok ? cpu * 1e6 / (double)r->s.ok : 0, self, r->warm);
}

/* Enroll mode: every device once (Authenticate, TokenUpdate), `conns` at a time. */
static void run_enroll(struct run *r)
{
    r->counting = 1;
    int n = r->o.conns < r->ndev ? r->o.conns : r->ndev;
    r->o.conns = n;
    r->next_enroll_dev = n;
    for (int i = 0; i < n; i++) {
        r->conns[i].dev = i;
        r->conns[i].next = R_AUTH;
    }
    int opened = 0;
    r->o.parallel = n;
    open_more(r, &opened);
    double t0 = now_s();
    while (!stop_flag && r->live > 0 && now_s() - t0 < 600)
        poll_once(r, 50);
    printf("RESULT mode=enroll devices=%d ok=%ld fail=%ld errors=%ld seconds=%.2f\n", r->ndev,
           r->s.ok, r->s.fail, r->s.errors, now_s() - t0);
}

/* ---- arguments ---- */

static void usage(void)
{
    fputs("usage: bench-loadgen --mode plain|keepalive|handshake|ack|hold|enroll --port N\n"
          "         --devices FILE [--ca CA.pem] [--host 127.0.0.1] [--sni localhost]\n"
          "         [--conns C] [--duration SECONDS] [--path /mdm/connect]\n"
          "         [--cpu-pids PID,PID…] [--parallel N] [--ready-file F] [--max-devices N]\n"
          "         [--conn-close]  (send \"Connection: close\"; the server closes after each answer)\n"
          "         [--inventory]   (ack: answer DeviceInformation with its QueryResponses)\n"
          "       bench-loadgen --free-port     (prints a free loopback TCP port)\n",
          stderr);
    exit(2);
}

static enum mode parse_mode(const char *s)
{
    for (size_t i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
        if (strcmp(s, mode_names[i]) == 0)
            return (enum mode)i;
    usage();
    return M_PLAIN;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("cannot find a free port");
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"mode", required_argument, 0, 'm'},     {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'h'},     {"sni", required_argument, 0, 's'},
        {"ca", required_argument, 0, 'a'},       {"devices", required_argument, 0, 'd'},
        {"conns", required_argument, 0, 'c'},    {"duration", required_argument, 0, 't'},
        {"path", required_argument, 0, 'P'},     {"cpu-pids", required_argument, 0, 'u'},
        {"parallel", required_argument, 0, 'l'}, {"ready-file", required_argument, 0, 'r'},
        {"max-devices", required_argument, 0, 'x'}, {"free-port", no_argument, 0, 'f'},
        {"conn-close", no_argument, 0, 'C'},     {"inventory", no_argument, 0, 'I'},
        {0, 0, 0, 0},
    };
    *o = (struct opts){.mode = M_KEEPALIVE, .host = "127.0.0.1", .sni = "localhost",
                       .path = "/mdm/connect", .conns = 64, .parallel = 128, .duration = 10,
                       .warmup_max = 10};
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o->mode = parse_mode(optarg); break;
        case 'p': o->port = atoi(optarg); break;
        case 'h': o->host = optarg; break;
        case 's': o->sni = optarg; break;
        case 'a': o->ca_file = optarg; break;
        case 'd': o->devices_file = optarg; break;
        case 'c': o->conns = atoi(optarg); break;
        case 't': o->duration = atof(optarg); break;
        case 'P': o->path = optarg; break;
        case 'u': o->cpu_pids = optarg; break;
        case 'l': o->parallel = atoi(optarg); break;
        case 'r': o->ready_file = optarg; break;
        case 'x': o->max_devices = atoi(optarg); break;
        case 'f': exit(free_port());
        case 'C': o->conn_close = 1; break;
        case 'I': o->inventory = 1; break;
        default: usage();
        }
    }
    if (o->port <= 0 || !o->devices_file || o->conns <= 0 || o->parallel <= 0 ||
        (o->mode != M_PLAIN && !o->ca_file))
        usage();
}

int main(int argc, char **argv)
{
    struct run r = {0};
    parse_opts(argc, argv, &r.o);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    r.addr.sin_family = AF_INET;
    r.addr.sin_port = htons((uint16_t)r.o.port);
    if (inet_pton(AF_INET, r.o.host, &r.addr.sin_addr) != 1)
        die("--host must be an IPv4 address");
    load_devices(&r);
    if (r.o.mode == M_ACK && r.o.conns > r.ndev)
        die("ack mode needs one device per connection (%d connections, %d devices)", r.o.conns,
            r.ndev);
    if (r.o.mode != M_PLAIN)
        r.ctx = client_ctx(&r.o);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    r.conns = calloc((size_t)r.o.conns, sizeof *r.conns);
    if (r.ep < 0 || !r.conns)
        die("cannot set up");
    for (int i = 0; i < r.o.conns; i++) {
        r.conns[i].fd = -1;
        r.conns[i].dev = i % r.ndev;
        r.conns[i].next = R_IDLE;
    }
    if (r.o.mode == M_HOLD)
        run_hold(&r);
    else if (r.o.mode == M_ENROLL)
        run_enroll(&r);
    else
        run_load(&r);
    fflush(stdout);
    /* Connections, SSL objects and buffers go with the process. */
    return r.o.mode == M_ENROLL && (r.s.fail || r.s.errors) ? 1 : 0;
}
