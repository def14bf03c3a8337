/* cms.h: the one CMS (RFC 5652) module every caller uses: sign (profiles,
 * SCEP replies), verify (Mdm-Signature, signed OTA payloads, SCEP requests),
 * encrypt to a recipient certificate (per-device profiles, SCEP replies) and
 * decrypt (SCEP envelopes). OpenSSL 3's CMS API; DER in and out; every
 * output buffer is malloc'd and freed by the caller. */
#ifndef STEWARD_CMS_H
#define STEWARD_CMS_H

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

/* SignedData over data (SHA-256 unless md is given), signer certificate
 * included plus extra (may be NULL); detached leaves the content out. */
int cms_sign(X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra, const EVP_MD *md,
             const uint8_t *data, size_t len, int detached, uint8_t **der, size_t *der_len);

/* Verifies a SignedData's signature (one signer) over its attached content,
 * or over detached[0..detached_len) when detached is not NULL. Does NOT check
 * the signer's chain: callers do that with pki_verify_device_cert or their
 * own trust. Returns 0 with *content (attached only; may be NULL), *signer
 * (up-ref'd) and *others (the other certificates; may be NULL), or -1 and
 * *reason. */
int cms_verify(const uint8_t *der, size_t len, const uint8_t *detached, size_t detached_len,
               uint8_t **content, size_t *content_len, X509 **signer, STACK_OF(X509) **others,
               const char **reason);

/* EnvelopedData of data to recipient (key transport; AES-256-CBC unless
 * cipher is given). */
int cms_encrypt(X509 *recipient, const EVP_CIPHER *cipher, const uint8_t *data, size_t len,
                uint8_t **der, size_t *der_len);

/* Decrypts an EnvelopedData addressed to cert/key. *cipher_nid (may be NULL)
 * receives the content cipher. 0 or -1 with *reason ("not addressed to us",
 * "unsupported cipher", …). */
int cms_decrypt(X509 *cert, EVP_PKEY *key, const uint8_t *der, size_t len, uint8_t **out,
                size_t *out_len, int *cipher_nid, const char **reason);

/* ---- additions for SCEP (RFC 8894): signed attributes, step-by-step
 * verification and certificate-only SignedData ---- */

/* The reasons cms_verify and cms_decrypt give, so a caller can reword them
 * (compare the pointers). */
extern const char cms_reason_malformed[];     /* not DER CMS, or bytes after it */
extern const char cms_reason_not_signed[];    /* a ContentInfo of another type */
extern const char cms_reason_attached[];      /* detached given, content attached */
extern const char cms_reason_no_content[];    /* no detached given, none attached */
extern const char cms_reason_signers[];       /* not exactly one signer */
extern const char cms_reason_no_signer_cert[];
extern const char cms_reason_bad_signature[];
extern const char cms_reason_not_enveloped[];
extern const char cms_reason_not_for_us[];    /* "not addressed to us" */
extern const char cms_reason_cipher[];        /* "unsupported cipher" */
extern const char cms_reason_decrypt[];

/* One signed attribute to add: dotted OID, ASN.1 string type
 * (V_ASN1_PRINTABLESTRING, V_ASN1_OCTET_STRING, V_ASN1_UTF8STRING, ...) and
 * its bytes. */
struct cms_attr {
    const char *oid;
    int type;
    const uint8_t *value;
    size_t len;
};

/* cms_sign, attached, with these signed attributes added to the signer
 * (contentType, messageDigest and signingTime are added by OpenSSL). */
int cms_sign_attrs(X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra, const EVP_MD *md,
                   const uint8_t *data, size_t len, const struct cms_attr *attrs, size_t nattrs,
                   uint8_t **der, size_t *der_len);

/* Parses exactly der[0..len) as a SignedData, without checking anything
 * else, so its attributes can be read before (or without) verifying. NULL and
 * *reason when it is not one. Caller CMS_ContentInfo_free()s. */
CMS_ContentInfo *cms_signed_parse(const uint8_t *der, size_t len, const char **reason);
/* cms_verify on an already parsed SignedData; same outputs. */
int cms_verify_parsed(CMS_ContentInfo *cms, const uint8_t *detached, size_t detached_len,
                      uint8_t **content, size_t *content_len, X509 **signer,
                      STACK_OF(X509) **others, const char **reason);
/* The first signer's signed attribute oid: 1 with *value (a string type, owned
 * by cms), 0 when absent, -1 when there is no signer or the attribute is
 * repeated, has several values or a non-string value. */
int cms_signed_attr(CMS_ContentInfo *cms, const char *oid, const ASN1_STRING **value);
/* The first signer's digest algorithm (NID_sha256, ...), NID_undef if none. */
int cms_signed_digest_nid(CMS_ContentInfo *cms);

/* A degenerate SignedData (no signers, no content) carrying certs (may be
 * NULL) and crl (may be NULL): SCEP's certs-only replies. */
int cms_certs_only(STACK_OF(X509) *certs, X509_CRL *crl, uint8_t **der, size_t *der_len);
/* The certificates and CRLs of any SignedData (crls may be NULL). 0, or -1
 * and *reason. *certs / *crls are new stacks (maybe empty) the caller frees
 * with sk_X509_pop_free / sk_X509_CRL_pop_free. */
int cms_certs_read(const uint8_t *der, size_t len, STACK_OF(X509) **certs,
                   STACK_OF(X509_CRL) **crls, const char **reason);

#endif
