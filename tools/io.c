/* Hex, messages, key files and input for the mikeysakke command: see cli.h. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

/* ---- messages ---------------------------------------------------------------------------- */

static void vreport(int code, ms_err why, const char *fmt, va_list ap) CLI_PRINTF(3, 0);

static void vreport(int code, ms_err why, const char *fmt, va_list ap)
{
    fprintf(stderr, "mikeysakke: (%d) ", code);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, ": %s\n", ms_strerror(why));
}

ms_err cli_fail(ms_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport((int)err, err, fmt, ap);
    va_end(ap);
    return err;
}

ms_err cli_invalid(ms_err why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport((int)MS_ERR_INVALID, why, fmt, ap);
    va_end(ap);
    return MS_ERR_INVALID;
}

void cli_trace_hex(const char *label, const uint8_t *p, size_t len)
{
    fprintf(stderr, "%s = ", label);
    for (size_t i = 0; i < len; i++)
        fprintf(stderr, "%02X", p[i]);
    fputc('\n', stderr);
}

/* ---- hex --------------------------------------------------------------------------------- */

/* One digit to its value with a validity mask, by arithmetic only (the trick of
 * libsodium's sodium_hex2bin): *ok gets 0xFF for a hex digit, 0 otherwise. */
static unsigned hex_digit(unsigned c, unsigned *ok)
{
    unsigned num = c ^ 48u;                          /* '0'..'9' -> 0..9 */
    unsigned num_ok = ((num - 10u) >> 8) & 0xFFu;    /* 0xFF iff num < 10 */
    unsigned alpha = (c & ~32u) - 55u;               /* 'A'..'F', 'a'..'f' -> 10..15 */
    unsigned alpha_ok = (((alpha - 10u) ^ (alpha - 16u)) >> 8) & 0xFFu; /* iff 10..15 */
    *ok = num_ok | alpha_ok;
    return ((num_ok & num) | (alpha_ok & alpha)) & 0xFu;
}

int cli_hex_decode(uint8_t *out, const char *hex, size_t len)
{
    unsigned all_ok = 0xFFu;
    for (size_t i = 0; i < len; i++) {
        unsigned ok_hi, ok_lo;
        unsigned hi = hex_digit((unsigned char)hex[2 * i], &ok_hi);
        unsigned lo = hex_digit((unsigned char)hex[2 * i + 1], &ok_lo);
        all_ok &= ok_hi & ok_lo;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    if (all_ok != 0xFFu) {
        ms_wipe(out, len);
        return -1;
    }
    return 0;
}

void cli_hex_encode(char *out, const uint8_t *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned hi = in[i] >> 4, lo = in[i] & 0xFu;
        /* n + '0', plus 7 more when n > 9 to land on 'A'; no table index on the value */
        out[2 * i] = (char)(hi + 48u + (((9u - hi) >> 8) & 7u));
        out[2 * i + 1] = (char)(lo + 48u + (((9u - lo) >> 8) & 7u));
    }
}

ms_err cli_hex_arg(const char *opt, const char *hex, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(hex);
    *out = NULL;
    *out_len = 0;
    if (n % 2 != 0)
        return cli_fail(MS_ERR_BAD_ENCODING, "%s: odd number of hex digits", opt);
    uint8_t *buf = malloc(n / 2 + 1); /* +1: a valid pointer even for "" */
    if (buf == NULL)
        return cli_fail(MS_ERR_NOMEM, "%s", opt);
    if (cli_hex_decode(buf, hex, n / 2) != 0) {
        free(buf);
        return cli_fail(MS_ERR_BAD_ENCODING, "%s: not valid hex", opt);
    }
    *out = buf;
    *out_len = n / 2;
    return MS_OK;
}

ms_err cli_hex_arg_fixed(const char *opt, const char *hex, uint8_t *out, size_t len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0)
        return cli_fail(MS_ERR_BAD_ENCODING, "%s: odd number of hex digits", opt);
    if (cli_hex_decode(out, hex, n / 2 < len ? n / 2 : len) != 0)
        return cli_fail(MS_ERR_BAD_ENCODING, "%s: not valid hex", opt);
    if (n / 2 != len) {
        ms_wipe(out, len);
        return cli_fail(MS_ERR_BAD_LENGTH, "%s: %zu octets, expected %zu", opt, n / 2, len);
    }
    return MS_OK;
}

/* ---- output ------------------------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

ms_err cli_print_hex(const uint8_t *p, size_t len)
{
    size_t n = 2 * len + 1;
    char *line = malloc(n);
    if (line == NULL)
        return cli_fail(MS_ERR_NOMEM, "output");
    cli_hex_encode(line, p, len);
    line[n - 1] = '\n';
    fflush(stdout); /* keep order with anything printed through stdio */
    int rc = write_all(STDOUT_FILENO, line, n);
    int saved = errno;
    ms_wipe(line, n);
    free(line);
    if (rc != 0)
        return cli_fail(MS_ERR_IO, "standard output: %s", strerror(saved));
    return MS_OK;
}

/* ---- secret key files -------------------------------------------------------------------- */

/* Longest accepted text: the largest key (an RSK point) in hex, "\r\n", and one octet
 * more so that an over-long file is detected rather than silently cut. */
#define KEYFILE_TEXT_MAX (2 * MS_SAKKE_POINT_BYTES + 3)

/* Every secret file is refused the same way: a regular file that no other user may
 * access. Checked on the open descriptor, so the file read is the file checked. */
static ms_err check_secret_fd(const char *opt, const char *path, int fd, struct stat *st)
{
    if (fstat(fd, st) != 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return cli_fail(MS_ERR_KEYFILE_MODE, "%s %s: not a regular file", opt, path);
    if ((st->st_mode & 077) != 0)
        return cli_fail(MS_ERR_KEYFILE_MODE, "%s %s: mode %04o lets other users access it",
                        opt, path, (unsigned)(st->st_mode & 07777));
    return MS_OK;
}

ms_err cli_read_secret(const char *opt, const char *path, uint8_t *out, size_t min_len,
                       size_t max_len)
{
    char text[KEYFILE_TEXT_MAX];
    size_t n = 0;
    ms_err err = MS_OK;

    /* O_NONBLOCK so a FIFO cannot hang us before fstat rejects it. */
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));

    struct stat st;
    if ((err = check_secret_fd(opt, path, fd, &st)) != MS_OK)
        goto out;

    while (n < sizeof text) {
        ssize_t r = read(fd, text + n, sizeof text - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == sizeof text) {
        err = cli_fail(MS_ERR_BAD_LENGTH, "%s %s: file too long for a key", opt, path);
        goto out;
    }
    /* One line: a final newline (LF or CRLF) is optional. */
    if (n > 0 && text[n - 1] == '\n')
        n--;
    if (n > 0 && text[n - 1] == '\r')
        n--;
    if (n % 2 != 0) {
        err = cli_fail(MS_ERR_BAD_ENCODING, "%s %s: odd number of hex digits", opt, path);
        goto out;
    }
    size_t len = n / 2;
    if (len < min_len || len > max_len) {
        if (min_len == max_len)
            err = cli_fail(MS_ERR_BAD_LENGTH, "%s %s: %zu octets, expected %zu", opt, path,
                           len, max_len);
        else
            err = cli_fail(MS_ERR_BAD_LENGTH, "%s %s: %zu octets, expected %zu to %zu", opt,
                           path, len, min_len, max_len);
        goto out;
    }
    /* Right-align: a shorter integer (the RFC's 20-octet z) is left-padded with zeros. */
    memset(out, 0, max_len - len);
    if (cli_hex_decode(out + (max_len - len), text, len) != 0) {
        ms_wipe(out, max_len);
        err = cli_fail(MS_ERR_BAD_ENCODING, "%s %s: not valid hex", opt, path);
        goto out;
    }

out:
    ms_wipe(text, sizeof text);
    close(fd);
    return err;
}

ms_err cli_check_new_file(const char *opt, const char *path, int force)
{
    struct stat st;
    if (!force && lstat(path, &st) == 0)
        return cli_fail(MS_ERR_IO, "%s %s: file exists (use --force to replace it)", opt,
                        path);
    return MS_OK;
}

/* fsync the directory holding path, so the new name survives a crash as well. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
    free(dir);
}

ms_err cli_write_secret(const char *opt, const char *path, const uint8_t *p, size_t len,
                        int force)
{
    size_t tmp_size = strlen(path) + 32;
    char *tmp = malloc(tmp_size);
    size_t text_len = 2 * len + 1;
    char *text = malloc(text_len);
    ms_err err = MS_OK;
    int fd = -1;
    int created = 0; /* whether tmp names a file we made and must remove on failure */

    if (tmp == NULL || text == NULL) {
        err = cli_fail(MS_ERR_NOMEM, "%s %s", opt, path);
        goto out;
    }

    /* A fresh name beside the target, so the final rename/link stays in one file system. */
    for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
        uint8_t rnd[6];
        char suffix[13];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            err = cli_fail(MS_ERR_RNG, "%s %s: temporary file name", opt, path);
            goto out;
        }
        cli_hex_encode(suffix, rnd, sizeof rnd);
        suffix[12] = '\0';
        snprintf(tmp, tmp_size, "%s.tmp-%s", path, suffix);
        fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno != EEXIST) {
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, tmp, strerror(errno));
            goto out;
        }
    }
    created = fd >= 0;
    if (fd < 0) {
        err = cli_fail(MS_ERR_IO, "%s %s: cannot create a temporary file", opt, path);
        goto out;
    }

    /* Exactly 0600 even under an unusual umask. */
    cli_hex_encode(text, p, len);
    text[text_len - 1] = '\n';
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, text_len) != 0 || fsync(fd) != 0) {
        err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, tmp, strerror(errno));
        goto out;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, tmp, strerror(errno));
        goto out;
    }

    if (force) {
        if (rename(tmp, path) != 0) {
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
            goto out;
        }
    } else if (link(tmp, path) != 0) {
        /* link never replaces, which makes "refuse to overwrite" race-free. Where hard
         * links are unsupported fall back to check-then-rename. */
        int e = errno;
        struct stat st;
        if (e == EEXIST) {
            err = cli_fail(MS_ERR_IO, "%s %s: file exists (use --force to replace it)", opt,
                           path);
            goto out;
        }
        if (e != EPERM && e != ENOTSUP && e != EOPNOTSUPP && e != ENOSYS) {
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(e));
            goto out;
        }
        if (lstat(path, &st) == 0) {
            err = cli_fail(MS_ERR_IO, "%s %s: file exists (use --force to replace it)", opt,
                           path);
            goto out;
        }
        if (rename(tmp, path) != 0) {
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
            goto out;
        }
    } else {
        (void)unlink(tmp); /* the key now lives under its final name */
    }
    created = 0;
    sync_parent_dir(path);

out:
    if (fd >= 0)
        close(fd);
    if (created)
        (void)unlink(tmp);
    if (text != NULL) {
        ms_wipe(text, text_len);
        free(text);
    }
    free(tmp);
    return err;
}

/* ---- message input ----------------------------------------------------------------------- */

ms_err cli_read_input(const char *opt, const char *path, uint8_t **out, size_t *out_len)
{
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "standard input" : path;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC);
    size_t cap = 4096, n = 0;
    uint8_t *buf = NULL;
    ms_err err = MS_OK;

    *out = NULL;
    *out_len = 0;
    if (fd < 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, name, strerror(errno));
    buf = malloc(cap);
    if (buf == NULL) {
        err = cli_fail(MS_ERR_NOMEM, "%s %s", opt, name);
        goto out;
    }
    for (;;) {
        if (n == cap) {
            uint8_t *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (bigger == NULL) {
                err = cli_fail(MS_ERR_NOMEM, "%s %s", opt, name);
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, name, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }

out:
    if (!is_stdin)
        close(fd);
    if (err != MS_OK) {
        free(buf);
        return err;
    }
    *out = buf;
    *out_len = n;
    return MS_OK;
}

/* Largest secret input file (an enrolment file is a few KiB). */
#define SECRET_INPUT_MAX (1u << 20)

ms_err cli_read_secret_input(const char *opt, const char *path, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (strcmp(path, "-") == 0)
        return cli_read_input(opt, path, out, out_len); /* a pipe has no mode to check */
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    struct stat st;
    ms_err err = check_secret_fd(opt, path, fd, &st);
    if (err == MS_OK && (unsigned long long)st.st_size > SECRET_INPUT_MAX)
        err = cli_fail(MS_ERR_BAD_LENGTH, "%s %s: larger than %u octets", opt, path,
                       SECRET_INPUT_MAX);
    /* Sized once from the file, so no copy is left behind by growing the buffer; one
     * octet more tells a file that grew meanwhile. */
    const size_t cap = err == MS_OK ? (size_t)st.st_size + 1 : 0;
    uint8_t *buf = err == MS_OK ? malloc(cap) : NULL;
    if (err == MS_OK && buf == NULL)
        err = cli_fail(MS_ERR_NOMEM, "%s %s", opt, path);
    size_t n = 0;
    while (err == MS_OK && n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
        else if (r == 0)
            break;
        else
            n += (size_t)r;
    }
    if (err == MS_OK && n == cap)
        err = cli_fail(MS_ERR_IO, "%s %s: the file grew while it was read", opt, path);
    close(fd);
    if (err != MS_OK) {
        if (buf != NULL)
            ms_wipe(buf, cap);
        free(buf);
        return err;
    }
    *out = buf;
    *out_len = n;
    return MS_OK;
}

int cli_exec_program(const char *program, char **argv)
{
    /* Beside this binary first (a build tree, an install), then PATH. */
    char self[PATH_MAX], prog[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = 0;
            snprintf(prog, sizeof prog, "%s/%s", self, program);
            if (access(prog, X_OK) == 0) {
                argv[0] = prog;
                execv(prog, argv);
            }
        }
    }
    argv[0] = (char *)program;
    execvp(program, argv);
    return (int)cli_fail(MS_ERR_USAGE, "cannot run %s: %s (is it installed beside mikeysakke?)",
                         program, strerror(errno));
}
