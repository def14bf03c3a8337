/* test_converge.c: unit tests for src/profiles/converge.c's pure parts: group
 * rules (model, OS range, supervised, user, attributes; refusals) and
 * converge_plan's decisions: install what is desired and missing or old,
 * wait while the same command is still queued (no duplicates), do not resend
 * a refused one, hold supervised-only profiles back from unsupervised
 * devices, remove only what steward installed, forget what never arrived. */
#include "profiles/converge.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct store_pdevice dev(const char *id, int supervised)
{
    return (struct store_pdevice){.id = (char *)id, .product_name = (char *)"iPhone15,2",
                                  .model = (char *)"MQ0G3LL", .model_name = (char *)"iPhone",
                                  .user = (char *)"alice", .os_num = 170501,
                                  .supervised = supervised, .attrs = (char *)"dept=travel\n"};
}

static void test_rules(void **state)
{
    (void)state;
    char err[256];
    struct store_pdevice d = dev("A", 1);
    struct converge_group g = {.name = "g"};
    size_t one = 0;
    g.profiles = &one;
    g.nprofiles = 1;
    struct converge_profile p = {"com.example.p", 1, "U1", 0, 0};
    struct converge_input in = {&p, 1, &g, 1, &d, 1, NULL, 0, NULL, 0};
    static const struct {
        const char *rules;
        int match;
    } cases[] = {
        {"{}", 1},
        {"{\"model\":\"iPhone15,2\"}", 1},
        {"{\"model\":[\"iPad\",\"iPhone\"]}", 1},
        {"{\"model\":\"iPad13,1\"}", 0},
        {"{\"os_min\":\"17.5\"}", 1},
        {"{\"os_min\":\"17.5.2\"}", 0},
        {"{\"os_max\":\"17.5.1\"}", 1},
        {"{\"os_max\":\"17\"}", 0},
        {"{\"supervised\":true}", 1},
        {"{\"supervised\":false}", 0},
        {"{\"user\":\"alice\"}", 1},
        {"{\"user\":[\"bob\"]}", 0},
        {"{\"attributes\":{\"dept\":\"travel\"}}", 1},
        {"{\"attributes\":{\"dept\":\"sales\"}}", 0},
        {"{\"supervised\":true,\"user\":\"bob\"}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g.rules = converge_rules_parse(cases[i].rules, err, sizeof err);
        assert_non_null(g.rules);
        struct converge_action *a = NULL;
        size_t n = 0;
        assert_int_equal(converge_plan(&in, &a, &n, NULL), 0);
        if ((int)n != cases[i].match)
            fail_msg("rules %s: %zu actions", cases[i].rules, n);
        free(a);
        converge_rules_free(g.rules);
    }
    assert_null(converge_rules_parse("{\"colour\":\"red\"}", err, sizeof err));
    assert_non_null(strstr(err, "rules.colour: unknown rule"));
    assert_null(converge_rules_parse("{\"os_min\":\"seventeen\"}", err, sizeof err));
    assert_null(converge_rules_parse("{\"supervised\":\"yes\"}", err, sizeof err));
    assert_null(converge_rules_parse("[]", err, sizeof err));
}

static struct store_pstate st(const char *dev_id, const char *ident, int64_t desired,
                              const char *installed, const char *state, const char *action,
                              int active, const char *status)
{
    return (struct store_pstate){.enrollment_id = (char *)dev_id, .identifier = (char *)ident,
                                 .desired_version = desired, .installed_uuid = (char *)installed,
                                 .state = (char *)state, .action = (char *)action,
                                 .cmd_active = active, .cmd_status = (char *)status};
}

static enum converge_op op_for(const struct converge_action *a, size_t n, size_t device,
                               const char *ident, const struct converge_input *in)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].device != device)
            continue;
        const char *id = a[i].profile != SIZE_MAX ? in->profiles[a[i].profile].identifier
                                                  : in->states[a[i].state].identifier;
        if (strcmp(id, ident) == 0)
            return a[i].op;
    }
    return (enum converge_op)-1;
}

static void test_plan(void **state)
{
    (void)state;
    /* profiles: a (v2, plain), k (supervised only), m (v1) */
    struct converge_profile prof[] = {
        {"a", 2, "UA2", 0, 0},
        {"k", 1, "UK1", 1, 0},
        {"m", 1, "UM1", 0, 1},
    };
    size_t all[] = {0, 1, 2};
    struct converge_group groups[] = {{.name = "g", .profiles = all, .nprofiles = 3}};
    struct store_pdevice devs[] = {dev("D1", 1), dev("D2", 0), dev("D3", 1), dev("D4", 1),
                                   dev("D5", 1)};
    struct store_pair members[] = {{(char *)"g", (char *)"D1"}, {(char *)"g", (char *)"D2"},
                                   {(char *)"g", (char *)"D3"}, {(char *)"g", (char *)"D5"}};
    struct store_pstate states[] = {
        /* D1: a at v1 installed (old), k installing and still waiting, m refused */
        st("D1", "a", 1, "UA1", "installed", NULL, -1, NULL),
        st("D1", "k", 1, NULL, "installing", "install", 1, "Pending"),
        st("D1", "m", 1, NULL, "installing", "install", 0, "Error"),
        /* D2: everything current; the enrollment profile is not ours (no row) */
        st("D2", "a", 2, "UA2", "installed", NULL, -1, NULL),
        st("D2", "m", 1, "UM1", "installed", NULL, -1, NULL),
        /* D4 (no group): old profile installed by steward, one that never arrived,
         * one with a removal still waiting */
        st("D4", "a", 2, "UA2", "installed", NULL, -1, NULL),
        st("D4", "gone", 1, NULL, "error", NULL, -1, NULL),
        st("D4", "m", 1, "UM1", "removing", "remove", 1, "Pending"),
        /* D5: back in the group while a removal still waits; a, k installed */
        st("D5", "a", 2, "UA2", "removing", "remove", 1, "Pending"),
        st("D5", "k", 1, "UK1", "installed", NULL, -1, NULL),
        st("D5", "m", 1, "UM1", "installed", NULL, -1, NULL),
    };
    struct converge_input in = {prof, 3, groups, 1, devs, 5, members, 4, states, 11};
    struct converge_action *a = NULL;
    size_t n = 0, waiting = 0;
    assert_int_equal(converge_plan(&in, &a, &n, &waiting), 0);
    assert_int_equal(op_for(a, n, 0, "a", &in), CONVERGE_INSTALL);   /* new version */
    assert_int_equal(op_for(a, n, 0, "k", &in), (enum converge_op)-1); /* waiting */
    assert_int_equal(op_for(a, n, 0, "m", &in), CONVERGE_ERROR);     /* refused: not resent */
    assert_int_equal(op_for(a, n, 1, "a", &in), (enum converge_op)-1); /* current */
    assert_int_equal(op_for(a, n, 1, "k", &in), CONVERGE_NA);        /* unsupervised */
    assert_int_equal(op_for(a, n, 1, "m", &in), (enum converge_op)-1);
    assert_int_equal(op_for(a, n, 2, "a", &in), CONVERGE_INSTALL);   /* new member */
    assert_int_equal(op_for(a, n, 2, "k", &in), CONVERGE_INSTALL);
    assert_int_equal(op_for(a, n, 2, "m", &in), CONVERGE_INSTALL);
    assert_int_equal(op_for(a, n, 3, "a", &in), CONVERGE_REMOVE);    /* not desired */
    assert_int_equal(op_for(a, n, 3, "gone", &in), CONVERGE_FORGET);
    assert_int_equal(op_for(a, n, 3, "m", &in), (enum converge_op)-1); /* removal waiting */
    assert_int_equal(op_for(a, n, 4, "a", &in), CONVERGE_INSTALL); /* after the removal */
    assert_int_equal(op_for(a, n, 4, "k", &in), (enum converge_op)-1);
    assert_int_equal(n, 9);
    assert_int_equal(waiting, 2);
    free(a);

    /* once marked as error, the refused install stays quiet */
    states[2].state = "error";
    assert_int_equal(converge_plan(&in, &a, &n, NULL), 0);
    assert_int_equal(op_for(a, n, 0, "m", &in), (enum converge_op)-1);
    free(a);
    /* ...until a new version */
    prof[2].version = 2;
    prof[2].payload_uuid = "UM2";
    assert_int_equal(converge_plan(&in, &a, &n, NULL), 0);
    assert_int_equal(op_for(a, n, 0, "m", &in), CONVERGE_INSTALL);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
