/*
 * SRTP and SRTCP on libsrtp2 2.5 (the only file that calls it). Every packet carries the
 * MKI: libsrtp is given one master key with its MKI and told to write it (use_mki = 1,
 * index 0) and to find it on the way in. Layout, as libsrtp writes it: AES-CM puts the
 * MKI before the authentication tag (RFC 3711 3.1), AEAD puts it after the cipher, which
 * includes the tag (RFC 7714 8.2 and 9.2).
 */
#include "call/srtp.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <srtp2/srtp.h>

#include "mikeysakke/crypto.h"

#define GCM_KEY 16
#define GCM_SALT 12
#define GCM_TAG 16
#define CM_KEY 16
#define CM_SALT 14
#define CM_TAG 10
#define SRTCP_INDEX 4
#define RTP_MIN_HEADER 12
#define RTCP_MIN_HEADER 8

struct ms_srtp {
    srtp_t session;
    ms_srtp_suite suite;
    bool outbound;
    size_t tag_len;
    size_t mki_len;
    /* inbound only: what a stream added for one SSRC (ms_srtp_set_roc) is made of */
    uint8_t key_salt[CM_KEY + CM_SALT];
    uint8_t mki[sizeof(((ms_srtp_keys *)0)->mki)];
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static srtp_err_status_t lib_status = srtp_err_status_fail;

/* Debian's libsrtp2 does its AES with NSS, and each cipher context it makes opens an NSS
 * context and closes it when freed. With NSS otherwise unused, closing the last context
 * shuts NSS down, unloading its soft token, so srtp_init's self-tests (cipher after
 * cipher) load and unload it 14 times: ~40 ms, more than an audit of a 20 s call takes.
 * NSS initialised once for the process makes those contexts cheap. Looked up at run time,
 * as the library is loaded only when libsrtp2 uses it (a libsrtp2 on OpenSSL does not). */
static void keep_nss_initialised(void)
{
    int (*nodb_init)(const char *configdir);
    void *sym = dlsym(RTLD_DEFAULT, "NSS_NoDB_Init");
    if (sym == NULL)
        return;
    memcpy(&nodb_init, &sym, sizeof nodb_init); /* POSIX: dlsym's result is callable */
    (void)nodb_init(NULL); /* best effort: without it libsrtp2 still works, slower */
}

static void lib_init(void)
{
    keep_nss_initialised();
    lib_status = srtp_init();
}

static void *warm_up_main(void *arg)
{
    (void)arg;
    pthread_once(&lib_once, lib_init);
    return NULL;
}

void ms_srtp_warm_up_start(ms_srtp_warm_up *w)
{
    w->started = pthread_create(&w->thread, NULL, warm_up_main, NULL) == 0;
}

void ms_srtp_warm_up_join(ms_srtp_warm_up *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
}

const char *ms_srtp_suite_name(ms_srtp_suite s)
{
    return s == MS_SRTP_AES_CM_128_HMAC_SHA1_80 ? "AES_CM_128_HMAC_SHA1_80" : "AEAD_AES_128_GCM";
}

ms_err ms_srtp_suite_parse(ms_srtp_suite *out, const char *name)
{
    if (out == NULL || name == NULL)
        return MS_ERR_ARG;
    if (strcmp(name, "AEAD_AES_128_GCM") == 0)
        *out = MS_SRTP_AEAD_AES_128_GCM;
    else if (strcmp(name, "AES_CM_128_HMAC_SHA1_80") == 0)
        *out = MS_SRTP_AES_CM_128_HMAC_SHA1_80;
    else
        return MS_ERR_INVALID;
    return MS_OK;
}

void ms_srtp_suite_lengths(ms_srtp_suite s, size_t *key_len, size_t *salt_len)
{
    bool gcm = s != MS_SRTP_AES_CM_128_HMAC_SHA1_80;
    if (key_len != NULL)
        *key_len = gcm ? GCM_KEY : CM_KEY;
    if (salt_len != NULL)
        *salt_len = gcm ? GCM_SALT : CM_SALT;
}

static bool suite_valid(ms_srtp_suite s)
{
    return s == MS_SRTP_AEAD_AES_128_GCM || s == MS_SRTP_AES_CM_128_HMAC_SHA1_80;
}

/* One libsrtp policy: the suite, one master key (with its MKI when mki_len > 0), the
 * SSRC it applies to. master and masters are the caller's storage for the key list. */
static void make_policy(srtp_policy_t *policy, srtp_master_key_t *master,
                        srtp_master_key_t **masters, ms_srtp_suite suite, uint8_t *key_salt,
                        uint8_t *mki, size_t mki_len, srtp_ssrc_type_t ssrc_type,
                        uint32_t ssrc)
{
    memset(policy, 0, sizeof *policy);
    master->key = key_salt;
    master->mki_id = mki;
    master->mki_size = (unsigned int)mki_len;
    if (suite == MS_SRTP_AEAD_AES_128_GCM) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtcp);
    } else {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy->rtcp);
    }
    policy->ssrc.type = ssrc_type;
    policy->ssrc.value = ssrc;
    if (mki_len > 0) {
        policy->keys = masters;
        policy->num_master_keys = 1;
    } else {
        policy->key = key_salt;
    }
    policy->window_size = 128;
    policy->allow_repeat_tx = 0;
    policy->next = NULL;
}

ms_err ms_srtp_new(ms_srtp **out, ms_srtp_suite suite, const ms_srtp_keys *keys, bool outbound)
{
    if (out == NULL || keys == NULL || !suite_valid(suite))
        return MS_ERR_ARG;
    *out = NULL;
    size_t key_len, salt_len;
    ms_srtp_suite_lengths(suite, &key_len, &salt_len);
    if (keys->key_len != key_len || keys->salt_len != salt_len ||
        keys->mki_len > sizeof keys->mki)
        return MS_ERR_ARG;
    /* the overhead promised by MS_SRTP_MAX_OVERHEAD must hold for any MKI we accept */
    if (GCM_TAG + SRTCP_INDEX + keys->mki_len > MS_SRTP_MAX_OVERHEAD)
        return MS_ERR_ARG;

    pthread_once(&lib_once, lib_init);
    if (lib_status != srtp_err_status_ok)
        return MS_ERR_INTERNAL;

    ms_srtp *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    s->suite = suite;
    s->outbound = outbound;
    s->tag_len = suite == MS_SRTP_AEAD_AES_128_GCM ? GCM_TAG : CM_TAG;
    s->mki_len = keys->mki_len;

    /* libsrtp takes key || salt in one buffer (and copies what it needs). */
    uint8_t key_salt[CM_KEY + CM_SALT];
    memcpy(key_salt, keys->master_key, key_len);
    memcpy(key_salt + key_len, keys->master_salt, salt_len);
    uint8_t mki[sizeof keys->mki];
    memcpy(mki, keys->mki, keys->mki_len);

    srtp_master_key_t master;
    srtp_master_key_t *masters[1] = {&master};
    srtp_policy_t policy;
    make_policy(&policy, &master, masters, suite, key_salt, mki, keys->mki_len,
                outbound ? ssrc_any_outbound : ssrc_any_inbound, 0);
    srtp_err_status_t st = srtp_create(&s->session, &policy);
    if (!outbound) {
        memcpy(s->key_salt, key_salt, sizeof key_salt);
        memcpy(s->mki, mki, keys->mki_len);
    }
    ms_wipe(key_salt, sizeof key_salt);
    ms_wipe(mki, sizeof mki);
    ms_wipe(&master, sizeof master);
    if (st != srtp_err_status_ok) {
        free(s);
        return st == srtp_err_status_alloc_fail ? MS_ERR_NOMEM : MS_ERR_INTERNAL;
    }
    *out = s;
    return MS_OK;
}

void ms_srtp_free(ms_srtp *s)
{
    if (s == NULL)
        return;
    /* srtp_dealloc zeroises the session keys it holds */
    if (s->session != NULL)
        srtp_dealloc(s->session);
    ms_wipe(s, sizeof *s);
    free(s);
}

static ms_err map_protect(srtp_err_status_t st)
{
    switch (st) {
    case srtp_err_status_ok:
        return MS_OK;
    case srtp_err_status_alloc_fail:
        return MS_ERR_NOMEM;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
        /* the same sequence number twice under one key would reuse the keystream */
        return MS_ERR_SRTP_REPLAY;
    case srtp_err_status_bad_param:
    case srtp_err_status_parse_err:
        return MS_ERR_INVALID;
    default:
        return MS_ERR_INTERNAL;
    }
}

/* Every failure other than a replay means the packet is not what the key's owner sent
 * (a tampered header may even fail libsrtp's parsing first). */
static ms_err map_unprotect(srtp_err_status_t st)
{
    switch (st) {
    case srtp_err_status_ok:
        return MS_OK;
    case srtp_err_status_alloc_fail:
        return MS_ERR_NOMEM;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
        return MS_ERR_SRTP_REPLAY;
    default:
        return MS_ERR_SRTP_AUTH;
    }
}

/*
 * libsrtp reads headers through 32-bit pointers and wants the packet 4-aligned; a caller's
 * misaligned buffer goes through an aligned copy.
 */
typedef srtp_err_status_t (*libsrtp_step)(ms_srtp *s, void *pkt, int *len);

static srtp_err_status_t step_protect(ms_srtp *s, void *pkt, int *len)
{
    return srtp_protect_mki(s->session, pkt, len, s->mki_len > 0, 0);
}

static srtp_err_status_t step_protect_rtcp(ms_srtp *s, void *pkt, int *len)
{
    return srtp_protect_rtcp_mki(s->session, pkt, len, s->mki_len > 0, 0);
}

static srtp_err_status_t step_unprotect(ms_srtp *s, void *pkt, int *len)
{
    return srtp_unprotect_mki(s->session, pkt, len, s->mki_len > 0);
}

static srtp_err_status_t step_unprotect_rtcp(ms_srtp *s, void *pkt, int *len)
{
    return srtp_unprotect_rtcp_mki(s->session, pkt, len, s->mki_len > 0);
}

/* Runs one libsrtp step on pkt (len octets, room for room octets); NOMEM only for the
 * aligned copy. */
static srtp_err_status_t run_step(ms_srtp *s, libsrtp_step step, uint8_t *pkt, size_t *len,
                                  size_t room)
{
    int n = (int)*len;
    srtp_err_status_t st;
    if (((uintptr_t)pkt & 3u) == 0) {
        st = step(s, pkt, &n);
        if (st == srtp_err_status_ok)
            *len = (size_t)n;
        return st;
    }
    uint32_t *copy = malloc((room + 3) & ~(size_t)3);
    if (copy == NULL)
        return srtp_err_status_alloc_fail;
    memcpy(copy, pkt, *len);
    st = step(s, copy, &n);
    if (st == srtp_err_status_ok) {
        memcpy(pkt, copy, (size_t)n);
        *len = (size_t)n;
    }
    ms_wipe(copy, room);
    free(copy);
    return st;
}

/* Largest packet we hand libsrtp (its lengths are ints; UDP tops out far below). */
#define MAX_PACKET 65535u

static ms_err protect_common(ms_srtp *s, uint8_t *pkt, size_t *len, size_t cap, bool rtcp)
{
    if (s == NULL || pkt == NULL || len == NULL)
        return MS_ERR_ARG;
    if (!s->outbound)
        return MS_ERR_ARG;
    size_t min = rtcp ? RTCP_MIN_HEADER : RTP_MIN_HEADER;
    if (*len < min || *len > MAX_PACKET)
        return MS_ERR_INVALID;
    size_t overhead = s->tag_len + s->mki_len + (rtcp ? SRTCP_INDEX : 0);
    if (cap < *len + overhead)
        return MS_ERR_BUFFER_TOO_SMALL;
    srtp_err_status_t st =
        run_step(s, rtcp ? step_protect_rtcp : step_protect, pkt, len, *len + overhead);
    return map_protect(st);
}

static ms_err unprotect_common(ms_srtp *s, uint8_t *pkt, size_t *len, bool rtcp)
{
    if (s == NULL || pkt == NULL || len == NULL)
        return MS_ERR_ARG;
    if (s->outbound)
        return MS_ERR_ARG;
    size_t min = (rtcp ? RTCP_MIN_HEADER + SRTCP_INDEX : RTP_MIN_HEADER) + s->tag_len +
                 s->mki_len;
    if (*len < min || *len > MAX_PACKET)
        return MS_ERR_INVALID;
    srtp_err_status_t st =
        run_step(s, rtcp ? step_unprotect_rtcp : step_unprotect, pkt, len, *len);
    return map_unprotect(st);
}

ms_err ms_srtp_set_roc(ms_srtp *s, uint32_t ssrc, uint32_t roc, ms_srtp_roc_undo *undo)
{
    if (s == NULL || s->outbound || undo == NULL)
        return MS_ERR_ARG;
    memset(undo, 0, sizeof *undo);
    uint32_t current;
    if (srtp_get_stream_roc(s->session, ssrc, &current) != srtp_err_status_ok) {
        /* no stream for this SSRC yet (libsrtp makes one from the template only when
         * the first packet is accepted): add it now so that it starts at roc */
        srtp_master_key_t master;
        srtp_master_key_t *masters[1] = {&master};
        srtp_policy_t policy;
        make_policy(&policy, &master, masters, s->suite, s->key_salt, s->mki, s->mki_len,
                    ssrc_specific, ssrc);
        srtp_err_status_t st = srtp_add_stream(s->session, &policy);
        ms_wipe(&master, sizeof master);
        if (st != srtp_err_status_ok)
            return st == srtp_err_status_alloc_fail ? MS_ERR_NOMEM : MS_ERR_INTERNAL;
        undo->added = true;
    } else if (current == roc) {
        return MS_OK;
    } else {
        undo->changed = true;
        undo->previous = current;
    }
    undo->ssrc = ssrc;
    return srtp_set_stream_roc(s->session, ssrc, roc) == srtp_err_status_ok ? MS_OK
                                                                           : MS_ERR_INTERNAL;
}

void ms_srtp_undo_roc(ms_srtp *s, const ms_srtp_roc_undo *undo)
{
    if (s == NULL || undo == NULL)
        return;
    if (undo->added)
        (void)srtp_remove_stream(s->session, htonl(undo->ssrc));
    else if (undo->changed)
        (void)srtp_set_stream_roc(s->session, undo->ssrc, undo->previous);
}

ms_err ms_srtp_roc(ms_srtp *s, uint32_t ssrc, uint32_t *roc)
{
    if (s == NULL || roc == NULL)
        return MS_ERR_ARG;
    return srtp_get_stream_roc(s->session, ssrc, roc) == srtp_err_status_ok ? MS_OK
                                                                           : MS_ERR_INVALID;
}

ms_err ms_srtp_protect(ms_srtp *s, uint8_t *pkt, size_t *len, size_t cap)
{
    return protect_common(s, pkt, len, cap, false);
}

ms_err ms_srtp_protect_rtcp(ms_srtp *s, uint8_t *pkt, size_t *len, size_t cap)
{
    return protect_common(s, pkt, len, cap, true);
}

ms_err ms_srtp_unprotect(ms_srtp *s, uint8_t *pkt, size_t *len)
{
    return unprotect_common(s, pkt, len, false);
}

ms_err ms_srtp_unprotect_rtcp(ms_srtp *s, uint8_t *pkt, size_t *len)
{
    return unprotect_common(s, pkt, len, true);
}
