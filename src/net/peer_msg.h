/*
 * Signed messages between the servers of a threshold KMS, and from a server to a device
 * (src/net/peer_msg.c). The content is opaque (the protocol objects of src/threshold);
 * this layer says who sent it, to whom, for which protocol session, kind and round, and
 * that nobody altered it, against a pinned table of the n servers' Ed25519 keys.
 *
 * Wire form (all integers big-endian):
 *   "MSTM" | version 1 | sender (1..n) | recipient (0 = a device or every server, else
 *   1..n) | kind (2) | round (4) | session id (32) | payload length (4) | payload |
 *   Ed25519 signature (64) over "mikeysakke threshold message" || 0x00 || everything
 *   before the signature.
 * The context string keeps these signatures apart from every other signature a server key
 * could make. Server indices are the Shamir indices of the protocol (1..n).
 *
 * Key files are those of the KMS roles (src/kms/roles.h): one lowercase hex line, the
 * 32-octet private seed (mode 0600, refused when others may read it) or the 32-octet
 * public key.
 */
#ifndef MS_NET_PEER_MSG_H
#define MS_NET_PEER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"

#define MS_PEER_MAX 32            /* servers in a threshold KMS */
#define MS_PEER_KEY_BYTES 32      /* Ed25519 seed or public key */
#define MS_PEER_SIG_BYTES 64
#define MS_PEER_SESSION_BYTES 32
#define MS_PEER_HEADER_BYTES 49
#define MS_PEER_MSG_OVERHEAD (MS_PEER_HEADER_BYTES + MS_PEER_SIG_BYTES)
#define MS_PEER_PAYLOAD_MAX (64u * 1024u * 1024u)
#define MS_PEER_TO_ALL 0          /* recipient: every server, or a device */
#define MS_PEER_KIND_MAX 63       /* kinds 0..63 (the replay guard keeps one bit each) */
#define MS_PEER_SIGN_CONTEXT "mikeysakke threshold message"

/* The pinned table: server i (1..n) signs with pub[i - 1]. */
typedef struct ms_peer_keys {
    unsigned n;
    uint8_t pub[MS_PEER_MAX][MS_PEER_KEY_BYTES];
} ms_peer_keys;

typedef struct ms_peer_msg_hdr {
    uint8_t sender;    /* 1..n */
    uint8_t recipient; /* MS_PEER_TO_ALL or 1..n */
    uint16_t kind;     /* 0..MS_PEER_KIND_MAX: the protocol's message type */
    uint32_t round;    /* the protocol's round; never goes back within a session */
    uint8_t session[MS_PEER_SESSION_BYTES];
} ms_peer_msg_hdr;

/* Remembers, for one session, what each sender has already delivered: a message of a
 * round before the sender's latest, or a second (round, kind) from it, is a replay. */
typedef struct ms_peer_guard {
    uint8_t session[MS_PEER_SESSION_BYTES];
    uint32_t round[MS_PEER_MAX];  /* latest round seen from each sender */
    uint64_t kinds[MS_PEER_MAX];  /* kinds seen in that round */
    bool seen[MS_PEER_MAX];
} ms_peer_guard;

/* A fresh signing key pair (the seed is secret: wipe it). rng NULL = OpenSSL's. */
ms_err ms_peer_keygen(uint8_t seed[MS_PEER_KEY_BYTES], uint8_t pub[MS_PEER_KEY_BYTES],
                      const ms_rng *rng);
ms_err ms_peer_public(const uint8_t seed[MS_PEER_KEY_BYTES], uint8_t pub[MS_PEER_KEY_BYTES]);

/* Signs h and payload into out (payload_len + MS_PEER_MSG_OVERHEAD octets). MS_ERR_ARG for
 * a sender of 0, a kind above MS_PEER_KIND_MAX or a payload over MS_PEER_PAYLOAD_MAX;
 * MS_ERR_BUFFER_TOO_SMALL. */
ms_err ms_peer_msg_sign(const uint8_t seed[MS_PEER_KEY_BYTES], const ms_peer_msg_hdr *h,
                        const uint8_t *payload, size_t payload_len, uint8_t *out, size_t cap,
                        size_t *out_len);

/* Checks a message received by `me` (0 for a device, else this server's index) in
 * `session`: well formed (MS_ERR_BAD_LENGTH, MS_ERR_BAD_ENCODING), from a server of the
 * table, for this session and for `me` or everyone, signed by that server's pinned key
 * (each MS_ERR_PEER_MESSAGE), and, when guard is not NULL (it must be of the same session),
 * not a replay (MS_ERR_PEER_REPLAY; the guard records the message only once it passed
 * everything). On MS_OK, h is filled and *payload points into `in`. detail names the
 * cause. */
ms_err ms_peer_msg_open(const ms_peer_keys *keys, const uint8_t session[MS_PEER_SESSION_BYTES],
                        uint8_t me, ms_peer_guard *guard, const uint8_t *in, size_t in_len,
                        ms_peer_msg_hdr *h, const uint8_t **payload, size_t *payload_len,
                        char *detail, size_t detail_cap);

/* A guard for one session, nothing seen. */
void ms_peer_guard_init(ms_peer_guard *g, const uint8_t session[MS_PEER_SESSION_BYTES]);

/* Key files (the KMS role key format). MS_ERR_IO unreadable, MS_ERR_KEYFILE_MODE a private
 * key file open to group or others or not a regular file, MS_ERR_ARG not one hex line of
 * 32 octets. */
ms_err ms_peer_key_read(const char *path, uint8_t seed[MS_PEER_KEY_BYTES], char *detail,
                        size_t detail_cap);
ms_err ms_peer_pub_read(const char *path, uint8_t pub[MS_PEER_KEY_BYTES], char *detail,
                        size_t detail_cap);
/* Writes a key file atomically (temporary file, fsync, rename); a private one with mode
 * 0600. MS_ERR_EXISTS if path exists. */
ms_err ms_peer_key_write(const char *path, const uint8_t key[MS_PEER_KEY_BYTES], bool secret,
                         char *detail, size_t detail_cap);
/* Creates path with len octets of data the same way (mode 0600 when secret, else 0644). */
ms_err ms_peer_file_create(const char *path, const void *data, size_t len, bool secret,
                           char *detail, size_t detail_cap);

#endif
