#!/usr/bin/env bash
# steward init and configuration: the files and their modes, the admin key
# stored hashed, a second init refused, the documented config file (every
# option also in docs/configuration.md), environment and --set overrides,
# clear errors for bad values, and `steward ca issue`.
. "$(dirname "$0")/lib.sh"
init_data --hostname mdm.example.test
mode() { stat -c %a "$1"; }
expect_eq "CA key 0600" 600 "$(mode "$DATA/ca/ca.key")"
expect_eq "server key 0600" 600 "$(mode "$DATA/tls/server.key")"
expect_eq "config 0600" 600 "$(mode "$DATA/steward.conf")"
expect_eq "data dir 0700" 700 "$(mode "$DATA")"
openssl verify -CAfile "$DATA/ca/ca.pem" "$DATA/tls/server.pem" >/dev/null 2>&1 && pass || fail "server cert does not chain to the CA"
san=$(openssl x509 -in "$DATA/tls/server.pem" -noout -ext subjectAltName 2>/dev/null)
expect_contains "server cert names the host" "DNS:mdm.example.test" "$san"
keytype=$(openssl x509 -in "$DATA/tls/server.pem" -noout -text | grep 'Public Key Algorithm')
expect_contains "ECDSA server key" "id-ecPublicKey" "$keytype"
grep -q "$KEY" "$DATA/steward.db" && fail "API key stored in clear" || pass
set +e
out=$("$BIN/steward" init --data-dir "$DATA" 2>&1); rc=$?
set -e
expect_eq "second init refused" 1 "$rc"
expect_contains "says why" "already" "$out"

# every option in the written file is documented, with its documentation line
for opt in $(sed -n 's/^\([a-z_]*\) = .*/\1/p' "$DATA/steward.conf"); do
  grep -q "\`$opt\`" "$STEWARD_SRC/docs/configuration.md" && pass || fail "option $opt missing from docs/configuration.md"
done
expect_contains "hostname set by init" "hostname = mdm.example.test" "$(cat "$DATA/steward.conf")"

# overrides: env beats the file, --set beats env
STEWARD_LISTEN_HTTP=127.0.0.1:0 start_server --set io_threads=1
[ "$HTTP_PORT" -gt 0 ] && pass || fail "STEWARD_LISTEN_HTTP did not enable the HTTP listener"
r=$(curl -sS "$HTTP_URL/healthz"); expect_contains "plain HTTP serves" "ok" "$r"
stop_server
set +e
out=$("$BIN/steward" serve --data-dir "$DATA" --set workers=lots 2>&1); rc=$?
expect_eq "bad value refused" 1 "$rc"
expect_contains "names the option" "workers" "$out"
out=$("$BIN/steward" serve --data-dir "$DATA" --set no_such_option=1 2>&1); rc=$?
expect_eq "unknown option refused" 1 "$rc"
expect_contains "names it" "no_such_option" "$out"
out=$(STEWARD_READ_TIMEOUT=0 "$BIN/steward" serve --data-dir "$DATA" 2>&1); rc=$?
expect_eq "out-of-range env value refused" 1 "$rc"
set -e

# ca issue: a client certificate from the CA
out=$("$BIN/steward" ca issue --data-dir "$DATA" --cn device-1 --out "$T/dev1" --key-type ec)
expect_contains "prints the fingerprint" "sha256:" "$out"
openssl verify -CAfile "$DATA/ca/ca.pem" "$T/dev1/cert.pem" >/dev/null 2>&1 && pass || fail "issued cert does not chain"
eku=$(openssl x509 -in "$T/dev1/cert.pem" -noout -ext extendedKeyUsage 2>/dev/null)
expect_contains "client auth EKU" "TLS Web Client Authentication" "$eku"
expect_eq "device key 0600" 600 "$(mode "$T/dev1/key.pem")"
finish
