#!/usr/bin/env bash
# End-to-end tests of `mikeysakke sakke ...` (and the command's general behaviour):
# the RFC 6508 Appendix A vectors through the command line, random round trips, key-file
# permissions and exit codes. Usage: bash test_sakke.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_sakke.sh PATH_TO_mikeysakke}
vectors="$(cd "$(dirname "$0")/../vectors" && pwd)/rfc6508.txt"
. "$(dirname "$0")/lib.sh"

Z="04$(v Zx)$(v Zy)"
b=$(v b)
SSV=$(v SSV)
SED=$(v SED)
RSK="04$(v Kbx)$(v Kby)"

# ---- RFC 6508 Appendix A ----------------------------------------------------------------
printf '%s\n' "$(v z)" >"$work/z.key" # the RFC's 20-octet z, left-padded by the tool
chmod 600 "$work/z.key"

check "rsk with the RFC z and b" run 0 sakke rsk --secret "$work/z.key" --id "$b" --out "$work/b.rsk"
check "rsk file is 04||Kbx||Kby" same "$(cat "$work/b.rsk")" "$RSK"
check "rsk file is one line" same "$(wc -l <"$work/b.rsk")" 1
check "rsk file mode 600" same "$(mode "$work/b.rsk")" 600
check "rsk prints nothing" same "$(cat "$work/out")" ""

check "validate the RFC RSK" run 0 sakke validate --public "$Z" --id "$b" --rsk "$work/b.rsk"
check "validate with another id exits 1" run 1 sakke validate --public "$Z" --id "${b%00}01" --rsk "$work/b.rsk"
check "invalid RSK reported as (1)" err_has "mikeysakke: (1) "
check "invalid RSK gives the reason" err_has "RSK failed validation"

check "encap with the RFC SSV" run 0 sakke encap --public "$Z" --id "$b" --ssv "$SSV"
check "encap prints the SSV first" same "$(line 1)" "$SSV"
check "encap prints the RFC SED" same "$(line 2)" "$SED"
check "encap prints two lines" same "$(wc -l <"$work/out")" 2
check "encap accepts lower-case hex" run 0 sakke encap --public "$(lower "$Z")" --id "$(lower "$b")" --ssv "$(lower "$SSV")"
check "lower-case input, upper-case output" same "$(line 2)" "$SED"

check "decap the RFC SED" run 0 sakke decap --public "$Z" --id "$b" --rsk "$work/b.rsk" --sed "$SED"
check "decap prints the RFC SSV" same "$(cat "$work/out")" "$SSV"
check "decap with another id fails the TEST check (16)" run 16 sakke decap --public "$Z" --id "${b%00}01" --rsk "$work/b.rsk" --sed "$SED"
c=${SED:530:1}
[ "$c" = 0 ] && n=1 || n=0
check "decap of a tampered H exits 16" run 16 sakke decap --public "$Z" --id "$b" --rsk "$work/b.rsk" --sed "${SED:0:530}$n${SED:531}"
check "decap prints no SSV on failure" same "$(cat "$work/out")" ""
check "decap of short data exits 6" run 6 sakke decap --public "$Z" --id "$b" --rsk "$work/b.rsk" --sed "${SED:0:544}"

# ---- --verbose ------------------------------------------------------------------------------
check "verbose encap" run 0 --verbose sakke encap --public "$Z" --id "$b" --ssv "$SSV"
check "verbose encap shows b" err_has "b = $b"
check "verbose encap shows I" grep -q '^I = 04[0-9A-F]\{512\}$' "$work/err"
check "verbose encap shows Rbx" err_has "Rbx = $(v Rbx)"
check "verbose encap shows Rby" err_has "Rby = $(v Rby)"
check "verbose encap shows H" err_has "H = $(v H)"
check "verbose encap hides the SSV" err_lacks "$SSV"
check "verbose encap hides r" err_lacks "$(v r)"
check "verbose encap hides g^r" err_lacks "$(v g_r)"
check "verbose encap hides the mask" err_lacks "$(v mask)"
check "verbose encap still prints the SED" same "$(line 2)" "$SED"
check "verbose after the options" run 0 sakke decap --public "$Z" --id "$b" --rsk "$work/b.rsk" --sed "$SED" --verbose
check "verbose decap shows Rbx" err_has "Rbx = $(v Rbx)"
check "verbose decap shows H" err_has "H = $(v H)"
check "verbose decap hides the SSV" err_lacks "$SSV"
check "verbose decap hides the RSK" err_lacks "$(v Kbx)"
check "verbose decap hides the mask" err_lacks "$(v mask)"
check "verbose decap prints the SSV on stdout" same "$(cat "$work/out")" "$SSV"

# ---- random round trip --------------------------------------------------------------------
id=$(printf '2024-01\0tel:+447700900456\0' | od -An -tx1 | tr -d ' \n')
check "keygen" run 0 sakke keygen --secret-out "$work/kms.key"
Zr=$(line 1)
check "keygen prints a 257-octet point" grep -q '^04[0-9A-F]\{512\}$' "$work/out"
check "z file mode 600" same "$(mode "$work/kms.key")" 600
check "z file is 128 octets of hex" grep -q '^[0-9A-F]\{256\}$' "$work/kms.key"
check "rsk from the new z" run 0 sakke rsk --secret "$work/kms.key" --id "$id" --out "$work/bob.rsk"
check "new rsk validates" run 0 sakke validate --public "$Zr" --id "$id" --rsk "$work/bob.rsk"
check "encap with a random SSV" run 0 sakke encap --public "$Zr" --id "$id"
ssv=$(line 1)
sed_r=$(line 2)
check "random SSV is 16 octets" grep -q '^[0-9A-F]\{32\}$' <<<"$ssv"
check "SED is 273 octets" grep -q '^04[0-9A-F]\{544\}$' <<<"$sed_r"
check "decap the random SED" run 0 sakke decap --public "$Zr" --id "$id" --rsk "$work/bob.rsk" --sed "$sed_r"
check "round trip gives the same SSV" same "$(cat "$work/out")" "$ssv"
check "two encaps draw different SSVs" run 0 sakke encap --public "$Zr" --id "$id"
check "second SSV differs" [ "$(line 1)" != "$ssv" ]
check "the RFC RSK is not valid under the new Z" run 1 sakke validate --public "$Zr" --id "$b" --rsk "$work/b.rsk"

# ---- key files: overwrite, permissions, format -------------------------------------------
before=$(cat "$work/kms.key")
check "keygen refuses an existing file (19)" run 19 sakke keygen --secret-out "$work/kms.key"
check "refusal names --force" err_has "--force"
check "refused file unchanged" same "$(cat "$work/kms.key")" "$before"
check "rsk refuses an existing file (19)" run 19 sakke rsk --secret "$work/z.key" --id "$b" --out "$work/b.rsk"
check "keygen --force replaces" run 0 sakke keygen --secret-out "$work/kms.key" --force
check "replaced file differs" [ "$(cat "$work/kms.key")" != "$before" ]
check "replaced file mode 600" same "$(mode "$work/kms.key")" 600
check "rsk --force replaces" run 0 sakke rsk --secret "$work/z.key" --id "$b" --out "$work/b.rsk" --force
check "replaced rsk still the RFC one" same "$(cat "$work/b.rsk")" "$RSK"
check "no temporary files left" same "$(ls -A "$work" | grep -c tmp-)" 0

cp "$work/z.key" "$work/z644.key"
chmod 644 "$work/z644.key"
check "z file mode 644 refused (20)" run 20 sakke rsk --secret "$work/z644.key" --id "$b" --out "$work/x.rsk"
check "refusal names the file" err_has "z644.key"
check "no output file after a refusal" [ ! -e "$work/x.rsk" ]
chmod 604 "$work/z644.key"
check "z file mode 604 refused (20)" run 20 sakke rsk --secret "$work/z644.key" --id "$b" --out "$work/x.rsk"
cp "$work/b.rsk" "$work/b640.rsk"
chmod 640 "$work/b640.rsk"
check "rsk file mode 640 refused (20)" run 20 sakke decap --public "$Z" --id "$b" --rsk "$work/b640.rsk" --sed "$SED"
check "mode error shows no key material" err_lacks "$(v Kbx)"
check "rsk file mode 640 refused by validate" run 20 sakke validate --public "$Z" --id "$b" --rsk "$work/b640.rsk"
mkdir -m 700 "$work/dir.key"
check "a directory as key file refused (20)" run 20 sakke rsk --secret "$work/dir.key" --id "$b" --out "$work/x.rsk"
check "missing key file exits 19" run 19 sakke rsk --secret "$work/none.key" --id "$b" --out "$work/x.rsk"

printf '%0258d\n' 0 >"$work/long.key" # 129 octets
chmod 600 "$work/long.key"
check "z of 129 octets refused (6)" run 6 sakke rsk --secret "$work/long.key" --id "$b" --out "$work/x.rsk"
check "length error names the file" err_has "long.key"
printf '\n' >"$work/empty.key"
chmod 600 "$work/empty.key"
check "empty z file refused (6)" run 6 sakke rsk --secret "$work/empty.key" --id "$b" --out "$work/x.rsk"
printf '%s\n' "${RSK:0:512}" >"$work/short.rsk"
chmod 600 "$work/short.rsk"
check "short rsk file refused (6)" run 6 sakke decap --public "$Z" --id "$b" --rsk "$work/short.rsk" --sed "$SED"
printf 'AFF429D35F84B110D094803B3595A6E2998BC99G\n' >"$work/badhex.key"
chmod 600 "$work/badhex.key"
check "bad hex in a key file (7)" run 7 sakke rsk --secret "$work/badhex.key" --id "$b" --out "$work/x.rsk"
check "key file error shows no key material" err_lacks "AFF429D3"
printf '%s' "$(v z)" >"$work/nonl.key"
chmod 600 "$work/nonl.key"
check "key file without final newline accepted" run 0 sakke rsk --secret "$work/nonl.key" --id "$b" --out "$work/nonl.rsk"
check "same RSK from it" same "$(cat "$work/nonl.rsk")" "$RSK"

# ---- arguments ----------------------------------------------------------------------------
check "bad hex --id exits 7" run 7 sakke encap --public "$Z" --id "zz" --ssv "$SSV"
check "bad hex message names --id" err_has "mikeysakke: (7) --id: not valid hex"
check "odd-length --id exits 7" run 7 sakke encap --public "$Z" --id "123" --ssv "$SSV"
check "spaces in hex exit 7" run 7 sakke encap --public "$Z" --id "32 30" --ssv "$SSV"
check "bad hex --public exits 7" run 7 sakke encap --public "${Z:0:512}0X" --id "$b"
check "short --public exits 6" run 6 sakke encap --public "${Z:0:512}" --id "$b"
check "--public off the curve is refused (18 or 8)" run_any "18 8" sakke encap --public "0400${Z:4}" --id "$b"
check "--ssv of 15 octets exits 12" run 12 sakke encap --public "$Z" --id "$b" --ssv "${SSV:0:30}"
check "missing --out exits 21" run 21 sakke rsk --secret "$work/z.key" --id "$b"
check "missing option is named" err_has "--out"
check "unknown option exits 21" run 21 sakke encap --public "$Z" --id "$b" --bogus
check "unknown option is named" err_has "--bogus"
check "option twice exits 21" run 21 sakke encap --public "$Z" --id "$b" --id "$b"
check "stray argument exits 21" run 21 sakke encap --public "$Z" --id "$b" extra
check "--opt=value form" run 0 sakke encap --public="$Z" --id="$b" --ssv="$SSV"
check "--opt=value gives the RFC SED" same "$(line 2)" "$SED"
check "unknown command exits 21" run 21 sakke frobnicate
check "no command exits 21" run 21
check "help exits 0" run 0 help
check "help lists sakke encap" grep -q 'sakke encap' "$work/out"
check "--help exits 0" run 0 --help
check "command --help exits 0" run 0 sakke rsk --help
check "command help lists its options" grep -q -- '--secret FILE' "$work/out"
check "help <area> <verb>" run 0 help sakke decap
check "help of an unknown command exits 21" run 21 help sakke nope

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
