/* profile.h: configuration profiles as steward handles them: validation
 * against the payload tables (payloads.h) with the key path in every error,
 * the builder (JSON spec in, .mobileconfig plist out), import of XML, binary
 * and CMS-signed profiles, secret stripping for display, per-device
 * encryption (EncryptedPayloadContent) and CMS signing with the server's
 * profile-signing identity. No store access here: core/profiles_converge.c
 * and api/profiles.c call it. */
#ifndef STEWARD_PROFILE_H
#define STEWARD_PROFILE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

#define PROFILE_ERR_MAX 512

/* What validation learned about a profile. */
struct profile_check {
    char identifier[256];   /* top-level PayloadIdentifier */
    char uuid[64];          /* top-level PayloadUUID */
    char display_name[256];
    int supervised_only;    /* holds a payload iOS accepts only when supervised */
    int has_secrets;        /* holds a password or private key: encrypt per device */
    int unknown_types;      /* payload types steward has no table for (kept) */
    char *types;            /* PayloadTypes, comma-separated, malloc'd */
    char *flags;            /* warnings, one per line ("path: reason"), malloc'd or NULL */
};
void profile_check_free(struct profile_check *c);

/* Checks a profile (a top-level Configuration dict): required keys, every
 * known key's type, allowed values and ranges, nested dictionaries and
 * arrays. Unknown payload types and unknown keys are kept and flagged.
 * 0, or -1 with err = "PayloadContent[1].EAPClientConfiguration.AcceptEAPTypes[0]:
 * expected integer, got string". c is filled on success (profile_check_free). */
int profile_validate(plist_t root, struct profile_check *c, char *err, size_t errlen);

/* Builds a profile from a JSON spec (docs/profiles.md):
 * {"identifier", "display_name", "organization", "description",
 *  "removal_disallowed", "scope", "consent_text",
 *  "payloads": [{"PayloadType": "com.apple.wifi.managed", <Apple keys>...}]}
 * Fills PayloadUUID/PayloadIdentifier/PayloadVersion/PayloadDisplayName of
 * each payload when absent; data keys take base64 strings. The result is
 * validated. New plist, or NULL with err. */
plist_t profile_build(json_t *spec, char *err, size_t errlen);

/* Reads an uploaded profile: XML or binary plist, or a CMS SignedData around
 * one (as Apple Configurator and iMazing save them; the signature must
 * verify). *signer (may be NULL) receives the signer's subject, malloc'd,
 * when signed. New plist or NULL with err. Not validated: call
 * profile_validate. */
plist_t profile_import(const uint8_t *data, size_t len, char **signer, char *err, size_t errlen);

/* A copy of root without secret values (for display and download). */
plist_t profile_strip_secrets(plist_t root);

/* Replaces root's PayloadContent with EncryptedPayloadContent: a CMS
 * EnvelopedData (AES-256-CBC) of the serialized PayloadContent array,
 * addressed to the device's identity certificate. 0 or -1. */
int profile_encrypt(plist_t root, X509 *device);
/* Device side: the reverse (steward-devsim). 0 or -1 with *reason. */
int profile_decrypt(plist_t root, X509 *cert, EVP_PKEY *key, const char **reason);

/* The server's profile-signing identity: the TLS certificate (and chain) and
 * key, loaded from PEM files. */
struct profile_signer {
    X509 *cert;
    EVP_PKEY *key;
    STACK_OF(X509) *chain;
};
struct profile_signer *profile_signer_load(const char *cert_path, const char *key_path,
                                           char **err);
void profile_signer_free(struct profile_signer *s);
/* root as XML, CMS-signed (content attached, SHA-256). 0 or -1. */
int profile_sign(const struct profile_signer *s, plist_t root, uint8_t **der, size_t *len);

#endif
