/*
 * mikeysakke groups: what a member holds of a group key (TS 33.180 GMK) and how every
 * member's SRTP keys follow from it.
 *
 * A group management server (GMS) makes one GMK, GMK-ID and RAND per group key and sends
 * the GMK to each member in that member's own MIKEY-SAKKE I_MESSAGE (GMK profile). The
 * RAND belongs to the group key, not to one message, so that every member derives every
 * other member's SRTP master key, salt and MKI (GMK-ID || GUK-ID of the sender) from the
 * same values. This header is the contract between the group layer (the GMS, delivery,
 * the member's store of group keys) and the media side (one SRTP context per sender,
 * chosen by MKI).
 */
#ifndef MIKEYSAKKE_GROUP_H
#define MIKEYSAKKE_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/mikey.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One group key as a member holds it. gmk is secret: wipe the whole struct
 * (ms_group_key_wipe) when done. */
typedef struct ms_group_key {
    char group[128];        /* the group's URI (its MCPTT group ID) */
    uint8_t gmk[16];
    size_t gmk_len;         /* 16 */
    uint32_t gmk_id;        /* K-ID, purpose tag 0 (MS_MIKEY_PURPOSE_GMK) in the top 4 bits */
    uint8_t rand[255];      /* the group key's RAND, the same in every member's message */
    size_t rand_len;
    uint8_t prf;            /* MS_MIKEY_PRF_HMAC_SHA256 for 3GPP profiles */
    uint8_t cs_id;          /* crypto session of the GENERIC-ID map that SRTP keys use */
    uint64_t activation;    /* NTP 32.32 from the key parameters; 0: at once */
    uint64_t expiry;        /* NTP 32.32; 0: none */
} ms_group_key;

MS_API void ms_group_key_wipe(ms_group_key *key);

/* SRTP master key (16), salt (12 for GCM, 14 for AES-CM: salt_len) and MKI (8 octets:
 * GMK-ID || GUK-ID) under which member `sender_uri` sends: GUK-ID from ms_guk_id, then
 * RFC 3830 4.1.3 derivation with csb_id = that GUK-ID. */
MS_API MS_WARN_UNUSED ms_err ms_group_sender_keys(ms_srtp_keys *out, const ms_group_key *key,
                                                  const char *sender_uri, size_t salt_len)
    MS_NONNULL(1, 2, 3);

/* ==== the group management server ======================================================== */

/* The GMS is an identity with its own keys from the KMS, kept in a client keystore
 * (mikeysakke/client.h). Its groups (members, current and previous group key) live in
 * the same directory, each in one file sealed like the key sets. */
#define MS_GROUP_MAX_MEMBERS 1024
#define MS_GROUP_URI_MAX 255

typedef struct ms_keystore ms_keystore;
typedef struct ms_gms ms_gms;

/* Open the GMS's keystore (ms_keystore_open's errors). */
MS_API MS_WARN_UNUSED ms_err ms_gms_open(ms_gms **out, const char *keystore_dir,
                                         const char *passphrase, size_t passphrase_len,
                                         char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);
MS_API void ms_gms_close(ms_gms *gms);
/* The GMS's own URI (its keystore's user URI). */
MS_API const char *ms_gms_uri(const ms_gms *gms);

/* One group key as the GMS shows it (public parts). Times are NTP seconds. */
typedef struct ms_gms_key_info {
    uint32_t gmk_id;
    uint64_t created, activation, expiry;
} ms_gms_key_info;

typedef struct ms_gms_group_info {
    char group[128];
    size_t n_members;
    size_t n_keys;              /* 1 or 2: current first, then the previous one */
    ms_gms_key_info keys[2];
    uint64_t generation;        /* bumped on every change */
} ms_gms_group_info;

/* Group changes. `activation_delay` (seconds from now) is when a new key takes over;
 * `lifetime` (seconds after activation, 0: 30 days) its expiry. Members are URIs, at
 * most MS_GROUP_MAX_MEMBERS, no repeats.
 *   create: a new group with its first key (MS_ERR_EXISTS if the group is known);
 *   add:    members join; the current key stays (they receive it with the new roster);
 *   remove: members leave and a new key is made, which they never receive;
 *   rekey:  a new key for the same members.
 * Unknown group or member: MS_ERR_GROUP. */
MS_API MS_WARN_UNUSED ms_err ms_gms_create(ms_gms *gms, const char *group,
                                           const char *const *members, size_t n_members,
                                           uint64_t activation_delay, uint64_t lifetime,
                                           char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);
MS_API MS_WARN_UNUSED ms_err ms_gms_add(ms_gms *gms, const char *group,
                                        const char *const *members, size_t n_members,
                                        char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);
MS_API MS_WARN_UNUSED ms_err ms_gms_remove(ms_gms *gms, const char *group,
                                           const char *const *members, size_t n_members,
                                           uint64_t activation_delay, uint64_t lifetime,
                                           char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);
MS_API MS_WARN_UNUSED ms_err ms_gms_rekey(ms_gms *gms, const char *group,
                                          uint64_t activation_delay, uint64_t lifetime,
                                          char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);

/* What the GMS holds for a group. members (may be NULL) receives a malloc'd list, one
 * URI per line (free it); n_members in info counts them. */
MS_API MS_WARN_UNUSED ms_err ms_gms_show(ms_gms *gms, ms_gms_group_info *info, char **members,
                                         const char *group, char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 4);

/* One member's SIP MESSAGE body: the member's GMK I_MESSAGE and the signed roster,
 * as multipart/mixed (content_type says so, with its boundary). */
typedef struct ms_group_delivery {
    char member[MS_GROUP_URI_MAX + 1];
    char content_type[96];
    uint8_t *body;
    size_t body_len;
} ms_group_delivery;

/* The current key of `group` for every member, in member order: one GMK I_MESSAGE per
 * member (GUK-ID as CSB-ID, GENERIC-ID with SPI = GMK-ID || GUK-ID, key parameters,
 * SAKKE-to-self), all with the group key's RAND, and the roster signed once by the GMS.
 * threads: 0 = one per online CPU (at most 8). Free with ms_group_deliveries_free. */
MS_API MS_WARN_UNUSED ms_err ms_gms_deliveries(ms_gms *gms, ms_group_delivery **out,
                                               size_t *n_out, const char *group,
                                               unsigned threads, char *detail,
                                               size_t detail_cap)
    MS_NONNULL(1, 2, 3, 4);
MS_API void ms_group_deliveries_free(ms_group_delivery *d, size_t n);

/* ==== the member ========================================================================= */

/* A member receiving group keys: the keystore's MIKEY context (GMK profile) and its
 * replay cache, for the life of one receiver. The keystore must stay open. */
typedef struct ms_group_member ms_group_member;

MS_API MS_WARN_UNUSED ms_err ms_group_member_open(ms_group_member **out, ms_keystore *ks,
                                                  char *detail, size_t detail_cap)
    MS_NONNULL(1, 2);
MS_API void ms_group_member_close(ms_group_member *m);

typedef struct ms_group_received {
    char group[128];
    char gms[MS_GROUP_URI_MAX + 1];
    uint32_t gmk_id, guk_id;
    uint64_t activation, expiry; /* NTP seconds (0: at once / none) */
    size_t n_members;
    char *members;               /* malloc'd, one URI per line: ms_group_received_free */
} ms_group_received;

MS_API void ms_group_received_free(ms_group_received *r);

/* Check one MESSAGE body from the GMS and store what it carries: the I_MESSAGE through
 * ms_mikey_respond (its errors), then the roster: signed by the message's initiator
 * (MS_ERR_SIGNATURE), naming the same GMK-ID, activation and expiry and this member
 * (MS_ERR_GROUP). Only then are the key (as ms_group_key) and roster stored in the
 * keystore; the two newest keys of a group are kept. */
MS_API MS_WARN_UNUSED ms_err ms_group_member_receive(ms_group_member *m, ms_group_received *out,
                                                     const char *content_type,
                                                     const uint8_t *body, size_t body_len,
                                                     char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3);

/* A stored group key: gmk_id 0 picks the current one (the newest with activation <= now
 * and not expired; now 0: the clock); else exactly that GMK-ID. MS_ERR_NO_KEYS if none. */
MS_API MS_WARN_UNUSED ms_err ms_group_key_load(ms_group_key *out, const ms_keystore *ks,
                                               const char *group, uint32_t gmk_id,
                                               uint64_t now, char *detail,
                                               size_t detail_cap)
    MS_NONNULL(1, 2, 3);

/* The GMK-IDs of the group's stored keys (at most two are kept: the current one and the
 * previous or next one), in no particular order; *n is how many (0: none). A member in a
 * call sends under the key in force and also accepts the other one during a rekey. */
MS_API MS_WARN_UNUSED ms_err ms_group_key_ids(uint32_t *ids, size_t cap, size_t *n,
                                              const ms_keystore *ks, const char *group,
                                              char *detail, size_t detail_cap)
    MS_NONNULL(3, 4, 5);

/* The stored roster of a group (as last verified): malloc'd, one URI per line. */
MS_API MS_WARN_UNUSED ms_err ms_group_roster_load(char **members, size_t *n_members,
                                                  const ms_keystore *ks, const char *group,
                                                  char *detail, size_t detail_cap)
    MS_NONNULL(1, 2, 3, 4);

#ifdef __cplusplus
}
#endif
#endif
