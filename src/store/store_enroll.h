/* store_enroll.h: store.h's section for enrollment users, web sessions and
 * sign-in throttling (generic: a realm names who uses them, so the
 * operators' console shares the tables) and enrollment records (who
 * enrolled which device, when and how, with the OTA phase and the device's
 * attributes), included by store.h (include store.h, not this). Implemented
 * in store/enroll.c on sql.h, so every backend runs the same code. */
#ifndef STEWARD_STORE_ENROLL_H
#define STEWARD_STORE_ENROLL_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* ---- enrollment users -------------------------------------------------- */

struct store_enroll_user {
    char *name;
    char *password_hash; /* PHC string (util/password.h) */
    int disabled;
    int64_t created_at, updated_at, last_sign_in_at; /* last_sign_in_at 0 = never */
};
void store_enroll_user_clear(struct store_enroll_user *u);
void store_enroll_user_list_free(struct store_enroll_user *list, size_t n);

/* STORE_CONFLICT when the name exists. */
int store_enroll_user_add(struct store *s, const char *name, const char *hash, int64_t now);
/* NOTFOUND when unknown. */
int store_enroll_user_get(struct store *s, const char *name, struct store_enroll_user *out);
int store_enroll_user_set_password(struct store *s, const char *name, const char *hash,
                                   int64_t now);
int store_enroll_user_set_disabled(struct store *s, const char *name, int disabled, int64_t now);
int store_enroll_user_signed_in(struct store *s, const char *name, int64_t now);
/* Every user, by name; *out malloc'd array of *n. */
int store_enroll_user_list(struct store *s, struct store_enroll_user **out, size_t *n);

/* ---- web sessions (any realm: "enroll", "console") --------------------- */

struct store_web_session {
    char *subject; /* the signed-in user */
    char *csrf;
    int64_t created_at, expires_at;
};
void store_web_session_clear(struct store_web_session *ws);

int store_web_session_add(struct store *s, const char *realm, const char *id_hash,
                          const char *subject, const char *csrf, int64_t now, int64_t expires_at);
/* An unexpired session: STORE_OK, or NOTFOUND. */
int store_web_session_get(struct store *s, const char *realm, const char *id_hash, int64_t now,
                          struct store_web_session *out);
int store_web_session_delete(struct store *s, const char *realm, const char *id_hash);
/* Drops expired sessions and stale throttle rows. */
int store_web_purge(struct store *s, int64_t now);

/* ---- sign-in throttling (per realm and key: "user:alice", "ip:10.0.0.1") */

/* *locked_until: 0 when the key is not locked at now. */
int store_web_throttle_locked(struct store *s, const char *realm, const char *key, int64_t now,
                              int64_t *locked_until);
/* Counts one failure in a window of `window` seconds; on reaching
 * max_failures the key is locked for lock_secs (the count restarts).
 * *locked_until as above after counting. */
int store_web_throttle_fail(struct store *s, const char *realm, const char *key, int64_t now,
                            int64_t window, int64_t max_failures, int64_t lock_secs,
                            int64_t *locked_until);
int store_web_throttle_clear(struct store *s, const char *realm, const char *key);

/* ---- enrollment records ------------------------------------------------ */

/* status: "issued" (profile handed out), "pending" (OTA under way), "enrolled",
 * "failed", "expired", "unenrolled". phase (OTA): 1 Profile Service served,
 * 2 SCEP profile served, 3 configuration served. */
struct store_enroll_attrs {
    const char *udid, *serial, *imei, *iccid, *product, *version, *mac, *device_name;
};

struct store_enroll_record {
    char *id, *user_name, *method, *status;
    int phase;
    char *udid, *serial, *imei, *iccid, *product, *version, *mac, *device_name;
    char *enrollment_id, *reason;
    int64_t created_at, updated_at, expires_at, enrolled_at, ended_at;
};
void store_enroll_record_clear(struct store_enroll_record *r);
void store_enroll_record_list_free(struct store_enroll_record *list, size_t n);

/* phase 0 records a handed-out enrollment profile (status "issued": the
 * device is not known until it enrolls); phase 1 starts an over-the-air
 * enrollment ("pending"). challenge_hash may be NULL. */
int store_enroll_record_add(struct store *s, const char *id, const char *user_name,
                            const char *method, int phase, const char *challenge_hash,
                            int64_t now, int64_t expires_at);
int store_enroll_record_get(struct store *s, const char *id, struct store_enroll_record *out);
/* The record a Profile Service challenge belongs to (whatever its state). */
int store_enroll_record_by_challenge(struct store *s, const char *challenge_hash,
                                     struct store_enroll_record *out);
/* Moves a pending, unexpired record from phase `from` to `to` (storing attrs
 * when not NULL, setting its new expiry) in one conditional update: STORE_OK, or NOTFOUND when it is
 * no longer in that state (a replay or a race lost). */
int store_enroll_record_advance(struct store *s, const char *id, int from, int to,
                                const struct store_enroll_attrs *attrs, int64_t now,
                                int64_t expires_at);
/* The newest unexpired pending record at phase (2 or 3) for udid: NOTFOUND
 * when none. */
int store_enroll_record_pending_for(struct store *s, const char *udid, int phase, int64_t now,
                                    struct store_enroll_record *out);
/* A pending record is done: enrolled as enrollment_id. */
int store_enroll_record_enrolled(struct store *s, const char *id, const char *enrollment_id,
                                 int64_t now);
/* A pending record failed (reason kept). */
int store_enroll_record_fail(struct store *s, const char *id, const char *reason, int64_t now);
/* The enrolled records of enrollment_id end (CheckOut, unenroll). */
int store_enroll_record_ended(struct store *s, const char *enrollment_id, const char *status,
                              int64_t now);
/* Pending records past expires_at become "expired". *n (may be NULL) counts. */
int store_enroll_records_expire(struct store *s, int64_t now, int64_t *n);
/* Newest first; user_name / status NULL for any. *total counts all matches. */
int store_enroll_record_list(struct store *s, const char *user_name, const char *status,
                             int64_t limit, int64_t offset, struct store_enroll_record **out,
                             size_t *n, int64_t *total);

#endif
