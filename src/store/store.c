/* store.c: store_open's DSN dispatch. Picks the backend from the DSN prefix
 * ("sqlite:" or a bare path → SQLite; "postgres:"/"postgresql:" → not built
 * yet) and hands over to that backend's open. Called by app/ at start-up and
 * by each HTTP worker for its own connection. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/migrations.h"

static void set_err(char **err, const char *msg)
{
    if (err)
        *err = strdup(msg);
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
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
    if (has_prefix(dsn, "postgres:") || has_prefix(dsn, "postgresql:")) {
        set_err(err, "the PostgreSQL backend is not built yet; use sqlite:/path/to/steward.db");
        return STORE_ERR;
    }
    const char *path = dsn;
    if (has_prefix(dsn, "sqlite:")) {
        path = dsn + strlen("sqlite:");
        /* "sqlite:///var/lib/x.db" is a common way to write an absolute path. */
        if (has_prefix(path, "//"))
            path += 2;
    }
    if (!*path) {
        set_err(err, "the sqlite DSN has no file path");
        return STORE_ERR;
    }
    return store_sqlite_open(path, out, err);
}
