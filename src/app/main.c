/* main.c: the steward program. Dispatches the subcommand: `init` makes a
 * data dir, `serve` runs the server, `migrate` and `migrate-store` prepare
 * and move the database, `ca` manages the CA (init, show, rotate, ra, issue),
 * `apikey create` adds an admin key. */
#include <stdio.h>
#include <string.h>

#include "app/app.h"

static void usage(FILE *f)
{
    fputs("usage: steward <command> [options]\n"
          "\n"
          "commands:\n"
          "  init   --data-dir DIR [--hostname NAME] [--set option=value]…\n"
          "         create the config file, a CA, the server certificate and an admin API key\n"
          "  serve  --data-dir DIR [--set option=value]… [--ready-file FILE] [-v]\n"
          "         run the server\n"
          "  ca issue --data-dir DIR --cn NAME --out DIR [--key-type rsa|ec] [--days N]\n"
          "         issue a device identity certificate from steward's CA\n"
          "  ca init --data-dir DIR [--intermediate] [--ra] [--cn NAME] [--force]\n"
          "         create the CA when there is none (root + intermediate, SCEP RA)\n"
          "  ca show --data-dir DIR      print the active and previous CA, the RA\n"
          "  ca rotate --data-dir DIR [--force]\n"
          "         new issuing CA; the old one stays trusted for ca_overlap_days\n"
          "  ca ra --data-dir DIR [--force]   create a SCEP RA certificate\n"
          "  apikey create --data-dir DIR --name NAME [--role admin] [--out FILE]\n"
          "         create another admin API key (printed once)\n"
          "  user add|passwd|disable|enable|list [NAME] --data-dir DIR\n"
          "         enrollment portal users (password read from stdin)\n"
          "  admin create|password --data-dir DIR --name NAME [--role viewer|operator|admin]\n"
          "         [--password-file FILE]   a web console account, or its new password\n"
          "  migrate [--data-dir DIR] [--set option=value]…\n"
          "         apply the schema migrations to the configured database and report versions\n"
          "  migrate-store --from sqlite:PATH --to postgres:DSN [--force]\n"
          "         copy a stopped SQLite deployment into PostgreSQL (every table, one transaction)\n"
          "  version\n"
          "\n"
          "Every option of steward.conf can be set with --set option=value or STEWARD_<OPTION>.\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "init") == 0)
        return app_init(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return app_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "ca") == 0)
        return app_ca(argc - 1, argv + 1);
    if (strcmp(cmd, "apikey") == 0)
        return app_apikey(argc - 1, argv + 1);
    if (strcmp(cmd, "user") == 0)
        return app_user(argc - 1, argv + 1);
    if (strcmp(cmd, "admin") == 0)
        return app_admin(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return app_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate-store") == 0)
        return app_migrate_store(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("steward %s\n", STEWARD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "steward: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
