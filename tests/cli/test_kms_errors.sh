# Every `kms` refusal names its cause:
#   - a missing KMS directory is named with the system's reason by status, audit verify,
#     seal and the signed verbs (before "no unseal agent runs"); a directory holding no
#     KMS says so;
#   - kms init under a missing parent names it and leaves no output folder behind;
#   - an extraction request's reason over 1,023 characters and a key period no identifier
#     can name are refused with the limit, when requested and (doctored) when extracted
#     through the agent; rollover and issue name what is wrong with their period;
#   - a custodian share through the agent: another KMS's, a corrupted one and one given
#     twice are each named as such, and so is a damaged sealed file.
# Usage: bash test_kms_errors.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_kms_errors.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

stop_agents() {
    for d in "$work"/*/; do
        [ -f "$d/agent.pid" ] && kill "$(cat "$d/agent.pid")" 2>/dev/null
    done
    rm -rf "$work"
}
trap stop_agents EXIT
umask 077
code() { grep -o "MS_ERR_$1 = [0-9]*" "$(dirname "$0")/../../include/mikeysakke/errors.h" | grep -o '[0-9]*$'; }

K="$work/kms"
ROLES="$work/roles"
printf 'correct horse battery staple\n' >"$work/pass"
check "kms init" run 0 kms init --dir "$K" --uri kms.example.org --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$ROLES"

# ---- a KMS directory that is not there ----------------------------------------------------------
NO="$work/no/such/dir"
check "status: missing directory" run "$(code IO)" kms status --dir "$NO"
check "status names it and why" err_has "KMS directory $NO: No such file or directory"
check "status: not a database failure" err_lacks "database failed"
check "audit verify: missing directory" run "$(code IO)" kms audit verify --dir "$NO"
check "audit verify names it and why" err_has "KMS directory $NO: No such file or directory"
check "audit verify: not a database failure" err_lacks "database failed"
check "user add: missing directory" run "$(code IO)" kms user add --dir "$NO" \
    --key "$ROLES/operator.key" --user tel:+447700900123
check "user add names it first" err_has "KMS directory $NO: No such file or directory"
check "user add: not about the agent" err_lacks "no unseal agent runs"
check "seal: missing directory" run "$(code IO)" kms seal --dir "$NO"
check "seal names it" err_has "KMS directory $NO: No such file or directory"
mkdir "$work/empty"
check "status: a directory with no KMS" run "$(code STORE)" kms status --dir "$work/empty"
check "says it holds no KMS" err_has "$work/empty holds no KMS"
cp -r "$K" "$work/nolog"
rm "$work/nolog/audit.log"
check "audit verify: no audit.log" run "$(code IO)" kms audit verify --dir "$work/nolog"
check "names the file and why" err_has "cannot read $work/nolog/audit.log: No such file or directory"

# ---- kms init under a missing parent --------------------------------------------------------------
check "init under a missing parent" run "$(code IO)" kms init --dir "$work/none/kms" \
    --uri kms.example.org --shares 2/3 --share-out-dir "$work/init-shares" --scrypt-log2n 10 \
    --auditors 1 --auditor-out-dir "$work/init-roles" --officer-out-dir "$work/init-officers"
check "names the directory and why" \
    err_has "cannot create the KMS directory $work/none/kms: No such file or directory"
check "no auditor folder left behind" test ! -e "$work/init-roles"
check "no officer folder left behind" test ! -e "$work/init-officers"
check "no share folder left behind" test ! -e "$work/init-shares"
mkdir "$work/mine"
check "init under a missing parent, existing out dir" run "$(code IO)" kms init \
    --dir "$work/none/kms" --uri kms.example.org --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/mine"
check "a folder it did not make is kept" test -d "$work/mine"

# ---- extraction limits ------------------------------------------------------------------------------
long=$(head -c 1024 /dev/zero | tr '\0' a)
check "a reason of 1,024 characters" run "$(code ARG)" kms audit request --dir "$K" \
    --user tel:+447700900123 --period current --reason "$long" --out "$work/req-long"
check "says the limit" err_has "the reason is 1024 characters long; at most 1023 are allowed"
check "one of 1,023 is accepted" run 0 kms audit request --dir "$K" --user tel:+447700900123 \
    --period current --reason "${long:1}" --out "$work/req-1023"
check "period 99999" run "$(code PERIOD)" kms audit request --dir "$K" --user tel:+447700900123 \
    --period 99999 --reason test --out "$work/req-far"
check "says the range" err_has "key period 99999 is out of range: monthly identifiers name periods 0 (1900-01) to 97199 (9999-12)"
check "period 97199 is accepted" run 0 kms audit request --dir "$K" --user tel:+447700900123 \
    --period 97199 --reason test --out "$work/req-last"

check "unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "user add" run 0 kms user add --dir "$K" --key "$ROLES/operator.key" --user tel:+447700900123
check "a request" run 0 kms audit request --dir "$K" --user tel:+447700900123 --period current \
    --reason test --out "$work/req"
# Requests doctored before approval (an approver signs the text shown): the agent refuses
# them and the command says why.
sed "s/^reason=test\$/reason=$long/" "$work/req" >"$work/req-doctored-reason"
sed "s/^period=.*/period=99999/" "$work/req" >"$work/req-doctored-period"
for r in reason period; do
    "$ms" kms audit approve --request "$work/req-doctored-$r" --key "$ROLES/auditor-1.key" \
        --out "$work/req-doctored-$r.1" >/dev/null 2>&1
done
check "extract: a reason of 1,024 characters" run "$(code ARG)" kms audit extract --dir "$K" \
    --request "$work/req-doctored-reason" --approval "$work/req-doctored-reason.1" --out "$work/rsk1"
check "the agent says the limit" err_has "the request's reason is longer than 1023 characters"
check "extract: period 99999" run "$(code PERIOD)" kms audit extract --dir "$K" \
    --request "$work/req-doctored-period" --approval "$work/req-doctored-period.1" --out "$work/rsk2"
check "the agent says the range" err_has "key period 99999 is out of range"
check "no RSK written" test ! -e "$work/rsk1" -a ! -e "$work/rsk2"
# Key periods of other verbs.
check "rollover from period 99999" run "$(code PERIOD)" kms rollover --dir "$K" \
    --key "$ROLES/operator.key" --from-period 99999 --passphrase-file "$work/pass"
check "says the range" err_has "key period 99999 is out of range"
check "rollover from a past period" run "$(code PERIOD)" kms rollover --dir "$K" \
    --key "$ROLES/operator.key" --from-period 1 --passphrase-file "$work/pass"
check "says it must be after the current one" err_has "new master keys must start after the current key period"
check "issue: not a period" run "$(code USAGE)" kms issue --dir "$K" --key "$ROLES/operator.key" --period 12x
check "names the text" err_has "'12x' is not one key period"
check "seal" run 0 kms seal --dir "$K"

# ---- custodian shares through the agent ---------------------------------------------------------
S="$work/shares"
check "a KMS under shares" run 0 kms init --dir "$S" --uri kms.example.org --shares 2/3 \
    --share-out-dir "$work/sh" --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/roles-s"
check "another KMS under shares" run 0 kms init --dir "$work/other" --uri kms.example.org \
    --shares 2/3 --share-out-dir "$work/sh-other" --scrypt-log2n 10 --auditors 1 \
    --auditor-out-dir "$work/roles-o"
check "share 1 (starts the agent)" run 0 kms unseal --dir "$S" --share "$work/sh/share-1.key"
check "another KMS's share" run "$(code SHARE)" kms unseal --dir "$S" --share "$work/sh-other/share-2.key"
check "named as another KMS's" err_has "share is from another KMS"
check "not the directory alone" err_lacks "$S: custodian share"
share=$(cat "$work/sh/share-2.key")
c=${share:70:1}
[ "$c" = 0 ] && n=1 || n=0
printf '%s\n' "${share:0:70}$n${share:71}" >"$work/corrupt.key"
check "a corrupted share" run "$(code SHARE)" kms unseal --dir "$S" --share "$work/corrupt.key"
check "named as corrupted" err_has "share 2 is corrupted"
check "share 1 again" run "$(code SHARE)" kms unseal --dir "$S" --share "$work/sh/share-1.key"
check "named as given twice" err_has "share 1 was already entered"
check "share 2 unseals" run 0 kms unseal --dir "$S" --share "$work/sh/share-2.key"
check "seal" run 0 kms seal --dir "$S"
# A damaged sealed file is named with what is wrong, not by the KMS directory alone.
printf 'X' | dd of="$S/sealed" bs=1 seek=2 conv=notrunc 2>/dev/null
check "a damaged sealed file" run "$(code SEALED_FILE)" kms unseal --dir "$S" --share "$work/sh/share-1.key"
check "named with what is wrong" err_has "sealed file $S/sealed: bad magic"
check "seal" run 0 kms seal --dir "$S"

echo "test_kms_errors: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
