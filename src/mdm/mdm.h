/* mdm.h: the device-facing front end of Apple's MDM protocol. Each handler
 * decodes a device request (plist body, enrollment id, identity), calls core/,
 * and encodes the answer. Routes (app/router.c): PUT /mdm/checkin,
 * PUT /mdm/connect, and PUT /mdm taking both, told apart by MessageType. */
#ifndef STEWARD_MDM_H
#define STEWARD_MDM_H

#include <plist/plist.h>

#include "core/service.h"
#include "http/http.h"

void mdm_handle_checkin(struct worker *w, struct request *req, struct response *resp);
void mdm_handle_connect(struct worker *w, struct request *req, struct response *resp);
void mdm_handle_any(struct worker *w, struct request *req, struct response *resp);
/* The I/O-thread fast path for /mdm/connect and /mdm: 1 when it answered (an
 * Idle with nothing waiting, or a message refused outright), 0 when the
 * request must go to a pool thread, resp untouched. */
int mdm_fast_idle(struct worker *w, struct request *req, struct response *resp);

/* ---- internal to mdm/: one decoded device message ---- */

#define MDM_ID_MAX 128

struct mdm_message {
    plist_t root;                   /* the parsed body (owned) */
    char device_id[MDM_ID_MAX + 1]; /* UDID or EnrollmentID */
    char id[2 * MDM_ID_MAX + 2];    /* enrollment id: device_id[:user id] */
    const char *user_id;            /* UserID or EnrollmentUserID, or NULL */
    const char *type;               /* "Device", "User", … */
    char cert_fp[65];               /* SHA-256 of the device's identity certificate */
    int64_t last_seen;              /* the enrollment's last_seen_at when known, else 0 */
};

/* Checks method and content type, parses the body, normalises the enrollment
 * id and verifies the device's identity certificate (mTLS, Mdm-Signature or a
 * trusted proxy's Client-Cert). On failure fills resp (4xx with a reason, and
 * a log line) and returns -1. On success the caller owns m->root. */
int mdm_decode(struct worker *w, struct request *req, struct response *resp,
               struct mdm_message *m);
void mdm_message_free(struct mdm_message *m);
/* Fills m's ids and type from m->root (UDID or EnrollmentID, UserID or
 * EnrollmentUserID). 0, or -1 with *reason. */
int mdm_message_ids(struct mdm_message *m, const char **reason);

/* Finds the identity certificate of a request. 0 and fp filled, or -1 with
 * *reason. */
int mdm_identity(const struct worker *w, const struct request *req, char fp[65],
                 const char **reason);

/* Dispatchers for a decoded message (checkin.c, connect.c). */
void mdm_checkin_dispatch(struct worker *w, struct request *req, struct response *resp,
                          struct mdm_message *m);
void mdm_connect_dispatch(struct worker *w, struct request *req, struct response *resp,
                          struct mdm_message *m);
/* Records last-seen time; a failure is logged, never fatal to the answer. */
void mdm_touch(struct worker *w, struct request *req, struct mdm_message *m);
/* Seconds since the request was read. */
double mdm_elapsed(const struct request *req);

/* Answers: 403 with Apple's com.apple.unrecognized.device error body (the
 * device unenrolls), a plain 403 (identity not proven), and 4xx/5xx text. */
void mdm_reply_unrecognized(struct request *req, struct response *resp, const char *reason);
void mdm_reply_forbidden(struct request *req, struct response *resp, const char *reason);
void mdm_reply_error(struct request *req, struct response *resp, int status, const char *reason);
/* Answers what identity.h's check said (irc an identity_rc): nothing for
 * IDENTITY_OK (returns 0); else the store error, the unenroll answer for a
 * device we do not know, or a plain 403 (returns 1). */
int mdm_reply_identity(struct request *req, struct response *resp, int irc, int store_rc);
/* Maps a store_rc to 503 (unavailable) or 500 and replies. */
void mdm_reply_store_error(struct request *req, struct response *resp, int store_rc);

#endif
