/* test_inventory.c: how an inventory answer is written (core/inventory.c's
 * inventory_put_values and inventory_put_list) on the backend under test:
 * the first answer of a section is a baseline without history, a repeated
 * answer writes nothing (no history, values keep their time), a changed
 * value, a new one and, in a full answer, a missing one are written and
 * recorded as history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/enrollment.h"
#include "core/inventory.h"
#include "store/store.h"
#include "store_fixture.h"

static int setup(void **state)
{
    if (store_test_setup(state, "test_inventory") < 0)
        return -1;
    struct store_test *f = *state;
    struct store_enrollment e = {.id = "DEV1", .udid = "DEV1", .type = "Device",
                                 .cert_fp = "aa"};
    return enrollment_authenticate(f->s, &e, 10) == STORE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    return store_test_teardown(state);
}

static int64_t raw_int(struct store_test *f, const char *sql)
{
    int64_t v = -1;
    assert_int_equal(fixture_raw(f->dsn, sql, &v), 0);
    return v;
}

/* The history rows, newest first: "section item change old new" each. */
static size_t history(struct store_test *f, char out[][160], size_t max)
{
    struct store_inv_table *t = NULL;
    assert_int_equal(inventory_rows(f->s, "DEV1", INVENTORY_HISTORY, 100, &t), STORE_OK);
    size_t n = t->nrows < max ? t->nrows : max;
    for (size_t r = 0; r < n; r++) {
        char *const *c = &t->cells[r * t->shape->ncols];
        snprintf(out[r], 160, "%s %s %s %s %s", c[1], c[2], c[3], c[4] ? c[4] : "-",
                 c[5] ? c[5] : "-");
    }
    size_t total = t->nrows;
    store_inv_table_free(t);
    return total;
}

static void put(struct store_test *f, const char *os, const char *name, int replace, int64_t now)
{
    struct store_inv_value v[2];
    size_t n = 0;
    v[n++] = (struct store_inv_value){"OSVersion", "string", (char *)os};
    if (name)
        v[n++] = (struct store_inv_value){"DeviceName", "string", (char *)name};
    assert_int_equal(inventory_put_values(f->s, "DEV1", "device", v, n, replace, NULL, now),
                     STORE_OK);
}

static void test_values(void **state)
{
    struct store_test *f = *state;
    char h[8][160];
    put(f, "17.0", "Anna's", 0, 100);
    assert_int_equal(history(f, h, 8), 0); /* a baseline */
    put(f, "17.0", "Anna's", 0, 200);
    assert_int_equal(history(f, h, 8), 0);
    /* nothing rewritten: the values keep the time they were written */
    assert_int_equal(raw_int(f, "SELECT max(updated_at) FROM inv_values WHERE enrollment_id = 'DEV1'"
                                " AND section = 'device'"),
                     100);
    put(f, "17.1", "Anna's", 0, 300);
    assert_int_equal(history(f, h, 8), 1);
    assert_string_equal(h[0], "device OSVersion changed 17.0 17.1");
    assert_int_equal(raw_int(f, "SELECT updated_at FROM inv_values WHERE enrollment_id = 'DEV1'"
                                " AND section = 'device' AND name = 'DeviceName'"),
                     100);
    /* a partial answer leaves the rest; a full one without it removes it */
    put(f, "17.1", NULL, 0, 400);
    assert_int_equal(history(f, h, 8), 1);
    put(f, "17.1", NULL, 1, 500);
    assert_int_equal(history(f, h, 8), 2);
    assert_string_equal(h[0], "device DeviceName removed Anna's -");
    struct store_inv_value *v = NULL;
    size_t n = 0;
    assert_int_equal(inventory_values(f->s, "DEV1", INVENTORY_DEVICE, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "OSVersion");
    assert_string_equal(v[0].value, "17.1");
    store_inv_values_free(v, n);
    put(f, "17.1", "Anna's", 0, 600);
    assert_int_equal(history(f, h, 8), 3);
    assert_string_equal(h[0], "device DeviceName added - Anna's");
}

static void put_profiles(struct store_test *f, const char *name2, int64_t now)
{
    struct store_inv_cell c[6] = {
        {"P-1", 0, 0}, {"Dev", 0, 0}, {NULL, 1900000000, 1},
        {"P-2", 0, 0}, {name2, 0, 0}, {NULL, 1900000000, 1},
    };
    assert_int_equal(inventory_put_list(f->s, "DEV1", STORE_INV_PROVISIONING, c, 2, 1, now),
                     STORE_OK);
}

static void test_list(void **state)
{
    struct store_test *f = *state;
    char h[8][160];
    put_profiles(f, "Ops", 100);
    put_profiles(f, "Ops", 200);
    assert_int_equal(history(f, h, 8), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM inv_provisioning"), 2);
    put_profiles(f, "Ops 2", 300);
    assert_int_equal(history(f, h, 8), 1);
    assert_string_equal(h[0], "provisioning-profiles P-2 changed Ops Ops 2");
    struct store_inv_table *t = NULL;
    assert_int_equal(inventory_rows(f->s, "DEV1", INVENTORY_PROVISIONING, 10, &t), STORE_OK);
    assert_int_equal(t->nrows, 2);
    store_inv_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
