/* Hex encoding and decoding (hex.h). */
#include "util/hex.h"

#include <string.h>

#include <openssl/crypto.h>

/* n + '0', plus 7 (lands on 'A') or 39 (on 'a') when n > 9: no table index on the value. */
static void encode(char *out, const uint8_t *in, size_t len, unsigned letter_gap)
{
    for (size_t i = 0; i < len; i++) {
        unsigned hi = in[i] >> 4, lo = in[i] & 0xFu;
        out[2 * i] = (char)(hi + 48u + (((9u - hi) >> 8) & letter_gap));
        out[2 * i + 1] = (char)(lo + 48u + (((9u - lo) >> 8) & letter_gap));
    }
    out[2 * len] = '\0';
}

void ms_hex_encode_upper(char *out, const uint8_t *in, size_t len)
{
    encode(out, in, len, 7u);
}

void ms_hex_encode_lower(char *out, const uint8_t *in, size_t len)
{
    encode(out, in, len, 39u);
}

int ms_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ms_err ms_hex_decode(uint8_t *out, size_t out_len, const char *hex, size_t hex_len)
{
    if (hex_len / 2 != out_len || hex_len % 2 != 0)
        return MS_ERR_BAD_LENGTH;
    for (size_t i = 0; i < out_len; i++) {
        int hi = ms_hex_value((unsigned char)hex[2 * i]);
        int lo = ms_hex_value((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            memset(out, 0, out_len);
            return MS_ERR_BAD_ENCODING;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return MS_OK;
}

/* One digit to its value with a validity mask, by arithmetic only (the method of
 * libsodium's sodium_hex2bin): *ok gets 0xFF for a hex digit, 0 otherwise. */
static unsigned digit_ct(unsigned c, unsigned *ok)
{
    unsigned num = c ^ 48u;                                              /* '0'..'9' -> 0..9 */
    unsigned num_ok = ((num - 10u) >> 8) & 0xFFu;                        /* iff num < 10 */
    unsigned alpha = (c & ~32u) - 55u;                                   /* 'A'..'F', 'a'..'f' -> 10..15 */
    unsigned alpha_ok = (((alpha - 10u) ^ (alpha - 16u)) >> 8) & 0xFFu; /* iff 10..15 */
    *ok = num_ok | alpha_ok;
    return ((num_ok & num) | (alpha_ok & alpha)) & 0xFu;
}

ms_err ms_hex_decode_secret(uint8_t *out, size_t out_len, const char *hex, size_t hex_len)
{
    if (hex_len / 2 != out_len || hex_len % 2 != 0)
        return MS_ERR_BAD_LENGTH; /* the length is public */
    unsigned all_ok = 0xFFu;
    for (size_t i = 0; i < out_len; i++) {
        unsigned ok_hi, ok_lo;
        unsigned hi = digit_ct((unsigned char)hex[2 * i], &ok_hi);
        unsigned lo = digit_ct((unsigned char)hex[2 * i + 1], &ok_lo);
        all_ok &= ok_hi & ok_lo;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    if (all_ok != 0xFFu) {
        OPENSSL_cleanse(out, out_len);
        return MS_ERR_BAD_ENCODING;
    }
    return MS_OK;
}
