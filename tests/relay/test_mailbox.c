/*
 * The voicemail store (src/relay/mailbox.c), its owners' credentials (credentials.c) and
 * their HTTPS access (mailbox_http.c over src/net/http.c, libcurl on loopback with a
 * throwaway certificate): store, list, fetch, delete, quota, path traversal, index
 * atomicity under concurrent writers, every credential refusal answered alike, and no
 * owner reaching another's mailbox.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "net/http.h"
#include "relay/credentials.h"
#include "relay/divert.h"
#include "relay/mailbox.h"
#include "relay/mailbox_http.h"
#include "testutil.h"

static char tmpdir[256];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static bool write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return false;
    bool ok = write(fd, data, len) == (ssize_t)len;
    fchmod(fd, mode);
    return close(fd) == 0 && ok;
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Stores one message for `uri` with `len` octets of fake capture; returns its id. */
static ms_err store_one(ms_mailbox_store *s, const char *uri, const char *caller, size_t len,
                        char id[MS_MESSAGE_ID_HEX + 1])
{
    char path[1024], detail[256];
    ms_err e = ms_mailbox_begin(s, uri, 0, id, path, sizeof path, detail, sizeof detail);
    if (e != MS_OK)
        return e;
    uint8_t buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + (uint8_t)id[0]);
    if (len > sizeof buf || !write_file(path, buf, len, 0600))
        return MS_ERR_IO;
    ms_mailbox_entry e1;
    memset(&e1, 0, sizeof e1);
    snprintf(e1.id, sizeof e1.id, "%s", id);
    snprintf(e1.caller, sizeof e1.caller, "%s", caller);
    e1.time = 1700000000;
    e1.duration_ms = 4321;
    e1.size = 999999; /* ignored: the file's size counts */
    return ms_mailbox_commit(s, uri, &e1, detail, sizeof detail);
}

/* ---- the store ---------------------------------------------------------------------- */

static void test_ids(void)
{
    char a[MS_MAILBOX_ID_HEX + 1], b[MS_MAILBOX_ID_HEX + 1];
    CHECK_ERR(ms_mailbox_id("sip:bob@example.org", a), MS_OK);
    /* Known answer: SHA-256 of the normalised URI. */
    unsigned char md[32];
    unsigned int mdlen = 0;
    const char *norm = "sip:bob@example.org";
    EVP_Digest(norm, strlen(norm), md, &mdlen, EVP_sha256(), NULL);
    char want[65];
    for (int i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    CHECK(strcmp(a, want) == 0);
    CHECK_ERR(ms_mailbox_id("\"Bob\" <sips:bob@EXAMPLE.org:5061;transport=tls>", b), MS_OK);
    CHECK(strcmp(a, b) == 0);
    CHECK_ERR(ms_mailbox_id("sip:alice@example.org", b), MS_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK_ERR(ms_mailbox_id("../../etc/passwd", b), MS_ERR_IDENTITY);
    CHECK(b[0] == '\0');

    CHECK(ms_mailbox_valid_message_id("0123456789abcdef0123456789abcdef"));
    CHECK(!ms_mailbox_valid_message_id("0123456789ABCDEF0123456789abcdef"));
    CHECK(!ms_mailbox_valid_message_id("0123456789abcdef0123456789abcde"));
    CHECK(!ms_mailbox_valid_message_id("0123456789abcdef0123456789abcdef0"));
    CHECK(!ms_mailbox_valid_message_id("../../../../etc/passwd"));
    CHECK(!ms_mailbox_valid_message_id("0123456789abcdef0123456789abcd/."));
    CHECK(!ms_mailbox_valid_message_id(""));
    CHECK(!ms_mailbox_valid_message_id(NULL));
}

static void test_store(void)
{
    char dir[512], detail[256];
    path_of(dir, sizeof dir, "store");
    ms_mailbox_limits lim = {.max_messages = 3};
    ms_mailbox_store *s = NULL;
    CHECK_ERR(ms_mailbox_open(&s, dir, &lim, detail, sizeof detail), MS_OK);
    if (s == NULL)
        return;
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 077) == 0);
    ms_mailbox_limits got;
    ms_mailbox_get_limits(s, &got);
    CHECK(got.max_messages == 3 && got.max_seconds == 300 && got.max_bytes == 16u << 20);

    /* Nothing stored yet: an empty list, and no folder made by looking. */
    ms_mailbox_entry *v = NULL;
    size_t n = 99;
    CHECK_ERR(ms_mailbox_list(s, "sip:bob@example.org", &v, &n, detail, sizeof detail), MS_OK);
    CHECK(n == 0 && v == NULL);
    char mid[65], mdir[1024];
    ms_mailbox_id("sip:bob@example.org", mid);
    snprintf(mdir, sizeof mdir, "%s/%s", dir, mid);
    CHECK(stat(mdir, &sb) != 0);

    char id1[33], id2[33], id3[33], id4[33];
    CHECK_ERR(store_one(s, "sip:bob@example.org", "\"Alice\" <sip:alice@example.org>", 100, id1),
              MS_OK);
    CHECK_ERR(store_one(s, "<sip:bob@Example.org>", "evil\r\nline\" \\ \x01 end", 200, id2),
              MS_OK);
    CHECK(strcmp(id1, id2) != 0 && ms_mailbox_valid_message_id(id1));
    /* Layout: DIR/<sha256>/{index,uri,<id>.pcap}. */
    char p[1200];
    snprintf(p, sizeof p, "%s/%s.pcap", mdir, id1);
    CHECK(stat(p, &sb) == 0 && sb.st_size == 100);
    snprintf(p, sizeof p, "%s/uri", mdir);
    FILE *f = fopen(p, "r");
    char line[256] = "";
    if (f != NULL) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
    }
    CHECK(strcmp(line, "sip:bob@example.org\n") == 0);
    snprintf(p, sizeof p, "%s/index", mdir);
    CHECK(count_lines(p) == 2);

    CHECK_ERR(ms_mailbox_list(s, "sip:bob@example.org", &v, &n, detail, sizeof detail), MS_OK);
    CHECK(n == 2);
    if (n == 2) {
        CHECK(strcmp(v[0].id, id1) == 0 && strcmp(v[1].id, id2) == 0);
        CHECK(strcmp(v[0].caller, "\"Alice\" <sip:alice@example.org>") != 0); /* quotes cut */
        CHECK(strcmp(v[0].caller, "?Alice? <sip:alice@example.org>") == 0);
        CHECK(strcmp(v[1].caller, "evil??line? ? ? end") == 0);
        CHECK(v[0].size == 100 && v[1].size == 200);
        CHECK(v[0].time == 1700000000 && v[0].duration_ms == 4321);
    }
    free(v);

    char *json = NULL;
    size_t jl = 0;
    CHECK_ERR(ms_mailbox_list_json(s, "sip:bob@example.org", &json, &jl, detail, sizeof detail),
              MS_OK);
    if (json != NULL) {
        CHECK(strlen(json) == jl);
        CHECK(strncmp(json, "{\"mailbox\":\"sip:bob@example.org\",\"messages\":[{\"id\":\"", 52) == 0);
        char want[256];
        snprintf(want, sizeof want,
                 "{\"id\":\"%s\",\"caller\":\"?Alice? <sip:alice@example.org>\","
                 "\"caller_verified\":false,\"time\":1700000000,"
                 "\"time_utc\":\"2023-11-14T22:13:20Z\",\"duration_ms\":4321,\"size\":100}",
                 id1);
        CHECK(strstr(json, want) != NULL);
        CHECK(strstr(json, "\r") == NULL && strstr(json, "\\") == NULL);
        free(json);
    }
    CHECK_ERR(ms_mailbox_list_json(s, "not a uri", &json, &jl, detail, sizeof detail),
              MS_ERR_IDENTITY);

    /* Two stored and one being recorded fill a mailbox of three. */
    char idp[33], pathp[1024];
    CHECK_ERR(ms_mailbox_begin(s, "sip:bob@example.org", 1, idp, pathp, sizeof pathp, detail,
                               sizeof detail), MS_ERR_QUOTA);
    CHECK(strstr(detail, "1 being recorded") != NULL);
    CHECK_ERR(ms_mailbox_begin(s, "sip:bob@example.org", 0, idp, pathp, sizeof pathp, detail,
                               sizeof detail), MS_OK);
    CHECK(strlen(pathp) > 38 && strcmp(pathp + strlen(pathp) - 38, idp) != 0 &&
          strstr(pathp, idp) != NULL && strstr(pathp, mid) != NULL);

    /* Reading back. */
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_ERR(ms_mailbox_read(s, "sip:bob@example.org", id2, &data, &len, detail, sizeof detail),
              MS_OK);
    CHECK(len == 200 && data != NULL && data[1] == (uint8_t)(7 + (uint8_t)id2[0]));
    free(data);
    /* Another mailbox cannot read bob's message, even knowing its id. */
    CHECK_ERR(ms_mailbox_read(s, "sip:alice@example.org", id2, &data, &len, detail,
                              sizeof detail), MS_ERR_ARG);
    CHECK(data == NULL);
    CHECK_ERR(ms_mailbox_delete(s, "sip:alice@example.org", id2, detail, sizeof detail),
              MS_ERR_ARG);
    /* Malformed and traversing ids. */
    const char *bad_ids[] = {"../index", "..", "index", "0123456789abcdef0123456789abcde/",
                             "0123456789ABCDEF0123456789ABCDEF"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        CHECK_ERR(ms_mailbox_read(s, "sip:bob@example.org", bad_ids[i], &data, &len, detail,
                                  sizeof detail), MS_ERR_ARG);
        CHECK_ERR(ms_mailbox_delete(s, "sip:bob@example.org", bad_ids[i], detail, sizeof detail),
                  MS_ERR_ARG);
    }
    /* A file in the folder that the index does not list is not served. */
    const char *orphan = "00000000000000000000000000000000";
    snprintf(p, sizeof p, "%s/%s.pcap", mdir, orphan);
    CHECK(write_file(p, "x", 1, 0600));
    CHECK_ERR(ms_mailbox_read(s, "sip:bob@example.org", orphan, &data, &len, detail,
                              sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "no message") != NULL);

    /* Quota: 3 messages, the 4th is refused with a clear reason. */
    CHECK_ERR(store_one(s, "sip:bob@example.org", "x", 10, id3), MS_OK);
    char path[1024];
    CHECK_ERR(ms_mailbox_begin(s, "sip:bob@example.org", 0, id4, path, sizeof path, detail,
                               sizeof detail), MS_ERR_QUOTA);
    CHECK(strstr(detail, "full") != NULL && strstr(detail, "sip:bob@example.org") != NULL);
    CHECK(id4[0] == '\0' && path[0] == '\0');
    /* Other mailboxes are not affected. */
    char ida[33];
    CHECK_ERR(store_one(s, "sip:alice@example.org", "bob", 10, ida), MS_OK);

    /* Commit refusals: no file, an id given twice, a malformed id. */
    ms_mailbox_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.id, sizeof e.id, "%s", "11111111111111111111111111111111");
    CHECK_ERR(ms_mailbox_commit(s, "sip:alice@example.org", &e, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "missing") != NULL);
    snprintf(e.id, sizeof e.id, "%s", ida);
    CHECK_ERR(ms_mailbox_commit(s, "sip:alice@example.org", &e, detail, sizeof detail),
              MS_ERR_EXISTS);
    snprintf(e.id, sizeof e.id, "%s", "../../../../../../../../tmp/xx");
    CHECK_ERR(ms_mailbox_commit(s, "sip:alice@example.org", &e, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK_ERR(ms_mailbox_begin(s, "sip:../../x", 0, id4, path, sizeof path, detail, sizeof detail),
              MS_ERR_IDENTITY);

    /* Deleting makes room again. */
    CHECK_ERR(ms_mailbox_delete(s, "sip:bob@example.org", id1, detail, sizeof detail), MS_OK);
    snprintf(p, sizeof p, "%s/%s.pcap", mdir, id1);
    CHECK(stat(p, &sb) != 0);
    CHECK_ERR(ms_mailbox_delete(s, "sip:bob@example.org", id1, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK_ERR(ms_mailbox_list(s, "sip:bob@example.org", &v, &n, detail, sizeof detail), MS_OK);
    CHECK(n == 2 && v != NULL && strcmp(v[0].id, id2) == 0 && strcmp(v[1].id, id3) == 0);
    free(v);
    CHECK_ERR(ms_mailbox_begin(s, "sip:bob@example.org", 0, id4, path, sizeof path, detail,
                               sizeof detail), MS_OK);

    /* Every folder in the store is a 64-hex mailbox id: no URI made another name. */
    DIR *d = opendir(dir);
    int entries = 0, good = 0;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        entries++;
        size_t l = strlen(de->d_name);
        good += l == 64 && strspn(de->d_name, "0123456789abcdef") == 64;
    }
    if (d != NULL)
        closedir(d);
    CHECK(entries == 2 && good == 2);

    /* A malformed index is reported with its line, not skipped. */
    snprintf(p, sizeof p, "%s/index", mdir);
    CHECK(write_file(p, "garbage line\n", 13, 0600));
    CHECK_ERR(ms_mailbox_list(s, "sip:bob@example.org", &v, &n, detail, sizeof detail),
              MS_ERR_IO);
    CHECK(strstr(detail, "index:1: malformed") != NULL);
    CHECK_ERR(ms_mailbox_begin(s, "sip:bob@example.org", 0, id4, path, sizeof path, detail,
                               sizeof detail), MS_ERR_IO);
    ms_mailbox_close(s);

    CHECK_ERR(ms_mailbox_open(&s, "", NULL, detail, sizeof detail), MS_ERR_ARG);
    char file[512];
    path_of(file, sizeof file, "plainfile");
    CHECK(write_file(file, "x", 1, 0600));
    CHECK_ERR(ms_mailbox_open(&s, file, NULL, detail, sizeof detail), MS_ERR_IO);
    CHECK(s == NULL);
    ms_mailbox_close(NULL);
}

/* ---- index atomicity --------------------------------------------------------------- */

typedef struct writer_arg {
    ms_mailbox_store *s;
    int count;
    int ok;
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    for (int i = 0; i < a->count; i++) {
        char id[33];
        if (store_one(a->s, "sip:busy@example.org", "caller", 64, id) == MS_OK)
            a->ok++;
    }
    return NULL;
}

static void test_atomic_index(void)
{
    char dir[512], detail[256];
    path_of(dir, sizeof dir, "atomic");
    ms_mailbox_limits lim = {.max_messages = 1000};
    ms_mailbox_store *s = NULL, *s2 = NULL;
    CHECK_ERR(ms_mailbox_open(&s, dir, &lim, detail, sizeof detail), MS_OK);
    /* A second handle on the same folder stands for a second process. */
    CHECK_ERR(ms_mailbox_open(&s2, dir, &lim, detail, sizeof detail), MS_OK);
    if (s == NULL || s2 == NULL)
        return;
    enum { THREADS = 4, EACH = 15 };
    pthread_t t[THREADS];
    writer_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (writer_arg){.s = i % 2 ? s2 : s, .count = EACH, .ok = 0};
        pthread_create(&t[i], NULL, writer, &a[i]);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
    }
    CHECK(ok == THREADS * EACH);
    ms_mailbox_entry *v = NULL;
    size_t n = 0;
    CHECK_ERR(ms_mailbox_list(s, "sip:busy@example.org", &v, &n, detail, sizeof detail), MS_OK);
    CHECK(n == THREADS * EACH); /* no lost update */
    bool unique = true;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            unique = unique && strcmp(v[i].id, v[j].id) != 0;
    CHECK(unique);
    free(v);

    /* The index is replaced, never rewritten in place: a reader that opened it before a
     * change still reads the whole old index. */
    char mid[65], idx[1024];
    ms_mailbox_id("sip:busy@example.org", mid);
    snprintf(idx, sizeof idx, "%s/%s/index", dir, mid);
    FILE *before = fopen(idx, "r");
    struct stat sb1, sb2;
    CHECK(before != NULL && fstat(fileno(before), &sb1) == 0);
    char id[33];
    CHECK_ERR(store_one(s, "sip:busy@example.org", "late", 64, id), MS_OK);
    CHECK(stat(idx, &sb2) == 0 && sb2.st_ino != sb1.st_ino);
    size_t old_lines = 0;
    int c;
    while (before != NULL && (c = fgetc(before)) != EOF)
        old_lines += c == '\n';
    if (before != NULL)
        fclose(before);
    CHECK(old_lines == THREADS * EACH);
    CHECK(count_lines(idx) == THREADS * EACH + 1);
    /* A stale temporary file from a crash is ignored and overwritten. */
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", idx);
    CHECK(write_file(tmp, "half a li", 9, 0600));
    CHECK_ERR(ms_mailbox_list(s, "sip:busy@example.org", &v, &n, detail, sizeof detail), MS_OK);
    CHECK(n == THREADS * EACH + 1);
    free(v);
    CHECK_ERR(ms_mailbox_delete(s, "sip:busy@example.org", id, detail, sizeof detail), MS_OK);
    CHECK(count_lines(idx) == THREADS * EACH);
    CHECK(access(tmp, F_OK) != 0);
    ms_mailbox_close(s);
    ms_mailbox_close(s2);
}

/* ---- credentials -------------------------------------------------------------------- */

static const uint8_t bob_pw[] = "correct horse:battery";
static const uint8_t alice_pw[] = "alice's own";

static void b64(const char *in, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)strlen(in));
}

static void test_credentials(char *cred_path, size_t cap)
{
    char detail[256];
    snprintf(cred_path, cap, "%s/credentials", tmpdir);
    CHECK_ERR(ms_vm_credentials_add(cred_path, "sip:bob@example.org", bob_pw,
                                    sizeof bob_pw - 1, 1000, detail, sizeof detail), MS_OK);
    struct stat sb;
    CHECK(stat(cred_path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    CHECK_ERR(ms_vm_credentials_add(cred_path, "<sip:alice@EXAMPLE.org>", (const uint8_t *)"old",
                                    3, 1000, detail, sizeof detail), MS_OK);
    /* Format: "URI pbkdf2-sha256 ITERATIONS SALT HASH". */
    FILE *f = fopen(cred_path, "r");
    char line[512] = "";
    if (f != NULL) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
    }
    char uri[64], scheme[32], salt[64], hash[80];
    unsigned it = 0;
    CHECK(sscanf(line, "%63s %31s %u %63s %79s", uri, scheme, &it, salt, hash) == 5);
    CHECK(strcmp(uri, "sip:bob@example.org") == 0 && strcmp(scheme, "pbkdf2-sha256") == 0);
    CHECK(it == 1000 && strlen(salt) == 32 && strlen(hash) == 64);
    CHECK(strstr(line, "correct") == NULL);

    /* Replacing alice's password keeps one line for her. */
    CHECK_ERR(ms_vm_credentials_add(cred_path, "sip:alice@example.org", alice_pw,
                                    sizeof alice_pw - 1, 1000, detail, sizeof detail), MS_OK);
    CHECK(count_lines(cred_path) == 2);
    CHECK_ERR(ms_vm_credentials_add(cred_path, "bob", bob_pw, 3, 1000, detail, sizeof detail),
              MS_ERR_IDENTITY);
    CHECK_ERR(ms_vm_credentials_add(cred_path, "sip:x@y", bob_pw, 0, 1000, detail,
                                    sizeof detail), MS_ERR_ARG);
    CHECK_ERR(ms_vm_credentials_add(cred_path, "sip:x@y", bob_pw, 3, 10, detail, sizeof detail),
              MS_ERR_ARG);

    ms_vm_credentials *c = NULL;
    CHECK_ERR(ms_vm_credentials_load(&c, cred_path, detail, sizeof detail), MS_OK);
    if (c == NULL)
        return;
    CHECK(ms_vm_credentials_count(c) == 2);
    CHECK(ms_vm_credentials_has(c, "\"B\" <sip:bob@example.org;transport=tcp>"));
    CHECK(!ms_vm_credentials_has(c, "sip:carol@example.org"));
    char owner[MS_VM_URI_MAX];
    CHECK(ms_vm_credentials_check(c, "sip:bob@example.org", bob_pw, sizeof bob_pw - 1, owner,
                                  sizeof owner));
    CHECK(strcmp(owner, "sip:bob@example.org") == 0);
    CHECK(!ms_vm_credentials_check(c, "sip:bob@example.org", bob_pw, sizeof bob_pw - 2, owner,
                                   sizeof owner));
    CHECK(owner[0] == '\0');
    CHECK(!ms_vm_credentials_check(c, "sip:alice@example.org", (const uint8_t *)"old", 3, owner,
                                   sizeof owner));
    CHECK(ms_vm_credentials_check(c, "sip:alice@example.org", alice_pw, sizeof alice_pw - 1,
                                  owner, sizeof owner));
    CHECK(!ms_vm_credentials_check(c, "sip:alice@example.org", bob_pw, sizeof bob_pw - 1, owner,
                                   sizeof owner));
    CHECK(!ms_vm_credentials_check(c, "sip:carol@example.org", bob_pw, sizeof bob_pw - 1, owner,
                                   sizeof owner));
    CHECK(!ms_vm_credentials_check(c, NULL, bob_pw, sizeof bob_pw - 1, owner, sizeof owner));

    /* Basic: the URI keeps its scheme; the password may hold colons. */
    char raw[256], hdr[400];
    snprintf(raw, sizeof raw, "sip:bob@example.org:%s", (const char *)bob_pw);
    strcpy(hdr, "Basic ");
    b64(raw, hdr + 6);
    CHECK(ms_vm_credentials_check_basic(c, hdr, owner, sizeof owner));
    CHECK(strcmp(owner, "sip:bob@example.org") == 0);
    memcpy(hdr, "bASIC ", 6);
    CHECK(ms_vm_credentials_check_basic(c, hdr, owner, sizeof owner));
    snprintf(raw, sizeof raw, "bob@example.org:%s", (const char *)bob_pw); /* sip: implied */
    b64(raw, hdr + 6);
    CHECK(ms_vm_credentials_check_basic(c, hdr, owner, sizeof owner));
    snprintf(raw, sizeof raw, "sip:bob@example.org:%s", "correct horse");
    b64(raw, hdr + 6);
    CHECK(!ms_vm_credentials_check_basic(c, hdr, owner, sizeof owner));
    snprintf(raw, sizeof raw, "sip:bob@example.org");
    b64(raw, hdr + 6);
    CHECK(!ms_vm_credentials_check_basic(c, hdr, owner, sizeof owner));
    CHECK(!ms_vm_credentials_check_basic(c, "Basic !!!!", owner, sizeof owner));
    CHECK(!ms_vm_credentials_check_basic(c, "Basic abc", owner, sizeof owner));
    CHECK(!ms_vm_credentials_check_basic(c, "Bearer abcd", owner, sizeof owner));
    CHECK(!ms_vm_credentials_check_basic(c, "Basic ", owner, sizeof owner));
    CHECK(!ms_vm_credentials_check_basic(c, NULL, owner, sizeof owner));

    /* A new owner added while running is seen after a refresh; a broken file is refused
     * and the table in force kept. */
    CHECK_ERR(ms_vm_credentials_add(cred_path, "tel:+15551234", (const uint8_t *)"tel pw", 6,
                                    1000, detail, sizeof detail), MS_OK);
    CHECK(!ms_vm_credentials_has(c, "tel:+15551234"));
    CHECK_ERR(ms_vm_credentials_refresh(c, detail, sizeof detail), MS_OK);
    CHECK(ms_vm_credentials_has(c, "tel:+15551234") && ms_vm_credentials_count(c) == 3);
    char broken[512];
    path_of(broken, sizeof broken, "broken");
    CHECK(write_file(broken, "sip:z@z pbkdf2-sha256 1000 00 00\n", 33, 0600));
    char saved[512];
    path_of(saved, sizeof saved, "credentials.saved");
    CHECK(rename(cred_path, saved) == 0 && rename(broken, cred_path) == 0);
    CHECK_ERR(ms_vm_credentials_refresh(c, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(ms_vm_credentials_has(c, "sip:bob@example.org"));
    CHECK_ERR(ms_vm_credentials_add(cred_path, "sip:q@q", bob_pw, 3, 1000, detail,
                                    sizeof detail), MS_ERR_CONFIG); /* not silently fixed */
    CHECK(rename(saved, cred_path) == 0);
    ms_vm_credentials_free(c);

    /* Load refusals. */
    struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"sip:a@b pbkdf2-sha256 1000 00112233445566778899aabbccddeeff\n", ":1: want"},
        {"# c\n\nbob pbkdf2-sha256 1000 00112233445566778899aabbccddeeff "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", ":3: not a mailbox"},
        {"sip:a@b md5 1000 00112233445566778899aabbccddeeff "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", "scheme"},
        {"sip:a@b pbkdf2-sha256 999 00112233445566778899aabbccddeeff "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", "iterations"},
        {"sip:a@b pbkdf2-sha256 -5 00112233445566778899aabbccddeeff "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", "iterations"},
        {"sip:a@b pbkdf2-sha256 1000 0011223344556677 "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", "salt"},
        {"sip:a@b pbkdf2-sha256 1000 00112233445566778899aabbccddeeff 00zz\n", "hash"},
        {"sip:a@b pbkdf2-sha256 1000 00112233445566778899aabbccddeeff "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
         "<sip:a@B> pbkdf2-sha256 1000 00112233445566778899aabbccddeeff "
         "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", ":2: mailbox given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(write_file(broken, bad[i].text, strlen(bad[i].text), 0600));
        ms_vm_credentials *b = NULL;
        detail[0] = '\0';
        CHECK_ERR(ms_vm_credentials_load(&b, broken, detail, sizeof detail), MS_ERR_CONFIG);
        CHECK(b == NULL);
        if (strstr(detail, bad[i].why) == NULL)
            fprintf(stderr, "case %zu: detail \"%s\" lacks \"%s\"\n", i, detail, bad[i].why);
        CHECK(strstr(detail, bad[i].why) != NULL);
    }
    CHECK(write_file(broken, "# nobody yet\n", 13, 0644));
    ms_vm_credentials *b = NULL;
    CHECK_ERR(ms_vm_credentials_load(&b, broken, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    chmod(broken, 0600);
    CHECK_ERR(ms_vm_credentials_load(&b, broken, detail, sizeof detail), MS_OK);
    CHECK(ms_vm_credentials_count(b) == 0);
    ms_vm_credentials_free(b);
    CHECK_ERR(ms_vm_credentials_load(&b, tmpdir, detail, sizeof detail), MS_ERR_KEYFILE_MODE);
    path_of(broken, sizeof broken, "absent");
    CHECK_ERR(ms_vm_credentials_load(&b, broken, detail, sizeof detail), MS_ERR_IO);
    ms_vm_credentials_free(NULL);
}

/* ---- HTTPS -------------------------------------------------------------------------- */

typedef struct reply {
    long status;
    CURLcode rc;
    char *body;
    size_t len;
    char content_type[128];
} reply;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    reply *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static char ca_file[512];
static uint16_t port;

/* One request; user NULL = no credential; raw_auth sets the header as given. */
static void request(reply *r, const char *method, const char *path, const char *user,
                    const char *password, const char *raw_auth)
{
    free(r->body);
    memset(r, 0, sizeof *r);
    CURL *h = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "https://127.0.0.1:%u%s", (unsigned)port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L); /* send "../" as it is */
    curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    if (method != NULL)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (user != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, password);
    }
    struct curl_slist *hdrs = NULL;
    if (raw_auth != NULL) {
        char hv[512];
        snprintf(hv, sizeof hv, "Authorization: %s", raw_auth);
        hdrs = curl_slist_append(hdrs, hv);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    }
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->content_type, sizeof r->content_type, "%s", ct != NULL ? ct : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
}

static int log_lines;

static void count_log(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
    __atomic_fetch_add(&log_lines, 1, __ATOMIC_SEQ_CST);
}

static void test_https(const char *cred_path)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -keyout %s/tls.key "
             "-out %s/tls.pem >/dev/null 2>&1 && chmod 600 %s/tls.key",
             tmpdir, tmpdir, tmpdir);
    CHECK(system(cmd) == 0);
    char cert[512], key[512], dir[512], detail[256];
    path_of(cert, sizeof cert, "tls.pem");
    path_of(key, sizeof key, "tls.key");
    path_of(dir, sizeof dir, "served");
    snprintf(ca_file, sizeof ca_file, "%s", cert);

    ms_mailbox_store *s = NULL;
    CHECK_ERR(ms_mailbox_open(&s, dir, NULL, detail, sizeof detail), MS_OK);
    ms_vm_credentials *c = NULL;
    CHECK_ERR(ms_vm_credentials_load(&c, cred_path, detail, sizeof detail), MS_OK);
    if (s == NULL || c == NULL)
        return;
    char bob1[33], bob2[33], alice1[33];
    CHECK_ERR(store_one(s, "sip:bob@example.org", "<sip:alice@example.org>", 300, bob1), MS_OK);
    CHECK_ERR(store_one(s, "sip:bob@example.org", "<sip:mallory@example.org>", 50, bob2), MS_OK);
    CHECK_ERR(store_one(s, "sip:alice@example.org", "<sip:bob@example.org>", 70, alice1), MS_OK);

    ms_vm_http ctx = {.store = s, .creds = c, .log = count_log, .log_ctx = NULL};
    ms_http_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.allow_delete = true;
    cfg.max_body = 1024;
    cfg.name = "test_voicemail";
    cfg.error_body = ms_vm_http_error_body;
    cfg.detail = detail;
    cfg.detail_cap = sizeof detail;
    ms_http_server *srv = NULL;
    CHECK_ERR(ms_http_start(&srv, &cfg, ms_vm_http_handle, NULL, NULL, &ctx), MS_OK);
    if (srv == NULL)
        return;
    port = ms_http_port(srv);
    reply r = {0};
    const char *bob = "sip:bob@example.org", *bpw = (const char *)bob_pw;

    /* The owner's list: only bob's messages. */
    request(&r, NULL, "/mailbox", bob, bpw, NULL);
    CHECK(r.rc == CURLE_OK && r.status == 200);
    CHECK(strcmp(r.content_type, "application/json") == 0);
    CHECK(r.body != NULL && strstr(r.body, bob1) != NULL && strstr(r.body, bob2) != NULL);
    CHECK(r.body != NULL && strstr(r.body, alice1) == NULL);
    CHECK(r.body != NULL && strstr(r.body, "\"mailbox\":\"sip:bob@example.org\"") != NULL);
    CHECK(r.body != NULL && strstr(r.body, "mallory") != NULL);

    /* Every refusal of the credential looks the same. */
    request(&r, NULL, "/mailbox", bob, "wrong", NULL);
    CHECK(r.status == 401);
    char *first = r.body != NULL ? strdup(r.body) : NULL;
    CHECK(first != NULL && strcmp(first, "{\"error\":\"unauthorised\"}\n") == 0);
    const char *variants[][3] = {
        {"sip:carol@example.org", "anything", NULL},      /* unknown mailbox */
        {"sip:alice@example.org", (const char *)bob_pw, NULL}, /* another's password */
        {NULL, NULL, NULL},                                /* none */
        {NULL, NULL, "Bearer c2lwOmJvYkBleGFtcGxlLm9yZw=="}, /* wrong scheme */
        {NULL, NULL, "Basic %%%%"},                        /* malformed */
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        request(&r, NULL, "/mailbox", variants[i][0], variants[i][1], variants[i][2]);
        CHECK(r.status == 401);
        CHECK(first != NULL && r.body != NULL && strcmp(r.body, first) == 0);
    }
    /* Also for a message path: no hint whether the id exists. */
    char path[128];
    snprintf(path, sizeof path, "/mailbox/%s", bob1);
    request(&r, NULL, path, bob, "wrong", NULL);
    CHECK(r.status == 401 && first != NULL && r.body != NULL && strcmp(r.body, first) == 0);
    request(&r, "DELETE", path, NULL, NULL, NULL);
    CHECK(r.status == 401);
    free(first);

    /* Fetch: the pcap as stored. */
    request(&r, NULL, path, bob, bpw, NULL);
    CHECK(r.status == 200 && r.len == 300);
    CHECK(strcmp(r.content_type, "application/vnd.tcpdump.pcap") == 0);
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_ERR(ms_mailbox_read(s, bob, bob1, &data, &len, detail, sizeof detail), MS_OK);
    CHECK(data != NULL && r.body != NULL && len == r.len && memcmp(data, r.body, len) == 0);
    free(data);

    /* Alice, properly authenticated, cannot reach bob's message by its id. */
    request(&r, NULL, path, "sip:alice@example.org", (const char *)alice_pw, NULL);
    CHECK(r.status == 404);
    request(&r, "DELETE", path, "sip:alice@example.org", (const char *)alice_pw, NULL);
    CHECK(r.status == 404);
    request(&r, NULL, "/mailbox", "sip:alice@example.org", (const char *)alice_pw, NULL);
    CHECK(r.status == 200 && r.body != NULL && strstr(r.body, alice1) != NULL &&
          strstr(r.body, bob1) == NULL);

    /* Traversal and malformed ids. */
    const char *bad_paths[] = {"/mailbox/../mailbox", "/mailbox/..%2F..%2Fcredentials",
                               "/mailbox/%2e%2e", "/mailbox/index", "/mailbox/x/y",
                               "/mailbox//etc/passwd"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        request(&r, NULL, bad_paths[i], bob, bpw, NULL);
        CHECK(r.status == 404);
        CHECK(r.body == NULL || strstr(r.body, "pbkdf2") == NULL);
    }
    char upper[128];
    snprintf(upper, sizeof upper, "/mailbox/%s", bob1);
    for (char *p = upper + 9; *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    request(&r, NULL, upper, bob, bpw, NULL);
    CHECK(r.status == 404 || strcmp(upper + 9, bob1) == 0);

    /* Methods and other paths. */
    request(&r, "POST", "/mailbox", bob, bpw, NULL);
    CHECK(r.status == 405);
    request(&r, "PUT", path, bob, bpw, NULL);
    CHECK(r.status == 405 && r.body != NULL && strstr(r.body, "method not allowed") != NULL);
    request(&r, NULL, "/elsewhere", bob, bpw, NULL);
    CHECK(r.status == 404);
    request(&r, "DELETE", "/healthz", NULL, NULL, NULL);
    CHECK(r.status == 405);

    /* Delete: gone from the list and the disk; a second delete is 404. */
    request(&r, "DELETE", path, bob, bpw, NULL);
    CHECK(r.status == 204);
    request(&r, NULL, path, bob, bpw, NULL);
    CHECK(r.status == 404);
    request(&r, "DELETE", path, bob, bpw, NULL);
    CHECK(r.status == 404);
    request(&r, NULL, "/mailbox", bob, bpw, NULL);
    CHECK(r.status == 200 && r.body != NULL && strstr(r.body, bob1) == NULL &&
          strstr(r.body, bob2) != NULL);
    /* Alice's message is untouched. */
    CHECK_ERR(ms_mailbox_read(s, "sip:alice@example.org", alice1, &data, &len, detail,
                              sizeof detail), MS_OK);
    free(data);

    /* An owner provisioned while the server runs gets in without a restart. */
    CHECK_ERR(ms_vm_credentials_add(cred_path, "sip:dan@example.org", (const uint8_t *)"dan pw",
                                    6, 1000, detail, sizeof detail), MS_OK);
    request(&r, NULL, "/mailbox", "sip:dan@example.org", "dan pw", NULL);
    CHECK(r.status == 200 && r.body != NULL &&
          strcmp(r.body, "{\"mailbox\":\"sip:dan@example.org\",\"messages\":[]}\n") == 0);
    CHECK(__atomic_load_n(&log_lines, __ATOMIC_SEQ_CST) >= 2); /* fetch and delete */

    free(r.body);
    r.body = NULL;
    ms_http_stop(srv);
    ms_vm_credentials_free(c);
    ms_mailbox_close(s);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms_test_mailbox_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        CHECK(!"mkdtemp");
        return ms_test_finish();
    }
    test_ids();
    test_store();
    test_atomic_index();
    char cred_path[512];
    test_credentials(cred_path, sizeof cred_path);
    test_https(cred_path);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    curl_global_cleanup();
    return ms_test_finish();
}
