/* test_plist.c: plist/pl.c, the first code every device body meets: XML and
 * binary parsing, forms real devices and Go fixtures send (tabs, wrapped
 * <data>, <false></false>, empty elements), refusal of garbage, and the
 * lenient typed accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "plist/pl.h"

#define P(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

static void test_ios_shapes(void **state)
{
    (void)state;
    const char *err = NULL;
    plist_t d = pl_parse_dict(P("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<plist version=\"1.0\">\n<dict>\n"
                                "\t<key>Token</key>\n\t<data>\n\tq83vEjRW\n\teJCrze8S\n\t</data>\n"
                                "\t<key>Empty</key>\n\t<data></data>\n"
                                "\t<key>Name</key>\n\t<string></string>\n"
                                "\t<key>Flag</key>\n\t<false></false>\n"
                                "\t<key>On</key>\n\t<true/>\n"
                                "\t<key>N</key>\n\t<integer>-7</integer>\n"
                                "</dict>\n</plist>\n"),
                              &err);
    assert_non_null(d);
    size_t len = 0;
    const uint8_t *tok = pl_data(d, "Token", &len);
    assert_non_null(tok);
    assert_int_equal(len, 12);
    assert_int_equal(tok[0], 0xab);
    assert_non_null(pl_data(d, "Empty", &len)); /* present, empty */
    assert_int_equal(len, 0);
    assert_string_equal(pl_str(d, "Name"), "");
    assert_int_equal(pl_bool(d, "Flag", 1), 0);
    assert_int_equal(pl_bool(d, "On", 0), 1);
    assert_int_equal(pl_int(d, "N", 0), -7);
    /* wrong types and absent keys give defaults, never a crash */
    assert_null(pl_str(d, "Token"));
    assert_null(pl_data(d, "Name", &len));
    assert_int_equal(pl_bool(d, "Name", 5), 5);
    assert_int_equal(pl_int(d, "Missing", 42), 42);
    assert_null(pl_str(NULL, "x"));

    /* binary round trip */
    char *bin = NULL;
    uint32_t blen = 0;
    plist_to_bin(d, &bin, &blen);
    plist_t b = pl_parse_dict((const uint8_t *)bin, blen, &err);
    assert_non_null(b);
    assert_int_equal(pl_int(b, "N", 0), -7);
    plist_free(b);
    free(bin);

    char *xml = NULL;
    size_t xlen = 0;
    assert_int_equal(pl_to_xml(d, &xml, &xlen), 0);
    assert_non_null(strstr(xml, "<key>Token</key>"));
    free(xml);
    plist_free(d);
}

static void test_refusals(void **state)
{
    (void)state;
    const char *err = NULL;
    assert_null(pl_parse(NULL, 0, &err));
    assert_string_equal(err, "empty body");
    assert_null(pl_parse(P("{\"json\": true}"), &err));
    assert_string_equal(err, "body is not a property list (XML or binary)");
    assert_null(pl_parse(P("<plist><dict><key>a</key><string>b"), &err));
    assert_string_equal(err, "malformed property list");
    assert_null(pl_parse(P("<plist><dict>\0<key>a</key></dict></plist>"), &err));
    assert_string_equal(err, "plist contains a NUL byte");
    assert_null(pl_parse(P("bplist00garbagegarbagegarbage"), &err));
    assert_null(pl_parse_dict(P("<plist><array/></plist>"), &err));
    assert_string_equal(err, "property list root is not a dictionary");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ios_shapes),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
