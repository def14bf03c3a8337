/* test_scep_message.c: unit tests for the SCEP pkiMessage codec
 * (src/scep/message.c, client.c, attrs.c): client requests parsed by the
 * server side, CertRep SUCCESS / FAILURE / PENDING read back by the client
 * side and by the OpenSSL command line, refusals (tampering, another CA,
 * MD5, ciphers, garbage), and the real micromdm vectors in
 * $STEWARD_SHARED/vectors/scep. */
#include "pki/cms.h"
#include "pki/pki.h"
#include "scep/attrs.h"
#include "scep/message.h"

#include <ftw.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* A simulated device: its key, a self-signed temporary certificate and CSR. */
struct device {
    EVP_PKEY *key;
    X509 *self; /* self-signed, same key */
    X509_REQ *csr;
};

static struct {
    char dir[64];
    struct pki_ca *ca, *other;
} fx;

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/test_scep_message.XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    char c1[128], k1[128], c2[128], k2[128];
    snprintf(c1, sizeof c1, "%s/ca.pem", fx.dir);
    snprintf(k1, sizeof k1, "%s/ca.key", fx.dir);
    snprintf(c2, sizeof c2, "%s/other.pem", fx.dir);
    snprintf(k2, sizeof k2, "%s/other.key", fx.dir);
    char *err = NULL;
    if (pki_ca_create(c1, k1, "SCEP Test CA", &err) != 0 ||
        pki_ca_create(c2, k2, "Another CA", &err) != 0 || !(fx.ca = pki_ca_load(c1, k1, &err)) ||
        !(fx.other = pki_ca_load(c2, k2, &err))) {
        fprintf(stderr, "CA: %s\n", err ? err : "?");
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
    pki_ca_free(fx.ca);
    pki_ca_free(fx.other);
    nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static X509_NAME *name_cn(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
                                                -1, -1, 0),
                     1);
    return n;
}

/* What mdmclient does: an RSA key, a CSR (challenge optional), and a
 * self-signed certificate of the same key to sign the pkiMessage. */
static struct device device_new(const char *cn, const char *challenge)
{
    struct device d = {0};
    d.key = EVP_RSA_gen(2048);
    assert_non_null(d.key);
    X509_NAME *subject = name_cn(cn);

    d.csr = X509_REQ_new();
    assert_int_equal(X509_REQ_set_subject_name(d.csr, subject), 1);
    assert_int_equal(X509_REQ_set_pubkey(d.csr, d.key), 1);
    if (challenge)
        assert_int_equal(X509_REQ_add1_attr_by_NID(d.csr, NID_pkcs9_challengePassword,
                                                   MBSTRING_ASC, (const unsigned char *)challenge,
                                                   -1),
                         1);
    assert_true(X509_REQ_sign(d.csr, d.key, EVP_sha256()) > 0);

    d.self = X509_new();
    assert_int_equal(X509_set_version(d.self, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(d.self), 1), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(d.self), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(d.self), 3600));
    assert_int_equal(X509_set_subject_name(d.self, subject), 1);
    assert_int_equal(X509_set_issuer_name(d.self, subject), 1);
    assert_int_equal(X509_set_pubkey(d.self, d.key), 1);
    assert_true(X509_sign(d.self, d.key, EVP_sha256()) > 0);
    X509_NAME_free(subject);
    return d;
}

static void device_free(struct device *d)
{
    EVP_PKEY_free(d->key);
    X509_free(d->self);
    X509_REQ_free(d->csr);
}

/* The CA signs the CSR as-is (subject and key), for a SUCCESS reply. */
static X509 *issue_from_csr(X509_REQ *csr)
{
    X509 *x = X509_new();
    assert_int_equal(X509_set_version(x, 2), 1);
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    assert_int_equal(ASN1_INTEGER_set_int64(serial, 4242), 1);
    assert_int_equal(X509_set_serialNumber(x, serial), 1);
    ASN1_INTEGER_free(serial);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_subject_name(x, X509_REQ_get_subject_name(csr)), 1);
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(fx.ca->cert)), 1);
    assert_int_equal(X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)), 1);
    assert_true(X509_sign(x, fx.ca->key, EVP_sha256()) > 0);
    return x;
}

static const char *cn_of(X509_NAME *n, char *buf, size_t cap)
{
    assert_true(X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int)cap) > 0);
    return buf;
}

/* A parsed request that must succeed. */
static struct scep_request *parse_ok(const uint8_t *der, size_t len, struct pki_ca *ca)
{
    struct scep_request *req = NULL, *partial = NULL;
    int fail = -1;
    const char *reason = NULL;
    int rc = scep_request_parse(der, len, ca->cert, ca->key, &req, &partial, &fail, &reason);
    if (rc != 0)
        print_error("parse: %s (failInfo %d)\n", reason ? reason : "?", fail);
    assert_int_equal(rc, 0);
    assert_non_null(req);
    assert_null(partial);
    return req;
}

/* A parse that must fail: returns the partial (may be NULL). */
static struct scep_request *parse_fails(const uint8_t *der, size_t len, int want_fail,
                                        const char *want_reason)
{
    struct scep_request *req = (struct scep_request *)1, *partial = NULL;
    int fail = -1;
    const char *reason = NULL;
    assert_int_equal(
        scep_request_parse(der, len, fx.ca->cert, fx.ca->key, &req, &partial, &fail, &reason), -1);
    assert_null(req);
    assert_non_null(reason);
    if (want_fail >= 0)
        assert_int_equal(fail, want_fail);
    if (want_reason)
        assert_string_equal(reason, want_reason);
    return partial;
}

/* ---- requests ---- */

static void test_pkcsreq_round_trip(void **state)
{
    (void)state;
    struct device d = device_new("device-1", "s3cret pw");
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, NULL, tid, nonce,
                                        &der, &len),
                     0);
    assert_true(strlen(tid) > 0);

    struct scep_request *req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->message_type, SCEP_PKCSREQ);
    assert_string_equal(req->transaction_id, tid);
    assert_int_equal(req->sender_nonce_len, 16);
    assert_memory_equal(req->sender_nonce, nonce, 16);
    assert_int_equal(req->digest_nid, NID_sha256);
    assert_int_equal(req->cipher_nid, NID_aes_256_cbc);
    assert_int_equal(X509_cmp(req->signer, d.self), 0);
    assert_non_null(req->csr);
    char cn[64];
    assert_string_equal(cn_of(X509_REQ_get_subject_name(req->csr), cn, sizeof cn), "device-1");
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req->csr), d.key), 1);
    assert_non_null(req->challenge);
    assert_string_equal(req->challenge, "s3cret pw");
    assert_null(req->issuer);
    scep_request_free(req);
    free(der);

    /* The same key gives the same transactionID; the nonce is fresh. */
    char tid2[129];
    uint8_t nonce2[16];
    assert_int_equal(scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, "outer", tid2,
                                        nonce2, &der, &len),
                     0);
    assert_string_equal(tid, tid2);
    assert_memory_not_equal(nonce, nonce2, 16);
    /* Both present: the CSR's challenge wins. */
    req = parse_ok(der, len, fx.ca);
    assert_string_equal(req->challenge, "s3cret pw");
    scep_request_free(req);
    free(der);
    device_free(&d);
}

static void test_outer_challenge(void **state)
{
    (void)state;
    struct device d = device_new("device-2", NULL);
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, "from-outside",
                                        tid, nonce, &der, &len),
                     0);
    struct scep_request *req = parse_ok(der, len, fx.ca);
    assert_non_null(req->challenge);
    assert_string_equal(req->challenge, "from-outside");
    scep_request_free(req);
    free(der);

    /* No challenge anywhere. */
    assert_int_equal(
        scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, NULL, tid, nonce, &der, &len), 0);
    req = parse_ok(der, len, fx.ca);
    assert_null(req->challenge);
    scep_request_free(req);
    free(der);

    /* A non-ASCII challenge travels as UTF8String. */
    assert_int_equal(scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, "p\xc3\xa4ss", tid,
                                        nonce, &der, &len),
                     0);
    req = parse_ok(der, len, fx.ca);
    assert_string_equal(req->challenge, "p\xc3\xa4ss");
    scep_request_free(req);
    free(der);
    device_free(&d);
}

static void test_renewal(void **state)
{
    (void)state;
    /* Renewal: a new CSR signed with the device's current identity. */
    struct pki_issue_opts o = {.kind = PKI_CERT_CLIENT, .key_type = PKI_KEY_RSA2048,
                               .common_name = "device-3"};
    X509 *ident = NULL;
    EVP_PKEY *ident_key = NULL;
    char *err = NULL;
    assert_int_equal(pki_issue(fx.ca, &o, &ident, &ident_key, &err), 0);
    struct device d = device_new("device-3", NULL);
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_pkcsreq_build(d.csr, ident, ident_key, fx.ca->cert, 1, NULL, tid, nonce,
                                        &der, &len),
                     0);
    struct scep_request *req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->message_type, SCEP_RENEWALREQ);
    assert_int_equal(X509_cmp(req->signer, ident), 0);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req->csr), d.key), 1);

    /* The SUCCESS reply is enveloped to the identity (the signer) and read
     * with its key; the new certificate is picked though its key differs. */
    X509 *issued = issue_from_csr(req->csr);
    struct scep_reply rep = {.status = SCEP_SUCCESS, .issued = issued};
    uint8_t *rdr = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    int status = -1, fail = -1;
    X509 *got = NULL;
    const char *reason = NULL;
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, ident, ident_key, tid, nonce,
                                       &status, &fail, &got, &reason),
                     0);
    assert_int_equal(status, SCEP_SUCCESS);
    assert_int_equal(X509_cmp(got, issued), 0);
    X509_free(got);
    free(rdr);
    X509_free(issued);
    scep_request_free(req);
    free(der);
    device_free(&d);
    X509_free(ident);
    EVP_PKEY_free(ident_key);
}

static void test_certpoll_round_trip(void **state)
{
    (void)state;
    struct device d = device_new("device-4", NULL);
    X509_NAME *subject = name_cn("device-4");
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_certpoll_build_nonce(d.self, d.key, fx.ca->cert, "TID-42", subject,
                                               nonce, &der, &len),
                     0);
    struct scep_request *req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->message_type, SCEP_CERTPOLL);
    assert_string_equal(req->transaction_id, "TID-42");
    assert_memory_equal(req->sender_nonce, nonce, 16);
    assert_non_null(req->issuer);
    assert_non_null(req->subject);
    assert_int_equal(X509_NAME_cmp(req->issuer, X509_get_subject_name(fx.ca->cert)), 0);
    assert_int_equal(X509_NAME_cmp(req->subject, subject), 0);
    assert_null(req->csr);

    /* Still pending. */
    struct scep_reply rep = {.status = SCEP_PENDING};
    uint8_t *rdr = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    int status = -1, fail = -1;
    X509 *got = (X509 *)1;
    const char *reason = NULL;
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, "TID-42", nonce,
                                       &status, &fail, &got, &reason),
                     0);
    assert_int_equal(status, SCEP_PENDING);
    assert_null(got);
    free(rdr);
    scep_request_free(req);
    free(der);

    /* The plain variant builds the same kind of message. */
    assert_int_equal(
        scep_certpoll_build(d.self, d.key, fx.ca->cert, "TID-43", subject, &der, &len), 0);
    req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->message_type, SCEP_CERTPOLL);
    scep_request_free(req);
    free(der);
    X509_NAME_free(subject);
    device_free(&d);
}

/* Builds a request by hand: chosen type, digest, cipher and body. */
static void custom_request(struct device *d, X509 *to, int type, const EVP_MD *md,
                           const EVP_CIPHER *cipher, const uint8_t *body, size_t body_len,
                           uint8_t **der, size_t *len)
{
    struct scep_attrs a;
    scep_attrs_init(&a);
    a.message_type = type;
    snprintf(a.transaction_id, sizeof a.transaction_id, "custom-%d", type);
    assert_int_equal(RAND_bytes(a.sender_nonce, 16), 1);
    a.sender_nonce_len = 16;
    uint8_t *env = NULL;
    size_t env_len = 0;
    assert_int_equal(cms_encrypt(to, cipher, body, body_len, &env, &env_len), 0);
    struct scep_attrs_enc enc;
    scep_attrs_encode(&a, &enc);
    assert_int_equal(
        cms_sign_attrs(d->self, d->key, NULL, md, env, env_len, enc.list, enc.n, der, len), 0);
    free(env);
}

static void test_getcert_and_digests(void **state)
{
    (void)state;
    struct device d = device_new("device-5", NULL);
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    assert_int_equal(ASN1_INTEGER_set_int64(serial, 0x1234567), 1);
    uint8_t *body = NULL, *der = NULL;
    size_t body_len = 0, len = 0;
    assert_int_equal(
        scep_issuer_serial_encode(X509_get_subject_name(fx.ca->cert), serial, &body, &body_len),
        0);

    /* GetCert with SHA-512 and AES-128: both recorded. */
    custom_request(&d, fx.ca->cert, SCEP_GETCERT, EVP_sha512(), EVP_aes_128_cbc(), body, body_len,
                   &der, &len);
    struct scep_request *req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->message_type, SCEP_GETCERT);
    assert_int_equal(req->digest_nid, NID_sha512);
    assert_int_equal(req->cipher_nid, NID_aes_128_cbc);
    assert_int_equal(ASN1_INTEGER_cmp(req->serial, serial), 0);
    assert_int_equal(X509_NAME_cmp(req->issuer, X509_get_subject_name(fx.ca->cert)), 0);
    /* The reply is signed with the request's digest. */
    struct scep_reply rep = {.status = SCEP_FAILURE, .fail_info = SCEP_BAD_CERT_ID};
    uint8_t *rdr = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    const char *reason = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(rdr, rlen, &reason);
    assert_non_null(cms);
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha512);
    CMS_ContentInfo_free(cms);
    free(rdr);
    scep_request_free(req);
    free(der);

    /* SHA-1 and SHA-384 are accepted; GetCRL has the same body. */
    custom_request(&d, fx.ca->cert, SCEP_GETCRL, EVP_sha1(), NULL, body, body_len, &der, &len);
    req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->message_type, SCEP_GETCRL);
    assert_int_equal(req->digest_nid, NID_sha1);
    scep_request_free(req);
    free(der);
    custom_request(&d, fx.ca->cert, SCEP_GETCERT, EVP_sha384(), NULL, body, body_len, &der, &len);
    req = parse_ok(der, len, fx.ca);
    assert_int_equal(req->digest_nid, NID_sha384);
    scep_request_free(req);
    free(der);

    /* MD5: verified, but refused with badAlg, and answerable (SHA-256). */
    custom_request(&d, fx.ca->cert, SCEP_GETCERT, EVP_md5(), NULL, body, body_len, &der, &len);
    struct scep_request *partial = parse_fails(der, len, SCEP_BAD_ALG, NULL);
    assert_non_null(partial);
    assert_int_equal(partial->digest_nid, NID_md5);
    assert_string_equal(partial->transaction_id, "custom-21");
    rep = (struct scep_reply){.status = SCEP_FAILURE, .fail_info = SCEP_BAD_ALG};
    assert_int_equal(scep_certrep_build(partial, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    cms = cms_signed_parse(rdr, rlen, &reason);
    assert_non_null(cms);
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha256);
    CMS_ContentInfo_free(cms);
    free(rdr);
    scep_request_free(partial);
    free(der);

    /* A CertPoll whose body is an IssuerAndSerialNumber: badRequest. */
    custom_request(&d, fx.ca->cert, SCEP_CERTPOLL, NULL, NULL, body, body_len, &der, &len);
    partial = parse_fails(der, len, SCEP_BAD_REQUEST, "envelope does not hold an IssuerAndSubject");
    assert_non_null(partial);
    scep_request_free(partial);
    free(der);
    free(body);
    ASN1_INTEGER_free(serial);
    device_free(&d);
}

static void test_envelope_ciphers(void **state)
{
    (void)state;
    struct device d = device_new("device-6", NULL);
    unsigned char *csr = NULL;
    int csr_len = i2d_X509_REQ(d.csr, &csr);
    assert_true(csr_len > 0);
    uint8_t *der = NULL;
    size_t len = 0;

    EVP_CIPHER *des3 = EVP_CIPHER_fetch(NULL, "DES-EDE3-CBC", NULL);
    ERR_clear_error();
    if (des3) {
        custom_request(&d, fx.ca->cert, SCEP_PKCSREQ, NULL, des3, csr, (size_t)csr_len, &der,
                       &len);
        struct scep_request *req = parse_ok(der, len, fx.ca);
        assert_int_equal(req->cipher_nid, NID_des_ede3_cbc);
        scep_request_free(req);
        free(der);
        EVP_CIPHER_free(des3);
    } else {
        print_message("DES-EDE3-CBC not available; 3DES envelope not tested\n");
    }

    /* An envelope OpenSSL could open but SCEP must not accept: AES-ECB
     * (patched over AES-128-CBC's OID, then signed as a client would). */
    struct scep_attrs a;
    scep_attrs_init(&a);
    a.message_type = SCEP_PKCSREQ;
    strcpy(a.transaction_id, "ecb");
    a.sender_nonce_len = 16;
    uint8_t *env = NULL;
    size_t env_len = 0;
    assert_int_equal(
        cms_encrypt(fx.ca->cert, EVP_aes_128_cbc(), csr, (size_t)csr_len, &env, &env_len), 0);
    static const uint8_t cbc[] = {0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02};
    uint8_t *at = memmem(env, env_len, cbc, sizeof cbc);
    assert_non_null(at);
    at[sizeof cbc - 1] = 0x01;
    struct scep_attrs_enc enc;
    scep_attrs_encode(&a, &enc);
    assert_int_equal(
        cms_sign_attrs(d.self, d.key, NULL, NULL, env, env_len, enc.list, enc.n, &der, &len), 0);
    struct scep_request *partial =
        parse_fails(der, len, SCEP_BAD_ALG, "unsupported envelope cipher");
    assert_non_null(partial);
    scep_request_free(partial);
    free(der);
    free(env);
    OPENSSL_free(csr);
    device_free(&d);
}

/* ---- refusals ---- */

static void test_tampered(void **state)
{
    (void)state;
    struct device d = device_new("device-7", "pw");
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(
        scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, NULL, tid, nonce, &der, &len), 0);
    /* Flip a byte inside the encrypted content (the signed eContent). */
    uint8_t *env = NULL;
    size_t env_len = 0;
    const char *reason = NULL;
    assert_int_equal(cms_verify(der, len, NULL, 0, &env, &env_len, NULL, NULL, &reason), 0);
    uint8_t *at = memmem(der, len, env, env_len);
    assert_non_null(at);
    at[env_len - 5] ^= 0x40;
    struct scep_request *partial = parse_fails(der, len, SCEP_BAD_MESSAGE_CHECK,
                                               "pkiMessage signature does not verify");
    /* Still answerable: a FAILURE CertRep for the same transaction and
     * nonce, but nothing from the unverified message is trusted. */
    assert_non_null(partial);
    assert_string_equal(partial->transaction_id, tid);
    assert_memory_equal(partial->sender_nonce, nonce, 16);
    assert_null(partial->signer);
    assert_null(partial->csr);
    struct scep_reply rep = {.status = SCEP_FAILURE, .fail_info = SCEP_BAD_MESSAGE_CHECK};
    uint8_t *rder = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(partial, &rep, fx.ca->cert, fx.ca->key, &rder, &rlen), 0);
    int status = -1, fail_info = -1;
    X509 *issued = NULL;
    assert_int_equal(scep_certrep_read(rder, rlen, fx.ca->cert, d.self, d.key, tid, nonce, &status,
                                       &fail_info, &issued, &reason),
                     0);
    assert_int_equal(status, SCEP_FAILURE);
    assert_int_equal(fail_info, SCEP_BAD_MESSAGE_CHECK);
    assert_null(issued);
    free(rder);
    scep_request_free(partial);
    at[env_len - 5] ^= 0x40;

    /* A changed transactionID (a signed attribute) is caught as well. */
    at = memmem(der, len, tid, strlen(tid));
    assert_non_null(at);
    at[0] = at[0] == 'A' ? 'B' : 'A';
    partial = parse_fails(der, len, SCEP_BAD_MESSAGE_CHECK, NULL);
    assert_non_null(partial);
    assert_null(partial->signer);
    scep_request_free(partial);
    free(env);
    free(der);
    device_free(&d);
}

/* Several recipients (RA, CA, previous CA): a request enveloped to any of
 * them opens; its signingTime is read and checked against the clock. */
static void test_keys_and_time(void **state)
{
    (void)state;
    struct device d = device_new("device-keys", NULL);
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_pkcsreq_build(d.csr, d.self, d.key, fx.other->cert, 0, NULL, tid, nonce,
                                        &der, &len),
                     0);
    struct scep_keypair keys[2] = {{fx.ca->cert, fx.ca->key}, {fx.other->cert, fx.other->key}};
    struct scep_request *req = NULL, *partial = NULL;
    int fail = -1;
    const char *reason = NULL;
    assert_int_equal(scep_request_parse_keys(der, len, keys, 2, &req, &partial, &fail, &reason), 0);
    assert_non_null(req);
    assert_non_null(req->csr);
    int64_t now = (int64_t)time(NULL);
    assert_true(req->signing_time > now - 300 && req->signing_time <= now + 5);
    assert_int_equal(scep_request_time_ok(req, now), 0);
    assert_int_equal(scep_request_time_ok(req, now + 2 * 86400), -1);
    assert_int_equal(scep_request_time_ok(req, now - 2 * 86400), -1);
    scep_request_free(req);
    /* Only the first key: not for us, as before. */
    assert_int_equal(scep_request_parse_keys(der, len, keys, 1, &req, &partial, &fail, &reason), -1);
    assert_int_equal(fail, SCEP_BAD_MESSAGE_CHECK);
    scep_request_free(partial);
    free(der);
    device_free(&d);
}

static void test_other_ca(void **state)
{
    (void)state;
    struct device d = device_new("device-8", NULL);
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_pkcsreq_build(d.csr, d.self, d.key, fx.other->cert, 0, NULL, tid, nonce,
                                        &der, &len),
                     0);
    struct scep_request *partial =
        parse_fails(der, len, SCEP_BAD_MESSAGE_CHECK, "envelope not addressed to this CA");
    /* Signed correctly, so it can be answered with a FAILURE. */
    assert_non_null(partial);
    assert_string_equal(partial->transaction_id, tid);
    assert_memory_equal(partial->sender_nonce, nonce, 16);

    struct scep_reply rep = {.status = SCEP_FAILURE, .fail_info = SCEP_BAD_MESSAGE_CHECK,
                             .fail_text = "envelope not addressed to this CA"};
    uint8_t *rdr = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(partial, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    int status = -1, fail = -1;
    X509 *got = (X509 *)1;
    const char *reason = NULL;
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, tid, nonce, &status,
                                       &fail, &got, &reason),
                     0);
    assert_int_equal(status, SCEP_FAILURE);
    assert_int_equal(fail, SCEP_BAD_MESSAGE_CHECK);
    assert_null(got);
    /* failInfoText is there for clients that show it. */
    CMS_ContentInfo *cms = cms_signed_parse(rdr, rlen, &reason);
    struct scep_attrs a;
    assert_int_equal(scep_attrs_read(cms, &a, &reason), 0);
    assert_string_equal(a.fail_text, "envelope not addressed to this CA");
    CMS_ContentInfo_free(cms);
    free(rdr);
    scep_request_free(partial);
    free(der);
    device_free(&d);
}

static void test_garbage(void **state)
{
    (void)state;
    static const uint8_t junk[] = "not a pkiMessage at all";
    assert_null(parse_fails(junk, sizeof junk, -1, "pkiMessage is not a CMS SignedData"));
    assert_null(parse_fails(junk, 0, -1, "empty pkiMessage"));

    /* Over the size limit: refused before parsing, even if valid. */
    size_t big = SCEP_MESSAGE_MAX + 1;
    uint8_t *huge = calloc(1, big);
    assert_null(parse_fails(huge, big, -1, "pkiMessage too large"));
    free(huge);

    /* A valid SignedData without SCEP attributes. */
    struct device d = device_new("device-9", NULL);
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(cms_sign(d.self, d.key, NULL, NULL, junk, sizeof junk, 0, &der, &len), 0);
    assert_null(parse_fails(der, len, -1, "pkiMessage has no messageType"));
    free(der);

    /* messageType not a number, or a CertRep sent to the server. */
    const struct cms_attr bad_type[] = {
        {SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, (const uint8_t *)"1x", 2}};
    assert_int_equal(
        cms_sign_attrs(d.self, d.key, NULL, NULL, junk, sizeof junk, bad_type, 1, &der, &len), 0);
    assert_null(parse_fails(der, len, -1, "malformed messageType attribute"));
    free(der);
    const struct cms_attr certrep[] = {
        {SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, (const uint8_t *)"3", 1}};
    assert_int_equal(
        cms_sign_attrs(d.self, d.key, NULL, NULL, junk, sizeof junk, certrep, 1, &der, &len), 0);
    assert_null(parse_fails(der, len, -1, "pkiMessage messageType is not a request"));
    free(der);

    /* Everything right but the content is not an envelope: answerable. */
    struct scep_attrs a;
    scep_attrs_init(&a);
    a.message_type = SCEP_PKCSREQ;
    strcpy(a.transaction_id, "T");
    a.sender_nonce_len = 16;
    struct scep_attrs_enc enc;
    scep_attrs_encode(&a, &enc);
    assert_int_equal(
        cms_sign_attrs(d.self, d.key, NULL, NULL, junk, sizeof junk, enc.list, enc.n, &der, &len),
        0);
    struct scep_request *partial = parse_fails(der, len, SCEP_BAD_REQUEST, NULL);
    assert_non_null(partial);
    scep_request_free(partial);
    free(der);
    device_free(&d);
}

/* ---- CertRep ---- */

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* Proves that an independent reader (the openssl command line) accepts the
 * CertRep: verify the SignedData, decrypt the envelope with the device key,
 * and read the certificate out of the degenerate SignedData. */
static void openssl_cli_reads(const uint8_t *der, size_t len, struct device *d, X509 *want)
{
    char rep[160], inner[160], deg[160], out[160], crt[160], key[160], cmd[2048];
    snprintf(rep, sizeof rep, "%s/certrep.der", fx.dir);
    snprintf(inner, sizeof inner, "%s/inner.der", fx.dir);
    snprintf(deg, sizeof deg, "%s/deg.der", fx.dir);
    snprintf(out, sizeof out, "%s/out.pem", fx.dir);
    snprintf(crt, sizeof crt, "%s/dev.pem", fx.dir);
    snprintf(key, sizeof key, "%s/dev.key", fx.dir);
    assert_int_equal(write_file(rep, der, len), 0);
    assert_int_equal(pki_write_cert_pem(crt, d->self), 0);
    assert_int_equal(pki_write_key_pem(key, d->key), 0);
    snprintf(cmd, sizeof cmd,
             "openssl cms -verify -noverify -binary -inform DER -in %s -out %s 2>/dev/null && "
             "openssl cms -decrypt -binary -inform DER -in %s -recip %s -inkey %s -out %s && "
             "openssl pkcs7 -inform DER -in %s -print_certs -out %s",
             rep, inner, inner, crt, key, deg, deg, out);
    int rc = system(cmd);
    if (rc == -1 || WEXITSTATUS(rc) == 127) {
        print_message("openssl CLI not available; cross-check skipped\n");
        return;
    }
    assert_int_equal(rc, 0);
    FILE *f = fopen(out, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, want), 0);
    X509_free(x);

    /* The CLI also agrees the signature is bad once a byte changes. */
    uint8_t *copy = malloc(len);
    memcpy(copy, der, len);
    copy[len - 10] ^= 0x01; /* inside the signature value, the last field */
    assert_int_equal(write_file(rep, copy, len), 0);
    free(copy);
    snprintf(cmd, sizeof cmd,
             "openssl cms -verify -noverify -binary -inform DER -in %s -out %s 2>/dev/null", rep,
             inner);
    rc = system(cmd);
    assert_true(rc != 0);
}

static void test_certrep_success(void **state)
{
    (void)state;
    struct device d = device_new("device-10", "pw");
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(
        scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, NULL, tid, nonce, &der, &len), 0);
    struct scep_request *req = parse_ok(der, len, fx.ca);
    X509 *issued = issue_from_csr(req->csr);
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_true(sk_X509_push(chain, fx.ca->cert) > 0);
    struct scep_reply rep = {.status = SCEP_SUCCESS, .issued = issued, .chain = chain};
    uint8_t *rdr = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);

    int status = -1, fail = -1;
    X509 *got = NULL;
    const char *reason = NULL;
    int rc = scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, tid, nonce, &status, &fail,
                               &got, &reason);
    if (rc != 0)
        print_error("certrep_read: %s\n", reason);
    assert_int_equal(rc, 0);
    assert_int_equal(status, SCEP_SUCCESS);
    assert_non_null(got);
    assert_int_equal(X509_cmp(got, issued), 0);
    X509_free(got);

    /* The attributes, as a third party reads them. */
    CMS_ContentInfo *cms = cms_signed_parse(rdr, rlen, &reason);
    assert_non_null(cms);
    struct scep_attrs a;
    assert_int_equal(scep_attrs_read(cms, &a, &reason), 0);
    assert_int_equal(a.message_type, SCEP_CERTREP);
    assert_int_equal(a.pki_status, SCEP_SUCCESS);
    assert_int_equal(a.fail_info, -1);
    assert_string_equal(a.transaction_id, tid);
    assert_int_equal(a.recipient_nonce_len, 16);
    assert_memory_equal(a.recipient_nonce, nonce, 16);
    assert_int_equal(a.sender_nonce_len, 16);
    assert_memory_not_equal(a.sender_nonce, nonce, 16);
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha256);
    CMS_ContentInfo_free(cms);

    /* The client refuses a reply to another transaction or nonce, one
     * signed by another CA, and one it cannot decrypt. */
    uint8_t wrong[16];
    memcpy(wrong, nonce, 16);
    wrong[0] ^= 1;
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, tid, wrong, &status,
                                       &fail, &got, &reason),
                     -1);
    assert_string_equal(reason, "CertRep recipientNonce does not match our senderNonce");
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, "other", nonce,
                                       &status, &fail, &got, &reason),
                     -1);
    assert_string_equal(reason, "CertRep transactionID does not match the request");
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.other->cert, d.self, d.key, tid, nonce,
                                       &status, &fail, &got, &reason),
                     -1);
    assert_string_equal(reason, "CertRep is not signed by the CA");
    struct device e = device_new("intruder", NULL);
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, e.self, e.key, tid, nonce, &status,
                                       &fail, &got, &reason),
                     -1);
    assert_null(got);
    device_free(&e);

    openssl_cli_reads(rdr, rlen, &d, issued);

    free(rdr);
    sk_X509_free(chain);
    X509_free(issued);
    scep_request_free(req);
    free(der);
    device_free(&d);
}

static void test_certrep_failure_pending(void **state)
{
    (void)state;
    struct device d = device_new("device-11", NULL);
    char tid[129];
    uint8_t nonce[16];
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(
        scep_pkcsreq_build(d.csr, d.self, d.key, fx.ca->cert, 0, NULL, tid, nonce, &der, &len), 0);
    struct scep_request *req = parse_ok(der, len, fx.ca);

    struct scep_reply rep = {.status = SCEP_FAILURE, .fail_info = SCEP_BAD_REQUEST,
                             .fail_text = "challenge password required"};
    uint8_t *rdr = NULL;
    size_t rlen = 0;
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    int status = -1, fail = -1;
    X509 *got = (X509 *)1;
    const char *reason = NULL;
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, tid, nonce, &status,
                                       &fail, &got, &reason),
                     0);
    assert_int_equal(status, SCEP_FAILURE);
    assert_int_equal(fail, SCEP_BAD_REQUEST);
    assert_null(got);
    /* Signed attributes only: the content is empty. */
    uint8_t *content = NULL;
    size_t clen = 99;
    assert_int_equal(cms_verify(rdr, rlen, NULL, 0, &content, &clen, NULL, NULL, &reason), 0);
    assert_int_equal(clen, 0);
    free(content);
    /* openssl's reader verifies it too (empty content). */
    char path[160], cmd[400];
    snprintf(path, sizeof path, "%s/failure.der", fx.dir);
    assert_int_equal(write_file(path, rdr, rlen), 0);
    snprintf(cmd, sizeof cmd,
             "openssl cms -verify -noverify -inform DER -in %s -out /dev/null 2>/dev/null", path);
    int rc = system(cmd);
    if (rc != -1 && WEXITSTATUS(rc) != 127)
        assert_int_equal(rc, 0);
    free(rdr);

    rep = (struct scep_reply){.status = SCEP_PENDING};
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), 0);
    assert_int_equal(scep_certrep_read(rdr, rlen, fx.ca->cert, d.self, d.key, tid, nonce, &status,
                                       &fail, &got, &reason),
                     0);
    assert_int_equal(status, SCEP_PENDING);
    assert_int_equal(fail, -1);
    free(rdr);

    /* Nonsense replies are not built. */
    rep = (struct scep_reply){.status = 7};
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), -1);
    rep = (struct scep_reply){.status = SCEP_FAILURE, .fail_info = 9};
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), -1);
    rep = (struct scep_reply){.status = SCEP_SUCCESS};
    assert_int_equal(scep_certrep_build(req, &rep, fx.ca->cert, fx.ca->key, &rdr, &rlen), -1);
    scep_request_free(req);
    free(der);
    device_free(&d);
}

static void test_degenerate_certs(void **state)
{
    (void)state;
    STACK_OF(X509) *certs = sk_X509_new_null();
    assert_true(sk_X509_push(certs, fx.ca->cert) > 0);
    assert_true(sk_X509_push(certs, fx.other->cert) > 0);
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(scep_degenerate_certs(certs, &der, &len), 0);
    STACK_OF(X509) *back = NULL;
    const char *reason = NULL;
    assert_int_equal(cms_certs_read(der, len, &back, NULL, &reason), 0);
    assert_int_equal(sk_X509_num(back), 2);
    /* certificates is a SET OF: DER sorts it, so look rather than index. */
    int seen = 0;
    for (int i = 0; i < 2; i++)
        seen |= (X509_cmp(sk_X509_value(back, i), fx.ca->cert) == 0 ? 1 : 0) |
                (X509_cmp(sk_X509_value(back, i), fx.other->cert) == 0 ? 2 : 0);
    assert_int_equal(seen, 3);
    sk_X509_pop_free(back, X509_free);
    free(der);
    sk_X509_free(certs);
}

/* ---- the micromdm vectors ---- */

static int pass_empty(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0; /* micromdm's test CA key has an empty passphrase */
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_vectors(void **state)
{
    (void)state;
    const char *shared = getenv("STEWARD_SHARED");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vectors/scep", shared ? shared : "");
    struct stat st;
    if (!shared || stat(dir, &st) != 0) {
        print_message("STEWARD_SHARED/vectors/scep absent; vector test skipped\n");
        skip();
    }
    char path[600];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    snprintf(path, sizeof path, "%s/ca.key", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, pass_empty, NULL);
    fclose(f);
    if (!key) {
        ERR_print_errors_fp(stderr);
    }
    assert_non_null(ca);
    assert_non_null(key);
    struct pki_ca vca = {.cert = ca, .key = key};

    /* PKCSReq.der: SHA-1, 3DES (if this OpenSSL still has it). Nothing here
     * depends on the CA (expired 2026-05-29) or the signer (2017) being
     * currently valid. */
    size_t len = 0;
    snprintf(path, sizeof path, "%s/PKCSReq.der", dir);
    uint8_t *der = read_all(path, &len);
    assert_non_null(der);
    EVP_CIPHER *des3 = EVP_CIPHER_fetch(NULL, "DES-EDE3-CBC", NULL);
    ERR_clear_error();
    if (des3) {
        struct scep_request *req = parse_ok(der, len, &vca);
        assert_int_equal(req->message_type, SCEP_PKCSREQ);
        assert_string_equal(req->transaction_id, "A13090761A30F66664F85D37433D2065E1112BA1");
        assert_int_equal(req->sender_nonce_len, 8); /* micromdm's client sent 8 octets */
        assert_int_equal(req->digest_nid, NID_sha1);
        assert_int_equal(req->cipher_nid, NID_des_ede3_cbc);
        char cn[128];
        assert_string_equal(cn_of(X509_REQ_get_subject_name(req->csr), cn, sizeof cn),
                            "com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224");
        assert_string_equal(cn_of(X509_get_subject_name(req->signer), cn, sizeof cn),
                            "MDM SCEP SIGNER");
        assert_null(req->challenge);
        /* Our SUCCESS answer to it is readable with AES (no DES back). */
        X509 *issued = X509_new();
        assert_int_equal(X509_set_pubkey(issued, X509_REQ_get0_pubkey(req->csr)), 1);
        assert_int_equal(X509_set_subject_name(issued, X509_REQ_get_subject_name(req->csr)), 1);
        assert_int_equal(X509_set_issuer_name(issued, X509_get_subject_name(ca)), 1);
        assert_true(X509_sign(issued, key, EVP_sha256()) > 0);
        struct scep_reply rep = {.status = SCEP_SUCCESS, .issued = issued};
        uint8_t *rdr = NULL;
        size_t rlen = 0;
        assert_int_equal(scep_certrep_build(req, &rep, ca, key, &rdr, &rlen), 0);
        const char *reason = NULL;
        CMS_ContentInfo *cms = cms_signed_parse(rdr, rlen, &reason);
        assert_int_equal(cms_signed_digest_nid(cms), NID_sha1);
        CMS_ContentInfo_free(cms);
        free(rdr);
        X509_free(issued);
        scep_request_free(req);
        EVP_CIPHER_free(des3);
    } else {
        /* Without 3DES the vector is still recognised and answerable. */
        struct scep_request *partial = parse_fails(der, len, SCEP_BAD_ALG, NULL);
        assert_non_null(partial);
        scep_request_free(partial);
    }
    free(der);

    /* Addressed to micromdm's CA, not ours. */
    der = read_all(path, &len);
    struct scep_request *partial =
        parse_fails(der, len, SCEP_BAD_MESSAGE_CHECK, "envelope not addressed to this CA");
    assert_non_null(partial);
    uint8_t req_nonce[16];
    size_t req_nonce_len = partial->sender_nonce_len;
    memcpy(req_nonce, partial->sender_nonce, req_nonce_len);
    scep_request_free(partial);
    free(der);

    /* CertRep.der: a SUCCESS from micromdm, read with the attribute helpers
     * and verified (its signer certificate is included). */
    snprintf(path, sizeof path, "%s/CertRep.der", dir);
    der = read_all(path, &len);
    assert_non_null(der);
    const char *reason = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(der, len, &reason);
    assert_non_null(cms);
    struct scep_attrs a;
    assert_int_equal(scep_attrs_read(cms, &a, &reason), 0);
    assert_int_equal(a.message_type, SCEP_CERTREP);
    assert_int_equal(a.pki_status, SCEP_SUCCESS);
    assert_int_equal(a.fail_info, -1);
    assert_string_equal(a.transaction_id, "A13090761A30F66664F85D37433D2065E1112BA1");
    /* micromdm answered PKCSReq.der: our nonce read from it comes back. */
    assert_int_equal(a.recipient_nonce_len, req_nonce_len);
    assert_memory_equal(a.recipient_nonce, req_nonce, req_nonce_len);
    assert_int_equal(a.sender_nonce_len, 0); /* micromdm sent none */
    assert_int_equal(cms_signed_digest_nid(cms), NID_sha1);
    X509 *signer = NULL;
    uint8_t *content = NULL;
    size_t clen = 0;
    int rc = cms_verify_parsed(cms, NULL, 0, &content, &clen, &signer, NULL, &reason);
    if (rc != 0)
        print_message("CertRep.der verify: %s\n", reason);
    assert_int_equal(rc, 0);
    assert_int_equal(X509_cmp(signer, ca), 0);
    assert_true(clen > 0); /* the pkcsPKIEnvelope */
    /* It is an EnvelopedData, just not for us. */
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    assert_int_equal(cms_decrypt(ca, key, content, clen, &plain, &plain_len, NULL, &reason), -1);
    assert_ptr_equal(reason, cms_reason_not_for_us);
    free(content);
    X509_free(signer);
    CMS_ContentInfo_free(cms);
    free(der);
    X509_free(ca);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkcsreq_round_trip),
        cmocka_unit_test(test_outer_challenge),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_certpoll_round_trip),
        cmocka_unit_test(test_getcert_and_digests),
        cmocka_unit_test(test_envelope_ciphers),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_other_ca),
        cmocka_unit_test(test_keys_and_time),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_certrep_success),
        cmocka_unit_test(test_certrep_failure_pending),
        cmocka_unit_test(test_degenerate_certs),
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
