/*
 * The batches a serving threshold server keeps open (see batch_cache.h).
 *
 * Files (src/tkms/node.c writes them): batch-P.sealed = "mikeysakke-tkms-shares 1\n" |
 * AES-256-GCM (nonce 12 | ciphertext | tag 16, the period as aad) of the entries
 * "u16 id length | id | u | SSK"; batch-P.records = "mikeysakke-tkms-records 1\n" |
 * entries "u16 id length | id | record".
 */
#include "tkms/batch_cache.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mikeysakke/crypto.h"
#include "tkms/node.h"
#include "tkms/root.h"
#include "util/detail.h"
#include "util/file.h"

#define SHARE_BYTES (MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES)
static const char shares_header[] = "mikeysakke-tkms-shares 1\n";
static const char records_header[] = "mikeysakke-tkms-records 1\n";

typedef struct slot {
    uint64_t hash;   /* 0: empty */
    size_t share;    /* offset of the entry (its u16 id length) in the shares */
    size_t record;   /* offset of the record in the records file */
    size_t record_len;
    uint64_t leaf;   /* the record's position in the records file (its Merkle leaf) */
} slot;

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

typedef struct batch {
    char period[MS_TKMS_PERIOD_NAME_MAX];
    file_id sealed_id, records_id;
    uint8_t *shares;     /* decrypted, secret */
    size_t shares_len, shares_cap;
    uint8_t *records;    /* mapped read-only */
    size_t records_len;
    slot *index;
    size_t index_cap;    /* a power of two */
    /* The Merkle tree over the records (src/tkms/root.h), every level kept so that an
     * inclusion proof costs no hashing: level 0 the leaves, a lone last node carried up
     * unchanged (which gives RFC 9162's tree). */
    uint8_t (*tree)[32];
    size_t level_off[TKMS_PROOF_MAX + 1], level_len[TKMS_PROOF_MAX + 1], levels;
    uint64_t used;       /* last use, for dropping the oldest */
} batch;

struct tkms_batch_cache {
    pthread_mutex_t mu;
    batch b[MS_TKMS_CACHE_PERIODS];
    uint64_t clock;
};

static uint64_t id_hash(const uint8_t *id, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: identifiers are public */
    for (size_t i = 0; i < len; i++)
        h = (h ^ id[i]) * 1099511628211ull;
    return h != 0 ? h : 1;
}

static void batch_drop(batch *b)
{
    if (b->shares != NULL) {
        ms_wipe(b->shares, b->shares_cap);
        free(b->shares);
    }
    if (b->records != NULL)
        munmap(b->records, b->records_len);
    free(b->index);
    free(b->tree);
    memset(b, 0, sizeof *b);
}

/* Every level of the Merkle tree over the records' leaves (see the batch struct). */
static ms_err tree_build(batch *b, const uint8_t (*leaves)[32], size_t count)
{
    size_t total = 0, len = count;
    for (;;) {
        total += len;
        if (len <= 1)
            break;
        len = (len + 1) / 2;
    }
    b->tree = malloc((total > 0 ? total : 1) * sizeof *b->tree);
    if (b->tree == NULL)
        return MS_ERR_NOMEM;
    memcpy(b->tree, leaves, count * sizeof *leaves);
    b->levels = 0;
    size_t off = 0;
    len = count;
    for (;;) {
        if (b->levels > TKMS_PROOF_MAX)
            return MS_ERR_INTERNAL;
        b->level_off[b->levels] = off;
        b->level_len[b->levels] = len;
        b->levels++;
        if (len <= 1)
            break;
        uint8_t(*cur)[32] = b->tree + off, (*next)[32] = b->tree + off + len;
        for (size_t i = 0; i + 1 < len; i += 2) {
            uint8_t in[65];
            in[0] = 0x01;
            memcpy(in + 1, cur[i], 32);
            memcpy(in + 33, cur[i + 1], 32);
            if (EVP_Digest(in, sizeof in, next[i / 2], NULL, EVP_sha256(), NULL) != 1)
                return MS_ERR_INTERNAL;
        }
        if (len % 2 == 1)
            memcpy(next[len / 2], cur[len - 1], 32);
        off += len;
        len = (len + 1) / 2;
    }
    return MS_OK;
}

/* The inclusion proof of leaf i, bottom up (RFC 9162 2.1.3), and the root. */
static void tree_proof(const batch *b, uint64_t i, uint8_t root[32], uint8_t (*proof)[32],
                       size_t *proof_len)
{
    size_t n = 0;
    for (size_t l = 0; l + 1 < b->levels; l++, i /= 2) {
        uint64_t sib = i ^ 1;
        if (sib < b->level_len[l])
            memcpy(proof[n++], b->tree[b->level_off[l] + sib], 32);
    }
    *proof_len = n;
    memcpy(root, b->tree[b->level_off[b->levels - 1]], 32);
}

static bool stat_id(const char *path, file_id *id)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return false;
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    id->size = sb.st_size;
    id->mtime = sb.st_mtim;
    return true;
}

static bool same_id(const file_id *a, const file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* The entry of id in the index, or the empty slot where it would go. */
static slot *find(const batch *b, const uint8_t *id, size_t id_len, uint64_t h)
{
    size_t mask = b->index_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        slot *s = &b->index[i];
        if (s->hash == 0)
            return s;
        if (s->hash == h) {
            const uint8_t *e = b->shares + s->share;
            size_t l = (size_t)e[0] << 8 | e[1];
            if (l == id_len && memcmp(e + 2, id, id_len) == 0)
                return s;
        }
    }
}

/* Reads period's batch into b (b empty on failure). */
static ms_err batch_load(batch *b, const char *dir, const uint8_t key[32], const char *period,
                         const file_id *sid, const file_id *rid, char *detail, size_t cap)
{
    char sp[MS_TKMS_PATH_MAX], rp[MS_TKMS_PATH_MAX];
    snprintf(sp, sizeof sp, "%s/batch-%s.sealed", dir, period);
    snprintf(rp, sizeof rp, "%s/batch-%s.records", dir, period);
    uint8_t *sealed = NULL;
    size_t sealed_len = 0, hl = sizeof shares_header - 1, rh = sizeof records_header - 1;
    ms_err e = ms_file_read(sp, SIZE_MAX, &sealed, &sealed_len);
    if (e != MS_OK)
        return ms_detail_fail(e, detail, cap, "no batch for period %s (%s)", period, sp);
    if (sealed_len < hl + 28 || memcmp(sealed, shares_header, hl) != 0 ||
        (b->shares = malloc(sealed_len)) == NULL ||
        ms_tkms_batch_crypt(0, key, period, sealed + hl, sealed_len - hl, b->shares,
                            &b->shares_len) != MS_OK)
        e = ms_detail_fail(MS_ERR_SEALED_FILE, detail, cap, "%s does not open", sp);
    free(sealed); /* ciphertext */
    b->shares_cap = sealed_len;
    int fd = e == MS_OK ? open(rp, O_RDONLY | O_CLOEXEC) : -1;
    if (e == MS_OK && fd < 0)
        e = ms_detail_fail(MS_ERR_IO, detail, cap, "cannot read %s", rp);
    struct stat rsb;
    if (e == MS_OK && (fstat(fd, &rsb) != 0 || rsb.st_size < 0))
        e = ms_detail_fail(MS_ERR_IO, detail, cap, "cannot read %s", rp);
    if (e == MS_OK) {
        /* the size of the file opened (a newer one may have replaced it since the stat):
         * a mapping past its end would fault */
        b->records_len = (size_t)rsb.st_size;
        void *m = b->records_len > rh ? mmap(NULL, b->records_len, PROT_READ, MAP_PRIVATE, fd, 0)
                                      : MAP_FAILED;
        if (m == MAP_FAILED || memcmp(m, records_header, rh) != 0) {
            if (m != MAP_FAILED)
                munmap(m, b->records_len);
            b->records_len = 0;
            e = ms_detail_fail(MS_ERR_IO, detail, cap, "cannot read %s", rp);
        } else {
            b->records = m;
        }
    }
    if (fd >= 0)
        close(fd);
    /* count, then index the shares, then attach the records */
    size_t count = 0, o = 0;
    while (e == MS_OK && o + 2 <= b->shares_len) {
        size_t l = (size_t)b->shares[o] << 8 | b->shares[o + 1];
        o += 2 + l + SHARE_BYTES;
        count++;
    }
    if (e == MS_OK && o != b->shares_len)
        e = ms_detail_fail(MS_ERR_SEALED_FILE, detail, cap, "%s is malformed", sp);
    size_t ic = 16;
    while (e == MS_OK && ic < 2 * count + 2)
        ic *= 2;
    if (e == MS_OK && (b->index = calloc(ic, sizeof *b->index)) == NULL)
        e = MS_ERR_NOMEM;
    b->index_cap = ic;
    for (o = 0; e == MS_OK && o < b->shares_len;) {
        size_t l = (size_t)b->shares[o] << 8 | b->shares[o + 1];
        uint64_t h = id_hash(b->shares + o + 2, l);
        slot *s = find(b, b->shares + o + 2, l, h);
        if (s->hash == 0) {
            s->hash = h;
            s->share = o;
        }
        o += 2 + l + SHARE_BYTES;
    }
    size_t nrec = 0;
    for (o = rh; e == MS_OK && o + 2 <= b->records_len;) {
        size_t l = (size_t)b->records[o] << 8 | b->records[o + 1];
        ms_tkms_record r;
        size_t used = 0;
        if (o + 2 + l > b->records_len ||
            ms_tkms_record_decode(&r, b->records + o + 2 + l, b->records_len - (o + 2 + l),
                                  &used) != MS_OK) {
            e = ms_detail_fail(MS_ERR_SEALED_FILE, detail, cap, "%s is malformed", rp);
            break;
        }
        uint64_t h = id_hash(b->records + o + 2, l);
        slot *s = find(b, b->records + o + 2, l, h);
        if (s->hash != 0) {
            s->record = o + 2 + l;
            s->record_len = used;
            s->leaf = nrec;
        }
        o += 2 + l + used;
        nrec++;
    }
    /* the leaves in the file's order, then the levels above them */
    if (e == MS_OK && nrec == 0)
        e = ms_detail_fail(MS_ERR_SEALED_FILE, detail, cap, "%s holds no record", rp);
    if (e == MS_OK) {
        uint8_t(*leaves)[32] = malloc(nrec * sizeof *leaves);
        size_t k = 0;
        for (o = rh; leaves != NULL && o + 2 <= b->records_len && k < nrec; k++) {
            size_t l = (size_t)b->records[o] << 8 | b->records[o + 1];
            ms_tkms_record r;
            size_t used = 0;
            (void)ms_tkms_record_decode(&r, b->records + o + 2 + l, b->records_len - (o + 2 + l),
                                        &used);
            if (tkms_merkle_leaf(leaves[k], b->records + o + 2 + l, used) != MS_OK)
                break;
            o += 2 + l + used;
        }
        if (leaves == NULL)
            e = MS_ERR_NOMEM;
        else if (k != nrec)
            e = MS_ERR_INTERNAL;
        else
            e = tree_build(b, (const uint8_t(*)[32])leaves, nrec);
        free(leaves);
    }
    if (e != MS_OK) {
        batch_drop(b);
        return e;
    }
    snprintf(b->period, sizeof b->period, "%s", period);
    b->sealed_id = *sid;
    b->records_id = *rid;
    return MS_OK;
}

ms_err tkms_batch_cache_new(tkms_batch_cache **out)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return MS_ERR_NOMEM;
    pthread_mutex_init(&(*out)->mu, NULL);
    return MS_OK;
}

void tkms_batch_cache_free(tkms_batch_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < MS_TKMS_CACHE_PERIODS; i++)
        batch_drop(&c->b[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

ms_err tkms_batch_cache_slot(tkms_batch_cache *c, const char *dir, const uint8_t store_key[32],
                             const char *period, const uint8_t *id, size_t id_len,
                             uint8_t u[MS_SAKKE_SECRET_BYTES], uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                             uint8_t *record, size_t record_cap, size_t *record_len,
                             tkms_cache_proof *proof, char *detail, size_t detail_cap)
{
    if (c == NULL || dir == NULL || period == NULL || strlen(period) >= MS_TKMS_PERIOD_NAME_MAX)
        return MS_ERR_ARG;
    char sp[MS_TKMS_PATH_MAX], rp[MS_TKMS_PATH_MAX];
    snprintf(sp, sizeof sp, "%s/batch-%s.sealed", dir, period);
    snprintf(rp, sizeof rp, "%s/batch-%s.records", dir, period);
    file_id sid, rid;
    if (!stat_id(sp, &sid))
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "no batch for period %s (%s)",
                              period, sp);
    if (!stat_id(rp, &rid))
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot read %s", rp);
    pthread_mutex_lock(&c->mu);
    batch *b = NULL, *oldest = &c->b[0];
    for (size_t i = 0; i < MS_TKMS_CACHE_PERIODS; i++) {
        if (c->b[i].shares != NULL && strcmp(c->b[i].period, period) == 0)
            b = &c->b[i];
        if (c->b[i].used < oldest->used)
            oldest = &c->b[i];
    }
    if (b != NULL && (!same_id(&b->sealed_id, &sid) || !same_id(&b->records_id, &rid))) {
        batch_drop(b); /* a new batch of that period */
        oldest = b;
        b = NULL;
    }
    ms_err e = MS_OK;
    if (b == NULL) {
        batch_drop(oldest);
        e = batch_load(oldest, dir, store_key, period, &sid, &rid, detail, detail_cap);
        if (e == MS_OK)
            b = oldest;
    }
    if (e == MS_OK) {
        b->used = ++c->clock;
        slot *s = find(b, id, id_len, id_hash(id, id_len));
        if (s->hash == 0 || s->record_len == 0) {
            e = MS_ERR_IDENTITY;
        } else if (s->record_len > record_cap) {
            e = MS_ERR_BUFFER_TOO_SMALL;
        } else {
            const uint8_t *entry = b->shares + s->share + 2 + id_len;
            memcpy(u, entry, MS_SAKKE_SECRET_BYTES);
            memcpy(ssk, entry + MS_SAKKE_SECRET_BYTES, MS_ECCSI_SCALAR_BYTES);
            memcpy(record, b->records + s->record, s->record_len);
            *record_len = s->record_len;
            if (proof != NULL) {
                proof->index = s->leaf;
                proof->count = b->level_len[0];
                tree_proof(b, s->leaf, proof->root, proof->hashes, &proof->len);
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}
