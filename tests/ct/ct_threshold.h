/* The threshold KMS's part of the constant-time check (ct_threshold.c). */
#ifndef MS_TESTS_CT_THRESHOLD_H
#define MS_TESTS_CT_THRESHOLD_H

typedef void (*ct_checked_fn)(const char *what);
void ct_check_threshold(ct_checked_fn checked);

#endif
