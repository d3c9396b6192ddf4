/*
 * The unseal agent's protocol and dispatch (src/kms/agent.h) with no process: messages
 * encoded and decoded, malformed frames refused, one message over a socket pair; then
 * ms_agent_dispatch against KMSs created in a temporary directory: unknown verb, newer
 * version, each role rule (open verbs, operator, officer, unsigned, another role's key,
 * a field changed, added or left out after signing, a replay), the answers' structured
 * fields, period parsing and scope, and the seal's refusal detail passed on for a
 * share of another KMS and a share entered twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kms/agent.h"
#include "kms/roles.h"
#include "mikeysakke/crypto.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

#define ALICE "tel:+447700900123"
#define BOB "tel:+447700900456"

static const uint8_t pass[] = "correct horse battery staple";

/* Role keys: 0 operator, 1-2 officers, 3 auditor. */
static ms_test_roles roles;

static void make_roles(ms_kms_config *cfg)
{
    cfg->n_officers = 2;
    cfg->n_auditors = 1;
    ms_test_kms_roles(cfg, &roles);
}

static bool field_is(const ms_agent_msg *m, const char *name, size_t index, const char *want)
{
    char v[512];
    return ms_agent_msg_str(m, name, index, v, sizeof v) != NULL && strcmp(v, want) == 0;
}

static bool err_has(const ms_agent_msg *ans, const char *needle)
{
    char v[1024];
    return ms_agent_msg_str(ans, "err", 0, v, sizeof v) != NULL && strstr(v, needle) != NULL;
}

/* ---- messages --------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    ms_agent_msg m, back;
    CHECK(ms_agent_msg_init(&m) && ms_agent_msg_init(&back));
    const uint8_t bin[5] = {0, 1, 0xff, 0, 7};
    ms_agent_msg_adds(&m, "verb", "user_list");
    ms_agent_msg_add(&m, "blob", bin, sizeof bin);
    ms_agent_msg_addu(&m, "count", 18446744073709551615ull);
    ms_agent_msg_adds(&m, "user", ALICE);
    ms_agent_msg_adds(&m, "user", BOB);
    ms_agent_msg_adds(&m, "empty", "");
    const uint8_t *frame;
    size_t len = 0, n = 0;
    CHECK_ERR(ms_agent_msg_frame(&m, &frame, &len), MS_OK);
    CHECK(len == m.len && frame[0] == 0 && ((size_t)frame[2] << 8 | frame[3]) == len - 4);
    CHECK_ERR(ms_agent_msg_decode(&back, frame, len), MS_OK);
    CHECK(field_is(&back, "verb", 0, "user_list"));
    const uint8_t *v = ms_agent_msg_get(&back, "blob", 0, &n);
    CHECK(v != NULL && n == sizeof bin && memcmp(v, bin, n) == 0);
    char text[16];
    CHECK(ms_agent_msg_str(&back, "blob", 0, text, sizeof text) == NULL); /* not text */
    uint64_t u = 0;
    CHECK(ms_agent_msg_u64(&back, "count", 0, &u) && u == 18446744073709551615ull);
    CHECK(!ms_agent_msg_u64(&back, "verb", 0, &u));
    CHECK(ms_agent_msg_count(&back, "user") == 2);
    CHECK(field_is(&back, "user", 0, ALICE) && field_is(&back, "user", 1, BOB));
    CHECK(ms_agent_msg_get(&back, "user", 2, &n) == NULL);
    CHECK(ms_agent_msg_get(&back, "empty", 0, &n) != NULL && n == 0);
    CHECK(ms_agent_msg_get(&back, "absent", 0, &n) == NULL);
    CHECK(ms_agent_msg_str(&back, "user", 0, text, 5) == NULL); /* too long for out */

    /* a progress message is told from an answer by its fields */
    ms_agent_msg pm;
    CHECK(ms_agent_msg_init(&pm));
    ms_agent_progress_fields(&pm, 256, 1000000);
    CHECK(ms_agent_is_progress(&pm) && !ms_agent_is_progress(&back));
    CHECK(ms_agent_msg_u64(&pm, "progress_done", 0, &u) && u == 256);
    CHECK(ms_agent_msg_u64(&pm, "progress_total", 0, &u) && u == 1000000);
    CHECK(ms_agent_msg_u64(&pm, "v", 0, &u) && u == MS_AGENT_PROTOCOL);
    ms_agent_msg_addu(&pm, "status", 0); /* an answer that happens to carry the fields */
    CHECK(!ms_agent_is_progress(&pm));
    ms_agent_msg_free(&pm);

    /* the walk gives every field in order */
    char name[MS_AGENT_FIELD_NAME_MAX + 1];
    size_t off = 0, count = 0;
    while (ms_agent_msg_next(&back, &off, name, &v, &n))
        count++;
    CHECK(count == 6);

    /* one message over a socket pair */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_ERR(ms_agent_msg_send(sv[0], &m), MS_OK);
    ms_agent_msg_reset(&back);
    CHECK_ERR(ms_agent_msg_recv(sv[1], &back), MS_OK);
    CHECK(back.len == m.len && memcmp(back.buf, m.buf, m.len) == 0);
    close(sv[0]);
    CHECK_ERR(ms_agent_msg_recv(sv[1], &back), MS_ERR_IO); /* the peer left */
    close(sv[1]);
    ms_agent_msg_free(&m);
    ms_agent_msg_free(&back);
}

static void test_malformed(void)
{
    ms_agent_msg m;
    CHECK(ms_agent_msg_init(&m));
    uint8_t f[64];
    /* shorter than a header; a header that does not give the body's length */
    CHECK_ERR(ms_agent_msg_decode(&m, f, 3), MS_ERR_BAD_LENGTH);
    memcpy(f, "\0\0\0\x05", 4);
    CHECK_ERR(ms_agent_msg_decode(&m, f, 4), MS_ERR_BAD_LENGTH);
    /* a body over the limit */
    memcpy(f, "\0\x20\0\x01", 4);
    CHECK_ERR(ms_agent_msg_decode(&m, f, 4), MS_ERR_BAD_LENGTH);
    /* a value running past the end */
    memcpy(f, "\0\0\0\x08" "\x01v\0\0\0\x09" "ab", 12);
    CHECK_ERR(ms_agent_msg_decode(&m, f, 12), MS_ERR_BAD_ENCODING);
    /* a name running past the end */
    memcpy(f, "\0\0\0\x03" "\x09vv", 7);
    CHECK_ERR(ms_agent_msg_decode(&m, f, 7), MS_ERR_BAD_ENCODING);
    /* an empty name */
    memcpy(f, "\0\0\0\x06" "\x00\0\0\0\x01" "x", 10);
    CHECK_ERR(ms_agent_msg_decode(&m, f, 10), MS_ERR_BAD_ENCODING);
    /* a well-formed one decodes */
    memcpy(f, "\0\0\0\x07" "\x01v\0\0\0\x01" "3", 11);
    CHECK_ERR(ms_agent_msg_decode(&m, f, 11), MS_OK);
    CHECK(field_is(&m, "v", 0, "3"));

    /* the same over a socket: an over-long frame is refused before its body is read */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(write(sv[0], "\x7f\0\0\0", 4) == 4);
    CHECK_ERR(ms_agent_msg_recv(sv[1], &m), MS_ERR_BAD_LENGTH);
    CHECK(write(sv[0], "\0\0\0\x03" "\x09vv", 7) == 7);
    CHECK_ERR(ms_agent_msg_recv(sv[1], &m), MS_ERR_BAD_ENCODING);
    close(sv[0]);
    close(sv[1]);

    /* adding past the limit marks the message, which then is not framed */
    ms_agent_msg_reset(&m);
    uint8_t *big = calloc(1, MS_AGENT_MSG_MAX);
    ms_agent_msg_add(&m, "big", big, MS_AGENT_MSG_MAX);
    CHECK(m.overflow);
    const uint8_t *frame;
    size_t len;
    CHECK_ERR(ms_agent_msg_frame(&m, &frame, &len), MS_ERR_BAD_LENGTH);
    ms_agent_msg_reset(&m);
    CHECK(!m.overflow);
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ms_agent_msg_adds(&m, long_name, "x");
    CHECK(m.overflow);
    free(big);
    ms_agent_msg_free(&m);
}

static void test_periods_and_table(ms_kms *k)
{
    uint64_t p = 0, cur = 0;
    ms_kms_status st;
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    cur = st.current_period;
    CHECK_ERR(ms_agent_period(k, "current", &p), MS_OK);
    CHECK(p == cur);
    CHECK_ERR(ms_agent_period(k, "next", &p), MS_OK);
    CHECK(p == cur + 1);
    CHECK_ERR(ms_agent_period(k, "1509", &p), MS_OK);
    CHECK(p == 1509);
    CHECK_ERR(ms_agent_period(k, "2025-10-02T12:00:00Z", &p), MS_OK);
    CHECK(p == 125 * 12 + 9); /* monthly periods since 1900 */
    /* every form of util/timefmt.h; a '-' in a time is no range */
    p = 0;
    CHECK_ERR(ms_agent_period(k, "2025-10-02T12:00:00.5Z", &p), MS_OK);
    CHECK(p == 125 * 12 + 9);
    p = 0;
    CHECK_ERR(ms_agent_period(k, "2025-10-01T01:00:00+02:00", &p), MS_OK);
    CHECK(p == 125 * 12 + 8); /* still September in UTC */
    CHECK_ERR(ms_agent_period(k, "2025-13-02T12:00:00Z", &p), MS_ERR_USAGE);
    CHECK_ERR(ms_agent_period(k, "2025-10-02T12:00:00.Z", &p), MS_ERR_USAGE);
    CHECK_ERR(ms_agent_period(k, "2025-10-02", &p), MS_ERR_USAGE);
    CHECK_ERR(ms_agent_period(k, "all", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_period(k, "*", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_period(k, "1509-1510", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_period(k, "1509..", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_period(k, "soon", &p), MS_ERR_USAGE);
    CHECK_ERR(ms_agent_extract_scope(k, ALICE, "current", &p), MS_OK);
    CHECK(p == cur);
    CHECK_ERR(ms_agent_extract_scope(k, ALICE "," BOB, "current", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_extract_scope(k, "*", "current", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_extract_scope(k, "all", "current", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_extract_scope(k, ALICE, "1509,1510", &p), MS_ERR_AUDIT_SCOPE);
    CHECK_ERR(ms_agent_extract_scope(k, ALICE, "1509-1510", &p), MS_ERR_AUDIT_SCOPE);

    ms_err e = MS_OK;
    CHECK(ms_agent_verb_role("status", &e) == NULL && e == MS_OK);
    CHECK(ms_agent_verb_role("extract", &e) == NULL && e == MS_OK);
    CHECK(strcmp(ms_agent_verb_role("user_add", &e), "operator") == 0 && e == MS_OK);
    CHECK(strcmp(ms_agent_verb_role("audit_syslog", &e), "operator") == 0);
    CHECK(strcmp(ms_agent_verb_role("enrol", &e), "officer") == 0);
    CHECK(ms_agent_verb_role("format_disk", &e) == NULL && e == MS_ERR_USAGE);
}

/* ---- dispatch --------------------------------------------------------------------------- */

/* req through its frame (as the socket would carry it), then dispatched. */
static ms_err call(ms_agent *a, ms_agent_msg *req, ms_agent_msg *ans)
{
    ms_agent_msg wire;
    const uint8_t *frame;
    size_t len;
    if (!ms_agent_msg_init(&wire))
        return MS_ERR_NOMEM;
    ms_err e = ms_agent_msg_frame(req, &frame, &len);
    if (e == MS_OK)
        e = ms_agent_msg_decode(&wire, frame, len);
    if (e == MS_OK) {
        e = ms_agent_dispatch(a, &wire, ans);
        uint64_t st = 99, v = 0;
        CHECK(ms_agent_msg_u64(ans, "v", 0, &v) && v == MS_AGENT_PROTOCOL);
        CHECK(ms_agent_msg_u64(ans, "status", 0, &st) && st == (uint64_t)e);
        CHECK((e == MS_OK) == (ms_agent_msg_get(ans, "err", 0, &len) == NULL));
    }
    ms_agent_msg_free(&wire);
    ms_agent_msg_reset(req);
    return e;
}

/* A request signed by role key `who`: verb, then name/value pairs, NULL-terminated. */
static void sign_as(ms_kms *k, ms_agent_msg *req, int who)
{
    ms_kms_status st;
    CHECK_ERR(ms_kms_status_get(k, &st), MS_OK);
    CHECK_ERR(ms_agent_sign(req, st.kms_uri, (uint64_t)time(NULL), roles.seed[who]), MS_OK);
}

/* A copy of req with field `name` given `value` (NULL: left out), or `extra` added. */
static void copy_changed(const ms_agent_msg *req, ms_agent_msg *out, const char *name,
                         const char *value, const char *extra)
{
    char n[MS_AGENT_FIELD_NAME_MAX + 1];
    size_t off = 0, len = 0;
    const uint8_t *v;
    ms_agent_msg_reset(out);
    while (ms_agent_msg_next(req, &off, n, &v, &len)) {
        if (name != NULL && strcmp(n, name) == 0) {
            if (value != NULL)
                ms_agent_msg_adds(out, n, value);
        } else {
            ms_agent_msg_add(out, n, v, len);
        }
    }
    if (extra != NULL)
        ms_agent_msg_adds(out, extra, "1");
}

static void test_dispatch(const char *root)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/pass", root);
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = (uint64_t)time(NULL) + MS_NTP_UNIX_OFFSET};
    ms_kms_seal_material m = {.method = MS_KMS_SEAL_PASSPHRASE,
                              .passphrase = pass,
                              .passphrase_len = sizeof pass - 1,
                              .scrypt_log2_n = 10};
    make_roles(&cfg);
    ms_kms_handout *h = calloc(1, sizeof *h);
    CHECK_ERR(ms_kms_create(h, dir, &cfg, &m, NULL, NULL, 0), MS_OK);
    free(h);
    ms_agent a;
    memset(&a, 0, sizeof a);
    snprintf(a.dir, sizeof a.dir, "%s", dir);
    CHECK_ERR(ms_kms_open(&a.kms, dir, NULL, NULL, 0), MS_OK);
    if (a.kms == NULL)
        return;
    test_periods_and_table(a.kms);
    ms_agent_msg req, ans, bad;
    CHECK(ms_agent_msg_init(&req) && ms_agent_msg_init(&ans) && ms_agent_msg_init(&bad));
    uint64_t u = 0;

    /* no verb, an unknown verb, a newer version, a version that is not a number */
    ms_agent_msg_adds(&req, "user", ALICE);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_ARG);
    CHECK(err_has(&ans, "names no verb"));
    ms_agent_msg_adds(&req, "verb", "format_disk");
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_USAGE);
    CHECK(err_has(&ans, "unknown verb 'format_disk'"));
    ms_agent_msg_adds(&req, "verb", "status");
    ms_agent_msg_addu(&req, "v", MS_AGENT_PROTOCOL + 1);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_USAGE);
    char newer[40];
    snprintf(newer, sizeof newer, "protocol version %d", MS_AGENT_PROTOCOL + 1);
    CHECK(err_has(&ans, newer));
    ms_agent_msg_adds(&req, "verb", "status");
    ms_agent_msg_adds(&req, "v", "three");
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_BAD_ENCODING);

    /* open verbs need no signature (protocol 1 and 3 alike); answers are fields */
    ms_agent_msg_adds(&req, "verb", "status");
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(field_is(&ans, "kms", 0, "kms.example.org") && field_is(&ans, "state", 0, "sealed"));
    CHECK(field_is(&ans, "seal", 0, "passphrase") && field_is(&ans, "scheme", 0, "rfc6509"));
    CHECK(ms_agent_msg_u64(&ans, "audit_entries", 0, &u) && u >= 1);
    CHECK(ms_agent_msg_get(&ans, "out", 0, &(size_t){0}) == NULL); /* no preformatted text */

    /* sealed: the library's refusal detail comes back, not the directory */
    ms_agent_msg_adds(&req, "verb", "unseal");
    ms_agent_msg_adds(&req, "passphrase", "wrong");
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_PASSPHRASE);
    CHECK(err_has(&ans, "wrong passphrase"));
    ms_agent_msg_adds(&req, "verb", "unseal");
    ms_agent_msg_add(&req, "passphrase", pass, sizeof pass - 1);
    ms_agent_msg_addu(&req, "v", MS_AGENT_PROTOCOL);
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(field_is(&ans, "state", 0, "unsealed"));

    /* operator verbs: unsigned (the old attack), signed by an officer, by the operator */
    ms_agent_msg_adds(&req, "verb", "user_add");
    ms_agent_msg_adds(&req, "user", ALICE);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_ROLE);
    CHECK(err_has(&ans, "signed by the operator's key"));
    ms_agent_msg_adds(&req, "verb", "user_add");
    ms_agent_msg_adds(&req, "user", ALICE);
    sign_as(a.kms, &req, 1);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_ROLE);
    ms_agent_msg_adds(&req, "verb", "user_add");
    ms_agent_msg_adds(&req, "user", ALICE);
    sign_as(a.kms, &req, 0);
    copy_changed(&req, &bad, NULL, NULL, NULL); /* kept for the replay below */
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(field_is(&ans, "user", 0, ALICE));
    CHECK_ERR(call(&a, &bad, &ans), MS_ERR_REQUEST_STALE); /* the same nonce again */
    ms_agent_msg_adds(&req, "verb", "user_add");
    ms_agent_msg_adds(&req, "user", "not a uri");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_IDENTITY);
    CHECK(!err_has(&ans, dir)); /* says what is wrong with the URI */

    /* a signed request changed after signing: a field's value, a field added, one left
     * out, the signature bent, signed fields sent as protocol 1 (each signed afresh: the
     * library spends a nonce once the signature verifies) */
    static const struct {
        const char *name, *value, *extra;
    } tamper[] = {{"user", "tel:+15550000000", NULL}, {NULL, NULL, "threads"},
                  {"user", NULL, NULL},               {"auth_sig", "x", NULL},
                  {"v", "1", NULL}};
    for (size_t i = 0; i < sizeof tamper / sizeof tamper[0]; i++) {
        ms_agent_msg_adds(&req, "verb", "user_add");
        ms_agent_msg_adds(&req, "user", BOB);
        sign_as(a.kms, &req, 0);
        copy_changed(&req, &bad, tamper[i].name, tamper[i].value, tamper[i].extra);
        ms_agent_msg_reset(&req);
        CHECK_ERR(call(&a, &bad, &ans), MS_ERR_ROLE);
        CHECK(i == 3 || err_has(&ans, i == 4 ? "must be signed" : "not the signed ones"));
    }
    ms_agent_msg_adds(&req, "verb", "user_add");
    ms_agent_msg_adds(&req, "user", BOB);
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_OK); /* untouched, the same request works */

    /* officer verb: the operator's key cannot enrol, an officer's can */
    ms_agent_msg_adds(&req, "verb", "enrol");
    ms_agent_msg_adds(&req, "user", ALICE);
    ms_agent_msg_adds(&req, "device", "alice-phone");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_ROLE);
    ms_agent_msg_adds(&req, "verb", "enrol");
    ms_agent_msg_adds(&req, "user", ALICE);
    ms_agent_msg_adds(&req, "device", "alice-phone");
    sign_as(a.kms, &req, 2);
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    size_t n = 0;
    const uint8_t *xml = ms_agent_msg_get(&ans, "enrolment", 0, &n);
    CHECK(xml != NULL && n > 100 && memchr(xml, '<', n) != NULL);
    CHECK(field_is(&ans, "device", 0, "alice-phone"));

    /* the list: repeated fields, counts as numbers */
    ms_agent_msg_adds(&req, "verb", "user_list");
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(ms_agent_msg_count(&ans, "user") == 2 && ms_agent_msg_count(&ans, "devices") == 2);
    for (size_t i = 0; i < 2; i++) {
        char uri[64];
        CHECK(ms_agent_msg_str(&ans, "user", i, uri, sizeof uri) != NULL);
        CHECK(ms_agent_msg_u64(&ans, "devices", i, &u) && u == (strcmp(uri, ALICE) == 0));
        CHECK(field_is(&ans, "user_state", i, "active"));
    }

    /* issue: one period, a count and the period as numbers; several periods refused */
    ms_agent_msg_adds(&req, "verb", "issue");
    ms_agent_msg_adds(&req, "period", "all");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_USAGE);
    ms_agent_msg_adds(&req, "verb", "issue");
    ms_agent_msg_adds(&req, "period", "current");
    ms_agent_msg_adds(&req, "threads", "many");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_USAGE);
    /* progress goes where the agent sends it, only when the request asks */
    ms_test_progress pr;
    memset(&pr, 0, sizeof pr);
    a.progress = ms_test_progress_cb;
    a.progress_ctx = &pr;
    ms_agent_msg_adds(&req, "verb", "issue");
    ms_agent_msg_adds(&req, "period", "current");
    ms_agent_msg_adds(&req, "progress", "1");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(ms_agent_msg_u64(&ans, "issued", 0, &u) && u == 1);
    CHECK(pr.calls >= 2 && pr.first_done == 0 && pr.last_done == 1 && pr.last_total == 1);
    ms_kms_status st;
    CHECK_ERR(ms_kms_status_get(a.kms, &st), MS_OK);
    CHECK(ms_agent_msg_u64(&ans, "period", 0, &u) && u == st.current_period);
    size_t calls = pr.calls;
    ms_agent_msg_adds(&req, "verb", "issue");
    ms_agent_msg_adds(&req, "period", "next");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(ms_agent_msg_u64(&ans, "issued", 0, &u) && u == 1 && pr.calls == calls);
    a.progress = NULL;
    a.progress_ctx = NULL;
    ms_agent_msg_adds(&req, "verb", "issue");
    ms_agent_msg_addf(&req, "period", "%llu", (unsigned long long)st.current_period + 99);
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_PERIOD);
    CHECK(err_has(&ans, "max_periods_ahead")); /* the limit named */

    /* the operator's syslog switch refuses anything but yes or no */
    ms_agent_msg_adds(&req, "verb", "audit_syslog");
    ms_agent_msg_adds(&req, "copy", "maybe");
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_USAGE);

    /* the open checkpoint verb answers a checkpoint line */
    ms_agent_msg_adds(&req, "verb", "checkpoint");
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    char cp[MS_KMS_CHECKPOINT_MAX];
    CHECK(ms_agent_msg_str(&ans, "checkpoint", 0, cp, sizeof cp) != NULL &&
          strncmp(cp, "mikeysakke-audit-checkpoint ", 28) == 0);

    /* seal: the agent should exit, unless it serves HTTPS as well */
    a.serving = true;
    ms_agent_msg_adds(&req, "verb", "seal");
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(!a.seal_now && ms_agent_msg_u64(&ans, "stays", 0, &u) && u == 1);
    a.serving = false;
    ms_agent_msg_adds(&req, "verb", "seal");
    CHECK_ERR(call(&a, &req, &ans), MS_OK);
    CHECK(a.seal_now && field_is(&ans, "state", 0, "sealed"));
    CHECK(ms_agent_msg_u64(&ans, "stays", 0, &u) && u == 0);
    ms_agent_msg_adds(&req, "verb", "user_remove");
    ms_agent_msg_adds(&req, "user", BOB);
    sign_as(a.kms, &req, 0);
    CHECK_ERR(call(&a, &req, &ans), MS_ERR_SEALED);
    CHECK(err_has(&ans, dir)); /* nothing more to say than which KMS */

    ms_agent_msg_free(&req);
    ms_agent_msg_free(&ans);
    ms_agent_msg_free(&bad);
    ms_kms_close(a.kms);
}

/* A share of another KMS, a corrupted share and one entered twice: each named. */
static void test_share_detail(const char *root)
{
    char dir[2][512];
    ms_kms_handout *h[2] = {calloc(1, sizeof *h[0]), calloc(1, sizeof *h[1])};
    for (int i = 0; i < 2; i++) {
        snprintf(dir[i], sizeof dir[i], "%s/shares-%d", root, i);
        ms_kms_config cfg = {.kms_uri = "kms.example.org",
                             .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                             .first_time = (uint64_t)time(NULL) + MS_NTP_UNIX_OFFSET};
        ms_kms_seal_material m = {.method = MS_KMS_SEAL_SHARES, .k = 2, .n = 3};
        make_roles(&cfg);
        CHECK_ERR(ms_kms_create(h[i], dir[i], &cfg, &m, NULL, NULL, 0), MS_OK);
    }
    ms_agent a;
    memset(&a, 0, sizeof a);
    snprintf(a.dir, sizeof a.dir, "%s", dir[0]);
    CHECK_ERR(ms_kms_open(&a.kms, dir[0], NULL, NULL, 0), MS_OK);
    ms_agent_msg req, ans;
    CHECK(ms_agent_msg_init(&req) && ms_agent_msg_init(&ans));
    uint64_t u = 0;
    if (a.kms != NULL && h[0] != NULL && h[1] != NULL) {
        ms_agent_msg_adds(&req, "verb", "unseal");
        ms_agent_msg_add(&req, "share", h[1]->share[0], h[1]->share_len[0]);
        CHECK_ERR(call(&a, &req, &ans), MS_ERR_SHARE);
        CHECK(err_has(&ans, "from another KMS"));
        uint8_t bent[MS_KMS_SHARE_MAX];
        memcpy(bent, h[0]->share[1], h[0]->share_len[1]);
        bent[h[0]->share_len[1] - 1] ^= 1;
        ms_agent_msg_adds(&req, "verb", "unseal");
        ms_agent_msg_add(&req, "share", bent, h[0]->share_len[1]);
        CHECK_ERR(call(&a, &req, &ans), MS_ERR_SHARE);
        CHECK(err_has(&ans, "corrupted"));
        ms_agent_msg_adds(&req, "verb", "unseal");
        ms_agent_msg_add(&req, "share", h[0]->share[0], h[0]->share_len[0]);
        CHECK_ERR(call(&a, &req, &ans), MS_OK);
        CHECK(field_is(&ans, "state", 0, "sealed"));
        CHECK(ms_agent_msg_u64(&ans, "shares_have", 0, &u) && u == 1);
        CHECK(ms_agent_msg_u64(&ans, "shares_need", 0, &u) && u == 2);
        ms_agent_msg_adds(&req, "verb", "unseal");
        ms_agent_msg_add(&req, "share", h[0]->share[0], h[0]->share_len[0]);
        CHECK_ERR(call(&a, &req, &ans), MS_ERR_SHARE);
        CHECK(err_has(&ans, "already entered"));
        /* a later refusal that sets no detail does not repeat the old one */
        ms_agent_msg_adds(&req, "verb", "user_list");
        ms_agent_msg_adds(&req, "v", "9");
        CHECK_ERR(call(&a, &req, &ans), MS_ERR_USAGE);
        CHECK(!err_has(&ans, "already entered"));
        ms_agent_msg_adds(&req, "verb", "status");
        CHECK_ERR(call(&a, &req, &ans), MS_OK);
        CHECK(ms_agent_msg_u64(&ans, "shares_have", 0, &u) && u == 1);
        ms_agent_msg_adds(&req, "verb", "unseal");
        ms_agent_msg_add(&req, "share", h[0]->share[2], h[0]->share_len[2]);
        CHECK_ERR(call(&a, &req, &ans), MS_OK);
        CHECK(field_is(&ans, "state", 0, "unsealed"));
        CHECK(ms_agent_msg_get(&ans, "shares_have", 0, &(size_t){0}) == NULL);
    }
    ms_agent_msg_free(&req);
    ms_agent_msg_free(&ans);
    ms_kms_close(a.kms);
    for (int i = 0; i < 2; i++) {
        if (h[i] != NULL)
            ms_wipe(h[i], sizeof *h[i]);
        free(h[i]);
    }
}

int main(void)
{
    test_round_trip();
    test_malformed();
    char root[64];
    if (!ms_test_tmpdir(root, sizeof root, "agent"))
        return 1;
    test_dispatch(root);
    test_share_detail(root);
    ms_test_rmtree(root);
    return ms_test_finish();
}
