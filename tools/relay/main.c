/*
 * mikeysakke-relay: the key-less conference relay (src/relay/conference.h), a SIP
 * conference focus and RTP transport translator for group calls. It holds no key and
 * links no key code: `mikeysakke relay` runs this program. Exit status: 0, or the ms_err
 * code of the failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/errors.h"
#include "relay/conference.h"
#include "keyless/cli.h"

#define PROG "mikeysakke-relay"
#define PASSWORD_MAX 1024

#define fail(...) ms_keyless_fail(PROG, __VA_ARGS__)
#define usage_error(...) ms_keyless_usage_error(PROG, usage_text, __VA_ARGS__)

/* A decimal number in [min, max]. */
static bool parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (!ms_keyless_parse_u64(s, min, max, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

static const char usage_text[] =
    "usage:\n"
    "  " PROG " --listen SIPADDR [--transport tcp|udp|tls] [--media-ip IP]\n"
    "        [--register --proxy URI --aor URI [--auth-user U --password-file F]]\n"
    "        [--max-members N] [--media-timeout S]\n"
    "  " PROG " --help | --version\n"
    "\n"
    "Answers INVITEs to a group's URI (the To header names the group) with a media port of\n"
    "its own per member and forwards each member's SRTP and SRTCP packets, unchanged, to\n"
    "every other member of that group (an RTP transport translator, RFC 7667 3.3). It\n"
    "holds no key: its SDP answers carry no key-mgmt and it cannot read the media.\n"
    "Offers that are not RTP/SAVP are refused (488). A member leaves with BYE, or is hung\n"
    "up on after S seconds (default 30) without a packet. At most N members per group\n"
    "(default 64). With --register the relay registers --aor (the group's URI) at the\n"
    "provider --proxy, so that members reach it by dialling the group.\n";

enum {
    OPT_LISTEN = 1000, OPT_TRANSPORT, OPT_MEDIA_IP, OPT_REGISTER, OPT_PROXY, OPT_AOR,
    OPT_AUTH_USER, OPT_PASSWORD_FILE, OPT_MAX_MEMBERS, OPT_MEDIA_TIMEOUT, OPT_HELP,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"media-ip", required_argument, NULL, OPT_MEDIA_IP},
    {"register", no_argument, NULL, OPT_REGISTER},
    {"proxy", required_argument, NULL, OPT_PROXY},
    {"aor", required_argument, NULL, OPT_AOR},
    {"auth-user", required_argument, NULL, OPT_AUTH_USER},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"max-members", required_argument, NULL, OPT_MAX_MEMBERS},
    {"media-timeout", required_argument, NULL, OPT_MEDIA_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("relay: %s\n", line);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    ms_conference_config cfg;
    memset(&cfg, 0, sizeof cfg);
    const char *password_file = NULL;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        const char *a = optarg;
        switch (ch) {
        case OPT_LISTEN: cfg.listen = a; break;
        case OPT_TRANSPORT: cfg.transport = a; break;
        case OPT_MEDIA_IP: cfg.media_ip = a; break;
        case OPT_REGISTER: cfg.do_register = true; break;
        case OPT_PROXY: cfg.proxy = a; break;
        case OPT_AOR: cfg.local_uri = a; break;
        case OPT_AUTH_USER: cfg.auth_user = a; break;
        case OPT_PASSWORD_FILE: password_file = a; break;
        case OPT_MAX_MEMBERS:
            if (!parse_u32(a, 2, 10000, &cfg.max_members))
                return (int)usage_error("--max-members wants a number from 2 to 10000");
            break;
        case OPT_MEDIA_TIMEOUT:
            if (!parse_u32(a, 1, 86400, &cfg.media_timeout_s))
                return (int)usage_error("--media-timeout wants seconds from 1 to 86400");
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 0;
        case OPT_VERSION:
            printf(PROG " %s\n", MS_VERSION);
            return 0;
        default:
            return (int)usage_error("unknown option or missing value: %s",
                                    optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        }
    }
    if (optind < argc)
        return (int)usage_error("unexpected argument: %s", argv[optind]);
    if (cfg.listen == NULL)
        return (int)usage_error("--listen is required");
    if (cfg.do_register && (cfg.proxy == NULL || cfg.local_uri == NULL))
        return (int)usage_error("--register needs --proxy and --aor");
    if ((cfg.auth_user != NULL) != (password_file != NULL))
        return (int)usage_error("--auth-user and --password-file go together");

    char pw[PASSWORD_MAX] = "";
    size_t pw_len = 0;
    ms_err e;
    if (password_file != NULL &&
        (e = ms_keyless_read_password(PROG, password_file, pw, sizeof pw, &pw_len)) != MS_OK)
        return (int)e;
    cfg.password = password_file != NULL ? pw : NULL;
    cfg.log = log_line;
    char detail[256] = "";
    ms_conference *conf = NULL;
    e = ms_conference_new(&conf, &cfg, detail, sizeof detail);
    ms_wipe(pw, sizeof pw); /* the SIP agent keeps its own copy */
    if (e != MS_OK)
        return (int)fail(e, "SIP on %s: %s", cfg.listen, detail);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    e = ms_conference_stop_on(conf, &stop_requested);
    char addr[80] = "?";
    (void)ms_conference_local_addr(conf, addr, sizeof addr);
    printf("relay: SIP on %s (%s), up to %u members per group, media timeout %u s\n", addr,
           cfg.transport ? cfg.transport : "tcp", cfg.max_members ? cfg.max_members : 64,
           cfg.media_timeout_s ? cfg.media_timeout_s : 30);
    if (e == MS_OK)
        e = ms_conference_run(conf);
    ms_conference_stats st;
    ms_conference_get_stats(conf, &st);
    printf("relay: stopping; %u joined, %u left, %llu packets in, %llu out, %llu dropped\n",
           st.joined, st.left, (unsigned long long)st.packets_in,
           (unsigned long long)st.packets_out, (unsigned long long)st.packets_dropped);
    ms_conference_free(conf);
    if (e != MS_OK)
        return (int)fail(e, "SIP event loop");
    return 0;
}
