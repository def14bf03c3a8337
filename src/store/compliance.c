/* compliance.c: the compliance tables of migration 10 on sql.h: policies,
 * the sparse per-device policy states, their history, lost/wipe marks, and
 * the fact scans the rule engine reads (one statement per fact, over the
 * whole fleet or one enrollment). Declared in store_compliance.h; called by
 * core/compliance.c. One SQL text serves every backend. */
#include "store/store.h"
#include "store/sql.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

/* ---- policies ---------------------------------------------------------------- */

void store_compliance_policy_clear(struct store_compliance_policy *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->description);
    free(p->rules);
    free(p->scope);
    free(p->actions);
    memset(p, 0, sizeof *p);
}

void store_compliance_policies_free(struct store_compliance_policy *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        store_compliance_policy_clear(&p[i]);
    free(p);
}

#define POLICY_COLS                                                                       \
    "id, name, description, enabled, rules, scope, grace_seconds, actions, wipe_enabled," \
    " in_scope, evaluated_at, created_at, updated_at"

static const char sql_policy_add[] =
    "INSERT INTO compliance_policies (name, description, enabled, rules, scope, grace_seconds,"
    " actions, wipe_enabled, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING id";
static const char sql_policy_update[] =
    "UPDATE compliance_policies SET name = ?2, description = ?3, enabled = ?4, rules = ?5,"
    " scope = ?6, grace_seconds = ?7, actions = ?8, wipe_enabled = ?9, updated_at = ?10"
    " WHERE id = ?1";
static const char sql_policy_get[] =
    "SELECT " POLICY_COLS " FROM compliance_policies WHERE id = ?1";
static const char sql_policy_delete[] = "DELETE FROM compliance_policies WHERE id = ?1";
static const char sql_policy_states_delete[] = "DELETE FROM compliance_state WHERE policy_id = ?1";
static const char sql_policies_all[] =
    "SELECT " POLICY_COLS " FROM compliance_policies ORDER BY id";
static const char sql_policies_enabled[] =
    "SELECT " POLICY_COLS " FROM compliance_policies WHERE enabled = 1 ORDER BY id";
static const char sql_policy_evaluated[] =
    "UPDATE compliance_policies SET in_scope = ?2, evaluated_at = ?3 WHERE id = ?1";

static void bind_policy(struct sql_stmt *st, int first, const struct store_compliance_policy *p,
                        int *code)
{
    sql_bind_text(st, first, p->name, code);
    sql_bind_text(st, first + 1, p->description, code);
    sql_bind_int(st, first + 2, p->enabled ? 1 : 0, code);
    sql_bind_text(st, first + 3, p->rules, code);
    sql_bind_text(st, first + 4, p->scope, code);
    sql_bind_int(st, first + 5, p->grace_seconds, code);
    sql_bind_text(st, first + 6, p->actions, code);
    sql_bind_int(st, first + 7, p->wipe_enabled ? 1 : 0, code);
}

int store_compliance_policy_add(struct store *s, const struct store_compliance_policy *p,
                                int64_t now, int64_t *id)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_policy_add, "compliance.policy_add", &rc);
    if (!st)
        return rc;
    bind_policy(st, 1, p, &code);
    sql_bind_int(st, 9, now, &code);
    rc = sql_first_row(s, st, "compliance.policy_add", code);
    if (rc != STORE_OK)
        return rc;
    if (id)
        *id = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

int store_compliance_policy_update(struct store *s, const struct store_compliance_policy *p,
                                   int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_policy_update, "compliance.policy_update", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, p->id, &code);
    bind_policy(st, 2, p, &code);
    sql_bind_int(st, 10, now, &code);
    rc = sql_exec(s, st, "compliance.policy_update", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

/* The current row into p; -1 when out of memory. */
static int read_policy(struct sql_stmt *st, struct store_compliance_policy *p)
{
    int oom = 0;
    memset(p, 0, sizeof *p);
    p->id = sql_col_int(st, 0);
    p->name = sql_col_strdup(st, 1, &oom);
    p->description = sql_col_strdup(st, 2, &oom);
    p->enabled = (int)sql_col_int(st, 3);
    p->rules = sql_col_strdup(st, 4, &oom);
    p->scope = sql_col_strdup(st, 5, &oom);
    p->grace_seconds = sql_col_int(st, 6);
    p->actions = sql_col_strdup(st, 7, &oom);
    p->wipe_enabled = (int)sql_col_int(st, 8);
    p->in_scope = sql_col_int(st, 9);
    p->evaluated_at = sql_col_int(st, 10);
    p->created_at = sql_col_int(st, 11);
    p->updated_at = sql_col_int(st, 12);
    if (oom)
        store_compliance_policy_clear(p);
    return oom ? -1 : 0;
}

int store_compliance_policy_get(struct store *s, int64_t id, struct store_compliance_policy *out)
{
    memset(out, 0, sizeof *out);
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_policy_get, "compliance.policy_get", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    rc = sql_first_row(s, st, "compliance.policy_get", code);
    if (rc != STORE_OK)
        return rc;
    int bad = read_policy(st, out);
    sql_done(st);
    return bad ? sql_out_of_memory("compliance.policy_get") : STORE_OK;
}

static int exec_id(struct store *s, const char *sql, const char *op, int64_t id)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    return sql_exec(s, st, op, code);
}

int store_compliance_policy_delete(struct store *s, int64_t id)
{
    int nested = 0;
    int rc = sql_atomic_begin(s, "compliance.policy_delete", &nested);
    if (rc != STORE_OK)
        return rc;
    rc = exec_id(s, sql_policy_states_delete, "compliance.policy_delete", id);
    if (rc == STORE_OK)
        rc = exec_id(s, sql_policy_delete, "compliance.policy_delete", id);
    if (rc == STORE_OK && sql_changes(s) == 0)
        rc = STORE_NOTFOUND;
    return sql_atomic_end(s, nested, rc, "compliance.policy_delete");
}

int store_compliance_policies_list(struct store *s, int enabled_only,
                                   struct store_compliance_policy **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, enabled_only ? sql_policies_enabled : sql_policies_all,
                                      "compliance.policies", &rc);
    if (!st)
        return rc;
    struct store_compliance_policy *v = NULL;
    size_t count = 0, cap = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "compliance.policies", code)) == 1) {
        code = 0;
        if (array_grow((void **)&v, &cap, count, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        if (read_policy(st, &v[count]) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        count++;
    }
    if (oom || row < 0) {
        store_compliance_policies_free(v, count);
        return oom ? sql_out_of_memory("compliance.policies") : row;
    }
    *out = v;
    *n = count;
    return STORE_OK;
}

int store_compliance_policy_evaluated(struct store *s, int64_t id, int64_t in_scope, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_policy_evaluated, "compliance.policy_evaluated", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    sql_bind_int(st, 2, in_scope, &code);
    sql_bind_int(st, 3, now, &code);
    return sql_exec(s, st, "compliance.policy_evaluated", code);
}

/* ---- facts ----------------------------------------------------------------------- */

#define DEVICE_COLS                                                                        \
    "SELECT e.id, e.last_seen_at, d.os_version, d.supervised, d.passcode_present,"         \
    " d.passcode_compliant, d.encryption_caps, d.device_at, d.security_at FROM enrollments e" \
    " LEFT JOIN inv_device d ON d.enrollment_id = e.id"

static const char sql_devices_all[] =
    DEVICE_COLS " WHERE e.status = 2 AND e.parent_id IS NULL ORDER BY e.id";
static const char sql_devices_one[] = DEVICE_COLS " WHERE e.id = ?1";

static int opt_int(struct sql_stmt *st, int col)
{
    return sql_col_is_null(st, col) ? -1 : (int)sql_col_int(st, col);
}

int store_compliance_scan_devices(struct store *s, const char *only_id,
                                  store_compliance_device_fn fn, void *ctx)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st =
        sql_prepare(s, only_id ? sql_devices_one : sql_devices_all, "compliance.devices", &rc);
    if (!st)
        return rc;
    if (only_id)
        sql_bind_text(st, 1, only_id, &code);
    int row;
    while ((row = sql_next_row(s, st, "compliance.devices", code)) == 1) {
        code = 0;
        struct store_compliance_device d = {
            .id = sql_col_text(st, 0),
            .last_seen_at = sql_col_int(st, 1),
            .os_version = sql_col_text(st, 2),
            .supervised = opt_int(st, 3),
            .passcode_present = opt_int(st, 4),
            .passcode_compliant = opt_int(st, 5),
            .encryption_caps = opt_int(st, 6),
            .device_at = sql_col_int(st, 7),
            .security_at = sql_col_int(st, 8),
        };
        if (fn(ctx, &d) != 0) {
            sql_done(st);
            return STORE_ERR;
        }
    }
    return row < 0 ? row : STORE_OK;
}

/* Per fact: the fleet text and the one-device text. ?1 key, ?2 below, ?3 id. */
static const char *const fact_sql[][2] = {
    [STORE_CFACT_APP] = {
        "SELECT enrollment_id, NULL, 1 FROM inv_apps WHERE identifier = ?1"
        " AND CAST(?2 AS BIGINT) IS NULL",
        "SELECT enrollment_id, NULL, 1 FROM inv_apps WHERE identifier = ?1"
        " AND CAST(?2 AS BIGINT) IS NULL AND enrollment_id = ?3",
    },
    [STORE_CFACT_PROFILE] = {
        "SELECT enrollment_id, NULL, COALESCE(is_managed, 0) FROM inv_profiles"
        " WHERE identifier = ?1 AND CAST(?2 AS BIGINT) IS NULL",
        "SELECT enrollment_id, NULL, COALESCE(is_managed, 0) FROM inv_profiles"
        " WHERE identifier = ?1 AND CAST(?2 AS BIGINT) IS NULL AND enrollment_id = ?3",
    },
    [STORE_CFACT_RESTRICTION] = {
        "SELECT enrollment_id, value, 0 FROM inv_restrictions WHERE scope = 'global'"
        " AND name = ?1 AND CAST(?2 AS BIGINT) IS NULL",
        "SELECT enrollment_id, value, 0 FROM inv_restrictions WHERE scope = 'global'"
        " AND name = ?1 AND CAST(?2 AS BIGINT) IS NULL AND enrollment_id = ?3",
    },
    [STORE_CFACT_REPORTED] = {
        "SELECT enrollment_id, NULL, updated_at FROM inv_values WHERE section = 'reported'"
        " AND name = ?1 AND CAST(?2 AS BIGINT) IS NULL",
        "SELECT enrollment_id, NULL, updated_at FROM inv_values WHERE section = 'reported'"
        " AND name = ?1 AND CAST(?2 AS BIGINT) IS NULL AND enrollment_id = ?3",
    },
    [STORE_CFACT_ROAMING] = {
        "SELECT enrollment_id, value, updated_at FROM inv_values WHERE section = 'device'"
        " AND name IN ('IsRoaming', 'DataRoamingEnabled') AND name = ?1"
        " AND CAST(?2 AS BIGINT) IS NULL",
        "SELECT enrollment_id, value, updated_at FROM inv_values WHERE section = 'device'"
        " AND name IN ('IsRoaming', 'DataRoamingEnabled') AND name = ?1"
        " AND CAST(?2 AS BIGINT) IS NULL AND enrollment_id = ?3",
    },
    [STORE_CFACT_CERT_EXPIRY] = {
        "SELECT enrollment_id, NULL, MIN(not_after) FROM inv_certificates"
        " WHERE CAST(?1 AS TEXT) IS NULL AND not_after < ?2 GROUP BY enrollment_id",
        "SELECT enrollment_id, NULL, MIN(not_after) FROM inv_certificates"
        " WHERE CAST(?1 AS TEXT) IS NULL AND not_after < ?2 AND enrollment_id = ?3"
        " GROUP BY enrollment_id",
    },
};

int store_compliance_scan_facts(struct store *s, enum store_compliance_fact kind,
                                const char *key, int64_t below, const char *only_id,
                                store_compliance_fact_fn fn, void *ctx)
{
    if ((int)kind < 0 || kind > STORE_CFACT_CERT_EXPIRY)
        return STORE_ERR;
    int cert = kind == STORE_CFACT_CERT_EXPIRY;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, fact_sql[kind][only_id ? 1 : 0], "compliance.facts", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, cert ? NULL : key, &code);
    if (cert)
        sql_bind_int(st, 2, below, &code);
    else
        sql_bind_null(st, 2, &code);
    if (only_id)
        sql_bind_text(st, 3, only_id, &code);
    int row;
    while ((row = sql_next_row(s, st, "compliance.facts", code)) == 1) {
        code = 0;
        if (fn(ctx, sql_col_text(st, 0), sql_col_text(st, 1), sql_col_int(st, 2)) != 0) {
            sql_done(st);
            return STORE_ERR;
        }
    }
    return row < 0 ? row : STORE_OK;
}

/* ---- states ------------------------------------------------------------------------ */

#define STATE_COLS \
    "enrollment_id, policy_id, state, rule, observed, since, evaluated_at, episode_since, fired"

static const char sql_states_all[] =
    "SELECT " STATE_COLS " FROM compliance_state ORDER BY enrollment_id, policy_id";
static const char sql_states_one[] =
    "SELECT " STATE_COLS " FROM compliance_state WHERE enrollment_id = ?1 ORDER BY policy_id";
/* The claim: a row written only over the row the evaluator read (none: an
 * insert that loses to a row inserted meanwhile). NULL columns of the old
 * row are compared as '' / 0. */
static const char sql_state_claim_new[] =
    "INSERT INTO compliance_state (" STATE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT (enrollment_id, policy_id) DO NOTHING";
static const char sql_state_claim_over[] =
    "UPDATE compliance_state SET state = ?3, rule = ?4, observed = ?5, since = ?6,"
    " evaluated_at = ?7, episode_since = ?8, fired = ?9"
    " WHERE enrollment_id = ?1 AND policy_id = ?2 AND state = ?10"
    " AND COALESCE(rule, '') = ?11 AND COALESCE(observed, '') = ?12 AND since = ?13"
    " AND evaluated_at = ?14 AND COALESCE(episode_since, 0) = ?15 AND COALESCE(fired, '') = ?16";
static const char sql_state_delete[] =
    "DELETE FROM compliance_state WHERE enrollment_id = ?1 AND policy_id = ?2";
/* Both filters optional; without a state, the rows that are not compliant. */
static const char sql_states_list[] =
    "SELECT " STATE_COLS ", COUNT(*) OVER () FROM compliance_state"
    " WHERE (CAST(?1 AS TEXT) IS NULL AND state <> 'compliant' OR state = ?1)"
    " AND (CAST(?2 AS BIGINT) IS NULL OR policy_id = ?2)"
    " ORDER BY enrollment_id, policy_id LIMIT ?3 OFFSET ?4";
static const char sql_state_counts[] =
    "SELECT policy_id, state, COUNT(*) FROM compliance_state GROUP BY policy_id, state";

static void read_state(struct sql_stmt *st, struct store_compliance_state *r)
{
    r->enrollment_id = sql_col_text(st, 0);
    r->policy_id = sql_col_int(st, 1);
    r->state = sql_col_text(st, 2);
    r->rule = sql_col_text(st, 3);
    r->observed = sql_col_text(st, 4);
    r->since = sql_col_int(st, 5);
    r->evaluated_at = sql_col_int(st, 6);
    r->episode_since = sql_col_int(st, 7);
    r->fired = sql_col_text(st, 8);
}

int store_compliance_states_scan(struct store *s, const char *only_id,
                                 store_compliance_state_fn fn, void *ctx)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st =
        sql_prepare(s, only_id ? sql_states_one : sql_states_all, "compliance.states", &rc);
    if (!st)
        return rc;
    if (only_id)
        sql_bind_text(st, 1, only_id, &code);
    int row;
    while ((row = sql_next_row(s, st, "compliance.states", code)) == 1) {
        code = 0;
        struct store_compliance_state r;
        read_state(st, &r);
        if (fn(ctx, &r) != 0) {
            sql_done(st);
            return STORE_ERR;
        }
    }
    return row < 0 ? row : STORE_OK;
}

/* Binds a state row's columns at ?1..?9. */
static void bind_state(struct sql_stmt *st, const struct store_compliance_state *r, int *code)
{
    sql_bind_text(st, 1, r->enrollment_id, code);
    sql_bind_int(st, 2, r->policy_id, code);
    sql_bind_text(st, 3, r->state, code);
    sql_bind_text(st, 4, r->rule, code);
    sql_bind_text(st, 5, r->observed, code);
    sql_bind_int(st, 6, r->since, code);
    sql_bind_int(st, 7, r->evaluated_at, code);
    if (r->episode_since > 0)
        sql_bind_int(st, 8, r->episode_since, code);
    else
        sql_bind_null(st, 8, code);
    sql_bind_text(st, 9, r->fired, code);
}

int store_compliance_state_claim(struct store *s, const struct store_compliance_state *old,
                                 const struct store_compliance_state *r)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, old ? sql_state_claim_over : sql_state_claim_new,
                                      "compliance.state_claim", &rc);
    if (!st)
        return rc;
    bind_state(st, r, &code);
    if (old) {
        sql_bind_text(st, 10, old->state, &code);
        sql_bind_text(st, 11, old->rule ? old->rule : "", &code);
        sql_bind_text(st, 12, old->observed ? old->observed : "", &code);
        sql_bind_int(st, 13, old->since, &code);
        sql_bind_int(st, 14, old->evaluated_at, &code);
        sql_bind_int(st, 15, old->episode_since > 0 ? old->episode_since : 0, &code);
        sql_bind_text(st, 16, old->fired ? old->fired : "", &code);
    }
    rc = sql_exec(s, st, "compliance.state_claim", code);
    if (rc == STORE_OK && sql_changes(s) != 1)
        rc = STORE_CONFLICT;
    return rc;
}

int store_compliance_state_delete(struct store *s, const char *id, int64_t policy_id)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_state_delete, "compliance.state_delete", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, policy_id, &code);
    return sql_exec(s, st, "compliance.state_delete", code);
}

int store_compliance_states_list(struct store *s, const char *state, int64_t policy_id,
                                 int64_t limit, int64_t offset, store_compliance_state_fn fn,
                                 void *ctx, int64_t *total)
{
    *total = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_states_list, "compliance.states_list", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, state, &code);
    if (policy_id > 0)
        sql_bind_int(st, 2, policy_id, &code);
    else
        sql_bind_null(st, 2, &code);
    sql_bind_int(st, 3, limit, &code);
    sql_bind_int(st, 4, offset, &code);
    int row;
    while ((row = sql_next_row(s, st, "compliance.states_list", code)) == 1) {
        code = 0;
        struct store_compliance_state r;
        read_state(st, &r);
        *total = sql_col_int(st, 9);
        if (fn(ctx, &r) != 0) {
            sql_done(st);
            return STORE_ERR;
        }
    }
    return row < 0 ? row : STORE_OK;
}

int store_compliance_state_counts(struct store *s, store_compliance_count_fn fn, void *ctx)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_state_counts, "compliance.state_counts", &rc);
    if (!st)
        return rc;
    int row;
    while ((row = sql_next_row(s, st, "compliance.state_counts", code)) == 1) {
        if (fn(ctx, sql_col_int(st, 0), sql_col_text(st, 1), sql_col_int(st, 2)) != 0) {
            sql_done(st);
            return STORE_ERR;
        }
    }
    return row < 0 ? row : STORE_OK;
}

/* ---- history ------------------------------------------------------------------------- */

static const char sql_history_add[] =
    "INSERT INTO compliance_history (enrollment_id, policy_id, policy_name, kind, old_state,"
    " new_state, rule, observed, action, detail, at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
static const char sql_history_get[] =
    "SELECT at, policy_id, policy_name, kind, old_state, new_state, rule, observed, action,"
    " detail FROM compliance_history WHERE enrollment_id = ?1 ORDER BY at DESC, id DESC"
    " LIMIT ?2";

void store_compliance_events_free(struct store_compliance_event *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].policy_name);
        free(e[i].kind);
        free(e[i].old_state);
        free(e[i].new_state);
        free(e[i].rule);
        free(e[i].observed);
        free(e[i].action);
        free(e[i].detail);
    }
    free(e);
}

int store_compliance_history_add(struct store *s, const char *id,
                                 const struct store_compliance_event *e)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_history_add, "compliance.history_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    if (e->policy_id > 0)
        sql_bind_int(st, 2, e->policy_id, &code);
    else
        sql_bind_null(st, 2, &code);
    sql_bind_text(st, 3, e->policy_name, &code);
    sql_bind_text(st, 4, e->kind, &code);
    sql_bind_text(st, 5, e->old_state, &code);
    sql_bind_text(st, 6, e->new_state, &code);
    sql_bind_text(st, 7, e->rule, &code);
    sql_bind_text(st, 8, e->observed, &code);
    sql_bind_text(st, 9, e->action, &code);
    sql_bind_text(st, 10, e->detail, &code);
    sql_bind_int(st, 11, e->at, &code);
    return sql_exec(s, st, "compliance.history_add", code);
}

int store_compliance_history_get(struct store *s, const char *id, int64_t limit,
                                 struct store_compliance_event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_history_get, "compliance.history_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, limit > 0 ? limit : 100, &code);
    struct store_compliance_event *v = NULL;
    size_t count = 0, cap = 0;
    int row, oom = 0;
    while ((row = sql_next_row(s, st, "compliance.history_get", code)) == 1) {
        code = 0;
        if (array_grow((void **)&v, &cap, count, sizeof *v) < 0) {
            oom = 1;
            sql_done(st);
            break;
        }
        struct store_compliance_event *e = &v[count++];
        e->at = sql_col_int(st, 0);
        e->policy_id = sql_col_int(st, 1);
        e->policy_name = sql_col_strdup(st, 2, &oom);
        e->kind = sql_col_strdup(st, 3, &oom);
        e->old_state = sql_col_strdup(st, 4, &oom);
        e->new_state = sql_col_strdup(st, 5, &oom);
        e->rule = sql_col_strdup(st, 6, &oom);
        e->observed = sql_col_strdup(st, 7, &oom);
        e->action = sql_col_strdup(st, 8, &oom);
        e->detail = sql_col_strdup(st, 9, &oom);
        if (oom) {
            sql_done(st);
            break;
        }
    }
    if (oom || row < 0) {
        store_compliance_events_free(v, count);
        return oom ? sql_out_of_memory("compliance.history_get") : row;
    }
    *out = v;
    *n = count;
    return STORE_OK;
}

/* ---- per device ------------------------------------------------------------------------ */

static const char sql_device_evaluated[] =
    "INSERT INTO compliance_device (enrollment_id, evaluated_at) VALUES (?1, ?2)"
    " ON CONFLICT (enrollment_id) DO UPDATE SET evaluated_at = excluded.evaluated_at";
static const char sql_device_lost[] =
    "INSERT INTO compliance_device (enrollment_id, evaluated_at, lost_at, lost_message,"
    " lost_phone) VALUES (?1, 0, ?2, ?3, ?4) ON CONFLICT (enrollment_id) DO UPDATE SET"
    " lost_at = excluded.lost_at, lost_message = excluded.lost_message,"
    " lost_phone = excluded.lost_phone";
static const char sql_device_wiped[] =
    "INSERT INTO compliance_device (enrollment_id, evaluated_at, wiped_at) VALUES (?1, 0, ?2)"
    " ON CONFLICT (enrollment_id) DO UPDATE SET wiped_at = excluded.wiped_at";
static const char sql_device_info[] =
    "SELECT evaluated_at, lost_at, wiped_at, lost_message, lost_phone FROM compliance_device"
    " WHERE enrollment_id = ?1";

static int device_write(struct store *s, const char *sql, const char *op, const char *id,
                        int64_t now, const char *a, const char *b)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, now, &code);
    if (sql == sql_device_lost) {
        sql_bind_text(st, 3, a, &code);
        sql_bind_text(st, 4, b, &code);
    }
    return sql_exec(s, st, op, code);
}

int store_compliance_device_evaluated(struct store *s, const char *id, int64_t now)
{
    return device_write(s, sql_device_evaluated, "compliance.device_evaluated", id, now, NULL,
                        NULL);
}

int store_compliance_device_lost(struct store *s, const char *id, const char *message,
                                 const char *phone, int64_t now)
{
    return device_write(s, sql_device_lost, "compliance.device_lost", id, now, message, phone);
}

int store_compliance_device_wiped(struct store *s, const char *id, int64_t now)
{
    return device_write(s, sql_device_wiped, "compliance.device_wiped", id, now, NULL, NULL);
}

int store_compliance_device_info(struct store *s, const char *id,
                                 struct store_compliance_device_info *out)
{
    memset(out, 0, sizeof *out);
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_device_info, "compliance.device_info", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "compliance.device_info", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    out->evaluated_at = sql_col_int(st, 0);
    out->lost_at = sql_col_int(st, 1);
    out->wiped_at = sql_col_int(st, 2);
    out->lost_message = sql_col_strdup(st, 3, &oom);
    out->lost_phone = sql_col_strdup(st, 4, &oom);
    sql_done(st);
    if (oom) {
        free(out->lost_message);
        free(out->lost_phone);
        memset(out, 0, sizeof *out);
        return sql_out_of_memory("compliance.device_info");
    }
    return STORE_OK;
}
