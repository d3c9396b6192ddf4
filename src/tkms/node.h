/*
 * One server of a threshold KMS as an operator runs it (src/tkms/node.c): the layer above
 * the protocol objects (src/threshold) and the transport (src/net/peer*, hpke) that the
 * `mikeysakke kms threshold` commands call.
 *
 * A server's directory D holds:
 *   index              its index 1..n, one decimal line
 *   sign.key sign.pub  its Ed25519 message key (src/net/peer_msg.h; the seed mode 0600)
 *   hpke.key hpke.pub  its X25519 HPKE key (same hex line format; the private one 0600)
 *   tls.crt tls.key    its self-signed TLS certificate and key (key mode 0600)
 *   peers.txt          after init: the table the ceremony ran with (src/net/peer_table.h)
 *   secrets.sealed     after init: z_i and KSAK_i, sealed as the single-server KMS seals
 *                      its master secrets (src/kms/seal.h; generation 0 holds z_i, [z_i]P,
 *                      KSAK_i, [KSAK_i]G)
 *   public.txt         after init: the public result (format below), the same at every
 *                      server but for the "index" line
 *
 * Rounds over the network: every protocol round r, server i sends each other server j one
 * message, POST /tkms/msg over the pinned mutual TLS of src/net/peer.h, signed with
 * ms_peer_msg (kind = the protocol, round = r, session = a hash of the peers table and the
 * protocol's inputs, so servers with different tables cannot talk). Its payload is
 *   u32 broadcast length | broadcast blob | u32 private length | HPKE-sealed private blob
 * (the private blob, when the round has one, sealed to j's HPKE key with info naming the
 * session, sender, recipient and round). A round ends when every other server's message
 * arrived; at the deadline the error names the servers still missing. After the
 * protocol's last round a confirmation round compares every server's hash of the whole
 * broadcast transcript and of the public result: a server that sent different broadcasts
 * to different servers, or reached another result, is named and nobody keeps a result.
 *
 * public.txt: lines "key value", lowercase hex:
 *   mikeysakke-tkms-public 1 / n N / t T / index I / qual HEX8 / Z HEX / kpak HEX /
 *   Zj J HEX (each j) / kpakj J HEX (each j) / transcript HEX64
 */
#ifndef MS_TKMS_NODE_H
#define MS_TKMS_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/threshold.h"

#define MS_TKMS_LINE_MAX 512 /* one "server I URL sign= hpke= tls=" line */
#define MS_TKMS_PATH_MAX 4096

/* Makes this server's message key, HPKE key and TLS certificate in dir (created if absent,
 * mode 0700; MS_ERR_EXISTS if it already holds keys) and writes its peers-table line
 * ("server I URL sign=... hpke=... tls=...\n") into line. url: "https://HOST:PORT". */
ms_err ms_tkms_node_keygen(const char *dir, unsigned index, const char *url, char *line,
                           size_t line_cap, char *detail, size_t detail_cap);

typedef struct ms_tkms_init_params {
    const char *dir;
    const char *peers_file;
    const uint8_t *passphrase; /* seals z_i and KSAK_i */
    size_t passphrase_len;
    unsigned scrypt_log2_n;    /* 0: the seal's default */
    unsigned timeout_ms;       /* per round; 0: 120 s */
} ms_tkms_init_params;

/* The key-generation ceremony at this server: starts its peer server on its URL's port,
 * runs the rounds with every other server of the table, seals its shares and writes
 * peers.txt, secrets.sealed and public.txt to dir. MS_ERR_EXISTS if dir already holds
 * a result. MS_ERR_THRESHOLD_ROUND names servers missing or disagreeing; MS_ERR_TLS,
 * MS_ERR_UNAUTHORISED, MS_ERR_HTTP name the server a connection failed with. */
ms_err ms_tkms_node_init(const ms_tkms_init_params *p, ms_tkms_public *pub,
                         uint8_t transcript[32], char *detail, size_t detail_cap);

typedef struct ms_tkms_batch_params {
    const char *dir;
    const char *peers_file;
    const char *period;        /* the key period, e.g. "2026-12" (letters, digits, '-') */
    const char *const *users;  /* the users' URIs; identifier = period NUL URI NUL */
    size_t count;
    const uint8_t *passphrase; /* of secrets.sealed */
    size_t passphrase_len;
    unsigned timeout_ms;       /* per round; 0: 600 s */
} ms_tkms_batch_params;

/* The monthly batch at this server, run with every server of the table at the same time
 * (all n live: choosing a subset of 2t+1 is not offered yet). Writes batch-P.sealed (per
 * identity u_i and SSK_i, AES-256-GCM under the store key of secrets.sealed, the period
 * as aad) and batch-P.records (per identity the public record, ms_tkms_record_encode),
 * entries "u16 id length | id | ...". digest: SHA-256 of the records, the same at every
 * server. */
ms_err ms_tkms_node_batch(const ms_tkms_batch_params *p, uint8_t digest[32], char *detail,
                          size_t detail_cap);

/* A record's wire form: t (1) | d (8) | sid | R0 | PVT | (uc_k | vc_k) for k = 0..t. */
size_t ms_tkms_record_encode(const ms_tkms_record *r, uint8_t *out);
ms_err ms_tkms_record_decode(ms_tkms_record *r, const uint8_t *in, size_t len, size_t *used);

/* Issuance: this server's share of uri for period (from batch-P.sealed, the store key
 * unsealed with pass) HPKE-sealed to the device's X25519 key (info names the slot id and
 * the server, the record is the aad), with the public record, as one ms_peer_msg signed by
 * this server (kind 3, session = the slot id sid, recipient 0), written to out_path. */
ms_err ms_tkms_node_share(const char *dir, const uint8_t *pass, size_t pass_len,
                          const char *period, const char *uri,
                          const uint8_t device_pub[32], const char *out_path, char *detail,
                          size_t detail_cap);

/* A share file's kind (ms_peer_msg) and the HPKE info of its envelope: "mikeysakke tkms
 * share" NUL || sid || index (at most 64 octets). */
#define MS_TKMS_KIND_SHARE 3
size_t ms_tkms_share_info(uint8_t *info, const uint8_t sid[32], unsigned index);

/* The device: opens each share file (signed by the server it names, for this identity's
 * slot, sealed to device_sk), checks they carry one record and combines them with
 * ms_tkms_combine (which validates RSK and SSK). MS_ERR_THRESHOLD_SHARE with *cheater the
 * index of the server whose share fails (by signature, sealing, record or the
 * commitments). */
ms_err ms_tkms_device_combine(const char *peers_file, const char *public_file,
                              const uint8_t device_sk[32], const char *period, const char *uri,
                              const char *const *files, size_t count,
                              uint8_t rsk[MS_SAKKE_POINT_BYTES],
                              uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                              uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater,
                              char *detail, size_t detail_cap);

/* public.txt of a server's directory (MS_ERR_IO, MS_ERR_CONFIG naming the line). */
ms_err ms_tkms_public_read(const char *path, ms_tkms_public *pub, unsigned *index,
                           uint8_t transcript[32], char *detail, size_t detail_cap);
/* A short fingerprint of Z and KPAK (first 8 octets of SHA-256(Z || KPAK), 16 hex). */
void ms_tkms_fingerprint(const ms_tkms_public *pub, char out[17]);

#endif
