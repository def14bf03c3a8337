#!/usr/bin/env bash
# stewardctl against a real steward: what an operator sees in tables and
# messages, --json for scripts, exit codes, cancel, and clear errors for a
# wrong key, a missing key, a missing CA and an unknown device.
. "$(dirname "$0")/lib.sh"
init_data
start_server
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --state "$T/sim" --count 3 enroll >"$T/sim.log" 2>&1 || fail "devsim enroll"
CTL="$BIN/stewardctl"
ID=$(grep -A1 '<key>UDID</key>' "$T/sim/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')

out=$("$CTL" devices list); rc=$?
expect_eq "devices list exit" 0 "$rc"
expect_contains "table header" "ID" "$out"
expect_contains "table has STATUS column" "STATUS" "$out"
expect_contains "count line" "3 of 3 devices" "$out"
expect_contains "the device is listed" "$ID" "$out"
out=$("$CTL" devices list --json)
expect_contains "--json is the API's JSON" '"total": 3' "$out"
out=$("$CTL" devices show "$ID")
expect_contains "show prints fields" "serial_number" "$out"
expect_contains "show status" "enrolled" "$out"

out=$("$CTL" commands send --device "$ID" --type DeviceLock --set Message="Call IT" --set PhoneNumber=5551234); rc=$?
expect_eq "send exit" 0 "$rc"
expect_contains "send prints the request type" "DeviceLock" "$out"
UUID=$(printf '%s' "$out" | grep -o '[0-9A-F]\{8\}-[0-9A-F]\{4\}-[0-9A-F]\{4\}-[0-9A-F]\{4\}-[0-9A-F]\{12\}' | sed -n 1p)
[ -n "$UUID" ] && pass || fail "no UUID printed by commands send: $out"
out=$("$CTL" commands list "$ID")
expect_contains "queued command listed" "$UUID" "$out"
expect_contains "pending" "Pending" "$out"
out=$("$CTL" commands cancel "$ID" "$UUID"); rc=$?
expect_eq "cancel exit" 0 "$rc"
set +e
out=$("$CTL" commands cancel "$ID" "$UUID" 2>&1); rc=$?
expect_eq "second cancel fails" 1 "$rc"
expect_contains "says why" "HTTP 404" "$out"
out=$("$CTL" commands send --device "$ID" --device nope --type ProfileList 2>&1); rc=$?
expect_eq "partial send exits 1" 1 "$rc"
expect_contains "per-device result" "unknown device" "$out"
out=$("$CTL" devices show nope 2>&1); rc=$?
expect_eq "unknown device exit" 1 "$rc"
expect_contains "unknown device message" "404" "$out"
out=$("$CTL" --api-key wrong devices list 2>&1); rc=$?
expect_eq "wrong key exit" 1 "$rc"
expect_contains "wrong key message" "401" "$out"
out=$(STEWARD_API_KEY= "$CTL" devices list 2>&1); rc=$?
expect_eq "missing key is a usage error" 2 "$rc"
out=$(STEWARD_CACERT= "$CTL" devices list 2>&1); rc=$?
expect_eq "missing CA exit" 1 "$rc"
expect_contains "TLS failure explained" "TLS" "$out"
set -e
out=$("$CTL" health)
expect_contains "health" "ready" "$out"
# the device gets what stewardctl queued, and stewardctl shows the answer
"$CTL" commands send --device "$ID" --type DeviceInformation --queries DeviceName,OSVersion >/dev/null
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --state "$T/sim" --count 1 connect >"$T/sim2.log" 2>&1 || fail "devsim connect"
out=$("$CTL" commands list "$ID")
expect_contains "answered" "Acknowledged" "$out"
finish
