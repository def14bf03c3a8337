/* verify.c: checks on device identity: the trust store of CA certificates,
 * chain verification of device certificates (mutual TLS, RFC 9440 header)
 * and the Mdm-Signature header (detached CMS over the request body), plus the
 * signer used by the device simulator. Called by the http and mdm layers from
 * many worker threads at once: a pki_trust is never modified after creation. */
#include "pki/pki.h"

#include "pki/cms.h"
#include "util/ids.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An Mdm-Signature is one signer certificate (maybe a chain) and a signature:
 * a few KiB. The cap bounds the work an unauthenticated client can cause. */
#define MAX_SIG_DER (64 * 1024)
#define MAX_SIG_B64 (2 * MAX_SIG_DER) /* room for base64 growth and line breaks */

struct pki_trust {
    X509_STORE *store;    /* read-only after pki_trust_new; X509_STORE locks its own lookups */
    X509_STORE *previous; /* the CA before a rotation, or NULL */
    int64_t previous_until;
};

static void set_err(char **err, const char *what, const char *path)
{
    unsigned long e = ERR_peek_last_error();
    const char *detail = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    if (!err)
        return;
    char *s = NULL;
    if (asprintf(&s, "%s %s%s%s", what, path, detail ? ": " : "", detail ? detail : "") < 0)
        s = NULL;
    *err = s;
}

/* Adds every certificate of a PEM file; returns how many, or -1 on a read
 * or parse error other than the normal end of the file. */
static int add_pem_certs(X509_STORE *store, const char *path)
{
    BIO *in = BIO_new_file(path, "r");
    if (!in)
        return -1;
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (ok != 1) {
            BIO_free(in);
            return -1;
        }
        n++;
    }
    BIO_free(in);
    /* PEM_read stops with "no start line" at the end of the file; any other
     * error is a damaged certificate, which must not be skipped silently. */
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    else if (e)
        return -1;
    return n;
}

/* A store of every certificate of the files, each an anchor: even one that
 * is not self-signed (an enterprise issuing CA trusted without its root). */
static X509_STORE *store_from_files(const char *const *files, size_t n, char **err)
{
    X509_STORE *store = X509_STORE_new();
    if (!store) {
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int got = files[i] ? add_pem_certs(store, files[i]) : -1;
        if (got <= 0) {
            set_err(err, got == 0 ? "no certificate in" : "cannot read certificates from",
                    files[i] ? files[i] : "(null)");
            X509_STORE_free(store);
            return NULL;
        }
    }
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    return store;
}

struct pki_trust *pki_trust_new_files(const char *const *files, size_t n, char **err)
{
    if (err)
        *err = NULL;
    if (!files || n == 0) {
        if (err)
            *err = strdup("CA file is required");
        return NULL;
    }
    struct pki_trust *t = calloc(1, sizeof *t);
    if (!t) {
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    if (!(t->store = store_from_files(files, n, err))) {
        free(t);
        return NULL;
    }
    return t;
}

struct pki_trust *pki_trust_new(const char *ca_file, char **err)
{
    return pki_trust_new_files(&ca_file, 1, err);
}

int pki_trust_set_previous(struct pki_trust *t, const char *file, int64_t until, char **err)
{
    if (err)
        *err = NULL;
    X509_STORE *prev = t ? store_from_files(&file, 1, err) : NULL;
    if (!prev)
        return -1;
    X509_STORE_free(t->previous);
    t->previous = prev;
    t->previous_until = until;
    return 0;
}

void pki_trust_free(struct pki_trust *t)
{
    if (!t)
        return;
    X509_STORE_free(t->store);
    X509_STORE_free(t->previous);
    free(t);
}

/* ---- certificate chains ---- */

enum cert_failure {
    CF_NO_CHAIN,
    CF_EXPIRED,
    CF_NOT_YET_VALID,
    CF_CA_EXPIRED,
    CF_CA_NOT_YET_VALID,
    CF_BAD_SIGNATURE,
    CF_BAD_CHAIN,
    CF_OTHER,
    CF_COUNT
};

/* The same failures, worded for a device certificate and for the signer of
 * an Mdm-Signature, so a log line says which check the device failed. */
static const char *const device_reasons[CF_COUNT] = {
    [CF_NO_CHAIN] = "certificate does not chain to steward's CA",
    [CF_EXPIRED] = "certificate expired",
    [CF_NOT_YET_VALID] = "certificate not yet valid",
    [CF_CA_EXPIRED] = "issuing CA certificate expired",
    [CF_CA_NOT_YET_VALID] = "issuing CA certificate not yet valid",
    [CF_BAD_SIGNATURE] = "certificate signature is invalid",
    [CF_BAD_CHAIN] = "certificate chain is not valid",
    [CF_OTHER] = "certificate verification failed",
};
static const char *const signer_reasons[CF_COUNT] = {
    [CF_NO_CHAIN] = "signer certificate does not chain to steward's CA",
    [CF_EXPIRED] = "signer certificate expired",
    [CF_NOT_YET_VALID] = "signer certificate not yet valid",
    [CF_CA_EXPIRED] = "signer's issuing CA certificate expired",
    [CF_CA_NOT_YET_VALID] = "signer's issuing CA certificate not yet valid",
    [CF_BAD_SIGNATURE] = "signer certificate signature is invalid",
    [CF_BAD_CHAIN] = "signer certificate chain is not valid",
    [CF_OTHER] = "signer certificate verification failed",
};

static enum cert_failure classify(int code, int depth)
{
    switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
        return CF_NO_CHAIN;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return depth == 0 ? CF_EXPIRED : CF_CA_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return depth == 0 ? CF_NOT_YET_VALID : CF_CA_NOT_YET_VALID;
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
        return CF_BAD_SIGNATURE;
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
    case X509_V_ERR_INVALID_PURPOSE:
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
        return CF_BAD_CHAIN;
    default:
        return CF_OTHER;
    }
}

/* X509_verify_cert already checks every certificate's dates; checking the
 * leaf again keeps "within its validity" true whatever flags the store has. */
static int leaf_dates(X509 *cert, enum cert_failure *why)
{
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) >= 0) {
        *why = CF_NOT_YET_VALID;
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
        *why = CF_EXPIRED;
        return -1;
    }
    return 0;
}

/* Purpose ANY: identity certificates from other CAs or SCEP servers often
 * lack the clientAuth EKU. No CRL flags: revocation is the store's job. */
static int verify_in(X509_STORE *store, X509 *cert, STACK_OF(X509) *untrusted,
                     enum cert_failure *why)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx) {
        *why = CF_OTHER;
        return -1;
    }
    int ok = X509_STORE_CTX_init(ctx, store, cert, untrusted) == 1 &&
             X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_ANY) == 1;
    if (!ok) {
        *why = CF_OTHER;
    } else if (X509_verify_cert(ctx) != 1) {
        ok = 0;
        *why = classify(X509_STORE_CTX_get_error(ctx), X509_STORE_CTX_get_error_depth(ctx));
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return -1;
    return leaf_dates(cert, why);
}

/* The current anchors first; a certificate from the CA before a rotation
 * passes through the previous anchors until the overlap window ends. */
static int verify_chain(const struct pki_trust *t, X509 *cert, STACK_OF(X509) *untrusted,
                        enum cert_failure *why)
{
    if (verify_in(t->store, cert, untrusted, why) == 0)
        return 0;
    enum cert_failure prev_why = CF_NO_CHAIN;
    if (t->previous && (int64_t)time(NULL) < t->previous_until && *why == CF_NO_CHAIN) {
        if (verify_in(t->previous, cert, untrusted, &prev_why) == 0)
            return 0;
        if (prev_why != CF_NO_CHAIN)
            *why = prev_why; /* it chains there, but fails another check */
    }
    return -1;
}

int pki_verify_device_cert(const struct pki_trust *t, X509 *cert, STACK_OF(X509) *untrusted,
                           const char **reason)
{
    if (!t || !cert) {
        *reason = "no certificate";
        return -1;
    }
    enum cert_failure why;
    if (verify_chain(t, cert, untrusted, &why) != 0) {
        *reason = device_reasons[why];
        return -1;
    }
    return 0;
}

/* ---- Mdm-Signature ---- */

/* Base64 → DER, size-capped before and after decoding. Malloc'd, or NULL. */
static uint8_t *decode_signature(const char *header_b64, size_t *der_len, const char **reason)
{
    size_t enc_len = strnlen(header_b64, MAX_SIG_B64 + 1);
    if (enc_len > MAX_SIG_B64) {
        *reason = "Mdm-Signature is too large";
        return NULL;
    }
    uint8_t *der = ids_b64_decode(header_b64, enc_len, der_len);
    if (!der || *der_len == 0) {
        free(der);
        *reason = "Mdm-Signature is not valid base64";
        return NULL;
    }
    if (*der_len > MAX_SIG_DER) {
        free(der);
        *reason = "Mdm-Signature is too large";
        return NULL;
    }
    return der;
}

/* cms_verify's reasons, worded for the Mdm-Signature header so a log line
 * says which check the device failed. */
static const char *signature_reason(const char *cms_reason)
{
    if (cms_reason == cms_reason_malformed || cms_reason == cms_reason_not_signed)
        return "Mdm-Signature is not a CMS SignedData";
    if (cms_reason == cms_reason_attached)
        return "Mdm-Signature is not detached";
    if (cms_reason == cms_reason_signers)
        return "Mdm-Signature must have exactly one signer";
    if (cms_reason == cms_reason_no_signer_cert)
        return "Mdm-Signature does not carry the signer certificate";
    if (cms_reason == cms_reason_bad_signature)
        return "signature does not match the body";
    return cms_reason;
}

int pki_verify_mdm_signature(const struct pki_trust *t, const char *header_b64,
                             const uint8_t *body, size_t len, X509 **signer, const char **reason)
{
    static const uint8_t empty[1];
    *signer = NULL;
    if (!t || !header_b64 || (!body && len)) {
        *reason = "Mdm-Signature is missing";
        return -1;
    }
    size_t der_len = 0;
    uint8_t *der = decode_signature(header_b64, &der_len, reason);
    if (!der)
        return -1;
    X509 *x = NULL;
    STACK_OF(X509) *others = NULL;
    const char *why = NULL;
    /* Detached over the exact body bytes (an empty body is still "given"). */
    int rc = cms_verify(der, der_len, len ? body : empty, len, NULL, NULL, &x, &others, &why);
    free(der);
    if (rc != 0) {
        *reason = signature_reason(why);
        return -1;
    }
    /* The other certificates in the CMS may be intermediates; the anchor
     * must still come from steward's trust store. */
    enum cert_failure cf;
    if (verify_chain(t, x, others, &cf) != 0) {
        *reason = signer_reasons[cf];
        rc = -1;
        X509_free(x);
    } else {
        *signer = x;
    }
    sk_X509_pop_free(others, X509_free);
    return rc;
}

int pki_mdm_signature_names(const char *header_b64, X509 *cert, const char **reason)
{
    size_t der_len = 0;
    uint8_t *der = header_b64 && cert ? decode_signature(header_b64, &der_len, reason) : NULL;
    if (!der)
        return -1;
    unsigned char *cert_der = NULL;
    int cert_len = i2d_X509(cert, &cert_der);
    /* A CMS SignedData carries its certificates as their DER, byte for byte. */
    int found = cert_len > 0 && memmem(der, der_len, cert_der, (size_t)cert_len) != NULL;
    OPENSSL_free(cert_der);
    free(der);
    if (!found)
        *reason = "Mdm-Signature is not made with the TLS client certificate";
    return found ? 0 : -1;
}

char *pki_sign_mdm_signature(X509 *cert, EVP_PKEY *key, const uint8_t *body, size_t len)
{
    if (!cert || !key || (!body && len))
        return NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    /* Detached SHA-256 with the signer certificate included, as devices do. */
    if (cms_sign(cert, key, NULL, EVP_sha256(), body, len, 1, &der, &der_len) != 0)
        return NULL;
    char *out = ids_b64_encode(der, der_len);
    free(der);
    return out;
}
