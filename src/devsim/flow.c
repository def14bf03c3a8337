/* flow.c: one simulated device's conversation with the MDM server:
 * enroll (Authenticate, TokenUpdate), connect (Idle, then answer each
 * command until the server sends an empty body), checkout (CheckOut).
 * Every non-200 answer is printed on stderr and recorded. Called by load.c
 * for each device, inside a worker thread. */
#include "devsim/devsim.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_CHECKIN "application/x-apple-aspen-mdm-checkin"
#define CT_CONNECT "application/x-apple-aspen-mdm"

static void complain_http(const struct devsim_device *d, const char *phase,
                          const struct devsim_http_resp *resp)
{
    /* one fprintf, so lines from parallel workers do not interleave */
    fprintf(stderr, "steward-devsim: %s %s: HTTP %ld\n%.*s%s", d->facts.udid, phase,
            resp->status, (int)(resp->body.len > 4096 ? 4096 : resp->body.len),
            resp->body.data ? resp->body.data : "",
            resp->body.len && resp->body.data[resp->body.len - 1] != '\n' ? "\n" : "");
}

/* PUTs msg and checks for a 200. 0 when 200 (resp holds the body), -1
 * otherwise (already reported and printed; resp is freed). */
static int send_msg(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                    struct devsim_report *r, const char *url, const char *ctype, plist_t msg,
                    const char *phase, struct devsim_http_resp *resp)
{
    char *xml = NULL;
    size_t len = 0;
    memset(resp, 0, sizeof *resp);
    if (!msg || devsim_to_xml(msg, &xml, &len) != 0) {
        devsim_report_err(r, d->facts.udid, phase, 0, "cannot build the message");
        return -1;
    }
    int rc = devsim_http_put(h, d, url, ctype, xml, len, resp);
    free(xml);
    r->requests++;
    if (rc != 0) {
        fprintf(stderr, "steward-devsim: %s %s: %s\n", d->facts.udid, phase, resp->error);
        devsim_report_err(r, d->facts.udid, phase, 0, resp->error);
        buf_free(&resp->body);
        return -1;
    }
    devsim_report_http(r, resp->status);
    if (o->verbose)
        log_info("devsim.request", "udid=%s phase=%s status=%ld response_bytes=%zu",
                 d->facts.udid, phase, resp->status, resp->body.len);
    if (resp->status != 200) {
        complain_http(d, phase, resp);
        devsim_report_err(r, d->facts.udid, phase, resp->status,
                          resp->body.data ? resp->body.data : "");
        buf_free(&resp->body);
        return -1;
    }
    return 0;
}

/* Check-in messages expect an empty 200; the body is not used. */
static int checkin(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                   struct devsim_report *r, plist_t msg, const char *phase)
{
    struct devsim_http_resp resp;
    int rc = send_msg(o, h, d, r, o->checkin_url, CT_CHECKIN, msg, phase, &resp);
    plist_free(msg);
    buf_free(&resp.body);
    return rc;
}

static int save_state(struct devsim_device *d, struct devsim_report *r)
{
    if (devsim_device_save(d) == 0)
        return 0;
    devsim_report_err(r, d->facts.udid, "state", 0, "cannot save the device state");
    return -1;
}

int devsim_flow_enroll(const struct devsim_opts *o, struct devsim_http *h,
                       struct devsim_device *d, struct devsim_report *r)
{
    if (checkin(o, h, d, r, devsim_msg_authenticate(&d->facts), "Authenticate") != 0)
        return -1;
    if (checkin(o, h, d, r, devsim_msg_token_update(&d->facts), "TokenUpdate") != 0)
        return -1;
    return save_state(d, r);
}

int devsim_flow_checkout(const struct devsim_opts *o, struct devsim_http *h,
                         struct devsim_device *d, struct devsim_report *r)
{
    return checkin(o, h, d, r, devsim_msg_checkout(&d->facts), "CheckOut");
}

static int is_blank(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != ' ' && b->data[i] != '\t' && b->data[i] != '\r' && b->data[i] != '\n')
            return 0;
    return 1;
}

/* Answers the command in resp->body and PUTs the report; resp is reused
 * for the server's next answer. */
static int answer_one(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                      struct devsim_report *r, struct devsim_http_resp *resp)
{
    struct devsim_result res;
    int rc = devsim_answer_body(&d->facts, &o->policy, &d->seen, (const uint8_t *)resp->body.data,
                                resp->body.len, &res);
    buf_free(&resp->body);
    if (rc != 0) {
        devsim_report_err(r, d->facts.udid, "answer", 0, "cannot build the answer");
        return -1;
    }
    if (devsim_report_cmd(r, d->facts.udid, &res) != 0) {
        plist_free(res.reply);
        return -1;
    }
    if (o->verbose) {
        char qu[80], qt[80]; /* both come from the server: quote them */
        log_info("devsim.command", "udid=%s command_uuid=%s request_type=%s status=%s",
                 d->facts.udid, log_quote(qu, sizeof qu, res.command_uuid),
                 log_quote(qt, sizeof qt, res.request_type), res.status);
    }
    rc = send_msg(o, h, d, r, o->connect_url, CT_CONNECT, res.reply, res.status, resp);
    plist_free(res.reply);
    return rc;
}

/* One command session: Idle, then answer until the server has nothing more. */
static int session(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                   struct devsim_report *r)
{
    struct devsim_http_resp resp;
    plist_t idle = devsim_msg_idle(&d->facts);
    int rc = send_msg(o, h, d, r, o->connect_url, CT_CONNECT, idle, "Idle", &resp);
    plist_free(idle);
    for (int n = 0; rc == 0 && !is_blank(&resp.body); n++) {
        if (n >= o->max_commands) {
            /* A server that resends what we NotNow'd would loop forever. */
            devsim_report_err(r, d->facts.udid, "connect", 200,
                              "too many commands in one session (see --max-commands)");
            fprintf(stderr, "steward-devsim: %s: more than %d commands in one session\n",
                    d->facts.udid, o->max_commands);
            rc = -1;
            break;
        }
        rc = answer_one(o, h, d, r, &resp);
    }
    buf_free(&resp.body);
    return rc;
}

int devsim_flow_connect(const struct devsim_opts *o, struct devsim_http *h,
                        struct devsim_device *d, struct devsim_report *r)
{
    int rounds = o->idle_rounds > 0 ? o->idle_rounds : 1;
    int rc = 0;
    for (int i = 0; i < rounds && rc == 0; i++)
        rc = session(o, h, d, r);
    /* Settings, profiles and NotNow memory changed: keep them even after a failure. */
    if (save_state(d, r) != 0)
        rc = -1;
    return rc;
}
