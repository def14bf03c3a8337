#!/usr/bin/env bash
# Devices get their identity over SCEP like iOS: steward-devsim --scep enrolls
# 3 devices with one-time challenges from the API (certs listed, verified by
# openssl, devices answer commands); a replayed and a wrong challenge are
# refused; `renew` moves the device to a new certificate and the old one is
# refused once the new one was used; a revoked certificate is refused and in
# the CRL; with scep_manual_approval the device polls until approved.
. "$(dirname "$0")/lib.sh"
init_data
start_server
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA")
SCEP=(--scep "$URL/scep" --poll-interval 1)

# issued_total: how many certificates the API lists as issued
issued_total() {
  api GET "/api/v1/certs?status=issued&limit=1000" | sed '$d' | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$'
}
all_total() { # every certificate record, whatever its status
  api GET "/api/v1/certs?limit=1000" | sed '$d' | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$'
}
serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'; }
udid_of() { grep -A1 '<key>UDID</key>' "$1/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p'; }
# idle_with CERT KEY UDID: PUT an Idle to /mdm/connect with that identity; prints the status
idle_with() {
  connect_plist "$3" Idle >"$T/idle-$3.plist"
  curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$1" --key "$2" -X PUT \
    -H 'Content-Type: application/x-apple-aspen-mdm' --data-binary "@$T/idle-$3.plist" "$URL/mdm/connect"
}

# --- 1. three devices: SCEP (one-time challenge each) → Authenticate → TokenUpdate → connect
"${SIM[@]}" "${SCEP[@]}" --api-key "$KEY" --state "$T/fleet" --count 3 run >"$T/run1.log" 2>&1 \
  || { cat "$T/run1.log"; fail "3 devices enroll over SCEP and connect"; }
expect_eq "three issued certificates" 3 "$(issued_total)"
certs=$(api GET "/api/v1/certs?status=issued" | sed '$d')
expect_eq "each issued certificate has a device" 3 "$(printf '%s' "$certs" | grep -o '"device": *"[^"]\+"' | wc -l)"
for dir in "$T"/fleet/device-*; do
  out=$(openssl verify -CAfile "$CA" "$dir/cert.pem" 2>&1)
  expect_contains "openssl verifies $(basename "$dir")" ": OK" "$out"
  subj=$(openssl x509 -in "$dir/cert.pem" -noout -subject -nameopt RFC2253)
  expect_contains "subject names the UDID" "CN=$(udid_of "$dir")" "$subj"
done
ids=$(printf '%s' "$certs" | grep -o '"device": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' | sort -u)
devs=$(printf '"%s",' $ids | sed 's/,$//')
r=$(api POST /api/v1/commands -d "{\"devices\":[$devs],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"OSVersion\",\"SerialNumber\"]}}")
expect_eq "enqueue DeviceInformation" 200 "$(status_of "$r")"
"${SIM[@]}" "${SCEP[@]}" --state "$T/fleet" --count 3 connect >"$T/run2.log" 2>&1 \
  || { cat "$T/run2.log"; fail "SCEP devices connect again with their stored identity"; }
expect_eq "no new certificates on a second connect" 3 "$(issued_total)"
for i in $ids; do
  r=$(api GET "/api/v1/devices/$i/commands")
  expect_contains "DeviceInformation acknowledged by $i" '"status":"Acknowledged"' "$(body_of "$r")"
  expect_contains "DeviceInformation result of $i" '"OSVersion"' "$(body_of "$r")"
done

# --- 2. a one-time challenge cannot be replayed; a wrong one is refused
r=$(api POST /api/v1/scep/challenges -d '{"created_for":"replay test"}')
expect_eq "challenge created" 201 "$(status_of "$r")"
ch=$(body_of "$r" | sed -n 's/.*"challenge": *"\([^"]*\)".*/\1/p')
expect_eq "challenge is 32 hex characters" 32 "${#ch}"
"${SIM[@]}" "${SCEP[@]}" --challenge "$ch" --state "$T/a" enroll >"$T/a.log" 2>&1 \
  || { cat "$T/a.log"; fail "device A enrolls with the challenge"; }
expect_eq "device A's certificate issued" 4 "$(issued_total)"
before_b=$(all_total)
rc=0; "${SIM[@]}" "${SCEP[@]}" --challenge "$ch" --state "$T/b" enroll >"$T/b.log" 2>&1 || rc=$?
expect_eq "device B with the replayed challenge exits 1" 1 "$rc"
expect_contains "B is told FAILURE" "FAILURE" "$(cat "$T/b.log")"
expect_eq "no certificate for B" 4 "$(issued_total)"
expect_eq "no record at all for B" "$before_b" "$(all_total)"
[ ! -f "$T/b/device-00000/cert.pem" ] && pass || fail "B must keep no identity"
rc=0; "${SIM[@]}" "${SCEP[@]}" --challenge not-a-challenge --state "$T/c" enroll >"$T/c.log" 2>&1 || rc=$?
expect_eq "a wrong challenge exits 1" 1 "$rc"
expect_eq "no certificate for a wrong challenge" 4 "$(issued_total)"

# --- 3. renew: the new certificate works, the old one is refused once the new one was used
D0=$T/fleet/device-00000
U0=$(udid_of "$D0")
cp "$D0/cert.pem" "$T/old-cert.pem"; cp "$D0/key.pem" "$T/old-key.pem"
"${SIM[@]}" "${SCEP[@]}" --state "$T/fleet" --count 1 renew >"$T/renew.log" 2>&1 \
  || { cat "$T/renew.log"; fail "renew"; }
if cmp -s "$D0/cert.pem" "$T/old-cert.pem"; then fail "renew must replace cert.pem"; else pass; fi
if cmp -s "$D0/key.pem" "$T/old-key.pem"; then fail "renew must use a new key"; else pass; fi
out=$(openssl verify -CAfile "$CA" "$D0/cert.pem" 2>&1); expect_contains "renewed cert verifies" ": OK" "$out"
new=$(api GET "/api/v1/certs/$(serial_of "$D0/cert.pem")" | sed '$d')
expect_contains "renewed cert remembers what it renewed" "\"renewed_from\": \"$(openssl x509 -in "$T/old-cert.pem" -outform DER | sha256sum | cut -d' ' -f1)\"" "$(printf '%s' "$new" | sed 's/":"/": "/g')"
"${SIM[@]}" "${SCEP[@]}" --state "$T/fleet" --count 1 connect >"$T/renew-connect.log" 2>&1 \
  || { cat "$T/renew-connect.log"; fail "connect with the renewed certificate"; }
expect_eq "the old certificate is refused after the new one was used" 403 "$(idle_with "$T/old-cert.pem" "$T/old-key.pem" "$U0")"
expect_eq "the new certificate still works" 200 "$(idle_with "$D0/cert.pem" "$D0/key.pem" "$U0")"
old=$(api GET "/api/v1/certs/$(serial_of "$T/old-cert.pem")" | sed '$d')
expect_contains "the superseded certificate is revoked" '"revoked"' "$old"
checkin_plist Authenticate 00008030-00000000000000AA >"$T/auth-other.plist"
r=$(curl -sS --cacert "$CA" --cert "$T/old-cert.pem" --key "$T/old-key.pem" -X PUT \
  -H 'Content-Type: application/x-apple-aspen-mdm-checkin' --data-binary "@$T/auth-other.plist" \
  -w '\nHTTP %{http_code}' "$URL/mdm/checkin")
expect_eq "the superseded certificate cannot enroll another UDID" 403 "$(status_of "$r")"

# --- 4. revoke: next connect 403, serial in the CRL
D1=$T/fleet/device-00001
S1=$(serial_of "$D1/cert.pem")
r=$(api POST "/api/v1/certs/$S1/revoke" -d '{"reason":"lost device"}')
expect_eq "revoke" 200 "$(status_of "$r")"
expect_contains "revoked status" '"revoked"' "$(body_of "$r")"
rc=0; "${SIM[@]}" "${SCEP[@]}" --state "$T/fleet" --count 2 connect >"$T/revoked.log" 2>&1 || rc=$?
expect_eq "connect of the fleet with a revoked device exits 1" 1 "$rc"
expect_contains "the revoked device gets 403" "$(udid_of "$D1") Idle: HTTP 403" "$(cat "$T/revoked.log")"
expect_not_contains "the other device is fine" "$U0 Idle: HTTP" "$(cat "$T/revoked.log")"
curl -sS --cacert "$CA" -o "$T/crl.der" "$URL/scep/crl"
crl=$(openssl crl -inform DER -in "$T/crl.der" -noout -text 2>&1)
expect_contains "the CRL lists the revoked serial" "Serial Number: $S1" "$crl"
out=$(openssl crl -inform DER -in "$T/crl.der" -noout -verify -CAfile "$CA" 2>&1)
expect_contains "the CRL is signed by the CA" "verify OK" "$out"

# --- 5. manual approval: the device polls until an operator approves
stop_server
start_server --set scep_manual_approval=1
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA")
SCEP=(--scep "$URL/scep" --poll-interval 1 --poll-max 60)
"${SIM[@]}" "${SCEP[@]}" --api-key "$KEY" --state "$T/manual" -v run >"$T/manual.log" 2>&1 &
SIMPID=$!
serial=
for _ in $(seq 1 100); do
  serial=$(api GET "/api/v1/certs?status=pending" | sed '$d' | { grep -o '"serial": *"[^"]*"' || true; } | head -n1 | sed 's/.*"\([^"]*\)"$/\1/')
  [ -n "$serial" ] && break
  sleep 0.1
done
[ -n "$serial" ] && pass || fail "the request shows as pending"
kill -0 "$SIMPID" 2>/dev/null && pass || fail "devsim waits (polls) while pending"
r=$(api POST "/api/v1/certs/$serial/approve")
expect_eq "approve" 200 "$(status_of "$r")"
rc=0; wait "$SIMPID" || rc=$?
expect_eq "devsim finishes after approval" 0 "$rc"
[ "$rc" = 0 ] || cat "$T/manual.log"
expect_contains "it polled with CertPoll" "phase=CertPoll pki_status=0" "$(cat "$T/manual.log")"
out=$(openssl verify -CAfile "$CA" "$T/manual/device-00000/cert.pem" 2>&1)
expect_contains "the approved certificate verifies" ": OK" "$out"
expect_eq "approved serial is the device's" "$(echo "$serial" | tr a-f A-F)" "$(serial_of "$T/manual/device-00000/cert.pem")"
finish
