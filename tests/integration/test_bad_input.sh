#!/usr/bin/env bash
# Bad input from devices and operators: each gets a clear 4xx with a reason
# and a log line, nothing stored changes, and the server keeps serving.
. "$(dirname "$0")/lib.sh"
init_data --set listen_http=127.0.0.1:0 --set read_timeout=2
start_server
issue_cert dev1
issue_cert dev2
A=00008030-001A2D3E0C41802E
enroll_mtls dev1 $A
r=$(api POST /api/v1/commands -d "{\"devices\":[\"$A\"],\"command\":{\"RequestType\":\"SecurityInfo\"}}")
expect_eq "baseline command" 200 "$(status_of "$r")"
before=$(api GET /api/v1/devices/$A | sed '$d' | sed 's/"last_seen_at":"[^"]*"//')
before_q=$(api GET /api/v1/devices/$A/commands | sed '$d')

connect_plist $A Idle >"$T/idle.plist"
# 1. malformed, truncated and binary-garbage plists
printf '<?xml version="1.0"?><plist version="1.0"><dict><key>UDID</key><string>%s' $A >"$T/trunc.plist"
r=$(device_put /mdm/connect dev1 "$T/trunc.plist"); expect_eq "truncated plist" 400 "$(status_of "$r")"
expect_contains "reason given" "malformed" "$(body_of "$r")"
head -c 3000 /dev/urandom >"$T/garbage.bin"
r=$(device_put /mdm/connect dev1 "$T/garbage.bin"); expect_eq "binary garbage" 400 "$(status_of "$r")"
printf 'bplist00\x01\x02\x03garbage-not-a-real-binary-plist' >"$T/badbin.plist"
r=$(device_put /mdm/connect dev1 "$T/badbin.plist"); expect_eq "broken binary plist" 400 "$(status_of "$r")"
printf '<plist version="1.0"><array><string>x</string></array></plist>' >"$T/array.plist"
r=$(device_put /mdm/connect dev1 "$T/array.plist"); expect_eq "plist root not a dict" 400 "$(status_of "$r")"
: >"$T/empty"
r=$(device_put /mdm/connect dev1 "$T/empty"); expect_eq "empty body" 400 "$(status_of "$r")"

# 2. wrong content type, wrong method
r=$(curl -sS --cacert "$CA" --cert "$T/certs/dev1/cert.pem" --key "$T/certs/dev1/key.pem" -X PUT \
  -H 'Content-Type: application/json' --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "wrong content type" 415 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" --cert "$T/certs/dev1/cert.pem" --key "$T/certs/dev1/key.pem" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "GET on a device route" 405 "$(status_of "$r")"

# 3. a 100 MB body is refused without being read
head -c 104857600 /dev/zero >"$T/huge"
r=$(device_put /mdm/connect dev1 "$T/huge" 2>/dev/null || true)
code=$(status_of "$r")
case "$code" in 413) pass ;; *) fail "100 MB body: expected 413, got '$code'" ;; esac
rm -f "$T/huge"

# 4. a body that never finishes: the connection is dropped after read_timeout
start=$(date +%s)
exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT
printf 'PUT /mdm/connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-apple-aspen-mdm\r\nContent-Length: 5000\r\n\r\n<plist' >&3
timeout 15 cat <&3 >/dev/null || true
exec 3<&- 3>&-
elapsed=$(( $(date +%s) - start ))
if [ "$elapsed" -le 10 ]; then pass; else fail "slow body held the connection for ${elapsed}s"; fi

# 5. missing UDID, bad UDID characters, SQL metacharacters and path tricks in ids
printf '<plist version="1.0"><dict><key>Status</key><string>Idle</string></dict></plist>' >"$T/noudid.plist"
r=$(device_put /mdm/connect dev1 "$T/noudid.plist"); expect_eq "missing UDID" 400 "$(status_of "$r")"
expect_contains "reason says UDID" "UDID" "$(body_of "$r")"
connect_plist "x'; DROP TABLE queue;--" Idle >"$T/sqli.plist"
r=$(device_put /mdm/connect dev1 "$T/sqli.plist"); expect_eq "SQL metacharacters in UDID" 400 "$(status_of "$r")"
connect_plist "../../etc/passwd" Idle >"$T/path.plist"
r=$(device_put /mdm/connect dev1 "$T/path.plist"); expect_eq "path trick in UDID" 400 "$(status_of "$r")"
r=$(api GET "/api/v1/devices/x'%3B%20DROP%20TABLE%20enrollments%3B--")
expect_eq "SQL metacharacters in API id" 404 "$(status_of "$r")"
r=$(api GET "/api/v1/devices/..%2F..%2Fetc%2Fpasswd")
expect_eq "encoded slash in API id" 400 "$(status_of "$r")"
r=$(api GET "/api/v1/devices/%ZZ")
expect_eq "broken percent-encoding" 400 "$(status_of "$r")"

# 6. unknown device (valid certificate, never enrolled)
connect_plist 00008030-00000000DEADBEEF Idle >"$T/unknown.plist"
r=$(device_put /mdm/connect dev2 "$T/unknown.plist")
expect_eq "unknown device" 403 "$(status_of "$r")"
expect_contains "unrecognized code" "com.apple.unrecognized.device" "$(body_of "$r")"

# 7. a certificate from another CA
mkdir -p "$T/other"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other/ca.key" -out "$T/other/ca.pem" -subj /CN=OtherCA -days 30 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$T/certs/rogue.key" -out "$T/rogue.csr" -subj /CN=rogue 2>/dev/null
openssl x509 -req -in "$T/rogue.csr" -CA "$T/other/ca.pem" -CAkey "$T/other/ca.key" -CAcreateserial -out "$T/certs/rogue.pem" -days 30 2>/dev/null
mkdir -p "$T/certs/rogue"; mv "$T/certs/rogue.pem" "$T/certs/rogue/cert.pem"; mv "$T/certs/rogue.key" "$T/certs/rogue/key.pem"
r=$(device_put /mdm/connect rogue "$T/idle.plist"); expect_eq "another CA's certificate (mTLS)" 403 "$(status_of "$r")"
expect_contains "reason names the CA" "CA" "$(body_of "$r")"
r=$(curl -sS --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' \
  -H "Mdm-Signature: $(mdm_signature rogue "$T/idle.plist")" --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "another CA's certificate (signature)" 403 "$(status_of "$r")"

# 8. no identity at all; tampered signature; signature over a different body
r=$(curl -sS --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "no identity" 403 "$(status_of "$r")"
sig=$(mdm_signature dev1 "$T/idle.plist")
bad=$(printf '%s' "$sig" | sed 's/A/B/5; s/Q/R/20')
r=$(curl -sS --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' -H "Mdm-Signature: $bad" --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "tampered signature" 403 "$(status_of "$r")"
connect_plist $A Idle "" '	<key>Extra</key><string>x</string>' >"$T/idle2.plist"
r=$(curl -sS --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' -H "Mdm-Signature: $sig" --data-binary "@$T/idle2.plist" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "signature over a different body" 403 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' -H "Mdm-Signature: %%%not-base64%%%" --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$URL/mdm/connect")
expect_eq "garbage signature" 403 "$(status_of "$r")"

# 9. one certificate reused for a second UDID; the bound device with another cert
checkin_plist Authenticate 00008030-0000000000000B0B >"$T/auth2.plist"
r=$(device_put /mdm/checkin dev1 "$T/auth2.plist"); expect_eq "certificate reused for a second UDID" 403 "$(status_of "$r")"
expect_contains "reason" "another enrollment" "$(body_of "$r")"
r=$(device_put /mdm/connect dev2 "$T/idle.plist"); expect_eq "enrolled device with another certificate" 403 "$(status_of "$r")"
# a trusted-proxy header from an untrusted address is ignored
der=$(openssl x509 -in "$T/certs/dev1/cert.pem" -outform DER | base64 -w0)
r=$(curl -sS -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' -H "Client-Cert: :$der:" --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$HTTP_URL/mdm/connect")
expect_eq "Client-Cert from an untrusted address" 403 "$(status_of "$r")"

# 10. operator mistakes: invalid JSON, missing or wrong API key, bad commands
r=$(api POST /api/v1/commands -d '{"devices": [')
expect_eq "invalid JSON" 400 "$(status_of "$r")"
expect_contains "bad_json code" '"bad_json"' "$(body_of "$r")"
r=$(api POST /api/v1/commands -d "{\"devices\":[\"$A\"],\"command\":{\"NoRequestType\":1}}")
expect_eq "command without RequestType" 400 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "$URL/api/v1/devices")
expect_eq "missing API key" 401 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -H 'Authorization: Bearer stw_wrong' -w '\nHTTP %{http_code}' "$URL/api/v1/devices")
expect_eq "wrong API key" 401 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -u "nanomdm:wrong" -X PUT --data-binary "@$T/idle.plist" -w '\nHTTP %{http_code}' "$URL/v1/enqueue/$A")
expect_eq "wrong key on the NanoMDM route" 401 "$(status_of "$r")"
r=$(api GET "/api/v1/devices?limit=-5"); expect_eq "bad limit" 400 "$(status_of "$r")"
r=$(api GET /api/v1/nothing-here); expect_eq "unknown API route" 404 "$(status_of "$r")"

# nothing stored changed, and the server still serves
after=$(api GET /api/v1/devices/$A | sed '$d' | sed 's/"last_seen_at":"[^"]*"//')
expect_eq "device record unchanged" "$before" "$after"
after_q=$(api GET /api/v1/devices/$A/commands | sed '$d')
expect_eq "queue unchanged" "$before_q" "$after_q"
r=$(device_put /mdm/connect dev1 "$T/idle.plist")
expect_contains "still serving the queued command" "SecurityInfo" "$(body_of "$r")"
r=$(api GET "/api/v1/devices"); expect_contains "one device total" '"total":1' "$(body_of "$r")"
kill -0 "$SERVER_PID" || fail "server died"
grep -q 'status=415' "$T/server.log" && pass || fail "no log line for the 415"
grep -q 'reason="unknown device' "$T/server.log" && pass || fail "no log line for the unknown device"
finish
