#!/usr/bin/env bash
# A slow database call must not stall every connection: while another process
# holds SQLite's write lock, a device's TokenUpdate waits on its handler thread,
# yet reads and health checks on other connections answer at once; when the
# lock outlives the busy timeout the device gets 503 (it retries later) and
# nothing is lost.
. "$(dirname "$0")/lib.sh"
init_data
start_server
issue_cert dev1
A=00008030-001A2D3E0C41802E
enroll_mtls dev1 $A
DB=$DATA/steward.db
now_ms() { date +%s%3N; }

connect_plist $A Idle >"$T/idle.plist"
# an Idle first, so last-seen is fresh and the next Idle needs no write
r=$(device_put /mdm/connect dev1 "$T/idle.plist"); expect_eq "Idle before the lock" 200 "$(status_of "$r")"

# hold the write lock for 4.5 s (shorter than the 5 s busy timeout; long
# enough that the three requests below finish inside it on a loaded machine)
( echo "BEGIN IMMEDIATE;"; echo "UPDATE enrollments SET device_name = device_name;"; sleep 4.5; echo "COMMIT;" ) | sqlite3 "$DB" &
LOCKER=$!
sleep 0.5
t0=$(now_ms)
( r=$(device_put /mdm/checkin dev1 "$T/tok-$A.plist"); echo "$(status_of "$r") $(now_ms)" >"$T/slow.out" ) &
SLOW=$!
sleep 0.3
r=$(api GET /api/v1/devices/$A); t_read=$(now_ms)
expect_eq "read during the lock" 200 "$(status_of "$r")"
r=$(curl -sS --cacert "$CA" -w '\nHTTP %{http_code}' "$URL/healthz"); t_health=$(now_ms)
expect_eq "healthz during the lock" 200 "$(status_of "$r")"
# the I/O thread's fast path answers an Idle with nothing queued while the
# write lock is held: its connection never waits for a lock
r=$(device_put /mdm/connect dev1 "$T/idle.plist"); t_idle=$(now_ms)
expect_eq "Idle during the lock" 200 "$(status_of "$r")"
expect_eq "Idle during the lock has no command" "" "$(body_of "$r")"
wait "$SLOW"; wait "$LOCKER" || true
read -r slow_status t_slow <"$T/slow.out"
expect_eq "the waiting write succeeds once the lock is gone" 200 "$slow_status"
if [ "$t_read" -lt "$t_slow" ] && [ "$t_health" -lt "$t_slow" ] && [ "$t_idle" -lt "$t_slow" ]; then pass; else fail "read/health/Idle finished after the blocked write (read=$((t_read-t0)) health=$((t_health-t0)) idle=$((t_idle-t0)) write=$((t_slow-t0)) ms)"; fi

# hold it past the busy timeout: 503, server keeps serving, data intact
( echo "BEGIN IMMEDIATE;"; echo "UPDATE enrollments SET device_name = device_name;"; sleep 8; echo "COMMIT;" ) | sqlite3 "$DB" &
LOCKER=$!
sleep 0.5
r=$(device_put /mdm/checkin dev1 "$T/tok-$A.plist")
expect_eq "write blocked past the busy timeout gets 503" 503 "$(status_of "$r")"
wait "$LOCKER" || true
r=$(device_put /mdm/checkin dev1 "$T/tok-$A.plist")
expect_eq "service returns by itself" 200 "$(status_of "$r")"
r=$(api GET /api/v1/devices/$A); expect_contains "device intact" '"status":"enrolled"' "$(body_of "$r")"
finish
