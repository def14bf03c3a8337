#!/usr/bin/env bash
# CA management and external CAs. (1) An enterprise CA made with openssl
# (root + issuing intermediate, as behind Microsoft NDES): its device is
# refused (403) until device_ca_files names the chain, then enrolls and
# checks in over mTLS and Mdm-Signature. (2) `steward ca rotate`: a device of
# the old CA keeps working during the overlap window, new SCEP certificates
# come from the new CA (openssl verify), GetCACert serves both, and after the
# window the old device is refused. (3) `steward ca init --intermediate --ra`:
# root → intermediate → device chain, GetCACert as CA+RA PKCS#7, CertReps
# signed by the RA. (4) A tampered SCEP signature gets a FAILURE CertRep with
# failInfo badMessageCheck. Key files are 0600.
. "$(dirname "$0")/lib.sh"
init_data --set scep_external_url=https://ndes.example.com/certsrv/mscep/mscep.dll
start_server
mode_of() { stat -c %a "$1"; }
connect_status() { # CERTDIR UDID
  connect_plist "$2" Idle >"$T/idle-$2.plist"
  curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" --cert "$1/cert.pem" --key "$1/key.pem" \
    -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' --data-binary "@$T/idle-$2.plist" "$URL/mdm/connect"
}

# --- 1. an external enterprise CA
E=$T/ext; mkdir -p "$E" "$T/certs/extdev"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$E/root.key" -out "$E/root.pem" -days 30 \
  -subj "/O=Example Corp/CN=Example Root CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$E/int.key" -out "$E/int.csr" -subj "/O=Example Corp/CN=Example NDES Issuing CA" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$E/int.ext"
openssl x509 -req -in "$E/int.csr" -CA "$E/root.pem" -CAkey "$E/root.key" -CAcreateserial \
  -days 30 -extfile "$E/int.ext" -out "$E/int.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/certs/extdev/key.pem" -out "$E/dev.csr" -subj "/CN=ext-device" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$E/dev.ext"
openssl x509 -req -in "$E/dev.csr" -CA "$E/int.pem" -CAkey "$E/int.key" -CAcreateserial \
  -days 10 -extfile "$E/dev.ext" -out "$T/certs/extdev/cert.pem" 2>/dev/null
cat "$E/int.pem" "$E/root.pem" >"$E/chain.pem"
UEXT=EXT0-0000-0000-0000-000000000001

checkin_plist Authenticate "$UEXT" >"$T/auth-ext.plist"
r=$(device_put /mdm/checkin extdev "$T/auth-ext.plist")
expect_eq "enterprise CA device refused without device_ca_files" 403 "$(status_of "$r")"
stop_server
start_server --set "device_ca_files=$E/chain.pem"
grep -q 'device CA trusted' "$T/server.log" && pass || fail "server logs the trusted device CA file"
enroll_mtls extdev "$UEXT"
expect_eq "enterprise device checks in" 200 "$(connect_status "$T/certs/extdev" "$UEXT")"
r=$(api GET "/api/v1/devices/$UEXT")
expect_eq "enterprise device listed" 200 "$(status_of "$r")"
sig=$(mdm_signature extdev "$T/idle-$UEXT.plist")
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' \
  -H "Mdm-Signature: $sig" --data-binary "@$T/idle-$UEXT.plist" "$URL/mdm/connect")
expect_eq "enterprise device over Mdm-Signature" 200 "$code"
# the binding holds: another enterprise certificate cannot speak for this device
mkdir -p "$T/certs/extdev2"
openssl req -newkey rsa:2048 -nodes -keyout "$T/certs/extdev2/key.pem" -out "$E/dev2.csr" -subj "/CN=ext-device-2" 2>/dev/null
openssl x509 -req -in "$E/dev2.csr" -CA "$E/int.pem" -CAkey "$E/int.key" -CAcreateserial \
  -days 10 -extfile "$E/dev.ext" -out "$T/certs/extdev2/cert.pem" 2>/dev/null
expect_eq "another enterprise cert is not the bound one" 403 "$(connect_status "$T/certs/extdev2" "$UEXT")"
show=$("$BIN/steward" ca show --data-dir "$DATA")
expect_contains "ca show names the external SCEP URL" "https://ndes.example.com/certsrv/mscep/mscep.dll" "$show"

# --- 2. rotation with an overlap window
issue_cert olddev
UOLD=OLD0-0000-0000-0000-000000000001
enroll_mtls olddev "$UOLD"
old_fp=$(openssl x509 -in "$CA" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
stop_server
out=$("$BIN/steward" ca rotate --data-dir "$DATA")
expect_contains "rotate reports the overlap" "trusted for 30 days" "$out"
expect_eq "new CA key 0600" 600 "$(mode_of "$DATA/ca/ca.key")"
expect_eq "previous CA key 0600" 600 "$(mode_of "$DATA/ca/previous.key")"
new_fp=$(openssl x509 -in "$CA" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)
[ "$old_fp" != "$new_fp" ] && pass || fail "rotate must make a new CA"
rc=0; "$BIN/steward" ca rotate --data-dir "$DATA" >/dev/null 2>&1 || rc=$?
expect_eq "a second rotate inside the overlap window is refused" 1 "$rc"
show=$("$BIN/steward" ca show --data-dir "$DATA")
expect_contains "show: active CA fingerprint" "$new_fp" "$show"
expect_contains "show: previous CA fingerprint" "$old_fp" "$show"
expect_contains "show: key type" "RSA 3072" "$show"
expect_contains "show: overlap end" "trusted until:" "$show"
# The server certificate still chains to the old CA: clients trust both.
cat "$DATA/ca/ca.pem" "$DATA/ca/previous.pem" >"$T/bundle.pem"
CA=$T/bundle.pem; export STEWARD_CACERT=$CA
start_server
expect_eq "old CA's device still accepted in the overlap" 200 "$(connect_status "$T/certs/olddev" "$UOLD")"
curl -sS --cacert "$CA" -o "$T/cacert.p7" -D "$T/cacert.h" "$URL/scep?operation=GetCACert"
expect_contains "GetCACert is a CA bundle" "application/x-x509-ca-ra-cert" "$(cat "$T/cacert.h")"
n=$(openssl pkcs7 -inform DER -in "$T/cacert.p7" -print_certs | grep -c 'BEGIN CERTIFICATE')
expect_eq "GetCACert serves new and previous CA" 2 "$n"
openssl pkcs7 -inform DER -in "$T/cacert.p7" -print_certs >"$T/cacert.pem"
fps=$(while openssl x509 -noout -fingerprint -sha256 2>/dev/null; do :; done <"$T/cacert.pem" | sed 's/.*=//; s/://g' | tr A-F a-f)
expect_contains "GetCACert has the new CA" "$new_fp" "$fps"
expect_contains "GetCACert has the previous CA" "$old_fp" "$fps"
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --scep "$URL/scep" --poll-interval 1 --api-key "$KEY" --state "$T/newdev" enroll >"$T/newdev.log" 2>&1 \
  || { cat "$T/newdev.log"; fail "a device enrolls over SCEP after the rotation"; }
NEW=$(ls -d "$T"/newdev/device-* | head -1)
expect_contains "new certificate verifies against the new CA" ": OK" "$(openssl verify -CAfile "$DATA/ca/ca.pem" "$NEW/cert.pem" 2>&1)"
expect_not_contains "new certificate is not from the old CA" ": OK" "$(openssl verify -CAfile "$DATA/ca/previous.pem" "$NEW/cert.pem" 2>&1)"
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --scep "$URL/scep" --poll-interval 1 --state "$T/newdev" connect >"$T/newdev2.log" 2>&1 \
  && pass || { cat "$T/newdev2.log"; fail "the new device connects"; }
stop_server
start_server --set ca_overlap_days=0
expect_eq "old CA's device refused after the overlap" 403 "$(connect_status "$T/certs/olddev" "$UOLD")"
grep -q 'previous CA no longer trusted' "$T/server.log" && pass || fail "server logs the end of the overlap"
stop_server

# --- 3. ca init: refused over an existing CA; --force --intermediate --ra
rc=0; "$BIN/steward" ca init --data-dir "$DATA" >/dev/null 2>&1 || rc=$?
expect_eq "ca init refuses an existing CA" 1 "$rc"
"$BIN/steward" ca init --data-dir "$DATA" --force --intermediate --ra >"$T/cainit.log" 2>&1 \
  || { cat "$T/cainit.log"; fail "ca init --force --intermediate --ra"; }
[ ! -e "$DATA/ca/previous.pem" ] && pass || fail "ca init --force drops the previous CA"
for k in ca root ra; do expect_eq "$k.key 0600" 600 "$(mode_of "$DATA/ca/$k.key")"; done
expect_eq "ca.pem holds intermediate + root" 2 "$(grep -c 'BEGIN CERTIFICATE' "$DATA/ca/ca.pem")"
CA=$DATA/ca/root.pem; export STEWARD_CACERT=$CA
start_server
curl -sS --cacert "$CA" -o "$T/cacert2.p7" -D "$T/cacert2.h" "$URL/scep?operation=GetCACert"
expect_contains "GetCACert with an RA" "application/x-x509-ca-ra-cert" "$(cat "$T/cacert2.h")"
expect_eq "GetCACert: RA, intermediate, root" 3 "$(openssl pkcs7 -inform DER -in "$T/cacert2.p7" -print_certs | grep -c 'BEGIN CERTIFICATE')"
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --scep "$URL/scep" --poll-interval 1 --api-key "$KEY" --state "$T/radev" enroll >"$T/radev.log" 2>&1 \
  || { cat "$T/radev.log"; fail "a device enrolls through the RA"; }
RAD=$(ls -d "$T"/radev/device-* | head -1)
expect_contains "device cert chains root → intermediate" ": OK" \
  "$(openssl verify -CAfile "$DATA/ca/root.pem" -untrusted "$DATA/ca/ca.pem" "$RAD/cert.pem" 2>&1)"
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --scep "$URL/scep" --poll-interval 1 --state "$T/radev" connect >"$T/radev2.log" 2>&1 \
  && pass || { cat "$T/radev2.log"; fail "the intermediate-issued device connects"; }

# --- the expiry watcher: with a 365-day window the two SCEP devices (after
# the rotation, and through the RA) are due
stop_server
start_server --set cert_expiry_days=365
for _ in $(seq 1 50); do grep -q 'within_days=365' "$T/server.log" && break; sleep 0.1; done
m=$(curl -sS --cacert "$CA" "$URL/metrics"); [ -n "${DEBUG_METRICS:-}" ] && printf "%s\n" "$m" | grep cert
expect_contains "expiring metric" 'steward_certs_expiring{within="365d"} 2' "$m"
printf '%s\n' "$m" | grep -Eq '^steward_cert_soonest_expiry_days 36[45]\.[0-9]+$' && pass || fail "soonest expiry metric about 365 days"
grep -q 'certificate due for re-enrollment' "$T/server.log" && pass || fail "re-enrollment due logged"
exp=$("$BIN/stewardctl" certs expiring --days 400)
expect_contains "stewardctl certs expiring shows REENROLL" "REENROLL" "$exp"
expect_contains "the device is due" "due" "$exp"
j=$(api GET "/api/v1/certs?expiring_within_days=400")
expect_contains "API flag" '"reenroll": "due"' "$(body_of "$j" | sed 's/"reenroll":"/"reenroll": "/')"

# --- 4. a tampered SCEP signature: FAILURE badMessageCheck, nothing issued
if [ -n "$SHARED" ] && [ -f "$SHARED/vectors/scep/PKCSReq.der" ]; then
  before=$(api GET "/api/v1/certs?limit=1000" | sed '$d' | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$')
  cp "$SHARED/vectors/scep/PKCSReq.der" "$T/tampered.der"; chmod u+w "$T/tampered.der"
  # flip one byte inside the encrypted content, which the signature covers
  printf '\x00' | dd of="$T/tampered.der" bs=1 seek=600 conv=notrunc 2>/dev/null
  curl -sS --cacert "$CA" -D "$T/tamp.h" -o "$T/tamp.rep" -X POST -H 'Content-Type: application/x-pki-message' \
    --data-binary "@$T/tampered.der" "$URL/scep?operation=PKIOperation"
  expect_contains "tampered request answered with a CertRep" "application/x-pki-message" "$(cat "$T/tamp.h")"
  printed=$(openssl cms -cmsout -print -inform DER -in "$T/tamp.rep")
  expect_contains "failInfoText says why" "pkiMessage signature does not verify" "$printed"
  grep -q 'fail_info=1' "$T/server.log" && pass || fail "badMessageCheck (failInfo 1) logged"
  after=$(api GET "/api/v1/certs?limit=1000" | sed '$d' | grep -o '"total": *[0-9]*' | grep -o '[0-9]*$')
  expect_eq "nothing stored for the tampered request" "$before" "$after"
fi
finish
