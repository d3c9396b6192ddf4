/*
 * The group management server: groups kept in the GMS's keystore directory, one file
 * per group ("group-<16 hex of SHA-256(group)>"), sealed and replaced atomically by the
 * keystore's own envelope (AES-256-GCM under the passphrase key, name in the AAD), so a
 * GMK at rest is protected exactly like the GMS's RSK and SSK.
 *
 * Record (plain text inside the envelope):
 *   format mikeysakke-group-1
 *   group <uri>
 *   generation <n>
 *   key <gmk-id hex> <gmk hex> <rand hex> <created> <activation> <expiry>  (current first,
 *       then the previous one; NTP seconds)
 *   member <uri>  (one line each, in the order they joined)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/keystore_internal.h"
#include "crypto/rng.h"
#include "crypto/secmem.h"
#include "group/group_internal.h"
#include "util/detail.h"
#include "util/hex.h"

#define GROUP_FORMAT "mikeysakke-group-1"
#define MAX_THREADS 8

struct ms_gms {
    ms_keystore *ks;
    ms_keystore_identity id;
};

typedef struct gms_key {
    uint32_t gmk_id;
    uint8_t gmk[16];
    uint8_t rand[GROUP_RAND_BYTES];
    uint64_t created, activation, expiry;
} gms_key;

typedef struct gms_group {
    char name[GROUP_NAME_MAX + 1];
    uint64_t generation;
    size_t n_keys;
    gms_key keys[2];
    size_t n_members;
    char **members;
} gms_group;

static void group_clear(gms_group *g)
{
    for (size_t i = 0; i < g->n_members; i++)
        free(g->members[i]);
    free(g->members);
    ms_wipe(g, sizeof *g);
}

static void file_name(char out[32], const char *group)
{
    char h[17];
    group_hash_hex(h, group);
    snprintf(out, 32, "group-%s", h);
}

ms_err ms_gms_open(ms_gms **out, const char *keystore_dir, const char *passphrase,
                   size_t passphrase_len, char *detail, size_t detail_cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_gms *g = calloc(1, sizeof *g);
    if (g == NULL)
        return MS_ERR_NOMEM;
    ms_err err = ms_keystore_open(&g->ks, keystore_dir, passphrase, passphrase_len, detail,
                                  detail_cap);
    if (err == MS_OK)
        err = ms_keystore_identity_get(g->ks, &g->id);
    if (err != MS_OK) {
        ms_gms_close(g);
        return err;
    }
    *out = g;
    return MS_OK;
}

void ms_gms_close(ms_gms *gms)
{
    if (gms == NULL)
        return;
    ms_keystore_close(gms->ks);
    free(gms);
}

const char *ms_gms_uri(const ms_gms *gms)
{
    return gms != NULL ? gms->id.user_uri : "";
}

/* ---- the group file ------------------------------------------------------------------------ */

static ms_err group_write(const ms_gms *gms, const gms_group *g, char *detail, size_t cap)
{
    size_t need = 256 + g->n_keys * 160;
    for (size_t i = 0; i < g->n_members; i++)
        need += strlen(g->members[i]) + 8;
    char *buf = malloc(need);
    if (buf == NULL)
        return ms_detail_fail(MS_ERR_NOMEM, detail, cap, "group %s", g->name);
    size_t o = 0;
    o += (size_t)snprintf(buf + o, need - o, "format " GROUP_FORMAT "\ngroup %s\ngeneration %"
                          PRIu64 "\n", g->name, g->generation);
    for (size_t k = 0; k < g->n_keys; k++) {
        const gms_key *key = &g->keys[k];
        o += (size_t)snprintf(buf + o, need - o, "key %08" PRIX32 " ", key->gmk_id);
        ms_hex_encode_lower(buf + o, key->gmk, sizeof key->gmk); /* a secret: no table */
        o += 2 * sizeof key->gmk;
        buf[o++] = ' ';
        ms_hex_encode_lower(buf + o, key->rand, sizeof key->rand);
        o += 2 * sizeof key->rand;
        o += (size_t)snprintf(buf + o, need - o, " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                              key->created, key->activation, key->expiry);
    }
    for (size_t i = 0; i < g->n_members; i++)
        o += (size_t)snprintf(buf + o, need - o, "member %s\n", g->members[i]);
    char name[32];
    file_name(name, g->name);
    ms_err err = ks_write_file(gms->ks, name, (const uint8_t *)buf, o, detail, cap);
    if (err == MS_ERR_ARG)
        ms_detail_set(detail, cap, "group %s: %zu members do not fit one keystore file "
                      "(64 KiB)", g->name, g->n_members);
    ms_wipe(buf, need);
    free(buf);
    return err;
}

static ms_err parse_key(gms_key *k, const char *line, size_t len)
{
    char gmk[33], rnd[33];
    unsigned long long c, a, e;
    unsigned id;
    char copy[200];
    if (len >= sizeof copy)
        return MS_ERR_KEYSTORE;
    memcpy(copy, line, len);
    copy[len] = 0;
    int n = sscanf(copy, "%8x %32[0-9a-f] %32[0-9a-f] %llu %llu %llu", &id, gmk, rnd, &c, &a,
                   &e);
    ms_err err = MS_OK;
    if (n != 6 || strlen(gmk) != 32 || strlen(rnd) != 32 || ms_hex_decode_secret(k->gmk, 16, gmk, 32) != MS_OK ||
        ms_hex_decode_secret(k->rand, 16, rnd, 32) != MS_OK)
        err = MS_ERR_KEYSTORE;
    k->gmk_id = id;
    k->created = c;
    k->activation = a;
    k->expiry = e;
    ms_wipe(copy, sizeof copy);
    ms_wipe(gmk, sizeof gmk);
    return err;
}

static ms_err group_read(const ms_gms *gms, const char *group, gms_group *g, char *detail,
                         size_t cap)
{
    memset(g, 0, sizeof *g);
    char name[32];
    file_name(name, group);
    uint8_t *pt = NULL;
    size_t len = 0;
    ms_err err = ks_read_file(gms->ks, name, &pt, &len, detail, cap);
    if (err == MS_ERR_NO_KEYS)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "no group %s at this GMS", group);
    if (err != MS_OK)
        return err;
    char *txt = (char *)pt;
    size_t cap_members = 0;
    err = MS_OK;
    int have_format = 0;
    for (char *p = txt; p < txt + len && err == MS_OK;) {
        char *eol = memchr(p, '\n', (size_t)(txt + len - p));
        if (eol == NULL) {
            err = MS_ERR_KEYSTORE;
            break;
        }
        *eol = 0;
        if (strcmp(p, "format " GROUP_FORMAT) == 0) {
            have_format = 1;
        } else if (strncmp(p, "group ", 6) == 0) {
            if (strlen(p + 6) > GROUP_NAME_MAX)
                err = MS_ERR_KEYSTORE;
            else
                strcpy(g->name, p + 6);
        } else if (strncmp(p, "generation ", 11) == 0) {
            g->generation = strtoull(p + 11, NULL, 10);
        } else if (strncmp(p, "key ", 4) == 0) {
            if (g->n_keys == 2)
                err = MS_ERR_KEYSTORE;
            else
                err = parse_key(&g->keys[g->n_keys++], p + 4, (size_t)(eol - p - 4));
        } else if (strncmp(p, "member ", 7) == 0) {
            if (g->n_members == cap_members) {
                cap_members = cap_members ? 2 * cap_members : 16;
                char **m = realloc(g->members, cap_members * sizeof *m);
                if (m == NULL) {
                    err = MS_ERR_NOMEM;
                    break;
                }
                g->members = m;
            }
            g->members[g->n_members] = strdup(p + 7);
            if (g->members[g->n_members] == NULL)
                err = MS_ERR_NOMEM;
            else
                g->n_members++;
        } else {
            err = MS_ERR_KEYSTORE;
        }
        p = eol + 1;
    }
    ms_wipe(pt, len);
    free(pt);
    /* the file name is authenticated; the content must name the same group */
    if (err == MS_OK && (!have_format || strcmp(g->name, group) != 0 || g->n_keys == 0))
        err = MS_ERR_KEYSTORE;
    if (err != MS_OK) {
        group_clear(g);
        if (err == MS_ERR_KEYSTORE)
            ms_detail_set(detail, cap, "group %s: the group file is corrupted", group);
        return err;
    }
    return MS_OK;
}

/* ---- changes ----------------------------------------------------------------------------- */

static ms_err check_members(const char *const *members, size_t n, char *detail, size_t cap)
{
    if (n > 0 && members == NULL)
        return MS_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        if (!group_uri_ok(members[i], MS_GROUP_URI_MAX))
            return ms_detail_fail(MS_ERR_IDENTITY, detail, cap, "member %zu is not a URI of 1 "
                                  "to %d printable characters", i + 1, MS_GROUP_URI_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(members[i], members[j]) == 0)
                return ms_detail_fail(MS_ERR_ARG, detail, cap, "member %s is named twice",
                                      members[i]);
    }
    return MS_OK;
}

static long find_member(const gms_group *g, const char *uri)
{
    for (size_t i = 0; i < g->n_members; i++)
        if (strcmp(g->members[i], uri) == 0)
            return (long)i;
    return -1;
}

/* A fresh key becomes current; the old current one is kept as the previous. */
static ms_err new_key(gms_group *g, uint64_t activation_delay, uint64_t lifetime)
{
    gms_key k;
    uint8_t r4[4];
    ms_err err = ms_rng_fill(NULL, k.gmk, sizeof k.gmk);
    if (err == MS_OK)
        err = ms_rng_fill(NULL, k.rand, sizeof k.rand);
    /* GMK-ID: purpose tag 0 (GMK) in the top 4 bits, 28 random bits, never repeating the
     * key it replaces */
    do {
        if (err == MS_OK)
            err = ms_rng_fill(NULL, r4, sizeof r4);
        k.gmk_id = (((uint32_t)r4[0] << 24) | ((uint32_t)r4[1] << 16) | ((uint32_t)r4[2] << 8) |
                    r4[3]) & 0x0FFFFFFFu;
    } while (err == MS_OK && (k.gmk_id == 0 || (g->n_keys > 0 && k.gmk_id == g->keys[0].gmk_id)));
    if (err != MS_OK) {
        ms_wipe(&k, sizeof k);
        return err;
    }
    uint64_t now = ms_ntp_now() >> 32;
    k.created = now;
    k.activation = now + activation_delay;
    k.expiry = k.activation + (lifetime ? lifetime : GROUP_DEFAULT_LIFETIME);
    if (g->n_keys > 0)
        g->keys[1] = g->keys[0];
    g->keys[0] = k;
    g->n_keys = g->n_keys > 0 ? 2 : 1;
    ms_wipe(&k, sizeof k);
    return MS_OK;
}

static ms_err check_group_name(const char *group, char *detail, size_t cap)
{
    if (!group_uri_ok(group, GROUP_NAME_MAX))
        return ms_detail_fail(MS_ERR_IDENTITY, detail, cap, "the group name must be 1 to %d "
                              "printable characters without spaces", GROUP_NAME_MAX);
    return MS_OK;
}

static ms_err push_member(gms_group *g, const char *uri)
{
    char **m = realloc(g->members, (g->n_members + 1) * sizeof *m);
    if (m == NULL)
        return MS_ERR_NOMEM;
    g->members = m;
    if ((m[g->n_members] = strdup(uri)) == NULL)
        return MS_ERR_NOMEM;
    g->n_members++;
    return MS_OK;
}

ms_err ms_gms_create(ms_gms *gms, const char *group, const char *const *members,
                     size_t n_members, uint64_t activation_delay, uint64_t lifetime,
                     char *detail, size_t detail_cap)
{
    if (gms == NULL || group == NULL)
        return MS_ERR_ARG;
    ms_err err;
    if ((err = check_group_name(group, detail, detail_cap)) != MS_OK ||
        (err = check_members(members, n_members, detail, detail_cap)) != MS_OK)
        return err;
    if (n_members == 0 || n_members > MS_GROUP_MAX_MEMBERS)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "a group has 1 to %d members",
                              MS_GROUP_MAX_MEMBERS);
    if ((err = ks_lock(gms->ks, detail, detail_cap)) != MS_OK)
        return err;
    gms_group g;
    err = group_read(gms, group, &g, detail, detail_cap);
    if (err != MS_ERR_GROUP) {
        /* a group file that cannot be read is not replaced either */
        if (err == MS_OK) {
            group_clear(&g);
            err = ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap, "group %s exists already",
                                 group);
        }
        ks_unlock(gms->ks);
        return err;
    }
    ms_detail_set(detail, detail_cap, "%s", "");
    err = MS_OK;
    memset(&g, 0, sizeof g);
    strcpy(g.name, group);
    g.generation = 1;
    for (size_t i = 0; i < n_members && err == MS_OK; i++)
        err = push_member(&g, members[i]);
    if (err == MS_OK)
        err = new_key(&g, activation_delay, lifetime);
    if (err == MS_OK)
        err = group_write(gms, &g, detail, detail_cap);
    group_clear(&g);
    ks_unlock(gms->ks);
    return err;
}

/* Read, change, write under the keystore's writer lock. */
typedef ms_err (*change_fn)(gms_group *g, const void *arg, char *detail, size_t cap);

static ms_err change(ms_gms *gms, const char *group, change_fn fn, const void *arg, char *detail,
                     size_t cap)
{
    if (gms == NULL || group == NULL)
        return MS_ERR_ARG;
    ms_err err = check_group_name(group, detail, cap);
    if (err != MS_OK || (err = ks_lock(gms->ks, detail, cap)) != MS_OK)
        return err;
    gms_group g;
    if ((err = group_read(gms, group, &g, detail, cap)) == MS_OK) {
        err = fn(&g, arg, detail, cap);
        if (err == MS_OK) {
            g.generation++;
            err = group_write(gms, &g, detail, cap);
        }
        group_clear(&g);
    }
    ks_unlock(gms->ks);
    return err;
}

typedef struct change_args {
    const char *const *members;
    size_t n;
    uint64_t delay, lifetime;
} change_args;

static ms_err do_add(gms_group *g, const void *arg, char *detail, size_t cap)
{
    const change_args *a = arg;
    if (g->n_members + a->n > MS_GROUP_MAX_MEMBERS)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "a group has at most %d members",
                              MS_GROUP_MAX_MEMBERS);
    for (size_t i = 0; i < a->n; i++)
        if (find_member(g, a->members[i]) >= 0)
            return ms_detail_fail(MS_ERR_EXISTS, detail, cap, "%s is a member of %s already",
                                  a->members[i], g->name);
    for (size_t i = 0; i < a->n; i++)
        if (push_member(g, a->members[i]) != MS_OK)
            return MS_ERR_NOMEM;
    return MS_OK;
}

static ms_err do_remove(gms_group *g, const void *arg, char *detail, size_t cap)
{
    const change_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        long at = find_member(g, a->members[i]);
        if (at < 0)
            return ms_detail_fail(MS_ERR_GROUP, detail, cap, "%s is not a member of %s",
                                  a->members[i], g->name);
        free(g->members[at]);
        memmove(&g->members[at], &g->members[at + 1],
                (g->n_members - (size_t)at - 1) * sizeof g->members[0]);
        g->n_members--;
    }
    if (g->n_members == 0)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "removing every member would leave %s "
                              "empty", g->name);
    /* whoever left must not read what is sent from now on */
    return new_key(g, a->delay, a->lifetime);
}

static ms_err do_rekey(gms_group *g, const void *arg, char *detail, size_t cap)
{
    const change_args *a = arg;
    (void)detail;
    (void)cap;
    return new_key(g, a->delay, a->lifetime);
}

ms_err ms_gms_add(ms_gms *gms, const char *group, const char *const *members, size_t n_members,
                  char *detail, size_t detail_cap)
{
    ms_err err = check_members(members, n_members, detail, detail_cap);
    if (err != MS_OK)
        return err;
    if (n_members == 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no member to add");
    change_args a = {members, n_members, 0, 0};
    return change(gms, group, do_add, &a, detail, detail_cap);
}

ms_err ms_gms_remove(ms_gms *gms, const char *group, const char *const *members,
                     size_t n_members, uint64_t activation_delay, uint64_t lifetime,
                     char *detail, size_t detail_cap)
{
    ms_err err = check_members(members, n_members, detail, detail_cap);
    if (err != MS_OK)
        return err;
    if (n_members == 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "no member to remove");
    change_args a = {members, n_members, activation_delay, lifetime};
    return change(gms, group, do_remove, &a, detail, detail_cap);
}

ms_err ms_gms_rekey(ms_gms *gms, const char *group, uint64_t activation_delay,
                    uint64_t lifetime, char *detail, size_t detail_cap)
{
    change_args a = {NULL, 0, activation_delay, lifetime};
    return change(gms, group, do_rekey, &a, detail, detail_cap);
}

ms_err ms_gms_show(ms_gms *gms, ms_gms_group_info *info, char **members, const char *group,
                   char *detail, size_t detail_cap) {
    if (members != NULL)
        *members = NULL;
    if (gms == NULL || group == NULL || info == NULL)
        return MS_ERR_ARG;
    memset(info, 0, sizeof *info);
    ms_err err = check_group_name(group, detail, detail_cap);
    gms_group g;
    if (err != MS_OK || (err = group_read(gms, group, &g, detail, detail_cap)) != MS_OK)
        return err;
    strcpy(info->group, g.name);
    info->generation = g.generation;
    info->n_members = g.n_members;
    info->n_keys = g.n_keys;
    for (size_t k = 0; k < g.n_keys; k++)
        info->keys[k] = (ms_gms_key_info){g.keys[k].gmk_id, g.keys[k].created,
                                          g.keys[k].activation, g.keys[k].expiry};
    if (members != NULL) {
        size_t need = 1;
        for (size_t i = 0; i < g.n_members; i++)
            need += strlen(g.members[i]) + 1;
        char *m = malloc(need);
        if (m == NULL) {
            err = MS_ERR_NOMEM;
        } else {
            size_t o = 0;
            for (size_t i = 0; i < g.n_members; i++)
                o += (size_t)sprintf(m + o, "%s\n", g.members[i]);
            m[o] = 0;
            *members = m;
        }
    }
    group_clear(&g);
    return err;
}

/* ---- delivery ----------------------------------------------------------------------------- */

void ms_group_deliveries_free(ms_group_delivery *d, size_t n)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(d[i].body);
    free(d);
}

static unsigned thread_count(unsigned threads, size_t n)
{
    if (threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    /* a context costs its key loading: not worth it for a handful of messages */
    size_t useful = (n + 15) / 16;
    if (threads > useful)
        threads = useful > 0 ? (unsigned)useful : 1;
    return threads;
}

ms_err ms_gms_deliveries(ms_gms *gms, ms_group_delivery **out, size_t *n_out, const char *group,
                         unsigned threads, char *detail, size_t detail_cap) {
    if (out == NULL || n_out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    *n_out = 0;
    if (gms == NULL || group == NULL)
        return MS_ERR_ARG;
    ms_err err = check_group_name(group, detail, detail_cap);
    gms_group g;
    if (err != MS_OK || (err = group_read(gms, group, &g, detail, detail_cap)) != MS_OK)
        return err;

    const size_t n = g.n_members;
    const unsigned nt = thread_count(threads, n);
    ms_mikey_ctx *ctxs[MAX_THREADS] = {0};
    uint8_t **msgs = calloc(n, sizeof *msgs);
    size_t *lens = calloc(n, sizeof *lens);
    ms_group_delivery *d = calloc(n, sizeof *d);
    char *roster = NULL;
    size_t roster_len = 0;
    group_key_spec spec;
    memset(&spec, 0, sizeof spec);
    if (msgs == NULL || lens == NULL || d == NULL) {
        err = MS_ERR_NOMEM;
        goto out;
    }
    ms_mikey_config cfg = {.profile = MS_MIKEY_PROFILE_GMK, .own_uri = gms->id.user_uri};
    for (unsigned t = 0; t < nt && err == MS_OK; t++) {
        err = ms_mikey_ctx_new(&ctxs[t], &cfg);
        if (err == MS_OK)
            err = ms_keystore_load_mikey(gms->ks, ctxs[t], NULL, 0, detail, detail_cap);
    }
    if (err != MS_OK)
        goto out;

    const gms_key *k = &g.keys[0];
    memcpy(spec.gmk, k->gmk, sizeof spec.gmk);
    spec.gmk_id = k->gmk_id;
    memcpy(spec.rand, k->rand, sizeof spec.rand);
    spec.activation = k->activation;
    spec.expiry = k->expiry;

    group_roster r;
    memset(&r, 0, sizeof r);
    strcpy(r.group, g.name);
    snprintf(r.gms, sizeof r.gms, "%s", gms->id.user_uri);
    r.gmk_id = k->gmk_id;
    r.generation = g.generation;
    r.activation = k->activation;
    r.expiry = k->expiry;
    r.issued = ms_ntp_now() >> 32;
    if ((err = group_roster_sign(&roster, &roster_len, gms->ks, &r,
                                 (const char *const *)g.members, n, detail, detail_cap)) != MS_OK)
        goto out;

    long failed = -1;
    err = group_build_messages(ctxs, nt, &spec, (const char *const *)g.members, n, msgs, lens,
                               &failed);
    if (err != MS_OK) {
        ms_detail_set(detail, detail_cap, "the GMK I_MESSAGE to %s could not be built",
                      failed >= 0 ? g.members[failed] : "a member");
        goto out;
    }
    /* a boundary that the binary I_MESSAGE is most unlikely to contain */
    uint8_t rb[12];
    char boundary[40];
    if ((err = ms_rng_fill(NULL, rb, sizeof rb)) != MS_OK)
        goto out;
    static const char prefix[] = "ms-group-";
    memcpy(boundary, prefix, sizeof prefix - 1);
    ms_hex_encode_lower(boundary + sizeof prefix - 1, rb, sizeof rb);
    for (size_t i = 0; i < n && err == MS_OK; i++) {
        snprintf(d[i].member, sizeof d[i].member, "%s", g.members[i]);
        err = group_body_build(&d[i].body, &d[i].body_len, d[i].content_type,
                               sizeof d[i].content_type, boundary, msgs[i], lens[i], roster,
                               roster_len);
    }
out:
    for (unsigned t = 0; t < MAX_THREADS; t++)
        ms_mikey_ctx_free(ctxs[t]);
    if (msgs != NULL)
        for (size_t i = 0; i < n; i++)
            free(msgs[i]);
    free(msgs);
    free(lens);
    free(roster);
    ms_wipe(&spec, sizeof spec);
    group_clear(&g);
    if (err != MS_OK) {
        ms_group_deliveries_free(d, n);
        return err;
    }
    *out = d;
    *n_out = n;
    return MS_OK;
}
