/* sql.h: the statement layer store areas are written on, inside store/ only.
 * A store area (core.c's tables, push.c, users.c, inventory.c, …)
 * writes its SQL once, in the neutral dialect migrations use (?N parameters,
 * ON CONFLICT upserts), and runs it through these calls; each backend
 * implements them (sqlite.c, and pgsql.c which maps ?N to $N and caches the
 * same statements), so an area needs no per-backend code.
 *
 * PostgreSQL notes for area authors: an error inside store_begin's
 * transaction aborts the whole transaction there (SQLite carries on), so a
 * write that may conflict inside a larger transaction should use ON CONFLICT
 * DO NOTHING and sql_changes, or run inside sql_atomic_begin (a savepoint).
 * store_begin is READ COMMITTED on PostgreSQL, not one global writer as in
 * SQLite: make check-then-write steps one conditional UPDATE. PostgreSQL
 * infers a text parameter's type where it is first used: write
 * "CAST(?1 AS TEXT) IS NULL OR col = ?1", not "?1 IS NULL OR …"; integers
 * are bound as BIGINT. No rowid there (migration 8 adds it to queue and
 * certs only): order by a column of your own.
 *
 * Statements are prepared once per connection, keyed by the address of the
 * SQL text: pass a static string, never a built one. Bind helpers accumulate
 * the first failure in *code (start it at 0); values are bound without a copy
 * and must outlive the statement's use, which ends at sql_exec, at a
 * NOTFOUND/error from sql_first_row, at sql_next_row returning 0 or an error,
 * or at sql_done. Every path that leaves a statement with a row must call
 * sql_done. Column pointers stay valid until the next step or sql_done. */
#ifndef STEWARD_STORE_SQL_H
#define STEWARD_STORE_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "store/migrations.h"

struct store;
struct sql_stmt;

/* NULL with *rc set (and a log line) when the statement cannot be prepared. */
struct sql_stmt *sql_prepare(struct store *s, const char *sql, const char *op, int *rc);

void sql_bind_text(struct sql_stmt *st, int i, const char *v, int *code); /* NULL binds NULL */
void sql_bind_int(struct sql_stmt *st, int i, int64_t v, int *code);
void sql_bind_null(struct sql_stmt *st, int i, int *code);
/* NULL data binds NULL; a non-NULL empty buffer binds an empty blob. */
void sql_bind_blob(struct sql_stmt *st, int i, const uint8_t *v, size_t len, int *code);

/* Runs a statement that returns no rows: STORE_OK or a store_rc. */
int sql_exec(struct store *s, struct sql_stmt *st, const char *op, int code);
/* Steps to the first row: STORE_OK with the row ready (finish with
 * sql_done), STORE_NOTFOUND, or an error. */
int sql_first_row(struct store *s, struct sql_stmt *st, const char *op, int code);
/* For loops over rows after binding: 1 with a row ready, 0 when done, or a
 * negative store_rc. Pass the bind code on the first call, 0 after. */
int sql_next_row(struct store *s, struct sql_stmt *st, const char *op, int code);
void sql_done(struct sql_stmt *st);

int sql_col_is_null(struct sql_stmt *st, int col);
int64_t sql_col_int(struct sql_stmt *st, int col); /* NULL reads as 0 */
const char *sql_col_text(struct sql_stmt *st, int col); /* NULL stays NULL */
/* Copies; NULL stays NULL; *oom is set when a copy fails. */
char *sql_col_strdup(struct sql_stmt *st, int col, int *oom);
uint8_t *sql_col_blobdup(struct sql_stmt *st, int col, size_t *len, int *oom);

/* Rows changed by the last INSERT/UPDATE/DELETE on this connection. */
int64_t sql_changes(struct store *s);

/* Whether the last STORE_CONFLICT came from a foreign key (a referenced row
 * is missing) rather than a uniqueness rule. */
int sql_last_was_fk(struct store *s);

/* The connection's dialect, for the rare statement the two spell
 * differently (row locking: FOR UPDATE SKIP LOCKED exists only in
 * PostgreSQL). Keep both texts static and pick one. */
enum store_dialect sql_dialect(struct store *s);

/* A write of several statements: its own transaction when the caller has
 * none, a savepoint inside the caller's store_begin transaction otherwise.
 * sql_atomic_end commits (rc == STORE_OK) or undoes, and returns the result. */
int sql_atomic_begin(struct store *s, const char *op, int *nested);
int sql_atomic_end(struct store *s, int nested, int rc, const char *op);

/* Logs and returns STORE_ERR for an allocation failure in op. */
int sql_out_of_memory(const char *op);

#endif
