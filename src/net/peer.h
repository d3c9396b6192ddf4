/*
 * Mutually authenticated TLS between the servers of a threshold KMS (src/net/peer.c).
 *
 * Each server has a self-signed certificate (P-256 ECDSA) made at the ceremony by
 * ms_peer_tls_generate; the servers know one another by the SHA-256 of each certificate's
 * SubjectPublicKeyInfo (DER), the "pin" (the value curl's CURLOPT_PINNEDPUBLICKEY takes as
 * sha256//base64). No certificate authority and no host name is involved: a connection is
 * accepted only when the other end proved, in the TLS handshake, that it holds the private
 * key of a pinned certificate.
 *
 * Server: the HTTPS server of src/net/http.c, asking every client for a certificate and
 * answering 403 (connection closed) to a client without one or with one whose pin is not
 * in the table, before any body is read; the handler is told the calling server's index
 * (1..n). Client: libcurl presenting this server's certificate and
 * accepting only the pinned certificate of the server it calls.
 */
#ifndef MS_NET_PEER_H
#define MS_NET_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"
#include "net/http.h"
#include "net/peer_msg.h"

#define MS_PEER_PIN_BYTES 32
#define MS_PEER_PIN_HEX (2 * MS_PEER_PIN_BYTES)
#define MS_PEER_RESPONSE_MAX (64u * 1024u * 1024u)

/* The servers that may call: server i (1..n) presents a certificate of pin[i - 1]. */
typedef struct ms_peer_pins {
    unsigned n;
    uint8_t pin[MS_PEER_MAX][MS_PEER_PIN_BYTES];
} ms_peer_pins;

/* Makes a P-256 key and a self-signed certificate for it (CN = name, valid `days` days from
 * an hour ago, serverAuth and clientAuth), writes them as PEM: the key to key_file (mode
 * 0600), the certificate to cert_file; neither may exist (MS_ERR_EXISTS). pin, if not
 * NULL, receives the certificate's pin. */
ms_err ms_peer_tls_generate(const char *cert_file, const char *key_file, const char *name,
                            unsigned days, uint8_t pin[MS_PEER_PIN_BYTES], char *detail,
                            size_t detail_cap);
/* The pin of the first certificate in a PEM file (MS_ERR_IO, MS_ERR_TLS: no certificate). */
ms_err ms_peer_tls_pin(const char *cert_file, uint8_t pin[MS_PEER_PIN_BYTES], char *detail,
                       size_t detail_cap);
/* The pin of a DER certificate (MS_ERR_TLS if it does not parse). */
ms_err ms_peer_tls_pin_der(const uint8_t *der, size_t len, uint8_t pin[MS_PEER_PIN_BYTES]);
/* Hex form of a pin (64 digits and NUL) and back (MS_ERR_ARG). */
void ms_peer_pin_hex(char out[MS_PEER_PIN_HEX + 1], const uint8_t pin[MS_PEER_PIN_BYTES]);
ms_err ms_peer_pin_unhex(const char *hex, uint8_t pin[MS_PEER_PIN_BYTES]);

/* ---- server --------------------------------------------------------------------------------- */

typedef struct ms_peer_server ms_peer_server;

typedef struct ms_peer_server_config {
    const char *bind_addr;    /* as ms_http_config; NULL = all */
    uint16_t port;            /* 0 = any free port */
    const char *cert_file;    /* this server's certificate and key (PEM) */
    const char *key_file;
    const ms_peer_pins *peers; /* who may call (copied) */
    size_t max_body;          /* 0 = 16 MiB */
    unsigned threads;         /* 0 = 2 */
    const char *name;         /* metric prefix; NULL = "mikeysakke_peer" */
    char *detail;             /* why ms_peer_server_start failed */
    size_t detail_cap;
} ms_peer_server_config;

/* The route hook: one request from server `peer` (1..n, the index of its pinned
 * certificate); runs on a server thread (several may run at once). */
typedef void (*ms_peer_handler)(void *ctx, unsigned peer, const ms_http_request *req,
                                ms_http_response *resp);

/* Starts the server; handler gets every request from a pinned peer, and nothing else.
 * Errors as ms_http_start, and MS_ERR_ARG for no table, an empty one or no certificate. */
ms_err ms_peer_server_start(ms_peer_server **out, const ms_peer_server_config *cfg,
                            ms_peer_handler handler, void *ctx);
uint16_t ms_peer_server_port(const ms_peer_server *srv);
void ms_peer_server_stop(ms_peer_server *srv);

/* ---- client --------------------------------------------------------------------------------- */

typedef struct ms_peer_link {
    const char *url;          /* the peer's base, "https://host:port" */
    uint8_t pin[MS_PEER_PIN_BYTES]; /* the only certificate key it may present */
    const char *cert_file;    /* our certificate and key (the key file mode 0600); both
                                 NULL: no client certificate (a device) */
    const char *key_file;
    unsigned timeout_ms;      /* whole request; 0 = 30 s */
    size_t max_response;      /* 0 = MS_PEER_RESPONSE_MAX */
} ms_peer_link;

typedef struct ms_peer_response {
    long status;   /* HTTP status */
    uint8_t *body; /* malloc'd (NUL-terminated, not counted in len); free with ms_peer_response_free */
    size_t len;
} ms_peer_response;

/* POSTs body (application/octet-stream) to url + path and returns the answer. MS_OK for a
 * 2xx status; MS_ERR_UNAUTHORISED for 403 (our certificate not accepted), MS_ERR_HTTP for
 * any other status (resp holds it and the body either way); MS_ERR_TLS when the server's
 * certificate is not the pinned one or the handshake fails; MS_ERR_UNREACHABLE; MS_ERR_IO
 * and MS_ERR_KEYFILE_MODE for our certificate and key files. */
ms_err ms_peer_post(const ms_peer_link *peer, const char *path, const uint8_t *body, size_t len,
                    ms_peer_response *resp, char *detail, size_t detail_cap);
/* Wipes and frees the body; NULL and an empty response are fine. */
void ms_peer_response_free(ms_peer_response *resp);

#endif
