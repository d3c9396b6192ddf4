# Shared by the command-line tests: a work folder, pass/fail counting and small
# helpers. Sourced after `ms` (the binary) and `vectors` (an RFC vector file) are set.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022 # so the tool, not the umask, must make key files private

pass=0 fail=0
# check DESCRIPTION COMMAND...: one test; passes if COMMAND exits 0.
check() {
    local what=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $what" >&2
        [ -s "$work/err" ] && sed 's/^/  stderr: /' "$work/err" >&2
    fi
}
# run STATUS ARGS...: runs the tool (stdin from $stdin if set, stdout -> $work/out,
# stderr -> $work/err) and succeeds if it exited with STATUS.
run() {
    local want=$1
    shift
    "$ms" "$@" <"${stdin:-/dev/null}" >"$work/out" 2>"$work/err"
    local got=$?
    [ "$got" -eq "$want" ] || { echo "  exit $got, want $want: mikeysakke $*" >&2; return 1; }
}
# run_any "STATUS..." ARGS...: like run, for a check the library may report two ways.
run_any() {
    local want=$1
    shift
    "$ms" "$@" <"${stdin:-/dev/null}" >"$work/out" 2>"$work/err"
    local got=$?
    [[ " $want " == *" $got "* ]] || { echo "  exit $got, want one of $want: mikeysakke $*" >&2; return 1; }
}
v() { sed -n "s/^$1 = //p" "$vectors"; }          # an RFC value by name
line() { sed -n "${1}p" "$work/out"; }             # a line of the last run's stdout
same() { [ "$1" = "$2" ] || { echo "  got  $1" >&2; echo "  want $2" >&2; return 1; }; }
err_has() { grep -qF -- "$1" "$work/err"; }
err_lacks() { ! grep -qiF -- "$1" "$work/err"; }
mode() { stat -c %a "$1"; }
lower() { tr 'A-F' 'a-f' <<<"$1"; }
flip() { # flip the hex digit at offset $2 of $1
    local c=${1:$2:1} n
    [ "$c" = 0 ] && n=1 || n=0
    printf '%s' "${1:0:$2}$n${1:$(($2 + 1))}"
}
# audit_extract STATUS KMS_DIR ROLES_DIR AUDITORS OUT ARGS...: an audited extraction as
# auditors make it: `kms audit request` with ARGS (--user, --period, --reason), approved
# with ROLES_DIR/auditor-N.key for each N of AUDITORS ("1,3"), then `kms audit extract`
# writing OUT. Succeeds if the first refusal (or the extraction) exits with STATUS.
audit_extract() {
    local want=$1 kd=$2 roles=$3 who=$4 out=$5 req list="" i got n=0
    shift 5
    req=$(mktemp -u "$work/request.XXXXXX")
    "$ms" kms audit request --dir "$kd" --out "$req" "$@" >"$work/out" 2>"$work/err"
    got=$?
    if [ "$got" -ne 0 ]; then
        [ "$got" -eq "$want" ] || { echo "  audit request exit $got, want $want" >&2; return 1; }
        return 0
    fi
    for i in ${who//,/ }; do
        n=$((n + 1))
        "$ms" kms audit approve --request "$req" --key "$roles/auditor-$i.key" \
            --out "$req.$n" >/dev/null 2>"$work/err" || return 1
        list="$list${list:+,}$req.$n"
    done
    run "$want" kms audit extract --dir "$kd" --request "$req" --approval "$list" --out "$out"
}
