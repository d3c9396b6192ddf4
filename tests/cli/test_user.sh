#!/usr/bin/env bash
# End-to-end tests of `mikeysakke user ...` (the client keystore) and `mikey init/respond
# --keystore`. The enrolment file and key packages come from the fixture program
# tests/client/test_fixtures.c (kmsif writer + crypto layer), so this test needs no KMS;
# the whole flow with the real `kms` commands is the end-to-end test's.
# Usage: bash test_user.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_user.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

# The fixture program is built beside the tests of this build directory.
fixtures=$(dirname "$ms")/tests/client_test_fixtures
if [ ! -x "$fixtures" ]; then
    echo "client_test_fixtures not built: $fixtures" >&2
    exit 1
fi
fx=$work/fx
mkdir -m 700 "$fx"
"$fixtures" "$fx" >/dev/null 2>&1 || { echo "fixture program failed" >&2; exit 1; }
. "$fx/env.sh"
ks=$work/ks
pf=(--passphrase-file "$fx/pass")
field() { sed -n "s/^$1 = //p" "$work/out"; }
out_has() { grep -qF -- "$1" "$work/out"; }
lacks_dir() { [ ! -e "$1" ]; }

# ---- init -----------------------------------------------------------------------------
check "user init" run 0 user init --keystore "$ks" --enrolment "$fx/enrolment.xml" "${pf[@]}" --scrypt-cost 10
check "init prints the user" same "$(field user)" "$ALICE"
check "init prints the device" same "$(field device)" "alice-phone-1"
check "init prints the KMS" same "$(field kms)" "$KMS"
check "keystore directory 0700" same "$(mode "$ks")" 700
check "keystore files 0600" same "$(stat -c %a "$ks"/* | sort -u)" 600
check "init twice refused (exists)" run 45 user init --keystore "$ks" --enrolment "$fx/enrolment.xml" "${pf[@]}" --scrypt-cost 10
chmod 644 "$fx/env.sh"
check "passphrase file 0644 refused" run 20 user list --keystore "$ks" --passphrase-file "$fx/env.sh"
check "passphrase file 0644 refused by init" run 20 user init --keystore "$work/ks-x" --enrolment "$fx/enrolment.xml" --passphrase-file "$fx/env.sh" --scrypt-cost 10
check "nothing created" lacks_dir "$work/ks-x"
# The enrolment file holds the TrK and InK: refused like a key file when others may read it.
cp "$fx/enrolment.xml" "$work/enrol-open.xml"
chmod 644 "$work/enrol-open.xml"
check "enrolment file 0644 refused" run 20 user init --keystore "$work/ks-x" --enrolment "$work/enrol-open.xml" "${pf[@]}" --scrypt-cost 10
check "the error names the file and its mode" err_has "--enrolment $work/enrol-open.xml: mode 0644 lets other users access it"
check "nothing created (0644 enrolment)" lacks_dir "$work/ks-x"
chmod 640 "$work/enrol-open.xml"
check "enrolment file 0640 refused" run 20 user init --keystore "$work/ks-x" --enrolment "$work/enrol-open.xml" "${pf[@]}" --scrypt-cost 10
check "the error names mode 0640" err_has "mode 0640"
mkfifo "$work/enrol-fifo"
check "enrolment FIFO refused" run 20 user init --keystore "$work/ks-x" --enrolment "$work/enrol-fifo" "${pf[@]}" --scrypt-cost 10
check "the error says not a regular file" err_has "--enrolment $work/enrol-fifo: not a regular file"
check "nothing created (FIFO enrolment)" lacks_dir "$work/ks-x"
# Without a controlling terminal (setsid), nothing to prompt on: a usage error, no hang.
no_tty() { local want=$1; shift; setsid -w "$ms" "$@" </dev/null >"$work/out" 2>"$work/err"; [ $? -eq "$want" ]; }
check "no terminal, no passphrase file: usage" no_tty 21 user list --keystore "$ks"
install -m 600 "$fx/pkg-p0.xml" "$work/not-an-enrolment.xml" # private, so only its content is wrong
check "malformed enrolment refused" run 50 user init --keystore "$work/ks-bad" --enrolment "$work/not-an-enrolment.xml" "${pf[@]}" --scrypt-cost 10
check "scrypt cost out of range" run 21 user init --keystore "$work/ks-c" --enrolment "$fx/enrolment.xml" "${pf[@]}" --scrypt-cost 40
printf 'wrong passphrase\n' >"$work/wrong"
chmod 600 "$work/wrong"
check "wrong passphrase" run 40 user list --keystore "$ks" --passphrase-file "$work/wrong"

# ---- status with nothing held ---------------------------------------------------------
check "status: current keys missing" run 60 user status --keystore "$ks" "${pf[@]}" --now "$NOW"
check "status says missing" out_has "current period $P0: keys MISSING"

# ---- import ---------------------------------------------------------------------------
check "import" run 0 user import --keystore "$ks" --in "$fx/pkg-p0.xml" "${pf[@]}" --now "$NOW"
check "import names the period" out_has "period $P0"
check "replayed package" run 54 user import --keystore "$ks" --in "$fx/pkg-p0.xml" "${pf[@]}" --now "$NOW"
check "older package (file as a bare argument)" run 54 user import --keystore "$ks" "$fx/pkg-p0-older.xml" "${pf[@]}" --now "$NOW"
check "expired period" run 49 user import --keystore "$ks" --in "$fx/pkg-expired.xml" "${pf[@]}" --now "$NOW"
check "wrong InK" run 51 user import --keystore "$ks" --in "$fx/pkg-wrong-ink.xml" "${pf[@]}" --now "$NOW"
check "wrong TrK" run 52 user import --keystore "$ks" --in "$fx/pkg-wrong-trk.xml" "${pf[@]}" --now "$NOW"
check "other device" run 53 user import --keystore "$ks" --in "$fx/pkg-other-device.xml" "${pf[@]}" --now "$NOW"
check "invalid RSK" run 13 user import --keystore "$ks" --in "$fx/pkg-bad-rsk.xml" "${pf[@]}" --now "$NOW"
check "invalid RSK says why" err_has "RFC 6508 6.1.2"
sed 's/keymanagement/keyManagement/' "$fx/pkg-p0.xml" >"$work/tampered.xml"
check "tampered package" run 51 user import --keystore "$ks" --in "$work/tampered.xml" "${pf[@]}" --now "$NOW"

# ---- list and status: two periods -----------------------------------------------------
check "list" run 0 user list --keystore "$ks" "${pf[@]}" --now "$NOW"
check "list shows the period in force" out_has "period $P0 "
check "list: one period" same "$(wc -l <"$work/out")" 1
check "status mid-period ok" run 0 user status --keystore "$ks" "${pf[@]}" --now "$NOW"
check "status: next period due date" out_has "next period $P1 starts $NEXT_START; keys due by $DUE (2 days before): not yet"
check "status late without next keys" run 60 user status --keystore "$ks" "${pf[@]}" --now "$LATE"
check "status says next missing" out_has "(2 days before): MISSING"
check "import next period" run 0 user import --keystore "$ks" --in "$fx/pkg-p1.xml" "${pf[@]}" --now "$LATE"
check "status late with next keys" run 0 user status --keystore "$ks" "${pf[@]}" --now "$LATE"
check "both in force" same "$(field 'in force')" "$P0 $P1"
check "two held" same "$(grep -c '^held period' "$work/out")" 2

# ---- mikey with the keystore ----------------------------------------------------------
# Alice's keystore holds P0 and P1; Bob has explicit keys of P0.
check "mikey init --keystore" run 0 mikey init --keystore "$ks" "${pf[@]}" --profile pck --to "$BOB" --time "$NOW" --out "$work/msg" --keys
key_a=$(field key)
check "Bob responds" run 0 mikey respond --profile pck --uri "$BOB" --kms "$KMS" --public "$KMS_Z" --kpak "$KMS_KPAK" \
    --period-len "$PERIOD_LEN" --rsk "$fx/bob.rsk" --now "$NOW" --in "$work/msg" --expect-from "$ALICE"
check "same key" same "$(field key)" "$key_a"
check "Bob sends" run 0 mikey init --profile pck --uri "$BOB" --to "$ALICE" --kms "$KMS" --public "$KMS_Z" --kpak "$KMS_KPAK" \
    --period-len "$PERIOD_LEN" --ssk "$fx/bob.ssk" --pvt "$BOB_PVT" --time "$NOW" --out "$work/msg2" --keys
key_b=$(field key)
check "mikey respond --keystore" run 0 mikey respond --keystore "$ks" "${pf[@]}" --now "$NOW" --in "$work/msg2" --expect-from "$BOB"
check "same key back" same "$(field key)" "$key_b"
check "--keystore with --rsk refused" run 21 mikey respond --keystore "$ks" "${pf[@]}" --rsk "$fx/bob.rsk" --in "$work/msg2"
check "without --keystore, --uri needed" run 21 mikey respond --kms "$KMS" --public "$KMS_Z" --kpak "$KMS_KPAK" --rsk "$fx/bob.rsk" --in "$work/msg2"
check "--profile rfc6509 does not fit" run 21 mikey init --keystore "$ks" "${pf[@]}" --profile rfc6509 --to tel:+447700900456 --time "$NOW"
check "no keys for that period" run 60 mikey init --keystore "$ks" "${pf[@]}" --to "$BOB" --time 2030-01-01T00:00:00Z

# ---- purge ----------------------------------------------------------------------------
check "purge within the grace: nothing" run 0 user purge --keystore "$ks" "${pf[@]}" --now "$AFTER"
check "nothing to purge" out_has "nothing to purge"
check "purge after the grace" run 0 user purge --keystore "$ks" "${pf[@]}" --now "$PURGE_AT"
check "purged P0" out_has "purged period $P0"
check "list after purge" run 0 user list --keystore "$ks" "${pf[@]}" --now "$PURGE_AT"
check "only P1 left" same "$(awk '{print $2}' "$work/out")" "$P1"

# ---- corrupted keystore file ----------------------------------------------------------
entry=$(ls "$ks" | grep '^keys-' | head -1)
printf '\x00' | dd of="$ks/$entry" bs=1 seek=40 conv=notrunc status=none
check "corrupted entry" run 59 user list --keystore "$ks" "${pf[@]}" --now "$PURGE_AT"
check "corrupted entry named" err_has "$entry"
chmod 755 "$ks"
check "directory open to others" run 20 user list --keystore "$ks" "${pf[@]}"
chmod 700 "$ks"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
