/* store_transfer.h: moving a deployment between databases, and what
 * `steward migrate` reports. store_transfer copies every table a SQLite
 * database and a PostgreSQL database both have (after migrating both to this
 * program's schema), column by column by name, in one transaction on the
 * target: whatever areas add to the schema later moves too, without a list
 * here. Used by app/migrate.c (`steward migrate`, `steward migrate-store`). */
#ifndef STEWARD_STORE_TRANSFER_H
#define STEWARD_STORE_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* One row of schema_version: which migration, applied when. */
struct store_schema_step {
    int version;
    int64_t applied_at;
};

/* The migrations recorded in s, in version order (*out malloc'd, caller
 * frees; NULL with *n = 0 when there are none). STORE_OK or a store_rc. */
int store_schema_history(struct store *s, struct store_schema_step **out, size_t *n);
/* The version this connection found before store_open migrated it. */
int store_schema_version_at_open(struct store *s);

/* What a transfer copied, table by table in the order it copied them. */
struct store_transfer_table {
    char *name;
    int64_t rows;
    int64_t bytes; /* bytes of text and blob values */
};

struct store_transfer_report {
    struct store_transfer_table *tables;
    size_t ntables;
    int64_t rows, bytes;
    int schema_version;
    char **source_only; /* tables the target does not have: not copied */
    size_t nsource_only;
    int cleared; /* --force emptied a target that held rows */
};

/* Copies from (a SQLite DSN: "sqlite:PATH" or a path) into to (a PostgreSQL
 * DSN), both migrated to this program's schema first. Refuses (STORE_CONFLICT,
 * *err naming the tables) a target whose copied tables hold rows unless
 * force, which empties them first. All or nothing: one transaction on the
 * target, whose row counts are checked against the source before it
 * commits; identity columns keep their values and their sequences continue
 * after them; PostgreSQL's rowid stand-ins (migration 9) get SQLite's rowid,
 * so insertion order survives. Stop every node first: rows written to the
 * source during the copy are not moved. STORE_OK with *rep filled (free it
 * with store_transfer_report_free), or a store_rc with *err (malloc'd). */
int store_transfer(const char *from, const char *to, int force, struct store_transfer_report *rep,
                   char **err);
void store_transfer_report_free(struct store_transfer_report *rep);

#endif
