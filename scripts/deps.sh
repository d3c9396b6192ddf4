#!/bin/sh
# Installs the Debian packages mikeysakke needs to build and test. Idempotent: only
# what is missing is installed, so a second run is quick and touches nothing.
set -eu
# libre, libsrtp2, Opus, libpcap and ALSA: calls (SIP, SRTP, audio, captures); kamailio and
# tcpdump: the untrusted provider and its wire in the call tests; python3-cryptography: the
# tests' independent SRTP decryption.
# python3 and tshark: tests/cli/test_mikey_tshark.sh writes a pcap and decodes it.
# sqlite3, libxml2, p11-kit (pkcs11.h) and softhsm2: the KMS store, key packages and the
# PKCS#11 sealing tested against SoftHSM2. libmicrohttpd, libcurl, curl and wrk: the KMS
# and distribution servers, the provisioning client, and the serving benchmark.
need="build-essential cmake pkg-config libre-dev libsrtp2-dev libopus-dev libpcap-dev libasound2-dev kamailio tcpdump python3-cryptography libssl-dev valgrind clang libclang-rt-14-dev xxd python3 tshark libsqlite3-dev sqlite3 libxml2-dev libp11-kit-dev softhsm2 libmicrohttpd-dev libcurl4-openssl-dev curl wrk"
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
# wireshark-common asks whether non-root users may capture; answer "no" in advance so
# the install never stops at a prompt (we only read capture files).
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
