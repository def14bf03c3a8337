/* ids.c: UUIDs, hex, base64 and SHA-256 helpers behind ids.h (OpenSSL),
 * and ids_unique. */
#include "util/ids.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ids_uuid(char out[UUID_STR_LEN])
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, UUID_STR_LEN,
             "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

void ids_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int ids_random_hex(size_t n, char *out)
{
    uint8_t buf[64];
    if (n > sizeof buf || RAND_bytes(buf, (int)n) != 1)
        return -1;
    ids_hex(buf, n, out);
    return 0;
}

char *ids_b64_encode(const uint8_t *in, size_t len)
{
    if (len > (size_t)1 << 30)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Hand-rolled rather than EVP_DecodeBlock: the latter rejects embedded
 * whitespace and reports padding bytes as data, and Apple wraps base64 in
 * plists and headers freely. Accepts both alphabets, optional padding. */
uint8_t *ids_b64_decode(const char *in, size_t in_len, size_t *out_len)
{
    uint8_t *out = malloc(in_len / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6) {
        free(out);
        return NULL;
    }
    *out_len = o;
    return out;
}

void ids_sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    ids_hex(md, 32, out);
}

int ids_secure_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}

/* FNV-1a, 64 bits. */
static uint64_t str_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int ids_unique(const char **ids, size_t *n)
{
    size_t cap = 16;
    while (cap < 2 * *n)
        cap *= 2;
    /* Open addressing; a slot holds the kept string's position + 1 (0: empty). */
    size_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        size_t at = (size_t)str_hash(ids[i]) & (cap - 1);
        while (slots[at] && strcmp(ids[slots[at] - 1], ids[i]) != 0)
            at = (at + 1) & (cap - 1);
        if (slots[at])
            continue; /* a repeat */
        ids[kept] = ids[i];
        slots[at] = ++kept;
    }
    free(slots);
    *n = kept;
    return 0;
}
