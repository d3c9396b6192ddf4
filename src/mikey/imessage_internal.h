/*
 * Internal interface between the I_MESSAGE initiator/responder (imessage.c) and the
 * TS 33.180 E.6 key-parameters protection (keyparams.c).
 */
#ifndef MS_MIKEY_IMESSAGE_INTERNAL_H
#define MS_MIKEY_IMESSAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/mikey.h"

/* General extension 7 data: the MCData protected-payload framing of 33.180 E.6 as the
 * deployed implementations emit it (digest 6.3.7):
 *   0      message type 0x43
 *   1..5   date/time (5 octets; we send the NTP seconds of T, receivers ignore it)
 *   6..9   payload ID (0)
 *   10     payload sequence number (0)
 *   11     algorithm (1 = AES-128-GCM)
 *   12..27 IV (16 octets)
 *   28..31 DPPK-ID (= CSB-ID of the MIKEY HDR)
 *   32     payload IEI (0)
 *   33..34 payload length (ciphertext and 16-octet tag)
 *   35..   AES-128-GCM(DPCK, IV, AAD = octets 0..31) ciphertext || tag
 * Plaintext: KeyType(1) | Status(4) | Activation(5) | Expiry(5) | TextLen(2) | Text |
 * [GroupIDs: length(2) = 1 | count(1) = 0].
 * Activation and expiry are 40-bit NTP seconds (since 1900) in this implementation:
 * the 33.180 text for E.6.4/E.6.10 was not available and this is the only reading that
 * fits 5 octets with a useful range; 0 means "not set". */
#define MS_KP_HEADER_BYTES 35
#define MS_KP_TAG_BYTES 16
#define MS_KP_PLAIN_MAX (17 + 255 + 3)
#define MS_KP_MAX_BYTES (MS_KP_HEADER_BYTES + MS_KP_PLAIN_MAX + MS_KP_TAG_BYTES)
#define MS_KP_TIME_MAX 0xFFFFFFFFFFull /* largest 5-octet value */

/* Encrypt kp under DPCK = ms_dpck(key, dppk_id) with a fresh IV from rng. MS_ERR_ARG
 * when a field does not fit its encoding (times over 40 bits, text over 255 octets,
 * key not 16 octets). */
ms_err ms_mikey_kp_seal(uint8_t *out, size_t cap, size_t *out_len,
                        const ms_mikey_key_params *kp, const uint8_t *key, size_t key_len,
                        uint32_t dppk_id, uint64_t datetime, const ms_rng *rng);

/* Authenticate, decrypt and decode. MS_ERR_MIKEY_KEY_PARAMS on any failure, with one
 * sentence in why (may be NULL); *where gets the offset in data of the fault. kp is
 * only meaningful on MS_OK. */
ms_err ms_mikey_kp_open(ms_mikey_key_params *kp, const uint8_t *data, size_t len,
                        const uint8_t *key, size_t key_len, uint32_t dppk_id,
                        size_t *where, char *why, size_t why_len);

#endif
