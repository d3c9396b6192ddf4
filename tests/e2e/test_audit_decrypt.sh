#!/usr/bin/env bash
# `audit decrypt` with what the real commands hand an auditor: a 3GPP (UID) community made
# with `kms init`, three users' keystores filled by `kms export` + `user import`, offers
# made by `mikey init --keystore --profile pck --sakke-to-self` and put into INVITEs in a
# pcap (written here with python3: caller -> proxy and proxy -> callee, each INVITE twice),
# the certificate from `kms cert` and Bob's RSK from `kms audit extract`. Bob's RSK opens
# Alice -> Bob (as callee) and Bob -> Carol (his own, through SAKKE-to-self), not
# Alice -> Carol; the next period's RSK opens none; a mismatched --uri is refused. Then a
# tel-URI community (RFC 6509, no SAKKE-to-self): Bob's RSK opens only the call to Bob.
# (Media decryption is covered by tests/call/test_audit.c.)
# Usage: bash test_audit_decrypt.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_audit_decrypt.sh PATH_TO_mikeysakke}
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
ALICE=sip:alice@example.org
BOB=sip:bob@example.org
CAROL=sip:carol@example.org
umask 077
printf 'correct horse battery staple\n' >"$work/pass"
for who in alice bob carol; do printf '%s keystore passphrase\n' $who >"$work/$who.pass"; done
field() { sed -n "s/^$1 = //p" "$work/out"; }

# ---- the community ----------------------------------------------------------------------------
check "kms init (3gpp, 30-day periods)" run 0 kms init --dir "$K" --uri "$KMS" --scheme 3gpp \
    --period-len 2592000 --passphrase-file "$work/pass" --scrypt-log2n 10 --auditors 2 \
    --auditor-out-dir "$work/auditors"
check "unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
for who in alice bob carol; do
    uri="sip:$who@example.org"
    check "add $who" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$uri"
    check "enrol $who's phone" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$uri" \
        --device "$who-phone" --out "$work/$who.enrol"
done
check "issue" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
check "export" run 0 kms export --key "$ROLES/operator.key" --dir "$K" --period current --out "$work/media"
for who in alice bob carol; do
    pkg="$work/media/$(awk -v d="$who-phone" '$1 == d {print $3}' "$work/media/index.txt")"
    check "$who: user init" run 0 user init --keystore "$work/$who.ks" \
        --enrolment "$work/$who.enrol" --passphrase-file "$work/$who.pass" --scrypt-cost 10
    check "$who: user import" run 0 user import --keystore "$work/$who.ks" \
        --passphrase-file "$work/$who.pass" --in "$pkg"
done

# ---- three calls' offers --------------------------------------------------------------------------
offer() { # FROM TO NAME
    check "$1 -> $2: mikey init" run 0 mikey init --keystore "$work/$1.ks" \
        --passphrase-file "$work/$1.pass" --to "sip:$2@example.org" --profile pck \
        --sakke-to-self --format sdp --out "$work/$3.keymgmt"
}
printf 'alice %s\nbob %s\ncarol %s\n' "$ALICE" "$BOB" "$CAROL" >"$work/uris"
offer alice bob ab
offer bob carol bc
offer alice carol ac

# A pcap (LINKTYPE_RAW, IPv4) with each INVITE caller -> proxy and proxy -> callee over TCP.
cat >"$work/mkpcap.py" <<'EOF'
import struct, sys
out, work = sys.argv[1], sys.argv[2]
uris = dict(line.split() for line in open(f"{work}/uris"))
calls = [("ab", uris["alice"], uris["bob"], "10.0.0.1", "10.0.0.2", 4000),
         ("bc", uris["bob"], uris["carol"], "10.0.0.2", "10.0.0.3", 5000),
         ("ac", uris["alice"], uris["carol"], "10.0.0.1", "10.0.0.3", 4002)]
PROXY = "10.0.0.100"
seqs = {}
def ip(a): return bytes(int(x) for x in a.split("."))
def segment(t, src, dst, data):
    key = (src, dst)
    seq = seqs.get(key, 1000)
    seqs[key] = seq + len(data)
    tcp = struct.pack("!HHIIBBHHH", 5060, 5060, seq, 1, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(tcp) + len(data)
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, ip(src), ip(dst))
    pkt = iph + tcp + data
    return struct.pack("<IIII", t // 1000000, t % 1000000, len(pkt), len(pkt)) + pkt
recs = []
t = 1_700_000_000_000_000
for name, frm, to, a, b, port in calls:
    km = open(f"{work}/{name}.keymgmt").read().strip()
    sdp = (f"v=0\r\no=- 1 1 IN IP4 {a}\r\ns=-\r\nc=IN IP4 {a}\r\nt=0 0\r\n"
           f"m=audio {port} RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\n{km}\r\n")
    for hop, (src, dst) in enumerate([(a, PROXY), (PROXY, b)]):
        via = "Via: SIP/2.0/TCP 10.0.0.100:5060;branch=z9hG4bK-p\r\n" if hop else ""
        msg = (f"INVITE {to} SIP/2.0\r\n{via}"
               f"Via: SIP/2.0/TCP {a}:5060;branch=z9hG4bK-{name}\r\n"
               f"From: <{frm}>;tag=1\r\nTo: <{to}>\r\n"
               f"Call-ID: {name}@{a}\r\nCSeq: 1 INVITE\r\n"
               f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
        recs.append(segment(t, src, dst, msg.encode()))
        t += 1000
    t += 1_000_000
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    f.write(b"".join(recs))
EOF
check "write the capture" python3 "$work/mkpcap.py" "$work/calls.pcap" "$work"

# ---- what the auditor gets ---------------------------------------------------------------------------
check "kms cert" run 0 kms cert --dir "$K"
cp "$work/out" "$work/kms-cert.xml"
check "extract Bob's RSK" audit_extract 0 "$K" "$ROLES" 1 "$work/bob.rsk" --user "$BOB" \
    --period current --reason "case 7"
P=$(sed -n 's/.*for key period \([0-9]*\).*/\1/p' "$work/out" | head -1)
check "the extraction names the period" test -n "$P"
check "extract Bob's RSK of the next period" audit_extract 0 "$K" "$ROLES" 1 "$work/bob-next.rsk" \
    --user "$BOB" --period next --reason "case 7"

audit() { # RSK PERIOD OUT [more options]
    run 0 audit decrypt --capture "$work/calls.pcap" --rsk "$1" --uri "$BOB" --period "$2" \
        --kms "$work/kms-cert.xml" --out "$work/$3" "${@:4}"
}
check "audit with Bob's RSK" audit "$work/bob.rsk" "$P" audit-bob --json
jq_py() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); $1" "$work/audit-bob/report.json"; }
check "three calls, two opened" jq_py 'assert (r["calls_found"], r["calls_opened"]) == (3, 2), r'
check "Alice -> Bob opened as callee, identities verified" jq_py '
c = r["calls"][0]; assert c["openable"] and c["opened_as"] == "callee", c
assert c["caller"]["verified"] == "sip:alice@example.org" and c["caller"]["claim_matches"], c'
check "Bob -> Carol opened as caller (SAKKE-to-self)" jq_py '
c = r["calls"][1]; assert c["openable"] and c["opened_as"] == "caller", c
assert c["callee"]["verified"] == "sip:carol@example.org" and c["suite"] == "AEAD_AES_128_GCM", c'
check "Alice -> Carol not openable, with the reason" jq_py '
c = r["calls"][2]; assert not c["openable"] and c["status"] == "not openable with this key", c
assert c["error"] == "MS_ERR_MIKEY_RESPONDER" and c["reason"], c'
check "the periods are the extracted one" jq_py "assert all(c['period'] == $P for c in r['calls'] if c['openable'])"
check "--json printed the same report" cmp -s "$work/out" "$work/audit-bob/report.json"
check "report.json is private" same "$(mode "$work/audit-bob/report.json")" 600

check "the next period's RSK opens none" audit "$work/bob-next.rsk" "$((P + 1))" audit-next --json
check "none opened" python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['calls_opened'] == 0 and r['calls_found'] == 3" "$work/audit-next/report.json"
check "summary names the refusal" audit "$work/bob-next.rsk" "$((P + 1))" audit-next
check "summary line" grep -q '3 call(s) found, 0 opened, 3 not openable with this key' "$work/out"
check "the reason is the key period" grep -q 'not openable with this key: MS_ERR_MIKEY_KEY_PERIOD' "$work/out"

check "Bob's RSK for another user refused (13)" run 13 audit decrypt --capture "$work/calls.pcap" \
    --rsk "$work/bob.rsk" --uri "$ALICE" --period "$P" --kms "$work/kms-cert.xml" --out "$work/x"
check "the refusal names the user and period" err_has "for key period $P"
check "no output for a refused key" test ! -e "$work/x"
check "a capture that is none (72)" run 72 audit decrypt --capture "$work/kms-cert.xml" \
    --rsk "$work/bob.rsk" --uri "$BOB" --period "$P" --kms "$work/kms-cert.xml" --out "$work/x"
check "a certificate that is none (50)" run 50 audit decrypt --capture "$work/calls.pcap" \
    --rsk "$work/bob.rsk" --uri "$BOB" --period "$P" --kms "$work/calls.pcap" --out "$work/x"
check "the --kms refusal names the option" err_has "--kms"
check "--period must be a number (21)" run 21 audit decrypt --capture "$work/calls.pcap" \
    --rsk "$work/bob.rsk" --uri "$BOB" --period current --kms "$work/kms-cert.xml" --out "$work/x"

# ---- a tel-URI community (RFC 6509: no SAKKE-to-self, so only calls to Bob open) ----------------------
"$ms" kms seal --dir "$K" >/dev/null 2>&1
K="$work/kms-tel"
ALICE=tel:+447700900123 BOB=tel:+447700900456 CAROL=tel:+447700900789
ROLES="$work/auditors-tel"
check "tel: kms init (rfc6509)" run 0 kms init --dir "$K" --uri "$KMS" --passphrase-file "$work/pass" \
    --scrypt-log2n 10 --auditors 1 --auditor-out-dir "$work/auditors-tel"
check "tel: unseal" run 0 kms unseal --dir "$K" --passphrase-file "$work/pass"
for who in alice bob carol; do
    case $who in alice) uri=$ALICE ;; bob) uri=$BOB ;; *) uri=$CAROL ;; esac
    check "tel: add $who" run 0 kms user add --key "$ROLES/operator.key" --dir "$K" --user "$uri"
    check "tel: enrol $who" run 0 kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$uri" --device "$who-tel" \
        --out "$work/$who-tel.enrol"
done
check "tel: issue" run 0 kms issue --key "$ROLES/operator.key" --dir "$K" --period current
check "tel: export" run 0 kms export --key "$ROLES/operator.key" --dir "$K" --period current --out "$work/media-tel"
for who in alice bob carol; do
    pkg="$work/media-tel/$(awk -v d="$who-tel" '$1 == d {print $3}' "$work/media-tel/index.txt")"
    check "tel: $who keystore" run 0 user init --keystore "$work/$who-tel.ks" \
        --enrolment "$work/$who-tel.enrol" --passphrase-file "$work/$who.pass" --scrypt-cost 10
    check "tel: $who import" run 0 user import --keystore "$work/$who-tel.ks" \
        --passphrase-file "$work/$who.pass" --in "$pkg"
done
teloffer() { # FROM TO NAME
    check "tel: $1 -> $2: mikey init" run 0 mikey init --keystore "$work/$1-tel.ks" \
        --passphrase-file "$work/$1.pass" --to "$3" --format sdp --out "$work/$4.keymgmt"
}
teloffer alice bob "$BOB" ab
teloffer bob carol "$CAROL" bc
teloffer alice carol "$CAROL" ac
printf 'alice %s\nbob %s\ncarol %s\n' "$ALICE" "$BOB" "$CAROL" >"$work/uris"
check "tel: write the capture" python3 "$work/mkpcap.py" "$work/calls-tel.pcap" "$work"
check "tel: kms cert" run 0 kms cert --dir "$K"
cp "$work/out" "$work/kms-cert-tel.xml"
check "tel: extract Bob's RSK" audit_extract 0 "$K" "$ROLES" 1 "$work/bob-tel.rsk" --user "$BOB" \
    --period current --reason "case 8"
PT=$(sed -n 's/.*for key period \([0-9]*\).*/\1/p' "$work/out" | head -1)
check "tel: audit" run 0 audit decrypt --capture "$work/calls-tel.pcap" --rsk "$work/bob-tel.rsk" \
    --uri "$BOB" --period "$PT" --kms "$work/kms-cert-tel.xml" --out "$work/audit-tel"
check "tel: only Alice -> Bob opens" python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert (r['calls_found'], r['calls_opened']) == (3, 1), r
a, b, c = r['calls']
assert a['openable'] and a['opened_as'] == 'callee' and a['caller']['verified'] == '$ALICE', a
assert not b['openable'] and not c['openable'], (b, c)
" "$work/audit-tel/report.json"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
