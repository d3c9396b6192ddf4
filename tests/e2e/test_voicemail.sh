#!/usr/bin/env bash
# Voicemail through the untrusted provider, with the real pieces: kamailio diverts a call
# for an offline callee to `mikeysakke voicemail serve` (the key-less store), which keeps
# the INVITE and the caller's SRTP; the callee lists, fetches and plays it later with its
# own keystore (clock moved an hour on, far past the skew window): the audio is what the
# caller sent, bit for bit; played again, the message is flagged. The store holds no key
# (its memory and files are searched); another owner's password opens nothing; an auditor
# with the callee's extracted RSK opens the stored message, with another period's RSK not.
# Usage: bash test_voicemail.sh PATH_TO_mikeysakke   (MS_OPUS_ROUNDTRIP: helper program)
set -u
ms=${1:?usage: test_voicemail.sh PATH_TO_mikeysakke}
vectors=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/../lib/community.sh"
. "$here/../lib/kamailio.sh"
. "$here/../lib/calls.sh"
roundtrip=${MS_OPUS_ROUNDTRIP:?set MS_OPUS_ROUNDTRIP to the opus_roundtrip test program}


ALICE=sip:alice@example.org BOB=sip:bob@example.org CAROL=sip:carol@example.org
check "community: KMS and three devices" community_up "$ALICE" "$BOB" "$CAROL"
umask 077

# ---- the store: its own TLS certificate, the owners' passwords --------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=vm-test-ca \
    -keyout "$work/ca.key" -out "$work/ca.crt" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$work/vm.key" -out "$work/vm.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext"
openssl x509 -req -in "$work/vm.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 1 -extfile "$work/ext" -out "$work/vm.crt" >/dev/null 2>&1
printf 'bob mailbox password\n' >"$work/bob.vm"
printf 'carol mailbox password\n' >"$work/carol.vm"
check "voicemail add-user bob" run 0 voicemail add-user --credentials "$work/creds" \
    --uri "$BOB" --password-file "$work/bob.vm" --iterations 1000
check "voicemail add-user carol" run 0 voicemail add-user --credentials "$work/creds" \
    --uri "$CAROL" --password-file "$work/carol.vm" --iterations 1000
VMPORT=$(kam_free_port)
HPORT=$(kam_free_port)
"$ms" voicemail serve --dir "$work/store" --listen "127.0.0.1:$VMPORT" --https "127.0.0.1:$HPORT" \
    --tls-cert "$work/vm.crt" --tls-key "$work/vm.key" --credentials "$work/creds" \
    >"$work/vm.out" 2>"$work/vm.err" &
VMPID=$!
pids+=("$VMPID")
check "the store runs (mikeysakke voicemail serve)" wait_for "$work/vm.out" "SIP on"

# ---- the provider diverts a call for an offline Bob ----------------------------------------------
printf 'alice SIP password\n' >"$work/alice.sip"
mkdir -p "$work/kam"
printf '%s\n' "alice alice SIP password" "bob bob SIP password" | kam_write_users "$work/kam"
PORT=$(kam_free_port)
check "kamailio starts" kam_start "$work/kam" "$PORT" "sip:127.0.0.1:$VMPORT;transport=tcp" \
    -A 'FR_INV_TIMER=4000'
PROXY="sip:127.0.0.1:$PORT;transport=tcp"
python3 "$here/../lib/make_wav.py" "$work/msg.wav" 2 5
"$ms" call dial --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --register \
    --proxy "$PROXY" --auth-user alice --password-file "$work/alice.sip" --to "$BOB" \
    --play "$work/msg.wav" --record "$work/alice-heard.wav" --json >"$work/alice.out" 2>"$work/alice.err"
check "alice's call exits 0" same "$?" 0
check "alice's call was keyed to bob" grep -q '"event":"established".*"peer":"sip:bob@example.org"' "$work/alice.out"
check "the store kept the message" wait_for "$work/vm.out" "stored message"
check "and says the caller is unverified" grep -q "unverified" "$work/vm.out"

# ---- Bob, an hour later -----------------------------------------------------------------------------
LATER=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
owner() { # owner VERB ARGS...: as Bob, against the store
    local verb=$1
    shift
    run "${WANT:-0}" voicemail "$verb" --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" \
        --server "https://127.0.0.1:$HPORT" --cacert "$work/ca.crt" --password-file "$work/bob.vm" "$@"
}
check "bob lists his mailbox" owner list --json
check "one message" same "$(grep -c '"id"' "$work/out")" 1
ID=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' "$work/out")
check "the caller as the provider claimed it" grep -q "\"caller_claimed\":\"[^\"]*alice@example.org" "$work/out"
check "bob fetches it" owner fetch --id "$ID" --out "$work/msg.pcap"
check "fetched file is 0600" same "$(mode "$work/msg.pcap")" 600
check "bob plays it an hour later" owner play --id "$ID" --out "$work/bob-heard.wav" --now "$LATER" --json
check "verified caller alice" grep -q '"caller":"sip:alice@example.org"' "$work/out"
check "not played before" grep -q '"played_before":false' "$work/out"
"$roundtrip" "$work/msg.wav" "$work/msg-expected.wav" "$work/msg.opus.hex"
check "the message is what alice said, bit for bit" cmp "$work/msg-expected.wav" "$work/bob-heard.wav"
check "played again from the fetched file" run 0 voicemail play --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --in "$work/msg.pcap" --out "$work/again.wav" --now "$LATER"
check "is flagged as played before" grep -q "played before" "$work/out"
check "a message fetched by carol's device does not open (not addressed to her)" run 31 voicemail play \
    --keystore "$work/carol.ks" --passphrase-file "$work/carol.pass" --in "$work/msg.pcap" \
    --out "$work/carol.wav" --now "$LATER"
check "carol's password does not open bob's mailbox (63)" run 63 voicemail list \
    --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" --server "https://127.0.0.1:$HPORT" \
    --cacert "$work/ca.crt" --password-file "$work/carol.vm"
check "carol's own mailbox is empty" run 0 voicemail list --keystore "$work/carol.ks" \
    --passphrase-file "$work/carol.pass" --server "https://127.0.0.1:$HPORT" \
    --cacert "$work/ca.crt" --password-file "$work/carol.vm"
check "and says so" grep -q "^0 messages" "$work/out"
check "carol cannot fetch bob's message (65)" run 65 voicemail fetch --keystore "$work/carol.ks" \
    --passphrase-file "$work/carol.pass" --server "https://127.0.0.1:$HPORT" \
    --cacert "$work/ca.crt" --password-file "$work/carol.vm" --id "$ID" --out "$work/x.pcap"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other-ca \
    -keyout "$work/other.key" -out "$work/other.crt" >/dev/null 2>&1
check "a store whose certificate another CA signed: exit 62 (TLS)" run 62 voicemail list \
    --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" --server "https://127.0.0.1:$HPORT" \
    --cacert "$work/other.crt" --password-file "$work/bob.vm"
check "no store there: exit 61 (unreachable)" run 61 voicemail list --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --server "https://127.0.0.1:$(kam_free_port)" \
    --cacert "$work/ca.crt" --password-file "$work/bob.vm"
check "a malformed message id: exit 2" run 2 voicemail fetch --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --server "https://127.0.0.1:$HPORT" --cacert "$work/ca.crt" \
    --password-file "$work/bob.vm" --id ../../etc --out "$work/y.pcap"
check "play with both --in and --id: exit 21" run 21 voicemail play --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --in "$work/msg.pcap" --id "$ID" --out "$work/z.wav"
check "a file that is no capture: exit 72" run 72 voicemail play --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --in "$work/bob.vm" --out "$work/z.wav"
check "nothing written by the refusals" test ! -e "$work/y.pcap" -a ! -e "$work/z.wav"

# ---- the store holds no key ---------------------------------------------------------------------------
python3 - "$work/msg.pcap" "$work/msg.sdp" <<'EOF'
import re, sys
m = re.search(rb"a=key-mgmt:mikey [A-Za-z0-9+/=]+", open(sys.argv[1], "rb").read())
open(sys.argv[2], "wb").write(m.group(0) if m else b"")
EOF
T=$(date -u +%Y-%m-%dT%H:%M:%SZ)
check "the message's keys, by bob's device" run 0 mikey respond --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --in "$work/msg.sdp" --now "$T" --max-skew 3600
KEY=$(sed -n 's/^key = //p' "$work/out")
MKEY=$(sed -n 's/^cs [0-9]* master-key = //p' "$work/out" | head -1)
MSALT=$(sed -n 's/^cs [0-9]* master-salt = //p' "$work/out" | head -1)
check "keys recovered" test -n "$KEY" -a -n "$MKEY" -a -n "$MSALT"
check "the store's memory and files hold neither the PCK nor the SRTP key or salt" \
    python3 "$here/../lib/secret_scan.py" --pids "$(pgrep -d, -f "mikeysakke-voicemail serve --dir $work/store")" \
        --files "$work/store" -- "$KEY" "$MKEY" "${MSALT:0:24}"
check "nor kamailio's" python3 "$here/../lib/secret_scan.py" \
    --pids "$(pgrep -d, -f "kamailio.*$work/kam")" --files "$work/kam" -- "$KEY" "$MKEY" "${MSALT:0:24}"
check "no Opus frame of the message in the store" bash -c "python3 - '$work/msg.opus.hex' '$work/store' <<'EOF'
import os, sys
frames = [bytes.fromhex(l.strip())[:24] for l in open(sys.argv[1]) if len(l.strip()) >= 48]
for d, _, fs in os.walk(sys.argv[2]):
    for f in fs:
        data = open(os.path.join(d, f), 'rb').read()
        if any(fr in data for fr in frames):
            sys.exit(1)
EOF"

# ---- the auditor opens the voicemail with bob's extracted RSK, and only with it --------------------
PERIOD=$(grep '"event":"established"' "$work/alice.out" | sed -n 's/.*"period":\([0-9]*\).*/\1/p')
"$ms" kms cert --dir "$K" >"$work/cert.xml"
check "kms audit extract bob's RSK" audit_extract 0 "$K" "$ROLES" 1,2 "$work/bob.rsk" \
    --user "$BOB" --period current --reason "voicemail test"
check "audit decrypt opens the voicemail" run 0 audit decrypt --capture "$work/msg.pcap" \
    --rsk "$work/bob.rsk" --uri "$BOB" --period "$PERIOD" --kms "$work/cert.xml" --out "$work/audit"
check "one WAV, what alice said" cmp "$work/msg-expected.wav" "$work/audit/call-1-caller-to-callee.wav"
check "kms audit extract the next period's RSK" audit_extract 0 "$K" "$ROLES" 1,2 \
    "$work/bob-next.rsk" --user "$BOB" --period next --reason "voicemail test"
run 0 audit decrypt --capture "$work/msg.pcap" --rsk "$work/bob-next.rsk" --uri "$BOB" \
    --period "$((PERIOD + 1))" --kms "$work/cert.xml" --out "$work/audit-next"
check "the next period's RSK opens nothing" bash -c "! ls '$work/audit-next'/*.wav >/dev/null 2>&1"
check "and the report says why" grep -q "not openable" "$work/audit-next/report.json"

# ---- the keys a waiting message needs outlive their period ----------------------------------------
MUCH_LATER=$(date -u -d '+75 days' +%Y-%m-%dT%H:%M:%SZ)
check "purge two periods on (the message still waits)" run 0 user purge --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --now "$MUCH_LATER"
check "keeps the message's period" grep -q "^held period $PERIOD" "$work/out"
check "so it still plays then" run 0 voicemail play --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --in "$work/msg.pcap" --out "$work/late.wav" --now "$MUCH_LATER"
check "bob deletes the message" owner delete --id "$ID"
check "the mailbox is empty" owner list
check "says 0 messages" grep -q "^0 messages" "$work/out"
check "now purge removes that period" run 0 user purge --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --now "$MUCH_LATER"
check "purged it" grep -q "^purged period $PERIOD" "$work/out"
python3 - "$work/bob.ks/holds" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[-1] ^= 1
open(sys.argv[1], "wb").write(bytes(d))
EOF
check "an edited holds file is refused (59)" run 59 user purge --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass"

kill "$VMPID" 2>/dev/null
wait "$VMPID" 2>/dev/null
check "the store stops cleanly" grep -q "stopping" "$work/vm.out"

echo "test_voicemail: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
