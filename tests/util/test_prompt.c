/* src/util/prompt: the no-echo prompt on a pseudo-terminal: reads one line, turns echo
 * off while reading and back on after, refuses a line that does not fit and a non-tty. */
#define _XOPEN_SOURCE 600
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "testutil.h"
#include "util/prompt.h"

/* A pty pair: *term is the terminal side the prompt uses, *keyboard the typist's side. */
static bool open_pty(int *term, int *keyboard)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0)
        return false;
    const char *name = ptsname(m);
    int s = name != NULL ? open(name, O_RDWR | O_NOCTTY) : -1;
    if (s < 0) {
        close(m);
        return false;
    }
    *term = s;
    *keyboard = m;
    return true;
}

/* The typist: waits until the prompt is on the screen (the prompt discards what was
 * typed ahead) and echo is off, then types its line. */
struct typist {
    int keyboard, term;
    const char *prompt, *line;
    char screen[256];
};

static void *type_line(void *arg)
{
    struct typist *t = arg;
    size_t n = 0;
    while (n + 1 < sizeof t->screen) {
        ssize_t r = read(t->keyboard, t->screen + n, 1);
        if (r <= 0)
            break;
        t->screen[++n] = '\0';
        if (strstr(t->screen, t->prompt) != NULL)
            break;
    }
    /* echo off: the prompt's flush of typed-ahead input is done */
    struct termios now;
    while (tcgetattr(t->term, &now) == 0 && (now.c_lflag & ECHO) != 0)
        usleep(1000);
    if (write(t->keyboard, t->line, strlen(t->line)) < 0)
        return NULL;
    return NULL;
}

/* What the terminal side showed after the prompt (echo, newline), without blocking. */
static void rest_of_screen(int keyboard, char *buf, size_t cap)
{
    usleep(20000);
    int fl = fcntl(keyboard, F_GETFL);
    fcntl(keyboard, F_SETFL, fl | O_NONBLOCK);
    ssize_t n = read(keyboard, buf, cap - 1);
    fcntl(keyboard, F_SETFL, fl);
    buf[n > 0 ? n : 0] = '\0';
}

static ms_err typed(int term, int kb, const char *line, char *out, size_t cap, size_t *len,
                    char *screen, size_t screen_cap)
{
    struct typist t = {.keyboard = kb, .term = term, .prompt = "Secret: ", .line = line};
    pthread_t th;
    if (pthread_create(&th, NULL, type_line, &t) != 0)
        return MS_ERR_INTERNAL;
    ms_err e = ms_prompt_secret(term, "Secret: ", out, cap, len);
    pthread_join(th, NULL);
    rest_of_screen(kb, screen, screen_cap);
    return e;
}

int main(void)
{
    int term, kb;
    if (!open_pty(&term, &kb)) {
        fprintf(stderr, "no pseudo-terminal here\n");
        CHECK(0);
        return ms_test_finish();
    }
    char out[16], screen[256];
    size_t len = 99;

    CHECK_ERR(typed(term, kb, "s3cret pass\n", out, sizeof out, &len, screen, sizeof screen), MS_OK);
    CHECK(len == 11 && strcmp(out, "s3cret pass") == 0);
    CHECK(strstr(screen, "s3cret") == NULL); /* not echoed */
    CHECK(strchr(screen, '\n') != NULL);     /* the newline the prompt writes after */
    struct termios now;
    CHECK(tcgetattr(term, &now) == 0 && (now.c_lflag & ECHO) != 0); /* echo back on */

    /* carriage return ends a line; an empty line is length 0 */
    CHECK_ERR(typed(term, kb, "abc\r", out, sizeof out, &len, screen, sizeof screen), MS_OK);
    CHECK(len == 3 && strcmp(out, "abc") == 0);
    CHECK_ERR(typed(term, kb, "\n", out, sizeof out, &len, screen, sizeof screen), MS_OK);
    CHECK(len == 0 && out[0] == '\0');

    /* 15 octets fit in 16, 16 do not: the whole line is read and the buffer wiped */
    CHECK_ERR(typed(term, kb, "123456789012345\n", out, sizeof out, &len, screen, sizeof screen), MS_OK);
    CHECK(len == 15 && strcmp(out, "123456789012345") == 0);
    CHECK_ERR(typed(term, kb, "1234567890123456789\n", out, sizeof out, &len, screen, sizeof screen),
              MS_ERR_BAD_LENGTH);
    CHECK(len == 0 && out[0] == '\0' && out[5] == '\0');

    /* not a terminal */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_ERR(ms_prompt_secret(p[0], "x", out, sizeof out, &len), MS_ERR_USAGE);
    close(p[0]);
    close(p[1]);
    close(term);
    close(kb);
    return ms_test_finish();
}
