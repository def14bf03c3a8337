/* migrate.c: `steward migrate` brings the configured database (SQLite or
 * PostgreSQL) to this program's schema and reports the versions, without
 * serving (serve migrates on start too; this lets an operator do it first,
 * once, before rolling out several nodes). `steward migrate-store` moves a
 * deployment from SQLite to PostgreSQL (store/transfer.c does the copy). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store/store_transfer.h"
#include "util/log.h"

static const char migrate_usage[] =
    "usage: steward migrate [--data-dir DIR] [--set option=value]…\n";

/* Lists the migrations the database records, marking those this run
 * applied (newer than the version it found). */
static int print_history(struct store *s)
{
    struct store_schema_step *steps = NULL;
    size_t n = 0;
    if (store_schema_history(s, &steps, &n) != STORE_OK) {
        fputs("steward: cannot read the schema history\n", stderr);
        return -1;
    }
    int before = store_schema_version_at_open(s);
    for (size_t i = 0; i < n; i++) {
        time_t at = (time_t)steps[i].applied_at;
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&at, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("  %3d  %s%s\n", steps[i].version, when,
               steps[i].version > before ? "  (applied now)" : "");
    }
    free(steps);
    if (store_schema_version(s) > before)
        printf("migrated from version %d to %d\n", before, store_schema_version(s));
    else
        printf("already up to date\n");
    return 0;
}

int app_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'},
        {"set", required_argument, 0, 's'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL;
    char *sets[64];
    int nsets = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 's':
            if (nsets < 64)
                sets[nsets++] = optarg;
            break;
        default: fputs(migrate_usage, stderr); return 2;
        }
    }
    if (!dir)
        dir = getenv("STEWARD_DATA_DIR");
    if (!dir)
        dir = ".";
    struct config cfg;
    if (app_load_config(&cfg, dir, sets, nsets) < 0)
        return 1;
    log_set_level(LOG_WARN); /* the report below says what happened */
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(cfg.database, &s, &err) != STORE_OK) {
        fprintf(stderr, "steward: cannot migrate the database: %s\n", err ? err : "?");
        free(err);
        return 1;
    }
    printf("database: %s\n", store_backend_name(s));
    printf("schema version: %d (this program's latest: %d)\n", store_schema_version(s),
           store_migrations_latest());
    int rc = print_history(s);
    store_close(s);
    return rc < 0 ? 1 : 0;
}

static const char transfer_usage[] =
    "usage: steward migrate-store --from sqlite:PATH --to postgres:DSN [--force]\n"
    "  copies every table of a stopped SQLite deployment into PostgreSQL, in one transaction;\n"
    "  refuses a target that holds data unless --force (which replaces it)\n";

int app_migrate_store(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"force", no_argument, 0, 'F'},
        {"verbose", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    const char *from = NULL, *to = NULL;
    int force = 0, verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (c) {
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'F': force = 1; break;
        case 'v': verbose = 1; break;
        default: fputs(transfer_usage, stderr); return 2;
        }
    }
    if (!from || !to || optind != argc) {
        fputs(transfer_usage, stderr);
        return 2;
    }
    log_set_level(verbose ? LOG_INFO : LOG_WARN);
    struct store_transfer_report rep;
    char *err = NULL;
    int rc = store_transfer(from, to, force, &rep, &err);
    if (rc != STORE_OK) {
        fprintf(stderr, "steward: migrate-store: %s\n", err ? err : "failed");
        free(err);
        return rc == STORE_CONFLICT ? 3 : 1;
    }
    printf("schema version %d; copied %zu tables, %lld rows, %lld bytes of values%s\n",
           rep.schema_version, rep.ntables, (long long)rep.rows, (long long)rep.bytes,
           rep.cleared ? " (the target's previous contents were replaced)" : "");
    for (size_t i = 0; i < rep.ntables; i++)
        printf("  %-24s %10lld rows %12lld bytes\n", rep.tables[i].name,
               (long long)rep.tables[i].rows, (long long)rep.tables[i].bytes);
    for (size_t i = 0; i < rep.nsource_only; i++)
        printf("  %-24s not in the target's schema: not copied\n", rep.source_only[i]);
    store_transfer_report_free(&rep);
    return 0;
}
