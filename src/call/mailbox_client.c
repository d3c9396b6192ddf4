/* The voicemail store's HTTPS API, from the mailbox owner's side (mailbox_client.h). */
#include "call/mailbox_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <re.h>

#include "mikeysakke/crypto.h"
#include "util/detail.h"

#define MAX_LIST (1u << 20)   /* octets of a mailbox listing */
#define MAX_MESSAGE (64u << 20) /* octets of one message's capture */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

typedef struct body {
    uint8_t *data;
    size_t len, cap, limit;
    FILE *file; /* when set, the body goes here instead */
    bool too_big;
} body;

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t len = size * n;
    if (b->len + len > b->limit) {
        b->too_big = true;
        return 0;
    }
    if (b->file != NULL) {
        if (fwrite(p, 1, len, b->file) != len)
            return 0;
        b->len += len;
        return len;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        uint8_t *d = realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = 0;
    return len;
}

/* "Authorization: Basic base64(uri:password)" as a one-entry header list; NULL when
 * out of memory. The caller wipes the entry before freeing it. */
static struct curl_slist *basic_auth(const char *user, const char *password)
{
    size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl;
    size_t b64 = 4 * ((n + 2) / 3);
    const char prefix[] = "Authorization: Basic ";
    uint8_t *plain = malloc(n);
    char *line = malloc(sizeof prefix + b64);
    struct curl_slist *list = NULL;
    if (plain != NULL && line != NULL) {
        memcpy(plain, user, ul);
        plain[ul] = ':';
        memcpy(plain + ul + 1, password, pl);
        memcpy(line, prefix, sizeof prefix - 1);
        EVP_EncodeBlock((unsigned char *)line + sizeof prefix - 1, plain, (int)n);
        list = curl_slist_append(NULL, line);
    }
    if (plain != NULL)
        ms_wipe(plain, n);
    if (line != NULL)
        ms_wipe(line, sizeof prefix + b64);
    free(plain);
    free(line);
    return list;
}

/* One request: method and path under the server URL; the body to b. */
static ms_err request(const ms_vm_server *srv, const char *method, const char *path, body *b,
                      char *detail, size_t cap)
{
    if (srv == NULL || srv->url == NULL || srv->user_uri == NULL || srv->password == NULL)
        return MS_ERR_ARG;
    pthread_once(&curl_once, curl_init);
    CURL *k = curl_init_rc == CURLE_OK ? curl_easy_init() : NULL;
    if (k == NULL)
        return ms_detail_fail(MS_ERR_INTERNAL, detail, cap, "libcurl cannot be initialised");
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    size_t ul = strlen(srv->url);
    while (ul > 0 && srv->url[ul - 1] == '/')
        ul--;
    snprintf(url, sizeof url, "%.*s%s", (int)ul, srv->url, path);
    /* Basic credentials built here, not handed to libcurl as a password: libcurl frees
     * its copies without wiping them, while these buffers are wiped below. */
    struct curl_slist *headers = basic_auth(srv->user_uri, srv->password);
    if (headers == NULL) {
        curl_easy_cleanup(k);
        return ms_detail_fail(MS_ERR_NOMEM, detail, cap, "the Authorization header");
    }
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                     \
    do {                                                                                  \
        if (rc == CURLE_OK)                                                               \
            rc = curl_easy_setopt(k, opt, val);                                           \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (srv->cacert != NULL) {
        SET(CURLOPT_CAINFO, srv->cacert);
        SET(CURLOPT_CAPATH, (char *)NULL);
    }
    /* Basic over TLS only (the protocol list above): user-id is the mailbox URI. */
    SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "DELETE") == 0)
        SET(CURLOPT_NOBODY, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    SET(CURLOPT_TIMEOUT_MS, (long)(srv->timeout_s ? srv->timeout_s : 30) * 1000L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, b);
    SET(CURLOPT_USERAGENT, "mikeysakke-voicemail-client/1");
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    ms_err err = MS_OK;
    if (rc == CURLE_OK)
        rc = curl_easy_perform(k);
    long status = 0;
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(k);
    for (struct curl_slist *h = headers; h != NULL; h = h->next)
        ms_wipe(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_OPERATION_TIMEDOUT)
        err = ms_detail_fail(MS_ERR_UNREACHABLE, detail, cap, "%s: %s", url,
                      errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
             rc == CURLE_SSL_CACERT_BADFILE)
        err = ms_detail_fail(MS_ERR_TLS, detail, cap, "%s: %s", url,
                      errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (b->too_big)
        err = ms_detail_fail(MS_ERR_HTTP, detail, cap, "%s: answer larger than %zu octets", url,
                      b->limit);
    else if (rc != CURLE_OK)
        err = ms_detail_fail(MS_ERR_HTTP, detail, cap, "%s: %s", url,
                      errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (status == 401)
        err = ms_detail_fail(MS_ERR_UNAUTHORISED, detail, cap,
                      "the voicemail server refused the password for %s (or has no such "
                      "mailbox)", srv->user_uri);
    else if (status == 404)
        err = ms_detail_fail(MS_ERR_HTTP, detail, cap, "no such message in %s's mailbox",
                      srv->user_uri);
    else if (status < 200 || status > 299)
        err = ms_detail_fail(MS_ERR_HTTP, detail, cap, "%s: HTTP status %ld", url, status);
    return err;
}

static bool valid_id(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
            return false;
    return n == 32;
}

/* Copies a JSON string member (or "" when absent) into out. */
static void member_string(const struct odict *o, const char *key, char *out, size_t cap)
{
    const char *s = odict_string(o, key);
    snprintf(out, cap, "%s", s ? s : "");
}

static uint64_t member_u64(const struct odict *o, const char *key)
{
    const struct odict_entry *e = odict_lookup(o, key);
    if (e == NULL || e->type != ODICT_INT || e->u.integer < 0)
        return 0;
    return (uint64_t)e->u.integer;
}

ms_err ms_vm_list(const ms_vm_server *srv, ms_vm_message *out, size_t cap, size_t *n,
                  char *detail, size_t detail_cap)
{
    if (n == NULL || (out == NULL && cap > 0))
        return MS_ERR_ARG;
    *n = 0;
    body b = {.limit = MAX_LIST};
    ms_err err = request(srv, "GET", "/mailbox", &b, detail, detail_cap);
    if (err != MS_OK) {
        free(b.data);
        return err;
    }
    struct odict *doc = NULL;
    if (b.data == NULL || json_decode_odict(&doc, 32, (const char *)b.data, b.len, 8) != 0) {
        free(b.data);
        return ms_detail_fail(MS_ERR_HTTP, detail, detail_cap, "the mailbox listing is not JSON");
    }
    free(b.data);
    const struct odict_entry *msgs = odict_lookup(doc, "messages");
    if (msgs == NULL || msgs->type != ODICT_ARRAY) {
        mem_deref(doc);
        return ms_detail_fail(MS_ERR_HTTP, detail, detail_cap, "the mailbox listing has no messages");
    }
    size_t count = 0;
    err = MS_OK;
    for (struct le *le = list_head(&msgs->u.odict->lst); le != NULL; le = le->next) {
        const struct odict_entry *e = le->data;
        if (e->type != ODICT_OBJECT)
            continue;
        if (count < cap) {
            ms_vm_message *m = &out[count];
            memset(m, 0, sizeof *m);
            member_string(e->u.odict, "id", m->id, sizeof m->id);
            member_string(e->u.odict, "caller", m->caller, sizeof m->caller);
            m->time = member_u64(e->u.odict, "time");
            m->duration_ms = (uint32_t)member_u64(e->u.odict, "duration_ms");
            m->size = member_u64(e->u.odict, "size");
            if (!valid_id(m->id)) {
                err = ms_detail_fail(MS_ERR_HTTP, detail, detail_cap,
                              "the mailbox listing names a malformed message id");
                break;
            }
        }
        count++;
    }
    mem_deref(doc);
    *n = count;
    if (err == MS_OK && count > cap)
        err = MS_ERR_BUFFER_TOO_SMALL;
    return err;
}

ms_err ms_vm_fetch(const ms_vm_server *srv, const char *id, const char *path, char *detail,
                   size_t detail_cap)
{
    if (id == NULL || path == NULL || !valid_id(id))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "a message id is 32 hex digits");
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return MS_ERR_ARG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", tmp, strerror(errno));
    }
    body b = {.limit = MAX_MESSAGE, .file = f};
    char url_path[64];
    snprintf(url_path, sizeof url_path, "/mailbox/%s", id);
    ms_err err = request(srv, "GET", url_path, &b, detail, detail_cap);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        err = err != MS_OK ? err : ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", tmp,
                                           strerror(errno));
    if (fclose(f) != 0 && err == MS_OK)
        err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", tmp, strerror(errno));
    if (err == MS_OK && rename(tmp, path) != 0)
        err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", path, strerror(errno));
    if (err != MS_OK)
        unlink(tmp);
    return err;
}

ms_err ms_vm_delete(const ms_vm_server *srv, const char *id, char *detail, size_t detail_cap)
{
    if (id == NULL || !valid_id(id))
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "a message id is 32 hex digits");
    body b = {.limit = 4096};
    char url_path[64];
    snprintf(url_path, sizeof url_path, "/mailbox/%s", id);
    ms_err err = request(srv, "DELETE", url_path, &b, detail, detail_cap);
    free(b.data);
    return err;
}
