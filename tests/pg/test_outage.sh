#!/usr/bin/env bash
# PostgreSQL stopped under load, then started again. A devsim fleet keeps
# checking in and answering while commands keep being enqueued; the test
# stops its own PostgreSQL cluster (not the one the other pg.* tests share)
# with `pg_ctl stop -m fast`, and asserts what devices and operators see:
# devices get 503 with Retry-After, /readyz fails, steward keeps running;
# after `pg_ctl start` it is ready again within seconds without a restart,
# every worker serves again, and nothing acknowledged is lost: every report
# the server logged as stored and every command the API accepted is still
# there, and the fleet then drains the queue completely. Then a restart
# while no request is running: the first requests after it all succeed.
. "$(dirname "$0")/../integration/lib.sh"
[ -n "${STEWARD_PG_DSN:-}" ] || { echo "needs PostgreSQL (STEWARD_PG_DSN; tests/pg/run.sh); skipped"; exit 77; }
HERE=$(cd "$(dirname "$0")" && pwd)

# A private cluster: stopping the shared one would fail the tests beside us.
env_out=$("$HERE/cluster.sh" start) || { echo "cannot start a PostgreSQL cluster" >&2; exit 1; }
OWN_DIR=$(printf '%s\n' "$env_out" | sed -n 's/^export STEWARD_PG_DIR=//p')
OWN_DSN=$(printf '%s\n' "$env_out" | sed -n 's/^export STEWARD_PG_DSN=//p')
LOADPIDS=()
stop_load() {
  touch "$T/stop-load"
  for p in "${LOADPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  LOADPIDS=()
}
trap 'stop_load; cleanup; "$HERE/cluster.sh" stop "$OWN_DIR"' EXIT
pgctl() { "$HERE/cluster.sh" pgctl "$OWN_DIR" "$1"; }

STEWARD_TEST_DSN=$OWN_DSN init_data
start_server --set workers=4
mkdir -p "$T/fleet"
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --state "$T/fleet" --count 12 --seed 808)
"${SIM[@]}" --concurrency 4 enroll >"$T/enroll.log" 2>&1 || fail "fleet enrollment: $(tail -3 "$T/enroll.log")"
issue_cert probe
PROBE=00008030-000000DEAD0001
enroll_mtls probe $PROBE
connect_plist $PROBE Idle >"$T/idle.plist"
FLEET=$(for f in "$T"/fleet/device-*/device.plist; do
  grep -A1 '<key>UDID</key>' "$f" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p'
done)
expect_eq "12 fleet devices" 12 "$(printf '%s\n' "$FLEET" | grep -c .)"
DEVS=$(printf '"%s",' $FLEET | sed 's/,$//')

# Load: an operator enqueues a command for the whole fleet every 50 ms
# (recording each one the API accepted), and the fleet checks in and answers
# in a loop, 6 devices at a time.
enqueuer() {
  local types=(DeviceInformation SecurityInfo ProfileList CertificateList) i=0 r
  while [ ! -f "$T/stop-load" ]; do
    r=$(api POST /api/v1/commands -d "{\"devices\":[$DEVS],\"command\":{\"RequestType\":\"${types[i % 4]}\"}}" 2>/dev/null || true)
    case "$(status_of "$r")" in
      200) body_of "$r" | sed -n 's/.*"command_uuid":"\([^"]*\)".*/\1/p' >>"$T/accepted" ;;
      *) echo "$(status_of "$r")" >>"$T/enqueue-refused" ;;
    esac
    i=$((i + 1)); sleep 0.05
  done
}
checkins() {
  while [ ! -f "$T/stop-load" ]; do
    "${SIM[@]}" --concurrency 6 --json connect >>"$T/load.json" 2>>"$T/load.err" || true
  done
}
: >"$T/accepted"
enqueuer & LOADPIDS+=($!)
checkins & LOADPIDS+=($!)
reports() { grep -c 'msg="command report"\|msg=command report' "$T/server.log" || true; }
for _ in $(seq 1 300); do [ "$(reports)" -ge 60 ] && break; sleep 0.1; done
[ "$(reports)" -ge 60 ] || fail "the fleet was not answering commands before the outage ($(reports) reports)"

# --- PostgreSQL goes away under load.
pgctl stop
sleep 1
headers=$(curl -sS -o "$T/probe.body" -D - --cacert "$CA" --cert "$T/certs/probe/cert.pem" \
  --key "$T/certs/probe/key.pem" -X PUT -H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
  --data-binary "@$T/idle.plist" "$URL/mdm/connect" | tr -d '\r')
expect_eq "a device gets 503 while the database is down" 503 "$(printf '%s\n' "$headers" | sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p')"
expect_contains "the 503 says when to retry" "Retry-After: " "$headers"
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "$URL/readyz")
expect_eq "/readyz fails while the database is down" 503 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "$URL/healthz")
expect_eq "/healthz (the process) still answers" 200 "$(status_of "$r")"
r=$(api POST /api/v1/commands -d "{\"devices\":[\"$PROBE\"],\"command\":{\"RequestType\":\"SecurityInfo\"}}")
expect_eq "the API answers 503 too" 503 "$(status_of "$r")"
sleep 2 # the load keeps hammering the dead database
kill -0 "$SERVER_PID" 2>/dev/null && pass || fail "steward died while the database was down"
down_reports=$(reports)

# --- PostgreSQL comes back: steward recovers by itself.
pgctl start
t0=$(date +%s.%N)
ready=
for _ in $(seq 1 150); do
  r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "$URL/readyz" 2>/dev/null || true)
  [ "$(status_of "$r")" = 200 ] && { ready=1; break; }
  sleep 0.1
done
took=$(echo "$(date +%s.%N) - $t0" | bc)
echo "ready again ${took}s after PostgreSQL started"
expect_eq "/readyz passes again without a restart" 1 "${ready:-0}"
if [ "$(echo "$took < 5" | bc)" = 1 ]; then pass; else fail "took ${took}s to recover (want < 5s)"; fi
# Every worker has a session again: a run of requests, all 200 from the first.
bad=0
for _ in $(seq 1 24); do
  r=$(device_put /mdm/connect probe "$T/idle.plist")
  [ "$(status_of "$r")" = 200 ] || bad=$((bad + 1))
done
expect_eq "24 check-ins right after recovery all answered 200" 0 $bad
for _ in $(seq 1 100); do [ "$(reports)" -gt "$down_reports" ] && break; sleep 0.1; done
if [ "$(reports)" -gt "$down_reports" ]; then pass; else fail "the fleet did not resume answering"; fi
kill -0 "$SERVER_PID" 2>/dev/null && pass || fail "steward is not running after the outage"
stop_load
refused=$(wc -l <"$T/enqueue-refused" 2>/dev/null || echo 0)
if [ "$refused" -gt 0 ]; then pass; else fail "no enqueue was refused: the outage was not under load"; fi

# --- Nothing acknowledged is lost.
# The fleet drains whatever is left; every device request now succeeds.
"${SIM[@]}" --concurrency 4 connect >"$T/final.log" 2>&1 || fail "the fleet's final drain had failures: $(tail -3 "$T/final.log")"
sql() { psql -X -A -t -q "$OWN_DSN" -c "$1"; }
# every report logged as stored (after its commit) is stored as acknowledged
grep 'command report' "$T/server.log" | grep 'status=Acknowledged' |
  sed -n 's/.* id=\("\?\)\([^" ]*\)\1 status=Acknowledged uuid=\("\?\)\([^" ]*\)\3.*/\2 \4/p' | sort -u >"$T/acked.log"
sql "SELECT enrollment_id || ' ' || command_uuid FROM queue WHERE status = 'Acknowledged'" | sort -u >"$T/acked.db"
logged=$(wc -l <"$T/acked.log")
missing=$(comm -23 "$T/acked.log" "$T/acked.db" | wc -l)
echo "$logged acknowledged reports logged; $(wc -l <"$T/acked.db") stored"
if [ "$logged" -gt 60 ]; then pass; else fail "too few acknowledged reports logged ($logged)"; fi
expect_eq "acknowledged reports missing from the database" 0 "$missing"
# every command the API accepted is queued for the whole fleet, and answered
accepted=$(sort -u "$T/accepted" | wc -l)
sort -u "$T/accepted" >"$T/accepted.sorted"
sql "SELECT command_uuid FROM queue GROUP BY command_uuid HAVING count(*) = 12" | sort -u >"$T/queued.db"
expect_eq "accepted commands not queued for all 12 devices" 0 "$(comm -23 "$T/accepted.sorted" "$T/queued.db" | wc -l)"
expect_eq "fleet commands still waiting after the final drain" 0 \
  "$(sql "SELECT count(*) FROM queue WHERE active = 1 AND enrollment_id <> '$PROBE'")"
expect_eq "fleet commands acknowledged" $((accepted * 12)) \
  "$(sql "SELECT count(*) FROM queue WHERE status = 'Acknowledged' AND enrollment_id <> '$PROBE'")"
grep -q 'store reconnected' "$T/server.log" && pass || fail "no 'store reconnected' log line"

# --- A restart while nobody asks anything: every worker's session died
# while idle. The next requests must not pay for it: the first /readyz and
# every check-in after it answer 200 (the stale session is noticed and
# reopened before use, not reported as a failure).
pgctl stop
pgctl start
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "$URL/readyz")
expect_eq "the first /readyz after a quiet restart passes" 200 "$(status_of "$r")"
bad=0
for _ in $(seq 1 16); do
  r=$(device_put /mdm/connect probe "$T/idle.plist")
  [ "$(status_of "$r")" = 200 ] || bad=$((bad + 1))
done
expect_eq "check-ins failed after a quiet restart" 0 $bad
r=$(api GET "/api/v1/devices/$PROBE/commands")
expect_eq "the API right after a quiet restart" 200 "$(status_of "$r")"
finish
