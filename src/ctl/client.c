/* client.c: stewardctl's HTTP side: one libcurl easy handle per run (so
 * connections are reused), the API key as a Bearer header, TLS verified
 * against --cacert, JSON answers parsed with jansson, and transport failures
 * turned into one clear line. Called by the command handlers. */
#include "ctl/ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Answers larger than this are refused: no API answer comes close, and a
 * misdirected URL must not fill memory. */
#define CTL_MAX_BODY (64u * 1024 * 1024)
#define CTL_CONNECT_TIMEOUT 10L

#ifndef STEWARD_VERSION
#define STEWARD_VERSION "0.0.0-dev" /* CMake defines the real one */
#endif

struct ctl_client {
    CURL *curl;
    const struct ctl_opts *opts;
    char *base;    /* opts->url without trailing slashes */
    char *shown;   /* base without any user:password@, for messages */
    FILE *err;     /* where transport failures are reported */
    char errbuf[CURL_ERROR_SIZE];
    int too_large; /* set by the write callback */
    const char *raw_type; /* ctl_request_raw: the body's type, else NULL (JSON) */
    size_t raw_len;
};

/* The URL for messages: any "user:password@" is dropped. Caller frees. */
static char *redact_url(const char *url)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    if (!at)
        return strdup(url);
    struct buf b = {0};
    if (buf_append(&b, url, (size_t)(host - url)) < 0 || buf_puts(&b, at + 1) < 0) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, NULL);
}

struct ctl_client *ctl_client_new(const struct ctl_opts *opts, FILE *err)
{
    struct ctl_client *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(err, "stewardctl: out of memory\n");
        return NULL;
    }
    c->opts = opts;
    c->err = err;
    c->base = strdup(opts->url);
    if (c->base) {
        size_t n = strlen(c->base);
        while (n > 0 && c->base[n - 1] == '/')
            c->base[--n] = '\0';
        c->shown = redact_url(c->base);
    }
    c->curl = curl_easy_init();
    if (!c->base || !c->shown || !c->curl) {
        fprintf(err, "stewardctl: cannot set up the HTTP client (out of memory?)\n");
        ctl_client_free(c);
        return NULL;
    }
    return c;
}

void ctl_client_free(struct ctl_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->shown);
    free(c);
}

void ctl_response_free(struct ctl_response *r)
{
    if (!r)
        return;
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

struct sink {
    struct buf body;
    struct ctl_client *client;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct sink *s = userp;
    size_t n = size * nmemb;
    if (s->body.len + n > CTL_MAX_BODY) {
        s->client->too_large = 1;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    return buf_append(&s->body, data, n) < 0 ? 0 : n;
}

static struct curl_slist *add_header(struct curl_slist *h, const char *line, int *ok)
{
    struct curl_slist *t = *ok ? curl_slist_append(h, line) : NULL;
    if (!t)
        *ok = 0;
    return t ? t : h;
}

static void wipe_headers(struct curl_slist *h);

/* The header lines of one request, or NULL on OOM. The Authorization line
 * holds the key, so every copy of it is wiped before being freed. */
static struct curl_slist *make_headers(const struct ctl_client *c, int auth, int has_body)
{
    int ok = 1;
    struct curl_slist *h = add_header(NULL, "Accept: application/json", &ok);
    if (has_body) {
        struct buf type = {0};
        if (buf_printf(&type, "Content-Type: %s",
                       c->raw_type ? c->raw_type : "application/json") == 0)
            h = add_header(h, type.data, &ok);
        else
            ok = 0;
        buf_free(&type);
        h = add_header(h, "Expect:", &ok); /* no 100-continue round trip */
    }
    if (auth) {
        struct buf line = {0};
        if (buf_printf(&line, "Authorization: Bearer %s", c->opts->api_key) == 0)
            h = add_header(h, line.data, &ok);
        else
            ok = 0;
        if (line.data)
            explicit_bzero(line.data, line.len);
        buf_free(&line);
    }
    if (!ok) {
        wipe_headers(h);
        return NULL;
    }
    return h;
}

static void wipe_headers(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p; p = p->next)
        explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* Sets every option of one transfer; the handle was reset first, so nothing
 * leaks from the previous request. */
static int set_options(struct ctl_client *c, const char *method, const char *url,
                       const char *body, struct curl_slist *headers, struct sink *sink)
{
    CURL *h = c->curl;
    const struct ctl_opts *o = c->opts;
    long connect_timeout = o->timeout < CTL_CONNECT_TIMEOUT ? o->timeout : CTL_CONNECT_TIMEOUT;
    int bad = 0;
    bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT, o->timeout) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_timeout) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "stewardctl/" STEWARD_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, sink) != CURLE_OK;
    /* Redirects are not followed: they would carry the API key elsewhere. */
    bad |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    if (o->cacert)
        bad |= curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert) != CURLE_OK;
    if (o->insecure) {
        bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
        bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
    }
    if (body) {
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK;
        curl_off_t size = (curl_off_t)(c->raw_type ? c->raw_len : strlen(body));
        bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, size) != CURLE_OK;
    }
    if (strcmp(method, "GET") != 0 && !(body && strcmp(method, "POST") == 0))
        bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    return bad ? -1 : 0;
}

/* One line naming what failed, for the transport errors an operator meets. */
static void report_transport_error(struct ctl_client *c, CURLcode rc, FILE *err)
{
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        fprintf(err, "stewardctl: cannot connect to %s: %s\n", c->shown,
                os_errno == ECONNREFUSED ? "connection refused"
                : os_errno              ? strerror((int)os_errno)
                                        : detail);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        fprintf(err, "stewardctl: cannot resolve the host of %s\n", c->shown);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        fprintf(err,
                "stewardctl: TLS verification of %s failed: %s (give steward's CA with --cacert "
                "FILE or STEWARD_CACERT)\n",
                c->shown, detail);
        break;
    case CURLE_SSL_CACERT_BADFILE:
        fprintf(err, "stewardctl: cannot use the CA file %s: %s\n",
                c->opts->cacert ? c->opts->cacert : "(system default)", detail);
        break;
    case CURLE_SSL_CONNECT_ERROR:
        fprintf(err, "stewardctl: TLS handshake with %s failed: %s\n", c->shown, detail);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        fprintf(err, "stewardctl: no answer from %s within %ld s (--timeout)\n", c->shown,
                c->opts->timeout);
        break;
    case CURLE_RECV_ERROR:
        fprintf(err, "stewardctl: the connection to %s broke: %s%s\n", c->shown, detail,
                strncmp(c->base, "http://", 7) == 0 ? " (does the server want https://?)" : "");
        break;
    case CURLE_GOT_NOTHING:
        fprintf(err, "stewardctl: %s closed the connection without answering\n", c->shown);
        break;
    case CURLE_WRITE_ERROR:
        fprintf(err, "stewardctl: %s\n",
                c->too_large ? "the answer is too large" : "out of memory reading the answer");
        break;
    default:
        fprintf(err, "stewardctl: request to %s failed: %s\n", c->shown, detail);
        break;
    }
}

static int perform(struct ctl_client *c, const char *method, const char *url, const char *body,
                   int auth, struct ctl_response *r)
{
    struct sink sink = {.client = c};
    struct curl_slist *headers = make_headers(c, auth, body != NULL);
    c->errbuf[0] = '\0';
    c->too_large = 0;
    curl_easy_reset(c->curl);
    if (!headers || set_options(c, method, url, body, headers, &sink) < 0) {
        fprintf(c->err, "stewardctl: cannot set up the request (out of memory?)\n");
        wipe_headers(headers);
        return -1;
    }
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    wipe_headers(headers);
    if (rc != CURLE_OK) {
        report_transport_error(c, rc, c->err);
        buf_free(&sink.body);
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (!sink.body.data && buf_append(&sink.body, "", 0) < 0) {
        fprintf(c->err, "stewardctl: out of memory\n");
        return -1;
    }
    r->body = buf_steal(&sink.body, &r->len);
    r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    return 0;
}

int ctl_request(struct ctl_client *c, const char *method, const char *path, const json_t *body,
                int auth, struct ctl_response *r)
{
    memset(r, 0, sizeof *r);
    if (auth && !c->opts->api_key) {
        fprintf(c->err, "stewardctl: no API key: give --api-key KEY or set STEWARD_API_KEY\n");
        return -1;
    }
    struct buf url = {0};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = -1;
    if ((body && !text) || buf_printf(&url, "%s%s", c->base, path) < 0)
        fprintf(c->err, "stewardctl: out of memory\n");
    else
        rc = perform(c, method, url.data, text, auth, r);
    free(text);
    buf_free(&url);
    return rc;
}

int ctl_request_raw(struct ctl_client *c, const char *method, const char *path,
                    const void *data, size_t len, const char *type, struct ctl_response *r)
{
    memset(r, 0, sizeof *r);
    if (!c->opts->api_key) {
        fprintf(c->err, "stewardctl: no API key: give --api-key KEY or set STEWARD_API_KEY\n");
        return -1;
    }
    struct buf url = {0};
    if (buf_printf(&url, "%s%s", c->base, path) < 0) {
        fprintf(c->err, "stewardctl: out of memory\n");
        return -1;
    }
    c->raw_type = type;
    c->raw_len = len;
    int rc = perform(c, method, url.data, data, 1, r);
    c->raw_type = NULL;
    c->raw_len = 0;
    buf_free(&url);
    return rc;
}

char *ctl_url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b = {0};
    if (buf_append(&b, "", 0) < 0)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        if (buf_append(&b, keep ? (const char *)p : esc, keep ? 1 : 3) < 0) {
            buf_free(&b);
            return NULL;
        }
    }
    return buf_steal(&b, NULL);
}

int ctl_query_add(struct buf *b, const char *key, const char *value)
{
    char *k = ctl_url_encode(key);
    char *v = ctl_url_encode(value);
    int has_query = b->data && strchr(b->data, '?') != NULL;
    int rc = k && v ? buf_printf(b, "%c%s=%s", has_query ? '&' : '?', k, v) : -1;
    free(k);
    free(v);
    return rc;
}

/* The first line of a text body, trimmed and at most n-1 bytes. */
static void first_line(const char *body, char *out, size_t n)
{
    while (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n')
        body++;
    size_t len = strcspn(body, "\r\n");
    while (len > 0 && (body[len - 1] == ' ' || body[len - 1] == '\t'))
        len--;
    if (len > 200)
        len = 200;
    struct buf raw = {0}, clean = {0};
    if (buf_append(&raw, body, len) == 0 && ctl_put_clean(&clean, raw.data) == 0)
        snprintf(out, n, "%s", clean.data);
    else
        snprintf(out, n, "%s", "");
    buf_free(&raw);
    buf_free(&clean);
}

void ctl_error_message(const struct ctl_response *r, char *out, size_t n)
{
    json_t *e = json_is_object(r->json) ? json_object_get(r->json, "error") : NULL;
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : NULL;
    out[0] = '\0';
    if (json_is_string(m)) {
        struct buf clean = {0};
        if (ctl_put_clean(&clean, json_string_value(m)) == 0 && clean.data)
            snprintf(out, n, "%s", clean.data);
        buf_free(&clean);
    } else if (!r->json && r->body) {
        first_line(r->body, out, n);
    }
    if (!out[0])
        snprintf(out, n, "%s", "the server answered with an error");
}

int ctl_report_http_error(struct ctl *c, const struct ctl_response *r)
{
    if (r->status < 400)
        return 0;
    char msg[512];
    ctl_error_message(r, msg, sizeof msg);
    fprintf(c->err, "stewardctl: %s (HTTP %ld)\n", msg, r->status);
    return 1;
}

struct ctl_client *ctl_connect(struct ctl *c)
{
    if (!c->client)
        c->client = ctl_client_new(&c->opts, c->err);
    return c->client;
}

int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body,
             struct ctl_response *r)
{
    memset(r, 0, sizeof *r);
    struct ctl_client *client = ctl_connect(c);
    if (!client || ctl_request(client, method, path, body, 1, r) < 0)
        return CTL_EXIT_FAIL;
    if (c->opts.json)
        ctl_print_json(c, r);
    return ctl_report_http_error(c, r) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

int ctl_unexpected(struct ctl *c, const struct ctl_response *r)
{
    ctl_fail(c, "unexpected answer from the server (HTTP %ld)", r->status);
    return CTL_EXIT_FAIL;
}

int ctl_get_and_render(struct ctl *c, const char *path, ctl_render_fn render)
{
    struct ctl_response r;
    int rc = ctl_call(c, "GET", path, NULL, &r);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        struct buf out = {0};
        if (!json_is_object(r.json) || render(r.json, &out) < 0)
            rc = ctl_unexpected(c, &r);
        else if (ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}
