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

# ---- the KMS: sealed master secrets, users, offline key packages, audited extraction ----
K="$work/kms"
ROLES="$work/auditors" # kms init writes the role keys (operator, officers, auditors) here
# the unseal agent and the distribution server must not outlive the demo, whatever happens
dist_pid=
trap '[ -z "$dist_pid" ] || kill "$dist_pid" 2>/dev/null; "$ms" kms seal --dir "$K" >/dev/null 2>&1; rm -rf "$work"' EXIT
printf 'officer passphrase: correct horse battery staple\n' > "$work/kms.pass"

step "KMS: create the community (master secrets sealed under a passphrase, 2 of 3 auditors)"
# --scrypt-log2n 12 keeps the demo quick; a real KMS keeps the default (128 MiB scrypt)
"$ms" kms init --dir "$K" --uri kms.example.org --passphrase-file "$work/kms.pass" \
    --scrypt-log2n 12 --auditors 3 --approvals 2 --auditor-out-dir "$work/auditors" | sed 's/^/  /'

step "KMS: unseal (a background agent now holds the master secrets in locked memory)"
"$ms" kms unseal --dir "$K" --passphrase-file "$work/kms.pass"
"$ms" kms status --dir "$K" | sed 's/^/  /'

step "KMS: enrol Alice's and Bob's phones, issue this month's keys, export for the devices"
"$ms" kms user add --key "$ROLES/operator.key" --dir "$K" --user tel:+447700900123
"$ms" kms user add --key "$ROLES/operator.key" --dir "$K" --user tel:+447700900456
"$ms" kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user tel:+447700900123 --device alice-phone --out "$work/alice.enrol"
"$ms" kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user tel:+447700900456 --device bob-phone --out "$work/bob.enrol"
"$ms" kms issue --key "$ROLES/operator.key" --dir "$K" --period current
"$ms" kms export --key "$ROLES/operator.key" --dir "$K" --period current --out "$work/media"
grep -v '^#' "$work/media/index.txt" | awk '{print "  " $3 "  (" $2 ")"}'
Zc=$(sed -n 's:.*<PubEncKey>\(.*\)</PubEncKey>.*:\1:p' "$K/certificate.xml")
KPAKc=$(sed -n 's:.*<PubAuthKey>\(.*\)</PubAuthKey>.*:\1:p' "$K/certificate.xml")
T=$(date -u +%Y-%m-%dT%H:%M:%SZ)

if "$ms" help user init >/dev/null 2>&1; then
    step "Distribution server: the export served over HTTPS on loopback (it holds no secret)"
    # a throwaway CA and a server certificate for 127.0.0.1; the devices trust the CA
    q() { "$@" >"$work/openssl.log" 2>&1 || { cat "$work/openssl.log" >&2; exit 1; }; }
    q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=demo-ca -keyout "$work/ca.key" -out "$work/ca.crt"
    q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout "$work/dist.key" -out "$work/dist.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$work/dist.ext"
    q openssl x509 -req -in "$work/dist.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
        -CAcreateserial -days 1 -extfile "$work/dist.ext" -out "$work/dist.crt"
    "$ms" dist serve "$work/media" --listen 127.0.0.1 --port 0 \
        --cert "$work/dist.crt" --key "$work/dist.key" 2>"$work/dist.log" &
    dist_pid=$!
    port=
    for _ in $(seq 1 100); do
        port=$(sed -n 's|.*listening on https://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$work/dist.log" | head -1)
        [ -n "$port" ] && break
        kill -0 "$dist_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$work/dist.log" >&2; echo "demo: dist serve did not start" >&2; exit 1; }
    url=https://127.0.0.1:$port
    echo "  $url/keymanagement/identity/v1/{init,keyprov,certcache}"

    step "Devices: each creates its encrypted keystore from its enrolment file and fetches its keys"
    for who in alice bob; do
        printf '%s keystore passphrase\n' "$who" > "$work/$who.pass"
        "$ms" user init --keystore "$work/$who.ks" --enrolment "$work/$who.enrol" \
            --passphrase-file "$work/$who.pass" --scrypt-cost 12 >/dev/null
        "$ms" user fetch --keystore "$work/$who.ks" --passphrase-file "$work/$who.pass" \
            --url "$url" --cacert "$work/ca.crt" | sed "s/^/  $who: /"
    done
    kill "$dist_pid" 2>/dev/null || true
    wait "$dist_pid" 2>/dev/null || true
    dist_pid=

    step "Call: Alice sends Bob an I_MESSAGE; both derive the same SRTP keys"
    "$ms" mikey init --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" \
        --to tel:+447700900456 --time "$T" --out "$work/call.imsg" --keys > "$work/alice.call"
    "$ms" mikey respond --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" \
        --in "$work/call.imsg" --now "$T" > "$work/bob.call"
    # the SRTP key identifier (CSB ID) is public; the keys themselves only as a fingerprint
    echo "Alice: $(grep -E '^csb-id = ' "$work/alice.call")  keys $(keys "$work/alice.call")..."
    echo "Bob:   $(grep -E '^csb-id = ' "$work/bob.call")  keys $(keys "$work/bob.call")..."
    [ "$(keys "$work/alice.call")" = "$(keys "$work/bob.call")" ] || { echo "demo: call keys differ" >&2; exit 1; }
    have_call=1
else
    echo "(the 'mikeysakke user' commands are not built: the call is left out)"
    have_call=0
fi

step "Audit: two auditors release Bob's decryption key for the month of the call (logged first)"
"$ms" kms audit request --dir "$K" --user tel:+447700900456 --period "$T" \
    --reason "demo: warrant 2025/42" --out "$work/extract.req" | sed 's/^/  /'
for a in 1 3; do # each auditor reads the request and signs exactly it
    "$ms" kms audit approve --request "$work/extract.req" --key "$ROLES/auditor-$a.key" \
        --out "$work/extract.ok$a" >/dev/null
done
"$ms" kms audit extract --dir "$K" --request "$work/extract.req" \
    --approval "$work/extract.ok1,$work/extract.ok3" --out "$work/bob-extracted.rsk" | sed 's/^/  /'
if [ "$have_call" = 1 ]; then
    "$ms" mikey respond --uri tel:+447700900456 --kms kms.example.org --public "$Zc" --kpak "$KPAKc" \
        --rsk "$work/bob-extracted.rsk" --in "$work/call.imsg" --now "$T" > "$work/auditor.call"
    echo "Auditor: $(grep -E '^csb-id = ' "$work/auditor.call")  keys $(keys "$work/auditor.call")..."
    [ "$(keys "$work/auditor.call")" = "$(keys "$work/bob.call")" ] || { echo "demo: auditor's keys differ" >&2; exit 1; }
fi
echo "One user, one month, recorded before release:"
tail -1 "$K/audit.log" | cut -d' ' -f3-9 | sed 's/^/  /'
echo "The same approvals a second time are refused (the request's nonce is spent):"
"$ms" kms audit extract --dir "$K" --request "$work/extract.req" \
    --approval "$work/extract.ok1,$work/extract.ok3" --out "$work/again.rsk" 2>&1 | sed 's/^/  /' || true
echo "A request for two users is refused:"
"$ms" kms audit request --dir "$K" --user tel:+447700900456,tel:+447700900123 --period "$T" \
    --reason "fishing" --out "$work/nope.req" 2>&1 | sed 's/^/  /' || true

step "KMS: seal (the agent wipes the secrets and exits); the audit log verifies with the public key"
"$ms" kms seal --dir "$K"
"$ms" kms audit verify --log "$K/audit.log" --public "$K/audit.pub" | sed 's/^/  /'

# What it is all for: calls through an untrusted provider, voicemail, the auditor.
bash "$(dirname "$0")/demo_call.sh" "$ms"
echo
echo "demo: OK"
