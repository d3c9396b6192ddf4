/*
 * The member side: check what the GMS sent (the GMK I_MESSAGE, then the roster signed by
 * the same GMS for the same key) and keep it in the member's keystore, sealed like the
 * key sets:
 *   gkey-<16 hex of SHA-256(group)>-<GMK-ID>   one group key (ms_group_key's fields)
 *   groster-<16 hex>                           the last roster accepted, as signed
 * The two newest keys of a group are kept (the current one and the one it replaces, for
 * media still under way at the switch).
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/keystore_internal.h"
#include "crypto/secmem.h"
#include "group/group_internal.h"
#include "util/detail.h"

#define KEY_FORMAT "mikeysakke-group-key-1"
#define REC_CAP 2048

struct ms_group_member {
    ms_keystore *ks;
    ms_keystore_identity id;
    ms_mikey_ctx *ctx;
};

ms_err ms_group_member_open(ms_group_member **out, ms_keystore *ks, char *detail,
                            size_t detail_cap)
{
    if (out == NULL || ks == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    ms_group_member *m = calloc(1, sizeof *m);
    if (m == NULL)
        return MS_ERR_NOMEM;
    m->ks = ks;
    ms_err err = ms_keystore_identity_get(ks, &m->id);
    ms_mikey_config cfg = {.profile = MS_MIKEY_PROFILE_GMK, .own_uri = m->id.user_uri,
                           .prepare = true};
    if (err == MS_OK)
        err = ms_mikey_ctx_new(&m->ctx, &cfg);
    if (err == MS_OK)
        err = ms_keystore_load_mikey(ks, m->ctx, NULL, 0, detail, detail_cap);
    if (err != MS_OK) {
        ms_group_member_close(m);
        return err;
    }
    *out = m;
    return MS_OK;
}

void ms_group_member_close(ms_group_member *m)
{
    if (m == NULL)
        return;
    ms_mikey_ctx_free(m->ctx);
    free(m);
}

void ms_group_received_free(ms_group_received *r)
{
    if (r == NULL)
        return;
    free(r->members);
    r->members = NULL;
}

/* ---- stored keys ------------------------------------------------------------------------ */

static void key_name(char out[48], const char *group, uint32_t gmk_id)
{
    char h[17];
    group_hash_hex(h, group);
    snprintf(out, 48, "gkey-%s-%08" PRIX32, h, gmk_id);
}

static void roster_name(char out[48], const char *group)
{
    char h[17];
    group_hash_hex(h, group);
    snprintf(out, 48, "groster-%s", h);
}

static ms_err key_write(const ms_keystore *ks, const ms_group_key *k, uint64_t generation,
                        const char *gms, char *detail, size_t cap)
{
    char *mem = ms_secure_alloc(REC_CAP);
    if (mem == NULL)
        return ms_detail_fail(MS_ERR_NOMEM, detail, cap, "group key");
    ks_buf b;
    ks_buf_init(&b, mem, REC_CAP);
    ks_put_str(&b, "format", KEY_FORMAT);
    ks_put_str(&b, "group", k->group);
    ks_put_str(&b, "gms", gms);
    ks_put_u64(&b, "gmk-id", k->gmk_id);
    ks_put_hex(&b, "gmk", k->gmk, k->gmk_len);
    ks_put_hex(&b, "rand", k->rand, k->rand_len);
    ks_put_u64(&b, "prf", k->prf);
    ks_put_u64(&b, "cs-id", k->cs_id);
    ks_put_u64(&b, "activation", k->activation);
    ks_put_u64(&b, "expiry", k->expiry);
    ks_put_u64(&b, "generation", generation);
    char name[48];
    key_name(name, k->group, k->gmk_id);
    ms_err err = b.failed ? ms_detail_fail(MS_ERR_ARG, detail, cap, "group key: a value is "
                                           "too long")
                          : ks_write_file(ks, name, (const uint8_t *)mem, b.len, detail, cap);
    ms_secure_free(mem, REC_CAP);
    return err;
}

/* generation (may be NULL): the roster generation the key came with, which orders two
 * keys the GMS made within one second (same activation). */
static ms_err key_read(const ms_keystore *ks, const char *name, ms_group_key *k,
                       uint64_t *generation, char *detail, size_t cap)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    memset(k, 0, sizeof *k);
    ms_err err = ks_read_file(ks, name, &pt, &len, detail, cap);
    if (err != MS_OK)
        return err;
    const char *r = (const char *)pt;
    char fmt[32], expect[48];
    uint64_t id = 0, prf = 0, cs = 0;
    int bad = ks_get_str(r, len, "format", fmt, sizeof fmt) || strcmp(fmt, KEY_FORMAT) != 0 ||
              ks_get_str(r, len, "group", k->group, sizeof k->group) ||
              ks_get_u64(r, len, "gmk-id", &id) || id > UINT32_MAX ||
              ks_get_hex(r, len, "gmk", k->gmk, sizeof k->gmk, &k->gmk_len) ||
              ks_get_hex(r, len, "rand", k->rand, sizeof k->rand, &k->rand_len) ||
              ks_get_u64(r, len, "prf", &prf) || prf > 255 ||
              ks_get_u64(r, len, "cs-id", &cs) || cs > 255 ||
              ks_get_u64(r, len, "activation", &k->activation) ||
              ks_get_u64(r, len, "expiry", &k->expiry);
    uint64_t gen = 0;
    if (!bad && ks_get_u64(r, len, "generation", &gen))
        gen = 0;
    if (generation != NULL)
        *generation = gen;
    ms_wipe(pt, len);
    free(pt);
    k->gmk_id = (uint32_t)id;
    k->prf = (uint8_t)prf;
    k->cs_id = (uint8_t)cs;
    if (!bad) {
        key_name(expect, k->group, k->gmk_id);
        bad = strcmp(expect, name) != 0 || k->gmk_len != 16;
    }
    if (bad) {
        ms_group_key_wipe(k);
        return ms_detail_fail(MS_ERR_KEYSTORE, detail, cap, "%s: corrupted group key", name);
    }
    return MS_OK;
}

/* Names of the stored keys of `group` (malloc'd array of malloc'd strings). */
static ms_err key_names(const ms_keystore *ks, const char *group, char ***out, size_t *n,
                        char *detail, size_t cap)
{
    *out = NULL;
    *n = 0;
    char prefix[32], h[17];
    group_hash_hex(h, group);
    snprintf(prefix, sizeof prefix, "gkey-%s-", h);
    int fd = openat(ks->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return ms_detail_fail(MS_ERR_KEYSTORE, detail, cap, "%s: cannot be listed", ks->dir);
    }
    ms_err err = MS_OK;
    char **list = NULL;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || strchr(e->d_name, '.') != NULL)
            continue;
        char **bigger = realloc(list, (count + 1) * sizeof *list);
        if (bigger == NULL) {
            err = MS_ERR_NOMEM;
            break;
        }
        list = bigger;
        if ((list[count] = strdup(e->d_name)) == NULL) {
            err = MS_ERR_NOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (err != MS_OK) {
        ks_free_names(list, count);
        return ms_detail_fail(err, detail, cap, "%s", ks->dir);
    }
    *out = list;
    *n = count;
    return MS_OK;
}

/* Keep the two newest keys (by activation, then roster generation) of the group; delete
 * the others. */
static ms_err prune(const ms_keystore *ks, const char *group, char *detail, size_t cap)
{
    char **names;
    size_t n;
    ms_err err = key_names(ks, group, &names, &n, detail, cap);
    if (err != MS_OK || n <= 2) {
        if (err == MS_OK)
            ks_free_names(names, n);
        return err;
    }
    uint64_t *act = calloc(2 * n, sizeof *act); /* activation, generation */
    if (act == NULL) {
        ks_free_names(names, n);
        return MS_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ms_group_key k;
        if (key_read(ks, names[i], &k, &act[n + i], NULL, 0) == MS_OK)
            act[i] = k.activation;
        ms_group_key_wipe(&k);
    }
    for (size_t i = 0; i < n && err == MS_OK; i++) {
        size_t newer = 0;
        for (size_t j = 0; j < n; j++)
            if (act[j] > act[i] ||
                (act[j] == act[i] && (act[n + j] > act[n + i] ||
                                      (act[n + j] == act[n + i] && strcmp(names[j], names[i]) > 0))))
                newer++;
        if (newer >= 2)
            err = ks_delete_file(ks, names[i], detail, cap);
    }
    free(act);
    ks_free_names(names, n);
    return err;
}

ms_err ms_group_key_load(ms_group_key *out, const ms_keystore *ks, const char *group,
                         uint32_t gmk_id, uint64_t now, char *detail, size_t detail_cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (ks == NULL || !group_uri_ok(group, GROUP_NAME_MAX))
        return MS_ERR_ARG;
    if (gmk_id != 0) {
        char name[48];
        key_name(name, group, gmk_id);
        ms_err err = key_read(ks, name, out, NULL, detail, detail_cap);
        if (err == MS_ERR_NO_KEYS)
            ms_detail_set(detail, detail_cap, "no key %08" PRIX32 " of group %s is held",
                          gmk_id, group);
        return err;
    }
    const uint64_t t = now != 0 ? now << 32 : ms_ntp_now();
    char **names;
    size_t n;
    ms_err err = key_names(ks, group, &names, &n, detail, detail_cap);
    if (err != MS_OK)
        return err;
    bool found = false;
    uint64_t best_gen = 0;
    for (size_t i = 0; i < n && err == MS_OK; i++) {
        ms_group_key k;
        uint64_t gen = 0;
        err = key_read(ks, names[i], &k, &gen, detail, detail_cap);
        if (err == MS_OK && k.activation <= t && (k.expiry == 0 || k.expiry > t) &&
            (!found || k.activation > out->activation ||
             (k.activation == out->activation && gen > best_gen))) {
            *out = k;
            best_gen = gen;
            found = true;
        }
        ms_group_key_wipe(&k);
    }
    ks_free_names(names, n);
    if (err != MS_OK) {
        ms_group_key_wipe(out);
        return err;
    }
    if (!found)
        return ms_detail_fail(MS_ERR_NO_KEYS, detail, detail_cap, "no key of group %s is in "
                              "force now", group);
    return MS_OK;
}

ms_err ms_group_key_ids(uint32_t *ids, size_t cap, size_t *n, const ms_keystore *ks,
                        const char *group, char *detail, size_t detail_cap)
{
    if (n == NULL || (ids == NULL && cap > 0))
        return MS_ERR_ARG;
    *n = 0;
    if (ks == NULL || !group_uri_ok(group, GROUP_NAME_MAX))
        return MS_ERR_ARG;
    char **names;
    size_t count;
    ms_err err = key_names(ks, group, &names, &count, detail, detail_cap);
    if (err != MS_OK)
        return err;
    for (size_t i = 0; i < count; i++) {
        /* the name ends in the GMK-ID (key_name); key_read checks it against the content */
        const char *dash = strrchr(names[i], '-');
        char *end;
        unsigned long id = dash != NULL ? strtoul(dash + 1, &end, 16) : 0;
        if (dash == NULL || *end != 0 || id == 0 || id > UINT32_MAX)
            continue;
        if (*n == cap) {
            err = ms_detail_fail(MS_ERR_BUFFER_TOO_SMALL, detail, detail_cap, "group %s has "
                                 "more than %zu stored keys", group, cap);
            break;
        }
        ids[(*n)++] = (uint32_t)id;
    }
    ks_free_names(names, count);
    return err;
}

ms_err ms_group_roster_load(char **members, size_t *n_members, const ms_keystore *ks,
                            const char *group, char *detail, size_t detail_cap)
{
    if (members == NULL || n_members == NULL)
        return MS_ERR_ARG;
    *members = NULL;
    *n_members = 0;
    if (ks == NULL || !group_uri_ok(group, GROUP_NAME_MAX))
        return MS_ERR_ARG;
    char name[48];
    roster_name(name, group);
    uint8_t *pt = NULL;
    size_t len = 0;
    ms_err err = ks_read_file(ks, name, &pt, &len, detail, detail_cap);
    if (err == MS_ERR_NO_KEYS)
        return ms_detail_fail(MS_ERR_GROUP, detail, detail_cap, "no roster of group %s is "
                              "held", group);
    if (err != MS_OK)
        return err;
    /* stored only after its signature was checked; the envelope keeps it intact */
    char *list = malloc(len + 1);
    size_t o = 0, count = 0;
    if (list == NULL) {
        free(pt);
        return MS_ERR_NOMEM;
    }
    const char *p = (const char *)pt, *end = p + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        if (strncmp(p, "member ", 7) == 0) {
            memcpy(list + o, p + 7, (size_t)(eol - p - 7) + 1);
            o += (size_t)(eol - p - 7) + 1;
            count++;
        }
        p = eol + 1;
    }
    list[o] = 0;
    free(pt);
    *members = list;
    *n_members = count;
    return MS_OK;
}

/* ---- receiving ---------------------------------------------------------------------------- */

/* Generation of the roster held for the group (0: none). */
static uint64_t held_generation(const ms_group_member *m, const char *group)
{
    char name[48];
    roster_name(name, group);
    uint8_t *pt = NULL;
    size_t len = 0;
    uint64_t gen = 0;
    if (ks_read_file(m->ks, name, &pt, &len, NULL, 0) != MS_OK)
        return 0;
    /* it was verified when stored; only the field is read back */
    const char *q = strstr((const char *)pt, "\ngeneration ");
    if (q != NULL)
        gen = strtoull(q + 12, NULL, 10);
    free(pt);
    return gen;
}

ms_err ms_group_member_receive(ms_group_member *m, ms_group_received *out,
                               const char *content_type, const uint8_t *body, size_t body_len,
                               char *detail, size_t detail_cap) {
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (m == NULL || out == NULL || (body == NULL && body_len > 0))
        return MS_ERR_ARG;
    ms_mikey_span mikey, roster_txt;
    ms_err err = group_body_parse(content_type, body, body_len, &mikey, &roster_txt, detail,
                                  detail_cap);
    if (err != MS_OK)
        return err;

    ms_mikey_result res;
    ms_mikey_diag diag;
    memset(&diag, 0, sizeof diag);
    err = ms_mikey_respond(m->ctx, &res, mikey.data, mikey.len, NULL, &diag);
    if (err != MS_OK)
        return ms_detail_fail(err, detail, detail_cap, "the group key message was refused: %s",
                              diag.detail[0] ? diag.detail : ms_strerror(err));
    group_roster r;
    ms_group_key key;
    memset(&key, 0, sizeof key);
    if (res.profile != MS_MIKEY_PROFILE_GMK || !res.has_key_params || res.n_cs < 1 ||
        res.initiator[0] == 0) {
        err = ms_detail_fail(MS_ERR_GROUP, detail, detail_cap, "the I_MESSAGE is not a GMK "
                             "message with key parameters from a named GMS");
        goto out;
    }
    if ((err = group_roster_verify(&r, (const char *)roster_txt.data, roster_txt.len, &m->id,
                                   detail, detail_cap)) != MS_OK)
        goto out;
    if (strcmp(r.gms, res.initiator) != 0 || r.gmk_id != res.key_id ||
        r.activation != res.key_params.activation || r.expiry != res.key_params.expiry) {
        err = ms_detail_fail(MS_ERR_GROUP, detail, detail_cap, "the roster (GMS %s, GMK-ID "
                             "%08" PRIX32 ") does not belong to the key from %s (GMK-ID %08"
                             PRIX32 ")", r.gms, r.gmk_id, res.initiator, res.key_id);
        goto out;
    }
    if (!group_roster_has(&r, m->id.user_uri)) {
        err = ms_detail_fail(MS_ERR_GROUP, detail, detail_cap, "the roster of %s does not "
                             "name this member (%s)", r.group, m->id.user_uri);
        goto out;
    }
    if (!group_uri_ok(r.group, GROUP_NAME_MAX)) {
        err = ms_detail_fail(MS_ERR_GROUP, detail, detail_cap, "the roster's group name is "
                             "not usable");
        goto out;
    }
    uint64_t held = held_generation(m, r.group);
    if (r.generation < held) {
        err = ms_detail_fail(MS_ERR_GROUP, detail, detail_cap, "the roster of %s is older "
                             "(generation %" PRIu64 ") than the one held (%" PRIu64 ")",
                             r.group, r.generation, held);
        goto out;
    }

    snprintf(key.group, sizeof key.group, "%s", r.group);
    memcpy(key.gmk, res.key, 16);
    key.gmk_len = 16;
    key.gmk_id = res.key_id;
    memcpy(key.rand, res.rand, res.rand_len);
    key.rand_len = res.rand_len;
    key.prf = res.prf;
    key.cs_id = res.cs[0].cs_id;
    key.activation = r.activation << 32;
    key.expiry = r.expiry << 32;
    if ((err = ks_lock(m->ks, detail, detail_cap)) != MS_OK)
        goto out;
    char name[48];
    roster_name(name, r.group);
    err = key_write(m->ks, &key, r.generation, r.gms, detail, detail_cap);
    if (err == MS_OK)
        err = ks_write_file(m->ks, name, roster_txt.data, roster_txt.len, detail, detail_cap);
    if (err == MS_OK)
        err = prune(m->ks, r.group, detail, detail_cap);
    ks_unlock(m->ks);
    if (err != MS_OK)
        goto out;

    snprintf(out->group, sizeof out->group, "%s", r.group);
    snprintf(out->gms, sizeof out->gms, "%s", r.gms);
    out->gmk_id = res.key_id;
    out->guk_id = res.csb_id;
    out->activation = r.activation;
    out->expiry = r.expiry;
    out->n_members = r.n_members;
    out->members = malloc(r.members_len + 1);
    if (out->members == NULL) {
        err = MS_ERR_NOMEM;
        goto out;
    }
    size_t o = 0;
    for (const char *q = r.members, *end = r.members + r.members_len; q < end;) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        memcpy(out->members + o, q + 7, (size_t)(eol - q - 7) + 1);
        o += (size_t)(eol - q - 7) + 1;
        q = eol + 1;
    }
    out->members[o] = 0;
out:
    ms_mikey_result_wipe(&res);
    ms_group_key_wipe(&key);
    return err;
}
