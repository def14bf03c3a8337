/* test_ctl_table.c: the pure parts of stewardctl (src/ctl): table alignment
 * and sanitising, --set value typing and nesting, URL encoding, the command
 * line parser, and the rendering of list/send answers. The ctl sources are
 * not in the library, so they are included here (all but main.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/ctl/args.c"
#include "../../src/ctl/client.c"
#include "../../src/ctl/commands.c"
#include "../../src/ctl/devices.c"
#include "../../src/ctl/inventory.c"
#include "../../src/ctl/service.c"
#include "../../src/ctl/table.c"

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

/* ---- tables ------------------------------------------------------------- */

static void test_table_aligns_columns(void **state)
{
    (void)state;
    static const char *const h[] = {"ID", "NAME", "LAST"};
    struct ctl_table *t = ctl_table_new(3, h);
    assert_non_null(t);
    const char *r1[] = {"abc", "Anna\xE2\x80\x99s iPhone", "x"}; /* U+2019: 3 bytes, 1 column */
    const char *r2[] = {"a", NULL, ""};
    assert_int_equal(ctl_table_add(t, r1), 0);
    assert_int_equal(ctl_table_add(t, r2), 0);
    assert_int_equal(ctl_table_rows(t), 2);
    struct buf b = {0};
    assert_int_equal(ctl_table_render(t, &b), 0);
    assert_string_equal(b.data, "ID   NAME           LAST\n"
                                "abc  Anna\xE2\x80\x99s iPhone  x\n"
                                "a    -              -\n");
    buf_free(&b);
    ctl_table_free(t);
}

static void test_table_header_wider_than_cells(void **state)
{
    (void)state;
    static const char *const h[] = {"STATUS", "X"};
    struct ctl_table *t = ctl_table_new(2, h);
    const char *r[] = {"ok", "1"};
    assert_int_equal(ctl_table_add(t, r), 0);
    struct buf b = {0};
    assert_int_equal(ctl_table_render(t, &b), 0);
    assert_string_equal(b.data, "STATUS  X\nok      1\n");
    buf_free(&b);
    ctl_table_free(t);
    ctl_table_free(NULL);
}

static void test_table_replaces_control_characters(void **state)
{
    (void)state;
    static const char *const h[] = {"NAME", "END"};
    struct ctl_table *t = ctl_table_new(2, h);
    /* ESC sequence, newline, DEL and a C1 control (U+009B, CSI) */
    const char *r[] = {"a\x1b[31mb\nc\x7f" "d\xC2\x9B" "e", "z"};
    assert_int_equal(ctl_table_add(t, r), 0);
    struct buf b = {0};
    assert_int_equal(ctl_table_render(t, &b), 0);
    assert_string_equal(b.data, "NAME           END\n"
                                "a?[31mb?c?d?e  z\n");
    buf_free(&b);
    ctl_table_free(t);
}

static void test_text_width_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(ctl_text_width(""), 0);
    assert_int_equal(ctl_text_width("abc"), 3);
    assert_int_equal(ctl_text_width("\xC3\xA9t\xC3\xA9"), 3);     /* été */
    assert_int_equal(ctl_text_width("\xF0\x9F\x93\xB1"), 1);      /* one emoji */
}

static void test_keyvalues_align(void **state)
{
    (void)state;
    json_t *o = load("{\"id\": \"X:1\", \"has_push_magic\": true, \"enrolled_at\": null,"
                     " \"n\": 3, \"q\": [\"a\"]}");
    struct buf b = {0};
    assert_int_equal(ctl_render_keyvalues(o, &b), 0);
    assert_string_equal(b.data, "id:             X:1\n"
                                "has_push_magic: true\n"
                                "enrolled_at:    -\n"
                                "n:              3\n"
                                "q:              [\"a\"]\n");
    buf_free(&b);
    json_decref(o);
}

/* ---- --set typing and nesting -------------------------------------------- */

static void test_set_value_types(void **state)
{
    (void)state;
    struct { const char *in; json_type type; } cases[] = {
        {"true", JSON_TRUE},     {"false", JSON_FALSE},   {"0", JSON_INTEGER},
        {"42", JSON_INTEGER},    {"-7", JSON_INTEGER},    {"0123", JSON_STRING},
        {"1.5", JSON_STRING},    {"", JSON_STRING},       {"TRUE", JSON_STRING},
        {"12a", JSON_STRING},    {"-", JSON_STRING},      {"+5", JSON_STRING},
        {"9223372036854775807", JSON_INTEGER},
        {"9223372036854775808", JSON_STRING}, /* beyond int64: kept as text */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = ctl_set_value(cases[i].in);
        assert_non_null(v);
        if (json_typeof(v) != cases[i].type)
            fail_msg("\"%s\": type %d, want %d", cases[i].in, json_typeof(v), cases[i].type);
        if (cases[i].type == JSON_STRING)
            assert_string_equal(json_string_value(v), cases[i].in);
        json_decref(v);
    }
    json_t *v = ctl_set_value("-7");
    assert_int_equal(json_integer_value(v), -7);
    json_decref(v);
    v = ctl_set_value("9223372036854775807");
    assert_true(json_integer_value(v) == INT64_MAX);
    json_decref(v);
}

static void test_set_apply_nests_with_dots(void **state)
{
    (void)state;
    char why[256];
    json_t *o = json_object();
    assert_int_equal(ctl_set_apply(o, "NotifyUser=true", why, sizeof why), 0);
    assert_int_equal(ctl_set_apply(o, "A.B.C=5", why, sizeof why), 0);
    assert_int_equal(ctl_set_apply(o, "A.D=x=y", why, sizeof why), 0); /* first '=' splits */
    assert_int_equal(ctl_set_apply(o, "E=", why, sizeof why), 0);
    assert_int_equal(ctl_set_apply(o, "NotifyUser=false", why, sizeof why), 0); /* last wins */
    json_t *want = load("{\"NotifyUser\": false, \"A\": {\"B\": {\"C\": 5}, \"D\": \"x=y\"},"
                        " \"E\": \"\"}");
    assert_true(json_equal(o, want));
    json_decref(want);
    json_decref(o);
}

static void test_set_apply_refuses(void **state)
{
    (void)state;
    char why[256];
    json_t *o = json_object();
    assert_int_equal(ctl_set_apply(o, "A=1", why, sizeof why), 0);
    const char *bad[] = {"noequals", "=1", "A.B=2", ".x=1", "x.=1", "x..y=1", "RequestType=X"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        if (ctl_set_apply(o, bad[i], why, sizeof why) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_true(why[0] != '\0');
    }
    assert_int_equal(ctl_set_apply(o, "D.E=1", why, sizeof why), 0);
    assert_int_equal(ctl_set_apply(o, "D=2", why, sizeof why), -1); /* D holds keys */
    /* Nothing was half-applied by a refused assignment. */
    json_t *want = load("{\"A\": 1, \"D\": {\"E\": 1}}");
    assert_true(json_equal(o, want));
    json_decref(want);
    json_decref(o);
}

static void test_command_from_flags(void **state)
{
    (void)state;
    struct ctl_flag flags[] = {{"device", "d1"},
                               {"type", "DeviceInformation"},
                               {"set", "Count=2"},
                               {"queries", " OSVersion , SerialNumber"}};
    struct ctl_args a = {.flags = flags, .nflags = 4};
    char why[256] = "";
    json_t *cmd = ctl_command_from_flags(&a, why, sizeof why);
    assert_non_null(cmd);
    json_t *want = load("{\"RequestType\": \"DeviceInformation\", \"Count\": 2,"
                        " \"Queries\": [\"OSVersion\", \"SerialNumber\"]}");
    assert_true(json_equal(cmd, want));
    json_decref(want);
    json_decref(cmd);

    flags[3].value = "A,,B";
    assert_null(ctl_command_from_flags(&a, why, sizeof why));
    flags[2].value = "Queries=x";
    flags[3].value = "A";
    assert_null(ctl_command_from_flags(&a, why, sizeof why));
}

/* ---- URLs ---------------------------------------------------------------- */

static void test_url_encode(void **state)
{
    (void)state;
    char *e = ctl_url_encode("00008030-001A2D3E0C41802E:501");
    assert_string_equal(e, "00008030-001A2D3E0C41802E%3A501");
    free(e);
    e = ctl_url_encode("a/b c?d&e=f#g%h+i~j._-k");
    assert_string_equal(e, "a%2Fb%20c%3Fd%26e%3Df%23g%25h%2Bi~j._-k");
    free(e);
    e = ctl_url_encode("Anna\xE2\x80\x99s");
    assert_string_equal(e, "Anna%E2%80%99s");
    free(e);
    e = ctl_url_encode("");
    assert_string_equal(e, "");
    free(e);
}

static void test_query_add(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_int_equal(buf_puts(&b, "/api/v1/devices"), 0);
    assert_int_equal(ctl_query_add(&b, "search", "Anna's phone&x"), 0);
    assert_int_equal(ctl_query_add(&b, "limit", "5"), 0);
    assert_string_equal(b.data, "/api/v1/devices?search=Anna%27s%20phone%26x&limit=5");
    buf_free(&b);
}

static void test_error_message(void **state)
{
    (void)state;
    char msg[128];
    struct ctl_response r = {.status = 404};
    r.json = load("{\"error\": {\"code\": \"not_found\", \"message\": \"no device\\u001b\"}}");
    ctl_error_message(&r, msg, sizeof msg);
    assert_string_equal(msg, "no device?");
    json_decref(r.json);

    char text[] = "\n  502 Bad Gateway  \r\n<html>";
    struct ctl_response t = {.status = 502, .body = text, .len = sizeof text - 1};
    ctl_error_message(&t, msg, sizeof msg);
    assert_string_equal(msg, "502 Bad Gateway");

    char empty[] = "";
    struct ctl_response z = {.status = 500, .body = empty};
    ctl_error_message(&z, msg, sizeof msg);
    assert_string_equal(msg, "the server answered with an error");
}

/* ---- command line -------------------------------------------------------- */

static void test_args_global_flags_anywhere(void **state)
{
    (void)state;
    char *argv[] = {"stewardctl", "--json", "--search", "x y", "devices", "--url=http://h:1",
                    "list", "--status", "enrolled", "--insecure", "--timeout", "7",
                    "--search=z", NULL};
    int argc = 13;
    const struct ctl_optspec *all[] = {ctl_devices_list_opts, NULL};
    int idx[2];
    assert_int_equal(ctl_args_words(argc, argv, 2, idx, all), 2);
    assert_int_equal(idx[0], 4);
    assert_int_equal(idx[1], 6);
    struct ctl_opts o;
    ctl_opts_defaults(&o);
    struct ctl_args a;
    assert_int_equal(ctl_args_parse(argc, argv, idx, 2, ctl_devices_list_opts, &o, &a, stderr), 0);
    assert_true(o.json);
    assert_true(o.insecure);
    assert_int_equal(o.timeout, 7);
    assert_string_equal(o.url, "http://h:1");
    assert_int_equal(a.npos, 0);
    assert_int_equal(ctl_args_count(&a, "search"), 2);
    assert_string_equal(ctl_args_get(&a, "search"), "z"); /* the last one */
    assert_string_equal(ctl_args_get(&a, "status"), "enrolled");
    assert_false(ctl_args_has(&a, "limit"));
    ctl_args_free(&a);
}

static void test_args_positionals_and_errors(void **state)
{
    (void)state;
    char *argv[] = {"stewardctl", "commands", "cancel", "-dev-", "--", "--odd", NULL};
    int idx[2];
    assert_int_equal(ctl_args_words(6, argv, 2, idx, NULL), 2);
    struct ctl_opts o;
    ctl_opts_defaults(&o);
    struct ctl_args a;
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    /* "-dev-" is an unknown option before "--" */
    assert_int_equal(ctl_args_parse(6, argv, idx, 2, NULL, &o, &a, devnull), -1);
    argv[3] = "dev";
    assert_int_equal(ctl_args_parse(6, argv, idx, 2, NULL, &o, &a, devnull), 0);
    assert_int_equal(a.npos, 2);
    assert_string_equal(a.pos[0], "dev");
    assert_string_equal(a.pos[1], "--odd");
    ctl_args_free(&a);

    char *missing[] = {"stewardctl", "commands", "list", "X", "--limit", NULL};
    assert_int_equal(ctl_args_parse(5, missing, idx, 2, ctl_commands_list_opts, &o, &a, devnull),
                     -1);
    char *novalue[] = {"stewardctl", "version", "--insecure=1", NULL};
    assert_int_equal(ctl_args_parse(3, novalue, idx, 1, NULL, &o, &a, devnull), -1);
    char *badtime[] = {"stewardctl", "version", "--timeout", "0", NULL};
    assert_int_equal(ctl_args_parse(4, badtime, idx, 1, NULL, &o, &a, devnull), -1);
    char *badurl[] = {"stewardctl", "version", "--url", "ftp://x", NULL};
    assert_int_equal(ctl_args_parse(4, badurl, idx, 1, NULL, &o, &a, devnull), -1);
    fclose(devnull);
    assert_true(ctl_is_count("0") && ctl_is_count("100"));
    assert_false(ctl_is_count("") || ctl_is_count("-1") || ctl_is_count("1e3") ||
                 ctl_is_count("12345678901"));
}

static void test_args_words_stop_at_unknown_option(void **state)
{
    (void)state;
    char *argv[] = {"stewardctl", "--api-key", "k", "devices", "--weird", "list", NULL};
    int idx[2];
    assert_int_equal(ctl_args_words(6, argv, 2, idx, NULL), 1);
    assert_int_equal(idx[0], 3);
}

/* ---- answers rendered ---------------------------------------------------- */

static void test_device_list_rendering(void **state)
{
    (void)state;
    json_t *ans = load("{\"devices\": [{\"id\": \"U1\", \"type\": \"Device\", \"status\": \"enrolled\","
                       " \"serial_number\": \"S1\", \"os_version\": \"18.1\", \"product_name\": \"iPhone15,2\","
                       " \"device_name\": \"Phone\", \"last_seen_at\": \"2026-11-28T13:44:42Z\"},"
                       " {\"id\": \"U1:501\", \"type\": \"User\", \"status\": \"enrolled\","
                       " \"serial_number\": null}], \"total\": 7, \"limit\": 2, \"offset\": 2}");
    struct buf b = {0};
    assert_int_equal(render_device_list(ans, &b), 0);
    assert_string_equal(b.data,
                        "ID      TYPE    STATUS    SERIAL  OS    PRODUCT     NAME   LAST SEEN\n"
                        "U1      Device  enrolled  S1      18.1  iPhone15,2  Phone  2026-11-28T13:44:42Z\n"
                        "U1:501  User    enrolled  -       -     -           -      -\n"
                        "2 of 7 devices (from offset 2)\n");
    buf_free(&b);
    json_decref(ans);

    ans = load("{\"devices\": [], \"total\": 0, \"limit\": 100, \"offset\": 0}");
    assert_int_equal(render_device_list(ans, &b), 0);
    assert_string_equal(b.data, "No devices.\n");
    buf_free(&b);
    json_decref(ans);

    ans = load("{\"devices\": [{\"id\": \"A\"}], \"total\": 1, \"offset\": 0}");
    assert_int_equal(render_device_list(ans, &b), 0);
    assert_non_null(strstr(b.data, "\n1 of 1 device\n"));
    buf_free(&b);
    json_decref(ans);

    ans = load("{\"devices\": {}}");
    assert_int_equal(render_device_list(ans, &b), -1);
    buf_free(&b);
    json_decref(ans);
}

static void test_send_result_rendering(void **state)
{
    (void)state;
    json_t *ans = load("{\"command_uuid\": \"C-1\", \"request_type\": \"ProfileList\", \"devices\":"
                       " {\"dev-a\": {\"queued\": true}, \"b\": {\"queued\": false,"
                       " \"error\": \"unknown device\"}}}");
    struct buf b = {0};
    size_t queued = 9, total = 9;
    assert_int_equal(render_send_result(ans, &b, &queued, &total), 0);
    assert_int_equal(queued, 1);
    assert_int_equal(total, 2);
    assert_string_equal(b.data, "Command C-1 (ProfileList)\n"
                                "DEVICE  RESULT\n"
                                "dev-a   queued\n"
                                "b       not queued: unknown device\n"
                                "1 of 2 devices queued.\n");
    buf_free(&b);
    json_decref(ans);
}

static void test_command_list_rendering(void **state)
{
    (void)state;
    json_t *ans = load("{\"commands\": [{\"command_uuid\": \"U\", \"request_type\": \"DeviceLock\","
                       " \"status\": \"NotNow\", \"created_at\": \"t1\", \"updated_at\": null}]}");
    struct buf b = {0};
    assert_int_equal(render_command_list(ans, &b), 0);
    assert_string_equal(b.data, "UUID  TYPE        STATUS  CREATED  UPDATED\n"
                                "U     DeviceLock  NotNow  t1       -\n"
                                "1 command\n");
    buf_free(&b);
    json_decref(ans);
    ans = load("{\"commands\": []}");
    assert_int_equal(render_command_list(ans, &b), 0);
    assert_string_equal(b.data, "No commands.\n");
    buf_free(&b);
    json_decref(ans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_aligns_columns),
        cmocka_unit_test(test_table_header_wider_than_cells),
        cmocka_unit_test(test_table_replaces_control_characters),
        cmocka_unit_test(test_text_width_counts_code_points),
        cmocka_unit_test(test_keyvalues_align),
        cmocka_unit_test(test_set_value_types),
        cmocka_unit_test(test_set_apply_nests_with_dots),
        cmocka_unit_test(test_set_apply_refuses),
        cmocka_unit_test(test_command_from_flags),
        cmocka_unit_test(test_url_encode),
        cmocka_unit_test(test_query_add),
        cmocka_unit_test(test_error_message),
        cmocka_unit_test(test_args_global_flags_anywhere),
        cmocka_unit_test(test_args_positionals_and_errors),
        cmocka_unit_test(test_args_words_stop_at_unknown_option),
        cmocka_unit_test(test_device_list_rendering),
        cmocka_unit_test(test_send_result_rendering),
        cmocka_unit_test(test_command_list_rendering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
