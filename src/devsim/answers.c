/* answers.c: what a simulated iPhone says. Builds check-in messages and the
 * report for each server command (DeviceInformation, SecurityInfo,
 * ProfileList, CertificateList, InstalledApplicationList, Settings, …), with
 * the NotNow/Error switches applied. Pure plist work, no I/O: flow.c sends
 * the results, tests/unit/test_devsim_answers.c includes this file. */
#include "devsim/answers.h"

#include <openssl/cms.h>
#include "pki/cms.h"
#include "profiles/profile.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MDM_ERROR_DOMAIN "MCMDMErrorDomain"
#define ERR_UNKNOWN_COMMAND 12021
#define ERR_SIMULATED_DEFAULT 12078
#define ERR_SETTING_FORMAT 12001
/* Illustrative codes of the simulator (Apple does not document them). */
#define ERR_NEEDS_SUPERVISION 12086
#define ERR_BAD_UNLOCK_TOKEN 12025
#define ERR_APP_STORE_DISABLED 12065

/* ---- small plist helpers ---- */

static void set_str(plist_t d, const char *key, const char *v)
{
    plist_dict_set_item(d, key, plist_new_string(v));
}

/* Keys whose value the device lacks are left out, as iOS does. */
static void set_str_known(plist_t d, const char *key, const char *v)
{
    if (v && *v)
        set_str(d, key, v);
}

static void set_bool(plist_t d, const char *key, int v)
{
    plist_dict_set_item(d, key, plist_new_bool(v ? 1 : 0));
}

static void set_uint(plist_t d, const char *key, uint64_t v)
{
    plist_dict_set_item(d, key, plist_new_uint(v));
}

static void set_data(plist_t d, const char *key, const uint8_t *p, size_t len)
{
    plist_dict_set_item(d, key, plist_new_data((const char *)p, len));
}

static const char *get_str(plist_t d, const char *key)
{
    plist_t n = d ? plist_dict_get_item(d, key) : NULL;
    if (!n || plist_get_node_type(n) != PLIST_STRING)
        return NULL;
    return plist_get_string_ptr(n, NULL);
}

static plist_t get_typed(plist_t d, const char *key, plist_type t)
{
    plist_t n = d ? plist_dict_get_item(d, key) : NULL;
    return n && plist_get_node_type(n) == t ? n : NULL;
}

static int pl_bool_of(plist_t d, const char *key)
{
    plist_t n = get_typed(d, key, PLIST_BOOLEAN);
    uint8_t b = 0;
    if (n)
        plist_get_bool_val(n, &b);
    return b ? 1 : 0;
}

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* Every report starts with UDID, Status and (unless Idle) CommandUUID. */
static plist_t report_base(const struct devsim_facts *f, const char *uuid, const char *status)
{
    plist_t d = plist_new_dict();
    if (!d)
        return NULL;
    set_str(d, "UDID", f->udid);
    set_str(d, "Status", status);
    if (uuid && *uuid)
        set_str(d, "CommandUUID", uuid);
    return d;
}

/* ---- check-in and Idle messages ---- */

static plist_t checkin_base(const struct devsim_facts *f, const char *type)
{
    plist_t d = plist_new_dict();
    if (!d)
        return NULL;
    set_str(d, "MessageType", type);
    set_str(d, "Topic", f->topic);
    set_str(d, "UDID", f->udid);
    return d;
}

plist_t devsim_msg_authenticate(const struct devsim_facts *f)
{
    plist_t d = checkin_base(f, "Authenticate");
    if (!d)
        return NULL;
    /* iOS 9+ leaves out DeviceName, Model and ModelName here. */
    set_str(d, "OSVersion", f->os_version);
    set_str(d, "BuildVersion", f->build_version);
    set_str(d, "ProductName", f->product_name);
    set_str(d, "SerialNumber", f->serial);
    set_str_known(d, "IMEI", f->imei);
    set_str_known(d, "MEID", f->meid);
    return d;
}

plist_t devsim_msg_token_update(const struct devsim_facts *f)
{
    plist_t d = checkin_base(f, "TokenUpdate");
    if (!d)
        return NULL;
    set_data(d, "Token", f->token, sizeof f->token);
    set_str(d, "PushMagic", f->push_magic);
    if (f->unlock_len)
        set_data(d, "UnlockToken", f->unlock_token, f->unlock_len);
    set_bool(d, "AwaitingConfiguration", 0);
    return d;
}

plist_t devsim_msg_checkout(const struct devsim_facts *f)
{
    return checkin_base(f, "CheckOut");
}

plist_t devsim_msg_idle(const struct devsim_facts *f)
{
    return report_base(f, NULL, "Idle");
}

/* ---- error-shaped replies ---- */

static plist_t error_chain(int64_t code, const char *domain, const char *description)
{
    plist_t e = plist_new_dict();
    plist_t chain = plist_new_array();
    set_uint(e, "ErrorCode", (uint64_t)code);
    set_str(e, "ErrorDomain", domain);
    set_str(e, "LocalizedDescription", description);
    set_str(e, "USEnglishDescription", description);
    plist_array_append_item(chain, e);
    return chain;
}

plist_t devsim_reply_notnow(const struct devsim_facts *f, const char *uuid)
{
    return report_base(f, uuid, "NotNow");
}

plist_t devsim_reply_error(const struct devsim_facts *f, const char *uuid, int64_t code,
                           const char *domain, const char *description)
{
    plist_t d = report_base(f, uuid, "Error");
    if (!d)
        return NULL;
    plist_dict_set_item(d, "ErrorChain", error_chain(code, domain, description));
    return d;
}

plist_t devsim_reply_format_error(const struct devsim_facts *f, const char *uuid)
{
    return report_base(f, uuid, "CommandFormatError");
}

/* ---- DeviceInformation ---- */

enum q_kind { Q_STR, Q_REAL, Q_BOOL, Q_FALSE, Q_UINT_CELL_TECH, Q_SUBSCRIPTIONS };

struct query_key {
    const char *name;
    enum q_kind kind;
    size_t off; /* into struct devsim_facts, for Q_STR/Q_REAL/Q_BOOL */
};

#define F(field) offsetof(struct devsim_facts, field)

/* The DeviceInformation queries this iPhone can answer; anything else is
 * left out of QueryResponses (not an error, per Apple). */
static const struct query_key query_keys[] = {
    {"UDID", Q_STR, F(udid)},
    {"DeviceName", Q_STR, F(device_name)},
    {"OSVersion", Q_STR, F(os_version)},
    {"BuildVersion", Q_STR, F(build_version)},
    {"SupplementalBuildVersion", Q_STR, F(build_version)},
    {"ModelName", Q_STR, F(model_name)},
    {"Model", Q_STR, F(model)},
    {"ModelNumber", Q_STR, F(model_number)},
    {"ProductName", Q_STR, F(product_name)},
    {"SerialNumber", Q_STR, F(serial)},
    {"DeviceCapacity", Q_REAL, F(capacity_gb)},
    {"AvailableDeviceCapacity", Q_REAL, F(available_gb)},
    {"BatteryLevel", Q_REAL, F(battery)},
    {"IMEI", Q_STR, F(imei)},
    {"MEID", Q_STR, F(meid)},
    {"ModemFirmwareVersion", Q_STR, F(modem_fw)},
    {"CellularTechnology", Q_UINT_CELL_TECH, 0},
    {"IsSupervised", Q_BOOL, F(supervised)},
    {"IsDeviceLocatorServiceEnabled", Q_BOOL, F(locator)},
    {"IsActivationLockEnabled", Q_BOOL, F(activation_lock)},
    {"IsCloudBackupEnabled", Q_BOOL, F(cloud_backup)},
    {"iTunesStoreAccountIsActive", Q_BOOL, F(itunes_active)},
    {"IsMultiUser", Q_FALSE, 0},
    {"IsDoNotDisturbInEffect", Q_FALSE, 0},
    {"IsMDMLostModeEnabled", Q_FALSE, 0},
    {"AwaitingConfiguration", Q_FALSE, 0},
    {"TimeZone", Q_STR, F(time_zone)},
    {"WiFiMAC", Q_STR, F(wifi_mac)},
    {"BluetoothMAC", Q_STR, F(bt_mac)},
    {"ICCID", Q_STR, F(iccid)},
    {"CurrentCarrierNetwork", Q_STR, F(carrier)},
    {"SubscriberCarrierNetwork", Q_STR, F(carrier)},
    {"SIMCarrierNetwork", Q_STR, F(carrier)},
    {"PhoneNumber", Q_STR, F(phone_number)},
    {"CurrentMCC", Q_STR, F(mcc)},
    {"CurrentMNC", Q_STR, F(mnc)},
    {"SubscriberMCC", Q_STR, F(mcc)},
    {"SubscriberMNC", Q_STR, F(mnc)},
    {"SIMMCC", Q_STR, F(mcc)},
    {"SIMMNC", Q_STR, F(mnc)},
    {"DataRoamingEnabled", Q_BOOL, F(data_roaming)},
    {"VoiceRoamingEnabled", Q_BOOL, F(voice_roaming)},
    {"IsRoaming", Q_FALSE, 0},
    {"PersonalHotspotEnabled", Q_FALSE, 0},
    {"IsNetworkTethered", Q_FALSE, 0},
    {"ServiceSubscriptions", Q_SUBSCRIPTIONS, 0},
};

static int is_cellular(const struct devsim_facts *f)
{
    return f->imei[0] != '\0';
}

/* The eSIM line of a dual-SIM iPhone: its own ICCID and number, the same
 * IMEI slot pairing iOS reports, data on the primary line. */
static plist_t second_line(const struct devsim_facts *f)
{
    char iccid[32], phone[32], eid[40];
    snprintf(iccid, sizeof iccid, "8901410%.12s", f->iccid[0] ? f->iccid + 7 : "000000000000");
    snprintf(phone, sizeof phone, "+1415%.7s", f->phone_number[0] ? f->phone_number + 5 : "5550100");
    snprintf(eid, sizeof eid, "89049032004008882600%.12s",
             f->iccid[0] ? f->iccid + 7 : "000000000000");
    plist_t s = plist_new_dict();
    set_str(s, "Slot", "CTSubscriptionSlotTwo");
    set_str(s, "Label", "Secondary");
    set_str(s, "LabelID", "2F1B8E6C-4C8A-4E4E-9E73-8E1D5E0A7B21");
    set_str(s, "ICCID", iccid);
    set_str(s, "EID", eid);
    set_str(s, "PhoneNumber", phone);
    set_str(s, "CurrentCarrierNetwork", "T-Mobile");
    set_str(s, "SubscriberCarrierNetwork", "T-Mobile");
    set_str(s, "CarrierSettingsVersion", "62.0");
    set_str(s, "CurrentMCC", "310");
    set_str(s, "CurrentMNC", "260");
    set_bool(s, "IsDataPreferred", 0);
    set_bool(s, "IsVoicePreferred", 0);
    set_bool(s, "IsRoaming", 0);
    return s;
}

static plist_t service_subscriptions(const struct devsim_facts *f)
{
    plist_t arr = plist_new_array();
    plist_t s = plist_new_dict();
    set_str(s, "Slot", "CTSubscriptionSlotOne");
    set_str(s, "Label", "Primary");
    set_str_known(s, "IMEI", f->imei);
    set_str_known(s, "MEID", f->meid);
    set_str_known(s, "ICCID", f->iccid);
    set_str_known(s, "PhoneNumber", f->phone_number);
    set_str_known(s, "CurrentCarrierNetwork", f->carrier);
    set_str_known(s, "SubscriberCarrierNetwork", f->carrier);
    set_str_known(s, "CurrentMCC", f->mcc);
    set_str_known(s, "CurrentMNC", f->mnc);
    set_bool(s, "IsDataPreferred", 1);
    set_bool(s, "IsVoicePreferred", 1);
    set_bool(s, "IsRoaming", 0);
    plist_array_append_item(arr, s);
    if (f->dual_sim)
        plist_array_append_item(arr, second_line(f));
    return arr;
}

/* The value of one known query, or NULL when this device has none. */
static plist_t query_value(const struct devsim_facts *f, const struct query_key *k)
{
    const char *base = (const char *)f;
    switch (k->kind) {
    case Q_STR: {
        const char *s = base + k->off;
        return *s ? plist_new_string(s) : NULL;
    }
    case Q_REAL:
        return plist_new_real(*(const double *)(base + k->off));
    case Q_BOOL:
        return plist_new_bool(*(const int *)(base + k->off) ? 1 : 0);
    case Q_FALSE:
        return plist_new_bool(0);
    case Q_UINT_CELL_TECH: /* 3 = GSM and CDMA, as on a US iPhone with MEID */
        return plist_new_uint(!is_cellular(f) ? 0 : f->meid[0] ? 3 : 1);
    case Q_SUBSCRIPTIONS:
        return is_cellular(f) ? service_subscriptions(f) : NULL;
    }
    return NULL;
}

static const struct query_key *find_query(const char *name)
{
    for (size_t i = 0; i < sizeof query_keys / sizeof query_keys[0]; i++)
        if (strcmp(query_keys[i].name, name) == 0)
            return &query_keys[i];
    return NULL;
}

plist_t devsim_device_information(const struct devsim_facts *f, plist_t queries)
{
    /* No or empty Queries: a minimal (empty) dict, like the devices behind
     * micromdm's DeviceInformation_empty_queries fixture. */
    plist_t out = plist_new_dict();
    if (!out || !queries)
        return out;
    uint32_t n = plist_array_get_size(queries);
    for (uint32_t i = 0; i < n; i++) {
        plist_t q = plist_array_get_item(queries, i);
        if (plist_get_node_type(q) != PLIST_STRING)
            continue;
        const char *name = plist_get_string_ptr(q, NULL);
        const struct query_key *k = find_query(name);
        plist_t v = k ? query_value(f, k) : NULL;
        if (v)
            plist_dict_set_item(out, name, v);
    }
    return out;
}

/* ---- SecurityInfo ---- */

static plist_t security_info(const struct devsim_facts *f)
{
    plist_t s = plist_new_dict();
    set_uint(s, "HardwareEncryptionCaps", 3);
    set_bool(s, "PasscodePresent", f->passcode_present);
    set_bool(s, "PasscodeCompliant", 1);
    /* the enrollment profile's passcode policy asks for one */
    set_bool(s, "PasscodeCompliantWithProfiles", f->passcode_present);
    /* seconds; Apple documents it for Shared iPad, iOS 17 phones send it too */
    if (atoi(f->os_version) >= 17)
        set_uint(s, "AutoLockTime", (uint64_t)f->auto_lock_minutes * 60);
    return s;
}

/* ---- ProfileList, InstallProfile, RemoveProfile ---- */

static plist_t payload_summary(const char *type, const char *id, const char *uuid,
                               const char *name)
{
    plist_t p = plist_new_dict();
    set_str(p, "PayloadType", type);
    set_str(p, "PayloadIdentifier", id);
    set_str(p, "PayloadUUID", uuid);
    set_uint(p, "PayloadVersion", 1);
    set_str_known(p, "PayloadDisplayName", name);
    return p;
}

static plist_t profile_entry(const char *id, const char *uuid, const char *name,
                             const char *org, const char *desc, plist_t content)
{
    plist_t p = plist_new_dict();
    set_bool(p, "HasRemovalPasscode", 0);
    set_bool(p, "IsEncrypted", 0);
    set_bool(p, "IsManaged", 1);
    plist_dict_set_item(p, "PayloadContent", content);
    set_str_known(p, "PayloadDescription", desc);
    set_str_known(p, "PayloadDisplayName", name);
    set_str(p, "PayloadIdentifier", id);
    set_str_known(p, "PayloadOrganization", org);
    set_bool(p, "PayloadRemovalDisallowed", 0);
    set_str(p, "PayloadUUID", uuid);
    set_uint(p, "PayloadVersion", 1);
    plist_dict_set_item(p, "SignerCertificates", plist_new_array());
    return p;
}

static plist_t enrollment_profile(const struct devsim_facts *f)
{
    char sub_id[192];
    plist_t content = plist_new_array();
    snprintf(sub_id, sizeof sub_id, "%s.mdm", f->enroll_profile_id);
    plist_array_append_item(content, payload_summary("com.apple.mdm", sub_id,
                                                     f->enroll_mdm_uuid, "MDM"));
    snprintf(sub_id, sizeof sub_id, "%s.scep", f->enroll_profile_id);
    plist_array_append_item(content, payload_summary("com.apple.security.scep", sub_id,
                                                     f->enroll_scep_uuid, "SCEP"));
    return profile_entry(f->enroll_profile_id, f->enroll_profile_uuid, "MDM Enrollment",
                         f->organization, "The server may alter your settings", content);
}

static plist_t profile_list(const struct devsim_facts *f)
{
    plist_t arr = plist_new_array();
    plist_array_append_item(arr, enrollment_profile(f));
    if (f->managed_apps > 0) { /* the field-service fleet also has the Wi-Fi profile */
        plist_t content = plist_new_array();
        plist_array_append_item(content, payload_summary("com.apple.wifi.managed",
                                                         "com.example.wifi.corp",
                                                         "0E5B7C1D-9A2F-4B3E-8C6D-7F1A2B3C4D5E",
                                                         "Corporate Wi-Fi"));
        plist_array_append_item(arr, profile_entry("com.example.wifi",
                                                   "3C9D2E1F-5A6B-4C7D-8E9F-0A1B2C3D4E5F",
                                                   "Wi-Fi", f->organization, NULL, content));
    }
    uint32_t n = f->profiles ? plist_array_get_size(f->profiles) : 0;
    for (uint32_t i = 0; i < n; i++)
        plist_array_append_item(arr, plist_copy(plist_array_get_item(f->profiles, i)));
    return arr;
}

/* A signed profile is CMS SignedData with the plist as content; iOS accepts
 * both, and refuses a signature that does not verify. Returns the parsed
 * profile dict or NULL with *why. */
static plist_t parse_profile_payload(const uint8_t *p, size_t len, const char **why)
{
    plist_t root = NULL;
    *why = "The profile could not be read.";
    if (len >= 8 && memcmp(p, "bplist00", 8) == 0)
        plist_from_bin((const char *)p, (uint32_t)len, &root);
    else if (len > 0 && p[0] == '<')
        plist_from_xml((const char *)p, (uint32_t)len, &root);
    else if (len > 0 && p[0] == 0x30 && len < (1u << 30)) {
        uint8_t *content = NULL;
        size_t clen = 0;
        const char *reason = NULL;
        if (cms_verify(p, len, NULL, 0, &content, &clen, NULL, NULL, &reason) != 0) {
            *why = "The profile's signature is not valid.";
            return NULL;
        }
        root = content ? parse_profile_payload(content, clen, why) : NULL;
        free(content);
    }
    if (root && plist_get_node_type(root) != PLIST_DICT) {
        plist_free(root);
        root = NULL;
    }
    return root;
}

/* A profile encrypted to this device's identity: opened in place. 0, or -1
 * (not ours, or unreadable). */
static int open_encrypted(const struct devsim_facts *f, plist_t prof)
{
    if (!plist_dict_get_item(prof, "EncryptedPayloadContent"))
        return 0;
    const char *why = NULL;
    if (!f->identity_cert || !f->identity_key)
        return -1;
    return profile_decrypt(prof, f->identity_cert, f->identity_key, &why);
}

static plist_t summarise_profile(plist_t prof)
{
    plist_t content = plist_new_array();
    plist_t items = get_typed(prof, "PayloadContent", PLIST_ARRAY);
    uint32_t n = items ? plist_array_get_size(items) : 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t it = plist_array_get_item(items, i);
        const char *type = get_str(it, "PayloadType");
        const char *id = get_str(it, "PayloadIdentifier");
        const char *uuid = get_str(it, "PayloadUUID");
        if (type && id && uuid)
            plist_array_append_item(content, payload_summary(type, id, uuid,
                                                             get_str(it, "PayloadDisplayName")));
    }
    return profile_entry(get_str(prof, "PayloadIdentifier"), get_str(prof, "PayloadUUID"),
                         get_str(prof, "PayloadDisplayName"), get_str(prof, "PayloadOrganization"),
                         get_str(prof, "PayloadDescription"), content);
}

static int profile_index(plist_t profiles, const char *id)
{
    uint32_t n = profiles ? plist_array_get_size(profiles) : 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *pid = get_str(plist_array_get_item(profiles, i), "PayloadIdentifier");
        if (pid && strcmp(pid, id) == 0)
            return (int)i;
    }
    return -1;
}

static void remove_profile(struct devsim_facts *f, const char *id)
{
    int i = profile_index(f->profiles, id);
    if (i >= 0)
        plist_array_remove_item(f->profiles, (uint32_t)i);
}

/* Installing a profile with an identifier already present replaces it. */
static plist_t install_profile(struct devsim_facts *f, plist_t cmd, const char *uuid,
                               const char **status)
{
    plist_t payload = get_typed(cmd, "Payload", PLIST_DATA);
    if (!payload) {
        *status = "CommandFormatError";
        return devsim_reply_format_error(f, uuid);
    }
    uint64_t len = 0;
    const char *p = plist_get_data_ptr(payload, &len);
    const char *why = "The profile could not be read.";
    plist_t prof = p ? parse_profile_payload((const uint8_t *)p, (size_t)len, &why) : NULL;
    if (prof && open_encrypted(f, prof) != 0) {
        plist_free(prof);
        prof = NULL;
        why = "The profile is encrypted to another device.";
    }
    if (!prof || !get_str(prof, "PayloadIdentifier") || !get_str(prof, "PayloadUUID") ||
        !get_typed(prof, "PayloadContent", PLIST_ARRAY)) {
        plist_free(prof);
        *status = "Error";
        return devsim_reply_error(f, uuid, 1000, "MCProfileErrorDomain", why);
    }
    remove_profile(f, get_str(prof, "PayloadIdentifier"));
    if (!f->profiles)
        f->profiles = plist_new_array();
    plist_array_append_item(f->profiles, summarise_profile(prof));
    plist_free(prof);
    *status = "Acknowledged";
    return report_base(f, uuid, *status);
}

/* ---- CertificateList ---- */

static void add_cert(plist_t arr, const char *cn, int identity, const uint8_t *der, size_t len)
{
    plist_t c = plist_new_dict();
    set_str(c, "CommonName", cn);
    set_data(c, "Data", der, len);
    set_bool(c, "IsIdentity", identity);
    plist_array_append_item(arr, c);
}

static plist_t certificate_list(const struct devsim_facts *f)
{
    plist_t arr = plist_new_array();
    if (f->identity_der_len)
        add_cert(arr, f->identity_cn[0] ? f->identity_cn : f->udid, 1, f->identity_der,
                 f->identity_der_len);
    if (f->ca_der_len)
        add_cert(arr, f->ca_cn[0] ? f->ca_cn : "MDM CA", 0, f->ca_der, f->ca_der_len);
    return arr;
}

/* ---- InstalledApplicationList ---- */

struct app {
    const char *id, *name, *version, *short_version;
    uint64_t bundle, dynamic;
};

/* iOS does not list its own com.apple.* apps; these are App Store apps. */
static const struct app apps[] = {
    {"com.microsoft.Office.Outlook", "Outlook", "4.2447.0", "4.2447.0", 312459264, 98304000},
    {"com.tinyspeck.chatlyio", "Slack", "24.11.10", "24.11.10", 265289728, 187170816},
    {"us.zoom.videomeetings", "Zoom", "6.2.11.24512", "6.2.11", 198967296, 40960000},
    {"com.google.chrome.ios", "Chrome", "130.0.6723.90", "130.0.6723.90", 263258112, 52428800},
    {"com.1password.1password", "1Password", "81103002", "8.11.3", 117243904, 12582912},
};

static int wanted(plist_t list, const char *s)
{
    if (!list)
        return 1;
    uint32_t n = plist_array_get_size(list);
    for (uint32_t i = 0; i < n; i++) {
        plist_t it = plist_array_get_item(list, i);
        if (plist_get_node_type(it) == PLIST_STRING &&
            strcmp(plist_get_string_ptr(it, NULL), s) == 0)
            return 1;
    }
    return 0;
}

static void app_key_str(plist_t d, plist_t items, const char *k, const char *v)
{
    if (wanted(items, k))
        set_str(d, k, v);
}

static void app_key_uint(plist_t d, plist_t items, const char *k, uint64_t v)
{
    if (wanted(items, k))
        set_uint(d, k, v);
}

static void app_key_bool(plist_t d, plist_t items, const char *k, int v)
{
    if (wanted(items, k))
        set_bool(d, k, v);
}

static plist_t app_entry(const struct app *a, plist_t items)
{
    plist_t d = plist_new_dict();
    set_str(d, "Identifier", a->id); /* always present, whatever Items says */
    app_key_str(d, items, "Name", a->name);
    app_key_str(d, items, "Version", a->version);
    app_key_str(d, items, "ShortVersion", a->short_version);
    app_key_uint(d, items, "BundleSize", a->bundle);
    app_key_uint(d, items, "DynamicSize", a->dynamic);
    app_key_uint(d, items, "ExternalVersionIdentifier", 869000000 + a->bundle % 1000000);
    app_key_bool(d, items, "IsValidated", 1);
    app_key_bool(d, items, "Installing", 0);
    app_key_bool(d, items, "AppStoreVendable", 1);
    app_key_bool(d, items, "DeviceBasedVPP", 0);
    app_key_bool(d, items, "BetaApp", 0);
    app_key_bool(d, items, "AdHocCodeSigned", 0);
    app_key_bool(d, items, "HasUpdateAvailable", 0);
    app_key_bool(d, items, "IsAppClip", 0);
    app_key_str(d, items, "DistributorIdentifier", "com.apple.AppStore");
    return d;
}

static plist_t installed_apps(const struct devsim_facts *f, plist_t cmd)
{
    plist_t ids = get_typed(cmd, "Identifiers", PLIST_ARRAY);
    plist_t items = get_typed(cmd, "Items", PLIST_ARRAY);
    plist_t arr = plist_new_array();
    for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++)
        if ((!f->app_mask || (f->app_mask >> i) & 1) &&
            (!ids || plist_array_get_size(ids) == 0 || wanted(ids, apps[i].id)))
            plist_array_append_item(arr, app_entry(&apps[i], items));
    return arr;
}

/* ---- ManagedApplicationList ---- */

/* In-house apps the server installed: each moves one step per
 * ManagedApplicationList answer, as installs do over check-ins; the last
 * ends UserRejected on some devices (the user tapped Cancel). */
struct managed_app {
    const char *id;
    int start;               /* steps already taken at the first answer */
    const char *const *steps;
    size_t nsteps;
};

static const char *const install_ok[] = {"Queued", "Prompting", "Installing", "Managed"};
static const char *const install_rejected[] = {"Prompting", "UserRejected"};

static plist_t managed_entry(const char *status, uint64_t flags, int validated)
{
    plist_t e = plist_new_dict();
    set_str(e, "Status", status);
    set_uint(e, "ManagementFlags", flags);
    set_bool(e, "HasConfiguration", 0);
    set_bool(e, "HasFeedback", 0);
    set_bool(e, "IsValidated", validated);
    set_uint(e, "ExternalVersionIdentifier", 0);
    return e;
}

static plist_t managed_apps(struct devsim_facts *f, plist_t cmd)
{
    static const struct managed_app list[] = {
        {"com.example.fieldservice", 0, install_ok, 4},
        {"com.example.timesheet", 2, install_ok, 4},
        {"com.example.survey", 0, install_rejected, 2},
    };
    plist_t ids = get_typed(cmd, "Identifiers", PLIST_ARRAY);
    plist_t d = plist_new_dict();
    size_t count = (size_t)f->managed_apps < 3 ? (size_t)f->managed_apps : 3;
    int k = f->managed_list_answers++;
    for (size_t i = 0; i < count; i++) {
        const struct managed_app *a = &list[i];
        if (ids && plist_array_get_size(ids) > 0 && !wanted(ids, a->id))
            continue;
        size_t step = (size_t)(a->start + k);
        const char *status = a->steps[step < a->nsteps ? step : a->nsteps - 1];
        plist_dict_set_item(d, a->id,
                            managed_entry(status, 1, strcmp(status, "Managed") == 0));
    }
    return d;
}

/* ---- ProvisioningProfileList ---- */

#define APPLE_EPOCH 978307200 /* plist dates count from 2001-01-01 */

static plist_t provisioning_profiles(const struct devsim_facts *f)
{
    plist_t arr = plist_new_array();
    if (!f->provisioning_expiry)
        return arr;
    plist_t p = plist_new_dict();
    set_str(p, "Name", "Example Field Service Distribution");
    set_str(p, "UUID", "6A1C3E4F-2B7D-4E8A-9C0F-1D2E3F4A5B6C");
    plist_dict_set_item(p, "ExpiryDate",
                        plist_new_date((int32_t)(f->provisioning_expiry - APPLE_EPOCH), 0));
    plist_array_append_item(arr, p);
    return arr;
}

/* ---- Restrictions ---- */

static plist_t bool_value(int v)
{
    plist_t d = plist_new_dict();
    set_bool(d, "value", v);
    return d;
}

static plist_t int_value(uint64_t v)
{
    plist_t d = plist_new_dict();
    set_uint(d, "value", v);
    return d;
}

/* The effective restrictions: what the installed profiles add up to
 * (iOS answers every known key; these are the ones a profile touched). */
static plist_t restriction_set(const struct devsim_facts *f)
{
    plist_t r = plist_new_dict();
    plist_t b = plist_new_dict();
    plist_dict_set_item(b, "allowAppInstallation", bool_value(!f->app_store_disabled));
    plist_dict_set_item(b, "allowCamera", bool_value(1));
    plist_dict_set_item(b, "allowCloudBackup", bool_value(f->cloud_backup));
    plist_dict_set_item(b, "forcePIN", bool_value(f->passcode_present));
    plist_dict_set_item(r, "restrictedBool", b);
    plist_t v = plist_new_dict();
    plist_dict_set_item(v, "ratingApps", int_value(1000));
    plist_dict_set_item(v, "maxGracePeriod", int_value(f->supervised ? 5 : 15));
    plist_dict_set_item(r, "restrictedValue", v);
    plist_t in = plist_new_dict();
    plist_t vals = plist_new_dict();
    plist_t arr = plist_new_array();
    plist_array_append_item(arr, plist_new_string("com.apple.mobilesafari"));
    plist_dict_set_item(vals, "values", arr);
    plist_dict_set_item(in, "allowListedAppBundleIDs", vals);
    plist_dict_set_item(r, "intersection", in);
    plist_dict_set_item(r, "union", plist_new_dict());
    return r;
}

static plist_t restrictions(struct devsim_facts *f, plist_t cmd, const char *uuid,
                            const char **status)
{
    *status = "Acknowledged";
    plist_t d = report_base(f, uuid, *status);
    plist_dict_set_item(d, "GlobalRestrictions", restriction_set(f));
    if (cmd && pl_bool_of(cmd, "ProfileRestrictions")) {
        plist_t per = plist_new_dict();
        plist_dict_set_item(per, f->enroll_profile_id, restriction_set(f));
        plist_dict_set_item(d, "ProfileRestrictions", per);
    }
    return d;
}

/* ---- variety ---- */

struct ios_release {
    const char *version, *build;
};

/* Oldest first; a model never runs a release older than it shipped with. */
static const struct ios_release releases[] = {
    {"16.7.10", "20H350"}, {"17.5.1", "21F90"}, {"17.6.1", "21G93"},
    {"18.1", "22B83"},     {"18.2", "22C152"},
};

/* Index of the oldest release a product can run. */
static size_t oldest_release(const char *product)
{
    int major = 0, minor = 0;
    if (sscanf(product, "iPhone%d,%d", &major, &minor) != 2)
        return 0;
    if (major >= 17)
        return 3; /* iPhone 16 family: iOS 18 */
    if (major == 16 || (major == 15 && minor >= 4))
        return 1; /* iPhone 15 family: iOS 17 */
    return 0;
}

void devsim_facts_vary(struct devsim_facts *f, uint64_t v, int64_t now)
{
    size_t n = sizeof releases / sizeof releases[0];
    size_t lo = oldest_release(f->product_name);
    const struct ios_release *r = &releases[lo + (v & 0xff) % (n - lo)];
    copy_str(f->os_version, sizeof f->os_version, r->version);
    copy_str(f->build_version, sizeof f->build_version, r->build);
    f->supervised = (v >> 8) % 3 != 0;         /* two in three */
    f->passcode_present = (v >> 12) % 5 != 0;  /* four in five */
    f->app_mask = (unsigned)((v >> 16) % 31) + 1; /* a non-empty subset of five */
    f->dual_sim = f->imei[0] && (v >> 24) % 4 == 0;
    f->managed_apps = (int)((v >> 28) % 4);    /* 0..3 in-house apps */
    f->app_store_disabled = f->supervised && (v >> 32) % 4 == 0;
    f->provisioning_expiry = f->managed_apps ? now + (int64_t)((v >> 36) % 400) * 86400 : 0;
    f->identity_days = (v >> 44) % 3 == 0 ? 20 : 365;
}

/* ---- Settings ---- */

static void apply_setting(struct devsim_facts *f, plist_t item)
{
    const char *what = get_str(item, "Item");
    if (!what)
        return;
    plist_t en = get_typed(item, "Enabled", PLIST_BOOLEAN);
    uint8_t on = 0;
    if (en)
        plist_get_bool_val(en, &on);
    if (strcmp(what, "DeviceName") == 0 && get_str(item, "DeviceName"))
        copy_str(f->device_name, sizeof f->device_name, get_str(item, "DeviceName"));
    else if (strcmp(what, "TimeZone") == 0 && get_str(item, "TimeZone"))
        copy_str(f->time_zone, sizeof f->time_zone, get_str(item, "TimeZone"));
    else if (strcmp(what, "DataRoaming") == 0 && en)
        f->data_roaming = on;
    else if (strcmp(what, "VoiceRoaming") == 0 && en)
        f->voice_roaming = on;
}

/* Settings answers one status per item, in order. */
/* Settings items iOS applies on supervised devices only. */
static int needs_supervision(const char *item)
{
    static const char *const items[] = {"Wallpaper", "Bluetooth", "DeviceName", "TimeZone",
                                        "SoftwareUpdateSettings", "AccessibilitySettings"};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (strcmp(items[i], item) == 0)
            return 1;
    return 0;
}

static plist_t settings(struct devsim_facts *f, plist_t cmd, const char *uuid, const char **status)
{
    plist_t items = get_typed(cmd, "Settings", PLIST_ARRAY);
    if (!items) {
        *status = "CommandFormatError";
        return devsim_reply_format_error(f, uuid);
    }
    plist_t results = plist_new_array();
    uint32_t n = plist_array_get_size(items);
    for (uint32_t i = 0; i < n; i++) {
        plist_t it = plist_array_get_item(items, i);
        plist_t r = plist_new_dict();
        if (plist_get_node_type(it) == PLIST_DICT && get_str(it, "Item") &&
            !f->supervised && needs_supervision(get_str(it, "Item"))) {
            /* iOS refuses these items one by one on an unsupervised device. */
            set_str(r, "Status", "Error");
            plist_dict_set_item(r, "ErrorChain",
                                error_chain(ERR_NEEDS_SUPERVISION, MDM_ERROR_DOMAIN,
                                            "The device is not supervised."));
        } else if (plist_get_node_type(it) == PLIST_DICT && get_str(it, "Item")) {
            apply_setting(f, it);
            set_str(r, "Status", "Acknowledged");
        } else {
            set_str(r, "Status", "Error");
            plist_dict_set_item(r, "ErrorChain", error_chain(ERR_SETTING_FORMAT, MDM_ERROR_DOMAIN,
                                                             "The setting is malformed."));
        }
        const char *app = get_str(it, "Identifier");
        if (app)
            set_str(r, "Identifier", app);
        plist_array_append_item(results, r);
    }
    *status = "Acknowledged";
    plist_t d = report_base(f, uuid, *status);
    plist_dict_set_item(d, "Settings", results);
    return d;
}

/* ---- dispatch ---- */

/* Commands that need a request key answer CommandFormatError without it. */
static plist_t need_key(struct devsim_facts *f, plist_t cmd, const char *key, plist_type t,
                        const char *uuid, const char **status)
{
    if (get_typed(cmd, key, t)) {
        *status = "Acknowledged";
        return report_base(f, uuid, *status);
    }
    *status = "CommandFormatError";
    return devsim_reply_format_error(f, uuid);
}

/* ClearPasscode works with this device's own UnlockToken only; then the
 * passcode is gone. */
static plist_t clear_passcode(struct devsim_facts *f, plist_t cmd, const char *uuid,
                              const char **status)
{
    plist_t tok = get_typed(cmd, "UnlockToken", PLIST_DATA);
    if (!tok) {
        *status = "CommandFormatError";
        return devsim_reply_format_error(f, uuid);
    }
    uint64_t len = 0;
    const char *data = plist_get_data_ptr(tok, &len);
    if (!f->unlock_len || len != f->unlock_len || memcmp(data, f->unlock_token, len) != 0) {
        *status = "Error";
        return devsim_reply_error(f, uuid, ERR_BAD_UNLOCK_TOKEN, MDM_ERROR_DOMAIN,
                                  "The unlock token is invalid.");
    }
    f->passcode_present = 0;
    *status = "Acknowledged";
    return report_base(f, uuid, *status);
}

/* DeviceLock with a message or phone number says whether it could show it. */
static plist_t device_lock(struct devsim_facts *f, plist_t cmd, const char *uuid,
                           const char **status)
{
    *status = "Acknowledged";
    plist_t d = report_base(f, uuid, *status);
    if (get_str(cmd, "Message") || get_str(cmd, "PhoneNumber"))
        set_str(d, "MessageResult", f->passcode_present ? "Success" : "NoPasscodeSet");
    return d;
}

/* InstallApplication: queued (the install then moves on by itself), or
 * refused from the App Store when a restriction turns it off. */
static plist_t install_application(struct devsim_facts *f, plist_t cmd, const char *uuid,
                                   const char **status)
{
    const char *manifest = get_str(cmd, "ManifestURL");
    const char *ident = get_str(cmd, "Identifier");
    int from_store = !manifest;
    if (!manifest && !ident && !get_typed(cmd, "iTunesStoreID", PLIST_UINT)) {
        *status = "CommandFormatError";
        return devsim_reply_format_error(f, uuid);
    }
    if (from_store && f->app_store_disabled) {
        *status = "Error";
        plist_t d = devsim_reply_error(f, uuid, ERR_APP_STORE_DISABLED, MDM_ERROR_DOMAIN,
                                       "The App Store is disabled.");
        set_str(d, "RejectionReason", "AppStoreDisabled");
        return d;
    }
    *status = "Acknowledged";
    plist_t d = report_base(f, uuid, *status);
    if (ident)
        set_str(d, "Identifier", ident);
    set_str(d, "State", manifest ? "Installing" : "Queued");
    return d;
}

static plist_t with_result(struct devsim_facts *f, const char *uuid, const char *key,
                           plist_t value, const char **status)
{
    *status = "Acknowledged";
    plist_t d = report_base(f, uuid, *status);
    plist_dict_set_item(d, key, value);
    return d;
}

static plist_t remove_profile_cmd(struct devsim_facts *f, plist_t cmd, const char *uuid,
                                  const char **status)
{
    const char *id = get_str(cmd, "Identifier");
    if (id)
        remove_profile(f, id);
    return need_key(f, cmd, "Identifier", PLIST_STRING, uuid, status);
}

static plist_t device_information(struct devsim_facts *f, plist_t cmd, const char *uuid,
                                  const char **status)
{
    plist_t q = cmd ? plist_dict_get_item(cmd, "Queries") : NULL;
    if (q && plist_get_node_type(q) != PLIST_ARRAY) {
        *status = "CommandFormatError";
        return devsim_reply_format_error(f, uuid);
    }
    return with_result(f, uuid, "QueryResponses", devsim_device_information(f, q), status);
}

static int is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

plist_t devsim_answer_command(struct devsim_facts *f, plist_t cmd, const char *uuid,
                              const char *t, const char **status)
{
    if (is(t, "DeviceInformation"))
        return device_information(f, cmd, uuid, status);
    if (is(t, "SecurityInfo"))
        return with_result(f, uuid, "SecurityInfo", security_info(f), status);
    if (is(t, "ProfileList"))
        return with_result(f, uuid, "ProfileList", profile_list(f), status);
    if (is(t, "CertificateList"))
        return with_result(f, uuid, "CertificateList", certificate_list(f), status);
    if (is(t, "InstalledApplicationList"))
        return with_result(f, uuid, "InstalledApplicationList", installed_apps(f, cmd), status);
    if (is(t, "ProvisioningProfileList"))
        return with_result(f, uuid, "ProvisioningProfileList", provisioning_profiles(f), status);
    if (is(t, "ManagedApplicationList"))
        return with_result(f, uuid, "ManagedApplicationList", managed_apps(f, cmd), status);
    if (is(t, "Restrictions"))
        return restrictions(f, cmd, uuid, status);
    if (is(t, "Settings"))
        return settings(f, cmd, uuid, status);
    if (is(t, "InstallProfile"))
        return install_profile(f, cmd, uuid, status);
    if (is(t, "RemoveProfile"))
        return remove_profile_cmd(f, cmd, uuid, status);
    if (is(t, "ClearPasscode"))
        return clear_passcode(f, cmd, uuid, status);
    if (is(t, "DeviceLock"))
        return device_lock(f, cmd, uuid, status);
    if (is(t, "InstallApplication"))
        return install_application(f, cmd, uuid, status);
    if (is(t, "ApplyRedemptionCode"))
        return need_key(f, cmd, "RedemptionCode", PLIST_STRING, uuid, status);
    if (is(t, "RemoveApplication"))
        return need_key(f, cmd, "Identifier", PLIST_STRING, uuid, status);
    if (is(t, "EraseDevice") || is(t, "RestartDevice") || is(t, "ShutDownDevice") ||
        is(t, "DeviceConfigured")) {
        *status = "Acknowledged";
        return report_base(f, uuid, *status);
    }
    *status = "Error";
    return devsim_reply_error(f, uuid, ERR_UNKNOWN_COMMAND, MDM_ERROR_DOMAIN, "Unknown command");
}

/* ---- NotNow-once memory ---- */

int devsim_seen_has(const struct devsim_seen *s, const char *uuid)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strcmp(s->uuids[i], uuid) == 0)
            return 1;
    return 0;
}

int devsim_seen_add(struct devsim_seen *s, const char *uuid)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **p = realloc(s->uuids, cap * sizeof *p);
        if (!p)
            return -1;
        s->uuids = p;
        s->cap = cap;
    }
    char *copy = strdup(uuid);
    if (!copy)
        return -1;
    s->uuids[s->n++] = copy;
    return 0;
}

void devsim_seen_clear(struct devsim_seen *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->uuids[i]);
    free(s->uuids);
    s->uuids = NULL;
    s->n = s->cap = 0;
}

/* ---- the whole answer ---- */

static const struct devsim_rule *find_rule(const struct devsim_policy *p, const char *type)
{
    for (size_t i = 0; p && i < p->n_rules; i++)
        if (is(p->rules[i].request_type, type) || is(p->rules[i].request_type, "*"))
            return &p->rules[i];
    return NULL;
}

/* Applies a --notnow/--notnow-once/--error rule; NULL means "answer normally". */
static plist_t apply_rule(struct devsim_facts *f, const struct devsim_rule *r,
                          struct devsim_seen *seen, struct devsim_result *out)
{
    if (r->kind == DEVSIM_RULE_ERROR) {
        out->status = "Error";
        return devsim_reply_error(f, out->command_uuid,
                                  r->error_code ? r->error_code : ERR_SIMULATED_DEFAULT,
                                  MDM_ERROR_DOMAIN, "The command could not be completed.");
    }
    if (r->kind == DEVSIM_RULE_NOTNOW_ONCE) {
        if (seen && devsim_seen_has(seen, out->command_uuid))
            return NULL;
        if (seen && devsim_seen_add(seen, out->command_uuid) < 0)
            return NULL;
    }
    out->status = "NotNow";
    return devsim_reply_notnow(f, out->command_uuid);
}

static plist_t parse_command(const uint8_t *body, size_t len)
{
    plist_t root = NULL;
    if (!body || len == 0 || len > (1u << 30))
        return NULL;
    if (len >= 8 && memcmp(body, "bplist00", 8) == 0)
        plist_from_bin((const char *)body, (uint32_t)len, &root);
    else if (!memchr(body, '\0', len))
        plist_from_xml((const char *)body, (uint32_t)len, &root);
    if (root && plist_get_node_type(root) != PLIST_DICT) {
        plist_free(root);
        root = NULL;
    }
    return root;
}

int devsim_answer_body(struct devsim_facts *f, const struct devsim_policy *p,
                       struct devsim_seen *seen, const uint8_t *body, size_t len,
                       struct devsim_result *out)
{
    memset(out, 0, sizeof *out);
    plist_t root = parse_command(body, len);
    plist_t cmd = get_typed(root, "Command", PLIST_DICT);
    copy_str(out->command_uuid, sizeof out->command_uuid, get_str(root, "CommandUUID"));
    copy_str(out->request_type, sizeof out->request_type, get_str(cmd, "RequestType"));
    if (!cmd || !out->command_uuid[0] || !out->request_type[0]) {
        out->status = "CommandFormatError";
        out->reply = devsim_reply_format_error(f, out->command_uuid);
    } else {
        const struct devsim_rule *r = find_rule(p, out->request_type);
        out->reply = r ? apply_rule(f, r, seen, out) : NULL;
        if (!out->reply)
            out->reply = devsim_answer_command(f, cmd, out->command_uuid, out->request_type,
                                               &out->status);
    }
    plist_free(root);
    return out->reply ? 0 : -1;
}

/* ---- serialisation ---- */

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* iOS writes dictionary keys sorted; libplist keeps insertion order, so
 * copy with sorted keys before writing. */
static plist_t sorted_copy(plist_t node)
{
    plist_type t = plist_get_node_type(node);
    if (t == PLIST_ARRAY) {
        plist_t a = plist_new_array();
        uint32_t n = plist_array_get_size(node);
        for (uint32_t i = 0; i < n; i++)
            plist_array_append_item(a, sorted_copy(plist_array_get_item(node, i)));
        return a;
    }
    if (t != PLIST_DICT)
        return plist_copy(node);
    uint32_t n = plist_dict_get_size(node);
    char **keys = calloc(n ? n : 1, sizeof *keys);
    plist_t d = plist_new_dict();
    plist_dict_iter it = NULL;
    plist_dict_new_iter(node, &it);
    uint32_t got = 0;
    for (; keys && it && got < n; got++) {
        plist_t v = NULL;
        plist_dict_next_item(node, it, &keys[got], &v);
        if (!keys[got])
            break;
    }
    free(it);
    if (keys) {
        qsort(keys, got, sizeof *keys, cmp_keys);
        for (uint32_t i = 0; i < got; i++) {
            plist_dict_set_item(d, keys[i], sorted_copy(plist_dict_get_item(node, keys[i])));
            free(keys[i]);
        }
    }
    free(keys);
    return d;
}

int devsim_to_xml(plist_t node, char **xml, size_t *len)
{
    char *out = NULL;
    uint32_t l = 0;
    plist_t sorted = node ? sorted_copy(node) : NULL;
    if (!sorted)
        return -1;
    plist_to_xml(sorted, &out, &l);
    plist_free(sorted);
    if (!out)
        return -1;
    *xml = out;
    *len = l;
    return 0;
}
