/* test_catalog.c: catalog_check (core/catalog_check.c): what a typed
 * command is refused for (unknown key, wrong type, missing key, a value
 * outside the allowed ones, app source rules, unknown query or Settings
 * item) and what it asks of the device (rights from queries and Settings
 * items, supervision, App Store). Per-device refusals are in
 * tests/integration/test_commands.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/catalog.h"

static plist_t cmd_of(const char *type)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "RequestType", plist_new_string(type));
    return d;
}

/* Checks d as its RequestType; returns the error code or "ok". Frees d. */
static const char *check(plist_t d, struct cat_needs *needs)
{
    static struct cat_error err;
    char *type = NULL;
    plist_get_string_val(plist_dict_get_item(d, "RequestType"), &type);
    const struct cat_command *c = catalog_find(type);
    free(type);
    assert_non_null(c);
    struct cat_needs local;
    int rc = catalog_check(c, d, needs ? needs : &local, &err);
    plist_free(d);
    return rc == 0 ? "ok" : err.code;
}

static void test_device_lock(void **state)
{
    (void)state;
    struct cat_needs needs;
    plist_t d = cmd_of("DeviceLock");
    plist_dict_set_item(d, "Message", plist_new_string("Call IT"));
    plist_dict_set_item(d, "PhoneNumber", plist_new_string("+1 555 0100"));
    assert_string_equal(check(d, &needs), "ok");
    assert_int_equal(needs.rights, RIGHT_LOCK_PASSCODE);
    assert_int_equal(needs.supervised, 0);

    d = cmd_of("DeviceLock");
    plist_dict_set_item(d, "Message", plist_new_uint(5));
    assert_string_equal(check(d, NULL), "wrong_type");

    d = cmd_of("DeviceLock");
    plist_dict_set_item(d, "Mesage", plist_new_string("typo"));
    assert_string_equal(check(d, NULL), "unknown_key");
}

static void test_required_and_values(void **state)
{
    (void)state;
    assert_string_equal(check(cmd_of("RemoveApplication"), NULL), "missing_key");
    assert_string_equal(check(cmd_of("ClearPasscode"), NULL), "missing_key");
    plist_t d = cmd_of("InstallApplication");
    plist_dict_set_item(d, "iTunesStoreID", plist_new_uint(361309726));
    plist_dict_set_item(d, "ManagementFlags", plist_new_uint(2));
    assert_string_equal(check(d, NULL), "bad_value");
    d = cmd_of("EraseDevice");
    plist_t rts = plist_new_dict();
    plist_dict_set_item(rts, "WiFiProfileData", plist_new_data("x", 1));
    plist_dict_set_item(d, "ReturnToService", rts);
    assert_string_equal(check(d, NULL), "missing_key"); /* ReturnToService.Enabled */
}

static void test_install_application_sources(void **state)
{
    (void)state;
    struct cat_needs needs;
    assert_string_equal(check(cmd_of("InstallApplication"), NULL), "missing_key");
    plist_t d = cmd_of("InstallApplication");
    plist_dict_set_item(d, "iTunesStoreID", plist_new_uint(1));
    plist_dict_set_item(d, "ManifestURL", plist_new_string("https://x/m.plist"));
    assert_string_equal(check(d, NULL), "conflicting_keys");
    d = cmd_of("InstallApplication");
    plist_dict_set_item(d, "ManifestURL", plist_new_string("http://x/m.plist"));
    assert_string_equal(check(d, NULL), "bad_value");
    d = cmd_of("InstallApplication");
    plist_dict_set_item(d, "ManifestURL", plist_new_string("https://x/m.plist"));
    assert_string_equal(check(d, &needs), "ok");
    assert_int_equal(needs.app_store, 0);
    d = cmd_of("InstallApplication");
    plist_dict_set_item(d, "Identifier", plist_new_string("com.example.app"));
    assert_string_equal(check(d, &needs), "ok");
    assert_int_equal(needs.app_store, 1);
    assert_int_equal(needs.rights, RIGHT_APPS);
}

static void test_device_information_rights(void **state)
{
    (void)state;
    struct cat_needs needs;
    plist_t d = cmd_of("DeviceInformation");
    plist_t q = plist_new_array();
    plist_array_append_item(q, plist_new_string("OSVersion"));
    plist_array_append_item(q, plist_new_string("ICCID"));
    plist_dict_set_item(d, "Queries", q);
    assert_string_equal(check(d, &needs), "ok");
    assert_int_equal(needs.rights, RIGHT_QUERY_DEVICE | RIGHT_QUERY_NETWORK);

    d = cmd_of("DeviceInformation");
    q = plist_new_array();
    plist_array_append_item(q, plist_new_string("OSVersoin"));
    plist_dict_set_item(d, "Queries", q);
    assert_string_equal(check(d, NULL), "unknown_query");

    d = cmd_of("DeviceInformation");
    q = plist_new_array();
    plist_array_append_item(q, plist_new_uint(3));
    plist_dict_set_item(d, "Queries", q);
    assert_string_equal(check(d, NULL), "wrong_type");
}

static plist_t setting(const char *item)
{
    plist_t s = plist_new_dict();
    plist_dict_set_item(s, "Item", plist_new_string(item));
    return s;
}

static void test_settings(void **state)
{
    (void)state;
    struct cat_needs needs;
    plist_t d = cmd_of("Settings");
    plist_t arr = plist_new_array();
    plist_t s = setting("DataRoaming");
    plist_dict_set_item(s, "Enabled", plist_new_bool(0));
    plist_array_append_item(arr, s);
    plist_dict_set_item(d, "Settings", arr);
    assert_string_equal(check(d, &needs), "ok");
    assert_int_equal(needs.rights, RIGHT_SETTINGS | RIGHT_QUERY_NETWORK);
    assert_int_equal(needs.supervised, 0);

    d = cmd_of("Settings");
    arr = plist_new_array();
    s = setting("DeviceName");
    plist_dict_set_item(s, "DeviceName", plist_new_string("Kiosk 4"));
    plist_array_append_item(arr, s);
    plist_dict_set_item(d, "Settings", arr);
    assert_string_equal(check(d, &needs), "ok");
    assert_int_equal(needs.supervised, 1);

    d = cmd_of("Settings");
    arr = plist_new_array();
    plist_array_append_item(arr, setting("VoiceRoaming")); /* no Enabled */
    plist_dict_set_item(d, "Settings", arr);
    assert_string_equal(check(d, NULL), "missing_key");

    d = cmd_of("Settings");
    arr = plist_new_array();
    plist_array_append_item(arr, setting("Roaming"));
    plist_dict_set_item(d, "Settings", arr);
    assert_string_equal(check(d, NULL), "unknown_setting");

    d = cmd_of("Settings");
    plist_dict_set_item(d, "Settings", plist_new_array());
    assert_string_equal(check(d, NULL), "missing_key");
}

static void test_names(void **state)
{
    (void)state;
    assert_true(catalog_name_eq("phone_number", "PhoneNumber"));
    assert_true(catalog_name_eq("itunes_store_id", "iTunesStoreID"));
    assert_true(catalog_name_eq("data_roaming", "DataRoaming"));
    assert_false(catalog_name_eq("phone", "PhoneNumber"));
    assert_non_null(catalog_find("EraseDevice"));
    assert_null(catalog_find("RestartDevice"));
    assert_true(catalog_find("EraseDevice")->flags & CAT_CONFIRM);
    assert_true(catalog_find("ClearPasscode")->flags & CAT_UNLOCK_TOKEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_lock),
        cmocka_unit_test(test_required_and_values),
        cmocka_unit_test(test_install_application_sources),
        cmocka_unit_test(test_device_information_rights),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
