/*
 * The configuration file reader (tools/config.c): a full file read back, quoting and
 * trimming, the command-line override, and one test per refusal with its exact code and
 * the file:line in the message. Files are written into a private temporary folder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

static char dir[64];
static char detail[512];

/* Writes `text` to dir/name with `mode` and returns the path (static buffer). */
static const char *put(const char *name, const char *text, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

/* Loads `text` (mode 0600) and expects `want`; on a refusal the message must contain
 * `needle` (e.g. ":3:" for the line) and the config must not be returned. */
static void expect(const char *text, ms_err want, const char *needle)
{
    cli_config *c = (cli_config *)1;
    const char *path = put("t.conf", text, 0600);
    detail[0] = '\0';
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), want);
    if (want != MS_OK) {
        CHECK(c == NULL);
        CHECK(strstr(detail, needle) != NULL);
        if (strstr(detail, needle) == NULL)
            fprintf(stderr, "  message: %s (want '%s')\n", detail, needle);
    }
    if (want == MS_OK)
        cli_config_free(c);
}

static void test_full_file(void)
{
    char text[1024];
    snprintf(text, sizeof text,
             "# the KMS\n"
             "\n"
             "[kms]\n"
             "  dir    =   /var/lib/mikeysakke/kms  \n"
             "listen=127.0.0.1\n"
             "port = \"8443\"\n"
             "cert = '/etc/mikeysakke/tls/kms crt.pem'\n"
             "\t; another comment style\n"
             "[dist]\r\n"
             "dir = /srv/export\r\n"
             "[fetch]\n"
             "url = https://kms.example.org:8443/#x\n"
             "passphrase-file = %s/pass\n", dir);
    put("pass", "a passphrase\n", 0600);
    const char *path = put("full.conf", text, 0644);
    cli_config *c = NULL;
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), MS_OK);
    if (c == NULL)
        return;
    const char *v;
    CHECK((v = cli_config_get(c, "kms", "dir")) && strcmp(v, "/var/lib/mikeysakke/kms") == 0);
    CHECK((v = cli_config_get(c, "kms", "listen")) && strcmp(v, "127.0.0.1") == 0);
    CHECK((v = cli_config_get(c, "kms", "port")) && strcmp(v, "8443") == 0);
    CHECK((v = cli_config_get(c, "kms", "cert")) &&
          strcmp(v, "/etc/mikeysakke/tls/kms crt.pem") == 0);
    CHECK((v = cli_config_get(c, "dist", "dir")) && strcmp(v, "/srv/export") == 0);
    /* '#' inside a value is kept: comments are whole lines */
    CHECK((v = cli_config_get(c, "fetch", "url")) &&
          strcmp(v, "https://kms.example.org:8443/#x") == 0);
    CHECK(cli_config_get(c, "kms", "key") == NULL);
    CHECK(cli_config_get(c, "dist", "listen") == NULL);
    CHECK(cli_config_get(c, "nosuch", "dir") == NULL);
    CHECK(cli_config_get(NULL, "kms", "dir") == NULL);

    /* the command line wins; the file fills in; neither gives NULL */
    CHECK(strcmp(cli_config_pick("9000", c, "kms", "port"), "9000") == 0);
    CHECK(strcmp(cli_config_pick(NULL, c, "kms", "port"), "8443") == 0);
    CHECK(cli_config_pick(NULL, c, "kms", "threads") == NULL);
    CHECK(strcmp(cli_config_pick("x", NULL, "kms", "port"), "x") == 0);

    /* where a value came from, for messages */
    char want[160];
    snprintf(want, sizeof want, "%s:6", path);
    CHECK(strcmp(cli_config_where(c, "kms", "port"), want) == 0);
    CHECK(strcmp(cli_config_where(c, "kms", "threads"), "") == 0);

    /* a command narrows the keys it accepts */
    static const char *const serve_keys[] = {"dir", "listen", "port", "cert", "key", NULL};
    static const char *const narrow[] = {"dir", "listen", NULL};
    CHECK_ERR(cli_config_check(c, "kms", serve_keys, detail, sizeof detail), MS_OK);
    CHECK_ERR(cli_config_check(c, "kms", narrow, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, ":6:") != NULL && strstr(detail, "'port'") != NULL);
    CHECK_ERR(cli_config_check(NULL, "kms", narrow, detail, sizeof detail), MS_OK);
    cli_config_free(c);
}

static void test_syntax_refusals(void)
{
    expect("[kms]\ndir = /x\n[bogus]\n", MS_ERR_CONFIG, ":3: unknown section [bogus]");
    expect("[kms]\n\ndirr = /x\n", MS_ERR_CONFIG, ":3: unknown key 'dirr' in [kms]");
    /* keys of one section are not accepted in another */
    expect("[dist]\nmax-body = 100\n", MS_ERR_CONFIG, ":2: unknown key 'max-body' in [dist]");
    expect("dir = /x\n[kms]\n", MS_ERR_CONFIG, ":1: 'dir' is outside any [section]");
    expect("[kms]\ndir = /x\ndir = /y\n", MS_ERR_CONFIG, ":3: 'dir' set twice");
    expect("[kms]\ndir = /x\n[dist]\n[kms]\n", MS_ERR_CONFIG, ":4: section [kms] appears twice");
    expect("[kms]\n[kms]\n", MS_ERR_CONFIG, ":2: section [kms] appears twice");
    expect("[kms]\ndir =\n", MS_ERR_CONFIG, ":2: 'dir' has an empty value");
    expect("[kms]\ndir = \"\"\n", MS_ERR_CONFIG, ":2: 'dir' has an empty value");
    expect("[kms]\ndir = \"/x\n", MS_ERR_CONFIG, ":2: unterminated quote");
    expect("[kms]\ndir = '/x\"\n", MS_ERR_CONFIG, ":2: unterminated quote");
    expect("[kms]\njust some words\n", MS_ERR_CONFIG, ":2: expected 'key = value'");
    expect("[kms\n", MS_ERR_CONFIG, ":1: expected '[section]'");
    expect("[KMS]\n", MS_ERR_CONFIG, ":1: bad section name");
    expect("[kms]\nDir = /x\n", MS_ERR_CONFIG, ":2: bad key name");
    expect("[kms]\n = /x\n", MS_ERR_CONFIG, ":2: bad key name");

    /* a line over 1024 octets, a file over 64 KiB, a NUL byte */
    char *big = malloc(70 * 1024);
    memset(big, 'a', 70 * 1024);
    memcpy(big, "[kms]\ndir = /", 13);
    big[13 + 1100] = '\n';
    big[13 + 1101] = '\0';
    expect(big, MS_ERR_CONFIG, ":2: line longer than 1024");
    memset(big, '#', 70 * 1024 - 1);
    for (size_t i = 80; i < 70 * 1024 - 1; i += 81)
        big[i] = '\n';
    big[70 * 1024 - 1] = '\0';
    expect(big, MS_ERR_CONFIG, "larger than 65536");
    free(big);

    const char *path = put("nul.conf", "", 0600);
    FILE *f = fopen(path, "wb");
    fwrite("[kms]\ndir = /x\0y\n", 1, 17, f);
    fclose(f);
    cli_config *c = NULL;
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(c == NULL && strstr(detail, "NUL byte") != NULL);

    /* empty and comment-only files are fine: every setting then comes from options */
    expect("", MS_OK, "");
    expect("# nothing\n\n", MS_OK, "");
    expect("[kms]\n", MS_OK, "");
}

static void test_secrets_refused(void)
{
    /* a secret written into the file itself: refused, and never echoed back */
    expect("[fetch]\npassphrase-file = hunter2hunter2\n", MS_ERR_CONFIG,
           ":2: 'passphrase-file' looks like a secret");
    CHECK(strstr(detail, "hunter2") == NULL);
    /* a secret-sounding key that is not a -file key, even if known to no section: the
     * unknown-key check comes first, so it is still refused with the line */
    expect("[fetch]\npassphrase = hunter2\n", MS_ERR_CONFIG, ":2: unknown key 'passphrase'");
    CHECK(strstr(detail, "hunter2") == NULL);
    expect("[kms]\ntoken = abc\n", MS_ERR_CONFIG, ":2: unknown key 'token'");
    CHECK(strstr(detail, "abc") == NULL);

    /* a referenced secret file open to others */
    char text[256];
    put("open.pass", "pw\n", 0644);
    snprintf(text, sizeof text, "[fetch]\npassphrase-file = %s/open.pass\n", dir);
    expect(text, MS_ERR_KEYFILE_MODE, ":2: the file named by 'passphrase-file'");
    /* the same file once private is accepted; a file not there yet is left to the user */
    put("open.pass", "pw\n", 0600);
    expect(text, MS_OK, "");
    snprintf(text, sizeof text, "[fetch]\npassphrase-file = %s/later.pass\n", dir);
    expect(text, MS_OK, "");
    CHECK(strstr(detail, "pw") == NULL);

    /* a TLS private key readable by everyone; group-readable (ssl-cert style) is fine */
    put("tls.key", "k\n", 0644);
    snprintf(text, sizeof text, "[kms]\ncert = /x.crt\nkey = %s/tls.key\n", dir);
    expect(text, MS_ERR_KEYFILE_MODE, ":3: the private key file named by 'key'");
    put("tls.key", "k\n", 0640);
    expect(text, MS_OK, "");
}

/* The example shipped in dist/ must load as it is (found next to tests/vectors). */
static void test_shipped_example(void)
{
    const char *vec = getenv("MS_TEST_VECTORS");
    if (vec == NULL) {
        fprintf(stderr, "MS_TEST_VECTORS not set: example not checked\n");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/../../dist/mikeysakke.conf.example", vec);
    cli_config *c = NULL;
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), MS_OK);
    if (c == NULL) {
        fprintf(stderr, "  %s\n", detail);
        return;
    }
    const char *v;
    CHECK((v = cli_config_get(c, "kms", "dir")) && strcmp(v, "/var/lib/mikeysakke/kms") == 0);
    CHECK((v = cli_config_get(c, "dist", "port")) && strcmp(v, "8444") == 0);
    CHECK((v = cli_config_get(c, "fetch", "passphrase-file")) != NULL);
    cli_config_free(c);
}

static void test_file_refusals(void)
{
    cli_config *c = (cli_config *)1;
    const char *path = put("gw.conf", "[kms]\ndir = /x\n", 0620);
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    CHECK(c == NULL && strstr(detail, "writable by group or others") != NULL);
    c = (cli_config *)1;
    path = put("ow.conf", "[kms]\ndir = /x\n", 0602);
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    CHECK(c == NULL);
    /* readable by everyone is fine: the file holds no secret */
    c = NULL;
    path = put("or.conf", "[kms]\ndir = /x\n", 0644);
    CHECK_ERR(cli_config_load(&c, path, detail, sizeof detail), MS_OK);
    cli_config_free(c);

    char missing[128];
    snprintf(missing, sizeof missing, "%s/missing.conf", dir);
    c = (cli_config *)1;
    CHECK_ERR(cli_config_load(&c, missing, detail, sizeof detail), MS_ERR_IO);
    CHECK(c == NULL && strstr(detail, "missing.conf") != NULL);
    c = (cli_config *)1;
    CHECK_ERR(cli_config_load(&c, dir, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(c == NULL && strstr(detail, "not a regular file") != NULL);
    CHECK_ERR(cli_config_load(&c, NULL, detail, sizeof detail), MS_ERR_ARG);
    CHECK_ERR(cli_config_load(NULL, missing, detail, sizeof detail), MS_ERR_ARG);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ms-config-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_full_file();
    test_syntax_refusals();
    test_secrets_refused();
    test_file_refusals();
    test_shipped_example();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return ms_test_finish();
}
