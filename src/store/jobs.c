/* jobs.c: store_jobs.h on sql.h: the jobs table (migration 8), claimed under
 * a lease so each job runs on one node at a time and survives the death of
 * the node running it. Called by whatever runs background work (push
 * batches, webhook delivery, scheduled re-pushes) on every node. */
#include <stdlib.h>

#include "store/sql.h"
#include "store/store.h"

static const char sql_add[] =
    "INSERT INTO jobs (kind, dedupe_key, payload, run_at, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL AND done_at IS NULL"
    " DO NOTHING RETURNING id";

/* One statement picks and leases the job. On PostgreSQL, SKIP LOCKED lets
 * concurrent claimers (other nodes, other workers) pass over a row one of
 * them is taking instead of queueing behind it, and the lease condition is
 * checked again on the locked row; SQLite runs writers one at a time, so the
 * plain subquery is already exclusive. */
#define CLAIM_HEAD                                                                                 \
    "UPDATE jobs SET locked_by = ?2, locked_until = ?3 + ?4, attempts = attempts + 1"              \
    " WHERE id = (SELECT id FROM jobs WHERE kind = ?1 AND done_at IS NULL AND run_at <= ?3"        \
    " AND (locked_until IS NULL OR locked_until <= ?3) ORDER BY run_at, id LIMIT 1"
#define CLAIM_TAIL ") RETURNING id, kind, dedupe_key, payload, attempts, run_at"
static const char sql_claim_sqlite[] = CLAIM_HEAD CLAIM_TAIL;
static const char sql_claim_pg[] = CLAIM_HEAD " FOR UPDATE SKIP LOCKED" CLAIM_TAIL;

static const char sql_complete[] =
    "UPDATE jobs SET done_at = ?3, locked_by = NULL, locked_until = NULL"
    " WHERE id = ?1 AND locked_by = ?2 AND done_at IS NULL";
static const char sql_fail[] =
    "UPDATE jobs SET locked_by = NULL, locked_until = NULL, run_at = ?4, last_error = ?3"
    " WHERE id = ?1 AND locked_by = ?2 AND done_at IS NULL";
static const char sql_pending[] =
    "SELECT count(*) FROM jobs WHERE done_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR kind = ?1)";
/* One statement both records a first run and claims a later one: the
 * update only happens (and a row only comes back) when the last run is at
 * least an interval old, or when forced. */
static const char sql_sched_claim[] =
    "INSERT INTO sched_runs (name, last_run, owner) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (name) DO UPDATE SET last_run = excluded.last_run, owner = excluded.owner,"
    " runs = sched_runs.runs + 1"
    " WHERE ?5 = 1 OR sched_runs.last_run <= ?2 - ?4"
    " RETURNING name";
static const char sql_purge[] = "DELETE FROM jobs WHERE done_at IS NOT NULL AND done_at < ?1";

void store_job_free(struct store_job *j)
{
    if (!j)
        return;
    free(j->kind);
    free(j->dedupe_key);
    free(j->payload);
    free(j);
}

int store_job_add(struct store *s, const char *kind, const char *dedupe_key,
                  const uint8_t *payload, size_t len, int64_t run_at, int64_t now, int64_t *id)
{
    if (id)
        *id = 0;
    if (!kind)
        return STORE_ERR;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_add, "job_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, kind, &code);
    sql_bind_text(st, 2, dedupe_key, &code);
    sql_bind_blob(st, 3, payload, len, &code);
    sql_bind_int(st, 4, run_at, &code);
    sql_bind_int(st, 5, now, &code);
    rc = sql_first_row(s, st, "job_add", code);
    if (rc == STORE_NOTFOUND)
        return STORE_CONFLICT; /* an unfinished job with this key exists */
    if (rc != STORE_OK)
        return rc;
    if (id)
        *id = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

static struct store_job *job_from_row(struct sql_stmt *st)
{
    struct store_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    int oom = 0;
    j->id = sql_col_int(st, 0);
    j->kind = sql_col_strdup(st, 1, &oom);
    j->dedupe_key = sql_col_strdup(st, 2, &oom);
    j->payload = sql_col_blobdup(st, 3, &j->payload_len, &oom);
    j->attempts = (int)sql_col_int(st, 4);
    j->run_at = sql_col_int(st, 5);
    if (oom) {
        store_job_free(j);
        return NULL;
    }
    return j;
}

int store_job_claim(struct store *s, const char *kind, const char *owner, int64_t now,
                    int64_t lease, struct store_job **out)
{
    *out = NULL;
    if (!kind || !owner || lease <= 0)
        return STORE_ERR;
    const char *sql = sql_dialect(s) == STORE_DIALECT_POSTGRES ? sql_claim_pg : sql_claim_sqlite;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql, "job_claim", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, kind, &code);
    sql_bind_text(st, 2, owner, &code);
    sql_bind_int(st, 3, now, &code);
    sql_bind_int(st, 4, lease, &code);
    rc = sql_first_row(s, st, "job_claim", code);
    if (rc != STORE_OK)
        return rc;
    *out = job_from_row(st);
    /* Step past the one row so SQLite finishes the UPDATE before the reset. */
    int row = sql_next_row(s, st, "job_claim", 0);
    if (row == 1)
        sql_done(st);
    if (!*out)
        return sql_out_of_memory("job_claim");
    return row < 0 ? row : STORE_OK;
}

/* Runs a holder-guarded UPDATE, already bound; NOTFOUND when nothing matched. */
static int holder_update(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    int rc = sql_exec(s, st, op, code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_job_complete(struct store *s, int64_t id, const char *owner, int64_t now)
{
    if (!owner)
        return STORE_ERR;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_complete, "job_complete", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    sql_bind_text(st, 2, owner, &code);
    sql_bind_int(st, 3, now, &code);
    return holder_update(s, st, "job_complete", code);
}

int store_job_fail(struct store *s, int64_t id, const char *owner, const char *error,
                   int64_t retry_at)
{
    if (!owner)
        return STORE_ERR;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_fail, "job_fail", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, id, &code);
    sql_bind_text(st, 2, owner, &code);
    sql_bind_text(st, 3, error, &code);
    sql_bind_int(st, 4, retry_at, &code);
    return holder_update(s, st, "job_fail", code);
}

int store_job_pending(struct store *s, const char *kind, int64_t *n)
{
    *n = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_pending, "job_pending", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, kind, &code);
    rc = sql_first_row(s, st, "job_pending", code);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *n = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

int store_job_purge(struct store *s, int64_t before, int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_purge, "job_purge", &rc);
    if (!st)
        return rc;
    sql_bind_int(st, 1, before, &code);
    rc = sql_exec(s, st, "job_purge", code);
    if (rc == STORE_OK && deleted)
        *deleted = sql_changes(s);
    return rc;
}

int store_sched_claim(struct store *s, const char *name, int64_t interval, int64_t now,
                      const char *owner, int force)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_sched_claim, "sched_claim", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, name, &code);
    sql_bind_int(st, 2, now, &code);
    sql_bind_text(st, 3, owner, &code);
    /* A tick a second early (clocks, rounding) still belongs to this interval. */
    sql_bind_int(st, 4, interval > 1 ? interval - 1 : interval, &code);
    sql_bind_int(st, 5, force ? 1 : 0, &code);
    rc = sql_first_row(s, st, "sched_claim", code);
    if (rc == STORE_NOTFOUND)
        return STORE_CONFLICT;
    if (rc == STORE_OK)
        sql_done(st);
    return rc;
}
