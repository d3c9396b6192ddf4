/*
 * ms_unseal_params: an opened sealed file tells how it was sealed, so that a re-seal (the
 * threshold share refresh) can seal the same way: the method, the passphrase's scrypt
 * cost, the custodian shares' k and n; nothing secret. PKCS#11's labels are checked by
 * tests/e2e/test_threshold_refresh.sh (SoftHSM2).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kms/seal.h"
#include "testutil.h"

static void reopen(const char *path, ms_seal_params *got)
{
    ms_unseal *u = NULL;
    char why[256] = "";
    memset(got, 0xA5, sizeof *got);
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    ms_unseal_params(u, got);
    ms_unseal_free(u);
}

int main(void)
{
    ms_test_seed();
    char dir[] = "/tmp/ms_seal_params_XXXXXX", path[300];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/s.sealed", dir);
    ms_kms_secrets *sec = NULL;
    CHECK_ERR(ms_kms_secrets_new(&sec), MS_OK);
    CHECK_ERR(ms_kms_secrets_generate(sec, 0, NULL), MS_OK);
    char why[256] = "";

    /* a passphrase seal with a small scrypt cost: the cost comes back, no passphrase */
    static const uint8_t pass[] = "correct horse";
    ms_seal_params p = {.method = MS_SEAL_PASSPHRASE, .passphrase = pass,
                        .passphrase_len = sizeof pass - 1, .scrypt_log2_n = 11};
    CHECK_ERR(ms_seal_write(path, sec, &p, NULL, NULL, why, sizeof why), MS_OK);
    ms_seal_params got;
    reopen(path, &got);
    CHECK(got.method == MS_SEAL_PASSPHRASE);
    CHECK(got.scrypt_log2_n == 11);
    CHECK(got.passphrase == NULL && got.passphrase_len == 0);
    CHECK(got.pin == NULL && got.module == NULL && got.k == 0);

    /* custodian shares 3 of 5: k and n come back; re-sealing with them works */
    uint8_t shares[16][MS_KMS_SHARE_BYTES];
    size_t lens[16] = {0};
    ms_seal_params ps = {.method = MS_SEAL_SHARES, .k = 3, .n = 5};
    CHECK_ERR(ms_seal_write(path, sec, &ps, shares, lens, why, sizeof why), MS_OK);
    reopen(path, &got);
    CHECK(got.method == MS_SEAL_SHARES);
    CHECK(got.k == 3 && got.n == 5);
    CHECK(got.scrypt_log2_n == 0 && got.passphrase == NULL);
    CHECK_ERR(ms_seal_write(path, sec, &got, shares, lens, why, sizeof why), MS_OK);
    reopen(path, &got);
    CHECK(got.k == 3 && got.n == 5);
    ms_wipe(shares, sizeof shares);

    /* NULL unseal: all zero */
    ms_unseal_params(NULL, &got);
    CHECK(got.method == 0 && got.k == 0 && got.module == NULL);

    ms_kms_secrets_free(sec);
    unlink(path);
    rmdir(dir);
    return ms_test_finish();
}
