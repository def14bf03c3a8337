/* test_compliance_store.c: core/compliance.c on a real store (SQLite, or
 * PostgreSQL with STEWARD_TEST_DSN): fleet evaluation writes a state only
 * for a device that is not compliant; actions wait for the grace period,
 * fire once per episode and again in the next one; remediation ends the
 * episode; stale answers make states unknown; a wipe action stored without
 * wipe_enabled never queues EraseDevice; lost mode removes managed profiles
 * (not the MDM profile, not personal ones) and managed apps, replaces a
 * waiting DeviceLock and is audited with who; remove_profiles/remove_apps
 * take only the listed managed ones and push wakes the device; the fleet
 * run and inventory-triggered evaluations racing on two connections fire
 * each action once; two connections queueing DeviceLock at once leave one. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/compliance.h"
#include "core/enrollment.h"
#include "core/inventory.h"
#include "core/queue.h"
#include "store/store.h"
#include "store_fixture.h"

struct fx {
    char dir[64];
    char dsn[256];
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_compliance_store.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char *err = NULL;
    if (fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0 ||
        store_open(f->dsn, &f->s, &err) != STORE_OK)
        return -1;
    compliance_configure(7 * 86400);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static void enroll(struct store *s, const char *udid)
{
    struct store_enrollment e = {.id = (char *)udid, .udid = (char *)udid, .type = "Device"};
    assert_int_equal(enrollment_authenticate(s, &e, 100), STORE_OK);
    e.token_hex = "00ff";
    e.push_magic = "magic";
    int first = 0;
    assert_int_equal(enrollment_token_update(s, &e, 101, &first), STORE_OK);
}

static int64_t add_policy(struct store *s, const char *name, const char *rules,
                          const char *actions, int64_t grace, int wipe)
{
    struct store_compliance_policy p = {.name = (char *)name, .enabled = 1, .rules = (char *)rules,
                                        .scope = "\"all\"", .actions = (char *)actions,
                                        .grace_seconds = grace, .wipe_enabled = wipe};
    int64_t id = 0;
    assert_int_equal(store_compliance_policy_add(s, &p, 100, &id), STORE_OK);
    return id;
}

/* Commands of a RequestType still waiting for a device; uuid (may be
 * NULL) gets the last one's CommandUUID. */
static size_t waiting(struct store *s, const char *id, const char *type, char uuid[128])
{
    struct store_queue_item *it = NULL;
    size_t n = 0, count = 0;
    assert_int_equal(store_queue_list(s, id, 1000, &it, &n), STORE_OK);
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].request_type, type) == 0 &&
            (strcmp(it[i].status, "Pending") == 0 || strcmp(it[i].status, "NotNow") == 0)) {
            count++;
            if (uuid)
                snprintf(uuid, 128, "%s", it[i].uuid);
        }
    store_queue_items_free(it, n);
    return count;
}

/* The device checks in and acknowledges everything waiting for it. */
static void answer_all(struct store *s, const char *id, int64_t now)
{
    static const uint8_t ack[] = "<plist><dict/></plist>";
    struct store_command *next = NULL;
    assert_int_equal(queue_exchange(s, id, "Idle", NULL, NULL, 0, now, &next), STORE_OK);
    while (next) {
        char uuid[128];
        snprintf(uuid, sizeof uuid, "%s", next->uuid);
        store_command_free(next);
        next = NULL;
        assert_int_equal(queue_exchange(s, id, "Acknowledged", uuid, ack, sizeof ack - 1, now,
                                        &next), STORE_OK);
    }
}

/* Queued commands of a RequestType for a device. */
static size_t queued(struct store *s, const char *id, const char *type)
{
    struct store_queue_item *it = NULL;
    size_t n = 0, count = 0;
    assert_int_equal(store_queue_list(s, id, 1000, &it, &n), STORE_OK);
    for (size_t i = 0; i < n; i++)
        count += strcmp(it[i].request_type, type) == 0;
    store_queue_items_free(it, n);
    return count;
}

struct find_state {
    int64_t policy;
    char state[16];
    int rows;
};

static int on_state(void *ctx, const struct store_compliance_state *st)
{
    struct find_state *f = ctx;
    if (st->policy_id == f->policy) {
        snprintf(f->state, sizeof f->state, "%s", st->state);
        f->rows++;
    }
    return 0;
}

/* The stored state of (device, policy): "" when there is no row. */
static const char *state_of(struct store *s, const char *id, int64_t policy,
                            struct find_state *f)
{
    memset(f, 0, sizeof *f);
    f->policy = policy;
    assert_int_equal(store_compliance_states_scan(s, id, on_state, f), STORE_OK);
    return f->state;
}

static void evaluate(struct store *s, int64_t now, struct compliance_run *run)
{
    assert_int_equal(compliance_evaluate_fleet(s, now, run), STORE_OK);
}

static size_t history_count(struct store *s, const char *id, const char *kind,
                            const char *action)
{
    struct store_compliance_event *e = NULL;
    size_t n = 0, count = 0;
    assert_int_equal(store_compliance_history_get(s, id, 1000, &e, &n), STORE_OK);
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].kind, kind) == 0 && (!action || (e[i].action && !strcmp(e[i].action, action))))
            count++;
    store_compliance_events_free(e, n);
    return count;
}

static void test_grace_once_per_episode(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct find_state fs;
    struct compliance_run run;
    enroll(s, "dev-good");
    enroll(s, "dev-bad");
    assert_int_equal(store_inventory_security_set(s, "dev-good", 1, 1, 3, 1000), STORE_OK);
    assert_int_equal(store_inventory_security_set(s, "dev-bad", 0, 0, 3, 1000), STORE_OK);
    int64_t p = add_policy(s, "passcode", "{\"type\":\"passcode\"}",
                           "[{\"type\":\"notify\"},{\"type\":\"lock\",\"message\":\"m\"},"
                           "{\"type\":\"requery\",\"after_seconds\":50}]",
                           100, 0);
    evaluate(s, 1000, &run);
    assert_int_equal(run.devices, 2);
    assert_int_equal(run.noncompliant, 1);
    assert_int_equal(run.transitions, 1);
    assert_string_equal(state_of(s, "dev-good", p, &fs), ""); /* compliant: no row */
    assert_string_equal(state_of(s, "dev-bad", p, &fs), "noncompliant");
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 0); /* grace */
    evaluate(s, 1099, &run);
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 0);
    evaluate(s, 1100, &run);
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 1);
    assert_int_equal(queued(s, "dev-bad", "SecurityInfo"), 0); /* its own delay */
    assert_int_equal(history_count(s, "dev-bad", "action", "notify"), 1);
    evaluate(s, 1150, &run);
    assert_int_equal(queued(s, "dev-bad", "SecurityInfo"), 1);
    evaluate(s, 1200, &run);
    evaluate(s, 1300, &run);
    assert_int_equal(run.actions, 0);
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 1); /* once per episode */
    assert_int_equal(history_count(s, "dev-bad", "action", NULL), 3);
    assert_int_equal(queued(s, "dev-good", "DeviceLock"), 0);
    /* remediated: compliant, the episode ends */
    assert_int_equal(store_inventory_security_set(s, "dev-bad", 1, 1, -1, 1400), STORE_OK);
    evaluate(s, 1400, &run);
    assert_string_equal(state_of(s, "dev-bad", p, &fs), "compliant");
    assert_int_equal(run.transitions, 1);
    /* a new episode: the actions fire again, once, after the grace period;
     * while the first DeviceLock still waits, the second is not queued */
    assert_int_equal(store_inventory_security_set(s, "dev-bad", 0, -1, -1, 1500), STORE_OK);
    evaluate(s, 1500, &run);
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 1);
    evaluate(s, 1600, &run);
    evaluate(s, 1700, &run);
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 1);
    assert_int_equal(history_count(s, "dev-bad", "action", "lock"), 2);
    assert_int_equal(history_count(s, "dev-bad", "transition", NULL), 3);
    struct store_compliance_event *e = NULL;
    size_t ne = 0;
    assert_int_equal(store_compliance_history_get(s, "dev-bad", 10, &e, &ne), STORE_OK);
    int seen = 0;
    for (size_t i = 0; i < ne; i++)
        if (e[i].action && strcmp(e[i].action, "lock") == 0 && !seen++)
            assert_string_equal(e[i].detail,
                                "not queued again: a DeviceLock already waits for the device");
    store_compliance_events_free(e, ne);
    /* the device answers; remediated, out again: a third episode locks again */
    answer_all(s, "dev-bad", 1750);
    assert_int_equal(store_inventory_security_set(s, "dev-bad", 1, 1, -1, 1800), STORE_OK);
    evaluate(s, 1800, &run);
    assert_int_equal(store_inventory_security_set(s, "dev-bad", 0, -1, -1, 1900), STORE_OK);
    evaluate(s, 1900, &run);
    evaluate(s, 2000, &run);
    assert_int_equal(queued(s, "dev-bad", "DeviceLock"), 2);
    assert_int_equal(history_count(s, "dev-bad", "transition", NULL), 5);
    /* stale answers: unknown, not compliant */
    evaluate(s, 1000 + 8 * 86400, &run);
    assert_string_equal(state_of(s, "dev-good", p, &fs), "unknown");
    assert_int_equal(run.unknown, 2);
    /* the device view */
    json_t *view = NULL;
    assert_int_equal(compliance_device_report(s, "dev-bad", 10, &view), STORE_OK);
    assert_string_equal(json_string_value(json_object_get(view, "state")), "unknown");
    assert_int_equal(json_array_size(json_object_get(view, "history")), 10);
    json_decref(view);
    assert_int_equal(compliance_device_report(s, "nope", 10, &view), STORE_NOTFOUND);
}

static void test_wipe_needs_opt_in(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct compliance_run run;
    enroll(s, "dev-1");
    assert_int_equal(store_inventory_security_set(s, "dev-1", 0, 0, 3, 1000), STORE_OK);
    /* stored without the opt-in (the API refuses this; the engine checks again) */
    add_policy(s, "sneaky", "{\"type\":\"passcode\"}", "[{\"type\":\"wipe\"}]", 0, 0);
    evaluate(s, 1000, &run);
    assert_int_equal(queued(s, "dev-1", "EraseDevice"), 0);
    assert_int_equal(history_count(s, "dev-1", "action", "wipe"), 1); /* recorded as refused */
    int64_t events = -1;
    assert_int_equal(fixture_raw(f->dsn, "SELECT count(*) FROM events WHERE type = "
                                         "'security_action'", &events), 0);
    assert_int_equal(events, 0); /* nothing was sent, nothing audited as sent */
    add_policy(s, "opted-in", "{\"type\":\"passcode\"}", "[{\"type\":\"wipe\"}]", 0, 1);
    evaluate(s, 1001, &run);
    assert_int_equal(queued(s, "dev-1", "EraseDevice"), 1);
    assert_int_equal(fixture_raw(f->dsn, "SELECT count(*) FROM events WHERE type = "
                                         "'security_action' AND detail LIKE 'EraseDevice queued "
                                         "by compliance policy opted-in%'", &events), 0);
    assert_int_equal(events, 1);
}

static struct store_inv_cell text(const char *t)
{
    return (struct store_inv_cell){.text = t};
}

static struct store_inv_cell num(int64_t v)
{
    return (struct store_inv_cell){.num = v, .is_num = 1};
}

/* A device's profiles (the MDM profile, a managed Wi-Fi and a managed VPN
 * profile, a personal VPN profile) and its managed apps (com.corp.app, and
 * com.corp.notes unless napps is 1). */
static void corp_inventory(struct store *s, const char *id, size_t napps)
{
    struct store_inv_cell profiles[4 * 12];
    const char *ids[4] = {"com.corp.mdm", "com.corp.wifi", "me.personal.vpn", "com.corp.vpn"};
    const char *types[4] = {"com.apple.mdm,com.apple.security.scep", "com.apple.wifi.managed",
                            "com.apple.vpn.managed", "com.apple.vpn.managed"};
    size_t nprofiles = napps == 1 ? 3 : 4;
    for (size_t r = 0; r < nprofiles; r++) {
        struct store_inv_cell *row = &profiles[r * 12];
        row[0] = text(ids[r]);
        for (int c = 1; c < 12; c++)
            row[c] = text(NULL);
        row[2] = num(1);
        row[6] = num(r != 2); /* the personal one is not managed */
        row[7] = row[8] = row[9] = num(0);
        row[10] = text(types[r]);
    }
    assert_int_equal(inventory_put_list(s, id, STORE_INV_PROFILES, profiles, nprofiles, 1, 1000),
                     STORE_OK);
    struct store_inv_cell apps[2 * 9] = {
        text("com.corp.app"),   text("Managed"), num(0), num(1), num(0), num(0), num(1), text(NULL), num(1000),
        text("com.corp.notes"), text("Managed"), num(0), num(1), num(0), num(0), num(1), text(NULL), num(1000),
    };
    assert_int_equal(inventory_put_list(s, id, STORE_INV_MANAGED_APPS, apps, napps, 1, 1000),
                     STORE_OK);
}

/* The Identifier of every queued command of a RequestType, sorted, joined
 * by spaces, into out. */
static const char *identifiers(struct store *s, const char *id, const char *type, char *out,
                               size_t n)
{
    struct store_queue_item *it = NULL;
    size_t count = 0;
    assert_int_equal(store_queue_list(s, id, 1000, &it, &count), STORE_OK);
    char *names[16];
    size_t k = 0;
    for (size_t i = 0; i < count && k < 16; i++) {
        if (strcmp(it[i].request_type, type) != 0)
            continue;
        uint8_t *payload = NULL;
        size_t len = 0;
        assert_int_equal(store_command_payload(s, it[i].uuid, &payload, &len), STORE_OK);
        const char *key = strstr((const char *)payload, "<key>Identifier</key>");
        assert_non_null(key);
        const char *v = strstr(key, "<string>") + 8;
        names[k++] = strndup(v, (size_t)(strstr(v, "</string>") - v));
        free(payload);
    }
    store_queue_items_free(it, count);
    for (size_t a = 0; a < k; a++) /* sort */
        for (size_t b = a + 1; b < k; b++)
            if (strcmp(names[a], names[b]) > 0) {
                char *t = names[a];
                names[a] = names[b];
                names[b] = t;
            }
    out[0] = '\0';
    for (size_t a = 0; a < k; a++) {
        snprintf(out + strlen(out), n - strlen(out), "%s%s", a ? " " : "", names[a]);
        free(names[a]);
    }
    return out;
}

static size_t woken;
static void count_wakes(void *arg, const char *const *ids, size_t n)
{
    (void)arg;
    (void)ids;
    woken += n;
}

/* The corporate-data actions of a policy: remove_profiles and remove_apps
 * remove only the listed ones that are managed (never the MDM profile nor a
 * personal profile, even when listed), push wakes the device, every action
 * is in the history with what it did and on the device's view. */
static void test_remove_and_push_actions(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct compliance_run run;
    char buf[256];
    enroll(s, "dev-1");
    corp_inventory(s, "dev-1", 2);
    assert_int_equal(store_inventory_security_set(s, "dev-1", 0, 0, 3, 1000), STORE_OK);
    int64_t p = add_policy(s, "corporate-data", "{\"type\":\"passcode\"}",
                           "[{\"type\":\"remove_profiles\",\"identifiers\":[\"com.corp.wifi\","
                           "\"me.personal.vpn\",\"com.corp.mdm\"]},"
                           "{\"type\":\"remove_apps\",\"identifiers\":[\"com.corp.app\","
                           "\"com.not.installed\"]},{\"type\":\"push\",\"after_seconds\":10}]",
                           60, 0);
    woken = 0;
    queue_set_waker(count_wakes, NULL);
    evaluate(s, 1000, &run);
    assert_int_equal(run.actions, 0); /* grace */
    evaluate(s, 1060, &run);
    assert_int_equal(run.actions, 2);
    assert_string_equal(identifiers(s, "dev-1", "RemoveProfile", buf, sizeof buf),
                        "com.corp.wifi");
    assert_string_equal(identifiers(s, "dev-1", "RemoveApplication", buf, sizeof buf),
                        "com.corp.app");
    size_t before = woken; /* the removals woke the device to fetch them */
    evaluate(s, 1070, &run);
    assert_int_equal(run.actions, 1);
    assert_int_equal(woken, before + 1);
    evaluate(s, 1080, &run);
    assert_int_equal(run.actions, 0);
    assert_int_equal(queued(s, "dev-1", "RemoveProfile"), 1);
    assert_int_equal(queued(s, "dev-1", "RemoveApplication"), 1);
    queue_set_waker(NULL, NULL);
    struct store_compliance_event *e = NULL;
    size_t ne = 0;
    assert_int_equal(store_compliance_history_get(s, "dev-1", 10, &e, &ne), STORE_OK);
    size_t seen = 0;
    for (size_t i = 0; i < ne; i++) {
        if (!e[i].action)
            continue;
        seen++;
        if (strcmp(e[i].action, "remove_profiles") == 0)
            assert_string_equal(e[i].detail, "RemoveProfile queued: com.corp.wifi");
        else if (strcmp(e[i].action, "remove_apps") == 0)
            assert_string_equal(e[i].detail, "RemoveApplication queued: com.corp.app");
        else
            assert_string_equal(e[i].detail, "push requested");
        assert_string_equal(e[i].observed, "PasscodePresent=false");
    }
    store_compliance_events_free(e, ne);
    assert_int_equal(seen, 3);
    json_t *view = NULL;
    assert_int_equal(compliance_device_report(s, "dev-1", 10, &view), STORE_OK);
    json_t *pol = json_array_get(json_object_get(view, "policies"), 0);
    assert_int_equal(json_integer_value(json_object_get(pol, "policy_id")), p);
    json_t *fired = json_object_get(pol, "actions_fired");
    assert_int_equal(json_object_size(fired), 3);
    assert_string_equal(json_string_value(json_object_get(fired, "push")), "1970-01-01T00:17:50Z");
    json_decref(view);
}

static void test_lost_mode(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    enroll(s, "dev-1");
    corp_inventory(s, "dev-1", 1);
    /* a policy's DeviceLock (no message) waits: lost mode's own replaces it */
    assert_int_equal(store_inventory_security_set(s, "dev-1", 0, 0, 3, 1000), STORE_OK);
    add_policy(s, "passcode", "{\"type\":\"passcode\"}", "[{\"type\":\"lock\"}]", 0, 0);
    struct compliance_run run;
    evaluate(s, 1000, &run);
    char policy_lock[128] = "", lost_lock[128] = "";
    assert_int_equal(waiting(s, "dev-1", "DeviceLock", policy_lock), 1);
    struct compliance_lost_result r;
    assert_int_equal(compliance_device_lost(s, "dev-1", "Lost", "+1 555", "alice", 1000, &r),
                     STORE_OK);
    assert_int_equal(r.profiles_removed, 1);
    assert_int_equal(r.apps_removed, 1);
    assert_true(r.lock_uuid[0] != '\0');
    assert_int_equal(waiting(s, "dev-1", "DeviceLock", lost_lock), 1);
    assert_string_equal(lost_lock, r.lock_uuid); /* the policy's was canceled */
    assert_string_not_equal(lost_lock, policy_lock);
    assert_int_equal(queued(s, "dev-1", "RemoveProfile"), 1);
    assert_int_equal(queued(s, "dev-1", "RemoveApplication"), 1);
    assert_int_equal(queued(s, "dev-1", "EraseDevice"), 0);
    struct store_compliance_device_info info;
    assert_int_equal(store_compliance_device_info(s, "dev-1", &info), STORE_OK);
    assert_int_equal(info.lost_at, 1000);
    assert_string_equal(info.lost_message, "Lost");
    free(info.lost_message);
    free(info.lost_phone);
    assert_int_equal(compliance_device_lost(s, "nope", NULL, NULL, "alice", 1000, &r),
                     STORE_NOTFOUND);
    /* audited: who did it, in the history and as the device's security event */
    struct store_compliance_event *e = NULL;
    size_t ne = 0;
    assert_int_equal(store_compliance_history_get(s, "dev-1", 1, &e, &ne), STORE_OK);
    assert_int_equal(ne, 1);
    assert_string_equal(e[0].kind, "lost");
    assert_non_null(strstr(e[0].detail, "by alice"));
    assert_non_null(strstr(e[0].detail, "RemoveProfile: com.corp.wifi"));
    store_compliance_events_free(e, ne);
    int64_t events = 0;
    assert_int_equal(fixture_raw(f->dsn, "SELECT count(*) FROM events WHERE enrollment_id = "
                                         "'dev-1' AND type = 'security_action' AND detail LIKE "
                                         "'lost mode%by alice'", &events), 0);
    assert_int_equal(events, 1);
    /* the wipe: a separate step, once while one waits */
    char uuid[128];
    assert_int_equal(compliance_device_wipe(s, "dev-1", "bob", 1001, uuid), STORE_OK);
    assert_int_equal(queued(s, "dev-1", "EraseDevice"), 1);
    char again[128];
    assert_int_equal(compliance_device_wipe(s, "dev-1", "bob", 1002, again),
                     QUEUE_ALREADY_PENDING);
    assert_int_equal(queued(s, "dev-1", "EraseDevice"), 1);
    assert_int_equal(fixture_raw(f->dsn, "SELECT count(*) FROM events WHERE enrollment_id = "
                                         "'dev-1' AND type = 'security_action' AND detail LIKE "
                                         "'EraseDevice queued%by bob'", &events), 0);
    assert_int_equal(events, 1);
}

/* ---- the two evaluation paths racing ------------------------------------------ */

#define RACE_ROUNDS 8
#define RACE_DEVICES 60 /* per round */

struct racer {
    const char *dsn;
    pthread_barrier_t *gate;
    int rc; /* first failure */
};

static void race_id(char *buf, size_t n, int round, int i)
{
    snprintf(buf, n, "race-%d-%03d", round, i);
}

/* The inventory path on its own connection: each device's answer arrives
 * at check-in and evaluates that device in the exchange's transaction. Per
 * round it starts with the fleet run (the gate) and goes through the
 * round's devices from the last, so both paths meet in the middle. */
static void *inventory_path(void *arg)
{
    struct racer *r = arg;
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(r->dsn, &s, &err) != STORE_OK) {
        free(err);
        r->rc = STORE_ERR;
    }
    for (int round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_wait(r->gate);
        for (int i = RACE_DEVICES - 1; s && i >= 0 && r->rc == STORE_OK; i--) {
            char id[32];
            race_id(id, sizeof id, round, i);
            int rc = store_begin(s);
            if (rc == STORE_OK) {
                compliance_on_inventory(s, id, "SecurityInfo", 1000 + round);
                rc = store_commit(s);
            }
            if (rc != STORE_OK)
                r->rc = rc;
        }
        pthread_barrier_wait(r->gate);
    }
    store_close(s);
    return NULL;
}

/* The scheduled fleet evaluation and the inventory-triggered one run at the
 * same time on two connections (two nodes on one PostgreSQL are the same
 * case): every device still gets each action of its episode exactly once
 * (one DeviceLock queued, one lock and one notify in its history, one
 * transition). Each round, a fresh group of devices falls out of policy. */
static void test_race_fleet_and_inventory(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char id[32];
    for (int round = 0; round < RACE_ROUNDS; round++)
        for (int i = 0; i < RACE_DEVICES; i++) {
            race_id(id, sizeof id, round, i);
            enroll(s, id);
            assert_int_equal(store_inventory_security_set(s, id, 1, 1, 3, 1000), STORE_OK);
        }
    add_policy(s, "passcode", "{\"type\":\"passcode\"}",
               "[{\"type\":\"notify\"},{\"type\":\"lock\",\"message\":\"m\"}]", 0, 0);
    pthread_barrier_t gate;
    assert_int_equal(pthread_barrier_init(&gate, NULL, 2), 0);
    struct racer r = {.dsn = f->dsn, .gate = &gate, .rc = STORE_OK};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, inventory_path, &r), 0);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        assert_int_equal(store_begin(s), STORE_OK);
        for (int i = 0; i < RACE_DEVICES; i++) {
            race_id(id, sizeof id, round, i);
            assert_int_equal(store_inventory_security_set(s, id, 0, 0, -1, 1000 + round),
                             STORE_OK);
        }
        assert_int_equal(store_commit(s), STORE_OK);
        pthread_barrier_wait(&gate);
        struct compliance_run run;
        evaluate(s, 1000 + round, &run);
        pthread_barrier_wait(&gate);
    }
    pthread_join(t, NULL);
    pthread_barrier_destroy(&gate);
    assert_int_equal(r.rc, STORE_OK);
    size_t wrong = 0;
    for (int round = 0; round < RACE_ROUNDS; round++)
        for (int i = 0; i < RACE_DEVICES; i++) {
            race_id(id, sizeof id, round, i);
            size_t locks = history_count(s, id, "action", "lock");
            size_t notes = history_count(s, id, "action", "notify");
            size_t moves = history_count(s, id, "transition", NULL);
            size_t cmds = queued(s, id, "DeviceLock");
            if ((locks != 1 || notes != 1 || moves != 1 || cmds != 1) && wrong++ < 5)
                fprintf(stderr, "%s: lock actions %zu, notify %zu, transitions %zu, "
                        "DeviceLock queued %zu\n", id, locks, notes, moves, cmds);
        }
    assert_int_equal(wrong, 0);
}

/* ---- one destructive command at a time, whoever queues it ------------------------ */

#define LOCK_DEVICES 80

struct locker {
    const char *dsn;
    pthread_barrier_t *gate;
    int rc;
    size_t queued;
};

/* Queues a DeviceLock for every lock device, one transaction each, as an
 * operator's raw command or a compliance action would. */
static void *lock_all(void *arg)
{
    struct locker *l = arg;
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(l->dsn, &s, &err) != STORE_OK) {
        free(err);
        l->rc = STORE_ERR;
    }
    pthread_barrier_wait(l->gate);
    for (int i = 0; s && i < LOCK_DEVICES && l->rc == STORE_OK; i++) {
        char id[32];
        snprintf(id, sizeof id, "lock-%03d", i);
        plist_t root = plist_new_dict();
        plist_t cmd = plist_new_dict();
        plist_dict_set_item(cmd, "RequestType", plist_new_string("DeviceLock"));
        plist_dict_set_item(root, "Command", cmd);
        const char *why = NULL;
        const char *ids[1] = {id};
        int per = STORE_OK, rc = queue_command_prepare(root, &why) == 0 ? store_begin(s) : STORE_ERR;
        struct queue_enqueued out;
        if (rc == STORE_OK)
            rc = queue_enqueue(s, root, ids, 1, 1000, &out, &per);
        if (rc == STORE_OK)
            rc = store_commit(s);
        else
            (void)store_rollback(s);
        plist_free(root);
        if (rc != STORE_OK)
            l->rc = rc;
        else if (per == STORE_OK)
            l->queued++;
        else if (per != QUEUE_ALREADY_PENDING)
            l->rc = per;
    }
    store_close(s);
    return NULL;
}

/* Two connections (two nodes, on PostgreSQL) queue a DeviceLock for the
 * same devices at the same moment: each device gets exactly one. */
static void test_one_lock_when_racing(void **state)
{
    struct fx *f = *state;
    char id[32];
    for (int i = 0; i < LOCK_DEVICES; i++) {
        snprintf(id, sizeof id, "lock-%03d", i);
        enroll(f->s, id);
    }
    pthread_barrier_t gate;
    assert_int_equal(pthread_barrier_init(&gate, NULL, 2), 0);
    struct locker a = {.dsn = f->dsn, .gate = &gate}, b = a;
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, lock_all, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, lock_all, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&gate);
    assert_int_equal(a.rc, STORE_OK);
    assert_int_equal(b.rc, STORE_OK);
    assert_int_equal(a.queued + b.queued, LOCK_DEVICES);
    size_t wrong = 0;
    for (int i = 0; i < LOCK_DEVICES; i++) {
        snprintf(id, sizeof id, "lock-%03d", i);
        size_t n = waiting(f->s, id, "DeviceLock", NULL);
        if (n != 1 && wrong++ < 5)
            fprintf(stderr, "%s: %zu DeviceLock waiting\n", id, n);
    }
    assert_int_equal(wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grace_once_per_episode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wipe_needs_opt_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_and_push_actions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race_fleet_and_inventory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_lock_when_racing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
