#!/usr/bin/env bash
# Threshold servers sealed as the single-server KMS seals (docs/threshold.md): at (3,1),
# server 1 seals its shares of z and KSAK under 2-of-3 custodian shares, server 2 with a
# key in a PKCS#11 token (SoftHSM2), server 3 under a passphrase. The batch and issuance
# then open each with its own material (--share, --pin-file, --passphrase-file), two
# servers' shares combine into valid keys, and wrong or missing material is refused
# naming what was wrong. Then the custodian-sealed and the token-sealed servers enrol a
# device and serve it (`kms serve --share` / `--pin-file`), and `user fetch` gets its keys.
# Usage: bash test_threshold_seal.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_seal.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/threshold_lib.sh"
code() { sed -n "s/.*MS_ERR_$1 = \([0-9]*\).*/\1/p" "$(dirname "$0")/../../include/mikeysakke/errors.h"; }

MODULE=/usr/lib/softhsm/libsofthsm2.so
check "SoftHSM2 installed" test -r "$MODULE"
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$work/tokens" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
check "token" softhsm2-util --init-token --free --label tkms --pin 1234 --so-pin 5678 >/dev/null
printf '1234\n' >"$work/pin"
printf '9999\n' >"$work/badpin"
chmod 600 "$work/pin" "$work/badpin"

check "keygen of three servers" tk_keygen s 3 1
# refused before any network: the option's name in the message
check "init refuses --timeout 0" run "$(code USAGE)" kms threshold init --dir "$work/s1" \
    --peers "$work/s-peers.txt" --passphrase-file "$work/pass" --timeout 0
check "  naming it" err_has "--timeout"
check "batch refuses a timeout over a day" run "$(code USAGE)" kms batch --dir "$work/s1" \
    --peers "$work/s-peers.txt" --period 2026-12 --users /dev/null \
    --passphrase-file "$work/pass" --timeout 86401
check "init refuses --share-out-dir without --shares" run "$(code USAGE)" kms threshold init \
    --dir "$work/s1" --peers "$work/s-peers.txt" --passphrase-file "$work/pass" \
    --share-out-dir "$work/c0"
check "refresh refuses --share-out-dir without --share" run "$(code USAGE)" \
    kms threshold refresh --dir "$work/s1" --peers "$work/s-peers.txt" \
    --passphrase-file "$work/pass" --share-out-dir "$work/c0"
check "nothing was made" test ! -e "$work/c0"
# each server's seal: custodian shares, PKCS#11, passphrase
seal_args() {
    case $1 in
    1) echo --shares 2/3 --share-out-dir "$work/custodians" ;;
    2) echo --pkcs11-module "$MODULE" --token tkms --pin-file "$work/pin" ;;
    3) echo --passphrase-file "$work/pass" ;;
    esac
}
unlock_args() {
    case $1 in
    1) echo --share "$work/custodians/share-1.key,$work/custodians/share-3.key" ;;
    2) echo --pin-file "$work/pin" ;;
    3) echo --passphrase-file "$work/pass" ;;
    esac
}
pids=()
for i in 1 2 3; do
    # shellcheck disable=SC2046
    "$ms" kms threshold init --dir "$work/s$i" --peers "$work/s-peers.txt" --scrypt-log2n 10 \
        --timeout 60 $(seal_args $i) >"$work/init-out$i" 2>"$work/init-err$i" &
    pids+=($!)
done
for i in 1 2 3; do
    wait "${pids[$((i - 1))]}"
    rc=$?
    check "server $i's init succeeded" same "$rc" 0
    [ "$rc" = 0 ] || sed 's/^/  stderr: /' "$work/init-err$i" >&2
done
check "server 1 handed out three custodian shares" \
    bash -c "[ \$(grep -c '^custodian share' '$work/init-out1') = 3 ]"
check "the custodian shares are 0600" same "$(mode "$work/custodians/share-2.key")" 600
check "the three agree on Z" same "$(sed -n 's/^Z //p' "$work/init-out2")" "$(sed -n 's/^Z //p' "$work/init-out1")"
check "init refuses two seals at once" run "$(code USAGE)" kms threshold init --dir "$work/x" \
    --peers "$work/s-peers.txt" --passphrase-file "$work/pass" --shares 2/3 --share-out-dir "$work/c2"

printf 'tel:+447700900456\n' >"$work/users"
pids=()
for i in 1 2 3; do
    # shellcheck disable=SC2046
    "$ms" kms threshold batch --dir "$work/s$i" --peers "$work/s-peers.txt" --period 2026-12 \
        --users "$work/users" --timeout 60 $(unlock_args $i) >"$work/bt-out$i" 2>"$work/bt-err$i" &
    pids+=($!)
done
for i in 1 2 3; do
    wait "${pids[$((i - 1))]}"
    rc=$?
    check "server $i's batch opened its seal and succeeded" same "$rc" 0
    [ "$rc" = 0 ] || sed 's/^/  stderr: /' "$work/bt-err$i" >&2
done

read -r DEVSK DEVPK < <(python3 -c '
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization as s
k = X25519PrivateKey.generate()
print(k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption()).hex(),
      k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())')
(umask 077; echo "$DEVSK" >"$work/device.key")
U=tel:+447700900456
share() { # share I OUT UNLOCK...
    local i=$1 out=$2
    shift 2
    run "${want:-0}" kms threshold share --dir "$work/s$i" --user "$U" --period 2026-12 \
        --device-pub "$DEVPK" --out "$out" "$@"
}
for i in 1 2 3; do
    # shellcheck disable=SC2046
    check "server $i issues with its unlock material" share $i "$work/share$i" $(unlock_args $i)
done
check "shares of the custodian-sealed and the PKCS#11 server combine" \
    run 0 user threshold-combine --shares "$work/share1,$work/share2" --device-key "$work/device.key" \
    --peers "$work/s-peers.txt" --public "$work/s1/public.txt" --user "$U" --period 2026-12 \
    --rsk-out "$work/rsk12" --ssk-out "$work/ssk12"
check "and equal those of servers 2 and 3" \
    run 0 user threshold-combine --shares "$work/share2,$work/share3" --device-key "$work/device.key" \
    --peers "$work/s-peers.txt" --public "$work/s1/public.txt" --user "$U" --period 2026-12 \
    --rsk-out "$work/rsk23" --ssk-out "$work/ssk23"
check "the RSKs are equal" cmp -s "$work/rsk12" "$work/rsk23"

want=$(code SHARE) check "one custodian share is not enough" \
    share 1 "$work/x1" --share "$work/custodians/share-2.key"
check "the message counts the shares" err_has "needs 2 custodian shares, 1 given"
want=$(code SHARE) check "a passphrase for a share-sealed server is refused" \
    share 1 "$work/x2" --passphrase-file "$work/pass"
check "the message names the seal" err_has "sealed with custodian shares"
want=$(code PKCS11) check "a wrong PIN is refused" share 2 "$work/x3" --pin-file "$work/badpin"
check "the message names the token" err_has "wrong PIN"
want=$(code USAGE) check "two unlock options at once are refused" \
    share 3 "$work/x4" --passphrase-file "$work/pass" --pin-file "$work/pin"
check "nothing was written on a refusal" bash -c "[ ! -e '$work/x1' ] && [ ! -e '$work/x3' ]"

# ---- enrolment and serving, opened by custodian shares and by the token ------------------
SERVE_PIDS=()
trap 'for p in "${SERVE_PIDS[@]}"; do kill "$p" 2>/dev/null; done; tk_cleanup' EXIT
printf 'keystore passphrase\n' >"$work/upass"
chmod 600 "$work/upass"
check "the device's keystore and keys" run 0 user threshold-init --keystore "$work/ks" \
    --user "$U" --device-id phone --peers "$work/s-peers.txt" --public "$work/s1/public.txt" \
    --out "$work/phone.dev" --passphrase-file "$work/upass" --scrypt-cost 10
for i in 1 2; do
    # shellcheck disable=SC2046
    check "server $i enrols the device with its own unlock material" run 0 kms threshold enrol \
        --dir "$work/s$i" --user "$U" --device-id phone --device-pubs "$work/phone.dev" \
        $(unlock_args $i)
done
serve() {
    local i=$1 k
    # shellcheck disable=SC2046
    "$ms" kms serve --dir "$work/s$i" $(unlock_args $i) >"$work/serve-out$i" 2>"$work/serve-err$i" &
    SERVE_PIDS+=($!)
    for ((k = 0; k < 300; k++)); do
        grep -q 'serving on port' "$work/serve-out$i" 2>/dev/null && return 0
        sleep 0.1
    done
    sed "s/^/  serve s$i: /" "$work/serve-err$i" >&2
    return 1
}
check "kms serve opens the custodian-sealed server with two shares" serve 1
check "kms serve opens the token-sealed server with its PIN" serve 2
check "user fetch gets the keys from those two servers" run 0 user fetch --keystore "$work/ks" \
    --passphrase-file "$work/upass" --period 2026-12 --order listed --timeout 5

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
