# Shared by the call tests (tests/e2e/test_call*.sh, test_voicemail.sh): sourced after
# cli/lib.sh (which makes $work), community.sh and kamailio.sh. Background processes go
# into `pids`; on exit they are killed, kamailio is stopped (if started in $work/kam), the
# KMS agent sealed and $work removed (kept, and named, with MS_TEST_KEEP=1).
pids=()
calls_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$work/kam/kamailio.main.pid" ] && kam_stop "$work/kam" >/dev/null 2>&1
    community_down
    if [ -n "${MS_TEST_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap calls_cleanup EXIT

# wait_for FILE PATTERN: until PATTERN appears in FILE, up to 15 s; else show FILE, fail.
wait_for() {
    for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "  no '$2' in $1:" >&2
    sed 's/^/    /' "$1" >&2
    return 1
}
