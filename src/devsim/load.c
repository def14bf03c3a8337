/* load.c: runs the chosen verb for a fleet of simulated devices. C worker
 * threads each own one libcurl handle (keep-alive, TLS session reuse) and
 * pull device numbers from a shared counter; each keeps its own report, and
 * the reports are merged after the join, so no locks are needed. Also the
 * JSON summary. Called by main.c. */
#include "devsim/devsim.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/array.h"

/* ---- report ---- */

static void count_code(struct devsim_report *r, long status, size_t n)
{
    for (size_t i = 0; i < r->n_codes; i++)
        if (r->codes[i] == status) {
            r->code_counts[i] += n;
            return;
        }
    if (r->n_codes < DEVSIM_MAX_CODES) {
        r->codes[r->n_codes] = status;
        r->code_counts[r->n_codes++] = n;
    }
}

void devsim_report_http(struct devsim_report *r, long status)
{
    count_code(r, status, 1);
}

int devsim_report_cmd(struct devsim_report *r, const char *udid, const struct devsim_result *res)
{
    if (array_grow((void **)&r->cmds, &r->cap_cmds, r->n_cmds, sizeof *r->cmds) != 0)
        return -1;
    struct devsim_cmd_rec *c = &r->cmds[r->n_cmds++];
    snprintf(c->udid, sizeof c->udid, "%s", udid);
    snprintf(c->command_uuid, sizeof c->command_uuid, "%s", res->command_uuid);
    snprintf(c->request_type, sizeof c->request_type, "%s", res->request_type);
    c->status = res->status;
    return 0;
}

int devsim_report_err(struct devsim_report *r, const char *udid, const char *phase,
                      long http_status, const char *message)
{
    char *m = strndup(message ? message : "", 2000);
    if (!m || array_grow((void **)&r->errs, &r->cap_errs, r->n_errs, sizeof *r->errs) != 0) {
        free(m);
        return -1;
    }
    struct devsim_err_rec *e = &r->errs[r->n_errs++];
    snprintf(e->udid, sizeof e->udid, "%s", udid);
    snprintf(e->phase, sizeof e->phase, "%s", phase);
    e->http_status = http_status;
    e->message = m;
    return 0;
}

int devsim_report_dev(struct devsim_report *r, const struct devsim_device *d, int index, int ok)
{
    if (array_grow((void **)&r->devs, &r->cap_devs, r->n_devs, sizeof *r->devs) != 0)
        return -1;
    struct devsim_dev_rec *v = &r->devs[r->n_devs++];
    memset(v, 0, sizeof *v);
    v->index = index;
    v->ok = ok;
    if (d) {
        snprintf(v->udid, sizeof v->udid, "%s", d->facts.udid);
        snprintf(v->serial, sizeof v->serial, "%s", d->facts.serial);
    }
    r->devices++;
    if (!ok)
        r->devices_failed++;
    return 0;
}

/* Appends n elements of src to dst's array. */
static int append(void **dst, size_t *dn, size_t *dcap, const void *src, size_t n, size_t elem)
{
    if (*dn + n > *dcap) {
        size_t c = *dcap ? *dcap : 16;
        while (c < *dn + n)
            c *= 2;
        void *p = realloc(*dst, c * elem);
        if (!p)
            return -1;
        *dst = p;
        *dcap = c;
    }
    if (n)
        memcpy((char *)*dst + *dn * elem, src, n * elem);
    *dn += n;
    return 0;
}

int devsim_report_merge(struct devsim_report *dst, struct devsim_report *src)
{
    if (append((void **)&dst->cmds, &dst->n_cmds, &dst->cap_cmds, src->cmds, src->n_cmds,
               sizeof *src->cmds) ||
        append((void **)&dst->errs, &dst->n_errs, &dst->cap_errs, src->errs, src->n_errs,
               sizeof *src->errs) ||
        append((void **)&dst->devs, &dst->n_devs, &dst->cap_devs, src->devs, src->n_devs,
               sizeof *src->devs))
        return -1;
    src->n_errs = 0; /* the messages now belong to dst */
    dst->devices += src->devices;
    dst->devices_failed += src->devices_failed;
    dst->requests += src->requests;
    for (size_t i = 0; i < src->n_codes; i++)
        count_code(dst, src->codes[i], src->code_counts[i]);
    devsim_report_free(src);
    return 0;
}

void devsim_report_free(struct devsim_report *r)
{
    for (size_t i = 0; i < r->n_errs; i++)
        free(r->errs[i].message);
    free(r->cmds);
    free(r->errs);
    free(r->devs);
    memset(r, 0, sizeof *r);
}

/* ---- workers ---- */

struct fleet {
    const struct devsim_opts *o;
    const struct devsim_shared *sh;
    atomic_int next; /* the next device number to run */
};

struct worker {
    struct fleet *fleet;
    struct devsim_report rep;
    pthread_t tid;
    char *err; /* setup failure (no libcurl handle) */
};

static int run_verb(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                    struct devsim_report *r)
{
    /* --method: the identity and URLs come from an enrollment profile */
    if (o->method && (o->verb == DEVSIM_ENROLL || o->verb == DEVSIM_RUN))
        return devsim_method_run(o, h, d, r);
    /* --scep: a device without an identity gets one first, as iOS installs
     * the SCEP payload before it talks to the MDM server */
    if (o->scep_url && !d->cert && o->verb != DEVSIM_RENEW && o->verb != DEVSIM_CHECKOUT &&
        devsim_scep_enroll(o, h, d, r) != 0)
        return -1;
    switch (o->verb) {
    case DEVSIM_ENROLL:
        return devsim_flow_enroll(o, h, d, r);
    case DEVSIM_CONNECT:
        return devsim_flow_connect(o, h, d, r);
    case DEVSIM_CHECKOUT:
        return devsim_flow_checkout(o, h, d, r);
    case DEVSIM_RUN:
        return devsim_flow_enroll(o, h, d, r) == 0 ? devsim_flow_connect(o, h, d, r) : -1;
    case DEVSIM_RENEW:
        return devsim_scep_renew(o, h, d, r);
    }
    return -1;
}

static void run_device(struct worker *w, struct devsim_http *h, int index)
{
    const struct devsim_opts *o = w->fleet->o;
    char *err = NULL;
    struct devsim_device *d = devsim_device_open(o, w->fleet->sh, index, &err);
    if (!d) {
        char who[32];
        snprintf(who, sizeof who, "device-%d", index);
        fprintf(stderr, "steward-devsim: %s: %s\n", who, err ? err : "cannot set up");
        devsim_report_err(&w->rep, who, "setup", 0, err ? err : "cannot set up");
        devsim_report_dev(&w->rep, NULL, index, 0);
        free(err);
        return;
    }
    int rc = run_verb(o, h, d, &w->rep);
    devsim_report_dev(&w->rep, d, index, rc == 0);
    devsim_device_free(d);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct devsim_http *h = devsim_http_new(w->fleet->o, &w->err);
    if (!h)
        return NULL;
    for (;;) {
        int i = atomic_fetch_add(&w->fleet->next, 1);
        if (i >= w->fleet->o->count)
            break;
        run_device(w, h, i);
    }
    devsim_http_free(h);
    return NULL;
}

static int cmp_dev(const void *a, const void *b)
{
    const struct devsim_dev_rec *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int start_workers(struct worker *ws, int n, char **err)
{
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            *err = strdup("cannot start a worker thread");
            return i; /* the first i run; the caller joins them */
        }
    }
    return n;
}

int devsim_run_fleet(const struct devsim_opts *o, struct devsim_report *rep, double *elapsed,
                     char **err)
{
    struct devsim_shared sh;
    memset(rep, 0, sizeof *rep);
    *elapsed = 0;
    if (devsim_shared_load(o, &sh, err) != 0) {
        devsim_shared_clear(&sh);
        return -1;
    }
    int n = o->concurrency < 1 ? 1 : o->concurrency > o->count ? o->count : o->concurrency;
    struct fleet fleet = {.o = o, .sh = &sh};
    atomic_init(&fleet.next, 0);
    struct worker *ws = calloc((size_t)(n > 0 ? n : 1), sizeof *ws);
    if (!ws) {
        devsim_shared_clear(&sh);
        *err = strdup("out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        ws[i].fleet = &fleet;
    double t0 = now_seconds();
    int started = start_workers(ws, n, err);
    int rc = started == n ? 0 : -1;
    for (int i = 0; i < started; i++) {
        pthread_join(ws[i].tid, NULL);
        if (ws[i].err && rc == 0) {
            *err = ws[i].err;
            ws[i].err = NULL;
            rc = -1;
        }
        free(ws[i].err);
        if (devsim_report_merge(rep, &ws[i].rep) != 0 && rc == 0) {
            *err = strdup("out of memory");
            rc = -1;
        }
    }
    *elapsed = now_seconds() - t0;
    /* results come from parallel workers: list devices in their order */
    if (rep->n_devs > 1)
        qsort(rep->devs, rep->n_devs, sizeof *rep->devs, cmp_dev);
    for (int i = 0; i < n; i++)
        devsim_report_free(&ws[i].rep);
    free(ws);
    devsim_shared_clear(&sh);
    if (rc != 0)
        return -1;
    return rep->n_errs || rep->devices_failed || rep->devices < (size_t)o->count ? 1 : 0;
}

/* ---- JSON summary ---- */

static json_t *codes_json(const struct devsim_report *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < r->n_codes; i++) {
        char k[24];
        snprintf(k, sizeof k, "%ld", r->codes[i]);
        json_object_set_new(o, k, json_integer((json_int_t)r->code_counts[i]));
    }
    return o;
}

static json_t *command_status_json(const struct devsim_report *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < r->n_cmds; i++) {
        json_t *v = json_object_get(o, r->cmds[i].status);
        json_object_set_new(o, r->cmds[i].status,
                            json_integer(v ? json_integer_value(v) + 1 : 1));
    }
    return o;
}

static json_t *commands_json(const struct devsim_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_cmds; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "udid", r->cmds[i].udid,
                                           "command_uuid", r->cmds[i].command_uuid,
                                           "request_type", r->cmds[i].request_type, "status",
                                           r->cmds[i].status));
    return a;
}

static json_t *errors_json(const struct devsim_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_errs; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:s}", "udid", r->errs[i].udid,
                                           "phase", r->errs[i].phase, "http_status",
                                           (json_int_t)r->errs[i].http_status, "message",
                                           r->errs[i].message));
    return a;
}

static json_t *devices_json(const struct devsim_opts *o, const struct devsim_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_devs; i++) {
        const struct devsim_dev_rec *d = &r->devs[i];
        json_t *v = json_pack("{s:i, s:s, s:s, s:b}", "index", d->index, "udid", d->udid,
                              "serial", d->serial, "ok", d->ok);
        if (v && o->state_dir) {
            char dir[4200];
            snprintf(dir, sizeof dir, "%s/device-%05d", o->state_dir, d->index);
            json_object_set_new(v, "state_dir", json_string(dir));
        }
        json_array_append_new(a, v);
    }
    return a;
}

int devsim_print_json(const struct devsim_opts *o, const struct devsim_report *r,
                      double elapsed)
{
    json_t *root = json_pack(
        "{s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:f, s:f}", "devices", (json_int_t)r->devices,
        "devices_failed", (json_int_t)r->devices_failed, "requests", (json_int_t)r->requests,
        "http_status", codes_json(r), "command_status", command_status_json(r), "commands",
        commands_json(r), "errors", errors_json(r), "device_list", devices_json(o, r),
        "elapsed_seconds", elapsed, "requests_per_second",
        elapsed > 0 ? (double)r->requests / elapsed : 0.0);
    if (!root)
        return -1;
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : -1;
    if (rc == 0 && (fputc('\n', stdout) == EOF || fflush(stdout) != 0))
        rc = -1;
    json_decref(root);
    return rc;
}
