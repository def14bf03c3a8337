/* auth.c: who is calling the admin routes, and may they. The caller is an
 * API key (a Bearer token, or the password of HTTP Basic auth: NanoMDM
 * tools send "nanomdm:<key>"; the store holds only its SHA-256 hex, so the
 * key is hashed here and never logged) or a console session cookie
 * (web/console_auth.c, with its CSRF token on every change). Each has a role
 * (viewer < operator < admin); api_authorize checks it against the route's.
 * The caller found is kept for the rest of the request on this handler
 * thread (api_current_actor), for the audit log and role checks inside
 * handlers. Called by the router in app/. */
#include "api/api.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/events.h"
#include "util/ids.h"
#include "util/log.h"
#include "web/console_auth.h"

/* Keys are random tokens; anything much longer is not one of ours. */
#define API_KEY_MAX 512

/* The caller of the request this thread is handling. */
static _Thread_local struct api_actor current;

static const char *const role_names[] = {
    [API_ROLE_NONE] = "none",
    [API_ROLE_VIEWER] = "viewer",
    [API_ROLE_OPERATOR] = "operator",
    [API_ROLE_ADMIN] = "admin",
};

const char *api_role_name(enum api_role r)
{
    return r >= API_ROLE_NONE && r <= API_ROLE_ADMIN ? role_names[r] : "none";
}

enum api_role api_role_from_name(const char *name)
{
    for (int r = API_ROLE_VIEWER; name && r <= API_ROLE_ADMIN; r++)
        if (strcmp(name, role_names[r]) == 0)
            return (enum api_role)r;
    return API_ROLE_NONE;
}

const struct api_actor *api_current_actor(void)
{
    return &current;
}

void api_actor_reset(void)
{
    memset(&current, 0, sizeof current);
}

void api_actor_set(const char *kind, const char *name, enum api_role role, int session)
{
    snprintf(current.name, sizeof current.name, "%s:%s", kind, name ? name : "?");
    current.role = role;
    current.session = session;
}

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
    /* Not to a script in a browser (the console's fetch): the challenge
     * would make the browser ask for a password itself and hold the call. */
    const char *mode = request_header(req, "Sec-Fetch-Mode");
    if (!request_header(req, "X-Requested-With") && (!mode || strcmp(mode, "navigate") == 0))
        response_add_header(resp, "WWW-Authenticate", "Basic realm=\"steward\"");
}

/* The API key of the Authorization header: 0 with the actor set, or -1
 * after answering. */
static int authenticate_key(struct worker *w, struct request *req, struct response *resp,
                            const char *value)
{
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
        api_actor_set("key", name, api_role_from_name(role), 0);
        events_key_used(w->svc->events, hash); /* recorded off this request's path */
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

int api_authenticate(struct worker *w, struct request *req, struct response *resp)
{
    const char *value = request_header(req, "Authorization");
    if (value && *value)
        return authenticate_key(w, req, resp, value);
    int rc = console_auth_request(w, req, resp);
    if (rc == 0)
        return 0;
    if (rc == CONSOLE_AUTH_NONE)
        refuse(req, resp, "missing API key");
    return -1;
}

int api_require_role(const struct request *req, struct response *resp, enum api_role need)
{
    if (current.role >= need)
        return 0;
    char msg[400], who[200];
    snprintf(msg, sizeof msg, "this needs the %s role; %s has %s", api_role_name(need),
             current.name[0] ? current.name : "the caller", api_role_name(current.role));
    log_warn("api_forbidden", "req=%s remote=%s actor=%s role=%s need=%s", req->id,
             req->remote_addr, log_quote(who, sizeof who, current.name),
             api_role_name(current.role), api_role_name(need));
    api_error(resp, 403, "forbidden", msg);
    return -1;
}

int api_authorize(struct worker *w, struct request *req, struct response *resp,
                  enum api_role need)
{
    if (api_authenticate(w, req, resp) < 0)
        return -1;
    return api_require_role(req, resp, need);
}

/* Who is making this request ("key:NAME" or "admin:NAME"), for command
 * records and security-action log lines; "" before authentication. */
void api_caller_name(struct worker *w, const struct request *req, char *buf, size_t n)
{
    (void)w;
    (void)req;
    snprintf(buf, n, "%s", current.name);
}
