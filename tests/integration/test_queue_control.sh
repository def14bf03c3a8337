#!/usr/bin/env bash
# Queue control for raw commands (POST /api/v1/commands with "command" or
# "command_plist": anything, catalog or not): an optional "ttl" as typed
# commands have (expired by the sweep and at delivery, shown on the command
# with who sent it; stewardctl commands send --ttl), a destructive command
# (DeviceLock, EraseDevice) never queued twice for a device while one waits
# whichever form queued which (NanoMDM's enqueue route too), and retry of the devices where a raw command
# failed or expired (API and stewardctl), which honours that rule too.
. "$(dirname "$0")/lib.sh"
init_data
start_server --set command_expiry_interval=1
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed queue-control)
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
N=3
mkdir -p "$T/fleet"
"${SIM[@]}" --state "$T/fleet" --count $N --concurrency 3 run >"$T/sim1.log" 2>&1 \
  || { cat "$T/sim1.log"; fail "fleet enrolls"; }
connect() { "${SIM[@]}" --state "$T/fleet" --count $N --concurrency 3 connect >>"$T/sim.log" 2>&1 \
  || { tail -20 "$T/sim.log"; fail "fleet connects"; }; }
ids=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '.devices[].id' | sort)
expect_eq "fleet enrolled" $N "$(printf '%s\n' "$ids" | grep -c .)"
d1=$(printf '%s\n' $ids | sed -n 1p)
d2=$(printf '%s\n' $ids | sed -n 2p)
d3=$(printf '%s\n' $ids | sed -n 3p)

post() { api POST /api/v1/commands -H 'Content-Type: application/json' --data "$1"; }
code_of() { body_of "$1" | jq -r '.error.code'; }
status_on() { # uuid, device → its status there
  body_of "$(api GET "/api/v1/commands/$1")" | jq -r --arg d "$2" '.devices[] | select(.device == $d) | .status'
}
connect # nothing waits any more

# --- ttl: refused when not a count of seconds
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"ProfileList\"},\"ttl\":-5}")
expect_eq "negative ttl refused" "400 bad_request" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"ProfileList\"},\"ttl\":\"60\"}")
expect_eq "ttl as text refused" "400 bad_request" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"ProfileList\"},\"tll\":60}")
expect_eq "unknown field still refused" 400 "$(status_of "$r")"
expect_contains "the refusal lists ttl" "ttl" "$(body_of "$r")"

# --- ttl: the sweep expires a raw command nobody fetched; its deadline and sender are shown
r=$(post "{\"devices\":[\"$d1\",\"$d2\"],\"command\":{\"RequestType\":\"ProfileList\"},\"ttl\":1}")
expect_eq "raw command with a ttl queued" 200 "$(status_of "$r")"
swept=$(body_of "$r" | jq -r .command_uuid)
c=$(body_of "$(api GET "/api/v1/commands/$swept")")
expect_eq "ttl shown" 1 "$(printf '%s' "$c" | jq .ttl)"
expect_eq "deadline shown" true "$(printf '%s' "$c" | jq '.expires_at != null')"
expect_eq "sender shown" true "$(printf '%s' "$c" | jq '.created_by != null and .created_by != ""')"
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"CertificateList\"}}")
plain=$(body_of "$r" | jq -r .command_uuid)
expect_eq "without a ttl: no deadline" "0 null" \
  "$(body_of "$(api GET "/api/v1/commands/$plain")" | jq -r '"\(.ttl) \(.expires_at)"')"
# the base64 plist form takes a ttl too
b64=$(printf '<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>SecurityInfo</string></dict></dict></plist>' | base64 -w0)
r=$(post "{\"devices\":[\"$d3\"],\"command_plist\":\"$b64\",\"ttl\":1}")
expect_eq "plist command with a ttl queued" 200 "$(status_of "$r")"
plist_uuid=$(body_of "$r" | jq -r .command_uuid)
sleep 2.5
expect_eq "the sweep expired it on both devices" "Expired Expired" \
  "$(status_on "$swept" "$d1") $(status_on "$swept" "$d2")"
expect_eq "the plist form expired too" Expired "$(status_on "$plist_uuid" "$d3")"
connect
expect_eq "the command without a deadline was delivered" Acknowledged "$(status_on "$plain" "$d1")"
expect_eq "the expired one never was" null \
  "$(body_of "$(api GET "/api/v1/commands/$swept")" | jq -r '[.devices[].delivered_at] | unique | .[0]')"

# --- ttl: expired at delivery (the device checks in late, before any sweep)
stop_server
start_server --set command_expiry_interval=3600
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed queue-control)
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
out=$("${CTL[@]}" commands send --device "$d2" --type DeviceInformation --queries OSVersion --ttl 1)
late=$(printf '%s' "$out" | sed -n 's/^Command \([^ ]*\) .*/\1/p')
expect_eq "stewardctl commands send --ttl" 1 "$(body_of "$(api GET "/api/v1/commands/$late")" | jq .ttl)"
set +e
"${CTL[@]}" commands send --device "$d2" --type ProfileList --ttl soon >/dev/null 2>"$T/ctl.err"; rc=$?
set -e
expect_eq "stewardctl refuses a ttl that is not seconds" 2 "$rc"
sleep 2.2
connect
expect_eq "expired at delivery" Expired "$(status_on "$late" "$d2")"

# --- a destructive command waits once per device, raw or typed
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"DeviceLock\",\"Message\":\"first\"}}")
expect_eq "raw DeviceLock queued" 200 "$(status_of "$r")"
lock1=$(body_of "$r" | jq -r .command_uuid)
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"DeviceLock\",\"Message\":\"second\"}}")
expect_eq "a second raw DeviceLock refused" "409 already_pending" "$(status_of "$r") $(code_of "$r")"
expect_contains "the refusal says why" "already pending" "$(body_of "$r")"
r=$(post "{\"devices\":[\"$d1\"],\"request_type\":\"DeviceLock\",\"message\":\"typed\"}")
expect_eq "a typed DeviceLock after the raw one refused" "422 already_pending" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$d1\",\"$d2\"],\"command\":{\"RequestType\":\"DeviceLock\"}}")
expect_eq "to two devices, one with a lock waiting: partly queued" 207 "$(status_of "$r")"
expect_eq "per device" "false true" \
  "$(body_of "$r" | jq -r --arg a "$d1" --arg b "$d2" '"\(.devices[$a].queued) \(.devices[$b].queued)"')"
r=$(post "{\"devices\":[\"$d3\"],\"request_type\":\"EraseDevice\",\"confirm\":true}")
expect_eq "typed EraseDevice queued" 200 "$(status_of "$r")"
erase=$(body_of "$r" | jq -r .command_uuid)
r=$(post "{\"devices\":[\"$d3\"],\"command\":{\"RequestType\":\"EraseDevice\"}}")
expect_eq "a raw EraseDevice after the typed one refused" "409 already_pending" "$(status_of "$r") $(code_of "$r")"
erase_plist=$(printf '<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>EraseDevice</string></dict></dict></plist>' | base64 -w0)
r=$(post "{\"devices\":[\"$d3\"],\"command_plist\":\"$erase_plist\"}")
expect_eq "the plist form too" "409 already_pending" "$(status_of "$r") $(code_of "$r")"
printf '<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>DeviceLock</string></dict></dict></plist>' >"$T/lock.plist"
r=$(curl -sS --cacert "$CA" -u "nanomdm:$KEY" -X PUT --data-binary "@$T/lock.plist" -w '\nHTTP %{http_code}' "$URL/v1/enqueue/$d1?nopush=1")
expect_eq "NanoMDM's enqueue route: no second DeviceLock either" 500 "$(status_of "$r")"
expect_contains "NanoMDM's per-id error says why" "already waits" "$(body_of "$r")"
expect_eq "one EraseDevice waits" 1 \
  "$(body_of "$(api GET "/api/v1/devices/$d3/commands")" | jq '[.commands[] | select(.request_type == "EraseDevice")] | length')"
r=$(api DELETE "/api/v1/commands/$erase")
expect_eq "the wipe canceled (the test device stays)" 200 "$(status_of "$r")"
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"OSVersion\"]}}")
expect_eq "other commands still queue behind the lock" 200 "$(status_of "$r")"
connect
expect_eq "the first lock answered" Acknowledged "$(status_on "$lock1" "$d1")"
r=$(post "{\"devices\":[\"$d1\"],\"command\":{\"RequestType\":\"DeviceLock\",\"Message\":\"again\"}}")
expect_eq "answered: a new raw DeviceLock may queue" 200 "$(status_of "$r")"
connect

# --- retry failed: the expired raw commands, by the API and by stewardctl
r=$(api POST "/api/v1/commands/$swept/retry" -H 'Content-Type: application/json' --data '{"ttl":600}')
expect_eq "retry of an expired raw command" 200 "$(status_of "$r")"
retry=$(body_of "$r" | jq -r .command_uuid)
expect_eq "retried on both devices" 2 "$(body_of "$r" | jq '.devices | length')"
c=$(body_of "$(api GET "/api/v1/commands/$retry")")
expect_eq "retry lineage and its own ttl" "$swept 600" "$(printf '%s' "$c" | jq -r '"\(.retry_of) \(.ttl)"')"
out=$("${CTL[@]}" commands retry "$late" --ttl 600)
expect_contains "stewardctl commands retry" "$late" "$out$(body_of "$(api GET "/api/v1/commands/$late")")"
ctl_retry=$(body_of "$(api GET "/api/v1/commands/$late")" | jq -r '.devices[0].retried_as')
[ "$ctl_retry" != null ] && pass || fail "the stewardctl retry is recorded on the original"
connect
expect_eq "the retries answered" "Acknowledged Acknowledged Acknowledged" \
  "$(status_on "$retry" "$d1") $(status_on "$retry" "$d2") $(status_on "$ctl_retry" "$d2")"
r=$(api POST "/api/v1/commands/$swept/retry")
expect_eq "nothing left to retry" "409 nothing_to_retry" "$(status_of "$r") $(code_of "$r")"
# a retry is still one destructive command at a time
r=$(post "{\"devices\":[\"$d2\"],\"command\":{\"RequestType\":\"DeviceLock\"},\"ttl\":1}")
short_lock=$(body_of "$r" | jq -r .command_uuid)
sleep 2.2
connect
expect_eq "the short-lived lock expired" Expired "$(status_on "$short_lock" "$d2")"
r=$(post "{\"devices\":[\"$d2\"],\"request_type\":\"DeviceLock\",\"message\":\"newer\"}")
expect_eq "a newer lock waits" 200 "$(status_of "$r")"
r=$(api POST "/api/v1/commands/$short_lock/retry")
expect_eq "retrying the expired lock while a newer one waits: refused" "409 nothing_to_retry" \
  "$(status_of "$r") $(code_of "$r")"
finish
