#!/usr/bin/env bash
# A call in an RFC 6509 community (monthly tel URI identifiers, plain MIKEY-SAKKE with the
# RFC 6509 profile) through kamailio: phones registered as sip:+44...;user=phone, keyed
# by their tel URIs; audio both ways bit-exact; the peers as MIKEY verified them are the
# tel URIs; the suite is what RFC 6509's security policy names (AES_CM_128_HMAC_SHA1_80).
# Usage: bash test_call_rfc6509.sh PATH_TO_mikeysakke   (MS_OPUS_ROUNDTRIP: helper program)
set -u
ms=${1:?usage: test_call_rfc6509.sh PATH_TO_mikeysakke}
vectors=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/../lib/community.sh"
. "$here/../lib/kamailio.sh"
. "$here/../lib/calls.sh"
roundtrip=${MS_OPUS_ROUNDTRIP:?set MS_OPUS_ROUNDTRIP to the opus_roundtrip test program}

ALICE=tel:+447700900123 BOB=tel:+447700900456
check "an RFC 6509 community: KMS and two devices" env KMS_SCHEME=rfc6509 bash -c \
    ". '$here/../lib/community.sh'; ms='$ms' work='$work' K='$work/kms'; community_up $ALICE $BOB"
umask 077
mkdir -p "$work/kam"
printf 'alice pw\n' >"$work/447700900123.sip"
printf 'bob pw\n' >"$work/447700900456.sip"
printf '%s\n' "+447700900123 alice pw" "+447700900456 bob pw" | kam_write_users "$work/kam"
PORT=$(kam_free_port)
check "kamailio starts" kam_start "$work/kam" "$PORT" "sip:127.0.0.1:1;transport=tcp"
PROXY="sip:127.0.0.1:$PORT;transport=tcp"
phone() { # phone NUMBER VERB ARGS...
    local n=$1 verb=$2
    shift 2
    "$ms" call "$verb" --keystore "$work/$n.ks" --passphrase-file "$work/$n.pass" \
        --uri "sip:+$n@example.org;user=phone" --register --proxy "$PROXY" --auth-user "+$n" \
        --password-file "$work/$n.sip" --json "$@"
}
python3 "$here/../lib/make_wav.py" "$work/a.wav" 1.5 3
python3 "$here/../lib/make_wav.py" "$work/b.wav" 1 4
phone 447700900456 answer --play "$work/b.wav" --record "$work/b-heard.wav" --calls 1 \
    >"$work/bob.out" 2>"$work/bob.err" &
BOBPID=$!
pids+=("$BOBPID")
wait_for "$work/bob.out" registered
check "bob registers" grep -q '"event":"registered","incoming":false,"peer":"sip:+447700900456' "$work/bob.out"
phone 447700900123 dial --to "sip:+447700900456@example.org;user=phone" --play "$work/a.wav" \
    --record "$work/a-heard.wav" >"$work/alice.out" 2>"$work/alice.err"
check "alice's call exits 0" same "$?" 0
wait "$BOBPID"
check "bob's answer exits 0" same "$?" 0
check "alice verified bob's tel URI" grep -q '"event":"established".*"peer":"tel:+447700900456"' "$work/alice.out"
check "bob verified alice's tel URI" grep -q '"event":"established".*"peer":"tel:+447700900123"' "$work/bob.out"
"$roundtrip" "$work/a.wav" "$work/a-expected.wav"
"$roundtrip" "$work/b.wav" "$work/b-expected.wav"
check "the suite of RFC 6509's security policy" grep -q '"suite":"AES_CM_128_HMAC_SHA1_80"' "$work/bob.out"
check "bob heard alice bit-exact" cmp "$work/a-expected.wav" "$work/b-heard.wav"
check "alice heard bob bit-exact" cmp "$work/b-expected.wav" "$work/a-heard.wav"
echo "test_call_rfc6509: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
