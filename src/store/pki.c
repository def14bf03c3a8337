/* pki.c: the store area for the certificate lifecycle jobs: purging spent
 * SCEP challenges, the expiry statistics, and the re-enrollment due list
 * (cert_reenroll, migration 3). Written once on sql.h for every backend;
 * called by core/certs_expiry.c. */
#include "store/store.h"
#include "store/sql.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

int store_pki_challenges_purge(struct store *s, int64_t now, int64_t *deleted)
{
    static const char sql[] =
        "DELETE FROM challenges WHERE expires_at <= ?1 OR used_at IS NOT NULL";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "pki.challenges_purge", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    rc = sql_exec(s, st, "pki.challenges_purge", code);
    if (deleted)
        *deleted = rc == STORE_OK ? sql_changes(s) : 0;
    return rc;
}

int store_pki_reenroll_mark(struct store *s, int64_t now, int64_t before, int64_t *added)
{
    /* A certificate already renewed (a newer record names it in
     * renewed_from) is not due: the device has its successor. */
    static const char sql[] =
        "INSERT INTO cert_reenroll (serial, enrollment_id, not_after, due_at)"
        " SELECT c.serial, c.enrollment_id, c.not_after, ?1 FROM certs c"
        " WHERE c.status = 'issued' AND c.enrollment_id IS NOT NULL"
        " AND c.not_after > ?1 AND c.not_after < ?2"
        " AND NOT EXISTS (SELECT 1 FROM certs n WHERE n.renewed_from = c.fingerprint)"
        " ON CONFLICT (serial) DO NOTHING";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "pki.reenroll_mark", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    sql_bind_int(st, 2, before, &code);
    rc = sql_exec(s, st, "pki.reenroll_mark", code);
    if (added)
        *added = rc == STORE_OK ? sql_changes(s) : 0;
    return rc;
}

int store_pki_expiry_stats(struct store *s, int64_t now, int64_t before, int64_t *count,
                           int64_t *soonest)
{
    static const char sql[] =
        "SELECT COUNT(CASE WHEN not_after < ?2 THEN 1 END), MIN(not_after) FROM certs"
        " WHERE status = 'issued' AND not_after > ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "pki.expiry_stats", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    sql_bind_int(st, 2, before, &code);
    rc = sql_first_row(s, st, "pki.expiry_stats", code);
    if (rc != STORE_OK)
        return rc;
    *count = sql_col_int(st, 0);
    *soonest = sql_col_is_null(st, 1) ? 0 : sql_col_int(st, 1);
    sql_done(st);
    return STORE_OK;
}

void store_reenroll_list_free(struct store_reenroll *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].serial);
        free(list[i].enrollment_id);
    }
    free(list);
}

static int read_reenroll_row(struct sql_stmt *st, struct store_reenroll *r)
{
    int oom = 0;
    r->serial = sql_col_strdup(st, 0, &oom);
    r->enrollment_id = sql_col_strdup(st, 1, &oom);
    r->not_after = sql_col_int(st, 2);
    r->due_at = sql_col_int(st, 3);
    r->queued_at = sql_col_int(st, 4);
    return oom ? -1 : 0;
}

int store_pki_reenroll_list(struct store *s, int64_t now, int unqueued_only, int64_t limit,
                            struct store_reenroll **out, size_t *n)
{
    static const char sql[] =
        "SELECT r.serial, r.enrollment_id, r.not_after, r.due_at, r.queued_at"
        " FROM cert_reenroll r JOIN certs c ON c.serial = r.serial"
        " WHERE c.status = 'issued' AND r.not_after > ?1 AND (?2 = 0 OR r.queued_at IS NULL)"
        " ORDER BY r.not_after, r.serial LIMIT ?3";
    *out = NULL;
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "pki.reenroll_list", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, now, &code);
    sql_bind_int(st, 2, unqueued_only ? 1 : 0, &code);
    sql_bind_int(st, 3, limit > 0 ? limit : 1000, &code);
    struct store_reenroll *list = NULL;
    size_t cap = 0, count = 0;
    int row;
    while ((row = sql_next_row(s, st, "pki.reenroll_list", code)) == 1) {
        code = 0;
        if (array_grow((void **)&list, &cap, count, sizeof *list) < 0) {
            sql_done(st);
            store_reenroll_list_free(list, count);
            return sql_out_of_memory("pki.reenroll_list");
        }
        memset(&list[count], 0, sizeof list[count]);
        if (read_reenroll_row(st, &list[count++]) != 0) {
            sql_done(st);
            store_reenroll_list_free(list, count);
            return sql_out_of_memory("pki.reenroll_list");
        }
    }
    if (row < 0) {
        store_reenroll_list_free(list, count);
        return row;
    }
    *out = list;
    *n = count;
    return STORE_OK;
}

int store_pki_reenroll_get(struct store *s, const char *serial, int64_t *due_at,
                           int64_t *queued_at)
{
    static const char sql[] = "SELECT due_at, queued_at FROM cert_reenroll WHERE serial = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "pki.reenroll_get", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, serial, &code);
    rc = sql_first_row(s, st, "pki.reenroll_get", code);
    if (rc != STORE_OK)
        return rc;
    *due_at = sql_col_int(st, 0);
    *queued_at = sql_col_int(st, 1);
    sql_done(st);
    return STORE_OK;
}

int store_pki_reenroll_queued(struct store *s, const char *serial, int64_t now)
{
    static const char sql[] = "UPDATE cert_reenroll SET queued_at = ?2 WHERE serial = ?1";
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "pki.reenroll_queued", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, serial, &code);
    sql_bind_int(st, 2, now, &code);
    rc = sql_exec(s, st, "pki.reenroll_queued", code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        return STORE_NOTFOUND;
    return rc;
}
