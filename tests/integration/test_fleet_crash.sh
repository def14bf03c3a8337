#!/usr/bin/env bash
# A fleet from steward-devsim: 3 devices enroll (two over mutual TLS, one with
# Mdm-Signature), DeviceInformation goes to all, 3 results show in the API and
# stewardctl; NotNow then re-delivery; then `kill -9` in the middle of a
# 20-device run and a restart: nothing queued or acknowledged is lost.
. "$(dirname "$0")/lib.sh"
init_data
start_server
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA")
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")

# --- three devices: two mTLS, one Mdm-Signature
"${SIM[@]}" --state "$T/sim-mtls" --count 2 enroll >"$T/sim1.log" 2>&1 || { cat "$T/sim1.log"; fail "mTLS enrollment"; }
"${SIM[@]}" --state "$T/sim-sig" --count 1 --signature --no-mtls enroll >"$T/sim2.log" 2>&1 || { cat "$T/sim2.log"; fail "signature enrollment"; }
out=$("${CTL[@]}" --json devices list --status enrolled)
ids=$(printf '%s' "$out" | grep -o '"id": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
expect_eq "three enrolled devices" 3 "$(printf '%s\n' "$ids" | grep -c .)"
args=(); for i in $ids; do args+=(--device "$i"); done
out=$("${CTL[@]}" commands send "${args[@]}" --type DeviceInformation --queries OSVersion,SerialNumber,ProductName)
expect_contains "stewardctl prints the command uuid" "-" "$out"
"${SIM[@]}" --state "$T/sim-mtls" --count 2 connect >"$T/sim3.log" 2>&1 || fail "mTLS devices connect"
"${SIM[@]}" --state "$T/sim-sig" --count 1 --signature --no-mtls connect >"$T/sim4.log" 2>&1 || fail "signature device connect"
acked=0
for i in $ids; do
  r=$(api GET "/api/v1/devices/$i/commands")
  case "$(body_of "$r")" in *'"status":"Acknowledged"'*'"QueryResponses"'*) acked=$((acked + 1)) ;; esac
  expect_contains "result holds the device's OS version" '"OSVersion"' "$(body_of "$r")"
done
expect_eq "three results via the API" 3 "$acked"
first=$(printf '%s\n' "$ids" | head -n1)
out=$("${CTL[@]}" commands list "$first")
expect_contains "stewardctl lists the result" "Acknowledged" "$out"

sim_udids() { # the UDIDs of a devsim state dir
  for f in "$1"/device-*/device.plist; do
    grep -A1 '<key>UDID</key>' "$f" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p'
  done
}
mtls_ids=$(sim_udids "$T/sim-mtls")
expect_eq "two mTLS devices in the state dir" 2 "$(printf '%s\n' "$mtls_ids" | grep -c .)"

# --- NotNow, then delivered again on the next Idle-started exchange
r=$(api POST /api/v1/commands -d "{\"devices\":[$(printf '"%s",' $ids | sed 's/,$//')],\"command\":{\"RequestType\":\"SecurityInfo\"}}")
expect_eq "enqueue SecurityInfo" 200 "$(status_of "$r")"
"${SIM[@]}" --state "$T/sim-mtls" --count 2 --notnow SecurityInfo connect >"$T/sim5.log" 2>&1 || fail "NotNow round"
for i in $mtls_ids; do
  r=$(api GET "/api/v1/devices/$i/commands"); expect_contains "NotNow recorded" '"status":"NotNow"' "$(body_of "$r")"
done
"${SIM[@]}" --state "$T/sim-mtls" --count 2 connect >"$T/sim6.log" 2>&1 || fail "re-delivery round"
for i in $mtls_ids; do
  r=$(api GET "/api/v1/devices/$i/commands")
  expect_not_contains "nothing left NotNow" '"status":"NotNow"' "$(body_of "$r")"
  expect_contains "SecurityInfo answered after NotNow" '"SecurityInfo"' "$(body_of "$r")"
done

# --- kill -9 mid-run: 20 devices, 10 commands each
"${SIM[@]}" --state "$T/fleet" --count 20 --concurrency 4 enroll >"$T/fleet1.log" 2>&1 || fail "fleet enrollment"
fleet=$(sim_udids "$T/fleet")
expect_eq "20 fleet devices" 20 "$(printf '%s\n' "$fleet" | grep -c .)"
devs=$(printf '"%s",' $fleet | sed 's/,$//')
TYPES="DeviceInformation SecurityInfo ProfileList CertificateList InstalledApplicationList"
for t in $TYPES $TYPES; do
  r=$(api POST /api/v1/commands -d "{\"devices\":[$devs],\"command\":{\"RequestType\":\"$t\"}}")
  expect_eq "fleet enqueue $t" 200 "$(status_of "$r")"
done
TOTAL=200
count_acked() { # sums Acknowledged results over the fleet
  local sum=0 n
  for i in $fleet; do
    n=$(api GET "/api/v1/devices/$i/commands?limit=1000" | sed '$d' | grep -o '"status":"Acknowledged"' | wc -l)
    sum=$((sum + n))
  done
  echo "$sum"
}
count_queued() {
  local sum=0 n
  for i in $fleet; do
    n=$(api GET "/api/v1/devices/$i/commands?limit=1000" | sed '$d' | grep -o '"command_uuid"' | wc -l)
    sum=$((sum + n))
  done
  echo "$sum"
}
# drain the first fleet device completely, and remember what it says
one=$(sim_udids "$T/fleet" | sed -n 1p)
"${SIM[@]}" --state "$T/fleet" --count 1 connect >"$T/fleet2.log" 2>&1 || fail "first fleet device drains"
before_one=$(api GET "/api/v1/devices/$one/commands" | sed '$d')
expect_eq "first device acknowledged all ten" 10 "$(printf '%s' "$before_one" | grep -o '"status":"Acknowledged"' | wc -l)"
# the rest of the fleet drains in parallel; kill -9 once 40 more reports are in
base=$(grep -c 'msg=command report' "$T/server.log" || true)
"${SIM[@]}" --state "$T/fleet" --count 20 --concurrency 4 connect >"$T/fleet3.log" 2>&1 &
SIMPID=$!
for _ in $(seq 1 2000); do
  now=$(grep -c 'msg=command report' "$T/server.log" || true)
  [ $((now - base)) -ge 40 ] && break
  sleep 0.005
done
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
wait "$SIMPID" 2>/dev/null || true
reports=$(( $(grep -c 'msg=command report' "$T/server.log" || true) - base ))
start_server
after_one=$(api GET "/api/v1/devices/$one/commands" | sed '$d')
expect_eq "acknowledged results survive kill -9" "$before_one" "$after_one"
expect_eq "every queued command still there after kill -9" $TOTAL "$(count_queued)"
mid=$(count_acked)
echo "kill -9 came after $mid of $TOTAL commands were acknowledged ($reports reports logged)"
# every report the server logged as stored before the kill is still there
if [ "$mid" -ge $((10 + reports)) ]; then pass; else fail "acknowledged results lost: $mid stored < $((10 + reports)) logged"; fi
if [ "$mid" -lt $TOTAL ]; then pass; else fail "the kill came after the fleet had finished; the test proved nothing"; fi
"${SIM[@]}" --url "$URL" --state "$T/fleet" --count 20 --concurrency 4 connect >"$T/fleet4.log" 2>&1 || fail "fleet drains after restart"
expect_eq "all $TOTAL commands acknowledged after restart" $TOTAL "$(count_acked)"
finish
