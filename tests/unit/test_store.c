/* test_store.c: behaviour tests for store.h, on a real SQLite file in a fresh
 * mkdtemp directory per test, or on PostgreSQL when STEWARD_TEST_DSN says so
 * (store_fixture.h; CTest runs both). A second, raw connection counts rows
 * the API does not expose (commands, results, schema_version) to check what
 * was, and was not, stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_fixture.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store/sql.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char path[128];
    char dsn[160];
    struct store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/steward.db", f->dir);
    char *err = NULL;
    if (fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0) {
        free(f);
        return -1;
    }
    if (store_open(f->dsn, &f->s, &err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[160];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    store_close(f->s);
    f->s = NULL;
    char *err = NULL;
    int rc = store_open(f->dsn, &f->s, &err);
    if (rc != STORE_OK)
        fprintf(stderr, "reopen: %s\n", err ? err : "?");
    free(err);
    assert_int_equal(rc, STORE_OK);
}

/* Runs a one-value integer query on a separate raw connection. */
static int64_t raw_int(struct fixture *f, const char *sql)
{
    int64_t v = 0;
    assert_int_equal(fixture_raw(f->dsn, sql, &v), 0);
    return v;
}

static void add_device(struct store *s, const char *id, const char *serial, const char *name,
                       const char *cert_fp, int64_t now)
{
    struct store_enrollment e = {0};
    e.id = (char *)id;
    e.type = "Device";
    e.udid = (char *)id;
    e.serial_number = (char *)serial;
    e.device_name = (char *)name;
    e.cert_fp = (char *)cert_fp;
    assert_int_equal(store_enrollment_authenticate(s, &e, now), STORE_OK);
}

static void add_command(struct store *s, const char *uuid, int64_t now)
{
    char payload[128];
    int n = snprintf(payload, sizeof payload, "<plist>%s</plist>", uuid);
    assert_int_equal(store_command_create(s, uuid, "DeviceInformation", (const uint8_t *)payload,
                                          (size_t)n, now),
                     STORE_OK);
}

static void expect_next(struct store *s, const char *id, int include_notnow, const char *uuid)
{
    struct store_command *c = NULL;
    int rc = store_queue_next(s, id, include_notnow, 1000, &c);
    if (!uuid) {
        assert_int_equal(rc, STORE_NOTFOUND);
        assert_null(c);
        return;
    }
    assert_int_equal(rc, STORE_OK);
    assert_non_null(c);
    assert_string_equal(c->uuid, uuid);
    assert_string_equal(c->request_type, "DeviceInformation");
    char payload[128];
    int n = snprintf(payload, sizeof payload, "<plist>%s</plist>", uuid);
    assert_int_equal(c->payload_len, (size_t)n);
    assert_memory_equal(c->payload, payload, (size_t)n);
    store_command_free(c);
}

static void report(struct store *s, const char *id, const char *uuid, const char *status, int rc)
{
    char raw[128];
    int n = snprintf(raw, sizeof raw, "<report %s %s>", uuid, status);
    assert_int_equal(store_queue_report(s, id, uuid, status, (const uint8_t *)raw, (size_t)n, 1100),
                     rc);
}

/* ---- open and migrations ---------------------------------------------------- */

static void test_migrations_idempotent(void **state)
{
    struct fixture *f = *state;
    int latest = store_migrations_latest();
    assert_true(latest >= 1);
    assert_int_equal(store_schema_version(f->s), latest);
    assert_int_equal(store_ping(f->s), STORE_OK);
    reopen(f);
    reopen(f);
    assert_int_equal(store_schema_version(f->s), latest);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM schema_version"),
                     (int64_t)store_migrations_count);
    if (fixture_is_pg())
        return; /* the rest is about SQLite's files */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(access(wal, F_OK), 0); /* WAL mode: the log file exists while open */
    /* A bare path opens the same database. */
    struct store *bare = NULL;
    char *err = NULL;
    assert_int_equal(store_open(f->path, &bare, &err), STORE_OK);
    assert_null(err);
    assert_int_equal(store_schema_version(bare), latest);
    store_close(bare);
}

/* PostgreSQL with synchronous_commit off: opening says so, once per
 * process (the first of these tests to open a PostgreSQL store). */
static void test_async_commit_warned(void **state)
{
    (void)state;
    const char *pg = fixture_pg_dsn();
    if (!pg)
        skip();
    char dsn[512], path[] = "/tmp/test_store_log.XXXXXX";
    snprintf(dsn, sizeof dsn, "%s%soptions=-c%%20synchronous_commit%%3Doff", pg,
             strchr(pg, '?') ? "&" : "?");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    log_set_fd(fd);
    log_set_level(LOG_WARN);
    for (int i = 0; i < 2; i++) {
        struct store *s = NULL;
        char *err = NULL;
        assert_int_equal(store_open(dsn, &s, &err), STORE_OK);
        store_close(s);
    }
    log_set_level(LOG_ERROR); /* main's */
    log_set_fd(2);
    char buf[4096] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    buf[n] = 0;
    const char *first = strstr(buf, "synchronous_commit is off");
    assert_non_null(first);
    assert_null(strstr(first + 1, "synchronous_commit is off"));
}

static void test_open_errors(void **state)
{
    (void)state;
    struct store *s = NULL;
    char *err = NULL;
    /* Nothing listens on port 1: unavailable (503 material), with a reason. */
    assert_int_equal(store_open("postgres://steward@127.0.0.1:1/steward", &s, &err),
                     STORE_UNAVAILABLE);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "PostgreSQL"));
    free(err);
    err = NULL;
    assert_int_equal(store_open("sqlite:/nonexistent-dir-for-test/x/y.db", &s, &err), STORE_ERR);
    assert_null(s);
    assert_non_null(err);
    free(err);
    err = NULL;
    assert_int_equal(store_open("sqlite:", &s, &err), STORE_ERR);
    assert_non_null(err);
    free(err);
}

static void test_schema_newer_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fixture_raw(f->dsn, "INSERT INTO schema_version VALUES (9999, 0)", NULL), 0);
    struct store *s = NULL;
    char *err = NULL;
    assert_int_equal(store_open(f->dsn, &s, &err), STORE_ERR);
    assert_null(s);
    assert_non_null(err);
    assert_non_null(strstr(err, "newer"));
    free(err);
}

/* ---- enrollments -------------------------------------------------------------- */

static void test_enrollment_lifecycle(void **state)
{
    struct fixture *f = *state;
    struct store_enrollment a = {0};
    a.id = "UDID-1";
    a.type = "Device";
    a.udid = "UDID-1";
    a.serial_number = "SN1";
    a.os_version = "17.4";
    a.topic = "com.apple.mgmt.X";
    a.cert_fp = "fp1";
    assert_int_equal(store_enrollment_authenticate(f->s, &a, 100), STORE_OK);

    struct store_enrollment *e = NULL;
    assert_int_equal(store_enrollment_get(f->s, "UDID-1", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_AUTHENTICATED);
    assert_string_equal(e->serial_number, "SN1");
    assert_string_equal(e->cert_fp, "fp1");
    assert_int_equal(e->created_at, 100);
    assert_int_equal(e->authenticated_at, 100);
    assert_int_equal(e->enrolled_at, 0);
    assert_null(e->token_hex);
    store_enrollment_free(e);

    struct store_enrollment t = {0};
    t.id = "UDID-1";
    t.token_hex = "abcd";
    t.push_magic = "magic-1";
    uint8_t unlock[] = {1, 2, 0, 3};
    t.unlock_token = unlock;
    t.unlock_token_len = sizeof unlock;
    t.awaiting_configuration = 1;
    int first = -1;
    assert_int_equal(store_enrollment_token_update(f->s, &t, 200, &first), STORE_OK);
    assert_int_equal(first, 1);
    assert_int_equal(store_enrollment_get(f->s, "UDID-1", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_ENROLLED);
    assert_string_equal(e->token_hex, "abcd");
    assert_string_equal(e->push_magic, "magic-1");
    assert_int_equal(e->unlock_token_len, sizeof unlock);
    assert_memory_equal(e->unlock_token, unlock, sizeof unlock);
    assert_int_equal(e->awaiting_configuration, 1);
    assert_string_equal(e->serial_number, "SN1");     /* NULL in t: kept */
    assert_string_equal(e->os_version, "17.4");
    assert_string_equal(e->type, "Device");
    assert_int_equal(e->enrolled_at, 200);
    assert_int_equal(e->token_updated_at, 200);
    store_enrollment_free(e);

    t.token_hex = "ef01";
    t.push_magic = NULL;
    t.unlock_token = NULL;
    t.unlock_token_len = 0;
    t.awaiting_configuration = 0;
    assert_int_equal(store_enrollment_token_update(f->s, &t, 300, &first), STORE_OK);
    assert_int_equal(first, 0);
    assert_int_equal(store_enrollment_get(f->s, "UDID-1", &e), STORE_OK);
    assert_string_equal(e->token_hex, "ef01");
    assert_string_equal(e->push_magic, "magic-1"); /* NULL: kept */
    assert_non_null(e->unlock_token);
    assert_int_equal(e->awaiting_configuration, 0);
    assert_int_equal(e->enrolled_at, 200); /* only the first TokenUpdate sets it */
    assert_int_equal(e->token_updated_at, 300);
    store_enrollment_free(e);

    assert_int_equal(store_enrollment_touch(f->s, "UDID-1", 350), STORE_OK);
    assert_int_equal(store_enrollment_touch(f->s, "nobody", 350), STORE_NOTFOUND);

    assert_int_equal(store_enrollment_checkout(f->s, "UDID-1", 400), STORE_OK);
    assert_int_equal(store_enrollment_get(f->s, "UDID-1", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_CHECKED_OUT);
    assert_int_equal(e->checked_out_at, 400);
    assert_int_equal(e->last_seen_at, 350);
    store_enrollment_free(e);
    assert_int_equal(store_enrollment_checkout(f->s, "nobody", 400), STORE_NOTFOUND);
    assert_int_equal(store_enrollment_get(f->s, "nobody", &e), STORE_NOTFOUND);
    assert_null(e);
}

static void test_authenticate_clears_tokens(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "D", "SN", "Mac", "fpA", 100);
    struct store_enrollment t = {0};
    t.id = "D";
    t.token_hex = "aa";
    t.push_magic = "pm";
    uint8_t unlock[] = {9, 9};
    t.unlock_token = unlock;
    t.unlock_token_len = sizeof unlock;
    int first = 0;
    assert_int_equal(store_enrollment_token_update(f->s, &t, 110, &first), STORE_OK);
    uint8_t boot[] = {0xde, 0xad, 0x00, 0xbe, 0xef};
    assert_int_equal(store_bootstrap_token_set(f->s, "D", boot, sizeof boot), STORE_OK);
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(store_bootstrap_token_get(f->s, "D", &got, &len), STORE_OK);
    assert_int_equal(len, sizeof boot);
    assert_memory_equal(got, boot, sizeof boot);
    free(got);

    /* Re-enrollment: a fresh Authenticate with a new certificate. */
    struct store_enrollment a = {0};
    a.id = "D";
    a.cert_fp = "fpB";
    assert_int_equal(store_enrollment_authenticate(f->s, &a, 200), STORE_OK);
    struct store_enrollment *e = NULL;
    assert_int_equal(store_enrollment_get(f->s, "D", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_AUTHENTICATED);
    assert_null(e->token_hex);
    assert_null(e->push_magic);
    assert_null(e->unlock_token);
    assert_int_equal(e->enrolled_at, 0);
    assert_string_equal(e->cert_fp, "fpB");
    assert_string_equal(e->serial_number, "SN"); /* NULL in a: kept */
    assert_int_equal(e->created_at, 100);
    store_enrollment_free(e);
    got = NULL;
    assert_int_equal(store_bootstrap_token_get(f->s, "D", &got, &len), STORE_NOTFOUND);
    assert_null(got);

    /* And the next TokenUpdate completes the enrollment again. */
    assert_int_equal(store_enrollment_token_update(f->s, &t, 210, &first), STORE_OK);
    assert_int_equal(first, 1);

    /* Removing the bootstrap token, and tokens for unknown enrollments. */
    assert_int_equal(store_bootstrap_token_set(f->s, "D", boot, sizeof boot), STORE_OK);
    assert_int_equal(store_bootstrap_token_set(f->s, "D", NULL, 0), STORE_OK);
    assert_int_equal(store_bootstrap_token_get(f->s, "D", &got, &len), STORE_NOTFOUND);
    assert_int_equal(store_bootstrap_token_set(f->s, "ghost", boot, sizeof boot), STORE_NOTFOUND);
}

static void test_user_channel(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "DEV", "S1", "iMac", "fp", 100);
    add_device(f->s, "DEVX", "S2", "iMac 2", "fp2", 100);
    struct store_enrollment u = {0};
    u.id = "DEV:user-1";
    u.parent_id = "DEV";
    u.type = "User";
    u.user_id = "user-1";
    u.user_short_name = "alice";
    u.token_hex = "01";
    u.push_magic = "um";
    int first = 0;
    assert_int_equal(store_enrollment_token_update(f->s, &u, 120, &first), STORE_OK);
    assert_int_equal(first, 1);
    struct store_enrollment *e = NULL;
    assert_int_equal(store_enrollment_get(f->s, "DEV:user-1", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_ENROLLED);
    assert_string_equal(e->parent_id, "DEV");
    assert_string_equal(e->user_short_name, "alice");
    assert_int_equal(e->created_at, 120);
    assert_int_equal(e->enrolled_at, 120);
    assert_null(e->cert_fp);
    store_enrollment_free(e);

    /* A user channel of the other device must not be checked out with DEV. */
    u.id = "DEVX:user-2";
    u.parent_id = "DEVX";
    assert_int_equal(store_enrollment_token_update(f->s, &u, 120, &first), STORE_OK);

    assert_int_equal(store_enrollment_checkout(f->s, "DEV", 500), STORE_OK);
    assert_int_equal(store_enrollment_get(f->s, "DEV:user-1", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_CHECKED_OUT);
    store_enrollment_free(e);
    assert_int_equal(store_enrollment_get(f->s, "DEVX:user-2", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_ENROLLED);
    store_enrollment_free(e);
    assert_int_equal(store_enrollment_get(f->s, "DEVX", &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_AUTHENTICATED);
    store_enrollment_free(e);
}

static void test_by_cert(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "A", NULL, NULL, "fp-a", 100);
    add_device(f->s, "B", NULL, NULL, "fp-b", 100);
    char *id = NULL;
    assert_int_equal(store_enrollment_by_cert(f->s, "fp-a", &id), STORE_OK);
    assert_string_equal(id, "A");
    free(id);
    assert_int_equal(store_enrollment_by_cert(f->s, "fp-b", &id), STORE_OK);
    assert_string_equal(id, "B");
    free(id);
    assert_int_equal(store_enrollment_by_cert(f->s, "fp-none", &id), STORE_NOTFOUND);
    assert_null(id);
    assert_int_equal(store_enrollment_checkout(f->s, "A", 200), STORE_OK);
    assert_int_equal(store_enrollment_by_cert(f->s, "fp-a", &id), STORE_NOTFOUND);
}

static void test_metacharacter_ids(void **state)
{
    struct fixture *f = *state;
    const char *evil = "x'; DROP TABLE queue;--";
    const char *evil2 = "\"%_\\ \xe2\x9c\x93 ) OR 1=1 --";
    add_device(f->s, evil, evil2, evil, "fp'\"", 100);
    add_device(f->s, evil2, NULL, NULL, NULL, 100);
    struct store_enrollment *e = NULL;
    assert_int_equal(store_enrollment_get(f->s, evil, &e), STORE_OK);
    assert_string_equal(e->id, evil);
    assert_string_equal(e->serial_number, evil2);
    assert_string_equal(e->device_name, evil);
    store_enrollment_free(e);
    assert_int_equal(store_enrollment_get(f->s, evil2, &e), STORE_OK);
    assert_string_equal(e->id, evil2);
    store_enrollment_free(e);
    char *id = NULL;
    assert_int_equal(store_enrollment_by_cert(f->s, "fp'\"", &id), STORE_OK);
    assert_string_equal(id, evil);
    free(id);

    add_command(f->s, evil, 100);
    assert_int_equal(store_queue_add(f->s, evil, evil, 100), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM queue"), 1); /* table still there */
    expect_next(f->s, evil, 0, evil);
    report(f->s, evil, evil, "Acknowledged", STORE_OK);
    struct store_queue_item *items = NULL;
    size_t n = 0;
    assert_int_equal(store_queue_list(f->s, evil, 0, &items, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].uuid, evil);
    store_queue_items_free(items, n);
    /* Checkout of an id with LIKE wildcards touches only that id. */
    assert_int_equal(store_enrollment_checkout(f->s, evil2, 200), STORE_OK);
    assert_int_equal(store_enrollment_get(f->s, evil, &e), STORE_OK);
    assert_int_equal(e->status, ENROLLMENT_AUTHENTICATED);
    store_enrollment_free(e);
}

static void list_ids(struct store *s, const struct store_enrollment_filter *flt, const char *want,
                     int64_t want_total)
{
    struct store_enrollment **list = NULL;
    size_t n = 0;
    int64_t total = -1;
    assert_int_equal(store_enrollment_list(s, flt, &list, &n, &total), STORE_OK);
    char got[256] = "";
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, list[i]->id);
    }
    store_enrollment_list_free(list, n);
    assert_string_equal(got, want);
    assert_int_equal(total, want_total);
}

static void test_enrollment_list(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "dev-100%", "SNA", "Office Mac", NULL, 100);
    add_device(f->s, "dev_1", "SNB", "Lab", NULL, 100);
    add_device(f->s, "devX1", "SNC", "Lab 50% off", NULL, 100);
    add_device(f->s, "abc", "SN_D", "Kiosk", NULL, 100);
    struct store_enrollment t = {0};
    t.id = "abc";
    t.token_hex = "00";
    int first = 0;
    assert_int_equal(store_enrollment_token_update(f->s, &t, 110, &first), STORE_OK);

    struct store_enrollment_filter flt = {0};
    list_ids(f->s, &flt, "abc,dev-100%,devX1,dev_1", 4); /* binary order: X < _ */
    list_ids(f->s, NULL, "abc,dev-100%,devX1,dev_1", 4);
    flt.search = "%";
    list_ids(f->s, &flt, "dev-100%,devX1", 2); /* id or device name holding a '%' */
    flt.search = "_";
    list_ids(f->s, &flt, "abc,dev_1", 2); /* serial SN_D, id dev_1 */
    flt.search = "v_1";
    list_ids(f->s, &flt, "dev_1", 1); /* not devX1 */
    flt.search = "0%";
    list_ids(f->s, &flt, "dev-100%,devX1", 2);
    flt.search = "lab";
    list_ids(f->s, &flt, "devX1,dev_1", 2);
    flt.search = "nothing";
    list_ids(f->s, &flt, "", 0);
    flt.search = NULL;
    flt.serial_number = "SNB";
    list_ids(f->s, &flt, "dev_1", 1);
    flt.serial_number = NULL;
    flt.status = ENROLLMENT_ENROLLED;
    list_ids(f->s, &flt, "abc", 1);
    flt.status = ENROLLMENT_AUTHENTICATED;
    list_ids(f->s, &flt, "dev-100%,devX1,dev_1", 3);
    flt.status = 0;
    flt.limit = 2;
    list_ids(f->s, &flt, "abc,dev-100%", 4);
    flt.offset = 2;
    list_ids(f->s, &flt, "devX1,dev_1", 4);
    flt.offset = 10;
    list_ids(f->s, &flt, "", 4);
}

/* ---- commands and queue ---------------------------------------------------- */

static void test_queue_fifo(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "D", NULL, NULL, NULL, 100);
    add_command(f->s, "c-late", 100);
    add_command(f->s, "c-tie-1", 100);
    add_command(f->s, "c-tie-2", 100);
    add_command(f->s, "c-early", 100);
    assert_int_equal(store_queue_add(f->s, "D", "c-late", 50), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "c-tie-1", 20), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "c-tie-2", 20), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "c-early", 10), STORE_OK);
    int64_t depth = -1;
    assert_int_equal(store_queue_depth(f->s, &depth), STORE_OK);
    assert_int_equal(depth, 4);

    /* Unanswered, the same command comes back (a lost response is resent). */
    expect_next(f->s, "D", 0, "c-early");
    expect_next(f->s, "D", 0, "c-early");
    report(f->s, "D", "c-early", "Acknowledged", STORE_OK);
    expect_next(f->s, "D", 0, "c-tie-1");
    report(f->s, "D", "c-tie-1", "Error", STORE_OK);
    expect_next(f->s, "D", 0, "c-tie-2");
    report(f->s, "D", "c-tie-2", "CommandFormatError", STORE_OK);
    expect_next(f->s, "D", 1, "c-late");
    report(f->s, "D", "c-late", "Acknowledged", STORE_OK);
    expect_next(f->s, "D", 1, NULL);
    assert_int_equal(store_queue_depth(f->s, &depth), STORE_OK);
    assert_int_equal(depth, 0);
    /* An answered command cannot be answered again. */
    report(f->s, "D", "c-early", "Acknowledged", STORE_NOTFOUND);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM results"), 4);
    assert_int_equal(
        raw_int(f, "SELECT delivery_count FROM queue WHERE command_uuid = 'c-early'"), 2);
}

/* 1 when SQLite's plan for sql mentions want; *sort set when it sorts. */
static int plan_uses(sqlite3 *db, const char *sql, const char *want, int *sort)
{
    char q[1024];
    snprintf(q, sizeof q, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    int found = 0;
    *sort = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(st, 3);
        found |= strstr(detail, want) != NULL;
        *sort |= strstr(detail, "TEMP B-TREE") != NULL;
    }
    sqlite3_finalize(st);
    return found;
}

/* The queue's paths each seek an index (migration 14): the claim the
 * device's waiting rows in delivery order, its history two ranges, the
 * depth only the waiting rows, and one command's rows across devices their
 * own range. */
static void test_queue_next_uses_index(void **state)
{
    struct fixture *f = *state;
    if (fixture_is_pg())
        skip(); /* SQLite's query plan */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int sort = 0;
    assert_true(plan_uses(db,
                          "SELECT rowid FROM queue WHERE enrollment_id = ?1"
                          " AND active = 1 AND (status IS NULL OR (?2 <> 0 AND status = 'NotNow'))"
                          " ORDER BY created_at, rowid LIMIT 1",
                          "USING INDEX queue_device (active=? AND enrollment_id=?)", &sort));
    assert_false(sort);
    assert_true(plan_uses(db,
                          "SELECT command_uuid FROM queue WHERE active IN (0, 1)"
                          " AND enrollment_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 5",
                          "USING INDEX queue_device (active=? AND enrollment_id=?)", &sort));
    assert_true(plan_uses(db, "SELECT count(*) FROM queue WHERE active = 1",
                          "USING COVERING INDEX queue_device (active=?)", &sort));
    assert_true(plan_uses(db, "UPDATE queue SET active = 0 WHERE command_uuid = ?1 AND +active = 1",
                          "USING INDEX queue_key (command_uuid=?)", &sort));
    assert_true(plan_uses(db, "SELECT enrollment_id FROM queue WHERE command_uuid = ?1"
                              " AND +active = 0 ORDER BY enrollment_id",
                          "USING INDEX queue_key (command_uuid=?)", &sort));
    assert_true(plan_uses(db, "SELECT enrollment_id FROM queue WHERE command_uuid = ?1"
                              " ORDER BY enrollment_id",
                          "USING COVERING INDEX queue_key (command_uuid=?)", &sort));
    assert_false(sort);
    sqlite3_close(db);
}

static void test_queue_notnow(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "D", NULL, NULL, NULL, 100);
    add_command(f->s, "first", 100);
    add_command(f->s, "second", 100);
    assert_int_equal(store_queue_add(f->s, "D", "first", 10), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "second", 20), STORE_OK);
    expect_next(f->s, "D", 0, "first");
    report(f->s, "D", "first", "NotNow", STORE_OK);
    expect_next(f->s, "D", 0, "second"); /* NotNow held back within the exchange */
    report(f->s, "D", "second", "Acknowledged", STORE_OK);
    expect_next(f->s, "D", 0, NULL);
    int64_t depth = 0;
    assert_int_equal(store_queue_depth(f->s, &depth), STORE_OK);
    assert_int_equal(depth, 1); /* NotNow still waits */
    expect_next(f->s, "D", 1, "first");   /* an Idle exchange gets it back */
    report(f->s, "D", "first", "NotNow", STORE_OK); /* NotNow twice is fine */
    expect_next(f->s, "D", 1, "first");
    report(f->s, "D", "first", "Acknowledged", STORE_OK);
    expect_next(f->s, "D", 1, NULL);
}

static void test_report_unknown(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "D", NULL, NULL, NULL, 100);
    add_device(f->s, "E", NULL, NULL, NULL, 100);
    add_command(f->s, "known", 100);
    assert_int_equal(store_queue_add(f->s, "D", "known", 10), STORE_OK);
    report(f->s, "D", "nope", "Acknowledged", STORE_NOTFOUND);
    report(f->s, "E", "known", "Acknowledged", STORE_NOTFOUND); /* not queued for E */
    report(f->s, "ghost", "known", "Error", STORE_NOTFOUND);
    assert_int_equal(store_queue_report(f->s, "D", NULL, "Error", NULL, 0, 1), STORE_NOTFOUND);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM results"), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM queue WHERE status IS NOT NULL"), 0);
    expect_next(f->s, "D", 0, "known");

    /* Inside a caller's transaction the NOTFOUND leaves the transaction usable. */
    assert_int_equal(store_begin(f->s), STORE_OK);
    assert_int_equal(store_begin(f->s), STORE_ERR); /* nested begin */
    report(f->s, "D", "nope", "Acknowledged", STORE_NOTFOUND);
    report(f->s, "D", "known", "Acknowledged", STORE_OK);
    assert_int_equal(store_rollback(f->s), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM results"), 0);
    expect_next(f->s, "D", 0, "known"); /* rolled back: still waiting */
    assert_int_equal(store_begin(f->s), STORE_OK);
    report(f->s, "D", "known", "Acknowledged", STORE_OK);
    assert_int_equal(store_commit(f->s), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM results"), 1);
    assert_int_equal(store_commit(f->s), STORE_ERR); /* none open */
}

static void test_queue_cancel_and_list(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "D", NULL, NULL, NULL, 100);
    add_command(f->s, "a", 100);
    add_command(f->s, "b", 100);
    add_command(f->s, "c", 100);
    add_command(f->s, "d", 100);
    assert_int_equal(store_queue_add(f->s, "D", "a", 10), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "b", 20), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "c", 30), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "D", "d", 40), STORE_OK);
    expect_next(f->s, "D", 0, "a");
    report(f->s, "D", "a", "NotNow", STORE_OK);
    expect_next(f->s, "D", 1, "a");
    report(f->s, "D", "a", "Acknowledged", STORE_OK);
    expect_next(f->s, "D", 0, "b");
    report(f->s, "D", "b", "NotNow", STORE_OK);

    assert_int_equal(store_queue_cancel(f->s, "D", "a", 50), STORE_NOTFOUND); /* answered */
    assert_int_equal(store_queue_cancel(f->s, "D", "zz", 50), STORE_NOTFOUND);
    assert_int_equal(store_queue_cancel(f->s, "E", "c", 50), STORE_NOTFOUND);
    assert_int_equal(store_queue_cancel(f->s, "D", "c", 50), STORE_OK); /* pending */
    assert_int_equal(store_queue_cancel(f->s, "D", "c", 50), STORE_NOTFOUND);

    struct store_queue_item *items = NULL;
    size_t n = 0;
    assert_int_equal(store_queue_list(f->s, "D", 0, &items, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].uuid, "d");
    assert_string_equal(items[0].status, "Pending");
    assert_int_equal(items[0].delivered_at, 0);
    assert_int_equal(items[0].delivery_count, 0);
    assert_null(items[0].result);
    assert_string_equal(items[1].uuid, "b");
    assert_string_equal(items[1].status, "NotNow");
    assert_int_equal(items[1].updated_at, 1100);
    assert_string_equal(items[2].uuid, "a");
    assert_string_equal(items[2].status, "Acknowledged");
    assert_string_equal(items[2].request_type, "DeviceInformation");
    assert_int_equal(items[2].created_at, 10);
    assert_int_equal(items[2].delivered_at, 1000);
    assert_int_equal(items[2].delivery_count, 2);
    const char *last = "<report a Acknowledged>"; /* the last of two reports */
    assert_int_equal(items[2].result_len, strlen(last));
    assert_memory_equal(items[2].result, last, strlen(last));
    store_queue_items_free(items, n);

    assert_int_equal(store_queue_list(f->s, "D", 1, &items, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_queue_items_free(items, n);
    assert_int_equal(store_queue_list(f->s, "nobody", 0, &items, &n), STORE_OK);
    assert_int_equal(n, 0);
    store_queue_items_free(items, n);

    /* The NotNow'd one can be canceled too. */
    assert_int_equal(store_queue_cancel(f->s, "D", "b", 60), STORE_OK);
    expect_next(f->s, "D", 1, "d");
}

static void test_command_fanout(void **state)
{
    struct fixture *f = *state;
    const char *ids[] = {"E1", "E2", "E3"};
    for (size_t i = 0; i < 3; i++)
        add_device(f->s, ids[i], NULL, NULL, NULL, 100);
    add_command(f->s, "shared", 100);
    assert_int_equal(store_command_create(f->s, "shared", "X", (const uint8_t *)"x", 1, 1),
                     STORE_CONFLICT);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(store_queue_add(f->s, ids[i], "shared", 100), STORE_OK);
    assert_int_equal(store_queue_add(f->s, "E1", "shared", 100), STORE_CONFLICT);
    assert_int_equal(store_queue_add(f->s, "ghost", "shared", 100), STORE_NOTFOUND);
    assert_int_equal(store_queue_add(f->s, "E1", "no-such-command", 100), STORE_NOTFOUND);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM commands"), 1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM queue"), 3);
    int64_t depth = 0;
    assert_int_equal(store_queue_depth(f->s, &depth), STORE_OK);
    assert_int_equal(depth, 3);
    for (size_t i = 0; i < 3; i++)
        expect_next(f->s, ids[i], 0, "shared");
    report(f->s, "E2", "shared", "Acknowledged", STORE_OK);
    expect_next(f->s, "E2", 0, NULL);
    expect_next(f->s, "E1", 0, "shared"); /* others unaffected */
    assert_int_equal(store_queue_depth(f->s, &depth), STORE_OK);
    assert_int_equal(depth, 2);
}

/* ---- events, API keys, persistence, concurrency ----------------------------- */

static void test_events_and_apikeys(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(store_event_add(f->s, "D", "Authenticate", "17.4", 100), STORE_OK);
    assert_int_equal(store_event_add(f->s, NULL, "Startup", NULL, 100), STORE_OK);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM events"), 2);
    assert_int_equal(store_apikey_add(f->s, "ci", "h1", "admin", 100), STORE_OK);
    assert_int_equal(store_apikey_add(f->s, "dup", "h1", "read", 100), STORE_CONFLICT);
    char *name = NULL, *role = NULL;
    assert_int_equal(store_apikey_lookup(f->s, "h1", &name, &role), STORE_OK);
    assert_string_equal(name, "ci");
    assert_string_equal(role, "admin");
    free(name);
    free(role);
    assert_int_equal(store_apikey_lookup(f->s, "h2", &name, &role), STORE_NOTFOUND);
    assert_null(name);
    assert_null(role);
}

static void test_survives_reopen(void **state)
{
    struct fixture *f = *state;
    add_device(f->s, "P", "SNP", "Persist", "fpP", 100);
    add_command(f->s, "pc", 100);
    assert_int_equal(store_queue_add(f->s, "P", "pc", 100), STORE_OK);
    assert_int_equal(store_apikey_add(f->s, "k", "hk", "admin", 100), STORE_OK);
    reopen(f);
    struct store_enrollment *e = NULL;
    assert_int_equal(store_enrollment_get(f->s, "P", &e), STORE_OK);
    assert_string_equal(e->serial_number, "SNP");
    assert_string_equal(e->cert_fp, "fpP");
    store_enrollment_free(e);
    expect_next(f->s, "P", 0, "pc");
    char *name = NULL, *role = NULL;
    assert_int_equal(store_apikey_lookup(f->s, "hk", &name, &role), STORE_OK);
    free(name);
    free(role);
}

#define WRITES_PER_THREAD 150

struct writer {
    const char *dsn;
    const char *prefix;
    int failures;
};

/* Each thread owns its connection, as an HTTP worker does. Half the writes
 * are multi-statement transactions so the write lock is held across calls;
 * the other half are single calls, each atomic on its own. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct store *s = NULL;
    char *err = NULL;
    if (store_open(w->dsn, &s, &err) != STORE_OK) {
        free(err);
        w->failures = WRITES_PER_THREAD;
        return NULL;
    }
    for (int i = 0; i < WRITES_PER_THREAD; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", w->prefix, i);
        struct store_enrollment e = {0};
        e.id = id;
        int rc;
        if (i % 2) {
            /* Read first, then write: the pattern that deadlocks a deferred
             * transaction under contention (connect.c's report-then-next). */
            int64_t depth = 0;
            rc = store_begin(s);
            if (rc == STORE_OK)
                rc = store_queue_depth(s, &depth);
            if (rc == STORE_OK)
                rc = store_enrollment_authenticate(s, &e, i);
            if (rc == STORE_OK)
                rc = store_event_add(s, id, "Authenticate", NULL, i);
            rc = rc == STORE_OK ? store_commit(s) : (store_rollback(s), rc);
        } else {
            rc = store_enrollment_authenticate(s, &e, i);
            if (rc == STORE_OK)
                rc = store_event_add(s, id, "Authenticate", NULL, i);
        }
        if (rc != STORE_OK)
            w->failures++;
    }
    store_close(s);
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fixture *f = *state;
    struct writer w[2] = {{f->dsn, "t1", 0}, {f->dsn, "t2", 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(w[0].failures, 0);
    assert_int_equal(w[1].failures, 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM enrollments"), 2 * WRITES_PER_THREAD);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM events"), 2 * WRITES_PER_THREAD);
}

/* sql.h, the layer new store areas are written on: one cached statement per
 * SQL text, rows, changes, and an atomic write undone as a whole. */
static const char sql_event_add[] = "INSERT INTO events (enrollment_id, type, created_at)"
                                    " VALUES (?1, ?2, ?3)";
static const char sql_event_types[] = "SELECT type, created_at FROM events"
                                      " WHERE enrollment_id = ?1 ORDER BY id";

static void sql_add_event(struct store *s, const char *id, const char *type, int64_t at)
{
    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(s, sql_event_add, "test.event", &rc);
    assert_non_null(st);
    assert_ptr_equal(st, sql_prepare(s, sql_event_add, "test.event", &rc));
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, type, &code);
    sql_bind_int(st, 3, at, &code);
    assert_int_equal(sql_exec(s, st, "test.event", code), STORE_OK);
    assert_int_equal(sql_changes(s), 1);
}

static void test_sql_layer(void **state)
{
    struct fixture *f = *state;
    sql_add_event(f->s, "dev-1", "a", 10);
    sql_add_event(f->s, "dev-1", "b", 20);
    sql_add_event(f->s, "dev-2", "c", 30);

    int nested = 0;
    assert_int_equal(sql_atomic_begin(f->s, "test.atomic", &nested), STORE_OK);
    sql_add_event(f->s, "dev-1", "undone", 40);
    assert_int_equal(sql_atomic_end(f->s, nested, STORE_ERR, "test.atomic"), STORE_ERR);

    int rc = STORE_OK, code = 0;
    struct sql_stmt *st = sql_prepare(f->s, sql_event_types, "test.types", &rc);
    assert_non_null(st);
    sql_bind_text(st, 1, "dev-1", &code);
    char seen[16] = "";
    int64_t sum = 0;
    int row;
    while ((row = sql_next_row(f->s, st, "test.types", code)) == 1) {
        code = 0;
        strcat(seen, sql_col_text(st, 0));
        sum += sql_col_int(st, 1);
    }
    assert_int_equal(row, 0);
    assert_string_equal(seen, "ab");
    assert_int_equal(sum, 30);

    sql_bind_text(st, 1, "nobody", &code);
    assert_int_equal(sql_first_row(f->s, st, "test.types", code), STORE_NOTFOUND);
}

/* store_after_commit: each hook runs once, with the outermost transaction's
 * fate; a savepoint's hooks wait for the commit around it. */
static int hook_calls[8], hook_seen[8];

static void record_hook(void *arg, int committed)
{
    int i = *(int *)arg;
    hook_calls[i]++;
    hook_seen[i] = committed;
}

static void test_after_commit(void **state)
{
    struct fixture *f = *state;
    static int idx[5] = {0, 1, 2, 3, 4};
    memset(hook_calls, 0, sizeof hook_calls);

    assert_int_equal(store_after_commit(f->s, record_hook, &idx[0]), STORE_OK);
    assert_int_equal(hook_calls[0], 1); /* no transaction: at once */
    assert_int_equal(hook_seen[0], 1);

    assert_int_equal(store_begin(f->s), STORE_OK);
    int nested = 0;
    assert_int_equal(sql_atomic_begin(f->s, "test.hook", &nested), STORE_OK);
    assert_int_equal(nested, 1);
    assert_int_equal(store_after_commit(f->s, record_hook, &idx[1]), STORE_OK);
    assert_int_equal(sql_atomic_end(f->s, nested, STORE_OK, "test.hook"), STORE_OK);
    assert_int_equal(hook_calls[1], 0); /* the savepoint's release is not the commit */
    assert_int_equal(store_commit(f->s), STORE_OK);
    assert_int_equal(hook_calls[1], 1);
    assert_int_equal(hook_seen[1], 1);

    assert_int_equal(store_begin(f->s), STORE_OK);
    assert_int_equal(store_after_commit(f->s, record_hook, &idx[2]), STORE_OK);
    assert_int_equal(store_rollback(f->s), STORE_OK);
    assert_int_equal(hook_calls[2], 1);
    assert_int_equal(hook_seen[2], 0);

    assert_int_equal(sql_atomic_begin(f->s, "test.hook", &nested), STORE_OK);
    assert_int_equal(nested, 0);
    assert_int_equal(store_after_commit(f->s, record_hook, &idx[3]), STORE_OK);
    assert_int_equal(sql_atomic_end(f->s, nested, STORE_ERR, "test.hook"), STORE_ERR);
    assert_int_equal(hook_calls[3], 1);
    assert_int_equal(hook_seen[3], 0);

    assert_int_equal(sql_atomic_begin(f->s, "test.hook", &nested), STORE_OK);
    assert_int_equal(store_after_commit(f->s, record_hook, &idx[4]), STORE_OK);
    assert_int_equal(sql_atomic_end(f->s, nested, STORE_OK, "test.hook"), STORE_OK);
    assert_int_equal(hook_calls[4], 1);
    assert_int_equal(hook_seen[4], 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(hook_calls[i], 1); /* never twice */
}

int main(void)
{
    log_set_level(LOG_ERROR); /* keep expected conflicts out of the output */
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_commit_warned),
        T(test_migrations_idempotent),
        cmocka_unit_test(test_open_errors),
        T(test_schema_newer_refused),
        T(test_enrollment_lifecycle),
        T(test_authenticate_clears_tokens),
        T(test_user_channel),
        T(test_by_cert),
        T(test_metacharacter_ids),
        T(test_enrollment_list),
        T(test_queue_fifo),
        T(test_queue_next_uses_index),
        T(test_queue_notnow),
        T(test_report_unknown),
        T(test_queue_cancel_and_list),
        T(test_command_fanout),
        T(test_events_and_apikeys),
        T(test_survives_reopen),
        T(test_concurrent_writers),
        T(test_sql_layer),
        T(test_after_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
