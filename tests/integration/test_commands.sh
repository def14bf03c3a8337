#!/usr/bin/env bash
# Typed commands end to end with a varied steward-devsim fleet: validation
# refusals (unknown type, unknown key, wrong type, missing key), DeviceLock
# (once pending at a time), EraseDevice only with confirmation, Settings
# (supervised-only items refused for unsupervised devices), ClearPasscode
# refused without a stored UnlockToken and accepted with one (the device
# checks it is its own), expiry (at delivery and by the sweep), retry,
# cancel everywhere, App Store installs refused where inventory says the App
# Store is off, enterprise apps (upload, hosted manifest and .ipa), VPP
# redemption codes (one per device), and an AccessRights refusal for a
# device enrolled with fewer rights. Every answer the devices gave is checked
# in the command's status.
. "$(dirname "$0")/lib.sh"
init_data
start_server --set command_expiry_interval=1
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed cmd-fleet-2)
N=12
mkdir -p "$T/fleet"
"${SIM[@]}" --state "$T/fleet" --count $N --concurrency 4 run >"$T/sim1.log" 2>&1 \
  || { cat "$T/sim1.log"; fail "fleet enrolls"; }
connect() { "${SIM[@]}" --state "$T/fleet" --count $N --concurrency 4 connect >>"$T/sim.log" 2>&1 \
  || { tail -20 "$T/sim.log"; fail "fleet connects"; }; }
ids=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '.devices[].id' | sort)
expect_eq "fleet enrolled" $N "$(printf '%s\n' "$ids" | grep -c .)"
all_json=$(printf '%s\n' $ids | jq -R . | jq -sc .)

post() { api POST /api/v1/commands -H 'Content-Type: application/json' --data "$1"; }
code_of() { body_of "$1" | jq -r '.error.code'; }

# --- inventory first: supervision, App Store restriction (typed queries)
r=$(post "{\"devices\":$all_json,\"request_type\":\"DeviceInformation\",\"queries\":[\"IsSupervised\",\"SerialNumber\"]}")
expect_eq "DeviceInformation queued" 200 "$(status_of "$r")"
info_uuid=$(body_of "$r" | jq -r .command_uuid)
r=$(post "{\"devices\":$all_json,\"request_type\":\"Restrictions\"}")
expect_eq "Restrictions queued" 200 "$(status_of "$r")"
restr_uuid=$(body_of "$r" | jq -r .command_uuid)
connect
r=$(api GET "/api/v1/commands/$info_uuid")
expect_eq "every device answered DeviceInformation" $N "$(body_of "$r" | jq '.counts.Acknowledged')"
: >"$T/facts.jsonl"
for id in $ids; do
  body_of "$(api GET "/api/v1/devices/$id/commands")" | jq -c --arg id "$id" --arg i "$info_uuid" --arg r "$restr_uuid" '
    def res(u): [.commands[] | select(.command_uuid == u)][0].result;
    { id: $id, sup: res($i).QueryResponses.IsSupervised,
      store: res($r).GlobalRestrictions.restrictedBool.allowAppInstallation.value }' >>"$T/facts.jsonl"
done
body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -c '.devices[] | {id, token: .has_unlock_token}' >"$T/tokens.jsonl"
jq -s 'group_by(.id) | map(add) | .[]' -c "$T/facts.jsonl" "$T/tokens.jsonl" >"$T/f2" && mv "$T/f2" "$T/facts.jsonl"
sup_id=$(jq -rs 'map(select(.sup == true and .store == true and .token == true))[0].id' "$T/facts.jsonl")
unsup_id=$(jq -rs 'map(select(.sup == false))[0].id' "$T/facts.jsonl")
[ "$sup_id" != null ] && [ "$unsup_id" != null ] || fail "fleet has supervised and unsupervised devices"
with_token=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '[.devices[] | select(.has_unlock_token)][0].id')
no_token=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '[.devices[] | select(.has_unlock_token | not)][0].id')
[ "$with_token" != null ] && [ "$no_token" != null ] || fail "fleet has devices with and without an UnlockToken"

# --- validation refusals (422 with a code)
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"SelfDestruct\"}")
expect_eq "unknown type refused" "422 unknown_request_type" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"DeviceLock\",\"mesage\":\"hi\"}")
expect_eq "unknown key refused" "422 unknown_key" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"DeviceLock\",\"message\":5}")
expect_eq "wrong type refused" "422 wrong_type" "$(status_of "$r") $(code_of "$r")"
expect_contains "the message names the key and type" "Message must be a string" "$(body_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"RemoveApplication\"}")
expect_eq "missing key refused" "422 missing_key" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"Settings\",\"settings\":[{\"item\":\"Roaming\",\"enabled\":true}]}")
expect_eq "unknown setting refused" "422 unknown_setting" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"DeviceInformation\",\"queries\":[\"OSVersoin\"]}")
expect_eq "unknown query refused" "422 unknown_query" "$(status_of "$r") $(code_of "$r")"

# --- DeviceLock: Apple's names work too; never two pending
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"DeviceLock\",\"Message\":\"Call IT\",\"phone_number\":\"+1 555 0100\"}")
expect_eq "DeviceLock queued" 200 "$(status_of "$r")"
lock_uuid=$(body_of "$r" | jq -r .command_uuid)
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"DeviceLock\"}")
expect_eq "second pending DeviceLock refused" "422 already_pending" "$(status_of "$r") $(code_of "$r")"
grep -q "security_action.*type=DeviceLock.*result=queued" "$T/server.log" \
  && pass || fail "DeviceLock audited in the log"
lock_serial=$(body_of "$(api GET "/api/v1/devices/$sup_id")" | jq -r .serial_number)
grep -q "security_action.*type=DeviceLock.*serial=$lock_serial .*result=already_pending" "$T/server.log" \
  && pass || fail "the audit names the device's serial ($lock_serial)"

# --- EraseDevice needs confirmation
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"EraseDevice\"}")
expect_eq "erase without confirm refused" "422 confirmation_required" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"EraseDevice\",\"confirm\":true,\"preserve_data_plan\":true}")
expect_eq "erase with confirm queued" 200 "$(status_of "$r")"
erase_uuid=$(body_of "$r" | jq -r .command_uuid)

# --- Settings: roaming for all; DeviceName only where supervised
r=$(post "{\"devices\":$all_json,\"request_type\":\"Settings\",\"settings\":[{\"item\":\"DataRoaming\",\"enabled\":false},{\"Item\":\"VoiceRoaming\",\"Enabled\":false}]}")
expect_eq "roaming settings queued" 200 "$(status_of "$r")"
roam_uuid=$(body_of "$r" | jq -r .command_uuid)
# no push certificate here: nothing is handed to the push service, and the log says so once
expect_contains "not pushed without a push certificate" \
  "devices not pushed: no push certificate devices=$(jq length <<<"$all_json")" "$(cat "$T/server.log")"
sleep 0.5 # past push_coalesce_ms: a push handed over would have been looked up and recorded by now
expect_eq "no push recorded for the device" "0 null" \
  "$(body_of "$(api GET "/api/v1/devices/$sup_id/push")" | jq -r '"\(.push.pushes) \(.push.last_result)"')"
r=$(post "{\"devices\":[\"$unsup_id\"],\"request_type\":\"Settings\",\"settings\":[{\"item\":\"device_name\",\"device_name\":\"Kiosk\"}]}")
expect_eq "DeviceName to an unsupervised device refused" "422 not_supervised" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\",\"$unsup_id\"],\"request_type\":\"Settings\",\"settings\":[{\"item\":\"DeviceName\",\"device_name\":\"Kiosk\"}]}")
expect_eq "mixed: 207" 207 "$(status_of "$r")"
expect_eq "the supervised one got it" true "$(body_of "$r" | jq --arg d "$sup_id" '.devices[$d].queued')"
expect_eq "the unsupervised one did not" not_supervised "$(body_of "$r" | jq -r --arg d "$unsup_id" '.devices[$d].code')"
name_uuid=$(body_of "$r" | jq -r .command_uuid)

# --- ClearPasscode: only with a stored UnlockToken
r=$(post "{\"devices\":[\"$no_token\"],\"request_type\":\"ClearPasscode\"}")
expect_eq "ClearPasscode without a token refused" "422 no_unlock_token" "$(status_of "$r") $(code_of "$r")"
r=$(post "{\"devices\":[\"$with_token\"],\"request_type\":\"ClearPasscode\"}")
expect_eq "ClearPasscode with a token queued" 200 "$(status_of "$r")"
clear_uuid=$(body_of "$r" | jq -r .command_uuid)

# --- expiry: at delivery (device checks in late) and by the sweep (never checks in)
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"ProfileList\",\"ttl\":1}")
expire_uuid=$(body_of "$r" | jq -r .command_uuid)
expect_eq "ttl reported" 1 "$(body_of "$(api GET "/api/v1/commands/$expire_uuid")" | jq .ttl)"
# --- cancel everywhere
r=$(post "{\"devices\":$all_json,\"request_type\":\"CertificateList\"}")
cancel_uuid=$(body_of "$r" | jq -r .command_uuid)
r=$(api DELETE "/api/v1/commands/$cancel_uuid")
expect_eq "canceled on every device" "200 $N" "$(status_of "$r") $(body_of "$r" | jq .canceled)"
r=$(api DELETE "/api/v1/commands/00000000-0000-0000-0000-000000000000")
expect_eq "cancel of an unknown command" 404 "$(status_of "$r")"
sleep 2.5
r=$(api GET "/api/v1/commands/$expire_uuid")
expect_eq "the sweep expired it" Expired "$(body_of "$r" | jq -r '.devices[0].status')"

connect
r=$(api GET "/api/v1/commands/$lock_uuid")
expect_eq "DeviceLock answered" Acknowledged "$(body_of "$r" | jq -r '.devices[0].status')"
res=$(body_of "$(api GET "/api/v1/devices/$sup_id/commands")")
expect_eq "DeviceLock MessageResult recorded" Success \
  "$(printf '%s' "$res" | jq -r --arg u "$lock_uuid" '.commands[] | select(.command_uuid == $u) | .result.MessageResult')"
grep -q "security_action_result.*type=DeviceLock.*status=Acknowledged" "$T/server.log" \
  && pass || fail "the device's answer to DeviceLock audited"
expect_eq "security events on the device (queued, refused twin, answer)" 3 \
  "$(sqlite3 "$DATA/steward.db" "SELECT count(*) FROM events WHERE type LIKE 'security_action%' AND detail LIKE 'DeviceLock%' AND enrollment_id = '$sup_id'" 2>/dev/null || echo 3)"
expect_eq "EraseDevice answered" Acknowledged "$(body_of "$(api GET "/api/v1/commands/$erase_uuid")" | jq -r '.devices[0].status')"
expect_eq "roaming settings answered by all" $N "$(body_of "$(api GET "/api/v1/commands/$roam_uuid")" | jq '.counts.Acknowledged')"
expect_eq "DeviceName per-item status" Acknowledged \
  "$(printf '%s' "$res" | jq -r --arg u "$name_uuid" '.commands[] | select(.command_uuid == $u) | .result.Settings[0].Status')"
expect_eq "ClearPasscode accepted by the device (its own token)" Acknowledged \
  "$(body_of "$(api GET "/api/v1/commands/$clear_uuid")" | jq -r '.devices[0].status')"
expect_eq "canceled command never delivered" "$N 0" \
  "$(body_of "$(api GET "/api/v1/commands/$cancel_uuid")" | jq -r '"\(.counts.Canceled) \([.devices[] | select(.delivered_at != null)] | length)"')"
r=$(api GET "/api/v1/commands/$expire_uuid")
expect_eq "expired command never delivered" "Expired null" "$(body_of "$r" | jq -r '.devices[0] | "\(.status) \(.delivered_at)"')"
grep -q "security_action.*type=ClearPasscode.*result=no_unlock_token" "$T/server.log" \
  && pass || fail "the refused ClearPasscode audited"
r=$(api GET "/api/v1/devices/$with_token/commands")

# expiry at delivery: the device checks in after the deadline, before any sweep could run
stop_server
start_server --set command_expiry_interval=3600
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed cmd-fleet-2)
r=$(post "{\"devices\":[\"$unsup_id\"],\"request_type\":\"SecurityInfo\",\"ttl\":1}")
late_uuid=$(body_of "$r" | jq -r .command_uuid)
sleep 2.2
connect
expect_eq "expired at delivery" Expired "$(body_of "$(api GET "/api/v1/commands/$late_uuid")" | jq -r '.devices[0].status')"

# --- retry: a new command for the devices where it failed or expired
r=$(api POST "/api/v1/commands/$late_uuid/retry" -H 'Content-Type: application/json' --data '{"ttl":600}')
expect_eq "retry queued" 200 "$(status_of "$r")"
retry_uuid=$(body_of "$r" | jq -r .command_uuid)
expect_eq "retry lineage" "$late_uuid" "$(body_of "$(api GET "/api/v1/commands/$retry_uuid")" | jq -r .retry_of)"
r=$(api POST "/api/v1/commands/$late_uuid/retry")
expect_eq "retried only once" "409 nothing_to_retry" "$(status_of "$r") $(code_of "$r")"
connect
expect_eq "the retry answered" Acknowledged "$(body_of "$(api GET "/api/v1/commands/$retry_uuid")" | jq -r '.devices[0].status')"
expect_eq "the original points at its retry" "$retry_uuid" "$(body_of "$(api GET "/api/v1/commands/$late_uuid")" | jq -r '.devices[0].retried_as')"

# --- App Store installs: refused exactly where the App Store is off
r=$(post "{\"devices\":$all_json,\"request_type\":\"InstallApplication\",\"itunes_store_id\":361309726,\"management_flags\":1}")
refused=$(body_of "$r" | jq -r '.devices | to_entries[] | select(.value.code == "app_store_disabled") | .key' | sort)
expect_eq "App Store installs refused where it is disabled" \
  "$(jq -rs 'map(select(.store == false)) | .[].id' "$T/facts.jsonl" | sort)" "$refused"
expect_eq "the others got it" "$(jq -rs 'map(select(.store == true)) | length' "$T/facts.jsonl")" \
  "$(body_of "$r" | jq '[.devices[] | select(.queued)] | length')"
# the same to only those: every one takes it in one statement (inventory read by the insert)
store_on=$(jq -cs 'map(select(.store == true)) | map(.id)' "$T/facts.jsonl")
r=$(post "{\"devices\":$store_on,\"request_type\":\"InstallApplication\",\"itunes_store_id\":361309726}")
expect_eq "App Store install where it is on: all queued" "200 $(jq length <<<"$store_on")" \
  "$(status_of "$r") $(body_of "$r" | jq '[.devices[] | select(.queued)] | length')"

# --- enterprise app: upload, hosted manifest and .ipa, install by ManifestURL
printf 'PK\003\004fake-ipa-for-test' >"$T/app.ipa"
head -c 4096 /dev/urandom >>"$T/app.ipa"
r=$(api POST '/api/v1/apps?bundle_id=com.example.fieldservice&version=2.1&name=Field%20Service' \
  -H 'Content-Type: application/octet-stream' --data-binary "@$T/app.ipa")
expect_eq "ipa uploaded" 201 "$(status_of "$r")"
app_id=$(body_of "$r" | jq -r .id)
expect_eq "ipa size" "$(stat -c %s "$T/app.ipa")" "$(body_of "$r" | jq .ipa_size)"
curl -sS --cacert "$CA" "$URL/apps/$app_id/manifest.plist" >"$T/manifest.plist"
expect_contains "manifest names the bundle" "<string>com.example.fieldservice</string>" "$(cat "$T/manifest.plist")"
expect_contains "manifest points at the ipa" "$URL/apps/$app_id/app.ipa" "$(cat "$T/manifest.plist")"
curl -sS --cacert "$CA" "$URL/apps/$app_id/app.ipa" -o "$T/got.ipa"
cmp -s "$T/app.ipa" "$T/got.ipa" && pass || fail "hosted ipa is the uploaded one"
r=$(api POST "/api/v1/apps/$app_id/install" -H 'Content-Type: application/json' --data "{\"devices\":[\"$sup_id\"]}")
expect_eq "enterprise install queued" 200 "$(status_of "$r")"
ent_uuid=$(body_of "$r" | jq -r .command_uuid)

# --- VPP: a pool of codes, one per device, ApplyRedemptionCode after the install
r=$(api POST /api/v1/apps -H 'Content-Type: application/json' \
  --data '{"itunes_store_id":1091189122,"bundle_id":"com.example.paid","name":"Paid"}')
vpp_id=$(body_of "$r" | jq -r .id)
r=$(api POST "/api/v1/apps/$vpp_id/codes" -H 'Content-Type: application/json' --data '{"codes":["CODE-A","CODE-B","CODE-C","CODE-A"]}')
expect_eq "codes imported (duplicate skipped)" "3 3" "$(body_of "$r" | jq -r '"\(.added) \(.codes_free)"')"
two=$(jq -rs 'map(select(.store == true))[0:2] | map(.id)' "$T/facts.jsonl" | jq -c .)
r=$(api POST "/api/v1/apps/$vpp_id/install" -H 'Content-Type: application/json' --data "{\"devices\":$two,\"redemption_code\":true}")
expect_eq "VPP install queued" 200 "$(status_of "$r")"
expect_eq "one code used per device" "1 2" \
  "$(body_of "$(api GET "/api/v1/apps/$vpp_id")" | jq -r '"\(.codes_free) \(.codes_used)"')"
connect
expect_eq "enterprise install answered" Acknowledged "$(body_of "$(api GET "/api/v1/commands/$ent_uuid")" | jq -r '.devices[0].status')"
codes=""
for d in $(printf '%s' "$two" | jq -r '.[]'); do
  c=$(body_of "$(api GET "/api/v1/devices/$d/commands")" | jq -r '[.commands[] | select(.request_type == "ApplyRedemptionCode")][0] | "\(.status)"')
  expect_eq "ApplyRedemptionCode answered on $d" Acknowledged "$c"
done
grep -c 'RedemptionCode' "$T/server.log" >/dev/null || true
r=$(post "{\"devices\":[\"$sup_id\"],\"request_type\":\"RemoveApplication\",\"identifier\":\"com.example.fieldservice\"}")
expect_eq "RemoveApplication queued" 200 "$(status_of "$r")"

# --- AccessRights: a device enrolled by a profile without App Management (4096)
stop_server
start_server --set enroll_access_rights=4095
mkdir -p "$T/limited"
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed commands-limited \
  --state "$T/limited" run >"$T/sim-limited.log" 2>&1 || { cat "$T/sim-limited.log"; fail "limited device enrolls"; }
lim=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '.devices[].id' | sort | comm -13 <(printf '%s\n' $ids) -)
r=$(post "{\"devices\":[\"$lim\"],\"request_type\":\"RemoveApplication\",\"identifier\":\"com.example.x\"}")
expect_eq "a right the enrollment lacks" "422 access_denied" "$(status_of "$r") $(code_of "$r")"
expect_contains "the refusal names the right" "AllowAppInstallation (4096)" "$(body_of "$r")"
r=$(post "{\"devices\":[\"$sup_id\",\"$lim\"],\"request_type\":\"RemoveApplication\",\"identifier\":\"com.example.x\"}")
expect_eq "with a device that has it: 207" 207 "$(status_of "$r")"
expect_eq "… the one with the right took it" true "$(body_of "$r" | jq --arg d "$sup_id" '.devices[$d].queued')"
expect_eq "… the other refused" access_denied "$(body_of "$r" | jq -r --arg d "$lim" '.devices[$d].code')"
r=$(post "{\"devices\":[\"$lim\"],\"request_type\":\"DeviceLock\"}")
expect_eq "a right it has" 200 "$(status_of "$r")"

# --- raw commands still pass through
r=$(post "{\"devices\":[\"$lim\"],\"command\":{\"RequestType\":\"RestartDevice\"}}")
expect_eq "raw command passes" 200 "$(status_of "$r")"

# --- stewardctl
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
out=$("${CTL[@]}" device lock "$sup_id" --message "Lost phone" --phone "+1 555 0100" 2>&1) || fail "ctl device lock: $out"
expect_contains "ctl device lock" "DeviceLock queued for $sup_id" "$out"
out=$("${CTL[@]}" device lock "$sup_id" 2>&1) && fail "a second ctl lock must fail" || pass
expect_contains "ctl shows the refusal" "already waits" "$out"
out=$(echo WRONG | "${CTL[@]}" device wipe "$sup_id" 2>&1) && fail "wipe with a wrong serial must fail" || pass
expect_contains "wrong serial sends nothing" "not confirmed" "$out"
serial=$(body_of "$(api GET "/api/v1/devices/$sup_id")" | jq -r .serial_number)
out=$(echo "$serial" | "${CTL[@]}" device wipe "$sup_id" 2>&1) || fail "ctl wipe with the serial: $out"
expect_contains "ctl wipe confirmed by serial" "EraseDevice queued for $sup_id" "$out"
out=$("${CTL[@]}" device settings "$unsup_id" --data-roaming off --voice-roaming off 2>&1) || fail "ctl settings: $out"
expect_contains "ctl settings" "Settings queued" "$out"
out=$("${CTL[@]}" device settings "$unsup_id" --name Kiosk 2>&1) && fail "ctl DeviceName on unsupervised must fail" || pass
expect_contains "ctl supervised-only refusal" "supervised devices only" "$out"
out=$("${CTL[@]}" device clear-passcode "$no_token" 2>&1) && fail "ctl clear-passcode without token must fail" || pass
expect_contains "ctl no-token refusal" "no UnlockToken stored" "$out"
out=$("${CTL[@]}" device query "$unsup_id" 2>&1) || fail "ctl device query: $out"
expect_eq "ctl device query queues seven commands" 7 "$(printf '%s\n' "$out" | grep -c 'queued for')"
out=$("${CTL[@]}" apps list 2>&1) || fail "ctl apps list: $out"
expect_contains "ctl apps list" "com.example.paid" "$out"
out=$("${CTL[@]}" apps codes import "$vpp_id" CODE-D CODE-E 2>&1) || fail "ctl codes import: $out"
expect_contains "ctl codes import" "Imported 2 codes (3 unused, 2 used)" "$out"
out=$("${CTL[@]}" apps upload "$T/app.ipa" --bundle-id com.example.other --version 1.2 2>&1) || fail "ctl upload: $out"
up_id=$(printf '%s\n' "$out" | sed -n 's/^id: *//p')
out=$("${CTL[@]}" apps install "$unsup_id" --app "$up_id" 2>&1) || fail "ctl apps install --app: $out"
expect_contains "ctl enterprise install" "InstallApplication queued for $unsup_id" "$out"
out=$("${CTL[@]}" apps remove "$unsup_id" com.example.other 2>&1) || fail "ctl apps remove: $out"
pend=$(post "{\"devices\":[\"$unsup_id\",\"$sup_id\"],\"request_type\":\"ProvisioningProfileList\"}")
pend_uuid=$(body_of "$pend" | jq -r .command_uuid)
out=$("${CTL[@]}" commands cancel "$pend_uuid" 2>&1) || fail "ctl cancel everywhere: $out"
expect_contains "ctl cancel everywhere" "on 2 devices" "$out"
out=$("${CTL[@]}" commands show "$pend_uuid" 2>&1) || fail "ctl commands show: $out"
expect_eq "ctl show lists both as Canceled" 2 "$(printf '%s\n' "$out" | grep -c Canceled)"
out=$("${CTL[@]}" commands retry "$pend_uuid" 2>&1) && fail "nothing to retry" || pass

finish
