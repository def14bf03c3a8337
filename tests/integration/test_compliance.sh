#!/usr/bin/env bash
# Compliance end to end: a varied steward-devsim fleet enrolls and answers
# its inventory; policies over it (passcode, OS version, encryption,
# supervision, profiles, apps, certificates, check-in, roaming,
# restrictions, all/any) put each device in the state its own answers call
# for. One device goes compliant → non-compliant → remediated → compliant:
# nothing fires inside the grace period, then notify, re-query and lock
# fire once each. Stale data makes states unknown. Lost mode locks with the
# message and phone and removes managed profiles and apps, never wiping; a
# wipe needs its confirmation; a wipe action needs wipe_enabled.
. "$(dirname "$0")/lib.sh"
init_data
start_server --set inventory_on_enroll=1 --set compliance_interval=1
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed compliance-fleet)
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
N=12

# payloads TYPE: the stored command plists of a RequestType, oldest first,
# one per line (the API lists commands without their bodies).
payloads() {
  if [ -n "${STEWARD_TEST_DSN:-}" ]; then
    psql "$STEWARD_TEST_DSN" -Atc "SELECT translate(convert_from(payload, 'UTF8'), E'\\n\\t', '  ') FROM commands WHERE request_type = '$1' ORDER BY created_at" | tr -s ' '
  else
    sqlite3 "$DATA/steward.db" "SELECT replace(replace(CAST(payload AS TEXT), char(10), ' '), char(9), ' ') FROM commands WHERE request_type = '$1' ORDER BY created_at" | tr -s ' '
  fi
}
policy() { # name, json (without name) → id
  local r; r=$(api POST /api/v1/compliance/policies -d "{\"name\":\"$1\",$2}")
  expect_eq "create policy $1" 201 "$(status_of "$r")"
  body_of "$r" | jq -r .id
}
# --- refusals: bad rules, and a wipe action without its explicit opt-in
r=$(api POST /api/v1/compliance/policies -d '{"name":"bad","rules":{"type":"colour"}}')
expect_eq "unknown rule type refused" 400 "$(status_of "$r")"
expect_contains "reason names the rule types" "os_version" "$(body_of "$r")"
r=$(api POST /api/v1/compliance/policies -d '{"name":"bad","rules":{"all":[]}}')
expect_eq "empty all refused" 400 "$(status_of "$r")"
r=$(api POST /api/v1/compliance/policies -d '{"name":"w","rules":{"type":"supervised"},"actions":[{"type":"wipe"}]}')
expect_eq "wipe action without wipe_enabled refused" 400 "$(status_of "$r")"
expect_contains "reason names wipe_enabled" "wipe_enabled" "$(body_of "$r")"

P_BASE=$(policy baseline '"rules":{"all":[{"type":"passcode"},{"type":"encryption"},{"type":"os_version","min":"17.0"}]}')
P_ANY=$(policy supervised-or-18 '"rules":{"any":[{"type":"supervised"},{"type":"os_version","min":"18.0"}]}')
P_WIFI=$(policy wifi '"rules":{"type":"profiles_installed","identifiers":["com.example.wifi"]}')
P_APPS=$(policy no-zoom '"rules":{"all":[{"type":"apps_forbidden","identifiers":["us.zoom.videomeetings"]},{"type":"apps_required","identifiers":["com.microsoft.Office.Outlook"]}]}')
P_CERT=$(policy certs '"rules":{"type":"certificates_valid","days":30}')
P_SEEN=$(policy seen '"rules":{"type":"checked_in","days":7}')
P_RESTR=$(policy force-pin '"rules":{"type":"restriction","name":"forcePIN","value":true}')
P_ROAM=$(policy no-data-roaming '"rules":{"type":"roaming","allow_data_roaming":false},"grace_seconds":8,"actions":[{"type":"notify"},{"type":"requery"},{"type":"lock","message":"Roaming is off-limits","phone":"+1 555 0100"}]')

mkdir -p "$T/fleet"
"${SIM[@]}" --state "$T/fleet" --count $N --concurrency 4 run >"$T/sim1.log" 2>&1 \
  || { cat "$T/sim1.log"; fail "fleet run"; }
ids=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '.devices[].id' | sort)
expect_eq "fleet enrolled" $N "$(printf '%s\n' "$ids" | grep -c .)"

# --- the truth, from each device's raw answers
: >"$T/facts.jsonl"
for id in $ids; do
  body_of "$(api GET "/api/v1/devices/$id/commands?limit=100")" | jq -c --arg id "$id" '
    def res(t): [.commands[] | select(.request_type == t and .status == "Acknowledged")][0].result;
    (res("DeviceInformation").QueryResponses) as $q |
    { id: $id, os: $q.OSVersion, sup: $q.IsSupervised,
      passcode: res("SecurityInfo").SecurityInfo.PasscodePresent,
      caps: res("SecurityInfo").SecurityInfo.HardwareEncryptionCaps,
      apps: [res("InstalledApplicationList").InstalledApplicationList[].Identifier],
      profiles: [res("ProfileList").ProfileList[].PayloadIdentifier],
      pin: res("Restrictions").GlobalRestrictions.restrictedBool.forcePIN.value,
      droam: ($q.DataRoamingEnabled // false) }' >>"$T/facts.jsonl"
done
soon=""
for d in "$T"/fleet/device-*; do
  openssl x509 -in "$d/cert.pem" -noout -checkend $((30 * 86400)) >/dev/null ||
    soon="$soon $(openssl x509 -in "$d/cert.pem" -noout -subject | sed 's/.*CN *= *\([^,]*\).*/\1/')"
done
soon=$(printf '%s\n' $soon | sort | grep . || true)

r=$(api POST /api/v1/compliance/evaluate)
expect_eq "evaluate the fleet" 200 "$(status_of "$r")"
expect_eq "every device in every policy" $((N * 8)) "$(body_of "$r" | jq .evaluated)"

expected() { jq -rs "map(select($1)) | .[].id" "$T/facts.jsonl" | sort; }
noncompliant() { # policy id → device ids non-compliant under it
  body_of "$(api GET "/api/v1/compliance?state=noncompliant&policy=$1&limit=1000")" | jq -r '.states[].device' | sort
}
check() { # name, policy id, jq select for non-compliant devices
  local e g; e=$(expected "$3"); g=$(noncompliant "$2")
  expect_eq "$1: non-compliant devices" "$e" "$g"
  local ne; ne=$(printf '%s\n' "$e" | grep -c . || true)
  [ "$ne" -gt 0 ] && [ "$ne" -lt $N ] || [ "${4:-}" = any ] || fail "$1: fleet has no variety ($ne of $N)"
}
ver='(.os | split(".") | map(tonumber) | (. + [0,0,0])[:3])'
check "baseline (all)" "$P_BASE" "(.passcode != true) or (.caps != 3) or ($ver < [17,0,0])"
check "supervised or iOS 18 (any)" "$P_ANY" "(.sup != true) and ($ver < [18,0,0])"
check "wifi profile" "$P_WIFI" '(.profiles | index("com.example.wifi")) == null'
check "apps" "$P_APPS" '((.apps | index("us.zoom.videomeetings")) != null) or ((.apps | index("com.microsoft.Office.Outlook")) == null)'
check "forcePIN restriction in force" "$P_RESTR" '.pin != true'
expect_eq "certificates expiring within 30 days" "$soon" "$(noncompliant "$P_CERT")"
expect_eq "everyone checked in" "" "$(noncompliant "$P_SEEN")"
expect_eq "nobody roams with data" "" "$(noncompliant "$P_ROAM")"
s=$(body_of "$(api GET /api/v1/compliance)")
expect_eq "summary counts the wifi policy" "$N" \
  "$(printf '%s' "$s" | jq --argjson p "$P_WIFI" '.policies[] | select(.id == $p) | .compliant + .noncompliant + .unknown')"
one=$(expected '(.profiles | index("com.example.wifi")) == null' | head -n1)
d=$(body_of "$(api GET "/api/v1/devices/$one/compliance")")
expect_eq "device view: overall non-compliant" noncompliant "$(printf '%s' "$d" | jq -r .state)"
expect_eq "device view: failing rule and observed value" "profiles_installed|com.example.wifi missing" \
  "$(printf '%s' "$d" | jq -r --argjson p "$P_WIFI" '.policies[] | select(.policy_id == $p) | "\(.rule)|\(.observed)"')"

# --- a transition: compliant → non-compliant (grace) → actions once → remediated → compliant
dev=$(jq -rs 'map(select(.droam == false)) | .[0].id' "$T/facts.jsonl")
cmds_of() { body_of "$(api GET "/api/v1/devices/$dev/commands?limit=1000")" | jq -r "[.commands[] | select(.request_type == \"$1\")] | length"; }
settings() { # enabled true|false: Settings DataRoaming then DeviceInformation, answered
  api POST /api/v1/commands -d "{\"devices\":[\"$dev\"],\"command\":{\"RequestType\":\"Settings\",\"Settings\":[{\"Item\":\"DataRoaming\",\"Enabled\":$1}]}}" >/dev/null
  api POST /api/v1/commands -d "{\"devices\":[\"$dev\"],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"DataRoamingEnabled\",\"IsRoaming\",\"OSVersion\"]}}" >/dev/null
  "${SIM[@]}" --state "$T/fleet" --count $N connect >>"$T/sim2.log" 2>&1 || fail "connect"
}
state_of() { body_of "$(api GET "/api/v1/devices/$dev/compliance")" | jq -r --argjson p "$P_ROAM" '.policies[] | select(.policy_id == $p) | .state'; }
locks0=$(cmds_of DeviceLock)
settings true
expect_eq "data roaming on: non-compliant at once" noncompliant "$(state_of)"
# (a loaded machine may take longer than the grace period to get here: then
# there is nothing to check)
nc_since=$(body_of "$(api GET "/api/v1/devices/$dev/compliance")" | jq -r --argjson p "$P_ROAM" '.policies[] | select(.policy_id == $p) | .noncompliant_since')
locks_now=$(cmds_of DeviceLock)
if [ $(( $(date +%s) - $(date -d "$nc_since" +%s) )) -lt 7 ]; then
  expect_eq "inside the grace period nothing fires" "$locks0" "$locks_now"
fi
sleep 10 # grace 8 s; the scheduler runs every second
expect_eq "after the grace period: one DeviceLock" $((locks0 + 1)) "$(cmds_of DeviceLock)"
lock=$(payloads DeviceLock | tail -n1)
expect_contains "lock message" '<key>Message</key> <string>Roaming is off-limits</string>' "$lock"
expect_contains "lock phone" '<key>PhoneNumber</key> <string>+1 555 0100</string>' "$lock"
grep -q "compliance notice.*event=noncompliant.*device=\"\?$dev" "$T/server.log" || fail "notify logged"
d=$(body_of "$(api GET "/api/v1/devices/$dev/compliance")")
expect_eq "actions recorded on the device" "lock,notify,requery" \
  "$(printf '%s' "$d" | jq -r --argjson p "$P_ROAM" '.policies[] | select(.policy_id == $p) | .actions_fired | keys | join(",")')"
sleep 2
"${SIM[@]}" --state "$T/fleet" --count $N connect >>"$T/sim2.log" 2>&1 || fail "connect (requery answered)"
sleep 2
# actions of this episode: recorded at or after the transition to non-compliant
expect_eq "each action fired once" "1 1 1" "$(printf '%s' "$(body_of "$(api GET "/api/v1/devices/$dev/compliance?history=100")")" | jq -r --argjson p "$P_ROAM" --arg t "$nc_since" '[.history[] | select(.kind == "action" and .policy_id == $p and .at >= $t) | .action] as $a | "\([$a[] | select(. == "lock")] | length) \([$a[] | select(. == "notify")] | length) \([$a[] | select(. == "requery")] | length)"')"
expect_eq "still one DeviceLock" $((locks0 + 1)) "$(cmds_of DeviceLock)"
settings false
expect_eq "remediated: compliant" compliant "$(state_of)"
h=$(body_of "$(api GET "/api/v1/devices/$dev/compliance?history=100")")
# (before the inventory first arrived, a scheduled run may have seen the device as unknown)
expect_eq "history: the two transitions" "compliant>noncompliant noncompliant>compliant" \
  "$(printf '%s' "$h" | jq -r --argjson p "$P_ROAM" '[.history[] | select(.kind == "transition" and .policy_id == $p)] | .[:2] | reverse | map("\(.from)>\(.to)") | join(" ")')"
sleep 2
expect_eq "compliant again: nothing more fires" $((locks0 + 1)) "$(cmds_of DeviceLock)"

# --- stewardctl
out=$("${CTL[@]}" compliance policies list)
expect_contains "ctl policies list" "no-data-roaming" "$out"
out=$("${CTL[@]}" compliance status)
expect_contains "ctl status shows a failing rule" "profiles_installed" "$out"
out=$("${CTL[@]}" compliance status "$dev")
expect_contains "ctl device status" "no-data-roaming" "$out"

# --- stale data: unknown, not compliant
stop_server
start_server --set compliance_interval=0 --set compliance_max_age=1
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
sleep 2
api POST /api/v1/compliance/evaluate >/dev/null
expect_eq "stale data: the wifi policy is unknown everywhere" $N \
  "$(body_of "$(api GET "/api/v1/compliance?state=unknown&policy=$P_WIFI&limit=1000")" | jq .total)"
expect_contains "unknown says why" "stale" \
  "$(body_of "$(api GET "/api/v1/devices/$one/compliance")" | jq -r '.policies[0].observed')"
expect_eq "check-in is not inventory: still judged" 0 \
  "$(body_of "$(api GET "/api/v1/compliance?state=unknown&policy=$P_SEEN")" | jq .total)"

# --- lost mode, and the wipe only with its confirmation
mid=$(for i in $ids; do
  c=$(body_of "$(api GET "/api/v1/devices/$i/inventory/managed-apps")" | jq .count)
  [ "$c" -ge 1 ] && { echo "$i"; break; }
done)
r=$(api POST "/api/v1/devices/$mid/lost" -d '{"message":"Lost. Please call.","phone":"+1 555 0199"}')
expect_eq "lost" 200 "$(status_of "$r")"
lock=$(payloads DeviceLock | tail -n1)
expect_contains "lost: DeviceLock message" '<key>Message</key> <string>Lost. Please call.</string>' "$lock"
expect_contains "lost: DeviceLock phone" '<key>PhoneNumber</key> <string>+1 555 0199</string>' "$lock"
idents() { payloads "$1" | sed 's/.*<key>Identifier<\/key> *<string>\([^<]*\)<.*/\1/' | sort | tr '\n' ' '; }
expect_eq "lost: the Wi-Fi profile removed, not the MDM profile" "com.example.wifi " "$(idents RemoveProfile)"
expect_eq "lost: every managed app removed" \
  "$(body_of "$(api GET "/api/v1/devices/$mid/inventory/managed-apps")" | jq -r '.items[].identifier' | sort | tr '\n' ' ')" \
  "$(idents RemoveApplication)"
expect_eq "lost: shown on the device" '"Lost. Please call."' \
  "$(body_of "$(api GET "/api/v1/devices/$mid/compliance")" | jq -c .lost.message)"
r=$(api POST "/api/v1/devices/$mid/wipe")
expect_eq "wipe without confirmation refused" 400 "$(status_of "$r")"
r=$(api POST "/api/v1/devices/$mid/wipe" -d '{"confirm":"someone-else"}')
expect_eq "wipe with the wrong confirmation refused" 400 "$(status_of "$r")"
total_erase=0
for i in $ids; do
  total_erase=$((total_erase + $(body_of "$(api GET "/api/v1/devices/$i/commands?limit=1000")" | jq '[.commands[] | select(.request_type == "EraseDevice")] | length')))
done
expect_eq "no EraseDevice was ever queued without an explicit opt-in" 0 "$total_erase"
r=$(api POST "/api/v1/devices/$mid/wipe" -d "{\"confirm\":\"$mid\"}")
expect_eq "confirmed wipe" 200 "$(status_of "$r")"
expect_eq "EraseDevice queued" 1 \
  "$(body_of "$(api GET "/api/v1/devices/$mid/commands?limit=1000")" | jq '[.commands[] | select(.request_type == "EraseDevice")] | length')"
r=$(api POST "/api/v1/devices/nope/lost" -d '{}')
expect_eq "lost: unknown device" 404 "$(status_of "$r")"

# --- a policy scoped to a group covers the group's members only
gdev=$(expected 'true' | head -n1)
r=$(api POST /api/v1/groups -d '{"name":"compliance-scope"}')
expect_eq "group for a scope" 201 "$(status_of "$r")"
r=$(api POST /api/v1/groups/compliance-scope/members -d "{\"devices\":[\"$gdev\"]}")
expect_eq "one member" 200 "$(status_of "$r")"
P_GRP=$(policy group-scoped '"rules":{"type":"os_version","min":"99.0"},"scope":{"groups":["compliance-scope"]}')
r=$(api POST /api/v1/compliance/evaluate)
expect_eq "evaluate with a group scope" 200 "$(status_of "$r")"
expect_eq "group-scoped policy: one device in scope" 1 \
  "$(body_of "$(api GET "/api/v1/compliance/policies/$P_GRP")" | jq .devices_in_scope)"
# (its inventory is stale by now, so its state is unknown rather than non-compliant)
expect_eq "group-scoped policy: only the member has a state" "$gdev" \
  "$(body_of "$(api GET "/api/v1/compliance?policy=$P_GRP&limit=1000")" | jq -r '.states[].device' | sort -u)"
r=$(api DELETE "/api/v1/compliance/policies/$P_GRP")
expect_eq "delete the group-scoped policy" 200 "$(status_of "$r")"

# --- CRUD rest
r=$(api POST /api/v1/compliance/policies -d '{"name":"wifi","rules":{"type":"supervised"}}')
expect_eq "a taken name" 409 "$(status_of "$r")"
set +e
"${CTL[@]}" devices wipe "$mid" >/dev/null 2>"$T/ctl.err"; rc=$?
set -e
expect_eq "ctl wipe without --confirm is a usage error" 2 "$rc"
printf '{"name":"from-ctl","rules":{"type":"checked_in","days":30}}' >"$T/p.json"
out=$("${CTL[@]}" compliance policies create --file "$T/p.json")
expect_contains "ctl creates a policy" "from-ctl" "$out"
r=$(api PUT "/api/v1/compliance/policies/$P_SEEN" -d '{"enabled":false}')
expect_eq "disable a policy" false "$(body_of "$r" | jq .enabled)"
r=$(api DELETE "/api/v1/compliance/policies/$P_SEEN")
expect_eq "delete a policy" 200 "$(status_of "$r")"
r=$(api GET "/api/v1/compliance/policies/$P_SEEN")
expect_eq "deleted policy is gone" 404 "$(status_of "$r")"
finish
