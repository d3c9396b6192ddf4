#!/bin/bash
# `make deps` and `make build`'s deps step need no root once the Debian packages are
# installed: run as an unprivileged user (nobody, when we are root), they succeed without
# touching apt; a missing package is named, with the apt-get line root would run, and
# fails without trying to install anything. Usage: test_deps.sh SOURCE_DIR
set -u
src=${1:?usage: test_deps.sh SOURCE_DIR}
pass=0 fail=0
check() { # check "what" command...
    local what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# The user to run as: nobody if we are root (setpriv drops every privilege), else us.
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null || { echo "setpriv missing (util-linux)"; exit 1; }
    as_user() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all -- "$@"; }
else
    as_user() { "$@"; }
fi
check "the unprivileged user really is not root" test "$(as_user id -u)" -ne 0

# The unprivileged user may not be able to read the checkout (a clone in a mode-0700
# directory): it runs a copy of the two files these targets use.
mkdir -p "$work/src/scripts"
cp "$src/Makefile" "$work/src/" && cp "$src/scripts/deps.sh" "$work/src/scripts/"
chmod -R a+rX "$work/src"
src="$work/src"

# A fake apt-get earlier in PATH: any attempt to install is recorded (and would fail).
mkdir "$work/bin"
printf '#!/bin/sh\necho "apt-get $*" >>"%s/apt.log"\nexit 1\n' "$work" >"$work/bin/apt-get"
chmod 755 "$work/bin/apt-get"
touch "$work/apt.log"
chmod 666 "$work/apt.log"
run() { # run OUT_PREFIX command... (as the unprivileged user, fake apt-get first in PATH)
    local out=$1
    shift
    as_user env PATH="$work/bin:$PATH" "$@" >"$work/$out.out" 2>"$work/$out.err"
    echo $? >"$work/$out.rc"
}

run deps make -s -C "$src" deps
check "make deps as non-root: exit 0 (packages installed)" test "$(cat "$work/deps.rc")" = 0
check "make deps as non-root: says nothing" test ! -s "$work/deps.err"
run build make -s -C "$src" deps-build
check "make build's deps step as non-root: exit 0" test "$(cat "$work/build.rc")" = 0

run missing sh "$src/scripts/deps.sh" --build ms-no-such-package-1 ms-no-such-package-2
check "a missing package: exit 1" test "$(cat "$work/missing.rc")" = 1
check "a missing package is named" grep -q 'missing Debian packages: ms-no-such-package-1 ms-no-such-package-2$' "$work/missing.err"
check "installed packages are not named" bash -c "! grep -q 'cmake\|libssl-dev' '$work/missing.err'"
check "the apt-get line root would run is shown" grep -q 'would run: apt-get install -y --no-install-recommends ms-no-such-package-1 ms-no-such-package-2' "$work/missing.err"
check "nothing was installed" test ! -s "$work/apt.log"

# --check never installs, even as root
PATH="$work/bin:$PATH" sh "$src/scripts/deps.sh" --check ms-no-such-package-1 >/dev/null \
    2>"$work/check.err"
rc=$?
check "--check with a missing package: exit 1" test "$rc" = 1
check "--check: the package is named" grep -q 'missing Debian packages: ms-no-such-package-1$' "$work/check.err"
check "--check: nothing was installed" test ! -s "$work/apt.log"
PATH="$work/bin:$PATH" sh "$src/scripts/deps.sh" --frobnicate 2>"$work/opt.err"
rc=$?
check "an unknown option: exit 2" test "$rc" = 2
check "an unknown option is named" grep -q 'unknown option --frobnicate' "$work/opt.err"

echo "test_deps: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
