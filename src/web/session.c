/* session.c: cookie sessions, CSRF tokens, sign-in throttling, form
 * decoding and HTML escaping for steward's web pages (session.h), generic
 * over a realm. Cookies always carry Secure, HttpOnly, SameSite=Strict and
 * the __Host- prefix: pages that use them are served over HTTPS only. */
#include "web/session.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/config.h"
#include "util/ids.h"

static int proxy_trusted(const struct config *cfg, const char *addr)
{
    const char *p = cfg->trusted_proxies;
    size_t alen = strlen(addr);
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t l = strcspn(p, ", ");
        if (l == alen && alen && strncmp(p, addr, alen) == 0)
            return 1;
        p += l;
    }
    return 0;
}

int web_request_is_https(const struct config *cfg, const struct request *req)
{
    if (req->tls)
        return 1;
    const char *proto = request_header(req, "X-Forwarded-Proto");
    return proto && strcmp(proto, "https") == 0 && proxy_trusted(cfg, req->remote_addr);
}

const char *web_client_addr(const struct config *cfg, const struct request *req, char *buf,
                            size_t n)
{
    const char *xff = request_header(req, "X-Forwarded-For");
    if (xff && proxy_trusted(cfg, req->remote_addr)) {
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        size_t l = strcspn(last, " ");
        if (l > 0 && l < n && l < 64) {
            memcpy(buf, last, l);
            buf[l] = '\0';
            return buf;
        }
    }
    snprintf(buf, n, "%s", req->remote_addr);
    return buf;
}

const char *web_cookie_get(const struct request *req, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    for (size_t h = 0; h < req->nheaders; h++) {
        if (strcasecmp(req->headers[h].name, "Cookie") != 0)
            continue;
        const char *p = req->headers[h].value;
        while (*p) {
            while (*p == ' ' || *p == ';')
                p++;
            size_t l = strcspn(p, ";");
            if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
                size_t vl = l - nl - 1;
                if (vl + 1 > n)
                    return NULL;
                memcpy(buf, p + nl + 1, vl);
                buf[vl] = '\0';
                return buf;
            }
            p += l;
        }
    }
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one form value [s, s+len) into buf; -1 when malformed or long. */
static int form_decode(const char *s, size_t len, char *buf, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int a = i + 2 < len ? hexval(s[i + 1]) : -1, b = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (a < 0 || b < 0)
                return -1;
            c = (char)(a * 16 + b);
            if (c == '\0')
                return -1;
            i += 2;
        }
        if (o + 1 >= n)
            return -1;
        buf[o++] = c;
    }
    buf[o] = '\0';
    return 0;
}

const char *web_form_get(const uint8_t *body, size_t len, const char *name, char *buf, size_t n)
{
    const char *p = (const char *)body, *end = p + len;
    size_t nl = strlen(name);
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *fe = amp ? amp : end;
        if ((size_t)(fe - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
            return form_decode(p + nl + 1, (size_t)(fe - p) - nl - 1, buf, n) == 0 ? buf : NULL;
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

int web_html_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&'   ? "&amp;"
                        : *s == '<' ? "&lt;"
                        : *s == '>' ? "&gt;"
                        : *s == '"' ? "&quot;"
                        : *s == '\'' ? "&#39;"
                                     : NULL;
        if (e ? buf_puts(b, e) : buf_append(b, s, 1))
            return -1;
    }
    return 0;
}

/* Set-Cookie for "__Host-<base><suffix>" (value "" and max_age 0 clear it). */
static int set_cookie(const struct web_realm *r, struct response *resp, const char *suffix,
                      const char *value, int64_t max_age)
{
    char h[512];
    int n = snprintf(h, sizeof h,
                     "__Host-%s%s=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; SameSite=Strict",
                     r->cookie, suffix, value, (long long)max_age);
    if (n < 0 || (size_t)n >= sizeof h)
        return -1;
    return response_add_header(resp, "Set-Cookie", h);
}

static const char *realm_cookie(const struct web_realm *r, const struct request *req,
                                const char *suffix, char *buf, size_t n)
{
    char name[160];
    snprintf(name, sizeof name, "__Host-%s%s", r->cookie, suffix);
    return web_cookie_get(req, name, buf, n);
}

int web_csrf_issue(const struct web_realm *r, struct response *resp, char out[WEB_TOKEN_LEN])
{
    if (ids_random_hex(32, out) != 0)
        return -1;
    return set_cookie(r, resp, "_csrf", out, r->session_ttl);
}

int web_csrf_check(const struct web_realm *r, const struct request *req, const char *form_token)
{
    char c[WEB_TOKEN_LEN];
    if (!form_token || strlen(form_token) != WEB_TOKEN_LEN - 1 ||
        !realm_cookie(r, req, "_csrf", c, sizeof c))
        return 0;
    return ids_secure_equal(c, form_token);
}

int web_session_start(struct store *s, const struct web_realm *r, struct response *resp,
                      const char *subject, int64_t now, char csrf[WEB_TOKEN_LEN])
{
    char sid[WEB_TOKEN_LEN], hash[65];
    if (ids_random_hex(32, sid) != 0 || ids_random_hex(32, csrf) != 0)
        return STORE_ERR;
    ids_sha256_hex((const uint8_t *)sid, strlen(sid), hash);
    int rc = store_web_session_add(s, r->name, hash, subject, csrf, now, now + r->session_ttl);
    if (rc == STORE_OK && set_cookie(r, resp, "", sid, r->session_ttl) != 0)
        rc = STORE_ERR;
    memset(sid, 0, sizeof sid);
    return rc;
}

int web_session_load(struct store *s, const struct web_realm *r, const struct request *req,
                     int64_t now, struct store_web_session *out)
{
    char sid[WEB_TOKEN_LEN], hash[65];
    if (!realm_cookie(r, req, "", sid, sizeof sid) || strlen(sid) != WEB_TOKEN_LEN - 1)
        return STORE_NOTFOUND;
    ids_sha256_hex((const uint8_t *)sid, strlen(sid), hash);
    return store_web_session_get(s, r->name, hash, now, out);
}

int web_session_end(struct store *s, const struct web_realm *r, const struct request *req,
                    struct response *resp)
{
    char sid[WEB_TOKEN_LEN], hash[65];
    int rc = STORE_OK;
    if (realm_cookie(r, req, "", sid, sizeof sid)) {
        ids_sha256_hex((const uint8_t *)sid, strlen(sid), hash);
        rc = store_web_session_delete(s, r->name, hash);
    }
    set_cookie(r, resp, "", "", 0);
    return rc;
}

static void throttle_key(char *out, size_t n, const char *kind, const char *v)
{
    snprintf(out, n, "%s:%s", kind, v);
}

int web_throttle_locked(struct store *s, const struct web_realm *r, const char *user,
                        const char *addr, int64_t now, int64_t *retry_after)
{
    char key[600];
    int64_t until = 0, ip_until = 0;
    throttle_key(key, sizeof key, "user", user);
    int rc = store_web_throttle_locked(s, r->name, key, now, &until);
    if (rc == STORE_OK && r->ip_max_failures > 0) {
        throttle_key(key, sizeof key, "ip", addr);
        rc = store_web_throttle_locked(s, r->name, key, now, &ip_until);
    }
    if (rc != STORE_OK)
        return rc;
    if (ip_until > until)
        until = ip_until;
    *retry_after = until > now ? until - now : 0;
    return until > now;
}

int web_throttle_failed(struct store *s, const struct web_realm *r, const char *user,
                        const char *addr, int64_t now)
{
    char key[600];
    int64_t until = 0, ip_until = 0;
    throttle_key(key, sizeof key, "user", user);
    int rc = store_web_throttle_fail(s, r->name, key, now, r->failure_window, r->max_failures,
                                     r->lockout_secs, &until);
    if (rc == STORE_OK && r->ip_max_failures > 0) {
        throttle_key(key, sizeof key, "ip", addr);
        rc = store_web_throttle_fail(s, r->name, key, now, r->failure_window,
                                     r->ip_max_failures, r->lockout_secs, &ip_until);
    }
    if (rc != STORE_OK)
        return rc;
    return until > now || ip_until > now;
}

int web_throttle_succeeded(struct store *s, const struct web_realm *r, const char *user)
{
    char key[600];
    throttle_key(key, sizeof key, "user", user);
    return store_web_throttle_clear(s, r->name, key);
}
