-- reference.sql: the same rows the fleet evaluation reads (the device
-- join, the reported times, the apps, profiles and restrictions it names,
-- the roaming values, the expiring certificates, the state rows), read
-- with the sqlite3 shell and summed so every column is touched.
SELECT count(*), sum(length(e.id)), sum(e.last_seen_at), sum(length(d.os_version)), sum(d.supervised),
       sum(d.passcode_present), sum(d.passcode_compliant), sum(d.encryption_caps), sum(d.device_at), sum(d.security_at)
  FROM enrollments e LEFT JOIN inv_device d ON d.enrollment_id = e.id WHERE e.status = 2 AND e.parent_id IS NULL;
SELECT count(*), sum(updated_at) FROM inv_values WHERE section = 'reported' AND name IN ('profiles', 'certificates', 'apps', 'restrictions');
SELECT count(*), sum(length(enrollment_id)) FROM inv_apps WHERE identifier IN ('com.example.app1', 'com.example.app2', 'com.example.game', 'com.example.casino');
SELECT count(*), sum(is_managed) FROM inv_profiles WHERE identifier IN ('com.example.wifi', 'com.example.enroll');
SELECT count(*), sum(length(value)) FROM inv_restrictions WHERE scope = 'global' AND name IN ('allowCamera', 'forcePIN', 'allowAppInstallation');
SELECT count(*), sum(length(value)) FROM inv_values WHERE section = 'device' AND name IN ('IsRoaming', 'DataRoamingEnabled');
SELECT count(*), sum(m) FROM (SELECT enrollment_id, MIN(not_after) AS m FROM inv_certificates WHERE not_after < NOWPLUS GROUP BY enrollment_id);
SELECT count(*), sum(length(state)), sum(since) FROM compliance_state;
