/* test_memtrim.c: when the I/O loop hands freed memory back (http/memtrim.c):
 * only after a burst of at least MEMTRIM_MIN_CONNECTIONS new connections,
 * and only once the burst has been quiet for MEMTRIM_QUIET_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "http/memtrim.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_small_burst_not_trimmed(void **state)
{
    (void)state;
    struct memtrim m = {0};
    for (int i = 0; i < MEMTRIM_MIN_CONNECTIONS - 1; i++)
        memtrim_connection(&m);
    atomic_store(&m.last_ms, now_ms() - 10 * MEMTRIM_QUIET_MS); /* long quiet */
    assert_int_equal(memtrim_tick(&m), 0);
    assert_int_equal(atomic_load(&m.fresh), MEMTRIM_MIN_CONNECTIONS - 1);
}

static void test_burst_trimmed_once_quiet(void **state)
{
    (void)state;
    struct memtrim m = {0};
    for (int i = 0; i < MEMTRIM_MIN_CONNECTIONS; i++)
        memtrim_connection(&m);
    assert_int_equal(memtrim_tick(&m), 0); /* the last one just arrived */
    atomic_store(&m.last_ms, now_ms() - MEMTRIM_QUIET_MS - 1);
    assert_int_equal(memtrim_tick(&m), 1);
    assert_int_equal(atomic_load(&m.fresh), 0); /* counted afresh */
    assert_int_equal(memtrim_tick(&m), 0);      /* and not again for the same burst */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_burst_not_trimmed),
        cmocka_unit_test(test_burst_trimmed_once_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
