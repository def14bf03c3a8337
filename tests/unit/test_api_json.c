/* test_api_json.c: the JSON <-> plist mapping of docs/api.md (api/json_plist.c):
 * round trips of every type through XML and binary plists, $data and $date,
 * negative integers, the depth limit, refused input, and the device view
 * (no secrets, RFC 3339 times). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "api/api.h"

/* JSON -> plist -> XML text -> plist -> JSON. */
static json_t *round_trip_xml(json_t *in)
{
    char err[160] = "";
    plist_t p = json_to_plist(in, err, sizeof err);
    assert_non_null(p);
    char *xml = NULL;
    uint32_t len = 0;
    plist_to_xml(p, &xml, &len);
    plist_free(p);
    assert_non_null(xml);
    plist_t back = NULL;
    plist_from_xml(xml, len, &back);
    free(xml);
    assert_non_null(back);
    json_t *out = plist_to_json(back);
    plist_free(back);
    return out;
}

static json_t *round_trip_bin(json_t *in)
{
    char err[160] = "";
    plist_t p = json_to_plist(in, err, sizeof err);
    assert_non_null(p);
    char *bin = NULL;
    uint32_t len = 0;
    plist_to_bin(p, &bin, &len);
    plist_free(p);
    assert_non_null(bin);
    plist_t back = NULL;
    plist_from_bin(bin, len, &back);
    free(bin);
    assert_non_null(back);
    json_t *out = plist_to_json(back);
    plist_free(back);
    return out;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static void assert_json_equal(json_t *a, json_t *b)
{
    if (!json_equal(a, b)) {
        char *ta = json_dumps(a, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *tb = json_dumps(b, JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("JSON differs:\n  %s\n  %s", ta ? ta : "(null)", tb ? tb : "(null)");
    }
}

static void test_round_trip_all_types(void **state)
{
    (void)state;
    json_t *in = load("{\"RequestType\": \"InstallProfile\", \"s\": \"caf\\u00e9 \\u2603 \\ud83d\\ude00\","
                      " \"empty\": \"\", \"t\": true, \"f\": false, \"i\": 42, \"zero\": 0,"
                      " \"neg\": -5, \"min\": -9223372036854775808, \"max\": 9223372036854775807,"
                      " \"r\": 1.5, \"negr\": -0.25, \"arr\": [1, \"two\", [3, {\"four\": 4}], []],"
                      " \"obj\": {\"nested\": {\"deeper\": {}}},"
                      " \"Payload\": {\"$data\": \"AAEC/w==\"}, \"nodata\": {\"$data\": \"\"},"
                      " \"when\": {\"$date\": \"2026-11-28T13:44:42Z\"},"
                      " \"before2001\": {\"$date\": \"1999-06-01T08:00:00Z\"},"
                      " \"notdata\": {\"$data\": \"AA==\", \"other\": 1}}");
    json_t *x = round_trip_xml(in);
    assert_non_null(x);
    assert_json_equal(in, x);
    json_t *b = round_trip_bin(in);
    assert_non_null(b);
    assert_json_equal(in, b);
    json_decref(x);
    json_decref(b);
    json_decref(in);
}

static void test_plist_types_are_right(void **state)
{
    (void)state;
    json_t *in = load("{\"i\": 7, \"r\": 2.0, \"d\": {\"$data\": \"AAEC/w==\"},"
                      " \"t\": {\"$date\": \"2026-11-28T13:44:42Z\"}, \"b\": true, \"a\": [],"
                      " \"mixed\": {\"$data\": \"AA==\", \"x\": 1}}");
    char err[160];
    plist_t p = json_to_plist(in, err, sizeof err);
    assert_non_null(p);
    assert_int_equal(plist_get_node_type(p), PLIST_DICT);
    assert_int_equal(plist_get_node_type(plist_dict_get_item(p, "i")), PLIST_UINT);
    assert_int_equal(plist_get_node_type(plist_dict_get_item(p, "r")), PLIST_REAL);
    assert_int_equal(plist_get_node_type(plist_dict_get_item(p, "b")), PLIST_BOOLEAN);
    assert_int_equal(plist_get_node_type(plist_dict_get_item(p, "a")), PLIST_ARRAY);
    assert_int_equal(plist_get_node_type(plist_dict_get_item(p, "mixed")), PLIST_DICT);

    plist_t d = plist_dict_get_item(p, "d");
    assert_int_equal(plist_get_node_type(d), PLIST_DATA);
    uint64_t len = 0;
    const char *bytes = plist_get_data_ptr(d, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(bytes, "\x00\x01\x02\xff", 4);

    /* Seconds since 2001-01-01, checked against the C library's own clock math. */
    plist_t t = plist_dict_get_item(p, "t");
    assert_int_equal(plist_get_node_type(t), PLIST_DATE);
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = 10, .tm_mday = 28,
                    .tm_hour = 13, .tm_min = 44, .tm_sec = 42};
    struct tm epoch = {.tm_year = 2001 - 1900, .tm_mon = 0, .tm_mday = 1};
    int32_t sec = 0, usec = -1;
    plist_get_date_val(t, &sec, &usec);
    assert_int_equal(sec, (int32_t)(timegm(&tm) - timegm(&epoch)));
    assert_int_equal(usec, 0);
    plist_free(p);
    json_decref(in);
}

static void test_negative_integers(void **state)
{
    (void)state;
    json_t *in = load("[-1, -5, -9223372036854775808, 9223372036854775807, 0]");
    char err[160];
    plist_t p = json_to_plist(in, err, sizeof err);
    assert_non_null(p);
    char *xml = NULL;
    uint32_t len = 0;
    plist_to_xml(p, &xml, &len);
    assert_non_null(strstr(xml, "<integer>-5</integer>"));
    assert_non_null(strstr(xml, "<integer>-9223372036854775808</integer>"));
    free(xml);
    plist_free(p);
    json_t *out = round_trip_xml(in);
    assert_json_equal(in, out);
    assert_int_equal(json_integer_value(json_array_get(out, 1)), -5);
    json_decref(out);
    json_decref(in);
}

static void test_dates(void **state)
{
    (void)state;
    char err[160];
    /* An offset is normalised to UTC. */
    json_t *in = load("{\"$date\": \"2026-11-28T15:44:42+02:00\"}");
    json_t *out = round_trip_xml(in);
    assert_string_equal(json_string_value(json_object_get(out, "$date")), "2026-11-28T13:44:42Z");
    json_decref(out);
    json_decref(in);

    /* Fractions survive in memory and in binary plists (XML keeps seconds),
     * also before 2001 where libplist's (sec, usec) pair is lopsided. */
    static const char *const fractional[] = {
        "{\"$date\": \"2024-02-29T23:59:59.250000Z\"}",
        "{\"$date\": \"2000-12-31T23:59:58.500000Z\"}",
        "{\"$date\": \"1970-01-01T00:00:00Z\"}",
    };
    for (size_t i = 0; i < sizeof fractional / sizeof fractional[0]; i++) {
        in = load(fractional[i]);
        plist_t p = json_to_plist(in, err, sizeof err);
        assert_non_null(p);
        out = plist_to_json(p);
        assert_json_equal(in, out);
        json_decref(out);
        out = round_trip_bin(in);
        assert_json_equal(in, out);
        json_decref(out);
        plist_free(p);
        json_decref(in);
    }

    /* ".5" means half a second. */
    in = load("{\"$date\": \"2024-01-01T00:00:00.5Z\"}");
    plist_t p = json_to_plist(in, err, sizeof err);
    out = plist_to_json(p);
    assert_string_equal(json_string_value(json_object_get(out, "$date")),
                        "2024-01-01T00:00:00.500000Z");
    json_decref(out);
    plist_free(p);
    json_decref(in);
}

static json_t *nested_arrays(int depth)
{
    json_t *j = json_string("leaf");
    for (int i = 0; i < depth; i++) {
        json_t *a = json_array();
        json_array_append_new(a, j);
        j = a;
    }
    return j;
}

static void test_depth_limit(void **state)
{
    (void)state;
    char err[160] = "";
    json_t *ok = nested_arrays(API_JSON_MAX_DEPTH);
    plist_t p = json_to_plist(ok, err, sizeof err);
    assert_non_null(p);
    json_t *back = plist_to_json(p);
    assert_non_null(back);
    assert_json_equal(ok, back);
    json_decref(back);

    /* One more level, built on the plist side, is refused on the way out. */
    plist_t outer = plist_new_array();
    plist_array_append_item(outer, p);
    assert_null(plist_to_json(outer));
    plist_free(outer);
    json_decref(ok);

    json_t *deep = nested_arrays(API_JSON_MAX_DEPTH + 1);
    assert_null(json_to_plist(deep, err, sizeof err));
    assert_non_null(strstr(err, "nesting"));
    json_decref(deep);
}

static void expect_refused(json_t *j, const char *reason_part)
{
    char err[160] = "";
    plist_t p = json_to_plist(j, err, sizeof err);
    if (p) {
        plist_free(p);
        fail_msg("accepted what should be refused (%s)", reason_part);
    }
    if (!strstr(err, reason_part))
        fail_msg("reason \"%s\" lacks \"%s\"", err, reason_part);
    json_decref(j);
}

static void test_invalid_input(void **state)
{
    (void)state;
    expect_refused(load("{\"a\": null}"), "null");
    expect_refused(load("[1, [2, null]]"), "null");
    expect_refused(load("{\"$data\": \"not base64!\"}"), "base64");
    expect_refused(load("{\"$data\": 5}"), "base64");
    expect_refused(load("{\"$date\": 5}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2026-02-30T00:00:00Z\"}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2026-13-01T00:00:00Z\"}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2026-01-01 00:00:00Z\"}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2026-01-01T24:00:00Z\"}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2026-01-01T00:00:00\"}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2026-01-01T00:00:00Zjunk\"}"), "RFC 3339");
    expect_refused(load("{\"$date\": \"2100-01-01T00:00:00Z\"}"), "range");
    expect_refused(json_stringn_nocheck("a\0b", 3), "UTF-8");
    expect_refused(json_string_nocheck("caf\xe9"), "UTF-8");
    expect_refused(json_string_nocheck("\xc0\xaf"), "UTF-8");      /* overlong '/' */
    expect_refused(json_string_nocheck("\xed\xa0\x80"), "UTF-8");  /* surrogate */

    /* A leap day exists only in leap years. */
    char err[160];
    json_t *leap = load("{\"$date\": \"2024-02-29T00:00:00Z\"}");
    plist_t p = json_to_plist(leap, err, sizeof err);
    assert_non_null(p);
    plist_free(p);
    json_decref(leap);
    expect_refused(load("{\"$date\": \"2023-02-29T00:00:00Z\"}"), "RFC 3339");
}

static void test_plist_to_json_refuses_bad_text(void **state)
{
    (void)state;
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "name", plist_new_string("caf\xe9"));
    assert_null(plist_to_json(d));
    plist_free(d);

    /* Non-finite reals have no JSON spelling: they become null. */
    plist_t a = plist_new_array();
    plist_array_append_item(a, plist_new_real(1.0 / 0.0));
    json_t *j = plist_to_json(a);
    assert_non_null(j);
    assert_true(json_is_null(json_array_get(j, 0)));
    json_decref(j);
    plist_free(a);
}

static void test_device_json(void **state)
{
    (void)state;
    uint8_t unlock[] = {1, 2, 3};
    struct store_enrollment e = {
        .id = "UDID-1", .type = "Device", .status = ENROLLMENT_ENROLLED, .udid = "UDID-1",
        .serial_number = "F2LXK0ABCDEF", .device_name = "Anna's iPhone",
        .token_hex = "c0ffee", .push_magic = "SECRET-MAGIC", .unlock_token = unlock,
        .unlock_token_len = sizeof unlock, .awaiting_configuration = 1, .cert_fp = "abcd",
        .created_at = 1795873482, /* 2026-11-28T13:44:42Z */
    };
    json_t *j = api_device_json(&e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "enrolled");
    assert_string_equal(json_string_value(json_object_get(j, "push_token")), "c0ffee");
    assert_true(json_is_true(json_object_get(j, "has_push_magic")));
    assert_true(json_is_true(json_object_get(j, "has_unlock_token")));
    assert_true(json_is_true(json_object_get(j, "awaiting_configuration")));
    assert_true(json_is_null(json_object_get(j, "enrollment_id")));
    assert_true(json_is_null(json_object_get(j, "checked_out_at")));
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2026-11-28T13:44:42Z");
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "SECRET-MAGIC"));
    assert_null(strstr(text, "AQID")); /* base64 of the unlock token */
    assert_null(strstr(text, "bootstrap"));
    free(text);
    json_decref(j);

    assert_string_equal(api_status_name(ENROLLMENT_CHECKED_OUT), "checked_out");
    assert_int_equal(api_status_from_name("authenticated"), ENROLLMENT_AUTHENTICATED);
    assert_int_equal(api_status_from_name("Enrolled"), 0);
    assert_null(api_status_name(7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_types),
        cmocka_unit_test(test_plist_types_are_right),
        cmocka_unit_test(test_negative_integers),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_plist_to_json_refuses_bad_text),
        cmocka_unit_test(test_device_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
