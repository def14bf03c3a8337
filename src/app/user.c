/* user.c: `steward user add|passwd|disable|enable|list`: enrollment users
 * (the people who sign in to the enrollment portal), managed on the data
 * dir's database directly. Passwords are read from standard input (one
 * line; a prompt without echo on a terminal) and stored as argon2id hashes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "enroll/enroll.h"
#include "store/store.h"
#include "util/password.h"

static const char user_usage[] =
    "usage: steward user add|passwd NAME --data-dir DIR   (password read from stdin)\n"
    "       steward user disable|enable NAME --data-dir DIR\n"
    "       steward user list --data-dir DIR\n";

/* One line from stdin (prompting without echo on a terminal). */
static int read_password(char *out, size_t n)
{
    if (isatty(0)) {
        char *p = getpass("Password: ");
        if (!p || strlen(p) >= n)
            return -1;
        snprintf(out, n, "%s", p);
        memset(p, 0, strlen(p));
    } else if (!fgets(out, (int)n, stdin)) {
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    if (strlen(out) < 8) {
        fputs("steward user: the password needs at least 8 characters\n", stderr);
        return -1;
    }
    return 0;
}

static int set_password(struct store *s, const char *sub, const char *name)
{
    char pw[PASSWORD_MAX_LEN + 2], hash[PASSWORD_HASH_MAX];
    if (read_password(pw, sizeof pw) != 0 || password_hash(pw, hash, sizeof hash) != 0) {
        memset(pw, 0, sizeof pw);
        fputs("steward user: no usable password\n", stderr);
        return 1;
    }
    memset(pw, 0, sizeof pw);
    int64_t now = (int64_t)time(NULL);
    int rc = strcmp(sub, "add") == 0 ? store_enroll_user_add(s, name, hash, now)
                                     : store_enroll_user_set_password(s, name, hash, now);
    if (rc == STORE_CONFLICT)
        fprintf(stderr, "steward user: %s exists\n", name);
    else if (rc == STORE_NOTFOUND)
        fprintf(stderr, "steward user: no user %s\n", name);
    else if (rc != STORE_OK)
        fputs("steward user: cannot store the user\n", stderr);
    else
        printf("%s %s\n", strcmp(sub, "add") == 0 ? "added" : "password changed for", name);
    return rc == STORE_OK ? 0 : 1;
}

static int list_users(struct store *s)
{
    struct store_enroll_user *u = NULL;
    size_t n = 0;
    if (store_enroll_user_list(s, &u, &n) != STORE_OK) {
        fputs("steward user: cannot list users\n", stderr);
        return 1;
    }
    printf("%-32s %-9s %s\n", "NAME", "STATE", "LAST SIGN-IN");
    for (size_t i = 0; i < n; i++) {
        char when[32] = "never";
        time_t t = (time_t)u[i].last_sign_in_at;
        struct tm tm;
        if (t && gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%-32s %-9s %s\n", u[i].name, u[i].disabled ? "disabled" : "active", when);
    }
    store_enroll_user_list_free(u, n);
    return 0;
}

static int run(struct store *s, const char *sub, const char *name)
{
    if (strcmp(sub, "list") == 0)
        return list_users(s);
    if (strcmp(sub, "add") == 0 || strcmp(sub, "passwd") == 0)
        return set_password(s, sub, name);
    int dis = strcmp(sub, "disable") == 0;
    int rc = store_enroll_user_set_disabled(s, name, dis, (int64_t)time(NULL));
    if (rc == STORE_NOTFOUND)
        fprintf(stderr, "steward user: no user %s\n", name);
    else if (rc != STORE_OK)
        fputs("steward user: cannot update the user\n", stderr);
    else
        printf("%s %s\n", dis ? "disabled" : "enabled", name);
    return rc == STORE_OK ? 0 : 1;
}

int app_user(int argc, char **argv)
{
    static const struct option opts[] = {{"data-dir", required_argument, 0, 'd'}, {0, 0, 0, 0}};
    const char *dir = NULL, *name = NULL;
    const char *sub = argc >= 2 ? argv[1] : "";
    static const char *const subs[] = {"add", "passwd", "disable", "enable", "list"};
    int known = 0;
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        known |= strcmp(sub, subs[i]) == 0;
    if (!known) {
        fputs(user_usage, stderr);
        return 2;
    }
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'd') {
            fputs(user_usage, stderr);
            return 2;
        }
        dir = optarg;
    }
    if (optind < argc)
        name = argv[optind++];
    if (!dir || (strcmp(sub, "list") != 0 && !name) || optind < argc) {
        fputs(user_usage, stderr);
        return 2;
    }
    if (name && !enroll_user_name_ok(name)) {
        fputs("steward user: a name is 1-64 letters, digits, '.', '_', '@' or '-'\n", stderr);
        return 2;
    }
    struct store *s = NULL;
    if (app_open_store(dir, &s) < 0)
        return 1;
    int rc = run(s, sub, name);
    store_close(s);
    return rc;
}
