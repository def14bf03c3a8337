/* compliance.c (bench-compliance): times compliance_evaluate_fleet over a
 * store that bench/compliance/run filled directly with SQL (100,000
 * enrolled devices with inventory by default). Adds the 20 policies below
 * (every rule type, all/any), then evaluates the fleet several times: the
 * first run writes every non-compliant state and its history, the later
 * ones are the steady state a schedule sees (nothing changed). Prints one
 * "name wall-seconds cpu-seconds counts…" line per run for the run script. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compliance.h"
#include "store/store.h"

static const char *const policies[][2] = {
    {"passcode", "{\"type\":\"passcode\"}"},
    {"encryption", "{\"type\":\"encryption\"}"},
    {"os-17", "{\"type\":\"os_version\",\"min\":\"17.0\"}"},
    {"os-18", "{\"type\":\"os_version\",\"min\":\"18.0\"}"},
    {"supervised", "{\"type\":\"supervised\"}"},
    {"wifi", "{\"type\":\"profiles_installed\",\"identifiers\":[\"com.example.wifi\"]}"},
    {"no-games", "{\"type\":\"apps_forbidden\",\"identifiers\":[\"com.example.game\",\"com.example.casino\"]}"},
    {"mail", "{\"type\":\"apps_required\",\"identifiers\":[\"com.example.app1\"]}"},
    {"certs-30", "{\"type\":\"certificates_valid\",\"days\":30}"},
    {"certs-90", "{\"type\":\"certificates_valid\",\"days\":90}"},
    {"seen-7", "{\"type\":\"checked_in\",\"days\":7}"},
    {"roaming", "{\"type\":\"roaming\",\"allow_data_roaming\":false}"},
    {"camera-off", "{\"type\":\"restriction\",\"name\":\"allowCamera\",\"value\":false}"},
    {"force-pin", "{\"type\":\"restriction\",\"name\":\"forcePIN\",\"value\":true}"},
    {"baseline", "{\"all\":[{\"type\":\"passcode\"},{\"type\":\"encryption\"},{\"type\":\"os_version\",\"min\":\"17.0\"}]}"},
    {"sup-or-new", "{\"any\":[{\"type\":\"supervised\"},{\"type\":\"os_version\",\"min\":\"18.0\"}]}"},
    {"corp-apps", "{\"all\":[{\"type\":\"apps_required\",\"identifiers\":[\"com.example.app1\",\"com.example.app2\"]},{\"type\":\"profiles_installed\",\"identifiers\":[\"com.example.enroll\"]}]}"},
    {"nested", "{\"any\":[{\"all\":[{\"type\":\"supervised\"},{\"type\":\"passcode\"}]},{\"all\":[{\"type\":\"os_version\",\"min\":\"18.1\"},{\"type\":\"encryption\"}]}]}"},
    {"travel", "{\"all\":[{\"type\":\"roaming\"},{\"type\":\"checked_in\",\"days\":3}]}"},
    {"kiosk", "{\"all\":[{\"type\":\"supervised\"},{\"type\":\"restriction\",\"name\":\"allowAppInstallation\",\"value\":false}]}"},
};

static double seconds_of(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-compliance DSN init|run [runs]\n");
        return 2;
    }
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(argv[1], &s, &err) != STORE_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], err ? err : "?");
        free(err);
        return 1;
    }
    if (strcmp(argv[2], "init") == 0) { /* the schema only */
        store_close(s);
        return 0;
    }
    int64_t now = (int64_t)time(NULL);
    compliance_configure(7 * 86400);
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        struct store_compliance_policy p = {.name = (char *)policies[i][0], .enabled = 1,
                                            .rules = (char *)policies[i][1], .scope = "\"all\"",
                                            .actions = "[]"};
        int rc = store_compliance_policy_add(s, &p, now, NULL);
        if (rc != STORE_OK && rc != STORE_CONFLICT) {
            fprintf(stderr, "cannot add policy %s\n", policies[i][0]);
            return 1;
        }
    }
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    for (int r = 0; r < runs; r++) {
        struct compliance_run run;
        double t0 = seconds_of(CLOCK_MONOTONIC), c0 = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
        int rc = compliance_evaluate_fleet(s, now, &run);
        double t = seconds_of(CLOCK_MONOTONIC) - t0;
        double cpu = seconds_of(CLOCK_PROCESS_CPUTIME_ID) - c0;
        if (rc != STORE_OK) {
            fprintf(stderr, "evaluation failed: %d\n", rc);
            return 1;
        }
        printf("%s %.3f %.3f devices=%zu policies=%zu pairs=%zu noncompliant=%zu unknown=%zu "
               "transitions=%zu\n", r == 0 ? "first" : "steady", t, cpu, run.devices, run.policies,
               run.evaluated, run.noncompliant, run.unknown, run.transitions);
    }
    store_close(s);
    return 0;
}
