/* push_bench.c: bench-push_bench, steward's push path under load. Writes N
 * enrolled devices and a push certificate into a fresh store, starts the
 * real push service (core/push.c: device lookups, batching, the HTTP/2
 * client, result recording) against steward-apns-mock, pushes every device
 * once and reports pushes per second and CPU per push of this process as
 * one line of key=value pairs for bench/push/run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/push.h"
#include "store/store.h"
#include "util/config.h"
#include "util/log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *d = calloc(1, 1 << 20);
    if (d && fread(d, 1, (1 << 20) - 1, f) == 0) {
        free(d);
        d = NULL;
    }
    fclose(f);
    return d;
}

/* N enrolled devices sharing the topic, each with its own token and magic. */
static int make_devices(struct store *s, long n, const char *topic, char ***ids_out)
{
    char **ids = calloc((size_t)n, sizeof *ids);
    if (!ids || store_begin(s) != STORE_OK)
        return -1;
    for (long i = 0; i < n; i++) {
        char id[40], token[65], magic[40];
        snprintf(id, sizeof id, "BENCH-%08ld", i);
        snprintf(token, sizeof token, "%064lx", (unsigned long)i * 2654435761u + 1);
        snprintf(magic, sizeof magic, "MAGIC-%08ld", i);
        struct store_enrollment e = {.id = id, .type = "Device", .udid = id, .topic = (char *)topic};
        int first = 0;
        if (store_enrollment_authenticate(s, &e, 1000) != STORE_OK)
            return -1;
        e.token_hex = token;
        e.push_magic = magic;
        if (store_enrollment_token_update(s, &e, 1000, &first) != STORE_OK)
            return -1;
        ids[i] = strdup(id);
    }
    if (store_commit(s) != STORE_OK)
        return -1;
    *ids_out = ids;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, 0, 'd'},   {"devices", required_argument, 0, 'n'},
        {"url", required_argument, 0, 'u'},   {"ca", required_argument, 0, 'a'},
        {"cert", required_argument, 0, 'c'},  {"key", required_argument, 0, 'k'},
        {"topic", required_argument, 0, 't'}, {"set", required_argument, 0, 's'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL, *url = NULL, *ca = NULL, *cert = NULL, *key = NULL, *topic = NULL;
    long n = 100000;
    struct config cfg;
    config_defaults(&cfg, "");
    char *err = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'n': n = atol(optarg); break;
        case 'u': url = optarg; break;
        case 'a': ca = optarg; break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 't': topic = optarg; break;
        case 's': {
            char *eq = strchr(optarg, '=');
            if (!eq)
                return 2;
            *eq = '\0';
            if (config_set(&cfg, optarg, eq + 1, &err) < 0) {
                fprintf(stderr, "bench-push: %s\n", err);
                return 2;
            }
            break;
        }
        default: return 2;
        }
    }
    if (!dir || !url || !ca || !cert || !key || !topic || n <= 0) {
        fputs("usage: bench-push_bench --dir DIR --url URL --ca FILE --cert FILE --key FILE "
              "--topic T [--devices N] [--set option=value]…\n",
              stderr);
        return 2;
    }
    log_set_level(LOG_WARN);
    snprintf(cfg.database, sizeof cfg.database, "sqlite:%s/bench.db", dir);
    snprintf(cfg.apns_url, sizeof cfg.apns_url, "%s", url);
    snprintf(cfg.apns_ca, sizeof cfg.apns_ca, "%s", ca);
    cfg.push_coalesce_ms = 0;
    struct store *s = NULL;
    if (store_open(cfg.database, &s, &err) != STORE_OK) {
        fprintf(stderr, "bench-push: %s\n", err ? err : "cannot open the store");
        return 1;
    }
    char **ids = NULL;
    struct store_pushcert pc = {.topic = (char *)topic, .cert_pem = slurp(cert),
                                .key_pem = slurp(key), .not_before = 0, .not_after = 4000000000};
    if (!pc.cert_pem || !pc.key_pem || store_pushcert_put(s, &pc, 1000) != STORE_OK ||
        make_devices(s, n, topic, &ids) < 0) {
        fprintf(stderr, "bench-push: cannot set up the store\n");
        return 1;
    }
    free(pc.cert_pem);
    free(pc.key_pem);
    struct push_service *ps = push_service_new(&cfg, &err);
    if (!ps) {
        fprintf(stderr, "bench-push: %s\n", err ? err : "?");
        return 1;
    }
    /* One warm-up push opens the connections, as a running steward has them open. */
    struct push_result *out = calloc((size_t)n, sizeof *out);
    push_devices_wait(ps, (const char *const *)ids, 1, out, 30);
    double t0 = now_s(), c0 = cpu_s();
    int rc = push_devices_wait(ps, (const char *const *)ids, (size_t)n, out, 600);
    double wall = now_s() - t0, cpu = cpu_s() - c0;
    long ok = 0;
    for (long i = 0; i < n; i++) {
        ok += out[i].status == 200;
        if (out[i].status != 200 && ok + 20 > i) /* the first few failures, for the log */
            fprintf(stderr, "bench-push: %s: %d %s\n", ids[i], out[i].status, out[i].result);
    }
    printf("pushes=%ld ok=%ld seconds=%.3f per_second=%.0f cpu_us_per_push=%.1f complete=%d\n", n,
           ok, wall, (double)n / wall, cpu * 1e6 / (double)n, rc == 0);
    push_service_free(ps);
    for (long i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(out);
    store_close(s);
    return ok == n ? 0 : 1;
}
