/* console_auth.c: web console sign-in and sessions (console_auth.h) on
 * web/session.c's realm machinery. Runs on handler threads with the
 * worker's store connection; sessions and throttle state live in the store,
 * so any node can serve a session. */
#include "web/console_auth.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "util/config.h"
#include "util/log.h"
#include "util/password.h"
#include "web/session.h"

static struct web_realm realm_of(const struct config *cfg)
{
    struct web_realm r = {
        .name = CONSOLE_REALM,
        .cookie = CONSOLE_COOKIE,
        .session_ttl = cfg->console_session_ttl,
        .max_failures = cfg->signin_max_failures,
        .failure_window = cfg->signin_lockout_seconds,
        .lockout_secs = cfg->signin_lockout_seconds,
        .ip_max_failures = cfg->signin_max_failures * 4,
    };
    return r;
}

static int is_read(const struct request *req)
{
    return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

static int has_cookie(const struct request *req)
{
    char buf[WEB_TOKEN_LEN + 2];
    return web_cookie_get(req, "__Host-" CONSOLE_COOKIE, buf, sizeof buf) != NULL;
}

static int csrf_matches(const struct request *req, const char *csrf)
{
    const char *sent = request_header(req, "X-CSRF-Token");
    return sent && csrf && strlen(sent) == strlen(csrf) &&
           CRYPTO_memcmp(sent, csrf, strlen(csrf)) == 0;
}

int console_auth_request(struct worker *w, struct request *req, struct response *resp)
{
    if (!has_cookie(req))
        return CONSOLE_AUTH_NONE;
    struct web_realm r = realm_of(w->svc->cfg);
    struct store_web_session ws = {0};
    int rc = web_session_load(w->store, &r, req, (int64_t)time(NULL), &ws);
    struct store_admin_user u = {0};
    if (rc == STORE_OK)
        rc = store_admin_user_get(w->store, ws.subject, &u); /* the role as it is now */
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 401, "unauthorized", "the console session ended; sign in again");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "checking the console session");
    } else {
        api_actor_set("user", u.name, api_role_from_name(u.role), 1);
        if (!is_read(req) && !csrf_matches(req, ws.csrf)) {
            api_fail(req, resp, 403, "csrf", "missing or wrong X-CSRF-Token for this session");
            rc = STORE_ERR;
        }
    }
    store_admin_user_clear(&u);
    store_web_session_clear(&ws);
    return rc == STORE_OK ? 0 : -1;
}

static void refuse_locked(const struct request *req, struct response *resp, int64_t retry)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)(retry > 0 ? retry : 1));
    api_fail(req, resp, 429, "locked", "too many failed sign-ins: try again later");
    response_add_header(resp, "Retry-After", v);
}

/* Checks name and password; answers every refusal. 0 when signed in (u filled). */
static int check_signin(struct worker *w, struct request *req, struct response *resp,
                        const struct web_realm *r, const char *name, const char *pw,
                        struct store_admin_user *u, int64_t now)
{
    char abuf[64];
    const char *addr = web_client_addr(w->svc->cfg, req, abuf, sizeof abuf);
    int64_t retry = 0;
    int lk = web_throttle_locked(w->store, r, name, addr, now, &retry);
    if (lk < 0) {
        api_fail_store(req, resp, lk, "signing in");
        return -1;
    }
    if (lk) {
        password_verify_dummy(pw); /* the same time as any other answer */
        refuse_locked(req, resp, retry);
        return -1;
    }
    int rc = store_admin_user_get(w->store, name, u);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        api_fail_store(req, resp, rc, "signing in");
        return -1;
    }
    int ok = rc == STORE_OK ? password_verify(u->password_hash, pw) : password_verify_dummy(pw);
    if (ok)
        return 0;
    int locked = web_throttle_failed(w->store, r, name, addr, now);
    if (locked < 0)
        api_fail_store(req, resp, locked, "recording a failed sign-in");
    else if (locked)
        refuse_locked(req, resp, r->lockout_secs);
    else
        api_fail(req, resp, 401, "unauthorized", "wrong user name or password");
    return -1;
}

void console_auth_signin(struct worker *w, struct request *req, struct response *resp)
{
    json_t *body = api_json_body(req, resp);
    if (!body)
        return;
    const char *name = json_string_value(json_object_get(body, "user"));
    const char *pw = json_string_value(json_object_get(body, "password"));
    if (!name || !*name || !pw || strlen(name) > 128 || strlen(pw) > PASSWORD_MAX_LEN) {
        api_fail(req, resp, 400, "bad_request", "\"user\" and \"password\" are required strings");
        json_decref(body);
        return;
    }
    api_actor_set("user", name, API_ROLE_NONE, 1);
    struct web_realm r = realm_of(w->svc->cfg);
    int64_t now = (int64_t)time(NULL);
    struct store_admin_user u = {0};
    char csrf[WEB_TOKEN_LEN];
    if (check_signin(w, req, resp, &r, name, pw, &u, now) == 0) {
        api_actor_set("user", name, api_role_from_name(u.role), 1);
        if (password_needs_rehash(u.password_hash)) {
            char h[PASSWORD_HASH_MAX];
            if (password_hash(pw, h, sizeof h) == 0)
                (void)store_admin_user_update(w->store, name, h, NULL);
        }
        int rc = web_throttle_succeeded(w->store, &r, name);
        if (rc == STORE_OK)
            rc = store_admin_user_signin_ok(w->store, name, now);
        if (rc == STORE_OK)
            rc = web_session_start(w->store, &r, resp, name, now, csrf);
        if (rc != STORE_OK) {
            api_fail_store(req, resp, rc, "starting the session");
        } else {
            char q[96];
            log_info("console_signin", "req=%s remote=%s user=%s", req->id, req->remote_addr,
                     log_quote(q, sizeof q, name));
            api_send_json(req, resp, 200,
                          json_pack("{s:s,s:s,s:s,s:o}", "user", name, "role", u.role, "csrf",
                                    csrf, "expires_at", api_time_json(now + r.session_ttl)));
        }
        OPENSSL_cleanse(csrf, sizeof csrf);
    }
    store_admin_user_clear(&u);
    json_decref(body);
}

void console_auth_whoami(struct worker *w, struct request *req, struct response *resp)
{
    const struct api_actor *a = api_current_actor();
    json_t *j = json_pack("{s:s,s:s,s:b}", "actor", a->name, "role", api_role_name(a->role),
                          "session", a->session);
    if (j && a->session) {
        struct web_realm r = realm_of(w->svc->cfg);
        struct store_web_session ws = {0};
        if (web_session_load(w->store, &r, req, (int64_t)time(NULL), &ws) == STORE_OK) {
            json_object_set_new(j, "user", json_string(ws.subject));
            json_object_set_new(j, "csrf", json_string(ws.csrf));
        }
        store_web_session_clear(&ws);
    }
    api_send_json(req, resp, 200, j);
}

void console_auth_signout(struct worker *w, struct request *req, struct response *resp)
{
    struct web_realm r = realm_of(w->svc->cfg);
    int rc = web_session_end(w->store, &r, req, resp);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        api_fail_store(req, resp, rc, "ending the session");
        return;
    }
    api_send_json(req, resp, 200, json_pack("{s:b}", "signed_out", 1));
}

int console_auth_unlock(struct worker *w, const char *user)
{
    char key[200];
    snprintf(key, sizeof key, "user:%s", user);
    return store_web_throttle_unlock(w->store, CONSOLE_REALM, key);
}

int console_auth_locked(struct worker *w, const char *user)
{
    char key[200];
    int64_t until = 0, now = (int64_t)time(NULL);
    snprintf(key, sizeof key, "user:%s", user);
    int rc = store_web_throttle_locked(w->store, CONSOLE_REALM, key, now, &until);
    return rc < 0 ? rc : until > now;
}
