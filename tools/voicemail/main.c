/*
 * mikeysakke-voicemail: the untrusted voicemail server (a SIP user agent that records
 * diverted calls into mailboxes, and their owners' HTTPS access) and the provisioning
 * of owners' credentials. It holds no key and links no key code: `mikeysakke voicemail
 * serve` runs this program. Exit status: 0, or the ms_err code of the failure.
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
#include "net/http.h"
#include "relay/credentials.h"
#include "relay/mailbox.h"
#include "relay/mailbox_http.h"
#include "relay/voicemail.h"
#include "keyless/cli.h"

#define PROG "mikeysakke-voicemail"
#define PASSWORD_MAX 1024

#define fail(...) ms_keyless_fail(PROG, __VA_ARGS__)
#define usage_error(...) ms_keyless_usage_error(PROG, usage_text, __VA_ARGS__)
#define read_password(path, out, cap, len) ms_keyless_read_password(PROG, path, out, cap, len)
#define parse_u64 ms_keyless_parse_u64

static const char usage_text[] =
    "usage:\n"
    "  " PROG " serve --dir DIR --listen SIPADDR --https ADDR:PORT --tls-cert F --tls-key F\n"
    "        --credentials F [--transport tcp|udp|tls] [--media-ip IP] [--aor URI]\n"
    "        [--register --proxy URI --aor URI [--auth-user U --password-file F]]\n"
    "        [--proxy URI] [--max-seconds N] [--max-messages N] [--max-bytes N] [--rate R]\n"
    "  " PROG " add-user --credentials F --uri URI --password-file F [--iterations N]\n"
    "  " PROG " --help | --version\n"
    "\n"
    "serve: answers the calls a SIP provider diverts to SIPADDR (IP:PORT) and stores each\n"
    "as a pcap file (the INVITE with its I_MESSAGE, then the SRTP datagrams) in the\n"
    "callee's mailbox under DIR; refuses unencrypted offers (488). Owners fetch over HTTPS\n"
    "with HTTP Basic (user: their mailbox URI): GET /mailbox, GET and DELETE\n"
    "/mailbox/<id>. The server holds no key: it cannot read the messages it stores.\n"
    "add-user: adds or replaces an owner's password (PBKDF2-HMAC-SHA256) in the\n"
    "credentials file; the password is the first line of the password file (mode 0600).\n";

/* "ADDR:PORT" or "[v6]:PORT". */
static bool parse_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return false;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return false;
        hl = (size_t)(colon - s);
    }
    uint64_t p;
    if (hl == 0 || hl >= cap || !parse_u64(colon + 1, 0, 65535, &p))
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return true;
}

enum {
    OPT_DIR = 1000, OPT_LISTEN, OPT_HTTPS, OPT_CERT, OPT_KEY, OPT_CREDS, OPT_REGISTER,
    OPT_PROXY, OPT_AOR, OPT_AUTH_USER, OPT_PASSWORD_FILE, OPT_MAX_SECONDS, OPT_MAX_MESSAGES,
    OPT_MAX_BYTES, OPT_URI, OPT_ITERATIONS, OPT_TRANSPORT, OPT_MEDIA_IP, OPT_RATE, OPT_HELP
};

static const struct option long_opts[] = {
    {"dir", required_argument, NULL, OPT_DIR},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"https", required_argument, NULL, OPT_HTTPS},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"credentials", required_argument, NULL, OPT_CREDS},
    {"register", no_argument, NULL, OPT_REGISTER},
    {"proxy", required_argument, NULL, OPT_PROXY},
    {"aor", required_argument, NULL, OPT_AOR},
    {"auth-user", required_argument, NULL, OPT_AUTH_USER},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"max-seconds", required_argument, NULL, OPT_MAX_SECONDS},
    {"max-messages", required_argument, NULL, OPT_MAX_MESSAGES},
    {"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
    {"uri", required_argument, NULL, OPT_URI},
    {"iterations", required_argument, NULL, OPT_ITERATIONS},
    {"transport", required_argument, NULL, OPT_TRANSPORT},
    {"media-ip", required_argument, NULL, OPT_MEDIA_IP},
    {"rate", required_argument, NULL, OPT_RATE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct opts {
    const char *dir, *listen, *https, *cert, *key, *creds, *proxy, *aor, *auth_user,
        *password_file, *uri, *transport, *media_ip;
    bool do_register;
    uint64_t max_seconds, max_messages, max_bytes, iterations, rate;
} opts;

static ms_err parse_opts(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->rate = 5;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        const char *a = optarg;
        switch (c) {
        case OPT_DIR: o->dir = a; break;
        case OPT_LISTEN: o->listen = a; break;
        case OPT_HTTPS: o->https = a; break;
        case OPT_CERT: o->cert = a; break;
        case OPT_KEY: o->key = a; break;
        case OPT_CREDS: o->creds = a; break;
        case OPT_REGISTER: o->do_register = true; break;
        case OPT_PROXY: o->proxy = a; break;
        case OPT_AOR: o->aor = a; break;
        case OPT_AUTH_USER: o->auth_user = a; break;
        case OPT_PASSWORD_FILE: o->password_file = a; break;
        case OPT_URI: o->uri = a; break;
        case OPT_TRANSPORT: o->transport = a; break;
        case OPT_MEDIA_IP: o->media_ip = a; break;
        case OPT_MAX_SECONDS:
            if (!parse_u64(a, 1, 86400, &o->max_seconds))
                return usage_error("--max-seconds wants a number of seconds from 1 to 86400");
            break;
        case OPT_MAX_MESSAGES:
            if (!parse_u64(a, 1, 1000000, &o->max_messages))
                return usage_error("--max-messages wants a number from 1 to 1000000");
            break;
        case OPT_MAX_BYTES:
            if (!parse_u64(a, 4096, UINT64_C(1) << 40, &o->max_bytes))
                return usage_error("--max-bytes wants a number of octets (at least 4096)");
            break;
        case OPT_ITERATIONS:
            if (!parse_u64(a, 1000, 100000000, &o->iterations))
                return usage_error("--iterations wants a number from 1000 to 100000000");
            break;
        case OPT_RATE:
            if (!parse_u64(a, 0, 10000, &o->rate))
                return usage_error("--rate wants requests per second per client (0: none)");
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            exit(0);
        default:
            return usage_error("unknown option or missing value: %s",
                               optind > 0 && optind <= argc ? argv[optind - 1] : "?");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    return MS_OK;
}

/* ---- add-user ------------------------------------------------------------------------ */

static int cmd_add_user(const opts *o)
{
    if (o->creds == NULL || o->uri == NULL || o->password_file == NULL)
        return usage_error("add-user needs --credentials, --uri and --password-file");
    char pw[PASSWORD_MAX];
    size_t len = 0;
    ms_err e = read_password(o->password_file, pw, sizeof pw, &len);
    if (e != MS_OK)
        return e;
    char detail[256] = "";
    e = ms_vm_credentials_add(o->creds, o->uri, (const uint8_t *)pw, len,
                              (uint32_t)o->iterations, detail, sizeof detail);
    ms_wipe(pw, sizeof pw);
    if (e != MS_OK)
        return fail(e, "add-user: %s", detail[0] != '\0' ? detail : o->creds);
    printf("%s: owner of mailbox %s provisioned in %s\n", PROG, o->uri, o->creds);
    return 0;
}

/* ---- serve --------------------------------------------------------------------------- */

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    printf("voicemail: %s\n", line);
    fflush(stdout);
}

static bool known(void *ctx, const char *uri)
{
    ms_vm_credentials *c = ctx;
    char detail[256];
    if (ms_vm_credentials_refresh(c, detail, sizeof detail) != MS_OK)
        log_line(NULL, detail);
    return ms_vm_credentials_has(c, uri);
}

static int cmd_serve(const opts *o)
{
    if (o->dir == NULL || o->listen == NULL || o->https == NULL || o->cert == NULL ||
        o->key == NULL || o->creds == NULL)
        return usage_error("serve needs --dir, --listen, --https, --tls-cert, --tls-key and "
                           "--credentials");
    if (o->do_register && (o->proxy == NULL || o->aor == NULL))
        return usage_error("--register needs --proxy and --aor");
    if ((o->auth_user != NULL) != (o->password_file != NULL))
        return usage_error("--auth-user and --password-file go together");
    char https_host[64];
    uint16_t https_port = 0;
    if (!parse_hostport(o->https, https_host, sizeof https_host, &https_port))
        return usage_error("--https wants ADDR:PORT, e.g. 127.0.0.1:8443");

    char detail[256] = "";
    ms_vm_credentials *creds = NULL;
    ms_err e = ms_vm_credentials_load(&creds, o->creds, detail, sizeof detail);
    if (e != MS_OK)
        return fail(e, "%s", detail);
    ms_mailbox_limits lim = {.max_messages = (uint32_t)o->max_messages,
                             .max_seconds = (uint32_t)o->max_seconds,
                             .max_bytes = o->max_bytes};
    ms_mailbox_store *store = NULL;
    e = ms_mailbox_open(&store, o->dir, &lim, detail, sizeof detail);
    if (e != MS_OK) {
        ms_vm_credentials_free(creds);
        return fail(e, "%s", detail);
    }
    ms_mailbox_get_limits(store, &lim);

    ms_vm_http hctx = {.store = store, .creds = creds, .log = log_line, .log_ctx = NULL};
    ms_http_config hc;
    memset(&hc, 0, sizeof hc);
    hc.bind_addr = https_host;
    hc.port = https_port;
    hc.cert_file = o->cert;
    hc.key_file = o->key;
    hc.max_body = 1024; /* requests carry no body */
    hc.rate_per_sec = (double)o->rate;
    hc.rate_burst = (double)o->rate * 4;
    hc.name = "mikeysakke_voicemail";
    hc.allow_delete = true;
    hc.error_body = ms_vm_http_error_body;
    hc.detail = detail;
    hc.detail_cap = sizeof detail;
    ms_http_server *http = NULL;
    e = ms_http_start(&http, &hc, ms_vm_http_handle, NULL, NULL, &hctx);
    if (e != MS_OK) {
        ms_mailbox_close(store);
        ms_vm_credentials_free(creds);
        return fail(e, "HTTPS on %s: %s", o->https, detail);
    }

    char pw[PASSWORD_MAX];
    size_t pw_len = 0;
    pw[0] = '\0';
    if (o->password_file != NULL) {
        e = read_password(o->password_file, pw, sizeof pw, &pw_len);
        if (e != MS_OK) {
            ms_http_stop(http);
            ms_mailbox_close(store);
            ms_vm_credentials_free(creds);
            return e;
        }
    }
    ms_voicemail_config vc;
    memset(&vc, 0, sizeof vc);
    vc.listen = o->listen;
    vc.transport = o->transport;
    vc.local_uri = o->aor;
    vc.media_ip = o->media_ip;
    vc.do_register = o->do_register;
    vc.proxy = o->proxy;
    vc.auth_user = o->auth_user;
    vc.password = o->password_file != NULL ? pw : NULL;
    vc.max_seconds = lim.max_seconds;
    vc.mailbox_known = known;
    vc.known_ctx = creds;
    vc.log = log_line;
    ms_voicemail *vm = NULL;
    e = ms_voicemail_new(&vm, &vc, store, detail, sizeof detail);
    ms_wipe(pw, sizeof pw); /* the SIP agent keeps its own copy */
    if (e != MS_OK) {
        ms_http_stop(http);
        ms_mailbox_close(store);
        ms_vm_credentials_free(creds);
        return fail(e, "SIP on %s: %s", o->listen, detail);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    e = ms_voicemail_stop_on(vm, &stop_requested);

    char sip_addr[80] = "?";
    ms_voicemail_local_addr(vm, sip_addr, sizeof sip_addr);
    printf("voicemail: SIP on %s (%s), HTTPS on port %u of %s, %zu mailboxes provisioned, "
           "store %s (up to %u messages of %u s and %llu octets each)\n",
           sip_addr, o->transport != NULL ? o->transport : "tcp", (unsigned)ms_http_port(http),
           https_host, ms_vm_credentials_count(creds), o->dir, (unsigned)lim.max_messages,
           (unsigned)lim.max_seconds, (unsigned long long)lim.max_bytes);
    fflush(stdout);
    if (e == MS_OK)
        e = ms_voicemail_run(vm);
    printf("voicemail: stopping; %lu messages stored\n", ms_voicemail_stored(vm));
    fflush(stdout);
    ms_voicemail_free(vm);
    ms_http_stop(http);
    ms_mailbox_close(store);
    ms_vm_credentials_free(creds);
    if (e != MS_OK)
        return fail(e, "SIP event loop");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return usage_error("no command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf(PROG " %s\n", MS_VERSION);
        return 0;
    }
    opts o;
    ms_err e = parse_opts(argc - 1, argv + 1, &o);
    if (e != MS_OK)
        return (int)e;
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(&o);
    if (strcmp(cmd, "add-user") == 0)
        return cmd_add_user(&o);
    return usage_error("unknown command \"%s\"", cmd);
}
