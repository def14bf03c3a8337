/* config_load.c: configuration for a data dir, in precedence order:
 * built-in defaults < DATA/steward.conf < STEWARD_* environment < --set flags;
 * and app_open_store, the command-line tools' configuration + database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "store/store.h"

int app_load_config(struct config *cfg, const char *data_dir, char **sets, int nsets)
{
    config_defaults(cfg, data_dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/steward.conf", data_dir);
    char *err = NULL;
    if (access(path, F_OK) == 0 && config_load_file(cfg, path, &err) < 0)
        goto fail;
    if (config_apply_env(cfg, &err) < 0)
        goto fail;
    for (int i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            fprintf(stderr, "steward: --set wants option=value, got '%s'\n", sets[i]);
            return -1;
        }
        *eq = '\0';
        int rc = config_set(cfg, sets[i], eq + 1, &err);
        *eq = '=';
        if (rc < 0)
            goto fail;
    }
    config_resolve_paths(cfg);
    return 0;
fail:
    fprintf(stderr, "steward: %s\n", err ? err : "configuration error");
    free(err);
    return -1;
}

int app_open_store(const char *data_dir, struct store **s)
{
    *s = NULL;
    struct config cfg;
    if (app_load_config(&cfg, data_dir, NULL, 0) < 0)
        return -1;
    char *err = NULL;
    if (store_open(cfg.database, s, &err) != STORE_OK) {
        fprintf(stderr, "steward: cannot open database: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}
