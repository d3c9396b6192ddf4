#!/usr/bin/env bash
# End-to-end tests of `mikeysakke eccsi ...`: the RFC 6507 Appendix A signature through
# the command line, keygen -> issue -> sign -> verify round trips, --verbose, key-file
# permissions and exit codes. Usage: bash test_eccsi.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_eccsi.sh PATH_TO_mikeysakke}
vectors="$(cd "$(dirname "$0")/../vectors" && pwd)/rfc6507.txt"
. "$(dirname "$0")/lib.sh"

KPAK=$(v KPAK)
ID=$(v ID)
SIG=$(v SIG)
printf 'message\0' >"$work/msg" # M = 6D65737361676500
check "message file is the RFC M" same "$(od -An -tx1 "$work/msg" | tr -d ' \n' | tr a-f A-F)" "$(v M)"

# ---- RFC 6507 Appendix A ----------------------------------------------------------------
check "verify the RFC signature" run 0 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "$SIG"
check "valid signature prints nothing" same "$(cat "$work/out")" ""
stdin="$work/msg" check "verify from standard input (--in -)" run 0 eccsi verify --kpak "$KPAK" --id "$ID" --in - --sig "$SIG"
check "tampered s exits 1" run 1 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "$(flip "$SIG" 100)"
check "invalid signature reported as (1)" err_has "mikeysakke: (1) "
check "invalid signature gives the reason" err_has "does not verify"
check "tampered r exits 1" run 1 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "$(flip "$SIG" 10)"
check "wrong id exits 1" run 1 eccsi verify --kpak "$KPAK" --id "${ID%00}01" --in "$work/msg" --sig "$SIG"
printf 'messagf\0' >"$work/msg2"
check "other message exits 1" run 1 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg2" --sig "$SIG"
check "lower-case hex accepted" run 0 eccsi verify --kpak "$(tr A-F a-f <<<"$KPAK")" --id "$(tr A-F a-f <<<"$ID")" --in "$work/msg" --sig "$(tr A-F a-f <<<"$SIG")"

check "verbose verify" run 0 --verbose eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "$SIG"
check "verbose verify shows HS" err_has "HS = $(v HS)"
check "verbose verify shows HE" err_has "HE = $(v HE)"
check "verbose verify shows Y" err_has "Y = $(v Y)"
check "verbose verify shows J" err_has "J = $(v J_verifier)"
check "verbose verify shows r" err_has "r = $(v r)"
check "verbose verify shows s" err_has "s = $(v s)"

# The RFC's SSK and PVT sign (with a fresh j, so a different signature that verifies).
printf '%s\n' "$(v SSK)" >"$work/rfc.ssk"
chmod 600 "$work/rfc.ssk"
check "sign with the RFC SSK" run 0 eccsi sign --kpak "$KPAK" --id "$ID" --ssk "$work/rfc.ssk" --pvt "$(v PVT)" --in "$work/msg" --verbose
sig=$(cat "$work/out")
check "signature is 129 octets ending in the PVT" same "${sig:128}" "$(v PVT)"
check "verbose sign shows the RFC HS" err_has "HS = $(v HS)"
check "verbose sign shows r, the x of J" same "$(sed -n 's/^r = //p' "$work/err")" "${sig:0:64}"
check "verbose sign shows s" same "$(sed -n 's/^s = //p' "$work/err")" "${sig:64:64}"
check "verbose sign shows J" grep -q "^J = 04${sig:0:64}[0-9A-F]\{64\}\$" "$work/err"
check "verbose sign shows HE" grep -q '^HE = [0-9A-F]\{64\}$' "$work/err"
check "verbose sign hides the SSK" err_lacks "$(v SSK)"
check "signature from the RFC SSK verifies" run 0 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "$sig"
check "sign with a PVT of another id fails (14)" run 14 eccsi sign --kpak "$KPAK" --id "${ID%00}01" --ssk "$work/rfc.ssk" --pvt "$(v PVT)" --in "$work/msg"

# The RFC's KSAK issues keys under the RFC's KPAK.
printf '%s\n' "$(v KSAK)" >"$work/rfc.ksak"
chmod 600 "$work/rfc.ksak"
check "issue with the RFC KSAK" run 0 eccsi issue --secret "$work/rfc.ksak" --kpak "$KPAK" --id "$ID" --ssk-out "$work/rfc2.ssk" --verbose
pvt=$(cat "$work/out")
check "issue prints a 65-octet PVT" grep -q '^04[0-9A-F]\{128\}$' <<<"$pvt"
check "issue --verbose shows HS" grep -q '^HS = [0-9A-F]\{64\}$' "$work/err"
check "issue --verbose hides the SSK" err_lacks "$(cat "$work/rfc2.ssk" 2>/dev/null || echo no-ssk-file)"
check "issued SSK file mode 600" same "$(mode "$work/rfc2.ssk")" 600
check "sign with the issued SSK" run 0 eccsi sign --kpak "$KPAK" --id "$ID" --ssk "$work/rfc2.ssk" --pvt "$pvt" --in "$work/msg"
check "its signature verifies" run 0 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "$(cat "$work/out")"

# ---- random round trip --------------------------------------------------------------------
id=$(printf '2024-01\0tel:+447700900123\0' | od -An -tx1 | tr -d ' \n')
check "keygen" run 0 eccsi keygen --secret-out "$work/ksak.key"
kpak=$(cat "$work/out")
check "keygen prints a 65-octet KPAK" grep -q '^04[0-9A-F]\{128\}$' <<<"$kpak"
check "KSAK file mode 600" same "$(mode "$work/ksak.key")" 600
check "KSAK file is 32 octets of hex" grep -q '^[0-9A-F]\{64\}$' "$work/ksak.key"
check "issue" run 0 eccsi issue --secret "$work/ksak.key" --kpak "$kpak" --id "$id" --ssk-out "$work/a.ssk"
pvt=$(cat "$work/out")
check "SSK file mode 600" same "$(mode "$work/a.ssk")" 600
check "SSK file is 32 octets of hex" grep -q '^[0-9A-F]\{64\}$' "$work/a.ssk"
head -c 3000 /dev/urandom >"$work/big"
check "sign" run 0 eccsi sign --kpak "$kpak" --id "$id" --ssk "$work/a.ssk" --pvt "$pvt" --in "$work/big"
sig=$(cat "$work/out")
check "signature is 129 octets" grep -q '^[0-9A-F]\{64\}[0-9A-F]\{64\}04[0-9A-F]\{128\}$' <<<"$sig"
check "verify" run 0 eccsi verify --kpak "$kpak" --id "$id" --in "$work/big" --sig "$sig"
stdin="$work/big" check "sign from standard input" run 0 eccsi sign --kpak "$kpak" --id "$id" --ssk "$work/a.ssk" --pvt "$pvt" --in -
stdin="$work/big" check "verify from standard input" run 0 eccsi verify --kpak "$kpak" --id "$id" --in - --sig "$(cat "$work/out")"
check "under the RFC KPAK it does not verify (1)" run 1 eccsi verify --kpak "$KPAK" --id "$id" --in "$work/big" --sig "$sig"
check "issue refuses a KPAK of another KSAK (2)" run 2 eccsi issue --secret "$work/ksak.key" --kpak "$KPAK" --id "$id" --ssk-out "$work/b.ssk"
check "no SSK file after the refusal" [ ! -e "$work/b.ssk" ]
: >"$work/empty"
check "sign an empty message" run 0 eccsi sign --kpak "$kpak" --id "$id" --ssk "$work/a.ssk" --pvt "$pvt" --in "$work/empty"
check "verify an empty message" run 0 eccsi verify --kpak "$kpak" --id "$id" --in "$work/empty" --sig "$(cat "$work/out")"

# ---- key files --------------------------------------------------------------------------
before=$(cat "$work/ksak.key")
check "keygen refuses an existing file (19)" run 19 eccsi keygen --secret-out "$work/ksak.key"
check "refused file unchanged" same "$(cat "$work/ksak.key")" "$before"
check "issue refuses an existing SSK file (19)" run 19 eccsi issue --secret "$work/ksak.key" --kpak "$kpak" --id "$id" --ssk-out "$work/a.ssk"
check "keygen --force replaces" run 0 eccsi keygen --secret-out "$work/ksak.key" --force
check "replaced KSAK differs" [ "$(cat "$work/ksak.key")" != "$before" ]
check "replaced KSAK mode 600" same "$(mode "$work/ksak.key")" 600
check "no temporary files left" same "$(ls -A "$work" | grep -c tmp-)" 0
check "keygen into a missing directory exits 19" run 19 eccsi keygen --secret-out "$work/no/such/dir.key"

cp "$work/rfc.ksak" "$work/ksak644"
chmod 644 "$work/ksak644"
check "KSAK file mode 644 refused (20)" run 20 eccsi issue --secret "$work/ksak644" --kpak "$KPAK" --id "$ID" --ssk-out "$work/c.ssk"
check "refusal names the file" err_has "ksak644"
check "mode error shows no key material" err_lacks "12345"
cp "$work/rfc.ssk" "$work/ssk604"
chmod 604 "$work/ssk604"
check "SSK file mode 604 refused (20)" run 20 eccsi sign --kpak "$KPAK" --id "$ID" --ssk "$work/ssk604" --pvt "$(v PVT)" --in "$work/msg"
printf '%s\n' "$(v SSK)00" >"$work/long.ssk"
chmod 600 "$work/long.ssk"
check "33-octet SSK refused (6)" run 6 eccsi sign --kpak "$KPAK" --id "$ID" --ssk "$work/long.ssk" --pvt "$(v PVT)" --in "$work/msg"
check "length error names the file" err_has "long.ssk"
check "length error shows no key material" err_lacks "$(v SSK)"
printf '12345\n' >"$work/short.ksak"
chmod 600 "$work/short.ksak"
check "odd-length KSAK file refused (7)" run 7 eccsi issue --secret "$work/short.ksak" --kpak "$KPAK" --id "$ID" --ssk-out "$work/c.ssk"

# ---- arguments ----------------------------------------------------------------------------
check "bad hex --kpak exits 7" run 7 eccsi verify --kpak "${KPAK:0:128}XY" --id "$ID" --in "$work/msg" --sig "$SIG"
check "message names --kpak" err_has "mikeysakke: (7) --kpak: not valid hex"
check "odd-length --sig exits 7" run 7 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "${SIG}0"
check "short --kpak exits 6" run 6 eccsi verify --kpak "${KPAK:0:128}" --id "$ID" --in "$work/msg" --sig "$SIG"
check "short --sig exits 6" run 6 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg" --sig "${SIG:0:256}"
check "KPAK off the curve exits 17" run 17 eccsi verify --kpak "0400${KPAK:4}" --id "$ID" --in "$work/msg" --sig "$SIG"
check "missing --in file exits 19" run 19 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/none" --sig "$SIG"
check "missing --sig exits 21" run 21 eccsi verify --kpak "$KPAK" --id "$ID" --in "$work/msg"
check "missing option is named" err_has "--sig"
check "unknown option exits 21" run 21 eccsi sign --kpak "$KPAK" --nope
check "flag with a value exits 21" run 21 eccsi keygen --secret-out "$work/x.key" --force=yes
check "eccsi without a verb exits 21" run 21 eccsi
check "eccsi --help exits 0" run 0 eccsi --help
check "eccsi verify --help exits 0" run 0 eccsi verify --help
check "verify help names --sig" grep -q -- '--sig HEX' "$work/out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
