/* src/util/hex: round trips, both cases, every rejection, and the constant-time decoder
 * giving the plain decoder's answer for every input. */
#include <string.h>

#include "testutil.h"
#include "util/hex.h"

static void round_trips(void)
{
    uint8_t all[256], back[256];
    char up[513], low[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    ms_hex_encode_upper(up, all, sizeof all);
    ms_hex_encode_lower(low, all, sizeof all);
    CHECK(strlen(up) == 512 && strlen(low) == 512);
    CHECK(strncmp(up, "000102", 6) == 0 && strcmp(up + 500, "FAFBFCFDFEFF") == 0);
    CHECK(strcmp(low + 500, "fafbfcfdfeff") == 0);
    CHECK(strncmp(up + 2 * 0x9a, "9A", 2) == 0 && strncmp(low + 2 * 0xa9, "a9", 2) == 0);
    CHECK_ERR(ms_hex_decode(back, sizeof back, up, 512), MS_OK);
    CHECK_MEM(back, all, sizeof all);
    memset(back, 0, sizeof back);
    CHECK_ERR(ms_hex_decode_secret(back, sizeof back, low, 512), MS_OK);
    CHECK_MEM(back, all, sizeof all);

    char empty[1];
    ms_hex_encode_upper(empty, all, 0);
    CHECK(empty[0] == '\0');
    CHECK_ERR(ms_hex_decode(back, 0, "", 0), MS_OK);
    CHECK_ERR(ms_hex_decode_secret(back, 0, "", 0), MS_OK);
}

static void rejections(void)
{
    uint8_t out[4];
    /* odd length, too short, too long */
    CHECK_ERR(ms_hex_decode(out, 2, "abc", 3), MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_hex_decode_secret(out, 2, "abc", 3), MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_hex_decode(out, 2, "ab", 2), MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_hex_decode_secret(out, 2, "abcdef", 6), MS_ERR_BAD_LENGTH);
    CHECK_ERR(ms_hex_decode(out, 1, "a", 1), MS_ERR_BAD_LENGTH);
    /* a bad digit in every position; the output is cleared */
    static const char *const bad[] = {"g123", "1g23", "12g3", "123g", " 123", "12:3",
                                      "12@3", "12`3", "12/3", "1G23", "12\x80" "3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 0xAA, sizeof out);
        CHECK_ERR(ms_hex_decode(out, 2, bad[i], 4), MS_ERR_BAD_ENCODING);
        CHECK(out[0] == 0 && out[1] == 0);
        memset(out, 0xAA, sizeof out);
        CHECK_ERR(ms_hex_decode_secret(out, 2, bad[i], 4), MS_ERR_BAD_ENCODING);
        CHECK(out[0] == 0 && out[1] == 0);
    }
    CHECK(ms_hex_value('0') == 0 && ms_hex_value('9') == 9 && ms_hex_value('a') == 10 &&
          ms_hex_value('F') == 15);
    CHECK(ms_hex_value('g') < 0 && ms_hex_value('/') < 0 && ms_hex_value(':') < 0 &&
          ms_hex_value('@') < 0 && ms_hex_value('G') < 0 && ms_hex_value('`') < 0 &&
          ms_hex_value(0) < 0 && ms_hex_value(0xC0) < 0);
}

/* Every pair of octets as two digits: both decoders agree on the answer and the value. */
static void constant_time_equals_plain(void)
{
    int disagree = 0, accepted = 0;
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            char s[2] = {(char)a, (char)b};
            uint8_t p = 0x55, c = 0x66;
            ms_err ep = ms_hex_decode(&p, 1, s, 2);
            ms_err ec = ms_hex_decode_secret(&c, 1, s, 2);
            if (ep != ec || (ep == MS_OK && p != c))
                disagree++;
            accepted += ep == MS_OK;
        }
    }
    CHECK(disagree == 0);
    CHECK(accepted == 22 * 22);
}

int main(void)
{
    round_trips();
    rejections();
    constant_time_equals_plain();
    return ms_test_finish();
}
