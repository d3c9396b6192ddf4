/*
 * The settings MAC (src/kms/settings.c): the rows of kms.db's `settings` table (quorum,
 * auditor and role keys, seal parameters, certificates...) are authenticated with an
 * HMAC-SHA-256 whose key only the unsealed master secrets give, so whoever can write the
 * KMS directory but has not unsealed cannot change them unnoticed. Every row is covered
 * except the few that change at run time by design (the audit head) and the MAC row
 * itself: new rows (of any name) are covered without being listed here.
 *
 * The MAC row holds "v1 <MAC> <row tags>": the MAC over all rows decides; the per-row
 * tags (also keyed) only name which row differs in the refusal.
 */
#ifndef MS_KMS_SETTINGS_H
#define MS_KMS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include "kms/seal.h"
#include "kms/store.h"

#define MS_SETTINGS_MAC_ROW "settings_mac"

/* Whether the row `key` is outside the MAC (it changes at run time by design). */
bool ms_settings_row_volatile(const char *key);

/* Computes the MAC of the settings as stored now and writes the MAC row. Call it only
 * right after a legitimate change made while unsealed (kms init, rollover), in the
 * same transaction if there is one. */
ms_err ms_settings_mac_write(ms_store *st, const ms_kms_secrets *s);

/* Checks the stored settings against the MAC row. MS_OK: they match (*missing false),
 * or there is no MAC row at all (*missing true: a KMS made before the MAC existed).
 * MS_ERR_SETTINGS_CHANGED: they differ; detail names the rows added, removed or
 * changed when the row tags tell, else says that the MAC does not match.
 * MS_ERR_STORE when the store cannot be read. */
ms_err ms_settings_mac_check(ms_store *st, const ms_kms_secrets *s, bool *missing,
                             char *detail, size_t cap);

/* A short description of the authenticated rows for the audit log: each key with its
 * value when short and printable, else the first 16 hex digits of its SHA-256
 * ("approvals=2 auditor_1=sha256:1A2B..."), cut at cap. */
ms_err ms_settings_describe(ms_store *st, char *out, size_t cap);

#endif
