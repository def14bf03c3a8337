/* issue.c: bench-issue, the check-in benchmark's bulk certificate issuer.
 * Issues N device identity certificates from steward's CA with pki_issue (one
 * process, no per-certificate exec of `steward ca issue`) and writes them to
 * one PEM file as certificate+key pairs whose CN is the device UDID.
 * Called by bench/checkin/run; bench-loadgen reads the file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "pki/pki.h"

struct issue_args {
    const char *ca_cert, *ca_key, *out, *prefix;
    int start, count;
    enum pki_key_type key_type;
};

static int parse_args(int argc, char **argv, struct issue_args *a)
{
    static const struct option opts[] = {
        {"ca-cert", required_argument, 0, 'c'}, {"ca-key", required_argument, 0, 'k'},
        {"out", required_argument, 0, 'o'},     {"prefix", required_argument, 0, 'p'},
        {"start", required_argument, 0, 's'},   {"count", required_argument, 0, 'n'},
        {"key-type", required_argument, 0, 't'}, {0, 0, 0, 0},
    };
    *a = (struct issue_args){.prefix = "BENCH-LIVE", .count = 1, .key_type = PKI_KEY_RSA2048};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->ca_cert = optarg; break;
        case 'k': a->ca_key = optarg; break;
        case 'o': a->out = optarg; break;
        case 'p': a->prefix = optarg; break;
        case 's': a->start = atoi(optarg); break;
        case 'n': a->count = atoi(optarg); break;
        case 't':
            if (strcmp(optarg, "ec") == 0)
                a->key_type = PKI_KEY_EC_P256;
            else if (strcmp(optarg, "rsa") == 0)
                a->key_type = PKI_KEY_RSA2048;
            else
                return -1;
            break;
        default: return -1;
        }
    }
    return a->ca_cert && a->ca_key && a->out && a->count > 0 && a->start >= 0 ? 0 : -1;
}

/* One device: a fresh key and certificate, appended to f. */
static int issue_one(const struct pki_ca *ca, const struct issue_args *a, int n, FILE *f)
{
    char cn[96];
    snprintf(cn, sizeof cn, "%s-%06d", a->prefix, n);
    struct pki_issue_opts o = {
        .kind = PKI_CERT_CLIENT, .key_type = a->key_type, .common_name = cn, .days = 30,
    };
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char *err = NULL;
    int rc = pki_issue(ca, &o, &cert, &key, &err);
    if (rc == 0 && (PEM_write_X509(f, cert) != 1 ||
                    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1))
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "bench-issue: %s: %s\n", cn, err ? err : "cannot write");
    free(err);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int main(int argc, char **argv)
{
    struct issue_args a;
    if (parse_args(argc, argv, &a) < 0) {
        fputs("usage: bench-issue --ca-cert PEM --ca-key PEM --out FILE [--count N] [--start K]\n"
              "                   [--prefix UDIDPREFIX] [--key-type rsa|ec]\n", stderr);
        return 2;
    }
    char *err = NULL;
    struct pki_ca *ca = pki_ca_load(a.ca_cert, a.ca_key, &err);
    if (!ca) {
        fprintf(stderr, "bench-issue: %s\n", err ? err : "cannot load CA");
        free(err);
        return 1;
    }
    FILE *f = fopen(a.out, "w");
    if (!f) {
        perror(a.out);
        pki_ca_free(ca);
        return 1;
    }
    int rc = 0;
    for (int i = a.start; i < a.start + a.count && rc == 0; i++)
        rc = issue_one(ca, &a, i, f);
    if (fclose(f) != 0)
        rc = -1;
    pki_ca_free(ca);
    return rc == 0 ? 0 : 1;
}
