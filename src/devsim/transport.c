/* transport.c: HTTPS PUTs as an iPhone's mdmd makes them, over libcurl.
 * One easy handle per worker, reused for every request so connections stay
 * alive and TLS sessions resume. The device proves its identity by mutual
 * TLS (its certificate and key as in-memory PEM blobs) and/or an
 * Mdm-Signature header over the exact body. Called by flow.c; plain GETs
 * and POSTs (SCEP, the challenge API) by scep.c. */
#include "devsim/devsim.h"

#include "pki/pki.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct devsim_http {
    CURL *easy;
    const struct devsim_opts *o;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t len = size * n;
    return buf_append(b, p, len) == 0 ? len : 0; /* 0 aborts the transfer */
}

#define SETOPT(h, opt, val)                                        \
    do {                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK)       \
            return -1;                                             \
    } while (0)

/* Options that stay the same for every request of this worker. */
static int set_fixed_options(CURL *e, const struct devsim_opts *o, char *errbuf)
{
    SETOPT(e, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(e, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    SETOPT(e, CURLOPT_USERAGENT, "MDM/1.0");
    SETOPT(e, CURLOPT_CONNECTTIMEOUT, 10L);
    SETOPT(e, CURLOPT_TIMEOUT, 60L);
    SETOPT(e, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(e, CURLOPT_SSL_SESSIONID_CACHE, 1L);
    SETOPT(e, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(e, CURLOPT_VERBOSE, o->verbose >= 2 ? 1L : 0L);
    if (o->ca_file)
        SETOPT(e, CURLOPT_CAINFO, o->ca_file);
    if (o->insecure) {
        SETOPT(e, CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return 0;
}

struct devsim_http *devsim_http_new(const struct devsim_opts *o, char **err)
{
    struct devsim_http *h = calloc(1, sizeof *h);
    if (h)
        h->easy = curl_easy_init();
    if (!h || !h->easy) {
        if (err)
            *err = strdup("cannot create a libcurl handle");
        devsim_http_free(h);
        return NULL;
    }
    h->o = o;
    if (set_fixed_options(h->easy, o, h->errbuf) != 0) {
        if (err)
            *err = strdup("libcurl refused an option (too old?)");
        devsim_http_free(h);
        return NULL;
    }
    return h;
}

void devsim_http_free(struct devsim_http *h)
{
    if (!h)
        return;
    if (h->easy)
        curl_easy_cleanup(h->easy);
    free(h);
}

/* The client certificate is set per request because workers serve many
 * devices; libcurl compares the blobs, so a device's requests share one
 * connection and a new device gets a new TLS handshake with its own cert. */
static int set_client_cert(CURL *e, const struct devsim_opts *o, const struct devsim_device *d)
{
    struct curl_blob cert = {0}, key = {0};
    int use = o->mtls && d->cert_pem && d->key_pem;
    if (use) {
        cert = (struct curl_blob){d->cert_pem, strlen(d->cert_pem), CURL_BLOB_COPY};
        key = (struct curl_blob){d->key_pem, strlen(d->key_pem), CURL_BLOB_COPY};
    }
    SETOPT(e, CURLOPT_SSLCERT_BLOB, use ? &cert : NULL);
    SETOPT(e, CURLOPT_SSLKEY_BLOB, use ? &key : NULL);
    if (use) {
        SETOPT(e, CURLOPT_SSLCERTTYPE, "PEM");
        SETOPT(e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    return 0;
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h, int *failed)
{
    struct curl_slist *n = curl_slist_append(l, h);
    if (!n) {
        *failed = 1;
        return l;
    }
    return n;
}

/* Content-Type, Mdm-Signature when asked, and no "Expect: 100-continue"
 * (iOS never sends it and it costs a round trip). */
static struct curl_slist *make_headers(const struct devsim_opts *o, const struct devsim_device *d,
                                       const char *ctype, const char *body, size_t len,
                                       char *errmsg, size_t errlen)
{
    int failed = 0;
    char line[256];
    struct curl_slist *l = NULL;
    snprintf(line, sizeof line, "Content-Type: %s", ctype);
    l = add_header(l, line, &failed);
    l = add_header(l, "Expect:", &failed);
    if (o->signature) {
        char *sig = d->cert && d->key
                        ? pki_sign_mdm_signature(d->cert, d->key, (const uint8_t *)body, len)
                        : NULL;
        char *hdr = NULL;
        if (!sig || asprintf(&hdr, "Mdm-Signature: %s", sig) < 0) {
            snprintf(errmsg, errlen, "%s", sig ? "out of memory" : "cannot sign the body (no identity?)");
            free(sig);
            curl_slist_free_all(l);
            return NULL;
        }
        l = add_header(l, hdr, &failed);
        free(hdr);
        free(sig);
    }
    if (failed) {
        snprintf(errmsg, errlen, "out of memory");
        curl_slist_free_all(l);
        return NULL;
    }
    return l;
}

static int prepare(struct devsim_http *h, const struct devsim_device *d, const char *url,
                   const char *body, size_t len, struct curl_slist *hdrs,
                   struct devsim_http_resp *resp)
{
    CURL *e = h->easy;
    /* set per request: devsim_http_plain() uses the same handle for GET/POST */
    SETOPT(e, CURLOPT_CUSTOMREQUEST, "PUT");
    SETOPT(e, CURLOPT_URL, url);
    SETOPT(e, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(e, CURLOPT_POSTFIELDS, body);
    SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    SETOPT(e, CURLOPT_WRITEDATA, &resp->body);
    return set_client_cert(e, h->o, d);
}

/* Runs the prepared request and reads its status. 0, or -1 with resp->error. */
static int perform(struct devsim_http *h, struct devsim_http_resp *resp)
{
    CURLcode cc = curl_easy_perform(h->easy);
    if (cc != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
        return -1;
    }
    if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &resp->status) != CURLE_OK) {
        snprintf(resp->error, sizeof resp->error, "no response code");
        return -1;
    }
    return 0;
}

/* The handle must not keep pointers to this request's headers or body.
 * Clearing a pointer option cannot fail, so the results carry nothing. */
static void forget_request(struct devsim_http *h, struct curl_slist *hdrs)
{
    (void)curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    (void)curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, (char *)NULL);
    curl_slist_free_all(hdrs);
}

int devsim_http_put(struct devsim_http *h, const struct devsim_device *d, const char *url,
                    const char *content_type, const char *body, size_t len,
                    struct devsim_http_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    h->errbuf[0] = '\0';
    struct curl_slist *hdrs =
        make_headers(h->o, d, content_type, body, len, resp->error, sizeof resp->error);
    if (!hdrs)
        return -1;
    int rc = -1;
    if (prepare(h, d, url, body, len, hdrs, resp) != 0) {
        snprintf(resp->error, sizeof resp->error, "libcurl refused an option");
        goto done;
    }
    rc = perform(h, resp);
done:
    forget_request(h, hdrs);
    return rc;
}

static struct curl_slist *plain_headers(const char *ctype, const char *extra)
{
    int failed = 0;
    char line[256];
    struct curl_slist *l = add_header(NULL, "Expect:", &failed);
    if (ctype) {
        snprintf(line, sizeof line, "Content-Type: %s", ctype);
        l = add_header(l, line, &failed);
    }
    if (extra)
        l = add_header(l, extra, &failed);
    if (failed) {
        curl_slist_free_all(l);
        return NULL;
    }
    return l;
}

static int prepare_plain(struct devsim_http *h, const char *method, const char *url,
                         const void *body, size_t len, struct curl_slist *hdrs,
                         struct devsim_http_resp *resp)
{
    CURL *e = h->easy;
    int post = strcmp(method, "POST") == 0;
    SETOPT(e, CURLOPT_CUSTOMREQUEST, (char *)NULL);
    SETOPT(e, CURLOPT_URL, url);
    SETOPT(e, CURLOPT_HTTPHEADER, hdrs);
    if (post) {
        SETOPT(e, CURLOPT_POSTFIELDS, body ? body : "");
        SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else {
        SETOPT(e, CURLOPT_HTTPGET, 1L);
    }
    SETOPT(e, CURLOPT_WRITEDATA, &resp->body);
    /* SCEP runs before the device has an identity, and iOS sends none there */
    SETOPT(e, CURLOPT_SSLCERT_BLOB, (struct curl_blob *)NULL);
    SETOPT(e, CURLOPT_SSLKEY_BLOB, (struct curl_blob *)NULL);
    return 0;
}

int devsim_http_plain(struct devsim_http *h, const char *method, const char *url,
                      const char *content_type, const char *extra_header, const void *body,
                      size_t len, struct devsim_http_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    h->errbuf[0] = '\0';
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        snprintf(resp->error, sizeof resp->error, "unsupported method %s", method);
        return -1;
    }
    struct curl_slist *hdrs =
        plain_headers(strcmp(method, "POST") == 0 ? content_type : NULL, extra_header);
    if (!hdrs) {
        snprintf(resp->error, sizeof resp->error, "out of memory");
        return -1;
    }
    int rc = -1;
    if (prepare_plain(h, method, url, body, len, hdrs, resp) != 0) {
        snprintf(resp->error, sizeof resp->error, "libcurl refused an option");
        goto done;
    }
    rc = perform(h, resp);
done:
    forget_request(h, hdrs);
    if (rc != 0)
        buf_free(&resp->body);
    return rc;
}

int devsim_http_cookies_reset(struct devsim_http *h)
{
    /* "" turns libcurl's in-memory cookie engine on; "ALL" forgets every
     * cookie, so one device's portal session never leaks to the next. */
    if (curl_easy_setopt(h->easy, CURLOPT_COOKIEFILE, "") != CURLE_OK ||
        curl_easy_setopt(h->easy, CURLOPT_COOKIELIST, "ALL") != CURLE_OK)
        return -1;
    return 0;
}
