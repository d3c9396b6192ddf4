/*
 * Test helper for tests/e2e/test_conference.sh: from a member's keystore, prints the GMK
 * (hex) of a stored group key and then, one per line, the SRTP master key and salt (hex)
 * under which each given member sends with it, so that the test can look for them where
 * they must not be (the relay's and the provider's memory, logs and files).
 * Usage: group_keys_dump KEYSTORE PASSFILE GROUP GMK-ID SUITE URI...   (GMK-ID 0: in force)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call/srtp.h"
#include "mikeysakke/client.h"
#include "mikeysakke/crypto.h"
#include "mikeysakke/group.h"

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: group_keys_dump KEYSTORE PASSFILE GROUP GMK-ID SUITE URI...\n");
        return 2;
    }
    char pass[256] = "";
    FILE *f = fopen(argv[2], "r");
    if (f == NULL || fgets(pass, sizeof pass, f) == NULL) {
        fprintf(stderr, "group_keys_dump: cannot read %s\n", argv[2]);
        if (f != NULL)
            fclose(f);
        return 1;
    }
    fclose(f);
    pass[strcspn(pass, "\r\n")] = 0;
    ms_srtp_suite suite;
    ms_keystore *ks = NULL;
    ms_group_key key;
    memset(&key, 0, sizeof key);
    char detail[256] = "";
    uint32_t gmk_id = (uint32_t)strtoul(argv[4], NULL, 16);
    ms_err err = ms_srtp_suite_parse(&suite, argv[5]);
    if (err == MS_OK)
        err = ms_keystore_open(&ks, argv[1], pass, strlen(pass), detail, sizeof detail);
    ms_wipe(pass, sizeof pass);
    if (err == MS_OK)
        err = ms_group_key_load(&key, ks, argv[3], gmk_id, 0, detail, sizeof detail);
    ms_keystore_close(ks);
    if (err != MS_OK) {
        fprintf(stderr, "group_keys_dump: %s\n", detail[0] ? detail : ms_strerror(err));
        return 1;
    }
    size_t salt_len;
    ms_srtp_suite_lengths(suite, NULL, &salt_len);
    print_hex(key.gmk, key.gmk_len);
    putchar('\n');
    int rc = 0;
    for (int i = 6; i < argc && rc == 0; i++) {
        ms_srtp_keys k;
        if (ms_group_sender_keys(&k, &key, argv[i], salt_len) != MS_OK) {
            rc = 1;
            break;
        }
        print_hex(k.master_key, k.key_len);
        putchar(' ');
        print_hex(k.master_salt, k.salt_len);
        putchar('\n');
    }
    ms_group_key_wipe(&key);
    return rc;
}
