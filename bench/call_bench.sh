#!/bin/bash
# Calls: set-up time through kamailio on loopback, and the auditor's decryption speed.
#
#   bench/call_bench.sh [--json] [--quick] [--calls N] [MIKEYSAKKE]
#
# Builds a throwaway community (KMS, Alice, Bob) with the real commands, starts kamailio
# (dist/kamailio/kamailio.cfg) on free loopback ports, has Bob answer and Alice dial N
# calls through it (each: 0.3 s of Alice's audio, Bob answering with audio). Reports the
# median, fastest and slowest set-up time from INVITE sent to the first decrypted audio
# frame at Alice, and the median MIKEY-SAKKE work in it (Alice building the I_MESSAGE plus
# Bob checking it). Then `audit decrypt` on a capture of a 20 s call with Bob's extracted
# RSK: its speed as a multiple of real time.
set -euo pipefail

json=0 calls=9 ms=build/mikeysakke
while [ $# -gt 0 ]; do
    case $1 in
        --json) json=1 ;;
        --quick) calls=3 ;;
        --calls) calls=$2; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        -*) echo "call_bench: unknown option $1" >&2; exit 2 ;;
        *) ms=$1 ;;
    esac
    shift
done
here=$(cd "$(dirname "$0")" && pwd)
ms=$(cd "$(dirname "$ms")" && pwd)/$(basename "$ms")
[ -x "$ms" ] || { echo "call_bench: $ms not built" >&2; exit 2; }
for tool in kamailio tcpdump python3; do
    command -v $tool >/dev/null || [ -x /usr/sbin/$tool ] ||
        { echo "call_bench: $tool is not installed (make deps)" >&2; exit 2; }
done

work=$(mktemp -d)
umask 077
. "$here/../tests/lib/community.sh"
. "$here/../tests/lib/kamailio.sh"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/kam/kamailio.main.pid" ] && kam_stop "$work/kam" >/dev/null 2>&1
    community_down
    if [ -n "${MS_BENCH_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "call_bench: $*" >&2; exit 1; }

community_up sip:alice@example.org sip:bob@example.org || fail "community set-up: $(tail -3 "$work/community.log")"
mkdir -p "$work/kam"
printf 'alice pw-a\n' >"$work/alice.sip"
printf 'bob pw-b\n' >"$work/bob.sip"
printf '%s\n' "alice alice pw-a" "bob bob pw-b" | kam_write_users "$work/kam"
PORT=$(kam_free_port)
kam_start "$work/kam" "$PORT" "sip:127.0.0.1:1;transport=tcp" >/dev/null || fail "kamailio does not start"
PROXY="sip:127.0.0.1:$PORT;transport=tcp"
phone() {
    local n=$1 verb=$2
    shift 2
    "$ms" call "$verb" --keystore "$work/$n.ks" --passphrase-file "$work/$n.pass" --register \
        --proxy "$PROXY" --auth-user "$n" --password-file "$work/$n.sip" --json "$@"
}
python3 "$here/../tests/lib/make_wav.py" "$work/a.wav" 0.3 1
python3 "$here/../tests/lib/make_wav.py" "$work/b.wav" 0.3 2
phone bob answer --play "$work/b.wav" --record "$work/b-heard.wav" --calls "$calls" \
    >"$work/bob.out" 2>"$work/bob.err" &
pids+=($!)
for _ in $(seq 200); do grep -q registered "$work/bob.out" && break; sleep 0.05; done
for i in $(seq "$calls"); do
    phone alice dial --to sip:bob@example.org --play "$work/a.wav" >>"$work/alice.out" \
        2>>"$work/alice.err" || fail "call $i failed: $(tail -2 "$work/alice.err")"
done
wait "${pids[0]}" || true

stats() { # stats FIELD FILE: median fastest slowest (ms) of FIELD in "ended" events
    grep '"event":"ended"' "$2" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" | sort -n |
        awk '{v[NR] = $1} END { if (NR == 0) { print "0 0 0"; exit } printf "%.3f %.3f %.3f\n", v[int((NR + 1) / 2)] / 1e3, v[1] / 1e3, v[NR] / 1e3 }'
}
read -r setup setup_min setup_max < <(stats setup_us "$work/alice.out")
read -r mk_a _ _ < <(stats mikey_us "$work/alice.out")
read -r mk_b _ _ < <(stats mikey_us "$work/bob.out")
mikey=$(awk -v a="$mk_a" -v b="$mk_b" 'BEGIN { printf "%.3f", a + b }')
out() { # out OP MS_PER_OP NOTE
    if [ $json = 1 ]; then
        printf '{"op": "%s", "ms_per_op": %s, "note": "%s"}\n' "$1" "$2" "$3"
    else
        printf '%-30s %12s   %s\n' "$1" "$2" "$3"
    fi
}
[ $json = 1 ] || printf '%-30s %12s\n' op ms/op
out call_setup_through_kamailio "$setup" "median of $calls calls (fastest $setup_min, slowest $setup_max); target <= 50"
out call_setup_mikey_sakke "$mikey" "initiate $mk_a + respond $mk_b; target <= 3"

# ---- audit decrypt speed: a 20 s call captured on the wire -----------------------------------
python3 "$here/../tests/lib/make_wav.py" "$work/long.wav" 20 3
tcpdump -i lo -U -B 32768 -s 0 -w "$work/long.pcap" "tcp port $PORT or udp" >"$work/tcpdump.log" 2>&1 &
tcpdump_pid=$!
pids+=($tcpdump_pid)
for _ in $(seq 100); do grep -q 'listening on' "$work/tcpdump.log" && break; sleep 0.05; done
phone bob answer --play "$work/long.wav" --record "$work/long-heard.wav" --calls 1 \
    >"$work/bob3.out" 2>&1 &
bob3=$!
pids+=($bob3)
for _ in $(seq 200); do grep -q registered "$work/bob3.out" && break; sleep 0.05; done
phone alice dial --to sip:bob@example.org --play "$work/long.wav" >/dev/null 2>&1 || fail "the long call failed"
wait $bob3 || true
sleep 0.2
kill $tcpdump_pid 2>/dev/null || true
wait $tcpdump_pid 2>/dev/null || true
{ "$ms" kms audit request --dir "$K" --user sip:bob@example.org --period current --reason bench \
      --out "$work/bench.req" &&
  "$ms" kms audit approve --request "$work/bench.req" --key "$work/auditors/auditor-1.key" \
      --out "$work/bench.ok1" &&
  "$ms" kms audit approve --request "$work/bench.req" --key "$work/auditors/auditor-2.key" \
      --out "$work/bench.ok2" &&
  "$ms" kms audit extract --dir "$K" --request "$work/bench.req" \
      --approval "$work/bench.ok1,$work/bench.ok2" --out "$work/bob.rsk"; } >/dev/null 2>&1 ||
    fail "audit extract failed"
"$ms" kms cert --dir "$K" >"$work/cert.xml"
period=$(grep '"event":"established"' "$work/bob3.out" | sed -n 's/.*"period":\([0-9]*\).*/\1/p')
best=""
# bash's own clock: $(date) would add a fork and an exec (~10 ms here) to every figure
for _ in 1 2 3 4 5; do
    rm -rf "$work/audit"
    t0=${EPOCHREALTIME/[.,]/}
    "$ms" audit decrypt --capture "$work/long.pcap" --rsk "$work/bob.rsk" --uri sip:bob@example.org \
        --period "$period" --kms "$work/cert.xml" --out "$work/audit" >/dev/null 2>"$work/audit.err" ||
        fail "audit decrypt failed: $(cat "$work/audit.err")"
    t1=${EPOCHREALTIME/[.,]/}
    d=$((t1 - t0))
    [ -z "$best" ] || [ "$d" -lt "$best" ] && best=$d
done
x=$(awk -v us="$best" 'BEGIN { printf "%.0f", 20e6 / us }')
out audit_decrypt_20s_call "$(awk -v us="$best" 'BEGIN { printf "%.3f", us / 1e3 }')" \
    "fastest of 5 whole commands, both directions: ${x}x real time; target >= 200x"
