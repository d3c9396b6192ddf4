/*
 * User URI syntax (src/kms/uri.c): what `kms user add` accepts (RFC 3986 URIs, non-ASCII
 * percent-encoded) and, for each refusal, that the detail names the fault and where.
 * Also that ms_kms_user_add itself refuses such a URI on a hashed-UID KMS, which would
 * otherwise take any octets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kms/roles.h"
#include "mikeysakke/kms.h"
#include "mikeysakke/mikey.h"
#include "kms_fixture.h"
#include "testutil.h"

#define T0 (1759406400ull + 2208988800ull)

static void refused(const char *uri, const char *want_in_detail, int line)
{
    char detail[200] = "";
    ms_err e = ms_kms_uri_check(uri, detail, sizeof detail);
    if (e != MS_ERR_IDENTITY || strstr(detail, want_in_detail) == NULL) {
        fprintf(stderr, "line %d: \"%s\": %s \"%s\" (want \"%s\")\n", line, uri,
                ms_errname(e), detail, want_in_detail);
        ms_test_failed++;
    } else {
        ms_test_passed++;
    }
}
#define REFUSED(uri, why) refused((uri), (why), __LINE__)

static void test_syntax(void)
{
    static const char *const good[] = {
        "tel:+447700900123",
        "sip:alice@example.org",
        "sip:alice%C3%A9@example.org;transport=tls",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "https://[2001:db8::1]:8443/users/alice?x=1#frag",
        "mailto:a.b-c_d~e@example.org",
        "x+y.z-1:opaque!$&'()*,=",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_ERR(ms_kms_uri_check(good[i], NULL, 0), MS_OK);

    REFUSED("", "empty");
    REFUSED(NULL, "empty");
    REFUSED("alice@example.org", "no scheme");
    REFUSED("1tel:+44", "begin with a scheme");
    REFUSED(":x", "begin with a scheme");
    REFUSED("tel:", "nothing after its scheme");
    REFUSED("sip:alic\xc3\xa9@example.org", "non-ASCII octet 0xC3 at position 9");
    REFUSED("sip:alic\xc3\xa9@example.org", "%C3");
    REFUSED("sip:alice @example.org", "space at position 10");
    REFUSED("sip:alice\t@example.org", "control character at position 10");
    REFUSED("sip:alice%G1@example.org", "'%' at position 10");
    REFUSED("sip:alice%4", "'%' at position 10");
    REFUSED("sip:<alice>@example.org", "'<' at position 5");
    REFUSED("sip:alice\"@example.org", "'\"' at position 10");
    REFUSED("sip:a{b}", "'{' at position 6");
    REFUSED("sip:a\\b", "'\\' at position 6");
    REFUSED("sip:a#b#c", "second '#' at position 8");
    REFUSED("sip:alice[1]@example.org", "'[' at position 10");
    char longest[300];
    memset(longest, 'a', sizeof longest - 1);
    memcpy(longest, "sip:", 4);
    longest[sizeof longest - 1] = '\0';
    REFUSED(longest, "299 octets long");
}

static void test_user_add(const char *dir)
{
    static const uint8_t pass[] = "correct horse battery staple";
    ms_kms_config cfg = {.kms_uri = "kms.example.org",
                         .id_scheme = MS_MIKEY_ID_SCHEME_HASHED_UID,
                         .period_len = 86400,
                         .first_time = T0,
                         .n_auditors = 1};
    ms_test_roles roles = {.made = false};
    ms_test_kms_create(dir, &cfg, &roles, pass, sizeof pass - 1, NULL);
    ms_wipe(&roles, sizeof roles);
    ms_kms *k = NULL;
    CHECK_ERR(ms_kms_open(&k, dir, NULL, NULL, 0), MS_OK);
    if (k == NULL)
        return;
    CHECK_ERR(ms_kms_unseal_passphrase(k, pass, sizeof pass - 1), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, "sip:alice@example.org"), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, "sip:alice%C3%A9@example.org"), MS_OK);
    CHECK_ERR(ms_kms_user_add(k, "sip:alic\xc3\xa9@example.org"), MS_ERR_IDENTITY);
    CHECK_ERR(ms_kms_user_add(k, "sip:<alice>@example.org"), MS_ERR_IDENTITY);
    CHECK_ERR(ms_kms_user_add(k, "alice@example.org"), MS_ERR_IDENTITY);
    ms_kms_close(k);
}

int main(void)
{
    char root[64];
    if (!ms_test_tmpdir(root, sizeof root, "uri"))
        return 1;
    test_syntax();
    char dir[600];
    snprintf(dir, sizeof dir, "%s/kms", root);
    test_user_add(dir);
    ms_test_rmtree(root);
    return ms_test_finish();
}
