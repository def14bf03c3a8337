/* json_plist.c: the JSON <-> plist mapping of docs/api.md ({"$data": base64},
 * {"$date": RFC 3339}, integers, reals, nested dicts and arrays) and the JSON
 * views of stored records (times, enrollments). Called by the api/ handlers:
 * commands arrive as JSON and leave as plists; device reports go the other way. */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/ids.h"

/* libplist 2.2 dates count seconds from 2001-01-01T00:00:00Z (Apple's epoch). */
#define APPLE_EPOCH_UNIX 978307200LL

/* ---- text checks ---------------------------------------------------------- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, and
 * no NUL (a plist string is a C string, so NUL would silently cut it). */
static int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        size_t n;
        uint32_t cp, min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= n)
            return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* ---- RFC 3339 ---------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar: count
 * years from a March-based year so the leap day falls at the end of it. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Reads exactly n digits. */
static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

static int expect(const char **s, char c)
{
    if (**s != c)
        return -1;
    (*s)++;
    return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" -> Unix seconds and the
 * fraction in microseconds (digits past the sixth are read and dropped). */
static int parse_rfc3339(const char *s, int64_t *unix_out, int32_t *usec_out)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    if (digits(&s, 4, &y) || expect(&s, '-') || digits(&s, 2, &mo) || expect(&s, '-') ||
        digits(&s, 2, &d))
        return -1;
    if (*s != 'T' && *s != 't')
        return -1;
    s++;
    if (digits(&s, 2, &h) || expect(&s, ':') || digits(&s, 2, &mi) || expect(&s, ':') ||
        digits(&s, 2, &sec))
        return -1;
    int32_t usec = 0;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -1;
        int nd = 0;
        for (; *s >= '0' && *s <= '9'; s++, nd++)
            if (nd < 6) /* finer digits are beyond what a plist date keeps */
                usec = usec * 10 + (*s - '0');
        for (; nd < 6; nd++) /* ".5" is 500000 microseconds */
            usec *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        s++;
        if (digits(&s, 2, &oh) || expect(&s, ':') || digits(&s, 2, &om))
            return -1;
    } else {
        return -1;
    }
    if (*s != '\0')
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 60 || oh > 23 || om > 59)
        return -1;
    *unix_out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
                (int64_t)sign * (oh * 3600 + om * 60);
    *usec_out = usec;
    return 0;
}

/* Writes "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" into out (at least 40 bytes). */
static int format_rfc3339(int64_t t, int32_t usec, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return -1;
    int w;
    if (usec > 0)
        w = snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)usec);
    else
        w = snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return w > 0 && (size_t)w < n ? 0 : -1;
}

json_t *api_time_json(int64_t t)
{
    char text[48];
    if (t == 0 || format_rfc3339(t, 0, text, sizeof text) < 0)
        return json_null();
    return json_string(text);
}

/* ---- JSON -> plist ------------------------------------------------------- */

static plist_t fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return NULL;
}

static plist_t data_to_plist(json_t *v, char *err, size_t errlen)
{
    if (!json_is_string(v))
        return fail(err, errlen, "\"$data\" must be a base64 string");
    size_t len = 0;
    uint8_t *bytes = ids_b64_decode(json_string_value(v), json_string_length(v), &len);
    if (!bytes)
        return fail(err, errlen, "\"$data\" is not valid base64");
    plist_t p = plist_new_data((const char *)bytes, len);
    free(bytes);
    return p ? p : fail(err, errlen, "out of memory");
}

/* libplist 2.2 keeps a date as one double, sec + usec / 1e6, so a whole
 * second and a positive fraction give the exact time on either side of 2001. */
static plist_t date_to_plist(json_t *v, char *err, size_t errlen)
{
    if (!json_is_string(v))
        return fail(err, errlen, "\"$date\" must be an RFC 3339 string");
    int64_t t;
    int32_t usec;
    if (parse_rfc3339(json_string_value(v), &t, &usec) < 0)
        return fail(err, errlen, "\"$date\" is not an RFC 3339 time (2026-01-31T12:00:00Z)");
    int64_t rel = t - APPLE_EPOCH_UNIX;
    if (rel <= INT32_MIN || rel >= INT32_MAX)
        return fail(err, errlen, "\"$date\" is out of the plist date range (1933-2069)");
    plist_t p = plist_new_date((int32_t)rel, usec);
    return p ? p : fail(err, errlen, "out of memory");
}

static plist_t to_plist(json_t *j, int depth, char *err, size_t errlen);

static plist_t object_to_plist(json_t *j, int depth, char *err, size_t errlen)
{
    if (json_object_size(j) == 1) {
        json_t *v;
        if ((v = json_object_get(j, "$data")))
            return data_to_plist(v, err, errlen);
        if ((v = json_object_get(j, "$date")))
            return date_to_plist(v, err, errlen);
    }
    plist_t dict = plist_new_dict();
    if (!dict)
        return fail(err, errlen, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (!utf8_valid(key, strlen(key))) {
            plist_free(dict);
            return fail(err, errlen, "object key is not valid UTF-8");
        }
        plist_t child = to_plist(v, depth, err, errlen);
        if (!child) {
            plist_free(dict);
            return NULL;
        }
        plist_dict_set_item(dict, key, child);
    }
    return dict;
}

static plist_t array_to_plist(json_t *j, int depth, char *err, size_t errlen)
{
    plist_t arr = plist_new_array();
    if (!arr)
        return fail(err, errlen, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
        plist_t child = to_plist(v, depth, err, errlen);
        if (!child) {
            plist_free(arr);
            return NULL;
        }
        plist_array_append_item(arr, child);
    }
    return arr;
}

static plist_t to_plist(json_t *j, int depth, char *err, size_t errlen)
{
    plist_t p = NULL;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth + 1 > API_JSON_MAX_DEPTH)
            return fail(err, errlen, "nesting deeper than 32 levels");
        return json_is_object(j) ? object_to_plist(j, depth + 1, err, errlen)
                                 : array_to_plist(j, depth + 1, err, errlen);
    case JSON_STRING:
        if (!utf8_valid(json_string_value(j), json_string_length(j)))
            return fail(err, errlen, "string is not valid UTF-8 (or holds a NUL)");
        p = plist_new_string(json_string_value(j));
        break;
    case JSON_INTEGER:
        /* libplist 2.2 has only PLIST_UINT; it writes the bit pattern back as
         * a signed <integer>, so a negative value survives the cast. */
        p = plist_new_uint((uint64_t)(int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        p = plist_new_real(json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        p = plist_new_bool(json_is_true(j));
        break;
    case JSON_NULL:
        return fail(err, errlen, "null has no plist equivalent");
    }
    return p ? p : fail(err, errlen, "out of memory");
}

plist_t json_to_plist(json_t *j, char *err, size_t errlen)
{
    if (!j)
        return fail(err, errlen, "no value");
    return to_plist(j, 0, err, errlen);
}

/* ---- plist -> JSON ------------------------------------------------------- */

static json_t *to_json(plist_t p, int depth);

static json_t *wrap(const char *key, json_t *v)
{
    json_t *o = json_object();
    if (!o || !v || json_object_set_new(o, key, v) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *data_to_json(plist_t p)
{
    uint64_t len = 0;
    const char *bytes = plist_get_data_ptr(p, &len);
    char *b64 = ids_b64_encode((const uint8_t *)(bytes ? bytes : ""), (size_t)len);
    if (!b64)
        return NULL;
    json_t *j = wrap("$data", json_string(b64));
    free(b64);
    return j;
}

/* libplist hands the double back as (sec truncated toward zero, magnitude of
 * the fraction in microseconds, truncated), so before 2001 a fraction counts
 * backwards from sec. (Within the one second before 2001 the sign is lost:
 * sec is 0; fractions there come back mirrored. Device dates are whole
 * seconds, so this is noted rather than worked around.) */
static json_t *date_to_json(plist_t p)
{
    int32_t sec = 0, usec = 0;
    plist_get_date_val(p, &sec, &usec);
    int64_t whole = sec;
    if (sec < 0 && usec > 0) {
        whole = (int64_t)sec - 1;
        usec = 1000000 - usec;
    }
    char text[48];
    if (format_rfc3339(whole + APPLE_EPOCH_UNIX, usec, text, sizeof text) < 0)
        return NULL;
    return wrap("$date", json_string(text));
}

static json_t *dict_to_json(plist_t p, int depth)
{
    json_t *o = json_object();
    plist_dict_iter it = NULL;
    if (!o)
        return NULL;
    plist_dict_new_iter(p, &it);
    if (!it) {
        json_decref(o);
        return NULL;
    }
    for (;;) {
        char *key = NULL;
        plist_t v = NULL;
        plist_dict_next_item(p, it, &key, &v);
        if (!v) {
            free(key);
            break;
        }
        json_t *child = key && utf8_valid(key, strlen(key)) ? to_json(v, depth) : NULL;
        int rc = child ? json_object_set_new(o, key, child) : -1;
        free(key);
        if (rc < 0) {
            free(it);
            json_decref(o);
            return NULL;
        }
    }
    free(it);
    return o;
}

static json_t *array_to_json(plist_t p, int depth)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    uint32_t n = plist_array_get_size(p);
    for (uint32_t i = 0; i < n; i++) {
        json_t *child = to_json(plist_array_get_item(p, i), depth);
        if (!child || json_array_append_new(a, child) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *to_json(plist_t p, int depth)
{
    switch (plist_get_node_type(p)) {
    case PLIST_DICT:
    case PLIST_ARRAY:
        if (depth + 1 > API_JSON_MAX_DEPTH)
            return NULL;
        return plist_get_node_type(p) == PLIST_DICT ? dict_to_json(p, depth + 1)
                                                    : array_to_json(p, depth + 1);
    case PLIST_BOOLEAN: {
        uint8_t b = 0;
        plist_get_bool_val(p, &b);
        return json_boolean(b);
    }
    case PLIST_UINT: {
        uint64_t v = 0;
        plist_get_uint_val(p, &v);
        return json_integer((json_int_t)(int64_t)v);
    }
    case PLIST_UID: {
        uint64_t v = 0;
        plist_get_uid_val(p, &v);
        return json_integer((json_int_t)(int64_t)v);
    }
    case PLIST_REAL: {
        double d = 0;
        plist_get_real_val(p, &d);
        return isfinite(d) ? json_real(d) : json_null();
    }
    case PLIST_STRING: {
        uint64_t len = 0;
        const char *s = plist_get_string_ptr(p, &len);
        if (!s || !utf8_valid(s, (size_t)len))
            return NULL;
        return json_stringn(s, (size_t)len);
    }
    case PLIST_DATA:
        return data_to_json(p);
    case PLIST_DATE:
        return date_to_json(p);
    default:
        return NULL;
    }
}

json_t *plist_to_json(plist_t p)
{
    return p ? to_json(p, 0) : NULL;
}

/* ---- enrollments ---------------------------------------------------------- */

static const char *const status_names[] = {
    [ENROLLMENT_AUTHENTICATED] = "authenticated",
    [ENROLLMENT_ENROLLED] = "enrolled",
    [ENROLLMENT_CHECKED_OUT] = "checked_out",
};

const char *api_status_name(int status)
{
    if (status < ENROLLMENT_AUTHENTICATED || status > ENROLLMENT_CHECKED_OUT)
        return NULL;
    return status_names[status];
}

int api_status_from_name(const char *name)
{
    for (int s = ENROLLMENT_AUTHENTICATED; name && s <= ENROLLMENT_CHECKED_OUT; s++)
        if (strcmp(name, status_names[s]) == 0)
            return s;
    return 0;
}

/* A stored text field as JSON: null when unset, and null rather than a
 * broken document when a device once sent text that is not UTF-8. */
static json_t *text_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

json_t *api_device_json(const struct store_enrollment *e)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    const char *status = api_status_name(e->status);
    struct {
        const char *key;
        json_t *value;
    } fields[] = {
        {"id", text_or_null(e->id)},
        {"type", text_or_null(e->type)},
        {"status", text_or_null(status)},
        {"udid", text_or_null(e->udid)},
        {"enrollment_id", text_or_null(e->enrollment_id)},
        {"user_id", text_or_null(e->user_id)},
        {"parent_id", text_or_null(e->parent_id)},
        {"serial_number", text_or_null(e->serial_number)},
        {"topic", text_or_null(e->topic)},
        {"os_version", text_or_null(e->os_version)},
        {"build_version", text_or_null(e->build_version)},
        {"product_name", text_or_null(e->product_name)},
        {"model", text_or_null(e->model)},
        {"model_name", text_or_null(e->model_name)},
        {"device_name", text_or_null(e->device_name)},
        {"imei", text_or_null(e->imei)},
        {"meid", text_or_null(e->meid)},
        {"push_token", text_or_null(e->token_hex)},
        {"has_push_magic", json_boolean(e->push_magic && *e->push_magic)},
        {"has_unlock_token", json_boolean(e->unlock_token && e->unlock_token_len > 0)},
        {"awaiting_configuration", json_boolean(e->awaiting_configuration)},
        {"cert_fingerprint", text_or_null(e->cert_fp)},
        {"created_at", api_time_json(e->created_at)},
        {"authenticated_at", api_time_json(e->authenticated_at)},
        {"enrolled_at", api_time_json(e->enrolled_at)},
        {"last_seen_at", api_time_json(e->last_seen_at)},
        {"checked_out_at", api_time_json(e->checked_out_at)},
    };
    int bad = 0;
    /* Every value is set (and so released) even after a failure. */
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        bad |= json_object_set_new(o, fields[i].key, fields[i].value) < 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
