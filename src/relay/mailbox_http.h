/*
 * Owner-only HTTPS access to the voicemail store (src/relay/mailbox_http.c), on the
 * project's libmicrohttpd plumbing (src/net/http.h, started with allow_delete). Key-less:
 * owners authenticate with HTTP Basic (credentials.h) over TLS.
 *
 *   GET    /mailbox               the owner's list (JSON, see ms_mailbox_list_json)
 *   GET    /mailbox/<message-id>  the message (application/vnd.tcpdump.pcap)
 *   DELETE /mailbox/<message-id>  204
 *
 * Answers (JSON bodies {"error":"..."}): 401 for a missing, malformed or wrong
 * credential and for an unknown mailbox, all with the same body; 404 for a message id
 * not in the owner's mailbox (malformed ids included) and any other path; 405 for
 * another method on these paths; 500 when the store fails. The credential selects the
 * mailbox: nobody can name another owner's mailbox.
 */
#ifndef MS_RELAY_MAILBOX_HTTP_H
#define MS_RELAY_MAILBOX_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "net/http.h"
#include "relay/credentials.h"
#include "relay/mailbox.h"

typedef struct ms_vm_http {
    ms_mailbox_store *store;
    ms_vm_credentials *creds;
    /* One line per fetch or deletion and per credentials reload or refusal (no
     * secrets); may be NULL. Called from server threads. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} ms_vm_http;

/* The handler for ms_http_start (ctx = a ms_vm_http). */
void ms_vm_http_handle(void *ctx, const ms_http_request *req, ms_http_response *resp);

/* A body for the answers http.c gives itself (405, 413, 429), as JSON. */
void ms_vm_http_error_body(void *ctx, const ms_http_request *req, ms_http_response *resp);

#endif
