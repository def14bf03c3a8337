#!/usr/bin/env bash
# A real SCEP client against steward: Debian's certmonger (its daemon on a
# private D-Bus session, state in a temp dir) enrolls with a one-time
# challenge from the API; the issued certificate verifies against steward's
# CA and is recorded; the same challenge used again is rejected and nothing
# more is issued. Also GetCACaps/GetCACert and garbage PKIOperations.
. "$(dirname "$0")/lib.sh"
command -v certmonger >/dev/null && command -v dbus-run-session >/dev/null || {
  echo "SKIP: certmonger/dbus-run-session not installed (scripts/deps --test installs them)"; exit 0; }
init_data --set listen_http=127.0.0.1:0
start_server
SCEP=$HTTP_URL/scep

caps=$(curl -sS "$SCEP?operation=GetCACaps")
for c in AES POSTPKIOperation Renewal SHA-256 SHA-512 SCEPStandard; do expect_contains "GetCACaps $c" "$c" "$caps"; done
curl -sS -o "$T/ca.der" "$SCEP?operation=GetCACert"
expect_eq "GetCACert is the CA" "$(openssl x509 -in "$CA" -outform DER | sha256sum)" "$(sha256sum <"$T/ca.der")"
r=$(curl -sS -w '\nHTTP %{http_code}' -X POST -H 'Content-Type: application/x-pki-message' --data-binary 'garbage' "$SCEP?operation=PKIOperation")
expect_eq "garbage pkiMessage" 400 "$(status_of "$r")"
r=$(curl -sS -w '\nHTTP %{http_code}' "$SCEP?operation=PKIOperation&message=%%%")
expect_eq "bad base64 message" 400 "$(status_of "$r")"
r=$(curl -sS -w '\nHTTP %{http_code}' "$SCEP?operation=Nope"); expect_eq "unknown operation" 400 "$(status_of "$r")"

challenge() { api POST /api/v1/scep/challenges | sed -n 's/.*"challenge":"\([^"]*\)".*/\1/p'; }
CH=$(challenge)
[ -n "$CH" ] && pass || fail "no challenge from the API"

mkdir -p "$T/cm/req" "$T/cm/cas" "$T/cm/tmp"
cat >"$T/cm/run.sh" <<SH
export HOME=$T/cm CERTMONGER_REQUESTS_DIR=$T/cm/req CERTMONGER_CAS_DIR=$T/cm/cas CERTMONGER_TMPDIR=$T/cm/tmp CERTMONGER_CONFIG_DIR=$T/cm
certmonger -s -n >$T/cm/daemon.log 2>&1 &
CMPID=\$!
for i in \$(seq 1 50); do getcert list-cas -s >/dev/null 2>&1 && break; sleep 0.1; done
getcert add-scep-ca -s -c steward -u "$SCEP" -N "$CA"
getcert request -s -c steward -k $T/cm/a.key -f $T/cm/a.pem -L "$CH" -N CN=certmonger-a -w
getcert request -s -c steward -k $T/cm/b.key -f $T/cm/b.pem -L "$CH" -N CN=certmonger-b -w
getcert list -s
kill \$CMPID
SH
run_certmonger "$T/cm/run.sh"
openssl verify -CAfile "$CA" "$T/cm/a.pem" >/dev/null 2>&1 && pass || { cat "$T/cm/out.log"; fail "certmonger got no certificate that verifies"; }
subj=$(openssl x509 -in "$T/cm/a.pem" -noout -subject 2>/dev/null)
expect_contains "subject from the CSR" "certmonger-a" "$subj"
eku=$(openssl x509 -in "$T/cm/a.pem" -noout -ext extendedKeyUsage 2>/dev/null)
expect_contains "clientAuth EKU" "TLS Web Client Authentication" "$eku"
[ -f "$T/cm/b.pem" ] && fail "a replayed challenge got a certificate" || pass
r=$(api GET /api/v1/certs)
expect_contains "issued certificate recorded" '"total":1' "$(body_of "$r")"
grep -q 'fail_info=2' "$T/server.log" && pass || fail "no badRequest FAILURE logged for the replayed challenge"
finish
