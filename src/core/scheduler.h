/* scheduler.h: a small runner of periodic jobs (certificate expiry, and any
 * other area's: retention, re-push, compliance). One thread with its own
 * store connection runs every registered job when due, one after another.
 * Register jobs between sched_new and sched_start; app/serve.c owns it. */
#ifndef STEWARD_SCHEDULER_H
#define STEWARD_SCHEDULER_H

#include <stdint.h>

struct store;
struct sched;

/* A job gets the scheduler thread's store connection (never NULL), its arg
 * and the current Unix time. It must not block for long: later jobs wait. */
typedef void (*sched_job_fn)(struct store *s, void *arg, int64_t now);

/* dsn: the database the thread connects to (store_open). NULL on OOM. */
struct sched *sched_new(const char *dsn);
/* Runs fn every interval seconds, the first time first_delay seconds after
 * sched_start. name appears in log lines. 0, or -1 (too many jobs, bad
 * interval, already started). arg must outlive the scheduler. */
int sched_add(struct sched *sc, const char *name, int64_t interval, int64_t first_delay,
              sched_job_fn fn, void *arg);
/* Starts the thread. 0 or -1. */
int sched_start(struct sched *sc);
/* Runs every job that is due at now, on the caller's thread with s (for
 * tests and one-shot commands). Returns how many ran. */
int sched_run_due(struct sched *sc, struct store *s, int64_t now);
/* Stops the thread (waits for a running job) and frees. Accepts NULL. */
void sched_free(struct sched *sc);

#endif
