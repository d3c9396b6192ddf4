#!/usr/bin/env bash
# Calls through an untrusted provider, with the real pieces: a KMS and three devices made
# by the real commands, kamailio as registrar and proxy, tcpdump on the loopback wire,
# `mikeysakke call answer` and `call dial` exchanging Opus over SRTP. Checks:
#   - both directions arrive bit-exact (equal to a local Opus encode/decode of what was sent);
#   - on the wire every media datagram is SRTP with the PCK-ID as MKI, and no Opus frame of
#     the input appears; kamailio's memory, log and files hold neither the PCK nor the SRTP
#     master key or salt;
#   - every refusal (bad signature, unknown KMS, stale timestamp, replay, not addressed to
#     me, no keys for that period, RTP/AVP, no key-mgmt) gives its SIP status and Warning.
# Usage: bash test_call.sh PATH_TO_mikeysakke   (MS_OPUS_ROUNDTRIP: the helper program)
set -u
ms=${1:?usage: test_call.sh PATH_TO_mikeysakke}
vectors=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/../lib/community.sh"
. "$here/../lib/kamailio.sh"
. "$here/../lib/calls.sh"
roundtrip=${MS_OPUS_ROUNDTRIP:?set MS_OPUS_ROUNDTRIP to the opus_roundtrip test program}


ALICE=sip:alice@example.org BOB=sip:bob@example.org CAROL=sip:carol@example.org
DAVE=sip:dave@example.org
check "community: KMS, four devices, this period's keys" community_up "$ALICE" "$BOB" "$CAROL" "$DAVE"
# Dave's device keeps no keys of this period (it lost them): calls to it must be refused.
rm -rf "$work/dave.ks"
check "dave: keystore without keys" run 0 user init --keystore "$work/dave.ks" \
    --enrolment "$work/dave.enrol" --passphrase-file "$work/dave.pass" --scrypt-cost 10

# ---- the provider -------------------------------------------------------------------------------
umask 077
for u in alice bob carol dave; do printf '%s SIP password\n' "$u" >"$work/$u.sip"; done
mkdir -p "$work/kam"
printf '%s\n' "alice alice SIP password" "bob bob SIP password" "carol carol SIP password" \
    "dave dave SIP password" | kam_write_users "$work/kam"
PORT=$(kam_free_port)
VMPORT=$(kam_free_port)
check "kamailio starts" kam_start "$work/kam" "$PORT" "sip:127.0.0.1:$VMPORT;transport=tcp" \
    -A 'FR_INV_TIMER=4000'
PROXY="sip:127.0.0.1:$PORT;transport=tcp"

# ---- the wire -----------------------------------------------------------------------------------
tcpdump -i lo -U -B 32768 -s 0 -w "$work/wire.pcap" "tcp port $PORT or udp" >"$work/tcpdump.log" 2>&1 &
TCPDUMP=$!
pids+=("$TCPDUMP")
for _ in $(seq 100); do grep -q 'listening on' "$work/tcpdump.log" && break; sleep 0.05; done
check "tcpdump listens on lo" grep -q 'listening on' "$work/tcpdump.log"

# ---- a call, both directions ----------------------------------------------------------------------
python3 "$here/../lib/make_wav.py" "$work/alice.wav" 3 1
python3 "$here/../lib/make_wav.py" "$work/bob.wav" 1.5 2
phone() { # phone NAME VERB ARGS...: the common options of a registered phone
    local n=$1 verb=$2
    shift 2
    "$ms" call "$verb" --keystore "$work/$n.ks" --passphrase-file "$work/$n.pass" \
        --register --proxy "$PROXY" --auth-user "$n" --password-file "$work/$n.sip" --json "$@"
}
phone bob answer --play "$work/bob.wav" --record "$work/bob-heard.wav" --calls 1 \
    >"$work/bob.out" 2>"$work/bob.err" &
BOBPID=$!
pids+=("$BOBPID")
check "bob registers" wait_for "$work/bob.out" '"event":"registered"'
phone alice dial --to "$BOB" --play "$work/alice.wav" --record "$work/alice-heard.wav" \
    >"$work/alice.out" 2>"$work/alice.err"
check "alice's call exits 0" same "$?" 0
wait "$BOBPID"
check "bob's answer exits 0" same "$?" 0
check "alice: established, verified bob" grep -q '"event":"established".*"peer":"sip:bob@example.org"' "$work/alice.out"
check "bob: established, verified alice" grep -q '"event":"established".*"peer":"sip:alice@example.org"' "$work/bob.out"
check "AEAD_AES_128_GCM by default" grep -q '"suite":"AEAD_AES_128_GCM"' "$work/bob.out"
PCKID=$(sed -n 's/.*"event":"established".*"pck_id":"\([0-9A-F]*\)".*/\1/p' "$work/alice.out")
check "both name the same PCK-ID" grep -q "\"pck_id\":\"$PCKID\"" "$work/bob.out"
check "PCK-ID carries the PCK purpose tag (1)" same "${PCKID:0:1}" 1
check "no packet failed authentication" bash -c "! grep -q '\"packets_auth_failed\":[1-9]' '$work/alice.out' '$work/bob.out'"
"$roundtrip" "$work/alice.wav" "$work/alice-expected.wav" "$work/alice.opus.hex"
"$roundtrip" "$work/bob.wav" "$work/bob-expected.wav" "$work/bob.opus.hex"
check "bob heard alice bit-exact" cmp "$work/alice-expected.wav" "$work/bob-heard.wav"
check "alice heard bob bit-exact" cmp "$work/bob-expected.wav" "$work/alice-heard.wav"

# ---- refusals, each provoked through the provider -----------------------------------------------------
T=$(date -u +%Y-%m-%dT%H:%M:%SZ)
OLD=$(date -u -d '-10 minutes' +%Y-%m-%dT%H:%M:%SZ)
offer() { # offer FILE ARGS...: an SDP offer from alice (mikey init) with a media line
    local f=$1
    shift
    "$ms" mikey init --profile pck --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" \
        --sakke-to-self --format sdp --out "$f.km" "$@" >/dev/null 2>>"$work/offers.err" || return 1
    printf 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 %s 96\r\na=rtpmap:96 opus/48000/2\r\n%s\r\na=sendrecv\r\n' \
        "${PROTO:-RTP/SAVP}" "$(cat "$f.km")" >"$f"
}
invite() { # invite TO SDPFILE: prints STATUS<TAB>WARNING
    python3 "$here/../lib/sip_invite.py" 127.0.0.1 "$PORT" "$ALICE" "$1" "$2" 15
}
refused() { # refused TO SDPFILE STATUS WARNING-PREFIX
    local got
    got=$(invite "$1" "$2")
    case $got in
    "$3	$4"*) return 0 ;;
    esac
    echo "  got '$got', want '$3	$4...'" >&2
    return 1
}
phone bob answer --record "$work/bob2.wav" --calls 9 --gcm-only >"$work/bob2.out" 2>"$work/bob2.err" &
BOB2=$!
pids+=("$BOB2")
check "bob registers again" wait_for "$work/bob2.out" '"event":"registered"'

offer "$work/good.sdp" --to "$BOB"
check "a valid offer is answered (200)" refused "$BOB" "$work/good.sdp" 200 ""
check "the same offer again: replay (606)" refused "$BOB" "$work/good.sdp" 606 "replay"
offer "$work/sig.sdp" --to "$BOB"
python3 - "$work/sig.sdp" <<'EOF'
import base64, re, sys
p = sys.argv[1]
s = open(p).read()
b64 = re.search(r"a=key-mgmt:mikey (\S+)", s).group(1)
m = bytearray(base64.b64decode(b64))
m[-40] ^= 1  # inside the ECCSI signature's s
open(p, "w").write(s.replace(b64, base64.b64encode(bytes(m)).decode()))
EOF
check "a flipped signature byte: bad signature (606)" refused "$BOB" "$work/sig.sdp" 606 "bad signature"
offer "$work/old.sdp" --to "$BOB" --time "$OLD"
check "ten minutes old: stale timestamp (606)" refused "$BOB" "$work/old.sdp" 606 "stale timestamp"
offer "$work/carol.sdp" --to "$CAROL"
check "an offer made for carol: not addressed to me (606)" refused "$BOB" "$work/carol.sdp" 606 "not addressed to me"
PROTO=RTP/AVP offer "$work/avp.sdp" --to "$BOB"
check "RTP/AVP: unencrypted media refused (488)" refused "$BOB" "$work/avp.sdp" 488 "RTP/AVP"
printf 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\n' >"$work/nokm.sdp"
check "no key-mgmt (488)" refused "$BOB" "$work/nokm.sdp" 488 "no key-mgmt"

# another community's KMS: its own keys, made with the crypto commands
EVIL=evil-kms.example.org
Z2=$("$ms" sakke keygen --secret-out "$work/evil-z.key")
KPAK2=$("$ms" eccsi keygen --secret-out "$work/evil-ksak.key")
PERIOD=$(grep "\"event\":\"established\"" "$work/alice.out" | sed -n "s/.*\"period\":\([0-9]*\).*/\1/p")
AID=$("$ms" mikey uid --uri "$ALICE" --kms "$EVIL" --period-len 2592000 --period "$PERIOD")
PVT2=$("$ms" eccsi issue --secret "$work/evil-ksak.key" --kpak "$KPAK2" --id "$AID" --ssk-out "$work/evil-ssk.key" 2>/dev/null)
"$ms" mikey init --profile pck --uri "$ALICE" --kms "$EVIL" --public "$Z2" --kpak "$KPAK2" \
    --period-len 2592000 --ssk "$work/evil-ssk.key" --pvt "$PVT2" --to "$BOB" --format sdp \
    --out "$work/evil.km" >/dev/null 2>>"$work/offers.err"
printf 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\n%s\r\n' "$(cat "$work/evil.km")" >"$work/evil.sdp"
check "another community's KMS: unknown KMS (606)" refused "$BOB" "$work/evil.sdp" 606 "unknown KMS"

# dave holds no keys for this period
phone dave answer --record "$work/dave.wav" --calls 1 >"$work/dave.out" 2>"$work/dave.err" &
DAVEPID=$!
pids+=("$DAVEPID")
check "dave registers" wait_for "$work/dave.out" '"event":"registered"'
offer "$work/dave.sdp" --to "$DAVE"
check "dave has no keys for the period (606)" refused "$DAVE" "$work/dave.sdp" 606 "no keys for that period"
wait "$DAVEPID"
check "dave printed the refusal" grep -q '"event":"refused".*"sip_status":606' "$work/dave.out"

# a real phone dialling is told why
# a real phone dialling is told why (bob takes AEAD_AES_128_GCM only)
(phone alice dial --to "$BOB" --suite AES_CM_128_HMAC_SHA1_80 --play "$work/bob.wav" \
    >"$work/cm.out" 2>"$work/cm.err")
check "call dial exits 70 (call refused)" same "$?" 70
check "and prints the status and Warning" grep -q '"event":"rejected".*"sip_status":488' "$work/cm.out"
wait "$BOB2"
check "bob answered 9 offers and exits 0" same "$?" 0
check "bob printed each refusal with its reason" same "$(grep -c '"event":"refused"' "$work/bob2.out")" 8

# a callee whose media cannot start (no sound card here) refuses with 500, and that call counts
phone carol answer --calls 1 --device no-such-card >"$work/carol.out" 2>"$work/carol.err" &
CAROLPID=$!
pids+=("$CAROLPID")
check "carol registers" wait_for "$work/carol.out" '"event":"registered"'
(phone alice dial --to "$CAROL" --play "$work/bob.wav" >"$work/tocarol.out" 2>"$work/tocarol.err")
check "alice is told 500 (exit 70)" same "$?" 70
check "with the callee's reason" grep -q '"sip_status":500,"warning":"callee failed: sound card' "$work/tocarol.out"
wait "$CAROLPID"
check "carol's answer counts that call and exits 0" same "$?" 0

# signalling failures are not refusals
DEAD=$(kam_free_port)
"$ms" call dial --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --to "$BOB" \
    --proxy "sip:127.0.0.1:$DEAD;transport=tcp" --play "$work/bob.wav" >"$work/dead.out" 2>"$work/dead.err"
check "an unreachable provider: exit 69 (MS_ERR_SIP)" same "$?" 69
printf 'a wrong SIP password\n' >"$work/wrong.sip"
"$ms" call dial --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --register \
    --proxy "$PROXY" --auth-user alice --password-file "$work/wrong.sip" --to "$BOB" \
    --play "$work/bob.wav" >"$work/wrongpw.out" 2>"$work/err"
check "a wrong SIP password: exit 69, registration refused" same "$?" 69
check "and says so" err_has "registration of sip:alice@example.org failed"
chmod 644 "$work/wrong.sip"
"$ms" call dial --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" --register \
    --proxy "$PROXY" --auth-user alice --password-file "$work/wrong.sip" --to "$BOB" >/dev/null 2>"$work/err"
check "a password file open to others: exit 20" same "$?" 20
check "naming --password-file" err_has "--password-file"

# ---- what the wire and the provider saw --------------------------------------------------------------
sleep 0.3
kill "$TCPDUMP" 2>/dev/null
wait "$TCPDUMP" 2>/dev/null
check "capture written" test -s "$work/wire.pcap"
# The call's keys, recovered by bob's own device from the I_MESSAGE on the wire.
check "the I_MESSAGE is on the wire" python3 "$here/../lib/first_key_mgmt.py" "$work/wire.pcap" "$work/first.sdp"
check "its keys, by bob's device" run 0 mikey respond --keystore "$work/bob.ks" \
    --passphrase-file "$work/bob.pass" --in "$work/first.sdp" --now "$T" --max-skew 3600
KEY=$(sed -n 's/^key = //p' "$work/out")
MKEY=$(sed -n 's/^cs [0-9]* master-key = //p' "$work/out" | head -1)
MSALT=$(sed -n 's/^cs [0-9]* master-salt = //p' "$work/out" | head -1)
check "a PCK and SRTP master key recovered" test -n "$KEY" -a -n "$MKEY" -a -n "$MSALT"
# (port 40000: the hand-made offers' media address, where bob's answers to them went)
check "every media datagram is SRTP with the MKI, no Opus frame in clear" \
    python3 "$here/../lib/wire_check.py" --ignore-port 40000 "$work/wire.pcap" "$PORT" \
        "$PCKID" "$work/alice.opus.hex" "$work/bob.opus.hex"
# and it can fail: one RTP datagram with an Opus packet in clear
python3 - "$work/alice.opus.hex" "$work/clear.pcap" <<'EOF2'
import struct, sys
opus = bytes.fromhex(open(sys.argv[1]).readline().strip())
rtp = bytes([0x80, 96, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4]) + opus
udp = struct.pack(">HHHH", 40000, 40002, 8 + len(rtp), 0) + rtp
ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                 bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
frame = bytes(12) + b"\x08\x00" + ip
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)
EOF2
check "wire_check fails on Opus in clear" bash -c "! python3 '$here/../lib/wire_check.py' \
    '$work/clear.pcap' '$PORT' '$PCKID' '$work/alice.opus.hex' >/dev/null"
check "kamailio's memory, log and files hold no key" \
    python3 "$here/../lib/secret_scan.py" --pids "$(pgrep -d, -f "kamailio.*$work/kam")" \
        --files "$work/kam" -- "$KEY" "$MKEY" "${MSALT:0:24}"
mkdir -p "$work/leak" && printf 'log line %s\n' "$MKEY" >"$work/leak/x.log"
check "secret_scan finds a key where there is one" bash -c "python3 '$here/../lib/secret_scan.py' \
    --files '$work/leak' -- '$MKEY' 2>/dev/null; [ \$? -eq 1 ]"
check "kamailio logged no error" test -z "$(kam_errors "$work/kam")"

# ---- the auditor: one user's RSK for this period, against the provider's capture -------------------
"$ms" kms cert --dir "$K" >"$work/cert.xml"
audit() { # audit NAME RSKFILE PERIOD OUTDIR [CAPTURE]
    run 0 audit decrypt --capture "${5:-$work/wire.pcap}" --rsk "$2" --uri "sip:$1@example.org" \
        --period "$3" --kms "$work/cert.xml" --out "$4"
}
for who in alice bob carol; do
    check "kms audit extract $who's RSK" audit_extract 0 "$K" "$ROLES" 1,2 "$work/$who.rsk" \
        --user "sip:$who@example.org" --period current --reason "call test"
done
# The report's number of the call keyed with PCK-ID $PCKID: SIP that another program sends
# on lo meanwhile (the capture takes every UDP datagram) may add calls before it.
call_of() {
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))
print(next((c['index'] for c in r['calls'] if c.get('pck_id') == sys.argv[2]), 0))" \
        "$1/report.json" "$PCKID" 2>/dev/null || echo 0
}
check "bob's RSK opens the call (incoming)" audit bob "$work/bob.rsk" "$PERIOD" "$work/audit-bob"
N=$(call_of "$work/audit-bob")
check "  the call keyed with $PCKID is in the report" test "$N" -gt 0
check "both directions, bit-exact: alice to bob" cmp "$work/alice-expected.wav" "$work/audit-bob/call-$N-caller-to-callee.wav" ||
    sed -n '1,60p' "$work/audit-bob/report.json" >&2
check "bob to alice" cmp "$work/bob-expected.wav" "$work/audit-bob/call-$N-callee-to-caller.wav"
check "alice's RSK opens it too (her outgoing call, SAKKE-to-self)" audit alice "$work/alice.rsk" "$PERIOD" "$work/audit-alice"
check "  as the same call" test "$(call_of "$work/audit-alice")" = "$N"
check "the same audio" cmp "$work/alice-expected.wav" "$work/audit-alice/call-$N-caller-to-callee.wav"
check "carol's RSK does not open it" audit carol "$work/carol.rsk" "$PERIOD" "$work/audit-carol"
check "no audio of that call for carol" test ! -e "$work/audit-carol/call-$N-caller-to-callee.wav"
check "and the report says why" grep -q "not openable" "$work/audit-carol/report.json"
check "kms audit extract bob's next-period RSK" audit_extract 0 "$K" "$ROLES" 1,2 \
    "$work/bob-next.rsk" --user "$BOB" --period next --reason "call test"
check "the next period's RSK runs" audit bob "$work/bob-next.rsk" "$((PERIOD + 1))" "$work/audit-next"
check "and opens nothing" bash -c "! ls '$work/audit-next'/*.wav >/dev/null 2>&1"
# one flipped byte in one SRTP datagram of alice's stream
python3 - "$work/wire.pcap" "$work/flipped.pcap" "$PCKID" <<'EOF2'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
mki = bytes.fromhex(sys.argv[3])
# the 50th datagram that ends with the MKI: flip a ciphertext octet in its middle
seen = 0
i = data.find(mki)
while i >= 0:
    seen += 1
    if seen == 50:
        data[i - 30] ^= 0x01
        break
    i = data.find(mki, i + 1)
open(sys.argv[2], "wb").write(bytes(data))
EOF2
check "a flipped byte: the call still opens" audit bob "$work/bob.rsk" "$PERIOD" "$work/audit-flip" "$work/flipped.pcap"
check "the packet fails authentication, counted" grep -q '"packets_failed_auth": *1,' "$work/audit-flip/report.json"
# An independent decryption (python3-cryptography, RFC 3711 + RFC 7714) of alice's stream
# gives back exactly the Opus packets she encoded.
printf '%s%s\n' "$MKEY" "${MSALT:0:24}" >"$work/srtp.key"
python3 - "$work/wire.pcap" "$work/alice-srtp.hex" "$PCKID" <<'EOF2'
import re, struct, sys
sys.path.insert(0, sys.argv[0].rsplit("/", 1)[0])
data = open(sys.argv[1], "rb").read()
mki = bytes.fromhex(sys.argv[3])
sdp_ports = [int(p) for p in re.findall(rb"m=audio (\d+) ", data)]
out = open(sys.argv[2], "w")
off = 24
while off + 16 <= len(data):
    incl = struct.unpack("<I", data[off + 8:off + 12])[0]
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    ip = frame[14:]
    if len(ip) < 28 or frame[12:14] != b"\x08\x00" or ip[9] != 17:
        continue
    u = ip[(ip[0] & 15) * 4:]
    sport, dport, ulen = struct.unpack(">HHH", u[:6])
    p = u[8:ulen]
    if not p.endswith(mki) or not (200 > p[1] & 0x7f or True) or 200 <= p[1] <= 204:
        continue
    if p[8] & 0x80 == 0:  # the caller's SSRC has its top bit clear (the callee's set)
        out.write(p.hex() + "\n")
EOF2
check "the independent SRTP decryption of alice's stream" bash -c "python3 '$here/../call/srtp_ref.py' \
    --suite AEAD_AES_128_GCM --key-file '$work/srtp.key' --mki-len 4 '$work/alice-srtp.hex' >'$work/alice-ref.hex'"
check "gives exactly the Opus packets alice encoded" cmp "$work/alice.opus.hex" "$work/alice-ref.hex"

echo "test_call: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
