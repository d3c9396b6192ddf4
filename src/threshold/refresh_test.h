/*
 * Test hooks of the share refresh (src/threshold/refresh.c): a dealer that cheats in one
 * of the ways the protocol must catch. Private to src/threshold and the tests.
 */
#ifndef MS_THRESHOLD_REFRESH_TEST_H
#define MS_THRESHOLD_REFRESH_TEST_H

#include "mikeysakke/threshold.h"

enum {
    TKMS_REFRESH_TEST_HONEST = 0,
    /* a wrong share for one server (the last, or server 1 if the dealer is the last),
     * answered with the same wrong share when that server complains */
    TKMS_REFRESH_TEST_BAD_SHARE = 1,
    /* a constant term other than 0, committed to as it is */
    TKMS_REFRESH_TEST_NONZERO_OPEN = 2,
    /* a constant term other than 0 behind a commitment to 0 (the shares then do not
     * match the commitments) */
    TKMS_REFRESH_TEST_NONZERO_HIDDEN = 3,
};

/* Makes r's dealer cheat by `mode`; call before round 1. */
void tkms_refresh_test_cheat(ms_tkms_refresh *r, int mode);

#endif
