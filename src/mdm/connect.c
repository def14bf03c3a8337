/* connect.c: the command endpoint (ServerURL). The device reports a Status
 * (Idle, or the result of the last command) and gets the next command in the
 * same HTTP exchange, or an empty 200 when its queue is drained, so one
 * connection empties the queue. PROTOCOL.md §4. Also the single /mdm URL. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/catalog.h"
#include "core/events.h"
#include "core/identity.h"
#include "core/inventory.h"
#include "core/queue.h"
#include "mdm/mdm.h"
#include "plist/pl.h"
#include "util/log.h"
#include "util/metrics.h"

double mdm_elapsed(const struct request *req)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - req->start.tv_sec) + (double)(now.tv_nsec - req->start.tv_nsec) / 1e9;
}

void mdm_touch(struct worker *w, struct request *req, struct mdm_message *m)
{
    int64_t now = (int64_t)time(NULL);
    /* The store skips a recent time anyway; checking here saves the write
     * transaction it would open to find that out. */
    if (m->last_seen && now - m->last_seen < STORE_TOUCH_INTERVAL)
        return;
    int rc = store_enrollment_touch(w->store, m->id, now);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        log_warn("last-seen not recorded", "rid=%s rc=%d", req->id, rc);
}

static void log_report(struct request *req, struct mdm_message *m, const char *status,
                       const char *uuid, int known)
{
    char qi[160], qu[160];
    log_msg(known ? LOG_INFO : LOG_WARN, known ? "command report" : "report for unknown command",
            "rid=%s id=%s status=%s uuid=%s", req->id, log_quote(qi, sizeof qi, m->id), status,
            log_quote(qu, sizeof qu, uuid));
}

/* The full identity rules (identity.h) and, for an Idle, whether anything
 * waits, in one read transaction: one snapshot and one round of SQLite's WAL
 * locks. (The rare write inside, a renewal's rebinding, upgrades the
 * transaction; if that loses a race it reports busy and the device
 * retries.) */
static int check_and_peek_full(struct worker *w, struct mdm_message *m, int idle, int *waiting,
                               int *store_rc)
{
    int rc = store_begin_read(w->store);
    if (rc != STORE_OK) {
        *store_rc = rc;
        return IDENTITY_STORE;
    }
    int64_t seen = 0;
    int irc = identity_check_seen(w->store, m->device_id, m->cert_fp, store_rc, &seen);
    if (strcmp(m->id, m->device_id) == 0)
        m->last_seen = seen; /* a user channel's own time is not this one */
    if (irc == IDENTITY_OK && idle) {
        rc = store_queue_waiting(w->store, m->id, 1, waiting);
        if (rc != STORE_OK) {
            *store_rc = rc;
            irc = IDENTITY_STORE;
        }
    }
    rc = store_commit(w->store);
    if (rc != STORE_OK && irc == IDENTITY_OK) {
        *store_rc = rc;
        irc = IDENTITY_STORE;
    }
    return irc;
}

/* The identity check and, for an Idle, whether anything waits. The common
 * case (a live enrollment with this very certificate bound, not revoked) is
 * settled by one statement outside any transaction, store_checkin_peek: one
 * round trip on PostgreSQL, the whole of an Idle with nothing queued. Any
 * other answer (unknown or checked out, another certificate, which may be a
 * renewal taking over the binding, revoked) takes identity.h's full rules,
 * which give the reason. Returns an identity_rc; *waiting stays 1 unless an
 * Idle found the queue empty; m->last_seen is set when known. */
static int check_and_peek(struct worker *w, struct mdm_message *m, int idle, int *waiting,
                          int *store_rc)
{
    struct store_checkin_peek pk;
    int rc = store_checkin_peek(w->store, m->device_id, m->id, m->cert_fp, idle, NULL, &pk);
    if (rc == STORE_OK && pk.status != ENROLLMENT_CHECKED_OUT && pk.cert_bound &&
        !pk.cert_revoked) {
        m->last_seen = pk.last_seen;
        if (idle)
            *waiting = pk.waiting;
        return IDENTITY_OK;
    }
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        *store_rc = rc;
        return IDENTITY_STORE;
    }
    return check_and_peek_full(w, m, idle, waiting, store_rc);
}

/* The answer to an exchange that ran (rc its store_rc): the next command or
 * an empty 200, the report's log line and event, the last-seen time. */
static void answer_exchange(struct worker *w, struct request *req, struct response *resp,
                            struct mdm_message *m, const char *status, const char *uuid, int rc,
                            struct store_command *next)
{
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        store_command_free(next);
        mdm_reply_store_error(req, resp, rc);
        return;
    }
    if (strcmp(status, "Idle") != 0) {
        log_report(req, m, status, uuid, rc == STORE_OK);
        events_mdm_connect(w->svc->events, m->id, m->device_id, status, uuid, req->body,
                           req->body_len);
    }
    if (next) {
        log_debug("command sent", "rid=%s uuid=%s type=%s", req->id, next->uuid, next->request_type);
        response_set(resp, 200, "application/xml", next->payload, next->payload_len);
        store_command_free(next);
    } else {
        response_set(resp, 200, "", NULL, 0);
    }
    mdm_touch(w, req, m);
}

/* ---- a report that stands alone (PostgreSQL) ---- */

/* The RequestTypes whose report needs more than the report in its
 * transaction, as store_report_check.follow_types wants them: for an
 * Acknowledged, those with an inventory handler (inventory_report_command)
 * and those the queue audits (queue_report_audited); for an Error or
 * CommandFormatError the audited ones; for a NotNow none. Built once: the
 * handler table is complete before the server starts. */
enum { FOLLOW_ACK, FOLLOW_ERROR, FOLLOW_NOTNOW, FOLLOW_N };
static char follow_lists[FOLLOW_N][4096];
static int follow_ok[FOLLOW_N];
static pthread_once_t follow_once = PTHREAD_ONCE_INIT;

static int follow_add(char *list, size_t *used, const char *type)
{
    size_t len = strlen(type), need = len + (*used ? 1 : 0);
    if (*used + need >= sizeof follow_lists[0] || strchr(type, ','))
        return -1;
    if (*used)
        list[(*used)++] = ',';
    memcpy(list + *used, type, len + 1);
    *used += len;
    return 0;
}

static void follow_build(void)
{
    static const char *const status[FOLLOW_N] = {"Acknowledged", "Error", "NotNow"};
    const char *handled[64];
    size_t nh = inventory_handler_types(handled, 64), nc = 0;
    const struct cat_command *cmds = catalog_commands(&nc);
    for (int k = 0; k < FOLLOW_N; k++) {
        size_t used = 0;
        int rc = nh <= 64 ? 0 : -1;
        for (size_t i = 0; rc == 0 && k == FOLLOW_ACK && i < nh; i++)
            rc = follow_add(follow_lists[k], &used, handled[i]);
        for (size_t i = 0; rc == 0 && i < nc; i++)
            if (queue_report_audited(cmds[i].request_type, status[k]))
                rc = follow_add(follow_lists[k], &used, cmds[i].request_type);
        follow_ok[k] = rc == 0;
    }
}

static const char *follow_types(const char *status)
{
    pthread_once(&follow_once, follow_build);
    int k = strcmp(status, "Acknowledged") == 0 ? FOLLOW_ACK
            : strcmp(status, "NotNow") == 0     ? FOLLOW_NOTNOW
                                                : FOLLOW_ERROR;
    return follow_ok[k] ? follow_lists[k] : NULL;
}

/* Whether a report carries an answer (any key besides those every report
 * has): a query's answer goes to its handler, so it is stored in a
 * transaction straight away. */
static int carries_answer(plist_t root)
{
    static const char *const envelope[] = {"Status", "CommandUUID", "UDID", "EnrollmentID",
                                           "EnrollmentUserID", "UserID", "UserShortName",
                                           "UserLongName", "ErrorChain"};
    plist_dict_iter it = NULL;
    plist_dict_new_iter(root, &it);
    int answer = 0;
    while (!answer) {
        char *key = NULL;
        plist_t v = NULL;
        plist_dict_next_item(root, it, &key, &v);
        if (!key)
            break;
        answer = 1;
        for (size_t i = 0; answer && i < sizeof envelope / sizeof envelope[0]; i++)
            answer = strcmp(key, envelope[i]) != 0;
        free(key);
    }
    free(it);
    return answer;
}

/* On PostgreSQL a report whose command needs nothing after it (no handler,
 * no audit) is stored, and the next command claimed, by one statement
 * without a transaction: one round trip instead of two (the statement
 * carrying BEGIN, then COMMIT). The statement itself refuses a command of a
 * follow type, so a wrong guess costs a round trip, never the handler.
 * Returns 1 when the exchange was answered, 0 when nothing was written and
 * connect_report's transaction takes over (the identity's common case did
 * not hold, or the command needs its follow-up). */
static int report_alone(struct worker *w, struct request *req, struct response *resp,
                        struct mdm_message *m, const char *status, const char *uuid)
{
    if (!store_reports_standalone(w->store) ||
        (strcmp(status, "Acknowledged") == 0 && carries_answer(m->root)))
        return 0;
    struct store_report_check chk = {.binding_id = m->device_id, .cert_fp = m->cert_fp,
                                     .follow_types = follow_types(status)};
    if (!chk.follow_types)
        return 0;
    struct store_command *next = NULL, *reported = NULL;
    int rc = queue_exchange_report_checked(w->store, &chk, m->id, status, uuid, req->body,
                                           req->body_len, (int64_t)time(NULL), &reported, &next);
    store_command_free(reported);
    if ((rc == STORE_OK || rc == STORE_NOTFOUND) && (!chk.ok || chk.follow)) {
        store_command_free(next); /* none: nothing was claimed */
        return 0;
    }
    m->last_seen = chk.last_seen;
    answer_exchange(w, req, resp, m, status, uuid, rc, next);
    return 1;
}

/* A report: one transaction for the report, the claim of the next command
 * and the inventory update its answer brings. Its first statement (which
 * carries the BEGIN) also checks the identity's common case
 * (queue_exchange_report_checked): on PostgreSQL a report needs no read
 * before it. When that does not hold nothing was written, and identity.h's
 * full rules decide before the exchange runs. */
static void connect_report(struct worker *w, struct request *req, struct response *resp,
                           struct mdm_message *m, const char *status, const char *uuid)
{
    if (report_alone(w, req, resp, m, status, uuid))
        return;
    struct store_command *next = NULL, *reported = NULL;
    int64_t now = (int64_t)time(NULL);
    struct store_report_check chk = {.binding_id = m->device_id, .cert_fp = m->cert_fp};
    /* A DeviceInformation answer: on PostgreSQL the report's statement also
     * writes the device's row and reads its values ahead for the handler. */
    struct store_inv_device dev;
    if (strcmp(status, "Acknowledged") == 0 && inventory_device_row(m->root, &dev) == 0)
        chk.device = &dev;
    int rc = store_begin(w->store);
    int tx = rc == STORE_OK;
    if (tx)
        rc = queue_exchange_report_checked(w->store, &chk, m->id, status, uuid, req->body,
                                           req->body_len, now, &reported, &next);
    if ((rc == STORE_OK || rc == STORE_NOTFOUND) && !chk.ok) {
        (void)store_rollback(w->store); /* nothing ran but the check */
        int store_rc = STORE_OK, waiting = 1;
        int irc = check_and_peek_full(w, m, 0, &waiting, &store_rc);
        if (mdm_reply_identity(req, resp, irc, store_rc))
            return;
        chk.policies = 1; /* not read: the inventory update reads the policies itself */
        rc = store_begin(w->store);
        tx = rc == STORE_OK;
        if (tx)
            rc = queue_exchange_report(w->store, m->id, status, uuid, req->body, req->body_len,
                                       now, &reported, &next);
    } else if (chk.ok) {
        m->last_seen = chk.last_seen;
    }
    /* The answer updates the inventory in a savepoint: a failure there is
     * logged and undone, and the report itself is still kept. The command
     * was read with the report; compliance is evaluated when a policy is
     * enabled (read by the same statement). */
    if (rc == STORE_OK && reported)
        (void)inventory_report_command(w->store, m->id, status, m->root, reported->request_type,
                                       reported->payload, reported->payload_len, chk.policies,
                                       now);
    store_command_free(reported);
    if (tx && (rc == STORE_OK || rc == STORE_NOTFOUND)) {
        int crc = store_commit(w->store);
        if (crc != STORE_OK)
            rc = crc;
    } else if (tx) {
        int rb = store_rollback(w->store);
        (void)rb; /* the exchange's error is the one to report */
    }
    answer_exchange(w, req, resp, m, status, uuid, rc, next);
}

void mdm_connect_dispatch(struct worker *w, struct request *req, struct response *resp,
                          struct mdm_message *m)
{
    const char *status = pl_str(m->root, "Status");
    if (!queue_status_valid(status)) {
        mdm_reply_error(req, resp, 400,
                        status ? "Status is not one of Idle, Acknowledged, Error, "
                                 "CommandFormatError, NotNow"
                               : "command report has no Status");
        return;
    }
    int idle = strcmp(status, "Idle") == 0;
    const char *uuid = pl_str(m->root, "CommandUUID");
    if (!idle && (!uuid || !*uuid)) {
        mdm_reply_error(req, resp, 400, "command report has no CommandUUID");
        return;
    }
    if (!idle) {
        connect_report(w, req, resp, m, status, uuid);
        return;
    }
    int store_rc = STORE_OK, waiting = 1;
    int irc = check_and_peek(w, m, 1, &waiting, &store_rc);
    if (mdm_reply_identity(req, resp, irc, store_rc))
        return;
    if (!waiting) { /* nothing queued: answered without a write */
        response_set(resp, 200, "", NULL, 0);
        mdm_touch(w, req, m);
        return;
    }
    /* The claim alone, one statement: atomic without a transaction of its
     * own (no BEGIN and COMMIT round trips on PostgreSQL). */
    struct store_command *next = NULL;
    int rc = queue_exchange_report(w->store, m->id, status, uuid, req->body, req->body_len,
                                   (int64_t)time(NULL), NULL, &next);
    answer_exchange(w, req, resp, m, status, uuid, rc, next);
}

/* The I/O thread's answer to an Idle with nothing queued: decode, identity
 * and queue peek in one statement (check_and_peek) on a connection that
 * never waits for a lock, and an empty 200. Everything else goes to the pool (returns 0,
 * resp untouched): a report, a check-in message, waiting commands, a due
 * last-seen write, a busy or failing database. A body that cannot even be an
 * Idle skips the decode; an undecodable one is answered here as the pool
 * would answer it. */
int mdm_fast_idle(struct worker *w, struct request *req, struct response *resp)
{
    if (!req->body || !memmem(req->body, req->body_len, "Idle", 4))
        return 0;
    struct mdm_message m;
    if (mdm_decode(w, req, resp, &m) < 0)
        return 1;
    int answered = 0;
    const char *status = pl_str(m.root, "Status");
    if (status && strcmp(status, "Idle") == 0 && !plist_dict_get_item(m.root, "MessageType")) {
        int store_rc = STORE_OK, waiting = 1;
        int irc = check_and_peek(w, &m, 1, &waiting, &store_rc);
        int64_t now = (int64_t)time(NULL);
        int touch_due = !m.last_seen || now - m.last_seen >= STORE_TOUCH_INTERVAL;
        if (irc == IDENTITY_UNKNOWN) {
            mdm_reply_unrecognized(req, resp, identity_reason(irc));
            answered = 1;
        } else if (irc != IDENTITY_OK && irc != IDENTITY_STORE) {
            mdm_reply_forbidden(req, resp, identity_reason(irc));
            answered = 1;
        } else if (irc == IDENTITY_OK && !waiting && !touch_due) {
            response_set(resp, 200, "", NULL, 0);
            answered = 1;
        }
    }
    mdm_message_free(&m);
    if (answered)
        metrics_checkin(mdm_elapsed(req));
    return answered;
}

void mdm_handle_connect(struct worker *w, struct request *req, struct response *resp)
{
    struct mdm_message m;
    if (mdm_decode(w, req, resp, &m) < 0)
        return;
    mdm_connect_dispatch(w, req, resp, &m);
    mdm_message_free(&m);
    metrics_checkin(mdm_elapsed(req));
}

/* One URL for both: check-in messages carry MessageType, reports do not. */
void mdm_handle_any(struct worker *w, struct request *req, struct response *resp)
{
    struct mdm_message m;
    if (mdm_decode(w, req, resp, &m) < 0)
        return;
    if (plist_dict_get_item(m.root, "MessageType"))
        mdm_checkin_dispatch(w, req, resp, &m);
    else
        mdm_connect_dispatch(w, req, resp, &m);
    mdm_message_free(&m);
    metrics_checkin(mdm_elapsed(req));
}
