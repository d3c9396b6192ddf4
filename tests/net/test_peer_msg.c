/*
 * Signed server messages (src/net/peer_msg.c): a round trip for a server and for a device,
 * and each refusal: a forged sender (signed by another server's key, or by a key outside
 * the table), a sender outside the table, another session, another recipient, every octet
 * altered, truncated or extended, a bad magic or version, a replayed message, a message of
 * an earlier round, and a guard of another session. Key files: written atomically, read
 * back, a private one open to others refused, a malformed one refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/peer_msg.h"
#include "testutil.h"

#define N 3

static uint8_t seeds[N][MS_PEER_KEY_BYTES];
static ms_peer_keys table;
static uint8_t session[MS_PEER_SESSION_BYTES];
static const uint8_t payload[] = "R1: Pedersen commitments of dealer 2 (opaque to this layer)";

static size_t make(int sender_index, const uint8_t *seed, uint8_t recipient, uint16_t kind,
                   uint32_t round, const uint8_t *sess, uint8_t *out, size_t cap)
{
    ms_peer_msg_hdr h = {.sender = (uint8_t)sender_index, .recipient = recipient,
                         .kind = kind, .round = round};
    memcpy(h.session, sess, sizeof h.session);
    size_t n = 0;
    CHECK_ERR(ms_peer_msg_sign(seed, &h, payload, sizeof payload, out, cap, &n), MS_OK);
    return n;
}

static void setup(void)
{
    table.n = N;
    for (int i = 0; i < N; i++)
        CHECK_ERR(ms_peer_keygen(seeds[i], table.pub[i], NULL), MS_OK);
    for (size_t i = 0; i < sizeof session; i++)
        session[i] = (uint8_t)(0xA0 + i);
}

static void test_round_trip(void)
{
    uint8_t msg[256];
    size_t n = make(2, seeds[1], 3, 5, 1, session, msg, sizeof msg);
    CHECK(n == sizeof payload + MS_PEER_MSG_OVERHEAD);
    ms_peer_msg_hdr h;
    const uint8_t *p = NULL;
    size_t plen = 0;
    char detail[256] = "";
    CHECK_ERR(ms_peer_msg_open(&table, session, 3, NULL, msg, n, &h, &p, &plen, detail,
                               sizeof detail), MS_OK);
    CHECK(h.sender == 2 && h.recipient == 3 && h.kind == 5 && h.round == 1);
    CHECK(plen == sizeof payload && p == msg + MS_PEER_HEADER_BYTES);
    CHECK_MEM(p, payload, sizeof payload);
    CHECK_MEM(h.session, session, sizeof session);

    /* To everyone: any server and a device accept it. */
    n = make(1, seeds[0], MS_PEER_TO_ALL, 0, 7, session, msg, sizeof msg);
    for (uint8_t me = 0; me <= N; me++)
        CHECK_ERR(ms_peer_msg_open(&table, session, me, NULL, msg, n, &h, &p, &plen, NULL, 0),
                  MS_OK);

    /* An empty payload. */
    ms_peer_msg_hdr e = {.sender = 3, .recipient = 0, .kind = 63, .round = 0xFFFFFFFFu};
    memcpy(e.session, session, sizeof session);
    CHECK_ERR(ms_peer_msg_sign(seeds[2], &e, NULL, 0, msg, sizeof msg, &n), MS_OK);
    CHECK(n == MS_PEER_MSG_OVERHEAD);
    CHECK_ERR(ms_peer_msg_open(&table, session, 0, NULL, msg, n, &h, &p, &plen, NULL, 0), MS_OK);
    CHECK(plen == 0 && h.kind == 63 && h.round == 0xFFFFFFFFu);
}

static void test_forgeries(void)
{
    uint8_t msg[256], msg2[256];
    ms_peer_msg_hdr h;
    const uint8_t *p;
    size_t plen, n;
    char detail[256] = "";

    /* Server 1 signs a message claiming to be server 2. */
    n = make(2, seeds[0], 3, 1, 1, session, msg, sizeof msg);
    CHECK_ERR(ms_peer_msg_open(&table, session, 3, NULL, msg, n, &h, &p, &plen, detail,
                               sizeof detail), MS_ERR_PEER_MESSAGE);
    CHECK(strstr(detail, "pinned key of server 2") != NULL);

    /* A key outside the table, claiming each index. */
    uint8_t stranger[32], stranger_pub[32];
    CHECK_ERR(ms_peer_keygen(stranger, stranger_pub, NULL), MS_OK);
    for (int s = 1; s <= N; s++) {
        n = make(s, stranger, 0, 1, 1, session, msg, sizeof msg);
        CHECK_ERR(ms_peer_msg_open(&table, session, 1, NULL, msg, n, &h, &p, &plen, NULL, 0),
                  MS_ERR_PEER_MESSAGE);
    }
    /* Index beyond the table (a fourth server of a three-server KMS) or 0. */
    n = make(4, stranger, 0, 1, 1, session, msg, sizeof msg);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, NULL, msg, n, &h, &p, &plen, detail,
                               sizeof detail), MS_ERR_PEER_MESSAGE);
    CHECK(strstr(detail, "sender 4") != NULL);
    n = make(1, seeds[0], 0, 1, 1, session, msg, sizeof msg);
    memcpy(msg2, msg, n);
    msg2[5] = 0;
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, NULL, msg2, n, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_MESSAGE);

    /* Another session (correctly signed, but for another run of the protocol). */
    uint8_t other[32];
    memcpy(other, session, sizeof other);
    other[31] ^= 1;
    n = make(1, seeds[0], 0, 1, 1, other, msg, sizeof msg);
    CHECK_ERR(ms_peer_msg_open(&table, session, 2, NULL, msg, n, &h, &p, &plen, detail,
                               sizeof detail), MS_ERR_PEER_MESSAGE);
    CHECK(strstr(detail, "another session") != NULL);

    /* Addressed to server 2: server 3 and a device refuse it. */
    n = make(1, seeds[0], 2, 1, 1, session, msg, sizeof msg);
    CHECK_ERR(ms_peer_msg_open(&table, session, 3, NULL, msg, n, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_MESSAGE);
    CHECK_ERR(ms_peer_msg_open(&table, session, 0, NULL, msg, n, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_MESSAGE);
    CHECK_ERR(ms_peer_msg_open(&table, session, 2, NULL, msg, n, &h, &p, &plen, NULL, 0), MS_OK);

    /* Every octet altered: refused, whatever the field. */
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(msg2, msg, n);
        msg2[i] ^= 0x01;
        if (ms_peer_msg_open(&table, session, 2, NULL, msg2, n, &h, &p, &plen, NULL, 0) != MS_OK)
            refused++;
    }
    CHECK(refused == (int)n);
    /* Truncated at every length, and extended. */
    int short_refused = 0;
    for (size_t k = 0; k < n; k++)
        if (ms_peer_msg_open(&table, session, 2, NULL, msg, k, &h, &p, &plen, NULL, 0) != MS_OK)
            short_refused++;
    CHECK(short_refused == (int)n);
    memcpy(msg2, msg, n);
    msg2[n] = 0;
    CHECK_ERR(ms_peer_msg_open(&table, session, 2, NULL, msg2, n + 1, &h, &p, &plen, NULL, 0),
              MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_peer_msg_open(&table, session, 2, NULL, msg, 10, &h, &p, &plen, NULL, 0),
              MS_ERR_BAD_LENGTH);
    memcpy(msg2, msg, n);
    msg2[4] = 2; /* version */
    CHECK_ERR(ms_peer_msg_open(&table, session, 2, NULL, msg2, n, &h, &p, &plen, NULL, 0),
              MS_ERR_BAD_ENCODING);
    memcpy(msg2, msg, n);
    msg2[0] = 'X';
    CHECK_ERR(ms_peer_msg_open(&table, session, 2, NULL, msg2, n, &h, &p, &plen, NULL, 0),
              MS_ERR_BAD_ENCODING);
    ms_wipe(stranger, sizeof stranger);
}

static void test_replays(void)
{
    uint8_t m1[256], m2[256], m3[256], m1b[256];
    ms_peer_guard g;
    ms_peer_guard_init(&g, session);
    ms_peer_msg_hdr h;
    const uint8_t *p;
    size_t plen;
    char detail[256] = "";
    size_t n1 = make(2, seeds[1], 0, 1, 1, session, m1, sizeof m1);   /* round 1, kind 1 */
    size_t n1b = make(2, seeds[1], 0, 2, 1, session, m1b, sizeof m1b); /* round 1, kind 2 */
    size_t n2 = make(2, seeds[1], 0, 1, 2, session, m2, sizeof m2);   /* round 2, kind 1 */
    size_t n3 = make(3, seeds[2], 0, 1, 1, session, m3, sizeof m3);   /* another sender */

    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m1, n1, &h, &p, &plen, NULL, 0), MS_OK);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m1, n1, &h, &p, &plen, detail,
                               sizeof detail), MS_ERR_PEER_REPLAY);
    CHECK(strstr(detail, "already sent") != NULL);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m1b, n1b, &h, &p, &plen, NULL, 0), MS_OK);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m3, n3, &h, &p, &plen, NULL, 0), MS_OK);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m2, n2, &h, &p, &plen, NULL, 0), MS_OK);
    /* Round 1 replayed in round 2: refused, either kind. */
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m1, n1, &h, &p, &plen, detail,
                               sizeof detail), MS_ERR_PEER_REPLAY);
    CHECK(strstr(detail, "round 1 after round 2") != NULL);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m1b, n1b, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_REPLAY);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m2, n2, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_REPLAY);
    /* Server 3 is still in round 1: its own round-1 replay is refused too. */
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, m3, n3, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_REPLAY);
    /* A forged message does not poison the guard: a forgery of server 3's round 5 is
     * refused as a forgery, and server 3's real round 2 still passes. */
    uint8_t f[256], r2[256];
    size_t nf = make(3, seeds[0], 0, 1, 5, session, f, sizeof f);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, f, nf, &h, &p, &plen, NULL, 0),
              MS_ERR_PEER_MESSAGE);
    size_t nr2 = make(3, seeds[2], 0, 1, 2, session, r2, sizeof r2);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g, r2, nr2, &h, &p, &plen, NULL, 0), MS_OK);

    /* A guard of another session is a caller error. */
    uint8_t other[32] = {0};
    ms_peer_guard g2;
    ms_peer_guard_init(&g2, other);
    CHECK_ERR(ms_peer_msg_open(&table, session, 1, &g2, m1, n1, &h, &p, &plen, NULL, 0),
              MS_ERR_ARG);
}

static void test_args(void)
{
    uint8_t msg[256];
    size_t n = 0;
    ms_peer_msg_hdr h = {.sender = 0, .recipient = 0, .kind = 1, .round = 1};
    CHECK_ERR(ms_peer_msg_sign(seeds[0], &h, payload, sizeof payload, msg, sizeof msg, &n),
              MS_ERR_ARG);
    h.sender = 1;
    h.kind = 64;
    CHECK_ERR(ms_peer_msg_sign(seeds[0], &h, payload, sizeof payload, msg, sizeof msg, &n),
              MS_ERR_ARG);
    h.kind = 1;
    CHECK_ERR(ms_peer_msg_sign(seeds[0], &h, payload, sizeof payload, msg,
                               sizeof payload + MS_PEER_MSG_OVERHEAD - 1, &n),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_peer_msg_sign(seeds[0], &h, NULL, 3, msg, sizeof msg, &n), MS_ERR_ARG);
    ms_peer_msg_hdr got;
    const uint8_t *p;
    size_t plen;
    CHECK_ERR(ms_peer_msg_sign(seeds[0], &h, payload, sizeof payload, msg, sizeof msg, &n),
              MS_OK);
    CHECK_ERR(ms_peer_msg_open(&table, session, 4, NULL, msg, n, &got, &p, &plen, NULL, 0),
              MS_ERR_ARG); /* `me` beyond the table */
    ms_peer_keys empty = {.n = 0};
    CHECK_ERR(ms_peer_msg_open(&empty, session, 0, NULL, msg, n, &got, &p, &plen, NULL, 0),
              MS_ERR_ARG);
}

static void test_key_files(void)
{
    char dir[] = "/tmp/ms_peer_keys_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char priv[256], pub[256], bad[256];
    snprintf(priv, sizeof priv, "%s/server-1.key", dir);
    snprintf(pub, sizeof pub, "%s/server-1.pub", dir);
    snprintf(bad, sizeof bad, "%s/bad.key", dir);
    char detail[256] = "";
    CHECK_ERR(ms_peer_key_write(priv, seeds[0], true, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_peer_key_write(pub, table.pub[0], false, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_peer_key_write(priv, seeds[1], true, detail, sizeof detail), MS_ERR_EXISTS);
    struct stat sb;
    CHECK(stat(priv, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    uint8_t k[32], pk[32];
    CHECK_ERR(ms_peer_key_read(priv, k, detail, sizeof detail), MS_OK);
    CHECK_MEM(k, seeds[0], 32);
    CHECK_ERR(ms_peer_pub_read(pub, pk, detail, sizeof detail), MS_OK);
    CHECK_MEM(pk, table.pub[0], 32);
    /* The public key file is not private: reading it as one is refused (mode 0644). */
    CHECK_ERR(ms_peer_key_read(pub, k, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    CHECK(chmod(priv, 0640) == 0);
    CHECK_ERR(ms_peer_key_read(priv, k, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    CHECK(strstr(detail, "0640") != NULL);
    FILE *f = fopen(bad, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("00112233\n", f);
        fclose(f);
    }
    CHECK(chmod(bad, 0600) == 0);
    CHECK_ERR(ms_peer_key_read(bad, k, detail, sizeof detail), MS_ERR_ARG);
    CHECK_ERR(ms_peer_pub_read("/nonexistent/x.pub", pk, detail, sizeof detail), MS_ERR_IO);
    unlink(priv);
    unlink(pub);
    unlink(bad);
    rmdir(dir);
    ms_wipe(k, sizeof k);
}

int main(void)
{
    setup();
    test_round_trip();
    test_forgeries();
    test_replays();
    test_args();
    test_key_files();
    for (int i = 0; i < N; i++)
        ms_wipe(seeds[i], sizeof seeds[i]);
    return ms_test_finish();
}
