/* apikey.c: admin API keys. A key is "stw_" + 64 random hex characters,
 * shown once; the store keeps only its SHA-256 (api/auth.c hashes what a
 * client presents and looks that up). `steward apikey create` and init use it. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "store/store.h"
#include "util/ids.h"

int app_apikey_new(struct store *s, const char *name, const char *role, char *key, size_t keylen)
{
    char secret[65];
    if (keylen < 72 || ids_random_hex(32, secret) < 0)
        return -1;
    snprintf(key, keylen, "stw_%s", secret);
    char hash[65];
    ids_sha256_hex((const uint8_t *)key, strlen(key), hash);
    return store_apikey_add(s, name, hash, role, (int64_t)time(NULL)) == STORE_OK ? 0 : -1;
}

/* Writes the key to a new 0600 file (for scripts) instead of the terminal. */
int app_write_secret_file(const char *path, const char *secret);
int app_write_secret_file(const char *path, const char *secret)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(secret);
    int ok = write(fd, secret, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    return close(fd) == 0 && ok ? 0 : -1;
}

int app_apikey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"name", required_argument, 0, 'n'},
        {"role", required_argument, 0, 'r'},     {"out", required_argument, 0, 'o'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL, *name = NULL, *role = "admin", *out = NULL;
    int c;
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fputs("usage: steward apikey create --data-dir DIR --name NAME [--role admin] [--out FILE]\n", stderr);
        return 2;
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'n': name = optarg; break;
        case 'r': role = optarg; break;
        case 'o': out = optarg; break;
        default: return 2;
        }
    }
    if (!dir || !name) {
        fputs("steward apikey create: --data-dir and --name are required\n", stderr);
        return 2;
    }
    struct store *s = NULL;
    if (app_open_store(dir, &s) < 0)
        return 1;
    char key[80];
    int rc = app_apikey_new(s, name, role, key, sizeof key);
    store_close(s);
    if (rc < 0) {
        fputs("steward: cannot store the API key\n", stderr);
        return 1;
    }
    if (out) {
        if (app_write_secret_file(out, key) < 0) {
            perror(out);
            return 1;
        }
    } else {
        printf("%s\n", key);
    }
    return 0;
}
