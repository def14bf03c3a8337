/* reply.c: how the MDM front end says no. Apple's devices react to statuses:
 * 403 with code com.apple.unrecognized.device makes a device unenroll, 401 on
 * the connect endpoint does the same on older iOS, anything else is a
 * transient failure retried later. So the unenroll answer is kept for devices
 * we really do not know; a certificate problem gets a plain 403. */
#include <stdio.h>

#include "core/identity.h"
#include "mdm/mdm.h"
#include "store/store.h"
#include "util/log.h"

void mdm_reply_unrecognized(struct request *req, struct response *resp, const char *reason)
{
    char q[160], body[320];
    log_warn("device refused", "rid=%s addr=%s path=%s status=403 reason=%s", req->id,
             req->remote_addr, req->path, log_quote(q, sizeof q, reason));
    int n = snprintf(body, sizeof body,
                     "{\"code\":\"com.apple.unrecognized.device\",\"description\":\"%s\"}",
                     "The device is not enrolled with this server.");
    response_set(resp, 403, "application/json", body, (size_t)n);
}

int mdm_reply_identity(struct request *req, struct response *resp, int irc, int store_rc)
{
    if (irc == IDENTITY_OK)
        return 0;
    if (irc == IDENTITY_STORE)
        mdm_reply_store_error(req, resp, store_rc);
    else if (irc == IDENTITY_UNKNOWN)
        mdm_reply_unrecognized(req, resp, identity_reason(irc));
    else
        mdm_reply_forbidden(req, resp, identity_reason(irc));
    return 1;
}

void mdm_reply_forbidden(struct request *req, struct response *resp, const char *reason)
{
    mdm_reply_error(req, resp, 403, reason);
}

void mdm_reply_error(struct request *req, struct response *resp, int status, const char *reason)
{
    char q[200];
    log_msg(status >= 500 ? LOG_ERROR : LOG_WARN, "device request failed",
            "rid=%s addr=%s path=%s status=%d reason=%s", req->id, req->remote_addr, req->path,
            status, log_quote(q, sizeof q, reason));
    response_text(resp, status, reason);
}

void mdm_reply_store_error(struct request *req, struct response *resp, int store_rc)
{
    if (store_rc == STORE_UNAVAILABLE) {
        /* A device retries a 503 on its own; Retry-After paces it while the
         * database is away (restarting, unreachable) or busy. */
        mdm_reply_error(req, resp, 503, "database busy, retry later");
        (void)response_add_header(resp, "Retry-After", "5"); /* a hint: answered without it on OOM */
    } else
        mdm_reply_error(req, resp, 500, "internal storage error");
}
