#!/usr/bin/env bash
# `mikeysakke dist serve` end to end: a KMS made with the real commands (small scrypt
# cost), its export served over TLS on loopback, curl as a plain Annex D client: the
# device's package by keyprov, which `user import` accepts; each refusal by its HTTP
# status (no, wrong or another device's token, another user's URI, unknown device answered
# as a wrong token, period without package, malformed request, not XML, replay, not POST);
# a second export (the next period) is served without a restart; a suspended user's
# packages leave with the next export; a bad index line is skipped and reported; bad
# limits stop the server; SIGTERM exits 0. Servers and the agent are killed on exit.
# Usage: bash test_dist_serve.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_dist_serve.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"

K="$work/kms"
ROLES="$work/auditors" # kms init writes the role keys (operator, officers, auditors) here
M="$work/media"
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null
    if [ -f "$K/agent.pid" ]; then
        "$ms" kms seal --dir "$K" >/dev/null 2>&1 || kill "$(cat "$K/agent.pid")" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

command -v curl >/dev/null && command -v openssl >/dev/null || {
    echo "SKIP: curl and openssl are needed" >&2
    exit 0
}

KMS=kms.example.org
ALICE=tel:+447700900123
BOB=tel:+447700900456
umask 077
printf 'correct horse battery staple\n' >"$work/pass"
printf 'alice keystore passphrase\n' >"$work/alice.pass"
xmlval() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$2" | head -1; }

# ---- a throwaway CA and a server certificate for 127.0.0.1 ------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=test CA" -keyout "$work/ca.key" -out "$work/ca.pem" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$work/srv.key" -out "$work/srv.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/ext" -out "$work/srv.pem" >/dev/null 2>&1
check "test certificates made" test -s "$work/srv.pem" -a -s "$work/srv.key"

# ---- the offline KMS: users, devices, issue, export -------------------------------------------
check "kms init" run 0 kms init --dir "$K" --uri "$KMS" --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/auditors"
check "unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "add Alice" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$ALICE"
check "add Bob" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$BOB"
check "enrol Alice's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$ALICE" \
    --device alice-phone --out "$work/alice.enrol"
check "enrol Bob's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$BOB" --device bob-phone \
    --out "$work/bob.enrol"
check "issue the current period" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
check "export" run 0 kms export --key "$ROLES/operator.key" --dir "$K" --period current --out "$M"
check "index: device user file sha256 period token-sha256" \
    same "$(awk '!/^#/ {print NF}' "$M/index.txt" | sort -u)" 6
check "export holds the certificate" cmp -s "$M/certificate.xml" "$K/certificate.xml"
check "no device token in the export" bash -c "! grep -qi '$(xmlval InK "$work/alice.enrol")' '$M'/*"

# The bearer token the device derives from its enrolment file.
token() { # DEVICE ENROLMENT
    local ink
    ink=$(xmlval InK "$2")
    printf '%s.%s' "$1" "$(printf 'mikeysakke-device-token:%s' "$1" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$ink" -r | cut -d' ' -f1)"
}
ATOK=$(token alice-phone "$work/alice.enrol")
BTOK=$(token bob-phone "$work/bob.enrol")

# ---- the server -------------------------------------------------------------------------
"$ms" dist serve "$M" --listen 127.0.0.1 --port 0 --cert "$work/srv.pem" --key "$work/srv.key" \
    --rate 0 2>"$work/serve.err" &
srv_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's|^listening on https://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$work/serve.err")
    [ -n "$port" ] && break
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
done
check "dist serve says where it listens" test -n "$port"
[ -n "$port" ] || { cat "$work/serve.err" >&2; exit 1; }
BASE="https://127.0.0.1:$port"
API=/keymanagement/identity/v1

pct() { printf '%s' "$1" | sed 's/:/%3A/g; s/+/%2B/g; s/@/%40/g'; }
ntp_hex() { printf '%08X00000000' $(($1 + 2208988800)); } # Unix seconds -> NTP 32.32 hex
# post PATH TOKEN [USER] [METHOD]: KmsRequest to PATH; body -> $work/body, prints the status
post() {
    local path=$1 tok=$2 user=${3:-$ALICE} method=${4:-POST} auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    cat >"$work/req.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.1.0">
  <UserUri>$user</UserUri>
  <KmsUri>$KMS</KmsUri>
  <Time>$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)</Time>
  <ClientReqUrl>$BASE$path</ClientReqUrl>
</KmsRequest>
EOF
    curl -s --cacert "$work/ca.pem" -X "$method" -H 'Content-Type: application/xml' \
        "${auth[@]}" --data-binary @"$work/req.xml" -o "$work/body" -w '%{http_code}' \
        "$BASE$path"
}

NOW=$(date -u +%s)
T=$(ntp_hex "$NOW")
check "healthz" same "$(curl -s --cacert "$work/ca.pem" -o /dev/null -w '%{http_code}' "$BASE/healthz")" 200
check "keyprov (current period)" same "$(post "$API/keyprov" "$ATOK")" 200
cp "$work/body" "$work/alice-cur.xml"
check "keyprov by user and time" same "$(post "$API/keyprov/$(pct "$ALICE")/$T" "$ATOK")" 200
check "the same package both ways" cmp -s "$work/body" "$work/alice-cur.xml"
check "init: the KMS certificate" same "$(post "$API/init" "$ATOK")" 200
check "init carries KmsInit" grep -q '<KmsInit' "$work/body"
check "certcache" same "$(post "$API/certcache" "$BTOK" "$BOB")" 200
check "certcache carries KmsCertCache" grep -q '<KmsCertCache' "$work/body"

check "alice: user init" run 0 user init --keystore "$work/alice.ks" \
    --enrolment "$work/alice.enrol" --passphrase-file "$work/alice.pass" --scrypt-cost 10
check "alice: user import accepts the served package" run 0 user import \
    --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --in "$work/alice-cur.xml"

# the provisioning client against the real distribution server
printf 'bob keystore passphrase\n' >"$work/bob.pass"
chmod 600 "$work/bob.pass"
check "bob: user init" run 0 user init --keystore "$work/bob.ks" \
    --enrolment "$work/bob.enrol" --passphrase-file "$work/bob.pass" --scrypt-cost 10
check "bob: user fetch from dist serve" run 0 user fetch --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --url "$BASE" --cacert "$work/ca.pem" --retries 0
check "bob: fetch stored the current period" grep -q 'stored' "$work/out"
check "bob: the keystore holds it" run 0 user list --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass"
check "bob: a period is listed" grep -q 'period' "$work/out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=another CA" -keyout "$work/other-ca.key" -out "$work/other-ca.pem" >/dev/null 2>&1
check "fetch trusting another CA: TLS refused (62)" run 62 user fetch --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --url "$BASE" --cacert "$work/other-ca.pem" --retries 0

# ---- refusals ---------------------------------------------------------------------------
check "no token: 401" same "$(post "$API/keyprov" "")" 401
check "refusal carries a KmsError" grep -q '<KmsError>' "$work/body"
check "wrong token: 401" same "$(post "$API/keyprov" "$(flip "$ATOK" $((${#ATOK} - 1)))")" 401
check "Bob's token under Alice's name: 401" same "$(post "$API/keyprov" "alice-phone.${BTOK#*.}")" 401
check "another user's URI: 403" same "$(post "$API/keyprov/$(pct "$BOB")/$T" "$ATOK")" 403
check "another user's UserUri: 403" same "$(post "$API/keyprov" "$ATOK" "$BOB")" 403
check "unknown device: 401" same "$(post "$API/keyprov" "carol-phone.${ATOK#*.}")" 401
grep -v '<Time>' "$work/body" >"$work/unknown.body"
check "wrong token: 401" same "$(post "$API/keyprov" "$(flip "$ATOK" $((${#ATOK} - 1)))")" 401
grep -v '<Time>' "$work/body" >"$work/wrong.body"
check "unknown device and wrong token: the same answer" cmp -s "$work/unknown.body" "$work/wrong.body"
for ct in application/json text/plain; do
    check "a KmsRequest sent as $ct: 415" same "$(curl -s --cacert "$work/ca.pem" \
        -H "Content-Type: $ct" -H "Authorization: Bearer $ATOK" --data-binary @"$work/req.xml" \
        -o /dev/null -w '%{http_code}' "$BASE$API/keyprov")" 415
done
check "a fresh request: 200" same "$(post "$API/keyprov" "$ATOK")" 200
check "the same request again (replay): 409" same "$(curl -s --cacert "$work/ca.pem" \
    -H 'Content-Type: application/xml' -H "Authorization: Bearer $ATOK" \
    --data-binary @"$work/req.xml" -o "$work/body" -w '%{http_code}' "$BASE$API/keyprov")" 409
check "replay: KmsError 29" grep -q '<ErrorCode>29</ErrorCode>' "$work/body"
NEXT=$(date -u -d "$(date -u +%Y-%m-01) +1 month" +%s)
TN=$(ntp_hex $((NEXT + 3600)))
check "period without package: 404" same "$(post "$API/keyprov/$(pct "$ALICE")/$TN" "$ATOK")" 404
check "unknown resource: 404" same "$(post "$API/keyprovision" "$ATOK")" 404
check "malformed time: 400" same "$(post "$API/keyprov/$(pct "$ALICE")/XYZ" "$ATOK")" 400
check "not POST: 405" same "$(post "$API/keyprov" "$ATOK" "$ALICE" PUT)" 405
check "malformed KmsRequest: 400" same "$(curl -s --cacert "$work/ca.pem" \
    -H 'Content-Type: application/xml' \
    -H "Authorization: Bearer $ATOK" --data-binary '<KmsRequest>' -o /dev/null \
    -w '%{http_code}' "$BASE$API/keyprov")" 400
check "plain HTTP is not answered" bash -c "! curl -s -f -o /dev/null 'http://127.0.0.1:$port/healthz'"
check "an untrusted server is refused by the client" bash -c \
    "! curl -s -o /dev/null 'https://127.0.0.1:$port/healthz'"

# ---- the next period's export, without a restart ------------------------------------------
check "issue the next period" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period next
check "export the next period into the same folder" run 0 kms export --key "$ROLES/operator.key" --dir "$K" --period next --out "$M"
check "index now lists both periods" same "$(grep -vc '^#' "$M/index.txt")" 4
check "next period served without restart" same "$(post "$API/keyprov/$(pct "$ALICE")/$TN" "$ATOK")" 200
cp "$work/body" "$work/alice-next.xml"
check "alice: user import accepts the next period" run 0 user import \
    --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --in "$work/alice-next.xml"
check "current period still served" same "$(post "$API/keyprov" "$ATOK")" 200
check "user list" run 0 user list --keystore "$work/alice.ks" \
    --passphrase-file "$work/alice.pass"
check "the keystore holds two periods" same "$(grep -c '^period [0-9]' "$work/out")" 2

# ---- a suspended user's packages leave with the next export, of either period ---------------
check "bob: next period served" same "$(post "$API/keyprov/$(pct "$BOB")/$TN" "$BTOK" "$BOB")" 200
check "suspend Bob" run 0 kms user suspend --key "$ROLES/operator.key" --dir "$K" --user "$BOB"
check "export the next period again" run 0 kms export --key "$ROLES/operator.key" --dir "$K" --period next --out "$M"
check "bob: current period no longer served" same "$(post "$API/keyprov" "$BTOK" "$BOB")" 401
check "bob: next period no longer served" \
    same "$(post "$API/keyprov/$(pct "$BOB")/$TN" "$BTOK" "$BOB")" 401
check "bob: not in the index" bash -c "! grep -q bob-phone '$M/index.txt'"
check "bob: his package files are gone" bash -c "! ls '$M' | grep -q '^bob-phone'"
check "alice: still served" same "$(post "$API/keyprov" "$ATOK")" 200

# ---- one bad index line is skipped, the rest served --------------------------------------
cp "$M/index.txt" "$work/index.good"
{ cat "$work/index.good"; printf 'carol-phone sip:car\303\251l@example.org carol.xml %064d 1 %064d\n' 0 0; } \
    >"$M/index.tmp" && mv "$M/index.tmp" "$M/index.txt"
check "an index with a non-ASCII line: alice still served" same "$(post "$API/keyprov" "$ATOK")" 200
check "the bad line is reported" grep -q 'index.txt:[0-9]*: not printable ASCII.*line skipped' "$work/serve.err"
check "metrics count the skipped line" bash -c \
    "curl -s --cacert '$work/ca.pem' '$BASE/metrics' | grep -q '^mikeysakke_dist_index_lines_skipped 1'"

# ---- a malformed index is refused, the served export kept -----------------------------------
printf 'garbage\n' >"$M/index.tmp" && mv "$M/index.tmp" "$M/index.txt"
check "malformed index: still served" same "$(post "$API/keyprov" "$ATOK")" 200
check "the refusal is logged" grep -q 'export refused' "$work/serve.err"
check "metrics count the reload failure" bash -c \
    "curl -s --cacert '$work/ca.pem' '$BASE/metrics' | grep -q '^mikeysakke_dist_reload_failures_total 1'"
check "nothing secret in the server's log" bash -c "! grep -q '${ATOK#*.}' '$work/serve.err'"

# ---- limits are settings; bad values stop the server -------------------------------------
check "dist serve --timeout 0: usage error (21)" run 21 dist serve "$M" --cert "$work/srv.pem" \
    --key "$work/srv.key" --port 0 --timeout 0
check "the error names the setting" err_has "timeout"
check "dist serve --max-per-client above --max-connections: 21" run 21 dist serve "$M" \
    --cert "$work/srv.pem" --key "$work/srv.key" --port 0 --max-connections 10 \
    --max-per-client 11
check "the error names both" err_has "max-per-client (11) is above max-connections (10)"

# ---- stop -----------------------------------------------------------------------------------
kill -TERM "$srv_pid"
wait "$srv_pid"
rc=$?
srv_pid=
check "SIGTERM exits 0" same "$rc" 0

echo "test_dist_serve: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
