#!/bin/bash
# Serving throughput: keyprov responses per second of `kms serve` and `dist serve` over
# keep-alive TLS on loopback, measured with wrk (Debian package wrk).
#
#   bench/serve_bench.sh [--json] [--seconds N] [--threads N] [--connections N] [MIKEYSAKKE]
#
# It builds a throwaway KMS with the real commands (init with a small scrypt cost, unseal,
# one user, one device, issue, export), a throwaway CA and a server certificate for
# 127.0.0.1 (openssl), starts both servers on free ports with no rate limit, and has wrk
# POST a KmsRequest with the device's bearer token to /keymanagement/identity/v1/keyprov.
# Every request carries a fresh Time (the KMS refuses a repeated (device, Time) with 409).
# The KMS appends and fsyncs an audit entry for every keyprov answer: that is part of
# what is measured. Prints one line per server like ms_bench (or one JSON object per line
# with --json) and fails if any answer was not 2xx or a socket error occurred.
set -euo pipefail

json=0 secs=10 wthreads=2 conns=16 ms=build/mikeysakke
while [ $# -gt 0 ]; do
    case $1 in
        --json) json=1 ;;
        --seconds) secs=$2; shift ;;
        --threads) wthreads=$2; shift ;;
        --connections) conns=$2; shift ;;
        --quick) secs=3 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) echo "serve_bench: unknown option $1" >&2; exit 2 ;;
        *) ms=$1 ;;
    esac
    shift
done
for tool in wrk openssl curl; do
    command -v $tool >/dev/null || { echo "serve_bench: $tool is not installed (make deps)" >&2; exit 2; }
done
ms=$(cd "$(dirname "$ms")" && pwd)/$(basename "$ms")
[ -x "$ms" ] || { echo "serve_bench: $ms not built" >&2; exit 2; }

work=$(mktemp -d)
umask 077
K=$work/kms
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$ms" kms seal --dir "$K" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
log() { [ $json = 1 ] || echo "$@"; }
quiet() { "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; echo "serve_bench: failed: $*" >&2; exit 1; }; }

user=tel:+447700900123 device=bench-phone kmsuri=kms.example.org

# ---- throwaway CA and server certificate -----------------------------------------------
quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=serve-bench-ca -keyout "$work/ca.key" -out "$work/ca.crt"
quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=localhost -keyout "$work/server.key" -out "$work/server.csr"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$work/ext"
quiet openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days 1 -extfile "$work/ext" -out "$work/server.crt"

# ---- a KMS with one user and one device, keys issued and exported -----------------------
# Set up through the ordinary unseal agent, sealed again, then served by `kms serve`
# (which is itself the agent and is unsealed the same way).
printf 'serve bench passphrase\n' > "$work/pass"
quiet "$ms" kms init --dir "$K" --uri "$kmsuri" --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/auditors"
quiet "$ms" kms unseal --dir "$K" --passphrase-file "$work/pass"
quiet "$ms" kms user add --key "$work/auditors/operator.key" --dir "$K" --user "$user"
quiet "$ms" kms device enrol --key "$work/auditors/officer-1.key" --dir "$K" --user "$user" --device "$device" --out "$work/dev.enrol"
quiet "$ms" kms issue --key "$work/auditors/operator.key" --dir "$K" --period current
quiet "$ms" kms export --key "$work/auditors/operator.key" --dir "$K" --period current --out "$work/export"
quiet "$ms" kms seal --dir "$K"

# The device's bearer token, HMAC-SHA256(InK, "mikeysakke-device-token:" || device id),
# computed from its enrolment file as the device does. (The InK passes through openssl's
# command line: acceptable only because this KMS is thrown away when the run ends.)
ink=$(sed -n 's:.*<InK>\([0-9A-Fa-f]*\)</InK>.*:\1:p' "$work/dev.enrol")
[ -n "$ink" ] || { echo "serve_bench: no InK in the enrolment file" >&2; exit 1; }
token=$(printf 'mikeysakke-device-token:%s' "$device" |
        openssl mac -digest SHA256 -macopt "hexkey:$ink" HMAC | tr 'A-F' 'a-f')
unset ink

# ---- start a server on a free port; its port comes from its first log line ---------------
# (not run in a command substitution: the server's pid must reach cleanup)
serve() { # name, command...; sets port
    local name=$1; shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    port=""
    for _ in $(seq 1 300); do
        port=$(sed -n 's|.*listening on https://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$work/$name.log" | head -1)
        [ -n "$port" ] && break
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        cat "$work/$name.log" >&2
        echo "serve_bench: $name did not start" >&2
        exit 1
    fi
}
tls=(--listen 127.0.0.1 --port 0 --cert "$work/server.crt" --key "$work/server.key"
     --rate 1000000 --burst 1000000)
serve kms "$ms" kms serve --dir "$K" "${tls[@]}" --threads 2
kms_port=$port
quiet "$ms" kms unseal --dir "$K" --passphrase-file "$work/pass"
serve dist "$ms" dist serve "$work/export" "${tls[@]}"
dist_port=$port

# ---- the load: wrk with a Lua script, a fresh Time per request ---------------------------
# Each wrk thread numbers its requests; the microseconds of Time are counter*threads+id,
# so no two requests in the same second carry the same (device, Time).
body() { # time, url: the KmsRequest of TS 33.180 D.2.2
    printf '<?xml version="1.0" encoding="UTF-8"?>\n<KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.1.0"><UserUri>%s</UserUri><KmsUri>%s</KmsUri><Time>%s</Time><DeviceId>%s</DeviceId><ClientReqUrl>%s</ClientReqUrl></KmsRequest>\n' \
        "$user" "$kmsuri" "$1" "$device" "$2"
}
lua() { # url
    local pre post
    pre=$(body TIME "$1" | sed -n '2p' | sed 's/<Time>TIME.*//')
    post=$(body TIME "$1" | sed -n '2p' | sed 's/.*TIME<\/Time>/<\/Time>/')
    cat <<LUA
local threads = 0
function setup(thread)
    thread:set("id", threads)
    threads = threads + 1
end
function init(args)
    n = 0
end
function request()
    n = n + 1
    local us = (n * $wthreads + id) % 1000000
    local t = os.date("!%Y-%m-%dT%H:%M:%S", os.time()) .. string.format(".%06dZ", us)
    local body = '<?xml version="1.0" encoding="UTF-8"?>\n$pre<Time>' .. t .. '$post\n'
    return wrk.format("POST", nil, nil, body)
end
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
        e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(99)))
end
LUA
}

run() { # op name, port
    local op=$1 port=$2
    local url=https://127.0.0.1:$port/keymanagement/identity/v1/keyprov
    # one request with curl first: it must be answered 200, else the load means nothing
    local code
    code=$(curl -sS -o "$work/one.xml" -w '%{http_code}' --cacert "$work/ca.crt" \
        -H "Authorization: Bearer $device.$token" -H 'Content-Type: application/xml' \
        --data-binary "$(body "$(date -u +%Y-%m-%dT%H:%M:%S.999999Z)" "$url")" "$url") || true
    if [ "$code" != 200 ]; then
        echo "serve_bench: $op: a keyprov request was answered '$code':" >&2
        head -c 800 "$work/one.xml" >&2 2>/dev/null || true
        echo >&2
        exit 1
    fi
    lua "$url" > "$work/$op.lua"
    wrk -t"$wthreads" -c"$conns" -d"${secs}s" --latency -s "$work/$op.lua" \
        -H "Authorization: Bearer $device.$token" -H 'Content-Type: application/xml' \
        "$url" > "$work/$op.wrk" 2>&1 || { cat "$work/$op.wrk" >&2; exit 1; }
    local r
    r=$(grep '^RESULT ' "$work/$op.wrk") || { cat "$work/$op.wrk" >&2; exit 1; }
    local reqs usecs non2xx sockerr p99
    read -r _ reqs usecs non2xx sockerr p99 <<<"$r"
    local ops ms p99ms
    ops=$(awk -v n="$reqs" -v u="$usecs" 'BEGIN { printf "%.1f", n / (u / 1e6) }')
    ms=$(awk -v n="$reqs" -v u="$usecs" 'BEGIN { printf "%.6g", n ? (u / 1e3) / n : 0 }')
    p99ms=$(awk -v p="$p99" 'BEGIN { printf "%.3f", p / 1e3 }')
    if [ $json = 1 ]; then
        printf '{"op": "%s", "ms_per_op": %s, "ops_per_s": %s, "requests": %s, "non_2xx": %s, "socket_errors": %s, "p99_latency_ms": %s}\n' \
            "$op" "$ms" "$ops" "$reqs" "$non2xx" "$sockerr" "$p99ms"
    else
        printf '%-30s %12.6f %12s   %s requests, non-2xx %s, socket errors %s, p99 latency %s ms\n' \
            "$op" "$ms" "$ops" "$reqs" "$non2xx" "$sockerr" "$p99ms"
    fi
    if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then
        failed=1
        grep -iE 'non-2xx|socket errors' "$work/$op.wrk" >&2 || true
    fi
    return 0
}

failed=0
log ""
log "serving: wrk -t$wthreads -c$conns -d${secs}s, keep-alive TLS on loopback, POST keyprov"
log "$(printf '%-30s %12s %12s' op ms/op ops/s)"
run kms_serve_keyprov "$kms_port"
run dist_serve_keyprov "$dist_port"
if [ $failed = 1 ]; then
    echo "serve_bench: some answers were not 2xx or connections failed (logs above)" >&2
    exit 1
fi
