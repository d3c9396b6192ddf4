/* Whole files replaced atomically, and hex key files read (file.h). */
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util/detail.h"
#include "util/hex.h"

void ms_file_sync_parent(const char *path)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n < 0 || (size_t)n >= sizeof dir)
        return;
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        memcpy(dir, ".", 2);
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int saved = errno;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    errno = saved;
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

/* link(2) never replaces: "refuse to overwrite" without a race. Where hard links are not
 * supported, check then rename. */
static ms_err put_in_place_new(const char *tmp, const char *path, char *detail, size_t cap)
{
    if (link(tmp, path) == 0) {
        (void)unlink(tmp);
        return MS_OK;
    }
    int e = errno;
    struct stat st;
    if (e != EEXIST && e != EPERM && e != ENOTSUP && e != EOPNOTSUPP && e != ENOSYS) {
        errno = e;
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot write %s: %s", path, strerror(e));
    }
    if (e == EEXIST || lstat(path, &st) == 0) {
        errno = EEXIST;
        return ms_detail_fail(MS_ERR_EXISTS, detail, cap, "%s: file exists", path);
    }
    if (rename(tmp, path) != 0)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot write %s: %s", path,
                              strerror(errno));
    return MS_OK;
}

ms_err ms_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                            int flags, char *detail, size_t cap)
{
    if (path == NULL || (data == NULL && len > 0)) {
        errno = EINVAL;
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "no file name or no data");
    }
    char tmp[PATH_MAX];
    bool fixed = (flags & MS_FILE_FIXED_TMP) != 0;
    int n = snprintf(tmp, sizeof tmp, fixed ? "%s.tmp" : "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "%.200s...: file name too long", path);
    }
    int fd = fixed ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)
                   : mkstemp(tmp); /* O_EXCL, mode 0600 */
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot create a temporary file next to %s: %s",
                              path, strerror(errno));
    /* exactly `mode` whatever the umask, before the first octet is written */
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot write %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot write %s: %s", tmp, strerror(e));
    }
    ms_err err = MS_OK;
    if (flags & MS_FILE_NO_REPLACE) {
        err = put_in_place_new(tmp, path, detail, cap);
    } else if (rename(tmp, path) != 0) {
        err = ms_detail_fail(MS_ERR_IO, detail, cap, "cannot replace %s: %s", path,
                             strerror(errno));
    }
    if (err != MS_OK) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return err;
    }
    ms_file_sync_parent(path);
    return MS_OK;
}

ms_err ms_file_read_hex_key(const char *path, bool secret, uint8_t *key, size_t key_len,
                            const char *what, char *detail, size_t detail_cap)
{
    if (path == NULL || key == NULL || key_len == 0 || key_len > 64 || what == NULL)
        return MS_ERR_ARG;
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", path, strerror(errno));
    struct stat sb;
    char text[2 * 64 + 8];
    ms_err e = MS_OK;
    ssize_t n = 0;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        e = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: not a regular file", path);
    else if (secret && (sb.st_mode & 077) != 0)
        e = ms_detail_fail(MS_ERR_KEYFILE_MODE, detail, detail_cap,
                           "%s: mode %04o lets other users read this private key", path,
                           (unsigned)(sb.st_mode & 07777));
    else if ((n = read(fd, text, 2 * key_len + 3)) < 0)
        e = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", path, strerror(errno));
    close(fd);
    if (e == MS_OK) {
        size_t len = (size_t)n;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
            len--;
        if (ms_hex_decode_secret(key, key_len, text, len) != MS_OK)
            e = ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                               "%s: not a %s (one hex line of %zu octets)", path, what, key_len);
    }
    OPENSSL_cleanse(text, sizeof text);
    if (e != MS_OK)
        OPENSSL_cleanse(key, key_len);
    return e;
}

ms_err ms_file_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MS_ERR_IO;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return MS_ERR_IO;
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        return MS_ERR_BAD_LENGTH;
    }
    /* the size at open; a file that grows meanwhile is read to that size */
    size_t n = (size_t)sb.st_size, got = 0;
    uint8_t *b = malloc(n + 1);
    if (b == NULL) {
        close(fd);
        return MS_ERR_NOMEM;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return MS_ERR_IO;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return MS_OK;
}
