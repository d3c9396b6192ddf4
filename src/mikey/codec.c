/*
 * MIKEY payload codec: the HDR and the payloads MIKEY-SAKKE uses (RFC 3830, RFC 6043,
 * RFC 4563, RFC 6509, TS 33.180), parsed into ms_mikey_message and encoded back.
 *
 * The parser trusts nothing: every read is preceded by a bounds check against the
 * octets left, lengths are compared by subtraction (never by an addition that could
 * wrap), and every failure names the payload, the offset of the field at fault and
 * why. The encoder refuses what the wire format cannot carry instead of truncating.
 */
#include <stdarg.h>
#include <string.h>

#include "mikeysakke/mikey.h"
#include "util/bytes.h"

/* ---- names --------------------------------------------------------------------------- */

const char *ms_mikey_payload_name(int type)
{
    switch (type) {
    case MS_MIKEY_PT_LAST: return "Last payload";
    case MS_MIKEY_PT_KEMAC: return "KEMAC";
    case MS_MIKEY_PT_PKE: return "PKE";
    case MS_MIKEY_PT_DH: return "DH";
    case MS_MIKEY_PT_SIGN: return "SIGN";
    case MS_MIKEY_PT_T: return "T";
    case MS_MIKEY_PT_ID: return "ID";
    case MS_MIKEY_PT_CERT: return "CERT";
    case MS_MIKEY_PT_CHASH: return "CHASH";
    case MS_MIKEY_PT_V: return "V";
    case MS_MIKEY_PT_SP: return "SP";
    case MS_MIKEY_PT_RAND: return "RAND";
    case MS_MIKEY_PT_ERR: return "ERR";
    case 13: return "TR";
    case MS_MIKEY_PT_IDR: return "IDR";
    case 15: return "RANDR";
    case 16: return "TP";
    case 17: return "TICKET";
    case MS_MIKEY_PT_KEY_DATA: return "Key data";
    case MS_MIKEY_PT_GENERAL_EXT: return "GENERAL-EXT";
    case 22: return "IBAKE";
    case 23: return "ESK";
    case 24: return "SK";
    case 25: return "ECCPT";
    case MS_MIKEY_PT_SAKKE: return "SAKKE";
    case MS_MIKEY_PT_HDR: return "HDR";
    default: return "unknown";
    }
}

const char *ms_mikey_role_name(int role)
{
    switch (role) {
    case MS_MIKEY_ROLE_INITIATOR: return "IDRi";
    case MS_MIKEY_ROLE_RESPONDER: return "IDRr";
    case MS_MIKEY_ROLE_KMS: return "IDRkms";
    case MS_MIKEY_ROLE_PSK: return "IDRpsk";
    case MS_MIKEY_ROLE_APP: return "IDRapp";
    case MS_MIKEY_ROLE_KMS_INITIATOR: return "IDRkmsi";
    case MS_MIKEY_ROLE_KMS_RESPONDER: return "IDRkmsr";
    case MS_MIKEY_ROLE_UID_INITIATOR: return "IDRuidi";
    case MS_MIKEY_ROLE_UID_RESPONDER: return "IDRuidr";
    default: return "unknown";
    }
}

const char *ms_mikey_errno_name(int error_no)
{
    static const char *const names[] = {
        "Auth failure", "Invalid TS", "Invalid PRF", "Invalid MAC", "Invalid EA",
        "Invalid HA", "Invalid DH", "Invalid ID", "Invalid Cert", "Invalid SP",
        "Invalid SPpar", "Invalid DT", "Unspecified error", "Unsupported message type",
        "Invalid TICKET", "Invalid TPpar",
    };
    if (error_no < 0 || (size_t)error_no >= sizeof names / sizeof names[0])
        return "unknown";
    return names[error_no];
}

/* ---- helpers ------------------------------------------------------------------------- */


/* MAC length of a V payload's authentication algorithm (RFC 3830 6.2, RFC 6043 6.2):
 * -1 for algorithms we do not know. */
static int v_mac_len(uint8_t alg)
{
    switch (alg) {
    case 0: return 0;  /* NULL */
    case 1: return 20; /* HMAC-SHA-1-160 */
    case 2: return 32; /* HMAC-SHA-256-256 */
    default: return -1;
    }
}

/* True when SP policy params are a whole number of Type | Length | Value items. On
 * failure *bad is the offset (inside params) of the item that runs past the end. */
static bool sp_tlvs_ok(const uint8_t *p, size_t len, size_t *bad)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos < 2 || p[pos + 1] > len - pos - 2) {
            *bad = pos;
            return false;
        }
        pos += 2 + (size_t)p[pos + 1];
    }
    return true;
}

/* ---- parser -------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *msg;
    size_t len;
    ms_mikey_diag *diag;
    int payload; /* payload being parsed, for diagnostics */
} reader;

__attribute__((format(printf, 4, 5))) static ms_err fail(reader *r, ms_err err, size_t offset,
                                                        const char *fmt, ...)
{
    if (r->diag != NULL) {
        va_list ap;
        r->diag->payload = r->payload;
        r->diag->offset = offset;
        va_start(ap, fmt);
        vsnprintf(r->diag->detail, sizeof r->diag->detail, fmt, ap);
        va_end(ap);
    }
    return err;
}

static size_t left(const reader *r, size_t off) { return off <= r->len ? r->len - off : 0; }

/* A fixed-size field of n octets at off must be inside the message. */
static ms_err need(reader *r, size_t off, size_t n, const char *field)
{
    if (n <= left(r, off))
        return MS_OK;
    return fail(r, MS_ERR_MIKEY_MALFORMED, off,
                "%s %s needs %zu octets at offset %zu, but only %zu remain",
                ms_mikey_payload_name(r->payload), field, n, off, left(r, off));
}

/* Variable data of n octets at off, announced by a length field at len_off. */
static ms_err need_data(reader *r, size_t len_off, size_t off, size_t n, const char *field)
{
    if (n <= left(r, off))
        return MS_OK;
    return fail(r, MS_ERR_MIKEY_MALFORMED, len_off,
                "%s %s length %zu runs past the end of the message (%zu octets left)",
                ms_mikey_payload_name(r->payload), field, n, left(r, off));
}

static ms_mikey_span span_at(const reader *r, size_t off, size_t n)
{
    ms_mikey_span s = {n ? r->msg + off : NULL, n};
    return s;
}

#define TRY(expr)                  \
    do {                           \
        ms_err e_ = (expr);        \
        if (e_ != MS_OK)           \
            return e_;             \
    } while (0)

static ms_err parse_generic_cs(reader *r, ms_mikey_cs *cs, size_t *pos, unsigned idx)
{
    size_t p = *pos;
    TRY(need(r, p, 3, "GENERIC-ID crypto session block"));
    cs->cs_id = r->msg[p];
    cs->prot_type = r->msg[p + 1];
    cs->has_roc = (r->msg[p + 2] & 0x80) != 0;
    unsigned np = r->msg[p + 2] & 0x7f;
    if (np > MS_MIKEY_MAX_POLICIES)
        return fail(r, MS_ERR_MIKEY_UNSUPPORTED, p + 2,
                    "HDR crypto session %u lists %u policies; at most %d are supported", idx + 1,
                    np, MS_MIKEY_MAX_POLICIES);
    cs->n_policies = (uint8_t)np;
    p += 3;
    TRY(need(r, p, np, "GENERIC-ID policy list"));
    memcpy(cs->policies, r->msg + p, np);
    p += np;
    TRY(need(r, p, 2, "GENERIC-ID session data length"));
    size_t sd_off = p;
    size_t sd_len = ms_load_be16(r->msg + p);
    p += 2;
    TRY(need_data(r, sd_off, p, sd_len, "GENERIC-ID session data"));
    if (sd_len > 0) {
        /* Session data is defined only for SRTP: SSRC [ROC SEQ], ROC/SEQ iff S = 1. */
        if (cs->prot_type != MS_MIKEY_PROT_SRTP)
            return fail(r, MS_ERR_MIKEY_UNSUPPORTED, sd_off,
                        "HDR crypto session %u carries session data for protocol type %u, "
                        "which is not supported",
                        idx + 1, cs->prot_type);
        size_t want = cs->has_roc ? 10 : 4;
        if (sd_len != want)
            return fail(r, MS_ERR_MIKEY_MALFORMED, sd_off,
                        "HDR crypto session %u SRTP session data length is %zu, but S = %d "
                        "requires %zu",
                        idx + 1, sd_len, cs->has_roc ? 1 : 0, want);
        cs->has_session_data = true;
        cs->ssrc = ms_load_be32(r->msg + p);
        if (cs->has_roc) {
            cs->roc = ms_load_be32(r->msg + p + 4);
            cs->seq = ms_load_be16(r->msg + p + 8);
        }
        p += sd_len;
    }
    TRY(need(r, p, 1, "GENERIC-ID SPI length"));
    size_t spi_off = p;
    size_t spi_len = r->msg[p];
    p += 1;
    TRY(need_data(r, spi_off, p, spi_len, "GENERIC-ID SPI"));
    cs->spi = span_at(r, p, spi_len);
    p += spi_len;
    *pos = p;
    return MS_OK;
}

static ms_err parse_hdr(reader *r, ms_mikey_hdr *h, size_t *pos, uint8_t *next)
{
    r->payload = MS_MIKEY_PT_HDR;
    TRY(need(r, 0, 10, "fixed part"));
    const uint8_t *m = r->msg;
    h->version = m[0];
    h->data_type = m[1];
    *next = m[2];
    h->v = (m[3] & 0x80) != 0;
    h->prf = m[3] & 0x7f;
    h->csb_id = ms_load_be32(m + 4);
    h->n_cs = m[8];
    h->map_type = m[9];
    if (h->n_cs > MS_MIKEY_MAX_CS)
        return fail(r, MS_ERR_MIKEY_UNSUPPORTED, 8,
                    "HDR #CS is %u; at most %d crypto sessions are supported", h->n_cs,
                    MS_MIKEY_MAX_CS);
    size_t p = 10;
    switch (h->map_type) {
    case MS_MIKEY_MAP_SRTP_ID:
        for (unsigned i = 0; i < h->n_cs; i++) {
            TRY(need(r, p, 9, "SRTP-ID map entry"));
            ms_mikey_cs *cs = &h->cs[i];
            cs->cs_id = (uint8_t)(i + 1);
            cs->prot_type = MS_MIKEY_PROT_SRTP;
            cs->n_policies = 1;
            cs->policies[0] = m[p];
            cs->ssrc = ms_load_be32(m + p + 1);
            cs->has_roc = true;
            cs->roc = ms_load_be32(m + p + 5);
            p += 9;
        }
        break;
    case MS_MIKEY_MAP_EMPTY:
        break; /* RFC 4563: policy information is conveyed outside MIKEY, no map info */
    case MS_MIKEY_MAP_GENERIC_ID:
        for (unsigned i = 0; i < h->n_cs; i++)
            TRY(parse_generic_cs(r, &h->cs[i], &p, i));
        break;
    default:
        return fail(r, MS_ERR_MIKEY_UNSUPPORTED, 9, "HDR CS ID map type %u is not supported",
                    h->map_type);
    }
    *pos = p;
    return MS_OK;
}

/* Parses the payload of type pl->type at *pos; *next receives its next-payload field
 * (0 for SIGN, which has none). */
static ms_err parse_payload(reader *r, ms_mikey_payload *pl, size_t *pos, uint8_t *next)
{
    const uint8_t *m = r->msg;
    size_t p = *pos;
    size_t n;
    r->payload = pl->type;
    pl->offset = p;
    if (pl->type != MS_MIKEY_PT_SIGN) {
        TRY(need(r, p, 1, "next-payload field"));
        *next = m[p];
        p++;
    } else {
        *next = MS_MIKEY_PT_LAST;
    }
    switch (pl->type) {
    case MS_MIKEY_PT_T: {
        TRY(need(r, p, 1, "TS type"));
        pl->u.t.ts_type = m[p];
        size_t ts_off = p;
        p++;
        switch (pl->u.t.ts_type) {
        case MS_MIKEY_TS_NTP_UTC:
        case MS_MIKEY_TS_NTP:
            TRY(need(r, p, 8, "TS value"));
            pl->u.t.value = ((uint64_t)ms_load_be32(m + p) << 32) | ms_load_be32(m + p + 4);
            p += 8;
            break;
        case MS_MIKEY_TS_COUNTER:
            TRY(need(r, p, 4, "TS value"));
            pl->u.t.value = ms_load_be32(m + p);
            p += 4;
            break;
        case MS_MIKEY_TS_NTP_UTC_32:
            TRY(need(r, p, 4, "TS value"));
            pl->u.t.value = (uint64_t)ms_load_be32(m + p) << 32;
            p += 4;
            break;
        default:
            return fail(r, MS_ERR_MIKEY_UNSUPPORTED, ts_off, "T TS type %u is not supported",
                        pl->u.t.ts_type);
        }
        break;
    }
    case MS_MIKEY_PT_RAND:
        TRY(need(r, p, 1, "RAND length"));
        n = m[p];
        TRY(need_data(r, p, p + 1, n, "RAND"));
        pl->u.rand = span_at(r, p + 1, n);
        p += 1 + n;
        break;
    case MS_MIKEY_PT_ID:
    case MS_MIKEY_PT_CERT:
        TRY(need(r, p, 3, pl->type == MS_MIKEY_PT_ID ? "ID type and length" :
                                                          "Cert type and length"));
        pl->u.id.id_type = m[p];
        n = ms_load_be16(m + p + 1);
        TRY(need_data(r, p + 1, p + 3, n, pl->type == MS_MIKEY_PT_ID ? "ID data" :
                                                                         "Cert data"));
        pl->u.id.id = span_at(r, p + 3, n);
        p += 3 + n;
        break;
    case MS_MIKEY_PT_IDR:
        TRY(need(r, p, 4, "role, type and length"));
        pl->u.idr.role = m[p];
        pl->u.idr.id_type = m[p + 1];
        n = ms_load_be16(m + p + 2);
        TRY(need_data(r, p + 2, p + 4, n, "ID data"));
        pl->u.idr.id = span_at(r, p + 4, n);
        p += 4 + n;
        break;
    case MS_MIKEY_PT_SP: {
        TRY(need(r, p, 4, "policy number, protocol type and length"));
        pl->u.sp.policy_no = m[p];
        pl->u.sp.prot_type = m[p + 1];
        n = ms_load_be16(m + p + 2);
        TRY(need_data(r, p + 2, p + 4, n, "policy param"));
        size_t bad;
        if (!sp_tlvs_ok(m + p + 4, n, &bad))
            return fail(r, MS_ERR_MIKEY_MALFORMED, p + 4 + bad,
                        "SP policy parameter at offset %zu runs past the end of the "
                        "%zu-octet parameter list",
                        p + 4 + bad, n);
        pl->u.sp.params = span_at(r, p + 4, n);
        p += 4 + n;
        break;
    }
    case MS_MIKEY_PT_SAKKE:
        TRY(need(r, p, 4, "params, ID scheme and length"));
        pl->u.sakke.params = m[p];
        pl->u.sakke.id_scheme = m[p + 1];
        n = ms_load_be16(m + p + 2);
        TRY(need_data(r, p + 2, p + 4, n, "data"));
        pl->u.sakke.data = span_at(r, p + 4, n);
        p += 4 + n;
        break;
    case MS_MIKEY_PT_SIGN:
        TRY(need(r, p, 2, "S type and signature length"));
        pl->u.sign.s_type = m[p] >> 4;
        n = ((size_t)(m[p] & 0x0f) << 8) | m[p + 1];
        TRY(need_data(r, p, p + 2, n, "signature"));
        pl->u.sign.sig = span_at(r, p + 2, n);
        p += 2 + n;
        break;
    case MS_MIKEY_PT_GENERAL_EXT:
        TRY(need(r, p, 3, "type and length"));
        pl->u.ext.type = m[p];
        n = ms_load_be16(m + p + 1);
        TRY(need_data(r, p + 1, p + 3, n, "data"));
        pl->u.ext.data = span_at(r, p + 3, n);
        p += 3 + n;
        break;
    case MS_MIKEY_PT_V: {
        TRY(need(r, p, 1, "auth alg"));
        pl->u.v.auth_alg = m[p];
        int ml = v_mac_len(m[p]);
        if (ml < 0)
            return fail(r, MS_ERR_MIKEY_UNSUPPORTED, p, "V auth alg %u is not supported",
                        m[p]);
        TRY(need(r, p + 1, (size_t)ml, "MAC"));
        pl->u.v.mac = span_at(r, p + 1, (size_t)ml);
        p += 1 + (size_t)ml;
        break;
    }
    case MS_MIKEY_PT_ERR:
        TRY(need(r, p, 3, "error number and reserved field"));
        pl->u.err.error_no = m[p];
        p += 3;
        break;
    default:
        /* Caught by the caller before we get here. */
        return fail(r, MS_ERR_MIKEY_UNSUPPORTED, *pos, "payload type %u is not supported",
                    pl->type);
    }
    pl->len = p - *pos;
    *pos = p;
    return MS_OK;
}

static bool parsable_type(uint8_t t)
{
    switch (t) {
    case MS_MIKEY_PT_SIGN:
    case MS_MIKEY_PT_T:
    case MS_MIKEY_PT_ID:
    case MS_MIKEY_PT_CERT:
    case MS_MIKEY_PT_V:
    case MS_MIKEY_PT_SP:
    case MS_MIKEY_PT_RAND:
    case MS_MIKEY_PT_ERR:
    case MS_MIKEY_PT_IDR:
    case MS_MIKEY_PT_GENERAL_EXT:
    case MS_MIKEY_PT_SAKKE:
        return true;
    default:
        return false;
    }
}

ms_err ms_mikey_parse(ms_mikey_message *out, const uint8_t *msg, size_t len, ms_mikey_diag *diag)
{
    reader r = {msg, len, diag, MS_MIKEY_PT_HDR};
    if (diag != NULL)
        memset(diag, 0, sizeof *diag);
    if (out == NULL || (msg == NULL && len > 0))
        return fail(&r, MS_ERR_ARG, 0, "no message to parse");
    memset(out, 0, sizeof *out);
    if (len > MS_MIKEY_MAX_MESSAGE)
        return fail(&r, MS_ERR_MIKEY_UNSUPPORTED, MS_MIKEY_MAX_MESSAGE,
                    "message of %zu octets is longer than the %d supported", len,
                    MS_MIKEY_MAX_MESSAGE);

    size_t pos = 0;
    uint8_t next;
    TRY(parse_hdr(&r, &out->hdr, &pos, &next));
    int prev = MS_MIKEY_PT_HDR;
    size_t prev_next_off = 2; /* offset of the next-payload field announcing `next` */

    while (next != MS_MIKEY_PT_LAST) {
        r.payload = next;
        if (pos == len)
            return fail(&r, MS_ERR_MIKEY_MALFORMED, pos,
                        "%s announces a %s payload (type %u) at offset %zu, but the message "
                        "ends there",
                        ms_mikey_payload_name(prev), ms_mikey_payload_name(next), next, pos);
        if (!parsable_type(next))
            return fail(&r, MS_ERR_MIKEY_UNSUPPORTED, pos,
                        "payload type %u (%s) at offset %zu is not supported (announced at "
                        "offset %zu)",
                        next, ms_mikey_payload_name(next), pos, prev_next_off);
        if (out->n_payloads == MS_MIKEY_MAX_PAYLOADS)
            return fail(&r, MS_ERR_MIKEY_UNSUPPORTED, pos,
                        "more than %d payloads after HDR are not supported",
                        MS_MIKEY_MAX_PAYLOADS);
        ms_mikey_payload *pl = &out->payloads[out->n_payloads];
        pl->type = next;
        prev_next_off = pos;
        TRY(parse_payload(&r, pl, &pos, &next));
        out->n_payloads++;
        prev = pl->type;
        if (pl->type == MS_MIKEY_PT_SIGN) {
            out->signed_len = pl->offset + 2;
            if (pos != len)
                return fail(&r, MS_ERR_MIKEY_MALFORMED, pos,
                            "%zu octets follow the SIGN payload, which must be last",
                            len - pos);
        }
    }
    if (pos != len) {
        r.payload = prev;
        return fail(&r, MS_ERR_MIKEY_MALFORMED, pos,
                    "%zu trailing octets after the last payload (%s) at offset %zu",
                    len - pos, ms_mikey_payload_name(prev), pos);
    }
    return MS_OK;
}

/* ---- encoder ------------------------------------------------------------------------- */

/* Writes while the output fits and counts always, so one pass gives the size needed. */
typedef struct writer {
    uint8_t *out;
    size_t cap;
    size_t pos;
} writer;

static void put(writer *w, const void *src, size_t n)
{
    /* src NULL writes zeros (SIGN/V place holders). */
    if (w->out != NULL && n <= w->cap && w->pos <= w->cap - n) {
        if (src != NULL && n > 0)
            memcpy(w->out + w->pos, src, n);
        else if (n > 0)
            memset(w->out + w->pos, 0, n);
    }
    w->pos += n;
}

static void put8(writer *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(w, &b, 1);
}

static void put16(writer *w, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put32(writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

/* A span to copy: bounded length, and data present whenever len > 0. */
static bool span_ok(const ms_mikey_span *s, size_t max)
{
    return s->len <= max && (s->len == 0 || s->data != NULL);
}

static ms_err encode_hdr(writer *w, const ms_mikey_hdr *h, uint8_t next)
{
    if (h->prf > 0x7f || h->n_cs > MS_MIKEY_MAX_CS)
        return MS_ERR_ARG;
    put8(w, h->version);
    put8(w, h->data_type);
    put8(w, next);
    put8(w, (h->v ? 0x80u : 0) | h->prf);
    put32(w, h->csb_id);
    put8(w, h->n_cs);
    put8(w, h->map_type);
    switch (h->map_type) {
    case MS_MIKEY_MAP_SRTP_ID:
        /* cs_id, prot_type and has_roc are implied by this map type. */
        for (unsigned i = 0; i < h->n_cs; i++) {
            const ms_mikey_cs *cs = &h->cs[i];
            if (cs->n_policies != 1)
                return MS_ERR_ARG;
            put8(w, cs->policies[0]);
            put32(w, cs->ssrc);
            put32(w, cs->roc);
        }
        break;
    case MS_MIKEY_MAP_EMPTY:
        break;
    case MS_MIKEY_MAP_GENERIC_ID:
        for (unsigned i = 0; i < h->n_cs; i++) {
            const ms_mikey_cs *cs = &h->cs[i];
            if (cs->n_policies > MS_MIKEY_MAX_POLICIES || !span_ok(&cs->spi, 255))
                return MS_ERR_ARG;
            if (cs->has_session_data && cs->prot_type != MS_MIKEY_PROT_SRTP)
                return MS_ERR_ARG; /* only SRTP session data has a defined layout */
            put8(w, cs->cs_id);
            put8(w, cs->prot_type);
            put8(w, (cs->has_roc ? 0x80u : 0) | cs->n_policies);
            put(w, cs->policies, cs->n_policies);
            if (cs->has_session_data) {
                put16(w, cs->has_roc ? 10 : 4);
                put32(w, cs->ssrc);
                if (cs->has_roc) {
                    put32(w, cs->roc);
                    put16(w, cs->seq);
                }
            } else {
                put16(w, 0);
            }
            put8(w, (unsigned)cs->spi.len);
            put(w, cs->spi.data, cs->spi.len);
        }
        break;
    default:
        return MS_ERR_ARG;
    }
    return MS_OK;
}

static ms_err encode_payload(writer *w, const ms_mikey_payload *pl, uint8_t next)
{
    if (pl->type != MS_MIKEY_PT_SIGN)
        put8(w, next);
    switch (pl->type) {
    case MS_MIKEY_PT_T:
        put8(w, pl->u.t.ts_type);
        switch (pl->u.t.ts_type) {
        case MS_MIKEY_TS_NTP_UTC:
        case MS_MIKEY_TS_NTP:
            put32(w, (uint32_t)(pl->u.t.value >> 32));
            put32(w, (uint32_t)pl->u.t.value);
            break;
        case MS_MIKEY_TS_COUNTER:
            if (pl->u.t.value > UINT32_MAX)
                return MS_ERR_ARG;
            put32(w, (uint32_t)pl->u.t.value);
            break;
        case MS_MIKEY_TS_NTP_UTC_32:
            if ((pl->u.t.value & 0xffffffffu) != 0)
                return MS_ERR_ARG; /* a fraction this type cannot carry */
            put32(w, (uint32_t)(pl->u.t.value >> 32));
            break;
        default:
            return MS_ERR_ARG;
        }
        break;
    case MS_MIKEY_PT_RAND:
        if (!span_ok(&pl->u.rand, 255))
            return MS_ERR_ARG;
        put8(w, (unsigned)pl->u.rand.len);
        put(w, pl->u.rand.data, pl->u.rand.len);
        break;
    case MS_MIKEY_PT_ID:
    case MS_MIKEY_PT_CERT:
        if (!span_ok(&pl->u.id.id, 0xffff))
            return MS_ERR_ARG;
        put8(w, pl->u.id.id_type);
        put16(w, (unsigned)pl->u.id.id.len);
        put(w, pl->u.id.id.data, pl->u.id.id.len);
        break;
    case MS_MIKEY_PT_IDR:
        if (!span_ok(&pl->u.idr.id, 0xffff))
            return MS_ERR_ARG;
        put8(w, pl->u.idr.role);
        put8(w, pl->u.idr.id_type);
        put16(w, (unsigned)pl->u.idr.id.len);
        put(w, pl->u.idr.id.data, pl->u.idr.id.len);
        break;
    case MS_MIKEY_PT_SP: {
        size_t bad;
        if (!span_ok(&pl->u.sp.params, 0xffff) ||
            !sp_tlvs_ok(pl->u.sp.params.data, pl->u.sp.params.len, &bad))
            return MS_ERR_ARG;
        put8(w, pl->u.sp.policy_no);
        put8(w, pl->u.sp.prot_type);
        put16(w, (unsigned)pl->u.sp.params.len);
        put(w, pl->u.sp.params.data, pl->u.sp.params.len);
        break;
    }
    case MS_MIKEY_PT_SAKKE:
        if (!span_ok(&pl->u.sakke.data, 0xffff))
            return MS_ERR_ARG;
        put8(w, pl->u.sakke.params);
        put8(w, pl->u.sakke.id_scheme);
        put16(w, (unsigned)pl->u.sakke.data.len);
        put(w, pl->u.sakke.data.data, pl->u.sakke.data.len);
        break;
    case MS_MIKEY_PT_SIGN:
        /* sig.data NULL: a zero place holder to be overwritten once signed. */
        if (pl->u.sign.s_type > 0x0f || pl->u.sign.sig.len > 0x0fff)
            return MS_ERR_ARG;
        put8(w, ((unsigned)pl->u.sign.s_type << 4) | (unsigned)(pl->u.sign.sig.len >> 8));
        put8(w, (unsigned)(pl->u.sign.sig.len & 0xff));
        put(w, pl->u.sign.sig.data, pl->u.sign.sig.len);
        break;
    case MS_MIKEY_PT_GENERAL_EXT:
        if (!span_ok(&pl->u.ext.data, 0xffff))
            return MS_ERR_ARG;
        put8(w, pl->u.ext.type);
        put16(w, (unsigned)pl->u.ext.data.len);
        put(w, pl->u.ext.data.data, pl->u.ext.data.len);
        break;
    case MS_MIKEY_PT_V: {
        int ml = v_mac_len(pl->u.v.auth_alg);
        if (ml < 0 || pl->u.v.mac.len != (size_t)ml)
            return MS_ERR_ARG;
        put8(w, pl->u.v.auth_alg);
        put(w, pl->u.v.mac.data, pl->u.v.mac.len); /* NULL: place holder */
        break;
    }
    case MS_MIKEY_PT_ERR:
        put8(w, pl->u.err.error_no);
        put16(w, 0);
        break;
    default:
        return MS_ERR_ARG;
    }
    return MS_OK;
}

ms_err ms_mikey_encode(uint8_t *out, size_t cap, size_t *out_len, size_t *signed_len,
                       const ms_mikey_message *msg)
{
    if (out_len == NULL || msg == NULL || msg->n_payloads > MS_MIKEY_MAX_PAYLOADS ||
        (out == NULL && cap > 0))
        return MS_ERR_ARG;
    *out_len = 0;
    if (signed_len != NULL)
        *signed_len = 0;
    size_t n = msg->n_payloads;
    for (size_t i = 0; i + 1 < n; i++)
        if (msg->payloads[i].type == MS_MIKEY_PT_SIGN)
            return MS_ERR_ARG; /* SIGN has no next-payload field: it can only be last */

    writer w = {out, cap, 0};
    size_t sign_off = 0;
    TRY(encode_hdr(&w, &msg->hdr, n > 0 ? msg->payloads[0].type : MS_MIKEY_PT_LAST));
    for (size_t i = 0; i < n; i++) {
        const ms_mikey_payload *pl = &msg->payloads[i];
        if (pl->type == MS_MIKEY_PT_SIGN)
            sign_off = w.pos;
        TRY(encode_payload(&w, pl, i + 1 < n ? msg->payloads[i + 1].type : MS_MIKEY_PT_LAST));
    }
    /* Our parser refuses longer messages, so never produce one. */
    if (w.pos > MS_MIKEY_MAX_MESSAGE)
        return MS_ERR_ARG;
    *out_len = w.pos;
    if (w.pos > cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    if (signed_len != NULL && n > 0 && msg->payloads[n - 1].type == MS_MIKEY_PT_SIGN)
        *signed_len = sign_off + 2;
    return MS_OK;
}

/* ---- lookups ------------------------------------------------------------------------- */

const ms_mikey_payload *ms_mikey_find(const ms_mikey_message *msg, uint8_t type, int role)
{
    if (msg == NULL)
        return NULL;
    size_t n = msg->n_payloads < MS_MIKEY_MAX_PAYLOADS ? msg->n_payloads : MS_MIKEY_MAX_PAYLOADS;
    for (size_t i = 0; i < n; i++) {
        const ms_mikey_payload *pl = &msg->payloads[i];
        if (pl->type != type)
            continue;
        if (type == MS_MIKEY_PT_IDR && role >= 0 && pl->u.idr.role != role)
            continue;
        return pl;
    }
    return NULL;
}

int ms_mikey_sp_next(const ms_mikey_payload *sp, size_t *pos, uint8_t *type, ms_mikey_span *value)
{
    if (sp == NULL || pos == NULL || sp->type != MS_MIKEY_PT_SP)
        return -1;
    const ms_mikey_span *params = &sp->u.sp.params;
    if (*pos == params->len)
        return 0;
    if (*pos > params->len || params->data == NULL)
        return -1;
    size_t rem = params->len - *pos;
    const uint8_t *p = params->data + *pos;
    if (rem < 2 || p[1] > rem - 2)
        return -1;
    if (type != NULL)
        *type = p[0];
    if (value != NULL) {
        value->data = p[1] ? p + 2 : NULL;
        value->len = p[1];
    }
    *pos += 2 + (size_t)p[1];
    return 1;
}
