# lib.sh: shared helpers for the integration tests. Each test sources this,
# calls start_server (a real steward on random loopback ports with a fresh
# temp data dir), drives it with curl, openssl, stewardctl and steward-devsim,
# and asserts what a user would see. Cleanup runs on exit.
set -euo pipefail

BIN=${STEWARD_BIN:?STEWARD_BIN must point at the build directory}
SHARED=${STEWARD_SHARED:-}
T=$(mktemp -d /tmp/steward-it.XXXXXX)
# Tests count exact queue contents, so the automatic inventory queries are off
# unless a test turns them on (start_server --set inventory_on_enroll=1 …).
export STEWARD_INVENTORY_ON_ENROLL=${STEWARD_INVENTORY_ON_ENROLL:-0}
export STEWARD_INVENTORY_REFRESH_INTERVAL=${STEWARD_INVENTORY_REFRESH_INTERVAL:-0}
DATA=$T/data
SERVER_PID=
FAILS=0
CHECKS=0

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { CHECKS=$((CHECKS + 1)); }

expect_eq() { # what, expected, actual
  if [ "$2" = "$3" ]; then pass; else fail "$1: expected '$2', got '$3'"; fi
}
expect_contains() { # what, needle, haystack
  case "$3" in *"$2"*) pass ;; *) fail "$1: expected to contain '$2', got '$(printf %s "$3" | head -c 400)'" ;; esac
}
expect_not_contains() {
  case "$3" in *"$2"*) fail "$1: must not contain '$2'" ;; *) pass ;; esac
}

# steward init once per test; extra args go to init (e.g. --set listen_http=127.0.0.1:0).
# With STEWARD_TEST_DSN (tests/pg/run.sh sets it) the data lives in that
# PostgreSQL database instead of SQLite: the same test, the other backend.
init_data() {
  local db=()
  [ -z "${STEWARD_TEST_DSN:-}" ] || db=(--set "database=$STEWARD_TEST_DSN")
  "$BIN/steward" init --data-dir "$DATA" --api-key-file "$T/admin.key" \
    --set listen_https=127.0.0.1:0 "${db[@]}" "$@" >"$T/init.log"
  KEY=$(cat "$T/admin.key")
  CA=$DATA/ca/ca.pem
  export STEWARD_API_KEY=$KEY STEWARD_CACERT=$CA
}

# Starts steward serve in the background and waits until it is listening.
start_server() {
  rm -f "$T/ready"
  "$BIN/steward" serve --data-dir "$DATA" --ready-file "$T/ready" "$@" >>"$T/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    [ -f "$T/ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.log" >&2; echo "steward exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -f "$T/ready" ] || { cat "$T/server.log" >&2; echo "steward did not start" >&2; exit 1; }
  HTTPS_PORT=$(sed -n 's/^https_port=//p' "$T/ready")
  HTTP_PORT=$(sed -n 's/^http_port=//p' "$T/ready")
  URL=https://localhost:$HTTPS_PORT
  HTTP_URL=http://127.0.0.1:$HTTP_PORT
  export STEWARD_URL=$URL
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
}

# Issues a device identity certificate: issue_cert NAME → $T/certs/NAME/{cert,key}.pem
issue_cert() {
  mkdir -p "$T/certs"
  "$BIN/steward" ca issue --data-dir "$DATA" --cn "$1" --out "$T/certs/$1" >/dev/null
}

# api METHOD PATH [curl args…]: prints body, then "HTTP <status>" on the last line.
api() {
  local m=$1 p=$2; shift 2
  curl -sS --cacert "$CA" -X "$m" -H "Authorization: Bearer $KEY" -w '\nHTTP %{http_code}' "$URL$p" "$@"
}
status_of() { printf '%s' "$1" | tail -n1 | sed 's/^HTTP //'; }
body_of() { printf '%s' "$1" | sed '$d'; }

# device_put PATH CERTNAME BODYFILE [curl args…]: a device request over mTLS.
device_put() {
  local p=$1 c=$2 f=$3; shift 3
  curl -sS --cacert "$CA" --cert "$T/certs/$c/cert.pem" --key "$T/certs/$c/key.pem" \
    -X PUT -H 'Content-Type: application/x-apple-aspen-mdm-checkin' --data-binary "@$f" \
    -w '\nHTTP %{http_code}' "$URL$p" "$@"
}

# mdm_signature CERTNAME BODYFILE: the Mdm-Signature header value a device sends.
mdm_signature() {
  openssl cms -sign -binary -outform DER -md sha256 -in "$2" \
    -signer "$T/certs/$1/cert.pem" -inkey "$T/certs/$1/key.pem" | base64 -w0
}

# checkin_plist TYPE UDID [extra xml] → prints a check-in plist like iOS sends.
checkin_plist() {
  local type=$1 udid=$2 extra=${3:-}
  cat <<P
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>MessageType</key>
	<string>$type</string>
	<key>Topic</key>
	<string>com.apple.mgmt.External.2c4a1e7f-9b43-4f0e-8d1e-5f2a3b6c7d8e</string>
	<key>UDID</key>
	<string>$udid</string>
$extra
</dict>
</plist>
P
}

token_update_extra() {
  cat <<'P'
	<key>Token</key>
	<data>
	q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=
	</data>
	<key>PushMagic</key>
	<string>6C1C3E4B-5D2A-4F8E-9B7A-0D1E2F3A4B5C</string>
	<key>UnlockToken</key>
	<data>
	VW5sb2NrVG9rZW5CeXRlcw==
	</data>
	<key>AwaitingConfiguration</key>
	<false/>
P
}

# connect_plist UDID STATUS [UUID] [extra]
connect_plist() {
  local udid=$1 st=$2 uuid=${3:-} extra=${4:-}
  printf '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n\t<key>UDID</key>\n\t<string>%s</string>\n\t<key>Status</key>\n\t<string>%s</string>\n' "$udid" "$st"
  [ -n "$uuid" ] && printf '\t<key>CommandUUID</key>\n\t<string>%s</string>\n' "$uuid"
  printf '%s\n</dict>\n</plist>\n' "$extra"
}

# enroll_mtls CERTNAME UDID: Authenticate + TokenUpdate over mutual TLS.
enroll_mtls() {
  checkin_plist Authenticate "$2" '	<key>SerialNumber</key>
	<string>F2LX'"${2: -6}"'</string>
	<key>OSVersion</key>
	<string>18.1</string>
	<key>BuildVersion</key>
	<string>22B83</string>
	<key>ProductName</key>
	<string>iPhone15,2</string>' >"$T/auth-$2.plist"
  checkin_plist TokenUpdate "$2" "$(token_update_extra)" >"$T/tok-$2.plist"
  local r
  r=$(device_put /mdm/checkin "$1" "$T/auth-$2.plist"); expect_eq "Authenticate $2" 200 "$(status_of "$r")"
  r=$(device_put /mdm/checkin "$1" "$T/tok-$2.plist"); expect_eq "TokenUpdate $2" 200 "$(status_of "$r")"
}

finish() {
  if [ "$FAILS" -gt 0 ]; then
    echo "---- server log ----" >&2; tail -n 60 "$T/server.log" >&2 || true
    echo "$(basename "$0"): $CHECKS passed, $FAILS failed"
    exit 1
  fi
  echo "$(basename "$0"): $CHECKS passed, 0 failed"
}

# Runs a certmonger script on a private D-Bus session with all certmonger
# state under $T/cm. The environment goes to dbus-run-session itself, so a
# daemon the bus activates (getcert asks for it by name) inherits it too;
# otherwise it falls back to ~/.config/certmonger, shared by every test
# running at the same time, where one test's CA nickname clashes with another's.
run_certmonger() {
  mkdir -p "$T/cm/req" "$T/cm/cas" "$T/cm/tmp" "$T/cm/local" "$T/cm/config"
  timeout 120 env HOME="$T/cm" XDG_CONFIG_HOME="$T/cm/config" \
    CERTMONGER_REQUESTS_DIR="$T/cm/req" CERTMONGER_CAS_DIR="$T/cm/cas" \
    CERTMONGER_TMPDIR="$T/cm/tmp" CERTMONGER_CONFIG_DIR="$T/cm" \
    CERTMONGER_LOCAL_CA_DIR="$T/cm/local" CERTMONGER_SYSTEM_LOCK_FILE="$T/cm/lock" \
    dbus-run-session -- bash "$1" >"$T/cm/out.log" 2>&1 || true
}
