#!/usr/bin/env bash
# Inventory end to end: a varied steward-devsim fleet enrolls, gets the full
# inventory set queued at its first TokenUpdate and answers it; every
# GET /api/v1/devices filter then returns exactly the devices whose own
# answers (the raw results, and the identity certificates in the simulator's
# state) match, with paging; sections and stewardctl tables show the rows;
# managed apps move through states and history records it; the scheduled
# refresh never queues a second copy of a waiting query.
. "$(dirname "$0")/lib.sh"
init_data
start_server --set inventory_on_enroll=1
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed inventory-fleet)
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
N=16
mkdir -p "$T/fleet"
"${SIM[@]}" --state "$T/fleet" --count $N --concurrency 4 run >"$T/sim1.log" 2>&1 \
  || { cat "$T/sim1.log"; fail "fleet run"; }

ids=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -r '.devices[].id' | sort)
expect_eq "fleet enrolled" $N "$(printf '%s\n' "$ids" | grep -c .)"

# --- the truth, from what each device answered (raw results, not the inventory)
: >"$T/facts.jsonl"
for id in $ids; do
  body_of "$(api GET "/api/v1/devices/$id/commands?limit=100")" | jq -c --arg id "$id" '
    def res(t): [.commands[] | select(.request_type == t and .status == "Acknowledged")][0].result;
    (res("DeviceInformation").QueryResponses) as $q |
    { id: $id, os: $q.OSVersion, sup: $q.IsSupervised, bat: $q.BatteryLevel,
      product: $q.ProductName, model: $q.Model,
      passcode: res("SecurityInfo").SecurityInfo.PasscodePresent,
      caps: res("SecurityInfo").SecurityInfo.HardwareEncryptionCaps,
      apps: [res("InstalledApplicationList").InstalledApplicationList[].Identifier],
      profiles: [res("ProfileList").ProfileList[].PayloadIdentifier],
      subs: ($q.ServiceSubscriptions // [] | length),
      answered: ([.commands[] | select(.status == "Acknowledged")] | length) }' >>"$T/facts.jsonl"
done
expect_eq "every device answered the eight inventory queries" "$N" \
  "$(jq -s '[.[] | select(.answered == 8)] | length' "$T/facts.jsonl")"
# identity certificates expiring within 30 days, from the simulator's own files
soon=""
for d in "$T"/fleet/device-*; do
  if ! openssl x509 -in "$d/cert.pem" -noout -checkend $((30 * 86400)) >/dev/null; then
    soon="$soon $(openssl x509 -in "$d/cert.pem" -noout -subject | sed 's/.*CN *= *\([^,]*\).*/\1/')"
  fi
done
soon=$(printf '%s\n' $soon | sort)

expected() { jq -rs "map(select($1)) | .[].id" "$T/facts.jsonl" | sort; }
got() { # query → matching ids, and checks total equals the count
  local b; b=$(body_of "$(api GET "/api/v1/devices?limit=1000&$1")")
  local ids_; ids_=$(printf '%s' "$b" | jq -r '.devices[].id' | sort)
  [ "$(printf '%s' "$b" | jq .total)" = "$(printf '%s\n' "$ids_" | grep -c .)" ] || fail "total for $1"
  printf '%s\n' "$ids_"
}
check() { # name, query, jq select expression
  local e g; e=$(expected "$3"); g=$(got "$2")
  expect_eq "$1 ($2)" "$e" "$g"
  # a filter that matches nothing or everything proves little: the fleet varies
  local ne; ne=$(printf '%s\n' "$e" | grep -c . || true)
  [ "$ne" -gt 0 ] && [ "$ne" -lt $N ] || [ "${4:-}" = any ] || fail "$1: fleet has no variety ($ne of $N)"
}
ver='(.os | split(".") | map(tonumber) | (. + [0,0,0])[:3])'
check "supervised" "supervised=true" '.sup == true'
check "unsupervised" "supervised=false" '.sup == false'
check "OS at least 18" "os_min=18" "$ver >= [18,0,0]"
check "OS at most 17.6.1" "os_max=17.6.1" "$ver <= [17,6,1]"
check "OS exactly 18.1" "os=18.1" '.os == "18.1"'
check "no passcode" "passcode=false" '.passcode == false'
check "battery below 50%" "battery_below=50" '.bat < 0.5'
check "app installed" "app=com.microsoft.Office.Outlook" '.apps | index("com.microsoft.Office.Outlook") != null'
check "profile installed" "profile=com.example.wifi" '.profiles | index("com.example.wifi") != null'
first_model=$(jq -rs '.[0].product' "$T/facts.jsonl")
check "model" "model=$first_model" ".product == \"$first_model\""
check "combined" "supervised=true&os_min=17&app=us.zoom.videomeetings" \
  "(.sup == true) and ($ver >= [17,0,0]) and (.apps | index(\"us.zoom.videomeetings\") != null)" any
expect_eq "certificate expiring within 30 days" "$soon" "$(got cert_expiring_days=30)"
[ -n "$soon" ] || fail "the fleet has no short-lived identity"
expect_eq "encryption caps 3 is every device" "$ids" "$(got encryption=3)"
expect_eq "encryption caps 1 is none" "" "$(got encryption=1)"
now=$(date +%s)
expect_eq "seen in the last hour" "$ids" "$(got seen_after=$((now - 3600)))"
expect_eq "seen before an hour ago: none" "" "$(got seen_before=$((now - 3600)))"
expect_eq "dual SIM devices report two subscriptions" 1 \
  "$(jq -s '[.[] | select(.subs == 2)] | length > 0' "$T/facts.jsonl" | sed 's/true/1/')"

# --- paging: pages of 3 put together are the whole sorted match
all=$(expected '.sup == true'); paged=""
for off in 0 3 6 9 12 15; do
  b=$(body_of "$(api GET "/api/v1/devices?supervised=true&limit=3&offset=$off")")
  paged="$paged $(printf '%s' "$b" | jq -r '.devices[].id')"
  expect_eq "page total at offset $off" "$(printf '%s\n' "$all" | grep -c .)" "$(printf '%s' "$b" | jq .total)"
done
expect_eq "pages cover the match in id order" "$all" "$(printf '%s\n' $paged)"

# --- refusals name the parameter; nothing else changes
for q in "os_min=abc" "supervised=maybe" "battery_below=0" "encryption=7" "seen_before=yesterday"; do
  r=$(api GET "/api/v1/devices?$q")
  expect_eq "400 for $q" 400 "$(status_of "$r")"
  expect_contains "reason names ${q%%=*}" "${q%%=*}" "$(body_of "$r")"
done

# --- sections
id=$(printf '%s\n' $ids | head -n1)
truth=$(jq -c --arg id "$id" 'select(.id == $id)' "$T/facts.jsonl")
b=$(body_of "$(api GET "/api/v1/devices/$id/inventory/device")")
expect_eq "device section OS" "$(printf '%s' "$truth" | jq -r .os)" "$(printf '%s' "$b" | jq -r .values.OSVersion)"
expect_eq "device section ServiceSubscriptions" "$(printf '%s' "$truth" | jq .subs)" \
  "$(printf '%s' "$b" | jq '.values.ServiceSubscriptions // [] | length')"
b=$(body_of "$(api GET "/api/v1/devices/$id/inventory/apps")")
expect_eq "apps section lists the installed apps" "$(printf '%s' "$truth" | jq -c '.apps | sort')" \
  "$(printf '%s' "$b" | jq -c '[.items[].identifier] | sort')"
b=$(body_of "$(api GET "/api/v1/devices/$id/inventory/certificates")")
expect_contains "certificate subject parsed from DER" "CN=$id" "$b"
expect_contains "certificate issuer parsed from DER" '"issuer":"CN=' "$b"
b=$(body_of "$(api GET "/api/v1/devices/$id/inventory/restrictions")")
expect_contains "global restrictions" '"scope":"global","kind":"restrictedBool","name":"allowAppInstallation"' "$b"
expect_contains "per-profile restrictions" '"scope":"com.steward.enroll"' "$b"
r=$(api GET "/api/v1/devices/$id/inventory/nonsense")
expect_eq "unknown section" 404 "$(status_of "$r")"
expect_contains "unknown section lists the sections" "provisioning-profiles" "$(body_of "$r")"
r=$(api GET "/api/v1/devices/no-such-device/inventory/apps")
expect_eq "unknown device" 404 "$(status_of "$r")"

# --- stewardctl
out=$("${CTL[@]}" devices list --filter supervised=true --filter os_min=17)
expect_contains "ctl filtered list count" "$(expected "(.sup == true) and ($ver >= [17,0,0])" | grep -c .) of" "$out"
out=$("${CTL[@]}" devices inventory "$id" apps)
expect_contains "ctl apps table" "IDENTIFIER" "$out"
expect_contains "ctl apps table row" "$(printf '%s' "$truth" | jq -r '.apps[0]')" "$out"
out=$("${CTL[@]}" devices inventory "$id" device)
expect_contains "ctl device values" "OSVersion" "$out"
set +e
"${CTL[@]}" devices list --filter colour=blue >/dev/null 2>"$T/ctl.err"; rc=$?
set -e
expect_eq "ctl refuses an unknown filter" 2 "$rc"

# --- managed apps move through states; history shows it
mid=$(for i in $ids; do
  c=$(body_of "$(api GET "/api/v1/devices/$i/inventory/managed-apps")" | jq .count)
  [ "$c" -ge 2 ] && { echo "$i"; break; }
done)
[ -n "$mid" ] || fail "no device with managed apps"
before=$(body_of "$(api GET "/api/v1/devices/$mid/inventory/managed-apps")" | jq -r '.items[] | select(.identifier=="com.example.fieldservice") | .status')
for round in 1 2; do
  r=$(api POST /api/v1/commands -d "{\"devices\":[\"$mid\"],\"command\":{\"RequestType\":\"ManagedApplicationList\"}}")
  expect_eq "enqueue ManagedApplicationList $round" 200 "$(status_of "$r")"
  "${SIM[@]}" --state "$T/fleet" --count $N connect >"$T/sim-m$round.log" 2>&1 || fail "connect round $round"
done
after=$(body_of "$(api GET "/api/v1/devices/$mid/inventory/managed-apps")" | jq -r '.items[] | select(.identifier=="com.example.fieldservice") | .status')
expect_eq "install progressed" "Queued -> Installing" "$before -> $after"
h=$(body_of "$(api GET "/api/v1/devices/$mid/inventory/history")")
expect_contains "history records the status change" '"section":"managed-apps","item":"com.example.fieldservice","change":"changed","old_value":"Prompting","new_value":"Installing"' "$h"

# --- dedupe: enrolled but not yet answered, a refresh adds no second copy
stop_server
start_server --set inventory_on_enroll=1 --set inventory_refresh_interval=2
mkdir -p "$T/fresh"
SIM2=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --seed fresh-fleet)
"${SIM2[@]}" --state "$T/fresh" --count 2 enroll >"$T/sim-f.log" 2>&1 || fail "fresh enrollment"
fresh=$(for d in "$T"/fresh/device-*; do openssl x509 -in "$d/cert.pem" -noout -subject | sed 's/.*CN *= *\([^,]*\).*/\1/'; done)
sleep 4 # two refresh intervals: the scheduler runs and finds the set already waiting
for i in $fresh; do
  pending=$(body_of "$(api GET "/api/v1/devices/$i/commands?limit=100")" | jq '[.commands[] | select(.status == "Pending")] | length')
  expect_eq "one pending copy of each inventory query" 8 "$pending"
done
"${SIM2[@]}" --state "$T/fresh" --count 2 connect >"$T/sim-f2.log" 2>&1 || fail "fresh connect"
sleep 4 # now due again, with nothing waiting: a new set is queued
for i in $fresh; do
  b=$(body_of "$(api GET "/api/v1/devices/$i/commands?limit=100")")
  expect_eq "refreshed: a new set waits" 8 "$(printf '%s' "$b" | jq '[.commands[] | select(.status == "Pending")] | length')"
  # At least the first set was answered. A refresh landing while the device
  # drains its queue (a slow or loaded machine) is answered in the same
  # exchange too, and the next refresh only adds the queries not already
  # waiting, so the count need not be a multiple of 8.
  acked=$(printf '%s' "$b" | jq '[.commands[] | select(.status == "Acknowledged")] | length')
  expect_eq "first set answered" "yes" "$([ "$acked" -ge 8 ] && echo yes || echo "no ($acked)")"
done
finish
