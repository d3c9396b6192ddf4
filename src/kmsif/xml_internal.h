/*
 * Internal XML helpers of src/kmsif: the hardened reader, a cursor that walks element
 * children in schema order, leaf value decoders (hex, base64, integers, xs:dateTime,
 * booleans), writer helpers that indent with explicit text nodes (so a written tree and
 * its re-parsed copy canonicalise identically), and exclusive C14N of a subtree.
 */
#ifndef MS_KMSIF_XML_INTERNAL_H
#define MS_KMSIF_XML_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "kmsif/kmsif.h"
#include "util/hex.h"     /* hexBinary */
#include "util/timefmt.h" /* xs:dateTime */

#define MS_NS_DS "http://www.w3.org/2000/09/xmldsig#"
#define MS_NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define MS_NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define MS_NS_EXT MS_KMSIF_NS_EXT
#define MS_XML_MAX_DEPTH 24

/* ---- reading -------------------------------------------------------------------- */

/* Parse state: the first failure's code and its detail ("line N: <Elem>: why"). */
typedef struct ms_xp {
    char *detail;
    size_t detail_cap;
    ms_err err;
} ms_xp;

void ms_xp_init(ms_xp *p, char *detail, size_t detail_cap);
/* Records a failure (only the first one is kept) and returns false. */
bool ms_xp_fail(ms_xp *p, const xmlNode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool ms_xp_fail_code(ms_xp *p, ms_err code, const xmlNode *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parses xml with network, DTDs and entities off; refuses oversized input, any DOCTYPE
 * or entity declaration, comments, processing instructions and deep nesting. */
xmlDoc *ms_xml_read(ms_xp *p, const char *xml, size_t len);

/* Walks the element children of a parent in order, skipping whitespace. */
typedef struct ms_xcur {
    ms_xp *p;
    const xmlNode *parent;
    xmlNode *pos;
} ms_xcur;

void ms_xcur_init(ms_xcur *c, ms_xp *p, const xmlNode *parent);
/* The next element child without consuming it; NULL at the end or on error. */
xmlNode *ms_xcur_peek(ms_xcur *c);
/* If the next element is {ns}name, consume and return it; otherwise NULL, and a
 * failure ("missing <name>") when required. */
xmlNode *ms_xcur_take(ms_xcur *c, const char *ns, const char *name, bool required);
/* Consumes elements in a namespace other than own_ns (xs:any ##other). */
void ms_xcur_skip_other(ms_xcur *c, const char *own_ns);
/* True when no element is left; otherwise a failure naming the extra element. */
bool ms_xcur_end(ms_xcur *c);

bool ms_xml_is(const xmlNode *n, const char *ns, const char *name);
/* Every attribute of el is one of the names in allowed (no namespace; NULL-terminated)
 * or xsi:type when allow_xsi_type. */
bool ms_xml_attrs_only(ms_xp *p, const xmlNode *el, const char *const *allowed,
                       bool allow_xsi_type);
/* Attribute value copied into out; returns false (failure) if absent and required. */
bool ms_xml_attr(ms_xp *p, const xmlNode *el, const char *name, char *out, size_t cap,
                 bool required, bool *present);
bool ms_xml_attr_eq(ms_xp *p, const xmlNode *el, const char *name, const char *want);

/* Leaf values: the element must contain only text; leading and trailing XML whitespace
 * is dropped (the schema types collapse it). */
bool ms_xml_text(ms_xp *p, const xmlNode *el, char *out, size_t cap, bool allow_empty);
bool ms_xml_hex(ms_xp *p, const xmlNode *el, uint8_t *out, size_t want_len);
bool ms_xml_hex_var(ms_xp *p, const xmlNode *el, uint8_t *out, size_t cap, size_t *len);
bool ms_xml_u64(ms_xp *p, const xmlNode *el, uint64_t *v);
bool ms_xml_bool(ms_xp *p, const xmlNode *el, bool *v);
bool ms_xml_time(ms_xp *p, const xmlNode *el, uint64_t *ntp);
bool ms_xml_b64(ms_xp *p, const xmlNode *el, uint8_t *out, size_t cap, size_t *len);
/* A leaf with no content and no element children (an algorithm identifier). */
bool ms_xml_empty(ms_xp *p, const xmlNode *el);

/* ---- values --------------------------------------------------------------------- */

size_t ms_b64_encode(char *out, const uint8_t *in, size_t len); /* NUL-terminated */
bool ms_b64_decode(uint8_t *out, size_t cap, size_t *len, const char *in, size_t in_len);
/* A string we may put into a document: valid UTF-8, no control characters. */
bool ms_xml_string_ok(const char *s, size_t max_len, bool allow_empty);

/* ---- writing -------------------------------------------------------------------- */

typedef struct ms_xw {
    xmlDoc *doc;
    bool failed;
} ms_xw;

/* A new document whose root is {ns}name with ns as default namespace. */
xmlNode *ms_xw_start(ms_xw *w, const char *ns, const char *name);
/* Child element at depth (root children are depth 1), indented; text may be NULL. */
xmlNode *ms_xw_elem(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name,
                    const char *text, int depth);
xmlNode *ms_xw_hex(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name,
                   const uint8_t *v, size_t len, int depth);
xmlNode *ms_xw_u64(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name, uint64_t v,
                   int depth);
xmlNode *ms_xw_time(ms_xw *w, xmlNode *parent, xmlNs *ns, const char *name, uint64_t ntp,
                    int depth);
void ms_xw_attr(ms_xw *w, xmlNode *el, const char *name, const char *value);
/* Closes a container: the indentation before its end tag. */
void ms_xw_close(ms_xw *w, xmlNode *el, int depth);
/* Serialises into out (NUL-terminated; *out_len excludes the NUL) and frees the
 * document. MS_ERR_BUFFER_TOO_SMALL sets *out_len to what is needed. */
ms_err ms_xw_finish(ms_xw *w, char *out, size_t cap, size_t *out_len);
void ms_xw_abort(ms_xw *w); /* wipes the text (keys in an enrolment) and frees */
/* Overwrites every text node of doc (before freeing a tree that held key material). */
void ms_xml_wipe_text(xmlDoc *doc);

/* Exclusive C14N 1.0 (no comments) of the subtree at root; *out is freed with xmlFree. */
ms_err ms_xml_exc_c14n(xmlDoc *doc, xmlNode *root, xmlChar **out, size_t *len);

/* ---- the certificate, shared by cert.c, package.c and enrolment.c ----------------- */

bool ms_kmsif_cert_check(const ms_kms_certificate *cert);
void ms_kmsif_cert_build(ms_xw *w, xmlNode *parent, xmlNs *ns,
                         const ms_kms_certificate *cert, int depth);
bool ms_kmsif_cert_read(ms_xp *p, const xmlNode *el, ms_kms_certificate *cert);

/* ---- package internals (tests) --------------------------------------------------- */

/* Recomputes the DigestValue and SignatureValue of a signed package under ink, keeping
 * everything else as it is: lets tests build packages that pass the signature but fail
 * a later check. The package must have the structure package_write produces. */
ms_err ms_kmsif_package_resign(char *out, size_t cap, size_t *out_len, const char *xml,
                               size_t len, const uint8_t ink[32]);

#endif
