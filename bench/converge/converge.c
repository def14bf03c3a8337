/* converge.c: bench-converge, the configuration-profile convergence
 * benchmark (bench/converge/README.md). Part 1 times converge_plan, the
 * desired-against-installed diff, for DEVICES devices with PROFILES assigned
 * profiles each (through rule groups and static groups), nearly all already
 * installed, against a reference measured in the same run: one qsort of the
 * same device × profile state rows by device and identifier (what any
 * comparison-based diff must at least touch). Part 2 runs converge_run on a
 * real SQLite store with DB_DEVICES enrolled devices and reports how the
 * queued InstallProfile commands are stored: rows in `commands` (payload
 * bytes) against rows in `queue`. Prints numbers; never fails on timing. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pki/pki.h"
#include "plist/pl.h"
#include "profiles/converge.h"
#include "profiles/profile.h"
#include "store/sql.h"
#include "store/store.h"
#include "util/log.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

/* ---- part 1: the diff in memory ---- */

static int part1(long ndev, long nprof, double changed_share)
{
    char (*pid)[48] = calloc((size_t)nprof, sizeof *pid);
    char (*puuid)[64] = calloc((size_t)nprof, sizeof *puuid);
    char (*did)[40] = calloc((size_t)ndev, sizeof *did);
    struct converge_profile *prof = calloc((size_t)nprof, sizeof *prof);
    struct store_pdevice *dev = calloc((size_t)ndev, sizeof *dev);
    size_t nstates = (size_t)ndev * (size_t)nprof;
    struct store_pstate *st = calloc(nstates, sizeof *st);
    if (!pid || !puuid || !did || !prof || !dev || !st) {
        fprintf(stderr, "bench-converge: out of memory\n");
        return 1;
    }
    for (long p = 0; p < nprof; p++) {
        snprintf(pid[p], sizeof pid[p], "com.example.profile.%03ld", p);
        snprintf(puuid[p], sizeof puuid[p], "00000000-0000-4000-8000-%012ld", p);
        prof[p] = (struct converge_profile){pid[p], 2, puuid[p], p % 10 == 9, p % 7 == 0};
    }
    /* Five groups: four rule groups matching every device, one static group
     * per tenth of the fleet; the profiles spread over them. */
    enum { NGROUPS = 5 };
    static const char *const names[NGROUPS] = {"a-all", "b-ios17", "c-iphone", "d-user", "e-static"};
    static const char *const rules_text[NGROUPS] = {
        "{}", "{\"os_min\":\"17.0\"}", "{\"model\":[\"iPhone15,2\",\"iPhone16,1\"]}",
        "{\"attributes\":{\"dept\":\"sales\"}}", NULL};
    struct converge_group groups[NGROUPS];
    size_t *lists = calloc((size_t)nprof, sizeof *lists);
    size_t per = (size_t)(nprof + NGROUPS - 1) / NGROUPS, at = 0;
    for (int g = 0; g < NGROUPS; g++) {
        char err[200];
        groups[g].name = names[g];
        groups[g].rules = rules_text[g] ? converge_rules_parse(rules_text[g], err, sizeof err) : NULL;
        groups[g].profiles = lists + at;
        groups[g].nprofiles = 0;
        for (size_t k = 0; k < per && at < (size_t)nprof; k++)
            groups[g].profiles[groups[g].nprofiles++] = at++;
    }
    struct store_pair *members = calloc((size_t)ndev, sizeof *members);
    for (long d = 0; d < ndev; d++) {
        snprintf(did[d], sizeof did[d], "DEV-%08ld", d);
        dev[d] = (struct store_pdevice){.id = did[d], .product_name = "iPhone15,2",
                                        .model = "MQ0G3LL", .model_name = "iPhone",
                                        .user = NULL, .os_num = 170500, .supervised = 1,
                                        .attrs = "dept=sales\n"};
        members[d] = (struct store_pair){(char *)"e-static", did[d]};
    }
    /* States: everything installed at the current version except a share
     * that is one version behind (to reinstall). */
    size_t k = 0, behind = 0;
    unsigned long x = 88172645463325252UL;
    for (long d = 0; d < ndev; d++)
        for (long p = 0; p < nprof; p++, k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int old = (double)(x % 1000000) / 1e6 < changed_share;
            behind += old;
            st[k] = (struct store_pstate){.enrollment_id = did[d], .identifier = pid[p],
                                          .desired_version = old ? 1 : 2,
                                          .installed_uuid = old ? "old" : puuid[p],
                                          .installed_version = old ? 1 : 2,
                                          .state = "installed", .cmd_active = -1};
        }
    /* the reference (floor): one pass over the rows, already in order,
     * comparing each installed UUID with its profile's current one: the
     * least any diff does, without groups, rules or decisions */
    double t_ref = 1e9;
    size_t ref_diff = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        size_t diff = 0;
        for (size_t i = 0; i < nstates; i++)
            diff += strcmp(st[i].installed_uuid, puuid[i % (size_t)nprof]) != 0;
        double t = now_s() - t0;
        if (t < t_ref)
            t_ref = t;
        ref_diff = diff;
    }
    struct converge_input in = {prof, (size_t)nprof, groups, NGROUPS, dev, (size_t)ndev,
                                members, (size_t)ndev, st, nstates};
    double best = 1e9;
    size_t nact = 0, waiting = 0;
    for (int rep = 0; rep < 3; rep++) {
        struct converge_action *a = NULL;
        double t0 = now_s();
        if (converge_plan(&in, &a, &nact, &waiting) != 0) {
            fprintf(stderr, "bench-converge: plan failed\n");
            return 1;
        }
        double t = now_s() - t0;
        if (t < best)
            best = t;
        free(a);
    }
    printf("part 1: diff of %ld devices x %ld assigned profiles (%zu state rows, %zu one version behind)\n",
           ndev, nprof, nstates, behind);
    printf("  converge_plan          %8.3f s   (best of 3; %zu actions)\n", best, nact);
    printf("  reference: one pass    %8.3f s   (strcmp of every installed UUID; %zu differ)\n",
           t_ref, ref_diff);
    printf("  ratio plan/reference   %8.2f\n", best / t_ref);
    printf("  target <= 2 s          %s\n", best <= 2.0 ? "met" : "NOT met");
    for (int g = 0; g < NGROUPS; g++)
        converge_rules_free(groups[g].rules);
    free(lists);
    free(members);
    free(st);
    free(dev);
    free(prof);
    free(did);
    free(puuid);
    free(pid);
    return 0;
}

/* ---- part 2: converge_run on a store: how commands are stored ---- */

static int count(struct store *s, const char *sql, int64_t *out)
{
    int rc = STORE_OK;
    struct sql_stmt *st = sql_prepare(s, sql, "bench.count", &rc);
    if (!st)
        return rc;
    rc = sql_first_row(s, st, "bench.count", 0);
    if (rc == STORE_OK) {
        *out = sql_col_int(st, 0);
        sql_done(st);
    }
    return rc;
}

static const char sql_cmds[] = "SELECT COUNT(*) FROM commands WHERE request_type = 'InstallProfile'";
static const char sql_bytes[] =
    "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM commands WHERE request_type = 'InstallProfile'";
static const char sql_queue[] =
    "SELECT COUNT(*) FROM queue q JOIN commands c ON c.uuid = q.command_uuid"
    " WHERE c.request_type = 'InstallProfile'";

static int part2(long ndev, long nprof)
{
    char dir[] = "/tmp/bench-converge.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char dsn[256], cert[300], key[300], err_path[300];
    snprintf(dsn, sizeof dsn, "%s/steward.db", dir);
    snprintf(cert, sizeof cert, "%s/ca.pem", dir);
    snprintf(key, sizeof key, "%s/ca.key", dir);
    (void)err_path;
    char *err = NULL;
    struct profile_signer *signer = NULL;
    if (pki_ca_create(cert, key, "Bench Signer", &err) != 0 ||
        !(signer = profile_signer_load(cert, key, &err))) {
        fprintf(stderr, "bench-converge: signer: %s\n", err ? err : "?");
        return 1;
    }
    converge_set_signer(signer);
    struct store *s = NULL;
    if (store_open(dsn, &s, &err) != STORE_OK) {
        fprintf(stderr, "bench-converge: %s\n", err ? err : "cannot open the store");
        return 1;
    }
    int64_t now = (int64_t)time(NULL);
    int rc = store_begin(s);
    for (long d = 0; rc == STORE_OK && d < ndev; d++) {
        char id[40];
        snprintf(id, sizeof id, "DEV-%08ld", d);
        struct store_enrollment e = {.id = id, .udid = id, .type = "Device", .topic = "com.apple.mgmt.bench"};
        int first = 0;
        rc = store_enrollment_authenticate(s, &e, now);
        e.token_hex = "00";
        e.push_magic = "magic";
        if (rc == STORE_OK)
            rc = store_enrollment_token_update(s, &e, now, &first);
    }
    if (rc == STORE_OK)
        rc = store_group_create(s, &(struct store_group){.name = "everyone", .rules = "{}"}, now);
    for (long p = 0; rc == STORE_OK && p < nprof; p++) {
        char spec[512], perr[PROFILE_ERR_MAX];
        snprintf(spec, sizeof spec,
                 "{\"identifier\":\"com.example.p%03ld\",\"payloads\":[{\"PayloadType\":"
                 "\"com.apple.webClip.managed\",\"URL\":\"https://example.com/%ld\",\"Label\":\"P%ld\"}]}",
                 p, p, p);
        json_error_t je;
        json_t *j = json_loads(spec, 0, &je);
        plist_t root = profile_build(j, perr, sizeof perr);
        json_decref(j);
        struct profile_check c;
        char *xml = NULL;
        size_t len = 0;
        if (!root || profile_validate(root, &c, perr, sizeof perr) != 0 ||
            pl_to_xml(root, &xml, &len) != 0) {
            fprintf(stderr, "bench-converge: profile: %s\n", perr);
            return 1;
        }
        struct store_profile sp = {.identifier = c.identifier, .payload_uuid = c.uuid,
                                   .types = c.types, .source = "built"};
        rc = store_profile_put(s, &sp, (const uint8_t *)xml, len, now);
        if (rc == STORE_OK)
            rc = store_group_assign(s, "everyone", c.identifier, now);
        free(xml);
        plist_free(root);
        profile_check_free(&c);
    }
    if (rc == STORE_OK)
        rc = store_commit(s);
    if (rc != STORE_OK) {
        fprintf(stderr, "bench-converge: setup failed (%d)\n", rc);
        return 1;
    }
    struct converge_stats st;
    double t0 = now_s();
    rc = converge_run(s, NULL, now, &st);
    double t_run = now_s() - t0;
    struct converge_stats st2;
    t0 = now_s();
    int rc2 = converge_run(s, NULL, now, &st2);
    double t_again = now_s() - t0;
    int64_t cmds = 0, bytes = 0, queued = 0;
    if (rc != STORE_OK || rc2 != STORE_OK || count(s, sql_cmds, &cmds) != STORE_OK ||
        count(s, sql_bytes, &bytes) != STORE_OK || count(s, sql_queue, &queued) != STORE_OK) {
        fprintf(stderr, "bench-converge: converge_run failed\n");
        return 1;
    }
    printf("part 2: converge_run on SQLite, %ld devices x %ld profiles (group rule {})\n", ndev,
           nprof);
    printf("  first run              %8.3f s   (%zu installs queued as %zu commands)\n", t_run,
           st.installs, st.commands);
    printf("  second run             %8.3f s   (%zu queued, %zu already waiting: no duplicates)\n",
           t_again, st2.installs, st2.waiting);
    printf("  commands rows          %8lld     (%lld payload bytes, %.0f bytes per command)\n",
           (long long)cmds, (long long)bytes, cmds ? (double)bytes / (double)cmds : 0.0);
    printf("  queue rows             %8lld     (payload copies per device: none)\n",
           (long long)queued);
    store_close(s);
    profile_signer_free(signer);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-converge: could not remove %s\n", dir);
    return 0;
}

int main(void)
{
    log_set_level(LOG_WARN);
    long ndev = env_long("DEVICES", 100000), nprof = env_long("PROFILES", 50);
    double changed = (double)env_long("CHANGED_PERMILLE", 10) / 1000.0;
    if (ndev < 1 || nprof < 1)
        return 2;
    if (part1(ndev, nprof, changed) != 0)
        return 1;
    return part2(env_long("DB_DEVICES", 2000), env_long("DB_PROFILES", 50));
}
