/* answers.h: the pure message builders of steward-devsim. Given a simulated
 * device's facts they build the plists an iPhone sends (Authenticate,
 * TokenUpdate, CheckOut, Idle) and its reply to a server command, honouring
 * the NotNow/Error switches. No I/O here: flow.c calls these and the unit
 * test (tests/unit/test_devsim_answers.c) includes answers.c directly. */
#ifndef STEWARD_DEVSIM_ANSWERS_H
#define STEWARD_DEVSIM_ANSWERS_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

#define DEVSIM_TOKEN_LEN 32
#define DEVSIM_UNLOCK_MAX 512

/* Everything a simulated iPhone knows about itself. Fixed-size strings keep
 * ownership trivial; an empty string means "this device does not have it"
 * (e.g. no IMEI on a Wi-Fi model) and the key is then left out. */
struct devsim_facts {
    char udid[64];
    char serial[24];
    char product_name[24]; /* iPhone15,2 */
    char model[24];        /* MQ0G3LL */
    char model_number[16]; /* MQ0G3 */
    char model_name[16];   /* iPhone */
    char device_name[64];
    char os_version[16];
    char build_version[16];
    char topic[160];
    /* cellular; all empty on a Wi-Fi-only device */
    char imei[24];
    char meid[24];
    char iccid[24];
    char phone_number[24];
    char carrier[32];
    char modem_fw[24];
    char mcc[4];
    char mnc[4];
    char wifi_mac[18];
    char bt_mac[18];
    char time_zone[40];
    double capacity_gb;  /* DeviceCapacity, GB base 10 */
    double available_gb; /* AvailableDeviceCapacity */
    double battery;      /* 0.0 .. 1.0 */
    int supervised, locator, activation_lock, cloud_backup, itunes_active;
    int data_roaming, voice_roaming, passcode_present, auto_lock_minutes;
    /* push credentials sent in TokenUpdate */
    uint8_t token[DEVSIM_TOKEN_LEN];
    char push_magic[40];
    uint8_t unlock_token[DEVSIM_UNLOCK_MAX];
    size_t unlock_len;
    /* certificates reported by CertificateList (DER; owned by the device) */
    const uint8_t *identity_der;
    size_t identity_der_len;
    /* the same identity (borrowed from the device): opens profiles whose
     * EncryptedPayloadContent is addressed to it */
    X509 *identity_cert;
    EVP_PKEY *identity_key;
    char identity_cn[128];
    const uint8_t *ca_der;
    size_t ca_der_len;
    char ca_cn[128];
    /* the MDM enrollment profile reported by ProfileList */
    char enroll_profile_id[128];
    char enroll_profile_uuid[40];
    char enroll_mdm_uuid[40];  /* its com.apple.mdm payload */
    char enroll_scep_uuid[40]; /* its com.apple.security.scep payload */
    char organization[64];
    /* profiles installed by InstallProfile: array of ProfileList entries,
     * owned (NULL = none); survives between runs through device.c */
    plist_t profiles;
    /* inventory variety (devsim_facts_vary; all 0 = the plain iPhone):
     * sample App Store apps installed (bit per app, 0 = all), a second
     * (eSIM) line, managed apps and how many ManagedApplicationList answers
     * they have moved through, a provisioning profile's expiry (Unix
     * seconds, 0 = none), the App Store turned off by a restriction, and
     * the lifetime of an identity issued with --issue-from (0 = 365 days). */
    unsigned app_mask;
    int dual_sim, managed_apps, managed_list_answers, app_store_disabled, identity_days;
    int64_t provisioning_expiry;
};

/* Gives a generated device its own iOS version (with the matching build),
 * supervision, passcode, apps, SIMs, managed apps, provisioning profile and
 * restrictions from v (a per-device random number), so a fleet has
 * something for inventory filters to find. now anchors expiry dates. */
void devsim_facts_vary(struct devsim_facts *f, uint64_t v, int64_t now);

/* What the device does with a RequestType (the --notnow/--error switches). */
enum devsim_rule_kind { DEVSIM_RULE_NOTNOW, DEVSIM_RULE_NOTNOW_ONCE, DEVSIM_RULE_ERROR };

struct devsim_rule {
    char request_type[64]; /* "*" matches every RequestType */
    enum devsim_rule_kind kind;
    int64_t error_code; /* DEVSIM_RULE_ERROR only */
};

struct devsim_policy {
    const struct devsim_rule *rules;
    size_t n_rules;
};

/* CommandUUIDs a device has already answered NotNow to (--notnow-once). */
struct devsim_seen {
    char **uuids;
    size_t n, cap;
};

struct devsim_result {
    plist_t reply;           /* the report dict to PUT; caller plist_free()s */
    char request_type[64];   /* "" when the command had none */
    char command_uuid[64];   /* "" when the command had none */
    const char *status;      /* static: Acknowledged, NotNow, Error, CommandFormatError */
};

/* Builds the device's report for one command body from the server. The
 * policy may turn the answer into NotNow/Error; seen (may be NULL) records
 * NotNow-once commands. Settings and profile commands update f. Returns 0,
 * or -1 when out of memory. */
int devsim_answer_body(struct devsim_facts *f, const struct devsim_policy *p,
                       struct devsim_seen *seen, const uint8_t *body, size_t len,
                       struct devsim_result *out);

/* Building blocks of devsim_answer_body, public for the tests. */
plist_t devsim_answer_command(struct devsim_facts *f, plist_t command, const char *uuid,
                              const char *request_type, const char **status);
plist_t devsim_reply_notnow(const struct devsim_facts *f, const char *uuid);
plist_t devsim_reply_error(const struct devsim_facts *f, const char *uuid, int64_t code,
                           const char *domain, const char *description);
plist_t devsim_reply_format_error(const struct devsim_facts *f, const char *uuid);
plist_t devsim_device_information(const struct devsim_facts *f, plist_t queries);

/* Check-in and connect messages as iOS sends them. NULL when out of memory. */
plist_t devsim_msg_authenticate(const struct devsim_facts *f);
plist_t devsim_msg_token_update(const struct devsim_facts *f);
plist_t devsim_msg_checkout(const struct devsim_facts *f);
plist_t devsim_msg_idle(const struct devsim_facts *f);

/* XML with tab indentation like iOS: malloc'd text (caller free()s). 0 or -1. */
int devsim_to_xml(plist_t node, char **xml, size_t *len);

int devsim_seen_has(const struct devsim_seen *s, const char *uuid);
int devsim_seen_add(struct devsim_seen *s, const char *uuid);
void devsim_seen_clear(struct devsim_seen *s);

#endif
