# The unseal agent through the `kms` commands: --json on each command that asks the agent
# (valid JSON with the structured fields, the same facts as the text), custodian shares
# (progress, a share of another KMS and one entered twice named as such), user
# suspend/resume/remove, and an agent left running by another protocol version refused.
set -u
ms=${1:?usage: test_kms_agent.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

K="$work/kms"
K2="$work/other"
R="$work/roles"
stop_agents() {
    for d in "$K" "$K2"; do
        [ -f "$d/agent.pid" ] && { "$ms" kms seal --dir "$d" >/dev/null 2>&1 || kill "$(cat "$d/agent.pid")" 2>/dev/null; }
    done
    rm -rf "$work"
}
trap stop_agents EXIT
ALICE=tel:+447700900123
BOB=tel:+447700900456
# jget KEY...: a member (or a path of members/indexes) of the JSON on stdout of the last run
jget() {
    python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (dict, list, bool)) else v)' "$work/out" "$@"
}
is_json() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/out"; }

mkdir -p "$R/kms" "$R/other" "$K.shares" "$K2.shares"
for d in "$K" "$K2"; do
    check "init $d with 2-of-3 shares" run 0 kms init --dir "$d" --uri kms.example.org \
        --shares 2/3 --share-out-dir "$d.shares" --auditors 1 --auditor-out-dir "$R${d#$work}"
done
ROLES="$R/kms"

check "status --json sealed" run 0 kms status --dir "$K" --json
check "status --json is JSON" is_json
check "status: state sealed" same "$(jget state)" sealed
check "status: seal shares" same "$(jget seal)" shares
check "status: agent not running" same "$(jget agent)" "not running"
check "status: progress a number" same "$(jget shares_need)" 2
check "status text says the same" run 0 kms status --dir "$K"
check "text: State: sealed" grep -qx 'State: sealed' "$work/out"
check "text: Seal: custodian shares" grep -qx 'Seal: custodian shares' "$work/out"
check "text: progress" grep -qx 'Unseal progress: 0 of 2 shares accepted' "$work/out"

check "a share of another KMS is refused (41)" run 41 kms unseal --dir "$K" --share "$K2.shares/share-1.key"
check "it says the share is from another KMS" err_has "from another KMS"
check "first share --json" run 0 kms unseal --dir "$K" --share "$K.shares/share-1.key" --json
check "progress as numbers" same "$(jget shares_have)/$(jget shares_need)/$(jget state)" 1/2/sealed
check "the same share again is refused (41)" run 41 kms unseal --dir "$K" --share "$K.shares/share-1.key"
check "it says the share was already entered" err_has "already entered"
check "second share" run 0 kms unseal --dir "$K" --share "$K.shares/share-3.key"
check "prints Unsealed" grep -qx 'Unsealed' "$work/out"
check "status --json from the agent" run 0 kms status --dir "$K" --json
check "agent running, unsealed" same "$(jget agent)/$(jget state)" running/unsealed
check "current period a number" python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["current_period"]; sys.exit(not isinstance(v, int))' "$work/out"

check "user add --json" run 0 kms user add --dir "$K" --key "$ROLES/operator.key" --user "$ALICE" --json
check "user add answer" same "$(jget action) $(jget user)" "add $ALICE"
check "user add text" run 0 kms user add --dir "$K" --key "$ROLES/operator.key" --user "$BOB"
check "user add says so" same "$(cat "$work/out")" "add: $BOB"
check "enrol --json" run 0 kms device enrol --dir "$K" --key "$ROLES/officer-1.key" --user "$ALICE" \
    --device alice-phone --out "$work/alice.enrol" --json
check "enrol answer names device and file, no key material" \
    same "$(jget device) $(jget out) $(grep -c enrolment "$work/out")" "alice-phone $work/alice.enrol 0"
check "user suspend" run 0 kms user suspend --dir "$K" --key "$ROLES/operator.key" --user "$BOB"
check "says suspend" same "$(cat "$work/out")" "suspend: $BOB"
check "user list --json" run 0 kms user list --dir "$K" --json
check "two users" same "$(jget count)" 2
check "users as objects" same "$(python3 -c 'import json,sys
u = sorted(json.load(open(sys.argv[1]))["users"], key=lambda x: x["user"])
print(" ".join("%s:%s:%d" % (x["user"], x["state"], x["devices"]) for x in u))' "$work/out")" \
    "$ALICE:active:1 $BOB:suspended:0"
check "user list text" run 0 kms user list --dir "$K"
check "text lines" same "$(sort "$work/out" | tr '\n' '|')" "$ALICE active 1 device|$BOB suspended 0 devices|"
check "user resume --json" run 0 kms user resume --dir "$K" --key "$ROLES/operator.key" --user "$BOB" --json
check "resume answer" same "$(jget action)" resume
check "user remove" run 0 kms user remove --dir "$K" --key "$ROLES/operator.key" --user "$BOB"
check "says remove" same "$(cat "$work/out")" "remove: $BOB"
check "remove again: unknown user (46)" run 46 kms user remove --dir "$K" --key "$ROLES/operator.key" --user "$BOB"

check "issue --json" run 0 kms issue --dir "$K" --key "$ROLES/operator.key" --period current --json
check "one key set issued, a number" same "$(jget issued)" 1
cur=$(jget period)
check "issue text" run 0 kms issue --dir "$K" --key "$ROLES/operator.key" --period current
check "Issued 0 key sets" same "$(cat "$work/out")" "Issued 0 key sets for period $cur"
check "issue all is refused (21)" run 21 kms issue --dir "$K" --key "$ROLES/operator.key" --period all
check "export --json" run 0 kms export --dir "$K" --key "$ROLES/operator.key" --period current \
    --out "$work/export" --json
check "one package exported" same "$(jget exported) $(jget period) $(jget out)" "1 $cur $work/export"
check "checkpoint --json" run 0 kms audit checkpoint --dir "$K" --json
check "a checkpoint line" bash -c "python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"checkpoint\"])' '$work/out' | grep -q '^mikeysakke-audit-checkpoint seq='"
check "syslog --json" run 0 kms audit syslog --dir "$K" --key "$ROLES/operator.key" --copy no --json
check "copy no" same "$(jget copy)" no

check "audit verify --json" run 0 kms audit verify --dir "$K" --json
check "ok, entries a number, no extraction" \
    same "$(jget ok) $(jget extractions) $(jget second_devices)" "true 0 0"
check "entries counted" python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["entries"] < 5)' "$work/out"
sed '3s/event=[a-z_]*/event=forged/' "$K/audit.log" >"$work/audit.bad" # a copy: the agent writes the log
check "audit verify --json of an edited copy (58)" run 58 kms audit verify --log "$work/audit.bad" \
    --public "$K/audit.pub" --json
check "not ok, line 3" same "$(jget ok) $(jget first_bad_line)" "false 3"

# an agent of another protocol version: a fake one on the socket answers without "v"
pid=$(cat "$K/agent.pid")
check "seal --json" run 0 kms seal --dir "$K" --json
check "sealed, the agent exits" same "$(jget state) $(jget agent)" "sealed exits"
for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
python3 - "$K/agent.sock" <<'PY' &
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
while True:  # the command first connects once only to see whether an agent runs
    c, _ = s.accept()
    head = c.recv(4)
    if len(head) == 4:
        break
    c.close()
n = struct.unpack(">I", head)[0]
got = b""
while len(got) < n: got += c.recv(n - len(got))
out = b"Unsealed\n"
body = bytes([6]) + b"status" + struct.pack(">I", 1) + b"0" + bytes([3]) + b"out" + struct.pack(">I", len(out)) + out
c.sendall(struct.pack(">I", len(body)) + body); c.close()
PY
fake=$!
for i in $(seq 50); do [ -S "$K/agent.sock" ] && break; sleep 0.1; done
check "an old agent's answer is refused (19)" run 19 kms status --dir "$K"
check "it says to restart the agent" err_has "another protocol version"
wait "$fake" 2>/dev/null
rm -f "$K/agent.sock"
check "seal with no agent --json" run 0 kms seal --dir "$K" --json
check "not running" same "$(jget agent)" "not running"

echo "test_kms_agent: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
