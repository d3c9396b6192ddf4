/*
 * Internals of the client keystore (src/client/): the on-disk envelope, atomic writes,
 * the record format inside the envelopes, and the open keystore. See docs/client.md.
 */
#ifndef MS_CLIENT_KEYSTORE_INTERNAL_H
#define MS_CLIENT_KEYSTORE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "kmsif/kmsif.h"
#include "mikeysakke/client.h"

#define KS_KEY_BYTES 32
#define KS_ID_BYTES 16
#define KS_SALT_BYTES 32
#define KS_NONCE_BYTES 12
#define KS_TAG_BYTES 16
#define KS_MAX_FILE (64 * 1024)
#define KS_HEADER_NAME "keystore.hdr"
#define KS_IDENTITY_NAME "identity"
#define KS_PATH_MAX 4096

struct ms_keystore {
    char dir[KS_PATH_MAX];
    int dir_fd;
    uint8_t key[KS_KEY_BYTES];        /* AES-256-GCM key of every file */
    uint8_t store_id[KS_ID_BYTES];    /* random; bound into every file (AAD) */
    ms_device_keys dev;               /* secret: TrK, InK */
    ms_kms_certificate cert;
};

/* detail helpers: write one sentence if detail is not NULL; return err. */
ms_err ks_fail(ms_err err, char *detail, size_t cap, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* scrypt (OpenSSL EVP_KDF "SCRYPT") of the passphrase. */
ms_err ks_derive_key(uint8_t key[KS_KEY_BYTES], const char *pass, size_t pass_len,
                     const uint8_t salt[KS_SALT_BYTES], unsigned log2_n, unsigned r,
                     unsigned p);

/* Header: writes a fresh one (salt and store id drawn here) and sets ks->key,
 * ks->store_id; or reads, checks and derives. */
ms_err ks_header_create(struct ms_keystore *ks, const char *pass, size_t pass_len,
                        const ms_keystore_params *params, char *detail, size_t cap);
ms_err ks_header_open(struct ms_keystore *ks, const char *pass, size_t pass_len,
                      char *detail, size_t cap);

/* Encrypt and write file `name` of the keystore atomically (temp, fsync, rename, fsync
 * of the directory), mode 0600. */
ms_err ks_write_file(const struct ms_keystore *ks, const char *name, const uint8_t *data,
                     size_t len, char *detail, size_t cap);
/* Read and decrypt file `name`: *out is malloc'd plaintext (the caller wipes and frees);
 * MS_ERR_NO_KEYS when it does not exist, MS_ERR_KEYSTORE when corrupted or foreign,
 * MS_ERR_KEYFILE_MODE when open to others. */
ms_err ks_read_file(const struct ms_keystore *ks, const char *name, uint8_t **out,
                    size_t *out_len, char *detail, size_t cap);
/* Overwrite with zeros, fsync, unlink. */
ms_err ks_delete_file(const struct ms_keystore *ks, const char *name, char *detail,
                      size_t cap);
/* Check a plain file's mode (no group/other bits, regular). */
ms_err ks_check_mode(int fd, const char *what, char *detail, size_t cap);

/* Records: "name value\n" lines; values are printable ASCII without newline. */
typedef struct ks_buf {
    char *p;
    size_t len, cap;
    int failed;
} ks_buf;
void ks_buf_init(ks_buf *b, char *mem, size_t cap);
void ks_put_str(ks_buf *b, const char *name, const char *value);
void ks_put_u64(ks_buf *b, const char *name, uint64_t v);
void ks_put_hex(ks_buf *b, const char *name, const uint8_t *v, size_t len);
/* Lookups in a record text; 0 on success, -1 if missing or malformed. */
int ks_get_str(const char *rec, size_t len, const char *name, char *out, size_t cap);
int ks_get_u64(const char *rec, size_t len, const char *name, uint64_t *out);
int ks_get_hex(const char *rec, size_t len, const char *name, uint8_t *out, size_t cap,
               size_t *out_len);

/* The identity file and the key set entries. */
ms_err ks_identity_write(const struct ms_keystore *ks, char *detail, size_t cap);
ms_err ks_identity_read(struct ms_keystore *ks, char *detail, size_t cap);
void ks_entry_name(char *out, size_t cap, const char *kms_uri, uint64_t period_no);
/* Records the user's device list of an imported package (caller holds ks_lock): the
 * first list as seen, later additions as unseen until ms_keystore_devices_accept. */
ms_err ks_devices_record(const struct ms_keystore *ks, const char *list, char *detail,
                         size_t cap);
ms_err ks_entry_write(const struct ms_keystore *ks, const ms_keyset *k, char *detail,
                      size_t cap);
ms_err ks_entry_read(const struct ms_keystore *ks, const char *name, ms_keyset *k,
                     char *detail, size_t cap);
/* The scheme of the enrolled KMS (kms_uri points into ks). */
ms_err ks_scheme(const struct ms_keystore *ks, const ms_kms_certificate *cert,
                 ms_id_scheme *s);

/* Every entry file name (malloc'd array of malloc'd strings), sorted by period. */
ms_err ks_entry_names(const struct ms_keystore *ks, char ***names, size_t *n, char *detail,
                      size_t cap);
void ks_free_names(char **names, size_t n);

uint64_t ks_now(uint64_t now);

/* Exclusive, non-blocking lock of the directory for writers (import, purge). */
ms_err ks_lock(const struct ms_keystore *ks, char *detail, size_t cap);
void ks_unlock(const struct ms_keystore *ks);

#endif
