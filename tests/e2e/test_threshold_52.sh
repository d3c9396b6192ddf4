#!/usr/bin/env bash
# The threshold KMS at (n, t) = (5, 2) on loopback, five server processes
# (docs/threshold.md): the ceremony, the batch with all five (2t+1 = 5; four signatures
# activate it), shares from different sets of t+1 = 3 servers combine into the same keys,
# which `sakke validate` accepts; two shares are not enough. Then a batch with server 4
# down fails at every other server, naming server 4, and keeps nothing; a live set of four
# is refused at (5,2).
# Usage: bash test_threshold_52.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_52.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
. "$(dirname "$0")/threshold_lib.sh"

ALL="1 2 3 4 5"
check "keygen of five servers" tk_keygen f 5 2
tk_ceremony f "$ALL" 120
check "the ceremony of five succeeded" tk_all_ok f init "$ALL"
fp() { sed -n "s/^$1 //p" "$work/f-init-out$2"; }
for i in 2 3 4 5; do
    check "servers 1 and $i agree on Z, KPAK and the transcript" \
        same "$(fp Z $i)$(fp KPAK $i)$(fp transcript $i)" "$(fp Z 1)$(fp KPAK 1)$(fp transcript 1)"
done
check "every dealer qualified" same "$(fp qualified 1)" 0000001f

printf 'tel:+447700900123\ntel:+447700900456\nsip:alice@org.example\n' >"$work/users"
tk_batch f "$ALL" 2026-12 "$work/users" 120
check "the batch of all five succeeded" tk_all_ok f batch-2026-12 "$ALL"
for i in 2 3 4 5; do
    check "servers 1 and $i: the same records and root" \
        same "$(cat "$work/f-batch-2026-12-out$i")" "$(cat "$work/f-batch-2026-12-out1")"
done
check "five signatures in the root file" same "$(grep -c '^sig ' "$work/f1/batch-2026-12.root")" 5

tk_device
U=sip:alice@org.example
for i in $ALL; do
    check "server $i issues its share" tk_share 0 f $i "$U" 2026-12 "$work/share$i"
done
S() { local out="" k; for k in $(grep -o . <<<"$1"); do out="$out${out:+,}$work/share$k"; done; echo "$out"; }
for set in 123 345 135 245 514; do
    check "shares {$set} combine and validate" tk_combine 0 f "$set" "$U" 2026-12 "$(S $set)"
done
for set in 345 135 245 514; do
    check "RSK {123} = RSK {$set}" cmp -s "$work/rsk-123" "$work/rsk-$set"
    check "SSK {123} = SSK {$set}" cmp -s "$work/ssk-123" "$work/ssk-$set"
    check "PVT {123} = PVT {$set}" cmp -s "$work/pvt-123" "$work/pvt-$set"
done
for set in 123 245; do
    check "sakke validate accepts the RSK of {$set}" \
        run 0 sakke validate --public "$(fp Z 1)" --id "$(tk_idhex "$U" 2026-12)" --rsk "$work/rsk-$set"
done
check "two shares are not enough" run_any "83 1 2 21" user threshold-combine --shares "$(S 12)" \
    --device-key "$work/device.key" --peers "$work/f-peers.txt" --public "$work/f1/public.txt" \
    --user "$U" --period 2026-12 --rsk-out "$work/rsk-x" --ssk-out "$work/ssk-x"

# ---- server 4 down: the batch of all five fails, naming it ---------------------------------
tk_batch f "1 2 3 5" 2027-01 "$work/users" 5
for i in 1 2 3 5; do
    check "server $i's batch fails" bash -c "[ \$(cat '$work/f-batch-2027-01-rc$i') != 0 ]"
    check "server $i names server 4" grep -q 'server 4' "$work/f-batch-2027-01-err$i"
done
sed 's/^/  f1: /' "$work/f-batch-2027-01-err1"
check "nothing of 2027-01 is kept" bash -c "! ls '$work'/f?/batch-2027-01.* >/dev/null 2>&1"
check "a live set of four is refused at (5,2)" \
    run 2 kms threshold batch --dir "$work/f1" --peers "$work/f-peers.txt" --period 2027-01 \
        --users "$work/users" --passphrase-file "$work/pass" --timeout 2 --servers 1,2,3,5
check "... it needs five" err_has "needs at least 5 live servers"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
