/* profile.h: the enrollment profiles steward hands out, built as plists and
 * CMS-signed: the plain enrollment profile (trust root when the CA is
 * private, SCEP payload with a one-time challenge, MDM payload) and the
 * three over-the-air Profile Service answers (PROTOCOL.md §5, §7, §7b).
 * Key names and types follow Apple's schema (shared/apple-schema/mdm/profiles).
 * Pure builders: no storage, no HTTP; enroll/service.c supplies challenges
 * and serves them. */
#ifndef STEWARD_ENROLL_PROFILE_H
#define STEWARD_ENROLL_PROFILE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

/* What the MDM and SCEP payloads say; strings borrowed. */
struct enroll_settings {
    const char *base_url;      /* "https://mdm.example.com:8443", no trailing '/' */
    const char *scep_url;      /* full SCEP URL (steward's /scep or scep_external_url) */
    const char *scep_name;     /* SCEP Name (CA identifier), may be "" */
    const char *topic;         /* APNs topic: com.apple.mgmt.… */
    int topic_configured;      /* 1 when the topic came from configuration, not a push cert */
    const char *organization;
    const char *identifier;    /* reverse-DNS prefix of PayloadIdentifiers */
    long access_rights;        /* 1..8191 */
    int sign_message;
    int checkout_when_removed;
    X509 *trust_root;          /* com.apple.security.root payload when not NULL */
};

/* The SCEP payload's subject: CN=<cn>, O=<organization>, OU=<ou> (ou may be NULL). */
struct enroll_identity {
    const char *challenge;     /* one-time SCEP challenge, may be NULL */
    const char *cn;
    const char *ou;
};

/* The PayloadContent array of an enrollment profile: the trust root (when
 * set), the SCEP payload and the MDM payload pointing at it. NULL on
 * failure. Caller plist_free()s. */
plist_t enroll_payloads_mdm(const struct enroll_settings *st, const struct enroll_identity *id);
/* Only the trust root and a SCEP payload (OTA phase 2). */
plist_t enroll_payloads_scep(const struct enroll_settings *st, const struct enroll_identity *id);

/* A top-level Configuration profile around content (taken). */
plist_t enroll_profile_wrap(const struct enroll_settings *st, const char *suffix,
                            const char *display_name, const char *description,
                            plist_t content);
/* OTA phase 1: a Profile Service profile asking for the device's attributes
 * (UDID, IMEI, ICCID, VERSION, PRODUCT, SERIAL, MAC_ADDRESS_EN0, DEVICE_NAME)
 * to be posted to url with challenge. */
plist_t enroll_profile_service(const struct enroll_settings *st, const char *url,
                               const char *challenge);
/* Replaces profile's PayloadContent by EncryptedPayloadContent: a CMS
 * EnvelopedData (AES-256-CBC) of the serialized array, to recipient. 0 or -1. */
int enroll_profile_encrypt(plist_t profile, X509 *recipient);
/* The XML profile, CMS SignedData (attached, SHA-256) by signer with chain. */
int enroll_profile_sign(plist_t profile, X509 *signer, EVP_PKEY *key, STACK_OF(X509) *chain,
                        uint8_t **der, size_t *der_len);

#define ENROLL_CONTENT_TYPE "application/x-apple-aspen-config"
/* PayloadIdentifier prefix of everything steward hands out, and the
 * enrollment profile's own identifier (RemoveProfile unenrolls with it). */
#define ENROLL_IDENTIFIER "com.steward.enrollment"
#define ENROLL_PROFILE_IDENTIFIER ENROLL_IDENTIFIER ".profile"

#endif
