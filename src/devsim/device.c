/* device.c: a simulated iPhone's identity and state. Device N of a fleet gets
 * realistic, unique identifiers derived from the fleet seed (UDID, serial,
 * IMEI, push token …), an identity certificate (given, stored, or issued
 * from steward's CA as SCEP would, or enrolled over SCEP by scep.c), and with --state its identity and
 * mutable state persist in DIR/device-NNNNN/. Called by load.c. */
#include "devsim/devsim.h"

#include "pki/pki.h"
#include "util/ids.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TOPIC "com.apple.mgmt.External.4b1f7c2e-93a6-4d58-b0e1-6c2d8a7f3e95"
#define SEED_FILE "fleet-seed"

static void set_err(char **err, const char *fmt, const char *arg)
{
    if (err && asprintf(err, fmt, arg ? arg : "") < 0)
        *err = NULL;
}

/* ---- deterministic derivation from the fleet seed ---- */

static void derive(const char *seed, int index, const char *label, uint8_t out[32])
{
    char in[256];
    int n = snprintf(in, sizeof in, "%s|%d|%s", seed, index, label);
    unsigned int len = 32;
    if (n < 0 || EVP_Digest(in, (size_t)n, out, &len, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32); /* cannot happen with a working libcrypto */
}

static uint64_t derive_u64(const char *seed, int index, const char *label)
{
    uint8_t h[32];
    uint64_t v = 0;
    derive(seed, index, label, h);
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return v;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* base + index*mult mod m is a bijection on index when mult is coprime with
 * m, so every device of a fleet gets a distinct value; taking mult near
 * m/phi makes neighbouring devices' values look unrelated. */
static uint64_t unique_mod(const char *seed, int index, const char *label, uint64_t m)
{
    uint64_t mult = (uint64_t)((double)m * 0.6180339887498949) | 1;
    while (gcd(mult, m) != 1)
        mult += 2;
    uint64_t base = derive_u64(seed, -1, label) % m;
    unsigned __int128 v = (unsigned __int128)((uint64_t)index % m) * mult + base;
    return (uint64_t)(v % m);
}

/* ---- models ---- */

struct model {
    const char *product, *model, *model_number, *chip;
    double nominal_gb;
};

static const struct model models[] = {
    {"iPhone15,2", "MQ0G3LL", "MQ0G3", "00008120", 128}, /* iPhone 14 Pro */
    {"iPhone16,1", "MTUV3LL", "MTUV3", "00008130", 256}, /* iPhone 15 Pro */
    {"iPhone15,4", "MTLX3LL", "MTLX3", "00008120", 128}, /* iPhone 15 */
    {"iPhone14,5", "MLMN3LL", "MLMN3", "00008110", 128}, /* iPhone 13 */
    {"iPhone17,3", "MYE73LL", "MYE73", "00008140", 256}, /* iPhone 16 */
};

static int luhn_digit(const char *digits)
{
    int sum = 0;
    size_t n = strlen(digits);
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return (10 - sum % 10) % 10;
}

/* Since 2021 Apple serials are 10 random characters. */
static void make_serial(const char *seed, int index, char out[24])
{
    static const char alphabet[] = "0123456789BCDFGHJKLMNPQRTVWXYZ"; /* 30 */
    uint64_t m = 1;
    for (int i = 0; i < 10; i++)
        m *= 30;
    uint64_t v = unique_mod(seed, index, "serial", m);
    for (int i = 9; i >= 0; i--) {
        out[i] = alphabet[v % 30];
        v /= 30;
    }
    out[10] = '\0';
}

static void make_cellular(struct devsim_facts *f, const char *seed, int index)
{
    char body[24];
    snprintf(body, sizeof body, "353958%02u%06llu", (unsigned)(derive_u64(seed, -1, "tac") % 90 + 10),
             (unsigned long long)unique_mod(seed, index, "imei", 1000000));
    snprintf(f->imei, sizeof f->imei, "%.14s%c", body, (char)('0' + luhn_digit(body)));
    /* An iPhone's MEID is the first 14 digits of its IMEI. */
    snprintf(f->meid, sizeof f->meid, "%.14s", f->imei);
    snprintf(body, sizeof body, "8901260%012llu",
             (unsigned long long)unique_mod(seed, index, "iccid", 1000000000000ull));
    snprintf(f->iccid, sizeof f->iccid, "%.19s%c", body, (char)('0' + luhn_digit(body)));
    snprintf(f->phone_number, sizeof f->phone_number, "+1415%07llu",
             (unsigned long long)unique_mod(seed, index, "phone", 10000000));
    snprintf(f->carrier, sizeof f->carrier, "T-Mobile");
    snprintf(f->mcc, sizeof f->mcc, "310");
    snprintf(f->mnc, sizeof f->mnc, "260");
    snprintf(f->modem_fw, sizeof f->modem_fw, "2.10.02");
}

static void make_macs(struct devsim_facts *f, const char *seed, int index)
{
    uint64_t low = unique_mod(seed, index, "mac", 1u << 24);
    /* f0:99:b6 is an Apple OUI; Bluetooth is the Wi-Fi address plus one. */
    snprintf(f->wifi_mac, sizeof f->wifi_mac, "f0:99:b6:%02x:%02x:%02x",
             (unsigned)(low >> 16 & 0xff), (unsigned)(low >> 8 & 0xff), (unsigned)(low & 0xff));
    low = (low + 1) & 0xffffff;
    snprintf(f->bt_mac, sizeof f->bt_mac, "f0:99:b6:%02x:%02x:%02x", (unsigned)(low >> 16 & 0xff),
             (unsigned)(low >> 8 & 0xff), (unsigned)(low & 0xff));
}

static void format_uuid(const uint8_t b[16], char out[40])
{
    snprintf(out, 40, "%02X%02X%02X%02X-%02X%02X-4%01X%02X-%01X%01X%02X-%02X%02X%02X%02X%02X%02X",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6] & 15, b[7], 8 | (b[8] & 3), b[8] >> 4 & 15,
             b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---- unlock token: an escrow keybag, tag/length/value like iOS's ---- */

static size_t tlv(uint8_t *out, size_t at, size_t cap, const char tag[4], const uint8_t *v,
                  uint32_t len)
{
    if (at + 8 + len > cap)
        return at;
    memcpy(out + at, tag, 4);
    out[at + 4] = (uint8_t)(len >> 24);
    out[at + 5] = (uint8_t)(len >> 16);
    out[at + 6] = (uint8_t)(len >> 8);
    out[at + 7] = (uint8_t)len;
    memcpy(out + at + 8, v, len);
    return at + 8 + len;
}

static size_t tlv_u32(uint8_t *out, size_t at, size_t cap, const char tag[4], uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return tlv(out, at, cap, tag, b, 4);
}

static void make_unlock_token(struct devsim_facts *f, const char *seed, int index)
{
    uint8_t r[32], body[DEVSIM_UNLOCK_MAX];
    size_t at = 0, cap = sizeof body - 8;
    at = tlv_u32(body, at, cap, "VERS", 4);
    at = tlv_u32(body, at, cap, "TYPE", 2);
    derive(seed, index, "keybag-uuid", r);
    at = tlv(body, at, cap, "UUID", r, 16);
    derive(seed, index, "keybag-hmck", r);
    at = tlv(body, at, cap, "HMCK", r, 32);
    at = tlv_u32(body, at, cap, "WRAP", 1);
    derive(seed, index, "keybag-salt", r);
    at = tlv(body, at, cap, "SALT", r, 20);
    at = tlv_u32(body, at, cap, "ITER", 50000);
    for (uint32_t cls = 1; cls <= 4; cls++) {
        char label[32];
        snprintf(label, sizeof label, "keybag-class-%u", cls);
        derive(seed, index, label, r);
        at = tlv(body, at, cap, "UUID", r, 16);
        at = tlv_u32(body, at, cap, "CLAS", cls);
        at = tlv_u32(body, at, cap, "WRAP", 3);
        derive(seed, index, label + 7, r); /* "class-N": another 32 bytes */
        at = tlv(body, at, cap, "WPKY", r, 32);
    }
    derive(seed, index, "keybag-sign", r);
    at = tlv(body, at, cap, "SIGN", r, 20);
    f->unlock_len = tlv(f->unlock_token, 0, sizeof f->unlock_token, "DATA", body, (uint32_t)at);
}

/* ---- facts ---- */

static void make_facts(struct devsim_facts *f, const struct devsim_opts *o, const char *seed,
                       int index)
{
    const struct model *m = &models[index % (int)(sizeof models / sizeof models[0])];
    uint8_t r[32];
    uint64_t ecid = unique_mod(seed, index, "ecid", 1ull << 56);
    snprintf(f->udid, sizeof f->udid, "%s-00%014llX", m->chip, (unsigned long long)ecid);
    make_serial(seed, index, f->serial);
    snprintf(f->product_name, sizeof f->product_name, "%s", m->product);
    snprintf(f->model, sizeof f->model, "%s", m->model);
    snprintf(f->model_number, sizeof f->model_number, "%s", m->model_number);
    snprintf(f->model_name, sizeof f->model_name, "iPhone");
    snprintf(f->device_name, sizeof f->device_name, "iPhone"); /* iOS 16+ when unsupervised */
    snprintf(f->os_version, sizeof f->os_version, "18.1");
    snprintf(f->build_version, sizeof f->build_version, "22B83");
    snprintf(f->topic, sizeof f->topic, "%s", o->topic ? o->topic : DEFAULT_TOPIC);
    snprintf(f->time_zone, sizeof f->time_zone, "America/Los_Angeles");
    make_cellular(f, seed, index);
    make_macs(f, seed, index);
    uint64_t v = derive_u64(seed, index, "levels");
    /* iOS reports usable capacity, a little under the nominal size */
    f->capacity_gb = (double)(long)(m->nominal_gb * 93.1) / 100.0;
    f->available_gb = (double)(long)(f->capacity_gb * (20 + (double)(v % 60)) ) / 100.0;
    f->battery = (double)(20 + (v >> 8) % 81) / 100.0;
    f->locator = f->activation_lock = f->cloud_backup = f->itunes_active = 1;
    f->passcode_present = 1;
    f->auto_lock_minutes = 1;
    derive(seed, index, "apns-token", f->token);
    derive(seed, index, "push-magic", r);
    format_uuid(r, f->push_magic);
    make_unlock_token(f, seed, index);
    snprintf(f->enroll_profile_id, sizeof f->enroll_profile_id, "com.steward.enroll");
    derive(seed, -1, "enroll-profile", r);
    format_uuid(r, f->enroll_profile_uuid);
    derive(seed, -1, "enroll-mdm-payload", r);
    format_uuid(r, f->enroll_mdm_uuid);
    derive(seed, -1, "enroll-scep-payload", r);
    format_uuid(r, f->enroll_scep_uuid);
    snprintf(f->organization, sizeof f->organization, "Steward");
    devsim_facts_vary(f, derive_u64(seed, index, "inventory-variety"), (int64_t)time(NULL));
    /* The escrow keybag needs a passcode: without one the device has no
     * UnlockToken to send (so ClearPasscode is refused for it). */
    if (!f->passcode_present)
        f->unlock_len = 0;
}

/* --udid/--serial/--topic win over both generated and stored values. */
static void apply_overrides(struct devsim_facts *f, const struct devsim_opts *o)
{
    if (o->udid)
        snprintf(f->udid, sizeof f->udid, "%s", o->udid);
    if (o->serial)
        snprintf(f->serial, sizeof f->serial, "%s", o->serial);
    if (o->topic)
        snprintf(f->topic, sizeof f->topic, "%s", o->topic);
}

/* ---- persisted state: DIR/device-NNNNN/device.plist ---- */

struct str_field {
    const char *key;
    size_t off, size;
};

#define SF(key, field) \
    {key, offsetof(struct devsim_facts, field), sizeof(((struct devsim_facts *)0)->field)}

static const struct str_field saved_strings[] = {
    SF("UDID", udid), SF("SerialNumber", serial), SF("ProductName", product_name),
    SF("Model", model), SF("ModelNumber", model_number), SF("DeviceName", device_name),
    SF("OSVersion", os_version), SF("BuildVersion", build_version), SF("Topic", topic),
    SF("IMEI", imei), SF("MEID", meid), SF("ICCID", iccid), SF("PhoneNumber", phone_number),
    SF("WiFiMAC", wifi_mac), SF("BluetoothMAC", bt_mac), SF("TimeZone", time_zone),
    SF("PushMagic", push_magic),
};

static int path_in(const struct devsim_device *d, const char *name, char *out, size_t n)
{
    int w = snprintf(out, n, "%s/%s", d->dir, name);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

static plist_t seen_to_plist(const struct devsim_seen *s)
{
    plist_t a = plist_new_array();
    for (size_t i = 0; i < s->n; i++)
        plist_array_append_item(a, plist_new_string(s->uuids[i]));
    return a;
}

static plist_t state_plist(const struct devsim_device *d)
{
    const struct devsim_facts *f = &d->facts;
    plist_t p = plist_new_dict();
    for (size_t i = 0; i < sizeof saved_strings / sizeof saved_strings[0]; i++)
        plist_dict_set_item(p, saved_strings[i].key,
                            plist_new_string((const char *)f + saved_strings[i].off));
    plist_dict_set_item(p, "Token", plist_new_data((const char *)f->token, sizeof f->token));
    plist_dict_set_item(p, "UnlockToken",
                        plist_new_data((const char *)f->unlock_token, f->unlock_len));
    plist_dict_set_item(p, "DataRoamingEnabled", plist_new_bool(f->data_roaming));
    plist_dict_set_item(p, "VoiceRoamingEnabled", plist_new_bool(f->voice_roaming));
    plist_dict_set_item(p, "Profiles", f->profiles ? plist_copy(f->profiles) : plist_new_array());
    plist_dict_set_item(p, "NotNowSeen", seen_to_plist(&d->seen));
    /* managed app installs progress across runs, one step per answer */
    plist_dict_set_item(p, "ManagedListAnswers", plist_new_uint((uint64_t)f->managed_list_answers));
    return p;
}

int devsim_device_save(const struct devsim_device *d)
{
    char path[4200], tmp[4300];
    if (!d->dir[0])
        return 0;
    plist_t p = state_plist(d);
    char *xml = NULL;
    size_t len = 0;
    int rc = p && devsim_to_xml(p, &xml, &len) == 0 ? 0 : -1;
    plist_free(p);
    if (rc || path_in(d, "device.plist", path, sizeof path)) {
        free(xml);
        return -1;
    }
    /* write then rename, so an interrupted run never leaves half a file */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp || fwrite(xml, 1, len, fp) != len)
        rc = -1;
    if (fp && fclose(fp) != 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    free(xml);
    return rc;
}

static void load_data(plist_t p, const char *key, uint8_t *dst, size_t cap, size_t *len_out)
{
    plist_t n = plist_dict_get_item(p, key);
    uint64_t len = 0;
    const char *v = n && plist_get_node_type(n) == PLIST_DATA ? plist_get_data_ptr(n, &len) : NULL;
    if (!v || len > cap || (!len_out && len != cap))
        return;
    memcpy(dst, v, len);
    if (len_out)
        *len_out = len;
}

static int load_bool(plist_t p, const char *key, int def)
{
    plist_t n = plist_dict_get_item(p, key);
    uint8_t v = 0;
    if (!n || plist_get_node_type(n) != PLIST_BOOLEAN)
        return def;
    plist_get_bool_val(n, &v);
    return v != 0;
}

static void load_seen(struct devsim_seen *s, plist_t arr)
{
    uint32_t n = arr && plist_get_node_type(arr) == PLIST_ARRAY ? plist_array_get_size(arr) : 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t it = plist_array_get_item(arr, i);
        if (plist_get_node_type(it) == PLIST_STRING)
            devsim_seen_add(s, plist_get_string_ptr(it, NULL));
    }
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    struct buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (buf_append(&b, chunk, n) < 0)
            break;
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b, len);
}

/* Overlays saved state on the generated facts. 1 loaded, 0 none, -1 bad. */
static int load_state(struct devsim_device *d)
{
    char path[4200];
    size_t len = 0;
    if (path_in(d, "device.plist", path, sizeof path))
        return -1;
    char *xml = read_file(path, &len);
    if (!xml)
        return errno == ENOENT ? 0 : -1;
    plist_t p = NULL;
    plist_from_xml(xml, (uint32_t)len, &p);
    free(xml);
    if (!p || plist_get_node_type(p) != PLIST_DICT) {
        plist_free(p);
        return -1;
    }
    struct devsim_facts *f = &d->facts;
    for (size_t i = 0; i < sizeof saved_strings / sizeof saved_strings[0]; i++) {
        plist_t n = plist_dict_get_item(p, saved_strings[i].key);
        if (n && plist_get_node_type(n) == PLIST_STRING)
            snprintf((char *)f + saved_strings[i].off, saved_strings[i].size, "%s",
                     plist_get_string_ptr(n, NULL));
    }
    load_data(p, "Token", f->token, sizeof f->token, NULL);
    load_data(p, "UnlockToken", f->unlock_token, sizeof f->unlock_token, &f->unlock_len);
    f->data_roaming = load_bool(p, "DataRoamingEnabled", f->data_roaming);
    f->voice_roaming = load_bool(p, "VoiceRoamingEnabled", f->voice_roaming);
    plist_t profiles = plist_dict_get_item(p, "Profiles");
    if (profiles && plist_get_node_type(profiles) == PLIST_ARRAY && plist_array_get_size(profiles))
        f->profiles = plist_copy(profiles);
    load_seen(&d->seen, plist_dict_get_item(p, "NotNowSeen"));
    plist_t answers = plist_dict_get_item(p, "ManagedListAnswers");
    if (answers && plist_get_node_type(answers) == PLIST_UINT) {
        uint64_t k = 0;
        plist_get_uint_val(answers, &k);
        f->managed_list_answers = k < 1000 ? (int)k : 1000;
    }
    plist_free(p);
    return 1;
}

/* ---- certificates ---- */

static char *pem_text(int is_key, X509 *cert, EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *p = NULL;
    int ok = b && (is_key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_X509(b, cert));
    long n = ok ? BIO_get_mem_data(b, &p) : 0;
    if (n > 0 && (out = malloc((size_t)n + 1))) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

static int read_pem_pair(const char *cert_path, const char *key_path, X509 **cert,
                         EVP_PKEY **key)
{
    FILE *fc = fopen(cert_path, "r");
    FILE *fk = fopen(key_path, "r");
    *cert = fc ? PEM_read_X509(fc, NULL, NULL, NULL) : NULL;
    *key = fk ? PEM_read_PrivateKey(fk, NULL, NULL, NULL) : NULL;
    if (fc)
        fclose(fc);
    if (fk)
        fclose(fk);
    if (*cert && *key && X509_check_private_key(*cert, *key) == 1)
        return 0;
    X509_free(*cert);
    EVP_PKEY_free(*key);
    *cert = NULL;
    *key = NULL;
    ERR_clear_error();
    return -1;
}

/* Issues this device's identity from the CA, as the SCEP server would. */
static int issue_identity(struct devsim_device *d, const struct devsim_opts *o,
                          const struct pki_ca *ca, char **err)
{
    struct pki_issue_opts io = {
        .kind = PKI_CERT_CLIENT,
        .key_type = o->ec_keys ? PKI_KEY_EC_P256 : PKI_KEY_RSA2048,
        .common_name = d->facts.udid,
        .days = d->facts.identity_days ? d->facts.identity_days : 365,
    };
    char *why = NULL;
    if (pki_issue(ca, &io, &d->cert, &d->key, &why) != 0) {
        set_err(err, "cannot issue device certificate: %s", why);
        free(why);
        return -1;
    }
    if (!d->dir[0])
        return 0;
    char cp[4200], kp[4200];
    if (path_in(d, "cert.pem", cp, sizeof cp) || path_in(d, "key.pem", kp, sizeof kp) ||
        pki_write_cert_pem(cp, d->cert) != 0 || pki_write_key_pem(kp, d->key) != 0) {
        set_err(err, "cannot write the device certificate in %s", d->dir);
        return -1;
    }
    return 0;
}

static int take_fixed_identity(struct devsim_device *d, const struct devsim_shared *sh)
{
    if (X509_up_ref(sh->fixed_cert) != 1)
        return -1;
    d->cert = sh->fixed_cert;
    if (EVP_PKEY_up_ref(sh->fixed_key) != 1)
        return -1;
    d->key = sh->fixed_key;
    return 0;
}

static void common_name(X509 *x, char *out, size_t n)
{
    out[0] = '\0';
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)n) < 0)
        out[0] = '\0';
}

static int export_identity(struct devsim_device *d)
{
    unsigned char *der = NULL;
    int n = i2d_X509(d->cert, &der);
    if (n <= 0)
        return -1;
    d->cert_der = malloc((size_t)n);
    if (d->cert_der)
        memcpy(d->cert_der, der, (size_t)n);
    OPENSSL_free(der);
    d->cert_pem = pem_text(0, d->cert, NULL);
    d->key_pem = pem_text(1, NULL, d->key);
    if (!d->cert_der || !d->cert_pem || !d->key_pem)
        return -1;
    d->facts.identity_der = d->cert_der;
    d->facts.identity_der_len = (size_t)n;
    d->facts.identity_cert = d->cert;
    d->facts.identity_key = d->key;
    common_name(d->cert, d->facts.identity_cn, sizeof d->facts.identity_cn);
    return 0;
}

/* Writes name.tmp then renames it over name, so an interrupted run never
 * leaves a half-written identity file. */
static int write_identity_file(const struct devsim_device *d, const char *name, X509 *cert,
                               EVP_PKEY *key, char *final_path, size_t n)
{
    char tmp[4300];
    if (path_in(d, name, final_path, n) != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", final_path);
    /* the pki writers create exclusively: clear what an interrupted run left */
    if (unlink(tmp) != 0 && errno != ENOENT)
        return -1;
    int rc = cert ? pki_write_cert_pem(tmp, cert) : pki_write_key_pem(tmp, key);
    if (rc != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int save_identity(const struct devsim_device *d)
{
    char cp[4200], kp[4200], tmp[4300];
    if (!d->dir[0])
        return 0;
    if (write_identity_file(d, "key.pem", NULL, d->key, kp, sizeof kp) != 0)
        return -1;
    if (write_identity_file(d, "cert.pem", d->cert, NULL, cp, sizeof cp) != 0)
        return -1;
    /* key first: a crash between the renames leaves a pair that does not
     * match, which open_identity reports, rather than a silent mix */
    snprintf(tmp, sizeof tmp, "%s.tmp", kp);
    if (rename(tmp, kp) != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", cp);
    return rename(tmp, cp) == 0 ? 0 : -1;
}

static void drop_identity(struct devsim_device *d)
{
    X509_free(d->cert);
    EVP_PKEY_free(d->key);
    free(d->cert_pem);
    if (d->key_pem) {
        OPENSSL_cleanse(d->key_pem, strlen(d->key_pem));
        free(d->key_pem);
    }
    free(d->cert_der);
    d->cert = NULL;
    d->key = NULL;
    d->cert_pem = d->key_pem = NULL;
    d->cert_der = NULL;
    d->facts.identity_der = NULL;
    d->facts.identity_der_len = 0;
    d->facts.identity_cert = NULL;
    d->facts.identity_key = NULL;
    d->facts.identity_cn[0] = '\0';
}

int devsim_device_set_identity(struct devsim_device *d, X509 *cert, EVP_PKEY *key)
{
    if (!cert || !key || X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        X509_free(cert);
        EVP_PKEY_free(key);
        return -1;
    }
    drop_identity(d);
    d->cert = cert;
    d->key = key;
    if (save_identity(d) != 0)
        return -1;
    return export_identity(d);
}

/* --cert/--key first; then the stored identity; then a fresh one from the CA. */
static int open_identity(struct devsim_device *d, const struct devsim_opts *o,
                         const struct devsim_shared *sh, char **err)
{
    char cp[4200], kp[4200];
    if (sh->fixed_cert) {
        if (take_fixed_identity(d, sh) != 0) {
            set_err(err, "cannot share the --cert identity%s", NULL);
            return -1;
        }
    } else if (d->dir[0] && path_in(d, "cert.pem", cp, sizeof cp) == 0 &&
               path_in(d, "key.pem", kp, sizeof kp) == 0 && access(cp, F_OK) == 0) {
        if (read_pem_pair(cp, kp, &d->cert, &d->key) != 0) {
            set_err(err, "cannot read the stored identity in %s", d->dir);
            return -1;
        }
    } else if (sh->ca) {
        if (issue_identity(d, o, sh->ca, err) != 0)
            return -1;
    } else {
        return 0; /* no identity: plain requests, the server should refuse them */
    }
    if (export_identity(d) != 0) {
        set_err(err, "cannot encode the device identity%s", NULL);
        return -1;
    }
    return 0;
}

static int make_dir(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

struct devsim_device *devsim_device_open(const struct devsim_opts *o,
                                         const struct devsim_shared *sh, int index, char **err)
{
    struct devsim_device *d = calloc(1, sizeof *d);
    if (!d) {
        set_err(err, "out of memory%s", NULL);
        return NULL;
    }
    d->index = index;
    make_facts(&d->facts, o, sh->seed, index);
    d->facts.ca_der = sh->ca_der;
    d->facts.ca_der_len = sh->ca_der_len;
    snprintf(d->facts.ca_cn, sizeof d->facts.ca_cn, "%s", sh->ca_cn);
    if (o->state_dir) {
        int w = snprintf(d->dir, sizeof d->dir, "%s/device-%05d", o->state_dir, index);
        if (w < 0 || (size_t)w >= sizeof d->dir || make_dir(d->dir) != 0) {
            set_err(err, "cannot create state directory under %s", o->state_dir);
            goto fail;
        }
        if (load_state(d) < 0) {
            set_err(err, "cannot read %s/device.plist", d->dir);
            goto fail;
        }
    }
    apply_overrides(&d->facts, o);
    if (open_identity(d, o, sh, err) != 0)
        goto fail;
    return d;
fail:
    devsim_device_free(d);
    return NULL;
}

void devsim_device_free(struct devsim_device *d)
{
    if (!d)
        return;
    plist_free(d->facts.profiles);
    devsim_seen_clear(&d->seen);
    drop_identity(d);
    free(d);
}

/* ---- material shared by the fleet ---- */

static int read_seed_file(const char *path, char seed[65])
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    int ok = fgets(seed, 65, fp) != NULL;
    fclose(fp);
    seed[strcspn(seed, "\r\n")] = '\0';
    return ok && seed[0] ? 0 : -1;
}

static int write_seed_file(const char *path, const char *seed)
{
    FILE *fp = fopen(path, "wx");
    if (!fp)
        return -1;
    int ok = fprintf(fp, "%s\n", seed) > 0;
    return fclose(fp) == 0 && ok ? 0 : -1;
}

/* --seed, else the seed stored with --state, else a new random one (kept in
 * the state directory so the next invocation sees the same fleet). */
static int load_seed(const struct devsim_opts *o, char seed[65], char **err)
{
    char path[4200];
    if (o->seed) {
        snprintf(seed, 65, "%s", o->seed);
        return 0;
    }
    if (o->state_dir) {
        snprintf(path, sizeof path, "%s/%s", o->state_dir, SEED_FILE);
        if (make_dir(o->state_dir) != 0) {
            set_err(err, "cannot create state directory %s", o->state_dir);
            return -1;
        }
        if (read_seed_file(path, seed) == 0)
            return 0;
    }
    if (ids_random_hex(16, seed) != 0) {
        set_err(err, "no randomness%s", NULL);
        return -1;
    }
    if (o->state_dir && write_seed_file(path, seed) != 0 && read_seed_file(path, seed) != 0) {
        set_err(err, "cannot write %s", path);
        return -1;
    }
    return 0;
}

static int load_ca_der(const char *pem_path, struct devsim_shared *sh)
{
    FILE *fp = fopen(pem_path, "r");
    X509 *x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
    if (fp)
        fclose(fp);
    unsigned char *der = NULL;
    int n = x ? i2d_X509(x, &der) : -1;
    if (x)
        common_name(x, sh->ca_cn, sizeof sh->ca_cn);
    X509_free(x);
    if (n > 0 && (sh->ca_der = malloc((size_t)n))) {
        memcpy(sh->ca_der, der, (size_t)n);
        sh->ca_der_len = (size_t)n;
    }
    OPENSSL_free(der);
    ERR_clear_error();
    return sh->ca_der ? 0 : -1;
}

int devsim_shared_load(const struct devsim_opts *o, struct devsim_shared *sh, char **err)
{
    memset(sh, 0, sizeof *sh);
    if (load_seed(o, sh->seed, err) != 0)
        return -1;
    char cp[4200], kp[4200];
    if (o->issue_from) {
        snprintf(cp, sizeof cp, "%s/ca/ca.pem", o->issue_from);
        snprintf(kp, sizeof kp, "%s/ca/ca.key", o->issue_from);
        char *why = NULL;
        sh->ca = pki_ca_load(cp, kp, &why);
        if (!sh->ca) {
            set_err(err, "cannot load the CA to issue from: %s", why);
            free(why);
            return -1;
        }
        load_ca_der(cp, sh); /* for CertificateList; optional */
    }
    if (o->cert_file && read_pem_pair(o->cert_file, o->key_file, &sh->fixed_cert,
                                      &sh->fixed_key) != 0) {
        set_err(err, "cannot load --cert %s with its --key (missing, unreadable or not a pair)",
                o->cert_file);
        return -1;
    }
    if (!sh->ca_der && o->ca_file)
        load_ca_der(o->ca_file, sh);
    return 0;
}

void devsim_shared_clear(struct devsim_shared *sh)
{
    pki_ca_free(sh->ca);
    X509_free(sh->fixed_cert);
    EVP_PKEY_free(sh->fixed_key);
    free(sh->ca_der);
    memset(sh, 0, sizeof *sh);
}
