/*
 * STUB — DELETE AT MERGE with the group branch (src/group/ implements
 * ms_group_sender_keys and ms_group_key_wipe, and stores the member's group keys).
 *
 * Until then a member's group key comes from a small text file (mode 0600) that the
 * tests write with tests/lib/make_group_key.py:
 *     group sip:team@example.org
 *     gmk 32 hex digits
 *     gmk-id 8 hex digits (purpose tag 0 in the top 4 bits)
 *     rand hex digits (16 to 255 octets)
 *     cs-id N          (optional, default 0)
 */
#ifndef MS_CALL_GROUP_KEYS_STUB_H
#define MS_CALL_GROUP_KEYS_STUB_H

#include "mikeysakke/group.h"

ms_err ms_group_key_load_stub(ms_group_key *out, const char *path, char *detail,
                              size_t detail_cap);

#endif
