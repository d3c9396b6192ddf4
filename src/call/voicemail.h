/*
 * Playing a voicemail: a message from the voicemail store (a capture of the INVITE with
 * its I_MESSAGE and the caller's SRTP) opened with the callee's own keystore, long after
 * the call: the signature, the addressee and the key period are checked, the clock
 * window is not. A message played before is flagged when it comes again: the device
 * remembers what the signature binds (caller, T, PCK-ID) of every message it played.
 */
#ifndef MS_CALL_VOICEMAIL_H
#define MS_CALL_VOICEMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "call/keys.h"

typedef struct ms_vm_play_result {
    char caller[256];     /* as MIKEY verified it */
    char caller_claimed[256];
    uint64_t period_no;
    uint32_t key_id;
    uint64_t mikey_time;  /* T, NTP 32.32 */
    bool played_before;   /* this very message was played on this device already */
    uint64_t frames, failed_auth, duplicates;
    char refused[256];    /* when the message cannot be opened: why */
} ms_vm_play_result;

/* Opens `capture` with `keys` (ms_call_keys_open in MS_CALL_KEYS_STORED mode) and writes
 * what the caller said to wav_out (48 kHz mono, atomically). `played_list` is the file
 * of messages played on this device (created mode 0600; NULL: no replay check).
 * MS_ERR_CAPTURE for a file that holds no call; the MIKEY error (res->refused says why)
 * for a message that does not open. */
ms_err ms_vm_play(ms_call_keys *keys, const char *capture, const char *wav_out,
                  const char *played_list, ms_vm_play_result *res, char *detail,
                  size_t detail_cap);

#endif
