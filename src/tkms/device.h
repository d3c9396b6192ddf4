/*
 * A device of a threshold KMS (src/tkms/device.c): its keystore made for threshold mode,
 * and fetching its keys from t+1 servers.
 *
 * `user threshold-init` makes an ordinary client keystore (include/mikeysakke/client.h)
 * whose enrolled "KMS certificate" is built from the community's public.txt (Z, KPAK,
 * monthly tel identifiers of RFC 6509, KMS URI "tkms-<fingerprint>" unless given), with a
 * TrK and InK the device draws for itself (no server ever knows them: they only wrap the
 * keys the device combined, so that they enter the keystore through its one import
 * path). Beside the keystore's own files the directory holds, all mode 0600:
 *   tkms-peers.txt    the peers table (the servers, their keys and TLS pins)
 *   tkms-public.txt   the community's public result
 *   tkms-hpke.key     the device's X25519 private key (hex line): shares are sealed to it
 *   tkms-sign.key     the device's Ed25519 seed (hex line): it signs the requests
 *   tkms-device.txt   the device file to enrol (tkms/enrol.h), also written to `out`
 *
 * `user fetch` on such a keystore asks the servers of the table (listed or random order)
 * over HTTPS, each pinned by its tls= value, until it holds t+1 share messages; combines
 * and validates them (ms_tkms_device_combine_msgs); a server whose share fails is named
 * and, while servers are left, replaced by the next; the keys are then imported for the
 * period (ms_keystore_import_combined), so `mikey` and `call` use them unchanged.
 */
#ifndef MS_TKMS_DEVICE_H
#define MS_TKMS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/client.h"
#include "mikeysakke/errors.h"
#include "tkms/enrol.h"

#define MS_TKMS_KS_PEERS "tkms-peers.txt"
#define MS_TKMS_KS_PUBLIC "tkms-public.txt"
#define MS_TKMS_KS_HPKE "tkms-hpke.key"
#define MS_TKMS_KS_SIGN "tkms-sign.key"
#define MS_TKMS_KS_DEVICE "tkms-device.txt"

typedef struct ms_tkms_device_init_params {
    const char *keystore;        /* directory, as ms_keystore_create */
    const char *user;
    const char *device_id;
    const char *peers_file;
    const char *public_file;
    const char *kms_uri;         /* NULL: "tkms-" and the fingerprint of Z and KPAK */
    const char *passphrase;      /* of the keystore */
    size_t passphrase_len;
    const ms_keystore_params *params;
    const char *out;             /* the device file for the operators (NULL: none) */
} ms_tkms_device_init_params;

/* Makes the keystore and the device's keys. *dev receives the device file's content.
 * Errors of ms_keystore_create, MS_ERR_CONFIG for a table and public result that do
 * not belong together, MS_ERR_ARG for a user or device id outside the rules. */
ms_err ms_tkms_device_init(const ms_tkms_device_init_params *p, ms_tkms_device *dev,
                           char *detail, size_t detail_cap);

/* Whether the keystore directory was made by ms_tkms_device_init. */
bool ms_tkms_device_is_threshold(const char *keystore);

typedef struct ms_tkms_fetch_options {
    const char *period;       /* "YYYY-MM" (NULL: the month of now, UTC) */
    bool listed_order;        /* ask servers 1..n in order (default: a random order) */
    unsigned timeout_ms;      /* per server; 0: 10 s */
    uint64_t now;             /* NTP seconds; 0: the clock */
} ms_tkms_fetch_options;

typedef struct ms_tkms_fetch_report {
    char period[33];
    uint64_t period_no;
    unsigned used[32];        /* the servers whose shares were combined */
    size_t n_used;
    unsigned asked;           /* servers asked */
    char notes[4096];         /* one line per server skipped: "server J: why" */
    char fingerprint[17];     /* first 8 octets of SHA-256(RSK || SSK || PVT), hex */
} ms_tkms_fetch_report;

/* Fetches, combines, validates and imports. MS_ERR_UNREACHABLE when fewer than t+1
 * servers gave a share (detail names every server that failed and why; when they all
 * failed alike, that error instead: MS_ERR_DEVICE_UNKNOWN not enrolled,
 * MS_ERR_THRESHOLD_SHARE wrong shares, ...); errors of the import. */
ms_err ms_tkms_device_fetch(ms_keystore *ks, const char *keystore,
                            const ms_tkms_fetch_options *opt, ms_tkms_fetch_report *rep,
                            char *detail, size_t detail_cap);

#endif
