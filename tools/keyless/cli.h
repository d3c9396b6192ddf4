/*
 * What the key-less programs (mikeysakke-voicemail, mikeysakke-relay) share on their
 * command lines: messages in the `mikeysakke` command's form, password files and numbers.
 * It links no key code, like the programs themselves.
 */
#ifndef MS_TOOLS_KEYLESS_CLI_H
#define MS_TOOLS_KEYLESS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

/* "PROG: (code) message: error text" on stderr; returns e. */
ms_err ms_keyless_fail(const char *prog, ms_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "PROG: message" and the usage text on stderr; returns MS_ERR_USAGE. */
ms_err ms_keyless_usage_error(const char *prog, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The first line of a password file of mode 0600 (no group or other bits) into out,
 * *len octets; the rest of what was read is wiped. */
ms_err ms_keyless_read_password(const char *prog, const char *path, char *out, size_t cap,
                                size_t *len);
/* A decimal number in [min, max], digits only. */
bool ms_keyless_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
