/*
 * libFuzzer target for the auditor above the capture reader: SIP parsing, SDP offers and
 * answers, Call-ID and key-mgmt deduplication, datagrams matched to calls, SRTP of the
 * calls that open. The input is a whole capture file; the keys are one user's RSK in a
 * community generated once per process. Every report must be consistent (opened calls
 * counted right, strings terminated) and its JSON free of raw control characters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "call/audit.h"
#include "call/keys.h"
#include "mikeysakke/crypto.h"
#include "mikeysakke/mikey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KMS_URI "kms.example.org"
#define USER "sip:bob@example.org"

static char scratch[256];
static ms_call_keys *keys;
static uint64_t period;

static void cleanup(void)
{
    unlink(scratch);
    ms_call_keys_free(keys);
}

static void setup(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/fuzz_audit.%ld.pcap", dir ? dir : "/tmp",
             (long)getpid());
    static uint8_t z[MS_SAKKE_SECRET_BYTES], Z[MS_SAKKE_POINT_BYTES];
    static uint8_t ksak[MS_ECCSI_SCALAR_BYTES], kpak[MS_ECCSI_POINT_BYTES];
    uint8_t rsk[MS_SAKKE_POINT_BYTES], id[MS_SAKKE_ID_MAX_BYTES];
    size_t id_len = 0;
    ms_id_scheme scheme = {MS_MIKEY_ID_SCHEME_HASHED_UID, KMS_URI, 30u * 86400u, 0};
    ms_sakke_kms *kms = NULL;
    if (ms_sakke_master_keygen(z, Z, NULL) != MS_OK ||
        ms_eccsi_master_keygen(ksak, kpak, NULL) != MS_OK || ms_sakke_kms_new(&kms, Z) != MS_OK ||
        ms_key_period(&scheme, &period, ms_ntp_now() >> 32) != MS_OK ||
        ms_identifier(&scheme, id, sizeof id, &id_len, USER, period) != MS_OK ||
        ms_sakke_rsk_issue(kms, rsk, z, id, id_len) != MS_OK)
        abort();
    ms_sakke_kms_free(kms);
    ms_mikey_kms_info info = {KMS_URI, scheme, Z, kpak};
    ms_call_keys_options o;
    memset(&o, 0, sizeof o);
    o.mode = MS_CALL_KEYS_AUDIT;
    o.profile = MS_MIKEY_PROFILE_PCK;
    if (ms_call_keys_open_audit(&keys, USER, period, rsk, &info, &o, NULL, 0) != MS_OK)
        abort();
    ms_wipe(rsk, sizeof rsk);
    ms_wipe(z, sizeof z);
    ms_wipe(ksak, sizeof ksak);
    atexit(cleanup);
}

static void check_terminated(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (keys == NULL)
        setup();
    FILE *f = fopen(scratch, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    const char *paths[1] = {scratch};
    ms_audit_options opt;
    memset(&opt, 0, sizeof opt);
    opt.no_audio = true;
    opt.no_report = true;
    opt.period_no = period;
    ms_audit_report rep;
    char detail[256] = "";
    ms_err e = ms_audit_decrypt(paths, 1, keys, NULL, &opt, &rep, detail, sizeof detail);
    if (e != MS_OK) {
        if (detail[0] == '\0' || rep.calls != NULL)
            abort(); /* a failure says why and leaves no report */
        return 0;
    }
    size_t opened = 0;
    for (size_t i = 0; i < rep.n_calls; i++) {
        const ms_audit_call *c = &rep.calls[i];
        if (c->index != i + 1)
            abort();
        check_terminated(c->call_id, sizeof c->call_id);
        check_terminated(c->caller_claimed, sizeof c->caller_claimed);
        check_terminated(c->callee_claimed, sizeof c->callee_claimed);
        check_terminated(c->why, sizeof c->why);
        if (c->openable)
            opened++;
        else if (c->err == MS_OK || c->dir[0].decrypted != 0 || c->dir[1].decrypted != 0)
            abort(); /* a call not opened has a reason and no media */
    }
    if (opened != rep.opened)
        abort();
    char *json = NULL;
    size_t len = 0;
    if (ms_audit_report_json(&rep, &json, &len) != MS_OK)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)json[i] < 0x20 && json[i] != '\n')
            abort();
    free(json);
    ms_audit_report_free(&rep);
    return 0;
}
