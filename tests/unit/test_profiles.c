/* test_profiles.c: unit tests for src/profiles/profile.c: the builder (Wi-Fi,
 * restrictions, passcode, every supported payload type), validation errors
 * with the key path, unknown payload types kept and flagged, import of XML,
 * binary and CMS-signed profiles, secret stripping, per-device encryption
 * that opens only for its device, and signing that openssl-style verify
 * accepts. Certificates come from pki_ca_create/pki_issue. */
#include "profiles/profile.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pki/cms.h"
#include "pki/pki.h"
#include "plist/pl.h"
#include "profiles/payloads.h"

static struct {
    char dir[64];
    struct pki_ca *ca;
    X509 *dev_cert, *other_cert, *srv_cert;
    EVP_PKEY *dev_key, *other_key, *srv_key;
    struct profile_signer *signer;
} fx;

static int issue(const char *cn, X509 **cert, EVP_PKEY **key)
{
    struct pki_issue_opts o = {.kind = PKI_CERT_CLIENT, .key_type = PKI_KEY_RSA2048,
                               .common_name = cn};
    char *err = NULL;
    int rc = pki_issue(fx.ca, &o, cert, key, &err);
    free(err);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/test_profiles.XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    char cert[128], key[128], scert[128], skey[128];
    snprintf(cert, sizeof cert, "%s/ca.pem", fx.dir);
    snprintf(key, sizeof key, "%s/ca.key", fx.dir);
    snprintf(scert, sizeof scert, "%s/server.pem", fx.dir);
    snprintf(skey, sizeof skey, "%s/server.key", fx.dir);
    char *err = NULL;
    if (pki_ca_create(cert, key, "Profiles Test CA", &err) != 0 ||
        !(fx.ca = pki_ca_load(cert, key, &err)))
        return -1;
    if (issue("device", &fx.dev_cert, &fx.dev_key) || issue("other", &fx.other_cert, &fx.other_key) ||
        issue("server", &fx.srv_cert, &fx.srv_key))
        return -1;
    if (pki_write_cert_pem(scert, fx.srv_cert) || pki_write_key_pem(skey, fx.srv_key))
        return -1;
    fx.signer = profile_signer_load(scert, skey, &err);
    free(err);
    return fx.signer ? 0 : -1;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(fx.dev_cert);
    X509_free(fx.other_cert);
    X509_free(fx.srv_cert);
    EVP_PKEY_free(fx.dev_key);
    EVP_PKEY_free(fx.other_key);
    EVP_PKEY_free(fx.srv_key);
    profile_signer_free(fx.signer);
    pki_ca_free(fx.ca);
    nftw(fx.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static const char WIFI_SPEC[] =
    "{\"identifier\":\"com.example.wifi\",\"display_name\":\"Corp Wi-Fi\","
    "\"organization\":\"Example\",\"removal_disallowed\":true,"
    "\"payloads\":["
    "{\"PayloadType\":\"com.apple.wifi.managed\",\"SSID_STR\":\"corp\",\"AutoJoin\":true,"
    "\"EncryptionType\":\"WPA2\",\"Password\":\"hunter22\"},"
    "{\"PayloadType\":\"com.apple.applicationaccess\",\"allowCamera\":false,"
    "\"allowAccountModification\":false,\"ratingApps\":200}]}";

static plist_t build(const char *spec, char *err, size_t n)
{
    json_error_t je;
    json_t *j = json_loads(spec, 0, &je);
    assert_non_null(j);
    plist_t p = profile_build(j, err, n);
    json_decref(j);
    return p;
}

static void test_build_wifi_restrictions(void **state)
{
    (void)state;
    char err[PROFILE_ERR_MAX] = "";
    plist_t p = build(WIFI_SPEC, err, sizeof err);
    if (!p)
        fail_msg("%s", err);
    assert_string_equal(pl_str(p, "PayloadType"), "Configuration");
    assert_string_equal(pl_str(p, "PayloadIdentifier"), "com.example.wifi");
    assert_int_equal(pl_int(p, "PayloadVersion", 0), 1);
    assert_non_null(pl_str(p, "PayloadUUID"));
    assert_int_equal(pl_bool(p, "PayloadRemovalDisallowed", 0), 1);
    plist_t content = plist_dict_get_item(p, "PayloadContent");
    assert_int_equal(plist_array_get_size(content), 2);
    plist_t wifi = plist_array_get_item(content, 0);
    assert_string_equal(pl_str(wifi, "PayloadIdentifier"), "com.example.wifi.0");
    assert_string_equal(pl_str(wifi, "PayloadDisplayName"), "Wi-Fi");
    assert_non_null(pl_str(wifi, "PayloadUUID"));
    struct profile_check c;
    assert_int_equal(profile_validate(p, &c, err, sizeof err), 0);
    assert_true(c.has_secrets);
    assert_false(c.supervised_only);
    assert_string_equal(c.types, "com.apple.wifi.managed,com.apple.applicationaccess");
    assert_non_null(c.flags);
    assert_non_null(strstr(c.flags, "PayloadContent[1].allowAccountModification: applies to "
                                    "supervised devices only"));
    profile_check_free(&c);

    /* Stripping secrets leaves the rest. */
    plist_t shown = profile_strip_secrets(p);
    plist_t w2 = plist_array_get_item(plist_dict_get_item(shown, "PayloadContent"), 0);
    assert_null(plist_dict_get_item(w2, "Password"));
    assert_string_equal(pl_str(w2, "SSID_STR"), "corp");
    plist_free(shown);
    plist_free(p);
}

static void expect_error(const char *spec, const char *want)
{
    char err[PROFILE_ERR_MAX] = "";
    plist_t p = build(spec, err, sizeof err);
    if (p || !strstr(err, want)) {
        plist_free(p);
        fail_msg("spec %s: wanted \"%s\", got \"%s\"", spec, want, err);
    }
}

static void test_build_errors_name_the_key(void **state)
{
    (void)state;
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.wifi.managed\","
                 "\"AutoJoin\":\"yes\"}]}",
                 "PayloadContent[0].AutoJoin: expected boolean, got string");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.wifi.managed\","
                 "\"EncryptionType\":\"ROT13\"}]}",
                 "PayloadContent[0].EncryptionType: value \"ROT13\" not allowed");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.wifi.managed\","
                 "\"EAPClientConfiguration\":{\"AcceptEAPTypes\":[\"TLS\"]}}]}",
                 "PayloadContent[0].EAPClientConfiguration.AcceptEAPTypes[0]: expected integer, "
                 "got string");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.wifi.managed\","
                 "\"EAPClientConfiguration\":{\"UserName\":\"u\"}}]}",
                 "PayloadContent[0].EAPClientConfiguration.AcceptEAPTypes: required key missing");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.mobiledevice."
                 "passwordpolicy\",\"minLength\":99}]}",
                 "PayloadContent[0].minLength: 99 out of range");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.webClip.managed\","
                 "\"URL\":\"https://x\"}]}",
                 "PayloadContent[0].Label: required key missing");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.example.nope\"}]}",
                 "payloads[0].PayloadType: unknown payload type");
    expect_error("{\"payloads\":[]}", "identifier");
    expect_error("{\"identifier\":\"x\",\"payloads\":[]}", "payloads");
    expect_error("{\"identifier\":\"x\",\"payloads\":[{\"PayloadType\":\"com.apple.security.root\","
                 "\"PayloadContent\":\"%%%\"}]}",
                 "payloads[0].PayloadContent: expected base64 data");
}

/* One spec per payload type the builder supports, with its required keys. */
static void test_build_every_type(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "{\"PayloadType\":\"com.apple.eas.account\",\"Host\":\"mail.example.com\",\"EmailAddress\":\"a@example.com\",\"SSL\":true}",
        "{\"PayloadType\":\"com.apple.mail.managed\",\"EmailAccountType\":\"EmailTypeIMAP\",\"IncomingMailServerAuthentication\":\"EmailAuthPassword\",\"IncomingMailServerHostName\":\"imap.example.com\",\"OutgoingMailServerAuthentication\":\"EmailAuthPassword\",\"OutgoingMailServerHostName\":\"smtp.example.com\"}",
        "{\"PayloadType\":\"com.apple.wifi.managed\",\"SSID_STR\":\"ent\",\"EncryptionType\":\"WPA3\",\"EAPClientConfiguration\":{\"AcceptEAPTypes\":[13,25],\"UserName\":\"u\"}}",
        "{\"PayloadType\":\"com.apple.vpn.managed\",\"VPNType\":\"IKEv2\",\"UserDefinedName\":\"VPN\",\"IKEv2\":{\"RemoteAddress\":\"vpn.example.com\",\"LocalIdentifier\":\"me\",\"RemoteIdentifier\":\"vpn\",\"AuthenticationMethod\":\"Certificate\"}}",
        "{\"PayloadType\":\"com.apple.ldap.account\",\"LDAPAccountHostName\":\"ldap.example.com\"}",
        "{\"PayloadType\":\"com.apple.carddav.account\",\"CardDAVHostName\":\"dav.example.com\"}",
        "{\"PayloadType\":\"com.apple.caldav.account\",\"CalDAVHostName\":\"dav.example.com\"}",
        "{\"PayloadType\":\"com.apple.subscribedcalendar.account\",\"SubCalAccountHostName\":\"https://cal.example.com/a.ics\"}",
        "{\"PayloadType\":\"com.apple.mobiledevice.passwordpolicy\",\"forcePIN\":true,\"allowSimple\":false,\"requireAlphanumeric\":true,\"minLength\":8,\"minComplexChars\":1,\"maxPINAgeInDays\":90,\"maxInactivity\":5,\"pinHistory\":5,\"maxGracePeriod\":1,\"maxFailedAttempts\":10}",
        "{\"PayloadType\":\"com.apple.applicationaccess\",\"allowCamera\":false,\"allowCloudBackup\":false,\"ratingRegion\":\"us\"}",
        "{\"PayloadType\":\"com.apple.security.root\",\"PayloadContent\":\"MIIB\"}",
        "{\"PayloadType\":\"com.apple.security.pkcs1\",\"PayloadContent\":\"MIIB\"}",
        "{\"PayloadType\":\"com.apple.security.pkcs12\",\"PayloadContent\":\"MIIB\",\"Password\":\"p\"}",
        "{\"PayloadType\":\"com.apple.security.pem\",\"PayloadContent\":\"LS0t\"}",
        "{\"PayloadType\":\"com.apple.webClip.managed\",\"URL\":\"https://intranet.example.com\",\"Label\":\"Intranet\"}",
        "{\"PayloadType\":\"com.apple.security.scep\",\"PayloadContent\":{\"URL\":\"https://scep.example.com/scep\",\"Challenge\":\"c\",\"Keysize\":2048}}",
        "{\"PayloadType\":\"com.apple.apn.managed\",\"DefaultsDomainName\":\"com.apple.managedCarrier\",\"DefaultsData\":{\"apns\":[{\"apn\":\"internet\"}]}}",
        "{\"PayloadType\":\"com.apple.cellular\",\"APNs\":[{\"Name\":\"internet\",\"AuthenticationType\":\"PAP\"}]}",
        "{\"PayloadType\":\"com.apple.proxy.http.global\",\"ProxyType\":\"Manual\",\"ProxyServer\":\"proxy.example.com\",\"ProxyServerPort\":8080}",
        "{\"PayloadType\":\"com.apple.app.lock\",\"App\":{\"Identifier\":\"com.example.kiosk\"}}",
    };
    size_t n = sizeof specs / sizeof specs[0];
    assert_int_equal(n, 20);
    for (size_t i = 0; i < n; i++) {
        char spec[2048], err[PROFILE_ERR_MAX] = "";
        snprintf(spec, sizeof spec, "{\"identifier\":\"com.example.t%zu\",\"payloads\":[%s]}", i,
                 specs[i]);
        plist_t p = build(spec, err, sizeof err);
        if (!p)
            fail_msg("%s: %s", specs[i], err);
        struct profile_check c;
        assert_int_equal(profile_validate(p, &c, err, sizeof err), 0);
        int sup = strstr(specs[i], "app.lock") || strstr(specs[i], "proxy.http.global");
        assert_int_equal(c.supervised_only, sup);
        /* Signed, it verifies and holds the same plist. */
        uint8_t *der = NULL;
        size_t der_len = 0;
        assert_int_equal(profile_sign(fx.signer, p, &der, &der_len), 0);
        uint8_t *content = NULL;
        size_t clen = 0;
        X509 *signer = NULL;
        const char *why = NULL;
        assert_int_equal(cms_verify(der, der_len, NULL, 0, &content, &clen, &signer, NULL, &why), 0);
        assert_int_equal(X509_cmp(signer, fx.srv_cert), 0);
        plist_t back = pl_parse_dict(content, clen, &why);
        assert_non_null(back);
        assert_string_equal(pl_str(back, "PayloadIdentifier"), pl_str(p, "PayloadIdentifier"));
        plist_free(back);
        X509_free(signer);
        free(content);
        free(der);
        profile_check_free(&c);
        plist_free(p);
    }
}

static plist_t wifi_profile(void)
{
    char err[PROFILE_ERR_MAX];
    plist_t p = build(WIFI_SPEC, err, sizeof err);
    assert_non_null(p);
    return p;
}

static void test_import_formats(void **state)
{
    (void)state;
    plist_t p = wifi_profile();
    char err[PROFILE_ERR_MAX] = "";
    char *signer = NULL;
    /* XML */
    char *xml = NULL;
    size_t xml_len = 0;
    assert_int_equal(pl_to_xml(p, &xml, &xml_len), 0);
    plist_t a = profile_import((const uint8_t *)xml, xml_len, &signer, err, sizeof err);
    assert_non_null(a);
    assert_null(signer);
    assert_string_equal(pl_str(a, "PayloadUUID"), pl_str(p, "PayloadUUID"));
    plist_free(a);
    /* binary */
    char *bin = NULL;
    uint32_t bin_len = 0;
    plist_to_bin(p, &bin, &bin_len);
    assert_memory_equal(bin, "bplist00", 8);
    a = profile_import((const uint8_t *)bin, bin_len, &signer, err, sizeof err);
    assert_non_null(a);
    assert_string_equal(pl_str(a, "PayloadIdentifier"), "com.example.wifi");
    plist_free(a);
    free(bin);
    /* CMS-signed */
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(profile_sign(fx.signer, p, &der, &der_len), 0);
    a = profile_import(der, der_len, &signer, err, sizeof err);
    assert_non_null(a);
    assert_non_null(signer);
    assert_non_null(strstr(signer, "CN=server"));
    free(signer);
    plist_free(a);
    /* tampered signature */
    der[der_len / 2] ^= 0x5a;
    a = profile_import(der, der_len, &signer, err, sizeof err);
    assert_null(a);
    assert_non_null(strstr(err, "(signature)"));
    free(der);
    /* garbage */
    a = profile_import((const uint8_t *)"hello", 5, &signer, err, sizeof err);
    assert_null(a);
    assert_non_null(strstr(err, "not a profile"));
    free(xml);
    plist_free(p);
}

static void test_validate_import_kept_and_refused(void **state)
{
    (void)state;
    plist_t p = wifi_profile();
    plist_t content = plist_dict_get_item(p, "PayloadContent");
    plist_t odd = plist_new_dict();
    plist_dict_set_item(odd, "PayloadType", plist_new_string("com.example.custom"));
    plist_dict_set_item(odd, "PayloadIdentifier", plist_new_string("com.example.custom.1"));
    plist_dict_set_item(odd, "PayloadUUID", plist_new_string("11111111-2222-3333-4444-555555555555"));
    plist_dict_set_item(odd, "PayloadVersion", plist_new_uint(1));
    plist_dict_set_item(odd, "Whatever", plist_new_string("x"));
    plist_array_append_item(content, odd);
    struct profile_check c;
    char err[PROFILE_ERR_MAX] = "";
    assert_int_equal(profile_validate(p, &c, err, sizeof err), 0);
    assert_int_equal(c.unknown_types, 1);
    assert_non_null(strstr(c.flags, "PayloadContent[2]: unknown payload type com.example.custom"));
    profile_check_free(&c);
    /* A wrong type inside a known payload is refused with its path. */
    plist_t wifi = plist_array_get_item(content, 0);
    plist_dict_set_item(wifi, "HIDDEN_NETWORK", plist_new_string("no"));
    assert_int_equal(profile_validate(p, &c, err, sizeof err), -1);
    assert_string_equal(err, "PayloadContent[0].HIDDEN_NETWORK: expected boolean, got string");
    plist_dict_set_item(p, "PayloadType", plist_new_string("Other"));
    assert_int_equal(profile_validate(p, &c, err, sizeof err), -1);
    assert_string_equal(err, "PayloadType: must be \"Configuration\"");
    plist_free(p);
}

static void test_encrypt_for_device(void **state)
{
    (void)state;
    plist_t p = wifi_profile();
    plist_t orig = plist_copy(plist_dict_get_item(p, "PayloadContent"));
    assert_int_equal(profile_encrypt(p, fx.dev_cert), 0);
    assert_null(plist_dict_get_item(p, "PayloadContent"));
    size_t len = 0;
    assert_non_null(pl_data(p, "EncryptedPayloadContent", &len));
    /* the password is not readable in what is sent */
    char *xml = NULL;
    size_t xml_len = 0;
    assert_int_equal(pl_to_xml(p, &xml, &xml_len), 0);
    assert_null(strstr(xml, "hunter22"));
    free(xml);
    /* another device cannot open it */
    plist_t copy = plist_copy(p);
    const char *why = NULL;
    assert_int_equal(profile_decrypt(copy, fx.other_cert, fx.other_key, &why), -1);
    plist_free(copy);
    /* its device can */
    assert_int_equal(profile_decrypt(p, fx.dev_cert, fx.dev_key, &why), 0);
    char *x1 = NULL, *x2 = NULL;
    size_t l1 = 0, l2 = 0;
    assert_int_equal(pl_to_xml(plist_dict_get_item(p, "PayloadContent"), &x1, &l1), 0);
    assert_int_equal(pl_to_xml(orig, &x2, &l2), 0);
    assert_string_equal(x1, x2);
    assert_non_null(strstr(x1, "hunter22"));
    free(x1);
    free(x2);
    plist_free(orig);
    plist_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_wifi_restrictions),
        cmocka_unit_test(test_build_errors_name_the_key),
        cmocka_unit_test(test_build_every_type),
        cmocka_unit_test(test_import_formats),
        cmocka_unit_test(test_validate_import_kept_and_refused),
        cmocka_unit_test(test_encrypt_for_device),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
