/*
 * The key side of a call (keys.h): MIKEY-SAKKE offers from a device keystore, their
 * checks for a live call, a stored voicemail and the auditor, and the SIP refusal each
 * failed check turns into.
 *
 * Contexts. A device keeps one MIKEY context loaded from its keystore for the whole
 * session: it makes offers and, in live mode, checks them with the clock window and the
 * replay cache. Stored and audit modes judge each message with a clock that reads the
 * message's own T: the window is then void, the period of T is the one the keys must
 * cover (ms_mikey_respond checks the keys are held) and key parameters are judged at the
 * time the message was made. Stored mode opens each message in a fresh context loaded
 * from the keystore, so nothing is a replay there (the player reports replays itself);
 * the auditor keeps one context for all messages (its KMS tables are costly to build).
 * Neither has a replay cache: a recorded message may be opened any number of times.
 *
 * SRTP keys. TS 33.180's PCK has no CS ID map; its private-call crypto session 0 keys
 * the call here, in both directions (the call's two SSRCs differ). RFC 6509 uses the
 * first (and only) session of its SRTP-ID map, CS ID 1.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call/keys.h"
#include "crypto/rng.h"
#include "crypto/secmem.h"
#include "util/detail.h"

#define DEFAULT_SKEW 300u
#define URI_CAP 256
#define OPUS_PT 96

struct ms_call_keys {
    ms_call_keys_options opt;
    char own_uri[URI_CAP];
    ms_keystore *ks;         /* device modes */
    ms_mikey_ctx *ctx;       /* device: offers and live checks */
    /* audit: one user's RSK of one period and the KMS's public keys */
    uint8_t *rsk;            /* MS_SAKKE_POINT_BYTES in secure memory */
    uint64_t period_no;
    char kms_uri[URI_CAP];
    char scheme_kms_uri[URI_CAP];
    ms_id_scheme scheme;
    uint8_t Z[MS_SAKKE_POINT_BYTES];
    uint8_t kpak[MS_ECCSI_POINT_BYTES];
    /* audit: one context for every message, its clock set to each message's T (building
     * the KMS's tables per message cost ~40 ms) */
    ms_mikey_ctx *audit_ctx;
    uint64_t audit_t;
};

static ms_err refuse(ms_call_refusal *why, int status, ms_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ms_err refuse(ms_call_refusal *why, int status, ms_err err, const char *fmt, ...)
{
    if (why != NULL) {
        why->sip_status = status;
        why->err = err;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->warning, sizeof why->warning, fmt, ap);
        va_end(ap);
        /* the Warning goes into a quoted header value */
        for (char *p = why->warning; *p != '\0'; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                *p = '\'';
    }
    return err;
}

static uint64_t clock_now(const ms_call_keys_options *opt)
{
    return opt->clock != NULL ? opt->clock(opt->clock_ctx) : ms_ntp_now();
}

static bool is_3gpp(ms_mikey_profile p)
{
    return p == MS_MIKEY_PROFILE_PCK || p == MS_MIKEY_PROFILE_GMK || p == MS_MIKEY_PROFILE_CSK;
}

static void set_options(ms_call_keys *k, const ms_call_keys_options *opt)
{
    if (opt != NULL) {
        k->opt = *opt;
    } else {
        memset(&k->opt, 0, sizeof k->opt);
        k->opt.profile = MS_MIKEY_PROFILE_PCK;
    }
    if (k->opt.max_skew == 0)
        k->opt.max_skew = DEFAULT_SKEW;
    if (k->opt.accepted_suites == 0)
        k->opt.accepted_suites = MS_CALL_SUITE_GCM | MS_CALL_SUITE_CM;
}

static ms_err new_ctx(ms_mikey_ctx **out, const ms_call_keys *k, bool prepare,
                      uint64_t (*clock)(void *), void *clock_ctx)
{
    ms_mikey_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.profile = k->opt.profile;
    cfg.own_uri = k->own_uri;
    cfg.max_skew = k->opt.max_skew;
    cfg.prepare = prepare;
    cfg.clock = clock;
    cfg.clock_ctx = clock_ctx;
    cfg.no_replay_cache = k->opt.mode != MS_CALL_KEYS_LIVE;
    return ms_mikey_ctx_new(out, &cfg);
}

ms_err ms_call_keys_open(ms_call_keys **out, const char *keystore_dir, const char *passphrase,
                         size_t passphrase_len, const ms_call_keys_options *opt, char *detail,
                         size_t detail_cap)
{
    if (detail != NULL && detail_cap > 0)
        detail[0] = '\0';
    if (out == NULL || keystore_dir == NULL || passphrase == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "ms_call_keys_open: NULL argument");
    *out = NULL;
    if (opt != NULL && opt->mode != MS_CALL_KEYS_LIVE && opt->mode != MS_CALL_KEYS_STORED)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                    "a keystore opens in live or stored mode (the auditor uses "
                    "ms_call_keys_open_audit)");
    if (opt != NULL && opt->max_skew > 0xFFFFFFFFu)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "max_skew of %llu s is too large",
                    (unsigned long long)opt->max_skew);
    ms_call_keys *k = calloc(1, sizeof *k);
    if (k == NULL)
        return ms_detail_fail(MS_ERR_NOMEM, detail, detail_cap, "out of memory");
    set_options(k, opt);
    ms_err err = ms_keystore_open(&k->ks, keystore_dir, passphrase, passphrase_len, detail,
                                  detail_cap);
    if (err != MS_OK)
        goto out;
    ms_keystore_identity id;
    if ((err = ms_keystore_identity_get(k->ks, &id)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "%s: the keystore has no readable identity",
             keystore_dir);
        goto out;
    }
    snprintf(k->own_uri, sizeof k->own_uri, "%s", id.user_uri);
    /* The community's identifier scheme fixes the profile: monthly tel identifiers speak
     * RFC 6509, hashed UIDs TS 33.180 (PCK unless another 3GPP profile was asked for). */
    if (id.scheme.scheme == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) {
        k->opt.profile = MS_MIKEY_PROFILE_RFC6509;
        /* RFC 6509's initiator sends RFC 3830's default SRTP policy (SP payload): AES-CM
         * with HMAC-SHA1-80. The media follow the policy the signature covers. */
        k->opt.suite = MS_SRTP_AES_CM_128_HMAC_SHA1_80;
    } else if (!is_3gpp(k->opt.profile))
        k->opt.profile = MS_MIKEY_PROFILE_PCK;
    /* Live calls take the prepared (fast) path; the stored player's context only makes
     * offers, if ever, so the precomputation would be wasted there. */
    const bool live = k->opt.mode == MS_CALL_KEYS_LIVE;
    if ((err = new_ctx(&k->ctx, k, live, k->opt.clock, k->opt.clock_ctx)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "creating the MIKEY context for %s", k->own_uri);
        goto out;
    }
    err = ms_keystore_load_mikey(k->ks, k->ctx, NULL, clock_now(&k->opt) >> 32, detail,
                                 detail_cap);
    /* Every offer also encapsulates to ourselves (SAKKE-to-self): that peer's table is
     * built now, not during a call set-up. Best effort: without it offers are slower. */
    if (err == MS_OK && live && is_3gpp(k->opt.profile) && !k->opt.no_sakke_to_self) {
        ms_err prep = ms_mikey_prepare_peer(k->ctx, k->own_uri, NULL, clock_now(&k->opt));
        (void)prep;
    }
out:
    if (err != MS_OK) {
        ms_call_keys_free(k);
        return err;
    }
    *out = k;
    return MS_OK;
}

static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

ms_err ms_call_keys_open_audit(ms_call_keys **out, const char *user_uri, uint64_t period_no,
                               const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                               const ms_mikey_kms_info *kms, const ms_call_keys_options *opt,
                               char *detail, size_t detail_cap)
{
    if (detail != NULL && detail_cap > 0)
        detail[0] = '\0';
    if (out == NULL || user_uri == NULL || rsk == NULL || kms == NULL || kms->uri == NULL ||
        kms->Z == NULL || kms->kpak == NULL || opt == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "ms_call_keys_open_audit: NULL argument");
    *out = NULL;
    if (opt->mode != MS_CALL_KEYS_AUDIT)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the auditor's options must say "
                                                    "MS_CALL_KEYS_AUDIT");
    if (strlen(user_uri) >= URI_CAP || strlen(user_uri) == 0 || strlen(kms->uri) >= URI_CAP ||
        (kms->scheme.kms_uri != NULL && strlen(kms->scheme.kms_uri) >= URI_CAP))
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap, "user or KMS URI empty or longer "
                                                         "than %d octets", URI_CAP - 1);
    ms_call_keys *k = calloc(1, sizeof *k);
    if (k == NULL)
        return ms_detail_fail(MS_ERR_NOMEM, detail, detail_cap, "out of memory");
    set_options(k, opt);
    k->opt.max_skew = DEFAULT_SKEW; /* unused: each message is judged at its own T */
    snprintf(k->own_uri, sizeof k->own_uri, "%s", user_uri);
    snprintf(k->kms_uri, sizeof k->kms_uri, "%s", kms->uri);
    k->scheme = kms->scheme;
    if (kms->scheme.kms_uri != NULL) {
        snprintf(k->scheme_kms_uri, sizeof k->scheme_kms_uri, "%s", kms->scheme.kms_uri);
        k->scheme.kms_uri = k->scheme_kms_uri;
    }
    memcpy(k->Z, kms->Z, sizeof k->Z);
    memcpy(k->kpak, kms->kpak, sizeof k->kpak);
    k->period_no = period_no;
    k->rsk = ms_secure_alloc(MS_SAKKE_POINT_BYTES);
    if (k->rsk == NULL) {
        ms_call_keys_free(k);
        return ms_detail_fail(MS_ERR_NOMEM, detail, detail_cap, "out of secure memory");
    }
    memcpy(k->rsk, rsk, MS_SAKKE_POINT_BYTES);

    /* Check now that the RSK is this user's for this period, so a wrong file is named at
     * once rather than as "nothing opens". */
    ms_mikey_ctx *ctx = NULL;
    ms_err err = new_ctx(&ctx, k, false, fixed_clock, &k->audit_t);
    if (err != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "creating the MIKEY context for %s", user_uri);
    } else if ((err = ms_mikey_add_kms(ctx, kms)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "the KMS %s does not fit the %s profile (%s)", kms->uri,
             is_3gpp(k->opt.profile) ? "TS 33.180" : "RFC 6509", ms_errname(err));
    } else if ((err = ms_mikey_add_keys(ctx, kms->uri, period_no, rsk, NULL, NULL)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap,
             "the RSK is not the one of %s for key period %llu from KMS %s (%s)", user_uri,
             (unsigned long long)period_no, kms->uri, ms_errname(err));
    }
    k->audit_ctx = ctx; /* kept: every message is opened in it */
    if (err != MS_OK) {
        ms_call_keys_free(k);
        return err;
    }
    *out = k;
    return MS_OK;
}

void ms_call_keys_free(ms_call_keys *k)
{
    if (k == NULL)
        return;
    ms_mikey_ctx_free(k->ctx);
    ms_mikey_ctx_free(k->audit_ctx);
    ms_keystore_close(k->ks);
    ms_secure_free(k->rsk, MS_SAKKE_POINT_BYTES);
    ms_wipe(k, sizeof *k);
    free(k);
}

ms_err ms_call_keys_prepare_peer(ms_call_keys *k, const char *callee_uri)
{
    if (k == NULL || callee_uri == NULL || k->ctx == NULL || k->opt.mode != MS_CALL_KEYS_LIVE)
        return MS_ERR_ARG;
    char callee[URI_CAP];
    ms_err err = ms_call_identity_from_sip(callee, sizeof callee, callee_uri, k->opt.profile);
    if (err != MS_OK)
        return err;
    return ms_mikey_prepare_peer(k->ctx, callee, NULL, clock_now(&k->opt));
}

ms_mikey_profile ms_call_keys_profile(const ms_call_keys *k)
{
    return k != NULL ? k->opt.profile : MS_MIKEY_PROFILE_PCK;
}

ms_keystore *ms_call_keys_keystore(ms_call_keys *k)
{
    return k != NULL ? k->ks : NULL;
}

const char *ms_call_keys_own_uri(const ms_call_keys *k)
{
    return k != NULL ? k->own_uri : NULL;
}

void ms_call_crypto_wipe(ms_call_crypto *c)
{
    if (c != NULL)
        ms_wipe(c, sizeof *c);
}

/* SRTP master key, salt and MKI of the call's crypto session for the suite. */
static ms_err derive_srtp(ms_call_crypto *c)
{
    size_t key_len = 0, salt_len = 0;
    ms_srtp_suite_lengths(c->suite, &key_len, &salt_len);
    uint8_t cs_id = c->mikey.n_cs > 0 ? c->mikey.cs[0].cs_id : 0;
    return ms_mikey_srtp_keys(&c->srtp, &c->mikey, cs_id, key_len, salt_len);
}

/* ---- identities ---------------------------------------------------------------------- */

/* "+" and digits, visual separators of RFC 3966 dropped; false if not a global number. */
static bool global_number(char *out, size_t cap, const char *s, size_t n)
{
    if (n == 0 || s[0] != '+' || cap < 2)
        return false;
    size_t o = 0, digits = 0;
    out[o++] = '+';
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (c == '-' || c == '.' || c == '(' || c == ')')
            continue;
        if (c < '0' || c > '9' || o + 1 >= cap)
            return false;
        out[o++] = c;
        digits++;
    }
    out[o] = '\0';
    return digits > 0;
}

ms_err ms_call_identity_from_sip(char *out, size_t cap, const char *sip_uri,
                                 ms_mikey_profile profile)
{
    if (out == NULL || cap == 0 || sip_uri == NULL)
        return MS_ERR_ARG;
    out[0] = '\0';
    /* A name-addr ("Alice <sip:...>") gives its URI. */
    const char *s = sip_uri;
    size_t n = strlen(s);
    const char *lt = strchr(s, '<');
    if (lt != NULL) {
        const char *gt = strchr(lt, '>');
        if (gt == NULL)
            return MS_ERR_IDENTITY;
        s = lt + 1;
        n = (size_t)(gt - s);
    }
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s)
        return MS_ERR_IDENTITY;
    char scheme[8];
    size_t sl = (size_t)(colon - s);
    if (sl >= sizeof scheme)
        return MS_ERR_IDENTITY;
    for (size_t i = 0; i < sl; i++)
        scheme[i] = (char)tolower((unsigned char)s[i]);
    scheme[sl] = '\0';
    const char *rest = colon + 1;
    size_t rn = n - sl - 1;
    for (size_t i = 0; i < rn; i++)
        if ((unsigned char)rest[i] <= 0x20 || rest[i] == 0x7F)
            return MS_ERR_IDENTITY;
    char number[64];

    if (strcmp(scheme, "tel") == 0) {
        /* the number, without parameters */
        const char *semi = memchr(rest, ';', rn);
        size_t nn = semi != NULL ? (size_t)(semi - rest) : rn;
        if (!global_number(number, sizeof number, rest, nn))
            return MS_ERR_IDENTITY;
        if ((size_t)snprintf(out, cap, "tel:%s", number) >= cap)
            return MS_ERR_BUFFER_TOO_SMALL;
        return MS_OK;
    }
    if (strcmp(scheme, "sip") != 0 && strcmp(scheme, "sips") != 0)
        return MS_ERR_IDENTITY;
    /* sip:user@host[:port][;params][?headers] */
    size_t end = rn;
    for (size_t i = 0; i < rn; i++) {
        if (rest[i] == '?') {
            end = i;
            break;
        }
    }
    const char *at = NULL;
    for (size_t i = 0; i < end; i++)
        if (rest[i] == '@')
            at = rest + i;
    if (at == NULL || at == rest)
        return MS_ERR_IDENTITY; /* a user's identity has a user part */
    const size_t user_len = (size_t)(at - rest);
    const char *host = at + 1;
    size_t hn = end - user_len - 1;
    /* user parameters (";user=phone" among them) follow the host */
    const char *hsemi = memchr(host, ';', hn);
    if (hsemi != NULL)
        hn = (size_t)(hsemi - host);
    /* host without port; an IPv6 reference keeps its brackets */
    if (hn > 0 && host[0] == '[') {
        const char *rb = memchr(host, ']', hn);
        if (rb == NULL)
            return MS_ERR_IDENTITY;
        hn = (size_t)(rb - host) + 1;
    } else {
        const char *pc = memchr(host, ':', hn);
        if (pc != NULL)
            hn = (size_t)(pc - host);
    }
    if (hn == 0)
        return MS_ERR_IDENTITY;

    if (profile == MS_MIKEY_PROFILE_RFC6509) {
        /* a telephone number in the user part ("user=phone" or not), no user
         * parameters such as ";phone-context" (not a global number then) */
        if (memchr(rest, ';', user_len) != NULL ||
            !global_number(number, sizeof number, rest, user_len))
            return MS_ERR_IDENTITY;
        if ((size_t)snprintf(out, cap, "tel:%s", number) >= cap)
            return MS_ERR_BUFFER_TOO_SMALL;
        return MS_OK;
    }
    if ((size_t)snprintf(out, cap, "%s:%.*s@", scheme, (int)user_len, rest) >= cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    size_t o = strlen(out);
    if (o + hn + 1 > cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    for (size_t i = 0; i < hn; i++)
        out[o++] = (char)tolower((unsigned char)host[i]); /* host names are case-blind */
    out[o] = '\0';
    return MS_OK;
}

/* ---- refusals -------------------------------------------------------------------------- */

/* An error of ms_mikey_respond as the callee's SIP answer. */
static ms_err mikey_refusal(ms_call_refusal *why, ms_err err, const ms_mikey_diag *diag)
{
    const char *d = diag->detail[0] != '\0' ? diag->detail : ms_strerror(err);
    switch (err) {
    case MS_ERR_SIGNATURE:
        return refuse(why, 606, err, "bad signature: %s", d);
    case MS_ERR_MIKEY_UNKNOWN_KMS:
        return refuse(why, 606, err, "unknown KMS: %s", d);
    case MS_ERR_MIKEY_TIMESTAMP:
        return refuse(why, 606, err, "stale timestamp: %s", d);
    case MS_ERR_MIKEY_REPLAY:
        return refuse(why, 606, err, "replay: %s", d);
    case MS_ERR_MIKEY_RESPONDER:
    case MS_ERR_DECAP_TEST: /* signed by the caller, but encapsulated to someone else */
        return refuse(why, 606, err, "not addressed to me: %s", d);
    case MS_ERR_MIKEY_KEY_PERIOD:
        return refuse(why, 606, err, "no keys for that period: %s", d);
    case MS_ERR_MIKEY_INITIATOR:
        return refuse(why, 606, err, "caller mismatch: %s", d);
    case MS_ERR_MIKEY_KEY_ID:
    case MS_ERR_MIKEY_KEY_PARAMS:
        return refuse(why, 606, err, "key refused: %s", d);
    case MS_ERR_MIKEY_MALFORMED:
    case MS_ERR_MIKEY_UNSUPPORTED:
    case MS_ERR_MIKEY_MISSING_PAYLOAD:
    case MS_ERR_MIKEY_VERSION:
    case MS_ERR_MIKEY_DATA_TYPE:
    case MS_ERR_MIKEY_V_BIT:
    case MS_ERR_SDP:
    case MS_ERR_IDENTITY:
        return refuse(why, 488, err, "malformed MIKEY: %s", d);
    default:
        return refuse(why, 500, err, "internal error: %s", d);
    }
}

/* ---- opening an I_MESSAGE ----------------------------------------------------------------- */

/* T of the message, or 0 when it has none (ms_mikey_respond then says what is wrong). */
static uint64_t message_time(const uint8_t *imsg, size_t len)
{
    ms_mikey_message m;
    if (ms_mikey_parse(&m, imsg, len, NULL) != MS_OK)
        return 0;
    const ms_mikey_payload *t = ms_mikey_find(&m, MS_MIKEY_PT_T, -1);
    return t != NULL ? t->u.t.value : 0;
}

/* Stored mode: a context of its own for one message, judged at its T. */
static ms_err message_ctx(ms_call_keys *k, ms_mikey_ctx **out, uint64_t *t, ms_call_refusal *why)
{
    char detail[200] = "";
    ms_err err = new_ctx(out, k, false, fixed_clock, t);
    if (err != MS_OK)
        return refuse(why, 500, err, "internal error: creating a MIKEY context (%s)",
                      ms_errname(err));
    /* The keystore's keys as they stood at T (the certificate of T's period included). */
    err = ms_keystore_load_mikey(k->ks, *out, NULL, *t >> 32, detail, sizeof detail);
    if (err == MS_ERR_NOMEM || err == MS_ERR_INTERNAL || err == MS_ERR_KEYSTORE ||
        err == MS_ERR_IO)
        return refuse(why, 500, err, "internal error: %s", detail);
    if (err != MS_OK)
        return refuse(why, 606, MS_ERR_MIKEY_KEY_PERIOD, "no keys for that period: %s", detail);
    return MS_OK;
}

ms_err ms_call_open_imessage(ms_call_keys *k, ms_call_crypto *out, ms_call_refusal *why,
                             const uint8_t *imsg, size_t imsg_len, const char *claimed_caller)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (why != NULL)
        memset(why, 0, sizeof *why);
    if (k == NULL || out == NULL || (imsg == NULL && imsg_len > 0))
        return refuse(why, 500, MS_ERR_ARG, "internal error: bad arguments");
    char caller[URI_CAP];
    const char *expected = NULL;
    if (claimed_caller != NULL) {
        ms_err err = ms_call_identity_from_sip(caller, sizeof caller, claimed_caller,
                                               k->opt.profile);
        if (err != MS_OK)
            return refuse(why, 606, MS_ERR_MIKEY_INITIATOR,
                          "caller mismatch: the caller %.120s gives no MIKEY identity",
                          claimed_caller);
        expected = caller;
    }

    ms_mikey_ctx *ctx = k->ctx, *own_ctx = NULL;
    uint64_t t = 0;
    ms_err err = MS_OK;
    if (k->opt.mode != MS_CALL_KEYS_LIVE) {
        t = message_time(imsg, imsg_len);
        if (t == 0) {
            t = clock_now(&k->opt); /* no T: ms_mikey_respond names the fault */
        } else if (k->opt.mode == MS_CALL_KEYS_STORED) {
            /* A stored message was made in the past: T ahead of our clock is refused
             * like a live one. */
            const uint64_t now = clock_now(&k->opt);
            if (t > now && t - now > (k->opt.max_skew << 32))
                return refuse(why, 606, MS_ERR_MIKEY_TIMESTAMP,
                              "stale timestamp: T of the stored message is %llu s ahead of "
                              "the local clock", (unsigned long long)((t - now) >> 32));
        }
        if (k->opt.mode == MS_CALL_KEYS_AUDIT) {
            k->audit_t = t;
            ctx = k->audit_ctx;
        } else {
            if ((err = message_ctx(k, &own_ctx, &t, why)) != MS_OK) {
                ms_mikey_ctx_free(own_ctx);
                return err;
            }
            ctx = own_ctx;
        }
    }
    if (ctx == NULL)
        return refuse(why, 500, MS_ERR_ARG, "internal error: no MIKEY context");

    ms_mikey_diag diag;
    memset(&diag, 0, sizeof diag);
    err = ms_mikey_respond(ctx, &out->mikey, imsg, imsg_len, expected, &diag);
    ms_mikey_ctx_free(own_ctx);
    if (err != MS_OK) {
        ms_call_crypto_wipe(out);
        return mikey_refusal(why, err, &diag);
    }
    /* The responder's name is ours unless we opened our own message (SAKKE-to-self). */
    out->opened_as_initiator = strcmp(out->mikey.responder, k->own_uri) != 0;
    snprintf(out->peer, sizeof out->peer, "%s",
             out->opened_as_initiator ? out->mikey.responder : out->mikey.initiator);
    out->period_no = out->mikey.period_no;
    out->key_id = out->mikey.key_id;
    out->suite = k->opt.suite;
    if ((err = derive_srtp(out)) != MS_OK) {
        ms_call_crypto_wipe(out);
        return refuse(why, 500, err, "internal error: deriving the SRTP keys (%s)",
                      ms_errname(err));
    }
    return MS_OK;
}

/* ---- offer and answer ------------------------------------------------------------------ */

static ms_err session_id(uint64_t *out)
{
    uint8_t r[8];
    ms_err err = ms_rng_fill(NULL, r, sizeof r);
    *out = 0;
    for (size_t i = 0; i < sizeof r; i++)
        *out = *out << 8 | r[i];
    return err;
}

static void media_stream(ms_sdp_audio *a, const char *ip, uint16_t port, ms_srtp_suite suite)
{
    memset(a, 0, sizeof *a);
    snprintf(a->addr, sizeof a->addr, "%s", ip);
    a->port = port;
    snprintf(a->proto, sizeof a->proto, "RTP/SAVP");
    a->payload_type = OPUS_PT;
    snprintf(a->codec, sizeof a->codec, "opus/48000/2");
    snprintf(a->crypto_suite, sizeof a->crypto_suite, "%s", ms_srtp_suite_name(suite));
    snprintf(a->direction, sizeof a->direction, "sendrecv");
}

ms_err ms_call_make_offer(ms_call_keys *k, char *sdp, size_t sdp_cap, ms_call_crypto *out,
                          const char *callee_uri, const char *media_ip, uint16_t media_port,
                          char *detail, size_t detail_cap)
{
    if (detail != NULL && detail_cap > 0)
        detail[0] = '\0';
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (k == NULL || sdp == NULL || sdp_cap == 0 || out == NULL || callee_uri == NULL ||
        media_ip == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "ms_call_make_offer: NULL argument");
    sdp[0] = '\0';
    if (k->ctx == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                    "the auditor holds no signing key: it cannot make offers");
    if ((k->opt.suite != MS_SRTP_AEAD_AES_128_GCM &&
         k->opt.suite != MS_SRTP_AES_CM_128_HMAC_SHA1_80) ||
        (k->opt.accepted_suites & (1u << k->opt.suite)) == 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                    "the offered suite is not among the accepted suites");
    char callee[URI_CAP];
    ms_err err = ms_call_identity_from_sip(callee, sizeof callee, callee_uri, k->opt.profile);
    if (err != MS_OK)
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                    "the callee %s gives no MIKEY identity for the %s profile", callee_uri,
                    is_3gpp(k->opt.profile) ? "TS 33.180" : "RFC 6509 (tel URI)");

    ms_mikey_init_params p;
    memset(&p, 0, sizeof p);
    p.responder = callee;
    p.sakke_to_self = is_3gpp(k->opt.profile) && !k->opt.no_sakke_to_self;
    uint8_t *msg = malloc(MS_MIKEY_MAX_MESSAGE);
    char *line = malloc(MS_SDP_KEY_MGMT_MAX + 1);
    size_t msg_len = 0;
    uint64_t sid = 0;
    if (msg == NULL || line == NULL) {
        err = ms_detail_fail(MS_ERR_NOMEM, detail, detail_cap, "out of memory");
        goto out;
    }
    err = ms_mikey_initiate(k->ctx, msg, MS_MIKEY_MAX_MESSAGE, &msg_len, &out->mikey, &p);
    if (err != MS_OK) {
        if (err == MS_ERR_MIKEY_KEY_PERIOD)
            ms_detail_fail(err, detail, detail_cap, "no signing keys of %s held for the current key "
                                          "period", k->own_uri);
        else if (err == MS_ERR_IDENTITY)
            ms_detail_fail(err, detail, detail_cap, "the callee %s gives no identifier", callee);
        else
            ms_detail_fail(err, detail, detail_cap, "building the I_MESSAGE to %s failed (%s)", callee,
                 ms_errname(err));
        goto out;
    }
    if ((err = ms_sdp_key_mgmt_format(line, MS_SDP_KEY_MGMT_MAX + 1, msg, msg_len)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "encoding a=key-mgmt failed (%s)", ms_errname(err));
        goto out;
    }
    out->suite = k->opt.suite;
    snprintf(out->peer, sizeof out->peer, "%s", callee);
    out->period_no = out->mikey.period_no;
    out->key_id = out->mikey.key_id;
    out->opened_as_initiator = true; /* our own message: the peer is the responder */
    if ((err = derive_srtp(out)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "deriving the SRTP keys failed (%s)", ms_errname(err));
        goto out;
    }
    if ((err = session_id(&sid)) != MS_OK) {
        ms_detail_fail(err, detail, detail_cap, "no random session id");
        goto out;
    }
    ms_sdp_audio a;
    media_stream(&a, media_ip, media_port, k->opt.suite);
    err = ms_sdp_format(sdp, sdp_cap, &a, sid, line);
    if (err != MS_OK)
        ms_detail_fail(err, detail, detail_cap, "%s", err == MS_ERR_BUFFER_TOO_SMALL
                                                ? "the SDP buffer is too small"
                                                : "media address is not an IP literal");
out:
    free(msg);
    free(line);
    if (err != MS_OK) {
        ms_call_crypto_wipe(out);
        sdp[0] = '\0';
    }
    return err;
}

ms_err ms_call_check_offer(ms_call_keys *k, ms_call_crypto *out, ms_sdp_audio *remote,
                           ms_call_refusal *why, const char *sdp, size_t sdp_len,
                           const char *claimed_caller)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (why != NULL)
        memset(why, 0, sizeof *why);
    if (remote != NULL)
        memset(remote, 0, sizeof *remote);
    if (k == NULL || out == NULL || (sdp == NULL && sdp_len > 0))
        return refuse(why, 500, MS_ERR_ARG, "internal error: bad arguments");
    ms_sdp_audio a;
    char detail[200] = "";
    ms_err err = ms_sdp_parse(&a, sdp, sdp_len, detail, sizeof detail);
    if (err != MS_OK)
        return refuse(why, 488, err, "malformed SDP: %s", detail);
    if (remote != NULL)
        *remote = a;
    if (strcmp(a.proto, "RTP/AVP") == 0)
        return refuse(why, 488, MS_ERR_NOT_SECURE, "RTP/AVP offered: unencrypted media refused");
    if (strcmp(a.proto, "RTP/SAVP") != 0)
        return refuse(why, 488, MS_ERR_NOT_SECURE,
                      "%s offered: only RTP/SAVP with MIKEY-SAKKE is accepted", a.proto);
    if (a.key_mgmt == NULL)
        return refuse(why, 488, MS_ERR_NOT_SECURE, "no key-mgmt offered");
    if (a.key_mgmt_len < 6 || memcmp(a.key_mgmt, "mikey ", 6) != 0)
        return refuse(why, 488, MS_ERR_NOT_SECURE,
                      "no key-mgmt offered: only the mikey protocol is accepted");
    /* absent: GCM (sdp.h), or RFC 6509's SP policy (AES-CM) in a tel community */
    ms_srtp_suite suite = k->opt.profile == MS_MIKEY_PROFILE_RFC6509
                              ? MS_SRTP_AES_CM_128_HMAC_SHA1_80
                              : MS_SRTP_AEAD_AES_128_GCM;
    if (a.crypto_suite[0] != '\0' && ms_srtp_suite_parse(&suite, a.crypto_suite) != MS_OK)
        return refuse(why, 488, MS_ERR_NOT_SECURE, "SRTP suite refused: %s is unknown",
                      a.crypto_suite);
    if ((k->opt.accepted_suites & (1u << suite)) == 0)
        return refuse(why, 488, MS_ERR_NOT_SECURE,
                      "SRTP suite refused: %s is not accepted by this user's policy",
                      ms_srtp_suite_name(suite));

    /* "key-mgmt:" and the value: the form ms_sdp_key_mgmt_parse takes */
    const size_t prefix = strlen("key-mgmt:");
    char *line = malloc(prefix + a.key_mgmt_len + 1);
    uint8_t *imsg = malloc(MS_MIKEY_MAX_MESSAGE);
    size_t imsg_len = 0;
    if (line == NULL || imsg == NULL) {
        free(line);
        free(imsg);
        return refuse(why, 500, MS_ERR_NOMEM, "internal error: out of memory");
    }
    memcpy(line, "key-mgmt:", prefix);
    memcpy(line + prefix, a.key_mgmt, a.key_mgmt_len);
    line[prefix + a.key_mgmt_len] = '\0';
    ms_mikey_diag diag;
    memset(&diag, 0, sizeof diag);
    err = ms_sdp_key_mgmt_parse(imsg, MS_MIKEY_MAX_MESSAGE, &imsg_len, line,
                                prefix + a.key_mgmt_len, &diag);
    free(line);
    if (err != MS_OK) {
        free(imsg);
        return refuse(why, 488, err, "malformed MIKEY: %s", diag.detail);
    }
    err = ms_call_open_imessage(k, out, why, imsg, imsg_len, claimed_caller);
    free(imsg);
    if (err != MS_OK)
        return err;
    if (out->suite != suite) {
        out->suite = suite;
        if ((err = derive_srtp(out)) != MS_OK) {
            ms_call_crypto_wipe(out);
            return refuse(why, 500, err, "internal error: deriving the SRTP keys (%s)",
                          ms_errname(err));
        }
    }
    return MS_OK;
}

ms_err ms_call_make_answer(char *sdp, size_t sdp_cap, const ms_call_crypto *c,
                           const char *media_ip, uint16_t media_port)
{
    if (sdp == NULL || sdp_cap == 0 || c == NULL || media_ip == NULL)
        return MS_ERR_ARG;
    sdp[0] = '\0';
    uint64_t sid = 0;
    ms_err err = session_id(&sid);
    if (err != MS_OK)
        return err;
    ms_sdp_audio a;
    media_stream(&a, media_ip, media_port, c->suite);
    return ms_sdp_format(sdp, sdp_cap, &a, sid, NULL);
}
