# Times on the command line: one form everywhere (src/util/timefmt.h, docs/cli.md
# "Times"). A key period given as a time is one period, whatever '-' it holds
# (`kms cert --period 2026-12-07T15:29:06.5Z` was read as a range, exit 56); a malformed
# time is a usage error (21), not a scope error; ranges still are (56). `mikey` times take
# the same spellings plus the 16 hex digits of an NTP timestamp.
# Usage: bash test_times.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_times.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

K="$work/kms"
umask 077
printf 'correct horse battery staple\n' >"$work/pass"

check "kms init --first-period with a fraction" run 0 kms init --dir "$K" --uri kms.example.org \
    --passphrase-file "$work/pass" --scrypt-log2n 10 --auditors 1 --approvals 1 \
    --auditor-out-dir "$work/roles" --first-period 2026-12-01T00:00:00.5Z
check "kms init --first-period malformed (21)" run 21 kms init --dir "$work/kms2" \
    --uri kms.example.org --passphrase-file "$work/pass" --scrypt-log2n 10 --auditors 1 \
    --approvals 1 --auditor-out-dir "$work/roles2" --first-period 2026-12-01
check "kms cert --period 2026-12-07T15:29:06Z" run 0 kms cert --dir "$K" --period 2026-12-07T15:29:06Z
cp "$work/out" "$work/cert0"
check "  the certificate of the first period" grep -q '<ValidFrom>2026-12-01T00:00:00Z</ValidFrom>' "$work/cert0"

# a time whose '-' once read as a range, and the other spellings of a time in that period
check "kms cert --period 2026-12-07T15:29:06.5Z" run 0 kms cert --dir "$K" --period 2026-12-07T15:29:06.5Z
check "  no scope error" err_lacks "exactly one user"
check "  the certificate of that period" cmp -s "$work/out" "$work/cert0"
for t in 2026-12-07T15:29:06 2026-12-07T16:29:06+01:00 \
    2026-12-31T23:59:59.999999999Z 2026-11-30T23:00:00-01:00; do
    check "kms cert --period $t" run 0 kms cert --dir "$K" --period "$t"
    check "  the certificate of that period" cmp -s "$work/out" "$work/cert0"
done
for t in 2026-12-07T25:29:06Z 2026-12-07T15:29:06.Z 2026-02-29T00:00:00Z 2026-12-07 \
    "2026-12-07 15:29:06Z" 2026-12-07t15:29:06z 2026-12-07T15:29:06+15:00; do
    check "kms cert --period '$t' is a usage error (21)" run 21 kms cert --dir "$K" --period "$t"
done
check "kms cert --period 1509-1510 is still a range (56)" run 56 kms cert --dir "$K" --period 1509-1510
check "kms cert --period all (56)" run 56 kms cert --dir "$K" --period all

# mikey: the same forms (RFC 6509 3.2's example: the identifier of February 2011)
ALICE=tel:+447700900123
check "mikey id --time Z" run 0 mikey id --uri "$ALICE" --time 2011-02-15T10:00:00Z
want=$(cat "$work/out")
for t in 2011-02-15T10:00:00 2011-02-15T10:00:00.25Z 2011-02-15T12:00:00+02:00 \
    2011-02-01T00:00:00Z D0F1CB8000000000; do
    check "mikey id --time $t" run 0 mikey id --uri "$ALICE" --time "$t"
    check "  same identifier" same "$(cat "$work/out")" "$want"
done
check "mikey id --time in March differs" run 0 mikey id --uri "$ALICE" --time 2011-02-28T23:00:00-01:00
check "  another month" test "$(cat "$work/out")" != "$want"
for t in "2011-02-15 10:00:00Z" 2011-02-15T10:00:60Z 2011-02-29T10:00:00Z D0F1CB800000000G \
    2036-02-07T06:28:16Z; do
    check "mikey id --time '$t' refused (21)" run 21 mikey id --uri "$ALICE" --time "$t"
done
check "  after NTP era 0 named" err_has "after 2036-02-07T06:28:15Z"

echo "test_times: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
