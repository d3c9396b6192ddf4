/*
 * A device's issuance request to one threshold server (src/tkms/request.c), the body of
 * POST /keymanagement/identity/v1/keyprov (Content-Type application/octet-stream):
 *
 *   "MSTQ" | version 1 | server index (1) | time (8, NTP seconds) | nonce (16) |
 *   period length (1) | period | device id length (1) | device id |
 *   user URI length (2) | user URI |
 *   Ed25519 signature (64) by the device's enrolled signing key over
 *   "mikeysakke tkms request" || 0x00 || every octet before the signature.
 * Integers big-endian. The server index binds a request to the server it was made for;
 * time and nonce make each request fresh (the server keeps a replay window of
 * MS_REPLAY_WINDOW seconds either side of its clock). The context string keeps these
 * signatures apart from any other an Ed25519 key could make.
 */
#ifndef MS_TKMS_REQUEST_H
#define MS_TKMS_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "tkms/enrol.h"

#define MS_TKMS_REQ_MAGIC "MSTQ"
#define MS_TKMS_REQ_NONCE 16
#define MS_TKMS_PERIOD_MAX 32
#define MS_TKMS_REQ_MAX (4 + 1 + 1 + 8 + MS_TKMS_REQ_NONCE + 1 + MS_TKMS_PERIOD_MAX + 1 + \
                         MS_TKMS_DEVICE_ID_MAX + 2 + MS_TKMS_URI_MAX + 64)
#define MS_TKMS_REQ_CONTEXT "mikeysakke tkms request"
#define MS_TKMS_KEYPROV_PATH "/keymanagement/identity/v1/keyprov"

typedef struct ms_tkms_request {
    unsigned server;
    uint64_t time;
    uint8_t nonce[MS_TKMS_REQ_NONCE];
    char period[MS_TKMS_PERIOD_MAX + 1];
    char device_id[MS_TKMS_DEVICE_ID_MAX + 1];
    char user[MS_TKMS_URI_MAX + 1];
} ms_tkms_request;

/* Encodes and signs r with the device's Ed25519 seed into out (MS_TKMS_REQ_MAX octets
 * are enough). MS_ERR_ARG for fields out of their rules. */
ms_err ms_tkms_request_sign(const ms_tkms_request *r, const uint8_t seed[32], uint8_t *out,
                            size_t cap, size_t *out_len);
/* Decodes the fields (MS_ERR_BAD_ENCODING naming nothing secret in detail); the
 * signature is not checked here. */
ms_err ms_tkms_request_parse(ms_tkms_request *r, const uint8_t *in, size_t len, char *detail,
                             size_t detail_cap);
/* Checks the signature of a parsed request under pub (MS_ERR_SIGNATURE). */
ms_err ms_tkms_request_verify(const uint8_t *in, size_t len, const uint8_t pub[32]);

#endif
