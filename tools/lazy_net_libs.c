/*
 * libcurl and libmicrohttpd, loaded when first called rather than when the command starts.
 *
 * Together with their dependencies (GnuTLS, Kerberos, LDAP, libssh2, nghttp2, ...) they
 * are 25 of the 58 shared libraries the command would otherwise map and relocate at every
 * start, ~12 ms of the ~30 ms a start costs on the build machine, although only the
 * commands that fetch keys, talk to a mailbox or serve HTTP use them. The command defines
 * the functions the library calls under their own names and links with --as-needed, so
 * the two libraries are not among its NEEDED entries (tests/cli/test_lazy_libs.sh checks
 * that); each function loads its library on first use and forwards the call. The library
 * (libmikeysakke) links both as usual: this file is the command's only.
 *
 * If a library cannot be loaded, its functions fail the way the library reports failure
 * (curl_global_init: CURLE_FAILED_INIT; curl_easy_init and MHD_start_daemon: NULL; ...),
 * so the callers' existing error paths name the problem.
 */
#define CURL_DISABLE_TYPECHECK 1 /* curl.h's type-checking macros would rename the definitions */

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <curl/curl.h>
#include <microhttpd.h>

#ifndef MS_CURL_SONAME
#define MS_CURL_SONAME "libcurl.so.4"
#endif
#ifndef MS_MHD_SONAME
#define MS_MHD_SONAME "libmicrohttpd.so.12"
#endif

/* dlsym's result as a function pointer (POSIX guarantees the conversion works). */
#define RESOLVE(handle, ok, fp, name)                                                             \
    do {                                                                                          \
        void *sym_ = dlsym(handle, name);                                                         \
        if (sym_ == NULL)                                                                         \
            ok = false;                                                                           \
        memcpy(&(fp), &sym_, sizeof(fp));                                                         \
    } while (0)

/* ---- libcurl ------------------------------------------------------------------------------ */

static struct {
    bool ok;
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} curl_fn;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_load(void)
{
    void *h = dlopen(MS_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return;
    bool ok = true;
    RESOLVE(h, ok, curl_fn.global_init, "curl_global_init");
    RESOLVE(h, ok, curl_fn.easy_init, "curl_easy_init");
    RESOLVE(h, ok, curl_fn.easy_cleanup, "curl_easy_cleanup");
    RESOLVE(h, ok, curl_fn.easy_perform, "curl_easy_perform");
    RESOLVE(h, ok, curl_fn.easy_setopt, "curl_easy_setopt");
    RESOLVE(h, ok, curl_fn.easy_getinfo, "curl_easy_getinfo");
    RESOLVE(h, ok, curl_fn.easy_strerror, "curl_easy_strerror");
    RESOLVE(h, ok, curl_fn.slist_append, "curl_slist_append");
    RESOLVE(h, ok, curl_fn.slist_free_all, "curl_slist_free_all");
    curl_fn.ok = ok; /* the handle stays open for the life of the process */
}

static bool curl_ready(void)
{
    pthread_once(&curl_once, curl_load);
    return curl_fn.ok;
}

CURLcode curl_global_init(long flags)
{
    return curl_ready() ? curl_fn.global_init(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
    return curl_ready() ? curl_fn.easy_init() : NULL;
}

void curl_easy_cleanup(CURL *k)
{
    if (curl_ready())
        curl_fn.easy_cleanup(k);
}

CURLcode curl_easy_perform(CURL *k)
{
    return curl_ready() ? curl_fn.easy_perform(k) : CURLE_FAILED_INIT;
}

/* The option number says the argument's type (curl.h's CURLOPTTYPE_ ranges). */
CURLcode curl_easy_setopt(CURL *k, CURLoption opt, ...)
{
    if (!curl_ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = curl_fn.easy_setopt(k, opt, va_arg(ap, long));
    else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
        rc = curl_fn.easy_setopt(k, opt, va_arg(ap, void *));
    else if (opt < CURLOPTTYPE_OFF_T)
        rc = curl_fn.easy_setopt(k, opt, va_arg(ap, void (*)(void)));
    else if (opt < CURLOPTTYPE_BLOB)
        rc = curl_fn.easy_setopt(k, opt, va_arg(ap, curl_off_t));
    else
        rc = curl_fn.easy_setopt(k, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

/* Every CURLINFO takes one pointer to where the answer goes. */
CURLcode curl_easy_getinfo(CURL *k, CURLINFO info, ...)
{
    if (!curl_ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *);
    va_end(ap);
    return curl_fn.easy_getinfo(k, info, out);
}

const char *curl_easy_strerror(CURLcode rc)
{
    return curl_ready() ? curl_fn.easy_strerror(rc)
                        : "libcurl (" MS_CURL_SONAME ") could not be loaded";
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    return curl_ready() ? curl_fn.slist_append(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    if (curl_ready())
        curl_fn.slist_free_all(list);
}

/* ---- libmicrohttpd ------------------------------------------------------------------------ */

static struct {
    bool ok;
    struct MHD_Response *(*create_response)(size_t, void *, MHD_ContentReaderFreeCallback,
                                            void *);
    enum MHD_Result (*add_response_header)(struct MHD_Response *, const char *, const char *);
    enum MHD_Result (*queue_response)(struct MHD_Connection *, unsigned int,
                                      struct MHD_Response *);
    void (*destroy_response)(struct MHD_Response *);
    const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *,
                                                           enum MHD_ConnectionInfoType, ...);
    const char *(*lookup_connection_value)(struct MHD_Connection *, enum MHD_ValueKind,
                                           const char *);
    enum MHD_Result (*is_feature_supported)(enum MHD_FEATURE);
    struct MHD_Daemon *(*start_daemon_va)(unsigned int, uint16_t, MHD_AcceptPolicyCallback,
                                          void *, MHD_AccessHandlerCallback, void *, va_list);
    const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *,
                                                   enum MHD_DaemonInfoType, ...);
    void (*stop_daemon)(struct MHD_Daemon *);
} mhd_fn;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;

static void mhd_load(void)
{
    void *h = dlopen(MS_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return;
    bool ok = true;
    RESOLVE(h, ok, mhd_fn.create_response,
            "MHD_create_response_from_buffer_with_free_callback_cls");
    RESOLVE(h, ok, mhd_fn.add_response_header, "MHD_add_response_header");
    RESOLVE(h, ok, mhd_fn.queue_response, "MHD_queue_response");
    RESOLVE(h, ok, mhd_fn.destroy_response, "MHD_destroy_response");
    RESOLVE(h, ok, mhd_fn.get_connection_info, "MHD_get_connection_info");
    RESOLVE(h, ok, mhd_fn.lookup_connection_value, "MHD_lookup_connection_value");
    RESOLVE(h, ok, mhd_fn.is_feature_supported, "MHD_is_feature_supported");
    RESOLVE(h, ok, mhd_fn.start_daemon_va, "MHD_start_daemon_va");
    RESOLVE(h, ok, mhd_fn.get_daemon_info, "MHD_get_daemon_info");
    RESOLVE(h, ok, mhd_fn.stop_daemon, "MHD_stop_daemon");
    mhd_fn.ok = ok;
}

static bool mhd_ready(void)
{
    pthread_once(&mhd_once, mhd_load);
    return mhd_fn.ok;
}

struct MHD_Response *
MHD_create_response_from_buffer_with_free_callback_cls(size_t size, void *buffer,
                                                        MHD_ContentReaderFreeCallback crfc,
                                                        void *crfc_cls)
{
    return mhd_ready() ? mhd_fn.create_response(size, buffer, crfc, crfc_cls) : NULL;
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *r, const char *header,
                                        const char *content)
{
    return mhd_ready() ? mhd_fn.add_response_header(r, header, content) : MHD_NO;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status_code,
                                   struct MHD_Response *r)
{
    return mhd_ready() ? mhd_fn.queue_response(c, status_code, r) : MHD_NO;
}

void MHD_destroy_response(struct MHD_Response *r)
{
    if (mhd_ready())
        mhd_fn.destroy_response(r);
}

/* The info types the command asks for (the client's address) take no further argument. */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c,
                                                        enum MHD_ConnectionInfoType type, ...)
{
    return mhd_ready() ? mhd_fn.get_connection_info(c, type) : NULL;
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                        const char *key)
{
    return mhd_ready() ? mhd_fn.lookup_connection_value(c, kind, key) : NULL;
}

enum MHD_Result MHD_is_feature_supported(enum MHD_FEATURE feature)
{
    return mhd_ready() ? mhd_fn.is_feature_supported(feature) : MHD_NO;
}

/* The option list goes on as a va_list, which libmicrohttpd takes in MHD_start_daemon_va. */
struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
                                    MHD_AcceptPolicyCallback apc, void *apc_cls,
                                    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    if (!mhd_ready())
        return NULL;
    va_list ap;
    va_start(ap, dh_cls);
    struct MHD_Daemon *d = mhd_fn.start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
    va_end(ap);
    return d;
}

/* The info types the command asks for (the bound port) take no further argument. */
const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *d,
                                                enum MHD_DaemonInfoType type, ...)
{
    return mhd_ready() ? mhd_fn.get_daemon_info(d, type) : NULL;
}

void MHD_stop_daemon(struct MHD_Daemon *d)
{
    if (mhd_ready())
        mhd_fn.stop_daemon(d);
}
