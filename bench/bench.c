/*
 * ms_bench: times the public operations and the internal layers they are built on.
 *
 * Every operation is warmed up, then timed in 9 runs of a batch sized so that one run
 * takes about 100 ms; the runs of all operations are interleaved (round r times run r
 * of each), and the median run is reported, which ignores the runs hit by a burst of
 * load on the shared machine, a context switch or a frequency change. Inputs are freshly generated keys, and every
 * call's result is checked: timing a call that fails would be meaningless.
 *
 * Usage: ms_bench [--quick] [--json] [--filter NAME]... [--list] [--calls N] [--adx]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "call/rtp.h"
#include "call/srtp.h"
#include "crypto/pairing.h"
#include "crypto/rng.h"
#include "mikeysakke/crypto.h"
#include "kms/store.h"
#include "mikeysakke/mikey.h"

/* The identifier of RFC 6507/6508 Appendix A ("2011-02\0tel:+447700900123\0"). */
static const uint8_t bench_id[] = "2011-02\0tel:+447700900123";
#define BENCH_ID_LEN sizeof bench_id
static const uint8_t bench_msg[] = "message";

/* Field operations are too fast to time one per call; each call does this many. */
#define FP_REPS 16

/* What an operation needs set up before it can run. */
enum {
    NEED_FIELD = 1,
    NEED_ECCSI = 2,
    NEED_SAKKE = 4,
    NEED_CURVE = 8,
    NEED_MIKEY = 16,
    NEED_SRTP = 32,
};

/* MIKEY (RFC 6509 profile): Alice initiates to Bob, both under one KMS. */
#define BENCH_KMS "kms.example.org"
#define BENCH_ALICE "tel:+447700900123"
#define BENCH_BOB "tel:+447700900456"
#define BENCH_MSG_MAX 1024

/* SRTP: a 20 ms Opus frame at 32 kbit/s is 80 octets. */
#define BENCH_SRTP_PAYLOAD 80

typedef struct bench_mk_msg {
    uint8_t buf[BENCH_MSG_MAX];
    size_t len;
} bench_mk_msg;

typedef struct bench_state {
    int ready; /* NEED_* bits already set up */

    ms_fp fa, fb, facc;

    uint8_t ksak[MS_ECCSI_SCALAR_BYTES], kpak[MS_ECCSI_POINT_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES], pvt[MS_ECCSI_POINT_BYTES];
    uint8_t sig[MS_ECCSI_SIG_BYTES], sig_out[MS_ECCSI_SIG_BYTES];
    ms_eccsi_signer *signer;
    ms_eccsi_verifier *verifier;

    uint8_t z[MS_SAKKE_SECRET_BYTES], zpub[MS_SAKKE_POINT_BYTES];
    uint8_t rsk[MS_SAKKE_POINT_BYTES], rsk_out[MS_SAKKE_POINT_BYTES];
    uint8_t ssv[MS_SAKKE_SSV_BYTES], ssv_out[MS_SAKKE_SSV_BYTES];
    uint8_t sed[MS_SAKKE_SED_BYTES], sed_out[MS_SAKKE_SED_BYTES];
    ms_sakke_kms *kms;
    ms_sakke_peer *peer;
    ms_sakke_prepared_rsk *prep;

    ms_sakke_affine p, pa, pb;
    uint64_t k[MS_LIMBS];
    ms_fp g;
    ms_pairing_prepared *pp, *pp_out;
    ms_sakke_comb *comb, *comb_a;
    ms_pfp_table *gtab;

    /* MIKEY: initiator contexts (cold, prepared), the responder's keys and its context,
     * and a pool of fresh messages so no timed respond is refused as a replay. */
    ms_mikey_ctx *mk_init_cold, *mk_init_prep, *mk_resp;
    int mk_resp_prepared; /* what mk_resp was built as */
    size_t mk_resp_used;  /* messages mk_resp has accepted (its replay cache fills) */
    uint8_t mk_Z[MS_SAKKE_POINT_BYTES], mk_kpak[MS_ECCSI_POINT_BYTES];
    uint8_t mk_rsk[MS_SAKKE_POINT_BYTES];
    uint8_t mk_ssk[MS_ECCSI_SCALAR_BYTES], mk_pvt[MS_ECCSI_POINT_BYTES];
    uint64_t mk_period;
    uint8_t mk_out[BENCH_MSG_MAX];
    bench_mk_msg *mk_pool;
    size_t mk_pool_cap, mk_pool_len, mk_pool_next;
    ms_mikey_result mk_res;

    /* SRTP: one call direction per suite (sender and receiver), 4-octet MKI. */
    ms_srtp *media_tx[2], *media_rx[2];
    uint16_t media_seq[2]; /* per sender: each sees consecutive numbers */
    _Alignas(4) uint8_t media_pkt[BENCH_SRTP_PAYLOAD + MS_RTP_HEADER + MS_SRTP_MAX_OVERHEAD];
} bench_state;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "ms_bench: %s failed: %s\n", what, why);
    exit(1);
}

static void need(ms_err err, const char *what)
{
    if (err != MS_OK)
        die(what, ms_errname(err));
}

static void need0(int ret, const char *what)
{
    if (ret != 0)
        die(what, "returned nonzero");
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        die("malloc", "out of memory");
    return p;
}

static void random_bytes(uint8_t *out, size_t len)
{
    need(ms_rng_fill(NULL, out, len), "random bytes");
}

/* ---- setup --------------------------------------------------------------------------- */

static void setup_field(bench_state *s)
{
    uint8_t buf[MS_BYTES];
    /* a top octet below 0x80 keeps the value below p (p starts with 0x99) */
    random_bytes(buf, sizeof buf);
    buf[0] &= 0x7f;
    ms_fp_from_bytes(&s->fa, buf);
    random_bytes(buf, sizeof buf);
    buf[0] &= 0x7f;
    ms_fp_from_bytes(&s->fb, buf);
    s->facc = s->fa;
}

static void setup_eccsi(bench_state *s)
{
    need(ms_eccsi_master_keygen(s->ksak, s->kpak, NULL), "ms_eccsi_master_keygen");
    need(ms_eccsi_ssk_issue(s->ssk, s->pvt, s->ksak, s->kpak, bench_id, BENCH_ID_LEN, NULL),
         "ms_eccsi_ssk_issue");
    need(ms_eccsi_signer_new(&s->signer, s->kpak, bench_id, BENCH_ID_LEN, s->ssk, s->pvt),
         "ms_eccsi_signer_new");
    need(ms_eccsi_verifier_new(&s->verifier, s->kpak), "ms_eccsi_verifier_new");
    need(ms_eccsi_sign(s->signer, s->sig, bench_msg, sizeof bench_msg, NULL, NULL),
         "ms_eccsi_sign");
    need(ms_eccsi_verify(s->verifier, bench_id, BENCH_ID_LEN, bench_msg, sizeof bench_msg,
                         s->sig, sizeof s->sig, NULL),
         "ms_eccsi_verify");
}

static void setup_sakke(bench_state *s)
{
    need(ms_sakke_master_keygen(s->z, s->zpub, NULL), "ms_sakke_master_keygen");
    need(ms_sakke_kms_new(&s->kms, s->zpub), "ms_sakke_kms_new");
    need(ms_sakke_rsk_issue(s->kms, s->rsk, s->z, bench_id, BENCH_ID_LEN), "ms_sakke_rsk_issue");
    need(ms_sakke_rsk_validate(s->kms, bench_id, BENCH_ID_LEN, s->rsk), "ms_sakke_rsk_validate");
    need(ms_sakke_peer_new(&s->peer, s->kms, bench_id, BENCH_ID_LEN), "ms_sakke_peer_new");
    need(ms_sakke_prepared_rsk_new(&s->prep, s->kms, bench_id, BENCH_ID_LEN, s->rsk),
         "ms_sakke_prepared_rsk_new");
    random_bytes(s->ssv, sizeof s->ssv);
    need(ms_sakke_encap(s->kms, s->sed, bench_id, BENCH_ID_LEN, s->ssv, sizeof s->ssv),
         "ms_sakke_encap");
    /* both decapsulation paths must give the SSV back, or their timings mean nothing */
    need(ms_sakke_decap(s->kms, s->ssv_out, sizeof s->ssv_out, bench_id, BENCH_ID_LEN, s->rsk,
                        s->sed, sizeof s->sed),
         "ms_sakke_decap");
    if (memcmp(s->ssv_out, s->ssv, sizeof s->ssv) != 0)
        die("ms_sakke_decap", "wrong SSV");
    need(ms_sakke_peer_encap(s->peer, s->sed_out, s->ssv, sizeof s->ssv), "ms_sakke_peer_encap");
    need(ms_sakke_prepared_rsk_decap(s->prep, s->ssv_out, sizeof s->ssv_out, s->sed_out,
                                     sizeof s->sed_out),
         "ms_sakke_prepared_rsk_decap");
    if (memcmp(s->ssv_out, s->ssv, sizeof s->ssv) != 0)
        die("ms_sakke_prepared_rsk_decap", "wrong SSV");
}

/* A random scalar in [0, q): 1024 random bits reduced (2^1024 < 8q). */
static void random_scalar(uint64_t k[MS_LIMBS])
{
    uint8_t buf[MS_BYTES];
    random_bytes(buf, sizeof buf);
    ms_u1024_from_be(k, buf, sizeof buf);
    ms_mont_reduce_small(k, k, 0, &ms_mont_q);
}

static void random_point(ms_sakke_affine *r, const ms_sakke_affine *p)
{
    uint64_t k[MS_LIMBS];
    ms_sakke_jac j;
    random_scalar(k);
    ms_sakke_mul(&j, p, k);
    need0(ms_sakke_jac_to_affine(r, &j), "ms_sakke_jac_to_affine");
}

static void setup_curve(bench_state *s)
{
    ms_sakke_generator(&s->p);
    random_scalar(s->k);
    random_point(&s->pa, &s->p);
    random_point(&s->pb, &s->p);
    s->pp = xmalloc(ms_pairing_prepared_size());
    s->pp_out = xmalloc(ms_pairing_prepared_size());
    need0(ms_pairing_prepare(s->pp, &s->pa), "ms_pairing_prepare");
    s->comb = xmalloc(ms_sakke_comb_size());
    need0(ms_sakke_comb_build(s->comb, &s->p), "ms_sakke_comb_build");
    s->comb_a = xmalloc(ms_sakke_comb_size());
    need0(ms_sakke_comb_build(s->comb_a, &s->pa), "ms_sakke_comb_build");
    memcpy(s->g.v, ms_sakke_g_mont, sizeof s->g.v);
    s->gtab = xmalloc(ms_pfp_table_size());
    need0(ms_pfp_table_build(s->gtab, &s->g), "ms_pfp_table_build");

    /* the prepared and plain pairings must agree (and be symmetric) */
    ms_fp e1, e2;
    need0(ms_pairing(&e1, &s->pa, &s->pb), "ms_pairing");
    need0(ms_pairing_prepared_eval(&e2, s->pp, &s->pb), "ms_pairing_prepared_eval");
    if (memcmp(&e1, &e2, sizeof e1) != 0)
        die("ms_pairing_prepared_eval", "differs from ms_pairing");
}

/* ---- MIKEY ----------------------------------------------------------------------------- */

static const ms_id_scheme mk_scheme = {.scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY};

static ms_mikey_ctx *mk_ctx(bench_state *s, const char *own, int prepare)
{
    ms_mikey_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.profile = MS_MIKEY_PROFILE_RFC6509;
    cfg.own_uri = own;
    cfg.prepare = prepare != 0;
    ms_mikey_ctx *ctx;
    need(ms_mikey_ctx_new(&ctx, &cfg), "ms_mikey_ctx_new");
    ms_mikey_kms_info kms;
    memset(&kms, 0, sizeof kms);
    kms.uri = BENCH_KMS;
    kms.scheme = mk_scheme;
    kms.Z = s->mk_Z;
    kms.kpak = s->mk_kpak;
    need(ms_mikey_add_kms(ctx, &kms), "ms_mikey_add_kms");
    return ctx;
}

static void mk_init_params(ms_mikey_init_params *p)
{
    memset(p, 0, sizeof *p);
    p->responder = BENCH_BOB; /* timestamp 0: now, so every message is fresh */
}

/* A fresh responder context: prepared (RSK tables) or cold, with an empty replay cache. */
static void mk_new_responder(bench_state *s, int prepared)
{
    if (s->mk_resp != NULL)
        ms_mikey_ctx_free(s->mk_resp);
    s->mk_resp = mk_ctx(s, BENCH_BOB, prepared);
    need(ms_mikey_add_keys(s->mk_resp, BENCH_KMS, s->mk_period, s->mk_rsk, NULL, NULL),
         "ms_mikey_add_keys (RSK)");
    s->mk_resp_prepared = prepared;
    s->mk_resp_used = 0;
}

static void setup_mikey(bench_state *s)
{
    uint8_t z[MS_SAKKE_SECRET_BYTES], ksak[MS_ECCSI_SCALAR_BYTES];
    uint8_t ida[MS_SAKKE_ID_MAX_BYTES], idb[MS_SAKKE_ID_MAX_BYTES];
    size_t ida_len, idb_len;
    ms_sakke_kms *kms;

    need(ms_key_period(&mk_scheme, &s->mk_period, ms_ntp_now() >> 32), "ms_key_period");
    need(ms_identifier(&mk_scheme, ida, sizeof ida, &ida_len, BENCH_ALICE, s->mk_period),
         "ms_identifier (Alice)");
    need(ms_identifier(&mk_scheme, idb, sizeof idb, &idb_len, BENCH_BOB, s->mk_period),
         "ms_identifier (Bob)");
    need(ms_sakke_master_keygen(z, s->mk_Z, NULL), "ms_sakke_master_keygen");
    need(ms_eccsi_master_keygen(ksak, s->mk_kpak, NULL), "ms_eccsi_master_keygen");
    need(ms_sakke_kms_new(&kms, s->mk_Z), "ms_sakke_kms_new");
    need(ms_sakke_rsk_issue(kms, s->mk_rsk, z, idb, idb_len), "ms_sakke_rsk_issue (Bob)");
    ms_sakke_kms_free(kms);
    need(ms_eccsi_ssk_issue(s->mk_ssk, s->mk_pvt, ksak, s->mk_kpak, ida, ida_len, NULL),
         "ms_eccsi_ssk_issue (Alice)");
    ms_wipe(z, sizeof z);
    ms_wipe(ksak, sizeof ksak);

    s->mk_init_cold = mk_ctx(s, BENCH_ALICE, 0);
    need(ms_mikey_add_keys(s->mk_init_cold, BENCH_KMS, s->mk_period, NULL, s->mk_ssk, s->mk_pvt),
         "ms_mikey_add_keys (SSK)");
    s->mk_init_prep = mk_ctx(s, BENCH_ALICE, 1);
    need(ms_mikey_add_keys(s->mk_init_prep, BENCH_KMS, s->mk_period, NULL, s->mk_ssk, s->mk_pvt),
         "ms_mikey_add_keys (SSK)");
    need(ms_mikey_prepare_peer(s->mk_init_prep, BENCH_BOB, BENCH_KMS, ms_ntp_now()),
         "ms_mikey_prepare_peer");

    /* Both initiators' messages must be accepted, with the same key, or timing them
     * means nothing. */
    ms_mikey_init_params p;
    mk_init_params(&p);
    ms_mikey_result sent;
    for (int prepared = 0; prepared < 2; prepared++) {
        size_t len;
        need(ms_mikey_initiate(prepared ? s->mk_init_prep : s->mk_init_cold, s->mk_out,
                               sizeof s->mk_out, &len, &sent, &p),
             "ms_mikey_initiate");
        mk_new_responder(s, prepared);
        need(ms_mikey_respond(s->mk_resp, &s->mk_res, s->mk_out, len, BENCH_ALICE, NULL),
             "ms_mikey_respond");
        if (s->mk_res.key_len != sent.key_len ||
            memcmp(s->mk_res.key, sent.key, sent.key_len) != 0)
            die("ms_mikey_respond", "recovered a different key");
        ms_mikey_result_wipe(&sent);
    }
}

static void setup_srtp(bench_state *s)
{
    const ms_srtp_suite suites[2] = {MS_SRTP_AEAD_AES_128_GCM,
                                     MS_SRTP_AES_CM_128_HMAC_SHA1_80};
    for (int i = 0; i < 2; i++) {
        ms_srtp_keys k = {.mki_len = 4};
        ms_srtp_suite_lengths(suites[i], &k.key_len, &k.salt_len);
        random_bytes(k.master_key, k.key_len);
        random_bytes(k.master_salt, k.salt_len);
        random_bytes(k.mki, k.mki_len);
        need(ms_srtp_new(&s->media_tx[i], suites[i], &k, true), "ms_srtp_new");
        need(ms_srtp_new(&s->media_rx[i], suites[i], &k, false), "ms_srtp_new");
        ms_wipe(&k, sizeof k);
    }
}

static void setup(bench_state *s, int needs)
{
    int todo = needs & ~s->ready;
    if (todo & NEED_FIELD)
        setup_field(s);
    if (todo & NEED_ECCSI)
        setup_eccsi(s);
    if (todo & NEED_SAKKE)
        setup_sakke(s);
    if (todo & NEED_CURVE)
        setup_curve(s);
    if (todo & NEED_MIKEY)
        setup_mikey(s);
    if (todo & NEED_SRTP)
        setup_srtp(s);
    s->ready |= needs;
}

static void teardown(bench_state *s)
{
    ms_eccsi_signer_free(s->signer);
    ms_eccsi_verifier_free(s->verifier);
    ms_sakke_kms_free(s->kms);
    ms_sakke_peer_free(s->peer);
    ms_sakke_prepared_rsk_free(s->prep);
    free(s->pp);
    free(s->pp_out);
    free(s->comb);
    free(s->comb_a);
    free(s->gtab);
    if (s->mk_init_cold != NULL)
        ms_mikey_ctx_free(s->mk_init_cold);
    if (s->mk_init_prep != NULL)
        ms_mikey_ctx_free(s->mk_init_prep);
    if (s->mk_resp != NULL)
        ms_mikey_ctx_free(s->mk_resp);
    free(s->mk_pool);
    ms_mikey_result_wipe(&s->mk_res);
    for (int i = 0; i < 2; i++) {
        ms_srtp_free(s->media_tx[i]);
        ms_srtp_free(s->media_rx[i]);
    }
    ms_wipe(s, sizeof *s);
}

/* ---- the operations ------------------------------------------------------------------ */

static void op_fp_mul(bench_state *s)
{
    for (int i = 0; i < FP_REPS; i++)
        ms_fp_mul(&s->facc, &s->facc, &s->fb);
}

static void op_fp_mul_lazy(bench_state *s)
{
    ms_fpw w;
    for (int i = 0; i < FP_REPS; i++) {
        ms_fp_mulw(&w, &s->facc, &s->fb);
        ms_fp_redc(&s->facc, &w);
    }
}

static void op_fp_sqr(bench_state *s)
{
    for (int i = 0; i < FP_REPS; i++)
        ms_fp_sqr(&s->facc, &s->facc);
}

static void op_fp_inv(bench_state *s)
{
    ms_fp_inv(&s->facc, &s->fa);
}

static void op_fp_inv_blinded(bench_state *s)
{
    need0(ms_fp_inv_blinded(&s->facc, &s->fa), "ms_fp_inv_blinded");
}

static void op_eccsi_sign(bench_state *s)
{
    need(ms_eccsi_sign(s->signer, s->sig_out, bench_msg, sizeof bench_msg, NULL, NULL),
         "ms_eccsi_sign");
}

static void op_eccsi_verify_cold(bench_state *s)
{
    /* a new verifier has an empty cache: HS and Y are computed again */
    ms_eccsi_verifier *v;
    need(ms_eccsi_verifier_new(&v, s->kpak), "ms_eccsi_verifier_new");
    need(ms_eccsi_verify(v, bench_id, BENCH_ID_LEN, bench_msg, sizeof bench_msg, s->sig,
                         sizeof s->sig, NULL),
         "ms_eccsi_verify");
    ms_eccsi_verifier_free(v);
}

static void op_eccsi_verify_cached(bench_state *s)
{
    need(ms_eccsi_verify(s->verifier, bench_id, BENCH_ID_LEN, bench_msg, sizeof bench_msg,
                         s->sig, sizeof s->sig, NULL),
         "ms_eccsi_verify");
}

static void op_eccsi_ssk_validate(bench_state *s)
{
    uint8_t hs[MS_ECCSI_SCALAR_BYTES];
    need(ms_eccsi_ssk_validate(hs, s->kpak, bench_id, BENCH_ID_LEN, s->ssk, s->pvt),
         "ms_eccsi_ssk_validate");
}

static void op_sakke_kms_new(bench_state *s)
{
    ms_sakke_kms *kms;
    need(ms_sakke_kms_new(&kms, s->zpub), "ms_sakke_kms_new");
    ms_sakke_kms_free(kms);
}

/* What a one-off user of a KMS object pays (the auditor, a client importing a key): the
 * object, then its first validation or decapsulation, which go without its tables. */
static void op_sakke_kms_new_rsk_validate(bench_state *s)
{
    ms_sakke_kms *kms;
    need(ms_sakke_kms_new(&kms, s->zpub), "ms_sakke_kms_new");
    need(ms_sakke_rsk_validate(kms, bench_id, BENCH_ID_LEN, s->rsk), "ms_sakke_rsk_validate");
    ms_sakke_kms_free(kms);
}

static void op_sakke_kms_new_decap(bench_state *s)
{
    ms_sakke_kms *kms;
    need(ms_sakke_kms_new(&kms, s->zpub), "ms_sakke_kms_new");
    need(ms_sakke_decap(kms, s->ssv_out, sizeof s->ssv_out, bench_id, BENCH_ID_LEN, s->rsk,
                        s->sed, sizeof s->sed),
         "ms_sakke_decap");
    ms_sakke_kms_free(kms);
}

static void op_sakke_rsk_issue(bench_state *s)
{
    need(ms_sakke_rsk_issue(s->kms, s->rsk_out, s->z, bench_id, BENCH_ID_LEN),
         "ms_sakke_rsk_issue");
}

static void op_sakke_rsk_validate(bench_state *s)
{
    need(ms_sakke_rsk_validate(s->kms, bench_id, BENCH_ID_LEN, s->rsk), "ms_sakke_rsk_validate");
}

static void op_sakke_prepare_peer(bench_state *s)
{
    ms_sakke_peer *peer;
    need(ms_sakke_peer_new(&peer, s->kms, bench_id, BENCH_ID_LEN), "ms_sakke_peer_new");
    ms_sakke_peer_free(peer);
}

static void op_sakke_prepare_rsk(bench_state *s)
{
    ms_sakke_prepared_rsk *prep;
    need(ms_sakke_prepared_rsk_new(&prep, s->kms, bench_id, BENCH_ID_LEN, s->rsk),
         "ms_sakke_prepared_rsk_new");
    ms_sakke_prepared_rsk_free(prep);
}

static void op_sakke_encap_cold(bench_state *s)
{
    need(ms_sakke_encap(s->kms, s->sed_out, bench_id, BENCH_ID_LEN, s->ssv, sizeof s->ssv),
         "ms_sakke_encap");
}

static void op_sakke_encap_prepared(bench_state *s)
{
    need(ms_sakke_peer_encap(s->peer, s->sed_out, s->ssv, sizeof s->ssv), "ms_sakke_peer_encap");
}

static void op_sakke_decap_cold(bench_state *s)
{
    need(ms_sakke_decap(s->kms, s->ssv_out, sizeof s->ssv_out, bench_id, BENCH_ID_LEN, s->rsk,
                        s->sed, sizeof s->sed),
         "ms_sakke_decap");
}

static void op_sakke_decap_prepared(bench_state *s)
{
    need(ms_sakke_prepared_rsk_decap(s->prep, s->ssv_out, sizeof s->ssv_out, s->sed,
                                     sizeof s->sed),
         "ms_sakke_prepared_rsk_decap");
}

static void op_sakke_pairing(bench_state *s)
{
    ms_fp e;
    need0(ms_pairing(&e, &s->pa, &s->pb), "ms_pairing");
}

static void op_sakke_pairing_prepare(bench_state *s)
{
    need0(ms_pairing_prepare(s->pp_out, &s->pa), "ms_pairing_prepare");
}

static void op_sakke_pairing_prepared_eval(bench_state *s)
{
    ms_fp e;
    need0(ms_pairing_prepared_eval(&e, s->pp, &s->pb), "ms_pairing_prepared_eval");
}

static void op_sakke_mul(bench_state *s)
{
    ms_sakke_jac j;
    ms_sakke_mul(&j, &s->pa, s->k);
}

static void op_sakke_comb_mul(bench_state *s)
{
    ms_sakke_jac j;
    ms_sakke_comb_mul(&j, s->comb, s->k);
}

static void op_sakke_comb_mul_batched(bench_state *s)
{
    ms_sakke_jac j;
    need(ms_sakke_comb_mul_batched(&j, s->comb, s->k), "ms_sakke_comb_mul_batched");
}

static void op_sakke_comb_mul2(bench_state *s)
{
    ms_sakke_jac j;
    need(ms_sakke_comb_mul2(&j, s->comb, s->k, s->comb_a, s->k), "ms_sakke_comb_mul2");
}

static void op_pfp_pow(bench_state *s)
{
    ms_fp e;
    need0(ms_pfp_pow(&e, &s->g, s->k), "ms_pfp_pow");
}

static void op_pfp_table_pow(bench_state *s)
{
    ms_fp e;
    need0(ms_pfp_table_pow(&e, s->gtab, s->k), "ms_pfp_table_pow");
}

static void op_mikey_initiate_cold(bench_state *s)
{
    ms_mikey_init_params p;
    size_t len;
    mk_init_params(&p);
    need(ms_mikey_initiate(s->mk_init_cold, s->mk_out, sizeof s->mk_out, &len, NULL, &p),
         "ms_mikey_initiate (cold)");
}

static void op_mikey_initiate_prepared(bench_state *s)
{
    ms_mikey_init_params p;
    size_t len;
    mk_init_params(&p);
    need(ms_mikey_initiate(s->mk_init_prep, s->mk_out, sizeof s->mk_out, &len, NULL, &p),
         "ms_mikey_initiate (prepared)");
}

/* Untimed, before `calls` responds: that many fresh messages (a replayed one would be
 * refused) and a responder whose replay cache has room for them. */
static void mk_fill(bench_state *s, size_t calls, int prepared)
{
    if (calls > s->mk_pool_cap) {
        free(s->mk_pool);
        s->mk_pool = xmalloc(calls * sizeof *s->mk_pool);
        s->mk_pool_cap = calls;
    }
    ms_mikey_init_params p;
    mk_init_params(&p);
    for (size_t i = 0; i < calls; i++)
        need(ms_mikey_initiate(s->mk_init_prep, s->mk_pool[i].buf, sizeof s->mk_pool[i].buf,
                               &s->mk_pool[i].len, NULL, &p),
             "ms_mikey_initiate (pool)");
    s->mk_pool_len = calls;
    s->mk_pool_next = 0;
    /* 4096 is the default replay capacity; stay well below it (no eviction). */
    if (s->mk_resp == NULL || s->mk_resp_prepared != prepared || s->mk_resp_used + calls > 2048)
        mk_new_responder(s, prepared);
}

static void before_mikey_respond_cold(bench_state *s, size_t calls)
{
    mk_fill(s, calls, 0);
}

static void before_mikey_respond_prepared(bench_state *s, size_t calls)
{
    mk_fill(s, calls, 1);
}

static void op_mikey_respond(bench_state *s)
{
    if (s->mk_pool_next == s->mk_pool_len)
        die("ms_mikey_respond", "message pool exhausted (a bug in ms_bench)");
    const bench_mk_msg *m = &s->mk_pool[s->mk_pool_next++];
    need(ms_mikey_respond(s->mk_resp, &s->mk_res, m->buf, m->len, BENCH_ALICE, NULL),
         "ms_mikey_respond");
    s->mk_resp_used++;
}

/* Table sizes reported beside the operation that builds the table. */
/* One RTP packet of a call: header and an Opus-sized payload, protected by the sender and
 * unprotected (authenticated, replay-checked, decrypted) by the receiver. */
static void media_round(bench_state *s, int suite)
{
    ms_rtp_header h = {.payload_type = 111, .seq = s->media_seq[suite],
                       .timestamp = 960u * s->media_seq[suite],
                       .ssrc = 0x5eed5eed};
    s->media_seq[suite]++;
    ms_rtp_write_header(s->media_pkt, &h);
    memset(s->media_pkt + MS_RTP_HEADER, 0x5a, BENCH_SRTP_PAYLOAD);
    size_t len = MS_RTP_HEADER + BENCH_SRTP_PAYLOAD;
    need(ms_srtp_protect(s->media_tx[suite], s->media_pkt, &len, sizeof s->media_pkt),
         "ms_srtp_protect");
    need(ms_srtp_unprotect(s->media_rx[suite], s->media_pkt, &len), "ms_srtp_unprotect");
    if (len != MS_RTP_HEADER + BENCH_SRTP_PAYLOAD)
        die("ms_srtp_unprotect", "wrong length");
}

static void op_srtp_gcm(bench_state *s)
{
    media_round(s, 0);
}

static void op_srtp_cm(bench_state *s)
{
    media_round(s, 1);
}

static size_t bytes_kms(const bench_state *s)
{
    return ms_sakke_kms_table_bytes(s->kms);
}

static size_t bytes_peer(const bench_state *s)
{
    return ms_sakke_peer_table_bytes(s->peer);
}

static size_t bytes_prepared_rsk(const bench_state *s)
{
    return ms_sakke_prepared_rsk_table_bytes(s->prep);
}

typedef struct op_def {
    const char *name;
    int needs;
    int reps; /* operations per call of run */
    void (*run)(bench_state *s);
    size_t (*bytes)(const bench_state *s); /* table built by the op, or NULL */
    /* Untimed preparation for `calls` calls of run (NULL: none); with it, warm-up
     * calls are timed one by one. */
    void (*before)(bench_state *s, size_t calls);
} op_def;

static const op_def ops[] = {
    {"fp_mul", NEED_FIELD, FP_REPS, op_fp_mul, NULL, NULL},
    {"fp_mulwide_redc", NEED_FIELD, FP_REPS, op_fp_mul_lazy, NULL, NULL},
    {"fp_sqr", NEED_FIELD, FP_REPS, op_fp_sqr, NULL, NULL},
    {"fp_inv", NEED_FIELD, 1, op_fp_inv, NULL, NULL},
    {"fp_inv_blinded", NEED_FIELD, 1, op_fp_inv_blinded, NULL, NULL},
    {"eccsi_sign", NEED_ECCSI, 1, op_eccsi_sign, NULL, NULL},
    {"eccsi_verify_cold", NEED_ECCSI, 1, op_eccsi_verify_cold, NULL, NULL},
    {"eccsi_verify_cached", NEED_ECCSI, 1, op_eccsi_verify_cached, NULL, NULL},
    {"eccsi_ssk_validate", NEED_ECCSI, 1, op_eccsi_ssk_validate, NULL, NULL},
    {"sakke_kms_new", NEED_SAKKE, 1, op_sakke_kms_new, bytes_kms, NULL},
    {"sakke_kms_new_rsk_validate", NEED_SAKKE, 1, op_sakke_kms_new_rsk_validate, NULL, NULL},
    {"sakke_kms_new_decap", NEED_SAKKE, 1, op_sakke_kms_new_decap, NULL, NULL},
    {"sakke_rsk_issue", NEED_SAKKE, 1, op_sakke_rsk_issue, NULL, NULL},
    {"sakke_rsk_validate", NEED_SAKKE, 1, op_sakke_rsk_validate, NULL, NULL},
    {"sakke_prepare_peer", NEED_SAKKE, 1, op_sakke_prepare_peer, bytes_peer, NULL},
    {"sakke_prepare_rsk", NEED_SAKKE, 1, op_sakke_prepare_rsk, bytes_prepared_rsk, NULL},
    {"sakke_encap_cold", NEED_SAKKE, 1, op_sakke_encap_cold, NULL, NULL},
    {"sakke_encap_prepared", NEED_SAKKE, 1, op_sakke_encap_prepared, NULL, NULL},
    {"sakke_decap_cold", NEED_SAKKE, 1, op_sakke_decap_cold, NULL, NULL},
    {"sakke_decap_prepared", NEED_SAKKE, 1, op_sakke_decap_prepared, NULL, NULL},
    {"sakke_pairing", NEED_CURVE, 1, op_sakke_pairing, NULL, NULL},
    {"sakke_pairing_prepare", NEED_CURVE, 1, op_sakke_pairing_prepare, NULL, NULL},
    {"sakke_pairing_prepared_eval", NEED_CURVE, 1, op_sakke_pairing_prepared_eval, NULL, NULL},
    {"sakke_mul", NEED_CURVE, 1, op_sakke_mul, NULL, NULL},
    {"sakke_comb_mul", NEED_CURVE, 1, op_sakke_comb_mul, NULL, NULL},
    {"sakke_comb_mul_batched", NEED_CURVE, 1, op_sakke_comb_mul_batched, NULL, NULL},
    {"sakke_comb_mul2", NEED_CURVE, 1, op_sakke_comb_mul2, NULL, NULL},
    {"pfp_pow", NEED_CURVE, 1, op_pfp_pow, NULL, NULL},
    {"pfp_table_pow", NEED_CURVE, 1, op_pfp_table_pow, NULL, NULL},
    {"mikey_initiate_cold", NEED_MIKEY, 1, op_mikey_initiate_cold, NULL, NULL},
    {"mikey_initiate_prepared", NEED_MIKEY, 1, op_mikey_initiate_prepared, NULL, NULL},
    {"mikey_respond_cold", NEED_MIKEY, 1, op_mikey_respond, NULL, before_mikey_respond_cold},
    {"mikey_respond_prepared", NEED_MIKEY, 1, op_mikey_respond, NULL,
     before_mikey_respond_prepared},
    {"srtp_protect_unprotect_gcm", NEED_SRTP, 1, op_srtp_gcm, NULL, NULL},
    {"srtp_protect_unprotect_cm", NEED_SRTP, 1, op_srtp_cm, NULL, NULL},
};
#define N_OPS (sizeof ops / sizeof ops[0])

/* KMS batch issuance: timed once per run as a whole (print_issue). */
#define ISSUE_PERIOD 1000u

typedef struct issue_def {
    const char *name;
    int users;
    unsigned threads;
} issue_def;

/* 500 users is the headline (the one-off SAKKE KMS table, ~70 ms, weighs on it); 2000
 * users shows the rate a large community sees; one thread shows the scaling. */
static const issue_def issue_ops[] = {
    {"kms_issue_batch", 500, 2},
    {"kms_issue_batch_2000", 2000, 2},
    {"kms_issue_batch_1thread", 500, 1},
};
#define N_ISSUE_OPS (sizeof issue_ops / sizeof issue_ops[0])

/* ---- timing -------------------------------------------------------------------------- */

#define MAX_RUNS 15

typedef struct bench_cfg {
    int runs;      /* timed runs; the median is reported */
    double run_s;  /* target length of one run */
    double warm_s; /* warm-up length, also used to size the batch */
    int json;
    const char *filters[32];
    int n_filters;
    long calls; /* > 0: no timing, exactly this many calls per operation */
} bench_cfg;

static double now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        die("clock_gettime", "no monotonic clock");
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (every thread). */
static double cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        die("clock_gettime", "no process CPU clock");
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Warms caches and clocks and learns roughly how long one call takes (with a `before`
 * step only the calls themselves count); returns the number of calls that fill one run
 * of about cfg->run_s. */
static size_t calibrate(const op_def *op, bench_state *s, const bench_cfg *cfg)
{
    size_t calls = 0;
    double t0 = now_s(), elapsed = 0.0;
    do {
        if (op->before != NULL) {
            op->before(s, 1);
            double t1 = now_s();
            op->run(s);
            elapsed += now_s() - t1;
        } else {
            op->run(s);
            elapsed = now_s() - t0;
        }
        calls++;
    } while (elapsed < cfg->warm_s);
    double batch_f = cfg->run_s / (elapsed / (double)calls);
    return batch_f < 1.0 ? 1 : (size_t)batch_f;
}

/* Seconds per single operation over one run of `batch` calls. */
static double timed_run(const op_def *op, bench_state *s, size_t batch)
{
    if (op->before != NULL)
        op->before(s, batch);
    double t0 = now_s();
    for (size_t i = 0; i < batch; i++)
        op->run(s);
    return (now_s() - t0) / (double)batch / (double)op->reps;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return v[n / 2];
}

/* Median seconds per single operation, its runs back to back. */
static double measure(const op_def *op, bench_state *s, const bench_cfg *cfg)
{
    size_t batch = calibrate(op, s, cfg);
    double per_op[MAX_RUNS];
    for (int r = 0; r < cfg->runs; r++)
        per_op[r] = timed_run(op, s, batch);
    return median(per_op, cfg->runs);
}

static int selected(const bench_cfg *cfg, const char *name)
{
    if (cfg->n_filters == 0)
        return 1;
    for (int i = 0; i < cfg->n_filters; i++)
        if (strstr(name, cfg->filters[i]) != NULL)
            return 1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ms_bench [--quick] [--json] [--filter NAME]... [--list] [--calls N] [--adx]\n"
               "  --quick        3 short runs per operation instead of 9 of ~100 ms\n"
               "  --json         one JSON object per line\n"
               "  --filter NAME  only operations whose name contains NAME (repeatable;\n"
               "                 table_ selects the table sizes)\n"
               "  --list         print the operation names and exit\n"
               "  --calls N      no timing: call each operation exactly N times, for\n"
               "                 counting instructions under valgrind --tool=callgrind\n"
               "                 --toggle-collect='op_*' (the machine's noise does not\n"
               "                 reach such counts)\n"
               "  --adx          use the x86_64-adx field backend even if the CPU check\n"
               "                 says no: valgrind hides ADX from it, but runs it (only\n"
               "                 on a CPU that has BMI2 and ADX)\n");
}

static void parse_args(bench_cfg *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            cfg->runs = 3;
            cfg->run_s = 0.03;
            cfg->warm_s = 0.01;
        } else if (strcmp(a, "--json") == 0) {
            cfg->json = 1;
        } else if (strcmp(a, "--filter") == 0 || strncmp(a, "--filter=", 9) == 0) {
            const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
            if (v == NULL || cfg->n_filters == (int)(sizeof cfg->filters / sizeof cfg->filters[0])) {
                usage(stderr);
                exit(2);
            }
            cfg->filters[cfg->n_filters++] = v;
        } else if (strcmp(a, "--calls") == 0 && i + 1 < argc) {
            cfg->calls = strtol(argv[++i], NULL, 10);
            if (cfg->calls <= 0) {
                usage(stderr);
                exit(2);
            }
        } else if (strcmp(a, "--adx") == 0) {
#ifdef MS_FP_BACKEND_X86_64_ADX
            ms_mont_cpu_has_adx = 1;
#else
            fprintf(stderr, "ms_bench: --adx: this build has no x86_64-adx backend\n");
            exit(2);
#endif
        } else if (strcmp(a, "--list") == 0) {
            for (size_t k = 0; k < N_OPS; k++)
                printf("%s\n", ops[k].name);
            printf("table_kms\ntable_peer\ntable_prepared_rsk\n");
            for (size_t k = 0; k < N_ISSUE_OPS; k++)
                printf("%s\n", issue_ops[k].name);
            exit(0);
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "ms_bench: unknown argument %s\n", a);
            usage(stderr);
            exit(2);
        }
    }
}

static void print_tables(bench_state *s, const bench_cfg *cfg)
{
    static const char *const names[] = {"table_kms", "table_peer", "table_prepared_rsk"};
    static const char *const what[] = {"kms (P, Z, g)", "peer (I = [b]P + Z)",
                                       "prepared_rsk (lines + own I)"};
    int any = 0;
    for (int i = 0; i < 3; i++)
        any |= selected(cfg, names[i]);
    if (!any)
        return;
    setup(s, NEED_SAKKE);
    size_t bytes[3] = {ms_sakke_kms_table_bytes(s->kms), ms_sakke_peer_table_bytes(s->peer),
                       ms_sakke_prepared_rsk_table_bytes(s->prep)};
    if (!cfg->json)
        printf("\ntables\n");
    for (int i = 0; i < 3; i++) {
        if (!selected(cfg, names[i]))
            continue;
        if (cfg->json)
            printf("{\"op\": \"%s\", \"bytes\": %zu}\n", names[i], bytes[i]);
        else
            printf("  %-30s %10zu bytes (%.1f KiB)\n", what[i], bytes[i],
                   (double)bytes[i] / 1024.0);
    }
}

/* ---- KMS batch issuance ---------------------------------------------------------------- */


/* One whole batch issuance (one device per user) into a fresh SQLite file per run, so it
 * includes building the SAKKE KMS tables, the plan queries, sealing, inserts and the
 * fsyncs of each commit; the median of the runs is reported. */
static void print_issue(const bench_cfg *cfg)
{
    int any = 0;
    for (size_t k = 0; k < N_ISSUE_OPS; k++)
        any |= selected(cfg, issue_ops[k].name);
    if (!any)
        return;
    char dir[] = "/tmp/ms_bench_issue_XXXXXX";
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", "cannot create a temporary directory");
    ms_kms_secrets *sec = NULL;
    need(ms_kms_secrets_new(&sec), "ms_kms_secrets_new");
    sec->n_generations = 1;
    sec->gen[0].from_period = ISSUE_PERIOD;
    need(ms_sakke_master_keygen(sec->gen[0].z, sec->gen[0].Z, NULL), "sakke keygen");
    need(ms_eccsi_master_keygen(sec->gen[0].ksak, sec->gen[0].kpak, NULL), "eccsi keygen");
    random_bytes(sec->store_key, sizeof sec->store_key);
    const ms_id_scheme scheme = {.scheme = MS_MIKEY_ID_SCHEME_HASHED_UID,
                                 .kms_uri = BENCH_KMS, .period_len = 2592000};
    if (!cfg->json)
        printf("\nbatch issuance: 1 device per user, SQLite file, batches of %d\n",
               MS_ISSUE_BATCH_DEFAULT);
    for (size_t k = 0; k < N_ISSUE_OPS; k++) {
        const issue_def *op = &issue_ops[k];
        if (!selected(cfg, op->name))
            continue;
        double per_set[MAX_RUNS], cpu_set[MAX_RUNS];
        int runs = cfg->runs < 7 ? 1 : 3;
        for (int r = 0; r < runs; r++) {
            char path[128];
            snprintf(path, sizeof path, "%s/kms-%zu-%d.db", dir, k, r);
            ms_store *st = NULL;
            need(ms_store_open(&st, path, true), "ms_store_open");
            need(ms_store_begin(st), "ms_store_begin");
            for (int u = 0; u < op->users; u++) {
                ms_device d = {.trk_id = 1, .ink_id = 2};
                snprintf(d.user_uri, sizeof d.user_uri, "tel:+4477%08d", u);
                snprintf(d.id, sizeof d.id, "dev-%08d", u);
                need(ms_store_user_add(st, d.user_uri), "ms_store_user_add");
                need(ms_store_device_add(st, sec, &d), "ms_store_device_add");
            }
            need(ms_store_commit(st), "ms_store_commit");
            size_t issued = 0;
            double t0 = now_s(), c0 = cpu_s();
            need(ms_kms_issue_period(st, sec, &scheme, ISSUE_PERIOD, op->threads, NULL, NULL,
                                     &issued),
                 "ms_kms_issue_period");
            double t = now_s() - t0, c = cpu_s() - c0;
            if (issued != (size_t)op->users)
                die("ms_kms_issue_period", "issued the wrong number of key sets");
            per_set[r] = t / (double)issued;
            cpu_set[r] = c / (double)issued;
            ms_store_close(st);
            char side[160];
            unlink(path);
            snprintf(side, sizeof side, "%s-wal", path);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", path);
            unlink(side);
        }
        qsort(per_set, (size_t)runs, sizeof per_set[0], cmp_double);
        qsort(cpu_set, (size_t)runs, sizeof cpu_set[0], cmp_double);
        double sec_per = per_set[runs / 2], cpu_per = cpu_set[runs / 2];
        /* CPU time per key set, all threads: on a shared machine the wall clock depends on
         * the other load, this does not */
        if (cfg->json)
            printf("{\"op\": \"%s\", \"ms_per_op\": %.6g, \"ops_per_s\": %.1f, "
                   "\"cpu_ms_per_op\": %.6g, \"threads\": %u, \"keysets\": %d}\n",
                   op->name, sec_per * 1e3, 1.0 / sec_per, cpu_per * 1e3, op->threads,
                   op->users);
        else
            printf("  %-26s %9.4f ms/key set %8.1f key sets/s  cpu %.4f ms/key set "
                   "(%d users, %u thread%s)\n",
                   op->name, sec_per * 1e3, 1.0 / sec_per, cpu_per * 1e3, op->users,
                   op->threads, op->threads == 1 ? "" : "s");
        fflush(stdout);
    }
    ms_kms_secrets_free(sec);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    bench_cfg cfg = {.runs = 9, .run_s = 0.1, .warm_s = 0.05};
    parse_args(&cfg, argc, argv);
    static bench_state st; /* static: large, and zeroed */

    if (cfg.json) {
        printf("{\"backend\": \"%s\"}\n", ms_fp_backend_name());
    } else {
        printf("mikeysakke benchmark, field backend %s, median of %d runs of ~%.0f ms\n",
               ms_fp_backend_name(), cfg.runs, cfg.run_s * 1000.0);
        printf("(x fp_mul: time in 1024-bit field multiplications)\n\n");
        printf("%-30s %12s %12s %10s\n", "op", "ms/op", "ops/s", "x fp_mul");
    }
    fflush(stdout);

    /* The fp_mul column needs fp_mul's time even when the filter leaves it out. */
    double fp_mul_s = 0.0;
    int any_selected = 0;
    for (size_t i = 0; i < N_OPS; i++)
        any_selected |= selected(&cfg, ops[i].name);
    if (!cfg.json && any_selected && !selected(&cfg, "fp_mul")) {
        bench_cfg quick = cfg;
        quick.runs = 3;
        quick.run_s = 0.03;
        quick.warm_s = 0.01;
        setup(&st, ops[0].needs);
        fp_mul_s = measure(&ops[0], &st, &quick);
    }

    if (cfg.calls > 0) {
        for (size_t i = 0; i < N_OPS; i++) {
            const op_def *op = &ops[i];
            if (!selected(&cfg, op->name))
                continue;
            setup(&st, op->needs);
            for (long c = 0; c < cfg.calls; c++) {
                if (op->before != NULL)
                    op->before(&st, 1);
                op->run(&st);
            }
            printf("%s: %ld calls\n", op->name, cfg.calls);
        }
    } else {
        /* The runs are interleaved: round r times run r of every operation in turn. The
         * machine is shared, and its load comes in bursts of seconds; measured back to
         * back, one operation's runs could all fall into one burst, while interleaved
         * a burst spoils a few runs of each operation, which the median leaves out. */
        static size_t batch[N_OPS];
        static double runs[N_OPS][MAX_RUNS];
        for (size_t i = 0; i < N_OPS; i++) {
            if (!selected(&cfg, ops[i].name))
                continue;
            setup(&st, ops[i].needs);
            batch[i] = calibrate(&ops[i], &st, &cfg);
        }
        for (int r = 0; r < cfg.runs; r++)
            for (size_t i = 0; i < N_OPS; i++)
                if (selected(&cfg, ops[i].name))
                    runs[i][r] = timed_run(&ops[i], &st, batch[i]);
        for (size_t i = 0; i < N_OPS; i++) {
            const op_def *op = &ops[i];
            if (!selected(&cfg, op->name))
                continue;
            double sec = median(runs[i], cfg.runs);
            if (op->run == op_fp_mul)
                fp_mul_s = sec;
            double ms = sec * 1e3, per_s = 1.0 / sec;
            if (cfg.json) {
                printf("{\"op\": \"%s\", \"ms_per_op\": %.6g, \"ops_per_s\": %.1f", op->name,
                       ms, per_s);
                if (op->bytes != NULL)
                    printf(", \"bytes\": %zu", op->bytes(&st));
                printf("}\n");
            } else {
                double muls = sec / fp_mul_s;
                printf("%-30s %12.6f %12.1f %10.*f\n", op->name, ms, per_s,
                       muls < 10.0 ? 2 : 0, muls);
            }
        }
        fflush(stdout);
    }
    print_tables(&st, &cfg);
    print_issue(&cfg);
    teardown(&st);
    return 0;
}
