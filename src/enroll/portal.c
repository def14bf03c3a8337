/* portal.c: the enrollment portal at /enroll: a plain HTML and CSS sign-in
 * page that works in Safari on an iPhone, sign-in against the enrollment
 * users (argon2id, throttled with lock-out, CSRF-protected, HTTPS-only
 * session cookies from web/session.h), and, once signed in, the phase-1
 * Profile Service profile of Apple's over-the-air enrollment (§7b) with a
 * one-time challenge tied to the user. */
#include "enroll/enroll.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/password.h"
#include "web/session.h"

void enroll_realm(const struct config *cfg, struct web_realm *r)
{
    r->name = "enroll";
    r->cookie = "steward_enroll";
    r->session_ttl = cfg->enroll_session_ttl;
    r->max_failures = cfg->enroll_max_failures;
    r->failure_window = cfg->enroll_failure_window;
    r->lockout_secs = cfg->enroll_lockout_seconds;
    r->ip_max_failures = cfg->enroll_ip_max_failures;
}

static const char page_head[] =
    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Enroll this device</title><style>"
    "body{font-family:-apple-system,system-ui,sans-serif;margin:0;background:#f2f2f7;color:#1c1c1e}"
    "main{max-width:26rem;margin:0 auto;padding:2rem 1.25rem}"
    "h1{font-size:1.6rem;margin:0 0 1rem}"
    "form,.card{background:#fff;border-radius:12px;padding:1.25rem;margin:0 0 1rem}"
    "label{display:block;font-size:.9rem;margin:.75rem 0 .25rem}"
    "input[type=text],input[type=password]{width:100%;box-sizing:border-box;font-size:1.1rem;"
    "padding:.7rem;border:1px solid #c7c7cc;border-radius:8px}"
    "button,.button{display:block;width:100%;box-sizing:border-box;margin-top:1.25rem;"
    "padding:.8rem;font-size:1.1rem;border:0;border-radius:8px;background:#007aff;color:#fff;"
    "text-align:center;text-decoration:none}"
    ".secondary{background:#e5e5ea;color:#1c1c1e}"
    ".error{color:#c00;font-weight:600}"
    "</style></head><body><main>";
static const char page_tail[] = "</main></body></html>";

static void send_page(const struct request *req, struct response *resp, int status,
                      struct buf *b)
{
    (void)req;
    if (buf_puts(b, page_tail) != 0 ||
        response_set(resp, status, "text/html; charset=utf-8", b->data, b->len) != 0)
        response_text(resp, 500, "out of memory");
    response_add_header(resp, "Cache-Control", "no-store");
    response_add_header(resp, "Content-Security-Policy",
                        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                        "frame-ancestors 'none'");
    response_add_header(resp, "X-Frame-Options", "DENY");
    buf_free(b);
}

/* The sign-in form, with a new CSRF token (cookie + hidden field). */
static void signin_page(const struct web_realm *r, const struct request *req,
                        struct response *resp, int status, const char *error)
{
    char token[WEB_TOKEN_LEN];
    struct buf b = {0};
    if (web_csrf_issue(r, resp, token) != 0) {
        response_text(resp, 500, "cannot make a CSRF token");
        return;
    }
    buf_puts(&b, page_head);
    buf_puts(&b, "<h1>Enroll this device</h1>");
    if (error) {
        buf_puts(&b, "<p class=\"error\" role=\"alert\">");
        web_html_escape(&b, error);
        buf_puts(&b, "</p>");
    }
    buf_printf(&b,
               "<form method=\"post\" action=\"/enroll\">"
               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
               "<label for=\"u\">User name</label>"
               "<input type=\"text\" id=\"u\" name=\"username\" autocomplete=\"username\" "
               "autocapitalize=\"none\" autocorrect=\"off\" required>"
               "<label for=\"p\">Password</label>"
               "<input type=\"password\" id=\"p\" name=\"password\" "
               "autocomplete=\"current-password\" required>"
               "<button type=\"submit\">Sign in</button></form>"
               "<p>Open this page in Safari on the iPhone or iPad you want to enroll.</p>",
               token);
    send_page(req, resp, status, &b);
}

static void signed_in_page(const struct request *req, struct response *resp,
                           const struct store_web_session *ws)
{
    struct buf b = {0};
    buf_puts(&b, page_head);
    buf_puts(&b, "<h1>Enroll this device</h1><div class=\"card\"><p>Signed in as <strong>");
    web_html_escape(&b, ws->subject);
    buf_puts(&b, "</strong>.</p><p>Tap the button, allow the download, then open Settings and "
                 "install the profile. Your device sends its details, gets its certificate "
                 "and is enrolled.</p>"
                 "<a class=\"button\" href=\"/enroll/profile\">Enroll this device</a></div>");
    buf_printf(&b,
               "<form method=\"post\" action=\"/enroll/signout\">"
               "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
               "<button class=\"secondary\" type=\"submit\">Sign out</button></form>",
               ws->csrf);
    send_page(req, resp, 200, &b);
}

/* HTTPS only: cookies are Secure and passwords never cross plain HTTP. */
static int require_https(struct worker *w, const struct request *req, struct response *resp)
{
    if (web_request_is_https(w->svc->cfg, req))
        return 0;
    enroll_refuse(req, resp, 403, "the enrollment portal is served over HTTPS only");
    return -1;
}

void enroll_portal_page(struct worker *w, struct request *req, struct response *resp)
{
    if (require_https(w, req, resp) < 0)
        return;
    struct web_realm r;
    enroll_realm(w->svc->cfg, &r);
    struct store_web_session ws;
    int rc = web_session_load(w->store, &r, req, (int64_t)time(NULL), &ws);
    if (rc == STORE_OK) {
        signed_in_page(req, resp, &ws);
        store_web_session_clear(&ws);
    } else if (rc == STORE_NOTFOUND) {
        signin_page(&r, req, resp, 200, NULL);
    } else {
        enroll_refuse(req, resp, 503, "storage unavailable");
    }
}

static void redirect(struct response *resp, const char *to)
{
    response_set(resp, 303, "text/plain; charset=utf-8", "", 0);
    response_add_header(resp, "Location", to);
}

static void log_signin(const struct request *req, const char *user, const char *outcome)
{
    char q[200];
    log_msg(strcmp(outcome, "ok") == 0 ? LOG_INFO : LOG_WARN, "portal sign-in",
            "rid=%s addr=%s user=%s outcome=%s", req->id, req->remote_addr,
            log_quote(q, sizeof q, user), outcome);
}

/* Checks the password; the same work whether the user exists or not. */
static int credentials_ok(struct store *s, const char *user, const char *pw, int *store_rc)
{
    struct store_enroll_user u;
    *store_rc = store_enroll_user_get(s, user, &u);
    if (*store_rc == STORE_NOTFOUND) {
        *store_rc = STORE_OK;
        return password_verify_dummy(pw);
    }
    if (*store_rc != STORE_OK)
        return 0;
    int ok = password_verify(u.password_hash, pw) && !u.disabled;
    store_enroll_user_clear(&u);
    return ok;
}

void enroll_portal_signin(struct worker *w, struct request *req, struct response *resp)
{
    if (require_https(w, req, resp) < 0)
        return;
    struct web_realm r;
    enroll_realm(w->svc->cfg, &r);
    char user[80], pw[PASSWORD_MAX_LEN + 1], csrf[WEB_TOKEN_LEN + 1];
    const char *u = web_form_get(req->body, req->body_len, "username", user, sizeof user);
    const char *p = web_form_get(req->body, req->body_len, "password", pw, sizeof pw);
    const char *c = web_form_get(req->body, req->body_len, "csrf", csrf, sizeof csrf);
    if (!web_csrf_check(&r, req, c)) {
        enroll_refuse(req, resp, 403, "the form expired or did not come from this site: reload the page");
        return;
    }
    if (!u || !p || !*u || !*p || !enroll_user_name_ok(u)) {
        log_signin(req, u ? u : "", "malformed");
        signin_page(&r, req, resp, 400, "Enter your user name and password.");
        return;
    }
    int64_t now = (int64_t)time(NULL), retry = 0;
    char addr[64];
    web_client_addr(w->svc->cfg, req, addr, sizeof addr);
    int locked = web_throttle_locked(w->store, &r, u, addr, now, &retry);
    if (locked < 0) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    if (locked) {
        char msg[160], ra[24];
        log_signin(req, u, "locked");
        snprintf(msg, sizeof msg, "Too many failed sign-ins. Try again in %lld minutes.",
                 (long long)((retry + 59) / 60));
        snprintf(ra, sizeof ra, "%lld", (long long)retry);
        response_add_header(resp, "Retry-After", ra);
        signin_page(&r, req, resp, 429, msg);
        return;
    }
    int store_rc = STORE_OK;
    int ok = credentials_ok(w->store, u, p, &store_rc);
    memset(pw, 0, sizeof pw);
    if (store_rc != STORE_OK) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    if (!ok) {
        int now_locked = web_throttle_failed(w->store, &r, u, addr, now);
        log_signin(req, u, now_locked > 0 ? "wrong-password-locked" : "wrong-password");
        signin_page(&r, req, resp, 401, "Wrong user name or password.");
        return;
    }
    char scsrf[WEB_TOKEN_LEN];
    if (web_throttle_succeeded(w->store, &r, u) != STORE_OK ||
        store_enroll_user_signed_in(w->store, u, now) != STORE_OK ||
        web_session_start(w->store, &r, resp, u, now, scsrf) != STORE_OK) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    log_signin(req, u, "ok");
    /* housekeeping rides on sign-ins: expired sessions, stale counters and
     * enrollments that were never finished */
    if (store_web_purge(w->store, now) != STORE_OK ||
        store_enroll_records_expire(w->store, now, NULL) != STORE_OK)
        log_warn("enrollment housekeeping failed", "rid=%s", req->id);
    redirect(resp, "/enroll");
}

void enroll_portal_signout(struct worker *w, struct request *req, struct response *resp)
{
    if (require_https(w, req, resp) < 0)
        return;
    struct web_realm r;
    enroll_realm(w->svc->cfg, &r);
    struct store_web_session ws;
    char csrf[WEB_TOKEN_LEN + 1];
    const char *c = web_form_get(req->body, req->body_len, "csrf", csrf, sizeof csrf);
    if (web_session_load(w->store, &r, req, (int64_t)time(NULL), &ws) != STORE_OK) {
        redirect(resp, "/enroll");
        return;
    }
    int ok = c && ids_secure_equal(c, ws.csrf);
    store_web_session_clear(&ws);
    if (!ok) {
        enroll_refuse(req, resp, 403, "bad CSRF token");
        return;
    }
    web_session_end(w->store, &r, req, resp);
    redirect(resp, "/enroll");
}

void enroll_portal_profile(struct worker *w, struct request *req, struct response *resp)
{
    if (require_https(w, req, resp) < 0)
        return;
    struct web_realm r;
    enroll_realm(w->svc->cfg, &r);
    struct store_web_session ws;
    int64_t now = (int64_t)time(NULL);
    int rc = web_session_load(w->store, &r, req, now, &ws);
    if (rc == STORE_NOTFOUND) {
        redirect(resp, "/enroll");
        return;
    }
    if (rc != STORE_OK) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    struct enroll_ctx ctx;
    const char *why = NULL;
    char challenge[65], hash[65], rid[33], url[700];
    if (enroll_ctx_init(w, req, &ctx, &why) != 0) {
        store_web_session_clear(&ws);
        enroll_refuse(req, resp, 503, why);
        return;
    }
    if (ids_random_hex(32, challenge) != 0 || ids_random_hex(16, rid) != 0) {
        store_web_session_clear(&ws);
        enroll_refuse(req, resp, 500, "no randomness");
        return;
    }
    ids_sha256_hex((const uint8_t *)challenge, strlen(challenge), hash);
    int64_t ttl = w->svc->cfg->enroll_challenge_ttl;
    rc = store_enroll_record_add(w->store, rid, ws.subject, "ota", 1, hash, now, now + ttl);
    if (rc == STORE_OK)
        log_info("enrollment started", "rid=%s record=%s user=%s method=ota", req->id, rid,
                 ws.subject);
    store_web_session_clear(&ws);
    if (rc != STORE_OK) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    snprintf(url, sizeof url, "%s/enroll/ota", ctx.base_url);
    plist_t p = enroll_profile_service(&ctx.st, url, challenge);
    enroll_send_profile(w, req, resp, p, "enroll.mobileconfig");
}
