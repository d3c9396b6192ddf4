/*
 * The progress line of long commands (tools/progress.h).
 */
#include "progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIN_RATE_MS 500 /* no rate (nor time left) from less than this: it jumps about */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cli_progress_init_on(struct cli_progress *p, const char *what, FILE *out)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->what = what;
}

void cli_progress_init(struct cli_progress *p, const char *what, bool json)
{
    cli_progress_init_on(p, what, !json && isatty(STDERR_FILENO) ? stderr : NULL);
}

/* n with a comma every three digits: a million reads at a glance. */
static void grouped(char *out, size_t cap, uint64_t n)
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t o = 0;
    for (int i = 0; i < len && o + 1 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0 && o + 2 < cap)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o < cap ? o : cap - 1] = '\0';
}

static void duration(char *out, size_t cap, uint64_t secs)
{
    if (secs < 60)
        snprintf(out, cap, "%llu s", (unsigned long long)secs);
    else if (secs < 3600)
        snprintf(out, cap, "%llu min %llu s", (unsigned long long)(secs / 60),
                 (unsigned long long)(secs % 60));
    else
        snprintf(out, cap, "%llu h %llu min", (unsigned long long)(secs / 3600),
                 (unsigned long long)(secs / 60 % 60));
}

/* done per second: whole numbers from 100 up, one decimal below. */
static void rate(char *out, size_t cap, size_t done, uint64_t elapsed_ms)
{
    double r = (double)done * 1000.0 / (double)elapsed_ms;
    if (r >= 100)
        grouped(out, cap, (uint64_t)(r + 0.5));
    else
        snprintf(out, cap, "%.1f", r);
}

void cli_progress_format(char *out, size_t cap, const char *what, size_t done, size_t total,
                         uint64_t elapsed_ms)
{
    char d[32], t[32], r[32], left[32];
    grouped(d, sizeof d, done);
    grouped(t, sizeof t, total);
    unsigned permille = total > 0 ? (unsigned)((double)done * 1000.0 / (double)total) : 0;
    int n = snprintf(out, cap, "%s/%s %s (%u.%u%%)", d, t, what, permille / 10, permille % 10);
    if (n < 0 || (size_t)n >= cap || elapsed_ms < MIN_RATE_MS || done == 0)
        return;
    rate(r, sizeof r, done, elapsed_ms);
    uint64_t rest = total > done ? total - done : 0;
    /* ceiling: "0 s left" only when nothing is */
    uint64_t left_s = (uint64_t)(((double)rest * (double)elapsed_ms / (double)done + 999) / 1000);
    duration(left, sizeof left, left_s);
    snprintf(out + n, cap - (size_t)n, ", %s/s, %s left", r, left);
}

void cli_progress_format_final(char *out, size_t cap, const char *what, size_t done,
                               uint64_t elapsed_ms)
{
    char d[32], r[32], took[32];
    grouped(d, sizeof d, done);
    if (elapsed_ms < 1000)
        snprintf(took, sizeof took, "%llu ms", (unsigned long long)elapsed_ms);
    else
        duration(took, sizeof took, (elapsed_ms + 500) / 1000);
    if (elapsed_ms == 0 || done == 0) {
        snprintf(out, cap, "%s %s in %s", d, what, took);
        return;
    }
    rate(r, sizeof r, done, elapsed_ms);
    snprintf(out, cap, "%s %s in %s (%s/s)", d, what, took, r);
}

/* Rewrites the line in place, blanking what a longer earlier one leaves behind. */
static void draw(struct cli_progress *p, const char *line, const char *end)
{
    size_t len = strlen(line);
    int pad = p->shown_len > len ? (int)(p->shown_len - len) : 0;
    fprintf(p->out, "\r%s%*s%s", line, pad, "", end);
    fflush(p->out);
    p->shown_len = len;
}

void cli_progress_update(struct cli_progress *p, size_t done, size_t total)
{
    if (p == NULL || p->out == NULL)
        return;
    uint64_t now = now_ms();
    if (p->start_ms == 0) {
        p->start_ms = now; /* the first report comes when the work starts */
        p->last_ms = now - CLI_PROGRESS_INTERVAL_MS; /* drawn at once: the total shows */
    }
    p->done = done;
    p->total = total;
    if (now - p->last_ms < CLI_PROGRESS_INTERVAL_MS)
        return;
    char line[CLI_PROGRESS_LINE_MAX];
    cli_progress_format(line, sizeof line, p->what, done, total, now - p->start_ms);
    draw(p, line, "");
    p->last_ms = now;
}

void cli_progress_finish(struct cli_progress *p, bool ok)
{
    if (p == NULL || p->out == NULL)
        return;
    if (!ok || p->start_ms == 0) {
        if (p->shown_len > 0)
            fputc('\n', p->out);
        p->shown_len = 0;
        return;
    }
    char line[CLI_PROGRESS_LINE_MAX];
    cli_progress_format_final(line, sizeof line, p->what, p->done, now_ms() - p->start_ms);
    draw(p, line, "\n");
    p->shown_len = 0;
}
