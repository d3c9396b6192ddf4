/*
 * The network side of TS 33.180 Annex D: the KmsRequest a device POSTs (D.2.2) and the
 * unsigned KmsResponse documents that carry no key (KmsCertCache, KmsError).
 *
 *   <KmsRequest xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" Version="1.1.0">
 *     UserUri, KmsUri, Time, ClientId?, DeviceId?, ClientReqUrl, KrrList?, ClientError?,
 *     ##other*
 *   </KmsRequest>
 *
 *   <KmsResponse Version="1.0.0"> UserUri, KmsUri, Time, ClientReqUrl,
 *     ( <KmsMessage><KmsCertCache Version="1.0.0" CacheNum="N"> KmsCertificate*
 *       </KmsCertCache></KmsMessage> | <KmsError> ErrorCode, ErrorMsg </KmsError> )
 *   </KmsResponse>
 *
 * Reading goes through the hardened reader of xml.c (size limit, no DTD or entity, no
 * network) and checks the structure in schema order; the first problem is MS_ERR_XML
 * with "line N: <Element>: why". KrrList is refused: we do not serve the redirect
 * resource, and a request that asks for it must not be answered as something else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xml_internal.h"

#define REQUEST_VERSION "1.1.0"
#define RESPONSE_VERSION "1.0.0"

/* ---- KmsRequest ---------------------------------------------------------------------- */

static bool request_check(const ms_kms_request *r)
{
    return r != NULL && ms_xml_string_ok(r->user_uri, MS_KMSIF_URI_MAX, false) &&
           ms_xml_string_ok(r->kms_uri, MS_KMSIF_URI_MAX, false) &&
           ms_xml_string_ok(r->client_id, MS_KMSIF_URI_MAX, true) &&
           ms_xml_string_ok(r->device_id, sizeof r->device_id - 1, true) &&
           ms_xml_string_ok(r->client_req_url, sizeof r->client_req_url - 1, false) &&
           r->time_us < 1000000;
}

/* "YYYY-MM-DDTHH:MM:SS[.uuuuuu]Z" */
static bool time_text(char out[48], uint64_t ntp, uint32_t us)
{
    char base[MS_TIME_BUF];
    if (!ms_time_format(base, ntp))
        return false;
    size_t n = strlen(base);
    if (us == 0) {
        memcpy(out, base, n + 1);
        return true;
    }
    base[n - 1] = '\0'; /* the Z goes after the fraction */
    snprintf(out, 48, "%s.%06uZ", base, (unsigned)us);
    return true;
}

ms_err ms_kmsif_request_write(char *out, size_t cap, size_t *out_len, const ms_kms_request *req)
{
    if (out_len == NULL)
        return MS_ERR_ARG;
    *out_len = 0;
    char t[48];
    if (!request_check(req) || !time_text(t, req->time, req->time_us))
        return MS_ERR_ARG;
    ms_xw w;
    xmlNode *root = ms_xw_start(&w, MS_KMSIF_NS, "KmsRequest");
    if (root == NULL) {
        ms_xw_abort(&w);
        return MS_ERR_NOMEM;
    }
    xmlNs *ns = root->ns;
    ms_xw_attr(&w, root, "Version", REQUEST_VERSION);
    ms_xw_elem(&w, root, ns, "UserUri", req->user_uri, 1);
    ms_xw_elem(&w, root, ns, "KmsUri", req->kms_uri, 1);
    ms_xw_elem(&w, root, ns, "Time", t, 1);
    if (req->client_id[0] != '\0')
        ms_xw_elem(&w, root, ns, "ClientId", req->client_id, 1);
    if (req->device_id[0] != '\0')
        ms_xw_elem(&w, root, ns, "DeviceId", req->device_id, 1);
    ms_xw_elem(&w, root, ns, "ClientReqUrl", req->client_req_url, 1);
    ms_xw_close(&w, root, 0);
    return ms_xw_finish(&w, out, cap, out_len);
}

/* The fraction of an xs:dateTime as microseconds (digits past the sixth dropped). */
static bool time_fraction(const char *s, uint32_t *us)
{
    *us = 0;
    const char *t = strchr(s, 'T');
    const char *dot = t != NULL ? strchr(t, '.') : NULL;
    if (dot == NULL)
        return true;
    uint32_t v = 0;
    int digits = 0;
    for (const char *c = dot + 1; *c >= '0' && *c <= '9'; c++, digits++)
        if (digits < 6)
            v = v * 10 + (uint32_t)(*c - '0');
    if (digits == 0)
        return false;
    for (int i = digits; i < 6; i++)
        v *= 10;
    *us = v;
    return true;
}

static bool read_time(ms_xp *p, const xmlNode *el, uint64_t *ntp, uint32_t *us)
{
    char s[64];
    if (!ms_xml_text(p, el, s, sizeof s, false))
        return false;
    char back[MS_TIME_BUF];
    if (!ms_time_parse(s, ntp, NULL) || !time_fraction(s, us))
        return ms_xp_fail(p, el, "not an xs:dateTime: %.40s", s);
    if (!ms_time_format(back, *ntp)) /* a zone offset past 9999-12-31 */
        return ms_xp_fail(p, el, "time out of range");
    return true;
}

/* ErrorType: ErrorCode (integer), ErrorMsg (string). */
static bool read_error(ms_xp *p, const xmlNode *el, int *code, char *msg, size_t cap)
{
    if (!ms_xml_attrs_only(p, el, NULL, false))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, el);
    xmlNode *n = ms_xcur_take(&c, MS_KMSIF_NS, "ErrorCode", true);
    char text[32];
    if (n == NULL || !ms_xml_text(p, n, text, sizeof text, false))
        return false;
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < -1000000 || v > 1000000)
        return ms_xp_fail(p, n, "not an integer: %.20s", text);
    *code = (int)v;
    n = ms_xcur_take(&c, MS_KMSIF_NS, "ErrorMsg", true);
    if (n == NULL)
        return false;
    char buf[1024];
    if (!ms_xml_text(p, n, buf, sizeof buf, true))
        return false;
    /* The caller's buffer may be shorter than ErrorMsg: cut it, always terminated. */
    size_t len = strlen(buf);
    if (cap > 0) {
        if (len >= cap)
            len = cap - 1;
        memcpy(msg, buf, len);
        msg[len] = '\0';
    }
    ms_xcur_skip_other(&c, MS_KMSIF_NS);
    return ms_xcur_end(&c);
}

static bool read_request(ms_xp *p, const xmlNode *el, ms_kms_request *r)
{
    static const char *const attrs[] = {"Id", "Version", NULL};
    if (!ms_xml_attrs_only(p, el, attrs, false))
        return false;
    char version[16];
    bool has_version = false;
    if (!ms_xml_attr(p, el, "Version", version, sizeof version, false, &has_version))
        return false;
    if (has_version && strcmp(version, REQUEST_VERSION) != 0)
        return ms_xp_fail(p, el, "Version must be %s", REQUEST_VERSION);

    ms_xcur c;
    ms_xcur_init(&c, p, el);
    xmlNode *n;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "UserUri", true)) == NULL ||
        !ms_xml_text(p, n, r->user_uri, sizeof r->user_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsUri", true)) == NULL ||
        !ms_xml_text(p, n, r->kms_uri, sizeof r->kms_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "Time", true)) == NULL ||
        !read_time(p, n, &r->time, &r->time_us))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "ClientId", false)) != NULL &&
        !ms_xml_text(p, n, r->client_id, sizeof r->client_id, true))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "DeviceId", false)) != NULL &&
        !ms_xml_text(p, n, r->device_id, sizeof r->device_id, false))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "ClientReqUrl", true)) == NULL ||
        !ms_xml_text(p, n, r->client_req_url, sizeof r->client_req_url, false))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KrrList", false)) != NULL)
        return ms_xp_fail(p, n, "key revocation requests (redirect) are not supported");
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "ClientError", false)) != NULL) {
        int code = 0;
        char msg[8];
        if (!read_error(p, n, &code, msg, sizeof msg))
            return false;
    }
    ms_xcur_skip_other(&c, MS_KMSIF_NS);
    if (!ms_xcur_end(&c))
        return false;
    /* every string we hand on must be printable UTF-8 (they go into logs and replies) */
    if (!ms_xml_string_ok(r->user_uri, MS_KMSIF_URI_MAX, false) ||
        !ms_xml_string_ok(r->kms_uri, MS_KMSIF_URI_MAX, false) ||
        !ms_xml_string_ok(r->client_id, MS_KMSIF_URI_MAX, true) ||
        !ms_xml_string_ok(r->device_id, sizeof r->device_id - 1, true) ||
        !ms_xml_string_ok(r->client_req_url, sizeof r->client_req_url - 1, false))
        return ms_xp_fail(p, el, "control character in a value");
    return true;
}

ms_err ms_kmsif_request_parse(ms_kms_request *req, const char *xml, size_t len, char *detail,
                              size_t detail_cap)
{
    ms_xp p;
    ms_xp_init(&p, detail, detail_cap);
    if (req == NULL)
        return MS_ERR_ARG;
    memset(req, 0, sizeof *req);
    xmlDoc *doc = ms_xml_read(&p, xml, len);
    if (doc != NULL) {
        xmlNode *root = xmlDocGetRootElement(doc);
        if (ms_xml_is(root, MS_KMSIF_NS, "KmsRequest")) {
            read_request(&p, root, req);
        } else if (ms_xml_is(root, MS_KMSIF_NS, "SignedKmsRequest")) {
            /* the signature is not ours to check (the bearer token authenticates) */
            ms_xcur c;
            ms_xcur_init(&c, &p, root);
            xmlNode *n;
            if (ms_xml_attrs_only(&p, root, NULL, false) &&
                (n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsRequest", true)) != NULL &&
                read_request(&p, n, req)) {
                (void)ms_xcur_take(&c, MS_NS_DS, "Signature", false);
                ms_xcur_end(&c);
            }
        } else {
            ms_xp_fail(&p, root, "the document is not a KmsRequest in %s", MS_KMSIF_NS);
        }
        xmlFreeDoc(doc);
    }
    if (p.err != MS_OK)
        memset(req, 0, sizeof *req);
    return p.err;
}

/* ---- KmsResponse without keys: KmsCertCache or KmsError ---------------------------- */

static bool reply_check(const ms_kms_reply *r)
{
    if (r == NULL || r->n_certs > MS_KMSIF_MAX_CERTS ||
        !ms_xml_string_ok(r->user_uri, MS_KMSIF_URI_MAX, true) ||
        !ms_xml_string_ok(r->kms_uri, MS_KMSIF_URI_MAX, false) ||
        !ms_xml_string_ok(r->client_req_url, sizeof r->client_req_url - 1, true) ||
        !ms_xml_string_ok(r->error_msg, sizeof r->error_msg - 1, true))
        return false;
    for (size_t i = 0; r->error_code == 0 && i < r->n_certs; i++)
        if (!ms_kmsif_cert_check(&r->certs[i]))
            return false;
    return true;
}

ms_err ms_kmsif_reply_write(char *out, size_t cap, size_t *out_len, const ms_kms_reply *r)
{
    if (out_len == NULL)
        return MS_ERR_ARG;
    *out_len = 0;
    if (!reply_check(r))
        return MS_ERR_ARG;
    ms_xw w;
    xmlNode *root = ms_xw_start(&w, MS_KMSIF_NS, "KmsResponse");
    if (root == NULL) {
        ms_xw_abort(&w);
        return MS_ERR_NOMEM;
    }
    xmlNs *ns = root->ns;
    ms_xw_attr(&w, root, "Version", RESPONSE_VERSION);
    ms_xw_elem(&w, root, ns, "UserUri", r->user_uri, 1);
    ms_xw_elem(&w, root, ns, "KmsUri", r->kms_uri, 1);
    ms_xw_time(&w, root, ns, "Time", r->time, 1);
    ms_xw_elem(&w, root, ns, "ClientReqUrl", r->client_req_url, 1);
    if (r->error_code != 0) {
        char code[16];
        snprintf(code, sizeof code, "%d", r->error_code);
        xmlNode *err = ms_xw_elem(&w, root, ns, "KmsError", NULL, 1);
        ms_xw_elem(&w, err, ns, "ErrorCode", code, 2);
        ms_xw_elem(&w, err, ns, "ErrorMsg", r->error_msg, 2);
        ms_xw_close(&w, err, 1);
    } else {
        char num[24];
        snprintf(num, sizeof num, "%llu", (unsigned long long)r->cache_num);
        xmlNode *msg = ms_xw_elem(&w, root, ns, "KmsMessage", NULL, 1);
        xmlNode *cc = ms_xw_elem(&w, msg, ns, "KmsCertCache", NULL, 2);
        ms_xw_attr(&w, cc, "Version", RESPONSE_VERSION);
        ms_xw_attr(&w, cc, "CacheNum", num);
        for (size_t i = 0; i < r->n_certs && !w.failed; i++)
            ms_kmsif_cert_build(&w, cc, ns, &r->certs[i], 3);
        ms_xw_close(&w, cc, 2);
        ms_xw_close(&w, msg, 1);
    }
    ms_xw_close(&w, root, 0);
    return ms_xw_finish(&w, out, cap, out_len);
}

static bool read_certcache(ms_xp *p, const xmlNode *el, ms_kms_reply *r)
{
    static const char *const attrs[] = {"Id", "Version", "CacheNum", NULL};
    if (!ms_xml_attrs_only(p, el, attrs, true))
        return false;
    char num[24];
    bool has = false;
    if (!ms_xml_attr(p, el, "CacheNum", num, sizeof num, false, &has))
        return false;
    if (has) {
        char *end = NULL;
        unsigned long long v = strtoull(num, &end, 10);
        if (num[0] < '0' || num[0] > '9' || *end != '\0')
            return ms_xp_fail(p, el, "CacheNum is not a number");
        r->cache_num = v;
    }
    ms_xcur c;
    ms_xcur_init(&c, p, el);
    xmlNode *n;
    /* SignedKmsCertificate* then KmsCertificate*; we read the plain ones */
    while ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsCertificate", false)) != NULL) {
        if (r->n_certs == MS_KMSIF_MAX_CERTS)
            return ms_xp_fail(p, n, "more than %d certificates", MS_KMSIF_MAX_CERTS);
        if (!ms_kmsif_cert_read(p, n, &r->certs[r->n_certs]))
            return false;
        r->n_certs++;
    }
    ms_xcur_skip_other(&c, MS_KMSIF_NS);
    return ms_xcur_end(&c);
}

static bool read_reply(ms_xp *p, const xmlNode *el, ms_kms_reply *r)
{
    static const char *const attrs[] = {"Id", "Version", NULL};
    if (!ms_xml_attrs_only(p, el, attrs, false))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, el);
    xmlNode *n;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "UserUri", true)) == NULL ||
        !ms_xml_text(p, n, r->user_uri, sizeof r->user_uri, true))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsUri", true)) == NULL ||
        !ms_xml_text(p, n, r->kms_uri, sizeof r->kms_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "Time", true)) == NULL || !ms_xml_time(p, n, &r->time))
        return false;
    (void)ms_xcur_take(&c, MS_KMSIF_NS, "KmsId", false);
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "ClientReqUrl", true)) == NULL ||
        !ms_xml_text(p, n, r->client_req_url, sizeof r->client_req_url, true))
        return false;
    xmlNode *msg = ms_xcur_take(&c, MS_KMSIF_NS, "KmsMessage", false);
    xmlNode *err = ms_xcur_take(&c, MS_KMSIF_NS, "KmsError", false);
    if (p->err != MS_OK)
        return false;
    if ((msg == NULL) == (err == NULL))
        return ms_xp_fail(p, el, "needs exactly one of <KmsMessage> and <KmsError>");
    if (msg != NULL) {
        ms_xcur m;
        ms_xcur_init(&m, p, msg);
        xmlNode *cc = ms_xcur_take(&m, MS_KMSIF_NS, "KmsCertCache", true);
        if (cc == NULL || !read_certcache(p, cc, r) || !ms_xcur_end(&m))
            return false;
    } else {
        if (!read_error(p, err, &r->error_code, r->error_msg, sizeof r->error_msg))
            return false;
        if (r->error_code == 0)
            return ms_xp_fail(p, err, "ErrorCode 0 is not an error");
    }
    ms_xcur_skip_other(&c, MS_KMSIF_NS);
    if (!ms_xcur_end(&c))
        return false;
    if (!ms_xml_string_ok(r->error_msg, sizeof r->error_msg - 1, true))
        return ms_xp_fail(p, err, "control character in ErrorMsg");
    return true;
}

ms_err ms_kmsif_reply_parse(ms_kms_reply *r, const char *xml, size_t len, char *detail,
                            size_t detail_cap)
{
    ms_xp p;
    ms_xp_init(&p, detail, detail_cap);
    if (r == NULL)
        return MS_ERR_ARG;
    memset(r, 0, sizeof *r);
    xmlDoc *doc = ms_xml_read(&p, xml, len);
    if (doc != NULL) {
        xmlNode *root = xmlDocGetRootElement(doc);
        if (ms_xml_is(root, MS_KMSIF_NS, "KmsResponse"))
            read_reply(&p, root, r);
        else
            ms_xp_fail(&p, root, "the document is not a KmsResponse in %s", MS_KMSIF_NS);
        xmlFreeDoc(doc);
    }
    if (p.err != MS_OK)
        memset(r, 0, sizeof *r);
    return p.err;
}
