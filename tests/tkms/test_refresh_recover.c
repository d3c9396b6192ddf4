/*
 * The commit of a share refresh at one server (src/tkms/node.c, ms_tkms_node_recover):
 * with the mark refresh.commit the new pair is renamed into place (whichever renames are
 * still to do), without it a half-made new pair is removed and the old pair stands; a
 * directory with neither is left alone. ms_tkms_public_epoch reads the epoch line.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tkms/node.h"

static char root[] = "/tmp/ms_tkms_recover_XXXXXX";

static void put(const char *name, const char *text)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", root, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

/* The content of a file ("" if absent: then *exists is 0). */
static const char *get(const char *name, int *exists)
{
    static char buf[256];
    char path[300];
    snprintf(path, sizeof path, "%s/%s", root, name);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    *exists = f != NULL;
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

static void expect(const char *name, const char *want)
{
    int ex = 0;
    const char *got = get(name, &ex);
    if (want == NULL) {
        CHECK(!ex);
    } else {
        CHECK(ex);
        CHECK(strcmp(got, want) == 0);
    }
}

int main(void)
{
    CHECK(mkdtemp(root) != NULL);
    char detail[300] = "";
    int rolled = 9;

    /* nothing pending: nothing changes */
    put("secrets.sealed", "old secrets");
    put("public.txt", "old public");
    CHECK_ERR(ms_tkms_node_recover(root, &rolled, detail, sizeof detail), MS_OK);
    CHECK(rolled == 0);
    expect("secrets.sealed", "old secrets");
    expect("public.txt", "old public");

    /* a crash before the mark: the new files go, the old pair stands */
    put("secrets.sealed.new", "new secrets");
    put("public.txt.new", "new public");
    CHECK_ERR(ms_tkms_node_recover(root, &rolled, detail, sizeof detail), MS_OK);
    CHECK(rolled == -1);
    expect("secrets.sealed", "old secrets");
    expect("public.txt", "old public");
    expect("secrets.sealed.new", NULL);
    expect("public.txt.new", NULL);
    put("public.txt.new", "new public"); /* only one of the two written */
    CHECK_ERR(ms_tkms_node_recover(root, &rolled, detail, sizeof detail), MS_OK);
    CHECK(rolled == -1);
    expect("public.txt.new", NULL);
    expect("public.txt", "old public");

    /* a crash after the mark, before either rename: both are done */
    put("secrets.sealed.new", "new secrets");
    put("public.txt.new", "new public");
    put("refresh.commit", "1\n");
    CHECK_ERR(ms_tkms_node_recover(root, &rolled, detail, sizeof detail), MS_OK);
    CHECK(rolled == 1);
    expect("secrets.sealed", "new secrets");
    expect("public.txt", "new public");
    expect("secrets.sealed.new", NULL);
    expect("public.txt.new", NULL);
    expect("refresh.commit", NULL);

    /* after the first rename: the second is done, the first not again */
    put("public.txt.new", "newer public");
    put("refresh.commit", "2\n");
    CHECK_ERR(ms_tkms_node_recover(root, NULL, detail, sizeof detail), MS_OK);
    expect("secrets.sealed", "new secrets");
    expect("public.txt", "newer public");
    expect("refresh.commit", NULL);
    CHECK_ERR(ms_tkms_node_recover(NULL, NULL, detail, sizeof detail), MS_ERR_ARG);

    /* a refresh running (another process holds refresh.lock): its new files are not a
     * crash's leftovers, so nothing is touched and the caller is told why */
    put("secrets.sealed.new", "running secrets");
    char lock[300];
    snprintf(lock, sizeof lock, "%s/refresh.lock", root);
    pid_t child = fork();
    if (child == 0) {
        int fd = open(lock, O_RDWR | O_CREAT, 0600);
        _exit(fd >= 0 && flock(fd, LOCK_EX) == 0 && sleep(3) == 0 ? 0 : 1);
    }
    CHECK(child > 0);
    for (int k = 0; k < 100; k++) { /* until the child holds it */
        int fd = open(lock, O_RDWR);
        int held = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0;
        if (fd >= 0)
            close(fd);
        if (held)
            break;
        usleep(20000);
    }
    CHECK_ERR(ms_tkms_node_recover(root, NULL, detail, sizeof detail), MS_ERR_EXISTS);
    CHECK(strstr(detail, "refresh is running") != NULL);
    expect("secrets.sealed.new", "running secrets");
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    CHECK_ERR(ms_tkms_node_recover(root, NULL, detail, sizeof detail), MS_OK);
    expect("secrets.sealed.new", NULL);

    /* the epoch line */
    unsigned epoch = 99;
    char path[300];
    snprintf(path, sizeof path, "%s/public.txt", root);
    CHECK_ERR(ms_tkms_public_epoch(path, &epoch), MS_OK);
    CHECK(epoch == 0);
    put("public.txt", "mikeysakke-tkms-public 1\nn 3\nt 1\nepoch 7\n");
    CHECK_ERR(ms_tkms_public_epoch(path, &epoch), MS_OK);
    CHECK(epoch == 7);
    snprintf(path, sizeof path, "%s/absent.txt", root);
    CHECK_ERR(ms_tkms_public_epoch(path, &epoch), MS_ERR_IO);

    const char *names[] = {"secrets.sealed", "public.txt"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        unlink(path);
    }
    rmdir(root);
    return ms_test_finish();
}
