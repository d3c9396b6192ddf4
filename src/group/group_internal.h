/*
 * Internals of the group layer (src/group/): the signed roster, the MESSAGE body that
 * carries an I_MESSAGE and the roster, and the parallel build of one GMK I_MESSAGE per
 * member (also used by the benchmark).
 */
#ifndef MS_GROUP_INTERNAL_H
#define MS_GROUP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/client.h"
#include "mikeysakke/group.h"
#include "mikeysakke/mikey.h"

#define GROUP_NAME_MAX 127
#define GROUP_RAND_BYTES 16
#define GROUP_DEFAULT_LIFETIME (30u * 86400u)
#define GROUP_ROSTER_TYPE "application/vnd.mikeysakke.group-roster"
#define GROUP_MIKEY_TYPE "application/mikey"

/* A group name or member URI we accept: 1..max printable ASCII octets, no space. */
int group_uri_ok(const char *s, size_t max);

/* "group-" / "gkey-" file names: 16 hex digits of SHA-256(group). */
void group_hash_hex(char out[17], const char *group);

/* ---- roster (roster.c) ------------------------------------------------------------------ */

/* What a roster says. members points into the parsed text (one URI per line, each line
 * ending in '\n'); members_len octets. */
typedef struct group_roster {
    char group[GROUP_NAME_MAX + 1];
    char gms[MS_GROUP_URI_MAX + 1];
    uint32_t gmk_id;
    uint64_t generation, activation, expiry, issued; /* NTP seconds */
    size_t n_members;
    const char *members;
    size_t members_len;
} group_roster;

/* Build the roster text and sign it with the GMS's key set of the period of `issued`
 * (ECCSI; the signature line is the last). *out is malloc'd and NUL-terminated. */
ms_err group_roster_sign(char **out, size_t *out_len, const ms_keystore *gms_ks,
                         const group_roster *r, const char *const *members, size_t n,
                         char *detail, size_t cap);

/* Parse a roster and check its ECCSI signature under the KMS of `id` (the member's own
 * community) for signer r->gms. MS_ERR_GROUP when malformed, MS_ERR_SIGNATURE when the
 * signature fails. */
ms_err group_roster_verify(group_roster *r, const char *text, size_t len,
                           const ms_keystore_identity *id, char *detail, size_t cap);

/* Is `uri` one of the roster's members? */
int group_roster_has(const group_roster *r, const char *uri);

/* ---- the MESSAGE body (roster.c) ----------------------------------------------------------- */

/* multipart/mixed with the I_MESSAGE (application/mikey) first and the roster second.
 * *body is malloc'd. */
ms_err group_body_build(uint8_t **body, size_t *body_len, char *content_type, size_t ct_cap,
                        const char *boundary, const uint8_t *mikey, size_t mikey_len,
                        const char *roster, size_t roster_len);

/* Find the two parts of a body made by group_body_build; spans point into body. */
ms_err group_body_parse(const char *content_type, const uint8_t *body, size_t body_len,
                        ms_mikey_span *mikey, ms_mikey_span *roster, char *detail, size_t cap);

/* ---- one GMK I_MESSAGE per member (distribute.c) ----------------------------------------- */

typedef struct group_key_spec {
    uint8_t gmk[16];
    uint32_t gmk_id;
    uint8_t rand[GROUP_RAND_BYTES];
    uint64_t activation, expiry; /* NTP seconds */
} group_key_spec;

/* msgs[i] (malloc'd, lens[i] octets) for members[i], built on n_ctx threads, one MIKEY
 * context each (GMK profile, the GMS's keys loaded). On failure everything built is
 * freed and *failed_member names the member at fault (or -1). */
ms_err group_build_messages(ms_mikey_ctx *const *ctxs, size_t n_ctx, const group_key_spec *key,
                            const char *const *members, size_t n, uint8_t **msgs, size_t *lens,
                            long *failed_member);

#endif
