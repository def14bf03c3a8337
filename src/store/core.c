/* core.c: store.h's enrollments, bootstrap tokens, commands and queue,
 * results, events, API keys, certificates and challenges, written once on
 * sql.h, so SQLite (sqlite.c) and PostgreSQL (pgsql.c) run the same SQL.
 * Called by core/ services and the front ends' store-backed helpers. Every
 * statement is static text, prepared once per connection on first use. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/inv_device_sql.h"
#include "store/sql.h"
#include "store/store.h"

#define DEFAULT_LIMIT 100

/* Statement ids index the SQL table below; sql.h's cache keys on the
 * address of each text. */
enum stmt_id {
    ST_ENR_AUTHENTICATE,
    ST_ENR_CLEAR_BOOTSTRAP,
    ST_ENR_STATUS,
    ST_ENR_TOKEN_UPDATE,
    ST_ENR_CHECKOUT,
    ST_ENR_CHECKOUT_USERS,
    ST_ENR_GET,
    ST_ENR_TOUCH,
    ST_ENR_BY_CERT,
    ST_ENR_LIST,
    ST_ENR_COUNT,
    ST_BOOT_SET,
    ST_BOOT_DELETE,
    ST_BOOT_GET,
    ST_CMD_CREATE,
    ST_QUEUE_ADD,
    ST_QUEUE_HAS,
    ST_QUEUE_CLAIM,
    ST_QUEUE_WAITING,
    ST_QUEUE_MARK,
    ST_QUEUE_REPORT_NEXT_PG,
    ST_QUEUE_REPORT_NEXT_KNOWN_PG,
    ST_QUEUE_REPORT_NEXT_DEVICE_PG,
    ST_QUEUE_REPORT_NEXT_DEVICE_KNOWN_PG,
    ST_CHECKIN_PEEK,
    ST_CHECKIN_PEEK_REPORT,
    ST_RESULT_ADD,
    ST_QUEUE_LIST,
    ST_QUEUE_CANCEL,
    ST_QUEUE_DEPTH,
    ST_EVENT_ADD,
    ST_APIKEY_ADD,
    ST_APIKEY_LOOKUP,
    ST_CERT_ADD,
    ST_CERT_BY_FP,
    ST_CERT_STATUS_BY_FP,
    ST_CERT_BY_SERIAL,
    ST_CERT_BY_TID,
    ST_CERT_LIST,
    ST_CERT_COUNT,
    ST_CERT_STATUS,
    ST_CERT_REVOKE,
    ST_CERT_APPROVE,
    ST_CERT_REJECT,
    ST_CERT_SET_ENROLLMENT,
    ST_CHAL_ADD,
    ST_CHAL_CONSUME,
    ST_CHAL_STATE,
    ST_ENR_REBIND,
    ST_COUNT
};

/* The device-reported columns both check-in upserts write, bound as ?2..?18
 * in this order (id is ?1). A NULL field keeps the stored value. */
#define DEVICE_COLS                                                                               \
    "parent_id, type, udid, enrollment_id, user_id, user_short_name, user_long_name, topic, "    \
    "serial_number, os_version, build_version, product_name, model, model_name, device_name, "   \
    "imei, meid"
#define DEVICE_PARAMS "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18"
#define KEEP(c) c " = COALESCE(excluded." c ", enrollments." c ")"
#define DEVICE_KEEP                                                                               \
    KEEP("parent_id") ", " KEEP("type") ", " KEEP("udid") ", " KEEP("enrollment_id") ", "         \
    KEEP("user_id") ", " KEEP("user_short_name") ", " KEEP("user_long_name") ", "                 \
    KEEP("topic") ", " KEEP("serial_number") ", " KEEP("os_version") ", "                         \
    KEEP("build_version") ", " KEEP("product_name") ", " KEEP("model") ", "                       \
    KEEP("model_name") ", " KEEP("device_name") ", " KEEP("imei") ", " KEEP("meid")

#define ENR_COLS                                                                                  \
    "id, " DEVICE_COLS ", status, token_hex, push_magic, unlock_token, awaiting_configuration, "  \
    "cert_fp, created_at, authenticated_at, enrolled_at, token_updated_at, last_seen_at, "        \
    "checked_out_at"

/* search (?1, a LIKE pattern or NULL, matched without regard to ASCII case
 * as SQLite's LIKE does and PostgreSQL's does not), serial number (?2),
 * status (?3). */
#define ENR_FILTER                                                                                \
    " WHERE (CAST(?1 AS TEXT) IS NULL OR lower(id) LIKE lower(?1) ESCAPE '\\'"                    \
    " OR lower(serial_number) LIKE lower(?1) ESCAPE '\\'"                                         \
    " OR lower(device_name) LIKE lower(?1) ESCAPE '\\')"                                          \
    " AND (CAST(?2 AS TEXT) IS NULL OR serial_number = ?2) AND (?3 = 0 OR status = ?3)"

#define CERT_COLS_BUT_BLOBS                                                                       \
    "serial, subject, fingerprint, COALESCE(not_before, 0), COALESCE(not_after, 0),"              \
    " enrollment_id, status, COALESCE(revoked_at, 0), revoke_reason, transaction_id,"             \
    " renewed_from, created_at"
#define CERT_COLS CERT_COLS_BUT_BLOBS ", der, csr"
#define CERT_LIST_COLS CERT_COLS_BUT_BLOBS ", NULL, NULL"

/* status (?1 or NULL), expiring before (?2, 0 = any), unexpired at (?3, 0 =
 * any), enrollment (?4 or NULL). */
#define CERT_FILTER                                                                               \
    " WHERE (CAST(?1 AS TEXT) IS NULL OR status = ?1)"                                                          \
    " AND (?2 = 0 OR (not_after IS NOT NULL AND not_after < ?2))"                                 \
    " AND (?3 = 0 OR not_after > ?3) AND (CAST(?4 AS TEXT) IS NULL OR enrollment_id = ?4)"

/* A queue row (alias t) still waiting to be sent (never sent, or NotNow'd)
 * whose command's deadline (?3) passed: store_apps.h's command lifecycle,
 * the condition the periodic sweep (store_queue_expire_due) uses. A row sent and not
 * answered is the device's now and never expires. */
#define QUEUE_EXPIRED_AT(t, now)                                                                  \
    "EXISTS (SELECT 1 FROM command_meta m WHERE m.uuid = " t ".command_uuid"                      \
    " AND m.expires_at <= " now " AND (" t ".delivered_at IS NULL OR " t ".status = 'NotNow'))"
#define QUEUE_EXPIRED(t) QUEUE_EXPIRED_AT(t, "?3")
/* A claim's change to the row h picked: delivered, or Expired when h found
 * its deadline passed. */
#define QUEUE_CLAIM_SET(now)                                                                      \
    "delivered_at = CASE WHEN h.expired <> 0 THEN queue.delivered_at ELSE " now " END,"           \
    " delivery_count = queue.delivery_count + CASE WHEN h.expired <> 0 THEN 0 ELSE 1 END,"       \
    " status = CASE WHEN h.expired <> 0 THEN 'Expired' ELSE queue.status END,"                    \
    " active = CASE WHEN h.expired <> 0 THEN 0 ELSE 1 END,"                                       \
    " updated_at = CASE WHEN h.expired <> 0 THEN " now " ELSE queue.updated_at END"

/* Identity binding, revocation, last seen and the queue in one read: the
 * Idle a fleet sends most is one statement and no transaction. */
#define CHECKIN_PEEK                                                                               \
    "SELECT e.status, CASE WHEN e.cert_fp = ?2 THEN 1 ELSE 0 END,"                                \
    " CASE WHEN EXISTS (SELECT 1 FROM certs WHERE fingerprint = ?2 AND status = 'revoked')"       \
    "  THEN 1 ELSE 0 END,"                                                                         \
    " CASE WHEN e.id = ?3 THEN COALESCE(e.last_seen_at, 0)"                                        \
    "  ELSE COALESCE((SELECT u.last_seen_at FROM enrollments u WHERE u.id = ?3), 0) END,"         \
    " CASE WHEN ?4 <> 0 AND EXISTS (SELECT 1 FROM queue q WHERE q.enrollment_id = ?3"             \
    "  AND q.active = 1 AND (q.status IS NULL OR q.status = 'NotNow')) THEN 1 ELSE 0 END"

/* PostgreSQL's report, in pieces for its three statements (below): the
 * identity check, the reported command's type checked against the follow
 * types, the report stored and the next command claimed (CTEs, gated on
 * the CTE named gate), the columns report_next_pg reads, and what they
 * come from. */
#define REPORT_OK_CTE                                                                              \
    "WITH ok AS (SELECT 1 WHERE ?8 = 0 OR EXISTS (SELECT 1 FROM enrollments e"                     \
    "  WHERE e.id = ?6 AND e.cert_fp = ?7 AND e.status <> 3" /* ENROLLMENT_CHECKED_OUT */          \
    "  AND NOT EXISTS (SELECT 1 FROM certs WHERE fingerprint = ?7 AND status = 'revoked'))),"
#define REPORT_FOLLOW_CTES                                                                         \
    /* t: the reported command, read once (the follow check, the answer) */                        \
    " t AS (SELECT uuid, request_type, payload FROM commands WHERE uuid = ?2),"                    \
    /* go: ok, and the command is not one of the follow types (?9) */                              \
    " go AS (SELECT 1 FROM ok WHERE CAST(?9 AS TEXT) IS NULL OR NOT EXISTS (SELECT 1"              \
    "  FROM t WHERE t.request_type = ANY (string_to_array(?9, ',')))),"
#define REPORT_WRITE_CTES(gate)                                                                    \
    " m AS (UPDATE queue SET status = ?3, updated_at = ?4,"                                        \
    "  active = CASE WHEN ?3 = 'NotNow' THEN 1 ELSE 0 END"                                         \
    "  WHERE enrollment_id = ?1 AND command_uuid = ?2 AND active = 1"                              \
    "  AND EXISTS (SELECT 1 FROM " gate ") RETURNING command_uuid),"                               \
    " r AS (INSERT INTO results (enrollment_id, command_uuid, status, raw, received_at)"           \
    "  SELECT ?1, command_uuid, ?3, ?5, ?4 FROM m),"                                               \
    " h AS (SELECT q.rowid AS id, CASE WHEN " QUEUE_EXPIRED_AT("q", "?4") " THEN 1 ELSE 0 END"     \
    "  AS expired FROM queue q WHERE q.enrollment_id = ?1 AND q.active = 1"                        \
    "  AND q.status IS NULL AND q.command_uuid <> ?2 AND EXISTS (SELECT 1 FROM " gate ")"          \
    "  ORDER BY q.created_at, q.rowid LIMIT 1),"                                                   \
    " n AS (UPDATE queue SET " QUEUE_CLAIM_SET("?4") " FROM h WHERE queue.rowid = h.id"            \
    "  RETURNING queue.command_uuid, h.expired)"
#define REPORT_NEXT_CTES REPORT_OK_CTE REPORT_FOLLOW_CTES REPORT_WRITE_CTES("go")
/* The next command, then identity held, last seen, policies (columns 3..9). */
#define REPORT_CLAIM_COLS                                                                          \
    " n.command_uuid, n.expired, nc.request_type, nc.payload, EXISTS (SELECT 1 FROM ok),"          \
    " COALESCE((SELECT u.last_seen_at FROM enrollments u WHERE u.id = ?1), 0),"                    \
    " EXISTS (SELECT 1 FROM compliance_policies WHERE enabled = 1)"
#define REPORT_NEXT_COLS                                                                           \
    "t.uuid, t.request_type, t.payload," REPORT_CLAIM_COLS ","                                     \
    " EXISTS (SELECT 1 FROM ok) AND NOT EXISTS (SELECT 1 FROM go)"
#define REPORT_NEXT_FROM                                                                           \
    "(SELECT 1) AS one"                                                                            \
    " LEFT JOIN m ON true LEFT JOIN t ON m.command_uuid IS NOT NULL"                               \
    " LEFT JOIN n ON true LEFT JOIN commands nc ON nc.uuid = n.command_uuid"
/* With the reported command's type known (?9): no lookup of the command,
 * which comes back as its uuid and that type, without its payload. */
#define REPORT_KNOWN_COLS "m.command_uuid, CAST(?9 AS TEXT), NULL," REPORT_CLAIM_COLS ", false"
#define REPORT_KNOWN_FROM                                                                          \
    "(SELECT 1) AS one LEFT JOIN m ON true LEFT JOIN n ON true"                                    \
    " LEFT JOIN commands nc ON nc.uuid = n.command_uuid"
/* A DeviceInformation answer's filterable row (?10..?21,
 * store_inventory_device_set's ?2..?13), written when the report stored is
 * an Acknowledged of a DeviceInformation (is_devinfo), and the device's
 * stored values and marks after it, one per row (what
 * store_inventory_device_set_and_read would read next). */
#define REPORT_DEVICE_CTE(is_devinfo)                                                              \
    " dv AS (INSERT INTO inv_device (" INV_DEVICE_COLS ") SELECT ?1, CAST(?10 AS TEXT),"           \
    "  CAST(?11 AS BIGINT), CAST(?12 AS TEXT), CAST(?13 AS TEXT), CAST(?14 AS TEXT),"              \
    "  CAST(?15 AS TEXT), CAST(?16 AS TEXT), CAST(?17 AS TEXT), CAST(?18 AS BIGINT),"              \
    "  CAST(?19 AS BIGINT), CAST(?20 AS BIGINT), CAST(?21 AS BIGINT), ?4"                          \
    "  WHERE ?3 = 'Acknowledged' AND EXISTS (SELECT 1 FROM m) AND " is_devinfo                     \
    INV_DEVICE_UPSERT " RETURNING 1)"
#define REPORT_DEVICE_COLS ", EXISTS (SELECT 1 FROM dv), v.section, v.name, v.type, v.value"
#define REPORT_DEVICE_JOIN                                                                         \
    " LEFT JOIN inv_values v ON v.enrollment_id = ?1 AND v.section IN ('device', 'reported')"     \
    " AND EXISTS (SELECT 1 FROM dv)"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_ENR_AUTHENTICATE] =
        "INSERT INTO enrollments (id, " DEVICE_COLS ", status, awaiting_configuration, cert_fp,"
        " created_at, authenticated_at)"
        " VALUES (?1, " DEVICE_PARAMS ", 1, ?19, ?20, ?21, ?21)"
        " ON CONFLICT (id) DO UPDATE SET " DEVICE_KEEP ", status = 1, token_hex = NULL,"
        " push_magic = NULL, unlock_token = NULL,"
        " awaiting_configuration = excluded.awaiting_configuration, " KEEP("cert_fp") ","
        " authenticated_at = excluded.authenticated_at, enrolled_at = NULL",
    [ST_ENR_CLEAR_BOOTSTRAP] = "DELETE FROM bootstrap_tokens WHERE enrollment_id = ?1",
    [ST_ENR_STATUS] = "SELECT status FROM enrollments WHERE id = ?1",
    [ST_ENR_TOKEN_UPDATE] =
        "INSERT INTO enrollments (id, " DEVICE_COLS ", status, token_hex, push_magic, unlock_token,"
        " awaiting_configuration, created_at, enrolled_at, token_updated_at)"
        " VALUES (?1, " DEVICE_PARAMS ", 2, ?19, ?20, ?21, ?22, ?23, ?23, ?23)"
        " ON CONFLICT (id) DO UPDATE SET " DEVICE_KEEP ", " KEEP("token_hex") ", "
        KEEP("push_magic") ", " KEEP("unlock_token") ","
        " awaiting_configuration = excluded.awaiting_configuration, status = 2,"
        " enrolled_at = CASE WHEN enrollments.status = 2 THEN enrollments.enrolled_at"
        " ELSE excluded.enrolled_at END,"
        " token_updated_at = excluded.token_updated_at",
    [ST_ENR_CHECKOUT] = "UPDATE enrollments SET status = 3, checked_out_at = ?2 WHERE id = ?1",
    /* User channels are "<id>:<user>": every id in [id || ':', id || ';') in
     * binary order, a range that needs no LIKE escaping of the device id. */
    [ST_ENR_CHECKOUT_USERS] =
        "UPDATE enrollments SET status = 3, checked_out_at = ?2"
        " WHERE (id > ?1 || ':' AND id < ?1 || ';') OR parent_id = ?1",
    [ST_ENR_GET] = "SELECT " ENR_COLS " FROM enrollments WHERE id = ?1",
    [ST_ENR_TOUCH] = "UPDATE enrollments SET last_seen_at = ?2 WHERE id = ?1"
                     " AND (last_seen_at IS NULL OR last_seen_at <= ?2 - ?3)",
    /* A device channel outranks a user channel carrying the same fingerprint,
     * then the most recent Authenticate wins. */
    [ST_ENR_BY_CERT] = "SELECT id FROM enrollments WHERE cert_fp = ?1 AND status <> 3"
                       " ORDER BY parent_id IS NULL DESC, authenticated_at DESC LIMIT 1",
    [ST_ENR_LIST] = "SELECT " ENR_COLS " FROM enrollments" ENR_FILTER
                    " ORDER BY id LIMIT ?4 OFFSET ?5",
    [ST_ENR_COUNT] = "SELECT count(*) FROM enrollments" ENR_FILTER,
    [ST_BOOT_SET] = "INSERT INTO bootstrap_tokens (enrollment_id, token) VALUES (?1, ?2)"
                    " ON CONFLICT (enrollment_id) DO UPDATE SET token = excluded.token",
    [ST_BOOT_DELETE] = "DELETE FROM bootstrap_tokens WHERE enrollment_id = ?1",
    [ST_BOOT_GET] = "SELECT token FROM bootstrap_tokens WHERE enrollment_id = ?1",
    [ST_CMD_CREATE] = "INSERT INTO commands (uuid, request_type, payload, created_at)"
                      " VALUES (?1, ?2, ?3, ?4)",
    /* Already queued is no error inside the caller's transaction (which
     * PostgreSQL would abort): no row changes, and the caller says CONFLICT.
     * The queue has no foreign keys (migration 14): the row is made only
     * from an existing enrollment and command, else no row changes either. */
    [ST_QUEUE_ADD] = "INSERT INTO queue (enrollment_id, command_uuid, created_at)"
                     " SELECT e.id, c.uuid, ?3 FROM enrollments e, commands c"
                     " WHERE e.id = ?1 AND c.uuid = ?2"
                     " ON CONFLICT (enrollment_id, command_uuid) DO NOTHING",
    [ST_QUEUE_HAS] = "SELECT 1 FROM queue WHERE command_uuid = ?2 AND enrollment_id = ?1",
    /* Oldest waiting row first; rowid breaks created_at ties in insertion
     * order, and the queue_device index already holds rows in that order. A
     * row still waiting to be sent whose command's deadline passed
     * (command_meta, migration 7) is marked Expired instead of delivered,
     * and the caller claims again: an expired command is never sent. The
     * statement returns the command as well (one round trip on PostgreSQL). */
    [ST_QUEUE_CLAIM] =
        "UPDATE queue SET " QUEUE_CLAIM_SET("?3")
        " FROM (SELECT q.rowid AS id, CASE WHEN " QUEUE_EXPIRED("q") " THEN 1 ELSE 0 END AS expired"
        "  FROM queue q WHERE q.enrollment_id = ?1 AND q.active = 1"
        "  AND (q.status IS NULL OR (?2 <> 0 AND q.status = 'NotNow'))"
        "  ORDER BY q.created_at, q.rowid LIMIT 1) AS h"
        " WHERE queue.rowid = h.id"
        " RETURNING command_uuid, CASE WHEN status = 'Expired' THEN 1 ELSE 0 END,"
        " (SELECT c.request_type FROM commands c WHERE c.uuid = queue.command_uuid),"
        " (SELECT c.payload FROM commands c WHERE c.uuid = queue.command_uuid)",
    [ST_QUEUE_WAITING] =
        "SELECT 1 FROM queue WHERE enrollment_id = ?1 AND active = 1"
        " AND (status IS NULL OR (?2 <> 0 AND status = 'NotNow')) LIMIT 1",
    [ST_QUEUE_MARK] =
        "UPDATE queue SET status = ?3, updated_at = ?4,"
        " active = CASE WHEN ?3 = 'NotNow' THEN 1 ELSE 0 END"
        " WHERE enrollment_id = ?1 AND command_uuid = ?2 AND active = 1"
        " RETURNING (SELECT c.request_type FROM commands c WHERE c.uuid = queue.command_uuid),"
        " (SELECT c.payload FROM commands c WHERE c.uuid = queue.command_uuid)",
    /* PostgreSQL: a report (ST_QUEUE_MARK and ST_RESULT_ADD, which SQLite
     * runs in a savepoint) and then ST_QUEUE_CLAIM (NotNow'd rows held back)
     * in one statement, atomic by itself, returning the reported command (NULL
     * uuid: not queued for the enrollment, nothing stored) and the claimed
     * one. Every part sees the statement's one snapshot, where the reported
     * row still looks unanswered: the claim leaves it out by its uuid, which
     * is what running the two in turn gives (answered, or NotNow'd, it is
     * not deliverable in this exchange). A claimed row found expired is
     * marked so, and the caller claims again. */
    /* With ?8 = 1 the statement first checks the request's identity the
     * way the check-in peek does (binding enrollment ?6 not checked out,
     * certificate ?7 bound to it and not revoked) and changes nothing unless
     * it holds; it also returns that, the last-seen time of ?1 and whether
     * a compliance policy is enabled: a report is then one round trip with
     * no peek before it. */
    [ST_QUEUE_REPORT_NEXT_PG] =
        REPORT_NEXT_CTES " SELECT " REPORT_NEXT_COLS " FROM " REPORT_NEXT_FROM,
    /* The same when the reported command's type (?9) is known and not a
     * follow type (store/cmd_types.c), and so never follows. */
    [ST_QUEUE_REPORT_NEXT_KNOWN_PG] =
        REPORT_OK_CTE REPORT_WRITE_CTES("ok") " SELECT " REPORT_KNOWN_COLS " FROM " REPORT_KNOWN_FROM,
    /* The same for a DeviceInformation answer, with its row (REPORT_DEVICE_CTE). */
    [ST_QUEUE_REPORT_NEXT_DEVICE_PG] =
        REPORT_NEXT_CTES ","
        REPORT_DEVICE_CTE("EXISTS (SELECT 1 FROM t WHERE t.request_type = 'DeviceInformation')")
        " SELECT " REPORT_NEXT_COLS REPORT_DEVICE_COLS " FROM " REPORT_NEXT_FROM REPORT_DEVICE_JOIN,
    /* … and when the command is known to be a DeviceInformation (?9). */
    [ST_QUEUE_REPORT_NEXT_DEVICE_KNOWN_PG] =
        REPORT_OK_CTE REPORT_WRITE_CTES("ok") "," REPORT_DEVICE_CTE("true")
        " SELECT " REPORT_KNOWN_COLS REPORT_DEVICE_COLS " FROM " REPORT_KNOWN_FROM REPORT_DEVICE_JOIN,
    [ST_CHECKIN_PEEK] = CHECKIN_PEEK " FROM enrollments e WHERE e.id = ?1",
    /* For a report, also whether compliance has work. A statement of its
     * own: the Idle a fleet sends most does not set up the subquery. */
    [ST_CHECKIN_PEEK_REPORT] =
        CHECKIN_PEEK ", CASE WHEN EXISTS (SELECT 1 FROM compliance_policies WHERE enabled = 1)"
        " THEN 1 ELSE 0 END FROM enrollments e WHERE e.id = ?1",
    [ST_RESULT_ADD] = "INSERT INTO results (enrollment_id, command_uuid, status, raw, received_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)",
    /* The device's rows are two ranges of queue_device: active is 0 or 1. */
    [ST_QUEUE_LIST] =
        "SELECT q.command_uuid, c.request_type, COALESCE(q.status, 'Pending'), q.created_at,"
        " COALESCE(q.delivered_at, 0), COALESCE(q.updated_at, 0), q.delivery_count,"
        " (SELECT r.raw FROM results r WHERE r.enrollment_id = q.enrollment_id"
        "  AND r.command_uuid = q.command_uuid ORDER BY r.id DESC LIMIT 1)"
        " FROM queue q JOIN commands c ON c.uuid = q.command_uuid"
        " WHERE q.active IN (0, 1) AND q.enrollment_id = ?1"
        " ORDER BY q.created_at DESC, q.rowid DESC LIMIT ?2",
    [ST_QUEUE_CANCEL] =
        "DELETE FROM queue WHERE enrollment_id = ?1 AND command_uuid = ?2 AND active = 1",
    [ST_QUEUE_DEPTH] = "SELECT count(*) FROM queue WHERE active = 1",
    [ST_EVENT_ADD] = "INSERT INTO events (enrollment_id, type, detail, created_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [ST_APIKEY_ADD] = "INSERT INTO api_keys (hash, name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
    [ST_APIKEY_LOOKUP] = "SELECT name, role FROM api_keys WHERE hash = ?1",
    /* Times that do not apply yet (a pending request's validity, revoked_at
     * of a live certificate) are stored as NULL, read back as 0. */
    [ST_CERT_ADD] =
        "INSERT INTO certs (serial, fingerprint, subject, not_before, not_after, enrollment_id,"
        " status, revoked_at, revoke_reason, transaction_id, renewed_from, der, csr, created_at)"
        " VALUES (?1, ?2, ?3, NULLIF(?4, 0), NULLIF(?5, 0), ?6, ?7, NULLIF(?8, 0), ?9, ?10, ?11,"
        " ?12, ?13, ?14)",
    [ST_CERT_BY_FP] = "SELECT " CERT_COLS " FROM certs WHERE fingerprint = ?1",
    [ST_CERT_STATUS_BY_FP] = "SELECT status FROM certs WHERE fingerprint = ?1",
    [ST_CERT_BY_SERIAL] = "SELECT " CERT_COLS " FROM certs WHERE serial = ?1",
    /* A client may reuse a transaction id (a retried request); the newest
     * record is the one it is waiting for. */
    [ST_CERT_BY_TID] = "SELECT " CERT_COLS " FROM certs WHERE transaction_id = ?1"
                       " ORDER BY created_at DESC, rowid DESC LIMIT 1",
    [ST_CERT_LIST] = "SELECT " CERT_LIST_COLS " FROM certs" CERT_FILTER
                     " ORDER BY created_at DESC, serial DESC LIMIT ?5 OFFSET ?6",
    [ST_CERT_COUNT] = "SELECT count(*) FROM certs" CERT_FILTER,
    [ST_CERT_STATUS] = "SELECT status FROM certs WHERE serial = ?1",
    [ST_CERT_REVOKE] = "UPDATE certs SET status = 'revoked', revoked_at = ?2, revoke_reason = ?3"
                       " WHERE serial = ?1 AND status = 'issued'",
    [ST_CERT_APPROVE] =
        "UPDATE certs SET status = 'issued', fingerprint = ?2, der = ?3, not_before = ?4,"
        " not_after = ?5, csr = NULL WHERE serial = ?1 AND status = 'pending'",
    [ST_CERT_REJECT] = "UPDATE certs SET status = 'rejected', csr = NULL"
                       " WHERE serial = ?1 AND status = 'pending'",
    [ST_CERT_SET_ENROLLMENT] = "UPDATE certs SET enrollment_id = ?2 WHERE fingerprint = ?1",
    [ST_CHAL_ADD] = "INSERT INTO challenges (hash, created_for, created_at, expires_at)"
                    " VALUES (?1, ?2, ?3, ?4)",
    /* One UPDATE both checks and consumes, so two requests racing with the
     * same challenge cannot both win. */
    [ST_CHAL_CONSUME] = "UPDATE challenges SET used_at = ?2"
                        " WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
    [ST_CHAL_STATE] = "SELECT CASE WHEN used_at IS NULL THEN 0 ELSE 1 END FROM challenges"
                      " WHERE hash = ?1",
    [ST_ENR_REBIND] = "UPDATE enrollments SET cert_fp = ?3 WHERE id = ?1 AND cert_fp = ?2",
};


static struct sql_stmt *prep(struct store *s, enum stmt_id id, const char *op, int *rc)
{
    return sql_prepare(s, stmt_sql[id], op, rc);
}

/* ---- enrollments ------------------------------------------------------------ */

void store_enrollment_free(struct store_enrollment *e)
{
    if (!e)
        return;
    char **texts[] = {
        &e->id, &e->parent_id, &e->type, &e->udid, &e->enrollment_id, &e->user_id,
        &e->user_short_name, &e->user_long_name, &e->topic, &e->serial_number, &e->os_version,
        &e->build_version, &e->product_name, &e->model, &e->model_name, &e->device_name,
        &e->imei, &e->meid, &e->token_hex, &e->push_magic, &e->cert_fp,
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        free(*texts[i]);
    free(e->unlock_token);
    free(e);
}

/* Binds id (?1) and the DEVICE_COLS fields (?2..?18). */
static void bind_device(struct sql_stmt *st, const struct store_enrollment *e, int *code)
{
    const char *fields[] = {
        e->id, e->parent_id, e->type, e->udid, e->enrollment_id, e->user_id,
        e->user_short_name, e->user_long_name, e->topic, e->serial_number, e->os_version,
        e->build_version, e->product_name, e->model, e->model_name, e->device_name, e->imei,
        e->meid,
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        sql_bind_text(st, (int)i + 1, fields[i], code);
}

static int authenticate_upsert(struct store *s, const struct store_enrollment *e, int64_t now)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_AUTHENTICATE, "enrollment_authenticate", &rc);
    if (!st)
        return rc;
    int code = 0;
    bind_device(st, e, &code);
    sql_bind_int(st, 19, e->awaiting_configuration ? 1 : 0, &code);
    sql_bind_text(st, 20, e->cert_fp, &code);
    sql_bind_int(st, 21, now, &code);
    return sql_exec(s, st, "enrollment_authenticate", code);
}

static int clear_bootstrap(struct store *s, const char *id)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_CLEAR_BOOTSTRAP, "enrollment_authenticate", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    return sql_exec(s, st, "enrollment_authenticate", code);
}

int store_enrollment_authenticate(struct store *s, const struct store_enrollment *e, int64_t now)
{
    if (!e || !e->id)
        return STORE_ERR;
    int nested = 0;
    int rc = sql_atomic_begin(s, "enrollment_authenticate", &nested);
    if (rc != STORE_OK)
        return rc;
    rc = authenticate_upsert(s, e, now);
    if (rc == STORE_OK)
        rc = clear_bootstrap(s, e->id);
    return sql_atomic_end(s, nested, rc, "enrollment_authenticate");
}

/* *status receives 0 when the enrollment does not exist. */
static int enrollment_status(struct store *s, const char *id, int *status, const char *op)
{
    *status = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_STATUS, op, &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, op, code);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    *status = (int)sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

static int token_update_upsert(struct store *s, const struct store_enrollment *e, int64_t now)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_TOKEN_UPDATE, "enrollment_token_update", &rc);
    if (!st)
        return rc;
    int code = 0;
    bind_device(st, e, &code);
    sql_bind_text(st, 19, e->token_hex, &code);
    sql_bind_text(st, 20, e->push_magic, &code);
    sql_bind_blob(st, 21, e->unlock_token, e->unlock_token_len, &code);
    sql_bind_int(st, 22, e->awaiting_configuration ? 1 : 0, &code);
    sql_bind_int(st, 23, now, &code);
    return sql_exec(s, st, "enrollment_token_update", code);
}

int store_enrollment_token_update(struct store *s, const struct store_enrollment *e, int64_t now,
                                  int *first)
{
    if (first)
        *first = 0;
    if (!e || !e->id)
        return STORE_ERR;
    int nested = 0;
    int rc = sql_atomic_begin(s, "enrollment_token_update", &nested);
    if (rc != STORE_OK)
        return rc;
    int before = 0;
    rc = enrollment_status(s, e->id, &before, "enrollment_token_update");
    if (rc == STORE_OK)
        rc = token_update_upsert(s, e, now);
    rc = sql_atomic_end(s, nested, rc, "enrollment_token_update");
    if (rc == STORE_OK && first)
        *first = before != ENROLLMENT_ENROLLED;
    return rc;
}

static int checkout_stmt(struct store *s, enum stmt_id id, const char *eid, int64_t now,
                         int *changed)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, id, "enrollment_checkout", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, eid, &code);
    sql_bind_int(st, 2, now, &code);
    rc = sql_exec(s, st, "enrollment_checkout", code);
    *changed = rc == STORE_OK ? sql_changes(s) : 0;
    return rc;
}

int store_enrollment_checkout(struct store *s, const char *id, int64_t now)
{
    if (!id)
        return STORE_ERR;
    int nested = 0;
    int rc = sql_atomic_begin(s, "enrollment_checkout", &nested);
    if (rc != STORE_OK)
        return rc;
    int changed = 0;
    rc = checkout_stmt(s, ST_ENR_CHECKOUT, id, now, &changed);
    if (rc == STORE_OK && changed == 0)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK)
        rc = checkout_stmt(s, ST_ENR_CHECKOUT_USERS, id, now, &changed);
    return sql_atomic_end(s, nested, rc, "enrollment_checkout");
}

/* Builds an enrollment from a row of ENR_COLS. NULL when out of memory. */
static struct store_enrollment *enrollment_from_row(struct sql_stmt *st)
{
    struct store_enrollment *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    int oom = 0;
    char **device[] = {
        &e->id, &e->parent_id, &e->type, &e->udid, &e->enrollment_id, &e->user_id,
        &e->user_short_name, &e->user_long_name, &e->topic, &e->serial_number, &e->os_version,
        &e->build_version, &e->product_name, &e->model, &e->model_name, &e->device_name,
        &e->imei, &e->meid,
    };
    int col = 0;
    for (size_t i = 0; i < sizeof device / sizeof device[0]; i++)
        *device[i] = sql_col_strdup(st, col++, &oom);
    e->status = (int)sql_col_int(st, col++);
    e->token_hex = sql_col_strdup(st, col++, &oom);
    e->push_magic = sql_col_strdup(st, col++, &oom);
    e->unlock_token = sql_col_blobdup(st, col++, &e->unlock_token_len, &oom);
    e->awaiting_configuration = (int)sql_col_int(st, col++);
    e->cert_fp = sql_col_strdup(st, col++, &oom);
    e->created_at = sql_col_int(st, col++);
    e->authenticated_at = sql_col_int(st, col++);
    e->enrolled_at = sql_col_int(st, col++);
    e->token_updated_at = sql_col_int(st, col++);
    e->last_seen_at = sql_col_int(st, col++);
    e->checked_out_at = sql_col_int(st, col++);
    if (oom) {
        store_enrollment_free(e);
        return NULL;
    }
    return e;
}

int store_enrollment_get(struct store *s, const char *id, struct store_enrollment **out)
{
    *out = NULL;
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_GET, "enrollment_get", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "enrollment_get", code);
    if (rc != STORE_OK)
        return rc;
    *out = enrollment_from_row(st);
    sql_done(st);
    return *out ? STORE_OK : sql_out_of_memory("enrollment_get");
}

/* Runs an UPDATE/DELETE keyed by its bound values; NOTFOUND when no row
 * matched. */
static int change_one(struct store *s, struct sql_stmt *st, const char *op, int code)
{
    int rc = sql_exec(s, st, op, code);
    if (rc == STORE_OK && sql_changes(s) == 0)
        rc = STORE_NOTFOUND;
    return rc;
}

int store_enrollment_touch(struct store *s, const char *id, int64_t now)
{
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_TOUCH, "enrollment_touch", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    sql_bind_int(st, 2, now, &code);
    sql_bind_int(st, 3, STORE_TOUCH_INTERVAL, &code);
    return change_one(s, st, "enrollment_touch", code);
}

int store_enrollment_by_cert(struct store *s, const char *cert_fp, char **id_out)
{
    *id_out = NULL;
    if (!cert_fp)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_BY_CERT, "enrollment_by_cert", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, cert_fp, &code);
    rc = sql_first_row(s, st, "enrollment_by_cert", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *id_out = sql_col_strdup(st, 0, &oom);
    sql_done(st);
    return *id_out ? STORE_OK : sql_out_of_memory("enrollment_by_cert");
}

/* "%text%" with LIKE's wildcards and the escape character escaped, so the
 * operator's text matches literally. NULL when out of memory. */
static char *like_pattern(const char *text)
{
    size_t n = strlen(text);
    char *p = malloc(2 * n + 3);
    if (!p)
        return NULL;
    size_t j = 0;
    p[j++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
            p[j++] = '\\';
        p[j++] = text[i];
    }
    p[j++] = '%';
    p[j] = '\0';
    return p;
}

static void bind_filter(struct sql_stmt *st, const struct store_enrollment_filter *f,
                        const char *pattern, int *code)
{
    sql_bind_text(st, 1, pattern, code);
    sql_bind_text(st, 2, f->serial_number, code);
    sql_bind_int(st, 3, f->status, code);
}

static int count_enrollments(struct store *s, const struct store_enrollment_filter *f,
                             const char *pattern, int64_t *total)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_COUNT, "enrollment_list", &rc);
    if (!st)
        return rc;
    int code = 0;
    bind_filter(st, f, pattern, &code);
    rc = sql_first_row(s, st, "enrollment_list", code);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *total = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

/* Appends one row to a growing array of pointers. */
static int list_push(struct store_enrollment ***list, size_t *n, size_t *cap,
                     struct store_enrollment *e)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct store_enrollment **grown = realloc(*list, ncap * sizeof *grown);
        if (!grown)
            return -1;
        *list = grown;
        *cap = ncap;
    }
    (*list)[(*n)++] = e;
    return 0;
}

static int select_enrollments(struct store *s, const struct store_enrollment_filter *f,
                              const char *pattern, struct store_enrollment ***out, size_t *n)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_LIST, "enrollment_list", &rc);
    if (!st)
        return rc;
    int code = 0;
    bind_filter(st, f, pattern, &code);
    sql_bind_int(st, 4, f->limit > 0 ? f->limit : DEFAULT_LIMIT, &code);
    sql_bind_int(st, 5, f->offset > 0 ? f->offset : 0, &code);
    size_t cap = 0;
    int row;
    while ((row = sql_next_row(s, st, "enrollment_list", code)) == 1) {
        code = 0;
        struct store_enrollment *e = enrollment_from_row(st);
        if (!e || list_push(out, n, &cap, e) < 0) {
            store_enrollment_free(e);
            sql_done(st);
            return sql_out_of_memory("enrollment_list");
        }
    }
    return row == 0 ? STORE_OK : row;
}

int store_enrollment_list(struct store *s, const struct store_enrollment_filter *f,
                          struct store_enrollment ***out, size_t *n, int64_t *total)
{
    static const struct store_enrollment_filter no_filter = {0};
    *out = NULL;
    *n = 0;
    if (!f)
        f = &no_filter;
    char *pattern = NULL;
    if (f->search && *f->search && !(pattern = like_pattern(f->search)))
        return sql_out_of_memory("enrollment_list");
    int rc = select_enrollments(s, f, pattern, out, n);
    if (rc == STORE_OK && total)
        rc = count_enrollments(s, f, pattern, total);
    free(pattern);
    if (rc != STORE_OK) {
        store_enrollment_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_enrollment_list_free(struct store_enrollment **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        store_enrollment_free(list[i]);
    free(list);
}

/* ---- bootstrap tokens ------------------------------------------------------- */

int store_bootstrap_token_set(struct store *s, const char *id, const uint8_t *data, size_t len)
{
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, data ? ST_BOOT_SET : ST_BOOT_DELETE, "bootstrap_token_set", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    if (data)
        sql_bind_blob(st, 2, data, len, &code);
    rc = sql_exec(s, st, "bootstrap_token_set", code);
    /* The only foreign key here is the enrollment. */
    if (rc == STORE_CONFLICT && sql_last_was_fk(s))
        rc = STORE_NOTFOUND;
    return rc;
}

int store_bootstrap_token_get(struct store *s, const char *id, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!id)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_BOOT_GET, "bootstrap_token_get", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    rc = sql_first_row(s, st, "bootstrap_token_get", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *out = sql_col_blobdup(st, 0, len, &oom);
    sql_done(st);
    return oom ? sql_out_of_memory("bootstrap_token_get") : STORE_OK;
}

/* ---- commands and the queue ------------------------------------------------- */

int store_command_create(struct store *s, const char *uuid, const char *request_type,
                         const uint8_t *payload, size_t len, int64_t now)
{
    if (!uuid || !request_type || !payload)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CMD_CREATE, "command_create", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, uuid, &code);
    sql_bind_text(st, 2, request_type, &code);
    sql_bind_blob(st, 3, payload, len, &code);
    sql_bind_int(st, 4, now, &code);
    return sql_exec(s, st, "command_create", code);
}

int store_queue_add(struct store *s, const char *enrollment_id, const char *uuid, int64_t now)
{
    if (!enrollment_id || !uuid)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_ADD, "queue_add", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_exec(s, st, "queue_add", code);
    if (rc != STORE_OK || sql_changes(s) > 0)
        return rc;
    /* No row added: already queued (CONFLICT), or the enrollment or the
     * command does not exist (NOTFOUND). */
    code = 0;
    st = prep(s, ST_QUEUE_HAS, "queue_add", &rc);
    if (!st)
        return rc;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    rc = sql_first_row(s, st, "queue_add", code);
    if (rc == STORE_OK) {
        sql_done(st);
        rc = STORE_CONFLICT;
    }
    return rc;
}

void store_command_free(struct store_command *c)
{
    if (!c)
        return;
    free(c->uuid);
    free(c->request_type);
    free(c->payload);
    free(c);
}

/* Marks the oldest waiting row delivered and fills c with its command, or,
 * when its deadline passed, marks it Expired and sets *expired instead. */
static int queue_claim(struct store *s, const char *enrollment_id, int include_notnow,
                       int64_t now, struct store_command *c, int *expired)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_CLAIM, "queue_next", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_int(st, 2, include_notnow ? 1 : 0, &code);
    sql_bind_int(st, 3, now, &code);
    rc = sql_first_row(s, st, "queue_next", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *expired = sql_col_int(st, 1) != 0;
    if (!*expired) {
        c->uuid = sql_col_strdup(st, 0, &oom);
        c->request_type = sql_col_strdup(st, 2, &oom);
        c->payload = sql_col_blobdup(st, 3, &c->payload_len, &oom);
        store_cmd_type_note(s, c->uuid, c->request_type);
    }
    int missing = !*expired && !oom && (!c->uuid || !c->request_type || !c->payload);
    /* SQLite makes every change on the first step and buffers the RETURNING
     * rows; stepping to the end finishes the statement before it is reset. */
    int row = sql_next_row(s, st, "queue_next", 0);
    if (row == 1) {
        sql_done(st);
        row = STORE_ERR; /* one row at most: the claim is LIMIT 1 */
    }
    rc = row;
    if (rc == STORE_OK && oom)
        rc = sql_out_of_memory("queue_next");
    if (rc == STORE_OK && missing)
        rc = STORE_ERR; /* a queue row is only ever added with its command */
    return rc;
}

int store_queue_waiting(struct store *s, const char *enrollment_id, int include_notnow,
                        int *waiting)
{
    *waiting = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_WAITING, "queue_waiting", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_int(st, 2, include_notnow ? 1 : 0, &code);
    rc = sql_first_row(s, st, "queue_waiting", code);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    *waiting = 1;
    sql_done(st);
    return STORE_OK;
}

/* Nearly every claim finds a deliverable row at once: one statement. Rows
 * whose deadline passed are marked as the claim meets them (the periodic
 * sweep marks the others). */
int store_queue_next(struct store *s, const char *enrollment_id, int include_notnow, int64_t now,
                     struct store_command **out)
{
    *out = NULL;
    if (!enrollment_id)
        return STORE_ERR;
    struct store_command *c = calloc(1, sizeof *c);
    if (!c)
        return sql_out_of_memory("queue_next");
    int expired = 1, rc = STORE_OK;
    while (rc == STORE_OK && expired)
        rc = queue_claim(s, enrollment_id, include_notnow, now, c, &expired);
    if (rc != STORE_OK) {
        store_command_free(c);
        return rc;
    }
    *out = c;
    return STORE_OK;
}

/* Marks the row answered (NotNow keeps it waiting) and fills rep with its
 * command's type and payload; NOTFOUND when no waiting row matched. */
static int queue_mark(struct store *s, const char *enrollment_id, const char *uuid,
                      const char *status, int64_t now, struct store_command *rep)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_MARK, "queue_report", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    sql_bind_text(st, 3, status, &code);
    sql_bind_int(st, 4, now, &code);
    rc = sql_first_row(s, st, "queue_report", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    rep->request_type = sql_col_strdup(st, 0, &oom);
    rep->payload = sql_col_blobdup(st, 1, &rep->payload_len, &oom);
    /* As in queue_claim: SQLite's change is finished by stepping to the end. */
    int row = sql_next_row(s, st, "queue_report", 0);
    if (row == 1) {
        sql_done(st);
        row = STORE_ERR; /* (enrollment_id, command_uuid) is the key: one row at most */
    }
    if (row == STORE_OK && oom)
        row = sql_out_of_memory("queue_report");
    return row;
}

static int result_add(struct store *s, const char *enrollment_id, const char *uuid,
                      const char *status, const uint8_t *raw, size_t raw_len, int64_t now)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_RESULT_ADD, "queue_report", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    sql_bind_text(st, 3, status, &code);
    sql_bind_blob(st, 4, raw, raw_len, &code);
    sql_bind_int(st, 5, now, &code);
    return sql_exec(s, st, "queue_report", code);
}

/* The report's writes, atomic (a savepoint inside the caller's transaction). */
static int queue_report(struct store *s, const char *enrollment_id, const char *uuid,
                        const char *status, const uint8_t *raw, size_t raw_len, int64_t now,
                        struct store_command *rep)
{
    if (!uuid)
        return STORE_NOTFOUND; /* nothing can be queued under no uuid */
    int nested = 0;
    int rc = sql_atomic_begin(s, "queue_report", &nested);
    if (rc != STORE_OK)
        return rc;
    rc = queue_mark(s, enrollment_id, uuid, status, now, rep);
    if (rc == STORE_OK)
        rc = result_add(s, enrollment_id, uuid, status, raw, raw_len, now);
    return sql_atomic_end(s, nested, rc, "queue_report");
}

int store_queue_report(struct store *s, const char *enrollment_id, const char *uuid,
                       const char *status, const uint8_t *raw, size_t raw_len, int64_t now)
{
    if (!enrollment_id || !status)
        return STORE_ERR;
    struct store_command rep = {0};
    int rc = queue_report(s, enrollment_id, uuid, status, raw, raw_len, now, &rep);
    free(rep.request_type);
    free(rep.payload);
    return rc;
}

/* Copies a command from columns uuid, type, payload starting at col. */
static void command_from_cols(struct sql_stmt *st, int col, struct store_command *c, int *oom)
{
    c->uuid = sql_col_strdup(st, col, oom);
    c->request_type = sql_col_strdup(st, col + 1, oom);
    c->payload = sql_col_blobdup(st, col + 2, &c->payload_len, oom);
}

/* The device values ST_QUEUE_REPORT_NEXT_DEVICE_PG read (columns 12..15 of
 * each row, from the current one on: section, name, type, value), kept for
 * the handler (store_inventory_preread_put). Finishes st. */
static int device_read_ahead(struct store *s, struct sql_stmt *st, const char *id, int64_t now)
{
    struct store_inv_value *v = NULL;
    size_t n = 0;
    int reported = 0;
    int rc = store_inventory_values_read(s, st, 0, 1, 13, "queue_report", "device", &v, &n,
                                         &reported);
    return rc == STORE_OK ? store_inventory_preread_put(s, id, now, v, n, reported) : rc;
}

/* Whether type is one of list's (comma-separated). */
static int type_listed(const char *list, const char *type)
{
    size_t len = strlen(type);
    for (const char *p = list; len && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && memcmp(p, type, len) == 0)
            return 1;
        p += n + (end != NULL);
    }
    return 0;
}

/* PostgreSQL's report and claim, one statement (ST_QUEUE_REPORT_NEXT_PG),
 * with chk (may be NULL) the identity check first (nothing changes unless
 * chk->ok comes back set) and the follow types' (nothing changes when
 * chk->follow comes back set). When this handle delivered the command
 * (store/cmd_types.c), its type is known: a follow type's report runs
 * nothing (chk->follow set, chk->ok left 0: nothing was checked), any
 * other the statement that does not look the command up (rep then has no
 * payload). *claim_again when the claimed row had expired (it is marked so
 * now). */
static int report_next_pg(struct store *s, struct store_report_check *chk,
                          const char *enrollment_id, const char *uuid, const char *status,
                          const uint8_t *raw, size_t raw_len, int64_t now,
                          struct store_command *rep, struct store_command *next,
                          int *claim_again)
{
    int rc = STORE_OK;
    *claim_again = 0;
    const struct store_inv_device *d = chk ? chk->device : NULL;
    /* In the memo: valid until the claim below notes the next command,
     * which is after the statement ran. With a device row it only counts
     * when it is a DeviceInformation (the one handler that needs no
     * payload); with neither, only follow types need it. */
    const char *known = chk && (d || chk->follow_types) ? store_cmd_type_known(s, uuid) : NULL;
    if (known && d && strcmp(known, "DeviceInformation") != 0)
        known = NULL;
    if (known && !d && type_listed(chk->follow_types, known)) {
        chk->follow = 1;
        return STORE_NOTFOUND;
    }
    enum stmt_id which = d ? (known ? ST_QUEUE_REPORT_NEXT_DEVICE_KNOWN_PG
                                    : ST_QUEUE_REPORT_NEXT_DEVICE_PG)
                           : (known ? ST_QUEUE_REPORT_NEXT_KNOWN_PG : ST_QUEUE_REPORT_NEXT_PG);
    struct sql_stmt *st = prep(s, which, "queue_report", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    sql_bind_text(st, 3, status, &code);
    sql_bind_int(st, 4, now, &code);
    sql_bind_blob(st, 5, raw, raw_len, &code);
    sql_bind_text(st, 6, chk ? chk->binding_id : NULL, &code);
    sql_bind_text(st, 7, chk ? chk->cert_fp : NULL, &code);
    sql_bind_int(st, 8, chk ? 1 : 0, &code);
    sql_bind_text(st, 9, known ? known : chk ? chk->follow_types : NULL, &code);
    if (d)
        store_inventory_bind_device_row(st, 10, d, &code);
    rc = sql_first_row(s, st, "queue_report", code);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc; /* the statement always has its one row */
    if (chk) {
        chk->ok = sql_col_int(st, 7) != 0;
        chk->last_seen = sql_col_int(st, 8);
        chk->policies = sql_col_int(st, 9) != 0;
        chk->follow = sql_col_int(st, 10) != 0;
    }
    int oom = 0, reported = !sql_col_is_null(st, 0), claimed = !sql_col_is_null(st, 3);
    if (reported)
        command_from_cols(st, 0, rep, &oom);
    *claim_again = claimed && sql_col_int(st, 4) != 0;
    if (claimed && !*claim_again) {
        next->uuid = sql_col_strdup(st, 3, &oom);
        next->request_type = sql_col_strdup(st, 5, &oom);
        next->payload = sql_col_blobdup(st, 6, &next->payload_len, &oom);
        store_cmd_type_note(s, next->uuid, next->request_type);
    }
    if (d && !oom && sql_col_int(st, 11) != 0)
        rc = device_read_ahead(s, st, enrollment_id, now);
    else
        sql_done(st);
    if (oom)
        return sql_out_of_memory("queue_report");
    if (rc != STORE_OK)
        return rc;
    if (claimed && !*claim_again && (!next->uuid || !next->request_type || !next->payload))
        return STORE_ERR; /* a queue row is only ever added with its command */
    return reported ? STORE_OK : STORE_NOTFOUND;
}

/* store_queue_report_next, with chk (PostgreSQL only; may be NULL) checked
 * in the same statement: when it does not hold, nothing is written and
 * nothing returned (NOTFOUND). */
static int report_next(struct store *s, struct store_report_check *chk, const char *enrollment_id,
                       const char *uuid, const char *status, const uint8_t *raw, size_t raw_len,
                       int64_t now, struct store_command **reported, struct store_command **next)
{
    if (reported)
        *reported = NULL;
    *next = NULL;
    if (!enrollment_id || !status)
        return STORE_ERR;
    struct store_command *rep = calloc(1, sizeof *rep), *nx = calloc(1, sizeof *nx);
    if (!rep || !nx) {
        free(rep);
        free(nx);
        return sql_out_of_memory("queue_report");
    }
    int claim = 1, rc, nested = 0, own = 0;
    if (uuid && sql_dialect(s) == STORE_DIALECT_POSTGRES) {
        /* One statement: atomic by itself, in the caller's transaction or
         * none (a claim that met an expired row claims again below: marking
         * that row Expired stands on its own). */
        rc = report_next_pg(s, chk, enrollment_id, uuid, status, raw, raw_len, now, rep, nx,
                            &claim);
        claim = claim && (rc == STORE_OK || rc == STORE_NOTFOUND) &&
                (!chk || (chk->ok && !chk->follow));
    } else {
        /* Two statements: one transaction (or savepoint) for both. */
        rc = sql_atomic_begin(s, "queue_report", &nested);
        own = rc == STORE_OK;
        if (own)
            rc = queue_report(s, enrollment_id, uuid, status, raw, raw_len, now, rep);
    }
    int report_rc = rc;
    if (claim && (rc == STORE_OK || rc == STORE_NOTFOUND)) {
        store_command_free(nx);
        nx = NULL;
        rc = store_queue_next(s, enrollment_id, 0, now, &nx);
        rc = rc == STORE_OK || rc == STORE_NOTFOUND ? report_rc : rc;
    }
    if (own) {
        int ok = rc == STORE_OK || rc == STORE_NOTFOUND;
        int erc = sql_atomic_end(s, nested, ok ? STORE_OK : rc, "queue_report");
        rc = ok && erc != STORE_OK ? erc : rc;
        report_rc = rc == STORE_OK || rc == STORE_NOTFOUND ? report_rc : rc;
    }
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        store_command_free(rep);
        store_command_free(nx);
        return rc;
    }
    if (report_rc == STORE_OK) {
        rep->uuid = rep->uuid ? rep->uuid : strdup(uuid);
        if (!rep->uuid) {
            store_command_free(rep);
            store_command_free(nx);
            return sql_out_of_memory("queue_report");
        }
    }
    if (nx && !nx->uuid) { /* nothing waits */
        store_command_free(nx);
        nx = NULL;
    }
    if (reported && report_rc == STORE_OK)
        *reported = rep;
    else
        store_command_free(rep);
    *next = nx;
    return report_rc;
}

int store_queue_report_next(struct store *s, const char *enrollment_id, const char *uuid,
                            const char *status, const uint8_t *raw, size_t raw_len, int64_t now,
                            struct store_command **reported, struct store_command **next)
{
    return report_next(s, NULL, enrollment_id, uuid, status, raw, raw_len, now, reported, next);
}

/* Whether chk->follow_types (a comma-separated list) holds the
 * RequestType of command uuid (this handle's memo of it when it delivered
 * the command, else read): sets chk->follow. An unknown command follows
 * nothing. */
static int check_follow(struct store *s, struct store_report_check *chk, const char *uuid)
{
    char type[128]; /* a longer RequestType is never queued (queue.h) */
    const char *known = store_cmd_type_known(s, uuid);
    int rc = known ? STORE_OK : store_command_request_type(s, uuid, type, sizeof type);
    if (rc == STORE_NOTFOUND)
        return STORE_OK;
    if (rc != STORE_OK)
        return rc;
    chk->follow = type_listed(chk->follow_types, known ? known : type);
    return STORE_OK;
}

int store_reports_standalone(struct store *s)
{
    return sql_dialect(s) == STORE_DIALECT_POSTGRES;
}

int store_queue_report_next_checked(struct store *s, struct store_report_check *chk,
                                    const char *enrollment_id, const char *uuid,
                                    const char *status, const uint8_t *raw, size_t raw_len,
                                    int64_t now, struct store_command **reported,
                                    struct store_command **next)
{
    chk->ok = 0;
    chk->last_seen = 0;
    chk->policies = 0;
    chk->follow = 0;
    if (reported)
        *reported = NULL;
    *next = NULL;
    if (!chk->binding_id || !chk->cert_fp || !enrollment_id || !uuid || !status)
        return STORE_ERR;
    if (sql_dialect(s) == STORE_DIALECT_POSTGRES)
        return report_next(s, chk, enrollment_id, uuid, status, raw, raw_len, now, reported,
                           next);
    /* Elsewhere the check is the peek's read, then the exchange. */
    struct store_checkin_peek pk;
    int rc = store_checkin_peek(s, chk->binding_id, enrollment_id, chk->cert_fp, 0, uuid, &pk);
    if (rc == STORE_NOTFOUND)
        return STORE_NOTFOUND; /* unknown binding: not ok */
    if (rc != STORE_OK)
        return rc;
    chk->ok = pk.status != ENROLLMENT_CHECKED_OUT && pk.cert_bound && !pk.cert_revoked;
    chk->last_seen = pk.last_seen;
    chk->policies = pk.policies;
    if (!chk->ok)
        return STORE_NOTFOUND;
    if (chk->follow_types && (rc = check_follow(s, chk, uuid)) != STORE_OK)
        return rc;
    if (chk->follow)
        return STORE_NOTFOUND;
    return report_next(s, NULL, enrollment_id, uuid, status, raw, raw_len, now, reported, next);
}

int store_checkin_peek(struct store *s, const char *binding_id, const char *enrollment_id,
                       const char *cert_fp, int want_waiting, const char *report_uuid,
                       struct store_checkin_peek *out)
{
    memset(out, 0, sizeof *out);
    if (!binding_id || !enrollment_id || !cert_fp)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st =
        prep(s, report_uuid ? ST_CHECKIN_PEEK_REPORT : ST_CHECKIN_PEEK, "checkin_peek", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, binding_id, &code);
    sql_bind_text(st, 2, cert_fp, &code);
    sql_bind_text(st, 3, enrollment_id, &code);
    sql_bind_int(st, 4, want_waiting ? 1 : 0, &code);
    rc = sql_first_row(s, st, "checkin_peek", code);
    if (rc != STORE_OK)
        return rc;
    out->status = (int)sql_col_int(st, 0);
    out->cert_bound = sql_col_int(st, 1) != 0;
    out->cert_revoked = sql_col_int(st, 2) != 0;
    out->last_seen = sql_col_int(st, 3);
    out->waiting = sql_col_int(st, 4) != 0;
    out->policies = report_uuid && sql_col_int(st, 5) != 0;
    sql_done(st);
    return STORE_OK;
}

void store_queue_items_free(struct store_queue_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].uuid);
        free(items[i].request_type);
        free(items[i].status);
        free(items[i].result);
    }
    free(items);
}

static int item_from_row(struct sql_stmt *st, struct store_queue_item *it)
{
    int oom = 0;
    memset(it, 0, sizeof *it);
    it->uuid = sql_col_strdup(st, 0, &oom);
    it->request_type = sql_col_strdup(st, 1, &oom);
    it->status = sql_col_strdup(st, 2, &oom);
    it->created_at = sql_col_int(st, 3);
    it->delivered_at = sql_col_int(st, 4);
    it->updated_at = sql_col_int(st, 5);
    it->delivery_count = (int)sql_col_int(st, 6);
    it->result = sql_col_blobdup(st, 7, &it->result_len, &oom);
    return oom ? -1 : 0;
}

int store_queue_list(struct store *s, const char *enrollment_id, int64_t limit,
                     struct store_queue_item **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (!enrollment_id)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_LIST, "queue_list", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_int(st, 2, limit > 0 ? limit : DEFAULT_LIMIT, &code);
    size_t cap = 0;
    int row;
    while ((row = sql_next_row(s, st, "queue_list", code)) == 1) {
        code = 0;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct store_queue_item *grown = realloc(*items, ncap * sizeof *grown);
            if (!grown)
                break;
            *items = grown;
            cap = ncap;
        }
        /* Count the row before checking it so a partial item is freed too. */
        if (item_from_row(st, &(*items)[(*n)++]) < 0)
            break;
    }
    if (row == 1) {
        sql_done(st);
        rc = sql_out_of_memory("queue_list");
    } else {
        rc = row;
    }
    if (rc != STORE_OK) {
        store_queue_items_free(*items, *n);
        *items = NULL;
        *n = 0;
    }
    return rc;
}

int store_queue_cancel(struct store *s, const char *enrollment_id, const char *uuid, int64_t now)
{
    (void)now; /* a canceled row is deleted, so there is nothing to stamp */
    if (!enrollment_id || !uuid)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_CANCEL, "queue_cancel", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, uuid, &code);
    return change_one(s, st, "queue_cancel", code);
}

int store_queue_depth(struct store *s, int64_t *depth)
{
    *depth = 0;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_QUEUE_DEPTH, "queue_depth", &rc);
    if (!st)
        return rc;
    rc = sql_first_row(s, st, "queue_depth", 0);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *depth = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

/* ---- events and API keys ---------------------------------------------------- */

int store_event_add(struct store *s, const char *enrollment_id, const char *type,
                    const char *detail, int64_t now)
{
    if (!type)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_EVENT_ADD, "event_add", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, enrollment_id, &code);
    sql_bind_text(st, 2, type, &code);
    sql_bind_text(st, 3, detail, &code);
    sql_bind_int(st, 4, now, &code);
    return sql_exec(s, st, "event_add", code);
}

int store_apikey_add(struct store *s, const char *name, const char *hash, const char *role,
                     int64_t now)
{
    if (!name || !hash || !role)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_APIKEY_ADD, "apikey_add", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, hash, &code);
    sql_bind_text(st, 2, name, &code);
    sql_bind_text(st, 3, role, &code);
    sql_bind_int(st, 4, now, &code);
    return sql_exec(s, st, "apikey_add", code);
}

int store_apikey_lookup(struct store *s, const char *hash, char **name, char **role)
{
    *name = NULL;
    *role = NULL;
    if (!hash)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_APIKEY_LOOKUP, "apikey_lookup", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, hash, &code);
    rc = sql_first_row(s, st, "apikey_lookup", code);
    if (rc != STORE_OK)
        return rc;
    int oom = 0;
    *name = sql_col_strdup(st, 0, &oom);
    *role = sql_col_strdup(st, 1, &oom);
    sql_done(st);
    if (oom) {
        free(*name);
        free(*role);
        *name = *role = NULL;
        return sql_out_of_memory("apikey_lookup");
    }
    return STORE_OK;
}

/* ---- certificates ------------------------------------------------------------ */

void store_cert_free(struct store_cert *c)
{
    if (!c)
        return;
    free(c->serial_hex);
    free(c->subject);
    free(c->fingerprint);
    free(c->enrollment_id);
    free(c->status);
    free(c->revoke_reason);
    free(c->transaction_id);
    free(c->renewed_from);
    free(c->der);
    free(c->csr);
    free(c);
}

int store_cert_add(struct store *s, const struct store_cert *c)
{
    if (!c || !c->serial_hex || !c->subject || !c->status)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_ADD, "cert_add", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, c->serial_hex, &code);
    sql_bind_text(st, 2, c->fingerprint, &code);
    sql_bind_text(st, 3, c->subject, &code);
    sql_bind_int(st, 4, c->not_before, &code);
    sql_bind_int(st, 5, c->not_after, &code);
    sql_bind_text(st, 6, c->enrollment_id, &code);
    sql_bind_text(st, 7, c->status, &code);
    sql_bind_int(st, 8, c->revoked_at, &code);
    sql_bind_text(st, 9, c->revoke_reason, &code);
    sql_bind_text(st, 10, c->transaction_id, &code);
    sql_bind_text(st, 11, c->renewed_from, &code);
    sql_bind_blob(st, 12, c->der, c->der_len, &code);
    sql_bind_blob(st, 13, c->csr, c->csr_len, &code);
    sql_bind_int(st, 14, c->created_at, &code);
    return sql_exec(s, st, "cert_add", code);
}

/* Builds a record from a row of CERT_COLS (or CERT_LIST_COLS). NULL when out
 * of memory. */
static struct store_cert *cert_from_row(struct sql_stmt *st)
{
    struct store_cert *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    int oom = 0;
    c->serial_hex = sql_col_strdup(st, 0, &oom);
    c->subject = sql_col_strdup(st, 1, &oom);
    c->fingerprint = sql_col_strdup(st, 2, &oom);
    c->not_before = sql_col_int(st, 3);
    c->not_after = sql_col_int(st, 4);
    c->enrollment_id = sql_col_strdup(st, 5, &oom);
    c->status = sql_col_strdup(st, 6, &oom);
    c->revoked_at = sql_col_int(st, 7);
    c->revoke_reason = sql_col_strdup(st, 8, &oom);
    c->transaction_id = sql_col_strdup(st, 9, &oom);
    c->renewed_from = sql_col_strdup(st, 10, &oom);
    c->created_at = sql_col_int(st, 11);
    c->der = sql_col_blobdup(st, 12, &c->der_len, &oom);
    c->csr = sql_col_blobdup(st, 13, &c->csr_len, &oom);
    if (oom) {
        store_cert_free(c);
        return NULL;
    }
    return c;
}

/* The one-row lookups share this: key bound as ?1. */
static int cert_get(struct store *s, enum stmt_id id, const char *key, const char *op,
                    struct store_cert **out)
{
    *out = NULL;
    if (!key)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, id, op, &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, key, &code);
    rc = sql_first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    *out = cert_from_row(st);
    sql_done(st);
    return *out ? STORE_OK : sql_out_of_memory(op);
}

int store_cert_status(struct store *s, const char *fp, char status[16])
{
    status[0] = '\0';
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_STATUS_BY_FP, "cert_status", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, fp, &code);
    rc = sql_first_row(s, st, "cert_status", code);
    if (rc != STORE_OK)
        return rc;
    const char *v = sql_col_text(st, 0);
    snprintf(status, 16, "%s", v ? v : "");
    sql_done(st);
    return STORE_OK;
}

int store_cert_get_by_fingerprint(struct store *s, const char *fp, struct store_cert **out)
{
    return cert_get(s, ST_CERT_BY_FP, fp, "cert_get_by_fingerprint", out);
}

int store_cert_get_by_serial(struct store *s, const char *serial_hex, struct store_cert **out)
{
    return cert_get(s, ST_CERT_BY_SERIAL, serial_hex, "cert_get_by_serial", out);
}

int store_cert_get_by_transaction(struct store *s, const char *transaction_id,
                                  struct store_cert **out)
{
    return cert_get(s, ST_CERT_BY_TID, transaction_id, "cert_get_by_transaction", out);
}

static void bind_cert_filter(struct sql_stmt *st, const struct store_cert_filter *f, int *code)
{
    sql_bind_text(st, 1, f->status, code);
    sql_bind_int(st, 2, f->expiring_before, code);
    sql_bind_int(st, 3, f->valid_at, code);
    sql_bind_text(st, 4, f->enrollment_id, code);
}

static int count_certs(struct store *s, const struct store_cert_filter *f, int64_t *total)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_COUNT, "cert_list", &rc);
    if (!st)
        return rc;
    int code = 0;
    bind_cert_filter(st, f, &code);
    rc = sql_first_row(s, st, "cert_list", code);
    if (rc != STORE_OK)
        return rc == STORE_NOTFOUND ? STORE_ERR : rc;
    *total = sql_col_int(st, 0);
    sql_done(st);
    return STORE_OK;
}

static int cert_list_push(struct store_cert ***list, size_t *n, size_t *cap, struct store_cert *c)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct store_cert **grown = realloc(*list, ncap * sizeof *grown);
        if (!grown)
            return -1;
        *list = grown;
        *cap = ncap;
    }
    (*list)[(*n)++] = c;
    return 0;
}

static int select_certs(struct store *s, const struct store_cert_filter *f,
                        struct store_cert ***out, size_t *n)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_LIST, "cert_list", &rc);
    if (!st)
        return rc;
    int code = 0;
    bind_cert_filter(st, f, &code);
    /* "No limit" as the largest limit: both dialects take it (PostgreSQL
     * refuses SQLite's negative one). */
    sql_bind_int(st, 5, f->limit == 0 ? DEFAULT_LIMIT : f->limit < 0 ? INT64_MAX : f->limit, &code);
    sql_bind_int(st, 6, f->offset > 0 ? f->offset : 0, &code);
    size_t cap = 0;
    int row;
    while ((row = sql_next_row(s, st, "cert_list", code)) == 1) {
        code = 0;
        struct store_cert *c = cert_from_row(st);
        if (!c || cert_list_push(out, n, &cap, c) < 0) {
            store_cert_free(c);
            sql_done(st);
            return sql_out_of_memory("cert_list");
        }
    }
    return row == 0 ? STORE_OK : row;
}

int store_cert_list(struct store *s, const struct store_cert_filter *f, struct store_cert ***out,
                    size_t *n, int64_t *total)
{
    static const struct store_cert_filter no_filter = {0};
    *out = NULL;
    *n = 0;
    if (!f)
        f = &no_filter;
    int rc = select_certs(s, f, out, n);
    if (rc == STORE_OK && total)
        rc = count_certs(s, f, total);
    if (rc != STORE_OK) {
        store_cert_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_cert_list_free(struct store_cert **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        store_cert_free(list[i]);
    free(list);
}

/* After a status-guarded UPDATE matched nothing: NOTFOUND when the serial is
 * unknown, CONFLICT when it exists in another status. */
static int cert_why_unchanged(struct store *s, const char *serial_hex, const char *op)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_STATUS, op, &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, serial_hex, &code);
    rc = sql_first_row(s, st, op, code);
    if (rc != STORE_OK)
        return rc;
    sql_done(st);
    return STORE_CONFLICT;
}

/* Runs a status-guarded UPDATE keyed by serial (?1), already bound. */
static int cert_transition(struct store *s, struct sql_stmt *st, const char *serial_hex,
                           const char *op, int code)
{
    int rc = change_one(s, st, op, code);
    return rc == STORE_NOTFOUND ? cert_why_unchanged(s, serial_hex, op) : rc;
}

int store_cert_revoke(struct store *s, const char *serial_hex, const char *reason, int64_t now)
{
    if (!serial_hex)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_REVOKE, "cert_revoke", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, serial_hex, &code);
    sql_bind_int(st, 2, now, &code);
    sql_bind_text(st, 3, reason, &code);
    return cert_transition(s, st, serial_hex, "cert_revoke", code);
}

int store_cert_approve(struct store *s, const char *serial_hex, const char *fingerprint,
                       const uint8_t *der, size_t der_len, int64_t not_before, int64_t not_after)
{
    if (!serial_hex)
        return STORE_NOTFOUND;
    if (!fingerprint || !der)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_APPROVE, "cert_approve", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, serial_hex, &code);
    sql_bind_text(st, 2, fingerprint, &code);
    sql_bind_blob(st, 3, der, der_len, &code);
    sql_bind_int(st, 4, not_before, &code);
    sql_bind_int(st, 5, not_after, &code);
    return cert_transition(s, st, serial_hex, "cert_approve", code);
}

int store_cert_reject(struct store *s, const char *serial_hex, int64_t now)
{
    (void)now; /* the record keeps created_at; a rejection needs no stamp of its own */
    if (!serial_hex)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_REJECT, "cert_reject", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, serial_hex, &code);
    return cert_transition(s, st, serial_hex, "cert_reject", code);
}

int store_cert_set_enrollment(struct store *s, const char *fp, const char *enrollment_id)
{
    if (!fp)
        return STORE_NOTFOUND;
    if (!enrollment_id)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CERT_SET_ENROLLMENT, "cert_set_enrollment", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, fp, &code);
    sql_bind_text(st, 2, enrollment_id, &code);
    return change_one(s, st, "cert_set_enrollment", code);
}

/* ---- challenges -------------------------------------------------------------- */

int store_challenge_add(struct store *s, const char *hash, const char *created_for, int64_t now,
                        int64_t expires_at)
{
    if (!hash)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CHAL_ADD, "challenge_add", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, hash, &code);
    sql_bind_text(st, 2, created_for, &code);
    sql_bind_int(st, 3, now, &code);
    sql_bind_int(st, 4, expires_at, &code);
    return sql_exec(s, st, "challenge_add", code);
}

/* Why consume matched nothing: unknown, used, or (otherwise) expired. */
static int challenge_why_refused(struct store *s, const char *hash)
{
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CHAL_STATE, "challenge_consume", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, hash, &code);
    rc = sql_first_row(s, st, "challenge_consume", code);
    if (rc != STORE_OK)
        return rc;
    int used = (int)sql_col_int(st, 0);
    sql_done(st);
    return used ? STORE_CHALLENGE_USED : STORE_CHALLENGE_EXPIRED;
}

int store_challenge_consume(struct store *s, const char *hash, int64_t now)
{
    if (!hash)
        return STORE_NOTFOUND;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_CHAL_CONSUME, "challenge_consume", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, hash, &code);
    sql_bind_int(st, 2, now, &code);
    rc = change_one(s, st, "challenge_consume", code);
    return rc == STORE_NOTFOUND ? challenge_why_refused(s, hash) : rc;
}

/* ---- renewal rebinding ------------------------------------------------------- */

int store_enrollment_rebind(struct store *s, const char *id, const char *old_fp,
                            const char *new_fp)
{
    if (!id || !old_fp || !new_fp)
        return STORE_ERR;
    int rc = STORE_OK;
    struct sql_stmt *st = prep(s, ST_ENR_REBIND, "enrollment_rebind", &rc);
    if (!st)
        return rc;
    int code = 0;
    sql_bind_text(st, 1, id, &code);
    sql_bind_text(st, 2, old_fp, &code);
    sql_bind_text(st, 3, new_fp, &code);
    rc = change_one(s, st, "enrollment_rebind", code);
    if (rc != STORE_NOTFOUND)
        return rc;
    int status = 0;
    rc = enrollment_status(s, id, &status, "enrollment_rebind");
    if (rc != STORE_OK)
        return rc;
    return status ? STORE_CONFLICT : STORE_NOTFOUND;
}
