/*
 * The voicemail server's SIP side (src/relay/voicemail.c) against a real caller on
 * loopback (two src/sip agents on one loop, no provider): every refusal with its status
 * and Warning (unknown mailbox 404, RTP/AVP 488, no key-mgmt 488, full mailbox 486), the
 * answer (RTP/SAVP, recvonly, our port, no key-mgmt), a message stored on BYE (the INVITE
 * then each datagram, byte for byte, in the capture; the index entry), a message ended
 * by the server at the duration limit and at the size limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capture/capture.h"
#include "relay/mailbox.h"
#include "relay/voicemail.h"
#include "sip/sdp.h"
#include "sip/sip.h"
#include "testutil.h"

#define KEY_MGMT "a=key-mgmt:mikey AQAFAgEAAAAAAAAAAAAAAA=="

typedef struct caller {
    ms_sip *sip;
    ms_sip_call *call;
    ms_sip_udp *udp;
    ms_sip_timer *hangup_timer;
    bool closed, established;
    int status;
    char warning[256];
    ms_sdp_audio answer;
    char answer_text[MS_SDP_MAX];
    int datagrams;      /* to send once the call is up */
    size_t datagram_len;
    bool hang_up;       /* after sending, hang up 300 ms later */
} caller;

static caller C;
static char vm_log_text[16384];
static bool stop_on_store;

static void stop_loop(void)
{
    ms_sip_stop(C.sip);
}

static void on_vm_log(void *ctx, const char *line)
{
    (void)ctx;
    size_t n = strlen(vm_log_text);
    snprintf(vm_log_text + n, sizeof vm_log_text - n, "%s\n", line);
    if (stop_on_store && (strncmp(line, "stored message", 14) == 0 ||
                          strstr(line, "nothing stored") != NULL))
        stop_loop();
}

static bool known(void *ctx, const char *uri)
{
    (void)ctx;
    return strcmp(uri, "sip:bob@example.org") == 0 || strcmp(uri, "sip:dave@example.org") == 0;
}

static uint8_t payload(int i, size_t k)
{
    return (uint8_t)(0x80 + i * 31 + (int)k);
}

static void on_hangup_timer(void *arg)
{
    (void)arg;
    ms_sip_timer_cancel(C.hangup_timer);
    C.hangup_timer = NULL;
    if (C.call != NULL)
        ms_sip_hangup(C.call);
}

static void on_caller_udp(void *arg, const uint8_t *d, size_t l, const char *src, uint64_t t)
{
    (void)arg;
    (void)d;
    (void)l;
    (void)src;
    (void)t;
}

static void on_established(void *arg, ms_sip_call *call, const char *sdp, size_t len)
{
    (void)arg;
    (void)call;
    C.established = true;
    snprintf(C.answer_text, sizeof C.answer_text, "%.*s", (int)len, sdp);
    char detail[128];
    if (ms_sdp_parse(&C.answer, C.answer_text, strlen(C.answer_text), detail, sizeof detail) !=
        MS_OK)
        return;
    if (C.datagrams > 0 && ms_sip_udp_open(C.sip, &C.udp, "127.0.0.1", on_caller_udp, NULL) ==
                               MS_OK) {
        uint8_t buf[1500];
        for (int i = 0; i < C.datagrams; i++) {
            for (size_t k = 0; k < C.datagram_len && k < sizeof buf; k++)
                buf[k] = payload(i, k);
            ms_sip_udp_send(C.udp, C.answer.addr, C.answer.port, buf, C.datagram_len);
        }
    }
    if (C.hang_up)
        ms_sip_timer_start(C.sip, &C.hangup_timer, 300, on_hangup_timer, NULL);
}

static void on_closed(void *arg, ms_sip_call *call, int status, const char *reason,
                      const char *warning)
{
    (void)arg;
    (void)call;
    (void)reason;
    C.closed = true;
    C.status = status;
    C.call = NULL;
    snprintf(C.warning, sizeof C.warning, "%s", warning != NULL ? warning : "");
    if (!stop_on_store)
        stop_loop();
}

static ms_sip_timer *watchdog;

static void on_watchdog(void *arg)
{
    (void)arg;
    ms_sip_timer_cancel(watchdog);
    watchdog = NULL;
    fprintf(stderr, "watchdog: the call did not finish in time\n");
    CHECK(!"finished in time");
    stop_loop();
}

/* Places one call to `to` with an offer of `proto`, with or without key-mgmt, and runs
 * the loop until it closes (or, with wait_store, until the server has stored it). */
static void call(const char *to, const char *proto, bool key_mgmt, int datagrams, size_t len,
                 bool hang_up, bool wait_store)
{
    if (C.udp != NULL) {
        ms_sip_udp_close(C.udp);
        C.udp = NULL;
    }
    ms_sip *sip = C.sip;
    memset(&C, 0, sizeof C);
    C.sip = sip;
    C.datagrams = datagrams;
    C.datagram_len = len;
    C.hang_up = hang_up;
    stop_on_store = wait_store;
    vm_log_text[0] = '\0';
    ms_sdp_audio a;
    memset(&a, 0, sizeof a);
    snprintf(a.addr, sizeof a.addr, "127.0.0.1");
    a.port = 40000;
    snprintf(a.proto, sizeof a.proto, "%s", proto);
    a.payload_type = 96;
    snprintf(a.codec, sizeof a.codec, "opus/48000/2");
    char offer[MS_SDP_MAX];
    CHECK_ERR(ms_sdp_format(offer, sizeof offer, &a, 42, key_mgmt ? KEY_MGMT : NULL), MS_OK);
    CHECK_ERR(ms_sip_dial(C.sip, &C.call, to, offer), MS_OK);
    CHECK_ERR(ms_sip_timer_start(C.sip, &watchdog, 15000, on_watchdog, NULL), MS_OK);
    CHECK_ERR(ms_sip_run(C.sip), MS_OK);
    ms_sip_timer_cancel(watchdog);
    watchdog = NULL;
    ms_sip_timer_cancel(C.hangup_timer);
    C.hangup_timer = NULL;
}

static char tmpdir[256];

static ms_voicemail *start_vm(const char *name, ms_mailbox_limits lim, ms_mailbox_store **store,
                              char *proxy, size_t proxy_cap)
{
    char dir[512], detail[256];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    CHECK_ERR(ms_mailbox_open(store, dir, &lim, detail, sizeof detail), MS_OK);
    ms_voicemail_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.mailbox_known = known;
    cfg.log = on_vm_log;
    ms_voicemail *vm = NULL;
    CHECK_ERR(ms_voicemail_new(&vm, &cfg, *store, detail, sizeof detail), MS_OK);
    char addr[80] = "";
    if (vm != NULL)
        CHECK_ERR(ms_voicemail_local_addr(vm, addr, sizeof addr), MS_OK);
    snprintf(proxy, proxy_cap, "sip:%s;transport=tcp", addr);
    return vm;
}

static ms_sip *start_caller(const char *proxy)
{
    ms_sip_config sc;
    memset(&sc, 0, sizeof sc);
    sc.local_uri = "sip:alice@example.org";
    sc.listen = "127.0.0.1:0";
    sc.proxy = proxy;
    ms_sip_handlers h = {.established = on_established, .closed = on_closed};
    ms_sip *sip = NULL;
    char detail[256];
    CHECK_ERR(ms_sip_new(&sip, &sc, &h, NULL, detail, sizeof detail), MS_OK);
    return sip;
}

static void check_capture(const char *path, int datagrams, size_t len, uint16_t media_port)
{
    ms_capture_reader *r = NULL;
    char detail[256];
    CHECK_ERR(ms_capture_open(&r, path, detail, sizeof detail), MS_OK);
    if (r == NULL)
        return;
    ms_capture_item it;
    CHECK(ms_capture_next(r, &it, detail, sizeof detail) == 1);
    CHECK(it.kind == MS_CAPTURE_SIP && it.tcp);
    CHECK(it.len > 7 && memcmp(it.data, "INVITE ", 7) == 0);
    char *text = malloc(it.len + 1);
    if (text != NULL) {
        memcpy(text, it.data, it.len);
        text[it.len] = '\0';
        CHECK(strstr(text, KEY_MGMT) != NULL);
        CHECK(strstr(text, "RTP/SAVP") != NULL);
        free(text);
    }
    char want_dst[32];
    snprintf(want_dst, sizeof want_dst, "127.0.0.1:%u", (unsigned)media_port);
    int seen = 0;
    bool bytes_ok = true;
    while (ms_capture_next(r, &it, detail, sizeof detail) == 1) {
        CHECK(it.kind == MS_CAPTURE_UDP);
        bool ok = it.len == len && strcmp(it.dst, want_dst) == 0;
        for (size_t k = 0; ok && k < len; k++)
            ok = it.data[k] == payload(seen, k);
        bytes_ok = bytes_ok && ok;
        seen++;
    }
    CHECK(bytes_ok);
    if (datagrams >= 0)
        CHECK(seen == datagrams);
    ms_capture_close_reader(r);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms_test_voicemail_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        CHECK(!"mkdtemp");
        return ms_test_finish();
    }
    char proxy[128], detail[256];
    ms_mailbox_store *store = NULL;
    ms_voicemail *vm = start_vm("store", (ms_mailbox_limits){.max_messages = 2}, &store, proxy,
                                sizeof proxy);
    C.sip = start_caller(proxy);
    if (vm == NULL || C.sip == NULL)
        return ms_test_finish();

    /* Refusals, each with its status and reason. */
    call("sip:carol@example.org", "RTP/SAVP", true, 0, 0, false, false);
    CHECK(C.closed && C.status == 404 && strstr(C.warning, "no mailbox") != NULL);
    call("sip:bob@example.org", "RTP/AVP", true, 0, 0, false, false);
    CHECK(C.closed && C.status == 488 && strstr(C.warning, "RTP/SAVP") != NULL);
    CHECK(strstr(vm_log_text, "refused call from sip:alice@example.org") != NULL);
    call("sip:bob@example.org", "RTP/SAVP", false, 0, 0, false, false);
    CHECK(C.closed && C.status == 488 && strstr(C.warning, "key-mgmt") != NULL);
    ms_mailbox_entry *v = NULL;
    size_t n = 9;
    CHECK_ERR(ms_mailbox_list(store, "sip:bob@example.org", &v, &n, detail, sizeof detail),
              MS_OK);
    CHECK(n == 0);
    free(v);

    /* A message: answered, 5 datagrams, BYE from the caller. */
    call("sip:bob@example.org", "RTP/SAVP", true, 5, 120, true, true);
    CHECK(C.established);
    CHECK(strcmp(C.answer.proto, "RTP/SAVP") == 0 && C.answer.key_mgmt == NULL);
    CHECK(strcmp(C.answer.direction, "recvonly") == 0 && C.answer.payload_type == 96);
    CHECK(strcmp(C.answer.addr, "127.0.0.1") == 0 && C.answer.port != 0);
    CHECK(strstr(vm_log_text, "stored message") != NULL);
    CHECK(strstr(vm_log_text, "caller sip:alice@example.org (as claimed") != NULL);
    CHECK(strstr(vm_log_text, "5 datagrams") != NULL);
    CHECK(ms_voicemail_stored(vm) == 1);
    CHECK_ERR(ms_mailbox_list(store, "sip:bob@example.org", &v, &n, detail, sizeof detail),
              MS_OK);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(strcmp(v[0].caller, "sip:alice@example.org") == 0);
        char path[1024], mid[65];
        ms_mailbox_id("sip:bob@example.org", mid);
        snprintf(path, sizeof path, "%s/store/%s/%s.pcap", tmpdir, mid, v[0].id);
        struct stat sb;
        CHECK(stat(path, &sb) == 0 && (uint64_t)sb.st_size == v[0].size);
        check_capture(path, 5, 120, C.answer.port);
    }
    free(v);

    /* Mailbox full: the second message fills it, the third is refused. */
    call("sip:bob@example.org", "RTP/SAVP", true, 1, 60, true, true);
    CHECK(ms_voicemail_stored(vm) == 2);
    call("sip:bob@example.org", "RTP/SAVP", true, 1, 60, true, false);
    CHECK(C.closed && C.status == 486 && strstr(C.warning, "mailbox full") != NULL);
    /* A call with no media leaves nothing. */
    call("sip:dave@example.org", "RTP/SAVP", true, 0, 0, true, true);
    CHECK(strstr(vm_log_text, "nothing stored") != NULL);
    CHECK_ERR(ms_mailbox_list(store, "sip:dave@example.org", &v, &n, detail, sizeof detail),
              MS_OK);
    CHECK(n == 0);
    free(v);
    ms_sip_udp_close(C.udp);
    C.udp = NULL;
    ms_sip_free(C.sip);
    ms_voicemail_free(vm);
    ms_mailbox_close(store);

    /* The server hangs up at the duration limit... */
    vm = start_vm("short", (ms_mailbox_limits){.max_seconds = 1}, &store, proxy, sizeof proxy);
    C.sip = start_caller(proxy);
    call("sip:bob@example.org", "RTP/SAVP", true, 2, 100, false, true);
    CHECK(strstr(vm_log_text, "maximum duration reached") != NULL);
    CHECK(ms_voicemail_stored(vm) == 1);
    ms_sip_udp_close(C.udp);
    C.udp = NULL;
    ms_sip_free(C.sip);
    ms_voicemail_free(vm);
    ms_mailbox_close(store);

    /* ... and at the size limit, keeping the file under it. */
    vm = start_vm("small", (ms_mailbox_limits){.max_bytes = 4096}, &store, proxy, sizeof proxy);
    C.sip = start_caller(proxy);
    call("sip:bob@example.org", "RTP/SAVP", true, 40, 200, false, true);
    CHECK(strstr(vm_log_text, "maximum message size reached") != NULL);
    CHECK_ERR(ms_mailbox_list(store, "sip:bob@example.org", &v, &n, detail, sizeof detail),
              MS_OK);
    CHECK(n == 1 && v != NULL && v[0].size <= 4096 && v[0].size > 2000);
    free(v);
    ms_sip_udp_close(C.udp);
    C.udp = NULL;
    ms_sip_free(C.sip);
    ms_voicemail_free(vm);
    ms_mailbox_close(store);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ms_test_finish();
}
