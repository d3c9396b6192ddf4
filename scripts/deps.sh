#!/bin/sh
# Installs the Debian packages mikeysakke needs to build and test. Idempotent: only
# what is missing is installed, so a second run is quick and touches nothing, and needs
# no root when nothing is missing.
#
#   sh scripts/deps.sh [--build] [--check] [PACKAGE...]
#     --build    only what compiling needs (`make build`), not the tests' tools
#     --check    never install: name what is missing and fail (also what a non-root
#                user gets)
#     PACKAGE    also require these
set -eu
# Compiling: the toolchain, OpenSSL, libre, libsrtp2, Opus, libpcap and ALSA (calls: SIP,
# SRTP, audio, captures); SQLite, libxml2 and p11-kit's pkcs11.h (the KMS store, key
# packages, PKCS#11 sealing); libmicrohttpd and libcurl (the KMS and distribution
# servers, the provisioning client).
build="build-essential cmake pkg-config libssl-dev libre-dev libsrtp2-dev libopus-dev libpcap-dev libasound2-dev libsqlite3-dev libxml2-dev libp11-kit-dev libmicrohttpd-dev libcurl4-openssl-dev libgnutls28-dev"
# Testing: kamailio and tcpdump (the untrusted provider and its wire in the call tests);
# python3-cryptography (the tests' independent SRTP decryption); python3 and tshark
# (tests/cli/test_mikey_tshark.sh); sqlite3 and softhsm2 (the KMS store, PKCS#11 sealing
# against SoftHSM2); curl and wrk (the servers' tests and the serving benchmark);
# valgrind (make ctcheck); clang and its runtime (make fuzz); xxd.
test="kamailio tcpdump python3-cryptography valgrind clang libclang-rt-14-dev xxd python3 tshark sqlite3 softhsm2 curl wrk"

need="$build $test"
check_only=0
extra=""
for arg in "$@"; do
    case "$arg" in
    --build) need="$build" ;;
    --check) check_only=1 ;;
    -*) echo "deps: unknown option $arg (--build, --check)" >&2; exit 2 ;;
    *) extra="$extra $arg" ;;
    esac
done
need="$need$extra"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system (no dpkg-query): packages not checked; install the" \
         "equivalents of: $need" >&2
    exit 0
fi
missing=""
for pkg in $need; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$check_only" = 1 ] || [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: as root, this would run: apt-get install -y --no-install-recommends$missing" \
         "(or run 'make deps' as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# wireshark-common asks whether non-root users may capture; answer "no" in advance so
# the install never stops at a prompt (we only read capture files).
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
