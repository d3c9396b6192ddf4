# The KMS directory is not trusted blindly, through the command: an intruder who can
# write the directory (here: sqlite3 and a text editor's worth of shell)
#   - lowers the extraction quorum in kms.db: the next unseal refuses (exit 75), names
#     the row and logs the refusal; undone, it unseals again;
#   - deletes the settings MAC: refused too, until the custodians adopt the settings
#     with --adopt-settings (logged);
#   - cuts the extraction out of audit.log and rewrites the head in kms.db: plain
#     `audit verify` passes, `audit verify --checkpoint` with the checkpoint the
#     extraction handed out (or one from `kms audit checkpoint`) fails (exit 38).
# Also: `kms audit syslog --copy` is logged, and `kms init --audit-syslog` is accepted.
# Usage: bash test_kms_anchor.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_kms_anchor.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

K="$work/kms"
stop_agent() {
    [ -f "$K/agent.pid" ] && kill "$(cat "$K/agent.pid")" 2>/dev/null
    rm -rf "$work"
}
trap stop_agent EXIT
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 (the command) is needed" >&2; exit 1; }
umask 077
printf 'correct horse battery staple\n' >"$work/pass"
ALICE=tel:+447700900123
sql() { sqlite3 "$K/kms.db" "$1"; }
CHAIN=$(grep -o 'MS_ERR_AUDIT_CHAIN = [0-9]*' "$(dirname "$0")/../../include/mikeysakke/errors.h" | grep -o '[0-9]*$')

check "kms init" run 0 kms init --dir "$K" --uri kms.example.org --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 2 --approvals 2 --auditor-out-dir "$work/auditors"
check "unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "checkpoint" run 0 kms audit checkpoint --dir "$K"
cp "$work/out" "$work/cp-early"
check "checkpoint: one signed line" grep -qE '^mikeysakke-audit-checkpoint seq=[0-9]+ head=[0-9a-f]{64} time=[0-9TZ:-]{20} sig=[0-9a-f]{128}$' "$work/cp-early"
ROLES="$work/auditors" # kms init writes every role key here
check "user add" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$ALICE"
check "enrol" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$ALICE" --device a1 --out "$work/a1.enrol"
check "issue" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
# an extraction request approved by both auditors
approved() { # reason file
    "$ms" kms audit request --dir "$K" --user "$ALICE" --period current --reason "$1" \
        --out "$work/$2" >/dev/null &&
        for a in 1 2; do
            "$ms" kms audit approve --request "$work/$2" --key "$ROLES/auditor-$a.key" \
                --out "$work/$2.ok$a" >/dev/null || return 1
        done
}
check "extraction request 1 approved" approved "case 1" req1
check "extract (checkpoint to a file)" run 0 kms audit extract --dir "$K" --request "$work/req1" \
    --approval "$work/req1.ok1,$work/req1.ok2" --out "$work/a.rsk" \
    --checkpoint-out "$work/cp-extract"
check "the extraction's checkpoint is of its entry" grep -q "seq=$(grep -c . "$K/audit.log") " "$work/cp-extract"
check "extraction request 2 approved" approved "case 2" req2
check "extract (checkpoint on stderr)" run 0 kms audit extract --dir "$K" --request "$work/req2" \
    --approval "$work/req2.ok1,$work/req2.ok2" --out "$work/b.rsk"
check "stderr holds the checkpoint" grep -q '^mikeysakke-audit-checkpoint seq=' "$work/err"
check "verify --checkpoint" run 0 kms audit verify --dir "$K" --checkpoint "$work/cp-extract"
check "kms seal" run 0 kms seal --dir "$K"

# ---- the quorum lowered behind the KMS's back -------------------------------------------------------
sql "UPDATE settings SET value = '1' WHERE key = 'approvals'"
check "unseal refused (settings changed)" run 75 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "the refusal names the row" err_has "row 'approvals' was changed"
check "the refusal is logged" grep -q "event=unseal_refused" "$K/audit.log"
check "still sealed" run 0 kms status --dir "$K"
check "status says sealed" grep -q "State: sealed" "$work/out"
sql "UPDATE settings SET value = '2' WHERE key = 'approvals'"
check "unseal after the edit is undone" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "kms seal" run 0 kms seal --dir "$K"

# ---- the MAC deleted: refused until adopted -------------------------------------------------------
sql "DELETE FROM settings WHERE key = 'settings_mac'"
check "unseal refused (no MAC)" run 75 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "the refusal says how to adopt" err_has "--adopt-settings"
check "unseal --adopt-settings" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass" --adopt-settings
check "the adoption is logged" grep -q 'event=settings_sealed .*approvals=2' "$K/audit.log"

# ---- syslog copy switched on (logged, authenticated) -----------------------------------------------
check "audit syslog --copy yes" run 0 kms audit syslog --key "$ROLES/operator.key" --dir "$K" --copy yes
check "logged" grep -q "event=audit_syslog copy=yes" "$K/audit.log"
check "audit syslog --copy maybe" run 21 kms audit syslog --key "$ROLES/operator.key" --dir "$K" --copy maybe
check "audit syslog --copy no" run 0 kms audit syslog --key "$ROLES/operator.key" --dir "$K" --copy no
check "kms seal" run 0 kms seal --dir "$K"
check "unseal after the settings change" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "kms seal" run 0 kms seal --dir "$K"

# ---- the extraction cut out of the log, the head rewritten ----------------------------------------
n=$(grep -n 'event=extract ' "$K/audit.log" | head -1 | cut -d: -f1)
head -n $((n - 1)) "$K/audit.log" >"$work/cut.log"
cat "$work/cut.log" >"$K/audit.log"
H=$(tail -n 1 "$work/cut.log" | tr -d '\n' | sha256sum | cut -c1-64)
sql "UPDATE settings SET value = '$((n - 1))' WHERE key = 'audit_seq'"
sql "UPDATE settings SET value = '$H' WHERE key = 'audit_head'"
check "plain verify is fooled" run 0 kms audit verify --dir "$K"
check "verify --checkpoint (extraction's) finds the cut" run "$CHAIN" kms audit verify --dir "$K" --checkpoint "$work/cp-extract"
check "the failure names the checkpoint" err_has "against the checkpoint of entry"
check "an earlier checkpoint still holds" run 0 kms audit verify --dir "$K" --checkpoint "$work/cp-early"
check "a copied log is checked as well" run "$CHAIN" kms audit verify --log "$K/audit.log" \
    --public "$K/audit.pub" --checkpoint "$work/cp-extract"
sed 's/seq=[0-9]*/seq=1/' "$work/cp-early" >"$work/cp-forged"
check "a forged checkpoint is refused" run "$CHAIN" kms audit verify --dir "$K" --checkpoint "$work/cp-forged"
check "named as such" err_has "signature does not verify"
printf 'hello\n' >"$work/cp-bad"
check "a malformed checkpoint is refused" run 7 kms audit verify --dir "$K" --checkpoint "$work/cp-bad"
check "named as such" err_has "not a checkpoint"

check "kms init --audit-syslog" run 0 kms init --dir "$work/kms2" --uri kms.example.org \
    --passphrase-file "$work/pass" --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/aud2" \
    --audit-syslog
check "the setting is stored" same "$(sqlite3 "$work/kms2/kms.db" "SELECT value FROM settings WHERE key = 'audit_syslog'")" yes

echo "test_kms_anchor: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
