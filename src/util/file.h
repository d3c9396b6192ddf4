/*
 * Whole files replaced atomically: the one writer of the library and the command. Private
 * to src/ and tools/.
 *
 * A temporary file is made beside the target (same folder, so the rename stays in one file
 * system) with mode 0600, set to `mode` before anything is written, written, fsync'ed and
 * renamed over the target (or, with MS_FILE_NO_REPLACE, hard-linked to it, which never
 * replaces a file); then the folder is fsync'ed. A reader sees the old file or the new one,
 * never a part; on failure the temporary file is removed and the target is untouched.
 */
#ifndef MS_UTIL_FILE_H
#define MS_UTIL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_FILE_REPLACE 0
#define MS_FILE_NO_REPLACE 1 /* MS_ERR_EXISTS when path exists */
/* The temporary file is "<path>.tmp", truncated if it is there, instead of a fresh unique
 * name: for writers that hold a lock (one at a time), so that the leftover of a crash is
 * taken by the next write rather than left behind. */
#define MS_FILE_FIXED_TMP 2

/* MS_OK; MS_ERR_EXISTS (MS_FILE_NO_REPLACE and path exists); MS_ERR_ARG (path too long);
 * MS_ERR_IO, detail naming the step and the system's reason. On failure errno keeps the
 * cause, for callers that word their own message. */
ms_err ms_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                            int flags, char *detail, size_t detail_cap);

/* A key file of one hex line (either case, a final newline allowed) of exactly key_len
 * octets, decoded in constant time: role keys, server message keys. With secret set the
 * file must be a regular file no other user may read (else MS_ERR_KEYFILE_MODE). MS_ERR_IO
 * when it cannot be read or is no regular file; MS_ERR_ARG when it is no such line (what
 * names the expected kind in the detail, e.g. "role key"). key is wiped on failure. */
ms_err ms_file_read_hex_key(const char *path, bool secret, uint8_t *key, size_t key_len,
                            const char *what, char *detail, size_t detail_cap);

/* A whole file into a malloc'd buffer with a NUL after its len octets (so text can be
 * read as a string). MS_ERR_IO cannot be opened or read; MS_ERR_BAD_LENGTH larger than
 * max octets; MS_ERR_NOMEM. */
ms_err ms_file_read(const char *path, size_t max, uint8_t **out, size_t *len);

/* fsync of the folder holding path (best effort: some file systems refuse it). */
void ms_file_sync_parent(const char *path);

#endif
