/* Playing a stored voicemail with the callee's own keys (voicemail.h). */
#include "call/voicemail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "call/audit.h"
#include "util/detail.h"
#include "util/hex.h"

/* What the signature binds, as a line of the played list: SHA-256 over the verified
 * caller, T and the key id (a re-signed copy with another s is the same message). */
static void message_digest(char out[65], const ms_vm_play_result *r)
{
    uint8_t buf[256 + 8 + 4], md[32];
    size_t n = strlen(r->caller);
    memcpy(buf, r->caller, n);
    for (int i = 0; i < 8; i++)
        buf[n++] = (uint8_t)(r->mikey_time >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        buf[n++] = (uint8_t)(r->key_id >> (24 - 8 * i));
    unsigned mdlen = 0;
    EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL);
    ms_hex_encode_lower(out, md, 32);
}

static bool listed(const char *path, const char *line)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char buf[128];
    bool found = false;
    while (!found && fgets(buf, sizeof buf, f) != NULL) {
        buf[strcspn(buf, "\n")] = 0;
        found = strcmp(buf, line) == 0;
    }
    fclose(f);
    return found;
}

static ms_err remember(const char *path, const char *line, char *detail, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "%s: %s", path, strerror(errno));
    char buf[80];
    int n = snprintf(buf, sizeof buf, "%s\n", line);
    ms_err err = MS_OK;
    if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0)
        err = ms_detail_fail(MS_ERR_IO, detail, cap, "%s: %s", path, strerror(errno));
    close(fd);
    return err;
}

ms_err ms_vm_play(ms_call_keys *keys, const char *capture, const char *wav_out,
                  const char *played_list, ms_vm_play_result *res, char *detail,
                  size_t detail_cap)
{
    if (keys == NULL || capture == NULL || wav_out == NULL || res == NULL)
        return MS_ERR_ARG;
    memset(res, 0, sizeof *res);
    /* Decrypt into a private folder beside the output, then move the one WAV in place. */
    char tmpdir[4096];
    if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s.d.XXXXXX", wav_out) >= sizeof tmpdir)
        return MS_ERR_ARG;
    if (mkdtemp(tmpdir) == NULL)
        return ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", tmpdir, strerror(errno));
    ms_audit_options opt = {.no_report = true};
    ms_audit_report rep;
    memset(&rep, 0, sizeof rep);
    const char *caps[1] = {capture};
    ms_err err = ms_audit_decrypt(caps, 1, keys, tmpdir, &opt, &rep, detail, detail_cap);
    char wav[4200];
    wav[0] = 0;
    if (err == MS_OK && rep.n_calls == 0)
        err = ms_detail_fail(MS_ERR_CAPTURE, detail, detail_cap, "%s holds no call set-up", capture);
    if (err == MS_OK) {
        const ms_audit_call *c = &rep.calls[0];
        snprintf(res->caller_claimed, sizeof res->caller_claimed, "%s", c->caller_claimed);
        if (!c->openable) {
            snprintf(res->refused, sizeof res->refused, "%s", c->why);
            err = ms_detail_fail(c->err != MS_OK ? c->err : MS_ERR_INVALID, detail, detail_cap,
                          "the message cannot be opened: %s", c->why);
        } else {
            snprintf(res->caller, sizeof res->caller, "%s", c->caller_verified);
            res->period_no = c->period_no;
            res->key_id = c->key_id;
            res->mikey_time = c->mikey_time;
            const ms_audit_stream *s = &c->dir[MS_AUDIT_CALLER_TO_CALLEE];
            res->frames = s->frames;
            res->failed_auth = s->failed_auth;
            res->duplicates = s->duplicates;
            if (s->file[0] == 0)
                err = ms_detail_fail(MS_ERR_MEDIA, detail, detail_cap,
                              "the message holds no audio that decrypts");
            else
                snprintf(wav, sizeof wav, "%s/%s", tmpdir, s->file);
        }
    }
    if (err == MS_OK && rename(wav, wav_out) != 0)
        err = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "%s: %s", wav_out, strerror(errno));
    if (err == MS_OK && played_list != NULL) {
        char line[65];
        message_digest(line, res);
        res->played_before = listed(played_list, line);
        if (!res->played_before)
            err = remember(played_list, line, detail, detail_cap);
    }
    /* whatever is left in the private folder (the other direction, a failed run) */
    for (size_t i = 0; i < rep.n_calls; i++)
        for (int d = 0; d < 2; d++)
            if (rep.calls[i].dir[d].file[0]) {
                snprintf(wav, sizeof wav, "%s/%s", tmpdir, rep.calls[i].dir[d].file);
                unlink(wav);
            }
    rmdir(tmpdir);
    ms_audit_report_free(&rep);
    return err;
}
