#!/usr/bin/env bash
# A five-member group call through an untrusted provider (kamailio) and the key-less
# conference relay (mikeysakke-relay), with the real pieces: a KMS, a GMS and five devices
# made by the real commands; the GMS creates the group, each member receives its group key
# and the signed roster with `group join` (a SIP MESSAGE through kamailio), then each
# member `call dial --group` with a WAV in and WAVs out, the roster and key from its store.
# Checks:
#   - every member's audio reaches every other member decoded bit-exactly (equal to a
#     local Opus encode/decode of what was sent), and no packet failed authentication;
#   - the relay saw the joins and leaves and forwarded what the members sent;
#   - the relay's and kamailio's memory, logs and files hold neither a GMK nor any
#     member's SRTP master key or salt;
#   - the relay refuses an offer of unencrypted media (488);
#   - after `group remove` (a new key, not sent to the removed member) the removed member
#     opens no packet of the others and nobody hears it, while the others hear each other
#     bit-exactly; a member still sending under the previous key is heard (the hand-over);
#   - `audit decrypt` with one member's RSK finds that member's two group keys in the
#     provider's capture (the SIP MESSAGEs) and opens every sender's stream bit-exactly.
# Usage: bash test_conference.sh PATH_TO_mikeysakke   (MS_OPUS_ROUNDTRIP, MS_GROUP_KEYS)
set -u
ms=${1:?usage: test_conference.sh PATH_TO_mikeysakke}
vectors=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/../lib/community.sh"
. "$here/../lib/kamailio.sh"
. "$here/../lib/calls.sh"
roundtrip=${MS_OPUS_ROUNDTRIP:?set MS_OPUS_ROUNDTRIP to the opus_roundtrip test program}
dumpkeys=${MS_GROUP_KEYS:?set MS_GROUP_KEYS to the group_keys_dump test program}

NAMES="alice bob carol dave erin"
URIS=""
for n in $NAMES; do URIS="$URIS${URIS:+,}sip:$n@example.org"; done
GROUP=sip:team@example.org
GMS=sip:gms@example.org
# shellcheck disable=SC2086
check "community: KMS, the GMS, five devices, this period's keys" community_up "$GMS" ${URIS//,/ }

# ---- the provider and the relay ------------------------------------------------------------
umask 077
for u in $NAMES team; do printf '%s SIP password\n' "$u" >"$work/$u.sip"; done
mkdir -p "$work/kam"
for u in $NAMES team; do echo "$u $u SIP password"; done | kam_write_users "$work/kam"
PORT=$(kam_free_port)
VMPORT=$(kam_free_port)
check "kamailio starts" kam_start "$work/kam" "$PORT" "sip:127.0.0.1:$VMPORT;transport=tcp"
PROXY="sip:127.0.0.1:$PORT;transport=tcp"
# the provider's wire, for the auditor at the end
tcpdump -i lo -U -B 32768 -s 0 -w "$work/wire.pcap" "tcp port $PORT or udp" >"$work/tcpdump.log" 2>&1 &
TCPDUMP=$!
pids+=("$TCPDUMP")
for _ in $(seq 100); do grep -q 'listening on' "$work/tcpdump.log" && break; sleep 0.05; done
check "tcpdump listens on lo" grep -q 'listening on' "$work/tcpdump.log"
mkdir -p "$work/relay"
(cd "$work/relay" && exec "$ms" relay --listen 127.0.0.1:0 --register --proxy "$PROXY" \
    --aor "$GROUP" --auth-user team --password-file "$work/team.sip" --media-timeout 20 \
    >"$work/relay/relay.log" 2>&1) &
RELAY=$!
pids+=("$RELAY")
check "the relay registers the group's URI" wait_for "$work/relay/relay.log" 'registration: 200'
check "the relay is its own program" grep -q mikeysakke-relay "/proc/$RELAY/cmdline"

# ---- the group: the GMS makes it, the members receive their keys through the provider ------
gms() { # gms VERB ARGS...: the GMS command, stdout in $work/gms.out
    "$ms" group "$1" --name "$GROUP" --gms-keystore "$work/gms.ks" \
        --passphrase-file "$work/gms.pass" "${@:2}" >"$work/gms.out" 2>"$work/gms.err"
}
declare -A JOINPID
join() { # join NAME: a registered member waiting for one group key (background)
    "$ms" group join --keystore "$work/$1.ks" --passphrase-file "$work/$1.pass" \
        --register --proxy "$PROXY" --auth-user "$1" --password-file "$work/$1.sip" \
        --messages 1 --max-seconds 20 >"$work/$1-join.out" 2>"$work/$1-join.err" &
    JOINPID[$1]=$!
    pids+=("$!")
}
joined() { # joined NAME GMK-ID: the member's join exited 0 with that key
    wait "${JOINPID[$1]}" && grep -q "^group $GROUP: GMK-ID $2 from $GMS" "$work/$1-join.out"
}
check "group create" gms create --members "$URIS"
GMK1=$(sed -n 's/.*GMK-ID \([0-9A-F]\{8\}\).*/\1/p' "$work/gms.out" | head -1)
check "  a GMK-ID" test -n "$GMK1"
for n in $NAMES; do join "$n"; done
for n in $NAMES; do check "$n registers to receive" wait_for "$work/$n-join.out" '^registered'; done
check "group send delivers to the five" gms send --proxy "$PROXY"
check "  five answered 200" same "$(grep -c "^delivered GMK-ID $GMK1 to .*: 200" "$work/gms.out")" 5
for n in $NAMES; do check "$n: group join stored GMK-ID $GMK1 and the roster" joined "$n" "$GMK1"; done

# what the relay and the provider must never see
# shellcheck disable=SC2086
"$dumpkeys" "$work/alice.ks" "$work/alice.pass" "$GROUP" 0 AEAD_AES_128_GCM ${URIS//,/ } >"$work/keys1.txt"
check "alice's store: the GMK and five members' SRTP keys, all different" \
    same "$(tail -n +2 "$work/keys1.txt" | cut -d' ' -f1 | sort -u | wc -l)" 5
GMK=$(head -1 "$work/keys1.txt")
# shellcheck disable=SC2086
"$dumpkeys" "$work/bob.ks" "$work/bob.pass" "$GROUP" 0 AEAD_AES_128_GCM ${URIS//,/ } >"$work/keys1b.txt"
check "bob's store holds the same group key" cmp "$work/keys1.txt" "$work/keys1b.txt"

# ---- five members talk ------------------------------------------------------------------------
member() { # member NAME ARGS... &: a registered member dialling the group (in the
    # background only: exec, so that $! is the member itself and a signal reaches it)
    local n=$1
    shift
    exec "$ms" call dial --keystore "$work/$n.ks" --passphrase-file "$work/$n.pass" \
        --register --proxy "$PROXY" --auth-user "$n" --password-file "$work/$n.sip" \
        --group "$GROUP" --json "$@"
}
seed=1
mpids=()
for n in $NAMES; do
    python3 "$here/../lib/make_wav.py" "$work/$n.wav" 2 "$seed"
    "$roundtrip" "$work/$n.wav" "$work/$n-expected.wav"
    seed=$((seed + 1))
    mkdir -p "$work/$n-heard"
    member "$n" --play "$work/$n.wav" --record "$work/$n-mix.wav" \
        --record-dir "$work/$n-heard" --start-after 4 --max-seconds 60 >"$work/$n.out" 2>"$work/$n.err" &
    mpids+=("$!")
    pids+=("$!")
done
i=0
for n in $NAMES; do
    wait "${mpids[$i]}"
    check "$n's call exits 0" same "$?" 0
    i=$((i + 1))
done
for n in $NAMES; do
    check "$n joined through the relay" grep -q '"event":"joined"' "$work/$n.out"
    check "$n heard the four others" grep -q '"event":"left".*"members_heard":4,' "$work/$n.out"
    check "$n: no packet failed authentication" grep -q '"event":"left".*"packets_auth_failed":0,' "$work/$n.out"
    check "$n wrote the mix: as long as what was said, and not silent" python3 -c \
        "import array,wave,sys; w=wave.open(sys.argv[1]); n=w.getnframes(); a=array.array('h', w.readframes(n)); sys.exit(n < 96000 or max(map(abs, a)) < 8000)" \
        "$work/$n-mix.wav"
    for o in $NAMES; do
        [ "$o" = "$n" ] && continue
        check "$n heard $o bit-exact" cmp "$work/$o-expected.wav" "$work/$n-heard/$o.wav"
    done
    check "$n did not hear itself" test ! -e "$work/$n-heard/$n.wav"
done
check "one GMK-ID for all" same "$(grep -ho '"event":"joined".*"gmk_id":"[0-9A-F]*"' "$work"/*.out | sed 's/.*"gmk_id"://' | sort -u | wc -l)" 1

# ---- refusals ------------------------------------------------------------------------------------
printf 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n' >"$work/avp.sdp"
got=$(python3 "$here/../lib/sip_invite.py" 127.0.0.1 "$PORT" sip:alice@example.org "$GROUP" "$work/avp.sdp" 15)
check "the relay refuses unencrypted media (488)" same "${got%%	*}" 488

# ---- erin leaves the group: a new key she never receives ----------------------------------------
for n in alice bob carol dave; do join "$n"; done
for n in alice bob carol dave; do check "$n registers to receive" wait_for "$work/$n-join.out" '^registered'; done
check "group remove erin (a new key, delivered at once)" gms remove --members sip:erin@example.org --proxy "$PROXY"
GMK2=$(sed -n 's/^group .*GMK-ID \([0-9A-F]\{8\}\).*/\1/p' "$work/gms.out" | head -1)
check "  a new GMK-ID" test -n "$GMK2" -a "$GMK2" != "$GMK1"
check "  four deliveries, none to erin" same "$(grep -c "^delivered GMK-ID $GMK2 to .*: 200" "$work/gms.out")" 4
for n in alice bob carol dave; do check "$n: group join stored GMK-ID $GMK2" joined "$n" "$GMK2"; done
FOUR="sip:alice@example.org sip:bob@example.org sip:carol@example.org sip:dave@example.org"
# shellcheck disable=SC2086
"$dumpkeys" "$work/alice.ks" "$work/alice.pass" "$GROUP" 0 AEAD_AES_128_GCM $FOUR sip:erin@example.org >"$work/keys2.txt"
check "alice's key in force is the new one" test "$(head -1 "$work/keys2.txt")" != "$GMK"
check "erin holds no key but the old one" "$dumpkeys" "$work/erin.ks" "$work/erin.pass" "$GROUP" 0 AEAD_AES_128_GCM sip:erin@example.org >"$work/keys-erin.txt"
check "  which is the old one" same "$(head -1 "$work/keys-erin.txt")" "$GMK"

# The four talk again under the new key; erin, with the old key and the old roster, joins
# too, talking.
python3 "$here/../lib/make_wav.py" "$work/erin-long.wav" 4 9
mkdir -p "$work/erin3-heard"
member erin --play "$work/erin-long.wav" --record-dir "$work/erin3-heard" --max-seconds 9 \
    >"$work/erin3.out" 2>"$work/erin3.err" &
E3=$!
pids+=("$E3")
check "erin joins (the relay does not know who is in the group)" wait_for "$work/erin3.out" '"event":"joined"'
mpids=()
for n in alice bob carol dave; do
    mkdir -p "$work/$n-heard2"
    member "$n" --play "$work/$n.wav" --record-dir "$work/$n-heard2" --start-after 3 \
        --max-seconds 60 >"$work/$n-2.out" 2>"$work/$n-2.err" &
    mpids+=("$!")
    pids+=("$!")
done
i=0
for n in alice bob carol dave; do
    wait "${mpids[$i]}"
    check "$n's second call exits 0" same "$?" 0
    i=$((i + 1))
done
wait "$E3"
check "erin's call exits 0" same "$?" 0
for n in alice bob carol dave; do
    check "$n sent under the new key, accepting the previous one" \
        grep -q "\"event\":\"joined\".*\"gmk_id\":\"$GMK2\",\"other_gmk_id\":\"$GMK1\"" "$work/$n-2.out"
done
for n in alice bob carol dave; do
    check "$n heard the three others" grep -q '"event":"left".*"members_heard":3,' "$work/$n-2.out"
    check "$n: erin's packets failed authentication" \
        grep -qE '"event":"left".*"packets_auth_failed":[1-9]' "$work/$n-2.out"
    check "$n has no place for erin" test ! -e "$work/$n-heard2/erin.wav"
    for o in alice bob carol dave; do
        [ "$o" = "$n" ] && continue
        check "$n heard $o bit-exact" cmp "$work/$o-expected.wav" "$work/$n-heard2/$o.wav"
    done
done
check "erin opened nothing: every packet of the others failed authentication" \
    grep -qE '"event":"left".*"members_heard":0,.*"packets_received":0,.*"packets_auth_failed":[1-9]' "$work/erin3.out"
for o in alice bob carol dave; do
    check "erin heard nothing of $o" same "$(stat -c %s "$work/erin3-heard/$o.wav")" 44
done

# The rekey hand-over: dave still sends under the previous key (--gmk-id), alice listens
# under the new one and opens his packets with the previous key she still holds; then
# SIGINT: she hangs up and completes her recordings.
mkdir -p "$work/alice-int-heard"
member alice --record "$work/alice-int.wav" --record-dir "$work/alice-int-heard" --max-seconds 30 \
    >"$work/alice-int.out" 2>"$work/alice-int.err" &
AI=$!
pids+=("$AI")
check "alice joins, listening only" wait_for "$work/alice-int.out" '"event":"joined"'
member dave --gmk-id "$GMK1" --play "$work/dave.wav" --start-after 1 --max-seconds 8 \
    >"$work/dave-3.out" 2>"$work/dave-3.err" &
D3=$!
pids+=("$D3")
wait "$D3"
check "dave (previous key) exits 0" same "$?" 0
check "  he sent under the previous key, accepting the new one" \
    grep -q "\"event\":\"joined\".*\"gmk_id\":\"$GMK1\",\"other_gmk_id\":\"$GMK2\"" "$work/dave-3.out"
check "  and heard alice (her reports, under the new key)" grep -q '"event":"left".*"members_heard":1,' "$work/dave-3.out"
kill -INT "$AI"
wait "$AI"
check "SIGINT: alice exits 0" same "$?" 0
check "having left" grep -q '"event":"left"' "$work/alice-int.out"
check "  having opened dave's packets under the previous key" \
    grep -qE '"event":"left".*"packets_auth_failed":0,.*"packets_other_key":[1-9]' "$work/alice-int.out"
check "  and heard him bit-exact" cmp "$work/dave-expected.wav" "$work/alice-int-heard/dave.wav"
check "with a complete WAV" python3 -c "import wave,sys; wave.open(sys.argv[1]).getnframes()" "$work/alice-int.wav"

# ---- the auditor: alice's RSK and the group keys that reached her open the group's media ----------
kill "$TCPDUMP" 2>/dev/null
wait "$TCPDUMP" 2>/dev/null
check "capture written" test -s "$work/wire.pcap"
"$ms" kms cert --dir "$K" >"$work/cert.xml"
check "kms audit extract alice's RSK" audit_extract 0 "$K" "$ROLES" 1,2 "$work/alice.rsk" \
    --user sip:alice@example.org --period current --reason "conference test"
PERIOD=$(sed -n 's/.*for key period \([0-9]*\).*/\1/p' "$work/out" | head -1)
check "audit decrypt with alice's RSK" run 0 audit decrypt --capture "$work/wire.pcap" \
    --rsk "$work/alice.rsk" --uri sip:alice@example.org --period "$PERIOD" \
    --kms "$work/cert.xml" --out "$work/audit-alice"
report() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); $1" "$work/audit-alice/report.json"; }
check "nine group key messages, alice's two opened, the others' not" report "
g = r['groups']; assert r['groups_found'] == 9 and r['groups_opened'] == 2, (r['groups_found'], r['groups_opened'])
assert sorted(x['gmk_id'] for x in g if x['openable']) == sorted(['$GMK1', '$GMK2']), g
assert all(x['error'] == 'MS_ERR_MIKEY_RESPONDER' for x in g if not x['openable']), g"
check "  each names its group and GMS" report "
assert all(x['group'] == '$GROUP' and x['gms'] == '$GMS' for x in r['groups'] if x['openable'])"
gfile() { # gfile GMK-ID URI: the WAV of that sender under that key
    report "g = [x for x in r['groups'] if x['openable'] and x['gmk_id'] == '$1'][0]
print([s['stream']['file'] for s in g['senders'] if s['uri'] == '$2'][0])"
}
for n in alice bob carol; do
    check "GMK-ID $GMK1: $n bit-exact" cmp "$work/$n-expected.wav" "$work/audit-alice/$(gfile "$GMK1" "sip:$n@example.org")"
done
for n in alice dave; do
    check "GMK-ID $GMK2: $n bit-exact" cmp "$work/$n-expected.wav" "$work/audit-alice/$(gfile "$GMK2" "sip:$n@example.org")"
done
check "  erin is no sender under $GMK2" report "
g = [x for x in r['groups'] if x['openable'] and x['gmk_id'] == '$GMK2'][0]
assert [s['uri'] for s in g['senders']] == '$FOUR'.split(), g['senders']"
check "  the relay's copies counted as duplicates" report "
assert all(x['packets_duplicate'] > 0 for x in r['groups'] if x['openable'])"
check "--group-message that is no SIP MESSAGE refused (72)" run 72 audit decrypt \
    --capture "$work/wire.pcap" --rsk "$work/alice.rsk" --uri sip:alice@example.org \
    --period "$PERIOD" --kms "$work/cert.xml" --out "$work/audit-x" --no-audio \
    --group-message "$work/cert.xml"

# ---- what the relay and the provider hold ------------------------------------------------------------
SECRETS="$(cat "$work/keys1.txt" "$work/keys2.txt" | tr '\n' ' ')"
# shellcheck disable=SC2086
check "the relay's memory, log and files hold no GMK or SRTP key" \
    python3 "$here/../lib/secret_scan.py" --pids "$RELAY" --files "$work/relay" -- $SECRETS
# shellcheck disable=SC2086
check "kamailio's memory, log and files hold no GMK or SRTP key" \
    python3 "$here/../lib/secret_scan.py" --pids "$(pgrep -d, -f "kamailio.*$work/kam")" \
        --files "$work/kam" -- $SECRETS
kill -TERM "$RELAY"
wait "$RELAY"
check "the relay stops cleanly" same "$?" 0
check "the relay saw twelve joins and twelve leaves" grep -q 'stopping; 12 joined, 12 left' "$work/relay/relay.log"
check "and forwarded each packet to four members" grep -qE 'packets in, [0-9]+ out' "$work/relay/relay.log"
check "the relay logged the refusal" grep -q 'refused sip:alice@example.org: 488' "$work/relay/relay.log"
check "kamailio logged no error" test -z "$(kam_errors "$work/kam")"

echo "test_conference: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
