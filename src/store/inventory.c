/* inventory.c: the inventory tables of migration 6 on sql.h: the filterable
 * per-device row, typed values, list sections (profiles, certificates, apps,
 * managed apps, provisioning profiles, restrictions), history, the filtered
 * device listing and refresh bookkeeping. Declared in store_inventory.h;
 * called by core/inventory*.c. One SQL text serves every backend. */
#include "store/store.h"
#include "store/backend.h"
#include "store/inv_device_sql.h"
#include "store/sql.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

/* ---- the filterable row ---------------------------------------------------- */

#define DEVICE_SET                                                                                 \
    "INSERT INTO inv_device (" INV_DEVICE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"     \
    " ?10, ?11, ?12, ?13, ?14)" INV_DEVICE_UPSERT
static const char sql_device_set[] = DEVICE_SET;
/* PostgreSQL: the row written by a data-modifying WITH (run to completion
 * whether read or not), the section's values and mark read by the query. */
static const char sql_device_set_and_read_pg[] =
    "WITH d AS (" DEVICE_SET " RETURNING 1)"
    " SELECT section, name, type, value FROM inv_values WHERE enrollment_id = ?1"
    " AND section IN (?15, ?16)";

static void bind_opt_int(struct sql_stmt *st, int i, int64_t v, int *code)
{
    if (v < 0)
        sql_bind_null(st, i, code);
    else
        sql_bind_int(st, i, v, code);
}

static void bind_device(struct sql_stmt *st, const char *id, const struct store_inv_device *d,
                        int64_t now, int *code);

int store_inventory_device_set(struct store *s, const char *id, const struct store_inv_device *d,
                               int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_device_set, "inventory.device_set", &rc);
    if (!st)
        return rc;
    bind_device(st, id, d, now, &code);
    return sql_exec(s, st, "inventory.device_set", code);
}


struct store_inv_preread {
    char *id;
    int64_t now;
    struct store_inv_value *v;
    size_t n;
    int reported;
};

int store_inventory_preread_put(struct store *s, const char *id, int64_t now,
                                struct store_inv_value *v, size_t n, int reported)
{
    store_inventory_preread_drop(s);
    struct store_inv_preread *p = calloc(1, sizeof *p);
    char *copy = strdup(id);
    if (!p || !copy) {
        free(p);
        free(copy);
        store_inv_values_free(v, n);
        return sql_out_of_memory("inventory.preread");
    }
    *p = (struct store_inv_preread){.id = copy, .now = now, .v = v, .n = n, .reported = reported};
    s->inv_preread = p;
    return STORE_OK;
}

void store_inventory_preread_drop(struct store *s)
{
    struct store_inv_preread *p = s->inv_preread;
    if (!p)
        return;
    s->inv_preread = NULL;
    store_inv_values_free(p->v, p->n);
    free(p->id);
    free(p);
}

/* The read-ahead of this very write, taken (1), or 0. The row it wrote came
 * from the same answer: the handler parses the same QueryResponses. */
static int preread_take(struct store *s, const char *id, int64_t now, struct store_inv_value **v,
                        size_t *n, int *reported)
{
    struct store_inv_preread *p = s->inv_preread;
    if (!p || p->now != now || strcmp(p->id, id) != 0)
        return 0;
    *v = p->v;
    *n = p->n;
    *reported = p->reported;
    p->v = NULL;
    p->n = 0;
    store_inventory_preread_drop(s);
    return 1;
}

int store_inventory_device_set_and_read(struct store *s, const char *id,
                                        const struct store_inv_device *d, int64_t now,
                                        struct store_inv_value **v, size_t *n, int *reported)
{
    if (preread_take(s, id, now, v, n, reported))
        return STORE_OK;
    if (sql_dialect(s) != STORE_DIALECT_POSTGRES) {
        int rc = store_inventory_device_set(s, id, d, now);
        return rc == STORE_OK ? store_inventory_values_and_mark(s, id, "device", v, n, reported)
                              : rc;
    }
    *v = NULL;
    *n = 0;
    *reported = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st =
        sql_prepare(s, sql_device_set_and_read_pg, "inventory.device_set_and_read", &rc);
    if (!st)
        return rc;
    bind_device(st, id, d, now, &code);
    sql_bind_text(st, 15, "device", &code);
    sql_bind_text(st, 16, "reported", &code);
    return store_inventory_values_read(s, st, code, 0, 1, "inventory.device_set_and_read",
                                       "device", v, n, reported);
}

void store_inventory_bind_device_row(struct sql_stmt *st, int first,
                                     const struct store_inv_device *d, int *code)
{
    sql_bind_text(st, first, d->os_version, code);
    bind_opt_int(st, first + 1, d->os_num, code);
    sql_bind_text(st, first + 2, d->build_version, code);
    sql_bind_text(st, first + 3, d->model, code);
    sql_bind_text(st, first + 4, d->model_name, code);
    sql_bind_text(st, first + 5, d->product_name, code);
    sql_bind_text(st, first + 6, d->serial_number, code);
    sql_bind_text(st, first + 7, d->device_name, code);
    bind_opt_int(st, first + 8, d->supervised, code);
    bind_opt_int(st, first + 9, d->battery_pct, code);
    bind_opt_int(st, first + 10, d->capacity_mb, code);
    bind_opt_int(st, first + 11, d->available_mb, code);
}

static void bind_device(struct sql_stmt *st, const char *id, const struct store_inv_device *d,
                        int64_t now, int *code)
{
    sql_bind_text(st, 1, id, code);
    store_inventory_bind_device_row(st, 2, d, code);
    sql_bind_int(st, 14, now, code);
}

static const char sql_security_set[] =
    "INSERT INTO inv_device (enrollment_id, passcode_present, passcode_compliant, encryption_caps,"
    " security_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (enrollment_id) DO UPDATE SET"
    " passcode_present = COALESCE(excluded.passcode_present, inv_device.passcode_present),"
    " passcode_compliant = COALESCE(excluded.passcode_compliant, inv_device.passcode_compliant),"
    " encryption_caps = COALESCE(excluded.encryption_caps, inv_device.encryption_caps),"
    " security_at = excluded.security_at";

int store_inventory_security_set(struct store *s, const char *id, int passcode_present,
                                 int passcode_compliant, int encryption_caps, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_security_set, "inventory.security_set", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    bind_opt_int(st, 2, passcode_present, &code);
    bind_opt_int(st, 3, passcode_compliant, &code);
    bind_opt_int(st, 4, encryption_caps, &code);
    sql_bind_int(st, 5, now, &code);
    return sql_exec(s, st, "inventory.security_set", code);
}

static const char sql_app_store_set[] =
    "INSERT INTO inv_device (enrollment_id, app_store_allowed) VALUES (?1, ?2)"
    " ON CONFLICT (enrollment_id) DO UPDATE SET app_store_allowed = excluded.app_store_allowed";

int store_inventory_app_store_set(struct store *s, const char *id, int allowed)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_app_store_set, "inventory.app_store_set", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, allowed ? 1 : 0, &code);
    return sql_exec(s, st, "inventory.app_store_set", code);
}

/* One nullable integer column of a device's row; NOTFOUND when null. */
static int device_flag(struct store *s, const char *sql, const char *op, const char *id, int *out)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    int null = sql_col_is_null(st, 0);
    *out = sql_col_int(st, 0) ? 1 : 0;
    sql_done(st);
    return null ? STORE_NOTFOUND : STORE_OK;
}

static const char sql_supervised[] = "SELECT supervised FROM inv_device WHERE enrollment_id = ?1";
static const char sql_app_store[] =
    "SELECT app_store_allowed FROM inv_device WHERE enrollment_id = ?1";

int store_inventory_supervised(struct store *s, const char *id, int *supervised)
{
    return device_flag(s, sql_supervised, "inventory.supervised", id, supervised);
}

int store_inventory_app_store_allowed(struct store *s, const char *id, int *allowed)
{
    return device_flag(s, sql_app_store, "inventory.app_store", id, allowed);
}

/* ---- typed values ------------------------------------------------------------ */

void store_inv_values_free(struct store_inv_value *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].type);
        free(v[i].value);
    }
    free(v);
}

static const char sql_values_clear[] =
    "DELETE FROM inv_values WHERE enrollment_id = ?1 AND section = ?2";
static const char sql_values_put[] =
    "INSERT INTO inv_values (enrollment_id, section, name, type, value, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (enrollment_id, section, name) DO UPDATE SET"
    " type = excluded.type, value = excluded.value, updated_at = excluded.updated_at";
static const char sql_values_get[] =
    "SELECT name, type, value FROM inv_values WHERE enrollment_id = ?1 AND section = ?2"
    " ORDER BY name";

static int values_clear(struct store *s, const char *id, const char *section)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_values_clear, "inventory.values_clear", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, section, &code);
    return sql_exec(s, st, "inventory.values_clear", code);
}

static int value_put(struct store *s, const char *id, const char *section,
                     const struct store_inv_value *v, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_values_put, "inventory.values_put", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, section, &code);
    sql_bind_text(st, 3, v->name, &code);
    sql_bind_text(st, 4, v->type, &code);
    sql_bind_text(st, 5, v->value, &code);
    sql_bind_int(st, 6, now, &code);
    return sql_exec(s, st, "inventory.values_put", code);
}

int store_inventory_values_put(struct store *s, const char *id, const char *section,
                               const struct store_inv_value *v, size_t n, int replace,
                               int64_t now)
{
    int nested = 0;
    int rc = sql_atomic_begin(s, "inventory.values", &nested);
    if (rc != STORE_OK)
        return rc;
    if (replace)
        rc = values_clear(s, id, section);
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        rc = value_put(s, id, section, &v[i], now);
    return sql_atomic_end(s, nested, rc, "inventory.values");
}

/* The section's rows (?2) and its mark in "reported" (?3 = "reported"),
 * told apart by the first column. */
static const char sql_values_and_mark[] =
    "SELECT section, name, type, value FROM inv_values WHERE enrollment_id = ?1"
    " AND section IN (?2, ?3)";

int store_inventory_values_read(struct store *s, struct sql_stmt *st, int code, int current,
                                int col, const char *op, const char *mark,
                                struct store_inv_value **out, size_t *n, int *reported)
{
    struct store_inv_value *v = NULL;
    size_t cap = 0, count = 0;
    int oom = 0;
    int row = current ? 1 : sql_next_row(s, st, op, code);
    for (; row == 1; row = sql_next_row(s, st, op, 0)) {
        const char *name = sql_col_text(st, col);
        if (!name)
            continue; /* an outer join's row without a value */
        if (mark) {
            const char *section = sql_col_text(st, col - 1);
            if (section && strcmp(section, "reported") == 0) {
                if (strcmp(name, mark) == 0)
                    *reported = 1;
                continue;
            }
        }
        if (array_grow((void **)&v, &cap, count, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        struct store_inv_value *e = &v[count++];
        e->name = sql_col_strdup(st, col, &oom);
        e->type = sql_col_strdup(st, col + 1, &oom);
        e->value = sql_col_strdup(st, col + 2, &oom);
        if (oom) {
            sql_done(st);
            break;
        }
    }
    if (oom || row < 0) {
        store_inv_values_free(v, count);
        return oom ? sql_out_of_memory(op) : row;
    }
    *out = v;
    *n = count;
    return STORE_OK;
}

int store_inventory_values_and_mark(struct store *s, const char *id, const char *section,
                                    struct store_inv_value **out, size_t *n, int *reported)
{
    *out = NULL;
    *n = 0;
    *reported = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_values_and_mark, "inventory.values_and_mark", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, section, &code);
    sql_bind_text(st, 3, "reported", &code);
    return store_inventory_values_read(s, st, code, 0, 1, "inventory.values_and_mark", section,
                                       out, n, reported);
}

int store_inventory_values_get(struct store *s, const char *id, const char *section,
                               struct store_inv_value **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_values_get, "inventory.values_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, section, &code);
    return store_inventory_values_read(s, st, code, 0, 0, "inventory.values_get", NULL, out, n,
                                       NULL);
}

/* ---- list sections ------------------------------------------------------------ */

struct list_def {
    struct store_inv_shape shape;
    const char *put;    /* ?1 enrollment id, ?2… the cells */
    const char *clear;  /* ?1 enrollment id */
    const char *get;    /* ?1 enrollment id, ?2 limit */
};

static const char *const cols_profiles[] = {
    "identifier", "uuid", "version", "display_name", "organization", "description",
    "is_managed", "is_encrypted", "removal_disallowed", "has_removal_passcode",
    "payload_types", "signer"};
static const char *const cols_certs[] = {"fingerprint", "common_name", "subject", "issuer",
                                         "serial", "not_before", "not_after", "is_identity"};
static const char *const cols_apps[] = {"identifier", "name", "version", "short_version",
                                        "bundle_size", "dynamic_size", "external_version",
                                        "installing"};
static const char *const cols_managed[] = {"identifier", "status", "management_flags",
                                           "external_version", "has_configuration",
                                           "has_feedback", "is_validated",
                                           "unused_redemption_code", "updated_at"};
static const char *const cols_prov[] = {"uuid", "name", "expiry"};
static const char *const cols_restr[] = {"scope", "kind", "name", "value"};
static const char *const cols_hist[] = {"at", "section", "item", "change", "old_value",
                                        "new_value"};

static const struct list_def lists[STORE_INV_NLISTS] = {
    [STORE_INV_PROFILES] = {
        {"profiles", 12, cols_profiles, "ssisssbbbbss", 1, 1},
        "INSERT INTO inv_profiles (enrollment_id, identifier, uuid, version, display_name,"
        " organization, description, is_managed, is_encrypted, removal_disallowed,"
        " has_removal_passcode, payload_types, signer)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        " ON CONFLICT (enrollment_id, identifier) DO UPDATE SET uuid = excluded.uuid,"
        " version = excluded.version, display_name = excluded.display_name,"
        " organization = excluded.organization, description = excluded.description,"
        " is_managed = excluded.is_managed, is_encrypted = excluded.is_encrypted,"
        " removal_disallowed = excluded.removal_disallowed,"
        " has_removal_passcode = excluded.has_removal_passcode,"
        " payload_types = excluded.payload_types, signer = excluded.signer",
        "DELETE FROM inv_profiles WHERE enrollment_id = ?1",
        "SELECT identifier, uuid, version, display_name, organization, description, is_managed,"
        " is_encrypted, removal_disallowed, has_removal_passcode, payload_types, signer"
        " FROM inv_profiles WHERE enrollment_id = ?1 ORDER BY identifier LIMIT ?2",
    },
    [STORE_INV_CERTIFICATES] = {
        {"certificates", 8, cols_certs, "sssssttb", 1, 2},
        "INSERT INTO inv_certificates (enrollment_id, fingerprint, common_name, subject, issuer,"
        " serial, not_before, not_after, is_identity) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (enrollment_id, fingerprint) DO UPDATE SET"
        " common_name = excluded.common_name, subject = excluded.subject,"
        " issuer = excluded.issuer, serial = excluded.serial, not_before = excluded.not_before,"
        " not_after = excluded.not_after, is_identity = excluded.is_identity",
        "DELETE FROM inv_certificates WHERE enrollment_id = ?1",
        "SELECT fingerprint, common_name, subject, issuer, serial, not_before, not_after,"
        " is_identity FROM inv_certificates WHERE enrollment_id = ?1"
        " ORDER BY not_after, fingerprint LIMIT ?2",
    },
    [STORE_INV_APPS] = {
        {"apps", 8, cols_apps, "ssssiiib", 1, 2},
        "INSERT INTO inv_apps (enrollment_id, identifier, name, version, short_version,"
        " bundle_size, dynamic_size, external_version, installing)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT (enrollment_id, identifier) DO UPDATE SET name = excluded.name,"
        " version = excluded.version, short_version = excluded.short_version,"
        " bundle_size = excluded.bundle_size, dynamic_size = excluded.dynamic_size,"
        " external_version = excluded.external_version, installing = excluded.installing",
        "DELETE FROM inv_apps WHERE enrollment_id = ?1",
        "SELECT identifier, name, version, short_version, bundle_size, dynamic_size,"
        " external_version, installing FROM inv_apps WHERE enrollment_id = ?1"
        " ORDER BY identifier LIMIT ?2",
    },
    [STORE_INV_MANAGED_APPS] = {
        {"managed-apps", 9, cols_managed, "ssiibbbst", 1, 1},
        "INSERT INTO inv_managed_apps (enrollment_id, identifier, status, management_flags,"
        " external_version, has_configuration, has_feedback, is_validated,"
        " unused_redemption_code, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        " ON CONFLICT (enrollment_id, identifier) DO UPDATE SET status = excluded.status,"
        " management_flags = excluded.management_flags,"
        " external_version = excluded.external_version,"
        " has_configuration = excluded.has_configuration, has_feedback = excluded.has_feedback,"
        " is_validated = excluded.is_validated,"
        " unused_redemption_code = excluded.unused_redemption_code,"
        " updated_at = excluded.updated_at",
        "DELETE FROM inv_managed_apps WHERE enrollment_id = ?1",
        "SELECT identifier, status, management_flags, external_version, has_configuration,"
        " has_feedback, is_validated, unused_redemption_code, updated_at FROM inv_managed_apps"
        " WHERE enrollment_id = ?1 ORDER BY identifier LIMIT ?2",
    },
    [STORE_INV_PROVISIONING] = {
        {"provisioning-profiles", 3, cols_prov, "sst", 1, 1},
        "INSERT INTO inv_provisioning (enrollment_id, uuid, name, expiry) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (enrollment_id, uuid) DO UPDATE SET name = excluded.name,"
        " expiry = excluded.expiry",
        "DELETE FROM inv_provisioning WHERE enrollment_id = ?1",
        "SELECT uuid, name, expiry FROM inv_provisioning WHERE enrollment_id = ?1"
        " ORDER BY expiry, uuid LIMIT ?2",
    },
    [STORE_INV_RESTRICTIONS] = {
        {"restrictions", 4, cols_restr, "ssss", 3, 3},
        "INSERT INTO inv_restrictions (enrollment_id, scope, kind, name, value)"
        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (enrollment_id, scope, kind, name)"
        " DO UPDATE SET value = excluded.value",
        "DELETE FROM inv_restrictions WHERE enrollment_id = ?1",
        "SELECT scope, kind, name, value FROM inv_restrictions WHERE enrollment_id = ?1"
        " ORDER BY scope, kind, name LIMIT ?2",
    },
    [STORE_INV_HISTORY] = {
        {"history", 6, cols_hist, "tsssss", 0, 0},
        NULL,
        NULL,
        "SELECT at, section, item, change, old_value, new_value FROM inv_history"
        " WHERE enrollment_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
    },
};

const struct store_inv_shape *store_inventory_shape(enum store_inv_list list)
{
    if ((int)list < 0 || list >= STORE_INV_NLISTS)
        return NULL;
    return &lists[list].shape;
}

static int list_clear(struct store *s, const struct list_def *d, const char *id)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, d->clear, "inventory.list_clear", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    return sql_exec(s, st, "inventory.list_clear", code);
}

static int list_put_row(struct store *s, const struct list_def *d, const char *id,
                        const struct store_inv_cell *row)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, d->put, "inventory.list_put", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    for (size_t c = 0; c < d->shape.ncols; c++) {
        const struct store_inv_cell *cell = &row[c];
        if (cell->is_num)
            sql_bind_int(st, (int)c + 2, cell->num, &code);
        else
            sql_bind_text(st, (int)c + 2, cell->text, &code);
    }
    return sql_exec(s, st, "inventory.list_put", code);
}

int store_inventory_rows_put(struct store *s, const char *id, enum store_inv_list list,
                             const struct store_inv_cell *cells, size_t nrows, int replace)
{
    if ((int)list < 0 || list >= STORE_INV_NLISTS || !lists[list].put)
        return STORE_ERR;
    const struct list_def *d = &lists[list];
    int nested = 0;
    int rc = sql_atomic_begin(s, "inventory.rows_put", &nested);
    if (rc != STORE_OK)
        return rc;
    if (replace)
        rc = list_clear(s, d, id);
    for (size_t r = 0; rc == STORE_OK && r < nrows; r++)
        rc = list_put_row(s, d, id, &cells[r * d->shape.ncols]);
    return sql_atomic_end(s, nested, rc, "inventory.rows_put");
}

void store_inv_table_free(struct store_inv_table *t)
{
    if (!t)
        return;
    if (t->cells) {
        for (size_t i = 0; i < t->nrows * t->shape->ncols; i++)
            free(t->cells[i]);
        free(t->cells);
    }
    free(t);
}

/* Copies the current row's columns into t's next row. -1 when out of memory. */
static int read_row(struct sql_stmt *st, struct store_inv_table *t, size_t *cap)
{
    size_t nc = t->shape->ncols;
    if (t->nrows * nc + nc > *cap) {
        size_t c = *cap ? *cap * 2 : nc * 32;
        char **p = realloc(t->cells, c * sizeof *p);
        if (!p)
            return -1;
        t->cells = p;
        *cap = c;
    }
    int oom = 0;
    char **row = &t->cells[t->nrows * nc];
    for (size_t c = 0; c < nc; c++)
        row[c] = sql_col_strdup(st, (int)c, &oom);
    t->nrows++;
    return oom ? -1 : 0;
}

int store_inventory_rows_get(struct store *s, const char *id, enum store_inv_list list,
                             int64_t limit, struct store_inv_table **out)
{
    *out = NULL;
    if ((int)list < 0 || list >= STORE_INV_NLISTS)
        return STORE_ERR;
    const struct list_def *d = &lists[list];
    struct store_inv_table *t = calloc(1, sizeof *t);
    if (!t)
        return sql_out_of_memory("inventory.rows_get");
    t->shape = &d->shape;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, d->get, "inventory.rows_get", &rc);
    if (!st) {
        free(t);
        return rc;
    }
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, limit > 0 ? limit : 1000, &code);
    size_t cap = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "inventory.rows_get", code)) == 1) {
        code = 0;
        if (read_row(st, t, &cap) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
    }
    if (oom || row < 0) {
        store_inv_table_free(t);
        return oom ? sql_out_of_memory("inventory.rows_get") : row;
    }
    *out = t;
    return STORE_OK;
}

/* ---- history ------------------------------------------------------------------ */

static const char sql_history_add[] =
    "INSERT INTO inv_history (enrollment_id, section, item, change, old_value, new_value, at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char sql_history_prune[] = "DELETE FROM inv_history WHERE at < ?1";

int store_inventory_history_add(struct store *s, const char *id, const char *section,
                                const char *item, const char *change, const char *old_value,
                                const char *new_value, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_history_add, "inventory.history_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, section, &code);
    sql_bind_text(st, 3, item, &code);
    sql_bind_text(st, 4, change, &code);
    sql_bind_text(st, 5, old_value, &code);
    sql_bind_text(st, 6, new_value, &code);
    sql_bind_int(st, 7, now, &code);
    return sql_exec(s, st, "inventory.history_add", code);
}

int store_inventory_history_prune(struct store *s, int64_t before, int64_t *deleted)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_history_prune, "inventory.history_prune", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, before, &code);
    rc = sql_exec(s, st, "inventory.history_prune", code);
    if (rc == STORE_OK && deleted)
        *deleted = sql_changes(s);
    return rc;
}

/* ---- filtered listing ---------------------------------------------------------- */

/* Every condition is "parameter unset, or it holds", so one prepared text
 * serves every combination; the CASTs give PostgreSQL a type for a
 * parameter that may be bound NULL. The subqueries are uncorrelated: each
 * is a seek into its (identifier | not_after, enrollment_id) index, built
 * once per query. The conditions come in three groups: on the enrollment
 * (FILTER_E), on its inv_device row (FILTER_D) and on the list sections
 * (FILTER_SUB, by the enrollment id column named). */
#define FILTER_E                                                                                   \
    " (CAST(?1 AS TEXT) IS NULL OR e.id LIKE ?1 ESCAPE '\\'"                                      \
    "  OR e.serial_number LIKE ?1 ESCAPE '\\' OR e.device_name LIKE ?1 ESCAPE '\\')"             \
    " AND (CAST(?2 AS TEXT) IS NULL OR e.serial_number = ?2)"                                     \
    " AND (CAST(?3 AS BIGINT) IS NULL OR e.status = ?3)"                                          \
    " AND (CAST(?16 AS BIGINT) IS NULL OR e.last_seen_at < ?16)"                                  \
    " AND (CAST(?17 AS BIGINT) IS NULL OR e.last_seen_at > ?17)"
/* None of FILTER_E's parameters is set (a constant, evaluated once). */
#define FILTER_NO_E                                                                                \
    " CAST(?1 AS TEXT) IS NULL AND CAST(?2 AS TEXT) IS NULL AND CAST(?3 AS BIGINT) IS NULL"       \
    " AND CAST(?16 AS BIGINT) IS NULL AND CAST(?17 AS BIGINT) IS NULL"
#define FILTER_D                                                                                   \
    " (CAST(?4 AS BIGINT) IS NULL OR d.os_num >= ?4)"                                             \
    " AND (CAST(?5 AS BIGINT) IS NULL OR d.os_num <= ?5)"                                         \
    " AND (CAST(?6 AS BIGINT) IS NULL OR d.os_num = ?6)"                                          \
    " AND (CAST(?7 AS TEXT) IS NULL OR d.product_name = ?7 OR d.model = ?7"                       \
    "  OR d.model_name = ?7)"                                                                     \
    " AND (CAST(?8 AS BIGINT) IS NULL OR d.supervised = ?8)"                                      \
    " AND (CAST(?9 AS BIGINT) IS NULL OR d.passcode_present = ?9)"                                \
    " AND (CAST(?10 AS BIGINT) IS NULL OR d.encryption_caps = ?10)"                               \
    " AND (CAST(?11 AS BIGINT) IS NULL OR d.battery_pct < ?11)"
#define FILTER_SUB(id)                                                                             \
    " (CAST(?12 AS TEXT) IS NULL OR " id " IN"                                                    \
    "  (SELECT a.enrollment_id FROM inv_apps a WHERE a.identifier = ?12))"                        \
    " AND (CAST(?13 AS TEXT) IS NULL OR " id " IN"                                                \
    "  (SELECT p.enrollment_id FROM inv_profiles p WHERE p.identifier = ?13))"                    \
    " AND (CAST(?14 AS BIGINT) IS NULL OR " id " IN (SELECT c.enrollment_id"                      \
    "  FROM inv_certificates c WHERE c.not_after >= ?14 AND c.not_after < ?15))"

/* No inventory-row condition: every enrollment is a candidate, with or
 * without an inv_device row; the window count rides on the page. */
static const char sql_filter[] =
    "SELECT e.id, COUNT(*) OVER () FROM enrollments e"
    " LEFT JOIN inv_device d ON d.enrollment_id = e.id"
    " WHERE" FILTER_E " AND" FILTER_D " AND" FILTER_SUB("e.id")
    " ORDER BY e.id LIMIT ?18 OFFSET ?19";

/* With a condition on the inventory row (os, model, supervised, passcode,
 * encryption, battery: the common filters) only devices with such a row
 * can match, so the scan is over inv_device, through its covering index
 * inv_device_filter (migration 13) in enrollment id order: the page stops
 * after offset + limit matches, and the count reads no enrollment at all
 * unless an enrollment condition is set too (the _e statements). Counting
 * apart from the page is what keeps a page cheap: a window count makes
 * the database gather and sort every match first. On PostgreSQL
 * inv_device's id compares bytewise like enrollments.id (migrations 7, 9),
 * so both orders agree and its primary key serves the page. */
#define FROM_D " FROM inv_device d WHERE" FILTER_NO_E " AND" FILTER_D " AND" \
               FILTER_SUB("d.enrollment_id")
#define FROM_DE                                                                                    \
    " FROM inv_device d CROSS JOIN enrollments e WHERE e.id = d.enrollment_id AND" FILTER_E     \
    " AND" FILTER_D " AND" FILTER_SUB("d.enrollment_id")
#define PAGE " ORDER BY d.enrollment_id LIMIT ?18 OFFSET ?19"
static const char sql_filter_d[] = "SELECT d.enrollment_id" FROM_D PAGE;
static const char sql_count_d[] = "SELECT COUNT(*)" FROM_D;
static const char sql_filter_de[] = "SELECT d.enrollment_id" FROM_DE PAGE;
static const char sql_count_de[] = "SELECT COUNT(*)" FROM_DE;

/* "%text%" with LIKE's wildcards escaped; NULL when out of memory. */
static char *like_pattern(const char *text)
{
    size_t n = strlen(text);
    char *p = malloc(2 * n + 3);
    if (!p)
        return NULL;
    size_t o = 0;
    p[o++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
            p[o++] = '\\';
        p[o++] = text[i];
    }
    p[o++] = '%';
    p[o] = '\0';
    return p;
}

void store_inv_ids_free(char **ids, size_t n)
{
    if (!ids)
        return;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Binds ?1..?17, and the page (?18 limit, ?19 offset) when limit > 0. */
static void bind_filter(struct sql_stmt *st, const struct store_inv_filter *f, const char *like,
                        int64_t limit, int64_t offset, int *code)
{
    sql_bind_text(st, 1, like, code);
    sql_bind_text(st, 2, f->serial_number, code);
    bind_opt_int(st, 3, f->status > 0 ? f->status : -1, code);
    bind_opt_int(st, 4, f->os_min, code);
    bind_opt_int(st, 5, f->os_max, code);
    bind_opt_int(st, 6, f->os_eq, code);
    sql_bind_text(st, 7, f->model, code);
    bind_opt_int(st, 8, f->supervised, code);
    bind_opt_int(st, 9, f->passcode, code);
    bind_opt_int(st, 10, f->encryption, code);
    bind_opt_int(st, 11, f->battery_below, code);
    sql_bind_text(st, 12, f->app, code);
    sql_bind_text(st, 13, f->profile, code);
    if (f->cert_expiring_to > 0) {
        sql_bind_int(st, 14, f->cert_expiring_from, code);
        sql_bind_int(st, 15, f->cert_expiring_to, code);
    } else {
        sql_bind_null(st, 14, code);
        sql_bind_null(st, 15, code);
    }
    bind_opt_int(st, 16, f->seen_before > 0 ? f->seen_before : -1, code);
    bind_opt_int(st, 17, f->seen_after > 0 ? f->seen_after : -1, code);
    if (limit > 0) {
        sql_bind_int(st, 18, limit, code);
        sql_bind_int(st, 19, offset, code);
    }
}

/* Whether the filter has a condition on the inventory row (FILTER_D), and
 * one on the enrollment (FILTER_E). */
static int filter_has_d(const struct store_inv_filter *f)
{
    return f->os_min >= 0 || f->os_max >= 0 || f->os_eq >= 0 || f->model || f->supervised >= 0 ||
           f->passcode >= 0 || f->encryption >= 0 || f->battery_below >= 0;
}

static int filter_has_e(const struct store_inv_filter *f, const char *like)
{
    return like || f->serial_number || f->status > 0 || f->seen_before > 0 || f->seen_after > 0;
}

/* One page of the filter (sql: a page statement); with count, *total from
 * its window count (0 on an empty page). */
static int filter_page(struct store *s, const char *sql, int count, const struct store_inv_filter *f,
                       const char *like, int64_t limit, int64_t offset, char ***ids, size_t *n,
                       int64_t *total)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "inventory.filter", &rc);
    if (!st)
        return rc;
    bind_filter(st, f, like, limit, offset, &code);
    char **v = NULL;
    size_t cap = 0, nv = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "inventory.filter", code)) == 1) {
        code = 0;
        if (count)
            *total = sql_col_int(st, 1);
        if (array_grow((void **)&v, &cap, nv, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        v[nv] = sql_col_strdup(st, 0, &oom);
        nv++;
        if (oom) {
            sql_done(st);
            break;
        }
    }
    if (oom || row < 0) {
        store_inv_ids_free(v, nv);
        return oom ? sql_out_of_memory("inventory.filter") : row;
    }
    *ids = v;
    *n = nv;
    return STORE_OK;
}

/* Every match of the filter, counted by sql (a count statement). */
static int filter_count(struct store *s, const char *sql, const struct store_inv_filter *f,
                        const char *like, int64_t *total)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "inventory.filter_count", &rc);
    if (!st)
        return rc;
    bind_filter(st, f, like, 0, 0, &code);
    rc = sql_first_row(s, st, "inventory.filter_count", code);
    if (rc != STORE_OK)
        return rc;
    *total = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

/* The inventory-row filters: the page, then the count. */
static int filter_by_device(struct store *s, const struct store_inv_filter *f, const char *like,
                            int64_t limit, char ***ids, size_t *n, int64_t *total)
{
    int with_e = filter_has_e(f, like);
    const char *page = with_e ? sql_filter_de : sql_filter_d;
    int rc = filter_page(s, page, 0, f, like, limit, f->offset, ids, n, total);
    if (rc == STORE_OK)
        rc = filter_count(s, with_e ? sql_count_de : sql_count_d, f, like, total);
    if (rc != STORE_OK) {
        store_inv_ids_free(*ids, *n);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int store_inventory_filter(struct store *s, const struct store_inv_filter *f, char ***ids,
                           size_t *n, int64_t *total)
{
    *ids = NULL;
    *n = 0;
    *total = 0;
    char *like = NULL;
    if (f->search && *f->search && !(like = like_pattern(f->search)))
        return sql_out_of_memory("inventory.filter");
    int64_t limit = f->limit > 0 ? f->limit : 100;
    int rc;
    if (filter_has_d(f)) {
        rc = filter_by_device(s, f, like, limit, ids, n, total);
    } else {
        rc = filter_page(s, sql_filter, 1, f, like, limit, f->offset, ids, n, total);
        /* Past the last match the window count has no row to ride on:
         * count with a one-row page from the start. */
        if (rc == STORE_OK && *n == 0 && f->offset > 0) {
            char **probe = NULL;
            size_t pn = 0;
            rc = filter_page(s, sql_filter, 1, f, like, 1, 0, &probe, &pn, total);
            store_inv_ids_free(probe, pn);
        }
    }
    free(like);
    return rc;
}

/* ---- commands ------------------------------------------------------------------- */

static const char sql_command_get[] = "SELECT request_type, payload FROM commands WHERE uuid = ?1";

int store_inventory_command(struct store *s, const char *uuid, char **request_type,
                            uint8_t **payload, size_t *len)
{
    *request_type = NULL;
    *payload = NULL;
    *len = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_command_get, "inventory.command", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, uuid, &code);
    rc = sql_first_row(s, st, "inventory.command", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *request_type = sql_col_strdup(st, 0, &oom);
    *payload = sql_col_blobdup(st, 1, len, &oom);
    sql_done(st);
    if (oom || !*request_type) {
        free(*request_type);
        free(*payload);
        *request_type = NULL;
        *payload = NULL;
        return sql_out_of_memory("inventory.command");
    }
    return STORE_OK;
}

/* The device's waiting rows (queue_device: active, enrollment_id), each
 * command looked up by its key: a row per waiting command, NULL when of
 * another type. Written as a subquery per row: as a join, PostgreSQL's
 * generic plan hashes the queue rows against a full scan of commands
 * (every command of every device). */
static const char sql_pending[] =
    "SELECT (SELECT c.payload FROM commands c WHERE c.uuid = q.command_uuid"
    " AND c.request_type = ?2) FROM queue q WHERE q.enrollment_id = ?1 AND q.active = 1";

void store_inv_blobs_free(struct store_inv_blob *b, size_t n)
{
    if (!b)
        return;
    for (size_t i = 0; i < n; i++)
        free(b[i].data);
    free(b);
}

int store_inventory_pending(struct store *s, const char *id, const char *request_type,
                            struct store_inv_blob **payloads, size_t *n)
{
    *payloads = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_pending, "inventory.pending", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, request_type, &code);
    struct store_inv_blob *v = NULL;
    size_t cap = 0, count = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "inventory.pending", code)) == 1) {
        code = 0;
        if (sql_col_is_null(st, 0))
            continue; /* another type */
        if (array_grow((void **)&v, &cap, count, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        v[count].data = sql_col_blobdup(st, 0, &v[count].len, &oom);
        count++;
        if (oom) {
            sql_done(st);
            break;
        }
    }
    if (oom || row < 0) {
        store_inv_blobs_free(v, count);
        return oom ? sql_out_of_memory("inventory.pending") : row;
    }
    *payloads = v;
    *n = count;
    return STORE_OK;
}

/* ---- refresh -------------------------------------------------------------------- */

static const char sql_refresh_due[] =
    "SELECT e.id FROM enrollments e LEFT JOIN inv_refresh r ON r.enrollment_id = e.id"
    " WHERE e.status = 2 AND e.parent_id IS NULL"
    " AND (r.queued_at IS NULL OR r.queued_at < ?1) ORDER BY e.id LIMIT ?2";
static const char sql_refresh_mark[] =
    "INSERT INTO inv_refresh (enrollment_id, queued_at) VALUES (?1, ?2)"
    " ON CONFLICT (enrollment_id) DO UPDATE SET queued_at = excluded.queued_at";

int store_inventory_refresh_due(struct store *s, int64_t before, int64_t limit, char ***ids,
                                size_t *n)
{
    *ids = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_refresh_due, "inventory.refresh_due", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, before, &code);
    sql_bind_int(st, 2, limit, &code);
    char **v = NULL;
    size_t cap = 0, count = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "inventory.refresh_due", code)) == 1) {
        code = 0;
        if (array_grow((void **)&v, &cap, count, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        v[count] = sql_col_strdup(st, 0, &oom);
        count++;
        if (oom) {
            sql_done(st);
            break;
        }
    }
    if (oom || row < 0) {
        store_inv_ids_free(v, count);
        return oom ? sql_out_of_memory("inventory.refresh_due") : row;
    }
    *ids = v;
    *n = count;
    return STORE_OK;
}

int store_inventory_refresh_mark(struct store *s, const char *id, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_refresh_mark, "inventory.refresh_mark", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, now, &code);
    return sql_exec(s, st, "inventory.refresh_mark", code);
}
