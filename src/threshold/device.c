/*
 * The device's side of issuance: combine t+1 servers' shares of a slot into the RSK and
 * SSK, validate them as any RFC 6508/6507 key is validated, and only if that fails check
 * each share against the slot's public commitments to name the server that lied.
 */
#include <string.h>

#include "crypto/ct.h"
#include "tkms_internal.h"
#include "util/detail.h"

/* Share j is consistent with the record: [d u_j]P = sum_k j^k uc_k and
 * [SSK_j]G = KPAK_j + HS sum_k j^k vc_k. */
static ms_err share_ok(const ms_tkms_public *pub, const ms_tkms_record *rec, const tsc *u,
                       const tsc *ssk, unsigned j, const tsc *hs, int *ok)
{
    uint8_t want[TG_PT_MAX], got[TG_PT_MAX], vj[TG_PT_MAX];
    tsc d, du;
    ms_err err;
    *ok = 0;
    /* the batch does not check the order of the commitments to u: they must be in E[q],
     * or an honest share could fail against them */
    for (unsigned k = 0; k <= rec->t; k++)
        if (tg_check_var(&tg_sakke, rec->uc[k], 1) != MS_OK)
            return MS_ERR_POINT_ORDER;
    tsc_from_u64(&d, rec->d, &tg_sakke);
    tsc_mul(&du, u, &d, &tg_sakke);
    if ((err = tg_feldman_eval_var(&tg_sakke, want, &rec->uc[0][0], rec->t, j)) != MS_OK ||
        (err = tg_mul_gen(&tg_sakke, got, &du)) != MS_OK)
        return err;
    ms_wipe(&du, sizeof du);
    if (memcmp(want, got, 257) != 0)
        return MS_OK;
    if ((err = tg_feldman_eval_var(&tg_p256, vj, &rec->vc[0][0], rec->t, j)) != MS_OK)
        return err;
    const uint8_t *pts[2] = {pub->kpakj[j - 1], vj};
    tsc ks[2];
    tsc_from_u64(&ks[0], 1, &tg_p256);
    ks[1] = *hs;
    if ((err = tg_msm_var(&tg_p256, want, pts, ks, 2)) != MS_OK ||
        (err = tg_mul_gen(&tg_p256, got, ssk)) != MS_OK)
        return err;
    *ok = memcmp(want, got, 65) == 0;
    return MS_OK;
}

ms_err ms_tkms_combine(const ms_tkms_public *pub, const uint8_t *id, size_t id_len,
                       const ms_tkms_record *rec, const ms_tkms_share *shares, size_t count,
                       uint8_t rsk[MS_SAKKE_POINT_BYTES], uint8_t ssk_out[MS_ECCSI_SCALAR_BYTES],
                       uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater, char *detail,
                       size_t cap)
{
    if (cheater != NULL)
        *cheater = 0;
    if (pub == NULL || id == NULL || rec == NULL || shares == NULL || rsk == NULL ||
        ssk_out == NULL || pvt == NULL || cheater == NULL)
        return MS_ERR_ARG;
    if (pub->t < 1 || pub->t > MS_TKMS_MAX_T || pub->n > MS_TKMS_MAX_N || rec->t != pub->t)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "the record's threshold is not the KMS's");
    ms_err err = tg_init();
    if (err != MS_OK)
        return err;
    uint8_t sid[32];
    if ((err = tkms_sid(sid, pub->Z, pub->kpak, id, id_len)) != MS_OK)
        return err;
    if (memcmp(sid, rec->sid, 32) != 0)
        return ms_detail_fail(MS_ERR_INVALID, detail, cap,
                              "the record is not the slot of this identity");
    /* t+1 shares of distinct servers */
    const unsigned t1 = pub->t + 1;
    unsigned ids[MS_TKMS_MAX_T + 1];
    tsc u[MS_TKMS_MAX_T + 1], ssk[MS_TKMS_MAX_T + 1];
    unsigned m = 0;
    uint32_t seen = 0;
    for (size_t x = 0; x < count && m < t1; x++) {
        unsigned j = shares[x].index;
        if (j < 1 || j > pub->n || (seen & (1u << (j - 1))))
            return ms_detail_fail(MS_ERR_ARG, detail, cap,
                                  "share %zu has an index outside 1..n or repeated", x + 1);
        seen |= 1u << (j - 1);
        if (tsc_from_bytes(&u[m], shares[x].u, &tg_sakke) != MS_OK ||
            tsc_from_bytes(&ssk[m], shares[x].ssk, &tg_p256) != MS_OK) {
            *cheater = j;
            return ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                  "server %u sent a share out of range", j);
        }
        ids[m++] = j;
    }
    if (m < t1)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "%u shares needed, %u given", t1, m);
    tsc uu, kk, lam, term;
    tsc_zero(&uu);
    tsc_zero(&kk);
    for (unsigned x = 0; x < m; x++) {
        tsc_lagrange_var(&lam, ids, m, x, 0, &tg_sakke);
        tsc_mul(&term, &lam, &u[x], &tg_sakke);
        tsc_add(&uu, &uu, &term, &tg_sakke);
        tsc_lagrange_var(&lam, ids, m, x, 0, &tg_p256);
        tsc_mul(&term, &lam, &ssk[x], &tg_p256);
        tsc_add(&kk, &kk, &term, &tg_p256);
    }
    ms_wipe(&term, sizeof term);
    uint8_t rsk_tmp[257], ssk_tmp[32];
    ms_err verdict = MS_OK;
    uint64_t uzero = tsc_iszero(&uu);
    MS_CT_PUBLIC(&uzero, sizeof uzero); /* u = 0 only from a lying server */
    if (uzero) {
        verdict = MS_ERR_RSK_INVALID;
    } else {
        tsc inv;
        tsc_inv(&inv, &uu, &tg_sakke);
        err = tg_mul_point(&tg_sakke, rsk_tmp, rec->r0, &inv);
        ms_wipe(&inv, sizeof inv);
        if (err != MS_OK)
            goto out;
        ms_sakke_kms *kms = NULL;
        if ((err = ms_sakke_kms_new(&kms, pub->Z)) != MS_OK)
            goto out;
        verdict = ms_sakke_rsk_validate(kms, id, id_len, rsk_tmp);
        ms_sakke_kms_free(kms);
    }
    tsc_to_bytes(ssk_tmp, &kk, &tg_p256);
    if (verdict == MS_OK)
        verdict = ms_eccsi_ssk_validate(NULL, pub->kpak, id, id_len, ssk_tmp, rec->pvt);
    if (verdict == MS_OK) {
        memcpy(rsk, rsk_tmp, 257);
        memcpy(ssk_out, ssk_tmp, 32);
        memcpy(pvt, rec->pvt, 65);
        err = MS_OK;
        goto out;
    }
    /* name the first server whose share does not match the public commitments */
    tsc hs;
    if ((err = tkms_hs(&hs, pub->kpak, id, id_len, rec->pvt)) != MS_OK)
        goto out;
    for (unsigned x = 0; x < m; x++) {
        int ok = 0;
        if ((err = share_ok(pub, rec, &u[x], &ssk[x], ids[x], &hs, &ok)) == MS_ERR_POINT_ORDER) {
            err = ms_detail_fail(verdict, detail, cap,
                                 "the keys do not validate and the record's commitments are "
                                 "not in E[q] (the record itself is wrong)");
            goto out;
        }
        if (err != MS_OK)
            goto out;
        if (!ok) {
            *cheater = ids[x];
            err = ms_detail_fail(MS_ERR_THRESHOLD_SHARE, detail, cap,
                                 "server %u sent a share that does not match the slot's "
                                 "commitments",
                                 ids[x]);
            goto out;
        }
    }
    err = ms_detail_fail(verdict, detail, cap,
                         "the combined keys do not validate, yet every share matches the "
                         "record (the record itself is wrong)");
out:
    ms_wipe(u, sizeof u);
    ms_wipe(ssk, sizeof ssk);
    ms_wipe(&uu, sizeof uu);
    ms_wipe(&kk, sizeof kk);
    ms_wipe(rsk_tmp, sizeof rsk_tmp);
    ms_wipe(ssk_tmp, sizeof ssk_tmp);
    return err;
}

ms_err tkms_share_check(const ms_tkms_public *pub, const uint8_t *id, size_t id_len,
                        const ms_tkms_record *rec, const ms_tkms_share *share, int *ok)
{
    *ok = 0;
    if (pub == NULL || id == NULL || rec == NULL || share == NULL || rec->t != pub->t ||
        rec->t < 1 || rec->t > MS_TKMS_MAX_T || share->index < 1 || share->index > pub->n)
        return MS_ERR_ARG;
    ms_err err = tg_init();
    if (err != MS_OK)
        return err;
    tsc u, ssk, hs;
    if (tsc_from_bytes(&u, share->u, &tg_sakke) != MS_OK ||
        tsc_from_bytes(&ssk, share->ssk, &tg_p256) != MS_OK)
        return MS_OK; /* out of range: wrong */
    if ((err = tkms_hs(&hs, pub->kpak, id, id_len, rec->pvt)) == MS_OK)
        err = share_ok(pub, rec, &u, &ssk, share->index, &hs, ok);
    ms_wipe(&u, sizeof u);
    ms_wipe(&ssk, sizeof ssk);
    return err;
}
