#!/usr/bin/env bash
# tests/pg/cluster.sh: a throwaway PostgreSQL 15 cluster for the test suite,
# in a temp dir on a loopback port, owned by the `postgres` user (PostgreSQL
# refuses to run as root, and CI runs as root). Nothing depends on a system
# service. Used by scripts/test and by hand:
#   eval "$(tests/pg/cluster.sh start)"   # prints export STEWARD_PG_DSN=… STEWARD_PG_DIR=…
#   tests/pg/cluster.sh stop  DIR         # stops the cluster and removes DIR
#   tests/pg/cluster.sh pgctl DIR stop|start   # for outage tests
set -euo pipefail

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return 0; }; done
  return 1
}

as_owner() { # runs a command as the cluster's owner (postgres when we are root)
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

cmd=${1:-}
case $cmd in
  start)
    bin=$(pg_bin) || { echo "tests/pg/cluster.sh: PostgreSQL is not installed" >&2; exit 1; }
    dir=$(mktemp -d /tmp/steward-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    port=$(free_port)
    as_owner "$bin/initdb" -D "$dir/data" -U steward --auth=trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    # Small and fast: the suite's data is throwaway (fsync off: a commit's WAL
    # goes to the OS, as on a disk with a safe write cache), sockets in the
    # dir. synchronous_commit stays on, PostgreSQL's default and what a
    # deployment runs: off would make every commit wake the WAL writer, a
    # process switch per device report that cost bench/pg's deep queue
    # 40% of its rate on 2 cores.
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = on
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
CONF
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null ||
      { cat "$dir/server.log" >&2; exit 1; }
    echo "export STEWARD_PG_DIR=$dir"
    echo "export STEWARD_PG_DSN=postgres://steward@127.0.0.1:$port/postgres"
    ;;
  stop)
    dir=${2:?usage: cluster.sh stop DIR}
    bin=$(pg_bin)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  pgctl)
    dir=${2:?usage: cluster.sh pgctl DIR stop|start}
    bin=$(pg_bin)
    case ${3:-} in
      stop) as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
      start) as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null ;;
      *) echo "usage: cluster.sh pgctl DIR stop|start" >&2; exit 2 ;;
    esac
    ;;
  createdb) # createdb DSN NAME: a fresh database; prints its DSN
    dsn=${2:?}; name=${3:?}
    PGOPTIONS="-c client_min_messages=warning" psql -q -X -v ON_ERROR_STOP=1 "$dsn" -c "DROP DATABASE IF EXISTS \"$name\"" -c "CREATE DATABASE \"$name\"" >/dev/null
    echo "${dsn%/*}/$name"
    ;;
  dropdb)
    dsn=${2:?}; name=${3:?}
    psql -q -X "$dsn" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: cluster.sh start | stop DIR | pgctl DIR stop|start | createdb DSN NAME | dropdb DSN NAME" >&2
    exit 2
    ;;
esac
