#!/usr/bin/env bash
# The whole offline flow with the real commands: kms init (passphrase, small scrypt), the
# unseal agent, two users with a device each, issue, export, import into each device's
# keystore (`mikeysakke user`), an I_MESSAGE from Alice to Bob, an audited extraction of
# Bob's RSK that recovers the same key from the recorded message, the audit log verified
# and then edited (found at its line), seal (the agent is gone). The agent is always
# killed on exit. Usage: bash test_offline.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_offline.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"

K="$work/kms"
ROLES="$work/auditors" # kms init writes the role keys (operator, officers, auditors) here
stop_agent() {
    if [ -f "$K/agent.pid" ]; then
        "$ms" kms seal --dir "$K" >/dev/null 2>&1 || kill "$(cat "$K/agent.pid")" 2>/dev/null
    fi
    rm -rf "$work"
}
trap stop_agent EXIT

KMS=kms.example.org
ALICE=tel:+447700900123
BOB=tel:+447700900456
umask 077
printf 'correct horse battery staple\n' >"$work/pass"
printf 'alice keystore passphrase\n' >"$work/alice.pass"
printf 'bob keystore passphrase\n' >"$work/bob.pass"
field() { sed -n "s/^$1 = //p" "$work/out"; } # a "name = value" line of the last stdout
xmlval() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$2" | head -1; }

# ---- community set-up ------------------------------------------------------------------------
check "init refuses a passphrase file open to others (20)" bash -c \
    "cp '$work/pass' '$work/pass.644' && chmod 644 '$work/pass.644' &&
     '$ms' kms init --dir '$work/x' --uri $KMS --passphrase-file '$work/pass.644' \
        --auditors 1 --auditor-out-dir '$work/x-aud' 2>/dev/null; [ \$? -eq 20 ]"
check "kms init" run 0 kms init --dir "$K" --uri "$KMS" --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 3 --approvals 2 --auditor-out-dir "$work/auditors"
check "auditor keys are 0600" same "$(mode "$work/auditors/auditor-1.key")" 600
check "init again refused (45)" run 45 kms init --dir "$K" --uri "$KMS" \
    --passphrase-file "$work/pass" --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/a2"
check "layout: certificate, audit key, sealed, store" \
    test -s "$K/certificate.xml" -a -s "$K/audit.pub" -a -s "$K/sealed" -a -s "$K/kms.db"
check "status works sealed" run 0 kms status --dir "$K"
check "status says sealed" grep -q '^State: sealed' "$work/out"
check "a privileged command while sealed (39)" run 39 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$ALICE"
check "cert works sealed" run 0 kms cert --dir "$K"
check "cert is the KmsCertificate" grep -q '<KmsUri>kms.example.org</KmsUri>' "$work/out"
Z=$(xmlval PubEncKey "$K/certificate.xml")
KPAK=$(xmlval PubAuthKey "$K/certificate.xml")

# ---- unseal agent --------------------------------------------------------------------------------
printf 'wrong\n' >"$work/wrong"
check "wrong passphrase (40)" run 40 kms unseal --dir "$K" --passphrase-file "$work/wrong"
check "unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
check "unseal prints Unsealed" grep -q '^Unsealed' "$work/out"
check "agent socket is 0600" same "$(mode "$K/agent.sock")" 600
check "agent runs" kill -0 "$(cat "$K/agent.pid")"
check "status unsealed" run 0 kms status --dir "$K"
check "status says unsealed" grep -q '^State: unsealed' "$work/out"

# ---- users and devices -------------------------------------------------------------------------------
check "add Alice" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$ALICE"
check "add Bob" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$BOB"
check "add Alice twice (45)" run 45 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$ALICE"
check "enrol for an unknown user (46)" run 46 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user tel:+15550000000 \
    --device x --out "$work/x.enrol"
check "enrol Alice's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$ALICE" --device alice-phone \
    --out "$work/alice.enrol"
check "enrol Bob's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$BOB" --device bob-phone \
    --out "$work/bob.enrol"
check "enrolment file is 0600" same "$(mode "$work/alice.enrol")" 600
check "user list" run 0 kms user list --dir "$K"
check "the hyphenated spelling works too" run 0 kms user-list --dir "$K"
check "user list shows both with a device" same "$(grep -c 'active 1 device$' "$work/out")" 2

# ---- issue and export ---------------------------------------------------------------------------------
check "issue the current period" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
check "two key sets issued" grep -q '^Issued 2 key sets' "$work/out"
check "re-issue issues nothing new" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
check "zero on re-run" grep -q '^Issued 0 key sets' "$work/out"
cur=$("$ms" kms status --dir "$K" | sed -n 's/^Current period: //p')
check "issue current + 1200 refused (49)" run 49 kms issue --key "$ROLES/operator.key" --dir "$K" --period $((cur + 1200))
check "the error names the limit" err_has "this KMS issues at most 2 ahead (max_periods_ahead"
check "issue current + 3 refused (49)" run 49 kms issue --key "$ROLES/operator.key" --dir "$K" --period $((cur + 3))
check "the error names how far ahead" err_has "is 3 periods after the current one"
check "issue current + 2 (the limit) works" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period $((cur + 2))
check "init refuses --max-periods-ahead 0 (21)" run 21 kms init --dir "$work/k0" --uri "$KMS" \
    --passphrase-file "$work/pass" --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/a0" \
    --max-periods-ahead 0
check "nothing made for it" test ! -e "$work/k0"
check "export" run 0 kms export --key "$ROLES/operator.key" --dir "$K" --period current --out "$work/media"
check "index lists two packages" same "$(grep -vc '^#' "$work/media/index.txt")" 2
apkg="$work/media/$(awk '$1 == "alice-phone" {print $3}' "$work/media/index.txt")"
bpkg="$work/media/$(awk '$1 == "bob-phone" {print $3}' "$work/media/index.txt")"
check "packages hold no clear key" bash -c "! grep -q '$(sed -n 's:.*<TrK>\(.*\)</TrK>.*:\1:p' "$work/alice.enrol")' '$apkg'"

# ---- the devices: keystores, import, a call ------------------------------------------------------------
T=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if "$ms" help user init >/dev/null 2>&1; then
    for who in alice bob; do
        pkg=$apkg
        [ $who = bob ] && pkg=$bpkg
        check "$who: user init" run 0 user init --keystore "$work/$who.ks" \
            --enrolment "$work/$who.enrol" --passphrase-file "$work/$who.pass" --scrypt-cost 10
        check "$who: user import" run 0 user import --keystore "$work/$who.ks" \
            --passphrase-file "$work/$who.pass" --in "$pkg"
    done
    check "bob: Alice's package refused (51: signed under her InK)" run_any "51 53" user import --keystore "$work/bob.ks" \
        --passphrase-file "$work/bob.pass" --in "$apkg"
    check "alice: mikey init from the keystore" run 0 mikey init --keystore "$work/alice.ks" \
        --passphrase-file "$work/alice.pass" --to "$BOB" --time "$T" --out "$work/imsg" --keys
    alice_key=$(field key)
    check "bob: mikey respond from the keystore" run 0 mikey respond --keystore "$work/bob.ks" \
        --passphrase-file "$work/bob.pass" --in "$work/imsg" --now "$T"
    check "bob recovers Alice's key" same "$(field key)" "$alice_key"
    have_call=1
else
    echo "NOTE: 'mikeysakke user' not built: the call part is left out" >&2
    have_call=0
fi

# ---- audited extraction -------------------------------------------------------------------------------
x() { audit_extract "$1" "$K" "$ROLES" "$2" "$work/rsk.key" --reason "warrant 42" "${@:3}"; }
check "one approval of two (55)" x 55 1 --user "$BOB" --period current
check "same auditor twice (55)" x 55 1,1 --user "$BOB" --period current
check "two users (56)" x 56 1,2 --user "$BOB,$ALICE" --period current
check "a period range (56)" x 56 1,2 --user "$BOB" --period 1-2000
check "two periods (56)" x 56 1,2 --user "$BOB" --period "current,next"
check "every user (56)" x 56 1,2 --user '*' --period current
check "nothing written by refusals" test ! -e "$work/rsk.key"
check "extract Bob's RSK for the period of T" x 0 2,3 --user "$BOB" --period "$T"
check "RSK file is 0600" same "$(mode "$work/rsk.key")" 600
check "the audit log records the extraction" grep -q 'event=extract user=tel:+447700900456' "$K/audit.log"
BID=$(field identifier)
check "extracted RSK validates for Bob" run 0 sakke validate --public "$Z" --id "$BID" --rsk "$work/rsk.key"
if [ "$have_call" = 1 ]; then
    check "auditor recovers the call's key from the recorded I_MESSAGE" run 0 mikey respond \
        --uri "$BOB" --kms "$KMS" --public "$Z" --kpak "$KPAK" --rsk "$work/rsk.key" \
        --in "$work/imsg" --now "$T"
    check "the same key as Alice's" same "$(field key)" "$alice_key"
fi

# ---- rollover ----------------------------------------------------------------------------------------
check "rollover now refused (49)" run 49 kms rollover --key "$ROLES/operator.key" --dir "$K" --from-period current \
    --passphrase-file "$work/pass"
check "rollover next period" run 0 kms rollover --key "$ROLES/operator.key" --dir "$K" --from-period next --passphrase-file "$work/pass"
check "new certificate written" bash -c "ls '$K'/certificate-*.xml >/dev/null"

# ---- roles: whoever reaches the agent's socket gets no device of their own for a user ----------------
# the old attack: an unsigned "enrol" straight to the socket (protocol 1)
raw_enrol() {
    python3 - "$K/agent.sock" "$1" <<'PY'
import socket, struct, sys
def field(k, v):
    return bytes([len(k)]) + k.encode() + struct.pack(">I", len(v)) + v.encode()
body = field("verb", "enrol") + field("user", sys.argv[2]) + field("device", "spy")
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(struct.pack(">I", len(body)) + body)
data = b""
while True:
    c = s.recv(65536)
    if not c: break
    data += c
off, status = 4, None
while off < len(data):
    kl = data[off]; k = data[off + 1:off + 1 + kl]; vl = struct.unpack(">I", data[off + 1 + kl:off + 5 + kl])[0]
    v = data[off + 5 + kl:off + 5 + kl + vl]; off += 5 + kl + vl
    if k == b"status": status = int(v)
sys.exit(0 if status == 77 else 1)
PY
}
check "an unsigned enrol on the socket is refused (77)" raw_enrol "$BOB"
check "the operator's key cannot enrol (77)" run 77 kms device enrol --key "$ROLES/operator.key" \
    --dir "$K" --user "$BOB" --device spy --out "$work/spy.enrol"
check "an officer's key cannot add users (77)" run 77 kms user add --key "$ROLES/officer-1.key" \
    --dir "$K" --user tel:+15550000001
cp "$ROLES/officer-2.key" "$work/open.key" && chmod 644 "$work/open.key"
check "an others-readable role key is refused (20)" run 20 kms device enrol --key "$work/open.key" \
    --dir "$K" --user "$BOB" --device spy --out "$work/spy.enrol"
check "one officer alone cannot add Bob a second device (79)" run 79 kms device enrol \
    --key "$ROLES/officer-1.key" --dir "$K" --user "$BOB" --device spy --out "$work/spy.enrol"
check "device request" run 0 kms device request --dir "$K" --user "$BOB" --device bob-tablet \
    --out "$work/tablet.req"
check "officer 1 approves" run 0 kms device approve --request "$work/tablet.req" \
    --key "$ROLES/officer-1.key" --out "$work/tablet.ok1"
check "officer 2 approves" run 0 kms device approve --request "$work/tablet.req" \
    --key "$ROLES/officer-2.key" --out "$work/tablet.ok2"
check "one approval of two (79)" run 79 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" \
    --user "$BOB" --device bob-tablet --out "$work/tablet.enrol" --request "$work/tablet.req" \
    --approval "$work/tablet.ok1"
check "the approvals do not cover another device (79)" run 79 kms device enrol \
    --key "$ROLES/officer-1.key" --dir "$K" --user "$BOB" --device spy --out "$work/spy.enrol" \
    --request "$work/tablet.req" --approval "$work/tablet.ok1,$work/tablet.ok2"
check "no spy device was made" test ! -e "$work/spy.enrol"
check "two officers' approvals enrol Bob's tablet" run 0 kms device enrol --key "$ROLES/officer-1.key" \
    --dir "$K" --user "$BOB" --device bob-tablet --out "$work/tablet.enrol" \
    --request "$work/tablet.req" --approval "$work/tablet.ok1,$work/tablet.ok2"
check "logged as a second device with its approvers" grep -q \
    'event=enrol user=tel:+447700900456 device=bob-tablet second_device=1 approved_by=officer-1,officer-2' \
    "$K/audit.log"
check "the same approvals again are refused (78 or 45)" run_any "78 45" kms device enrol \
    --key "$ROLES/officer-1.key" --dir "$K" --user "$BOB" --device bob-tablet \
    --out "$work/tablet2.enrol" --request "$work/tablet.req" --approval "$work/tablet.ok1,$work/tablet.ok2"

# ---- Bob's phone learns of the tablet from its next signed key package ----------------------------------
if [ "$have_call" = 1 ]; then
    bs() { run_any "0 60" user status --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" "$@"; }
    check "bob: user status" bs
    check "bob: his first package listed only his phone" grep -q '^devices of this user = bob-phone$' "$work/out"
    check "bob: no warning then" bash -c "! grep -q WARNING '$work/out'"
    check "issue the next period" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period next
    check "export the next period" run 0 kms export --key "$ROLES/operator.key" --dir "$K" \
        --period next --out "$work/media-next"
    check "bob: import the next period's package" run 0 user import --keystore "$work/bob.ks" \
        --passphrase-file "$work/bob.pass" \
        --in "$work/media-next/$(awk '$1 == "bob-phone" {print $3}' "$work/media-next/index.txt")"
    check "bob: user status after it" bs
    check "bob is warned of the tablet" grep -q '^WARNING: new device bob-tablet was added' "$work/out"
    check "on stderr too" grep -q 'not seen before was added to this user: bob-tablet' "$work/err"
    check "bob accepts it" bs --accept-devices
    check "no warning once accepted" bash -c "! grep -q WARNING '$work/out'"
    check "both devices listed" grep -q '^devices of this user = bob-phone bob-tablet$' "$work/out"
    # Bob's own phone approves his next device instead of two officers
    check "device request for bob-watch" run 0 kms device request --dir "$K" --user "$BOB" \
        --device bob-watch --out "$work/watch.req"
    check "alice's phone cannot approve a device of Bob's" run 2 user approve-device \
        --keystore "$work/alice.ks" --passphrase-file "$work/alice.pass" \
        --request "$work/watch.req" --out "$work/watch.alice"
    check "bob's phone approves it" run 0 user approve-device --keystore "$work/bob.ks" \
        --passphrase-file "$work/bob.pass" --request "$work/watch.req" --out "$work/watch.ok"
    check "the approval names his phone" grep -q '^device bob-phone [0-9a-f]\{64\}$' "$work/watch.ok"
    check "enrolled on his phone's approval" run 0 kms device enrol --key "$ROLES/officer-2.key" \
        --dir "$K" --user "$BOB" --device bob-watch --out "$work/watch.enrol" \
        --request "$work/watch.req" --approval "$work/watch.ok"
    check "logged as approved by his phone" grep -q \
        'device=bob-watch second_device=1 approved_by=device:bob-phone nonce=' "$K/audit.log"
    # a package whose device list was changed in transit does not verify
    sed 's/bob-phone bob-tablet/bob-phone/' "$work/media-next/$(awk '$1 == "bob-phone" {print $3}' "$work/media-next/index.txt")" >"$work/cut.xml"
    check "the device list is under the package's signature (51)" run 51 user import \
        --keystore "$work/bob.ks" --passphrase-file "$work/bob.pass" --in "$work/cut.xml"
fi

# ---- audit log ---------------------------------------------------------------------------------------
check "audit verify --dir" run 0 kms audit verify --dir "$K"
check "verify names the extraction" grep -q '^extraction: .*event=extract user=tel:+447700900456 .*auditors=auditor-2,auditor-3 nonce=' "$work/out"
check "verify names Bob's added device" grep -q '^second device: .*device=bob-tablet second_device=1 approved_by=officer-1,officer-2' "$work/out"
check "and no other" same "$(grep -c '^second device: ' "$work/out")" "$((1 + have_call))"
check "audit verify --log --public" run 0 kms audit verify --log "$K/audit.log" --public "$K/audit.pub"

# ---- seal ---------------------------------------------------------------------------------------------
pid=$(cat "$K/agent.pid")
check "seal" run 0 kms seal --dir "$K"
gone() { ! kill -0 "$1" 2>/dev/null || grep -q '^State:.*[ZX]' "/proc/$1/status" 2>/dev/null; }
check "agent gone" gone "$pid"
check "socket gone" test ! -e "$K/agent.sock"
check "sealed again (39)" run 39 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
check "audit log has the seal" bash -c "tail -1 '$K/audit.log' | grep -q 'event=seal'"

cp "$K/audit.log" "$work/audit.orig"
sed -i '4s/event=[a-z_]*/event=forged/' "$K/audit.log"
check "edited log refused (58)" run 58 kms audit verify --dir "$K"
check "names line 4" err_has "line 4"
cp "$work/audit.orig" "$K/audit.log"
sed -i '5d' "$K/audit.log"
check "removed entry refused (58)" run 58 kms audit verify --log "$K/audit.log" --public "$K/audit.pub"
check "names line 5" err_has "line 5"
cp "$work/audit.orig" "$K/audit.log"
head -n -2 "$work/audit.orig" >"$K/audit.log"
check "truncated log refused with --dir (58)" run 58 kms audit verify --dir "$K"

echo "test_offline: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
