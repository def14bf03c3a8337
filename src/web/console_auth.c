/* console_auth.c: web console sessions and sign-in (console_auth.h). Runs on
 * handler threads with the worker's store connection; the session state
 * lives in the store (console_sessions), so any node can serve a session. */
#include "web/console_auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/password.h"

#define TOKEN_HEX 64 /* 32 random bytes */

int console_cookie_value(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        size_t seg = strcspn(p, ";");
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = seg - nl - 1;
            while (vl && (p[nl + 1 + vl - 1] == ' ' || p[nl + 1 + vl - 1] == '\t'))
                vl--;
            if (vl == 0 || vl >= outlen)
                return -1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return 0;
        }
        p += seg;
    }
    return -1;
}

static int is_read(const struct request *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* The session token of the request's cookie, hashed: 0, or -1 when none. */
static int cookie_token_hash(const struct request *req, char hash[65])
{
    const char *cookies = request_header(req, "Cookie");
    char token[TOKEN_HEX + 2];
    if (!cookies || console_cookie_value(cookies, CONSOLE_COOKIE, token, sizeof token) < 0)
        return -1;
    ids_sha256_hex((const uint8_t *)token, strlen(token), hash);
    OPENSSL_cleanse(token, sizeof token);
    return 0;
}

static int csrf_matches(const struct request *req, const char *csrf)
{
    const char *sent = request_header(req, "X-CSRF-Token");
    return sent && strlen(sent) == strlen(csrf) && CRYPTO_memcmp(sent, csrf, strlen(csrf)) == 0;
}

int console_auth_request(struct worker *w, struct request *req, struct response *resp)
{
    char hash[65];
    if (cookie_token_hash(req, hash) < 0)
        return CONSOLE_AUTH_NONE;
    char *user = NULL, *role = NULL, *csrf = NULL;
    int rc = store_session_get(w->store, hash, (int64_t)time(NULL), &user, &role, &csrf);
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 401, "unauthorized", "the console session ended; sign in again");
        return -1;
    }
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "checking the console session");
        return -1;
    }
    int ok = is_read(req) || csrf_matches(req, csrf);
    api_actor_set("user", user, api_role_from_name(role), 1);
    free(user);
    free(role);
    free(csrf);
    if (!ok) {
        api_fail(req, resp, 403, "csrf", "missing or wrong X-CSRF-Token for this session");
        return -1;
    }
    return 0;
}

static void set_cookie(struct response *resp, const char *token, long max_age)
{
    char v[256];
    snprintf(v, sizeof v, "%s=%s; Path=/; Max-Age=%ld; HttpOnly; Secure; SameSite=Strict",
             CONSOLE_COOKIE, token, max_age);
    response_add_header(resp, "Set-Cookie", v);
}

/* A new session for user: cookie set, answer sent. */
static void start_session(struct worker *w, struct request *req, struct response *resp,
                          const char *user, const char *role, int64_t now)
{
    char token[TOKEN_HEX + 1], csrf[TOKEN_HEX + 1], hash[65];
    if (ids_random_hex(32, token) < 0 || ids_random_hex(32, csrf) < 0) {
        api_fail(req, resp, 500, "internal", "no randomness for a session token");
        return;
    }
    ids_sha256_hex((const uint8_t *)token, strlen(token), hash);
    int64_t ttl = w->svc->cfg->console_session_ttl;
    int rc = store_session_add(w->store, hash, user, csrf, now, now + ttl, req->remote_addr);
    if (rc != STORE_OK) {
        OPENSSL_cleanse(token, sizeof token);
        api_fail_store(req, resp, rc, "starting the session");
        return;
    }
    set_cookie(resp, token, (long)ttl);
    OPENSSL_cleanse(token, sizeof token);
    char q[96];
    log_info("console_signin", "req=%s remote=%s user=%s", req->id, req->remote_addr,
             log_quote(q, sizeof q, user));
    api_send_json(req, resp, 200,
                  json_pack("{s:s,s:s,s:s,s:o}", "user", user, "role", role, "csrf", csrf,
                            "expires_at", api_time_json(now + ttl)));
}

static void refuse_locked(const struct request *req, struct response *resp, int64_t until,
                          int64_t now)
{
    char retry[32];
    snprintf(retry, sizeof retry, "%lld", (long long)(until - now));
    api_fail(req, resp, 429, "locked",
             "too many failed sign-ins: this account is locked for a while");
    response_add_header(resp, "Retry-After", retry);
}

void console_auth_signin(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "user"));
    const char *pw = json_string_value(json_object_get(body, "password"));
    if (!name || !*name || !pw || strlen(name) > 128) {
        api_fail(req, resp, 400, "bad_request", "\"user\" and \"password\" are required strings");
        json_decref(body);
        return;
    }
    api_actor_set("user", name, API_ROLE_NONE, 1);
    int64_t now = (int64_t)time(NULL);
    struct store_admin_user u;
    int rc = store_admin_user_get(w->store, name, &u);
    if (rc == STORE_NOTFOUND) {
        password_verify_dummy(pw); /* the same time whether the user exists or not */
        api_fail(req, resp, 401, "unauthorized", "wrong user name or password");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "signing in");
    } else if (u.locked_until > now) {
        refuse_locked(req, resp, u.locked_until, now);
    } else if (!password_verify(u.password_hash, pw)) {
        const struct config *cfg = w->svc->cfg;
        int64_t until = 0;
        rc = store_admin_user_signin_failed(w->store, name, now, cfg->signin_max_failures,
                                            cfg->signin_lockout_seconds, &until);
        if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "recording a failed sign-in");
        else if (until > now)
            refuse_locked(req, resp, until, now);
        else
            api_fail(req, resp, 401, "unauthorized", "wrong user name or password");
    } else if ((rc = store_admin_user_signin_ok(w->store, name, now)) != STORE_OK) {
        api_fail_store(req, resp, rc, "signing in");
    } else {
        api_actor_set("user", name, api_role_from_name(u.role), 1);
        if (password_needs_rehash(u.password_hash)) {
            char h[PASSWORD_HASH_MAX];
            if (password_hash(pw, h, sizeof h) == 0)
                (void)store_admin_user_update(w->store, name, h, NULL);
        }
        start_session(w, req, resp, name, u.role, now);
    }
    if (rc != STORE_NOTFOUND)
        store_admin_user_clear(&u);
    json_decref(body);
}

void console_auth_whoami(struct worker *w, struct request *req, struct response *resp)
{
    const struct api_actor *a = api_current_actor();
    json_t *j = json_pack("{s:s,s:s,s:b}", "actor", a->name, "role", api_role_name(a->role),
                          "session", a->session);
    char hash[65];
    if (j && a->session && cookie_token_hash(req, hash) == 0) {
        char *user = NULL, *role = NULL, *csrf = NULL;
        if (store_session_get(w->store, hash, (int64_t)time(NULL), &user, &role, &csrf) ==
            STORE_OK) {
            json_object_set_new(j, "user", json_string(user));
            json_object_set_new(j, "csrf", json_string(csrf));
        }
        free(user);
        free(role);
        free(csrf);
    }
    api_send_json(req, resp, 200, j);
}

void console_auth_signout(struct worker *w, struct request *req, struct response *resp)
{
    char hash[65];
    if (cookie_token_hash(req, hash) == 0) {
        int rc = store_session_delete(w->store, hash);
        if (rc != STORE_OK && rc != STORE_NOTFOUND) {
            api_fail_store(req, resp, rc, "ending the session");
            return;
        }
    }
    set_cookie(resp, "", 0);
    api_send_json(req, resp, 200, json_pack("{s:b}", "signed_out", 1));
}
