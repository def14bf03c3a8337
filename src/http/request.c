/* request.c: helpers handlers use on the request they are given and the
 * response they build (header and query lookup, response setters). Called by
 * the front ends (mdm/, api/, …) on handler threads and by server.c; each
 * request and response belongs to one handler call, so nothing here locks. */
#include "http/http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *request_header(const struct request *req, const char *name)
{
    if (!req || !name)
        return NULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src[0..len) into out (n bytes, NUL-terminated), '+' as a
 * space as forms encode it. A '%' not followed by two hex digits is kept as
 * is. Returns the decoded length, or -1 when it does not fit. */
static long query_decode(const char *src, size_t len, char *out, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len && hex_value(src[i + 1]) >= 0 && hex_value(src[i + 2]) >= 0) {
            c = (char)(hex_value(src[i + 1]) * 16 + hex_value(src[i + 2]));
            i += 2;
        }
        if (o + 1 >= n)
            return -1;
        out[o++] = c;
    }
    if (n == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

const char *request_query(const struct request *req, const char *name, char *buf, size_t n)
{
    if (!req || !req->query || !name || !buf || n == 0)
        return NULL;
    const char *p = req->query;
    while (*p) {
        size_t seg = strcspn(p, "&");
        const char *eq = memchr(p, '=', seg);
        size_t klen = eq ? (size_t)(eq - p) : seg;
        char key[256];
        if (query_decode(p, klen, key, sizeof key) >= 0 && strcmp(key, name) == 0) {
            if (!eq)
                return query_decode("", 0, buf, n) >= 0 ? buf : NULL;
            size_t vlen = seg - klen - 1;
            return query_decode(eq + 1, vlen, buf, n) >= 0 ? buf : NULL;
        }
        p += seg;
        if (*p == '&')
            p++;
    }
    return NULL;
}

/* A header name or value must not be able to start a new header line. */
static int header_text_ok(const char *s)
{
    return s && strpbrk(s, "\r\n") == NULL;
}

int response_add_header(struct response *resp, const char *name, const char *value)
{
    if (!resp || resp->nheaders >= RESPONSE_MAX_HEADERS || !header_text_ok(name) || !*name ||
        strchr(name, ':') || !header_text_ok(value))
        return -1;
    char *n = strdup(name);
    char *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    resp->headers[resp->nheaders].name = n;
    resp->headers[resp->nheaders].value = v;
    resp->nheaders++;
    return 0;
}

int response_set(struct response *resp, int status, const char *content_type, const void *body, size_t len)
{
    if (!resp)
        return -1;
    const char *ct = content_type ? content_type : "";
    if (strlen(ct) >= sizeof resp->content_type || !header_text_ok(ct))
        return -1;
    resp->status = status;
    strcpy(resp->content_type, ct);
    resp->body.len = 0;
    if (resp->body.data)
        resp->body.data[0] = '\0';
    if (len && buf_append(&resp->body, body, len) < 0)
        return -1;
    return 0;
}

int response_text(struct response *resp, int status, const char *reason)
{
    if (!resp)
        return -1;
    if (response_set(resp, status, "text/plain; charset=utf-8", NULL, 0) < 0)
        return -1;
    if (buf_puts(&resp->body, reason ? reason : "") < 0 || buf_puts(&resp->body, "\n") < 0)
        return -1;
    return 0;
}

void response_clear(struct response *resp)
{
    if (!resp)
        return;
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i].name);
        free(resp->headers[i].value);
    }
    buf_free(&resp->body);
    memset(resp, 0, sizeof *resp);
}
