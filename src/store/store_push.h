/* store_push.h: store.h's section for APNs push certificates and per-enrollment push state, included by
 * store.h (include store.h, not this). Implemented in store/push.c on sql.h, so
 * every backend runs the same code. */
#ifndef STEWARD_STORE_PUSH_H
#define STEWARD_STORE_PUSH_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* One push certificate (migration 4's push_certs row). */
struct store_pushcert {
    char *topic;       /* the certificate's UID: com.apple.mgmt.… */
    char *cert_pem;
    char *key_pem;     /* unencrypted PKCS#8 PEM; never leaves the server */
    char *subject;
    char *serial;      /* hex */
    char *fingerprint; /* SHA-256 hex of the DER */
    int64_t not_before;
    int64_t not_after;
    int64_t created_at;
    int64_t updated_at;
    char *disabled_reason; /* NULL while usable; APNs' 403 reason otherwise */
    int64_t disabled_at;
    int warned_days;       /* last expiry warning threshold logged, 0 = none */
};
void store_pushcert_free(struct store_pushcert *c); /* accepts NULL */
void store_pushcert_list_free(struct store_pushcert **list, size_t n);

/* Inserts or replaces the certificate of c->topic (created_at kept on
 * replacement), clearing disabled_reason and warned_days. */
int store_pushcert_put(struct store *s, const struct store_pushcert *c, int64_t now);
/* NOTFOUND when the topic has no certificate. */
int store_pushcert_get(struct store *s, const char *topic, struct store_pushcert **out);
/* Every certificate, by topic. with_keys 0 leaves key_pem NULL. */
int store_pushcert_list(struct store *s, int with_keys, struct store_pushcert ***out, size_t *n);
/* The topic new enrollments should use: the usable certificate expiring
 * last. NOTFOUND when there is none; CONFLICT when n is too small. */
int store_pushcert_topic_default(struct store *s, char *topic, size_t n);
/* APNs refused the certificate (403): stop using the topic until the next import. */
int store_pushcert_disable(struct store *s, const char *topic, const char *reason, int64_t now);
int store_pushcert_set_warned(struct store *s, const char *topic, int days);
/* How many enrolled (not checked-out) enrollments use topic (NULL: any other
 * topic than `except`, which may then be NULL for all). */
int store_push_topic_devices(struct store *s, const char *topic, const char *except, int64_t *n);

/* What pushing one enrollment needs: its channel and its push state. */
struct store_push_target {
    char *id;
    int status;       /* enum store_enrollment_status */
    char *topic;      /* may be NULL */
    char *token_hex;  /* NULL before the first TokenUpdate */
    char *push_magic;
    int64_t token_updated_at;
    int64_t last_seen_at;
    int64_t last_push_at;
    int last_status;  /* HTTP status of the last push, 0 = none or not sent */
    char *last_result;/* "ok", APNs' reason, or steward's ("no_certificate", …) */
    char *last_apns_id;
    int64_t pushes;
    int64_t failures;
    int64_t unregistered_at; /* 0 = never */
    char *unregistered_token;
    int64_t backoff_until;
};
void store_push_target_free(struct store_push_target *t); /* accepts NULL */
/* NOTFOUND when the enrollment does not exist. */
int store_push_target_get(struct store *s, const char *id, struct store_push_target **out);
/* The targets of n ids at once (a few statements for many ids: the push
 * service's batches): out[i] is ids[i]'s target, NULL when it does not
 * exist (caller frees each). On an error every out[i] is NULL. */
int store_push_targets_get(struct store *s, const char *const *ids, size_t n,
                           struct store_push_target **out);
/* 1 when t's current token was reported gone by APNs and no TokenUpdate came since. */
int store_push_target_unregistered(const struct store_push_target *t);

/* Records one push outcome for enrollment id: status 0 when nothing was
 * sent (result says why). unregistered_token non-NULL marks that token as
 * gone; backoff_until 0 clears the back-off. Counts failures when status is
 * not 200. */
int store_push_record(struct store *s, const char *id, int64_t now, int status, const char *result,
                      const char *apns_id, const char *unregistered_token, int64_t backoff_until);

/* One outcome for store_push_record_many (the arguments of store_push_record). */
struct store_push_outcome {
    const char *id;
    int status;
    const char *result;
    const char *apns_id;
    const char *unregistered_token;
    int64_t backoff_until;
};
/* store_push_record for n outcomes at time now, 16 rows per statement
 * (an id may appear more than once: later outcomes win, as one by one). 0,
 * or the first error (the rows of a failed statement are then retried one
 * by one, so one bad row costs only itself). */
int store_push_record_many(struct store *s, const struct store_push_outcome *o, size_t n,
                           int64_t now);

/* Enrolled enrollments with a waiting command, not seen since silent_before
 * and not pushed since pushed_before (nor held off or unregistered): the
 * re-push list, at most limit ids (caller frees each and the array). */
int store_push_due(struct store *s, int64_t now, int64_t silent_before, int64_t pushed_before,
                   int64_t limit, char ***ids, size_t *n);

#endif
