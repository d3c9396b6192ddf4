/*
 * The device enrolment file (our format, namespace urn:mikeysakke:kms:1), delivered out
 * of band to a device when it is enrolled:
 *
 *   <Enrolment xmlns="urn:mikeysakke:kms:1" Version="1">
 *     <UserUri>, <DeviceId>, <TrK-ID> (8 hex), <TrK> (64 hex), <InK-ID>, <InK>,
 *     <KmsCertificate xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0" ...> (D.3.2)
 *   </Enrolment>
 *
 * It holds the device's transport and integrity keys in clear: it is secret (the
 * command writes it with mode 0600) and every copy of the keys we make here is wiped.
 */
#include <stdio.h>
#include <string.h>

#include "xml_internal.h"

static bool dev_check(const ms_device_keys *dev)
{
    return dev != NULL && ms_xml_string_ok(dev->user_uri, MS_KMSIF_URI_MAX, false) &&
           ms_xml_string_ok(dev->device_id, sizeof dev->device_id - 1, false);
}

static void put_id(ms_xw *w, xmlNode *root, const char *name, uint32_t id)
{
    char s[16];
    snprintf(s, sizeof s, "%08X", (unsigned)id);
    ms_xw_elem(w, root, root->ns, name, s, 1);
}

ms_err ms_kmsif_enrolment_write(char *out, size_t cap, size_t *out_len,
                                const ms_device_keys *dev, const ms_kms_certificate *cert)
{
    if (out_len == NULL)
        return MS_ERR_ARG;
    *out_len = 0;
    if (!dev_check(dev) || !ms_kmsif_cert_check(cert))
        return MS_ERR_ARG;
    ms_xw w;
    xmlNode *root = ms_xw_start(&w, MS_NS_EXT, "Enrolment");
    if (root != NULL) {
        ms_xw_attr(&w, root, "Version", "1");
        ms_xw_elem(&w, root, root->ns, "UserUri", dev->user_uri, 1);
        ms_xw_elem(&w, root, root->ns, "DeviceId", dev->device_id, 1);
        put_id(&w, root, "TrK-ID", dev->trk_id);
        ms_xw_hex(&w, root, root->ns, "TrK", dev->trk, sizeof dev->trk, 1);
        put_id(&w, root, "InK-ID", dev->ink_id);
        ms_xw_hex(&w, root, root->ns, "InK", dev->ink, sizeof dev->ink, 1);
        ms_kmsif_cert_build(&w, root, NULL, cert, 1);
        ms_xw_close(&w, root, 0);
    }
    ms_err e = ms_xw_finish(&w, out, cap, out_len);
    if (e != MS_OK && e != MS_ERR_BUFFER_TOO_SMALL && out != NULL)
        ms_wipe(out, cap);
    return e;
}

static bool read_id(ms_xp *p, ms_xcur *c, const char *name, uint32_t *id)
{
    uint8_t b[4];
    xmlNode *n = ms_xcur_take(c, MS_NS_EXT, name, true);
    if (n == NULL || !ms_xml_hex(p, n, b, sizeof b))
        return false;
    *id = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return true;
}

static bool enrolment_read(ms_xp *p, const xmlNode *root, ms_device_keys *dev,
                           ms_kms_certificate *cert)
{
    static const char *const attrs[] = {"Version", NULL};
    if (!ms_xml_is(root, MS_NS_EXT, "Enrolment"))
        return ms_xp_fail(p, root, "the document is not an Enrolment in %s", MS_NS_EXT);
    if (!ms_xml_attrs_only(p, root, attrs, false) || !ms_xml_attr_eq(p, root, "Version", "1"))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, root);
    xmlNode *n;
    if ((n = ms_xcur_take(&c, MS_NS_EXT, "UserUri", true)) == NULL ||
        !ms_xml_text(p, n, dev->user_uri, sizeof dev->user_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, MS_NS_EXT, "DeviceId", true)) == NULL ||
        !ms_xml_text(p, n, dev->device_id, sizeof dev->device_id, false))
        return false;
    if (!read_id(p, &c, "TrK-ID", &dev->trk_id))
        return false;
    if ((n = ms_xcur_take(&c, MS_NS_EXT, "TrK", true)) == NULL ||
        !ms_xml_hex(p, n, dev->trk, sizeof dev->trk))
        return false;
    if (!read_id(p, &c, "InK-ID", &dev->ink_id))
        return false;
    if ((n = ms_xcur_take(&c, MS_NS_EXT, "InK", true)) == NULL ||
        !ms_xml_hex(p, n, dev->ink, sizeof dev->ink))
        return false;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsCertificate", true)) == NULL ||
        !ms_kmsif_cert_read(p, n, cert))
        return false;
    return ms_xcur_end(&c);
}

ms_err ms_kmsif_enrolment_parse(ms_device_keys *dev, ms_kms_certificate *cert,
                                const char *xml, size_t len, char *detail,
                                size_t detail_cap)
{
    ms_xp p;
    ms_xp_init(&p, detail, detail_cap);
    if (dev == NULL || cert == NULL)
        return MS_ERR_ARG;
    memset(dev, 0, sizeof *dev);
    memset(cert, 0, sizeof *cert);
    xmlDoc *doc = ms_xml_read(&p, xml, len);
    if (doc != NULL) {
        enrolment_read(&p, xmlDocGetRootElement(doc), dev, cert);
        ms_xml_wipe_text(doc); /* the tree holds the keys' hex text */
        xmlFreeDoc(doc);
    }
    if (p.err != MS_OK) {
        ms_wipe(dev, sizeof *dev);
        memset(cert, 0, sizeof *cert);
    }
    return p.err;
}
