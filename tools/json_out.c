/*
 * The --json writer (json_out.h). Strings are written as UTF-8 with the characters JSON
 * requires escaped; other octets pass through (the values are URIs, paths and names).
 */
#include "json_out.h"

#include <string.h>

static void text(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The separator and, in an object, the member's name. */
static void member(struct cli_json *j, const char *key)
{
    if (j->comma[j->depth])
        fputc(',', j->f);
    j->comma[j->depth] = true;
    if (key != NULL) {
        text(j->f, key, strlen(key));
        fputc(':', j->f);
    }
}

static void open_level(struct cli_json *j, const char *key, char open, char close)
{
    member(j, key);
    fputc(open, j->f);
    if (j->depth + 1 < CLI_JSON_DEPTH) {
        j->depth++;
        j->comma[j->depth] = false;
        j->close[j->depth] = close;
    }
}

void cli_json_begin(struct cli_json *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->comma[0] = false;
    fputc('{', f);
    j->depth = 1;
    j->comma[1] = false;
    j->close[1] = '}';
}

void cli_json_close(struct cli_json *j)
{
    if (j->depth > 0)
        fputc(j->close[j->depth--], j->f);
}

void cli_json_end(struct cli_json *j)
{
    while (j->depth > 0)
        cli_json_close(j);
    fputc('\n', j->f);
}

void cli_json_strn(struct cli_json *j, const char *key, const char *val, size_t len)
{
    member(j, key);
    text(j->f, val, len);
}

void cli_json_str(struct cli_json *j, const char *key, const char *val)
{
    cli_json_strn(j, key, val, strlen(val));
}

void cli_json_u64(struct cli_json *j, const char *key, uint64_t val)
{
    member(j, key);
    fprintf(j->f, "%llu", (unsigned long long)val);
}

void cli_json_bool(struct cli_json *j, const char *key, bool val)
{
    member(j, key);
    fputs(val ? "true" : "false", j->f);
}

void cli_json_object(struct cli_json *j, const char *key)
{
    open_level(j, key, '{', '}');
}

void cli_json_array(struct cli_json *j, const char *key)
{
    open_level(j, key, '[', ']');
}
