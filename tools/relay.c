/*
 * `mikeysakke relay ...`: runs the key-less conference relay, mikeysakke-relay (this
 * binary never takes the relay's role itself, so the relay's process holds no key code).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "call_cli.h"

#define RELAY_PROGRAM "mikeysakke-relay"

int cli_relay_exec(int argc, char **argv)
{
    if (argc < 1)
        return (int)MS_ERR_USAGE;
    /* Beside this binary first (a build tree, an install), then PATH. */
    char self[PATH_MAX], prog[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = 0;
            snprintf(prog, sizeof prog, "%s/" RELAY_PROGRAM, self);
            if (access(prog, X_OK) == 0) {
                argv[0] = prog;
                execv(prog, argv);
            }
        }
    }
    argv[0] = (char *)RELAY_PROGRAM;
    execvp(RELAY_PROGRAM, argv);
    return (int)cli_fail(MS_ERR_USAGE, "cannot run %s: %s (is it installed beside "
                         "mikeysakke?)", RELAY_PROGRAM, strerror(errno));
}
