/* src/util/file: the atomic private writer replaces whole files, sets the mode exactly,
 * refuses to replace with MS_FILE_NO_REPLACE, and leaves no temporary file on failure. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "util/file.h"

static char dir[64];

static size_t entries(void)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static bool has(const char *path, const char *want)
{
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(want) && memcmp(buf, want, n) == 0;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0xFFFFu;
}

/* ms_file_read: the whole file, NUL after it; a cap, a missing file, a directory. */
static void test_read(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/read", dir);
    CHECK_ERR(ms_file_write_atomic(path, "abc\0def", 7, 0600, MS_FILE_REPLACE, NULL, 0), MS_OK);
    uint8_t *b = NULL;
    size_t n = 0;
    CHECK_ERR(ms_file_read(path, 7, &b, &n), MS_OK);
    CHECK(b != NULL && n == 7 && memcmp(b, "abc\0def", 7) == 0 && b[7] == '\0');
    free(b);
    b = NULL;
    CHECK_ERR(ms_file_read(path, 6, &b, &n), MS_ERR_BAD_LENGTH);
    CHECK(b == NULL && n == 0);
    CHECK_ERR(ms_file_write_atomic(path, "", 0, 0600, MS_FILE_REPLACE, NULL, 0), MS_OK);
    CHECK_ERR(ms_file_read(path, 0, &b, &n), MS_OK);
    CHECK(b != NULL && n == 0 && b[0] == '\0');
    free(b);
    b = NULL;
    snprintf(path, sizeof path, "%s/none", dir);
    CHECK_ERR(ms_file_read(path, 100, &b, &n), MS_ERR_IO);
    CHECK_ERR(ms_file_read(dir, 100, &b, &n), MS_ERR_IO);
    CHECK(b == NULL);
    snprintf(path, sizeof path, "%s/read", dir);
    unlink(path);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ms_test_file.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char path[128], detail[256];
    snprintf(path, sizeof path, "%s/secret", dir);
    mode_t old_umask = umask(0); /* the mode must not depend on it */
    test_read();

    CHECK_ERR(ms_file_write_atomic(path, "one\n", 4, 0600, MS_FILE_REPLACE, detail, sizeof detail), MS_OK);
    CHECK(has(path, "one\n") && mode_of(path) == 0600 && entries() == 1);

    /* replaced in place: a descriptor opened before still reads the old file */
    FILE *before = fopen(path, "rb");
    CHECK(before != NULL);
    CHECK_ERR(ms_file_write_atomic(path, "two, longer\n", 12, 0644, MS_FILE_REPLACE, NULL, 0), MS_OK);
    CHECK(has(path, "two, longer\n") && mode_of(path) == 0644 && entries() == 1);
    char old[8] = {0};
    CHECK(before != NULL && fread(old, 1, sizeof old - 1, before) == 4 && strcmp(old, "one\n") == 0);
    if (before != NULL)
        fclose(before);

    /* empty data */
    CHECK_ERR(ms_file_write_atomic(path, "", 0, 0600, MS_FILE_REPLACE, NULL, 0), MS_OK);
    CHECK(has(path, "") && entries() == 1);

    /* no replace: an existing file stays, a new one is made */
    detail[0] = '\0';
    CHECK_ERR(ms_file_write_atomic(path, "three\n", 6, 0600, MS_FILE_NO_REPLACE, detail, sizeof detail), MS_ERR_EXISTS);
    CHECK(errno == EEXIST && strstr(detail, "exists") != NULL);
    CHECK(has(path, "") && entries() == 1);
    char fresh[128];
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    CHECK_ERR(ms_file_write_atomic(fresh, "new\n", 4, 0600, MS_FILE_NO_REPLACE, NULL, 0), MS_OK);
    CHECK(has(fresh, "new\n") && mode_of(fresh) == 0600 && entries() == 2);
    unlink(fresh);

    /* a fixed temporary name: a crash's leftover is taken, not left behind */
    char stale[160];
    snprintf(stale, sizeof stale, "%s.tmp", path);
    FILE *f = fopen(stale, "wb");
    CHECK(f != NULL && fputs("half a li", f) >= 0);
    if (f != NULL)
        fclose(f);
    CHECK(entries() == 2);
    CHECK_ERR(ms_file_write_atomic(path, "four\n", 5, 0600, MS_FILE_REPLACE | MS_FILE_FIXED_TMP, NULL, 0), MS_OK);
    CHECK(has(path, "four\n") && mode_of(path) == 0600 && entries() == 1 && access(stale, F_OK) != 0);
    CHECK_ERR(ms_file_write_atomic(path, "", 0, 0600, MS_FILE_REPLACE, NULL, 0), MS_OK);

    /* failures leave no temporary file and the target untouched */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0700) == 0);
    detail[0] = '\0';
    CHECK_ERR(ms_file_write_atomic(sub, "x", 1, 0600, MS_FILE_REPLACE, detail, sizeof detail), MS_ERR_IO);
    CHECK(strstr(detail, sub) != NULL);
    CHECK(entries() == 2); /* secret and sub, no tmp */
    rmdir(sub);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/no/such/file", dir);
    CHECK_ERR(ms_file_write_atomic(missing, "x", 1, 0600, MS_FILE_REPLACE, detail, sizeof detail), MS_ERR_IO);
    CHECK(errno == ENOENT);
    if (geteuid() != 0) { /* a folder we may not write (root may) */
        CHECK(chmod(dir, 0500) == 0);
        CHECK_ERR(ms_file_write_atomic(path, "y", 1, 0600, MS_FILE_REPLACE, NULL, 0), MS_ERR_IO);
        CHECK(chmod(dir, 0700) == 0);
        CHECK(has(path, "") && entries() == 1);
    }
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CHECK_ERR(ms_file_write_atomic(longp, "x", 1, 0600, MS_FILE_REPLACE, NULL, 0), MS_ERR_ARG);
    CHECK_ERR(ms_file_write_atomic(NULL, "x", 1, 0600, MS_FILE_REPLACE, NULL, 0), MS_ERR_ARG);

    /* hex key files */
    uint8_t key[32], want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (uint8_t)(0xA0 + i);
    char line[80];
    for (int i = 0; i < 32; i++)
        snprintf(line + 2 * i, 3, "%02X", want[i]);
    strcat(line, "\n");
    CHECK_ERR(ms_file_write_atomic(path, line, strlen(line), 0600, MS_FILE_REPLACE, NULL, 0), MS_OK);
    CHECK_ERR(ms_file_read_hex_key(path, true, key, 32, "test key", detail, sizeof detail), MS_OK);
    CHECK(memcmp(key, want, 32) == 0);
    CHECK(chmod(path, 0640) == 0);
    CHECK_ERR(ms_file_read_hex_key(path, true, key, 32, "test key", detail, sizeof detail),
              MS_ERR_KEYFILE_MODE);
    CHECK(strstr(detail, "0640") != NULL);
    CHECK_ERR(ms_file_read_hex_key(path, false, key, 32, "test key", NULL, 0), MS_OK);
    CHECK_ERR(ms_file_read_hex_key(path, false, key, 31, "test key", detail, sizeof detail),
              MS_ERR_ARG); /* one octet more than asked for */
    CHECK(strstr(detail, "not a test key") != NULL);
    line[5] = 'g';
    CHECK_ERR(ms_file_write_atomic(path, line, strlen(line), 0600, MS_FILE_REPLACE, NULL, 0), MS_OK);
    key[0] = 1;
    CHECK_ERR(ms_file_read_hex_key(path, true, key, 32, "test key", NULL, 0), MS_ERR_ARG);
    CHECK(key[0] == 0); /* wiped */
    CHECK_ERR(ms_file_read_hex_key(missing, true, key, 32, "test key", NULL, 0), MS_ERR_IO);
    CHECK_ERR(ms_file_read_hex_key(dir, false, key, 32, "test key", NULL, 0), MS_ERR_IO);

    umask(old_umask);
    unlink(path);
    CHECK(rmdir(dir) == 0);
    return ms_test_finish();
}
