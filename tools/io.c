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

#include "util/file.h"
#include "util/hex.h"
#include "util/prompt.h"
#include "util/timefmt.h"

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
    if (ms_hex_decode_secret(buf, n / 2, hex, n) != MS_OK) {
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
    size_t m = n / 2 < len ? n / 2 : len;
    if (ms_hex_decode_secret(out, m, hex, 2 * m) != MS_OK)
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
    ms_hex_encode_upper(line, p, len);
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
    if (ms_hex_decode_secret(out + (max_len - len), len, text, 2 * len) != MS_OK) {
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

ms_err cli_write_secret(const char *opt, const char *path, const uint8_t *p, size_t len,
                        int force)
{
    size_t text_len = 2 * len + 1;
    char *text = malloc(text_len + 1);
    if (text == NULL)
        return cli_fail(MS_ERR_NOMEM, "%s %s", opt, path);
    ms_hex_encode_upper(text, p, len);
    text[text_len - 1] = '\n';
    ms_err err = ms_file_write_atomic(path, text, text_len, 0600,
                                      force ? MS_FILE_REPLACE : MS_FILE_NO_REPLACE, NULL, 0);
    int saved = errno;
    ms_wipe(text, text_len + 1);
    free(text);
    if (err == MS_ERR_EXISTS)
        return cli_fail(MS_ERR_IO, "%s %s: file exists (use --force to replace it)", opt, path);
    if (err != MS_OK)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(saved));
    return MS_OK;
}

/* ---- passphrase ------------------------------------------------------------------------ */

static ms_err read_line_file(const char *opt, const char *path, char *out, size_t cap,
                             size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    struct stat st;
    ms_err err = MS_OK;
    size_t n = 0;
    if (fstat(fd, &st) != 0) {
        err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        err = cli_fail(MS_ERR_KEYFILE_MODE, "%s %s: not a regular file", opt, path);
    } else if ((st.st_mode & 077) != 0) {
        err = cli_fail(MS_ERR_KEYFILE_MODE, "%s %s: mode %04o lets other users "
                       "access it", opt, path, (unsigned)(st.st_mode & 07777));
    } else {
        while (n < cap) {
            ssize_t r = read(fd, out + n, cap - n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                err = cli_fail(MS_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
                break;
            }
            if (r == 0)
                break;
            n += (size_t)r;
        }
    }
    close(fd);
    if (err == MS_OK) {
        size_t line = 0;
        while (line < n && out[line] != '\n' && out[line] != '\r')
            line++;
        if (line == cap)
            err = cli_fail(MS_ERR_USAGE, "%s %s: longer than %zu octets", opt, path,
                           cap - 1);
        else if (line == 0)
            err = cli_fail(MS_ERR_USAGE, "%s %s: empty passphrase", opt, path);
        ms_wipe(out + line, n - line);
        out[line < cap ? line : cap - 1] = '\0';
        *out_len = line;
    }
    if (err != MS_OK)
        ms_wipe(out, cap);
    return err;
}

/* One line from the terminal with echo off (src/util/prompt.h), in this command's words. */
static ms_err prompt(int fd, const char *text, char *out, size_t cap, size_t *out_len)
{
    ms_err err = ms_prompt_secret(fd, text, out, cap, out_len);
    if (err == MS_ERR_USAGE)
        return cli_fail(MS_ERR_USAGE, "no terminal to ask for the passphrase: use "
                                      "--passphrase-file");
    if (err == MS_ERR_BAD_LENGTH)
        return cli_fail(MS_ERR_USAGE, "passphrase longer than %zu octets", cap - 1);
    if (err != MS_OK)
        return cli_fail(MS_ERR_IO, "terminal");
    if (*out_len == 0)
        return cli_fail(MS_ERR_USAGE, "empty passphrase");
    return MS_OK;
}

ms_err cli_read_secret_line(const char *opt, const char *path, char *out, size_t cap,
                            size_t *out_len)
{
    *out_len = 0;
    return read_line_file(opt, path, out, cap, out_len);
}

ms_err cli_read_passphrase(const char *path, int confirm, char *out, size_t cap,
                           size_t *out_len)
{
    *out_len = 0;
    if (path != NULL)
        return read_line_file("--passphrase-file", path, out, cap, out_len);
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(MS_ERR_USAGE, "no terminal to ask for the passphrase: use "
                                      "--passphrase-file");
    ms_err err = prompt(fd, "Keystore passphrase: ", out, cap, out_len);
    if (err == MS_OK && confirm) {
        char *again = malloc(cap);
        size_t n2 = 0;
        if (again == NULL) {
            err = cli_fail(MS_ERR_NOMEM, "passphrase");
        } else {
            err = prompt(fd, "Again: ", again, cap, &n2);
            if (err == MS_OK && (n2 != *out_len || memcmp(again, out, n2) != 0))
                err = cli_fail(MS_ERR_PASSPHRASE, "the two passphrases differ");
            ms_wipe(again, cap);
            free(again);
        }
    }
    close(fd);
    if (err != MS_OK)
        ms_wipe(out, cap);
    return err;
}

/* ---- times ------------------------------------------------------------------------------ */

ms_err cli_time_arg(const char *opt, const char *s, uint64_t *ntp)
{
    if (strlen(s) == 16 && strchr(s, '-') == NULL && strchr(s, ':') == NULL) {
        uint8_t b[8];
        if (ms_hex_decode(b, sizeof b, s, 16) != MS_OK)
            return cli_fail(MS_ERR_USAGE, "%s %s: not 16 hex digits", opt, s);
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | b[i];
        *ntp = v;
        return MS_OK;
    }
    uint64_t secs;
    uint32_t frac;
    if (!ms_time_parse(s, &secs, &frac))
        return cli_fail(MS_ERR_USAGE, "%s %s: not YYYY-MM-DDTHH:MM:SSZ (UTC) or 16 hex digits",
                        opt, s);
    if (secs > CLI_NTP_ERA0_LAST)
        return cli_fail(MS_ERR_USAGE, "%s %s: after 2036-02-07T06:28:15Z (NTP era 0)", opt, s);
    *ntp = secs << 32 | frac;
    return MS_OK;
}

void cli_time_format(char out[32], uint64_t ntp)
{
    ms_time_format(out, ntp >> 32); /* 32-bit seconds: always before 9999 */
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
