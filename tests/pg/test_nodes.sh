#!/usr/bin/env bash
# Several steward nodes on one PostgreSQL (run by tests/pg/run.sh, which
# gives a fresh database in STEWARD_TEST_DSN): three `steward serve` processes
# on their own loopback ports share the database and the data dir's CA. A
# command enqueued through node A reaches a device that checks in on node B;
# its result, reported on node C, is visible through node A; a device that
# enrolled on one node is recognised on every other; a node killed outright
# loses nothing the others need.
. "$(dirname "$0")/../integration/lib.sh"
[ -n "${STEWARD_TEST_DSN:-}" ] || { echo "needs STEWARD_TEST_DSN (tests/pg/run.sh)"; exit 77; }
init_data

NODE_PID=(); NODE_URL=()
start_node() { # index
  local i=$1 ready=$T/ready-$1
  rm -f "$ready"
  "$BIN/steward" serve --data-dir "$DATA" --ready-file "$ready" --set workers=2 \
    --set command_expiry_interval=1 >>"$T/node$i.log" 2>&1 &
  echo $! >"$T/pid-$i"
  for _ in $(seq 1 100); do [ -f "$ready" ] && break; sleep 0.1; done
  [ -f "$ready" ] || { cat "$T/node$i.log" >&2; echo "node $i did not start" >&2; exit 1; }
}
stop_nodes() {
  for p in "${NODE_PID[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NODE_PID[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'stop_nodes; cleanup' EXIT
on() { # node-index then api/device_put args: runs against that node
  local i=$1; shift
  URL=${NODE_URL[$i]} "$@"
}

# Three nodes start at once on the fresh database: the migration lock lets
# exactly one apply each migration.
STARTED=$(date +%s)
start_node 0 & start_node 1 & start_node 2 & wait
for i in 0 1 2; do
  NODE_PID[$i]=$(cat "$T/pid-$i")
  NODE_URL[$i]=https://localhost:$(sed -n 's/^https_port=//p' "$T/ready-$i")
  kill -0 "${NODE_PID[$i]}" || fail "node $i is not running"
done
once=$(psql -X -A -t "$STEWARD_TEST_DSN" -c "SELECT count(*) > 1 AND count(*) = count(DISTINCT version) FROM schema_version")
expect_eq "each migration applied once" t "$once"
for i in 0 1 2; do
  r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "${NODE_URL[$i]}/readyz")
  expect_eq "node $i ready" 200 "$(status_of "$r")"
done

issue_cert dev1
D=00008030-00AA11BB22CC33DD
URL=${NODE_URL[2]} enroll_mtls dev1 $D   # enrolls on C

# Enqueue through A.
r=$(on 0 api POST /api/v1/commands -H 'Content-Type: application/json' \
  -d "{\"devices\":[\"$D\"],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"OSVersion\"]}}")
expect_eq "enqueue on node A" 200 "$(status_of "$r")"
UUID=$(body_of "$r" | sed -n 's/.*"command_uuid":"\([^"]*\)".*/\1/p')
[ -n "$UUID" ] || fail "no command_uuid"

# The device checks in on B and gets it.
connect_plist $D Idle >"$T/idle.plist"
r=$(on 1 device_put /mdm/connect dev1 "$T/idle.plist")
expect_eq "idle on node B" 200 "$(status_of "$r")"
expect_contains "node B hands out the command enqueued on A" "$UUID" "$(body_of "$r")"

# It answers on C; A shows the result; nothing is handed out twice.
connect_plist $D Acknowledged "$UUID" '	<key>QueryResponses</key>
	<dict><key>OSVersion</key><string>18.2</string></dict>' >"$T/ack.plist"
r=$(on 2 device_put /mdm/connect dev1 "$T/ack.plist")
expect_eq "ack on node C" 200 "$(status_of "$r")"
expect_eq "queue drained" "" "$(body_of "$r")"
r=$(on 0 api GET /api/v1/devices/$D/commands)
expect_contains "node A sees the result from C" '"status":"Acknowledged"' "$(body_of "$r")"
r=$(on 0 device_put /mdm/connect dev1 "$T/idle.plist")
expect_eq "nothing left on node A" "" "$(body_of "$r")"

# A fleet spread over the three nodes: each device enrolls on one node and
# drains commands enqueued on another.
mkdir -p "$T/fleet"
SIM=("$BIN/steward-devsim" --ca "$CA" --issue-from "$DATA" --count 6 --concurrency 3 --seed 77)
"${SIM[@]}" --url "${NODE_URL[0]}" --state "$T/fleet" enroll >"$T/sim-enroll.log" 2>&1 || fail "fleet enroll on A: $(tail -3 "$T/sim-enroll.log")"
r=$(on 1 api GET "/api/v1/devices?limit=100")
ids=$(body_of "$r" | grep -o '"id":"[^"]*"' | sed 's/"id":"\(.*\)"/\1/' | sort)
expect_eq "node B lists all seven devices" 7 "$(printf '%s\n' "$ids" | grep -c .)"
list=$(printf '%s\n' "$ids" | sed 's/.*/"&"/' | paste -sd, -)
for n in 1 2 3; do
  r=$(on $((n % 3)) api POST /api/v1/commands -H 'Content-Type: application/json' \
    -d "{\"devices\":[$list],\"command\":{\"RequestType\":\"ProfileList\"}}")
  expect_eq "enqueue batch $n on node $((n % 3))" 200 "$(status_of "$r")"
done

# Node A dies outright mid-run (SIGKILL): B and C carry on with everything.
kill -KILL "${NODE_PID[0]}"; wait "${NODE_PID[0]}" 2>/dev/null || true
"${SIM[@]}" --url "${NODE_URL[1]}" --state "$T/fleet" --json connect >"$T/sim-connect.json" 2>"$T/sim-connect.log" ||
  fail "fleet connect on B: $(tail -3 "$T/sim-connect.log")"
waiting=$(psql -X -A -t "$STEWARD_TEST_DSN" -c "SELECT count(*) FROM queue WHERE active = 1 AND enrollment_id <> '$D'")
expect_eq "every command queued for the fleet was delivered and answered" 0 "$waiting"
waiting=$(psql -X -A -t "$STEWARD_TEST_DSN" -c "SELECT count(*) FROM queue WHERE active = 1 AND enrollment_id = '$D'")
expect_eq "the curl device (not in the fleet) still has its three" 3 "$waiting"
twice=$(psql -X -A -t "$STEWARD_TEST_DSN" -c "SELECT count(*) FROM results GROUP BY enrollment_id, command_uuid HAVING count(*) > 1" | grep -c . || true)
expect_eq "no command answered twice" 0 "$twice"
answered=$(psql -X -A -t "$STEWARD_TEST_DSN" -c "SELECT count(*) FROM results WHERE status = 'Acknowledged'")
expect_eq "3 commands x 6 devices + the first one acknowledged" 19 "$answered"
r=$(on 2 api GET "/api/v1/devices?status=enrolled")
expect_contains "node C lists the fleet" '"total":7' "$(body_of "$r")"

# Scheduled jobs are shared: the one-second command-expiry sweep ran about
# once a second between the nodes (each node's first run is its own), not
# once a second on each of them. On a fast machine the steps above take
# less than the five seconds that count needs: wait out the rest.
elapsed=$(( $(date +%s) - STARTED ))
[ "$elapsed" -ge 5 ] || sleep $((5 - elapsed))
elapsed=$(( $(date +%s) - STARTED ))
runs=$(psql -X -A -t "$STEWARD_TEST_DSN" -c "SELECT runs FROM sched_runs WHERE name = 'command-expiry'")
[ "$elapsed" -ge 5 ] && [ -n "$runs" ] && [ "$runs" -le $((elapsed + 4)) ] && [ "$runs" -ge $((elapsed / 2)) ] && pass ||
  fail "command-expiry ran $runs times in ${elapsed}s on three nodes (once a second between them expected)"
finish
