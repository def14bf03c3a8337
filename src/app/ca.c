/* ca.c: `steward ca …`, the CA's local administration. `issue`: a device
 * identity certificate by hand (SCEP does this over the air; tests and Apple
 * Configurator flows need it directly), written to OUT/cert.pem and
 * OUT/key.pem (0600). `init`, `show`, `rotate` and `ra` live in ca_admin.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app.h"
#include "pki/pki.h"

static int ca_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"cn", required_argument, 0, 'c'},
        {"out", required_argument, 0, 'o'},      {"key-type", required_argument, 0, 'k'},
        {"days", required_argument, 0, 'n'},     {0, 0, 0, 0},
    };
    const char *dir = NULL, *cn = NULL, *out = NULL, *kt = "rsa";
    int days = 365, c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'c': cn = optarg; break;
        case 'o': out = optarg; break;
        case 'k': kt = optarg; break;
        case 'n': days = atoi(optarg); break;
        default: return 2;
        }
    }
    if (!dir || !cn || !out || days <= 0 || (strcmp(kt, "rsa") != 0 && strcmp(kt, "ec") != 0)) {
        fputs("steward ca issue: --data-dir, --cn and --out are required; --key-type rsa|ec; "
              "--days > 0\n", stderr);
        return 2;
    }
    struct config cfg;
    if (app_load_config(&cfg, dir, NULL, 0) < 0)
        return 1;
    if (mkdir(out, 0700) < 0 && errno != EEXIST) {
        perror(out);
        return 1;
    }
    char *err = NULL;
    struct pki_ca *ca = pki_ca_load(cfg.ca_cert, cfg.ca_key, &err);
    if (!ca) {
        fprintf(stderr, "steward ca issue: %s\n", err ? err : "cannot load CA");
        free(err);
        return 1;
    }
    struct pki_issue_opts o = {
        .kind = PKI_CERT_CLIENT,
        .key_type = strcmp(kt, "ec") == 0 ? PKI_KEY_EC_P256 : PKI_KEY_RSA2048,
        .common_name = cn, .days = days,
    };
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char cpath[1024], kpath[1024];
    snprintf(cpath, sizeof cpath, "%s/cert.pem", out);
    snprintf(kpath, sizeof kpath, "%s/key.pem", out);
    int rc = pki_issue(ca, &o, &cert, &key, &err);
    if (rc == 0)
        rc = pki_write_key_pem(kpath, key);
    if (rc == 0)
        rc = pki_write_cert_pem(cpath, cert);
    char fp[65] = "";
    if (rc == 0)
        pki_cert_fingerprint(cert, fp);
    X509_free(cert);
    EVP_PKEY_free(key);
    pki_ca_free(ca);
    if (rc < 0) {
        fprintf(stderr, "steward ca issue: %s\n", err ? err : "cannot write files");
        free(err);
        return 1;
    }
    printf("%s\n%s\nsha256:%s\n", cpath, kpath, fp);
    return 0;
}

static void ca_usage(void)
{
    fputs("usage: steward ca init   --data-dir DIR [--intermediate] [--ra] [--cn NAME] [--force]\n"
          "       steward ca show   --data-dir DIR\n"
          "       steward ca rotate --data-dir DIR [--force]\n"
          "       steward ca ra     --data-dir DIR [--force]\n"
          "       steward ca issue  --data-dir DIR --cn NAME --out DIR [--key-type rsa|ec] "
          "[--days N]\n",
          stderr);
}

int app_ca(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";
    if (strcmp(sub, "issue") == 0)
        return ca_issue(argc, argv);
    if (strcmp(sub, "init") == 0 || strcmp(sub, "show") == 0 || strcmp(sub, "rotate") == 0 ||
        strcmp(sub, "ra") == 0)
        return app_ca_admin(sub, argc, argv);
    ca_usage();
    return 2;
}
