/* test_http.c: cmocka tests of the HTTP layer (src/http): a real server on
 * loopback port 0 driven by libcurl and raw sockets. Certificates (a test CA,
 * a server cert for 127.0.0.1/localhost, a client cert from the CA and one
 * from another CA) are made with the OpenSSL API in a temp dir at start. */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "http/http.h"
#include "util/log.h"

/* ---- test state ---- */

static char tmpdir[256];
static char ca_pem[300], server_pem[300], server_key[300];
static char client_pem[300], client_key[300], rogue_pem[300], rogue_key[300];

static atomic_int handler_calls;
static atomic_int inits, finis;
static atomic_int completion_seq;
static int fail_worker_init;

struct wctx {
    int magic;
    int index;
};

/* ---- certificates ---- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* Issues a certificate for key; self-signed when issuer is NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int ca,
                       const char *san, const char *eku, long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer ? issuer : x;
    add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (issuer)
        add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
    if (san)
        add_ext(x, signer, NID_subject_alt_name, san);
    if (eku)
        add_ext(x, signer, NID_ext_key_usage, eku);
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    if (key)
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static int setup_group(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_http.XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
#define P(var, file) snprintf(var, sizeof var, "%s/%s", tmpdir, file)
    P(ca_pem, "ca.pem");
    P(server_pem, "server.pem");
    P(server_key, "server.key");
    P(client_pem, "client.pem");
    P(client_key, "client.key");
    P(rogue_pem, "rogue.pem");
    P(rogue_key, "rogue.key");
#undef P
    EVP_PKEY *ca_k = EVP_EC_gen("P-256"), *srv_k = EVP_EC_gen("P-256"), *cl_k = EVP_EC_gen("P-256");
    EVP_PKEY *other_k = EVP_EC_gen("P-256"), *rogue_k = EVP_EC_gen("P-256");
    if (!ca_k || !srv_k || !cl_k || !other_k || !rogue_k)
        return -1;
    X509 *ca = make_cert(ca_k, "Test CA", NULL, NULL, 1, NULL, NULL, 1);
    X509 *srv = make_cert(srv_k, "localhost", ca, ca_k, 0, "IP:127.0.0.1,DNS:localhost", "serverAuth", 2);
    X509 *cl = make_cert(cl_k, "test-client", ca, ca_k, 0, NULL, "clientAuth", 3);
    X509 *other = make_cert(other_k, "Other CA", NULL, NULL, 1, NULL, NULL, 4);
    X509 *rogue = make_cert(rogue_k, "rogue-client", other, other_k, 0, NULL, "clientAuth", 5);
    write_pem(ca_pem, ca, NULL);
    write_pem(server_pem, srv, NULL);
    write_pem(server_key, NULL, srv_k);
    write_pem(client_pem, cl, NULL);
    write_pem(client_key, NULL, cl_k);
    write_pem(rogue_pem, rogue, NULL);
    write_pem(rogue_key, NULL, rogue_k);
    X509 *certs[] = {ca, srv, cl, other, rogue};
    EVP_PKEY *keys[] = {ca_k, srv_k, cl_k, other_k, rogue_k};
    for (int i = 0; i < 5; i++) {
        X509_free(certs[i]);
        EVP_PKEY_free(keys[i]);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return 0;
}

static int teardown_group(void **state)
{
    (void)state;
    const char *files[] = {ca_pem, server_pem, server_key, client_pem, client_key, rogue_pem, rogue_key};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(tmpdir);
    curl_global_cleanup();
    return 0;
}

/* ---- the server under test ---- */

static void *test_worker_init(void *arg, int index)
{
    (void)arg;
    if (fail_worker_init)
        return NULL;
    struct wctx *w = calloc(1, sizeof *w);
    w->magic = 0x5eed;
    w->index = index;
    atomic_fetch_add(&inits, 1);
    return w;
}

static void test_worker_fini(void *ctx)
{
    struct wctx *w = ctx;
    assert_int_equal(w->magic, 0x5eed);
    free(w);
    atomic_fetch_add(&finis, 1);
}

static const char *cert_cn(X509 *cert, char *buf, size_t n)
{
    buf[0] = '\0';
    if (cert)
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, (int)n);
    return buf;
}

/* Echoes what it was given, one key=value per line. */
static void test_handler(void *ctx, struct request *req, struct response *resp)
{
    struct wctx *w = ctx;
    atomic_fetch_add(&handler_calls, 1);
    if (w->magic != 0x5eed) {
        response_text(resp, 500, "bad worker context");
        return;
    }
    if (strcmp(req->path, "/slow") == 0)
        usleep(1000 * 1000);
    if (strcmp(req->path, "/teapot") == 0) {
        response_text(resp, 418, "short and stout");
        return;
    }
    char qa[64], cn[128];
    const char *custom = request_header(req, "x-CUSTOM");
    struct buf b = {0};
    buf_printf(&b,
               "method=%s\npath=%s\nquery=%s\nq_a=%s\nbody_len=%zu\nbody=%s\ntls=%d\ncert=%d\n"
               "verify=%ld\ncn=%s\nx_custom=%s\nremote=%s\nid=%s\nworker=%d\n",
               req->method, req->path, req->query ? req->query : "(null)",
               request_query(req, "a", qa, sizeof qa) ? qa : "(null)", req->body_len,
               (const char *)req->body, req->tls, req->peer_cert != NULL, req->peer_verify,
               cert_cn(req->peer_cert, cn, sizeof cn), custom ? custom : "(null)", req->remote_addr,
               req->id, w->index);
    response_set(resp, 200, "text/plain", b.data, b.len);
    buf_free(&b);
    response_add_header(resp, "X-Test", "yes");
}

static struct http_server_opts default_opts(void)
{
    struct http_server_opts o = {0};
    o.https_listen = "127.0.0.1:0";
    o.http_listen = "127.0.0.1:0";
    o.tls_cert_file = server_pem;
    o.tls_key_file = server_key;
    o.client_ca_file = ca_pem;
    o.io_threads = 2;
    o.workers = 4;
    o.max_body = 64 * 1024;
    o.read_timeout = 10;
    o.idle_timeout = 10;
    o.handler = test_handler;
    o.worker_init = test_worker_init;
    o.worker_fini = test_worker_fini;
    return o;
}

static struct http_server *start_server(const struct http_server_opts *o)
{
    char *err = NULL;
    struct http_server *srv = http_server_start(o, &err);
    if (!srv)
        fprintf(stderr, "http_server_start: %s\n", err ? err : "?");
    free(err);
    assert_non_null(srv);
    return srv;
}

/* ---- curl client ---- */

struct reply {
    long status;
    struct buf body;
    struct buf headers;
    long new_connections;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    buf_append(arg, p, size * n);
    return size * n;
}

struct client_tls {
    const char *cert, *key;
};

static CURL *new_curl(const struct client_tls *tls)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_pem);
    if (tls && tls->cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, tls->cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, tls->key);
    }
    return c;
}

static void reply_free(struct reply *r)
{
    buf_free(&r->body);
    buf_free(&r->headers);
    memset(r, 0, sizeof *r);
}

/* One request on handle c; body may be NULL (then GET, or method). */
static CURLcode fetch(CURL *c, const char *method, const char *url, const char *body, size_t blen,
                      struct curl_slist *hdrs, struct reply *r)
{
    reply_free(r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_NOBODY, (long)(method && strcmp(method, "HEAD") == 0));
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    } else if (!method || strcmp(method, "HEAD") != 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method && strcmp(method, "HEAD") != 0 ? method : NULL);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->new_connections);
    if (!r->body.data)
        buf_append(&r->body, "", 0);
    if (!r->headers.data)
        buf_append(&r->headers, "", 0);
    return rc;
}

static void get_once(const struct client_tls *tls, const char *url, struct reply *r)
{
    CURL *c = new_curl(tls);
    CURLcode rc = fetch(c, NULL, url, NULL, 0, NULL, r);
    if (rc != CURLE_OK)
        fprintf(stderr, "curl %s: %s\n", url, curl_easy_strerror(rc));
    assert_int_equal(rc, CURLE_OK);
    curl_easy_cleanup(c);
}

/* The value of "key=" on its own line in text, copied into out. */
static const char *field(const char *text, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = strcspn(p + kl + 1, "\r\n");
            snprintf(out, n, "%.*s", (int)vl, p + kl + 1);
            return out;
        }
    }
    snprintf(out, n, "<missing>");
    return out;
}

/* A response header value ("Name: value" in the raw header block). */
static const char *header_value(const char *headers, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = headers; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
            return out;
        }
    }
    return NULL;
}

static void assert_field(const struct reply *r, const char *key, const char *want)
{
    char v[256];
    field(r->body.data, key, v, sizeof v);
    if (strcmp(v, want) != 0)
        fprintf(stderr, "field %s: got \"%s\", want \"%s\"\n", key, v, want);
    assert_string_equal(v, want);
}

/* ---- tests ---- */

static void test_request_helpers(void **state)
{
    (void)state;
    struct http_header hdrs[] = {{"Content-Type", "application/x-apple-aspen-mdm"}, {"X-Thing", "1"}};
    char query[] = "a=x%20y&b=1+2&flag&long=0123456789&enc%41=k";
    struct request req = {.method = "GET", .path = "/", .query = query, .headers = hdrs, .nheaders = 2};
    assert_string_equal(request_header(&req, "content-type"), "application/x-apple-aspen-mdm");
    assert_string_equal(request_header(&req, "X-THING"), "1");
    assert_null(request_header(&req, "X-Missing"));
    char buf[8];
    assert_string_equal(request_query(&req, "a", buf, sizeof buf), "x y");
    assert_string_equal(request_query(&req, "b", buf, sizeof buf), "1 2");
    assert_string_equal(request_query(&req, "flag", buf, sizeof buf), "");
    assert_string_equal(request_query(&req, "encA", buf, sizeof buf), "k");
    assert_null(request_query(&req, "long", buf, sizeof buf)); /* does not fit in 8 bytes */
    assert_null(request_query(&req, "nope", buf, sizeof buf));
    req.query = NULL;
    assert_null(request_query(&req, "a", buf, sizeof buf));

    struct response resp = {0};
    assert_int_equal(response_set(&resp, 201, "application/json", "{}", 2), 0);
    assert_int_equal(resp.status, 201);
    assert_string_equal(resp.content_type, "application/json");
    assert_int_equal(resp.body.len, 2);
    assert_int_equal(response_text(&resp, 403, "forbidden"), 0);
    assert_string_equal(resp.body.data, "forbidden\n");
    assert_int_equal(resp.status, 403);
    assert_int_equal(response_add_header(&resp, "X-Bad", "a\r\nSet-Cookie: x"), -1);
    assert_int_equal(response_add_header(&resp, "X-Bad\n", "a"), -1);
    for (int i = 0; i < RESPONSE_MAX_HEADERS; i++)
        assert_int_equal(response_add_header(&resp, "X-H", "v"), 0);
    assert_int_equal(response_add_header(&resp, "X-H", "v"), -1);
    char long_ct[200];
    memset(long_ct, 'a', sizeof long_ct - 1);
    long_ct[sizeof long_ct - 1] = '\0';
    assert_int_equal(response_set(&resp, 200, long_ct, "", 0), -1);
    response_clear(&resp);
    assert_int_equal(resp.nheaders, 0);
    assert_null(resp.body.data);
    response_clear(NULL);
}

static void test_plain_http_and_ports(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    int hp = http_server_http_port(srv), sp = http_server_https_port(srv);
    assert_true(hp > 0 && hp < 65536);
    assert_true(sp > 0 && sp < 65536);
    assert_int_not_equal(hp, sp);

    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hello%%20world?a=x%%20y&b=2", hp);
    CURL *c = new_curl(NULL);
    struct curl_slist *hdrs = curl_slist_append(NULL, "X-Custom: v1");
    struct reply r = {0};
    assert_int_equal(fetch(c, NULL, url, NULL, 0, hdrs, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_field(&r, "method", "GET");
    assert_field(&r, "path", "/hello%20world");
    assert_field(&r, "query", "a=x%20y&b=2");
    assert_field(&r, "q_a", "x y");
    assert_field(&r, "tls", "0");
    assert_field(&r, "cert", "0");
    assert_field(&r, "x_custom", "v1");
    assert_field(&r, "remote", "127.0.0.1");
    char v[128], id[64];
    assert_string_equal(header_value(r.headers.data, "X-Test", v, sizeof v), "yes");
    assert_string_equal(header_value(r.headers.data, "Content-Type", v, sizeof v), "text/plain");
    snprintf(id, sizeof id, "%s", field(r.body.data, "id", v, sizeof v));
    assert_int_equal(strlen(id), 16);
    assert_int_equal(strspn(id, "0123456789abcdef"), 16);
    assert_string_equal(header_value(r.headers.data, "X-Request-Id", v, sizeof v), id);
    assert_non_null(header_value(r.headers.data, "Content-Length", v, sizeof v));
    assert_int_equal(atol(v), (long)r.body.len);

    /* POST with a body */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/upload", hp);
    assert_int_equal(fetch(c, "PUT", url, "abc", 3, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_field(&r, "method", "PUT");
    assert_field(&r, "body_len", "3");
    assert_field(&r, "body", "abc");
    assert_field(&r, "query", "(null)");

    /* HEAD: headers with the length GET would have, no body */
    assert_int_equal(fetch(c, "HEAD", url, NULL, 0, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    assert_non_null(header_value(r.headers.data, "Content-Length", v, sizeof v));
    assert_true(atol(v) > 0);

    /* the handler's own status */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/teapot", hp);
    assert_int_equal(fetch(c, NULL, url, NULL, 0, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.body.data, "short and stout\n");

    /* a method outside GET/POST/PUT/DELETE/HEAD/PATCH never reaches the handler */
    int before = atomic_load(&handler_calls);
    assert_int_equal(fetch(c, "OPTIONS", url, NULL, 0, NULL, &r), CURLE_OK);
    assert_true(r.status >= 400);
    assert_int_equal(atomic_load(&handler_calls), before);

    reply_free(&r);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    http_server_stop(srv);
}

static void test_https_without_client_cert(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/mdm/checkin?a=1", http_server_https_port(srv));
    struct reply r = {0};
    get_once(NULL, url, &r);
    assert_int_equal(r.status, 200);
    assert_field(&r, "tls", "1");
    assert_field(&r, "cert", "0");
    assert_field(&r, "path", "/mdm/checkin");
    reply_free(&r);
    /* and by name, against the DNS SAN */
    snprintf(url, sizeof url, "https://localhost:%d/", http_server_https_port(srv));
    CURL *c = new_curl(NULL);
    struct curl_slist *resolve = NULL;
    char entry[64];
    snprintf(entry, sizeof entry, "localhost:%d:127.0.0.1", http_server_https_port(srv));
    resolve = curl_slist_append(resolve, entry);
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
    assert_int_equal(fetch(c, NULL, url, NULL, 0, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    curl_easy_cleanup(c);
    curl_slist_free_all(resolve);
    reply_free(&r);
    http_server_stop(srv);
}

static void test_mtls_client_cert(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/mdm/connect", http_server_https_port(srv));
    struct client_tls tls = {client_pem, client_key};
    struct reply r = {0};
    get_once(&tls, url, &r);
    assert_int_equal(r.status, 200);
    assert_field(&r, "tls", "1");
    assert_field(&r, "cert", "1");
    assert_field(&r, "cn", "test-client");
    char v[32];
    assert_int_equal(atol(field(r.body.data, "verify", v, sizeof v)), X509_V_OK);
    reply_free(&r);
    http_server_stop(srv);
}

static void test_cert_from_other_ca(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/mdm/connect", http_server_https_port(srv));
    struct client_tls tls = {rogue_pem, rogue_key};
    struct reply r = {0};
    get_once(&tls, url, &r); /* the handshake completes */
    assert_int_equal(r.status, 200);
    assert_field(&r, "cert", "1");
    assert_field(&r, "cn", "rogue-client");
    char v[32];
    field(r.body.data, "verify", v, sizeof v);
    assert_string_not_equal(v, "<missing>");
    assert_int_not_equal(atol(v), X509_V_OK);
    reply_free(&r);
    http_server_stop(srv);
}

static void test_body_over_max_body(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    o.max_body = 1024;
    struct http_server *srv = start_server(&o);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/upload", http_server_http_port(srv));
    char *big = malloc(4096);
    memset(big, 'x', 4096);
    CURL *c = new_curl(NULL);
    struct reply r = {0};
    int before = atomic_load(&handler_calls);
    assert_int_equal(fetch(c, "POST", url, big, 4096, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 413);
    assert_int_equal(atomic_load(&handler_calls), before);
    assert_int_equal(fetch(c, "POST", url, big, 1000, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_field(&r, "body_len", "1000");
    /* the same over TLS */
    snprintf(url, sizeof url, "https://127.0.0.1:%d/upload", http_server_https_port(srv));
    assert_int_equal(fetch(c, "POST", url, big, 4096, NULL, &r), CURLE_OK);
    assert_int_equal(r.status, 413);
    free(big);
    reply_free(&r);
    curl_easy_cleanup(c);
    http_server_stop(srv);
}

/* Server-side (accepted) TCP sockets of this process on port: how many, and
 * how many have TCP_NODELAY. */
static void count_accepted(int port, int *total, int *nodelay)
{
    *total = *nodelay = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        struct sockaddr_in sin;
        socklen_t len = sizeof sin;
        int listening = 0, v = 0;
        socklen_t il = sizeof listening;
        if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0 || sin.sin_family != AF_INET ||
            ntohs(sin.sin_port) != port)
            continue;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &il) != 0 || listening)
            continue;
        il = sizeof v;
        (*total)++;
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &il) == 0 && v)
            (*nodelay)++;
    }
    closedir(d);
}

static void test_keepalive_and_nodelay(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    int port = http_server_https_port(srv);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/k", port);
    struct client_tls tls = {client_pem, client_key};
    CURL *c = new_curl(&tls);
    struct reply r = {0};
    long connections = 0;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fetch(c, i % 2 ? "POST" : NULL, url, i % 2 ? "ping" : NULL, 4, NULL, &r), CURLE_OK);
        assert_int_equal(r.status, 200);
        assert_field(&r, "cert", "1");
        connections += r.new_connections;
    }
    assert_int_equal(connections, 1);
    int total, nodelay;
    count_accepted(port, &total, &nodelay);
    assert_int_equal(total, 1); /* the kept-alive connection, still open */
    assert_int_equal(nodelay, 1);
    reply_free(&r);
    curl_easy_cleanup(c);
    http_server_stop(srv);
}

/* One connection's requests, one after another, go to the worker that went
 * idle last: the same worker each time (its caches, a database session's
 * pages among them, stay warm), not one picked at random from the pool. */
static void test_sequential_requests_keep_their_worker(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    o.workers = 8;
    struct http_server *srv = start_server(&o);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/w", http_server_http_port(srv));
    CURL *c = new_curl(NULL);
    struct reply r = {0};
    int count[8] = {0}, most = 0;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(fetch(c, NULL, url, NULL, 0, NULL, &r), CURLE_OK);
        assert_int_equal(r.status, 200);
        char v[16];
        int w = atoi(field(r.body.data, "worker", v, sizeof v));
        assert_true(w >= 0 && w < 8);
        if (++count[w] > most)
            most = count[w];
    }
    /* The worker is back on the idle stack before its reply leaves; a pool
     * that picks any idle worker spreads them over 8. */
    assert_true(most >= 45);
    reply_free(&r);
    curl_easy_cleanup(c);
    http_server_stop(srv);
}

struct timed_get {
    char url[128];
    long status;
    int order;
};

static void *timed_get_main(void *arg)
{
    struct timed_get *t = arg;
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, t->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    struct buf b = {0};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t->status);
    t->order = atomic_fetch_add(&completion_seq, 1);
    buf_free(&b);
    curl_easy_cleanup(c);
    return NULL;
}

static void test_slow_handler_does_not_block(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    o.io_threads = 1; /* both connections on one loop */
    struct http_server *srv = start_server(&o);
    struct timed_get slow = {0}, fast = {0};
    snprintf(slow.url, sizeof slow.url, "http://127.0.0.1:%d/slow", http_server_http_port(srv));
    snprintf(fast.url, sizeof fast.url, "http://127.0.0.1:%d/fast", http_server_http_port(srv));
    atomic_store(&completion_seq, 0);
    pthread_t ts, tf;
    assert_int_equal(pthread_create(&ts, NULL, timed_get_main, &slow), 0);
    usleep(200 * 1000); /* the slow request is in its handler by now */
    assert_int_equal(pthread_create(&tf, NULL, timed_get_main, &fast), 0);
    pthread_join(tf, NULL);
    pthread_join(ts, NULL);
    assert_int_equal(slow.status, 200);
    assert_int_equal(fast.status, 200);
    assert_true(fast.order < slow.order);
    http_server_stop(srv);
}

static void test_stop_finishes_inflight(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    struct timed_get slow = {0};
    snprintf(slow.url, sizeof slow.url, "http://127.0.0.1:%d/slow", http_server_http_port(srv));
    pthread_t ts;
    assert_int_equal(pthread_create(&ts, NULL, timed_get_main, &slow), 0);
    usleep(300 * 1000); /* the request is in its handler */
    http_server_stop(srv);
    pthread_join(ts, NULL);
    assert_int_equal(slow.status, 200);
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    struct timeval tv = {6, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Waits for the server to drop fd; returns seconds waited, or -1 if it did not. */
static double wait_dropped(int fd)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char b[512];
    ssize_t n;
    do
        n = recv(fd, b, sizeof b, 0);
    while (n > 0);
    int dropped = n == 0 || (n < 0 && errno == ECONNRESET);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    return dropped ? s : -1;
}

static void test_silent_client_dropped(void **state)
{
    (void)state;
    struct http_server_opts o = default_opts();
    o.read_timeout = 1;
    o.idle_timeout = 1;
    struct http_server *srv = start_server(&o);
    int before = atomic_load(&handler_calls);

    /* half a request, then silence */
    int fd = connect_loopback(http_server_http_port(srv));
    const char *half = "POST /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc";
    assert_int_equal(send(fd, half, strlen(half), 0), (ssize_t)strlen(half));
    double s = wait_dropped(fd);
    close(fd);
    assert_true(s >= 0.5 && s < 4.0);

    /* a TCP connection to the TLS port that never says hello */
    fd = connect_loopback(http_server_https_port(srv));
    s = wait_dropped(fd);
    close(fd);
    assert_true(s >= 0.5 && s < 4.0);

    assert_int_equal(atomic_load(&handler_calls), before);
    http_server_stop(srv);
}

static void test_worker_lifecycle_and_errors(void **state)
{
    (void)state;
    atomic_store(&inits, 0);
    atomic_store(&finis, 0);
    struct http_server_opts o = default_opts();
    o.workers = 3;
    o.https_listen = NULL; /* plain only: no TLS material needed */
    o.tls_cert_file = o.tls_key_file = NULL;
    struct http_server *srv = start_server(&o);
    assert_int_equal(http_server_https_port(srv), -1);
    assert_int_equal(atomic_load(&inits), 3);
    assert_int_equal(atomic_load(&finis), 0);
    http_server_stop(srv);
    assert_int_equal(atomic_load(&finis), 3);

    /* a worker_init failure fails the start and cleans up */
    char *err = NULL;
    fail_worker_init = 1;
    assert_null(http_server_start(&o, &err));
    fail_worker_init = 0;
    assert_non_null(err);
    free(err);

    /* unreadable TLS material */
    o = default_opts();
    o.tls_key_file = "/nonexistent/key.pem";
    err = NULL;
    assert_null(http_server_start(&o, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "key"));
    free(err);

    /* a bad listen address */
    o = default_opts();
    o.http_listen = "127.0.0.1:notaport";
    err = NULL;
    assert_null(http_server_start(&o, &err));
    assert_non_null(err);
    free(err);
}

static void test_request_log_line(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/log.txt", tmpdir);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    log_set_fd(fileno(f));
    log_set_level(LOG_DEBUG);
    struct http_server_opts o = default_opts();
    struct http_server *srv = start_server(&o);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/logged", http_server_http_port(srv));
    struct reply r = {0};
    CURL *c = new_curl(NULL);
    assert_int_equal(fetch(c, "POST", url, "secret-body", 11, NULL, &r), CURLE_OK);
    curl_easy_cleanup(c);
    http_server_stop(srv);
    log_set_level(LOG_INFO);
    log_set_fd(2);
    char id[32], want[128];
    field(r.body.data, "id", id, sizeof id);
    snprintf(want, sizeof want, "id=%s method=POST path=\"/logged\" status=200", id);
    fseek(f, 0, SEEK_SET);
    char line[2048];
    int found = 0, leaked = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "msg=http_request ") && strstr(line, want))
            found = 1;
        if (strstr(line, "secret-body"))
            leaked = 1;
    }
    fclose(f);
    unlink(path);
    reply_free(&r);
    assert_true(found);
    assert_false(leaked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_helpers),
        cmocka_unit_test(test_plain_http_and_ports),
        cmocka_unit_test(test_https_without_client_cert),
        cmocka_unit_test(test_mtls_client_cert),
        cmocka_unit_test(test_cert_from_other_ca),
        cmocka_unit_test(test_body_over_max_body),
        cmocka_unit_test(test_keepalive_and_nodelay),
        cmocka_unit_test(test_slow_handler_does_not_block),
        cmocka_unit_test(test_sequential_requests_keep_their_worker),
        cmocka_unit_test(test_stop_finishes_inflight),
        cmocka_unit_test(test_silent_client_dropped),
        cmocka_unit_test(test_worker_lifecycle_and_errors),
        cmocka_unit_test(test_request_log_line),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
