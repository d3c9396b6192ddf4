/*
 * The member roster and the MESSAGE body.
 *
 * Roster: text lines, signed by the GMS with ECCSI (RFC 6507) under its identifier for
 * the key period of `issued`, so a member knows who is in the group and that the GMS
 * said so:
 *   mikeysakke-group-roster-1
 *   group <uri>  gms <uri>  gmk-id <8 hex>  generation <n>  activation <ntp s>
 *   expiry <ntp s>  issued <ntp s>  member <uri> (one line each)
 *   signature <258 hex>      (over every octet before this line)
 * The generation grows with every change of the group, so an older roster of the same
 * key (before a member was added) is not taken for a newer one.
 *
 * Body: multipart/mixed (RFC 2046) with the I_MESSAGE as application/mikey first and
 * the roster second.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/secmem.h"
#include "group/group_internal.h"
#include "util/detail.h"
#include "util/hex.h"

#define ROSTER_MAGIC "mikeysakke-group-roster-1\n"
#define SIG_PREFIX "signature "

/* ---- building ----------------------------------------------------------------------------- */

typedef struct text {
    char *p;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

static ms_err gms_identifier(const ms_keystore_identity *id, const char *uri, uint64_t issued,
                             uint64_t *period, uint8_t out[MS_SAKKE_ID_MAX_BYTES],
                             size_t *out_len)
{
    ms_err err = ms_key_period(&id->scheme, period, issued);
    if (err == MS_OK)
        err = ms_identifier(&id->scheme, out, MS_SAKKE_ID_MAX_BYTES, out_len, uri, *period);
    return err;
}

ms_err group_roster_sign(char **out, size_t *out_len, const ms_keystore *gms_ks,
                         const group_roster *r, const char *const *members, size_t n,
                         char *detail, size_t cap)
{
    *out = NULL;
    *out_len = 0;
    ms_keystore_identity id;
    ms_err err = ms_keystore_identity_get(gms_ks, &id);
    if (err != MS_OK)
        return ms_detail_fail(err, detail, cap, "the GMS keystore has no identity");
    uint8_t ident[MS_SAKKE_ID_MAX_BYTES];
    size_t ident_len = 0;
    uint64_t period = 0;
    if ((err = gms_identifier(&id, r->gms, r->issued, &period, ident, &ident_len)) != MS_OK)
        return ms_detail_fail(err, detail, cap, "no identifier for the GMS %s", r->gms);
    ms_keyset ks;
    if ((err = ms_keystore_get(gms_ks, &ks, NULL, period, detail, cap)) != MS_OK)
        return err;
    ms_eccsi_signer *signer = NULL;
    err = ms_eccsi_signer_new(&signer, ks.kpak, ident, ident_len, ks.ssk, ks.pvt);
    ms_keyset_wipe(&ks);
    if (err != MS_OK)
        return ms_detail_fail(err, detail, cap, "the GMS's signing key of period %" PRIu64
                              " is not usable", period);

    text t = {.p = malloc(4096), .cap = 4096};
    if (t.p == NULL)
        t.failed = 1;
    put(&t, "%sgroup %s\ngms %s\ngmk-id %08" PRIX32 "\ngeneration %" PRIu64
            "\nactivation %" PRIu64 "\nexpiry %" PRIu64 "\nissued %" PRIu64 "\n",
        ROSTER_MAGIC, r->group, r->gms, r->gmk_id, r->generation, r->activation, r->expiry,
        r->issued);
    for (size_t i = 0; i < n; i++)
        put(&t, "member %s\n", members[i]);
    uint8_t sig[MS_ECCSI_SIG_BYTES];
    if (!t.failed)
        err = ms_eccsi_sign(signer, sig, (const uint8_t *)t.p, t.len, NULL, NULL);
    ms_eccsi_signer_free(signer);
    if (!t.failed && err == MS_OK) {
        put(&t, "%s", SIG_PREFIX);
        char sig_hex[2 * sizeof sig + 1];
        ms_hex_encode_upper(sig_hex, sig, sizeof sig);
        put(&t, "%s", sig_hex);
        put(&t, "\n");
    }
    if (t.failed || err != MS_OK) {
        free(t.p);
        return ms_detail_fail(t.failed ? MS_ERR_NOMEM : err, detail, cap,
                              "signing the roster failed");
    }
    *out = t.p;
    *out_len = t.len;
    return MS_OK;
}

/* ---- checking ----------------------------------------------------------------------------- */

/* The value of line `name` in the header part [p, end): copies at most cap-1 octets. */
static int field(const char *p, const char *end, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            return -1;
        if ((size_t)(eol - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == ' ') {
            size_t vl = (size_t)(eol - p) - nl - 1;
            if (vl == 0 || vl >= cap)
                return -1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = 0;
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

static int field_u64(const char *p, const char *end, const char *name, uint64_t *v, int base)
{
    char buf[24], *e;
    if (field(p, end, name, buf, sizeof buf) != 0 || buf[0] == '-' || buf[0] == '+')
        return -1;
    unsigned long long x = strtoull(buf, &e, base);
    if (*e != 0)
        return -1;
    *v = x;
    return 0;
}

ms_err group_roster_verify(group_roster *r, const char *txt, size_t len,
                           const ms_keystore_identity *id, char *detail, size_t cap)
{
    memset(r, 0, sizeof *r);
    const size_t ml = strlen(ROSTER_MAGIC), sl = strlen(SIG_PREFIX);
    const size_t sig_line = sl + 2 * MS_ECCSI_SIG_BYTES + 1;
    if (len < ml + sig_line || memcmp(txt, ROSTER_MAGIC, ml) != 0)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the roster is not a "
                              "mikeysakke-group-roster-1");
    const size_t signed_len = len - sig_line;
    const char *sig_hex = txt + signed_len;
    uint8_t sig[MS_ECCSI_SIG_BYTES];
    if (txt[signed_len - 1] != '\n' || memcmp(sig_hex, SIG_PREFIX, sl) != 0 ||
        txt[len - 1] != '\n' || ms_hex_decode(sig, sizeof sig, sig_hex + sl, 2 * sizeof sig) != MS_OK)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the roster does not end in its "
                              "signature line");
    if (memchr(txt, 0, len) != NULL)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the roster holds a NUL octet");
    const char *p = txt + ml, *end = txt + signed_len;
    /* header lines up to the first member */
    const char *members = p;
    while (members < end && strncmp(members, "member ", 7) != 0) {
        const char *eol = memchr(members, '\n', (size_t)(end - members));
        members = eol + 1;
    }
    uint64_t gmk_id = 0;
    if (field(p, members, "group", r->group, sizeof r->group) != 0 ||
        field(p, members, "gms", r->gms, sizeof r->gms) != 0 ||
        field_u64(p, members, "gmk-id", &gmk_id, 16) != 0 || gmk_id > UINT32_MAX ||
        field_u64(p, members, "generation", &r->generation, 10) != 0 ||
        field_u64(p, members, "activation", &r->activation, 10) != 0 ||
        field_u64(p, members, "expiry", &r->expiry, 10) != 0 ||
        field_u64(p, members, "issued", &r->issued, 10) != 0)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the roster lacks a field or has a "
                              "malformed one");
    r->gmk_id = (uint32_t)gmk_id;
    for (const char *q = members; q < end;) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        if (strncmp(q, "member ", 7) != 0 || eol == q + 7)
            return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the roster has a line that is "
                                  "not a member after its first member");
        r->n_members++;
        q = eol + 1;
    }
    r->members = members;
    r->members_len = (size_t)(end - members);

    uint8_t ident[MS_SAKKE_ID_MAX_BYTES];
    size_t ident_len = 0;
    uint64_t period = 0;
    ms_err err = gms_identifier(id, r->gms, r->issued, &period, ident, &ident_len);
    if (err != MS_OK)
        return ms_detail_fail(err, detail, cap, "no identifier for the roster's GMS %s",
                              r->gms);
    ms_eccsi_verifier *v = NULL;
    if ((err = ms_eccsi_verifier_new(&v, id->kpak)) != MS_OK)
        return ms_detail_fail(err, detail, cap, "the KMS's KPAK is not usable");
    err = ms_eccsi_verify(v, ident, ident_len, (const uint8_t *)txt, signed_len, sig,
                          sizeof sig, NULL);
    ms_eccsi_verifier_free(v);
    if (err != MS_OK)
        return ms_detail_fail(MS_ERR_SIGNATURE, detail, cap, "the roster of %s is not signed "
                              "by its GMS %s", r->group, r->gms);
    return MS_OK;
}

int group_roster_has(const group_roster *r, const char *uri)
{
    size_t ul = strlen(uri);
    const char *q = r->members, *end = r->members + r->members_len;
    while (q < end) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        if ((size_t)(eol - q) == 7 + ul && memcmp(q + 7, uri, ul) == 0)
            return 1;
        q = eol + 1;
    }
    return 0;
}

/* ---- the body --------------------------------------------------------------------------- */

ms_err group_body_build(uint8_t **body, size_t *body_len, char *content_type, size_t ct_cap,
                        const char *boundary, const uint8_t *mikey, size_t mikey_len,
                        const char *roster, size_t roster_len)
{
    *body = NULL;
    *body_len = 0;
    int n = snprintf(content_type, ct_cap, "multipart/mixed;boundary=%s", boundary);
    if (n < 0 || (size_t)n >= ct_cap)
        return MS_ERR_BUFFER_TOO_SMALL;
    char h1[160], h2[160], tail[96];
    int l1 = snprintf(h1, sizeof h1, "--%s\r\nContent-Type: " GROUP_MIKEY_TYPE "\r\n\r\n",
                      boundary);
    int l2 = snprintf(h2, sizeof h2, "\r\n--%s\r\nContent-Type: " GROUP_ROSTER_TYPE "\r\n\r\n",
                      boundary);
    int l3 = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
    if (l1 < 0 || l2 < 0 || l3 < 0 || (size_t)l1 >= sizeof h1 || (size_t)l2 >= sizeof h2 ||
        (size_t)l3 >= sizeof tail)
        return MS_ERR_ARG;
    size_t total = (size_t)l1 + mikey_len + (size_t)l2 + roster_len + (size_t)l3;
    uint8_t *b = malloc(total);
    if (b == NULL)
        return MS_ERR_NOMEM;
    size_t o = 0;
    memcpy(b + o, h1, (size_t)l1), o += (size_t)l1;
    memcpy(b + o, mikey, mikey_len), o += mikey_len;
    memcpy(b + o, h2, (size_t)l2), o += (size_t)l2;
    memcpy(b + o, roster, roster_len), o += roster_len;
    memcpy(b + o, tail, (size_t)l3);
    *body = b;
    *body_len = total;
    return MS_OK;
}

static const uint8_t *find(const uint8_t *h, size_t hl, const char *needle, size_t nl)
{
    if (nl == 0 || hl < nl)
        return NULL;
    for (size_t i = 0; i + nl <= hl; i++)
        if (h[i] == (uint8_t)needle[0] && memcmp(h + i, needle, nl) == 0)
            return h + i;
    return NULL;
}

/* One part starting at p (just after a delimiter line): its Content-Type must be
 * `type`; *content..*content_end is the part's content, up to the next delimiter. */
static int part(const uint8_t *p, const uint8_t *end, const char *delim, size_t dl,
                const char *type, ms_mikey_span *content, const uint8_t **next)
{
    const uint8_t *hend = find(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (hend == NULL)
        return -1;
    char want[96];
    int wl = snprintf(want, sizeof want, "Content-Type: %s", type);
    if (wl < 0 || (size_t)(hend - p) != (size_t)wl || strncasecmp((const char *)p, want,
                                                                    (size_t)wl) != 0)
        return -1;
    const uint8_t *c = hend + 4;
    const uint8_t *d = find(c, (size_t)(end - c), delim, dl);
    if (d == NULL)
        return -1;
    content->data = c;
    content->len = (size_t)(d - c);
    *next = d + dl;
    return 0;
}

ms_err group_body_parse(const char *content_type, const uint8_t *body, size_t body_len,
                        ms_mikey_span *mikey, ms_mikey_span *roster, char *detail, size_t cap)
{
    static const char mp[] = "multipart/mixed";
    if (content_type == NULL || strncasecmp(content_type, mp, sizeof mp - 1) != 0)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the MESSAGE is not multipart/mixed "
                              "(Content-Type %s)", content_type ? content_type : "missing");
    const char *b = strstr(content_type, "boundary=");
    char boundary[72];
    size_t bl = 0;
    if (b != NULL) {
        b += 9;
        int quoted = *b == '"';
        b += quoted;
        while (b[bl] != 0 && b[bl] != ';' && b[bl] != '"' && b[bl] != ' ' && bl < 71)
            bl++;
        memcpy(boundary, b, bl);
    }
    boundary[bl] = 0;
    if (bl == 0 || bl > 70)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the multipart body has no usable "
                              "boundary");
    char first[80], delim[80];
    int fl = snprintf(first, sizeof first, "--%s\r\n", boundary);
    int dl = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    const uint8_t *end = body + body_len, *next = NULL;
    if (fl < 0 || dl < 0 || body_len < (size_t)fl || memcmp(body, first, (size_t)fl) != 0 ||
        part(body + fl, end, delim, (size_t)dl, GROUP_MIKEY_TYPE, mikey, &next) != 0 ||
        end - next < 2 || memcmp(next, "\r\n", 2) != 0 ||
        part(next + 2, end, delim, (size_t)dl, GROUP_ROSTER_TYPE, roster, &next) != 0 ||
        (size_t)(end - next) < 4 || memcmp(next, "--\r\n", 4) != 0 || next + 4 != end)
        return ms_detail_fail(MS_ERR_GROUP, detail, cap, "the body is not an application/mikey "
                              "part followed by a roster part");
    return MS_OK;
}
