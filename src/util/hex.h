/*
 * Hex: the one encoder and the two decoders of the library and the command. Private to
 * src/ and tools/.
 *
 * The encoders never index a table with a value, so they may write secrets. ms_hex_decode
 * is for public values (it branches on the digits); ms_hex_decode_secret takes the same
 * time for every string of a given length (no branch or table lookup on a digit), for
 * keys, shares and salts.
 */
#ifndef MS_UTIL_HEX_H
#define MS_UTIL_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

/* in[0..len) as 2*len hex digits and a NUL into out (2*len + 1 chars). */
void ms_hex_encode_upper(char *out, const uint8_t *in, size_t len);
void ms_hex_encode_lower(char *out, const uint8_t *in, size_t len);

/* The value of one hex digit (either case), or -1. Public values only. */
int ms_hex_value(int c);

/* Exactly hex_len = 2 * out_len digits (either case) into out[0..out_len).
 * MS_ERR_BAD_LENGTH when hex_len is not 2 * out_len, MS_ERR_BAD_ENCODING when a character
 * is not a hex digit (out is then zeroed). */
ms_err ms_hex_decode(uint8_t *out, size_t out_len, const char *hex, size_t hex_len);

/* The same result, in constant time for a given length; out is wiped on failure. */
ms_err ms_hex_decode_secret(uint8_t *out, size_t out_len, const char *hex, size_t hex_len);

#endif
