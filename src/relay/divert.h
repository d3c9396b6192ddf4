/*
 * Which mailbox a diverted call is for, read from the INVITE as the provider relayed it
 * (src/relay/divert.c). Key-less, text only.
 *
 * A provider that diverts an unanswered call to the voicemail server keeps the original
 * callee somewhere: kamailio's failure_route typically leaves To alone and rewrites only
 * the host of the Request-URI, others add "X-Original-To" or RFC 5806 "Diversion". The
 * candidates are tried in that order of explicitness: X-Original-To, Diversion, To,
 * Request-URI, then the Request-URI's user at the To's domain; the first that names a
 * provisioned mailbox wins.
 */
#ifndef MS_RELAY_DIVERT_H
#define MS_RELAY_DIVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_VM_URI_MAX 256 /* octets of a normalised mailbox URI, NUL included */

/* The mailbox form of a URI: the addr-spec of a name-addr, without display name, URI
 * parameters, headers, password or port; scheme and host in lower case; "sips:" as
 * "sip:". Accepts sip:, sips: (with a user part) and tel:. MS_ERR_IDENTITY when the text
 * is not such a URI or holds characters unsafe in an index line or JSON. */
ms_err ms_vm_uri_normalise(const char *in, char *out, size_t cap);

/* The value of the first header `name` in the header section of the SIP message `raw`
 * (case-insensitive; `compact` is the RFC 3261 compact form or 0), trimmed. false when
 * absent or longer than cap. */
bool ms_vm_sip_header(const uint8_t *raw, size_t raw_len, const char *name, char compact,
                      char *out, size_t cap);

/* The address of the hop that sent `raw`, from its top Via (received= and rport= when
 * present), as "IPv4:port"; "0.0.0.0:5060" when that is not an IPv4 literal. */
void ms_vm_sip_sender(const uint8_t *raw, size_t raw_len, char *out, size_t cap);

/* Picks the mailbox (normalised URI, see above) for an INVITE. `known` says whether a
 * mailbox is provisioned (NULL: any well-formed URI is). MS_ERR_USER_UNKNOWN (detail
 * names the To) when no candidate is. */
ms_err ms_vm_choose_mailbox(const uint8_t *raw, size_t raw_len, const char *to_uri,
                            const char *request_uri,
                            bool (*known)(void *ctx, const char *uri), void *known_ctx,
                            char *out, size_t cap, char *detail, size_t detail_cap);

#endif
