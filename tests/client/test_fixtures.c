/*
 * Fixtures for tests/cli/test_user.sh, made with the kmsif writer and the crypto layer
 * (the same set-up as the library tests): `client_test_fixtures DIR` writes an enrolment
 * file, key packages (good ones and refusals), Bob's keys for a MIKEY round trip and an
 * env.sh with the periods and times. Run by ctest without arguments it writes them to a
 * temporary directory and checks they import.
 */
#include <time.h>

#include "fixture.h"

static void put_file(const char *dir, const char *name, const void *p, size_t len, int mode)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(p, 1, len, fp) != len || fclose(fp) != 0)
        fx_die(path, MS_ERR_IO);
    if (chmod(path, (mode_t)mode) != 0)
        fx_die(path, MS_ERR_IO);
}

static void put_hex(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char *s = malloc(2 * len + 2);
    for (size_t i = 0; i < len; i++)
        snprintf(s + 2 * i, 3, "%02X", p[i]);
    s[2 * len] = '\n';
    put_file(dir, name, s, 2 * len + 1, 0600);
    free(s);
}

static void iso(char out[32], uint64_t ntp_seconds)
{
    time_t t = (time_t)(ntp_seconds - MS_NTP_UNIX_OFFSET);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void write_pkg(fx *f, const char *dir, const char *name, const ms_key_package *pkg,
                      const ms_device_keys *dev)
{
    fx_write(f, pkg, dev);
    put_file(dir, name, f->xml, f->xml_len, 0644); /* packages are not secret */
}

static void make(fx *f, const char *dir)
{
    ms_key_package pkg;
    ms_device_keys other;
    uint64_t late = f->p0_end - 86400;

    fx_enrolment(f, &f->dev, &f->cert);
    put_file(dir, "enrolment.xml", f->xml, f->xml_len, 0600);
    fx_package(f, &pkg, f->p0, f->now - 600);
    write_pkg(f, dir, "pkg-p0.xml", &pkg, &f->dev);
    fx_package(f, &pkg, f->p0, f->now - 1200);
    write_pkg(f, dir, "pkg-p0-older.xml", &pkg, &f->dev);
    fx_package(f, &pkg, f->p0 + 1, late);
    write_pkg(f, dir, "pkg-p1.xml", &pkg, &f->dev);
    fx_package(f, &pkg, f->p0 - 1, f->now);
    write_pkg(f, dir, "pkg-expired.xml", &pkg, &f->dev);
    fx_package(f, &pkg, f->p0 + 1, f->now);
    other = f->dev;
    ms_test_random(other.ink, sizeof other.ink);
    write_pkg(f, dir, "pkg-wrong-ink.xml", &pkg, &other);
    other = f->dev;
    ms_test_random(other.trk, sizeof other.trk);
    write_pkg(f, dir, "pkg-wrong-trk.xml", &pkg, &other);
    snprintf(pkg.device_id, sizeof pkg.device_id, "%s", "alice-tablet-2");
    write_pkg(f, dir, "pkg-other-device.xml", &pkg, &f->dev);
    fx_package(f, &pkg, f->p0 + 1, f->now);
    ms_kmsif_keyset bob;
    fx_keyset(f, &bob, "sip:bob@example.org", f->p0 + 1);
    memcpy(pkg.keysets[0].rsk, bob.rsk, sizeof bob.rsk);
    write_pkg(f, dir, "pkg-bad-rsk.xml", &pkg, &f->dev);

    /* Bob, for MIKEY with Alice's keystore: his keys of period p0 (explicit files). */
    fx_keyset(f, &bob, "sip:bob@example.org", f->p0);
    put_hex(dir, "bob.rsk", bob.rsk, sizeof bob.rsk);
    put_hex(dir, "bob.ssk", bob.ssk, sizeof bob.ssk);
    char pvt[2 * MS_ECCSI_POINT_BYTES + 1], *Z = malloc(2 * MS_SAKKE_POINT_BYTES + 1);
    char kpak[2 * MS_ECCSI_POINT_BYTES + 1];
    for (size_t i = 0; i < MS_ECCSI_POINT_BYTES; i++) {
        snprintf(pvt + 2 * i, 3, "%02X", bob.pvt[i]);
        snprintf(kpak + 2 * i, 3, "%02X", f->cert.kpak[i]);
    }
    for (size_t i = 0; i < MS_SAKKE_POINT_BYTES; i++)
        snprintf(Z + 2 * i, 3, "%02X", f->cert.Z[i]);

    char now[32], late_s[32], next[32], due[32], after[32], purge[32];
    iso(now, f->now);
    iso(late_s, late);
    iso(next, f->p0_end);
    iso(due, f->p0_end - 2 * 86400);
    iso(after, f->p0_end + 86400);
    iso(purge, f->p0_end + 2 * 86400);
    char env[4096];
    int n = snprintf(env, sizeof env,
                     "KMS=%s\nALICE=%s\nBOB=sip:bob@example.org\nPERIOD_LEN=%llu\n"
                     "P0=%llu\nP1=%llu\nNOW=%s\nLATE=%s\nNEXT_START=%s\nDUE=%s\n"
                     "AFTER=%s\nPURGE_AT=%s\nBOB_PVT=%s\nKMS_Z=%s\nKMS_KPAK=%s\n",
                     FX_KMS, f->dev.user_uri, (unsigned long long)FX_PERIOD_LEN,
                     (unsigned long long)f->p0, (unsigned long long)f->p0 + 1, now, late_s,
                     next, due, after, purge, pvt, Z, kpak);
    put_file(dir, "env.sh", env, (size_t)n, 0600);
    put_file(dir, "pass", FX_PASS "\n", strlen(FX_PASS) + 1, 0600);
    free(Z);
}

int main(int argc, char **argv)
{
    ms_test_seed();
    fx f;
    fx_init(&f, 0);
    if (argc == 2) {
        make(&f, argv[1]);
        fx_cleanup(&f);
        return 0;
    }
    /* Self-check: the fixtures are what the CLI test expects. */
    make(&f, f.root);
    fx_create(&f);
    ms_keystore *ks = fx_open(&f);
    char d[256], path[512];
    static const struct {
        const char *name;
        ms_err want;
    } cases[] = {{"pkg-p0.xml", MS_OK},
                 {"pkg-p0-older.xml", MS_ERR_PACKAGE_REPLAY},
                 {"pkg-expired.xml", MS_ERR_PERIOD},
                 {"pkg-wrong-ink.xml", MS_ERR_PACKAGE_SIGNATURE},
                 {"pkg-wrong-trk.xml", MS_ERR_PACKAGE_DECRYPT},
                 {"pkg-other-device.xml", MS_ERR_PACKAGE_DEVICE},
                 {"pkg-bad-rsk.xml", MS_ERR_RSK_INVALID},
                 {"pkg-p1.xml", MS_OK}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *buf = NULL;
        snprintf(path, sizeof path, "%s/%s", f.root, cases[i].name);
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL);
        if (fp == NULL)
            continue;
        buf = malloc(FX_XML_CAP);
        size_t len = fread(buf, 1, FX_XML_CAP, fp);
        fclose(fp);
        ms_err got = ms_keystore_import(ks, NULL, (const char *)buf, len, f.now, d, sizeof d);
        if (got != cases[i].want)
            fprintf(stderr, "%s: %s (%s)\n", cases[i].name, ms_errname(got), d);
        CHECK(got == cases[i].want);
        free(buf);
    }
    ms_keystore_close(ks);
    fx_cleanup(&f);
    return ms_test_finish();
}
