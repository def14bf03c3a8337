/* ca_admin.c: `steward ca init|show|rotate|ra`, run on the server host
 * against a data dir. init makes a CA when there is none (or replaces it
 * with --force), optionally as root + issuing intermediate and with a SCEP
 * RA; rotate makes a new issuing CA and keeps the old one trusted for
 * ca_overlap_days; show prints what is active; ra makes an RA certificate.
 * A running steward picks changes up when restarted. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "pki/pki.h"

#define DEFAULT_CN "Steward Device CA"

struct ca_args {
    const char *dir;
    const char *cn;
    int force, intermediate, ra;
};

static int parse_args(int argc, char **argv, struct ca_args *a)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"cn", required_argument, 0, 'c'},
        {"force", no_argument, 0, 'f'},          {"intermediate", no_argument, 0, 'i'},
        {"ra", no_argument, 0, 'r'},             {0, 0, 0, 0},
    };
    memset(a, 0, sizeof *a);
    a->cn = DEFAULT_CN;
    a->dir = getenv("STEWARD_DATA_DIR");
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': a->dir = optarg; break;
        case 'c': a->cn = optarg; break;
        case 'f': a->force = 1; break;
        case 'i': a->intermediate = 1; break;
        case 'r': a->ra = 1; break;
        default: return -1;
        }
    }
    if (!a->dir || !*a->cn) {
        fputs("steward ca: --data-dir is required\n", stderr);
        return -1;
    }
    return 0;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* Removes a file that --force replaces; a missing file is fine. */
static int remove_file(const char *path)
{
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    fprintf(stderr, "steward ca: cannot remove %s: %s\n", path, strerror(errno));
    return -1;
}

static int fail_msg(const char *what, char *err)
{
    fprintf(stderr, "steward ca %s: %s\n", what, err ? err : "failed");
    free(err);
    return 1;
}

static void ensure_dir_of(const char *path)
{
    char dir[CONFIG_STR];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            fprintf(stderr, "steward ca: cannot create %s: %s\n", dir, strerror(errno));
    }
}

/* A new issuing CA at cert/key: self-signed, or an intermediate of the root
 * (made first when make_root). */
static int create_issuing(const struct config *cfg, const char *cert, const char *key,
                          const char *cn, int intermediate, int make_root, char **err)
{
    if (!intermediate)
        return pki_ca_create(cert, key, cn, err);
    char root_cn[300];
    snprintf(root_cn, sizeof root_cn, "%s Root", cn);
    if (make_root && pki_ca_create(cfg->ca_root_cert, cfg->ca_root_key, root_cn, err) != 0)
        return -1;
    struct pki_ca *root = pki_ca_load(cfg->ca_root_cert, cfg->ca_root_key, err);
    if (!root)
        return -1;
    int rc = pki_ca_create_signed(root, cert, key, cn, err);
    pki_ca_free(root);
    return rc;
}

static int create_ra(const struct config *cfg, char **err)
{
    struct pki_ca *ca = pki_ca_load(cfg->ca_cert, cfg->ca_key, err);
    if (!ca)
        return -1;
    int rc = pki_ca_create_ra(ca, cfg->scep_ra_cert, cfg->scep_ra_key, err);
    pki_ca_free(ca);
    return rc;
}

static int ca_init(const struct config *cfg, const struct ca_args *a)
{
    if (exists(cfg->ca_cert) && !a->force) {
        fprintf(stderr, "steward ca init: a CA exists (%s); --force replaces it (devices it "
                        "issued for stop working)\n", cfg->ca_cert);
        return 1;
    }
    const char *replaced[] = {cfg->ca_cert,      cfg->ca_key,          cfg->ca_root_cert,
                              cfg->ca_root_key,  cfg->ca_previous_cert, cfg->ca_previous_key,
                              cfg->scep_ra_cert, cfg->scep_ra_key};
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++)
        if (remove_file(replaced[i]) != 0)
            return 1;
    ensure_dir_of(cfg->ca_cert);
    char *err = NULL;
    if (create_issuing(cfg, cfg->ca_cert, cfg->ca_key, a->cn, a->intermediate, 1, &err) != 0)
        return fail_msg("init", err);
    if (a->ra && create_ra(cfg, &err) != 0)
        return fail_msg("init", err);
    /* The server certificate chains to the CA: without a CA it is missing
     * or (with --force) issued by a CA that is gone. */
    if (!exists(cfg->tls_cert) || a->force) {
        ensure_dir_of(cfg->tls_cert);
        if (remove_file(cfg->tls_cert) != 0 || remove_file(cfg->tls_key) != 0 ||
            app_issue_server_cert(cfg) != 0)
            return 1;
        printf("server certificate: %s\n", cfg->tls_cert);
    }
    printf("CA created: %s\n", cfg->ca_cert);
    if (a->intermediate)
        printf("root CA: %s (signs the issuing intermediate)\n", cfg->ca_root_cert);
    if (a->ra)
        printf("SCEP RA: %s\n", cfg->scep_ra_cert);
    return 0;
}

static void print_time(const char *label, int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("  %-12s %s\n", label, buf);
}

static void print_cert(const char *title, X509 *x)
{
    struct pki_cert_info i;
    pki_cert_info(x, &i);
    printf("%s\n", title);
    printf("  %-12s %s\n", "subject:", i.subject);
    printf("  %-12s %s\n", "issuer:", i.issuer);
    printf("  %-12s %s\n", "sha256:", i.fingerprint);
    print_time("not before:", i.not_before);
    print_time("not after:", i.not_after);
    printf("  %-12s %s\n", "key:", i.key);
}

static void print_chain(const char *title, STACK_OF(X509) *chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++)
        print_cert(title, sk_X509_value(chain, i));
}

static int ca_show(const struct config *cfg)
{
    char *err = NULL;
    struct pki_ca *ca = NULL;
    if (app_load_ca(cfg, &ca, &err) != 0)
        return fail_msg("show", err);
    print_cert("active CA", ca->cert);
    print_chain("active CA chain", ca->chain);
    if (ca->previous) {
        char title[80];
        snprintf(title, sizeof title, "previous CA (trusted during the overlap window)");
        print_cert(title, ca->previous->cert);
        print_time("trusted until:", ca->previous_until);
    } else if (exists(cfg->ca_previous_cert)) {
        printf("previous CA: %s (overlap window over, no longer trusted)\n",
               cfg->ca_previous_cert);
    }
    if (ca->ra_cert)
        print_cert("SCEP RA", ca->ra_cert);
    if (cfg->device_ca_files[0])
        printf("external device CAs: %s\n", cfg->device_ca_files);
    if (cfg->scep_external_url[0])
        printf("external SCEP URL: %s\n", cfg->scep_external_url);
    pki_ca_free(ca);
    return 0;
}

static int rename_pair(const char *from_cert, const char *from_key, const char *to_cert,
                       const char *to_key)
{
    if (rename(from_key, to_key) != 0 || rename(from_cert, to_cert) != 0) {
        fprintf(stderr, "steward ca rotate: cannot move %s to %s: %s\n", from_cert, to_cert,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int ca_rotate(const struct config *cfg, const struct ca_args *a)
{
    char *err = NULL;
    struct pki_ca *ca = NULL;
    if (app_load_ca(cfg, &ca, &err) != 0)
        return fail_msg("rotate", err);
    int in_overlap = ca->previous != NULL;
    char cn[256] = DEFAULT_CN;
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca->cert), NID_commonName, cn, sizeof cn);
    pki_ca_free(ca);
    if (in_overlap && !a->force) {
        fprintf(stderr, "steward ca rotate: the previous CA is still in its overlap window; "
                        "--force stops trusting it now\n");
        return 1;
    }
    /* Same shape as before: under the root when there is one. */
    int intermediate = exists(cfg->ca_root_cert) && exists(cfg->ca_root_key);
    char new_cert[CONFIG_STR + 8], new_key[CONFIG_STR + 8];
    snprintf(new_cert, sizeof new_cert, "%s.new", cfg->ca_cert);
    snprintf(new_key, sizeof new_key, "%s.new", cfg->ca_key);
    if (remove_file(new_cert) || remove_file(new_key))
        return 1;
    if (create_issuing(cfg, new_cert, new_key, cn, intermediate, 0, &err) != 0)
        return fail_msg("rotate", err);
    if (remove_file(cfg->ca_previous_cert) || remove_file(cfg->ca_previous_key) ||
        rename_pair(cfg->ca_cert, cfg->ca_key, cfg->ca_previous_cert, cfg->ca_previous_key) ||
        rename_pair(new_cert, new_key, cfg->ca_cert, cfg->ca_key))
        return 1;
    /* The RA must chain to the CA clients encrypt and verify against. */
    if (exists(cfg->scep_ra_cert)) {
        if (remove_file(cfg->scep_ra_cert) || remove_file(cfg->scep_ra_key) ||
            create_ra(cfg, &err) != 0)
            return fail_msg("rotate", err);
        printf("SCEP RA reissued: %s\n", cfg->scep_ra_cert);
    }
    printf("CA rotated: new %s, previous %s trusted for %ld days\n"
           "restart steward serve to use it\n",
           cfg->ca_cert, cfg->ca_previous_cert, cfg->ca_overlap_days);
    return 0;
}

static int ca_ra(const struct config *cfg, const struct ca_args *a)
{
    if (exists(cfg->scep_ra_cert) && !a->force) {
        fprintf(stderr, "steward ca ra: %s exists; --force replaces it\n", cfg->scep_ra_cert);
        return 1;
    }
    char *err = NULL;
    if (remove_file(cfg->scep_ra_cert) || remove_file(cfg->scep_ra_key))
        return 1;
    if (create_ra(cfg, &err) != 0)
        return fail_msg("ra", err);
    printf("SCEP RA: %s\n", cfg->scep_ra_cert);
    return 0;
}

int app_ca_admin(const char *sub, int argc, char **argv)
{
    struct ca_args a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    struct config cfg;
    if (app_load_config(&cfg, a.dir, NULL, 0) < 0)
        return 1;
    if (strcmp(sub, "init") == 0)
        return ca_init(&cfg, &a);
    if (strcmp(sub, "show") == 0)
        return ca_show(&cfg);
    if (strcmp(sub, "rotate") == 0)
        return ca_rotate(&cfg, &a);
    return ca_ra(&cfg, &a);
}
