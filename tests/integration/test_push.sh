#!/usr/bin/env bash
# Push end to end through steward-apns-mock (a strict APNs stand-in with
# client-certificate TLS, made here with openssl like Apple's): import a push
# certificate (and every kind of bad one), enqueue a command → the mock gets
# exactly Apple's request → it wakes steward-devsim → the device checks in and
# acknowledges; 410 Unregistered stops pushes to that token until a new
# TokenUpdate; 400/403/429/503 handling; a replacement with another topic is
# refused unless forced; NanoMDM's /v1/push answer; a push storm while
# devices check in.
. "$(dirname "$0")/lib.sh"
MOCK_PID=
stop_mock() { [ -z "$MOCK_PID" ] || { kill "$MOCK_PID" 2>/dev/null || true; wait "$MOCK_PID" 2>/dev/null || true; MOCK_PID=; }; }
trap 'stop_mock; sleep 1; cleanup' EXIT

# --- certificates: a stand-in "Apple" CA for push certificates, and the mock's TLS identity
P=$T/pki; mkdir -p "$P"
U1=2c4a1e7f-9b43-4f0e-8d1e-5f2a3b6c7d8e; TOPIC1=com.apple.mgmt.External.$U1
U2=7d1e0b6a-3c55-4d2e-9f10-aa2b3c4d5e6f; TOPIC2=com.apple.mgmt.External.$U2
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/apple.key" -out "$P/apple.pem" -days 30 \
  -subj "/CN=Test Apple Application Integration 2 CA/O=Test" 2>/dev/null
leaf() { # name subject days [extra x509 args]
  openssl req -newkey rsa:2048 -nodes -keyout "$P/$1.key" -out "$P/$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$P/$1.csr" -CA "$P/apple.pem" -CAkey "$P/apple.key" -CAcreateserial \
    -out "$P/$1.pem" -days "$3" "${@:4}" 2>/dev/null
}
leaf push1 "/UID=$TOPIC1/CN=APSP:$U1/C=US" 365
leaf push1b "/UID=$TOPIC1/CN=APSP:$U1/C=US" 200          # a renewal: same topic
leaf push2 "/UID=$TOPIC2/CN=APSP:$U2/C=US" 365
leaf nouid "/CN=APSP:$U1/C=US" 365
leaf badprefix "/UID=com.example.push.$U1/CN=APSP:$U1/C=US" 365
leaf soon "/UID=com.apple.mgmt.External.soon/CN=soon" 5
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/mockca.key" -out "$P/mockca.pem" -days 30 \
  -subj "/CN=Mock APNs CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$P/mock.key" -out "$P/mock.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$P/san.ext"
openssl x509 -req -in "$P/mock.csr" -CA "$P/mockca.pem" -CAkey "$P/mockca.key" -CAcreateserial \
  -out "$P/mock.pem" -days 30 -extfile "$P/san.ext" 2>/dev/null
# an expired push certificate: `openssl ca` can date it in the past
openssl req -newkey rsa:2048 -nodes -keyout "$P/expired.key" -out "$P/expired.csr" \
  -subj "/UID=$TOPIC1/CN=old" 2>/dev/null
mkdir -p "$P/db"; : >"$P/db/index"; echo 01 >"$P/db/serial"
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/db/index\nnew_certs_dir=%s/db\nserial=%s/db/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\nUID=optional\ncommonName=optional\n' \
  "$P" "$P" "$P" >"$P/ca.cnf"
openssl ca -batch -config "$P/ca.cnf" -preserveDN -cert "$P/apple.pem" -keyfile "$P/apple.key" \
  -in "$P/expired.csr" -out "$P/expired.pem" -startdate 20200101000000Z -enddate 20210101000000Z \
  -notext >/dev/null 2>&1

# --- the mock. Started on a free port; restarted on the same port with other rules.
MOCK_LOG=$T/mock.jsonl
start_mock() {
  rm -f "$T/mock.ready"
  "$BIN/steward-apns-mock" --cert "$P/mock.pem" --key "$P/mock.key" --client-ca "$P/apple.pem" \
    --listen "127.0.0.1:${MOCK_PORT:-0}" --ready-file "$T/mock.ready" --log "$MOCK_LOG" --quiet \
    --wake-exec "$T/wake.sh" "$@" >>"$T/mock.out" 2>&1 &
  MOCK_PID=$!
  for _ in $(seq 1 50); do [ -f "$T/mock.ready" ] && break; sleep 0.1; done
  MOCK_PORT=$(sed -n 's/^port=//p' "$T/mock.ready")
}
start_mock
init_data
start_server --set apns_url="https://localhost:$MOCK_PORT" --set apns_ca="$P/mockca.pem" \
  --set push_coalesce_ms=100
SIM=("$BIN/steward-devsim" --url "$URL" --ca "$CA" --issue-from "$DATA" --topic "$TOPIC1")
CTL=("$BIN/stewardctl" --url "$URL" --cacert "$CA")
echo "$URL" >"$T/url"
# The mock wakes a device by running the simulator's connect for it.
cat >"$T/wake.sh" <<W
#!/usr/bin/env bash
for d in "$T"/sim*/device-*; do
  [ -f "\$d/token.hex" ] && [ "\$(cat "\$d/token.hex")" = "\$APNS_TOKEN" ] || continue
  exec "${SIM[0]}" --url "\$(cat "$T/url")" --ca "$CA" --issue-from "$DATA" --topic "$TOPIC1" \
    --state "\$(dirname "\$d")" --count "\$(ls -d "\$(dirname "\$d")"/device-* | wc -l)" connect \
    >>"$T/wake.log" 2>&1
done
echo "no device for \$APNS_TOKEN" >>"$T/wake.log"
W
chmod +x "$T/wake.sh"

pushes_for() { grep -c "\"path\":\"/3/device/$1\"" "$MOCK_LOG" 2>/dev/null || true; }
wait_for() { # what, command…: retries for 10 s
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" && return 0; sleep 0.1; done
  fail "$what"; return 1
}

# --- import errors: each with a clear message, nothing stored
import_pem() { # cert key [extra json]
  jq -n --rawfile c "$1" --rawfile k "$2" "{cert: \$c, key: \$k} ${3:++ $3}" >"$T/imp.json"
  api PUT /api/v1/pushcerts -H 'Content-Type: application/json' --data-binary "@$T/imp.json"
}
r=$(import_pem "$P/push1.pem" "$P/push2.key")
expect_eq "key not matching → 400" 400 "$(status_of "$r")"
expect_contains "key mismatch message" "does not match the certificate" "$r"
r=$(import_pem "$P/nouid.pem" "$P/nouid.key")
expect_eq "no UID → 400" 400 "$(status_of "$r")"
expect_contains "no UID message" "no UID" "$r"
r=$(import_pem "$P/badprefix.pem" "$P/badprefix.key")
expect_eq "wrong prefix → 400" 400 "$(status_of "$r")"
expect_contains "prefix message" "does not start with com.apple.mgmt." "$r"
r=$(import_pem "$P/expired.pem" "$P/expired.key")
expect_eq "expired → 400" 400 "$(status_of "$r")"
expect_contains "expired message" "has expired" "$r"
openssl pkcs12 -export -in "$P/push1.pem" -inkey "$P/push1.key" -passout pass:s3cret -out "$P/push1.p12"
jq -n --arg p "$(base64 -w0 "$P/push1.p12")" '{p12: $p, password: "wrong"}' >"$T/p12bad.json"
r=$(api PUT /api/v1/pushcerts --data-binary "@$T/p12bad.json")
expect_eq "wrong PKCS#12 password → 400" 400 "$(status_of "$r")"
expect_contains "wrong password message" "wrong PKCS#12 password" "$r"
r=$(api PUT /api/v1/pushcerts --data-binary '{"cert": 5}')
expect_eq "bad body → 400" 400 "$(status_of "$r")"
r=$(api PUT /api/v1/pushcerts --data-binary 'not json')
expect_eq "not JSON → 400" 400 "$(status_of "$r")"
expect_eq "nothing stored after refusals" 0 "$(body_of "$(api GET /api/v1/pushcerts)" | jq '.pushcerts | length')"

# --- import the PKCS#12 with its password
jq -n --arg p "$(base64 -w0 "$P/push1.p12")" '{p12: $p, password: "s3cret"}' >"$T/p12.json"
r=$(api PUT /api/v1/pushcerts --data-binary "@$T/p12.json")
expect_eq "PKCS#12 import → 201" 201 "$(status_of "$r")"
expect_eq "topic is the certificate UID" "$TOPIC1" "$(body_of "$r" | jq -r .pushcert.topic)"
expect_eq "default topic" "$TOPIC1" "$(body_of "$(api GET /api/v1/pushcerts)" | jq -r .default_topic)"

# --- a device enrolls; a queued command pushes it; the mock wakes it; it acknowledges
mkdir -p "$T/sim1" "$T/sim2" "$T/simf"
"${SIM[@]}" --state "$T/sim1" --seed push-a enroll >"$T/sim1.log" 2>&1 || { cat "$T/sim1.log"; fail "enroll"; }
ID1=$(body_of "$(api GET /api/v1/devices)" | jq -r '.devices[0].id')
TOK1=$(body_of "$(api GET "/api/v1/devices/$ID1")" | jq -r '.push_token // .device.push_token')
echo "$TOK1" >"$T/sim1/device-00000/token.hex"
expect_eq "token is 64 hex" 64 "${#TOK1}"
r=$(api POST /api/v1/commands --data-binary "{\"devices\":[\"$ID1\"],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"OSVersion\"]}}")
expect_eq "enqueue → 200" 200 "$(status_of "$r")"
UUID1=$(body_of "$r" | jq -r .command_uuid)
acked() { [ "$(body_of "$(api GET "/api/v1/devices/$1/commands")" | jq -r --arg u "$2" '.commands[] | select(.command_uuid == $u) | .status')" = Acknowledged ]; }
wait_for "push woke the device and it acknowledged" acked "$ID1" "$UUID1"
line=$(grep "/3/device/$TOK1" "$MOCK_LOG" | head -1)
expect_eq "mock: topic" "$TOPIC1" "$(printf '%s' "$line" | jq -r .topic)"
expect_eq "mock: push type" mdm "$(printf '%s' "$line" | jq -r .push_type)"
expect_eq "mock: priority" 10 "$(printf '%s' "$line" | jq -r .priority)"
expect_eq "mock: status" 200 "$(printf '%s' "$line" | jq -r .status)"
MAGIC1=$(plistutil -i "$T/sim1/device-00000/device.plist" -f xml 2>/dev/null | sed -n '/PushMagic/{n;s/.*<string>\(.*\)<\/string>.*/\1/p}')
expect_eq "mock: body is exactly {\"mdm\":PushMagic}" "{'mdm':'$MAGIC1'}" "$(printf '%s' "$line" | jq -r .body)"
exp=$(printf '%s' "$line" | jq -r .expiration)
[ "$exp" -gt "$(date +%s)" ] && pass || fail "apns-expiration in the future ($exp)"
st=$(body_of "$(api GET "/api/v1/devices/$ID1/push")")
expect_eq "push state: last result" ok "$(printf '%s' "$st" | jq -r .push.last_result)"
expect_eq "push state: apns-id kept" "$(printf '%s' "$line" | jq -r .apns_id)" "$(printf '%s' "$st" | jq -r .push.last_apns_id)"

# nopush=1 queues without pushing
before=$(pushes_for "$TOK1")
r=$(api POST '/api/v1/commands?nopush=1' --data-binary "{\"devices\":[\"$ID1\"],\"command\":{\"RequestType\":\"ProfileList\"}}")
expect_eq "enqueue nopush → 200" 200 "$(status_of "$r")"
sleep 0.5
expect_eq "nopush: no push sent" "$before" "$(pushes_for "$TOK1")"
"${SIM[@]}" --state "$T/sim1" --seed push-a connect >/dev/null 2>&1 || true

# --- POST /api/v1/push and NanoMDM's /v1/push
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID1\",\"no-such-device\"]}")
expect_eq "push now → 200" 200 "$(status_of "$r")"
expect_eq "pushed one" 1 "$(body_of "$r" | jq .pushed)"
expect_eq "unknown device not pushed" not_found "$(body_of "$r" | jq -r '.devices["no-such-device"].result')"
r=$(api GET "/v1/push/$ID1")
expect_eq "NanoMDM push → 200" 200 "$(status_of "$r")"
expect_eq "NanoMDM push_result is the apns-id" 36 "$(body_of "$r" | jq -r --arg i "$ID1" '.status[$i].push_result | length')"
r=$(api GET "/v1/push/$ID1,nope")
expect_eq "NanoMDM partial → 207" 207 "$(status_of "$r")"
expect_contains "NanoMDM push_error" push_error "$(body_of "$r")"
r=$(api POST /api/v1/push --data-binary '{"devices":[]}')
expect_eq "empty device list → 400" 400 "$(status_of "$r")"
r=$(api POST /api/v1/push --data-binary '{"devices":[1]}')
expect_eq "non-string id → 400" 400 "$(status_of "$r")"

# --- a replacement with another topic is refused unless forced; a renewal is fine
r=$(import_pem "$P/push2.pem" "$P/push2.key")
expect_eq "other topic → 409" 409 "$(status_of "$r")"
expect_contains "mismatch explains" "must keep its topic" "$r"
r=$(import_pem "$P/push1b.pem" "$P/push1b.key")
expect_eq "renewal, same topic → 200" 200 "$(status_of "$r")"
expect_eq "renewal replaced" true "$(body_of "$r" | jq .replaced)"
r=$(import_pem "$P/push2.pem" "$P/push2.key" '{force: true}')
expect_eq "other topic, forced → 201" 201 "$(status_of "$r")"
expect_eq "two topics" 2 "$(body_of "$(api GET /api/v1/pushcerts)" | jq '.pushcerts | length')"
r=$(api GET "/api/v1/pushcerts/$TOPIC1")
expect_eq "one certificate" 1 "$(body_of "$r" | jq '.pushcert.devices')"
r=$(import_pem "$P/soon.pem" "$P/soon.key" '{force: true}')
expect_eq "expiring in 5 days: imported" 201 "$(status_of "$r")"
expect_eq "expiry warning in the API" "expires within 7 days" "$(body_of "$r" | jq -r .pushcert.expiry_warning)"

# --- a webhook hears about pushes APNs refused for good (push.failed)
WPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/rx"
python3 "$(dirname "$0")/webhook_receiver.py" "$WPORT" 0123456789abcdef0123456789abcdef "$T/rx" &
RX=$!
trap 'kill $RX 2>/dev/null || true; stop_mock; sleep 1; cleanup' EXIT
r=$(api POST /api/v1/webhooks -d "{\"url\":\"http://127.0.0.1:$WPORT/hook\",\"secret\":\"0123456789abcdef0123456789abcdef\",\"events\":[\"push.failed\"]}")
expect_eq "push.failed webhook created" 201 "$(status_of "$r")"
sleep 1.2 # the subscription cache is refreshed on change; let the thread see it

# --- 410 Unregistered: stop pushing that token until the next TokenUpdate
"${SIM[@]}" --state "$T/sim2" --seed push-b enroll >"$T/sim2.log" 2>&1 || fail "enroll 2"
ID2=$(body_of "$(api GET /api/v1/devices)" | jq -r --arg a "$ID1" '.devices[].id | select(. != $a)')
TOK2=$(body_of "$(api GET "/api/v1/devices/$ID2")" | jq -r '.push_token // .device.push_token')
echo "$TOK2" >"$T/sim2/device-00000/token.hex"
stop_mock
start_mock --unregistered "$TOK2"
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID2\"]}")
expect_eq "410 reported" 410 "$(body_of "$r" | jq --arg i "$ID2" '.devices[$i].status')"
expect_eq "410 reason" Unregistered "$(body_of "$r" | jq -r --arg i "$ID2" '.devices[$i].result')"
for _ in $(seq 1 50); do grep -q '"push.failed"' "$T/rx/received.jsonl" 2>/dev/null && break; sleep 0.2; done
ev=$(grep '"push.failed"' "$T/rx/received.jsonl" 2>/dev/null | head -n1)
expect_eq "push.failed webhook: device and status" "$ID2 410 true" \
  "$(printf '%s' "$ev" | jq -r '"\(.body.device.id) \(.body.push.status) \(.valid)"')"
n=$(pushes_for "$TOK2")
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID2\"]}")
expect_eq "unregistered token not pushed again" unregistered "$(body_of "$r" | jq -r --arg i "$ID2" '.devices[$i].result')"
expect_eq "mock saw no second push" "$n" "$(pushes_for "$TOK2")"
sleep 1.1 # a TokenUpdate in a later second than the 410
"${SIM[@]}" --state "$T/sim2" --seed push-b enroll >/dev/null 2>&1 || fail "re-enroll 2"
stop_mock
start_mock
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID2\"]}")
expect_eq "after a TokenUpdate the device is pushed again" 200 "$(body_of "$r" | jq --arg i "$ID2" '.devices[$i].status')"

# --- 400 BadDeviceToken acts like 410; 429 and 503 are retried with back-off
stop_mock
printf '# token status reason\n%s 429 TooManyRequests\n' "$TOK1" >"$T/rules"
start_mock --rules "$T/rules" --bad-token "$TOK2"
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID2\"]}")
expect_eq "BadDeviceToken → 400" 400 "$(body_of "$r" | jq --arg i "$ID2" '.devices[$i].status')"
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID2\"]}")
expect_eq "BadDeviceToken token not pushed again" unregistered "$(body_of "$r" | jq -r --arg i "$ID2" '.devices[$i].result')"
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID1\"]}")
expect_eq "429 reported" 429 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"
stop_mock
start_mock --fail 1
n=$(wc -l <"$MOCK_LOG")
api POST "/api/v1/commands" --data-binary "{\"devices\":[\"$ID1\"],\"command\":{\"RequestType\":\"SecurityInfo\"}}" >/dev/null
got_retry() { [ "$(tail -n +$((n + 1)) "$MOCK_LOG" | grep -c "/3/device/$TOK1")" -ge 2 ]; }
wait_for "503 retried with back-off (first answer 503, then 200)" got_retry
expect_eq "first attempt got 503" 503 "$(tail -n +$((n + 1)) "$MOCK_LOG" | grep "/3/device/$TOK1" | head -1 | jq .status)"

# --- 403: the topic's certificate is disabled until a new import
stop_mock
start_mock --refuse-cert
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID1\"]}")
expect_eq "403 reported" 403 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"
r=$(api GET "/api/v1/pushcerts/$TOPIC1")
expect_eq "certificate disabled" BadCertificate "$(body_of "$r" | jq -r .pushcert.disabled_reason)"
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID1\"]}")
expect_eq "disabled topic not pushed" certificate_disabled "$(body_of "$r" | jq -r --arg i "$ID1" '.devices[$i].result')"
stop_mock
start_mock
r=$(import_pem "$P/push1.pem" "$P/push1.key")
expect_eq "re-import enables the topic" 200 "$(status_of "$r")"
r=$(api POST /api/v1/push --data-binary "{\"devices\":[\"$ID1\"]}")
expect_eq "pushing again after re-import" 200 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"

# --- the mock is strict: a request off Apple's format is refused as APNs would
mockcurl() { curl -sS --http2 --cacert "$P/mockca.pem" --cert "$P/push1.pem" --key "$P/push1.key" \
  -w '\nHTTP %{http_code}' "https://localhost:$MOCK_PORT/3/device/$TOK1" "$@"; }
r=$(mockcurl -H "apns-topic: $TOPIC1" -H 'apns-push-type: alert' -d '{"mdm":"x"}')
expect_eq "mock: wrong push type" 400 "$(status_of "$r")"
expect_contains "mock: InvalidPushType" InvalidPushType "$r"
r=$(mockcurl -H "apns-topic: $TOPIC2" -H 'apns-push-type: mdm' -d '{"mdm":"x"}')
expect_contains "mock: topic must match the certificate" TopicDisallowed "$r"
r=$(mockcurl -H "apns-topic: $TOPIC1" -H 'apns-push-type: mdm' -d '{"aps":{},"mdm":"x"}')
expect_contains "mock: body exactly {mdm}" BadPayload "$r"
r=$(curl -sS --http2 --cacert "$P/mockca.pem" "https://localhost:$MOCK_PORT/3/device/$TOK1" -d x 2>&1 || true)
expect_not_contains "mock: no client certificate, no answer" '"reason"' "$r"

# --- metrics and stewardctl
m=$(curl -sS --cacert "$CA" "$URL/metrics")
expect_contains "metric: pushes ok" 'steward_push_total{outcome="ok"}' "$m"
expect_contains "metric: unregistered" 'steward_push_total{outcome="unregistered"}' "$m"

out=$("${CTL[@]}" push-cert list)
expect_contains "ctl: list shows the topic" "$TOPIC1" "$out"
expect_contains "ctl: list shows the warning" "expires within 7 days" "$out"
expect_contains "ctl: default topic" "New enrollments use" "$out"
out=$("${CTL[@]}" push-cert show "$TOPIC1")
expect_contains "ctl: show" "fingerprint" "$out"
echo s3cret >"$T/pw"
out=$("${CTL[@]}" push-cert import --p12 "$P/push1.p12" --password-file "$T/pw")
expect_contains "ctl: import p12" "Replaced push certificate for $TOPIC1" "$out"
echo wrong >"$T/pw"
out=$("${CTL[@]}" push-cert import --p12 "$P/push1.p12" --password-file "$T/pw" 2>&1) && fail "ctl: wrong password must fail" || pass
expect_contains "ctl: wrong password message" "wrong PKCS#12 password" "$out"
out=$("${CTL[@]}" push "$ID1")
expect_contains "ctl: push" "Pushed 1 of 1 device" "$out"
out=$("${CTL[@]}" push "$ID1" nope 2>&1) && fail "ctl: partial push exits 1" || pass
expect_contains "ctl: names the failure" "nope: not pushed (not_found)" "$out"

# --- a push storm while devices check in: 40 devices, every one pushed 5 times
"${SIM[@]}" --state "$T/simf" --seed push-fleet --count 40 --concurrency 8 enroll >/dev/null 2>&1 || fail "fleet enroll"
fleet=$(body_of "$(api GET '/api/v1/devices?limit=1000')" | jq -c '[.devices[].id]')
storm=()
for _ in 1 2 3 4 5; do
  api POST /api/v1/commands --data-binary "{\"devices\":$fleet,\"command\":{\"RequestType\":\"ProfileList\"}}" >/dev/null &
  storm+=($!)
done
"${SIM[@]}" --state "$T/simf" --seed push-fleet --count 40 --concurrency 8 connect >"$T/storm.log" 2>&1 \
  || { tail -5 "$T/storm.log"; fail "check-ins during the storm"; }
wait "${storm[@]}"

# --- the scheduler: re-push of a silent device with a waiting command; expiry warnings
stop_server
start_server --set apns_url="https://localhost:$MOCK_PORT" --set apns_ca="$P/mockca.pem" \
  --set push_repush_after=2 --set push_repush_interval=5 --set cert_watch_interval=10
echo "$URL" >"$T/url"
r=$(api POST '/api/v1/commands?nopush=1' --data-binary "{\"devices\":[\"$ID1\"],\"command\":{\"RequestType\":\"DeviceInformation\",\"Queries\":[\"BuildVersion\"]}}")
UUID2=$(body_of "$r" | jq -r .command_uuid)
for _ in $(seq 1 250); do acked "$ID1" "$UUID2" && break; sleep 0.1; done
acked "$ID1" "$UUID2" && pass || fail "re-push woke the silent device and it acknowledged"
expect_contains "re-push logged" "re-pushing silent devices" "$(cat "$T/server.log")"
for _ in $(seq 1 50); do grep -q 'push certificate expires soon' "$T/server.log" && break; sleep 0.2; done
expect_contains "expiry warning logged" "com.apple.mgmt.External.soon days_left=" "$(grep 'expires soon' "$T/server.log")"
m=$(curl -sS --cacert "$CA" "$URL/metrics")
expect_contains "expiry metric" 'steward_push_certs_expiring{within="30d"} 1' "$m"
# --- liveness: a connection that goes silent (no reset) is found by HTTP/2 PING, dropped and
# replaced, so pushes neither wait for apns_timeout (60 s here, past the API's 30 s wait) nor stall
stop_server
stop_mock
start_mock --stall-after 1
start_server --set apns_url="https://localhost:$MOCK_PORT" --set apns_ca="$P/mockca.pem" \
  --set apns_ping_interval=1 --set apns_ping_timeout=1 --set apns_timeout=60 \
  --set apns_connections=1 --set apns_streams=1
echo "$URL" >"$T/url"
push1() { api POST /api/v1/push --data-binary "{\"devices\":[\"$ID1\"]}"; }
r=$(push1)
expect_eq "push before the connection goes silent" 200 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"
sleep 3 # idle: PINGed after 1 s, unanswered after 1 s more: dropped
expect_contains "silent idle connection dropped after an unanswered PING" "no answer to a PING" \
  "$(grep 'APNs connection dropped' "$T/server.log")"
r=$(push1)
expect_eq "next push goes out on a new connection" 200 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"
stop_mock
start_mock --stall-after 1
r=$(push1)
expect_eq "push on a fresh mock" 200 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"
r=$(push1) # put on the connection that just went silent
expect_contains "a push waiting on a silent connection ends by PING, not by apns_timeout" "PING" \
  "$(body_of "$r" | jq -r --arg i "$ID1" '.devices[$i].result')"
r=$(push1)
expect_eq "and the push after it goes out on a new connection" 200 "$(body_of "$r" | jq --arg i "$ID1" '.devices[$i].status')"

# --- a token APNs reports gone is not pushed again by a request looked up before the 410 was
# recorded: with one stream, the second push waits for the first one's (slow) 410
stop_mock
start_mock --unregistered "$TOK1" --delay-ms 800
n=$(pushes_for "$TOK1")
push1 >"$T/first.out" &
first=$!
sleep 0.3
r=$(push1)
wait "$first"
expect_eq "first push: 410" 410 "$(body_of "$(cat "$T/first.out")" | jq --arg i "$ID1" '.devices[$i].status')"
expect_eq "second push, waiting when the 410 came: not sent" unregistered \
  "$(body_of "$r" | jq -r --arg i "$ID1" '.devices[$i].result')"
expect_eq "the mock got one push for the gone token" $((n + 1)) "$(pushes_for "$TOK1")"
finish
