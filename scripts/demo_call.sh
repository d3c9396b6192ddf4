#!/usr/bin/env bash
# The end of `make demo`: what MIKEY-SAKKE is for. A 3GPP community (KMS and two phones'
# keystores) made with the real commands, kamailio on loopback as the untrusted SIP
# provider, tcpdump on its wire; Alice calls Bob (Opus in SRTP, keyed by one signed
# I_MESSAGE), then leaves a voicemail while Bob is offline; Bob plays it later; two
# auditors release Bob's key for this month and the auditor decrypts the captured call.
# Everything runs in a temporary folder that is removed afterwards.
set -euo pipefail
ms=$(cd "$(dirname "${1:-build/mikeysakke}")" && pwd)/$(basename "${1:-build/mikeysakke}")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
umask 077
. "$root/tests/lib/community.sh"
. "$root/tests/lib/kamailio.sh"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/kam/kamailio.main.pid" ] && kam_stop "$work/kam" >/dev/null 2>&1
    community_down
    rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }
wait_for() { for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; cat "$1" >&2; die "$3"; }
fp() { sha256sum "$1" | cut -c1-16; }

ALICE=sip:alice@example.org BOB=sip:bob@example.org
step "Phones: a 3GPP community (hashed UIDs, 30-day periods); Alice's and Bob's keystores"
community_up "$ALICE" "$BOB" || die "community set-up failed: $(tail -3 "$work/community.log")"
"$ms" user status --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" | sed -n '1p;5,6p' | sed 's/^/  bob: /'

step "Provider: kamailio (registrar and proxy; holds no key), voicemail store (holds no key)"
mkdir -p "$work/kam"
printf 'alice SIP password\n' >"$work/alice.sip"
printf 'bob SIP password\n' >"$work/bob.sip"
printf '%s\n' "alice alice SIP password" "bob bob SIP password" | kam_write_users "$work/kam"
PORT=$(kam_free_port) VMPORT=$(kam_free_port) HPORT=$(kam_free_port)
kam_start "$work/kam" "$PORT" "sip:127.0.0.1:$VMPORT;transport=tcp" -A 'FR_INV_TIMER=4000' ||
    die "kamailio does not start"
PROXY="sip:127.0.0.1:$PORT;transport=tcp"
echo "  kamailio on $PROXY; calls nobody answers go to sip:127.0.0.1:$VMPORT"
q() { "$@" >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; die "openssl failed"; }; }
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=demo-ca \
    -keyout "$work/ca.key" -out "$work/ca.crt"
q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$work/vm.key" -out "$work/vm.csr"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext"
q openssl x509 -req -in "$work/vm.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 1 -extfile "$work/ext" -out "$work/vm.crt"
printf 'bob mailbox password\n' >"$work/bob.vm"
"$ms" voicemail add-user --credentials "$work/creds" --uri "$BOB" --password-file "$work/bob.vm" \
    --iterations 10000 | sed 's/^/  /'
"$ms" voicemail serve --dir "$work/store" --listen "127.0.0.1:$VMPORT" --https "127.0.0.1:$HPORT" \
    --tls-cert "$work/vm.crt" --tls-key "$work/vm.key" --credentials "$work/creds" >"$work/vm.out" 2>&1 &
pids+=($!)
wait_for "$work/vm.out" "SIP on" "the voicemail store does not start"
capture=0
if [ "$(id -u)" = 0 ] && command -v tcpdump >/dev/null; then
    tcpdump -i lo -U -B 32768 -s 0 -w "$work/wire.pcap" "tcp port $PORT or udp" >"$work/tcpdump.log" 2>&1 &
    tcpdump_pid=$!
    pids+=($tcpdump_pid)
    wait_for "$work/tcpdump.log" "listening on" "tcpdump does not start"
    capture=1
    echo "  tcpdump records the provider's wire (as the provider, or a wiretap, could)"
fi

phone() {
    local n=$1 verb=$2
    shift 2
    "$ms" call "$verb" --keystore "$work/$n.ks" --passphrase-file "$work/$n.pass" --register \
        --proxy "$PROXY" --auth-user "$n" --password-file "$work/$n.sip" "$@"
}
python3 "$root/tests/lib/make_wav.py" "$work/alice-says.wav" 2 1
python3 "$root/tests/lib/make_wav.py" "$work/bob-says.wav" 1 2

step "Call: Bob answers, Alice dials sip:bob@example.org through kamailio (2 s of audio each way)"
phone bob answer --play "$work/bob-says.wav" --record "$work/bob-heard.wav" --calls 1 \
    >"$work/bob.out" 2>&1 &
bob=$!
pids+=($bob)
wait_for "$work/bob.out" "registered" "Bob does not register"
phone alice dial --to "$BOB" --play "$work/alice-says.wav" --record "$work/alice-heard.wav" |
    sed 's/^/  alice: /'
wait "$bob" || die "Bob's phone failed: $(cat "$work/bob.out")"
sed 's/^/  bob:   /' "$work/bob.out"
echo "  what Bob heard: $(fp "$work/bob-heard.wav")...  what Alice heard: $(fp "$work/alice-heard.wav")..."

step "Voicemail: Bob is offline; kamailio diverts Alice's call to the store"
python3 "$root/tests/lib/make_wav.py" "$work/message.wav" 2 5
phone alice dial --to "$BOB" --play "$work/message.wav" | sed 's/^/  alice: /'
wait_for "$work/vm.out" "stored message" "nothing stored"
grep "stored message" "$work/vm.out" | sed 's/^/  /'
echo "Bob, later, with his own keystore:"
"$ms" voicemail list --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" \
    --server "https://127.0.0.1:$HPORT" --cacert "$work/ca.crt" --password-file "$work/bob.vm" |
    sed 's/^/  /'
id=$("$ms" voicemail list --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" \
    --server "https://127.0.0.1:$HPORT" --cacert "$work/ca.crt" --password-file "$work/bob.vm" \
    --json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' | head -1)
"$ms" voicemail play --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" \
    --server "https://127.0.0.1:$HPORT" --cacert "$work/ca.crt" --password-file "$work/bob.vm" \
    --id "$id" --out "$work/voicemail.wav" | sed 's/^/  /'

if [ "$capture" = 1 ]; then
    sleep 0.3
    kill "$tcpdump_pid" 2>/dev/null || true
    wait "$tcpdump_pid" 2>/dev/null || true
    step "Audit: two auditors release Bob's key for this period; the capture is decrypted"
    "$ms" kms audit request --dir "$K" --user "$BOB" --period current --reason "demo: warrant 2026/7" \
        --out "$work/extract.req" >/dev/null
    for a in 1 2; do
        "$ms" kms audit approve --request "$work/extract.req" --key "$work/auditors/auditor-$a.key" \
            --out "$work/extract.ok$a" >/dev/null
    done
    "$ms" kms audit extract --dir "$K" --request "$work/extract.req" \
        --approval "$work/extract.ok1,$work/extract.ok2" --out "$work/bob.rsk" | sed 's/^/  /'
    "$ms" kms cert --dir "$K" >"$work/cert.xml"
    period=$(grep -o 'key period [0-9]*' "$work/bob.out" | head -1 | cut -d' ' -f3)
    "$ms" audit decrypt --capture "$work/wire.pcap" --rsk "$work/bob.rsk" --uri "$BOB" \
        --period "$period" --kms "$work/cert.xml" --out "$work/audit" | sed 's/^/  /'
    cmp -s "$work/audit/call-1-caller-to-callee.wav" "$work/bob-heard.wav" ||
        die "the auditor's copy of Alice's side differs from what Bob heard"
    echo "  the auditor hears exactly what Bob heard: $(fp "$work/audit/call-1-caller-to-callee.wav")..."
    echo "  the provider's capture ($(wc -c <"$work/wire.pcap") octets) shows who called whom and when; the media only as SRTP"
fi
echo
echo "demo: calls OK"
