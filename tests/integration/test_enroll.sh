#!/usr/bin/env bash
# Enrollment (issue 4): enrollment users (steward user, API); the signed
# enrollment profile (stewardctl enroll profile) verifies with openssl and
# parses with plistutil, and steward-devsim --method profile enrolls from it;
# the portal (HTTPS only, CSRF, cookie attributes, wrong password, lock-out,
# disabled user); Apple's three-phase OTA enrollment with steward-devsim
# --method ota recorded against the signed-in user, the device then gets
# commands; bad input: replayed challenge, untrusted signer, garbage and
# oversized bodies, skipped phase, UDID changed between phases, device B
# cannot decrypt device A's profile; CheckOut ends the record.
. "$(dirname "$0")/lib.sh"
TOPIC=com.apple.mgmt.External.2c4a1e7f-9b43-4f0e-8d1e-5f2a3b6c7d8e

# A stand-in for Apple's iPhone Device CA, and a certificate it issues.
mkdir -p "$T/apple"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/apple/ca.key" -out "$T/apple/ca.pem" \
  -subj "/CN=Test iPhone Device CA" -days 30 -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign 2>/dev/null
# device_cert NAME CN [CA]: an RSA certificate (CA: apple, or self) → $T/apple/NAME.{pem,key}
device_cert() {
  openssl req -newkey rsa:2048 -nodes -keyout "$T/apple/$1.key" -out "$T/apple/$1.csr" -subj "/CN=$2" 2>/dev/null
  if [ "${3:-apple}" = apple ]; then
    openssl x509 -req -in "$T/apple/$1.csr" -CA "$T/apple/ca.pem" -CAkey "$T/apple/ca.key" \
      -CAcreateserial -days 30 -out "$T/apple/$1.pem" 2>/dev/null
  else
    openssl x509 -req -in "$T/apple/$1.csr" -signkey "$T/apple/$1.key" -days 30 -out "$T/apple/$1.pem" 2>/dev/null
  fi
}

init_data --set "enroll_topic=$TOPIC" --set listen_http=127.0.0.1:0
start_server --set "enroll_device_ca_files=$T/apple/ca.pem" --set enroll_max_failures=3
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA")
CTL=("$BIN/stewardctl")

# --- users: steward user and the API
printf 'correct horse battery\n' | "$BIN/steward" user add alice --data-dir "$DATA" >/dev/null \
  || fail "steward user add alice"
out=$(printf 'x\n' | "$BIN/steward" user add shorty --data-dir "$DATA" 2>&1) && fail "a short password is refused"
expect_contains "short password message" "at least 8" "$out"
r=$(api POST /api/v1/enroll/users -d '{"name":"bob","password":"bobs password"}')
expect_eq "API creates bob" 201 "$(status_of "$r")"
r=$(api POST /api/v1/enroll/users -d '{"name":"bob","password":"another one"}')
expect_eq "duplicate user" 409 "$(status_of "$r")"
r=$(api POST /api/v1/enroll/users -d '{"name":"bad name!","password":"whatever12"}')
expect_eq "bad user name" 400 "$(status_of "$r")"
r=$(api POST /api/v1/enroll/users -d '{"name":"carol","password":"short"}')
expect_eq "short API password" 400 "$(status_of "$r")"
r=$(api POST /api/v1/enroll/users -d 'not json')
expect_eq "garbage user body" 400 "$(status_of "$r")"
printf 'dave password\n' | "$BIN/steward" user add dave --data-dir "$DATA" >/dev/null
r=$(api PATCH /api/v1/enroll/users/dave -d '{"disabled":true}')
expect_eq "disable dave" 200 "$(status_of "$r")"
expect_contains "dave disabled" '"disabled": true' "$(body_of "$r" | sed 's/"disabled":true/"disabled": true/')"
r=$(api PATCH /api/v1/enroll/users/nobody -d '{"disabled":true}')
expect_eq "patch unknown user" 404 "$(status_of "$r")"
r=$(api GET /api/v1/enroll/users)
expect_contains "users listed" '"alice"' "$(body_of "$r")"
expect_contains "users listed" '"bob"' "$(body_of "$r")"
expect_not_contains "no hashes in the API" 'argon2' "$(body_of "$r")"
out=$("$BIN/steward" user list --data-dir "$DATA")
expect_contains "steward user list shows dave disabled" "disabled" "$(printf '%s' "$out" | grep dave)"

# --- the signed enrollment profile
"${CTL[@]}" enroll profile --user bob >"$T/enroll.mobileconfig" || fail "stewardctl enroll profile"
openssl cms -verify -purpose any -inform DER -in "$T/enroll.mobileconfig" -CAfile "$CA" \
  -out "$T/enroll.plist" 2>"$T/verify.log"
expect_contains "openssl verifies the profile" "Verification successful" "$(cat "$T/verify.log")"
plistutil -i "$T/enroll.plist" -o "$T/enroll.bin" -f bin || fail "plistutil parses the profile"
p=$(cat "$T/enroll.plist")
for k in com.apple.security.root com.apple.security.scep com.apple.mdm "$TOPIC" \
  "<key>AccessRights</key>" "<integer>8191</integer>" "<key>SignMessage</key>" \
  "<key>CheckOutWhenRemoved</key>" "<key>IdentityCertificateUUID</key>" "<key>Key Usage</key>" \
  "<integer>5</integer>" "<key>Keysize</key>" "<integer>2048</integer>" "$URL/mdm/connect" \
  "$URL/mdm/checkin" "$URL/scep" "com.apple.mdm.bootstraptoken" "enroll_topic"; do
  expect_contains "profile has $k" "$k" "$p"
done
ch=$(printf '%s' "$p" | grep -A1 '<key>Challenge</key>' | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
expect_eq "one-time SCEP challenge in the profile" 32 "${#ch}"
hdr=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $KEY" -D - -o /dev/null "$URL/api/v1/enroll/profile")
expect_contains "content type" "application/x-apple-aspen-config" "$hdr"
expect_contains "mobileconfig filename" 'filename="enroll.mobileconfig"' "$hdr"
r=$(api GET "/api/v1/enroll/profile?user=bad%20name")
expect_eq "profile for a bad user name" 400 "$(status_of "$r")"

# steward-devsim installs it like Apple Configurator
"${SIM[@]}" --api-key "$KEY" --method profile --state "$T/prof" run >"$T/prof.log" 2>&1 \
  || { cat "$T/prof.log"; fail "devsim --method profile"; }
pudid=$(grep -A1 '<key>UDID</key>' "$T/prof/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
r=$(api GET "/api/v1/devices/$pudid")
expect_contains "profile-enrolled device is enrolled" '"status":"enrolled"' "$(body_of "$r" | tr -d ' ')"

# --- portal
jar=$T/jar
portal() { curl -sS --cacert "$CA" -c "$jar" -b "$jar" -w '\nHTTP %{http_code}' "$@"; }
csrf_of() { printf '%s' "$1" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -n1; }
hdr=$(curl -sS --cacert "$CA" -D - -o "$T/page.html" "$URL/enroll")
expect_contains "sign-in page" 'name="password"' "$(cat "$T/page.html")"
expect_contains "mobile viewport" 'name="viewport"' "$(cat "$T/page.html")"
csrf_cookie=$(printf '%s' "$hdr" | grep -i '^set-cookie: __Host-steward_enroll_csrf=')
for a in Secure HttpOnly SameSite=Strict "Path=/"; do
  expect_contains "CSRF cookie $a" "$a" "$csrf_cookie"
done
r=$(curl -sS -w '\nHTTP %{http_code}' "$HTTP_URL/enroll")
expect_eq "portal over plain HTTP refused" 403 "$(status_of "$r")"
r=$(portal "$URL/enroll"); tok=$(csrf_of "$r")
r=$(portal -X POST "$URL/enroll" -d "csrf=0000&username=alice&password=correct+horse+battery")
expect_eq "bad CSRF token refused" 403 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' -X POST "$URL/enroll" -d "csrf=$tok&username=alice&password=correct+horse+battery")
expect_eq "CSRF token without its cookie refused" 403 "$(status_of "$r")"
r=$(portal -X POST "$URL/enroll" -d "csrf=$tok&username=alice&password=wrong+password")
expect_eq "wrong password" 401 "$(status_of "$r")"
expect_contains "wrong password message" "Wrong user name or password" "$r"
r=$(portal "$URL/enroll"); tok=$(csrf_of "$r")
r=$(portal -X POST "$URL/enroll" -d "csrf=$tok&username=dave&password=dave+password")
expect_eq "disabled user refused" 401 "$(status_of "$r")"
r=$(portal "$URL/enroll/profile")
expect_eq "profile needs a sign-in (redirect)" 303 "$(status_of "$r")"
# brute force: three failures lock bob out, even with the right password
for i in 1 2 3; do
  r=$(portal "$URL/enroll"); tok=$(csrf_of "$r")
  r=$(portal -X POST "$URL/enroll" -d "csrf=$tok&username=bob&password=guess$i+guess")
done
expect_eq "third failure" 401 "$(status_of "$r")"
r=$(portal "$URL/enroll"); tok=$(csrf_of "$r")
r=$(portal -D "$T/lock.h" -X POST "$URL/enroll" -d "csrf=$tok&username=bob&password=bobs+password")
expect_eq "locked out" 429 "$(status_of "$r")"
expect_contains "lock-out message" "Too many failed sign-ins" "$r"
expect_contains "Retry-After" "Retry-After" "$(cat "$T/lock.h")"
grep -q 'outcome=locked' "$T/server.log" && pass || fail "lock-out logged"
# alice still signs in
r=$(portal "$URL/enroll"); tok=$(csrf_of "$r")
r=$(portal -D "$T/signin.h" -X POST "$URL/enroll" -d "csrf=$tok&username=alice&password=correct+horse+battery")
expect_eq "alice signs in" 303 "$(status_of "$r")"
sess=$(grep -i '^set-cookie: __Host-steward_enroll=' "$T/signin.h")
for a in Secure HttpOnly SameSite=Strict; do expect_contains "session cookie $a" "$a" "$sess"; done
r=$(portal "$URL/enroll")
expect_contains "signed-in page" "Signed in as <strong>alice" "$r"

# phase 1 by hand: the Profile Service profile
phase1() { # → $T/p1.plist, prints the challenge
  portal -o "$T/p1.der" "$URL/enroll/profile" >/dev/null
  openssl cms -verify -purpose any -inform DER -in "$T/p1.der" -CAfile "$CA" -out "$T/p1.plist" 2>/dev/null
  grep -A1 '<key>Challenge</key>' "$T/p1.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p'
}
c1=$(phase1)
expect_contains "Profile Service payload" "<string>Profile Service</string>" "$(cat "$T/p1.plist")"
for a in UDID IMEI ICCID VERSION PRODUCT SERIAL MAC_ADDRESS_EN0 DEVICE_NAME; do
  expect_contains "asks for $a" "<string>$a</string>" "$(cat "$T/p1.plist")"
done
expect_contains "posts to /enroll/ota" "$URL/enroll/ota" "$(cat "$T/p1.plist")"
# attrs UDID CHALLENGE SERIAL → $T/attrs.plist
attrs() {
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>UDID</key><string>%s</string><key>CHALLENGE</key><string>%s</string><key>SERIAL</key><string>%s</string><key>PRODUCT</key><string>iPhone15,2</string></dict></plist>\n' "$1" "$2" "$3" >"$T/attrs.plist"
}
# post_signed NAME_DIR CERT KEY → status of POST /enroll/ota with attrs signed by CERT
post_signed() {
  openssl cms -sign -nodetach -binary -outform DER -md sha256 -in "$T/attrs.plist" \
    -signer "$1" -inkey "$2" -out "$T/attrs.p7" 2>/dev/null
  curl -sS --cacert "$CA" -o "$T/ota-answer" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/pkcs7-signature' --data-binary "@$T/attrs.p7" "$URL/enroll/ota"
}
device_cert untrusted "untrusted" self
device_cert handmade "00008120-0000AAAA0000BBBB"
attrs 00008120-0000AAAA0000BBBB "$c1" SERIALHAND1
expect_eq "attributes signed by an untrusted certificate" 403 \
  "$(post_signed "$T/apple/untrusted.pem" "$T/apple/untrusted.key")"
expect_contains "untrusted reason" "untrusted" "$(cat "$T/ota-answer")"
attrs 00008120-0000AAAA0000BBBB "not-the-challenge" SERIALHAND1
expect_eq "unknown challenge" 403 "$(post_signed "$T/apple/handmade.pem" "$T/apple/handmade.key")"
attrs 00008120-0000AAAA0000BBBB "$c1" SERIALHAND1
expect_eq "phase 2 accepted" 200 "$(post_signed "$T/apple/handmade.pem" "$T/apple/handmade.key")"
openssl cms -verify -purpose any -inform DER -in "$T/ota-answer" -CAfile "$CA" -out "$T/p2.plist" 2>/dev/null
expect_contains "phase 2 answers a SCEP payload" "com.apple.security.scep" "$(cat "$T/p2.plist")"
expect_not_contains "phase 2 has no MDM payload yet" "com.apple.mdm" "$(cat "$T/p2.plist")"
expect_contains "SCEP subject names the UDID" "00008120-0000AAAA0000BBBB" "$(cat "$T/p2.plist")"
expect_eq "replayed challenge" 403 "$(post_signed "$T/apple/handmade.pem" "$T/apple/handmade.key")"
expect_contains "replay reason" "already used" "$(cat "$T/ota-answer")"
# an expired challenge (its record aged in the database, SQLite or PostgreSQL)
db_exec() {
  if [ -n "${STEWARD_TEST_DSN:-}" ]; then psql -q "$STEWARD_TEST_DSN" -c "$1" >/dev/null
  else sqlite3 "$DATA/steward.db" "$1"; fi
}
c2=$(phase1)
db_exec "UPDATE enroll_records SET expires_at = 1 WHERE phase = 1 AND status = 'pending'"
attrs 00008120-0000AAAA0000BBBB "$c2" SERIALHAND1
expect_eq "expired challenge" 403 "$(post_signed "$T/apple/handmade.pem" "$T/apple/handmade.key")"
expect_contains "expired reason" "expired" "$(cat "$T/ota-answer")"

# garbage, tampered and oversized bodies
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' -X POST --data-binary 'garbage' "$URL/enroll/ota")
expect_eq "garbage attributes" 400 "$(status_of "$r")"
cp "$T/attrs.p7" "$T/tampered.p7"; printf 'X' | dd of="$T/tampered.p7" bs=1 seek=120 conv=notrunc 2>/dev/null
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' -X POST --data-binary "@$T/tampered.p7" "$URL/enroll/ota")
expect_eq "tampered signature" 400 "$(status_of "$r")"
head -c 400000 /dev/urandom >"$T/big"
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' -X POST --data-binary "@$T/big" "$URL/enroll/ota")
expect_eq "oversized attributes" 400 "$(status_of "$r")"
# skipping phase 2: a steward identity for a device that never did phase 2
issue_cert 00008120-0000CCCC0000DDDD
attrs 00008120-0000CCCC0000DDDD "$c1" SERIALSKIP1
expect_eq "phase 3 without phase 2" 403 \
  "$(post_signed "$T/certs/00008120-0000CCCC0000DDDD/cert.pem" "$T/certs/00008120-0000CCCC0000DDDD/key.pem")"

# --- OTA with steward-devsim: alice enrolls an iPhone
OTA=(--method ota --enroll-user alice --enroll-password "correct horse battery"
     --device-ca-cert "$T/apple/ca.pem" --device-ca-key "$T/apple/ca.key")
"${SIM[@]}" "${OTA[@]}" --state "$T/ota" run >"$T/ota.log" 2>&1 \
  || { cat "$T/ota.log"; fail "devsim --method ota run"; }
oudid=$(grep -A1 '<key>UDID</key>' "$T/ota/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
r=$(api GET "/api/v1/enrollments?user=alice&status=enrolled")
b=$(body_of "$r" | tr -d ' ')
expect_contains "OTA enrollment recorded against alice" "\"enrollment_id\":\"$oudid\"" "$b"
expect_contains "method ota" '"method":"ota"' "$b"
expect_contains "attributes stored" '"product":"iPhone15,2"' "$b"
out=$("${CTL[@]}" enroll list --user alice)
expect_contains "stewardctl enroll list" "enrolled" "$out"
r=$(api GET "/api/v1/devices/$oudid")
expect_contains "OTA device is enrolled" '"status":"enrolled"' "$(body_of "$r" | tr -d ' ')"
expect_contains "with the configured topic" "$TOPIC" "$(body_of "$r")"
r=$(api POST /api/v1/commands -d "{\"devices\":[\"$oudid\"],\"command\":{\"RequestType\":\"ProfileList\"}}")
expect_eq "enqueue ProfileList" 200 "$(status_of "$r")"
"${SIM[@]}" --state "$T/ota" --signature connect >"$T/ota2.log" 2>&1 || { cat "$T/ota2.log"; fail "OTA device connects"; }
r=$(api GET "/api/v1/devices/$oudid/commands")
expect_contains "OTA device answered ProfileList" '"request_type":"ProfileList","status":"Acknowledged"' "$(body_of "$r" | tr -d ' ')"

# device B cannot decrypt device A's final profile; A can
openssl cms -verify -purpose any -inform DER -in "$T/ota/device-00000/ota-final.mobileconfig" \
  -CAfile "$CA" -out "$T/final.plist" 2>/dev/null
expect_contains "final profile is encrypted" "EncryptedPayloadContent" "$(cat "$T/final.plist")"
expect_not_contains "no clear PayloadContent" "com.apple.mdm" "$(cat "$T/final.plist")"
sed -n '/<key>EncryptedPayloadContent<\/key>/,/<\/data>/p' "$T/final.plist" | sed '1,2d;$d' | tr -d ' \t\n' \
  | base64 -d >"$T/final.p7m"
if openssl cms -decrypt -inform DER -in "$T/final.p7m" -recip "$T/apple/handmade.pem" \
  -inkey "$T/apple/handmade.key" >/dev/null 2>&1; then fail "device B decrypted A's profile"; else pass; fi
# (device A itself decrypted it: the devsim run above installed its payloads)

# UDID that changes between phases: phase 2 for one UDID, phase 3 claiming another
"${SIM[@]}" "${OTA[@]}" --state "$T/half" --ota-stop 2 enroll >"$T/half.log" 2>&1 \
  || { cat "$T/half.log"; fail "devsim stops after phase 2"; }
hudid=$(grep -A1 '<key>UDID</key>' "$T/half/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
attrs 00008120-FFFF00000000EEEE "$c1" SERIALX
expect_eq "phase 3 with another UDID" 403 \
  "$(post_signed "$T/half/device-00000/cert.pem" "$T/half/device-00000/key.pem")"
expect_contains "UDID change reason" "not issued to the device" "$(cat "$T/ota-answer")"
attrs "$hudid" "$c1" SERIAL-CHANGED
expect_eq "phase 3 with changed attributes" 403 \
  "$(post_signed "$T/half/device-00000/cert.pem" "$T/half/device-00000/key.pem")"
r=$(api GET "/api/v1/enrollments?status=failed")
expect_contains "failed enrollment recorded" "changed between phases" "$(body_of "$r")"
r=$(api GET "/api/v1/devices/$hudid")
expect_eq "nothing enrolled for the failed device" 404 "$(status_of "$r")"

# Authenticate must match what phase 2 stored: the serial number, and an identity issued for this UDID
auth_as() { # STATE-DIR CERTNAME UDID SERIAL → status of Authenticate over mTLS with CERTNAME
  checkin_plist Authenticate "$3" "	<key>SerialNumber</key>
	<string>$4</string>" >"$T/auth-x.plist"
  r=$(device_put /mdm/checkin "$2" "$T/auth-x.plist"); status_of "$r"
}
take_cert() { mkdir -p "$T/certs/$2"; cp "$1/cert.pem" "$1/key.pem" "$T/certs/$2/"; }
for n in s1 s2; do
  "${SIM[@]}" "${OTA[@]}" --state "$T/$n" --ota-stop 3 enroll >"$T/$n.log" 2>&1 \
    || { cat "$T/$n.log"; fail "devsim stops after phase 3 ($n)"; }
  take_cert "$T/$n/device-00000" "$n"
done
s1udid=$(grep -A1 '<key>UDID</key>' "$T/s1/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
s2udid=$(grep -A1 '<key>UDID</key>' "$T/s2/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
expect_eq "Authenticate with another serial number" 403 "$(auth_as "$T/s1" s1 "$s1udid" OTHERSERIAL)"
s2serial=$(grep -A1 '<key>SerialNumber</key>' "$T/s2/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
expect_eq "Authenticate with another device's identity" 403 "$(auth_as "$T/s2" s1 "$s2udid" "$s2serial")"
r=$(api GET "/api/v1/enrollments?status=failed")
expect_contains "serial mismatch recorded" "serial number differs" "$(body_of "$r")"
expect_contains "identity mismatch recorded" "issued for another device" "$(body_of "$r")"
r=$(api GET "/api/v1/devices/$s2udid")
expect_eq "nothing enrolled after a mismatch" 404 "$(status_of "$r")"

# CheckOut ends the enrollment record
"${SIM[@]}" --state "$T/ota" --signature checkout >"$T/co.log" 2>&1 || { cat "$T/co.log"; fail "checkout"; }
r=$(api GET "/api/v1/enrollments?user=alice&status=unenrolled")
expect_contains "record unenrolled after CheckOut" "\"enrollment_id\":\"$oudid\"" "$(body_of "$r" | tr -d ' ')"

# Ending management: unenroll queues RemoveProfile for the enrollment profile
out=$("${CTL[@]}" devices unenroll "$pudid") || fail "stewardctl devices unenroll"
expect_contains "unenroll message" "RemoveProfile queued" "$out"
r=$(api GET "/api/v1/devices/$pudid/commands")
expect_contains "RemoveProfile queued" '"request_type":"RemoveProfile"' "$(body_of "$r" | tr -d ' ')"
"${SIM[@]}" --state "$T/prof" --signature connect >"$T/rm.log" 2>&1 || { cat "$T/rm.log"; fail "device gets RemoveProfile"; }
r=$(api GET "/api/v1/devices/$pudid/commands")
expect_contains "device acknowledged RemoveProfile" '"request_type":"RemoveProfile","status":"Acknowledged"' "$(body_of "$r" | tr -d ' ')"
r=$(api POST /api/v1/devices/no-such-device/unenroll)
expect_eq "unenroll an unknown device" 404 "$(status_of "$r")"
# Apple Configurator downloads are recorded as such
"${CTL[@]}" enroll profile --configurator >"$T/cfg.mobileconfig" || fail "configurator profile"
r=$(api GET "/api/v1/enrollments?status=issued")
expect_contains "configurator record" '"method":"configurator"' "$(body_of "$r" | tr -d ' ')"

finish
