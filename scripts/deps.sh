#!/bin/sh
# Installs the Debian packages mikeysakke needs to build and test. Idempotent: only
# what is missing is installed, so a second run is quick and touches nothing.
set -eu
need="build-essential cmake pkg-config libssl-dev valgrind clang libclang-rt-14-dev xxd"
missing=""
for pkg in $need; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages:$missing (run 'make deps' as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
