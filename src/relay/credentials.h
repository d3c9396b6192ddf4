/*
 * Mailbox owners' credentials (src/relay/credentials.c), provisioned by the
 * administrator with `mikeysakke-voicemail add-user`: no key code, only salted password
 * hashes (PBKDF2-HMAC-SHA256, OpenSSL).
 *
 * File format, one owner per line ('#' lines and blank lines ignored), mode 0600:
 *
 *   <mailbox-uri> pbkdf2-sha256 <iterations> <salt: 32 hex> <hash: 64 hex>
 *
 * e.g. "sip:bob@example.org pbkdf2-sha256 600000 9f86...08 2c26...ae". The URI is kept
 * normalised (ms_vm_uri_normalise); iterations between 1000 and 100000000.
 *
 * HTTP access: "Authorization: Basic base64(<mailbox-uri>:<password>)". The user-id is
 * the URI with its scheme ("sip:bob@example.org"; one without a scheme is taken as
 * sip:), so the password starts after the colon that follows the scheme's colon.
 *
 * The object re-reads the file when it changes (inode, size or mtime; one stat per
 * check), so add-user takes effect on a running server; a malformed new file is refused
 * and the previous table kept.
 */
#ifndef MS_RELAY_CREDENTIALS_H
#define MS_RELAY_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_VM_PBKDF2_ITERATIONS 600000u /* default for new entries (OWASP 2023) */

typedef struct ms_vm_credentials ms_vm_credentials;

/* Reads the file. MS_ERR_IO (unreadable), MS_ERR_KEYFILE_MODE (not a regular file or
 * open to group/others), MS_ERR_CONFIG (detail "FILE:LINE: why") for a malformed line or
 * a URI given twice. */
ms_err ms_vm_credentials_load(ms_vm_credentials **out, const char *path, char *detail,
                              size_t detail_cap);
void ms_vm_credentials_free(ms_vm_credentials *c); /* NULL allowed */

/* Re-reads the file if it changed; MS_ERR_CONFIG etc. (the old table stays) otherwise
 * MS_OK. Thread-safe. */
ms_err ms_vm_credentials_refresh(ms_vm_credentials *c, char *detail, size_t detail_cap);

/* Mailboxes provisioned (after the last refresh). */
size_t ms_vm_credentials_count(ms_vm_credentials *c);
/* Is `uri` (any spelling that normalises to it) a provisioned mailbox? */
bool ms_vm_credentials_has(ms_vm_credentials *c, const char *uri);

/* Checks a password for `uri` (constant-time comparison of the derived hash; an unknown
 * URI costs the same derivation). On success copies the normalised URI into out. */
bool ms_vm_credentials_check(ms_vm_credentials *c, const char *uri, const uint8_t *password,
                             size_t password_len, char *out, size_t out_cap);

/* Same from the value of an Authorization header (Basic, see above); NULL -> false. */
bool ms_vm_credentials_check_basic(ms_vm_credentials *c, const char *authorization, char *out,
                                   size_t out_cap);

/* Adds the owner of `uri`, or replaces their password, in the file at `path` (created
 * if absent), atomically (tmp + rename, mode 0600). iterations 0 = the default. */
ms_err ms_vm_credentials_add(const char *path, const char *uri, const uint8_t *password,
                             size_t password_len, uint32_t iterations, char *detail,
                             size_t detail_cap);

#endif
