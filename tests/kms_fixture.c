/* See kms_fixture.h. */
#include "kms_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/crypto.h"
#include "testutil.h"

void ms_test_kms_roles(ms_kms_config *cfg, ms_test_roles *roles)
{
    if (!roles->made) {
        for (int i = 0; i < MS_TEST_ROLES; i++)
            CHECK_ERR(ms_role_keygen(roles->seed[i], roles->pub[i], NULL), MS_OK);
        roles->made = true;
    }
    if (cfg->n_officers == 0)
        cfg->n_officers = 2;
    cfg->operator_key = roles->pub[0];
    cfg->officer_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])roles->pub[1];
    cfg->auditor_keys = (const uint8_t(*)[MS_KMS_ROLE_KEY_BYTES])roles->pub[1 + cfg->n_officers];
}

void ms_test_kms_create(const char *dir, ms_kms_config *cfg, ms_test_roles *roles,
                        const uint8_t *pass, size_t pass_len, ms_kms_handout *handout)
{
    ms_test_kms_roles(cfg, roles);
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_PASSPHRASE,
                              .passphrase = pass,
                              .passphrase_len = pass_len,
                              .scrypt_log2_n = 10};
    ms_kms_handout *h = handout != NULL ? handout : calloc(1, sizeof *h);
    CHECK(h != NULL);
    if (h == NULL)
        return;
    CHECK_ERR(ms_kms_create(h, dir, cfg, &m, NULL, NULL, 0), MS_OK);
    if (handout == NULL) {
        ms_wipe(h, sizeof *h);
        free(h);
    }
}

bool ms_test_tmpdir(char *root, size_t cap, const char *name)
{
    snprintf(root, cap, "/tmp/ms-test-%s-XXXXXX", name);
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return false;
    }
    return true;
}

void ms_test_rmtree(const char *root)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}
