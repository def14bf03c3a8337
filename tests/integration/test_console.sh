#!/usr/bin/env bash
# The web console end to end in headless Chromium (tests/console/console.test.js
# with playwright-core from npm): sign-in, dashboard, a steward-devsim device
# found, queried and locked, a wipe's typed confirmation, a viewer kept from
# sending commands, markup in a device name rendered inert, the phone layout;
# profiles and groups (assignment and the devsim device's convergence; rules
# edited on the group's page bring a second device in; a policy scoped to the group),
# compliance (a policy from the editor finds the device non-compliant; the
# dashboard's figure), clear passcode, mark lost and the typed wipe, a
# viewer's disabled actions and refused calls, markup in profile and policy
# names rendered inert.
# Skips (exit 77) when chromium or playwright-core is not available.
. "$(dirname "$0")/lib.sh"
SRC=${STEWARD_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ] || ! command -v node >/dev/null; then
  echo "SKIP: chromium or node not installed (scripts/deps --test installs them)"; exit 77
fi
if [ ! -d "$SRC/tests/console/node_modules/playwright-core" ]; then
  (cd "$SRC/tests/console" && npm install --no-audit --no-fund >/dev/null 2>&1) ||
    { echo "SKIP: playwright-core not installed (cd tests/console && npm install)"; exit 77; }
fi
init_data
start_server
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --state "$T/sim" --count 2 enroll >"$T/sim.log" 2>&1 || fail "devsim enroll"
DEVICE_ID=$(grep -A1 '<key>UDID</key>' "$T/sim/device-00000/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
OTHER_ID=$(grep -A1 '<key>UDID</key>' "$T/sim/device-00001/device.plist" | sed -n 's/.*<string>\(.*\)<\/string>.*/\1/p')
# a device whose name is markup
XSS=0000BAD0-0000-0000-0000-00000000C0DE
issue_cert xss
checkin_plist Authenticate $XSS '	<key>DeviceName</key>
	<string>&lt;img src=x onerror="window.__xss=1"&gt;&lt;script&gt;window.__xss=2&lt;/script&gt;</string>
	<key>SerialNumber</key>
	<string>XSS0001</string>' >"$T/xss-auth.plist"
checkin_plist TokenUpdate $XSS "$(token_update_extra)" >"$T/xss-tok.plist"
device_put /mdm/checkin xss "$T/xss-auth.plist" >/dev/null
device_put /mdm/checkin xss "$T/xss-tok.plist" >/dev/null
printf 'admin pass 12' >"$T/pw"
"$BIN/steward" admin create --data-dir "$DATA" --name root --role admin --password-file "$T/pw" >/dev/null || fail "admin create"
r=$(api POST /api/v1/users -d '{"name":"ops","role":"operator","password":"operator pass 1"}'); expect_eq "operator user" 201 "$(status_of "$r")"
r=$(api POST /api/v1/users -d '{"name":"watcher","role":"viewer","password":"viewer pass 1"}'); expect_eq "viewer user" 201 "$(status_of "$r")"
# a devsim device without an UnlockToken (when the fleet has one): clear passcode stays off
NO_TOKEN=$(body_of "$(api GET '/api/v1/devices?limit=100')" | jq -r '[.devices[] | select(.has_unlock_token | not)][0].id // empty')
r=$(api GET /api/v1/stats)
expect_eq "no compliance figure before any policy" "null 0" "$(body_of "$r" | jq -r '"\(.noncompliant) \(.compliance.policies)"')"
# a signed profile for the console's upload (as Apple Configurator saves one)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/cfg.key" -out "$T/cfg.pem" -days 2 \
  -subj "/CN=Configurator Signer" 2>/dev/null
cat >"$T/imp.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.imported</string>
<key>PayloadUUID</key><string>6E3B7B52-0C51-4F4B-9C1E-7D3A0A9B1C11</string>
<key>PayloadDisplayName</key><string>Imported clip</string>
<key>PayloadContent</key><array><dict>
 <key>PayloadType</key><string>com.apple.webClip.managed</string><key>PayloadVersion</key><integer>1</integer>
 <key>PayloadIdentifier</key><string>com.example.imported.clip</string>
 <key>PayloadUUID</key><string>0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9</string>
 <key>URL</key><string>https://intranet.example.com</string><key>Label</key><string>Intranet</string>
</dict></array></dict></plist>
XML
openssl cms -sign -nodetach -binary -outform DER -in "$T/imp.xml" -signer "$T/cfg.pem" -inkey "$T/cfg.key" \
  -out "$T/imported.mobileconfig" || fail "sign a profile"
SHOTS=${SHOTS:-$BIN/console-shots}
mkdir -p "$SHOTS"
out=$(cd "$SRC/tests/console" && CONSOLE_URL=$URL SHOTS=$SHOTS DEVICE_ID=$DEVICE_ID OTHER_DEVICE_ID=$OTHER_ID XSS_DEVICE_ID=$XSS NO_TOKEN_DEVICE_ID=$NO_TOKEN IMPORT_FILE=$T/imported.mobileconfig CHROMIUM=$CHROMIUM \
  DEVSIM_CONNECT="'$BIN/steward-devsim' --url '$URL' --ca '$CA' --state '$T/sim' --count 1 connect >>'$T/sim.log' 2>&1" \
  timeout 240 node console.test.js 2>&1) && pass || fail "console test: $out"
echo "$out"
# the policy made (and then relaxed) in the console: counted, the device compliant again
r=$(api GET /api/v1/stats)
expect_eq "stats after the device became compliant" "0 0 1" \
  "$(body_of "$r" | jq -r '"\(.noncompliant) \(.compliance.noncompliant) \(.compliance.policies)"')"
echo "screenshots: $SHOTS"
finish
