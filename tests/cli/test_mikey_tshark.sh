#!/usr/bin/env bash
# A second opinion on our encoder: Wireshark's MIKEY dissector (tshark, Debian package
# `tshark`, installed by `make deps`) must decode a plain RFC 6509 I_MESSAGE made by
# `mikeysakke mikey init`, carried in UDP to port 2269 (the MIKEY port), with no malformed
# or error flag, and show the values we wrote. Without tshark this test FAILS: it is part
# of the deliverable, not an optional extra. Usage: bash test_mikey_tshark.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_mikey_tshark.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

if ! command -v tshark >/dev/null 2>&1; then
    echo "FAIL: tshark is not installed (run 'make deps' as root)" >&2
    exit 1
fi
export HOME="$work" # tshark keeps its profile under $HOME: use a throw-away one

T=2025-10-02T12:00:00Z
KMS=kms.example.org
ALICE=tel:+447700900123
BOB=tel:+447700900456
hexof() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F'; }

check "sakke keygen" run 0 sakke keygen --secret-out "$work/z.key"
Z=$(line 1)
check "eccsi keygen" run 0 eccsi keygen --secret-out "$work/ksak.key"
KPAK=$(line 1)
check "Alice's SSK" run 0 eccsi issue --secret "$work/ksak.key" --kpak "$KPAK" --id "$(hexof 2025-10)00$(hexof "$ALICE")00" --ssk-out "$work/alice.ssk"
PVT=$(line 1)
check "init (binary)" run 0 mikey init --uri "$ALICE" --to "$BOB" --kms "$KMS" --public "$Z" --kpak "$KPAK" --ssk "$work/alice.ssk" --pvt "$PVT" --time "$T" --format binary --out "$work/m.bin" --keys
csb=$(sed -n 's/^csb-id = //p' "$work/out")
hex=$(xxd -p "$work/m.bin" | tr -d '\n')
len=$((${#hex} / 2))

# One Ethernet/IPv4/UDP frame in a classic pcap file (link type 1), checksums filled in.
python3 - "$work/m.bin" "$work/m.pcap" <<'EOF'
import struct, sys
payload = open(sys.argv[1], 'rb').read()

def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

src, dst = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
ulen = 8 + len(payload)
udp = struct.pack('!HHHH', 2269, 2269, ulen, 0) + payload
c = csum(src + dst + struct.pack('!BBH', 0, 17, ulen) + udp) or 0xffff
udp = udp[:6] + struct.pack('!H', c) + udp[8:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + ulen, 1, 0, 64, 17, 0, src, dst)
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
frame = bytes.fromhex('020000000002020000000001' '0800') + ip + udp
with open(sys.argv[2], 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    f.write(struct.pack('<IIII', 1759406400, 0, len(frame), len(frame)) + frame)
EOF
check "pcap written" [ -s "$work/m.pcap" ]

tshark -r "$work/m.pcap" -V -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE \
    >"$work/tree" 2>"$work/err"
check "tshark ran" [ $? -eq 0 ]
has() { grep -qF -- "$1" "$work/tree" || { echo "  not in tshark -V: $1" >&2; return 1; }; }
lacks() { ! grep -qiF -- "$1" "$work/tree" || { echo "  in tshark -V: $1" >&2; return 1; }; }
check "dissected as MIKEY" has "Multimedia Internet KEYing"
check "no malformed packet" lacks "Malformed"
check "no dissector bug" lacks "Dissector bug"
check "no expert error" lacks "Expert Info (Error"
check "no expert warning" lacks "Expert Info (Warn"
check "no bad checksum" lacks "[Bad"
check "data type SAKKE (26)" has "Data Type: SAKKE (26)"
check "V not set" has "= V: Not set"
check "PRF MIKEY-1" has "PRF func: MIKEY-1 (0)"
check "CSB ID" has "CSB ID: 0x$(tr 'A-F' 'a-f' <<<"$csb")"
check "CS ID map SRTP-ID" has "CS ID map type: SRTP-ID (0)"
check "timestamp NTP-UTC" has "TS type: NTP-UTC (0)"
check "timestamp value" has "NTP timestamp: Oct  2, 2025 12:00:00.000000000 UTC"
check "IDRi" has "ID role: Initiator (IDRi) (1)"
check "IDRr" has "ID role: Responder (IDRr) (2)"
check "IDRkmsi" has "ID role: Initiator's KMS (IDRkmsi) (6)"
check "IDRkmsr" has "ID role: Responder's KMS (IDRkmsr) (7)"
check "initiator URI" has "ID: $ALICE"
check "responder URI" has "ID: $BOB"
check "KMS URI" has "ID: $KMS"
check "SP: SRTP policy" has "Protocol type: SRTP (0)"
check "SAKKE payload" has "SAKKE Encapsulated Data (SAKKE)"
check "SAKKE params 1" has "SAKKE params: 1"
check "ID scheme 1" has "ID scheme: 1"
check "SAKKE data length 273" has "SAKKE data length: 273"
check "signature type ECCSI" has "Signature type: ECCSI (2)"
check "signature length 129" has "Signature len: 129"

# Exact field values, compared with the octets of the file we sent.
tshark -r "$work/m.pcap" -T fields -E separator='|' -e mikey.type -e mikey.csb_id \
    -e mikey.id.role -e mikey.id.data -e mikey.sakke.data -e mikey.sign.data \
    -e mikey.rand.data -e udp.length >"$work/fields" 2>"$work/err"
IFS='|' read -r f_type f_csb f_roles f_ids f_sakke f_sig f_rand f_udp <"$work/fields"
check "field: data type" same "$f_type" 26
check "field: CSB ID" same "$f_csb" "0x$(tr 'A-F' 'a-f' <<<"$csb")"
check "field: ID roles in order" same "$f_roles" "1,2,6,7"
check "field: IDs in order" same "$f_ids" "$ALICE,$BOB,$KMS,$KMS"
check "field: the whole message in the UDP payload" same "$f_udp" $((len + 8))
check "field: signature = the last 129 octets" same "$f_sig" "${hex: -258}"
check "field: SAKKE data = the 273 octets before SIGN" same "$f_sakke" "${hex: -808:546}"
check "field: RAND is 16 octets of the message" [ ${#f_rand} -eq 32 ]
check "field: RAND found in the message" grep -qF "$f_rand" <<<"$hex"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
