/* Every error code has a name, a message, and a line in the user's guide. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

int main(void)
{
    const char *dir = getenv("MS_TEST_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/../../docs/cli.md", dir ? dir : "tests/vectors");
    const char *guide = read_file(path);
    CHECK(guide != NULL);

    for (int e = 0; e < MS_ERR__LAST; e++) {
        const char *name = ms_errname((ms_err)e);
        const char *text = ms_strerror((ms_err)e);
        CHECK(strncmp(name, "MS_", 3) == 0);
        CHECK(strcmp(text, "unknown error") != 0);
        if (guide != NULL && strstr(guide, name) == NULL) {
            fprintf(stderr, "docs/cli.md does not document %s\n", name);
            CHECK(!"every code documented");
        }
        for (int f = 0; f < e; f++)
            CHECK(strcmp(name, ms_errname((ms_err)f)) != 0);
    }
    CHECK(strcmp(ms_strerror(MS_ERR__LAST), "unknown error") == 0);
    CHECK(strcmp(ms_strerror((ms_err)-1), "unknown error") == 0);
    CHECK(strcmp(ms_errname(MS_ERR__LAST), "MS_ERR_UNKNOWN") == 0);
    return ms_test_finish();
}
