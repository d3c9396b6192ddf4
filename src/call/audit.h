/*
 * The auditor: with one user's RSK for one key period (from `kms audit extract`), finds
 * the calls in captures (tcpdump on the provider, voicemail files), opens those addressed
 * to the user or placed by the user (SAKKE-to-self), decrypts both directions into one
 * WAV per direction and writes report.json. Every other call is listed as "not openable
 * with this key" with the reason, and left alone.
 *
 * A call is an INVITE with an SDP offer (a=key-mgmt); copies of it (caller -> proxy and
 * proxy -> callee, retransmissions, a B2BUA's second leg with the same I_MESSAGE) count
 * once. Its datagrams are found by address: sent to the callee's advertised media
 * address (the answer's c=/m=) = caller to callee, sent to the caller's = callee to
 * caller; failing that, by source. A voicemail file (an INVITE, no answer, the caller's
 * datagrams) has one direction; any UDP in such a file belongs to its one call.
 *
 * Group calls: a SIP MESSAGE from the GMS that reached the user carries a GMK I_MESSAGE
 * and the signed roster; opened with the same RSK (GMK profile), it gives every roster
 * member's SRTP keys, and any datagram one of them authenticates (by MKI) is that
 * member's, whatever its addresses (the relay fans each packet out: copies are
 * duplicates).
 */
#ifndef MS_CALL_AUDIT_H
#define MS_CALL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "call/keys.h"
#include "call/rtp.h"
#include "call/srtp.h"
#include "mikeysakke/errors.h"

typedef enum ms_audit_dir {
    MS_AUDIT_CALLER_TO_CALLEE = 0,
    MS_AUDIT_CALLEE_TO_CALLER = 1
} ms_audit_dir;

/* "caller-to-callee" / "callee-to-caller" (file names and the report). */
const char *ms_audit_dir_name(ms_audit_dir d);

typedef struct ms_audit_options {
    uint64_t period_no;   /* the RSK's key period, for the report's header */
    bool no_audio;        /* decrypt and count only: no Opus decoding, no WAV files */
    bool no_report;       /* do not write report.json (the report struct is still filled) */
    /* Each decrypted RTP packet, in capture order (tests, independent checks). call_index
     * is 1-based as in the report; payload is the decrypted RTP payload. May be NULL. */
    void (*on_payload)(void *arg, size_t call_index, ms_audit_dir dir,
                       const ms_rtp_header *h, const uint8_t *payload, size_t len);
    void *arg;
    /* Group calls (TS 33.180 GMK): the same user's RSK opened in the GMK profile
     * (ms_call_keys_open_audit with MS_MIKEY_PROFILE_GMK) and the KMS whose KPAK checks
     * the GMS's signed roster. Either group_keys, or open_group_keys, called once when the
     * first group key message is met (opening checks the RSK with a pairing, wasted on
     * captures of calls only); the keys it gives stay the caller's. Both NULL: group
     * media is not looked at. */
    ms_call_keys *group_keys;
    ms_err (*open_group_keys)(void *ctx, ms_call_keys **keys, char *detail, size_t detail_cap);
    void *open_group_keys_ctx;
    const ms_mikey_kms_info *kms;
    /* SIP MESSAGEs from the GMS given as files (headers and body, as sent), in addition
     * to those found in the captures. */
    const char *const *group_messages;
    size_t n_group_messages;
} ms_audit_options;

/* What happened to one direction of one call. */
typedef struct ms_audit_stream {
    uint64_t decrypted;   /* SRTP packets that authenticated and decrypted (any payload
                             type; only the offer's Opus payload type becomes audio) */
    uint64_t failed_auth; /* SRTP/SRTCP packets that failed authentication: never audio */
    uint64_t duplicates;  /* seen before (a relayed copy, a retransmission) or too old for
                             the replay window: skipped, not an error */
    uint64_t dropped;     /* not SRTP (too short, malformed), or decrypted but not Opus
                             the decoder takes */
    uint64_t rtcp;        /* SRTCP packets that authenticated */
    uint64_t late;        /* decrypted but behind the audio already written */
    uint64_t frames;      /* 20 ms frames written: decoded + concealed */
    uint64_t concealed;   /* frames of loss concealment inserted for sequence gaps */
    uint64_t first_us, last_us; /* capture times of the first/last decrypted packet */
    uint32_t ssrc;
    char file[64];        /* WAV file name inside the output directory; "" if none */
} ms_audit_stream;

typedef struct ms_audit_call {
    size_t index;                   /* 1-based, in order of the first INVITE */
    char call_id[256];
    uint64_t invite_us, answer_us, bye_us; /* capture times; 0 = not seen */
    int final_status;               /* final SIP status of the INVITE seen (0: none) */
    char caller_claimed[256], callee_claimed[256]; /* From and To of the INVITE */
    char caller_media[80], callee_media[80];       /* "IP:port" from the SDP ("" if none) */
    bool voicemail;                 /* no answer SDP: one direction only */
    bool openable;
    /* not openable: the library's code and its reason (a refusal's Warning text) */
    ms_err err;
    char why[256];
    /* openable: as MIKEY verified them */
    char caller_verified[256], callee_verified[256];
    bool caller_claim_matches, callee_claim_matches;
    bool opened_as_caller;          /* the user's own call, through SAKKE-to-self */
    uint64_t period_no;
    uint32_t key_id;                /* PCK-ID (or CSB-ID) = the SRTP MKI */
    uint64_t mikey_time;            /* T of the I_MESSAGE, NTP 32.32 */
    ms_srtp_suite suite;
    ms_audit_stream dir[2];         /* by ms_audit_dir */
} ms_audit_call;

/* A group key that reached the user (a GMK I_MESSAGE in a SIP MESSAGE from the GMS) and
 * the group media it opens: every sender of its roster, by MKI. */
typedef struct ms_audit_group_sender {
    char uri[256];
    ms_audit_stream s;    /* file: group-<i>-<user part>.wav */
} ms_audit_group_sender;

typedef struct ms_audit_group {
    size_t index;                   /* 1-based, in order of the first MESSAGE */
    uint64_t message_us;            /* capture time of the MESSAGE (0: from a file) */
    char member[256];               /* To of the MESSAGE */
    bool openable;
    ms_err err;                     /* not openable: why */
    char why[256];
    /* openable: as MIKEY and the GMS's signature verified them */
    char group[128], gms[256];
    uint32_t gmk_id;
    uint64_t activation, expiry;    /* NTP seconds (0: at once / none) */
    uint64_t duplicates;            /* packets seen before (the relay's copies) */
    size_t n_senders;
    ms_audit_group_sender *senders; /* the roster, malloc'd */
} ms_audit_group;

/* One capture read, for the record: where it was and what it held. */
typedef struct ms_audit_capture {
    char *path;           /* malloc'd copy */
    uint64_t bytes;
    uint8_t sha256[32];   /* of the whole file, so the report names exactly what was read */
} ms_audit_capture;

typedef struct ms_audit_report {
    char user[256];
    uint64_t period_no;
    size_t n_calls, opened;
    ms_audit_call *calls;           /* n_calls entries, malloc'd */
    size_t n_captures;
    ms_audit_capture *captures;     /* n_captures entries, malloc'd */
    uint64_t sip_messages, datagrams;
    uint64_t unassigned;            /* UDP datagrams of no call found in the captures */
    uint64_t ignored;               /* datagrams of calls that could not be opened */
    char warnings[512];             /* e.g. a capture cut short; "" if none */
    size_t n_groups, groups_opened;
    ms_audit_group *groups;         /* n_groups entries, malloc'd */
} ms_audit_report;

void ms_audit_report_free(ms_audit_report *r); /* NULL allowed */

/*
 * Audit captures[0..n_captures) (pcap or pcapng, read merged in time order) with `keys`
 * (opened with ms_call_keys_open_audit). Writes call-<i>-caller-to-callee.wav,
 * call-<i>-callee-to-caller.wav and report.json into out_dir (created, mode 0700, if
 * missing; files replaced atomically); out_dir may be NULL with opt->no_audio and
 * opt->no_report. *report (may be NULL) receives the report; free it with
 * ms_audit_report_free. Errors: MS_ERR_CAPTURE (a file that cannot be opened), MS_ERR_IO
 * (the output directory), MS_ERR_MEDIA (a WAV file), MS_ERR_NOMEM; detail names the
 * file. Calls that cannot be opened and packets that fail authentication are results,
 * not errors.
 */
ms_err ms_audit_decrypt(const char *const *captures, size_t n_captures, ms_call_keys *keys,
                        const char *out_dir, const ms_audit_options *opt,
                        ms_audit_report *report, char *detail, size_t detail_cap);

/* The report as JSON (what report.json holds). *out is malloc'd, NUL-terminated. */
ms_err ms_audit_report_json(const ms_audit_report *r, char **out, size_t *out_len);

#endif
