/* inventory_handlers.c: one small handler per inventory RequestType, turning
 * an Acknowledged answer (PROTOCOL.md §8) into inventory rows: typed values
 * plus the filterable columns for DeviceInformation and SecurityInfo, a row
 * per item for the list answers (certificates parsed from their DER).
 * Dispatched by core/inventory.c; lenient about content (every key may be
 * absent), strict about shape (a list that is not a list is skipped). */
#include "core/inventory.h"

#include <math.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pki/pki.h"
#include "plist/pl.h"
#include "store/sql.h"
#include "util/ids.h"
#include "util/log.h"

/* Seconds between the Unix epoch and Apple's (2001-01-01), which libplist
 * 2.2 counts plist dates from. */
#define APPLE_EPOCH 978307200

/* Strings the handlers make (fingerprints, joined types…) live here until
 * the rows are written. */
struct scratch {
    char **s;
    size_t n, cap;
};

static char *keep(struct scratch *sc, char *str)
{
    if (!str)
        return NULL;
    if (sc->n == sc->cap) {
        size_t c = sc->cap ? sc->cap * 2 : 32;
        char **p = realloc(sc->s, c * sizeof *p);
        if (!p) {
            free(str);
            return NULL;
        }
        sc->s = p;
        sc->cap = c;
    }
    sc->s[sc->n++] = str;
    return str;
}

static void scratch_free(struct scratch *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->s[i]);
    free(sc->s);
}

static plist_t get_typed(plist_t d, const char *key, plist_type t)
{
    plist_t n = d ? plist_dict_get_item(d, key) : NULL;
    return n && plist_get_node_type(n) == t ? n : NULL;
}

static int64_t date_unix(plist_t n)
{
    int32_t sec = 0, usec = 0;
    plist_get_date_val(n, &sec, &usec);
    return (int64_t)sec + APPLE_EPOCH;
}

/* ---- typed values ----------------------------------------------------------- */

/* One plist value as (type, text); the text is malloc'd into sc. */
static int value_of(plist_t n, struct store_inv_value *v, struct scratch *sc)
{
    char buf[64];
    char *text = NULL;
    switch (plist_get_node_type(n)) {
    case PLIST_STRING:
        v->type = "string";
        text = strdup(plist_get_string_ptr(n, NULL));
        break;
    case PLIST_BOOLEAN: {
        uint8_t b = 0;
        plist_get_bool_val(n, &b);
        v->type = "bool";
        text = strdup(b ? "true" : "false");
        break;
    }
    case PLIST_UINT: {
        uint64_t u = 0;
        plist_get_uint_val(n, &u);
        v->type = "int";
        /* libplist 2.2 keeps negative integers as their two's complement */
        snprintf(buf, sizeof buf, "%lld", (long long)(int64_t)u);
        text = strdup(buf);
        break;
    }
    case PLIST_REAL: {
        double d = 0;
        plist_get_real_val(n, &d);
        v->type = "real";
        snprintf(buf, sizeof buf, "%.15g", d);
        text = strdup(buf);
        break;
    }
    case PLIST_DATE:
        v->type = "date";
        snprintf(buf, sizeof buf, "%lld", (long long)date_unix(n));
        text = strdup(buf);
        break;
    case PLIST_DATA: {
        char *p = NULL;
        uint64_t len = 0;
        plist_get_data_val(n, &p, &len);
        v->type = "data";
        text = ids_b64_encode((const uint8_t *)p, (size_t)len);
        free(p);
        break;
    }
    case PLIST_ARRAY:
    case PLIST_DICT: {
        size_t len = 0;
        v->type = "plist";
        if (pl_to_xml(n, &text, &len) < 0)
            text = NULL;
        break;
    }
    default:
        return 1; /* keys, UIDs: not part of an answer */
    }
    if (!text || !keep(sc, text))
        return -1;
    v->value = text;
    return 0;
}

/* Every key of dict as typed values (names point into the plist). */
static int dict_values(plist_t dict, struct store_inv_value **out, size_t *n, struct scratch *sc)
{
    *out = NULL;
    *n = 0;
    uint32_t size = plist_dict_get_size(dict);
    struct store_inv_value *v = calloc(size ? size : 1, sizeof *v);
    if (!v)
        return -1;
    plist_dict_iter it = NULL;
    plist_dict_new_iter(dict, &it);
    size_t k = 0;
    for (;;) {
        char *key = NULL;
        plist_t val = NULL;
        plist_dict_next_item(dict, it, &key, &val);
        if (!val) {
            free(key);
            break;
        }
        int rc = key ? value_of(val, &v[k], sc) : 1;
        if (rc == 0 && k < size) {
            v[k].name = keep(sc, key);
            if (!v[k].name)
                rc = -1;
            else
                k++;
        } else {
            free(key);
        }
        if (rc < 0) {
            free(it);
            free(v);
            return -1;
        }
    }
    free(it);
    *out = v;
    *n = k;
    return 0;
}

/* ---- DeviceInformation -------------------------------------------------------- */

/* Values that change by themselves all day: kept current, not in history. */
static const char *const device_quiet[] = {
    "BatteryLevel", "AvailableDeviceCapacity", "LastCloudBackupDate", "IsDoNotDisturbInEffect",
    "IsRoaming", "IsNetworkTethered", "DevicePropertiesAttestation", "PushToken", NULL,
};

static int64_t real_of(plist_t d, const char *key, double scale, int *ok)
{
    plist_t n = d ? plist_dict_get_item(d, key) : NULL;
    double v = 0;
    *ok = 0;
    if (n && plist_get_node_type(n) == PLIST_REAL)
        plist_get_real_val(n, &v);
    else if (n && plist_get_node_type(n) == PLIST_UINT) {
        uint64_t u = 0;
        plist_get_uint_val(n, &u);
        v = (double)u;
    } else
        return -1;
    *ok = 1;
    return (int64_t)llround(v * scale);
}

static void device_columns(plist_t q, struct store_inv_device *d)
{
    memset(d, 0, sizeof *d);
    d->os_version = pl_str(q, "OSVersion");
    d->os_num = inventory_os_num(d->os_version);
    d->build_version = pl_str(q, "BuildVersion");
    d->model = pl_str(q, "Model");
    d->model_name = pl_str(q, "ModelName");
    d->product_name = pl_str(q, "ProductName");
    d->serial_number = pl_str(q, "SerialNumber");
    d->device_name = pl_str(q, "DeviceName");
    plist_t sup = get_typed(q, "IsSupervised", PLIST_BOOLEAN);
    d->supervised = sup ? pl_bool(q, "IsSupervised", 0) : -1;
    int ok = 0;
    int64_t battery = real_of(q, "BatteryLevel", 100.0, &ok);
    /* -1.0 means the device does not know */
    d->battery_pct = ok && battery >= 0 && battery <= 100 ? (int)battery : -1;
    /* GB base 10 → MB */
    d->capacity_mb = real_of(q, "DeviceCapacity", 1000.0, &ok);
    if (!ok || d->capacity_mb < 0)
        d->capacity_mb = -1;
    d->available_mb = real_of(q, "AvailableDeviceCapacity", 1000.0, &ok);
    if (!ok || d->available_mb < 0)
        d->available_mb = -1;
}

static void log_skip(const char *id, const char *type, const char *why)
{
    char qi[160];
    log_warn("inventory answer skipped", "id=%s type=%s reason=\"%s\"",
             log_quote(qi, sizeof qi, id), type, why);
}

int inventory_device_row(plist_t report, struct store_inv_device *d)
{
    plist_t q = get_typed(report, "QueryResponses", PLIST_DICT);
    if (!q)
        return -1;
    device_columns(q, d);
    return 0;
}

int inventory_on_device_information(struct store *s, const char *id, plist_t command,
                                    plist_t report, int64_t now)
{
    (void)command;
    plist_t q = get_typed(report, "QueryResponses", PLIST_DICT);
    if (!q) {
        log_skip(id, "DeviceInformation", "no QueryResponses dictionary");
        return STORE_OK;
    }
    struct scratch sc = {0};
    struct store_inv_value *v = NULL;
    size_t n = 0;
    if (dict_values(q, &v, &n, &sc) < 0) {
        scratch_free(&sc);
        return sql_out_of_memory("inventory.device_information");
    }
    struct store_inv_device d;
    device_columns(q, &d);
    /* Partial answers (a few queries) update just those values. */
    int rc = inventory_put_device_values(s, id, &d, v, n, device_quiet, now);
    free(v);
    scratch_free(&sc);
    return rc;
}

/* ---- SecurityInfo ------------------------------------------------------------- */

static int opt_bool(plist_t d, const char *key)
{
    return get_typed(d, key, PLIST_BOOLEAN) ? pl_bool(d, key, 0) : -1;
}

int inventory_on_security_info(struct store *s, const char *id, plist_t command, plist_t report,
                               int64_t now)
{
    (void)command;
    plist_t si = get_typed(report, "SecurityInfo", PLIST_DICT);
    if (!si) {
        log_skip(id, "SecurityInfo", "no SecurityInfo dictionary");
        return STORE_OK;
    }
    struct scratch sc = {0};
    struct store_inv_value *v = NULL;
    size_t n = 0;
    if (dict_values(si, &v, &n, &sc) < 0) {
        scratch_free(&sc);
        return sql_out_of_memory("inventory.security_info");
    }
    plist_t caps = get_typed(si, "HardwareEncryptionCaps", PLIST_UINT);
    int rc = inventory_put_values(s, id, "security", v, n, 1, NULL, now);
    if (rc == STORE_OK)
        rc = store_inventory_security_set(s, id, opt_bool(si, "PasscodePresent"),
                                          opt_bool(si, "PasscodeCompliant"),
                                          caps ? (int)pl_int(si, "HardwareEncryptionCaps", 0) : -1,
                                          now);
    free(v);
    scratch_free(&sc);
    return rc;
}

/* ---- cells ---------------------------------------------------------------------- */

static struct store_inv_cell c_text(const char *t)
{
    struct store_inv_cell c = {t, 0, 0};
    return c;
}

static struct store_inv_cell c_num(int64_t v)
{
    struct store_inv_cell c = {NULL, v, 1};
    return c;
}

static struct store_inv_cell c_str(plist_t d, const char *key)
{
    return c_text(pl_str(d, key));
}

static struct store_inv_cell c_int(plist_t d, const char *key)
{
    if (get_typed(d, key, PLIST_UINT))
        return c_num(pl_int(d, key, 0));
    return c_text(NULL);
}

static struct store_inv_cell c_bool(plist_t d, const char *key)
{
    if (get_typed(d, key, PLIST_BOOLEAN))
        return c_num(pl_bool(d, key, 0));
    return c_text(NULL);
}

static struct store_inv_cell c_date(plist_t d, const char *key)
{
    plist_t n = get_typed(d, key, PLIST_DATE);
    return n ? c_num(date_unix(n)) : c_text(NULL);
}

/* A true bool request key: the answer then covers part of the list only. */
static int cmd_flag(plist_t command, const char *key)
{
    return command && pl_bool(command, key, 0);
}

static int cmd_has_list(plist_t command, const char *key)
{
    plist_t a = get_typed(command, key, PLIST_ARRAY);
    return a && plist_array_get_size(a) > 0;
}

/* The answer's array under key, or NULL after logging. */
static plist_t answer_array(const char *id, const char *type, plist_t report, const char *key)
{
    plist_t a = get_typed(report, key, PLIST_ARRAY);
    if (!a)
        log_skip(id, type, "the answer has no list");
    return a;
}

/* ---- certificates (DER) ----------------------------------------------------------- */

static char *name_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return NULL;
    char *out = NULL;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, p, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(b);
    return out;
}

static int64_t asn1_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static char *serial_hex(X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (!hex)
        return NULL;
    char *out = strdup(hex);
    OPENSSL_free(hex);
    for (char *p = out; p && *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    return out;
}

/* The parts of a DER certificate the inventory keeps (cells 0,2..6 of a
 * certificates row); the fingerprint is of the bytes even when they do not
 * parse, so the row still has a key. */
static void cert_cells(const uint8_t *der, size_t len, struct store_inv_cell *row,
                       struct scratch *sc)
{
    char fp[65];
    ids_sha256_hex(der, len, fp);
    row[0] = c_text(keep(sc, strdup(fp)));
    X509 *x = pki_cert_from_der(der, len);
    if (!x)
        return;
    row[2] = c_text(keep(sc, name_text(X509_get_subject_name(x))));
    row[3] = c_text(keep(sc, name_text(X509_get_issuer_name(x))));
    row[4] = c_text(keep(sc, serial_hex(x)));
    row[5] = c_num(asn1_unix(X509_get0_notBefore(x)));
    row[6] = c_num(asn1_unix(X509_get0_notAfter(x)));
    X509_free(x);
}

int inventory_on_certificate_list(struct store *s, const char *id, plist_t command,
                                  plist_t report, int64_t now)
{
    plist_t a = answer_array(id, "CertificateList", report, "CertificateList");
    if (!a)
        return STORE_OK;
    uint32_t n = plist_array_get_size(a);
    struct store_inv_cell *cells = calloc((size_t)n * 8 + 1, sizeof *cells);
    struct scratch sc = {0};
    if (!cells)
        return sql_out_of_memory("inventory.certificate_list");
    size_t rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t e = plist_array_get_item(a, i);
        size_t len = 0;
        const uint8_t *der = pl_data(e, "Data", &len);
        if (plist_get_node_type(e) != PLIST_DICT || !der || !len)
            continue; /* no certificate bytes: nothing to key it by */
        struct store_inv_cell *row = &cells[rows * 8];
        for (int c = 0; c < 8; c++)
            row[c] = c_text(NULL);
        cert_cells(der, len, row, &sc);
        row[1] = c_str(e, "CommonName");
        row[7] = c_bool(e, "IsIdentity");
        if (row[0].text)
            rows++;
    }
    int rc = inventory_put_list(s, id, STORE_INV_CERTIFICATES, cells, rows,
                                !cmd_flag(command, "ManagedOnly"), now);
    free(cells);
    scratch_free(&sc);
    return rc;
}

/* ---- ProfileList ------------------------------------------------------------------ */

/* PayloadContent's PayloadTypes, distinct, comma-separated. */
static char *payload_types(plist_t profile)
{
    plist_t content = get_typed(profile, "PayloadContent", PLIST_ARRAY);
    uint32_t n = content ? plist_array_get_size(content) : 0;
    size_t cap = 1;
    for (uint32_t i = 0; i < n; i++) {
        const char *t = pl_str(plist_array_get_item(content, i), "PayloadType");
        cap += t ? strlen(t) + 1 : 0;
    }
    char *out = calloc(cap, 1);
    if (!out)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        const char *t = pl_str(plist_array_get_item(content, i), "PayloadType");
        if (!t || !*t)
            continue;
        size_t tl = strlen(t);
        int dup = 0;
        for (const char *p = out; *p && !dup; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p))
            dup = strncmp(p, t, tl) == 0 && (p[tl] == ',' || p[tl] == '\0');
        if (dup)
            continue;
        if (*out)
            strcat(out, ",");
        strcat(out, t);
    }
    return out;
}

/* The subject of the first signer certificate, or NULL (unsigned). */
static char *signer_subject(plist_t profile)
{
    plist_t signers = get_typed(profile, "SignerCertificates", PLIST_ARRAY);
    plist_t first = signers && plist_array_get_size(signers) ? plist_array_get_item(signers, 0) : NULL;
    if (!first || plist_get_node_type(first) != PLIST_DATA)
        return NULL;
    char *p = NULL;
    uint64_t len = 0;
    plist_get_data_val(first, &p, &len);
    X509 *x = p ? pki_cert_from_der((const uint8_t *)p, (size_t)len) : NULL;
    free(p);
    char *out = x ? name_text(X509_get_subject_name(x)) : NULL;
    X509_free(x);
    return out;
}

int inventory_on_profile_list(struct store *s, const char *id, plist_t command, plist_t report,
                              int64_t now)
{
    plist_t a = answer_array(id, "ProfileList", report, "ProfileList");
    if (!a)
        return STORE_OK;
    uint32_t n = plist_array_get_size(a);
    struct store_inv_cell *cells = calloc((size_t)n * 12 + 1, sizeof *cells);
    struct scratch sc = {0};
    if (!cells)
        return sql_out_of_memory("inventory.profile_list");
    size_t rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t e = plist_array_get_item(a, i);
        if (plist_get_node_type(e) != PLIST_DICT || !pl_str(e, "PayloadIdentifier"))
            continue;
        struct store_inv_cell *row = &cells[rows++ * 12];
        row[0] = c_str(e, "PayloadIdentifier");
        row[1] = c_str(e, "PayloadUUID");
        row[2] = c_int(e, "PayloadVersion");
        row[3] = c_str(e, "PayloadDisplayName");
        row[4] = c_str(e, "PayloadOrganization");
        row[5] = c_str(e, "PayloadDescription");
        row[6] = c_bool(e, "IsManaged");
        row[7] = c_bool(e, "IsEncrypted");
        row[8] = c_bool(e, "PayloadRemovalDisallowed");
        row[9] = c_bool(e, "HasRemovalPasscode");
        row[10] = c_text(keep(&sc, payload_types(e)));
        row[11] = c_text(keep(&sc, signer_subject(e)));
    }
    int rc = inventory_put_list(s, id, STORE_INV_PROFILES, cells, rows,
                                !cmd_flag(command, "ManagedOnly"), now);
    free(cells);
    scratch_free(&sc);
    return rc;
}

/* ---- InstalledApplicationList --------------------------------------------------------- */

int inventory_on_installed_apps(struct store *s, const char *id, plist_t command,
                                plist_t report, int64_t now)
{
    plist_t a = answer_array(id, "InstalledApplicationList", report, "InstalledApplicationList");
    if (!a)
        return STORE_OK;
    uint32_t n = plist_array_get_size(a);
    struct store_inv_cell *cells = calloc((size_t)n * 8 + 1, sizeof *cells);
    if (!cells)
        return sql_out_of_memory("inventory.installed_apps");
    size_t rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t e = plist_array_get_item(a, i);
        if (plist_get_node_type(e) != PLIST_DICT || !pl_str(e, "Identifier"))
            continue;
        struct store_inv_cell *row = &cells[rows++ * 8];
        row[0] = c_str(e, "Identifier");
        row[1] = c_str(e, "Name");
        row[2] = c_str(e, "Version");
        row[3] = c_str(e, "ShortVersion");
        row[4] = c_int(e, "BundleSize");
        row[5] = c_int(e, "DynamicSize");
        row[6] = c_int(e, "ExternalVersionIdentifier");
        row[7] = c_bool(e, "Installing");
    }
    int partial = cmd_has_list(command, "Identifiers") || cmd_flag(command, "ManagedAppsOnly");
    int rc = inventory_put_list(s, id, STORE_INV_APPS, cells, rows, !partial, now);
    free(cells);
    return rc;
}

/* ---- ManagedApplicationList ------------------------------------------------------------- */

int inventory_on_managed_apps(struct store *s, const char *id, plist_t command, plist_t report,
                              int64_t now)
{
    plist_t d = get_typed(report, "ManagedApplicationList", PLIST_DICT);
    if (!d) {
        log_skip(id, "ManagedApplicationList", "no ManagedApplicationList dictionary");
        return STORE_OK;
    }
    uint32_t n = plist_dict_get_size(d);
    struct store_inv_cell *cells = calloc((size_t)n * 9 + 1, sizeof *cells);
    struct scratch sc = {0};
    if (!cells)
        return sql_out_of_memory("inventory.managed_apps");
    plist_dict_iter it = NULL;
    plist_dict_new_iter(d, &it);
    size_t rows = 0;
    while (rows < n) {
        char *key = NULL;
        plist_t e = NULL;
        plist_dict_next_item(d, it, &key, &e);
        if (!e) {
            free(key);
            break;
        }
        if (!key || plist_get_node_type(e) != PLIST_DICT || !keep(&sc, key)) {
            if (key && plist_get_node_type(e) != PLIST_DICT)
                free(key);
            continue;
        }
        struct store_inv_cell *row = &cells[rows++ * 9];
        row[0] = c_text(key);
        row[1] = c_str(e, "Status");
        row[2] = c_int(e, "ManagementFlags");
        row[3] = c_int(e, "ExternalVersionIdentifier");
        row[4] = c_bool(e, "HasConfiguration");
        row[5] = c_bool(e, "HasFeedback");
        row[6] = c_bool(e, "IsValidated");
        row[7] = c_str(e, "UnusedRedemptionCode");
        row[8] = c_num(now);
    }
    free(it);
    int rc = inventory_put_list(s, id, STORE_INV_MANAGED_APPS, cells, rows,
                                !cmd_has_list(command, "Identifiers"), now);
    free(cells);
    scratch_free(&sc);
    return rc;
}

/* ---- ProvisioningProfileList ------------------------------------------------------------ */

int inventory_on_provisioning_profiles(struct store *s, const char *id, plist_t command,
                                       plist_t report, int64_t now)
{
    plist_t a = answer_array(id, "ProvisioningProfileList", report, "ProvisioningProfileList");
    if (!a)
        return STORE_OK;
    uint32_t n = plist_array_get_size(a);
    struct store_inv_cell *cells = calloc((size_t)n * 3 + 1, sizeof *cells);
    if (!cells)
        return sql_out_of_memory("inventory.provisioning");
    size_t rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t e = plist_array_get_item(a, i);
        if (plist_get_node_type(e) != PLIST_DICT || !pl_str(e, "UUID"))
            continue;
        struct store_inv_cell *row = &cells[rows++ * 3];
        row[0] = c_str(e, "UUID");
        row[1] = c_str(e, "Name");
        row[2] = c_date(e, "ExpiryDate");
    }
    int rc = inventory_put_list(s, id, STORE_INV_PROVISIONING, cells, rows,
                                !cmd_flag(command, "ManagedOnly"), now);
    free(cells);
    return rc;
}

/* ---- Restrictions ------------------------------------------------------------------------ */

/* One restriction's value as text: a bool or integer `value`, or the
 * comma-joined strings of `values`. */
static char *restriction_value(plist_t entry)
{
    plist_t v = entry ? plist_dict_get_item(entry, "value") : NULL;
    char buf[32];
    if (v && plist_get_node_type(v) == PLIST_BOOLEAN) {
        uint8_t b = 0;
        plist_get_bool_val(v, &b);
        return strdup(b ? "true" : "false");
    }
    if (v && plist_get_node_type(v) == PLIST_UINT) {
        uint64_t u = 0;
        plist_get_uint_val(v, &u);
        snprintf(buf, sizeof buf, "%lld", (long long)(int64_t)u);
        return strdup(buf);
    }
    plist_t arr = get_typed(entry, "values", PLIST_ARRAY);
    if (!arr)
        return NULL;
    uint32_t n = plist_array_get_size(arr);
    size_t cap = 1;
    for (uint32_t i = 0; i < n; i++) {
        const char *t = plist_get_string_ptr(plist_array_get_item(arr, i), NULL);
        cap += t ? strlen(t) + 1 : 0;
    }
    char *out = calloc(cap, 1);
    for (uint32_t i = 0; out && i < n; i++) {
        const char *t = plist_get_string_ptr(plist_array_get_item(arr, i), NULL);
        if (!t)
            continue;
        if (*out)
            strcat(out, ",");
        strcat(out, t);
    }
    return out;
}

struct rows {
    struct store_inv_cell *cells;
    size_t n, cap;
};

static int add_restriction(struct rows *r, const char *scope, const char *kind, const char *name,
                           const char *value)
{
    if (r->n == r->cap) {
        size_t c = r->cap ? r->cap * 2 : 64;
        struct store_inv_cell *p = realloc(r->cells, c * 4 * sizeof *p);
        if (!p)
            return -1;
        r->cells = p;
        r->cap = c;
    }
    struct store_inv_cell *row = &r->cells[r->n++ * 4];
    row[0] = c_text(scope);
    row[1] = c_text(kind);
    row[2] = c_text(name);
    row[3] = c_text(value);
    return 0;
}

static const char *const restriction_kinds[] = {"restrictedBool", "restrictedValue",
                                                "intersection", "union"};

/* Rows for one restrictions dict ({restrictedBool{…}, restrictedValue{…}, …}). */
static int scope_rows(plist_t dict, const char *scope, struct rows *r, struct scratch *sc)
{
    for (size_t k = 0; k < sizeof restriction_kinds / sizeof restriction_kinds[0]; k++) {
        plist_t group = get_typed(dict, restriction_kinds[k], PLIST_DICT);
        if (!group)
            continue;
        plist_dict_iter it = NULL;
        plist_dict_new_iter(group, &it);
        for (;;) {
            char *name = NULL;
            plist_t entry = NULL;
            plist_dict_next_item(group, it, &name, &entry);
            if (!entry) {
                free(name);
                break;
            }
            if (!name || !keep(sc, name))
                continue;
            const char *value = keep(sc, restriction_value(entry));
            if (add_restriction(r, scope, restriction_kinds[k], name, value) < 0) {
                free(it);
                return -1;
            }
        }
        free(it);
    }
    return 0;
}

/* allowAppInstallation false turns the App Store off (InstallApplication
 * then fails with AppStoreDisabled). */
static int app_store_allowed(plist_t global)
{
    plist_t b = get_typed(global, "restrictedBool", PLIST_DICT);
    plist_t e = get_typed(b, "allowAppInstallation", PLIST_DICT);
    plist_t v = get_typed(e, "value", PLIST_BOOLEAN);
    uint8_t on = 1;
    if (v)
        plist_get_bool_val(v, &on);
    return on ? 1 : 0;
}

int inventory_on_restrictions(struct store *s, const char *id, plist_t command, plist_t report,
                              int64_t now)
{
    (void)command;
    plist_t global = get_typed(report, "GlobalRestrictions", PLIST_DICT);
    plist_t per = get_typed(report, "ProfileRestrictions", PLIST_DICT);
    struct rows r = {0};
    struct scratch sc = {0};
    int bad = global && scope_rows(global, "global", &r, &sc) < 0;
    if (!bad && per) {
        plist_dict_iter it = NULL;
        plist_dict_new_iter(per, &it);
        for (;;) {
            char *pid = NULL;
            plist_t d = NULL;
            plist_dict_next_item(per, it, &pid, &d);
            if (!d) {
                free(pid);
                break;
            }
            if (!pid || !keep(&sc, pid))
                continue;
            if (plist_get_node_type(d) == PLIST_DICT && scope_rows(d, pid, &r, &sc) < 0) {
                bad = 1;
                break;
            }
        }
        free(it);
    }
    int rc = bad ? sql_out_of_memory("inventory.restrictions")
                 : inventory_put_list(s, id, STORE_INV_RESTRICTIONS, r.cells, r.n, 1, now);
    if (rc == STORE_OK)
        rc = store_inventory_app_store_set(s, id, app_store_allowed(global));
    free(r.cells);
    scratch_free(&sc);
    return rc;
}
