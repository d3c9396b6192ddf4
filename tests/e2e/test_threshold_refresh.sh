#!/usr/bin/env bash
# Proactive share refresh of a (3,1) threshold KMS on loopback (docs/threshold.md, "Share
# refresh"): ceremony, a batch for 2026-12, `kms threshold refresh` at the three servers,
# then a batch for 2027-01 with the refreshed shares. The device combines valid keys for
# both periods (the old batch stays usable); the fingerprint (Z, KPAK) is unchanged while
# secrets.sealed, the public key shares and the epoch change. A refresh missing a server
# changes nothing; a refresh interrupted before its commit mark is undone and one after
# it is finished by the next command.
# Usage: bash test_threshold_refresh.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_refresh.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/threshold_lib.sh"
code() { sed -n "s/.*MS_ERR_$1 = \([0-9]*\).*/\1/p" "$(dirname "$0")/../../include/mikeysakke/errors.h"; }
pubval() { sed -n "s/^$2 //p" "$work/s$1/public.txt"; }

check "keygen of three servers" tk_keygen s 3 1
tk_ceremony s "1 2 3" 60
check "the ceremony succeeded at every server" tk_all_ok s init "1 2 3"
FP=$(sed -n 's/^fingerprint //p' "$work/s-init-out1")
Z0=$(pubval 1 Z)
K0=$(pubval 1 kpak)
ZJ0=$(pubval 1 "Zj 2")
printf 'tel:+447700900456\nsip:bob@org.example\n' >"$work/users"
tk_batch s "1 2 3" 2026-12 "$work/users" 60
check "the 2026-12 batch succeeded" tk_all_ok s batch-2026-12 "1 2 3"
for i in 1 2 3; do cp "$work/s$i/secrets.sealed" "$work/sealed-before$i"; done

refresh() { # refresh TAG "SERVERS" TIMEOUT
    tk_parallel s "$1" "$2" kms threshold refresh --peers "$work/s-peers.txt" \
        --passphrase-file "$work/pass" --timeout "$3"
}

# a refresh with server 3 absent: nothing changes anywhere
refresh absent "1 2" 3
check "without server 3 the refresh fails at server 1 (unreachable)" \
    same "$(cat "$work/s-absent-rc1")" "$(code UNREACHABLE)"
check "and at server 2" same "$(cat "$work/s-absent-rc2")" "$(code UNREACHABLE)"
check "naming the missing server" grep -q "server 3" "$work/s-absent-err1"
for i in 1 2; do
    check "server $i kept its secrets.sealed" cmp -s "$work/s$i/secrets.sealed" "$work/sealed-before$i"
    check "server $i has no new file left" \
        bash -c "! ls '$work/s$i' | grep -q -e '\.new\$' -e refresh.commit"
done

refresh r1 "1 2 3" 60
check "the refresh succeeded at every server" tk_all_ok s r1 "1 2 3"
for i in 1 2 3; do
    check "server $i prints the same fingerprint" same "$(sed -n 's/^fingerprint //p' "$work/s-r1-out$i")" "$FP"
    check "server $i is at epoch 1" same "$(sed -n 's/^epoch //p' "$work/s-r1-out$i")" 1
    check "server $i's public.txt says epoch 1" same "$(pubval $i epoch)" 1
    check "server $i's secrets.sealed changed" bash -c "! cmp -s '$work/s$i/secrets.sealed' '$work/sealed-before$i'"
    check "server $i's secrets.sealed is still 0600" same "$(mode "$work/s$i/secrets.sealed")" 600
    check "server $i: Z unchanged" same "$(pubval $i Z)" "$Z0"
    check "server $i: KPAK unchanged" same "$(pubval $i kpak)" "$K0"
    check "server $i: no leftover" bash -c "! ls '$work/s$i' | grep -q -e '\.new\$' -e refresh.commit"
done
check "the ceremony's public.txt is kept as public-e0.txt" \
    same "$(sed -n 's/^Zj 2 //p' "$work/s1/public-e0.txt")" "$ZJ0"
check "the public key share of server 2 changed" bash -c "[ '$(pubval 1 "Zj 2")' != '$ZJ0' ]"
check "the three public.txt agree but for the index" \
    bash -c "diff <(grep -v '^index' '$work/s1/public.txt') <(grep -v '^index' '$work/s3/public.txt')"

tk_batch s "1 2 3" 2027-01 "$work/users" 60
check "the 2027-01 batch with the refreshed shares succeeded" tk_all_ok s batch-2027-01 "1 2 3"

read -r DEVSK DEVPK < <(python3 -c '
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization as s
k = X25519PrivateKey.generate()
print(k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption()).hex(),
      k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())')
(umask 077; echo "$DEVSK" >"$work/device.key")
U=tel:+447700900456
share() { # share SERVER PERIOD OUT
    run 0 kms threshold share --dir "$work/s$1" --user "$U" --period "$2" --device-pub "$DEVPK" \
        --out "$3" --passphrase-file "$work/pass"
}
combine() { # combine PERIOD F1,F2 TAG
    run 0 user threshold-combine --shares "$2" --device-key "$work/device.key" \
        --peers "$work/s-peers.txt" --public "$work/s1/public.txt" --user "$U" --period "$1" \
        --rsk-out "$work/rsk-$3" --ssk-out "$work/ssk-$3"
}
for period in 2026-12 2027-01; do
    for i in 1 2 3; do
        check "server $i issues its $period share" share $i "$period" "$work/sh-$period-$i"
    done
    check "$period: servers 1 and 2 combine into valid keys" \
        combine "$period" "$work/sh-$period-1,$work/sh-$period-2" "$period-12"
    check "$period: servers 2 and 3 combine into valid keys" \
        combine "$period" "$work/sh-$period-2,$work/sh-$period-3" "$period-23"
    check "$period: the same RSK from both pairs" cmp -s "$work/rsk-$period-12" "$work/rsk-$period-23"
done
check "the two periods' RSKs differ" bash -c "! cmp -s '$work/rsk-2026-12-12' '$work/rsk-2027-01-12'"

# a second refresh: epoch 2, same fingerprint
for i in 1 2 3; do cp "$work/s$i/secrets.sealed" "$work/sealed-e1-$i"; cp "$work/s$i/public.txt" "$work/public-e1-$i"; done
refresh r2 "1 2 3" 60
check "a second refresh succeeded" tk_all_ok s r2 "1 2 3"
check "epoch 2" same "$(pubval 2 epoch)" 2
check "same fingerprint after two refreshes" same "$(sed -n 's/^fingerprint //p' "$work/s-r2-out2")" "$FP"

# crash after the commit mark at server 3: the new pair beside the old, the mark present;
# the next command finishes the refresh and issues
cp "$work/s3/secrets.sealed" "$work/s3/secrets.sealed.new"
cp "$work/s3/public.txt" "$work/s3/public.txt.new"
cp "$work/sealed-e1-3" "$work/s3/secrets.sealed"
cp "$work/public-e1-3" "$work/s3/public.txt"
echo 2 >"$work/s3/refresh.commit"
check "after a crash past the mark, server 3 issues (the refresh is finished)" \
    share 3 2027-01 "$work/sh-after-crash"
check "server 3 is at epoch 2 again" same "$(pubval 3 epoch)" 2
check "the mark is gone" test ! -e "$work/s3/refresh.commit"
check "its share combines with server 1's" \
    combine 2027-01 "$work/sh-2027-01-1,$work/sh-after-crash" crash
# crash before the mark: the half-made new pair is dropped, the current pair stands
echo junk >"$work/s3/secrets.sealed.new"
echo junk >"$work/s3/public.txt.new"
check "after a crash before the mark, server 3 issues" share 3 2026-12 "$work/sh-after-crash2"
check "the half-made files are gone" \
    bash -c "[ ! -e '$work/s3/secrets.sealed.new' ] && [ ! -e '$work/s3/public.txt.new' ]"

want=$(code USAGE)
check "refresh needs unlock material" run "$want" kms threshold refresh --dir "$work/s1" \
    --peers "$work/s-peers.txt"
check "--share-out-dir without --share is refused" run "$want" kms threshold refresh \
    --dir "$work/s1" --peers "$work/s-peers.txt" --passphrase-file "$work/pass" \
    --share-out-dir "$work/c"
printf 'wrong\n' >"$work/wrongpass"
chmod 600 "$work/wrongpass"
check "a wrong passphrase is refused before any round" run "$(code PASSPHRASE)" kms threshold \
    refresh --dir "$work/s1" --peers "$work/s-peers.txt" --passphrase-file "$work/wrongpass" \
    --timeout 2

# ---- the other seals: server 1 under 2-of-3 custodian shares, server 2 with a key in a
# PKCS#11 token (SoftHSM2), server 3 under a passphrase; the refresh seals each the same way
MODULE=/usr/lib/softhsm/libsofthsm2.so
check "SoftHSM2 installed" test -r "$MODULE"
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$work/tokens" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
check "token" softhsm2-util --init-token --free --label tkms --pin 1234 --so-pin 5678 >/dev/null
printf '1234\n' >"$work/pin"
chmod 600 "$work/pin"
check "keygen of three more servers" tk_keygen c 3 1
seal_args() {
    case $1 in
    1) echo --shares 2/3 --share-out-dir "$work/cust" ;;
    2) echo --pkcs11-module "$MODULE" --token tkms --pin-file "$work/pin" ;;
    3) echo --passphrase-file "$work/pass" --scrypt-log2n 10 ;;
    esac
}
unlock_args() { # unlock_args SERVER CUSTODIAN_DIR
    case $1 in
    1) echo --share "$2/share-1.key,$2/share-3.key" ;;
    2) echo --pin-file "$work/pin" ;;
    3) echo --passphrase-file "$work/pass" ;;
    esac
}
parallel() { # parallel TAG CMD-FOR-SERVER (a function of the index)
    local tag=$1 fn=$2 i pids=()
    for i in 1 2 3; do
        # shellcheck disable=SC2046
        "$ms" $($fn $i) >"$work/c-$tag-out$i" 2>"$work/c-$tag-err$i" &
        pids+=($!)
    done
    for i in 1 2 3; do
        wait "${pids[$((i - 1))]}"
        echo $? >"$work/c-$tag-rc$i"
    done
}
c_init() { echo kms threshold init --dir "$work/c$1" --peers "$work/c-peers.txt" --timeout 60 $(seal_args $1); }
parallel init c_init
check "the three seals' ceremony succeeded" tk_all_ok c init "1 2 3"
for i in 1 2 3; do cp "$work/c$i/secrets.sealed" "$work/c-before$i"; done
c_refresh() {
    local extra=""
    [ "$1" = 1 ] && extra="--share-out-dir $work/cust2"
    echo kms threshold refresh --dir "$work/c$1" --peers "$work/c-peers.txt" --timeout 60 \
        $(unlock_args $1 "$work/cust") $extra
}
parallel refresh c_refresh
check "the refresh of the three seals succeeded" tk_all_ok c refresh "1 2 3"
check "server 1 handed out three new custodian shares" \
    bash -c "[ \$(grep -c '^custodian share' '$work/c-refresh-out1') = 3 ]"
check "the new custodian shares are 0600" same "$(mode "$work/cust2/share-2.key")" 600
for i in 1 2 3; do
    check "c$i: secrets.sealed changed" bash -c "! cmp -s '$work/c$i/secrets.sealed' '$work/c-before$i'"
done
printf 'tel:+447700900456\n' >"$work/cusers"
c_batch() {
    local d="$work/cust2"
    echo kms threshold batch --dir "$work/c$1" --peers "$work/c-peers.txt" --period 2027-02 \
        --users "$work/cusers" --timeout 60 $(unlock_args $1 "$d")
}
want=$(code SHARE)
check "the old custodian shares no longer open server 1" \
    run "$want" kms threshold share --dir "$work/c1" --user "$U" --period 2027-02 \
    --device-pub "$DEVPK" --out "$work/x" --share "$work/cust/share-1.key,$work/cust/share-2.key"
check "the message says they are of another seal" err_has "seal id differs"
parallel batch c_batch
check "a batch opens every refreshed seal (new custodian shares, same PIN, same passphrase)" \
    tk_all_ok c batch "1 2 3"
for i in 1 2; do
    # shellcheck disable=SC2046
    check "c$i issues" run 0 kms threshold share --dir "$work/c$i" --user "$U" --period 2027-02 \
        --device-pub "$DEVPK" --out "$work/csh$i" $(unlock_args $i "$work/cust2")
done
check "the custodian-sealed and the PKCS#11 server's shares combine" \
    run 0 user threshold-combine --shares "$work/csh1,$work/csh2" --device-key "$work/device.key" \
    --peers "$work/c-peers.txt" --public "$work/c1/public.txt" --user "$U" --period 2027-02 \
    --rsk-out "$work/crsk" --ssk-out "$work/cssk"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
