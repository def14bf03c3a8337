#!/usr/bin/env bash
# The check-in and command protocol end to end over real TLS, driven with curl
# as a device would: Authenticate/TokenUpdate over mTLS and over Mdm-Signature,
# a command to two devices, Acknowledged with a result, NotNow held back until
# the next Idle, the single /mdm URL, bootstrap tokens, UserAuthenticate 410,
# and CheckOut followed by Apple's unrecognized-device answer.
. "$(dirname "$0")/lib.sh"
init_data
start_server
issue_cert dev1
issue_cert dev2
A=00008030-001A2D3E0C41802E
B=00008110-000E58A93C80401E

# --- device A enrolls over mutual TLS
enroll_mtls dev1 $A
r=$(api GET /api/v1/devices/$A)
expect_eq "device A found" 200 "$(status_of "$r")"
expect_contains "A enrolled" '"status":"enrolled"' "$(body_of "$r")"
expect_contains "A token hex" '"push_token":"abcdef1234567890abcdef1234567890abcdef1234567890abcdef1234567890"' "$(body_of "$r")"
expect_contains "A unlock token kept" '"has_unlock_token":true' "$(body_of "$r")"
expect_contains "A serial" '"serial_number":"F2LX41802E"' "$(body_of "$r")"
expect_not_contains "unlock token never returned" 'VW5sb2Nr' "$(body_of "$r")"

# --- device B enrolls with Mdm-Signature and no client certificate
checkin_plist Authenticate $B >"$T/authB.plist"
checkin_plist TokenUpdate $B "$(token_update_extra)" >"$T/tokB.plist"
sig_put() { # path certname bodyfile
  local s; s=$(mdm_signature "$2" "$3")
  curl -sS --cacert "$CA" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' \
    -H "Mdm-Signature: $s" --data-binary "@$3" -w '\nHTTP %{http_code}' "$URL$1"
}
r=$(sig_put /mdm/checkin dev2 "$T/authB.plist"); expect_eq "B Authenticate by signature" 200 "$(status_of "$r")"
r=$(sig_put /mdm/checkin dev2 "$T/tokB.plist"); expect_eq "B TokenUpdate by signature" 200 "$(status_of "$r")"

r=$(api GET "/api/v1/devices?status=enrolled")
expect_contains "two enrolled" '"total":2' "$(body_of "$r")"

# --- one command to both devices
r=$(api POST /api/v1/commands -H 'Content-Type: application/json' \
  -d "{\"devices\":[\"$A\",\"$B\"],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"OSVersion\",\"SerialNumber\"]}}")
expect_eq "enqueue to two" 200 "$(status_of "$r")"
UUID=$(body_of "$r" | sed -n 's/.*"command_uuid":"\([^"]*\)".*/\1/p')
[ -n "$UUID" ] || fail "no command_uuid in $(body_of "$r")"

# A: Idle → the command → Acknowledged → empty (queue drained)
connect_plist $A Idle >"$T/idleA.plist"
r=$(device_put /mdm/connect dev1 "$T/idleA.plist")
expect_eq "A idle" 200 "$(status_of "$r")"
expect_contains "A gets the command" "$UUID" "$(body_of "$r")"
expect_contains "A gets DeviceInformation" "<string>DeviceInformation</string>" "$(body_of "$r")"
connect_plist $A Acknowledged "$UUID" '	<key>QueryResponses</key>
	<dict>
		<key>OSVersion</key>
		<string>18.1</string>
		<key>SerialNumber</key>
		<string>F2LX41802E</string>
	</dict>' >"$T/ackA.plist"
r=$(device_put /mdm/connect dev1 "$T/ackA.plist")
expect_eq "A ack" 200 "$(status_of "$r")"
expect_eq "A queue drained: empty body" "" "$(body_of "$r")"

# B: Idle → command → NotNow → held back (empty) → Idle → same command again → Acknowledged
connect_plist $B Idle >"$T/idleB.plist"
r=$(sig_put /mdm/connect dev2 "$T/idleB.plist"); expect_contains "B gets the command" "$UUID" "$(body_of "$r")"
connect_plist $B NotNow "$UUID" >"$T/notnowB.plist"
r=$(sig_put /mdm/connect dev2 "$T/notnowB.plist")
expect_eq "B NotNow answered" 200 "$(status_of "$r")"
expect_eq "NotNow'd command held back in the same exchange" "" "$(body_of "$r")"
r=$(api GET /api/v1/devices/$B/commands)
expect_contains "B shows NotNow" '"status":"NotNow"' "$(body_of "$r")"
r=$(sig_put /mdm/connect dev2 "$T/idleB.plist")
expect_contains "NotNow'd command redelivered on next Idle" "$UUID" "$(body_of "$r")"
connect_plist $B Error "$UUID" '	<key>ErrorChain</key>
	<array>
		<dict>
			<key>ErrorCode</key>
			<integer>12021</integer>
			<key>ErrorDomain</key>
			<string>MCMDMErrorDomain</string>
			<key>LocalizedDescription</key>
			<string>Test error</string>
		</dict>
	</array>' >"$T/errB.plist"
r=$(sig_put /mdm/connect dev2 "$T/errB.plist"); expect_eq "B error report" 200 "$(status_of "$r")"

r=$(api GET /api/v1/devices/$A/commands)
expect_contains "A result stored" '"status":"Acknowledged"' "$(body_of "$r")"
expect_contains "A result has QueryResponses" '"QueryResponses"' "$(body_of "$r")"
expect_contains "A result value" '"F2LX41802E"' "$(body_of "$r")"
r=$(api GET /api/v1/devices/$B/commands)
expect_contains "B error stored" '"status":"Error"' "$(body_of "$r")"
expect_contains "B ErrorChain kept" '"ErrorCode":12021' "$(body_of "$r")"

# --- the single /mdm URL takes both kinds
r=$(api POST /api/v1/commands -d "{\"devices\":[\"$A\"],\"command\":{\"RequestType\":\"ProfileList\"}}")
expect_eq "enqueue ProfileList" 200 "$(status_of "$r")"
r=$(device_put /mdm dev1 "$T/idleA.plist"); expect_contains "/mdm serves commands" "ProfileList" "$(body_of "$r")"
r=$(device_put /mdm dev1 "$T/tok-$A.plist"); expect_eq "/mdm serves check-ins" 200 "$(status_of "$r")"

# --- bootstrap token, UserAuthenticate, unknown MessageType
checkin_plist SetBootstrapToken $A '	<key>BootstrapToken</key>
	<data>Ym9vdHN0cmFwLXRva2Vu</data>' >"$T/setbt.plist"
r=$(device_put /mdm/checkin dev1 "$T/setbt.plist"); expect_eq "SetBootstrapToken" 200 "$(status_of "$r")"
checkin_plist GetBootstrapToken $A >"$T/getbt.plist"
r=$(device_put /mdm/checkin dev1 "$T/getbt.plist")
expect_eq "GetBootstrapToken" 200 "$(status_of "$r")"
expect_contains "bootstrap token returned" "Ym9vdHN0cmFwLXRva2Vu" "$(body_of "$r")"
checkin_plist UserAuthenticate $A '	<key>UserID</key>
	<string>A1B2C3D4-0000-1111-2222-333344445555</string>' >"$T/ua.plist"
r=$(device_put /mdm/checkin dev1 "$T/ua.plist"); expect_eq "UserAuthenticate declined" 410 "$(status_of "$r")"
checkin_plist FancyNewThing $A >"$T/unk.plist"
r=$(device_put /mdm/checkin dev1 "$T/unk.plist")
expect_eq "unknown MessageType" 400 "$(status_of "$r")"
expect_contains "reason names it" "FancyNewThing" "$(body_of "$r")"

# --- mTLS with an Mdm-Signature beside it (iOS with SignMessage): the TLS
# certificate is the identity; the signature must carry that certificate
r=$(device_put /mdm/connect dev1 "$T/idleA.plist" -H "Mdm-Signature: $(mdm_signature dev1 "$T/idleA.plist")")
expect_eq "mTLS + its own Mdm-Signature" 200 "$(status_of "$r")"
r=$(device_put /mdm/connect dev1 "$T/idleA.plist" -H "Mdm-Signature: $(mdm_signature dev2 "$T/idleA.plist")")
expect_eq "mTLS + another device's Mdm-Signature refused" 403 "$(status_of "$r")"
grep -q "Mdm-Signature is not made with the TLS client certificate" "$T/server.log" \
  && pass || fail "the mismatch is logged with its reason"

# --- CheckOut, then the device is unknown: Apple's unenroll answer
checkin_plist CheckOut $A >"$T/co.plist"
r=$(device_put /mdm/checkin dev1 "$T/co.plist"); expect_eq "CheckOut" 200 "$(status_of "$r")"
r=$(api GET /api/v1/devices/$A); expect_contains "A checked out" '"status":"checked_out"' "$(body_of "$r")"
r=$(device_put /mdm/connect dev1 "$T/idleA.plist")
expect_eq "checked-out device refused" 403 "$(status_of "$r")"
expect_contains "unrecognized device code" "com.apple.unrecognized.device" "$(body_of "$r")"

# --- TLS: 1.3 with one session ticket, resumption keeps the client
# certificate, anything below 1.2 refused
tls() { # extra s_client args…; a HEAD request, the transcript on stdout
  printf 'HEAD /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
    timeout 10 openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername localhost \
      -CAfile "$CA" -cert "$T/certs/dev1/cert.pem" -key "$T/certs/dev1/key.pem" -ign_eof "$@" 2>&1 || true
}
out=$(tls -msg -sess_out "$T/tls.sess")
expect_contains "TLS 1.3 by default" "TLSv1.3" "$out"
expect_eq "one session ticket per handshake" 1 "$(printf '%s\n' "$out" | grep -c '<<< .*NewSessionTicket')"
out=$(tls -sess_in "$T/tls.sess")
expect_contains "session resumed from the ticket" "Reused, TLSv1.3" "$out"
out=$(tls -tls1_1)
expect_not_contains "TLS 1.1 refused" "New, TLSv1.1" "$out"

# --- metrics and health
r=$(curl -sS --cacert "$CA" "$URL/metrics")
expect_contains "metrics requests" 'steward_http_requests_total{route="/mdm/connect",status="200"}' "$r"
expect_contains "metrics histogram" 'steward_checkin_duration_seconds_bucket' "$r"
expect_contains "metrics queue depth" 'steward_queue_depth' "$r"
dbcount=$(printf '%s\n' "$r" | sed -n 's/^steward_db_duration_seconds_count \([0-9]*\).*/\1/p')
if [ "${dbcount:-0}" -gt 10 ]; then pass; else fail "database latency not measured (count=${dbcount:-none})"; fi
r=$(curl -sS --cacert "$CA" "$URL/readyz"); expect_contains "ready" "ready" "$r"
r=$(curl -sS --cacert "$CA" "$URL/version"); expect_contains "version" '"version"' "$r"
finish
