/*
 * Group SRTP (call/group_media.h): the MKI lookup, per-sender inbound contexts and the
 * ROC carried for late entry.
 */
#include "call/group_media.h"

#include <stdlib.h>
#include <string.h>

#include "call/rtp.h"
#include "mikeysakke/crypto.h"
#include "util/bytes.h"
#include "util/detail.h"

#define MKI_LEN 8
#define URI_MAX 256
#define SRTCP_INDEX 4

typedef struct sender {
    char uri[URI_MAX]; /* "" for an empty slot */
    uint64_t mki;
    ms_srtp *rx;
} sender;

typedef struct mki_entry {
    uint64_t mki;
    size_t slot;
} mki_entry;

struct ms_group_media {
    ms_group_key key;
    ms_srtp_suite suite;
    size_t tag_len, salt_len;
    uint16_t roc_every;
    ms_srtp *tx;
    uint8_t own_mki[MKI_LEN];
    bool tx_started;
    uint16_t tx_last_seq;
    uint32_t tx_roc;
    sender *senders;
    size_t n_senders, cap_senders;
    mki_entry *by_mki; /* sorted by mki, one per non-empty slot */
    size_t n_mki;
};

ms_err ms_group_media_new(ms_group_media **out, const ms_group_key *key, const char *own_uri,
                          ms_srtp_suite suite, uint16_t roc_every, char *detail, size_t cap)
{
    if (out == NULL || key == NULL || own_uri == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_group_media *g = calloc(1, sizeof *g);
    if (g == NULL)
        return MS_ERR_NOMEM;
    g->key = *key;
    g->suite = suite;
    g->tag_len = suite == MS_SRTP_AES_CM_128_HMAC_SHA1_80 ? 10 : 0; /* after the MKI */
    ms_srtp_suite_lengths(suite, NULL, &g->salt_len);
    g->roc_every = roc_every == 0 ? 1 : roc_every;
    ms_srtp_keys own;
    ms_err err = ms_group_sender_keys(&own, key, own_uri, g->salt_len);
    if (err == MS_OK && own.mki_len != MKI_LEN)
        err = MS_ERR_INTERNAL;
    if (err == MS_OK) {
        memcpy(g->own_mki, own.mki, MKI_LEN);
        err = ms_srtp_new(&g->tx, suite, &own, true);
    }
    ms_wipe(&own, sizeof own);
    if (err != MS_OK) {
        ms_detail_set(detail, cap, "cannot derive %s's SRTP keys from the group key of %s",
                      own_uri, key->group);
        ms_group_media_free(g);
        return err;
    }
    *out = g;
    return MS_OK;
}

void ms_group_media_free(ms_group_media *g)
{
    if (g == NULL)
        return;
    ms_srtp_free(g->tx);
    for (size_t i = 0; i < g->n_senders; i++)
        ms_srtp_free(g->senders[i].rx);
    free(g->senders);
    free(g->by_mki);
    ms_wipe(g, sizeof *g);
    free(g);
}

/* The first entry with mki >= the one sought. */
static size_t lower_bound(const ms_group_media *g, uint64_t mki)
{
    size_t lo = 0, hi = g->n_mki;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->by_mki[mid].mki < mki)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static sender *find_by_mki(ms_group_media *g, uint64_t mki, size_t *slot)
{
    size_t i = lower_bound(g, mki);
    if (i == g->n_mki || g->by_mki[i].mki != mki)
        return NULL;
    *slot = g->by_mki[i].slot;
    return &g->senders[*slot];
}

ms_err ms_group_media_add_sender(ms_group_media *g, const char *uri, size_t *index)
{
    if (g == NULL || uri == NULL || uri[0] == 0 || strlen(uri) >= URI_MAX)
        return MS_ERR_ARG;
    for (size_t i = 0; i < g->n_senders; i++)
        if (strcmp(g->senders[i].uri, uri) == 0)
            return MS_ERR_EXISTS;
    ms_srtp_keys k;
    ms_err err = ms_group_sender_keys(&k, &g->key, uri, g->salt_len);
    if (err != MS_OK)
        return err;
    uint64_t mki = ms_load_be64(k.mki);
    size_t pos = lower_bound(g, mki);
    if (pos < g->n_mki && g->by_mki[pos].mki == mki) {
        ms_wipe(&k, sizeof k);
        return MS_ERR_EXISTS; /* two URIs on one GUK-ID (28 bits): one could not be told */
    }
    if (g->n_senders == g->cap_senders) {
        size_t ncap = g->cap_senders ? 2 * g->cap_senders : 8;
        sender *ns = realloc(g->senders, ncap * sizeof *ns);
        mki_entry *nm = ns ? realloc(g->by_mki, ncap * sizeof *nm) : NULL;
        if (ns != NULL)
            g->senders = ns;
        if (nm == NULL) {
            ms_wipe(&k, sizeof k);
            return MS_ERR_NOMEM;
        }
        g->by_mki = nm;
        g->cap_senders = ncap;
    }
    sender *s = &g->senders[g->n_senders];
    memset(s, 0, sizeof *s);
    err = ms_srtp_new(&s->rx, g->suite, &k, false);
    ms_wipe(&k, sizeof k);
    if (err != MS_OK)
        return err;
    snprintf(s->uri, sizeof s->uri, "%s", uri);
    s->mki = mki;
    memmove(&g->by_mki[pos + 1], &g->by_mki[pos], (g->n_mki - pos) * sizeof *g->by_mki);
    g->by_mki[pos] = (mki_entry){.mki = mki, .slot = g->n_senders};
    g->n_mki++;
    if (index != NULL)
        *index = g->n_senders;
    g->n_senders++;
    return MS_OK;
}

ms_err ms_group_media_remove_sender(ms_group_media *g, const char *uri)
{
    if (g == NULL || uri == NULL)
        return MS_ERR_ARG;
    for (size_t i = 0; i < g->n_senders; i++) {
        sender *s = &g->senders[i];
        if (s->uri[0] == 0 || strcmp(s->uri, uri) != 0)
            continue;
        size_t pos = lower_bound(g, s->mki);
        memmove(&g->by_mki[pos], &g->by_mki[pos + 1], (g->n_mki - pos - 1) * sizeof *g->by_mki);
        g->n_mki--;
        ms_srtp_free(s->rx);
        memset(s, 0, sizeof *s);
        return MS_OK;
    }
    return MS_ERR_USER_UNKNOWN;
}

size_t ms_group_media_slots(const ms_group_media *g)
{
    return g != NULL ? g->n_senders : 0;
}

const char *ms_group_media_sender(const ms_group_media *g, size_t index)
{
    return g != NULL && index < g->n_senders ? g->senders[index].uri : "";
}

const uint8_t *ms_group_media_own_mki(const ms_group_media *g)
{
    return g->own_mki;
}

ms_err ms_group_media_protect(ms_group_media *g, uint8_t *pkt, size_t *len, size_t cap)
{
    if (g == NULL || pkt == NULL || len == NULL)
        return MS_ERR_ARG;
    if (*len < MS_RTP_HEADER)
        return MS_ERR_INVALID;
    uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
    /* Our own count of wraps, as libsrtp's sender side keeps it: packets go out in
     * order, so a smaller sequence number means the 16 bits rolled over. */
    uint32_t roc = g->tx_roc;
    if (g->tx_started && seq < g->tx_last_seq && g->tx_last_seq - seq > 0x8000)
        roc++;
    bool carry = seq % g->roc_every == 0;
    if (carry && cap < MS_GROUP_ROC_LEN)
        return MS_ERR_BUFFER_TOO_SMALL;
    ms_err err = ms_srtp_protect(g->tx, pkt, len, carry ? cap - MS_GROUP_ROC_LEN : cap);
    if (err != MS_OK)
        return err;
    g->tx_roc = roc;
    g->tx_last_seq = seq;
    g->tx_started = true;
    if (carry) {
        ms_store_be32(pkt + *len, roc);
        *len += MS_GROUP_ROC_LEN;
    }
    return MS_OK;
}

ms_err ms_group_media_protect_rtcp(ms_group_media *g, uint8_t *pkt, size_t *len, size_t cap)
{
    if (g == NULL)
        return MS_ERR_ARG;
    return ms_srtp_protect_rtcp(g->tx, pkt, len, cap);
}

ms_err ms_group_media_unprotect(ms_group_media *g, uint8_t *pkt, size_t *len, bool *rtcp,
                                size_t *sender_index)
{
    if (g == NULL || pkt == NULL || len == NULL || rtcp == NULL || sender_index == NULL)
        return MS_ERR_ARG;
    size_t n = *len;
    if (n < MS_RTP_HEADER)
        return MS_ERR_INVALID;
    *rtcp = ms_rtp_is_rtcp(pkt, n);
    uint32_t ssrc = ms_load_be32(pkt + (*rtcp ? 4 : 8));
    bool carried = false;
    uint32_t roc = 0;
    if (!*rtcp && (uint16_t)(pkt[2] << 8 | pkt[3]) % g->roc_every == 0) {
        if (n < MS_RTP_HEADER + MS_GROUP_ROC_LEN)
            return MS_ERR_INVALID;
        n -= MS_GROUP_ROC_LEN;
        roc = ms_load_be32(pkt + n);
        carried = true;
    }
    /* The MKI sits just before AES-CM's tag, and at the very end with AEAD. */
    size_t trailer = MKI_LEN + g->tag_len + (*rtcp ? SRTCP_INDEX : 0);
    if (n < MS_RTP_HEADER + trailer)
        return MS_ERR_INVALID;
    size_t slot;
    sender *s = find_by_mki(g, ms_load_be64(pkt + n - g->tag_len - MKI_LEN), &slot);
    if (s == NULL)
        return MS_ERR_SRTP_AUTH; /* nobody of the roster sends under this MKI */
    ms_err err;
    ms_srtp_roc_undo undo = {0};
    if (carried && (err = ms_srtp_set_roc(s->rx, ssrc, roc, &undo)) != MS_OK)
        return err;
    err = *rtcp ? ms_srtp_unprotect_rtcp(s->rx, pkt, &n) : ms_srtp_unprotect(s->rx, pkt, &n);
    if (err != MS_OK) {
        ms_srtp_undo_roc(s->rx, &undo); /* a forged packet leaves nothing behind */
        return err;
    }
    *len = n;
    *sender_index = slot;
    return MS_OK;
}
