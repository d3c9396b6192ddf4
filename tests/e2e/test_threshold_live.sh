#!/usr/bin/env bash
# The threshold KMS's batch on a chosen live set and its signed Merkle root, on loopback
# (docs/threshold.md):
#  - (3,1): keygen, init, batch (--servers 1,2,3), share and threshold-combine, each with
#    --json (the JSON shapes checked); batch-P.root holds the three signatures; a share is
#    refused (exit 86) when the root file was edited, has too few signatures, or the
#    records file no longer matches it;
#  - (4,1), 2t+1 < n: the batch with servers 1, 2 and 4 only; server 3 says it did not take
#    part; any two of the live servers' shares combine into the same valid keys; live sets
#    too small, without this server, or differing between servers are refused.
# Usage: bash test_threshold_live.sh PATH_TO_mikeysakke
set -u
ms=${1:?usage: test_threshold_live.sh PATH_TO_mikeysakke}
vectors=/dev/null
. "$(dirname "$0")/../cli/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 0; }
. "$(dirname "$0")/threshold_lib.sh"

# json_has FILE KEY...: FILE is one JSON object with these keys
json_has() {
    python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
missing = [k for k in sys.argv[2:] if k not in o]
if not isinstance(o, dict) or missing:
    sys.exit("missing: %s in %r" % (missing, o))' "$@"
}
# json_get FILE EXPR: a Python expression over the object o, printed
json_get() { python3 -c 'import json, sys; o = json.loads(open(sys.argv[1]).read()); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- (3,1) with --json everywhere ----------------------------------------------------
read -r -a P <<<"$(tk_free_ports 3)"
printf 'mikeysakke-peers 1\nthreshold 1\n' >"$work/a-peers.txt"
for i in 1 2 3; do
    check "keygen --json of server $i" run 0 kms threshold keygen --dir "$work/a$i" --index $i \
        --url "https://127.0.0.1:${P[$((i - 1))]}" --json
    cp "$work/out" "$work/keygen$i.json"
    json_get "$work/out" 'o["line"]' >>"$work/a-peers.txt"
done
check "keygen JSON: index, url, dir, the three keys and the table line" \
    json_has "$work/keygen2.json" index url dir sign hpke tls line
check "keygen JSON: values" same "$(json_get "$work/keygen2.json" '(o["index"], len(o["sign"]), len(o["hpke"]), len(o["tls"]), o["line"].startswith("server 2 https://"))')" \
    "(2, 64, 64, 64, True)"

tk_ceremony a "1 2 3" 60 --json
check "the ceremony succeeded at every server" tk_all_ok a init "1 2 3"
check "init JSON: n, t, fingerprint, transcript, qualified, Z, KPAK" \
    json_has "$work/a-init-out1" n t fingerprint transcript qualified Z KPAK
check "init JSON: values" same "$(json_get "$work/a-init-out1" '(o["n"], o["t"], o["qualified"], len(o["fingerprint"]), len(o["Z"]))')" \
    "(3, 1, '00000007', 16, 514)"
check "servers 1 and 3 agree (JSON)" same "$(json_get "$work/a-init-out3" 'o["fingerprint"] + o["Z"]')" \
    "$(json_get "$work/a-init-out1" 'o["fingerprint"] + o["Z"]')"

printf 'tel:+447700900123\ntel:+447700900456\nsip:alice@org.example\nsip:bob@org.example\ntel:+447700900789\n' >"$work/users"
tk_batch a "1 2 3" 2026-12 "$work/users" 60 --servers 1,2,3 --json
check "the batch with --servers 1,2,3 succeeded at every server" tk_all_ok a batch-2026-12 "1 2 3"
check "batch JSON: period, users, records, root, servers, signatures, root_file" \
    json_has "$work/a-batch-2026-12-out1" period users records root servers signatures root_file
check "batch JSON: values" same "$(json_get "$work/a-batch-2026-12-out1" '(o["period"], o["users"], o["servers"], o["signatures"], len(o["root"]))')" \
    "('2026-12', 5, [1, 2, 3], [1, 2, 3], 64)"
for i in 2 3; do
    check "servers 1 and $i: the same root" same "$(json_get "$work/a-batch-2026-12-out$i" 'o["root"] + o["records"]')" \
        "$(json_get "$work/a-batch-2026-12-out1" 'o["root"] + o["records"]')"
    check "servers 1 and $i: the same root file" cmp -s "$work/a1/batch-2026-12.root" "$work/a$i/batch-2026-12.root"
done
R=$work/a1/batch-2026-12.root
check "the root file: header, period, count, live set, root, three signatures" \
    bash -c "head -5 '$R' | tr '\n' ' ' | grep -Eq '^mikeysakke-tkms-root 1 period 2026-12 count 5 live 00000007 root [0-9a-f]{64} \$' && [ \$(grep -Ec '^sig [123] [0-9a-f]{128}\$' '$R') = 3 ]"

tk_device
U=tel:+447700900456
for i in 1 2 3; do
    check "server $i issues its share (--json)" tk_share 0 a $i "$U" 2026-12 "$work/share$i" --json
    cp "$work/out" "$work/share$i.json"
done
check "share JSON: server, user, period, out" json_has "$work/share3.json" server user period out
check "share JSON: values" same "$(json_get "$work/share3.json" '(o["server"], o["user"], o["period"])')" \
    "(3, '$U', '2026-12')"
check "shares {1,3} combine (--json)" tk_combine 0 a 13 "$U" 2026-12 "$work/share1,$work/share3" --json
check "combine JSON: user, period, shares, PVT, rsk_out, ssk_out" \
    json_has "$work/pvt-13" user period shares PVT rsk_out ssk_out
check "combine JSON: values" same "$(json_get "$work/pvt-13" '(o["shares"], len(o["PVT"]), o["rsk_out"].endswith("rsk-13"))')" "(2, 130, True)"
check "shares {2,3} combine (text)" tk_combine 0 a 23 "$U" 2026-12 "$work/share2,$work/share3"
check "the same RSK from {1,3} and {2,3}" cmp -s "$work/rsk-13" "$work/rsk-23"
check "the same PVT" same "$(sed -n 's/^PVT //p' "$work/pvt-23")" "$(json_get "$work/pvt-13" 'o["PVT"]')"
Z=$(json_get "$work/a-init-out1" 'o["Z"]')
check "sakke validate accepts the RSK" run 0 sakke validate --public "$Z" --id "$(tk_idhex "$U" 2026-12)" --rsk "$work/rsk-13"

# ---- the root activates the batch --------------------------------------------------------
cp "$R" "$work/root.good"
restore_root() { rm -f "$R"; cp "$work/root.good" "$R"; }
python3 -c 'import sys; p = sys.argv[1]; t = open(p).read().split("\n"); t[4] = t[4][:-1] + ("0" if t[4][-1] != "0" else "1"); open(p, "w").write("\n".join(t))' "$R"
check "an edited root file: the share is refused" tk_share 86 a 1 "$U" 2026-12 "$work/x1"
check "... no valid signature" err_has "the batch of 2026-12 is not active: 0 of the 3 signatures it needs"
restore_root
grep -v '^sig 2 ' "$work/root.good" >"$R.tmp" && mv "$R.tmp" "$R"
check "too few signatures: refused" tk_share 86 a 1 "$U" 2026-12 "$work/x1"
check "... 2 of 3" err_has "the batch of 2026-12 is not active: 2 of the 3 signatures it needs"
restore_root
sed -i 's/^sig 3 \(.\)/sig 3 f\1/;s/^\(sig 3 .*\).$/\1/' "$R"
check "a forged signature: refused" tk_share 86 a 1 "$U" 2026-12 "$work/x1"
check "... 2 of 3" err_has "2 of the 3 signatures"
restore_root
sed -i 's/^live 00000007$/live 00000006/' "$R"
check "a root file edited to leave server 1 out: not active (not 'did not take part')" tk_share 86 a 1 "$U" 2026-12 "$work/x1"
check "... no valid signature" err_has "not active: 0 of the 3 signatures"
restore_root
rm -f "$R"
check "no root file: refused" tk_share 86 a 1 "$U" 2026-12 "$work/x1"
check "... named" err_has "the batch of 2026-12 is not active: no signed root"
restore_root
REC=$work/a1/batch-2026-12.records
cp "$REC" "$work/records.good"
python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-3] ^= 1; open(p, "wb").write(b)' "$REC"
check "a record not in the signed tree: refused" tk_share 86 a 1 "$U" 2026-12 "$work/x1"
check "... named" err_has "is not in the signed root of the batch of 2026-12"
rm -f "$REC"
cp "$work/records.good" "$REC"
check "restored: the share is issued again" tk_share 0 a 1 "$U" 2026-12 "$work/share1b"

# ---- (4,1): the batch with servers 1, 2 and 4 ----------------------------------------------
check "keygen of four servers" tk_keygen b 4 1
tk_ceremony b "1 2 3 4" 60
check "the ceremony of four succeeded" tk_all_ok b init "1 2 3 4"
check "a live set of two is refused before any network" \
    run 2 kms threshold batch --dir "$work/b1" --peers "$work/b-peers.txt" --period 2026-12 \
        --users "$work/users" --passphrase-file "$work/pass" --timeout 2 --servers 1,2
check "... naming the minimum" err_has "needs at least 3 live servers"
check "a live set without this server is refused" \
    run 2 kms threshold batch --dir "$work/b1" --peers "$work/b-peers.txt" --period 2026-12 \
        --users "$work/users" --passphrase-file "$work/pass" --timeout 2 --servers 2,3,4
check "... naming it" err_has "this server (1) is not one of the live servers (2, 3, 4)"
check "a live server outside the table is refused" \
    run 2 kms threshold batch --dir "$work/b1" --peers "$work/b-peers.txt" --period 2026-12 \
        --users "$work/users" --passphrase-file "$work/pass" --timeout 2 --servers 1,2,5
check "--servers must be a list of indices" \
    run 21 kms threshold batch --dir "$work/b1" --peers "$work/b-peers.txt" --period 2026-12 \
        --users "$work/users" --passphrase-file "$work/pass" --timeout 2 --servers 1,,2

tk_batch b "1 2 4" 2026-12 "$work/users" 60 --servers 1,2,4
check "the batch of servers 1, 2, 4 succeeded" tk_all_ok b batch-2026-12 "1 2 4"
check "it names its servers" grep -qx 'servers 1, 2, 4' "$work/b-batch-2026-12-out1"
for i in 2 4; do
    check "servers 1 and $i printed the same records and root" \
        same "$(cat "$work/b-batch-2026-12-out$i")" "$(cat "$work/b-batch-2026-12-out1")"
done
check "the root file names the live set 1, 2, 4" grep -qx 'live 0000000b' "$work/b1/batch-2026-12.root"
check "server 3 holds no batch files" bash -c "[ ! -e '$work/b3/batch-2026-12.sealed' ]"
check "server 3 has no share" tk_share 19 b 3 "$U" 2026-12 "$work/y3"
check "... and says it did not take part" err_has "server 3 holds no batch of period 2026-12"
cp "$work/b1/batch-2026-12.root" "$work/b1/batch-2026-12.records" "$work/b3/"
check "server 3 with the batch's public files: refused" tk_share 86 b 3 "$U" 2026-12 "$work/y3"
check "... server 3 did not take part" err_has "server 3 did not take part in the batch of 2026-12 (servers 1, 2, 4 did)"
for i in 1 2 4; do
    check "live server $i issues its share" tk_share 0 b $i "$U" 2026-12 "$work/b-share$i"
done
check "{1,2} combine" tk_combine 0 b 12 "$U" 2026-12 "$work/b-share1,$work/b-share2"
check "{1,4} combine" tk_combine 0 b 14 "$U" 2026-12 "$work/b-share1,$work/b-share4"
check "{2,4} combine" tk_combine 0 b 24 "$U" 2026-12 "$work/b-share2,$work/b-share4"
for pair in 14 24; do
    check "RSK {1,2} = RSK {${pair:0:1},${pair:1:1}}" cmp -s "$work/rsk-12" "$work/rsk-$pair"
    check "SSK {1,2} = SSK {${pair:0:1},${pair:1:1}}" cmp -s "$work/ssk-12" "$work/ssk-$pair"
    check "PVT {1,2} = PVT {${pair:0:1},${pair:1:1}}" cmp -s "$work/pvt-12" "$work/pvt-$pair"
done
ZB=$(sed -n 's/^Z //p' "$work/b-init-out1")
check "sakke validate accepts the (4,1) RSK" run 0 sakke validate --public "$ZB" --id "$(tk_idhex "$U" 2026-12)" --rsk "$work/rsk-24"

# live sets that differ between servers: another session, nobody keeps a result
"$ms" kms threshold batch --dir "$work/b3" --peers "$work/b-peers.txt" --period 2027-01 \
    --users "$work/users" --passphrase-file "$work/pass" --timeout 4 --servers 1,3,4 \
    >/dev/null 2>"$work/b-diff-err3" &
B3=$!
tk_parallel b diff "1 2" kms threshold batch --peers "$work/b-peers.txt" --period 2027-01 \
    --users "$work/users" --passphrase-file "$work/pass" --timeout 4 --servers 1,2,3
wait "$B3"
check "server 3 (another live set) fails" bash -c "[ -s '$work/b-diff-err3' ]"
check "server 1 fails" bash -c "[ \$(cat '$work/b-diff-rc1') != 0 ]"
check "server 1 names server 3" grep -q 'server 3' "$work/b-diff-err1"
check "no batch of 2027-01 kept" bash -c "! ls '$work'/b?/batch-2027-01.* >/dev/null 2>&1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
