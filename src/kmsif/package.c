/*
 * Key packages: a TS 33.180 SignedKmsResponse (D.3) for one device.
 *
 * Our profile of the optional security extension of D.1 (the 3GPP text leaves the
 * algorithms open; see the digest, 6.5.3):
 *
 *   <SignedKmsResponse xmlns="urn:3gpp:ns:mcsecKMSInterface:1.0">
 *     <KmsResponse Id="KmsResponse-<16 hex>" Version="1.0.0">
 *       UserUri, KmsUri, Time (xs:dateTime, UTC), ClientReqUrl,
 *       <KmsMessage>
 *         <KmsKeyProv Version="1.0.0"> <KmsKeySet Version="1.1.0">* </KmsKeyProv>
 *         | <KmsInit Version="1.0.0"> <KmsCertificate/> </KmsInit>     (no key sets)
 *       </KmsMessage>
 *       <mskms:DeviceId>              our extension (##other, urn:mikeysakke:kms:1):
 *                                     the device the package is for
 *       <mskms:UserDevices>           optional: the ids of all the user's devices,
 *                                     space separated (so each sees one added)
 *       <mskms:Certificate>           with KmsKeyProv only: the KMS certificate, which
 *         <KmsCertificate/>           KmsKeyProv itself has no place for
 *       </mskms:Certificate>
 *     </KmsResponse>
 *     <ds:Signature> ... </ds:Signature>
 *   </SignedKmsResponse>
 *
 * - UserDecryptKey (RSK, 257 octets) and UserSigningKeySSK (32 octets) are
 *   EncKeyContentType: one xenc:EncryptedKey with EncryptionMethod
 *   http://www.w3.org/2009/xmlenc11#kw-aes-256-pad (AES-256 key wrap with padding,
 *   RFC 5649, under the device's TrK; RFC 3394 would need a multiple of 8 octets and the
 *   RSK is 257), ds:KeyInfo/ds:KeyName = TrK-ID (8 hex), CipherData/CipherValue in
 *   base64. UserPubTokenPVT is public and stays hex.
 * - ds:Signature: SignedInfo with CanonicalizationMethod exclusive C14N 1.0 without
 *   comments, SignatureMethod hmac-sha256 (no HMACOutputLength: no truncation), exactly
 *   one Reference URI="#<Id of the KmsResponse>" with one exclusive C14N Transform and
 *   DigestMethod sha256 over the KmsResponse element; SignatureValue =
 *   HMAC-SHA256(InK, exc-c14n(SignedInfo)); KeyInfo/KeyName = InK-ID (8 hex). The
 *   Reference must name the KmsResponse that is the first child of the root, the one we
 *   read: no ID lookup, so no signature wrapping.
 *
 * The reader checks, in this order: the structure (MS_ERR_XML), the signature
 * (MS_ERR_PACKAGE_SIGNATURE; also when it is missing), the addressee - InK-ID, user,
 * device, TrK-IDs (MS_ERR_PACKAGE_DEVICE) - and then unwraps the keys
 * (MS_ERR_PACKAGE_DECRYPT). On any failure the output is wiped.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/rng.h"
#include "xml_internal.h"

#define ALG_KWP "http://www.w3.org/2009/xmlenc11#kw-aes-256-pad"
#define ALG_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ALG_HMAC "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
#define ALG_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"
#define ID_MAX 64
#define RSK_WRAPPED ((MS_SAKKE_POINT_BYTES + 7) / 8 * 8 + 8)  /* 272 */
#define SSK_WRAPPED ((MS_ECCSI_SCALAR_BYTES + 7) / 8 * 8 + 8) /* 40 */

/* ---- signature values ------------------------------------------------------------- */

static ms_err digest_of(xmlDoc *doc, xmlNode *resp, uint8_t md[32])
{
    xmlChar *c = NULL;
    size_t n = 0;
    ms_err e = ms_xml_exc_c14n(doc, resp, &c, &n);
    unsigned int mdlen = 0;
    if (e == MS_OK && (EVP_Digest(c, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32))
        e = MS_ERR_INTERNAL;
    xmlFree(c);
    return e;
}

static ms_err hmac_of(xmlDoc *doc, xmlNode *signed_info, const uint8_t ink[32],
                      uint8_t mac[32])
{
    xmlChar *c = NULL;
    size_t n = 0, maclen = 0;
    ms_err e = ms_xml_exc_c14n(doc, signed_info, &c, &n);
    if (e == MS_OK && (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, ink, 32, c, n, mac, 32,
                                 &maclen) == NULL ||
                       maclen != 32))
        e = MS_ERR_INTERNAL;
    xmlFree(c);
    return e;
}

/* ---- writing ---------------------------------------------------------------------- */

typedef struct pkg_ns {
    xmlNs *tgpp, *ds, *xenc, *xsi, *ext;
} pkg_ns;

static void id_hex(char out[9], uint32_t id)
{
    snprintf(out, 9, "%08X", (unsigned)id);
}

static void put_enc_key(ms_xw *w, const pkg_ns *ns, xmlNode *parent, const char *name,
                        const uint8_t *key, size_t len, const ms_device_keys *dev, int depth)
{
    uint8_t ct[RSK_WRAPPED];
    char b64[2 * RSK_WRAPPED], kid[9];
    size_t ct_len = 0;
    xmlNode *el = ms_xw_elem(w, parent, ns->tgpp, name, NULL, depth);
    if (el != NULL && xmlNewNsProp(el, ns->xsi, (const xmlChar *)"type",
                                   (const xmlChar *)"EncKeyContentType") == NULL)
        w->failed = true;
    if (ms_aes_kwp_wrap(ct, sizeof ct, &ct_len, dev->trk, sizeof dev->trk, key, len) != MS_OK) {
        w->failed = true;
        return;
    }
    ms_b64_encode(b64, ct, ct_len);
    id_hex(kid, dev->trk_id);
    xmlNode *ek = ms_xw_elem(w, el, ns->xenc, "EncryptedKey", NULL, depth + 1);
    xmlNode *em = ms_xw_elem(w, ek, ns->xenc, "EncryptionMethod", NULL, depth + 2);
    ms_xw_attr(w, em, "Algorithm", ALG_KWP);
    xmlNode *ki = ms_xw_elem(w, ek, ns->ds, "KeyInfo", NULL, depth + 2);
    ms_xw_elem(w, ki, ns->ds, "KeyName", kid, depth + 3);
    ms_xw_close(w, ki, depth + 2);
    xmlNode *cd = ms_xw_elem(w, ek, ns->xenc, "CipherData", NULL, depth + 2);
    ms_xw_elem(w, cd, ns->xenc, "CipherValue", b64, depth + 3);
    ms_xw_close(w, cd, depth + 2);
    ms_xw_close(w, ek, depth + 1);
    ms_xw_close(w, el, depth);
}

static void put_keyset(ms_xw *w, const pkg_ns *ns, xmlNode *parent,
                       const ms_kmsif_keyset *k, const ms_device_keys *dev, int depth)
{
    xmlNode *el = ms_xw_elem(w, parent, ns->tgpp, "KmsKeySet", NULL, depth);
    ms_xw_attr(w, el, "Version", "1.1.0");
    int d = depth + 1;
    ms_xw_elem(w, el, ns->tgpp, "KmsUri", k->kms_uri, d);
    ms_xw_elem(w, el, ns->tgpp, "UserUri", k->user_uri, d);
    ms_xw_hex(w, el, ns->tgpp, "UserID", k->user_id, k->user_id_len, d);
    if (k->valid_from != 0)
        ms_xw_time(w, el, ns->tgpp, "ValidFrom", k->valid_from, d);
    if (k->valid_to != 0)
        ms_xw_time(w, el, ns->tgpp, "ValidTo", k->valid_to, d);
    ms_xw_u64(w, el, ns->tgpp, "KeyPeriodNo", k->period_no, d);
    if (k->revoked)
        ms_xw_elem(w, el, ns->tgpp, "Revoked", "true", d);
    put_enc_key(w, ns, el, "UserDecryptKey", k->rsk, sizeof k->rsk, dev, d);
    put_enc_key(w, ns, el, "UserSigningKeySSK", k->ssk, sizeof k->ssk, dev, d);
    ms_xw_hex(w, el, ns->tgpp, "UserPubTokenPVT", k->pvt, sizeof k->pvt, d);
    ms_xw_close(w, el, depth);
}

/* Adds the ds:Signature over resp as the root's second child. */
static ms_err put_signature(ms_xw *w, const pkg_ns *ns, xmlNode *root, xmlNode *resp,
                            const char *id, const ms_device_keys *dev)
{
    uint8_t md[32], mac[32];
    char b64[64], uri[ID_MAX + 2], kid[9];
    ms_err e = digest_of(w->doc, resp, md);
    if (e != MS_OK)
        return e;
    snprintf(uri, sizeof uri, "#%s", id);
    xmlNode *sig = ms_xw_elem(w, root, ns->ds, "Signature", NULL, 1);
    xmlNode *si = ms_xw_elem(w, sig, ns->ds, "SignedInfo", NULL, 2);
    ms_xw_attr(w, ms_xw_elem(w, si, ns->ds, "CanonicalizationMethod", NULL, 3), "Algorithm",
               ALG_EXC_C14N);
    ms_xw_attr(w, ms_xw_elem(w, si, ns->ds, "SignatureMethod", NULL, 3), "Algorithm",
               ALG_HMAC);
    xmlNode *ref = ms_xw_elem(w, si, ns->ds, "Reference", NULL, 3);
    ms_xw_attr(w, ref, "URI", uri);
    xmlNode *tr = ms_xw_elem(w, ref, ns->ds, "Transforms", NULL, 4);
    ms_xw_attr(w, ms_xw_elem(w, tr, ns->ds, "Transform", NULL, 5), "Algorithm", ALG_EXC_C14N);
    ms_xw_close(w, tr, 4);
    ms_xw_attr(w, ms_xw_elem(w, ref, ns->ds, "DigestMethod", NULL, 4), "Algorithm",
               ALG_SHA256);
    ms_b64_encode(b64, md, sizeof md);
    ms_xw_elem(w, ref, ns->ds, "DigestValue", b64, 4);
    ms_xw_close(w, ref, 3);
    ms_xw_close(w, si, 2);
    if (w->failed)
        return MS_ERR_NOMEM;
    e = hmac_of(w->doc, si, dev->ink, mac);
    if (e != MS_OK)
        return e;
    ms_b64_encode(b64, mac, sizeof mac);
    ms_xw_elem(w, sig, ns->ds, "SignatureValue", b64, 2);
    xmlNode *ki = ms_xw_elem(w, sig, ns->ds, "KeyInfo", NULL, 2);
    id_hex(kid, dev->ink_id);
    ms_xw_elem(w, ki, ns->ds, "KeyName", kid, 3);
    ms_xw_close(w, ki, 2);
    ms_xw_close(w, sig, 1);
    return MS_OK;
}

/* Device ids (letters, digits, . _ - : @) separated by single spaces. */
static bool device_list_ok(const char *s)
{
    size_t run = 0;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (c == ' ') {
            if (run == 0)
                return false;
            run = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-' || c == ':' || c == '@') {
            if (++run > 64)
                return false;
        } else {
            return false;
        }
    }
    return run > 0;
}

static bool package_check(const ms_key_package *pkg, const ms_device_keys *dev)
{
    if (pkg == NULL || dev == NULL || pkg->n_keysets > MS_KMSIF_MAX_KEYSETS ||
        !ms_xml_string_ok(pkg->user_uri, MS_KMSIF_URI_MAX, false) ||
        !ms_xml_string_ok(pkg->kms_uri, MS_KMSIF_URI_MAX, false) ||
        !ms_xml_string_ok(pkg->device_id, sizeof pkg->device_id - 1, false) ||
        !ms_xml_string_ok(pkg->client_req_url, sizeof pkg->client_req_url - 1, true) ||
        !ms_kmsif_cert_check(&pkg->cert) ||
        (pkg->user_devices[0] != '\0' && !device_list_ok(pkg->user_devices)))
        return false;
    for (size_t i = 0; i < pkg->n_keysets; i++) {
        const ms_kmsif_keyset *k = &pkg->keysets[i];
        if (!ms_xml_string_ok(k->kms_uri, MS_KMSIF_URI_MAX, false) ||
            !ms_xml_string_ok(k->user_uri, MS_KMSIF_URI_MAX, false) || k->user_id_len == 0 ||
            k->user_id_len > sizeof k->user_id)
            return false;
    }
    return true;
}

ms_err ms_kmsif_package_write(char *out, size_t cap, size_t *out_len,
                              const ms_key_package *pkg, const ms_device_keys *dev,
                              const ms_rng *rng)
{
    if (out_len == NULL)
        return MS_ERR_ARG;
    *out_len = 0;
    if (!package_check(pkg, dev))
        return MS_ERR_ARG;
    uint8_t nonce[8];
    char id[ID_MAX], hex[17];
    ms_err e = ms_rng_fill(rng, nonce, sizeof nonce);
    if (e != MS_OK)
        return e;
    ms_hex_encode_upper(hex, nonce, sizeof nonce);
    snprintf(id, sizeof id, "KmsResponse-%s", hex);

    ms_xw w;
    pkg_ns ns = {0};
    xmlNode *root = ms_xw_start(&w, MS_KMSIF_NS, "SignedKmsResponse");
    if (root == NULL) {
        ms_xw_abort(&w);
        return MS_ERR_NOMEM;
    }
    ns.tgpp = root->ns;
    ns.ds = xmlNewNs(root, (const xmlChar *)MS_NS_DS, (const xmlChar *)"ds");
    ns.xenc = xmlNewNs(root, (const xmlChar *)MS_NS_XENC, (const xmlChar *)"xenc");
    ns.xsi = xmlNewNs(root, (const xmlChar *)MS_NS_XSI, (const xmlChar *)"xsi");
    ns.ext = xmlNewNs(root, (const xmlChar *)MS_NS_EXT, (const xmlChar *)"mskms");
    if (!ns.ds || !ns.xenc || !ns.xsi || !ns.ext)
        w.failed = true;

    xmlNode *resp = ms_xw_elem(&w, root, ns.tgpp, "KmsResponse", NULL, 1);
    ms_xw_attr(&w, resp, "Id", id);
    ms_xw_attr(&w, resp, "Version", "1.0.0");
    ms_xw_elem(&w, resp, ns.tgpp, "UserUri", pkg->user_uri, 2);
    ms_xw_elem(&w, resp, ns.tgpp, "KmsUri", pkg->kms_uri, 2);
    ms_xw_time(&w, resp, ns.tgpp, "Time", pkg->time, 2);
    ms_xw_elem(&w, resp, ns.tgpp, "ClientReqUrl", pkg->client_req_url, 2);
    xmlNode *msg = ms_xw_elem(&w, resp, ns.tgpp, "KmsMessage", NULL, 2);
    if (pkg->n_keysets == 0) {
        xmlNode *init = ms_xw_elem(&w, msg, ns.tgpp, "KmsInit", NULL, 3);
        ms_xw_attr(&w, init, "Version", "1.0.0");
        ms_kmsif_cert_build(&w, init, ns.tgpp, &pkg->cert, 4);
        ms_xw_close(&w, init, 3);
    } else {
        xmlNode *prov = ms_xw_elem(&w, msg, ns.tgpp, "KmsKeyProv", NULL, 3);
        ms_xw_attr(&w, prov, "Version", "1.0.0");
        for (size_t i = 0; i < pkg->n_keysets; i++)
            put_keyset(&w, &ns, prov, &pkg->keysets[i], dev, 4);
        ms_xw_close(&w, prov, 3);
    }
    ms_xw_close(&w, msg, 2);
    ms_xw_elem(&w, resp, ns.ext, "DeviceId", pkg->device_id, 2);
    if (pkg->user_devices[0] != '\0')
        ms_xw_elem(&w, resp, ns.ext, "UserDevices", pkg->user_devices, 2);
    if (pkg->n_keysets > 0) {
        xmlNode *c = ms_xw_elem(&w, resp, ns.ext, "Certificate", NULL, 2);
        ms_kmsif_cert_build(&w, c, ns.tgpp, &pkg->cert, 3);
        ms_xw_close(&w, c, 2);
    }
    ms_xw_close(&w, resp, 1);
    if (w.failed) {
        ms_xw_abort(&w);
        return MS_ERR_ARG;
    }
    e = put_signature(&w, &ns, root, resp, id, dev);
    ms_xw_close(&w, root, 0);
    if (e != MS_OK) {
        ms_xw_abort(&w);
        return e;
    }
    return ms_xw_finish(&w, out, cap, out_len);
}

/* ---- reading ---------------------------------------------------------------------- */

typedef struct enc_key {
    uint32_t trk_id;
    uint8_t ct[RSK_WRAPPED];
    size_t ct_len;
} enc_key;

typedef struct pkg_read {
    ms_xp *p;
    xmlNode *resp, *signed_info;
    char id[ID_MAX];
    uint8_t digest[32], mac[32];
    uint32_t ink_id;
    bool have_cert;
    enc_key rsk[MS_KMSIF_MAX_KEYSETS], ssk[MS_KMSIF_MAX_KEYSETS];
} pkg_read;

static bool read_key_name(ms_xp *p, xmlNode *key_info, uint32_t *id)
{
    uint8_t b[4];
    ms_xcur c;
    if (!ms_xml_attrs_only(p, key_info, NULL, false))
        return false;
    ms_xcur_init(&c, p, key_info);
    xmlNode *n = ms_xcur_take(&c, MS_NS_DS, "KeyName", true);
    if (n == NULL || !ms_xml_hex(p, n, b, sizeof b) || !ms_xcur_end(&c))
        return false;
    *id = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return true;
}

/* An element naming an algorithm: only the Algorithm attribute, no content. */
static bool read_alg(ms_xp *p, ms_xcur *c, const char *ns, const char *name,
                     const char *want)
{
    static const char *const attrs[] = {"Algorithm", NULL};
    char alg[128];
    xmlNode *n = ms_xcur_take(c, ns, name, true);
    if (n == NULL || !ms_xml_attrs_only(p, n, attrs, false) ||
        !ms_xml_attr(p, n, "Algorithm", alg, sizeof alg, true, NULL))
        return false;
    if (strcmp(alg, want) != 0)
        return ms_xp_fail(p, n, "unsupported algorithm %s (want %s)", alg, want);
    return ms_xml_empty(p, n);
}

static bool read_enc_key(ms_xp *p, xmlNode *el, enc_key *k, size_t wrapped_len)
{
    if (!ms_xml_attrs_only(p, el, NULL, true))
        return false;
    xmlChar *t = xmlGetNsProp(el, (const xmlChar *)"type", (const xmlChar *)MS_NS_XSI);
    bool ok_type = t == NULL || strcmp((const char *)t, "EncKeyContentType") == 0;
    xmlFree(t);
    if (!ok_type)
        return ms_xp_fail(p, el, "xsi:type must be EncKeyContentType");
    for (const xmlNode *t2 = el->children; t2 != NULL; t2 = t2->next)
        if (t2->type == XML_TEXT_NODE && t2->content != NULL &&
            strspn((const char *)t2->content, " \t\r\n") != strlen((const char *)t2->content))
            return ms_xp_fail(p, el, "keys must be encrypted (xenc:EncryptedKey), not in clear");
    ms_xcur c;
    ms_xcur_init(&c, p, el);
    xmlNode *ek = ms_xcur_take(&c, MS_NS_XENC, "EncryptedKey", true);
    if (ek == NULL || !ms_xcur_end(&c) || !ms_xml_attrs_only(p, ek, NULL, false))
        return false;
    ms_xcur e;
    ms_xcur_init(&e, p, ek);
    if (!read_alg(p, &e, MS_NS_XENC, "EncryptionMethod", ALG_KWP))
        return false;
    xmlNode *ki = ms_xcur_take(&e, MS_NS_DS, "KeyInfo", true);
    if (ki == NULL || !read_key_name(p, ki, &k->trk_id))
        return false;
    xmlNode *cd = ms_xcur_take(&e, MS_NS_XENC, "CipherData", true);
    if (cd == NULL || !ms_xml_attrs_only(p, cd, NULL, false) || !ms_xcur_end(&e))
        return false;
    ms_xcur d;
    ms_xcur_init(&d, p, cd);
    xmlNode *cv = ms_xcur_take(&d, MS_NS_XENC, "CipherValue", true);
    if (cv == NULL || !ms_xcur_end(&d) || !ms_xml_b64(p, cv, k->ct, sizeof k->ct, &k->ct_len))
        return false;
    if (k->ct_len != wrapped_len)
        return ms_xp_fail(p, cv, "wrapped key of %zu octets, want %zu", k->ct_len,
                          wrapped_len);
    return true;
}

static bool read_keyset(pkg_read *r, xmlNode *el, ms_kmsif_keyset *k, size_t i)
{
    static const char *const attrs[] = {"Id", "Version", NULL};
    ms_xp *p = r->p;
    const char *ns = MS_KMSIF_NS;
    if (!ms_xml_attrs_only(p, el, attrs, false) || !ms_xml_attr_eq(p, el, "Version", "1.1.0"))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, el);
    xmlNode *n;
    char skip[MS_KMSIF_URI_MAX + 1];
    if ((n = ms_xcur_take(&c, ns, "KmsUri", true)) == NULL ||
        !ms_xml_text(p, n, k->kms_uri, sizeof k->kms_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, ns, "CertUri", false)) != NULL &&
        !ms_xml_text(p, n, skip, sizeof skip, true))
        return false;
    if ((n = ms_xcur_take(&c, ns, "Issuer", false)) != NULL &&
        !ms_xml_text(p, n, skip, sizeof skip, true))
        return false;
    if ((n = ms_xcur_take(&c, ns, "UserUri", true)) == NULL ||
        !ms_xml_text(p, n, k->user_uri, sizeof k->user_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, ns, "UserID", true)) == NULL ||
        !ms_xml_hex_var(p, n, k->user_id, sizeof k->user_id, &k->user_id_len))
        return false;
    if ((n = ms_xcur_take(&c, ns, "ValidFrom", false)) != NULL &&
        !ms_xml_time(p, n, &k->valid_from))
        return false;
    if ((n = ms_xcur_take(&c, ns, "ValidTo", false)) != NULL && !ms_xml_time(p, n, &k->valid_to))
        return false;
    if ((n = ms_xcur_take(&c, ns, "KeyPeriodNo", true)) == NULL ||
        !ms_xml_u64(p, n, &k->period_no))
        return false;
    if ((n = ms_xcur_take(&c, ns, "Revoked", false)) != NULL && !ms_xml_bool(p, n, &k->revoked))
        return false;
    if ((n = ms_xcur_take(&c, ns, "UserDecryptKey", true)) == NULL ||
        !read_enc_key(p, n, &r->rsk[i], RSK_WRAPPED))
        return false;
    if ((n = ms_xcur_take(&c, ns, "UserSigningKeySSK", true)) == NULL ||
        !read_enc_key(p, n, &r->ssk[i], SSK_WRAPPED))
        return false;
    if ((n = ms_xcur_take(&c, ns, "UserPubTokenPVT", true)) == NULL ||
        !ms_xml_hex(p, n, k->pvt, sizeof k->pvt))
        return false;
    return ms_xcur_end(&c);
}

static bool read_message(pkg_read *r, xmlNode *msg, ms_key_package *pkg)
{
    static const char *const attrs[] = {"Id", "Version", NULL};
    ms_xp *p = r->p;
    if (!ms_xml_attrs_only(p, msg, NULL, false))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, msg);
    xmlNode *n;
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsInit", false)) != NULL) {
        if (!ms_xml_attrs_only(p, n, attrs, true) || !ms_xml_attr_eq(p, n, "Version", "1.0.0"))
            return false;
        ms_xcur i;
        ms_xcur_init(&i, p, n);
        xmlNode *cert = ms_xcur_take(&i, MS_KMSIF_NS, "KmsCertificate", true);
        if (cert == NULL || !ms_kmsif_cert_read(p, cert, &pkg->cert))
            return false;
        ms_xcur_skip_other(&i, MS_KMSIF_NS);
        r->have_cert = true;
        return ms_xcur_end(&i) && ms_xcur_end(&c);
    }
    if ((n = ms_xcur_take(&c, MS_KMSIF_NS, "KmsKeyProv", p->err == MS_OK)) == NULL)
        return false;
    if (!ms_xml_attrs_only(p, n, attrs, true) || !ms_xml_attr_eq(p, n, "Version", "1.0.0"))
        return false;
    ms_xcur k;
    ms_xcur_init(&k, p, n);
    xmlNode *ks;
    while ((ks = ms_xcur_take(&k, MS_KMSIF_NS, "KmsKeySet", false)) != NULL) {
        if (pkg->n_keysets == MS_KMSIF_MAX_KEYSETS)
            return ms_xp_fail(p, ks, "more than %d key sets", MS_KMSIF_MAX_KEYSETS);
        if (!read_keyset(r, ks, &pkg->keysets[pkg->n_keysets], pkg->n_keysets))
            return false;
        pkg->n_keysets++;
    }
    if (pkg->n_keysets == 0 && p->err == MS_OK)
        return ms_xp_fail(p, n, "no KmsKeySet");
    ms_xcur_skip_other(&k, MS_KMSIF_NS);
    return ms_xcur_end(&k) && ms_xcur_end(&c);
}

static bool read_response(pkg_read *r, xmlNode *resp, ms_key_package *pkg)
{
    static const char *const attrs[] = {"Id", "Version", NULL};
    ms_xp *p = r->p;
    const char *ns = MS_KMSIF_NS;
    if (!ms_xml_attrs_only(p, resp, attrs, false) ||
        !ms_xml_attr_eq(p, resp, "Version", "1.0.0") ||
        !ms_xml_attr(p, resp, "Id", r->id, sizeof r->id, true, NULL))
        return false;
    if (r->id[0] == 0 || strspn(r->id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789-_.") != strlen(r->id))
        return ms_xp_fail(p, resp, "Id must be a plain NCName");
    ms_xcur c;
    ms_xcur_init(&c, p, resp);
    xmlNode *n;
    char kms_id[MS_KMSIF_URI_MAX + 1];
    if ((n = ms_xcur_take(&c, ns, "UserUri", true)) == NULL ||
        !ms_xml_text(p, n, pkg->user_uri, sizeof pkg->user_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, ns, "KmsUri", true)) == NULL ||
        !ms_xml_text(p, n, pkg->kms_uri, sizeof pkg->kms_uri, false))
        return false;
    if ((n = ms_xcur_take(&c, ns, "Time", true)) == NULL || !ms_xml_time(p, n, &pkg->time))
        return false;
    if ((n = ms_xcur_take(&c, ns, "KmsId", false)) != NULL &&
        !ms_xml_text(p, n, kms_id, sizeof kms_id, true))
        return false;
    if ((n = ms_xcur_take(&c, ns, "ClientReqUrl", true)) == NULL ||
        !ms_xml_text(p, n, pkg->client_req_url, sizeof pkg->client_req_url, true))
        return false;
    if ((n = ms_xcur_take(&c, ns, "KmsMessage", true)) == NULL || !read_message(r, n, pkg))
        return false;
    if ((n = ms_xcur_take(&c, ns, "KmsError", false)) != NULL)
        return ms_xp_fail(p, n, "the KMS answered with an error");
    /* ##other: our two extension elements, anything else foreign is ignored. */
    bool have_dev = false, have_list = false;
    while ((n = ms_xcur_peek(&c)) != NULL) {
        if (ms_xml_is(n, MS_NS_EXT, "DeviceId") && !have_dev) {
            if (!ms_xml_text(p, n, pkg->device_id, sizeof pkg->device_id, false))
                return false;
            have_dev = true;
        } else if (ms_xml_is(n, MS_NS_EXT, "UserDevices") && !have_list) {
            if (!ms_xml_text(p, n, pkg->user_devices, sizeof pkg->user_devices, false))
                return false;
            if (!device_list_ok(pkg->user_devices))
                return ms_xp_fail(p, n, "<mskms:UserDevices> is not a list of device ids");
            have_list = true;
        } else if (ms_xml_is(n, MS_NS_EXT, "Certificate") && !r->have_cert) {
            ms_xcur cc;
            ms_xcur_init(&cc, p, n);
            xmlNode *cert = ms_xcur_take(&cc, ns, "KmsCertificate", true);
            if (!ms_xml_attrs_only(p, n, NULL, false) || cert == NULL ||
                !ms_kmsif_cert_read(p, cert, &pkg->cert) || !ms_xcur_end(&cc))
                return false;
            r->have_cert = true;
        } else if (n->ns == NULL || n->ns->href == NULL ||
                   strcmp((const char *)n->ns->href, ns) == 0 ||
                   strcmp((const char *)n->ns->href, MS_NS_EXT) == 0) {
            return ms_xp_fail(p, n, "unexpected element here (namespace %s)",
                              n->ns != NULL ? (const char *)n->ns->href : "none");
        }
        c.pos = n->next;
    }
    if (p->err != MS_OK)
        return false;
    if (!have_dev)
        return ms_xp_fail(p, resp, "missing <mskms:DeviceId> (%s)", MS_NS_EXT);
    if (!r->have_cert)
        return ms_xp_fail(p, resp, "missing the KMS certificate (<mskms:Certificate>)");
    return true;
}

static bool read_signature(pkg_read *r, xmlNode *sig)
{
    static const char *const ref_attrs[] = {"URI", NULL};
    ms_xp *p = r->p;
    if (!ms_xml_attrs_only(p, sig, NULL, false))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, sig);
    xmlNode *si = ms_xcur_take(&c, MS_NS_DS, "SignedInfo", true);
    if (si == NULL || !ms_xml_attrs_only(p, si, NULL, false))
        return false;
    r->signed_info = si;
    ms_xcur s;
    ms_xcur_init(&s, p, si);
    if (!read_alg(p, &s, MS_NS_DS, "CanonicalizationMethod", ALG_EXC_C14N) ||
        !read_alg(p, &s, MS_NS_DS, "SignatureMethod", ALG_HMAC))
        return false;
    xmlNode *ref = ms_xcur_take(&s, MS_NS_DS, "Reference", true);
    if (ref == NULL || !ms_xcur_end(&s) || !ms_xml_attrs_only(p, ref, ref_attrs, false))
        return false;
    char uri[ID_MAX + 2], want[ID_MAX + 2];
    if (!ms_xml_attr(p, ref, "URI", uri, sizeof uri, true, NULL))
        return false;
    snprintf(want, sizeof want, "#%s", r->id);
    if (strcmp(uri, want) != 0)
        return ms_xp_fail(p, ref, "URI must reference the KmsResponse (%s)", want);
    ms_xcur rc;
    ms_xcur_init(&rc, p, ref);
    xmlNode *tr = ms_xcur_take(&rc, MS_NS_DS, "Transforms", true);
    if (tr == NULL || !ms_xml_attrs_only(p, tr, NULL, false))
        return false;
    ms_xcur t;
    ms_xcur_init(&t, p, tr);
    if (!read_alg(p, &t, MS_NS_DS, "Transform", ALG_EXC_C14N) || !ms_xcur_end(&t) ||
        !read_alg(p, &rc, MS_NS_DS, "DigestMethod", ALG_SHA256))
        return false;
    size_t n = 0;
    xmlNode *dv = ms_xcur_take(&rc, MS_NS_DS, "DigestValue", true);
    if (dv == NULL || !ms_xml_b64(p, dv, r->digest, sizeof r->digest, &n) ||
        !ms_xcur_end(&rc))
        return false;
    if (n != 32)
        return ms_xp_fail(p, dv, "a SHA-256 digest is 32 octets");
    xmlNode *sv = ms_xcur_take(&c, MS_NS_DS, "SignatureValue", true);
    if (sv == NULL || !ms_xml_b64(p, sv, r->mac, sizeof r->mac, &n))
        return false;
    if (n != 32)
        return ms_xp_fail(p, sv, "an HMAC-SHA256 value is 32 octets");
    xmlNode *ki = ms_xcur_take(&c, MS_NS_DS, "KeyInfo", true);
    if (ki == NULL || !read_key_name(p, ki, &r->ink_id))
        return false;
    return ms_xcur_end(&c);
}

/* Structure of the whole document; fills r and the public fields of pkg. */
static bool read_structure(pkg_read *r, xmlDoc *doc, ms_key_package *pkg)
{
    ms_xp *p = r->p;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (ms_xml_is(root, MS_KMSIF_NS, "KmsResponse"))
        return ms_xp_fail_code(p, MS_ERR_PACKAGE_SIGNATURE, root,
                               "unsigned KmsResponse (no SignedKmsResponse)");
    if (!ms_xml_is(root, MS_KMSIF_NS, "SignedKmsResponse"))
        return ms_xp_fail(p, root, "the document is not a SignedKmsResponse in %s",
                          MS_KMSIF_NS);
    if (!ms_xml_attrs_only(p, root, NULL, false))
        return false;
    ms_xcur c;
    ms_xcur_init(&c, p, root);
    r->resp = ms_xcur_take(&c, MS_KMSIF_NS, "KmsResponse", true);
    if (r->resp == NULL || !read_response(r, r->resp, pkg))
        return false;
    xmlNode *sig = ms_xcur_take(&c, MS_NS_DS, "Signature", false);
    if (sig == NULL) {
        if (p->err == MS_OK && ms_xcur_end(&c))
            ms_xp_fail_code(p, MS_ERR_PACKAGE_SIGNATURE, root, "the package is not signed");
        return false;
    }
    return read_signature(r, sig) && ms_xcur_end(&c);
}

static bool check_signature(pkg_read *r, xmlDoc *doc, const ms_device_keys *dev)
{
    uint8_t md[32], mac[32];
    ms_err e = digest_of(doc, r->resp, md);
    if (e == MS_OK)
        e = hmac_of(doc, r->signed_info, dev->ink, mac);
    /* C14N refuses what the parser accepted, e.g. a relative namespace URI: the
     * document is at fault, not us. */
    if (e == MS_ERR_INTERNAL)
        e = MS_ERR_XML;
    if (e != MS_OK)
        return ms_xp_fail_code(r->p, e, NULL,
                               "the document cannot be canonicalised (exclusive C14N), e.g. "
                               "a namespace name that is not an absolute URI");
    /* Both compared in full before deciding, without early exit. */
    int bad_digest = CRYPTO_memcmp(md, r->digest, sizeof md);
    int bad_mac = CRYPTO_memcmp(mac, r->mac, sizeof mac);
    ms_wipe(mac, sizeof mac);
    if (bad_mac != 0)
        return ms_xp_fail_code(r->p, MS_ERR_PACKAGE_SIGNATURE, NULL,
                               "SignatureValue does not verify under this device's InK");
    if (bad_digest != 0)
        return ms_xp_fail_code(r->p, MS_ERR_PACKAGE_SIGNATURE, NULL,
                               "the KmsResponse does not match its signed digest");
    return true;
}

static bool check_addressee(pkg_read *r, const ms_key_package *pkg, const ms_device_keys *dev)
{
    ms_xp *p = r->p;
    if (r->ink_id != dev->ink_id)
        return ms_xp_fail_code(p, MS_ERR_PACKAGE_DEVICE, NULL,
                               "signed with InK-ID %08X, this device has %08X",
                               (unsigned)r->ink_id, (unsigned)dev->ink_id);
    if (strcmp(pkg->user_uri, dev->user_uri) != 0)
        return ms_xp_fail_code(p, MS_ERR_PACKAGE_DEVICE, NULL,
                               "the package is for another user");
    if (strcmp(pkg->device_id, dev->device_id) != 0)
        return ms_xp_fail_code(p, MS_ERR_PACKAGE_DEVICE, NULL,
                               "the package is for another device");
    for (size_t i = 0; i < pkg->n_keysets; i++) {
        if (strcmp(pkg->keysets[i].user_uri, dev->user_uri) != 0)
            return ms_xp_fail_code(p, MS_ERR_PACKAGE_DEVICE, NULL,
                                   "key set %zu is for another user", i);
        if (r->rsk[i].trk_id != dev->trk_id || r->ssk[i].trk_id != dev->trk_id)
            return ms_xp_fail_code(p, MS_ERR_PACKAGE_DEVICE, NULL,
                                   "key set %zu is encrypted under another TrK-ID", i);
    }
    return true;
}

static bool unwrap_into(ms_xp *p, const enc_key *k, const ms_device_keys *dev, uint8_t *out,
                        size_t want, size_t i, const char *what)
{
    uint8_t tmp[RSK_WRAPPED];
    size_t n = 0;
    ms_err e = ms_aes_kwp_unwrap(tmp, sizeof tmp, &n, dev->trk, sizeof dev->trk, k->ct,
                                 k->ct_len);
    bool ok = e == MS_OK && n == want;
    if (ok)
        memcpy(out, tmp, want);
    ms_wipe(tmp, sizeof tmp);
    if (!ok)
        return ms_xp_fail_code(p, MS_ERR_PACKAGE_DECRYPT, NULL,
                               "key set %zu: %s does not unwrap under this device's TrK", i,
                               what);
    return true;
}

ms_err ms_kmsif_package_parse(ms_key_package *pkg, const char *xml, size_t len,
                              const ms_device_keys *dev, char *detail, size_t detail_cap)
{
    ms_xp p;
    ms_xp_init(&p, detail, detail_cap);
    if (pkg == NULL || dev == NULL)
        return MS_ERR_ARG;
    ms_wipe(pkg, sizeof *pkg);
    pkg_read r;
    memset(&r, 0, sizeof r);
    r.p = &p;
    xmlDoc *doc = ms_xml_read(&p, xml, len);
    if (doc != NULL) {
        if (read_structure(&r, doc, pkg) && check_signature(&r, doc, dev) &&
            check_addressee(&r, pkg, dev)) {
            for (size_t i = 0; i < pkg->n_keysets; i++) {
                ms_kmsif_keyset *k = &pkg->keysets[i];
                if (!unwrap_into(&p, &r.rsk[i], dev, k->rsk, sizeof k->rsk, i, "RSK") ||
                    !unwrap_into(&p, &r.ssk[i], dev, k->ssk, sizeof k->ssk, i, "SSK"))
                    break;
            }
        }
        xmlFreeDoc(doc);
    }
    ms_wipe(&r, sizeof r);
    if (p.err != MS_OK)
        ms_wipe(pkg, sizeof *pkg);
    return p.err;
}

/* ---- re-signing (tests) ----------------------------------------------------------- */

static xmlNode *first_elem(xmlNode *n)
{
    while (n != NULL && n->type != XML_ELEMENT_NODE)
        n = n->next;
    return n;
}

static xmlNode *find_child(xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent != NULL ? parent->children : NULL; n != NULL; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

ms_err ms_kmsif_package_resign(char *out, size_t cap, size_t *out_len, const char *xml,
                               size_t len, const uint8_t ink[32])
{
    ms_xp p;
    ms_xp_init(&p, NULL, 0);
    xmlDoc *doc = ms_xml_read(&p, xml, len);
    if (doc == NULL)
        return p.err;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *resp = first_elem(root->children);
    xmlNode *sig = find_child(root, "Signature");
    xmlNode *si = find_child(sig, "SignedInfo");
    xmlNode *dv = find_child(find_child(si, "Reference"), "DigestValue");
    xmlNode *sv = find_child(sig, "SignatureValue");
    ms_xw w = {doc, false};
    uint8_t md[32], mac[32];
    char b64[64];
    if (resp == NULL || dv == NULL || sv == NULL || digest_of(doc, resp, md) != MS_OK) {
        ms_xw_abort(&w);
        return MS_ERR_ARG;
    }
    ms_b64_encode(b64, md, sizeof md);
    xmlNodeSetContent(dv, (const xmlChar *)b64);
    if (hmac_of(doc, si, ink, mac) != MS_OK) {
        ms_xw_abort(&w);
        return MS_ERR_INTERNAL;
    }
    ms_b64_encode(b64, mac, sizeof mac);
    xmlNodeSetContent(sv, (const xmlChar *)b64);
    return ms_xw_finish(&w, out, cap, out_len);
}
