#!/bin/bash
# The core unit alone carries SAKKE and MIKEY: a small program (core_embedder.c) that
# includes only the core's public headers is linked once against libmikeysakke-core.a
# with nothing but OpenSSL, and once against libmikeysakke-core.so; both run, and
# neither the shared core nor the program needs SQLite, libxml2, libmicrohttpd, libcurl
# or any other library of the KMS, servers, client or calls. The shared core exports
# every function of its public headers and nothing else.
# Usage: test_core_unit.sh CC "CFLAGS" SOURCE_DIR CORE_ARCHIVE CORE_SHARED
set -u
cc=$1 cflags=$2 src=$3 archive=$4 shared=$5
pass=0 fail=0
check() {
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
forbidden='sqlite|xml2|microhttpd|curl|libre\.|srtp|opus|asound|pcap|libssl|gnutls'
needed() { readelf -d "$1" | awk '/\(NEEDED\)/ {gsub(/[][]/, "", $5); print $5}'; }

# shellcheck disable=SC2086
check "compiles with the core's headers only" \
    $cc $cflags -std=c17 -Wall -Wextra -Werror -I"$src/include" -c "$src/tests/build/core_embedder.c" \
        -o "$work/embedder.o"
# shellcheck disable=SC2086
check "links against the core archive and OpenSSL alone" \
    $cc $cflags -o "$work/embedder-static" "$work/embedder.o" "$archive" -lcrypto -pthread
check "the statically linked program runs" "$work/embedder-static"
needed "$work/embedder-static" >"$work/static.needed"
check "the static program needs libcrypto" grep -qx 'libcrypto.so.3' "$work/static.needed"
check "the static program needs none of the upper layers' libraries" \
    bash -c "! grep -E '$forbidden' '$work/static.needed'"

# shellcheck disable=SC2086
check "links against the shared core" \
    $cc $cflags -o "$work/embedder-shared" "$work/embedder.o" -L"$(dirname "$shared")" \
        -lmikeysakke-core -Wl,-rpath,"$(dirname "$shared")"
check "the dynamically linked program runs" "$work/embedder-shared"
needed "$shared" >"$work/core.needed"
echo "libmikeysakke-core.so NEEDED: $(tr '\n' ' ' <"$work/core.needed")"
check "the shared core needs libcrypto" grep -qx 'libcrypto.so.3' "$work/core.needed"
check "the shared core needs none of the upper layers' libraries" \
    bash -c "! grep -E '$forbidden' '$work/core.needed'"
ldd "$work/embedder-shared" >"$work/ldd" 2>&1
check "ldd of the program shows none of them either" bash -c "! grep -E '$forbidden' '$work/ldd'"

# Exports: every function of errors.h, crypto.h and mikey.h, and only ms_ names.
nm -D --defined-only "$shared" | awk '$2 ~ /^[TDBRW]$/ {print $3}' | sort -u >"$work/exports"
check "the shared core exports something" test -s "$work/exports"
missing=""
for f in $(grep -ho 'ms_[a-z0-9_]*(' "$src/include/mikeysakke/errors.h" \
           "$src/include/mikeysakke/crypto.h" "$src/include/mikeysakke/mikey.h" | tr -d '(' | sort -u); do
    grep -qx "$f" "$work/exports" || missing="$missing $f"
done
check "every public core function is exported (missing:$missing)" test -z "$missing"
check "only ms_ names are exported" bash -c "! grep -v -e '^ms_' -e '^_' '$work/exports'"
check "no KMS, client or server function is in the core" \
    bash -c "! grep -E '^ms_(kms|keystore|fetch|dist|http|kmsif|annexd|call|group)_' '$work/exports'"

echo "test_core_unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
