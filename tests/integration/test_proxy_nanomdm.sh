#!/usr/bin/env bash
# Behind a TLS-terminating proxy: the plain-HTTP listener takes device
# identity from Mdm-Signature, or from an RFC 9440 Client-Cert header sent by
# a trusted proxy address. And NanoMDM's enqueue route answers as NanoMDM's
# OpenAPI document says (200, 207, 500, 401; the same JSON shape).
. "$(dirname "$0")/lib.sh"
init_data --set listen_http=127.0.0.1:0 --set trusted_proxies=127.0.0.1
start_server
issue_cert dev1
issue_cert dev2
A=00008030-001A2D3E0C41802E
B=00008110-000E58A93C80401E

http_put() { # path bodyfile [curl args]
  local p=$1 f=$2; shift 2
  curl -sS -X PUT -H 'Content-Type: application/x-apple-aspen-mdm-checkin' --data-binary "@$f" -w '\nHTTP %{http_code}' "$HTTP_URL$p" "$@"
}
# device A over plain HTTP with Mdm-Signature
checkin_plist Authenticate $A >"$T/authA.plist"
checkin_plist TokenUpdate $A "$(token_update_extra)" >"$T/tokA.plist"
r=$(http_put /mdm/checkin "$T/authA.plist" -H "Mdm-Signature: $(mdm_signature dev1 "$T/authA.plist")")
expect_eq "Authenticate over HTTP with signature" 200 "$(status_of "$r")"
r=$(http_put /mdm/checkin "$T/tokA.plist" -H "Mdm-Signature: $(mdm_signature dev1 "$T/tokA.plist")")
expect_eq "TokenUpdate over HTTP with signature" 200 "$(status_of "$r")"
r=$(http_put /mdm/checkin "$T/tokA.plist")
expect_eq "no signature over plain HTTP" 403 "$(status_of "$r")"

# device B through a trusted proxy's Client-Cert header
derB=$(openssl x509 -in "$T/certs/dev2/cert.pem" -outform DER | base64 -w0)
checkin_plist Authenticate $B >"$T/authB.plist"
checkin_plist TokenUpdate $B "$(token_update_extra)" >"$T/tokB.plist"
r=$(http_put /mdm/checkin "$T/authB.plist" -H "Client-Cert: :$derB:"); expect_eq "Authenticate via Client-Cert" 200 "$(status_of "$r")"
r=$(http_put /mdm/checkin "$T/tokB.plist" -H "Client-Cert: :$derB:"); expect_eq "TokenUpdate via Client-Cert" 200 "$(status_of "$r")"
r=$(http_put /mdm/checkin "$T/tokB.plist" -H "Client-Cert: not-rfc9440"); expect_eq "malformed Client-Cert" 403 "$(status_of "$r")"
derA=$(openssl x509 -in "$T/certs/dev1/cert.pem" -outform DER | base64 -w0)
r=$(http_put /mdm/checkin "$T/tokB.plist" -H "Client-Cert: :$derA:"); expect_eq "Client-Cert of another device" 403 "$(status_of "$r")"

# NanoMDM's enqueue route
cat >"$T/cmd.plist" <<'P'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Command</key>
  <dict>
    <key>RequestType</key>
    <string>ProfileList</string>
  </dict>
  <key>CommandUUID</key>
  <string>fedd659e-fc3c-4e35-8bb1-c8f51ae542a5</string>
</dict>
</plist>
P
nano() { curl -sS -u "nanomdm:$KEY" -X PUT --data-binary "@$1" -w '\nHTTP %{http_code}' "$HTTP_URL$2"; }
r=$(nano "$T/cmd.plist" "/v1/enqueue/$A,$B?nopush=1")
expect_eq "NanoMDM enqueue to two" 200 "$(status_of "$r")"
expect_contains "command_uuid echoed" '"command_uuid":"fedd659e-fc3c-4e35-8bb1-c8f51ae542a5"' "$(body_of "$r")"
expect_contains "request_type" '"request_type":"ProfileList"' "$(body_of "$r")"
expect_contains "no_push" '"no_push":true' "$(body_of "$r")"
sed 's/fedd659e-fc3c-4e35-8bb1-c8f51ae542a5/0c7b1c1e-2222-4a4a-9999-000000000002/' "$T/cmd.plist" >"$T/cmd2.plist"
r=$(nano "$T/cmd2.plist" "/v1/enqueue/$A,00008030-0000000000000000?nopush=1")
expect_eq "NanoMDM some failed" 207 "$(status_of "$r")"
expect_contains "per-id error" '"command_error"' "$(body_of "$r")"
sed 's/fedd659e-fc3c-4e35-8bb1-c8f51ae542a5/0c7b1c1e-2222-4a4a-9999-000000000003/' "$T/cmd.plist" >"$T/cmd3.plist"
r=$(nano "$T/cmd3.plist" "/v1/enqueue/00008030-0000000000000000?nopush=1")
expect_eq "NanoMDM all failed" 500 "$(status_of "$r")"
printf 'not a plist' >"$T/junk"
r=$(nano "$T/junk" "/v1/enqueue/$A"); expect_eq "NanoMDM unreadable body" 500 "$(status_of "$r")"

# the command reached both devices, once each
connect_plist $A Idle >"$T/idleA.plist"
r=$(http_put /mdm/connect "$T/idleA.plist" -H "Mdm-Signature: $(mdm_signature dev1 "$T/idleA.plist")")
expect_contains "A gets the NanoMDM command" "fedd659e-fc3c-4e35-8bb1-c8f51ae542a5" "$(body_of "$r")"
connect_plist $B Idle >"$T/idleB.plist"
r=$(http_put /mdm/connect "$T/idleB.plist" -H "Client-Cert: :$derB:")
expect_contains "B gets the NanoMDM command" "fedd659e-fc3c-4e35-8bb1-c8f51ae542a5" "$(body_of "$r")"
finish
