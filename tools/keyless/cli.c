/* See cli.h. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mikeysakke/crypto.h"

ms_err ms_keyless_fail(const char *prog, ms_err e, const char *fmt, ...)
{
    fprintf(stderr, "%s: (%d) ", prog, (int)e);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", ms_strerror(e));
    return e;
}

ms_err ms_keyless_usage_error(const char *prog, const char *usage, const char *fmt, ...)
{
    fprintf(stderr, "%s: ", prog);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return MS_ERR_USAGE;
}

ms_err ms_keyless_read_password(const char *prog, const char *path, char *out, size_t cap,
                                size_t *len)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ms_keyless_fail(prog, MS_ERR_IO, "password file %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ms_keyless_fail(prog, MS_ERR_KEYFILE_MODE, "password file %s is not a regular "
                               "file", path);
    }
    if ((sb.st_mode & 077) != 0) {
        close(fd);
        return ms_keyless_fail(prog, MS_ERR_KEYFILE_MODE, "password file %s has mode %04o "
                               "(use 0600)", path, (unsigned)(sb.st_mode & 07777));
    }
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    out[n] = '\0';
    size_t line = strcspn(out, "\r\n");
    if (line == n && n == cap - 1) {
        ms_wipe(out, cap);
        return ms_keyless_fail(prog, MS_ERR_ARG, "password file %s: first line longer than "
                               "%zu octets", path, cap - 2);
    }
    ms_wipe(out + line, n - line);
    out[line] = '\0';
    if (line == 0)
        return ms_keyless_fail(prog, MS_ERR_ARG, "password file %s: empty first line", path);
    *len = line;
    return MS_OK;
}

bool ms_keyless_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}
