/*
 * Test helper for tests/e2e/test_conference.sh: prints, one per line, the SRTP master key
 * and salt (hex) under which each given member sends in a group call, so that the test
 * can look for them where they must not be (the relay's and the provider's memory, logs
 * and files).
 * Usage: group_keys_dump GROUPKEYFILE SUITE URI...
 */
#include <stdio.h>

#include "call/group_keys_stub.h"
#include "call/srtp.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: group_keys_dump GROUPKEYFILE SUITE URI...\n");
        return 2;
    }
    ms_group_key key;
    char detail[256] = "";
    ms_srtp_suite suite;
    if (ms_srtp_suite_parse(&suite, argv[2]) != MS_OK ||
        ms_group_key_load_stub(&key, argv[1], detail, sizeof detail) != MS_OK) {
        fprintf(stderr, "group_keys_dump: %s\n", detail[0] ? detail : "unknown suite");
        return 1;
    }
    size_t salt_len;
    ms_srtp_suite_lengths(suite, NULL, &salt_len);
    int rc = 0;
    for (int i = 3; i < argc && rc == 0; i++) {
        ms_srtp_keys k;
        if (ms_group_sender_keys(&k, &key, argv[i], salt_len) != MS_OK) {
            rc = 1;
            break;
        }
        for (size_t j = 0; j < k.key_len; j++)
            printf("%02x", k.master_key[j]);
        putchar(' ');
        for (size_t j = 0; j < k.salt_len; j++)
            printf("%02x", k.master_salt[j]);
        putchar('\n');
    }
    ms_group_key_wipe(&key);
    return rc;
}
