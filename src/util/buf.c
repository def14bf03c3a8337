/* buf.c: growable buffer behind buf.h. Errors are -1 (out of memory). */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_puts(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *buf_steal(struct buf *b, size_t *len)
{
    char *d = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int buf_json_string(struct buf *b, const char *s)
{
    /* Most strings (ids, UUIDs) need no escape: one copy between quotes. */
    const unsigned char *p = (const unsigned char *)s;
    while (*p >= 0x20 && *p != '"' && *p != '\\')
        p++;
    if (!*p) {
        size_t n = (size_t)(p - (const unsigned char *)s);
        if (buf_reserve(b, n + 2) < 0)
            return -1;
        char *o = b->data + b->len;
        o[0] = '"';
        memcpy(o + 1, s, n);
        o[n + 1] = '"';
        o[n + 2] = '\0';
        b->len += n + 2;
        return 0;
    }
    if (buf_append(b, "\"", 1) < 0)
        return -1;
    p = (const unsigned char *)s;
    for (;;) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        if (p > run && buf_append(b, run, (size_t)(p - run)) < 0)
            return -1;
        if (!*p)
            break;
        static const char short_esc[] = "btnvfr"; /* \b \t \n (\v has none) \f \r */
        int rc;
        if (*p == '"' || *p == '\\')
            rc = buf_printf(b, "\\%c", *p);
        else if (*p >= 0x08 && *p <= 0x0d && *p != 0x0b)
            rc = buf_printf(b, "\\%c", short_esc[*p - 0x08]);
        else
            rc = buf_printf(b, "\\u%04X", *p);
        if (rc < 0)
            return -1;
        p++;
    }
    return buf_append(b, "\"", 1);
}

int buf_json_string_array(struct buf *b, const char *const *ids, size_t n)
{
    if (buf_append(b, "[", 1) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((i && buf_append(b, ",", 1) < 0) || buf_json_string(b, ids[i]) < 0)
            return -1;
    return buf_append(b, "]", 1);
}
