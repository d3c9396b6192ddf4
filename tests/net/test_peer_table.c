/*
 * The pinned table of a threshold KMS's servers (src/net/peer_table.c): text form both
 * ways, a file written and read back, the views for signed messages, TLS pins and links,
 * and each malformed or inconsistent table refused with the line or server named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/peer_table.h"
#include "testutil.h"

static ms_peer_table sample(unsigned n, unsigned t)
{
    ms_peer_table tb;
    memset(&tb, 0, sizeof tb);
    tb.n = n;
    tb.t = t;
    for (unsigned i = 0; i < n; i++) {
        snprintf(tb.server[i].url, sizeof tb.server[i].url, "https://kms%u.example.org:8443",
                 i + 1);
        for (int k = 0; k < 32; k++) {
            tb.server[i].sign_pub[k] = (uint8_t)(i * 3 + 1 + (unsigned)k * 5);
            tb.server[i].hpke_pub[k] = (uint8_t)(i * 3 + 2 + (unsigned)k * 7);
            tb.server[i].tls_pin[k] = (uint8_t)(i * 3 + 3 + (unsigned)k * 11);
        }
    }
    return tb;
}

static bool same(const ms_peer_table *a, const ms_peer_table *b)
{
    if (a->n != b->n || a->t != b->t)
        return false;
    for (unsigned i = 0; i < a->n; i++)
        if (strcmp(a->server[i].url, b->server[i].url) != 0 ||
            memcmp(a->server[i].sign_pub, b->server[i].sign_pub, 32) != 0 ||
            memcmp(a->server[i].hpke_pub, b->server[i].hpke_pub, 32) != 0 ||
            memcmp(a->server[i].tls_pin, b->server[i].tls_pin, 32) != 0)
            return false;
    return true;
}

static char text[MS_PEER_TABLE_MAX];
static size_t text_len;

/* Parses the sample text with the first `replace_from` replaced by `replace_to`,
 * expecting a refusal whose detail names `want`. */
static void refused_with(const char *replace_from, const char *replace_to, const char *want)
{
    char buf[MS_PEER_TABLE_MAX + 256];
    const char *at = strstr(text, replace_from);
    CHECK(at != NULL);
    if (at == NULL)
        return;
    size_t pre = (size_t)(at - text);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)pre, text, replace_to,
             at + strlen(replace_from));
    ms_peer_table got;
    char detail[256] = "";
    CHECK_ERR(ms_peer_table_parse(buf, strlen(buf), &got, detail, sizeof detail), MS_ERR_CONFIG);
    bool named = strstr(detail, want) != NULL;
    if (!named)
        fprintf(stderr, "detail \"%s\" does not name \"%s\"\n", detail, want);
    CHECK(named);
}

int main(void)
{
    ms_peer_table tb = sample(3, 1), got;
    char detail[256] = "";
    CHECK_ERR(ms_peer_table_check(&tb, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_peer_table_format(&tb, text, sizeof text, &text_len), MS_OK);
    CHECK(text_len == strlen(text));
    CHECK(strncmp(text, "mikeysakke-peers 1\nthreshold 1\nserver 1 https://kms1.example.org:8443 sign=01", 77) == 0);
    CHECK_ERR(ms_peer_table_parse(text, text_len, &got, detail, sizeof detail), MS_OK);
    CHECK(same(&tb, &got));
    CHECK_ERR(ms_peer_table_format(&tb, text, 40, &text_len), MS_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(ms_peer_table_format(&tb, text, sizeof text, &text_len), MS_OK);

    /* (5, 2) and the largest table. */
    ms_peer_table five = sample(5, 2), big = sample(MS_PEER_MAX, 15);
    char t2[MS_PEER_TABLE_MAX];
    size_t l2 = 0;
    CHECK_ERR(ms_peer_table_format(&five, t2, sizeof t2, &l2), MS_OK);
    CHECK_ERR(ms_peer_table_parse(t2, l2, &got, NULL, 0), MS_OK);
    CHECK(same(&five, &got));
    CHECK_ERR(ms_peer_table_format(&big, t2, sizeof t2, &l2), MS_OK);
    CHECK_ERR(ms_peer_table_parse(t2, l2, &got, NULL, 0), MS_OK);
    CHECK(same(&big, &got));

    /* File round trip; never over an existing file. */
    char path[] = "/tmp/ms_peers_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    CHECK_ERR(ms_peer_table_write(path, &tb, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_peer_table_write(path, &tb, detail, sizeof detail), MS_ERR_EXISTS);
    CHECK_ERR(ms_peer_table_read(path, &got, detail, sizeof detail), MS_OK);
    CHECK(same(&tb, &got));
    unlink(path);
    CHECK_ERR(ms_peer_table_read(path, &got, detail, sizeof detail), MS_ERR_IO);

    /* Views. */
    ms_peer_keys keys;
    ms_peer_pins pins;
    ms_peer_link link;
    ms_peer_table_keys(&tb, &keys);
    ms_peer_table_pins(&tb, &pins);
    CHECK(keys.n == 3 && pins.n == 3);
    CHECK_MEM(keys.pub[2], tb.server[2].sign_pub, 32);
    CHECK_MEM(pins.pin[1], tb.server[1].tls_pin, 32);
    CHECK_ERR(ms_peer_table_link(&tb, 2, "c.pem", "k.pem", &link), MS_OK);
    CHECK(strcmp(link.url, "https://kms2.example.org:8443") == 0);
    CHECK_MEM(link.pin, tb.server[1].tls_pin, 32);
    CHECK(strcmp(link.cert_file, "c.pem") == 0 && strcmp(link.key_file, "k.pem") == 0);
    CHECK_ERR(ms_peer_table_link(&tb, 0, "c", "k", &link), MS_ERR_ARG);
    CHECK_ERR(ms_peer_table_link(&tb, 4, "c", "k", &link), MS_ERR_ARG);

    /* Inconsistent tables. */
    ms_peer_table bad = sample(4, 2);
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "need 5") != NULL);
    bad = sample(3, 0);
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    bad = sample(3, 1);
    memcpy(bad.server[2].hpke_pub, bad.server[0].hpke_pub, 32);
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "servers 1 and 3 have the same HPKE key") != NULL);
    bad = sample(3, 1);
    memcpy(bad.server[1].tls_pin, bad.server[0].tls_pin, 32);
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "TLS certificate") != NULL);
    bad = sample(3, 1);
    memcpy(bad.server[1].sign_pub, bad.server[0].sign_pub, 32);
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    bad = sample(3, 1);
    snprintf(bad.server[2].url, sizeof bad.server[2].url, "%s", bad.server[0].url);
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "same address") != NULL);
    bad = sample(3, 1);
    snprintf(bad.server[1].url, sizeof bad.server[1].url, "http://kms2:80");
    CHECK_ERR(ms_peer_table_check(&bad, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "server 2") != NULL);
    CHECK_ERR(ms_peer_table_format(&bad, t2, sizeof t2, &l2), MS_ERR_ARG);

    /* Malformed text, each naming its line. */
    refused_with("mikeysakke-peers 1", "mikeysakke-peers 2", "first line");
    refused_with("threshold 1\n", "", "line 2");
    refused_with("threshold 1", "threshold 0", "threshold");
    refused_with("threshold 1", "threshold x", "threshold");
    refused_with("threshold 1", "threshold 1 2", "line 2");
    refused_with("server 2 ", "server 3 ", "expected server 2");
    refused_with("https://kms2.example.org:8443", "https://kms2.example.org:8443/", "address");
    refused_with("https://kms2.example.org:8443", "ftp://kms2", "address");
    refused_with("sign=01", "sign=0X", "hex");
    refused_with("sign=01", "sign=1", "hex");
    refused_with("hpke=", "hpkx=", "hex");
    refused_with(" tls=", "  tls=", "line 3");
    refused_with("server 3 ", "server  3 ", "line 5");
    refused_with("server 1 https", "server 1 extra https", "line 3");
    refused_with("server 3 https://kms3.example.org:8443", "server 3 https://kms1.example.org:8443",
                 "same address");
    /* Text without its last line end, with a NUL, or empty. */
    CHECK_ERR(ms_peer_table_parse(text, text_len - 1, &got, detail, sizeof detail),
              MS_ERR_CONFIG);
    char nul[MS_PEER_TABLE_MAX];
    memcpy(nul, text, text_len);
    nul[40] = '\0';
    CHECK_ERR(ms_peer_table_parse(nul, text_len, &got, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK_ERR(ms_peer_table_parse("", 0, &got, detail, sizeof detail), MS_ERR_CONFIG);
    /* Threshold after a server, or twice. */
    char twice[MS_PEER_TABLE_MAX + 32];
    snprintf(twice, sizeof twice, "%sthreshold 1\n", text);
    CHECK_ERR(ms_peer_table_parse(twice, strlen(twice), &got, detail, sizeof detail),
              MS_ERR_CONFIG);
    return ms_test_finish();
}
