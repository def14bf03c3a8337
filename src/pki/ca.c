/* ca.c: steward's certificate authority: creating and loading the CA, issuing
 * the server's TLS certificate and device identity certificates, PEM writers,
 * fingerprints and certificate parsing (DER, RFC 9440 Client-Cert).
 * Called by `steward init` / `steward ca …`, the SCEP front end, the http
 * layer (client certificates) and the device simulator. Trust checks live in
 * verify.c. */
#include "pki/pki.h"

#include "util/ids.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CA_KEY_BITS 3072
#define CA_DAYS 3650
#define DEFAULT_DAYS 365
#define MAX_DAYS (100 * 366)
#define CLOCK_SKEW_SECONDS (5 * 60)
/* A device certificate in a header is a few KiB; anything far larger is abuse. */
#define MAX_CERT_B64 (64 * 1024)

/* Sets *err (when err is non-NULL) to "what[ path]: detail", where detail is
 * the latest OpenSSL error, and clears OpenSSL's per-thread error queue so
 * the failure does not leak into an unrelated later check. */
static void set_path_err(char **err, const char *what, const char *path)
{
    unsigned long e = ERR_peek_last_error();
    const char *detail = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (!err)
        return;
    char *s = NULL;
    if (asprintf(&s, "%s%s%s%s%s", what, path ? " " : "", path ? path : "",
                 detail ? ": " : "", detail ? detail : "") < 0)
        s = NULL;
    *err = s;
}

static void set_err(char **err, const char *what)
{
    set_path_err(err, what, NULL);
}

static void set_errno_err(char **err, const char *what, const char *path)
{
    char ebuf[128];
    const char *reason = strerror_r(errno, ebuf, sizeof ebuf);
    if (!err)
        return;
    char *s = NULL;
    if (asprintf(&s, "%s %s: %s", what, path, reason) < 0)
        s = NULL;
    *err = s;
}

/* ---- files ---- */

/* Creates path exclusively (never follows or replaces an existing file) with
 * the final mode given to open(2), so a key is never readable by others even
 * for a moment. Returns a FILE* or NULL with errno set. */
static FILE *create_exclusive(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int saved = errno;
        close(fd);
        unlink(path);
        errno = saved;
    }
    return f;
}

/* Closes f after writing; 0 only when every byte reached the file. */
static int finish_file(FILE *f, int write_ok)
{
    int ok = write_ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int write_cert_to(FILE *f, X509 *cert)
{
    return finish_file(f, PEM_write_X509(f, cert) == 1);
}

/* Unencrypted PKCS#8 PEM: the file mode is the protection, as for nginx. */
static int write_key_to(FILE *f, EVP_PKEY *key)
{
    return finish_file(f, PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1);
}

/* Replaces (or creates) the certificate file, 0644: certificates are public. */
int pki_write_cert_pem(const char *path, X509 *cert)
{
    if (!path || !cert)
        return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -1;
    }
    return write_cert_to(f, cert);
}

/* Refuses to replace an existing file: truncating it would keep whatever mode
 * it had, and fixing the mode afterwards leaves a window where it is readable. */
int pki_write_key_pem(const char *path, EVP_PKEY *key)
{
    if (!path || !key)
        return -1;
    FILE *f = create_exclusive(path, 0600);
    if (!f)
        return -1;
    if (write_key_to(f, key) != 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* ---- building certificates ---- */

/* 128 random bits, top bit cleared so the DER INTEGER is positive (RFC 5280
 * asks for positive serials of at most 20 octets). */
static int set_random_serial(X509 *x)
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    if (!bn)
        return -1;
    if (BN_is_zero(bn) && !BN_one(bn)) {
        BN_free(bn);
        return -1;
    }
    int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

/* Subject "O=Steward, CN=<cn>"; the CN is UTF-8 and added as data, never
 * parsed, so any characters are safe. */
static int set_subject(X509 *x, const char *cn)
{
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"Steward",
                                   -1, -1, 0) != 1)
        return -1;
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                   -1, 0) != 1)
        return -1;
    return 0;
}

/* notBefore a few minutes in the past so a device whose clock runs slow does
 * not reject a certificate it was just given. */
static int set_validity(X509 *x, int days)
{
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -CLOCK_SKEW_SECONDS))
        return -1;
    if (!X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL))
        return -1;
    return 0;
}

/* Adds one extension from a fixed configuration string (never outside
 * input: the string syntax would let a caller inject other fields). */
static int add_ext(X509 *subject, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, subject, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(subject, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int ip_literal(const char *s, unsigned char addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1)
        return 4;
    if (inet_pton(AF_INET6, s, addr) == 1)
        return 16;
    return 0;
}

/* Host names only: letters, digits, '-', '.', and a leading "*." wildcard.
 * Keeps odd bytes out of a certificate that browsers and devices will parse. */
static int valid_dns_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    if (s[0] == '*' && s[1] == '.')
        s += 2;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int push_dns(GENERAL_NAMES *gens, const char *name)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    if (!g || !s || ASN1_STRING_set(s, name, (int)strlen(name)) != 1)
        goto fail;
    GENERAL_NAME_set0_value(g, GEN_DNS, s);
    s = NULL;
    if (!sk_GENERAL_NAME_push(gens, g))
        goto fail;
    return 0;
fail:
    ASN1_IA5STRING_free(s);
    GENERAL_NAME_free(g);
    return -1;
}

static int push_ip(GENERAL_NAMES *gens, const unsigned char *addr, int len)
{
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_OCTET_STRING *s = ASN1_OCTET_STRING_new();
    if (!g || !s || ASN1_OCTET_STRING_set(s, addr, len) != 1)
        goto fail;
    GENERAL_NAME_set0_value(g, GEN_IPADD, s);
    s = NULL;
    if (!sk_GENERAL_NAME_push(gens, g))
        goto fail;
    return 0;
fail:
    ASN1_OCTET_STRING_free(s);
    GENERAL_NAME_free(g);
    return -1;
}

/* subjectAltName for a server: IP when the name is an address literal, DNS
 * otherwise; "localhost" also gets 127.0.0.1 so https://127.0.0.1 works in
 * tests. Built as GENERAL_NAMEs, not a config string, so the name cannot
 * smuggle in extra entries. */
static int add_server_san(X509 *x, const char *name, char **err)
{
    unsigned char addr[16];
    int alen = ip_literal(name, addr);
    if (!alen && !valid_dns_name(name)) {
        if (err)
            *err = strdup("server name is neither a host name nor an IP address");
        return -1;
    }
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        goto fail;
    if (alen ? push_ip(gens, addr, alen) : push_dns(gens, name))
        goto fail;
    if (strcmp(name, "localhost") == 0) {
        static const unsigned char loopback[4] = {127, 0, 0, 1};
        if (push_ip(gens, loopback, 4))
            goto fail;
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
        goto fail;
    GENERAL_NAMES_free(gens);
    return 0;
fail:
    GENERAL_NAMES_free(gens);
    set_err(err, "cannot add subjectAltName");
    return -1;
}

static EVP_PKEY *new_key(enum pki_key_type type)
{
    switch (type) {
    case PKI_KEY_EC_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case PKI_KEY_RSA2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    }
    return NULL;
}

/* A fresh X509 with version 3, random serial, subject and validity set. */
static X509 *new_cert_skeleton(const char *cn, int days)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    if (X509_set_version(x, X509_VERSION_3) != 1 || set_random_serial(x) ||
        set_subject(x, cn) || set_validity(x, days)) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ---- the CA ---- */

static X509 *make_ca_cert(EVP_PKEY *key, const char *cn)
{
    X509 *x = new_cert_skeleton(cn, CA_DAYS);
    if (!x)
        return NULL;
    if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 || X509_set_pubkey(x, key) != 1 ||
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        add_ext(x, x, NID_subject_key_identifier, "hash") ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Opens both files before writing either, so an existing key is never
 * paired with a new certificate (or the reverse). */
static int write_ca_files(const char *cert_path, const char *key_path, X509 *cert,
                          EVP_PKEY *key, char **err)
{
    FILE *kf = create_exclusive(key_path, 0600);
    if (!kf) {
        set_errno_err(err, "cannot create CA key", key_path);
        return -1;
    }
    FILE *cf = create_exclusive(cert_path, 0644);
    if (!cf) {
        set_errno_err(err, "cannot create CA certificate", cert_path);
        fclose(kf);
        unlink(key_path);
        return -1;
    }
    int krc = write_key_to(kf, key);
    int crc = write_cert_to(cf, cert);
    if (krc || crc) {
        unlink(key_path);
        unlink(cert_path);
        set_err(err, "cannot write CA files");
        return -1;
    }
    return 0;
}

int pki_ca_create(const char *cert_path, const char *key_path, const char *common_name,
                  char **err)
{
    if (err)
        *err = NULL;
    if (!cert_path || !key_path || !common_name || !*common_name) {
        if (err)
            *err = strdup("CA paths and common name are required");
        return -1;
    }
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)CA_KEY_BITS);
    if (!key) {
        set_err(err, "cannot generate CA key");
        return -1;
    }
    X509 *cert = make_ca_cert(key, common_name);
    if (!cert) {
        set_err(err, "cannot build CA certificate");
        EVP_PKEY_free(key);
        return -1;
    }
    int rc = write_ca_files(cert_path, key_path, cert, key, err);
    if (rc == 0)
        log_info("pki_ca_created", "cert=%s", cert_path);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* OpenSSL's default would prompt on the terminal for an encrypted key and
 * block a daemon. Answering with an empty passphrase instead still opens
 * keys saved "encrypted" with an empty one (micromdm's SCEP depot does that);
 * other encrypted keys fail to load with a clear error. */
static int no_passphrase_prompt(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag, (void)u;
    if (size > 0)
        buf[0] = '\0';
    return 0;
}

static EVP_PKEY *read_key_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        log_warn("pki_key_mode", "path=%s mode=%03o hint=\"chmod 600\"", path,
                 (unsigned)(st.st_mode & 0777));
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, no_passphrase_prompt, NULL);
    fclose(f);
    return k;
}

STACK_OF(X509) *pki_read_certs(const char *path)
{
    FILE *f = path ? fopen(path, "re") : NULL;
    if (!f)
        return NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    X509 *x;
    while (certs && (x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(certs, x) <= 0) {
            X509_free(x);
            sk_X509_pop_free(certs, X509_free);
            certs = NULL;
        }
    }
    fclose(f);
    ERR_clear_error(); /* the normal "no start line" at the end of the file */
    if (certs && sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        certs = NULL;
    }
    return certs;
}

/* Loads cert (first of the file), the rest as chain, and the matching key. */
static int load_pair(const char *cert_path, const char *key_path, X509 **cert,
                     STACK_OF(X509) **chain, EVP_PKEY **key, const char *what, char **err)
{
    char msg[96];
    STACK_OF(X509) *all = pki_read_certs(cert_path);
    if (!all) {
        snprintf(msg, sizeof msg, "cannot read %s certificate", what);
        set_path_err(err, msg, cert_path);
        return -1;
    }
    *cert = sk_X509_shift(all);
    if (chain && sk_X509_num(all) > 0)
        *chain = all;
    else
        sk_X509_pop_free(all, X509_free);
    *key = read_key_file(key_path);
    if (!*key) {
        snprintf(msg, sizeof msg, "cannot read %s key", what);
        set_path_err(err, msg, key_path);
        return -1;
    }
    if (X509_check_private_key(*cert, *key) != 1) {
        snprintf(msg, sizeof msg, "%s key does not match the %s certificate", what, what);
        set_err(err, msg);
        return -1;
    }
    return 0;
}

struct pki_ca *pki_ca_load(const char *cert_path, const char *key_path, char **err)
{
    if (err)
        *err = NULL;
    if (!cert_path || !key_path) {
        if (err)
            *err = strdup("CA paths are required");
        return NULL;
    }
    struct pki_ca *ca = calloc(1, sizeof *ca);
    if (!ca) {
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    if (load_pair(cert_path, key_path, &ca->cert, &ca->chain, &ca->key, "CA", err) != 0) {
        pki_ca_free(ca);
        return NULL;
    }
    return ca;
}

int pki_ca_load_ra(struct pki_ca *ca, const char *cert_path, const char *key_path, char **err)
{
    if (err)
        *err = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = load_pair(cert_path, key_path, &cert, NULL, &key, "RA", err);
    /* CertReps the RA signs must verify up to the CA clients were given. */
    if (rc == 0 && (X509_check_issued(ca->cert, cert) != X509_V_OK ||
                    X509_verify(cert, X509_get0_pubkey(ca->cert)) != 1)) {
        set_err(err, "RA certificate is not issued by the CA");
        rc = -1;
    }
    if (rc != 0) {
        X509_free(cert);
        EVP_PKEY_free(key);
        return -1;
    }
    X509_free(ca->ra_cert);
    EVP_PKEY_free(ca->ra_key);
    ca->ra_cert = cert;
    ca->ra_key = key;
    return 0;
}

int pki_ca_load_previous(struct pki_ca *ca, const char *cert_path, const char *key_path,
                         int64_t until, char **err)
{
    struct pki_ca *prev = pki_ca_load(cert_path, key_path, err);
    if (!prev)
        return -1;
    pki_ca_free(ca->previous);
    ca->previous = prev;
    ca->previous_until = until;
    return 0;
}

static int push_ref(STACK_OF(X509) *s, X509 *x)
{
    if (!x)
        return 0;
    if (X509_up_ref(x) != 1)
        return -1;
    if (sk_X509_push(s, x) <= 0) {
        X509_free(x);
        return -1;
    }
    return 0;
}

/* The issuing certificate then its chain, skipping ones already listed (a
 * rotated intermediate shares its root with the new one). */
static int push_ca(STACK_OF(X509) *s, const struct pki_ca *ca)
{
    if (push_ref(s, ca->cert))
        return -1;
    for (int i = 0; i < sk_X509_num(ca->chain); i++) {
        X509 *x = sk_X509_value(ca->chain, i);
        int seen = 0;
        for (int j = 0; j < sk_X509_num(s) && !seen; j++)
            seen = X509_cmp(sk_X509_value(s, j), x) == 0;
        if (!seen && push_ref(s, x))
            return -1;
    }
    return 0;
}

STACK_OF(X509) *pki_ca_certs(const struct pki_ca *ca, int with_ra, int64_t now)
{
    if (!ca || !ca->cert)
        return NULL;
    STACK_OF(X509) *s = sk_X509_new_null();
    if (!s)
        return NULL;
    int rc = (with_ra ? push_ref(s, ca->ra_cert) : 0) || push_ca(s, ca);
    if (!rc && ca->previous && now < ca->previous_until)
        rc = push_ca(s, ca->previous);
    if (rc) {
        sk_X509_pop_free(s, X509_free);
        return NULL;
    }
    return s;
}

void pki_ca_free(struct pki_ca *ca)
{
    if (!ca)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    sk_X509_pop_free(ca->chain, X509_free);
    X509_free(ca->ra_cert);
    EVP_PKEY_free(ca->ra_key);
    pki_ca_free(ca->previous);
    free(ca);
}

/* ---- intermediate and RA certificates ---- */

/* A certificate for key signed by issuer with the given extensions. */
static X509 *make_signed_cert(const struct pki_ca *issuer, EVP_PKEY *key, const char *cn,
                              int days, const char *bc, const char *ku)
{
    X509 *x = new_cert_skeleton(cn, days);
    if (!x)
        return NULL;
    if (X509_set_issuer_name(x, X509_get_subject_name(issuer->cert)) != 1 ||
        X509_set_pubkey(x, key) != 1 || add_ext(x, issuer->cert, NID_basic_constraints, bc) ||
        add_ext(x, issuer->cert, NID_key_usage, ku) ||
        add_ext(x, issuer->cert, NID_subject_key_identifier, "hash") ||
        add_ext(x, issuer->cert, NID_authority_key_identifier, "keyid,issuer") ||
        X509_sign(x, issuer->key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Writes key (0600) and cert followed by extra (the issuer's chain). */
static int write_signed_files(const char *cert_path, const char *key_path, X509 *cert,
                              EVP_PKEY *key, const struct pki_ca *issuer, char **err)
{
    if (write_ca_files(cert_path, key_path, cert, key, err) != 0)
        return -1;
    if (!issuer)
        return 0;
    FILE *f = fopen(cert_path, "ae");
    int ok = f && PEM_write_X509(f, issuer->cert) == 1;
    for (int i = 0; ok && i < sk_X509_num(issuer->chain); i++)
        ok = PEM_write_X509(f, sk_X509_value(issuer->chain, i)) == 1;
    if (f)
        ok = finish_file(f, ok) == 0;
    if (!ok) {
        unlink(cert_path);
        unlink(key_path);
        set_errno_err(err, "cannot write", cert_path);
        return -1;
    }
    return 0;
}

static int create_signed(const struct pki_ca *issuer, const char *cert_path,
                         const char *key_path, const char *cn, int ra, char **err)
{
    if (err)
        *err = NULL;
    if (!issuer || !issuer->cert || !issuer->key || !cert_path || !key_path || !cn || !*cn) {
        if (err)
            *err = strdup("issuer, paths and common name are required");
        return -1;
    }
    EVP_PKEY *key = ra ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                       : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)CA_KEY_BITS);
    if (!key) {
        set_err(err, "cannot generate key");
        return -1;
    }
    X509 *cert = ra ? make_signed_cert(issuer, key, cn, CA_DAYS / 5, "critical,CA:FALSE",
                                       "critical,digitalSignature,keyEncipherment")
                    : make_signed_cert(issuer, key, cn, CA_DAYS, "critical,CA:TRUE,pathlen:0",
                                       "critical,keyCertSign,cRLSign");
    int rc = -1;
    if (!cert)
        set_err(err, "cannot build certificate");
    else
        rc = write_signed_files(cert_path, key_path, cert, key, ra ? NULL : issuer, err);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int pki_ca_create_signed(const struct pki_ca *issuer, const char *cert_path,
                         const char *key_path, const char *common_name, char **err)
{
    return create_signed(issuer, cert_path, key_path, common_name, 0, err);
}

int pki_ca_create_ra(const struct pki_ca *ca, const char *cert_path, const char *key_path,
                     char **err)
{
    return create_signed(ca, cert_path, key_path, "Steward SCEP RA", 1, err);
}

/* ---- describing certificates ---- */

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void key_description(EVP_PKEY *k, char *out, size_t n)
{
    int id = k ? EVP_PKEY_get_base_id(k) : 0;
    if (id == EVP_PKEY_RSA) {
        snprintf(out, n, "RSA %d", EVP_PKEY_get_bits(k));
    } else if (id == EVP_PKEY_EC) {
        char group[32] = "";
        size_t gl = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) != 1)
            snprintf(group, sizeof group, "?");
        snprintf(out, n, "EC %s", strcmp(group, "prime256v1") == 0   ? "P-256"
                                  : strcmp(group, "secp384r1") == 0 ? "P-384"
                                                                    : group);
    } else {
        snprintf(out, n, "%s", k ? OBJ_nid2sn(id) : "none");
    }
}

void pki_cert_info(X509 *cert, struct pki_cert_info *out)
{
    memset(out, 0, sizeof *out);
    if (!cert)
        return;
    BIO *b = BIO_new(BIO_s_mem());
    if (b) {
        X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
        int n = BIO_read(b, out->subject, sizeof out->subject - 1);
        out->subject[n > 0 ? n : 0] = '\0';
        (void)BIO_reset(b);
        X509_NAME_print_ex(b, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253);
        n = BIO_read(b, out->issuer, sizeof out->issuer - 1);
        out->issuer[n > 0 ? n : 0] = '\0';
        BIO_free(b);
    }
    pki_cert_fingerprint(cert, out->fingerprint);
    out->not_before = asn1_time_unix(X509_get0_notBefore(cert));
    out->not_after = asn1_time_unix(X509_get0_notAfter(cert));
    key_description(X509_get0_pubkey(cert), out->key, sizeof out->key);
    out->is_ca = X509_check_ca(cert) > 0;
    ERR_clear_error();
}

/* ---- issuing ---- */

static int add_leaf_exts(X509 *x, X509 *issuer, const struct pki_issue_opts *o, char **err)
{
    const char *ku = o->key_type == PKI_KEY_RSA2048 ? "critical,digitalSignature,keyEncipherment"
                                                    : "critical,digitalSignature";
    const char *eku = o->kind == PKI_CERT_SERVER ? "serverAuth" : "clientAuth";
    /* "keyid,issuer": the CA's key identifier, falling back to issuer+serial
     * for an imported CA certificate that has no subjectKeyIdentifier. */
    if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext(x, issuer, NID_key_usage, ku) || add_ext(x, issuer, NID_ext_key_usage, eku) ||
        add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
        add_ext(x, issuer, NID_authority_key_identifier, "keyid,issuer")) {
        set_err(err, "cannot add certificate extensions");
        return -1;
    }
    if (o->kind == PKI_CERT_SERVER)
        return add_server_san(x, o->dns_name ? o->dns_name : o->common_name, err);
    return 0;
}

static int check_issue_opts(const struct pki_ca *ca, const struct pki_issue_opts *o,
                            X509 **cert_out, EVP_PKEY **key_out, char **err)
{
    const char *why = NULL;
    if (!ca || !ca->cert || !ca->key || !o || !cert_out || !key_out)
        why = "CA, options and outputs are required";
    else if (!o->common_name || !*o->common_name)
        why = "common name is required";
    else if (o->days < 0 || o->days > MAX_DAYS)
        why = "validity days out of range";
    else if (o->kind != PKI_CERT_SERVER && o->kind != PKI_CERT_CLIENT)
        why = "unknown certificate kind";
    else if (o->key_type != PKI_KEY_EC_P256 && o->key_type != PKI_KEY_RSA2048)
        why = "unknown key type";
    if (why && err)
        *err = strdup(why);
    return why ? -1 : 0;
}

int pki_issue(const struct pki_ca *ca, const struct pki_issue_opts *o, X509 **cert_out,
              EVP_PKEY **key_out, char **err)
{
    if (err)
        *err = NULL;
    if (check_issue_opts(ca, o, cert_out, key_out, err))
        return -1;
    EVP_PKEY *key = new_key(o->key_type);
    if (!key) {
        set_err(err, "cannot generate key");
        return -1;
    }
    X509 *x = new_cert_skeleton(o->common_name, o->days ? o->days : DEFAULT_DAYS);
    if (!x) {
        set_err(err, "cannot build certificate");
        goto fail;
    }
    if (X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
        X509_set_pubkey(x, key) != 1) {
        set_err(err, "cannot build certificate");
        goto fail;
    }
    if (add_leaf_exts(x, ca->cert, o, err))
        goto fail;
    if (X509_sign(x, ca->key, EVP_sha256()) <= 0) {
        set_err(err, "cannot sign certificate");
        goto fail;
    }
    *cert_out = x;
    *key_out = key;
    return 0;
fail:
    X509_free(x);
    EVP_PKEY_free(key);
    return -1;
}

/* ---- fingerprints and parsing ---- */

void pki_cert_fingerprint(X509 *cert, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    /* X509_digest hashes the DER encoding, the same bytes i2d_X509 gives. */
    if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
        ERR_clear_error();
        return;
    }
    ids_hex(md, n, out);
}

X509 *pki_cert_from_der(const uint8_t *der, size_t len)
{
    if (!der || len == 0 || len > LONG_MAX)
        return NULL;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x || p != der + len) {
        /* Trailing bytes mean the input is not one certificate. */
        X509_free(x);
        ERR_clear_error();
        return NULL;
    }
    return x;
}

static int is_b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=';
}

/* RFC 9440: Client-Cert is an RFC 8941 Byte Sequence, ":" base64 ":". Only
 * the standard alphabet, no inner whitespace, nothing after the closing
 * colon (no parameters); surrounding spaces are allowed as in any field. */
X509 *pki_cert_from_rfc9440(const char *header_value)
{
    if (!header_value)
        return NULL;
    const char *s = header_value;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strnlen(s, MAX_CERT_B64 + 3);
    if (n > MAX_CERT_B64 + 2)
        return NULL;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n < 3 || s[0] != ':' || s[n - 1] != ':')
        return NULL;
    const char *b64 = s + 1;
    size_t blen = n - 2;
    for (size_t i = 0; i < blen; i++)
        if (!is_b64_char((unsigned char)b64[i]))
            return NULL;
    size_t der_len = 0;
    uint8_t *der = ids_b64_decode(b64, blen, &der_len);
    if (!der)
        return NULL;
    X509 *x = pki_cert_from_der(der, der_len);
    free(der);
    return x;
}
