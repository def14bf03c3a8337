/* test_vectors.c: every check-in message, command and command response in
 * ../shared/vectors (real device and server messages from public projects'
 * test data) goes through the same decoding the server uses: plist parsing,
 * enrollment-id normalisation, MessageType / Status validation, command
 * preparation. Skips, saying so, when ../shared is absent. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/queue.h"
#include "mdm/mdm.h"
#include "plist/pl.h"

static char vectors[1024];

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        *len = (size_t)n;
    return b;
}

static int counts[4]; /* check-ins, reports, commands, other */

static void check_one(const char *path)
{
    size_t len = 0;
    uint8_t *data = slurp(path, &len);
    assert_non_null(data);
    const char *err = NULL;
    plist_t root = pl_parse_dict(data, len, &err);
    if (!root)
        fail_msg("%s does not decode: %s", path, err);
    struct mdm_message m = {.root = root};
    if (plist_dict_get_item(root, "MessageType")) {
        const char *type = pl_str(root, "MessageType");
        assert_non_null(type);
        const char *reason = NULL;
        if (mdm_message_ids(&m, &reason) < 0)
            fail_msg("%s: enrollment id rejected: %s", path, reason);
        assert_true(strlen(m.id) > 0);
        counts[0]++;
    } else if (plist_dict_get_item(root, "Status")) {
        const char *status = pl_str(root, "Status");
        if (!queue_status_valid(status))
            fail_msg("%s: Status '%s' not accepted", path, status ? status : "(none)");
        const char *reason = NULL;
        if (mdm_message_ids(&m, &reason) < 0)
            fail_msg("%s: enrollment id rejected: %s", path, reason);
        if (strcmp(status, "Idle") != 0)
            assert_non_null(pl_str(root, "CommandUUID"));
        counts[1]++;
    } else if (plist_dict_get_item(root, "Command")) {
        const char *reason = NULL;
        if (queue_command_prepare(root, &reason) < 0)
            fail_msg("%s: command refused: %s", path, reason);
        assert_non_null(pl_str(root, "CommandUUID"));
        counts[2]++;
    } else {
        counts[3]++; /* profiles and other fixtures: decoding is enough here */
    }
    plist_free(root);
    free(data);
}

static void test_every_vector_decodes(void **state)
{
    (void)state;
    const char *folders[] = {"micromdm", "nanomdm", "nanocmd"};
    for (size_t i = 0; i < 3; i++) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%s", vectors, folders[i]);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n < 7 || strcmp(de->d_name + n - 6, ".plist") != 0)
                continue;
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            check_one(path);
        }
        closedir(d);
    }
    /* The folders hold at least this many of each kind (README of vectors/). */
    assert_true(counts[0] >= 7);
    assert_true(counts[1] >= 8);
    assert_true(counts[2] >= 4);
    printf("vectors: %d check-ins, %d reports, %d commands, %d other\n", counts[0], counts[1],
           counts[2], counts[3]);
}

/* Values from the iOS 9.3.5 Authenticate vector, checked key by key. */
static void test_ios_authenticate_fields(void **state)
{
    (void)state;
    char path[1100];
    snprintf(path, sizeof path, "%s/nanomdm/Authenticate.1.plist", vectors);
    size_t len = 0;
    uint8_t *data = slurp(path, &len);
    assert_non_null(data);
    const char *err = NULL;
    plist_t root = pl_parse_dict(data, len, &err);
    assert_non_null(root);
    assert_string_equal(pl_str(root, "MessageType"), "Authenticate");
    assert_string_equal(pl_str(root, "OSVersion"), "9.3.5");
    assert_string_equal(pl_str(root, "ProductName"), "iPad2,5");
    assert_string_equal(pl_str(root, "BuildVersion"), "13G36");
    struct mdm_message m = {.root = root};
    const char *reason = NULL;
    assert_int_equal(mdm_message_ids(&m, &reason), 0);
    assert_string_equal(m.type, "Device");
    assert_string_equal(m.id, pl_str(root, "UDID"));
    plist_free(root);
    free(data);
}

/* TokenUpdate with an UnlockToken: the binary fields come out whole. */
static void test_token_update_data(void **state)
{
    (void)state;
    char path[1100];
    snprintf(path, sizeof path, "%s/nanomdm/TokenUpdate.1.plist", vectors);
    size_t len = 0;
    uint8_t *data = slurp(path, &len);
    assert_non_null(data);
    const char *err = NULL;
    plist_t root = pl_parse_dict(data, len, &err);
    assert_non_null(root);
    size_t tlen = 0, ulen = 0;
    assert_non_null(pl_data(root, "Token", &tlen));
    assert_int_equal(tlen, 32);
    assert_non_null(pl_str(root, "PushMagic"));
    assert_non_null(pl_data(root, "UnlockToken", &ulen));
    assert_true(ulen > 100);
    plist_free(root);
    free(data);
}

int main(void)
{
    const char *shared = getenv("STEWARD_SHARED");
    snprintf(vectors, sizeof vectors, "%s/vectors", shared ? shared : "../shared");
    DIR *d = opendir(vectors);
    if (!d) {
        printf("SKIP: %s is absent: the device vectors from ../shared are needed for this test\n",
               vectors);
        return 0;
    }
    closedir(d);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_vector_decodes),
        cmocka_unit_test(test_ios_authenticate_fields),
        cmocka_unit_test(test_token_update_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
