/* main.c: steward-apns-mock. Parses options, sets up TLS the way APNs does
 * (TLS 1.2+, ALPN h2 only, a client certificate required and verified
 * against --client-ca, its subject UID being the topic it may push to),
 * accepts connections (one thread each, served by conn.c), and records
 * every push: a JSON line in --log, a count on stderr at exit, and, for
 * accepted pushes, --wake-exec run with the token, topic and PushMagic in
 * its environment so a test can make the simulated device check in. */
#include "apnsmock/mock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

static atomic_long seq;
static atomic_long conns;            /* connections accepted */
static atomic_long stall_below = -1; /* --stall-after: connections below this index are silent */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;

long mock_next_seq(void)
{
    return atomic_fetch_add(&seq, 1);
}

void mock_answered(const struct mock_config *cfg, long n)
{
    if (cfg->stall_after > 0 && n + 1 == cfg->stall_after) {
        atomic_store(&stall_below, atomic_load(&conns));
        if (!cfg->quiet)
            fprintf(stderr, "apns-mock: %ld pushes answered: open connections go silent\n", n + 1);
    }
}

int mock_conn_stalled(long index)
{
    return index < atomic_load(&stall_below);
}

static void wake(const struct mock_config *cfg, const char *topic, const struct mock_answer *a)
{
    char e1[300], e2[300], e3[200];
    snprintf(e1, sizeof e1, "APNS_TOKEN=%s", a->token);
    snprintf(e2, sizeof e2, "APNS_TOPIC=%s", topic);
    snprintf(e3, sizeof e3, "APNS_PUSH_MAGIC=%s", a->magic);
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 4, sizeof *env);
    if (!env)
        return;
    memcpy(env, environ, n * sizeof *env);
    env[n] = e1;
    env[n + 1] = e2;
    env[n + 2] = e3;
    char *argv[] = {"/bin/sh", "-c", (char *)cfg->wake_exec, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, env) != 0)
        fprintf(stderr, "apns-mock: cannot run --wake-exec: %s\n", strerror(errno));
    free(env);
}

void mock_record(const struct mock_config *cfg, const char *topic, const struct mock_request *r,
                 const struct mock_answer *a, const char *apns_id)
{
    if (log_file) {
        char body[MOCK_MAX_BODY + 1];
        size_t k = r->body_len;
        memcpy(body, r->body, k);
        body[k] = '\0';
        for (size_t i = 0; i < k; i++)
            if (body[i] == '"' || body[i] == '\\' || (unsigned char)body[i] < 0x20)
                body[i] = '\'';
        pthread_mutex_lock(&log_mu);
        fprintf(log_file,
                "{\"path\":\"%s\",\"topic\":\"%s\",\"push_type\":\"%s\",\"priority\":\"%s\","
                "\"expiration\":\"%s\",\"body\":\"%s\",\"status\":%d,\"reason\":\"%s\","
                "\"apns_id\":\"%s\"}\n",
                r->path, topic, r->push_type, r->priority, r->expiration, body, a->status,
                a->reason, apns_id);
        fflush(log_file);
        pthread_mutex_unlock(&log_mu);
    }
    if (a->status == 200 && cfg->wake_exec)
        wake(cfg, topic, a);
}

/* ---- TLS ----------------------------------------------------------------- */

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    return nghttp2_select_next_protocol((unsigned char **)out, outlen, in, inlen) == 1
               ? SSL_TLSEXT_ERR_OK
               : SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *tls_context(const char *cert, const char *key, const char *client_ca,
                            int cert_optional)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (cert_optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
                       NULL);
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    static const unsigned char sid[] = "steward-apns-mock";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1); /* resumption with client certs */
    return ctx;
}

/* The client certificate's subject UID: the one topic it may push to. */
static char *cert_uid(SSL *ssl)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert)
        return NULL;
    X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_userId, -1);
    char *out = NULL;
    if (i >= 0) {
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
        if (len >= 0)
            out = strndup((const char *)utf8, (size_t)len);
        OPENSSL_free(utf8);
    }
    X509_free(cert);
    return out;
}

struct conn_arg {
    const struct mock_config *cfg;
    SSL_CTX *ctx;
    int fd;
    long index;
};

static void *conn_thread(void *p)
{
    struct conn_arg *a = p;
    SSL *ssl = SSL_new(a->ctx);
    if (ssl && SSL_set_fd(ssl, a->fd) == 1 && SSL_accept(ssl) == 1) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        SSL_get0_alpn_selected(ssl, &alpn, &alen);
        if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
            char *topic = cert_uid(ssl);
            if (!topic && a->cfg->anonymous_topic)
                topic = strdup(a->cfg->anonymous_topic);
            mock_serve_conn(a->cfg, ssl, topic, a->index);
            free(topic);
        }
        SSL_shutdown(ssl);
    } else if (!a->cfg->quiet) {
        unsigned long e = ERR_get_error();
        fprintf(stderr, "apns-mock: TLS handshake failed: %s\n",
                e ? ERR_reason_error_string(e) : "closed");
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(a->fd);
    free(a);
    return NULL;
}

/* ---- options ---------------------------------------------------------------- */

static int add_rule(struct mock_config *cfg, const char *token, int status, const char *reason)
{
    struct mock_rule *grown = realloc(cfg->rules, (cfg->nrules + 1) * sizeof *grown);
    if (!grown)
        return -1;
    cfg->rules = grown;
    struct mock_rule *r = &cfg->rules[cfg->nrules++];
    snprintf(r->token, sizeof r->token, "%s", token);
    r->status = status;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    return 0;
}

/* Rules file: "TOKEN|* STATUS REASON" per line; '#' starts a comment. */
static int load_rules(struct mock_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "apns-mock: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[512], token[208], reason[64];
    int status, lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        if (sscanf(p, "%207s %d %63s", token, &status, reason) != 3 || status < 200 ||
            status > 599) {
            fprintf(stderr, "apns-mock: %s:%d: expected TOKEN STATUS REASON\n", path, lineno);
            rc = -1;
            break;
        }
        if (add_rule(cfg, token, status, reason) < 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: steward-apns-mock --cert FILE --key FILE --client-ca FILE [options]\n"
          "  --listen ADDR:PORT     default 127.0.0.1:0 (0 picks a free port)\n"
          "  --ready-file FILE      written with port=N once listening\n"
          "  --log FILE             one JSON line per push received\n"
          "  --unregistered TOKEN   answer 410 Unregistered (with timestamp) for TOKEN (repeatable)\n"
          "  --bad-token TOKEN      answer 400 BadDeviceToken for TOKEN (repeatable)\n"
          "  --throttle TOKEN       answer 429 TooManyRequests for TOKEN (repeatable)\n"
          "  --rules FILE           lines \"TOKEN|* STATUS REASON\", first match wins\n"
          "  --fail N               answer the first N pushes 503 ServiceUnavailable\n"
          "  --refuse-cert          answer every push 403 BadCertificate\n"
          "  --wake-exec CMD        run `sh -c CMD` for each accepted push, with APNS_TOKEN,\n"
          "                         APNS_TOPIC and APNS_PUSH_MAGIC in the environment\n"
          "  --max-streams N        SETTINGS_MAX_CONCURRENT_STREAMS (default 1000)\n"
          "  --delay-ms N           answer every push N milliseconds after it arrives\n"
          "  --stall-after N        once N pushes are answered, the connections open then go\n"
          "                         silent (read nothing, answer nothing, PINGs included)\n"
          "  --quiet                no handshake failure messages\n"
          "  --anonymous-topic T    let clients without a certificate push to topic T (for\n"
          "                         load generators such as h2load that cannot send one)\n",
          f);
}

static int listen_on(const char *spec, int *port_out)
{
    char host[128] = "127.0.0.1";
    int port = 0;
    const char *colon = strrchr(spec, ':');
    if (colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
        port = atoi(colon + 1);
    } else {
        port = atoi(spec);
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 512) != 0)
        return -1;
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port_out = ntohs(sa.sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cert", required_argument, 0, 'c'},       {"key", required_argument, 0, 'k'},
        {"client-ca", required_argument, 0, 'a'},  {"listen", required_argument, 0, 'l'},
        {"ready-file", required_argument, 0, 'r'}, {"log", required_argument, 0, 'g'},
        {"unregistered", required_argument, 0, 'u'}, {"bad-token", required_argument, 0, 'b'},
        {"throttle", required_argument, 0, 't'},   {"rules", required_argument, 0, 'R'},
        {"fail", required_argument, 0, 'f'},       {"refuse-cert", no_argument, 0, 'x'},
        {"wake-exec", required_argument, 0, 'w'},  {"max-streams", required_argument, 0, 'm'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {"anonymous-topic", required_argument, 0, 'A'},
        {"delay-ms", required_argument, 0, 'D'},   {"stall-after", required_argument, 0, 'S'},
        {0, 0, 0, 0},
    };
    struct mock_config cfg = {.max_streams = 1000};
    const char *cert = NULL, *key = NULL, *client_ca = NULL, *listen_spec = "127.0.0.1:0",
               *ready = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'a': client_ca = optarg; break;
        case 'l': listen_spec = optarg; break;
        case 'r': ready = optarg; break;
        case 'g': cfg.log_path = optarg; break;
        case 'u': rc = add_rule(&cfg, optarg, 410, "Unregistered"); break;
        case 'b': rc = add_rule(&cfg, optarg, 400, "BadDeviceToken"); break;
        case 't': rc = add_rule(&cfg, optarg, 429, "TooManyRequests"); break;
        case 'R': rc = load_rules(&cfg, optarg); break;
        case 'f': cfg.fail_first = atol(optarg); break;
        case 'x': cfg.refuse_cert = 1; break;
        case 'w': cfg.wake_exec = optarg; break;
        case 'm': cfg.max_streams = atol(optarg) > 0 ? atol(optarg) : 1000; break;
        case 'q': cfg.quiet = 1; break;
        case 'A': cfg.anonymous_topic = optarg; break;
        case 'D': cfg.delay_ms = atol(optarg) > 0 ? atol(optarg) : 0; break;
        case 'S': cfg.stall_after = atol(optarg) > 0 ? atol(optarg) : 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc < 0)
            return 2;
    }
    if (!cert || !key || !client_ca) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN); /* wake commands are reaped automatically */
    if (cfg.log_path && !(log_file = fopen(cfg.log_path, "a"))) {
        fprintf(stderr, "apns-mock: cannot open %s: %s\n", cfg.log_path, strerror(errno));
        return 1;
    }
    SSL_CTX *ctx = tls_context(cert, key, client_ca, cfg.anonymous_topic != NULL);
    if (!ctx)
        return 1;
    int port = 0, lfd = listen_on(listen_spec, &port);
    if (lfd < 0) {
        fprintf(stderr, "apns-mock: cannot listen on %s: %s\n", listen_spec, strerror(errno));
        return 1;
    }
    if (ready) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "port=%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, ready) != 0) {
            fprintf(stderr, "apns-mock: cannot write %s\n", ready);
            return 1;
        }
    }
    fprintf(stderr, "apns-mock: listening on port %d\n", port);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            break;
        }
        int one = 1; /* answers go out as they are made, as a real server's would */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn_arg *a = malloc(sizeof *a);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (!a) {
            close(fd);
            continue;
        }
        *a = (struct conn_arg){.cfg = &cfg, .ctx = ctx, .fd = fd,
                               .index = atomic_fetch_add(&conns, 1)};
        if (pthread_create(&t, &attr, conn_thread, a) != 0) {
            close(fd);
            free(a);
        }
        pthread_attr_destroy(&attr);
    }
    return 1;
}
