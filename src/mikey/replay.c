/*
 * Replay cache: (timestamp, digest) of authenticated messages inside the timestamp
 * window. Bounded in memory; when full, the oldest entry is evicted and its timestamp
 * becomes a floor at or below which every message counts as a replay, so eviction can
 * never let a replay through (it may refuse an old, unseen message instead).
 *
 * A flat array with linear scans: at the default 4096 entries a scan is a few
 * microseconds, small next to the signature check that precedes every add.
 */
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"

#define REPLAY_MAX_CAPACITY (1u << 20)

typedef struct replay_entry {
    uint64_t timestamp;
    uint8_t digest[32];
} replay_entry;

struct ms_replay_cache {
    replay_entry *entries;
    size_t n;
    size_t capacity;
    bool has_floor;
    uint64_t floor; /* with has_floor: timestamps <= floor are replays */
};

ms_err ms_replay_cache_new(ms_replay_cache **out, size_t capacity)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (capacity == 0 || capacity > REPLAY_MAX_CAPACITY)
        return MS_ERR_ARG;
    ms_replay_cache *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return MS_ERR_NOMEM;
    rc->entries = calloc(capacity, sizeof *rc->entries);
    if (rc->entries == NULL) {
        free(rc);
        return MS_ERR_NOMEM;
    }
    rc->capacity = capacity;
    *out = rc;
    return MS_OK;
}

void ms_replay_cache_free(ms_replay_cache *rc)
{
    if (rc == NULL)
        return;
    free(rc->entries);
    free(rc);
}

static bool seen(const ms_replay_cache *rc, uint64_t timestamp, const uint8_t digest[32])
{
    if (rc->has_floor && timestamp <= rc->floor)
        return true;
    for (size_t i = 0; i < rc->n; i++)
        if (rc->entries[i].timestamp == timestamp &&
            memcmp(rc->entries[i].digest, digest, 32) == 0)
            return true;
    return false;
}

ms_err ms_replay_cache_check(const ms_replay_cache *rc, uint64_t timestamp,
                             const uint8_t digest[32])
{
    if (rc == NULL || digest == NULL)
        return MS_ERR_ARG;
    return seen(rc, timestamp, digest) ? MS_ERR_MIKEY_REPLAY : MS_OK;
}

ms_err ms_replay_cache_add(ms_replay_cache *rc, uint64_t timestamp, const uint8_t digest[32],
                           uint64_t expire_before)
{
    if (rc == NULL || digest == NULL)
        return MS_ERR_ARG;
    /* Drop what left the window (order is not kept: swap with the last). */
    for (size_t i = 0; i < rc->n;) {
        if (rc->entries[i].timestamp < expire_before)
            rc->entries[i] = rc->entries[--rc->n];
        else
            i++;
    }
    /* Recording the same message twice would only waste a slot; a caller that adds
     * without checking first learns that it was a replay. */
    if (seen(rc, timestamp, digest))
        return MS_ERR_MIKEY_REPLAY;
    if (timestamp < expire_before)
        return MS_OK; /* already outside the window: it would be dropped at once */
    if (rc->n == rc->capacity) {
        size_t oldest = 0;
        for (size_t i = 1; i < rc->n; i++)
            if (rc->entries[i].timestamp < rc->entries[oldest].timestamp)
                oldest = i;
        uint64_t ts = rc->entries[oldest].timestamp;
        if (!rc->has_floor || ts > rc->floor)
            rc->floor = ts;
        rc->has_floor = true;
        rc->entries[oldest] = rc->entries[--rc->n];
        /* The new message may itself be at or below the raised floor: it is then
         * covered by the floor and needs no slot. */
        if (timestamp <= rc->floor)
            return MS_OK;
    }
    rc->entries[rc->n].timestamp = timestamp;
    memcpy(rc->entries[rc->n].digest, digest, 32);
    rc->n++;
    return MS_OK;
}
