-- populate.sql: a fleet of :N devices with inventory, written straight into
-- the tables (bench/compliance/run replaces 100000 and NOW). Varied so
-- every policy of the bench has compliant and non-compliant devices.
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
CREATE TEMP TABLE n AS WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 100000 - 1) SELECT x FROM c;
INSERT INTO enrollments (id, status, type, created_at, enrolled_at, last_seen_at)
  SELECT printf('DEV-%08d', x), 2, 'Device', NOW, NOW, CASE WHEN x % 20 = 0 THEN NOW - 9 * 86400 ELSE NOW - (x % 3) * 3600 END FROM n;
INSERT INTO inv_device (enrollment_id, os_version, os_num, supervised, passcode_present, passcode_compliant, encryption_caps, device_at, security_at)
  SELECT printf('DEV-%08d', x),
         CASE x % 10 WHEN 0 THEN '16.7.10' WHEN 1 THEN '17.4.1' WHEN 2 THEN '17.6.1' WHEN 3 THEN '18.0' ELSE '18.1' END,
         0, x % 10 != 0, x % 20 != 0, x % 25 != 0, CASE WHEN x % 50 = 0 THEN 1 ELSE 3 END,
         CASE WHEN x % 97 = 0 THEN NOW - 30 * 86400 ELSE NOW - 3600 END, NOW - 3600 FROM n;
INSERT INTO inv_values (enrollment_id, section, name, type, value, updated_at)
  SELECT printf('DEV-%08d', x), 'reported', s.name, 'date', NOW, NOW - 3600
  FROM n, (SELECT 'profiles' AS name UNION ALL SELECT 'certificates' UNION ALL SELECT 'apps' UNION ALL SELECT 'restrictions') s;
INSERT INTO inv_values (enrollment_id, section, name, type, value, updated_at)
  SELECT printf('DEV-%08d', x), 'device', 'DataRoamingEnabled', 'bool', CASE WHEN x % 15 = 0 THEN 'true' ELSE 'false' END, NOW - 3600 FROM n;
INSERT INTO inv_values (enrollment_id, section, name, type, value, updated_at)
  SELECT printf('DEV-%08d', x), 'device', 'IsRoaming', 'bool', CASE WHEN x % 100 = 0 THEN 'true' ELSE 'false' END, NOW - 3600 FROM n;
-- some DeviceInformation values that are not read, as a real inv_values has
INSERT INTO inv_values (enrollment_id, section, name, type, value, updated_at)
  SELECT printf('DEV-%08d', x), 'device', v.name, 'string', 'value-' || x, NOW - 3600
  FROM n, (SELECT 'DeviceName' AS name UNION ALL SELECT 'SerialNumber' UNION ALL SELECT 'ModelName' UNION ALL SELECT 'BuildVersion' UNION ALL SELECT 'IMEI' UNION ALL SELECT 'ICCID' UNION ALL SELECT 'WiFiMAC' UNION ALL SELECT 'BluetoothMAC') v;
INSERT INTO inv_profiles (enrollment_id, identifier, is_managed, payload_types)
  SELECT printf('DEV-%08d', x), 'com.example.enroll', 1, 'com.apple.mdm,com.apple.security.scep' FROM n;
INSERT INTO inv_profiles (enrollment_id, identifier, is_managed, payload_types)
  SELECT printf('DEV-%08d', x), 'com.example.wifi', 1, 'com.apple.wifi.managed' FROM n WHERE x % 10 != 0;
INSERT INTO inv_apps (enrollment_id, identifier, name)
  SELECT printf('DEV-%08d', x), 'com.example.app' || k, 'App ' || k
  FROM n, (WITH RECURSIVE a(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM a WHERE k < 9) SELECT k FROM a)
  WHERE (x + k) % 3 != 0 OR k < 3;
INSERT INTO inv_apps (enrollment_id, identifier, name)
  SELECT printf('DEV-%08d', x), 'com.example.game', 'Game' FROM n WHERE x % 30 = 0;
INSERT INTO inv_certificates (enrollment_id, fingerprint, common_name, not_after)
  SELECT printf('DEV-%08d', x), 'fp-identity-' || x, printf('DEV-%08d', x), NOW + (x % 400) * 86400 FROM n;
INSERT INTO inv_certificates (enrollment_id, fingerprint, common_name, not_after)
  SELECT printf('DEV-%08d', x), 'fp-root-' || x, 'Root', NOW + 3650 * 86400 FROM n;
INSERT INTO inv_restrictions (enrollment_id, scope, kind, name, value)
  SELECT printf('DEV-%08d', x), 'global', 'restrictedBool', r.name,
         CASE r.name WHEN 'allowCamera' THEN CASE WHEN x % 10 = 0 THEN 'true' ELSE 'false' END
                     WHEN 'forcePIN' THEN CASE WHEN x % 20 != 0 THEN 'true' ELSE 'false' END
                     ELSE CASE WHEN x % 8 = 0 THEN 'false' ELSE 'true' END END
  FROM n, (SELECT 'allowCamera' AS name UNION ALL SELECT 'forcePIN' UNION ALL SELECT 'allowAppInstallation' UNION ALL SELECT 'allowCloudBackup' UNION ALL SELECT 'allowSafari') r;
COMMIT;
ANALYZE;
