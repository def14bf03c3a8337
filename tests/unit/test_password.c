/* test_password.c: argon2id hashing round trip, wrong passwords, malformed
 * and foreign hashes, limits, and the re-hash check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/password.h"

static void round_trip(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("correct horse", h, sizeof h), 0);
    assert_true(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    assert_int_equal(password_verify(h, "correct horse"), 1);
    assert_int_equal(password_verify(h, "correct horsE"), 0);
    assert_int_equal(password_verify(h, ""), 0);
    /* A fresh salt every time. */
    assert_int_equal(password_hash("correct horse", h2, sizeof h2), 0);
    assert_string_not_equal(h, h2);
    assert_int_equal(password_needs_rehash(h), 0);
}

static void refusals(void **state)
{
    (void)state;
    char h[PASSWORD_HASH_MAX], big[PASSWORD_MAX_LEN + 2];
    assert_int_equal(password_hash("", h, sizeof h), -1);
    assert_int_equal(password_hash("x", h, 10), -1);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(password_hash(big, h, sizeof h), -1);
    assert_int_equal(password_verify("not a hash", "x"), 0);
    assert_int_equal(password_verify("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x"), 0);
    assert_int_equal(password_verify(NULL, "x"), 0);
    assert_int_equal(password_verify_dummy("x"), 0);
    assert_int_equal(password_needs_rehash("$argon2id$v=19$m=4096,t=1,p=1$c2FsdA$aGFzaA"), 1);
    assert_int_equal(password_needs_rehash("garbage"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(round_trip), cmocka_unit_test(refusals)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
