#!/usr/bin/env bash
# `mikeysakke kms serve` on loopback with TLS, with curl as the device: the interface is
# plain TS 33.180 Annex D (POST a KmsRequest with "Authorization: Bearer <device>.<token>",
# get a KmsResponse that `mikeysakke user import` accepts). A throwaway CA and a server
# certificate for 127.0.0.1 are made with openssl. Checked: sealed start (503, /healthz
# "sealed"), a second server or agent for the same KMS refused, unseal / users / issue
# through the running server's agent socket, init / keyprov / certcache, each refusal's
# HTTP status (401 no or wrong token, 403 another user's URI, 400 malformed XML and an
# entity expansion attempt, 409 replay, 404 no keys for the period, 413 oversized body
# also chunked, 415 not XML, 429 rate limit), user URIs refused by `kms user add`, /metrics, `kms seal` (503 again), SIGTERM (sealed, exit 0, audited).
# The server is killed on exit. Usage: bash test_kms_serve.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_kms_serve.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"

K="$work/kms"
ROLES="$work/auditors" # kms init writes the role keys (operator, officers, auditors) here
SPID=
stop_all() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    [ -f "$K/agent.pid" ] && kill "$(cat "$K/agent.pid")" 2>/dev/null
    rm -rf "$work"
}
trap stop_all EXIT

for tool in curl openssl; do
    command -v $tool >/dev/null || { echo "SKIP: $tool not installed"; exit 0; }
done

KMS=kms.example.org
ALICE=tel:+447700900123
BOB=tel:+447700900456
P=/keymanagement/identity/v1
umask 077
printf 'correct horse battery staple\n' >"$work/pass"
printf 'alice keystore passphrase\n' >"$work/alice.pass"

# ---- a throwaway CA and a server certificate for 127.0.0.1 -------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=test CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$work/srv.key" -out "$work/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/ext"
openssl x509 -req -in "$work/srv.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -days 2 -extfile "$work/ext" -out "$work/srv.pem" 2>/dev/null
check "test certificates made" test -s "$work/srv.pem" -a -s "$work/srv.key"

check "kms init" run 0 kms init --dir "$K" --uri "$KMS" --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/auditors"

# ---- start sealed ----------------------------------------------------------------------------
# rate: 4 per second, burst 40: enough for the checks below, and a burst of 60 gets 429
"$ms" kms serve --dir "$K" --listen 127.0.0.1 --port 0 --cert "$work/srv.pem" \
    --key "$work/srv.key" --rate 4 --burst 40 --threads 2 2>"$work/serve.err" &
SPID=$!
PORT=
for _ in $(seq 1 300); do
    PORT=$(sed -n 's|^listening on https://127.0.0.1:\([0-9]*\).*|\1|p' "$work/serve.err")
    [ -n "$PORT" ] && break
    kill -0 $SPID 2>/dev/null || break
    sleep 0.1
done
check "kms serve prints where it listens" test -n "$PORT"
[ -n "$PORT" ] || { cat "$work/serve.err" >&2; exit 1; }
URL="https://127.0.0.1:$PORT"

# curl_post PATH BEARER BODYFILE -> status on stdout, body in $work/resp
curl_post() {
    local auth=()
    [ -n "$2" ] && auth=(-H "Authorization: Bearer $2")
    curl -sS --cacert "$work/ca.pem" -o "$work/resp" -w '%{http_code}' \
        -H 'Content-Type: application/xml' "${auth[@]}" --data-binary "@$3" "$URL$1"
}
# request USER PATH [TIME] -> a KmsRequest in $work/req (Time unique to the microsecond)
request() {
    local t=${3:-$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)}
    cat >"$work/req" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.1.0">
  <UserUri>$1</UserUri>
  <KmsUri>$KMS</KmsUri>
  <Time>$t</Time>
  <ClientReqUrl>$URL$2</ClientReqUrl>
</KmsRequest>
EOF
}
errcode() { sed -n 's:.*<ErrorCode>\(.*\)</ErrorCode>.*:\1:p' "$work/resp"; }

request "$ALICE" $P/init
check "sealed: init is 503" same "$(curl_post $P/init x.0 "$work/req")" 503
check "sealed: the answer is a KmsError (39)" same "$(errcode)" 39
health() { curl -s --cacert "$work/ca.pem" -w ' %{http_code}' "$URL/healthz" | tr -d '\n'; }
check "sealed: /healthz is 503 sealed" same "$(health)" "sealed 503"
curl -s --cacert "$work/ca.pem" "$URL/metrics" >"$work/metrics"
check "sealed: /metrics says so" grep -q '^mikeysakke_kms_sealed 1$' "$work/metrics"
check "a second kms serve for the same KMS is refused (45)" run 45 kms serve --dir "$K" \
    --port 0 --cert "$work/srv.pem" --key "$work/srv.key"
check "it says why" err_has "already runs"
printf '[kms]\ndir = %s\ncert = %s\nkey = %s\nport = 0\n' "$K" "$work/srv.pem" "$work/srv.key" >"$work/kms.conf"
check "--config: dir from the file (refused as a second server: 45)" run 45 kms serve --config "$work/kms.conf"
printf '[kms]\ndir = %s\ncolour = blue\n' "$K" >"$work/bad.conf"
check "--config: an unknown key is refused (66)" run 66 kms serve --config "$work/bad.conf"
check "status through the server's agent" run 0 kms status --dir "$K"
check "status: sealed, agent running" bash -c "grep -q '^State: sealed' '$work/out' &&
    grep -q '^Agent: running' '$work/out'"

# ---- unseal and set up through the running server -------------------------------------------
check "kms unseal talks to kms serve" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "/healthz is 200 when unsealed" same "$(health | sed 's/.* //')" 200
check "add Alice" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$ALICE"
check "add Bob" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$BOB"
check "a user URI with non-ASCII: refused (38)" run 38 kms user add --key "$ROLES/operator.key" --dir "$K" \
    --user "$(printf 'sip:alic\303\251@example.org')"
check "the error names the octet and says to percent-encode it" \
    err_has "non-ASCII octet 0xC3 at position 9: percent-encode it (%C3)"
check "a user URI without a scheme: refused (38)" run 38 kms user add --key "$ROLES/operator.key" --dir "$K" \
    --user alice@example.org
check "the error says the scheme is missing" err_has "no scheme"
check "enrol Alice's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$ALICE" \
    --device alice-phone --out "$work/alice.enrol"
check "enrol Bob's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$BOB" --device bob-phone \
    --out "$work/bob.enrol"
check "issue the current period" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current

# the device's token: HMAC-SHA256(InK, "mikeysakke-device-token:" || device ID), hex
token() {
    local ink
    ink=$(grep -o 'InK>[0-9A-Fa-f]*<' "$2" | head -1 | sed 's/^InK>//; s/<$//')
    printf 'mikeysakke-device-token:%s' "$1" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$ink" | sed 's/^.*= //'
}
TA="alice-phone.$(token alice-phone "$work/alice.enrol")"
TB="bob-phone.$(token bob-phone "$work/bob.enrol")"
check "token derived" same "${#TA}" 76

# ---- the happy paths -----------------------------------------------------------------------------
request "$ALICE" $P/init
check "init: 200" same "$(curl_post $P/init "$TA" "$work/req")" 200
check "init: KmsInit with the certificate" grep -q '<KmsInit' "$work/resp"
request "$ALICE" $P/keyprov
check "keyprov: 200" same "$(curl_post $P/keyprov "$TA" "$work/req")" 200
cp "$work/resp" "$work/alice.pkg"
check "keyprov: a KmsKeyProv" grep -q '<KmsKeyProv' "$work/alice.pkg"
check "keyprov: no clear key" bash -c "! grep -q '$(sed -n 's:.*<TrK>\(.*\)</TrK>.*:\1:p' "$work/alice.enrol")' '$work/alice.pkg'"
check "keyprov: in the audit log first" bash -c "grep 'keyprov' '$K/audit.log' | grep -q alice-phone"
check "alice: user init" run 0 user init --keystore "$work/alice.ks" \
    --enrolment "$work/alice.enrol" --passphrase-file "$work/alice.pass" --scrypt-cost 10
check "alice: user import accepts the served package" run 0 user import \
    --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --in "$work/alice.pkg"
# the provisioning client against the real KMS
printf 'bob keystore passphrase\n' >"$work/bob.pass"
chmod 600 "$work/bob.pass"
check "bob: user init" run 0 user init --keystore "$work/bob.ks" \
    --enrolment "$work/bob.enrol" --passphrase-file "$work/bob.pass" --scrypt-cost 10
check "bob: user fetch from kms serve" run 0 user fetch --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --url "$URL" --cacert "$work/ca.pem" --retries 2
check "bob: fetch stored the current period" grep -q 'stored' "$work/out"
check "bob: the fetch is in the audit log" bash -c "grep 'keyprov' '$K/audit.log' | grep -q bob-phone"
check "fetch from a closed port: unreachable (61)" run 61 user fetch --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --url "https://127.0.0.1:1" --cacert "$work/ca.pem" \
    --retries 0
NOW=$(printf '%08X00000000' $(($(date -u +%s) + 2208988800)))
ENC_A='tel%3A%2B447700900123'
request "$ALICE" "$P/keyprov/$ENC_A/$NOW"
check "keyprov/<user>/<time>: 200" same "$(curl_post "$P/keyprov/$ENC_A/$NOW" "$TA" "$work/req")" 200
request "$ALICE" $P/certcache
check "certcache: 200" same "$(curl_post $P/certcache "$TA" "$work/req")" 200
check "certcache: KmsCertCache with the certificate" bash -c \
    "grep -q '<KmsCertCache' '$work/resp' && grep -q '<KmsUri>$KMS</KmsUri>' '$work/resp'"

# ---- refusals ------------------------------------------------------------------------------------
request "$ALICE" $P/keyprov
check "no token: 401" same "$(curl_post $P/keyprov "" "$work/req")" 401
check "no token: KmsError 63" same "$(errcode)" 63
request "$ALICE" $P/keyprov
check "wrong token: 401" same "$(curl_post $P/keyprov "$(flip "$TA" 20)" "$work/req")" 401
request "$ALICE" $P/keyprov
check "Bob's token for Alice's request: 403" same "$(curl_post $P/keyprov "$TB" "$work/req")" 403
request "$BOB" $P/keyprov
check "Alice asking for Bob's keys: 403" same "$(curl_post $P/keyprov "$TA" "$work/req")" 403
ENC_B='tel%3A%2B447700900456'
request "$ALICE" "$P/keyprov/$ENC_B"
check "Bob's URI in the URL: 403" same "$(curl_post "$P/keyprov/$ENC_B" "$TA" "$work/req")" 403
printf '<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0"><UserUri>' >"$work/bad"
check "malformed XML: 400" same "$(curl_post $P/keyprov "$TA" "$work/bad")" 400
check "malformed XML: KmsError 50" same "$(errcode)" 50
cat >"$work/lol" <<EOF
<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0"><UserUri>&lol3;</UserUri>
<KmsUri>$KMS</KmsUri><Time>$(date -u +%Y-%m-%dT%H:%M:%SZ)</Time>
<ClientReqUrl>$URL$P/keyprov</ClientReqUrl></KmsRequest>
EOF
check "entity expansion attempt: 400" same "$(curl_post $P/keyprov "$TA" "$work/lol")" 400
request "$ALICE" $P/keyprov
check "a fresh request: 200" same "$(curl_post $P/keyprov "$TA" "$work/req")" 200
check "the same request again (replay): 409" same "$(curl_post $P/keyprov "$TA" "$work/req")" 409
request "$ALICE" $P/keyprov 2001-01-01T00:00:00Z
check "a stale Time: 409" same "$(curl_post $P/keyprov "$TA" "$work/req")" 409
NEXT=$(printf '%08X00000000' $(($(date -u +%s) + 2208988800 + 40 * 86400)))
request "$ALICE" "$P/keyprov/$ENC_A/$NEXT"
check "no keys issued for next month: 404" same "$(curl_post "$P/keyprov/$ENC_A/$NEXT" "$TA" "$work/req")" 404
check "no keys: KmsError 60" same "$(errcode)" 60
head -c 70000 /dev/zero | tr '\0' ' ' >"$work/big"
check "oversized body: 413" same "$(curl_post $P/keyprov "$TA" "$work/big")" 413
head -c 200000 /dev/zero | tr '\0' ' ' >"$work/big"
check "oversized chunked body: 413, not a reset" same "$(curl -sS --cacert "$work/ca.pem" \
    -o "$work/resp" -w '%{http_code}' -H 'Content-Type: application/xml' \
    -H 'Transfer-Encoding: chunked' -H "Authorization: Bearer $TA" \
    --data-binary "@$work/big" "$URL$P/keyprov" 2>"$work/err")" 413
for ct in application/json text/plain; do
    request "$ALICE" $P/keyprov
    check "a KmsRequest sent as $ct: 415" same "$(curl -sS --cacert "$work/ca.pem" \
        -o "$work/resp" -w '%{http_code}' -H "Content-Type: $ct" \
        -H "Authorization: Bearer $TA" --data-binary "@$work/req" "$URL$P/keyprov")" 415
done
request "$ALICE" $P/keyprov
check "GET: 405" same "$(curl -s --cacert "$work/ca.pem" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $TA" "$URL$P/keyprov")" 405
check "plain HTTP is not answered" bash -c "! curl -s -m 5 -o /dev/null 'http://127.0.0.1:$PORT/healthz' ||
    [ \"\$(curl -s -m 5 -o /dev/null -w '%{http_code}' 'http://127.0.0.1:$PORT/healthz')\" != 200 ]"
check "TLS: an untrusted server is refused by the client" bash -c \
    "! curl -s -o /dev/null '$URL/healthz'"

# ---- rate limit -----------------------------------------------------------------------------------
# 100 requests at once over 16 connections: far more than the burst of 40 plus what
# 4 per second refill while they run, however slow the build (ASan)
urls=()
for _ in $(seq 1 100); do urls+=(-o /dev/null "$URL$P/init"); done
codes=$(curl -s -Z --parallel-max 16 --cacert "$work/ca.pem" -X POST \
    -H 'Content-Type: application/xml' -w '%{http_code}\n' "${urls[@]}" | sort | uniq -c)
check "a burst is rate-limited: 429" bash -c "grep -q ' 429$' <<<'$codes'"

curl -s --cacert "$work/ca.pem" "$URL/metrics" >"$work/metrics"
check "metrics: unsealed" grep -q '^mikeysakke_kms_sealed 0$' "$work/metrics"
# three by curl above, one by Bob's user fetch (its next-period request is a 404)
check "metrics: keyprov answers counted" grep -q '^mikeysakke_kms_answers_total{resource="keyprov"} 4$' "$work/metrics"
check "metrics: refusals by reason" grep -q '^mikeysakke_kms_refused_total{reason="replay"} 2$' "$work/metrics"

# ---- seal, then stop ------------------------------------------------------------------------------
check "kms seal through the server" run 0 kms seal --dir "$K"
sleep 2 # the rate limit refills
request "$ALICE" $P/keyprov
check "sealed again: 503" same "$(curl_post $P/keyprov "$TA" "$work/req")" 503
check "unseal again without a restart" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
before=$(grep -c 'event=seal ' "$K/audit.log")
kill -TERM $SPID
wait $SPID
rc=$?
SPID=
check "SIGTERM: exit 0" same "$rc" 0
check "SIGTERM: seal audited" same "$(grep -c 'event=seal ' "$K/audit.log")" "$((before + 1))"
check "SIGTERM: socket gone" test ! -e "$K/agent.sock"
check "audit log verifies" run 0 kms audit verify --dir "$K"
# Nothing secret in what the server printed or logged: no TrK, InK or device token.
TRK=$(sed -n 's:.*<TrK>\(.*\)</TrK>.*:\1:p' "$work/alice.enrol")
INK=$(sed -n 's:.*<InK>\(.*\)</InK>.*:\1:p' "$work/alice.enrol")
check "the enrolment keys were found" test -n "$TRK" -a -n "$INK"
check "no key or token in the server's output or the audit log" bash -c \
    "! grep -qiE '$TRK|$INK|${TA#*.}' '$work/serve.err' '$K/audit.log'"

echo "test_kms_serve: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
