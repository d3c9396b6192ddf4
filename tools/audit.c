/*
 * `mikeysakke audit decrypt`: the auditor's side of `kms audit extract`. Reads captures
 * (tcpdump on the provider, voicemail files), opens the calls addressed to or placed by
 * one user in one key period with that user's extracted RSK and the KMS certificate, and
 * writes one WAV per direction per call plus report.json (src/call/audit.c does the work).
 */
#include "audit_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call/audit.h"
#include "call/keys.h"
#include "call/srtp.h"
#include "kmsif/kmsif.h"

const struct cli_opt cli_audit_decrypt_opts[] = {
    {"--capture", "FILE[,FILE]", CLI_REQUIRED, "pcap or pcapng capture(s), comma separated"},
    {"--rsk", "FILE", CLI_REQUIRED, "the user's RSK from `kms audit extract` (mode 0600)"},
    {"--uri", "URI", CLI_REQUIRED, "the user the RSK was extracted for"},
    {"--period", "N", CLI_REQUIRED, "the key period of the RSK"},
    {"--kms", "FILE", CLI_REQUIRED, "the KMS certificate (XML, as `kms cert` prints it)"},
    {"--out", "DIR", CLI_REQUIRED, "write the WAV files and report.json here"},
    {"--json", NULL, CLI_FLAG, "print report.json instead of a summary"},
    {"--no-audio", NULL, CLI_FLAG, "check and count packets only: write no WAV files"},
    {"--group-message", "FILE[,FILE]", 0, "a GMS's SIP MESSAGE (group key) the user received, "
                                          "if not in the captures"},
    {NULL, NULL, 0, NULL},
};

/* The KMS's public keys and identifier scheme from its certificate. */
static ms_err read_kms(const char *path, ms_kms_certificate *cert)
{
    uint8_t *xml = NULL;
    size_t len = 0;
    ms_err e = cli_read_input("--kms", path, &xml, &len);
    if (e != MS_OK)
        return e;
    char why[256] = "";
    e = ms_kmsif_certificate_parse(cert, (const char *)xml, len, why, sizeof why);
    free(xml);
    if (e != MS_OK)
        return cli_fail(e, "--kms %s: not a KMS certificate (%s)", path, why);
    if (cert->revoked)
        fprintf(stderr, "mikeysakke: warning: the KMS certificate %s is marked revoked\n",
                cert->cert_uri);
    return MS_OK;
}

static ms_err kms_info(const ms_kms_certificate *cert, ms_mikey_kms_info *info,
                       ms_mikey_profile *profile)
{
    memset(info, 0, sizeof *info);
    info->uri = cert->kms_uri;
    info->scheme.kms_uri = cert->kms_uri;
    info->Z = cert->Z;
    info->kpak = cert->kpak;
    if (cert->user_id_format == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) {
        info->scheme.scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
        *profile = MS_MIKEY_PROFILE_RFC6509;
        return MS_OK;
    }
    if (cert->user_id_format == MS_MIKEY_ID_SCHEME_HASHED_UID && cert->period_len > 0) {
        info->scheme.scheme = MS_MIKEY_ID_SCHEME_HASHED_UID;
        info->scheme.period_len = cert->period_len;
        info->scheme.period_offset = cert->period_offset;
        *profile = MS_MIKEY_PROFILE_PCK;
        return MS_OK;
    }
    return cli_fail(MS_ERR_MIKEY_UNSUPPORTED, "--kms: the certificate names no identifier "
                    "scheme this tool knows (UserIdFormat %u)", (unsigned)cert->user_id_format);
}

/* Comma-separated list -> argv-like array pointing into the (modified) copy. */
static ms_err split_captures(char *list, const char ***out, size_t *n)
{
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    const char **v = calloc(cap, sizeof *v);
    if (v == NULL)
        return cli_fail(MS_ERR_NOMEM, "--capture");
    size_t k = 0;
    char *save = NULL;
    for (char *f = strtok_r(list, ",", &save); f != NULL; f = strtok_r(NULL, ",", &save))
        v[k++] = f;
    if (k == 0) {
        free(v);
        return cli_fail(MS_ERR_USAGE, "--capture: no file named");
    }
    *out = v;
    *n = k;
    return MS_OK;
}

/* Text from a capture (SIP headers are anyone's): control characters shown as '?', so a
 * crafted From cannot drive the auditor's terminal. */
static const char *shown(char *buf, size_t cap, const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

static void print_stream(const ms_audit_call *c, ms_audit_dir d)
{
    const ms_audit_stream *s = &c->dir[d];
    printf("  %s: %llu packets decrypted, %llu failed authentication, %llu duplicate, "
           "%llu dropped; %.2f s",
           ms_audit_dir_name(d), (unsigned long long)s->decrypted,
           (unsigned long long)s->failed_auth, (unsigned long long)s->duplicates,
           (unsigned long long)s->dropped, (double)s->frames * 0.02);
    if (s->file[0])
        printf(" -> %s", s->file);
    putchar('\n');
}

static void print_summary(const ms_audit_report *r, const char *out_dir)
{
    char b1[256], b2[256], b3[256];
    for (size_t i = 0; i < r->n_calls; i++) {
        const ms_audit_call *c = &r->calls[i];
        printf("call %zu: %s -> %s (Call-ID %s)\n", c->index,
               shown(b1, sizeof b1, c->caller_claimed), shown(b2, sizeof b2, c->callee_claimed),
               shown(b3, sizeof b3, c->call_id));
        if (!c->openable) {
            printf("  not openable with this key: %s (%s)\n", ms_errname(c->err),
                   shown(b1, sizeof b1, c->why));
            continue;
        }
        printf("  opened as %s; verified %s -> %s; period %llu, PCK-ID %08X, %s%s\n",
               c->opened_as_caller ? "caller (SAKKE-to-self)" : "callee",
               shown(b1, sizeof b1, c->caller_verified), shown(b2, sizeof b2, c->callee_verified),
               (unsigned long long)c->period_no, (unsigned)c->key_id,
               ms_srtp_suite_name(c->suite), c->voicemail ? ", voicemail" : "");
        if (!c->caller_claim_matches || !c->callee_claim_matches)
            printf("  note: the SIP From/To differ from the identities MIKEY verified\n");
        print_stream(c, MS_AUDIT_CALLER_TO_CALLEE);
        if (!c->voicemail || c->dir[MS_AUDIT_CALLEE_TO_CALLER].decrypted > 0)
            print_stream(c, MS_AUDIT_CALLEE_TO_CALLER);
    }
    printf("%zu call(s) found, %zu opened, %zu not openable with this key\n", r->n_calls,
           r->opened, r->n_calls - r->opened);
    for (size_t i = 0; i < r->n_groups; i++) {
        const ms_audit_group *g = &r->groups[i];
        if (!g->openable) {
            printf("group key %zu (to %s): not openable: %s (%s)\n", g->index,
                   shown(b1, sizeof b1, g->member), ms_errname(g->err),
                   shown(b2, sizeof b2, g->why));
            continue;
        }
        printf("group key %zu: %s, GMK-ID %08X from %s, %zu senders\n", g->index,
               shown(b1, sizeof b1, g->group), (unsigned)g->gmk_id,
               shown(b2, sizeof b2, g->gms), g->n_senders);
        for (size_t k = 0; k < g->n_senders; k++) {
            const ms_audit_stream *s = &g->senders[k].s;
            printf("  %s: %llu packets decrypted, %llu dropped; %.2f s%s%s\n",
                   shown(b1, sizeof b1, g->senders[k].uri), (unsigned long long)s->decrypted,
                   (unsigned long long)s->dropped, (double)s->frames * 0.02,
                   s->file[0] ? " -> " : "", s->file);
        }
    }
    char w[sizeof r->warnings];
    if (r->warnings[0])
        printf("warning: %s\n", shown(w, sizeof w, r->warnings));
    printf("report: %s/report.json\n", out_dir);
}

static ms_err audit_decrypt(const struct cli_args *args);

/* The user's group keys (TS 33.180 GMK profile), opened with the same RSK when audit
 * decrypt meets the first group key message (checking the RSK again costs a pairing,
 * wasted on captures of calls only). */
typedef struct group_opening {
    const char *uri;
    uint64_t period;
    const uint8_t *rsk;
    const ms_mikey_kms_info *kms;
    ms_call_keys_options opt;
    ms_call_keys *keys; /* freed by the command */
} group_opening;

static ms_err open_group_keys(void *ctx, ms_call_keys **keys, char *detail, size_t detail_cap)
{
    group_opening *g = ctx;
    char why[400] = "";
    ms_err e = ms_call_keys_open_audit(&g->keys, g->uri, g->period, g->rsk, g->kms, &g->opt,
                                       why, sizeof why);
    if (e != MS_OK && detail != NULL && detail_cap > 0)
        snprintf(detail, detail_cap, "the RSK of %s for period %llu as a group key "
                 "(GMK profile)%s%s", g->uri, (unsigned long long)g->period,
                 why[0] ? ": " : "", why);
    *keys = g->keys;
    return e;
}

ms_err cli_audit_decrypt(const struct cli_args *args)
{
    /* libsrtp initialises while the keys are read and checked and the signalling is read */
    ms_srtp_warm_up warm;
    ms_srtp_warm_up_start(&warm);
    ms_err e = audit_decrypt(args);
    ms_srtp_warm_up_join(&warm);
    return e;
}

static ms_err audit_decrypt(const struct cli_args *args)
{
    const char *uri = cli_get(args, "--uri");
    const char *out_dir = cli_get(args, "--out");
    const char *ps = cli_get(args, "--period");
    char *end = NULL;
    errno = 0;
    unsigned long long period = strtoull(ps, &end, 10);
    if (*ps < '0' || *ps > '9' || errno != 0 || *end != '\0')
        return cli_fail(MS_ERR_USAGE, "--period: not a key period number: %s", ps);

    ms_kms_certificate cert;
    ms_mikey_kms_info info;
    ms_mikey_profile profile = MS_MIKEY_PROFILE_PCK;
    ms_err e = read_kms(cli_get(args, "--kms"), &cert);
    if (e == MS_OK)
        e = kms_info(&cert, &info, &profile);
    if (e != MS_OK)
        return e;

    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    e = cli_read_secret("--rsk", cli_get(args, "--rsk"), rsk, sizeof rsk, sizeof rsk);
    if (e != MS_OK)
        return e;
    ms_call_keys_options ko;
    memset(&ko, 0, sizeof ko);
    ko.mode = MS_CALL_KEYS_AUDIT;
    ko.profile = profile;
    ms_call_keys *keys = NULL;
    char detail[512] = "";
    e = ms_call_keys_open_audit(&keys, uri, (uint64_t)period, rsk, &info, &ko, detail,
                                sizeof detail);
    if (e != MS_OK) {
        ms_wipe(rsk, sizeof rsk);
        return cli_fail(e, "the RSK of %s for period %llu%s%s", uri, period,
                        detail[0] ? ": " : "", detail);
    }
    /* The same RSK opens the user's group keys, in 3GPP communities only. */
    group_opening g = {.uri = uri, .period = (uint64_t)period, .rsk = rsk, .kms = &info,
                       .opt = ko};
    g.opt.profile = MS_MIKEY_PROFILE_GMK;

    char *list = strdup(cli_get(args, "--capture"));
    const char **paths = NULL;
    size_t n_paths = 0;
    if (list == NULL)
        e = cli_fail(MS_ERR_NOMEM, "--capture");
    else
        e = split_captures(list, &paths, &n_paths);
    ms_audit_options ao;
    memset(&ao, 0, sizeof ao);
    ao.period_no = (uint64_t)period;
    ao.no_audio = cli_get(args, "--no-audio") != NULL;
    bool groups = profile == MS_MIKEY_PROFILE_PCK;
    if (groups) {
        ao.open_group_keys = open_group_keys;
        ao.open_group_keys_ctx = &g;
    }
    ao.kms = &info;
    char *glist = NULL;
    const char **gpaths = NULL;
    if (e == MS_OK && cli_get(args, "--group-message") != NULL) {
        if (!groups)
            e = cli_fail(MS_ERR_USAGE, "--group-message: group keys exist in 3GPP "
                         "communities only");
        else if ((glist = strdup(cli_get(args, "--group-message"))) == NULL)
            e = cli_fail(MS_ERR_NOMEM, "--group-message");
        else
            e = split_captures(glist, &gpaths, &ao.n_group_messages);
        ao.group_messages = gpaths;
    }
    ms_audit_report rep;
    memset(&rep, 0, sizeof rep);
    if (e == MS_OK) {
        e = ms_audit_decrypt(paths, n_paths, keys, out_dir, &ao, &rep, detail, sizeof detail);
        if (e != MS_OK)
            e = cli_fail(e, "audit decrypt: %s", detail[0] ? detail : ms_strerror(e));
    }
    if (e == MS_OK && cli_get(args, "--json") != NULL) {
        char *json = NULL;
        size_t len = 0;
        e = ms_audit_report_json(&rep, &json, &len);
        if (e == MS_OK)
            fwrite(json, 1, len, stdout);
        else
            cli_fail(e, "the report");
        free(json);
    } else if (e == MS_OK) {
        print_summary(&rep, out_dir);
    }
    ms_audit_report_free(&rep);
    ms_wipe(rsk, sizeof rsk);
    ms_call_keys_free(keys);
    ms_call_keys_free(g.keys);
    free(paths);
    free(list);
    free(gpaths);
    free(glist);
    return e;
}
