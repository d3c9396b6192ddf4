#!/usr/bin/env bash
# Group keys through an untrusted provider: a KMS, a GMS and four members made with the real
# commands, kamailio as registrar and proxy. The GMS creates a group of four; each member's
# `group join` receives its GMK I_MESSAGE and the signed roster as a SIP MESSAGE, checks and
# stores them. Then one member is removed: the rekey reaches the three others only, and the
# removed member still holds only the old key. Kamailio's log and files hold no GMK.
# Usage: bash test_group.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_group.sh PATH_TO_mikeysakke}
vectors=/dev/null
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cli/lib.sh"
. "$here/../lib/community.sh"
. "$here/../lib/kamailio.sh"
. "$here/../lib/calls.sh"

GMS=sip:gms@example.org GROUP=sip:team@example.org
MEMBERS=(alice bob carol dave)
uris=()
for n in "${MEMBERS[@]}"; do uris+=("sip:$n@example.org"); done
check "community: KMS, the GMS and four members" community_up "$GMS" "${uris[@]}"

umask 077
mkdir -p "$work/kam"
for n in "${MEMBERS[@]}"; do printf '%s SIP password\n' "$n" >"$work/$n.sip"; done
for n in "${MEMBERS[@]}"; do echo "$n $n SIP password"; done | kam_write_users "$work/kam"
PORT=$(kam_free_port)
VMPORT=$(kam_free_port)
check "kamailio starts" kam_start "$work/kam" "$PORT" "sip:127.0.0.1:$VMPORT;transport=tcp"
PROXY="sip:127.0.0.1:$PORT;transport=tcp"

out=$work/out
gms() { # gms STATUS VERB ARGS...: the GMS command, stdout in $out; succeeds on STATUS
    local want=$1 verb=$2
    shift 2
    "$ms" group "$verb" --name "$GROUP" --gms-keystore "$work/gms.ks" \
        --passphrase-file "$work/gms.pass" "$@" >"$out" 2>"$work/err"
    local got=$?
    [ "$got" -eq "$want" ] || { echo "  exit $got, want $want: group $verb $*" >&2; return 1; }
}
join() { # join NAME: a registered member waiting for one group key (background)
    "$ms" group join --keystore "$work/$1.ks" --passphrase-file "$work/$1.pass" \
        --register --proxy "$PROXY" --auth-user "$1" --password-file "$work/$1.sip" \
        --messages 1 --max-seconds 20 >"$work/$1.out" 2>"$work/$1.err" &
    JOINPID[$1]=$!
    pids+=("$!")
}
declare -A JOINPID

# ---- create: every member receives and checks the first key -------------------------------------
check "group create (no delivery yet)" gms 0 create --members "$(IFS=,; echo "${uris[*]}")"
check "  says it was not delivered" grep -q 'not delivered (no --proxy)' "$out"
GMK1=$(sed -n 's/.*GMK-ID \([0-9A-F]\{8\}\).*/\1/p' "$out" | head -1)
check "  GMK-ID carries the GMK purpose tag (0)" same "${GMK1:0:1}" 0
check "group show lists four members" gms 0 show
check "  four member lines" same "$(grep -c '^member ' "$out")" 4
check "  the current key" grep -q "current key: GMK-ID $GMK1" "$out"
check "  no key material in the output" bash -c "! grep -qiE 'gmk [0-9a-f]{32}|rand ' '$out'"

for n in "${MEMBERS[@]}"; do join "$n"; done
for n in "${MEMBERS[@]}"; do check "$n registers" wait_for "$work/$n.out" '^registered'; done
check "group send delivers to all four" gms 0 send --proxy "$PROXY"
check "  four deliveries answered 200" same "$(grep -c "^delivered GMK-ID $GMK1 to .*: 200" "$out")" 4
for n in "${MEMBERS[@]}"; do
    wait "${JOINPID[$n]}"
    check "$n: join exits 0" same "$?" 0
    check "$n: the group key from the GMS, with the roster" \
        grep -q "^group $GROUP: GMK-ID $GMK1 from $GMS, GUK-ID [0-9A-F]\{8\}, .* 4 members: sip:alice@example.org sip:bob@example.org sip:carol@example.org sip:dave@example.org" "$work/$n.out"
done
G1=$(sed -n 's/.*GUK-ID \([0-9A-F]*\).*/\1/p' "$work/alice.out")
G2=$(sed -n 's/.*GUK-ID \([0-9A-F]*\).*/\1/p' "$work/bob.out")
check "each member has its own GUK-ID" test "$G1" != "$G2"

# ---- remove bob: the new key reaches alice, carol and dave only -------------------------------------
for n in alice bob carol dave; do join "$n"; done
for n in alice bob carol dave; do check "$n registers again" wait_for "$work/$n.out" '^registered'; done
check "group remove bob rekeys and delivers" gms 0 remove --members sip:bob@example.org --proxy "$PROXY"
GMK2=$(sed -n 's/^group .*GMK-ID \([0-9A-F]\{8\}\).*/\1/p' "$out" | head -1)
check "  a new GMK-ID" test -n "$GMK2" -a "$GMK2" != "$GMK1"
check "  three deliveries" same "$(grep -c "^delivered GMK-ID $GMK2 to" "$out")" 3
check "  none to bob" bash -c "! grep -q 'bob' '$out'"
for n in alice carol dave; do
    wait "${JOINPID[$n]}"
    check "$n: join exits 0" same "$?" 0
    check "$n: the new key, three members" \
        grep -q "^group $GROUP: GMK-ID $GMK2 from $GMS, .* 3 members: sip:alice@example.org sip:carol@example.org sip:dave@example.org" "$work/$n.out"
done
kill "${JOINPID[bob]}" 2>/dev/null
wait "${JOINPID[bob]}" 2>/dev/null
check "bob received nothing" bash -c "! grep -q '^group ' '$work/bob.out'"
check "group show: bob gone, previous key kept" gms 0 show
check "  three members" same "$(grep -c '^member ' "$out")" 3
check "  previous key $GMK1" grep -q "previous key: GMK-ID $GMK1" "$out"

# ---- refusals ----------------------------------------------------------------------------------------
check "removing a non-member fails (76)" gms 76 remove --members sip:bob@example.org
check "unknown group (76)" run 76 group show --name sip:nobody@example.org \
    --gms-keystore "$work/gms.ks" --passphrase-file "$work/gms.pass"
check "create of an existing group (45)" gms 45 create --members sip:alice@example.org

# ---- what the provider saw ------------------------------------------------------------------------------
check "kamailio stops cleanly" kam_stop "$work/kam"
check "kamailio relayed the MESSAGEs" bash -c "! grep -q 'ERROR' '$work/kam/kamailio.log'"

echo "test_group: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
