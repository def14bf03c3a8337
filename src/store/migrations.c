/* migrations.c: the schema as an ordered list of SQL migrations, written once
 * for both backends (TEXT, BIGINT, INTEGER, and two dialect tokens), plus the
 * token expansion. Backends (sqlite.c now, pgsql.c later) apply the list at
 * open; a released migration is never edited, only followed by a new one. */
#include "store/migrations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Times are BIGINT Unix seconds: SQLite gives BIGINT integer affinity (64-bit
 * anyway), and PostgreSQL's INTEGER would be 32-bit. Enrollment ids are
 * arbitrary device-supplied text and only ever reach SQL as bound values. */
static const char migration_1[] =
    "CREATE TABLE enrollments ("
    " id TEXT PRIMARY KEY,"
    " parent_id TEXT,"
    " type TEXT,"
    " status INTEGER NOT NULL,"
    " udid TEXT,"
    " enrollment_id TEXT,"
    " user_id TEXT,"
    " user_short_name TEXT,"
    " user_long_name TEXT,"
    " topic TEXT,"
    " serial_number TEXT,"
    " os_version TEXT,"
    " build_version TEXT,"
    " product_name TEXT,"
    " model TEXT,"
    " model_name TEXT,"
    " device_name TEXT,"
    " imei TEXT,"
    " meid TEXT,"
    " token_hex TEXT,"
    " push_magic TEXT,"
    " unlock_token {{BLOB}},"
    " awaiting_configuration INTEGER NOT NULL DEFAULT 0,"
    " cert_fp TEXT,"
    " created_at BIGINT NOT NULL,"
    " authenticated_at BIGINT,"
    " enrolled_at BIGINT,"
    " token_updated_at BIGINT,"
    " last_seen_at BIGINT,"
    " checked_out_at BIGINT"
    ");"
    "CREATE INDEX enrollments_cert_fp ON enrollments (cert_fp);"
    "CREATE INDEX enrollments_parent ON enrollments (parent_id);"
    "CREATE INDEX enrollments_serial ON enrollments (serial_number);"

    "CREATE TABLE bootstrap_tokens ("
    " enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,"
    " token {{BLOB}} NOT NULL"
    ");"

    /* One row per command: the payload is stored once however many
     * enrollments it is queued for. */
    "CREATE TABLE commands ("
    " uuid TEXT PRIMARY KEY,"
    " request_type TEXT NOT NULL,"
    " payload {{BLOB}} NOT NULL,"
    " created_at BIGINT NOT NULL"
    ");"

    /* status: NULL = never answered, 'NotNow', or the final status. active is
     * 1 while the command still waits (NULL or NotNow), 0 once answered. */
    "CREATE TABLE queue ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " command_uuid TEXT NOT NULL REFERENCES commands (uuid) ON DELETE CASCADE,"
    " status TEXT,"
    " created_at BIGINT NOT NULL,"
    " delivered_at BIGINT,"
    " delivery_count INTEGER NOT NULL DEFAULT 0,"
    " updated_at BIGINT,"
    " active INTEGER NOT NULL DEFAULT 1,"
    " PRIMARY KEY (enrollment_id, command_uuid)"
    ");"
    /* "Oldest waiting command for this enrollment" is a seek into this
     * partial index; it stays small because answered rows leave it. It also
     * serves the queue-depth count. */
    "CREATE INDEX queue_next ON queue (enrollment_id, created_at) WHERE active = 1;"

    "CREATE TABLE results ("
    " id {{ID}},"
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " command_uuid TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " raw {{BLOB}},"
    " received_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX results_command ON results (enrollment_id, command_uuid);"

    /* Append-only history; no foreign key so it outlives what it describes. */
    "CREATE TABLE events ("
    " id {{ID}},"
    " enrollment_id TEXT,"
    " type TEXT NOT NULL,"
    " detail TEXT,"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX events_enrollment ON events (enrollment_id, created_at);"

    "CREATE TABLE api_keys ("
    " hash TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " created_at BIGINT NOT NULL"
    ");";

/* Certificates (issued, pending, rejected, revoked) keyed by serial, which a
 * pending request already has; the fingerprint arrives with the certificate,
 * and UNIQUE lets NULL repeat in both dialects. The (status, not_after)
 * index serves expiry listings and the CRL; challenges are looked up by the
 * hash of their clear text only. */
static const char migration_2[] =
    "CREATE TABLE certs ("
    " serial TEXT PRIMARY KEY,"
    " fingerprint TEXT UNIQUE,"
    " subject TEXT NOT NULL,"
    " not_before BIGINT,"
    " not_after BIGINT,"
    " enrollment_id TEXT,"
    " status TEXT NOT NULL,"
    " revoked_at BIGINT,"
    " revoke_reason TEXT,"
    " transaction_id TEXT,"
    " renewed_from TEXT,"
    " der {{BLOB}},"
    " csr {{BLOB}},"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX certs_transaction ON certs (transaction_id);"
    "CREATE INDEX certs_status_expiry ON certs (status, not_after);"
    "CREATE INDEX certs_enrollment ON certs (enrollment_id);"
    "CREATE INDEX certs_created ON certs (created_at);"

    "CREATE TABLE challenges ("
    " hash TEXT PRIMARY KEY,"
    " created_for TEXT,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " used_at BIGINT"
    ");"
    "CREATE INDEX challenges_expiry ON challenges (expires_at);";

/* Versions 3-11 are reserved, one per area being built in parallel, so each
 * can land in any order: a reserved slot is a no-op until its area fills it.
 * Nothing has been released with them yet, which is the only reason they may
 * still change. */

/* v3: PKI: enrollments whose identity certificate expires soon and that are
 * due for re-enrollment (filled by the expiry watcher, one row per
 * certificate; queued_at set once a new enrollment profile was sent). */
static const char migration_3[] =
    "CREATE TABLE cert_reenroll ("
    " serial TEXT PRIMARY KEY,"
    " enrollment_id TEXT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " due_at BIGINT NOT NULL,"
    " queued_at BIGINT"
    ");"
    "CREATE INDEX cert_reenroll_queued ON cert_reenroll (queued_at, not_after);";

/* v4: APNs push certificates and per-enrollment push state (store/push.c).
 * push_certs: one row per topic (the certificate's UID); a renewal replaces
 * the row; disabled_reason is set when APNs refuses the certificate (403)
 * and cleared by the next import; warned_days the last expiry warning given.
 * push_state: one row per enrollment pushed at least once; a token APNs
 * called unregistered (410, or 400 BadDeviceToken) is kept in
 * unregistered_token so it is not pushed again until a TokenUpdate brings a
 * newer one; backoff_until holds off retries after 429/5xx. */
static const char migration_4[] =
    "CREATE TABLE push_certs ("
    " topic TEXT PRIMARY KEY,"
    " cert_pem TEXT NOT NULL,"
    " key_pem TEXT NOT NULL,"
    " subject TEXT,"
    " serial TEXT,"
    " fingerprint TEXT,"
    " not_before BIGINT NOT NULL,"
    " not_after BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " disabled_reason TEXT,"
    " disabled_at BIGINT,"
    " warned_days INTEGER"
    ");"
    "CREATE TABLE push_state ("
    " enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,"
    " last_push_at BIGINT,"
    " last_status INTEGER,"
    " last_result TEXT,"
    " last_apns_id TEXT,"
    " pushes BIGINT NOT NULL DEFAULT 0,"
    " failures BIGINT NOT NULL DEFAULT 0,"
    " unregistered_at BIGINT,"
    " unregistered_token TEXT,"
    " backoff_until BIGINT"
    ");";

/* v5: enrollment users, portal sessions, OTA enrollment records.
 * web_sessions and web_throttle are generic (a realm column) so the
 * operators' console reuses them. Session ids and challenges are stored as
 * SHA-256 hex only. enroll_records is the history of who enrolled which
 * device how (ota, profile, configurator); it has no foreign keys so it
 * outlives users and enrollments. */
static const char migration_5[] =
    "CREATE TABLE enroll_users ("
    " name TEXT PRIMARY KEY,"
    " password_hash TEXT NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " last_sign_in_at BIGINT"
    ");"
    "CREATE TABLE web_sessions ("
    " id_hash TEXT PRIMARY KEY,"
    " realm TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " csrf TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);"
    "CREATE TABLE web_throttle ("
    " realm TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " failures INTEGER NOT NULL,"
    " window_start BIGINT NOT NULL,"
    " locked_until BIGINT NOT NULL DEFAULT 0,"
    " PRIMARY KEY (realm, key)"
    ");"
    "CREATE TABLE enroll_records ("
    " id TEXT PRIMARY KEY,"
    " user_name TEXT,"
    " method TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " phase INTEGER NOT NULL DEFAULT 0,"
    " challenge_hash TEXT UNIQUE,"
    " udid TEXT,"
    " serial TEXT,"
    " imei TEXT,"
    " iccid TEXT,"
    " product TEXT,"
    " version TEXT,"
    " mac TEXT,"
    " device_name TEXT,"
    " enrollment_id TEXT,"
    " reason TEXT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " enrolled_at BIGINT,"
    " ended_at BIGINT"
    ");"
    "CREATE INDEX enroll_records_udid ON enroll_records (udid);"
    "CREATE INDEX enroll_records_created ON enroll_records (created_at);";

/* v6: the inventory tables (store/inventory.c). inv_device holds the
 * fields devices are filtered by, one row per enrollment, so a filtered
 * listing reads one narrow row per device; everything else a device says
 * about itself (DeviceInformation, SecurityInfo) is in inv_values as typed
 * text. List answers get a table each, replaced on every full answer.
 * inv_history records what changed when; inv_refresh when the last full
 * inventory set was queued. No foreign keys on history so it outlives a
 * device's removal until retention drops it. */
static const char migration_6[] =
    "CREATE TABLE inv_device ("
    " enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,"
    " os_version TEXT,"
    " os_num BIGINT,"
    " build_version TEXT,"
    " model TEXT,"
    " model_name TEXT,"
    " product_name TEXT,"
    " serial_number TEXT,"
    " device_name TEXT,"
    " supervised INTEGER,"
    " battery_pct INTEGER,"
    " capacity_mb BIGINT,"
    " available_mb BIGINT,"
    " passcode_present INTEGER,"
    " passcode_compliant INTEGER,"
    " encryption_caps INTEGER,"
    " app_store_allowed INTEGER,"
    " device_at BIGINT,"
    " security_at BIGINT"
    ");"
    "CREATE INDEX inv_device_os ON inv_device (os_num);"
    "CREATE INDEX inv_device_model ON inv_device (product_name);"

    "CREATE TABLE inv_values ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " section TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " value TEXT,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (enrollment_id, section, name)"
    ");"

    "CREATE TABLE inv_profiles ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " identifier TEXT NOT NULL,"
    " uuid TEXT,"
    " version BIGINT,"
    " display_name TEXT,"
    " organization TEXT,"
    " description TEXT,"
    " is_managed INTEGER,"
    " is_encrypted INTEGER,"
    " removal_disallowed INTEGER,"
    " has_removal_passcode INTEGER,"
    " payload_types TEXT,"
    " signer TEXT,"
    " PRIMARY KEY (enrollment_id, identifier)"
    ");"
    "CREATE INDEX inv_profiles_identifier ON inv_profiles (identifier, enrollment_id);"

    "CREATE TABLE inv_certificates ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " fingerprint TEXT NOT NULL,"
    " common_name TEXT,"
    " subject TEXT,"
    " issuer TEXT,"
    " serial TEXT,"
    " not_before BIGINT,"
    " not_after BIGINT,"
    " is_identity INTEGER,"
    " PRIMARY KEY (enrollment_id, fingerprint)"
    ");"
    "CREATE INDEX inv_certificates_expiry ON inv_certificates (not_after, enrollment_id);"

    "CREATE TABLE inv_apps ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " identifier TEXT NOT NULL,"
    " name TEXT,"
    " version TEXT,"
    " short_version TEXT,"
    " bundle_size BIGINT,"
    " dynamic_size BIGINT,"
    " external_version BIGINT,"
    " installing INTEGER,"
    " PRIMARY KEY (enrollment_id, identifier)"
    ");"
    "CREATE INDEX inv_apps_identifier ON inv_apps (identifier, enrollment_id);"

    "CREATE TABLE inv_managed_apps ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " identifier TEXT NOT NULL,"
    " status TEXT,"
    " management_flags BIGINT,"
    " external_version BIGINT,"
    " has_configuration INTEGER,"
    " has_feedback INTEGER,"
    " is_validated INTEGER,"
    " unused_redemption_code TEXT,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (enrollment_id, identifier)"
    ");"
    "CREATE INDEX inv_managed_apps_identifier ON inv_managed_apps (identifier, status);"

    "CREATE TABLE inv_provisioning ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " uuid TEXT NOT NULL,"
    " name TEXT,"
    " expiry BIGINT,"
    " PRIMARY KEY (enrollment_id, uuid)"
    ");"

    "CREATE TABLE inv_restrictions ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " scope TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " value TEXT,"
    " PRIMARY KEY (enrollment_id, scope, kind, name)"
    ");"

    "CREATE TABLE inv_history ("
    " id {{ID}},"
    " enrollment_id TEXT NOT NULL,"
    " section TEXT NOT NULL,"
    " item TEXT NOT NULL,"
    " change TEXT NOT NULL,"
    " old_value TEXT,"
    " new_value TEXT,"
    " at BIGINT NOT NULL"
    ");"
    "CREATE INDEX inv_history_enrollment ON inv_history (enrollment_id, at);"
    "CREATE INDEX inv_history_at ON inv_history (at);"

    "CREATE TABLE inv_refresh ("
    " enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,"
    " queued_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX inv_refresh_queued ON inv_refresh (queued_at);";

/* v7: commands and apps (store/apps.c). The AccessRights each enrollment
 * granted (its enrollment profile's; all 13 bits unless told otherwise);
 * per-command lifecycle (deadline, retry lineage, who sent it); which
 * queue rows a retry replaced; enterprise and App Store apps steward
 * installs, and VPP redemption code pools, one code per device. The
 * queue_command index serves everything that works on one command across
 * devices (expire, cancel everywhere, retry, status). */
static const char migration_7[] =
    "ALTER TABLE enrollments ADD COLUMN access_rights BIGINT NOT NULL DEFAULT 8191;"
    "ALTER TABLE queue ADD COLUMN retried_as TEXT;"
    "CREATE INDEX queue_command ON queue (command_uuid);"
    "CREATE TABLE command_meta ("
    " uuid TEXT PRIMARY KEY REFERENCES commands (uuid) ON DELETE CASCADE,"
    " expires_at BIGINT,"
    " ttl BIGINT,"
    " retry_of TEXT,"
    " created_by TEXT,"
    " swept INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX command_meta_due ON command_meta (expires_at) WHERE swept = 0;"
    "CREATE TABLE apps ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " name TEXT,"
    " bundle_id TEXT,"
    " version TEXT,"
    " itunes_store_id BIGINT,"
    " ipa {{BLOB}},"
    " ipa_size BIGINT NOT NULL DEFAULT 0,"
    " ipa_sha256 TEXT,"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE app_codes ("
    " id {{ID}},"
    " app_id TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,"
    " code TEXT NOT NULL,"
    " enrollment_id TEXT,"
    " used_at BIGINT,"
    " created_at BIGINT NOT NULL,"
    " UNIQUE (app_id, code)"
    ");"
    "CREATE INDEX app_codes_free ON app_codes (app_id, id) WHERE used_at IS NULL;"
    "CREATE INDEX app_codes_device ON app_codes (app_id, enrollment_id);";

/* v8: admin users, roles, the audit log and webhooks.
 * - api_keys (v1) already carry a role; last_used_at is kept per key.
 * - admin_users: console accounts (argon2id PHC hashes) with a role.
 *   failed_count, locked_until and console_sessions were the console's own
 *   sign-in state before it moved to web/session.c's (migration 5): unused.
 * - audit_log: append-only, one row per change made through the API; the
 *   store has no call that updates or deletes a row.
 * - webhooks and webhook_deliveries: the endpoints and the persisted
 *   delivery queue (pending rows survive a restart) with each attempt's
 *   outcome. */
static const char migration_8[] =
    "ALTER TABLE api_keys ADD COLUMN last_used_at BIGINT;"
    "CREATE TABLE admin_users ("
    " name TEXT PRIMARY KEY,"
    " password_hash TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " failed_count INTEGER NOT NULL DEFAULT 0,"
    " locked_until BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL,"
    " last_login_at BIGINT"
    ");"
    "CREATE TABLE console_sessions ("
    " token_hash TEXT PRIMARY KEY,"
    " user_name TEXT NOT NULL REFERENCES admin_users (name) ON DELETE CASCADE,"
    " csrf TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " remote_addr TEXT"
    ");"
    "CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);"
    "CREATE TABLE audit_log ("
    " id {{ID}},"
    " at BIGINT NOT NULL,"
    " actor TEXT NOT NULL,"
    " role TEXT,"
    " method TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " target TEXT,"
    " status INTEGER NOT NULL,"
    " remote_addr TEXT,"
    " request_id TEXT"
    ");"
    "CREATE INDEX audit_log_at ON audit_log (at);"
    "CREATE INDEX audit_log_actor ON audit_log (actor, at);"
    "CREATE TABLE webhooks ("
    " id {{ID}},"
    " url TEXT NOT NULL,"
    " secret TEXT NOT NULL,"
    " events TEXT NOT NULL,"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " description TEXT,"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE webhook_deliveries ("
    " id {{ID}},"
    " webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,"
    " event_id TEXT NOT NULL,"
    " event_type TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_try_at BIGINT,"
    " last_http_status INTEGER,"
    " last_error TEXT,"
    " created_at BIGINT NOT NULL,"
    " delivered_at BIGINT"
    ");"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_try_at)"
    " WHERE status = 'pending';"
    "CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);";

/* v9: what several nodes on one PostgreSQL need.
 * - SQLite compares text bytewise; PostgreSQL by the database's locale
 *   unless told otherwise. Keys that are ordered or ranged over (user
 *   channels are the range [id || ':', id || ';')) compare bytewise in both.
 * - PostgreSQL has no rowid, and the queue's and certificates' statements
 *   break created_at ties by insertion order: there a real column of that
 *   name, filled in insertion order, stands in (SQLite keeps its own), with
 *   the unique index SQLite's rowid has built in.
 * - jobs: work any node may run, claimed by one (FOR UPDATE SKIP LOCKED on
 *   PostgreSQL) under a lease, so a node that dies mid-job leaves it to
 *   another once the lease ends (store_jobs.h). */
static const char migration_9[] =
    "{{PG}}"
    "ALTER TABLE enrollments ALTER COLUMN id TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE certs ALTER COLUMN serial TYPE TEXT COLLATE \"C\";"
    "ALTER TABLE queue ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;"
    "CREATE INDEX queue_order ON queue (enrollment_id, created_at, rowid) WHERE active = 1;"
    /* the claim updates the row it picked by rowid (SQLite's own key) */
    "CREATE UNIQUE INDEX queue_rowid ON queue (rowid);"
    "ALTER TABLE certs ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;"
    "{{/PG}}"
    "CREATE TABLE jobs ("
    " id {{ID}},"
    " kind TEXT NOT NULL,"
    " dedupe_key TEXT,"
    " payload {{BLOB}},"
    " run_at BIGINT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " locked_by TEXT,"
    " locked_until BIGINT,"
    " last_error TEXT,"
    " created_at BIGINT NOT NULL,"
    " done_at BIGINT"
    ");"
    /* Claims seek the runnable rows of one kind in run order. */
    "CREATE INDEX jobs_runnable ON jobs (kind, run_at) WHERE done_at IS NULL;"
    /* At most one unfinished job per (kind, key): enqueueing twice is a no-op. */
    "CREATE UNIQUE INDEX jobs_dedupe ON jobs (kind, dedupe_key)"
    " WHERE dedupe_key IS NOT NULL AND done_at IS NULL;";

/* v10: compliance (store/compliance.c). compliance_state is sparse: a row
 * exists once a device was other than compliant under a policy (then it
 * follows every transition); a device in scope without a row is compliant.
 * episode_since marks the start of the current non-compliance episode (NULL
 * when compliant) and fired the actions already run in it, as JSON
 * {"action": unix time}. compliance_device records when a device was last
 * evaluated on its own; the fleet run's time is on each policy. The
 * partial indexes let the fleet evaluation read the few inventory facts it
 * needs by name instead of scanning inv_values and inv_restrictions (they
 * cover what is read, so the big tables themselves are not visited). */
static const char migration_10[] =
    "CREATE TABLE compliance_policies ("
    " id {{ID}},"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT,"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " rules TEXT NOT NULL,"
    " scope TEXT NOT NULL,"
    " grace_seconds BIGINT NOT NULL DEFAULT 0,"
    " actions TEXT NOT NULL,"
    " wipe_enabled INTEGER NOT NULL DEFAULT 0,"
    " in_scope BIGINT NOT NULL DEFAULT 0,"
    " evaluated_at BIGINT,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE compliance_state ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " policy_id BIGINT NOT NULL REFERENCES compliance_policies (id) ON DELETE CASCADE,"
    " state TEXT NOT NULL,"
    " rule TEXT,"
    " observed TEXT,"
    " since BIGINT NOT NULL,"
    " evaluated_at BIGINT NOT NULL,"
    " episode_since BIGINT,"
    " fired TEXT,"
    " PRIMARY KEY (enrollment_id, policy_id)"
    ");"
    "CREATE INDEX compliance_state_policy ON compliance_state (policy_id, state);"
    "CREATE TABLE compliance_history ("
    " id {{ID}},"
    " enrollment_id TEXT NOT NULL,"
    " policy_id BIGINT,"
    " policy_name TEXT,"
    " kind TEXT NOT NULL,"
    " old_state TEXT,"
    " new_state TEXT,"
    " rule TEXT,"
    " observed TEXT,"
    " action TEXT,"
    " detail TEXT,"
    " at BIGINT NOT NULL"
    ");"
    "CREATE INDEX compliance_history_device ON compliance_history (enrollment_id, at);"
    "CREATE TABLE compliance_device ("
    " enrollment_id TEXT PRIMARY KEY REFERENCES enrollments (id) ON DELETE CASCADE,"
    " evaluated_at BIGINT NOT NULL,"
    " lost_at BIGINT,"
    " lost_message TEXT,"
    " lost_phone TEXT,"
    " wiped_at BIGINT"
    ");"
    "CREATE INDEX inv_values_reported ON inv_values (name, enrollment_id, updated_at)"
    " WHERE section = 'reported';"
    "CREATE INDEX inv_values_roaming ON inv_values (name, enrollment_id, value, updated_at)"
    " WHERE section = 'device' AND name IN ('IsRoaming', 'DataRoamingEnabled');"
    "CREATE INDEX inv_restrictions_global ON inv_restrictions (name, enrollment_id, value)"
    " WHERE scope = 'global';";

/* v11: configuration profiles (versions), groups, assignments, per-device
 * convergence state. */
static const char migration_11[] =
    /* A profile is its PayloadIdentifier; every upload or edit adds a version
     * (content: the unsigned plist, secrets included, never shown by the API). */
    "CREATE TABLE profiles ("
    " identifier TEXT PRIMARY KEY,"
    " display_name TEXT,"
    " current_version BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE profile_versions ("
    " identifier TEXT NOT NULL REFERENCES profiles (identifier) ON DELETE CASCADE,"
    " version BIGINT NOT NULL,"
    " payload_uuid TEXT NOT NULL,"
    " content {{BLOB}} NOT NULL,"
    " types TEXT,"
    " flags TEXT,"
    " has_secrets INTEGER NOT NULL DEFAULT 0,"
    " supervised_only INTEGER NOT NULL DEFAULT 0,"
    " source TEXT NOT NULL,"
    " signer TEXT,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (identifier, version)"
    ");"
    /* rules: JSON over inventory (model, os_min, os_max, supervised, user,
     * attributes); a device is a member when listed or when the rules match. */
    /* enter_settings / leave_settings: JSON arrays of Settings items sent
     * to a device when it joins / leaves the group (group_presence). */
    "CREATE TABLE device_groups ("
    " name TEXT PRIMARY KEY,"
    " description TEXT,"
    " rules TEXT,"
    " enter_settings TEXT,"
    " leave_settings TEXT,"
    " created_at BIGINT NOT NULL"
    ");"
    "CREATE TABLE group_presence ("
    " group_name TEXT NOT NULL,"
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " PRIMARY KEY (group_name, enrollment_id)"
    ");"
    "CREATE TABLE group_members ("
    " group_name TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,"
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " PRIMARY KEY (group_name, enrollment_id)"
    ");"
    "CREATE TABLE group_profiles ("
    " group_name TEXT NOT NULL REFERENCES device_groups (name) ON DELETE CASCADE,"
    " identifier TEXT NOT NULL REFERENCES profiles (identifier) ON DELETE CASCADE,"
    " created_at BIGINT NOT NULL,"
    " PRIMARY KEY (group_name, identifier)"
    ");"
    "CREATE TABLE device_attributes ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " PRIMARY KEY (enrollment_id, name)"
    ");"
    /* What steward sent each device: a row exists only for profiles steward
     * installs (or installed), so others are never touched. No foreign key
     * to profiles: a deleted profile's rows drive its removal. */
    "CREATE TABLE profile_states ("
    " enrollment_id TEXT NOT NULL REFERENCES enrollments (id) ON DELETE CASCADE,"
    " identifier TEXT NOT NULL,"
    " desired_version BIGINT,"
    " installed_uuid TEXT,"
    " installed_version BIGINT,"
    " state TEXT NOT NULL,"
    " action TEXT,"
    " command_uuid TEXT,"
    " detail TEXT,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (enrollment_id, identifier)"
    ");"
    "CREATE INDEX profile_states_identifier ON profile_states (identifier);"
    "CREATE INDEX profile_states_command ON profile_states (command_uuid);";

/* v12: the last run of each scheduled job across every node sharing the
 * database (store_sched_claim), so several nodes run a periodic job once
 * per interval between them, not once each. */
static const char migration_12[] =
    "CREATE TABLE sched_runs ("
    " name TEXT PRIMARY KEY,"
    " last_run BIGINT NOT NULL,"
    " owner TEXT,"
    " runs BIGINT NOT NULL DEFAULT 1"
    ");";

/* v13: the device listing's inventory filters (store/inventory.c).
 * inv_device_filter covers them: a filtered page walks it in enrollment id
 * order without reading the table, and the count of matches reads nothing
 * else. On PostgreSQL the id column compares bytewise like enrollments.id
 * (migration 9), so the listing's order by id is the index's order there
 * too; without it PostgreSQL sorted every match before returning a page. */
static const char migration_13[] =
    "{{PG}}ALTER TABLE inv_device ALTER COLUMN enrollment_id TYPE TEXT COLLATE \"C\";{{/PG}}"
    "CREATE INDEX inv_device_filter ON inv_device (enrollment_id, os_num, supervised,"
    " passcode_present, encryption_caps, battery_pct, product_name, model, model_name);";

/* v14: a leaner queue row, for enqueueing one command to a whole fleet
 * (bench/commands). Each queue row used to cost four B-tree inserts (the
 * table, its (enrollment_id, command_uuid) key, queue_next, queue_command)
 * and two foreign-key lookups. Now two indexes serve every path:
 * - queue_key (command_uuid, enrollment_id), unique: one row per device and
 *   command, everything that works on one command across devices (expire,
 *   cancel everywhere, retry, status) and on one (device, command);
 * - queue_device (active, enrollment_id, created_at): a device's waiting
 *   rows in delivery order (the claim, the check-in peek), the queue depth
 *   (/metrics counts the active = 1 range, not the answered rows), and a
 *   device's whole history as two ranges (active IN (0, 1)).
 * No foreign keys: enrollments and commands are never deleted, and every
 * statement that adds queue rows checks both itself (store_queue_add; the
 * bulk inserts join enrollments and the command), which the foreign keys
 * made cost one more lookup each per row.
 * SQLite cannot drop a key or foreign key in place, so the table is rebuilt,
 * rowids kept (they order rows queued in the same second); PostgreSQL's
 * rowid stand-in (migration 9) is kept the same way. */
static const char migration_14[] =
    "CREATE TABLE queue_v14 ("
    " enrollment_id TEXT NOT NULL,"
    " command_uuid TEXT NOT NULL,"
    " status TEXT,"
    " created_at BIGINT NOT NULL,"
    " delivered_at BIGINT,"
    " delivery_count INTEGER NOT NULL DEFAULT 0,"
    " updated_at BIGINT,"
    " active INTEGER NOT NULL DEFAULT 1,"
    " retried_as TEXT"
    "{{PG}}, rowid BIGINT GENERATED ALWAYS AS IDENTITY{{/PG}}"
    ");"
    "INSERT INTO queue_v14 (rowid, enrollment_id, command_uuid, status, created_at, delivered_at,"
    " delivery_count, updated_at, active, retried_as) {{PG}}OVERRIDING SYSTEM VALUE {{/PG}}"
    "SELECT rowid, enrollment_id, command_uuid, status, created_at, delivered_at,"
    " delivery_count, updated_at, active, retried_as FROM queue;"
    "DROP TABLE queue;"
    "ALTER TABLE queue_v14 RENAME TO queue;"
    "{{PG}}SELECT setval(pg_get_serial_sequence('queue', 'rowid'),"
    " COALESCE((SELECT max(rowid) FROM queue), 0) + 1, false);"
    "CREATE UNIQUE INDEX queue_rowid ON queue (rowid);{{/PG}}"
    "CREATE UNIQUE INDEX queue_key ON queue (command_uuid, enrollment_id);"
    "CREATE INDEX queue_device ON queue (active, enrollment_id, created_at{{PG}}, rowid{{/PG}});";

/* v15: the command queue on PostgreSQL, where every exchange updates two
 * queue rows (the report and the claim of the next). fillfactor 90 leaves
 * room on each page for a claim's new row version: the claim changes no
 * indexed column (queue_device keys on active, which only the report
 * changes), so it can be a HOT update, which writes no index entry at all
 * (on full pages it wrote one per index). SQLite has no such setting. */
static const char migration_15[] =
    "{{PG}}"
    "ALTER TABLE queue SET (fillfactor = 90);"
    "{{/PG}}";

/* v16: results without their foreign key on PostgreSQL. Checking it locked
 * the device's enrollments row (FOR KEY SHARE) in every report, a row lock
 * that writes the row's page and a WAL record each time: a deep queue's
 * every exchange paid for it. Nothing needs it: enrollments are never
 * deleted (so ON DELETE CASCADE never ran), and a result row is only ever
 * added by the report that just marked the device's queue row, which exists
 * only for an existing enrollment (migration 14). SQLite checks its foreign
 * key in-process for the price of one index lookup, and cannot drop it
 * without rebuilding the table, so it keeps it. */
static const char migration_16[] =
    "{{PG}}"
    "ALTER TABLE results DROP CONSTRAINT IF EXISTS results_enrollment_id_fkey;"
    "{{/PG}}";

const struct store_migration store_migrations[] = {
    {1, "initial schema", migration_1},
    {2, "certificates and challenges", migration_2},
    {3, "pki", migration_3},
    {4, "push", migration_4},
    {5, "enrollment users", migration_5},
    {6, "inventory", migration_6},
    {7, "commands and apps", migration_7},
    {8, "operators", migration_8},
    {9, "several nodes: jobs", migration_9},
    {10, "compliance", migration_10},
    {11, "profiles and groups", migration_11},
    {12, "shared schedule", migration_12},
    {13, "inventory filter index", migration_13},
    {14, "leaner queue rows", migration_14},
    {15, "queue fillfactor on PostgreSQL", migration_15},
    {16, "results without a foreign key on PostgreSQL", migration_16},
};
const size_t store_migrations_count = sizeof store_migrations / sizeof store_migrations[0];

const char store_schema_version_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " applied_at BIGINT NOT NULL"
    ")";

int store_migrations_latest(void)
{
    return store_migrations[store_migrations_count - 1].version;
}

int store_migrations_check_version(int version, char **err)
{
    if (version <= store_migrations_latest())
        return 0;
    log_error("store schema too new", "version=%d known=%d", version, store_migrations_latest());
    if (err && asprintf(err, "database schema: version %d is newer than this program's %d",
                        version, store_migrations_latest()) < 0)
        *err = NULL;
    return -1;
}

struct dialect_token {
    const char *token;
    const char *sqlite;
    const char *postgres;
};

/* INTEGER PRIMARY KEY makes the column SQLite's rowid (64-bit, assigned on
 * insert); PostgreSQL spells the same thing as an identity column. */
static const struct dialect_token dialect_tokens[] = {
    {"{{ID}}", "INTEGER PRIMARY KEY", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"},
    {"{{BLOB}}", "BLOB", "BYTEA"},
};

static const struct dialect_token *token_at(const char *p)
{
    for (size_t i = 0; i < sizeof dialect_tokens / sizeof dialect_tokens[0]; i++)
        if (strncmp(p, dialect_tokens[i].token, strlen(dialect_tokens[i].token)) == 0)
            return &dialect_tokens[i];
    return NULL;
}

/* {{PG}}…{{/PG}} holds statements only PostgreSQL runs: where it has no
 * counterpart of something SQLite has built in (rowid). */
static const char pg_open[] = "{{PG}}";
static const char pg_close[] = "{{/PG}}";

/* Two passes over the same walk: the first measures, the second writes. */
static size_t expand(const char *sql, enum store_dialect dialect, char *out, int *bad)
{
    size_t n = 0;
    for (const char *p = sql; *p;) {
        if (strncmp(p, pg_open, strlen(pg_open)) == 0) {
            const char *end = strstr(p, pg_close);
            if (!end) {
                *bad = 1;
                return 0;
            }
            if (dialect == STORE_DIALECT_POSTGRES) {
                p += strlen(pg_open); /* keep the inside; the close token is skipped below */
            } else {
                p = end + strlen(pg_close);
            }
            continue;
        }
        if (strncmp(p, pg_close, strlen(pg_close)) == 0) {
            p += strlen(pg_close);
            continue;
        }
        if (p[0] == '{' && p[1] == '{') {
            const struct dialect_token *t = token_at(p);
            if (!t) {
                *bad = 1;
                return 0;
            }
            const char *with = dialect == STORE_DIALECT_POSTGRES ? t->postgres : t->sqlite;
            size_t wl = strlen(with);
            if (out)
                memcpy(out + n, with, wl);
            n += wl;
            p += strlen(t->token);
            continue;
        }
        if (out)
            out[n] = *p;
        n++;
        p++;
    }
    return n;
}

char *store_migration_render(const char *sql, enum store_dialect dialect)
{
    int bad = 0;
    size_t n = expand(sql, dialect, NULL, &bad);
    if (bad)
        return NULL;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    expand(sql, dialect, out, &bad);
    out[n] = '\0';
    return out;
}
