/* sql.c: sql.h's calls, dispatched to the backend of the connection or
 * statement (sqlite.c or pgsql.c) through its function table, plus the parts
 * every backend shares (copies of text columns, the atomic-operation rules).
 * One indirect call per call; nothing here allocates except the copies the
 * caller asks for. */
#include "store/sql.h"

#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/store.h"
#include "util/log.h"

struct sql_stmt *sql_prepare(struct store *s, const char *sql, const char *op, int *rc)
{
    return s->be->prepare(s, sql, op, rc);
}

void sql_bind_text(struct sql_stmt *st, int i, const char *v, int *code)
{
    st->be->bind_text(st, i, v, code);
}

void sql_bind_int(struct sql_stmt *st, int i, int64_t v, int *code)
{
    st->be->bind_int(st, i, v, code);
}

void sql_bind_null(struct sql_stmt *st, int i, int *code)
{
    st->be->bind_null(st, i, code);
}

void sql_bind_blob(struct sql_stmt *st, int i, const uint8_t *v, size_t len, int *code)
{
    st->be->bind_blob(st, i, v, len, code);
}

int sql_exec(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    return s->be->exec(s, st, op, code);
}

int sql_first_row(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    return s->be->first_row(s, st, op, code);
}

int sql_next_row(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    return s->be->next_row(s, st, op, code);
}

void sql_done(struct sql_stmt *st)
{
    st->be->done(st);
}

int sql_col_is_null(struct sql_stmt *st, int col)
{
    return st->be->col_is_null(st, col);
}

int64_t sql_col_int(struct sql_stmt *st, int col)
{
    return st->be->col_int(st, col);
}

const char *sql_col_text(struct sql_stmt *st, int col)
{
    return st->be->col_text(st, col);
}

char *sql_col_strdup(struct sql_stmt *st, int col, int *oom)
{
    const char *v = st->be->col_text(st, col);
    if (!v) {
        /* Text of a non-NULL value is NULL only when converting it failed. */
        if (!st->be->col_is_null(st, col))
            *oom = 1;
        return NULL;
    }
    char *copy = strdup(v);
    if (!copy)
        *oom = 1;
    return copy;
}

uint8_t *sql_col_blobdup(struct sql_stmt *st, int col, size_t *len, int *oom)
{
    return st->be->col_blobdup(st, col, len, oom);
}

int64_t sql_changes(struct store *s)
{
    return s->be->changes(s);
}

int sql_last_was_fk(struct store *s)
{
    return s->be->last_was_fk(s);
}

enum store_dialect sql_dialect(struct store *s)
{
    return s->be->dialect;
}

/* A write of several statements runs in its own transaction when the caller
 * has none, or in a savepoint inside the caller's store_begin transaction. */
int sql_atomic_begin(struct store *s, const char *op, int *nested)
{
    *nested = s->be->in_tx(s);
    if (!*nested)
        store_hooks_run(s, 0); /* left by a transaction the backend ended itself */
    return *nested ? s->be->savepoint(s, op) : s->be->begin(s);
}

static void atomic_abort(struct store *s, int nested, const char *op)
{
    /* An error may already have ended the whole transaction (SQLite rolls
     * back after some errors, a lost PostgreSQL connection takes it along);
     * then there is nothing left to undo here. */
    if (!s->be->in_tx(s)) {
        store_hooks_run(s, 0);
        return;
    }
    if (nested) {
        if (s->be->rollback_to(s, op) == STORE_OK)
            (void)s->be->release(s, op); /* logged by the backend; the first error wins */
    } else {
        (void)s->be->rollback(s); /* logged by the backend; the first error wins */
        store_hooks_run(s, 0);
    }
}

int sql_atomic_end(struct store *s, int nested, int rc, const char *op)
{
    if (rc == STORE_OK) {
        rc = nested ? s->be->release(s, op) : s->be->commit(s);
        if (!nested && rc == STORE_OK)
            store_hooks_run(s, 1);
        if (rc == STORE_OK)
            return STORE_OK;
    }
    atomic_abort(s, nested, op);
    return rc;
}

int sql_out_of_memory(const char *op)
{
    log_error("store out of memory", "op=%s", op);
    return STORE_ERR;
}
