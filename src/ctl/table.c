/* table.c: stewardctl's human output: aligned tables (devices list, commands
 * list, send results) and "key: value" blocks (devices show). Cells come from
 * the server and ultimately from devices, so control characters are replaced
 * before they reach a terminal. Called by the command handlers. */
#include "ctl/ctl.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ctl_table {
    size_t ncols;
    char **headers;  /* ncols strings */
    char **cells;    /* nrows * ncols strings, row-major; NULL means "-" */
    size_t nrows;
    size_t caprows;
};

#define CTL_COL_GAP 2

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
    struct ctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    t->headers = calloc(ncols, sizeof *t->headers);
    if (!t->headers) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < ncols; i++) {
        t->headers[i] = strdup(headers[i]);
        if (!t->headers[i]) {
            ctl_table_free(t);
            return NULL;
        }
    }
    return t;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    if (t->nrows == t->caprows) {
        size_t cap = t->caprows ? t->caprows * 2 : 16;
        char **p = realloc(t->cells, cap * t->ncols * sizeof *p);
        if (!p)
            return -1;
        t->cells = p;
        t->caprows = cap;
    }
    char **row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = dup_or_null(cells[i]);
        if (cells[i] && *cells[i] && !row[i]) {
            for (size_t k = 0; k < i; k++)
                free(row[k]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

size_t ctl_table_rows(const struct ctl_table *t) { return t->nrows; }

void ctl_table_free(struct ctl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->headers && i < t->ncols; i++)
        free(t->headers[i]);
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->headers);
    free(t->cells);
    free(t);
}

size_t ctl_text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) /* count lead bytes, skip continuation bytes */
            w++;
    return w;
}

int ctl_put_clean(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = 0, i = 0;
    while (p[i]) {
        /* C1 controls are U+0080..U+009F, encoded C2 80..C2 9F. */
        size_t bad = p[i] < 0x20 || p[i] == 0x7F ? 1
                     : (p[i] == 0xC2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F) ? 2
                                                                               : 0;
        if (!bad) {
            i++;
            continue;
        }
        if (buf_append(b, s + start, i - start) < 0 || buf_append(b, "?", 1) < 0)
            return -1;
        i += bad;
        start = i;
    }
    return buf_append(b, s + start, i - start);
}

/* Width as printed: cleaning maps each control (1 or 2 bytes) to one '?',
 * which ctl_text_width already counts as one code point. */
static size_t cell_width(const char *cell) { return ctl_text_width(cell ? cell : "-"); }

static int put_padded(struct buf *b, const char *cell, size_t width, int last)
{
    const char *text = cell ? cell : "-";
    if (ctl_put_clean(b, text) < 0)
        return -1;
    if (last)
        return 0;
    for (size_t w = cell_width(cell); w < width + CTL_COL_GAP; w++)
        if (buf_append(b, " ", 1) < 0)
            return -1;
    return 0;
}

static int put_row(struct buf *b, char *const *row, const size_t *widths, size_t ncols)
{
    for (size_t i = 0; i < ncols; i++)
        if (put_padded(b, row[i], widths[i], i + 1 == ncols) < 0)
            return -1;
    return buf_append(b, "\n", 1);
}

int ctl_table_render(const struct ctl_table *t, struct buf *b)
{
    size_t *widths = calloc(t->ncols ? t->ncols : 1, sizeof *widths);
    if (!widths)
        return -1;
    for (size_t c = 0; c < t->ncols; c++) {
        widths[c] = cell_width(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = cell_width(t->cells[r * t->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    int rc = put_row(b, t->headers, widths, t->ncols);
    for (size_t r = 0; rc == 0 && r < t->nrows; r++)
        rc = put_row(b, t->cells + r * t->ncols, widths, t->ncols);
    free(widths);
    return rc;
}

char *ctl_json_text(const json_t *v)
{
    char tmp[64];
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        return strdup(json_string_value(v));
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strdup(tmp);
    case JSON_REAL:
        snprintf(tmp, sizeof tmp, "%.17g", json_real_value(v));
        return strdup(tmp);
    case JSON_TRUE:
        return strdup("true");
    case JSON_FALSE:
        return strdup("false");
    case JSON_OBJECT:
    case JSON_ARRAY:
        return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    default:
        return NULL;
    }
}

/* "key:" padded so values start two columns after the widest key. */
static int put_key_value(struct buf *b, const char *key, const char *text, size_t width)
{
    if (ctl_put_clean(b, key) < 0 || buf_append(b, ":", 1) < 0)
        return -1;
    for (size_t w = ctl_text_width(key); w <= width; w++)
        if (buf_append(b, " ", 1) < 0)
            return -1;
    if (ctl_put_clean(b, text ? text : "-") < 0)
        return -1;
    return buf_append(b, "\n", 1);
}

int ctl_render_keyvalues(const json_t *obj, struct buf *b)
{
    const char *key;
    const json_t *v;
    size_t width = 0;
    json_object_foreach((json_t *)obj, key, v) {
        size_t w = ctl_text_width(key);
        if (w > width)
            width = w;
    }
    json_object_foreach((json_t *)obj, key, v) {
        char *text = ctl_json_text(v);
        int rc = put_key_value(b, key, text, width);
        free(text);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int ctl_write(struct ctl *c, const struct buf *b)
{
    if (b->len && fwrite(b->data, 1, b->len, c->out) != b->len)
        return -1;
    return fflush(c->out) == 0 ? 0 : -1;
}

void ctl_fail(struct ctl *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stewardctl: ", c->err);
    vfprintf(c->err, fmt, ap);
    fputc('\n', c->err);
    va_end(ap);
}

void ctl_print_json(struct ctl *c, const struct ctl_response *r)
{
    char *text = r->json ? json_dumps(r->json, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    if (text) {
        fprintf(c->out, "%s\n", text);
        free(text);
    } else if (r->len) {
        /* Not JSON (e.g. a proxy's error page): shown as it came. */
        fwrite(r->body, 1, r->len, c->out);
        if (r->body[r->len - 1] != '\n')
            fputc('\n', c->out);
    }
    fflush(c->out);
}

/* One table row from a list element: each field's text. */
static int list_row(struct ctl_table *t, const json_t *obj, const struct ctl_list_view *v)
{
    char **cells = calloc(v->ncols, sizeof *cells);
    if (!cells)
        return -1;
    for (size_t i = 0; i < v->ncols; i++)
        cells[i] = ctl_json_text(json_object_get(obj, v->fields[i]));
    int rc = ctl_table_add(t, (const char *const *)cells);
    for (size_t i = 0; i < v->ncols; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

/* The closing line: "3 of 3 devices", with the offset when paging. */
static int list_count_line(struct buf *b, size_t shown, const json_t *answer,
                           const struct ctl_list_view *v)
{
    json_int_t total = json_integer_value(json_object_get(answer, "total"));
    json_int_t offset = json_integer_value(json_object_get(answer, "offset"));
    if (shown == 0) {
        if (total > 0)
            return buf_printf(b, "No %s at offset %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
                                 " in total).\n", v->plural, offset, total);
        return buf_printf(b, "No %s.\n", v->plural);
    }
    if (buf_printf(b, "%zu of %" JSON_INTEGER_FORMAT " %s", shown, total,
                   total == 1 ? v->singular : v->plural) < 0)
        return -1;
    if (offset > 0 && buf_printf(b, " (from offset %" JSON_INTEGER_FORMAT ")", offset) < 0)
        return -1;
    return buf_puts(b, "\n");
}

int ctl_render_list(const json_t *answer, const struct ctl_list_view *v, struct buf *out)
{
    const json_t *items = json_object_get(answer, v->key);
    if (!json_is_array(items))
        return -1;
    struct ctl_table *t = ctl_table_new(v->ncols, v->headers);
    int rc = t ? 0 : -1;
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item) {
        if (rc == 0)
            rc = json_is_object(item) ? list_row(t, item, v) : -1;
    }
    if (rc == 0 && json_array_size(items) > 0)
        rc = ctl_table_render(t, out);
    if (rc == 0)
        rc = list_count_line(out, json_array_size(items), answer, v);
    ctl_table_free(t);
    return rc;
}
