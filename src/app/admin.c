/* admin.c: `steward admin create|password`: console accounts made on the
 * server itself (the first admin, or a locked-out one's new password),
 * written straight to the database with an argon2id hash. The password comes
 * from a file or STEWARD_ADMIN_PASSWORD, never the command line. The API
 * (/api/v1/users) does the same for a running server. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "store/store.h"
#include "util/password.h"

/* The password from --password-file (first line) or the environment. */
static int read_password(const char *file, char *out, size_t n)
{
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            perror(file);
            return -1;
        }
        char *ok = fgets(out, (int)n, f);
        fclose(f);
        if (!ok)
            return -1;
        out[strcspn(out, "\r\n")] = '\0';
    } else {
        const char *e = getenv("STEWARD_ADMIN_PASSWORD");
        if (!e || strlen(e) >= n)
            return -1;
        strcpy(out, e);
    }
    return strlen(out) >= 8 ? 0 : -1;
}

static int role_ok(const char *r)
{
    return strcmp(r, "viewer") == 0 || strcmp(r, "operator") == 0 || strcmp(r, "admin") == 0;
}

int app_admin(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"name", required_argument, 0, 'n'},
        {"role", required_argument, 0, 'r'},     {"password-file", required_argument, 0, 'p'},
        {0, 0, 0, 0},
    };
    const char *usage = "usage: steward admin create|password --data-dir DIR --name NAME "
                        "[--role viewer|operator|admin] [--password-file FILE]\n"
                        "       (the password: the file's first line, or STEWARD_ADMIN_PASSWORD; at least 8 characters)\n";
    if (argc < 2 || (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "password") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    int create = strcmp(argv[1], "create") == 0;
    const char *dir = NULL, *name = NULL, *role = NULL, *pwfile = NULL;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'n': name = optarg; break;
        case 'r': role = optarg; break;
        case 'p': pwfile = optarg; break;
        default: return 2;
        }
    }
    if (!dir || !name || (role && !role_ok(role))) {
        fputs(usage, stderr);
        return 2;
    }
    char pw[PASSWORD_MAX_LEN + 2], hash[PASSWORD_HASH_MAX];
    if (read_password(pwfile, pw, sizeof pw) < 0) {
        fputs("steward admin: no password of at least 8 characters (--password-file or "
              "STEWARD_ADMIN_PASSWORD)\n", stderr);
        return 2;
    }
    int hrc = password_hash(pw, hash, sizeof hash);
    memset(pw, 0, sizeof pw);
    if (hrc < 0) {
        fputs("steward admin: cannot hash the password\n", stderr);
        return 1;
    }
    struct store *s = NULL;
    if (app_open_store(dir, &s) < 0)
        return 1;
    int rc = create ? store_admin_user_add(s, name, hash, role ? role : "admin", (int64_t)time(NULL))
                    : store_admin_user_update(s, name, hash, role);
    char key[200];
    snprintf(key, sizeof key, "user:%s", name);
    if (rc == STORE_OK && !create) /* a new password lifts a sign-in lock-out */
        rc = store_web_throttle_unlock(s, "console", key);
    store_close(s);
    if (rc == STORE_CONFLICT)
        fprintf(stderr, "steward admin: user %s exists (use `steward admin password`)\n", name);
    else if (rc == STORE_NOTFOUND)
        fprintf(stderr, "steward admin: no user %s\n", name);
    else if (rc != STORE_OK)
        fputs("steward admin: cannot store the user\n", stderr);
    else
        printf("%s %s\n", create ? "created" : "updated", name);
    return rc == STORE_OK ? 0 : 1;
}
