/*
 * A test program for tests/e2e/test_threshold_serve.sh (never part of the product):
 *
 *   tkms_tool share DIR PASSFILE PERIOD URI
 *       prints this server's u_j (its last 32 octets) and SSK_j of URI, hex, one a line
 *   tkms_tool alter DIR PASSFILE PERIOD URI
 *       rewrites DIR's batch-PERIOD.sealed with URI's u_j altered (lowest bit flipped), as a
 *       compromised server that sends a wrong share would have it
 *   tkms_tool replay KEYSTORE PERIOD SERVER OUT
 *       sends one signed request of the keystore's device to server SERVER twice; prints
 *       the two HTTP statuses and writes the first answer to OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "kms/seal.h"
#include "mikeysakke/client.h"
#include "mikeysakke/mikey.h"
#include "net/peer.h"
#include "net/peer_table.h"
#include "tkms/device.h"
#include "tkms/node.h"
#include "tkms/request.h"
#include "util/file.h"
#include "util/hex.h"

static size_t read_pass(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f != NULL ? fread(out, 1, cap - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    return n;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static int share(const char *dir, const char *passfile, const char *period, const char *uri)
{
    char pass[256], detail[300] = "";
    size_t pl = read_pass(passfile, pass, sizeof pass);
    ms_tkms_service *s = NULL;
    ms_tkms_share sh;
    uint8_t rec[MS_TKMS_RECORD_MAX];
    size_t rl = 0;
    if (ms_tkms_service_open(&s, dir, (const uint8_t *)pass, pl, detail, sizeof detail) != MS_OK ||
        ms_tkms_service_slot(s, period, uri, &sh, rec, sizeof rec, &rl, detail, sizeof detail) !=
            MS_OK) {
        fprintf(stderr, "share: %s\n", detail);
        ms_tkms_service_close(s);
        return 1;
    }
    print_hex(sh.u + sizeof sh.u - 32, 32);
    print_hex(sh.ssk, sizeof sh.ssk);
    ms_tkms_service_close(s);
    return 0;
}

static int alter(const char *dir, const char *passfile, const char *period, const char *uri)
{
    char pass[256], detail[300] = "", path[4096];
    size_t pl = read_pass(passfile, pass, sizeof pass);
    snprintf(path, sizeof path, "%s/secrets.sealed", dir);
    ms_unseal *u = NULL;
    ms_kms_secrets *sec = NULL;
    if (ms_unseal_open(&u, path, detail, sizeof detail) != MS_OK ||
        ms_unseal_passphrase(u, &sec, (const uint8_t *)pass, pl) != MS_OK) {
        fprintf(stderr, "alter: %s does not unseal\n", path);
        ms_unseal_free(u);
        return 1;
    }
    ms_unseal_free(u);
    snprintf(path, sizeof path, "%s/batch-%s.sealed", dir, period);
    static const char hdr[] = "mikeysakke-tkms-shares 1\n";
    size_t len = 0, h = sizeof hdr - 1;
    uint8_t *file = read_file(path, &len);
    if (file == NULL || len < h + 28 || memcmp(file, hdr, h) != 0) {
        fprintf(stderr, "alter: %s is not a batch\n", path);
        return 1;
    }
    size_t body = len - h - 28;
    uint8_t *plain = malloc(body + 1);
    if (plain == NULL ||
        ms_tkms_batch_crypt(0, sec->store_key, period, file + h, len - h, plain, &body) != MS_OK) {
        fprintf(stderr, "alter: %s does not open\n", path);
        return 1;
    }
    /* entries: u16 id length | id (period NUL uri NUL) | u | SSK */
    size_t ul = strlen(uri), pl2 = strlen(period), o = 0, entry = MS_SAKKE_SECRET_BYTES + MS_ECCSI_SCALAR_BYTES;
    int found = 0;
    while (o + 2 <= body) {
        size_t l = (size_t)plain[o] << 8 | plain[o + 1];
        const uint8_t *id = plain + o + 2;
        if (l == pl2 + ul + 2 && memcmp(id, period, pl2) == 0 && memcmp(id + pl2 + 1, uri, ul) == 0) {
            plain[o + 2 + l + MS_SAKKE_SECRET_BYTES - 1] ^= 1; /* u's lowest bit */
            found = 1;
            break;
        }
        o += 2 + l + entry;
    }
    size_t sealed_len = 0;
    int ok = found &&
             ms_tkms_batch_crypt(1, sec->store_key, period, plain, body, file + h,
                                 &sealed_len) == MS_OK &&
             ms_file_write_atomic(path, file, len, 0600, MS_FILE_REPLACE, detail,
                                  sizeof detail) == MS_OK;
    ms_kms_secrets_free(sec);
    free(plain);
    free(file);
    if (!ok)
        fprintf(stderr, "alter: %s not found or not written %s\n", uri, detail);
    return ok ? 0 : 1;
}

static int replay(const char *ks, const char *period, unsigned server, const char *out)
{
    char path[4096], detail[300] = "";
    uint8_t seed[32];
    ms_peer_table *t = calloc(1, sizeof *t);
    ms_tkms_device d;
    snprintf(path, sizeof path, "%s/%s", ks, MS_TKMS_KS_SIGN);
    if (t == NULL || ms_file_read_hex_key(path, true, seed, 32, "key", detail, sizeof detail) != MS_OK)
        return 1;
    snprintf(path, sizeof path, "%s/%s", ks, MS_TKMS_KS_PEERS);
    if (ms_peer_table_read(path, t, detail, sizeof detail) != MS_OK || server == 0 || server > t->n)
        return 1;
    snprintf(path, sizeof path, "%s/%s", ks, MS_TKMS_KS_DEVICE);
    if (ms_tkms_device_file_read(path, &d, detail, sizeof detail) != MS_OK)
        return 1;
    ms_tkms_request r;
    memset(&r, 0, sizeof r);
    r.server = server;
    r.time = ms_ntp_now() >> 32;
    RAND_bytes(r.nonce, sizeof r.nonce);
    snprintf(r.period, sizeof r.period, "%s", period);
    snprintf(r.device_id, sizeof r.device_id, "%s", d.device_id);
    snprintf(r.user, sizeof r.user, "%s", d.user);
    uint8_t body[MS_TKMS_REQ_MAX];
    size_t bl = 0;
    if (ms_tkms_request_sign(&r, seed, body, sizeof body, &bl) != MS_OK)
        return 1;
    ms_peer_link link = {.url = t->server[server - 1].url, .timeout_ms = 10000};
    memcpy(link.pin, t->server[server - 1].tls_pin, 32);
    for (int i = 0; i < 2; i++) {
        ms_peer_response resp;
        ms_peer_post(&link, MS_TKMS_KEYPROV_PATH, body, bl, &resp, detail, sizeof detail);
        printf("%ld\n", resp.status);
        if (i == 0 && resp.body != NULL)
            ms_file_write_atomic(out, resp.body, resp.len, 0600, MS_FILE_REPLACE, NULL, 0);
        else if (resp.body != NULL)
            fprintf(stderr, "%s", (const char *)resp.body);
        ms_peer_response_free(&resp);
    }
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "share") == 0)
        return share(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 6 && strcmp(argv[1], "alter") == 0)
        return alter(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 6 && strcmp(argv[1], "replay") == 0)
        return replay(argv[2], argv[3], (unsigned)atoi(argv[4]), argv[5]);
    fprintf(stderr, "usage: tkms_tool share|alter DIR PASSFILE PERIOD URI | replay KEYSTORE "
                    "PERIOD SERVER OUT\n");
    return 2;
}
