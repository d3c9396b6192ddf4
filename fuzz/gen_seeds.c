/*
 * Writes the fuzzing seed corpus: structurally valid MIKEY messages of each shape the
 * codec knows (RFC 6509 I_MESSAGE, TS 33.180 GMK and PCK, an error message, the rarer
 * payloads) to <dir>/mikey/, and SDP a=key-mgmt lines carrying them (plus a few
 * near-misses) to <dir>/sdp/. Run by hand when the seeds should change:
 *   build-fuzz/fuzz/fuzz_gen_seeds fuzz/corpus
 * The content is deterministic (patterns, not randomness), so reruns give the same files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mikeysakke/mikey.h"

static uint8_t sakke_data[273], sig[129], rand16[16], mac32[32], spi8[8], uid_i[32], uid_r[32];
static uint8_t to_self[5 + 273], key_params[35 + 33];
static const uint8_t srtp_policy[] = {0, 1, 1, 1, 1, 16, 2, 1, 1, 4, 1, 14, 11, 1, 10};
static const uint8_t gmk_policy[] = {0, 1, 6, 1, 1, 16, 2, 1, 4, 4, 1, 12, 5, 1, 0,
                                     6, 1, 0, 13, 1, 1, 18, 1, 4, 19, 1, 0, 20, 1, 16};
static const uint8_t key_ids[] = {0, 4, 1, 2, 3, 4, 2, 2, 0xab, 0xcd};

static void fill(void)
{
    sakke_data[0] = 0x04;
    for (size_t i = 1; i < sizeof sakke_data; i++)
        sakke_data[i] = (uint8_t)(i * 37 + 11);
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(i * 91 + 3);
    sig[64] = 0x04; /* PVT prefix */
    for (size_t i = 0; i < 16; i++)
        rand16[i] = (uint8_t)(0x5a ^ (i * 13));
    for (size_t i = 0; i < 32; i++) {
        mac32[i] = (uint8_t)(i * 7);
        uid_i[i] = (uint8_t)(0x80 + i);
        uid_r[i] = (uint8_t)(0x20 + 3 * i);
    }
    for (size_t i = 0; i < 8; i++)
        spi8[i] = (uint8_t)(0x10 + i);
    to_self[1] = 1;
    to_self[2] = 2;
    to_self[3] = 0x01;
    to_self[4] = 0x11;
    memcpy(to_self + 5, sakke_data, sizeof sakke_data);
    key_params[0] = 0x43;
    key_params[5] = 1;
    key_params[11] = 1;
    for (size_t i = 0; i < 16; i++)
        key_params[12 + i] = (uint8_t)(0x70 + i);
    key_params[28] = 0x01;
    key_params[29] = 0xc8;
    key_params[30] = 0xde;
    key_params[31] = 0x7b;
    key_params[34] = 33;
    for (size_t i = 35; i < sizeof key_params; i++)
        key_params[i] = (uint8_t)(i * 5);
}

static ms_mikey_span sp(const void *d, size_t n)
{
    ms_mikey_span s = {(const uint8_t *)d, n};
    return s;
}

static ms_mikey_span str(const char *s) { return sp(s, strlen(s)); }

static ms_mikey_payload *add(ms_mikey_message *m, uint8_t type)
{
    ms_mikey_payload *pl = &m->payloads[m->n_payloads++];
    memset(pl, 0, sizeof *pl);
    pl->type = type;
    return pl;
}

static void idr(ms_mikey_message *m, uint8_t role, ms_mikey_span id)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_IDR);
    pl->u.idr.role = role;
    pl->u.idr.id_type = MS_MIKEY_IDTYPE_URI;
    pl->u.idr.id = id;
}

static void ext(ms_mikey_message *m, uint8_t type, ms_mikey_span data)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_GENERAL_EXT);
    pl->u.ext.type = type;
    pl->u.ext.data = data;
}

static void t_rand(ms_mikey_message *m, uint8_t ts_type, uint64_t value)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = ts_type;
    pl->u.t.value = value;
    add(m, MS_MIKEY_PT_RAND)->u.rand = sp(rand16, sizeof rand16);
}

static void sp_payload(ms_mikey_message *m, uint8_t no, const uint8_t *params, size_t n)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_SP);
    pl->u.sp.policy_no = no;
    pl->u.sp.params = sp(params, n);
}

static void sakke_sign(ms_mikey_message *m, uint8_t scheme)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_SAKKE);
    pl->u.sakke.params = MS_MIKEY_SAKKE_PARAMS_SET1;
    pl->u.sakke.id_scheme = scheme;
    pl->u.sakke.data = sp(sakke_data, sizeof sakke_data);
}

static void sign(ms_mikey_message *m)
{
    ms_mikey_payload *pl = add(m, MS_MIKEY_PT_SIGN);
    pl->u.sign.s_type = MS_MIKEY_STYPE_ECCSI;
    pl->u.sign.sig = sp(sig, sizeof sig);
}

static void hdr(ms_mikey_message *m, uint8_t dt, uint8_t prf, uint32_t csb, uint8_t map)
{
    memset(m, 0, sizeof *m);
    m->hdr.version = 1;
    m->hdr.data_type = dt;
    m->hdr.prf = prf;
    m->hdr.csb_id = csb;
    m->hdr.map_type = map;
}

/* NTP-UTC of 2011-02-10 12:00:00 and of 2024-05-01 09:30:00.25 */
#define T_2011 (((uint64_t)3506328000u << 32))
#define T_2024 (((uint64_t)3923530200u << 32) | 0x40000000u)

static int n_msgs;
static uint8_t msgs[8][4096];
static size_t msg_len[8];

static void save(const char *dir, const ms_mikey_message *m)
{
    char path[512];
    size_t n;
    if (ms_mikey_encode(msgs[n_msgs], sizeof msgs[0], &n, NULL, m) != MS_OK) {
        fprintf(stderr, "encode failed for seed %d\n", n_msgs);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/mikey/seed-%02d.bin", dir, n_msgs);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(msgs[n_msgs], 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    msg_len[n_msgs++] = n;
}

static void save_line(const char *dir, int k, const char *line)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sdp/seed-%02d.txt", dir, k);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fputs(line, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    static ms_mikey_message m;
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    fill();

    /* 0: RFC 6509 I_MESSAGE: SRTP-ID map, all four IDRs, one SP */
    hdr(&m, MS_MIKEY_DT_SAKKE, MS_MIKEY_PRF_MIKEY1, 0x3a5f0c11, MS_MIKEY_MAP_SRTP_ID);
    m.hdr.n_cs = 1;
    m.hdr.cs[0] = (ms_mikey_cs){.cs_id = 1, .n_policies = 1, .has_roc = true};
    t_rand(&m, MS_MIKEY_TS_NTP_UTC, T_2011);
    idr(&m, MS_MIKEY_ROLE_INITIATOR, str("tel:+447700900123"));
    idr(&m, MS_MIKEY_ROLE_RESPONDER, str("tel:+447700900456"));
    idr(&m, MS_MIKEY_ROLE_KMS_INITIATOR, str("kms.example.org"));
    idr(&m, MS_MIKEY_ROLE_KMS_RESPONDER, str("kms.example.org"));
    sp_payload(&m, 0, srtp_policy, sizeof srtp_policy);
    sakke_sign(&m, MS_MIKEY_ID_SCHEME_TEL_MONTHLY);
    sign(&m);
    save(dir, &m);

    /* 1: TS 33.180 GMK: GENERIC-ID map (CS ID 4, SPI = GMK-ID || GUK-ID), hidden
     * identities, SAKKE-to-self and key parameters */
    hdr(&m, MS_MIKEY_DT_SAKKE, MS_MIKEY_PRF_HMAC_SHA256, 0x01c8de7b, MS_MIKEY_MAP_GENERIC_ID);
    m.hdr.n_cs = 1;
    m.hdr.cs[0] = (ms_mikey_cs){.cs_id = 4, .n_policies = 1, .spi = sp(spi8, 8)};
    t_rand(&m, MS_MIKEY_TS_NTP_UTC, T_2024);
    idr(&m, MS_MIKEY_ROLE_UID_INITIATOR, sp(uid_i, 32));
    idr(&m, MS_MIKEY_ROLE_UID_RESPONDER, sp(uid_r, 32));
    idr(&m, MS_MIKEY_ROLE_KMS_INITIATOR, str("kms.mcx.example.net"));
    idr(&m, MS_MIKEY_ROLE_KMS_RESPONDER, str("kms.mcx.example.net"));
    sp_payload(&m, 0, gmk_policy, sizeof gmk_policy);
    sakke_sign(&m, MS_MIKEY_ID_SCHEME_HASHED_UID);
    ext(&m, MS_MIKEY_EXT_SAKKE_TO_SELF, sp(to_self, sizeof to_self));
    ext(&m, MS_MIKEY_EXT_KEY_PARAMS, sp(key_params, sizeof key_params));
    sign(&m);
    save(dir, &m);

    /* 2: TS 33.180 PCK: empty map, #CS 0, no SP */
    hdr(&m, MS_MIKEY_DT_SAKKE, MS_MIKEY_PRF_HMAC_SHA256, 0x1abcdef0, MS_MIKEY_MAP_EMPTY);
    t_rand(&m, MS_MIKEY_TS_NTP_UTC, T_2024);
    idr(&m, MS_MIKEY_ROLE_INITIATOR, str("sip:alice@mcx.example.net"));
    idr(&m, MS_MIKEY_ROLE_RESPONDER, str("sip:bob@mcx.example.net"));
    idr(&m, MS_MIKEY_ROLE_KMS_INITIATOR, str("kms.mcx.example.net"));
    idr(&m, MS_MIKEY_ROLE_KMS_RESPONDER, str("kms.mcx.example.net"));
    sakke_sign(&m, MS_MIKEY_ID_SCHEME_HASHED_UID);
    sign(&m);
    save(dir, &m);

    /* 3: error message: HDR (data type 6), T, ERR, V (HMAC-SHA-256) */
    hdr(&m, MS_MIKEY_DT_ERROR, MS_MIKEY_PRF_MIKEY1, 0x3a5f0c11, MS_MIKEY_MAP_SRTP_ID);
    add(&m, MS_MIKEY_PT_T)->u.t.value = T_2011;
    add(&m, MS_MIKEY_PT_ERR)->u.err.error_no = MS_MIKEY_ERRNO_INVALID_SPPAR;
    add(&m, MS_MIKEY_PT_ERR)->u.err.error_no = MS_MIKEY_ERRNO_UNSUPPORTED_MSG;
    ms_mikey_payload *pl = add(&m, MS_MIKEY_PT_V);
    pl->u.v.auth_alg = 2;
    pl->u.v.mac = sp(mac32, 32);
    save(dir, &m);

    /* 4: the rarer forms: two GENERIC-ID sessions (S = 1 with SSRC/ROC/SEQ, TESLA),
     * COUNTER and NTP-UTC-32 timestamps, ID, CERT, Key ID and SDP IDs extensions,
     * V with HMAC-SHA-1 and NULL, RSA-PSS SIGN */
    hdr(&m, MS_MIKEY_DT_SAKKE, MS_MIKEY_PRF_MIKEY1, 0xfedcba98, MS_MIKEY_MAP_GENERIC_ID);
    m.hdr.v = true;
    m.hdr.n_cs = 2;
    m.hdr.cs[0] = (ms_mikey_cs){.cs_id = 0, .n_policies = 2, .policies = {0, 1},
                                .has_roc = true, .has_session_data = true,
                                .ssrc = 0x11223344, .roc = 1, .seq = 0x8000};
    m.hdr.cs[1] = (ms_mikey_cs){.cs_id = 1, .prot_type = MS_MIKEY_PROT_TESLA,
                                .spi = sp(spi8, 4)};
    pl = add(&m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = MS_MIKEY_TS_COUNTER;
    pl->u.t.value = 7;
    pl = add(&m, MS_MIKEY_PT_T);
    pl->u.t.ts_type = MS_MIKEY_TS_NTP_UTC_32;
    pl->u.t.value = T_2011;
    pl = add(&m, MS_MIKEY_PT_ID);
    pl->u.id.id_type = MS_MIKEY_IDTYPE_NAI;
    pl->u.id.id = str("alice@example.org");
    add(&m, MS_MIKEY_PT_CERT)->u.id.id = sp(sig, 64);
    ext(&m, MS_MIKEY_EXT_KEY_ID, sp(key_ids, sizeof key_ids));
    ext(&m, MS_MIKEY_EXT_SDP_IDS, str("mikey"));
    pl = add(&m, MS_MIKEY_PT_V);
    pl->u.v.auth_alg = 1;
    pl->u.v.mac = sp(mac32, 20);
    add(&m, MS_MIKEY_PT_V);
    pl = add(&m, MS_MIKEY_PT_SIGN);
    pl->u.sign.s_type = MS_MIKEY_STYPE_RSA_PSS;
    pl->u.sign.sig = sp(sig, 128);
    save(dir, &m);

    /* SDP lines: each message as the attribute, then the accepted variants and a few
     * near-misses for the fuzzer to start from. */
    static char line[MS_SDP_KEY_MGMT_MAX + 16];
    int k = 0;
    for (int i = 0; i < n_msgs; i++) {
        if (ms_sdp_key_mgmt_format(line, sizeof line, msgs[i], msg_len[i]) != MS_OK) {
            fprintf(stderr, "format failed for message %d\n", i);
            return 1;
        }
        save_line(dir, k++, line);
    }
    if (ms_sdp_key_mgmt_format(line, sizeof line, msgs[2], msg_len[2]) != MS_OK)
        return 1;
    static char v[sizeof line + 8];
    snprintf(v, sizeof v, "%s\r\n", line);
    save_line(dir, k++, v);                  /* with CR LF */
    save_line(dir, k++, line + 2);           /* without "a=" */
    snprintf(v, sizeof v, "a=key-mgmt: %s", line + strlen("a=key-mgmt:"));
    save_line(dir, k++, v);                  /* space after the colon */
    save_line(dir, k++, "a=key-mgmt:kerberos AAAA");
    save_line(dir, k++, "a=key-mgmt:mikey AQID");
    save_line(dir, k++, "a=key-mgmt:mikey AQ==");
    save_line(dir, k++, "a=key-mgmt:mikey AR==");
    save_line(dir, k++, "a=key-mgmt:mikey A Q==");
    printf("%d MIKEY seeds, %d SDP seeds written under %s\n", n_msgs, k, dir);
    return 0;
}
