/* profile.c: builds the enrollment profiles (profile.h) as libplist trees:
 * payload dictionaries with Apple's common keys, the SCEP subject as an
 * array of RDN arrays, the trust root as DER <data>; then encrypts
 * (EncryptedPayloadContent) and signs them with pki/cms. */
#include "enroll/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/cms.h"
#include "plist/pl.h"
#include "util/ids.h"

static void set_str(plist_t d, const char *k, const char *v)
{
    plist_dict_set_item(d, k, plist_new_string(v ? v : ""));
}

static void set_int(plist_t d, const char *k, uint64_t v)
{
    plist_dict_set_item(d, k, plist_new_uint(v));
}

static void set_bool(plist_t d, const char *k, int v)
{
    plist_dict_set_item(d, k, plist_new_bool(v ? 1 : 0));
}

/* A payload dictionary with the common keys; uuid_out (may be NULL)
 * receives its PayloadUUID. */
static plist_t payload_new(const struct enroll_settings *st, const char *type, const char *suffix,
                           const char *display, const char *description, char *uuid_out)
{
    char uuid[UUID_STR_LEN], ident[600];
    if (ids_uuid(uuid) != 0)
        return NULL;
    plist_t d = plist_new_dict();
    if (!d)
        return NULL;
    snprintf(ident, sizeof ident, "%s.%s", st->identifier, suffix);
    set_str(d, "PayloadType", type);
    set_int(d, "PayloadVersion", 1);
    set_str(d, "PayloadIdentifier", ident);
    set_str(d, "PayloadUUID", uuid);
    set_str(d, "PayloadDisplayName", display);
    set_str(d, "PayloadDescription", description);
    set_str(d, "PayloadOrganization", st->organization);
    if (uuid_out)
        memcpy(uuid_out, uuid, UUID_STR_LEN);
    return d;
}

static plist_t root_payload(const struct enroll_settings *st)
{
    unsigned char *der = NULL;
    int len = i2d_X509(st->trust_root, &der);
    if (len <= 0)
        return NULL;
    plist_t d = payload_new(st, "com.apple.security.root", "ca", "Steward CA",
                            "Trusts the certificate authority of this MDM server.", NULL);
    if (d) {
        set_str(d, "PayloadCertificateFileName", "steward-ca.cer");
        plist_dict_set_item(d, "PayloadContent", plist_new_data((const char *)der, (uint64_t)len));
    }
    OPENSSL_free(der);
    return d;
}

/* [[["CN", cn]], [["O", org]], [["OU", ou]]] */
static plist_t rdn(const char *oid, const char *value)
{
    plist_t pair = plist_new_array(), set = plist_new_array();
    plist_array_append_item(pair, plist_new_string(oid));
    plist_array_append_item(pair, plist_new_string(value));
    plist_array_append_item(set, pair);
    return set;
}

static plist_t scep_payload(const struct enroll_settings *st, const struct enroll_identity *id,
                            char uuid[UUID_STR_LEN])
{
    plist_t d = payload_new(st, "com.apple.security.scep", "scep", "Device identity",
                            "Requests this device's identity certificate over SCEP.", uuid);
    if (!d)
        return NULL;
    plist_t c = plist_new_dict(), subject = plist_new_array();
    set_str(c, "URL", st->scep_url);
    if (st->scep_name && *st->scep_name)
        set_str(c, "Name", st->scep_name);
    plist_array_append_item(subject, rdn("CN", id->cn));
    if (st->organization && *st->organization)
        plist_array_append_item(subject, rdn("O", st->organization));
    if (id->ou && *id->ou)
        plist_array_append_item(subject, rdn("OU", id->ou));
    plist_dict_set_item(c, "Subject", subject);
    if (id->challenge)
        set_str(c, "Challenge", id->challenge);
    set_int(c, "Keysize", 2048);
    set_str(c, "Key Type", "RSA");
    set_int(c, "Key Usage", 5);
    plist_dict_set_item(d, "PayloadContent", c);
    return d;
}

static plist_t mdm_payload(const struct enroll_settings *st, const char *identity_uuid)
{
    char desc[300], url[1200];
    snprintf(desc, sizeof desc, "%s%s", "Lets this organisation manage the device.",
             st->topic_configured ? " Topic from configuration (enroll_topic): no push "
                                    "certificate is installed yet."
                                  : "");
    plist_t d = payload_new(st, "com.apple.mdm", "mdm", "Device management", desc, NULL);
    if (!d)
        return NULL;
    set_str(d, "IdentityCertificateUUID", identity_uuid);
    set_str(d, "Topic", st->topic);
    snprintf(url, sizeof url, "%s/mdm/connect", st->base_url);
    set_str(d, "ServerURL", url);
    snprintf(url, sizeof url, "%s/mdm/checkin", st->base_url);
    set_str(d, "CheckInURL", url);
    set_bool(d, "SignMessage", st->sign_message);
    set_bool(d, "CheckOutWhenRemoved", st->checkout_when_removed);
    set_int(d, "AccessRights", (uint64_t)st->access_rights);
    plist_t caps = plist_new_array();
    plist_array_append_item(caps, plist_new_string("com.apple.mdm.per-user-connections"));
    plist_array_append_item(caps, plist_new_string("com.apple.mdm.bootstraptoken"));
    plist_dict_set_item(d, "ServerCapabilities", caps);
    return d;
}

static plist_t payloads(const struct enroll_settings *st, const struct enroll_identity *id,
                        int with_mdm)
{
    char uuid[UUID_STR_LEN];
    plist_t arr = plist_new_array();
    if (!arr)
        return NULL;
    if (st->trust_root) {
        plist_t r = root_payload(st);
        if (!r)
            goto fail;
        plist_array_append_item(arr, r);
    }
    plist_t s = scep_payload(st, id, uuid);
    if (!s)
        goto fail;
    plist_array_append_item(arr, s);
    if (with_mdm) {
        plist_t m = mdm_payload(st, uuid);
        if (!m)
            goto fail;
        plist_array_append_item(arr, m);
    }
    return arr;
fail:
    plist_free(arr);
    return NULL;
}

plist_t enroll_payloads_mdm(const struct enroll_settings *st, const struct enroll_identity *id)
{
    return payloads(st, id, 1);
}

plist_t enroll_payloads_scep(const struct enroll_settings *st, const struct enroll_identity *id)
{
    return payloads(st, id, 0);
}

plist_t enroll_profile_wrap(const struct enroll_settings *st, const char *suffix,
                            const char *display_name, const char *description, plist_t content)
{
    plist_t p = payload_new(st, "Configuration", suffix, display_name, description, NULL);
    if (!p) {
        plist_free(content);
        return NULL;
    }
    set_str(p, "PayloadScope", "System");
    set_bool(p, "PayloadRemovalDisallowed", 0);
    plist_dict_set_item(p, "PayloadContent", content);
    return p;
}

plist_t enroll_profile_service(const struct enroll_settings *st, const char *url,
                               const char *challenge)
{
    static const char *const attrs[] = {"UDID",    "IMEI",   "ICCID",           "VERSION",
                                        "PRODUCT", "SERIAL", "MAC_ADDRESS_EN0", "DEVICE_NAME"};
    plist_t p = payload_new(st, "Profile Service", "profile-service", "Device enrollment",
                            "Enrolls this device in device management.", NULL);
    if (!p)
        return NULL;
    plist_t c = plist_new_dict(), a = plist_new_array();
    set_str(c, "URL", url);
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        plist_array_append_item(a, plist_new_string(attrs[i]));
    plist_dict_set_item(c, "DeviceAttributes", a);
    set_str(c, "Challenge", challenge);
    plist_dict_set_item(p, "PayloadContent", c);
    return p;
}

int enroll_profile_encrypt(plist_t profile, X509 *recipient)
{
    plist_t content = plist_dict_get_item(profile, "PayloadContent");
    if (!content || plist_get_node_type(content) != PLIST_ARRAY)
        return -1;
    char *xml = NULL;
    size_t xml_len = 0;
    if (pl_to_xml(content, &xml, &xml_len) != 0)
        return -1;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc = cms_encrypt(recipient, EVP_aes_256_cbc(), (const uint8_t *)xml, xml_len, &der,
                         &der_len);
    free(xml);
    if (rc != 0)
        return -1;
    plist_dict_remove_item(profile, "PayloadContent");
    plist_dict_set_item(profile, "EncryptedPayloadContent",
                        plist_new_data((const char *)der, (uint64_t)der_len));
    free(der);
    return 0;
}

int enroll_profile_sign(plist_t profile, X509 *signer, EVP_PKEY *key, STACK_OF(X509) *chain,
                        uint8_t **der, size_t *der_len)
{
    char *xml = NULL;
    size_t xml_len = 0;
    if (pl_to_xml(profile, &xml, &xml_len) != 0)
        return -1;
    int rc = cms_sign(signer, key, chain, EVP_sha256(), (const uint8_t *)xml, xml_len, 0, der,
                      der_len);
    free(xml);
    return rc;
}
