/* push_cert.c: `steward push-cert csr` and `steward push-cert sign-request`,
 * the two steps before Apple's Push Certificates Portal (docs/push.md):
 * the customer makes a key and a CSR; the MDM vendor signs the CSR with its
 * MDM vendor key and wraps it as the base64 plist the portal accepts
 * (PushCertRequestCSR: the CSR DER in base64; PushCertCertificateChain: the
 * vendor certificate and its chain up to Apple's root, PEM;
 * PushCertSignature: SHA-256 RSA signature of the CSR DER, base64). */
#include <getopt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app.h"
#include "util/ids.h"

static int write_file(const char *path, const void *data, size_t len, int mode)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "steward push-cert: cannot write %s\n", path);
        return -1;
    }
    int ok = fwrite(data, 1, len, f) == len;
    ok &= fclose(f) == 0;
    if (ok && mode)
        ok = chmod(path, (mode_t)mode) == 0;
    if (!ok)
        fprintf(stderr, "steward push-cert: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* `push-cert csr --key-out FILE --csr-out FILE [--cn NAME] [--email ADDR]` */
static int cmd_csr(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key-out", required_argument, 0, 'k'}, {"csr-out", required_argument, 0, 'c'},
        {"cn", required_argument, 0, 'n'},      {"email", required_argument, 0, 'e'},
        {0, 0, 0, 0},
    };
    const char *key_out = NULL, *csr_out = NULL, *cn = "Steward MDM push", *email = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key_out = optarg; break;
        case 'c': csr_out = optarg; break;
        case 'n': cn = optarg; break;
        case 'e': email = optarg; break;
        default: return 2;
        }
    }
    if (!key_out || !csr_out) {
        fputs("usage: steward push-cert csr --key-out FILE --csr-out FILE [--cn NAME] [--email ADDR]\n",
              stderr);
        return 2;
    }
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    BIO *kb = BIO_new(BIO_s_mem()), *rb = BIO_new(BIO_s_mem());
    int ok = key && req && name && kb && rb &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                        -1, 0) == 1 &&
             (!email || X509_NAME_add_entry_by_txt(name, "emailAddress", MBSTRING_ASC,
                                                   (const unsigned char *)email, -1, -1, 0) == 1) &&
             X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
             X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
             PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) == 1 &&
             PEM_write_bio_X509_REQ(rb, req) == 1;
    char *kd = NULL, *rd = NULL;
    long kl = ok ? BIO_get_mem_data(kb, &kd) : 0, rl = ok ? BIO_get_mem_data(rb, &rd) : 0;
    ok = ok && write_file(key_out, kd, (size_t)kl, 0600) == 0 &&
         write_file(csr_out, rd, (size_t)rl, 0) == 0;
    if (ok)
        printf("Wrote the private key to %s (keep it; the push certificate is useless without it)\n"
               "and the CSR to %s: send the CSR to your MDM vendor to sign\n"
               "(steward push-cert sign-request), then upload the result to\n"
               "https://identity.apple.com\n",
               key_out, csr_out);
    else
        fprintf(stderr, "steward push-cert csr: cannot make the key and CSR\n");
    BIO_free(kb);
    BIO_free(rb);
    X509_NAME_free(name);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return ok ? 0 : 1;
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = malloc((1 << 20) + 1);
    size_t n = data ? fread(data, 1, 1 << 20, f) : 0;
    fclose(f);
    if (data)
        data[n] = '\0';
    *len = n;
    return data;
}

/* The signed request: a base64-encoded XML plist. NULL with *why. */
static char *build_request(X509_REQ *req, EVP_PKEY *vendor_key, const char *chain_pem,
                           const char **why)
{
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(req, &der);
    if (der_len <= 0) {
        *why = "cannot encode the CSR";
        return NULL;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t sig_len = 0;
    unsigned char *sig = NULL;
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, vendor_key) == 1 &&
             EVP_DigestSign(md, NULL, &sig_len, der, (size_t)der_len) == 1 &&
             (sig = malloc(sig_len)) != NULL &&
             EVP_DigestSign(md, sig, &sig_len, der, (size_t)der_len) == 1;
    EVP_MD_CTX_free(md);
    char *csr_b64 = ok ? ids_b64_encode(der, (size_t)der_len) : NULL;
    char *sig_b64 = ok ? ids_b64_encode(sig, sig_len) : NULL;
    OPENSSL_free(der);
    free(sig);
    char *out = NULL;
    if (csr_b64 && sig_b64) {
        plist_t dict = plist_new_dict();
        plist_dict_set_item(dict, "PushCertRequestCSR", plist_new_string(csr_b64));
        plist_dict_set_item(dict, "PushCertCertificateChain", plist_new_string(chain_pem));
        plist_dict_set_item(dict, "PushCertSignature", plist_new_string(sig_b64));
        char *xml = NULL;
        uint32_t xml_len = 0;
        plist_to_xml(dict, &xml, &xml_len);
        if (xml)
            out = ids_b64_encode((const uint8_t *)xml, xml_len);
        free(xml);
        plist_free(dict);
    }
    if (!out)
        *why = "cannot sign the CSR with the vendor key";
    free(csr_b64);
    free(sig_b64);
    return out;
}

/* `push-cert sign-request --csr FILE --vendor-cert FILE --vendor-key FILE
 *  --vendor-chain FILE --out FILE` */
static int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"csr", required_argument, 0, 'c'},          {"vendor-cert", required_argument, 0, 'v'},
        {"vendor-key", required_argument, 0, 'k'},   {"vendor-chain", required_argument, 0, 'a'},
        {"out", required_argument, 0, 'o'},          {0, 0, 0, 0},
    };
    const char *csr = NULL, *vcert = NULL, *vkey = NULL, *vchain = NULL, *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': csr = optarg; break;
        case 'v': vcert = optarg; break;
        case 'k': vkey = optarg; break;
        case 'a': vchain = optarg; break;
        case 'o': out = optarg; break;
        default: return 2;
        }
    }
    if (!csr || !vcert || !vkey || !vchain || !out) {
        fputs("usage: steward push-cert sign-request --csr FILE --vendor-cert FILE --vendor-key FILE\n"
              "                                      --vendor-chain FILE --out FILE\n",
              stderr);
        return 2;
    }
    const char *why = NULL;
    X509_REQ *req = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char *chain = NULL, *result = NULL;
    BIO *chain_bio = BIO_new(BIO_s_mem());
    FILE *f;
    if ((f = fopen(csr, "r")) != NULL) {
        req = PEM_read_X509_REQ(f, NULL, NULL, NULL);
        fclose(f);
    }
    if ((f = fopen(vcert, "r")) != NULL) {
        cert = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
    }
    if ((f = fopen(vkey, "r")) != NULL) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
    }
    size_t chain_len = 0;
    char *chain_file = read_text(vchain, &chain_len);
    if (!req)
        why = "cannot read the CSR (PEM)";
    else if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1)
        why = "the CSR's own signature does not verify";
    else if (!cert)
        why = "cannot read the vendor certificate (PEM)";
    else if (!key)
        why = "cannot read the vendor key (PEM, unencrypted)";
    else if (X509_check_private_key(cert, key) != 1)
        why = "the vendor key does not match the vendor certificate";
    else if (!chain_file || !strstr(chain_file, "-----BEGIN CERTIFICATE-----"))
        why = "cannot read the vendor chain (PEM: Apple's intermediate and root)";
    else if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        why = "the vendor key must be RSA (Apple signs MDM vendor certificates for RSA keys)";
    if (!why) {
        char *cd = NULL;
        long cl;
        if (!chain_bio || PEM_write_bio_X509(chain_bio, cert) != 1 ||
            (cl = BIO_get_mem_data(chain_bio, &cd)) <= 0 ||
            asprintf(&chain, "%.*s%s", (int)cl, cd, chain_file) < 0) {
            chain = NULL;
            why = "out of memory";
        }
    }
    if (!why)
        result = build_request(req, key, chain, &why);
    int rc = 1;
    if (result && write_file(out, result, strlen(result), 0) == 0) {
        printf("Wrote the signed request to %s: upload it at https://identity.apple.com\n"
               "(Create a Certificate, or Renew the existing one to keep its topic)\n",
               out);
        rc = 0;
    } else if (why) {
        fprintf(stderr, "steward push-cert sign-request: %s\n", why);
    }
    free(result);
    free(chain);
    free(chain_file);
    BIO_free(chain_bio);
    X509_REQ_free(req);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int app_push_cert(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "csr") == 0)
        return cmd_csr(argc - 1, argv + 1);
    if (strcmp(sub, "sign-request") == 0)
        return cmd_sign(argc - 1, argv + 1);
    fputs("usage: steward push-cert csr|sign-request [options] (see docs/push.md)\n", stderr);
    return 2;
}
