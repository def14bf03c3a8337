/* pki.h: steward's certificate authority and the checks on device identity.
 * The CA (RSA, so SCEP clients can encrypt to it) issues the server's TLS
 * certificate (ECDSA P-256) and device identity certificates. Device requests
 * are verified here: a certificate chaining to the CA (from mutual TLS or an
 * RFC 9440 Client-Cert header) or an Mdm-Signature (detached CMS over the
 * body). Everything is OpenSSL 3; a struct pki_trust is read-only after
 * creation and safe to share between threads. */
#ifndef STEWARD_PKI_H
#define STEWARD_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct pki_ca {
    X509 *cert;              /* the issuing CA (first certificate of the CA file) */
    EVP_PKEY *key;
    STACK_OF(X509) *chain;   /* the rest of the CA file (intermediate → root), or NULL */
    X509 *ra_cert;           /* SCEP RA (pki_ca_load_ra), or NULL */
    EVP_PKEY *ra_key;
    struct pki_ca *previous; /* the CA before the last rotation (pki_ca_load_previous), or NULL */
    int64_t previous_until;  /* Unix time the previous CA stops being trusted */
};

/* Creates a self-signed CA (RSA 3072, SHA-256, 10 years) and writes the
 * certificate (0644) and key (0600) as PEM. Fails if either file exists.
 * Returns 0 or -1 with *err malloc'd. */
int pki_ca_create(const char *cert_path, const char *key_path, const char *common_name,
                  char **err);
/* Loads a CA; NULL with *err malloc'd on failure. Certificates after the
 * first in cert_path (an intermediate's chain) go to ca->chain. */
struct pki_ca *pki_ca_load(const char *cert_path, const char *key_path, char **err);
void pki_ca_free(struct pki_ca *ca); /* accepts NULL (and frees previous, RA) */

/* An intermediate CA: a new RSA 3072 key and a CA certificate (pathlen 0,
 * 10 years) signed by issuer; cert_path gets the intermediate followed by
 * the issuer and its chain, key_path the key (0600). Fails if either exists. */
int pki_ca_create_signed(const struct pki_ca *issuer, const char *cert_path,
                         const char *key_path, const char *common_name, char **err);
/* A SCEP RA certificate (RSA 2048, keyUsage digitalSignature+keyEncipherment,
 * not a CA) signed by ca; files as above. */
int pki_ca_create_ra(const struct pki_ca *ca, const char *cert_path, const char *key_path,
                     char **err);
/* Attaches the RA key pair (its certificate must be issued by ca). 0 or -1. */
int pki_ca_load_ra(struct pki_ca *ca, const char *cert_path, const char *key_path, char **err);
/* Attaches the previous CA (after a rotation), trusted until `until`. 0 or -1. */
int pki_ca_load_previous(struct pki_ca *ca, const char *cert_path, const char *key_path,
                         int64_t until, char **err);
/* The certificates a SCEP client or a trust payload needs, in this order:
 * the RA (when with_ra), the issuing CA, its chain, then the previous CA and
 * its chain while now < previous_until. New stack of up-ref'd certificates
 * (sk_X509_pop_free(s, X509_free)), or NULL. */
STACK_OF(X509) *pki_ca_certs(const struct pki_ca *ca, int with_ra, int64_t now);

/* What `steward ca show` prints about a certificate. */
struct pki_cert_info {
    char subject[256], issuer[256];
    char fingerprint[65];
    int64_t not_before, not_after;
    char key[32]; /* "RSA 3072", "EC P-256", ... */
    int is_ca;
};
void pki_cert_info(X509 *cert, struct pki_cert_info *out);
/* Every certificate of a PEM file, in order: new stack (pop_free), or NULL. */
STACK_OF(X509) *pki_read_certs(const char *path);

enum pki_cert_kind { PKI_CERT_SERVER, PKI_CERT_CLIENT };
enum pki_key_type { PKI_KEY_EC_P256, PKI_KEY_RSA2048 };

struct pki_issue_opts {
    enum pki_cert_kind kind;
    enum pki_key_type key_type;
    const char *common_name;
    const char *dns_name;  /* server: subjectAltName DNS (also IP when it parses as one) */
    int days;              /* validity; 0 = 365 */
};

/* Makes a new key and a certificate for it signed by the CA: random 128-bit
 * serial, SHA-256, keyUsage digitalSignature(+keyEncipherment for RSA),
 * extendedKeyUsage serverAuth or clientAuth. 0 or -1 with *err. */
int pki_issue(const struct pki_ca *ca, const struct pki_issue_opts *o, X509 **cert_out,
              EVP_PKEY **key_out, char **err);

/* PEM writers; the key file is created 0600. 0 or -1. */
int pki_write_cert_pem(const char *path, X509 *cert);
int pki_write_key_pem(const char *path, EVP_PKEY *key);

/* SHA-256 of the DER certificate as lowercase hex. */
void pki_cert_fingerprint(X509 *cert, char out[65]);

/* Parses a certificate from DER bytes, or from an RFC 9440 Client-Cert header
 * value (":<base64 DER>:"). NULL when invalid. Caller X509_free()s. */
X509 *pki_cert_from_der(const uint8_t *der, size_t len);
X509 *pki_cert_from_rfc9440(const char *header_value);

struct pki_trust;

/* Trust anchors for device certificates: every certificate in ca_file (PEM). */
struct pki_trust *pki_trust_new(const char *ca_file, char **err);
/* The same from several files (steward's CA, then external enterprise CAs and
 * their intermediates); each must hold at least one certificate. */
struct pki_trust *pki_trust_new_files(const char *const *files, size_t n, char **err);
/* Adds the previous CA (after a rotation) as a second set of anchors, used
 * only until `until` (Unix time): certificates it issued keep working for
 * the overlap window. Call before sharing t. 0 or -1 with *err. */
int pki_trust_set_previous(struct pki_trust *t, const char *file, int64_t until, char **err);
void pki_trust_free(struct pki_trust *t); /* accepts NULL */

/* 0 when cert chains to a trust anchor and is within its validity; otherwise
 * -1 and *reason set to a static description. untrusted may be NULL. */
int pki_verify_device_cert(const struct pki_trust *t, X509 *cert, STACK_OF(X509) *untrusted,
                           const char **reason);

/* Verifies an Mdm-Signature header: base64 DER CMS SignedData, detached, over
 * exactly body[0..len); SHA-1 or SHA-256; the signer must chain to a trust
 * anchor. On success returns 0 and *signer (caller X509_free()s); otherwise -1
 * and *reason. */
int pki_verify_mdm_signature(const struct pki_trust *t, const char *header_b64,
                             const uint8_t *body, size_t len, X509 **signer, const char **reason);

/* 0 when the Mdm-Signature header carries cert (the TLS client certificate)
 * among its certificates, so both name the same device; no cryptography, a
 * byte search in the decoded CMS. Otherwise -1 and *reason. */
int pki_mdm_signature_names(const char *header_b64, X509 *cert, const char **reason);

/* Makes an Mdm-Signature value (base64 detached CMS, SHA-256) as a device
 * would, for the simulator and tests. malloc'd string, or NULL. */
char *pki_sign_mdm_signature(X509 *cert, EVP_PKEY *key, const uint8_t *body, size_t len);

#endif
