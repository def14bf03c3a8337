/* test_store_profiles.c: store/profiles.c and converge_run on a real store
 * (SQLite, or PostgreSQL when STEWARD_TEST_DSN says so: store_fixture.h):
 * versions, groups and their foreign keys, states with their command's
 * queue status, acknowledgements, ProfileList sync (steward's profiles
 * adopted, others ignored), and a whole convergence: one shared command for
 * every device, nothing queued twice, install acknowledged, removal after
 * leaving the group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/queue.h"
#include "pki/pki.h"
#include "plist/pl.h"
#include "profiles/converge.h"
#include "profiles/profile.h"
#include "store/store.h"
#include "store_fixture.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char dsn[256];
    struct store *s;
    struct profile_signer *signer;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store_profiles.XXXXXX");
    char *err = NULL;
    char cert[128], key[128];
    if (!mkdtemp(f->dir) || fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0 ||
        store_open(f->dsn, &f->s, &err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        free(f);
        return -1;
    }
    snprintf(cert, sizeof cert, "%s/ca.pem", f->dir);
    snprintf(key, sizeof key, "%s/ca.key", f->dir);
    if (pki_ca_create(cert, key, "Signer", &err) != 0 ||
        !(f->signer = profile_signer_load(cert, key, &err)))
        return -1;
    converge_set_signer(f->signer);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    converge_set_signer(NULL);
    profile_signer_free(f->signer);
    store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void enroll(struct store *s, const char *id)
{
    struct store_enrollment e = {.id = (char *)id, .udid = (char *)id, .type = (char *)"Device",
                                 .topic = (char *)"com.apple.mgmt.T"};
    int first = 0;
    assert_int_equal(store_enrollment_authenticate(s, &e, 100), STORE_OK);
    e.token_hex = (char *)"00";
    e.push_magic = (char *)"m";
    assert_int_equal(store_enrollment_token_update(s, &e, 100, &first), STORE_OK);
}

/* Builds and stores a web clip profile; returns its version. */
static int64_t put_profile(struct store *s, const char *identifier, const char *label)
{
    char spec[512], err[PROFILE_ERR_MAX];
    snprintf(spec, sizeof spec,
             "{\"identifier\":\"%s\",\"payloads\":[{\"PayloadType\":\"com.apple.webClip.managed\","
             "\"URL\":\"https://example.com\",\"Label\":\"%s\"}]}",
             identifier, label);
    json_error_t je;
    json_t *j = json_loads(spec, 0, &je);
    plist_t root = profile_build(j, err, sizeof err);
    json_decref(j);
    assert_non_null(root);
    struct profile_check c;
    assert_int_equal(profile_validate(root, &c, err, sizeof err), 0);
    char *xml = NULL;
    size_t len = 0;
    assert_int_equal(pl_to_xml(root, &xml, &len), 0);
    struct store_profile p = {.identifier = c.identifier, .payload_uuid = c.uuid,
                              .types = c.types, .source = "built"};
    assert_int_equal(store_profile_put(s, &p, (const uint8_t *)xml, len, 200), STORE_OK);
    free(xml);
    plist_free(root);
    profile_check_free(&c);
    return p.version;
}

static void test_versions_and_groups(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    enroll(s, "D1");
    assert_int_equal(put_profile(s, "com.example.a", "one"), 1);
    assert_int_equal(put_profile(s, "com.example.a", "two"), 2);
    struct store_profile *p = NULL;
    uint8_t *content = NULL;
    size_t len = 0;
    assert_int_equal(store_profile_get(s, "com.example.a", 0, &p, &content, &len), STORE_OK);
    assert_int_equal(p->version, 2);
    assert_non_null(strstr((const char *)content, "two"));
    store_profile_free(p);
    free(content);
    assert_int_equal(store_profile_get(s, "com.example.a", 1, &p, &content, &len), STORE_OK);
    assert_non_null(memmem(content, len, "one", 3));
    store_profile_free(p);
    free(content);
    assert_int_equal(store_profile_get(s, "com.example.none", 0, &p, NULL, NULL), STORE_NOTFOUND);

    struct store_group g = {.name = "g1", .rules = "{}"};
    assert_int_equal(store_group_create(s, &g, 300), STORE_OK);
    assert_int_equal(store_group_create(s, &g, 300), STORE_CONFLICT);
    assert_int_equal(store_group_member_add(s, "g1", "D1"), STORE_OK);
    assert_int_equal(store_group_member_add(s, "g1", "D1"), STORE_OK); /* idempotent */
    assert_int_equal(store_group_member_add(s, "g1", "nobody"), STORE_CONFLICT);
    assert_int_equal(store_group_member_add(s, "nogroup", "D1"), STORE_CONFLICT);
    assert_int_equal(store_group_assign(s, "g1", "com.example.a", 300), STORE_OK);
    assert_int_equal(store_group_assign(s, "g1", "com.example.none", 300), STORE_CONFLICT);
    struct store_group *gl = NULL;
    size_t n = 0;
    assert_int_equal(store_group_list(s, &gl, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(gl[0].members, 1);
    assert_int_equal(gl[0].profiles, 1);
    assert_string_equal(gl[0].rules, "{}");
    store_groups_free(gl, n);
    assert_int_equal(store_profile_delete(s, "com.example.a"), STORE_OK);
    assert_int_equal(store_profile_delete(s, "com.example.a"), STORE_NOTFOUND);
    assert_int_equal(store_group_get(s, "g1", &gl), STORE_OK);
    assert_int_equal(gl[0].profiles, 0); /* the assignment went with it */
    store_groups_free(gl, 1);
    assert_int_equal(store_group_member_remove(s, "g1", "D1"), STORE_OK);
    assert_int_equal(store_group_member_remove(s, "g1", "D1"), STORE_NOTFOUND);
    assert_int_equal(store_group_delete(s, "g1"), STORE_OK);
    assert_int_equal(store_group_delete(s, "g1"), STORE_NOTFOUND);
}

static size_t waiting(struct store *s, const char *id, const char *type)
{
    struct store_inv_blob *b = NULL;
    size_t n = 0;
    assert_int_equal(store_inventory_pending(s, id, type, &b, &n), STORE_OK);
    store_inv_blobs_free(b, n);
    return n;
}

static struct store_pstate *state_of(struct store *s, const char *id, const char *identifier,
                                     struct store_pstate **all, size_t *n)
{
    assert_int_equal(store_profiles_states(s, id, identifier, all, n), STORE_OK);
    return *n ? &(*all)[0] : NULL;
}

static void test_convergence(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    enroll(s, "D1");
    enroll(s, "D2");
    enroll(s, "D3");
    put_profile(s, "com.example.clip", "v1");
    assert_int_equal(store_group_create(s, &(struct store_group){.name = "g"}, 300), STORE_OK);
    assert_int_equal(store_group_member_add(s, "g", "D1"), STORE_OK);
    assert_int_equal(store_group_member_add(s, "g", "D2"), STORE_OK);
    assert_int_equal(store_group_assign(s, "g", "com.example.clip", 300), STORE_OK);

    struct converge_stats st;
    assert_int_equal(converge_run(s, NULL, 400, &st), STORE_OK);
    assert_int_equal(st.devices, 3);
    assert_int_equal(st.installs, 2);
    assert_int_equal(st.commands, 1); /* one command shared by both devices */
    assert_int_equal(waiting(s, "D1", "InstallProfile"), 1);
    assert_int_equal(waiting(s, "D3", "InstallProfile"), 0);
    int64_t cmds = 0;
    assert_int_equal(fixture_raw(f->dsn, "SELECT COUNT(*) FROM commands WHERE request_type = 'InstallProfile'", &cmds), 0);
    assert_int_equal(cmds, 1);
    /* again: nothing new */
    assert_int_equal(converge_run(s, NULL, 401, &st), STORE_OK);
    assert_int_equal(st.installs, 0);
    assert_int_equal(st.waiting, 2);

    /* D1 acknowledges: installed at version 1 */
    struct store_pstate *all = NULL;
    size_t n = 0;
    struct store_pstate *p = state_of(s, "D1", "com.example.clip", &all, &n);
    assert_non_null(p);
    assert_string_equal(p->state, "installing");
    assert_int_equal(p->cmd_active, 1);
    char uuid[128];
    snprintf(uuid, sizeof uuid, "%s", p->command_uuid);
    store_pstates_free(all, n);
    assert_int_equal(store_queue_report(s, "D1", uuid, "Acknowledged", (const uint8_t *)"x", 1, 402), STORE_OK);
    assert_int_equal(store_profiles_ack_install(s, "D1", uuid, 402), STORE_OK);
    p = state_of(s, "D1", "com.example.clip", &all, &n);
    assert_string_equal(p->state, "installed");
    assert_int_equal(p->installed_version, 1);
    assert_non_null(p->installed_uuid);
    store_pstates_free(all, n);

    /* ProfileList: D1 reports it plus a foreign profile; D3 reports steward's
     * profile it never got from this server (adopted) */
    struct store_profile *cur = NULL;
    assert_int_equal(store_profile_get(s, "com.example.clip", 0, &cur, NULL, NULL), STORE_OK);
    struct store_inv_cell row1[12] = {{.text = "com.example.clip"}, {.text = cur->payload_uuid},
                                      {.num = 1, .is_num = 1}};
    for (int i = 3; i < 12; i++)
        row1[i] = (struct store_inv_cell){.num = i == 6, .is_num = i >= 6 && i <= 9};
    assert_int_equal(store_inventory_rows_put(s, "D3", STORE_INV_PROFILES, row1, 1, 1), STORE_OK);
    assert_int_equal(store_profiles_sync_installed(s, "D3", 403), STORE_OK);
    p = state_of(s, "D3", "com.example.clip", &all, &n);
    assert_non_null(p);
    assert_string_equal(p->state, "installed");
    store_pstates_free(all, n);
    store_profile_free(cur);
    struct store_inv_cell foreign[12] = {{.text = "com.other.thing"}, {.text = "U"},
                                         {.num = 1, .is_num = 1}};
    for (int i = 3; i < 12; i++)
        foreign[i] = (struct store_inv_cell){.num = 1, .is_num = i >= 6 && i <= 9};
    assert_int_equal(store_inventory_rows_put(s, "D2", STORE_INV_PROFILES, foreign, 1, 1), STORE_OK);
    assert_int_equal(store_profiles_sync_installed(s, "D2", 403), STORE_OK);
    p = state_of(s, "D2", "com.other.thing", &all, &n);
    assert_null(p); /* not steward's: never adopted, never removed */
    store_pstates_free(all, n);

    /* D3 has it but is not in the group: removal; D1 leaves: removal */
    assert_int_equal(store_group_member_remove(s, "g", "D1"), STORE_OK);
    assert_int_equal(converge_run(s, NULL, 404, &st), STORE_OK);
    assert_int_equal(st.removes, 2);
    assert_int_equal(waiting(s, "D1", "RemoveProfile"), 1);
    assert_int_equal(waiting(s, "D3", "RemoveProfile"), 1);
    assert_int_equal(waiting(s, "D2", "RemoveProfile"), 0);
    p = state_of(s, "D1", "com.example.clip", &all, &n);
    snprintf(uuid, sizeof uuid, "%s", p->command_uuid);
    store_pstates_free(all, n);
    assert_int_equal(store_profiles_ack_remove(s, "D1", uuid), STORE_OK);
    p = state_of(s, "D1", "com.example.clip", &all, &n);
    assert_null(p);
    store_pstates_free(all, n);
    /* no identity certificate known: a profile with secrets cannot go out */
    uint8_t *der = NULL;
    size_t len = 0;
    assert_int_equal(store_profiles_identity(s, "D1", &der, &len), STORE_NOTFOUND);
}

int main(void)
{
    log_set_level(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_versions_and_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_convergence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
