/* check.c: what APNs would answer a push (mock.h). Apple's documented
 * checks come first, in the order Apple applies them (method, path, token,
 * topic against the client certificate, push type, priority, expiration,
 * apns-id, body), then the configured failures (--refuse-cert, --fail N,
 * the rules). Pure: no I/O. */
#include "apnsmock/mock.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void answer(struct mock_answer *a, int status, const char *reason)
{
    a->status = status;
    snprintf(a->reason, sizeof a->reason, "%s", reason);
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* 8-4-4-4-12 hex. */
static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* A device token: 64 hex digits (32 bytes), as iOS issues them. */
static int is_token(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* The body must be exactly {"mdm":"<magic>"}: one key, a string value, no
 * aps dictionary, no whitespace. */
static int check_body(const struct mock_request *r, struct mock_answer *a)
{
    if (r->body_too_large) {
        answer(a, 413, "PayloadTooLarge");
        return -1;
    }
    if (r->body_len == 0) {
        answer(a, 400, "PayloadEmpty");
        return -1;
    }
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, NULL);
    const char *magic = json_is_object(j) && json_object_size(j) == 1
                            ? json_string_value(json_object_get(j, "mdm"))
                            : NULL;
    char exact[MOCK_MAX_BODY + 32];
    int ok = magic && *magic && strlen(magic) < sizeof a->magic &&
             snprintf(exact, sizeof exact, "{\"mdm\":\"%s\"}", magic) == (int)r->body_len &&
             memcmp(exact, r->body, r->body_len) == 0;
    if (ok)
        snprintf(a->magic, sizeof a->magic, "%s", magic);
    json_decref(j);
    if (!ok) {
        answer(a, 400, "BadPayload");
        return -1;
    }
    return 0;
}

static int check_request(const struct mock_request *r, const char *cert_topic,
                         struct mock_answer *a)
{
    static const char prefix[] = "/3/device/";
    if (strcmp(r->method, "POST") != 0) {
        answer(a, 405, "MethodNotAllowed");
        return -1;
    }
    if (strncmp(r->path, prefix, sizeof prefix - 1) != 0) {
        answer(a, 404, "BadPath");
        return -1;
    }
    const char *token = r->path + sizeof prefix - 1;
    if (!is_token(token)) {
        answer(a, 400, "BadDeviceToken");
        return -1;
    }
    snprintf(a->token, sizeof a->token, "%s", token);
    if (r->duplicate_header) {
        answer(a, 400, "DuplicateHeaders");
        return -1;
    }
    if (!r->has_topic) {
        answer(a, 400, "MissingTopic");
        return -1;
    }
    if (!cert_topic || strcmp(r->topic, cert_topic) != 0) {
        answer(a, 400, "TopicDisallowed");
        return -1;
    }
    if (!r->has_push_type || strcmp(r->push_type, "mdm") != 0) {
        answer(a, 400, "InvalidPushType");
        return -1;
    }
    if (r->has_priority && strcmp(r->priority, "10") != 0 && strcmp(r->priority, "5") != 0) {
        answer(a, 400, "BadPriority");
        return -1;
    }
    if (r->has_expiration && !all_digits(r->expiration)) {
        answer(a, 400, "BadExpirationDate");
        return -1;
    }
    if (r->has_apns_id && !is_uuid(r->apns_id)) {
        answer(a, 400, "BadMessageId");
        return -1;
    }
    return check_body(r, a);
}

void mock_check(const struct mock_config *cfg, const struct mock_request *r,
                const char *cert_topic, long n_seen, struct mock_answer *a)
{
    memset(a, 0, sizeof *a);
    if (check_request(r, cert_topic, a) < 0)
        return;
    if (cfg->refuse_cert) {
        answer(a, 403, "BadCertificate");
        return;
    }
    if (n_seen < cfg->fail_first) {
        answer(a, 503, "ServiceUnavailable");
        return;
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        const struct mock_rule *rule = &cfg->rules[i];
        if (strcmp(rule->token, "*") == 0 || strcasecmp(rule->token, a->token) == 0) {
            answer(a, rule->status, rule->reason);
            return;
        }
    }
    answer(a, 200, "");
}
