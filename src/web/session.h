/* session.h: cookie sessions for steward's web pages, generic over a realm
 * ("enroll" for the enrollment portal; the operators' console reuses it with
 * its own realm): random session ids stored only as SHA-256, cookies that are
 * Secure, HttpOnly and SameSite=Strict (with the __Host- prefix), CSRF tokens
 * (double-submit before sign-in, bound to the session after), sign-in
 * throttling with lock-out per user and per address, form decoding and HTML
 * escaping. Storage is store_web_* (store_enroll.h). Knows nothing of what a
 * realm's pages do. */
#ifndef STEWARD_WEB_SESSION_H
#define STEWARD_WEB_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "store/store.h"
#include "util/buf.h"

struct config;

#define WEB_TOKEN_LEN 65 /* 64 hex characters and NUL */

struct web_realm {
    const char *name;         /* stored with each session: "enroll", "console" */
    const char *cookie;       /* base cookie name, e.g. "steward_enroll" */
    int64_t session_ttl;      /* seconds */
    int64_t max_failures;     /* failed sign-ins per user before a lock-out */
    int64_t failure_window;   /* seconds the failures are counted over */
    int64_t lockout_secs;     /* how long a lock-out lasts */
    int64_t ip_max_failures;  /* the same per client address (0: no address limit) */
};

/* 1 when the request reached steward over HTTPS: the TLS listener, or a
 * trusted proxy (config trusted_proxies) that says X-Forwarded-Proto: https. */
int web_request_is_https(const struct config *cfg, const struct request *req);

/* The client's address for throttling: the last X-Forwarded-For entry
 * when the request comes from a trusted proxy, else the peer address. */
const char *web_client_addr(const struct config *cfg, const struct request *req, char *buf,
                            size_t n);

/* The value of cookie `name` into buf: NULL when absent or too long. */
const char *web_cookie_get(const struct request *req, const char *name, char *buf, size_t n);

/* A field of an application/x-www-form-urlencoded body, decoded into buf:
 * NULL when absent, malformed or too long. */
const char *web_form_get(const uint8_t *body, size_t len, const char *name, char *buf, size_t n);

/* Appends s to b with &, <, >, ", ' escaped. 0 or -1. */
int web_html_escape(struct buf *b, const char *s);

/* ---- CSRF before sign-in (double submit) ---- */
/* Makes a token, sets it as the realm's CSRF cookie and copies it to out
 * for the form. 0 or -1. */
int web_csrf_issue(const struct web_realm *r, struct response *resp, char out[WEB_TOKEN_LEN]);
/* 1 when the form's token equals the CSRF cookie (constant time). */
int web_csrf_check(const struct web_realm *r, const struct request *req, const char *form_token);

/* ---- sessions ---- */
/* Starts a session for subject: stores it and sets the cookie; *csrf
 * receives the session's CSRF token. STORE_OK or a store_rc. */
int web_session_start(struct store *s, const struct web_realm *r, struct response *resp,
                      const char *subject, int64_t now, char csrf[WEB_TOKEN_LEN]);
/* The session the request's cookie names: STORE_OK (out filled; clear it
 * with store_web_session_clear), NOTFOUND when none or expired. */
int web_session_load(struct store *s, const struct web_realm *r, const struct request *req,
                     int64_t now, struct store_web_session *out);
/* Deletes the request's session and clears the cookie. */
int web_session_end(struct store *s, const struct web_realm *r, const struct request *req,
                    struct response *resp);

/* ---- sign-in throttling ---- */
/* 1 when user or addr is locked out at now (*retry_after seconds left), 0
 * when sign-in may proceed, or a negative store_rc. */
int web_throttle_locked(struct store *s, const struct web_realm *r, const char *user,
                        const char *addr, int64_t now, int64_t *retry_after);
/* Counts a failed sign-in for user and addr; 1 when this failure locked
 * the user (or the address) out, 0 when not, or a negative store_rc. */
int web_throttle_failed(struct store *s, const struct web_realm *r, const char *user,
                        const char *addr, int64_t now);
/* A successful sign-in clears the user's count. */
int web_throttle_succeeded(struct store *s, const struct web_realm *r, const char *user);

#endif
