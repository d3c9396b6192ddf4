/*
 * The KMS audit log (src/kms/audit.c): an append-only text file, one entry per line,
 * each entry carrying its sequence number, time, the SHA-256 of the previous entry and
 * an Ed25519 signature by the KMS audit key over all of it. Appending fsyncs before it
 * returns: callers release nothing until it returned MS_OK (fail closed). Verification
 * needs only the public key and names the first entry that was altered, removed or
 * reordered; a truncated tail is found by comparing with a head (sequence number and
 * hash) kept elsewhere (the KMS database, or a value the officer wrote down).
 */
#ifndef MS_KMS_AUDIT_H
#define MS_KMS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_AUDIT_PUBLIC_BYTES 32
#define MS_AUDIT_HASH_BYTES 32
#define MS_AUDIT_LINE_MAX 65536 /* longest entry, newline included (longer: MS_ERR_ARG) */
#define MS_AUDIT_MAX_FIELDS 32  /* caller fields per entry, besides seq/time/event/prev/sig */

/* The format is described at the top of audit.c and in docs/audit.md. */

typedef struct ms_audit ms_audit;

/* One field of an entry: key = [a-z_]+ (at most 32, not seq/time/event/prev/sig, no
 * duplicates), value any NUL-terminated string: it is quoted and escaped as needed, so
 * it can never add a field or a line. */
typedef struct ms_audit_field {
    const char *key;
    const char *value;
} ms_audit_field;

/* The public key of an audit seed (Ed25519). */
ms_err ms_audit_public_key(uint8_t pub[MS_AUDIT_PUBLIC_BYTES], const uint8_t seed[32]);

/* Open (creating if absent, mode 0600) the log at path for appending with the private
 * seed; checks the last entry's chain so appends continue it (MS_ERR_AUDIT_CHAIN if the
 * tail is damaged, MS_ERR_AUDIT_LOG if it cannot be opened for writing). */
ms_err ms_audit_open(ms_audit **out, const char *path, const uint8_t seed[32]);
void ms_audit_close(ms_audit *a);

/* Append one entry (event e.g. "extract", "issue", "export", "enrol", "unseal", "seal";
 * [a-z_]+) and fsync; MS_ERR_AUDIT_LOG on any failure (and nothing is appended: a
 * partial line is cut off again). ntp_time is in NTP seconds (since 1900, i.e.
 * ms_ntp_now() >> 32; 0 = now; past year 9999: MS_ERR_ARG), written as UTC to the
 * second. Bad arguments: MS_ERR_ARG.
 * Should another handle or process have appended meanwhile, its tail is checked first
 * (MS_ERR_AUDIT_CHAIN if damaged). On success *seq and head_hash (may be NULL) give
 * the new head. Safe to call from several threads on one handle. */
ms_err ms_audit_append(ms_audit *a, uint64_t ntp_time, const char *event,
                       const ms_audit_field *fields, size_t n_fields, uint64_t *seq,
                       uint8_t head_hash[MS_AUDIT_HASH_BYTES]);

/* The head as this handle knows it (seq 0 and all-zero hash for an empty log). */
ms_err ms_audit_head(ms_audit *a, uint64_t *seq, uint8_t head_hash[MS_AUDIT_HASH_BYTES]);

/* A copy of every entry as this handle appends it, in the log's order (line without its
 * "\n"), e.g. to syslog. Called under the handle's lock: it must not use the handle.
 * Best effort: the file stays the record. fn NULL: no copy. */
typedef void (*ms_audit_copy_fn)(void *ctx, const char *line, size_t len);
void ms_audit_set_copy(ms_audit *a, ms_audit_copy_fn fn, void *ctx);

/* A checkpoint: a statement of the head (entry seq and its hash), signed by the audit
 * key, that auditors keep outside the KMS directory:
 *   mikeysakke-audit-checkpoint seq=N head=<64 hex> time=<UTC> sig=<128 hex>\n
 * (sig over the octets before " sig="; the leading word keeps it from ever reading as a
 * log entry). ms_audit_checkpoint writes it for (seq, head) at ntp_time (0: now). */
#define MS_AUDIT_CHECKPOINT_MAX 384
ms_err ms_audit_checkpoint(ms_audit *a, uint64_t seq, const uint8_t head[MS_AUDIT_HASH_BYTES],
                           uint64_t ntp_time, char *out, size_t cap);
/* Parses and checks one: MS_OK fills seq and head; MS_ERR_BAD_ENCODING if malformed,
 * MS_ERR_AUDIT_CHAIN if the signature does not verify under pub; detail says which. */
ms_err ms_audit_checkpoint_check(const char *text, const uint8_t pub[MS_AUDIT_PUBLIC_BYTES],
                                 uint64_t *seq, uint8_t head[MS_AUDIT_HASH_BYTES],
                                 char *detail, size_t cap);

/* Verify a whole log. *n_entries = entries checked. On MS_ERR_AUDIT_CHAIN, *first_bad
 * is the 1-based line of the first entry that does not verify, and detail (cap octets,
 * may be NULL) says what: bad signature (altered), sequence gap (removed), sequence
 * out of order (reordered), previous-hash mismatch, malformed line, or (when
 * expect_seq > 0) a head that does not match expect_seq/expect_hash (truncated): the
 * log must hold entry expect_seq, and (if expect_hash) that entry's hash must be
 * expect_hash; later entries are allowed. A last line without its newline is reported
 * as a partial last line. On MS_OK detail gives the count and the head (seq, hash).
 * MS_ERR_IO if the file cannot be read, MS_ERR_ARG for bad arguments. */
ms_err ms_audit_verify(const char *path, const uint8_t pub[MS_AUDIT_PUBLIC_BYTES],
                       uint64_t expect_seq, const uint8_t *expect_hash /* or NULL */,
                       uint64_t *n_entries, uint64_t *first_bad, char *detail, size_t cap);

#endif
