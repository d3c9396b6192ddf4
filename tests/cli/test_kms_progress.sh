# Long work shows progress: `kms issue` and `kms export` on a terminal (a pty from
# util-linux `script`) draw "done/total" on stderr with "\r" and end with a final line
# ("N key sets in T (R/s)"); in a pipe, and under --json on a terminal, stderr stays
# empty and stdout carries only the result. A refused run on a terminal prints its error
# on a line of its own.
set -u
ms=${1:?usage: test_kms_progress.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

K="$work/kms"
R="$work/roles"
stop_agent() {
    [ -f "$K/agent.pid" ] && { "$ms" kms seal --dir "$K" >/dev/null 2>&1 || kill "$(cat "$K/agent.pid")" 2>/dev/null; }
    rm -rf "$work"
}
trap stop_agent EXIT
umask 077
printf 'progress test passphrase\n' >"$work/pass"

check "kms init" run 0 kms init --dir "$K" --uri kms.example.org --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$R"
check "unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
for i in 1 2 3 4; do
    check "user add $i" run 0 kms user add --dir "$K" --key "$R/operator.key" --user "tel:+44770090000$i"
    check "enrol $i" run 0 kms device enrol --dir "$K" --key "$R/officer-1.key" \
        --user "tel:+44770090000$i" --device "dev-$i" --out "$work/enrol-$i.xml"
done

# on_tty OUT ARGS...: runs the tool on a pty (stdout and stderr both on it) and keeps what
# the terminal got in OUT; succeeds if the tool exited 0.
have_script=1
command -v script >/dev/null || { have_script=0; echo "SKIP: no util-linux script, no pty checks"; }
on_tty() {
    local out=$1 cmd
    shift
    printf -v cmd '%q ' "$ms" "$@"
    script -qec "$cmd" /dev/null </dev/null >"$out" 2>&1
}
# has_cr FILE TEXT: FILE holds "\r" followed by TEXT
has_cr() { python3 -c 'import sys; sys.exit(("\r" + sys.argv[2]) not in open(sys.argv[1], newline="").read())' "$1" "$2"; }
# final_line FILE WHAT N: the final progress line "N WHAT in ... (R/s)"
final_line() {
    python3 -c 'import re,sys
t = open(sys.argv[1], newline="").read()
sys.exit(re.search(r"\r" + sys.argv[3] + " " + sys.argv[2] + r" in [0-9][0-9a-z ]* \([0-9.,]+/s\) *\r?\n", t) is None)' "$1" "$2" "$3"
}

if [ $have_script = 1 ]; then
    check "issue on a terminal" on_tty "$work/tty" kms issue --dir "$K" --key "$R/operator.key" --period current
    check "it shows 0/4 first" has_cr "$work/tty" "0/4 key sets (0.0%)"
    check "and a final line" final_line "$work/tty" "key sets" 4
    check "then the result" grep -q "^Issued 4 key sets for period" "$work/tty"

    check "export on a terminal" on_tty "$work/tty" kms export --dir "$K" --key "$R/operator.key" \
        --period current --out "$work/export"
    check "it shows 0/4 packages" has_cr "$work/tty" "0/4 packages (0.0%)"
    check "and a final line" final_line "$work/tty" "packages" 4
    check "then the result" grep -q "^Exported 4 packages for period" "$work/tty"

    check "issue --json on a terminal" on_tty "$work/tty" kms issue --dir "$K" --key "$R/operator.key" \
        --period next --json
    check "no progress under --json, only JSON" python3 -c 'import json,sys
t = open(sys.argv[1], newline="").read()
sys.exit("key sets" in t or json.loads(t.replace("\r", ""))["issued"] != 4)' "$work/tty"

    # a failure half way (a folder where dev-4's package goes): the error on its own line
    mkdir -p "$work/export2"
    pkg=$(cd "$work/export" && ls dev-4-*.xml)
    mkdir -p "$work/export2/$pkg"
    failed=0
    on_tty "$work/tty" kms export --dir "$K" --key "$R/operator.key" --period current \
        --out "$work/export2" || failed=1
    check "a failed export exits non-zero" test $failed -eq 1
    check "after showing progress" has_cr "$work/tty" "0/4 packages (0.0%)"
    check "its error starts a line of its own" python3 -c 'import sys
t = open(sys.argv[1], newline="").read()
sys.exit("\nmikeysakke: " not in t or " packages in " in t)' "$work/tty"
fi

# in a pipe: nothing on stderr, the result on stdout
check "user add 5" run 0 kms user add --dir "$K" --key "$R/operator.key" --user "tel:+447700900005"
check "enrol 5" run 0 kms device enrol --dir "$K" --key "$R/officer-1.key" \
    --user "tel:+447700900005" --device "dev-5" --out "$work/enrol-5.xml"
check "issue in a pipe" run 0 kms issue --dir "$K" --key "$R/operator.key" --period current
check "stderr empty" test ! -s "$work/err"
check "stdout the result (only the new device)" grep -qx "Issued 1 key set for period [0-9]*" "$work/out"
check "export in a pipe" run 0 kms export --dir "$K" --key "$R/operator.key" --period current \
    --out "$work/export"
check "stderr empty" test ! -s "$work/err"
check "stdout the result" grep -q "^Exported 5 packages for period" "$work/out"
check "export --json in a pipe" run 0 kms export --dir "$K" --key "$R/operator.key" --period current \
    --out "$work/export" --json
check "stderr empty" test ! -s "$work/err"
check "stdout JSON" python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["exported"] != 5)' "$work/out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
