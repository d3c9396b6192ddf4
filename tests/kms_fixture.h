/*
 * What the tests that make a KMS share (tests/kms, tests/dist): role keys, a KMS sealed
 * under a passphrase with cheap scrypt, and a scratch folder.
 */
#ifndef MS_TEST_KMS_FIXTURE_H
#define MS_TEST_KMS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/roles.h"
#include "mikeysakke/kms.h"

#define MS_TEST_ROLES 8

/* Role keys of a test KMS: [0] the operator, [1 .. n_officers] the officers, then the
 * auditors. Made on first use. */
typedef struct ms_test_roles {
    uint8_t seed[MS_TEST_ROLES][MS_ROLE_KEY_BYTES];
    uint8_t pub[MS_TEST_ROLES][MS_ROLE_KEY_BYTES];
    bool made;
} ms_test_roles;

/* Makes the keys if needed and points cfg at them (cfg->n_officers 0 means 2;
 * cfg->n_auditors as the test sets it). */
void ms_test_kms_roles(ms_kms_config *cfg, ms_test_roles *roles);

/* ms_kms_create in dir under passphrase pass (scrypt N = 2^10), after
 * ms_test_kms_roles; the custodian handout goes to handout (wiped and dropped if NULL). */
void ms_test_kms_create(const char *dir, ms_kms_config *cfg, ms_test_roles *roles,
                        const uint8_t *pass, size_t pass_len, ms_kms_handout *handout);

/* A fresh folder /tmp/ms-test-NAME-XXXXXX in root (cap >= 64); false if none could be
 * made (the reason printed). */
bool ms_test_tmpdir(char *root, size_t cap, const char *name);
/* Removes root and everything below it. */
void ms_test_rmtree(const char *root);

#endif
