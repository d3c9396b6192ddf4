/*
 * Audited extraction at one threshold server: not built yet, the routes are not
 * answered (see audit.h).
 */
#include "tkms/audit.h"

#include <stdlib.h>

struct ms_tkms_audit {
    ms_tkms_service *svc;
};

ms_err ms_tkms_audit_open(ms_tkms_audit **out, ms_tkms_service *svc, char *detail,
                          size_t detail_cap)
{
    (void)detail;
    (void)detail_cap;
    if (out == NULL || svc == NULL)
        return MS_ERR_ARG;
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return MS_ERR_NOMEM;
    (*out)->svc = svc;
    return MS_OK;
}

void ms_tkms_audit_close(ms_tkms_audit *a)
{
    free(a);
}

bool ms_tkms_audit_handle(ms_tkms_audit *a, const ms_http_request *req, ms_http_response *resp)
{
    (void)a;
    (void)req;
    (void)resp;
    return false;
}
