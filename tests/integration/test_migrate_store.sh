#!/usr/bin/env bash
# A deployment moves from SQLite to PostgreSQL with `steward migrate-store`:
# devsim devices enroll on SQLite (over SCEP with one-time challenges, and
# with issued certificates), answer commands (results, inventory), more
# commands stay queued (one NotNow); steward stops; migrate-store copies it
# into an empty PostgreSQL database. Every table then holds the same rows,
# value for value and byte for byte (BLOBs compared as hex); a second run is
# refused because the target holds data, and --force replaces it. steward
# then serves from PostgreSQL with the same config, API key and CA: the
# devices check in with their old identities and get exactly the commands
# that were waiting, and new rows get fresh ids after the copied ones.
# `steward migrate` reports versions on the moved and on a fresh database.
# Needs a PostgreSQL server (STEWARD_PG_DSN, as scripts/test sets); skipped
# without one.
. "$(dirname "$0")/lib.sh"
if [ -z "${STEWARD_PG_DSN:-}" ]; then
  echo "STEWARD_PG_DSN is not set: no PostgreSQL server to migrate to; skipped"
  exit 77
fi
unset STEWARD_TEST_DSN # the source is SQLite whatever variant runs this
HERE=$(cd "$(dirname "$0")" && pwd)
PGDB=t_migrate_store_$$
PG=$("$HERE/../pg/cluster.sh" createdb "$STEWARD_PG_DSN" "$PGDB") || { echo "cannot create a database" >&2; exit 1; }
trap 'cleanup; "$HERE/../pg/cluster.sh" dropdb "$STEWARD_PG_DSN" "$PGDB"' EXIT

init_data
start_server --set inventory_on_enroll=1
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA")
mkdir -p "$T/scep" "$T/mtls"
"${SIM[@]}" --scep "$URL/scep" --poll-interval 1 --api-key "$KEY" --state "$T/scep" --count 3 --seed 31 run \
  >"$T/run1.log" 2>&1 || fail "3 devices enroll over SCEP: $(tail -3 "$T/run1.log")"
"${SIM[@]}" --issue-from "$DATA" --state "$T/mtls" --count 5 --seed 32 --concurrency 2 run \
  >"$T/run2.log" 2>&1 || fail "5 devices enroll over mTLS: $(tail -3 "$T/run2.log")"
udids() { for f in "$1"/device-*/device.plist; do grep -A1 '<key>UDID</key>' "$f" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p'; done; }
ALL=$( (udids "$T/scep"; udids "$T/mtls") | sort)
expect_eq "8 enrolled devices" 8 "$(printf '%s\n' "$ALL" | grep -c .)"
DEVS=$(printf '"%s",' $ALL | sed 's/,$//')
enqueue() { # RequestType [extra JSON members] → prints the command UUID
  local r
  r=$(api POST /api/v1/commands -d "{\"devices\":[$DEVS],\"command\":{\"RequestType\":\"$1\"${2:-}}}")
  [ "$(status_of "$r")" = 200 ] || fail "enqueue $1: $r"
  body_of "$r" | sed -n 's/.*"command_uuid":"\([^"]*\)".*/\1/p'
}
# answered before the move: results and inventory
for t in DeviceInformation SecurityInfo ProfileList CertificateList InstalledApplicationList; do enqueue $t >/dev/null; done
"${SIM[@]}" --state "$T/scep" --count 3 connect >"$T/c1.log" 2>&1 || fail "scep devices answer"
"${SIM[@]}" --issue-from "$DATA" --state "$T/mtls" --count 5 connect >"$T/c2.log" 2>&1 || fail "mtls devices answer"
# waiting at the move: one NotNow'd, two never delivered
NOTNOW=$(enqueue SecurityInfo)
"${SIM[@]}" --issue-from "$DATA" --state "$T/mtls" --count 5 --notnow SecurityInfo connect >"$T/c3.log" 2>&1 || fail "NotNow round"
# a challenge left unused, and a large payload (binary-safe BLOBs)
r=$(api POST /api/v1/scep/challenges -d '{"created_for":"left for later"}')
expect_eq "an unused challenge" 201 "$(status_of "$r")"
WAIT1=$(enqueue DeviceInformation ',"Queries":["OSVersion","SerialNumber","'"$(head -c 6000 /dev/urandom | base64 -w0 | tr -d '+/=' | head -c 4000)"'"]')
WAIT2=$(enqueue ProfileList)
stop_server

SRC=$DATA/steward.db
sq() { sqlite3 -batch -noheader "$SRC" "$1"; }
ps() { psql -X -A -t -q "$PG" -c "$1"; }
before_results=$(sq "SELECT count(*) FROM results")
before_max=$(sq "SELECT max(id) FROM results")
[ "$before_results" -ge 40 ] && pass || fail "too few results before the move ($before_results)"
expect_eq "certificates in the source" 3 "$(sq "SELECT count(*) FROM certs WHERE der IS NOT NULL")"

# --- the move
out=$("$BIN/steward" migrate-store --from "sqlite:$SRC" --to "$PG" 2>&1) || fail "migrate-store: $out"
expect_contains "migrate-store reports what it copied" "copied" "$out"
expect_contains "the queue is among the tables" "queue" "$out"
out=$("$BIN/steward" migrate-store --from "sqlite:$SRC" --to "$PG" 2>&1) && rc=0 || rc=$?
expect_eq "a second run into a non-empty target is refused" 3 "$rc"
expect_contains "the refusal says why" "not empty" "$out"
out=$("$BIN/steward" migrate-store --from "sqlite:$SRC" --to "$PG" --force 2>&1) || fail "migrate-store --force: $out"
expect_contains "--force says it replaced the contents" "replaced" "$out"
out=$("$BIN/steward" migrate-store --from "sqlite:$SRC" --to "sqlite:$T/other.db" 2>&1) && rc=0 || rc=$?
expect_eq "a SQLite target is refused" 1 "$rc"
expect_contains "the refusal names the kind of target" "PostgreSQL" "$out"

# --- every table, row for row and byte for byte
# dump_sqlite / dump_pg TABLE: every row as text, NULL as ~, blobs as hex, sorted
dump_sqlite() {
  local cols expr
  cols=$(sq "SELECT name FROM pragma_table_info('$1') ORDER BY cid")
  expr=$(for c in $cols; do printf "CASE WHEN \"%s\" IS NULL THEN '~' WHEN typeof(\"%s\") = 'blob' THEN lower(hex(\"%s\")) ELSE CAST(\"%s\" AS TEXT) END || '|' || " "$c" "$c" "$c" "$c"; done)
  sq "SELECT $expr'' FROM \"$1\"" | LC_ALL=C sort
}
dump_pg() {
  local cols expr c bytea
  cols=$(sq "SELECT name FROM pragma_table_info('$1') ORDER BY cid")
  # one query for the table's bytea columns (not one per column: many tables)
  bytea=" $(ps "SELECT string_agg(column_name, ' ') FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '$1' AND data_type = 'bytea'") "
  expr=$(for c in $cols; do
    case $bytea in
      *" $c "*) printf "COALESCE(encode(\"%s\", 'hex'), '~') || '|' || " "$c" ;;
      *) printf "COALESCE(CAST(\"%s\" AS TEXT), '~') || '|' || " "$c" ;;
    esac
  done)
  ps "SELECT $expr'' FROM \"$1\"" | LC_ALL=C sort
}
tables=$(sq "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%' AND name <> 'schema_version' ORDER BY name")
expect_eq "every SQLite table exists in PostgreSQL" "" \
  "$(for t in $tables; do [ "$(ps "SELECT to_regclass('\"$t\"') IS NOT NULL")" = t ] || echo "$t"; done)"
rows=0; differ=
for t in $tables; do
  n=$(sq "SELECT count(*) FROM \"$t\"")
  rows=$((rows + n))
  [ "$n" = "$(ps "SELECT count(*) FROM \"$t\"")" ] || differ="$differ $t(count)"
  [ "$(dump_sqlite "$t" | md5sum)" = "$(dump_pg "$t" | md5sum)" ] || differ="$differ $t(values)"
done
expect_eq "tables whose rows differ after the move" "" "$differ"
echo "compared $(echo $tables | wc -w) tables, $rows rows"
bytes_sqlite=$(sq "SELECT sum(length(payload)) FROM commands")
expect_eq "command payload bytes" "$bytes_sqlite" "$(ps "SELECT sum(length(payload)) FROM commands")"
expect_eq "result bytes" "$(sq "SELECT sum(length(raw)) FROM results")" "$(ps "SELECT sum(length(raw)) FROM results")"
expect_eq "certificate DER bytes" "$(sq "SELECT lower(hex(der)) FROM certs WHERE der IS NOT NULL ORDER BY serial" | md5sum)" \
  "$(ps "SELECT encode(der, 'hex') FROM certs WHERE der IS NOT NULL ORDER BY serial" | md5sum)"
expect_eq "queue order (rowid) kept" "$(sq "SELECT enrollment_id || ' ' || command_uuid FROM queue ORDER BY rowid")" \
  "$(ps "SELECT enrollment_id || ' ' || command_uuid FROM queue ORDER BY rowid")"

# --- steward migrate: reports versions, applies only what is missing
out=$("$BIN/steward" migrate --data-dir "$DATA" --set "database=$PG" 2>&1) || fail "steward migrate: $out"
expect_contains "migrate names the backend" "database: postgres" "$out"
expect_contains "the moved database needs nothing" "already up to date" "$out"
out=$("$BIN/steward" migrate --data-dir "$DATA" --set "database=sqlite:$T/fresh.db" 2>&1) || fail "steward migrate (fresh): $out"
expect_contains "a fresh database is migrated from version 0" "migrated from version 0 to" "$out"
out=$("$BIN/steward" migrate --data-dir "$DATA" --set "database=postgres://steward@127.0.0.1:1/none" 2>&1) && rc=0 || rc=$?
expect_eq "migrate against an unreachable server fails" 1 "$rc"
expect_contains "and says why" "cannot migrate the database" "$out"

# --- steward on PostgreSQL: same data dir, the database switched
start_server --set "database=$PG"
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA")
r=$(api GET "/api/v1/devices?limit=100")
expect_eq "the API key still works" 200 "$(status_of "$r")"
for u in $ALL; do expect_contains "device $u listed" "$u" "$(body_of "$r")"; done
"${SIM[@]}" --state "$T/scep" --count 3 --json connect >"$T/after1.json" 2>"$T/after1.err" || fail "scep devices on PostgreSQL: $(tail -3 "$T/after1.err")"
"${SIM[@]}" --issue-from "$DATA" --state "$T/mtls" --count 5 --json connect >"$T/after2.json" 2>"$T/after2.err" || fail "mtls devices on PostgreSQL: $(tail -3 "$T/after2.err")"
got=$(cat "$T/after1.json" "$T/after2.json" | jq -r '.commands[]?.command_uuid' | sort | uniq -c | awk '{print $2 "x" $1}' | sort | tr '\n' ' ')
want=$(printf '%s\n' "${NOTNOW}x8" "${WAIT1}x8" "${WAIT2}x8" | sort | tr '\n' ' ')
expect_eq "devices get exactly the commands that were waiting" "$want" "$got"
expect_eq "nothing left waiting" 0 "$(ps "SELECT count(*) FROM queue WHERE active = 1")"
new=$(ps "SELECT count(*) FROM results WHERE id > $before_max")
expect_eq "new results get ids after the copied ones" "$(( $(ps "SELECT count(*) FROM results") - before_results ))" "$new"
if [ "$new" -ge 24 ]; then pass; else fail "only $new results stored on PostgreSQL"; fi
expect_eq "result ids stay unique" "$(ps "SELECT count(*) FROM results")" "$(ps "SELECT count(DISTINCT id) FROM results")"
finish
