/*
 * User URI syntax (RFC 3986 section 3): what `kms user add` accepts. The identity a
 * URI becomes is hashed or embedded octet for octet, and the URI travels in index
 * lines, URL paths and XML, so only the ASCII the RFC allows is taken: anything else
 * must be percent-encoded, and the error names what is wrong and where.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kms/store.h"
#include "mikeysakke/kms.h"
#include "util/detail.h"
#include "util/hex.h"

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* unreserved / sub-delims / ":" / "@" / "/" / "?" (pchar, path and query characters) */
static bool is_uri_char(int c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("-._~!$&'()*+,;=:@/?", c) != NULL);
}

ms_err ms_kms_uri_check(const char *uri, char *detail, size_t detail_cap)
{
    if (uri == NULL || uri[0] == '\0')
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap, "the user URI is empty");
    size_t n = strlen(uri);
    if (n > MS_STORE_URI_MAX)
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                              "the user URI is %zu octets long (at most %d)", n,
                              MS_STORE_URI_MAX);
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    size_t i = 0;
    if (!is_alpha((unsigned char)uri[0]))
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                              "the user URI must begin with a scheme such as tel: or sip: "
                              "(a letter first)");
    while (is_alpha((unsigned char)uri[i]) || is_digit((unsigned char)uri[i]) ||
           uri[i] == '+' || uri[i] == '-' || uri[i] == '.')
        i++;
    if (uri[i] != ':')
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                              "the user URI has no scheme (such as tel: or sip:) before "
                              "position %zu",
                              i + 1);
    i++;
    if (uri[i] == '\0')
        return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                              "the user URI has nothing after its scheme");
    /* An authority ("//host") may hold an IP literal in brackets; nothing else may. */
    size_t auth_end = i;
    if (uri[i] == '/' && uri[i + 1] == '/') {
        auth_end = i + 2;
        while (uri[auth_end] != '\0' && uri[auth_end] != '/' && uri[auth_end] != '?' &&
               uri[auth_end] != '#')
            auth_end++;
    }
    bool fragment = false;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)uri[i];
        size_t pos = i + 1;
        if (c >= 0x80)
            return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                                  "the user URI has a non-ASCII octet 0x%02X at position %zu: "
                                  "percent-encode it (%%%02X)",
                                  c, pos, c);
        if (c <= 0x20 || c == 0x7f)
            return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                                  "the user URI has a %s at position %zu (percent-encode it)",
                                  c == ' ' ? "space" : "control character", pos);
        if (c == '%') {
            if (ms_hex_value((unsigned char)uri[i + 1]) < 0 ||
                ms_hex_value((unsigned char)uri[i + 2]) < 0)
                return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                                      "the user URI has a '%%' at position %zu not followed "
                                      "by two hex digits",
                                      pos);
            i += 2;
            continue;
        }
        if (c == '#') {
            if (fragment)
                return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                                      "the user URI has a second '#' at position %zu", pos);
            fragment = true;
            continue;
        }
        if ((c == '[' || c == ']') && i < auth_end)
            continue;
        if (!is_uri_char(c))
            return ms_detail_fail(MS_ERR_IDENTITY, detail, detail_cap,
                                  "the user URI has '%c' at position %zu, which RFC 3986 "
                                  "does not allow there (percent-encode it)",
                                  c, pos);
    }
    return MS_OK;
}
