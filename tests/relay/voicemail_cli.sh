#!/usr/bin/env bash
# The mikeysakke-voicemail command: add-user (file format and mode, refusals), serve
# (starts on free ports, owners list their mailbox over HTTPS with curl, a wrong password
# and an unknown owner both get the same 401, SIGTERM stops it cleanly), usage errors and
# their exit codes, and no password in any output.
# Usage: bash voicemail_cli.sh PATH_TO_mikeysakke-voicemail
set -u
ms=${1:?usage: voicemail_cli.sh PATH_TO_mikeysakke-voicemail}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"

pw='s3cret pass:word'
printf '%s\n' "$pw" >"$work/pw"
chmod 600 "$work/pw"
printf 'other\n' >"$work/pw_open"
chmod 644 "$work/pw_open"
creds=$work/creds

# ---- add-user ----
check "add-user bob" run 0 add-user --credentials "$creds" --uri 'sip:bob@Example.org' \
    --password-file "$work/pw" --iterations 1000
check "credentials file is 0600" same "$(mode "$creds")" 600
check "entry format" grep -Eq '^sip:bob@example\.org pbkdf2-sha256 1000 [0-9a-f]{32} [0-9a-f]{64}$' "$creds"
check "add-user alice (default iterations)" run 0 add-user --credentials "$creds" \
    --uri sip:alice@example.org --password-file "$work/pw"
check "alice at 600000" grep -q '^sip:alice@example.org pbkdf2-sha256 600000 ' "$creds"
check "replacing bob keeps one line" run 0 add-user --credentials "$creds" \
    --uri sip:bob@example.org --password-file "$work/pw" --iterations 1000
check "two owners" same "$(wc -l <"$creds")" 2
check "password file open to others: 20" run 20 add-user --credentials "$creds" \
    --uri sip:carol@example.org --password-file "$work/pw_open"
check "names the mode" err_has "mode 0644"
check "not a mailbox URI: 38" run 38 add-user --credentials "$creds" --uri carol \
    --password-file "$work/pw"
check "missing --uri: 21" run 21 add-user --credentials "$creds" --password-file "$work/pw"
check "password never on argv or in the file" bash -c "! grep -qF '$pw' '$creds'"
check "unknown command: 21" run 21 frobnicate
check "unknown option: 21" run 21 add-user --nope
check "--help" run 0 --help
check "--help names add-user" grep -q "add-user --credentials F --uri URI" "$work/out"

# ---- serve ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout "$work/tls.key" \
    -out "$work/tls.pem" >/dev/null 2>&1
chmod 600 "$work/tls.key"
check "serve without --credentials: 21" run 21 serve --dir "$work/store" \
    --listen 127.0.0.1:0 --https 127.0.0.1:0 --tls-cert "$work/tls.pem" --tls-key "$work/tls.key"
check "bad --https: 21" run 21 serve --dir "$work/store" --listen 127.0.0.1:0 \
    --https nowhere --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" --credentials "$creds"
check "--register without --proxy: 21" run 21 serve --dir "$work/store" --listen 127.0.0.1:0 \
    --https 127.0.0.1:0 --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" \
    --credentials "$creds" --register
chmod 644 "$creds"
check "credentials open to others: 20" run 20 serve --dir "$work/store" --listen 127.0.0.1:0 \
    --https 127.0.0.1:0 --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" --credentials "$creds"
chmod 600 "$creds"

"$ms" serve --dir "$work/store" --listen 127.0.0.1:0 --https 127.0.0.1:0 \
    --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" --credentials "$creds" \
    --max-seconds 30 >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.*HTTPS on port \([0-9]*\) .*/\1/p' "$work/serve.out")
    [ -n "$port" ] && break
    sleep 0.1
done
check "serve started" test -n "$port"
check "2 mailboxes announced" grep -q "2 mailboxes provisioned" "$work/serve.out"
check "30 s limit announced" grep -q "of 30 s" "$work/serve.out"
url=https://127.0.0.1:$port/mailbox
get() { curl -s --cacert "$work/tls.pem" -o "$work/body" -w '%{http_code}' "$@"; }
check "owner lists the mailbox" same "$(get -u "sip:bob@example.org:$pw" "$url")" 200
check "empty list" same "$(cat "$work/body")" '{"mailbox":"sip:bob@example.org","messages":[]}'
check "wrong password: 401" same "$(get -u "sip:bob@example.org:wrong" "$url")" 401
cp "$work/body" "$work/body401"
check "unknown owner: 401" same "$(get -u "sip:carol@example.org:$pw" "$url")" 401
check "same body" cmp -s "$work/body" "$work/body401"
check "no credential: 401" same "$(get "$url")" 401
check "unknown message: 404" same \
    "$(get -u "sip:bob@example.org:$pw" "$url/0123456789abcdef0123456789abcdef")" 404
check "DELETE of an unknown message: 404" same \
    "$(get -X DELETE -u "sip:bob@example.org:$pw" "$url/0123456789abcdef0123456789abcdef")" 404
check "plain HTTP refused" bash -c "! curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$port/mailbox | grep -q 200"
kill -TERM "$pid"
wait "$pid"
rc=$?
check "SIGTERM: exit 0" same "$rc" 0
check "says it stopped" grep -q "stopping; 0 messages stored" "$work/serve.out"
check "no password in the output" bash -c "! grep -qF '$pw' '$work/serve.out' '$work/serve.err'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
