# Shared by the threshold e2e tests: n servers on loopback, their keys, peers table,
# ceremony and batch. Sourced after tests/cli/lib.sh (uses $ms, $work, run, check).
# Each server i of a set PRE lives in $work/PREi; its passphrase is $work/pass.
TK_PIDS=()
tk_cleanup() {
    for p in "${TK_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap tk_cleanup EXIT

printf 'server passphrase\n' >"$work/pass"
chmod 600 "$work/pass"

# tk_free_ports N: N free loopback ports at once (held together, so they differ), drawn
# below the kernel's ephemeral range: the servers bind them seconds later, and a port
# from that range could meanwhile become some connection's local end, or another test's
# probe result (the threshold tests also share a RESOURCE_LOCK in tests/CMakeLists.txt)
tk_free_ports() {
    python3 -c '
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
held = []
while len(held) < int(sys.argv[1]):
    x = socket.socket()
    try:
        x.bind(("127.0.0.1", random.randrange(10000, max(10001, low))))
        held.append(x)
    except OSError:
        x.close()
print(" ".join(str(x.getsockname()[1]) for x in held))' "$1"
}

# tk_keygen PRE N T: keys of servers 1..N in $work/PREi and the table $work/PRE-peers.txt
tk_keygen() {
    local pre=$1 n=$2 t=$3 i ports
    read -r -a ports <<<"$(tk_free_ports "$n")"
    printf 'mikeysakke-peers 1\nthreshold %s\n' "$t" >"$work/$pre-peers.txt"
    for ((i = 1; i <= n; i++)); do
        run 0 kms threshold keygen --dir "$work/$pre$i" --index $i \
            --url "https://127.0.0.1:${ports[$((i - 1))]}" || return 1
        cat "$work/out" >>"$work/$pre-peers.txt"
    done
}

# tk_parallel PRE TAG "SERVERS" CMD...: runs `mikeysakke CMD... --dir $work/PREi` for each
# server i of SERVERS at once; stdout, stderr and status in $work/PRE-TAG-{out,err,rc}I
tk_parallel() {
    local pre=$1 tag=$2 servers=$3 i pids=()
    shift 3
    for i in $servers; do
        "$ms" "$@" --dir "$work/$pre$i" >"$work/$pre-$tag-out$i" 2>"$work/$pre-$tag-err$i" &
        pids+=($!)
    done
    TK_PIDS=("${pids[@]}")
    local k=0
    for i in $servers; do
        wait "${pids[$k]}"
        echo $? >"$work/$pre-$tag-rc$i"
        k=$((k + 1))
    done
    TK_PIDS=()
}

# tk_all_ok PRE TAG "SERVERS": every server's run of TAG exited 0 (else shows stderr)
tk_all_ok() {
    local pre=$1 tag=$2 i ok=0
    for i in $3; do
        if [ "$(cat "$work/$pre-$tag-rc$i")" != 0 ]; then
            ok=1
            sed "s/^/  $pre$i $tag: /" "$work/$pre-$tag-err$i" >&2
        fi
    done
    return $ok
}

# tk_ceremony PRE "SERVERS" TIMEOUT [MORE ARGS]: `kms threshold init` at those servers together
tk_ceremony() {
    local pre=$1 servers=$2 timeout=$3
    shift 3
    tk_parallel "$pre" init "$servers" kms threshold init --peers "$work/$pre-peers.txt" \
        --passphrase-file "$work/pass" --scrypt-log2n 10 --timeout "$timeout" "$@"
}

# tk_batch PRE "SERVERS" PERIOD USERS_FILE TIMEOUT [MORE ARGS]: the batch at those servers
tk_batch() {
    local pre=$1 servers=$2 period=$3 users=$4 timeout=$5
    shift 5
    tk_parallel "$pre" "batch-$period" "$servers" kms threshold batch \
        --peers "$work/$pre-peers.txt" --period "$period" --users "$users" \
        --passphrase-file "$work/pass" --timeout "$timeout" "$@"
}

# tk_seq N: "1 2 ... N"
tk_seq() { seq -s ' ' 1 "$1"; }

# tk_device: a device's X25519 key in $work/device.key (0600); its public key in $DEVPK
tk_device() {
    local sk
    read -r sk DEVPK < <(python3 -c '
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization as s
k = X25519PrivateKey.generate()
print(k.private_bytes(s.Encoding.Raw, s.PrivateFormat.Raw, s.NoEncryption()).hex(),
      k.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())')
    (umask 077; echo "$sk" >"$work/device.key")
}

# tk_share STATUS PRE I USER PERIOD OUT [MORE ARGS]: server PREi's share for the device
tk_share() {
    local want=$1 pre=$2 i=$3 user=$4 period=$5 out=$6
    shift 6
    run "$want" kms threshold share --dir "$work/$pre$i" --user "$user" --period "$period" \
        --device-pub "$DEVPK" --passphrase-file "$work/pass" --out "$out" "$@"
}

# tk_combine STATUS PRE TAG USER PERIOD FILES [MORE ARGS]: the device combines FILES
# (comma-separated) into $work/{rsk,ssk}-TAG; stdout (the PVT) kept in $work/pvt-TAG
tk_combine() {
    local want=$1 pre=$2 tag=$3 user=$4 period=$5 files=$6
    shift 6
    run "$want" user threshold-combine --shares "$files" --device-key "$work/device.key" \
        --peers "$work/$pre-peers.txt" --public "$work/${pre}1/public.txt" --user "$user" \
        --period "$period" --rsk-out "$work/rsk-$tag" --ssk-out "$work/ssk-$tag" "$@" &&
        cp "$work/out" "$work/pvt-$tag"
}

# tk_idhex USER PERIOD: the RFC 6509 identifier in hex (for `sakke validate --id`)
tk_idhex() { printf '%s\0%s\0' "$2" "$1" | od -An -tx1 | tr -d ' \n'; }
