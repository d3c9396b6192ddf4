/*
 * Progress of long commands (kms issue, kms export) on the terminal (tools/progress.c):
 * one line on stderr rewritten in place with "\r" at most 4 times a second, giving
 * done/total, the rate and the time left, then a final line. Silent when stderr is not a
 * terminal and under --json, so pipes and scripts see only the result.
 */
#ifndef MIKEYSAKKE_TOOLS_PROGRESS_H
#define MIKEYSAKKE_TOOLS_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_PROGRESS_INTERVAL_MS 250
#define CLI_PROGRESS_LINE_MAX 128

struct cli_progress {
    FILE *out;          /* NULL: silent */
    const char *what;   /* what is counted, plural ("key sets") */
    uint64_t start_ms;  /* the first report */
    uint64_t last_ms;   /* the last line drawn */
    size_t done, total; /* the last report */
    size_t shown_len;   /* the line on screen (0: none), to blank what a shorter one leaves */
};

/* Reports go to stderr if it is a terminal and json is false; otherwise nowhere. */
void cli_progress_init(struct cli_progress *p, const char *what, bool json);
/* The same on a chosen stream (NULL: silent); for tests. */
void cli_progress_init_on(struct cli_progress *p, const char *what, FILE *out);
/* done of total so far (p NULL: nothing); draws the line if CLI_PROGRESS_INTERVAL_MS
 * have passed since the last one. The first report starts the clock and is drawn at once,
 * so the total shows. */
void cli_progress_update(struct cli_progress *p, size_t done, size_t total);
/* Ends the line (p NULL: nothing): with ok, a final line of the count, the time taken
 * and the mean rate; otherwise just a newline after a drawn line, so that an error
 * message starts on a line of its own. */
void cli_progress_finish(struct cli_progress *p, bool ok);

/* The running line, e.g. "12,800/100,000 key sets (12.8%), 1,234/s, 1 min 19 s left",
 * for done of total after elapsed_ms (no rate or time left before there is one). */
void cli_progress_format(char *out, size_t cap, const char *what, size_t done, size_t total,
                         uint64_t elapsed_ms);
/* The final line: "100,000 key sets in 1 min 21 s (1,234/s)". */
void cli_progress_format_final(char *out, size_t cap, const char *what, size_t done,
                               uint64_t elapsed_ms);

#endif
