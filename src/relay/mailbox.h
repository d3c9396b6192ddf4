/*
 * The voicemail store (src/relay/mailbox.c): one folder per mailbox, one pcap file per
 * message, an index per mailbox. Key-less: a message is a capture of what the caller
 * sent (the INVITE with its I_MESSAGE, then SRTP), opaque here.
 *
 *   DIR/<mailbox-id>/index          one line per message (below), replaced atomically
 *   DIR/<mailbox-id>/uri            the mailbox URI, for the administrator
 *   DIR/<mailbox-id>/<message-id>.pcap
 *   DIR/<mailbox-id>/.lock          flock(2) target serialising index updates
 *
 * mailbox-id is the lower-case hex SHA-256 of the normalised mailbox URI
 * (ms_vm_uri_normalise), so no URI can name a path outside DIR; message-id is 32
 * lower-case hex digits from the random generator, and any other spelling is refused.
 * Index line: "<message-id> <unix-time> <duration-ms> <size> <caller>", the caller as
 * the From header claimed it (the server cannot verify it), printable ASCII only, the
 * rest of the line. Only messages in the index are listed or served: a file whose index
 * update never happened (a crash) stays invisible.
 *
 * Every function may be called from several threads and processes at once: index
 * changes hold an exclusive flock on the mailbox's .lock, readers a shared one.
 */
#ifndef MS_RELAY_MAILBOX_H
#define MS_RELAY_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_MAILBOX_ID_HEX 64  /* hex digits of a mailbox id */
#define MS_MESSAGE_ID_HEX 32  /* hex digits of a message id */
#define MS_MAILBOX_CALLER_MAX 256

typedef struct ms_mailbox_limits {
    uint32_t max_messages; /* per mailbox; 0 = 100 */
    uint32_t max_seconds;  /* per message; 0 = 300 */
    uint64_t max_bytes;    /* per message file; 0 = 16 MiB */
} ms_mailbox_limits;

typedef struct ms_mailbox_entry {
    char id[MS_MESSAGE_ID_HEX + 1];
    char caller[MS_MAILBOX_CALLER_MAX]; /* as claimed in From: unverified */
    uint64_t time;        /* Unix seconds when the call arrived */
    uint32_t duration_ms; /* first to last media datagram */
    uint64_t size;        /* octets of the pcap file */
} ms_mailbox_entry;

typedef struct ms_mailbox_store ms_mailbox_store;

/* Opens (creating, mode 0700) the store folder. limits may be NULL (defaults). */
ms_err ms_mailbox_open(ms_mailbox_store **out, const char *dir, const ms_mailbox_limits *limits,
                       char *detail, size_t detail_cap);
void ms_mailbox_close(ms_mailbox_store *s); /* NULL allowed */
/* The limits in force, defaults filled in. */
void ms_mailbox_get_limits(const ms_mailbox_store *s, ms_mailbox_limits *out);

/* The folder name of a mailbox: hex SHA-256 of the normalised URI (MS_ERR_IDENTITY for
 * a URI that is not a mailbox URI). out holds MS_MAILBOX_ID_HEX + 1 octets. */
ms_err ms_mailbox_id(const char *uri, char out[MS_MAILBOX_ID_HEX + 1]);

/* Starts a message for mailbox `uri`: MS_ERR_QUOTA when the mailbox holds max_messages
 * already, counting `in_progress` messages being recorded for it (not yet indexed);
 * otherwise creates the mailbox folder, picks a fresh message id and writes the path the
 * capture is to be written to (DIR/<mailbox-id>/<id>.pcap). */
ms_err ms_mailbox_begin(ms_mailbox_store *s, const char *uri, unsigned in_progress,
                        char id[MS_MESSAGE_ID_HEX + 1], char *path, size_t path_cap,
                        char *detail, size_t detail_cap);

/* Adds a finished message (its file in place) to the index. e->size is taken from the
 * file; e->caller is cut to printable ASCII. MS_ERR_ARG if the file is absent. */
ms_err ms_mailbox_commit(ms_mailbox_store *s, const char *uri, const ms_mailbox_entry *e,
                         char *detail, size_t detail_cap);

/* The messages of a mailbox, oldest first (malloc'd array, *n = 0 and NULL for an
 * empty or absent mailbox). */
ms_err ms_mailbox_list(ms_mailbox_store *s, const char *uri, ms_mailbox_entry **out,
                       size_t *n, char *detail, size_t detail_cap);

/* The list as JSON: {"mailbox":"<uri>","messages":[{"id":..,"caller":..,
 * "caller_verified":false,"time":..,"time_utc":"..Z","duration_ms":..,"size":..}]}. */
ms_err ms_mailbox_list_json(ms_mailbox_store *s, const char *uri, char **json, size_t *len,
                            char *detail, size_t detail_cap);

/* One message's file (malloc'd). MS_ERR_ARG when `id` is malformed or not in the index
 * of this mailbox. */
ms_err ms_mailbox_read(ms_mailbox_store *s, const char *uri, const char *id, uint8_t **data,
                       size_t *len, char *detail, size_t detail_cap);

/* Removes a message from the index, then its file. MS_ERR_ARG as for read. */
ms_err ms_mailbox_delete(ms_mailbox_store *s, const char *uri, const char *id, char *detail,
                         size_t detail_cap);

/* True for exactly 32 lower-case hex digits. */
bool ms_mailbox_valid_message_id(const char *id);

#endif
