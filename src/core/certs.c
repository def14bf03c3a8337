/* certs.c: the device-certificate lifecycle behind certs.h: one-time
 * challenges, the issuance policy and the signing of device certificates,
 * manual approval, renewal and its rebinding, revocation and the CRL.
 * Called by scep/ (issuing, CertPoll, GetCert, GetCRL), core/identity.c and
 * core/enrollment.c (revocation, rebinding, binding) and api/ (operators). */
#include "core/certs.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"
#include "util/log.h"

#define DEFAULT_CHALLENGE_TTL 3600
#define DEFAULT_DAYS 365
#define DEFAULT_RSA_MIN 2048
#define DEFAULT_RSA_MAX 4096
/* notBefore this far in the past, so a device whose clock runs a little slow
 * accepts a certificate it was just given. */
#define CLOCK_SKEW_SECONDS 300
#define SERIAL_BYTES 16

void certs_policy_defaults(struct certs_policy *p)
{
    memset(p, 0, sizeof *p);
    p->challenge_mode = CHALLENGE_DYNAMIC;
    p->challenge_ttl = DEFAULT_CHALLENGE_TTL;
    p->days = DEFAULT_DAYS;
    p->rsa_min_bits = DEFAULT_RSA_MIN;
    p->rsa_max_bits = DEFAULT_RSA_MAX;
    p->allow_ec = 1;
}

/* Maps a store failure to CERTS_STORE, keeping the cause for the caller. */
static int store_failed(int rc, int *store_rc)
{
    if (store_rc)
        *store_rc = rc;
    return CERTS_STORE;
}

/* ---- serials ---------------------------------------------------------------- */

int certs_serial_normalize(const char *in, char *out, size_t n)
{
    if (!in || !out || n == 0)
        return -1;
    if (in[0] == '0' && (in[1] == 'x' || in[1] == 'X'))
        in += 2;
    size_t o = 0;
    int leading = 1;
    for (const char *p = in; *p; p++) {
        if (*p == ':')
            continue;
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return -1;
        if (leading && *p == '0')
            continue;
        leading = 0;
        if (o + 1 >= n)
            return -1;
        out[o++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    }
    if (o == 0)
        return -1; /* zero is no valid serial */
    if (o % 2) {
        if (o + 2 > n) /* the leading '0' needs one more byte */
            return -1;
        memmove(out + 1, out, o);
        out[0] = '0';
        o++;
    }
    out[o] = '\0';
    return 0;
}

int certs_serial_hex(const ASN1_INTEGER *serial, char out[41])
{
    out[0] = '\0';
    BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    if (!bn)
        return -1;
    uint8_t bytes[20];
    int len = BN_num_bytes(bn);
    int ok = !BN_is_negative(bn) && !BN_is_zero(bn) && len <= (int)sizeof bytes;
    if (ok)
        ok = BN_bn2bin(bn, bytes) == len;
    BN_free(bn);
    if (!ok)
        return -1;
    ids_hex(bytes, (size_t)len, out);
    return 0;
}

/* The ASN1_INTEGER for a stored serial; NULL when malformed or on OOM. */
static ASN1_INTEGER *serial_from_hex(const char *hex)
{
    BIGNUM *bn = NULL;
    if (!hex || BN_hex2bn(&bn, hex) != (int)strlen(hex)) {
        BN_free(bn);
        return NULL;
    }
    ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return sn;
}

/* A fresh random serial: 16 bytes, the top bit clear (positive, so DER needs
 * no padding byte) and the next one set (never a leading zero, so the hex
 * always has 32 digits). 0 or -1. */
static int new_serial(char out[41])
{
    uint8_t b[SERIAL_BYTES];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[0] = (uint8_t)((b[0] & 0x7f) | 0x40);
    ids_hex(b, sizeof b, out);
    return 0;
}

/* ---- challenges --------------------------------------------------------------- */

int certs_challenge_create(struct store *s, const char *created_for, int64_t ttl, int64_t now,
                           char out[33], int64_t *expires_at, int *store_rc)
{
    out[0] = '\0';
    if (ids_random_hex(16, out) < 0)
        return CERTS_INTERNAL;
    char hash[65];
    ids_sha256_hex((const uint8_t *)out, strlen(out), hash);
    int64_t expires = now + (ttl > 0 ? ttl : DEFAULT_CHALLENGE_TTL);
    int rc = store_challenge_add(s, hash, created_for, now, expires);
    if (rc != STORE_OK) {
        memset(out, 0, 33);
        return store_failed(rc, store_rc);
    }
    if (expires_at)
        *expires_at = expires;
    return CERTS_OK;
}

/* ---- the issuance policy ------------------------------------------------------ */

/* The CSR proves possession of its key, and the key is one we accept.
 * *is_ec tells the key usage to give. CERTS_OK or CERTS_BAD_REQUEST. */
static int check_csr_key(const struct certs_policy *p, X509_REQ *csr, int *is_ec,
                         const char **reason)
{
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    if (!key) {
        *reason = "CSR has no usable public key";
        return CERTS_BAD_REQUEST;
    }
    if (X509_REQ_verify(csr, key) != 1) {
        ERR_clear_error();
        *reason = "CSR signature does not verify";
        return CERTS_BAD_REQUEST;
    }
    *is_ec = 0;
    int type = EVP_PKEY_get_base_id(key);
    if (type == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(key);
        int min = p->rsa_min_bits > 0 ? p->rsa_min_bits : DEFAULT_RSA_MIN;
        int max = p->rsa_max_bits > 0 ? p->rsa_max_bits : DEFAULT_RSA_MAX;
        if (bits >= min && bits <= max)
            return CERTS_OK;
    } else if (type == EVP_PKEY_EC && p->allow_ec) {
        char group[64];
        size_t len = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1) {
            int nid = OBJ_sn2nid(group);
            if (nid == NID_undef)
                nid = EC_curve_nist2nid(group);
            *is_ec = 1;
            if (nid == NID_X9_62_prime256v1 || nid == NID_secp384r1)
                return CERTS_OK;
        }
    }
    ERR_clear_error();
    *reason = "key type or size not allowed";
    return CERTS_BAD_REQUEST;
}

/* The CSR's subject with only its CN, O and OU attributes, in order. NULL
 * on OOM; an empty name when it has none. */
static X509_NAME *filtered_subject(X509_REQ *csr)
{
    const X509_NAME *in = X509_REQ_get_subject_name(csr);
    X509_NAME *out = X509_NAME_new();
    for (int i = 0; out && in && i < X509_NAME_entry_count(in); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(in, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        if (nid != NID_commonName && nid != NID_organizationName &&
            nid != NID_organizationalUnitName)
            continue;
        if (X509_NAME_add_entry(out, e, -1, 0) != 1) {
            X509_NAME_free(out);
            out = NULL;
        }
    }
    return out;
}

/* RFC 2253 text of name (UTF-8 kept as is), malloc'd; NULL on OOM. */
static char *name_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return NULL;
    char *text = NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        text = malloc((size_t)len + 1);
        if (text) {
            if (len > 0)
                memcpy(text, data, (size_t)len);
            text[len] = '\0';
        }
    }
    BIO_free(b);
    return text;
}

static int san_name_allowed(const GENERAL_NAME *g)
{
    return g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI;
}

/* The DNS, email and URI names of the CSR's requested subjectAltName (every
 * other requested extension, and other name types, are dropped: what a
 * device certificate may do is ours to say). *out NULL when none remain.
 * 0, or -1 on OOM. */
static int filtered_san(X509_REQ *csr, GENERAL_NAMES **out)
{
    *out = NULL;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    ERR_clear_error(); /* a CSR without extensions leaves an error queued */
    int idx = exts ? X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1) : -1;
    GENERAL_NAMES *asked = idx >= 0 ? X509V3_EXT_d2i(X509v3_get_ext(exts, idx)) : NULL;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (!asked)
        return 0;
    GENERAL_NAMES *kept = GENERAL_NAMES_new();
    int rc = kept ? 0 : -1;
    for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(asked); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(asked, i);
        if (!san_name_allowed(g))
            continue;
        GENERAL_NAME *copy = GENERAL_NAME_dup(g);
        if (!copy || !sk_GENERAL_NAME_push(kept, copy)) {
            GENERAL_NAME_free(copy);
            rc = -1;
        }
    }
    GENERAL_NAMES_free(asked);
    if (rc == 0 && sk_GENERAL_NAME_num(kept) > 0)
        *out = kept;
    else
        GENERAL_NAMES_free(kept);
    return rc;
}

/* ---- signing -------------------------------------------------------------------- */

/* Adds one extension from a fixed configuration string (never outside input:
 * the string syntax would let it inject other fields). 0 or -1. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int add_device_exts(X509 *x, X509 *issuer, X509_REQ *csr, int is_ec)
{
    GENERAL_NAMES *san = NULL;
    if (add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext(x, issuer, NID_key_usage,
                is_ec ? "critical,digitalSignature" : "critical,digitalSignature,keyEncipherment") ||
        add_ext(x, issuer, NID_ext_key_usage, "clientAuth") ||
        add_ext(x, issuer, NID_subject_key_identifier, "hash") ||
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always") ||
        filtered_san(csr, &san) < 0)
        return -1;
    int ok = !san || X509_add1_ext_i2d(x, NID_subject_alt_name, san, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(san);
    return ok ? 0 : -1;
}

/* What build_cert made, for the record. */
struct built {
    X509 *cert;
    char fp[65];
    uint8_t *der; /* OPENSSL_malloc'd */
    size_t der_len;
    int64_t not_before, not_after;
};

static void built_clear(struct built *b)
{
    X509_free(b->cert);
    OPENSSL_free(b->der);
    memset(b, 0, sizeof *b);
}

/* Signs a device certificate for csr (already checked by the policy) with
 * the given serial and subject. 0 or -1. */
static int build_cert(const struct pki_ca *ca, X509_REQ *csr, const X509_NAME *subject,
                      const char *serial_hex, int is_ec, int days, int64_t now, struct built *b)
{
    memset(b, 0, sizeof *b);
    b->not_before = now - CLOCK_SKEW_SECONDS;
    b->not_after = now + (int64_t)(days > 0 ? days : DEFAULT_DAYS) * 86400;
    ASN1_INTEGER *sn = serial_from_hex(serial_hex);
    X509 *x = X509_new();
    int ok = sn && x && X509_set_version(x, X509_VERSION_3) == 1 &&
             X509_set_serialNumber(x, sn) == 1 &&
             X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) == 1 &&
             X509_set_subject_name(x, subject) == 1 &&
             X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)) == 1 &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)b->not_before) &&
             ASN1_TIME_set(X509_getm_notAfter(x), (time_t)b->not_after) &&
             add_device_exts(x, ca->cert, csr, is_ec) == 0 &&
             X509_sign(x, ca->key, EVP_sha256()) > 0;
    ASN1_INTEGER_free(sn);
    unsigned char *der = NULL;
    int len = ok ? i2d_X509(x, &der) : -1;
    if (len <= 0) {
        ERR_clear_error();
        X509_free(x);
        return -1;
    }
    b->cert = x;
    b->der = der;
    b->der_len = (size_t)len;
    pki_cert_fingerprint(x, b->fp);
    return 0;
}

/* ---- issuing ---------------------------------------------------------------------- */

/* What the policy decided about one request, before anything is stored. */
struct decision {
    X509_NAME *subject;
    char *subject_text;
    int is_ec;
    char challenge_hash[65]; /* non-empty: consume this dynamic challenge */
    struct store_cert *renewing; /* the record of the certificate being renewed */
    char *enrollment_id;         /* the renewed certificate's enrollment */
};

static void decision_clear(struct decision *d)
{
    X509_NAME_free(d->subject);
    free(d->subject_text);
    store_cert_free(d->renewing);
    free(d->enrollment_id);
    memset(d, 0, sizeof *d);
}

static int check_subject(X509_REQ *csr, struct decision *d, const char **reason)
{
    d->subject = filtered_subject(csr);
    if (!d->subject)
        return CERTS_INTERNAL;
    if (X509_NAME_entry_count(d->subject) == 0) {
        *reason = "CSR subject has no CN, O or OU";
        return CERTS_BAD_REQUEST;
    }
    d->subject_text = name_text(d->subject);
    return d->subject_text ? CERTS_OK : CERTS_INTERNAL;
}

/* Static: compared in constant time here. Dynamic: remembered as its hash,
 * consumed later in the transaction that stores the record. */
static int check_challenge(const struct certs_policy *p, const char *challenge,
                           struct decision *d, const char **reason)
{
    if (p->challenge_mode == CHALLENGE_NONE)
        return CERTS_OK;
    if (!challenge || !*challenge) {
        *reason = "challenge password missing";
        return CERTS_BAD_CHALLENGE;
    }
    if (p->challenge_mode == CHALLENGE_STATIC) {
        /* An empty configured challenge must never match anything. */
        if (!p->static_challenge || !*p->static_challenge ||
            !ids_secure_equal(challenge, p->static_challenge)) {
            *reason = "wrong challenge password";
            return CERTS_BAD_CHALLENGE;
        }
        return CERTS_OK;
    }
    ids_sha256_hex((const uint8_t *)challenge, strlen(challenge), d->challenge_hash);
    return CERTS_OK;
}

/* RenewalReq: the signer must be a live certificate of ours. Its enrollment
 * (from the record, else from the binding) carries over. */
static int check_renewing(struct store *s, X509 *renewing, int64_t now, struct decision *d,
                          const char **reason, int *store_rc)
{
    char fp[65];
    pki_cert_fingerprint(renewing, fp);
    int rc = store_cert_get_by_fingerprint(s, fp, &d->renewing);
    if (rc == STORE_NOTFOUND) {
        *reason = "the renewed certificate was not issued by this server";
        return CERTS_BAD_REQUEST;
    }
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    if (strcmp(d->renewing->status, "issued") != 0) {
        *reason = "the renewed certificate is revoked";
        return CERTS_BAD_REQUEST;
    }
    if (d->renewing->not_after <= now) {
        *reason = "the renewed certificate has expired";
        return CERTS_BAD_REQUEST;
    }
    if (d->renewing->enrollment_id) {
        d->enrollment_id = strdup(d->renewing->enrollment_id);
        return d->enrollment_id ? CERTS_OK : CERTS_INTERNAL;
    }
    rc = store_enrollment_by_cert(s, fp, &d->enrollment_id);
    if (rc == STORE_OK || rc == STORE_NOTFOUND)
        return CERTS_OK;
    return store_failed(rc, store_rc);
}

/* Every check that needs no write; fills d. */
static int decide(struct store *s, const struct certs_policy *p,
                  const struct certs_issue_request *req, int64_t now, struct decision *d,
                  const char **reason, int *store_rc)
{
    int rc = check_csr_key(p, req->csr, &d->is_ec, reason);
    if (rc == CERTS_OK)
        rc = check_subject(req->csr, d, reason);
    if (rc != CERTS_OK)
        return rc;
    /* A renewal is authenticated by the current certificate that signed it
     * (verified by scep/); the challenge in the profile was spent at
     * enrollment, so it is not asked for again. */
    if (req->renewing)
        return check_renewing(s, req->renewing, now, d, reason, store_rc);
    return check_challenge(p, req->challenge, d, reason);
}

static int challenge_refused(int rc, const char **reason)
{
    switch (rc) {
    case STORE_NOTFOUND: *reason = "unknown challenge password"; return CERTS_BAD_CHALLENGE;
    case STORE_CHALLENGE_EXPIRED: *reason = "challenge password expired"; return CERTS_BAD_CHALLENGE;
    case STORE_CHALLENGE_USED: *reason = "challenge password already used"; return CERTS_BAD_CHALLENGE;
    default: return 0;
    }
}

/* Consumes the dynamic challenge (if any) and stores rec, all or nothing. */
static int store_record(struct store *s, const struct decision *d, const struct store_cert *rec,
                        int64_t now, const char **reason, int *store_rc)
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    if (d->challenge_hash[0])
        rc = store_challenge_consume(s, d->challenge_hash, now);
    if (rc == STORE_OK)
        rc = store_cert_add(s, rec);
    if (rc == STORE_OK)
        rc = store_commit(s);
    else
        (void)store_rollback(s); /* the first error is the one to report */
    if (rc == STORE_OK)
        return CERTS_OK;
    int refused = challenge_refused(rc, reason);
    return refused ? refused : store_failed(rc, store_rc);
}

static void record_from(struct store_cert *rec, const struct decision *d,
                        const struct certs_issue_request *req, char *serial, int64_t now)
{
    memset(rec, 0, sizeof *rec);
    rec->serial_hex = serial;
    rec->subject = d->subject_text;
    rec->enrollment_id = d->enrollment_id;
    rec->transaction_id = (char *)req->transaction_id;
    rec->renewed_from = d->renewing ? d->renewing->fingerprint : NULL;
    rec->created_at = now;
}

/* Manual approval: the request waits, CSR and all. */
static int hold_pending(struct store *s, const struct decision *d,
                        const struct certs_issue_request *req, int64_t now, const char **reason,
                        int *store_rc)
{
    char serial[41];
    unsigned char *csr_der = NULL;
    int len = i2d_X509_REQ(req->csr, &csr_der);
    if (len <= 0 || new_serial(serial) < 0) {
        OPENSSL_free(csr_der);
        return CERTS_INTERNAL;
    }
    struct store_cert rec;
    record_from(&rec, d, req, serial, now);
    rec.status = "pending";
    rec.csr = csr_der;
    rec.csr_len = (size_t)len;
    int rc = store_record(s, d, &rec, now, reason, store_rc);
    OPENSSL_free(csr_der);
    if (rc == CERTS_OK) {
        char q[200];
        log_info("certificate request pending", "serial=%s subject=%s", serial,
                 log_quote(q, sizeof q, d->subject_text));
        return CERTS_PENDING;
    }
    return rc;
}

static int issue_now(struct store *s, const struct pki_ca *ca, const struct certs_policy *p,
                     const struct decision *d, const struct certs_issue_request *req, int64_t now,
                     X509 **issued, const char **reason, int *store_rc)
{
    char serial[41];
    struct built b;
    if (new_serial(serial) < 0 ||
        build_cert(ca, req->csr, d->subject, serial, d->is_ec, p->days, now, &b) < 0) {
        *reason = "cannot sign the certificate";
        return CERTS_INTERNAL;
    }
    struct store_cert rec;
    record_from(&rec, d, req, serial, now);
    rec.status = "issued";
    rec.fingerprint = b.fp;
    rec.not_before = b.not_before;
    rec.not_after = b.not_after;
    rec.der = b.der;
    rec.der_len = b.der_len;
    int rc = store_record(s, d, &rec, now, reason, store_rc);
    if (rc == CERTS_OK) {
        char q[200];
        log_info("certificate issued", "serial=%s fp=%s subject=%s renewed_from=%s", serial, b.fp,
                 log_quote(q, sizeof q, d->subject_text),
                 rec.renewed_from ? rec.renewed_from : "-");
        *issued = b.cert;
        b.cert = NULL;
    }
    built_clear(&b);
    return rc;
}

/* A client that resends a PKCSReq still waiting for approval (same
 * transaction id, same CSR) is told PENDING again, not recorded twice. */
static int already_pending(struct store *s, const struct certs_issue_request *req, int *pending,
                           int *store_rc)
{
    *pending = 0;
    if (!req->transaction_id)
        return CERTS_OK;
    struct store_cert *old = NULL;
    int rc = store_cert_get_by_transaction(s, req->transaction_id, &old);
    if (rc == STORE_NOTFOUND)
        return CERTS_OK;
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req->csr, &der);
    *pending = strcmp(old->status, "pending") == 0 && len > 0 && old->csr &&
               old->csr_len == (size_t)len && memcmp(old->csr, der, (size_t)len) == 0;
    OPENSSL_free(der);
    store_cert_free(old);
    return CERTS_OK;
}

int certs_issue(struct store *s, const struct pki_ca *ca, const struct certs_policy *policy,
                const struct certs_issue_request *req, int64_t now, X509 **issued,
                const char **reason, int *store_rc)
{
    const char *why = "request refused";
    if (!reason)
        reason = &why;
    *reason = "request refused";
    if (issued)
        *issued = NULL;
    if (!s || !ca || !policy || !req || !req->csr || !issued) {
        *reason = "internal error: incomplete issuing request";
        return CERTS_INTERNAL;
    }
    int pending = 0;
    int rc = already_pending(s, req, &pending, store_rc);
    if (rc != CERTS_OK)
        return rc;
    if (pending)
        return CERTS_PENDING;
    struct decision d = {0};
    rc = decide(s, policy, req, now, &d, reason, store_rc);
    if (rc == CERTS_OK && policy->manual_approval)
        rc = hold_pending(s, &d, req, now, reason, store_rc);
    else if (rc == CERTS_OK)
        rc = issue_now(s, ca, policy, &d, req, now, issued, reason, store_rc);
    if (rc == CERTS_INTERNAL && strcmp(*reason, "request refused") == 0)
        *reason = "internal error";
    decision_clear(&d);
    return rc;
}

/* ---- manual approval -------------------------------------------------------------- */

/* Loads a record by an operator-typed serial. */
static int load_by_serial(struct store *s, const char *serial_in, struct store_cert **out,
                          int *store_rc)
{
    char serial[129];
    *out = NULL;
    if (certs_serial_normalize(serial_in, serial, sizeof serial) < 0)
        return CERTS_NOTFOUND;
    int rc = store_cert_get_by_serial(s, serial, out);
    if (rc == STORE_NOTFOUND)
        return CERTS_NOTFOUND;
    return rc == STORE_OK ? CERTS_OK : store_failed(rc, store_rc);
}

/* Signs the certificate a pending record asked for. */
static int build_for_pending(const struct pki_ca *ca, const struct certs_policy *p,
                             const struct store_cert *rec, int64_t now, struct built *b,
                             const char **reason)
{
    const unsigned char *q = rec->csr;
    X509_REQ *csr = rec->csr ? d2i_X509_REQ(NULL, &q, (long)rec->csr_len) : NULL;
    X509_NAME *subject = csr ? filtered_subject(csr) : NULL;
    int is_ec = csr && EVP_PKEY_get_base_id(X509_REQ_get0_pubkey(csr)) == EVP_PKEY_EC;
    int rc = subject && build_cert(ca, csr, subject, rec->serial_hex, is_ec, p->days, now, b) == 0
                 ? CERTS_OK
                 : CERTS_INTERNAL;
    if (rc != CERTS_OK)
        *reason = "cannot sign the stored request";
    X509_NAME_free(subject);
    X509_REQ_free(csr);
    return rc;
}

int certs_approve(struct store *s, const struct pki_ca *ca, const struct certs_policy *policy,
                  const char *serial_hex, int64_t now, X509 **issued, const char **reason,
                  int *store_rc)
{
    const char *why = NULL;
    if (!reason)
        reason = &why;
    *reason = "no such request";
    if (issued)
        *issued = NULL;
    struct store_cert *rec = NULL;
    int rc = load_by_serial(s, serial_hex, &rec, store_rc);
    if (rc != CERTS_OK)
        return rc;
    struct built b = {0};
    if (strcmp(rec->status, "pending") != 0) {
        *reason = "the request is not pending";
        rc = CERTS_BAD_REQUEST;
    } else {
        rc = build_for_pending(ca, policy, rec, now, &b, reason);
    }
    if (rc == CERTS_OK) {
        int src = store_cert_approve(s, rec->serial_hex, b.fp, b.der, b.der_len, b.not_before,
                                     b.not_after);
        if (src == STORE_CONFLICT) {
            *reason = "the request is not pending";
            rc = CERTS_BAD_REQUEST;
        } else if (src != STORE_OK) {
            rc = src == STORE_NOTFOUND ? CERTS_NOTFOUND : store_failed(src, store_rc);
        }
    }
    if (rc == CERTS_OK) {
        log_info("certificate request approved", "serial=%s fp=%s", rec->serial_hex, b.fp);
        if (issued) {
            *issued = b.cert;
            b.cert = NULL;
        }
    }
    built_clear(&b);
    store_cert_free(rec);
    return rc;
}

/* Maps the result of a status transition keyed by serial. */
static int transition_result(int rc, int *store_rc)
{
    switch (rc) {
    case STORE_OK: return CERTS_OK;
    case STORE_NOTFOUND: return CERTS_NOTFOUND;
    case STORE_CONFLICT: return CERTS_BAD_REQUEST;
    default: return store_failed(rc, store_rc);
    }
}

int certs_reject(struct store *s, const char *serial_hex, int64_t now, int *store_rc)
{
    char serial[129];
    if (certs_serial_normalize(serial_hex, serial, sizeof serial) < 0)
        return CERTS_NOTFOUND;
    int rc = transition_result(store_cert_reject(s, serial, now), store_rc);
    if (rc == CERTS_OK)
        log_info("certificate request rejected", "serial=%s", serial);
    return rc;
}

/* ---- CertPoll and GetCert --------------------------------------------------------- */

static int cert_from_record(const struct store_cert *rec, X509 **out)
{
    if (!rec->der)
        return CERTS_NOTFOUND;
    *out = pki_cert_from_der(rec->der, rec->der_len);
    return *out ? CERTS_OK : CERTS_INTERNAL;
}

int certs_poll(struct store *s, const char *transaction_id, X509 **issued, int *store_rc)
{
    *issued = NULL;
    struct store_cert *rec = NULL;
    int rc = store_cert_get_by_transaction(s, transaction_id, &rec);
    if (rc == STORE_NOTFOUND)
        return CERTS_NOTFOUND;
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    if (strcmp(rec->status, "pending") == 0)
        rc = CERTS_PENDING;
    else if (strcmp(rec->status, "rejected") == 0)
        rc = CERTS_NOTFOUND;
    else
        rc = cert_from_record(rec, issued);
    store_cert_free(rec);
    return rc;
}

int certs_get_by_serial(struct store *s, const ASN1_INTEGER *serial, X509 **cert, int *store_rc)
{
    *cert = NULL;
    char hex[41];
    if (certs_serial_hex(serial, hex) < 0)
        return CERTS_NOTFOUND;
    struct store_cert *rec = NULL;
    int rc = store_cert_get_by_serial(s, hex, &rec);
    if (rc == STORE_NOTFOUND)
        return CERTS_NOTFOUND;
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    rc = cert_from_record(rec, cert);
    store_cert_free(rec);
    return rc;
}

/* ---- revocation and the CRL ------------------------------------------------------- */

int certs_revoke(struct store *s, const char *serial_hex, const char *reason, int64_t now,
                 int *store_rc)
{
    char serial[129];
    if (certs_serial_normalize(serial_hex, serial, sizeof serial) < 0)
        return CERTS_NOTFOUND;
    int rc = transition_result(store_cert_revoke(s, serial, reason, now), store_rc);
    if (rc == CERTS_OK) {
        char q[200];
        log_info("certificate revoked", "serial=%s reason=%s", serial,
                 log_quote(q, sizeof q, reason ? reason : ""));
    }
    return rc;
}

static int crl_add_revoked(X509_CRL *crl, const struct store_cert *rec)
{
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *sn = serial_from_hex(rec->serial_hex);
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)rec->revoked_at);
    int ok = r && sn && when && X509_REVOKED_set_serialNumber(r, sn) == 1 &&
             X509_REVOKED_set_revocationDate(r, when) == 1 && X509_CRL_add0_revoked(crl, r) == 1;
    if (!ok)
        X509_REVOKED_free(r);
    ASN1_INTEGER_free(sn);
    ASN1_TIME_free(when);
    return ok ? 0 : -1;
}

/* lastUpdate, nextUpdate, the CRL number and the authority key id. The CRL
 * number is the issue time: it increases from one CRL to the next (RFC 5280
 * asks no more) without a counter to keep in the database. */
static int crl_set_header(X509_CRL *crl, const struct pki_ca *ca, int64_t now, int64_t next)
{
    ASN1_TIME *last = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *upd = ASN1_TIME_set(NULL, (time_t)(now + (next > 0 ? next : 86400)));
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    int ok = last && upd && number && X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
             X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) == 1 &&
             X509_CRL_set1_lastUpdate(crl, last) == 1 && X509_CRL_set1_nextUpdate(crl, upd) == 1 &&
             ASN1_INTEGER_set_int64(number, now) == 1 &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_TIME_free(last);
    ASN1_TIME_free(upd);
    ASN1_INTEGER_free(number);
    if (!ok)
        return -1;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    X509_EXTENSION *aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier,
                                              "keyid:always");
    ok = aki && X509_CRL_add_ext(crl, aki, -1) == 1;
    X509_EXTENSION_free(aki);
    return ok ? 0 : -1;
}

int certs_crl(struct store *s, const struct pki_ca *ca, int64_t now, int64_t next_update_secs,
              X509_CRL **crl, int *store_rc)
{
    *crl = NULL;
    struct store_cert_filter f = {.status = "revoked", .valid_at = now, .limit = -1};
    struct store_cert **list = NULL;
    size_t n = 0;
    int rc = store_cert_list(s, &f, &list, &n, NULL);
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    X509_CRL *c = X509_CRL_new();
    int ok = c && crl_set_header(c, ca, now, next_update_secs) == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = crl_add_revoked(c, list[i]) == 0;
    store_cert_list_free(list, n);
    ok = ok && X509_CRL_sort(c) == 1 && X509_CRL_sign(c, ca->key, EVP_sha256()) > 0;
    if (!ok) {
        ERR_clear_error();
        X509_CRL_free(c);
        log_error("cannot build the CRL", "revoked=%zu", n);
        return CERTS_INTERNAL;
    }
    *crl = c;
    return CERTS_OK;
}

/* ---- identity checks --------------------------------------------------------------- */

int certs_check_not_revoked(struct store *s, const char *fp, const char **reason, int *store_rc)
{
    if (!fp)
        return CERTS_OK;
    char status[16];
    int rc = store_cert_status(s, fp, status);
    if (rc == STORE_NOTFOUND)
        return CERTS_OK; /* another CA's certificate: not ours to revoke */
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    if (strcmp(status, "revoked") != 0)
        return CERTS_OK;
    if (reason)
        *reason = "certificate is revoked";
    return CERTS_BAD_REQUEST;
}

/* The renewed-from fingerprint of an issued certificate fp, malloc'd; NULL
 * (CERTS_NOTFOUND) when fp is no issued renewal. */
static int renewal_source(struct store *s, const char *fp, char **from, int *store_rc)
{
    *from = NULL;
    struct store_cert *rec = NULL;
    int rc = store_cert_get_by_fingerprint(s, fp, &rec);
    if (rc == STORE_NOTFOUND)
        return CERTS_NOTFOUND;
    if (rc != STORE_OK)
        return store_failed(rc, store_rc);
    if (rec->renewed_from && strcmp(rec->status, "issued") == 0) {
        *from = rec->renewed_from;
        rec->renewed_from = NULL;
    }
    store_cert_free(rec);
    return *from ? CERTS_OK : CERTS_NOTFOUND;
}

/* Once its renewal is in use, the old certificate serves nobody: revoking it
 * ("superseded") keeps it from binding a fresh enrollment elsewhere and puts
 * it on the CRL. */
static int revoke_superseded(struct store *s, const char *old_fp, int64_t now)
{
    struct store_cert *old = NULL;
    int rc = store_cert_get_by_fingerprint(s, old_fp, &old);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    rc = store_cert_revoke(s, old->serial_hex, "superseded", now);
    store_cert_free(old);
    return rc == STORE_CONFLICT ? STORE_OK : rc; /* already revoked */
}

int certs_rebind_renewed(struct store *s, const char *device_id, const char *fp, int64_t now,
                         int *store_rc)
{
    if (!device_id || !fp)
        return CERTS_NOTFOUND;
    char *from = NULL;
    int rc = renewal_source(s, fp, &from, store_rc);
    if (rc != CERTS_OK)
        return rc;
    /* The compare-and-set is the check: it moves the binding only while the
     * enrollment is still bound to the certificate this one renews. */
    int src = store_enrollment_rebind(s, device_id, from, fp);
    if (src == STORE_OK)
        src = store_cert_set_enrollment(s, fp, device_id);
    if (src == STORE_OK)
        src = revoke_superseded(s, from, now);
    if (src == STORE_OK)
        src = store_event_add(s, device_id, "CertificateRenewed", fp, now);
    if (src == STORE_OK) {
        char q[200];
        log_info("enrollment rebound to renewed certificate", "id=%s from=%s to=%s",
                 log_quote(q, sizeof q, device_id), from, fp);
    }
    free(from);
    if (src == STORE_NOTFOUND || src == STORE_CONFLICT)
        return CERTS_NOTFOUND;
    return src == STORE_OK ? CERTS_OK : store_failed(src, store_rc);
}

int certs_note_binding(struct store *s, const char *fp, const char *enrollment_id, int *store_rc)
{
    if (!fp || !enrollment_id)
        return CERTS_OK;
    int rc = store_cert_set_enrollment(s, fp, enrollment_id);
    if (rc == STORE_OK || rc == STORE_NOTFOUND)
        return CERTS_OK;
    return store_failed(rc, store_rc);
}
