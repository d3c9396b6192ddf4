/*
 * Small test harness shared by every test program: checks that count failures,
 * hex helpers, the RFC vector files, a fixed-output RNG and a seeded test RNG.
 * A test's main returns ms_test_finish(), which prints "N passed, N failed".
 */
#ifndef MS_TESTUTIL_H
#define MS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mikeysakke/crypto.h"

extern int ms_test_passed;
extern int ms_test_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            ms_test_passed++;                                                        \
        } else {                                                                     \
            ms_test_failed++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* Checks an ms_err against the expected code and names both on failure. */
#define CHECK_ERR(expr, want)                                                          \
    do {                                                                               \
        ms_err got_ = (expr);                                                          \
        if (got_ == (want)) {                                                          \
            ms_test_passed++;                                                          \
        } else {                                                                       \
            ms_test_failed++;                                                          \
            fprintf(stderr, "%s:%d: %s returned %s, want %s\n", __FILE__, __LINE__,    \
                    #expr, ms_errname(got_), ms_errname(want));                        \
        }                                                                              \
    } while (0)

#define CHECK_MEM(got, want, len) ms_test_check_mem(__FILE__, __LINE__, #got, (got), (want), (len))

void ms_test_check_mem(const char *file, int line, const char *what, const void *got,
                       const void *want, size_t len);

/* Prints the totals and returns the process exit status (0 only if nothing failed and
 * at least one check ran). */
int ms_test_finish(void);

/* With $MS_TEST_FP_BACKEND set (the portable builds of the field tests), checks that the
 * field backend in use is that one, so a build that silently kept another fails. */
void ms_test_check_fp_backend(void);

/* Parses hex (no spaces) into out; returns the number of octets or aborts the test. */
size_t ms_test_hex(uint8_t *out, size_t cap, const char *hex);

/* Looks up `name` in tests/vectors/<file> (found through $MS_TEST_VECTORS); fills out
 * with its octets and returns the length. Aborts if missing or longer than cap. */
size_t ms_test_vector(const char *file, const char *name, uint8_t *out, size_t cap);

/* Seeded deterministic generator for randomised tests: the seed comes from
 * $MS_TEST_SEED or the clock and is printed, so a failure can be replayed. */
void ms_test_seed(void);
void ms_test_random(uint8_t *out, size_t len);
uint64_t ms_test_random_u64(void);
extern const ms_rng ms_test_rng; /* draws from ms_test_random */

/* An ms_rng that returns fixed octets (for the RFC known-answer tests): each call to
 * fill copies the next `len` octets of the queue; an exhausted queue fails. */
typedef struct ms_fixed_rng {
    const uint8_t *data;
    size_t len;
    size_t pos;
} ms_fixed_rng;
ms_rng ms_fixed_rng_make(ms_fixed_rng *state, const uint8_t *data, size_t len);

/* Records the calls of a progress callback (ms_kms_progress_fn): how many, the first and
 * last, and whether done ever fell or went past total. Zero it before use. */
typedef struct ms_test_progress {
    size_t calls;
    size_t first_done, first_total, last_done, last_total;
    int fell;      /* done smaller than the call before */
    int overshot;  /* done > total */
} ms_test_progress;
void ms_test_progress_cb(void *ctx, size_t done, size_t total);

/* n (at most 64) distinct free loopback TCP ports, probed while held together; 0 on
 * failure. */
int ms_test_free_ports(uint16_t *ports, unsigned n);

#endif
