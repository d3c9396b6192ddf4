#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int ms_test_passed;
int ms_test_failed;

void ms_test_check_mem(const char *file, int line, const char *what, const void *got,
                       const void *want, size_t len)
{
    if (memcmp(got, want, len) == 0) {
        ms_test_passed++;
        return;
    }
    ms_test_failed++;
    fprintf(stderr, "%s:%d: %s differs\n  got  ", file, line, what);
    for (size_t i = 0; i < len; i++)
        fprintf(stderr, "%02X", ((const uint8_t *)got)[i]);
    fprintf(stderr, "\n  want ");
    for (size_t i = 0; i < len; i++)
        fprintf(stderr, "%02X", ((const uint8_t *)want)[i]);
    fprintf(stderr, "\n");
}

int ms_test_finish(void)
{
    printf("%d passed, %d failed\n", ms_test_passed, ms_test_failed);
    return (ms_test_failed == 0 && ms_test_passed > 0) ? 0 : 1;
}

void ms_test_check_fp_backend(void)
{
    const char *want = getenv("MS_TEST_FP_BACKEND");
    if (want == NULL)
        return;
    printf("field backend %s (want %s)\n", ms_fp_backend_name(), want);
    CHECK(strcmp(ms_fp_backend_name(), want) == 0);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t ms_test_hex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap) {
        fprintf(stderr, "ms_test_hex: bad hex or too long (%zu digits)\n", n);
        exit(2);
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fprintf(stderr, "ms_test_hex: bad digit in %s\n", hex);
            exit(2);
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

size_t ms_test_vector(const char *file, const char *name, uint8_t *out, size_t cap)
{
    const char *dir = getenv("MS_TEST_VECTORS");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/vectors", file);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open vector file %s\n", path);
        exit(2);
    }
    char line[4096];
    size_t nlen = strlen(name);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, name, nlen) == 0 && strncmp(line + nlen, " = ", 3) == 0) {
            fclose(f);
            line[strcspn(line, "\r\n")] = 0;
            return ms_test_hex(out, cap, line + nlen + 3);
        }
    }
    fclose(f);
    fprintf(stderr, "vector %s not found in %s\n", name, path);
    exit(2);
}

/* xoshiro256** seeded through splitmix64: fast, reproducible, not for keys. */
static uint64_t rng_state[4];

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ms_test_seed(void)
{
    const char *env = getenv("MS_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)clock();
    printf("test seed: MS_TEST_SEED=%llu\n", (unsigned long long)seed);
    for (int i = 0; i < 4; i++)
        rng_state[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t ms_test_random_u64(void)
{
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void ms_test_random(uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)ms_test_random_u64();
}

static ms_err test_rng_fill(void *ctx, uint8_t *out, size_t len)
{
    (void)ctx;
    ms_test_random(out, len);
    return MS_OK;
}

const ms_rng ms_test_rng = {test_rng_fill, NULL};

static ms_err fixed_rng_fill(void *ctx, uint8_t *out, size_t len)
{
    ms_fixed_rng *st = ctx;
    if (st->len - st->pos < len)
        return MS_ERR_RNG;
    memcpy(out, st->data + st->pos, len);
    st->pos += len;
    return MS_OK;
}

ms_rng ms_fixed_rng_make(ms_fixed_rng *state, const uint8_t *data, size_t len)
{
    state->data = data;
    state->len = len;
    state->pos = 0;
    return (ms_rng){fixed_rng_fill, state};
}

void ms_test_progress_cb(void *ctx, size_t done, size_t total)
{
    ms_test_progress *p = ctx;
    if (p->calls == 0) {
        p->first_done = done;
        p->first_total = total;
    } else if (done < p->last_done) {
        p->fell = 1;
    }
    if (done > total)
        p->overshot = 1;
    p->last_done = done;
    p->last_total = total;
    p->calls++;
}

int ms_test_free_ports(uint16_t *ports, unsigned n)
{
    /* below the ephemeral range (as tests/e2e/threshold_lib.sh): a probed port that is
     * bound later cannot meanwhile become a connection's local end */
    unsigned low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%u", &low) != 1)
            low = 32768;
        fclose(f);
    }
    if (low <= 10001 || low > 65535)
        low = 32768;
    static int seeded;
    if (!seeded) { /* two test processes must not draw the same sequence */
        srand((unsigned)time(NULL) ^ (unsigned)getpid() << 8);
        seeded = 1;
    }
    int fds[64], ok = n <= 64;
    unsigned opened = 0;
    for (unsigned tries = 0; ok && opened < n && tries < 10000; tries++) {
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)(10000 + (unsigned)rand() % (low - 10000)));
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            ok = 0;
            break;
        }
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            continue;
        }
        fds[opened] = fd;
        ports[opened++] = ntohs(a.sin_port);
    }
    ok = ok && opened == n;
    for (unsigned i = 0; i < opened; i++)
        close(fds[i]);
    return ok;
}
