/*
 * The SIP user agent against the real provider: kamailio (dist/kamailio/kamailio.cfg,
 * started through tests/lib/kamailio.sh on a free loopback port) as registrar and proxy.
 * Every agent of the test (Alice, Bob, Carol, the voicemail stand-in) lives in this
 * process on libre's one event loop; each step runs the loop until what it waits for
 * has happened (a generous watchdog turns a hang into a failure).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/evp.h>

#include "sip/sip.h"
#include "testutil.h"

#define DOMAIN "example.org"
#define WATCHDOG_TICKS 6000 /* x 5 ms: 30 s for one step before it counts as hung */

typedef struct agent {
    const char *name;
    ms_sip *sip;
    int reg_count, reg_status;
    char reg_reason[128];
    /* what the incoming handler does */
    int refuse_status;
    const char *refuse_warning;
    const char *answer_sdp;
    /* what it saw */
    int incoming_count;
    char in_from[128], in_to[128], in_ruri[256];
    char *in_sdp;
    size_t in_sdp_len;
    char *in_raw;
    size_t in_raw_len;
    ms_sip_call *call; /* the last call offered to or placed by this agent */
    int estab_count;
    char *estab_sdp;
    size_t estab_sdp_len;
    int closed_count, closed_status;
    char closed_reason[128], closed_warning[256];
    ms_sip_call *closed_call;
    /* MESSAGE: what arrived, how to answer, and the answer to ours */
    int msg_count, msg_reply;
    char msg_from[128], msg_ctype[128];
    uint8_t msg_body[256];
    size_t msg_len;
    int sent_count, sent_status;
    char sent_reason[128];
} agent;

static char *dup_bytes(const void *p, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static int on_incoming(void *arg, ms_sip_call *call, const char *from_uri, const char *to_uri,
                       const char *request_uri, const char *sdp, size_t sdp_len,
                       const uint8_t *raw, size_t raw_len, char *answer_sdp, size_t answer_cap,
                       char *warning, size_t warning_cap)
{
    agent *a = arg;
    a->incoming_count++;
    snprintf(a->in_from, sizeof(a->in_from), "%s", from_uri);
    snprintf(a->in_to, sizeof(a->in_to), "%s", to_uri);
    snprintf(a->in_ruri, sizeof(a->in_ruri), "%s", request_uri);
    free(a->in_sdp);
    a->in_sdp = dup_bytes(sdp, sdp_len);
    a->in_sdp_len = sdp_len;
    free(a->in_raw);
    a->in_raw = dup_bytes(raw, raw_len);
    a->in_raw_len = raw_len;
    if (a->refuse_status) {
        snprintf(warning, warning_cap, "%s", a->refuse_warning ? a->refuse_warning : "");
        return a->refuse_status;
    }
    a->call = call;
    ms_sip_call_set_arg(call, a);
    snprintf(answer_sdp, answer_cap, "%s", a->answer_sdp);
    return 0;
}

static void on_established(void *arg, ms_sip_call *call, const char *remote_sdp, size_t len)
{
    agent *a = arg;
    (void)call;
    a->estab_count++;
    free(a->estab_sdp);
    a->estab_sdp = dup_bytes(remote_sdp, len);
    a->estab_sdp_len = len;
}

static void on_closed(void *arg, ms_sip_call *call, int status, const char *reason,
                      const char *warning)
{
    agent *a = arg;
    a->closed_count++;
    a->closed_status = status;
    a->closed_call = call;
    snprintf(a->closed_reason, sizeof(a->closed_reason), "%s", reason);
    snprintf(a->closed_warning, sizeof(a->closed_warning), "%s", warning);
    if (a->call == call)
        a->call = NULL;
}

static void on_registered(void *arg, int status, const char *reason)
{
    agent *a = arg;
    a->reg_count++;
    a->reg_status = status;
    snprintf(a->reg_reason, sizeof(a->reg_reason), "%s", reason);
}

static int on_message(void *arg, const char *from_uri, const char *content_type,
                      const uint8_t *body, size_t body_len, char *warning, size_t warning_cap)
{
    agent *a = arg;
    a->msg_count++;
    snprintf(a->msg_from, sizeof(a->msg_from), "%s", from_uri);
    snprintf(a->msg_ctype, sizeof(a->msg_ctype), "%s", content_type);
    a->msg_len = body_len < sizeof(a->msg_body) ? body_len : sizeof(a->msg_body);
    memcpy(a->msg_body, body, a->msg_len);
    if (a->msg_reply >= 300)
        snprintf(warning, warning_cap, "not for me");
    return a->msg_reply ? a->msg_reply : 200;
}

static void on_message_sent(void *arg, int status, const char *reason)
{
    agent *a = arg;
    a->sent_count++;
    a->sent_status = status;
    snprintf(a->sent_reason, sizeof(a->sent_reason), "%s", reason);
}

static const ms_sip_handlers handlers = {.incoming = on_incoming, .established = on_established,
                                          .closed = on_closed, .registered = on_registered,
                                          .message = on_message};

/* ---- running the loop until something happened ---------------------------------------- */

static ms_sip *loop_owner; /* any agent: they share the one loop */
static bool (*wait_cond)(void);
static ms_sip_timer *tick_timer;
static int ticks;
static void (*tick_hook)(void);

static void tick(void *arg)
{
    (void)arg;
    ms_sip_timer_cancel(tick_timer);
    tick_timer = NULL;
    if (tick_hook)
        tick_hook();
    if (wait_cond() || ++ticks > WATCHDOG_TICKS) {
        ms_sip_stop(loop_owner);
        return;
    }
    if (ms_sip_timer_start(loop_owner, &tick_timer, 5, tick, NULL) != MS_OK)
        ms_sip_stop(loop_owner);
}

static bool run_until(const char *what, bool (*cond)(void))
{
    wait_cond = cond;
    ticks = 0;
    if (ms_sip_timer_start(loop_owner, &tick_timer, 0, tick, NULL) != MS_OK)
        return false;
    ms_err rc = ms_sip_run(loop_owner);
    ms_sip_timer_cancel(tick_timer);
    tick_timer = NULL;
    bool ok = rc == MS_OK && cond();
    if (!ok)
        fprintf(stderr, "timed out waiting for: %s\n", what);
    return ok;
}

/* ---- the provider ------------------------------------------------------------------------ */

static char helper[1024], workdir[256];

static int run_helper(const char *cmd, const char *a1, const char *a2, const char *a3,
                      const char *a4, const char *a5, const char *a6, const char *a7)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execlp("bash", "bash", helper, cmd, a1, a2, a3, a4, a5, a6, a7, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool start_provider(const char *voicemail_addr, char *port, size_t port_cap)
{
    char cmd[1400];
    snprintf(cmd, sizeof(cmd), "bash '%s' port", helper);
    FILE *p = popen(cmd, "r");
    if (!p || !fgets(port, (int)port_cap, p)) {
        if (p)
            pclose(p);
        return false;
    }
    pclose(p);
    port[strcspn(port, "\n")] = '\0';
    snprintf(cmd, sizeof(cmd), "bash '%s' users '%s'", helper, workdir);
    p = popen(cmd, "w");
    if (!p)
        return false;
    /* passwords go through the users file, not a command line */
    fputs("alice alice-secret\nbob bob-secret\ncarol carol-secret\nerin erin-secret\n", p);
    if (pclose(p) != 0)
        return false;
    char vm_uri[128], owner[16];
    snprintf(vm_uri, sizeof(vm_uri), "sip:%s;transport=tcp", voicemail_addr);
    snprintf(owner, sizeof(owner), "%d", (int)getpid());
    setenv("KAM_OWNER_PID", owner, 1); /* if this test crashes, kamailio goes too */
    /* FR_TIMER: a phone that never answers gives up after 2 s (then voicemail) */
    return run_helper("start", workdir, port, vm_uri, "-A", "WITH_INVITE_AUTH", "-A",
                      "FR_TIMER=2000") == 0;
}

/* ---- the agents ------------------------------------------------------------------------ */

static agent alice = {.name = "alice"}, bob = {.name = "bob"}, carol = {.name = "carol"},
             vm = {.name = "voicemail"}, mallory = {.name = "mallory"},
             frank = {.name = "frank"};
static char proxy[64];

static ms_err new_agent_on(agent *a, const char *uri, const char *user, const char *password,
                           bool do_register, const char *listen, const char *transport)
{
    char detail[256] = "";
    ms_sip_config cfg = {
        .local_uri = uri,
        .display = a->name,
        .listen = listen,
        .transport = transport,
        .proxy = do_register ? proxy : NULL,
        .do_register = do_register,
        .register_expires = 60,
        .auth_user = user,
        .password = password,
    };
    ms_err rc = ms_sip_new(&a->sip, &cfg, &handlers, a, detail, sizeof(detail));
    if (rc != MS_OK)
        fprintf(stderr, "%s: %s (%s)\n", a->name, ms_errname(rc), detail);
    return rc;
}

static ms_err new_agent(agent *a, const char *uri, const char *user, const char *password,
                        bool do_register, const char *listen)
{
    return new_agent_on(a, uri, user, password, do_register, listen, NULL);
}

static bool all_registered(void)
{
    return alice.reg_count && bob.reg_count && carol.reg_count;
}
static bool mallory_answered(void) { return mallory.reg_count > 0; }
static bool both_established(void) { return alice.estab_count == 1 && bob.estab_count == 1; }
static bool both_closed(void) { return alice.closed_count == 1 && bob.closed_count == 1; }
static bool alice_closed(void) { return alice.closed_count == 1; }
static bool vm_established(void) { return alice.estab_count == 1 && vm.estab_count == 1; }
static bool vm_closed(void) { return alice.closed_count == 1 && vm.closed_count == 1; }

static void reset(agent *a)
{
    a->incoming_count = a->estab_count = a->closed_count = 0;
    a->closed_status = -1;
    a->closed_reason[0] = a->closed_warning[0] = '\0';
    a->in_from[0] = a->in_to[0] = a->in_ruri[0] = '\0';
    a->refuse_status = 0;
    a->refuse_warning = NULL;
}

static void free_agent(agent *a)
{
    ms_sip_free(a->sip);
    a->sip = NULL;
    free(a->in_sdp);
    free(a->in_raw);
    free(a->estab_sdp);
    a->in_sdp = a->in_raw = a->estab_sdp = NULL;
}

/* An offer as large as one carrying an I_MESSAGE, and then some: over UDP's limit. */
static char offer[2600];
static void make_offer(void)
{
    int n = snprintf(offer, sizeof(offer),
                     "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                     "t=0 0\r\nm=audio 40000 RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\n"
                     "a=key-mgmt:mikey ");
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t rnd[1];
    for (int i = 0; i < 2000; i++) {
        ms_test_random(rnd, 1);
        offer[n++] = b64[rnd[0] & 63];
    }
    memcpy(offer + n, "\r\n", 3);
}

static const char *answer_bob =
    "v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40002 RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
static const char *answer_vm =
    "v=0\r\no=voicemail 3 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40004 RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\na=recvonly\r\n";

static bool contains(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(hay + i, needle, n))
            return true;
    return false;
}

/* ---- steps ------------------------------------------------------------------------------ */

static void test_registration(void)
{
    CHECK(run_until("Alice, Bob and Carol registered", all_registered));
    CHECK(alice.reg_status == 200);
    CHECK(bob.reg_status == 200);
    CHECK(carol.reg_status == 200);

    /* Alice's name with the wrong password: refused, not registered */
    CHECK_ERR(new_agent(&mallory, "sip:alice@" DOMAIN, "alice", "not-her-secret", true, NULL),
              MS_OK);
    CHECK(run_until("the registrar's answer to a wrong password", mallory_answered));
    CHECK(mallory.reg_status == 403 || mallory.reg_status == 401);
    free_agent(&mallory);

    /* no credentials at all: the challenge cannot be met */
    mallory.reg_count = 0;
    CHECK_ERR(new_agent(&mallory, "sip:bob@" DOMAIN, NULL, NULL, true, NULL), MS_OK);
    CHECK(run_until("the registrar's answer without credentials", mallory_answered));
    CHECK(mallory.reg_status == 401);
    free_agent(&mallory);
}

static bool alice_message_answered(void) { return alice.sent_count == 1; }

/* MESSAGE through the provider: a binary body arrives intact; the receiver's status and
 * the provider's 404 for an unregistered user come back to the sender. */
static void test_message(void)
{
    const uint8_t body[] = {0x01, 0x00, 0xff, '\r', '\n', 'x', 0x00, 0x7f};
    alice.sent_count = 0;
    CHECK_ERR(ms_sip_message(alice.sip, "sip:bob@" DOMAIN, "application/mikey", body,
                             sizeof(body), on_message_sent, &alice), MS_OK);
    CHECK(run_until("bob's answer to alice's MESSAGE", alice_message_answered));
    CHECK(alice.sent_status == 200);
    CHECK(bob.msg_count == 1 && !strcmp(bob.msg_from, "sip:alice@" DOMAIN));
    CHECK(!strcmp(bob.msg_ctype, "application/mikey"));
    CHECK(bob.msg_len == sizeof(body) && !memcmp(bob.msg_body, body, sizeof(body)));

    bob.msg_reply = 488;
    alice.sent_count = 0;
    CHECK_ERR(ms_sip_message(alice.sip, "sip:bob@" DOMAIN, "text/plain", (const uint8_t *)"hi",
                             2, on_message_sent, &alice), MS_OK);
    CHECK(run_until("bob's refusal of alice's MESSAGE", alice_message_answered));
    CHECK(alice.sent_status == 488 && bob.msg_count == 2);
    bob.msg_reply = 0;

    alice.sent_count = 0;
    CHECK_ERR(ms_sip_message(alice.sip, "sip:dave@" DOMAIN, "text/plain", (const uint8_t *)"hi",
                             2, on_message_sent, &alice), MS_OK);
    CHECK(run_until("the provider's answer for dave", alice_message_answered));
    CHECK(alice.sent_status == 404);

    CHECK_ERR(ms_sip_message(alice.sip, "not a uri", "text/plain", NULL, 0, NULL, NULL),
              MS_ERR_ARG);
    CHECK_ERR(ms_sip_message(alice.sip, "sip:bob@" DOMAIN, "text/plain\r\nX: y", NULL, 0, NULL,
                             NULL), MS_ERR_ARG);
}

static void test_call(bool callee_hangs_up)
{
    reset(&alice);
    reset(&bob);
    ms_sip_call *call = NULL;
    CHECK_ERR(ms_sip_dial(alice.sip, &call, "sip:bob@" DOMAIN, offer), MS_OK);
    CHECK(call != NULL);
    if (!call)
        return;
    alice.call = call;
    CHECK(strcmp(ms_sip_call_peer(call), "sip:bob@" DOMAIN) == 0);
    CHECK(run_until("the call established on both sides", both_established));
    CHECK(strlen(offer) > 1400);
    CHECK(bob.incoming_count == 1);
    CHECK(bob.in_sdp_len == strlen(offer) && bob.in_sdp && !strcmp(bob.in_sdp, offer));
    CHECK(strcmp(bob.in_from, "sip:alice@" DOMAIN) == 0);
    CHECK(strcmp(bob.in_to, "sip:bob@" DOMAIN) == 0);
    /* raw: the INVITE as it arrived, request line to the end of the body */
    CHECK(bob.in_raw && !strncmp(bob.in_raw, "INVITE sip:", 11));
    CHECK(bob.in_raw && bob.in_raw_len > strlen(offer) &&
          !memcmp(bob.in_raw + bob.in_raw_len - strlen(offer), offer, strlen(offer)));
    CHECK(bob.in_raw && contains(bob.in_raw, bob.in_raw_len, "Record-Route:"));
    CHECK(alice.estab_sdp && !strcmp(alice.estab_sdp, answer_bob));
    CHECK(alice.estab_sdp_len == strlen(answer_bob));
    CHECK(bob.estab_sdp && !strcmp(bob.estab_sdp, offer));
    CHECK(bob.call != NULL);
    if (!bob.call)
        return; /* counted as a failure just above */
    CHECK(ms_sip_call_arg(bob.call) == &bob);
    CHECK(strcmp(ms_sip_call_id(bob.call), ms_sip_call_id(call)) == 0);
    CHECK(strlen(ms_sip_call_id(call)) > 0);
    CHECK(strcmp(ms_sip_call_peer(bob.call), "sip:alice@" DOMAIN) == 0);

    ms_sip_call *bobs = bob.call;
    ms_sip_hangup(callee_hangs_up ? bobs : call);
    CHECK(run_until("BYE seen on both sides", both_closed));
    CHECK(alice.closed_status == 0);
    CHECK(bob.closed_status == 0);
    CHECK(alice.closed_call == call);
    CHECK(bob.closed_call == bobs);
}

static void test_refused(const char *warning)
{
    reset(&alice);
    reset(&bob);
    bob.refuse_status = 606;
    bob.refuse_warning = warning;
    ms_sip_call *call = NULL;
    CHECK_ERR(ms_sip_dial(alice.sip, &call, "sip:bob@" DOMAIN, offer), MS_OK);
    CHECK(run_until("the refusal reaches Alice", alice_closed));
    CHECK(bob.incoming_count == 1);
    CHECK(alice.closed_status == 606);
    CHECK(strcmp(alice.closed_warning, warning) == 0);
    if (strcmp(alice.closed_warning, warning))
        fprintf(stderr, "  warning got '%s', want '%s'\n", alice.closed_warning, warning);
    CHECK(alice.estab_count == 0);
    CHECK(bob.estab_count == 0);
    CHECK(bob.closed_count == 0); /* a call the handler refused ends there */
}

/* Carol over UDP calls Bob over TCP: kamailio bridges the transports, both ways. */
static const char *small_offer =
    "v=0\r\no=carol 4 4 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40006 RTP/SAVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
static bool carol_bob_established(void) { return carol.estab_count == 1 && bob.estab_count == 1; }
static bool carol_bob_closed(void) { return carol.closed_count == 1 && bob.closed_count == 1; }

static void test_udp_caller(void)
{
    reset(&carol);
    reset(&bob);
    ms_sip_call *call = NULL;
    CHECK_ERR(ms_sip_dial(carol.sip, &call, "sip:bob@" DOMAIN, small_offer), MS_OK);
    CHECK(run_until("Carol (UDP) and Bob (TCP) in a call", carol_bob_established));
    CHECK(bob.in_sdp && !strcmp(bob.in_sdp, small_offer));
    CHECK(strcmp(bob.in_from, "sip:carol@" DOMAIN) == 0);
    CHECK(carol.estab_sdp && !strcmp(carol.estab_sdp, answer_bob));
    ms_sip_hangup(call);
    CHECK(run_until("Carol's BYE reaches Bob", carol_bob_closed));
    CHECK(bob.closed_status == 0);
    CHECK(carol.closed_status == 0);
}

/* An INVITE for `callee` ends at the voicemail stand-in, which sees the mailbox. */
static void test_voicemail(const char *callee, agent *phone)
{
    reset(&alice);
    reset(&vm);
    if (phone) {
        reset(phone);
        phone->refuse_status = 480;
    }
    char uri[64], mailbox[64];
    snprintf(uri, sizeof(uri), "sip:%s@%s", callee, DOMAIN);
    snprintf(mailbox, sizeof(mailbox), "X-Mailbox: %s\r\n", callee);
    ms_sip_call *call = NULL;
    CHECK_ERR(ms_sip_dial(alice.sip, &call, uri, offer), MS_OK);
    CHECK(run_until("the voicemail stand-in answers", vm_established));
    if (phone)
        CHECK(phone->incoming_count == 1);
    CHECK(vm.incoming_count == 1);
    CHECK(strcmp(vm.in_to, uri) == 0);
    CHECK(strncmp(vm.in_ruri, uri, strlen(uri)) == 0);
    CHECK(vm.in_raw && contains(vm.in_raw, vm.in_raw_len, mailbox));
    CHECK(strcmp(vm.in_from, "sip:alice@" DOMAIN) == 0);
    CHECK(vm.in_sdp && !strcmp(vm.in_sdp, offer));
    CHECK(alice.estab_sdp && !strcmp(alice.estab_sdp, answer_vm));
    ms_sip_hangup(call);
    CHECK(run_until("the voicemail call ends", vm_closed));
    CHECK(vm.closed_status == 0);
    CHECK(alice.closed_status == 0);
    if (phone)
        phone->refuse_status = 0;
}

/* Erin's phone registers (digest, by hand, over UDP) and then never answers: kamailio
 * gives up on it and the call goes to voicemail. */
static int erin_fd = -1;
static unsigned erin_port;
static char erin_last[8192];
static int erin_invites, erin_reg_status;

static void md5_hex(char out[33], const char *text)
{
    unsigned char d[16];
    unsigned int n = 0;
    EVP_Digest(text, strlen(text), d, &n, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* the quoted value of `name="..."` in a header line */
static bool param(char *out, size_t cap, const char *hdr, const char *name)
{
    char want[32];
    snprintf(want, sizeof(want), "%s=\"", name);
    const char *p = strstr(hdr, want);
    if (!p)
        return false;
    p += strlen(want);
    size_t n = strcspn(p, "\"");
    if (n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

static void erin_send_register(int cseq, const char *authorization)
{
    char msg[2048];
    int n = snprintf(msg, sizeof(msg),
                     "REGISTER sip:" DOMAIN " SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-erin-%d;rport\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:erin@" DOMAIN ">;tag=erin\r\n"
                     "To: <sip:erin@" DOMAIN ">\r\n"
                     "Call-ID: erin-registration\r\n"
                     "CSeq: %d REGISTER\r\n"
                     "Contact: <sip:erin@127.0.0.1:%u>\r\n"
                     "Expires: 60\r\n%s"
                     "Content-Length: 0\r\n\r\n",
                     erin_port, cseq, cseq, erin_port, authorization);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(proxy + 14)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    (void)sendto(erin_fd, msg, (size_t)n, 0, (struct sockaddr *)&to, sizeof(to));
}

static void erin_pump(void)
{
    ssize_t n;
    while ((n = recv(erin_fd, erin_last, sizeof(erin_last) - 1, 0)) > 0) {
        erin_last[n] = '\0';
        if (!strncmp(erin_last, "INVITE ", 7)) {
            erin_invites++; /* and no answer, ever */
            continue;
        }
        int status = 0;
        if (sscanf(erin_last, "SIP/2.0 %d", &status) != 1)
            continue;
        if (status == 401 && erin_reg_status == 0) {
            char realm[64], nonce[128], ha1[33], ha2[33], resp[33], text[512], auth[1024];
            char *www = strstr(erin_last, "WWW-Authenticate:");
            if (!www || !param(realm, sizeof(realm), www, "realm") ||
                !param(nonce, sizeof(nonce), www, "nonce")) {
                erin_reg_status = -1;
                continue;
            }
            snprintf(text, sizeof(text), "erin:%s:erin-secret", realm);
            md5_hex(ha1, text);
            md5_hex(ha2, "REGISTER:sip:" DOMAIN);
            bool qop = strstr(www, "qop=") != NULL;
            if (qop)
                snprintf(text, sizeof(text), "%s:%s:00000001:0a4f113b:auth:%s", ha1, nonce, ha2);
            else
                snprintf(text, sizeof(text), "%s:%s:%s", ha1, nonce, ha2);
            md5_hex(resp, text);
            snprintf(auth, sizeof(auth),
                     "Authorization: Digest username=\"erin\", realm=\"%s\", nonce=\"%s\", "
                     "uri=\"sip:" DOMAIN "\", response=\"%s\", algorithm=MD5%s\r\n",
                     realm, nonce, resp, qop ? ", qop=auth, nc=00000001, cnonce=\"0a4f113b\"" : "");
            erin_reg_status = 401;
            erin_send_register(2, auth);
        } else if (erin_reg_status == 401) {
            erin_reg_status = status;
        }
    }
}

/* the answer to the REGISTER with credentials (or a challenge we could not read) */
static bool erin_registered(void)
{
    return (erin_reg_status >= 200 && erin_reg_status != 401) || erin_reg_status < 0;
}

static void test_unanswered(void)
{
    erin_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    CHECK(erin_fd >= 0 && bind(erin_fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          getsockname(erin_fd, (struct sockaddr *)&sin, &sl) == 0);
    erin_port = ntohs(sin.sin_port);
    tick_hook = erin_pump;
    erin_send_register(1, "");
    CHECK(run_until("Erin's phone registered", erin_registered));
    CHECK(erin_reg_status == 200);
    test_voicemail("erin", NULL);
    CHECK(erin_invites >= 1); /* the phone was tried first */
    tick_hook = NULL;
    close(erin_fd);
}

/* A callee that never answers: hanging up before the answer sends CANCEL. */
static int raw_listen_fd = -1, raw_conn_fd = -1;
static char raw_buf[16384];
static size_t raw_len;

static void raw_pump(void)
{
    if (raw_conn_fd < 0) {
        raw_conn_fd = accept(raw_listen_fd, NULL, NULL);
        if (raw_conn_fd >= 0)
            (void)fcntl(raw_conn_fd, F_SETFL, O_NONBLOCK);
        return;
    }
    ssize_t n = recv(raw_conn_fd, raw_buf + raw_len, sizeof(raw_buf) - 1 - raw_len, 0);
    if (n > 0) {
        raw_len += (size_t)n;
        raw_buf[raw_len] = '\0';
    }
}

static bool raw_got_invite(void) { return strstr(raw_buf, "\r\n\r\n") && strstr(raw_buf, "INVITE sip:"); }

/* The raw callee rings (180) so that a CANCEL may follow (RFC 3261 9.1). */
static bool raw_ring(void)
{
    char reply[4096];
    size_t n = (size_t)snprintf(reply, sizeof(reply), "SIP/2.0 180 Ringing\r\n");
    static const char *const copied[] = {"Via:", "From:", "To:", "Call-ID:", "CSeq:"};
    for (size_t h = 0; h < sizeof(copied) / sizeof(copied[0]); h++) {
        char want[16];
        snprintf(want, sizeof(want), "\r\n%s", copied[h]);
        const char *line = strstr(raw_buf, want);
        if (!line)
            return false;
        line += 2;
        size_t len = strcspn(line, "\r");
        n += (size_t)snprintf(reply + n, sizeof(reply) - n, "%.*s%s\r\n", (int)len, line,
                              h == 2 ? ";tag=ringing" : "");
    }
    n += (size_t)snprintf(reply + n, sizeof(reply) - n, "Content-Length: 0\r\n\r\n");
    return n < sizeof(reply) && send(raw_conn_fd, reply, n, 0) == (ssize_t)n;
}
static bool frank_rung(void) { return frank.closed_count == 0 && raw_len > 0; }
static bool raw_got_cancel(void) { return frank.closed_count == 1 && strstr(raw_buf, "CANCEL sip:"); }

static void test_cancel(void)
{
    raw_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    CHECK(raw_listen_fd >= 0 && bind(raw_listen_fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
          listen(raw_listen_fd, 1) == 0 &&
          getsockname(raw_listen_fd, (struct sockaddr *)&sin, &sl) == 0);
    char uri[64];
    snprintf(uri, sizeof(uri), "sip:nobody@127.0.0.1:%u", ntohs(sin.sin_port));
    ms_sip_call *call = NULL;
    CHECK_ERR(ms_sip_dial(frank.sip, &call, uri, offer), MS_OK);
    tick_hook = raw_pump;
    CHECK(run_until("the INVITE at a callee that never answers", raw_got_invite));
    CHECK(strstr(raw_buf, ";transport=tcp") != NULL);
    CHECK(raw_ring());
    /* one more turn of the loop so that the 180 is read before we hang up */
    CHECK(run_until("the 180 read", frank_rung));
    ms_sip_hangup(call);
    ms_sip_hangup(call); /* twice is harmless */
    CHECK(run_until("CANCEL sent and the call closed", raw_got_cancel));
    tick_hook = NULL;
    CHECK(frank.closed_status == 487);
    CHECK(frank.estab_count == 0);
    close(raw_conn_fd);
    close(raw_listen_fd);
}

/* UDP sockets and timers on the loop. */
static uint8_t udp_got[64];
static size_t udp_got_len;
static char udp_src[64];
static uint64_t udp_arrival;
static int fired_a, fired_b, fired_cancelled;
static ms_sip_timer *timer_a;

static void on_udp(void *arg, const uint8_t *data, size_t len, const char *src,
                   uint64_t arrival_us)
{
    (void)arg;
    udp_got_len = len < sizeof(udp_got) ? len : sizeof(udp_got);
    memcpy(udp_got, data, udp_got_len);
    snprintf(udp_src, sizeof(udp_src), "%s", src);
    udp_arrival = arrival_us;
}
static void fire_a(void *arg) { (void)arg; fired_a++; ms_sip_timer_cancel(timer_a); timer_a = NULL; }
static void fire_b(void *arg) { (void)arg; fired_b++; }
static void fire_cancelled(void *arg) { (void)arg; fired_cancelled++; }
static bool udp_arrived(void) { return udp_got_len > 0; }
static bool timers_done(void) { return fired_a == 1 && fired_b == 1; }

static void test_udp_and_timers(void)
{
    ms_sip_udp *rx = NULL, *tx = NULL;
    CHECK_ERR(ms_sip_udp_open(alice.sip, &rx, "127.0.0.1", on_udp, NULL), MS_OK);
    CHECK_ERR(ms_sip_udp_open(alice.sip, &tx, "127.0.0.1", on_udp, NULL), MS_OK);
    ms_sip_udp *bad = NULL;
    CHECK_ERR(ms_sip_udp_open(alice.sip, &bad, "not an ip", on_udp, NULL), MS_ERR_ARG);
    CHECK(bad == NULL);
    CHECK(rx != NULL && tx != NULL);
    if (!rx || !tx)
        return;
    CHECK(ms_sip_udp_port(rx) != 0 && ms_sip_udp_port(tx) != 0);
    static const uint8_t datagram[] = {0x80, 0x60, 0x00, 0x01, 'h', 'e', 'l', 'l', 'o'};
    CHECK_ERR(ms_sip_udp_send(tx, "127.0.0.1", ms_sip_udp_port(rx), datagram, sizeof(datagram)),
              MS_OK);
    CHECK_ERR(ms_sip_udp_send(tx, "nowhere", 1, datagram, sizeof(datagram)), MS_ERR_ARG);
    CHECK(run_until("the datagram", udp_arrived));
    CHECK(udp_got_len == sizeof(datagram) && !memcmp(udp_got, datagram, sizeof(datagram)));
    char want_src[32];
    snprintf(want_src, sizeof(want_src), "127.0.0.1:%u", ms_sip_udp_port(tx));
    CHECK(strcmp(udp_src, want_src) == 0);
    CHECK(udp_arrival > 1600000000ull * 1000000ull); /* Unix microseconds, not a counter */
    ms_sip_udp_close(rx);
    ms_sip_udp_close(tx);
    ms_sip_udp_close(NULL);

    ms_sip_timer *cancelled = NULL, *b = NULL;
    CHECK_ERR(ms_sip_timer_start(alice.sip, &cancelled, 1, fire_cancelled, NULL), MS_OK);
    ms_sip_timer_cancel(cancelled);
    CHECK_ERR(ms_sip_timer_start(alice.sip, &timer_a, 1, fire_a, NULL), MS_OK);
    CHECK_ERR(ms_sip_timer_start(alice.sip, &b, 20, fire_b, NULL), MS_OK);
    CHECK(run_until("two timers", timers_done));
    CHECK(fired_cancelled == 0); /* it was due before b, which fired */
    ms_sip_timer_cancel(b);
    ms_sip_timer_cancel(NULL);
}

/* TLS to a server that proves itself with the certificate we trust, then to one that
 * cannot: the second call fails before anything is sent. */
static char tls_dir[300];
static agent tina = {.name = "tina"}, tom = {.name = "tom"};

static bool file_has(const char *name, const char *needle)
{
    char path[400], buf[65536];
    snprintf(path, sizeof(path), "%s/%s", tls_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}
static bool tls_invite_seen(void) { return file_has("received", "INVITE sip:nobody@"); }
static bool tina_closed(void) { return tina.closed_count == 1; }
static bool tom_refused(void) { return tom.closed_count == 1 && file_has("failures", "handshake failed"); }

static void test_tls(void)
{
    snprintf(tls_dir, sizeof(tls_dir), "%s/tls", workdir);
    CHECK(mkdir(tls_dir, 0700) == 0);
    char script[1100], log[400], portfile[400];
    snprintf(script, sizeof(script), "%s/../lib/tls_sink.py", getenv("MS_TEST_VECTORS"));
    snprintf(log, sizeof(log), "%s/sink.log", tls_dir);
    snprintf(portfile, sizeof(portfile), "%s/port", tls_dir);
    fflush(NULL);
    pid_t sink = fork();
    if (sink == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("python3", "python3", script, tls_dir, (char *)NULL);
        _exit(127);
    }
    CHECK(sink > 0);
    if (sink <= 0)
        return;
    /* the sink writes its port file once it listens (waiting for a server to start
     * is not a timing assertion: 20 s is only how long we give it) */
    unsigned port = 0;
    for (int i = 0; i < 400 && !port; i++) {
        FILE *f = fopen(portfile, "r");
        if (f) {
            if (fscanf(f, "%u", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (!port)
            usleep(50000);
    }
    CHECK(port != 0);
    char uri[64], ca[400], other[400], detail[256];
    snprintf(uri, sizeof(uri), "sip:nobody@127.0.0.1:%u", port);
    snprintf(ca, sizeof(ca), "%s/sink.pem", tls_dir);
    snprintf(other, sizeof(other), "%s/other.pem", tls_dir);
    ms_sip_config cfg = {.local_uri = "sip:tina@" DOMAIN, .transport = "tls", .tls_ca_file = ca};
    CHECK_ERR(ms_sip_new(&tina.sip, &cfg, &handlers, &tina, detail, sizeof(detail)), MS_OK);
    cfg.local_uri = "sip:tom@" DOMAIN;
    cfg.tls_ca_file = other;
    CHECK_ERR(ms_sip_new(&tom.sip, &cfg, &handlers, &tom, detail, sizeof(detail)), MS_OK);
    cfg.tls_ca_file = "/nonexistent/ca.pem";
    ms_sip *bad = NULL;
    CHECK_ERR(ms_sip_new(&bad, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_SIP);
    CHECK(strstr(detail, "/nonexistent/ca.pem") != NULL);
    if (port && tina.sip && tom.sip) {
        ms_sip_call *call = NULL;
        CHECK_ERR(ms_sip_dial(tina.sip, &call, uri, small_offer), MS_OK);
        CHECK(run_until("the INVITE over TLS at the sink", tls_invite_seen));
        CHECK(file_has("received", ";transport=tls"));
        CHECK(file_has("received", small_offer));
        ms_sip_hangup(call);
        CHECK(run_until("Tina's call closed", tina_closed));

        CHECK_ERR(ms_sip_dial(tom.sip, &call, uri, small_offer), MS_OK);
        CHECK(run_until("Tom's TLS handshake refused", tom_refused));
        CHECK(tom.closed_status >= 500);
        CHECK(tom.estab_count == 0);
        CHECK(!file_has("received", "sip:tom@"));
    }
    free_agent(&tina);
    free_agent(&tom);
    kill(sink, SIGTERM);
    waitpid(sink, NULL, 0);
}

static void test_bad_input(void)
{
    ms_sip *s = NULL;
    char detail[256];
    ms_sip_config cfg = {.local_uri = "alice"};
    CHECK_ERR(ms_sip_new(&s, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_ARG);
    CHECK(strstr(detail, "alice") != NULL);
    cfg.local_uri = "sip:alice@" DOMAIN;
    cfg.transport = "sctp";
    CHECK_ERR(ms_sip_new(&s, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_ARG);
    CHECK(strstr(detail, "sctp") != NULL);
    cfg.transport = NULL;
    cfg.listen = "localhost";
    CHECK_ERR(ms_sip_new(&s, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_ARG);
    cfg.listen = NULL;
    cfg.do_register = true;
    CHECK_ERR(ms_sip_new(&s, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_ARG);
    cfg.do_register = false;
    cfg.auth_user = "alice";
    CHECK_ERR(ms_sip_new(&s, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_ARG);
    cfg.auth_user = NULL;
    /* the voicemail stand-in's address is taken */
    char vm_addr[64];
    CHECK_ERR(ms_sip_local_addr(vm.sip, vm_addr, sizeof(vm_addr)), MS_OK);
    cfg.listen = vm_addr;
    CHECK_ERR(ms_sip_new(&s, &cfg, &handlers, NULL, detail, sizeof(detail)), MS_ERR_SIP);
    CHECK(strstr(detail, vm_addr) != NULL);
    CHECK(s == NULL);
    CHECK_ERR(ms_sip_local_addr(vm.sip, vm_addr, 4), MS_ERR_BUFFER_TOO_SMALL);

    ms_sip_call *call = NULL;
    CHECK_ERR(ms_sip_dial(alice.sip, &call, "not a uri", offer), MS_ERR_ARG);
    CHECK_ERR(ms_sip_dial(alice.sip, &call, "sip:bob@" DOMAIN, ""), MS_ERR_ARG);
    CHECK(call == NULL);
    ms_sip_free(NULL);
    ms_sip_hangup(NULL);
}

int main(void)
{
    ms_test_seed();
    make_offer();
    const char *vectors = getenv("MS_TEST_VECTORS");
    if (!vectors) {
        fprintf(stderr, "MS_TEST_VECTORS is not set (run through ctest)\n");
        return 1;
    }
    snprintf(helper, sizeof(helper), "%s/../lib/kamailio.sh", vectors);
    snprintf(workdir, sizeof(workdir), "/tmp/ms-sip-XXXXXX");
    if (!mkdtemp(workdir)) {
        perror("mkdtemp");
        return 1;
    }

    /* the voicemail stand-in listens first: the provider is told its address */
    vm.answer_sdp = answer_vm;
    if (new_agent(&vm, "sip:voicemail@" DOMAIN, NULL, NULL, false, NULL) != MS_OK)
        return 1;
    loop_owner = vm.sip;
    char vm_addr[64], port[16];
    CHECK_ERR(ms_sip_local_addr(vm.sip, vm_addr, sizeof(vm_addr)), MS_OK);
    CHECK(!strncmp(vm_addr, "127.0.0.1:", 10) && strcmp(vm_addr, "127.0.0.1:0"));
    bool provider = start_provider(vm_addr, port, sizeof(port));
    CHECK(provider);
    if (provider) {
        snprintf(proxy, sizeof(proxy), "sip:127.0.0.1:%s", port);
        bob.answer_sdp = answer_bob;
        carol.answer_sdp = answer_bob;
        CHECK_ERR(new_agent(&alice, "sip:alice@" DOMAIN, "alice", "alice-secret", true, NULL),
                  MS_OK);
        CHECK_ERR(new_agent(&bob, "sip:bob@" DOMAIN, "bob", "bob-secret", true, NULL), MS_OK);
        /* Carol's phone speaks UDP to the provider (the others TCP) */
        CHECK_ERR(new_agent_on(&carol, "sip:carol@" DOMAIN, "carol", "carol-secret", true, NULL,
                               "udp"),
                  MS_OK);
        CHECK_ERR(new_agent(&frank, "sip:frank@" DOMAIN, NULL, NULL, false, NULL), MS_OK);
        if (alice.sip && bob.sip && carol.sip && frank.sip) {
            test_registration();
            test_message();
            test_call(false);
            test_call(true);
            test_refused("no keys for that period");
            test_refused("bad signature (\"ECCSI\" check \\ failed)");
            test_udp_caller();
            test_voicemail("dave", NULL); /* not registered */
            test_voicemail("carol", &carol); /* registered, answers 480 */
            test_unanswered();              /* registered, never answers */
            test_cancel();
            test_udp_and_timers();
            test_tls();
            test_bad_input();
        }
        free_agent(&alice);
        free_agent(&bob);
        free_agent(&carol);
        free_agent(&frank);
        CHECK(run_helper("stop", workdir, NULL, NULL, NULL, NULL, NULL, NULL) == 0);
    }
    free_agent(&vm);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
    if (getenv("MS_TEST_KEEP")) /* to read kamailio's log after a failure */
        fprintf(stderr, "kept %s\n", workdir);
    else if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", workdir);
    return ms_test_finish();
}
