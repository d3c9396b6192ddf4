/*
 * The distribution server's handler (src/dist/dist.c) driven directly, on a real export
 * made by the KMS facade: the right token gets the device's package (which the device
 * can read), and each refusal gets its status and a KmsError: wrong, malformed or no
 * token (401), another user's URI (403), unknown device, period without package and
 * unknown resource (404), not POST (405), malformed time or user (400), no export yet
 * (503), a package that does not match the index (503). A second export (next period)
 * is picked up without reopening; a malformed index is refused and the old one kept.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "dist/dist.h"
#include "kms/roles.h"
#include "kmsif/kmsif.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

/* 2025-10-02T12:00:00Z in NTP seconds: key period (125 * 12 + 9) = 1509. */
#define T0 (1759406400ull + 2208988800ull)
#define T1 (T0 + 31ull * 86400) /* 2025-11-02: period 1510 */
#define T2 (T0 + 61ull * 86400) /* 2025-12-02: period 1511 */
#define P0 1509u
#define ALICE "tel:+447700900123"
#define BOB "tel:+447700900456"
#define ALICE_PCT "tel%3A%2B447700900123"
#define BOB_PCT "tel%3A%2B447700900456"
#define ROOT "/keymanagement/identity/v1/"

static uint64_t clock_now = T0;
static uint64_t fixed_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static const uint8_t pass[] = "correct horse battery staple";
static char exp_dir[600];
static ms_device_keys alice_keys, bob_keys;
static char alice_bearer[200], bob_bearer[200];
static ms_kms *kms;

static void make_bearer(char *out, size_t cap, const ms_device_keys *k)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "mikeysakke-device-token:%s", k->device_id);
    uint8_t mac[32];
    size_t len = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, k->ink, 32, (const uint8_t *)msg,
                  (size_t)n, mac, 32, &len) == NULL)
        abort();
    int w = snprintf(out, cap, "%s.", k->device_id);
    for (size_t i = 0; i < 32; i++)
        w += snprintf(out + w, cap - (size_t)w, "%02x", mac[i]);
}

/* Time path segment: NTP 32.32 as 16 hex digits. */
static const char *tseg(uint64_t secs)
{
    static char s[17];
    snprintf(s, sizeof s, "%016llX", (unsigned long long)(secs << 32));
    return s;
}

/* keyprov/<user>[/<time>] (t = 0: no time); user already percent-encoded or not. */
static const char *kp(const char *user, uint64_t t)
{
    static char s[400];
    snprintf(s, sizeof s, "%skeyprov/%s%s%s", ROOT, user, t ? "/" : "", t ? tseg(t) : "");
    return s;
}

/* The Content-Type of the requests ask_body() makes. */
static const char *content_type = "application/xml";

struct answer {
    int status;
    char *body;
    size_t len;
};

static struct answer ask_body(ms_dist *d, const char *method, const char *path,
                              const char *bearer, const char *body)
{
    ms_http_request req = {method, path, "127.0.0.1", bearer, (const uint8_t *)body,
                           strlen(body), NULL, content_type};
    ms_http_response resp = {0, NULL, NULL, 0};
    ms_dist_handle(d, &req, &resp);
    struct answer a = {resp.status, resp.body, resp.body_len};
    return a;
}

/* The KmsRequest a device sends (the user of the bearer's device, unless given). */
static char *request_for(const char *path, const char *bearer, const char *user,
                         uint64_t t)
{
    ms_kms_request rq;
    memset(&rq, 0, sizeof rq);
    if (user == NULL)
        user = bearer != NULL && strncmp(bearer, "bob-1", 5) == 0 ? BOB : ALICE;
    snprintf(rq.user_uri, sizeof rq.user_uri, "%s", user);
    snprintf(rq.kms_uri, sizeof rq.kms_uri, "kms.example.org");
    snprintf(rq.client_req_url, sizeof rq.client_req_url, "https://dist.example.org%s",
             path);
    rq.time = t;
    static uint32_t next_us = 1;
    rq.time_us = next_us++; /* a fresh request each time: not a replay */
    static char out[4096];
    size_t len = 0;
    if (ms_kmsif_request_write(out, sizeof out, &len, &rq) != MS_OK)
        abort();
    return out;
}

static struct answer ask(ms_dist *d, const char *method, const char *path, const char *bearer)
{
    return ask_body(d, method, path, bearer, request_for(path, bearer, NULL, clock_now));
}

static int status_body(ms_dist *d, const char *path, const char *bearer, const char *body,
                       ms_err want_code)
{
    struct answer a = ask_body(d, "POST", path, bearer, body);
    ms_kms_reply *r = calloc(1, sizeof *r);
    if (a.status != 200 && (ms_kmsif_reply_parse(r, a.body, a.len, NULL, 0) != MS_OK ||
                            r->error_code != (int)want_code))
        a.status = -a.status;
    free(r);
    free(a.body);
    return a.status;
}

/* Status and, for a refusal, the KmsError (read back by the client's reader) with the
 * ms_err code `code`. */
static int status_is(ms_dist *d, const char *method, const char *path, const char *bearer,
                     ms_err code)
{
    struct answer a = ask(d, method, path, bearer);
    if (a.status != 200) {
        ms_kms_reply *r = calloc(1, sizeof *r);
        if (ms_kmsif_reply_parse(r, a.body, a.len, NULL, 0) != MS_OK ||
            r->error_code != (int)code)
            a.status = -a.status; /* no or the wrong error element: a wrong status */
        free(r);
    }
    free(a.body);
    return a.status;
}

/* keyprov that the device can read: the period of its one key set. */
static uint64_t keyprov_period(ms_dist *d, const char *path, const char *bearer,
                               const ms_device_keys *keys)
{
    struct answer a = ask(d, "POST", path, bearer);
    uint64_t p = 0;
    if (a.status == 200) {
        ms_key_package *pkg = calloc(1, sizeof *pkg);
        char why[200] = "";
        if (ms_kmsif_package_parse(pkg, a.body, a.len, keys, why, sizeof why) == MS_OK &&
            pkg->n_keysets == 1)
            p = pkg->keysets[0].period_no;
        else
            fprintf(stderr, "package refused: %s\n", why);
        ms_wipe(pkg, sizeof *pkg);
        free(pkg);
    }
    free(a.body);
    return p;
}

/* The server's log lines, kept for checks. */
static char log_text[8192];
static void keep_log(void *ctx, const char *line)
{
    (void)ctx;
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof log_text - n, "%s\n", line);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char tmp[800], path[800];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        abort();
    fputs(text, f);
    fclose(f);
    if (rename(tmp, path) != 0) /* atomically, as the KMS does */
        abort();
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void setup_kms(const char *root)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/kms", root);
    snprintf(exp_dir, sizeof exp_dir, "%s/export", root);
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_TEL_MONTHLY,
                         .first_time = T0,
                         .n_auditors = 1};
    ms_test_roles roles = {.made = false};
    ms_test_kms_create(dir, &cfg, &roles, pass, sizeof pass - 1, NULL);
    ms_wipe(&roles, sizeof roles);
    CHECK_ERR(ms_kms_open(&kms, dir, NULL, NULL, 0), MS_OK);
    if (kms == NULL)
        abort();
    ms_kms_set_clock(kms, fixed_clock, &clock_now);
    CHECK_ERR(ms_kms_unseal_passphrase(kms, pass, sizeof pass - 1), MS_OK);
    CHECK_ERR(ms_kms_user_add(kms, ALICE), MS_OK);
    CHECK_ERR(ms_kms_user_add(kms, BOB), MS_OK);
    char *xml = malloc(MS_KMSIF_MAX_XML);
    size_t len = 0;
    ms_kms_certificate cert;
    CHECK_ERR(ms_kms_device_enrol(kms, xml, MS_KMSIF_MAX_XML, &len, ALICE, "alice-1"), MS_OK);
    CHECK_ERR(ms_kmsif_enrolment_parse(&alice_keys, &cert, xml, len, NULL, 0), MS_OK);
    CHECK_ERR(ms_kms_device_enrol(kms, xml, MS_KMSIF_MAX_XML, &len, BOB, "bob-1"), MS_OK);
    CHECK_ERR(ms_kmsif_enrolment_parse(&bob_keys, &cert, xml, len, NULL, 0), MS_OK);
    free(xml);
    make_bearer(alice_bearer, sizeof alice_bearer, &alice_keys);
    make_bearer(bob_bearer, sizeof bob_bearer, &bob_keys);
    size_t issued = 0, n_pkg = 0;
    CHECK_ERR(ms_kms_issue(kms, &issued, P0, 1), MS_OK);
    CHECK_ERR(ms_kms_export(kms, &n_pkg, P0, exp_dir), MS_OK);
    CHECK(n_pkg == 2);
}

static void test_open(const char *root)
{
    ms_dist *d = NULL;
    char path[700], detail[200];
    snprintf(path, sizeof path, "%s/none", root);
    CHECK_ERR(ms_dist_open(&d, path, NULL, NULL, detail, sizeof detail), MS_ERR_IO);
    CHECK(d == NULL);

    /* an empty folder: served as "no export yet" until one arrives */
    snprintf(path, sizeof path, "%s/empty", root);
    mkdir(path, 0700);
    CHECK_ERR(ms_dist_open(&d, path, NULL, NULL, detail, sizeof detail), MS_OK);
    if (d == NULL)
        return;
    const char *st = NULL;
    CHECK(!ms_dist_health(d, &st) && strcmp(st, "no export") == 0);
    CHECK(status_is(d, "POST", ROOT "keyprov", alice_bearer, MS_ERR_NO_KEYS) == 503);
    ms_dist_close(d);

    /* an index without one usable line is an error; the log names the bad line */
    write_file(path, "index.txt", "# header\nalice-1 tel:+1 ../etc/passwd " 
               "00 1 00\n");
    log_text[0] = '\0';
    CHECK_ERR(ms_dist_open(&d, path, keep_log, NULL, detail, sizeof detail), MS_ERR_CONFIG);
    CHECK(strstr(detail, "none of its 1 lines") != NULL);
    CHECK(strstr(log_text, "index.txt:2: bad package file name, device alice-1: line skipped") !=
          NULL);
}

static void test_serve(void)
{
    ms_dist *d = NULL;
    char detail[200] = "";
    CHECK_ERR(ms_dist_open(&d, exp_dir, NULL, NULL, detail, sizeof detail), MS_OK);
    if (d == NULL) {
        fprintf(stderr, "open: %s\n", detail);
        return;
    }
    ms_dist_set_clock(d, fixed_clock, &clock_now);
    CHECK(ms_dist_packages(d) == 2);
    const char *st = NULL;
    CHECK(ms_dist_health(d, &st) && strcmp(st, "ok") == 0);

    char path[400], bad[200];
    /* the right token: the device's own package, for the current period and by time */
    CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T0));
    CHECK(keyprov_period(d, path, alice_bearer, &alice_keys) == P0);
    snprintf(path, sizeof path, "%s", kp(ALICE, 0));
    CHECK(keyprov_period(d, path, alice_bearer, &alice_keys) == P0); /* unencoded, no time */
    snprintf(path, sizeof path, "%s", kp(BOB_PCT, T0));
    CHECK(keyprov_period(d, path, bob_bearer, &bob_keys) == P0);
    /* and Bob's package is not Alice's */
    CHECK(keyprov_period(d, path, bob_bearer, &alice_keys) == 0);

    /* 401: wrong token, another device's token under this device's name, none, malformed */
    snprintf(bad, sizeof bad, "%s", alice_bearer);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
    CHECK(status_is(d, "POST", ROOT "keyprov", bad, MS_ERR_UNAUTHORISED) == 401);
    snprintf(bad, sizeof bad, "alice-1%s", strrchr(bob_bearer, '.'));
    CHECK(status_is(d, "POST", ROOT "keyprov", bad, MS_ERR_UNAUTHORISED) == 401);
    CHECK(status_is(d, "POST", ROOT "keyprov", NULL, MS_ERR_UNAUTHORISED) == 401);
    CHECK(status_is(d, "POST", ROOT "keyprov", "", MS_ERR_UNAUTHORISED) == 401);
    CHECK(status_is(d, "POST", ROOT "keyprov", "alice-1", MS_ERR_UNAUTHORISED) == 401);
    CHECK(status_is(d, "POST", ROOT "keyprov", "alice-1.abc", MS_ERR_UNAUTHORISED) == 401);
    CHECK(status_is(d, "POST", ROOT "init", NULL, MS_ERR_UNAUTHORISED) == 401);
    CHECK(status_is(d, "POST", ROOT "certcache", bad, MS_ERR_UNAUTHORISED) == 401);

    /* 403: another user's URI with a valid token */
    snprintf(path, sizeof path, "%s", kp(BOB_PCT, T0));
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_PACKAGE_DEVICE) == 403);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, 0));
    CHECK(status_is(d, "POST", path, bob_bearer, MS_ERR_PACKAGE_DEVICE) == 403);

    /* a device not in the export: answered exactly as a wrong token (status and body),
     * so nobody learns from the server which devices it holds packages for */
    {
        snprintf(bad, sizeof bad, "carol-1%s", strrchr(alice_bearer, '.'));
        struct answer unknown = ask(d, "POST", ROOT "keyprov", bad);
        snprintf(bad, sizeof bad, "%s", alice_bearer);
        bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0';
        struct answer wrong = ask(d, "POST", ROOT "keyprov", bad);
        CHECK(unknown.status == 401 && wrong.status == 401);
        CHECK(unknown.body != NULL && wrong.body != NULL && unknown.len == wrong.len &&
              memcmp(unknown.body, wrong.body, wrong.len) == 0);
        free(unknown.body);
        free(wrong.body);
        snprintf(bad, sizeof bad, "carol-1%s", strrchr(alice_bearer, '.'));
        CHECK(status_is(d, "POST", ROOT "keyprov", bad, MS_ERR_UNAUTHORISED) == 401);
    }

    /* 415: a KmsRequest is XML */
    static const char *const not_xml[] = {"application/json", "text/plain", "", NULL};
    for (size_t i = 0; i < sizeof not_xml / sizeof not_xml[0]; i++) {
        content_type = not_xml[i];
        CHECK(status_is(d, "POST", ROOT "keyprov", alice_bearer, MS_ERR_HTTP) == 415);
    }
    content_type = "application/xml; charset=UTF-8";
    CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0);
    content_type = "application/xml";

    /* 409: the same request twice is a replay, as at `kms serve` */
    {
        char *once = strdup(request_for(ROOT "keyprov", alice_bearer, NULL, clock_now));
        CHECK(status_body(d, ROOT "keyprov", alice_bearer, once, MS_OK) == 200);
        CHECK(status_body(d, ROOT "keyprov", alice_bearer, once, MS_ERR_MIKEY_REPLAY) == 409);
        free(once);
    }

    /* 404: a period without package, an unknown resource */
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T1));
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_NO_KEYS) == 404);
    CHECK(status_is(d, "POST", ROOT "keyprovx", alice_bearer, MS_ERR_HTTP) == 404);
    CHECK(status_is(d, "POST", "/keymanagement/identity/v2/init", alice_bearer, MS_ERR_HTTP) == 404);
    CHECK(status_is(d, "POST", "/", alice_bearer, MS_ERR_HTTP) == 404);

    /* 400: malformed time or user; 405: not POST */
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T0));
    path[strlen(path) - 1] = '\0';
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_IDENTITY) == 400);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T0));
    path[strlen(path) - 1] = 'G';
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_IDENTITY) == 400);
    CHECK(status_is(d, "POST", ROOT "keyprov/tel%3A%2B1%zz/", alice_bearer, MS_ERR_IDENTITY) == 400);
    CHECK(status_is(d, "POST", ROOT "keyprov/tel%00x", alice_bearer, MS_ERR_IDENTITY) == 400);
    CHECK(status_is(d, "POST", ROOT "keyprov/tel%3", alice_bearer, MS_ERR_IDENTITY) == 400);
    CHECK(status_is(d, "GET", ROOT "keyprov", alice_bearer, MS_ERR_HTTP) == 405);
    CHECK(status_is(d, "POST", ROOT "certcache/x", alice_bearer, MS_ERR_IDENTITY) == 400);

    /* the KmsRequest is checked as `kms serve` checks it */
    const char *kp0 = ROOT "keyprov";
    CHECK(status_body(d, kp0, alice_bearer, "", MS_ERR_XML) == 400);
    CHECK(status_body(d, kp0, alice_bearer, "<KmsRequest/>", MS_ERR_XML) == 400);
    CHECK(status_body(d, kp0, alice_bearer,
                      "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><KmsRequest>&a;</KmsRequest>",
                      MS_ERR_XML) == 400);
    {
        char *rq = request_for(kp0, alice_bearer, NULL, clock_now);
        char *other = strstr(rq, "kms.example.org");
        if (other != NULL)
            memcpy(other, "kms.example.net", 15);
        CHECK(status_body(d, kp0, alice_bearer, rq, MS_ERR_XML) == 400); /* another KMS */
    }
    CHECK(status_body(d, kp0, alice_bearer, request_for(ROOT "init", alice_bearer, NULL, clock_now),
                      MS_ERR_XML) == 400); /* ClientReqUrl of another resource */
    CHECK(status_body(d, kp0, alice_bearer, request_for(kp0, alice_bearer, BOB, clock_now),
                      MS_ERR_PACKAGE_DEVICE) == 403); /* UserUri of another user */
    CHECK(status_body(d, kp0, alice_bearer,
                      request_for(kp0, alice_bearer, NULL, clock_now - 301),
                      MS_ERR_MIKEY_TIMESTAMP) == 409);
    CHECK(status_body(d, kp0, alice_bearer,
                      request_for(kp0, alice_bearer, NULL, clock_now + 301),
                      MS_ERR_MIKEY_TIMESTAMP) == 409);
    CHECK(status_body(d, kp0, alice_bearer,
                      request_for(kp0, alice_bearer, NULL, clock_now - 300), MS_OK) == 200);

    /* init and certcache carry the export's certificate */
    ms_kms_certificate want, got;
    char *cxml = NULL;
    {
        char cpath[700];
        snprintf(cpath, sizeof cpath, "%s/certificate.xml", exp_dir);
        cxml = read_text(cpath);
        CHECK(cxml != NULL);
        CHECK_ERR(ms_kmsif_certificate_parse(&want, cxml, strlen(cxml), NULL, 0), MS_OK);
        free(cxml);
    }
    /* init: an unsigned KmsResponse with KmsInit (no InK here to sign with) */
    struct answer a = ask(d, "POST", ROOT "init", alice_bearer);
    CHECK(a.status == 200);
    CHECK(a.body != NULL && strstr(a.body, "<KmsInit ") != NULL);
    CHECK(a.body != NULL && strstr(a.body, "<UserUri>" ALICE "</UserUri>") != NULL);
    const char *c = a.body ? strstr(a.body, "<KmsCertificate") : NULL;
    const char *end = c ? strstr(c, "</KmsCertificate>") : NULL;
    CHECK(c != NULL && end != NULL);
    if (c != NULL && end != NULL) {
        CHECK_ERR(ms_kmsif_certificate_parse(&got, c,
                                             (size_t)(end - c) + strlen("</KmsCertificate>"),
                                             NULL, 0),
                  MS_OK);
        CHECK_MEM(got.Z, want.Z, sizeof want.Z);
        CHECK_MEM(got.kpak, want.kpak, sizeof want.kpak);
    }
    free(a.body);
    /* certcache: the KmsCertCache the client reads */
    a = ask(d, "POST", ROOT "certcache", bob_bearer);
    CHECK(a.status == 200);
    ms_kms_reply *rep = calloc(1, sizeof *rep);
    CHECK_ERR(ms_kmsif_reply_parse(rep, a.body, a.len, NULL, 0), MS_OK);
    CHECK(rep->error_code == 0 && rep->n_certs == 1 && strcmp(rep->user_uri, BOB) == 0);
    CHECK_MEM(rep->certs[0].Z, want.Z, sizeof want.Z);
    CHECK_MEM(rep->certs[0].kpak, want.kpak, sizeof want.kpak);
    free(rep);
    free(a.body);

    /* a package that no longer matches the index is not served */
    char ipath[700];
    snprintf(ipath, sizeof ipath, "%s/index.txt", exp_dir);
    char *index = read_text(ipath);
    CHECK(index != NULL);
    char alice_file[200] = "";
    {
        const char *l = strstr(index, "\nalice-1 ");
        if (l != NULL)
            sscanf(l + 1, "%*s %*s %199s", alice_file);
        CHECK(alice_file[0] != '\0');
    }
    char apath[800];
    snprintf(apath, sizeof apath, "%s/%s", exp_dir, alice_file);
    char *apkg = read_text(apath);
    CHECK(apkg != NULL);
    {
        char *tampered = strdup(apkg);
        tampered[strlen(tampered) - 2] = tampered[strlen(tampered) - 2] == ' ' ? '\t' : ' ';
        write_file(exp_dir, alice_file, tampered);
        free(tampered);
        CHECK(status_is(d, "POST", ROOT "keyprov", alice_bearer, MS_ERR_INVALID) == 503);
        write_file(exp_dir, alice_file, apkg);
        CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0);
    }

    /* a malformed index is refused and the previous one kept, once per file */
    static const char *const bad_index[] = {
        "alice-1 " ALICE " x.xml " /* old four-column format */
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "alice-1 " ALICE " ../kms/sealed.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 1509 "
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "alice-1 " ALICE " a.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 15x9 "
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "alice-1 " ALICE " a.xml 00 1509 "
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "alice-1 " ALICE " a.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 1509 "
        "0000000000000000000000000000000000000000000000000000000000000000\n"
        "alice-1 " BOB " b.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 1510 "
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "alice-1 " ALICE " a.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 1509 "
        "0000000000000000000000000000000000000000000000000000000000000000\n"
        "alice-1 " ALICE " b.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 1509 "
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "alice 1 " ALICE " a.xml "
        "0000000000000000000000000000000000000000000000000000000000000000 1509 "
        "0000000000000000000000000000000000000000000000000000000000000000\n",
    };
    for (size_t i = 0; i < sizeof bad_index / sizeof bad_index[0]; i++) {
        write_file(exp_dir, "index.txt", bad_index[i]);
        bool reloaded = true;
        detail[0] = '\0';
        CHECK_ERR(ms_dist_check(d, &reloaded, detail, sizeof detail), MS_ERR_CONFIG);
        CHECK(!reloaded && strncmp(detail, "index.txt", 9) == 0);
        CHECK_ERR(ms_dist_check(d, &reloaded, detail, sizeof detail), MS_OK); /* same file */
        CHECK(ms_dist_packages(d) == 2);
        CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0);
    }
    /* the good index again */
    write_file(exp_dir, "index.txt", index);
    bool reloaded = false;
    CHECK_ERR(ms_dist_check(d, &reloaded, detail, sizeof detail), MS_OK);
    CHECK(reloaded);

    /* the next period's export is picked up by the next request, the current kept */
    size_t issued = 0, n_pkg = 0;
    CHECK_ERR(ms_kms_issue(kms, &issued, P0 + 1, 1), MS_OK);
    CHECK_ERR(ms_kms_export(kms, &n_pkg, P0 + 1, exp_dir), MS_OK);
    CHECK(n_pkg == 2);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T1));
    CHECK(keyprov_period(d, path, alice_bearer, &alice_keys) == P0 + 1);
    CHECK(ms_dist_packages(d) == 4);
    CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T2)); /* two periods ahead */
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_PERIOD) == 404);

    /* once the clock moves on, the past period is not served though still listed */
    clock_now = T1;
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T0));
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_PERIOD) == 404);
    CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0 + 1);

    /* and the next export drops the expired period */
    CHECK_ERR(ms_kms_issue(kms, &issued, P0 + 2, 1), MS_OK);
    CHECK_ERR(ms_kms_export(kms, &n_pkg, P0 + 2, exp_dir), MS_OK);
    CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0 + 1);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T2));
    CHECK(keyprov_period(d, path, alice_bearer, &alice_keys) == P0 + 2);
    snprintf(path, sizeof path, "%s", kp(ALICE_PCT, T0));
    CHECK(status_is(d, "POST", path, alice_bearer, MS_ERR_PERIOD) == 404);
    CHECK(ms_dist_packages(d) == 4);

    char metrics[2048];
    size_t mlen = ms_dist_metrics(d, metrics, sizeof metrics);
    CHECK(mlen > 0 && strstr(metrics, "mikeysakke_dist_packages 4\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_dist_refused_total{status=\"403\"} 3\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_dist_refused_total{status=\"415\"} 4\n") != NULL);
    CHECK(strstr(metrics, "mikeysakke_dist_index_lines_skipped 0\n") != NULL);

    /* a suspended user's packages leave with the next export, whichever period it is
     * of: those of the other period carried over from the earlier index too */
    snprintf(path, sizeof path, "%s", kp(BOB_PCT, T2));
    CHECK(keyprov_period(d, path, bob_bearer, &bob_keys) == P0 + 2);
    CHECK_ERR(ms_kms_user_suspend(kms, BOB), MS_OK);
    CHECK_ERR(ms_kms_export(kms, &n_pkg, P0 + 1, exp_dir), MS_OK);
    CHECK(n_pkg == 1);
    CHECK(status_is(d, "POST", path, bob_bearer, MS_ERR_UNAUTHORISED) == 401);
    CHECK(ms_dist_packages(d) == 2);
    CHECK(status_is(d, "POST", ROOT "keyprov", bob_bearer, MS_ERR_UNAUTHORISED) == 401);
    CHECK(keyprov_period(d, ROOT "keyprov", alice_bearer, &alice_keys) == P0 + 1);
    /* resumed and exported again: back */
    CHECK_ERR(ms_kms_user_resume(kms, BOB), MS_OK);
    CHECK_ERR(ms_kms_export(kms, &n_pkg, P0 + 2, exp_dir), MS_OK);
    CHECK(keyprov_period(d, path, bob_bearer, &bob_keys) == P0 + 2);
    /* removed: gone from every period */
    CHECK_ERR(ms_kms_user_remove(kms, BOB), MS_OK);
    CHECK_ERR(ms_kms_export(kms, &n_pkg, P0 + 1, exp_dir), MS_OK);
    CHECK(status_is(d, "POST", path, bob_bearer, MS_ERR_UNAUTHORISED) == 401);
    index = (free(index), read_text(ipath));
    CHECK(index != NULL && strstr(index, "bob-1") == NULL);

    /* one bad line (a user URI with non-ASCII octets) is skipped and reported; the rest
     * of the community is still served */
    {
        char *good = read_text(ipath);
        CHECK(good != NULL);
        size_t glen = good != NULL ? strlen(good) : 0;
        char *mixed = malloc(glen + 400);
        snprintf(mixed, glen + 400,
                 "%scarol-1 tel:+4477009\xc3\xa9 carol-1.xml "
                 "0000000000000000000000000000000000000000000000000000000000000000 1510 "
                 "0000000000000000000000000000000000000000000000000000000000000000\n",
                 good != NULL ? good : "");
        log_text[0] = '\0';
        ms_dist *d2 = NULL;
        write_file(exp_dir, "index.txt", mixed);
        CHECK_ERR(ms_dist_open(&d2, exp_dir, keep_log, NULL, detail, sizeof detail), MS_OK);
        if (d2 != NULL) {
            ms_dist_set_clock(d2, fixed_clock, &clock_now);
            CHECK(ms_dist_packages(d2) == 2);
            CHECK(strstr(log_text, "not printable ASCII") != NULL &&
                  strstr(log_text, "line skipped") != NULL);
            CHECK(strstr(log_text, "1 index lines skipped") != NULL);
            CHECK(keyprov_period(d2, ROOT "keyprov", alice_bearer, &alice_keys) == P0 + 1);
            mlen = ms_dist_metrics(d2, metrics, sizeof metrics);
            CHECK(strstr(metrics, "mikeysakke_dist_index_lines_skipped 1\n") != NULL);
            ms_dist_close(d2);
        }
        free(mixed);
        free(good);
    }

    free(apkg);
    free(index);
    ms_dist_close(d);
}

int main(void)
{
    char root[64];
    if (!ms_test_tmpdir(root, sizeof root, "dist"))
        return 1;
    setup_kms(root);
    test_open(root);
    test_serve();
    ms_kms_close(kms);
    ms_test_rmtree(root);
    return ms_test_finish();
}
