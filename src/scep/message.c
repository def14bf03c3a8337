/* message.c: the server side of the SCEP (RFC 8894) pkiMessage codec:
 * parse and verify a PKIOperation request (signature, signed attributes,
 * pkcsPKIEnvelope decrypted with the CA/RA key, CSR / IssuerAndSubject /
 * IssuerAndSerialNumber inside) and build the CertRep answer. Called by
 * scep/handler.c; every CMS operation goes through pki/cms.h. */
#include "scep/message.h"

#include "pki/cms.h"
#include "scep/attrs.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void scep_request_free(struct scep_request *r)
{
    if (!r)
        return;
    X509_free(r->signer);
    sk_X509_pop_free(r->signer_chain, X509_free);
    X509_REQ_free(r->csr);
    free(r->challenge);
    X509_NAME_free(r->issuer);
    X509_NAME_free(r->subject);
    ASN1_INTEGER_free(r->serial);
    free(r);
}

/* ---- request ---- */

static int is_request_type(int t)
{
    return t == SCEP_PKCSREQ || t == SCEP_RENEWALREQ || t == SCEP_CERTPOLL ||
           t == SCEP_GETCERT || t == SCEP_GETCRL;
}

/* The digests RFC 8894 clients use; MD5 (and anything unknown) is badAlg. */
static int digest_acceptable(int nid)
{
    return nid == NID_sha1 || nid == NID_sha256 || nid == NID_sha384 || nid == NID_sha512;
}

/* The attributes without which no answer can be built: what the request
 * is, which transaction, and the nonce the answer must echo. */
static int check_request_attrs(const struct scep_attrs *a, const char **reason)
{
    if (a->message_type < 0) {
        *reason = "pkiMessage has no messageType";
        return -1;
    }
    if (!is_request_type(a->message_type)) {
        *reason = "pkiMessage messageType is not a request";
        return -1;
    }
    if (!a->transaction_id[0]) {
        *reason = "pkiMessage has no transactionID";
        return -1;
    }
    if (a->sender_nonce_len == 0) {
        *reason = "pkiMessage has no senderNonce";
        return -1;
    }
    return 0;
}

static struct scep_request *request_from_attrs(const struct scep_attrs *a, int digest_nid)
{
    struct scep_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->message_type = a->message_type;
    memcpy(r->transaction_id, a->transaction_id, sizeof r->transaction_id);
    memcpy(r->sender_nonce, a->sender_nonce, a->sender_nonce_len);
    r->sender_nonce_len = a->sender_nonce_len;
    r->digest_nid = digest_nid;
    r->cipher_nid = NID_undef;
    return r;
}

/* cms_decrypt's reasons become SCEP failInfo values. */
static int open_envelope(struct scep_request *r, const uint8_t *env, size_t env_len,
                         const struct scep_keypair *keys, size_t nkeys, uint8_t **inner,
                         size_t *inner_len, int *fail_info, const char **reason)
{
    const char *why = cms_reason_not_for_us;
    for (size_t i = 0; i < nkeys && why == cms_reason_not_for_us; i++) {
        if (!keys[i].cert || !keys[i].key)
            continue;
        if (cms_decrypt(keys[i].cert, keys[i].key, env, env_len, inner, inner_len,
                        &r->cipher_nid, &why) == 0)
            return 0;
    }
    if (why == cms_reason_not_for_us) {
        *fail_info = SCEP_BAD_MESSAGE_CHECK;
        *reason = "envelope not addressed to this CA";
    } else if (why == cms_reason_cipher) {
        *fail_info = SCEP_BAD_ALG;
        *reason = "unsupported envelope cipher";
    } else if (why == cms_reason_not_enveloped) {
        *fail_info = SCEP_BAD_REQUEST;
        *reason = "pkcsPKIEnvelope is not a CMS EnvelopedData";
    } else {
        *fail_info = SCEP_BAD_MESSAGE_CHECK;
        *reason = "cannot decrypt the pkcsPKIEnvelope";
    }
    return -1;
}

/* PKCSReq / RenewalReq: a PKCS#10 request whose own signature (proof of
 * possession of the key) must hold. The challenge comes from the CSR, or
 * from the outer signed attributes where Apple's mdmclient also puts it. */
static int read_csr(struct scep_request *r, const uint8_t *der, size_t len,
                    const struct scep_attrs *a, int *fail_info, const char **reason)
{
    const unsigned char *p = der;
    r->csr = len <= LONG_MAX ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
    if (!r->csr || p != der + len) {
        *fail_info = SCEP_BAD_REQUEST;
        *reason = "envelope does not hold a PKCS#10 request";
        return -1;
    }
    EVP_PKEY *pub = X509_REQ_get0_pubkey(r->csr);
    if (!pub || X509_REQ_verify(r->csr, pub) != 1) {
        *fail_info = SCEP_BAD_MESSAGE_CHECK;
        *reason = "PKCS#10 request signature is invalid";
        return -1;
    }
    int c = scep_csr_challenge(r->csr, &r->challenge);
    if (c < 0) {
        *fail_info = SCEP_BAD_REQUEST;
        *reason = "malformed challengePassword in the PKCS#10 request";
        return -1;
    }
    if (c == 0 && a->has_challenge && !(r->challenge = strdup(a->challenge))) {
        *reason = "out of memory";
        return -1;
    }
    return 0;
}

static int read_body(struct scep_request *r, const uint8_t *der, size_t len,
                     const struct scep_attrs *a, int *fail_info, const char **reason)
{
    if (r->message_type == SCEP_PKCSREQ || r->message_type == SCEP_RENEWALREQ)
        return read_csr(r, der, len, a, fail_info, reason);
    if (r->message_type == SCEP_CERTPOLL) {
        if (scep_issuer_subject_decode(der, len, &r->issuer, &r->subject) == 0)
            return 0;
        *reason = "envelope does not hold an IssuerAndSubject";
    } else { /* GetCert, GetCRL */
        if (scep_issuer_serial_decode(der, len, &r->issuer, &r->serial) == 0)
            return 0;
        *reason = "envelope does not hold an IssuerAndSerialNumber";
    }
    *fail_info = SCEP_BAD_REQUEST;
    return -1;
}

/* Everything after the outer signature verified: the request is answerable
 * from here on, so a failure leaves r as the partial. */
static int read_verified(struct scep_request *r, const uint8_t *env, size_t env_len,
                         const struct scep_attrs *a, const struct scep_keypair *keys,
                         size_t nkeys, int *fail_info, const char **reason)
{
    if (!digest_acceptable(r->digest_nid)) {
        *fail_info = SCEP_BAD_ALG;
        *reason = "unsupported digest algorithm";
        return -1;
    }
    uint8_t *inner = NULL;
    size_t inner_len = 0;
    if (open_envelope(r, env, env_len, keys, nkeys, &inner, &inner_len, fail_info,
                      reason) != 0)
        return -1;
    int rc = read_body(r, inner, inner_len, a, fail_info, reason);
    OPENSSL_cleanse(inner, inner_len); /* may hold a challenge password */
    free(inner);
    return rc;
}

/* The signingTime signed attribute (UTCTime or GeneralizedTime), Unix
 * seconds; 0 when absent or unreadable. */
static int64_t signing_time(CMS_ContentInfo *cms)
{
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    CMS_SignerInfo *si = sk_CMS_SignerInfo_num(sis) == 1 ? sk_CMS_SignerInfo_value(sis, 0) : NULL;
    if (!si)
        return 0;
    ASN1_TYPE *t = NULL;
    int i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    X509_ATTRIBUTE *attr = i >= 0 ? CMS_signed_get_attr(si, i) : NULL;
    if (attr && X509_ATTRIBUTE_count(attr) == 1)
        t = X509_ATTRIBUTE_get0_type(attr, 0);
    struct tm tm;
    if (!t || (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME) ||
        ASN1_TIME_to_tm(t->value.utctime, &tm) != 1) {
        ERR_clear_error();
        return 0;
    }
    return (int64_t)timegm(&tm);
}

int scep_request_time_ok(const struct scep_request *req, int64_t now)
{
    if (!req || req->signing_time == 0)
        return 0;
    int64_t d = req->signing_time - now;
    return d > SCEP_MAX_CLOCK_SKEW || d < -SCEP_MAX_CLOCK_SKEW ? -1 : 0;
}

int scep_request_parse(const uint8_t *der, size_t len, X509 *ra_cert, EVP_PKEY *ra_key,
                       struct scep_request **out, struct scep_request **partial, int *fail_info,
                       const char **reason)
{
    struct scep_keypair k = {ra_cert, ra_key};
    return scep_request_parse_keys(der, len, &k, 1, out, partial, fail_info, reason);
}

int scep_request_parse_keys(const uint8_t *der, size_t len, const struct scep_keypair *keys,
                            size_t nkeys, struct scep_request **out,
                            struct scep_request **partial, int *fail_info, const char **reason)
{
    *out = NULL;
    *partial = NULL;
    *fail_info = SCEP_BAD_REQUEST;
    if (!der || len == 0) {
        *reason = "empty pkiMessage";
        return -1;
    }
    if (len > SCEP_MESSAGE_MAX) {
        *reason = "pkiMessage too large";
        return -1;
    }
    const char *why = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(der, len, &why);
    if (!cms) {
        *reason = "pkiMessage is not a CMS SignedData";
        return -1;
    }
    struct scep_attrs a;
    struct scep_request *r = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    int rc = -1;
    if (scep_attrs_read(cms, &a, reason) != 0 || check_request_attrs(&a, reason) != 0)
        goto done;
    r = request_from_attrs(&a, cms_signed_digest_nid(cms));
    if (!r) {
        *reason = "out of memory";
        goto done;
    }
    if (cms_verify_parsed(cms, NULL, 0, &env, &env_len, &r->signer, &r->signer_chain, &why)) {
        /* RFC 8894: a signature that does not verify is badMessageCheck.
         * The transactionID and senderNonce were read, so the client gets
         * a FAILURE CertRep it can match to its request (the reply carries
         * nothing but the status, so an unverified sender learns nothing). */
        *fail_info = digest_acceptable(r->digest_nid) ? SCEP_BAD_MESSAGE_CHECK : SCEP_BAD_ALG;
        if (why == cms_reason_no_signer_cert)
            *reason = "pkiMessage does not carry the signer certificate";
        else if (why == cms_reason_bad_signature)
            *reason = *fail_info == SCEP_BAD_ALG ? "unsupported digest algorithm"
                                                 : "pkiMessage signature does not verify";
        else
            *reason = why;
        if (why == cms_reason_no_signer_cert || why == cms_reason_bad_signature) {
            X509_free(r->signer); /* never trust what did not verify */
            r->signer = NULL;
            *partial = r;
            r = NULL;
        }
        goto done;
    }
    r->signing_time = signing_time(cms);
    if (read_verified(r, env, env_len, &a, keys, nkeys, fail_info, reason) != 0) {
        *partial = r;
        r = NULL;
        goto done;
    }
    *out = r;
    r = NULL;
    rc = 0;
done:
    scep_request_free(r);
    free(env);
    CMS_ContentInfo_free(cms);
    return rc;
}

/* ---- CertRep ---- */

/* The reply is signed with the request's digest when it is one we accept
 * (a badAlg answer to an MD5 request still needs a digest: SHA-256). */
static const EVP_MD *reply_digest(int nid)
{
    const EVP_MD *md = digest_acceptable(nid) ? EVP_get_digestbynid(nid) : NULL;
    return md ? md : EVP_sha256();
}

/* AES the way the client used it (it evidently supports that size), else
 * AES-256: never DES, which Debian's OpenSSL and certmonger cannot read. */
static const EVP_CIPHER *reply_cipher(int nid)
{
    if (nid == NID_aes_128_cbc || nid == NID_aes_192_cbc || nid == NID_aes_256_cbc) {
        const EVP_CIPHER *c = EVP_get_cipherbynid(nid);
        if (c)
            return c;
    }
    return EVP_aes_256_cbc();
}

/* The degenerate SignedData with the issued certificate (and its chain) or
 * the CRL, enveloped to the requester's signing certificate. */
static int success_content(const struct scep_request *req, const struct scep_reply *rep,
                           uint8_t **out, size_t *out_len)
{
    if (!req->signer || (!rep->issued && !rep->crl))
        return -1;
    int rc = -1;
    uint8_t *inner = NULL;
    size_t inner_len = 0;
    STACK_OF(X509) *certs = sk_X509_new_null(); /* borrows every certificate */
    if (!certs || (rep->issued && sk_X509_push(certs, rep->issued) <= 0))
        goto done;
    for (int i = 0; rep->issued && i < sk_X509_num(rep->chain); i++)
        if (sk_X509_push(certs, sk_X509_value(rep->chain, i)) <= 0)
            goto done;
    if (cms_certs_only(sk_X509_num(certs) > 0 ? certs : NULL, rep->crl, &inner, &inner_len))
        goto done;
    rc = cms_encrypt(req->signer, reply_cipher(req->cipher_nid), inner, inner_len, out, out_len);
done:
    free(inner);
    sk_X509_free(certs);
    return rc;
}

static int reply_attrs(const struct scep_request *req, const struct scep_reply *rep,
                       struct scep_attrs *a)
{
    scep_attrs_init(a);
    a->message_type = SCEP_CERTREP;
    a->pki_status = rep->status;
    if (rep->status == SCEP_FAILURE) {
        if (rep->fail_info < SCEP_BAD_ALG || rep->fail_info > SCEP_BAD_CERT_ID)
            return -1;
        a->fail_info = rep->fail_info;
        if (rep->fail_text)
            snprintf(a->fail_text, sizeof a->fail_text, "%s", rep->fail_text);
    } else if (rep->status != SCEP_SUCCESS && rep->status != SCEP_PENDING) {
        return -1;
    }
    if (RAND_bytes(a->sender_nonce, SCEP_NONCE_LEN) != 1)
        return -1;
    a->sender_nonce_len = SCEP_NONCE_LEN;
    memcpy(a->recipient_nonce, req->sender_nonce, req->sender_nonce_len);
    a->recipient_nonce_len = req->sender_nonce_len;
    memcpy(a->transaction_id, req->transaction_id, sizeof a->transaction_id);
    a->transaction_id[sizeof a->transaction_id - 1] = '\0';
    return 0;
}

/* FAILURE and PENDING carry no pkcsPKIEnvelope: the SignedData's content is
 * an empty id-data OCTET STRING, which every reader verifies (an absent
 * eContent would look detached to OpenSSL's and certmonger's readers). */
int scep_certrep_build(const struct scep_request *req, const struct scep_reply *rep, X509 *ra_cert,
                       EVP_PKEY *ra_key, uint8_t **der, size_t *len)
{
    if (!req || !rep || !ra_cert || !ra_key || !der || !len)
        return -1;
    struct scep_attrs a;
    if (reply_attrs(req, rep, &a) != 0)
        return -1;
    uint8_t *content = NULL;
    size_t content_len = 0;
    if (rep->status == SCEP_SUCCESS && success_content(req, rep, &content, &content_len) != 0)
        return -1;
    struct scep_attrs_enc enc;
    scep_attrs_encode(&a, &enc);
    int rc = cms_sign_attrs(ra_cert, ra_key, NULL, reply_digest(req->digest_nid), content,
                            content_len, enc.list, enc.n, der, len);
    free(content);
    return rc;
}

int scep_degenerate_certs(STACK_OF(X509) *certs, uint8_t **der, size_t *len)
{
    if (!certs || sk_X509_num(certs) <= 0)
        return -1;
    return cms_certs_only(certs, NULL, der, len);
}
