/*
 * One sentence of error detail into a caller's buffer: the out-parameter every function
 * without an object uses (`char *detail, size_t detail_cap`). Private to src/.
 */
#ifndef MS_UTIL_DETAIL_H
#define MS_UTIL_DETAIL_H

#include <stddef.h>

#include "mikeysakke/errors.h"

/* Formats into detail (NULL or cap 0: nothing is written). */
void ms_detail_set(char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same, and returns err: `return ms_detail_fail(MS_ERR_IO, detail, cap, ...);`. */
ms_err ms_detail_fail(ms_err err, char *detail, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
