/* ids.h: identifiers and encodings shared by every layer: random UUIDs and
 * request ids, hex and base64 (standard alphabet, whitespace-tolerant decode),
 * SHA-256 fingerprints (OpenSSL's RNG and codecs), and lists of ids made
 * distinct. */
#ifndef STEWARD_IDS_H
#define STEWARD_IDS_H

#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and NUL */

/* Fills out with a random (version 4) uppercase UUID. Returns 0 or -1. */
int ids_uuid(char out[UUID_STR_LEN]);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void ids_hex(const uint8_t *in, size_t len, char *out);

/* n random bytes as lowercase hex into out (2*n+1 bytes). Returns 0 or -1. */
int ids_random_hex(size_t n, char *out);

/* Base64 encode: returns a malloc'd NUL-terminated string (caller frees), or NULL. */
char *ids_b64_encode(const uint8_t *in, size_t len);

/* Base64 decode, ignoring whitespace: returns malloc'd bytes (caller frees) and
 * sets *out_len, or NULL on invalid input. */
uint8_t *ids_b64_decode(const char *in, size_t in_len, size_t *out_len);

/* SHA-256 of data as 64 lowercase hex characters into out (65 bytes). */
void ids_sha256_hex(const uint8_t *data, size_t len, char out[65]);

/* Constant-time comparison of two NUL-terminated strings. 1 if equal. */
int ids_secure_equal(const char *a, const char *b);

/* Drops repeated strings from ids[0..*n) in place, keeping each one's first
 * occurrence, in order, and sets *n to how many remain (one request may
 * name a device twice; it is queued once). A hash set of the strings: a
 * fleet of 100,000 ids takes a few milliseconds. 0, or -1 when out of memory
 * (ids untouched). */
int ids_unique(const char **ids, size_t *n);

#endif
