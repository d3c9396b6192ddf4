/*
 * The unseal agent's dispatch (docs/agent-protocol.md): a table of verbs, each with the
 * role that may ask for it and its handler; the role rules (a privileged verb must be
 * signed by a key of its role and carry exactly the signed fields); key period parsing
 * and the scope rules; answers as structured fields that the `kms` commands print as
 * text or JSON. Moved here from tools/kms.c.
 */
/* struct ucred, SO_PEERCRED, accept4 */
#define _GNU_SOURCE
#include "kms/agent.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "kms/roles.h"
#include "mikeysakke/crypto.h"
#include "mikeysakke/mikey.h"
#include "util/hex.h"
#include "util/timefmt.h"

#define XML_MAX (256 * 1024)
#define TEXT_MAX 512

/* ---- key periods ------------------------------------------------------------------------ */

ms_err ms_agent_period(ms_kms *k, const char *s, uint64_t *p)
{
    ms_kms_status st;
    uint64_t t;
    if (strcmp(s, "current") == 0 || strcmp(s, "next") == 0) {
        ms_err e = ms_kms_status_get(k, &st);
        if (e != MS_OK)
            return e;
        *p = st.current_period + (s[0] == 'n');
        return MS_OK;
    }
    if (ms_time_parse(s, &t, NULL))
        return ms_kms_period_of(k, p, t);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] >= '0' && s[0] <= '9' && errno == 0 && *end == '\0') {
        *p = v;
        return MS_OK;
    }
    /* a time (or date) that is not valid is no range: its '-' are the date's */
    if (strchr(s, ':') != NULL || (strlen(s) >= 10 && s[4] == '-' && s[7] == '-'))
        return MS_ERR_USAGE;
    /* "all", "*", "N-M", "N..", ...: more than one period */
    if (strcmp(s, "all") == 0 || strchr(s, '*') || strchr(s, '-') || strstr(s, ".."))
        return MS_ERR_AUDIT_SCOPE;
    return MS_ERR_USAGE;
}

ms_err ms_agent_extract_scope(ms_kms *k, const char *user, const char *period,
                              uint64_t *period_no)
{
    if (strchr(user, ',') != NULL || strchr(period, ',') != NULL)
        return MS_ERR_AUDIT_SCOPE; /* a list of users or of periods */
    if (strcmp(user, "*") == 0 || strcmp(user, "all") == 0)
        return MS_ERR_AUDIT_SCOPE;
    return ms_agent_period(k, period, period_no);
}

/* A verb takes one period: a scope of several is a usage error here, named in ans. */
static ms_err one_period(ms_kms *k, const char *s, uint64_t *p, ms_agent_msg *ans)
{
    ms_err e = ms_agent_period(k, s, p);
    if (e == MS_ERR_AUDIT_SCOPE || e == MS_ERR_USAGE) {
        ms_agent_msg_addf(ans, "err", "'%s' is not one key period (a number, current, next "
                          "or a time)", s);
        return MS_ERR_USAGE;
    }
    return e;
}

/* ---- answers ---------------------------------------------------------------------------- */

static const char *seal_name(int m)
{
    return m == MS_KMS_SEAL_PASSPHRASE ? "passphrase"
           : m == MS_KMS_SEAL_SHARES   ? "shares"
           : m == MS_KMS_SEAL_PKCS11   ? "pkcs11"
                                       : "unknown";
}

void ms_agent_status_fields(ms_kms *k, ms_agent_msg *ans)
{
    ms_kms_status st;
    if (ms_kms_status_get(k, &st) != MS_OK)
        return; /* no fields: the command says the status is unavailable */
    ms_agent_msg_adds(ans, "kms", st.kms_uri);
    ms_agent_msg_adds(ans, "state", st.unsealed ? "unsealed" : "sealed");
    ms_agent_msg_adds(ans, "seal", seal_name(st.seal_method));
    if (!st.unsealed && st.seal_method == MS_KMS_SEAL_SHARES) {
        ms_agent_msg_addu(ans, "shares_have", st.shares_have);
        ms_agent_msg_addu(ans, "shares_need", st.shares_need);
    }
    if (st.id_scheme == MS_MIKEY_ID_SCHEME_HASHED_UID) {
        ms_agent_msg_adds(ans, "scheme", "3gpp");
        ms_agent_msg_addu(ans, "period_len", st.period_len);
        ms_agent_msg_addu(ans, "period_offset", st.period_offset);
    } else {
        ms_agent_msg_adds(ans, "scheme", "rfc6509");
    }
    ms_agent_msg_addu(ans, "current_period", st.current_period);
    ms_agent_msg_addu(ans, "audit_entries", st.audit_seq);
}

/* ---- verbs ------------------------------------------------------------------------------ */

typedef ms_err (*verb_fn)(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans);

static ms_err do_status(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    (void)req;
    ms_agent_status_fields(a->kms, ans);
    return MS_OK;
}

static ms_err do_unseal(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    ms_kms *k = a->kms;
    size_t n = 0;
    const uint8_t *v;
    unsigned have = 0, need = 0;
    ms_err e;
    ms_kms_adopt_settings(k, ms_agent_msg_get(req, "adopt_settings", 0, &n) != NULL);
    if ((v = ms_agent_msg_get(req, "share", 0, &n)) != NULL) {
        if ((e = ms_kms_unseal_share(k, &have, &need, v, n)) != MS_OK)
            return e;
        ms_kms_status st;
        bool open = ms_kms_status_get(k, &st) == MS_OK && st.unsealed;
        ms_agent_msg_adds(ans, "state", open ? "unsealed" : "sealed");
        if (!open) {
            ms_agent_msg_addu(ans, "shares_have", have);
            ms_agent_msg_addu(ans, "shares_need", need);
        }
        return MS_OK;
    }
    if ((v = ms_agent_msg_get(req, "passphrase", 0, &n)) != NULL)
        e = ms_kms_unseal_passphrase(k, v, n);
    else if ((v = ms_agent_msg_get(req, "pin", 0, &n)) != NULL)
        e = ms_kms_unseal_pkcs11(k, v, n);
    else
        return MS_ERR_ARG;
    if (e == MS_OK)
        ms_agent_msg_adds(ans, "state", "unsealed");
    return e;
}

static ms_err do_seal(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    (void)req;
    ms_err e = ms_kms_seal(a->kms);
    ms_agent_msg_adds(ans, "state", "sealed");
    /* kms serve keeps answering (503, /healthz "sealed") until unsealed again */
    ms_agent_msg_addu(ans, "stays", a->serving);
    if (!a->serving)
        a->seal_now = true;
    return e;
}

static int list_user(void *ctx, const char *uri, bool suspended, size_t n_devices)
{
    ms_agent_msg *ans = ctx;
    ms_agent_msg_adds(ans, "user", uri);
    ms_agent_msg_adds(ans, "user_state", suspended ? "suspended" : "active");
    ms_agent_msg_addu(ans, "devices", n_devices);
    return 0;
}

ms_err ms_agent_user_fields(ms_kms *k, ms_agent_msg *ans)
{
    return ms_kms_user_list(k, list_user, ans);
}

static ms_err do_user_list(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    (void)req;
    return ms_agent_user_fields(a->kms, ans);
}

static ms_err user_verb(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans,
                        ms_err (*act)(ms_kms *, const char *))
{
    char user[TEXT_MAX];
    if (ms_agent_msg_str(req, "user", 0, user, sizeof user) == NULL)
        return MS_ERR_ARG;
    ms_err e = act(a->kms, user);
    if (e == MS_OK)
        ms_agent_msg_adds(ans, "user", user);
    return e;
}

static ms_err do_user_add(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    char user[TEXT_MAX], why[200] = "";
    if (ms_agent_msg_str(req, "user", 0, user, sizeof user) == NULL)
        return MS_ERR_ARG;
    ms_err e = ms_kms_uri_check(user, why, sizeof why);
    if (e != MS_OK) {
        ms_agent_msg_adds(ans, "err", why);
        return e;
    }
    return user_verb(a, req, ans, ms_kms_user_add);
}

static ms_err do_user_suspend(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    return user_verb(a, req, ans, ms_kms_user_suspend);
}

static ms_err do_user_resume(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    return user_verb(a, req, ans, ms_kms_user_resume);
}

static ms_err do_user_remove(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    return user_verb(a, req, ans, ms_kms_user_remove);
}

/* The approvals of a request (repeated "approval" fields), at most max. */
static size_t approvals_of(const ms_agent_msg *req, char (*buf)[MS_APPROVAL_TEXT_MAX],
                           const char **list, size_t max)
{
    size_t n = 0;
    while (n < max && ms_agent_msg_str(req, "approval", n, buf[n], MS_APPROVAL_TEXT_MAX) != NULL) {
        list[n] = buf[n];
        n++;
    }
    return n;
}

static ms_err do_enrol(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    char user[TEXT_MAX], device[128];
    if (ms_agent_msg_str(req, "user", 0, user, sizeof user) == NULL ||
        ms_agent_msg_str(req, "device", 0, device, sizeof device) == NULL)
        return MS_ERR_ARG;
    char *xml = malloc(XML_MAX);
    size_t len = 0, rn = 0;
    if (xml == NULL)
        return MS_ERR_NOMEM;
    ms_err e;
    const uint8_t *rq = ms_agent_msg_get(req, "request", 0, &rn);
    if (rq == NULL) {
        e = ms_kms_device_enrol(a->kms, xml, XML_MAX, &len, user, device);
    } else {
        /* a second device: the approved request must be for this user and device */
        const char *approvals[MS_KMS_MAX_OFFICERS * 2];
        char abuf[MS_KMS_MAX_OFFICERS * 2][MS_APPROVAL_TEXT_MAX], ru[TEXT_MAX], rd[128];
        size_t an = approvals_of(req, abuf, approvals, MS_KMS_MAX_OFFICERS * 2);
        if (ms_request_get((const char *)rq, rn, "user", ru, sizeof ru) != MS_OK ||
            ms_request_get((const char *)rq, rn, "device", rd, sizeof rd) != MS_OK ||
            strcmp(ru, user) != 0 || strcmp(rd, device) != 0) {
            e = MS_ERR_APPROVAL;
            ms_agent_msg_adds(ans, "err", "the request is for another user or device");
        } else {
            e = ms_kms_device_enrol_approved(a->kms, xml, XML_MAX, &len, (const char *)rq, rn,
                                             approvals, an);
        }
    }
    if (e == MS_OK) {
        ms_agent_msg_adds(ans, "user", user);
        ms_agent_msg_adds(ans, "device", device);
        ms_agent_msg_add(ans, "enrolment", xml, len);
    }
    ms_wipe(xml, XML_MAX);
    free(xml);
    return e;
}

/* Reports the verb's progress to the client if the request asks ("progress" = 1) and the
 * agent has somewhere to send it; a run without progress clears it (fn NULL). */
static void progress_on(ms_agent *a, const ms_agent_msg *req, bool on)
{
    char v[4];
    bool asked = on && a->progress != NULL &&
                 ms_agent_msg_str(req, "progress", 0, v, sizeof v) != NULL && strcmp(v, "1") == 0;
    ms_kms_set_progress(a->kms, asked ? a->progress : NULL, asked ? a->progress_ctx : NULL);
}

static ms_err do_issue(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    char text[TEXT_MAX], why[256] = "";
    uint64_t p = 0, threads = 0;
    size_t n = 0, tl = 0;
    ms_err e;
    if (ms_agent_msg_str(req, "period", 0, text, sizeof text) == NULL)
        return MS_ERR_ARG;
    if ((e = one_period(a->kms, text, &p, ans)) != MS_OK)
        return e;
    if (ms_agent_msg_get(req, "threads", 0, &tl) != NULL &&
        (!ms_agent_msg_u64(req, "threads", 0, &threads) || threads > 256))
        return MS_ERR_USAGE;
    if ((e = ms_kms_issue_check(a->kms, p, why, sizeof why)) != MS_OK) {
        ms_agent_msg_addf(ans, "err", "%s: %s", a->dir, why); /* names the limit */
        return e;
    }
    progress_on(a, req, true);
    e = ms_kms_issue(a->kms, &n, p, (unsigned)threads);
    progress_on(a, req, false);
    if (e == MS_OK) {
        ms_agent_msg_addu(ans, "issued", n);
        ms_agent_msg_addu(ans, "period", p);
    }
    return e;
}

static ms_err do_export(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    char text[TEXT_MAX], dir[PATH_MAX];
    uint64_t p = 0;
    size_t n = 0;
    ms_err e;
    if (ms_agent_msg_str(req, "period", 0, text, sizeof text) == NULL ||
        ms_agent_msg_str(req, "out", 0, dir, sizeof dir) == NULL)
        return MS_ERR_ARG;
    if ((e = one_period(a->kms, text, &p, ans)) != MS_OK)
        return e;
    progress_on(a, req, true);
    e = ms_kms_export(a->kms, &n, p, dir);
    progress_on(a, req, false);
    if (e == MS_OK) {
        ms_agent_msg_addu(ans, "exported", n);
        ms_agent_msg_addu(ans, "period", p);
        ms_agent_msg_adds(ans, "out", dir);
    }
    return e;
}

static ms_err do_extract(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    size_t rn = 0;
    const uint8_t *rq = ms_agent_msg_get(req, "request", 0, &rn);
    const char *approvals[MS_KMS_MAX_AUDITORS * 2];
    char abuf[MS_KMS_MAX_AUDITORS * 2][MS_APPROVAL_TEXT_MAX];
    size_t an = approvals_of(req, abuf, approvals, MS_KMS_MAX_AUDITORS * 2);
    if (rq == NULL)
        return MS_ERR_ARG;
    uint8_t rsk[MS_SAKKE_POINT_BYTES], id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    ms_kms_extract_request r = {(const char *)rq, rn, approvals, an};
    ms_err e = ms_kms_audit_extract(a->kms, rsk, id, &id_len, &r);
    if (e == MS_OK) {
        char idhex[2 * MS_SAKKE_ID_MAX_BYTES + 1], user[TEXT_MAX] = "", period[32] = "",
                                                    nonce[64] = "";
        ms_hex_encode_lower(idhex, id, id_len);
        (void)ms_request_get(r.request, rn, "user", user, sizeof user);
        (void)ms_request_get(r.request, rn, "period", period, sizeof period);
        (void)ms_request_get(r.request, rn, "nonce", nonce, sizeof nonce);
        ms_agent_msg_add(ans, "rsk", rsk, sizeof rsk);
        ms_agent_msg_adds(ans, "user", user);
        ms_agent_msg_adds(ans, "period", period);
        ms_agent_msg_adds(ans, "request_nonce", nonce);
        ms_agent_msg_adds(ans, "identifier", idhex);
        char cp[MS_KMS_CHECKPOINT_MAX];
        if (ms_kms_extract_checkpoint(a->kms, cp, sizeof cp) == MS_OK)
            ms_agent_msg_adds(ans, "checkpoint", cp);
    }
    ms_wipe(rsk, sizeof rsk);
    return e;
}

static ms_err do_checkpoint(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    (void)req;
    char cp[MS_KMS_CHECKPOINT_MAX];
    ms_err e = ms_kms_audit_checkpoint(a->kms, cp, sizeof cp);
    if (e == MS_OK)
        ms_agent_msg_adds(ans, "checkpoint", cp);
    return e;
}

static ms_err do_audit_syslog(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    char copy[8];
    if (ms_agent_msg_str(req, "copy", 0, copy, sizeof copy) == NULL ||
        (strcmp(copy, "yes") != 0 && strcmp(copy, "no") != 0))
        return MS_ERR_USAGE;
    ms_err e = ms_kms_audit_set_syslog(a->kms, copy[0] == 'y');
    if (e == MS_OK)
        ms_agent_msg_adds(ans, "copy", copy);
    return e;
}

static ms_err do_rollover(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    char text[TEXT_MAX];
    uint64_t p = 0;
    ms_err e;
    if (ms_agent_msg_str(req, "from_period", 0, text, sizeof text) == NULL)
        return MS_ERR_ARG;
    if ((e = one_period(a->kms, text, &p, ans)) != MS_OK)
        return e;
    ms_kms_status st;
    if ((e = ms_kms_status_get(a->kms, &st)) != MS_OK)
        return e;
    ms_kms_seal_material m;
    memset(&m, 0, sizeof m);
    m.method = st.seal_method;
    size_t n = 0;
    const uint8_t *v;
    if ((v = ms_agent_msg_get(req, "passphrase", 0, &n)) != NULL) {
        m.passphrase = v;
        m.passphrase_len = n;
    }
    if ((v = ms_agent_msg_get(req, "pin", 0, &n)) != NULL) {
        m.pin = v;
        m.pin_len = n;
    }
    ms_kms_handout *h = calloc(1, sizeof *h);
    if (h == NULL)
        return MS_ERR_NOMEM;
    if ((e = ms_kms_rollover(a->kms, h, p, &m)) == MS_OK) {
        ms_agent_msg_addu(ans, "period", p);
        for (size_t i = 0; i < h->n_shares; i++)
            ms_agent_msg_add(ans, "share", h->share[i], h->share_len[i]);
    }
    ms_wipe(h, sizeof *h);
    free(h);
    return e;
}

/* Every verb, the role that may ask for it (NULL: anyone the socket lets in; the
 * library's ms_kms_authorise holds the same rule for the signed ones) and its handler. */
static const struct verb {
    const char *name;
    const char *role;
    verb_fn handle;
} verbs[] = {
    {"status", NULL, do_status},
    {"unseal", NULL, do_unseal},
    {"seal", NULL, do_seal},
    {"user_list", NULL, do_user_list},
    {"extract", NULL, do_extract}, /* carries the auditors' approvals itself */
    {"checkpoint", NULL, do_checkpoint},
    {"user_add", "operator", do_user_add},
    {"user_suspend", "operator", do_user_suspend},
    {"user_resume", "operator", do_user_resume},
    {"user_remove", "operator", do_user_remove},
    {"issue", "operator", do_issue},
    {"export", "operator", do_export},
    {"rollover", "operator", do_rollover},
    {"audit_syslog", "operator", do_audit_syslog},
    {"enrol", "officer", do_enrol},
};

static const struct verb *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

const char *ms_agent_verb_role(const char *verb, ms_err *e)
{
    const struct verb *v = find_verb(verb);
    if (e != NULL)
        *e = v != NULL ? MS_OK : MS_ERR_USAGE;
    return v != NULL ? v->role : NULL;
}

/* ---- the role rules --------------------------------------------------------------------- */

static int count_signed(void *ctx, const char *key, const char *value)
{
    (void)value;
    static const char *const envelope[] = {"kind", "kms", "time", "nonce", "expires"};
    for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
        if (strcmp(key, envelope[i]) == 0)
            return 0;
    (*(size_t *)ctx)++;
    return 0;
}

/* A request for a role's act: signed by a key of that role (the library checks the key,
 * role, time and nonce), and every plain field is the signed one. */
static ms_err authorise(ms_agent *a, const struct verb *verb, uint64_t version,
                        const ms_agent_msg *req, ms_agent_msg *ans)
{
    if (verb->role == NULL)
        return MS_OK;
    char role[32];
    size_t tl = 0, kl = 0, sl = 0;
    const uint8_t *t = ms_agent_msg_get(req, "auth", 0, &tl),
                  *pk = ms_agent_msg_get(req, "auth_key", 0, &kl),
                  *sg = ms_agent_msg_get(req, "auth_sig", 0, &sl);
    if (version < 2 || t == NULL || pk == NULL || sg == NULL || kl != MS_KMS_ROLE_KEY_BYTES ||
        sl != MS_KMS_ROLE_SIG_BYTES) {
        ms_agent_msg_addf(ans, "err", "'%s' must be signed by the %s's key", verb->name,
                          verb->role);
        return MS_ERR_ROLE; /* unsigned (protocol 1) or malformed */
    }
    ms_err e = ms_kms_authorise(a->kms, role, (const char *)t, tl, pk, sg);
    if (e == MS_OK && strncmp(role, verb->role, strlen(verb->role)) != 0)
        e = MS_ERR_ROLE; /* the library's rule and the table disagree: refuse */
    if (e != MS_OK)
        return e;
    size_t off = 0, vl = 0, plain = 0, signed_n = 0;
    char key[MS_AGENT_FIELD_NAME_MAX + 1], want[2048];
    const uint8_t *val;
    while (e == MS_OK && ms_agent_msg_next(req, &off, key, &val, &vl)) {
        if (ms_agent_unsigned_field(key))
            continue;
        plain++;
        if (ms_request_get((const char *)t, tl, key, want, sizeof want) != MS_OK ||
            strlen(want) != vl || memcmp(want, val, vl) != 0)
            e = MS_ERR_ROLE; /* a field changed or added after signing */
    }
    if (e == MS_OK && (ms_request_each((const char *)t, tl, count_signed, &signed_n) != MS_OK ||
                       signed_n != plain))
        e = MS_ERR_ROLE; /* a signed field left out */
    if (e == MS_ERR_ROLE)
        ms_agent_msg_adds(ans, "err", "the request's fields are not the signed ones");
    return e;
}

/* ---- dispatch --------------------------------------------------------------------------- */

/* What a settings refusal names (the rows), without the sentence the exit code's message
 * repeats. */
static const char *settings_why(const char *d)
{
    static const char said[] = "the KMS settings in kms.db were changed outside the KMS: ";
    return strncmp(d, said, sizeof said - 1) == 0 ? d + sizeof said - 1 : d;
}

ms_err ms_agent_dispatch(ms_agent *a, const ms_agent_msg *req, ms_agent_msg *ans)
{
    ms_agent_msg body;
    char name[32] = "";
    uint64_t version = 1;
    size_t n = 0;
    ms_err e = MS_OK;
    ms_agent_msg_reset(ans);
    ms_agent_msg_addu(ans, "v", MS_AGENT_PROTOCOL);
    if (!ms_agent_msg_init(&body)) {
        ms_agent_msg_addu(ans, "status", MS_ERR_NOMEM);
        return MS_ERR_NOMEM;
    }
    const struct verb *verb = NULL;
    if (ms_agent_msg_get(req, "v", 0, &n) != NULL && !ms_agent_msg_u64(req, "v", 0, &version))
        e = MS_ERR_BAD_ENCODING;
    else if (version > MS_AGENT_PROTOCOL) {
        e = MS_ERR_USAGE;
        ms_agent_msg_addf(&body, "err", "protocol version %llu is newer than this agent's (%d)",
                          (unsigned long long)version, MS_AGENT_PROTOCOL);
    } else if (ms_agent_msg_str(req, "verb", 0, name, sizeof name) == NULL) {
        e = MS_ERR_ARG;
        ms_agent_msg_adds(&body, "err", "the request names no verb");
    } else if ((verb = find_verb(name)) == NULL) {
        e = MS_ERR_USAGE;
        ms_agent_msg_addf(&body, "err", "unknown verb '%s'", name);
    }
    ms_kms_detail_clear(a->kms); /* what the handle says next is about this request */
    if (e == MS_OK)
        e = authorise(a, verb, version, req, &body);
    if (e == MS_OK)
        e = verb->handle(a, req, &body);
    ms_kms_actor_clear(a->kms);
    ms_agent_msg_addu(ans, "status", (uint64_t)e);
    if (e != MS_OK && ms_agent_msg_get(&body, "err", 0, &n) == NULL) {
        /* unless the verb said why: the handle's own detail, set by this request */
        const char *d = ms_kms_detail(a->kms);
        ms_agent_msg_adds(ans, "err", d[0] == '\0'                  ? a->dir
                                      : e == MS_ERR_SETTINGS_CHANGED ? settings_why(d)
                                                                     : d);
    }
    if (body.overflow) {
        ms_agent_msg_reset(ans);
        ms_agent_msg_addu(ans, "v", MS_AGENT_PROTOCOL);
        ms_agent_msg_addu(ans, "status", MS_ERR_BAD_LENGTH);
        ms_agent_msg_adds(ans, "err", "the answer does not fit in one message");
        e = MS_ERR_BAD_LENGTH;
    } else if (body.len > 4) {
        if (ans->len + body.len - 4 <= MS_AGENT_MSG_MAX + 4) {
            memcpy(ans->buf + ans->len, body.buf + 4, body.len - 4);
            ans->len += body.len - 4;
        } else {
            ans->overflow = true;
        }
    }
    ms_agent_msg_free(&body);
    return e;
}

/* Progress messages to the client of the request being carried out. */
typedef struct progress_sink {
    int fd;
    ms_agent_msg msg;
    uint64_t last_ms; /* when the last one was sent */
    bool sent_any;
} progress_sink;

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* at most 10 messages a second; the command redraws its line at most 4 times a second */
#define PROGRESS_INTERVAL_MS 100

static void send_progress(void *ctx, size_t done, size_t total)
{
    progress_sink *p = ctx;
    uint64_t now = monotonic_ms();
    if (p->fd < 0 || (p->sent_any && done != total && now - p->last_ms < PROGRESS_INTERVAL_MS))
        return;
    /* Best effort: a client that does not read (stopped, or gone) is skipped, never
     * waited for; the work goes on and the answer is sent as before. */
    struct pollfd pfd = {p->fd, POLLOUT, 0};
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT))
        return;
    ms_agent_msg_reset(&p->msg);
    ms_agent_progress_fields(&p->msg, done, total);
    if (ms_agent_msg_send(p->fd, &p->msg) != MS_OK)
        p->fd = -1;
    p->last_ms = now;
    p->sent_any = true;
}

ms_err ms_agent_serve(ms_agent *a, int lfd, volatile sig_atomic_t *stop)
{
    ms_agent_msg req, ans;
    progress_sink sink = {-1, {NULL, 0, false}, 0, false};
    bool ok = ms_agent_msg_init(&req);
    ok = ms_agent_msg_init(&ans) && ok;
    ok = ms_agent_msg_init(&sink.msg) && ok;
    if (!ok) {
        ms_agent_msg_free(&req);
        ms_agent_msg_free(&ans);
        ms_agent_msg_free(&sink.msg);
        return MS_ERR_NOMEM;
    }
    while (!*stop && !a->seal_now) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        /* Only our own user may talk to us (the socket mode says so too). */
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != getuid()) {
            close(fd);
            continue;
        }
        struct timeval tv = {10, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ms_err e = ms_agent_msg_recv(fd, &req);
        if (e == MS_OK) {
            sink.fd = fd;
            sink.sent_any = false;
            a->progress = send_progress;
            a->progress_ctx = &sink;
            ms_kms_lock(a->kms); /* kms serve: the HTTPS threads share the handle */
            (void)ms_agent_dispatch(a, &req, &ans);
            ms_kms_unlock(a->kms);
            a->progress = NULL;
            a->progress_ctx = NULL;
        } else if (e != MS_ERR_IO) {
            ms_agent_msg_reset(&ans); /* a malformed frame is answered, not carried out */
            ms_agent_msg_addu(&ans, "v", MS_AGENT_PROTOCOL);
            ms_agent_msg_addu(&ans, "status", e);
            ms_agent_msg_adds(&ans, "err", "malformed request");
        }
        if (e != MS_ERR_IO)
            (void)ms_agent_msg_send(fd, &ans);
        ms_agent_msg_reset(&ans);
        ms_agent_msg_reset(&req);
        close(fd);
    }
    ms_agent_msg_free(&req);
    ms_agent_msg_free(&ans);
    ms_agent_msg_free(&sink.msg);
    return MS_OK;
}
