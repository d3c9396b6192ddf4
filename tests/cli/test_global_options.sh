#!/bin/bash
# The command's global options: --version, --help, and what is refused before an area.
set -u
ms=${1:?usage: test_global_options.sh path/to/mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

check "--version exits 0" run 0 --version
check "  names the program, a version and the field backend" \
    grep -Eq '^mikeysakke [0-9]+\.[0-9]+\.[0-9]+ \(field arithmetic: (x86_64-adx|c64).*\)$' "$work/out"
check "--help exits 0 and lists --version" run 0 --help
check "  lists --version" grep -q -- '--version' "$work/out"
check "an unknown global option is a usage error (21)" run 21 --frobnicate
check "  named" err_has "unknown option --frobnicate"
check "no area is a usage error (21)" run 21

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
