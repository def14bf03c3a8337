/* attrs.h: the pieces of a SCEP (RFC 8894) pkiMessage below the message
 * level: the signed attributes (read from a parsed SignedData, encoded for
 * cms_sign_attrs), the CSR's challengePassword, and the small ASN.1 bodies
 * IssuerAndSubject / IssuerAndSerialNumber. Used by scep/message.c and
 * scep/client.c, and by tests reading real CertReps. */
#ifndef STEWARD_SCEP_ATTRS_H
#define STEWARD_SCEP_ATTRS_H

#include "pki/cms.h"

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define SCEP_OID_MESSAGE_TYPE "2.16.840.1.113733.1.9.2"
#define SCEP_OID_PKI_STATUS "2.16.840.1.113733.1.9.3"
#define SCEP_OID_FAIL_INFO "2.16.840.1.113733.1.9.4"
#define SCEP_OID_SENDER_NONCE "2.16.840.1.113733.1.9.5"
#define SCEP_OID_RECIPIENT_NONCE "2.16.840.1.113733.1.9.6"
#define SCEP_OID_TRANSACTION_ID "2.16.840.1.113733.1.9.7"
#define SCEP_OID_FAIL_INFO_TEXT "1.3.6.1.5.5.7.24.1"
#define SCEP_OID_CHALLENGE "1.2.840.113549.1.9.7"

#define SCEP_NONCE_LEN 16
#define SCEP_TID_MAX 128       /* transactionID bytes we accept */
#define SCEP_CHALLENGE_MAX 255 /* PKCS#9 ub-challengePassword */

/* The SCEP signed attributes of one message. Absent values: -1 for the
 * numbers, "" for the strings, 0 for the lengths. */
struct scep_attrs {
    int message_type;
    int pki_status;
    int fail_info;
    char transaction_id[SCEP_TID_MAX + 1];
    uint8_t sender_nonce[SCEP_NONCE_LEN];
    size_t sender_nonce_len;
    uint8_t recipient_nonce[SCEP_NONCE_LEN];
    size_t recipient_nonce_len;
    int has_challenge;
    char challenge[SCEP_CHALLENGE_MAX + 1]; /* outer challengePassword, UTF-8 */
    char fail_text[256];                    /* failInfoText, UTF-8, truncated */
};

void scep_attrs_init(struct scep_attrs *a);

/* Reads every SCEP attribute of the first signer of a parsed SignedData
 * (cms_signed_parse). Absent ones stay absent; 0, or -1 and *reason when one
 * is present but malformed (wrong type, repeated, bad number, bad length). */
int scep_attrs_read(CMS_ContentInfo *cms, struct scep_attrs *a, const char **reason);

/* The encoded form of a struct scep_attrs, for cms_sign_attrs: list[0..n)
 * points into this struct and into the scep_attrs it was made from, so both
 * must outlive its use. */
struct scep_attrs_enc {
    char type[12], status[12], fail[12];
    struct cms_attr list[8];
    size_t n;
};
void scep_attrs_encode(const struct scep_attrs *a, struct scep_attrs_enc *out);

/* The challengePassword attribute of a CSR as a malloc'd UTF-8 string:
 * 1 (found), 0 (none) or -1 (malformed: not a single string, too long, NUL). */
int scep_csr_challenge(X509_REQ *csr, char **out);

/* IssuerAndSubject (CertPoll) and IssuerAndSerialNumber (GetCert, GetCRL):
 * SEQUENCE { Name, Name } and SEQUENCE { Name, INTEGER }, exactly len bytes.
 * The decoders return 0 with new objects, or -1. The encoder returns 0 and a
 * malloc'd DER. */
int scep_issuer_subject_decode(const uint8_t *der, size_t len, X509_NAME **issuer,
                               X509_NAME **subject);
int scep_issuer_serial_decode(const uint8_t *der, size_t len, X509_NAME **issuer,
                              ASN1_INTEGER **serial);
int scep_issuer_subject_encode(X509_NAME *issuer, X509_NAME *subject, uint8_t **der,
                               size_t *len);
int scep_issuer_serial_encode(X509_NAME *issuer, const ASN1_INTEGER *serial, uint8_t **der,
                              size_t *len);

#endif
