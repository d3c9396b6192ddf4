/* The no-echo prompt (prompt.h). */
#include "util/prompt.h"

#include <errno.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

ms_err ms_prompt_secret(int fd, const char *prompt, char *out, size_t cap, size_t *len)
{
    struct termios old, quiet;
    *len = 0;
    if (cap == 0)
        return MS_ERR_BAD_LENGTH;
    out[0] = '\0';
    if (tcgetattr(fd, &old) != 0)
        return MS_ERR_USAGE;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
        return MS_ERR_IO;
    size_t n = 0;
    ms_err err = MS_OK;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n' || c == '\r')
            break;
        if (n + 1 >= cap) {
            err = MS_ERR_BAD_LENGTH;
            continue; /* drain the line */
        }
        out[n++] = c;
    }
    (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* the newline is cosmetic */
    }
    if (err != MS_OK) {
        OPENSSL_cleanse(out, cap);
        return err;
    }
    out[n] = '\0';
    *len = n;
    return MS_OK;
}
