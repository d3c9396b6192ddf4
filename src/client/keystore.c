/*
 * The client keystore: create, open, the identity and key set entries, list, status
 * (RFC 6509 3.3: two periods held, the next one due), purge, and loading a MIKEY context.
 * Import is in import.c; the file format in keystore_file.c and docs/client.md.
 */
#include "client/keystore_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/secmem.h"
#include "util/hex.h"

/* ---- identity ---------------------------------------------------------------------------- */

#define REC_CAP 4096

ms_err ks_scheme(const struct ms_keystore *ks, const ms_kms_certificate *cert, ms_id_scheme *s)
{
    (void)ks;
    memset(s, 0, sizeof *s);
    s->kms_uri = cert->kms_uri;
    if (cert->user_id_format == MS_MIKEY_ID_SCHEME_TEL_MONTHLY) {
        s->scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY;
        return MS_OK;
    }
    if (cert->user_id_format == MS_MIKEY_ID_SCHEME_HASHED_UID && cert->period_len > 0) {
        s->scheme = MS_MIKEY_ID_SCHEME_HASHED_UID;
        s->period_len = cert->period_len;
        s->period_offset = cert->period_offset;
        return MS_OK;
    }
    return MS_ERR_MIKEY_UNSUPPORTED;
}

ms_err ks_identity_write(const struct ms_keystore *ks, char *detail, size_t cap)
{
    char *mem = ms_secure_alloc(REC_CAP);
    if (mem == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "identity");
    ks_buf b;
    ks_buf_init(&b, mem, REC_CAP);
    const ms_device_keys *d = &ks->dev;
    const ms_kms_certificate *c = &ks->cert;
    ks_put_str(&b, "format", "mikeysakke-keystore-identity-1");
    ks_put_str(&b, "user-uri", d->user_uri);
    ks_put_str(&b, "device-id", d->device_id);
    ks_put_u64(&b, "trk-id", d->trk_id);
    ks_put_hex(&b, "trk", d->trk, sizeof d->trk);
    ks_put_u64(&b, "ink-id", d->ink_id);
    ks_put_hex(&b, "ink", d->ink, sizeof d->ink);
    ks_put_str(&b, "kms-uri", c->kms_uri);
    ks_put_str(&b, "cert-uri", c->cert_uri);
    ks_put_str(&b, "issuer", c->issuer);
    ks_put_u64(&b, "valid-from", c->valid_from);
    ks_put_u64(&b, "valid-to", c->valid_to);
    ks_put_u64(&b, "revoked", c->revoked);
    ks_put_u64(&b, "user-id-format", c->user_id_format);
    ks_put_u64(&b, "period-len", c->period_len);
    ks_put_u64(&b, "period-offset", c->period_offset);
    ks_put_hex(&b, "pub-enc-key", c->Z, sizeof c->Z);
    ks_put_hex(&b, "pub-auth-key", c->kpak, sizeof c->kpak);
    ks_put_u64(&b, "parameter-set", c->parameter_set);
    ks_put_u64(&b, "root", c->root);
    ms_err err = b.failed ? ks_fail(MS_ERR_ARG, detail, cap, "identity: a value has control "
                                    "characters or is too long")
                          : ks_write_file(ks, KS_IDENTITY_NAME, (const uint8_t *)mem, b.len,
                                          detail, cap);
    ms_secure_free(mem, REC_CAP);
    return err;
}

ms_err ks_identity_read(struct ms_keystore *ks, char *detail, size_t cap)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    ms_err err = ks_read_file(ks, KS_IDENTITY_NAME, &pt, &len, detail, cap);
    if (err == MS_ERR_NO_KEYS)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: missing", ks->dir,
                       KS_IDENTITY_NAME);
    if (err != MS_OK)
        return err;
    const char *r = (const char *)pt;
    ms_device_keys *d = &ks->dev;
    ms_kms_certificate *c = &ks->cert;
    char fmt[64];
    uint64_t trk_id = 0, ink_id = 0, revoked = 0, uif = 0, ps = 0, root = 0;
    int bad = ks_get_str(r, len, "format", fmt, sizeof fmt) ||
              strcmp(fmt, "mikeysakke-keystore-identity-1") != 0 ||
              ks_get_str(r, len, "user-uri", d->user_uri, sizeof d->user_uri) ||
              ks_get_str(r, len, "device-id", d->device_id, sizeof d->device_id) ||
              ks_get_u64(r, len, "trk-id", &trk_id) || trk_id > UINT32_MAX ||
              ks_get_hex(r, len, "trk", d->trk, sizeof d->trk, NULL) ||
              ks_get_u64(r, len, "ink-id", &ink_id) || ink_id > UINT32_MAX ||
              ks_get_hex(r, len, "ink", d->ink, sizeof d->ink, NULL) ||
              ks_get_str(r, len, "kms-uri", c->kms_uri, sizeof c->kms_uri) ||
              ks_get_str(r, len, "cert-uri", c->cert_uri, sizeof c->cert_uri) ||
              ks_get_str(r, len, "issuer", c->issuer, sizeof c->issuer) ||
              ks_get_u64(r, len, "valid-from", &c->valid_from) ||
              ks_get_u64(r, len, "valid-to", &c->valid_to) ||
              ks_get_u64(r, len, "revoked", &revoked) ||
              ks_get_u64(r, len, "user-id-format", &uif) || uif > 255 ||
              ks_get_u64(r, len, "period-len", &c->period_len) ||
              ks_get_u64(r, len, "period-offset", &c->period_offset) ||
              ks_get_hex(r, len, "pub-enc-key", c->Z, sizeof c->Z, NULL) ||
              ks_get_hex(r, len, "pub-auth-key", c->kpak, sizeof c->kpak, NULL) ||
              ks_get_u64(r, len, "parameter-set", &ps) || ps > 255 ||
              ks_get_u64(r, len, "root", &root);
    d->trk_id = (uint32_t)trk_id;
    d->ink_id = (uint32_t)ink_id;
    c->revoked = revoked != 0;
    c->user_id_format = (uint8_t)uif;
    c->parameter_set = (uint8_t)ps;
    c->root = root != 0;
    ms_wipe(pt, len);
    free(pt);
    if (bad)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: corrupted (a field is missing "
                       "or malformed)", ks->dir, KS_IDENTITY_NAME);
    return MS_OK;
}

/* ---- key set entries --------------------------------------------------------------------- */

void ks_entry_name(char *out, size_t cap, const char *kms_uri, uint64_t period_no)
{
    uint8_t h[32];
    unsigned int hl = 0;
    memset(h, 0, sizeof h);
    (void)EVP_Digest(kms_uri, strlen(kms_uri), h, &hl, EVP_sha256(), NULL);
    /* Zero-padded period first, so names sort by period; then the KMS (hashed: a URI
     * may hold any character). */
    snprintf(out, cap, "keys-%020llu-%02x%02x%02x%02x%02x%02x%02x%02x",
             (unsigned long long)period_no, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
}

ms_err ks_entry_write(const struct ms_keystore *ks, const ms_keyset *k, char *detail, size_t cap)
{
    char *mem = ms_secure_alloc(REC_CAP);
    if (mem == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "key set");
    ks_buf b;
    ks_buf_init(&b, mem, REC_CAP);
    ks_put_str(&b, "format", "mikeysakke-keystore-keyset-1");
    ks_put_str(&b, "kms-uri", k->kms_uri);
    ks_put_str(&b, "user-uri", k->user_uri);
    ks_put_hex(&b, "user-id", k->user_id, k->user_id_len);
    ks_put_u64(&b, "period", k->period_no);
    ks_put_u64(&b, "period-start", k->period_start);
    ks_put_u64(&b, "period-end", k->period_end);
    ks_put_u64(&b, "valid-from", k->valid_from);
    ks_put_u64(&b, "valid-to", k->valid_to);
    ks_put_u64(&b, "package-time", k->package_time);
    ks_put_u64(&b, "imported-at", k->imported_at);
    ks_put_hex(&b, "pub-enc-key", k->Z, sizeof k->Z);
    ks_put_hex(&b, "pub-auth-key", k->kpak, sizeof k->kpak);
    ks_put_hex(&b, "rsk", k->rsk, sizeof k->rsk);
    ks_put_hex(&b, "ssk", k->ssk, sizeof k->ssk);
    ks_put_hex(&b, "pvt", k->pvt, sizeof k->pvt);
    char name[96];
    ks_entry_name(name, sizeof name, k->kms_uri, k->period_no);
    ms_err err = b.failed ? ks_fail(MS_ERR_ARG, detail, cap, "key set: a value has control "
                                    "characters or is too long")
                          : ks_write_file(ks, name, (const uint8_t *)mem, b.len, detail, cap);
    ms_secure_free(mem, REC_CAP);
    return err;
}

ms_err ks_entry_read(const struct ms_keystore *ks, const char *name, ms_keyset *k, char *detail,
                     size_t cap)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    ms_err err = ks_read_file(ks, name, &pt, &len, detail, cap);
    if (err != MS_OK)
        return err;
    const char *r = (const char *)pt;
    char fmt[64], expect[96];
    memset(k, 0, sizeof *k);
    int bad = ks_get_str(r, len, "format", fmt, sizeof fmt) ||
              strcmp(fmt, "mikeysakke-keystore-keyset-1") != 0 ||
              ks_get_str(r, len, "kms-uri", k->kms_uri, sizeof k->kms_uri) ||
              ks_get_str(r, len, "user-uri", k->user_uri, sizeof k->user_uri) ||
              ks_get_hex(r, len, "user-id", k->user_id, sizeof k->user_id, &k->user_id_len) ||
              ks_get_u64(r, len, "period", &k->period_no) ||
              ks_get_u64(r, len, "period-start", &k->period_start) ||
              ks_get_u64(r, len, "period-end", &k->period_end) ||
              ks_get_u64(r, len, "valid-from", &k->valid_from) ||
              ks_get_u64(r, len, "valid-to", &k->valid_to) ||
              ks_get_u64(r, len, "package-time", &k->package_time) ||
              ks_get_u64(r, len, "imported-at", &k->imported_at) ||
              ks_get_hex(r, len, "pub-enc-key", k->Z, sizeof k->Z, NULL) ||
              ks_get_hex(r, len, "pub-auth-key", k->kpak, sizeof k->kpak, NULL) ||
              ks_get_hex(r, len, "rsk", k->rsk, sizeof k->rsk, NULL) ||
              ks_get_hex(r, len, "ssk", k->ssk, sizeof k->ssk, NULL) ||
              ks_get_hex(r, len, "pvt", k->pvt, sizeof k->pvt, NULL);
    ms_wipe(pt, len);
    free(pt);
    if (!bad) {
        /* The name is authenticated (AAD); the content must say the same. */
        ks_entry_name(expect, sizeof expect, k->kms_uri, k->period_no);
        bad = strcmp(expect, name) != 0;
    }
    if (bad) {
        ms_keyset_wipe(k);
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s/%s: corrupted (a field is missing "
                       "or malformed)", ks->dir, name);
    }
    return MS_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ks_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

ms_err ks_entry_names(const struct ms_keystore *ks, char ***names, size_t *n, char *detail,
                      size_t cap)
{
    *names = NULL;
    *n = 0;
    int fd = openat(ks->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: cannot be listed: %s", ks->dir,
                       strerror(errno));
    }
    char **list = NULL;
    size_t count = 0;
    ms_err err = MS_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "keys-", 5) != 0)
            continue;
        if (count == MS_KEYSTORE_MAX_ENTRIES) {
            err = ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: more than %d key sets held: "
                          "purge", ks->dir, MS_KEYSTORE_MAX_ENTRIES);
            break;
        }
        char **bigger = realloc(list, (count + 1) * sizeof *list);
        char *dup = strdup(e->d_name);
        if (bigger == NULL || dup == NULL) {
            free(dup);
            if (bigger != NULL)
                list = bigger;
            err = ks_fail(MS_ERR_NOMEM, detail, cap, "%s", ks->dir);
            break;
        }
        list = bigger;
        list[count++] = dup;
    }
    closedir(d);
    if (err != MS_OK) {
        ks_free_names(list, count);
        return err;
    }
    if (count > 0)
        qsort(list, count, sizeof *list, cmp_names);
    *names = list;
    *n = count;
    return MS_OK;
}

void ms_keyset_wipe(ms_keyset *k)
{
    if (k != NULL)
        ms_wipe(k, sizeof *k);
}

/* ---- create, open, close ----------------------------------------------------------------- */

static ms_err new_ks(struct ms_keystore **out, const char *dir, char *detail, size_t cap)
{
    if (dir == NULL || strlen(dir) >= KS_PATH_MAX)
        return ks_fail(MS_ERR_ARG, detail, cap, "keystore directory name missing or too long");
    struct ms_keystore *ks = ms_secure_alloc(sizeof *ks);
    if (ks == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "keystore");
    snprintf(ks->dir, sizeof ks->dir, "%s", dir);
    ks->dir_fd = -1;
    *out = ks;
    return MS_OK;
}

void ms_keystore_close(ms_keystore *ks)
{
    if (ks == NULL)
        return;
    if (ks->dir_fd >= 0)
        close(ks->dir_fd);
    ms_secure_free(ks, sizeof *ks);
}

/* The directory: ours, a directory, no access for others. */
static ms_err check_dir(int fd, const char *dir, char *detail, size_t cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return ks_fail(MS_ERR_IO, detail, cap, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: not a directory", dir);
    if (st.st_uid != geteuid())
        return ks_fail(MS_ERR_KEYFILE_MODE, detail, cap, "%s: owned by another user", dir);
    if ((st.st_mode & 077) != 0)
        return ks_fail(MS_ERR_KEYFILE_MODE, detail, cap,
                       "%s: mode %04o lets other users access it (must be 0700)", dir,
                       (unsigned)(st.st_mode & 07777));
    return MS_OK;
}

static int dir_is_empty(int fd)
{
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        return 0;
    }
    int empty = 1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

ms_err ms_keystore_create(const char *dir, const char *enrolment_xml, size_t enrolment_len,
                          const char *passphrase, size_t passphrase_len,
                          const ms_keystore_params *params, char *detail, size_t cap)
{
    if (enrolment_xml == NULL || passphrase == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "enrolment file or passphrase missing");
    if (passphrase_len == 0)
        return ks_fail(MS_ERR_ARG, detail, cap, "empty passphrase");
    struct ms_keystore *ks = NULL;
    ms_err err = new_ks(&ks, dir, detail, cap);
    if (err != MS_OK)
        return err;
    int made = 0, wrote = 0;
    char sub[256] = "";

    /* Everything is checked before anything is created. */
    err = ms_kmsif_enrolment_parse(&ks->dev, &ks->cert, enrolment_xml, enrolment_len, sub,
                                   sizeof sub);
    if (err != MS_OK) {
        err = ks_fail(err, detail, cap, "enrolment file: %s", sub);
        goto out;
    }
    ms_id_scheme scheme;
    if (ks_scheme(ks, &ks->cert, &scheme) != MS_OK) {
        err = ks_fail(MS_ERR_MIKEY_UNSUPPORTED, detail, cap, "enrolment file: KMS "
                      "certificate: UserIdFormat %u with UserKeyPeriod %llu is not a scheme "
                      "we know", ks->cert.user_id_format,
                      (unsigned long long)ks->cert.period_len);
        goto out;
    }
    if (ks->cert.parameter_set != 0 && ks->cert.parameter_set != MS_MIKEY_SAKKE_PARAMS_SET1) {
        err = ks_fail(MS_ERR_MIKEY_UNSUPPORTED, detail, cap, "enrolment file: KMS "
                      "certificate: SAKKE parameter set %u", ks->cert.parameter_set);
        goto out;
    }
    ms_sakke_kms *sk = NULL;
    err = ms_sakke_kms_new(&sk, ks->cert.Z);
    ms_sakke_kms_free(sk);
    if (err != MS_OK) {
        err = ks_fail(MS_ERR_KMS_PUBLIC_INVALID, detail, cap, "enrolment file: KMS "
                      "certificate: PubEncKey is not a valid SAKKE public key");
        goto out;
    }
    ms_eccsi_verifier *v = NULL;
    err = ms_eccsi_verifier_new(&v, ks->cert.kpak);
    ms_eccsi_verifier_free(v);
    if (err != MS_OK) {
        err = ks_fail(MS_ERR_KPAK_INVALID, detail, cap, "enrolment file: KMS certificate: "
                      "PubAuthKey is not a valid KPAK");
        goto out;
    }
    uint8_t id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    err = ms_identifier(&scheme, id, sizeof id, &id_len, ks->dev.user_uri, 0);
    if (err != MS_OK) {
        err = ks_fail(err, detail, cap, "enrolment file: user URI %s has no identifier under "
                      "the KMS's scheme", ks->dev.user_uri);
        goto out;
    }

    if (mkdir(dir, 0700) == 0)
        made = 1;
    else if (errno != EEXIST) {
        err = ks_fail(MS_ERR_IO, detail, cap, "%s: %s", dir, strerror(errno));
        goto out;
    }
    ks->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ks->dir_fd < 0) {
        err = ks_fail(MS_ERR_IO, detail, cap, "%s: %s", dir, strerror(errno));
        goto out;
    }
    if (!made && !dir_is_empty(ks->dir_fd)) {
        err = ks_fail(MS_ERR_EXISTS, detail, cap, "%s: exists and is not empty", dir);
        goto out;
    }
    if (fchmod(ks->dir_fd, 0700) != 0) { /* exactly 0700 whatever the umask */
        err = ks_fail(MS_ERR_IO, detail, cap, "%s: %s", dir, strerror(errno));
        goto out;
    }
    err = check_dir(ks->dir_fd, dir, detail, cap);
    if (err != MS_OK)
        goto out;
    wrote = 1;
    err = ks_header_create(ks, passphrase, passphrase_len, params, detail, cap);
    if (err == MS_OK)
        err = ks_identity_write(ks, detail, cap);
out:
    if (err != MS_OK && wrote) {
        (void)unlinkat(ks->dir_fd, KS_IDENTITY_NAME, 0);
        (void)unlinkat(ks->dir_fd, KS_HEADER_NAME, 0);
    }
    if (err != MS_OK && made)
        (void)rmdir(dir);
    ms_keystore_close(ks);
    return err;
}

ms_err ms_keystore_open(ms_keystore **out, const char *dir, const char *passphrase,
                        size_t passphrase_len, char *detail, size_t cap)
{
    if (out == NULL || passphrase == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_open: NULL argument");
    *out = NULL;
    struct ms_keystore *ks = NULL;
    ms_err err = new_ks(&ks, dir, detail, cap);
    if (err != MS_OK)
        return err;
    ks->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ks->dir_fd < 0) {
        err = ks_fail(errno == ENOENT ? MS_ERR_KEYSTORE : MS_ERR_IO, detail, cap,
                      "%s: %s", dir, strerror(errno));
        goto out;
    }
    err = check_dir(ks->dir_fd, dir, detail, cap);
    if (err == MS_OK)
        err = ks_header_open(ks, passphrase, passphrase_len, detail, cap);
    if (err == MS_OK)
        err = ks_identity_read(ks, detail, cap);
out:
    if (err != MS_OK) {
        ms_keystore_close(ks);
        return err;
    }
    *out = ks;
    return MS_OK;
}

ms_err ms_keystore_identity_get(const ms_keystore *ks, ms_keystore_identity *id)
{
    if (ks == NULL || id == NULL)
        return MS_ERR_ARG;
    memset(id, 0, sizeof *id);
    snprintf(id->user_uri, sizeof id->user_uri, "%s", ks->dev.user_uri);
    snprintf(id->device_id, sizeof id->device_id, "%s", ks->dev.device_id);
    id->trk_id = ks->dev.trk_id;
    id->ink_id = ks->dev.ink_id;
    snprintf(id->kms_uri, sizeof id->kms_uri, "%s", ks->cert.kms_uri);
    ms_err err = ks_scheme(ks, &ks->cert, &id->scheme);
    id->scheme.kms_uri = id->kms_uri;
    memcpy(id->Z, ks->cert.Z, sizeof id->Z);
    memcpy(id->kpak, ks->cert.kpak, sizeof id->kpak);
    return err;
}

/* ---- get, list, status, purge ------------------------------------------------------------ */

ms_err ms_keystore_get(const ms_keystore *ks, ms_keyset *out, const char *kms_uri,
                       uint64_t period_no, char *detail, size_t cap) {
    if (ks == NULL || out == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_get: NULL argument");
    memset(out, 0, sizeof *out);
    if (kms_uri == NULL)
        kms_uri = ks->cert.kms_uri;
    char name[96];
    ks_entry_name(name, sizeof name, kms_uri, period_no);
    ms_err err = ks_entry_read(ks, name, out, detail, cap);
    if (err == MS_ERR_NO_KEYS)
        return ks_fail(err, detail, cap, "no keys held for key period %llu of %s",
                       (unsigned long long)period_no, kms_uri);
    return err;
}

/* Every held key set's public description (secrets read and wiped at once). */
static ms_err list_entries(const ms_keystore *ks, ms_keystore_entry *out, size_t cap_out,
                           size_t *n, uint64_t now, char *detail, size_t cap)
{
    char **names = NULL;
    size_t count = 0;
    *n = 0;
    ms_err err = ks_entry_names(ks, &names, &count, detail, cap);
    if (err != MS_OK)
        return err;
    ms_id_scheme s;
    uint64_t acc[2] = {0, 0};
    size_t n_acc = 0;
    if (ks_scheme(ks, &ks->cert, &s) == MS_OK &&
        ms_key_periods_accepted(&s, acc, &n_acc, now, MS_KEYSTORE_GRACE) != MS_OK)
        n_acc = 0;
    ms_keyset *k = ms_secure_alloc(sizeof *k);
    if (k == NULL) {
        ks_free_names(names, count);
        return ks_fail(MS_ERR_NOMEM, detail, cap, "key set");
    }
    for (size_t i = 0; i < count && err == MS_OK; i++) {
        err = ks_entry_read(ks, names[i], k, detail, cap);
        if (err != MS_OK)
            break;
        if (*n < cap_out && out != NULL) {
            ms_keystore_entry *e = &out[*n];
            memset(e, 0, sizeof *e);
            snprintf(e->kms_uri, sizeof e->kms_uri, "%s", k->kms_uri);
            e->period_no = k->period_no;
            e->period_start = k->period_start;
            e->period_end = k->period_end;
            e->package_time = k->package_time;
            e->imported_at = k->imported_at;
            for (size_t j = 0; j < n_acc; j++)
                if (acc[j] == k->period_no && strcmp(k->kms_uri, ks->cert.kms_uri) == 0)
                    e->in_force = true;
            e->expired = k->period_end + MS_KEYSTORE_GRACE <= now;
        }
        (*n)++;
        ms_keyset_wipe(k);
    }
    ms_secure_free(k, sizeof *k);
    ks_free_names(names, count);
    if (err == MS_OK && out != NULL && *n > cap_out)
        return ks_fail(MS_ERR_BUFFER_TOO_SMALL, detail, cap, "%zu key sets held", *n);
    return err;
}

ms_err ms_keystore_list(const ms_keystore *ks, ms_keystore_entry *out, size_t cap_out,
                        size_t *n, uint64_t now, char *detail, size_t cap)
{
    if (ks == NULL || n == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_list: NULL argument");
    return list_entries(ks, out, cap_out, n, ks_now(now), detail, cap);
}

ms_err ms_keystore_status(const ms_keystore *ks, ms_keystore_state *st, uint64_t now,
                          char *detail, size_t cap)
{
    if (ks == NULL || st == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_status: NULL argument");
    memset(st, 0, sizeof *st);
    now = ks_now(now);
    st->now = now;
    ms_id_scheme s;
    ms_err err = ks_scheme(ks, &ks->cert, &s);
    if (err != MS_OK)
        return ks_fail(err, detail, cap, "KMS certificate: unknown identifier scheme");
    uint64_t cur_start = 0, cur_end = 0;
    err = ms_key_period(&s, &st->current_period, now);
    if (err == MS_OK)
        err = ms_key_periods_accepted(&s, st->accepted, &st->n_accepted, now,
                                      MS_KEYSTORE_GRACE);
    if (err == MS_OK)
        err = ms_key_period_bounds(&s, &cur_start, &cur_end, st->current_period);
    if (err != MS_OK)
        return ks_fail(err, detail, cap, "no key period at this time");
    st->next_period = st->current_period + 1;
    st->next_start = cur_end;
    st->next_due = cur_end >= cur_start + MS_KEYSTORE_GRACE ? cur_end - MS_KEYSTORE_GRACE
                                                           : cur_start;
    err = list_entries(ks, st->entries, MS_KEYSTORE_MAX_ENTRIES, &st->n_entries, now, detail,
                       cap);
    if (err != MS_OK)
        return err;
    for (size_t i = 0; i < st->n_entries; i++) {
        if (strcmp(st->entries[i].kms_uri, ks->cert.kms_uri) != 0)
            continue;
        if (st->entries[i].period_no == st->current_period)
            st->current_held = true;
        if (st->entries[i].period_no == st->next_period)
            st->next_held = true;
    }
    if (!st->current_held)
        return ks_fail(MS_ERR_NO_KEYS, detail, cap, "no keys for the current key period %llu",
                       (unsigned long long)st->current_period);
    if (!st->next_held && now >= st->next_due)
        return ks_fail(MS_ERR_NO_KEYS, detail, cap, "no keys for the next key period %llu, "
                       "due now", (unsigned long long)st->next_period);
    return MS_OK;
}

/* Writers hold an exclusive lock on the directory so two imports cannot interleave. */
static ms_err lock_dir(const ms_keystore *ks, char *detail, size_t cap)
{
    if (flock(ks->dir_fd, LOCK_EX | LOCK_NB) != 0)
        return ks_fail(MS_ERR_KEYSTORE, detail, cap, "%s: locked by another process (%s)",
                       ks->dir, strerror(errno));
    return MS_OK;
}

static void unlock_dir(const ms_keystore *ks)
{
    (void)flock(ks->dir_fd, LOCK_UN);
}

ms_err ks_lock(const ms_keystore *ks, char *detail, size_t cap)
{
    return lock_dir(ks, detail, cap);
}
void ks_unlock(const ms_keystore *ks)
{
    unlock_dir(ks);
}

#define HOLDS_FILE "holds"

ms_err ms_keystore_set_holds(ms_keystore *ks, const uint64_t *periods, size_t n, char *detail,
                             size_t cap)
{
    if (ks == NULL || (periods == NULL && n > 0))
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_set_holds: NULL argument");
    if (n > MS_KEYSTORE_MAX_HOLDS)
        return ks_fail(MS_ERR_ARG, detail, cap, "more than %d held key periods",
                       MS_KEYSTORE_MAX_HOLDS);
    char text[MS_KEYSTORE_MAX_HOLDS * 21 + 1];
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%llu\n",
                                (unsigned long long)periods[i]);
    ms_err err = lock_dir(ks, detail, cap);
    if (err != MS_OK)
        return err;
    err = ks_write_file(ks, HOLDS_FILE, (const uint8_t *)text, len, detail, cap);
    unlock_dir(ks);
    return err;
}

ms_err ms_keystore_get_holds(const ms_keystore *ks, uint64_t *periods, size_t cap, size_t *n,
                             char *detail, size_t dcap)
{
    if (ks == NULL || n == NULL || (periods == NULL && cap > 0))
        return ks_fail(MS_ERR_ARG, detail, dcap, "ms_keystore_get_holds: NULL argument");
    *n = 0;
    if (faccessat(ks->dir_fd, HOLDS_FILE, F_OK, 0) != 0)
        return MS_OK; /* none ever set */
    uint8_t *text = NULL;
    size_t len = 0;
    ms_err err = ks_read_file(ks, HOLDS_FILE, &text, &len, detail, dcap);
    if (err != MS_OK)
        return err;
    size_t count = 0;
    for (char *line = (char *)text; *line != 0;) {
        char *end;
        unsigned long long v = strtoull(line, &end, 10);
        if (end == line || *end != '\n') {
            err = ks_fail(MS_ERR_KEYSTORE, detail, dcap, "%s/%s: malformed", ks->dir,
                          HOLDS_FILE);
            break;
        }
        if (count < cap)
            periods[count] = v;
        count++;
        line = end + 1;
    }
    free(text);
    *n = count;
    if (err == MS_OK && count > cap)
        err = MS_ERR_BUFFER_TOO_SMALL;
    return err;
}

static bool held(const uint64_t *holds, size_t n, uint64_t p)
{
    for (size_t i = 0; i < n; i++)
        if (holds[i] == p)
            return true;
    return false;
}

ms_err ms_keystore_purge(ms_keystore *ks, uint64_t *purged, size_t cap_p, size_t *n_purged,
                         uint64_t now, char *detail, size_t cap) {
    if (ks == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_purge: NULL argument");
    now = ks_now(now);
    if (n_purged != NULL)
        *n_purged = 0;
    uint64_t holds[MS_KEYSTORE_MAX_HOLDS];
    size_t n_holds = 0;
    ms_err err = ms_keystore_get_holds(ks, holds, MS_KEYSTORE_MAX_HOLDS, &n_holds, detail, cap);
    if (err != MS_OK)
        return err;
    err = lock_dir(ks, detail, cap);
    if (err != MS_OK)
        return err;
    char **names = NULL;
    size_t count = 0, done = 0;
    ms_keyset *k = ms_secure_alloc(sizeof *k);
    if (k == NULL) {
        unlock_dir(ks);
        return ks_fail(MS_ERR_NOMEM, detail, cap, "key set");
    }
    err = ks_entry_names(ks, &names, &count, detail, cap);
    for (size_t i = 0; i < count && err == MS_OK; i++) {
        err = ks_entry_read(ks, names[i], k, detail, cap);
        if (err != MS_OK)
            break;
        int expired = k->period_end + MS_KEYSTORE_GRACE <= now;
        uint64_t p = k->period_no;
        ms_keyset_wipe(k);
        if (!expired || held(holds, n_holds, p))
            continue;
        err = ks_delete_file(ks, names[i], detail, cap);
        if (err == MS_OK) {
            if (purged != NULL && done < cap_p)
                purged[done] = p;
            done++;
        }
    }
    if (n_purged != NULL)
        *n_purged = done;
    ms_secure_free(k, sizeof *k);
    ks_free_names(names, count);
    unlock_dir(ks);
    return err;
}

/* ---- MIKEY ------------------------------------------------------------------------------ */

ms_err ms_keystore_load_mikey(const ms_keystore *ks, ms_mikey_ctx *ctx, size_t *n_loaded,
                              uint64_t now, char *detail, size_t cap) {
    if (ks == NULL || ctx == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_load_mikey: NULL argument");
    if (n_loaded != NULL)
        *n_loaded = 0;
    now = ks_now(now);
    ms_id_scheme s;
    ms_err err = ks_scheme(ks, &ks->cert, &s);
    if (err != MS_OK)
        return ks_fail(err, detail, cap, "KMS certificate: unknown identifier scheme");
    uint64_t cur = 0;
    err = ms_key_period(&s, &cur, now);
    if (err != MS_OK)
        return ks_fail(err, detail, cap, "no key period at this time");

    char **names = NULL;
    size_t count = 0, loaded = 0;
    err = ks_entry_names(ks, &names, &count, detail, cap);
    if (err != MS_OK)
        return err;
    ms_keyset *k = ms_secure_alloc(sizeof *k);
    uint8_t *Z = malloc(MS_SAKKE_POINT_BYTES), *kpak = malloc(MS_ECCSI_POINT_BYTES);
    if (k == NULL || Z == NULL || kpak == NULL) {
        err = ks_fail(MS_ERR_NOMEM, detail, cap, "key set");
        goto out;
    }
    /* The certificate: the one the current period's keys came with, else the enrolled
     * one (they differ only after a master key rollover). */
    memcpy(Z, ks->cert.Z, MS_SAKKE_POINT_BYTES);
    memcpy(kpak, ks->cert.kpak, MS_ECCSI_POINT_BYTES);
    for (size_t i = 0; i < count; i++) {
        err = ks_entry_read(ks, names[i], k, detail, cap);
        if (err != MS_OK)
            goto out;
        if (k->period_no == cur && strcmp(k->kms_uri, ks->cert.kms_uri) == 0) {
            memcpy(Z, k->Z, MS_SAKKE_POINT_BYTES);
            memcpy(kpak, k->kpak, MS_ECCSI_POINT_BYTES);
        }
        ms_keyset_wipe(k);
    }
    ms_mikey_kms_info info;
    memset(&info, 0, sizeof info);
    info.uri = ks->cert.kms_uri;
    info.scheme = s;
    info.Z = Z;
    info.kpak = kpak;
    err = ms_mikey_add_kms(ctx, &info);
    if (err != MS_OK) {
        if (err == MS_ERR_MIKEY_UNSUPPORTED)
            err = ks_fail(err, detail, cap, "the MIKEY profile does not fit the identifier "
                          "scheme of the KMS %s", ks->cert.kms_uri);
        else
            err = ks_fail(err, detail, cap, "adding the KMS %s to the MIKEY context",
                          ks->cert.kms_uri);
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        err = ks_entry_read(ks, names[i], k, detail, cap);
        if (err != MS_OK)
            goto out;
        int use = strcmp(k->kms_uri, ks->cert.kms_uri) == 0 &&
                  k->period_end + MS_KEYSTORE_GRACE > now &&
                  CRYPTO_memcmp(k->Z, Z, MS_SAKKE_POINT_BYTES) == 0 &&
                  CRYPTO_memcmp(k->kpak, kpak, MS_ECCSI_POINT_BYTES) == 0;
        if (use) {
            err = ms_mikey_add_keys(ctx, k->kms_uri, k->period_no, k->rsk, k->ssk, k->pvt);
            if (err != MS_OK) {
                err = ks_fail(err, detail, cap, "%s/%s: keys of period %llu refused by the "
                              "MIKEY layer", ks->dir, names[i],
                              (unsigned long long)k->period_no);
                goto out;
            }
            loaded++;
        }
        ms_keyset_wipe(k);
    }
out:
    if (n_loaded != NULL)
        *n_loaded = loaded;
    if (k != NULL)
        ms_secure_free(k, sizeof *k);
    free(Z);
    free(kpak);
    ks_free_names(names, count);
    return err;
}

/* ---- the user's devices, as the KMS lists them ------------------------------------------ */

#define DEVICES_FILE "devices"

/* Whether id is one of the space-separated words of list. */
static bool in_list(const char *list, const char *id, size_t id_len)
{
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n == id_len && memcmp(p, id, n) == 0)
            return true;
        p += n;
        while (*p == ' ')
            p++;
    }
    return false;
}

static void list_add(char *list, size_t cap, const char *id, size_t id_len)
{
    size_t len = strlen(list);
    if (in_list(list, id, id_len) || len + (len ? 1 : 0) + id_len + 1 > cap)
        return;
    if (len)
        list[len++] = ' ';
    memcpy(list + len, id, id_len);
    list[len + id_len] = '\0';
}

/* Reads the devices file into seen/unseen (empty if absent); *present says if it was. */
static ms_err devices_read(const ms_keystore *ks, char *seen, char *unseen, size_t cap,
                           bool *present, char *detail, size_t dcap)
{
    seen[0] = unseen[0] = '\0';
    *present = faccessat(ks->dir_fd, DEVICES_FILE, F_OK, 0) == 0;
    if (!*present)
        return MS_OK;
    uint8_t *text = NULL;
    size_t len = 0;
    ms_err err = ks_read_file(ks, DEVICES_FILE, &text, &len, detail, dcap);
    if (err != MS_OK)
        return err;
    for (char *line = (char *)text; *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        if (strncmp(line, "seen ", 5) == 0)
            list_add(seen, cap, line + 5, strlen(line + 5));
        else if (strncmp(line, "unseen ", 7) == 0)
            list_add(unseen, cap, line + 7, strlen(line + 7));
        else
            err = ks_fail(MS_ERR_KEYSTORE, detail, dcap, "%s/%s: malformed", ks->dir,
                          DEVICES_FILE);
        line = nl + 1;
    }
    free(text);
    return err;
}

static ms_err devices_write(const ms_keystore *ks, const char *seen, const char *unseen,
                            char *detail, size_t cap)
{
    size_t max = 2 * strlen(seen) + 2 * strlen(unseen) + 64, len = 0;
    char *text = malloc(max);
    if (text == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "devices");
    text[0] = '\0';
    const char *lists[2] = {seen, unseen};
    for (int w = 0; w < 2; w++)
        for (const char *p = lists[w]; *p != '\0';) {
            size_t n = strcspn(p, " ");
            len += (size_t)snprintf(text + len, max - len, "%s %.*s\n", w ? "unseen" : "seen",
                                    (int)n, p);
            p += n;
            while (*p == ' ')
                p++;
        }
    ms_err err = ks_write_file(ks, DEVICES_FILE, (const uint8_t *)text, len, detail, cap);
    free(text);
    return err;
}

ms_err ks_devices_record(const ms_keystore *ks, const char *list, char *detail, size_t cap)
{
    if (list == NULL || list[0] == '\0')
        return MS_OK; /* the KMS sent none */
    char *seen = calloc(3, MS_KEYSTORE_DEVICES_MAX);
    if (seen == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "devices");
    char *unseen = seen + MS_KEYSTORE_DEVICES_MAX, *next = unseen + MS_KEYSTORE_DEVICES_MAX;
    bool present = false;
    ms_err err = devices_read(ks, seen, unseen, MS_KEYSTORE_DEVICES_MAX, &present, detail, cap);
    if (err == MS_OK) {
        /* the first list is what the user starts with; later, what they have not seen */
        for (const char *p = list; *p != '\0';) {
            size_t n = strcspn(p, " ");
            if (!present || in_list(seen, p, n) ||
                (n == strlen(ks->dev.device_id) && memcmp(p, ks->dev.device_id, n) == 0))
                list_add(next, MS_KEYSTORE_DEVICES_MAX, p, n);
            else
                list_add(unseen, MS_KEYSTORE_DEVICES_MAX, p, n);
            p += n;
            while (*p == ' ')
                p++;
        }
        /* seen devices the KMS no longer lists are gone; unseen ones stay until accepted */
        err = devices_write(ks, next, unseen, detail, cap);
    }
    free(seen);
    return err;
}

ms_err ms_keystore_devices(const ms_keystore *ks, char *seen, size_t seen_cap, char *unseen,
                           size_t unseen_cap, char *detail, size_t cap)
{
    if (ks == NULL || seen == NULL || unseen == NULL || seen_cap == 0 || unseen_cap == 0)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_devices: NULL argument");
    char *buf = calloc(2, MS_KEYSTORE_DEVICES_MAX);
    if (buf == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "devices");
    bool present = false;
    ms_err err = devices_read(ks, buf, buf + MS_KEYSTORE_DEVICES_MAX, MS_KEYSTORE_DEVICES_MAX,
                              &present, detail, cap);
    if (err == MS_OK && (strlen(buf) >= seen_cap ||
                         strlen(buf + MS_KEYSTORE_DEVICES_MAX) >= unseen_cap))
        err = MS_ERR_BUFFER_TOO_SMALL;
    if (err == MS_OK) {
        strcpy(seen, buf);
        strcpy(unseen, buf + MS_KEYSTORE_DEVICES_MAX);
    }
    free(buf);
    return err;
}

ms_err ms_keystore_devices_accept(ms_keystore *ks, char *detail, size_t cap)
{
    if (ks == NULL)
        return ks_fail(MS_ERR_ARG, detail, cap, "ms_keystore_devices_accept: NULL argument");
    char *buf = calloc(2, MS_KEYSTORE_DEVICES_MAX);
    if (buf == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, cap, "devices");
    ms_err err = lock_dir(ks, detail, cap);
    bool present = false;
    if (err == MS_OK) {
        err = devices_read(ks, buf, buf + MS_KEYSTORE_DEVICES_MAX, MS_KEYSTORE_DEVICES_MAX,
                           &present, detail, cap);
        char *unseen = buf + MS_KEYSTORE_DEVICES_MAX;
        for (const char *p = unseen; err == MS_OK && *p != '\0';) {
            size_t n = strcspn(p, " ");
            list_add(buf, MS_KEYSTORE_DEVICES_MAX, p, n);
            p += n;
            while (*p == ' ')
                p++;
        }
        if (err == MS_OK && present)
            err = devices_write(ks, buf, "", detail, cap);
        unlock_dir(ks);
    }
    free(buf);
    return err;
}

ms_err ms_keystore_approve_device(const ms_keystore *ks, char *line, size_t cap,
                                  const char *request, size_t len, char *detail, size_t dcap) {
    if (ks == NULL || request == NULL || line == NULL)
        return ks_fail(MS_ERR_ARG, detail, dcap, "ms_keystore_approve_device: NULL argument");
    /* only an enrolment request for this device's own user */
    static const char header[] = "mikeysakke-request 1\n";
    char want[MS_KEYSTORE_URI_MAX + 16];
    snprintf(want, sizeof want, "\nuser=%s\n", ks->dev.user_uri);
    char *text = malloc(len + 1);
    if (text == NULL)
        return ks_fail(MS_ERR_NOMEM, detail, dcap, "request");
    memcpy(text, request, len);
    text[len] = '\0';
    ms_err err = MS_OK;
    if (len < sizeof header - 1 || memcmp(text, header, sizeof header - 1) != 0 ||
        strlen(text) != len || strstr(text, "\nkind=enrol\n") == NULL)
        err = ks_fail(MS_ERR_ARG, detail, dcap, "not a device enrolment request");
    else if (strstr(text, want) == NULL)
        err = ks_fail(MS_ERR_ARG, detail, dcap, "the request is for another user than %s",
                      ks->dev.user_uri);
    free(text);
    uint8_t mac[32];
    char hex[65];
    if (err == MS_OK && (err = ms_kmsif_device_approval(mac, ks->dev.ink, request, len)) == MS_OK) {
        ms_hex_encode_lower(hex, mac, sizeof mac);
        int n = snprintf(line, cap, "device %s %s\n", ks->dev.device_id, hex);
        if (n < 0 || (size_t)n >= cap)
            err = ks_fail(MS_ERR_BUFFER_TOO_SMALL, detail, dcap, "approval line");
    }
    ms_wipe(mac, sizeof mac);
    return err;
}
