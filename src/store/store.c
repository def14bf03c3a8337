/* store.c: store_open's DSN dispatch and the connection calls of store.h
 * every backend shares. Picks the backend from the DSN prefix ("sqlite:" or
 * a bare path → SQLite; "postgres://", "postgresql://" or "postgres:" with a
 * libpq conninfo → PostgreSQL) and hands over to that backend's open; the
 * transaction calls check the nesting rules once and dispatch. Called by
 * app/ at start-up and by each HTTP worker for its own connection. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/migrations.h"
#include "util/log.h"

static void set_err(char **err, const char *msg)
{
    if (err)
        *err = strdup(msg);
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "postgres://…" and "postgresql://…" are libpq URIs as they stand;
 * "postgres:" or "postgresql:" followed by anything else carries a
 * key=value conninfo ("postgres:host=/run/pg dbname=steward"). NULL when the
 * DSN is not PostgreSQL's. */
const char *store_dsn_pg_conninfo(const char *dsn)
{
    if (has_prefix(dsn, "postgres://") || has_prefix(dsn, "postgresql://"))
        return dsn;
    if (has_prefix(dsn, "postgresql:"))
        return dsn + strlen("postgresql:");
    if (has_prefix(dsn, "postgres:"))
        return dsn + strlen("postgres:");
    return NULL;
}

const char *store_dsn_sqlite_path(const char *dsn)
{
    if (store_dsn_pg_conninfo(dsn))
        return NULL;
    const char *path = dsn;
    if (has_prefix(dsn, "sqlite:")) {
        path = dsn + strlen("sqlite:");
        /* "sqlite:///var/lib/x.db" is a common way to write an absolute path. */
        if (has_prefix(path, "//"))
            path += 2;
    }
    return path;
}

int store_dsn_is_postgres(const char *dsn)
{
    return dsn && store_dsn_pg_conninfo(dsn) != NULL;
}

int store_open(const char *dsn, struct store **out, char **err)
{
    if (err)
        *err = NULL;
    if (!out) {
        set_err(err, "store_open: no output pointer");
        return STORE_ERR;
    }
    *out = NULL;
    if (!dsn || !*dsn) {
        set_err(err, "empty database DSN");
        return STORE_ERR;
    }
    const char *conninfo = store_dsn_pg_conninfo(dsn);
    if (conninfo)
        return store_pgsql_open(conninfo, out, err);
    const char *path = store_dsn_sqlite_path(dsn);
    if (!*path) {
        set_err(err, "the sqlite DSN has no file path");
        return STORE_ERR;
    }
    return store_sqlite_open(path, out, err);
}

void store_close(struct store *s)
{
    if (s) {
        store_hooks_run(s, 0); /* a transaction still open is rolled back */
        store_cmd_types_free(s);
        s->be->close(s);
    }
}

int store_ping(struct store *s)
{
    return s->be->ping(s);
}

int store_schema_version(struct store *s)
{
    return s->version;
}

int store_set_lock_wait(struct store *s, int ms)
{
    return s->be->set_lock_wait ? s->be->set_lock_wait(s, ms) : STORE_ERR;
}

const char *store_backend_name(struct store *s)
{
    return s->be->name;
}

/* ---- transactions ----------------------------------------------------------- */

int store_begin(struct store *s)
{
    if (s->be->in_tx(s)) {
        log_error("store error", "op=begin err=\"a transaction is already open\"");
        return STORE_ERR;
    }
    store_hooks_run(s, 0); /* left by a transaction the backend ended itself */
    return s->be->begin(s);
}

int store_begin_read(struct store *s)
{
    if (s->be->in_tx(s)) {
        log_error("store error", "op=begin_read err=\"a transaction is already open\"");
        return STORE_ERR;
    }
    store_hooks_run(s, 0); /* left by a transaction the backend ended itself */
    return s->be->begin_read(s);
}

int store_commit(struct store *s)
{
    if (!s->be->in_tx(s)) {
        log_error("store error", "op=commit err=\"no transaction is open\"");
        return STORE_ERR;
    }
    int rc = s->be->commit(s);
    /* A failed COMMIT can leave the transaction open; callers do not roll
     * back after a failed commit, so end it here. */
    if (rc != STORE_OK && s->be->in_tx(s))
        (void)s->be->rollback(s); /* the commit error wins */
    store_hooks_run(s, rc == STORE_OK);
    return rc;
}

int store_rollback(struct store *s)
{
    /* The backend may have ended the transaction already (SQLite after some
     * errors, a lost PostgreSQL connection); the caller's intent is met. */
    store_hooks_run(s, 0);
    if (!s->be->in_tx(s))
        return STORE_OK;
    return s->be->rollback(s);
}

/* ---- after-commit hooks ----------------------------------------------------- */

struct store_hook {
    void (*fn)(void *arg, int committed);
    void *arg;
    struct store_hook *next;
};

int store_after_commit(struct store *s, void (*fn)(void *arg, int committed), void *arg)
{
    if (!s->be->in_tx(s)) {
        fn(arg, 1);
        return STORE_OK;
    }
    struct store_hook *h = malloc(sizeof *h);
    if (!h) {
        fn(arg, 0);
        log_error("store out of memory", "op=after_commit");
        return STORE_ERR;
    }
    *h = (struct store_hook){fn, arg, NULL};
    struct store_hook **tail = &s->hooks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
    return STORE_OK;
}

void store_hooks_run(struct store *s, int committed)
{
    store_inventory_preread_drop(s);
    /* Detached first: a hook may itself use the store (and register more). */
    struct store_hook *h = s->hooks;
    s->hooks = NULL;
    while (h) {
        struct store_hook *next = h->next;
        h->fn(h->arg, committed);
        free(h);
        h = next;
    }
}
