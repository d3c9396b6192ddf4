#!/usr/bin/env bash
# Cheater reports on the command line (docs/threshold.md): a device combining a wrong share
# signed by server 1 names it and, with --report-out, writes a report; `kms threshold
# check-report` upholds it from a server's directory and from the peers table and public
# result (exit 83, "server 1 sent a wrong share for slot ..."); a report made against an
# honest server is judged false (exit 87); honest shares combine and write no report; bad
# option combinations are refused. The KMS's files come from tests/tkms/report_fixture.c.
# Usage: bash test_threshold_report.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_report.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
fixture=${MS_TKMS_REPORT_FIXTURE:-$(dirname "$ms")/tests/tkms_report_fixture}
k=$work/kms
mkdir -p "$k"
check "the fixture KMS is made" "$fixture" "$k"

U=tel:+447700900123
combine() { # combine STATUS SHARES [--report-out FILE]
    local want=$1 shares=$2
    shift 2
    run "$want" user threshold-combine --shares "$shares" --device-key "$k/device.key" \
        --peers "$k/peers.txt" --public "$k/public.txt" --user "$U" --period 2026-12 \
        --rsk-out "$work/rsk" --ssk-out "$work/ssk" "$@"
}
check "honest shares combine" combine 0 "$k/good2,$k/good3" --report-out "$work/none"
check "and no report is written" test ! -e "$work/none"
check "a wrong share signed by server 1 is refused" \
    combine 83 "$k/bad1,$k/good2" --report-out "$work/report"
check "server 1 is named" err_has "server 1"
check "the report is written" err_has "report against server 1 written to $work/report"
check "the report exists" test -s "$work/report"
check "the report is upheld at a server" \
    run 83 kms threshold check-report --dir "$k" --report "$work/report"
check "the verdict names server 1 and the slot" \
    grep -Eq '^server 1 sent a wrong share for slot [0-9a-f]{64} ' "$work/out"
check "the report is upheld with the peers table and public.txt" \
    run 83 kms threshold check-report --peers "$k/peers.txt" --public "$k/public.txt" \
    --report "$work/report"
check "and with the records" run 83 kms threshold check-report --peers "$k/peers.txt" \
    --public "$k/public.txt" --records "$k/batch-2026-12.records" --report "$work/report"
check "a report against an honest server is false" \
    run 87 kms threshold check-report --dir "$k" --report "$k/report-false"
check "the refusal says so" err_has "the report is false: server 2's share for slot"
check "--dir and --peers together are refused" \
    run 21 kms threshold check-report --dir "$k" --peers "$k/peers.txt" --report "$work/report"
check "neither --dir nor --peers is refused" \
    run 21 kms threshold check-report --report "$work/report"
check "a file that is not a report is refused" \
    run 7 kms threshold check-report --dir "$k" --report "$k/public.txt"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
