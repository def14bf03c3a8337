#!/usr/bin/env bash
# Getting a push certificate: `steward push-cert csr` makes a key and a CSR;
# `steward push-cert sign-request` signs it with an MDM vendor key (made here
# with openssl, standing in for Apple's MDM CSR vendor certificate) into the
# base64 plist Apple's Push Certificates Portal takes. The test decodes it
# and checks each field as the portal would: the CSR, the chain starting with
# the vendor certificate, and a SHA-256 RSA signature of the CSR's DER by the
# vendor key. Bad inputs are refused with a message.
. "$(dirname "$0")/lib.sh"
S="$BIN/steward"
P=$T/p; mkdir -p "$P"

out=$("$S" push-cert csr --key-out "$P/push.key" --csr-out "$P/push.csr" --cn "Example Corp MDM" --email ops@example.com)
expect_contains "csr: says what to do next" "sign-request" "$out"
expect_eq "csr: key is private" 600 "$(stat -c %a "$P/push.key")"
openssl req -in "$P/push.csr" -noout -verify 2>&1 | grep -q 'verify OK' && pass || fail "csr: self-signature verifies"
expect_contains "csr: subject" "CN = Example Corp MDM" "$(openssl req -in "$P/push.csr" -noout -subject)"
openssl pkey -in "$P/push.key" -pubout >"$P/a.pub"; openssl req -in "$P/push.csr" -noout -pubkey >"$P/b.pub"
expect_eq "csr: key matches" "$(cat "$P/a.pub")" "$(cat "$P/b.pub")"

# a stand-in Apple chain and MDM vendor certificate
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/root.key" -out "$P/root.pem" -days 30 -subj "/CN=Test Apple Root CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$P/vendor.key" -out "$P/vendor.csr" -subj "/CN=MDM Vendor: Example" 2>/dev/null
openssl x509 -req -in "$P/vendor.csr" -CA "$P/root.pem" -CAkey "$P/root.key" -CAcreateserial -out "$P/vendor.pem" -days 30 2>/dev/null
cp "$P/root.pem" "$P/chain.pem"

out=$("$S" push-cert sign-request --csr "$P/push.csr" --vendor-cert "$P/vendor.pem" --vendor-key "$P/vendor.key" \
  --vendor-chain "$P/chain.pem" --out "$P/request.b64")
expect_contains "sign: says where to upload" "identity.apple.com" "$out"
base64 -d "$P/request.b64" >"$P/request.plist" && pass || fail "sign: output is base64"
field() { plistutil -i "$P/request.plist" -f xml 2>/dev/null | tr -d '\n\t' | sed -n "s|.*<key>$1</key><string>\([^<]*\)</string>.*|\1|p"; }
plistutil -i "$P/request.plist" -f xml >"$P/request.xml" 2>/dev/null
for k in PushCertRequestCSR PushCertCertificateChain PushCertSignature; do
  expect_contains "sign: has $k" "<key>$k</key>" "$(cat "$P/request.xml")"
done
field PushCertRequestCSR | base64 -d >"$P/csr.der"
expect_eq "sign: PushCertRequestCSR is the CSR's DER" "$(openssl req -in "$P/push.csr" -outform DER | sha256sum)" "$(sha256sum <"$P/csr.der")"
field PushCertSignature | base64 -d >"$P/sig.bin"
openssl x509 -in "$P/vendor.pem" -noout -pubkey >"$P/vendor.pub"
openssl dgst -sha256 -verify "$P/vendor.pub" -signature "$P/sig.bin" "$P/csr.der" | grep -q 'Verified OK' \
  && pass || fail "sign: signature is SHA-256 RSA of the CSR by the vendor key"
sed -n '/<key>PushCertCertificateChain<\/key>/,/<\/string>/p' "$P/request.xml" | sed 's/.*<string>//; s/<\/string>.*//; /<key>/d' >"$P/chain-out.pem"
expect_eq "sign: chain starts with the vendor certificate" "$(openssl x509 -in "$P/vendor.pem" -noout -fingerprint)" \
  "$(openssl x509 -in "$P/chain-out.pem" -noout -fingerprint)"
expect_eq "sign: chain has vendor + root" 2 "$(grep -c 'BEGIN CERTIFICATE' "$P/chain-out.pem")"

# refusals
openssl req -newkey rsa:2048 -nodes -keyout "$P/other.key" -out /dev/null -subj "/CN=x" 2>/dev/null
out=$("$S" push-cert sign-request --csr "$P/push.csr" --vendor-cert "$P/vendor.pem" --vendor-key "$P/other.key" \
  --vendor-chain "$P/chain.pem" --out "$P/x.b64" 2>&1) && fail "wrong vendor key must fail" || pass
expect_contains "wrong vendor key message" "does not match the vendor certificate" "$out"
out=$("$S" push-cert sign-request --csr "$P/vendor.pem" --vendor-cert "$P/vendor.pem" --vendor-key "$P/vendor.key" \
  --vendor-chain "$P/chain.pem" --out "$P/x.b64" 2>&1) && fail "not a CSR must fail" || pass
expect_contains "not a CSR message" "cannot read the CSR" "$out"
out=$("$S" push-cert sign-request --csr "$P/push.csr" --vendor-cert "$P/vendor.pem" --vendor-key "$P/vendor.key" \
  --vendor-chain "$P/push.key" --out "$P/x.b64" 2>&1) && fail "chain without certificates must fail" || pass
expect_contains "chain message" "vendor chain" "$out"
rc=0; "$S" push-cert sign-request --csr "$P/push.csr" >/dev/null 2>&1 || rc=$?; expect_eq "missing options → usage" 2 "$rc"
[ ! -e "$P/x.b64" ] && pass || fail "nothing written after refusals"
finish
