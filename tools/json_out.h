/*
 * A small JSON writer for the commands' --json output (tools/json_out.c): objects and
 * arrays nested a few levels deep, strings escaped, numbers as unsigned integers.
 */
#ifndef MIKEYSAKKE_TOOLS_JSON_OUT_H
#define MIKEYSAKKE_TOOLS_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_JSON_DEPTH 8

struct cli_json {
    FILE *f;
    int depth;
    bool comma[CLI_JSON_DEPTH]; /* a value was already written at this level */
    char close[CLI_JSON_DEPTH]; /* '}' or ']' */
};

/* Starts the top-level object on f. */
void cli_json_begin(struct cli_json *j, FILE *f);
/* Ends every open level and the line. */
void cli_json_end(struct cli_json *j);

/* Members: key is NULL inside an array. */
void cli_json_str(struct cli_json *j, const char *key, const char *val);
void cli_json_strn(struct cli_json *j, const char *key, const char *val, size_t len);
void cli_json_u64(struct cli_json *j, const char *key, uint64_t val);
void cli_json_bool(struct cli_json *j, const char *key, bool val);
void cli_json_object(struct cli_json *j, const char *key);
void cli_json_array(struct cli_json *j, const char *key);
/* Closes the innermost object or array. */
void cli_json_close(struct cli_json *j);

#endif
