/* apns.c: the APNs provider client behind apns.h. Requests are built by
 * apns_path/apns_body (pure), sent as HTTP/2 streams on libcurl's multi
 * interface (CURLPIPE_MULTIPLEX: one connection carries many streams; more
 * connections, up to apns_opts.connections, open when the streams of the
 * existing ones are all in use), and answers classified by apns_classify.
 * The multi handle keeps its connections between batches, so a long-lived
 * client pays the TLS handshake once. */
#include "push/apns.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *apns_outcome_name(enum apns_outcome o)
{
    switch (o) {
    case APNS_OK: return "ok";
    case APNS_UNREGISTERED: return "unregistered";
    case APNS_REJECTED: return "rejected";
    case APNS_CERT_REFUSED: return "certificate_refused";
    case APNS_THROTTLED: return "throttled";
    case APNS_RETRY: return "retry";
    }
    return "?";
}

int apns_path(char *out, size_t n, const char *token_hex)
{
    size_t len = token_hex ? strlen(token_hex) : 0;
    if (len < 16 || len > 200 || len % 2 != 0)
        return -1;
    static const char prefix[] = "/3/device/";
    if (sizeof prefix + len > n)
        return -1;
    memcpy(out, prefix, sizeof prefix - 1);
    char *o = out + sizeof prefix - 1;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)token_hex[i]))
            return -1;
        *o++ = (char)tolower((unsigned char)token_hex[i]);
    }
    *o = '\0';
    return 0;
}

int apns_body(char *out, size_t n, const char *magic)
{
    size_t len = magic ? strlen(magic) : 0;
    if (len == 0 || len > 128)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)magic[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return -1;
    }
    int w = snprintf(out, n, "{\"mdm\":\"%s\"}", magic);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int64_t apns_expiration(int64_t now, int64_t ttl)
{
    return ttl <= 0 ? 0 : now + ttl;
}

static void copy_reason(char *reason, size_t n, const char *s)
{
    if (n)
        snprintf(reason, n, "%s", s ? s : "");
}

enum apns_outcome apns_classify(long status, const char *body, size_t len, char *reason,
                                size_t reason_n, int64_t *timestamp)
{
    *timestamp = 0;
    copy_reason(reason, reason_n, "");
    if (status == 200)
        return APNS_OK;
    if (body && len) {
        json_t *j = json_loadb(body, len, 0, NULL);
        if (json_is_object(j)) {
            copy_reason(reason, reason_n, json_string_value(json_object_get(j, "reason")));
            json_t *ts = json_object_get(j, "timestamp");
            if (json_is_integer(ts))
                *timestamp = json_integer_value(ts);
        }
        json_decref(j);
    }
    if (status == 0 || status >= 500)
        return APNS_RETRY;
    if (status == 410)
        return APNS_UNREGISTERED;
    if (status == 400 && strcmp(reason, "BadDeviceToken") == 0)
        return APNS_UNREGISTERED;
    if (status == 403)
        return APNS_CERT_REFUSED;
    if (status == 429)
        return APNS_THROTTLED;
    return APNS_REJECTED;
}

/* ---- the client ---------------------------------------------------------- */

#define RESP_MAX 512

/* One in-flight stream: its easy handle (reused), the request's buffers
 * and the answer as it arrives. */
struct slot {
    CURL *easy;
    struct apns_push *p;
    char url[512];
    char body[160];
    char resp[RESP_MAX];
    size_t resp_len;
};

struct apns_client {
    char *topic;
    char *base_url;
    char *ca_file;
    char *cert_pem;
    char *key_pem;
    struct apns_opts o;
    CURLM *multi;
    struct slot *slots;
    size_t nslots;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void apns_client_free(struct apns_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->slots && i < c->nslots; i++)
        if (c->slots[i].easy)
            curl_easy_cleanup(c->slots[i].easy);
    free(c->slots);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c->topic);
    free(c->base_url);
    free(c->ca_file);
    free(c->cert_pem);
    free(c->key_pem);
    free(c);
}

static char *strdup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct apns_client *apns_client_new(const char *topic, const char *cert_pem, const char *key_pem,
                                    const struct apns_opts *o, char **err)
{
    pthread_once(&curl_once, curl_init_once);
    *err = NULL;
    struct apns_client *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->o = *o;
    if (c->o.connections <= 0)
        c->o.connections = 2;
    if (c->o.streams <= 0)
        c->o.streams = 500;
    if (c->o.timeout_ms <= 0)
        c->o.timeout_ms = 15000;
    if (c->o.priority != 5)
        c->o.priority = 10;
    const char *url = o->url && *o->url ? o->url : APNS_PRODUCTION_URL;
    size_t ulen = strlen(url);
    while (ulen > 0 && url[ulen - 1] == '/')
        ulen--;
    c->topic = strdup(topic);
    c->base_url = strndup(url, ulen);
    c->ca_file = o->ca_file && *o->ca_file ? strdup(o->ca_file) : NULL;
    c->cert_pem = strdup_or_null(cert_pem);
    c->key_pem = strdup_or_null(key_pem);
    c->nslots = (size_t)(c->o.connections * c->o.streams);
    if (c->nslots > 20000)
        c->nslots = 20000;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    c->multi = curl_multi_init();
    if (!c->topic || !c->base_url || !c->cert_pem || !c->key_pem || !c->slots || !c->multi)
        goto oom;
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, c->o.connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, c->o.streams);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, c->o.connections);
    return c;
oom:
    apns_client_free(c);
    *err = strdup("out of memory setting up the APNs client");
    return NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct slot *s = arg;
    size_t n = size * nmemb;
    size_t room = RESP_MAX - 1 - s->resp_len;
    size_t take = n < room ? n : room;
    memcpy(s->resp + s->resp_len, data, take);
    s->resp_len += take;
    s->resp[s->resp_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct slot *s = arg;
    size_t n = size * nmemb;
    static const char name[] = "apns-id:";
    if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t vl = n - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl >= sizeof s->p->apns_id)
            vl = sizeof s->p->apns_id - 1;
        memcpy(s->p->apns_id, v, vl);
        s->p->apns_id[vl] = '\0';
    }
    return n;
}

/* The headers every stream of this batch shares. */
static struct curl_slist *batch_headers(const struct apns_client *c)
{
    char line[600];
    struct curl_slist *h = NULL, *t;
#define ADD(...)                                     \
    do {                                             \
        snprintf(line, sizeof line, __VA_ARGS__);    \
        t = curl_slist_append(h, line);              \
        if (!t)                                      \
            goto fail;                               \
        h = t;                                       \
    } while (0)
    ADD("apns-topic: %s", c->topic);
    ADD("apns-push-type: mdm");
    ADD("apns-priority: %d", c->o.priority);
    ADD("apns-expiration: %" PRId64, apns_expiration((int64_t)time(NULL), c->o.ttl));
    ADD("content-type: application/json");
    ADD("Accept:");
#undef ADD
    return h;
fail:
    curl_slist_free_all(h);
    return NULL;
}

static void fail_item(struct apns_push *p, enum apns_outcome o, const char *why)
{
    p->status = 0;
    p->outcome = o;
    copy_reason(p->reason, sizeof p->reason, why);
}

/* Prepares slot s for push p; -1 (p answered) when p cannot be sent. */
static int slot_setup(struct apns_client *c, struct slot *s, struct apns_push *p,
                      struct curl_slist *headers)
{
    char path[256];
    memset(p->apns_id, 0, sizeof p->apns_id);
    p->timestamp = 0;
    if (apns_path(path, sizeof path, p->token_hex) < 0) {
        fail_item(p, APNS_REJECTED, "BadDeviceToken (not hex)");
        return -1;
    }
    if (apns_body(s->body, sizeof s->body, p->magic) < 0) {
        fail_item(p, APNS_REJECTED, "bad PushMagic");
        return -1;
    }
    snprintf(s->url, sizeof s->url, "%s%s", c->base_url, path);
    if (!s->easy) {
        s->easy = curl_easy_init();
        if (!s->easy) {
            fail_item(p, APNS_RETRY, "out of memory");
            return -1;
        }
    } else {
        curl_easy_reset(s->easy);
    }
    s->p = p;
    s->resp_len = 0;
    s->resp[0] = '\0';
    CURL *e = s->easy;
    struct curl_blob cert = {c->cert_pem, strlen(c->cert_pem), CURL_BLOB_NOCOPY};
    struct curl_blob key = {c->key_pem, strlen(c->key_pem), CURL_BLOB_NOCOPY};
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    return 0;
}

static void slot_finish(struct slot *s, CURLcode res)
{
    struct apns_push *p = s->p;
    if (res != CURLE_OK) {
        fail_item(p, APNS_RETRY, curl_easy_strerror(res));
        return;
    }
    long status = 0, version = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_HTTP_VERSION, &version);
    if (version != CURL_HTTP_VERSION_2_0) {
        fail_item(p, APNS_RETRY, "server did not speak HTTP/2");
        return;
    }
    p->status = status;
    p->outcome = apns_classify(status, s->resp, s->resp_len, p->reason, sizeof p->reason,
                               &p->timestamp);
}

/* Collects finished streams; frees their slots onto the free stack. */
static size_t reap(struct apns_client *c, struct slot **free_stack, size_t *nfree)
{
    size_t answered = 0;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct slot *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        CURLcode res = m->data.result;
        curl_multi_remove_handle(c->multi, m->easy_handle);
        slot_finish(s, res);
        answered += s->p->status != 0;
        s->p = NULL;
        free_stack[(*nfree)++] = s;
    }
    return answered;
}

size_t apns_client_send(struct apns_client *c, struct apns_push *items, size_t n)
{
    struct curl_slist *headers = batch_headers(c);
    struct slot **free_stack = calloc(c->nslots, sizeof *free_stack);
    if (!headers || !free_stack) {
        for (size_t i = 0; i < n; i++)
            fail_item(&items[i], APNS_RETRY, "out of memory");
        curl_slist_free_all(headers);
        free(free_stack);
        return 0;
    }
    size_t nfree = 0, next = 0, answered = 0;
    for (size_t i = c->nslots; i > 0; i--)
        free_stack[nfree++] = &c->slots[i - 1];
    int running = 0;
    while (next < n || running > 0) {
        while (next < n && nfree > 0) {
            struct slot *s = free_stack[nfree - 1];
            struct apns_push *p = &items[next++];
            if (slot_setup(c, s, p, headers) < 0)
                continue;
            if (curl_multi_add_handle(c->multi, s->easy) != CURLM_OK) {
                fail_item(p, APNS_RETRY, "cannot start the stream");
                continue;
            }
            nfree--;
            running++;
        }
        int still = 0;
        curl_multi_perform(c->multi, &still);
        size_t before = nfree;
        answered += reap(c, free_stack, &nfree);
        running -= (int)(nfree - before);
        if (running > 0 && nfree == before)
            curl_multi_poll(c->multi, NULL, 0, 200, NULL);
    }
    curl_slist_free_all(headers);
    free(free_stack);
    return answered;
}
