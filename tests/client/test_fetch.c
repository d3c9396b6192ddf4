/*
 * The provisioning client (TS 33.180 Annex D over HTTPS) against an in-test HTTPS
 * server on src/net/http.h with a throwaway CA made with the `openssl` command: both periods
 * stored, a second run finds them held, 404 for the next period tolerated, 404 for the
 * current one, 401, 429 then success (back-off; and Retry-After from the server's rate
 * limit), a Retry-After too long, 500 retried then failing, a redirect, an oversized
 * answer, a tampered package, an RSK that fails validation, a certificate rollover and a
 * foreign KMS in KMS Initialize, an unreachable port, a server certificate from another
 * CA or for another name, an http:// URL, and the bearer token and KmsRequest sent.
 */
#include "fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <openssl/evp.h>

#include "net/http.h"

#define D_CAP 1024

enum mode {
    M_OK,
    M_401,       /* every request: 401 with a KmsError */
    M_429_ONCE,  /* the first request: 429 (no Retry-After), then as M_OK */
    M_500,       /* every request: 500 */
    M_302,       /* every request: 302 */
    M_BIG,       /* /init answers 300 KiB */
};

typedef struct srv_state {
    pthread_mutex_t mu;
    const fx *f;
    enum mode mode;
    int n_requests;
    int n_429;
    char bearer[256];
    char path[1024];
    char body[8192];
    size_t body_len;
    char *init_xml, *cur_xml, *next_xml, *cache_xml, *err_xml; /* NULL = 404 */
    size_t init_len, cur_len, next_len, cache_len, err_len;
} srv_state;

static char *dup_mem(const char *p, size_t n)
{
    char *q = malloc(n + 1);
    if (q == NULL)
        fx_die("malloc", MS_ERR_NOMEM);
    memcpy(q, p, n);
    q[n] = '\0';
    return q;
}

static void set_body(ms_http_response *resp, int status, const char *xml, size_t len)
{
    resp->status = status;
    if (xml != NULL) {
        resp->body = dup_mem(xml, len);
        resp->body_len = len;
    }
}

static void handler(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    srv_state *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->n_requests++;
    snprintf(s->bearer, sizeof s->bearer, "%s", req->bearer != NULL ? req->bearer : "");
    snprintf(s->path, sizeof s->path, "%s", req->path);
    s->body_len = req->body_len < sizeof s->body ? req->body_len : 0;
    memcpy(s->body, req->body, s->body_len);
    const char *root = "/keymanagement/identity/v1/";
    const char *p = strncmp(req->path, root, strlen(root)) == 0 ? req->path + strlen(root) : "";
    if (s->mode == M_401) {
        set_body(resp, 401, s->err_xml, s->err_len);
    } else if (s->mode == M_500) {
        set_body(resp, 500, NULL, 0);
    } else if (s->mode == M_302) {
        set_body(resp, 302, NULL, 0);
    } else if (s->mode == M_429_ONCE && s->n_429 == 0) {
        s->n_429++;
        set_body(resp, 429, NULL, 0);
    } else if (strcmp(p, "init") == 0) {
        if (s->mode == M_BIG) {
            size_t n = 300 * 1024;
            resp->status = 200;
            resp->body = malloc(n);
            memset(resp->body, ' ', n);
            resp->body_len = n;
        } else {
            set_body(resp, s->init_xml ? 200 : 404, s->init_xml, s->init_len);
        }
    } else if (strcmp(p, "certcache") == 0) {
        set_body(resp, s->cache_xml ? 200 : 404, s->cache_xml, s->cache_len);
    } else if (strncmp(p, "keyprov/", 8) == 0) {
        const char *slash = strrchr(p, '/');
        uint64_t t = strtoull(slash + 1, NULL, 16) >> 32, period = 0;
        if (strlen(slash + 1) != 16 || ms_key_period(&s->f->scheme, &period, t) != MS_OK)
            set_body(resp, 400, NULL, 0);
        else if (period == s->f->p0)
            set_body(resp, s->cur_xml ? 200 : 404, s->cur_xml, s->cur_len);
        else if (period == s->f->p0 + 1)
            set_body(resp, s->next_xml ? 200 : 404, s->next_xml, s->next_len);
        else
            set_body(resp, 404, NULL, 0);
    } else {
        set_body(resp, 404, NULL, 0);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- TLS material --------------------------------------------------------------------- */

static char tls_dir[160];

static void make_tls(const char *root)
{
    snprintf(tls_dir, sizeof tls_dir, "%s/tls", root);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "set -e; mkdir -p '%s'; cd '%s'; "
             "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'; "
             "openssl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca; "
             "openssl req -x509 $ec -keyout ca2.key -out ca2.pem -days 2 -subj /CN=other-ca; "
             "for n in srv:IP:127.0.0.1,DNS:localhost wrong:DNS:other.example; do "
             "  f=${n%%%%:*}; san=${n#*:}; "
             "  openssl req $ec -keyout $f.key -out $f.csr -subj /CN=$f; "
             "  printf 'subjectAltName=%%s\\n' \"$san\" > $f.ext; "
             "  openssl x509 -req -in $f.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "    -out $f.pem -days 2 -extfile $f.ext; "
             "done; chmod 600 *.key",
             tls_dir, tls_dir);
    char full[600], script[256];
    snprintf(script, sizeof script, "%s/mk.sh", root);
    FILE *fp = fopen(script, "w");
    if (fp == NULL)
        fx_die("mk.sh", MS_ERR_IO);
    fprintf(fp, "%s\n", cmd);
    fclose(fp);
    snprintf(full, sizeof full, "sh '%s' >'%s/mk.log' 2>&1", script, root);
    if (system(full) != 0)
        fx_die("openssl (see mk.log)", MS_ERR_IO);
}

static void tls_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tls_dir, name);
}

static ms_http_server *start(srv_state *s, const char *cert_name, double rate, double burst)
{
    char cert[256], key[256];
    tls_path(cert, sizeof cert, cert_name);
    snprintf(key, sizeof key, "%s", cert);
    memcpy(key + strlen(key) - 3, "key", 3);
    ms_http_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.bind_addr = "127.0.0.1";
    cfg.cert_file = cert;
    cfg.key_file = key;
    cfg.threads = 2;
    cfg.name = "fetch_test";
    cfg.rate_per_sec = rate;
    cfg.rate_burst = burst;
    char d[256] = "";
    cfg.detail = d;
    cfg.detail_cap = sizeof d;
    ms_http_server *srv = NULL;
    ms_err e = ms_http_start(&srv, &cfg, handler, NULL, NULL, s);
    if (e != MS_OK) {
        fprintf(stderr, "http start: %s\n", d);
        fx_die("ms_http_start", e);
    }
    return srv;
}

/* ---- helpers ------------------------------------------------------------------------- */

static void opts(ms_fetch_options *o, const fx *f, char *url, size_t url_cap, uint16_t port,
                 const char *ca)
{
    static char cafile[256];
    tls_path(cafile, sizeof cafile, ca);
    snprintf(url, url_cap, "https://127.0.0.1:%u", (unsigned)port);
    memset(o, 0, sizeof *o);
    o->url = url;
    o->cacert = cafile;
    o->max_attempts = 3;
    o->backoff_ms = 10;
    o->max_wait_ms = 3000;
    o->connect_timeout_ms = 5000;
    o->timeout_ms = 10000;
    o->now = f->now;
}

static ms_keystore *new_ks(fx *f, const char *name)
{
    snprintf(f->dir, sizeof f->dir, "%s/%s", f->root, name);
    fx_create(f);
    return fx_open(f);
}

static bool held(ms_keystore *ks, uint64_t period)
{
    ms_keyset k;
    char d[D_CAP];
    ms_err e = ms_keystore_get(ks, &k, NULL, period, d, sizeof d);
    ms_keyset_wipe(&k);
    return e == MS_OK;
}

static const ms_fetch_period *find_period(const ms_fetch_report *r, uint64_t p)
{
    for (size_t i = 0; i < r->n_periods; i++)
        if (r->periods[i].period_no == p)
            return &r->periods[i];
    return NULL;
}

static ms_fetch_state state_of(const ms_fetch_report *r, uint64_t p)
{
    const ms_fetch_period *e = find_period(r, p);
    return e != NULL ? e->state : MS_FETCH_NONE;
}

/* ms_keystore_fetch, with its detail on stderr (shown when the test fails). */
static ms_err fetch(ms_keystore *ks, const ms_fetch_options *o, ms_fetch_report *r, char *d)
{
    d[0] = '\0';
    ms_err e = ms_keystore_fetch(ks, r, o, d, D_CAP);
    fprintf(stderr, "fetch: %s%s%s\n", ms_errname(e), d[0] ? ": " : "", d);
    return e;
}

/* A signed package for f's device (period given; n_keysets 0 = KmsInit). */
static char *package(fx *f, const ms_kms_certificate *cert, uint64_t period, size_t n_keysets,
                     size_t *len)
{
    ms_key_package *pkg = calloc(1, sizeof *pkg);
    fx_package(f, pkg, period, f->now - 3600);
    pkg->cert = *cert;
    pkg->n_keysets = n_keysets;
    fx_write(f, pkg, &f->dev);
    ms_wipe(pkg, sizeof *pkg);
    free(pkg);
    *len = f->xml_len;
    return dup_mem(f->xml, f->xml_len);
}

static void set(char **slot, size_t *slot_len, char *xml, size_t len)
{
    free(*slot);
    *slot = xml;
    *slot_len = len;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_success(fx *f, srv_state *s, uint16_t port)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    opts(&o, f, url, sizeof url, port, "ca.pem");
    ms_keystore *ks = new_ks(f, "ok");
    s->n_requests = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(r.cert == MS_FETCH_CERT_SAME);
    CHECK(r.current_period == f->p0 && r.next_period == f->p0 + 1);
    CHECK(state_of(&r, f->p0) == MS_FETCH_STORED);
    CHECK(state_of(&r, f->p0 + 1) == MS_FETCH_STORED);
    const ms_fetch_period *e = find_period(&r, f->p0);
    CHECK(e != NULL && e->valid_until == f->p0_end && e->requested);
    CHECK(r.certcache_offered && r.n_cache_certs == 1);
    CHECK(r.requests == 4 && r.retries == 0 && s->n_requests == 4);
    CHECK(held(ks, f->p0) && held(ks, f->p0 + 1));

    /* The bearer token: HMAC-SHA256(InK, label || device id), lower-case hex. */
    uint8_t mac[32];
    size_t maclen = 0;
    const char *label = "mikeysakke-device-token:" FX_DEVICE;
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, f->dev.ink, 32,
                    (const unsigned char *)label, strlen(label), mac, 32, &maclen) != NULL);
    char want[160];
    int n = snprintf(want, sizeof want, "%s.", FX_DEVICE);
    for (int i = 0; i < 32; i++)
        n += snprintf(want + n, sizeof want - (size_t)n, "%02x", mac[i]);
    CHECK(strcmp(s->bearer, want) == 0);

    /* The last request (certcache) is a plain Annex D KmsRequest. */
    ms_kms_request req;
    CHECK_ERR(ms_kmsif_request_parse(&req, s->body, s->body_len, d, sizeof d), MS_OK);
    CHECK(strcmp(req.user_uri, f->dev.user_uri) == 0);
    CHECK(strcmp(req.kms_uri, FX_KMS) == 0);
    CHECK(strcmp(req.device_id, FX_DEVICE) == 0);
    char want_url[256];
    snprintf(want_url, sizeof want_url, "%s/keymanagement/identity/v1/certcache", url);
    CHECK(strcmp(req.client_req_url, want_url) == 0);
    CHECK(strcmp(s->path, "/keymanagement/identity/v1/certcache") == 0);

    /* Again: the same packages are already held, not an error. */
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(state_of(&r, f->p0) == MS_FETCH_HELD);
    CHECK(state_of(&r, f->p0 + 1) == MS_FETCH_HELD);

    /* The base URL may carry the API root and a trailing slash. */
    char url2[200];
    snprintf(url2, sizeof url2, "%s/keymanagement/identity/v1/", url);
    o.url = url2;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    ms_keystore_close(ks);
}

static void test_not_issued(fx *f, srv_state *s, uint16_t port)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    opts(&o, f, url, sizeof url, port, "ca.pem");
    char *next = s->next_xml;
    s->next_xml = NULL; /* 404 */
    ms_keystore *ks = new_ks(f, "next404");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(state_of(&r, f->p0) == MS_FETCH_STORED);
    CHECK(state_of(&r, f->p0 + 1) == MS_FETCH_NOT_ISSUED);
    CHECK(held(ks, f->p0) && !held(ks, f->p0 + 1));
    ms_keystore_close(ks);

    /* No keys for the current period either: MS_ERR_NO_KEYS, after trying the next. */
    char *cur = s->cur_xml;
    s->cur_xml = NULL;
    s->next_xml = next;
    ks = new_ks(f, "cur404");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_NO_KEYS);
    CHECK(strstr(d, "404") != NULL);
    CHECK(state_of(&r, f->p0) == MS_FETCH_NOT_ISSUED);
    CHECK(state_of(&r, f->p0 + 1) == MS_FETCH_STORED);
    s->cur_xml = cur;
    ms_keystore_close(ks);
}

static void test_http_refusals(fx *f, srv_state *s, uint16_t port)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    opts(&o, f, url, sizeof url, port, "ca.pem");
    ms_keystore *ks = new_ks(f, "refusals");

    /* 401: not retried, the KmsError text in the detail. */
    s->mode = M_401;
    s->n_requests = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_UNAUTHORISED);
    CHECK(s->n_requests == 1 && r.requests == 1 && r.last_status == 401);
    CHECK(strstr(d, "token does not match") != NULL);

    /* 500: retried max_attempts times, then MS_ERR_HTTP. */
    s->mode = M_500;
    s->n_requests = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_HTTP);
    CHECK(s->n_requests == 3 && r.requests == 3 && r.retries == 2);
    CHECK(strstr(d, "500") != NULL);

    /* A redirect is not followed. */
    s->mode = M_302;
    s->n_requests = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_HTTP);
    CHECK(s->n_requests == 1);

    /* An answer over MS_KMSIF_MAX_XML is aborted. */
    s->mode = M_BIG;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_HTTP);
    CHECK(strstr(d, "larger") != NULL);

    /* 429 once (no Retry-After): back-off, then everything succeeds. */
    s->mode = M_429_ONCE;
    s->n_429 = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(r.retries == 1 && s->n_429 == 1);
    CHECK(state_of(&r, f->p0) == MS_FETCH_STORED);

    /* 429 and no attempt left: MS_ERR_RATE_LIMITED. */
    s->mode = M_429_ONCE;
    s->n_429 = 0;
    o.max_attempts = 1;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_RATE_LIMITED);
    s->mode = M_OK;
    ms_keystore_close(ks);
}

static void test_package_refusals(fx *f, srv_state *s, uint16_t port)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    opts(&o, f, url, sizeof url, port, "ca.pem");
    char *good = s->cur_xml;
    size_t good_len = s->cur_len;

    /* Tampered: one character of the signed KmsResponse changed. */
    char *bad = dup_mem(good, good_len);
    char *kp = strstr(bad, "<KeyPeriodNo>");
    CHECK(kp != NULL);
    char *digit = kp + strlen("<KeyPeriodNo>");
    *digit = *digit == '9' ? '8' : (char)(*digit + 1);
    s->cur_xml = bad;
    ms_keystore *ks = new_ks(f, "tamper");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_PACKAGE_SIGNATURE);
    CHECK(!held(ks, f->p0) && !held(ks, f->p0 + 1));
    ms_keystore_close(ks);
    free(bad);

    /* Signed under the InK but carrying an RSK from another master secret. */
    uint8_t z2[MS_SAKKE_SECRET_BYTES], Z2[MS_SAKKE_POINT_BYTES];
    ms_sakke_kms *s2 = NULL;
    CHECK_ERR(ms_sakke_master_keygen(z2, Z2, NULL), MS_OK);
    CHECK_ERR(ms_sakke_kms_new(&s2, Z2), MS_OK);
    ms_key_package *pkg = calloc(1, sizeof *pkg);
    fx_package(f, pkg, f->p0, f->now - 3600);
    ms_kmsif_keyset *k = &pkg->keysets[0];
    CHECK_ERR(ms_sakke_rsk_issue(s2, k->rsk, z2, k->user_id, k->user_id_len), MS_OK);
    fx_write(f, pkg, &f->dev);
    ms_wipe(pkg, sizeof *pkg);
    free(pkg);
    ms_sakke_kms_free(s2);
    ms_wipe(z2, sizeof z2);
    s->cur_xml = dup_mem(f->xml, f->xml_len);
    s->cur_len = f->xml_len;
    ks = new_ks(f, "badrsk");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_RSK_INVALID);
    CHECK(!held(ks, f->p0));
    ms_keystore_close(ks);
    free(s->cur_xml);
    s->cur_xml = good;
    s->cur_len = good_len;
}

/* KmsResponse with KmsInit and no signature, around a written KmsCertificate. */
static char *unsigned_init(fx *f, const ms_kms_certificate *cert, size_t *len)
{
    ms_err e = ms_kmsif_certificate_write(f->xml, FX_XML_CAP, &f->xml_len, cert);
    if (e != MS_OK)
        fx_die("certificate write", e);
    const char *c = strstr(f->xml, "<KmsCertificate");
    size_t cap = f->xml_len + 1024;
    char *out = malloc(cap);
    int n = snprintf(out, cap,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<KmsResponse xmlns=\"urn:3gpp:ns:mcsecKMSInterface:1.0\" "
                     "Version=\"1.0.0\"><UserUri>%s</UserUri><KmsUri>%s</KmsUri>"
                     "<Time>2026-06-15T00:00:00Z</Time><ClientReqUrl>https://x/init"
                     "</ClientReqUrl><KmsMessage><KmsInit Version=\"1.0.0\">%s</KmsInit>"
                     "</KmsMessage></KmsResponse>\n",
                     f->dev.user_uri, FX_KMS, c != NULL ? c : "");
    *len = (size_t)n;
    return out;
}

static void test_init(fx *f, srv_state *s, uint16_t port)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    opts(&o, f, url, sizeof url, port, "ca.pem");
    o.skip_certcache = true;
    char *good = s->init_xml;
    size_t good_len = s->init_len;
    ms_keystore *ks = new_ks(f, "init");

    /* Rollover: same KMS URI, new keys, signed: reported, not refused. */
    ms_kms_certificate c2 = f->cert;
    uint8_t z2[MS_SAKKE_SECRET_BYTES], ksak2[MS_ECCSI_SCALAR_BYTES];
    CHECK_ERR(ms_sakke_master_keygen(z2, c2.Z, NULL), MS_OK);
    CHECK_ERR(ms_eccsi_master_keygen(ksak2, c2.kpak, NULL), MS_OK);
    ms_wipe(z2, sizeof z2);
    ms_wipe(ksak2, sizeof ksak2);
    snprintf(c2.cert_uri, sizeof c2.cert_uri, "cert2." FX_KMS);
    s->init_xml = package(f, &c2, f->p0, 0, &s->init_len);
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(r.cert == MS_FETCH_CERT_ROLLOVER);
    CHECK(strcmp(r.cert_uri, "cert2." FX_KMS) == 0);
    CHECK(state_of(&r, f->p0) == MS_FETCH_STORED);
    free(s->init_xml);

    /* Another KMS URI: refused before any key is asked for. */
    snprintf(c2.kms_uri, sizeof c2.kms_uri, "evil.example.org");
    s->init_xml = package(f, &c2, f->p0, 0, &s->init_len);
    s->n_requests = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_MIKEY_UNKNOWN_KMS);
    CHECK(s->n_requests == 1);
    free(s->init_xml);

    /* The enrolled certificate, now marked revoked. */
    ms_kms_certificate c3 = f->cert;
    c3.revoked = true;
    s->init_xml = package(f, &c3, f->p0, 0, &s->init_len);
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_INVALID);
    free(s->init_xml);

    /* KmsInit signed under another InK: MS_ERR_PACKAGE_SIGNATURE. */
    ms_device_keys other = f->dev;
    ms_test_random(other.ink, sizeof other.ink);
    ms_key_package *pkg = calloc(1, sizeof *pkg);
    fx_package(f, pkg, f->p0, f->now - 3600);
    pkg->n_keysets = 0;
    fx_write(f, pkg, &other);
    free(pkg);
    s->init_xml = dup_mem(f->xml, f->xml_len);
    s->init_len = f->xml_len;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_PACKAGE_SIGNATURE);
    free(s->init_xml);

    /* An unsigned KmsResponse (a plain Annex D KMS): a change is reported, not trusted. */
    snprintf(c2.kms_uri, sizeof c2.kms_uri, "%s", FX_KMS);
    s->init_xml = unsigned_init(f, &c2, &s->init_len);
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(r.cert == MS_FETCH_CERT_UNSIGNED_CHANGE);
    free(s->init_xml);
    s->init_xml = unsigned_init(f, &f->cert, &s->init_len);
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(r.cert == MS_FETCH_CERT_SAME);
    free(s->init_xml);

    s->init_xml = good;
    s->init_len = good_len;
    ms_keystore_close(ks);
}

static void test_transport(fx *f, srv_state *s, uint16_t port)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    ms_keystore *ks = new_ks(f, "transport");

    /* A server certificate from another CA. */
    opts(&o, f, url, sizeof url, port, "ca2.pem");
    s->n_requests = 0;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_TLS);
    CHECK(s->n_requests == 0 && r.requests == 1);

    /* A server certificate for another name. */
    ms_http_server *wrong = start(s, "wrong.pem", 0, 0);
    opts(&o, f, url, sizeof url, ms_http_port(wrong), "ca.pem");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_TLS);
    CHECK(s->n_requests == 0);
    ms_http_stop(wrong);

    /* Nobody listening: retried, then MS_ERR_UNREACHABLE. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd); /* the port is now (almost certainly) closed */
    opts(&o, f, url, sizeof url, ntohs(a.sin_port), "ca.pem");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_UNREACHABLE);
    CHECK(r.requests == 3 && r.retries == 2);

    /* Only https. */
    opts(&o, f, url, sizeof url, port, "ca.pem");
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_ARG);
    /* A CA file that does not exist. */
    opts(&o, f, url, sizeof url, port, "nope.pem");
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_IO);
    CHECK(!held(ks, f->p0));
    ms_keystore_close(ks);
}

/* The server's own rate limit answers 429 with Retry-After, which the client honours. */
static void test_retry_after(fx *f, srv_state *s)
{
    char d[D_CAP], url[128];
    ms_fetch_options o;
    ms_fetch_report r;
    ms_keystore *ks = new_ks(f, "ratelimit");

    /* One request per second: each following request waits for Retry-After. */
    ms_http_server *srv = start(s, "srv.pem", 1.0, 1.0);
    opts(&o, f, url, sizeof url, ms_http_port(srv), "ca.pem");
    o.max_attempts = 6;
    o.backoff_ms = 1; /* so only Retry-After can make the server accept the retry */
    CHECK_ERR(fetch(ks, &o, &r, d), MS_OK);
    CHECK(r.retries >= 1);
    CHECK(state_of(&r, f->p0) == MS_FETCH_STORED);
    ms_http_stop(srv);

    /* A Retry-After beyond what we wait: give up at once. */
    srv = start(s, "srv.pem", 0.01, 1.0);
    opts(&o, f, url, sizeof url, ms_http_port(srv), "ca.pem");
    o.max_wait_ms = 5000;
    CHECK_ERR(fetch(ks, &o, &r, d), MS_ERR_RATE_LIMITED);
    CHECK(r.requests == 2 && r.retries == 0);
    CHECK(strstr(d, "retry after") != NULL);
    ms_http_stop(srv);
    ms_keystore_close(ks);
}

int main(void)
{
    ms_test_seed();
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    fx f;
    fx_init(&f, 0);
    make_tls(f.root);

    srv_state s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    s.f = &f;
    s.init_xml = package(&f, &f.cert, f.p0, 0, &s.init_len);
    s.cur_xml = package(&f, &f.cert, f.p0, 1, &s.cur_len);
    s.next_xml = package(&f, &f.cert, f.p0 + 1, 1, &s.next_len);
    ms_kms_reply *rep = calloc(1, sizeof *rep);
    snprintf(rep->user_uri, sizeof rep->user_uri, "%s", f.dev.user_uri);
    snprintf(rep->kms_uri, sizeof rep->kms_uri, "%s", FX_KMS);
    rep->time = f.now;
    snprintf(rep->client_req_url, sizeof rep->client_req_url, "https://x/certcache");
    rep->n_certs = 1;
    rep->certs[0] = f.cert;
    snprintf(rep->certs[0].kms_uri, sizeof rep->certs[0].kms_uri, "kms.other.example");
    rep->certs[0].root = false;
    CHECK_ERR(ms_kmsif_reply_write(f.xml, FX_XML_CAP, &f.xml_len, rep), MS_OK);
    s.cache_xml = dup_mem(f.xml, f.xml_len);
    s.cache_len = f.xml_len;
    rep->n_certs = 0;
    rep->error_code = MS_ERR_UNAUTHORISED;
    snprintf(rep->error_msg, sizeof rep->error_msg, "the device token does not match");
    CHECK_ERR(ms_kmsif_reply_write(f.xml, FX_XML_CAP, &f.xml_len, rep), MS_OK);
    s.err_xml = dup_mem(f.xml, f.xml_len);
    s.err_len = f.xml_len;
    free(rep);

    ms_http_server *srv = start(&s, "srv.pem", 0, 0);
    uint16_t port = ms_http_port(srv);
    test_success(&f, &s, port);
    test_not_issued(&f, &s, port);
    test_http_refusals(&f, &s, port);
    test_package_refusals(&f, &s, port);
    test_init(&f, &s, port);
    test_transport(&f, &s, port);
    ms_http_stop(srv);
    test_retry_after(&f, &s);

    set(&s.init_xml, &s.init_len, NULL, 0);
    set(&s.cur_xml, &s.cur_len, NULL, 0);
    set(&s.next_xml, &s.next_len, NULL, 0);
    set(&s.cache_xml, &s.cache_len, NULL, 0);
    set(&s.err_xml, &s.err_len, NULL, 0);
    pthread_mutex_destroy(&s.mu);
    fx_cleanup(&f);
    return ms_test_finish();
}
