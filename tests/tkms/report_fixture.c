/* The files of a threshold KMS at (3,1) for the command-line test of cheater reports
 * (tests/e2e/test_threshold_report.sh): in DIR (existing) the peers table, public.txt and
 * the batch's records (so DIR is also a server's directory for check-report --dir), the
 * device's key (device.key, hex, 0600), the victim's share files good1..good3 and, signed
 * by server 1 but wrong, bad1, and report-false: a report made against honest server 2.
 * Usage: tkms_report_fixture DIR */
#include <stdio.h>
#include <sys/stat.h>

#include "report_fixture.h"
#include "tkms/report.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tkms_report_fixture DIR\n");
        return 2;
    }
    ms_test_seed();
    static rf_world w;
    char path[700];
    ms_err err = rf_setup(&w, 3, 1, argv[1]);
    for (unsigned i = 1; i <= 3 && err == MS_OK; i++) {
        snprintf(path, sizeof path, "%s/good%u", argv[1], i);
        err = rf_share_file(&w, i, 0, RF_HONEST, path);
    }
    snprintf(path, sizeof path, "%s/bad1", argv[1]);
    if (err == MS_OK)
        err = rf_share_file(&w, 1, 0, RF_WRONG_SHARE, path);
    char good1[700], good2[700];
    snprintf(good1, sizeof good1, "%s/good1", argv[1]);
    snprintf(good2, sizeof good2, "%s/good2", argv[1]);
    const char *files[2] = {good1, good2};
    snprintf(path, sizeof path, "%s/report-false", argv[1]);
    if (err == MS_OK)
        err = ms_tkms_report_write(w.peers, w.public_txt, w.dev_sk, RF_PERIOD, RF_URI[0], files, 2,
                                   2, path, NULL, 0);
    snprintf(path, sizeof path, "%s/device.key", argv[1]);
    FILE *f = err == MS_OK ? fopen(path, "w") : NULL;
    if (f != NULL) {
        chmod(path, 0600);
        for (size_t i = 0; i < sizeof w.dev_sk; i++)
            fprintf(f, "%02x", w.dev_sk[i]);
        fputc('\n', f);
        if (fclose(f) != 0)
            err = MS_ERR_IO;
    } else if (err == MS_OK) {
        err = MS_ERR_IO;
    }
    rf_free(&w);
    if (err != MS_OK)
        fprintf(stderr, "tkms_report_fixture: %s\n", ms_strerror(err));
    return err == MS_OK ? 0 : 1;
}
