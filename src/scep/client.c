/* client.c: the client side of the SCEP (RFC 8894) pkiMessage codec: build
 * PKCSReq, RenewalReq and CertPoll messages and read the CertRep answer.
 * Used by steward-devsim (simulated devices) and by tests that play a
 * device against scep/message.c. Every CMS operation goes through pki/cms.h. */
#include "scep/message.h"

#include "pki/cms.h"
#include "scep/attrs.h"
#include "util/ids.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests ---- */

/* RFC 8894 suggests a hash of the public key as transactionID: stable across
 * a client's retries of the same key. */
static int transaction_id_for(X509_REQ *csr, char out[129])
{
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(X509_REQ_get0_pubkey(csr), &spki);
    if (n <= 0)
        return -1;
    char hex[65];
    ids_sha256_hex(spki, (size_t)n, hex);
    OPENSSL_free(spki);
    snprintf(out, 129, "%s", hex);
    return 0;
}

/* Envelope body to the CA (AES-256-CBC), then sign with a fresh senderNonce
 * and the attributes in a (SHA-256). */
static int build_request(X509 *signer, EVP_PKEY *key, X509 *ca_cert, struct scep_attrs *a,
                         const uint8_t *body, size_t body_len, uint8_t nonce[16], uint8_t **der,
                         size_t *len)
{
    if (RAND_bytes(a->sender_nonce, SCEP_NONCE_LEN) != 1)
        return -1;
    a->sender_nonce_len = SCEP_NONCE_LEN;
    uint8_t *env = NULL;
    size_t env_len = 0;
    if (cms_encrypt(ca_cert, EVP_aes_256_cbc(), body, body_len, &env, &env_len) != 0)
        return -1;
    struct scep_attrs_enc enc;
    scep_attrs_encode(a, &enc);
    int rc = cms_sign_attrs(signer, key, NULL, EVP_sha256(), env, env_len, enc.list, enc.n, der,
                            len);
    free(env);
    if (rc == 0)
        memcpy(nonce, a->sender_nonce, SCEP_NONCE_LEN);
    return rc;
}

int scep_pkcsreq_build(X509_REQ *csr, X509 *signer, EVP_PKEY *signer_key, X509 *ca_cert,
                       int renewal, const char *outer_challenge, char transaction_id[129],
                       uint8_t nonce[16], uint8_t **der, size_t *len)
{
    if (!csr || !signer || !signer_key || !ca_cert || !transaction_id || !nonce || !der || !len)
        return -1;
    struct scep_attrs a;
    scep_attrs_init(&a);
    a.message_type = renewal ? SCEP_RENEWALREQ : SCEP_PKCSREQ;
    if (outer_challenge) {
        if (strlen(outer_challenge) > SCEP_CHALLENGE_MAX)
            return -1;
        snprintf(a.challenge, sizeof a.challenge, "%s", outer_challenge);
        a.has_challenge = 1;
    }
    if (transaction_id_for(csr, a.transaction_id) != 0)
        return -1;
    unsigned char *body = NULL;
    int n = i2d_X509_REQ(csr, &body);
    if (n <= 0)
        return -1;
    int rc = build_request(signer, signer_key, ca_cert, &a, body, (size_t)n, nonce, der, len);
    OPENSSL_free(body);
    if (rc == 0)
        memcpy(transaction_id, a.transaction_id, sizeof a.transaction_id);
    OPENSSL_cleanse(&a, sizeof a);
    return rc;
}

/* The issuer named is ca_cert's subject: the CA that will issue. (With an
 * RA, pass the CA certificate's name through a CA ca_cert, not the RA's.) */
int scep_certpoll_build_nonce(X509 *signer, EVP_PKEY *signer_key, X509 *ca_cert,
                              const char *transaction_id, X509_NAME *subject,
                              uint8_t nonce[16], uint8_t **der, size_t *len)
{
    if (!signer || !signer_key || !ca_cert || !transaction_id || !subject || !nonce || !der ||
        !len || !transaction_id[0] || strlen(transaction_id) > SCEP_TID_MAX)
        return -1;
    struct scep_attrs a;
    scep_attrs_init(&a);
    a.message_type = SCEP_CERTPOLL;
    snprintf(a.transaction_id, sizeof a.transaction_id, "%s", transaction_id);
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (scep_issuer_subject_encode(X509_get_subject_name(ca_cert), subject, &body, &body_len))
        return -1;
    int rc = build_request(signer, signer_key, ca_cert, &a, body, body_len, nonce, der, len);
    free(body);
    return rc;
}

int scep_certpoll_build(X509 *signer, EVP_PKEY *signer_key, X509 *ca_cert,
                        const char *transaction_id, X509_NAME *subject, uint8_t **der, size_t *len)
{
    uint8_t nonce[16];
    return scep_certpoll_build_nonce(signer, signer_key, ca_cert, transaction_id, subject, nonce,
                                     der, len);
}

/* ---- CertRep ---- */

/* The CertRep's signer is the CA itself or an RA the CA issued directly.
 * Dates are not checked: a client accepts its CA's answer as long as it
 * trusts the CA (the lead's trust decision, made with ca_cert). */
static int signed_by_ca(X509 *signer, X509 *ca_cert)
{
    if (X509_cmp(signer, ca_cert) == 0)
        return 1;
    EVP_PKEY *ca_key = X509_get0_pubkey(ca_cert);
    int ok = ca_key && X509_check_issued(ca_cert, signer) == X509_V_OK &&
             X509_verify(signer, ca_key) == 1;
    ERR_clear_error();
    return ok;
}

static int check_reply_attrs(const struct scep_attrs *a, const char *transaction_id,
                             const uint8_t nonce[16], const char **reason)
{
    if (a->message_type != SCEP_CERTREP) {
        *reason = "pkiMessage is not a CertRep";
        return -1;
    }
    if (strcmp(a->transaction_id, transaction_id) != 0) {
        *reason = "CertRep transactionID does not match the request";
        return -1;
    }
    if (a->recipient_nonce_len != SCEP_NONCE_LEN ||
        CRYPTO_memcmp(a->recipient_nonce, nonce, SCEP_NONCE_LEN) != 0) {
        *reason = "CertRep recipientNonce does not match our senderNonce";
        return -1;
    }
    if (a->pki_status != SCEP_SUCCESS && a->pki_status != SCEP_FAILURE &&
        a->pki_status != SCEP_PENDING) {
        *reason = "CertRep has no valid pkiStatus";
        return -1;
    }
    if (a->pki_status == SCEP_FAILURE &&
        (a->fail_info < SCEP_BAD_ALG || a->fail_info > SCEP_BAD_CERT_ID)) {
        *reason = "CertRep FAILURE has no valid failInfo";
        return -1;
    }
    return 0;
}

/* Of the certificates in the reply, ours is the one with our key; failing
 * that (renewal with a new key), the first end-entity certificate. */
static X509 *pick_issued(STACK_OF(X509) *certs, EVP_PKEY *key)
{
    X509 *fallback = NULL;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *x = sk_X509_value(certs, i);
        EVP_PKEY *pub = X509_get0_pubkey(x);
        if (pub && EVP_PKEY_eq(pub, key) == 1)
            return x;
        if (!fallback && X509_check_ca(x) == 0)
            fallback = x;
    }
    ERR_clear_error();
    return fallback;
}

static int read_issued(const uint8_t *env, size_t env_len, X509 *signer, EVP_PKEY *key,
                       X509 **issued, const char **reason)
{
    uint8_t *inner = NULL;
    size_t inner_len = 0;
    const char *why = NULL;
    if (cms_decrypt(signer, key, env, env_len, &inner, &inner_len, NULL, &why) != 0) {
        *reason = why;
        return -1;
    }
    STACK_OF(X509) *certs = NULL;
    int rc = cms_certs_read(inner, inner_len, &certs, NULL, &why);
    free(inner);
    if (rc != 0) {
        *reason = "CertRep envelope does not hold a certificate SignedData";
        return -1;
    }
    X509 *x = pick_issued(certs, key);
    rc = -1;
    if (!x)
        *reason = "CertRep holds no certificate";
    else if (X509_up_ref(x) == 1) {
        *issued = x;
        rc = 0;
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

int scep_certrep_read(const uint8_t *der, size_t len, X509 *ca_cert, X509 *signer,
                      EVP_PKEY *signer_key, const char *transaction_id, const uint8_t nonce[16],
                      int *status, int *fail_info, X509 **issued, const char **reason)
{
    *status = -1;
    *fail_info = -1;
    *issued = NULL;
    if (!der || len == 0 || len > SCEP_MESSAGE_MAX || !ca_cert || !transaction_id || !nonce) {
        *reason = "no CertRep to read";
        return -1;
    }
    const char *why = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(der, len, &why);
    if (!cms) {
        *reason = "CertRep is not a CMS SignedData";
        return -1;
    }
    struct scep_attrs a;
    uint8_t *content = NULL;
    size_t content_len = 0;
    X509 *rsigner = NULL;
    int rc = -1;
    if (scep_attrs_read(cms, &a, reason) != 0 ||
        check_reply_attrs(&a, transaction_id, nonce, reason) != 0)
        goto done;
    if (cms_verify_parsed(cms, NULL, 0, &content, &content_len, &rsigner, NULL, &why) != 0) {
        *reason = why;
        goto done;
    }
    if (!signed_by_ca(rsigner, ca_cert)) {
        *reason = "CertRep is not signed by the CA";
        goto done;
    }
    if (a.pki_status == SCEP_SUCCESS &&
        (!signer || !signer_key ||
         read_issued(content, content_len, signer, signer_key, issued, reason) != 0)) {
        if (!signer || !signer_key)
            *reason = "no key to decrypt the CertRep";
        goto done;
    }
    *status = a.pki_status;
    *fail_info = a.fail_info;
    rc = 0;
done:
    X509_free(rsigner);
    free(content);
    CMS_ContentInfo_free(cms);
    return rc;
}
