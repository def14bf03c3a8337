/* console_auth.h: web console sign-in and sessions, on web/session.h with
 * the realm "console". Signing in with an admin user's name and password
 * (argon2id, util/password.h) starts a session: a __Host- cookie (Secure,
 * HttpOnly, SameSite=Strict) with a random id the store keeps only as
 * SHA-256, and a CSRF token the console sends back in X-CSRF-Token on every
 * change. Repeated failed sign-ins lock the user (signin_max_failures within
 * signin_lockout_seconds) and, at four times that, the client address.
 * Used by api/auth.c, api/operators.c and the router's session routes. */
#ifndef STEWARD_WEB_CONSOLE_AUTH_H
#define STEWARD_WEB_CONSOLE_AUTH_H

#include "core/service.h"
#include "http/http.h"

#define CONSOLE_REALM "console"
#define CONSOLE_COOKIE "steward_console" /* sent as __Host-steward_console */
/* console_auth_request's answer when the request carries no session cookie. */
#define CONSOLE_AUTH_NONE 1

/* Authenticates a request by its session cookie: 0 with the caller set
 * (api_current_actor), CONSOLE_AUTH_NONE when there is no cookie (resp
 * untouched), or -1 after answering (401 unknown/expired session, 403 a
 * change without the session's CSRF token, 5xx store failure). */
int console_auth_request(struct worker *w, struct request *req, struct response *resp);

/* POST /api/v1/session {"user": …, "password": …}: 200 {user, role, csrf,
 * expires_at} with the cookie; 401 wrong name or password; 429 locked. */
void console_auth_signin(struct worker *w, struct request *req, struct response *resp);
/* GET /api/v1/session: the caller (key or session), with the CSRF token
 * for a session. */
void console_auth_whoami(struct worker *w, struct request *req, struct response *resp);
/* DELETE /api/v1/session: ends the session and clears the cookie. */
void console_auth_signout(struct worker *w, struct request *req, struct response *resp);

/* Lifts a user's sign-in lock (a new password was set). STORE_OK or a store_rc. */
int console_auth_unlock(struct worker *w, const char *user);
/* 1 when the user is locked out now, 0 when not, or a negative store_rc. */
int console_auth_locked(struct worker *w, const char *user);

#endif
