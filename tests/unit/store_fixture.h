/* store_fixture.h: the database a store-backed unit test runs on. By default a
 * fresh SQLite file in the test's mkdtemp directory; when STEWARD_TEST_DSN
 * names a PostgreSQL database (tests/pg/run.sh sets it), that database,
 * emptied first, so the same behavioural tests run on both backends. Also a
 * separate raw connection for counting rows the API does not expose.
 * Included by the store-backed unit tests. */
#ifndef STEWARD_TEST_STORE_FIXTURE_H
#define STEWARD_TEST_STORE_FIXTURE_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* The PostgreSQL DSN under test, or NULL for SQLite. */
static inline const char *fixture_pg_dsn(void)
{
    const char *d = getenv("STEWARD_TEST_DSN");
    return d && (strncmp(d, "postgres", 8) == 0) ? d : NULL;
}

static inline int fixture_is_pg(void)
{
    return fixture_pg_dsn() != NULL;
}

/* Runs sql on a separate connection; with out, reads the first value of the
 * first row as an integer. -1 on failure (printed). */
static inline int fixture_raw(const char *dsn, const char *sql, int64_t *out)
{
    if (strncmp(dsn, "postgres", 8) == 0) {
        PGconn *c = PQconnectdb(dsn);
        PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
        int ok = r && (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK);
        if (ok && out) {
            ok = PQntuples(r) > 0;
            if (ok)
                *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        }
        if (!ok)
            fprintf(stderr, "fixture_raw: %s: %s\n", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return ok ? 0 : -1;
    }
    const char *path = strncmp(dsn, "sqlite:", 7) == 0 ? dsn + 7 : dsn;
    sqlite3 *db = NULL;
    int ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK;
    sqlite3_stmt *st = NULL;
    ok = ok && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;
    int step = ok ? sqlite3_step(st) : SQLITE_ERROR;
    if (out) {
        ok = step == SQLITE_ROW;
        if (ok)
            *out = sqlite3_column_int64(st, 0);
    } else {
        ok = step == SQLITE_DONE || step == SQLITE_ROW;
    }
    if (!ok)
        fprintf(stderr, "fixture_raw: %s: %s\n", sql, db ? sqlite3_errmsg(db) : "?");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok ? 0 : -1;
}

/* Fills dsn for a test whose temp dir is dir: SQLite's file there, or the
 * PostgreSQL database with its schema dropped (every test starts empty). */
static inline int fixture_dsn(const char *dir, char *dsn, size_t n)
{
    const char *pg = fixture_pg_dsn();
    if (!pg) {
        snprintf(dsn, n, "sqlite:%s/steward.db", dir);
        return 0;
    }
    snprintf(dsn, n, "%s", pg);
    return fixture_raw(pg, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public", NULL);
}

/* The usual setup: a temp dir named after the test and a store open on
 * the backend under test. Tests keep a struct store_test * as cmocka state. */
struct store_test {
    char dir[64];
    char dsn[256];
    struct store *s;
};

static inline int store_test_setup(void **state, const char *name)
{
    struct store_test *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/%s.XXXXXX", name);
    char *err = NULL;
    if (!mkdtemp(f->dir) || fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0 ||
        store_open(f->dsn, &f->s, &err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int store_test_teardown(void **state)
{
    struct store_test *f = *state;
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

#endif
