/* migrations.h: the versioned schema shared by every store backend, and the
 * backend entry points store.c dispatches to. Each migration is SQL text in a
 * neutral dialect with a few {{TOKENS}} that store_migration_render() expands
 * for SQLite or PostgreSQL; a backend applies, in order and in one transaction,
 * every migration newer than the version recorded in its schema_version table. */
#ifndef STEWARD_STORE_MIGRATIONS_H
#define STEWARD_STORE_MIGRATIONS_H

#include <stddef.h>
#include <stdint.h>

struct store;

enum store_dialect {
    STORE_DIALECT_SQLITE,
    STORE_DIALECT_POSTGRES,
};

struct store_migration {
    int version;      /* 1, 2, 3, … with no gaps */
    const char *name; /* short description for logs */
    const char *sql;  /* ';'-separated statements, dialect tokens unexpanded */
};

/* The migrations in ascending version order. */
extern const struct store_migration store_migrations[];
extern const size_t store_migrations_count;

/* The version the newest migration brings the schema to. */
int store_migrations_latest(void);
/* 0 when a database at version can be opened by this program; -1 (logged,
 * *err set when err is not NULL) when its schema is newer. */
int store_migrations_check_version(int version, char **err);

/* Expands the dialect tokens of sql into a malloc'd string (caller frees):
 *   {{ID}}    an auto-assigned 64-bit integer primary key
 *   {{BLOB}}  a binary column type
 *   {{PG}}…{{/PG}}  statements for PostgreSQL only
 * Returns NULL when out of memory or when sql holds an unknown token. */
char *store_migration_render(const char *sql, enum store_dialect dialect);

/* The schema_version table itself, created before any migration runs. */
extern const char store_schema_version_sql[];

/* Backend entry point (sqlite.c): path is a file name, not a DSN. Same
 * contract as store_open. */
int store_sqlite_open(const char *path, struct store **out, char **err);

#endif
