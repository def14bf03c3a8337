/* enroll.c: the store area for enrollment: enrollment users, web sessions
 * and sign-in throttling (generic over a realm, so the console reuses them)
 * and enrollment records with their OTA phase (migration 5). Written once
 * on sql.h for every backend; called by web/session.c and enroll/. */
#include "store/store.h"
#include "store/sql.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

/* ---- users ---- */

void store_enroll_user_clear(struct store_enroll_user *u)
{
    if (!u)
        return;
    free(u->name);
    free(u->password_hash);
    memset(u, 0, sizeof *u);
}

void store_enroll_user_list_free(struct store_enroll_user *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_enroll_user_clear(&list[i]);
    free(list);
}

int store_enroll_user_add(struct store *s, const char *name, const char *hash, int64_t now)
{
    static const char sql[] =
        "INSERT INTO enroll_users (name, password_hash, disabled, created_at, updated_at)"
        " VALUES (?1, ?2, 0, ?3, ?3) ON CONFLICT (name) DO NOTHING";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.user_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_text(st, 2, hash, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_exec(s, st, "enroll.user_add", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_CONFLICT;
    return rc;
}

static int read_user(struct sql_stmt *st, struct store_enroll_user *u)
{
    int oom = 0;
    memset(u, 0, sizeof *u);
    u->name = sql_col_strdup(st, 0, &oom);
    u->password_hash = sql_col_strdup(st, 1, &oom);
    u->disabled = (int)sql_col_int(st, 2);
    u->created_at = sql_col_int(st, 3);
    u->updated_at = sql_col_int(st, 4);
    u->last_sign_in_at = sql_col_int(st, 5);
    if (oom || !u->name || !u->password_hash) {
        store_enroll_user_clear(u);
        return sql_out_of_memory("enroll.user_read");
    }
    return STORE_OK;
}

int store_enroll_user_get(struct store *s, const char *name, struct store_enroll_user *out)
{
    static const char sql[] = "SELECT name, password_hash, disabled, created_at, updated_at,"
                              " last_sign_in_at FROM enroll_users WHERE name = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.user_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    rc = sql_first_row(s, st, "enroll.user_get", code);
    if (rc != STORE_OK)
        return rc;
    rc = read_user(st, out);
    sql_done(st);
    return rc;
}

/* Runs a one-row UPDATE keyed by name: NOTFOUND when no row changed. */
static int update_user(struct store *s, const char *sql, const char *op, const char *name,
                       const char *text, int64_t num, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    if (text)
        sql_bind_text(st, 2, text, &code);
    else
        sql_bind_int(st, 2, num, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_exec(s, st, op, code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_enroll_user_set_password(struct store *s, const char *name, const char *hash,
                                   int64_t now)
{
    static const char sql[] =
        "UPDATE enroll_users SET password_hash = ?2, updated_at = ?3 WHERE name = ?1";
    return update_user(s, sql, "enroll.user_passwd", name, hash, 0, now);
}

int store_enroll_user_set_disabled(struct store *s, const char *name, int disabled, int64_t now)
{
    static const char sql[] =
        "UPDATE enroll_users SET disabled = ?2, updated_at = ?3 WHERE name = ?1";
    return update_user(s, sql, "enroll.user_disable", name, NULL, disabled ? 1 : 0, now);
}

int store_enroll_user_signed_in(struct store *s, const char *name, int64_t now)
{
    static const char sql[] = "UPDATE enroll_users SET last_sign_in_at = ?2 WHERE name = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.user_signed_in", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_int(st, 2, now, &code);
    return sql_exec(s, st, "enroll.user_signed_in", code);
}

int store_enroll_user_list(struct store *s, struct store_enroll_user **out, size_t *n)
{
    static const char sql[] = "SELECT name, password_hash, disabled, created_at, updated_at,"
                              " last_sign_in_at FROM enroll_users ORDER BY name";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.user_list", &rc);
    if (!st)
        return rc;
    size_t cap = 0;
    int step;
    while ((step = sql_next_row(s, st, "enroll.user_list", 0)) == 1) {
        if (array_grow((void **)out, &cap, *n, sizeof **out) < 0) {
            sql_done(st);
            rc = sql_out_of_memory("enroll.user_list");
            goto fail;
        }
        if ((rc = read_user(st, &(*out)[*n])) != STORE_OK) {
            sql_done(st);
            goto fail;
        }
        (*n)++;
    }
    if (step == 0)
        return STORE_OK;
    rc = step;
fail:
    store_enroll_user_list_free(*out, *n);
    *out = NULL;
    *n = 0;
    return rc;
}

/* ---- web sessions ---- */

void store_web_session_clear(struct store_web_session *ws)
{
    if (!ws)
        return;
    free(ws->subject);
    free(ws->csrf);
    memset(ws, 0, sizeof *ws);
}

int store_web_session_add(struct store *s, const char *realm, const char *id_hash,
                          const char *subject, const char *csrf, int64_t now, int64_t expires_at)
{
    static const char sql[] =
        "INSERT INTO web_sessions (id_hash, realm, subject, csrf, created_at, expires_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "web.session_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id_hash, &code);
    sql_bind_text(st, 2, realm, &code);
    sql_bind_text(st, 3, subject, &code);
    sql_bind_text(st, 4, csrf, &code);
    sql_bind_int(st, 5, now, &code);
    sql_bind_int(st, 6, expires_at, &code);
    return sql_exec(s, st, "web.session_add", code);
}

int store_web_session_get(struct store *s, const char *realm, const char *id_hash, int64_t now,
                          struct store_web_session *out)
{
    static const char sql[] =
        "SELECT subject, csrf, created_at, expires_at FROM web_sessions"
        " WHERE id_hash = ?1 AND realm = ?2 AND expires_at > ?3";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "web.session_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id_hash, &code);
    sql_bind_text(st, 2, realm, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_first_row(s, st, "web.session_get", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    memset(out, 0, sizeof *out);
    out->subject = sql_col_strdup(st, 0, &oom);
    out->csrf = sql_col_strdup(st, 1, &oom);
    out->created_at = sql_col_int(st, 2);
    out->expires_at = sql_col_int(st, 3);
    sql_done(st);
    if (oom || !out->subject || !out->csrf) {
        store_web_session_clear(out);
        return sql_out_of_memory("web.session_get");
    }
    return STORE_OK;
}

int store_web_session_delete(struct store *s, const char *realm, const char *id_hash)
{
    static const char sql[] = "DELETE FROM web_sessions WHERE id_hash = ?1 AND realm = ?2";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "web.session_delete", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id_hash, &code);
    sql_bind_text(st, 2, realm, &code);
    return sql_exec(s, st, "web.session_delete", code);
}

int store_web_purge(struct store *s, int64_t now)
{
    static const char del_sessions[] = "DELETE FROM web_sessions WHERE expires_at <= ?1";
    static const char del_throttle[] =
        "DELETE FROM web_throttle WHERE locked_until <= ?1 AND window_start <= ?1 - 86400";
    const char *sqls[] = {del_sessions, del_throttle};
    for (size_t i = 0; i < 2; i++) {
        int rc = STORE_OK, code = 0;
        struct sql_stmt *st = sql_prepare(s, sqls[i], "web.purge", &rc);
        if (!st)
            return rc;
        sql_bind_int(st, 1, now, &code);
        if ((rc = sql_exec(s, st, "web.purge", code)) != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

/* ---- throttling ---- */

int store_web_throttle_locked(struct store *s, const char *realm, const char *key, int64_t now,
                              int64_t *locked_until)
{
    static const char sql[] =
        "SELECT locked_until FROM web_throttle WHERE realm = ?1 AND key = ?2";
    int rc = STORE_OK, code = 0;
    *locked_until = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "web.throttle_locked", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, realm, &code);
    sql_bind_text(st, 2, key, &code);
    rc = sql_first_row(s, st, "web.throttle_locked", code);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    int64_t until = sql_col_int(st, 0);
    sql_done(st);
    *locked_until = until > now ? until : 0;
    return STORE_OK;
}

int store_web_throttle_fail(struct store *s, const char *realm, const char *key, int64_t now,
                            int64_t window, int64_t max_failures, int64_t lock_secs,
                            int64_t *locked_until)
{
    /* One statement counts the failure (restarting an old window) and, on
     * reaching the limit, locks the key and restarts the count, so two
     * nodes counting at once never lose a failure. */
    static const char sql[] =
        "INSERT INTO web_throttle (realm, key, failures, window_start, locked_until)"
        " VALUES (?1, ?2, 1, ?3, CASE WHEN ?5 <= 1 THEN ?3 + ?6 ELSE 0 END)"
        " ON CONFLICT (realm, key) DO UPDATE SET"
        " locked_until = CASE WHEN (CASE WHEN web_throttle.window_start <= ?3 - ?4 THEN 1"
        "   ELSE web_throttle.failures + 1 END) >= ?5 THEN ?3 + ?6"
        "   ELSE web_throttle.locked_until END,"
        " failures = CASE WHEN (CASE WHEN web_throttle.window_start <= ?3 - ?4 THEN 1"
        "   ELSE web_throttle.failures + 1 END) >= ?5 THEN 0"
        "   WHEN web_throttle.window_start <= ?3 - ?4 THEN 1"
        "   ELSE web_throttle.failures + 1 END,"
        " window_start = CASE WHEN web_throttle.window_start <= ?3 - ?4 THEN ?3"
        "   ELSE web_throttle.window_start END";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "web.throttle_fail", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, realm, &code);
    sql_bind_text(st, 2, key, &code);
    sql_bind_int(st, 3, now, &code);
    sql_bind_int(st, 4, window, &code);
    sql_bind_int(st, 5, max_failures, &code);
    sql_bind_int(st, 6, lock_secs, &code);
    if ((rc = sql_exec(s, st, "web.throttle_fail", code)) != STORE_OK)
        return rc;
    return store_web_throttle_locked(s, realm, key, now, locked_until);
}

int store_web_throttle_clear(struct store *s, const char *realm, const char *key)
{
    static const char sql[] =
        "UPDATE web_throttle SET failures = 0 WHERE realm = ?1 AND key = ?2";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "web.throttle_clear", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, realm, &code);
    sql_bind_text(st, 2, key, &code);
    return sql_exec(s, st, "web.throttle_clear", code);
}

/* ---- enrollment records ---- */

void store_enroll_record_clear(struct store_enroll_record *r)
{
    if (!r)
        return;
    char **strs[] = {&r->id,      &r->user_name, &r->method,  &r->status,
                     &r->udid,    &r->serial,    &r->imei,    &r->iccid,
                     &r->product, &r->version,   &r->mac,     &r->device_name,
                     &r->enrollment_id, &r->reason};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    memset(r, 0, sizeof *r);
}

void store_enroll_record_list_free(struct store_enroll_record *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        store_enroll_record_clear(&list[i]);
    free(list);
}

#define RECORD_COLS                                                                       \
    "id, user_name, method, status, phase, udid, serial, imei, iccid, product, version,"  \
    " mac, device_name, enrollment_id, reason, created_at, updated_at, expires_at,"       \
    " enrolled_at, ended_at"

static int read_record(struct sql_stmt *st, struct store_enroll_record *r)
{
    int oom = 0;
    memset(r, 0, sizeof *r);
    char **strs[] = {&r->id,   &r->user_name, &r->method, &r->status};
    for (int i = 0; i < 4; i++)
        *strs[i] = sql_col_strdup(st, i, &oom);
    r->phase = (int)sql_col_int(st, 4);
    char **attrs[] = {&r->udid,    &r->serial,  &r->imei,        &r->iccid,
                      &r->product, &r->version, &r->mac,         &r->device_name,
                      &r->enrollment_id, &r->reason};
    for (int i = 0; i < 10; i++)
        *attrs[i] = sql_col_strdup(st, 5 + i, &oom);
    r->created_at = sql_col_int(st, 15);
    r->updated_at = sql_col_int(st, 16);
    r->expires_at = sql_col_int(st, 17);
    r->enrolled_at = sql_col_int(st, 18);
    r->ended_at = sql_col_int(st, 19);
    if (oom || !r->id) {
        store_enroll_record_clear(r);
        return sql_out_of_memory("enroll.record_read");
    }
    return STORE_OK;
}

int store_enroll_record_add(struct store *s, const char *id, const char *user_name,
                            const char *method, int phase, const char *challenge_hash,
                            int64_t now, int64_t expires_at)
{
    static const char sql[] =
        "INSERT INTO enroll_records (id, user_name, method, status, phase, challenge_hash,"
        " created_at, updated_at, expires_at)"
        " VALUES (?1, ?2, ?3, CASE WHEN ?4 = 0 THEN 'issued' ELSE 'pending' END, ?4, ?5, ?6, ?6,"
        " ?7)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.record_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, user_name, &code);
    sql_bind_text(st, 3, method, &code);
    sql_bind_int(st, 4, phase, &code);
    sql_bind_text(st, 5, challenge_hash, &code);
    sql_bind_int(st, 6, now, &code);
    sql_bind_int(st, 7, expires_at, &code);
    return sql_exec(s, st, "enroll.record_add", code);
}

/* One record by a text key (?1) and, when has_n, a number (?2). */
static int record_one(struct store *s, const char *sql, const char *op, const char *a,
                      int has_n, int64_t n, struct store_enroll_record *out)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, a, &code);
    if (has_n)
        sql_bind_int(st, 2, n, &code);
    rc = sql_first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    rc = read_record(st, out);
    sql_done(st);
    return rc;
}

int store_enroll_record_get(struct store *s, const char *id, struct store_enroll_record *out)
{
    static const char sql[] =
        "SELECT " RECORD_COLS " FROM enroll_records WHERE id = ?1";
    return record_one(s, sql, "enroll.record_get", id, 0, 0, out);
}

int store_enroll_record_by_challenge(struct store *s, const char *challenge_hash,
                                     struct store_enroll_record *out)
{
    static const char sql[] =
        "SELECT " RECORD_COLS " FROM enroll_records WHERE challenge_hash = ?1";
    return record_one(s, sql, "enroll.record_by_challenge", challenge_hash, 0, 0, out);
}

int store_enroll_record_pending_for(struct store *s, const char *udid, int phase, int64_t now,
                                    struct store_enroll_record *out)
{
    static const char sql2[] =
        "SELECT " RECORD_COLS " FROM enroll_records WHERE udid = ?1 AND status = 'pending'"
        " AND phase = 2 AND expires_at > ?2 ORDER BY created_at DESC, id LIMIT 1";
    static const char sql3[] =
        "SELECT " RECORD_COLS " FROM enroll_records WHERE udid = ?1 AND status = 'pending'"
        " AND phase = 3 AND expires_at > ?2 ORDER BY created_at DESC, id LIMIT 1";
    return record_one(s, phase == 2 ? sql2 : sql3, "enroll.record_pending_for", udid, 1, now,
                      out);
}

int store_enroll_record_advance(struct store *s, const char *id, int from, int to,
                                const struct store_enroll_attrs *a, int64_t now,
                                int64_t expires_at)
{
    static const char sql[] =
        "UPDATE enroll_records SET phase = ?3, updated_at = ?4, expires_at = ?13,"
        " udid = COALESCE(?5, udid), serial = COALESCE(?6, serial), imei = COALESCE(?7, imei),"
        " iccid = COALESCE(?8, iccid), product = COALESCE(?9, product),"
        " version = COALESCE(?10, version), mac = COALESCE(?11, mac),"
        " device_name = COALESCE(?12, device_name)"
        " WHERE id = ?1 AND phase = ?2 AND status = 'pending' AND expires_at > ?4";
    static const struct store_enroll_attrs none;
    if (!a)
        a = &none;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.record_advance", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, from, &code);
    sql_bind_int(st, 3, to, &code);
    sql_bind_int(st, 4, now, &code);
    const char *vals[] = {a->udid,    a->serial,  a->imei, a->iccid,
                          a->product, a->version, a->mac,  a->device_name};
    for (int i = 0; i < 8; i++)
        sql_bind_text(st, 5 + i, vals[i], &code);
    sql_bind_int(st, 13, expires_at, &code);
    rc = sql_exec(s, st, "enroll.record_advance", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

static int record_update(struct store *s, const char *sql, const char *op, const char *id,
                         const char *text, int64_t now)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, text, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_exec(s, st, op, code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}

int store_enroll_record_enrolled(struct store *s, const char *id, const char *enrollment_id,
                                 int64_t now)
{
    static const char sql[] =
        "UPDATE enroll_records SET status = 'enrolled', enrollment_id = ?2, enrolled_at = ?3,"
        " updated_at = ?3 WHERE id = ?1 AND status = 'pending'";
    return record_update(s, sql, "enroll.record_enrolled", id, enrollment_id, now);
}

int store_enroll_record_fail(struct store *s, const char *id, const char *reason, int64_t now)
{
    static const char sql[] =
        "UPDATE enroll_records SET status = 'failed', reason = ?2, ended_at = ?3,"
        " updated_at = ?3 WHERE id = ?1 AND status = 'pending'";
    return record_update(s, sql, "enroll.record_fail", id, reason, now);
}

int store_enroll_record_ended(struct store *s, const char *enrollment_id, const char *status,
                              int64_t now)
{
    static const char sql[] =
        "UPDATE enroll_records SET status = ?2, ended_at = ?3, updated_at = ?3"
        " WHERE enrollment_id = ?1 AND status = 'enrolled'";
    int rc = record_update(s, sql, "enroll.record_ended", enrollment_id, status, now);
    return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

int store_enroll_records_expire(struct store *s, int64_t now, int64_t *n)
{
    static const char sql[] =
        "UPDATE enroll_records SET status = 'expired', updated_at = ?1, ended_at = ?1"
        " WHERE status = 'pending' AND expires_at <= ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.records_expire", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    rc = sql_exec(s, st, "enroll.records_expire", code);
    if (n)
        *n = rc == STORE_OK ? sql_changes(s) : 0;
    return rc;
}

static int record_count(struct store *s, const char *user_name, const char *status,
                        int64_t *total)
{
    static const char sql[] =
        "SELECT COUNT(*) FROM enroll_records WHERE (CAST(?1 AS TEXT) IS NULL OR user_name = ?1)"
        " AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.record_count", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, user_name, &code);
    sql_bind_text(st, 2, status, &code);
    if ((rc = sql_first_row(s, st, "enroll.record_count", code)) != STORE_OK)
        return rc;
    *total = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

int store_enroll_record_list(struct store *s, const char *user_name, const char *status,
                             int64_t limit, int64_t offset, struct store_enroll_record **out,
                             size_t *n, int64_t *total)
{
    static const char sql[] =
        "SELECT " RECORD_COLS " FROM enroll_records"
        " WHERE (CAST(?1 AS TEXT) IS NULL OR user_name = ?1)"
        " AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)"
        " ORDER BY created_at DESC, id LIMIT ?3 OFFSET ?4";
    *out = NULL;
    *n = 0;
    int rc = record_count(s, user_name, status, total);
    if (rc != STORE_OK)
        return rc;
    int code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "enroll.record_list", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, user_name, &code);
    sql_bind_text(st, 2, status, &code);
    sql_bind_int(st, 3, limit > 0 ? limit : 100, &code);
    sql_bind_int(st, 4, offset, &code);
    size_t cap = 0;
    int step = sql_next_row(s, st, "enroll.record_list", code);
    for (; step == 1; step = sql_next_row(s, st, "enroll.record_list", 0)) {
        if (array_grow((void **)out, &cap, *n, sizeof **out) < 0) {
            sql_done(st);
            rc = sql_out_of_memory("enroll.record_list");
            goto fail;
        }
        if ((rc = read_record(st, &(*out)[*n])) != STORE_OK) {
            sql_done(st);
            goto fail;
        }
        (*n)++;
    }
    if (step == 0)
        return STORE_OK;
    rc = step;
fail:
    store_enroll_record_list_free(*out, *n);
    *out = NULL;
    *n = 0;
    return rc;
}
