/*
 * The configuration file of the servers and the provisioning client (tools/config.c).
 *
 * INI format, strict:
 *     # a comment (whole lines only, so a '#' inside a value is kept)
 *     [kms]
 *     dir    = /var/lib/mikeysakke/kms
 *     listen = 127.0.0.1
 *     cert   = "/etc/mikeysakke/tls/kms.crt"     (quotes optional, removed)
 * Sections: [kms] [dist] [fetch]; each section's keys are listed in config.c (the shared
 * decisions of docs/operations.md). An unknown section or key, a key outside any section,
 * a repeated section or key, an empty value, a line over 1024 octets, a file over
 * 64 KiB or containing a NUL byte is refused with MS_ERR_CONFIG and "FILE:LINE: why".
 *
 * No secret may be in the file: a key whose name contains "pass", "pin", "secret" or
 * "token" must end in "-file" and its value must be a path (contain a '/'); a file it
 * names that exists must not be readable or writable by group or others; the TLS private
 * key ("key") must not be open to others (group-readable is allowed). The file
 * itself must be a regular file owned by root or by us and not writable by group or
 * others (MS_ERR_KEYFILE_MODE otherwise).
 *
 * A command-line option always overrides the file: see cli_config_pick.
 */
#ifndef MIKEYSAKKE_TOOLS_CONFIG_H
#define MIKEYSAKKE_TOOLS_CONFIG_H

#include <stddef.h>

#include "mikeysakke/errors.h"

typedef struct cli_config cli_config;

/* Reads and checks `path`. On failure *out is NULL and `detail` (if cap > 0) holds
 * "FILE:LINE: why" (or "FILE: why") without any value from the file that could be a
 * secret; print it with cli_fail(err, "%s", detail). */
ms_err cli_config_load(cli_config **out, const char *path, char *detail, size_t cap);

/* The value of `key` in `section`, or NULL if absent (c may be NULL). The string lives
 * as long as c. */
const char *cli_config_get(const cli_config *c, const char *section, const char *key);

/* Narrows the keys a command accepts: the first key of `section` that is not in
 * `allowed` (a NULL-terminated list) gives MS_ERR_CONFIG and "FILE:LINE: unknown key
 * 'k' in [section]". Returns MS_OK when c is NULL. */
ms_err cli_config_check(const cli_config *c, const char *section,
                        const char *const *allowed, char *detail, size_t cap);

/* `cmdline` if the option was given on the command line, else the file's value (c may
 * be NULL), else NULL. */
const char *cli_config_pick(const char *cmdline, const cli_config *c, const char *section,
                            const char *key);

/* "FILE:LINE" of the key (for messages about a value), or "" if absent. The string
 * lives as long as c. */
const char *cli_config_where(const cli_config *c, const char *section, const char *key);

void cli_config_free(cli_config *c);

#endif
