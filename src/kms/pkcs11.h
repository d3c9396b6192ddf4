/*
 * The PKCS#11 seal (src/kms/pkcs11.c): a token's AES-256 key, never extractable, wraps
 * and unwraps the 32-octet key-encryption key (KEK) of the sealed file (kms/seal.h).
 * Functions without an object: each names its cause in a `char *detail, size_t
 * detail_cap` out-parameter (NULL allowed). Private to src/kms.
 */
#ifndef MS_KMS_PKCS11_H
#define MS_KMS_PKCS11_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mikeysakke/errors.h"

#define MS_P11_KEK_BYTES 32
/* The token's AES-256 key `key_label` encrypts the KEK with CKM_AES_GCM: `wrapped` is
 * iv (12) || ciphertext (32) || tag (16), with `aad` bound in. */
#define MS_P11_WRAPPED_LEN 60

typedef struct ms_p11_target {
    const char *module;
    const char *token_label;
    const uint8_t *pin;
    size_t pin_len;
    const char *key_label;
} ms_p11_target;

/* Seal creates the key when absent (create != 0); unseal never does. Every failure is
 * MS_ERR_PKCS11 (MS_ERR_ARG for a target missing a field) with detail naming the step
 * and the CKR code ("PKCS#11: wrong PIN for token 'kms'"). */
ms_err ms_p11_wrap_kek(uint8_t wrapped[MS_P11_WRAPPED_LEN], const ms_p11_target *t,
                       int create, const uint8_t kek[MS_P11_KEK_BYTES], const uint8_t *aad,
                       size_t aad_len, char *detail, size_t detail_cap);
ms_err ms_p11_unwrap_kek(uint8_t kek[MS_P11_KEK_BYTES], const ms_p11_target *t,
                         const uint8_t wrapped[MS_P11_WRAPPED_LEN], const uint8_t *aad,
                         size_t aad_len, char *detail, size_t detail_cap);

/* Whether the PKCS#11 module `module` may be loaded (every seal and unseal asks): it must
 * be one of Debian's packaged modules (a built-in list) or listed ("module = PATH") in
 * the configuration file conf_path (MS_PKCS11_CONF, ms_p11_conf_path(), in production),
 * and that file, the module and every directory above them must be owned by root (or
 * `owner`, which production sets to root too; tests their own uid) and not writable by
 * group or others. MS_ERR_PKCS11 with detail naming the reason otherwise. */
ms_err ms_p11_module_check(const char *module, const char *conf_path, uid_t owner,
                           char *detail, size_t detail_cap);
const char *ms_p11_conf_path(void);

#endif
