/*
 * The PKCS#11 seal against SoftHSM2 in a private token directory: round trip, the key
 * the seal creates (sensitive, never extractable), reuse of that key by a second seal,
 * and each refusal: wrong PIN, missing module, token or key, a different key under the
 * same label, damaged ciphertext or wrapped KEK. SoftHSM2 missing is a failure.
 * The module allow-list: a sealed file naming a module of the attacker's (a copy of
 * SoftHSM2 that would happily read the PIN) is refused, and the root-owned configuration
 * file's checks (owner, modes along the path, format).
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
/* The tests are not given p11-kit's include directory (only the library is), so the
 * header is named from /usr/include. */
#include <p11-kit-1/p11-kit/pkcs11.h>

#include "kms/pkcs11.h"
#include "kms/seal.h"
#include "testutil.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static char dir[256];

/* The detail of the last call without an object (or copied from an unseal object). */
static char why[256];

#define CHECK_DETAIL(needle)                                                                       \
    do {                                                                                           \
        int ok_ = strstr(why, (needle)) != NULL;                                                   \
        CHECK(ok_);                                                                                \
        if (!ok_)                                                                                  \
            fprintf(stderr, "  detail was \"%s\", want \"%s\"\n", why, (needle));                  \
    } while (0)

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static size_t read_all(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static size_t head_len(const uint8_t *f)
{
    return 28 + (((size_t)f[26] << 8) | f[27]) + 12 + 4 + 32;
}

static void fix_checksum(uint8_t *f)
{
    size_t h = head_len(f) - 32;
    unsigned int olen = 0;
    EVP_Digest(f, h, f + h, &olen, EVP_sha256(), NULL);
}

/* Offset of the first occurrence of s in the header, or 0. */
static size_t find_in_header(const uint8_t *f, const char *s)
{
    size_t n = strlen(s), h = head_len(f);
    for (size_t i = 28; i + n <= h; i++)
        if (memcmp(f + i, s, n) == 0)
            return i;
    return 0;
}

static int setup_softhsm(void)
{
    char conf[512], tokens[512], cmd[2048];
    path_in(conf, sizeof conf, "softhsm2.conf");
    path_in(tokens, sizeof tokens, "tokens");
    if (mkdir(tokens, 0700) != 0)
        return 0;
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return 0;
    fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
               "slots.removable = false\n", tokens);
    fclose(f);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof cmd,
             "softhsm2-util --init-token --free --label test --pin 1234 --so-pin 5678 "
             ">/dev/null && softhsm2-util --init-token --free --label othr --pin 1234 "
             "--so-pin 5678 >/dev/null");
    return system(cmd) == 0;
}

static int secrets_equal(const ms_kms_secrets *a, const ms_kms_secrets *b)
{
    if (a->n_generations != b->n_generations)
        return 0;
    for (size_t i = 0; i < a->n_generations; i++)
        if (a->gen[i].from_period != b->gen[i].from_period ||
            memcmp(a->gen[i].z, b->gen[i].z, MS_SAKKE_SECRET_BYTES) ||
            memcmp(a->gen[i].ksak, b->gen[i].ksak, MS_ECCSI_SCALAR_BYTES))
            return 0;
    return memcmp(a->store_key, b->store_key, MS_P11_KEK_BYTES) == 0 &&
           memcmp(a->audit_key, b->audit_key, MS_P11_KEK_BYTES) == 0;
}

static ms_seal_params p11_params(const char *token, const char *pin, const char *key)
{
    ms_seal_params p;
    memset(&p, 0, sizeof p);
    p.method = MS_SEAL_PKCS11;
    p.module = MODULE;
    p.token_label = token;
    p.pin = (const uint8_t *)pin;
    p.pin_len = strlen(pin);
    p.key_label = key;
    return p;
}

static ms_err unseal_file(const char *path, const char *pin, ms_kms_secrets **out)
{
    ms_unseal *u = NULL;
    *out = NULL;
    ms_err err = ms_unseal_open(&u, path, why, sizeof why);
    if (err != MS_OK)
        return err;
    err = ms_unseal_pkcs11(u, out, (const uint8_t *)pin, strlen(pin));
    snprintf(why, sizeof why, "%s", ms_unseal_detail(u));
    ms_unseal_free(u);
    return err;
}

static ms_err unseal_bytes(const uint8_t *f, size_t len, const char *pin)
{
    char path[512];
    path_in(path, sizeof path, "edited.seal");
    write_all(path, f, len);
    ms_kms_secrets *out = NULL;
    ms_err err = unseal_file(path, pin, &out);
    ms_kms_secrets_free(out);
    return err;
}

/* Looks at the key the seal created, through the module directly. */
static void check_key_attributes(const char *key_label)
{
    void *dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
    CHECK(dl != NULL);
    if (dl == NULL)
        return;
    CK_C_GetFunctionList get;
    void *sym = dlsym(dl, "C_GetFunctionList");
    memcpy(&get, &sym, sizeof get);
    CK_FUNCTION_LIST_PTR fl = NULL;
    CHECK(get(&fl) == CKR_OK);
    CK_RV irv = fl->C_Initialize(NULL);
    CHECK(irv == CKR_OK || irv == CKR_CRYPTOKI_ALREADY_INITIALIZED);
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CHECK(fl->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK);
    int found = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK || memcmp(ti.label, "test ", 5) != 0)
            continue;
        CK_SESSION_HANDLE s;
        CHECK(fl->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK);
        CHECK(fl->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4) == CKR_OK);
        CK_ATTRIBUTE t = {CKA_LABEL, (void *)(uintptr_t)key_label, strlen(key_label)};
        CK_OBJECT_HANDLE h[4];
        CK_ULONG nh = 0;
        CHECK(fl->C_FindObjectsInit(s, &t, 1) == CKR_OK);
        CHECK(fl->C_FindObjects(s, h, 4, &nh) == CKR_OK);
        fl->C_FindObjectsFinal(s);
        CHECK(nh == 1); /* the second seal reused the key */
        if (nh >= 1) {
            found = 1;
            CK_BBOOL sens = CK_FALSE, extr = CK_TRUE, tok = CK_FALSE, ext_ever = CK_TRUE;
            CK_ULONG vlen = 0;
            CK_KEY_TYPE kt = 0;
            CK_ATTRIBUTE a[] = {
                {CKA_SENSITIVE, &sens, sizeof sens}, {CKA_EXTRACTABLE, &extr, sizeof extr},
                {CKA_TOKEN, &tok, sizeof tok},       {CKA_NEVER_EXTRACTABLE, &ext_ever, sizeof ext_ever},
                {CKA_VALUE_LEN, &vlen, sizeof vlen}, {CKA_KEY_TYPE, &kt, sizeof kt},
            };
            CHECK(fl->C_GetAttributeValue(s, h[0], a, 6) == CKR_OK);
            CHECK(sens == CK_TRUE && extr == CK_FALSE && tok == CK_TRUE && ext_ever == CK_TRUE);
            CHECK(vlen == 32 && kt == CKK_AES);
            uint8_t value[64];
            CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof value};
            CHECK(fl->C_GetAttributeValue(s, h[0], &v, 1) == CKR_ATTRIBUTE_SENSITIVE);
        }
        fl->C_Logout(s);
        fl->C_CloseSession(s);
    }
    CHECK(found);
    if (irv == CKR_OK)
        fl->C_Finalize(NULL);
}

/* The attack: whoever can write the KMS directory points the sealed file at a library
 * of theirs (here a copy of SoftHSM2, which would work and see the PIN). The path has
 * the length of MODULE so the header edit keeps its layout. */
static void check_foreign_module(const uint8_t *f, size_t len)
{
    static uint8_t g[16384];
    char evil_dir[] = "/tmp/p11e-XXXXXX", evil[64], cmd[256];
    if (mkdtemp(evil_dir) == NULL) {
        CHECK(0);
        return;
    }
    snprintf(evil, sizeof evil, "%s/libsofthsm2.so", evil_dir);
    CHECK(strlen(evil) == strlen(MODULE));
    snprintf(cmd, sizeof cmd, "cp -L '%s' '%s'", MODULE, evil);
    CHECK(system(cmd) == 0);
    size_t at = find_in_header(f, MODULE);
    CHECK(at != 0);
    if (at != 0 && strlen(evil) == strlen(MODULE)) {
        memcpy(g, f, len);
        memcpy(g + at, evil, strlen(evil));
        fix_checksum(g);
        CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_PKCS11);
        CHECK_DETAIL("is not allowed");
        CHECK_DETAIL(evil);
    }
    /* Nor may a seal name it. */
    ms_seal_params p = p11_params("test", "1234", "kms-master");
    p.module = evil;
    ms_kms_secrets *s = NULL;
    CHECK_ERR(ms_kms_secrets_new(&s), MS_OK);
    CHECK_ERR(ms_kms_secrets_generate(s, 100, NULL), MS_OK);
    char out[512];
    path_in(out, sizeof out, "evil.seal");
    CHECK_ERR(ms_seal_write(out, s, &p, NULL, NULL, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("is not allowed");
    ms_kms_secrets_free(s);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", evil_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", evil_dir);
}

/* Whether `path` and the directories above it are owned by us or root and not writable
 * by group or others (then a configuration file below it can be trusted). */
static int safe_ancestry(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (;;) {
        struct stat st;
        if (stat(buf, &st) != 0)
            return 0;
        bool sticky_root = st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0; /* like /tmp */
        if (!sticky_root && ((st.st_uid != 0 && st.st_uid != getuid()) ||
                             (st.st_mode & (S_IWGRP | S_IWOTH))))
            return 0;
        char *slash = strrchr(buf, '/');
        if (slash == NULL || (slash == buf && buf[1] == '\0'))
            return 1;
        if (slash == buf)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    write_all(path, (const uint8_t *)text, strlen(text));
    chmod(path, mode);
}

/* The allow-list check itself: built-in paths, the configuration file and its refusals. */
static void check_module_allow_list(void)
{
    uid_t me = getuid();
    CHECK_ERR(ms_p11_module_check(MODULE, NULL, 0, why, sizeof why), MS_OK);
    CHECK_ERR(ms_p11_module_check(MODULE, "/nonexistent/pkcs11.conf", 0, why, sizeof why), MS_OK);
    CHECK_ERR(ms_p11_module_check("libsofthsm2.so", NULL, 0, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("absolute path");
    CHECK_ERR(ms_p11_module_check("/usr/lib/softhsm/../softhsm/libsofthsm2.so", NULL, 0, why,
                                  sizeof why),
              MS_ERR_PKCS11);
    CHECK_DETAIL("is not allowed");
    CHECK(strcmp(ms_p11_conf_path(), "/etc/mikeysakke/pkcs11.conf") == 0 ||
          ms_p11_conf_path()[0] == '/');

    /* A configuration file in a directory of ours below the working directory. */
    char cwd[512], cdir[600], conf[700], mod[700], text[900], cmd[1600];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        CHECK(0);
        return;
    }
    snprintf(cdir, sizeof cdir, "%s/p11conf-XXXXXX", cwd);
    if (mkdtemp(cdir) == NULL) {
        CHECK(0);
        return;
    }
    chmod(cdir, 0755);
    snprintf(conf, sizeof conf, "%s/pkcs11.conf", cdir);
    snprintf(mod, sizeof mod, "%s/libvendor-pkcs11.so", cdir);
    snprintf(cmd, sizeof cmd, "cp -L '%s' '%s' && chmod 0644 '%s'", MODULE, mod, mod);
    CHECK(system(cmd) == 0);
    snprintf(text, sizeof text, "# modules of this site\n\n  module = %s  \n", mod);
    write_text(conf, text, 0644);
    if (safe_ancestry(cdir)) {
        CHECK_ERR(ms_p11_module_check(mod, conf, me, why, sizeof why), MS_OK);
    } else {
        printf("note: %s has a group/other-writable ancestor: the accepted case is not run\n",
               cwd);
    }
    /* Not listed, a malformed line, writable by others, a writable directory, a module
     * others may write. */
    CHECK_ERR(ms_p11_module_check("/opt/other/pkcs11.so", conf, me, why, sizeof why),
              MS_ERR_PKCS11);
    CHECK_DETAIL("is not listed in");
    write_text(conf, "modules: /x.so\n", 0644);
    CHECK_ERR(ms_p11_module_check(mod, conf, me, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("line 1: expected");
    write_text(conf, text, 0664);
    CHECK_ERR(ms_p11_module_check(mod, conf, me, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("writable by group or others");
    chmod(conf, 0644);
    chmod(cdir, 0777);
    CHECK_ERR(ms_p11_module_check(mod, conf, me, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("directory");
    chmod(cdir, 0755);
    chmod(mod, 0666);
    CHECK_ERR(ms_p11_module_check(mod, conf, me, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("the module");
    chmod(mod, 0644);
    if (me != 0) {
        /* Owned by us but production trusts root only. */
        CHECK_ERR(ms_p11_module_check(mod, conf, 0, why, sizeof why), MS_ERR_PKCS11);
        CHECK_DETAIL("not owned by root");
    }
    /* A sticky directory writable by all (like /tmp) is trusted above the file only when
     * root owns it: one of another user's is refused. */
    char tdir[700], tconf[760];
    snprintf(tdir, sizeof tdir, "%s/sticky", cdir);
    if (mkdir(tdir, 0755) == 0) {
        snprintf(tconf, sizeof tconf, "%s/pkcs11.conf", tdir);
        write_text(tconf, text, 0644);
        chmod(tdir, 01777);
        if (me == 0)
            CHECK(chown(tdir, 65534, 65534) == 0); /* nobody's */
        CHECK_ERR(ms_p11_module_check(mod, tconf, me, why, sizeof why), MS_ERR_PKCS11);
        CHECK_DETAIL("directory");
        unlink(tconf);
        rmdir(tdir);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", cdir);
}

int main(void)
{
    ms_test_seed();
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/ms-p11-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    CHECK(access(MODULE, R_OK) == 0); /* SoftHSM2 must be installed: no skipping */
    check_module_allow_list();
    int ready = setup_softhsm();
    CHECK(ready);
    if (!ready)
        return ms_test_finish();

    ms_kms_secrets *s = NULL, *out = NULL;
    CHECK_ERR(ms_kms_secrets_new(&s), MS_OK);
    CHECK_ERR(ms_kms_secrets_generate(s, 100, NULL), MS_OK);
    CHECK_ERR(ms_kms_secrets_add_generation(s, 112, NULL, why, sizeof why), MS_OK);

    char path[512], path2[512];
    path_in(path, sizeof path, "p11.seal");
    path_in(path2, sizeof path2, "p11-second.seal");

    /* Seal (creates the key), unseal. */
    ms_seal_params p = p11_params("test", "1234", "kms-master");
    CHECK_ERR(ms_seal_write(path, s, &p, NULL, NULL, why, sizeof why), MS_OK);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    ms_unseal *u = NULL;
    CHECK_ERR(ms_unseal_open(&u, path, why, sizeof why), MS_OK);
    CHECK(ms_unseal_method(u) == MS_SEAL_PKCS11);
    CHECK_ERR(ms_unseal_passphrase(u, &out, (const uint8_t *)"1234", 4), MS_ERR_ARG);
    CHECK_ERR(ms_unseal_pkcs11(u, &out, (const uint8_t *)"1234", 4), MS_OK);
    CHECK(out != NULL && secrets_equal(out, s));
    ms_kms_secrets_free(out);
    out = NULL;
    /* Wrong PIN. */
    CHECK_ERR(ms_unseal_pkcs11(u, &out, (const uint8_t *)"0000", 4), MS_ERR_PKCS11);
    snprintf(why, sizeof why, "%s", ms_unseal_detail(u));
    CHECK_DETAIL("wrong PIN");
    CHECK(out == NULL);
    ms_unseal_free(u);

    /* A second seal reuses the key; both files open. */
    CHECK_ERR(ms_seal_write(path2, s, &p, NULL, NULL, why, sizeof why), MS_OK);
    CHECK_ERR(unseal_file(path2, "1234", &out), MS_OK);
    CHECK(out != NULL && secrets_equal(out, s));
    ms_kms_secrets_free(out);
    CHECK_ERR(unseal_file(path, "1234", &out), MS_OK);
    ms_kms_secrets_free(out);
    check_key_attributes("kms-master");

    /* Seal refusals. */
    ms_seal_params bad = p11_params("nope", "1234", "kms-master");
    CHECK_ERR(ms_seal_write(path2, s, &bad, NULL, NULL, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("no token labelled 'nope'");
    bad = p11_params("test", "9999", "kms-master");
    CHECK_ERR(ms_seal_write(path2, s, &bad, NULL, NULL, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("wrong PIN");
    bad = p11_params("test", "1234", "kms-master");
    bad.module = "/nonexistent/libpkcs11.so";
    CHECK_ERR(ms_seal_write(path2, s, &bad, NULL, NULL, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("module /nonexistent/libpkcs11.so is not allowed");
    bad.module = NULL;
    CHECK_ERR(ms_seal_write(path2, s, &bad, NULL, NULL, why, sizeof why), MS_ERR_ARG);
    /* A failed seal leaves the previous file intact. */
    CHECK_ERR(unseal_file(path2, "1234", &out), MS_OK);
    ms_kms_secrets_free(out);

    /* Unseal refusals, by editing the header (checksum fixed so the edit is read). */
    static uint8_t f[16384], g[16384];
    size_t len = read_all(path, f, sizeof f);
    size_t h = head_len(f);
    size_t at = find_in_header(f, "kms-master");
    CHECK(at != 0);
    memcpy(g, f, len);
    g[at + 9] = 'x'; /* key "kms-mastex" is not in the token */
    fix_checksum(g);
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_PKCS11);
    CHECK_DETAIL("no AES key labelled 'kms-mastex'");
    at = find_in_header(f, "test");
    CHECK(at != 0);
    memcpy(g, f, len);
    g[at] = 'b'; /* token "best" */
    fix_checksum(g);
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_PKCS11);
    CHECK_DETAIL("no token labelled 'best'");
    at = find_in_header(f, "softhsm");
    CHECK(at != 0);
    memcpy(g, f, len);
    g[at] = 'S'; /* module path that does not exist */
    fix_checksum(g);
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_PKCS11);
    CHECK_DETAIL("module /usr/lib/Softhsm/libsofthsm2.so is not allowed");
    check_foreign_module(f, len);
    /* Another token's key under the same label: the token cannot open the wrapped KEK. */
    ms_seal_params po = p11_params("othr", "1234", "kms-master");
    CHECK_ERR(ms_seal_write(path2, s, &po, NULL, NULL, why, sizeof why), MS_OK);
    at = find_in_header(f, "test");
    memcpy(g, f, len);
    memcpy(g + at, "othr", 4);
    fix_checksum(g);
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_PKCS11);
    CHECK_DETAIL("not the key that sealed");
    /* The wrapped KEK (last 60 octets of the parameters) damaged. */
    memcpy(g, f, len);
    g[h - 32 - 16 - 30] ^= 0x01;
    fix_checksum(g);
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_PKCS11);
    /* The same without fixing the checksum: named as header damage. */
    memcpy(g, f, len);
    g[h - 32 - 16 - 30] ^= 0x01;
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_SEALED_FILE);
    CHECK_DETAIL("header checksum");
    /* Ciphertext and tag. */
    memcpy(g, f, len);
    g[h + 7] ^= 0x01;
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_SEALED_FILE);
    CHECK_DETAIL("fail authentication");
    memcpy(g, f, len);
    g[len - 1] ^= 0x80;
    CHECK_ERR(unseal_bytes(g, len, "1234"), MS_ERR_SEALED_FILE);
    CHECK_ERR(unseal_bytes(f, len - 1, "1234"), MS_ERR_SEALED_FILE);
    CHECK_ERR(unseal_bytes(f, len, "1234"), MS_OK); /* the unedited copy still opens */

    /* The internal wrap refuses to create a key when asked not to. */
    ms_p11_target t = {MODULE, "test", (const uint8_t *)"1234", 4, "absent-key"};
    uint8_t wrapped[MS_P11_WRAPPED_LEN], kek[MS_P11_KEK_BYTES] = {1}, back[MS_P11_KEK_BYTES];
    CHECK_ERR(ms_p11_wrap_kek(wrapped, &t, 0, kek, NULL, 0, why, sizeof why), MS_ERR_PKCS11);
    CHECK_DETAIL("no AES key labelled 'absent-key'");
    t.key_label = "kms-master";
    CHECK_ERR(ms_p11_wrap_kek(wrapped, &t, 0, kek, (const uint8_t *)"ad", 2, why, sizeof why),
              MS_OK);
    CHECK_ERR(ms_p11_unwrap_kek(back, &t, wrapped, (const uint8_t *)"ad", 2, why, sizeof why),
              MS_OK);
    CHECK_MEM(back, kek, sizeof kek);
    CHECK_ERR(ms_p11_unwrap_kek(back, &t, wrapped, (const uint8_t *)"AD", 2, why, sizeof why),
              MS_ERR_PKCS11);

    ms_kms_secrets_free(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
