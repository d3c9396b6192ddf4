/*
 * The batch's Merkle tree and signed root (src/tkms/root.c): roots of known answer
 * (computed from RFC 9162's recursive definition by an independent script), every
 * inclusion proof of trees of 1 to 33 leaves leads to the root and to no other leaf
 * or index, nor with a hash altered; root signatures bind period, root, count and live set; the root file
 * round-trips and malformed files are refused; ceil((n + t + 1) / 2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/peer_msg.h"
#include "net/peer_table.h"
#include "testutil.h"
#include "tkms/root.h"

static void leaves_of(uint8_t (*lv)[32], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char rec[32];
        int l = snprintf(rec, sizeof rec, "record %zu", i);
        CHECK_ERR(tkms_merkle_leaf(lv[i], (const uint8_t *)rec, (size_t)l), MS_OK);
    }
}

static void known_roots(void)
{
    static const struct {
        size_t n;
        const char *root;
    } kat[] = {
        {1, "3b367d6db7bc51726d918b18e9a79e0fce53f867fbe38671f609e6bb59d46035"},
        {2, "5c34a11205877ecf2c4f28e25495d08301b33dbfb862419f7946fa6fdf8124ef"},
        {3, "11139f0ae3789cb227ab8c3e57d66e8925e3adb96c24d57311832150d6ac905b"},
        {5, "ab5ba240d5c5f66d57c43fc3e948d87beca519d4da8b028b6c582fda7bbf99b4"},
        {7, "6650979f6c878aad85f380ec89c9e2a7af10d2a64aa96a8918aa7f507b20f98e"},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        uint8_t lv[8][32], root[32], want[32];
        leaves_of(lv, kat[k].n);
        ms_test_hex(want, sizeof want, kat[k].root);
        CHECK_ERR(tkms_merkle_root(root, (const uint8_t(*)[32])lv, kat[k].n, 0, NULL, NULL),
                  MS_OK);
        CHECK_MEM(root, want, 32);
    }
    uint8_t root[32];
    CHECK_ERR(tkms_merkle_root(root, NULL, 0, 0, NULL, NULL), MS_ERR_ARG);
}

static void proofs(void)
{
    enum { MAXN = 33 };
    uint8_t lv[MAXN][32];
    leaves_of(lv, MAXN);
    for (size_t n = 1; n <= MAXN; n++) {
        uint8_t root[32];
        CHECK_ERR(tkms_merkle_root(root, (const uint8_t(*)[32])lv, n, 0, NULL, NULL), MS_OK);
        for (size_t m = 0; m < n; m++) {
            uint8_t r2[32], back[32], proof[TKMS_PROOF_MAX][32];
            size_t pl = 0;
            CHECK_ERR(tkms_merkle_root(r2, (const uint8_t(*)[32])lv, n, m, proof, &pl), MS_OK);
            CHECK_MEM(r2, root, 32);
            CHECK_ERR(tkms_merkle_from_proof(back, lv[m], m, n, (const uint8_t(*)[32])proof,
                                             pl),
                      MS_OK);
            CHECK_MEM(back, root, 32);
            /* another leaf, index or size does not lead to this root */
            if (n > 1) {
                size_t other = (m + 1) % n;
                ms_err e = tkms_merkle_from_proof(back, lv[other], m, n,
                                                  (const uint8_t(*)[32])proof, pl);
                CHECK(e != MS_OK || memcmp(back, root, 32) != 0);
                e = tkms_merkle_from_proof(back, lv[m], other, n, (const uint8_t(*)[32])proof,
                                           pl);
                CHECK(e != MS_OK || memcmp(back, root, 32) != 0);
                /* (a proof may also fit a larger tree: the signed count binds the size) */
                proof[0][5] ^= 1;
                e = tkms_merkle_from_proof(back, lv[m], m, n, (const uint8_t(*)[32])proof, pl);
                CHECK(e != MS_OK || memcmp(back, root, 32) != 0);
            }
        }
    }
    uint8_t back[32];
    CHECK_ERR(tkms_merkle_from_proof(back, lv[0], 3, 3, NULL, 0), MS_ERR_INVALID);
    CHECK_ERR(tkms_merkle_from_proof(back, lv[0], 0, 2, NULL, 0), MS_ERR_INVALID);
}

static void signatures_and_file(void)
{
    ms_peer_table table;
    memset(&table, 0, sizeof table);
    table.n = 3;
    table.t = 1;
    uint8_t seed[3][32];
    for (unsigned j = 0; j < 3; j++)
        CHECK_ERR(ms_peer_keygen(seed[j], table.server[j].sign_pub, NULL), MS_OK);
    tkms_root r;
    memset(&r, 0, sizeof r);
    snprintf(r.period, sizeof r.period, "2026-12");
    r.count = 5;
    r.live = 7;
    memset(r.root, 0xab, 32);
    for (unsigned j = 0; j < 3; j++) {
        CHECK_ERR(tkms_root_sign(seed[j], &r, r.sig[j]), MS_OK);
        r.have |= 1u << j;
    }
    CHECK(tkms_root_valid(&r, &table) == 7);
    /* each signed field is bound */
    tkms_root x = r;
    x.count = 6;
    CHECK(tkms_root_valid(&x, &table) == 0);
    x = r;
    x.live = 3;
    CHECK(tkms_root_valid(&x, &table) == 0);
    x = r;
    x.root[31] ^= 1;
    CHECK(tkms_root_valid(&x, &table) == 0);
    x = r;
    snprintf(x.period, sizeof x.period, "2027-01");
    CHECK(tkms_root_valid(&x, &table) == 0);
    x = r;
    memcpy(x.sig[1], r.sig[0], 64); /* server 1's signature offered as server 2's */
    CHECK(tkms_root_valid(&x, &table) == 5);

    char dir[] = "/tmp/ms_tkms_root_XXXXXX", path[300], bad[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/batch-2026-12.root", dir);
    char detail[300] = "";
    CHECK_ERR(tkms_root_write(path, &r, detail, sizeof detail), MS_OK);
    tkms_root back;
    CHECK_ERR(tkms_root_read(path, &back, detail, sizeof detail), MS_OK);
    CHECK(strcmp(back.period, "2026-12") == 0 && back.count == 5 && back.live == 7 &&
          back.have == 7);
    CHECK_MEM(back.root, r.root, 32);
    CHECK_MEM(back.sig, r.sig, sizeof r.sig);
    CHECK_ERR(tkms_root_write(path, &r, detail, sizeof detail), MS_ERR_EXISTS);

    static const char *const malformed[] = {
        "mikeysakke-tkms-root 2\n",
        "mikeysakke-tkms-root 1\nperiod 2026-12\ncount 1\nlive 00000007\n",
        "mikeysakke-tkms-root 1\nperiod 2026-12\ncount 1\nlive 00000007\nroot abcd\n",
        "mikeysakke-tkms-root 1\nperiod 2026-12\ncount 1\nlive 00000007\nroot "
        "abababababababababababababababababababababababababababababababab\nsig 0 00\n",
        "mikeysakke-tkms-root 1\nperiod 2026-12\ncount 1\nlive 00000007\nroot "
        "abababababababababababababababababababababababababababababababab\nextra 1\n",
    };
    snprintf(bad, sizeof bad, "%s/bad.root", dir);
    for (size_t k = 0; k < sizeof malformed / sizeof malformed[0]; k++) {
        FILE *f = fopen(bad, "w");
        CHECK(f != NULL);
        if (f == NULL)
            break;
        fputs(malformed[k], f);
        fclose(f);
        CHECK_ERR(tkms_root_read(bad, &back, detail, sizeof detail), MS_ERR_CONFIG);
        CHECK(strstr(detail, "bad.root") != NULL);
    }
    snprintf(bad, sizeof bad, "%s/none.root", dir);
    CHECK_ERR(tkms_root_read(bad, &back, detail, sizeof detail), MS_ERR_IO);
    snprintf(bad, sizeof bad, "%s/bad.root", dir);
    unlink(bad);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    known_roots();
    proofs();
    signatures_and_file();
    CHECK(tkms_root_needed(3, 1) == 3);
    CHECK(tkms_root_needed(4, 1) == 3);
    CHECK(tkms_root_needed(5, 1) == 4);
    CHECK(tkms_root_needed(5, 2) == 4);
    CHECK(tkms_root_needed(7, 3) == 6);
    char list[64];
    tkms_mask_list(list, sizeof list, 0xb);
    CHECK(strcmp(list, "1, 2, 4") == 0);
    return ms_test_finish();
}
