/* serve.c: `steward serve`. Loads configuration and trust anchors, migrates
 * the database, starts the HTTP layer with one store connection per handler
 * thread, and runs until SIGINT/SIGTERM. This is where the layers are
 * composed (the router in router.c picks the front end per request). */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "core/certs_expiry.h"
#include "core/events.h"
#include "core/compliance.h"
#include "core/inventory.h"
#include "core/push.h"
#include "core/queue.h"
#include "core/push_certs.h"
#include "core/scheduler.h"
#include "enroll/enroll.h"
#include "pki/pki.h"
#include "profiles/converge.h"
#include "store/store.h"
#include "util/log.h"

static void *worker_open(void *arg, int index)
{
    const struct service *svc = arg;
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    char *err = NULL;
    if (store_open(svc->cfg->database, &w->store, &err) != STORE_OK) {
        log_error("worker cannot open database", "index=%d err=\"%s\"", index, err ? err : "?");
        free(err);
        free(w);
        return NULL;
    }
    w->svc = svc;
    w->index = index;
    return w;
}

static void worker_close(void *ctx);

/* An I/O loop's context for the fast path: its own connection, which never
 * waits on a lock (a busy database sends the request to the pool instead).
 * NULL, and no fast path, where the backend cannot promise that. */
static void *io_open(void *arg, int index)
{
    struct worker *w = worker_open(arg, index);
    if (w && store_set_lock_wait(w->store, 0) != STORE_OK) {
        log_info("no I/O-thread fast path", "loop=%d backend=%s", index,
                 store_backend_name(w->store));
        worker_close(w);
        return NULL;
    }
    if (w)
        w->index = -1 - index; /* loops count down from -1 in logs */
    return w;
}

static void worker_close(void *ctx)
{
    struct worker *w = ctx;
    if (!w)
        return;
    store_close(w->store);
    free(w);
}

static enum log_level parse_level(const char *s)
{
    if (strcmp(s, "debug") == 0) return LOG_DEBUG;
    if (strcmp(s, "warn") == 0) return LOG_WARN;
    if (strcmp(s, "error") == 0) return LOG_ERROR;
    return LOG_INFO;
}

static int write_ready_file(const char *path, struct http_server *srv)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "https_port=%d\nhttp_port=%d\n", http_server_https_port(srv),
            http_server_http_port(srv));
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path); /* readers never see a half-written file */
}

/* Runs migrations once, before any worker opens a connection. */
static int migrate(const struct config *cfg)
{
    struct store *s = NULL;
    char *err = NULL;
    int rc = store_open(cfg->database, &s, &err);
    if (rc != STORE_OK) {
        log_error("cannot open database", "dsn=\"%s\" err=\"%s\"", cfg->database, err ? err : "?");
        free(err);
        return -1;
    }
    log_info("database ready", "schema_version=%d", store_schema_version(s));
    store_close(s);
    return 0;
}

/* Scheduled jobs: each is a core function run with the scheduler's own
 * connection; the configuration is read-only while serving. */
static void job_inventory_refresh(struct store *s, void *arg, int64_t now)
{
    const struct config *cfg = arg;
    size_t devices = 0;
    int rc = inventory_refresh_due(s, cfg->inventory_refresh_interval, now, &devices);
    if (rc != STORE_OK)
        log_warn("inventory refresh failed", "rc=%d", rc);
    else if (devices)
        log_info("inventory refresh queued", "devices=%zu", devices);
}

static void job_inventory_retention(struct store *s, void *arg, int64_t now)
{
    const struct config *cfg = arg;
    int64_t deleted = 0;
    int rc = inventory_history_prune(s, cfg->inventory_history_days, now, &deleted);
    if (rc != STORE_OK)
        log_warn("inventory history retention failed", "rc=%d", rc);
    else if (deleted)
        log_info("inventory history pruned", "rows=%lld", (long long)deleted);
}

/* Commands past their ttl that no device fetched are marked Expired. */
static void job_command_expiry(struct store *s, void *arg, int64_t now)
{
    (void)arg;
    int64_t n = 0;
    int rc = store_queue_expire_due(s, now, &n);
    if (rc != STORE_OK)
        log_warn("command expiry failed", "rc=%d", rc);
    else if (n)
        log_info("commands expired", "rows=%lld", (long long)n);
}

/* The scheduler thread with every area's periodic jobs. NULL (logged) when
 * it cannot start. */
static struct sched *start_scheduler(const struct config *cfg, int *expiry_days,
                                     const struct service *svc)
{
    struct push_service *push = svc->push;
    struct events *events = svc->events;
    compliance_configure(cfg->compliance_max_age); /* before any thread evaluates */
    compliance_set_group_resolver(converge_group_members); /* policies scoped to groups */
    struct sched *sc = sched_new(cfg->database);
    if (!sc)
        return NULL;
    /* push (issue 5): push-certificate expiry warnings, re-push of silent devices */
    if (sched_add(sc, "push-cert-expiry", cfg->cert_watch_interval, 2, pushcert_expiry_job,
                  NULL) != 0 ||
        (push && cfg->push_repush_after > 0 &&
         sched_add(sc, "push-repush", cfg->push_repush_interval, cfg->push_repush_interval,
                   push_repush_job, push) != 0)) {
        sched_free(sc);
        return NULL;
    }
    int64_t refresh = cfg->inventory_refresh_interval;
    /* Checked often enough that a device is refreshed within a quarter of
     * the interval of falling due, at most every five minutes. */
    int64_t tick = refresh > 0 ? (refresh / 4 < 300 ? (refresh / 4 ? refresh / 4 : 1) : 300) : 0;
    if (sched_add(sc, "certs_expiry", cfg->cert_watch_interval, 1, certs_expiry_job,
                  expiry_days) != 0 ||
        (tick && sched_add(sc, "inventory-refresh", tick, 1, job_inventory_refresh,
                           (void *)cfg) != 0) ||
        sched_add(sc, "inventory-retention", 3600, 5, job_inventory_retention, (void *)cfg) != 0 ||
        (cfg->profiles_converge_interval > 0 &&
         sched_add(sc, "profiles-converge", cfg->profiles_converge_interval, 10, converge_job,
                   NULL) != 0) ||
        (events && sched_add(sc, "events-cert-expiring", 86400, 60, events_cert_expiring_job,
                             events) != 0) ||
        (events && sched_add(sc, "operators-retention", 3600, 30, events_retention_job,
                             events) != 0) ||
        sched_add(sc, "command-expiry", cfg->command_expiry_interval, 1, job_command_expiry,
                  NULL) != 0 ||
        sched_add(sc, "enroll-housekeeping", 300, 7, enroll_housekeeping_job, NULL) != 0 ||
        (cfg->compliance_interval &&
         sched_add(sc, "compliance", cfg->compliance_interval, 2, compliance_job, NULL) != 0) ||
        sched_start(sc) != 0) {
        log_error("cannot start the scheduler", "%s", "");
        sched_free(sc);
        return NULL;
    }
    return sc;
}

/* queue_wake's target: devices that got commands from any area are pushed. */
static void wake_by_push(void *arg, const char *const *ids, size_t n)
{
    if (push_devices(arg, ids, n) < 0)
        log_warn("push after queueing: out of memory", "devices=%zu", n);
}

/* Stops what services_start started (either may be NULL). */
static void services_stop(struct service *svc)
{
    /* Users of the event sink first (the push thread is joined here), then
     * the sink itself. */
    compliance_set_events(NULL);
    queue_set_waker(NULL, NULL);
    push_service_free(svc->push);
    svc->push = NULL;
    events_stop(svc->events);
    svc->events = NULL;
}

/* The push sender and the webhook/event fan-out, each with its own thread
 * and store connection. 0, or -1 (logged) with nothing left running. */
static int services_start(struct service *svc, const struct config *cfg)
{
    char *err = NULL;
    if (cfg->apns_url[0] && !(svc->push = push_service_new(cfg, &err))) {
        log_error("cannot start the push service", "err=\"%s\"", err ? err : "?");
        free(err);
        return -1;
    }
    if (svc->push)
        queue_set_waker(wake_by_push, svc->push);
    svc->events = events_start(cfg);
    if (!svc->events) {
        services_stop(svc);
        return -1;
    }
    compliance_set_events(svc->events);
    push_set_events(svc->push, svc->events);
    return 0;
}

/* Caps glibc's malloc arenas before the threads start. glibc gives each
 * thread its own arena (up to 8 per core), and each keeps the memory its
 * thread freed: connections are made on the I/O threads and requests handled
 * on the workers, so free memory ends up spread over a dozen arenas. */
static void limit_malloc_arenas(const struct config *cfg)
{
    if (cfg->malloc_arenas <= 0 || getenv("MALLOC_ARENA_MAX"))
        return;
    if (mallopt(M_ARENA_MAX, (int)cfg->malloc_arenas) != 1)
        log_warn("malloc_arenas not applied", "arenas=%ld", cfg->malloc_arenas);
}

int app_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data-dir", required_argument, 0, 'd'}, {"set", required_argument, 0, 's'},
        {"ready-file", required_argument, 0, 'r'}, {"verbose", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL, *ready = NULL;
    char *sets[64];
    int nsets = 0, verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r': ready = optarg; break;
        case 'v': verbose = 1; break;
        case 's':
            if (nsets < 64)
                sets[nsets++] = optarg;
            break;
        default: return 2;
        }
    }
    if (!dir)
        dir = getenv("STEWARD_DATA_DIR");
    if (!dir) {
        fputs("usage: steward serve --data-dir DIR [--set option=value]… [--ready-file FILE] [-v]\n",
              stderr);
        return 2;
    }
    struct config cfg;
    if (app_load_config(&cfg, dir, sets, nsets) < 0)
        return 1;
    log_set_level(verbose ? LOG_DEBUG : parse_level(cfg.log_level));
    limit_malloc_arenas(&cfg);

    char *err = NULL;
    /* The CA issues device certificates (SCEP, approvals) and signs CRLs;
     * with it come the previous CA (rotation overlap) and the SCEP RA. */
    struct pki_ca *ca = NULL;
    if (app_load_ca(&cfg, &ca, &err) != 0) {
        log_error("cannot load CA key pair", "cert=\"%s\" key=\"%s\" err=\"%s\"", cfg.ca_cert,
                  cfg.ca_key, err ? err : "?");
        free(err);
        return 1;
    }
    struct pki_trust *trust = app_device_trust(&cfg, ca, &err);
    if (!trust) {
        log_error("cannot load device CAs", "file=\"%s\" err=\"%s\"", cfg.ca_cert, err ? err : "?");
        free(err);
        pki_ca_free(ca);
        return 1;
    }
    if (migrate(&cfg) < 0) {
        pki_ca_free(ca);
        pki_trust_free(trust);
        return 1;
    }
    struct service svc = {.cfg = &cfg, .trust = trust, .ca = ca, .started = time(NULL)};
    /* Profiles: the signing identity (the TLS pair) and the result handlers. */
    if (converge_init(&cfg) != 0)
        log_warn("configuration profiles cannot be sent", "%s", "");

    /* Signals are taken synchronously by this thread; block them before any
     * other thread exists so none of them is interrupted. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    size_t max_body = (size_t)(cfg.max_body_device > cfg.max_body_api ? cfg.max_body_device
                                                                       : cfg.max_body_api);
    struct http_server_opts ho = {
        .https_listen = cfg.listen_https, .http_listen = cfg.listen_http,
        .tls_cert_file = cfg.tls_cert, .tls_key_file = cfg.tls_key, .client_ca_file = cfg.ca_cert,
        .io_threads = (int)cfg.io_threads, .workers = (int)cfg.workers,
        .max_body = max_body, .max_header = (size_t)cfg.max_header,
        .read_timeout = (int)cfg.read_timeout, .idle_timeout = (int)cfg.idle_timeout,
        .handler = app_route, .worker_init = worker_open, .worker_fini = worker_close,
        .fast_handler = app_route_fast, .io_init = io_open, .io_fini = worker_close, .arg = &svc,
    };
    /* The background services: the APNs sender (unless apns_url is empty),
     * webhook deliveries, then the periodic jobs that use them. */
    int rc = 1;
    struct sched *sched = NULL;
    struct http_server *srv = NULL;
    if (services_start(&svc, &cfg) != 0)
        goto out;
    int expiry_days = (int)cfg.cert_expiry_days;
    if (!(sched = start_scheduler(&cfg, &expiry_days, &svc)))
        goto out;
    if (!(srv = http_server_start(&ho, &err))) {
        log_error("cannot start HTTP server", "err=\"%s\"", err ? err : "?");
        free(err);
        goto out;
    }
    log_info("steward serving", "version=%s https_port=%d http_port=%d data_dir=\"%s\"",
             STEWARD_VERSION, http_server_https_port(srv), http_server_http_port(srv), dir);
    if (ready && write_ready_file(ready, srv) < 0)
        log_error("cannot write ready file", "file=\"%s\"", ready);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("stopping", "signal=%d", sig);
    http_server_stop(srv);
    rc = 0;
out:
    /* In the reverse order of starting; each accepts what never started. */
    sched_free(sched);
    converge_shutdown();
    services_stop(&svc);
    pki_ca_free(ca);
    pki_trust_free(trust);
    if (rc != 0)
        return rc;
    log_info("stopped", "%s", "");
    return 0;
}
