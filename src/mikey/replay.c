/*
 * Replay cache: (sender, timestamp, digest) of authenticated messages inside the
 * timestamp window. Bounded in memory, and bounded per sender so that one sender
 * cannot push out what others sent:
 *   - a sender holding per_sender entries makes room by evicting its own oldest one;
 *   - when the whole cache is full, the oldest entry of the sender holding the most
 *     entries is evicted.
 * An eviction raises that sender's floor: its messages at or below the floor count as
 * replays, so eviction never lets a replay through (it may refuse an old, unseen message
 * of the same sender instead). Other senders keep their entries and their floors, so a
 * flood of valid messages from one member only ever costs that member.
 * Only when every held entry belongs to a different sender (capacity distinct senders
 * inside one window) does the cache fall back to one floor for everybody.
 *
 * A sender's floor is never above one of its held entries (evictions take its oldest,
 * newer adds at or below the floor are refused), so when its last entry leaves the
 * window the floor has left it too and the sender is forgotten.
 *
 * Flat arrays with linear scans: at the default 4096 entries a scan is a few
 * microseconds, small next to the signature check that precedes every add.
 */
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"

#define REPLAY_MAX_CAPACITY (1u << 20)

typedef struct replay_entry {
    uint64_t timestamp;
    uint8_t sender[32];
    uint8_t digest[32];
} replay_entry;

typedef struct replay_sender {
    uint8_t sender[32];
    size_t count;   /* entries held, >= 1 */
    bool has_floor;
    uint64_t floor; /* with has_floor: this sender's timestamps <= floor are replays */
} replay_sender;

struct ms_replay_cache {
    replay_entry *entries;
    size_t n;
    size_t capacity;
    size_t per_sender;
    replay_sender *senders; /* every sender with at least one entry: n_senders <= n */
    size_t n_senders;
    bool has_floor;
    uint64_t floor; /* with has_floor: everybody's timestamps <= floor are replays */
};

ms_err ms_replay_cache_new(ms_replay_cache **out, size_t capacity, size_t per_sender)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (capacity == 0 || capacity > REPLAY_MAX_CAPACITY || per_sender == 0 ||
        per_sender > capacity)
        return MS_ERR_ARG;
    ms_replay_cache *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return MS_ERR_NOMEM;
    rc->entries = calloc(capacity, sizeof *rc->entries);
    rc->senders = calloc(capacity, sizeof *rc->senders);
    if (rc->entries == NULL || rc->senders == NULL) {
        ms_replay_cache_free(rc);
        return MS_ERR_NOMEM;
    }
    rc->capacity = capacity;
    rc->per_sender = per_sender;
    *out = rc;
    return MS_OK;
}

void ms_replay_cache_free(ms_replay_cache *rc)
{
    if (rc == NULL)
        return;
    free(rc->entries);
    free(rc->senders);
    free(rc);
}

static replay_sender *find_sender(const ms_replay_cache *rc, const uint8_t sender[32])
{
    for (size_t i = 0; i < rc->n_senders; i++)
        if (memcmp(rc->senders[i].sender, sender, 32) == 0)
            return &rc->senders[i];
    return NULL;
}

static void raise_floor(bool *has_floor, uint64_t *floor, uint64_t timestamp)
{
    if (!*has_floor || timestamp > *floor)
        *floor = timestamp;
    *has_floor = true;
}

/* Remove entry i; a sender left without entries is forgotten (see the top comment). */
static void remove_entry(ms_replay_cache *rc, size_t i)
{
    replay_sender *s = find_sender(rc, rc->entries[i].sender);
    if (s != NULL && --s->count == 0)
        *s = rc->senders[--rc->n_senders];
    rc->entries[i] = rc->entries[--rc->n];
}

/* Index of the oldest entry of `sender` (NULL: of anybody); n when there is none. */
static size_t oldest_of(const ms_replay_cache *rc, const uint8_t *sender)
{
    size_t oldest = rc->n;
    for (size_t i = 0; i < rc->n; i++)
        if ((sender == NULL || memcmp(rc->entries[i].sender, sender, 32) == 0) &&
            (oldest == rc->n || rc->entries[i].timestamp < rc->entries[oldest].timestamp))
            oldest = i;
    return oldest;
}

static bool seen(const ms_replay_cache *rc, const uint8_t *sender, uint64_t timestamp,
                 const uint8_t digest[32])
{
    if (rc->has_floor && timestamp <= rc->floor)
        return true;
    if (sender != NULL) {
        const replay_sender *s = find_sender(rc, sender);
        if (s != NULL && s->has_floor && timestamp <= s->floor)
            return true;
    }
    for (size_t i = 0; i < rc->n; i++)
        if (rc->entries[i].timestamp == timestamp &&
            memcmp(rc->entries[i].digest, digest, 32) == 0 &&
            (sender == NULL || memcmp(rc->entries[i].sender, sender, 32) == 0))
            return true;
    return false;
}

ms_err ms_replay_cache_check(const ms_replay_cache *rc, const uint8_t *sender,
                             uint64_t timestamp, const uint8_t digest[32])
{
    if (rc == NULL || digest == NULL)
        return MS_ERR_ARG;
    return seen(rc, sender, timestamp, digest) ? MS_ERR_MIKEY_REPLAY : MS_OK;
}

/* The new message is no newer than the oldest entry its eviction would free: instead of
 * evicting, the floor rises to the new message, which then needs no slot. */
static bool covered_by_floor(bool *has_floor, uint64_t *floor, uint64_t timestamp,
                             uint64_t oldest)
{
    if (timestamp > oldest)
        return false;
    raise_floor(has_floor, floor, timestamp);
    return true;
}

ms_err ms_replay_cache_add(ms_replay_cache *rc, const uint8_t sender[32], uint64_t timestamp,
                           const uint8_t digest[32], uint64_t expire_before)
{
    if (rc == NULL || sender == NULL || digest == NULL)
        return MS_ERR_ARG;
    /* Drop what left the window (order is not kept: swap with the last). */
    for (size_t i = 0; i < rc->n;) {
        if (rc->entries[i].timestamp < expire_before)
            remove_entry(rc, i);
        else
            i++;
    }
    /* Recording the same message twice would only waste a slot; a caller that adds
     * without checking first learns that it was a replay. */
    if (seen(rc, sender, timestamp, digest))
        return MS_ERR_MIKEY_REPLAY;
    if (timestamp < expire_before)
        return MS_OK; /* already outside the window: it would be dropped at once */

    replay_sender *own = find_sender(rc, sender);
    replay_entry *slot = NULL;
    if (own != NULL && own->count >= rc->per_sender) {
        /* At its quota: the sender's own oldest entry makes room, in place. */
        slot = &rc->entries[oldest_of(rc, sender)];
        if (covered_by_floor(&own->has_floor, &own->floor, timestamp, slot->timestamp))
            return MS_OK;
        raise_floor(&own->has_floor, &own->floor, slot->timestamp);
    } else if (rc->n == rc->capacity) {
        /* Ties go to the lowest sender octets, so the choice does not depend on the
         * order of arrival. */
        replay_sender *largest = &rc->senders[0];
        for (size_t i = 1; i < rc->n_senders; i++)
            if (rc->senders[i].count > largest->count ||
                (rc->senders[i].count == largest->count &&
                 memcmp(rc->senders[i].sender, largest->sender, 32) < 0))
                largest = &rc->senders[i];
        if (largest->count >= 2) {
            /* The sender holding the most pays; it keeps at least one entry. */
            const size_t i = oldest_of(rc, largest->sender);
            if (largest == own && covered_by_floor(&own->has_floor, &own->floor, timestamp,
                                                   rc->entries[i].timestamp))
                return MS_OK;
            raise_floor(&largest->has_floor, &largest->floor, rc->entries[i].timestamp);
            remove_entry(rc, i);
        } else {
            /* Every held entry is another sender's only one: a sender cannot give its
             * last entry up and keep its floor, so only a common floor is left. */
            const size_t i = oldest_of(rc, NULL);
            if (covered_by_floor(&rc->has_floor, &rc->floor, timestamp,
                                 rc->entries[i].timestamp))
                return MS_OK;
            raise_floor(&rc->has_floor, &rc->floor, rc->entries[i].timestamp);
            remove_entry(rc, i);
            own = find_sender(rc, sender); /* it may have been that entry's sender */
        }
    }
    if (slot == NULL) {
        if (own == NULL) {
            own = &rc->senders[rc->n_senders++];
            memset(own, 0, sizeof *own);
            memcpy(own->sender, sender, 32);
        }
        own->count++;
        slot = &rc->entries[rc->n++];
        memcpy(slot->sender, sender, 32);
    }
    slot->timestamp = timestamp;
    memcpy(slot->digest, digest, 32);
    return MS_OK;
}
