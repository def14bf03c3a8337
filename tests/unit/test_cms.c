/* test_cms.c: unit tests for src/pki/cms.c: SignedData sign/verify attached
 * and detached, tampering, digests and signed attributes, EnvelopedData
 * round trips and refusals (wrong recipient, wrong key, garbage), and
 * certificate-only SignedData. Certificates come from pki_ca_create/pki_issue. */
#include "pki/cms.h"
#include "pki/pki.h"

#include <ftw.h>
#include <openssl/err.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static struct {
    char dir[64];
    struct pki_ca *ca;
    X509 *a_cert, *b_cert, *ec_cert;
    EVP_PKEY *a_key, *b_key, *ec_key;
} fx;

static const uint8_t DATA[] = "line one\nline two\r\nbinary \x00\x01\x02 end";
#define DATA_LEN (sizeof DATA - 1)

static int issue(enum pki_key_type kt, const char *cn, X509 **cert, EVP_PKEY **key)
{
    struct pki_issue_opts o = {.kind = PKI_CERT_CLIENT, .key_type = kt, .common_name = cn};
    char *err = NULL;
    int rc = pki_issue(fx.ca, &o, cert, key, &err);
    if (rc != 0)
        fprintf(stderr, "pki_issue: %s\n", err ? err : "?");
    free(err);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/test_cms.XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/ca.pem", fx.dir);
    snprintf(key, sizeof key, "%s/ca.key", fx.dir);
    char *err = NULL;
    if (pki_ca_create(cert, key, "CMS Test CA", &err) != 0 ||
        !(fx.ca = pki_ca_load(cert, key, &err))) {
        fprintf(stderr, "CA: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    if (issue(PKI_KEY_RSA2048, "a", &fx.a_cert, &fx.a_key) ||
        issue(PKI_KEY_RSA2048, "b", &fx.b_cert, &fx.b_key) ||
        issue(PKI_KEY_EC_P256, "ec", &fx.ec_cert, &fx.ec_key))
        return -1;
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
    X509_free(fx.a_cert);
    X509_free(fx.b_cert);
    X509_free(fx.ec_cert);
    EVP_PKEY_free(fx.a_key);
    EVP_PKEY_free(fx.b_key);
    EVP_PKEY_free(fx.ec_key);
    pki_ca_free(fx.ca);
    nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- SignedData ---- */

static void test_sign_verify_attached(void **state)
{
    (void)state;
    STACK_OF(X509) *extra = sk_X509_new_null();
    assert_true(sk_X509_push(extra, fx.ca->cert) > 0);
    assert_true(sk_X509_push(extra, fx.a_cert) > 0); /* the signer again: not duplicated */
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(cms_sign(fx.a_cert, fx.a_key, extra, NULL, DATA, DATA_LEN, 0, &der, &len), 0);
    sk_X509_free(extra);

    uint8_t *content = NULL;
    size_t clen = 0;
    X509 *signer = NULL;
    STACK_OF(X509) *others = NULL;
    const char *reason = NULL;
    assert_int_equal(cms_verify(der, len, NULL, 0, &content, &clen, &signer, &others, &reason), 0);
    assert_int_equal(clen, DATA_LEN);
    assert_memory_equal(content, DATA, DATA_LEN);
    assert_int_equal(X509_cmp(signer, fx.a_cert), 0);
    assert_int_equal(sk_X509_num(others), 1);
    assert_int_equal(X509_cmp(sk_X509_value(others, 0), fx.ca->cert), 0);

    /* Default digest is SHA-256. */
    CMS_ContentInfo *cms = cms_signed_parse(der, len, &reason);
    assert_non_null(cms);
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha256);
    CMS_ContentInfo_free(cms);

    /* Verifying attached content as if detached is refused. */
    assert_int_equal(cms_verify(der, len, DATA, DATA_LEN, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_attached);

    free(content);
    X509_free(signer);
    sk_X509_pop_free(others, X509_free);
    free(der);
}

static void test_sign_verify_detached(void **state)
{
    (void)state;
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(
        cms_sign(fx.ec_cert, fx.ec_key, NULL, EVP_sha512(), DATA, DATA_LEN, 1, &der, &len), 0);
    X509 *signer = NULL;
    STACK_OF(X509) *others = (STACK_OF(X509) *)1;
    const char *reason = NULL;
    assert_int_equal(
        cms_verify(der, len, DATA, DATA_LEN, NULL, NULL, &signer, &others, &reason), 0);
    assert_int_equal(X509_cmp(signer, fx.ec_cert), 0);
    assert_null(others);
    X509_free(signer);

    CMS_ContentInfo *cms = cms_signed_parse(der, len, &reason);
    assert_non_null(cms);
    assert_int_equal(CMS_is_detached(cms), 1);
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha512);
    CMS_ContentInfo_free(cms);

    /* Without the content there is nothing to verify. */
    assert_int_equal(cms_verify(der, len, NULL, 0, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_no_content);
    free(der);

    /* An empty body can be signed and verified. */
    assert_int_equal(cms_sign(fx.a_cert, fx.a_key, NULL, NULL, NULL, 0, 1, &der, &len), 0);
    static const uint8_t none[1];
    assert_int_equal(cms_verify(der, len, none, 0, NULL, NULL, NULL, NULL, &reason), 0);
    assert_int_equal(cms_verify(der, len, DATA, 1, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_bad_signature);
    free(der);
}

static void test_tampered(void **state)
{
    (void)state;
    uint8_t *der = NULL;
    size_t len = 0;
    const char *reason = NULL;
    /* Detached: one flipped bit of the content. */
    assert_int_equal(cms_sign(fx.a_cert, fx.a_key, NULL, NULL, DATA, DATA_LEN, 1, &der, &len), 0);
    uint8_t copy[DATA_LEN];
    memcpy(copy, DATA, DATA_LEN);
    copy[3] ^= 0x20;
    assert_int_equal(cms_verify(der, len, copy, DATA_LEN, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_bad_signature);
    assert_int_equal(cms_verify(der, len, DATA, DATA_LEN - 1, NULL, NULL, NULL, NULL, &reason),
                     -1);
    free(der);

    /* Attached: flip a byte of the content inside the DER. */
    assert_int_equal(cms_sign(fx.a_cert, fx.a_key, NULL, NULL, DATA, DATA_LEN, 0, &der, &len), 0);
    uint8_t *at = memmem(der, len, DATA, DATA_LEN);
    assert_non_null(at);
    at[5] ^= 0x01;
    uint8_t *content = (uint8_t *)1;
    X509 *signer = (X509 *)1;
    assert_int_equal(cms_verify(der, len, NULL, 0, &content, NULL, &signer, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_bad_signature);
    assert_null(content);
    assert_null(signer);
    at[5] ^= 0x01;
    assert_int_equal(cms_verify(der, len, NULL, 0, NULL, NULL, NULL, NULL, &reason), 0);

    /* Trailing bytes and truncation are malformed. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_int_equal(cms_verify(longer, len + 1, NULL, 0, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_malformed);
    assert_int_equal(cms_verify(der, len / 2, NULL, 0, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_malformed);
    free(longer);
    free(der);

    /* Not a SignedData: an EnvelopedData. */
    assert_int_equal(cms_encrypt(fx.a_cert, NULL, DATA, DATA_LEN, &der, &len), 0);
    assert_int_equal(cms_verify(der, len, NULL, 0, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_not_signed);
    free(der);
}

static void test_signed_attrs(void **state)
{
    (void)state;
    static const uint8_t nonce[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const struct cms_attr attrs[] = {
        {"2.16.840.1.113733.1.9.2", V_ASN1_PRINTABLESTRING, (const uint8_t *)"19", 2},
        {"2.16.840.1.113733.1.9.5", V_ASN1_OCTET_STRING, nonce, sizeof nonce},
    };
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(cms_sign_attrs(fx.a_cert, fx.a_key, NULL, EVP_sha1(), DATA, DATA_LEN, attrs,
                                    2, &der, &len),
                     0);
    const char *reason = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(der, len, &reason);
    assert_non_null(cms);
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha1);
    const ASN1_STRING *v = NULL;
    assert_int_equal(cms_signed_attr(cms, "2.16.840.1.113733.1.9.2", &v), 1);
    assert_int_equal(ASN1_STRING_type(v), V_ASN1_PRINTABLESTRING);
    assert_int_equal(ASN1_STRING_length(v), 2);
    assert_memory_equal(ASN1_STRING_get0_data(v), "19", 2);
    assert_int_equal(cms_signed_attr(cms, "2.16.840.1.113733.1.9.5", &v), 1);
    assert_int_equal(ASN1_STRING_type(v), V_ASN1_OCTET_STRING);
    assert_memory_equal(ASN1_STRING_get0_data(v), nonce, sizeof nonce);
    assert_int_equal(cms_signed_attr(cms, "2.16.840.1.113733.1.9.7", &v), 0);
    /* contentType is an OBJECT, not a string. */
    assert_int_equal(cms_signed_attr(cms, "1.2.840.113549.1.9.3", &v), -1);
    /* The signature covers the attributes. */
    assert_int_equal(cms_verify_parsed(cms, NULL, 0, NULL, NULL, NULL, NULL, &reason), 0);
    CMS_ContentInfo_free(cms);

    /* Changing "19" to "17" inside the DER breaks the signature. */
    uint8_t *at = memmem(der, len, "\x13\x02" "19", 4);
    assert_non_null(at);
    at[3] = '7';
    cms = cms_signed_parse(der, len, &reason);
    assert_non_null(cms);
    assert_int_equal(cms_verify_parsed(cms, NULL, 0, NULL, NULL, NULL, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_bad_signature);
    CMS_ContentInfo_free(cms);
    free(der);
}

/* ---- EnvelopedData ---- */

static void round_trip(X509 *cert, EVP_PKEY *key, const EVP_CIPHER *cipher, int want_nid)
{
    uint8_t *der = NULL, *out = NULL;
    size_t len = 0, out_len = 0;
    int nid = 0;
    const char *reason = NULL;
    assert_int_equal(cms_encrypt(cert, cipher, DATA, DATA_LEN, &der, &len), 0);
    assert_null(memmem(der, len, "line one", 8)); /* really encrypted */
    int rc = cms_decrypt(cert, key, der, len, &out, &out_len, &nid, &reason);
    if (rc != 0)
        print_error("decrypt: %s\n", reason);
    assert_int_equal(rc, 0);
    assert_int_equal(nid, want_nid);
    assert_int_equal(out_len, DATA_LEN);
    assert_memory_equal(out, DATA, DATA_LEN);
    free(out);
    free(der);
}

static void test_encrypt_decrypt(void **state)
{
    (void)state;
    round_trip(fx.a_cert, fx.a_key, NULL, NID_aes_256_cbc);
    round_trip(fx.a_cert, fx.a_key, EVP_aes_128_cbc(), NID_aes_128_cbc);
    round_trip(fx.a_cert, fx.a_key, EVP_aes_192_cbc(), NID_aes_192_cbc);
    round_trip(fx.ec_cert, fx.ec_key, NULL, NID_aes_256_cbc); /* key agreement */
    EVP_CIPHER *des3 = EVP_CIPHER_fetch(NULL, "DES-EDE3-CBC", NULL);
    if (des3)
        round_trip(fx.a_cert, fx.a_key, des3, NID_des_ede3_cbc);
    else
        print_message("DES-EDE3-CBC not available in this OpenSSL; skipped\n");
    EVP_CIPHER_free(des3);
    ERR_clear_error();
}

static void test_decrypt_refusals(void **state)
{
    (void)state;
    uint8_t *der = NULL, *out = (uint8_t *)1;
    size_t len = 0, out_len = 9;
    const char *reason = NULL;
    assert_int_equal(cms_encrypt(fx.a_cert, NULL, DATA, DATA_LEN, &der, &len), 0);

    /* Another recipient's certificate and key. */
    assert_int_equal(cms_decrypt(fx.b_cert, fx.b_key, der, len, &out, &out_len, NULL, &reason),
                     -1);
    assert_ptr_equal(reason, cms_reason_not_for_us);
    assert_string_equal(reason, "not addressed to us");
    assert_null(out);
    assert_int_equal(out_len, 0);

    /* The right certificate with the wrong key. */
    assert_int_equal(cms_decrypt(fx.a_cert, fx.b_key, der, len, &out, &out_len, NULL, &reason),
                     -1);
    assert_ptr_equal(reason, cms_reason_decrypt);
    assert_null(out);

    /* Garbage, a truncated envelope, and a SignedData. */
    assert_int_equal(cms_decrypt(fx.a_cert, fx.a_key, DATA, DATA_LEN, &out, &out_len, NULL,
                                 &reason),
                     -1);
    assert_ptr_equal(reason, cms_reason_not_enveloped);
    assert_int_equal(cms_decrypt(fx.a_cert, fx.a_key, der, len - 1, &out, &out_len, NULL, &reason),
                     -1);
    assert_ptr_equal(reason, cms_reason_not_enveloped);
    free(der);
    assert_int_equal(cms_sign(fx.a_cert, fx.a_key, NULL, NULL, DATA, DATA_LEN, 0, &der, &len), 0);
    assert_int_equal(cms_decrypt(fx.a_cert, fx.a_key, der, len, &out, &out_len, NULL, &reason),
                     -1);
    assert_ptr_equal(reason, cms_reason_not_enveloped);
    free(der);

    /* AES-128-ECB (same OID length as AES-128-CBC, patched in): refused. */
    assert_int_equal(cms_encrypt(fx.a_cert, EVP_aes_128_cbc(), DATA, DATA_LEN, &der, &len), 0);
    static const uint8_t cbc_oid[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                      0x65, 0x03, 0x04, 0x01, 0x02};
    uint8_t *at = memmem(der, len, cbc_oid, sizeof cbc_oid);
    assert_non_null(at);
    at[sizeof cbc_oid - 1] = 0x01;
    int nid = 0;
    assert_int_equal(cms_decrypt(fx.a_cert, fx.a_key, der, len, &out, &out_len, &nid, &reason),
                     -1);
    assert_ptr_equal(reason, cms_reason_cipher);
    assert_int_equal(nid, NID_aes_128_ecb);
    free(der);
}

/* ---- certificate-only SignedData ---- */

static X509_CRL *make_crl(void)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, 1), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(fx.ca->cert)), 1);
    ASN1_TIME *now = X509_gmtime_adj(NULL, 0);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, now), 1);
    ASN1_TIME_free(now);
    assert_true(X509_CRL_sign(crl, fx.ca->key, EVP_sha256()) > 0);
    return crl;
}

static void test_certs_only(void **state)
{
    (void)state;
    STACK_OF(X509) *in = sk_X509_new_null();
    assert_true(sk_X509_push(in, fx.a_cert) > 0);
    assert_true(sk_X509_push(in, fx.ca->cert) > 0);
    X509_CRL *crl = make_crl();
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(cms_certs_only(in, crl, &der, &len), 0);
    sk_X509_free(in);

    STACK_OF(X509) *certs = NULL;
    STACK_OF(X509_CRL) *crls = NULL;
    const char *reason = NULL;
    assert_int_equal(cms_certs_read(der, len, &certs, &crls, &reason), 0);
    assert_int_equal(sk_X509_num(certs), 2);
    /* certificates is a SET OF, which DER sorts: look rather than index. */
    int a_at = X509_cmp(sk_X509_value(certs, 0), fx.a_cert) == 0 ? 0 : 1;
    assert_int_equal(X509_cmp(sk_X509_value(certs, a_at), fx.a_cert), 0);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 1 - a_at), fx.ca->cert), 0);
    assert_int_equal(sk_X509_CRL_num(crls), 1);
    assert_int_equal(X509_CRL_cmp(sk_X509_CRL_value(crls, 0), crl), 0);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_CRL_pop_free(crls, X509_CRL_free);

    /* No signers, no content. */
    CMS_ContentInfo *cms = cms_signed_parse(der, len, &reason);
    assert_non_null(cms);
    assert_int_equal(sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)), 0);
    assert_int_equal(CMS_is_detached(cms), 1);
    assert_int_equal(cms_signed_digest_nid(cms), NID_undef);
    CMS_ContentInfo_free(cms);
    free(der);

    /* A CRL alone. */
    assert_int_equal(cms_certs_only(NULL, crl, &der, &len), 0);
    assert_int_equal(cms_certs_read(der, len, &certs, NULL, &reason), 0);
    assert_int_equal(sk_X509_num(certs), 0);
    sk_X509_pop_free(certs, X509_free);
    free(der);
    X509_CRL_free(crl);

    assert_int_equal(cms_certs_read(DATA, DATA_LEN, &certs, NULL, &reason), -1);
    assert_null(certs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify_attached),
        cmocka_unit_test(test_sign_verify_detached),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_signed_attrs),
        cmocka_unit_test(test_encrypt_decrypt),
        cmocka_unit_test(test_decrypt_refusals),
        cmocka_unit_test(test_certs_only),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
