/* test_core.c: the core services over a real SQLite store: the identity
 * binding rules (core/identity.c), command preparation and enqueueing, and
 * the connect exchange's NotNow and expiry rules (core/queue.c) and the
 * check-in peek it starts with (store_checkin_peek), plus the check-in
 * services' event rows (core/enrollment.c), and ids_unique (util/ids.c),
 * which makes a request's device list distinct. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/enrollment.h"
#include "core/identity.h"
#include "core/queue.h"
#include "plist/pl.h"
#include "store/sql.h"
#include "store/store.h"
#include "store_fixture.h"
#include "util/ids.h"

#define FP_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define FP_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

struct fx {
    char dir[64];
    char dsn[256]; /* f->s's database: another handle opens it too */
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_core.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char *err = NULL;
    if (fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0 ||
        store_open(f->dsn, &f->s, &err) != STORE_OK)
        return -1;
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

static void enroll(struct store *s, const char *udid, const char *fp)
{
    struct store_enrollment e = {.id = (char *)udid, .udid = (char *)udid, .type = "Device",
                                 .cert_fp = (char *)fp};
    assert_int_equal(enrollment_authenticate(s, &e, 100), STORE_OK);
    e.token_hex = "00ff";
    e.push_magic = "magic";
    int first = 0;
    assert_int_equal(enrollment_token_update(s, &e, 101, &first), STORE_OK);
    assert_int_equal(first, 1);
}

static plist_t command(const char *type, const char *uuid)
{
    plist_t c = plist_new_dict();
    plist_t inner = plist_new_dict();
    plist_dict_set_item(inner, "RequestType", plist_new_string(type));
    plist_dict_set_item(c, "Command", inner);
    if (uuid)
        plist_dict_set_item(c, "CommandUUID", plist_new_string(uuid));
    return c;
}

static void test_identity_rules(void **state)
{
    struct fx *f = *state;
    int src = 0;
    /* nobody holds FP_A: Authenticate may bind it */
    assert_int_equal(identity_check_authenticate(f->s, "DEV1", FP_A, &src), IDENTITY_OK);
    enroll(f->s, "DEV1", FP_A);
    assert_int_equal(identity_check(f->s, "DEV1", FP_A, &src), IDENTITY_OK);
    /* another certificate for DEV1 */
    assert_int_equal(identity_check(f->s, "DEV1", FP_B, &src), IDENTITY_MISMATCH);
    /* FP_A reused for a second UDID */
    assert_int_equal(identity_check_authenticate(f->s, "DEV2", FP_A, &src), IDENTITY_IN_USE);
    /* the same device re-authenticating with its own certificate */
    assert_int_equal(identity_check_authenticate(f->s, "DEV1", FP_A, &src), IDENTITY_OK);
    /* unknown device */
    assert_int_equal(identity_check(f->s, "NOPE", FP_A, &src), IDENTITY_UNKNOWN);
    /* checked out: unknown from then on, and the certificate is free again */
    assert_int_equal(enrollment_checkout(f->s, "DEV1", 200), STORE_OK);
    assert_int_equal(identity_check(f->s, "DEV1", FP_A, &src), IDENTITY_UNKNOWN);
    assert_int_equal(identity_check_authenticate(f->s, "DEV2", FP_A, &src), IDENTITY_OK);
    /* re-enrollment with a new certificate rebinds */
    enroll(f->s, "DEV1", FP_B);
    assert_int_equal(identity_check(f->s, "DEV1", FP_B, &src), IDENTITY_OK);
    assert_int_equal(identity_check(f->s, "DEV1", FP_A, &src), IDENTITY_MISMATCH);
    assert_string_equal(identity_reason(IDENTITY_IN_USE), "certificate is bound to another enrollment");
}

static void test_command_prepare(void **state)
{
    (void)state;
    const char *err = NULL;
    plist_t c = command("DeviceInformation", NULL);
    assert_int_equal(queue_command_prepare(c, &err), 0);
    const char *uuid = pl_str(c, "CommandUUID");
    assert_non_null(uuid);
    assert_int_equal(strlen(uuid), 36); /* a fresh UUID was added */
    plist_free(c);

    c = command("ProfileList", "my-own-uuid");
    assert_int_equal(queue_command_prepare(c, &err), 0);
    assert_string_equal(pl_str(c, "CommandUUID"), "my-own-uuid");
    plist_free(c);

    c = plist_new_dict(); /* no Command */
    assert_int_equal(queue_command_prepare(c, &err), -1);
    assert_string_equal(err, "command has no Command dictionary");
    plist_free(c);

    c = command("", NULL); /* empty RequestType */
    assert_int_equal(queue_command_prepare(c, &err), -1);
    plist_free(c);

    c = command("X", NULL);
    plist_dict_set_item(c, "CommandUUID", plist_new_uint(5)); /* wrong type */
    assert_int_equal(queue_command_prepare(c, &err), -1);
    plist_free(c);

    plist_t arr = plist_new_array();
    assert_int_equal(queue_command_prepare(arr, &err), -1);
    plist_free(arr);
}

static void test_enqueue_results_per_device(void **state)
{
    struct fx *f = *state;
    enroll(f->s, "DEV1", FP_A);
    enroll(f->s, "DEV2", FP_B);
    assert_int_equal(enrollment_checkout(f->s, "DEV2", 150), STORE_OK);
    plist_t c = command("SecurityInfo", "U1");
    const char *err = NULL;
    assert_int_equal(queue_command_prepare(c, &err), 0);
    const char *ids[] = {"DEV1", "DEV2", "GHOST"};
    int per[3];
    struct queue_enqueued out;
    assert_int_equal(queue_enqueue(f->s, c, ids, 3, 300, &out, per), STORE_OK);
    assert_int_equal(per[0], STORE_OK);
    assert_int_equal(per[1], QUEUE_CHECKED_OUT);
    assert_int_equal(per[2], STORE_NOTFOUND);
    assert_int_equal(out.queued, 1);
    assert_string_equal(out.uuid, "U1");
    assert_string_equal(out.request_type, "SecurityInfo");
    /* the same UUID again is a conflict, not a second command */
    assert_int_equal(queue_enqueue(f->s, c, ids, 1, 301, &out, per), STORE_CONFLICT);
    plist_free(c);
}

/* Every id can take it: the whole list in one statement (ids that need
 * JSON escaping included), each queued once, the payload stored once. */
static void test_enqueue_fleet_in_bulk(void **state)
{
    struct fx *f = *state;
    const char *ids[] = {"DEV1", "DEV\"2\\", "DEV\t3"};
    enroll(f->s, ids[0], FP_A);
    enroll(f->s, ids[1], FP_B);
    enroll(f->s, ids[2], "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    plist_t c = command("SecurityInfo", "U2");
    const char *err = NULL;
    assert_int_equal(queue_command_prepare(c, &err), 0);
    int per[3] = {-1, -1, -1};
    struct queue_enqueued out;
    assert_int_equal(queue_enqueue(f->s, c, ids, 3, 300, &out, per), STORE_OK);
    assert_int_equal(out.queued, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(per[i], STORE_OK);
        struct store_queue_item *items = NULL;
        size_t n = 0;
        assert_int_equal(store_queue_list(f->s, ids[i], 10, &items, &n), STORE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(items[0].uuid, "U2");
        store_queue_items_free(items, n);
    }
    int64_t depth = 0;
    assert_int_equal(store_queue_depth(f->s, &depth), STORE_OK);
    assert_int_equal(depth, 3);
    plist_free(c);
}

/* A request's device list made distinct: first occurrences kept in order,
 * across a fleet (the hash set probes past collisions and grows with n). */
static void test_ids_unique(void **state)
{
    (void)state;
    const char *few[] = {"B", "A", "B", "C", "A", "", "C", ""};
    size_t n = 8;
    assert_int_equal(ids_unique(few, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(few[0], "B");
    assert_string_equal(few[1], "A");
    assert_string_equal(few[2], "C");
    assert_string_equal(few[3], "");
    enum { FLEET = 50000 };
    static char names[FLEET][24];
    static const char *ids[2 * FLEET];
    for (size_t i = 0; i < FLEET; i++) {
        snprintf(names[i], sizeof names[i], "00008120-%012zX", i);
        ids[i] = names[i];
        ids[FLEET + i] = names[FLEET - 1 - i]; /* each again, backwards */
    }
    n = 2 * FLEET;
    assert_int_equal(ids_unique(ids, &n), 0);
    assert_int_equal(n, FLEET);
    for (size_t i = 0; i < FLEET; i++)
        assert_ptr_equal(ids[i], names[i]);
}

/* Idle → command; NotNow → held back within the exchange; Idle → again. */
static void test_exchange_notnow(void **state)
{
    struct fx *f = *state;
    enroll(f->s, "DEV1", FP_A);
    const char *ids[] = {"DEV1"};
    int per[1];
    struct queue_enqueued out;
    const char *err = NULL;
    plist_t c1 = command("DeviceInformation", "C1"), c2 = command("ProfileList", "C2");
    assert_int_equal(queue_command_prepare(c1, &err), 0);
    assert_int_equal(queue_command_prepare(c2, &err), 0);
    assert_int_equal(queue_enqueue(f->s, c1, ids, 1, 10, &out, per), STORE_OK);
    assert_int_equal(queue_enqueue(f->s, c2, ids, 1, 11, &out, per), STORE_OK);
    plist_free(c1);
    plist_free(c2);

    struct store_command *next = NULL;
    int waiting = 0;
    assert_int_equal(store_queue_waiting(f->s, "DEV1", 1, &waiting), STORE_OK);
    assert_int_equal(waiting, 1);
    assert_int_equal(queue_exchange(f->s, "DEV1", "Idle", NULL, NULL, 0, 20, &next), STORE_OK);
    assert_non_null(next);
    assert_string_equal(next->uuid, "C1");
    /* the payload is the stored plist with its CommandUUID */
    const char *perr = NULL;
    plist_t p = pl_parse_dict(next->payload, next->payload_len, &perr);
    assert_non_null(p);
    assert_string_equal(pl_str(p, "CommandUUID"), "C1");
    plist_free(p);
    store_command_free(next);

    const uint8_t raw[] = "<plist><dict/></plist>";
    assert_int_equal(queue_exchange(f->s, "DEV1", "NotNow", "C1", raw, sizeof raw - 1, 21, &next), STORE_OK);
    assert_non_null(next);
    assert_string_equal(next->uuid, "C2"); /* C1 held back, C2 offered */
    store_command_free(next);
    assert_int_equal(queue_exchange(f->s, "DEV1", "Acknowledged", "C2", raw, sizeof raw - 1, 22, &next), STORE_OK);
    assert_null(next); /* only the NotNow'd C1 is left: not within this exchange */
    assert_int_equal(store_queue_waiting(f->s, "DEV1", 0, &waiting), STORE_OK);
    assert_int_equal(waiting, 0);
    assert_int_equal(store_queue_waiting(f->s, "DEV1", 1, &waiting), STORE_OK);
    assert_int_equal(waiting, 1);

    assert_int_equal(queue_exchange(f->s, "DEV1", "Idle", NULL, NULL, 0, 30, &next), STORE_OK);
    assert_non_null(next);
    assert_string_equal(next->uuid, "C1"); /* redelivered on the next Idle */
    store_command_free(next);
    assert_int_equal(queue_exchange(f->s, "DEV1", "Acknowledged", "C1", raw, sizeof raw - 1, 31, &next), STORE_OK);
    assert_null(next);
    assert_int_equal(store_queue_waiting(f->s, "DEV1", 1, &waiting), STORE_OK);
    assert_int_equal(waiting, 0);

    /* a report for a command this device never had: NOTFOUND, nothing served */
    assert_int_equal(queue_exchange(f->s, "DEV1", "Acknowledged", "ZZ", raw, sizeof raw - 1, 32, &next),
                     STORE_NOTFOUND);
    assert_null(next);
    assert_true(queue_status_valid("CommandFormatError"));
    assert_false(queue_status_valid("Done"));
    assert_false(queue_status_valid(NULL));
}

/* The status store_queue_list shows for one command of an enrollment. */
static void expect_status(struct store *s, const char *id, const char *uuid, const char *status)
{
    struct store_queue_item *it = NULL;
    size_t n = 0;
    assert_int_equal(store_queue_list(s, id, 0, &it, &n), STORE_OK);
    const char *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].uuid, uuid) == 0)
            found = it[i].status;
    assert_non_null(found);
    assert_string_equal(found, status);
    store_queue_items_free(it, n);
}

static void enqueue_with_deadline(struct store *s, const char *type, const char *uuid,
                                  int64_t now, int64_t expires_at)
{
    const char *ids[] = {"DEV1"}, *err = NULL;
    int per[1];
    struct queue_enqueued out;
    plist_t c = command(type, uuid);
    assert_int_equal(queue_command_prepare(c, &err), 0);
    assert_int_equal(queue_enqueue(s, c, ids, 1, now, &out, per), STORE_OK);
    plist_free(c);
    assert_int_equal(store_command_meta_set(s, uuid, expires_at, 0, NULL, NULL), STORE_OK);
}

/* A command past its deadline is never sent: the claim marks it Expired and
 * offers the next; one already sent is the device's and is sent again. */
static void test_exchange_expired(void **state)
{
    struct fx *f = *state;
    enroll(f->s, "DEV1", FP_A);
    enqueue_with_deadline(f->s, "DeviceInformation", "E1", 10, 15);
    enqueue_with_deadline(f->s, "ProfileList", "OK", 11, 0);
    enqueue_with_deadline(f->s, "SecurityInfo", "E2", 12, 15);
    enqueue_with_deadline(f->s, "CertificateList", "SENT", 13, 25);

    struct store_command *next = NULL;
    const uint8_t raw[] = "<plist><dict/></plist>";
    assert_int_equal(queue_exchange(f->s, "DEV1", "Idle", NULL, NULL, 0, 20, &next), STORE_OK);
    assert_non_null(next);
    assert_string_equal(next->uuid, "OK");
    assert_string_equal(next->request_type, "ProfileList");
    store_command_free(next);
    expect_status(f->s, "DEV1", "E1", "Expired");
    assert_int_equal(queue_exchange(f->s, "DEV1", "Acknowledged", "OK", raw, sizeof raw - 1, 21, &next),
                     STORE_OK);
    assert_non_null(next);
    assert_string_equal(next->uuid, "SENT"); /* E2 met and expired on the way */
    store_command_free(next);
    expect_status(f->s, "DEV1", "E2", "Expired");
    /* past its deadline now, but sent before it: offered again, not expired */
    assert_int_equal(queue_exchange(f->s, "DEV1", "Idle", NULL, NULL, 0, 30, &next), STORE_OK);
    assert_non_null(next);
    assert_string_equal(next->uuid, "SENT");
    store_command_free(next);
    assert_int_equal(queue_exchange(f->s, "DEV1", "Acknowledged", "SENT", raw, sizeof raw - 1, 31, &next),
                     STORE_OK);
    assert_null(next);
    expect_status(f->s, "DEV1", "SENT", "Acknowledged");
    expect_status(f->s, "DEV1", "E1", "Expired");
}

/* store_checkin_peek: what an Idle needs, in one read. */
static void test_checkin_peek(void **state)
{
    struct fx *f = *state;
    enroll(f->s, "DEV1", FP_A);
    struct store_checkin_peek pk;
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.status, ENROLLMENT_ENROLLED);
    assert_int_equal(pk.cert_bound, 1);
    assert_int_equal(pk.cert_revoked, 0);
    assert_int_equal(pk.waiting, 0);
    assert_int_equal(store_enrollment_touch(f->s, "DEV1", 500), STORE_OK);
    enqueue_with_deadline(f->s, "ProfileList", "C1", 400, 0);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.waiting, 1);
    assert_int_equal(pk.last_seen, 500);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 0, NULL, &pk), STORE_OK);
    assert_int_equal(pk.waiting, 0); /* not asked */
    /* another certificate, a user channel's own time (unknown: 0), a stranger */
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1:user", FP_B, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.cert_bound, 0);
    assert_int_equal(pk.last_seen, 0);
    assert_int_equal(pk.waiting, 0);
    assert_int_equal(store_checkin_peek(f->s, "NOBODY", "NOBODY", FP_A, 1, NULL, &pk), STORE_NOTFOUND);
    /* a revoked certificate of ours */
    struct store_cert c = {.serial_hex = "0a", .subject = "CN=DEV1", .fingerprint = FP_A,
                           .status = "issued", .created_at = 100};
    assert_int_equal(store_cert_add(f->s, &c), STORE_OK);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.cert_revoked, 0);
    assert_int_equal(store_cert_revoke(f->s, "0a", "test", 600), STORE_OK);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.cert_revoked, 1);
    /* checked out */
    assert_int_equal(store_enrollment_checkout(f->s, "DEV1", 700), STORE_OK);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.status, ENROLLMENT_CHECKED_OUT);
}

/* For a report, the peek also says whether any compliance policy is
 * enabled; the checked report (store_queue_report_next_checked) does the
 * identity check's common case itself and writes nothing when it fails. */
static void test_checked_report(void **state)
{
    struct fx *f = *state;
    enroll(f->s, "DEV1", FP_A);
    enqueue_with_deadline(f->s, "DeviceInformation", "C1", 400, 0);
    enqueue_with_deadline(f->s, "ProfileList", "C2", 401, 0);
    struct store_command *next = NULL, *rep = NULL;
    assert_int_equal(store_queue_next(f->s, "DEV1", 0, 402, &next), STORE_OK);
    assert_string_equal(next->uuid, "C1");
    store_command_free(next);
    assert_int_equal(store_enrollment_touch(f->s, "DEV1", 500), STORE_OK);
    const uint8_t raw[] = "<plist><dict/></plist>";
    /* another certificate: nothing written */
    struct store_report_check chk = {.binding_id = "DEV1", .cert_fp = FP_B};
    assert_int_equal(store_queue_report_next_checked(f->s, &chk, "DEV1", "C1", "Acknowledged",
                                                     raw, sizeof raw - 1, 503, &rep, &next),
                     STORE_NOTFOUND);
    assert_int_equal(chk.ok, 0);
    assert_null(rep);
    assert_null(next);
    expect_status(f->s, "DEV1", "C1", "Pending");
    /* unknown binding */
    chk = (struct store_report_check){.binding_id = "NOBODY", .cert_fp = FP_A};
    assert_int_equal(store_queue_report_next_checked(f->s, &chk, "DEV1", "C1", "Acknowledged",
                                                     raw, sizeof raw - 1, 503, &rep, &next),
                     STORE_NOTFOUND);
    assert_int_equal(chk.ok, 0);
    /* the bound certificate: stored, the next claimed, last seen and policies read */
    chk = (struct store_report_check){.binding_id = "DEV1", .cert_fp = FP_A};
    assert_int_equal(store_queue_report_next_checked(f->s, &chk, "DEV1", "C1", "Acknowledged",
                                                     raw, sizeof raw - 1, 504, &rep, &next),
                     STORE_OK);
    assert_int_equal(chk.ok, 1);
    assert_int_equal(chk.last_seen, 500);
    assert_int_equal(chk.policies, 0);
    assert_string_equal(rep->request_type, "DeviceInformation");
    assert_string_equal(next->uuid, "C2");
    store_command_free(rep);
    store_command_free(next);
    expect_status(f->s, "DEV1", "C1", "Acknowledged");
    /* an enabled policy counts; a disabled one does not */
    struct store_compliance_policy p = {.name = "p", .enabled = 0, .rules = "[]", .scope = "{}",
                                        .actions = "[]"};
    int64_t id = 0;
    assert_int_equal(store_compliance_policy_add(f->s, &p, 100, &id), STORE_OK);
    struct store_checkin_peek pk;
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 0, "C2", &pk), STORE_OK);
    assert_int_equal(pk.policies, 0);
    p.id = id;
    p.enabled = 1;
    assert_int_equal(store_compliance_policy_update(f->s, &p, 101), STORE_OK);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 0, "C2", &pk), STORE_OK);
    assert_int_equal(pk.policies, 1);
    assert_int_equal(store_checkin_peek(f->s, "DEV1", "DEV1", FP_A, 1, NULL, &pk), STORE_OK);
    assert_int_equal(pk.policies, 0); /* asked for reports only */
    chk = (struct store_report_check){.binding_id = "DEV1", .cert_fp = FP_A};
    assert_int_equal(store_queue_report_next_checked(f->s, &chk, "DEV1", "C2", "Error", raw,
                                                     sizeof raw - 1, 505, &rep, &next),
                     STORE_OK);
    assert_int_equal(chk.policies, 1);
    store_command_free(rep);
    store_command_free(next);
    /* revoked: nothing written */
    enqueue_with_deadline(f->s, "SecurityInfo", "C3", 506, 0);
    struct store_cert c = {.serial_hex = "0a", .subject = "CN=DEV1", .fingerprint = FP_A,
                           .status = "issued", .created_at = 100};
    assert_int_equal(store_cert_add(f->s, &c), STORE_OK);
    assert_int_equal(store_cert_revoke(f->s, "0a", "test", 600), STORE_OK);
    chk = (struct store_report_check){.binding_id = "DEV1", .cert_fp = FP_A};
    assert_int_equal(store_queue_report_next_checked(f->s, &chk, "DEV1", "C3", "Acknowledged",
                                                     raw, sizeof raw - 1, 601, &rep, &next),
                     STORE_NOTFOUND);
    assert_int_equal(chk.ok, 0);
    assert_null(next);
    expect_status(f->s, "DEV1", "C3", "Pending");
}

/* DEV1's checked report of uuid (certificate fp, follow types follow),
 * chk filled anew. */
static int checked_report(struct store *s, struct store_report_check *chk, const char *fp,
                          const char *follow, const char *uuid, const char *status, int64_t now,
                          struct store_command **rep, struct store_command **next)
{
    const uint8_t raw[] = "<plist><dict/></plist>";
    *chk = (struct store_report_check){.binding_id = "DEV1", .cert_fp = fp, .follow_types = follow};
    return store_queue_report_next_checked(s, chk, "DEV1", uuid, status, raw, sizeof raw - 1, now,
                                           rep, next);
}

/* A checked report with follow types: a command of one of them is not
 * stored (chk.follow, nothing written, nothing claimed); any other is, and
 * outside a transaction on the backend that says reports stand alone. */
static void test_report_follow_types(void **state)
{
    struct fx *f = *state;
    enroll(f->s, "DEV1", FP_A);
    enqueue_with_deadline(f->s, "DeviceLock", "C1", 400, 0);
    enqueue_with_deadline(f->s, "RemoveApplication", "C2", 401, 0);
    enqueue_with_deadline(f->s, "ProfileList", "C3", 402, 0);
    struct store_command *next = NULL, *rep = NULL;
    struct store_report_check chk;
    assert_int_equal(store_queue_next(f->s, "DEV1", 0, 403, &next), STORE_OK);
    store_command_free(next);
    const char *follow = "DeviceInformation,DeviceLock,EraseDevice";
    assert_int_equal(
        checked_report(f->s, &chk, FP_A, follow, "C1", "Acknowledged", 500, &rep, &next),
        STORE_NOTFOUND);
    /* PostgreSQL knew C1's type from delivering it and ran nothing, so
     * nothing was checked either (test_report_known_type) */
    assert_int_equal(chk.ok, sql_dialect(f->s) == STORE_DIALECT_POSTGRES ? 0 : 1);
    assert_int_equal(chk.follow, 1);
    assert_null(rep);
    assert_null(next);
    expect_status(f->s, "DEV1", "C1", "Pending"); /* sent, not answered */
    /* a prefix of a listed type is not that type */
    assert_int_equal(checked_report(f->s, &chk, FP_A, "Device,DeviceLockX", "C1", "Acknowledged",
                                    501, &rep, &next),
                     STORE_OK);
    assert_int_equal(chk.follow, 0);
    assert_string_equal(rep->request_type, "DeviceLock");
    assert_string_equal(next->uuid, "C2");
    store_command_free(rep);
    store_command_free(next);
    expect_status(f->s, "DEV1", "C1", "Acknowledged");
    /* not a follow type: stored without the caller's transaction, and the
     * store says whether that is its cheap path */
    assert_int_equal(store_reports_standalone(f->s), sql_dialect(f->s) == STORE_DIALECT_POSTGRES);
    assert_int_equal(
        checked_report(f->s, &chk, FP_A, follow, "C2", "Acknowledged", 502, &rep, &next),
        STORE_OK);
    assert_int_equal(chk.follow, 0);
    assert_string_equal(rep->request_type, "RemoveApplication");
    assert_string_equal(next->uuid, "C3");
    store_command_free(rep);
    store_command_free(next);
    expect_status(f->s, "DEV1", "C2", "Acknowledged");
    /* an empty list follows nothing */
    assert_int_equal(checked_report(f->s, &chk, FP_A, "", "C3", "NotNow", 503, &rep, &next),
                     STORE_OK);
    assert_int_equal(chk.follow, 0);
    store_command_free(rep);
    store_command_free(next);
    expect_status(f->s, "DEV1", "C3", "NotNow");
}

/* DEV1's next command, uuid, claimed by another handle on the same
 * database (another worker or node): f->s has not seen it delivered. */
static void deliver_elsewhere(struct fx *f, const char *uuid, int64_t now)
{
    struct store *other = NULL;
    char *err = NULL;
    struct store_command *next = NULL;
    assert_int_equal(store_open(f->dsn, &other, &err), STORE_OK);
    assert_int_equal(store_queue_next(other, "DEV1", 0, now, &next), STORE_OK);
    assert_string_equal(next->uuid, uuid);
    store_command_free(next);
    store_close(other);
}

/* A checked report of a command this handle delivered: its type is known
 * without a read (store/cmd_types.c). A follow type's report runs nothing
 * on PostgreSQL (the caller's transaction takes over); any other runs the
 * statement that does not look the command up, whose payload then does not
 * come back. A command another handle delivered is looked up as before. */
static void test_report_known_type(void **state)
{
    struct fx *f = *state;
    int pg = sql_dialect(f->s) == STORE_DIALECT_POSTGRES;
    enroll(f->s, "DEV1", FP_A);
    enqueue_with_deadline(f->s, "RemoveApplication", "K1", 400, 0);
    enqueue_with_deadline(f->s, "DeviceLock", "K2", 401, 0);
    enqueue_with_deadline(f->s, "RemoveApplication", "K3", 402, 0);
    deliver_elsewhere(f, "K1", 403);
    struct store_command *next = NULL, *rep = NULL;
    struct store_report_check chk;
    const char *follow = "DeviceInformation,DeviceLock";
    /* K1: delivered by the other handle, so looked up, payload and all */
    assert_int_equal(
        checked_report(f->s, &chk, FP_A, follow, "K1", "Acknowledged", 500, &rep, &next),
        STORE_OK);
    assert_int_equal(chk.ok, 1);
    assert_string_equal(rep->request_type, "RemoveApplication");
    assert_non_null(rep->payload);
    assert_string_equal(next->uuid, "K2");
    store_command_free(rep);
    store_command_free(next);
    expect_status(f->s, "DEV1", "K1", "Acknowledged");
    /* K2: delivered here, of a follow type: not stored */
    assert_int_equal(
        checked_report(f->s, &chk, FP_A, follow, "K2", "Acknowledged", 501, &rep, &next),
        STORE_NOTFOUND);
    assert_int_equal(chk.follow, 1);
    assert_int_equal(chk.ok, pg ? 0 : 1);
    assert_null(rep);
    assert_null(next);
    expect_status(f->s, "DEV1", "K2", "Pending");
    /* the caller's way for it: the report in a transaction */
    const uint8_t raw[] = "<plist><dict/></plist>";
    assert_int_equal(store_begin(f->s), STORE_OK);
    assert_int_equal(store_queue_report_next(f->s, "DEV1", "K2", "Acknowledged", raw,
                                             sizeof raw - 1, 502, &rep, &next),
                     STORE_OK);
    assert_string_equal(rep->request_type, "DeviceLock");
    assert_string_equal(next->uuid, "K3");
    assert_int_equal(store_commit(f->s), STORE_OK);
    store_command_free(rep);
    store_command_free(next);
    /* K3: delivered here, not a follow type: stored with what is known of it */
    assert_int_equal(checked_report(f->s, &chk, FP_A, follow, "K3", "Error", 503, &rep, &next),
                     STORE_OK);
    assert_int_equal(chk.ok, 1);
    assert_int_equal(chk.follow, 0);
    assert_string_equal(rep->uuid, "K3");
    assert_string_equal(rep->request_type, "RemoveApplication");
    if (pg)
        assert_null(rep->payload); /* not looked up */
    assert_null(next);
    store_command_free(rep);
    expect_status(f->s, "DEV1", "K3", "Error");
    /* a wrong certificate still stores nothing, type known or not */
    enqueue_with_deadline(f->s, "RemoveApplication", "K4", 504, 0);
    assert_int_equal(store_queue_next(f->s, "DEV1", 0, 505, &next), STORE_OK);
    store_command_free(next);
    assert_int_equal(
        checked_report(f->s, &chk, FP_B, follow, "K4", "Acknowledged", 506, &rep, &next),
        STORE_NOTFOUND);
    assert_int_equal(chk.ok, 0);
    assert_null(rep);
    assert_null(next);
    expect_status(f->s, "DEV1", "K4", "Pending");
}

/* Opens a transaction and stores DEV1's Acknowledged of uuid with the
 * device row d. */
static void ack_with_row(struct store *s, const struct store_inv_device *d, const char *uuid,
                         int64_t now, struct store_command **rep, struct store_command **next)
{
    const uint8_t raw[] = "<plist><dict/></plist>";
    struct store_report_check chk = {.binding_id = "DEV1", .cert_fp = FP_A, .device = d};
    assert_int_equal(store_begin(s), STORE_OK);
    assert_int_equal(store_queue_report_next_checked(s, &chk, "DEV1", uuid, "Acknowledged", raw,
                                                     sizeof raw - 1, now, rep, next),
                     STORE_OK);
}

/* The OSVersion store_inventory_device_set_and_read returns. */
static void expect_os_version(struct store *s, const struct store_inv_device *d, int64_t now,
                              const char *want)
{
    struct store_inv_value *got = NULL;
    size_t n = 0;
    int reported = -1;
    assert_int_equal(store_inventory_device_set_and_read(s, "DEV1", d, now, &got, &n, &reported),
                     STORE_OK);
    const char *os = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(got[i].name, "OSVersion") == 0)
            os = got[i].value;
    assert_non_null(os);
    assert_string_equal(os, want);
    store_inv_values_free(got, n);
}

/* A DeviceInformation answer's row with the checked report: on PostgreSQL
 * the report's statement writes it and reads the device's values ahead, so
 * the handler's store_inventory_device_set_and_read runs no statement: it
 * returns what was stored before the report, even once values changed
 * since, and only once. A report of another command writes no row.
 * Elsewhere the row is the handler's to write. */
static void test_report_device_read_ahead(void **state)
{
    struct fx *f = *state;
    int pg = sql_dialect(f->s) == STORE_DIALECT_POSTGRES;
    enroll(f->s, "DEV1", FP_A);
    enqueue_with_deadline(f->s, "ProfileList", "C0", 399, 0);
    enqueue_with_deadline(f->s, "DeviceInformation", "C1", 400, 0);
    struct store_inv_value v = {(char *)"OSVersion", (char *)"string", (char *)"17.1"};
    assert_int_equal(store_inventory_values_put(f->s, "DEV1", "device", &v, 1, 1, 300), STORE_OK);
    struct store_command *next = NULL, *rep = NULL;
    assert_int_equal(store_queue_next(f->s, "DEV1", 0, 401, &next), STORE_OK);
    assert_string_equal(next->uuid, "C0");
    store_command_free(next);
    struct store_inv_device d = {.os_version = "17.2", .os_num = 170200, .supervised = 1,
                                 .battery_pct = 80, .capacity_mb = -1, .available_mb = -1};
    int sup = -1;
    /* a ProfileList answer: no row */
    ack_with_row(f->s, &d, "C0", 500, &rep, &next);
    assert_string_equal(next->uuid, "C1");
    store_command_free(rep);
    store_command_free(next);
    assert_int_equal(store_inventory_supervised(f->s, "DEV1", &sup), STORE_NOTFOUND);
    assert_int_equal(store_commit(f->s), STORE_OK);
    /* the DeviceInformation answer */
    ack_with_row(f->s, &d, "C1", 501, &rep, &next);
    assert_string_equal(rep->request_type, "DeviceInformation");
    if (pg)
        assert_null(rep->payload); /* delivered here: its type remembered, not read */
    assert_null(next);
    store_command_free(rep);
    assert_int_equal(store_inventory_supervised(f->s, "DEV1", &sup),
                     pg ? STORE_OK : STORE_NOTFOUND);
    v.value = (char *)"17.3"; /* changed after the report's statement */
    assert_int_equal(store_inventory_values_put(f->s, "DEV1", "device", &v, 1, 0, 501), STORE_OK);
    expect_os_version(f->s, &d, 501, pg ? "17.1" : "17.3");
    expect_os_version(f->s, &d, 501, "17.3"); /* read ahead once: this call reads */
    assert_int_equal(store_commit(f->s), STORE_OK);
    assert_int_equal(store_inventory_supervised(f->s, "DEV1", &sup), STORE_OK);
    assert_int_equal(sup, 1);
    /* one another handle delivered: looked up, payload and all */
    enqueue_with_deadline(f->s, "DeviceInformation", "C2", 502, 0);
    deliver_elsewhere(f, "C2", 503);
    d.supervised = 0;
    ack_with_row(f->s, &d, "C2", 504, &rep, &next);
    assert_string_equal(rep->request_type, "DeviceInformation");
    assert_non_null(rep->payload);
    assert_null(next);
    store_command_free(rep);
    expect_os_version(f->s, &d, 504, "17.3");
    assert_int_equal(store_commit(f->s), STORE_OK);
    assert_int_equal(store_inventory_supervised(f->s, "DEV1", &sup), STORE_OK);
    assert_int_equal(sup, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity_rules, setup, teardown),
        cmocka_unit_test(test_command_prepare),
        cmocka_unit_test(test_ids_unique),
        cmocka_unit_test_setup_teardown(test_enqueue_results_per_device, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_fleet_in_bulk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_notnow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checked_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_follow_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_known_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_device_read_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkin_peek, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
