/*
 * The progress line of long commands (tools/progress.c): the running and final lines as
 * known answers (counts grouped by thousands, the percentage, the rate, the time left
 * rounded up, no rate too early), the drawing on a stream ("\r", blanking a longer line,
 * the final newline, only a newline after a failure), and silence without a stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "testutil.h"

/* Two strings equal, the one got printed when not. */
#define CHECK_STR(got, want)                                                           \
    do {                                                                               \
        const char *got_ = (got);                                                      \
        CHECK(strcmp(got_, (want)) == 0);                                              \
        if (strcmp(got_, (want)) != 0)                                                 \
            fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", got_, (want));       \
    } while (0)

static void test_format(void)
{
    char line[CLI_PROGRESS_LINE_MAX];
    cli_progress_format(line, sizeof line, "key sets", 12800, 100000, 10000);
    CHECK_STR(line, "12,800/100,000 key sets (12.8%), 1,280/s, 1 min 9 s left");
    /* too early for a rate, and nothing done yet */
    cli_progress_format(line, sizeof line, "key sets", 5, 10, 499);
    CHECK_STR(line, "5/10 key sets (50.0%)");
    cli_progress_format(line, sizeof line, "packages", 0, 1000000, 60000);
    CHECK_STR(line, "0/1,000,000 packages (0.0%)");
    cli_progress_format(line, sizeof line, "packages", 0, 0, 0);
    CHECK_STR(line, "0/0 packages (0.0%)");
    /* slow: one decimal; the time left rounded up */
    cli_progress_format(line, sizeof line, "key sets", 5, 10, 2000);
    CHECK_STR(line, "5/10 key sets (50.0%), 2.5/s, 2 s left");
    cli_progress_format(line, sizeof line, "key sets", 3, 10, 1000);
    CHECK_STR(line, "3/10 key sets (30.0%), 3.0/s, 3 s left");
    /* hours */
    cli_progress_format(line, sizeof line, "key sets", 1, 10000, 1000);
    CHECK_STR(line, "1/10,000 key sets (0.0%), 1.0/s, 2 h 46 min left");
    /* all done */
    cli_progress_format(line, sizeof line, "key sets", 999, 999, 1000);
    CHECK_STR(line, "999/999 key sets (100.0%), 999/s, 0 s left");
    /* a small buffer is cut, never overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    cli_progress_format(small, sizeof small, "key sets", 12800, 100000, 10000);
    CHECK(strlen(small) == sizeof small - 1);

    cli_progress_format_final(line, sizeof line, "key sets", 100000, 81234);
    CHECK_STR(line, "100,000 key sets in 1 min 21 s (1,231/s)");
    cli_progress_format_final(line, sizeof line, "packages", 3, 120);
    CHECK_STR(line, "3 packages in 120 ms (25.0/s)");
    cli_progress_format_final(line, sizeof line, "packages", 0, 0);
    CHECK_STR(line, "0 packages in 0 ms");
}

/* What p wrote to its temporary stream, from the start. */
static const char *written(FILE *f)
{
    static char buf[1024];
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fseek(f, 0, SEEK_END);
    return buf;
}

static void test_drawing(void)
{
    struct cli_progress p;
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f == NULL)
        return;

    /* the first report is drawn at once, with the total; the final line ends it */
    cli_progress_init_on(&p, "key sets", f);
    cli_progress_update(&p, 0, 1000000);
    CHECK_STR(written(f), "\r0/1,000,000 key sets (0.0%)");
    cli_progress_update(&p, 1000000, 1000000);
    cli_progress_finish(&p, true);
    const char *out = written(f);
    const char *last = strrchr(out, '\r');
    CHECK(last != NULL && strncmp(last, "\r1,000,000 key sets in ", 23) == 0);
    CHECK(out[strlen(out) - 1] == '\n');
    /* the final line is shorter than the running one: blanked to its length */
    CHECK(strlen(last) >= strlen("\r0/1,000,000 key sets (0.0%)") + 1);

    /* a failure: only a newline after the drawn line, so the error starts on its own */
    FILE *g = tmpfile();
    CHECK(g != NULL);
    if (g != NULL) {
        cli_progress_init_on(&p, "packages", g);
        cli_progress_update(&p, 0, 7);
        cli_progress_finish(&p, false);
        CHECK_STR(written(g), "\r0/7 packages (0.0%)\n");
        /* nothing drawn, nothing to end */
        cli_progress_init_on(&p, "packages", g);
        cli_progress_finish(&p, false);
        cli_progress_finish(&p, true);
        CHECK_STR(written(g), "\r0/7 packages (0.0%)\n");
        fclose(g);
    }

    /* silent: no stream; --json; stderr not a terminal (as under ctest) */
    cli_progress_init_on(&p, "key sets", NULL);
    cli_progress_update(&p, 1, 2);
    cli_progress_finish(&p, true);
    CHECK(p.out == NULL && p.start_ms == 0);
    cli_progress_init(&p, "key sets", true);
    CHECK(p.out == NULL);
    cli_progress_init(&p, "key sets", false);
    CHECK(p.out == (isatty(STDERR_FILENO) ? stderr : NULL));
    /* NULL is a reporter that shows nothing */
    cli_progress_update(NULL, 1, 2);
    cli_progress_finish(NULL, true);
    fclose(f);
}

int main(void)
{
    test_format();
    test_drawing();
    return ms_test_finish();
}
