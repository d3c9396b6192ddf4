/*
 * The callee's side of the voicemail store (src/relay): list, fetch and delete the
 * messages of one's own mailbox over HTTPS (libcurl), authenticated with HTTP Basic
 * (the mailbox URI and its password). What a message holds is opened elsewhere
 * (voicemail.h): the store only ever has ciphertext.
 */
#ifndef MS_CALL_MAILBOX_CLIENT_H
#define MS_CALL_MAILBOX_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

typedef struct ms_vm_server {
    const char *url;      /* "https://127.0.0.1:8443" (no trailing path) */
    const char *cacert;   /* PEM trust anchors for the server (NULL: the system's) */
    const char *user_uri; /* the mailbox: our own URI */
    const char *password; /* secret */
    long timeout_s;       /* per request (0: 30) */
} ms_vm_server;

typedef struct ms_vm_message {
    char id[33];
    char caller[256]; /* as the From header claimed: the store cannot verify it */
    uint64_t time;    /* Unix seconds */
    uint32_t duration_ms;
    uint64_t size;
} ms_vm_message;

/* Errors: MS_ERR_UNREACHABLE, MS_ERR_TLS, MS_ERR_UNAUTHORISED (401: wrong password or
 * no such mailbox, which the server does not tell apart), MS_ERR_HTTP (any other status,
 * 404 for an unknown message), MS_ERR_BUFFER_TOO_SMALL (more than cap messages; *n is
 * the count). */
ms_err ms_vm_list(const ms_vm_server *srv, ms_vm_message *out, size_t cap, size_t *n,
                  char *detail, size_t detail_cap);
/* Writes the message's capture to path (mode 0600, atomically). */
ms_err ms_vm_fetch(const ms_vm_server *srv, const char *id, const char *path, char *detail,
                   size_t detail_cap);
ms_err ms_vm_delete(const ms_vm_server *srv, const char *id, char *detail, size_t detail_cap);

#endif
