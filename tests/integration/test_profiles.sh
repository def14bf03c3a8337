#!/usr/bin/env bash
# Configuration profiles end to end: a Wi-Fi + restrictions profile built
# from JSON (its password makes it encrypted per device), downloaded signed
# (openssl cms -verify, plistutil) without the secret; assigned to a group,
# a steward-devsim fleet (SCEP identities) converges: the profile installed,
# decrypted by each device and reported in ProfileList; no duplicate
# commands; a membership change removes it, a new version reinstalls it;
# supervised-only payloads are held back from unsupervised devices; a rule
# group over a custom attribute; import of signed and binary profiles; bad
# input refused with the key path; deleting a profile removes it from devices
# while profiles steward did not install stay; every supported payload type
# (profiles_payloads.jsonl) built, downloaded and checked with openssl and plistutil.
. "$(dirname "$0")/lib.sh"
init_data
start_server --set inventory_on_enroll=1 --set profiles_converge_interval=0
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --scep "$URL/scep" --poll-interval 1
     --api-key "$KEY" --state "$T/fleet" --seed profiles-fleet)
N=4
mkdir -p "$T/fleet"
"${SIM[@]}" --count $N --concurrency 2 run >"$T/sim1.log" 2>&1 || { cat "$T/sim1.log"; fail "fleet run"; }
ids=$(body_of "$(api GET '/api/v1/devices?limit=100')" | jq -r '.devices[].id' | sort)
expect_eq "fleet enrolled" $N "$(printf '%s\n' "$ids" | grep -c .)"
set -- $ids; D1=$1; D2=$2; D3=$3; D4=$4
connect() { "${SIM[@]}" --count $N --concurrency 2 connect >"$T/connect.log" 2>&1 || { cat "$T/connect.log"; fail "fleet connect"; }; }
waiting() { # device, request type → how many such commands wait
  body_of "$(api GET "/api/v1/devices/$1/commands?limit=200")" |
    jq --arg t "$2" '[.commands[] | select(.request_type == $t and (.status == "Pending" or .status == "NotNow"))] | length'
}
state_of() { # profile, device → state
  body_of "$(api GET "/api/v1/profiles/$1/status")" | jq -r --arg d "$2" '[.devices[] | select(.device == $d)][0].state // "none"'
}
profile_list() { # queue ProfileList on every device, let them answer
  local devs; devs=$(printf '"%s",' $ids | sed 's/,$//')
  api POST /api/v1/commands -d "{\"devices\":[$devs],\"command\":{\"RequestType\":\"ProfileList\"}}" >/dev/null
  connect
}
reported() { # device → identifiers it reported
  body_of "$(api GET "/api/v1/devices/$1/profiles")" | jq -r '.reported[].identifier' | sort | tr '\n' ' '
}

# --- 1. build: Wi-Fi (WPA2 with a password) + restrictions
cat >"$T/corp.json" <<'JSON'
{"identifier": "com.example.corp", "display_name": "Corporate", "organization": "Example",
 "removal_disallowed": true,
 "payloads": [
  {"PayloadType": "com.apple.wifi.managed", "SSID_STR": "corp", "EncryptionType": "WPA2",
   "Password": "s3cret-wifi-pass", "AutoJoin": true},
  {"PayloadType": "com.apple.applicationaccess", "allowCamera": false, "allowAccountModification": false}]}
JSON
r=$(api POST /api/v1/profiles --data-binary "@$T/corp.json")
expect_eq "build profile" 201 "$(status_of "$r")"
b=$(body_of "$r")
expect_eq "version 1" 1 "$(printf '%s' "$b" | jq .version)"
expect_eq "holds secrets" true "$(printf '%s' "$b" | jq .has_secrets)"
expect_eq "payload types" '["com.apple.wifi.managed","com.apple.applicationaccess"]' "$(printf '%s' "$b" | jq -c .payload_types)"
expect_contains "supervised-only key flagged" "allowAccountModification: applies to supervised devices only" "$(printf '%s' "$b" | jq -r '.flags[]')"
r=$(api GET /api/v1/profiles/com.example.corp)
expect_eq "show profile" 200 "$(status_of "$r")"
expect_not_contains "password never returned" "s3cret-wifi-pass" "$r"
expect_eq "SSID shown" corp "$(body_of "$r" | jq -r '.content.PayloadContent[0].SSID_STR')"
grep -q "s3cret-wifi-pass" "$T/server.log" && fail "password logged" || pass

# download: CMS-signed by the server, plist inside, no password
curl -sS --cacert "$CA" -H "Authorization: Bearer $KEY" -o "$T/corp.mobileconfig" \
  -D "$T/corp.headers" "$URL/api/v1/profiles/com.example.corp/mobileconfig"
expect_contains "aspen content type" "application/x-apple-aspen-config" "$(cat "$T/corp.headers")"
openssl cms -verify -purpose any -inform DER -in "$T/corp.mobileconfig" -CAfile "$CA" -out "$T/corp.plist" 2>"$T/verify.log" || true
expect_contains "openssl cms -verify" "Verification successful" "$(cat "$T/verify.log")"
plistutil -i "$T/corp.plist" -o "$T/corp.xml" -f xml 2>/dev/null || plistutil -i "$T/corp.plist" -o "$T/corp.xml"
expect_contains "plistutil reads it" "<string>com.example.corp</string>" "$(cat "$T/corp.xml")"
expect_not_contains "no password in the download" "s3cret-wifi-pass" "$(cat "$T/corp.xml")"

# --- 2. a group with two static members; assignment converges
r=$(api POST /api/v1/groups -d '{"name":"office","description":"HQ"}')
expect_eq "create group" 201 "$(status_of "$r")"
r=$(api POST /api/v1/groups/office/members -d "{\"devices\":[\"$D1\",\"$D2\"]}")
expect_eq "add members" 200 "$(status_of "$r")"
r=$(api POST /api/v1/groups/office/profiles -d '{"profile":"com.example.corp"}')
expect_eq "assign" 200 "$(status_of "$r")"
expect_eq "two installs queued" 2 "$(body_of "$r" | jq .convergence.installs)"
r=$(api POST /api/v1/groups/office/profiles -d '{"profile":"com.example.corp"}')
expect_eq "assigning again queues nothing" 0 "$(body_of "$r" | jq .convergence.installs)"
expect_eq "one InstallProfile waits on D1" 1 "$(waiting "$D1" InstallProfile)"
expect_eq "none on D3" 0 "$(waiting "$D3" InstallProfile)"
expect_eq "D1 installing" installing "$(state_of com.example.corp "$D1")"
connect
expect_eq "D1 installed" installed "$(state_of com.example.corp "$D1")"
expect_eq "D2 installed" installed "$(state_of com.example.corp "$D2")"
expect_eq "D1 acknowledged it (decrypted)" 0 "$(waiting "$D1" InstallProfile)"
profile_list
expect_contains "D1 reports it in ProfileList" "com.example.corp" "$(reported "$D1")"
expect_not_contains "D3 does not have it" "com.example.corp" "$(reported "$D3")"
expect_eq "still installed after ProfileList" installed "$(state_of com.example.corp "$D1")"
expect_eq "nothing more queued" 0 "$(waiting "$D1" InstallProfile)"
d1dir=$(grep -l "$D1" "$T"/fleet/device-*/device.plist | head -1 | xargs dirname)
expect_contains "the device opened the encrypted content" "com.apple.wifi.managed" "$(cat "$d1dir/device.plist")"
r=$(api GET "/api/v1/devices/$D1/profiles")
expect_eq "device view: desired vs installed" "installed 1" "$(body_of "$r" | jq -r '.profiles[] | select(.profile=="com.example.corp") | "\(.state) \(.installed_version)"')"

# --- 3. membership change removes it (and only it)
r=$(api DELETE "/api/v1/groups/office/members/$D2")
expect_eq "remove member" 200 "$(status_of "$r")"
expect_eq "one removal" 1 "$(body_of "$r" | jq .convergence.removes)"
expect_eq "RemoveProfile waits on D2" 1 "$(waiting "$D2" RemoveProfile)"
connect
profile_list
expect_not_contains "D2 no longer has it" "com.example.corp" "$(reported "$D2")"
expect_eq "D2 state gone" none "$(state_of com.example.corp "$D2")"
expect_eq "D2 keeps its enrollment profile" 1 "$(body_of "$(api GET "/api/v1/devices/$D2/profiles")" | jq '[.reported[] | select(.steward == false)] | length >= 1' | grep -c true)"

# --- 4. a new version replaces the old one
sed 's/"SSID_STR": "corp"/"SSID_STR": "corp-5g"/' "$T/corp.json" >"$T/corp2.json"
r=$(api POST /api/v1/profiles --data-binary "@$T/corp2.json")
expect_eq "version 2" 2 "$(body_of "$r" | jq .version)"
expect_eq "reinstall queued for D1 only" 1 "$(body_of "$r" | jq .convergence.installs)"
connect
profile_list
expect_eq "D1 at version 2" "installed 2" "$(body_of "$(api GET "/api/v1/devices/$D1/profiles")" | jq -r '.profiles[] | select(.profile=="com.example.corp") | "\(.state) \(.installed_version)"')"
v2uuid=$(body_of "$(api GET /api/v1/profiles/com.example.corp)" | jq -r .payload_uuid)
expect_contains "the device has version 2" "$v2uuid" "$(cat "$d1dir/device.plist")"

# --- 5. supervised gating: single app mode for everyone
r=$(api POST /api/v1/profiles -d '{"identifier":"com.example.kiosk","payloads":[{"PayloadType":"com.apple.app.lock","App":{"Identifier":"com.example.kiosk"}}]}')
expect_eq "kiosk profile" true "$(body_of "$r" | jq .supervised_only)"
api POST /api/v1/groups -d '{"name":"everyone","rules":{}}' >/dev/null
r=$(api POST /api/v1/groups/everyone/profiles -d '{"profile":"com.example.kiosk"}')
sup=$(body_of "$(api GET '/api/v1/devices?supervised=true&limit=100')" | jq '.devices | length')
unsup=$((N - sup))
expect_eq "installs for supervised devices" "$sup" "$(body_of "$r" | jq .convergence.installs)"
expect_eq "not applicable for the others" "$unsup" "$(body_of "$r" | jq .convergence.not_applicable)"
[ "$sup" -gt 0 ] && [ "$unsup" -gt 0 ] && pass || fail "fleet needs both supervised and not ($sup)"
connect
s=$(body_of "$(api GET /api/v1/profiles/com.example.kiosk/status)")
expect_eq "status summary" "$sup $unsup" "$(printf '%s' "$s" | jq -r '"\(.summary.installed // 0) \(.summary.not_applicable // 0)"')"

# --- 6. rule group over a custom attribute
api POST /api/v1/profiles -d '{"identifier":"com.example.mail","payloads":[{"PayloadType":"com.apple.mail.managed","EmailAccountType":"EmailTypeIMAP","IncomingMailServerAuthentication":"EmailAuthPassword","IncomingMailServerHostName":"imap.example.com","OutgoingMailServerAuthentication":"EmailAuthPassword","OutgoingMailServerHostName":"smtp.example.com"}]}' >/dev/null
api POST /api/v1/groups -d '{"name":"traveling","rules":{"attributes":{"dept":"travel"}},
  "enter_settings":[{"Item":"DataRoaming","Enabled":false},{"Item":"VoiceRoaming","Enabled":false}],
  "leave_settings":[{"Item":"DataRoaming","Enabled":true},{"Item":"VoiceRoaming","Enabled":true}]}' >/dev/null
d3dir=$(grep -l "$D3" "$T"/fleet/device-*/device.plist | head -1 | xargs dirname)
roaming() { grep -A1 "<key>$1RoamingEnabled</key>" "$d3dir/device.plist" | tail -1 | tr -d '\t /<>'; }
r=$(api POST /api/v1/groups/traveling/profiles -d '{"profile":"com.example.mail"}')
expect_eq "nobody travels yet" 0 "$(body_of "$r" | jq .convergence.installs)"
r=$(api PUT "/api/v1/devices/$D3/attributes/dept" -d '{"value":"travel"}')
expect_eq "set attribute" 200 "$(status_of "$r")"
expect_eq "mail for the traveller only" 1 "$(body_of "$r" | jq .convergence.installs)"
expect_eq "roaming Settings for the traveller" 1 "$(body_of "$r" | jq .convergence.settings)"
expect_eq "D3 gets it" 1 "$(waiting "$D3" InstallProfile)"
expect_eq "D3 gets Settings" 1 "$(waiting "$D3" Settings)"
g=$(body_of "$(api GET /api/v1/groups/traveling)")
expect_eq "the group's devices: the rule-matched one, no static member" "1 $D3 0" \
  "$(printf '%s' "$g" | jq -r '"\(.devices_total) \(.device_ids | join(",")) \(.member_ids | length)"')"
g=$(body_of "$(api GET /api/v1/groups/everyone)")
expect_eq "a group matching everyone lists every device" "$N $N" \
  "$(printf '%s' "$g" | jq -r '"\(.devices_total) \(.device_ids | length)"')"
r=$(api PUT "/api/v1/devices/$D3/attributes/dept" -d '{"value":"travel"}')
expect_eq "no second Settings while still a member" 0 "$(body_of "$r" | jq .convergence.settings)"
expect_eq "no second install" 0 "$(body_of "$r" | jq .convergence.installs)"
connect
expect_eq "data roaming off" false "$(roaming Data)"
expect_eq "voice roaming off" false "$(roaming Voice)"
r=$(api DELETE "/api/v1/devices/$D3/attributes/dept")
expect_eq "back home: removed" 1 "$(body_of "$r" | jq .convergence.removes)"
expect_eq "back home: roaming Settings" 1 "$(body_of "$r" | jq .convergence.settings)"
connect
expect_eq "D3 mail state gone" none "$(state_of com.example.mail "$D3")"
expect_eq "data roaming back on" true "$(roaming Data)"
expect_eq "voice roaming back on" true "$(roaming Voice)"
r=$(api POST /api/v1/groups -d '{"name":"bad-settings","enter_settings":[{"Enabled":false}]}')
expect_eq "Settings without Item refused" 400 "$(status_of "$r")"

# --- 7. import: CMS-signed (as Apple Configurator saves it) and binary
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/cfg.key" -out "$T/cfg.pem" -days 2 \
  -subj "/CN=Configurator Signer" 2>/dev/null
cat >"$T/imp.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>com.example.imported</string>
<key>PayloadUUID</key><string>6E3B7B52-0C51-4F4B-9C1E-7D3A0A9B1C11</string>
<key>PayloadDisplayName</key><string>Imported</string>
<key>PayloadContent</key><array><dict>
 <key>PayloadType</key><string>com.apple.webClip.managed</string><key>PayloadVersion</key><integer>1</integer>
 <key>PayloadIdentifier</key><string>com.example.imported.clip</string>
 <key>PayloadUUID</key><string>0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9</string>
 <key>URL</key><string>https://intranet.example.com</string><key>Label</key><string>Intranet</string>
</dict><dict>
 <key>PayloadType</key><string>com.example.vendor.thing</string><key>PayloadVersion</key><integer>1</integer>
 <key>PayloadIdentifier</key><string>com.example.imported.vendor</string>
 <key>PayloadUUID</key><string>1B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9</string>
</dict></array></dict></plist>
XML
openssl cms -sign -nodetach -binary -outform DER -in "$T/imp.xml" -signer "$T/cfg.pem" -inkey "$T/cfg.key" -out "$T/imp.signed"
r=$(api POST /api/v1/profiles -H 'Content-Type: application/x-apple-aspen-config' --data-binary "@$T/imp.signed")
expect_eq "import signed" 201 "$(status_of "$r")"
b=$(body_of "$r")
expect_eq "source" imported "$(printf '%s' "$b" | jq -r .source)"
expect_contains "signer recorded" "Configurator Signer" "$(printf '%s' "$b" | jq -r .signer)"
expect_contains "unknown type kept and flagged" "unknown payload type com.example.vendor.thing" "$(printf '%s' "$b" | jq -r '.flags[]')"
plistutil -i "$T/imp.xml" -o "$T/imp.bin" -f bin 2>/dev/null || plistutil -i "$T/imp.xml" -o "$T/imp.bin"
r=$(api POST /api/v1/profiles --data-binary "@$T/imp.bin")
expect_eq "import binary" 201 "$(status_of "$r")"
expect_eq "binary is version 2" 2 "$(body_of "$r" | jq .version)"

# --- 8. bad input: refused with the key path, nothing stored
r=$(api POST /api/v1/profiles -d '{"identifier":"com.example.bad","payloads":[{"PayloadType":"com.apple.wifi.managed","AutoJoin":"yes"}]}')
expect_eq "wrong type refused" 400 "$(status_of "$r")"
expect_contains "key path named" "PayloadContent[0].AutoJoin: expected boolean, got string" "$r"
sed 's/<integer>1<\/integer>\n <key>PayloadIdentifier<\/key><string>com.example.imported.clip/X/' "$T/imp.xml" |
  sed 's#<key>Label</key><string>Intranet</string>#<key>Label</key><integer>7</integer>#' >"$T/bad.xml"
r=$(api POST /api/v1/profiles --data-binary "@$T/bad.xml")
expect_eq "imported wrong type refused" 400 "$(status_of "$r")"
expect_contains "import key path" "PayloadContent[0].Label: expected string, got integer" "$r"
cp "$T/imp.signed" "$T/tampered"; printf 'X' | dd of="$T/tampered" bs=1 seek=300 conv=notrunc 2>/dev/null
r=$(api POST /api/v1/profiles --data-binary "@$T/tampered")
expect_eq "tampered signature refused" 400 "$(status_of "$r")"
r=$(api POST /api/v1/profiles --data-binary 'not a profile')
expect_eq "garbage refused" 400 "$(status_of "$r")"
expect_eq "nothing stored for them" 404 "$(status_of "$(api GET /api/v1/profiles/com.example.bad)")"
expect_eq "unknown profile assign" 404 "$(status_of "$(api POST /api/v1/groups/office/profiles -d '{"profile":"com.example.none"}')")"
expect_eq "unknown group" 404 "$(status_of "$(api GET /api/v1/groups/nope)")"
expect_eq "bad rule refused" 400 "$(status_of "$(api POST /api/v1/groups -d '{"name":"x","rules":{"colour":"red"}}')")"
expect_eq "profiles listed" 4 "$(body_of "$(api GET /api/v1/profiles)" | jq '.profiles | length')"

# --- stewardctl
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
out=$("${CTL[@]}" profiles list)
expect_contains "ctl profiles list" "com.example.kiosk" "$out"
expect_contains "ctl count line" "4 of 4 profiles" "$out"
out=$("${CTL[@]}" profiles status com.example.kiosk)
expect_contains "ctl status table" "not_applicable" "$out"
out=$("${CTL[@]}" groups list)
expect_contains "ctl groups list" "traveling" "$out"
"${CTL[@]}" groups create ctlgroup --rules '{"model":"iPad99,9"}' >/dev/null && pass || fail "ctl groups create"
"${CTL[@]}" groups add ctlgroup "$D4" >/dev/null && pass || fail "ctl groups add"
out=$("${CTL[@]}" --json groups show ctlgroup)
expect_contains "ctl groups show, human" "devices_total" "$("${CTL[@]}" groups show ctlgroup)"
expect_eq "ctl groups show: the static member is the one device" "1 $D4" \
  "$(printf '%s' "$out" | jq -r '"\(.devices_total) \(.device_ids | join(","))"')"
"${CTL[@]}" groups assign ctlgroup com.example.mail >/dev/null && pass || fail "ctl groups assign"
expect_eq "ctl assignment queued for D4" 1 "$(waiting "$D4" InstallProfile)"
"${CTL[@]}" groups unassign ctlgroup com.example.mail >/dev/null && pass || fail "ctl groups unassign"
"${CTL[@]}" groups remove ctlgroup "$D4" >/dev/null && pass || fail "ctl groups remove"
(cd "$T" && "${CTL[@]}" profiles download com.example.kiosk >/dev/null) && pass || fail "ctl download"
openssl cms -verify -purpose any -inform DER -in "$T/com.example.kiosk.mobileconfig" -CAfile "$CA" -out /dev/null 2>/dev/null && pass || fail "ctl download verifies"
sed 's/com.example.imported/com.example.viactl/g' "$T/imp.xml" >"$T/ctl.xml"
"${CTL[@]}" profiles import "$T/ctl.xml" >/dev/null && pass || fail "ctl import"
"${CTL[@]}" profiles build "$T/corp.json" >/dev/null && pass || fail "ctl build"
rc=0; "${CTL[@]}" profiles import "$T/tampered" 2>"$T/ctl.err" || rc=$?
expect_eq "ctl import refused" 1 "$rc"
"${CTL[@]}" profiles delete com.example.viactl >/dev/null && pass || fail "ctl delete"

# --- 9. deleting a profile removes it from the devices that have it
r=$(api DELETE /api/v1/profiles/com.example.corp)
expect_eq "delete" 200 "$(status_of "$r")"
expect_eq "removal queued for D1" 1 "$(body_of "$r" | jq .convergence.removes)"
expect_eq "D1 gets exactly one RemoveProfile" 1 "$(waiting "$D1" RemoveProfile)"
connect
profile_list
expect_not_contains "D1 no longer has it" "com.example.corp" "$(reported "$D1")"
expect_eq "D1 still enrolled and reports other profiles" true "$(body_of "$(api GET "/api/v1/devices/$D1/profiles")" | jq '[.reported[] | select(.steward == false)] | length >= 1')"

# --- selective removal: the device stays managed
r=$(api POST "/api/v1/devices/$D1/remove" -d '{"profiles":["com.example.kiosk"]}')
kiosk_d1=$(state_of com.example.kiosk "$D1")
if [ "$kiosk_d1" = installed ]; then
  expect_eq "an assigned profile is refused" 409 "$(status_of "$r")"
  expect_contains "says why" "through a group" "$r"
fi
r=$(api POST "/api/v1/devices/$D1/remove" -d '{"profiles":["com.example.wifi"],"provisioning_profiles":["7D3F1A2B-0000-4000-8000-000000000001"],"apps":["com.example.fieldservice"]}')
expect_eq "selective removal queued" 200 "$(status_of "$r")"
expect_eq "three commands" "RemoveProfile RemoveProvisioningProfile RemoveApplication" "$(body_of "$r" | jq -r '[.queued[].request_type] | join(" ")')"
connect
expect_eq "D1 still enrolled" enrolled "$(body_of "$(api GET "/api/v1/devices/$D1")" | jq -r .status)"
expect_eq "bad removal body" 400 "$(status_of "$(api POST "/api/v1/devices/$D1/remove" -d '{"apps":[1]}')")"
expect_eq "unknown device" 404 "$(status_of "$(api POST /api/v1/devices/nope/remove -d '{"apps":["x"]}')")"

# --- 10. every payload type the builder supports: built through the API,
# downloaded signed, checked with openssl cms -verify and plistutil
i=0
while IFS= read -r payload; do
  i=$((i + 1))
  type=$(printf '%s' "$payload" | jq -r .PayloadType)
  r=$(api POST /api/v1/profiles -d "{\"identifier\":\"com.example.every.$i\",\"payloads\":[$payload]}")
  expect_eq "build $type" 201 "$(status_of "$r")"
  curl -sS --cacert "$CA" -H "Authorization: Bearer $KEY" -o "$T/every.der" \
    "$URL/api/v1/profiles/com.example.every.$i/mobileconfig"
  if openssl cms -verify -purpose any -inform DER -in "$T/every.der" -CAfile "$CA" -out "$T/every.plist" 2>/dev/null; then
    pass; else fail "openssl cms -verify $type"; fi
  rm -f "$T/every.xml"
  plistutil -i "$T/every.plist" -o "$T/every.xml" -f xml 2>/dev/null || plistutil -i "$T/every.plist" -o "$T/every.xml" 2>/dev/null || true
  expect_contains "plistutil reads $type" "<string>$type</string>" "$(cat "$T/every.xml" 2>/dev/null)"
  api DELETE "/api/v1/profiles/com.example.every.$i" >/dev/null
done <"$(dirname "$0")/profiles_payloads.jsonl"
expect_eq "every payload type" 20 "$i"
# --- a device that enrolls converges at once: its groups' profiles are
# queued at its first TokenUpdate, before any ProfileList answer (the server
# restarted without the on-enroll inventory, so nothing else would queue them)
api POST /api/v1/groups -d '{"name":"newcomers","rules":{}}' >/dev/null
r=$(api POST /api/v1/groups/newcomers/profiles -d '{"profile":"com.example.mail"}')
expect_eq "assign to newcomers" 200 "$(status_of "$r")"
stop_server
start_server --set inventory_on_enroll=0 --set profiles_converge_interval=0
mkdir -p "$T/late"
"$BIN/steward-devsim" --url "$URL" --ca "$CA" --scep "$URL/scep" --poll-interval 1 --api-key "$KEY" \
  --state "$T/late" --seed late-device --count 1 enroll >"$T/late.log" 2>&1 || fail "late enroll: $(tail -3 "$T/late.log")"
late=$(body_of "$(api GET '/api/v1/devices?limit=100')" | jq -r '.devices[].id' | grep -vxF -e "$D1" -e "$D2" -e "$D3" -e "$D4" | head -n1)
expect_eq "the late device's first commands: the group's profile" "InstallProfile" \
  "$(body_of "$(api GET "/api/v1/devices/$late/commands?limit=100")" | jq -r '[.commands[] | select(.status == "Pending") | .request_type] | unique | join(",")')"
finish
