/* scheduler.c: the periodic-job thread behind scheduler.h. It sleeps on a
 * condition variable until the next job is due (or stop is asked), then
 * runs the due jobs with its own store connection, opened lazily so a
 * database that is briefly unavailable only delays the jobs. */
#include "core/scheduler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"

#define SCHED_MAX_JOBS 32

struct sched_job {
    char name[48];
    int64_t interval;
    int64_t next; /* Unix time; set at start */
    int64_t first_delay;
    sched_job_fn fn;
    void *arg;
    int ran; /* this process has run it once (later runs are claimed) */
};

struct sched {
    char *dsn;
    struct sched_job jobs[SCHED_MAX_JOBS];
    int njobs;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, stop;
};

struct sched *sched_new(const char *dsn)
{
    struct sched *sc = calloc(1, sizeof *sc);
    if (!sc || !(sc->dsn = strdup(dsn ? dsn : ""))) {
        free(sc);
        return NULL;
    }
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    return sc;
}

int sched_add(struct sched *sc, const char *name, int64_t interval, int64_t first_delay,
              sched_job_fn fn, void *arg)
{
    if (!sc || sc->started || sc->njobs == SCHED_MAX_JOBS || interval <= 0 || !fn)
        return -1;
    struct sched_job *j = &sc->jobs[sc->njobs++];
    snprintf(j->name, sizeof j->name, "%s", name ? name : "job");
    j->interval = interval;
    j->first_delay = first_delay > 0 ? first_delay : 0;
    j->next = j->first_delay; /* relative until sched_start (or 0 for sched_run_due) */
    j->fn = fn;
    j->arg = arg;
    return 0;
}

int sched_run_due(struct sched *sc, struct store *s, int64_t now)
{
    int ran = 0;
    for (int i = 0; sc && i < sc->njobs; i++) {
        struct sched_job *j = &sc->jobs[i];
        if (j->next > now)
            continue;
        j->fn(s, j->arg, now);
        log_debug("scheduled job ran", "job=%s", j->name);
        /* From now, not from the planned time: a slow run never piles up. */
        j->next = now + j->interval;
        ran++;
    }
    return ran;
}

/* The thread's runs: every node sharing a database (PostgreSQL, several
 * steward processes) asks store_sched_claim before a run, so a periodic job
 * runs once per interval between them. A node's first run of each job is
 * recorded but not refused, so a restarted node does its start-up work (an
 * expiry check, a first inventory pass) as a lone node does. */
static void run_due_shared(struct sched *sc, struct store *s, int64_t now, const char *owner)
{
    for (int i = 0; i < sc->njobs; i++) {
        struct sched_job *j = &sc->jobs[i];
        if (j->next > now)
            continue;
        int rc = store_sched_claim(s, j->name, j->interval, now, owner, !j->ran);
        j->next = now + j->interval;
        if (rc == STORE_CONFLICT) {
            log_debug("scheduled job ran elsewhere", "job=%s", j->name);
            continue;
        }
        if (rc != STORE_OK)
            log_warn("scheduled job not claimed; running it here", "job=%s rc=%d", j->name, rc);
        j->fn(s, j->arg, now);
        j->ran = 1;
        log_debug("scheduled job ran", "job=%s", j->name);
    }
}

static int64_t next_due(const struct sched *sc)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < sc->njobs; i++)
        if (sc->jobs[i].next < next)
            next = sc->jobs[i].next;
    return next;
}

static void *sched_main(void *arg)
{
    struct sched *sc = arg;
    struct store *s = NULL;
    char owner[128], host[64] = "?";
    (void)gethostname(host, sizeof host - 1);
    snprintf(owner, sizeof owner, "%s:%ld", host, (long)getpid());
    pthread_mutex_lock(&sc->mu);
    while (!sc->stop) {
        int64_t now = (int64_t)time(NULL);
        int64_t next = next_due(sc);
        if (next > now) {
            struct timespec until = {.tv_sec = (time_t)(next == INT64_MAX ? now + 3600 : next)};
            pthread_cond_timedwait(&sc->cv, &sc->mu, &until);
            continue;
        }
        pthread_mutex_unlock(&sc->mu);
        char *err = NULL;
        if (!s && store_open(sc->dsn, &s, &err) != STORE_OK) {
            log_warn("scheduler cannot open database", "err=\"%s\"", err ? err : "?");
            free(err);
            s = NULL;
            /* Try again in a minute rather than spinning. */
            for (int i = 0; i < sc->njobs; i++)
                if (sc->jobs[i].next <= now)
                    sc->jobs[i].next = now + 60;
        } else {
            run_due_shared(sc, s, now, owner);
        }
        pthread_mutex_lock(&sc->mu);
    }
    pthread_mutex_unlock(&sc->mu);
    store_close(s);
    return NULL;
}

int sched_start(struct sched *sc)
{
    if (!sc || sc->started)
        return -1;
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; i < sc->njobs; i++)
        sc->jobs[i].next = now + sc->jobs[i].first_delay;
    if (pthread_create(&sc->thread, NULL, sched_main, sc) != 0)
        return -1;
    sc->started = 1;
    return 0;
}

void sched_free(struct sched *sc)
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
