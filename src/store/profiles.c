/* profiles.c: the store's profiles section (store_profiles.h) on sql.h:
 * profiles and their versions, groups with static members, rules and
 * assigned profiles, device attributes, and the per-device convergence
 * state core/profiles.c reads and writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sql.h"
#include "util/array.h"
#include "store/store.h"
#include "util/buf.h"

/* Runs a statement binding text parameters 1..n (NULL binds NULL). */
static int exec_text(struct store *s, const char *sql, const char *op, const char *const *v,
                     size_t n)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    for (size_t i = 0; i < n; i++)
        sql_bind_text(st, (int)i + 1, v[i], &code);
    return sql_exec(s, st, op, code);
}

/* ---- profiles ------------------------------------------------------------------ */

void store_profile_free(struct store_profile *p)
{
    store_profiles_free(p, p ? 1 : 0);
}

void store_profiles_free(struct store_profile *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].identifier);
        free(p[i].display_name);
        free(p[i].payload_uuid);
        free(p[i].types);
        free(p[i].flags);
        free(p[i].source);
        free(p[i].signer);
    }
    free(p);
}

static const char sql_profile_upsert[] =
    "INSERT INTO profiles (identifier, display_name, current_version, created_at, updated_at)"
    " VALUES (?1, ?2, 1, ?3, ?3) ON CONFLICT (identifier) DO UPDATE SET"
    " display_name = excluded.display_name, current_version = profiles.current_version + 1,"
    " updated_at = excluded.updated_at";
static const char sql_profile_current[] =
    "SELECT current_version FROM profiles WHERE identifier = ?1";
static const char sql_version_insert[] =
    "INSERT INTO profile_versions (identifier, version, payload_uuid, content, types, flags,"
    " has_secrets, supervised_only, source, signer, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

int store_profile_put(struct store *s, struct store_profile *p, const uint8_t *content,
                      size_t len, int64_t now)
{
    int nested = 0;
    int rc = sql_atomic_begin(s, "profiles.put", &nested);
    if (rc != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_profile_upsert, "profiles.put", &rc);
    if (st) {
        sql_bind_text(st, 1, p->identifier, &code);
        sql_bind_text(st, 2, p->display_name, &code);
        sql_bind_int(st, 3, now, &code);
        rc = sql_exec(s, st, "profiles.put", code);
    }
    if (rc == STORE_OK && (st = sql_prepare(s, sql_profile_current, "profiles.put", &rc))) {
        code = 0;
        sql_bind_text(st, 1, p->identifier, &code);
        rc = sql_first_row(s, st, "profiles.put", code);
        if (rc == STORE_OK) {
            p->version = sql_col_int(st, 0);
            sql_done(st);
        }
    }
    if (rc == STORE_OK && (st = sql_prepare(s, sql_version_insert, "profiles.put", &rc))) {
        code = 0;
        sql_bind_text(st, 1, p->identifier, &code);
        sql_bind_int(st, 2, p->version, &code);
        sql_bind_text(st, 3, p->payload_uuid, &code);
        sql_bind_blob(st, 4, content, len, &code);
        sql_bind_text(st, 5, p->types, &code);
        sql_bind_text(st, 6, p->flags, &code);
        sql_bind_int(st, 7, p->has_secrets, &code);
        sql_bind_int(st, 8, p->supervised_only, &code);
        sql_bind_text(st, 9, p->source, &code);
        sql_bind_text(st, 10, p->signer, &code);
        sql_bind_int(st, 11, now, &code);
        rc = sql_exec(s, st, "profiles.put", code);
    }
    p->updated_at = now;
    return sql_atomic_end(s, nested, rc, "profiles.put");
}

#define PROFILE_COLS                                                                        \
    "p.identifier, p.display_name, v.version, v.payload_uuid, v.types, v.flags,"           \
    " v.has_secrets, v.supervised_only, v.source, v.signer, p.created_at, v.created_at,"  \
    " (SELECT COUNT(*) FROM group_profiles g WHERE g.identifier = p.identifier)"

static const char sql_profile_get[] =
    "SELECT " PROFILE_COLS ", v.content FROM profiles p JOIN profile_versions v"
    " ON v.identifier = p.identifier"
    " AND v.version = CASE WHEN ?2 = 0 THEN p.current_version ELSE ?2 END"
    " WHERE p.identifier = ?1";
static const char sql_profile_list[] =
    "SELECT " PROFILE_COLS " FROM profiles p JOIN profile_versions v"
    " ON v.identifier = p.identifier AND v.version = p.current_version ORDER BY p.identifier";

static void read_profile(struct sql_stmt *st, struct store_profile *p, int *oom)
{
    p->identifier = sql_col_strdup(st, 0, oom);
    p->display_name = sql_col_strdup(st, 1, oom);
    p->version = sql_col_int(st, 2);
    p->payload_uuid = sql_col_strdup(st, 3, oom);
    p->types = sql_col_strdup(st, 4, oom);
    p->flags = sql_col_strdup(st, 5, oom);
    p->has_secrets = (int)sql_col_int(st, 6);
    p->supervised_only = (int)sql_col_int(st, 7);
    p->source = sql_col_strdup(st, 8, oom);
    p->signer = sql_col_strdup(st, 9, oom);
    p->created_at = sql_col_int(st, 10);
    p->updated_at = sql_col_int(st, 11);
    p->groups = sql_col_int(st, 12);
}

int store_profile_get(struct store *s, const char *identifier, int64_t version,
                      struct store_profile **out, uint8_t **content, size_t *len)
{
    *out = NULL;
    if (content)
        *content = NULL;
    int rc = STORE_OK, code = 0, oom = 0;
    struct sql_stmt *st = sql_prepare(s, sql_profile_get, "profiles.get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, identifier, &code);
    sql_bind_int(st, 2, version, &code);
    rc = sql_first_row(s, st, "profiles.get", code);
    if (rc != STORE_OK)
        return rc;
    struct store_profile *p = calloc(1, sizeof *p);
    if (!p) {
        sql_done(st);
        return sql_out_of_memory("profiles.get");
    }
    read_profile(st, p, &oom);
    if (content)
        *content = sql_col_blobdup(st, 13, len, &oom);
    sql_done(st);
    if (oom) {
        store_profile_free(p);
        if (content) {
            free(*content);
            *content = NULL;
        }
        return sql_out_of_memory("profiles.get");
    }
    *out = p;
    return STORE_OK;
}

int store_profile_list(struct store *s, struct store_profile **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, oom = 0, row;
    struct sql_stmt *st = sql_prepare(s, sql_profile_list, "profiles.list", &rc);
    if (!st)
        return rc;
    struct store_profile *v = NULL;
    size_t cap = 0, cnt = 0;
    while ((row = sql_next_row(s, st, "profiles.list", 0)) == 1) {
        if (array_grow((void **)&v, &cap, cnt, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        memset(&v[cnt], 0, sizeof *v);
        read_profile(st, &v[cnt++], &oom);
    }
    if (row < 0 || oom) {
        store_profiles_free(v, cnt);
        return row < 0 ? row : sql_out_of_memory("profiles.list");
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

static const char sql_profile_delete[] = "DELETE FROM profiles WHERE identifier = ?1";

int store_profile_delete(struct store *s, const char *identifier)
{
    const char *v[] = {identifier};
    int rc = exec_text(s, sql_profile_delete, "profiles.delete", v, 1);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

/* ---- groups ------------------------------------------------------------------------ */

void store_groups_free(struct store_group *g, size_t n)
{
    if (!g)
        return;
    for (size_t i = 0; i < n; i++) {
        free(g[i].name);
        free(g[i].description);
        free(g[i].rules);
        free(g[i].enter_settings);
        free(g[i].leave_settings);
    }
    free(g);
}

static const char sql_group_create[] =
    "INSERT INTO device_groups (name, description, rules, enter_settings, leave_settings,"
    " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char sql_group_update[] =
    "UPDATE device_groups SET description = COALESCE(?2, description), rules = ?3,"
    " enter_settings = ?4, leave_settings = ?5 WHERE name = ?1";
static const char sql_group_delete[] = "DELETE FROM device_groups WHERE name = ?1";
#define GROUP_COLS                                                                            \
    "g.name, g.description, g.rules, g.created_at,"                                         \
    " g.enter_settings, g.leave_settings,"                                                   \
    " (SELECT COUNT(*) FROM group_members m WHERE m.group_name = g.name),"                  \
    " (SELECT COUNT(*) FROM group_profiles p WHERE p.group_name = g.name)"
static const char sql_group_get[] = "SELECT " GROUP_COLS " FROM device_groups g WHERE g.name = ?1";
static const char sql_group_list[] = "SELECT " GROUP_COLS " FROM device_groups g ORDER BY g.name";

int store_group_create(struct store *s, const struct store_group *g, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_group_create, "groups.create", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, g->name, &code);
    sql_bind_text(st, 2, g->description, &code);
    sql_bind_text(st, 3, g->rules, &code);
    sql_bind_text(st, 4, g->enter_settings, &code);
    sql_bind_text(st, 5, g->leave_settings, &code);
    sql_bind_int(st, 6, now, &code);
    return sql_exec(s, st, "groups.create", code);
}

int store_group_update(struct store *s, const struct store_group *g)
{
    const char *v[] = {g->name, g->description, g->rules, g->enter_settings, g->leave_settings};
    int rc = exec_text(s, sql_group_update, "groups.update", v, 5);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_group_delete(struct store *s, const char *name)
{
    const char *v[] = {name};
    int rc = exec_text(s, sql_group_delete, "groups.delete", v, 1);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

static int read_groups(struct store *s, const char *sql, const char *name,
                       struct store_group **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0, oom = 0, row;
    struct sql_stmt *st = sql_prepare(s, sql, "groups.read", &rc);
    if (!st)
        return rc;
    if (name)
        sql_bind_text(st, 1, name, &code);
    struct store_group *v = NULL;
    size_t cap = 0, cnt = 0;
    while ((row = sql_next_row(s, st, "groups.read", code)) == 1) {
        code = 0;
        if (array_grow((void **)&v, &cap, cnt, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        struct store_group *g = &v[cnt++];
        g->name = sql_col_strdup(st, 0, &oom);
        g->description = sql_col_strdup(st, 1, &oom);
        g->rules = sql_col_strdup(st, 2, &oom);
        g->created_at = sql_col_int(st, 3);
        g->enter_settings = sql_col_strdup(st, 4, &oom);
        g->leave_settings = sql_col_strdup(st, 5, &oom);
        g->members = sql_col_int(st, 6);
        g->profiles = sql_col_int(st, 7);
    }
    if (row < 0 || oom) {
        store_groups_free(v, cnt);
        return row < 0 ? row : sql_out_of_memory("groups.read");
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

int store_group_get(struct store *s, const char *name, struct store_group **out)
{
    size_t n = 0;
    int rc = read_groups(s, sql_group_get, name, out, &n);
    if (rc == STORE_OK && n == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_group_list(struct store *s, struct store_group **out, size_t *n)
{
    return read_groups(s, sql_group_list, NULL, out, n);
}

static const char sql_member_add[] =
    "INSERT INTO group_members (group_name, enrollment_id) VALUES (?1, ?2)"
    " ON CONFLICT (group_name, enrollment_id) DO NOTHING";
static const char sql_member_remove[] =
    "DELETE FROM group_members WHERE group_name = ?1 AND enrollment_id = ?2";
static const char sql_assign[] =
    "INSERT INTO group_profiles (group_name, identifier, created_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (group_name, identifier) DO NOTHING";
static const char sql_unassign[] =
    "DELETE FROM group_profiles WHERE group_name = ?1 AND identifier = ?2";

int store_group_member_add(struct store *s, const char *name, const char *id)
{
    const char *v[] = {name, id};
    return exec_text(s, sql_member_add, "groups.member_add", v, 2);
}

int store_group_member_remove(struct store *s, const char *name, const char *id)
{
    const char *v[] = {name, id};
    int rc = exec_text(s, sql_member_remove, "groups.member_remove", v, 2);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_group_assign(struct store *s, const char *name, const char *identifier, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_assign, "groups.assign", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_text(st, 2, identifier, &code);
    sql_bind_int(st, 3, now, &code);
    return sql_exec(s, st, "groups.assign", code);
}

int store_group_unassign(struct store *s, const char *name, const char *identifier)
{
    const char *v[] = {name, identifier};
    int rc = exec_text(s, sql_unassign, "groups.unassign", v, 2);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

static const char sql_attr_set[] =
    "INSERT INTO device_attributes (enrollment_id, name, value) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (enrollment_id, name) DO UPDATE SET value = excluded.value";
static const char sql_attr_delete[] =
    "DELETE FROM device_attributes WHERE enrollment_id = ?1 AND name = ?2";

int store_device_attribute_set(struct store *s, const char *id, const char *name,
                               const char *value)
{
    const char *v[] = {id, name, value};
    if (!value)
        return exec_text(s, sql_attr_delete, "profiles.attribute", v, 2);
    return exec_text(s, sql_attr_set, "profiles.attribute", v, 3);
}

/* ---- bulk reads ------------------------------------------------------------------- */

void store_pairs_free(struct store_pair *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].a);
        free(p[i].b);
    }
    free(p);
}

static int read_pairs(struct store *s, const char *sql, const char *op, struct store_pair **out,
                      size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, oom = 0, row;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    struct store_pair *v = NULL;
    size_t cap = 0, cnt = 0;
    while ((row = sql_next_row(s, st, op, 0)) == 1) {
        if (array_grow((void **)&v, &cap, cnt, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        v[cnt].a = sql_col_strdup(st, 0, &oom);
        v[cnt].b = sql_col_strdup(st, 1, &oom);
        cnt++;
    }
    if (row < 0 || oom) {
        store_pairs_free(v, cnt);
        return row < 0 ? row : sql_out_of_memory(op);
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

static const char sql_members[] =
    "SELECT group_name, enrollment_id FROM group_members ORDER BY group_name, enrollment_id";
static const char sql_assignments[] =
    "SELECT group_name, identifier FROM group_profiles ORDER BY group_name, identifier";
static const char sql_group_rules[] =
    "SELECT name, rules FROM device_groups WHERE rules IS NOT NULL ORDER BY name";

int store_profiles_members(struct store *s, struct store_pair **out, size_t *n)
{
    return read_pairs(s, sql_members, "profiles.members", out, n);
}

int store_profiles_assignments(struct store *s, struct store_pair **out, size_t *n)
{
    return read_pairs(s, sql_assignments, "profiles.assignments", out, n);
}

int store_profiles_group_rules(struct store *s, struct store_pair **out, size_t *n)
{
    return read_pairs(s, sql_group_rules, "profiles.group_rules", out, n);
}

static const char sql_presence[] =
    "SELECT group_name, enrollment_id FROM group_presence ORDER BY group_name, enrollment_id";
static const char sql_presence_add[] =
    "INSERT INTO group_presence (group_name, enrollment_id) VALUES (?1, ?2)"
    " ON CONFLICT (group_name, enrollment_id) DO NOTHING";
static const char sql_presence_del[] =
    "DELETE FROM group_presence WHERE group_name = ?1 AND enrollment_id = ?2";

int store_profiles_presence(struct store *s, struct store_pair **out, size_t *n)
{
    return read_pairs(s, sql_presence, "profiles.presence", out, n);
}

int store_profiles_presence_set(struct store *s, const char *group, const char *id, int present)
{
    const char *v[] = {group, id};
    return exec_text(s, present ? sql_presence_add : sql_presence_del, "profiles.presence_set",
                     v, 2);
}

void store_pdevices_free(struct store_pdevice *d, size_t n)
{
    if (!d)
        return;
    for (size_t i = 0; i < n; i++) {
        free(d[i].id);
        free(d[i].product_name);
        free(d[i].model);
        free(d[i].model_name);
        free(d[i].user);
        free(d[i].attrs);
    }
    free(d);
}

/* Two statements, not one with "?1 IS NULL OR e.id = ?1": that form keeps
 * the planner from the primary key, and one device's convergence (at every
 * enrollment) would scan the whole fleet. */
#define SQL_DEVICES                                                                                \
    "SELECT e.id, COALESCE(d.product_name, e.product_name), COALESCE(d.model, e.model),"          \
    " COALESCE(d.model_name, e.model_name), e.user_short_name, d.os_num, d.supervised,"           \
    " (SELECT COUNT(*) FROM device_attributes a WHERE a.enrollment_id = e.id)"                    \
    " FROM enrollments e LEFT JOIN inv_device d ON d.enrollment_id = e.id"                        \
    " WHERE e.status = 2 AND e.parent_id IS NULL"
static const char sql_devices[] = SQL_DEVICES " ORDER BY e.id";
static const char sql_device_one[] = SQL_DEVICES " AND e.id = ?1";
static const char sql_attrs[] =
    "SELECT name, value FROM device_attributes WHERE enrollment_id = ?1 ORDER BY name";

/* "name=value\n" lines of a device's attributes into d->attrs. */
static int read_attrs(struct store *s, struct store_pdevice *d)
{
    int rc = STORE_OK, code = 0, row, oom = 0;
    struct sql_stmt *st = sql_prepare(s, sql_attrs, "profiles.attrs", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, d->id, &code);
    struct buf b = {0};
    while ((row = sql_next_row(s, st, "profiles.attrs", code)) == 1) {
        code = 0;
        const char *n = sql_col_text(st, 0), *v = sql_col_text(st, 1);
        if (buf_printf(&b, "%s=%s\n", n ? n : "", v ? v : "") < 0)
            oom = 1;
    }
    if (row < 0) {
        buf_free(&b);
        return row;
    }
    if (oom) {
        buf_free(&b);
        return sql_out_of_memory("profiles.attrs");
    }
    d->attrs = buf_steal(&b, NULL);
    return STORE_OK;
}

int store_profiles_devices(struct store *s, const char *only, struct store_pdevice **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0, oom = 0, row;
    struct sql_stmt *st =
        sql_prepare(s, only ? sql_device_one : sql_devices, "profiles.devices", &rc);
    if (!st)
        return rc;
    if (only)
        sql_bind_text(st, 1, only, &code);
    struct store_pdevice *v = NULL;
    size_t cap = 0, cnt = 0;
    int64_t *nattrs = NULL;
    size_t acap = 0;
    while ((row = sql_next_row(s, st, "profiles.devices", code)) == 1) {
        code = 0;
        if (array_grow((void **)&v, &cap, cnt, sizeof *v) < 0 ||
            array_grow((void **)&nattrs, &acap, cnt, sizeof *nattrs) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        struct store_pdevice *d = &v[cnt];
        memset(d, 0, sizeof *d);
        d->id = sql_col_strdup(st, 0, &oom);
        d->product_name = sql_col_strdup(st, 1, &oom);
        d->model = sql_col_strdup(st, 2, &oom);
        d->model_name = sql_col_strdup(st, 3, &oom);
        d->user = sql_col_strdup(st, 4, &oom);
        d->os_num = sql_col_is_null(st, 5) ? -1 : sql_col_int(st, 5);
        d->supervised = sql_col_is_null(st, 6) ? -1 : (int)sql_col_int(st, 6);
        nattrs[cnt] = sql_col_int(st, 7);
        cnt++;
    }
    rc = row < 0 ? row : oom ? sql_out_of_memory("profiles.devices") : STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < cnt; i++)
        if (nattrs[i] > 0)
            rc = read_attrs(s, &v[i]);
    free(nattrs);
    if (rc != STORE_OK) {
        store_pdevices_free(v, cnt);
        return rc;
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

/* ---- convergence state --------------------------------------------------------------- */

void store_pstates_free(struct store_pstate *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].enrollment_id);
        free(p[i].identifier);
        free(p[i].installed_uuid);
        free(p[i].state);
        free(p[i].action);
        free(p[i].command_uuid);
        free(p[i].detail);
        free(p[i].cmd_status);
    }
    free(p);
}

#define SQL_STATES                                                                                 \
    "SELECT ps.enrollment_id, ps.identifier, ps.desired_version, ps.installed_uuid,"              \
    " ps.installed_version, ps.state, ps.action, ps.command_uuid, ps.detail, ps.updated_at,"      \
    " q.active, q.status"                                                                          \
    " FROM profile_states ps LEFT JOIN queue q"                                                    \
    " ON q.enrollment_id = ps.enrollment_id AND q.command_uuid = ps.command_uuid"
/* As for devices: one device's states by its key, not through an OR. */
static const char sql_states[] =
    SQL_STATES " WHERE (CAST(?1 AS TEXT) IS NULL OR ps.identifier = ?1)"
    " ORDER BY ps.enrollment_id, ps.identifier";
static const char sql_states_one[] =
    SQL_STATES " WHERE ps.enrollment_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR ps.identifier = ?2)"
    " ORDER BY ps.identifier";

int store_profiles_states(struct store *s, const char *only, const char *identifier,
                          struct store_pstate **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0, oom = 0, row;
    struct sql_stmt *st =
        sql_prepare(s, only ? sql_states_one : sql_states, "profiles.states", &rc);
    if (!st)
        return rc;
    if (only) {
        sql_bind_text(st, 1, only, &code);
        sql_bind_text(st, 2, identifier, &code);
    } else {
        sql_bind_text(st, 1, identifier, &code);
    }
    struct store_pstate *v = NULL;
    size_t cap = 0, cnt = 0;
    while ((row = sql_next_row(s, st, "profiles.states", code)) == 1) {
        code = 0;
        if (array_grow((void **)&v, &cap, cnt, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        struct store_pstate *p = &v[cnt++];
        memset(p, 0, sizeof *p);
        p->enrollment_id = sql_col_strdup(st, 0, &oom);
        p->identifier = sql_col_strdup(st, 1, &oom);
        p->desired_version = sql_col_int(st, 2);
        p->installed_uuid = sql_col_strdup(st, 3, &oom);
        p->installed_version = sql_col_int(st, 4);
        p->state = sql_col_strdup(st, 5, &oom);
        p->action = sql_col_strdup(st, 6, &oom);
        p->command_uuid = sql_col_strdup(st, 7, &oom);
        p->detail = sql_col_strdup(st, 8, &oom);
        p->updated_at = sql_col_int(st, 9);
        p->cmd_active = sql_col_is_null(st, 10) ? -1 : (int)sql_col_int(st, 10);
        p->cmd_status = sql_col_strdup(st, 11, &oom);
    }
    if (row < 0 || oom) {
        store_pstates_free(v, cnt);
        return row < 0 ? row : sql_out_of_memory("profiles.states");
    }
    *out = v;
    *n = cnt;
    return STORE_OK;
}

static const char sql_state_put[] =
    "INSERT INTO profile_states (enrollment_id, identifier, desired_version, installed_uuid,"
    " installed_version, state, action, command_uuid, detail, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    " ON CONFLICT (enrollment_id, identifier) DO UPDATE SET"
    " desired_version = excluded.desired_version, installed_uuid = excluded.installed_uuid,"
    " installed_version = excluded.installed_version, state = excluded.state,"
    " action = excluded.action, command_uuid = excluded.command_uuid,"
    " detail = excluded.detail, updated_at = excluded.updated_at";
static const char sql_state_delete[] =
    "DELETE FROM profile_states WHERE enrollment_id = ?1 AND identifier = ?2";

int store_profiles_state_put(struct store *s, const struct store_pstate *p, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_state_put, "profiles.state_put", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, p->enrollment_id, &code);
    sql_bind_text(st, 2, p->identifier, &code);
    if (p->desired_version > 0)
        sql_bind_int(st, 3, p->desired_version, &code);
    else
        sql_bind_null(st, 3, &code);
    sql_bind_text(st, 4, p->installed_uuid, &code);
    if (p->installed_version > 0)
        sql_bind_int(st, 5, p->installed_version, &code);
    else
        sql_bind_null(st, 5, &code);
    sql_bind_text(st, 6, p->state, &code);
    sql_bind_text(st, 7, p->action, &code);
    sql_bind_text(st, 8, p->command_uuid, &code);
    sql_bind_text(st, 9, p->detail, &code);
    sql_bind_int(st, 10, now, &code);
    return sql_exec(s, st, "profiles.state_put", code);
}

int store_profiles_state_delete(struct store *s, const char *id, const char *identifier)
{
    const char *v[] = {id, identifier};
    return exec_text(s, sql_state_delete, "profiles.state_delete", v, 2);
}

static const char sql_ack_install[] =
    "UPDATE profile_states SET installed_version = desired_version, state = 'installed',"
    " action = NULL, detail = NULL, updated_at = ?3,"
    " installed_uuid = (SELECT v.payload_uuid FROM profile_versions v"
    "  WHERE v.identifier = profile_states.identifier"
    "  AND v.version = profile_states.desired_version)"
    " WHERE enrollment_id = ?1 AND command_uuid = ?2 AND action = 'install'";
static const char sql_ack_remove[] =
    "DELETE FROM profile_states WHERE enrollment_id = ?1 AND command_uuid = ?2"
    " AND action = 'remove'";

int store_profiles_ack_install(struct store *s, const char *id, const char *command_uuid,
                               int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_ack_install, "profiles.ack_install", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, command_uuid, &code);
    sql_bind_int(st, 3, now, &code);
    return sql_exec(s, st, "profiles.ack_install", code);
}

int store_profiles_ack_remove(struct store *s, const char *id, const char *command_uuid)
{
    const char *v[] = {id, command_uuid};
    return exec_text(s, sql_ack_remove, "profiles.ack_remove", v, 2);
}

/* What the device reports wins over what steward believes; a steward
 * profile reported without a state row is adopted (it was installed by
 * steward before the state was lost, or by an earlier server). */
static const char sql_sync_update[] =
    "UPDATE profile_states SET updated_at = ?2,"
    " installed_uuid = (SELECT i.uuid FROM inv_profiles i"
    "  WHERE i.enrollment_id = profile_states.enrollment_id"
    "  AND i.identifier = profile_states.identifier),"
    " installed_version = (SELECT v.version FROM inv_profiles i JOIN profile_versions v"
    "  ON v.identifier = i.identifier AND v.payload_uuid = i.uuid"
    "  WHERE i.enrollment_id = profile_states.enrollment_id"
    "  AND i.identifier = profile_states.identifier)"
    " WHERE enrollment_id = ?1";
static const char sql_sync_adopt[] =
    "INSERT INTO profile_states (enrollment_id, identifier, installed_uuid, installed_version,"
    " state, updated_at)"
    " SELECT i.enrollment_id, i.identifier, i.uuid,"
    " (SELECT v.version FROM profile_versions v WHERE v.identifier = i.identifier"
    "  AND v.payload_uuid = i.uuid), 'installed', ?2"
    " FROM inv_profiles i JOIN profiles p ON p.identifier = i.identifier"
    " WHERE i.enrollment_id = ?1 AND i.is_managed = 1"
    " ON CONFLICT (enrollment_id, identifier) DO NOTHING";

int store_profiles_sync_installed(struct store *s, const char *id, int64_t now)
{
    int nested = 0;
    int rc = sql_atomic_begin(s, "profiles.sync", &nested);
    if (rc != STORE_OK)
        return rc;
    const char *const sqls[] = {sql_sync_update, sql_sync_adopt};
    for (size_t i = 0; rc == STORE_OK && i < 2; i++) {
        int code = 0;
        struct sql_stmt *st = sql_prepare(s, sqls[i], "profiles.sync", &rc);
        if (!st)
            break;
        sql_bind_text(st, 1, id, &code);
        sql_bind_int(st, 2, now, &code);
        rc = sql_exec(s, st, "profiles.sync", code);
    }
    return sql_atomic_end(s, nested, rc, "profiles.sync");
}

static const char sql_identity[] =
    "SELECT c.der FROM enrollments e JOIN certs c ON c.fingerprint = e.cert_fp"
    " WHERE e.id = ?1 AND c.der IS NOT NULL";

int store_profiles_identity(struct store *s, const char *id, uint8_t **der, size_t *len)
{
    *der = NULL;
    int rc = STORE_OK, code = 0, oom = 0;
    struct sql_stmt *st = sql_prepare(s, sql_identity, "profiles.identity", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "profiles.identity", code);
    if (rc != STORE_OK)
        return rc;
    *der = sql_col_blobdup(st, 0, len, &oom);
    sql_done(st);
    if (oom)
        return sql_out_of_memory("profiles.identity");
    return *der ? STORE_OK : STORE_NOTFOUND;
}

static const char sql_lock[] = "SELECT pg_advisory_xact_lock(7011)";

int store_profiles_lock(struct store *s)
{
    if (sql_dialect(s) != STORE_DIALECT_POSTGRES)
        return STORE_OK;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql_lock, "profiles.lock", &rc);
    if (!st)
        return rc;
    rc = sql_first_row(s, st, "profiles.lock", 0);
    if (rc == STORE_OK)
        sql_done(st);
    return rc;
}
