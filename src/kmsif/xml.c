/*
 * Hardened XML reading and deterministic XML writing for the TS 33.180 formats.
 *
 * Reading: the input is refused before libxml2 sees it when it is larger than
 * MS_KMSIF_MAX_XML, contains a NUL, or contains "<!DOCTYPE" / "<!ENTITY" anywhere (no
 * document of ours has a DTD, so entity expansion attacks - billion laughs, external
 * entities - never reach the parser). The parser runs with XML_PARSE_NONET and without
 * NOENT/DTDLOAD/DTDATTR, with the encoding forced to UTF-8 (so a UTF-16 document cannot
 * hide a DOCTYPE from that scan), and the tree is checked again afterwards: no DTD, no
 * comment, processing instruction or entity reference, depth at most MS_XML_MAX_DEPTH.
 *
 * Writing: documents are built as libxml2 trees with the indentation as explicit text
 * nodes and serialised without libxml2's formatting, so what we canonicalise and sign
 * while writing is exactly what a reader re-parses.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/c14n.h>
#include <libxml/dict.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>

#include "xml_internal.h"

/* ---- parse state -------------------------------------------------------------------- */

void ms_xp_init(ms_xp *p, char *detail, size_t detail_cap)
{
    p->detail = detail;
    p->detail_cap = detail_cap;
    p->err = MS_OK;
    if (detail != NULL && detail_cap > 0)
        detail[0] = 0;
}

static bool xp_vfail(ms_xp *p, ms_err code, const xmlNode *n, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static bool xp_vfail(ms_xp *p, ms_err code, const xmlNode *n, const char *fmt, va_list ap)
{
    if (p->err != MS_OK)
        return false;
    p->err = code;
    if (p->detail == NULL || p->detail_cap == 0)
        return false;
    size_t off = 0;
    if (n != NULL && n->type == XML_ELEMENT_NODE) {
        int k = snprintf(p->detail, p->detail_cap, "line %ld: <%s>: ", xmlGetLineNo(n),
                         (const char *)n->name);
        off = k < 0 ? 0 : (size_t)k;
    }
    if (off < p->detail_cap)
        vsnprintf(p->detail + off, p->detail_cap - off, fmt, ap);
    return false;
}

bool ms_xp_fail(ms_xp *p, const xmlNode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xp_vfail(p, MS_ERR_XML, n, fmt, ap);
    va_end(ap);
    return false;
}

bool ms_xp_fail_code(ms_xp *p, ms_err code, const xmlNode *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    xp_vfail(p, code, n, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- the reader --------------------------------------------------------------------- */

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
}

static bool contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

/* Only elements and text may appear; depth is bounded. Iterative, so a hostile tree
 * cannot exhaust the stack here. */
static bool check_tree(ms_xp *p, xmlDoc *doc)
{
    if (doc->intSubset != NULL || doc->extSubset != NULL)
        return ms_xp_fail(p, NULL, "a DOCTYPE is not allowed");
    for (xmlNode *n = doc->children; n != NULL; n = n->next)
        if (n->type != XML_ELEMENT_NODE)
            return ms_xp_fail(p, NULL, "line %ld: only one element may appear at top level",
                              xmlGetLineNo(n));
    xmlNode *root = xmlDocGetRootElement(doc);
    if (root == NULL)
        return ms_xp_fail(p, NULL, "no root element");
    xmlNode *n = root;
    int depth = 1;
    while (n != NULL) {
        switch (n->type) {
        case XML_ELEMENT_NODE:
            if (depth > MS_XML_MAX_DEPTH)
                return ms_xp_fail(p, n, "nested deeper than %d elements", MS_XML_MAX_DEPTH);
            break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            break;
        case XML_COMMENT_NODE:
            return ms_xp_fail(p, NULL, "line %ld: comments are not allowed", xmlGetLineNo(n));
        case XML_PI_NODE:
            return ms_xp_fail(p, n->parent, "processing instructions are not allowed");
        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_NODE:
            return ms_xp_fail(p, n->parent, "entity references are not allowed");
        default:
            return ms_xp_fail(p, n->parent, "unexpected node type %d", (int)n->type);
        }
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            depth++;
            continue;
        }
        while (n != NULL && n != root && n->next == NULL) {
            n = n->parent;
            depth--;
        }
        if (n == NULL || n == root)
            break;
        n = n->next;
    }
    return true;
}

xmlDoc *ms_xml_read(ms_xp *p, const char *xml, size_t len)
{
    if (xml == NULL || len == 0) {
        ms_xp_fail(p, NULL, "empty document");
        return NULL;
    }
    if (len > MS_KMSIF_MAX_XML) {
        ms_xp_fail(p, NULL, "document of %zu octets is over the limit of %d", len,
                   MS_KMSIF_MAX_XML);
        return NULL;
    }
    if (memchr(xml, 0, len) != NULL) {
        ms_xp_fail(p, NULL, "NUL octet in document (only UTF-8 is accepted)");
        return NULL;
    }
    if (contains(xml, len, "<!DOCTYPE") || contains(xml, len, "<!ENTITY")) {
        ms_xp_fail(p, NULL, "DOCTYPE and entity declarations are not allowed");
        return NULL;
    }
    pthread_once(&xml_once, xml_init);
    xmlParserCtxt *ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        ms_xp_fail_code(p, MS_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    /* NONET: never fetch anything; NOCDATA: CDATA is plain text to us. Not NOENT,
     * DTDLOAD, DTDATTR, XINCLUDE or HUGE (its default limits stay on). */
    int opts = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, "UTF-8", opts);
    if (doc == NULL || !ctxt->wellFormed) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[160] = "not well-formed";
        int line = 0;
        if (e != NULL && e->message != NULL) {
            snprintf(msg, sizeof msg, "%s", e->message);
            size_t m = strlen(msg);
            while (m > 0 && (msg[m - 1] == '\n' || msg[m - 1] == ' '))
                msg[--m] = 0;
            line = e->line;
        }
        ms_xp_fail(p, NULL, "line %d: malformed XML: %s", line, msg);
        xmlFreeDoc(doc);
        xmlFreeParserCtxt(ctxt);
        return NULL;
    }
    xmlFreeParserCtxt(ctxt);
    if (!check_tree(p, doc)) {
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

/* ---- cursor ------------------------------------------------------------------------- */

static bool is_xml_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool all_space(const xmlChar *s)
{
    for (; s != NULL && *s; s++)
        if (!is_xml_space(*s))
            return false;
    return true;
}

bool ms_xml_is(const xmlNode *n, const char *ns, const char *name)
{
    if (n == NULL || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name) != 0)
        return false;
    if (ns == NULL)
        return n->ns == NULL;
    return n->ns != NULL && n->ns->href != NULL &&
           strcmp((const char *)n->ns->href, ns) == 0;
}

void ms_xcur_init(ms_xcur *c, ms_xp *p, const xmlNode *parent)
{
    c->p = p;
    c->parent = parent;
    c->pos = parent->children;
}

xmlNode *ms_xcur_peek(ms_xcur *c)
{
    if (c->p->err != MS_OK)
        return NULL;
    while (c->pos != NULL) {
        xmlNode *n = c->pos;
        if (n->type == XML_ELEMENT_NODE)
            return n;
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) &&
            all_space(n->content)) {
            c->pos = n->next;
            continue;
        }
        ms_xp_fail(c->p, c->parent, "unexpected text between elements");
        return NULL;
    }
    return NULL;
}

static const char *ns_label(const char *ns)
{
    if (ns == NULL)
        return "no namespace";
    if (strcmp(ns, MS_KMSIF_NS) == 0)
        return "3GPP";
    if (strcmp(ns, MS_NS_DS) == 0)
        return "ds";
    if (strcmp(ns, MS_NS_XENC) == 0)
        return "xenc";
    return ns;
}

xmlNode *ms_xcur_take(ms_xcur *c, const char *ns, const char *name, bool required)
{
    xmlNode *n = ms_xcur_peek(c);
    if (n != NULL && ms_xml_is(n, ns, name)) {
        c->pos = n->next;
        return n;
    }
    if (required && c->p->err == MS_OK) {
        if (n == NULL)
            ms_xp_fail(c->p, c->parent, "missing <%s> (%s)", name, ns_label(ns));
        else
            ms_xp_fail(c->p, n, "found where <%s> (%s) is required (namespace %s)", name,
                       ns_label(ns),
                       n->ns != NULL ? (const char *)n->ns->href : "none");
    }
    return NULL;
}

void ms_xcur_skip_other(ms_xcur *c, const char *own_ns)
{
    xmlNode *n;
    while ((n = ms_xcur_peek(c)) != NULL && n->ns != NULL && n->ns->href != NULL &&
           strcmp((const char *)n->ns->href, own_ns) != 0)
        c->pos = n->next;
}

bool ms_xcur_end(ms_xcur *c)
{
    xmlNode *n = ms_xcur_peek(c);
    if (c->p->err != MS_OK)
        return false;
    if (n != NULL)
        return ms_xp_fail(c->p, n, "unexpected element here (namespace %s)",
                          n->ns != NULL ? (const char *)n->ns->href : "none");
    return true;
}

/* ---- attributes --------------------------------------------------------------------- */

bool ms_xml_attrs_only(ms_xp *p, const xmlNode *el, const char *const *allowed,
                       bool allow_xsi_type)
{
    for (const xmlAttr *a = el->properties; a != NULL; a = a->next) {
        bool ok = false;
        if (a->ns == NULL) {
            for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++)
                if (strcmp((const char *)a->name, allowed[i]) == 0)
                    ok = true;
        } else if (allow_xsi_type && strcmp((const char *)a->ns->href, MS_NS_XSI) == 0 &&
                   strcmp((const char *)a->name, "type") == 0) {
            ok = true;
        }
        if (!ok)
            return ms_xp_fail(p, el, "attribute %s%s%s is not allowed",
                              a->ns != NULL ? (const char *)a->ns->href : "",
                              a->ns != NULL ? ":" : "", (const char *)a->name);
    }
    return true;
}

bool ms_xml_attr(ms_xp *p, const xmlNode *el, const char *name, char *out, size_t cap,
                 bool required, bool *present)
{
    xmlChar *v = xmlGetNoNsProp(el, (const xmlChar *)name);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL) {
        if (cap > 0)
            out[0] = 0;
        return required ? ms_xp_fail(p, el, "missing attribute %s", name) : true;
    }
    size_t n = strlen((const char *)v);
    if (n >= cap) {
        xmlFree(v);
        return ms_xp_fail(p, el, "attribute %s is too long", name);
    }
    memcpy(out, v, n + 1);
    xmlFree(v);
    return true;
}

bool ms_xml_attr_eq(ms_xp *p, const xmlNode *el, const char *name, const char *want)
{
    char v[64];
    if (!ms_xml_attr(p, el, name, v, sizeof v, true, NULL))
        return false;
    if (strcmp(v, want) != 0)
        return ms_xp_fail(p, el, "attribute %s must be \"%s\"", name, want);
    return true;
}

/* ---- leaf values -------------------------------------------------------------------- */

/* The text of a leaf element, trimmed, in a fresh buffer (freed by the caller). */
static char *leaf_text(ms_xp *p, const xmlNode *el, size_t *out_len)
{
    if (el->properties != NULL && !ms_xml_attrs_only(p, el, NULL, false))
        return NULL;
    size_t total = 0;
    for (const xmlNode *n = el->children; n != NULL; n = n->next) {
        if (n->type != XML_TEXT_NODE && n->type != XML_CDATA_SECTION_NODE) {
            ms_xp_fail(p, el, "must contain only text");
            return NULL;
        }
        total += n->content != NULL ? strlen((const char *)n->content) : 0;
        if (total > MS_KMSIF_MAX_XML) {
            ms_xp_fail(p, el, "text too long");
            return NULL;
        }
    }
    char *s = malloc(total + 1);
    if (s == NULL) {
        ms_xp_fail_code(p, MS_ERR_NOMEM, el, "out of memory");
        return NULL;
    }
    size_t off = 0;
    for (const xmlNode *n = el->children; n != NULL; n = n->next) {
        size_t k = n->content != NULL ? strlen((const char *)n->content) : 0;
        memcpy(s + off, n->content, k);
        off += k;
    }
    s[off] = 0;
    size_t a = 0, b = off;
    while (a < b && is_xml_space(s[a]))
        a++;
    while (b > a && is_xml_space(s[b - 1]))
        b--;
    memmove(s, s + a, b - a);
    s[b - a] = 0;
    *out_len = b - a;
    return s;
}

bool ms_xml_string_ok(const char *s, size_t max_len, bool allow_empty)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max_len + 1);
    if (n > max_len || (n == 0 && !allow_empty))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return n == 0 || xmlCheckUTF8((const unsigned char *)s) != 0;
}

bool ms_xml_text(ms_xp *p, const xmlNode *el, char *out, size_t cap, bool allow_empty)
{
    size_t n = 0;
    char *s = leaf_text(p, el, &n);
    if (s == NULL)
        return false;
    bool ok = true;
    if (n >= cap)
        ok = ms_xp_fail(p, el, "text longer than %zu characters", cap - 1);
    else if (n == 0 && !allow_empty)
        ok = ms_xp_fail(p, el, "must not be empty");
    else if (!ms_xml_string_ok(s, cap - 1, true))
        ok = ms_xp_fail(p, el, "contains control characters");
    else
        memcpy(out, s, n + 1);
    free(s);
    return ok;
}

bool ms_xml_hex_var(ms_xp *p, const xmlNode *el, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = 0;
    char *s = leaf_text(p, el, &n);
    if (s == NULL)
        return false;
    bool ok = true;
    if (n == 0 || n % 2 != 0 || n / 2 > cap) {
        ok = ms_xp_fail(p, el, "hexBinary of %zu digits, want an even number from 2 to %zu",
                        n, 2 * cap);
    } else {
        /* constant time: the leaf may be a key (its text is wiped below) */
        if (ms_hex_decode_secret(out, n / 2, s, n) != MS_OK)
            ok = ms_xp_fail(p, el, "not hexBinary: a character is not a hex digit");
        *len = n / 2;
    }
    ms_wipe(s, n);
    free(s);
    return ok;
}

bool ms_xml_hex(ms_xp *p, const xmlNode *el, uint8_t *out, size_t want_len)
{
    size_t n = 0;
    if (!ms_xml_hex_var(p, el, out, want_len, &n))
        return false;
    if (n != want_len)
        return ms_xp_fail(p, el, "hexBinary of %zu octets, want %zu", n, want_len);
    return true;
}

bool ms_xml_u64(ms_xp *p, const xmlNode *el, uint64_t *v)
{
    char s[32];
    if (!ms_xml_text(p, el, s, sizeof s, false))
        return false;
    uint64_t x = 0;
    size_t i = s[0] == '+' ? 1 : 0;
    if (s[i] == 0)
        return ms_xp_fail(p, el, "not a non-negative integer");
    for (; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9')
            return ms_xp_fail(p, el, "not a non-negative integer");
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return ms_xp_fail(p, el, "integer out of range");
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

bool ms_xml_bool(ms_xp *p, const xmlNode *el, bool *v)
{
    char s[8];
    if (!ms_xml_text(p, el, s, sizeof s, false))
        return false;
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
        *v = true;
    else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
        *v = false;
    else
        return ms_xp_fail(p, el, "not a boolean");
    return true;
}

bool ms_xml_time(ms_xp *p, const xmlNode *el, uint64_t *ntp)
{
    char s[64];
    if (!ms_xml_text(p, el, s, sizeof s, false))
        return false;
    if (!ms_time_parse(s, ntp, NULL))
        return ms_xp_fail(p, el, "not an xs:dateTime from 1900 to 9999");
    return true;
}

bool ms_xml_b64(ms_xp *p, const xmlNode *el, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = 0;
    char *s = leaf_text(p, el, &n);
    if (s == NULL)
        return false;
    bool ok = ms_b64_decode(out, cap, len, s, n);
    free(s);
    if (!ok)
        return ms_xp_fail(p, el, "not canonical base64 of at most %zu octets", cap);
    return true;
}

bool ms_xml_empty(ms_xp *p, const xmlNode *el)
{
    for (const xmlNode *n = el->children; n != NULL; n = n->next)
        if (n->type != XML_TEXT_NODE || !all_space(n->content))
            return ms_xp_fail(p, el, "must be empty");
    return true;
}


/* ---- base64 ------------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ms_b64_encode(char *out, const uint8_t *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static int b64_val(char c)
{
    const char *q = c != 0 ? strchr(b64_alphabet, c) : NULL;
    return q != NULL ? (int)(q - b64_alphabet) : -1;
}

/* Strict: groups of four, '=' only as final padding, unused bits zero. */
bool ms_b64_decode(uint8_t *out, size_t cap, size_t *len, const char *in, size_t in_len)
{
    if (in_len == 0 || in_len % 4 != 0)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i += 4) {
        bool last = i + 4 == in_len;
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad > 0 || (v[k] = b64_val(c)) < 0) {
                return false;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        if ((pad == 1 && (x & 0xff)) || (pad == 2 && (x & 0xffff)))
            return false;
        size_t k = 3 - (size_t)pad;
        if (o + k > cap)
            return false;
        for (size_t j = 0; j < k; j++)
            out[o + j] = (uint8_t)(x >> (16 - 8 * j));
        o += k;
    }
    *len = o;
    return true;
}


/* ---- writing ------------------------------------------------------------------------ */

static void indent(ms_xw *w, xmlNode *parent, int depth)
{
    char buf[2 + 2 * MS_XML_MAX_DEPTH];
    if (depth < 0 || depth > MS_XML_MAX_DEPTH) {
        w->failed = true;
        return;
    }
    buf[0] = '\n';
    memset(buf + 1, ' ', (size_t)(2 * depth));
    buf[1 + 2 * depth] = 0;
    xmlNode *t = xmlNewDocText(w->doc, (const xmlChar *)buf);
    if (t == NULL || xmlAddChild(parent, t) == NULL) {
        xmlFreeNode(t);
        w->failed = true;
    }
}

xmlNode *ms_xw_start(ms_xw *w, const char *ns, const char *name)
{
    pthread_once(&xml_once, xml_init);
    w->failed = false;
    w->doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNode *root = w->doc != NULL ? xmlNewDocNode(w->doc, NULL, (const xmlChar *)name, NULL)
                                   : NULL;
    if (root == NULL) {
        w->failed = true;
        return NULL;
    }
    xmlDocSetRootElement(w->doc, root);
    xmlNs *n = xmlNewNs(root, (const xmlChar *)ns, NULL);
    if (n == NULL)
        w->failed = true;
    xmlSetNs(root, n);
    return root;
}

xmlNode *ms_xw_elem(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name,
                    const char *text, int depth)
{
    if (w->failed || parent == NULL) {
        w->failed = true;
        return NULL;
    }
    indent(w, parent, depth);
    xmlNode *el = xmlNewTextChild(parent, ns, (const xmlChar *)name, (const xmlChar *)text);
    if (el == NULL)
        w->failed = true;
    return el;
}

xmlNode *ms_xw_hex(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name,
                   const uint8_t *v, size_t len, int depth)
{
    char *s = malloc(2 * len + 1);
    if (s == NULL) {
        w->failed = true;
        return NULL;
    }
    ms_hex_encode_upper(s, v, len);
    xmlNode *el = ms_xw_elem(w, parent, ns, name, s, depth);
    ms_wipe(s, 2 * len + 1);
    free(s);
    return el;
}

xmlNode *ms_xw_u64(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name, uint64_t v,
                   int depth)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return ms_xw_elem(w, parent, ns, name, s, depth);
}

xmlNode *ms_xw_time(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name, uint64_t ntp,
                    int depth)
{
    char s[32];
    if (!ms_time_format(s, ntp)) {
        w->failed = true;
        return NULL;
    }
    return ms_xw_elem(w, parent, ns, name, s, depth);
}

void ms_xw_attr(ms_xw *w, xmlNode *el, const char *name, const char *value)
{
    if (w->failed || el == NULL ||
        xmlNewProp(el, (const xmlChar *)name, (const xmlChar *)value) == NULL)
        w->failed = true;
}

void ms_xw_close(ms_xw *w, xmlNode *el, int depth)
{
    if (w->failed || el == NULL) {
        w->failed = true;
        return;
    }
    indent(w, el, depth);
}

void ms_xml_wipe_text(xmlDoc *doc)
{
    xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *n = root;
    while (n != NULL) {
        if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) &&
            n->content != NULL && !xmlDictOwns(doc->dict, n->content))
            ms_wipe(n->content, strlen((const char *)n->content));
        if (n->type == XML_ELEMENT_NODE && n->children != NULL) {
            n = n->children;
            continue;
        }
        while (n != NULL && n != root && n->next == NULL)
            n = n->parent;
        if (n == NULL || n == root)
            break;
        n = n->next;
    }
}

void ms_xw_abort(ms_xw *w)
{
    ms_xml_wipe_text(w->doc);
    xmlFreeDoc(w->doc);
    w->doc = NULL;
}

ms_err ms_xw_finish(ms_xw *w, char *out, size_t cap, size_t *out_len)
{
    xmlChar *buf = NULL;
    int size = 0;
    if (!w->failed)
        xmlDocDumpMemoryEnc(w->doc, &buf, &size, "UTF-8");
    ms_xw_abort(w);
    if (buf == NULL || size <= 0) {
        xmlFree(buf);
        return w->failed ? MS_ERR_ARG : MS_ERR_NOMEM;
    }
    size_t n = (size_t)size;
    *out_len = n;
    ms_err e = MS_OK;
    if (out == NULL || cap < n + 1) {
        e = MS_ERR_BUFFER_TOO_SMALL;
    } else {
        memcpy(out, buf, n);
        out[n] = 0;
    }
    ms_wipe(buf, n);
    xmlFree(buf);
    return e;
}

/* ---- exclusive canonicalisation of a subtree ---------------------------------------- */

/* A node is in the node set when it is the apex or below it; namespace nodes have no
 * parent link, so libxml2 passes their element. */
static int in_subtree(void *user, xmlNode *node, xmlNode *parent)
{
    const xmlNode *apex = user;
    const xmlNode *n = (node != NULL && node->type == XML_NAMESPACE_DECL) ? parent : node;
    for (; n != NULL; n = n->parent)
        if (n == apex)
            return 1;
    return 0;
}

ms_err ms_xml_exc_c14n(xmlDoc *doc, xmlNode *root, xmlChar **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    xmlOutputBuffer *buf = xmlAllocOutputBuffer(NULL);
    if (buf == NULL)
        return MS_ERR_NOMEM;
    int rc = xmlC14NExecute(doc, in_subtree, root, XML_C14N_EXCLUSIVE_1_0, NULL, 0, buf);
    const xmlChar *content = xmlOutputBufferGetContent(buf);
    size_t n = xmlOutputBufferGetSize(buf);
    if (rc < 0 || content == NULL) {
        xmlOutputBufferClose(buf);
        return MS_ERR_INTERNAL;
    }
    xmlChar *copy = xmlMalloc(n + 1);
    if (copy == NULL) {
        xmlOutputBufferClose(buf);
        return MS_ERR_NOMEM;
    }
    memcpy(copy, content, n);
    copy[n] = 0;
    ms_wipe((void *)content, n);
    xmlOutputBufferClose(buf);
    *out = copy;
    *len = n;
    return MS_OK;
}
