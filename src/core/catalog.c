/* catalog.c: the tables behind catalog.h: every command steward builds for
 * operators, its keys and the rights it needs, the Settings items, and the
 * DeviceInformation queries. Facts from Apple's schema
 * (../shared/apple-schema/mdm/commands); tests/unit/test_catalog_schema.c
 * holds these tables against it. */
#include "core/catalog.h"

#include <ctype.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* A plain key; a required one; an array of item; a dictionary with keys. */
#define K(name, type) {name, type, 0, CAT_STRING, NULL, NULL, 0, NULL, 0}
#define KR(name, type) {name, type, CAT_REQUIRED, CAT_STRING, NULL, NULL, 0, NULL, 0}
#define KM(name, type) {name, type, CAT_MACOS, CAT_STRING, NULL, NULL, 0, NULL, 0}
#define KA(name, item, flags) {name, CAT_ARRAY, flags, item, NULL, NULL, 0, NULL, 0}
#define KD(name, flags, sub) {name, CAT_DICT, flags, CAT_STRING, NULL, NULL, 0, sub, N(sub)}
#define KS(name, flags, strings) {name, CAT_STRING, flags, CAT_STRING, strings, NULL, 0, NULL, 0}
#define KI(name, flags, ints) {name, CAT_INTEGER, flags, CAT_STRING, NULL, ints, N(ints), NULL, 0}
#define CMD(type, file, rights, sup, flags, keys) {type, file, rights, sup, flags, keys, N(keys)}
#define CMD0(type, file, rights, sup, flags) {type, file, rights, sup, flags, NULL, 0}

/* ---- command keys ------------------------------------------------------- */

static const struct cat_key install_profile[] = {KR("Payload", CAT_DATA)};
static const struct cat_key remove_profile[] = {KR("Identifier", CAT_STRING)};
static const struct cat_key managed_only[] = {K("ManagedOnly", CAT_BOOLEAN)};
static const struct cat_key install_provisioning[] = {KR("ProvisioningProfile", CAT_DATA)};
static const struct cat_key remove_provisioning[] = {KR("UUID", CAT_STRING)};

static const char *const installed_app_items[] = {
    "AdHocCodeSigned", "AppStoreVendable", "BetaApp", "BundleSize", "DeviceBasedVPP",
    "DistributorIdentifier", "DynamicSize", "ExternalVersionIdentifier", "HasUpdateAvailable",
    "Identifier", "Installing", "IsAppClip", "IsValidated", "Name", "ShortVersion", "Version",
    NULL};
static const struct cat_key installed_apps[] = {
    KA("Identifiers", CAT_STRING, 0),
    K("ManagedAppsOnly", CAT_BOOLEAN),
    {"Items", CAT_ARRAY, 0, CAT_STRING, installed_app_items, NULL, 0, NULL, 0},
};
static const struct cat_key managed_apps[] = {KA("Identifiers", CAT_STRING, 0)};

static const int64_t purchase_methods[] = {0, 1};
static const struct cat_key install_options[] = {KI("PurchaseMethod", 0, purchase_methods)};
static const int64_t management_flags[] = {1, 4, 5};
static const struct cat_key app_attributes[] = {
    K("VPNUUID", CAT_STRING),
    K("ContentFilterUUID", CAT_STRING),
    K("DNSProxyUUID", CAT_STRING),
    K("RelayUUID", CAT_STRING),
    KA("AssociatedDomains", CAT_STRING, 0),
    K("AssociatedDomainsEnableDirectDownloads", CAT_BOOLEAN),
    K("Removable", CAT_BOOLEAN),
    K("TapToPayScreenLock", CAT_BOOLEAN),
    K("CellularSliceUUID", CAT_STRING),
    K("Hideable", CAT_BOOLEAN),
    K("Lockable", CAT_BOOLEAN),
};
static const char *const change_management_states[] = {"Managed", NULL};
static const struct cat_key install_app[] = {
    K("iTunesStoreID", CAT_INTEGER),
    K("Identifier", CAT_STRING),
    KD("Options", 0, install_options),
    K("ManifestURL", CAT_STRING),
    KI("ManagementFlags", 0, management_flags),
    {"Configuration", CAT_DICT, 0, CAT_STRING, NULL, NULL, 0, NULL, 0},
    KD("Attributes", 0, app_attributes),
    KS("ChangeManagementState", 0, change_management_states),
    KM("InstallAsManaged", CAT_BOOLEAN),
    KM("iOSApp", CAT_BOOLEAN),
};
static const struct cat_key remove_app[] = {KR("Identifier", CAT_STRING)};
static const struct cat_key redemption[] = {KR("Identifier", CAT_STRING),
                                            KR("RedemptionCode", CAT_STRING)};
static const struct cat_key device_info[] = {KA("Queries", CAT_STRING, CAT_REQUIRED),
                                             K("DeviceAttestationNonce", CAT_DATA)};
static const struct cat_key restrictions[] = {K("ProfileRestrictions", CAT_BOOLEAN)};
static const struct cat_key device_lock[] = {K("Message", CAT_STRING), K("PhoneNumber", CAT_STRING),
                                             KM("PIN", CAT_STRING)};
static const char *const obliteration[] = {"Default", "DoNotObliterate", "ObliterateWithWarning",
                                           "Always", NULL};
static const struct cat_key return_to_service[] = {
    KR("Enabled", CAT_BOOLEAN), K("WiFiProfileData", CAT_DATA), K("MDMProfileData", CAT_DATA)};
static const struct cat_key erase[] = {
    K("PreserveDataPlan", CAT_BOOLEAN),
    K("DisallowProximitySetup", CAT_BOOLEAN),
    KM("PIN", CAT_STRING),
    KS("ObliterationBehavior", CAT_MACOS, obliteration),
    KD("ReturnToService", 0, return_to_service),
};
static const struct cat_key clear_passcode[] = {KR("UnlockToken", CAT_DATA)};
static const struct cat_key settings[] = {KA("Settings", CAT_DICT, CAT_REQUIRED)};

static const struct cat_command commands[] = {
    CMD("InstallProfile", "profile.install.yaml", RIGHT_PROFILES, 0, 0, install_profile),
    CMD("RemoveProfile", "profile.remove.yaml", RIGHT_PROFILES, 0, 0, remove_profile),
    CMD("ProfileList", "profile.list.yaml", RIGHT_INSPECT_PROFILES, 0, 0, managed_only),
    CMD("InstallProvisioningProfile", "profile.provisioning.install.yaml", RIGHT_PROVISIONING, 0,
        0, install_provisioning),
    CMD("RemoveProvisioningProfile", "profile.provisioning.remove.yaml", RIGHT_PROVISIONING, 0, 0,
        remove_provisioning),
    CMD("ProvisioningProfileList", "profile.provisioning.list.yaml", RIGHT_INSPECT_PROVISIONING,
        0, 0, managed_only),
    CMD("CertificateList", "certificate.list.yaml", RIGHT_INSPECT_PROFILES, 0, 0, managed_only),
    CMD("InstalledApplicationList", "application.installed.list.yaml", RIGHT_QUERY_APPS, 0, 0,
        installed_apps),
    CMD("ManagedApplicationList", "application.managed.list.yaml", RIGHT_APPS, 0, 0,
        managed_apps),
    CMD("InstallApplication", "application.install.yaml", RIGHT_APPS, 0, 0, install_app),
    CMD("RemoveApplication", "application.remove.yaml", RIGHT_APPS, 0, 0, remove_app),
    CMD("ApplyRedemptionCode", "application.redemptioncode.yaml", RIGHT_APPS, 0, 0, redemption),
    /* The rights follow the queries asked (catalog_queries). */
    CMD("DeviceInformation", "information.device.yaml", 0, 0, 0, device_info),
    CMD0("SecurityInfo", "information.security.yaml", RIGHT_QUERY_SECURITY, 0, 0),
    CMD("Restrictions", "device.restrictions.list.yaml", RIGHT_QUERY_RESTRICTIONS, 0, 0,
        restrictions),
    CMD("DeviceLock", "device.lock.yaml", RIGHT_LOCK_PASSCODE, 0, CAT_SECURITY | CAT_ONE_PENDING,
        device_lock),
    CMD("EraseDevice", "device.erase.yaml", RIGHT_ERASE, 0,
        CAT_SECURITY | CAT_ONE_PENDING | CAT_CONFIRM, erase),
    CMD("ClearPasscode", "passcode.clear.yaml", RIGHT_LOCK_PASSCODE, 0,
        CAT_SECURITY | CAT_ONE_PENDING | CAT_UNLOCK_TOKEN, clear_passcode),
    /* The rights and supervision follow the items (catalog_settings). */
    CMD("Settings", "settings.yaml", RIGHT_SETTINGS, 0, 0, settings),
};

/* ---- Settings items ------------------------------------------------------ */

static const int64_t wallpaper_where[] = {1, 2, 3};
static const struct cat_key s_wallpaper[] = {KR("Image", CAT_DATA),
                                             KI("Where", CAT_REQUIRED, wallpaper_where)};
static const struct cat_key s_enabled[] = {KR("Enabled", CAT_BOOLEAN)};
static const struct cat_key s_app_config[] = {KR("Identifier", CAT_STRING),
                                              {"Configuration", CAT_DICT, 0, CAT_STRING, NULL,
                                               NULL, 0, NULL, 0}};
static const struct cat_key s_app_attributes[] = {KR("Identifier", CAT_STRING),
                                                  KD("Attributes", 0, app_attributes)};
static const struct cat_key s_device_name[] = {KR("DeviceName", CAT_STRING)};
static const struct cat_key s_host_name[] = {KR("HostName", CAT_STRING)};
static const struct cat_key s_org_info[] = {
    {"OrganizationInfo", CAT_DICT, 0, CAT_STRING, NULL, NULL, 0, NULL, 0}};
static const struct cat_key s_mdm_options[] = {
    {"MDMOptions", CAT_DICT, CAT_REQUIRED, CAT_STRING, NULL, NULL, 0, NULL, 0}};
static const struct cat_key s_max_users[] = {KR("MaximumResidentUsers", CAT_INTEGER)};
static const struct cat_key s_shared_device[] = {
    K("QuotaSize", CAT_INTEGER),
    K("ResidentUsers", CAT_INTEGER),
    K("UserSessionTimeout", CAT_INTEGER),
    K("TemporarySessionTimeout", CAT_INTEGER),
    K("TemporarySessionOnly", CAT_BOOLEAN),
    KA("ManagedAppleIDDefaultDomains", CAT_STRING, 0),
    K("OnlineAuthenticationGracePeriod", CAT_INTEGER),
    K("SkipLanguageAndLocaleSetupForNewUsers", CAT_BOOLEAN),
    {"AwaitUserConfiguration", CAT_DICT, 0, CAT_STRING, NULL, NULL, 0, NULL, 0},
    {"PasscodePolicy", CAT_DICT, 0, CAT_STRING, NULL, NULL, 0, NULL, 0},
};
static const int64_t grace_periods[] = {0, 60, 300, 900, 3600, 14400};
static const struct cat_key s_grace[] = {KI("PasscodeLockGracePeriod", CAT_REQUIRED, grace_periods)};
static const struct cat_key s_time_zone[] = {KR("TimeZone", CAT_STRING)};
static const int64_t cadences[] = {0, 1, 2};
static const struct cat_key s_software_update[] = {
    KI("RecommendationCadence", CAT_REQUIRED, cadences)};
static const int64_t text_sizes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
static const struct cat_key s_accessibility[] = {
    K("BoldTextEnabled", CAT_BOOLEAN),
    K("IncreaseContrastEnabled", CAT_BOOLEAN),
    K("ReduceMotionEnabled", CAT_BOOLEAN),
    K("ReduceTransparencyEnabled", CAT_BOOLEAN),
    KI("TextSize", 0, text_sizes),
    K("TouchAccommodationsEnabled", CAT_BOOLEAN),
    K("VoiceOverEnabled", CAT_BOOLEAN),
    K("ZoomEnabled", CAT_BOOLEAN),
    KM("GrayscaleEnabled", CAT_BOOLEAN),
};

#define SET(item, rights, sup, flags, keys) {item, rights, sup, flags, keys, N(keys)}
static const struct cat_setting setting_items[] = {
    SET("Wallpaper", 0, 1, 0, s_wallpaper),
    SET("DataRoaming", RIGHT_QUERY_NETWORK, 0, 0, s_enabled),
    SET("VoiceRoaming", RIGHT_QUERY_NETWORK, 0, 0, s_enabled),
    SET("PersonalHotspot", RIGHT_QUERY_NETWORK, 0, 0, s_enabled),
    SET("Bluetooth", RIGHT_QUERY_NETWORK, 1, 0, s_enabled),
    SET("ApplicationConfiguration", RIGHT_APPS, 0, 0, s_app_config),
    SET("ApplicationAttributes", 0, 0, 0, s_app_attributes),
    SET("DeviceName", 0, 1, 0, s_device_name),
    SET("HostName", 0, 0, CAT_MACOS, s_host_name),
    SET("OrganizationInfo", 0, 0, 0, s_org_info),
    SET("MDMOptions", 0, 0, 0, s_mdm_options),
    SET("MaximumResidentUsers", 0, 0, 0, s_max_users),
    SET("SharedDeviceConfiguration", 0, 0, 0, s_shared_device),
    SET("DiagnosticSubmission", 0, 0, 0, s_enabled),
    SET("AppAnalytics", 0, 0, 0, s_enabled),
    SET("PasscodeLockGracePeriod", 0, 0, 0, s_grace),
    SET("TimeZone", 0, 1, 0, s_time_zone),
    SET("SoftwareUpdateSettings", 0, 1, 0, s_software_update),
    SET("AccessibilitySettings", 0, 1, 0, s_accessibility),
};

/* ---- DeviceInformation queries (with the right iOS asks for each) ---------- */

static const struct cat_query queries[] = {
    {"UDID", 0}, {"ProvisioningUDID", 0}, {"OrganizationInfo", 0}, {"MDMOptions", 0},
    {"LastCloudBackupDate", 0}, {"AwaitingConfiguration", 0},
    {"iTunesStoreAccountIsActive", RIGHT_APPS}, {"iTunesStoreAccountHash", RIGHT_APPS},
    {"DeviceName", RIGHT_QUERY_DEVICE}, {"OSVersion", RIGHT_QUERY_DEVICE},
    {"SupplementalOSVersionExtra", RIGHT_QUERY_DEVICE}, {"BuildVersion", RIGHT_QUERY_DEVICE},
    {"SupplementalBuildVersion", RIGHT_QUERY_DEVICE}, {"ModelName", RIGHT_QUERY_DEVICE},
    {"Model", RIGHT_QUERY_DEVICE}, {"ModelNumber", RIGHT_QUERY_DEVICE}, {"IsAppleSilicon", 0},
    {"ProductName", RIGHT_QUERY_DEVICE}, {"SerialNumber", RIGHT_QUERY_DEVICE},
    {"DeviceCapacity", RIGHT_QUERY_DEVICE}, {"AvailableDeviceCapacity", RIGHT_QUERY_DEVICE},
    {"IMEI", RIGHT_QUERY_DEVICE}, {"MEID", RIGHT_QUERY_DEVICE},
    {"ModemFirmwareVersion", RIGHT_QUERY_DEVICE}, {"CellularTechnology", RIGHT_QUERY_DEVICE},
    {"BatteryLevel", RIGHT_QUERY_DEVICE}, {"HasBattery", 0}, {"IsSupervised", RIGHT_QUERY_DEVICE},
    {"IsMultiUser", RIGHT_QUERY_DEVICE}, {"IsDeviceLocatorServiceEnabled", RIGHT_QUERY_DEVICE},
    {"IsActivationLockEnabled", RIGHT_QUERY_DEVICE}, {"IsActivationLockSupported", 0},
    {"IsDoNotDisturbInEffect", RIGHT_QUERY_DEVICE}, {"DeviceID", 0},
    {"EASDeviceIdentifier", RIGHT_QUERY_DEVICE}, {"IsCloudBackupEnabled", RIGHT_QUERY_DEVICE},
    {"ActiveManagedUsers", 0}, {"OSUpdateSettings", 0}, {"LocalHostName", 0}, {"HostName", 0},
    {"AutoSetupAdminAccounts", 0}, {"SystemIntegrityProtectionEnabled", 0},
    {"SupportsLOMDevice", 0}, {"IsMDMLostModeEnabled", RIGHT_QUERY_DEVICE},
    {"MaximumResidentUsers", RIGHT_QUERY_DEVICE}, {"EstimatedResidentUsers", RIGHT_QUERY_DEVICE},
    {"QuotaSize", RIGHT_QUERY_DEVICE}, {"ResidentUsers", RIGHT_QUERY_DEVICE},
    {"UserSessionTimeout", RIGHT_QUERY_DEVICE}, {"TemporarySessionTimeout", RIGHT_QUERY_DEVICE},
    {"TemporarySessionOnly", RIGHT_QUERY_DEVICE},
    {"ManagedAppleIDDefaultDomains", RIGHT_QUERY_DEVICE},
    {"OnlineAuthenticationGracePeriod", RIGHT_QUERY_DEVICE},
    {"SkipLanguageAndLocaleSetupForNewUsers", RIGHT_QUERY_DEVICE},
    {"PushToken", RIGHT_QUERY_DEVICE}, {"DiagnosticSubmissionEnabled", RIGHT_QUERY_DEVICE},
    {"AppAnalyticsEnabled", RIGHT_QUERY_DEVICE}, {"TimeZone", RIGHT_QUERY_DEVICE},
    {"ICCID", RIGHT_QUERY_NETWORK}, {"BluetoothMAC", RIGHT_QUERY_NETWORK},
    {"WiFiMAC", RIGHT_QUERY_NETWORK}, {"EthernetMAC", 0},
    {"CurrentCarrierNetwork", RIGHT_QUERY_NETWORK}, {"SIMCarrierNetwork", RIGHT_QUERY_NETWORK},
    {"SubscriberCarrierNetwork", RIGHT_QUERY_NETWORK},
    {"CarrierSettingsVersion", RIGHT_QUERY_NETWORK}, {"PhoneNumber", RIGHT_QUERY_NETWORK},
    {"DataRoamingEnabled", RIGHT_QUERY_NETWORK}, {"VoiceRoamingEnabled", RIGHT_QUERY_NETWORK},
    {"PersonalHotspotEnabled", RIGHT_QUERY_NETWORK}, {"IsNetworkTethered", RIGHT_QUERY_NETWORK},
    {"IsRoaming", RIGHT_QUERY_NETWORK}, {"SubscriberMCC", RIGHT_QUERY_NETWORK},
    {"SubscriberMNC", RIGHT_QUERY_NETWORK}, {"CurrentMCC", RIGHT_QUERY_NETWORK},
    {"CurrentMNC", RIGHT_QUERY_NETWORK}, {"ServiceSubscriptions", RIGHT_QUERY_NETWORK},
    {"PINRequiredForEraseDevice", 0}, {"PINRequiredForDeviceLock", 0},
    {"SupportsiOSAppInstalls", 0}, {"SoftwareUpdateDeviceID", 0}, {"SoftwareUpdateSettings", 0},
    {"AccessibilitySettings", 0}, {"DevicePropertiesAttestation", 0}, {"EACSPreflight", 0},
};

/* ---- lookups -------------------------------------------------------------- */

const struct cat_command *catalog_commands(size_t *n)
{
    *n = N(commands);
    return commands;
}

const struct cat_setting *catalog_settings(size_t *n)
{
    *n = N(setting_items);
    return setting_items;
}

const struct cat_query *catalog_queries(size_t *n)
{
    *n = N(queries);
    return queries;
}

const struct cat_command *catalog_find(const char *request_type)
{
    for (size_t i = 0; request_type && i < N(commands); i++)
        if (strcmp(commands[i].request_type, request_type) == 0)
            return &commands[i];
    return NULL;
}

const struct cat_setting *catalog_setting_find(const char *item)
{
    for (size_t i = 0; item && i < N(setting_items); i++)
        if (catalog_name_eq(setting_items[i].item, item))
            return &setting_items[i];
    return NULL;
}

const char *catalog_type_name(enum cat_type t)
{
    static const char *const names[] = {
        [CAT_STRING] = "string", [CAT_INTEGER] = "integer", [CAT_BOOLEAN] = "boolean",
        [CAT_REAL] = "real",     [CAT_DATA] = "data",       [CAT_DATE] = "date",
        [CAT_ARRAY] = "array",   [CAT_DICT] = "dictionary",
    };
    return (unsigned)t < N(names) ? names[t] : "?";
}

const char *catalog_right_name(unsigned bit)
{
    switch (bit) {
    case RIGHT_INSPECT_PROFILES: return "AllowInspection";
    case RIGHT_PROFILES: return "AllowInstallationRemoval";
    case RIGHT_LOCK_PASSCODE: return "AllowPasscodeRemovalAndLock";
    case RIGHT_ERASE: return "AllowDeviceErase";
    case RIGHT_QUERY_DEVICE: return "AllowQueryDeviceInformation";
    case RIGHT_QUERY_NETWORK: return "AllowQueryNetworkInformation";
    case RIGHT_INSPECT_PROVISIONING: return "AllowProvisioningInspection";
    case RIGHT_PROVISIONING: return "AllowProvisioningInstallationRemoval";
    case RIGHT_QUERY_APPS: return "AllowQueryApplications";
    case RIGHT_QUERY_RESTRICTIONS: return "AllowQueryRestrictions";
    case RIGHT_QUERY_SECURITY: return "AllowQuerySecurity";
    case RIGHT_SETTINGS: return "AllowSettings";
    case RIGHT_APPS: return "AllowAppInstallation";
    default: return NULL;
    }
}

int catalog_name_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        a++;
        b++;
    }
}
