/*
 * TS 33.180 Annex D paths and export index lines (src/kmsif/annexd.c): what is built is
 * parsed back to the same values, known paths and lines read as expected, and every
 * malformed path or line is refused with the reason named.
 */
#include <stdio.h>
#include <string.h>

#include "kmsif/annexd.h"
#include "testutil.h"

/* Builds p, parses the result back and compares every field. */
static void path_round_trip(const ms_annexd_path *p, const char *want_path)
{
    char path[MS_ANNEXD_PATH_MAX], detail[200] = "";
    CHECK_ERR(ms_annexd_path_build(p, path, sizeof path, detail, sizeof detail), MS_OK);
    if (want_path != NULL)
        CHECK(strcmp(path, want_path) == 0);
    ms_annexd_path back;
    CHECK_ERR(ms_annexd_path_parse(path, &back, detail, sizeof detail), MS_OK);
    CHECK(back.resource == p->resource);
    CHECK(back.has_user == p->has_user);
    CHECK(back.has_time == p->has_time);
    CHECK(back.has_cache_number == p->has_cache_number);
    CHECK(strcmp(back.user, p->user) == 0);
    CHECK(back.time == p->time);
    CHECK(back.cache_number == p->cache_number);
}

static void test_path_round_trips(void)
{
    path_round_trip(&(ms_annexd_path){.resource = MS_ANNEXD_INIT},
                    "/keymanagement/identity/v1/init");
    path_round_trip(&(ms_annexd_path){.resource = MS_ANNEXD_CERTCACHE},
                    "/keymanagement/identity/v1/certcache");
    path_round_trip(&(ms_annexd_path){.resource = MS_ANNEXD_CERTCACHE, .has_cache_number = true,
                                      .cache_number = UINT64_MAX},
                    "/keymanagement/identity/v1/certcache/18446744073709551615");
    path_round_trip(&(ms_annexd_path){.resource = MS_ANNEXD_KEYPROV},
                    "/keymanagement/identity/v1/keyprov");
    ms_annexd_path p = {.resource = MS_ANNEXD_KEYPROV, .has_user = true};
    snprintf(p.user, sizeof p.user, "sip:alice@example.org");
    path_round_trip(&p, "/keymanagement/identity/v1/keyprov/sip%3Aalice%40example.org");
    p.has_time = true;
    p.time = 0xE9A1B2C3u; /* NTP seconds in 2024 */
    path_round_trip(&p, "/keymanagement/identity/v1/keyprov/sip%3Aalice%40example.org/"
                        "E9A1B2C300000000");
    p.time = UINT32_MAX; /* the last second NTP era 0 carries */
    path_round_trip(&p, NULL);
    /* octets a URI keeps only percent-encoded: '/', '%', '?', non-ASCII */
    snprintf(p.user, sizeof p.user, "tel:+44/7700%%90?x\xc3\xa9~-._");
    path_round_trip(&p, "/keymanagement/identity/v1/keyprov/"
                        "tel%3A%2B44%2F7700%2590%3Fx%C3%A9~-._/FFFFFFFF00000000");
    /* the longest user, every octet encoded */
    memset(p.user, '/', MS_ANNEXD_URI_MAX);
    p.user[MS_ANNEXD_URI_MAX] = '\0';
    path_round_trip(&p, NULL);
}

static void test_path_parse_known(void)
{
    ms_annexd_path p;
    char detail[200];
    /* what curl sends unencoded, lower-case hex, and a fraction (dropped) */
    CHECK_ERR(ms_annexd_path_parse("/keymanagement/identity/v1/keyprov/tel:+447700900123/"
                                   "e9a1b2c380000000",
                                   &p, detail, sizeof detail),
              MS_OK);
    CHECK(p.resource == MS_ANNEXD_KEYPROV && p.has_user && p.has_time);
    CHECK(strcmp(p.user, "tel:+447700900123") == 0);
    CHECK(p.time == 0xE9A1B2C3u);
    CHECK_ERR(ms_annexd_path_parse("/keymanagement/identity/v1/certcache/7", &p, detail,
                                   sizeof detail),
              MS_OK);
    CHECK(p.resource == MS_ANNEXD_CERTCACHE && p.has_cache_number && p.cache_number == 7);
}

/* A path refused with the code and a detail containing `why`. */
static void path_refused(const char *path, ms_err want, const char *why)
{
    ms_annexd_path p;
    char detail[200] = "";
    CHECK_ERR(ms_annexd_path_parse(path, &p, detail, sizeof detail), want);
    if (strstr(detail, why) == NULL) {
        fprintf(stderr, "path %s: detail \"%s\" lacks \"%s\"\n", path != NULL ? path : "(null)",
                detail, why);
        CHECK(0);
    }
    CHECK(p.user[0] == '\0' && !p.has_user && !p.has_time);
}

static void test_path_refusals(void)
{
    /* not a resource: the servers answer 404 */
    path_refused(NULL, MS_ERR_INVALID, "not under");
    path_refused("", MS_ERR_INVALID, "not under");
    path_refused("/keymanagement/identity/v1", MS_ERR_INVALID, "not under");
    path_refused("/keymanagement/identity/v2/init", MS_ERR_INVALID, "not under");
    path_refused("/keymanagement/identity/v1init", MS_ERR_INVALID, "not under");
    path_refused("/keymanagement/identity/v1/", MS_ERR_INVALID, "no such resource");
    path_refused("/keymanagement/identity/v1/init/", MS_ERR_INVALID, "no such resource");
    path_refused("/keymanagement/identity/v1/keyprovx", MS_ERR_INVALID, "no such resource");
    path_refused("/keymanagement/identity/v1/certcachex", MS_ERR_INVALID, "no such resource");
    path_refused("/keymanagement/identity/v1/KEYPROV", MS_ERR_INVALID, "no such resource");
    /* malformed segments: 400 */
    static const char *const bad_user[] = {
        "/keymanagement/identity/v1/keyprov/",
        "/keymanagement/identity/v1/keyprov//E9A1B2C300000000",
        "/keymanagement/identity/v1/keyprov/a%2",
        "/keymanagement/identity/v1/keyprov/a%zz",
        "/keymanagement/identity/v1/keyprov/a%00b",
        "/keymanagement/identity/v1/keyprov/a%20b",
        "/keymanagement/identity/v1/keyprov/a%0Ab",
        "/keymanagement/identity/v1/keyprov/a%7Fb",
        "/keymanagement/identity/v1/keyprov/a b",
    };
    for (size_t i = 0; i < sizeof bad_user / sizeof bad_user[0]; i++)
        path_refused(bad_user[i], MS_ERR_BAD_ENCODING, "user segment");
    char longuser[400];
    int n = snprintf(longuser, sizeof longuser, "/keymanagement/identity/v1/keyprov/");
    memset(longuser + n, 'a', MS_ANNEXD_URI_MAX + 1);
    longuser[n + MS_ANNEXD_URI_MAX + 1] = '\0';
    path_refused(longuser, MS_ERR_BAD_ENCODING, "user segment");
    static const char *const bad_time[] = {
        "/keymanagement/identity/v1/keyprov/alice/",
        "/keymanagement/identity/v1/keyprov/alice/E9A1B2C3",
        "/keymanagement/identity/v1/keyprov/alice/E9A1B2C3000000000",
        "/keymanagement/identity/v1/keyprov/alice/E9A1B2C30000000G",
        "/keymanagement/identity/v1/keyprov/alice/E9A1B2C300000000/",
        "/keymanagement/identity/v1/keyprov/alice/E9A1B2C300000000/x",
    };
    for (size_t i = 0; i < sizeof bad_time / sizeof bad_time[0]; i++)
        path_refused(bad_time[i], MS_ERR_BAD_ENCODING, "time segment");
    static const char *const bad_cache[] = {
        "/keymanagement/identity/v1/certcache/",
        "/keymanagement/identity/v1/certcache/-1",
        "/keymanagement/identity/v1/certcache/1x",
        "/keymanagement/identity/v1/certcache/18446744073709551616",
        "/keymanagement/identity/v1/certcache/1/2",
    };
    for (size_t i = 0; i < sizeof bad_cache / sizeof bad_cache[0]; i++)
        path_refused(bad_cache[i], MS_ERR_BAD_ENCODING, "cache number");
}

static void test_path_build_refusals(void)
{
    char out[MS_ANNEXD_PATH_MAX], detail[200] = "";
    ms_annexd_path p = {.resource = MS_ANNEXD_KEYPROV, .has_time = true, .time = 1};
    CHECK_ERR(ms_annexd_path_build(&p, out, sizeof out, detail, sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "time only after a user") != NULL);
    p.has_user = true;
    CHECK_ERR(ms_annexd_path_build(&p, out, sizeof out, detail, sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "user URI is empty") != NULL);
    snprintf(p.user, sizeof p.user, "sip:a b@example.org");
    CHECK_ERR(ms_annexd_path_build(&p, out, sizeof out, detail, sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "space or control") != NULL);
    snprintf(p.user, sizeof p.user, "sip:bob@example.org");
    p.time = (uint64_t)UINT32_MAX + 1;
    CHECK_ERR(ms_annexd_path_build(&p, out, sizeof out, detail, sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "NTP era 0") != NULL);
    p.time = 1;
    CHECK_ERR(ms_annexd_path_build(&p, out, 20, detail, sizeof detail), MS_ERR_BUFFER_TOO_SMALL);
    CHECK(out[0] == '\0');
    p.resource = (ms_annexd_resource)9;
    CHECK_ERR(ms_annexd_path_build(&p, out, sizeof out, detail, sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "unknown resource") != NULL);
}

static void test_base_url(void)
{
    char base[128], detail[200] = "";
    static const char *const same[] = {
        "https://kms.example.org:8443",
        "https://kms.example.org:8443/",
        "https://kms.example.org:8443/keymanagement/identity/v1",
        "https://kms.example.org:8443/keymanagement/identity/v1//",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        CHECK_ERR(ms_annexd_base_url(same[i], base, sizeof base, detail, sizeof detail), MS_OK);
        CHECK(strcmp(base, "https://kms.example.org:8443") == 0);
    }
    CHECK_ERR(ms_annexd_base_url("HTTPS://h/prefix/", base, sizeof base, detail, sizeof detail),
              MS_OK);
    CHECK(strcmp(base, "HTTPS://h/prefix") == 0);
    CHECK_ERR(ms_annexd_base_url("http://h", base, sizeof base, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "only https://") != NULL);
    CHECK_ERR(ms_annexd_base_url("https://", base, sizeof base, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "malformed") != NULL);
    CHECK_ERR(ms_annexd_base_url("https://h ost", base, sizeof base, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "spaces or control") != NULL);
    char longurl[200];
    snprintf(longurl, sizeof longurl, "https://%0100d", 0);
    CHECK_ERR(ms_annexd_base_url(longurl, base, sizeof base, detail, sizeof detail), MS_ERR_ARG);
    CHECK(strstr(detail, "malformed") != NULL);
}

static void test_names_path(void)
{
    const char *path = "/keymanagement/identity/v1/init";
    CHECK(ms_annexd_url_names_path("https://h/keymanagement/identity/v1/init", path));
    CHECK(ms_annexd_url_names_path("https://h/keymanagement/identity/v1/init?x=1", path));
    CHECK(!ms_annexd_url_names_path("https://h/keymanagement/identity/v1/keyprov", path));
    CHECK(!ms_annexd_url_names_path("https://h/keymanagement/identity/v1/init/", path));
    CHECK(!ms_annexd_url_names_path("init", path));
    CHECK(!ms_annexd_url_names_path(NULL, path));
}

static void test_index_round_trip(void)
{
    ms_annexd_index_entry e = {.device = "alice-phone.1:x@y_z", .user = "sip:alice@example.org",
                               .file = "alice-phone-1510.xml", .period = 1510};
    for (int i = 0; i < 32; i++) {
        e.package_sha256[i] = (uint8_t)(i * 7 + 1);
        e.token_sha256[i] = (uint8_t)(0xF0 - i);
    }
    char line[MS_ANNEXD_INDEX_LINE_MAX + 1], detail[200] = "";
    size_t len = 0;
    CHECK_ERR(ms_annexd_index_line_write(&e, line, sizeof line, &len, detail, sizeof detail),
              MS_OK);
    CHECK(len == strlen(line) && len > 0 && line[len - 1] == '\n');
    static const char want[] = "alice-phone.1:x@y_z sip:alice@example.org "
                               "alice-phone-1510.xml 01080f161d242b32";
    CHECK(strncmp(line, want, sizeof want - 1) == 0);
    CHECK(strstr(line, " 1510 f0efeeedecebeae9") != NULL);
    line[len - 1] = '\0';
    ms_annexd_index_entry back;
    CHECK_ERR(ms_annexd_index_line_parse(line, &back, detail, sizeof detail), MS_OK);
    CHECK(back.device != NULL && strcmp(back.device, e.device) == 0);
    CHECK(back.user != NULL && strcmp(back.user, e.user) == 0);
    CHECK(back.file != NULL && strcmp(back.file, e.file) == 0);
    CHECK(back.period == e.period);
    CHECK_MEM(back.package_sha256, e.package_sha256, 32);
    CHECK_MEM(back.token_sha256, e.token_sha256, 32);

    /* the longest fields still fit MS_ANNEXD_INDEX_LINE_MAX */
    char dev[MS_ANNEXD_DEVICE_ID_MAX + 1], user[MS_ANNEXD_URI_MAX + 1],
        file[MS_ANNEXD_FILE_MAX + 1];
    memset(dev, 'd', sizeof dev - 1);
    dev[sizeof dev - 1] = '\0';
    memset(user, 'u', sizeof user - 1);
    user[sizeof user - 1] = '\0';
    memset(file, 'f', sizeof file - 1);
    memcpy(file + sizeof file - 5, ".xml", 5);
    ms_annexd_index_entry big = {.device = dev, .user = user, .file = file,
                                 .period = UINT64_MAX};
    CHECK_ERR(ms_annexd_index_line_write(&big, line, sizeof line, &len, detail, sizeof detail),
              MS_OK);
    line[len - 1] = '\0';
    CHECK_ERR(ms_annexd_index_line_parse(line, &back, detail, sizeof detail), MS_OK);
    CHECK(back.period == UINT64_MAX && back.user != NULL && strcmp(back.user, user) == 0);
    CHECK_ERR(ms_annexd_index_line_write(&big, line, 100, &len, detail, sizeof detail),
              MS_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 0 && line[0] == '\0');
}

#define H64 "0000000000000000000000000000000000000000000000000000000000000000"

/* A line refused with a detail containing `why`; `device` is what the parser names. */
static void line_refused(const char *text, const char *why, const char *device)
{
    char line[600], detail[200] = "";
    snprintf(line, sizeof line, "%s", text);
    ms_annexd_index_entry e;
    CHECK_ERR(ms_annexd_index_line_parse(line, &e, detail, sizeof detail), MS_ERR_BAD_ENCODING);
    if (strstr(detail, why) == NULL) {
        fprintf(stderr, "line \"%s\": detail \"%s\" lacks \"%s\"\n", text, detail, why);
        CHECK(0);
    }
    CHECK(device != NULL ? e.device != NULL && strcmp(e.device, device) == 0 : e.device == NULL);
    CHECK(e.user == NULL && e.file == NULL && e.period == 0);
}

static void test_index_refusals(void)
{
    line_refused("", "comment or blank", NULL);
    line_refused("# device user file", "comment or blank", NULL);
    line_refused("d tel:+44\xc3\xa9 f.xml " H64 " 1 " H64, "not printable ASCII", NULL);
    line_refused("d tel:+44\t f.xml " H64 " 1 " H64, "not printable ASCII", NULL);
    line_refused("d u f.xml " H64 " 1", "fewer than 6 fields", NULL);
    line_refused("d u f.xml " H64 " 1 " H64 " x", "more than 6 fields", NULL);
    line_refused("d  u f.xml " H64 " 1 " H64, "more than 6 fields", NULL);
    line_refused("d  f.xml " H64 " 1 " H64, "bad user URI", "d");
    line_refused("d/1 u f.xml " H64 " 1 " H64, "bad device ID", NULL);
    line_refused(" u f.xml " H64 " 1 " H64, "bad device ID", NULL);
    line_refused("d u ../f.xml " H64 " 1 " H64, "bad package file name", "d");
    line_refused("d u .f.xml " H64 " 1 " H64, "bad package file name", "d");
    line_refused("d u f.txt " H64 " 1 " H64, "bad package file name", "d");
    line_refused("d u f.xml " H64 "0 1 " H64, "bad package SHA-256", "d");
    line_refused("d u f.xml " "g" H64 " 1 " H64, "bad package SHA-256", "d");
    line_refused("d u f.xml " H64 " -1 " H64, "bad key period", "d");
    line_refused("d u f.xml " H64 " 18446744073709551616 " H64, "bad key period", "d");
    line_refused("d u f.xml " H64 " 1 " "x", "bad token SHA-256", "d");

    /* what cannot be written is refused too, naming the field */
    char out[MS_ANNEXD_INDEX_LINE_MAX + 1], detail[200] = "";
    ms_annexd_index_entry e = {.device = "d", .user = "sip:a b", .file = "f.xml"};
    CHECK_ERR(ms_annexd_index_line_write(&e, out, sizeof out, NULL, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "user URI") != NULL);
    e.user = "tel:+44\xc3\xa9";
    CHECK_ERR(ms_annexd_index_line_write(&e, out, sizeof out, NULL, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "user URI") != NULL);
    e.user = "u";
    e.device = "a device";
    CHECK_ERR(ms_annexd_index_line_write(&e, out, sizeof out, NULL, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "device ID") != NULL);
    e.device = "d";
    e.file = "sub/f.xml";
    CHECK_ERR(ms_annexd_index_line_write(&e, out, sizeof out, NULL, detail, sizeof detail),
              MS_ERR_ARG);
    CHECK(strstr(detail, "package file name") != NULL);
}

int main(void)
{
    test_path_round_trips();
    test_path_parse_known();
    test_path_refusals();
    test_path_build_refusals();
    test_base_url();
    test_names_path();
    test_index_round_trip();
    test_index_refusals();
    return ms_test_finish();
}
