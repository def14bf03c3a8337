/* password.h: argon2id password hashing for every account steward keeps
 * (enrollment users, admins) and for API keys' secrets. Hashes are stored in
 * the PHC string format ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), so
 * the parameters travel with each hash and can be raised later without
 * invalidating old ones. */
#ifndef STEWARD_PASSWORD_H
#define STEWARD_PASSWORD_H

#include <stddef.h>

/* Large enough for any encoded hash this module produces. */
#define PASSWORD_HASH_MAX 160

/* Longest password accepted: argon2 takes any length, but a multi-megabyte
 * "password" is a denial of service, not a secret. */
#define PASSWORD_MAX_LEN 1024

/* Hashes pw with a fresh random salt into out (PASSWORD_HASH_MAX bytes).
 * 0 on success, -1 when pw is empty or too long or hashing failed. */
int password_hash(const char *pw, char *out, size_t outlen);

/* 1 when pw matches the encoded hash, 0 when it does not or the hash is
 * malformed. Constant-time in the comparison (argon2 does it). */
int password_verify(const char *encoded, const char *pw);

/* Verifies pw against a fixed dummy hash and returns 0: called for unknown
 * user names so a sign-in takes the same time whether the user exists. */
int password_verify_dummy(const char *pw);

/* 1 when the encoded hash uses weaker parameters than password_hash would
 * choose today (re-hash on the next successful sign-in). */
int password_needs_rehash(const char *encoded);

#endif
