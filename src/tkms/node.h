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
 *   batch-P.sealed     after the batch of period P (live servers only): this server's
 *   batch-P.records    shares, the public records, and the signed Merkle root that
 *   batch-P.root       activates the batch (ms_tkms_node_batch, src/tkms/root.h)
 *
 * Rounds over the network: every protocol round r, server i sends each other server j of
 * the run (all n for key generation, the live set for a batch) one
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
 * and, after a share refresh, "epoch E" (the transcript is then the last refresh's).
 */
#ifndef MS_TKMS_NODE_H
#define MS_TKMS_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/threshold.h"
#include "kms/seal.h"
#include "net/hpke.h"
#include "net/peer_msg.h"
#include "net/peer_table.h"

#define MS_TKMS_LINE_MAX 512 /* one "server I URL sign= hpke= tls=" line */
#define MS_TKMS_PATH_MAX 4096
/* The longest record encoding (ms_tkms_record_encode) */
#define MS_TKMS_RECORD_MAX (1 + 8 + 32 + MS_SAKKE_POINT_BYTES + MS_ECCSI_POINT_BYTES + \
                            (MS_TKMS_MAX_T + 1) * (MS_SAKKE_POINT_BYTES + MS_ECCSI_POINT_BYTES))

/* Makes this server's message key, HPKE key and TLS certificate in dir (created if absent,
 * mode 0700; MS_ERR_EXISTS if it already holds keys) and writes its peers-table line
 * ("server I URL sign=... hpke=... tls=...\n") into line. url: "https://HOST:PORT". */
ms_err ms_tkms_node_keygen(const char *dir, unsigned index, const char *url, char *line,
                           size_t line_cap, char *detail, size_t detail_cap);

typedef struct ms_tkms_init_params {
    const char *dir;
    const char *peers_file;
    const uint8_t *passphrase; /* seals z_i and KSAK_i (when seal is NULL) */
    size_t passphrase_len;
    unsigned scrypt_log2_n;    /* 0: the seal's default */
    unsigned timeout_ms;       /* per round; 0: 120 s */
    /* Or any seal of the single-server KMS (src/kms/seal.h): custodian shares (the n
     * encoded shares go to shares_out / share_lens_out, as ms_seal_write gives them) or
     * a key in a PKCS#11 token. */
    const ms_seal_params *seal;
    uint8_t (*shares_out)[MS_KMS_SHARE_BYTES];
    size_t *share_lens_out;
} ms_tkms_init_params;

/* Every function below that opens secrets.sealed takes its "unlock" material as
 * (pass, pass_len), by the file's seal method: the passphrase; the PKCS#11 PIN; or k
 * custodian shares, each MS_KMS_SHARE_LEN octets, one after another. */

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
    uint32_t live;             /* the servers taking part (bit i-1: server i); 0: all n */
} ms_tkms_batch_params;

/* The monthly batch at this server, run at the same time by every server of the live set:
 * at least max(2t + 1, ceil((n + t + 1) / 2)) servers of the table, this one among them
 * (MS_ERR_ARG otherwise, before any network). The session id binds the live set; only
 * live servers are sent to or heard from, and servers outside it get no share of the
 * period's slots. After the rounds (B1-B4) and the confirmation round, each live server
 * signs the Merkle root of the records (B5, src/tkms/root.h) and the signatures are
 * exchanged in one more round; a server whose signature is missing or of another root
 * fails the run. Writes batch-P.sealed (per identity u_i and SSK_i, AES-256-GCM under the
 * store key of secrets.sealed, the period as aad), batch-P.records (per identity the
 * public record, ms_tkms_record_encode), entries "u16 id length | id | ...", and last
 * batch-P.root (the root, the count, the live set, every live server's signature), which
 * activates the batch. digest: SHA-256 of the records, the same at every server. */
ms_err ms_tkms_node_batch(const ms_tkms_batch_params *p, uint8_t digest[32], char *detail,
                          size_t detail_cap);

/* The shares of batch-P.sealed (after its header line) under the store key:
 * AES-256-GCM, nonce (12) || ciphertext || tag (16), the period as aad. Sealing (enc 1)
 * writes in_len + 28 octets; opening writes in_len - 28, or fails with MS_ERR_DECRYPT
 * (out wiped). */
ms_err ms_tkms_batch_crypt(int enc, const uint8_t key[32], const char *period,
                          const uint8_t *in, size_t in_len, uint8_t *out, size_t *out_len);

/* A key period's name: 1 to 32 of A-Z a-z 0-9 '-' (it names files: batch-P.*). */
int ms_tkms_period_ok(const char *p);

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

/* ---- a server opened for serving (issuance, audit) ------------------------------------ */

/* A server's directory after init, its keys read and checked against peers.txt,
 * public.txt read and secrets.sealed unsealed with pass (the store key is kept; z_i and
 * KSAK_i are not used after opening). Errors as the pieces: MS_ERR_IO, MS_ERR_CONFIG,
 * the seal's errors with detail naming the file. */
typedef struct ms_tkms_service ms_tkms_service;
ms_err ms_tkms_service_open(ms_tkms_service **out, const char *dir, const uint8_t *pass,
                            size_t pass_len, char *detail, size_t detail_cap);
/* Wipes and frees; NULL is fine. */
void ms_tkms_service_close(ms_tkms_service *s);
unsigned ms_tkms_service_index(const ms_tkms_service *s);
const char *ms_tkms_service_dir(const ms_tkms_service *s);
const ms_peer_table *ms_tkms_service_peers(const ms_tkms_service *s);
const ms_tkms_public *ms_tkms_service_public(const ms_tkms_service *s);
/* Signs a message as this server (h->sender is set to its index). */
ms_err ms_tkms_service_sign(const ms_tkms_service *s, const ms_peer_msg_hdr *h,
                            const uint8_t *payload, size_t payload_len, uint8_t *out,
                            size_t cap, size_t *out_len);
/* This server's share of uri's slot for period (secret: wipe it) and the slot's public
 * record in its wire form (at most MS_TKMS_RECORD_MAX octets). A period's batch is read
 * at its first call and kept open (src/tkms/batch_cache.h; read again when its files
 * change); safe from several threads. MS_ERR_THRESHOLD_INACTIVE: this server did not
 * take part in the batch (batch-P.root, copied from a live server, names the live set),
 * or the batch is not active: its root file is missing, has fewer than
 * ceil((n + t + 1) / 2) valid signatures of the table's servers ("K of the M signatures
 * it needs"), or batch-P.records is not the tree whose root was signed. MS_ERR_IO no
 * batch for the period, MS_ERR_SEALED_FILE it does not open, MS_ERR_IDENTITY uri has no
 * slot in it. */
ms_err ms_tkms_service_slot(const ms_tkms_service *s, const char *period, const char *uri,
                            ms_tkms_share *share, uint8_t *record, size_t record_cap,
                            size_t *record_len, char *detail, size_t detail_cap);
/* The share message for a device (the content of ms_tkms_node_share's file), malloc'd:
 * an ms_peer_msg signed by this server, kind 3, round 2 (the payload form), session = the
 * slot id sid, recipient 0, whose payload is (integers big-endian)
 *   u16 record length | record (ms_tkms_record_encode) |
 *   u64 leaf index | u64 leaf count | u8 k | k proof hashes (32 each, RFC 9162 inclusion
 *   proof of the record's leaf in the batch's tree) |
 *   u32 live set | u8 m | m times (u8 server | 64 its Ed25519 signature of the root) |
 *   HPKE(device key, u_j || SSK_j)
 * sealed with info "mikeysakke tkms share" || NUL || sid || server index and aad = every
 * octet of the payload before it. The root itself is not carried: the device computes it
 * from the record and the proof, and checks the signatures over it (src/tkms/root.h). */
ms_err ms_tkms_service_share_msg(const ms_tkms_service *s, const char *period, const char *uri,
                                 const uint8_t device_pub[MS_HPKE_PK_BYTES], uint8_t **msg,
                                 size_t *msg_len, char *detail, size_t detail_cap);
/* A share file's kind (ms_peer_msg) and the HPKE info of its envelope: "mikeysakke tkms
 * share" NUL || sid || index (at most 64 octets). */
#define MS_TKMS_KIND_SHARE 3
size_t ms_tkms_share_info(uint8_t *info, const uint8_t sid[32], unsigned index);
/* The length of a share payload's public part (record, proof, live set, signatures: the
 * HPKE envelope's aad), 0 if it is malformed. */
size_t ms_tkms_share_public_len(const uint8_t *payload, size_t len);

/* The device: opens each share file (signed by the server it names, for this identity's
 * slot, sealed to device_sk), checks its record is in a batch root signed by at least
 * ceil((n + t + 1) / 2) servers of the table, with the sender in the root's live set,
 * checks the shares carry one record and combines them with ms_tkms_combine (which
 * validates RSK and SSK). MS_ERR_THRESHOLD_SHARE with *cheater the index of the server
 * whose share fails (by signature, root, sealing, record or the commitments). */
ms_err ms_tkms_device_combine(const char *peers_file, const char *public_file,
                              const uint8_t device_sk[32], const char *period, const char *uri,
                              const char *const *files, size_t count,
                              uint8_t rsk[MS_SAKKE_POINT_BYTES],
                              uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                              uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater,
                              char *detail, size_t detail_cap);

/* The same with the share messages in memory (as received over the network): names[i]
 * names message i in detail (e.g. "the answer of server 2"). */
ms_err ms_tkms_device_combine_msgs(const char *peers_file, const char *public_file,
                                   const uint8_t device_sk[32], const char *period,
                                   const char *uri, const uint8_t *const *msgs,
                                   const size_t *lens, const char *const *names, size_t count,
                                   uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                   uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                   uint8_t pvt[MS_ECCSI_POINT_BYTES], unsigned *cheater,
                                   char *detail, size_t detail_cap);

/* public.txt of a server's directory (MS_ERR_IO, MS_ERR_CONFIG naming the line). */
ms_err ms_tkms_public_read(const char *path, ms_tkms_public *pub, unsigned *index,
                           uint8_t transcript[32], char *detail, size_t detail_cap);
/* A short fingerprint of Z and KPAK (first 8 octets of SHA-256(Z || KPAK), 16 hex). */
void ms_tkms_fingerprint(const ms_tkms_public *pub, char out[17]);

/* ---- proactive share refresh ------------------------------------------------------------ */

typedef struct ms_tkms_refresh_params {
    const char *dir;
    const char *peers_file;
    const uint8_t *unlock;     /* of secrets.sealed, by its seal (see above) */
    size_t unlock_len;
    unsigned timeout_ms;       /* per round; 0: 120 s */
    /* a server sealed with custodian shares: its new shares go here as share-1.key ...
     * share-N.key (the directory is created; none of them may exist yet) */
    const char *share_out_dir;
} ms_tkms_refresh_params;

/* The share refresh at this server, run with every server of the table at the same time
 * (src/threshold refresh protocol, then the confirmation round). Every server's shares of
 * z and KSAK change, Z and KPAK do not. The new shares are sealed as the old ones were
 * (same passphrase and scrypt cost; same PKCS#11 token and key; custodian shares: new
 * ones, k of n as before, into share_out_dir); public.txt gets the new Zj and kpakj, the
 * refresh's transcript and "epoch E" (*epoch: the new E, 1 after the first refresh).
 * Batch files stay usable (the store key is kept); the old public.txt is kept as
 * public-eE.txt (E the old epoch) for naming a cheater in an older batch.
 *
 * Crash safety: secrets.sealed.new and public.txt.new are written before the confirmation
 * round; after it, the new custodian shares, then the mark refresh.commit, then the two
 * renames over secrets.sealed and public.txt, then the mark is removed. A server that
 * stops before the mark keeps its old pair; after it, ms_tkms_node_recover puts the new
 * pair in place. Errors as ms_tkms_node_init, and the seal's. */
ms_err ms_tkms_node_refresh(const ms_tkms_refresh_params *p, ms_tkms_public *pub,
                            unsigned *epoch, char *detail, size_t detail_cap);

/* Finishes (mark present: the new pair is renamed into place, *rolled = 1) or undoes (no
 * mark: the new files are removed, *rolled = -1) a refresh interrupted in dir; *rolled = 0
 * when there was none (rolled may be NULL). Every command that opens a server's
 * secrets.sealed calls it first. */
ms_err ms_tkms_node_recover(const char *dir, int *rolled, char *detail, size_t detail_cap);

/* The "epoch" of a public.txt (0: no refresh yet). MS_ERR_IO unreadable. */
ms_err ms_tkms_public_epoch(const char *path, unsigned *epoch);

#endif
