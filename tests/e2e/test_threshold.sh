#!/usr/bin/env bash
# The threshold KMS ceremony at (n, t) = (3, 1) on loopback (docs/threshold.md): each
# server makes its keys (`kms threshold keygen`: files and modes, its peers-table line),
# the operator joins the lines into peers.txt, and three `kms threshold init` processes
# run the key generation together and agree on Z and KPAK (and the transcript); each
# seals its shares and writes the public result; a second init in the same directory is
# refused. The ceremony runs as the issue spells it, `kms init --threshold 1 --servers 3`
# (= `kms threshold init`, the table's t and n checked), the batch as `kms batch`. Then a ceremony where server 1's table pins another certificate for server 2:
# server 1 fails naming server 2, servers 2 and 3 fail naming server 1 as missing.
# Usage: bash test_threshold.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }

# three free loopback ports at once (held together, so they differ)
free_ports() {
    python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

printf 'server passphrase\n' >"$work/pass"
chmod 600 "$work/pass"

# keygen DIRPREFIX: the three servers' keys and peers.txt in $work/DIRPREFIX*
keygen() {
    local pre=$1 i ports
    read -r -a ports <<<"$(free_ports)"
    printf 'mikeysakke-peers 1\nthreshold 1\n' >"$work/$pre-peers.txt"
    for i in 1 2 3; do
        run 0 kms threshold keygen --dir "$work/$pre$i" --index $i \
            --url "https://127.0.0.1:${ports[$((i - 1))]}" || return 1
        cat "$work/out" >>"$work/$pre-peers.txt"
    done
}

check "keygen of three servers" keygen s
check "the line names the server, its URL and three keys" \
    grep -Eq '^server 2 https://127\.0\.0\.1:[0-9]+ sign=[0-9a-f]{64} hpke=[0-9a-f]{64} tls=[0-9a-f]{64}$' "$work/s-peers.txt"
check "secret key files are 0600" \
    bash -c "[ \$(stat -c %a '$work/s1/sign.key') = 600 ] && [ \$(stat -c %a '$work/s1/hpke.key') = 600 ] && [ \$(stat -c %a '$work/s1/tls.key') = 600 ]"
check "public files are readable" same "$(mode "$work/s1/sign.pub")" 644
check "keygen refuses a directory that has keys" \
    run 45 kms threshold keygen --dir "$work/s1" --index 1 --url https://127.0.0.1:1
check "keygen refuses a URL that is not https://HOST:PORT" \
    run 2 kms threshold keygen --dir "$work/x" --index 1 --url http://127.0.0.1:1
check "keygen refuses index 0" run 21 kms threshold keygen --dir "$work/x" --index 0 --url https://127.0.0.1:1

# ceremony PRE TIMEOUT [PEERS1]: three inits in parallel; statuses in $work/PRE-rcI
ceremony() {
    local pre=$1 timeout=$2 peers1=${3:-$work/$1-peers.txt} i peers
    PIDS=()
    for i in 1 2 3; do
        peers=$work/$pre-peers.txt
        [ $i = 1 ] && peers=$peers1
        "$ms" kms init --threshold 1 --servers 3 --dir "$work/$pre$i" --peers "$peers" \
            --passphrase-file "$work/pass" --scrypt-log2n 10 --timeout "$timeout" \
            >"$work/$pre-out$i" 2>"$work/$pre-err$i" &
        PIDS+=($!)
    done
    for i in 1 2 3; do
        wait "${PIDS[$((i - 1))]}"
        echo $? >"$work/$pre-rc$i"
    done
    PIDS=()
}
check "kms init --threshold refuses a table of another t" \
    run 66 kms init --threshold 2 --servers 3 --dir "$work/s1" --peers "$work/s-peers.txt" \
    --passphrase-file "$work/pass"
check "the message names both" err_has "--threshold 2, but"
check "kms init --threshold refuses a table of another n" \
    run 66 kms init --threshold 1 --servers 5 --dir "$work/s1" --peers "$work/s-peers.txt" \
    --passphrase-file "$work/pass"
ceremony s 60
for i in 1 2 3; do
    check "server $i's init succeeded" same "$(cat "$work/s-rc$i")" 0
    [ "$(cat "$work/s-rc$i")" = 0 ] || sed 's/^/  stderr: /' "$work/s-err$i" >&2
done
fp() { sed -n "s/^$1 //p" "$work/s-out$2"; }
check "a fingerprint is printed" test -n "$(fp fingerprint 1)"
for i in 2 3; do
    check "servers 1 and $i agree on the fingerprint" same "$(fp fingerprint $i)" "$(fp fingerprint 1)"
    check "servers 1 and $i agree on Z" same "$(fp Z $i)" "$(fp Z 1)"
    check "servers 1 and $i agree on KPAK" same "$(fp KPAK $i)" "$(fp KPAK 1)"
    check "servers 1 and $i agree on the transcript" same "$(fp transcript $i)" "$(fp transcript 1)"
    check "public.txt of servers 1 and $i differ only in the index" \
        same "$(grep -v '^index' "$work/s$i/public.txt")" "$(grep -v '^index' "$work/s1/public.txt")"
done
check "every dealer qualified" same "$(fp qualified 1)" 00000007
check "Z is a SAKKE point (04, 256 octets)" bash -c "[[ '$(fp Z 1)' =~ ^04[0-9A-F]{512}$ ]]"
check "KPAK is a P-256 point" bash -c "[[ '$(fp KPAK 1)' =~ ^04[0-9A-F]{128}$ ]]"
check "the shares are sealed, mode 0600" same "$(mode "$work/s1/secrets.sealed")" 600
check "a second init in the same directory is refused" \
    run 45 kms threshold init --dir "$work/s1" --peers "$work/s-peers.txt" --passphrase-file "$work/pass" --timeout 5

# ---- the batch of a key period: three users, the three servers together ------------------
printf 'tel:+447700900123\ntel:+447700900456\n# a comment\nsip:alice@org.example\n' >"$work/users"
batch() {
    local i
    PIDS=()
    for i in 1 2 3; do
        "$ms" kms batch --dir "$work/s$i" --peers "$work/s-peers.txt" --period 2026-12 \
            --users "$work/users" --passphrase-file "$work/pass" --timeout 60 \
            >"$work/bt-out$i" 2>"$work/bt-err$i" &
        PIDS+=($!)
    done
    for i in 1 2 3; do
        wait "${PIDS[$((i - 1))]}"
        echo $? >"$work/bt-rc$i"
    done
    PIDS=()
}
batch
for i in 1 2 3; do
    check "server $i's batch succeeded" same "$(cat "$work/bt-rc$i")" 0
    [ "$(cat "$work/bt-rc$i")" = 0 ] || sed 's/^/  stderr: /' "$work/bt-err$i" >&2
done
check "three users in the batch" grep -qx 'users 3' "$work/bt-out1"
for i in 2 3; do
    check "servers 1 and $i hold the same public records" \
        cmp -s "$work/s1/batch-2026-12.records" "$work/s$i/batch-2026-12.records"
    check "servers 1 and $i printed the same digest" same "$(cat "$work/bt-out$i")" "$(cat "$work/bt-out1")"
    check "servers 1 and $i hold different shares" \
        bash -c "! cmp -s '$work/s1/batch-2026-12.sealed' '$work/s$i/batch-2026-12.sealed'"
done
check "the shares are sealed, mode 0600" same "$(mode "$work/s1/batch-2026-12.sealed")" 600
check "the records name the users" grep -qa 'tel:+447700900456' "$work/s1/batch-2026-12.records"
check "no URI in clear in the sealed shares" bash -c "! grep -qa 'tel:+447700900456' '$work/s1/batch-2026-12.sealed'"
# server 1 (t = 1) holds nothing of z, KSAK or another user's keys, in any file or in its
# sealed files once opened (tests/tkms/dir_check.c; the truth from servers 1 and 2)
dircheck=${MS_TKMS_DIR_CHECK:-$(dirname "$ms")/tests/tkms_dir_check}
check "server 1's directory: shares only, no z, KSAK or another user's u, SSK, RSK" \
    "$dircheck" "$work/pass" 2026-12 tel:+447700900123 1 "$work/s1" "$work/s2" "$work/s3"
check "a second batch of the period is refused" \
    run 45 kms threshold batch --dir "$work/s1" --peers "$work/s-peers.txt" --period 2026-12 \
        --users "$work/users" --passphrase-file "$work/pass" --timeout 5
printf 'wrong\n' >"$work/wrongpass"
chmod 600 "$work/wrongpass"
check "a wrong passphrase is refused before any network" \
    run 40 kms threshold batch --dir "$work/s1" --peers "$work/s-peers.txt" --period 2027-01 \
        --users "$work/users" --passphrase-file "$work/wrongpass" --timeout 2

# ---- issuance: each server's share sealed to the device; any two combine -------------------
read -r DEVSK DEVPK < <(python3 -c '
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization as s
k = X25519PrivateKey.generate()
print(k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption()).hex(),
      k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())')
(umask 077; echo "$DEVSK" >"$work/device.key")
U=tel:+447700900456
for i in 1 2 3; do
    check "server $i issues its share" run 0 kms threshold share --dir "$work/s$i" --user "$U" \
        --period 2026-12 --device-pub "$DEVPK" --passphrase-file "$work/pass" --out "$work/share$i"
done
check "a user outside the batch is refused" run 38 kms threshold share --dir "$work/s1" \
    --user tel:+10000000000 --period 2026-12 --device-pub "$DEVPK" --passphrase-file "$work/pass" \
    --out "$work/nope"
combine() { # combine OUTTAG FILES
    run 0 user threshold-combine --shares "$2" --device-key "$work/device.key" \
        --peers "$work/s-peers.txt" --public "$work/s1/public.txt" --user "$U" --period 2026-12 \
        --rsk-out "$work/rsk-$1" --ssk-out "$work/ssk-$1" && cp "$work/out" "$work/pvt-$1"
}
check "shares {1,2} combine and validate" combine 12 "$work/share1,$work/share2"
check "shares {1,3} combine and validate" combine 13 "$work/share1,$work/share3"
check "shares {2,3} combine and validate" combine 23 "$work/share2,$work/share3"
for pair in 13 23; do
    check "RSK of {1,2} = RSK of {${pair:0:1},${pair:1:1}}" cmp -s "$work/rsk-12" "$work/rsk-$pair"
    check "SSK of {1,2} = SSK of {${pair:0:1},${pair:1:1}}" cmp -s "$work/ssk-12" "$work/ssk-$pair"
    check "PVT of {1,2} = PVT of {${pair:0:1},${pair:1:1}}" cmp -s "$work/pvt-12" "$work/pvt-$pair"
done
check "the RSK file is 0600" same "$(mode "$work/rsk-12")" 600
IDHEX=$(printf '2026-12\0%s\0' "$U" | od -An -tx1 | tr -d ' \n')
check "sakke validate accepts the combined RSK" \
    run 0 sakke validate --public "$(sed -n 's/^Z //p' "$work/s-out1")" --id "$IDHEX" --rsk "$work/rsk-12"
check "one share is not enough" run_any "83 1 2 21" user threshold-combine --shares "$work/share1" \
    --device-key "$work/device.key" --peers "$work/s-peers.txt" --public "$work/s1/public.txt" \
    --user "$U" --period 2026-12 --rsk-out "$work/rsk-x" --ssk-out "$work/ssk-x"
# a share altered on its way: named by its server
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[200] ^= 1; open(sys.argv[2], "wb").write(b)' \
    "$work/share2" "$work/share2-bad"
check "a tampered share is refused" run 83 user threshold-combine --shares "$work/share1,$work/share2-bad" \
    --device-key "$work/device.key" --peers "$work/s-peers.txt" --public "$work/s1/public.txt" \
    --user "$U" --period 2026-12 --rsk-out "$work/rsk-y" --ssk-out "$work/ssk-y"
check "the tampered share's server is named" err_has "server 2"
check "another user's shares do not combine for this user" run 83 user threshold-combine \
    --shares "$work/share1,$work/share2" --device-key "$work/device.key" --peers "$work/s-peers.txt" \
    --public "$work/s1/public.txt" --user tel:+447700900123 --period 2026-12 \
    --rsk-out "$work/rsk-z" --ssk-out "$work/ssk-z"

# ---- a wrong pin: server 1's table has another TLS pin for server 2 ------------------------
keygen b
sed -E '/^server 2 /s/tls=([0-9a-f])/tls=f\1/;/^server 2 /s/tls=f([0-9a-f]{63})[0-9a-f]/tls=f\1/' \
    "$work/b-peers.txt" >"$work/b-bad.txt"
check "the bad table differs" bash -c "! cmp -s '$work/b-peers.txt' '$work/b-bad.txt'"
ceremony b 4 "$work/b-bad.txt"
check "server 1 fails" bash -c "[ \$(cat '$work/b-rc1') != 0 ]"
check "server 1 names server 2 and the certificate" \
    bash -c "grep -q 'server 2' '$work/b-err1' && grep -qi 'certificate\|pin\|TLS' '$work/b-err1'"
for i in 2 3; do
    check "server $i fails" bash -c "[ \$(cat '$work/b-rc$i') != 0 ]"
    check "server $i names server 1" grep -q 'server 1' "$work/b-err$i"
done
check "no result is kept" bash -c "[ ! -e '$work/b1/public.txt' ] && [ ! -e '$work/b2/public.txt' ]"
for i in 1 2 3; do sed "s/^/  b$i: /" "$work/b-err$i"; done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
