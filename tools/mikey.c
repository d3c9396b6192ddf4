/*
 * The `mikey` subcommands: build (init), check (respond) and print (inspect) MIKEY-SAKKE
 * I_MESSAGEs (RFC 6509, TS 33.180), and the identifiers keys are issued for (id, uid).
 * See docs/cli.md. Secrets (SSK, RSK, the key to send) come from key files only.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/client.h"
#include "mikeysakke/mikey.h"

/* ---- small parsers ----------------------------------------------------------------------- */

/* A decimal number without sign, spaces or overflow. */
static ms_err parse_u64(const char *opt, const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return cli_fail(MS_ERR_USAGE, "%s: empty number", opt);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return cli_fail(MS_ERR_USAGE, "%s %s: not a decimal number", opt, s);
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return cli_fail(MS_ERR_USAGE, "%s %s: number too large", opt, s);
        v = v * 10 + d;
    }
    *out = v;
    return MS_OK;
}

static ms_err parse_profile(const char *s, ms_mikey_profile *out)
{
    static const struct {
        const char *name;
        ms_mikey_profile p;
    } names[] = {{"rfc6509", MS_MIKEY_PROFILE_RFC6509},
                 {"pck", MS_MIKEY_PROFILE_PCK},
                 {"gmk", MS_MIKEY_PROFILE_GMK},
                 {"csk", MS_MIKEY_PROFILE_CSK}};
    if (s == NULL) {
        *out = MS_MIKEY_PROFILE_RFC6509;
        return MS_OK;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].p;
            return MS_OK;
        }
    return cli_fail(MS_ERR_USAGE, "--profile %s: not rfc6509, pck, gmk or csk", s);
}

static const char *profile_name(ms_mikey_profile p)
{
    switch (p) {
    case MS_MIKEY_PROFILE_RFC6509: return "rfc6509";
    case MS_MIKEY_PROFILE_PCK: return "pck";
    case MS_MIKEY_PROFILE_GMK: return "gmk";
    case MS_MIKEY_PROFILE_CSK: return "csk";
    }
    return "?";
}

/* ---- the KMS community options ----------------------------------------------------------- */

/* What --kms/--public/--kpak, --peer-* and --period-* describe. */
struct kms_opts {
    ms_mikey_profile profile;
    ms_id_scheme scheme;
    const char *uri, *peer_uri; /* peer_uri == uri when no --peer-kms */
    uint8_t Z[MS_SAKKE_POINT_BYTES], kpak[MS_ECCSI_POINT_BYTES];
    uint8_t peer_Z[MS_SAKKE_POINT_BYTES], peer_kpak[MS_ECCSI_POINT_BYTES];
    int has_peer;
};

static ms_err load_scheme(const struct cli_args *args, ms_mikey_profile profile,
                          ms_id_scheme *scheme)
{
    const char *len = cli_get(args, "--period-len");
    const char *off = cli_get(args, "--period-offset");
    memset(scheme, 0, sizeof *scheme);
    if (profile == MS_MIKEY_PROFILE_RFC6509) {
        /* Monthly identifiers have no period settings: a given one is a mistake. */
        if (len != NULL || off != NULL)
            return cli_fail(MS_ERR_USAGE, "--period-len/--period-offset: not used by "
                                          "--profile rfc6509 (monthly key periods)");
        scheme->scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
        return MS_OK;
    }
    if (len == NULL)
        return cli_fail(MS_ERR_USAGE, "--period-len: required by --profile %s",
                        profile_name(profile));
    scheme->scheme = MS_MIKEY_ID_SCHEME_HASHED_UID;
    ms_err err = parse_u64("--period-len", len, &scheme->period_len);
    if (err == MS_OK && scheme->period_len == 0)
        err = cli_fail(MS_ERR_USAGE, "--period-len: must be at least 1 second");
    if (err == MS_OK && off != NULL)
        err = parse_u64("--period-offset", off, &scheme->period_offset);
    return err;
}

/* Options that --keystore replaces, and those it needs without it. */
static ms_err keystore_conflicts(const struct cli_args *args, const char *const *given_by_ks,
                                 size_t n)
{
    int has_ks = cli_get(args, "--keystore") != NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = cli_get(args, given_by_ks[i]);
        if (has_ks && v != NULL && strcmp(given_by_ks[i], "--uri") != 0)
            return cli_fail(MS_ERR_USAGE, "%s: taken from --keystore; leave it out",
                            given_by_ks[i]);
        if (!has_ks && v == NULL)
            return cli_fail(MS_ERR_USAGE, "missing required option %s (or give --keystore)",
                            given_by_ks[i]);
    }
    if (!has_ks && cli_get(args, "--passphrase-file") != NULL)
        return cli_fail(MS_ERR_USAGE, "--passphrase-file: only with --keystore");
    return MS_OK;
}

/* The keystore of --keystore, opened with its passphrase; ks's identity in *id. */
static ms_err open_keystore(const struct cli_args *args, ms_keystore **ks,
                            ms_keystore_identity *id)
{
    const char *dir = cli_get(args, "--keystore");
    char pass[CLI_PASSPHRASE_MAX];
    size_t len = 0;
    char detail[512] = "";
    ms_err err = cli_read_passphrase(cli_get(args, "--passphrase-file"), 0, pass, sizeof pass,
                                     &len);
    if (err != MS_OK)
        return err;
    err = ms_keystore_open(ks, dir, pass, len, detail, sizeof detail);
    ms_wipe(pass, sizeof pass);
    if (err != MS_OK)
        return cli_fail(err, "--keystore %s: %s", dir, detail);
    err = ms_keystore_identity_get(*ks, id);
    if (err != MS_OK)
        return cli_fail(err, "--keystore %s: the KMS's identifier scheme is unknown", dir);
    const char *uri = cli_get(args, "--uri");
    if (uri != NULL && strcmp(uri, id->user_uri) != 0)
        return cli_fail(MS_ERR_USAGE, "--uri %s: the keystore is for %s", uri, id->user_uri);
    return MS_OK;
}

static ms_err load_kms_opts(const struct cli_args *args, struct kms_opts *k,
                            const ms_keystore_identity *id)
{
    ms_err err;
    if (id != NULL) {
        /* The community comes from the keystore; the profile defaults to its scheme. */
        const char *prof = cli_get(args, "--profile");
        if (cli_get(args, "--period-len") != NULL || cli_get(args, "--period-offset") != NULL)
            return cli_fail(MS_ERR_USAGE, "--period-len/--period-offset: taken from "
                                          "--keystore; leave them out");
        if (prof != NULL)
            err = parse_profile(prof, &k->profile);
        else
            k->profile = id->scheme.scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY
                             ? MS_MIKEY_PROFILE_RFC6509
                             : MS_MIKEY_PROFILE_PCK;
        if (prof != NULL && err != MS_OK)
            return err;
        k->scheme = id->scheme;
        k->scheme.kms_uri = NULL;
        if ((k->scheme.scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) !=
            (k->profile == MS_MIKEY_PROFILE_RFC6509))
            return cli_fail(MS_ERR_USAGE, "--profile %s: does not fit the keystore's KMS "
                            "(%s identifiers)", profile_name(k->profile),
                            k->profile == MS_MIKEY_PROFILE_RFC6509 ? "hashed UID"
                                                                   : "monthly tel");
        k->uri = id->kms_uri;
        memcpy(k->Z, id->Z, sizeof k->Z);
        memcpy(k->kpak, id->kpak, sizeof k->kpak);
    } else {
        err = parse_profile(cli_get(args, "--profile"), &k->profile);
        if (err != MS_OK)
            return err;
        err = load_scheme(args, k->profile, &k->scheme);
        if (err != MS_OK)
            return err;
        k->uri = cli_get(args, "--kms");
        err = cli_hex_arg_fixed("--public", cli_get(args, "--public"), k->Z, sizeof k->Z);
        if (err == MS_OK)
            err = cli_hex_arg_fixed("--kpak", cli_get(args, "--kpak"), k->kpak,
                                    sizeof k->kpak);
        if (err != MS_OK)
            return err;
    }

    const char *pu = cli_get(args, "--peer-kms");
    const char *pz = cli_get(args, "--peer-public");
    const char *pk = cli_get(args, "--peer-kpak");
    k->peer_uri = k->uri;
    if (pu == NULL && pz == NULL && pk == NULL)
        return MS_OK;
    if (pu == NULL || pz == NULL || pk == NULL)
        return cli_fail(MS_ERR_USAGE,
                        "--peer-kms, --peer-public and --peer-kpak go together");
    if (strcmp(pu, k->uri) == 0)
        return cli_fail(MS_ERR_USAGE, "--peer-kms %s: the same as --kms", pu);
    k->peer_uri = pu;
    k->has_peer = 1;
    err = cli_hex_arg_fixed("--peer-public", pz, k->peer_Z, sizeof k->peer_Z);
    if (err == MS_OK)
        err = cli_hex_arg_fixed("--peer-kpak", pk, k->peer_kpak, sizeof k->peer_kpak);
    return err;
}

/* Errors of ms_mikey_add_kms name the option the value came from. */
static ms_err kms_fail(ms_err err, int peer)
{
    const char *p = peer ? "--peer-" : "--";
    if (err == MS_ERR_KPAK_INVALID)
        return cli_fail(err, "%skpak", p);
    if (err == MS_ERR_KMS_PUBLIC_INVALID || err == MS_ERR_POINT_NOT_ON_CURVE ||
        err == MS_ERR_POINT_ORDER || err == MS_ERR_BAD_ENCODING)
        return cli_fail(err, "%spublic or %skpak", p, p);
    return cli_fail(err, "%skms", p);
}

/* The context: own KMS first (so it is the default), then the peer's. */
static ms_err make_ctx(ms_mikey_ctx **ctx, const struct kms_opts *k, const char *own_uri,
                       uint64_t max_skew, uint64_t (*clock)(void *), void *clock_ctx,
                       const ms_keystore *ks)
{
    ms_mikey_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.profile = k->profile;
    cfg.own_uri = own_uri;
    cfg.max_skew = max_skew;
    cfg.prepare = false; /* one message per run: tables would cost more than they save */
    cfg.clock = clock;
    cfg.clock_ctx = clock_ctx;
    ms_err err = ms_mikey_ctx_new(ctx, &cfg);
    if (err != MS_OK)
        return err == MS_ERR_IDENTITY ? cli_fail(err, "--uri %s", own_uri)
                                      : cli_fail(err, "creating the MIKEY context");

    ms_mikey_kms_info info;
    memset(&info, 0, sizeof info);
    info.uri = k->uri;
    info.scheme = k->scheme;
    info.Z = k->Z;
    info.kpak = k->kpak;
    if (ks != NULL) {
        /* Own KMS and every held key period from the keystore. */
        char detail[512] = "";
        size_t n = 0;
        err = ms_keystore_load_mikey(ks, *ctx, &n, *(const uint64_t *)clock_ctx >> 32, detail,
                                     sizeof detail);
        if (err != MS_OK)
            return cli_fail(err, "--keystore: %s", detail);
    } else {
        err = ms_mikey_add_kms(*ctx, &info);
    }
    if (err != MS_OK)
        return kms_fail(err, 0);
    if (k->has_peer) {
        info.uri = k->peer_uri;
        info.Z = k->peer_Z;
        info.kpak = k->peer_kpak;
        err = ms_mikey_add_kms(*ctx, &info);
        if (err != MS_OK)
            return kms_fail(err, 1);
    }
    return MS_OK;
}

static uint64_t fixed_clock(void *c)
{
    return *(const uint64_t *)c;
}

/* ---- message input and output ------------------------------------------------------------ */

static int is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=';
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Reads --in and finds the binary message in it: a binary message starts with the
 * version octet 1, which is not text; text is either SDP (the first line holding
 * "key-mgmt:") or bare base64. *msg is malloc'd. *what says which was found. */
static ms_err read_message(const struct cli_args *args, uint8_t **msg, size_t *msg_len,
                           const char **what)
{
    const char *path = cli_get(args, "--in");
    if (path == NULL)
        path = "-";
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_err err = cli_read_input("--in", path, &buf, &len);
    if (err != MS_OK)
        return err;
    *msg = NULL;
    *msg_len = 0;
    if (len == 0) {
        free(buf);
        return cli_fail(MS_ERR_MIKEY_MALFORMED, "--in %s: empty", path);
    }
    if (buf[0] < 0x20 || buf[0] >= 0x7F) {
        if (len > MS_MIKEY_MAX_MESSAGE) {
            free(buf);
            return cli_fail(MS_ERR_MIKEY_UNSUPPORTED, "--in %s: %zu octets, more than %d",
                            path, len, MS_MIKEY_MAX_MESSAGE);
        }
        *msg = buf;
        *msg_len = len;
        *what = "binary";
        return MS_OK;
    }

    /* Text: NUL-terminate a copy so line searches stay inside it. */
    char *text = malloc(len + 32);
    uint8_t *out = malloc(MS_MIKEY_MAX_MESSAGE);
    if (text == NULL || out == NULL) {
        err = cli_fail(MS_ERR_NOMEM, "--in %s", path);
        goto done;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        err = cli_fail(MS_ERR_MIKEY_MALFORMED, "--in %s: text with a NUL octet", path);
        goto done;
    }

    ms_mikey_diag diag;
    memset(&diag, 0, sizeof diag);
    size_t out_len = 0;
    char *km = strstr(text, "key-mgmt:");
    if (km != NULL) {
        /* The attribute line: from "a=" (if it is there) to the end of its line. */
        char *start = km;
        if (km - text >= 2 && km[-2] == 'a' && km[-1] == '=')
            start = km - 2;
        size_t line_len = strcspn(start, "\r\n");
        if (start[line_len] == '\r' && start[line_len + 1] == '\n')
            line_len += 2;
        else if (start[line_len] == '\n')
            line_len += 1;
        err = ms_sdp_key_mgmt_parse(out, MS_MIKEY_MAX_MESSAGE, &out_len, start, line_len,
                                    &diag);
        if (err != MS_OK) {
            err = cli_fail(err, "--in %s: SDP attribute, offset %zu: %s", path, diag.offset,
                           diag.detail);
            goto done;
        }
        *what = "sdp";
    } else {
        /* Bare base64 with surrounding white space: decoded by the strict SDP decoder. */
        size_t a = 0, b = len;
        while (a < b && is_space((unsigned char)text[a]))
            a++;
        while (b > a && is_space((unsigned char)text[b - 1]))
            b--;
        for (size_t i = a; i < b; i++)
            if (!is_b64((unsigned char)text[i])) {
                err = cli_fail(MS_ERR_BAD_ENCODING,
                               "--in %s: neither a binary MIKEY message, nor base64, nor an "
                               "SDP a=key-mgmt line (character at offset %zu)",
                               path, i);
                goto done;
            }
        static const char prefix[] = "a=key-mgmt:mikey ";
        size_t plen = sizeof prefix - 1;
        char *line = malloc(plen + (b - a) + 1);
        if (line == NULL) {
            err = cli_fail(MS_ERR_NOMEM, "--in %s", path);
            goto done;
        }
        memcpy(line, prefix, plen);
        memcpy(line + plen, text + a, b - a);
        line[plen + (b - a)] = '\0';
        err = ms_sdp_key_mgmt_parse(out, MS_MIKEY_MAX_MESSAGE, &out_len, line, plen + (b - a),
                                    &diag);
        free(line);
        if (err != MS_OK) {
            size_t off = diag.offset >= plen ? diag.offset - plen : 0;
            err = cli_fail(err == MS_ERR_SDP ? MS_ERR_BAD_ENCODING : err,
                           "--in %s: base64, offset %zu: %s", path, a + off, diag.detail);
            goto done;
        }
        *what = "base64";
    }
    *msg = out;
    *msg_len = out_len;
    out = NULL;
done:
    free(out);
    free(text);
    free(buf);
    return err;
}

enum { FMT_BINARY, FMT_BASE64, FMT_SDP };

static ms_err parse_format(const char *s, int *fmt)
{
    if (s == NULL || strcmp(s, "base64") == 0)
        *fmt = FMT_BASE64;
    else if (strcmp(s, "binary") == 0)
        *fmt = FMT_BINARY;
    else if (strcmp(s, "sdp") == 0)
        *fmt = FMT_SDP;
    else
        return cli_fail(MS_ERR_USAGE, "--format %s: not binary, base64 or sdp", s);
    return MS_OK;
}

/* Writes the (public) message in the chosen format to path, or stdout if NULL/"-". */
static ms_err write_message(const char *path, int fmt, const uint8_t *msg, size_t len)
{
    char *line = NULL;
    const void *data = msg;
    size_t n = len;
    ms_err err = MS_OK;
    if (fmt != FMT_BINARY) {
        line = malloc(MS_SDP_KEY_MGMT_MAX + 2);
        if (line == NULL)
            return cli_fail(MS_ERR_NOMEM, "--out");
        err = ms_sdp_key_mgmt_format(line, MS_SDP_KEY_MGMT_MAX + 1, msg, len);
        if (err != MS_OK) {
            free(line);
            return cli_fail(err, "--format: encoding the message");
        }
        /* base64: the attribute without its "a=key-mgmt:mikey " prefix. */
        const char *start = line;
        if (fmt == FMT_BASE64) {
            const char *sp = strchr(line, ' ');
            start = sp != NULL ? sp + 1 : line;
        }
        n = strlen(start);
        memmove(line, start, n);
        line[n++] = '\n';
        data = line;
    }
    int to_stdout = path == NULL || strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (f == NULL) {
        err = cli_fail(MS_ERR_IO, "--out %s: %s", path, strerror(errno));
    } else {
        if (fwrite(data, 1, n, f) != n)
            err = cli_fail(MS_ERR_IO, "--out %s: %s", to_stdout ? "standard output" : path,
                           strerror(errno));
        if (!to_stdout && fclose(f) != 0 && err == MS_OK)
            err = cli_fail(MS_ERR_IO, "--out %s: %s", path, strerror(errno));
        if (to_stdout && fflush(stdout) != 0 && err == MS_OK)
            err = cli_fail(MS_ERR_IO, "standard output");
    }
    free(line);
    return err;
}

/* ---- results ------------------------------------------------------------------------------ */

/* The crypto sessions keys are derived for: those of the CS ID map, or with #CS = 0 the
 * TS 33.180 Table E.1.3-1 sessions of the key type (PCK: both private call streams;
 * CSK: SRTCP protection for MCPTT). */
static size_t session_ids(const ms_mikey_result *res, uint8_t ids[MS_MIKEY_MAX_CS])
{
    if (res->n_cs > 0) {
        for (uint8_t i = 0; i < res->n_cs; i++)
            ids[i] = res->cs[i].cs_id;
        return res->n_cs;
    }
    switch (res->profile) {
    case MS_MIKEY_PROFILE_PCK:
        ids[0] = 0;
        ids[1] = 1;
        return 2;
    case MS_MIKEY_PROFILE_CSK:
        ids[0] = 6;
        return 1;
    case MS_MIKEY_PROFILE_GMK:
        ids[0] = 4;
        return 1;
    case MS_MIKEY_PROFILE_RFC6509:
        ids[0] = 1;
        return 1;
    }
    return 0;
}

/* Text from a received message goes to a terminal: control and non-ASCII octets are
 * shown as \xHH so a message cannot send escape sequences. */
static void print_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p >= 0x20 && *p < 0x7F && *p != '\\')
            putchar(*p);
        else
            printf("\\x%02X", *p);
    }
}

static void print_field(const char *name, const char *value)
{
    printf("%s = ", name);
    print_text(value);
    putchar('\n');
}

/* Prints "name = value" lines; the key and the SRTP keys go out through cli_print_hex so
 * no copy stays in a stdio buffer. */
static ms_err print_result(const ms_mikey_result *res)
{
    char when[32];
    cli_time_format(when, res->timestamp);
    printf("profile = %s\n", profile_name(res->profile));
    if (res->initiator[0] != '\0')
        print_field("initiator", res->initiator);
    if (res->initiator_hidden) {
        printf("initiator-uid = ");
        ms_err e = cli_print_hex(res->initiator_uid, sizeof res->initiator_uid);
        if (e != MS_OK)
            return e;
    }
    if (res->initiator_kms[0] != '\0')
        print_field("initiator-kms", res->initiator_kms);
    if (res->responder[0] != '\0')
        print_field("responder", res->responder);
    printf("timestamp = %s (NTP %016llX)\n", when, (unsigned long long)res->timestamp);
    printf("period = %llu\n", (unsigned long long)res->period_no);
    printf("csb-id = %08lX\n", (unsigned long)res->csb_id);
    printf("key-id = %08lX\n", (unsigned long)res->key_id);
    if (res->has_key_params) {
        const ms_mikey_key_params *kp = &res->key_params;
        char act[32] = "0", exp[32] = "0";
        /* 40-bit NTP seconds; 0 = not set */
        if (kp->activation <= CLI_NTP_ERA0_LAST && kp->activation != 0)
            cli_time_format(act, kp->activation << 32);
        else
            snprintf(act, sizeof act, "%llu", (unsigned long long)kp->activation);
        if (kp->expiry <= CLI_NTP_ERA0_LAST && kp->expiry != 0)
            cli_time_format(exp, kp->expiry << 32);
        else
            snprintf(exp, sizeof exp, "%llu", (unsigned long long)kp->expiry);
        printf("key-params = type %u, status %lu, activation %s, expiry %s, text \"",
               kp->key_type, (unsigned long)kp->status, act, exp);
        print_text(kp->text);
        printf("\"\n");
    }
    printf("key = ");
    ms_err err = cli_print_hex(res->key, res->key_len);
    if (err != MS_OK)
        return err;

    /* RFC 6509: AES-CM (16-octet key, 14-octet salt); TS 33.180: AES-GCM (16, 12). */
    size_t salt_len = res->profile == MS_MIKEY_PROFILE_RFC6509 ? 14 : 12;
    uint8_t ids[MS_MIKEY_MAX_CS];
    size_t n = session_ids(res, ids);
    for (size_t i = 0; i < n && err == MS_OK; i++) {
        ms_srtp_keys k;
        err = ms_mikey_srtp_keys(&k, res, ids[i], 16, salt_len);
        if (err != MS_OK) {
            err = cli_fail(err, "deriving the SRTP keys of crypto session %u", ids[i]);
            break;
        }
        printf("cs %u master-key = ", ids[i]);
        err = cli_print_hex(k.master_key, k.key_len);
        if (err == MS_OK) {
            printf("cs %u master-salt = ", ids[i]);
            err = cli_print_hex(k.master_salt, k.salt_len);
        }
        if (err == MS_OK && k.mki_len > 0) {
            printf("cs %u mki = ", ids[i]);
            err = cli_print_hex(k.mki, k.mki_len);
        }
        ms_wipe(&k, sizeof k);
    }
    return err;
}

/* --verbose: the identifiers of this period (public values); a NULL URI is skipped. */
static void trace_ids(const struct kms_opts *k, const char *initiator, const char *ikms,
                      const char *responder, const char *rkms, uint64_t ntp)
{
    uint64_t period = 0;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    if (ms_key_period(&k->scheme, &period, ntp >> 32) != MS_OK)
        return;
    fprintf(stderr, "period = %llu\n", (unsigned long long)period);
    ms_id_scheme s = k->scheme;
    s.kms_uri = ikms;
    if (initiator != NULL &&
        ms_identifier(&s, id, sizeof id, &id_len, initiator, period) == MS_OK)
        cli_trace_hex("IDi", id, id_len);
    s.kms_uri = rkms;
    if (responder != NULL &&
        ms_identifier(&s, id, sizeof id, &id_len, responder, period) == MS_OK)
        cli_trace_hex("IDr", id, id_len);
}

/* ---- mikey init ---------------------------------------------------------------------------- */

/* --key-params SPEC: comma-separated items, each optional: type=N (purpose tag, default
 * the profile's), status=N (default 1: bit 0 set = not revoked), activation=TIME and
 * expiry=TIME (as --time, or 0 = not set; sent as 40-bit NTP seconds), and last
 * text=ANYTHING (the rest of SPEC, commas included). An empty SPEC takes every default. */
static ms_err parse_key_params(const char *spec, ms_mikey_profile profile,
                               ms_mikey_key_params *kp)
{
    memset(kp, 0, sizeof *kp);
    kp->key_type = profile == MS_MIKEY_PROFILE_GMK   ? MS_MIKEY_PURPOSE_GMK
                   : profile == MS_MIKEY_PROFILE_CSK ? MS_MIKEY_PURPOSE_CSK
                                                     : MS_MIKEY_PURPOSE_PCK;
    kp->status = 1;
    kp->has_group_ids = profile == MS_MIKEY_PROFILE_GMK;
    const char *p = spec;
    while (*p != '\0') {
        if (strncmp(p, "text=", 5) == 0) {
            size_t tlen = strlen(p + 5);
            if (tlen >= sizeof kp->text)
                return cli_fail(MS_ERR_USAGE, "--key-params: text longer than %zu octets",
                                sizeof kp->text - 1);
            memcpy(kp->text, p + 5, tlen + 1);
            break;
        }
        size_t n = strcspn(p, ",");
        char item[64];
        if (n >= sizeof item)
            return cli_fail(MS_ERR_USAGE, "--key-params: item too long");
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        if (eq == NULL)
            goto bad;
        *eq = '\0';
        const char *val = eq + 1;
        uint64_t v = 0;
        ms_err err;
        if (strcmp(item, "activation") == 0 || strcmp(item, "expiry") == 0) {
            if (strcmp(val, "0") != 0) {
                err = cli_time_arg("--key-params", val, &v);
                if (err != MS_OK)
                    return err;
                v >>= 32;
            }
            if (item[0] == 'a')
                kp->activation = v;
            else
                kp->expiry = v;
        } else if (strcmp(item, "status") == 0 || strcmp(item, "type") == 0) {
            err = parse_u64("--key-params", val, &v);
            if (err != MS_OK)
                return err;
            if (item[0] == 's' && v <= UINT32_MAX)
                kp->status = (uint32_t)v;
            else if (item[0] == 't' && v <= 15)
                kp->key_type = (uint8_t)v;
            else
                goto bad;
        } else {
            goto bad;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return MS_OK;
bad:
    return cli_fail(MS_ERR_USAGE, "--key-params %s: not type=N, status=N, activation=TIME, "
                                  "expiry=TIME, text=...", spec);
}

ms_err cli_mikey_init(const struct cli_args *args)
{
    const char *uri = cli_get(args, "--uri");
    const char *to = cli_get(args, "--to");
    const char *ssk_path = cli_get(args, "--ssk");
    const char *time_s = cli_get(args, "--time");
    const char *key_path = cli_get(args, "--key");
    const char *key_id_s = cli_get(args, "--key-id");
    const char *kp_spec = cli_get(args, "--key-params");
    const char *out_path = cli_get(args, "--out");
    int want_keys = cli_get(args, "--keys") != NULL;
    int to_stdout = out_path == NULL || strcmp(out_path, "-") == 0;

    struct kms_opts *k = calloc(1, sizeof *k);
    ms_mikey_init_params *p = calloc(1, sizeof *p);
    ms_mikey_result *res = calloc(1, sizeof *res);
    uint8_t *msg = malloc(MS_MIKEY_MAX_MESSAGE);
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
    uint8_t key[MS_SAKKE_SSV_BYTES];
    ms_mikey_ctx *ctx = NULL;
    size_t msg_len = 0;
    uint64_t ntp = 0, period = 0;
    int fmt = FMT_BASE64;
    ms_err err = MS_OK;
    static const char *const from_ks[] = {"--uri", "--kms", "--public", "--kpak", "--ssk",
                                          "--pvt"};
    ms_keystore *ks = NULL;
    ms_keystore_identity *id = NULL;

    if (k == NULL || p == NULL || res == NULL || msg == NULL) {
        err = cli_fail(MS_ERR_NOMEM, "mikey init");
        goto out;
    }
    err = keystore_conflicts(args, from_ks, sizeof from_ks / sizeof from_ks[0]);
    if (err == MS_OK && cli_get(args, "--keystore") != NULL) {
        id = calloc(1, sizeof *id);
        err = id == NULL ? cli_fail(MS_ERR_NOMEM, "mikey init") : open_keystore(args, &ks, id);
        if (err == MS_OK)
            uri = id->user_uri;
    }
    if (err == MS_OK)
        err = load_kms_opts(args, k, id);
    if (err == MS_OK)
        err = parse_format(cli_get(args, "--format"), &fmt);
    if (err != MS_OK)
        goto out;
    if (want_keys && to_stdout && fmt == FMT_BINARY) {
        err = cli_fail(MS_ERR_USAGE, "--keys with --format binary needs --out FILE");
        goto out;
    }
    int is_3gpp = k->profile != MS_MIKEY_PROFILE_RFC6509;
    if (!is_3gpp && (kp_spec != NULL || cli_get(args, "--sakke-to-self") != NULL ||
                     cli_get(args, "--hide-ids") != NULL)) {
        err = cli_fail(MS_ERR_USAGE, "--key-params, --sakke-to-self and --hide-ids need a "
                                     "3GPP --profile (pck, gmk, csk)");
        goto out;
    }
    if (time_s != NULL)
        err = cli_time_arg("--time", time_s, &ntp);
    else
        ntp = ms_ntp_now();
    if (err == MS_OK && ks == NULL)
        err = cli_hex_arg_fixed("--pvt", cli_get(args, "--pvt"), pvt, sizeof pvt);
    if (err == MS_OK && key_id_s != NULL) {
        uint8_t b[4];
        err = cli_hex_arg_fixed("--key-id", key_id_s, b, sizeof b);
        p->key_id = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (err == MS_OK && p->key_id == 0)
            err = cli_fail(MS_ERR_USAGE, "--key-id: 0 means \"random\"; leave it out");
    }
    if (err == MS_OK && kp_spec != NULL)
        err = parse_key_params(kp_spec, k->profile, &p->key_params);
    if (err != MS_OK)
        goto out;

    err = ms_key_period(&k->scheme, &period, ntp >> 32);
    if (err != MS_OK) {
        err = cli_fail(err, "--time: no key period (before --period-offset?)");
        goto out;
    }
    if (ks == NULL) {
        err = cli_read_secret("--ssk", ssk_path, ssk, sizeof ssk, sizeof ssk);
        if (err != MS_OK)
            goto out;
    }
    if (key_path != NULL) {
        err = cli_read_secret("--key", key_path, key, sizeof key, sizeof key);
        if (err != MS_OK)
            goto out;
        p->key = key;
        p->key_len = sizeof key;
    }

    err = make_ctx(&ctx, k, uri, 0, fixed_clock, &ntp, ks);
    if (err != MS_OK)
        goto out;
    if (ks != NULL) {
        ms_keyset *held = calloc(1, sizeof *held);
        char detail[512] = "";
        err = held == NULL ? MS_ERR_NOMEM
                           : ms_keystore_get(ks, held, NULL, period, detail, sizeof detail);
        if (held != NULL) {
            ms_keyset_wipe(held);
            free(held);
        }
        if (err != MS_OK) {
            err = cli_fail(err, "--keystore: no signing keys for key period %llu of --time "
                           "(user import them)", (unsigned long long)period);
            goto out;
        }
    } else {
        err = ms_mikey_add_keys(ctx, k->uri, period, NULL, ssk, pvt);
    }
    if (err == MS_ERR_IDENTITY) {
        err = cli_fail(err, "--uri %s: no identifier under --profile %s", uri,
                       profile_name(k->profile));
        goto out;
    }
    if (err != MS_OK) {
        err = cli_fail(err, "--ssk %s and --pvt: own keys for period %llu", ssk_path,
                       (unsigned long long)period);
        goto out;
    }
    if (args->verbose)
        trace_ids(k, uri, k->uri, to, k->peer_uri, ntp);

    p->responder = to;
    p->responder_kms = k->peer_uri;
    p->own_kms = k->uri;
    p->timestamp = ntp;
    p->prf = is_3gpp ? MS_MIKEY_PRF_HMAC_SHA256 : MS_MIKEY_PRF_MIKEY1;
    p->sakke_to_self = cli_get(args, "--sakke-to-self") != NULL;
    p->hide_identities = cli_get(args, "--hide-ids") != NULL;
    p->with_key_params = kp_spec != NULL;
    err = ms_mikey_initiate(ctx, msg, MS_MIKEY_MAX_MESSAGE, &msg_len, res, p);
    if (err != MS_OK) {
        if (err == MS_ERR_IDENTITY)
            err = cli_fail(err, "--uri %s or --to %s", uri, to);
        else if (err == MS_ERR_MIKEY_UNKNOWN_KMS)
            err = cli_fail(err, "--kms/--peer-kms");
        else if (err == MS_ERR_ARG)
            err = cli_fail(err, "mikey init: --key-id (purpose tag), --key or --key-params "
                                "do not fit --profile %s", profile_name(k->profile));
        else
            err = cli_fail(err, "mikey init: building the I_MESSAGE");
        goto out;
    }
    err = write_message(out_path, fmt, msg, msg_len);
    if (err == MS_OK && want_keys)
        err = print_result(res);

out:
    if (ctx != NULL)
        ms_mikey_ctx_free(ctx);
    ms_keystore_close(ks);
    free(id);
    ms_wipe(ssk, sizeof ssk);
    ms_wipe(key, sizeof key);
    if (res != NULL) {
        ms_mikey_result_wipe(res);
        free(res);
    }
    if (p != NULL) {
        ms_wipe(p, sizeof *p);
        free(p);
    }
    free(k);
    free(msg);
    return err;
}

/* ---- mikey respond -------------------------------------------------------------------------- */

ms_err cli_mikey_respond(const struct cli_args *args)
{
    const char *uri = cli_get(args, "--uri");
    const char *rsk_path = cli_get(args, "--rsk");
    const char *period_s = cli_get(args, "--period");
    const char *expect = cli_get(args, "--expect-from");
    const char *now_s = cli_get(args, "--now");
    const char *skew_s = cli_get(args, "--max-skew");
    const char *in_path = cli_get(args, "--in");

    struct kms_opts *k = calloc(1, sizeof *k);
    ms_mikey_result *res = calloc(1, sizeof *res);
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    const char *what = "";
    ms_mikey_ctx *ctx = NULL;
    uint64_t now = 0, period = 0, skew = 0;
    ms_err err = MS_OK;
    static const char *const from_ks[] = {"--uri", "--kms", "--public", "--kpak", "--rsk"};
    ms_keystore *ks = NULL;
    ms_keystore_identity *id = NULL;

    if (k == NULL || res == NULL) {
        err = cli_fail(MS_ERR_NOMEM, "mikey respond");
        goto out;
    }
    if (in_path == NULL)
        in_path = "-";
    err = keystore_conflicts(args, from_ks, sizeof from_ks / sizeof from_ks[0]);
    if (err == MS_OK && cli_get(args, "--keystore") != NULL) {
        if (period_s != NULL)
            err = cli_fail(MS_ERR_USAGE, "--period: with --keystore every held period is "
                                         "used; leave it out");
        id = calloc(1, sizeof *id);
        if (err == MS_OK)
            err = id == NULL ? cli_fail(MS_ERR_NOMEM, "mikey respond")
                             : open_keystore(args, &ks, id);
        if (err == MS_OK)
            uri = id->user_uri;
    }
    if (err == MS_OK)
        err = load_kms_opts(args, k, id);
    if (err == MS_OK && now_s != NULL)
        err = cli_time_arg("--now", now_s, &now);
    else if (err == MS_OK)
        now = ms_ntp_now();
    if (err == MS_OK && skew_s != NULL) {
        err = parse_u64("--max-skew", skew_s, &skew);
        if (err == MS_OK && skew == 0)
            err = cli_fail(MS_ERR_USAGE, "--max-skew: must be at least 1 second");
    }
    if (err == MS_OK && period_s != NULL)
        err = parse_u64("--period", period_s, &period);
    else if (err == MS_OK && ms_key_period(&k->scheme, &period, now >> 32) != MS_OK)
        err = cli_fail(MS_ERR_ARG, "--now: no key period (before --period-offset?)");
    if (err != MS_OK)
        goto out;
    err = read_message(args, &msg, &msg_len, &what);
    if (err != MS_OK)
        goto out;
    if (ks == NULL) {
        err = cli_read_secret("--rsk", rsk_path, rsk, sizeof rsk, sizeof rsk);
        if (err != MS_OK)
            goto out;
    }

    err = make_ctx(&ctx, k, uri, skew, fixed_clock, &now, ks);
    if (err != MS_OK)
        goto out;
    if (ks == NULL)
        err = ms_mikey_add_keys(ctx, k->uri, period, rsk, NULL, NULL);
    if (err == MS_ERR_IDENTITY) {
        err = cli_fail(err, "--uri %s: no identifier under --profile %s", uri,
                       profile_name(k->profile));
        goto out;
    }
    if (err != MS_OK) {
        err = cli_fail(err, "--rsk %s: own key for period %llu", rsk_path,
                       (unsigned long long)period);
        goto out;
    }
    if (args->verbose) {
        fprintf(stderr, "input = %s, %zu octets\n", what, msg_len);
        trace_ids(k, NULL, NULL, uri, k->uri, now);
    }

    ms_mikey_diag diag;
    memset(&diag, 0, sizeof diag);
    err = ms_mikey_respond(ctx, res, msg, msg_len, expect, &diag);
    if (err == MS_OK && expect != NULL && res->initiator_hidden && res->initiator[0] == '\0') {
        /* Identity hiding: the expected initiator is the URI learnt from the signalling. */
        err = ms_mikey_confirm_initiator(ctx, res, expect);
        if (err != MS_OK) {
            snprintf(diag.detail, sizeof diag.detail,
                     "the initiator's UID is not the UID of %s", expect);
            diag.payload = MS_MIKEY_PT_IDR;
        }
    }
    if (err != MS_OK) {
        /* The exact reason: the check that failed, where, and its name. */
        if (diag.detail[0] != '\0')
            err = cli_fail(err, "--in %s: refused (%s) at %s, offset %zu: %s", in_path,
                           ms_errname(err),
                           diag.payload == MS_MIKEY_PT_HDR ? "HDR"
                                                           : ms_mikey_payload_name(diag.payload),
                           diag.offset, diag.detail);
        else
            err = cli_fail(err, "--in %s: refused (%s)", in_path, ms_errname(err));
        goto out;
    }
    err = print_result(res);

out:
    if (ctx != NULL)
        ms_mikey_ctx_free(ctx);
    ms_keystore_close(ks);
    free(id);
    ms_wipe(rsk, sizeof rsk);
    if (res != NULL) {
        ms_mikey_result_wipe(res);
        free(res);
    }
    free(k);
    free(msg);
    return err;
}

/* ---- mikey inspect -------------------------------------------------------------------------- */

ms_err cli_mikey_inspect(const struct cli_args *args)
{
    const char *in_path = cli_get(args, "--in");
    int json = cli_get(args, "--json") != NULL;
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    const char *what = "";
    if (in_path == NULL)
        in_path = "-";

    ms_err err = read_message(args, &msg, &msg_len, &what);
    if (err != MS_OK)
        return err;
    ms_mikey_message *m = calloc(1, sizeof *m);
    if (m == NULL) {
        free(msg);
        return cli_fail(MS_ERR_NOMEM, "mikey inspect");
    }
    ms_mikey_diag diag;
    memset(&diag, 0, sizeof diag);
    err = ms_mikey_parse(m, msg, msg_len, &diag);
    if (err != MS_OK) {
        err = cli_fail(err, "--in %s: %s at %s, offset %zu: %s", in_path, ms_errname(err),
                       diag.payload == MS_MIKEY_PT_HDR ? "HDR"
                                                       : ms_mikey_payload_name(diag.payload),
                       diag.offset, diag.detail);
    } else {
        if (args->verbose)
            fprintf(stderr, "input = %s, %zu octets\n", what, msg_len);
        err = ms_mikey_print(stdout, m, json);
        if (err != MS_OK)
            err = cli_fail(err, "mikey inspect: printing");
    }
    free(m);
    free(msg);
    return err;
}

/* ---- mikey id, mikey uid -------------------------------------------------------------------- */

ms_err cli_mikey_id(const struct cli_args *args)
{
    const char *uri = cli_get(args, "--uri");
    const char *time_s = cli_get(args, "--time");
    ms_id_scheme s = {.scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY};
    uint64_t ntp = 0, period = 0;
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    ms_err err = MS_OK;

    if (time_s != NULL)
        err = cli_time_arg("--time", time_s, &ntp);
    else
        ntp = ms_ntp_now();
    if (err != MS_OK)
        return err;
    err = ms_key_period(&s, &period, ntp >> 32);
    if (err == MS_OK)
        err = ms_identifier(&s, id, sizeof id, &id_len, uri, period);
    if (err != MS_OK)
        return cli_fail(err, "--uri %s: not a global tel URI without separators", uri);
    if (args->verbose)
        fprintf(stderr, "period = %llu\n", (unsigned long long)period);
    return cli_print_hex(id, id_len);
}

ms_err cli_mikey_uid(const struct cli_args *args)
{
    const char *uri = cli_get(args, "--uri");
    const char *kms = cli_get(args, "--kms");
    const char *time_s = cli_get(args, "--time");
    const char *period_s = cli_get(args, "--period");
    ms_id_scheme s;
    uint64_t ntp = 0, period = 0;
    uint8_t uid[MS_ID_UID_BYTES];

    ms_err err = load_scheme(args, MS_MIKEY_PROFILE_PCK, &s);
    if (err != MS_OK)
        return err;
    s.kms_uri = kms;
    if (time_s != NULL && period_s != NULL)
        return cli_fail(MS_ERR_USAGE, "--time and --period: give one of them");
    if (period_s != NULL) {
        err = parse_u64("--period", period_s, &period);
    } else {
        if (time_s != NULL)
            err = cli_time_arg("--time", time_s, &ntp);
        else
            ntp = ms_ntp_now();
        if (err == MS_OK && ms_key_period(&s, &period, ntp >> 32) != MS_OK)
            err = cli_fail(MS_ERR_ARG, "--time: before --period-offset");
    }
    if (err != MS_OK)
        return err;
    err = ms_uid(uid, uri, kms, s.period_len, s.period_offset, period);
    if (err != MS_OK)
        return cli_fail(err, "--uri %s, --kms %s", uri, kms);
    if (args->verbose)
        fprintf(stderr, "period = %llu\n", (unsigned long long)period);
    return cli_print_hex(uid, sizeof uid);
}
