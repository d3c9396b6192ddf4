#!/usr/bin/env bash
# End-to-end tests of `mikeysakke mikey ...`: identifiers (RFC 6509 and the TS 33.180 UID
# vectors), an init -> respond round trip in every profile with keys made by the `sakke`
# and `eccsi` subcommands, the three message formats, every refusal the command line can
# provoke with its exit status, inspect (tree and JSON). Replay is per process, so it is
# left to the library tests. Usage: bash test_mikey.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_mikey.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

T=2025-10-02T12:00:00Z        # the timestamp of every message below
T_LATER=2025-10-02T12:00:20Z  # the responder's clock: 20 s later
T_STALE=2025-10-02T13:00:00Z  # an hour later: outside the default 300 s window
KMS=kms.example.org
ALICE=tel:+447700900123
BOB=tel:+447700900456
hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F'; }
field() { sed -n "s/^$1 = //p" "$work/out"; } # a "name = value" line of the last stdout
lacks() { ! "$@"; }                               # check "..." lacks CMD: CMD must fail
keys_of() { grep -E '^(key|csb-id|key-id|cs [0-9]+ [a-z-]+) = ' "$1"; }

# ---- identifiers -------------------------------------------------------------------------
check "id: RFC 6509 3.2 example" run 0 mikey id --uri "$ALICE" --time 2011-02-15T10:00:00Z
check "id: 2011-02 identifier" same "$(line 1)" 323031312D30320074656C3A2B34343737303039303031323300
check "id: month of T" run 0 mikey id --uri "$ALICE" --time "$T"
IDA=$(line 1)
check "id: is YYYY-MM NUL tel NUL" same "$IDA" "$(hexof 2025-10)00$(hexof "$ALICE")00"
check "id: NTP hex time" run 0 mikey id --uri "$ALICE" --time EC898DA800000000
check "id: NTP EC898DA8 is 2025-10" same "$(line 1)" "$IDA"
check "id: a sip URI is not a tel URI (38)" run 38 mikey id --uri sip:alice@example.org --time "$T"
check "id: tel URI with separators refused (38)" run 38 mikey id --uri tel:+44-7700-900123 --time "$T"
check "id: bad time (21)" run 21 mikey id --uri "$ALICE" --time 2025-13-01T00:00:00Z
check "id: time after NTP era 0 (21)" run 21 mikey id --uri "$ALICE" --time 2036-03-01T00:00:00Z

uid_vec() { # P3 P4 P5 UID: TS 33.180 F.2.1 vectors (standards digest 6.1)
    run 0 mikey uid --uri sip:user@example.org --kms kms.example.org --period-len "$1" \
        --period-offset "$2" --period "$3" && same "$(line 1)" "$(tr 'a-f' 'A-F' <<<"$4")"
}
check "uid vector 1" uid_vec 2592000 0 1 74e2af803ab5d72841bbced0ce319ffe64f6fe23c88a2d258aabcf6ac5658ef4
check "uid vector 2" uid_vec 10 0 10 94fb1a697c15d7e9d6b7062066affebda2d9e346e0090d67525c0c3ce666eafa
check "uid vector 3" uid_vec 25920000 100 1 3c0ad8828cfae1ad1d08b27cc7b61258c6cfcd405081b68cd778f1e1c7f562a7
check "uid vector 4" uid_vec 25920000 100 2048 c88b3fa5e36a08985d10f7b31a631b0265e8249f0312435e4984dbc3765c7f0c
check "uid vector 5" uid_vec 25920000 45920000 20393844 8dc05540167345538475101514f4eabd384abd6ba665782abb312ecaf05934e1
# The vendor messages: T = 0xEC898DA8, period 16777215, offset 0 -> period 236.
check "uid from a time" run 0 mikey uid --uri sip:user@example.org --kms "$KMS" --period-len 16777215 --time EC898DA800000000 --verbose
check "uid: period 236 from T" err_has "period = 236"
u_time=$(line 1)
check "uid from the period number" run 0 mikey uid --uri sip:user@example.org --kms "$KMS" --period-len 16777215 --period 236
check "uid: same UID both ways" same "$(line 1)" "$u_time"
check "uid: --time and --period together (21)" run 21 mikey uid --uri u --kms k --period-len 10 --period 1 --time "$T"
check "uid: --period-len 0 (21)" run 21 mikey uid --uri u --kms k --period-len 0 --period 1
check "uid: time before the offset (2)" run 2 mikey uid --uri u --kms k --period-len 10 --period-offset 4000000000 --time "$T"

# ---- the KMS and the users' keys -----------------------------------------------------------
check "sakke keygen" run 0 sakke keygen --secret-out "$work/z.key"
Z=$(line 1)
check "eccsi keygen" run 0 eccsi keygen --secret-out "$work/ksak.key"
KPAK=$(line 1)
IDB="$(hexof 2025-10)00$(hexof "$BOB")00"
check "Alice's SSK" run 0 eccsi issue --secret "$work/ksak.key" --kpak "$KPAK" --id "$IDA" --ssk-out "$work/alice.ssk"
PVT_A=$(line 1)
check "Bob's RSK" run 0 sakke rsk --secret "$work/z.key" --id "$IDB" --out "$work/bob.rsk"

kms=(--kms "$KMS" --public "$Z" --kpak "$KPAK")
init_a=(mikey init --uri "$ALICE" --to "$BOB" "${kms[@]}" --ssk "$work/alice.ssk" --pvt "$PVT_A" --time "$T")
resp_b=(mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob.rsk" --now "$T_LATER")

# ---- RFC 6509: round trip in every format ---------------------------------------------------
check "init (base64 to stdout)" run 0 "${init_a[@]}" --keys
check "init: line 1 is base64" grep -q '^ARo[A-Za-z0-9+/]*=*$' <(line 1)
line 1 >"$work/m.b64"
keys_of "$work/out" >"$work/init.keys"
check "init --keys: key is 16 octets" grep -q '^key = [0-9A-F]\{32\}$' "$work/init.keys"
check "init --keys: SRTP master key of CS 1" grep -q '^cs 1 master-key = [0-9A-F]\{32\}$' "$work/init.keys"
check "init --keys: 14-octet salt (AES-CM)" grep -q '^cs 1 master-salt = [0-9A-F]\{28\}$' "$work/init.keys"
check "init --keys: no MKI for RFC 6509" lacks grep -q '^cs 1 mki' "$work/init.keys"
check "init --keys: timestamp" same "$(field timestamp)" "2025-10-02T12:00:00Z (NTP EC88E7C000000000)"
check "init --verbose shows the identifiers" run 0 "${init_a[@]}" --verbose
check "verbose: IDi" err_has "IDi = $IDA"
check "verbose: period 1509" err_has "period = 1509"
check "verbose: no SSK" err_lacks "$(cat "$work/alice.ssk")"

check "respond (base64)" run 0 "${resp_b[@]}" --in "$work/m.b64" --expect-from "$ALICE"
check "respond: same key and SRTP keys" same "$(keys_of "$work/out")" "$(cat "$work/init.keys")"
check "respond: names the initiator" same "$(field initiator)" "$ALICE"
check "respond: names the KMS" same "$(field initiator-kms)" "$KMS"
check "respond: profile" same "$(field profile)" rfc6509
stdin="$work/m.b64" check "respond from standard input" run 0 "${resp_b[@]}"
unset stdin

check "init --format binary --out" run 0 "${init_a[@]}" --format binary --out "$work/m.bin" --keys
keys_of "$work/out" >"$work/init2.keys"
check "binary starts with version 1, data type 26" same "$(head -c 2 "$work/m.bin" | od -An -tx1 | tr -d ' ')" 011a
check "a new key every time" [ "$(grep '^key' "$work/init2.keys")" != "$(grep '^key' "$work/init.keys")" ]
check "respond (binary)" run 0 "${resp_b[@]}" --in "$work/m.bin"
check "respond (binary): same keys" same "$(keys_of "$work/out")" "$(cat "$work/init2.keys")"

check "init --format sdp" run 0 "${init_a[@]}" --format sdp --out "$work/m.sdp" --keys
keys_of "$work/out" >"$work/init3.keys"
check "sdp line" grep -q '^a=key-mgmt:mikey ARo[A-Za-z0-9+/]*=*$' "$work/m.sdp"
{ printf 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n'
  tr -d '\n' <"$work/m.sdp"; printf '\r\nm=audio 49170 RTP/SAVP 0\r\n'; } >"$work/body.sdp"
check "respond (a whole SDP body)" run 0 "${resp_b[@]}" --in "$work/body.sdp"
check "respond (sdp): same keys" same "$(keys_of "$work/out")" "$(cat "$work/init3.keys")"

check "--keys to stdout with binary (21)" run 21 "${init_a[@]}" --format binary --keys
check "bad --format (21)" run 21 "${init_a[@]}" --format hex
check "message to stdout has no key lines" run 0 "${init_a[@]}"
check "only the message without --keys" same "$(wc -l <"$work/out")" 1
check "3GPP option with rfc6509 (21)" run 21 "${init_a[@]}" --hide-ids
check "rfc6509: --key-id is the CSB ID" run 0 "${init_a[@]}" --key-id A1B2C3D4 --keys
check "rfc6509: csb-id as given" same "$(field csb-id)" A1B2C3D4
check "--key-id 0 (21)" run 21 "${init_a[@]}" --key-id 00000000
check "--key-id of 3 octets (6)" run 6 "${init_a[@]}" --key-id A1B2C3
check "period options with rfc6509 (21)" run 21 "${init_a[@]}" --period-len 100

# ---- RFC 6509: refusals, one per check -------------------------------------------------------
b64=$(cat "$work/m.b64")
xxd -p "$work/m.bin" | tr -d '\n' >"$work/m.hex"
hex=$(cat "$work/m.hex")
mk() { printf '%s' "$1" | xxd -r -p >"$work/$2"; } # hex -> binary file
mk "${hex:0:40}" cut.bin
check "cut message: malformed (23)" run 23 "${resp_b[@]}" --in "$work/cut.bin"
check "malformed: names payload and offset" err_has "offset"
mk "${hex}00" trailing.bin
check "trailing octet: malformed (23)" run 23 "${resp_b[@]}" --in "$work/trailing.bin"
mk "02${hex:2}" v2.bin
check "version 2 (25)" run 25 "${resp_b[@]}" --in "$work/v2.bin"
check "refusal names the error" err_has "MS_ERR_MIKEY_VERSION"
mk "0106${hex:4}" dt6.bin
check "data type 6 (26)" run 26 "${resp_b[@]}" --in "$work/dt6.bin"
v=$(printf '%02X' $((0x${hex:6:2} | 0x80)))
mk "${hex:0:6}$v${hex:8}" vbit.bin
check "V bit set (27)" run 27 "${resp_b[@]}" --in "$work/vbit.bin"
n=$((${#hex} - 20))
c=${hex:$n:1}
[ "$c" = 0 ] && d=1 || d=0
mk "${hex:0:$n}$d${hex:$((n + 1))}" sig.bin
check "tampered signature (15)" run 15 "${resp_b[@]}" --in "$work/sig.bin"
check "refusal gives MS_ERR_SIGNATURE" err_has "MS_ERR_SIGNATURE"
check "no key printed on refusal" same "$(cat "$work/out")" ""
n=$((${#hex} - 300))
c=${hex:$n:1}
[ "$c" = 0 ] && d=1 || d=0
mk "${hex:0:$n}$d${hex:$((n + 1))}" sakke.bin
check "tampered SAKKE data (signed: 15)" run 15 "${resp_b[@]}" --in "$work/sakke.bin"
check "stale timestamp (28)" run 28 mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob.rsk" --now "$T_STALE" --in "$work/m.bin"
check "stale: named" err_has "MS_ERR_MIKEY_TIMESTAMP"
check "--max-skew 4000 accepts it" run 0 mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob.rsk" --now "$T_STALE" --max-skew 4000 --in "$work/m.bin"
check "wrong expected initiator (30)" run 30 "${resp_b[@]}" --in "$work/m.bin" --expect-from tel:+447700900999
check "initiator refusal named" err_has "MS_ERR_MIKEY_INITIATOR"
CAROL=tel:+447700900789
check "Carol's RSK" run 0 sakke rsk --secret "$work/z.key" --id "$(hexof 2025-10)00$(hexof "$CAROL")00" --out "$work/carol.rsk"
check "not addressed to us (31)" run 31 mikey respond --uri "$CAROL" "${kms[@]}" --rsk "$work/carol.rsk" --now "$T_LATER" --in "$work/m.bin"
check "responder refusal named" err_has "MS_ERR_MIKEY_RESPONDER"
IDA11="$(hexof 2025-11)00$(hexof "$ALICE")00"
check "Alice's SSK for 2025-11" run 0 eccsi issue --secret "$work/ksak.key" --kpak "$KPAK" --id "$IDA11" --ssk-out "$work/alice11.ssk"
PVT_A11=$(line 1)
check "init in 2025-11" run 0 mikey init --uri "$ALICE" --to "$BOB" "${kms[@]}" --ssk "$work/alice11.ssk" --pvt "$PVT_A11" --time 2025-11-15T00:00:00Z --format binary --out "$work/nov.bin"
check "Bob holds only 2025-10 keys (period 1509): (33)" run 33 mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob.rsk" --period 1509 --now 2025-11-15T00:00:10Z --in "$work/nov.bin"
check "period refusal named" err_has "MS_ERR_MIKEY_KEY_PERIOD"
IDB11="$(hexof 2025-11)00$(hexof "$BOB")00"
check "Bob's RSK for 2025-11" run 0 sakke rsk --secret "$work/z.key" --id "$IDB11" --out "$work/bob11.rsk"
check "RSK of another month given for 2025-10 (13)" run 13 mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob11.rsk" --now "$T_LATER" --in "$work/m.bin"
printf 'AQ!!\n' >"$work/bad.b64"
check "bad base64 (7)" run 7 "${resp_b[@]}" --in "$work/bad.b64"
printf 'a=key-mgmt:mikey AQ=A\r\n' >"$work/bad.sdp"
check "bad SDP attribute (37)" run 37 "${resp_b[@]}" --in "$work/bad.sdp"
: >"$work/empty"
check "empty input (23)" run 23 "${resp_b[@]}" --in "$work/empty"
cp "$work/bob.rsk" "$work/bob644.rsk"
chmod 644 "$work/bob644.rsk"
check "RSK mode 644 (20)" run 20 mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob644.rsk" --now "$T_LATER" --in "$work/m.bin"
cp "$work/alice.ssk" "$work/alice640.ssk"
chmod 640 "$work/alice640.ssk"
check "SSK mode 640 (20)" run 20 mikey init --uri "$ALICE" --to "$BOB" "${kms[@]}" --ssk "$work/alice640.ssk" --pvt "$PVT_A" --time "$T"
check "SSK of another month (14)" run 14 mikey init --uri "$ALICE" --to "$BOB" "${kms[@]}" --ssk "$work/alice.ssk" --pvt "$PVT_A" --time 2025-11-15T00:00:00Z
check "missing --rsk (21)" run 21 mikey respond --uri "$BOB" "${kms[@]}"
check "--peer-kms alone (21)" run 21 "${resp_b[@]}" --peer-kms k2 --in "$work/m.bin"
check "bad --now (21)" run 21 mikey respond --uri "$BOB" "${kms[@]}" --rsk "$work/bob.rsk" --now yesterday --in "$work/m.bin"

# ---- inspect ----------------------------------------------------------------------------------
check "inspect (binary)" run 0 mikey inspect --in "$work/m.bin"
for name in HDR SAKKE SIGN RAND ECCSI "$ALICE" "$BOB" "$KMS"; do
    check "inspect shows $name" grep -qF -- "$name" "$work/out"
done
cp "$work/out" "$work/tree.bin"
base64 -w0 "$work/m.bin" >"$work/m2.b64"
check "inspect (base64) gives the same tree" run 0 mikey inspect --in "$work/m2.b64"
check "inspect: base64 and binary give the same tree" same "$(cat "$work/out")" "$(cat "$work/tree.bin")"
check "inspect --json" run 0 mikey inspect --in "$work/m.bin" --json
check "inspect --json parses" python3 -m json.tool "$work/out" >/dev/null
check "inspect --json names IDRkmsi" grep -qF "$KMS" "$work/out"
stdin="$work/m.sdp" check "inspect SDP from stdin" run 0 mikey inspect
unset stdin
check "inspect a cut message (23)" run 23 mikey inspect --in "$work/cut.bin"
check "inspect error gives the offset" err_has "offset"

# ---- TS 33.180 profiles -----------------------------------------------------------------------
P=(--period-len 2592000 --period-offset 0)
SA=sip:alice@example.org
SB=sip:bob@example.org
GMS=sip:gms@example.org
uid() { "$ms" mikey uid --uri "$1" --kms "$KMS" "${P[@]}" --time "$T"; }
UA=$(uid "$SA")
UB=$(uid "$SB")
UG=$(uid "$GMS")
check "UIDs are 32 octets" grep -q '^[0-9A-F]\{64\}$' <<<"$UA"
check "Alice's 3GPP SSK" run 0 eccsi issue --secret "$work/ksak.key" --kpak "$KPAK" --id "$UA" --ssk-out "$work/a3.ssk"
PVT_A3=$(line 1)
check "GMS SSK" run 0 eccsi issue --secret "$work/ksak.key" --kpak "$KPAK" --id "$UG" --ssk-out "$work/g3.ssk"
PVT_G3=$(line 1)
check "Bob's 3GPP RSK" run 0 sakke rsk --secret "$work/z.key" --id "$UB" --out "$work/b3.rsk"
resp3=(mikey respond --uri "$SB" "${kms[@]}" "${P[@]}" --rsk "$work/b3.rsk" --now "$T_LATER")

for prof in pck csk; do
    check "$prof: init" run 0 mikey init --profile $prof --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --out "$work/$prof.b64" --keys
    keys_of "$work/out" >"$work/$prof.keys"
    check "$prof: respond" run 0 "${resp3[@]}" --profile $prof --in "$work/$prof.b64" --expect-from "$SA"
    check "$prof: same keys" same "$(keys_of "$work/out")" "$(cat "$work/$prof.keys")"
    check "$prof: 12-octet salts (AES-GCM)" grep -q '^cs [0-9]* master-salt = [0-9A-F]\{24\}$' "$work/$prof.keys"
    check "$prof: MKI = key id" same "$(sed -n 's/^cs [0-9]* mki = //p' "$work/$prof.keys" | head -1)" "$(field key-id)"
    check "$prof: respond names the initiator" same "$(field initiator)" "$SA"
    check "$prof: a sip: URI under rfc6509 (38)" run 38 "${resp3[@]:0:2}" --uri "$SB" "${kms[@]}" --rsk "$work/b3.rsk" --now "$T_LATER" --in "$work/$prof.b64"
done
check "pck: purpose tag 1" grep -q '^key-id = 1' "$work/pck.keys"
check "pck: both private call streams (CS 0 and 1)" same "$(grep -c 'master-key' "$work/pck.keys")" 2
check "csk: purpose tag 2" grep -q '^key-id = 2' "$work/csk.keys"
check "csk: CS 6" grep -q '^cs 6 master-key' "$work/csk.keys"

check "pck: chosen key id" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-id 11223344 --keys
check "pck: csb-id = key id" same "$(field csb-id)" 11223344
check "pck: key id with purpose GMK refused (2)" run 2 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-id 01223344
check "purpose refusal names --key-id" err_has "--key-id"
check "pck: --period-len missing (21)" run 21 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T"

# Identity hiding, SAKKE-to-self and key parameters together.
check "pck hidden: init" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --hide-ids --sakke-to-self --key-params "status=1,activation=2025-10-01T00:00:00Z,expiry=2025-11-01T00:00:00Z,text=hello, world" --format binary --out "$work/hid.bin" --keys
keys_of "$work/out" >"$work/hid.keys"
check "pck hidden: the message has no URI of Alice or Bob" lacks grep -qF -e "$SA" -e "$SB" "$work/hid.bin"
check "pck hidden: inspect shows IDRuidi" run 0 mikey inspect --in "$work/hid.bin"
check "pck hidden: IDRuidi named" grep -qF IDRuidi "$work/out"
check "pck hidden: respond confirms the expected initiator" run 0 "${resp3[@]}" --profile pck --in "$work/hid.bin" --expect-from "$SA"
check "pck hidden: same keys" same "$(keys_of "$work/out")" "$(cat "$work/hid.keys")"
check "pck hidden: initiator learnt" same "$(field initiator)" "$SA"
check "pck hidden: key params decoded" same "$(field key-params)" 'type 1, status 1, activation 2025-10-01T00:00:00Z, expiry 2025-11-01T00:00:00Z, text "hello, world"'
check "pck hidden: another initiator (30)" run 30 "${resp3[@]}" --profile pck --in "$work/hid.bin" --expect-from sip:mallory@example.org
check "pck hidden: without --expect-from prints the UID" run 0 "${resp3[@]}" --profile pck --in "$work/hid.bin"
check "pck hidden: initiator UID is Alice's" same "$(field initiator-uid)" "$UA"
check "pck: default key params" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-params "" --out "$work/kp0.b64"
check "pck: default key params accepted" run 0 "${resp3[@]}" --profile pck --in "$work/kp0.b64"
check "pck: default key params printed" same "$(field key-params)" 'type 1, status 1, activation 0, expiry 0, text ""'
check "pck: key text with an escape sequence" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-params "text=$(printf '\033[31mred\\')" --out "$work/esc.b64"
check "pck: escape sequence accepted" run 0 "${resp3[@]}" --profile pck --in "$work/esc.b64"
check "pck: control octets shown as \\xHH" same "$(field key-params)" 'type 1, status 1, activation 0, expiry 0, text "\x1B[31mred\x5C"'
check "pck: revoked key (35)" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-params status=0 --out "$work/rev.b64"
check "pck: revoked key refused (35)" run 35 "${resp3[@]}" --profile pck --in "$work/rev.b64"
check "pck: expired key" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-params expiry=2025-10-01T00:00:00Z --out "$work/exp.b64"
check "pck: expired key refused (35)" run 35 "${resp3[@]}" --profile pck --in "$work/exp.b64"
check "bad --key-params (21)" run 21 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --key-params colour=blue

# GMK: the digest's GUK-ID vector (GMK 07d1..., GMK-ID 0df9bc39, member
# sip:alice@streamwide.com -> GUK-ID 06a12aea).
M=sip:alice@streamwide.com
UM=$(uid "$M")
check "member RSK" run 0 sakke rsk --secret "$work/z.key" --id "$UM" --out "$work/m3.rsk"
printf '07d1a1677ac36d8e81620484689b3c2d\n' >"$work/gmk.key"
chmod 600 "$work/gmk.key"
check "gmk: init" run 0 mikey init --profile gmk --uri "$GMS" --to "$M" "${kms[@]}" "${P[@]}" --ssk "$work/g3.ssk" --pvt "$PVT_G3" --time "$T" --key "$work/gmk.key" --key-id 0DF9BC39 --out "$work/gmk.b64" --keys
keys_of "$work/out" >"$work/gmk.keys"
check "gmk: csb-id is the GUK-ID" same "$(field csb-id)" 06A12AEA
check "gmk: respond" run 0 mikey respond --profile gmk --uri "$M" "${kms[@]}" "${P[@]}" --rsk "$work/m3.rsk" --now "$T_LATER" --in "$work/gmk.b64" --expect-from "$GMS"
check "gmk: same keys" same "$(keys_of "$work/out")" "$(cat "$work/gmk.keys")"
check "gmk: key is the GMK" same "$(field key)" 07D1A1677AC36D8E81620484689B3C2D
check "gmk: GMK-ID recovered" same "$(field key-id)" 0DF9BC39
check "gmk: CS 4" grep -q '^cs 4 master-key' "$work/gmk.keys"
check "gmk: MKI = GMK-ID || GUK-ID" same "$(sed -n 's/^cs 4 mki = //p' "$work/gmk.keys")" 0DF9BC3906A12AEA
chmod 644 "$work/gmk.key"
check "gmk: key file mode 644 (20)" run 20 mikey init --profile gmk --uri "$GMS" --to "$M" "${kms[@]}" "${P[@]}" --ssk "$work/g3.ssk" --pvt "$PVT_G3" --time "$T" --key "$work/gmk.key"
check "gmk: refusal shows no key material" err_lacks 07d1a167

# Two KMSs: Alice's keys from kms.example.org, Bob's from kms2.example.org.
check "second KMS: z" run 0 sakke keygen --secret-out "$work/z2.key"
Z2=$(line 1)
check "second KMS: KSAK" run 0 eccsi keygen --secret-out "$work/ksak2.key"
KPAK2=$(line 1)
UB2=$("$ms" mikey uid --uri "$SB" --kms kms2.example.org "${P[@]}" --time "$T")
check "Bob's RSK from the second KMS" run 0 sakke rsk --secret "$work/z2.key" --id "$UB2" --out "$work/b32.rsk"
check "two KMSs: init" run 0 mikey init --profile pck --uri "$SA" --to "$SB" "${kms[@]}" --peer-kms kms2.example.org --peer-public "$Z2" --peer-kpak "$KPAK2" "${P[@]}" --ssk "$work/a3.ssk" --pvt "$PVT_A3" --time "$T" --out "$work/x.b64" --keys
keys_of "$work/out" >"$work/x.keys"
check "two KMSs: respond" run 0 mikey respond --profile pck --uri "$SB" --kms kms2.example.org --public "$Z2" --kpak "$KPAK2" --peer-kms "$KMS" --peer-public "$Z" --peer-kpak "$KPAK" "${P[@]}" --rsk "$work/b32.rsk" --now "$T_LATER" --in "$work/x.b64"
check "two KMSs: same keys" same "$(keys_of "$work/out")" "$(cat "$work/x.keys")"
check "two KMSs: initiator's KMS not trusted (32)" run 32 mikey respond --profile pck --uri "$SB" --kms kms2.example.org --public "$Z2" --kpak "$KPAK2" "${P[@]}" --rsk "$work/b32.rsk" --now "$T_LATER" --in "$work/x.b64"

# ---- help -------------------------------------------------------------------------------------
check "help mikey" run 0 help mikey
for verb in init respond inspect id uid; do
    check "help lists mikey $verb" grep -q "^  $verb " "$work/out"
done
check "mikey init --help lists --key-params" run 0 mikey init --help
check "--key-params documented" grep -q -- '--key-params SPEC' "$work/out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
