/*
 * Audited extraction at a threshold KMS, the commands: `kms threshold audit-keygen`,
 * `audit-setup`, `warrant`, `warrant-sign`, and `kms audit extract --threshold`
 * (tools/kms.c hands it here). Options and output only; the work is src/tkms/audit.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kms/roles.h"
#include "mikeysakke/crypto.h"
#include "net/hpke.h"
#include "net/peer_msg.h"
#include "tkms/audit.h"
#include "json_out.h"
#include "tkms_audit_cli.h"
#include "util/hex.h"

const struct cli_opt cli_kms_threshold_audit_keygen_opts[] = {
    {"--role", "authority|approver|auditor", CLI_REQUIRED,
     "an Ed25519 warrant key (authority, approver) or the auditor's X25519 key"},
    {"--out", "FILE", CLI_REQUIRED, "write the private key here (0600) and FILE.pub"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_audit_setup_opts[] = {
    {"--dir", "DIR", CLI_REQUIRED, "this server's directory (after kms threshold init)"},
    {"--authority", "FILE", CLI_REQUIRED, "the audit authority's public key"},
    {"--approver", "FILE[,FILE]", CLI_REQUIRED, "the approvers' public keys (a warrant needs one)"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_warrant_opts[] = {
    {"--user", "URI", CLI_REQUIRED, "the user whose key is to be extracted"},
    {"--period", "P", CLI_REQUIRED, "the key period, e.g. 2026-12"},
    {"--auditor-pub", "FILE", CLI_REQUIRED, "the auditor's X25519 public key (shares are sealed to it)"},
    {"--reason", "TEXT", CLI_REQUIRED, "why (recorded in every server's audit log)"},
    {"--expires-in", "SECONDS", 0, "how long the warrant may be used (default 86400)"},
    {"--out", "FILE", CLI_REQUIRED, "write the warrant here (then: kms threshold warrant-sign)"},
    {NULL, NULL, 0, NULL},
};

const struct cli_opt cli_kms_threshold_warrant_sign_opts[] = {
    {"--warrant", "FILE", CLI_REQUIRED, "the warrant (read it first): its signature is added"},
    {"--key", "FILE", CLI_REQUIRED, "your authority or approver key (mode 0600)"},
    {NULL, NULL, 0, NULL},
};

ms_err cli_kms_threshold_audit_keygen(const struct cli_args *args)
{
    const char *role = cli_get(args, "--role"), *out = cli_get(args, "--out");
    bool auditor = strcmp(role, "auditor") == 0;
    if (!auditor && strcmp(role, "authority") != 0 && strcmp(role, "approver") != 0)
        return cli_fail(MS_ERR_USAGE, "--role: authority, approver or auditor");
    char pub_path[4096];
    if ((size_t)snprintf(pub_path, sizeof pub_path, "%s.pub", out) >= sizeof pub_path)
        return cli_fail(MS_ERR_USAGE, "--out: path too long");
    uint8_t sk[32], pk[32];
    ms_err e = auditor ? ms_hpke_keygen(sk, pk, NULL) : ms_role_keygen(sk, pk, NULL);
    char detail[300] = "";
    if (e == MS_OK)
        e = ms_peer_key_write(out, sk, true, detail, sizeof detail);
    ms_wipe(sk, sizeof sk);
    if (e == MS_OK && (e = ms_peer_key_write(pub_path, pk, false, detail, sizeof detail)) !=
                          MS_OK)
        unlink(out);
    if (e != MS_OK)
        return cli_fail(e, "%s", detail[0] ? detail : "kms threshold audit-keygen");
    char hex[65];
    ms_hex_encode_lower(hex, pk, 32);
    printf("%s key %s written to %s (0600) and %s\n", role, hex, out, pub_path);
    return MS_OK;
}

ms_err cli_kms_threshold_audit_setup(const struct cli_args *args)
{
    ms_tkms_audit_roles roles = {0};
    char detail[400] = "";
    ms_err e = ms_role_pub_read(cli_get(args, "--authority"), roles.authority, detail,
                                sizeof detail);
    if (e != MS_OK)
        return cli_fail(e, "--authority: %s", detail);
    char *list = strdup(cli_get(args, "--approver")), *save = NULL;
    if (list == NULL)
        return cli_fail(MS_ERR_NOMEM, "--approver");
    for (char *f = strtok_r(list, ",", &save); f != NULL && e == MS_OK;
         f = strtok_r(NULL, ",", &save)) {
        if (roles.n_approvers == MS_TKMS_AUDIT_MAX_APPROVERS)
            e = cli_fail(MS_ERR_USAGE, "--approver: at most %d keys",
                         MS_TKMS_AUDIT_MAX_APPROVERS);
        else if ((e = ms_role_pub_read(f, roles.approver[roles.n_approvers++], detail,
                                       sizeof detail)) != MS_OK)
            cli_fail(e, "--approver %s: %s", f, detail);
    }
    free(list);
    if (e != MS_OK)
        return e;
    uint8_t hash[32];
    if ((e = ms_tkms_audit_setup(cli_get(args, "--dir"), &roles, hash, detail, sizeof detail)) !=
        MS_OK)
        return cli_fail(e, "%s", detail[0] ? detail : "kms threshold audit-setup");
    char hex[65];
    ms_hex_encode_lower(hex, hash, 32);
    /* the same at every server, or their checkpoints never count for one another */
    printf("roles %s\n", hex);
    return MS_OK;
}

ms_err cli_kms_threshold_warrant(const struct cli_args *args)
{
    const char *out = cli_get(args, "--out");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    uint64_t expires_in = 86400;
    const char *ex = cli_get(args, "--expires-in");
    if (ex != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(ex, &end, 10);
        if (end == ex || *end != '\0' || errno != 0 || v < 1 || v > 366ull * 86400)
            return cli_fail(MS_ERR_USAGE, "--expires-in: seconds from 1 to 31622400");
        expires_in = v;
    }
    uint8_t apk[32];
    char detail[400] = "";
    if ((e = ms_peer_pub_read(cli_get(args, "--auditor-pub"), apk, detail, sizeof detail)) !=
        MS_OK)
        return cli_fail(e, "--auditor-pub: %s", detail);
    char text[MS_TKMS_WARRANT_MAX];
    size_t len = 0;
    e = ms_tkms_warrant_make(text, sizeof text, &len, cli_get(args, "--user"),
                             cli_get(args, "--period"), apk, (uint64_t)time(NULL) + expires_in,
                             cli_get(args, "--reason"), detail, sizeof detail);
    if (e != MS_OK)
        return cli_fail(e, "%s", detail[0] ? detail : "kms threshold warrant");
    if ((e = ms_peer_file_create(out, text, len, false, detail, sizeof detail)) != MS_OK)
        return cli_fail(e, "--out: %s", detail);
    fputs(text, stdout);
    return MS_OK;
}

ms_err cli_kms_threshold_warrant_sign(const struct cli_args *args)
{
    const char *path = cli_get(args, "--warrant");
    uint8_t *text = NULL;
    size_t len = 0;
    ms_err e = cli_read_input("--warrant", path, &text, &len);
    if (e != MS_OK)
        return e;
    uint8_t seed[32];
    char detail[400] = "", line[MS_APPROVAL_TEXT_MAX];
    ms_tkms_warrant w;
    e = ms_role_key_read(cli_get(args, "--key"), seed, detail, sizeof detail);
    if (e != MS_OK)
        cli_fail(e, "--key: %s", detail);
    if (e == MS_OK && (e = ms_tkms_warrant_parse((const char *)text, len, &w, detail,
                                                 sizeof detail)) != MS_OK)
        cli_fail(e, "--warrant %s: %s", path, detail);
    if (e == MS_OK && (e = ms_tkms_warrant_sign(seed, (const char *)text, len, line, sizeof line,
                                                detail, sizeof detail)) != MS_OK)
        cli_fail(e, "%s", detail[0] ? detail : "kms threshold warrant-sign");
    ms_wipe(seed, sizeof seed);
    /* the file replaced atomically by the warrant with this signature line added */
    size_t ll = strlen(line);
    uint8_t *signed_text = e == MS_OK ? malloc(len + ll) : NULL;
    char tmp[4200];
    if (e == MS_OK && (signed_text == NULL ||
                       (size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >=
                           sizeof tmp))
        e = cli_fail(MS_ERR_NOMEM, "--warrant");
    if (e == MS_OK) {
        memcpy(signed_text, text, len);
        memcpy(signed_text + len, line, ll);
        if ((e = ms_peer_file_create(tmp, signed_text, len + ll, false, detail,
                                     sizeof detail)) != MS_OK)
            cli_fail(e, "--warrant: %s", detail);
        else if (rename(tmp, path) != 0)
            e = cli_fail(MS_ERR_IO, "--warrant %s: cannot replace it (%s)", path,
                         strerror(errno));
        if (e != MS_OK)
            unlink(tmp);
    }
    if (e == MS_OK)
        printf("Signed the warrant for %s, period %s (\"%s\"); it carries %u signature%s\n",
               w.user, w.period, w.reason, w.n_sigs + 1, w.n_sigs == 0 ? "" : "s");
    free(signed_text);
    free(text);
    return e;
}

ms_err cli_kms_threshold_extract(const struct cli_args *args)
{
    static const char *const need[] = {"--peers", "--public", "--warrant", "--auditor-key"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (cli_get(args, need[i]) == NULL)
            return cli_fail(MS_ERR_USAGE, "--threshold needs %s", need[i]);
    if (cli_get(args, "--dir") != NULL || cli_get(args, "--request") != NULL ||
        cli_get(args, "--approval") != NULL)
        return cli_fail(MS_ERR_USAGE, "--threshold takes a --warrant, not --dir, --request or "
                                      "--approval");
    const char *out = cli_get(args, "--out");
    ms_err e = cli_check_new_file("--out", out, 0);
    if (e != MS_OK)
        return e;
    uint8_t *warrant = NULL;
    size_t wl = 0;
    if ((e = cli_read_input("--warrant", cli_get(args, "--warrant"), &warrant, &wl)) != MS_OK)
        return e;
    uint8_t sk[32];
    char detail[1600] = "";
    e = ms_peer_key_read(cli_get(args, "--auditor-key"), sk, detail, sizeof detail);
    if (e != MS_OK) {
        free(warrant);
        return cli_fail(e, "--auditor-key: %s", detail);
    }
    ms_tkms_extract_params p = {.peers_file = cli_get(args, "--peers"),
                                .public_file = cli_get(args, "--public"),
                                .warrant = (const char *)warrant,
                                .warrant_len = wl,
                                .auditor_sk = sk};
    ms_tkms_extract_result res;
    e = ms_tkms_audit_extract(&p, &res, detail, sizeof detail);
    ms_wipe(sk, sizeof sk);
    free(warrant);
    if (e != MS_OK)
        return cli_fail(e, "%s", detail[0] ? detail : "kms audit extract --threshold");
    bool json = cli_get(args, "--json") != NULL;
    if ((e = cli_write_secret("--out", out, res.rsk, sizeof res.rsk, 0)) == MS_OK && json) {
        struct cli_json j;
        cli_json_begin(&j, stdout);
        cli_json_str(&j, "user", res.user);
        cli_json_str(&j, "period", res.period);
        const char *keys[2] = {"logged_by", "shares_from"};
        uint32_t sets[2] = {res.logged, res.released};
        for (unsigned k = 0; k < 2; k++) {
            cli_json_array(&j, keys[k]);
            for (unsigned i = 1; i <= 32; i++)
                if (sets[k] & (1u << (i - 1)))
                    cli_json_u64(&j, NULL, i);
            cli_json_close(&j);
        }
        cli_json_str(&j, "out", out);
        cli_json_end(&j);
    } else if (e == MS_OK) {
        printf("Extracted the RSK of %s for key period %s (audited by every server that "
               "released)\nlogged by servers", res.user, res.period);
        for (unsigned j = 1; j <= 32; j++)
            if (res.logged & (1u << (j - 1)))
                printf(" %u", j);
        printf("\nshares from servers");
        for (unsigned j = 1; j <= 32; j++)
            if (res.released & (1u << (j - 1)))
                printf(" %u", j);
        printf("\nRSK written to %s (mode 0600)\n", out);
    }
    ms_wipe(&res, sizeof res);
    return e;
}
