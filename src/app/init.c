/* init.c: `steward init --data-dir DIR`. Creates, once, everything a server
 * needs to start: the documented config file, a CA (key 0600), a server
 * certificate for the configured host name signed by that CA, the database,
 * and an admin API key printed once (stored hashed). */
#include <errno.h>
#include <openssl/pem.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "pki/pki.h"
#include "store/store.h"

int app_write_secret_file(const char *path, const char *secret);

static int make_dir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0 || errno == EEXIST)
        return 0;
    fprintf(stderr, "steward init: cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

/* The server presents its certificate followed by the CA, so clients that
 * trust the CA only need the CA file. */
int app_issue_server_cert(const struct config *cfg)
{
    char *err = NULL;
    struct pki_ca *ca = pki_ca_load(cfg->ca_cert, cfg->ca_key, &err);
    if (!ca)
        goto fail;
    struct pki_issue_opts o = {
        .kind = PKI_CERT_SERVER, .key_type = PKI_KEY_EC_P256,
        .common_name = cfg->hostname, .dns_name = cfg->hostname, .days = 825,
    };
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = pki_issue(ca, &o, &cert, &key, &err);
    if (rc == 0)
        rc = pki_write_key_pem(cfg->tls_key, key);
    if (rc == 0)
        rc = pki_write_cert_pem(cfg->tls_cert, cert);
    if (rc == 0) {
        FILE *f = fopen(cfg->tls_cert, "a");
        rc = f && PEM_write_X509(f, ca->cert) == 1 ? 0 : -1;
        if (f && fclose(f) != 0)
            rc = -1;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    pki_ca_free(ca);
    if (rc == 0)
        return 0;
fail:
    fprintf(stderr, "steward init: server certificate: %s\n", err ? err : "cannot write files");
    free(err);
    return -1;
}

int app_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"hostname", required_argument, 0, 'H'},
        {"set", required_argument, 0, 's'},      {"api-key-file", required_argument, 0, 'k'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL, *hostname = NULL, *keyfile = NULL;
    char *sets[64];
    int nsets = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'H': hostname = optarg; break;
        case 'k': keyfile = optarg; break;
        case 's':
            if (nsets < 64)
                sets[nsets++] = optarg;
            break;
        default: return 2;
        }
    }
    if (!dir) {
        fputs("usage: steward init --data-dir DIR [--hostname NAME] [--set option=value]… "
              "[--api-key-file FILE]\n", stderr);
        return 2;
    }
    char conf[1024];
    snprintf(conf, sizeof conf, "%s/steward.conf", dir);
    if (access(conf, F_OK) == 0) {
        fprintf(stderr, "steward init: %s already exists; this data dir is initialised\n", conf);
        return 1;
    }
    if (make_dir(dir, 0700) < 0)
        return 1;

    struct config cfg;
    config_defaults(&cfg, dir);
    char *err = NULL;
    if (hostname && config_set(&cfg, "hostname", hostname, &err) < 0)
        goto fail;
    for (int i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            fprintf(stderr, "steward init: --set wants option=value\n");
            return 2;
        }
        *eq = '\0';
        if (config_set(&cfg, sets[i], eq + 1, &err) < 0)
            goto fail;
    }
    if (config_write_file(&cfg, conf) < 0) {
        fprintf(stderr, "steward init: cannot write %s: %s\n", conf, strerror(errno));
        return 1;
    }
    config_resolve_paths(&cfg);

    char sub[1100];
    snprintf(sub, sizeof sub, "%s/ca", dir);
    if (make_dir(sub, 0700) < 0)
        return 1;
    snprintf(sub, sizeof sub, "%s/tls", dir);
    if (make_dir(sub, 0700) < 0)
        return 1;
    if (pki_ca_create(cfg.ca_cert, cfg.ca_key, "Steward Device CA", &err) < 0)
        goto fail;
    if (app_issue_server_cert(&cfg) < 0)
        return 1;

    struct store *s = NULL;
    if (store_open(cfg.database, &s, &err) != STORE_OK)
        goto fail;
    char key[80];
    int rc = app_apikey_new(s, "admin", "admin", key, sizeof key);
    store_close(s);
    if (rc < 0) {
        fputs("steward init: cannot store the admin API key\n", stderr);
        return 1;
    }
    printf("Initialised %s\n  config:  %s\n  CA:      %s\n  server:  %s (for %s)\n", dir, conf,
           cfg.ca_cert, cfg.tls_cert, cfg.hostname);
    if (keyfile) {
        if (app_write_secret_file(keyfile, key) < 0) {
            perror(keyfile);
            return 1;
        }
        printf("  admin API key written to %s\n", keyfile);
    } else {
        printf("  admin API key (shown once, store it now): %s\n", key);
    }
    return 0;
fail:
    fprintf(stderr, "steward init: %s\n", err ? err : "failed");
    free(err);
    return 1;
}
