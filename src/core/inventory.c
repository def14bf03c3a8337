/* inventory.c: the inventory service behind inventory.h: the RequestType →
 * handler table with its registration point, the connect endpoint's result
 * hook, history of what changed, and the inventory set queued after
 * enrollment and on schedule, deduplicated against what already waits.
 * The parsers themselves are in inventory_handlers.c. */
#include "core/inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/compliance.h"
#include "core/queue.h"
#include "plist/pl.h"
#include "store/sql.h"
#include "util/log.h"

/* ---- the handler table ---------------------------------------------------- */

struct handler_row {
    const char *request_type;
    inventory_handler fn;
};

static const struct handler_row builtin[] = {
    {"DeviceInformation", inventory_on_device_information},
    {"SecurityInfo", inventory_on_security_info},
    {"ProfileList", inventory_on_profile_list},
    {"CertificateList", inventory_on_certificate_list},
    {"InstalledApplicationList", inventory_on_installed_apps},
    {"ManagedApplicationList", inventory_on_managed_apps},
    {"ProvisioningProfileList", inventory_on_provisioning_profiles},
    {"Restrictions", inventory_on_restrictions},
};

/* Handlers other modules add at start-up (inventory_register). Written only
 * before the server starts its threads, read-only afterwards: a start-up
 * table, not shared mutable state. Registered rows win over built-ins. */
#define EXTRA_MAX 32
static struct {
    char request_type[QUEUE_REQUEST_TYPE_MAX];
    inventory_handler fn;
} extra[EXTRA_MAX];
static size_t extra_n;

int inventory_register(const char *request_type, inventory_handler h)
{
    if (!request_type || !*request_type || strlen(request_type) >= QUEUE_REQUEST_TYPE_MAX || !h)
        return -1;
    for (size_t i = 0; i < extra_n; i++)
        if (strcmp(extra[i].request_type, request_type) == 0) {
            extra[i].fn = h;
            return 0;
        }
    if (extra_n == EXTRA_MAX)
        return -1;
    snprintf(extra[extra_n].request_type, sizeof extra[extra_n].request_type, "%s", request_type);
    extra[extra_n].fn = h;
    extra_n++;
    return 0;
}

inventory_handler inventory_handler_for(const char *request_type)
{
    if (!request_type)
        return NULL;
    for (size_t i = 0; i < extra_n; i++)
        if (strcmp(extra[i].request_type, request_type) == 0)
            return extra[i].fn;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(builtin[i].request_type, request_type) == 0)
            return builtin[i].fn;
    return NULL;
}

size_t inventory_handler_types(const char **types, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++, n++)
        if (n < max)
            types[n] = builtin[i].request_type;
    for (size_t i = 0; i < extra_n; i++, n++)
        if (n < max)
            types[n] = extra[i].request_type;
    return n;
}

/* ---- the result hook ------------------------------------------------------- */

int inventory_report_command(struct store *s, const char *id, const char *status,
                             plist_t report, const char *type, const uint8_t *payload,
                             size_t len, int compliance, int64_t now)
{
    if (!status || strcmp(status, "Acknowledged") != 0 || !type)
        return STORE_OK;
    inventory_handler h = inventory_handler_for(type);
    if (!h)
        return STORE_OK;
    const char *err = NULL;
    /* no payload: the report's statement did not read it (store.h's
     * store_report_check); handlers take a NULL command */
    plist_t cmd_root = payload ? pl_parse_dict(payload, len, &err) : NULL;
    plist_t cmd = cmd_root ? plist_dict_get_item(cmd_root, "Command") : NULL;
    int nested = 0;
    int rc = sql_atomic_begin(s, "inventory.report", &nested);
    if (rc == STORE_OK) {
        rc = h(s, id, cmd, report, now);
        rc = sql_atomic_end(s, nested, rc, "inventory.report");
    }
    if (rc != STORE_OK) {
        char qi[160];
        log_warn("inventory not updated", "id=%s type=%s rc=%d", log_quote(qi, sizeof qi, id),
                 type, rc);
    } else if (compliance) {
        compliance_on_inventory(s, id, type, now); /* logs its own failures */
    }
    plist_free(cmd_root);
    return rc;
}

int inventory_report(struct store *s, const char *id, const char *command_uuid,
                     const char *status, plist_t report, int64_t now)
{
    if (!status || strcmp(status, "Acknowledged") != 0 || !command_uuid)
        return STORE_OK;
    char *type = NULL;
    uint8_t *payload = NULL;
    size_t len = 0;
    int rc = store_inventory_command(s, command_uuid, &type, &payload, &len);
    if (rc == STORE_NOTFOUND)
        return STORE_OK; /* a report for a command we never sent: already logged */
    if (rc != STORE_OK)
        return rc;
    rc = inventory_report_command(s, id, status, report, type, payload, len, 1, now);
    free(type);
    free(payload);
    return rc;
}

/* ---- history ------------------------------------------------------------------ */

/* Marks a section reported (its mark in "reported", dated with the first
 * answer): later answers are then compared with what is stored, while the
 * first is a baseline, not a change. */
static int mark_reported(struct store *s, const char *id, const char *section, int64_t now)
{
    char when[24];
    snprintf(when, sizeof when, "%lld", (long long)now);
    struct store_inv_value mark = {(char *)section, "date", when};
    return store_inventory_values_put(s, id, "reported", &mark, 1, 0, now);
}

/* Whether a section was reported before (see mark_reported), marking it
 * now if not. */
static int first_report(struct store *s, const char *id, const char *section, int64_t now,
                        int *first)
{
    struct store_inv_value *v = NULL;
    size_t n = 0;
    int rc = store_inventory_values_get(s, id, "reported", &v, &n);
    if (rc != STORE_OK)
        return rc;
    *first = 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, section) == 0)
            *first = 0;
    store_inv_values_free(v, n);
    return *first ? mark_reported(s, id, section, now) : STORE_OK;
}

/* A cell as text into buf (numbers formatted); NULL for a null cell. */
static const char *cell_text(const struct store_inv_cell *c, char *buf, size_t n)
{
    if (c->is_num) {
        snprintf(buf, n, "%lld", (long long)c->num);
        return buf;
    }
    return c->text;
}

/* The key of a row: its key columns joined by '/'. */
static void row_key(const struct store_inv_shape *sh, char *const *text, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sh->key_cols && o < n; k++)
        o += (size_t)snprintf(out + o, n - o, "%s%s", k ? "/" : "", text[k] ? text[k] : "");
}

static int same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

#define KEY_MAX 1024

/* History rows for the new rows against the old table. */
static int list_history(struct store *s, const char *id, const struct store_inv_shape *sh,
                        const struct store_inv_table *old, const struct store_inv_cell *cells,
                        size_t nrows, int replace, int64_t now)
{
    char key[KEY_MAX], okey[KEY_MAX], buf[8][32];
    char *newtext[16];
    int rc = STORE_OK;
    char *seen = calloc(old->nrows + 1, 1);
    if (!seen)
        return sql_out_of_memory("inventory.history");
    for (size_t r = 0; rc == STORE_OK && r < nrows; r++) {
        for (size_t c = 0; c < sh->ncols && c < 16; c++)
            newtext[c] = (char *)cell_text(&cells[r * sh->ncols + c], buf[c % 8], sizeof buf[0]);
        row_key(sh, newtext, key, sizeof key);
        const char *nv = newtext[sh->value_col];
        char nvcopy[256];
        snprintf(nvcopy, sizeof nvcopy, "%s", nv ? nv : "");
        size_t o;
        for (o = 0; o < old->nrows; o++) {
            row_key(sh, &old->cells[o * sh->ncols], okey, sizeof okey);
            if (strcmp(key, okey) == 0)
                break;
        }
        if (o == old->nrows) {
            rc = store_inventory_history_add(s, id, sh->name, key, "added", NULL, nv ? nvcopy : NULL,
                                             now);
            continue;
        }
        seen[o] = 1;
        const char *ov = old->cells[o * sh->ncols + sh->value_col];
        if (!same(ov, nv ? nvcopy : NULL))
            rc = store_inventory_history_add(s, id, sh->name, key, "changed", ov,
                                             nv ? nvcopy : NULL, now);
    }
    for (size_t o = 0; replace && rc == STORE_OK && o < old->nrows; o++) {
        if (seen[o])
            continue;
        row_key(sh, &old->cells[o * sh->ncols], okey, sizeof okey);
        rc = store_inventory_history_add(s, id, sh->name, okey, "removed",
                                         old->cells[o * sh->ncols + sh->value_col], NULL, now);
    }
    free(seen);
    return rc;
}

/* Whether writing the new rows would leave the table as it is: each has an
 * equal old row (every column), and with replace no old row goes. */
static int rows_unchanged(const struct store_inv_shape *sh, const struct store_inv_table *old,
                          const struct store_inv_cell *cells, size_t nrows, int replace)
{
    if (replace && old->nrows != nrows)
        return 0;
    char buf[32];
    for (size_t r = 0; r < nrows; r++) {
        size_t o;
        for (o = 0; o < old->nrows; o++) {
            size_t c;
            for (c = 0; c < sh->ncols; c++) {
                const char *nv = cell_text(&cells[r * sh->ncols + c], buf, sizeof buf);
                if (!same(old->cells[o * sh->ncols + c], nv))
                    break;
            }
            if (c == sh->ncols)
                break;
        }
        if (o == old->nrows)
            return 0;
    }
    return 1;
}

/* An answer that repeats the stored rows writes nothing but its history
 * (none). */
int inventory_put_list(struct store *s, const char *id, enum store_inv_list list,
                       const struct store_inv_cell *cells, size_t nrows, int replace,
                       int64_t now)
{
    const struct store_inv_shape *sh = store_inventory_shape(list);
    if (!sh)
        return STORE_ERR;
    int first = 0;
    int rc = first_report(s, id, sh->name, now, &first);
    struct store_inv_table *old = NULL;
    if (rc == STORE_OK && !first)
        rc = store_inventory_rows_get(s, id, list, INT32_MAX, &old);
    if (rc == STORE_OK && !(old && rows_unchanged(sh, old, cells, nrows, replace)))
        rc = store_inventory_rows_put(s, id, list, cells, nrows, replace);
    if (rc == STORE_OK && old)
        rc = list_history(s, id, sh, old, cells, nrows, replace, now);
    store_inv_table_free(old);
    return rc;
}

static int quiet_key(const char *const *quiet, const char *name)
{
    for (size_t i = 0; quiet && quiet[i]; i++)
        if (strcmp(quiet[i], name) == 0)
            return 1;
    return 0;
}

static const struct store_inv_value *find_value(const struct store_inv_value *v, size_t n,
                                                const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

/* The values of v[0..n) that differ from old (added or changed), copied
 * into *out (the strings are v's, not copied); with replace, *removed is
 * set when old has a value v lacks. */
static int changed_values(const struct store_inv_value *v, size_t n,
                          const struct store_inv_value *old, size_t nold, int replace,
                          struct store_inv_value **out, size_t *nout, int *removed)
{
    *out = NULL;
    *nout = 0;
    *removed = 0;
    for (size_t i = 0; replace && i < nold; i++)
        if (!find_value(v, n, old[i].name))
            *removed = 1;
    struct store_inv_value *c = malloc((n ? n : 1) * sizeof *c);
    if (!c)
        return sql_out_of_memory("inventory.values");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct store_inv_value *o = find_value(old, nold, v[i].name);
        if (!o || !same(o->type, v[i].type) || !same(o->value, v[i].value))
            c[k++] = v[i];
    }
    *out = c;
    *nout = k;
    return STORE_OK;
}

/* History rows for the values that changed against old. */
static int values_history(struct store *s, const char *id, const char *section,
                          const struct store_inv_value *v, size_t n,
                          const struct store_inv_value *old, size_t nold, int replace,
                          const char *const *quiet, int64_t now)
{
    int rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        if (quiet_key(quiet, v[i].name))
            continue;
        const struct store_inv_value *o = find_value(old, nold, v[i].name);
        if (!o)
            rc = store_inventory_history_add(s, id, section, v[i].name, "added", NULL, v[i].value,
                                             now);
        else if (!same(o->value, v[i].value))
            rc = store_inventory_history_add(s, id, section, v[i].name, "changed", o->value,
                                             v[i].value, now);
    }
    for (size_t i = 0; rc == STORE_OK && replace && i < nold; i++)
        if (!quiet_key(quiet, old[i].name) && !find_value(v, n, old[i].name))
            rc = store_inventory_history_add(s, id, section, old[i].name, "removed", old[i].value,
                                             NULL, now);
    return rc;
}

/* The writes of an answer against what was read (old, reported; rc is the
 * read's): only what differs is written, so an answer that repeats the last
 * one writes nothing here. (A value's updated_at is therefore when it last
 * changed.) Frees old. */
static int put_values_read(struct store *s, const char *id, const char *section,
                           const struct store_inv_value *v, size_t n, int replace,
                           const char *const *quiet, int64_t now, int rc,
                           struct store_inv_value *old, size_t nold, int reported)
{
    struct store_inv_value *changed = NULL;
    size_t nchanged = 0;
    int removed = 0;
    if (rc == STORE_OK)
        rc = changed_values(v, n, old, nold, replace, &changed, &nchanged, &removed);
    if (rc == STORE_OK && !reported)
        rc = mark_reported(s, id, section, now);
    /* a value gone from a full answer: the section is replaced whole */
    if (rc == STORE_OK && removed)
        rc = store_inventory_values_put(s, id, section, v, n, 1, now);
    else if (rc == STORE_OK && nchanged)
        rc = store_inventory_values_put(s, id, section, changed, nchanged, 0, now);
    if (rc == STORE_OK && reported)
        rc = values_history(s, id, section, v, n, old, nold, replace, quiet, now);
    free(changed);
    store_inv_values_free(old, nold);
    return rc;
}

/* One read (the stored values and the section's mark), then the writes. */
int inventory_put_values(struct store *s, const char *id, const char *section,
                         const struct store_inv_value *v, size_t n, int replace,
                         const char *const *quiet, int64_t now)
{
    struct store_inv_value *old = NULL;
    size_t nold = 0;
    int reported = 0;
    int rc = store_inventory_values_and_mark(s, id, section, &old, &nold, &reported);
    return put_values_read(s, id, section, v, n, replace, quiet, now, rc, old, nold, reported);
}

int inventory_put_device_values(struct store *s, const char *id, const struct store_inv_device *d,
                                const struct store_inv_value *v, size_t n,
                                const char *const *quiet, int64_t now)
{
    struct store_inv_value *old = NULL;
    size_t nold = 0;
    int reported = 0;
    int rc = store_inventory_device_set_and_read(s, id, d, now, &old, &nold, &reported);
    return put_values_read(s, id, "device", v, n, 0, quiet, now, rc, old, nold, reported);
}

int inventory_history_prune(struct store *s, int64_t days, int64_t now, int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (days <= 0)
        return STORE_OK; /* 0 keeps history forever, by choice */
    return store_inventory_history_prune(s, now - days * 86400, deleted);
}

/* ---- the inventory set ----------------------------------------------------- */

const char *const inventory_set_types[] = {
    "DeviceInformation",       "SecurityInfo",           "ProfileList",
    "CertificateList",         "InstalledApplicationList", "ManagedApplicationList",
    "ProvisioningProfileList", "Restrictions",
};
const size_t inventory_set_count = sizeof inventory_set_types / sizeof inventory_set_types[0];

/* Every DeviceInformation query of PROTOCOL.md §8 an iOS device answers
 * (device-information and network-information rights); a device leaves out
 * what it cannot or may not answer. */
static const char *const device_queries[] = {
    "UDID", "DeviceName", "OSVersion", "BuildVersion", "ModelName", "Model", "ModelNumber",
    "ProductName", "SerialNumber", "DeviceCapacity", "AvailableDeviceCapacity", "IMEI", "MEID",
    "ModemFirmwareVersion", "CellularTechnology", "BatteryLevel", "IsSupervised", "IsMultiUser",
    "IsDeviceLocatorServiceEnabled", "IsActivationLockEnabled", "IsDoNotDisturbInEffect",
    "IsCloudBackupEnabled", "LastCloudBackupDate", "iTunesStoreAccountIsActive",
    "iTunesStoreAccountHash", "AwaitingConfiguration", "OrganizationInfo", "MDMOptions",
    "EASDeviceIdentifier", "TimeZone", "SupplementalBuildVersion", "SupplementalOSVersionExtra",
    "SoftwareUpdateDeviceID", "IsMDMLostModeEnabled", "MaximumResidentUsers",
    "ICCID", "BluetoothMAC", "WiFiMAC", "CurrentCarrierNetwork", "SubscriberCarrierNetwork",
    "SIMCarrierNetwork", "CarrierSettingsVersion", "PhoneNumber", "DataRoamingEnabled",
    "VoiceRoamingEnabled", "PersonalHotspotEnabled", "IsRoaming", "IsNetworkTethered",
    "SubscriberMCC", "SubscriberMNC", "SIMMCC", "SIMMNC", "CurrentMCC", "CurrentMNC",
    "ServiceSubscriptions",
};

plist_t inventory_command_new(const char *request_type)
{
    size_t i;
    for (i = 0; i < inventory_set_count; i++)
        if (strcmp(inventory_set_types[i], request_type) == 0)
            break;
    if (i == inventory_set_count)
        return NULL;
    plist_t root = plist_new_dict();
    plist_t cmd = plist_new_dict();
    plist_dict_set_item(cmd, "RequestType", plist_new_string(request_type));
    if (strcmp(request_type, "DeviceInformation") == 0) {
        plist_t q = plist_new_array();
        for (size_t k = 0; k < sizeof device_queries / sizeof device_queries[0]; k++)
            plist_array_append_item(q, plist_new_string(device_queries[k]));
        plist_dict_set_item(cmd, "Queries", q);
    } else if (strcmp(request_type, "Restrictions") == 0) {
        plist_dict_set_item(cmd, "ProfileRestrictions", plist_new_bool(1));
    }
    plist_dict_set_item(root, "Command", cmd);
    const char *err = NULL;
    if (queue_command_prepare(root, &err) < 0) {
        plist_free(root);
        return NULL;
    }
    return root;
}

/* Two Queries arrays ask the same when they hold the same strings in any
 * order (both absent counts as the same too). */
static int queries_same(plist_t a, plist_t b)
{
    if (!a || !b)
        return !a && !b;
    if (plist_get_node_type(a) != PLIST_ARRAY || plist_get_node_type(b) != PLIST_ARRAY)
        return 0;
    uint32_t na = plist_array_get_size(a), nb = plist_array_get_size(b);
    for (int pass = 0; pass < 2; pass++) {
        plist_t x = pass ? b : a, y = pass ? a : b;
        uint32_t nx = pass ? nb : na, ny = pass ? na : nb;
        for (uint32_t i = 0; i < nx; i++) {
            const char *q = plist_get_string_ptr(plist_array_get_item(x, i), NULL);
            uint32_t j;
            for (j = 0; j < ny; j++) {
                const char *r = plist_get_string_ptr(plist_array_get_item(y, j), NULL);
                if (q && r && strcmp(q, r) == 0)
                    break;
            }
            if (j == ny)
                return 0;
        }
    }
    return 1;
}

int inventory_is_pending(struct store *s, const char *id, plist_t command)
{
    plist_t inner = plist_dict_get_item(command, "Command");
    const char *type = pl_str(inner, "RequestType");
    if (!type)
        return STORE_ERR;
    struct store_inv_blob *p = NULL;
    size_t n = 0;
    int rc = store_inventory_pending(s, id, type, &p, &n);
    if (rc != STORE_OK)
        return rc;
    plist_t queries = plist_dict_get_item(inner, "Queries");
    int found = 0;
    for (size_t i = 0; !found && i < n; i++) {
        if (strcmp(type, "DeviceInformation") != 0) {
            found = 1; /* the other inventory queries take no arguments that matter */
            break;
        }
        const char *err = NULL;
        plist_t other = pl_parse_dict(p[i].data, p[i].len, &err);
        plist_t oinner = other ? plist_dict_get_item(other, "Command") : NULL;
        if (oinner && queries_same(queries, plist_dict_get_item(oinner, "Queries")))
            found = 1;
        plist_free(other);
    }
    store_inv_blobs_free(p, n);
    return found;
}

int inventory_enqueue_unique(struct store *s, plist_t command, const char *const *ids, size_t n,
                             int64_t now, size_t *queued)
{
    if (queued)
        *queued = 0;
    const char **take = calloc(n ? n : 1, sizeof *take);
    int *per_id = calloc(n ? n : 1, sizeof *per_id);
    if (!take || !per_id) {
        free(take);
        free(per_id);
        return sql_out_of_memory("inventory.enqueue");
    }
    int nested = 0;
    int rc = sql_atomic_begin(s, "inventory.enqueue", &nested);
    size_t k = 0;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        int p = inventory_is_pending(s, ids[i], command);
        if (p < 0)
            rc = p;
        else if (!p)
            take[k++] = ids[i];
    }
    if (rc == STORE_OK && k > 0) {
        struct queue_enqueued out;
        rc = queue_enqueue(s, command, take, k, now, &out, per_id);
        if (rc == STORE_OK && queued)
            *queued = out.queued;
    }
    rc = sql_atomic_end(s, nested, rc, "inventory.enqueue");
    free(take);
    free(per_id);
    return rc;
}

/* Queues the set for ids[0..n): one command per RequestType for all of them. */
static int queue_set(struct store *s, const char *const *ids, size_t n, int64_t now,
                     size_t *queued)
{
    int rc = STORE_OK;
    for (size_t t = 0; rc == STORE_OK && t < inventory_set_count; t++) {
        plist_t cmd = inventory_command_new(inventory_set_types[t]);
        if (!cmd)
            return sql_out_of_memory("inventory.refresh");
        size_t q = 0;
        rc = inventory_enqueue_unique(s, cmd, ids, n, now, &q);
        plist_free(cmd);
        if (queued)
            *queued += q;
    }
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        rc = store_inventory_refresh_mark(s, ids[i], now);
    return rc;
}

int inventory_refresh_device(struct store *s, const char *id, int64_t now, size_t *queued)
{
    if (queued)
        *queued = 0;
    int nested = 0;
    int rc = sql_atomic_begin(s, "inventory.refresh", &nested);
    if (rc == STORE_OK)
        rc = queue_set(s, &id, 1, now, queued);
    return sql_atomic_end(s, nested, rc, "inventory.refresh");
}

#define REFRESH_BATCH 500
/* One run queues at most this many devices; the scheduler's next tick takes
 * the rest. A fleet that falls due at once (a first start with 100,000
 * devices) is then spread over several ticks instead of one long pass. */
#define REFRESH_MAX_PER_RUN (10 * REFRESH_BATCH)
/* Pause between batches: SQLite has one writer, and a loop that begins its
 * next transaction the moment it commits starves check-ins waiting for the
 * lock (they would answer 503 after the busy timeout). */
#define REFRESH_PAUSE_US 20000

int inventory_refresh_due(struct store *s, int64_t interval, int64_t now, size_t *devices)
{
    if (devices)
        *devices = 0;
    if (interval <= 0)
        return STORE_OK;
    size_t done = 0;
    for (;;) {
        char **ids = NULL;
        size_t n = 0;
        int rc = store_begin(s);
        if (rc != STORE_OK)
            return rc;
        rc = store_inventory_refresh_due(s, now - interval, REFRESH_BATCH, &ids, &n);
        if (rc == STORE_OK && n > 0)
            rc = queue_set(s, (const char *const *)ids, n, now, NULL);
        if (rc == STORE_OK)
            rc = store_commit(s);
        else
            (void)store_rollback(s); /* the refresh's error is the one to report */
        store_inv_ids_free(ids, n);
        if (rc != STORE_OK)
            return rc;
        if (devices)
            *devices += n;
        if (n < REFRESH_BATCH || (done += n) >= REFRESH_MAX_PER_RUN)
            return STORE_OK;
        usleep(REFRESH_PAUSE_US);
    }
}

/* ---- small helpers --------------------------------------------------------- */

int64_t inventory_os_num(const char *version)
{
    if (!version || !*version)
        return -1;
    long part[3] = {0, 0, 0};
    const char *p = version;
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9')
            return -1;
        char *end = NULL;
        part[i] = strtol(p, &end, 10);
        if (part[i] > 99 && i > 0)
            return -1;
        if (part[i] > 9999)
            return -1;
        p = end;
        if (*p == '\0')
            break;
        if (*p != '.')
            return -1;
        p++;
    }
    if (*p != '\0')
        return -1; /* a fourth part, or trailing text */
    return (int64_t)part[0] * 10000 + part[1] * 100 + part[2];
}

static const char *const section_names[INVENTORY_NSECTIONS] = {
    "device", "security", "profiles", "certificates", "apps", "managed-apps",
    "provisioning-profiles", "restrictions", "history",
};

static const int section_lists[INVENTORY_NSECTIONS] = {
    -1, -1, STORE_INV_PROFILES, STORE_INV_CERTIFICATES, STORE_INV_APPS, STORE_INV_MANAGED_APPS,
    STORE_INV_PROVISIONING, STORE_INV_RESTRICTIONS, STORE_INV_HISTORY,
};

int inventory_section_from_name(const char *name)
{
    for (int i = 0; name && i < INVENTORY_NSECTIONS; i++)
        if (strcmp(section_names[i], name) == 0)
            return i;
    return -1;
}

const char *inventory_section_name(int section)
{
    return section >= 0 && section < INVENTORY_NSECTIONS ? section_names[section] : NULL;
}

int inventory_section_list(int section)
{
    return section >= 0 && section < INVENTORY_NSECTIONS ? section_lists[section] : -1;
}

/* ---- reading ---------------------------------------------------------------- */

int inventory_find(struct store *s, const struct store_inv_filter *f, char ***ids, size_t *n,
                   int64_t *total)
{
    return store_inventory_filter(s, f, ids, n, total);
}

int inventory_values(struct store *s, const char *id, int section, struct store_inv_value **v,
                     size_t *n)
{
    if (section != INVENTORY_DEVICE && section != INVENTORY_SECURITY)
        return STORE_ERR;
    return store_inventory_values_get(s, id, section_names[section], v, n);
}

int inventory_rows(struct store *s, const char *id, int section, int64_t limit,
                   struct store_inv_table **t)
{
    int list = inventory_section_list(section);
    if (list < 0)
        return STORE_ERR;
    return store_inventory_rows_get(s, id, (enum store_inv_list)list, limit, t);
}
