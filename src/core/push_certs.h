/* push_certs.h: MDM push certificates. Parses what an operator imports (PEM
 * certificate + key, or PKCS#12 with its password), checks it (key matches,
 * UID present and com.apple.mgmt.…, currently valid), refuses a replacement
 * whose topic differs from the one enrolled devices use unless forced, and
 * watches expiry (log + metric at 30/14/7/1 days). Used by api/push.c and
 * the scheduler; the certificates themselves are in the store (store_push.h). */
#ifndef STEWARD_CORE_PUSH_CERTS_H
#define STEWARD_CORE_PUSH_CERTS_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct store_pushcert;

#define PUSHCERT_TOPIC_PREFIX "com.apple.mgmt."

/* Results of parse and import: 0, or why it was refused. */
enum {
    PUSHCERT_OK = 0,
    PUSHCERT_INVALID = -1,        /* bad input: err says what (a 400) */
    PUSHCERT_TOPIC_MISMATCH = -2, /* devices use another topic (a 409) */
    PUSHCERT_STORE = -3,          /* storage failed */
};

/* Parses a PEM certificate (optionally followed by its chain) and a PEM
 * private key (password for an encrypted one; may be NULL). Fills out's
 * topic, cert_pem, key_pem (PKCS#8), subject, serial, fingerprint,
 * not_before, not_after (caller frees the strings with the fields of a
 * zeroed struct: pushcert_clear). */
int pushcert_parse_pem(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                       const char *password, int64_t now, struct store_pushcert *out, char *err,
                       size_t errn);
/* The same from a PKCS#12 (DER) file and its password. */
int pushcert_parse_p12(const uint8_t *der, size_t len, const char *password, int64_t now,
                       struct store_pushcert *out, char *err, size_t errn);
/* Frees the fields parse filled, not the struct. */
void pushcert_clear(struct store_pushcert *c);

/* Stores c, unless its topic is new while enrolled devices use another
 * topic and force is 0 (PUSHCERT_TOPIC_MISMATCH, err explains). *replaced
 * is set when a certificate of the same topic existed. */
int pushcert_import(struct store *s, const struct store_pushcert *c, int force, int64_t now,
                    int *replaced, char *err, size_t errn);

/* 1 when s holds a push certificate for any topic (usable or disabled), 0
 * when it holds none: then no device can be pushed, and handing devices to
 * the push service would only look each one up to find that out. 1 when it
 * cannot tell (a storage error): push as if one existed. */
int pushcert_any(struct store *s);

/* The warning threshold (30, 14, 7, 1 days) that not_after has crossed at
 * now, 0 when it is further away; -1 once expired. */
int pushcert_warn_days(int64_t not_after, int64_t now);

/* Scheduler job: logs each crossed threshold once per certificate, sets the
 * push-certificate metrics. arg unused. */
void pushcert_expiry_job(struct store *s, void *arg, int64_t now);

#endif
