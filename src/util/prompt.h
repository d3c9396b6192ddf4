/*
 * The no-echo prompt for a secret typed at a terminal (passphrases, PINs): the one copy of
 * the library and the command. Private to src/ and tools/.
 */
#ifndef MS_UTIL_PROMPT_H
#define MS_UTIL_PROMPT_H

#include <stddef.h>

#include "mikeysakke/errors.h"

/* Writes `prompt` to the terminal fd, reads one line with echo off (up to a newline, a
 * carriage return or the end of input), restores the terminal and writes a newline.
 * MS_OK: out holds the line and a NUL, *len its length (0 for an empty line);
 * MS_ERR_USAGE: fd is not a terminal (nothing written);
 * MS_ERR_IO: the terminal cannot be written or set;
 * MS_ERR_BAD_LENGTH: the line has cap or more octets (all of it is read, out is wiped). */
ms_err ms_prompt_secret(int fd, const char *prompt, char *out, size_t cap, size_t *len);

#endif
