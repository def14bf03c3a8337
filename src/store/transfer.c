/* transfer.c: store_transfer_h's calls. The schema history is read through
 * sql.h like any area; the transfer itself talks to the two engines
 * directly (SQLite's C API for reading, libpq's COPY for writing), because it
 * is generic over whatever tables exist: table and column names come from
 * the catalogs (sqlite_master and PRAGMA table_info; information_schema and
 * pg_constraint), never from a list here. Both databases are first brought
 * to this program's schema with store_open, so a table present in both has
 * the same meaning in both. Tables are copied parents before children (the
 * target's foreign keys decide), each with one COPY in text format, all in
 * one transaction. */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/backend.h"
#include "store/sql.h"
#include "util/array.h"
#include "store/store.h"
#include "store/store_transfer.h"
#include "util/buf.h"
#include "util/log.h"

/* ---- schema history ---------------------------------------------------------- */

int store_schema_history(struct store *s, struct store_schema_step **out, size_t *n)
{
    static const char q[] = "SELECT version, applied_at FROM schema_version ORDER BY version";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, q, "schema_history", &rc);
    if (!st)
        return rc;
    size_t cap = 0;
    int r;
    while ((r = sql_next_row(s, st, "schema_history", 0)) == 1) {
        if (array_grow((void **)out, &cap, *n, sizeof **out) < 0) {
            sql_done(st);
            free(*out);
            *out = NULL;
            *n = 0;
            return sql_out_of_memory("schema_history");
        }
        (*out)[*n].version = (int)sql_col_int(st, 0);
        (*out)[*n].applied_at = sql_col_int(st, 1);
        (*n)++;
    }
    if (r < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return r;
    }
    return STORE_OK;
}

int store_schema_version_at_open(struct store *s)
{
    return s->version_at_open;
}

/* ---- the transfer: catalogs ---------------------------------------------------- */

/* A column the copy writes: its name in the target and what it is there. */
struct column {
    char *name;
    int bytea;     /* the target stores bytes: source text or blobs go as \x hex */
    int identity;  /* the target assigns it (GENERATED … AS IDENTITY) */
    int from_rowid; /* the target's rowid stand-in, filled from SQLite's rowid */
};

struct table {
    char *name;
    struct column *cols;
    size_t ncols;
    int done;
    int64_t rows, bytes;
};

struct transfer {
    sqlite3 *src;
    PGconn *dst;
    struct table *tables;
    size_t ntables;
    char **err;
};

static int fail_msg(struct transfer *t, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_msg(struct transfer *t, int rc, const char *fmt, ...)
{
    if (t->err && !*t->err) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(t->err, fmt, ap) < 0)
            *t->err = NULL;
        va_end(ap);
        /* libpq's messages end in a newline */
        size_t n = *t->err ? strlen(*t->err) : 0;
        while (n > 0 && ((*t->err)[n - 1] == '\n' || (*t->err)[n - 1] == ' '))
            (*t->err)[--n] = '\0';
    }
    return rc;
}

static int fail_pg(struct transfer *t, const char *what, PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage(t->dst);
    return fail_msg(t, STORE_ERR, "%s: %s", what, msg);
}

static int oom(struct transfer *t)
{
    return fail_msg(t, sql_out_of_memory("transfer"), "out of memory");
}

/* A statement on the target that must succeed; its result is returned (or
 * NULL after setting the error). */
static PGresult *pg_run(struct transfer *t, const char *what, const char *sql, int nparams,
                        const char *const *params)
{
    PGresult *res = PQexecParams(t->dst, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return res;
    fail_pg(t, what, res);
    PQclear(res);
    return NULL;
}

/* An identifier as PostgreSQL and SQLite both read it: in double quotes. */
static int put_ident(struct buf *b, const char *name)
{
    if (buf_puts(b, "\"") < 0)
        return -1;
    for (const char *p = name; *p; p++)
        if ((*p == '"' && buf_puts(b, "\"\"") < 0) || (*p != '"' && buf_append(b, p, 1) < 0))
            return -1;
    return buf_puts(b, "\"");
}

/* The names of a SQLite table's columns (*names malloc'd, free_names). */
static int src_columns(struct transfer *t, const char *table, char ***names, size_t *n)
{
    struct buf q = {0};
    if (buf_puts(&q, "SELECT name FROM pragma_table_info(") < 0) {
        buf_free(&q);
        return oom(t);
    }
    char *lit = sqlite3_mprintf("%Q)", table);
    if (!lit || buf_puts(&q, lit) < 0) {
        sqlite3_free(lit);
        buf_free(&q);
        return oom(t);
    }
    sqlite3_free(lit);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(t->src, q.data, -1, &st, NULL);
    buf_free(&q);
    if (rc != SQLITE_OK)
        return fail_msg(t, STORE_ERR, "source: columns of %s: %s", table, sqlite3_errmsg(t->src));
    *names = NULL;
    *n = 0;
    int out = STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 0);
        char **grown = realloc(*names, (*n + 1) * sizeof **names);
        if (grown)
            *names = grown;
        char *name = grown && col ? strdup(col) : NULL;
        if (!name) {
            out = oom(t);
            break;
        }
        (*names)[(*n)++] = name;
    }
    if (out == STORE_OK && rc != SQLITE_DONE)
        out = fail_msg(t, STORE_ERR, "source: columns of %s: %s", table, sqlite3_errmsg(t->src));
    sqlite3_finalize(st);
    return out;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int has_name(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* The target's columns of table that the source can fill: same name, or
 * "rowid" (the stand-in migration 9 adds) from SQLite's own rowid.
 * Generated (computed) columns are left to the target. */
static int plan_columns(struct transfer *t, struct table *tb, char **src, size_t nsrc)
{
    static const char q[] =
        "SELECT column_name, data_type, is_identity, is_generated FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
    const char *params[1] = {tb->name};
    PGresult *res = pg_run(t, "target: columns", q, 1, params);
    if (!res)
        return STORE_ERR;
    int rows = PQntuples(res), rc = STORE_OK;
    tb->cols = calloc((size_t)rows + 1, sizeof *tb->cols);
    if (!tb->cols) {
        PQclear(res);
        return oom(t);
    }
    for (int i = 0; i < rows; i++) {
        const char *name = PQgetvalue(res, i, 0);
        if (strcmp(PQgetvalue(res, i, 3), "ALWAYS") == 0)
            continue; /* computed by the target */
        int in_src = has_name(src, nsrc, name);
        int rowid = !in_src && strcmp(name, "rowid") == 0;
        if (!in_src && !rowid)
            continue; /* the target's default fills it */
        struct column *c = &tb->cols[tb->ncols];
        c->name = strdup(name);
        if (!c->name) {
            rc = oom(t);
            break;
        }
        c->bytea = strcmp(PQgetvalue(res, i, 1), "bytea") == 0;
        c->identity = strcmp(PQgetvalue(res, i, 2), "YES") == 0;
        c->from_rowid = rowid;
        tb->ncols++;
    }
    PQclear(res);
    return rc;
}

static void free_tables(struct transfer *t)
{
    for (size_t i = 0; i < t->ntables; i++) {
        for (size_t j = 0; j < t->tables[i].ncols; j++)
            free(t->tables[i].cols[j].name);
        free(t->tables[i].cols);
        free(t->tables[i].name);
    }
    free(t->tables);
    t->tables = NULL;
    t->ntables = 0;
}

/* The tables to copy: those both databases have, except schema_version
 * (both were just migrated to the same version). Tables only the source has
 * go to rep->source_only. */
static int plan_tables(struct transfer *t, struct store_transfer_report *rep)
{
    static const char q[] = "SELECT name FROM sqlite_master WHERE type = 'table'"
                            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(t->src, q, -1, &st, NULL) != SQLITE_OK)
        return fail_msg(t, STORE_ERR, "source: list tables: %s", sqlite3_errmsg(t->src));
    int rc = STORE_OK, step;
    while (rc == STORE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (strcmp(name, "schema_version") == 0)
            continue;
        const char *params[1] = {name};
        PGresult *res = pg_run(t, "target: find table",
                               "SELECT 1 FROM information_schema.tables WHERE table_schema ="
                               " current_schema() AND table_name = $1 AND table_type = 'BASE TABLE'",
                               1, params);
        if (!res) {
            rc = STORE_ERR;
            break;
        }
        int present = PQntuples(res) == 1;
        PQclear(res);
        if (!present) {
            char **grown = realloc(rep->source_only, (rep->nsource_only + 1) * sizeof *grown);
            char *copy = strdup(name);
            if (grown)
                rep->source_only = grown;
            if (!grown || !copy) {
                free(copy);
                rc = oom(t);
                break;
            }
            rep->source_only[rep->nsource_only++] = copy;
            continue;
        }
        struct table *grown = realloc(t->tables, (t->ntables + 1) * sizeof *grown);
        if (!grown) {
            rc = oom(t);
            break;
        }
        t->tables = grown;
        struct table *tb = &t->tables[t->ntables];
        memset(tb, 0, sizeof *tb);
        tb->name = strdup(name);
        if (!tb->name) {
            rc = oom(t);
            break;
        }
        t->ntables++;
        char **cols = NULL;
        size_t ncols = 0;
        rc = src_columns(t, name, &cols, &ncols);
        if (rc == STORE_OK)
            rc = plan_columns(t, tb, cols, ncols);
        free_names(cols, ncols);
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = fail_msg(t, STORE_ERR, "source: list tables: %s", sqlite3_errmsg(t->src));
    sqlite3_finalize(st);
    return rc;
}

static struct table *find_table(struct transfer *t, const char *name)
{
    for (size_t i = 0; i < t->ntables; i++)
        if (strcmp(t->tables[i].name, name) == 0)
            return &t->tables[i];
    return NULL;
}

/* Orders t->tables so every table comes after the tables its foreign keys
 * reference (self-references aside: rows keep SQLite's rowid order, in
 * which a parent was written before its children). */
static int order_tables(struct transfer *t)
{
    PGresult *fks = pg_run(t, "target: foreign keys",
                           "SELECT cl.relname, ref.relname FROM pg_constraint c"
                           " JOIN pg_class cl ON cl.oid = c.conrelid"
                           " JOIN pg_class ref ON ref.oid = c.confrelid"
                           " WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
                           0, NULL);
    if (!fks)
        return STORE_ERR;
    struct table *ordered = calloc(t->ntables ? t->ntables : 1, sizeof *ordered);
    if (!ordered) {
        PQclear(fks);
        return oom(t);
    }
    size_t n = 0;
    while (n < t->ntables) {
        size_t before = n;
        for (size_t i = 0; i < t->ntables; i++) {
            struct table *tb = &t->tables[i];
            if (tb->done)
                continue;
            int ready = 1;
            for (int r = 0; ready && r < PQntuples(fks); r++) {
                if (strcmp(PQgetvalue(fks, r, 0), tb->name) != 0 ||
                    strcmp(PQgetvalue(fks, r, 1), tb->name) == 0)
                    continue;
                struct table *parent = find_table(t, PQgetvalue(fks, r, 1));
                ready = !parent || parent->done;
            }
            if (ready) {
                tb->done = 1;
                ordered[n++] = *tb;
            }
        }
        if (n == before) { /* a cycle: keep the rest in name order */
            for (size_t i = 0; i < t->ntables; i++)
                if (!t->tables[i].done) {
                    t->tables[i].done = 1;
                    ordered[n++] = t->tables[i];
                }
        }
    }
    PQclear(fks);
    free(t->tables);
    t->tables = ordered;
    return STORE_OK;
}

/* ---- the transfer: rows ----------------------------------------------------------- */

/* COPY's text format: backslash escapes for the separators and the escape. */
static int put_copy_text(struct buf *b, const unsigned char *v, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;
        switch (v[i]) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        if (buf_append(b, v + start, i - start) < 0 || buf_puts(b, esc) < 0)
            return -1;
        start = i + 1;
    }
    return buf_append(b, v + start, n - start);
}

/* bytea in COPY text: "\x" + hex, its backslash escaped for COPY. */
static int put_copy_hex(struct buf *b, const unsigned char *v, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_puts(b, "\\\\x") < 0)
        return -1;
    char chunk[256];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        chunk[k++] = hex[v[i] >> 4];
        chunk[k++] = hex[v[i] & 15];
        if (k == sizeof chunk) {
            if (buf_append(b, chunk, k) < 0)
                return -1;
            k = 0;
        }
    }
    return buf_append(b, chunk, k);
}

static int put_value(struct buf *b, sqlite3_stmt *st, int i, const struct column *c,
                     int64_t *bytes)
{
    char num[40];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return buf_puts(b, "\\N");
    case SQLITE_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, i));
        return buf_puts(b, num);
    case SQLITE_FLOAT:
        snprintf(num, sizeof num, "%.17g", sqlite3_column_double(st, i));
        return buf_puts(b, num);
    default: { /* TEXT or BLOB: the bytes as stored */
        const unsigned char *v = sqlite3_column_blob(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        *bytes += (int64_t)n;
        return c->bytea ? put_copy_hex(b, v, n) : put_copy_text(b, v ? v : (const unsigned char *)"", n);
    }
    }
}

static int copy_rows(struct transfer *t, struct table *tb, sqlite3_stmt *st)
{
    struct buf line = {0};
    int step, rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        for (size_t j = 0; j < tb->ncols; j++)
            if ((j && buf_puts(&line, "\t") < 0) ||
                put_value(&line, st, (int)j, &tb->cols[j], &tb->bytes) < 0) {
                buf_free(&line);
                return oom(t);
            }
        if (buf_puts(&line, "\n") < 0) {
            buf_free(&line);
            return oom(t);
        }
        tb->rows++;
        if (line.len >= 1 << 16) {
            if (PQputCopyData(t->dst, line.data, (int)line.len) != 1) {
                rc = fail_pg(t, "target: copy", NULL);
                break;
            }
            line.len = 0;
        }
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = fail_msg(t, STORE_ERR, "source: read %s: %s", tb->name, sqlite3_errmsg(t->src));
    if (rc == STORE_OK && line.len && PQputCopyData(t->dst, line.data, (int)line.len) != 1)
        rc = fail_pg(t, "target: copy", NULL);
    buf_free(&line);
    return rc;
}

/* One table: SELECT on the source, COPY on the target, the counts compared,
 * identity sequences moved past the copied values. */
static int copy_table(struct transfer *t, struct table *tb)
{
    if (tb->ncols == 0)
        return STORE_OK;
    struct buf sel = {0}, copy = {0};
    int bad = buf_puts(&sel, "SELECT ") < 0 || buf_puts(&copy, "COPY ") < 0 ||
              put_ident(&copy, tb->name) < 0 || buf_puts(&copy, " (") < 0;
    for (size_t j = 0; !bad && j < tb->ncols; j++) {
        const char *sep = j ? ", " : "";
        bad = buf_puts(&sel, sep) < 0 || buf_puts(&copy, sep) < 0 ||
              (tb->cols[j].from_rowid ? buf_puts(&sel, "rowid") : put_ident(&sel, tb->cols[j].name)) < 0 ||
              put_ident(&copy, tb->cols[j].name) < 0;
    }
    /* rowid order: the order rows were written in, parents before children */
    bad = bad || buf_puts(&sel, " FROM ") < 0 || put_ident(&sel, tb->name) < 0 ||
          buf_puts(&sel, " ORDER BY rowid") < 0 || buf_puts(&copy, ") FROM STDIN") < 0;
    if (bad) {
        buf_free(&sel);
        buf_free(&copy);
        return oom(t);
    }
    sqlite3_stmt *st = NULL;
    int rc = STORE_OK;
    if (sqlite3_prepare_v2(t->src, sel.data, -1, &st, NULL) != SQLITE_OK) {
        /* a WITHOUT ROWID table: in primary key order instead */
        sel.len -= strlen(" ORDER BY rowid");
        sel.data[sel.len] = '\0';
        if (sqlite3_prepare_v2(t->src, sel.data, -1, &st, NULL) != SQLITE_OK)
            rc = fail_msg(t, STORE_ERR, "source: read %s: %s", tb->name, sqlite3_errmsg(t->src));
    }
    PGresult *res = rc == STORE_OK ? PQexec(t->dst, copy.data) : NULL;
    if (rc == STORE_OK && PQresultStatus(res) != PGRES_COPY_IN)
        rc = fail_pg(t, "target: copy", res);
    PQclear(res);
    buf_free(&sel);
    buf_free(&copy);
    if (rc == STORE_OK) {
        rc = copy_rows(t, tb, st);
        /* ends the COPY either way: an error message makes the server abort it */
        if (PQputCopyEnd(t->dst, rc == STORE_OK ? NULL : "source read failed") != 1 && rc == STORE_OK)
            rc = fail_pg(t, "target: copy", NULL);
        while ((res = PQgetResult(t->dst)) != NULL) {
            if (rc == STORE_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
                rc = fail_pg(t, tb->name, res);
            PQclear(res);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Rows the target's table holds now, to compare with what was read. */
static int count_target(struct transfer *t, const char *table, int64_t *n)
{
    struct buf q = {0};
    if (buf_puts(&q, "SELECT count(*) FROM ") < 0 || put_ident(&q, table) < 0) {
        buf_free(&q);
        return oom(t);
    }
    PGresult *res = pg_run(t, "target: count", q.data, 0, NULL);
    buf_free(&q);
    if (!res)
        return STORE_ERR;
    *n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return STORE_OK;
}

/* An identity column's next value follows the largest copied one. */
static int advance_identity(struct transfer *t, const struct table *tb, const struct column *c)
{
    struct buf q = {0}, qualified = {0};
    int bad = put_ident(&qualified, tb->name) < 0 ||
              buf_puts(&q, "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(max(") < 0 ||
              put_ident(&q, c->name) < 0 || buf_puts(&q, "), 1), max(") < 0 ||
              put_ident(&q, c->name) < 0 || buf_puts(&q, ") IS NOT NULL) FROM ") < 0 ||
              put_ident(&q, tb->name) < 0;
    int rc = STORE_OK;
    if (bad) {
        rc = oom(t);
    } else {
        const char *params[2] = {qualified.data, c->name};
        PGresult *res = pg_run(t, "target: identity", q.data, 2, params);
        rc = res ? STORE_OK : STORE_ERR;
        PQclear(res);
    }
    buf_free(&q);
    buf_free(&qualified);
    return rc;
}

/* Refuses a target that holds rows in a table to be copied, unless force:
 * then those tables (and what references them) are emptied. */
static int check_empty(struct transfer *t, int force, int *cleared)
{
    struct buf busy = {0}, trunc = {0};
    int rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < t->ntables; i++) {
        int64_t n = 0;
        rc = count_target(t, t->tables[i].name, &n);
        if (rc == STORE_OK && n > 0 &&
            buf_printf(&busy, "%s%s (%lld)", busy.len ? ", " : "", t->tables[i].name,
                       (long long)n) < 0)
            rc = oom(t);
    }
    if (rc == STORE_OK && busy.len && !force)
        rc = fail_msg(t, STORE_CONFLICT,
                      "the target database is not empty: %s; use --force to replace its contents",
                      busy.data);
    if (rc == STORE_OK && busy.len) {
        int bad = buf_puts(&trunc, "TRUNCATE ") < 0;
        for (size_t i = 0; !bad && i < t->ntables; i++)
            bad = (i && buf_puts(&trunc, ", ") < 0) || put_ident(&trunc, t->tables[i].name) < 0;
        bad = bad || buf_puts(&trunc, " RESTART IDENTITY CASCADE") < 0;
        PGresult *res = bad ? NULL : pg_run(t, "target: empty", trunc.data, 0, NULL);
        rc = bad ? oom(t) : res ? STORE_OK : STORE_ERR;
        PQclear(res);
        *cleared = rc == STORE_OK;
    }
    buf_free(&busy);
    buf_free(&trunc);
    return rc;
}

static int copy_all(struct transfer *t, int force, struct store_transfer_report *rep)
{
    int rc = check_empty(t, force, &rep->cleared);
    for (size_t i = 0; rc == STORE_OK && i < t->ntables; i++) {
        struct table *tb = &t->tables[i];
        rc = copy_table(t, tb);
        int64_t n = 0;
        if (rc == STORE_OK)
            rc = count_target(t, tb->name, &n);
        if (rc == STORE_OK && n != tb->rows)
            rc = fail_msg(t, STORE_ERR, "%s: %lld rows read but %lld in the target", tb->name,
                          (long long)tb->rows, (long long)n);
        for (size_t j = 0; rc == STORE_OK && j < tb->ncols; j++)
            if (tb->cols[j].identity)
                rc = advance_identity(t, tb, &tb->cols[j]);
        if (rc == STORE_OK)
            log_info("store transfer table", "table=%s rows=%lld bytes=%lld", tb->name,
                     (long long)tb->rows, (long long)tb->bytes);
    }
    return rc;
}

static int fill_report(struct transfer *t, struct store_transfer_report *rep)
{
    rep->tables = calloc(t->ntables ? t->ntables : 1, sizeof *rep->tables);
    if (!rep->tables)
        return oom(t);
    for (size_t i = 0; i < t->ntables; i++) {
        rep->tables[i].name = t->tables[i].name;
        t->tables[i].name = NULL; /* the report owns it now */
        rep->tables[i].rows = t->tables[i].rows;
        rep->tables[i].bytes = t->tables[i].bytes;
        rep->rows += t->tables[i].rows;
        rep->bytes += t->tables[i].bytes;
        rep->ntables++;
    }
    return STORE_OK;
}

/* ---- the transfer: sessions ---------------------------------------------------------- */

/* Brings a database to this program's schema (store_open migrates) and
 * returns its version. */
static int migrate_one(const char *dsn, const char *which, int *version, char **err)
{
    struct store *s = NULL;
    char *why = NULL;
    int rc = store_open(dsn, &s, &why);
    if (rc != STORE_OK) {
        if (err && asprintf(err, "%s: %s", which, why ? why : "cannot open") < 0)
            *err = NULL;
        free(why);
        return rc;
    }
    *version = store_schema_version(s);
    store_close(s);
    return STORE_OK;
}

static int open_engines(struct transfer *t, const char *path, const char *conninfo)
{
    if (sqlite3_open_v2(path, &t->src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return fail_msg(t, STORE_ERR, "source: %s", t->src ? sqlite3_errmsg(t->src) : "cannot open");
    sqlite3_busy_timeout(t->src, 5000);
    /* One snapshot of the source for the whole copy. */
    if (sqlite3_exec(t->src, "BEGIN; SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK)
        return fail_msg(t, STORE_UNAVAILABLE, "source: %s", sqlite3_errmsg(t->src));
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"10", "steward-migrate-store", conninfo, NULL};
    t->dst = PQconnectdbParams(keys, vals, 1);
    if (!t->dst || PQstatus(t->dst) != CONNECTION_OK)
        return fail_msg(t, STORE_UNAVAILABLE, "target: %s",
                        t->dst ? PQerrorMessage(t->dst) : "out of memory");
    PGresult *res = PQexec(t->dst, "SET client_encoding = 'UTF8'; SET standard_conforming_strings"
                                   " = on; SET client_min_messages = warning");
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? STORE_OK : fail_pg(t, "target: session", res);
    PQclear(res);
    return rc;
}

int store_transfer(const char *from, const char *to, int force, struct store_transfer_report *rep,
                   char **err)
{
    memset(rep, 0, sizeof *rep);
    if (err)
        *err = NULL;
    struct transfer t = {.err = err};
    const char *path = from ? store_dsn_sqlite_path(from) : NULL;
    const char *conninfo = to ? store_dsn_pg_conninfo(to) : NULL;
    if (!path || !*path)
        return fail_msg(&t, STORE_ERR, "--from must be a SQLite database (sqlite:PATH)");
    if (!conninfo)
        return fail_msg(&t, STORE_ERR, "--to must be a PostgreSQL database (postgres:DSN)");
    int vs = 0, vt = 0;
    int rc = migrate_one(from, "source", &vs, err);
    if (rc == STORE_OK)
        rc = migrate_one(to, "target", &vt, err);
    if (rc == STORE_OK && vs != vt)
        rc = fail_msg(&t, STORE_ERR, "schema versions differ after migrating: source %d, target %d",
                      vs, vt);
    rep->schema_version = vs;
    if (rc == STORE_OK)
        rc = open_engines(&t, path, conninfo);
    PGresult *res = NULL;
    if (rc == STORE_OK) {
        res = pg_run(&t, "target: begin", "BEGIN", 0, NULL);
        rc = res ? STORE_OK : STORE_ERR;
        PQclear(res);
    }
    if (rc == STORE_OK)
        rc = plan_tables(&t, rep);
    if (rc == STORE_OK)
        rc = order_tables(&t);
    if (rc == STORE_OK)
        rc = copy_all(&t, force, rep);
    if (rc == STORE_OK) {
        res = pg_run(&t, "target: commit", "COMMIT", 0, NULL);
        rc = res ? STORE_OK : STORE_ERR;
        PQclear(res);
    }
    if (rc == STORE_OK)
        rc = fill_report(&t, rep);
    if (t.dst)
        PQfinish(t.dst); /* an open transaction is rolled back by the server */
    if (t.src) {
        sqlite3_exec(t.src, "COMMIT", NULL, NULL, NULL); /* ends the read snapshot */
        sqlite3_close(t.src);
    }
    free_tables(&t);
    if (rc != STORE_OK) {
        store_transfer_report_free(rep);
        log_error("store transfer failed", "rc=%d", rc);
    }
    return rc;
}

void store_transfer_report_free(struct store_transfer_report *rep)
{
    for (size_t i = 0; i < rep->ntables; i++)
        free(rep->tables[i].name);
    free(rep->tables);
    for (size_t i = 0; i < rep->nsource_only; i++)
        free(rep->source_only[i]);
    free(rep->source_only);
    memset(rep, 0, sizeof *rep);
}
