/*
 * Signed threshold-KMS messages and their replay guard (src/net/peer_msg.h).
 */
#include "net/peer_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto/rng.h"
#include "util/bytes.h"
#include "util/detail.h"
#include "util/file.h"
#include "util/hex.h"

#define MAGIC "MSTM"
#define VERSION 1

/* ---- keys and signatures -------------------------------------------------------------------- */

ms_err ms_peer_public(const uint8_t seed[MS_PEER_KEY_BYTES], uint8_t pub[MS_PEER_KEY_BYTES])
{
    if (seed == NULL || pub == NULL)
        return MS_ERR_ARG;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MS_PEER_KEY_BYTES);
    size_t n = MS_PEER_KEY_BYTES;
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == MS_PEER_KEY_BYTES;
    EVP_PKEY_free(k);
    ERR_clear_error();
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

ms_err ms_peer_keygen(uint8_t seed[MS_PEER_KEY_BYTES], uint8_t pub[MS_PEER_KEY_BYTES],
                      const ms_rng *rng)
{
    if (seed == NULL || pub == NULL)
        return MS_ERR_ARG;
    ms_err e = ms_rng_fill(rng, seed, MS_PEER_KEY_BYTES);
    if (e == MS_OK)
        e = ms_peer_public(seed, pub);
    if (e != MS_OK)
        OPENSSL_cleanse(seed, MS_PEER_KEY_BYTES);
    return e;
}

/* Ed25519 over context || 0x00 || m (one-shot: Ed25519 hashes the message twice, so the
 * octets are assembled first). */
static unsigned char *with_context(const uint8_t *m, size_t m_len, size_t *out_len)
{
    size_t cl = sizeof MS_PEER_SIGN_CONTEXT; /* with its NUL */
    unsigned char *buf = OPENSSL_malloc(cl + m_len);
    if (buf == NULL)
        return NULL;
    memcpy(buf, MS_PEER_SIGN_CONTEXT, cl);
    memcpy(buf + cl, m, m_len);
    *out_len = cl + m_len;
    return buf;
}

static ms_err sign(const uint8_t seed[MS_PEER_KEY_BYTES], const uint8_t *m, size_t m_len,
                   uint8_t sig[MS_PEER_SIG_BYTES])
{
    size_t bl = 0, sl = MS_PEER_SIG_BYTES;
    unsigned char *buf = with_context(m, m_len, &bl);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, MS_PEER_KEY_BYTES);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = buf != NULL && k != NULL && c != NULL &&
             EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(c, sig, &sl, buf, bl) == 1 && sl == MS_PEER_SIG_BYTES;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    OPENSSL_free(buf);
    ERR_clear_error();
    return ok ? MS_OK : MS_ERR_INTERNAL;
}

static bool verify(const uint8_t pub[MS_PEER_KEY_BYTES], const uint8_t *m, size_t m_len,
                   const uint8_t sig[MS_PEER_SIG_BYTES])
{
    size_t bl = 0;
    unsigned char *buf = with_context(m, m_len, &bl);
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, MS_PEER_KEY_BYTES);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = buf != NULL && k != NULL && c != NULL &&
             EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(c, sig, MS_PEER_SIG_BYTES, buf, bl) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    OPENSSL_free(buf);
    ERR_clear_error();
    return ok;
}

/* ---- messages ---------------------------------------------------------------------------------- */

ms_err ms_peer_msg_sign(const uint8_t seed[MS_PEER_KEY_BYTES], const ms_peer_msg_hdr *h,
                        const uint8_t *payload, size_t payload_len, uint8_t *out, size_t cap,
                        size_t *out_len)
{
    if (seed == NULL || h == NULL || out == NULL || out_len == NULL ||
        (payload == NULL && payload_len != 0) || h->sender == 0 || h->sender > MS_PEER_MAX ||
        h->recipient > MS_PEER_MAX || h->kind > MS_PEER_KIND_MAX ||
        payload_len > MS_PEER_PAYLOAD_MAX)
        return MS_ERR_ARG;
    if (cap < payload_len + MS_PEER_MSG_OVERHEAD)
        return MS_ERR_BUFFER_TOO_SMALL;
    memcpy(out, MAGIC, 4);
    out[4] = VERSION;
    out[5] = h->sender;
    out[6] = h->recipient;
    ms_store_be16(out + 7, h->kind);
    ms_store_be32(out + 9, h->round);
    memcpy(out + 13, h->session, MS_PEER_SESSION_BYTES);
    ms_store_be32(out + 45, (uint32_t)payload_len);
    if (payload_len != 0)
        memcpy(out + MS_PEER_HEADER_BYTES, payload, payload_len);
    size_t body = MS_PEER_HEADER_BYTES + payload_len;
    ms_err e = sign(seed, out, body, out + body);
    if (e != MS_OK) {
        OPENSSL_cleanse(out, body);
        return e;
    }
    *out_len = body + MS_PEER_SIG_BYTES;
    return MS_OK;
}

void ms_peer_guard_init(ms_peer_guard *g, const uint8_t session[MS_PEER_SESSION_BYTES])
{
    if (g == NULL)
        return;
    memset(g, 0, sizeof *g);
    if (session != NULL)
        memcpy(g->session, session, MS_PEER_SESSION_BYTES);
}

ms_err ms_peer_msg_open(const ms_peer_keys *keys, const uint8_t session[MS_PEER_SESSION_BYTES],
                        uint8_t me, ms_peer_guard *guard, const uint8_t *in, size_t in_len,
                        ms_peer_msg_hdr *h, const uint8_t **payload, size_t *payload_len,
                        char *detail, size_t detail_cap)
{
    if (keys == NULL || session == NULL || in == NULL || h == NULL || payload == NULL ||
        payload_len == NULL || keys->n == 0 || keys->n > MS_PEER_MAX || me > keys->n)
        return MS_ERR_ARG;
    if (guard != NULL && memcmp(guard->session, session, MS_PEER_SESSION_BYTES) != 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the replay guard belongs to another session");
    if (in_len < MS_PEER_MSG_OVERHEAD)
        return ms_detail_fail(MS_ERR_BAD_LENGTH, detail, detail_cap,
                              "server message of %zu octets: shorter than its header and "
                              "signature", in_len);
    if (memcmp(in, MAGIC, 4) != 0 || in[4] != VERSION)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "not a server message of version %d", VERSION);
    uint32_t plen = ms_load_be32(in + 45);
    if (plen > MS_PEER_PAYLOAD_MAX || (size_t)plen + MS_PEER_MSG_OVERHEAD != in_len)
        return ms_detail_fail(MS_ERR_BAD_LENGTH, detail, detail_cap,
                              "server message says its payload has %lu octets, but %zu "
                              "arrived", (unsigned long)plen,
                              in_len >= MS_PEER_MSG_OVERHEAD ? in_len - MS_PEER_MSG_OVERHEAD : 0);
    ms_peer_msg_hdr got;
    got.sender = in[5];
    got.recipient = in[6];
    got.kind = (uint16_t)(in[7] << 8 | in[8]);
    got.round = ms_load_be32(in + 9);
    memcpy(got.session, in + 13, MS_PEER_SESSION_BYTES);
    if (got.sender == 0 || got.sender > keys->n)
        return ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, detail_cap,
                              "server message names sender %u, not a server of 1..%u",
                              (unsigned)got.sender, keys->n);
    if (got.kind > MS_PEER_KIND_MAX)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "server message of kind %u: kinds go up to %d",
                              (unsigned)got.kind, MS_PEER_KIND_MAX);
    /* The signature first: nothing about a forged message is reported as if it mattered. */
    if (!verify(keys->pub[got.sender - 1], in, MS_PEER_HEADER_BYTES + plen,
                in + MS_PEER_HEADER_BYTES + plen))
        return ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, detail_cap,
                              "server message not signed by the pinned key of server %u",
                              (unsigned)got.sender);
    if (CRYPTO_memcmp(got.session, session, MS_PEER_SESSION_BYTES) != 0)
        return ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, detail_cap,
                              "server message from server %u belongs to another session",
                              (unsigned)got.sender);
    if (got.recipient != MS_PEER_TO_ALL && got.recipient != me)
        return ms_detail_fail(MS_ERR_PEER_MESSAGE, detail, detail_cap,
                              "server message from server %u is addressed to server %u",
                              (unsigned)got.sender, (unsigned)got.recipient);
    if (guard != NULL) {
        unsigned i = got.sender - 1u;
        uint64_t bit = (uint64_t)1 << got.kind;
        if (guard->seen[i] && got.round < guard->round[i])
            return ms_detail_fail(MS_ERR_PEER_REPLAY, detail, detail_cap,
                                  "server %u sent a message of round %lu after round %lu",
                                  (unsigned)got.sender, (unsigned long)got.round,
                                  (unsigned long)guard->round[i]);
        if (guard->seen[i] && got.round == guard->round[i] && (guard->kinds[i] & bit) != 0)
            return ms_detail_fail(MS_ERR_PEER_REPLAY, detail, detail_cap,
                                  "server %u already sent its message of kind %u in round %lu",
                                  (unsigned)got.sender, (unsigned)got.kind,
                                  (unsigned long)got.round);
        if (!guard->seen[i] || got.round > guard->round[i]) {
            guard->seen[i] = true;
            guard->round[i] = got.round;
            guard->kinds[i] = 0;
        }
        guard->kinds[i] |= bit;
    }
    *h = got;
    *payload = in + MS_PEER_HEADER_BYTES;
    *payload_len = plen;
    return MS_OK;
}

/* ---- key files ------------------------------------------------------------------------------------ */

ms_err ms_peer_key_read(const char *path, uint8_t seed[MS_PEER_KEY_BYTES], char *detail,
                        size_t detail_cap)
{
    return ms_file_read_hex_key(path, true, seed, MS_PEER_KEY_BYTES, "key file", detail,
                                detail_cap);
}

ms_err ms_peer_pub_read(const char *path, uint8_t pub[MS_PEER_KEY_BYTES], char *detail,
                        size_t detail_cap)
{
    return ms_file_read_hex_key(path, false, pub, MS_PEER_KEY_BYTES, "key file", detail,
                                detail_cap);
}

ms_err ms_peer_file_create(const char *path, const void *data, size_t len, bool secret,
                           char *detail, size_t detail_cap)
{
    if (path == NULL || (data == NULL && len != 0))
        return MS_ERR_ARG;
    return ms_file_write_atomic(path, data, len, secret ? 0600 : 0644, MS_FILE_NO_REPLACE,
                                detail, detail_cap);
}

ms_err ms_peer_key_write(const char *path, const uint8_t key[MS_PEER_KEY_BYTES], bool secret,
                         char *detail, size_t detail_cap)
{
    if (path == NULL || key == NULL)
        return MS_ERR_ARG;
    char text[2 * MS_PEER_KEY_BYTES + 1];
    ms_hex_encode_lower(text, key, MS_PEER_KEY_BYTES); /* ends in a NUL, replaced: */
    text[2 * MS_PEER_KEY_BYTES] = '\n';
    ms_err e = ms_peer_file_create(path, text, sizeof text, secret, detail, detail_cap);
    OPENSSL_cleanse(text, sizeof text);
    return e;
}
