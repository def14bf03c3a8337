#!/usr/bin/env bash
# SCEP with an RA against a real client: `steward ca ra` makes an RA
# certificate; GetCACert then answers CA + RA as a degenerate PKCS#7
# (application/x-x509-ca-ra-cert). Debian's certmonger, given the RA (-r) and
# the CA (-N), envelopes its request to the RA and verifies the RA-signed
# CertRep; the certificate it gets verifies against steward's CA.
. "$(dirname "$0")/lib.sh"
command -v certmonger >/dev/null && command -v dbus-run-session >/dev/null || {
  echo "SKIP: certmonger/dbus-run-session not installed (scripts/deps --test installs them)"; exit 0; }
init_data --set listen_http=127.0.0.1:0
"$BIN/steward" ca ra --data-dir "$DATA" >"$T/ra.log" 2>&1 || { cat "$T/ra.log"; fail "steward ca ra"; }
expect_eq "RA key is 0600" 600 "$(stat -c %a "$DATA/ca/ra.key")"
expect_contains "RA certificate issued by the CA" ": OK" "$(openssl verify -CAfile "$CA" "$DATA/ca/ra.pem" 2>&1)"
start_server
SCEP=$HTTP_URL/scep
curl -sS -D "$T/h" -o "$T/cacert.p7" "$SCEP?operation=GetCACert"
expect_contains "GetCACert content type with an RA" "application/x-x509-ca-ra-cert" "$(cat "$T/h")"
openssl pkcs7 -inform DER -in "$T/cacert.p7" -print_certs >"$T/cacert.pem"
expect_eq "CA and RA in GetCACert" 2 "$(grep -c 'BEGIN CERTIFICATE' "$T/cacert.pem")"

CH=$(api POST /api/v1/scep/challenges | sed -n 's/.*"challenge":"\([^"]*\)".*/\1/p')
mkdir -p "$T/cm/req" "$T/cm/cas" "$T/cm/tmp"
cat >"$T/cm/run.sh" <<SH
export HOME=$T/cm CERTMONGER_REQUESTS_DIR=$T/cm/req CERTMONGER_CAS_DIR=$T/cm/cas CERTMONGER_TMPDIR=$T/cm/tmp CERTMONGER_CONFIG_DIR=$T/cm
certmonger -s -n >$T/cm/daemon.log 2>&1 &
CMPID=\$!
for i in \$(seq 1 50); do getcert list-cas -s >/dev/null 2>&1 && break; sleep 0.1; done
getcert add-scep-ca -s -c steward -u "$SCEP" -r "$DATA/ca/ra.pem" -N "$CA"
getcert request -s -c steward -k $T/cm/a.key -f $T/cm/a.pem -L "$CH" -N CN=certmonger-ra -w
getcert list -s
kill \$CMPID
SH
run_certmonger "$T/cm/run.sh"
openssl verify -CAfile "$CA" "$T/cm/a.pem" >/dev/null 2>&1 && pass || { cat "$T/cm/out.log"; fail "certmonger got no certificate through the RA"; }
expect_contains "subject from the CSR" "certmonger-ra" "$(openssl x509 -in "$T/cm/a.pem" -noout -subject 2>/dev/null)"
grep -q 'msg=scep .*status=0' "$T/server.log" && pass || fail "a SUCCESS CertRep logged"
finish
