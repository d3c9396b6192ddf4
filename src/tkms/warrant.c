/*
 * Extraction warrants of a threshold KMS (format in audit.h): a KMS role request
 * (src/kms/roles.h) with purpose=tkms-warrant, then its signature lines in the approval
 * form. The signatures use their own context, so a warrant signature never passes as a
 * single-server approval or command, nor the reverse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "kms/roles.h"
#include "tkms/audit.h"
#include "util/detail.h"
#include "util/hex.h"
#include "tkms/node.h"

#define PURPOSE "tkms-warrant"

ms_err ms_tkms_warrant_make(char *out, size_t cap, size_t *len, const char *user,
                            const char *period, const uint8_t auditor_pub[32], uint64_t expires,
                            const char *reason, char *detail, size_t detail_cap)
{
    if (out == NULL || len == NULL || user == NULL || period == NULL || auditor_pub == NULL ||
        reason == NULL)
        return MS_ERR_ARG;
    if (!ms_tkms_period_ok(period))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "the period '%s' is not letters, digits and '-' (at most 32)",
                              period);
    if (user[0] == '\0' || strlen(user) >= sizeof ((ms_tkms_warrant *)0)->user)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the user URI is empty or too long");
    if (reason[0] == '\0' || strlen(reason) >= sizeof ((ms_tkms_warrant *)0)->reason)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "the reason is empty or too long");
    char key[65];
    ms_hex_encode_lower(key, auditor_pub, 32);
    ms_err e = ms_request_start(out, cap, len);
    if (e == MS_OK)
        e = ms_request_add(out, cap, len, "purpose", PURPOSE);
    if (e == MS_OK && (e = ms_request_add(out, cap, len, "user", user)) != MS_OK)
        return ms_detail_fail(e, detail, detail_cap, "the user URI has characters a warrant "
                                                     "cannot carry");
    if (e == MS_OK)
        e = ms_request_add(out, cap, len, "period", period);
    if (e == MS_OK)
        e = ms_request_add(out, cap, len, "auditor_key", key);
    if (e == MS_OK && (e = ms_request_add(out, cap, len, "reason", reason)) != MS_OK)
        return ms_detail_fail(e, detail, detail_cap, "the reason has characters a warrant "
                                                     "cannot carry (control characters)");
    if (e == MS_OK)
        e = ms_request_add_nonce(out, cap, len, expires, NULL);
    return e;
}

/* Length of the request part: up to the first line starting "key ". */
static size_t body_len(const char *text, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (len - off >= 4 && memcmp(text + off, "key ", 4) == 0)
            return off;
        const char *nl = memchr(text + off, '\n', len - off);
        if (nl == NULL)
            return len;
        off = (size_t)(nl - text) + 1;
    }
    return len;
}

static ms_err field(const char *text, size_t len, const char *key, char *out, size_t cap,
                    char *detail, size_t detail_cap)
{
    ms_err e = ms_request_get(text, len, key, out, cap);
    if (e != MS_OK)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "the warrant has no valid '%s' line", key);
    return MS_OK;
}

ms_err ms_tkms_warrant_parse(const char *text, size_t len, ms_tkms_warrant *w, char *detail,
                             size_t detail_cap)
{
    if (text == NULL || w == NULL)
        return MS_ERR_ARG;
    memset(w, 0, sizeof *w);
    if (len > MS_TKMS_WARRANT_MAX || memchr(text, '\0', len) != NULL)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "not a warrant (too long or binary)");
    size_t bl = body_len(text, len);
    if (ms_request_check(text, bl) != MS_OK)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "not a warrant (not a well-formed mikeysakke-request)");
    char purpose[32], key[80], expires[24];
    ms_err e = field(text, bl, "purpose", purpose, sizeof purpose, detail, detail_cap);
    if (e == MS_OK && strcmp(purpose, PURPOSE) != 0)
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "not a warrant (purpose '%s')", purpose);
    if (e == MS_OK)
        e = field(text, bl, "user", w->user, sizeof w->user, detail, detail_cap);
    if (e == MS_OK)
        e = field(text, bl, "period", w->period, sizeof w->period, detail, detail_cap);
    if (e == MS_OK && !ms_tkms_period_ok(w->period))
        e = ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                           "the warrant's period is malformed");
    if (e == MS_OK)
        e = field(text, bl, "auditor_key", key, sizeof key, detail, detail_cap);
    if (e == MS_OK && ms_hex_decode(w->auditor_pub, 32, key, strlen(key)) != MS_OK)
        e = ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                           "the warrant's auditor_key is not 64 hex digits");
    if (e == MS_OK)
        e = field(text, bl, "reason", w->reason, sizeof w->reason, detail, detail_cap);
    if (e == MS_OK)
        e = field(text, bl, "nonce", w->nonce, sizeof w->nonce, detail, detail_cap);
    if (e == MS_OK)
        e = field(text, bl, "expires", expires, sizeof expires, detail, detail_cap);
    if (e != MS_OK)
        return e;
    char *end = NULL;
    unsigned long long ex = strtoull(expires, &end, 10);
    if (expires[0] < '0' || expires[0] > '9' || end == NULL || *end != '\0')
        return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                              "the warrant's expires is not a number of seconds");
    w->expires = ex;
    w->text_len = bl;
    SHA256((const unsigned char *)text, bl, w->hash);
    /* the signature lines */
    size_t off = bl;
    while (off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t ll = nl != NULL ? (size_t)(nl - (text + off)) : len - off;
        ms_approval ap;
        if (ms_approval_parse(text + off, ll, &ap) != MS_OK || ap.kind != MS_APPROVAL_KEY)
            return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                                  "the warrant's signature line %u is not 'key <pub> <sig>'",
                                  w->n_sigs + 1);
        if (w->n_sigs == MS_TKMS_WARRANT_SIGS)
            return ms_detail_fail(MS_ERR_BAD_ENCODING, detail, detail_cap,
                                  "the warrant has more than %d signatures",
                                  MS_TKMS_WARRANT_SIGS);
        memcpy(w->sig_pub[w->n_sigs], ap.pub, 32);
        memcpy(w->sig[w->n_sigs], ap.sig, 64);
        w->n_sigs++;
        off += ll + (nl != NULL);
    }
    return MS_OK;
}

ms_err ms_tkms_warrant_sign(const uint8_t seed[32], const char *text, size_t len, char *line,
                            size_t cap, char *detail, size_t detail_cap)
{
    if (seed == NULL || text == NULL || line == NULL)
        return MS_ERR_ARG;
    ms_tkms_warrant w;
    ms_err e = ms_tkms_warrant_parse(text, len, &w, detail, detail_cap);
    if (e != MS_OK)
        return e;
    ms_approval ap = {.kind = MS_APPROVAL_KEY};
    if ((e = ms_role_public(seed, ap.pub)) != MS_OK ||
        (e = ms_role_sign(seed, MS_TKMS_WARRANT_CONTEXT, text, w.text_len, ap.sig)) != MS_OK)
        return e;
    for (unsigned i = 0; i < w.n_sigs; i++)
        if (memcmp(w.sig_pub[i], ap.pub, 32) == 0)
            return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap,
                                  "the warrant already carries this key's signature");
    return ms_approval_format(&ap, line, cap);
}

static int key_in(const uint8_t k[32], const ms_tkms_audit_roles *r)
{
    for (unsigned i = 0; i < r->n_approvers; i++)
        if (memcmp(k, r->approver[i], 32) == 0)
            return 1;
    return 0;
}

ms_err ms_tkms_warrant_check(const ms_tkms_warrant *w, const char *text,
                             const ms_tkms_audit_roles *roles, uint64_t now, char *detail,
                             size_t detail_cap)
{
    if (w == NULL || text == NULL || roles == NULL)
        return MS_ERR_ARG;
    bool authority = false, approver = false;
    for (unsigned i = 0; i < w->n_sigs; i++) {
        char hex[17];
        ms_hex_encode_lower(hex, w->sig_pub[i], 8);
        bool is_auth = memcmp(w->sig_pub[i], roles->authority, 32) == 0;
        bool is_appr = !is_auth && key_in(w->sig_pub[i], roles);
        if (!is_auth && !is_appr)
            return ms_detail_fail(MS_ERR_APPROVAL, detail, detail_cap,
                                  "the warrant is signed by key %s..., which is neither the "
                                  "audit authority nor an approver of this server",
                                  hex);
        if (ms_role_verify(w->sig_pub[i], MS_TKMS_WARRANT_CONTEXT, text, w->text_len,
                           w->sig[i]) != MS_OK)
            return ms_detail_fail(MS_ERR_APPROVAL, detail, detail_cap,
                                  "the warrant's signature by %s %s... does not verify "
                                  "(altered warrant or signature)",
                                  is_auth ? "the audit authority" : "approver", hex);
        authority |= is_auth;
        approver |= is_appr;
    }
    if (!authority || !approver)
        return ms_detail_fail(MS_ERR_APPROVAL, detail, detail_cap,
                              "the warrant is not signed by %s",
                              !authority && !approver ? "the audit authority and an approver"
                              : !authority            ? "the audit authority"
                                                      : "a second approver");
    if (w->expires <= now)
        return ms_detail_fail(MS_ERR_REQUEST_STALE, detail, detail_cap,
                              "the warrant expired %llu s ago",
                              (unsigned long long)(now - w->expires));
    return MS_OK;
}
