/* test_certs.c: behaviour tests for core/certs.c and the store functions
 * under it (certificates, challenges, rebinding), on a real SQLite database
 * in a fresh temp dir per test, with a CA made by pki_ca_create and CSRs
 * built with the OpenSSL API. A raw SQLite connection counts rows to check
 * that refused requests store nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "store_fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/certs.h"
#include "pki/pki.h"
#include "store/store.h"
#include "util/log.h"

#define DAY 86400

/* Made once (key generation is slow): the CA and the device keys. */
static struct {
    char dir[64];
    char ca_cert[128], ca_key[128];
    struct pki_ca *ca;
    EVP_PKEY *rsa1024, *rsa2048, *rsa4096, *ec256, *ec384, *ec521;
} G;

struct fixture {
    char dir[64];
    char path[128];
    char dsn[160];
    struct store *s;
    struct certs_policy p;
    int64_t now;
};

static int group_setup(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR);
    snprintf(G.dir, sizeof G.dir, "/tmp/test_certs_ca.XXXXXX");
    if (!mkdtemp(G.dir))
        return -1;
    snprintf(G.ca_cert, sizeof G.ca_cert, "%s/ca.pem", G.dir);
    snprintf(G.ca_key, sizeof G.ca_key, "%s/ca.key", G.dir);
    char *err = NULL;
    if (pki_ca_create(G.ca_cert, G.ca_key, "Test CA", &err) < 0 ||
        !(G.ca = pki_ca_load(G.ca_cert, G.ca_key, &err))) {
        fprintf(stderr, "CA: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    G.rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    G.rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    G.rsa4096 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    G.ec256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    G.ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    G.ec521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    return G.rsa1024 && G.rsa2048 && G.rsa4096 && G.ec256 && G.ec384 && G.ec521 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    pki_ca_free(G.ca);
    EVP_PKEY *keys[] = {G.rsa1024, G.rsa2048, G.rsa4096, G.ec256, G.ec384, G.ec521};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        EVP_PKEY_free(keys[i]);
    unlink(G.ca_cert);
    unlink(G.ca_key);
    rmdir(G.dir);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_certs.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/steward.db", f->dir);
    char *err = NULL;
    if (fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0 ||
        store_open(f->dsn, &f->s, &err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        free(f);
        return -1;
    }
    certs_policy_defaults(&f->p);
    f->now = (int64_t)time(NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t raw_int(struct fixture *f, const char *sql)
{
    int64_t v = 0;
    assert_int_equal(fixture_raw(f->dsn, sql, &v), 0);
    return v;
}

static int64_t cert_rows(struct fixture *f)
{
    return raw_int(f, "SELECT count(*) FROM certs");
}

/* ---- CSRs ------------------------------------------------------------------------ */

static void add_name(X509_NAME *n, const char *field, const char *value)
{
    assert_int_equal(X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
                                                (const unsigned char *)value, -1, -1, 0),
                     1);
}

/* A CSR for key, signed by signer (the key itself for a valid one), with a
 * subject of C, CN, O, OU and emailAddress, and requested extensions: a SAN
 * (DNS, IP, email) and basicConstraints CA:TRUE. */
static X509_REQ *make_csr_signed(EVP_PKEY *key, EVP_PKEY *signer, const char *cn)
{
    X509_REQ *r = X509_REQ_new();
    assert_non_null(r);
    assert_int_equal(X509_REQ_set_version(r, 0), 1);
    X509_NAME *n = X509_NAME_new();
    add_name(n, "C", "US");
    add_name(n, "CN", cn);
    add_name(n, "O", "Example Org");
    add_name(n, "OU", "Devices");
    add_name(n, "emailAddress", "it@example.com");
    assert_int_equal(X509_REQ_set_subject_name(r, n), 1);
    X509_NAME_free(n);
    assert_int_equal(X509_REQ_set_pubkey(r, key), 1);

    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, NULL, NULL, r, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
                                              "DNS:device.example.com,IP:10.1.2.3,"
                                              "email:dev@example.com");
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "CA:TRUE");
    assert_non_null(san);
    assert_non_null(bc);
    sk_X509_EXTENSION_push(exts, san);
    sk_X509_EXTENSION_push(exts, bc);
    assert_int_equal(X509_REQ_add_extensions(r, exts), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_sign(r, signer, EVP_sha256()) > 0);
    return r;
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *cn)
{
    return make_csr_signed(key, key, cn);
}

/* Issues with the fixture's policy; returns the rc, *out the certificate. */
static int issue(struct fixture *f, X509_REQ *csr, const char *challenge, const char *tid,
                 X509 *renewing, X509 **out, const char **reason)
{
    struct certs_issue_request req = {.csr = csr, .challenge = challenge, .transaction_id = tid,
                                      .renewing = renewing};
    int store_rc = STORE_OK;
    *reason = NULL;
    int rc = certs_issue(f->s, G.ca, &f->p, &req, f->now, out, reason, &store_rc);
    assert_int_equal(store_rc, STORE_OK);
    if (rc == CERTS_OK)
        assert_non_null(*out);
    else
        assert_null(*out);
    return rc;
}

/* Issues a certificate for key with the policy as it is; must succeed. */
static X509 *issue_ok(struct fixture *f, EVP_PKEY *key, const char *challenge, const char *tid,
                      X509 *renewing)
{
    X509_REQ *csr = make_csr(key, "device");
    X509 *x = NULL;
    const char *reason = NULL;
    int rc = issue(f, csr, challenge, tid, renewing, &x, &reason);
    if (rc != CERTS_OK)
        fprintf(stderr, "issue refused: %s\n", reason ? reason : "?");
    assert_int_equal(rc, CERTS_OK);
    X509_REQ_free(csr);
    return x;
}

static void expect_refused(struct fixture *f, EVP_PKEY *key, const char *challenge, int want,
                           const char *want_reason)
{
    X509_REQ *csr = make_csr(key, "device");
    int64_t before = cert_rows(f);
    X509 *x = NULL;
    const char *reason = NULL;
    assert_int_equal(issue(f, csr, challenge, "tid-refused", NULL, &x, &reason), want);
    assert_non_null(reason);
    if (want_reason)
        assert_string_equal(reason, want_reason);
    assert_int_equal(cert_rows(f), before);
    X509_REQ_free(csr);
}

static void serial_of(X509 *x, char out[41])
{
    assert_int_equal(certs_serial_hex(X509_get0_serialNumber(x), out), 0);
}

static void fp_of(X509 *x, char out[65])
{
    pki_cert_fingerprint(x, out);
}

/* ---- issuing and the policy -------------------------------------------------------- */

static int verify_with_ca(X509 *x)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_add_cert(st, G.ca->cert);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, st, x, NULL);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    return ok;
}

/* Seconds from t to the certificate time a. */
static int64_t time_offset(const ASN1_TIME *a, int64_t t)
{
    int days = 0, secs = 0;
    ASN1_TIME *ref = ASN1_TIME_set(NULL, (time_t)t);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, ref, a), 1);
    ASN1_TIME_free(ref);
    return (int64_t)days * DAY + secs;
}

static void test_issue_no_challenge(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_NONE;
    f->p.days = 30;
    X509 *x = issue_ok(f, G.rsa2048, NULL, "tid-1", NULL);

    assert_int_equal(verify_with_ca(x), 1);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    assert_int_equal(X509_check_ca(x), 0);
    assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(time_offset(X509_get0_notBefore(x), f->now), -300);
    assert_int_equal(time_offset(X509_get0_notAfter(x), f->now), 30 * DAY);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_non_null(X509_get0_authority_key_id(x));

    /* Only CN, O, OU survive; C and emailAddress are dropped. */
    const X509_NAME *subj = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_entry_count(subj), 3);
    assert_int_equal(X509_NAME_get_index_by_NID(subj, NID_countryName, -1), -1);
    assert_int_equal(X509_NAME_get_index_by_NID(subj, NID_pkcs9_emailAddress, -1), -1);
    assert_true(X509_NAME_get_index_by_NID(subj, NID_commonName, -1) >= 0);

    /* The SAN keeps DNS and email, not the IP. */
    GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    assert_int_equal(sk_GENERAL_NAME_num(san), 2);
    for (int i = 0; i < sk_GENERAL_NAME_num(san); i++)
        assert_true(sk_GENERAL_NAME_value(san, i)->type != GEN_IPADD);
    GENERAL_NAMES_free(san);

    /* The record. */
    char fp[65], serial[41];
    fp_of(x, fp);
    serial_of(x, serial);
    assert_int_equal(strlen(serial), 32);
    struct store_cert *rec = NULL;
    assert_int_equal(store_cert_get_by_fingerprint(f->s, fp, &rec), STORE_OK);
    assert_string_equal(rec->status, "issued");
    assert_string_equal(rec->serial_hex, serial);
    assert_string_equal(rec->transaction_id, "tid-1");
    assert_string_equal(rec->subject, "OU=Devices,O=Example Org,CN=device");
    assert_int_equal(rec->not_after, f->now + 30 * DAY);
    assert_null(rec->renewed_from);
    assert_null(rec->csr);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_int_equal(rec->der_len, (size_t)len);
    assert_memory_equal(rec->der, der, (size_t)len);
    OPENSSL_free(der);
    store_cert_free(rec);

    /* GetCert finds it by serial. */
    X509 *back = NULL;
    int store_rc = STORE_OK;
    assert_int_equal(certs_get_by_serial(f->s, X509_get0_serialNumber(x), &back, &store_rc),
                     CERTS_OK);
    assert_int_equal(X509_cmp(back, x), 0);
    X509_free(back);
    X509_free(x);
}

static void test_issue_static_challenge(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_STATIC;
    f->p.static_challenge = "s3cret-shared";
    expect_refused(f, G.rsa2048, "s3cret-sharee", CERTS_BAD_CHALLENGE, NULL);
    expect_refused(f, G.rsa2048, "s3cret", CERTS_BAD_CHALLENGE, NULL);
    expect_refused(f, G.rsa2048, NULL, CERTS_BAD_CHALLENGE, NULL);
    X509_free(issue_ok(f, G.rsa2048, "s3cret-shared", "t", NULL));
    /* A static challenge can be used again. */
    X509_free(issue_ok(f, G.rsa2048, "s3cret-shared", "t2", NULL));
    assert_int_equal(cert_rows(f), 2);
    /* An empty configured challenge matches nothing, not even "". */
    f->p.static_challenge = "";
    expect_refused(f, G.rsa2048, "", CERTS_BAD_CHALLENGE, NULL);
    expect_refused(f, G.rsa2048, "x", CERTS_BAD_CHALLENGE, NULL);
}

static void new_challenge(struct fixture *f, int64_t ttl, int64_t now, char out[33])
{
    int64_t expires = 0;
    int store_rc = STORE_OK;
    assert_int_equal(certs_challenge_create(f->s, "test", ttl, now, out, &expires, &store_rc),
                     CERTS_OK);
    assert_int_equal(strlen(out), 32);
    assert_int_equal(expires, now + ttl);
}

static void test_dynamic_challenge_one_time(void **state)
{
    struct fixture *f = *state;
    char ch[33];
    new_challenge(f, 600, f->now, ch);
    /* Stored hashed: the clear text is nowhere in the database. */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM challenges WHERE length(hash) = 64"), 1);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM challenges WHERE hash = '%s'", ch);
    assert_int_equal(raw_int(f, sql), 0);

    expect_refused(f, G.rsa2048, NULL, CERTS_BAD_CHALLENGE, NULL);
    /* A CSR the policy refuses does not spend the challenge. */
    expect_refused(f, G.rsa1024, ch, CERTS_BAD_REQUEST, "key type or size not allowed");
    X509_free(issue_ok(f, G.rsa2048, ch, "t1", NULL));
    assert_int_equal(raw_int(f, "SELECT count(*) FROM challenges WHERE used_at IS NOT NULL"), 1);
    expect_refused(f, G.rsa2048, ch, CERTS_BAD_CHALLENGE, "challenge password already used");
    assert_int_equal(cert_rows(f), 1);
}

static void test_dynamic_challenge_expired_unknown(void **state)
{
    struct fixture *f = *state;
    char old[33], other[33];
    new_challenge(f, 60, f->now - 61, old);
    expect_refused(f, G.rsa2048, old, CERTS_BAD_CHALLENGE, "challenge password expired");
    expect_refused(f, G.rsa2048, "0123456789abcdef0123456789abcdef", CERTS_BAD_CHALLENGE,
                   "unknown challenge password");
    new_challenge(f, 60, f->now, other);
    assert_string_not_equal(old, other);
    /* Expiry is exact: valid up to, not at, expires_at. */
    f->now += 59;
    X509_free(issue_ok(f, G.rsa2048, other, "t", NULL));
    assert_int_equal(cert_rows(f), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM challenges WHERE used_at IS NULL"), 1);
}

static void test_key_policy(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_NONE;
    expect_refused(f, G.rsa1024, NULL, CERTS_BAD_REQUEST, "key type or size not allowed");
    expect_refused(f, G.ec521, NULL, CERTS_BAD_REQUEST, "key type or size not allowed");
    X509_free(issue_ok(f, G.rsa2048, NULL, "a", NULL));
    X509_free(issue_ok(f, G.rsa4096, NULL, "b", NULL));
    X509 *ec = issue_ok(f, G.ec256, NULL, "c", NULL);
    assert_int_equal(X509_get_key_usage(ec), KU_DIGITAL_SIGNATURE);
    assert_int_equal(verify_with_ca(ec), 1);
    X509_free(ec);
    X509_free(issue_ok(f, G.ec384, NULL, "d", NULL));
    assert_int_equal(cert_rows(f), 4);
    f->p.allow_ec = 0;
    expect_refused(f, G.ec256, NULL, CERTS_BAD_REQUEST, "key type or size not allowed");
    /* A tighter RSA range from the policy applies. */
    f->p.rsa_max_bits = 3072;
    expect_refused(f, G.rsa4096, NULL, CERTS_BAD_REQUEST, "key type or size not allowed");
}

static void test_bad_csr_signature(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_NONE;
    X509_REQ *csr = make_csr_signed(G.rsa2048, G.rsa4096, "forged");
    X509 *x = NULL;
    const char *reason = NULL;
    assert_int_equal(issue(f, csr, NULL, "t", NULL, &x, &reason), CERTS_BAD_REQUEST);
    assert_string_equal(reason, "CSR signature does not verify");
    assert_int_equal(cert_rows(f), 0);
    X509_REQ_free(csr);
}

/* ---- manual approval ---------------------------------------------------------------- */

static int poll(struct fixture *f, const char *tid, X509 **out)
{
    int store_rc = STORE_OK;
    int rc = certs_poll(f->s, tid, out, &store_rc);
    assert_int_equal(store_rc, STORE_OK);
    return rc;
}

/* Stores a pending request under tid and returns its serial. */
static void make_pending(struct fixture *f, const char *tid, const char *challenge,
                         char serial[41])
{
    f->p.manual_approval = 1;
    X509_REQ *csr = make_csr(G.rsa2048, tid);
    X509 *x = NULL;
    const char *reason = NULL;
    int64_t before = cert_rows(f);
    assert_int_equal(issue(f, csr, challenge, tid, NULL, &x, &reason), CERTS_PENDING);
    /* The client asks again with the same request: still one record. */
    assert_int_equal(issue(f, csr, challenge, tid, NULL, &x, &reason), CERTS_PENDING);
    assert_int_equal(cert_rows(f), before + 1);
    X509_REQ_free(csr);
    struct store_cert *rec = NULL;
    assert_int_equal(store_cert_get_by_transaction(f->s, tid, &rec), STORE_OK);
    assert_string_equal(rec->status, "pending");
    assert_null(rec->fingerprint);
    assert_null(rec->der);
    assert_non_null(rec->csr);
    snprintf(serial, 41, "%s", rec->serial_hex);
    store_cert_free(rec);
}

static void test_pending_approve_poll(void **state)
{
    struct fixture *f = *state;
    char ch[33], serial[41];
    new_challenge(f, 600, f->now, ch);
    make_pending(f, "tid-p", ch, serial);
    /* The challenge was spent when the request was accepted for review. */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM challenges WHERE used_at IS NOT NULL"), 1);
    X509 *x = NULL;
    assert_int_equal(poll(f, "tid-p", &x), CERTS_PENDING);
    assert_null(x);
    assert_int_equal(poll(f, "tid-unknown", &x), CERTS_NOTFOUND);

    f->p.days = 10;
    const char *reason = NULL;
    int store_rc = STORE_OK;
    X509 *approved = NULL;
    /* Operators may type the serial in upper case with colons. */
    char typed[64] = "";
    for (size_t i = 0; serial[i]; i += 2)
        snprintf(typed + strlen(typed), sizeof typed - strlen(typed), "%s%c%c", i ? ":" : "",
                 serial[i] - (serial[i] >= 'a' ? 32 : 0),
                 serial[i + 1] - (serial[i + 1] >= 'a' ? 32 : 0));
    assert_int_equal(certs_approve(f->s, G.ca, &f->p, typed, f->now + 100, &approved, &reason,
                                   &store_rc),
                     CERTS_OK);
    assert_non_null(approved);
    assert_int_equal(verify_with_ca(approved), 1);
    assert_int_equal(time_offset(X509_get0_notAfter(approved), f->now + 100), 10 * DAY);
    char got[41];
    serial_of(approved, got);
    assert_string_equal(got, serial);

    assert_int_equal(poll(f, "tid-p", &x), CERTS_OK);
    assert_int_equal(X509_cmp(x, approved), 0);
    X509_free(x);
    /* Approving twice is refused. */
    assert_int_equal(certs_approve(f->s, G.ca, &f->p, serial, f->now, NULL, &reason, &store_rc),
                     CERTS_BAD_REQUEST);
    assert_int_equal(certs_approve(f->s, G.ca, &f->p, "abcdef", f->now, NULL, &reason, &store_rc),
                     CERTS_NOTFOUND);
    struct store_cert *rec = NULL;
    char fp[65];
    fp_of(approved, fp);
    assert_int_equal(store_cert_get_by_serial(f->s, serial, &rec), STORE_OK);
    assert_string_equal(rec->status, "issued");
    assert_string_equal(rec->fingerprint, fp);
    assert_null(rec->csr);
    store_cert_free(rec);
    X509_free(approved);
}

static void test_pending_reject(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_NONE;
    char serial[41];
    make_pending(f, "tid-r", NULL, serial);
    int store_rc = STORE_OK;
    assert_int_equal(certs_reject(f->s, serial, f->now, &store_rc), CERTS_OK);
    X509 *x = NULL;
    assert_int_equal(poll(f, "tid-r", &x), CERTS_NOTFOUND);
    assert_null(x);
    assert_int_equal(certs_reject(f->s, serial, f->now, &store_rc), CERTS_BAD_REQUEST);
    const char *reason = NULL;
    assert_int_equal(certs_approve(f->s, G.ca, &f->p, serial, f->now, NULL, &reason, &store_rc),
                     CERTS_BAD_REQUEST);
    assert_int_equal(certs_reject(f->s, "00ff", f->now, &store_rc), CERTS_NOTFOUND);
    assert_int_equal(certs_reject(f->s, "not hex", f->now, &store_rc), CERTS_NOTFOUND);
}

/* ---- revocation and the CRL ----------------------------------------------------------- */

static X509_CRL *crl_roundtrip(struct fixture *f, int64_t next)
{
    X509_CRL *crl = NULL;
    int store_rc = STORE_OK;
    assert_int_equal(certs_crl(f->s, G.ca, f->now, next, &crl, &store_rc), CERTS_OK);
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    assert_true(len > 0);
    X509_CRL_free(crl);
    const unsigned char *p = der;
    X509_CRL *back = d2i_X509_CRL(NULL, &p, len);
    OPENSSL_free(der);
    assert_non_null(back);
    assert_int_equal(X509_CRL_verify(back, X509_get0_pubkey(G.ca->cert)), 1);
    assert_int_equal(X509_CRL_get_version(back), X509_CRL_VERSION_2);
    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(back), X509_get_subject_name(G.ca->cert)),
                     0);
    assert_int_equal(time_offset(X509_CRL_get0_lastUpdate(back), f->now), 0);
    assert_int_equal(time_offset(X509_CRL_get0_nextUpdate(back), f->now), next);
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(back, NID_crl_number, NULL, NULL);
    assert_non_null(number);
    assert_int_equal(ASN1_INTEGER_get(number), (long)f->now);
    ASN1_INTEGER_free(number);
    return back;
}

static int crl_lists(X509_CRL *crl, X509 *x)
{
    X509_REVOKED *r = NULL;
    return X509_CRL_get0_by_serial(crl, &r, X509_get0_serialNumber(x)) == 1;
}

static void test_revoke_and_crl(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_NONE;
    X509 *a = issue_ok(f, G.rsa2048, NULL, "a", NULL);
    X509 *b = issue_ok(f, G.ec256, NULL, "b", NULL);
    /* One already expired by the time of the CRL. */
    int64_t real_now = f->now;
    f->now -= 10 * DAY;
    f->p.days = 1;
    X509 *old = issue_ok(f, G.rsa2048, NULL, "old", NULL);
    f->now = real_now;

    char fa[65], sa[41], sold[41];
    fp_of(a, fa);
    serial_of(a, sa);
    serial_of(old, sold);
    const char *reason = NULL;
    int store_rc = STORE_OK;
    assert_int_equal(certs_check_not_revoked(f->s, fa, &reason, &store_rc), CERTS_OK);
    X509_CRL *crl = crl_roundtrip(f, 3600);
    assert_null(X509_CRL_get_REVOKED(crl)); /* an empty CRL omits the list */
    X509_CRL_free(crl);

    assert_int_equal(certs_revoke(f->s, sa, "lost device", f->now, &store_rc), CERTS_OK);
    assert_int_equal(certs_revoke(f->s, sold, NULL, f->now, &store_rc), CERTS_OK);
    assert_int_equal(certs_revoke(f->s, sa, "again", f->now, &store_rc), CERTS_BAD_REQUEST);
    assert_int_equal(certs_revoke(f->s, "1234", NULL, f->now, &store_rc), CERTS_NOTFOUND);
    assert_int_equal(certs_check_not_revoked(f->s, fa, &reason, &store_rc), CERTS_BAD_REQUEST);
    assert_string_equal(reason, "certificate is revoked");
    /* A certificate of another CA is not ours to refuse. */
    assert_int_equal(certs_check_not_revoked(f->s, "00", &reason, &store_rc), CERTS_OK);

    struct store_cert *rec = NULL;
    assert_int_equal(store_cert_get_by_serial(f->s, sa, &rec), STORE_OK);
    assert_string_equal(rec->status, "revoked");
    assert_string_equal(rec->revoke_reason, "lost device");
    assert_int_equal(rec->revoked_at, f->now);
    store_cert_free(rec);

    crl = crl_roundtrip(f, 7200);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    assert_true(crl_lists(crl, a));
    assert_false(crl_lists(crl, b));
    assert_false(crl_lists(crl, old)); /* expired: no longer listed */
    X509_REVOKED *r = NULL;
    X509_CRL_get0_by_serial(crl, &r, X509_get0_serialNumber(a));
    assert_int_equal(time_offset(X509_REVOKED_get0_revocationDate(r), f->now), 0);
    X509_CRL_free(crl);
    X509_free(a);
    X509_free(b);
    X509_free(old);
}

/* ---- renewal ------------------------------------------------------------------------ */

static void enroll(struct fixture *f, const char *id, const char *fp)
{
    struct store_enrollment e = {0};
    e.id = (char *)id;
    e.type = "Device";
    e.udid = (char *)id;
    e.cert_fp = (char *)fp;
    assert_int_equal(store_enrollment_authenticate(f->s, &e, f->now), STORE_OK);
    int store_rc = STORE_OK;
    assert_int_equal(certs_note_binding(f->s, fp, id, &store_rc), CERTS_OK);
}

static char *bound_fp(struct fixture *f, const char *id)
{
    struct store_enrollment *e = NULL;
    assert_int_equal(store_enrollment_get(f->s, id, &e), STORE_OK);
    char *fp = e->cert_fp ? strdup(e->cert_fp) : NULL;
    store_enrollment_free(e);
    return fp;
}

static void test_renewal_and_rebind(void **state)
{
    struct fixture *f = *state;
    char ch[33];
    new_challenge(f, 600, f->now, ch);
    X509 *a = issue_ok(f, G.rsa2048, ch, "a", NULL);
    char fa[65], fb[65], fc[65];
    fp_of(a, fa);
    enroll(f, "UDID-1", fa);
    struct store_cert *rec = NULL;
    assert_int_equal(store_cert_get_by_fingerprint(f->s, fa, &rec), STORE_OK);
    assert_string_equal(rec->enrollment_id, "UDID-1");
    store_cert_free(rec);

    /* A renewal needs no challenge: the current certificate vouches for it. */
    X509 *b = issue_ok(f, G.ec256, NULL, "b", a);
    fp_of(b, fb);
    assert_int_equal(store_cert_get_by_fingerprint(f->s, fb, &rec), STORE_OK);
    assert_string_equal(rec->renewed_from, fa);
    assert_string_equal(rec->enrollment_id, "UDID-1");
    store_cert_free(rec);
    /* A second renewal of the same certificate, before the first is used. */
    X509 *c = issue_ok(f, G.rsa2048, NULL, "c", a);
    fp_of(c, fc);

    int store_rc = STORE_OK;
    /* Not a renewal of anything: no rebinding. */
    assert_int_equal(certs_rebind_renewed(f->s, "UDID-1", fa, f->now, &store_rc), CERTS_NOTFOUND);
    assert_int_equal(certs_rebind_renewed(f->s, "UDID-2", fb, f->now, &store_rc), CERTS_NOTFOUND);
    assert_int_equal(certs_rebind_renewed(f->s, "UDID-1", fb, f->now, &store_rc), CERTS_OK);
    char *now_bound = bound_fp(f, "UDID-1");
    assert_string_equal(now_bound, fb);
    free(now_bound);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM events WHERE type = 'CertificateRenewed'"),
                     1);
    /* The stale renewal c (of a, no longer bound) cannot take the binding. */
    assert_int_equal(certs_rebind_renewed(f->s, "UDID-1", fc, f->now, &store_rc), CERTS_NOTFOUND);
    now_bound = bound_fp(f, "UDID-1");
    assert_string_equal(now_bound, fb);
    free(now_bound);
    X509_free(a);
    X509_free(b);
    X509_free(c);
}

static void test_renewal_refused(void **state)
{
    struct fixture *f = *state;
    f->p.challenge_mode = CHALLENGE_NONE;
    X509 *a = issue_ok(f, G.rsa2048, NULL, "a", NULL);
    char sa[41];
    serial_of(a, sa);

    /* A certificate that is not ours (the CA's own, here) cannot be renewed. */
    X509_REQ *csr = make_csr(G.rsa2048, "device");
    X509 *x = NULL;
    const char *reason = NULL;
    assert_int_equal(issue(f, csr, NULL, "r1", G.ca->cert, &x, &reason), CERTS_BAD_REQUEST);
    assert_string_equal(reason, "the renewed certificate was not issued by this server");

    /* Nor an expired one. */
    f->now += 400 * DAY;
    assert_int_equal(issue(f, csr, NULL, "r2", a, &x, &reason), CERTS_BAD_REQUEST);
    assert_string_equal(reason, "the renewed certificate has expired");
    f->now -= 400 * DAY;

    /* Nor a revoked one. */
    int store_rc = STORE_OK;
    assert_int_equal(certs_revoke(f->s, sa, NULL, f->now, &store_rc), CERTS_OK);
    assert_int_equal(issue(f, csr, NULL, "r3", a, &x, &reason), CERTS_BAD_REQUEST);
    assert_string_equal(reason, "the renewed certificate is revoked");
    assert_int_equal(cert_rows(f), 1);
    X509_REQ_free(csr);
    X509_free(a);
}

/* ---- store-level ---------------------------------------------------------------------- */

static void test_store_challenge_codes(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_challenge_add(f->s, "h1", "alice", 100, 200), STORE_OK);
    assert_int_equal(store_challenge_add(f->s, "h1", "bob", 100, 200), STORE_CONFLICT);
    assert_int_equal(store_challenge_consume(f->s, "nope", 150), STORE_NOTFOUND);
    assert_int_equal(store_challenge_consume(f->s, "h1", 200), STORE_CHALLENGE_EXPIRED);
    assert_int_equal(store_challenge_consume(f->s, "h1", 199), STORE_OK);
    assert_int_equal(store_challenge_consume(f->s, "h1", 199), STORE_CHALLENGE_USED);
    /* Used wins over expired: the more telling answer. */
    assert_int_equal(store_challenge_consume(f->s, "h1", 500), STORE_CHALLENGE_USED);
}

static void add_record(struct fixture *f, const char *serial, const char *fp, const char *status,
                       int64_t not_after, const char *enrollment, int64_t created)
{
    struct store_cert c = {0};
    c.serial_hex = (char *)serial;
    c.fingerprint = (char *)fp;
    c.subject = "CN=x";
    c.status = (char *)status;
    c.not_before = not_after ? 1 : 0;
    c.not_after = not_after;
    c.enrollment_id = (char *)enrollment;
    c.created_at = created;
    assert_int_equal(store_cert_add(f->s, &c), STORE_OK);
}

static void test_store_cert_list_and_transitions(void **state)
{
    struct fixture *f = *state;
    add_record(f, "01", "fp1", "issued", 1000, "D1", 10);
    add_record(f, "02", "fp2", "issued", 5000, "D2", 20);
    add_record(f, "03", NULL, "pending", 0, NULL, 30);
    add_record(f, "04", NULL, "pending", 0, NULL, 40);
    add_record(f, "05", "fp5", "issued", 2000, "D1", 50);
    struct store_cert c = {.serial_hex = "01", .subject = "CN=y", .status = "issued"};
    assert_int_equal(store_cert_add(f->s, &c), STORE_CONFLICT);

    struct store_cert **list = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(store_cert_list(f->s, NULL, &list, &n, &total), STORE_OK);
    assert_int_equal(n, 5);
    assert_int_equal(total, 5);
    assert_string_equal(list[0]->serial_hex, "05"); /* newest first */
    assert_null(list[0]->der);
    store_cert_list_free(list, n);

    struct store_cert_filter fl = {.status = "issued", .expiring_before = 3000, .valid_at = 1500};
    assert_int_equal(store_cert_list(f->s, &fl, &list, &n, &total), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->serial_hex, "05");
    store_cert_list_free(list, n);

    struct store_cert_filter byenr = {.enrollment_id = "D1", .limit = 1, .offset = 1};
    assert_int_equal(store_cert_list(f->s, &byenr, &list, &n, &total), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(total, 2);
    assert_string_equal(list[0]->serial_hex, "01");
    store_cert_list_free(list, n);

    /* Transitions: each only from its one status. */
    assert_int_equal(store_cert_revoke(f->s, "03", "r", 7), STORE_CONFLICT);
    assert_int_equal(store_cert_revoke(f->s, "99", "r", 7), STORE_NOTFOUND);
    assert_int_equal(store_cert_revoke(f->s, "01", "r", 7), STORE_OK);
    assert_int_equal(store_cert_revoke(f->s, "01", "r", 8), STORE_CONFLICT);
    const uint8_t der[] = {1, 2, 3};
    assert_int_equal(store_cert_approve(f->s, "01", "fpx", der, 3, 1, 2), STORE_CONFLICT);
    assert_int_equal(store_cert_approve(f->s, "03", "fp3", der, 3, 1, 2), STORE_OK);
    assert_int_equal(store_cert_approve(f->s, "03", "fp3", der, 3, 1, 2), STORE_CONFLICT);
    assert_int_equal(store_cert_reject(f->s, "03", 9), STORE_CONFLICT);
    assert_int_equal(store_cert_reject(f->s, "04", 9), STORE_OK);
    assert_int_equal(store_cert_reject(f->s, "77", 9), STORE_NOTFOUND);
    struct store_cert *rec = NULL;
    assert_int_equal(store_cert_get_by_fingerprint(f->s, "fp3", &rec), STORE_OK);
    assert_string_equal(rec->status, "issued");
    assert_int_equal(rec->der_len, 3);
    assert_int_equal(rec->not_after, 2);
    store_cert_free(rec);
    assert_int_equal(store_cert_set_enrollment(f->s, "fp3", "D9"), STORE_OK);
    assert_int_equal(store_cert_set_enrollment(f->s, "fp-none", "D9"), STORE_NOTFOUND);

    /* The transaction lookup takes the newest record. */
    struct store_cert t1 = {.serial_hex = "10", .subject = "CN=t", .status = "rejected",
                            .transaction_id = "T", .created_at = 1};
    struct store_cert t2 = {.serial_hex = "11", .subject = "CN=t", .status = "pending",
                            .transaction_id = "T", .created_at = 2};
    assert_int_equal(store_cert_add(f->s, &t1), STORE_OK);
    assert_int_equal(store_cert_add(f->s, &t2), STORE_OK);
    assert_int_equal(store_cert_get_by_transaction(f->s, "T", &rec), STORE_OK);
    assert_string_equal(rec->serial_hex, "11");
    store_cert_free(rec);
    assert_int_equal(store_cert_get_by_transaction(f->s, "U", &rec), STORE_NOTFOUND);
}

static void test_store_rebind_cas(void **state)
{
    struct fixture *f = *state;
    struct store_enrollment e = {.id = "D", .type = "Device", .cert_fp = "old"};
    assert_int_equal(store_enrollment_authenticate(f->s, &e, 1), STORE_OK);
    assert_int_equal(store_enrollment_rebind(f->s, "D", "stale", "new"), STORE_CONFLICT);
    assert_int_equal(store_enrollment_rebind(f->s, "X", "old", "new"), STORE_NOTFOUND);
    assert_int_equal(store_enrollment_rebind(f->s, "D", "old", "new"), STORE_OK);
    assert_int_equal(store_enrollment_rebind(f->s, "D", "old", "newer"), STORE_CONFLICT);
    char *fp = bound_fp(f, "D");
    assert_string_equal(fp, "new");
    free(fp);
}

static void test_serial_forms(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(certs_serial_normalize("0x00AB:cd", out, sizeof out), 0);
    assert_string_equal(out, "abcd");
    assert_int_equal(certs_serial_normalize("abc", out, sizeof out), 0);
    assert_string_equal(out, "0abc");
    assert_int_equal(certs_serial_normalize("000", out, sizeof out), -1);
    assert_int_equal(certs_serial_normalize("", out, sizeof out), -1);
    assert_int_equal(certs_serial_normalize("12g4", out, sizeof out), -1);
    assert_int_equal(certs_serial_normalize("abcdef", out, 6), -1);
    assert_int_equal(certs_serial_normalize("abcdef", out, 7), 0);
    assert_int_equal(certs_serial_normalize("abc", out, 4), -1);
    assert_int_equal(certs_serial_normalize("abc", out, 5), 0);
    assert_string_equal(out, "0abc");

    ASN1_INTEGER *i = ASN1_INTEGER_new();
    char hex[41];
    assert_int_equal(ASN1_INTEGER_set_int64(i, 0x1234), 1);
    assert_int_equal(certs_serial_hex(i, hex), 0);
    assert_string_equal(hex, "1234");
    assert_int_equal(ASN1_INTEGER_set_int64(i, -5), 1);
    assert_int_equal(certs_serial_hex(i, hex), -1);
    ASN1_INTEGER_free(i);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_issue_no_challenge),
        T(test_issue_static_challenge),
        T(test_dynamic_challenge_one_time),
        T(test_dynamic_challenge_expired_unknown),
        T(test_key_policy),
        T(test_bad_csr_signature),
        T(test_pending_approve_poll),
        T(test_pending_reject),
        T(test_revoke_and_crl),
        T(test_renewal_and_rebind),
        T(test_renewal_refused),
        T(test_store_challenge_codes),
        T(test_store_cert_list_and_transitions),
        T(test_store_rebind_cas),
        cmocka_unit_test(test_serial_forms),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
