/*
 * ms_mikey_print: a parsed MIKEY message as an indented tree (in the manner of a
 * protocol analyser) or as one JSON object. Both forms come from the same walk over
 * the message through one small emitter, so they always carry the same content: every
 * field with its number and, where a registry names it, its name; binary values as hex.
 */
#include <inttypes.h>
#include <string.h>

#include "mikeysakke/mikey.h"

/* ---- emitter ------------------------------------------------------------------------- */

#define MAX_DEPTH 16

typedef struct pr {
    FILE *f;
    bool json;
    int depth;
    bool first[MAX_DEPTH]; /* JSON: nothing written yet at this depth (no comma) */
} pr;

static void indent(pr *p)
{
    for (int i = 0; i < p->depth; i++)
        fputs("  ", p->f);
}

/* JSON string with the escapes RFC 8259 requires; non-ASCII octets as \u00XX so the
 * output is valid whatever the input. */
static void json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Starts a member (JSON: separator, indentation and key; tree: indentation). */
static void member(pr *p, const char *key)
{
    if (p->json) {
        if (!p->first[p->depth])
            fputc(',', p->f);
        p->first[p->depth] = false;
        fputc('\n', p->f);
        indent(p);
        if (key != NULL) {
            json_str(p->f, key, strlen(key));
            fputs(": ", p->f);
        }
    } else {
        indent(p);
    }
}

static void pr_open(pr *p, const char *key, const char *label, char bracket)
{
    member(p, key);
    if (p->json)
        fputc(bracket, p->f);
    else
        fprintf(p->f, "%s\n", label);
    if (p->depth + 1 < MAX_DEPTH) {
        p->depth++;
        p->first[p->depth] = true;
    }
}

static void obj_begin(pr *p, const char *key, const char *label) { pr_open(p, key, label, '{'); }
static void arr_begin(pr *p, const char *key, const char *label) { pr_open(p, key, label, '['); }

static void close_(pr *p, char bracket)
{
    bool empty = p->first[p->depth];
    if (p->depth > 0)
        p->depth--;
    if (p->json) {
        if (!empty) {
            fputc('\n', p->f);
            indent(p);
        }
        fputc(bracket, p->f);
    }
}

static void obj_end(pr *p) { close_(p, '}'); }
static void arr_end(pr *p) { close_(p, ']'); }

static void f_uint(pr *p, const char *key, const char *label, uint64_t v)
{
    member(p, key);
    if (p->json)
        fprintf(p->f, "%" PRIu64, v);
    else
        fprintf(p->f, "%s: %" PRIu64 "\n", label, v);
}

static void f_bool(pr *p, const char *key, const char *label, bool v)
{
    member(p, key);
    if (p->json)
        fputs(v ? "true" : "false", p->f);
    else
        fprintf(p->f, "%s: %d\n", label, v ? 1 : 0);
}

/* A number with its registry name: tree "Label: Name (v)", JSON key and key_name. */
static void f_named(pr *p, const char *key, const char *label, uint64_t v, const char *name)
{
    if (p->json) {
        char k[64];
        f_uint(p, key, label, v);
        snprintf(k, sizeof k, "%s_name", key);
        member(p, k);
        json_str(p->f, name, strlen(name));
    } else {
        member(p, key);
        fprintf(p->f, "%s: %s (%" PRIu64 ")\n", label, name, v);
    }
}

static void f_str(pr *p, const char *key, const char *label, const char *s)
{
    member(p, key);
    if (p->json)
        json_str(p->f, s, strlen(s));
    else
        fprintf(p->f, "%s: %s\n", label, s);
}

static void hex(FILE *f, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", d[i]);
}

static void f_hex(pr *p, const char *key, const char *label, const uint8_t *d, size_t n)
{
    member(p, key);
    if (p->json) {
        fputc('"', p->f);
        hex(p->f, d, n);
        fputc('"', p->f);
    } else {
        fprintf(p->f, "%s: ", label);
        if (n == 0)
            fputs("(empty)", p->f);
        hex(p->f, d, n);
        fputc('\n', p->f);
    }
}

static bool printable(const uint8_t *d, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (d[i] < 0x20 || d[i] > 0x7e)
            return false;
    return true;
}

/* Identity-like data: text when it is printable ASCII (tree and JSON "<key>_text"),
 * hex always in JSON, hex in the tree otherwise. */
static void f_data(pr *p, const char *key, const char *label, ms_mikey_span s)
{
    bool text = printable(s.data, s.len);
    if (p->json) {
        char k[64];
        snprintf(k, sizeof k, "%s_hex", key);
        f_hex(p, k, label, s.data, s.len);
        if (text) {
            snprintf(k, sizeof k, "%s_text", key);
            member(p, k);
            json_str(p->f, (const char *)s.data, s.len);
        }
    } else if (text) {
        member(p, key);
        fprintf(p->f, "%s: %.*s\n", label, (int)s.len, (const char *)s.data);
    } else {
        f_hex(p, key, label, s.data, s.len);
    }
}

/* ---- registry names ------------------------------------------------------------------ */

static const char *name_of(const char *const *names, size_t n, uint64_t v)
{
    return v < n && names[v] != NULL ? names[v] : "unknown";
}

#define NAME(table, v) name_of(table, sizeof table / sizeof table[0], (v))

static const char *const data_types[] = {
    "Pre-shared", "PSK ver msg", "Public key", "PK ver msg", "D-H init", "D-H resp",
    "Error", "DHHMAC init", "DHHMAC resp", "RSA-R I_MSG", "RSA-R R_MSG",
    "REQUEST_INIT_PSK", "REQUEST_INIT_PK", "REQUEST_RESP", "TRANSFER_INIT",
    "TRANSFER_RESP", "RESOLVE_INIT_PSK", "RESOLVE_INIT_PK", "RESOLVE_RESP",
    "REQUEST_KEY_PSK", "REQUEST_KEY_PKE", "REQUEST_KEY_RESP", "I_MESSAGE_1",
    "R_MESSAGE_1", "I_MESSAGE_2", "R_MESSAGE_2", "SAKKE msg",
};
static const char *const prf_names[] = {"MIKEY-1", "PRF-HMAC-SHA-256"};
static const char *const map_types[] = {"SRTP-ID", "Empty map", "GENERIC-ID"};
static const char *const prot_types[] = {"SRTP", "TESLA"};
static const char *const ts_types[] = {"NTP-UTC", "NTP", "COUNTER", "NTP-UTC-32"};
static const char *const id_types[] = {"NAI", "URI", "Byte string"};
static const char *const cert_types[] = {"X.509v3", "X.509v3 URL", "X.509v3 Sign",
                                         "X.509v3 Encr"};
static const char *const s_types[] = {"RSA/PKCS#1 v1.5", "RSA/PSS", "ECCSI"};
static const char *const sakke_params[] = {NULL, "Parameter Set 1"};
static const char *const id_schemes[] = {NULL, "tel URI with monthly keys",
                                         "3GPP MCX hashed UID"};
static const char *const v_algs[] = {"NULL", "HMAC-SHA-1-160", "HMAC-SHA-256-256"};
static const char *const ext_types[] = {"Vendor ID", "SDP IDs", "TESLA I-Key", "Key ID",
                                        "CSB_ID", "OMA BCAST", "SAKKE-to-self",
                                        "3GPP key parameters"};
static const char *const key_id_types[] = {"MBMS Key Domain ID", "MBMS Service Key ID",
                                           "MBMS Traffic/Transport Key ID"};
static const char *const sp_param_names[] = {
    "Encryption algorithm", "Session Encr. key length", "Authentication algorithm",
    "Session Auth. key length", "Session Salt key length", "SRTP Pseudo Random Function",
    "Key derivation rate", "SRTP encryption off/on", "SRTCP encryption off/on",
    "Sender's FEC order", "SRTP authentication off/on", "Authentication tag length",
    "SRTP prefix length", "ROC transmission rate", "SRTP Auth. algorithm",
    "SRTCP Auth. algorithm", "SRTP Session Auth. key len", "SRTCP Session Auth. key len",
    "SRTP Authentication tag len", "SRTCP Authentication tag len",
    "AEAD authentication tag length",
};
static const char *const sp_enc_algs[] = {"NULL", "AES-CM", "AES-F8", "SEED-CTR",
                                            "SEED-CCM", "SEED-GCM", "AES-GCM", "ARIA-CTR",
                                            "ARIA-GCM"};
static const char *const sp_auth_algs[] = {"NULL", "HMAC-SHA-1", "RCCm1", "RCCm2", "RCCm3"};
static const char *const sp_prfs[] = {"AES-CM", "SEED-CTR", "ARIA-CTR"};
static const char *const off_on[] = {"off", "on"};
static const char *const fec_orders[] = {"FEC-SRTP"};

/* Name of an SRTP policy value, or NULL when the parameter is a plain number. */
static const char *sp_value_name(uint8_t type, uint64_t v)
{
    switch (type) {
    case 0: return NAME(sp_enc_algs, v);
    case 2:
    case 14:
    case 15: return NAME(sp_auth_algs, v);
    case 5: return NAME(sp_prfs, v);
    case 7:
    case 8:
    case 10: return NAME(off_on, v);
    case 9: return NAME(fec_orders, v);
    default: return NULL;
    }
}

/* ---- NTP dates ----------------------------------------------------------------------- */

static bool leap(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* "YYYY-MM-DD hh:mm:ss.uuuuuu UTC" of an NTP 32.32 time (era 0, from 1900). */
static void ntp_date(char *buf, size_t cap, uint64_t ntp)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    uint64_t secs = ntp >> 32;
    uint64_t usec = ((ntp & 0xffffffffu) * 1000000u) >> 32;
    uint64_t days = secs / 86400, rem = secs % 86400;
    unsigned year = 1900, month = 0;
    while (days >= (leap(year) ? 366u : 365u)) {
        days -= leap(year) ? 366u : 365u;
        year++;
    }
    for (;;) {
        unsigned md = mdays[month] + (month == 1 && leap(year) ? 1u : 0u);
        if (days < md)
            break;
        days -= md;
        month++;
    }
    snprintf(buf, cap, "%04u-%02u-%02u %02u:%02u:%02u.%06u UTC", year, month + 1,
             (unsigned)days + 1, (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60),
             (unsigned)(rem % 60), (unsigned)usec);
}

/* ---- payloads ------------------------------------------------------------------------ */

static uint64_t be(const uint8_t *d, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | d[i];
    return v;
}

static void print_cs(pr *p, const ms_mikey_hdr *h, const ms_mikey_cs *cs, unsigned idx)
{
    char label[48];
    snprintf(label, sizeof label, "Crypto session %u", idx + 1);
    obj_begin(p, NULL, label);
    f_uint(p, "cs_id", "CS ID", cs->cs_id);
    f_named(p, "prot_type", "Protocol type", cs->prot_type, NAME(prot_types, cs->prot_type));
    unsigned np = cs->n_policies <= MS_MIKEY_MAX_POLICIES ? cs->n_policies : MS_MIKEY_MAX_POLICIES;
    if (p->json) {
        arr_begin(p, "policies", "Policies");
        for (unsigned i = 0; i < np; i++)
            f_uint(p, NULL, "Policy no", cs->policies[i]);
        arr_end(p);
    } else {
        member(p, NULL);
        fputs(np == 1 ? "Policy no:" : "Policy nos:", p->f);
        if (np == 0)
            fputs(" (none)", p->f);
        for (unsigned i = 0; i < np; i++)
            fprintf(p->f, " %u", cs->policies[i]);
        fputc('\n', p->f);
    }
    if (h->map_type == MS_MIKEY_MAP_SRTP_ID) {
        f_uint(p, "ssrc", "SSRC", cs->ssrc);
        f_uint(p, "roc", "ROC", cs->roc);
    } else {
        f_bool(p, "s", "S (ROC and SEQ present)", cs->has_roc);
        f_bool(p, "has_session_data", "Session data present", cs->has_session_data);
        if (cs->has_session_data) {
            f_uint(p, "ssrc", "SSRC", cs->ssrc);
            if (cs->has_roc) {
                f_uint(p, "roc", "ROC", cs->roc);
                f_uint(p, "seq", "SEQ", cs->seq);
            }
        }
        f_hex(p, "spi", "SPI", cs->spi.data, cs->spi.len);
    }
    obj_end(p);
}

static void print_hdr(pr *p, const ms_mikey_message *m)
{
    const ms_mikey_hdr *h = &m->hdr;
    obj_begin(p, "hdr", "HDR (Common Header)");
    f_uint(p, "version", "Version", h->version);
    f_named(p, "data_type", "Data type", h->data_type, NAME(data_types, h->data_type));
    uint8_t next = m->n_payloads > 0 ? m->payloads[0].type : MS_MIKEY_PT_LAST;
    f_named(p, "next_payload", "Next payload", next, ms_mikey_payload_name(next));
    f_bool(p, "v", "V (response expected)", h->v);
    f_named(p, "prf", "PRF func", h->prf, NAME(prf_names, h->prf));
    f_uint(p, "csb_id", "CSB ID", h->csb_id);
    char buf[16];
    snprintf(buf, sizeof buf, "%08" PRIx32, h->csb_id);
    f_str(p, "csb_id_hex", "CSB ID (hex)", buf);
    f_uint(p, "n_cs", "#CS", h->n_cs);
    f_named(p, "map_type", "CS ID map type", h->map_type, NAME(map_types, h->map_type));
    unsigned n = h->n_cs <= MS_MIKEY_MAX_CS ? h->n_cs : MS_MIKEY_MAX_CS;
    if (h->map_type == MS_MIKEY_MAP_SRTP_ID || h->map_type == MS_MIKEY_MAP_GENERIC_ID) {
        arr_begin(p, "cs", "CS ID map info");
        for (unsigned i = 0; i < n; i++)
            print_cs(p, h, &h->cs[i], i);
        arr_end(p);
    }
    obj_end(p);
}

static void print_sakke_fields(pr *p, uint8_t params, uint8_t scheme, ms_mikey_span data)
{
    f_named(p, "sakke_params", "SAKKE params", params, NAME(sakke_params, params));
    f_named(p, "id_scheme", "ID scheme", scheme, NAME(id_schemes, scheme));
    f_uint(p, "data_length", "SAKKE data length", data.len);
    /* Parameter set 1: Encapsulated Data = R (04 || x || y, 257 octets) || H (16). */
    if (params == MS_MIKEY_SAKKE_PARAMS_SET1 && data.len == MS_SAKKE_POINT_BYTES + 16 &&
        data.data[0] == 0x04) {
        obj_begin(p, "encapsulated_data", "Encapsulated data");
        f_hex(p, "R", "R (04 || x || y)", data.data, MS_SAKKE_POINT_BYTES);
        f_hex(p, "H", "H", data.data + MS_SAKKE_POINT_BYTES, 16);
        obj_end(p);
    } else {
        f_hex(p, "data", "SAKKE data", data.data, data.len);
    }
}

static void print_sp(pr *p, const ms_mikey_payload *pl)
{
    f_uint(p, "policy_no", "Policy no", pl->u.sp.policy_no);
    f_named(p, "prot_type", "Protocol type", pl->u.sp.prot_type,
            NAME(prot_types, pl->u.sp.prot_type));
    f_uint(p, "params_length", "Policy param length", pl->u.sp.params.len);
    bool srtp = pl->u.sp.prot_type == MS_MIKEY_PROT_SRTP;
    arr_begin(p, "params", "Policy parameters");
    size_t pos = 0;
    uint8_t type;
    ms_mikey_span v;
    int r;
    while ((r = ms_mikey_sp_next(pl, &pos, &type, &v)) == 1) {
        const char *tname = srtp ? NAME(sp_param_names, type) : "unknown";
        if (p->json) {
            obj_begin(p, NULL, "");
            f_named(p, "type", "Type", type, tname);
            if (v.len >= 1 && v.len <= 8) {
                uint64_t num = be(v.data, v.len);
                const char *vn = srtp ? sp_value_name(type, num) : NULL;
                if (vn != NULL)
                    f_named(p, "value", "Value", num, vn);
                else
                    f_uint(p, "value", "Value", num);
            }
            f_hex(p, "value_hex", "Value", v.data, v.len);
            obj_end(p);
        } else {
            char label[96];
            if (strcmp(tname, "unknown") == 0)
                snprintf(label, sizeof label, "Type %u", type);
            else
                snprintf(label, sizeof label, "%s", tname);
            if (v.len >= 1 && v.len <= 8) {
                uint64_t num = be(v.data, v.len);
                const char *vn = srtp ? sp_value_name(type, num) : NULL;
                if (vn != NULL)
                    f_named(p, NULL, label, num, vn);
                else
                    f_uint(p, NULL, label, num);
            } else {
                f_hex(p, NULL, label, v.data, v.len);
            }
        }
    }
    arr_end(p);
    if (r < 0) /* only for a hand-made model; the parser refuses these */
        f_hex(p, "params_malformed", "Malformed policy params", pl->u.sp.params.data,
              pl->u.sp.params.len);
}

/* TS 33.180 E.6 key parameters: the framing of the protected payload (vendor layout). */
static void print_key_params(pr *p, ms_mikey_span d)
{
    const uint8_t *b = d.data;
    if (d.len < 35 || (size_t)((b[33] << 8) | b[34]) != d.len - 35) {
        f_hex(p, "data", "Data (not the expected protected payload framing)", b, d.len);
        return;
    }
    obj_begin(p, "protected_payload", "Protected payload");
    f_uint(p, "message_type", "Message type", b[0]);
    f_hex(p, "date_time", "Date/time", b + 1, 5);
    f_uint(p, "payload_id", "Payload ID", be(b + 6, 4));
    f_uint(p, "payload_seq", "Payload sequence number", b[10]);
    f_named(p, "algorithm", "Algorithm", b[11], b[11] == 1 ? "AES-128-GCM" : "unknown");
    f_hex(p, "iv", "IV", b + 12, 16);
    f_uint(p, "dppk_id", "DPPK-ID", be(b + 28, 4));
    f_uint(p, "payload_type", "Payload type", b[32]);
    f_uint(p, "payload_length", "Payload length", d.len - 35);
    f_hex(p, "ciphertext", "Ciphertext and tag", b + 35, d.len - 35);
    obj_end(p);
}

static void print_ext(pr *p, const ms_mikey_payload *pl)
{
    ms_mikey_span d = pl->u.ext.data;
    f_named(p, "ext_type", "Type", pl->u.ext.type, NAME(ext_types, pl->u.ext.type));
    f_uint(p, "data_length", "Length", d.len);
    switch (pl->u.ext.type) {
    case MS_MIKEY_EXT_SAKKE_TO_SELF:
        /* A whole SAKKE payload: next payload (ignored), params, scheme, length, data. */
        if (d.len >= 5 && (size_t)((d.data[3] << 8) | d.data[4]) == d.len - 5) {
            obj_begin(p, "sakke", "SAKKE payload (to self)");
            f_uint(p, "next_payload", "Next payload (ignored)", d.data[0]);
            ms_mikey_span inner = {d.data + 5, d.len - 5};
            print_sakke_fields(p, d.data[1], d.data[2], inner);
            obj_end(p);
        } else {
            f_hex(p, "data", "Data (malformed inner SAKKE payload)", d.data, d.len);
        }
        break;
    case MS_MIKEY_EXT_KEY_PARAMS:
        print_key_params(p, d);
        break;
    case MS_MIKEY_EXT_KEY_ID: {
        /* RFC 4563: Key ID Type | Key ID Length | Key ID, repeated. */
        size_t pos = 0;
        bool ok = true;
        for (size_t q = 0; q < d.len;) {
            if (d.len - q < 2 || d.data[q + 1] > d.len - q - 2) {
                ok = false;
                break;
            }
            q += 2 + (size_t)d.data[q + 1];
        }
        if (!ok) {
            f_hex(p, "data", "Data (malformed Key ID list)", d.data, d.len);
            break;
        }
        arr_begin(p, "key_ids", "Key IDs");
        while (pos < d.len) {
            uint8_t t = d.data[pos], l = d.data[pos + 1];
            obj_begin(p, NULL, "Key ID");
            f_named(p, "type", "Key ID type", t, NAME(key_id_types, t));
            f_hex(p, "value", "Key ID", d.data + pos + 2, l);
            obj_end(p);
            pos += 2 + (size_t)l;
        }
        arr_end(p);
        break;
    }
    default:
        f_data(p, "data", "Data", d);
        break;
    }
}

static void print_payload(pr *p, const ms_mikey_payload *pl, uint8_t next)
{
    char label[96];
    const char *name = ms_mikey_payload_name(pl->type);
    if (pl->type == MS_MIKEY_PT_IDR)
        snprintf(label, sizeof label, "IDR (%s), offset %zu, %zu octets",
                 ms_mikey_role_name(pl->u.idr.role), pl->offset, pl->len);
    else
        snprintf(label, sizeof label, "%s, offset %zu, %zu octets", name, pl->offset, pl->len);
    obj_begin(p, NULL, label);
    if (p->json) {
        f_named(p, "type", "Payload", pl->type, name);
        f_uint(p, "offset", "Offset", pl->offset);
        f_uint(p, "length", "Length", pl->len);
    }
    if (pl->type != MS_MIKEY_PT_SIGN)
        f_named(p, "next_payload", "Next payload", next, ms_mikey_payload_name(next));
    char buf[64];
    switch (pl->type) {
    case MS_MIKEY_PT_T:
        f_named(p, "ts_type", "TS type", pl->u.t.ts_type, NAME(ts_types, pl->u.t.ts_type));
        if (pl->u.t.ts_type == MS_MIKEY_TS_COUNTER) {
            f_uint(p, "counter", "Counter", pl->u.t.value);
        } else {
            snprintf(buf, sizeof buf, "%016" PRIx64, pl->u.t.value);
            f_str(p, "ts_value_hex", "TS value", buf);
            f_uint(p, "ntp_seconds", "NTP seconds", pl->u.t.value >> 32);
            f_uint(p, "ntp_fraction", "NTP fraction", pl->u.t.value & 0xffffffffu);
            ntp_date(buf, sizeof buf, pl->u.t.value);
            f_str(p, "utc", "Date", buf);
        }
        break;
    case MS_MIKEY_PT_RAND:
        f_uint(p, "rand_length", "RAND length", pl->u.rand.len);
        f_hex(p, "rand", "RAND", pl->u.rand.data, pl->u.rand.len);
        break;
    case MS_MIKEY_PT_ID:
        f_named(p, "id_type", "ID type", pl->u.id.id_type, NAME(id_types, pl->u.id.id_type));
        f_uint(p, "id_length", "ID length", pl->u.id.id.len);
        f_data(p, "id", "ID", pl->u.id.id);
        break;
    case MS_MIKEY_PT_CERT:
        f_named(p, "cert_type", "Cert type", pl->u.id.id_type,
                NAME(cert_types, pl->u.id.id_type));
        f_uint(p, "cert_length", "Cert length", pl->u.id.id.len);
        f_hex(p, "cert", "Certificate", pl->u.id.id.data, pl->u.id.id.len);
        break;
    case MS_MIKEY_PT_IDR:
        f_named(p, "role", "ID role", pl->u.idr.role, ms_mikey_role_name(pl->u.idr.role));
        f_named(p, "id_type", "ID type", pl->u.idr.id_type, NAME(id_types, pl->u.idr.id_type));
        f_uint(p, "id_length", "ID length", pl->u.idr.id.len);
        f_data(p, "id", "ID", pl->u.idr.id);
        break;
    case MS_MIKEY_PT_SP:
        print_sp(p, pl);
        break;
    case MS_MIKEY_PT_SAKKE:
        print_sakke_fields(p, pl->u.sakke.params, pl->u.sakke.id_scheme, pl->u.sakke.data);
        break;
    case MS_MIKEY_PT_SIGN: {
        ms_mikey_span s = pl->u.sign.sig;
        f_named(p, "s_type", "S type", pl->u.sign.s_type, NAME(s_types, pl->u.sign.s_type));
        f_uint(p, "sig_length", "Signature length", s.len);
        /* ECCSI (RFC 6507 3.3): r (32) || s (32) || PVT (65). */
        if (pl->u.sign.s_type == MS_MIKEY_STYPE_ECCSI && s.len == MS_ECCSI_SIG_BYTES &&
            s.data != NULL) {
            obj_begin(p, "eccsi", "ECCSI signature");
            f_hex(p, "r", "r", s.data, MS_ECCSI_SCALAR_BYTES);
            f_hex(p, "s", "s", s.data + MS_ECCSI_SCALAR_BYTES, MS_ECCSI_SCALAR_BYTES);
            f_hex(p, "pvt", "PVT", s.data + 2 * MS_ECCSI_SCALAR_BYTES, MS_ECCSI_POINT_BYTES);
            obj_end(p);
        } else if (s.data != NULL) {
            f_hex(p, "signature", "Signature", s.data, s.len);
        }
        break;
    }
    case MS_MIKEY_PT_GENERAL_EXT:
        print_ext(p, pl);
        break;
    case MS_MIKEY_PT_V:
        f_named(p, "auth_alg", "Auth alg", pl->u.v.auth_alg, NAME(v_algs, pl->u.v.auth_alg));
        if (pl->u.v.mac.data != NULL)
            f_hex(p, "mac", "MAC", pl->u.v.mac.data, pl->u.v.mac.len);
        break;
    case MS_MIKEY_PT_ERR:
        f_named(p, "error_no", "Error no", pl->u.err.error_no,
                ms_mikey_errno_name(pl->u.err.error_no));
        break;
    default:
        break;
    }
    obj_end(p);
}

ms_err ms_mikey_print(FILE *out, const ms_mikey_message *msg, bool json)
{
    if (out == NULL || msg == NULL)
        return MS_ERR_ARG;
    pr p = {.f = out, .json = json, .depth = 0};
    p.first[0] = true;
    size_t n = msg->n_payloads <= MS_MIKEY_MAX_PAYLOADS ? msg->n_payloads : MS_MIKEY_MAX_PAYLOADS;
    size_t total = n > 0 ? msg->payloads[n - 1].offset + msg->payloads[n - 1].len : 0;

    if (json) {
        fputc('{', out);
        p.depth = 1;
        p.first[1] = true;
        f_uint(&p, "length", "Length", total);
        f_uint(&p, "signed_len", "Signed length", msg->signed_len);
    } else {
        fprintf(out, "MIKEY message");
        if (total > 0)
            fprintf(out, ", %zu octets", total);
        if (msg->signed_len > 0)
            fprintf(out, ", %zu signed", msg->signed_len);
        fputc('\n', out);
        p.depth = 1;
    }
    print_hdr(&p, msg);
    /* The tree lists payloads next to HDR, as an analyser does; JSON as an array. */
    if (json)
        arr_begin(&p, "payloads", "Payloads");
    for (size_t i = 0; i < n; i++)
        print_payload(&p, &msg->payloads[i],
                      i + 1 < n ? msg->payloads[i + 1].type : MS_MIKEY_PT_LAST);
    if (json)
        arr_end(&p);
    if (json)
        fputs("\n}\n", out);
    fflush(out);
    return ferror(out) ? MS_ERR_IO : MS_OK;
}
