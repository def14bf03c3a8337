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

#endif
