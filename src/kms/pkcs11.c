/*
 * The PKCS#11 seal: a token's AES-256 key (never extractable) encrypts and decrypts the
 * 32-octet KEK with CKM_AES_GCM. Each operation loads the module with dlopen, opens a
 * session, logs in and finalises (C_Finalize) afterwards, so no session or login stays
 * between seal and unseal; the module itself stays mapped (p11_close says why). Every
 * failure is MS_ERR_PKCS11 with a detail naming the step and the CKR code.
 *
 * The module is code that sees the PIN, and its path is written in files the service
 * user can change (the sealed file, kms.db). So a path is loaded only if it is on the
 * built-in list of Debian's modules or listed in a configuration file that only root can
 * change (MS_PKCS11_CONF), and the module file itself must be root's too.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "crypto/rng.h"
#include "kms/pkcs11.h"
#include "mikeysakke/crypto.h"
#include "util/detail.h"

#define P11_IV_BYTES 12
#define P11_TAG_BYTES 16

#ifndef MS_PKCS11_CONF
#define MS_PKCS11_CONF "/etc/mikeysakke/pkcs11.conf"
#endif

/* Debian's packaged modules (SoftHSM2, OpenSC, p11-kit's proxy), by their multiarch
 * paths and the compatibility links the packages install. */
static const char *const builtin_modules[] = {
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/pkcs11/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so",
    "/usr/lib/aarch64-linux-gnu/p11-kit-proxy.so",
};

const char *ms_p11_conf_path(void)
{
    return MS_PKCS11_CONF;
}

/* A file or directory only `owner` or root can change: owned by one of them and not
 * writable by group or others. */
static int owned_safely(const struct stat *sb, uid_t owner)
{
    return (sb->st_uid == 0 || sb->st_uid == owner) && (sb->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

/* A directory above the file: as owned_safely, or root's and sticky like /tmp, where
 * others may add entries but cannot rename or remove the ones they do not own. */
static int dir_safe(const struct stat *sb, uid_t owner)
{
    return owned_safely(sb, owner) || (sb->st_uid == 0 && (sb->st_mode & S_ISVTX) != 0);
}

/* Checks `path` and every directory above it (after resolving links, so a link cannot
 * lead around the check). what: "configuration file" or "module", for the detail. */
static ms_err path_trusted(const char *path, uid_t owner, const char *what, char *detail,
                           size_t cap)
{
    char real[PATH_MAX];
    if (realpath(path, real) == NULL) {
        ms_detail_set(detail, cap, "PKCS#11: cannot resolve the %s %s: %s", what, path,
                      strerror(errno));
        return MS_ERR_PKCS11;
    }
    struct stat sb;
    if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        ms_detail_set(detail, cap, "PKCS#11: the %s %s is not a regular file", what, path);
        return MS_ERR_PKCS11;
    }
    if (!owned_safely(&sb, owner)) {
        ms_detail_set(detail, cap,
                      "PKCS#11: the %s %s is not owned by root or is writable by group "
                      "or others: refused",
                      what, path);
        return MS_ERR_PKCS11;
    }
    /* The directories, from the file's up to "/". */
    for (char *slash = strrchr(real, '/'); slash != NULL; slash = strrchr(real, '/')) {
        if (slash == real)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(real, &sb) != 0 || !dir_safe(&sb, owner)) {
            ms_detail_set(detail, cap,
                          "PKCS#11: directory %s above the %s %s is not owned by root "
                          "or is writable by group or others: refused",
                          real, what, path);
            return MS_ERR_PKCS11;
        }
        if (slash == real)
            break;
    }
    return MS_OK;
}

/* Whether the trusted configuration file lists `module` ("module = PATH" lines, '#'
 * comments); 1 yes, 0 no (detail set), -1 the file is unusable (detail set). */
static int conf_lists(const char *conf, const char *module, uid_t owner, char *detail, size_t cap)
{
    if (path_trusted(conf, owner, "configuration file", detail, cap) != MS_OK)
        return -1;
    FILE *f = fopen(conf, "r");
    if (f == NULL) {
        ms_detail_set(detail, cap, "PKCS#11: cannot read %s: %s", conf, strerror(errno));
        return -1;
    }
    char line[PATH_MAX + 64];
    int found = 0;
    unsigned lineno = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *p = line;
        p[strcspn(p, "\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (strncmp(p, "module", 6) != 0) {
            ms_detail_set(detail, cap, "PKCS#11: %s line %u: expected \"module = PATH\"", conf,
                          lineno);
            fclose(f);
            return -1;
        }
        p += 6;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != '=') {
            ms_detail_set(detail, cap, "PKCS#11: %s line %u: expected \"module = PATH\"", conf,
                          lineno);
            fclose(f);
            return -1;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            p[--n] = '\0';
        found = strcmp(p, module) == 0;
    }
    fclose(f);
    if (!found)
        ms_detail_set(detail, cap, "PKCS#11: module %s is not listed in %s", module, conf);
    return found;
}

ms_err ms_p11_module_check(const char *module, const char *conf_path, uid_t owner, char *detail,
                           size_t cap)
{
    ms_detail_set(detail, cap, "%s", "");
    if (module == NULL || module[0] != '/') {
        ms_detail_set(detail, cap, "PKCS#11: the module must be given by its absolute path");
        return MS_ERR_PKCS11;
    }
    int allowed = 0;
    for (size_t i = 0; i < sizeof builtin_modules / sizeof builtin_modules[0]; i++)
        if (strcmp(module, builtin_modules[i]) == 0)
            allowed = 1;
    struct stat sb;
    if (!allowed && conf_path != NULL && stat(conf_path, &sb) == 0) {
        int r = conf_lists(conf_path, module, owner, detail, cap);
        if (r < 0)
            return MS_ERR_PKCS11;
        allowed = r;
    } else if (!allowed) {
        ms_detail_set(detail, cap,
                      "PKCS#11: module %s is not allowed: it is not one of Debian's "
                      "modules and %s does not list it (root must add \"module = %s\" "
                      "there)",
                      module, conf_path ? conf_path : "no configuration file", module);
    }
    if (!allowed)
        return MS_ERR_PKCS11;
    return path_trusted(module, owner, "module", detail, cap);
}

typedef struct p11_conn {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    int initialized; /* we called C_Initialize and must finalize */
    CK_SESSION_HANDLE session;
    int have_session, logged_in;
} p11_conn;

static void p11_close(p11_conn *c)
{
    if (c->logged_in)
        (void)c->f->C_Logout(c->session);
    if (c->have_session)
        (void)c->f->C_CloseSession(c->session);
    if (c->initialized)
        (void)c->f->C_Finalize(NULL);
    /* The module stays mapped: unloading a module that started threads or registered
     * atexit handlers (OpenSSL inside SoftHSM does) is unsafe, and a second dlopen of
     * the same path then reuses it. */
    memset(c, 0, sizeof *c);
}

/* Token labels are 32 characters padded with spaces. */
static int label_matches(const unsigned char label[32], const char *want)
{
    size_t n = strlen(want);
    if (n > 32)
        return 0;
    if (memcmp(label, want, n) != 0)
        return 0;
    for (size_t i = n; i < 32; i++)
        if (label[i] != ' ')
            return 0;
    return 1;
}

static ms_err p11_open(p11_conn *c, const ms_p11_target *t, char *detail, size_t cap)
{
    memset(c, 0, sizeof *c);
    if (t->module == NULL || t->token_label == NULL || t->key_label == NULL ||
        (t->pin == NULL && t->pin_len != 0)) {
        ms_detail_set(detail, cap, "PKCS#11: module, token label and key label are required");
        return MS_ERR_ARG;
    }
    /* Never load what the sealed file or the store names unless root allowed it. */
    ms_err err = ms_p11_module_check(t->module, MS_PKCS11_CONF, 0, detail, cap);
    if (err != MS_OK)
        return err;
    c->dl = dlopen(t->module, RTLD_NOW | RTLD_LOCAL);
    if (c->dl == NULL) {
        ms_detail_set(detail, cap, "PKCS#11: cannot load module %s", t->module);
        return MS_ERR_PKCS11;
    }
    CK_C_GetFunctionList get_list;
    void *sym = dlsym(c->dl, "C_GetFunctionList");
    if (sym == NULL) {
        ms_detail_set(detail, cap, "PKCS#11: %s has no C_GetFunctionList", t->module);
        return MS_ERR_PKCS11;
    }
    /* POSIX: a data pointer from dlsym may be converted to a function pointer. */
    memcpy(&get_list, &sym, sizeof get_list);
    CK_RV rv = get_list(&c->f);
    if (rv != CKR_OK || c->f == NULL) {
        ms_detail_set(detail, cap, "PKCS#11: C_GetFunctionList failed (CKR 0x%lx)",
                      (unsigned long)rv);
        return MS_ERR_PKCS11;
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = c->f->C_Initialize(&args);
    if (rv == CKR_OK) {
        c->initialized = 1;
    } else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        ms_detail_set(detail, cap, "PKCS#11: C_Initialize failed (CKR 0x%lx)", (unsigned long)rv);
        return MS_ERR_PKCS11;
    }

    CK_SLOT_ID slots[64];
    CK_ULONG n_slots = sizeof slots / sizeof slots[0];
    rv = c->f->C_GetSlotList(CK_TRUE, slots, &n_slots);
    if (rv != CKR_OK) {
        ms_detail_set(detail, cap, "PKCS#11: C_GetSlotList failed (CKR 0x%lx)", (unsigned long)rv);
        return MS_ERR_PKCS11;
    }
    CK_SLOT_ID slot = 0;
    int found = 0;
    for (CK_ULONG i = 0; i < n_slots && !found; i++) {
        CK_TOKEN_INFO info;
        if (c->f->C_GetTokenInfo(slots[i], &info) == CKR_OK &&
            (info.flags & CKF_TOKEN_INITIALIZED) && label_matches(info.label, t->token_label)) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found) {
        ms_detail_set(detail, cap, "PKCS#11: no token labelled '%s' in %s", t->token_label,
                      t->module);
        return MS_ERR_PKCS11;
    }
    rv = c->f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                             &c->session);
    if (rv != CKR_OK) {
        ms_detail_set(detail, cap, "PKCS#11: cannot open a session on token '%s' (CKR 0x%lx)",
                      t->token_label, (unsigned long)rv);
        return MS_ERR_PKCS11;
    }
    c->have_session = 1;
    rv = c->f->C_Login(c->session, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)t->pin,
                       (CK_ULONG)t->pin_len);
    if (rv == CKR_USER_ALREADY_LOGGED_IN) {
        rv = CKR_OK; /* another session of this process is logged in: the token is ours */
    } else if (rv == CKR_OK) {
        c->logged_in = 1;
    }
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        ms_detail_set(detail, cap, "PKCS#11: wrong PIN for token '%s'", t->token_label);
        return MS_ERR_PKCS11;
    }
    if (rv == CKR_PIN_LOCKED) {
        ms_detail_set(detail, cap, "PKCS#11: the user PIN of token '%s' is locked", t->token_label);
        return MS_ERR_PKCS11;
    }
    if (rv != CKR_OK) {
        ms_detail_set(detail, cap, "PKCS#11: login to token '%s' failed (CKR 0x%lx)",
                      t->token_label, (unsigned long)rv);
        return MS_ERR_PKCS11;
    }
    return MS_OK;
}

/* The secret key labelled key_label; 0 found, 1 absent, -1 error (detail set). */
static int p11_find_key(p11_conn *c, const char *key_label, CK_OBJECT_HANDLE *key, char *detail,
                        size_t cap)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_LABEL, (void *)(uintptr_t)key_label, strlen(key_label)},
    };
    CK_RV rv = c->f->C_FindObjectsInit(c->session, tmpl, sizeof tmpl / sizeof tmpl[0]);
    if (rv != CKR_OK) {
        ms_detail_set(detail, cap, "PKCS#11: C_FindObjectsInit failed (CKR 0x%lx)",
                      (unsigned long)rv);
        return -1;
    }
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rv = c->f->C_FindObjects(c->session, found, 2, &n);
    (void)c->f->C_FindObjectsFinal(c->session);
    if (rv != CKR_OK) {
        ms_detail_set(detail, cap, "PKCS#11: C_FindObjects failed (CKR 0x%lx)", (unsigned long)rv);
        return -1;
    }
    if (n == 0)
        return 1;
    if (n > 1) {
        /* Which one sealed the KEK cannot be told apart: refuse rather than guess. */
        ms_detail_set(detail, cap, "PKCS#11: several AES keys are labelled '%s'", key_label);
        return -1;
    }
    *key = found[0];
    return 0;
}

static ms_err p11_create_key(p11_conn *c, const char *key_label, CK_OBJECT_HANDLE *key,
                             char *detail, size_t cap)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG value_len = 32;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_VALUE_LEN, &value_len, sizeof value_len},
        {CKA_LABEL, (void *)(uintptr_t)key_label, strlen(key_label)},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},
        {CKA_WRAP, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_RV rv = c->f->C_GenerateKey(c->session, &mech, tmpl, sizeof tmpl / sizeof tmpl[0], key);
    if (rv != CKR_OK) {
        ms_detail_set(detail, cap, "PKCS#11: cannot create AES key '%s' (CKR 0x%lx)", key_label,
                      (unsigned long)rv);
        return MS_ERR_PKCS11;
    }
    return MS_OK;
}

static void gcm_params(CK_GCM_PARAMS *g, uint8_t *iv, const uint8_t *aad, size_t aad_len)
{
    memset(g, 0, sizeof *g);
    g->pIv = iv;
    g->ulIvLen = P11_IV_BYTES;
    g->ulIvBits = P11_IV_BYTES * 8;
    g->pAAD = (CK_BYTE_PTR)(uintptr_t)aad;
    g->ulAADLen = (CK_ULONG)aad_len;
    g->ulTagBits = P11_TAG_BYTES * 8;
}

/* Opens a session on t's token and finds its key (creating it if `create` and absent).
 * The caller closes c whatever the result. */
static ms_err p11_open_key(p11_conn *c, const ms_p11_target *t, int create, CK_OBJECT_HANDLE *key,
                           char *detail, size_t cap)
{
    ms_err err = p11_open(c, t, detail, cap);
    if (err != MS_OK)
        return err;
    int r = p11_find_key(c, t->key_label, key, detail, cap);
    if (r < 0)
        return MS_ERR_PKCS11;
    if (r == 1 && create)
        return p11_create_key(c, t->key_label, key, detail, cap);
    if (r == 1) {
        ms_detail_set(detail, cap, "PKCS#11: token '%s' has no AES key labelled '%s'",
                      t->token_label, t->key_label);
        return MS_ERR_PKCS11;
    }
    return MS_OK;
}

ms_err ms_p11_wrap_kek(uint8_t wrapped[MS_P11_WRAPPED_LEN], const ms_p11_target *t, int create,
                       const uint8_t kek[MS_P11_KEK_BYTES], const uint8_t *aad, size_t aad_len,
                       char *detail, size_t cap)
{
    ms_detail_set(detail, cap, "%s", "");
    if (wrapped == NULL || t == NULL || kek == NULL || (aad == NULL && aad_len != 0))
        return MS_ERR_ARG;
    p11_conn c;
    CK_OBJECT_HANDLE key = 0;
    ms_err err = p11_open_key(&c, t, create, &key, detail, cap);
    if (err == MS_OK) {
        /* A fresh random IV from our generator: the key is long-lived, so IVs must
         * never repeat; 96 random bits keep that safe for far more seals than a KMS makes. */
        uint8_t *iv = wrapped;
        err = ms_rng_fill(NULL, iv, P11_IV_BYTES);
        if (err == MS_OK) {
            CK_GCM_PARAMS g;
            gcm_params(&g, iv, aad, aad_len);
            CK_MECHANISM mech = {CKM_AES_GCM, &g, sizeof g};
            CK_RV rv = c.f->C_EncryptInit(c.session, &mech, key);
            CK_ULONG out_len = MS_P11_WRAPPED_LEN - P11_IV_BYTES;
            if (rv == CKR_OK)
                rv = c.f->C_Encrypt(c.session, (CK_BYTE_PTR)(uintptr_t)kek, MS_P11_KEK_BYTES,
                                    wrapped + P11_IV_BYTES, &out_len);
            if (rv != CKR_OK || out_len != MS_P11_KEK_BYTES + P11_TAG_BYTES) {
                ms_detail_set(detail, cap,
                              "PKCS#11: AES-GCM encryption in token '%s' failed (CKR 0x%lx)",
                              t->token_label, (unsigned long)rv);
                err = MS_ERR_PKCS11;
            }
        }
    }
    p11_close(&c);
    return err;
}

ms_err ms_p11_unwrap_kek(uint8_t kek[MS_P11_KEK_BYTES], const ms_p11_target *t,
                         const uint8_t wrapped[MS_P11_WRAPPED_LEN], const uint8_t *aad,
                         size_t aad_len, char *detail, size_t cap)
{
    ms_detail_set(detail, cap, "%s", "");
    if (wrapped == NULL || t == NULL || kek == NULL || (aad == NULL && aad_len != 0))
        return MS_ERR_ARG;
    p11_conn c;
    CK_OBJECT_HANDLE key = 0;
    ms_err err = p11_open_key(&c, t, 0, &key, detail, cap);
    if (err == MS_OK) {
        uint8_t iv[P11_IV_BYTES];
        memcpy(iv, wrapped, sizeof iv);
        CK_GCM_PARAMS g;
        gcm_params(&g, iv, aad, aad_len);
        CK_MECHANISM mech = {CKM_AES_GCM, &g, sizeof g};
        /* Room for the plaintext only; some modules want the tag's room too. */
        uint8_t out[MS_P11_KEK_BYTES + P11_TAG_BYTES];
        CK_ULONG out_len = sizeof out;
        CK_RV rv = c.f->C_DecryptInit(c.session, &mech, key);
        if (rv == CKR_OK)
            rv = c.f->C_Decrypt(c.session, (CK_BYTE_PTR)(uintptr_t)(wrapped + P11_IV_BYTES),
                                MS_P11_WRAPPED_LEN - P11_IV_BYTES, out, &out_len);
        if (rv != CKR_OK || out_len != MS_P11_KEK_BYTES) {
            /* The header checksum already passed, so a failing tag means this token's
             * key is not the one that sealed (e.g. recreated under the same label). */
            ms_detail_set(detail, cap,
                          "PKCS#11: key '%s' in token '%s' cannot decrypt the sealed KEK "
                          "(CKR 0x%lx): not the key that sealed this file",
                          t->key_label, t->token_label, (unsigned long)rv);
            err = MS_ERR_PKCS11;
        } else {
            memcpy(kek, out, MS_P11_KEK_BYTES);
        }
        ms_wipe(out, sizeof out);
    }
    p11_close(&c);
    return err;
}
