/* scheduler.c: the periodic-job thread behind scheduler.h. One thread, one
 * store connection, jobs in registration order; it sleeps on a condition
 * variable until the next job is due or it is told to stop, so stopping
 * never waits out a period. */
#include "core/scheduler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "util/log.h"

#define SCHEDULER_JOBS_MAX 16

struct job {
    char name[48];
    int64_t period;
    int64_t next; /* Unix seconds */
    int64_t first_delay;
    scheduler_job fn;
    void *arg;
};

struct scheduler {
    char *dsn;
    struct job jobs[SCHEDULER_JOBS_MAX];
    size_t njobs;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, stop;
};

struct scheduler *scheduler_new(const char *dsn)
{
    struct scheduler *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->dsn = strdup(dsn);
    if (!sc->dsn) {
        free(sc);
        return NULL;
    }
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    return sc;
}

int scheduler_add(struct scheduler *sc, const char *name, int64_t period, int64_t first_delay,
                  scheduler_job fn, void *arg)
{
    if (!sc || sc->started || sc->njobs == SCHEDULER_JOBS_MAX || period <= 0 || !fn)
        return -1;
    struct job *j = &sc->jobs[sc->njobs++];
    snprintf(j->name, sizeof j->name, "%s", name);
    j->period = period;
    j->first_delay = first_delay < 0 ? 0 : first_delay;
    j->fn = fn;
    j->arg = arg;
    return 0;
}

/* Runs every due job; returns the earliest next due time. */
static int64_t run_due(struct scheduler *sc, struct store *s)
{
    int64_t now = (int64_t)time(NULL), soonest = now + 3600;
    for (size_t i = 0; i < sc->njobs; i++) {
        struct job *j = &sc->jobs[i];
        if (j->next <= now) {
            struct timespec a, b;
            clock_gettime(CLOCK_MONOTONIC, &a);
            j->fn(s, j->arg, now);
            clock_gettime(CLOCK_MONOTONIC, &b);
            log_debug("scheduled job ran", "job=%s ms=%.1f", j->name,
                      (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
            now = (int64_t)time(NULL);
            j->next = now + j->period;
        }
        if (j->next < soonest)
            soonest = j->next;
    }
    return soonest;
}

static void *scheduler_main(void *arg)
{
    struct scheduler *sc = arg;
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(sc->dsn, &s, &err) != STORE_OK) {
        log_error("scheduler cannot open database", "err=\"%s\"", err ? err : "?");
        free(err);
        return NULL;
    }
    int64_t start = (int64_t)time(NULL);
    for (size_t i = 0; i < sc->njobs; i++)
        sc->jobs[i].next = start + sc->jobs[i].first_delay;
    pthread_mutex_lock(&sc->mu);
    while (!sc->stop) {
        pthread_mutex_unlock(&sc->mu);
        int64_t next = run_due(sc, s);
        pthread_mutex_lock(&sc->mu);
        struct timespec until = {.tv_sec = (time_t)next, .tv_nsec = 0};
        while (!sc->stop && (int64_t)time(NULL) < next) {
            int rc = pthread_cond_timedwait(&sc->cv, &sc->mu, &until);
            if (rc == ETIMEDOUT)
                break;
        }
    }
    pthread_mutex_unlock(&sc->mu);
    store_close(s);
    return NULL;
}

int scheduler_start(struct scheduler *sc)
{
    if (!sc || sc->started)
        return -1;
    if (pthread_create(&sc->thread, NULL, scheduler_main, sc) != 0) {
        log_error("cannot start the scheduler thread", "%s", "");
        return -1;
    }
    sc->started = 1;
    log_info("scheduler started", "jobs=%zu", sc->njobs);
    return 0;
}

void scheduler_free(struct scheduler *sc)
{
    if (!sc)
        return;
    if (sc->started) {
        pthread_mutex_lock(&sc->mu);
        sc->stop = 1;
        pthread_cond_signal(&sc->cv);
        pthread_mutex_unlock(&sc->mu);
        pthread_join(sc->thread, NULL);
    }
    pthread_mutex_destroy(&sc->mu);
    pthread_cond_destroy(&sc->cv);
    free(sc->dsn);
    free(sc);
}
