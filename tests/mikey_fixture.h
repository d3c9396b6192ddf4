/*
 * The test KMS, clock and names the MIKEY I_MESSAGE tests share (tests/mikey/test_imessage.c,
 * test_responder.c, test_replay_attacks.c): SAKKE and ECCSI master keys made with the
 * crypto layer, a clock fixed at 2025-10-15 12:00:00 UTC that a test may move, and the
 * issuance of one user's keys for one key period.
 */
#ifndef MS_TEST_MIKEY_FIXTURE_H
#define MS_TEST_MIKEY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/mikey.h"

#define KMS_URI "kms.example.org"
#define NOW_SECS 3969518400ull /* 2025-10-15 12:00:00 UTC as NTP seconds */
#define MONTH_PERIOD ((2025ull - 1900) * 12 + 9)
#define UID_PERIOD_LEN 2592000ull
#define UID_PERIOD (NOW_SECS / UID_PERIOD_LEN)
#define ALICE_TEL "tel:+447700900123"
#define BOB_TEL "tel:+447700900456"
#define ALICE_SIP "sip:alice@example.org"
#define BOB_SIP "sip:bob@example.org"
#define BUF 2048

/* What cfg.clock returns (NTP 32.32); starts at NOW_SECS. */
extern uint64_t g_now;
uint64_t test_clock(void *c);

/* The KMS: SAKKE z, Z and the RSK issuer, ECCSI KSAK and KPAK. */
extern uint8_t z[MS_SAKKE_SECRET_BYTES], Z[MS_SAKKE_POINT_BYTES];
extern uint8_t ksak[MS_ECCSI_SCALAR_BYTES], kpak[MS_ECCSI_POINT_BYTES];
extern ms_sakke_kms *issuer;

extern const ms_id_scheme tel_scheme; /* RFC 6509: monthly tel: */
extern const ms_id_scheme uid_scheme; /* TS 33.180: hashed UID, UID_PERIOD_LEN periods */

/* The scheme and the current key period of a profile. */
const ms_id_scheme *scheme_of_profile(ms_mikey_profile profile);
uint64_t period_of_profile(ms_mikey_profile profile);

/* Setup failed: names what and exits 2 (not a test failure, the test cannot run). */
void die(const char *what, ms_err e);

/* Makes the KMS (after ms_test_seed) and frees it, wiping its secrets. */
void test_kms_new(void);
void test_kms_free(void);

/* One user's keys for one key period, as the KMS issues them. */
typedef struct test_user_keys {
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len;
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];
    uint8_t pvt[MS_ECCSI_POINT_BYTES];
} test_user_keys;

/* Issues uri's keys for period under scheme into *k and adds them to ctx (ctx may be
 * NULL: issue only). The caller wipes k->ssk. */
ms_err test_issue_keys(test_user_keys *k, ms_mikey_ctx *ctx, const ms_id_scheme *scheme,
                       const char *uri, uint64_t period);

/* A context for uri in profile that knows the test KMS; cfg's other fields are the
 * caller's (profile, own_uri, clock and rng are set here). Dies on failure. */
ms_mikey_ctx *test_ctx_new(ms_mikey_config *cfg, ms_mikey_profile profile, const char *uri);

#endif
