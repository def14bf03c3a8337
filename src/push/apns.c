/* apns.c: the pure half of apns.h: building a push request (path, body,
 * expiration) and classifying APNs' answer. The HTTP/2 client that sends
 * them is push/client.c. */
#include "push/apns.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *apns_outcome_name(enum apns_outcome o)
{
    switch (o) {
    case APNS_OK: return "ok";
    case APNS_UNREGISTERED: return "unregistered";
    case APNS_REJECTED: return "rejected";
    case APNS_CERT_REFUSED: return "certificate_refused";
    case APNS_THROTTLED: return "throttled";
    case APNS_RETRY: return "retry";
    }
    return "?";
}

int apns_path(char *out, size_t n, const char *token_hex)
{
    size_t len = token_hex ? strlen(token_hex) : 0;
    if (len < 16 || len > 200 || len % 2 != 0)
        return -1;
    static const char prefix[] = "/3/device/";
    if (sizeof prefix + len > n)
        return -1;
    memcpy(out, prefix, sizeof prefix - 1);
    char *o = out + sizeof prefix - 1;
    for (size_t i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)token_hex[i]))
            return -1;
        *o++ = (char)tolower((unsigned char)token_hex[i]);
    }
    *o = '\0';
    return 0;
}

int apns_body(char *out, size_t n, const char *magic)
{
    size_t len = magic ? strlen(magic) : 0;
    if (len == 0 || len > 128)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)magic[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return -1;
    }
    int w = snprintf(out, n, "{\"mdm\":\"%s\"}", magic);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int64_t apns_expiration(int64_t now, int64_t ttl)
{
    return ttl <= 0 ? 0 : now + ttl;
}

static void copy_reason(char *reason, size_t n, const char *s)
{
    if (n)
        snprintf(reason, n, "%s", s ? s : "");
}

enum apns_outcome apns_classify(long status, const char *body, size_t len, char *reason,
                                size_t reason_n, int64_t *timestamp)
{
    *timestamp = 0;
    copy_reason(reason, reason_n, "");
    if (status == 200)
        return APNS_OK;
    if (body && len) {
        json_t *j = json_loadb(body, len, 0, NULL);
        if (json_is_object(j)) {
            copy_reason(reason, reason_n, json_string_value(json_object_get(j, "reason")));
            json_t *ts = json_object_get(j, "timestamp");
            if (json_is_integer(ts))
                *timestamp = json_integer_value(ts);
        }
        json_decref(j);
    }
    if (status == 0 || status >= 500)
        return APNS_RETRY;
    if (status == 410)
        return APNS_UNREGISTERED;
    if (status == 400 && strcmp(reason, "BadDeviceToken") == 0)
        return APNS_UNREGISTERED;
    if (status == 403)
        return APNS_CERT_REFUSED;
    if (status == 429)
        return APNS_THROTTLED;
    return APNS_REJECTED;
}
