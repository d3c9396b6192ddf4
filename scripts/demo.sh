#!/bin/sh
# The main job end to end with the crypto core: a KMS creates its master keys, issues
# keys to Alice and Bob for this month, Alice encapsulates a fresh key to Bob and signs
# it, Bob checks the signature and recovers the key. Everything stays in a temporary
# folder that is removed afterwards; no secret is printed or passed on a command line.
set -eu
ms=${1:-build/mikeysakke}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

month=$(date -u +%Y-%m)
hexid() { printf '%s\0tel:%s\0' "$month" "$1" | xxd -p | tr -d '\n'; }
alice=$(hexid +447700900123)
bob=$(hexid +447700900456)

step() { printf '\n== %s\n' "$*"; }

step "KMS: create the SAKKE master secret z and the ECCSI KSAK (files, mode 0600)"
Z=$("$ms" sakke keygen --secret-out "$work/kms-z.key")
KPAK=$("$ms" eccsi keygen --secret-out "$work/kms-ksak.key")
echo "Z    = $(echo "$Z" | cut -c1-48)...  (257 octets, public)"
echo "KPAK = $(echo "$KPAK" | cut -c1-48)...  (65 octets, public)"

step "KMS: issue $month keys: Alice's signing key (SSK, PVT), Bob's decryption key (RSK)"
PVT=$("$ms" eccsi issue --secret "$work/kms-ksak.key" --kpak "$KPAK" --id "$alice" \
      --ssk-out "$work/alice-ssk.key")
"$ms" sakke rsk --secret "$work/kms-z.key" --id "$bob" --out "$work/bob-rsk.key"
echo "Alice's PVT = $(echo "$PVT" | cut -c1-48)..."

step "Bob: validate the RSK he received (RFC 6508 6.1.2)"
"$ms" sakke validate --public "$Z" --id "$bob" --rsk "$work/bob-rsk.key"
echo "RSK valid"

step "Alice: encapsulate a fresh SSV to Bob's identity and sign it with her SSK"
"$ms" sakke encap --public "$Z" --id "$bob" > "$work/encap.out"
alice_ssv=$(sed -n 1p "$work/encap.out")
SED=$(sed -n 2p "$work/encap.out")
printf '%s' "$SED" > "$work/message"
SIG=$("$ms" eccsi sign --kpak "$KPAK" --id "$alice" --ssk "$work/alice-ssk.key" \
      --pvt "$PVT" --in "$work/message")
echo "encapsulated data: $(printf '%s' "$SED" | wc -c | awk '{print $1/2}') octets, signature: $(printf '%s' "$SIG" | wc -c | awk '{print $1/2}') octets"

step "Bob: verify Alice's signature, then decapsulate with his RSK"
"$ms" eccsi verify --kpak "$KPAK" --id "$alice" --in "$work/message" --sig "$SIG"
echo "signature valid (from $month tel:+447700900123)"
bob_ssv=$("$ms" sakke decap --public "$Z" --id "$bob" --rsk "$work/bob-rsk.key" --sed "$SED")

step "Both sides hold the same SSV"
# Only a fingerprint is shown: the SSV itself is the call's key.
fp() { printf '%s' "$1" | sha256sum | cut -c1-16; }
echo "Alice: SHA-256(SSV) = $(fp "$alice_ssv")..."
echo "Bob:   SHA-256(SSV) = $(fp "$bob_ssv")..."
[ "$alice_ssv" = "$bob_ssv" ] || { echo "demo: keys differ" >&2; exit 1; }

step "A tampered message is refused"
# flip one hex digit of H, the masked SSV: the TEST check must catch it
c=$(printf '%s' "$SED" | cut -c531)
[ "$c" = 0 ] && n=1 || n=0
bad=$(printf '%s' "$SED" | sed "s/^\(.\{530\}\)./\1$n/")
if "$ms" sakke decap --public "$Z" --id "$bob" --rsk "$work/bob-rsk.key" --sed "$bad" \
        >/dev/null 2>"$work/err"; then
    echo "demo: tampered data accepted" >&2; exit 1
fi
sed 's/^/refused: /' "$work/err"

step "MIKEY-SAKKE (RFC 6509): the same in one signed I_MESSAGE, sent as an SDP attribute"
kms="--kms kms.example.org --public $Z --kpak $KPAK"
# shellcheck disable=SC2086
"$ms" mikey init --uri tel:+447700900123 --to tel:+447700900456 $kms \
    --ssk "$work/alice-ssk.key" --pvt "$PVT" --format sdp --out "$work/offer.sdp" \
    --keys > "$work/alice.keys"
echo "Alice's SDP: $(cut -c1-60 "$work/offer.sdp")... ($(wc -c < "$work/offer.sdp") octets)"
"$ms" mikey inspect --in "$work/offer.sdp" | grep -E '^  [A-Z]' | sed 's/^ */  payload: /'
# shellcheck disable=SC2086
"$ms" mikey respond --uri tel:+447700900456 $kms --rsk "$work/bob-rsk.key" \
    --in "$work/offer.sdp" --expect-from tel:+447700900123 > "$work/bob.keys"
grep -E '^(initiator|timestamp|csb-id) = ' "$work/bob.keys"
keys() { grep -E '^(key|cs [0-9]+ master-[a-z]+) = ' "$1" | sha256sum | cut -c1-16; }
echo "Alice: SHA-256(TGK and SRTP keys) = $(keys "$work/alice.keys")..."
echo "Bob:   SHA-256(TGK and SRTP keys) = $(keys "$work/bob.keys")..."
[ "$(keys "$work/alice.keys")" = "$(keys "$work/bob.keys")" ] || { echo "demo: MIKEY keys differ" >&2; exit 1; }
echo
echo "demo: OK"
