/* store.h: the only door to data. Every layer above reaches enrollments,
 * identity bindings, the command queue, results, events and API keys through
 * these functions, implemented once (store/core.c and the area files) on
 * sql.h, which the backends store/sqlite.c and store/pgsql.c implement with
 * the same semantics. A struct store is one connection: use it from
 * one thread at a time (each HTTP worker owns one).
 *
 * Conventions: functions return STORE_OK (0) or a negative store_rc; functions
 * that return memory say who frees it; times are Unix seconds (int64_t). */
#ifndef STEWARD_STORE_H
#define STEWARD_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_rc {
    STORE_OK = 0,
    STORE_ERR = -1,         /* unexpected backend error (logged by the backend) */
    STORE_NOTFOUND = -2,    /* no such row */
    STORE_CONFLICT = -3,    /* uniqueness violated (duplicate command UUID, …) */
    STORE_UNAVAILABLE = -4, /* busy or unreachable; the caller answers 503 */
};

struct store;

/* dsn: "sqlite:/path/to/steward.db" (a bare path also means SQLite), or
 * PostgreSQL: "postgres://user@host:port/db?…" / "postgresql://…" (a libpq
 * URI) or "postgres:" followed by a libpq key=value conninfo.
 * Opens and applies migrations. On error returns a store_rc and sets *err
 * (malloc'd, caller frees). */
int store_open(const char *dsn, struct store **out, char **err);
void store_close(struct store *s); /* accepts NULL */
/* Cheap liveness check for /readyz. */
int store_ping(struct store *s);
/* How long a call may wait on another connection's lock before it returns
 * STORE_UNAVAILABLE (default 5000 ms). An I/O thread's connection sets 0: it
 * must never wait, and hands the request to a pool thread instead. STORE_ERR
 * where a call can wait on more than a lock (PostgreSQL's network round
 * trips), so no I/O thread uses such a backend. */
int store_set_lock_wait(struct store *s, int ms);
#define STORE_LOCK_WAIT_MS 5000 /* the default */
/* Schema version after migrations. */
int store_schema_version(struct store *s);
/* "sqlite" or "postgres". */
const char *store_backend_name(struct store *s);
/* Whether dsn names a PostgreSQL database. */
int store_dsn_is_postgres(const char *dsn);

/* Transactions. Nested begin is an error. Every write function below is
 * atomic on its own; begin/commit group several. */
int store_begin(struct store *s);
int store_commit(struct store *s);
/* A transaction for reads only (one consistent snapshot, one set of locks
 * for several reads); end it with store_commit. Writing inside it may fail
 * with STORE_UNAVAILABLE: use store_begin to write. */
int store_begin_read(struct store *s);
int store_rollback(struct store *s);
/* Runs fn(arg, committed) once when the current transaction ends: committed
 * is 1 after its COMMIT succeeded, 0 when it was rolled back or failed.
 * Outside a transaction fn runs at once with 1. For effects the database
 * cannot undo (webhooks, notices) that must not leave for undone work: a
 * savepoint's caller registers them and the outermost commit sends them.
 * fn owns arg in both cases. STORE_ERR (out of memory; fn already ran with
 * 0) or STORE_OK. */
int store_after_commit(struct store *s, void (*fn)(void *arg, int committed), void *arg);

/* ---- enrollments ---------------------------------------------------------
 * id is the normalised enrollment id: UDID for the device channel, EnrollmentID
 * for User Enrollment, and "<device id>:<UserID or EnrollmentUserID>" for a
 * user channel. */

enum store_enrollment_status {
    ENROLLMENT_AUTHENTICATED = 1, /* Authenticate seen, no TokenUpdate yet */
    ENROLLMENT_ENROLLED = 2,      /* TokenUpdate seen: may be pushed to */
    ENROLLMENT_CHECKED_OUT = 3,   /* CheckOut seen, or unenrolled */
};

struct store_enrollment {
    char *id;
    char *parent_id;       /* user channel: the device channel's id; else NULL */
    char *type;            /* "Device", "User", "User Enrollment (Device)", "User Enrollment" */
    int status;            /* enum store_enrollment_status */
    char *udid;            /* may be NULL (User Enrollment) */
    char *enrollment_id;   /* User Enrollment's EnrollmentID, else NULL */
    char *user_id;         /* UserID / EnrollmentUserID for user channels */
    char *user_short_name;
    char *user_long_name;
    char *topic;
    char *serial_number;
    char *os_version;
    char *build_version;
    char *product_name;
    char *model;
    char *model_name;
    char *device_name;
    char *imei;
    char *meid;
    char *token_hex;       /* APNs token as lowercase hex */
    char *push_magic;
    uint8_t *unlock_token; /* may be NULL */
    size_t unlock_token_len;
    int awaiting_configuration;
    char *cert_fp;         /* SHA-256 hex of the bound identity certificate */
    int64_t created_at;
    int64_t authenticated_at;
    int64_t enrolled_at;      /* first TokenUpdate after the last Authenticate */
    int64_t token_updated_at;
    int64_t last_seen_at;
    int64_t checked_out_at;
};

/* Frees the struct and every field; accepts NULL. */
void store_enrollment_free(struct store_enrollment *e);

/* Authenticate: inserts or updates the enrollment from e (id required; NULL
 * fields leave stored values as they are), sets status AUTHENTICATED, clears
 * token, push magic, unlock token and bootstrap token (a fresh enrollment),
 * and binds e->cert_fp when not NULL. */
int store_enrollment_authenticate(struct store *s, const struct store_enrollment *e, int64_t now);

/* TokenUpdate: inserts (user channels have no Authenticate) or updates; copies
 * the non-NULL fields of e (token_hex, push_magic, unlock_token, user names,
 * awaiting_configuration always); status ENROLLED; enrolled_at set when the
 * enrollment was not ENROLLED before. *first is set to 1 when this
 * TokenUpdate completed the enrollment. */
int store_enrollment_token_update(struct store *s, const struct store_enrollment *e, int64_t now,
                                  int *first);

/* CheckOut: status CHECKED_OUT for id and its user channels. NOTFOUND if unknown. */
int store_enrollment_checkout(struct store *s, const char *id, int64_t now);

/* Loads one enrollment (caller frees with store_enrollment_free). */
int store_enrollment_get(struct store *s, const char *id, struct store_enrollment **out);

/* Records that the enrollment was seen now (any authenticated request).
 * Writes at most once per STORE_TOUCH_INTERVAL seconds per enrollment: a
 * device draining its queue makes many requests a second, and each write
 * would cost a WAL frame. NOTFOUND when unknown or when the stored time is
 * recent enough. */
#define STORE_TOUCH_INTERVAL 30
int store_enrollment_touch(struct store *s, const char *id, int64_t now);

/* The enrollment (not CHECKED_OUT) bound to a certificate fingerprint.
 * *id_out is malloc'd (caller frees). NOTFOUND when none. */
int store_enrollment_by_cert(struct store *s, const char *cert_fp, char **id_out);

struct store_enrollment_filter {
    const char *search;   /* substring of id, serial number, device name, or NULL */
    const char *serial_number;
    int status;           /* 0 = any */
    int64_t limit;        /* 0 = 100 */
    int64_t offset;
};

/* Lists enrollments ordered by id. *out is a malloc'd array of *n pointers
 * (free with store_enrollment_list_free). *total (may be NULL) counts all
 * matching rows regardless of limit/offset. */
int store_enrollment_list(struct store *s, const struct store_enrollment_filter *f,
                          struct store_enrollment ***out, size_t *n, int64_t *total);
void store_enrollment_list_free(struct store_enrollment **list, size_t n);

/* Bootstrap token (SetBootstrapToken / GetBootstrapToken). data NULL removes it.
 * get returns NOTFOUND when none; *out malloc'd. */
int store_bootstrap_token_set(struct store *s, const char *id, const uint8_t *data, size_t len);
int store_bootstrap_token_get(struct store *s, const char *id, uint8_t **out, size_t *len);

/* ---- commands and the per-enrollment queue --------------------------------
 * A command row holds the payload once; a queue row per target enrollment
 * points at it. One command to many devices never copies the payload. */

/* Stores a command. CONFLICT when the UUID exists. */
int store_command_create(struct store *s, const char *uuid, const char *request_type,
                         const uint8_t *payload, size_t len, int64_t now);

/* Queues an existing command for an enrollment. NOTFOUND when either is
 * unknown; CONFLICT when already queued for it. */
int store_queue_add(struct store *s, const char *enrollment_id, const char *uuid, int64_t now);

struct store_command {
    char *uuid;
    char *request_type;
    uint8_t *payload; /* the full command plist as stored */
    size_t payload_len;
};
void store_command_free(struct store_command *c); /* accepts NULL */

/* The oldest command waiting for this enrollment: never answered, or (when
 * include_notnow) last answered NotNow. NOTFOUND when the queue is empty.
 * Marks it delivered (delivered_at, delivery count). A command past its
 * deadline (store_apps.h's command lifecycle) is never returned: the claim
 * marks it Expired when it meets it and takes the next (the periodic sweep,
 * store_queue_expire_due, marks the others). */
int store_queue_next(struct store *s, const char *enrollment_id, int include_notnow, int64_t now,
                     struct store_command **out);

/* Whether anything waits for this enrollment (as store_queue_next would
 * find it), by a read alone: an Idle with an empty queue, the common case,
 * then needs no write transaction. */
int store_queue_waiting(struct store *s, const char *enrollment_id, int include_notnow,
                        int *waiting);

/* A device's report on a command: stores a result row (status, raw response
 * plist) and updates the queue row: NotNow keeps it waiting, any other status
 * completes it. NOTFOUND when the command is not queued for this enrollment
 * (the result is still not stored then). */
int store_queue_report(struct store *s, const char *enrollment_id, const char *uuid,
                       const char *status, const uint8_t *raw, size_t raw_len, int64_t now);

/* A report and the next command (NotNow'd ones held back) in one call:
 * store_queue_report, then store_queue_next, in one statement on
 * PostgreSQL (one round trip for the pair). Atomic by itself: it needs no
 * transaction of the caller's (SQLite's pair runs in its own, or in a
 * savepoint of the caller's). *reported (may be NULL) gets
 * the reported command (uuid, type, payload; caller frees) when the report
 * was stored, *next the next command or NULL when nothing waits. Returns the
 * report's STORE_OK or STORE_NOTFOUND (the next command is served either
 * way), or an error (then nothing is returned). */
int store_queue_report_next(struct store *s, const char *enrollment_id, const char *uuid,
                            const char *status, const uint8_t *raw, size_t raw_len, int64_t now,
                            struct store_command **reported, struct store_command **next);

/* A device's report with the common case of its identity check done by
 * the same call (on PostgreSQL the same statement, so a report needs no
 * read before it): the binding enrollment not checked out, cert_fp the
 * certificate bound to it and not revoked (store_checkin_peek's rule). */
struct store_inv_device; /* store_inventory.h, included below */
struct store_report_check {
    const char *binding_id; /* the enrollment the certificate binds (the device channel) */
    const char *cert_fp;
    /* in, may be NULL: RequestTypes (comma-separated) whose report needs
     * more work in the same transaction; a report of one of them is not
     * stored (chk->follow). With it set, *reported may come back without
     * its payload (the caller wants none: nothing follows the report). */
    const char *follow_types;
    /* in, may be NULL: a DeviceInformation answer's filterable row. On
     * PostgreSQL, inside the caller's transaction, the same statement writes
     * it when the command reported is an Acknowledged DeviceInformation, and
     * reads the device's stored values ahead for the handler's
     * store_inventory_device_set_and_read (one round trip fewer); elsewhere
     * it is not used. The row then stays written should the handler's
     * savepoint be undone: it is the same answer's. When this handle
     * delivered the command and it is a DeviceInformation (its type
     * remembered), the command is not read: *reported comes back without
     * its payload. */
    const struct store_inv_device *device;
    int ok;                 /* out: the rule held (else nothing was written) */
    int follow;             /* out: the command is of a follow type (nothing was written) */
    int64_t last_seen;      /* out: enrollment_id's last_seen_at; 0 when never or unknown */
    int policies;           /* out: a compliance policy is enabled */
};
/* store_queue_report_next when chk holds; when it does not (chk->ok 0), or
 * the command is of one of chk->follow_types (chk->follow 1), nothing is
 * written or returned (NOTFOUND) and the caller applies the full identity
 * rules, or stores the report in a transaction with what follows it. */
int store_queue_report_next_checked(struct store *s, struct store_report_check *chk,
                                    const char *enrollment_id, const char *uuid,
                                    const char *status, const uint8_t *raw, size_t raw_len,
                                    int64_t now, struct store_command **reported,
                                    struct store_command **next);
/* 1 when store_queue_report_next_checked is one statement, atomic without a
 * transaction around it and worth calling so (PostgreSQL: one round trip
 * instead of two, the statement carrying BEGIN and then COMMIT); elsewhere
 * it is several statements that need the caller's transaction. */
int store_reports_standalone(struct store *s);

/* What a device's request on the command endpoint needs before anything
 * else, read by one statement outside any transaction (one round trip on
 * PostgreSQL): the binding enrollment's status and whether cert_fp is the
 * certificate bound to it, whether that certificate is revoked, the
 * last-seen time of the enrollment the request is for, and (want_waiting)
 * whether anything waits for it, NotNow'd commands included. For a report
 * (report_uuid set), also whether any compliance policy is enabled (the
 * inventory update its answer brings evaluates compliance only then). */
struct store_checkin_peek {
    int status;           /* the binding enrollment's enum store_enrollment_status */
    int cert_bound;       /* cert_fp is the one bound to it */
    int cert_revoked;     /* cert_fp is a certificate of ours, revoked */
    int64_t last_seen;    /* enrollment_id's last_seen_at; 0 when never or unknown */
    int waiting;          /* want_waiting and a command waits for enrollment_id */
    int policies;         /* report_uuid set and a compliance policy is enabled */
};
/* NOTFOUND when the binding enrollment is unknown. */
int store_checkin_peek(struct store *s, const char *binding_id, const char *enrollment_id,
                       const char *cert_fp, int want_waiting, const char *report_uuid,
                       struct store_checkin_peek *out);

struct store_queue_item {
    char *uuid;
    char *request_type;
    char *status;          /* "Pending", "NotNow", "Acknowledged", "Error", "CommandFormatError", "Canceled" */
    int64_t created_at;
    int64_t delivered_at;  /* 0 = never sent */
    int64_t updated_at;    /* last report */
    int delivery_count;
    uint8_t *result;       /* the last report's raw plist, or NULL */
    size_t result_len;
};
void store_queue_items_free(struct store_queue_item *items, size_t n);

/* The queue and the history of an enrollment, newest first, at most limit
 * (0 = 100). *items malloc'd. */
int store_queue_list(struct store *s, const char *enrollment_id, int64_t limit,
                     struct store_queue_item **items, size_t *n);

/* Removes a waiting command (never answered, or NotNow) from an enrollment's
 * queue. NOTFOUND when it is not waiting there. */
int store_queue_cancel(struct store *s, const char *enrollment_id, const char *uuid, int64_t now);

/* Commands waiting across all enrollments (for /metrics). */
int store_queue_depth(struct store *s, int64_t *depth);

/* ---- events (an append-only record of what happened to an enrollment) --- */
int store_event_add(struct store *s, const char *enrollment_id, const char *type,
                    const char *detail, int64_t now);

/* ---- API keys (stored as SHA-256 hex of the secret) ----------------------- */
int store_apikey_add(struct store *s, const char *name, const char *hash, const char *role,
                     int64_t now);
/* *name and *role malloc'd (caller frees); NOTFOUND when no key has this hash. */
int store_apikey_lookup(struct store *s, const char *hash, char **name, char **role);

/* ---- certificates and challenges ------------------------------------------
 * The record of every certificate steward's CA issued (or was asked for), and
 * the one-time SCEP challenges. Used by core/certs.c. A certificate is
 * identified by its serial (lowercase hex of the serial's magnitude, no
 * leading zero bytes); a pending request already has its serial, and gets its
 * fingerprint and DER when approved. */

struct store_cert {
    char *serial_hex;
    char *subject;        /* RFC 2253 text of the subject */
    char *fingerprint;    /* SHA-256 hex of the DER; NULL while pending or rejected */
    int64_t not_before;   /* 0 while pending or rejected */
    int64_t not_after;
    char *enrollment_id;  /* the enrollment it serves; NULL until known */
    char *status;         /* "pending", "issued", "rejected", "revoked" */
    int64_t revoked_at;   /* 0 unless revoked */
    char *revoke_reason;  /* operator's text, may be NULL */
    char *transaction_id; /* SCEP transactionID, may be NULL */
    char *renewed_from;   /* fingerprint of the certificate this one renews, or NULL */
    uint8_t *der;         /* the certificate; NULL while pending or rejected */
    size_t der_len;
    uint8_t *csr;         /* the CSR (DER) of a pending request, else NULL */
    size_t csr_len;
    int64_t created_at;
};
void store_cert_free(struct store_cert *c); /* accepts NULL */

/* Stores a record (serial_hex, subject, status and created_at required).
 * CONFLICT when the serial or fingerprint exists. */
int store_cert_add(struct store *s, const struct store_cert *c);

/* Loads one record (caller frees with store_cert_free); NOTFOUND when none.
 * By transaction id: the newest record with that id. */
int store_cert_get_by_fingerprint(struct store *s, const char *fp, struct store_cert **out);
/* Just the status of the certificate with this fingerprint (the check every
 * device request makes); NOTFOUND when it is not one of ours. */
int store_cert_status(struct store *s, const char *fp, char status[16]);
int store_cert_get_by_serial(struct store *s, const char *serial_hex, struct store_cert **out);
int store_cert_get_by_transaction(struct store *s, const char *transaction_id,
                                  struct store_cert **out);

struct store_cert_filter {
    const char *status;        /* exact status, or NULL for any */
    int64_t expiring_before;   /* 0 = any; else only not_after < this (and set) */
    int64_t valid_at;          /* 0 = any; else only not_after > this (unexpired) */
    const char *enrollment_id; /* exact enrollment, or NULL */
    int64_t limit;             /* 0 = 100; negative = no limit */
    int64_t offset;
};

/* Lists records newest first (created_at, then serial). Listed records carry
 * no der or csr (NULL): load one by serial for those. *out is a malloc'd
 * array of *n pointers (free with store_cert_list_free); *total (may be NULL)
 * counts every matching row regardless of limit/offset. */
int store_cert_list(struct store *s, const struct store_cert_filter *f, struct store_cert ***out,
                    size_t *n, int64_t *total);
void store_cert_list_free(struct store_cert **list, size_t n);

/* issued -> revoked, stamping revoked_at and the reason (may be NULL).
 * NOTFOUND when the serial is unknown, CONFLICT when it is not issued
 * (already revoked, pending or rejected). */
int store_cert_revoke(struct store *s, const char *serial_hex, const char *reason, int64_t now);
/* pending -> issued with the certificate now made for it (clears the CSR).
 * NOTFOUND when unknown, CONFLICT when not pending (e.g. approved or rejected
 * meanwhile). */
int store_cert_approve(struct store *s, const char *serial_hex, const char *fingerprint,
                       const uint8_t *der, size_t der_len, int64_t not_before, int64_t not_after);
/* pending -> rejected. NOTFOUND when unknown, CONFLICT when not pending. */
int store_cert_reject(struct store *s, const char *serial_hex, int64_t now);
/* Records which enrollment a certificate serves. NOTFOUND when no record has
 * this fingerprint (a certificate from another CA). */
int store_cert_set_enrollment(struct store *s, const char *fp, const char *enrollment_id);

/* Challenges are stored as the SHA-256 hex of the clear text. */
int store_challenge_add(struct store *s, const char *hash, const char *created_for, int64_t now,
                        int64_t expires_at);

/* Why a challenge could not be consumed, beside NOTFOUND (unknown hash). */
enum store_challenge_rc {
    STORE_CHALLENGE_EXPIRED = -10,
    STORE_CHALLENGE_USED = -11,
};
/* Marks a challenge used, atomically: one caller wins. STORE_OK, NOTFOUND
 * (unknown), STORE_CHALLENGE_EXPIRED (expires_at <= now) or
 * STORE_CHALLENGE_USED (consumed before), or a store_rc on failure. */
int store_challenge_consume(struct store *s, const char *hash, int64_t now);

/* Moves an enrollment's certificate binding from old_fp to new_fp, only when
 * it is still bound to old_fp (compare-and-set). NOTFOUND when the
 * enrollment is unknown, CONFLICT when it is bound to something else. */
int store_enrollment_rebind(struct store *s, const char *id, const char *old_fp,
                            const char *new_fp);

/* The areas built on sql.h, one header each so they grow apart. */
#include "store/store_apps.h"
#include "store/store_compliance.h"
#include "store/store_enroll.h"
#include "store/store_inventory.h"
#include "store/store_jobs.h"
#include "store/store_ops.h"
#include "store/store_pki.h"
#include "store/store_profiles.h"
#include "store/store_push.h"

#endif
