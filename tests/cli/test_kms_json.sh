# --json on the kms commands that work without the agent: `kms init` (the files it
# wrote: shares, role keys, certificate, audit key), `kms cert` (the period and the
# certificate, the same XML as the text), `kms audit request/approve` and `kms device
# request/approve` (the file written and the request's fields), and `kms serve` (one JSON
# line on stdout once listening, with the port it got). Each parsed with python3 and
# compared with the text form or the files.
set -u
ms=${1:?usage: test_kms_json.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/lib.sh"

K="$work/kms"
R="$work/roles"
SPID=
stop_all() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    rm -rf "$work"
}
trap stop_all EXIT
ALICE=tel:+447700900123
# jget KEY...: a member (or a path of members/indexes) of the JSON on stdout of the last
# run, one line. The output is flattened to "path<TAB>value" lines once per run (python3
# can take a second to start on a busy machine); the paths of lists and objects give
# their JSON.
jget() {
    local sum
    sum=$(cksum <"$work/out")
    if [ "$sum" != "$(cat "$work/out.sum" 2>/dev/null)" ]; then
        python3 -c 'import json,sys
def walk(path, v):
    if isinstance(v, (dict, list)):
        print(" ".join(path) + "\t" + json.dumps(v).replace("\n", "\\n"))
        for k, x in (v.items() if isinstance(v, dict) else enumerate(v)):
            walk(path + [str(k)], x)
    else:
        s = json.dumps(v) if isinstance(v, bool) else str(v)
        print(" ".join(path) + "\t" + s.replace("\n", "\\n"))
walk([], json.load(open(sys.argv[1])))' "$work/out" >"$work/out.flat" || return 1
        printf '%s\n' "$sum" >"$work/out.sum"
    fi
    awk -F '\t' -v p="$*" '$1 == p { sub(/^[^\t]*\t/, ""); print; found = 1 } END { exit !found }' \
        "$work/out.flat"
}
is_json() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$work/out"; }
one_line() { [ "$(wc -l <"$work/out")" -eq 1 ]; }

# ---- kms init --------------------------------------------------------------------------------
check "init --json (shares)" run 0 kms init --dir "$K" --uri kms.example.org --shares 2/3 \
    --share-out-dir "$work/sh" --scrypt-log2n 10 --auditors 2 --auditor-out-dir "$R" --json
check "one line of JSON" one_line
check "is JSON" is_json
check "kms, dir, seal" same "$(jget kms) $(jget dir) $(jget seal)" "kms.example.org $K shares"
check "the shares written" same "$(jget shares)" \
    "[\"$work/sh/share-1.key\", \"$work/sh/share-2.key\", \"$work/sh/share-3.key\"]"
check "each share exists" test -s "$(jget shares 0)" -a -s "$(jget shares 2)"
check "role keys by name" same "$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["keys"]))' "$work/out")" \
    "operator officer-1 officer-2 auditor-1 auditor-2"
check "operator key file" same "$(jget keys operator)" "$R/operator.key"
check "it exists, private" same "$(mode "$(jget keys operator)")" 600
check "auditor-2 key file" test -s "$(jget keys auditor-2)"
check "certificate and audit key" same "$(jget certificate) $(jget audit_pub)" \
    "$K/certificate.xml $K/audit.pub"
check "both exist" test -s "$(jget certificate)" -a -s "$(jget audit_pub)"
check "nothing on stderr" test ! -s "$work/err"

printf 'json test passphrase\n' >"$work/pass"
chmod 600 "$work/pass"
check "init --json (passphrase, given auditor keys)" run 0 kms init --dir "$work/k2" \
    --uri kms2.example.org --passphrase-file "$work/pass" --scrypt-log2n 10 \
    --auditor-keys "$R/auditor-1.pub" --officers 1 --officer-out-dir "$work/r2" --operator-out-dir "$work/r2" --json
check "seal passphrase, no shares" same "$(jget seal) $(python3 -c 'import json,sys; print("shares" in json.load(open(sys.argv[1])))' "$work/out")" "passphrase False"
check "only the keys made here" same "$(jget keys)" \
    "{\"operator\": \"$work/r2/operator.key\", \"officer-1\": \"$work/r2/officer-1.key\"}"
check "a refused init prints no JSON" run 21 kms init --dir "$work/k3" --uri kms3.example.org \
    --passphrase-file "$work/pass" --auditors 1 --json
check "stdout empty" test ! -s "$work/out"

# ---- kms cert --------------------------------------------------------------------------------
check "cert text" run 0 kms cert --dir "$K"
cp "$work/out" "$work/cert.txt"
check "cert --json" run 0 kms cert --dir "$K" --json
check "one line of JSON" one_line
check "the certificate is the text's" python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
sys.exit(j["certificate"].rstrip("\n") != open(sys.argv[2]).read().rstrip("\n"))' "$work/out" "$work/cert.txt"
check "period a number" python3 -c 'import json,sys; sys.exit(not isinstance(json.load(open(sys.argv[1]))["period"], int))' "$work/out"
check "cert --json --period next" run 0 kms cert --dir "$K" --period next --json
P=$(jget period)
check "cert --json --period current is one less" run 0 kms cert --dir "$K" --period current --json
check "periods" same "$(($(jget period) + 1))" "$P"

# ---- requests and approvals ---------------------------------------------------------------
check "audit request --json" run 0 kms audit request --dir "$K" --user "$ALICE" --period current \
    --reason "warrant 7" --out "$work/req" --json
check "one line of JSON" one_line
check "out and kind" same "$(jget out) $(jget request kind)" "$work/req extract"
check "fields" same "$(jget request user)|$(jget request reason)|$(jget request kms)" \
    "$ALICE|warrant 7|kms.example.org"
check "period and expiry are numbers" python3 -c 'import json,sys
r = json.load(open(sys.argv[1]))["request"]
sys.exit(not (isinstance(r["period"], int) and isinstance(r["expires"], int)))' "$work/out"
check "text is the file written" python3 -c 'import json,sys
sys.exit(json.load(open(sys.argv[1]))["text"] != open(sys.argv[2]).read())' "$work/out" "$work/req"
NONCE=$(jget request nonce)
check "audit approve --json" run 0 kms audit approve --request "$work/req" --key "$R/auditor-1.key" \
    --out "$work/app" --json
check "approval: out, the request approved" same "$(jget out) $(jget request nonce) $(jget request kind)" \
    "$work/app $NONCE extract"
check "the approval written" test -s "$work/app"
check "device request --json" run 0 kms device request --dir "$K" --user "$ALICE" --device phone-2 \
    --out "$work/dreq" --json
check "enrol fields" same "$(jget request kind) $(jget request device) $(jget request user)" \
    "enrol phone-2 $ALICE"
check "device approve --json" run 0 kms device approve --request "$work/dreq" --key "$R/officer-1.key" \
    --out "$work/dapp" --json
check "approval of the enrol request" same "$(jget out) $(jget request device)" "$work/dapp phone-2"
check "approving an enrol request as extract is refused, no JSON" run 2 kms audit approve \
    --request "$work/dreq" --key "$R/auditor-1.key" --out "$work/app-bad" --json
check "stdout empty" test ! -s "$work/out"

# ---- kms serve -------------------------------------------------------------------------------
if command -v openssl >/dev/null; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=localhost" -keyout "$work/srv.key" -out "$work/srv.pem" 2>/dev/null
    chmod 600 "$work/srv.key"
    "$ms" kms serve --dir "$K" --listen 127.0.0.1 --port 0 --cert "$work/srv.pem" \
        --key "$work/srv.key" --json >"$work/serve.out" 2>"$work/serve.err" &
    SPID=$!
    for _ in $(seq 1 300); do
        [ -s "$work/serve.out" ] && break
        kill -0 $SPID 2>/dev/null || break
        sleep 0.1
    done
    cp "$work/serve.out" "$work/out"
    check "serve --json: one JSON line once listening" one_line
    check "is JSON" is_json
    PORT=$(jget port)
    check "a port it got" test "$PORT" -gt 0
    check "url, address, state" same "$(jget url) $(jget address) $(jget state)" \
        "https://127.0.0.1:$PORT 127.0.0.1 sealed"
    check "no text line on stderr" test ! -s "$work/serve.err"
    kill "$SPID"
    wait "$SPID"
    check "stops on SIGTERM (exit 0)" test $? -eq 0
    SPID=
    check "nothing more on stdout" one_line
else
    echo "SKIP: no openssl, no kms serve check"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
