/* password.c: argon2id hashing (libargon2, Debian's reference
 * implementation) with parameters chosen for an interactive sign-in on a
 * small server: 19 MiB, 2 passes, 1 lane, which is OWASP's recommended
 * argon2id minimum and costs ~20 ms here; sign-in is rate-limited anyway. */
#include "util/password.h"

#include <argon2.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PW_T_COST 2
#define PW_M_COST (19 * 1024) /* KiB */
#define PW_LANES 1
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32

int password_hash(const char *pw, char *out, size_t outlen)
{
    size_t n = pw ? strlen(pw) : 0;
    unsigned char salt[PW_SALT_LEN];
    if (n == 0 || n > PASSWORD_MAX_LEN || outlen < PASSWORD_HASH_MAX)
        return -1;
    if (RAND_bytes(salt, sizeof salt) != 1)
        return -1;
    int rc = argon2id_hash_encoded(PW_T_COST, PW_M_COST, PW_LANES, pw, n, salt, sizeof salt,
                                   PW_HASH_LEN, out, outlen);
    return rc == ARGON2_OK ? 0 : -1;
}

int password_verify(const char *encoded, const char *pw)
{
    size_t n = pw ? strlen(pw) : 0;
    if (!encoded || strncmp(encoded, "$argon2id$", 10) != 0 || n > PASSWORD_MAX_LEN)
        return 0;
    return argon2id_verify(encoded, pw ? pw : "", n) == ARGON2_OK;
}

static char dummy[PASSWORD_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    if (password_hash("steward-dummy-password-for-timing", dummy, sizeof dummy) != 0)
        dummy[0] = '\0';
}

int password_verify_dummy(const char *pw)
{
    /* A real hash of a random string nobody knows, with today's parameters,
     * so the work done matches a real verification. */
    pthread_once(&dummy_once, make_dummy);
    if (dummy[0])
        (void)password_verify(dummy, pw);
    return 0;
}

int password_needs_rehash(const char *encoded)
{
    unsigned v = 0, m = 0, t = 0, p = 0;
    if (!encoded || sscanf(encoded, "$argon2id$v=%u$m=%u,t=%u,p=%u$", &v, &m, &t, &p) != 4)
        return 1;
    return v != ARGON2_VERSION_NUMBER || m < PW_M_COST || t < PW_T_COST;
}
