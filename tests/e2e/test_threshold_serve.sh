#!/usr/bin/env bash
# The threshold KMS serving devices on loopback (docs/threshold.md, "Enrolment", "Serving",
# "Fetching"), at (n, t) = (3, 1) and (5, 2): ceremony and batch (threshold_lib.sh); two
# users' devices made with `user threshold-init` and enrolled (`kms threshold enrol`)
# at every server for alice and at t+1 servers for bob; `kms serve` for every server;
# `user fetch` stores keys that a MIKEY exchange between the two keystores then uses;
# the same keys from different server subsets (servers stopped to force them); n-t-1
# servers down still works, fewer than t+1 up is refused naming the servers; a device
# that is not enrolled, a replayed request, a server with a wrong share (tkms_tool alter:
# the device names it and succeeds from the others while enough are up); the answer
# holds no share in clear; every enrolment and share is in the server's audit.log.
# Usage: bash test_threshold_serve.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_serve.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
. "$(dirname "$0")/threshold_lib.sh"
tool=${MS_TKMS_TOOL:-$(dirname "$ms")/tests/tkms_tool}
[ -x "$tool" ] || { echo "FAIL: no tkms_tool ($tool)"; exit 1; }

period=$(date -u +%Y-%m)
printf 'device passphrase\n' >"$work/upass"
chmod 600 "$work/upass"
SERVE_PIDS=()
stop_all() { for p in "${SERVE_PIDS[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done; }
trap 'stop_all; tk_cleanup' EXIT

# serve PRE I [ARGS]: starts `kms serve` for server I, waits until it listens
serve() {
    local pre=$1 i=$2 k
    shift 2
    # emptied here, not by the background process: a restart must not see the last line
    : >"$work/$pre-serve-out$i"
    "$ms" kms serve --dir "$work/$pre$i" --passphrase-file "$work/pass" "$@" \
        >>"$work/$pre-serve-out$i" 2>"$work/$pre-serve-err$i" &
    SERVE_PIDS[$i]=$!
    for ((k = 0; k < 300; k++)); do
        grep -q 'serving on port' "$work/$pre-serve-out$i" 2>/dev/null && return 0
        kill -0 "${SERVE_PIDS[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    sed "s/^/  serve $pre$i: /" "$work/$pre-serve-err$i" >&2
    return 1
}
# halt I: SIGTERM to server I's serve; it must exit 0 (a clean stop)
halt() {
    local p=${SERVE_PIDS[$1]}
    SERVE_PIDS[$1]=""
    kill -TERM "$p" && wait "$p"
}
# fetch PRE WHO STATUS [ARGS]: `user fetch` of WHO's keystore, listed order
fetch() {
    local pre=$1 who=$2 want=$3
    shift 3
    run "$want" user fetch --keystore "$work/$pre-$who.ks" --passphrase-file "$work/upass" \
        --period "$period" --order listed --timeout 5 "$@"
}
keys_of() { sed -n 's/^keys //p' "$work/out"; }
servers_of() { sed -n 's/^servers //p' "$work/out"; }

suite() {
    local pre=$1 n=$2 t=$3 all i need alice bob carol k0 k1
    all=$(tk_seq "$n")
    need=$((t + 1))
    alice="tel:+4477009${n}${t}001" bob="tel:+4477009${n}${t}002" carol="tel:+4477009${n}${t}003"
    printf '%s\n%s\n%s\n' "$alice" "$bob" "$carol" >"$work/$pre-users.txt"
    check "($n,$t) keygen" tk_keygen "$pre" "$n" "$t"
    tk_ceremony "$pre" "$all" 120
    check "($n,$t) ceremony" tk_all_ok "$pre" init "$all"
    tk_batch "$pre" "$all" "$period" "$work/$pre-users.txt" 300
    check "($n,$t) batch of $period" tk_all_ok "$pre" "batch-$period" "$all"

    # ---- devices and enrolment -----------------------------------------------------------
    for who in alice bob carol; do
        local uri=${!who}
        check "($n,$t) $who: user threshold-init" run 0 user threshold-init \
            --keystore "$work/$pre-$who.ks" --user "$uri" --device-id "$who-phone" \
            --peers "$work/$pre-peers.txt" --public "$work/${pre}1/public.txt" \
            --out "$work/$pre-$who.dev" --passphrase-file "$work/upass" --scrypt-cost 10
    done
    check "($n,$t) the device's private keys are 0600" \
        same "$(mode "$work/$pre-alice.ks/tkms-hpke.key") $(mode "$work/$pre-alice.ks/tkms-sign.key")" "600 600"
    check "($n,$t) the device file has its two public keys" \
        grep -Eq '^sign [0-9a-f]{64}$' "$work/$pre-alice.dev"
    for i in $all; do
        check "($n,$t) enrol alice at server $i" run 0 kms threshold enrol --dir "$work/$pre$i" \
            --user "$alice" --device-id alice-phone --device-pubs "$work/$pre-alice.dev" \
            --passphrase-file "$work/pass"
    done
    for i in $(tk_seq "$need"); do
        check "($n,$t) enrol bob at server $i" run 0 kms threshold enrol --dir "$work/$pre$i" \
            --user "$bob" --device-id bob-phone --device-pubs "$work/$pre-bob.dev" \
            --passphrase-file "$work/pass"
    done
    check "($n,$t) a second enrolment of the same device is refused (45)" \
        run 45 kms threshold enrol --dir "$work/${pre}1" --user "$alice" --device-id alice-phone \
        --device-pubs "$work/$pre-alice.dev" --passphrase-file "$work/pass"
    check "  ... saying so" err_has "enrolled already"
    printf 'tel:+15550000000\n' >"$work/$pre-nobody.txt"
    run 0 user threshold-init --keystore "$work/$pre-nobody.ks" --user tel:+15550000000 \
        --device-id x --peers "$work/$pre-peers.txt" --public "$work/${pre}1/public.txt" \
        --out "$work/$pre-nobody.dev" --passphrase-file "$work/upass" --scrypt-cost 10
    check "($n,$t) a user in no batch is refused (46)" \
        run 46 kms threshold enrol --dir "$work/${pre}1" --user tel:+15550000000 --device-id x \
        --device-pubs "$work/$pre-nobody.dev" --passphrase-file "$work/pass"
    check "  ... naming the user" err_has "tel:+15550000000 has no keys"
    check "($n,$t) a device file of another device is refused" \
        run 2 kms threshold enrol --dir "$work/${pre}1" --user "$carol" --device-id carol-phone \
        --device-pubs "$work/$pre-alice.dev" --passphrase-file "$work/pass"
    check "($n,$t) a wrong passphrase enrols nothing" \
        run 40 kms threshold enrol --dir "$work/${pre}1" --user "$carol" \
        --device-id carol-phone --device-pubs "$work/$pre-carol.dev" --passphrase-file "$work/upass"

    # ---- serving ---------------------------------------------------------------------------
    for i in $all; do
        check "($n,$t) kms serve at server $i" serve "$pre" "$i"
    done
    check "($n,$t) alice fetches from servers 1..$need" fetch "$pre" alice 0
    check "  ... stored for $period" grep -q "^period $period" "$work/out"
    check "  ... from the first t+1 servers" same "$(servers_of)" "$(tk_seq "$need")"
    k0=$(keys_of)
    check "  ... the keys' fingerprint is shown" grep -Eq '^keys [0-9a-f]{16}$' "$work/out"
    check "($n,$t) bob fetches from his t+1 servers" fetch "$pre" bob 0
    check "($n,$t) user list shows alice's period" run 0 user list \
        --keystore "$work/$pre-alice.ks" --passphrase-file "$work/upass"
    check "  ... in force" grep -q "in force" "$work/out"

    # ---- a MIKEY exchange with the fetched keys --------------------------------------------
    check "($n,$t) mikey init: alice to bob" run 0 mikey init --keystore "$work/$pre-alice.ks" \
        --passphrase-file "$work/upass" --to "$bob" --format binary --keys \
        --out "$work/$pre-imsg"
    local key_a
    key_a=$(sed -n 's/^key = //p;s/^TGK = //p' "$work/out" | head -1)
    check "($n,$t) mikey respond: bob" run 0 mikey respond --keystore "$work/$pre-bob.ks" \
        --passphrase-file "$work/upass" --expect-from "$alice" --in "$work/$pre-imsg"
    check "  ... bob gets alice's key" grep -qi -- "$key_a" "$work/out"

    # ---- the same keys from other subsets: stop servers to force them ----------------------
    for i in $(tk_seq "$need"); do
        halt "$i"
    done
    if [ "$n" -ge $((2 * need)) ]; then
        check "($n,$t) servers 1..$need down: alice fetches from the others" fetch "$pre" alice 0
        check "  ... the same keys" same "$(keys_of)" "$k0"
        check "  ... a note for each server down" \
            bash -c "[ \$(grep -c 'skipped' '$work/err') -eq $need ]"
    fi
    serve "$pre" 1
    check "($n,$t) server 1 and the last $t servers: alice's keys" fetch "$pre" alice 0
    check "  ... the same keys" same "$(keys_of)" "$k0"
    check "  ... the servers used" same "$(servers_of)" "1 $(seq -s ' ' $((n - t + 1)) "$n")"
    # n-t-1 servers down (here 2..need and maybe more): still works
    check "($n,$t) $((need - 1)) of $n servers down: works" fetch "$pre" alice 0
    check "  ... the skipped servers named" err_has "server 2 ("
    # fewer than t+1 up: servers 1..t only
    for i in $all; do [ -n "${SERVE_PIDS[$i]:-}" ] && halt "$i"; done
    for i in $(tk_seq "$t"); do serve "$pre" "$i"; done
    check "($n,$t) only $t servers up: refused (61)" fetch "$pre" alice 61
    check "  ... saying how many shares it has" err_has "$t of the $need shares needed"
    check "  ... naming the servers down" err_has "server $n ("
    for i in $all; do [ -z "${SERVE_PIDS[$i]:-}" ] && serve "$pre" "$i"; done

    # ---- refusals ----------------------------------------------------------------------------
    check "($n,$t) carol's device, enrolled nowhere: refused (48)" fetch "$pre" carol 48
    check "  ... every server says so" \
        bash -c "[ \$(grep -c '^server .* is not enrolled at server' '$work/err') -eq $n ]"
    halt 1
    check "($n,$t) bob, enrolled at t+1 servers, with server 1 down: refused (61)" \
        fetch "$pre" bob 61
    check "  ... naming the servers that did not enrol him" err_has "bob-phone of $bob is not enrolled at server $n"
    serve "$pre" 1
    "$tool" replay "$work/$pre-alice.ks" "$period" 2 "$work/$pre-answer" >"$work/out" 2>"$work/err"
    check "($n,$t) a replayed request: the first answered, the second refused (409)" \
        same "$(tr '\n' ' ' <"$work/out")" "200 409 "
    check "  ... as a replay" err_has "seen before"
    "$tool" share "$work/${pre}2" "$work/pass" "$period" "$alice" >"$work/$pre-share2"
    local answer_hex u2 ssk2
    answer_hex=$(od -An -v -tx1 "$work/$pre-answer" | tr -d ' \n')
    u2=$(sed -n 1p "$work/$pre-share2") ssk2=$(sed -n 2p "$work/$pre-share2")
    check "($n,$t) the answer holds neither u_2 nor SSK_2 in clear" \
        bash -c "[ ${#u2} = 64 ] && [ ${#ssk2} = 64 ] && [[ '$answer_hex' != *$u2* ]] && [[ '$answer_hex' != *$ssk2* ]]"

    # ---- the per-device rate limit: server 2 restarted allowing one request ------------------
    halt 2
    serve "$pre" 2 --device-rate 0.001 --device-burst 1
    "$tool" replay "$work/$pre-alice.ks" "$period" 2 "$work/$pre-answer2" >/dev/null 2>&1
    "$tool" replay "$work/$pre-alice.ks" "$period" 2 "$work/$pre-answer2" >"$work/out" 2>"$work/err"
    check "($n,$t) a device over its rate: refused (429)" same "$(sed -n 1p "$work/out")" 429
    halt 2
    serve "$pre" 2

    # ---- a server sending a wrong share --------------------------------------------------------
    halt 1
    check "($n,$t) server 1's batch altered (u_1 of alice)" \
        "$tool" alter "$work/${pre}1" "$work/pass" "$period" "$alice"
    serve "$pre" 1
    check "($n,$t) wrong share of server 1: alice still gets her keys" fetch "$pre" alice 0
    check "  ... naming server 1" err_has "server 1 sent a wrong share"
    check "  ... the same keys" same "$(keys_of)" "$k0"
    check "  ... from other servers" same "$(servers_of)" "$(seq -s ' ' 2 $((need + 1)))"
    for i in $(seq $((need + 2)) "$n") 2; do halt "$i"; done
    check "($n,$t) wrong share and too few others: refused" fetch "$pre" alice 61
    check "  ... naming server 1" err_has "server 1 sent a wrong share"

    # ---- the log ------------------------------------------------------------------------------
    check "($n,$t) server 2's audit.log has the enrolments and the shares" \
        bash -c "grep -q 'event=enrol' '$work/${pre}2/audit.log' && grep -q 'event=share' '$work/${pre}2/audit.log'"
    check "  ... and its key files" same "$(mode "$work/${pre}2/audit.key")" 600
    check "  ... and it verifies with audit.pub alone" run 0 kms audit verify \
        --log "$work/${pre}2/audit.log" --public "$work/${pre}2/audit.pub"
    for i in $all; do
        [ -n "${SERVE_PIDS[$i]:-}" ] && check "($n,$t) server $i stops cleanly on SIGTERM" halt "$i"
    done
}

for nt in ${TK_SUITES:-3,1 5,2}; do
    suite "s${nt%,*}" "${nt%,*}" "${nt#*,}"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
