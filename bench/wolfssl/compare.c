/*
 * wolfSSL's ECCSI and SAKKE (wolfCrypt, as packaged by the distribution) timed the way
 * ms_bench times ours, so bench/wolfssl_compare.sh can print both side by side from
 * one run. Not part of the library's build: bench/wolfssl_compare.sh compiles it with
 * `cc ... -lwolfssl` when wolfSSL is installed.
 *
 * Each operation is warmed up, then timed in RUNS runs of a batch sized to take about
 * 50 ms; the runs of all operations are interleaved and the median run is reported.
 * Every call's result is checked. The operations, named as in ms_bench:
 *   eccsi_sign            wc_SignEccsiHash with SSK, PVT and HS already set
 *   eccsi_verify_cold     a fresh key: import KPAK, PVT from the signature, HS, verify
 *   eccsi_verify_cached   wc_VerifyEccsiHash on a key with KPAK and HS already set
 *   eccsi_ssk_validate    wc_ValidateEccsiPair
 *   sakke_rsk_issue       wc_MakeSakkeRsk
 *   sakke_rsk_validate    wc_ValidateSakkeRsk
 *   sakke_encap_cold      wc_MakeSakkeEncapsulatedSSV, no table of the point I
 *   sakke_encap_prepared  the same with the receiver's point I and its table set
 *   sakke_decap_cold      wc_DeriveSakkeSSV, RSK set without a table
 *   sakke_decap_prepared  the same with the RSK's pairing table and the own point I
 *                         and its table set
 *
 * Output: one line per operation, "name ms_per_op". A wolfSSL built without its SAKKE
 * tables (their generators return length 0, as in Debian's 5.5.4) is said so on stderr.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c17 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/eccsi.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sakke.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 9
#define RUN_SECONDS 0.05

static const byte id[] = "2011-02\0tel:+447700900123";
#define ID_LEN ((word32)sizeof id)
static const byte msg[] = "message";

static void need(int ret, const char *what)
{
    if (ret != 0) {
        fprintf(stderr, "compare: %s failed (%d)\n", what, ret);
        exit(1);
    }
}

static WC_RNG rng;

/* ---- ECCSI ----------------------------------------------------------------------- */

static EccsiKey kms_key, signer_key, verifier_key;
static mp_int ssk;
static ecc_point *pvt;
static byte kpak[2 * 32 + 1];
static word32 kpak_len = sizeof kpak;
static byte sig[2 * 32 + 2 * 32 + 1];
static word32 sig_len = sizeof sig;

static void eccsi_setup(void)
{
    need(wc_InitEccsiKey(&kms_key, NULL, INVALID_DEVID), "wc_InitEccsiKey");
    need(wc_MakeEccsiKey(&kms_key, &rng), "wc_MakeEccsiKey");
    need(mp_init(&ssk), "mp_init");
    pvt = wc_ecc_new_point();
    if (pvt == NULL)
        need(-1, "wc_ecc_new_point");
    need(wc_MakeEccsiPair(&kms_key, &rng, WC_HASH_TYPE_SHA256, id, ID_LEN, &ssk, pvt),
         "wc_MakeEccsiPair");
    need(wc_ExportEccsiPublicKey(&kms_key, kpak, &kpak_len, 1), "wc_ExportEccsiPublicKey");

    byte hs[WC_MAX_DIGEST_SIZE];
    byte hs_len = sizeof hs;
    need(wc_InitEccsiKey(&signer_key, NULL, INVALID_DEVID), "wc_InitEccsiKey");
    need(wc_ImportEccsiPublicKey(&signer_key, kpak, kpak_len, 1), "wc_ImportEccsiPublicKey");
    need(wc_SetEccsiPair(&signer_key, &ssk, pvt), "wc_SetEccsiPair");
    need(wc_HashEccsiId(&signer_key, WC_HASH_TYPE_SHA256, id, ID_LEN, pvt, hs, &hs_len),
         "wc_HashEccsiId");
    need(wc_SetEccsiHash(&signer_key, hs, hs_len), "wc_SetEccsiHash");
    need(wc_SignEccsiHash(&signer_key, &rng, WC_HASH_TYPE_SHA256, msg, sizeof msg, sig, &sig_len),
         "wc_SignEccsiHash");

    need(wc_InitEccsiKey(&verifier_key, NULL, INVALID_DEVID), "wc_InitEccsiKey");
    need(wc_ImportEccsiPublicKey(&verifier_key, kpak, kpak_len, 1), "wc_ImportEccsiPublicKey");
    need(wc_SetEccsiHash(&verifier_key, hs, hs_len), "wc_SetEccsiHash");
}

static void op_eccsi_sign(void)
{
    byte out[sizeof sig];
    word32 out_len = sizeof out;
    need(wc_SignEccsiHash(&signer_key, &rng, WC_HASH_TYPE_SHA256, msg, sizeof msg, out, &out_len),
         "wc_SignEccsiHash");
}

static void op_eccsi_verify_cold(void)
{
    EccsiKey key;
    ecc_point *p = wc_ecc_new_point();
    byte hs[WC_MAX_DIGEST_SIZE];
    byte hs_len = sizeof hs;
    int ok = 0;
    if (p == NULL)
        need(-1, "wc_ecc_new_point");
    need(wc_InitEccsiKey(&key, NULL, INVALID_DEVID), "wc_InitEccsiKey");
    /* not trusted: the KPAK is checked to be on the curve, as ms_eccsi_verifier_new does */
    need(wc_ImportEccsiPublicKey(&key, kpak, kpak_len, 0), "wc_ImportEccsiPublicKey");
    need(wc_DecodeEccsiPvtFromSig(&key, sig, sig_len, p), "wc_DecodeEccsiPvtFromSig");
    need(wc_HashEccsiId(&key, WC_HASH_TYPE_SHA256, id, ID_LEN, p, hs, &hs_len), "wc_HashEccsiId");
    need(wc_SetEccsiHash(&key, hs, hs_len), "wc_SetEccsiHash");
    need(wc_VerifyEccsiHash(&key, WC_HASH_TYPE_SHA256, msg, sizeof msg, sig, sig_len, &ok),
         "wc_VerifyEccsiHash");
    if (!ok)
        need(-1, "eccsi verify (cold): signature rejected");
    wc_FreeEccsiKey(&key);
    wc_ecc_del_point(p);
}

static void op_eccsi_verify_cached(void)
{
    int ok = 0;
    need(wc_VerifyEccsiHash(&verifier_key, WC_HASH_TYPE_SHA256, msg, sizeof msg, sig, sig_len, &ok),
         "wc_VerifyEccsiHash");
    if (!ok)
        need(-1, "eccsi verify (cached): signature rejected");
}

static void op_eccsi_ssk_validate(void)
{
    int valid = 0;
    need(wc_ValidateEccsiPair(&kms_key, WC_HASH_TYPE_SHA256, id, ID_LEN, &ssk, pvt, &valid),
         "wc_ValidateEccsiPair");
    if (!valid)
        need(-1, "eccsi ssk validate: rejected");
}

/* ---- SAKKE ----------------------------------------------------------------------- */

static SakkeKey sakke_kms, sender_cold, sender_prep, receiver_cold, receiver_prep;
static ecc_point *rsk;
static byte *rsk_table, *i_table, *i_table_rx;
/* wolfSSL masks the SSV in place: ssv is the plain one, ssv_enc what travels */
static byte ssv[16], ssv_enc[16], auth[257];
static word16 auth_len = sizeof auth;

/* Set when this wolfSSL build makes empty tables (Debian's 5.5.4 does): its "prepared"
 * operations are then its cold ones. */
static int no_tables;

/* The identity, its point I and I's table on key (the "prepared" side). */
static void set_point_i_table(SakkeKey *key, byte **table)
{
    need(wc_SetSakkeIdentity(key, id, (word16)ID_LEN), "wc_SetSakkeIdentity");
    need(wc_MakeSakkePointI(key, id, (word16)ID_LEN), "wc_MakeSakkePointI");
    word32 len = 0;
    (void)wc_GenerateSakkePointITable(key, NULL, &len); /* asks for the size */
    *table = malloc(len);
    if (*table == NULL)
        need(-1, "malloc");
    need(wc_GenerateSakkePointITable(key, *table, &len), "wc_GenerateSakkePointITable");
    if (len == 0)
        no_tables = 1;
    need(wc_SetSakkePointITable(key, *table, len), "wc_SetSakkePointITable");
}

static void sakke_setup(void)
{
    need(wc_InitSakkeKey(&sakke_kms, NULL, INVALID_DEVID), "wc_InitSakkeKey");
    need(wc_MakeSakkeKey(&sakke_kms, &rng), "wc_MakeSakkeKey");
    rsk = wc_ecc_new_point();
    if (rsk == NULL)
        need(-1, "wc_ecc_new_point");
    need(wc_MakeSakkeRsk(&sakke_kms, id, (word16)ID_LEN, rsk), "wc_MakeSakkeRsk");

    byte zpub[2 * 128 + 1];
    word32 zpub_len = sizeof zpub;
    need(wc_ExportSakkePublicKey(&sakke_kms, zpub, &zpub_len, 1), "wc_ExportSakkePublicKey");

    /* senders: Z and the receiver's identity; one with the I table */
    need(wc_InitSakkeKey(&sender_cold, NULL, INVALID_DEVID), "wc_InitSakkeKey");
    need(wc_ImportSakkePublicKey(&sender_cold, zpub, zpub_len, 1), "wc_ImportSakkePublicKey");
    need(wc_SetSakkeIdentity(&sender_cold, id, (word16)ID_LEN), "wc_SetSakkeIdentity");
    need(wc_InitSakkeKey(&sender_prep, NULL, INVALID_DEVID), "wc_InitSakkeKey");
    need(wc_ImportSakkePublicKey(&sender_prep, zpub, zpub_len, 1), "wc_ImportSakkePublicKey");
    set_point_i_table(&sender_prep, &i_table);
    word16 ssv_len = sizeof ssv;
    need(wc_GenerateSakkeSSV(&sender_cold, &rng, ssv, &ssv_len), "wc_GenerateSakkeSSV");
    memcpy(ssv_enc, ssv, sizeof ssv);
    need(wc_MakeSakkeEncapsulatedSSV(&sender_cold, WC_HASH_TYPE_SHA256, ssv_enc, sizeof ssv_enc,
                                     auth, &auth_len),
         "wc_MakeSakkeEncapsulatedSSV");

    /* receivers: Z, identity and RSK; one with the RSK's pairing table */
    need(wc_InitSakkeKey(&receiver_cold, NULL, INVALID_DEVID), "wc_InitSakkeKey");
    need(wc_ImportSakkePublicKey(&receiver_cold, zpub, zpub_len, 1), "wc_ImportSakkePublicKey");
    need(wc_SetSakkeIdentity(&receiver_cold, id, (word16)ID_LEN), "wc_SetSakkeIdentity");
    need(wc_SetSakkeRsk(&receiver_cold, rsk, NULL, 0), "wc_SetSakkeRsk");
    need(wc_InitSakkeKey(&receiver_prep, NULL, INVALID_DEVID), "wc_InitSakkeKey");
    need(wc_ImportSakkePublicKey(&receiver_prep, zpub, zpub_len, 1), "wc_ImportSakkePublicKey");
    set_point_i_table(&receiver_prep, &i_table_rx);
    word32 len = 0;
    (void)wc_GenerateSakkeRskTable(&receiver_prep, rsk, NULL, &len);
    rsk_table = malloc(len);
    if (rsk_table == NULL)
        need(-1, "malloc");
    need(wc_GenerateSakkeRskTable(&receiver_prep, rsk, rsk_table, &len),
         "wc_GenerateSakkeRskTable");
    if (len == 0)
        no_tables = 1;
    need(wc_SetSakkeRsk(&receiver_prep, rsk, rsk_table, len), "wc_SetSakkeRsk");
}

static void op_sakke_rsk_issue(void)
{
    ecc_point *p = wc_ecc_new_point();
    if (p == NULL)
        need(-1, "wc_ecc_new_point");
    need(wc_MakeSakkeRsk(&sakke_kms, id, (word16)ID_LEN, p), "wc_MakeSakkeRsk");
    wc_ecc_del_point(p);
}

static void op_sakke_rsk_validate(void)
{
    int valid = 0;
    need(wc_ValidateSakkeRsk(&sakke_kms, id, (word16)ID_LEN, rsk, &valid), "wc_ValidateSakkeRsk");
    if (!valid)
        need(-1, "sakke rsk validate: rejected");
}

static void encap(SakkeKey *key)
{
    byte s[sizeof ssv], a[sizeof auth];
    word16 a_len = sizeof a;
    memcpy(s, ssv, sizeof s);
    need(wc_MakeSakkeEncapsulatedSSV(key, WC_HASH_TYPE_SHA256, s, sizeof s, a, &a_len),
         "wc_MakeSakkeEncapsulatedSSV");
}

static void op_sakke_encap_cold(void)
{
    encap(&sender_cold);
}

static void op_sakke_encap_prepared(void)
{
    encap(&sender_prep);
}

static void decap(SakkeKey *key)
{
    byte s[sizeof ssv];
    memcpy(s, ssv_enc, sizeof s);
    need(wc_DeriveSakkeSSV(key, WC_HASH_TYPE_SHA256, s, sizeof s, auth, auth_len),
         "wc_DeriveSakkeSSV");
    if (memcmp(s, ssv, sizeof s) != 0)
        need(-1, "sakke decap: wrong SSV");
}

static void op_sakke_decap_cold(void)
{
    decap(&receiver_cold);
}

static void op_sakke_decap_prepared(void)
{
    decap(&receiver_prep);
}

/* ---- timing ---------------------------------------------------------------------- */

typedef struct op {
    const char *name;
    void (*fn)(void);
    long batch;
    double runs[RUNS];
} op;

static op ops[] = {
    {"eccsi_sign", op_eccsi_sign, 0, {0}},
    {"eccsi_verify_cold", op_eccsi_verify_cold, 0, {0}},
    {"eccsi_verify_cached", op_eccsi_verify_cached, 0, {0}},
    {"eccsi_ssk_validate", op_eccsi_ssk_validate, 0, {0}},
    {"sakke_rsk_issue", op_sakke_rsk_issue, 0, {0}},
    {"sakke_rsk_validate", op_sakke_rsk_validate, 0, {0}},
    {"sakke_encap_cold", op_sakke_encap_cold, 0, {0}},
    {"sakke_encap_prepared", op_sakke_encap_prepared, 0, {0}},
    {"sakke_decap_cold", op_sakke_decap_cold, 0, {0}},
    {"sakke_decap_prepared", op_sakke_decap_prepared, 0, {0}},
};
#define N_OPS (sizeof ops / sizeof ops[0])

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]) != NULL)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    need(wolfCrypt_Init(), "wolfCrypt_Init");
    need(wc_InitRng(&rng), "wc_InitRng");
    eccsi_setup();
    sakke_setup();

    if (no_tables)
        fprintf(stderr, "compare: this wolfSSL builds empty SAKKE tables (point I, RSK): "
                        "its prepared operations run as its cold ones\n");
    for (size_t i = 0; i < N_OPS; i++) {
        if (!selected(ops[i].name, argc, argv))
            continue;
        ops[i].fn(); /* warm up */
        long n = 1;
        for (;;) {
            double t0 = now();
            for (long k = 0; k < n; k++)
                ops[i].fn();
            double t = now() - t0;
            if (t >= RUN_SECONDS / 4 || n > (1L << 24)) {
                ops[i].batch = (long)((double)n * RUN_SECONDS / (t > 0 ? t : 1e-9)) + 1;
                break;
            }
            n *= 2;
        }
    }
    for (int r = 0; r < RUNS; r++)
        for (size_t i = 0; i < N_OPS; i++) {
            if (ops[i].batch == 0)
                continue;
            double t0 = now();
            for (long k = 0; k < ops[i].batch; k++)
                ops[i].fn();
            ops[i].runs[r] = (now() - t0) / (double)ops[i].batch;
        }
    for (size_t i = 0; i < N_OPS; i++) {
        if (ops[i].batch == 0)
            continue;
        qsort(ops[i].runs, RUNS, sizeof ops[i].runs[0], cmp_double);
        printf("%s %.6g\n", ops[i].name, ops[i].runs[RUNS / 2] * 1e3);
    }
    wc_FreeRng(&rng);
    wolfCrypt_Cleanup();
    return 0;
}
