/*
 * The replay cache of the Annex D servers (`kms serve`, `dist serve`): a request is
 * identified by its device and its KmsRequest Time (seconds and microseconds); the same
 * pair twice within the window is a replay. Entries older than the window are swept
 * lazily. Thread-safe.
 */
#ifndef MS_NET_REPLAY_H
#define MS_NET_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_REPLAY_WINDOW 300     /* seconds either side of now */
#define MS_REPLAY_MAX 1000000    /* remembered requests; beyond: MS_ERR_NOMEM */
#define MS_REPLAY_DEVICE_MAX 64 /* longest device ID (MS_KMS_DEVICE_ID_MAX) */

typedef struct ms_replay_cache ms_replay_cache;

ms_err ms_replay_new(ms_replay_cache **out);
void ms_replay_free(ms_replay_cache *c);
/* MS_ERR_MIKEY_TIMESTAMP: t is more than the window from now; MS_ERR_MIKEY_REPLAY:
 * (device, t, us) seen before; MS_ERR_NOMEM: the cache is full of live entries;
 * MS_OK: first time seen, now remembered. All times in seconds (NTP). */
ms_err ms_replay_check(ms_replay_cache *c, const char *device, uint64_t t, uint32_t us,
                       uint64_t now);
/* Requests remembered (for /metrics). */
size_t ms_replay_count(ms_replay_cache *c);

#endif
