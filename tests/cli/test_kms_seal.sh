# The KMS's seals and user states, through the command and its unseal agent:
#   - custodian shares (--shares 2/3): progress counts, a share given twice is refused,
#     any two unseal; a share of another KMS is refused;
#   - a PKCS#11 token (SoftHSM2): a wrong PIN and a passphrase are refused, the PIN
#     unseals, another token store is refused;
#   - the agent: started by unseal, `status` reports it, `seal` stops it and removes its
#     socket, and a command needing the secrets then says no agent runs;
#   - users: suspend, resume, remove (each logged); a suspended user gets no keys and no
#     device, an unknown user is named as such.
# Usage: bash test_kms_seal.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_kms_seal.sh PATH_TO_mikeysakke}
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
ALICE=tel:+447700900123
BOB=tel:+447700900456
out_has() { grep -qF -- "$1" "$work/out"; }
out_lacks() { ! grep -qF -- "$1" "$work/out"; }
audit_count() { grep -c "event=$2 " "$1/audit.log"; }

# ---- custodian shares ------------------------------------------------------------------------
K="$work/shares"
ROLES="$work/roles"
OP="--key $ROLES/operator.key --dir $K"
check "kms init --shares 2/3" run 0 kms init --dir "$K" --uri kms.example.org --shares 2/3 \
    --share-out-dir "$work/sh" --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$ROLES"
check "three shares written" test -s "$work/sh/share-1.key" -a -s "$work/sh/share-2.key" -a -s "$work/sh/share-3.key"
check "status" run 0 kms status --dir "$K"
check "status: sealed, no share yet" out_has "Unseal progress: 0 of 2 shares accepted"
check "status: no agent" out_has "Agent: not running"
check "a secret command while sealed" run "$(code SEALED)" kms user add $OP --user "$ALICE"
check "says no agent runs" err_has "no unseal agent runs"
check "share 1" run 0 kms unseal --dir "$K" --share "$work/sh/share-1.key"
check "one of two" out_has "1 of 2 shares accepted"
check "status: agent running" run 0 kms status --dir "$K"
check "status: still sealed" out_has "State: sealed"
check "share 1 again is refused" run "$(code SHARE)" kms unseal --dir "$K" --share "$work/sh/share-1.key"
check "status: still one share" run 0 kms status --dir "$K"
check "progress kept" out_has "Unseal progress: 1 of 2 shares accepted"
check "share 3 unseals" run 0 kms unseal --dir "$K" --share "$work/sh/share-3.key"
check "status: unsealed" run 0 kms status --dir "$K"
check "status says unsealed" out_has "State: unsealed"
check "the agent's socket" test -S "$K/agent.sock"
check "unseal logged" grep -q "event=unseal " "$K/audit.log"

# ---- users: suspend, resume, remove ----------------------------------------------------------
check "user add Alice" run 0 kms user add $OP --user "$ALICE"
check "user add Bob" run 0 kms user add $OP --user "$BOB"
check "enrol Alice" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$ALICE" \
    --device a1 --out "$work/a1.enrol"
check "suspend needs the operator's key" run "$(code USAGE)" kms user suspend --dir "$K" --user "$ALICE"
check "suspend Alice" run 0 kms user suspend $OP --user "$ALICE"
check "list" run 0 kms user list --dir "$K"
check "Alice suspended" out_has "$ALICE suspended 1 device"
check "Bob active" out_has "$BOB active 0 devices"
check "a suspended user gets no device" run "$(code USER_SUSPENDED)" kms device enrol \
    --key "$ROLES/officer-1.key" --dir "$K" --user "$ALICE" --device a2 --out "$work/a2.enrol"
check "and no key sets" run 0 kms issue $OP --period current
check "none issued" out_has "Issued 0 key sets"
check "resume Alice" run 0 kms user resume $OP --user "$ALICE"
check "list" run 0 kms user list --dir "$K"
check "Alice active again" out_has "$ALICE active 1 device"
check "issued once resumed" run 0 kms issue $OP --period current
check "one issued" out_has "Issued 1 key set for"
check "remove Alice" run 0 kms user remove $OP --user "$ALICE"
check "list" run 0 kms user list --dir "$K"
check "Alice not listed" out_lacks "$ALICE"
check "Bob still listed" out_has "$BOB active"
check "remove an unknown user" run "$(code USER_UNKNOWN)" kms user remove $OP --user "$ALICE"
check "named as unknown" err_has "unknown user"
check "suspend an unknown user" run "$(code USER_UNKNOWN)" kms user suspend $OP --user tel:+447700900999
check "resume an unknown user" run "$(code USER_UNKNOWN)" kms user resume $OP --user tel:+447700900999
check "suspend logged" same "$(audit_count "$K" user_suspend)" 1
check "resume logged" same "$(audit_count "$K" user_resume)" 1
check "remove logged" same "$(audit_count "$K" user_remove)" 1

# ---- the agent stops on seal -----------------------------------------------------------------
check "kms seal" run 0 kms seal --dir "$K"
check "the agent wiped and exits" out_has "Sealed"
check "its socket is gone" test ! -e "$K/agent.sock"
check "status: sealed again" run 0 kms status --dir "$K"
check "status: no agent again" out_has "Agent: not running"
check "sealed: user add refused" run "$(code SEALED)" kms user add $OP --user "$ALICE"
# a share of another KMS
check "a second KMS" run 0 kms init --dir "$work/other" --uri kms.example.org --shares 2/2 \
    --share-out-dir "$work/sh2" --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/roles2"
check "share 2 of the first KMS" run 0 kms unseal --dir "$K" --share "$work/sh/share-2.key"
check "a share of the other KMS is refused" run "$(code SHARE)" kms unseal --dir "$K" --share "$work/sh2/share-1.key"
check "still sealed" run 0 kms status --dir "$K"
check "status says sealed" out_has "State: sealed"
check "seal (stops the agent holding one share)" run 0 kms seal --dir "$K"

# ---- a PKCS#11 token (SoftHSM2 is a build dependency: no skipping) ------------------------
MODULE=/usr/lib/softhsm/libsofthsm2.so
check "SoftHSM2 installed" test -r "$MODULE"
mkdir "$work/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
    "$work/tokens" >"$work/softhsm2.conf"
export SOFTHSM2_CONF="$work/softhsm2.conf"
check "token" softhsm2-util --init-token --free --label kms --pin 1234 --so-pin 5678 >/dev/null
printf '1234\n' >"$work/pin"
printf '9999\n' >"$work/badpin"
P="$work/p11"
check "kms init --pkcs11-module" run 0 kms init --dir "$P" --uri kms.example.org \
    --pkcs11-module "$MODULE" --token kms --pin-file "$work/pin" --scrypt-log2n 10 \
    --auditors 1 --auditor-out-dir "$work/roles3"
check "status names the seal" run 0 kms status --dir "$P"
check "PKCS#11 token" out_has "Seal: PKCS#11 token"
check "a wrong PIN is refused" run "$(code PKCS11)" kms unseal --dir "$P" --pin-file "$work/badpin"
check "the agent passes on why" err_has "PKCS#11: wrong PIN for token 'kms'"
check "a passphrase is not a PIN" run "$(code USAGE)" kms unseal --dir "$P" --passphrase-file "$work/pin"
check "says the seal wants a PIN" err_has "--pin-file"
check "still sealed" run 0 kms status --dir "$P"
check "status says sealed" out_has "State: sealed"
check "the PIN unseals" run 0 kms unseal --dir "$P" --pin-file "$work/pin"
check "status: unsealed" run 0 kms status --dir "$P"
check "status says unsealed" out_has "State: unsealed"
check "works unsealed" run 0 kms user add --key "$work/roles3/operator.key" --dir "$P" --user "$ALICE"
check "kms seal" run 0 kms seal --dir "$P"
mkdir "$work/tokens2"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$work/tokens2" >"$work/softhsm2-empty.conf"
SOFTHSM2_CONF="$work/softhsm2-empty.conf" check "another token store is refused" \
    run "$(code PKCS11)" kms unseal --dir "$P" --pin-file "$work/pin"

echo "test_kms_seal: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
