#!/usr/bin/env bash
# A call with keys from a threshold KMS (docs/threshold.md): a (3,1) KMS makes this month's
# batch for alice and bob; each device is enrolled at two servers, `kms serve` runs on all
# three, and `user fetch` combines and validates each device's keys from two of them; then
# `call answer` and `call dial` through kamailio (the untrusted provider) exchange Opus
# over SRTP keyed by MIKEY-SAKKE with those keys, and each hears the other bit-exact.
# Usage: bash test_threshold_call.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_call.sh PATH_TO_mikeysakke}
vectors=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/threshold_lib.sh"
. "$here/../lib/kamailio.sh"
roundtrip=${MS_OPUS_ROUNDTRIP:?set MS_OPUS_ROUNDTRIP to the opus_roundtrip test program}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
      [ -f "$work/kam/kamailio.main.pid" ] && kam_stop "$work/kam" >/dev/null 2>&1; tk_cleanup' EXIT
wait_for() {
    for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "  no '$2' in $1:" >&2
    sed 's/^/    /' "$1" >&2
    return 1
}

period=$(date -u +%Y-%m) # the keys a call uses are this month's
# RFC 6509 identities are tel URIs; the phones register as sip:+NUMBER@example.org;user=phone
ALICE=tel:+447700900123 BOB=tel:+447700900456
printf '%s\n%s\n' "$ALICE" "$BOB" >"$work/users"
printf 'device passphrase\n' >"$work/upass"
chmod 600 "$work/upass"

# ---- the threshold KMS, the batch, the devices ---------------------------------------------
check "keygen of three servers" tk_keygen s 3 1
tk_ceremony s "1 2 3" 120
check "the ceremony" tk_all_ok s init "1 2 3"
tk_batch s "1 2 3" "$period" "$work/users" 300
check "the batch of $period" tk_all_ok s "batch-$period" "1 2 3"
for who in alice bob; do
    uri=$ALICE
    [ $who = bob ] && uri=$BOB
    check "$who: user threshold-init" run 0 user threshold-init --keystore "$work/$who.ks" \
        --user "$uri" --device-id "$who-phone" --peers "$work/s-peers.txt" \
        --public "$work/s1/public.txt" --out "$work/$who.dev" --passphrase-file "$work/upass" \
        --scrypt-cost 10
done
# alice at servers 1 and 2, bob at servers 2 and 3: each fetch needs both of its servers
enrol() { run 0 kms threshold enrol --dir "$work/s$1" --user "$2" --device-id "$3-phone" \
    --device-pubs "$work/$3.dev" --passphrase-file "$work/pass"; }
check "alice enrolled at server 1" enrol 1 "$ALICE" alice
check "alice enrolled at server 2" enrol 2 "$ALICE" alice
check "bob enrolled at server 2" enrol 2 "$BOB" bob
check "bob enrolled at server 3" enrol 3 "$BOB" bob
serve() {
    local i=$1 k
    "$ms" kms serve --dir "$work/s$i" --passphrase-file "$work/pass" >"$work/serve-out$i" \
        2>"$work/serve-err$i" &
    pids+=($!)
    for ((k = 0; k < 300; k++)); do
        grep -q 'serving on port' "$work/serve-out$i" 2>/dev/null && return 0
        sleep 0.1
    done
    sed "s/^/  serve s$i: /" "$work/serve-err$i" >&2
    return 1
}
for i in 1 2 3; do check "kms serve at server $i" serve $i; done
for who in alice bob; do
    check "$who fetches and combines this month's keys" run 0 user fetch \
        --keystore "$work/$who.ks" --passphrase-file "$work/upass" --period "$period" \
        --order listed --timeout 5
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done # the KMS is not needed for calls
pids=()

# ---- the provider and the call ----------------------------------------------------------------
umask 077
for u in alice bob; do printf '%s SIP password\n' "$u" >"$work/$u.sip"; done
mkdir -p "$work/kam"
printf '%s\n' "+447700900123 alice SIP password" "+447700900456 bob SIP password" |
    kam_write_users "$work/kam"
PORT=$(kam_free_port)
VMPORT=$(kam_free_port)
check "kamailio starts" kam_start "$work/kam" "$PORT" "sip:127.0.0.1:$VMPORT;transport=tcp" \
    -A 'FR_INV_TIMER=4000'
PROXY="sip:127.0.0.1:$PORT;transport=tcp"
python3 "$here/../lib/make_wav.py" "$work/alice.wav" 2 1
python3 "$here/../lib/make_wav.py" "$work/bob.wav" 1 2
phone() { # phone NAME VERB ARGS...
    local n=$1 verb=$2 num=447700900123
    shift 2
    [ "$n" = bob ] && num=447700900456
    "$ms" call "$verb" --keystore "$work/$n.ks" --passphrase-file "$work/upass" \
        --uri "sip:+$num@example.org;user=phone" --register --proxy "$PROXY" \
        --auth-user "+$num" --password-file "$work/$n.sip" --json "$@"
}
phone bob answer --play "$work/bob.wav" --record "$work/bob-heard.wav" --calls 1 \
    >"$work/bob.out" 2>"$work/bob.err" &
BOBPID=$!
pids+=("$BOBPID")
check "bob registers" wait_for "$work/bob.out" '"event":"registered"'
phone alice dial --to "sip:+447700900456@example.org;user=phone" --play "$work/alice.wav" --record "$work/alice-heard.wav" \
    >"$work/alice.out" 2>"$work/alice.err"
check "alice's call exits 0" same "$?" 0
[ -s "$work/alice.err" ] && sed 's/^/  alice: /' "$work/alice.err" >&2
wait "$BOBPID"
check "bob's answer exits 0" same "$?" 0
check "alice: established, verified bob" grep -q '"event":"established".*"peer":"tel:+447700900456"' "$work/alice.out"
check "bob: established, verified alice" grep -q '"event":"established".*"peer":"tel:+447700900123"' "$work/bob.out"
"$roundtrip" "$work/alice.wav" "$work/alice-expected.wav" "$work/alice.opus.hex"
"$roundtrip" "$work/bob.wav" "$work/bob-expected.wav" "$work/bob.opus.hex"
check "bob heard alice bit-exact" cmp "$work/alice-expected.wav" "$work/bob-heard.wav"
check "alice heard bob bit-exact" cmp "$work/bob-expected.wav" "$work/alice-heard.wav"
check "kamailio logged no error" test -z "$(kam_errors "$work/kam")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
