/* store_jobs.h: store.h's section for jobs, work any steward node may run and
 * exactly one runs: a row per job, claimed under a lease (FOR UPDATE SKIP
 * LOCKED on PostgreSQL, SQLite's write lock otherwise), completed or failed
 * by its holder. A node that dies mid-job leaves the row leased; once the
 * lease ends another node claims it. Include store.h, not this. Implemented
 * in store/jobs.c on sql.h. */
#ifndef STEWARD_STORE_JOBS_H
#define STEWARD_STORE_JOBS_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_job {
    int64_t id;
    char *kind;
    char *dedupe_key;  /* may be NULL */
    uint8_t *payload;  /* may be NULL */
    size_t payload_len;
    int attempts;      /* claims so far, this one included */
    int64_t run_at;
};
void store_job_free(struct store_job *j); /* accepts NULL */

/* Adds a job of kind (e.g. "push", "webhook") to run from run_at. With a
 * dedupe_key, at most one unfinished job per (kind, key) exists: adding
 * another returns STORE_CONFLICT and changes nothing. *id (may be NULL)
 * receives the new job's id. */
int store_job_add(struct store *s, const char *kind, const char *dedupe_key,
                  const uint8_t *payload, size_t len, int64_t run_at, int64_t now, int64_t *id);

/* Claims the oldest runnable job of kind (run_at <= now, not done, no live
 * lease) for owner (a node name) until now + lease seconds. Concurrent
 * claimers on any node never get the same job. NOTFOUND when none is
 * runnable; *out is freed with store_job_free. */
int store_job_claim(struct store *s, const char *kind, const char *owner, int64_t now,
                    int64_t lease, struct store_job **out);

/* The holder finishes its job. NOTFOUND when owner no longer holds it (its
 * lease ran out and another node claimed it). */
int store_job_complete(struct store *s, int64_t id, const char *owner, int64_t now);

/* The holder gives its job back to run again from retry_at, keeping error
 * (may be NULL) for operators. NOTFOUND as for complete. */
int store_job_fail(struct store *s, int64_t id, const char *owner, const char *error,
                   int64_t retry_at);

/* Unfinished jobs of kind (NULL = any), for /metrics and tests. */
int store_job_pending(struct store *s, const char *kind, int64_t *n);

/* Deletes jobs finished before `before` (retention). *deleted may be NULL. */
int store_job_purge(struct store *s, int64_t before, int64_t *deleted);

/* Scheduled jobs shared by every node on one database: claims the run of
 * job `name` at now for owner when no node ran it in the last interval
 * seconds (STORE_OK: run it), else STORE_CONFLICT (another node did). With
 * force the run is recorded whatever the last one was (a node's first run
 * after it starts). */
int store_sched_claim(struct store *s, const char *name, int64_t interval, int64_t now,
                      const char *owner, int force);

#endif
