/*
 * KmsCertificate (TS 33.180 D.3.2), schema order:
 *   CertUri?, KmsUri, Issuer?, ValidFrom?, ValidTo?, Revoked?, UserIdFormat,
 *   UserKeyPeriod, UserKeyOffset, PubEncKey, PubAuthKey, ParameterSet?,
 *   KmsDomainList?, ##other*          @Id? @Version="1.1.0" @Role @IsSecurityGateway?
 * PubEncKey is the SAKKE Z (257 octets), PubAuthKey the ECCSI KPAK (65 octets), both
 * 04||x||y in hex. UserIdFormat carries our reading of it: the SAKKE ID scheme number.
 * We write Version 1.1.0 and always ParameterSet; an absent ParameterSet reads as 1.
 */
#include <stdio.h>
#include <string.h>

#include "xml_internal.h"

bool ms_kmsif_cert_check(const ms_kms_certificate *cert)
{
    return cert != NULL && ms_xml_string_ok(cert->kms_uri, MS_KMSIF_URI_MAX, false) &&
           ms_xml_string_ok(cert->cert_uri, MS_KMSIF_URI_MAX, true) &&
           ms_xml_string_ok(cert->issuer, MS_KMSIF_URI_MAX, true) &&
           cert->parameter_set != 0;
}

static void cert_fill(ms_xw *w, xmlNode *el, xmlNs *ns, const ms_kms_certificate *c,
                      int depth)
{
    char num[8];
    ms_xw_attr(w, el, "Version", "1.1.0");
    ms_xw_attr(w, el, "Role", c->root ? "Root" : "External");
    if (c->cert_uri[0])
        ms_xw_elem(w, el, ns, "CertUri", c->cert_uri, depth + 1);
    ms_xw_elem(w, el, ns, "KmsUri", c->kms_uri, depth + 1);
    if (c->issuer[0])
        ms_xw_elem(w, el, ns, "Issuer", c->issuer, depth + 1);
    if (c->valid_from != 0)
        ms_xw_time(w, el, ns, "ValidFrom", c->valid_from, depth + 1);
    if (c->valid_to != 0)
        ms_xw_time(w, el, ns, "ValidTo", c->valid_to, depth + 1);
    if (c->revoked)
        ms_xw_elem(w, el, ns, "Revoked", "true", depth + 1);
    snprintf(num, sizeof num, "%u", (unsigned)c->user_id_format);
    ms_xw_elem(w, el, ns, "UserIdFormat", num, depth + 1);
    ms_xw_u64(w, el, ns, "UserKeyPeriod", c->period_len, depth + 1);
    ms_xw_u64(w, el, ns, "UserKeyOffset", c->period_offset, depth + 1);
    ms_xw_hex(w, el, ns, "PubEncKey", c->Z, sizeof c->Z, depth + 1);
    ms_xw_hex(w, el, ns, "PubAuthKey", c->kpak, sizeof c->kpak, depth + 1);
    ms_xw_u64(w, el, ns, "ParameterSet", c->parameter_set, depth + 1);
    ms_xw_close(w, el, depth);
}

void ms_kmsif_cert_build(ms_xw *w, xmlNode *parent, xmlNs *ns,
                         const ms_kms_certificate *cert, int depth)
{
    xmlNode *el = ms_xw_elem(w, parent, ns, "KmsCertificate", NULL, depth);
    if (el == NULL)
        return;
    if (ns == NULL) { /* inside a document of another namespace: declare ours here */
        ns = xmlNewNs(el, (const xmlChar *)MS_KMSIF_NS, NULL);
        if (ns == NULL) {
            w->failed = true;
            return;
        }
        xmlSetNs(el, ns);
    }
    cert_fill(w, el, ns, cert, depth);
}

static bool small_int(ms_xp *p, const xmlNode *el, uint8_t *v)
{
    uint64_t x = 0;
    if (!ms_xml_u64(p, el, &x))
        return false;
    if (x > 255)
        return ms_xp_fail(p, el, "value %llu out of range", (unsigned long long)x);
    *v = (uint8_t)x;
    return true;
}

bool ms_kmsif_cert_read(ms_xp *p, const xmlNode *el, ms_kms_certificate *c)
{
    static const char *const attrs[] = {"Id", "Version", "Role", "IsSecurityGateway", NULL};
    memset(c, 0, sizeof *c);
    if (!ms_xml_is(el, MS_KMSIF_NS, "KmsCertificate"))
        return ms_xp_fail(p, el, "not a KmsCertificate");
    if (!ms_xml_attrs_only(p, el, attrs, false) || !ms_xml_attr_eq(p, el, "Version", "1.1.0"))
        return false;
    char role[16], gw[8];
    bool have_gw = false;
    if (!ms_xml_attr(p, el, "Role", role, sizeof role, true, NULL))
        return false;
    if (strcmp(role, "Root") == 0)
        c->root = true;
    else if (strcmp(role, "External") != 0)
        return ms_xp_fail(p, el, "Role must be Root or External");
    if (!ms_xml_attr(p, el, "IsSecurityGateway", gw, sizeof gw, false, &have_gw))
        return false;
    if (have_gw && strcmp(gw, "false") != 0 && strcmp(gw, "0") != 0)
        return ms_xp_fail(p, el, "security gateway certificates are not supported");

    ms_xcur cur;
    ms_xcur_init(&cur, p, el);
    const char *ns = MS_KMSIF_NS;
    xmlNode *n;
    if ((n = ms_xcur_take(&cur, ns, "CertUri", false)) != NULL &&
        !ms_xml_text(p, n, c->cert_uri, sizeof c->cert_uri, true))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "KmsUri", true)) == NULL ||
        !ms_xml_text(p, n, c->kms_uri, sizeof c->kms_uri, false))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "Issuer", false)) != NULL &&
        !ms_xml_text(p, n, c->issuer, sizeof c->issuer, true))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "ValidFrom", false)) != NULL &&
        !ms_xml_time(p, n, &c->valid_from))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "ValidTo", false)) != NULL &&
        !ms_xml_time(p, n, &c->valid_to))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "Revoked", false)) != NULL &&
        !ms_xml_bool(p, n, &c->revoked))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "UserIdFormat", true)) == NULL ||
        !small_int(p, n, &c->user_id_format))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "UserKeyPeriod", true)) == NULL ||
        !ms_xml_u64(p, n, &c->period_len))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "UserKeyOffset", true)) == NULL ||
        !ms_xml_u64(p, n, &c->period_offset))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "PubEncKey", true)) == NULL ||
        !ms_xml_hex(p, n, c->Z, sizeof c->Z))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "PubAuthKey", true)) == NULL ||
        !ms_xml_hex(p, n, c->kpak, sizeof c->kpak))
        return false;
    c->parameter_set = 1;
    if ((n = ms_xcur_take(&cur, ns, "ParameterSet", false)) != NULL &&
        !small_int(p, n, &c->parameter_set))
        return false;
    if ((n = ms_xcur_take(&cur, ns, "KmsDomainList", false)) != NULL) {
        /* KmsDomain+ (anyURI): read for well-formedness, not kept. */
        ms_xcur dl;
        ms_xcur_init(&dl, p, n);
        char dom[MS_KMSIF_URI_MAX + 1];
        size_t count = 0;
        xmlNode *d;
        while ((d = ms_xcur_take(&dl, ns, "KmsDomain", count == 0)) != NULL) {
            if (!ms_xml_text(p, d, dom, sizeof dom, false))
                return false;
            count++;
        }
        if (!ms_xcur_end(&dl))
            return false;
    }
    ms_xcur_skip_other(&cur, ns);
    return ms_xcur_end(&cur) && p->err == MS_OK;
}

ms_err ms_kmsif_certificate_write(char *out, size_t cap, size_t *out_len,
                                  const ms_kms_certificate *cert)
{
    if (out_len == NULL)
        return MS_ERR_ARG;
    *out_len = 0;
    if (!ms_kmsif_cert_check(cert))
        return MS_ERR_ARG;
    ms_xw w;
    xmlNode *root = ms_xw_start(&w, MS_KMSIF_NS, "KmsCertificate");
    if (root != NULL)
        cert_fill(&w, root, root->ns, cert, 0);
    return ms_xw_finish(&w, out, cap, out_len);
}

ms_err ms_kmsif_certificate_parse(ms_kms_certificate *cert, const char *xml, size_t len,
                                  char *detail, size_t detail_cap)
{
    ms_xp p;
    ms_xp_init(&p, detail, detail_cap);
    if (cert == NULL)
        return MS_ERR_ARG;
    memset(cert, 0, sizeof *cert);
    xmlDoc *doc = ms_xml_read(&p, xml, len);
    if (doc != NULL) {
        xmlNode *root = xmlDocGetRootElement(doc);
        if (!ms_xml_is(root, MS_KMSIF_NS, "KmsCertificate"))
            ms_xp_fail(&p, root, "the document is not a KmsCertificate in %s", MS_KMSIF_NS);
        else
            ms_kmsif_cert_read(&p, root, cert);
        xmlFreeDoc(doc);
    }
    if (p.err != MS_OK)
        memset(cert, 0, sizeof *cert);
    return p.err;
}
