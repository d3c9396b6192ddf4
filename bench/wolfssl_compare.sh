#!/usr/bin/env bash
# Times our ECCSI and SAKKE operations (ms_bench) and wolfSSL's (bench/wolfssl/compare.c)
# in the same run, alternating the two programs for several rounds, and prints the
# median of each side per operation and their ratio. wolfSSL is only a comparison: it
# is compiled here, outside the library's build, and nothing links it.
#
# usage: bench/wolfssl_compare.sh [--rounds N] [--markdown] [path/to/ms_bench]
set -euo pipefail

rounds=5
markdown=0
ms_bench=build/bench/ms_bench
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --markdown) markdown=1; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) ms_bench="$1"; shift ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
opts=/usr/include/wolfssl/options.h
if [ ! -f "$opts" ] || [ ! -f /usr/include/wolfssl/wolfcrypt/eccsi.h ]; then
    echo "wolfssl_compare: wolfSSL headers not found (Debian: apt-get install libwolfssl-dev); skipped"
    exit 0
fi
for feature in WOLFCRYPT_HAVE_ECCSI WOLFCRYPT_HAVE_SAKKE; do
    if ! grep -q "define $feature" "$opts"; then
        echo "wolfssl_compare: this wolfSSL is built without $feature; skipped"
        exit 0
    fi
done
if [ ! -x "$ms_bench" ]; then
    echo "wolfssl_compare: $ms_bench not found (build it first: make build)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/compare" "$here/wolfssl/compare.c" -lwolfssl
version=$(sed -n 's/^#define LIBWOLFSSL_VERSION_STRING "\(.*\)"/\1/p' /usr/include/wolfssl/version.h)

ops="eccsi_sign eccsi_verify_cold eccsi_verify_cached eccsi_ssk_validate sakke_rsk_issue
sakke_rsk_validate sakke_encap_cold sakke_encap_prepared sakke_decap_cold sakke_decap_prepared"
filters=""
for op in $ops; do filters="$filters --filter $op"; done

echo "wolfssl_compare: $rounds rounds of ms_bench and wolfSSL $version, alternating" >&2
for r in $(seq 1 "$rounds"); do
    # alternate which side goes first, so a slow stretch of the machine hits both
    if [ $((r % 2)) -eq 1 ]; then order="ours wolf"; else order="wolf ours"; fi
    for side in $order; do
        if [ "$side" = ours ]; then
            # shellcheck disable=SC2086
            "$ms_bench" --json $filters |
                sed -n 's/.*"op": "\([a-z_]*\)", "ms_per_op": \([0-9.e+-]*\).*/ours \1 \2/p'
        else
            "$work/compare" | sed 's/^/wolf /'
        fi
        echo "round $r $side done" >&2
    done
done >"$work/times"

# median per side and operation, then the table
awk -v ops="$ops" -v md="$markdown" -v ver="$version" '
    { v[$1 " " $2] = v[$1 " " $2] " " $3 }
    function median(list,    n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        if (n == 0) return -1
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        split(ops, o, /[ \n]+/)
        if (md) {
            printf "| operation | mikeysakke median ms | wolfSSL %s median ms | ratio |\n", ver
            printf "|---|---:|---:|---:|\n"
        } else {
            printf "%-24s %14s %14s %8s\n", "operation", "mikeysakke ms", "wolfSSL ms", "ratio"
        }
        for (i = 1; i in o; i++) {
            if (o[i] == "") continue
            a = median(v["ours " o[i]]); b = median(v["wolf " o[i]])
            if (md)
                printf "| `%s` | %.3g | %.3g | %.2f |\n", o[i], a, b, a / b
            else
                printf "%-24s %14.4g %14.4g %8.2f\n", o[i], a, b, a / b
        }
    }' "$work/times"
