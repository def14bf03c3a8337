/* checkin.c: the check-in endpoint (CheckInURL). Dispatches on MessageType to
 * small handlers: Authenticate binds the identity certificate and starts an
 * enrollment, TokenUpdate completes or refreshes it, CheckOut ends it, and the
 * bootstrap-token pair stores and returns macOS's token. PROTOCOL.md §3. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/enrollment.h"
#include "core/events.h"
#include "core/identity.h"
#include "core/inventory.h"
#include "enroll/enroll.h"
#include "mdm/mdm.h"
#include "plist/pl.h"
#include "profiles/converge.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/metrics.h"

typedef void (*checkin_fn)(struct worker *w, struct request *req, struct response *resp,
                           struct mdm_message *m);

/* Device fields shared by Authenticate and TokenUpdate, pointing into m->root.
 * Casting away const is safe: store functions only read the struct. */
static void fill_common(struct store_enrollment *e, struct mdm_message *m)
{
    e->id = m->id;
    e->type = (char *)m->type;
    e->udid = (char *)pl_str(m->root, "UDID");
    e->enrollment_id = (char *)pl_str(m->root, "EnrollmentID");
    e->user_id = (char *)m->user_id;
    e->topic = (char *)pl_str(m->root, "Topic");
}

/* Every message but Authenticate must come with the certificate bound to the
 * device channel (user channels share their device's identity). */
static int check_bound(struct worker *w, struct request *req, struct response *resp,
                       struct mdm_message *m)
{
    int store_rc = STORE_OK;
    int irc = identity_check(w->store, m->device_id, m->cert_fp, &store_rc);
    return mdm_reply_identity(req, resp, irc, store_rc) ? -1 : 0;
}

static void log_checkin(struct request *req, const char *type, struct mdm_message *m)
{
    char q[160];
    log_info("checkin", "rid=%s type=%s id=%s", req->id, type, log_quote(q, sizeof q, m->id));
}

static void on_authenticate(struct worker *w, struct request *req, struct response *resp,
                            struct mdm_message *m)
{
    if (m->user_id) {
        mdm_reply_error(req, resp, 400, "Authenticate is sent on the device channel only");
        return;
    }
    int store_rc = STORE_OK;
    int irc = identity_check_authenticate(w->store, m->device_id, m->cert_fp, &store_rc);
    if (mdm_reply_identity(req, resp, irc, store_rc))
        return;
    struct store_enrollment e = {0};
    fill_common(&e, m);
    e.serial_number = (char *)pl_str(m->root, "SerialNumber");
    e.os_version = (char *)pl_str(m->root, "OSVersion");
    e.build_version = (char *)pl_str(m->root, "BuildVersion");
    e.product_name = (char *)pl_str(m->root, "ProductName");
    e.model = (char *)pl_str(m->root, "Model");
    e.model_name = (char *)pl_str(m->root, "ModelName");
    e.device_name = (char *)pl_str(m->root, "DeviceName");
    e.imei = (char *)pl_str(m->root, "IMEI");
    e.meid = (char *)pl_str(m->root, "MEID");
    e.awaiting_configuration = pl_bool(m->root, "AwaitingConfiguration", 0);
    e.cert_fp = m->cert_fp;
    const char *ereason = NULL;
    if (enroll_check_authenticate(w->store, m->device_id, e.serial_number, m->cert_fp,
                                  &ereason) < 0) {
        mdm_reply_forbidden(req, resp, ereason);
        return;
    }
    int rc = enrollment_authenticate(w->store, &e, (int64_t)time(NULL));
    if (rc != STORE_OK) {
        mdm_reply_store_error(req, resp, rc);
        return;
    }
    enroll_note_authenticated(w->store, m->id, m->device_id);
    /* The AccessRights of the enrollment profile it enrolled with: commands
     * needing a right it lacks are refused at enqueue time. */
    rc = store_enrollment_access_rights_set(w->store, m->id, w->svc->cfg->enroll_access_rights);
    if (rc != STORE_OK)
        log_warn("access_rights_not_recorded", "rid=%s rc=%d", req->id, rc);
    log_checkin(req, "Authenticate", m);
    events_mdm_checkin(w->svc->events, "Authenticate", m->device_id, NULL, req->body, req->body_len);
    response_set(resp, 200, "", NULL, 0);
}

/* A device channel that just enrolled gets the full inventory set, queued in
 * the transaction that completes the enrollment (enrollment_token_update_then):
 * a refresh job on any node must not see the device enrolled with nothing
 * queued and queue a second set beside this one. A failure undoes only the
 * set (its savepoint); the enrollment stands. arg is the request (its id for
 * the log). */
static int queue_inventory(struct store *s, const char *id, int64_t now, void *arg)
{
    const struct request *req = arg;
    size_t queued = 0;
    int rc = inventory_refresh_device(s, id, now, &queued);
    if (rc != STORE_OK)
        log_warn("inventory not queued", "rid=%s rc=%d", req->id, rc);
    else
        log_debug("inventory queued", "rid=%s commands=%zu", req->id, queued);
    return rc;
}

/* A device that just enrolled gets the profiles its groups assign right
 * away, without waiting for its first ProfileList answer. */
static void converge_enrolled(struct worker *w, const struct request *req,
                              const struct mdm_message *m)
{
    struct converge_stats st = {0};
    int rc = converge_run(w->store, m->id, (int64_t)time(NULL), &st);
    if (rc != STORE_OK)
        log_warn("profiles not converged at enrollment", "rid=%s rc=%d", req->id, rc);
    else if (st.installs || st.settings)
        log_info("profiles queued at enrollment", "rid=%s installs=%zu settings=%zu", req->id,
                 st.installs, st.settings);
}

static void on_token_update(struct worker *w, struct request *req, struct response *resp,
                            struct mdm_message *m)
{
    if (check_bound(w, req, resp, m) < 0)
        return;
    struct store_enrollment e = {0};
    fill_common(&e, m);
    if (m->user_id)
        e.parent_id = m->device_id;
    size_t token_len = 0, unlock_len = 0;
    const uint8_t *token = pl_data(m->root, "Token", &token_len);
    char token_hex[2 * 256 + 1];
    if (token && token_len > 0 && token_len <= 256) {
        ids_hex(token, token_len, token_hex);
        e.token_hex = token_hex;
    }
    e.push_magic = (char *)pl_str(m->root, "PushMagic");
    const uint8_t *unlock = pl_data(m->root, "UnlockToken", &unlock_len);
    if (unlock && unlock_len > 0) {
        e.unlock_token = (uint8_t *)unlock;
        e.unlock_token_len = unlock_len;
    }
    e.awaiting_configuration = pl_bool(m->root, "AwaitingConfiguration", 0);
    e.user_short_name = (char *)pl_str(m->root, "UserShortName");
    e.user_long_name = (char *)pl_str(m->root, "UserLongName");
    int first = 0;
    int inventory = !m->user_id && w->svc->cfg->inventory_on_enroll;
    int rc = enrollment_token_update_then(w->store, &e, (int64_t)time(NULL), &first,
                                          inventory ? queue_inventory : NULL, req);
    if (rc != STORE_OK) {
        mdm_reply_store_error(req, resp, rc);
        return;
    }
    log_checkin(req, first ? "TokenUpdate(enrolled)" : "TokenUpdate", m);
    events_mdm_checkin(w->svc->events, "TokenUpdate", m->device_id, m->id, req->body, req->body_len);
    if (first)
        events_device(w->svc->events, "device.enrolled", m->id);
    if (first && !m->user_id)
        converge_enrolled(w, req, m);
    response_set(resp, 200, "", NULL, 0);
}

static void on_checkout(struct worker *w, struct request *req, struct response *resp,
                        struct mdm_message *m)
{
    if (check_bound(w, req, resp, m) < 0)
        return;
    int rc = enrollment_checkout(w->store, m->id, (int64_t)time(NULL));
    if (rc == STORE_NOTFOUND) {
        mdm_reply_unrecognized(req, resp, "CheckOut for an unknown enrollment");
        return;
    }
    if (rc != STORE_OK) {
        mdm_reply_store_error(req, resp, rc);
        return;
    }
    enroll_note_checkout(w->store, m->id);
    log_checkin(req, "CheckOut", m);
    events_mdm_checkin(w->svc->events, "CheckOut", m->device_id, m->id, req->body, req->body_len);
    events_device(w->svc->events, "device.checked_out", m->id);
    response_set(resp, 200, "", NULL, 0);
}

/* macOS asks to manage a user; declining with 410 is Apple's documented way. */
static void on_user_authenticate(struct worker *w, struct request *req, struct response *resp,
                                 struct mdm_message *m)
{
    if (check_bound(w, req, resp, m) < 0)
        return;
    log_checkin(req, "UserAuthenticate(declined)", m);
    response_set(resp, 410, "", NULL, 0);
}

static void on_set_bootstrap(struct worker *w, struct request *req, struct response *resp,
                             struct mdm_message *m)
{
    if (check_bound(w, req, resp, m) < 0)
        return;
    size_t len = 0;
    const uint8_t *tok = pl_data(m->root, "BootstrapToken", &len);
    if (tok && len == 0)
        tok = NULL; /* an empty token removes it too */
    int rc = enrollment_bootstrap_set(w->store, m->id, tok, len, (int64_t)time(NULL));
    if (rc != STORE_OK) {
        mdm_reply_store_error(req, resp, rc);
        return;
    }
    log_checkin(req, "SetBootstrapToken", m);
    response_set(resp, 200, "", NULL, 0);
}

static void on_get_bootstrap(struct worker *w, struct request *req, struct response *resp,
                             struct mdm_message *m)
{
    if (check_bound(w, req, resp, m) < 0)
        return;
    uint8_t *tok = NULL;
    size_t len = 0;
    int rc = store_bootstrap_token_get(w->store, m->id, &tok, &len);
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        mdm_reply_store_error(req, resp, rc);
        return;
    }
    plist_t dict = plist_new_dict();
    if (rc == STORE_OK)
        plist_dict_set_item(dict, "BootstrapToken", plist_new_data((const char *)tok, len));
    free(tok);
    char *xml = NULL;
    size_t xlen = 0;
    int ok = pl_to_xml(dict, &xml, &xlen);
    plist_free(dict);
    if (ok < 0) {
        mdm_reply_error(req, resp, 500, "cannot encode bootstrap token");
        return;
    }
    log_checkin(req, "GetBootstrapToken", m);
    response_set(resp, 200, "application/xml", xml, xlen);
    free(xml);
}

static const struct {
    const char *type;
    checkin_fn fn;
} checkin_handlers[] = {
    {"Authenticate", on_authenticate},
    {"TokenUpdate", on_token_update},
    {"CheckOut", on_checkout},
    {"UserAuthenticate", on_user_authenticate},
    {"SetBootstrapToken", on_set_bootstrap},
    {"GetBootstrapToken", on_get_bootstrap},
};

void mdm_checkin_dispatch(struct worker *w, struct request *req, struct response *resp,
                          struct mdm_message *m)
{
    const char *type = pl_str(m->root, "MessageType");
    if (!type) {
        mdm_reply_error(req, resp, 400, "check-in message has no MessageType");
        return;
    }
    for (size_t i = 0; i < sizeof checkin_handlers / sizeof checkin_handlers[0]; i++) {
        if (strcmp(type, checkin_handlers[i].type) == 0) {
            checkin_handlers[i].fn(w, req, resp, m);
            if (resp->status == 200)
                mdm_touch(w, req, m);
            return;
        }
    }
    char reason[200], q[96];
    snprintf(reason, sizeof reason, "unsupported MessageType %s", log_quote(q, sizeof q, type));
    mdm_reply_error(req, resp, 400, reason);
}

void mdm_handle_checkin(struct worker *w, struct request *req, struct response *resp)
{
    struct mdm_message m;
    if (mdm_decode(w, req, resp, &m) < 0)
        return;
    mdm_checkin_dispatch(w, req, resp, &m);
    mdm_message_free(&m);
    metrics_checkin(mdm_elapsed(req));
}
