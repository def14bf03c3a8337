#!/usr/bin/env bash
# tests/pg/run.sh NAME COMMAND…: runs a test (a unit test program or an
# integration script) against PostgreSQL: a fresh database NAME on the server
# STEWARD_PG_DSN names (scripts/test starts one with tests/pg/cluster.sh),
# passed to the test as STEWARD_TEST_DSN, dropped afterwards. Exits 77
# (CTest's skip) when no server was started.
set -uo pipefail
if [ -z "${STEWARD_PG_DSN:-}" ]; then
  echo "STEWARD_PG_DSN is not set: no PostgreSQL server for this run; skipped"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
name=$1; shift
db=$(echo "t_$name" | tr -c 'a-zA-Z0-9_\n' '_')
dsn=$("$here/cluster.sh" createdb "$STEWARD_PG_DSN" "$db") || { echo "cannot create database $db" >&2; exit 1; }
STEWARD_TEST_DSN=$dsn "$@"
rc=$?
"$here/cluster.sh" dropdb "$STEWARD_PG_DSN" "$db"
exit $rc
