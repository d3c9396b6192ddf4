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

# tk_free_ports N: N free loopback ports at once (held together, so they differ)
tk_free_ports() {
    python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
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

# tk_ceremony PRE "SERVERS" TIMEOUT: `kms threshold init` at those servers together
tk_ceremony() {
    tk_parallel "$1" init "$2" kms threshold init --peers "$work/$1-peers.txt" \
        --passphrase-file "$work/pass" --scrypt-log2n 10 --timeout "$3"
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
