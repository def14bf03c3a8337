/* test_pki.c: unit tests for src/pki: CA creation and loading, issuing server
 * and client certificates, chain verification, Mdm-Signature sign/verify
 * (SHA-256 and SHA-1), RFC 9440 and DER parsing, and the SCEP test vectors
 * from $STEWARD_SHARED/vectors/scep when present. Works in a temp dir. */
#include "pki/pki.h"

#include "util/ids.h"

#include <ftw.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

struct fixture {
    char dir[64];
    char ca_cert[128], ca_key[128], other_cert[128], other_key[128];
    struct pki_ca *ca;       /* steward's CA */
    struct pki_ca *other;    /* an unrelated CA */
    struct pki_trust *trust; /* built from ca_cert */
};

static struct fixture fx;

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", fx.dir, name);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/test_pki.XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    path_in(fx.ca_cert, sizeof fx.ca_cert, "ca.pem");
    path_in(fx.ca_key, sizeof fx.ca_key, "ca.key");
    path_in(fx.other_cert, sizeof fx.other_cert, "other.pem");
    path_in(fx.other_key, sizeof fx.other_key, "other.key");
    char *err = NULL;
    if (pki_ca_create(fx.ca_cert, fx.ca_key, "Steward Test CA", &err) != 0 ||
        pki_ca_create(fx.other_cert, fx.other_key, "Someone Else's CA", &err) != 0) {
        fprintf(stderr, "CA create failed: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    fx.ca = pki_ca_load(fx.ca_cert, fx.ca_key, &err);
    fx.other = pki_ca_load(fx.other_cert, fx.other_key, &err);
    fx.trust = pki_trust_new(fx.ca_cert, &err);
    if (!fx.ca || !fx.other || !fx.trust) {
        fprintf(stderr, "CA load failed: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int group_teardown(void **state)
{
    (void)state;
    pki_trust_free(fx.trust);
    pki_ca_free(fx.ca);
    pki_ca_free(fx.other);
    nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- helpers ---- */

struct issued {
    X509 *cert;
    EVP_PKEY *key;
};

static struct issued issue(const struct pki_ca *ca, enum pki_cert_kind kind,
                           enum pki_key_type kt, const char *cn, const char *dns, int days)
{
    struct pki_issue_opts o = {
        .kind = kind, .key_type = kt, .common_name = cn, .dns_name = dns, .days = days};
    struct issued r = {0};
    char *err = NULL;
    int rc = pki_issue(ca, &o, &r.cert, &r.key, &err);
    if (rc != 0)
        print_error("pki_issue: %s\n", err ? err : "?");
    free(err);
    assert_int_equal(rc, 0);
    assert_non_null(r.cert);
    assert_non_null(r.key);
    return r;
}

static struct issued issue_client(const struct pki_ca *ca, enum pki_key_type kt)
{
    return issue(ca, PKI_CERT_CLIENT, kt, "device-0001", NULL, 0);
}

static void issued_free(struct issued *i)
{
    X509_free(i->cert);
    EVP_PKEY_free(i->key);
}

/* Moves a certificate's dates (seconds from now) and re-signs it with the CA,
 * the way a stale or future-dated certificate would have been issued. */
static void redate(X509 *x, const struct pki_ca *ca, long not_before, long not_after)
{
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), not_before));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), not_after));
    assert_true(X509_sign(x, ca->key, EVP_sha256()) > 0);
}

static void assert_verify_fails(X509 *x, STACK_OF(X509) *untrusted, const char *want)
{
    const char *reason = NULL;
    assert_int_equal(pki_verify_device_cert(fx.trust, x, untrusted, &reason), -1);
    assert_non_null(reason);
    assert_string_equal(reason, want);
}

static void assert_verify_ok(X509 *x, STACK_OF(X509) *untrusted)
{
    const char *reason = NULL;
    int rc = pki_verify_device_cert(fx.trust, x, untrusted, &reason);
    if (rc != 0)
        print_error("verify: %s\n", reason ? reason : "?");
    assert_int_equal(rc, 0);
}

static char *file_fingerprint(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    char *fp = malloc(65);
    pki_cert_fingerprint(x, fp);
    X509_free(x);
    return fp;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int has_ext(X509 *x, int nid, int *critical)
{
    int i = X509_get_ext_by_NID(x, nid, -1);
    if (i < 0)
        return 0;
    *critical = X509_EXTENSION_get_critical(X509_get_ext(x, i));
    return 1;
}

/* Seconds from now to an ASN1_TIME (negative when in the past). */
static long seconds_from_now(const ASN1_TIME *t)
{
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, t), 1);
    return (long)days * 86400 + secs;
}

/* ---- CA ---- */

static void test_ca_create_writes_files(void **state)
{
    (void)state;
    struct stat st;
    assert_int_equal(stat(fx.ca_key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(fx.ca_cert, &st), 0);
    assert_int_equal(st.st_mode & 0600, 0600);
    assert_int_equal(st.st_mode & 022, 0); /* nobody else may write it */
}

static void test_ca_create_refuses_existing(void **state)
{
    (void)state;
    char *before = file_fingerprint(fx.ca_cert);
    char *err = NULL;
    assert_int_equal(pki_ca_create(fx.ca_cert, fx.ca_key, "Replacement", &err), -1);
    assert_non_null(err);
    free(err);
    char *after = file_fingerprint(fx.ca_cert);
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* Only the certificate exists: the key must not be created beside it. */
    char cert[128], key[128];
    path_in(cert, sizeof cert, "lonely.pem");
    path_in(key, sizeof key, "lonely.key");
    FILE *f = fopen(cert, "w");
    assert_non_null(f);
    fclose(f);
    err = NULL;
    assert_int_equal(pki_ca_create(cert, key, "Lonely", &err), -1);
    assert_non_null(err);
    free(err);
    assert_false(exists(key));
}

static void test_ca_load_properties(void **state)
{
    (void)state;
    X509 *c = fx.ca->cert;
    assert_int_equal(EVP_PKEY_get_base_id(fx.ca->key), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(fx.ca->key), 3072);
    assert_int_equal(X509_check_ca(c), 1);
    assert_int_equal(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
    int crit = 0;
    assert_true(has_ext(c, NID_basic_constraints, &crit));
    assert_int_equal(crit, 1);
    assert_true(has_ext(c, NID_key_usage, &crit));
    assert_int_equal(crit, 1);
    assert_int_equal(X509_get_key_usage(c), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(c));
    long life = seconds_from_now(X509_get0_notAfter(c));
    assert_true(life > 3649L * 86400 && life <= 3650L * 86400);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get_serialNumber(c), NULL);
    assert_non_null(serial);
    assert_false(BN_is_negative(serial));
    assert_true(BN_num_bits(serial) > 64 && BN_num_bits(serial) <= 127);
    BN_free(serial);
}

static void test_ca_load_rejects_mismatched_key(void **state)
{
    (void)state;
    char *err = NULL;
    assert_null(pki_ca_load(fx.ca_cert, fx.other_key, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "does not match"));
    free(err);
    err = NULL;
    assert_null(pki_ca_load("/nonexistent/ca.pem", fx.ca_key, &err));
    assert_non_null(err);
    free(err);
    pki_ca_free(NULL);

    /* A key encrypted with a real passphrase fails to load; it must not
     * stop and prompt on the terminal. */
    char enc[128];
    path_in(enc, sizeof enc, "enc.key");
    FILE *f = fopen(enc, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, fx.ca->key, EVP_aes_256_cbc(),
                                          (unsigned char *)"secret", 6, NULL, NULL),
                     1);
    fclose(f);
    err = NULL;
    assert_null(pki_ca_load(fx.ca_cert, enc, &err));
    assert_non_null(err);
    free(err);
}

/* ---- issuing ---- */

static void assert_common_leaf(X509 *x, const struct pki_ca *ca)
{
    assert_int_equal(X509_check_ca(x), 0);
    int crit = 0;
    assert_true(has_ext(x, NID_basic_constraints, &crit));
    assert_non_null(X509_get0_subject_key_id(x));
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
    assert_non_null(aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca->cert)), 0);
    assert_int_equal(X509_check_issued(ca->cert, x), X509_V_OK);
    /* Positive serial of at most 128 bits. */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_true(BN_num_bits(bn) <= 127 && BN_num_bits(bn) > 0);
    BN_free(bn);
    /* notBefore about five minutes back, for devices with slow clocks. */
    long nb = seconds_from_now(X509_get0_notBefore(x));
    assert_true(nb <= -290 && nb >= -400);
    /* Subject carries O=Steward. */
    char o[64];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, o,
                                          sizeof o) > 0);
    assert_string_equal(o, "Steward");
}

static void test_issue_server_dns(void **state)
{
    (void)state;
    struct issued s = issue(fx.ca, PKI_CERT_SERVER, PKI_KEY_EC_P256, "mdm.example.com",
                            "mdm.example.com", 30);
    assert_common_leaf(s.cert, fx.ca);
    assert_int_equal(EVP_PKEY_get_base_id(s.key), EVP_PKEY_EC);
    assert_int_equal(X509_check_private_key(s.cert, s.key), 1);
    assert_true(X509_get_extended_key_usage(s.cert) & XKU_SSL_SERVER);
    assert_false(X509_get_extended_key_usage(s.cert) & XKU_SSL_CLIENT);
    assert_int_equal(X509_get_key_usage(s.cert), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_host(s.cert, "mdm.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(s.cert, "other.example.com", 0, 0, NULL), 0);
    long life = seconds_from_now(X509_get0_notAfter(s.cert));
    assert_true(life > 29L * 86400 && life <= 30L * 86400);
    assert_verify_ok(s.cert, NULL);
    issued_free(&s);
}

static void test_issue_server_ip_and_localhost(void **state)
{
    (void)state;
    struct issued v4 = issue(fx.ca, PKI_CERT_SERVER, PKI_KEY_EC_P256, "srv", "192.0.2.7", 0);
    assert_int_equal(X509_check_ip_asc(v4.cert, "192.0.2.7", 0), 1);
    assert_int_equal(X509_check_host(v4.cert, "192.0.2.7", 0, 0, NULL), 0);
    long life = seconds_from_now(X509_get0_notAfter(v4.cert));
    assert_true(life > 364L * 86400 && life <= 365L * 86400); /* days 0 = 365 */
    issued_free(&v4);

    struct issued v6 = issue(fx.ca, PKI_CERT_SERVER, PKI_KEY_RSA2048, "srv", "2001:db8::1", 0);
    assert_int_equal(X509_check_ip_asc(v6.cert, "2001:db8::1", 0), 1);
    issued_free(&v6);

    struct issued lh = issue(fx.ca, PKI_CERT_SERVER, PKI_KEY_EC_P256, "localhost", "localhost", 1);
    assert_int_equal(X509_check_host(lh.cert, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(lh.cert, "127.0.0.1", 0), 1);
    assert_verify_ok(lh.cert, NULL);
    issued_free(&lh);

    /* A name that would inject other SAN entries through config syntax. */
    struct pki_issue_opts bad = {.kind = PKI_CERT_SERVER, .key_type = PKI_KEY_EC_P256,
                                 .common_name = "x", .dns_name = "a.example,IP:10.0.0.1"};
    X509 *c = NULL;
    EVP_PKEY *k = NULL;
    char *err = NULL;
    assert_int_equal(pki_issue(fx.ca, &bad, &c, &k, &err), -1);
    assert_null(c);
    assert_non_null(err);
    free(err);
}

static void test_issue_client_ec_and_rsa(void **state)
{
    (void)state;
    struct issued ec = issue_client(fx.ca, PKI_KEY_EC_P256);
    struct issued rsa = issue_client(fx.ca, PKI_KEY_RSA2048);
    assert_common_leaf(ec.cert, fx.ca);
    assert_common_leaf(rsa.cert, fx.ca);
    assert_int_equal(EVP_PKEY_get_bits(ec.key), 256);
    assert_int_equal(EVP_PKEY_get_base_id(rsa.key), EVP_PKEY_RSA);
    assert_int_equal(EVP_PKEY_get_bits(rsa.key), 2048);
    assert_int_equal(X509_get_key_usage(ec.cert), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_key_usage(rsa.cert), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_true(X509_get_extended_key_usage(ec.cert) & XKU_SSL_CLIENT);
    assert_false(X509_get_extended_key_usage(ec.cert) & XKU_SSL_SERVER);
    assert_int_equal(X509_get_ext_by_NID(ec.cert, NID_subject_alt_name, -1), -1);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get_serialNumber(ec.cert),
                                          X509_get_serialNumber(rsa.cert)), 0);
    assert_verify_ok(ec.cert, NULL);
    assert_verify_ok(rsa.cert, NULL);
    char a[65], b[65];
    pki_cert_fingerprint(ec.cert, a);
    pki_cert_fingerprint(rsa.cert, b);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    issued_free(&ec);
    issued_free(&rsa);
}

static void test_issue_rejects_bad_options(void **state)
{
    (void)state;
    X509 *c = NULL;
    EVP_PKEY *k = NULL;
    char *err = NULL;
    struct pki_issue_opts o = {.kind = PKI_CERT_CLIENT, .key_type = PKI_KEY_EC_P256};
    assert_int_equal(pki_issue(fx.ca, &o, &c, &k, &err), -1); /* no common name */
    assert_non_null(err);
    free(err);
    o.common_name = "x";
    o.days = -1;
    err = NULL;
    assert_int_equal(pki_issue(fx.ca, &o, &c, &k, &err), -1);
    assert_non_null(err);
    free(err);
    assert_null(c);
    assert_null(k);
}

/* ---- verification ---- */

static void test_verify_other_ca_fails(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.other, PKI_KEY_EC_P256);
    assert_verify_fails(x.cert, NULL, "certificate does not chain to steward's CA");
    /* The other CA's own (self-signed) certificate is not trusted either. */
    assert_verify_fails(fx.other->cert, NULL, "certificate does not chain to steward's CA");
    issued_free(&x);
}

static void test_verify_dates(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.ca, PKI_KEY_EC_P256);
    redate(x.cert, fx.ca, -10L * 86400, -86400);
    assert_verify_fails(x.cert, NULL, "certificate expired");
    redate(x.cert, fx.ca, 86400, 10L * 86400);
    assert_verify_fails(x.cert, NULL, "certificate not yet valid");
    redate(x.cert, fx.ca, -60, 86400);
    assert_verify_ok(x.cert, NULL);
    /* Re-signed by a different key: the signature no longer checks. */
    assert_true(X509_sign(x.cert, fx.other->key, EVP_sha256()) > 0);
    const char *reason = NULL;
    assert_int_equal(pki_verify_device_cert(fx.trust, x.cert, NULL, &reason), -1);
    assert_non_null(reason);
    issued_free(&x);
}

/* An intermediate: the other CA's key certified by steward's CA. */
static X509 *make_intermediate(void)
{
    X509 *im = X509_dup(fx.other->cert);
    assert_non_null(im);
    assert_int_equal(X509_set_issuer_name(im, X509_get_subject_name(fx.ca->cert)), 1);
    assert_true(X509_sign(im, fx.ca->key, EVP_sha256()) > 0);
    return im;
}

static void test_verify_with_intermediate(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.other, PKI_KEY_EC_P256);
    X509 *im = make_intermediate();
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, im) > 0);
    assert_verify_fails(x.cert, NULL, "certificate does not chain to steward's CA");
    assert_verify_ok(x.cert, chain);
    sk_X509_pop_free(chain, X509_free);
    issued_free(&x);
}

struct thread_arg {
    X509 *good, *bad;
    int failures;
};

static void *verify_many(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 100; i++) {
        const char *r = NULL;
        if (pki_verify_device_cert(fx.trust, a->good, NULL, &r) != 0 ||
            pki_verify_device_cert(fx.trust, a->bad, NULL, &r) != -1)
            a->failures++;
    }
    return NULL;
}

/* One trust store, many threads, as the http workers use it. */
static void test_verify_concurrent(void **state)
{
    (void)state;
    struct issued good = issue_client(fx.ca, PKI_KEY_EC_P256);
    struct issued bad = issue_client(fx.other, PKI_KEY_EC_P256);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){good.cert, bad.cert, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    issued_free(&good);
    issued_free(&bad);
}

static void test_trust_new_errors(void **state)
{
    (void)state;
    char *err = NULL;
    assert_null(pki_trust_new("/nonexistent/ca.pem", &err));
    assert_non_null(err);
    free(err);
    char empty[128];
    path_in(empty, sizeof empty, "empty.pem");
    FILE *f = fopen(empty, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);
    err = NULL;
    assert_null(pki_trust_new(empty, &err));
    assert_non_null(err);
    free(err);
    pki_trust_free(NULL);
}

/* A trust file with two anchors trusts certificates from both CAs. */
static void test_trust_several_anchors(void **state)
{
    (void)state;
    char both[128];
    path_in(both, sizeof both, "both.pem");
    FILE *f = fopen(both, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, fx.ca->cert), 1);
    assert_int_equal(PEM_write_X509(f, fx.other->cert), 1);
    fclose(f);
    char *err = NULL;
    struct pki_trust *t = pki_trust_new(both, &err);
    assert_non_null(t);
    struct issued a = issue_client(fx.ca, PKI_KEY_EC_P256);
    struct issued b = issue_client(fx.other, PKI_KEY_EC_P256);
    const char *reason = NULL;
    assert_int_equal(pki_verify_device_cert(t, a.cert, NULL, &reason), 0);
    assert_int_equal(pki_verify_device_cert(t, b.cert, NULL, &reason), 0);
    issued_free(&a);
    issued_free(&b);
    pki_trust_free(t);
}

/* ---- Mdm-Signature ---- */

static const char body[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>"
    "<key>MessageType</key><string>Authenticate</string>"
    "<key>UDID</key><string>00008020-000915083C80012E</string></dict></plist>\n";
#define BODY ((const uint8_t *)body)
#define BODY_LEN (sizeof body - 1)

static void assert_sig_ok(const char *sig, const uint8_t *b, size_t len, X509 *expect)
{
    X509 *signer = NULL;
    const char *reason = NULL;
    int rc = pki_verify_mdm_signature(fx.trust, sig, b, len, &signer, &reason);
    if (rc != 0)
        print_error("mdm signature: %s\n", reason ? reason : "?");
    assert_int_equal(rc, 0);
    assert_non_null(signer);
    char a[65], e[65];
    pki_cert_fingerprint(signer, a);
    pki_cert_fingerprint(expect, e);
    assert_string_equal(a, e);
    X509_free(signer);
}

static void assert_sig_fails(const char *sig, const uint8_t *b, size_t len, const char *want)
{
    X509 *signer = (X509 *)1;
    const char *reason = NULL;
    assert_int_equal(pki_verify_mdm_signature(fx.trust, sig, b, len, &signer, &reason), -1);
    assert_null(signer);
    assert_non_null(reason);
    assert_string_equal(reason, want);
}

static CMS_ContentInfo *decode_cms(const char *b64)
{
    size_t n = 0;
    uint8_t *der = ids_b64_decode(b64, strlen(b64), &n);
    assert_non_null(der);
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)n);
    free(der);
    assert_non_null(cms);
    return cms;
}

static char *encode_cms(CMS_ContentInfo *cms)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    assert_true(n > 0);
    char *b64 = ids_b64_encode(der, (size_t)n);
    OPENSSL_free(der);
    assert_non_null(b64);
    return b64;
}

/* Builds a signature by hand, the way a device with its own choices would:
 * chosen digest, optional extra certificates, optionally attached content. */
static char *sign_custom(X509 *cert, EVP_PKEY *key, const EVP_MD *md, STACK_OF(X509) *extra,
                         unsigned int flags, const uint8_t *b, size_t len)
{
    BIO *in = BIO_new_mem_buf(b, (int)len);
    assert_non_null(in);
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, extra, NULL, flags | CMS_PARTIAL);
    assert_non_null(cms);
    assert_non_null(CMS_add1_signer(cms, cert, key, md, flags));
    assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
    char *b64 = encode_cms(cms);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    return b64;
}

static void test_mdm_signature_round_trip(void **state)
{
    (void)state;
    struct issued ec = issue_client(fx.ca, PKI_KEY_EC_P256);
    struct issued rsa = issue_client(fx.ca, PKI_KEY_RSA2048);
    char *s1 = pki_sign_mdm_signature(ec.cert, ec.key, BODY, BODY_LEN);
    char *s2 = pki_sign_mdm_signature(rsa.cert, rsa.key, BODY, BODY_LEN);
    assert_non_null(s1);
    assert_non_null(s2);
    assert_sig_ok(s1, BODY, BODY_LEN, ec.cert);
    assert_sig_ok(s2, BODY, BODY_LEN, rsa.cert);

    /* What the signer builds: detached SignedData, SHA-256, cert included. */
    CMS_ContentInfo *cms = decode_cms(s1);
    assert_int_equal(CMS_is_detached(cms), 1);
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    assert_int_equal(sk_CMS_SignerInfo_num(sis), 1);
    X509_ALGOR *dig = NULL;
    CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(sis, 0), NULL, NULL, &dig, NULL);
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, dig);
    assert_int_equal(OBJ_obj2nid(oid), NID_sha256);
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    assert_int_equal(sk_X509_num(certs), 1);
    sk_X509_pop_free(certs, X509_free);
    CMS_ContentInfo_free(cms);

    /* Base64 wrapped over lines, as some clients send it, still verifies. */
    size_t n = strlen(s1);
    char *wrapped = malloc(n + n / 64 + 2);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && i % 64 == 0)
            wrapped[o++] = '\n';
        wrapped[o++] = s1[i];
    }
    wrapped[o] = '\0';
    assert_sig_ok(wrapped, BODY, BODY_LEN, ec.cert);
    free(wrapped);

    /* An empty body can be signed and verified too. */
    char *s3 = pki_sign_mdm_signature(ec.cert, ec.key, NULL, 0);
    assert_non_null(s3);
    assert_sig_ok(s3, NULL, 0, ec.cert);
    assert_sig_fails(s3, BODY, BODY_LEN, "signature does not match the body");
    free(s3);

    free(s1);
    free(s2);
    issued_free(&ec);
    issued_free(&rsa);
}

static void test_mdm_signature_tampered_body(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.ca, PKI_KEY_EC_P256);
    char *sig = pki_sign_mdm_signature(x.cert, x.key, BODY, BODY_LEN);
    assert_non_null(sig);
    uint8_t *copy = malloc(BODY_LEN);
    memcpy(copy, BODY, BODY_LEN);
    copy[60] ^= 1;
    assert_sig_fails(sig, copy, BODY_LEN, "signature does not match the body");
    assert_sig_fails(sig, BODY, BODY_LEN - 1, "signature does not match the body");
    /* CRLF in place of LF: CMS_BINARY means no line-ending games. */
    char crlf[sizeof body + 8];
    const char *nl = strchr(body, '\n');
    size_t head = (size_t)(nl - body);
    memcpy(crlf, body, head);
    crlf[head] = '\r';
    memcpy(crlf + head + 1, nl, BODY_LEN - head);
    assert_sig_fails(sig, (const uint8_t *)crlf, BODY_LEN + 1,
                     "signature does not match the body");
    free(copy);
    free(sig);
    issued_free(&x);
}

static void test_mdm_signature_other_ca(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.other, PKI_KEY_EC_P256);
    char *sig = pki_sign_mdm_signature(x.cert, x.key, BODY, BODY_LEN);
    assert_non_null(sig);
    assert_sig_fails(sig, BODY, BODY_LEN, "signer certificate does not chain to steward's CA");
    free(sig);

    /* Expired signer from steward's own CA. */
    struct issued old = issue_client(fx.ca, PKI_KEY_EC_P256);
    redate(old.cert, fx.ca, -10L * 86400, -86400);
    sig = pki_sign_mdm_signature(old.cert, old.key, BODY, BODY_LEN);
    assert_non_null(sig);
    assert_sig_fails(sig, BODY, BODY_LEN, "signer certificate expired");
    free(sig);

    /* The same foreign signer becomes acceptable when the CMS carries an
     * intermediate that chains to steward's CA. */
    STACK_OF(X509) *extra = sk_X509_new_null();
    assert_true(sk_X509_push(extra, make_intermediate()) > 0);
    sig = sign_custom(x.cert, x.key, EVP_sha256(), extra, CMS_DETACHED | CMS_BINARY, BODY,
                      BODY_LEN);
    assert_sig_ok(sig, BODY, BODY_LEN, x.cert);
    free(sig);
    sk_X509_pop_free(extra, X509_free);
    issued_free(&old);
    issued_free(&x);
}

static void test_mdm_signature_garbage(void **state)
{
    (void)state;
    assert_sig_fails("", BODY, BODY_LEN, "Mdm-Signature is not valid base64");
    assert_sig_fails("!!!not base64!!!", BODY, BODY_LEN, "Mdm-Signature is not valid base64");
    assert_sig_fails("aGVsbG8gd29ybGQ=", BODY, BODY_LEN, "Mdm-Signature is not a CMS SignedData");

    /* Valid CMS, wrong type: plain data content. */
    BIO *in = BIO_new_mem_buf(body, (int)BODY_LEN);
    CMS_ContentInfo *data = CMS_data_create(in, CMS_BINARY);
    assert_non_null(data);
    char *b64 = encode_cms(data);
    assert_sig_fails(b64, BODY, BODY_LEN, "Mdm-Signature is not a CMS SignedData");
    free(b64);
    CMS_ContentInfo_free(data);
    BIO_free(in);

    /* A real signature followed by extra bytes. */
    struct issued x = issue_client(fx.ca, PKI_KEY_EC_P256);
    char *sig = pki_sign_mdm_signature(x.cert, x.key, BODY, BODY_LEN);
    size_t n = 0;
    uint8_t *der = ids_b64_decode(sig, strlen(sig), &n);
    uint8_t *longer = malloc(n + 3);
    memcpy(longer, der, n);
    memcpy(longer + n, "xyz", 3);
    b64 = ids_b64_encode(longer, n + 3);
    assert_sig_fails(b64, BODY, BODY_LEN, "Mdm-Signature is not a CMS SignedData");
    free(b64);
    free(longer);
    /* Truncated. */
    b64 = ids_b64_encode(der, n / 2);
    assert_sig_fails(b64, BODY, BODY_LEN, "Mdm-Signature is not a CMS SignedData");
    free(b64);
    free(der);
    free(sig);

    /* Oversized header: refused before any parsing. */
    size_t big = 200 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, 'A', big);
    huge[big] = '\0';
    assert_sig_fails(huge, BODY, BODY_LEN, "Mdm-Signature is too large");
    free(huge);
    issued_free(&x);
}

static void test_mdm_signature_shape(void **state)
{
    (void)state;
    struct issued a = issue_client(fx.ca, PKI_KEY_EC_P256);
    struct issued b = issue_client(fx.ca, PKI_KEY_RSA2048);

    /* Content attached rather than detached. */
    char *att = sign_custom(a.cert, a.key, EVP_sha256(), NULL, CMS_BINARY, BODY, BODY_LEN);
    assert_sig_fails(att, BODY, BODY_LEN, "Mdm-Signature is not detached");
    free(att);

    /* Two signers. */
    BIO *in = BIO_new_mem_buf(body, (int)BODY_LEN);
    unsigned int flags = CMS_DETACHED | CMS_BINARY;
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL);
    assert_non_null(CMS_add1_signer(cms, a.cert, a.key, EVP_sha256(), flags));
    assert_non_null(CMS_add1_signer(cms, b.cert, b.key, EVP_sha256(), flags));
    assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
    char *two = encode_cms(cms);
    assert_sig_fails(two, BODY, BODY_LEN, "Mdm-Signature must have exactly one signer");
    free(two);
    CMS_ContentInfo_free(cms);
    BIO_free(in);

    /* Signer certificate left out. */
    char *nocert = sign_custom(a.cert, a.key, EVP_sha256(), NULL,
                               CMS_DETACHED | CMS_BINARY | CMS_NOCERTS, BODY, BODY_LEN);
    assert_sig_fails(nocert, BODY, BODY_LEN,
                     "Mdm-Signature does not carry the signer certificate");
    free(nocert);
    issued_free(&a);
    issued_free(&b);
}

/* Older iOS signs with SHA-1; OpenSSL 3 must still accept it here. */
static void test_mdm_signature_sha1(void **state)
{
    (void)state;
    struct issued rsa = issue_client(fx.ca, PKI_KEY_RSA2048);
    struct issued ec = issue_client(fx.ca, PKI_KEY_EC_P256);
    const unsigned int flags = CMS_DETACHED | CMS_BINARY;
    char *s1 = sign_custom(rsa.cert, rsa.key, EVP_sha1(), NULL, flags, BODY, BODY_LEN);
    char *s2 = sign_custom(ec.cert, ec.key, EVP_sha1(), NULL, flags, BODY, BODY_LEN);

    CMS_ContentInfo *cms = decode_cms(s1);
    X509_ALGOR *dig = NULL;
    CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0), NULL, NULL,
                             &dig, NULL);
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR_get0(&oid, NULL, NULL, dig);
    assert_int_equal(OBJ_obj2nid(oid), NID_sha1);
    CMS_ContentInfo_free(cms);

    assert_sig_ok(s1, BODY, BODY_LEN, rsa.cert);
    assert_sig_ok(s2, BODY, BODY_LEN, ec.cert);
    assert_sig_fails(s1, BODY, BODY_LEN - 2, "signature does not match the body");
    free(s1);
    free(s2);
    issued_free(&rsa);
    issued_free(&ec);
}

/* ---- parsing ---- */

static char *der_b64(X509 *x, uint8_t **der_out, size_t *len_out)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    char *b64 = ids_b64_encode(der, (size_t)n);
    *der_out = der;
    *len_out = (size_t)n;
    return b64;
}

static void assert_rfc9440_rejects(const char *v)
{
    X509 *x = pki_cert_from_rfc9440(v);
    if (x)
        print_error("accepted: %.40s\n", v ? v : "(null)");
    assert_null(x);
}

static void test_rfc9440(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.ca, PKI_KEY_EC_P256);
    uint8_t *der = NULL;
    size_t n = 0;
    char *b64 = der_b64(x.cert, &der, &n);
    size_t bl = strlen(b64);
    char *v = malloc(bl + 16);

    char want[65], got[65];
    pki_cert_fingerprint(x.cert, want);
    snprintf(v, bl + 16, ":%s:", b64);
    X509 *c = pki_cert_from_rfc9440(v);
    assert_non_null(c);
    pki_cert_fingerprint(c, got);
    assert_string_equal(got, want);
    X509_free(c);
    snprintf(v, bl + 16, "  :%s: ", b64); /* optional whitespace around the item */
    c = pki_cert_from_rfc9440(v);
    assert_non_null(c);
    X509_free(c);

    assert_rfc9440_rejects(b64); /* no colons */
    snprintf(v, bl + 16, ":%s", b64);
    assert_rfc9440_rejects(v);
    snprintf(v, bl + 16, "%s:", b64);
    assert_rfc9440_rejects(v);
    snprintf(v, bl + 16, ":%s:;a=1", b64); /* trailing parameters */
    assert_rfc9440_rejects(v);
    snprintf(v, bl + 16, "\"%s\"", b64);
    assert_rfc9440_rejects(v);
    snprintf(v, bl + 16, ":%.*s %s:", 20, b64, b64 + 20); /* inner space */
    assert_rfc9440_rejects(v);
    snprintf(v, bl + 16, ":%.*s-%s:", 20, b64, b64 + 21); /* URL-safe alphabet */
    assert_rfc9440_rejects(v);
    snprintf(v, bl + 16, ":%.*s:", (int)(bl / 2), b64); /* truncated DER */
    assert_rfc9440_rejects(v);
    assert_rfc9440_rejects("::");
    assert_rfc9440_rejects(":");
    assert_rfc9440_rejects("");
    assert_rfc9440_rejects(":aGVsbG8=:");
    assert_rfc9440_rejects(NULL);

    free(v);
    free(b64);
    OPENSSL_free(der);
    issued_free(&x);
}

static void test_cert_from_der(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.ca, PKI_KEY_EC_P256);
    uint8_t *der = NULL;
    size_t n = 0;
    char *b64 = der_b64(x.cert, &der, &n);
    X509 *c = pki_cert_from_der(der, n);
    assert_non_null(c);
    assert_int_equal(X509_cmp(c, x.cert), 0);
    X509_free(c);
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, der, n);
    longer[n] = 0;
    assert_null(pki_cert_from_der(longer, n + 1));
    assert_null(pki_cert_from_der(der, n - 1));
    assert_null(pki_cert_from_der(der, 0));
    assert_null(pki_cert_from_der(NULL, 10));
    free(longer);
    free(b64);
    OPENSSL_free(der);
    issued_free(&x);
}

static void test_fingerprint_is_sha256_of_der(void **state)
{
    (void)state;
    uint8_t *der = NULL;
    size_t n = 0;
    char *b64 = der_b64(fx.ca->cert, &der, &n);
    char want[65], got[65];
    ids_sha256_hex(der, n, want);
    pki_cert_fingerprint(fx.ca->cert, got);
    assert_string_equal(got, want);
    for (const char *p = got; *p; p++)
        assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    free(b64);
    OPENSSL_free(der);
}

static void test_write_pem(void **state)
{
    (void)state;
    struct issued x = issue_client(fx.ca, PKI_KEY_EC_P256);
    char cert[128], key[128];
    path_in(cert, sizeof cert, "dev.pem");
    path_in(key, sizeof key, "dev.key");
    assert_int_equal(pki_write_cert_pem(cert, x.cert), 0);
    assert_int_equal(pki_write_cert_pem(cert, x.cert), 0); /* certificates may be replaced */
    assert_int_equal(pki_write_key_pem(key, x.key), 0);
    assert_int_equal(pki_write_key_pem(key, x.key), -1); /* keys are never overwritten */
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char *fp = file_fingerprint(cert);
    char want[65];
    pki_cert_fingerprint(x.cert, want);
    assert_string_equal(fp, want);
    free(fp);
    FILE *f = fopen(key, "r");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_eq(k, x.key), 1);
    EVP_PKEY_free(k);
    issued_free(&x);
}

/* ---- SCEP test vectors ---- */

static int scep_path(char *out, size_t n, const char *name)
{
    const char *shared = getenv("STEWARD_SHARED");
    snprintf(out, n, "%s/vectors/scep/%s", shared ? shared : "/work/shared", name);
    return exists(out);
}

static X509 *read_pem(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

static int expired_now(X509 *x)
{
    return X509_cmp_current_time(X509_get0_notAfter(x)) <= 0;
}

/* client.pem against a trust built from ca.pem. The expectation is worked
 * out from the certificates themselves: if ca.pem issued client.pem, it
 * verifies unless one of them has expired; otherwise it must not chain. */
static void test_scep_vectors(void **state)
{
    (void)state;
    char ca_pem[512], client_pem[512], ca_key[512];
    if (!scep_path(ca_pem, sizeof ca_pem, "ca.pem") ||
        !scep_path(client_pem, sizeof client_pem, "client.pem")) {
        print_message("skipping: SCEP vectors not found (%s)\n", ca_pem);
        skip();
        return;
    }
    char *err = NULL;
    struct pki_trust *t = pki_trust_new(ca_pem, &err);
    assert_non_null(t);
    X509 *ca = read_pem(ca_pem);
    X509 *client = read_pem(client_pem);
    const char *reason = NULL;
    int rc = pki_verify_device_cert(t, client, NULL, &reason);
    if (X509_check_issued(ca, client) == X509_V_OK) {
        if (expired_now(client)) {
            assert_int_equal(rc, -1);
            assert_string_equal(reason, "certificate expired");
        } else if (expired_now(ca)) {
            assert_int_equal(rc, -1);
            assert_string_equal(reason, "issuing CA certificate expired");
        } else {
            assert_int_equal(rc, 0);
        }
    } else {
        print_message("note: vectors/scep/client.pem is not issued by ca.pem\n");
        assert_int_equal(rc, -1);
        assert_string_equal(reason, "certificate does not chain to steward's CA");
    }

    /* ca.key is the test CA's key: a certificate issued with it chains to
     * ca.pem, and fails only if the test CA has expired by now. */
    if (scep_path(ca_key, sizeof ca_key, "ca.key")) {
        struct pki_ca *sca = pki_ca_load(ca_pem, ca_key, &err);
        assert_non_null(sca);
        struct issued d = issue_client(sca, PKI_KEY_EC_P256);
        rc = pki_verify_device_cert(t, d.cert, NULL, &reason);
        if (expired_now(ca)) {
            print_message("note: vectors/scep/ca.pem has expired\n");
            assert_int_equal(rc, -1);
            assert_string_equal(reason, "issuing CA certificate expired");
        } else {
            assert_int_equal(rc, 0);
        }
        /* steward's own trust does not accept it either way. */
        assert_int_equal(pki_verify_device_cert(fx.trust, d.cert, NULL, &reason), -1);
        assert_string_equal(reason, "certificate does not chain to steward's CA");
        issued_free(&d);
        pki_ca_free(sca);
    }
    X509_free(ca);
    X509_free(client);
    pki_trust_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_create_writes_files),
        cmocka_unit_test(test_ca_create_refuses_existing),
        cmocka_unit_test(test_ca_load_properties),
        cmocka_unit_test(test_ca_load_rejects_mismatched_key),
        cmocka_unit_test(test_issue_server_dns),
        cmocka_unit_test(test_issue_server_ip_and_localhost),
        cmocka_unit_test(test_issue_client_ec_and_rsa),
        cmocka_unit_test(test_issue_rejects_bad_options),
        cmocka_unit_test(test_verify_other_ca_fails),
        cmocka_unit_test(test_verify_dates),
        cmocka_unit_test(test_verify_with_intermediate),
        cmocka_unit_test(test_verify_concurrent),
        cmocka_unit_test(test_trust_new_errors),
        cmocka_unit_test(test_trust_several_anchors),
        cmocka_unit_test(test_mdm_signature_round_trip),
        cmocka_unit_test(test_mdm_signature_tampered_body),
        cmocka_unit_test(test_mdm_signature_other_ca),
        cmocka_unit_test(test_mdm_signature_garbage),
        cmocka_unit_test(test_mdm_signature_shape),
        cmocka_unit_test(test_mdm_signature_sha1),
        cmocka_unit_test(test_rfc9440),
        cmocka_unit_test(test_cert_from_der),
        cmocka_unit_test(test_fingerprint_is_sha256_of_der),
        cmocka_unit_test(test_write_pem),
        cmocka_unit_test(test_scep_vectors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
