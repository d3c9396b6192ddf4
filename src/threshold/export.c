/*
 * A server's key-generation outcome as octets, for the operation layer (src/tkms) to seal
 * at rest, and back (restoring a server for a later batch).
 */
#include <string.h>

#include "threshold/tkms_internal.h"

void tkms_share_bytes(const ms_tkms_server *s, uint8_t z[MS_SAKKE_SECRET_BYTES],
                      uint8_t ksak[MS_ECCSI_SCALAR_BYTES])
{
    tsc_to_bytes(z, &s->z_j, &tg_sakke);
    tsc_to_bytes(ksak, &s->ksak_j, &tg_p256);
}

ms_err tkms_server_restore(ms_tkms_server *s, const ms_tkms_public *pub,
                           const uint8_t z[MS_SAKKE_SECRET_BYTES],
                           const uint8_t ksak[MS_ECCSI_SCALAR_BYTES])
{
    if (s == NULL || pub == NULL || pub->n != s->n || pub->t != s->t)
        return MS_ERR_ARG;
    ms_err err = tsc_from_bytes(&s->z_j, z, &tg_sakke);
    if (err == MS_OK)
        err = tsc_from_bytes(&s->ksak_j, ksak, &tg_p256);
    if (err != MS_OK)
        return err;
    /* the shares must be those behind this server's public key shares */
    uint8_t pt[TG_PT_MAX];
    err = tg_mul_gen(&tg_sakke, pt, &s->z_j);
    if (err == MS_OK && memcmp(pt, pub->Zj[s->idx - 1], tg_sakke.pt_bytes) != 0)
        err = MS_ERR_INVALID;
    if (err == MS_OK)
        err = tg_mul_gen(&tg_p256, pt, &s->ksak_j);
    if (err == MS_OK && memcmp(pt, pub->kpakj[s->idx - 1], tg_p256.pt_bytes) != 0)
        err = MS_ERR_INVALID;
    if (err != MS_OK) {
        tsc_zero(&s->z_j);
        tsc_zero(&s->ksak_j);
        return err;
    }
    s->pub = *pub;
    s->ended = MS_TKMS_DKG_ROUNDS;
    return MS_OK;
}
