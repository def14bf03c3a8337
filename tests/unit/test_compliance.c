/* test_compliance.c: core/compliance_rules.c, the pure half of compliance:
 * numeric version comparison, policy validation (clear refusals, the wipe
 * opt-in), every rule type compliant / non-compliant / unknown over
 * hand-built facts, unknown when data is missing or stale, and the
 * three-valued all/any combinations, nested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/compliance.h"

#define NOW 1800000000LL
#define DAY 86400LL

static int vcmp(const char *a, const char *b)
{
    int c = 99;
    if (compliance_version_cmp(a, b, &c) < 0)
        return 99;
    return c;
}

static void test_version_compare(void **state)
{
    (void)state;
    assert_int_equal(vcmp("17.10", "17.9"), 1);  /* numeric, not text */
    assert_int_equal(vcmp("17.9", "17.10"), -1);
    assert_int_equal(vcmp("17", "17.0.0"), 0);
    assert_int_equal(vcmp("17.0.1", "17"), 1);
    assert_int_equal(vcmp("16.7.10", "17.0"), -1);
    assert_int_equal(vcmp("18.1", "18.1"), 0);
    assert_int_equal(vcmp("100.0", "99.99"), 1);
    assert_int_equal(vcmp("17.a", "17"), 99);
    assert_int_equal(vcmp("17.", "17"), 99);
    assert_int_equal(vcmp("", "17"), 99);
    assert_int_equal(vcmp("v17", "17"), 99);
}

/* A one-policy set from rules JSON text; the policy is #0. */
static struct compliance_set *set_of(const char *rules)
{
    struct store_compliance_policy p = {.id = 1, .name = "p", .enabled = 1, .rules = (char *)rules,
                                        .scope = "\"all\"", .actions = "[]"};
    struct compliance_set *set = compliance_set_new(&p, 1);
    assert_non_null(set);
    assert_int_equal(compliance_set_count(set), 1);
    return set;
}

/* Facts with everything fresh and compliant-looking. */
static void facts_good(const struct compliance_set *set, struct compliance_facts *f)
{
    assert_int_equal(compliance_facts_init(set, f), 0);
    f->id = strdup("dev-1");
    f->os_version = strdup("17.4.1");
    f->last_seen = NOW - 3600;
    f->supervised = 1;
    f->passcode_present = f->passcode_compliant = 1;
    f->encryption_caps = 3;
    f->device_at = f->security_at = NOW - 60;
    for (int i = 0; i < CSEC_N; i++)
        f->reported[i] = NOW - 60;
    f->is_roaming = 0;
    f->data_roaming = 0;
    f->roaming_at = NOW - 60;
}

static enum compliance_state eval(const struct compliance_set *set,
                                  const struct compliance_facts *f, struct compliance_result *r)
{
    compliance_eval(set, 0, f, NOW, r);
    return r->state;
}

static void test_passcode_encryption_supervised(void **state)
{
    (void)state;
    struct compliance_result r;
    struct compliance_set *set =
        set_of("{\"all\":[{\"type\":\"passcode\"},{\"type\":\"encryption\"},{\"type\":\"supervised\"}]}");
    struct compliance_facts f;
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    assert_string_equal(r.rule, "");
    f.passcode_compliant = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.rule, "passcode");
    assert_string_equal(r.observed, "PasscodeCompliant=false");
    f.passcode_present = 0;
    assert_string_equal((eval(set, &f, &r), r.observed), "PasscodePresent=false");
    f.passcode_present = f.passcode_compliant = 1;
    f.encryption_caps = 1;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.rule, "encryption");
    assert_string_equal(r.observed, "HardwareEncryptionCaps=1");
    f.encryption_caps = 3;
    f.supervised = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.observed, "IsSupervised=false");
    f.supervised = -1;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
    /* passcode without the compliance demand; supervised: false wanted */
    set = set_of("{\"all\":[{\"type\":\"passcode\",\"compliant\":false},"
                 "{\"type\":\"supervised\",\"value\":false}]}");
    facts_good(set, &f);
    f.passcode_compliant = 0;
    f.supervised = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
}

static void test_os_version(void **state)
{
    (void)state;
    struct compliance_result r;
    struct compliance_set *set = set_of("{\"type\":\"os_version\",\"min\":\"17.10\",\"max\":\"18\"}");
    struct compliance_facts f;
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT); /* 17.4.1 < 17.10 */
    assert_string_equal(r.rule, "os_version>=17.10<=18");
    assert_string_equal(r.observed, "17.4.1");
    free(f.os_version);
    f.os_version = strdup("17.10");
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    free(f.os_version);
    f.os_version = strdup("18.0.1");
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    free(f.os_version);
    f.os_version = NULL;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
}

static void test_profiles_and_apps(void **state)
{
    (void)state;
    struct compliance_result r;
    struct compliance_set *set = set_of(
        "{\"all\":[{\"type\":\"profiles_installed\",\"identifiers\":[\"com.example.wifi\"]},"
        "{\"type\":\"apps_forbidden\",\"identifiers\":[\"com.game\"]},"
        "{\"type\":\"apps_required\",\"identifiers\":[\"com.mail\",\"com.vpn\"]}]}");
    int wifi = compliance_set_slot(set, CSLOT_PROFILE, "com.example.wifi");
    int game = compliance_set_slot(set, CSLOT_APP, "com.game");
    int mail = compliance_set_slot(set, CSLOT_APP, "com.mail");
    int vpn = compliance_set_slot(set, CSLOT_APP, "com.vpn");
    assert_true(wifi >= 0 && game >= 0 && mail >= 0 && vpn >= 0);
    assert_int_equal(compliance_set_slot(set, CSLOT_APP, "com.example.wifi"), -1);
    struct compliance_facts f;
    facts_good(set, &f);
    f.has[wifi] = 2;
    f.has[mail] = f.has[vpn] = 1;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    f.has[wifi] = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.observed, "com.example.wifi missing");
    f.has[wifi] = 1;
    f.has[game] = 1;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.rule, "apps_forbidden");
    assert_string_equal(r.observed, "com.game installed");
    f.has[game] = 0;
    f.has[vpn] = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.observed, "com.vpn missing");
    f.has[vpn] = 1;
    f.reported[CSEC_APPS] = 0; /* never answered */
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    assert_string_equal(r.observed, "no InstalledApplicationList answer");
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
}

static void test_certificates_checkin_roaming_restriction(void **state)
{
    (void)state;
    struct compliance_result r;
    struct compliance_facts f;
    struct compliance_set *set = set_of("{\"type\":\"certificates_valid\",\"days\":30}");
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT); /* none expiring */
    f.cert_min = NOW + 40 * DAY;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    f.cert_min = NOW + 20 * DAY;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.rule, "certificates_valid(30 days)");
    assert_non_null(strstr(r.observed, "a certificate expires 2027-"));
    compliance_facts_clear(set, &f);
    compliance_set_free(set);

    set = set_of("{\"type\":\"checked_in\",\"days\":7}");
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    f.last_seen = NOW - 8 * DAY;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    f.device_at = 0; /* inventory does not matter to check-in */
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    f.last_seen = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);

    set = set_of("{\"type\":\"roaming\",\"allow_data_roaming\":false}");
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    f.data_roaming = 1;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.observed, "DataRoamingEnabled=true");
    f.data_roaming = 0;
    f.is_roaming = 1;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.observed, "IsRoaming=true");
    f.is_roaming = f.data_roaming = -1; /* Wi-Fi only: nothing to roam with */
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);

    set = set_of("{\"type\":\"restriction\",\"name\":\"allowCamera\",\"value\":false}");
    int cam = compliance_set_slot(set, CSLOT_RESTRICTION, "allowCamera");
    assert_int_equal(cam, 0);
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.observed, "allowCamera=(not set)");
    f.restriction[cam] = strdup("true");
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    free(f.restriction[cam]);
    f.restriction[cam] = strdup("false");
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
}

static void test_unknown_when_stale(void **state)
{
    (void)state;
    struct compliance_result r;
    struct compliance_facts f;
    struct compliance_set *set = set_of("{\"type\":\"passcode\"}");
    facts_good(set, &f);
    compliance_configure(7 * DAY);
    f.security_at = NOW - 8 * DAY;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    assert_string_equal(r.rule, "passcode");
    assert_non_null(strstr(r.observed, "SecurityInfo answer is stale"));
    f.security_at = NOW - 6 * DAY;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    compliance_configure(0); /* never stale */
    f.security_at = NOW - 800 * DAY;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    f.security_at = 0; /* missing is unknown whatever the age setting */
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    compliance_configure(7 * DAY);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
}

static void test_all_any_nested(void **state)
{
    (void)state;
    struct compliance_result r;
    struct compliance_facts f;
    /* all(supervised, any(os >= 18, passcode)) */
    struct compliance_set *set = set_of(
        "{\"all\":[{\"type\":\"supervised\"},{\"name\":\"new-or-locked\",\"any\":["
        "{\"type\":\"os_version\",\"min\":\"18\"},{\"type\":\"passcode\"}]}]}");
    facts_good(set, &f);
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT); /* passcode holds */
    f.passcode_present = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT); /* 17.4.1, no passcode */
    assert_string_equal(r.rule, "new-or-locked (none of 2 held; first: os_version>=18)");
    assert_string_equal(r.observed, "17.4.1");
    free(f.os_version);
    f.os_version = strdup("18.2");
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_COMPLIANT);
    /* any: one unknown and one failing child → unknown */
    f.device_at = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    /* all: a failing child wins over an unknown one */
    f.device_at = NOW;
    f.supervised = 0;
    f.security_at = 0;
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_NONCOMPLIANT);
    assert_string_equal(r.rule, "supervised");
    /* all: unknown when nothing fails but something is unknown */
    f.supervised = 1;
    free(f.os_version);
    f.os_version = strdup("17.0");
    assert_int_equal(eval(set, &f, &r), COMPLIANCE_UNKNOWN);
    compliance_facts_clear(set, &f);
    compliance_set_free(set);
}

static int parse_policy(const char *text, char *err, size_t n)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    assert_non_null(j);
    struct store_compliance_policy p = {0};
    int rc = compliance_policy_from_json(j, 0, &p, err, n);
    store_compliance_policy_clear(&p);
    json_decref(j);
    return rc;
}

static void test_policy_validation(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(parse_policy("{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"}}", err, sizeof err), 0);
    static const struct {
        const char *json, *reason;
    } bad[] = {
        {"{\"rules\":{\"type\":\"passcode\"}}", "\"name\""},
        {"{\"name\":\"a\"}", "\"rules\" is required"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"passcode\",\"all\":[]}}", "exactly one"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"os_version\",\"min\":\"seventeen\"}}", "dotted"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"checked_in\"}}", "\"days\""},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"apps_required\",\"identifiers\":[]}}", "identifiers"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"encryption\",\"caps\":4}}", "caps"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"},\"scope\":{\"teams\":[\"x\"]}}", "scope"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"},\"actions\":[{\"type\":\"explode\"}]}", "notify"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"},\"actions\":[{\"type\":\"lock\"},{\"type\":\"lock\"}]}", "twice"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"},\"actions\":[{\"type\":\"wipe\"}]}", "wipe_enabled"},
        {"{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"},\"colour\":1}", "unknown field"},
        {"{\"name\":\"a\",\"rules\":{\"all\":[{\"all\":[{\"all\":[{\"all\":[{\"all\":[{\"all\":[{\"all\":[{\"all\":[{\"all\":[{\"type\":\"passcode\"}]}]}]}]}]}]}]}]}]}}", "deeper"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(parse_policy(bad[i].json, err, sizeof err), -1);
        if (!strstr(err, bad[i].reason)) {
            fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", i, err, bad[i].reason);
            fail();
        }
    }
    /* the wipe action is accepted only with the explicit opt-in */
    assert_int_equal(parse_policy("{\"name\":\"a\",\"rules\":{\"type\":\"passcode\"},\"wipe_enabled\":true,"
                                  "\"actions\":[{\"type\":\"wipe\"}]}", err, sizeof err), 0);
    /* an update cannot drop the opt-in under an existing wipe action */
    json_error_t je;
    json_t *j = json_loads("{\"wipe_enabled\":false}", 0, &je);
    struct store_compliance_policy p = {0};
    p.name = strdup("a");
    p.rules = strdup("{\"type\":\"passcode\"}");
    p.scope = strdup("\"all\"");
    p.actions = strdup("[{\"type\":\"wipe\"}]");
    p.wipe_enabled = 1;
    assert_int_equal(compliance_policy_from_json(j, 1, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "wipe_enabled"));
    store_compliance_policy_clear(&p);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_compare),
        cmocka_unit_test(test_passcode_encryption_supervised),
        cmocka_unit_test(test_os_version),
        cmocka_unit_test(test_profiles_and_apps),
        cmocka_unit_test(test_certificates_checkin_roaming_restriction),
        cmocka_unit_test(test_unknown_when_stale),
        cmocka_unit_test(test_all_any_nested),
        cmocka_unit_test(test_policy_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
