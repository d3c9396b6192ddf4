/*
 * Mutually authenticated, pinned TLS between threshold-KMS servers (src/net/peer.h):
 * certificates for the ceremony (OpenSSL), the server's pin check (GnuTLS, libmicrohttpd's
 * TLS library, through src/net/http.c's client_check), the client (libcurl).
 *
 * The two GnuTLS functions the pin check needs are looked up in the GnuTLS libmicrohttpd
 * has loaded (dlopen with RTLD_NOLOAD) rather than linked: the command loads libmicrohttpd
 * only when it serves (tools/lazy_net_libs.c) and must not need GnuTLS at start, and the
 * session handle must meet the very library that made it.
 */
#define CURL_DISABLE_TYPECHECK 1 /* blobs and callbacks are passed as curl documents them */

#include "net/peer.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mikeysakke/crypto.h"
#include "util/detail.h"

#define MAX_PEM (1024u * 1024u)
#define DEFAULT_PEER_BODY (16u * 1024u * 1024u)
#define DEFAULT_TIMEOUT_MS 30000u

/* ---- pins --------------------------------------------------------------------------------- */

static ms_err pin_of_x509(X509 *x, uint8_t pin[MS_PEER_PIN_BYTES])
{
    unsigned char *der = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (n <= 0) {
        ERR_clear_error();
        return MS_ERR_TLS;
    }
    SHA256(der, (size_t)n, pin);
    OPENSSL_free(der);
    return MS_OK;
}

ms_err ms_peer_tls_pin_der(const uint8_t *der, size_t len, uint8_t pin[MS_PEER_PIN_BYTES])
{
    if (der == NULL || pin == NULL || len == 0 || len > MAX_PEM)
        return MS_ERR_ARG;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    /* the whole input must be the one certificate */
    ms_err e = x != NULL && p == der + len ? pin_of_x509(x, pin) : MS_ERR_TLS;
    X509_free(x);
    ERR_clear_error();
    return e;
}

void ms_peer_pin_hex(char out[MS_PEER_PIN_HEX + 1], const uint8_t pin[MS_PEER_PIN_BYTES])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < MS_PEER_PIN_BYTES; i++) {
        out[2 * i] = digits[pin[i] >> 4];
        out[2 * i + 1] = digits[pin[i] & 15];
    }
    out[MS_PEER_PIN_HEX] = '\0';
}

ms_err ms_peer_pin_unhex(const char *hex, uint8_t pin[MS_PEER_PIN_BYTES])
{
    if (hex == NULL || pin == NULL || strlen(hex) != MS_PEER_PIN_HEX)
        return MS_ERR_ARG;
    for (size_t i = 0; i < MS_PEER_PIN_BYTES; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            int d = c >= '0' && c <= '9' ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0)
                return MS_ERR_ARG;
            v = v << 4 | (unsigned)d;
        }
        pin[i] = (uint8_t)v;
    }
    return MS_OK;
}

/* Reads a whole PEM file, NUL-terminated; a secret one must be a regular file of mode
 * 0600 or stricter. The caller wipes and frees *out (cap octets). */
static ms_err read_pem(const char *what, const char *path, bool secret, char **out,
                       size_t *len, char *detail, size_t cap)
{
    *out = NULL;
    *len = 0;
    if (path == NULL)
        return ms_detail_fail(MS_ERR_ARG, detail, cap, "no %s file given", what);
    int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "%s %s: %s", what, path, strerror(errno));
    struct stat sb;
    ms_err e = MS_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        e = ms_detail_fail(secret ? MS_ERR_KEYFILE_MODE : MS_ERR_IO, detail, cap,
                           "%s %s: not a regular file", what, path);
    else if (secret && (sb.st_mode & 077) != 0)
        e = ms_detail_fail(MS_ERR_KEYFILE_MODE, detail, cap,
                           "%s %s: mode %04o lets other users read it (use 0600)", what, path,
                           (unsigned)(sb.st_mode & 07777));
    else if (sb.st_size <= 0 || (unsigned long long)sb.st_size > MAX_PEM)
        e = ms_detail_fail(MS_ERR_IO, detail, cap, "%s %s: empty or too large", what, path);
    char *buf = NULL;
    size_t n = 0;
    if (e == MS_OK && (buf = malloc((size_t)sb.st_size + 1)) == NULL)
        e = MS_ERR_NOMEM;
    while (e == MS_OK && n < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)sb.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (e == MS_OK && n != (size_t)sb.st_size)
        e = ms_detail_fail(MS_ERR_IO, detail, cap, "%s %s: short read", what, path);
    if (e != MS_OK) {
        if (buf != NULL) {
            ms_wipe(buf, (size_t)sb.st_size + 1);
            free(buf);
        }
        return e;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MS_OK;
}

static void free_pem(char *p, size_t len)
{
    if (p != NULL) {
        ms_wipe(p, len + 1);
        free(p);
    }
}

ms_err ms_peer_tls_pin(const char *cert_file, uint8_t pin[MS_PEER_PIN_BYTES], char *detail,
                       size_t detail_cap)
{
    if (pin == NULL)
        return MS_ERR_ARG;
    char *pem = NULL;
    size_t len = 0;
    ms_err e = read_pem("certificate", cert_file, false, &pem, &len, detail, detail_cap);
    if (e != MS_OK)
        return e;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    e = x != NULL ? pin_of_x509(x, pin)
                  : ms_detail_fail(MS_ERR_TLS, detail, detail_cap,
                                   "certificate %s: no PEM certificate in it", cert_file);
    X509_free(x);
    BIO_free(b);
    ERR_clear_error();
    free_pem(pem, len);
    return e;
}

/* ---- certificates for the ceremony ---------------------------------------------------------- */

static bool add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    bool ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* PEM text of a certificate or key in a malloc'd buffer. */
static char *bio_text(BIO *b, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return NULL;
    char *out = malloc((size_t)n);
    if (out != NULL) {
        memcpy(out, data, (size_t)n);
        *len = (size_t)n;
    }
    return out;
}

ms_err ms_peer_tls_generate(const char *cert_file, const char *key_file, const char *name,
                            unsigned days, uint8_t pin[MS_PEER_PIN_BYTES], char *detail,
                            size_t detail_cap)
{
    if (cert_file == NULL || key_file == NULL || name == NULL || name[0] == '\0' ||
        strlen(name) > 64 || days == 0 || days > 36500)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "a certificate needs two file names, a name of 1 to 64 "
                              "characters and 1 to 36500 days");
    struct stat sb;
    if (lstat(cert_file, &sb) == 0 || lstat(key_file, &sb) == 0)
        return ms_detail_fail(MS_ERR_EXISTS, detail, detail_cap, "%s already exists",
                              lstat(cert_file, &sb) == 0 ? cert_file : key_file);
    ms_err e = MS_ERR_INTERNAL;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *kb = BIO_new(BIO_s_secmem());
    BIO *cb = BIO_new(BIO_s_mem());
    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_len = 0, cert_len = 0;
    uint8_t serial[16];
    BIGNUM *sn = NULL;
    if (k == NULL || x == NULL || kb == NULL || cb == NULL)
        goto done;
    if (RAND_bytes(serial, sizeof serial) != 1) {
        e = MS_ERR_RNG;
        goto done;
    }
    serial[0] &= 0x7f; /* a positive serial number */
    sn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *subject = X509_get_subject_name(x);
    /* An hour of slack for clocks a little behind. */
    if (sn == NULL || X509_set_version(x, 2) != 1 ||
        BN_to_ASN1_INTEGER(sn, X509_get_serialNumber(x)) == NULL ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400L) == NULL ||
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *)name,
                                   -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, subject) != 1 || X509_set_pubkey(x, k) != 1 ||
        !add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(x, NID_subject_key_identifier, "hash") ||
        X509_sign(x, k, EVP_sha256()) <= 0)
        goto done;
    if (PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509(cb, x) != 1 || (key_pem = bio_text(kb, &key_len)) == NULL ||
        (cert_pem = bio_text(cb, &cert_len)) == NULL)
        goto done;
    if (pin != NULL && pin_of_x509(x, pin) != MS_OK)
        goto done;
    e = ms_peer_file_create(key_file, key_pem, key_len, true, detail, detail_cap);
    if (e == MS_OK) {
        e = ms_peer_file_create(cert_file, cert_pem, cert_len, false, detail, detail_cap);
        if (e != MS_OK)
            unlink(key_file); /* no key without its certificate */
    }
done:
    if (e == MS_ERR_INTERNAL)
        ms_detail_set(detail, detail_cap, "the certificate could not be made (OpenSSL)");
    ERR_clear_error();
    if (key_pem != NULL) {
        ms_wipe(key_pem, key_len);
        free(key_pem);
    }
    free(cert_pem);
    BN_free(sn);
    BIO_free(cb);
    BIO_free(kb); /* secure memory: cleared on free */
    X509_free(x);
    EVP_PKEY_free(k);
    return e;
}

/* ---- server ---------------------------------------------------------------------------------- */

#ifndef MS_GNUTLS_SONAME
#define MS_GNUTLS_SONAME "libgnutls.so.30"
#endif

static struct {
    bool ok;
    gnutls_certificate_type_t (*type_get2)(gnutls_session_t, gnutls_ctype_target_t);
    const gnutls_datum_t *(*get_peers)(gnutls_session_t, unsigned int *);
} gt;
static pthread_once_t gt_once = PTHREAD_ONCE_INIT;

static void gt_resolve(void)
{
    void *h = dlopen(MS_GNUTLS_SONAME, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        return;
    void *a = dlsym(h, "gnutls_certificate_type_get2");
    void *b = dlsym(h, "gnutls_certificate_get_peers");
    /* POSIX guarantees the conversion of dlsym's result to a function pointer. */
    memcpy(&gt.type_get2, &a, sizeof a);
    memcpy(&gt.get_peers, &b, sizeof b);
    gt.ok = a != NULL && b != NULL;
    /* the handle stays open: libmicrohttpd holds GnuTLS for the process's life anyway */
}

struct ms_peer_server {
    ms_http_server *http;
    ms_peer_pins pins;
    ms_peer_handler handler;
    void *ctx;
};

/* http.c's peer_handler: only requests whose certificate check named a peer get here. */
static void route(void *ctx, int peer, const ms_http_request *req, ms_http_response *resp)
{
    const ms_peer_server *srv = ctx;
    if (peer < 1 || (unsigned)peer > srv->pins.n) {
        resp->status = 403; /* not reached: http.c refuses these first */
        return;
    }
    srv->handler(srv->ctx, (unsigned)peer, req, resp);
}

/* http.c's client_check: the index of the pinned certificate the client proved it holds
 * (the TLS handshake checked its signature with that certificate's key), or -1. */
static int check_client(void *ctx, void *tls_session)
{
    const ms_peer_server *srv = ctx;
    gnutls_session_t s = (gnutls_session_t)tls_session;
    /* a peer may connect the moment the server listens, before ms_peer_server_start has
     * looked GnuTLS up: look it up here too (GnuTLS is loaded, a TLS session exists), or
     * that first peer would be refused with 403 */
    pthread_once(&gt_once, gt_resolve);
    if (!gt.ok || gt.type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509)
        return -1;
    unsigned int n = 0;
    const gnutls_datum_t *certs = gt.get_peers(s, &n);
    if (certs == NULL || n == 0)
        return -1;
    uint8_t pin[MS_PEER_PIN_BYTES];
    if (ms_peer_tls_pin_der(certs[0].data, certs[0].size, pin) != MS_OK)
        return -1;
    int found = -1;
    for (unsigned i = 0; i < srv->pins.n; i++)
        if (CRYPTO_memcmp(pin, srv->pins.pin[i], MS_PEER_PIN_BYTES) == 0 && found < 0)
            found = (int)i + 1;
    return found;
}

ms_err ms_peer_server_start(ms_peer_server **out, const ms_peer_server_config *cfg,
                            ms_peer_handler handler, void *ctx)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (cfg == NULL || handler == NULL)
        return MS_ERR_ARG;
    if (cfg->peers == NULL || cfg->peers->n == 0 || cfg->peers->n > MS_PEER_MAX)
        return ms_detail_fail(MS_ERR_ARG, cfg->detail, cfg->detail_cap,
                              "the table of servers that may call is empty");
    if (cfg->cert_file == NULL || cfg->key_file == NULL)
        return ms_detail_fail(MS_ERR_ARG, cfg->detail, cfg->detail_cap,
                              "a server of a threshold KMS needs its certificate and key");
    ms_peer_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return MS_ERR_NOMEM;
    srv->pins = *cfg->peers;
    srv->handler = handler;
    srv->ctx = ctx;
    ms_http_config hc = {
        .bind_addr = cfg->bind_addr,
        .port = cfg->port,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .max_body = cfg->max_body != 0 ? cfg->max_body : DEFAULT_PEER_BODY,
        .threads = cfg->threads,
        .name = cfg->name != NULL ? cfg->name : "mikeysakke_peer",
        .detail = cfg->detail,
        .detail_cap = cfg->detail_cap,
        .client_check = check_client,
        .client_check_ctx = srv,
        .peer_handler = route,
    };
    ms_err e = ms_http_start(&srv->http, &hc, NULL, NULL, NULL, srv);
    if (e != MS_OK) {
        free(srv);
        return e;
    }
    /* libmicrohttpd, and so GnuTLS, is loaded now. Without the functions every client
     * would be refused: say so rather than serve. */
    pthread_once(&gt_once, gt_resolve);
    if (!gt.ok) {
        ms_http_stop(srv->http);
        free(srv);
        return ms_detail_fail(MS_ERR_TLS, cfg->detail, cfg->detail_cap,
                              "GnuTLS (%s) is not the TLS library of libmicrohttpd here: "
                              "client certificates cannot be checked", MS_GNUTLS_SONAME);
    }
    *out = srv;
    return MS_OK;
}

uint16_t ms_peer_server_port(const ms_peer_server *srv)
{
    return srv != NULL ? ms_http_port(srv->http) : 0;
}

void ms_peer_server_stop(ms_peer_server *srv)
{
    if (srv == NULL)
        return;
    ms_http_stop(srv->http);
    free(srv);
}

/* ---- client ---------------------------------------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct sink {
    uint8_t *p;
    size_t len, cap, max;
    bool too_big;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (n > s->max - s->len) {
        s->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap != 0 ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        uint8_t *p = malloc(cap);
        if (p == NULL)
            return 0;
        if (s->p != NULL) {
            memcpy(p, s->p, s->len);
            ms_wipe(s->p, s->cap);
            free(s->p);
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    return n;
}

static ms_err curl_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_USE_SSL_FAILED:
        return MS_ERR_TLS;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return MS_ERR_ARG;
    case CURLE_OUT_OF_MEMORY:
        return MS_ERR_NOMEM;
    default:
        return MS_ERR_UNREACHABLE;
    }
}

void ms_peer_response_free(ms_peer_response *resp)
{
    if (resp == NULL)
        return;
    if (resp->body != NULL) {
        ms_wipe(resp->body, resp->len);
        free(resp->body);
    }
    resp->body = NULL;
    resp->len = 0;
}

ms_err ms_peer_post(const ms_peer_link *peer, const char *path, const uint8_t *body, size_t len,
                    ms_peer_response *resp, char *detail, size_t detail_cap)
{
    if (resp != NULL)
        memset(resp, 0, sizeof *resp);
    if (peer == NULL || peer->url == NULL || path == NULL || path[0] != '/' || resp == NULL ||
        (body == NULL && len != 0))
        return MS_ERR_ARG;
    if (strncmp(peer->url, "https://", 8) != 0)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap,
                              "peer address %s is not an https:// URL", peer->url);
    char url[2048];
    if ((size_t)snprintf(url, sizeof url, "%s%s", peer->url, path) >= sizeof url)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "peer URL too long");

    /* sha256//<base64 of the pin>: curl compares it with the server's key before any
     * request octet is sent. */
    char pinned[8 + 4 * ((MS_PEER_PIN_BYTES + 2) / 3) + 1];
    memcpy(pinned, "sha256//", 8);
    EVP_EncodeBlock((unsigned char *)pinned + 8, peer->pin, MS_PEER_PIN_BYTES);

    char *cert = NULL, *key = NULL;
    size_t cert_len = 0, key_len = 0;
    /* no certificate of ours: a device, known by the signature inside its request */
    bool anonymous = peer->cert_file == NULL && peer->key_file == NULL;
    ms_err e = anonymous ? MS_OK
                         : read_pem("certificate", peer->cert_file, false, &cert, &cert_len,
                                    detail, detail_cap);
    if (e == MS_OK && !anonymous)
        e = read_pem("key", peer->key_file, true, &key, &key_len, detail, detail_cap);
    if (e != MS_OK) {
        free_pem(cert, cert_len);
        return e;
    }

    pthread_once(&curl_once, curl_init);
    CURL *k = curl_init_rc == CURLE_OK ? curl_easy_init() : NULL;
    struct curl_slist *headers =
        curl_slist_append(NULL, "Content-Type: application/octet-stream");
    struct curl_slist *h2 = headers != NULL ? curl_slist_append(headers, "Expect:") : NULL;
    if (h2 != NULL)
        headers = h2;
    if (k == NULL || h2 == NULL) {
        curl_slist_free_all(headers);
        if (k != NULL)
            curl_easy_cleanup(k);
        free_pem(cert, cert_len);
        free_pem(key, key_len);
        return ms_detail_fail(MS_ERR_INTERNAL, detail, detail_cap,
                              "libcurl cannot be initialised");
    }
    /* The blobs are used where they are (no copy in curl) and wiped below. */
    struct curl_blob cert_blob = {.data = cert, .len = cert_len, .flags = CURL_BLOB_NOCOPY};
    struct curl_blob key_blob = {.data = key, .len = key_len, .flags = CURL_BLOB_NOCOPY};
    sink s = {.max = peer->max_response != 0 ? peer->max_response : MS_PEER_RESPONSE_MAX};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                       \
    do {                                                                                    \
        if (rc == CURLE_OK)                                                                 \
            rc = curl_easy_setopt(k, opt, val);                                             \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* No CA and no host name: the pin is the server's identity (a self-signed certificate
     * of the ceremony). Curl checks the pin whether or not it verifies a chain. */
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
    SET(CURLOPT_PINNEDPUBLICKEY, pinned);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (!anonymous) {
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLCERT_BLOB, &cert_blob);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
        SET(CURLOPT_SSLKEY_BLOB, &key_blob);
    }
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    SET(CURLOPT_TIMEOUT_MS, (long)(peer->timeout_ms != 0 ? peer->timeout_ms : DEFAULT_TIMEOUT_MS));
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, body != NULL ? (const char *)body : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &s);
    SET(CURLOPT_USERAGENT, "mikeysakke-peer/1");
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    if (rc == CURLE_OK) {
        rc = curl_easy_perform(k);
        if (rc != CURLE_OK) {
            e = s.too_big ? ms_detail_fail(MS_ERR_HTTP, detail, detail_cap,
                                           "%s: answer larger than %zu octets", url, s.max)
                          : ms_detail_fail(curl_error(rc), detail, detail_cap, "%s: %s", url,
                                           errbuf[0] != '\0' ? errbuf
                                                             : curl_easy_strerror(rc));
        } else {
            long status = 0;
            curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
            resp->status = status;
            if (status == 403)
                e = ms_detail_fail(MS_ERR_UNAUTHORISED, detail, detail_cap,
                                   "%s refused our certificate (403)", url);
            else if (status < 200 || status > 299)
                e = ms_detail_fail(MS_ERR_HTTP, detail, detail_cap, "%s answered %ld", url,
                                   status);
        }
    } else {
        e = ms_detail_fail(MS_ERR_INTERNAL, detail, detail_cap, "libcurl option: %s",
                           curl_easy_strerror(rc));
    }
    curl_easy_cleanup(k);
    curl_slist_free_all(headers);
    free_pem(cert, cert_len);
    free_pem(key, key_len);
    if (rc == CURLE_OK) {
        if (s.p == NULL && (s.p = malloc(1)) == NULL)
            return MS_ERR_NOMEM;
        s.p[s.len] = '\0';
        resp->body = s.p;
        resp->len = s.len;
    } else if (s.p != NULL) {
        ms_wipe(s.p, s.cap);
        free(s.p);
    }
    return e;
}
