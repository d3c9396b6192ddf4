/*
 * Audited extraction at one threshold server (src/tkms/audit.c): the routes under
 * /tkms/audit/ that `kms serve` answers in threshold mode. A server releases its share
 * u_j of a slot (never SSK_j) to an auditor only for a warrant in the log whose
 * checkpoint t+1 servers cosigned, after writing its own audit entry.
 *
 * Warrants (src/tkms/warrant.c): a request text of the KMS roles (src/kms/roles.h)
 *   mikeysakke-request 1 / purpose=tkms-warrant / user=URI / period=P /
 *   auditor_key=<64 hex X25519> / reason=TEXT / nonce=<32 hex> / expires=<unix seconds>
 * followed by its signatures, one line each in the approval form "key <pub> <sig>"
 * (Ed25519 over "mikeysakke tkms warrant" NUL text). Valid at a server when signed by
 * the audit authority and by one approver (another key), the keys fixed at the server by
 * `kms threshold audit-setup` (audit-roles.txt). Its hash w = SHA-256(text without the
 * signature lines).
 *
 * The warrant log (warrants.log, one line per warrant "N <w hex> <head hex>"): a hash
 * chain head_N = SHA-256("mikeysakke tkms warrant log" NUL head_{N-1} w_N), head_0 = 0.
 * A checkpoint is the text
 *   mikeysakke-tkms-warrant-checkpoint 1 / kms <SHA-256(Z||KPAK) hex> /
 *   roles <SHA-256(audit-roles.txt) hex> / size N / head <hex>
 * signed by a server as a server message (src/net/peer_msg.h, kind 20, session
 * SHA-256("mikeysakke tkms audit" NUL Z KPAK)). An inclusion proof of w in a checkpoint
 * of size N: u32 k | head_{k-1} | w_k .. w_N (w_k = w).
 *
 * Routes (POST, application/octet-stream; errors text/plain "code N: <sentence>"):
 *   /tkms/audit/warrant  body: a signed warrant. Checked (signatures, not expired, user
 *                        and period well formed), appended if not yet in the log (an
 *                        audit entry "warrant" first), answered with
 *                        u32 len | signed checkpoint | proof of the warrant in it.
 *   /tkms/audit/extract  body: u16 len | user | u16 len | period | u32 len | warrant |
 *                        u8 count | count x (u32 len | signed checkpoint | u32 len | proof).
 *                        Released when the warrant is valid, for this user and period,
 *                        not expired and in checkpoints of t+1 distinct servers (keys of
 *                        the peers table, same KMS and roles): the audit entry "extract"
 *                        is fsynced, then the answer is a server message (kind 21,
 *                        session w) with payload u16 len | record | HPKE(auditor_key,
 *                        info "mikeysakke tkms audit share" NUL sid j w, aad record, u_j).
 */
#ifndef MS_TKMS_AUDIT_H
#define MS_TKMS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "net/http.h"
#include "tkms/node.h"

typedef struct ms_tkms_audit ms_tkms_audit;

/* The largest body the audit routes take (a warrant with its signatures, and the
 * checkpoints and proofs of up to MS_PEER_MAX servers): a server's max_body must allow it. */
#define MS_TKMS_AUDIT_BODY_MAX (64u * 1024u)

/* The audit state of the server `svc` serves (its log in the server's directory). The
 * handle refers to svc: close it first. Opens (creating at first need) audit.key,
 * audit.pub and audit.log, reads audit-roles.txt (absent: the routes answer 503 "audit
 * not set up") and warrants.log (its chain checked: MS_ERR_AUDIT_CHAIN). */
ms_err ms_tkms_audit_open(ms_tkms_audit **out, ms_tkms_service *svc, char *detail,
                          size_t detail_cap);
void ms_tkms_audit_close(ms_tkms_audit *a);

/* Answers req if its path is under /tkms/audit/ and returns true; false (resp untouched)
 * for any other path. Runs on a server thread; several may run at once. */
bool ms_tkms_audit_handle(ms_tkms_audit *a, const ms_http_request *req, ms_http_response *resp);

/* Tests only: the clock (unix seconds) expiry is checked against; 0 = the real one. */
void ms_tkms_audit_set_time(ms_tkms_audit *a, uint64_t unix_now);

/* The server's audit key in dir (audit.key 0600, audit.pub), made at first need; the
 * same key signs every entry of the server's audit.log. seed is secret: wipe it. */
ms_err ms_tkms_audit_key(const char *dir, uint8_t seed[32], uint8_t pub[32], char *detail,
                         size_t detail_cap);

/* ---- set-up: who may sign warrants ---------------------------------------------------- */

#define MS_TKMS_AUDIT_MAX_APPROVERS 8
typedef struct ms_tkms_audit_roles {
    uint8_t authority[32];
    unsigned n_approvers;
    uint8_t approver[MS_TKMS_AUDIT_MAX_APPROVERS][32];
} ms_tkms_audit_roles;

/* Writes dir/audit-roles.txt ("mikeysakke-tkms-audit-roles 1", "authority HEX", one
 * "approver HEX" line each, in the order given). MS_ERR_EXISTS if set up already;
 * MS_ERR_ARG for no approver, too many, or a key used twice. hash: SHA-256 of the file,
 * the "roles" of every checkpoint (servers set up differently never agree). */
ms_err ms_tkms_audit_setup(const char *dir, const ms_tkms_audit_roles *roles, uint8_t hash[32],
                           char *detail, size_t detail_cap);
ms_err ms_tkms_audit_roles_read(const char *path, ms_tkms_audit_roles *roles, uint8_t hash[32],
                                char *detail, size_t detail_cap);

/* ---- warrants (src/tkms/warrant.c) ------------------------------------------------------ */

#define MS_TKMS_WARRANT_MAX 4096
#define MS_TKMS_WARRANT_SIGS 8
#define MS_TKMS_WARRANT_CONTEXT "mikeysakke tkms warrant"

typedef struct ms_tkms_warrant {
    char user[256];
    char period[33];
    uint8_t auditor_pub[32];
    char reason[512];
    char nonce[33];
    uint64_t expires;
    uint8_t hash[32];   /* w */
    size_t text_len;    /* the signed text: the first text_len octets of what was parsed */
    unsigned n_sigs;
    uint8_t sig_pub[MS_TKMS_WARRANT_SIGS][32];
    uint8_t sig[MS_TKMS_WARRANT_SIGS][64];
} ms_tkms_warrant;

/* A new unsigned warrant (fresh nonce) into out (NUL-terminated). MS_ERR_ARG names the
 * bad field (period: letters, digits, '-', at most 32; user and reason printable). */
ms_err ms_tkms_warrant_make(char *out, size_t cap, size_t *len, const char *user,
                            const char *period, const uint8_t auditor_pub[32], uint64_t expires,
                            const char *reason, char *detail, size_t detail_cap);
/* Parses a warrant with any signature lines (MS_ERR_BAD_ENCODING naming what is wrong);
 * signatures are not checked here. */
ms_err ms_tkms_warrant_parse(const char *text, size_t len, ms_tkms_warrant *w, char *detail,
                             size_t detail_cap);
/* The signature line "key <pub> <sig>\n" of seed over the warrant (signature lines in
 * text are left out of what is signed). */
ms_err ms_tkms_warrant_sign(const uint8_t seed[32], const char *text, size_t len, char *line,
                            size_t cap, char *detail, size_t detail_cap);
/* Signed by roles' authority and by one of its approvers, every signature valid and by a
 * key of roles (MS_ERR_APPROVAL naming which), and expires > now (MS_ERR_REQUEST_STALE). */
ms_err ms_tkms_warrant_check(const ms_tkms_warrant *w, const char *text,
                             const ms_tkms_audit_roles *roles, uint64_t now, char *detail,
                             size_t detail_cap);

/* ---- the auditor (src/tkms/audit_client.c) ---------------------------------------------- */

typedef struct ms_tkms_extract_params {
    const char *peers_file;   /* the servers (URLs, message keys, TLS pins) and t */
    const char *public_file;  /* public.txt: Z and KPAK */
    const char *warrant;      /* the signed warrant text */
    size_t warrant_len;
    const uint8_t *auditor_sk; /* the X25519 key the warrant names (32 octets) */
    unsigned timeout_ms;      /* per request; 0: 30 s */
} ms_tkms_extract_params;

typedef struct ms_tkms_extract_result {
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint32_t logged;    /* bit j-1: server j logged the warrant (its checkpoint counted) */
    uint32_t released;  /* bit j-1: server j's share was used */
    char user[256];
    char period[33];
} ms_tkms_extract_result;

/* Submits the warrant to every server, gathers their checkpoints (at least t+1 needed:
 * MS_ERR_WARRANT_UNLOGGED), asks servers in order for their share until t+1 answered with
 * a share that opens and matches the slot's commitments (a server that refuses or cheats
 * is passed over and named in detail if too few remain), combines u = sum lambda_j u_j,
 * RSK = [u^-1]R0, and validates it (RFC 6508 6.1.2; MS_ERR_RSK_INVALID). res->rsk is
 * secret: wipe it. */
ms_err ms_tkms_audit_extract(const ms_tkms_extract_params *p, ms_tkms_extract_result *res,
                             char *detail, size_t detail_cap);

#endif
