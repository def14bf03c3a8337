/* console_auth.h: web console sessions (realm "console"). Signing in with an
 * admin user's name and password (argon2id, util/password.h) sets an
 * HttpOnly, Secure, SameSite=Strict cookie holding a random token; the store
 * keeps only the token's SHA-256 with the user and a CSRF token, which the
 * console sends back in X-CSRF-Token on every change. Repeated failed
 * sign-ins lock the account for a while (signin_max_failures,
 * signin_lockout_seconds). Used by api/auth.c and the router's session routes. */
#ifndef STEWARD_WEB_CONSOLE_AUTH_H
#define STEWARD_WEB_CONSOLE_AUTH_H

#include "core/service.h"
#include "http/http.h"

#define CONSOLE_COOKIE "steward_console"
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

/* The value of cookie name in a Cookie header into out: 0, or -1 when absent
 * or too long. */
int console_cookie_value(const char *header, const char *name, char *out, size_t outlen);

#endif
