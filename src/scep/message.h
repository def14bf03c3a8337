/* message.h: SCEP (RFC 8894) pkiMessage codec, both directions, no HTTP.
 * Server side: parse a PKIOperation message (verify the CMS signature, read
 * the signed attributes, decrypt the pkcsPKIEnvelope with the CA/RA key) and
 * build the CertRep answer (SUCCESS with the certificate in a degenerate
 * SignedData enveloped to the requester with AES, FAILURE with failInfo,
 * PENDING). Client side (steward-devsim, tests): build PKCSReq, RenewalReq and
 * CertPoll messages and read a CertRep. Uses pki/cms.h for every CMS operation. */
#ifndef STEWARD_SCEP_MESSAGE_H
#define STEWARD_SCEP_MESSAGE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

enum scep_message_type {
    SCEP_CERTREP = 3,
    SCEP_RENEWALREQ = 17,
    SCEP_PKCSREQ = 19,
    SCEP_CERTPOLL = 20, /* GetCertInitial */
    SCEP_GETCERT = 21,
    SCEP_GETCRL = 22,
};

enum scep_pki_status { SCEP_SUCCESS = 0, SCEP_FAILURE = 2, SCEP_PENDING = 3 };

enum scep_fail_info {
    SCEP_BAD_ALG = 0,
    SCEP_BAD_MESSAGE_CHECK = 1,
    SCEP_BAD_REQUEST = 2,
    SCEP_BAD_TIME = 3,
    SCEP_BAD_CERT_ID = 4,
};

/* A decoded request. Everything is owned by the struct. */
struct scep_request {
    int message_type;              /* enum scep_message_type */
    char transaction_id[129];      /* PrintableString, as sent */
    uint8_t sender_nonce[16];
    size_t sender_nonce_len;       /* 0 when absent */
    X509 *signer;                  /* the requester's certificate (self-signed, or its current identity) */
    STACK_OF(X509) *signer_chain;  /* other certificates in the SignedData */
    int digest_nid;                /* digest of the outer signature (NID_sha256, …) */
    int cipher_nid;                /* content cipher of the envelope (NID_aes_128_cbc, …) */
    X509_REQ *csr;                 /* PKCSReq / RenewalReq */
    char *challenge;               /* challengePassword from the CSR, else from the outer signed attributes; NULL when none */
    X509_NAME *issuer;             /* CertPoll: issuer; GetCert / GetCRL: issuer of the serial */
    X509_NAME *subject;            /* CertPoll: subject */
    ASN1_INTEGER *serial;          /* GetCert / GetCRL */
    int64_t signing_time;          /* the signingTime signed attribute, Unix; 0 when absent */
};
void scep_request_free(struct scep_request *r); /* accepts NULL */

/* Parses and verifies a pkiMessage addressed to us (ra_cert/ra_key: the CA,
 * or the RA when one is configured). On success returns 0 and *out. On
 * failure returns -1, *reason (static text) and *fail_info; when the message
 * was readable enough to answer (signature verified, transactionID and
 * nonce known) *partial holds it so a FAILURE CertRep can be built, else NULL. */
int scep_request_parse(const uint8_t *der, size_t len, X509 *ra_cert, EVP_PKEY *ra_key,
                       struct scep_request **out, struct scep_request **partial, int *fail_info,
                       const char **reason);

/* The key pairs a request may be enveloped to: the RA, the CA, the previous
 * CA during a rotation overlap. Tried in order. */
struct scep_keypair {
    X509 *cert;
    EVP_PKEY *key;
};
/* scep_request_parse with several possible recipients. A message whose
 * outer signature does not verify (tampered, or signed with another key)
 * but whose transactionID and senderNonce are readable comes back as a
 * partial with SCEP_BAD_MESSAGE_CHECK (SCEP_BAD_ALG for MD5 and the like). */
int scep_request_parse_keys(const uint8_t *der, size_t len, const struct scep_keypair *keys,
                            size_t nkeys, struct scep_request **out,
                            struct scep_request **partial, int *fail_info, const char **reason);

/* How far a request's signingTime may be from the server's clock before it
 * is answered badTime: generous, since devices' clocks drift and a request
 * may wait in a queue, yet a replay of a months-old message is refused. */
#define SCEP_MAX_CLOCK_SKEW (24 * 3600)
/* 0 when req has no signingTime or it is within SCEP_MAX_CLOCK_SKEW of now. */
int scep_request_time_ok(const struct scep_request *req, int64_t now);

struct scep_reply {
    int status;                    /* enum scep_pki_status */
    int fail_info;                 /* for FAILURE */
    const char *fail_text;         /* optional failInfoText (RFC 8894) */
    X509 *issued;                  /* SUCCESS for PKCSReq/RenewalReq/CertPoll/GetCert */
    STACK_OF(X509) *chain;         /* extra certificates to include with it (may be NULL) */
    X509_CRL *crl;                 /* SUCCESS for GetCRL */
};

/* Builds the CertRep for req, signed by ra_cert/ra_key with the request's
 * digest, recipientNonce = the request's senderNonce, the same transactionID,
 * a fresh senderNonce; SUCCESS content enveloped to req->signer with AES
 * (256-bit CBC, or the cipher the client used when it is AES). 0 or -1. */
int scep_certrep_build(const struct scep_request *req, const struct scep_reply *rep, X509 *ra_cert,
                       EVP_PKEY *ra_key, uint8_t **der, size_t *len);

/* A degenerate SignedData (certificates only) for GetCACert with an RA. */
int scep_degenerate_certs(STACK_OF(X509) *certs, uint8_t **der, size_t *len);

/* ---- client side ---- */

/* Builds a PKCSReq (or RenewalReq when renewal) for csr, signed by signer
 * (self-signed temporary cert, or the current identity for renewal) with
 * signer_key, enveloped to ca_cert with AES-256-CBC; optional challenge is
 * also put in the outer signed attributes when outer_challenge (as Apple's
 * mdmclient does). transaction_id and nonce are generated and returned. */
int scep_pkcsreq_build(X509_REQ *csr, X509 *signer, EVP_PKEY *signer_key, X509 *ca_cert,
                       int renewal, const char *outer_challenge, char transaction_id[129],
                       uint8_t nonce[16], uint8_t **der, size_t *len);
/* Builds a CertPoll for a pending request. */
int scep_certpoll_build(X509 *signer, EVP_PKEY *signer_key, X509 *ca_cert,
                        const char *transaction_id, X509_NAME *subject, uint8_t **der, size_t *len);

/* Reads a CertRep: verifies its signature against ca_cert (the signer must be
 * ca_cert or chain to it), checks the transactionID and recipientNonce, and
 * for SUCCESS decrypts the certificate with signer_key. *status, *fail_info,
 * and *issued (caller frees) on SUCCESS. 0 or -1 with *reason. */
int scep_certrep_read(const uint8_t *der, size_t len, X509 *ca_cert, X509 *signer,
                      EVP_PKEY *signer_key, const char *transaction_id, const uint8_t nonce[16],
                      int *status, int *fail_info, X509 **issued, const char **reason);

/* ---- addition: scep_certpoll_build generates a senderNonce but cannot
 * return it, and scep_certrep_read needs it to check the recipientNonce.
 * This variant returns it; scep_certpoll_build calls it. ---- */
int scep_certpoll_build_nonce(X509 *signer, EVP_PKEY *signer_key, X509 *ca_cert,
                              const char *transaction_id, X509_NAME *subject,
                              uint8_t nonce[16], uint8_t **der, size_t *len);

/* The largest pkiMessage scep_request_parse reads (refused before parsing). */
#define SCEP_MESSAGE_MAX (256 * 1024)

#endif
