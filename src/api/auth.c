/* auth.c: API-key authentication for the admin routes. The key comes as a
 * Bearer token or as the password of HTTP Basic auth (NanoMDM tools send
 * "nanomdm:<key>"); the store holds only its SHA-256 hex, so the key itself
 * is hashed here and never logged. Called by the router in app/. */
#include "api/api.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/ids.h"
#include "util/log.h"

/* Keys are random tokens; anything much longer is not one of ours. */
#define API_KEY_MAX 512

/* Case-insensitive scheme match ("Basic ", "bearer "); returns the text after
 * the scheme and its spaces, or NULL. */
static const char *after_scheme(const char *value, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strncasecmp(value, scheme, n) != 0 || (value[n] != ' ' && value[n] != '\t'))
        return NULL;
    value += n;
    while (*value == ' ' || *value == '\t')
        value++;
    return value;
}

/* Hashes the key from an Authorization value into hash. Returns 0, or -1
 * with *why set to a reason fit for the log and the client. */
static int key_hash_from_header(const char *value, char hash[65], const char **why)
{
    const char *p;
    if ((p = after_scheme(value, "Bearer"))) {
        size_t len = strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0 || len > API_KEY_MAX) {
            *why = "malformed bearer token";
            return -1;
        }
        ids_sha256_hex((const uint8_t *)p, len, hash);
        return 0;
    }
    if ((p = after_scheme(value, "Basic"))) {
        size_t len = 0;
        uint8_t *raw = strlen(p) <= 4 * API_KEY_MAX ? ids_b64_decode(p, strlen(p), &len) : NULL;
        uint8_t *colon = raw ? memchr(raw, ':', len) : NULL;
        size_t key_len = colon ? len - (size_t)(colon + 1 - raw) : 0;
        if (!colon || key_len == 0 || key_len > API_KEY_MAX) {
            *why = "malformed basic credentials";
            if (raw)
                OPENSSL_cleanse(raw, len);
            free(raw);
            return -1;
        }
        ids_sha256_hex(colon + 1, key_len, hash);
        OPENSSL_cleanse(raw, len); /* the key should not linger in freed memory */
        free(raw);
        return 0;
    }
    *why = "unsupported authorization scheme (use Bearer or Basic)";
    return -1;
}

static void refuse(const struct request *req, struct response *resp, const char *why)
{
    char route[160];
    log_warn("api_auth_failed", "req=%s remote=%s route=%s reason=\"%s\"", req->id,
             req->remote_addr, log_quote(route, sizeof route, req->path), why);
    api_error(resp, 401, "unauthorized", why);
    response_add_header(resp, "WWW-Authenticate", "Basic realm=\"steward\"");
}

int api_authenticate(struct worker *w, struct request *req, struct response *resp)
{
    const char *value = request_header(req, "Authorization");
    if (!value || !*value) {
        refuse(req, resp, "missing API key");
        return -1;
    }
    char hash[65];
    const char *why = NULL;
    if (key_hash_from_header(value, hash, &why) < 0) {
        refuse(req, resp, why);
        return -1;
    }
    char *name = NULL, *role = NULL;
    int rc = store_apikey_lookup(w->store, hash, &name, &role);
    if (rc == STORE_OK) {
        char key_name[96];
        log_debug("api_auth_ok", "req=%s remote=%s key=%s", req->id, req->remote_addr,
                  log_quote(key_name, sizeof key_name, name));
        free(name);
        free(role);
        return 0;
    }
    if (rc == STORE_NOTFOUND) {
        refuse(req, resp, "unknown API key");
        return -1;
    }
    api_fail_store(req, resp, rc, "checking the API key");
    return -1;
}

void api_caller_name(struct worker *w, const struct request *req, char *buf, size_t n)
{
    buf[0] = '\0';
    const char *value = request_header(req, "Authorization");
    char hash[65];
    const char *why = NULL;
    if (!value || key_hash_from_header(value, hash, &why) < 0)
        return;
    char *name = NULL, *role = NULL;
    if (store_apikey_lookup(w->store, hash, &name, &role) == STORE_OK)
        snprintf(buf, n, "%s", name);
    free(name);
    free(role);
}
