#!/usr/bin/env bash
# Operators: roles enforced per route (viewer, operator, admin keys and
# console users), console sign-in with CSRF and lockout, an audit entry for
# every change made through the API (exported as CSV and JSON lines), and
# webhooks delivered to a local receiver with a valid HMAC signature, kept
# across a restart while the receiver is down and retried after it fails.
. "$(dirname "$0")/lib.sh"
init_data
start_server --set webhook_retry_base=1 --set signin_max_failures=3
PY=/usr/bin/python3
jqv() { printf '%s' "$1" | sed '$d' | jq -r "$2"; }

# ---- the data dir's key is admin -------------------------------------------
r=$(api GET /api/v1/session)
expect_eq "init key works" 200 "$(status_of "$r")"
expect_eq "init key is admin" admin "$(jqv "$r" .role)"

# ---- keys per role ------------------------------------------------------------
mk_key() { api POST /api/v1/keys -H 'Content-Type: application/json' -d "{\"name\":\"$1\",\"role\":\"$2\"}"; }
r=$(mk_key ci-viewer viewer); expect_eq "viewer key created" 201 "$(status_of "$r")"; VKEY=$(jqv "$r" .key)
r=$(mk_key ci-operator operator); expect_eq "operator key created" 201 "$(status_of "$r")"; OKEY=$(jqv "$r" .key)
r=$(mk_key bad-role root); expect_eq "unknown role refused" 400 "$(status_of "$r")"
as() { local k=$1 m=$2 p=$3; shift 3; curl -sS --cacert "$CA" -X "$m" -H "Authorization: Bearer $k" -w '\nHTTP %{http_code}' "$URL$p" "$@"; }

issue_cert dev1
enroll_mtls dev1 0000FEED-0000-0000-0000-000000000001
DEV=0000FEED-0000-0000-0000-000000000001
cmd() { printf '{"devices":["%s"],"command":{"RequestType":"%s"}}' "$DEV" "$1"; }

r=$(as "$VKEY" GET /api/v1/devices); expect_eq "viewer lists devices" 200 "$(status_of "$r")"
r=$(as "$VKEY" GET /api/v1/stats); expect_eq "viewer reads stats" 200 "$(status_of "$r")"
expect_eq "stats count the device" 1 "$(jqv "$r" .devices.enrolled)"
r=$(as "$VKEY" POST /api/v1/commands -d "$(cmd DeviceInformation)"); expect_eq "viewer cannot send commands" 403 "$(status_of "$r")"
expect_contains "403 says which role" "operator" "$r"
r=$(as "$VKEY" GET /api/v1/audit); expect_eq "viewer cannot read the audit log" 403 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/commands -d "$(cmd DeviceInformation)"); expect_eq "operator sends commands" 200 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/commands -d "$(cmd EraseDevice)"); expect_eq "operator cannot wipe" 403 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/commands -d "{\"devices\":[\"$DEV\"],\"request_type\":\"EraseDevice\",\"confirm\":true}")
expect_eq "operator cannot wipe with a typed command" 403 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/commands -d "{\"devices\":[\"$DEV\"],\"request_type\":\"ClearPasscode\"}")
expect_eq "operator cannot clear a passcode with a typed command" 403 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/certs/00/revoke); expect_eq "operator cannot revoke certificates" 403 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/users -d '{"name":"x","role":"admin","password":"12345678"}'); expect_eq "operator cannot add users" 403 "$(status_of "$r")"
r=$(as "$OKEY" POST /api/v1/webhooks -d '{"url":"http://127.0.0.1:1/"}'); expect_eq "operator cannot add webhooks" 403 "$(status_of "$r")"
r=$(as "$OKEY" PUT /v1/enqueue/$DEV -d x); expect_eq "operator cannot use the raw enqueue" 403 "$(status_of "$r")"
r=$(api POST /api/v1/commands -d "$(cmd EraseDevice)"); expect_eq "admin wipes" 200 "$(status_of "$r")"

# keys are listed (never the secret) and revoked
r=$(api GET /api/v1/keys); expect_eq "keys listed" 3 "$(jqv "$r" '.keys | length')"
expect_not_contains "no secret in the list" "stw_" "$(body_of "$r")"
VID=$(jqv "$r" '.keys[] | select(.name=="ci-viewer") | .id')
r=$(api DELETE /api/v1/keys/$VID); expect_eq "key deleted" 200 "$(status_of "$r")"
r=$(as "$VKEY" GET /api/v1/devices); expect_eq "deleted key refused" 401 "$(status_of "$r")"

# ---- console users: sign-in, CSRF, lockout ------------------------------------
r=$(api POST /api/v1/users -d '{"name":"alice","role":"operator","password":"correct horse"}')
expect_eq "user created" 201 "$(status_of "$r")"
r=$(api POST /api/v1/users -d '{"name":"alice","role":"operator","password":"correct horse"}')
expect_eq "duplicate user" 409 "$(status_of "$r")"
r=$(api POST /api/v1/users -d '{"name":"bob","role":"viewer","password":"short"}')
expect_eq "short password refused" 400 "$(status_of "$r")"
signin() { curl -sS --cacert "$CA" -c "$T/jar" -X POST -w '\nHTTP %{http_code}' "$URL/api/v1/session" -d "{\"user\":\"$1\",\"password\":\"$2\"}"; }
r=$(signin alice 'correct horse'); expect_eq "sign in" 200 "$(status_of "$r")"
CSRF=$(jqv "$r" .csrf)
expect_eq "session role" operator "$(jqv "$r" .role)"
grep -q 'steward_console' "$T/jar" && pass || fail "no session cookie set"
expect_contains "cookie is HttpOnly" "#HttpOnly_" "$(cat "$T/jar")"
ck() { local m=$1 p=$2; shift 2; curl -sS --cacert "$CA" -b "$T/jar" -X "$m" -w '\nHTTP %{http_code}' "$URL$p" "$@"; }
r=$(ck GET /api/v1/devices); expect_eq "session reads" 200 "$(status_of "$r")"
r=$(ck POST /api/v1/commands -d "$(cmd DeviceInformation)"); expect_eq "change without CSRF token" 403 "$(status_of "$r")"
r=$(ck POST /api/v1/commands -H "X-CSRF-Token: $CSRF" -d "$(cmd DeviceInformation)"); expect_eq "change with CSRF token" 200 "$(status_of "$r")"
r=$(ck POST /api/v1/commands -H "X-CSRF-Token: $CSRF" -d "$(cmd EraseDevice)"); expect_eq "operator user cannot wipe" 403 "$(status_of "$r")"
r=$(ck DELETE /api/v1/session -H "X-CSRF-Token: $CSRF"); expect_eq "sign out" 200 "$(status_of "$r")"
r=$(ck GET /api/v1/devices); expect_eq "signed-out session refused" 401 "$(status_of "$r")"
r=$(signin nobody 'whatever1'); expect_eq "unknown user" 401 "$(status_of "$r")"
r=$(signin alice wrong1); expect_eq "wrong password 1" 401 "$(status_of "$r")"
r=$(signin alice wrong2); expect_eq "wrong password 2" 401 "$(status_of "$r")"
r=$(signin alice wrong3); expect_eq "third failure locks" 429 "$(status_of "$r")"
r=$(signin alice 'correct horse'); expect_eq "locked even with the right password" 429 "$(status_of "$r")"
r=$(api GET /api/v1/users); expect_eq "users list shows the lock" true "$(jqv "$r" '.users[] | select(.name=="alice") | .locked')"
r=$(api PATCH /api/v1/users/alice -d '{"password":"battery staple"}'); expect_eq "admin resets the password (PATCH)" 200 "$(status_of "$r")"
r=$(signin alice 'battery staple'); expect_eq "new password signs in" 200 "$(status_of "$r")"
printf 'first admin pw' >"$T/pw"
"$BIN/steward" admin create --data-dir "$DATA" --name root --role admin --password-file "$T/pw" >/dev/null || fail "steward admin create"
r=$(signin root 'first admin pw'); expect_eq "steward admin create signs in" 200 "$(status_of "$r")"
expect_eq "as admin" admin "$(jqv "$r" .role)"

# ---- webhooks -------------------------------------------------------------------
WPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SECRET=0123456789abcdef0123456789abcdef
r=$(api POST /api/v1/webhooks -d "{\"url\":\"http://127.0.0.1:$WPORT/hook\",\"secret\":\"$SECRET\",\"events\":[\"device.*\",\"mdm.*\",\"command.completed\"]}")
expect_eq "webhook created" 201 "$(status_of "$r")"
HID=$(jqv "$r" .id)
r=$(api POST /api/v1/webhooks -d '{"url":"ftp://x/"}'); expect_eq "non-http webhook refused" 400 "$(status_of "$r")"
r=$(api GET /api/v1/webhooks); expect_not_contains "secret not listed" "$SECRET" "$(body_of "$r")"
sleep 1.2 # the subscription cache is refreshed on change; let the thread see it
issue_cert dev2
enroll_mtls dev2 0000FEED-0000-0000-0000-000000000002
# the receiver is down: deliveries wait with their error recorded
for _ in $(seq 1 50); do
  r=$(api GET "/api/v1/webhooks/$HID/deliveries?status=pending")
  [ "$(jqv "$r" '[.deliveries[] | select(.attempts >= 1)] | length')" -ge 1 ] && break; sleep 0.2
done
expect_contains "failed attempt recorded" "connect" "$(jqv "$r" '.deliveries[0].last_error')"
[ "$(jqv "$r" '.deliveries | length')" -ge 3 ] && pass || fail "expected pending deliveries for Authenticate, TokenUpdate, device.enrolled: $(body_of "$r")"
# restart steward with the receiver still down: the queue is in the database
stop_server
start_server --set webhook_retry_base=1
mkdir -p "$T/rx"
$PY "$(dirname "$0")/webhook_receiver.py" "$WPORT" "$SECRET" "$T/rx" 1 &
RX=$!
trap 'kill $RX 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do
  r=$(api GET "/api/v1/webhooks/$HID/deliveries?status=pending")
  [ "$(jqv "$r" '.deliveries | length')" = 0 ] && break; sleep 0.2
done
expect_eq "every delivery made after the restart" 0 "$(jqv "$r" '.deliveries | length')"
r=$(api GET "/api/v1/webhooks/$HID/deliveries")
expect_eq "all delivered" delivered "$(jqv "$r" '[.deliveries[].status] | unique | join(",")')"
rx=$(cat "$T/rx/received.jsonl")
expect_contains "a 500 from the receiver was retried" '"answered": 500' "$rx"
expect_eq "every signature valid" "true" "$(jq -s '[.[].valid] | all' "$T/rx/received.jsonl")"
expect_contains "device.enrolled delivered" '"device.enrolled"' "$rx"
TU=$(jq -c 'select(.event=="mdm.TokenUpdate" and .answered==200) | .body' "$T/rx/received.jsonl" | head -1)
expect_eq "NanoMDM-style topic" mdm.TokenUpdate "$(printf '%s' "$TU" | jq -r .topic)"
expect_eq "checkin_event udid" 0000FEED-0000-0000-0000-000000000002 "$(printf '%s' "$TU" | jq -r .checkin_event.udid)"
expect_contains "raw_payload is the device's plist" "TokenUpdate" "$(printf '%s' "$TU" | jq -r .checkin_event.raw_payload | base64 -d)"
# a command answer gives command.completed; Idle gives nothing
printf '%s' "$(connect_plist $DEV Idle)" >"$T/idle.plist"
r=$(device_put /mdm/connect dev1 "$T/idle.plist"); UUID1=$(body_of "$r" | grep -A1 CommandUUID | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
connect_plist $DEV Acknowledged "$UUID1" >"$T/ack.plist"
r=$(device_put /mdm/connect dev1 "$T/ack.plist"); expect_eq "ack accepted" 200 "$(status_of "$r")"
for _ in $(seq 1 50); do grep -q '"command.completed"' "$T/rx/received.jsonl" && break; sleep 0.2; done
expect_contains "command.completed delivered" "$UUID1" "$(grep '"command.completed"' "$T/rx/received.jsonl")"
r=$(api POST /api/v1/webhooks/$HID/test); expect_eq "test delivery queued" 202 "$(status_of "$r")"
for _ in $(seq 1 50); do grep -q '"webhook.test"' "$T/rx/received.jsonl" && break; sleep 0.2; done
expect_contains "test delivery arrives" "webhook.test" "$(cat "$T/rx/received.jsonl")"
r=$(api PATCH /api/v1/webhooks/$HID -d '{"enabled":false}'); expect_eq "webhook disabled" false "$(jqv "$r" .enabled)"
r=$(api DELETE /api/v1/webhooks/$HID); expect_eq "webhook deleted" 200 "$(status_of "$r")"
r=$(api GET /api/v1/webhooks/$HID/deliveries); expect_eq "deleted webhook has no log" 404 "$(status_of "$r")"

# ---- the audit log ----------------------------------------------------------------
r=$(api GET "/api/v1/audit?limit=1000")
expect_eq "audit readable" 200 "$(status_of "$r")"
A=$(body_of "$r")
n_changes=$(printf '%s' "$A" | jq '.entries | length')
[ "$n_changes" -ge 30 ] && pass || fail "expected an audit entry per change, got $n_changes"
expect_eq "no GET is audited" 0 "$(printf '%s' "$A" | jq '[.entries[] | select(.method=="GET")] | length')"
expect_eq "viewer's refused command audited" 403 "$(printf '%s' "$A" | jq -r '[.entries[] | select(.actor=="key:ci-viewer" and .action=="POST /api/v1/commands")][0].status')"
expect_eq "admin's wipe audited with its actor" 200 "$(printf '%s' "$A" | jq -r '[.entries[] | select(.action=="POST /api/v1/commands" and .actor=="key:admin")][0].status')"
expect_eq "operator's refused wipe audited" 403 "$(printf '%s' "$A" | jq -r '[.entries[] | select(.action=="POST /api/v1/commands" and .actor=="key:ci-operator")][0].status')"
expect_eq "failed sign-ins audited" 4 "$(printf '%s' "$A" | jq '[.entries[] | select(.action=="POST /api/v1/session" and .actor=="user:alice" and .status>=400)] | length')"
expect_eq "target recorded" alice "$(printf '%s' "$A" | jq -r '[.entries[] | select(.action=="PATCH /api/v1/users/*")][0].target')"
expect_eq "client address recorded" 127.0.0.1 "$(printf '%s' "$A" | jq -r '.entries[0].remote_addr')"
expect_eq "session actor audited" "user:alice" "$(printf '%s' "$A" | jq -r '[.entries[] | select(.action=="POST /api/v1/commands" and .actor=="user:alice" and .status==200)][0].actor')"
r=$(api GET "/api/v1/audit?actor=key:ci-operator&failed=1")
expect_eq "filter by actor and failure" 7 "$(jqv "$r" '.entries | length')"
r=$(api GET "/api/v1/audit?limit=2&offset=1"); expect_eq "paging" 2 "$(jqv "$r" '.entries | length')"
csv=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $KEY" "$URL/api/v1/audit?format=csv")
expect_contains "CSV header" "id,at,actor,role,method,path,action,target,status,remote_addr,request_id" "$csv"
expect_eq "CSV has a row per entry" $((n_changes + 1)) "$(printf '%s\n' "$csv" | grep -c .)"
jl=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $KEY" "$URL/api/v1/audit?format=jsonl")
expect_eq "JSON lines" "$n_changes" "$(printf '%s\n' "$jl" | jq -s length)"
r=$(api DELETE /api/v1/audit); expect_eq "the audit log cannot be deleted" 405 "$(status_of "$r")"

# ---- stewardctl ------------------------------------------------------------------------
CTL="$BIN/stewardctl"
out=$("$CTL" whoami); expect_contains "whoami" "role" "$out"; expect_contains "whoami admin" "admin" "$out"
out=$(STEWARD_NEW_PASSWORD='ctl password 1' "$CTL" users add carol --role viewer); expect_contains "ctl users add" "User added" "$out"
out=$("$CTL" users list); expect_contains "ctl users list" "carol" "$out"; expect_contains "ctl users list role" "viewer" "$out"
out=$("$CTL" keys create ctl-key --role operator); expect_contains "ctl keys create prints the key" "stw_" "$out"
out=$("$CTL" keys list); expect_contains "ctl keys list" "ctl-key" "$out"
out=$("$CTL" audit list --actor key:admin --limit 5); expect_contains "ctl audit list" "POST /api/v1/keys" "$out"
out=$("$CTL" audit export --format csv --limit 3); expect_eq "ctl audit export" 4 "$(printf '%s\n' "$out" | grep -c .)"
out=$("$CTL" webhooks add "http://127.0.0.1:$WPORT/x" --events device.enrolled); expect_contains "ctl webhooks add shows the secret" "secret" "$out"
out=$("$CTL" webhooks list); expect_contains "ctl webhooks list" "device.enrolled" "$out"
set +e
out=$("$CTL" users add dave --role root 2>&1); rc=$?
set -e
expect_eq "ctl refuses a bad role" 2 "$rc"
kill $RX 2>/dev/null || true
finish
