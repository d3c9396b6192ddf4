/*
 * The servers of a threshold KMS as every server and device pins them (src/net/peer_table.c):
 * for each server index 1..n its address, its Ed25519 message key (src/net/peer_msg.h), its
 * HPKE key (src/net/hpke.h) and the pin of its TLS certificate (src/net/peer.h), and the
 * threshold t. The ceremony writes it once; each server and each device keeps a copy.
 *
 * Text form, one item a line, "\n" line ends, lowercase hex:
 *   mikeysakke-peers 1
 *   threshold <t>
 *   server 1 <https URL> sign=<64 hex> hpke=<64 hex> tls=<64 hex>
 *   server 2 ...
 * Servers are listed in order 1..n, n from 2t+1 (a batch needs 2t+1 live servers) to
 * MS_PEER_MAX, t at least 1; no two servers share an address or any key.
 */
#ifndef MS_NET_PEER_TABLE_H
#define MS_NET_PEER_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "net/hpke.h"
#include "net/peer.h"
#include "net/peer_msg.h"

#define MS_PEER_URL_MAX 255
#define MS_PEER_TABLE_HEADER "mikeysakke-peers 1\n"
#define MS_PEER_TABLE_MAX (MS_PEER_MAX * 512 + 64) /* longest text form */

typedef struct ms_peer_entry {
    char url[MS_PEER_URL_MAX + 1];
    uint8_t sign_pub[MS_PEER_KEY_BYTES];
    uint8_t hpke_pub[MS_HPKE_PK_BYTES];
    uint8_t tls_pin[MS_PEER_PIN_BYTES];
} ms_peer_entry;

typedef struct ms_peer_table {
    unsigned n;                          /* servers 1..n */
    unsigned t;                          /* any t+1 issue; t learn nothing */
    ms_peer_entry server[MS_PEER_MAX];   /* server i is server[i - 1] */
} ms_peer_table;

/* Checks the rules above (MS_ERR_CONFIG with detail naming the server or setting). */
ms_err ms_peer_table_check(const ms_peer_table *t, char *detail, size_t detail_cap);
/* Parses the text form (MS_ERR_CONFIG naming the line; then the checks above). */
ms_err ms_peer_table_parse(const char *text, size_t len, ms_peer_table *out, char *detail,
                           size_t detail_cap);
/* The text form, NUL-terminated (MS_ERR_BUFFER_TOO_SMALL; MS_PEER_TABLE_MAX is enough). */
ms_err ms_peer_table_format(const ms_peer_table *t, char *out, size_t cap, size_t *len);
/* Files: read whole (MS_ERR_IO), written as a new file atomically (MS_ERR_EXISTS). */
ms_err ms_peer_table_read(const char *path, ms_peer_table *out, char *detail, size_t detail_cap);
ms_err ms_peer_table_write(const char *path, const ms_peer_table *t, char *detail,
                           size_t detail_cap);

/* The message keys and the TLS pins of the table, in the forms peer_msg and peer take. */
void ms_peer_table_keys(const ms_peer_table *t, ms_peer_keys *keys);
void ms_peer_table_pins(const ms_peer_table *t, ms_peer_pins *pins);
/* A link to server `index` (1..n) presenting cert_file/key_file (kept as pointers: they
 * and the table must outlive the link). MS_ERR_ARG for an index outside the table. */
ms_err ms_peer_table_link(const ms_peer_table *t, unsigned index, const char *cert_file,
                          const char *key_file, ms_peer_link *link);

#endif
