/*
 * The key side of a call (src/call/keys.c) on real keystores: a KMS community with
 * Alice and Bob (tests/client/fixture.h), offers and their checks, the SRTP keys both
 * ends derive, the caller's own reading through SAKKE-to-self, the auditor with one
 * user's RSK of one period, stored (voicemail) reading, and every refusal with its SIP
 * status and Warning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/fixture.h"
#include "call/keys.h"

#define ALICE "sip:alice@example.org"
#define BOB "sip:bob@example.org"
#define CAROL "sip:carol@example.org"
#define MALLORY "sip:mallory@other.example"
#define OTHER_KMS "kms.other.example"
#define SDP_CAP MS_SDP_MAX

typedef struct tclock {
    uint64_t ntp; /* NTP 32.32 */
} tclock;

static uint64_t tclock_read(void *c)
{
    return ((const tclock *)c)->ntp;
}

static void tclock_set(tclock *c, uint64_t seconds)
{
    c->ntp = seconds << 32;
}

static fx F;          /* the community: Alice (p0, p0+1), Bob (p0), Carol (p0) */
static fx G;          /* another KMS: Mallory */
static char alice_dir[300], bob_dir[300], carol_dir[300], mallory_dir[300];
static ms_kmsif_keyset bob_p0, bob_p1, alice_p0, carol_p0; /* issued directly: auditor RSKs */

/* A device keystore for uri in f's community, holding the given periods. */
static void make_device(fx *f, char *dir_out, const char *uri, const char *name,
                        const uint64_t *periods, size_t n)
{
    snprintf(f->dev.user_uri, sizeof f->dev.user_uri, "%s", uri);
    snprintf(f->dev.device_id, sizeof f->dev.device_id, "%s-phone", name);
    snprintf(f->dir, sizeof f->dir, "%s/%s", f->root, name);
    fx_create(f);
    ms_keystore *ks = fx_open(f);
    static ms_key_package pkg;
    for (size_t i = 0; i < n; i++) {
        fx_package(f, &pkg, periods[i], f->now - 3600 + i);
        fx_write(f, &pkg, &f->dev);
        char detail[256];
        ms_err e = fx_import(f, ks, f->now, detail, sizeof detail);
        if (e != MS_OK) {
            fprintf(stderr, "import %s: %s\n", uri, detail);
            fx_die("import", e);
        }
    }
    ms_wipe(&pkg, sizeof pkg);
    ms_keystore_close(ks);
    snprintf(dir_out, 300, "%s", f->dir);
}

static void setup(void)
{
    fx_init(&F, 0);
    uint64_t both[2] = {F.p0, F.p0 + 1}, one[1] = {F.p0};
    make_device(&F, alice_dir, ALICE, "alice", both, 2);
    make_device(&F, bob_dir, BOB, "bob", one, 1);
    make_device(&F, carol_dir, CAROL, "carol", one, 1);
    fx_keyset(&F, &bob_p0, BOB, F.p0);
    fx_keyset(&F, &bob_p1, BOB, F.p0 + 1);
    fx_keyset(&F, &alice_p0, ALICE, F.p0);
    fx_keyset(&F, &carol_p0, CAROL, F.p0);

    fx_init(&G, 0);
    snprintf(G.cert.kms_uri, sizeof G.cert.kms_uri, "%s", OTHER_KMS);
    uint64_t g[1] = {G.p0};
    make_device(&G, mallory_dir, MALLORY, "mallory", g, 1);
}

static ms_call_keys_options options(ms_call_keys_mode mode, tclock *c)
{
    ms_call_keys_options o;
    memset(&o, 0, sizeof o);
    o.mode = mode;
    o.profile = MS_MIKEY_PROFILE_PCK;
    o.suite = MS_SRTP_AEAD_AES_128_GCM;
    o.clock = tclock_read;
    o.clock_ctx = c;
    return o;
}

static ms_call_keys *open_dev(const char *dir, const ms_call_keys_options *o)
{
    ms_call_keys *k = NULL;
    char detail[256] = "";
    ms_err e = ms_call_keys_open(&k, dir, FX_PASS, strlen(FX_PASS), o, detail, sizeof detail);
    CHECK_ERR(e, MS_OK);
    if (e != MS_OK) {
        fprintf(stderr, "open %s: %s\n", dir, detail);
        exit(1);
    }
    return k;
}

static ms_mikey_kms_info kms_info(const fx *f)
{
    ms_mikey_kms_info info = {f->cert.kms_uri, f->scheme, f->cert.Z, f->cert.kpak};
    return info;
}

static ms_call_keys *open_auditor(const char *uri, uint64_t period, const uint8_t *rsk,
                                  ms_err want)
{
    ms_call_keys *k = NULL;
    tclock unused = {0};
    ms_call_keys_options o = options(MS_CALL_KEYS_AUDIT, &unused);
    o.clock = NULL; /* the auditor needs no clock */
    ms_mikey_kms_info info = kms_info(&F);
    char detail[256] = "";
    CHECK_ERR(ms_call_keys_open_audit(&k, uri, period, rsk, &info, &o, detail, sizeof detail),
              want);
    if (want != MS_OK)
        CHECK(k == NULL && detail[0] != '\0');
    return k;
}

static void offer(ms_call_keys *k, char *sdp, ms_call_crypto *c, const char *to)
{
    char detail[256] = "";
    ms_err e = ms_call_make_offer(k, sdp, SDP_CAP, c, to, "127.0.0.1", 40000, detail,
                                  sizeof detail);
    CHECK_ERR(e, MS_OK);
    if (e != MS_OK)
        fprintf(stderr, "offer: %s\n", detail);
}

/* ck refuses sdp with status and a Warning that starts with prefix. */
static void refused(ms_call_keys *k, const char *sdp, const char *claimed, int status,
                    const char *prefix, ms_err err, int line)
{
    ms_call_crypto c;
    ms_call_refusal why;
    memset(&c, 0x5A, sizeof c);
    ms_err e = ms_call_check_offer(k, &c, NULL, &why, sdp, strlen(sdp), claimed);
    bool ok = e == err && why.err == err && why.sip_status == status &&
              strncmp(why.warning, prefix, strlen(prefix)) == 0;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "line %d: got %s / %d \"%s\", want %s / %d \"%s...\"\n", line,
                ms_errname(e), why.sip_status, why.warning, ms_errname(err), status, prefix);
    /* nothing of a key survives a refusal */
    static const uint8_t zero[sizeof c.srtp.master_key] = {0};
    CHECK(c.mikey.key_len == 0 && memcmp(c.srtp.master_key, zero, sizeof zero) == 0);
    /* a Warning that always names a reason after the prefix */
    if (status == 606)
        CHECK(strstr(why.warning, ": ") != NULL && strlen(why.warning) > strlen(prefix) + 2);
}
#define REFUSED(k, sdp, claimed, status, prefix, err) \
    refused(k, sdp, claimed, status, prefix, err, __LINE__)

static void same_keys(const ms_call_crypto *a, const ms_call_crypto *b)
{
    CHECK(a->suite == b->suite);
    CHECK(a->srtp.key_len == b->srtp.key_len && a->srtp.salt_len == b->srtp.salt_len);
    CHECK_MEM(a->srtp.master_key, b->srtp.master_key, b->srtp.key_len);
    CHECK_MEM(a->srtp.master_salt, b->srtp.master_salt, b->srtp.salt_len);
    CHECK(a->srtp.mki_len == 4 && b->srtp.mki_len == 4);
    CHECK_MEM(a->srtp.mki, b->srtp.mki, 4);
    CHECK(a->key_id == b->key_id && a->period_no == b->period_no);
    CHECK(a->mikey.key_len == 16 && b->mikey.key_len == 16);
    CHECK_MEM(a->mikey.key, b->mikey.key, 16);
}

/* The key-mgmt MIKEY message of an SDP. */
static size_t sdp_imessage(uint8_t *out, size_t cap, const char *sdp)
{
    ms_sdp_audio a;
    CHECK_ERR(ms_sdp_parse(&a, sdp, strlen(sdp), NULL, 0), MS_OK);
    size_t n = 0;
    if (a.key_mgmt == NULL)
        return 0;
    char *line = malloc(a.key_mgmt_len + 16);
    snprintf(line, a.key_mgmt_len + 16, "key-mgmt:%.*s", (int)a.key_mgmt_len, a.key_mgmt);
    CHECK_ERR(ms_sdp_key_mgmt_parse(out, cap, &n, line, strlen(line), NULL), MS_OK);
    free(line);
    return n;
}

/* An offer like sdp with another MIKEY message (NULL: no key-mgmt), or another proto or
 * suite ("" keeps the original). */
static void rebuild(char *out, const char *sdp, const uint8_t *imsg, size_t imsg_len,
                    const char *proto, const char *suite)
{
    ms_sdp_audio a;
    CHECK_ERR(ms_sdp_parse(&a, sdp, strlen(sdp), NULL, 0), MS_OK);
    if (proto[0] != '\0')
        snprintf(a.proto, sizeof a.proto, "%s", proto);
    if (suite[0] != '\0')
        snprintf(a.crypto_suite, sizeof a.crypto_suite, "%s", suite);
    char *line = NULL;
    if (imsg != NULL) {
        line = malloc(MS_SDP_KEY_MGMT_MAX + 1);
        CHECK_ERR(ms_sdp_key_mgmt_format(line, MS_SDP_KEY_MGMT_MAX + 1, imsg, imsg_len), MS_OK);
    }
    CHECK_ERR(ms_sdp_format(out, SDP_CAP, &a, 1, line), MS_OK);
    free(line);
}

/* ---- identities ------------------------------------------------------------------------ */

static void identity(const char *in, ms_mikey_profile p, const char *want)
{
    char out[256];
    ms_err e = ms_call_identity_from_sip(out, sizeof out, in, p);
    if (want == NULL) {
        CHECK_ERR(e, MS_ERR_IDENTITY);
        return;
    }
    CHECK_ERR(e, MS_OK);
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "identity of %s: %s, want %s\n", in, out, want);
        CHECK(0);
    }
}

static void test_identity(void)
{
    const ms_mikey_profile T = MS_MIKEY_PROFILE_RFC6509, P = MS_MIKEY_PROFILE_PCK;
    identity("sip:+447700900123@example.org;user=phone", T, "tel:+447700900123");
    identity("tel:+447700900123", T, "tel:+447700900123");
    identity("tel:+44-7700-900.123;foo=bar", T, "tel:+447700900123");
    identity("\"Alice\" <sip:+447700900123@proxy.example:5060;user=phone>", T,
             "tel:+447700900123");
    identity("sip:alice@example.org", T, NULL);           /* not a number */
    identity("tel:7700900123", T, NULL);                  /* not global */
    identity("sip:+4477;phone-context=x@example.org", T, NULL);
    identity("sip:alice@example.org", P, "sip:alice@example.org");
    identity("sip:alice@Example.ORG:5060;transport=tcp?Subject=x", P, "sip:alice@example.org");
    identity("Alice <SIP:alice@example.org>;tag=123", P, "sip:alice@example.org");
    identity("sips:alice@[2001:db8::1]:5061", P, "sips:alice@[2001:db8::1]");
    identity("tel:+447700900123", P, "tel:+447700900123");
    identity("sip:example.org", P, NULL);                 /* no user */
    identity("http://example.org", P, NULL);
    identity("alice@example.org", P, NULL);
    identity("<sip:alice@example.org", P, NULL);
    identity("sip:al ice@example.org", P, NULL);
    char small[8];
    CHECK_ERR(ms_call_identity_from_sip(small, sizeof small, ALICE, P), MS_ERR_BUFFER_TOO_SMALL);
}

/* ---- a call -------------------------------------------------------------------------------- */

static void test_call(void)
{
    tclock ca, cb;
    tclock_set(&ca, F.now);
    tclock_set(&cb, F.now + 2);
    ms_call_keys_options oa = options(MS_CALL_KEYS_LIVE, &ca), ob = options(MS_CALL_KEYS_LIVE, &cb);
    ms_call_keys *alice = open_dev(alice_dir, &oa), *bob = open_dev(bob_dir, &ob);
    CHECK(strcmp(ms_call_keys_own_uri(alice), ALICE) == 0);
    CHECK(strcmp(ms_call_keys_own_uri(bob), BOB) == 0);

    char *sdp = malloc(SDP_CAP), *answer = malloc(SDP_CAP);
    ms_call_crypto ci, cr, cs;
    offer(alice, sdp, &ci, BOB);
    CHECK(strstr(sdp, "m=audio 40000 RTP/SAVP 96\r\n") != NULL);
    CHECK(strstr(sdp, "a=x-ms-srtp:AEAD_AES_128_GCM\r\n") != NULL);
    CHECK(strstr(sdp, "a=key-mgmt:mikey ") != NULL);
    CHECK(strcmp(ci.peer, BOB) == 0 && ci.period_no == F.p0 && ci.opened_as_initiator);
    CHECK((ci.key_id >> 28) == MS_MIKEY_PURPOSE_PCK);
    CHECK(ci.srtp.key_len == 16 && ci.srtp.salt_len == 12);
    uint8_t mki[4] = {(uint8_t)(ci.key_id >> 24), (uint8_t)(ci.key_id >> 16),
                      (uint8_t)(ci.key_id >> 8), (uint8_t)ci.key_id};
    CHECK_MEM(ci.srtp.mki, mki, 4); /* TS 33.180 7.4: MKI = PCK-ID */
    /* the keys are those of the PCK's crypto session 0, as ms_mikey_srtp_keys gives them */
    ms_srtp_keys k0;
    CHECK_ERR(ms_mikey_srtp_keys(&k0, &ci.mikey, 0, 16, 12), MS_OK);
    CHECK_MEM(k0.master_key, ci.srtp.master_key, 16);
    CHECK_MEM(k0.master_salt, ci.srtp.master_salt, 12);
    ms_wipe(&k0, sizeof k0);

    /* Bob accepts, with the From header as the signalling gives it */
    ms_call_refusal why;
    ms_sdp_audio remote;
    CHECK_ERR(ms_call_check_offer(bob, &cr, &remote, &why, sdp, strlen(sdp),
                                  "\"Alice\" <sip:alice@example.org;transport=tcp>"),
              MS_OK);
    same_keys(&ci, &cr);
    CHECK(strcmp(cr.peer, ALICE) == 0 && !cr.opened_as_initiator);
    CHECK(strcmp(cr.mikey.initiator, ALICE) == 0);
    CHECK(strcmp(remote.addr, "127.0.0.1") == 0 && remote.port == 40000);
    CHECK(remote.key_mgmt != NULL && remote.key_mgmt > sdp && remote.key_mgmt < sdp + strlen(sdp));

    /* his answer: RTP/SAVP, the suite of the offer, no key-mgmt (SAKKE needs no reply) */
    CHECK_ERR(ms_call_make_answer(answer, SDP_CAP, &cr, "127.0.0.2", 40002), MS_OK);
    ms_sdp_audio ans;
    CHECK_ERR(ms_sdp_parse(&ans, answer, strlen(answer), NULL, 0), MS_OK);
    CHECK(strcmp(ans.proto, "RTP/SAVP") == 0 && ans.port == 40002 &&
          strcmp(ans.addr, "127.0.0.2") == 0 && ans.key_mgmt == NULL &&
          strcmp(ans.crypto_suite, "AEAD_AES_128_GCM") == 0 && ans.payload_type == 96);
    CHECK_ERR(ms_call_make_answer(answer, 20, &cr, "127.0.0.2", 40002), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_call_make_answer(answer, SDP_CAP, &cr, "not-an-ip", 1), MS_ERR_ARG);

    /* Alice's own context opens her offer through SAKKE-to-self */
    CHECK_ERR(ms_call_check_offer(alice, &cs, NULL, &why, sdp, strlen(sdp), ALICE), MS_OK);
    same_keys(&ci, &cs);
    CHECK(cs.opened_as_initiator && strcmp(cs.peer, BOB) == 0);

    /* the same offer again is a replay for Bob */
    REFUSED(bob, sdp, ALICE, 606, "replay: ", MS_ERR_MIKEY_REPLAY);

    /* a second offer gives other keys */
    ms_call_crypto c2;
    offer(alice, sdp, &c2, BOB);
    CHECK(memcmp(c2.srtp.master_key, ci.srtp.master_key, 16) != 0 && c2.key_id != ci.key_id);
    ms_call_crypto_wipe(&c2);
    static const uint8_t zero[sizeof c2] = {0};
    CHECK(memcmp(&c2, zero, sizeof c2) == 0);

    /* AES-CM: a 14-octet salt, named in the offer */
    ms_call_keys_free(alice);
    oa.suite = MS_SRTP_AES_CM_128_HMAC_SHA1_80;
    alice = open_dev(alice_dir, &oa);
    offer(alice, sdp, &c2, BOB);
    CHECK(strstr(sdp, "a=x-ms-srtp:AES_CM_128_HMAC_SHA1_80\r\n") != NULL);
    CHECK(c2.srtp.key_len == 16 && c2.srtp.salt_len == 14);
    CHECK_ERR(ms_call_check_offer(bob, &cr, NULL, &why, sdp, strlen(sdp), ALICE), MS_OK);
    same_keys(&c2, &cr);
    CHECK(cr.suite == MS_SRTP_AES_CM_128_HMAC_SHA1_80);
    CHECK_ERR(ms_call_make_answer(answer, SDP_CAP, &cr, "127.0.0.2", 40002), MS_OK);
    CHECK(strstr(answer, "a=x-ms-srtp:AES_CM_128_HMAC_SHA1_80\r\n") != NULL);

    /* without SAKKE-to-self Alice's own key no longer opens it */
    ms_call_keys_free(alice);
    oa.suite = MS_SRTP_AEAD_AES_128_GCM;
    oa.no_sakke_to_self = true;
    alice = open_dev(alice_dir, &oa);
    offer(alice, sdp, &c2, BOB);
    CHECK_ERR(ms_call_check_offer(bob, &cr, NULL, &why, sdp, strlen(sdp), ALICE), MS_OK);
    same_keys(&c2, &cr);
    REFUSED(alice, sdp, ALICE, 606, "not addressed to me: ", MS_ERR_MIKEY_RESPONDER);

    /* a bare I_MESSAGE opens the same way */
    ms_call_keys_free(alice);
    oa.no_sakke_to_self = false;
    alice = open_dev(alice_dir, &oa);
    offer(alice, sdp, &c2, BOB);
    uint8_t imsg[MS_MIKEY_MAX_MESSAGE];
    size_t n = sdp_imessage(imsg, sizeof imsg, sdp);
    CHECK_ERR(ms_call_open_imessage(bob, &cr, &why, imsg, n, NULL), MS_OK);
    same_keys(&c2, &cr);
    CHECK(cr.suite == MS_SRTP_AEAD_AES_128_GCM);

    /* a caller who cannot make offers: bad suite policy, bad callee, the auditor */
    char detail[256];
    ms_call_keys_free(alice);
    oa.accepted_suites = MS_CALL_SUITE_CM; /* offers GCM but accepts only CM */
    alice = open_dev(alice_dir, &oa);
    CHECK_ERR(ms_call_make_offer(alice, sdp, SDP_CAP, &c2, BOB, "127.0.0.1", 1, detail,
                                 sizeof detail), MS_ERR_ARG);
    ms_call_keys_free(alice);
    oa.accepted_suites = 0;
    alice = open_dev(alice_dir, &oa);
    CHECK_ERR(ms_call_make_offer(alice, sdp, SDP_CAP, &c2, "mailto:bob", "127.0.0.1", 1,
                                 detail, sizeof detail), MS_ERR_IDENTITY);
    CHECK(strstr(detail, "mailto:bob") != NULL && sdp[0] == '\0');
    CHECK_ERR(ms_call_make_offer(alice, sdp, SDP_CAP, &c2, BOB, "nowhere", 1, detail,
                                 sizeof detail), MS_ERR_ARG);
    CHECK(c2.mikey.key_len == 0 && sdp[0] == '\0');
    CHECK_ERR(ms_call_make_offer(alice, sdp, 100, &c2, BOB, "127.0.0.1", 1, detail,
                                 sizeof detail), MS_ERR_BUFFER_TOO_SMALL);

    ms_call_crypto_wipe(&ci);
    ms_call_crypto_wipe(&cr);
    ms_call_crypto_wipe(&cs);
    ms_call_crypto_wipe(&c2);
    free(sdp);
    free(answer);
    ms_call_keys_free(alice);
    ms_call_keys_free(bob);
}

/* ---- every refusal ------------------------------------------------------------------------- */

static void test_refusals(void)
{
    tclock ca, cb, cm;
    tclock_set(&ca, F.now);
    tclock_set(&cb, F.now);
    tclock_set(&cm, F.now);
    ms_call_keys_options oa = options(MS_CALL_KEYS_LIVE, &ca), ob = options(MS_CALL_KEYS_LIVE, &cb);
    ms_call_keys_options om = options(MS_CALL_KEYS_LIVE, &cm);
    ms_call_keys *alice = open_dev(alice_dir, &oa), *bob = open_dev(bob_dir, &ob);
    ms_call_keys *mallory = open_dev(mallory_dir, &om);
    char *sdp = malloc(SDP_CAP), *bad = malloc(SDP_CAP);
    ms_call_crypto ci;
    uint8_t imsg[MS_MIKEY_MAX_MESSAGE];

    offer(alice, sdp, &ci, BOB);
    size_t n = sdp_imessage(imsg, sizeof imsg, sdp);

    /* the offer's form: 488 */
    rebuild(bad, sdp, imsg, n, "RTP/AVP", "");
    REFUSED(bob, bad, ALICE, 488, "RTP/AVP offered: unencrypted media refused",
            MS_ERR_NOT_SECURE);
    rebuild(bad, sdp, imsg, n, "RTP/SAVPF", "");
    REFUSED(bob, bad, ALICE, 488, "RTP/SAVPF offered: only RTP/SAVP", MS_ERR_NOT_SECURE);
    rebuild(bad, sdp, NULL, 0, "", "");
    REFUSED(bob, bad, ALICE, 488, "no key-mgmt offered", MS_ERR_NOT_SECURE);
    char *swap = strstr(sdp, "a=key-mgmt:mikey ");
    if (swap != NULL) {
        snprintf(bad, SDP_CAP, "%.*sa=key-mgmt:kerberos AAAA\r\n", (int)(swap - sdp), sdp);
        REFUSED(bob, bad, ALICE, 488, "no key-mgmt offered", MS_ERR_NOT_SECURE);
        snprintf(bad, SDP_CAP, "%.*sa=key-mgmt:mikey AAA*\r\n", (int)(swap - sdp), sdp);
        REFUSED(bob, bad, ALICE, 488, "malformed MIKEY: ", MS_ERR_SDP);
    }
    uint8_t junk[40];
    memcpy(junk, imsg, sizeof junk); /* a cut message */
    rebuild(bad, sdp, junk, sizeof junk, "", "");
    REFUSED(bob, bad, ALICE, 488, "malformed MIKEY: ", MS_ERR_MIKEY_MALFORMED);
    REFUSED(bob, "v=0\r\nhello\r\n", ALICE, 488, "malformed SDP: ", MS_ERR_SDP);
    rebuild(bad, sdp, imsg, n, "", "AES_256_XTS");
    REFUSED(bob, bad, ALICE, 488, "SRTP suite refused: ", MS_ERR_NOT_SECURE);
    ms_call_keys *strict;
    ms_call_keys_options os = ob;
    os.accepted_suites = MS_CALL_SUITE_GCM;
    strict = open_dev(bob_dir, &os);
    rebuild(bad, sdp, imsg, n, "", "AES_CM_128_HMAC_SHA1_80");
    REFUSED(strict, bad, ALICE, 488, "SRTP suite refused: ", MS_ERR_NOT_SECURE);
    ms_call_keys_free(strict);
    os.accepted_suites = MS_CALL_SUITE_CM; /* an offer without the attribute means GCM */
    strict = open_dev(bob_dir, &os);
    char *suite_line = strstr(sdp, "a=x-ms-srtp:");
    if (suite_line != NULL) {
        size_t head = (size_t)(suite_line - sdp);
        const char *tail = strstr(suite_line, "\r\n") + 2;
        snprintf(bad, SDP_CAP, "%.*s%s", (int)head, sdp, tail);
        REFUSED(strict, bad, ALICE, 488, "SRTP suite refused: AEAD_AES_128_GCM",
                MS_ERR_NOT_SECURE);
    }
    ms_call_keys_free(strict);

    /* the key checks: 606 */
    uint8_t t[MS_MIKEY_MAX_MESSAGE];
    memcpy(t, imsg, n);
    t[n - MS_ECCSI_SIG_BYTES + 5] ^= 0x01; /* a byte of the signature's r */
    rebuild(bad, sdp, t, n, "", "");
    REFUSED(bob, bad, ALICE, 606, "bad signature: ", MS_ERR_SIGNATURE);
    memcpy(t, imsg, n);
    t[40] ^= 0x01; /* a byte of RAND, under the signature */
    rebuild(bad, sdp, t, n, "", "");
    REFUSED(bob, bad, ALICE, 606, "bad signature: ", MS_ERR_SIGNATURE);

    REFUSED(bob, sdp, "sip:eve@example.org", 606, "caller mismatch: ", MS_ERR_MIKEY_INITIATOR);
    REFUSED(bob, sdp, "mailto:alice", 606, "caller mismatch: ", MS_ERR_MIKEY_INITIATOR);

    ms_call_crypto cm_;
    char *msdp = malloc(SDP_CAP);
    offer(mallory, msdp, &cm_, BOB);
    REFUSED(bob, msdp, MALLORY, 606, "unknown KMS: ", MS_ERR_MIKEY_UNKNOWN_KMS);
    ms_call_crypto_wipe(&cm_);
    free(msdp);

    tclock_set(&cb, F.now + 301); /* 5 min 1 s after Alice's clock */
    REFUSED(bob, sdp, ALICE, 606, "stale timestamp: ", MS_ERR_MIKEY_TIMESTAMP);
    tclock_set(&cb, F.now - 301);
    REFUSED(bob, sdp, ALICE, 606, "stale timestamp: ", MS_ERR_MIKEY_TIMESTAMP);
    tclock_set(&cb, F.now + 299);
    ms_call_crypto cr;
    ms_call_refusal why;
    CHECK_ERR(ms_call_check_offer(bob, &cr, NULL, &why, sdp, strlen(sdp), ALICE), MS_OK);
    REFUSED(bob, sdp, ALICE, 606, "replay: ", MS_ERR_MIKEY_REPLAY);

    char *csdp = malloc(SDP_CAP);
    ms_call_crypto cc;
    offer(alice, csdp, &cc, CAROL);
    REFUSED(bob, csdp, ALICE, 606, "not addressed to me: ", MS_ERR_MIKEY_RESPONDER);
    ms_call_crypto_wipe(&cc);

    /* A period Bob holds no keys for: just after the boundary, Alice signs with her keys
     * of the next period (within the grace, so the period is accepted). */
    ms_call_keys_free(alice);
    ms_call_keys_free(bob);
    tclock_set(&ca, F.p0_end + 60);
    tclock_set(&cb, F.p0_end + 60);
    alice = open_dev(alice_dir, &oa);
    bob = open_dev(bob_dir, &ob);
    offer(alice, csdp, &cc, BOB);
    CHECK(cc.period_no == F.p0 + 1);
    REFUSED(bob, csdp, ALICE, 606, "no keys for that period: ", MS_ERR_MIKEY_KEY_PERIOD);
    ms_call_crypto_wipe(&cc);

    ms_call_crypto_wipe(&ci);
    ms_call_crypto_wipe(&cr);
    free(csdp);
    free(sdp);
    free(bad);
    ms_call_keys_free(alice);
    ms_call_keys_free(bob);
    ms_call_keys_free(mallory);
}

/* ---- the auditor --------------------------------------------------------------------------- */

static void test_audit(void)
{
    tclock ca, cb;
    tclock_set(&ca, F.now - 10 * 86400); /* ten days before: no window applies to the auditor */
    tclock_set(&cb, F.now - 10 * 86400);
    ms_call_keys_options oa = options(MS_CALL_KEYS_LIVE, &ca), ob = options(MS_CALL_KEYS_LIVE, &cb);
    ms_call_keys *alice = open_dev(alice_dir, &oa), *bob = open_dev(bob_dir, &ob);
    char *to_bob = malloc(SDP_CAP), *from_bob = malloc(SDP_CAP), *to_carol = malloc(SDP_CAP);
    ms_call_crypto c1, c2, c3, got;
    ms_call_refusal why;
    offer(alice, to_bob, &c1, BOB);      /* a call to Bob */
    offer(bob, from_bob, &c2, ALICE);    /* a call Bob made */
    offer(alice, to_carol, &c3, CAROL);  /* not Bob's */

    ms_call_keys *aud = open_auditor(BOB, F.p0, bob_p0.rsk, MS_OK);
    CHECK(strcmp(ms_call_keys_own_uri(aud), BOB) == 0);
    CHECK_ERR(ms_call_check_offer(aud, &got, NULL, &why, to_bob, strlen(to_bob), ALICE), MS_OK);
    same_keys(&c1, &got);
    CHECK(!got.opened_as_initiator && strcmp(got.peer, ALICE) == 0);
    /* a capture may hold an INVITE twice: the auditor opens it again */
    CHECK_ERR(ms_call_check_offer(aud, &got, NULL, &why, to_bob, strlen(to_bob), NULL), MS_OK);
    same_keys(&c1, &got);
    CHECK_ERR(ms_call_check_offer(aud, &got, NULL, &why, from_bob, strlen(from_bob), BOB), MS_OK);
    same_keys(&c2, &got);
    CHECK(got.opened_as_initiator && strcmp(got.peer, ALICE) == 0);
    REFUSED(aud, to_carol, ALICE, 606, "not addressed to me: ", MS_ERR_MIKEY_RESPONDER);
    /* the auditor makes no calls */
    char detail[200];
    CHECK_ERR(ms_call_make_offer(aud, to_carol, SDP_CAP, &got, ALICE, "127.0.0.1", 1, detail,
                                 sizeof detail), MS_ERR_ARG);
    ms_call_keys_free(aud);

    /* Alice's auditor opens her outgoing calls through SAKKE-to-self */
    aud = open_auditor(ALICE, F.p0, alice_p0.rsk, MS_OK);
    CHECK_ERR(ms_call_check_offer(aud, &got, NULL, &why, to_bob, strlen(to_bob), ALICE), MS_OK);
    same_keys(&c1, &got);
    CHECK(got.opened_as_initiator && strcmp(got.peer, BOB) == 0);
    CHECK_ERR(ms_call_check_offer(aud, &got, NULL, &why, from_bob, strlen(from_bob), BOB), MS_OK);
    same_keys(&c2, &got);
    CHECK(!got.opened_as_initiator && strcmp(got.peer, BOB) == 0);
    ms_call_keys_free(aud);

    /* another user's or another period's key opens nothing of Bob's */
    aud = open_auditor(CAROL, F.p0, carol_p0.rsk, MS_OK);
    REFUSED(aud, to_bob, ALICE, 606, "not addressed to me: ", MS_ERR_MIKEY_RESPONDER);
    REFUSED(aud, from_bob, BOB, 606, "not addressed to me: ", MS_ERR_MIKEY_RESPONDER);
    ms_call_keys_free(aud);
    aud = open_auditor(BOB, F.p0 + 1, bob_p1.rsk, MS_OK);
    REFUSED(aud, to_bob, ALICE, 606, "no keys for that period: ", MS_ERR_MIKEY_KEY_PERIOD);
    REFUSED(aud, from_bob, BOB, 606, "no keys for that period: ", MS_ERR_MIKEY_KEY_PERIOD);
    ms_call_keys_free(aud);
    /* an RSK that is not the named user's for the named period is refused at once */
    open_auditor(BOB, F.p0, bob_p1.rsk, MS_ERR_RSK_INVALID);
    open_auditor(BOB, F.p0, alice_p0.rsk, MS_ERR_RSK_INVALID);
    /* misuse */
    ms_call_keys *k = NULL;
    tclock unused = {0};
    ms_call_keys_options lo = options(MS_CALL_KEYS_LIVE, &unused);
    ms_mikey_kms_info info = kms_info(&F);
    CHECK_ERR(ms_call_keys_open_audit(&k, BOB, F.p0, bob_p0.rsk, &info, &lo, NULL, 0), MS_ERR_ARG);
    lo.mode = MS_CALL_KEYS_AUDIT;
    CHECK_ERR(ms_call_keys_open(&k, bob_dir, FX_PASS, strlen(FX_PASS), &lo, NULL, 0), MS_ERR_ARG);
    CHECK(k == NULL);

    ms_call_crypto_wipe(&c1);
    ms_call_crypto_wipe(&c2);
    ms_call_crypto_wipe(&c3);
    ms_call_crypto_wipe(&got);
    free(to_bob);
    free(from_bob);
    free(to_carol);
    ms_call_keys_free(alice);
    ms_call_keys_free(bob);
}

/* ---- voicemail: stored messages ------------------------------------------------------------ */

static void test_stored(void)
{
    tclock ca, cb;
    tclock_set(&ca, F.now);
    ms_call_keys_options oa = options(MS_CALL_KEYS_LIVE, &ca);
    ms_call_keys *alice = open_dev(alice_dir, &oa);
    char *sdp = malloc(SDP_CAP), *late = malloc(SDP_CAP);
    ms_call_crypto ci, got;
    ms_call_refusal why;
    offer(alice, sdp, &ci, BOB);

    /* played three days later, and again: no window, no replay refusal */
    tclock_set(&cb, F.now + 3 * 86400);
    ms_call_keys_options ob = options(MS_CALL_KEYS_STORED, &cb);
    ms_call_keys *bob = open_dev(bob_dir, &ob);
    for (int i = 0; i < 2; i++) {
        CHECK_ERR(ms_call_check_offer(bob, &got, NULL, &why, sdp, strlen(sdp), ALICE), MS_OK);
        same_keys(&ci, &got);
        CHECK(strcmp(got.peer, ALICE) == 0);
    }
    /* the signature and the addressee are still checked */
    uint8_t imsg[MS_MIKEY_MAX_MESSAGE];
    size_t n = sdp_imessage(imsg, sizeof imsg, sdp);
    imsg[n - 10] ^= 0x80;
    CHECK_ERR(ms_call_open_imessage(bob, &got, &why, imsg, n, ALICE), MS_ERR_SIGNATURE);
    CHECK(why.sip_status == 606 && strncmp(why.warning, "bad signature: ", 15) == 0);
    ms_call_crypto cc;
    char *csdp = malloc(SDP_CAP);
    offer(alice, csdp, &cc, CAROL);
    REFUSED(bob, csdp, ALICE, 606, "not addressed to me: ", MS_ERR_MIKEY_RESPONDER);
    ms_call_keys_free(bob);

    /* played in the next period, past the two days of grace: the old keys still open it */
    tclock_set(&cb, F.p0_end + 5 * 86400);
    bob = open_dev(bob_dir, &ob);
    CHECK_ERR(ms_call_check_offer(bob, &got, NULL, &why, sdp, strlen(sdp), ALICE), MS_OK);
    same_keys(&ci, &got);

    /* a message of a period Bob never held keys for */
    tclock_set(&ca, F.p0_end + 3 * 86400);
    offer(alice, late, &cc, BOB);
    CHECK(cc.period_no == F.p0 + 1);
    REFUSED(bob, late, ALICE, 606, "no keys for that period: ", MS_ERR_MIKEY_KEY_PERIOD);
    ms_call_keys_free(bob);

    /* a stored message cannot come from the future */
    tclock_set(&cb, F.now - 3600);
    bob = open_dev(bob_dir, &ob);
    REFUSED(bob, sdp, ALICE, 606, "stale timestamp: ", MS_ERR_MIKEY_TIMESTAMP);
    ms_call_keys_free(bob);

    ms_call_crypto_wipe(&ci);
    ms_call_crypto_wipe(&cc);
    ms_call_crypto_wipe(&got);
    free(sdp);
    free(late);
    free(csdp);
    ms_call_keys_free(alice);
}

/* ---- RFC 6509: a tel URI community ---------------------------------------------------------- */

static void test_rfc6509(void)
{
    fx T;
    fx_init(&T, 1);
    char a_dir[300], b_dir[300];
    uint64_t p[1] = {T.p0};
    make_device(&T, a_dir, "tel:+447700900123", "ta", p, 1);
    make_device(&T, b_dir, "tel:+447700900456", "tb", p, 1);
    tclock ca, cb;
    tclock_set(&ca, T.now);
    tclock_set(&cb, T.now);
    ms_call_keys_options oa = options(MS_CALL_KEYS_LIVE, &ca), ob = options(MS_CALL_KEYS_LIVE, &cb);
    oa.profile = ob.profile = MS_MIKEY_PROFILE_RFC6509;
    oa.suite = MS_SRTP_AES_CM_128_HMAC_SHA1_80;
    ms_call_keys *a = open_dev(a_dir, &oa), *b = open_dev(b_dir, &ob);
    char *sdp = malloc(SDP_CAP);
    ms_call_crypto ci, cr;
    ms_call_refusal why;
    char detail[200];
    CHECK_ERR(ms_call_make_offer(a, sdp, SDP_CAP, &ci, "sip:+447700900456@example.org;user=phone",
                                 "::1", 5004, detail, sizeof detail), MS_OK);
    CHECK(strcmp(ci.peer, "tel:+447700900456") == 0);
    CHECK_ERR(ms_call_check_offer(b, &cr, NULL, &why, sdp, strlen(sdp),
                                  "<sip:+447700900123@example.org;user=phone>"), MS_OK);
    CHECK(strcmp(cr.peer, "tel:+447700900123") == 0);
    CHECK(cr.srtp.mki_len == 0 && ci.srtp.mki_len == 0 && cr.srtp.salt_len == 14);
    CHECK_MEM(ci.srtp.master_key, cr.srtp.master_key, 16);
    CHECK_MEM(ci.srtp.master_salt, cr.srtp.master_salt, 14);
    /* its crypto session is CS ID 1 of the SRTP-ID map */
    ms_srtp_keys k1;
    CHECK_ERR(ms_mikey_srtp_keys(&k1, &cr.mikey, 1, 16, 14), MS_OK);
    CHECK_MEM(k1.master_key, cr.srtp.master_key, 16);
    ms_wipe(&k1, sizeof k1);
    ms_call_crypto_wipe(&ci);
    ms_call_crypto_wipe(&cr);
    free(sdp);
    ms_call_keys_free(a);
    ms_call_keys_free(b);
    fx_cleanup(&T);
}

static void test_open_errors(void)
{
    ms_call_keys *k = NULL;
    char detail[256] = "";
    CHECK_ERR(ms_call_keys_open(&k, bob_dir, "wrong", 5, NULL, detail, sizeof detail),
              MS_ERR_PASSPHRASE);
    CHECK(k == NULL);
    CHECK(ms_call_keys_open(&k, "/nonexistent/ks", FX_PASS, strlen(FX_PASS), NULL, detail,
                            sizeof detail) != MS_OK && k == NULL && detail[0] != '\0');
    /* NULL options: live, PCK, real clock (the keys of 2026 are then out of date, which
     * only shows when an offer is made) */
    CHECK_ERR(ms_call_keys_open(&k, bob_dir, FX_PASS, strlen(FX_PASS), NULL, detail,
                                sizeof detail), MS_OK);
    ms_call_keys_free(k);
    ms_call_keys_free(NULL);
    CHECK(ms_call_keys_own_uri(NULL) == NULL);
    ms_call_crypto_wipe(NULL);
}

int main(void)
{
    ms_test_seed();
    setup();
    test_identity();
    test_call();
    test_refusals();
    test_audit();
    test_stored();
    test_rfc6509();
    test_open_errors();
    ms_wipe(&bob_p0, sizeof bob_p0);
    ms_wipe(&bob_p1, sizeof bob_p1);
    ms_wipe(&alice_p0, sizeof alice_p0);
    ms_wipe(&carol_p0, sizeof carol_p0);
    fx_cleanup(&F);
    fx_cleanup(&G);
    return ms_test_finish();
}
