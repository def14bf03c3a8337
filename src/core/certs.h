/* certs.h: the device-certificate lifecycle: one-time SCEP challenges,
 * the issuance policy (which CSRs get a certificate, with what), the record
 * of every issued certificate, revocation and the CRL, renewal (a new
 * certificate that takes over an enrollment's binding when first used) and
 * expiry. Called by scep/ (issuing), mdm/ (is this certificate revoked?
 * renewal rebinding) and api/ (challenges, listing, revoking). */
#ifndef STEWARD_CERTS_H
#define STEWARD_CERTS_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "pki/pki.h"
#include "store/store.h"

enum certs_rc {
    CERTS_OK = 0,
    CERTS_BAD_REQUEST = -20,   /* CSR refused by policy (key, subject, signature) */
    CERTS_BAD_CHALLENGE = -21, /* missing, wrong, expired or already used challenge */
    CERTS_PENDING = -22,       /* manual approval is on: stored as pending */
    CERTS_NOTFOUND = -23,
    CERTS_STORE = -24,         /* storage failed; *store_rc says how */
    CERTS_INTERNAL = -25,
};

enum certs_challenge_mode { CHALLENGE_NONE, CHALLENGE_STATIC, CHALLENGE_DYNAMIC };

struct certs_policy {
    int challenge_mode;          /* enum certs_challenge_mode */
    const char *static_challenge;
    int64_t challenge_ttl;       /* seconds a dynamic challenge lives (default 3600) */
    int days;                    /* validity of issued certificates (default 365) */
    int rsa_min_bits, rsa_max_bits; /* 2048, 4096 */
    int allow_ec;                /* ECDSA P-256/P-384 CSRs */
    int manual_approval;         /* PKCSReq → PENDING until an operator approves */
};
void certs_policy_defaults(struct certs_policy *p);

/* ---- challenges (stored as SHA-256; the clear text is shown once) ---- */
/* Creates a one-time challenge: 32 random hex characters into out (33 bytes). */
int certs_challenge_create(struct store *s, const char *created_for, int64_t ttl, int64_t now,
                           char out[33], int64_t *expires_at, int *store_rc);
/* Checks a challenge against the policy; a dynamic one is consumed (never
 * replayable) in the same transaction that stores the certificate, so
 * callers pass it to certs_issue rather than checking it alone. */

/* ---- issuing ---- */
struct certs_issue_request {
    X509_REQ *csr;
    const char *challenge;       /* as sent (NULL when none) */
    const char *transaction_id;  /* SCEP transactionID, kept for CertPoll */
    X509 *renewing;              /* RenewalReq: the current identity that signed it, else NULL */
};

/* Applies the policy (challenge, CSR signature, key type and size, subject)
 * and issues a certificate signed by ca: subject from the CSR (CN, O, OU,
 * only), random 128-bit serial, keyUsage digitalSignature+keyEncipherment,
 * EKU clientAuth, validity policy->days. Stores the record (and consumes a
 * dynamic challenge) in one transaction. On success *issued (caller frees).
 * Renewal: renewing must be a valid certificate we issued; the new record
 * remembers it so the enrollment's binding moves on first use.
 * Returns CERTS_OK, CERTS_PENDING (manual approval), or an error with
 * *reason (static text). */
int certs_issue(struct store *s, const struct pki_ca *ca, const struct certs_policy *policy,
                const struct certs_issue_request *req, int64_t now, X509 **issued,
                const char **reason, int *store_rc);

/* CertPoll: the certificate issued for transaction_id, CERTS_PENDING while
 * it waits for approval, CERTS_NOTFOUND when unknown or rejected. */
int certs_poll(struct store *s, const char *transaction_id, X509 **issued, int *store_rc);

/* GetCert: a certificate we issued, by serial. */
int certs_get_by_serial(struct store *s, const ASN1_INTEGER *serial, X509 **cert, int *store_rc);

/* ---- revocation and the CRL ---- */
int certs_revoke(struct store *s, const char *serial_hex, const char *reason, int64_t now,
                 int *store_rc);
/* A CRL of every revoked, unexpired certificate, signed by ca, valid for
 * next_update_secs. Caller X509_CRL_free()s. */
int certs_crl(struct store *s, const struct pki_ca *ca, int64_t now, int64_t next_update_secs,
              X509_CRL **crl, int *store_rc);

/* ---- identity checks (mdm/) ---- */
/* CERTS_OK when fp is not known as revoked (certificates from an external CA
 * are not in the store and pass); CERTS_BAD_REQUEST with *reason when it is
 * revoked. */
int certs_check_not_revoked(struct store *s, const char *fp, const char **reason, int *store_rc);
/* Renewal rebinding: when fp is a certificate issued by renewal of the
 * certificate currently bound to enrollment device_id, moves the binding to
 * fp (atomically) and returns CERTS_OK; CERTS_NOTFOUND when fp is no renewal
 * of the bound certificate. */
int certs_rebind_renewed(struct store *s, const char *device_id, const char *fp, int64_t now,
                         int *store_rc);

/* ---- additions: binding, approval, serials ---- */
/* Authenticate: records that enrollment_id uses certificate fp, when fp is a
 * certificate we issued; CERTS_OK too (nothing to do) for a certificate of
 * another CA. Runs inside the caller's transaction if one is open. */
int certs_note_binding(struct store *s, const char *fp, const char *enrollment_id, int *store_rc);

/* Manual approval: issues the certificate for a pending request (serial_hex
 * in any form certs_serial_normalize accepts) with policy->days from now.
 * *issued may be NULL when the caller does not want it. CERTS_NOTFOUND when
 * unknown, CERTS_BAD_REQUEST with *reason when it is not pending. */
int certs_approve(struct store *s, const struct pki_ca *ca, const struct certs_policy *policy,
                  const char *serial_hex, int64_t now, X509 **issued, const char **reason,
                  int *store_rc);
/* Refuses a pending request: CertPoll then answers NOTFOUND. CERTS_NOTFOUND
 * when unknown, CERTS_BAD_REQUEST when it is not pending. */
int certs_reject(struct store *s, const char *serial_hex, int64_t now, int *store_rc);

/* The stored form of a serial typed by an operator: hex digits (either case,
 * ':' separators and a leading "0x" allowed) to lowercase hex with no leading
 * zero bytes. 0, or -1 when it is not a positive hex number or does not fit
 * in n bytes. */
int certs_serial_normalize(const char *in, char *out, size_t n);
/* The stored form of a certificate's serial (41 bytes hold RFC 5280's 20
 * octets). 0, or -1 when negative or too long. */
int certs_serial_hex(const ASN1_INTEGER *serial, char out[41]);

#endif
