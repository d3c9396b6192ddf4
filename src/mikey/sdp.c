/*
 * SDP a=key-mgmt (RFC 4567 3.1): "key-mgmt" ":" 0*1SP prtcl-id SP keymgmt-data, with
 * prtcl-id "mikey" and the MIKEY message in base64. The I_MESSAGE is public, so the
 * base64 codec need not be constant-time; it is strict instead: canonical alphabet,
 * padding required, no whitespace, unused bits zero.
 */
#include <stdarg.h>
#include <string.h>

#include "mikeysakke/mikey.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static const char prefix_attr[] = "key-mgmt:";
static const char prefix_full[] = "a=key-mgmt:mikey ";
static const char prtcl_mikey[] = "mikey";

/* Value of a base64 character, or -1. */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static ms_err sdp_fail(ms_mikey_diag *diag, size_t offset, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static ms_err sdp_fail(ms_mikey_diag *diag, size_t offset, const char *fmt, ...)
{
    if (diag != NULL) {
        diag->payload = -1;
        diag->offset = offset;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag->detail, sizeof diag->detail, fmt, ap);
        va_end(ap);
    }
    return MS_ERR_SDP;
}

ms_err ms_sdp_key_mgmt_format(char *out, size_t cap, const uint8_t *msg, size_t msg_len)
{
    if (out == NULL || msg == NULL || msg_len == 0 || msg_len > MS_MIKEY_MAX_MESSAGE)
        return MS_ERR_ARG;
    size_t plen = sizeof prefix_full - 1;
    size_t need = plen + (msg_len + 2) / 3 * 4; /* without the NUL */
    if (need > MS_SDP_KEY_MGMT_MAX)
        return MS_ERR_ARG;
    if (cap < need + 1)
        return MS_ERR_BUFFER_TOO_SMALL;
    memcpy(out, prefix_full, plen);
    char *o = out + plen;
    size_t i = 0;
    for (; i + 3 <= msg_len; i += 3) {
        uint32_t v = (uint32_t)msg[i] << 16 | (uint32_t)msg[i + 1] << 8 | msg[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (msg_len - i == 1) {
        uint32_t v = (uint32_t)msg[i] << 16;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (msg_len - i == 2) {
        uint32_t v = (uint32_t)msg[i] << 16 | (uint32_t)msg[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return MS_OK;
}

/* Decodes line[start, end) as strict base64 into out (cap octets). */
static ms_err b64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *line,
                         size_t start, size_t end, ms_mikey_diag *diag)
{
    size_t n = end - start;
    if (n == 0)
        return sdp_fail(diag, start, "the key management data is empty");
    size_t pad = 0;
    while (pad < n && line[end - 1 - pad] == '=')
        pad++;
    /* Characters first, so that the report names the first bad one; then '=' that is
     * not part of the final run. */
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)line[i];
        if (b64_value(c) >= 0 || c == '=')
            continue;
        if (c > 0x20 && c < 0x7F)
            return sdp_fail(diag, i, "invalid base64 character '%c'", c);
        return sdp_fail(diag, i, "invalid base64 character 0x%02X", c);
    }
    for (size_t i = start; i < end - pad; i++)
        if (line[i] == '=')
            return sdp_fail(diag, i, "base64 padding '=' inside the data");
    if (pad > 2)
        return sdp_fail(diag, end - pad, "base64 data ends in %zu '=' (at most 2)", pad);
    if (n % 4 != 0)
        return sdp_fail(diag, end, "base64 data of %zu characters is not a multiple of 4 "
                                   "(padding missing)", n);
    /* Canonical form: the bits the padding drops must be zero. */
    if (pad > 0) {
        int d = b64_value((unsigned char)line[end - pad - 1]);
        if ((d & (pad == 1 ? 0x3 : 0xF)) != 0)
            return sdp_fail(diag, end - pad - 1, "base64 unused bits before the padding are "
                                                 "not zero");
    }
    size_t dlen = n / 4 * 3 - pad;
    if (dlen > MS_MIKEY_MAX_MESSAGE)
        return sdp_fail(diag, start, "decoded message of %zu octets exceeds the limit of %d",
                        dlen, MS_MIKEY_MAX_MESSAGE);
    *out_len = dlen;
    if (cap < dlen)
        return MS_ERR_BUFFER_TOO_SMALL;

    size_t o = 0;
    for (size_t i = start; i < end; i += 4) {
        bool last = i + 4 == end;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int d = b64_value((unsigned char)line[i + k]);
            v = v << 6 | (uint32_t)(d < 0 ? 0 : d); /* d < 0 only for the checked padding */
        }
        size_t keep = last ? 3 - pad : 3;
        uint8_t b[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        memcpy(out + o, b, keep);
        o += keep;
    }
    return MS_OK;
}

ms_err ms_sdp_key_mgmt_parse(uint8_t *out, size_t cap, size_t *out_len, const char *line,
                             size_t line_len, ms_mikey_diag *diag)
{
    if (out_len == NULL || line == NULL || (out == NULL && cap > 0))
        return MS_ERR_ARG;
    *out_len = 0;
    size_t end = line_len;
    /* One optional line ending. */
    if (end >= 2 && line[end - 2] == '\r' && line[end - 1] == '\n')
        end -= 2;
    else if (end >= 1 && line[end - 1] == '\n')
        end -= 1;
    if (end > MS_SDP_KEY_MGMT_MAX)
        return sdp_fail(diag, MS_SDP_KEY_MGMT_MAX, "attribute line of %zu characters exceeds "
                                                   "the limit of %d", end, MS_SDP_KEY_MGMT_MAX);
    const char *nul = memchr(line, '\0', end);
    if (nul != NULL)
        return sdp_fail(diag, (size_t)(nul - line), "embedded NUL character");

    size_t pos = 0;
    if (end >= 2 && line[0] == 'a' && line[1] == '=')
        pos = 2;
    size_t alen = sizeof prefix_attr - 1;
    if (end - pos < alen || memcmp(line + pos, prefix_attr, alen) != 0)
        return sdp_fail(diag, pos, "not a key-mgmt attribute (expected \"key-mgmt:\")");
    pos += alen;
    if (pos < end && line[pos] == ' ')
        pos++;
    size_t id_start = pos;
    while (pos < end && ((line[pos] >= 'a' && line[pos] <= 'z') ||
                         (line[pos] >= 'A' && line[pos] <= 'Z') ||
                         (line[pos] >= '0' && line[pos] <= '9')))
        pos++;
    size_t id_len = pos - id_start;
    if (id_len == 0) {
        if (pos < end && line[pos] == ' ')
            return sdp_fail(diag, pos, "more than one space before the protocol id");
        return sdp_fail(diag, pos, "protocol id missing");
    }
    if (id_len != sizeof prtcl_mikey - 1 || memcmp(line + id_start, prtcl_mikey, id_len) != 0)
        return sdp_fail(diag, id_start, "protocol id \"%.*s\" is not \"mikey\"",
                        id_len > 32 ? 32 : (int)id_len, line + id_start);
    if (pos >= end)
        return sdp_fail(diag, pos, "the key management data is missing");
    if (line[pos] != ' ')
        return sdp_fail(diag, pos, "invalid character after the protocol id");
    pos++;
    if (pos < end && line[pos] == ' ')
        return sdp_fail(diag, pos, "more than one space before the key management data");
    return b64_decode(out, cap, out_len, line, pos, end, diag);
}
