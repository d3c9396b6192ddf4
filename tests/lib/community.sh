# A 3GPP community for the call tests and the demo, made with the real commands: a KMS
# (hashed-UID scheme, 30-day periods, passphrase seal with a small scrypt cost), its
# unseal agent, users with one device each, this period's keys issued and exported, and
# each device's keystore imported. Sourced after `ms` (the binary) and `work` (a private
# temporary folder) are set. Call community_up USER..., community_down on exit.
#   community_up sip:alice@example.org sip:bob@example.org
# KMS_SCHEME=rfc6509 makes an RFC 6509 community (monthly tel URI identifiers) instead.
# leaves: $K (KMS dir), $work/<name>.ks and $work/<name>.pass per user (name = the URI's
# user part), $work/auditors/auditor-{1,2}.key, $work/kms.pass.
KMS_URI=${KMS_URI:-kms.example.org}
K=$work/kms
ROLES="$work/auditors" # kms init writes the role keys (operator, officers, auditors) here

cm_name() { local u=${1#*:}; u=${u%%@*}; printf '%s' "${u#+}"; }

community_up() {
    local ms_out=$work/community.log
    ROLES=$work/auditors # set here too: a caller may source this file before $work is set
    umask 077
    printf 'kms passphrase for the call tests\n' >"$work/kms.pass"
    local scheme_opts="--scheme 3gpp --period-len 2592000"
    [ "${KMS_SCHEME:-3gpp}" = rfc6509 ] && scheme_opts="--scheme rfc6509"
    "$ms" kms init --dir "$K" --uri "$KMS_URI" --passphrase-file "$work/kms.pass" \
        --scrypt-log2n 10 $scheme_opts --auditors 2 --approvals 2 \
        --auditor-out-dir "$work/auditors" >>"$ms_out" 2>&1 || return 1
    "$ms" kms unseal --dir "$K" --passphrase-file "$work/kms.pass" >>"$ms_out" 2>&1 || return 1
    local uri name
    for uri in "$@"; do
        name=$(cm_name "$uri")
        "$ms" kms user add --key "$ROLES/operator.key" --dir "$K" --user "$uri" >>"$ms_out" 2>&1 || return 1
        "$ms" kms device enrol --key "$ROLES/officer-1.key" --dir "$K" --user "$uri" --device "$name-phone" \
            --out "$work/$name.enrol" >>"$ms_out" 2>&1 || return 1
    done
    "$ms" kms issue --key "$ROLES/operator.key" --dir "$K" --period current >>"$ms_out" 2>&1 || return 1
    "$ms" kms export --key "$ROLES/operator.key" --dir "$K" --period current --out "$work/media" >>"$ms_out" 2>&1 || return 1
    for uri in "$@"; do
        name=$(cm_name "$uri")
        printf '%s keystore passphrase\n' "$name" >"$work/$name.pass"
        "$ms" user init --keystore "$work/$name.ks" --enrolment "$work/$name.enrol" \
            --passphrase-file "$work/$name.pass" --scrypt-cost 10 >>"$ms_out" 2>&1 || return 1
        local pkg
        pkg=$(awk -v d="$name-phone" '$1 == d {print $3}' "$work/media/index.txt")
        "$ms" user import --keystore "$work/$name.ks" --passphrase-file "$work/$name.pass" \
            --in "$work/media/$pkg" >>"$ms_out" 2>&1 || return 1
    done
}

community_down() {
    if [ -f "$K/agent.pid" ]; then
        "$ms" kms seal --dir "$K" >/dev/null 2>&1 || kill "$(cat "$K/agent.pid")" 2>/dev/null
    fi
}
