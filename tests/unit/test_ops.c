/* test_ops.c: the operators area below the HTTP layer: role names and order,
 * which commands need admin (raw and typed), webhook event filters, the HMAC signature a
 * receiver checks (against a value computed independently with Python's
 * hmac), retry backoff, and store_ops.h on a real database: admin users,
 * the audit log's filters and paging, and the delivery queue's
 * lease (a claimed delivery is not claimed again until its lease ends), and
 * the dashboard's compliance figures (each device once, by its worst state). On
 * SQLite, or on PostgreSQL when STEWARD_TEST_DSN says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "core/enrollment.h"
#include "core/events.h"
#include "store/store.h"
#include "store_fixture.h"


static int setup(void **state)
{
    return store_test_setup(state, "test_ops");
}

static int teardown(void **state)
{
    return store_test_teardown(state);
}

static void test_roles(void **state)
{
    (void)state;
    assert_int_equal(api_role_from_name("viewer"), API_ROLE_VIEWER);
    assert_int_equal(api_role_from_name("operator"), API_ROLE_OPERATOR);
    assert_int_equal(api_role_from_name("admin"), API_ROLE_ADMIN);
    assert_int_equal(api_role_from_name("Admin"), API_ROLE_NONE);
    assert_int_equal(api_role_from_name(NULL), API_ROLE_NONE);
    assert_true(API_ROLE_VIEWER < API_ROLE_OPERATOR && API_ROLE_OPERATOR < API_ROLE_ADMIN);
    assert_string_equal(api_role_name(API_ROLE_OPERATOR), "operator");
}

static plist_t command(const char *type)
{
    plist_t c = plist_new_dict(), inner = plist_new_dict();
    plist_dict_set_item(inner, "RequestType", plist_new_string(type));
    plist_dict_set_item(c, "Command", inner);
    return c;
}

static void test_admin_only_commands(void **state)
{
    (void)state;
    const char *admin[] = {"EraseDevice", "ClearPasscode", "DeleteUser"};
    const char *operator[] = {"DeviceInformation", "DeviceLock", "InstallProfile", "Settings"};
    for (size_t i = 0; i < 3; i++) {
        plist_t c = command(admin[i]);
        assert_true(api_command_needs_admin(c));
        plist_free(c);
    }
    for (size_t i = 0; i < 4; i++) {
        plist_t c = command(operator[i]);
        assert_false(api_command_needs_admin(c));
        plist_free(c);
    }
}

static void test_admin_only_request_types(void **state)
{
    (void)state;
    assert_true(api_request_type_needs_admin("EraseDevice"));
    assert_true(api_request_type_needs_admin("ClearPasscode"));
    assert_true(api_request_type_needs_admin("ClearRestrictionsPassword"));
    assert_false(api_request_type_needs_admin("DeviceLock"));
    assert_false(api_request_type_needs_admin("erasedevice"));
    assert_false(api_request_type_needs_admin(NULL));
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

static int64_t policy(struct store *s, const char *name, int enabled)
{
    struct store_compliance_policy p = {.name = (char *)name, .enabled = enabled,
                                        .rules = "{\"type\":\"passcode\"}", .scope = "\"all\"",
                                        .actions = "[]"};
    int64_t id = 0;
    assert_int_equal(store_compliance_policy_add(s, &p, 100, &id), STORE_OK);
    return id;
}

static void put_state(struct store *s, const char *id, int64_t pid, const char *state)
{
    struct store_compliance_state st = {.enrollment_id = id, .policy_id = pid, .state = state,
                                        .rule = "passcode", .since = 200, .evaluated_at = 200};
    /* Replaced outright: claim writes a new row only where none is left. */
    assert_int_equal(store_compliance_state_delete(s, id, pid), STORE_OK);
    assert_int_equal(store_compliance_state_claim(s, NULL, &st), STORE_OK);
}

/* The dashboard's compliance figures: devices by their worst state under
 * the enabled policies, each device once. */
static void test_compliance_stats(void **state)
{
    struct store_test *f = *state;
    struct store_ops_compliance c;
    assert_int_equal(store_ops_compliance_stats(f->s, &c), STORE_OK);
    assert_int_equal(c.policies, 0);
    assert_int_equal(c.noncompliant, 0);
    enroll(f->s, "A");
    enroll(f->s, "B");
    enroll(f->s, "C");
    int64_t p1 = policy(f->s, "one", 1), p2 = policy(f->s, "two", 1), off = policy(f->s, "off", 0);
    put_state(f->s, "A", p1, "noncompliant");
    put_state(f->s, "A", p2, "noncompliant"); /* still one device */
    put_state(f->s, "B", p1, "unknown");
    put_state(f->s, "B", p2, "compliant");
    put_state(f->s, "C", off, "noncompliant"); /* a disabled policy does not count */
    assert_int_equal(store_ops_compliance_stats(f->s, &c), STORE_OK);
    assert_int_equal(c.policies, 2);
    assert_int_equal(c.noncompliant, 1);
    assert_int_equal(c.unknown, 1);
    put_state(f->s, "B", p2, "noncompliant"); /* worse than unknown */
    assert_int_equal(store_ops_compliance_stats(f->s, &c), STORE_OK);
    assert_int_equal(c.noncompliant, 2);
    assert_int_equal(c.unknown, 0);
}

static void test_filters(void **state)
{
    (void)state;
    assert_true(events_filter_match("*", "device.enrolled"));
    assert_true(events_filter_match("device.enrolled", "device.enrolled"));
    assert_true(events_filter_match("mdm.*, device.enrolled", "device.enrolled"));
    assert_true(events_filter_match("mdm.*", "mdm.TokenUpdate"));
    assert_false(events_filter_match("mdm.*", "mdmx.TokenUpdate"));
    assert_false(events_filter_match("device.enrolled", "device.enrolledx"));
    assert_false(events_filter_match("device.enrolledx", "device.enrolled"));
    assert_false(events_filter_match("", "device.enrolled"));
    assert_false(events_filter_match("command.completed", "command.failed"));
}

static void test_signature(void **state)
{
    (void)state;
    char sig[160];
    const char body[] = "{\"topic\":\"x\"}";
    assert_int_equal(events_sign("0123456789abcdef", 1700000000, body, strlen(body), sig, sizeof sig), 0);
    /* python3: hmac.new(b'0123456789abcdef', b'1700000000.{"topic":"x"}', sha256).hexdigest() */
    assert_string_equal(sig, "t=1700000000,v1="
                             "9fa4614f00d5aee0b1411c2e56a6ddce9cf46436156fa58ae3f30aafe70ce6bb");
    char other[160];
    assert_int_equal(events_sign("0123456789abcdeX", 1700000000, body, strlen(body), other, sizeof other), 0);
    assert_string_not_equal(sig, other);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(events_backoff(5, 1), 5);
    assert_int_equal(events_backoff(5, 2), 10);
    assert_int_equal(events_backoff(5, 4), 40);
    assert_int_equal(events_backoff(5, 40), 3600);
}

static void test_admin_users(void **state)
{
    struct store_test *f = *state;
    assert_int_equal(store_admin_user_add(f->s, "ann", "$argon2id$x", "operator", 100), STORE_OK);
    assert_int_equal(store_admin_user_add(f->s, "ann", "$argon2id$y", "admin", 100), STORE_CONFLICT);
    assert_int_equal(store_admin_user_update(f->s, "ann", NULL, "admin"), STORE_OK);
    assert_int_equal(store_admin_user_signin_ok(f->s, "ann", 1200), STORE_OK);
    struct store_admin_user u;
    assert_int_equal(store_admin_user_get(f->s, "ann", &u), STORE_OK);
    assert_string_equal(u.role, "admin");
    assert_string_equal(u.password_hash, "$argon2id$x"); /* kept when not given */
    assert_int_equal(u.last_login_at, 1200);
    store_admin_user_clear(&u);
    assert_int_equal(store_admin_user_update(f->s, "bob", "h", NULL), STORE_NOTFOUND);
    assert_int_equal(store_admin_user_delete(f->s, "ann"), STORE_OK);
    assert_int_equal(store_admin_user_get(f->s, "ann", &u), STORE_NOTFOUND);
}

static void test_audit(void **state)
{
    struct store_test *f = *state;
    const char *actors[] = {"key:admin", "user:ann", "key:admin", "anonymous"};
    const int statuses[] = {200, 403, 201, 401};
    for (int i = 0; i < 4; i++) {
        struct store_audit a = {.at = 1000 + i, .actor = (char *)actors[i], .method = "POST",
                                .path = "/api/v1/commands", .action = "POST /api/v1/commands",
                                .target = i == 2 ? "dev-42" : NULL, .status = statuses[i],
                                .remote_addr = "10.0.0.1", .request_id = "r"};
        assert_int_equal(store_audit_add(f->s, &a), STORE_OK);
    }
    struct store_audit *list = NULL;
    size_t n = 0;
    struct store_audit_filter all = {0};
    assert_int_equal(store_audit_list(f->s, &all, &list, &n), STORE_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].actor, "anonymous"); /* newest first */
    store_audit_free(list, n);
    struct store_audit_filter by_actor = {.actor = "key:admin"};
    assert_int_equal(store_audit_list(f->s, &by_actor, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_audit_free(list, n);
    struct store_audit_filter failed = {.min_status = 400};
    assert_int_equal(store_audit_list(f->s, &failed, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_audit_free(list, n);
    struct store_audit_filter target = {.target = "dev-4"};
    assert_int_equal(store_audit_list(f->s, &target, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].target, "dev-42");
    store_audit_free(list, n);
    struct store_audit_filter window = {.since = 1001, .until = 1003, .limit = 1, .offset = 1};
    assert_int_equal(store_audit_list(f->s, &window, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].at, 1001);
    store_audit_free(list, n);
}

static void test_delivery_lease(void **state)
{
    struct store_test *f = *state;
    struct store_webhook h = {.url = "http://127.0.0.1:9/", .secret = "s3cret-s3cret-s3", .events = "*",
                              .enabled = 1};
    int64_t hid = 0, did = 0;
    assert_int_equal(store_webhook_add(f->s, &h, 100, &hid), STORE_OK);
    assert_int_equal(store_delivery_add(f->s, hid, "e1", "device.enrolled", "{}", 100, &did), STORE_OK);
    struct store_delivery *list = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_claim(f->s, 100, 30, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].url, "http://127.0.0.1:9/");
    store_deliveries_free(list, n);
    /* leased: not claimed again before the lease ends */
    assert_int_equal(store_delivery_claim(f->s, 110, 30, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_delivery_claim(f->s, 131, 30, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_deliveries_free(list, n);
    assert_int_equal(store_delivery_result(f->s, did, "pending", 1, 200, 500, "receiver answered 500", 131), STORE_OK);
    assert_int_equal(store_delivery_claim(f->s, 150, 30, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* a disabled webhook's deliveries wait */
    struct store_webhook off = {.enabled = 0};
    assert_int_equal(store_webhook_update(f->s, hid, &off), STORE_OK);
    assert_int_equal(store_delivery_claim(f->s, 300, 30, 10, &list, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_delivery_list(f->s, hid, "pending", 10, 0, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].attempts, 1);
    assert_int_equal(list[0].last_http_status, 500);
    store_deliveries_free(list, n);
    assert_int_equal(store_webhook_delete(f->s, hid), STORE_OK);
    assert_int_equal(store_delivery_list(f->s, hid, NULL, 10, 0, &list, &n), STORE_OK);
    assert_int_equal(n, 0); /* deleted with their webhook */
    free(list);
}

static void test_delivery_prune(void **state)
{
    struct store_test *f = *state;
    struct store_webhook h = {.url = "http://127.0.0.1:9/", .secret = "s3cret-s3cret-s3", .events = "*",
                              .enabled = 1};
    int64_t hid = 0, done = 0, waiting = 0, deleted = -1;
    assert_int_equal(store_webhook_add(f->s, &h, 100, &hid), STORE_OK);
    assert_int_equal(store_delivery_add(f->s, hid, "e1", "x", "{}", 100, &done), STORE_OK);
    assert_int_equal(store_delivery_add(f->s, hid, "e2", "x", "{}", 100, &waiting), STORE_OK);
    assert_int_equal(store_delivery_result(f->s, done, "delivered", 1, 0, 200, NULL, 101), STORE_OK);
    assert_int_equal(store_delivery_prune(f->s, 100, &deleted), STORE_OK);
    assert_int_equal(deleted, 0); /* not older than the cut-off */
    assert_int_equal(store_delivery_prune(f->s, 200, &deleted), STORE_OK);
    assert_int_equal(deleted, 1); /* the pending one stays, however old */
    struct store_delivery *list = NULL;
    size_t n = 0;
    assert_int_equal(store_delivery_list(f->s, hid, NULL, 10, 0, &list, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, waiting);
    store_deliveries_free(list, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_admin_only_commands),
        cmocka_unit_test(test_admin_only_request_types),
        cmocka_unit_test_setup_teardown(test_compliance_stats, setup, teardown),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test_setup_teardown(test_admin_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivery_prune, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
