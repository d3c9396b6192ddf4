#!/bin/bash
# The command starts without libcurl and libmicrohttpd (tools/lazy_net_libs.c loads them on
# first use): they are not among its NEEDED entries and a command that does no HTTP never
# maps them. (e2e/test_kms_serve, test_dist_serve and test_voicemail use both, loaded.)
set -u
ms=${1:?usage: test_lazy_libs.sh path/to/mikeysakke}
fail=0; pass=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

needed=$(readelf -d "$ms" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] && ok || bad "readelf found no NEEDED entries in $ms"
for lib in libcurl libmicrohttpd libgnutls; do
    if printf '%s\n' "$needed" | grep -q "^$lib"; then bad "$lib is NEEDED by $ms"; else ok; fi
done
# what the dynamic loader maps for a command without HTTP
loaded=$(LD_DEBUG=files "$ms" --help 2>&1 >/dev/null | sed -n 's/.*file=\([^ ]*\).*/\1/p' | sort -u)
printf '%s\n' "$loaded" | grep -q '^libcrypto' && ok || bad "LD_DEBUG=files shows no libcrypto (the check sees nothing)"
for lib in libcurl libmicrohttpd; do
    if printf '%s\n' "$loaded" | grep -q "^$lib"; then bad "--help maps $lib"; else ok; fi
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
