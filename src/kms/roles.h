/*
 * KMS roles (src/kms/roles.c): the Ed25519 keys of the operator, the enrolment officers
 * and the auditors, the signed requests they send to the unseal agent, and the approvals
 * of an act (an extraction, a second device) by auditors, officers or a user's device.
 *
 * A request is text: the line "mikeysakke-request 1", then "key=value" lines (key
 * [a-z_]+, unique; value printable ASCII or UTF-8 without control characters), each
 * ending in "\n". Signatures are over a context string, a NUL and the whole text, so an
 * approval can never pass as a command signature or the reverse.
 *
 * Key files hold one lowercase hex line: the 32-octet private seed (mode 0600, refused
 * when others may read it) or the 32-octet public key.
 */
#ifndef MS_KMS_ROLES_H
#define MS_KMS_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"

#define MS_ROLE_KEY_BYTES 32
#define MS_ROLE_SIG_BYTES 64
#define MS_REQUEST_MAX 4096
#define MS_REQUEST_NONCE_BYTES 16
#define MS_REQUEST_HEADER "mikeysakke-request 1\n"

/* Signature contexts. */
#define MS_ROLE_CTX_COMMAND "mikeysakke kms command"
#define MS_ROLE_CTX_APPROVAL "mikeysakke kms approval"

/* A fresh key pair; the seed is secret (wipe it). rng may be NULL (OpenSSL's). */
ms_err ms_role_keygen(uint8_t seed[MS_ROLE_KEY_BYTES], uint8_t pub[MS_ROLE_KEY_BYTES],
                      const ms_rng *rng);
ms_err ms_role_public(const uint8_t seed[MS_ROLE_KEY_BYTES], uint8_t pub[MS_ROLE_KEY_BYTES]);
ms_err ms_role_sign(const uint8_t seed[MS_ROLE_KEY_BYTES], const char *context,
                    const char *text, size_t len, uint8_t sig[MS_ROLE_SIG_BYTES]);
/* MS_OK, or MS_ERR_SIGNATURE. */
ms_err ms_role_verify(const uint8_t pub[MS_ROLE_KEY_BYTES], const char *context,
                      const char *text, size_t len, const uint8_t sig[MS_ROLE_SIG_BYTES]);

/* Key files. Reading a private one refuses group/other access (MS_ERR_KEYFILE_MODE);
 * MS_ERR_IO if unreadable, MS_ERR_ARG if not one hex line of 32 octets. */
ms_err ms_role_key_read(const char *path, uint8_t seed[MS_ROLE_KEY_BYTES], char *detail,
                        size_t cap);
ms_err ms_role_pub_read(const char *path, uint8_t pub[MS_ROLE_KEY_BYTES], char *detail,
                        size_t cap);
/* "hex\n" of 32 octets into out (at least 66 octets). */
void ms_role_hex_line(char out[2 * MS_ROLE_KEY_BYTES + 2], const uint8_t key[MS_ROLE_KEY_BYTES]);

/* Requests. ms_request_start writes the header; ms_request_add appends one line
 * (MS_ERR_ARG for a bad key or value, MS_ERR_BUFFER_TOO_SMALL). buf stays NUL-terminated. */
ms_err ms_request_start(char *buf, size_t cap, size_t *len);
ms_err ms_request_add(char *buf, size_t cap, size_t *len, const char *key, const char *value);
/* Adds "nonce" (fresh random hex) and "expires" (unix seconds). */
ms_err ms_request_add_nonce(char *buf, size_t cap, size_t *len, uint64_t expires,
                            const ms_rng *rng);
/* The whole text well formed (header, lines, unique keys, size)? MS_OK or MS_ERR_ARG. */
ms_err ms_request_check(const char *text, size_t len);
/* The value of key (MS_ERR_ARG if absent; MS_ERR_BUFFER_TOO_SMALL). The text must have
 * passed ms_request_check. */
ms_err ms_request_get(const char *text, size_t len, const char *key, char *out, size_t cap);
/* Calls cb for each line after the header, in order; stops if cb returns non-zero. */
ms_err ms_request_each(const char *text, size_t len,
                       int (*cb)(void *ctx, const char *key, const char *value), void *ctx);

/* An approval of one request: an Ed25519 signature by a role key, or an HMAC-SHA256 by
 * the InK of one of the user's devices. Its text form, one line:
 *   "key <public hex> <signature hex>"  or  "device <device id> <mac hex>" */
#define MS_APPROVAL_KEY 1
#define MS_APPROVAL_DEVICE 2
#define MS_APPROVAL_TEXT_MAX 256
typedef struct ms_approval {
    int kind;
    uint8_t pub[MS_ROLE_KEY_BYTES];  /* KEY */
    char device_id[65];               /* DEVICE */
    uint8_t sig[MS_ROLE_SIG_BYTES];   /* KEY: the signature; DEVICE: the MAC (32) */
} ms_approval;

ms_err ms_approval_sign(const uint8_t seed[MS_ROLE_KEY_BYTES], const char *req, size_t len,
                        ms_approval *a);
ms_err ms_approval_device_mac(const uint8_t ink[32], const char *device_id, const char *req,
                              size_t len, ms_approval *a);
/* Checks a device approval's MAC against that device's InK: MS_OK or MS_ERR_SIGNATURE. */
ms_err ms_approval_device_check(const uint8_t ink[32], const char *req, size_t len,
                                const ms_approval *a);
ms_err ms_approval_format(const ms_approval *a, char *out, size_t cap);
ms_err ms_approval_parse(const char *text, size_t len, ms_approval *a);

#endif
