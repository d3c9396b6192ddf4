/*
 * The Annex D request replay cache (replay.h): hash buckets of (device, time, us),
 * each bucket swept of expired entries when it is touched, all of them when the cache
 * is full.
 */
#include "net/replay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_BUCKETS 65536

typedef struct replay_node {
    struct replay_node *next;
    uint64_t time;
    uint32_t us;
    char device[MS_REPLAY_DEVICE_MAX + 1];
} replay_node;

struct ms_replay_cache {
    pthread_mutex_t lock;
    replay_node **buckets;
    size_t n;
};

ms_err ms_replay_new(ms_replay_cache **out)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_replay_cache *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MS_ERR_NOMEM;
    c->buckets = calloc(REPLAY_BUCKETS, sizeof *c->buckets);
    if (c->buckets == NULL) {
        free(c);
        return MS_ERR_NOMEM;
    }
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return MS_OK;
}

void ms_replay_free(ms_replay_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < REPLAY_BUCKETS; i++) {
        replay_node *n = c->buckets[i];
        while (n != NULL) {
            replay_node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static size_t replay_hash(const char *device, uint64_t t, uint32_t us)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a: the key is not secret */
    for (const char *p = device; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((t >> (8 * i)) & 0xff)) * 1099511628211ull;
    for (int i = 0; i < 4; i++)
        h = (h ^ ((us >> (8 * i)) & 0xff)) * 1099511628211ull;
    return (size_t)(h % REPLAY_BUCKETS);
}

static void sweep_bucket(ms_replay_cache *c, size_t b, uint64_t now)
{
    replay_node **pp = &c->buckets[b];
    while (*pp != NULL) {
        if ((*pp)->time + MS_REPLAY_WINDOW < now) {
            replay_node *dead = *pp;
            *pp = dead->next;
            free(dead);
            c->n--;
        } else {
            pp = &(*pp)->next;
        }
    }
}

ms_err ms_replay_check(ms_replay_cache *c, const char *device, uint64_t t, uint32_t us,
                       uint64_t now)
{
    if (c == NULL || device == NULL || strlen(device) > MS_REPLAY_DEVICE_MAX)
        return MS_ERR_ARG;
    if (t + MS_REPLAY_WINDOW < now || t > now + MS_REPLAY_WINDOW)
        return MS_ERR_MIKEY_TIMESTAMP;
    size_t b = replay_hash(device, t, us);
    ms_err e = MS_OK;
    pthread_mutex_lock(&c->lock);
    sweep_bucket(c, b, now);
    for (replay_node *n = c->buckets[b]; n != NULL; n = n->next)
        if (n->time == t && n->us == us && strcmp(n->device, device) == 0) {
            e = MS_ERR_MIKEY_REPLAY;
            break;
        }
    if (e == MS_OK && c->n >= MS_REPLAY_MAX)
        for (size_t i = 0; i < REPLAY_BUCKETS; i++)
            sweep_bucket(c, i, now);
    if (e == MS_OK && c->n >= MS_REPLAY_MAX)
        e = MS_ERR_NOMEM;
    if (e == MS_OK) {
        replay_node *n = malloc(sizeof *n);
        if (n == NULL) {
            e = MS_ERR_NOMEM;
        } else {
            n->time = t;
            n->us = us;
            snprintf(n->device, sizeof n->device, "%s", device);
            n->next = c->buckets[b];
            c->buckets[b] = n;
            c->n++;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

size_t ms_replay_count(ms_replay_cache *c)
{
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}
