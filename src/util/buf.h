/* buf.h: a growable byte buffer used to build response bodies, SQL and
 * JSON text. Owns its memory; buf_free releases it, buf_steal hands it over. */
#ifndef STEWARD_BUF_H
#define STEWARD_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
};

int buf_append(struct buf *b, const void *data, size_t len);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included, escaped as jansson
 * escapes it (", \\, and control characters); s is UTF-8 text. Runs of plain
 * characters are copied at once: a fleet's answer holds 100,000 ids. */
int buf_json_string(struct buf *b, const char *s);
/* Appends ["ids[0]",…,"ids[n-1]"]: the JSON array store statements take. */
int buf_json_string_array(struct buf *b, const char *const *ids, size_t n);
/* Returns the data (caller frees) and resets b. */
char *buf_steal(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif
