/*
 * mikeysakke MIKEY layer: the MIKEY-SAKKE I_MESSAGE of RFC 6509 on RFC 3830 MIKEY
 * (with RFC 6043 and RFC 4563), its 3GPP TS 33.180 profile, identifiers and key periods,
 * key derivation and the SDP a=key-mgmt attribute (RFC 4567).
 *
 * Conventions are those of crypto.h: context first, then outputs, then inputs; MS_OK or
 * an ms_err naming what was wrong. Functions that can fail on received data also take
 * an optional `ms_mikey_diag *` (may be NULL) that says where and why.
 *
 * Sections:
 *   1. constants (IANA values)
 *   2. codec: the payload model, parse, encode
 *   3. identities and key periods
 *   4. key derivation: MIKEY PRF, TS 33.220 KDF, GUK-ID
 *   5. SDP a=key-mgmt
 *   6. replay cache
 *   7. initiator and responder
 *   8. inspect: a readable tree and JSON
 */
#ifndef MIKEYSAKKE_MIKEY_H
#define MIKEYSAKKE_MIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== 1. constants ===================================================================== */

#define MS_MIKEY_VERSION 1

/* HDR data type */
#define MS_MIKEY_DT_ERROR 6
#define MS_MIKEY_DT_SAKKE 26

/* Next-payload values (payload types) */
enum {
    MS_MIKEY_PT_LAST = 0,
    MS_MIKEY_PT_KEMAC = 1,
    MS_MIKEY_PT_PKE = 2,
    MS_MIKEY_PT_DH = 3,
    MS_MIKEY_PT_SIGN = 4,
    MS_MIKEY_PT_T = 5,
    MS_MIKEY_PT_ID = 6,
    MS_MIKEY_PT_CERT = 7,
    MS_MIKEY_PT_CHASH = 8,
    MS_MIKEY_PT_V = 9,
    MS_MIKEY_PT_SP = 10,
    MS_MIKEY_PT_RAND = 11,
    MS_MIKEY_PT_ERR = 12,
    MS_MIKEY_PT_IDR = 14,
    MS_MIKEY_PT_KEY_DATA = 20,
    MS_MIKEY_PT_GENERAL_EXT = 21,
    MS_MIKEY_PT_SAKKE = 26,
    MS_MIKEY_PT_HDR = 255 /* our own marker for diagnostics; never on the wire */
};

/* HDR PRF function */
#define MS_MIKEY_PRF_MIKEY1 0      /* HMAC-SHA-1 (RFC 3830) */
#define MS_MIKEY_PRF_HMAC_SHA256 1 /* RFC 6043 */

/* CS ID map types */
#define MS_MIKEY_MAP_SRTP_ID 0
#define MS_MIKEY_MAP_EMPTY 1
#define MS_MIKEY_MAP_GENERIC_ID 2

/* T payload TS types */
#define MS_MIKEY_TS_NTP_UTC 0
#define MS_MIKEY_TS_NTP 1
#define MS_MIKEY_TS_COUNTER 2
#define MS_MIKEY_TS_NTP_UTC_32 3

/* ID types (ID, IDR) and ID roles (IDR) */
#define MS_MIKEY_IDTYPE_NAI 0
#define MS_MIKEY_IDTYPE_URI 1
#define MS_MIKEY_IDTYPE_BYTES 2
#define MS_MIKEY_ROLE_INITIATOR 1    /* IDRi */
#define MS_MIKEY_ROLE_RESPONDER 2    /* IDRr */
#define MS_MIKEY_ROLE_KMS 3          /* IDRkms */
#define MS_MIKEY_ROLE_PSK 4
#define MS_MIKEY_ROLE_APP 5
#define MS_MIKEY_ROLE_KMS_INITIATOR 6 /* IDRkmsi (RFC 6509) */
#define MS_MIKEY_ROLE_KMS_RESPONDER 7 /* IDRkmsr (RFC 6509) */
#define MS_MIKEY_ROLE_UID_INITIATOR 8 /* IDRuidi (TS 33.180 E.7) */
#define MS_MIKEY_ROLE_UID_RESPONDER 9 /* IDRuidr (TS 33.180 E.7) */

/* SIGN S types */
#define MS_MIKEY_STYPE_RSA_PKCS1 0
#define MS_MIKEY_STYPE_RSA_PSS 1
#define MS_MIKEY_STYPE_ECCSI 2

/* SAKKE payload */
#define MS_MIKEY_SAKKE_PARAMS_SET1 1
#define MS_MIKEY_ID_SCHEME_TEL_MONTHLY 1 /* RFC 6509 */
#define MS_MIKEY_ID_SCHEME_HASHED_UID 2  /* TS 33.180 F.2.1 (value 2 as deployed) */

/* General extension types */
#define MS_MIKEY_EXT_VENDOR_ID 0
#define MS_MIKEY_EXT_SDP_IDS 1
#define MS_MIKEY_EXT_KEY_ID 3
#define MS_MIKEY_EXT_CSB_ID 4
#define MS_MIKEY_EXT_SAKKE_TO_SELF 6 /* TS 33.180 E.5 */
#define MS_MIKEY_EXT_KEY_PARAMS 7    /* TS 33.180 E.6 */

/* SP protocol types */
#define MS_MIKEY_PROT_SRTP 0
#define MS_MIKEY_PROT_TESLA 1

/* ERR payload error numbers (RFC 3830 6.12, RFC 4738, RFC 6043) */
#define MS_MIKEY_ERRNO_AUTH_FAILURE 0
#define MS_MIKEY_ERRNO_INVALID_TS 1
#define MS_MIKEY_ERRNO_INVALID_ID 7
#define MS_MIKEY_ERRNO_INVALID_SPPAR 10
#define MS_MIKEY_ERRNO_UNSPECIFIED 12
#define MS_MIKEY_ERRNO_UNSUPPORTED_MSG 13

/* TS 33.180 purpose tags: the 4 most significant bits of a 32-bit key identifier */
#define MS_MIKEY_PURPOSE_GMK 0
#define MS_MIKEY_PURPOSE_PCK 1
#define MS_MIKEY_PURPOSE_CSK 2

/* Limits. A parsed message larger than these is refused with MS_ERR_MIKEY_UNSUPPORTED. */
#define MS_MIKEY_MAX_MESSAGE 8192 /* octets of one binary MIKEY message */
#define MS_MIKEY_MAX_PAYLOADS 32  /* payloads after HDR */
#define MS_MIKEY_MAX_CS 16        /* crypto sessions in the CS ID map */
#define MS_MIKEY_MAX_POLICIES 8   /* policy numbers of one GENERIC-ID crypto session */

/* ==== 2. codec ========================================================================= */

/* A view into a buffer the caller owns (the parsed message, or data to encode). */
typedef struct ms_mikey_span {
    const uint8_t *data;
    size_t len;
} ms_mikey_span;

/* Where a received message or attribute was found wrong. `payload` is an MS_MIKEY_PT_*
 * value (MS_MIKEY_PT_HDR for the header), `offset` the octet offset in the message of
 * the field at fault, `detail` one English sentence ("SAKKE data length 300 runs past
 * the end of the message (273 octets left)"). */
typedef struct ms_mikey_diag {
    int payload;
    size_t offset;
    char detail[160];
} ms_mikey_diag;

/* One crypto session of the HDR's CS ID map. */
typedef struct ms_mikey_cs {
    uint8_t cs_id;     /* SRTP-ID: i (1-based position); GENERIC-ID: the CS ID field */
    uint8_t prot_type; /* GENERIC-ID: MS_MIKEY_PROT_*; SRTP-ID: always SRTP */
    uint8_t n_policies; /* SRTP-ID: 1 */
    uint8_t policies[MS_MIKEY_MAX_POLICIES];
    uint32_t ssrc;
    bool has_roc;      /* SRTP-ID: always; GENERIC-ID: the S bit (ROC and SEQ present) */
    uint32_t roc;
    uint16_t seq;      /* GENERIC-ID with S = 1 only */
    bool has_session_data; /* GENERIC-ID: session data length > 0 */
    ms_mikey_span spi; /* GENERIC-ID SPI (may be empty) */
} ms_mikey_cs;

typedef struct ms_mikey_hdr {
    uint8_t version;
    uint8_t data_type;
    bool v;
    uint8_t prf;
    uint32_t csb_id;
    uint8_t n_cs;
    uint8_t map_type;
    ms_mikey_cs cs[MS_MIKEY_MAX_CS];
} ms_mikey_hdr;

/* One payload after HDR. When parsed, offset/len locate the whole payload (including
 * its next-payload octet) in the message; spans point into the message. When encoding,
 * offset/len are ignored and the next-payload octets are filled in by the encoder. */
typedef struct ms_mikey_payload {
    uint8_t type; /* MS_MIKEY_PT_* */
    size_t offset;
    size_t len;
    union {
        struct { uint8_t ts_type; uint64_t value; } t; /* NTP types: 32.32 fixed point;
                                   COUNTER: the 32-bit counter; NTP_UTC_32: seconds << 32 */
        ms_mikey_span rand;
        struct { uint8_t role; uint8_t id_type; ms_mikey_span id; } idr; /* IDR */
        struct { uint8_t id_type; ms_mikey_span id; } id;                /* ID, CERT */
        struct { uint8_t policy_no; uint8_t prot_type; ms_mikey_span params; } sp;
        struct { uint8_t params; uint8_t id_scheme; ms_mikey_span data; } sakke;
        struct { uint8_t s_type; ms_mikey_span sig; } sign;
        struct { uint8_t type; ms_mikey_span data; } ext; /* GENERAL-EXT */
        struct { uint8_t auth_alg; ms_mikey_span mac; } v;
        struct { uint8_t error_no; } err;
    } u;
} ms_mikey_payload;

typedef struct ms_mikey_message {
    ms_mikey_hdr hdr;
    size_t n_payloads;
    ms_mikey_payload payloads[MS_MIKEY_MAX_PAYLOADS];
    /* Parsed: octets covered by the signature, i.e. the message up to and including
     * the SIGN payload's 2-octet header (RFC 6509 / RFC 3830 5.2); 0 without SIGN. */
    size_t signed_len;
} ms_mikey_message;

/* Parse `len` octets. Never reads outside the input; rejects trailing octets, length
 * fields that overflow, unknown payload types, a SIGN that is not last, and messages
 * over the limits above. On failure fills diag (if not NULL). `out` holds spans into
 * `msg`, so msg must outlive it. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_parse(ms_mikey_message *out, const uint8_t *msg,
                                            size_t len, ms_mikey_diag *diag)
    MS_NONNULL(1);

/* Encode HDR and payloads in order, filling every next-payload field. A SIGN payload
 * must be last; when its sig.data is NULL, sig.len zero octets are written as a place
 * holder. *signed_len receives the octets to sign (may be NULL). MS_ERR_BUFFER_TOO_SMALL
 * with *out_len set to the size needed when cap is too small. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_encode(uint8_t *out, size_t cap, size_t *out_len,
                                             size_t *signed_len, const ms_mikey_message *msg)
    MS_NONNULL(3, 5);

/* First payload of `type` (and, for IDR, `role`; pass -1 for any) or NULL. */
MS_API const ms_mikey_payload *ms_mikey_find(const ms_mikey_message *msg, uint8_t type,
                                             int role)
    MS_NONNULL(1);

/* SP policy parameters: iterate the TLVs of an SP payload. *pos starts at 0; returns
 * 1 with type/value set, 0 at the end, or -1 when the TLVs are malformed. */
MS_API int ms_mikey_sp_next(const ms_mikey_payload *sp, size_t *pos, uint8_t *type,
                            ms_mikey_span *value)
    MS_NONNULL(1, 2);

/* Name of a payload type, ID role, error number, data type ("SAKKE", "IDRkmsi", ...). */
MS_API const char *ms_mikey_payload_name(int type);
MS_API const char *ms_mikey_role_name(int role);
MS_API const char *ms_mikey_errno_name(int error_no);

/* ==== 3. identities and key periods ======================================================= */

/* Seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01). */
#define MS_NTP_UNIX_OFFSET 2208988800u

/* How one KMS community names its users' keys. */
typedef struct ms_id_scheme {
    uint8_t scheme;         /* MS_MIKEY_ID_SCHEME_TEL_MONTHLY or _HASHED_UID */
    const char *kms_uri;    /* hashed UID: the KMS URI (P2 of the UID) */
    uint64_t period_len;    /* hashed UID: key period length in seconds (> 0) */
    uint64_t period_offset; /* hashed UID: key period offset in seconds */
} ms_id_scheme;

#define MS_ID_UID_BYTES 32

/* Key period number of NTP time `ntp_seconds` (seconds since 1900). Monthly scheme:
 * (year - 1900) * 12 + (month - 1) of the UTC date. Hashed UID:
 * floor((t - offset) / length) (MS_ERR_ARG when t < offset). */
MS_API MS_WARN_UNUSED ms_err ms_key_period(const ms_id_scheme *scheme, uint64_t *period_no,
                                           uint64_t ntp_seconds)
    MS_NONNULL(1, 2);

/* First NTP second of period `period_no` and first second of the next one. */
MS_API MS_WARN_UNUSED ms_err ms_key_period_bounds(const ms_id_scheme *scheme,
                                                  uint64_t *start, uint64_t *end,
                                                  uint64_t period_no)
    MS_NONNULL(1, 2, 3);

/* The identifier of `uri` for key period `period_no`: the ECCSI ID and SAKKE a/b.
 * Monthly: "YYYY-MM\0tel:+...\0" (uri must be a global tel URI without separators or
 * parameters, else MS_ERR_IDENTITY). Hashed UID: the 32-octet UID of TS 33.180 F.2.1.
 * cap >= MS_SAKKE_ID_MAX_BYTES is always enough. */
MS_API MS_WARN_UNUSED ms_err ms_identifier(const ms_id_scheme *scheme, uint8_t *out,
                                           size_t cap, size_t *out_len, const char *uri,
                                           uint64_t period_no)
    MS_NONNULL(1, 4, 5);

/* UID = SHA-256(0x00 || "MIKEY-SAKKE-UID" || user URI || KMS URI || length || offset ||
 * period number), each with its 2-octet length, integers minimal big-endian (F.2.1). */
MS_API MS_WARN_UNUSED ms_err ms_uid(uint8_t uid[MS_ID_UID_BYTES], const char *user_uri,
                                    const char *kms_uri, uint64_t period_len,
                                    uint64_t period_offset, uint64_t period_no)
    MS_NONNULL(1, 2, 3);

/* RFC 6509 3.3 "hold two periods": the key periods whose keys are acceptable at NTP
 * time t. Always the current one; also the previous one during the first `grace`
 * seconds of the current period, and the next one during its last `grace` seconds.
 * RFC 6509's schedule is grace = 2 days. Writes 1 to 2 period numbers, current first.
 * (Should grace span half a period, so that both apply, the nearer boundary wins.) */
MS_API MS_WARN_UNUSED ms_err ms_key_periods_accepted(const ms_id_scheme *scheme,
                                                     uint64_t periods[2], size_t *n,
                                                     uint64_t ntp_seconds, uint64_t grace)
    MS_NONNULL(1, 2, 3);

/* NTP 32.32 timestamp of the current UTC time. */
MS_API uint64_t ms_ntp_now(void);

/* ==== 4. key derivation ==================================================================== */

/* Key derivation constants of RFC 3830 4.1.3. */
#define MS_MIKEY_KDF_TEK 0x2AD01C64u
#define MS_MIKEY_KDF_AUTH 0x1B5C7973u
#define MS_MIKEY_KDF_ENCR 0x15798CEFu
#define MS_MIKEY_KDF_SALT 0x39A2C14Bu

/* The MIKEY PRF (RFC 3830 4.1.2; prf = MS_MIKEY_PRF_MIKEY1) or PRF-HMAC-SHA-256
 * (RFC 6043; MS_MIKEY_PRF_HMAC_SHA256): out_len octets from inkey and label. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_prf(uint8_t prf, uint8_t *out, size_t out_len,
                                          const uint8_t *inkey, size_t inkey_len,
                                          const uint8_t *label, size_t label_len)
    MS_NONNULL(4);

/* A key from the TGK for one crypto session (RFC 3830 4.1.3): label = constant ||
 * cs_id || csb_id || RAND. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_derive(uint8_t prf, uint8_t *out, size_t out_len,
                                             uint32_t constant, const uint8_t *tgk,
                                             size_t tgk_len, uint8_t cs_id, uint32_t csb_id,
                                             const uint8_t *rand, size_t rand_len)
    MS_NONNULL(2, 5);

/* SRTP master key, salt and MKI for one crypto session. */
typedef struct ms_srtp_keys {
    uint8_t master_key[32];
    size_t key_len;
    uint8_t master_salt[14];
    size_t salt_len;
    uint8_t mki[8];
    size_t mki_len; /* 0 (plain RFC 6509), 4 (PCK/CSK: the key id), 8 (GMK-ID || GUK-ID) */
} ms_srtp_keys;

/* TS 33.220 Annex B KDF: HMAC-SHA-256(key, FC || P0 || L0 || ... ). */
MS_API MS_WARN_UNUSED ms_err ms_kdf_3gpp(uint8_t out[32], const uint8_t *key, size_t key_len,
                                         uint8_t fc, const ms_mikey_span *params,
                                         size_t n_params)
    MS_NONNULL(1);

/* GUK-ID = purpose || (GMK-ID[27..0] XOR Salt), Salt = 28 low bits of
 * KDF(GMK, FC 0x50, P0 = the receiving user's URI) (TS 33.180 5.2.3, F.1.3). The same
 * function recovers GMK-ID from a GUK-ID (XOR is its own inverse). */
MS_API MS_WARN_UNUSED ms_err ms_guk_id(uint32_t *out, const uint8_t *gmk, size_t gmk_len,
                                       uint32_t key_id, const char *user_uri)
    MS_NONNULL(1, 2, 5);

/* DPCK = 16 low octets of KDF(key, FC 0x53, P0 = DPPK-ID as 4 octets). */
MS_API MS_WARN_UNUSED ms_err ms_dpck(uint8_t dpck[16], const uint8_t *key, size_t key_len,
                                     uint32_t dppk_id)
    MS_NONNULL(1, 2);

/* ==== 5. SDP a=key-mgmt (RFC 4567) ========================================================= */

/* Longest attribute line accepted or produced (octets, without CR LF). */
#define MS_SDP_KEY_MGMT_MAX 12000

/* Writes "a=key-mgmt:mikey <base64>" (NUL-terminated, no CR LF). */
MS_API MS_WARN_UNUSED ms_err ms_sdp_key_mgmt_format(char *out, size_t cap,
                                                    const uint8_t *msg, size_t msg_len)
    MS_NONNULL(1, 3);

/* Parses one attribute line: with or without the leading "a=", optional single space
 * after the colon, optional trailing CR LF; protocol id must be "mikey"; strict base64
 * (padding required, no whitespace inside). MS_ERR_SDP with diag on any other input. */
MS_API MS_WARN_UNUSED ms_err ms_sdp_key_mgmt_parse(uint8_t *out, size_t cap, size_t *out_len,
                                                   const char *line, size_t line_len,
                                                   ms_mikey_diag *diag)
    MS_NONNULL(3, 4);

/* ==== 6. replay cache ====================================================================== */

/* Remembers authenticated messages inside the timestamp window, per sender: `sender` is
 * 32 octets naming who signed (bound by the signature), `digest` 32 octets naming what
 * was signed. Bounded in all (capacity) and per sender (per_sender <= capacity): a
 * sender at its quota evicts its own oldest entry; a full cache evicts the oldest entry
 * of the sender holding the most. An evicted entry's sender then has every message no
 * newer than it treated as a replay (fail closed), so one sender's flood never costs
 * another sender anything. Only when the entries belong to capacity different senders
 * does eviction raise one floor for everybody. Not thread-safe. */
typedef struct ms_replay_cache ms_replay_cache;

MS_API MS_WARN_UNUSED ms_err ms_replay_cache_new(ms_replay_cache **out, size_t capacity,
                                                 size_t per_sender)
    MS_NONNULL(1);
MS_API void ms_replay_cache_free(ms_replay_cache *rc);

/* MS_ERR_MIKEY_REPLAY if (sender, timestamp, digest) was recorded or the timestamp is at
 * or below the sender's (or the common) eviction floor; otherwise MS_OK (nothing is
 * recorded). sender NULL (not known yet): a recorded (timestamp, digest) of any sender,
 * or the common floor. */
MS_API MS_WARN_UNUSED ms_err ms_replay_cache_check(const ms_replay_cache *rc,
                                                   const uint8_t *sender, uint64_t timestamp,
                                                   const uint8_t digest[32])
    MS_NONNULL(1, 4);
/* Record an authenticated message; entries with timestamp < expire_before are dropped.
 * MS_ERR_MIKEY_REPLAY (nothing recorded) if check would have said so; a message with
 * timestamp < expire_before is not recorded (MS_OK). */
MS_API MS_WARN_UNUSED ms_err ms_replay_cache_add(ms_replay_cache *rc, const uint8_t sender[32],
                                                 uint64_t timestamp, const uint8_t digest[32],
                                                 uint64_t expire_before)
    MS_NONNULL(1, 2, 4);

/* ==== 7. initiator and responder ========================================================== */

typedef enum ms_mikey_profile {
    MS_MIKEY_PROFILE_RFC6509 = 0, /* tel URIs, monthly identifiers, SRTP-ID map */
    MS_MIKEY_PROFILE_PCK = 1,     /* TS 33.180 private call key */
    MS_MIKEY_PROFILE_GMK = 2,     /* TS 33.180 group master key (GUK-ID, GENERIC-ID map) */
    MS_MIKEY_PROFILE_CSK = 3      /* TS 33.180 client server key */
} ms_mikey_profile;

/* TS 33.180 E.6 key parameters (carried AES-GCM protected in general extension 7). */
typedef struct ms_mikey_key_params {
    uint8_t key_type;   /* purpose tag of the key */
    uint32_t status;    /* bit 0: 1 = not revoked */
    uint64_t activation; /* 5 octets as sent; read as 40-bit NTP seconds, 0 = not set */
    uint64_t expiry;     /* 5 octets as sent; read as 40-bit NTP seconds, 0 = not set */
    char text[256];     /* UTF-8, may be empty */
    bool has_group_ids; /* the (empty) Group IDs element the GMK form carries */
} ms_mikey_key_params;

/* One MIKEY user's state: trusted KMSs, own keys by period, verifier and peer caches,
 * replay cache. Secrets are kept in locked memory and wiped on free. Not thread-safe. */
typedef struct ms_mikey_ctx ms_mikey_ctx;

typedef struct ms_mikey_config {
    ms_mikey_profile profile;
    const char *own_uri;     /* this user's URI: tel:+... or an MC service user ID */
    uint64_t max_skew;       /* seconds T may differ from now (0: default 300) */
    size_t replay_capacity;  /* entries (0: default 4096) */
    size_t replay_per_sender; /* entries one initiator may hold (0: default 64, at most
                               * replay_capacity) */
    uint64_t period_grace;   /* ms_key_periods_accepted grace (0: default 2 days) */
    bool prepare;            /* build prepared RSKs and peers (fast path); false = cold */
    /* Clock for tests: NTP 32.32 now; NULL = ms_ntp_now. */
    uint64_t (*clock)(void *clock_ctx);
    void *clock_ctx;
    const ms_rng *rng;       /* NULL = the system generator */
    /* Offline judgement of recorded messages (voicemail, audit), where one message may
     * legitimately be opened many times: no replay cache; the caller handles repeats.
     * Never for live calls. */
    bool no_replay_cache;
} ms_mikey_config;

MS_API MS_WARN_UNUSED ms_err ms_mikey_ctx_new(ms_mikey_ctx **out, const ms_mikey_config *cfg)
    MS_NONNULL(1, 2);
MS_API void ms_mikey_ctx_free(ms_mikey_ctx *ctx);

/* Trust a KMS: its URI (as in IDRkmsi/IDRkmsr), identifier scheme, SAKKE Z and ECCSI
 * KPAK. The first KMS added is the default when a message names none. The profile fixes
 * the scheme (RFC 6509: monthly tel, 3GPP: hashed UID), else MS_ERR_MIKEY_UNSUPPORTED. */
typedef struct ms_mikey_kms_info {
    const char *uri;
    ms_id_scheme scheme; /* scheme.kms_uri may be NULL: uri is used */
    const uint8_t *Z;    /* MS_SAKKE_POINT_BYTES */
    const uint8_t *kpak; /* MS_ECCSI_POINT_BYTES */
} ms_mikey_kms_info;

MS_API MS_WARN_UNUSED ms_err ms_mikey_add_kms(ms_mikey_ctx *ctx, const ms_mikey_kms_info *kms)
    MS_NONNULL(1, 2);

/* This user's keys from `kms_uri` (NULL: the first KMS added) for key period
 * `period_no`: RSK validated and (with cfg.prepare) prepared; SSK/PVT validated. rsk or
 * ssk/pvt may be NULL for a user that only receives or only sends. Replaces keys held
 * for the same KMS and period. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_add_keys(ms_mikey_ctx *ctx, const char *kms_uri,
                                               uint64_t period_no,
                                               const uint8_t rsk[MS_SAKKE_POINT_BYTES],
                                               const uint8_t ssk[MS_ECCSI_SCALAR_BYTES],
                                               const uint8_t pvt[MS_ECCSI_POINT_BYTES])
    MS_NONNULL(1);

/* Forget (and wipe) keys of periods before `period_no` (kms_uri NULL: of every KMS). */
MS_API void ms_mikey_purge_keys(ms_mikey_ctx *ctx, const char *kms_uri, uint64_t period_no)
    MS_NONNULL(1);

/* Build the table for a peer called often (cfg.prepare) whose keys come from
 * `peer_kms_uri` (NULL: the first KMS added), for the period of `ntp` (NTP 32.32, 0: now). Keeps the 8 most recently used peers; without cfg.prepare it
 * does nothing. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_prepare_peer(ms_mikey_ctx *ctx, const char *peer_uri,
                                                   const char *peer_kms_uri, uint64_t ntp)
    MS_NONNULL(1, 2);

typedef struct ms_mikey_init_params {
    const char *responder;     /* URI of the responder (a user, a group member, an MDSI) */
    const char *responder_kms; /* NULL: the default KMS */
    const char *own_kms;       /* NULL: the default KMS */
    const uint8_t *key;        /* NULL: a fresh 16-octet key (the SSV) */
    size_t key_len;
    uint32_t key_id;           /* 3GPP: K-ID (purpose tag in the top 4 bits, must match
                                  the profile); RFC 6509: the CSB ID; 0: fresh */
    uint64_t timestamp;        /* NTP 32.32; 0: now */
    uint8_t prf;               /* MS_MIKEY_PRF_*; RFC 6509 default MIKEY1; 3GPP profiles
                                  always use SHA256 (0 there means SHA256) */
    /* Crypto sessions; n_cs = 0 gives the profile default: RFC 6509 one SRTP-ID
     * session with SSRC 0 and one SP; PCK/CSK #CS 0 with the empty map; GMK one
     * GENERIC-ID session with CS ID 4 and SPI = GMK-ID || GUK-ID. */
    uint8_t map_type;
    uint8_t n_cs;
    ms_mikey_cs cs[MS_MIKEY_MAX_CS];
    bool omit_idr;             /* RFC 6509 only: leave the optional IDR payloads out */
    bool sakke_to_self;        /* 3GPP: general extension 6 to the initiator */
    bool hide_identities;      /* 3GPP: IDRuidi/IDRuidr in place of IDRi/IDRr */
    bool with_key_params;      /* 3GPP: general extension 7 */
    ms_mikey_key_params key_params;
    /* RAND payload: NULL draws 16 fresh octets. A group key's RAND (GMK) is the same in
     * every member's message, so that each member derives every other's SRTP keys;
     * 1 to 255 octets. */
    const uint8_t *rand;
    size_t rand_len;
} ms_mikey_init_params;

/* What a successful initiate or respond produced. `key` is secret: wipe it
 * (ms_mikey_result_wipe) when done. */
typedef struct ms_mikey_result {
    ms_mikey_profile profile;
    uint8_t key[MS_SAKKE_SSV_BYTES]; /* the TGK (SSV, PCK, GMK, CSK) */
    size_t key_len;
    uint32_t csb_id;      /* as in HDR (a GUK-ID for GMK) */
    uint32_t key_id;      /* K-ID: csb_id, or the GMK-ID recovered from the GUK-ID */
    uint8_t prf;
    uint8_t rand[255];
    size_t rand_len;
    uint64_t timestamp;   /* T, NTP 32.32 */
    uint64_t period_no;
    char initiator[256];  /* URI, empty when hidden and not yet learnt */
    char initiator_kms[256];
    char responder[256];
    bool initiator_hidden;
    uint8_t initiator_uid[MS_ID_UID_BYTES];
    uint8_t map_type;
    uint8_t n_cs;
    ms_mikey_cs cs[MS_MIKEY_MAX_CS]; /* spans are not kept: spi copied below */
    uint8_t cs_spi[MS_MIKEY_MAX_CS][16];
    bool has_key_params;
    ms_mikey_key_params key_params;
} ms_mikey_result;

MS_API void ms_mikey_result_wipe(ms_mikey_result *res);

/* Build and sign an I_MESSAGE into out. res (may be NULL) receives the key and what
 * the responder will derive keys from. MS_ERR_MIKEY_KEY_PERIOD without own signing
 * keys for the period of T. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_initiate(ms_mikey_ctx *ctx, uint8_t *out, size_t cap,
                                               size_t *out_len, ms_mikey_result *res,
                                               const ms_mikey_init_params *params)
    MS_NONNULL(1, 4, 6);

/* Check an I_MESSAGE in the order of RFC 6509 2.2.2 / TS 33.180 and recover the key.
 * `expected_initiator` is the initiator URI the signalling claims (NULL: not checked).
 * The first failing check decides the error:
 *   structure MS_ERR_MIKEY_MALFORMED/_UNSUPPORTED/_MISSING_PAYLOAD, version
 *   MS_ERR_MIKEY_VERSION, data type MS_ERR_MIKEY_DATA_TYPE, V bit MS_ERR_MIKEY_V_BIT,
 *   T window MS_ERR_MIKEY_TIMESTAMP, replay MS_ERR_MIKEY_REPLAY (the signed part, i.e.
 *   all but the signature, accepted before), initiator MS_ERR_MIKEY_INITIATOR, responder
 *   MS_ERR_MIKEY_RESPONDER, KMS MS_ERR_MIKEY_UNKNOWN_KMS, period MS_ERR_MIKEY_KEY_PERIOD,
 *   replay MS_ERR_MIKEY_REPLAY (T at or below the initiator's eviction floor), signature
 *   MS_ERR_SIGNATURE, SAKKE MS_ERR_DECAP_TEST, then 3GPP key id MS_ERR_MIKEY_KEY_ID and
 *   key parameters MS_ERR_MIKEY_KEY_PARAMS. Only a fully accepted message enters the
 *   replay cache.
 * The initiator's own context may read its own 3GPP message when it carries
 * SAKKE-to-self: the key then comes from general extension 6.
 * Key parameters: refused when revoked (status bit 0 clear), expired (expiry set and in
 * the past) or when the key type is not the message's purpose tag. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_respond(ms_mikey_ctx *ctx, ms_mikey_result *res,
                                              const uint8_t *msg, size_t msg_len,
                                              const char *expected_initiator,
                                              ms_mikey_diag *diag)
    MS_NONNULL(1, 2);

/* Identity hiding: once the initiator's URI is learnt (e.g. from protected SIP), check
 * that its UID is the one the message was signed with; MS_ERR_MIKEY_INITIATOR if not.
 * On success fills res->initiator. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_confirm_initiator(const ms_mikey_ctx *ctx,
                                                        ms_mikey_result *res,
                                                        const char *initiator_uri)
    MS_NONNULL(1, 2, 3);

/* SRTP keys of crypto session cs_id from a result (RFC 3830 4.1.3 with the result's
 * PRF; TS 33.180 7.4 MKI for 3GPP profiles). key_len 16 or 32, salt_len 12 or 14. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_srtp_keys(ms_srtp_keys *keys, const ms_mikey_result *res,
                                                uint8_t cs_id, size_t key_len,
                                                size_t salt_len)
    MS_NONNULL(1, 2);

/* ==== 8. inspect =========================================================================== */

/* Print a parsed message as an indented tree (like a protocol analyser) or, with
 * json = true, as one JSON object. Decodes the SAKKE data (R, H), the ECCSI signature
 * (r, s, PVT), SP parameters, the CS ID map and 3GPP extensions by name. */
MS_API MS_WARN_UNUSED ms_err ms_mikey_print(FILE *out, const ms_mikey_message *msg, bool json)
    MS_NONNULL(1, 2);

#ifdef __cplusplus
}
#endif
#endif
