/* backend.h: what a storage backend provides, private to store/. A struct
 * store and a struct sql_stmt both start with a pointer to their backend's
 * table of functions; sql.c and the transaction calls of store.c dispatch
 * through it, so core.c and every area run unchanged on SQLite (sqlite.c)
 * and PostgreSQL (pgsql.c). Nothing here allocates per statement. */
#ifndef STEWARD_STORE_BACKEND_H
#define STEWARD_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "store/migrations.h"

struct store;
struct sql_stmt;

struct store_backend {
    const char *name;
    enum store_dialect dialect;

    /* Statements (sql.h's contract). */
    struct sql_stmt *(*prepare)(struct store *s, const char *sql, const char *op, int *rc);
    void (*bind_text)(struct sql_stmt *st, int i, const char *v, int *code);
    void (*bind_int)(struct sql_stmt *st, int i, int64_t v, int *code);
    void (*bind_null)(struct sql_stmt *st, int i, int *code);
    void (*bind_blob)(struct sql_stmt *st, int i, const uint8_t *v, size_t len, int *code);
    int (*exec)(struct store *s, struct sql_stmt *st, const char *op, int code);
    int (*first_row)(struct store *s, struct sql_stmt *st, const char *op, int code);
    int (*next_row)(struct store *s, struct sql_stmt *st, const char *op, int code);
    void (*done)(struct sql_stmt *st);
    int (*col_is_null)(struct sql_stmt *st, int col);
    int64_t (*col_int)(struct sql_stmt *st, int col);
    const char *(*col_text)(struct sql_stmt *st, int col);
    uint8_t *(*col_blobdup)(struct sql_stmt *st, int col, size_t *len, int *oom);
    int64_t (*changes)(struct store *s);
    /* Whether the last failure was a foreign-key violation. */
    int (*last_was_fk)(struct store *s);

    /* Transactions: in_tx says whether one is open on the connection. */
    int (*in_tx)(struct store *s);
    int (*begin)(struct store *s);      /* a write transaction */
    int (*begin_read)(struct store *s); /* a read-only snapshot */
    int (*commit)(struct store *s);
    int (*rollback)(struct store *s);
    int (*savepoint)(struct store *s, const char *op);
    int (*release)(struct store *s, const char *op);
    int (*rollback_to)(struct store *s, const char *op);

    int (*ping)(struct store *s);
    /* Optional: how long a call waits on another connection's lock. NULL
     * where a call can wait on more than a lock (a network round trip). */
    int (*set_lock_wait)(struct store *s, int ms);
    void (*close)(struct store *s);
};

/* Every backend's connection struct starts with this. */
struct store_hook; /* store.c: one store_after_commit callback */

struct store {
    const struct store_backend *be;
    int version; /* schema version after migrations */
    int version_at_open; /* … and before them (store_transfer.h reports both) */
    struct store_hook *hooks; /* store_after_commit's, oldest first; run at the end */
    struct store_inv_preread *inv_preread; /* store/inventory.c's read-ahead, or NULL */
    struct store_cmd_types *cmd_types;     /* store/cmd_types.c's memo, or NULL */
};

/* The RequestType of a command this handle delivered (store/cmd_types.c):
 * note remembers it (best effort), known returns it or NULL (never seen, or
 * its slot taken since; valid until the next note). Freed by store_close. */
void store_cmd_type_note(struct store *s, const char *uuid, const char *type);
const char *store_cmd_type_known(struct store *s, const char *uuid);
void store_cmd_types_free(struct store *s);

struct store_inv_value;

/* Inventory values a report statement read ahead with the device's row
 * (PostgreSQL, store_queue_report_next_checked with chk->device), for the
 * store_inventory_device_set_and_read of the same enrollment and time in
 * the same transaction: it then runs no statement. put takes v over (also
 * on failure); drop frees what was not used. Dropped by store_hooks_run at
 * the end of every transaction. */
int store_inventory_preread_put(struct store *s, const char *id, int64_t now,
                                struct store_inv_value *v, size_t n, int reported);
void store_inventory_preread_drop(struct store *s);
/* Binds a device's filterable row (store/inv_device_sql.h's columns after
 * enrollment_id, os_version to available_mb) as ?first.. ?first+11; -1 as
 * NULL (unknown). */
struct store_inv_device;
void store_inventory_bind_device_row(struct sql_stmt *st, int first,
                                     const struct store_inv_device *d, int *code);
/* Inventory values from st's rows, name, type and value from column col on
 * (rows without a name skipped); with mark set (a section's name), column
 * col - 1 is the row's section, and a row of section "reported" is not a
 * value but a mark: *reported is set when it names mark. current: st's
 * current row is the first (sql_first_row ran), else the first call steps
 * (code is the bind code then). *out malloc'd (store_inv_values_free); st
 * finished. */
int store_inventory_values_read(struct store *s, struct sql_stmt *st, int code, int current,
                                int col, const char *op, const char *mark,
                                struct store_inv_value **out, size_t *n, int *reported);

/* The outermost transaction ended (committed 1: its COMMIT succeeded; 0:
 * rolled back, failed, or found already gone): runs and frees the
 * store_after_commit hooks. Called by store.c and sql.c wherever they end
 * a transaction, and before a new one begins. */
void store_hooks_run(struct store *s, int committed);

/* Every backend's statement struct starts with this. */
struct sql_stmt {
    const struct store_backend *be;
};

/* Backend entry point (pgsql.c): conninfo is a libpq URI or key=value
 * string. Same contract as store_open. */
int store_pgsql_open(const char *conninfo, struct store **out, char **err);

/* store.c's reading of a DSN (store_open's contract), for transfer.c: the
 * libpq conninfo of a PostgreSQL DSN, or the file path of a SQLite one;
 * NULL when the DSN is of the other kind. */
const char *store_dsn_pg_conninfo(const char *dsn);
const char *store_dsn_sqlite_path(const char *dsn);

#endif
