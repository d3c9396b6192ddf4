/* Whole files replaced atomically (file.h). */
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

#include "util/detail.h"

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
