/* decode.c: turns a device's HTTP request into a struct mdm_message: method,
 * content type, plist body, enrollment id, identity. Everything a device
 * sends passes here first, so it is strict about shape and lenient about
 * content (Apple's "required" keys are often missing in real messages). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mdm/mdm.h"
#include "plist/pl.h"

/* Content types devices and tools send for plist bodies. */
static const char *const accepted_types[] = {
    "application/x-apple-aspen-mdm-checkin",
    "application/x-apple-aspen-mdm",
    "application/xml",
    "text/xml",
    "application/x-plist",
};

static int content_type_ok(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strcspn(ct, "; ");
    for (size_t i = 0; i < sizeof accepted_types / sizeof accepted_types[0]; i++)
        if (strlen(accepted_types[i]) == n && strncasecmp(ct, accepted_types[i], n) == 0)
            return 1;
    return 0;
}

/* Enrollment ids end up in URLs, logs and SQL parameters. Real ones are hex,
 * dashes and UUIDs, so refusing anything else at the edge costs nothing and
 * keeps path tricks and separators out. */
static int id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MDM_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return s[0] != '.';
}

int mdm_message_ids(struct mdm_message *m, const char **reason)
{
    const char *udid = pl_str(m->root, "UDID");
    const char *eid = pl_str(m->root, "EnrollmentID");
    const char *device = udid ? udid : eid;
    if (!device || !*device) {
        *reason = "message has no UDID or EnrollmentID";
        return -1;
    }
    if (!id_valid(device)) {
        *reason = "UDID or EnrollmentID has invalid characters or length";
        return -1;
    }
    snprintf(m->device_id, sizeof m->device_id, "%s", device);
    const char *user = udid ? pl_str(m->root, "UserID") : pl_str(m->root, "EnrollmentUserID");
    if (user && *user) {
        if (!id_valid(user)) {
            *reason = "UserID has invalid characters or length";
            return -1;
        }
        m->user_id = user;
        snprintf(m->id, sizeof m->id, "%s:%s", device, user);
        m->type = udid ? "User" : "User Enrollment";
    } else {
        snprintf(m->id, sizeof m->id, "%s", device);
        m->type = udid ? "Device" : "User Enrollment (Device)";
    }
    return 0;
}

int mdm_decode(struct worker *w, struct request *req, struct response *resp,
               struct mdm_message *m)
{
    memset(m, 0, sizeof *m);
    if (strcmp(req->method, "PUT") != 0 && strcmp(req->method, "POST") != 0) {
        mdm_reply_error(req, resp, 405, "device endpoints take PUT");
        response_add_header(resp, "Allow", "PUT");
        return -1;
    }
    if (!content_type_ok(request_header(req, "Content-Type"))) {
        mdm_reply_error(req, resp, 415, "Content-Type must be application/x-apple-aspen-mdm(-checkin)");
        return -1;
    }
    const char *reason = NULL;
    m->root = pl_parse_dict(req->body, req->body_len, &reason);
    if (!m->root) {
        mdm_reply_error(req, resp, 400, reason);
        return -1;
    }
    if (mdm_message_ids(m, &reason) < 0) {
        mdm_reply_error(req, resp, 400, reason);
        mdm_message_free(m);
        return -1;
    }
    if (mdm_identity(w, req, m->cert_fp, &reason) < 0) {
        mdm_reply_forbidden(req, resp, reason);
        mdm_message_free(m);
        return -1;
    }
    return 0;
}

void mdm_message_free(struct mdm_message *m)
{
    if (m->root)
        plist_free(m->root);
    m->root = NULL;
}
