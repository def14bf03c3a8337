/* scheduler.h: one thread that runs periodic jobs registered by name (the
 * inventory refresh, history retention, and whatever else needs a timer),
 * each on its own period, with the thread's own store connection. Built and
 * started by app/serve.c; jobs are plain core functions, so tests call them
 * directly instead of waiting for the thread. */
#ifndef STEWARD_SCHEDULER_H
#define STEWARD_SCHEDULER_H

#include <stdint.h>

struct store;
struct scheduler;

/* A job: does one round of its work with the scheduler's connection. Its
 * errors are its own to log; the scheduler runs it again next period. */
typedef void (*scheduler_job)(struct store *s, void *arg, int64_t now);

/* A scheduler that will open dsn on its thread. NULL when out of memory. */
struct scheduler *scheduler_new(const char *dsn);
/* Registers a job before start: first run first_delay seconds after start,
 * then every period seconds (> 0). 0, or -1 (full, bad period, started). */
int scheduler_add(struct scheduler *sc, const char *name, int64_t period, int64_t first_delay,
                  scheduler_job fn, void *arg);
/* Starts the thread. 0, or -1 with a log line. */
int scheduler_start(struct scheduler *sc);
/* Stops and joins the thread (a running job finishes first), closes its
 * connection and frees the scheduler; accepts NULL. */
void scheduler_free(struct scheduler *sc);

#endif
