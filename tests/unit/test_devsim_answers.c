/* test_devsim_answers.c: the simulator's answer builder (src/devsim/answers.c,
 * included directly because steward-devsim is not part of stewardlib).
 * Commands go in as XML bodies like the server sends them; answers are
 * serialised and parsed back with libplist before they are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/devsim/answers.c"

static const uint8_t fake_der[] = {0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x01};

static void fill_facts(struct devsim_facts *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->udid, sizeof f->udid, "00008120-001C25A83E91402E");
    snprintf(f->serial, sizeof f->serial, "K7QX2H4N9D");
    snprintf(f->product_name, sizeof f->product_name, "iPhone15,2");
    snprintf(f->model, sizeof f->model, "MQ0G3LL");
    snprintf(f->model_name, sizeof f->model_name, "iPhone");
    snprintf(f->device_name, sizeof f->device_name, "iPhone");
    snprintf(f->os_version, sizeof f->os_version, "18.1");
    snprintf(f->build_version, sizeof f->build_version, "22B83");
    snprintf(f->topic, sizeof f->topic, "com.apple.mgmt.External.0c6a2f1e-8f57-4d1b-9a43-2b7e5d9c1a60");
    snprintf(f->imei, sizeof f->imei, "353958261234567");
    snprintf(f->meid, sizeof f->meid, "35395826123456");
    snprintf(f->push_magic, sizeof f->push_magic, "5E1A7C3B-2D4F-4B8A-9C6E-0F1D2A3B4C5D");
    snprintf(f->enroll_profile_id, sizeof f->enroll_profile_id, "com.steward.enroll");
    f->capacity_gb = 119.16;
    f->battery = 0.5;
    for (int i = 0; i < DEVSIM_TOKEN_LEN; i++)
        f->token[i] = (uint8_t)(i * 7 + 1);
    f->unlock_len = 40;
    f->supervised = 1; /* DeviceName and the like are for supervised devices */
    f->identity_der = fake_der;
    f->identity_der_len = sizeof fake_der;
}

/* A command body as the server would send it: XML, caller frees. */
static char *command_xml(const char *uuid, const char *type, plist_t extra_cmd_keys)
{
    plist_t root = plist_new_dict();
    plist_t cmd = extra_cmd_keys ? extra_cmd_keys : plist_new_dict();
    if (type)
        plist_dict_set_item(cmd, "RequestType", plist_new_string(type));
    plist_dict_set_item(root, "Command", cmd);
    if (uuid)
        plist_dict_set_item(root, "CommandUUID", plist_new_string(uuid));
    char *xml = NULL;
    uint32_t len = 0;
    plist_to_xml(root, &xml, &len);
    plist_free(root);
    assert_non_null(xml);
    return xml;
}

/* Answers body and parses the serialised reply back, as the server will. */
static plist_t answer_roundtrip(struct devsim_facts *f, const struct devsim_policy *p,
                                struct devsim_seen *seen, const char *body,
                                struct devsim_result *res)
{
    assert_int_equal(devsim_answer_body(f, p, seen, (const uint8_t *)body, strlen(body), res), 0);
    char *xml = NULL;
    size_t len = 0;
    assert_int_equal(devsim_to_xml(res->reply, &xml, &len), 0);
    assert_non_null(strstr(xml, "\n\t<key>")); /* tab indentation like iOS */
    plist_t back = NULL;
    plist_from_xml(xml, (uint32_t)len, &back);
    free(xml);
    plist_free(res->reply);
    res->reply = NULL;
    assert_non_null(back);
    assert_int_equal(plist_get_node_type(back), PLIST_DICT);
    return back;
}

static plist_t queries(const char *const *names, size_t n)
{
    plist_t cmd = plist_new_dict();
    plist_t q = plist_new_array();
    for (size_t i = 0; i < n; i++)
        plist_array_append_item(q, plist_new_string(names[i]));
    plist_dict_set_item(cmd, "Queries", q);
    return cmd;
}

static const char *str_of(plist_t d, const char *key)
{
    plist_t n = plist_dict_get_item(d, key);
    assert_non_null(n);
    assert_int_equal(plist_get_node_type(n), PLIST_STRING);
    return plist_get_string_ptr(n, NULL);
}

static void test_device_information_answers_exactly_known_queries(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    static const char *const q[] = {"UDID", "OSVersion", "NoSuchQuery", "DeviceCapacity",
                                    "IMEI", "BatteryLevel", "HostName"};
    char *body = command_xml("DI-1", "DeviceInformation", queries(q, 7));
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(res.status, "Acknowledged");
    assert_string_equal(str_of(back, "Status"), "Acknowledged");
    assert_string_equal(str_of(back, "CommandUUID"), "DI-1");
    assert_string_equal(str_of(back, "UDID"), f.udid);
    plist_t qr = plist_dict_get_item(back, "QueryResponses");
    assert_non_null(qr);
    assert_int_equal(plist_dict_get_size(qr), 5); /* NoSuchQuery and macOS-only HostName omitted */
    assert_null(plist_dict_get_item(qr, "NoSuchQuery"));
    assert_null(plist_dict_get_item(qr, "HostName"));
    assert_string_equal(str_of(qr, "UDID"), f.udid);
    assert_string_equal(str_of(qr, "OSVersion"), "18.1");
    assert_string_equal(str_of(qr, "IMEI"), f.imei);
    plist_t cap = plist_dict_get_item(qr, "DeviceCapacity");
    assert_int_equal(plist_get_node_type(cap), PLIST_REAL);
    double v = 0;
    plist_get_real_val(cap, &v);
    assert_true(v > 119.15 && v < 119.17);
    assert_int_equal(plist_get_node_type(plist_dict_get_item(qr, "BatteryLevel")), PLIST_REAL);
    plist_free(back);
}

static void test_device_information_wifi_only_omits_cellular(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    f.imei[0] = f.meid[0] = '\0';
    static const char *const q[] = {"IMEI", "MEID", "ICCID", "ServiceSubscriptions", "SerialNumber"};
    plist_t cmd = queries(q, 5);
    plist_t qr = devsim_device_information(&f, plist_dict_get_item(cmd, "Queries"));
    assert_int_equal(plist_dict_get_size(qr), 1);
    assert_string_equal(str_of(qr, "SerialNumber"), f.serial);
    plist_free(qr);
    plist_free(cmd);
}

static void test_device_information_empty_and_absent_queries(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    char *body = command_xml("DI-2", "DeviceInformation", queries(NULL, 0));
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_int_equal(plist_dict_get_size(plist_dict_get_item(back, "QueryResponses")), 0);
    plist_free(back);

    body = command_xml("DI-3", "DeviceInformation", NULL); /* micromdm's empty_queries shape */
    back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(str_of(back, "Status"), "Acknowledged");
    assert_non_null(plist_dict_get_item(back, "QueryResponses"));
    plist_free(back);
}

static void test_notnow_shape(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    struct devsim_rule rule = {.request_type = "SecurityInfo", .kind = DEVSIM_RULE_NOTNOW};
    struct devsim_policy p = {&rule, 1};
    char *body = command_xml("NN-1", "SecurityInfo", NULL);
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, &p, NULL, body, &res);
    free(body);
    assert_string_equal(res.status, "NotNow");
    assert_int_equal(plist_dict_get_size(back), 3); /* UDID, Status, CommandUUID only */
    assert_string_equal(str_of(back, "Status"), "NotNow");
    assert_string_equal(str_of(back, "CommandUUID"), "NN-1");
    assert_string_equal(str_of(back, "UDID"), f.udid);
    plist_free(back);

    /* other types are still answered */
    body = command_xml("NN-2", "DeviceLock", NULL);
    back = answer_roundtrip(&f, &p, NULL, body, &res);
    free(body);
    assert_string_equal(res.status, "Acknowledged");
    plist_free(back);
}

static void test_notnow_once_per_command(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    struct devsim_rule rule = {.request_type = "ProfileList", .kind = DEVSIM_RULE_NOTNOW_ONCE};
    struct devsim_policy p = {&rule, 1};
    struct devsim_seen seen = {0};
    struct devsim_result res;
    const char *expect[] = {"NotNow", "Acknowledged", "Acknowledged"};
    for (int i = 0; i < 3; i++) {
        char *body = command_xml("PL-1", "ProfileList", NULL);
        plist_t back = answer_roundtrip(&f, &p, &seen, body, &res);
        free(body);
        assert_string_equal(str_of(back, "Status"), expect[i]);
        assert_int_equal(plist_dict_get_item(back, "ProfileList") != NULL, i > 0);
        plist_free(back);
    }
    char *body = command_xml("PL-2", "ProfileList", NULL); /* a new command: NotNow again */
    plist_t back = answer_roundtrip(&f, &p, &seen, body, &res);
    free(body);
    assert_string_equal(res.status, "NotNow");
    plist_free(back);
    devsim_seen_clear(&seen);
}

static void assert_error_chain(plist_t back, uint64_t code, const char *domain)
{
    assert_string_equal(str_of(back, "Status"), "Error");
    plist_t chain = plist_dict_get_item(back, "ErrorChain");
    assert_non_null(chain);
    assert_int_equal(plist_get_node_type(chain), PLIST_ARRAY);
    assert_int_equal(plist_array_get_size(chain), 1);
    plist_t e = plist_array_get_item(chain, 0);
    uint64_t got = 0;
    plist_get_uint_val(plist_dict_get_item(e, "ErrorCode"), &got);
    assert_int_equal(got, code);
    assert_string_equal(str_of(e, "ErrorDomain"), domain);
    assert_non_null(str_of(e, "LocalizedDescription"));
    assert_non_null(str_of(e, "USEnglishDescription"));
}

static void test_error_rule_and_unknown_command(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    struct devsim_rule rule = {.request_type = "DeviceLock", .kind = DEVSIM_RULE_ERROR,
                               .error_code = 12345};
    struct devsim_policy p = {&rule, 1};
    struct devsim_result res;
    char *body = command_xml("ER-1", "DeviceLock", NULL);
    plist_t back = answer_roundtrip(&f, &p, NULL, body, &res);
    free(body);
    assert_error_chain(back, 12345, "MCMDMErrorDomain");
    assert_string_equal(str_of(back, "CommandUUID"), "ER-1");
    plist_free(back);

    body = command_xml("UK-1", "FrobnicateDevice", NULL);
    back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(res.request_type, "FrobnicateDevice");
    assert_error_chain(back, 12021, "MCMDMErrorDomain");
    plist_free(back);
}

static void test_format_errors(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, "<plist><dict><key>Command", &res);
    assert_string_equal(res.status, "CommandFormatError");
    assert_string_equal(str_of(back, "Status"), "CommandFormatError");
    assert_null(plist_dict_get_item(back, "CommandUUID"));
    plist_free(back);

    char *body = command_xml("NT-1", NULL, NULL); /* Command without RequestType */
    back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(str_of(back, "Status"), "CommandFormatError");
    assert_string_equal(str_of(back, "CommandUUID"), "NT-1");
    plist_free(back);
}

static void test_settings_update_device_name(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    plist_t cmd = plist_new_dict(), items = plist_new_array(), it = plist_new_dict();
    plist_dict_set_item(it, "Item", plist_new_string("DeviceName"));
    plist_dict_set_item(it, "DeviceName", plist_new_string("Front Desk"));
    plist_array_append_item(items, it);
    plist_array_append_item(items, plist_new_string("not a dict"));
    plist_dict_set_item(cmd, "Settings", items);
    char *body = command_xml("ST-1", "Settings", cmd);
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(str_of(back, "Status"), "Acknowledged");
    plist_t per = plist_dict_get_item(back, "Settings");
    assert_int_equal(plist_array_get_size(per), 2);
    assert_string_equal(str_of(plist_array_get_item(per, 0), "Status"), "Acknowledged");
    assert_string_equal(str_of(plist_array_get_item(per, 1), "Status"), "Error");
    assert_string_equal(f.device_name, "Front Desk");
    plist_free(back);
}

static char *profile_xml(const char *id)
{
    plist_t p = plist_new_dict();
    plist_dict_set_item(p, "PayloadIdentifier", plist_new_string(id));
    plist_dict_set_item(p, "PayloadUUID", plist_new_string("9A1B2C3D-0000-4000-8000-123456789ABC"));
    plist_dict_set_item(p, "PayloadType", plist_new_string("Configuration"));
    plist_dict_set_item(p, "PayloadContent", plist_new_array());
    char *xml = NULL;
    uint32_t len = 0;
    plist_to_xml(p, &xml, &len);
    plist_free(p);
    return xml;
}

static int profile_count(struct devsim_facts *f)
{
    struct devsim_result res;
    char *body = command_xml("PL-9", "ProfileList", NULL);
    plist_t back = answer_roundtrip(f, NULL, NULL, body, &res);
    free(body);
    plist_t list = plist_dict_get_item(back, "ProfileList");
    int n = (int)plist_array_get_size(list);
    assert_string_equal(str_of(plist_array_get_item(list, 0), "PayloadIdentifier"),
                        "com.steward.enroll");
    plist_free(back);
    return n;
}

static void test_install_list_remove_profile(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    assert_int_equal(profile_count(&f), 1); /* the enrollment profile */
    char *prof = profile_xml("com.example.wifi");
    plist_t cmd = plist_new_dict();
    plist_dict_set_item(cmd, "Payload", plist_new_data(prof, strlen(prof)));
    free(prof);
    char *body = command_xml("IP-1", "InstallProfile", cmd);
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(str_of(back, "Status"), "Acknowledged");
    plist_free(back);
    assert_int_equal(profile_count(&f), 2);

    cmd = plist_new_dict();
    plist_dict_set_item(cmd, "Payload", plist_new_data("garbage", 7));
    body = command_xml("IP-2", "InstallProfile", cmd);
    back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(str_of(back, "Status"), "Error");
    plist_free(back);

    cmd = plist_new_dict();
    plist_dict_set_item(cmd, "Identifier", plist_new_string("com.example.wifi"));
    body = command_xml("RP-1", "RemoveProfile", cmd);
    back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    assert_string_equal(str_of(back, "Status"), "Acknowledged");
    plist_free(back);
    assert_int_equal(profile_count(&f), 1);
    plist_free(f.profiles);
}

static void test_certificate_list_has_identity(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    char *body = command_xml("CL-1", "CertificateList", NULL);
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    plist_t list = plist_dict_get_item(back, "CertificateList");
    assert_int_equal(plist_array_get_size(list), 1);
    plist_t c = plist_array_get_item(list, 0);
    uint8_t id = 0;
    plist_get_bool_val(plist_dict_get_item(c, "IsIdentity"), &id);
    assert_true(id);
    uint64_t len = 0;
    const char *der = plist_get_data_ptr(plist_dict_get_item(c, "Data"), &len);
    assert_int_equal(len, sizeof fake_der);
    assert_memory_equal(der, fake_der, sizeof fake_der);
    plist_free(back);
}

static void test_installed_apps_filters(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    plist_t cmd = plist_new_dict(), ids = plist_new_array(), items = plist_new_array();
    plist_array_append_item(ids, plist_new_string("com.tinyspeck.chatlyio"));
    plist_array_append_item(items, plist_new_string("Name"));
    plist_dict_set_item(cmd, "Identifiers", ids);
    plist_dict_set_item(cmd, "Items", items);
    char *body = command_xml("IA-1", "InstalledApplicationList", cmd);
    struct devsim_result res;
    plist_t back = answer_roundtrip(&f, NULL, NULL, body, &res);
    free(body);
    plist_t list = plist_dict_get_item(back, "InstalledApplicationList");
    assert_int_equal(plist_array_get_size(list), 1);
    plist_t app = plist_array_get_item(list, 0);
    assert_int_equal(plist_dict_get_size(app), 2); /* Identifier + the asked Name */
    assert_string_equal(str_of(app, "Identifier"), "com.tinyspeck.chatlyio");
    assert_non_null(str_of(app, "Name"));
    plist_free(back);
}

static void test_checkin_messages(void **state)
{
    (void)state;
    struct devsim_facts f;
    fill_facts(&f);
    plist_t a = devsim_msg_authenticate(&f);
    assert_string_equal(str_of(a, "MessageType"), "Authenticate");
    assert_string_equal(str_of(a, "ProductName"), "iPhone15,2");
    assert_string_equal(str_of(a, "Topic"), f.topic);
    assert_null(plist_dict_get_item(a, "DeviceName")); /* iOS 9+ leaves it out */
    plist_free(a);

    plist_t t = devsim_msg_token_update(&f);
    assert_string_equal(str_of(t, "MessageType"), "TokenUpdate");
    uint64_t len = 0;
    const char *tok = plist_get_data_ptr(plist_dict_get_item(t, "Token"), &len);
    assert_int_equal(len, 32);
    assert_memory_equal(tok, f.token, 32);
    assert_string_equal(str_of(t, "PushMagic"), f.push_magic);
    assert_non_null(plist_dict_get_item(t, "UnlockToken"));
    uint8_t awaiting = 1;
    plist_get_bool_val(plist_dict_get_item(t, "AwaitingConfiguration"), &awaiting);
    assert_false(awaiting);
    plist_free(t);

    plist_t idle = devsim_msg_idle(&f);
    assert_int_equal(plist_dict_get_size(idle), 2);
    assert_string_equal(str_of(idle, "Status"), "Idle");
    plist_free(idle);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_information_answers_exactly_known_queries),
        cmocka_unit_test(test_device_information_wifi_only_omits_cellular),
        cmocka_unit_test(test_device_information_empty_and_absent_queries),
        cmocka_unit_test(test_notnow_shape),
        cmocka_unit_test(test_notnow_once_per_command),
        cmocka_unit_test(test_error_rule_and_unknown_command),
        cmocka_unit_test(test_format_errors),
        cmocka_unit_test(test_settings_update_device_name),
        cmocka_unit_test(test_install_list_remove_profile),
        cmocka_unit_test(test_certificate_list_has_identity),
        cmocka_unit_test(test_installed_apps_filters),
        cmocka_unit_test(test_checkin_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
