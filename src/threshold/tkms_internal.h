/*
 * Threshold KMS internals: scalars modulo a group order, the two groups (SAKKE's
 * E(F_p)[q] with P and H_s, P-256 with G and H_e), Shamir polynomials and Lagrange
 * coefficients, Feldman and Pedersen commitments. Private to src/threshold and the tests.
 *
 * Scalars are 16-limb Montgomery-form values modulo the group's order (the SAKKE q, or
 * P-256's n with R = 2^1024, through the same generic mont.h code). Points cross these
 * functions encoded (0x04 || x || y; all zero octets for the point at infinity): they are
 * public commitments. Unless a name ends in _var, a function runs in constant time in its
 * scalars; _var functions take public values only.
 */
#ifndef MS_THRESHOLD_TKMS_INTERNAL_H
#define MS_THRESHOLD_TKMS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/mont.h"
#include "mikeysakke/crypto.h"
#include "mikeysakke/threshold.h"

typedef struct tsc {
    uint64_t v[MS_LIMBS];
} tsc;

typedef enum tg_kind { TG_SAKKE = 0, TG_P256 = 1 } tg_kind;

typedef struct tgroup {
    tg_kind kind;
    const ms_mont *q;  /* the group order */
    size_t sc_bytes;   /* a scalar, big-endian */
    size_t pt_bytes;   /* an encoded point */
    unsigned q_bits;
} tgroup;

#define TG_PT_MAX 257
#define TG_SC_MAX 128

extern const ms_mont ms_tkms_mont_n256; /* P-256's group order n */
extern const tgroup tg_sakke, tg_p256;

/* ---- scalars ---------------------------------------------------------------------- */
void tsc_zero(tsc *r);
void tsc_from_u64(tsc *r, uint64_t x, const tgroup *g);
/* Big-endian g->sc_bytes octets; MS_ERR_SCALAR_RANGE (r zeroed) unless the value is below
 * the order. Only the verdict is declassified. */
ms_err tsc_from_bytes(tsc *r, const uint8_t *in, const tgroup *g);
void tsc_to_bytes(uint8_t *out, const tsc *a, const tgroup *g);
/* Plain (non-Montgomery) limbs, for scalar multiplication. */
void tsc_to_plain(uint64_t out[MS_LIMBS], const tsc *a, const tgroup *g);
void tsc_add(tsc *r, const tsc *a, const tsc *b, const tgroup *g);
void tsc_sub(tsc *r, const tsc *a, const tsc *b, const tgroup *g);
void tsc_mul(tsc *r, const tsc *a, const tsc *b, const tgroup *g);
/* r = a^-1 (0 for 0), constant time (Fermat). */
void tsc_inv(tsc *r, const tsc *a, const tgroup *g);
uint64_t tsc_iszero(const tsc *a);
uint64_t tsc_eq(const tsc *a, const tsc *b);
/* Uniform in [0, order) (rejection sampling: only discarded draws leak). */
ms_err tsc_random(tsc *r, const tgroup *g, const ms_rng *rng);
/* f(x) = c[0] + c[1] x + ... + c[deg] x^deg at a small public x (Horner). */
void tsc_poly_eval(tsc *r, const tsc *c, unsigned deg, unsigned x, const tgroup *g);
/* The Lagrange coefficient of ids[i] for evaluation at x (x = 0: at zero) over the public
 * distinct nonzero ids. Variable time (public indices). */
void tsc_lagrange_var(tsc *r, const unsigned *ids, size_t count, size_t i, unsigned x,
                      const tgroup *g);

/* ---- points ----------------------------------------------------------------------- */
/* Builds the generators' tables once per process (pthread_once). */
ms_err tg_init(void);
/* The generator (P or G) and the second generator (H_s or H_e), encoded. */
void tg_generator(const tgroup *g, uint8_t *out);
void tg_second_generator(const tgroup *g, uint8_t *out);
int tg_is_infinity(const tgroup *g, const uint8_t *pt);
/* Decode check of a received point: on the curve and (SAKKE) in E[q]; infinity allowed
 * only if allow_inf. Public input. */
ms_err tg_check_var(const tgroup *g, const uint8_t *pt, int allow_inf);
/* The same; the (SAKKE) order check only if `order`: a point off E[q] differs from one in
 * it by a torsion point of order 2 or 4, which cannot hide a wrong share from the random
 * combination checks (the E[q] parts must match on their own), so the batch checks the
 * order of the points it publishes or pairs rather than of every point received. */
ms_err tg_check_curve_var(const tgroup *g, const uint8_t *pt, int allow_inf, int order);
/* out = [k]gen, constant time (Feldman commitment of a secret coefficient). */
ms_err tg_mul_gen(const tgroup *g, uint8_t *out, const tsc *k);
/* out = [a]gen + [b]H, constant time (Pedersen commitment). */
ms_err tg_pedersen(const tgroup *g, uint8_t *out, const tsc *a, const tsc *b);
/* out = [k]pt for a secret k and a public point, constant time. */
ms_err tg_mul_point(const tgroup *g, uint8_t *out, const uint8_t *pt, const tsc *k);
/* out = sum [k_i] pts_i for public points (any may be infinity) and public scalars. */
ms_err tg_msm_var(const tgroup *g, uint8_t *out, const uint8_t *const *pts, const tsc *k,
                  size_t count);
ms_err tg_add_var(const tgroup *g, uint8_t *out, const uint8_t *a, const uint8_t *b);
ms_err tg_neg_var(const tgroup *g, uint8_t *out, const uint8_t *in);
/* sum_k x^k C_k over deg+1 consecutive encoded points. */
ms_err tg_feldman_eval_var(const tgroup *g, uint8_t *out, const uint8_t *comms, unsigned deg,
                           unsigned x);
/* The pairing <A, B> on the SAKKE curve (128 octets, PF_p representative); public. */
ms_err tg_pairing_var(uint8_t out[128], const uint8_t *a, const uint8_t *b);

/* sid = SHA-256("MIKEY-SAKKE TKMS sid" || Z || KPAK || ID). */
ms_err tkms_sid(uint8_t sid[32], const uint8_t *Z, const uint8_t *kpak, const uint8_t *id,
                size_t id_len);
/* RFC 6507 HS = hash(G || KPAK || ID || PVT) reduced modulo n. */
ms_err tkms_hs(tsc *hs, const uint8_t *kpak, const uint8_t *id, size_t id_len,
               const uint8_t *pvt);
/* The SAKKE integer a of an identifier (RFC 6508: the identifier as an integer, < q). */
ms_err tkms_id_scalar(tsc *a, const uint8_t *id, size_t id_len);

/* ---- the server ------------------------------------------------------------------- */
/* One share record as carried in messages: s and s' on SAKKE, then s and s' on P-256. */
#define TK_REC (128 + 128 + 32 + 32)
#define TK_NCURVE 2
extern const tgroup *const tk_groups[TK_NCURVE];
#define TK_COMM_MAX ((MS_TKMS_MAX_T + 1) * TG_PT_MAX)

struct ms_tkms_server {
    unsigned n, t, idx;
    ms_rng rng;
    int has_rng;
    unsigned ended; /* last key-generation round ended */
    /* key generation: [curve][...]; dealer i at [i - 1] */
    tsc f[TK_NCURVE][MS_TKMS_MAX_T + 1], fb[TK_NCURVE][MS_TKMS_MAX_T + 1];
    tsc sh[TK_NCURVE][MS_TKMS_MAX_N], shb[TK_NCURVE][MS_TKMS_MAX_N];
    uint8_t ped[TK_NCURVE][MS_TKMS_MAX_N][TK_COMM_MAX];
    uint8_t feld[TK_NCURVE][MS_TKMS_MAX_N][TK_COMM_MAX];
    uint32_t have_r1, have_priv, have_r4;
    uint32_t complaints_by[MS_TKMS_MAX_N]; /* round 2 mask of each server */
    uint32_t answered[MS_TKMS_MAX_N];      /* complainers dealer i answered validly */
    uint32_t qual, r5_mine, accused;
    tsc rev[TK_NCURVE][MS_TKMS_MAX_N][MS_TKMS_MAX_N]; /* [c][dealer][revealer] */
    uint32_t rev_have[MS_TKMS_MAX_N];
    /* the outcome */
    tsc z_j, ksak_j;
    ms_tkms_public pub;
};

const ms_rng *tk_rng(const ms_tkms_server *s);

/* The server's shares z_j and KSAK_j as big-endian octets (secret: the caller wipes). */
void tkms_share_bytes(const ms_tkms_server *s, uint8_t z[MS_SAKKE_SECRET_BYTES],
                      uint8_t ksak[MS_ECCSI_SCALAR_BYTES]);
/* A fresh server (ms_tkms_server_new with the same n, t, index) given the outcome of an
 * earlier key generation: its shares (checked against pub's Zj and kpakj of its index:
 * MS_ERR_INVALID) and the public result. */
ms_err tkms_server_restore(ms_tkms_server *s, const ms_tkms_public *pub,
                           const uint8_t z[MS_SAKKE_SECRET_BYTES],
                           const uint8_t ksak[MS_ECCSI_SCALAR_BYTES]);

/* One server's share of a slot against the slot's record and the KMS's public key shares:
 * *ok = 1 when [d u_j]P = sum_k j^k uc_k and [SSK_j]G = KPAK_j + HS sum_k j^k vc_k (the
 * device's check naming a cheater; a cheater report's). MS_ERR_POINT_ORDER when the
 * record's commitments to u are not in E[q] (the record is wrong). */
ms_err tkms_share_check(const ms_tkms_public *pub, const uint8_t *id, size_t id_len,
                        const ms_tkms_record *rec, const ms_tkms_share *share, int *ok);

/* Tests only: every scalar a batch holds, one call each, for the test that the state of
 * t servers says nothing of z or another user's keys. `what` names the field: its own
 * polynomials "rho_f", "v_f", "vb_f", "g_f" (i = the coefficient's degree), the shares
 * received "rho_sh", "v_sh", "vb_sh", "g_sh" (i = the dealer), the joint shares
 * "rho_me", "v_me", the stored "u" and "ssk", the check multipliers "r" (i = 0); s is
 * the slot. */
typedef void (*tkms_view_fn)(void *ctx, const char *what, unsigned i, size_t s, const tgroup *g,
                             const tsc *x);
void tkms_batch_test_view(const ms_tkms_batch *b, tkms_view_fn fn, void *ctx);

/* Tests only: a re-sharing server that deals a wrong h for `slot` (after batch round 2). */
void tkms_batch_test_corrupt_h(ms_tkms_batch *b, size_t slot);

#endif
