/* store_inventory.h: store.h's section for the device inventory (what devices
 * answered to DeviceInformation, SecurityInfo and the list queries), its
 * history, the filtered device listing and the refresh bookkeeping; included
 * by store.h (include store.h, not this). Implemented in store/inventory.c
 * on sql.h, so every backend runs the same code. Used by core/inventory*.c. */
#ifndef STEWARD_STORE_INVENTORY_H
#define STEWARD_STORE_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* ---- the filterable columns, one row per enrollment ----------------------
 * NULL strings and negative numbers leave the stored value as it is, so a
 * DeviceInformation answer to a few queries updates just those. */
struct store_inv_device {
    const char *os_version;
    int64_t os_num;         /* major*10000 + minor*100 + patch, or -1 */
    const char *build_version;
    const char *model;
    const char *model_name;
    const char *product_name;
    const char *serial_number;
    const char *device_name;
    int supervised;         /* 0/1, -1 unknown */
    int battery_pct;        /* 0..100, -1 unknown */
    int64_t capacity_mb;    /* -1 unknown */
    int64_t available_mb;
};
int store_inventory_device_set(struct store *s, const char *id, const struct store_inv_device *d,
                               int64_t now);
/* SecurityInfo's filterable fields; -1 leaves one as it is. */
int store_inventory_security_set(struct store *s, const char *id, int passcode_present,
                                 int passcode_compliant, int encryption_caps, int64_t now);
/* From Restrictions: whether the App Store (app installation) is allowed. */
int store_inventory_app_store_set(struct store *s, const char *id, int allowed);

/* 1/0 into *supervised; STORE_NOTFOUND when the device never said. */
int store_inventory_supervised(struct store *s, const char *id, int *supervised);
/* 1/0 into *allowed; STORE_NOTFOUND when no Restrictions answer is known. */
int store_inventory_app_store_allowed(struct store *s, const char *id, int *allowed);

/* ---- typed values (DeviceInformation, SecurityInfo) ----------------------
 * type: "string", "bool", "int", "real", "date" (Unix seconds), "data"
 * (base64) or "plist" (an array or dict as XML plist text). */
struct store_inv_value {
    char *name;
    char *type;
    char *value; /* NULL = null */
};
void store_inv_values_free(struct store_inv_value *v, size_t n); /* accepts NULL */
/* Upserts values of a section ("device", "security"); replace first deletes
 * every value of the section (a full answer). */
int store_inventory_values_put(struct store *s, const char *id, const char *section,
                               const struct store_inv_value *v, size_t n, int replace,
                               int64_t now);
/* store_inventory_device_set, then store_inventory_values_and_mark of the
 * "device" section: one statement on PostgreSQL (one round trip for a
 * DeviceInformation answer's reads and its filterable row), none when the
 * report's statement already did both for this enrollment and time
 * (store_report_check.device: the values read ahead are handed over once). */
int store_inventory_device_set_and_read(struct store *s, const char *id,
                                        const struct store_inv_device *d, int64_t now,
                                        struct store_inv_value **v, size_t *n, int *reported);
/* The section's values and, in the same read, whether the section was
 * reported before (its mark in the "reported" section, named after it):
 * what an answer needs to tell changes from a baseline (section is not
 * "reported" itself). *v as
 * store_inventory_values_get, in no particular order. */
int store_inventory_values_and_mark(struct store *s, const char *id, const char *section,
                                    struct store_inv_value **v, size_t *n, int *reported);
/* The section's values ordered by name; *v malloc'd (store_inv_values_free). */
int store_inventory_values_get(struct store *s, const char *id, const char *section,
                               struct store_inv_value **v, size_t *n);

/* ---- list sections: a row of cells per item -------------------------------*/
enum store_inv_list {
    STORE_INV_PROFILES,
    STORE_INV_CERTIFICATES,
    STORE_INV_APPS,
    STORE_INV_MANAGED_APPS,
    STORE_INV_PROVISIONING,
    STORE_INV_RESTRICTIONS,
    STORE_INV_HISTORY, /* read-only here: written by store_inventory_history_add */
    STORE_INV_NLISTS
};

/* A cell: text (NULL = null) or, when is_num, an integer. */
struct store_inv_cell {
    const char *text;
    int64_t num;
    int is_num;
};

/* A list's shape: column names and their types, one letter each: s string,
 * i integer, b bool (0/1), t time (Unix seconds). The first key_cols columns
 * identify a row; value_col is what history reports as its value. */
struct store_inv_shape {
    const char *name; /* "profiles", "certificates", … */
    size_t ncols;
    const char *const *cols;
    const char *types;
    size_t key_cols;
    size_t value_col;
};
const struct store_inv_shape *store_inventory_shape(enum store_inv_list list);

/* Writes rows (nrows × shape->ncols cells, row-major). replace deletes the
 * device's other rows of the list first (a full answer); otherwise rows are
 * upserted by key (an answer filtered to some identifiers). */
int store_inventory_rows_put(struct store *s, const char *id, enum store_inv_list list,
                             const struct store_inv_cell *cells, size_t nrows, int replace);

/* A read list: cells as text (NULL = null), nrows × shape->ncols. */
struct store_inv_table {
    const struct store_inv_shape *shape;
    size_t nrows;
    char **cells;
};
void store_inv_table_free(struct store_inv_table *t); /* accepts NULL */
/* The device's rows of a list (history newest first, at most limit rows,
 * 0 = 1000). *out malloc'd. */
int store_inventory_rows_get(struct store *s, const char *id, enum store_inv_list list,
                             int64_t limit, struct store_inv_table **out);

/* ---- history ---------------------------------------------------------------*/
/* change: "added", "removed" or "changed". */
int store_inventory_history_add(struct store *s, const char *id, const char *section,
                                const char *item, const char *change, const char *old_value,
                                const char *new_value, int64_t now);
/* Deletes history older than before; *deleted (may be NULL) counts rows. */
int store_inventory_history_prune(struct store *s, int64_t before, int64_t *deleted);

/* ---- filtered device listing ---------------------------------------------
 * NULL / -1 / 0 (as noted) mean "any". Every set condition must hold. */
struct store_inv_filter {
    const char *search;        /* substring of id, serial or device name */
    const char *serial_number;
    int status;                /* enum store_enrollment_status, 0 = any */
    int64_t os_min, os_max, os_eq; /* os_num values, -1 = any */
    const char *model;         /* product name (iPhone15,2), model (MQ0G3LL) or model name */
    int supervised;            /* -1 any */
    int passcode;              /* -1 any */
    int encryption;            /* HardwareEncryptionCaps, -1 any */
    int battery_below;         /* percent, -1 any */
    const char *app;           /* bundle identifier installed */
    const char *profile;       /* profile identifier installed */
    int64_t cert_expiring_from, cert_expiring_to; /* a certificate with not_after in [from, to); 0 = any */
    int64_t seen_before, seen_after; /* last_seen_at bounds, 0 = any */
    int64_t limit;             /* 0 = 100 */
    int64_t offset;
};
/* Matching enrollment ids ordered by id; *ids malloc'd array of malloc'd
 * strings (store_inv_ids_free). *total counts every match. */
int store_inventory_filter(struct store *s, const struct store_inv_filter *f, char ***ids,
                           size_t *n, int64_t *total);
void store_inv_ids_free(char **ids, size_t n);

/* ---- commands: what a report answers, and dedupe -------------------------*/
/* The stored command with this UUID: *request_type and *payload malloc'd. */
int store_inventory_command(struct store *s, const char *uuid, char **request_type,
                            uint8_t **payload, size_t *len);
/* Payloads of the commands of this RequestType still waiting for the
 * enrollment (never answered or NotNow). *payloads and each payload are
 * malloc'd (store_inv_blobs_free). */
struct store_inv_blob {
    uint8_t *data;
    size_t len;
};
int store_inventory_pending(struct store *s, const char *id, const char *request_type,
                            struct store_inv_blob **payloads, size_t *n);
void store_inv_blobs_free(struct store_inv_blob *b, size_t n);

/* ---- refresh bookkeeping ---------------------------------------------------*/
/* Enrolled device channels whose inventory was last queued before `before`
 * (or never), at most limit, ordered by id. */
int store_inventory_refresh_due(struct store *s, int64_t before, int64_t limit, char ***ids,
                                size_t *n);
int store_inventory_refresh_mark(struct store *s, const char *id, int64_t now);

#endif
