/*
 * Audited extraction at one threshold server (src/tkms/audit.c): the routes under
 * /tkms/audit/ that `kms serve` answers in threshold mode. A server releases its share
 * u_j of a slot (never SSK_j) to an auditor only for a warrant in the log whose
 * checkpoint t+1 servers cosigned, after writing its own audit entry.
 */
#ifndef MS_TKMS_AUDIT_H
#define MS_TKMS_AUDIT_H

#include <stdbool.h>

#include "mikeysakke/errors.h"
#include "net/http.h"
#include "tkms/node.h"

typedef struct ms_tkms_audit ms_tkms_audit;

/* The audit state of the server `svc` serves (its log in the server's directory). The
 * handle refers to svc: close it first. */
ms_err ms_tkms_audit_open(ms_tkms_audit **out, ms_tkms_service *svc, char *detail,
                          size_t detail_cap);
void ms_tkms_audit_close(ms_tkms_audit *a);

/* Answers req if its path is under /tkms/audit/ and returns true; false (resp untouched)
 * for any other path. Runs on a server thread; several may run at once. */
bool ms_tkms_audit_handle(ms_tkms_audit *a, const ms_http_request *req, ms_http_response *resp);

#endif
