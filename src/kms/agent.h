/*
 * The unseal agent: the process that holds a KMS's master secrets and carries out the
 * requests of the `mikeysakke kms` commands sent over DIR/agent.sock. This header is the
 * protocol (agent_protocol.c: framing, fields, signing) and the dispatch (agent.c: the
 * table of verbs, the role rules, the answers as structured fields). docs/agent-protocol.md
 * describes the wire format and every verb for other implementations. Private to src/
 * and tools/.
 */
#ifndef MS_KMS_AGENT_H
#define MS_KMS_AGENT_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "mikeysakke/kms.h"

/* Version 4: issue and export send progress messages before the answer when the request
 * asks ("progress" = 1). Version 3: answers carry structured fields and "v". Version 2
 * added signed requests, version 1 was unsigned requests answered with text. */
#define MS_AGENT_PROTOCOL 4
#define MS_AGENT_MSG_MAX (1u << 20) /* octets of one message body */
#define MS_AGENT_FIELD_NAME_MAX 255

/* ---- messages (agent_protocol.c) ------------------------------------------------------ */

/* One request or answer: a 4-octet big-endian body length, then fields, each
 * [1-octet name length][name][4-octet big-endian value length][value]. A name may repeat
 * (a list). Adding past MS_AGENT_MSG_MAX sets overflow and the message is not sent. */
typedef struct ms_agent_msg {
    uint8_t *buf; /* 4 + MS_AGENT_MSG_MAX octets */
    size_t len;   /* the header and the fields so far */
    bool overflow;
} ms_agent_msg;

/* false when out of memory (m is then safe to free). */
bool ms_agent_msg_init(ms_agent_msg *m);
/* Wipes (values may be shares, PINs, RSKs) and frees. */
void ms_agent_msg_free(ms_agent_msg *m);
/* Empties m for reuse, wiping what it held. */
void ms_agent_msg_reset(ms_agent_msg *m);

void ms_agent_msg_add(ms_agent_msg *m, const char *name, const void *val, size_t len);
void ms_agent_msg_adds(ms_agent_msg *m, const char *name, const char *val);
void ms_agent_msg_addu(ms_agent_msg *m, const char *name, uint64_t val);
void ms_agent_msg_addf(ms_agent_msg *m, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The index-th field called name (its value and length), or NULL. */
const uint8_t *ms_agent_msg_get(const ms_agent_msg *m, const char *name, size_t index,
                                size_t *len);
/* The same as a C string copied into out (cap), or NULL if absent, too long or not text. */
const char *ms_agent_msg_str(const ms_agent_msg *m, const char *name, size_t index, char *out,
                             size_t cap);
/* A decimal field: false if absent or not a number. */
bool ms_agent_msg_u64(const ms_agent_msg *m, const char *name, size_t index, uint64_t *out);
/* How many fields are called name. */
size_t ms_agent_msg_count(const ms_agent_msg *m, const char *name);
/* Walks the fields: *off starts at 0; false at the end or on a malformed field. */
bool ms_agent_msg_next(const ms_agent_msg *m, size_t *off, char name[MS_AGENT_FIELD_NAME_MAX + 1],
                       const uint8_t **val, size_t *len);

/* A frame as received (header and body) into m: MS_ERR_BAD_LENGTH if the header does not
 * give the body's length or it is over MS_AGENT_MSG_MAX, MS_ERR_BAD_ENCODING if a field
 * runs past the end or has an empty name. */
ms_err ms_agent_msg_decode(ms_agent_msg *m, const uint8_t *frame, size_t len);
/* The frame of m (header filled in): points into m; MS_ERR_BAD_LENGTH after overflow. */
ms_err ms_agent_msg_frame(ms_agent_msg *m, const uint8_t **frame, size_t *len);
/* One message over a stream socket: MS_ERR_IO on a short read or write, else as decode. */
ms_err ms_agent_msg_send(int fd, ms_agent_msg *m);
ms_err ms_agent_msg_recv(int fd, ms_agent_msg *m);

/* Fields that travel beside a signed request without being part of the signed text: the
 * signature itself, secrets, and texts that carry their own approvals. */
bool ms_agent_unsigned_field(const char *name);

/* Signs req (protocol 2 and later) with a role's key seed: the text holds every plain
 * field, kms_uri, unix_time and a fresh nonce; adds "v", "auth", "auth_key" and
 * "auth_sig". MS_ERR_ARG if a plain field is not short text. */
ms_err ms_agent_sign(ms_agent_msg *req, const char *kms_uri, uint64_t unix_time,
                     const uint8_t seed[32]);

/* ---- the agent (agent.c) -------------------------------------------------------------- */

typedef struct ms_agent {
    ms_kms *kms;
    char dir[PATH_MAX]; /* named in errors the KMS does not explain */
    bool serving;       /* kms serve: sealing wipes the secrets but the process stays */
    bool seal_now;      /* set by a "seal" request: the agent process should exit */
    /* Where issue and export report progress when the request asks for it (NULL: they
     * do not); ms_agent_serve sends it to the client as progress messages. */
    ms_kms_progress_fn progress;
    void *progress_ctx;
} ms_agent;

/* Answers one request: checks the frame's fields, the version, the verb's role (a
 * signed request whose plain fields are exactly the signed ones), carries it out on
 * a->kms (the caller holds ms_kms_lock when the handle is shared) and fills ans (emptied
 * first) with "v", "status" (the ms_err), on failure "err" (why: the KMS's detail, else
 * the directory) and the verb's fields. Returns the status. */
ms_err ms_agent_dispatch(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans);

/* A progress message: "v", "progress_done", "progress_total" and no "status" (so a
 * client tells it from the answer). */
void ms_agent_progress_fields(ms_agent_msg *m, size_t done, size_t total);
/* Whether m is a progress message rather than the answer. */
bool ms_agent_is_progress(const ms_agent_msg *m);

/* The agent's loop on a listening socket: one request and one answer per connection
 * (preceded by progress messages when the request asks for them),
 * only from this process's user; returns when *stop is set (by a signal: accept is
 * interrupted) or after a seal request (a->seal_now). */
ms_err ms_agent_serve(ms_agent *a, int listen_fd, volatile sig_atomic_t *stop);

/* The role a verb needs ("operator", "officer"), NULL for a verb anyone on the socket may
 * send, and MS_ERR_USAGE in *e for an unknown verb (e may be NULL). */
const char *ms_agent_verb_role(const char *verb, ms_err *e);

/* The status of k as the "status" verb answers it (also for a KMS with no agent). */
void ms_agent_status_fields(ms_kms *k, ms_agent_msg *ans);
/* The users of k as "user_list" answers them: "user", "user_state" (active or suspended)
 * and "devices" for each, in that order. */
ms_err ms_agent_user_fields(ms_kms *k, ms_agent_msg *ans);

/* A key period: a number, "current", "next" or a time (util/timefmt.h: YYYY-MM-DDTHH:MM:SSZ,
 * a fraction of seconds allowed). MS_ERR_AUDIT_SCOPE for more than one ("all", "*",
 * ranges), MS_ERR_USAGE otherwise (a malformed time too: its '-' make no range). */
ms_err ms_agent_period(ms_kms *k, const char *text, uint64_t *period_no);
/* The scope of an extraction request: one user and one period (ms_agent_period), else
 * MS_ERR_AUDIT_SCOPE (a list "a,b", "*", "all", a range). The library refuses "*" and
 * "all" as users too. */
ms_err ms_agent_extract_scope(ms_kms *k, const char *user, const char *period,
                              uint64_t *period_no);

#endif
