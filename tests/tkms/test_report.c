/* Cheater reports (src/tkms/report.c), in process at (3,1) and (5,2):
 *  - a device combining a wrong share signed by server 1 names it and writes a report,
 *    which is upheld (with the peers table and public.txt, with the records file, and
 *    from a server's directory);
 *  - a report made against an honest server is judged false (MS_ERR_REPORT_FALSE);
 *  - a server that signed a record not the batch's is caught with the records file;
 *  - reports that cannot be judged are refused clearly: another key, another user's
 *    slot, malformed; no report is written from a file the accused did not sign;
 *  - the report's octets hold no other server's u_j or SSK_j, nor its envelope;
 *  - the design note's attack 2: t corrupt servers answer the victim with wrong shares,
 *    the victim's device reports one of them; the coalition (the t servers' own shares
 *    and the report) then holds shares of the victim's slot from t servers only, and no
 *    honest share, so the victim's RSK stays out of reach. The positive control: a report
 *    carrying the honest server's share too (the design the note warns of) gives the
 *    victim's RSK with the corrupt servers' shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report_fixture.h"
#include "tkms/report.h"

#define VICTIM 0

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int has(const uint8_t *h, size_t hl, const uint8_t *n, size_t nl)
{
    for (size_t i = 0; nl <= hl && i + nl <= hl; i++)
        if (memcmp(h + i, n, nl) == 0)
            return 1;
    return 0;
}

static ms_err combine(const rf_world *w, const char *const *files, size_t count,
                      unsigned *cheater, uint8_t rsk[257])
{
    uint8_t ssk[32], pvt[65];
    char detail[300] = "";
    return ms_tkms_device_combine(w->peers, w->public_txt, w->dev_sk, RF_PERIOD,
                                  RF_URI[VICTIM], files, count, rsk, ssk, pvt, cheater, detail,
                                  sizeof detail);
}

static ms_err judge(const rf_world *w, const char *report, const char *records,
                    unsigned *server, char *detail, size_t cap)
{
    uint8_t sid[32];
    return ms_tkms_report_check(w->peers, w->public_txt, records, report, server, sid, detail,
                                cap);
}

static void run(unsigned n, unsigned t, const char *dir)
{
    printf("(%u,%u):\n", n, t);
    rf_world *w = calloc(1, sizeof *w);
    CHECK_ERR(rf_setup(w, n, t, dir), MS_OK);
    char good[MS_TKMS_MAX_N][600], bad[MS_TKMS_MAX_N][600], badrec[600];
    for (unsigned i = 1; i <= n; i++) {
        snprintf(good[i - 1], sizeof good[0], "%s/good%u", dir, i);
        snprintf(bad[i - 1], sizeof bad[0], "%s/bad%u", dir, i);
        CHECK_ERR(rf_share_file(w, i, VICTIM, RF_HONEST, good[i - 1]), MS_OK);
        CHECK_ERR(rf_share_file(w, i, VICTIM, RF_WRONG_SHARE, bad[i - 1]), MS_OK);
    }
    snprintf(badrec, sizeof badrec, "%s/badrec1", dir);
    CHECK_ERR(rf_share_file(w, 1, VICTIM, RF_WRONG_RECORD, badrec), MS_OK);
    /* the victim's real keys, from honest shares */
    const char *files[MS_TKMS_MAX_T + 1];
    uint8_t rsk_v[257], rsk[257];
    unsigned cheater = 0;
    for (unsigned k = 0; k <= t; k++)
        files[k] = good[n - 1 - k];
    CHECK_ERR(combine(w, files, t + 1, &cheater, rsk_v), MS_OK);

    /* a server answering the victim's slot with another slot's signed record (and its
     * share of that slot) is named, first in the list or not */
    char other[600];
    snprintf(other, sizeof other, "%s/other2", dir);
    CHECK_ERR(rf_share_file(w, 2, VICTIM, RF_OTHER_SLOT, other), MS_OK);
    for (unsigned pos = 0; pos < 2; pos++) {
        const char *mix[2] = {pos == 0 ? other : good[0], pos == 0 ? good[0] : other};
        char why[400] = "";
        uint8_t ssk[32], pvt[65];
        cheater = 0;
        CHECK_ERR(ms_tkms_device_combine(w->peers, w->public_txt, w->dev_sk, RF_PERIOD,
                                         RF_URI[VICTIM], mix, 2, rsk, ssk, pvt, &cheater, why,
                                         sizeof why),
                  MS_ERR_THRESHOLD_SHARE);
        CHECK(cheater == 2 && strstr(why, "another identity's slot") != NULL);
    }

    /* 1. a true report: server 1 signed a wrong share */
    char rep[600], detail[400];
    snprintf(rep, sizeof rep, "%s/report-true", dir);
    files[0] = bad[0];
    for (unsigned k = 1; k <= t; k++)
        files[k] = good[k];
    CHECK_ERR(combine(w, files, t + 1, &cheater, rsk), MS_ERR_THRESHOLD_SHARE);
    CHECK(cheater == 1);
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, w->dev_sk, RF_PERIOD, RF_URI[VICTIM],
                                   files, t + 1, cheater, rep, detail, sizeof detail),
              MS_OK);
    unsigned server = 0;
    CHECK_ERR(judge(w, rep, NULL, &server, detail, sizeof detail), MS_ERR_THRESHOLD_SHARE);
    CHECK(server == 1);
    CHECK(strstr(detail, "server 1 sent a wrong share for slot ") != NULL);
    printf("  true report: %s\n", detail);
    CHECK_ERR(judge(w, rep, w->records, &server, detail, sizeof detail), MS_ERR_THRESHOLD_SHARE);
    uint8_t sid[32];
    CHECK_ERR(ms_tkms_report_check_dir(dir, rep, &server, sid, detail, sizeof detail),
              MS_ERR_THRESHOLD_SHARE);
    CHECK(server == 1);
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, w->dev_sk, RF_PERIOD, RF_URI[VICTIM],
                                   files, t + 1, cheater, rep, detail, sizeof detail),
              MS_ERR_EXISTS);

    /* 2. a false report: made against honest server 2 */
    char rep_false[600];
    snprintf(rep_false, sizeof rep_false, "%s/report-false", dir);
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, w->dev_sk, RF_PERIOD, RF_URI[VICTIM],
                                   files, t + 1, 2, rep_false, detail, sizeof detail),
              MS_OK);
    CHECK_ERR(judge(w, rep_false, NULL, &server, detail, sizeof detail), MS_ERR_REPORT_FALSE);
    CHECK(server == 2);
    CHECK(strstr(detail, "the report is false: server 2's share") != NULL);
    printf("  false report: %s\n", detail);
    CHECK_ERR(judge(w, rep_false, w->records, &server, detail, sizeof detail),
              MS_ERR_REPORT_FALSE);

    /* 3. a record that is not the batch's: caught with the records file */
    char rep_rec[600];
    snprintf(rep_rec, sizeof rep_rec, "%s/report-record", dir);
    const char *recfiles[1] = {badrec};
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, w->dev_sk, RF_PERIOD, RF_URI[VICTIM],
                                   recfiles, 1, 1, rep_rec, detail, sizeof detail),
              MS_OK);
    CHECK_ERR(judge(w, rep_rec, w->records, &server, detail, sizeof detail),
              MS_ERR_THRESHOLD_SHARE);
    CHECK(strstr(detail, "not the batch's") != NULL);

    /* 4. reports that cannot be judged, and reports not written */
    static uint8_t buf[1 << 16];
    size_t len = slurp(rep, buf, sizeof buf);
    CHECK(len > 100);
    char rep_x[600];
    snprintf(rep_x, sizeof rep_x, "%s/report-x", dir);
    size_t key_at = strlen(MS_TKMS_REPORT_HEADER) + 2 + strlen(RF_PERIOD) + 2 +
                    strlen(RF_URI[VICTIM]);
    buf[key_at] ^= 1; /* another key */
    CHECK(rf_write(rep_x, buf, len) == 0);
    CHECK_ERR(judge(w, rep_x, NULL, &server, detail, sizeof detail), MS_ERR_DECRYPT);
    buf[key_at] ^= 1;
    buf[key_at - 1] = '6'; /* the URI's last digit: another user's slot */
    CHECK(rf_write(rep_x, buf, len) == 0);
    CHECK_ERR(judge(w, rep_x, NULL, &server, detail, sizeof detail), MS_ERR_PEER_MESSAGE);
    buf[key_at - 1] = '3';
    size_t per_at = strlen(MS_TKMS_REPORT_HEADER) + 2;
    buf[per_at] = '/'; /* a period that is not one */
    CHECK(rf_write(rep_x, buf, len) == 0);
    CHECK_ERR(judge(w, rep_x, NULL, &server, detail, sizeof detail), MS_ERR_BAD_ENCODING);
    buf[per_at] = '2';
    CHECK(rf_write(rep_x, buf, len) == 0); /* restored: judged again */
    CHECK_ERR(judge(w, rep_x, NULL, &server, detail, sizeof detail), MS_ERR_THRESHOLD_SHARE);
    CHECK(rf_write(rep_x, buf, 40) == 0);
    CHECK_ERR(judge(w, rep_x, NULL, &server, detail, sizeof detail), MS_ERR_BAD_ENCODING);
    char rep_no[600];
    snprintf(rep_no, sizeof rep_no, "%s/report-none", dir);
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, w->dev_sk, RF_PERIOD, RF_URI[VICTIM],
                                   files, t + 1, n, rep_no, detail, sizeof detail),
              MS_ERR_PEER_MESSAGE); /* server n's file is not among them */
    CHECK(access(rep_no, F_OK) != 0);
    uint8_t other_sk[32], other_pk[32];
    CHECK_ERR(ms_hpke_keygen(other_sk, other_pk, &ms_test_rng), MS_OK);
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, other_sk, RF_PERIOD, RF_URI[VICTIM],
                                   files, t + 1, 1, rep_no, detail, sizeof detail),
              MS_ERR_DECRYPT);

    /* 5. the report's octets: the accused's envelope and nothing of another server */
    len = slurp(rep, buf, sizeof buf);
    static uint8_t fb[1 << 16];
    for (unsigned j = 1; j <= n; j++) {
        ms_tkms_share sh;
        ms_tkms_record rec;
        CHECK_ERR(ms_tkms_issue(w->bt[j - 1], w->id[VICTIM], w->id_len[VICTIM], &sh, &rec),
                  MS_OK);
        size_t fl = slurp(good[j - 1], fb, sizeof fb);
        /* the envelope is the file's last 160 + 48 octets before the signature */
        const uint8_t *env = fb + fl - MS_PEER_SIG_BYTES - (160 + MS_HPKE_OVERHEAD);
        if (j != 1) {
            CHECK(!has(buf, len, sh.u, sizeof sh.u));
            CHECK(!has(buf, len, sh.ssk, sizeof sh.ssk));
            CHECK(!has(buf, len, env, 160 + MS_HPKE_OVERHEAD));
        }
        ms_wipe(&sh, sizeof sh);
    }
    size_t bl = slurp(bad[0], fb, sizeof fb);
    CHECK(has(buf, len, fb, bl)); /* the accused's file, whole */
    /* and its envelope found where the search above looks for the others' */
    CHECK(has(buf, len, fb + bl - MS_PEER_SIG_BYTES - (160 + MS_HPKE_OVERHEAD),
              160 + MS_HPKE_OVERHEAD));
    printf("  the report holds server 1's signed share and no other server's share\n");

    /* 6. attack 2: servers 1..t answer the victim with wrong shares, t+1 with its own */
    for (unsigned k = 0; k < t; k++)
        files[k] = bad[k];
    files[t] = good[t];
    char rep_a[600];
    snprintf(rep_a, sizeof rep_a, "%s/report-attack", dir);
    CHECK_ERR(combine(w, files, t + 1, &cheater, rsk), MS_ERR_THRESHOLD_SHARE);
    CHECK(cheater >= 1 && cheater <= t);
    CHECK_ERR(ms_tkms_report_write(w->peers, w->public_txt, w->dev_sk, RF_PERIOD, RF_URI[VICTIM],
                                   files, t + 1, cheater, rep_a, detail, sizeof detail),
              MS_OK);
    len = slurp(rep_a, buf, sizeof buf);
    /* what the coalition holds of the victim's slot: its own shares 1..t and the report's
     * one share message, from server `cheater`: indices 1..t only */
    uint32_t indices = (1u << t) - 1;
    CHECK_ERR(judge(w, rep_a, NULL, &server, detail, sizeof detail), MS_ERR_THRESHOLD_SHARE);
    if (server >= 1 && server <= n)
        indices |= 1u << (server - 1);
    unsigned held = 0;
    for (uint32_t x = indices; x; x &= x - 1)
        held++;
    CHECK(held == t);
    ms_tkms_share honest;
    ms_tkms_record rec;
    CHECK_ERR(ms_tkms_issue(w->bt[t], w->id[VICTIM], w->id_len[VICTIM], &honest, &rec), MS_OK);
    CHECK(!has(buf, len, honest.u, sizeof honest.u));
    CHECK(!has(buf, len, honest.ssk, sizeof honest.ssk));
    printf("  attack 2: after the report the coalition holds shares of the victim's slot from "
           "%u servers (t = %u), no honest share\n",
           held, t);
    /* positive control: the honest share with the corrupt servers' own gives the RSK */
    ms_tkms_share coal[MS_TKMS_MAX_T + 1];
    for (unsigned k = 0; k < t; k++)
        CHECK_ERR(ms_tkms_issue(w->bt[k], w->id[VICTIM], w->id_len[VICTIM], &coal[k], &rec),
                  MS_OK);
    coal[t] = honest;
    uint8_t ssk[32], pvt[65];
    CHECK_ERR(ms_tkms_combine(&w->pub, w->id[VICTIM], w->id_len[VICTIM], &rec, coal, t + 1, rsk,
                              ssk, pvt, &cheater, NULL, 0),
              MS_OK);
    CHECK(memcmp(rsk, rsk_v, sizeof rsk) == 0);
    printf("  control: had the report carried server %u's share, servers 1..%u would have the "
           "victim's RSK\n",
           t + 1, t);
    ms_wipe(coal, sizeof coal);
    ms_wipe(&honest, sizeof honest);
    rf_free(w);
    free(w);
}

int main(void)
{
    ms_test_seed();
    char dir3[] = "/tmp/ms_treport_XXXXXX", dir5[] = "/tmp/ms_treport_XXXXXX";
    if (mkdtemp(dir3) == NULL || mkdtemp(dir5) == NULL)
        return 2;
    run(3, 1, dir3);
    run(5, 2, dir5);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir3, dir5);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove the scratch folders\n");
    return ms_test_finish();
}
