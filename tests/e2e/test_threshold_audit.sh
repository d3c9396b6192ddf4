#!/usr/bin/env bash
# Audited extraction at a threshold KMS (docs/threshold.md, "Audited extraction"), with the
# real commands: three servers made by `kms threshold keygen/init/batch`, the warrant keys
# fixed at each by `kms threshold audit-setup` (the same "roles" hash everywhere), the
# servers running `kms serve --dir D` (threshold mode). A warrant signed by the authority
# alone is logged by no server and nothing is released; signed by the approver too,
# `kms audit extract --threshold` gets t+1 shares and writes the RSK the user's device
# combines from its own shares; `kms audit verify --dir D` at each server that released
# shows the extraction, and at the one that did not, none. An expired warrant is refused;
# a server whose audit log is read-only releases nothing and the others still serve.
# Then at (5,2): a warrant without its second signature is refused by all five servers;
# with it, servers 1, 2 and 3 release (each logged first), 4 and 5 log the warrant only, and
# the RSK validates.
# Usage: bash test_threshold_audit.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_audit.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/threshold_lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
code() { grep -o "MS_ERR_$1 = [0-9]*" "$(dirname "$0")/../../include/mikeysakke/errors.h" | grep -o '[0-9]*$'; }

P=2026-12
ALICE=tel:+447700900123
BOB=sip:bob@org.example
printf '%s\n%s\n' "$ALICE" "$BOB" >"$work/users.txt"
check "keys of three servers" tk_keygen s 3 1
tk_ceremony s "1 2 3" 60
check "the ceremony" tk_all_ok s init "1 2 3"
tk_batch s "1 2 3" $P "$work/users.txt" 60
check "the batch" tk_all_ok s batch-$P "1 2 3"

# the warrant keys, made away from the servers
for r in authority approver auditor; do
    check "audit-keygen $r" run 0 kms threshold audit-keygen --role $r --out "$work/$r.key"
done
check "the private key is 0600" same "$(mode "$work/authority.key")" 600
check "audit-keygen refuses another role" run "$(code USAGE)" kms threshold audit-keygen \
    --role officer --out "$work/x.key"
roles=""
for i in 1 2 3; do
    check "audit-setup at server $i" run 0 kms threshold audit-setup --dir "$work/s$i" \
        --authority "$work/authority.key.pub" --approver "$work/approver.key.pub"
    r=$(sed -n 's/^roles //p' "$work/out")
    [ -z "$roles" ] && roles=$r
    check "server $i has the same roles hash" same "$r" "$roles"
done
check "audit-setup twice is refused" run "$(code EXISTS)" kms threshold audit-setup \
    --dir "$work/s1" --authority "$work/authority.key.pub" --approver "$work/approver.key.pub"
check "the authority as its own approver is refused" run "$(code ARG)" kms threshold \
    audit-setup --dir "$work/x" --authority "$work/authority.key.pub" \
    --approver "$work/authority.key.pub"

# the servers
SERVE_PIDS=()
stop_servers() { for p in "${SERVE_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; SERVE_PIDS=(); }
trap 'stop_servers; tk_cleanup' EXIT
for i in 1 2 3; do
    "$ms" kms serve --dir "$work/s$i" --passphrase-file "$work/pass" \
        >"$work/serve-out$i" 2>"$work/serve-err$i" &
    SERVE_PIDS+=($!)
done
ready() { # every server printed its "serving on port" line (up to 30 s)
    local i k all
    for ((k = 0; k < 300; k++)); do
        all=1
        for i in 1 2 3; do grep -q 'serving on port' "$work/serve-out$i" || all=0; done
        [ $all = 1 ] && return 0
        sleep 0.1
    done
    cat "$work"/serve-err* >&2
    return 1
}
check "three servers serving" ready

warrant() { # warrant FILE USER [EXPIRES_IN]: an unsigned warrant for USER in P
    run 0 kms threshold warrant --user "$2" --period $P --auditor-pub "$work/auditor.key.pub" \
        --reason "warrant 2026/118" --expires-in "${3:-3600}" --out "$1"
}
extract() { # extract STATUS WARRANT OUT
    run "$1" kms audit extract --threshold --peers "$work/s-peers.txt" \
        --public "$work/s1/public.txt" --warrant "$2" --auditor-key "$work/auditor.key" \
        --out "$3"
}
extractions() { # extractions I: the count `kms audit verify` reports at server I
    run 0 kms audit verify --dir "$work/s$1" && sed -n 's/^\([0-9]*\) extractions\{0,1\},.*/\1/p' "$work/out"
}

check "a warrant for bob" warrant "$work/w1" "$BOB"
check "it names the user, period and auditor key" \
    grep -q "^user=$BOB$" "$work/w1"
check "signed by the authority" run 0 kms threshold warrant-sign --warrant "$work/w1" \
    --key "$work/authority.key"
check "signing twice with one key is refused" run "$(code EXISTS)" kms threshold warrant-sign \
    --warrant "$work/w1" --key "$work/authority.key"
check "the authority's signature alone: logged nowhere, refused" \
    extract "$(code WARRANT_UNLOGGED)" "$work/w1" "$work/rsk0"
check "the refusal says why" err_has "not signed by a second approver"
check "no RSK written" test ! -e "$work/rsk0"
for i in 1 2 3; do
    check "server $i logged no extraction" same "$(extractions $i)" 0
done

check "signed by the approver" run 0 kms threshold warrant-sign --warrant "$work/w1" \
    --key "$work/approver.key"
check "kms audit extract --threshold" extract 0 "$work/w1" "$work/bob.rsk"
check "shares from servers 1 and 2" grep -q '^shares from servers 1 2$' "$work/out"
check "logged by the three servers" grep -q '^logged by servers 1 2 3$' "$work/out"
check "the RSK is 0600" same "$(mode "$work/bob.rsk")" 600
check "audit verify at server 1 shows the extraction" same "$(extractions 1)" 1
check "  with the warrant's user and period" grep -q "extraction: .*event=extract .*user=$BOB period=$P" "$work/out"
check "audit verify at server 2 shows it" same "$(extractions 2)" 1
check "server 3 released nothing" same "$(extractions 3)" 0

# the device's own RSK, from servers 1 and 3
check "device key" run 0 kms threshold audit-keygen --role auditor --out "$work/device.key"
dpub=$(cat "$work/device.key.pub")
for i in 1 3; do
    check "share of server $i" run 0 kms threshold share --dir "$work/s$i" --user "$BOB" \
        --period $P --device-pub "$dpub" --passphrase-file "$work/pass" --out "$work/share$i"
done
check "user threshold-combine" run 0 user threshold-combine --shares "$work/share1,$work/share3" \
    --device-key "$work/device.key" --peers "$work/s-peers.txt" --public "$work/s1/public.txt" \
    --user "$BOB" --period $P --rsk-out "$work/device.rsk" --ssk-out "$work/device.ssk"
check "the extracted RSK is the user's" cmp -s "$work/bob.rsk" "$work/device.rsk"

check "an expiring warrant" warrant "$work/w2" "$ALICE" 1
run 0 kms threshold warrant-sign --warrant "$work/w2" --key "$work/authority.key"
run 0 kms threshold warrant-sign --warrant "$work/w2" --key "$work/approver.key"
sleep 2
check "expired: refused" extract "$(code WARRANT_UNLOGGED)" "$work/w2" "$work/rsk2"
check "  because it expired" err_has "expired"

# server 1 cannot write its audit log: it releases nothing, servers 2 and 3 do
chmod 400 "$work/s1/audit.log"
check "a warrant for alice" warrant "$work/w3" "$ALICE"
run 0 kms threshold warrant-sign --warrant "$work/w3" --key "$work/authority.key"
run 0 kms threshold warrant-sign --warrant "$work/w3" --key "$work/approver.key"
check "extraction with server 1's log read-only" extract 0 "$work/w3" "$work/alice.rsk"
check "shares from servers 2 and 3" grep -q '^shares from servers 2 3$' "$work/out"
chmod 600 "$work/s1/audit.log"
check "server 1 logged no second extraction" same "$(extractions 1)" 1
check "server 3 logged alice's" same "$(extractions 3)" 1
ALICE_HEX=$(printf '%s\0%s\0' $P "$ALICE" | od -An -tx1 | tr -d ' \n')
check "alice's RSK validates" run 0 sakke validate --public "$(sed -n 's/^Z //p' "$work/s-init-out1")" \
    --id "$ALICE_HEX" --rsk "$work/alice.rsk"

check "a second warrant for bob" warrant "$work/w4" "$BOB"
run 0 kms threshold warrant-sign --warrant "$work/w4" --key "$work/approver.key"
run 0 kms threshold warrant-sign --warrant "$work/w4" --key "$work/authority.key"
check "extract --json" run 0 kms audit extract --threshold --peers "$work/s-peers.txt" \
    --public "$work/s1/public.txt" --warrant "$work/w4" --auditor-key "$work/auditor.key" \
    --out "$work/bob2.rsk" --json
check "  one JSON object naming the servers" python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["shares_from"] == [1, 2] and o["logged_by"] == [1, 2, 3] and o["period"] == "2026-12", o
' "$work/out"
check "  the same RSK" cmp -s "$work/bob2.rsk" "$work/bob.rsk"

stop_servers

# ---- (5,2) ---------------------------------------------------------------------------------
check "(5,2) keys of five servers" tk_keygen f 5 2
tk_ceremony f "1 2 3 4 5" 120
check "(5,2) the ceremony" tk_all_ok f init "1 2 3 4 5"
tk_batch f "1 2 3 4 5" $P "$work/users.txt" 120
check "(5,2) the batch" tk_all_ok f batch-$P "1 2 3 4 5"
for i in 1 2 3 4 5; do
    check "(5,2) audit-setup at server $i" run 0 kms threshold audit-setup --dir "$work/f$i" \
        --authority "$work/authority.key.pub" --approver "$work/approver.key.pub"
    "$ms" kms serve --dir "$work/f$i" --passphrase-file "$work/pass" \
        >"$work/fserve-out$i" 2>"$work/fserve-err$i" &
    SERVE_PIDS+=($!)
done
fready() {
    local i k all
    for ((k = 0; k < 300; k++)); do
        all=1
        for i in 1 2 3 4 5; do grep -q 'serving on port' "$work/fserve-out$i" || all=0; done
        [ $all = 1 ] && return 0
        sleep 0.1
    done
    cat "$work"/fserve-err* >&2
    return 1
}
check "(5,2) five servers serving" fready
fextract() { # fextract STATUS WARRANT OUT
    run "$1" kms audit extract --threshold --peers "$work/f-peers.txt" \
        --public "$work/f1/public.txt" --warrant "$2" --auditor-key "$work/auditor.key" \
        --out "$3"
}
fextractions() {
    run 0 kms audit verify --dir "$work/f$1" && sed -n 's/^\([0-9]*\) extractions\{0,1\},.*/\1/p' "$work/out"
}
check "(5,2) a warrant for alice" warrant "$work/f-w1" "$ALICE"
run 0 kms threshold warrant-sign --warrant "$work/f-w1" --key "$work/authority.key"
check "(5,2) the authority's signature alone: refused" \
    fextract "$(code WARRANT_UNLOGGED)" "$work/f-w1" "$work/f-rsk0"
for i in 1 2 3 4 5; do
    check "(5,2) server $i released nothing" same "$(fextractions $i)" 0
done
run 0 kms threshold warrant-sign --warrant "$work/f-w1" --key "$work/approver.key"
check "(5,2) kms audit extract --threshold" fextract 0 "$work/f-w1" "$work/f-alice.rsk"
check "(5,2) shares from servers 1, 2 and 3" grep -q '^shares from servers 1 2 3$' "$work/out"
check "(5,2) logged by the five servers" grep -q '^logged by servers 1 2 3 4 5$' "$work/out"
for i in 1 2 3; do
    check "(5,2) audit verify at server $i shows the extraction" same "$(fextractions $i)" 1
done
for i in 4 5; do
    check "(5,2) server $i released nothing" same "$(fextractions $i)" 0
done
check "(5,2) the extracted RSK validates" run 0 sakke validate \
    --public "$(sed -n 's/^Z //p' "$work/f-init-out1")" --id "$ALICE_HEX" --rsk "$work/f-alice.rsk"
stop_servers
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
