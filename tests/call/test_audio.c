/*
 * WAV read and write (round trip, chunks to skip, every rejection), Opus with the call's
 * fixed settings (the same input gives the same packets, and decoding them again gives
 * the same samples, bit for bit), and the sound card failing cleanly without a device.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "call/audio.h"
#include "testutil.h"

static char dir[] = "/tmp/ms_test_audio_XXXXXX";

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* Builds a WAV file by hand: RIFF header, optional LIST chunk (odd size, padded), fmt,
 * another chunk, data. */
typedef struct wav_spec {
    uint16_t format, channels, bits;
    uint32_t rate;
    bool extensible;
    bool junk_chunks;
    bool data_first;
    uint32_t data_claim; /* 0: the real size */
    size_t n_frames;
} wav_spec;

static size_t build_wav(uint8_t *buf, const wav_spec *s, const int16_t *samples)
{
    size_t pos = 12;
    memcpy(buf, "RIFF", 4);
    memcpy(buf + 8, "WAVE", 4);
    uint8_t fmt[40] = {0};
    size_t fmt_len = s->extensible ? 40 : 16;
    put16(fmt, s->extensible ? 0xfffe : s->format);
    put16(fmt + 2, s->channels);
    put32(fmt + 4, s->rate);
    put32(fmt + 8, s->rate * s->channels * (s->bits / 8u));
    put16(fmt + 12, (unsigned)(s->channels * (s->bits / 8u)));
    put16(fmt + 14, s->bits);
    if (s->extensible) {
        put16(fmt + 16, 22);
        put16(fmt + 18, s->bits);
        put16(fmt + 24, s->format); /* subformat GUID: format, then the fixed tail */
        static const uint8_t tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                         0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};
        memcpy(fmt + 26, tail, sizeof tail);
    }
    size_t data_len = s->n_frames * s->channels * (s->bits / 8u);
    if (s->junk_chunks) {
        memcpy(buf + pos, "LIST", 4);
        put32(buf + pos + 4, 5);
        memcpy(buf + pos + 8, "INFOx\0", 6); /* 5 octets + 1 pad */
        pos += 14;
    }
    for (int part = 0; part < 2; part++) {
        bool write_fmt = (part == 0) != s->data_first;
        if (write_fmt) {
            memcpy(buf + pos, "fmt ", 4);
            put32(buf + pos + 4, (uint32_t)fmt_len);
            memcpy(buf + pos + 8, fmt, fmt_len);
            pos += 8 + fmt_len;
            if (s->junk_chunks) {
                memcpy(buf + pos, "fact", 4);
                put32(buf + pos + 4, 4);
                put32(buf + pos + 8, (uint32_t)s->n_frames);
                pos += 12;
            }
        } else {
            memcpy(buf + pos, "data", 4);
            put32(buf + pos + 4, s->data_claim ? s->data_claim : (uint32_t)data_len);
            pos += 8;
            if (s->bits == 16) {
                for (size_t i = 0; i < s->n_frames * s->channels; i++)
                    put16(buf + pos + 2 * i, (uint16_t)samples[i]);
            } else {
                memset(buf + pos, 0x80, data_len);
            }
            pos += data_len;
        }
    }
    put32(buf + 4, (uint32_t)(pos - 8));
    return pos;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK(fwrite(buf, 1, len, f) == len);
    fclose(f);
}

/* A deterministic test signal (no libm): two triangle waves and a little pseudo-noise. */
static int triangle(size_t i, size_t period, int amplitude)
{
    long phase = (long)(i % period), half = (long)period / 2;
    long v = phase < half ? phase : (long)period - phase; /* 0 .. half .. 0 */
    return (int)((2 * v - half) * amplitude / half);
}

static void make_signal(int16_t *out, size_t n_frames, uint16_t channels)
{
    uint32_t lcg = 12345;
    for (size_t i = 0; i < n_frames; i++) {
        for (uint16_t c = 0; c < channels; c++) {
            lcg = lcg * 1103515245u + 12345u;
            int v = triangle(i, 218 - 60 * c, 6000) + triangle(i, 35, 3000) +
                    (int)((lcg >> 16) & 0x3ff) - 512;
            out[i * channels + c] = (int16_t)v;
        }
    }
}

static void test_wav_round_trip(uint16_t channels)
{
    char path[512], tmp[520];
    path_in(path, sizeof path, channels == 1 ? "mono.wav" : "stereo.wav");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const size_t n = 48000 + 17;
    int16_t *pcm = malloc(n * channels * sizeof *pcm);
    CHECK(pcm != NULL);
    if (pcm == NULL)
        return;
    make_signal(pcm, n, channels);
    pcm[0] = -32768;
    pcm[1] = 32767;

    char detail[256] = "";
    ms_wav_writer *w = NULL;
    CHECK_ERR(ms_wav_create(&w, path, MS_AUDIO_RATE, channels, detail, sizeof detail), MS_OK);
    /* while writing only the temporary file exists */
    CHECK(access(tmp, F_OK) == 0 && access(path, F_OK) != 0);
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < 4000 ? n - done : 4000;
        CHECK_ERR(ms_wav_append(w, pcm + done * channels, k), MS_OK);
        done += k;
    }
    CHECK_ERR(ms_wav_close(w, true), MS_OK);
    CHECK(access(tmp, F_OK) != 0 && access(path, F_OK) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    ms_wav wav;
    CHECK_ERR(ms_wav_read(&wav, path, detail, sizeof detail), MS_OK);
    CHECK(wav.rate == MS_AUDIO_RATE && wav.channels == channels && wav.n_frames == n);
    if (wav.samples != NULL && wav.n_frames == n)
        CHECK(memcmp(wav.samples, pcm, n * channels * sizeof *pcm) == 0);
    ms_wav_free(&wav);
    CHECK(wav.samples == NULL);

    /* the file is a canonical 44-octet-header WAV */
    FILE *f = fopen(path, "rb");
    uint8_t h[44];
    CHECK(f != NULL && fread(h, 1, 44, f) == 44);
    if (f != NULL)
        fclose(f);
    CHECK(memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WAVEfmt ", 8) == 0 &&
          memcmp(h + 36, "data", 4) == 0);
    uint32_t data = (uint32_t)h[40] | (uint32_t)h[41] << 8 | (uint32_t)h[42] << 16 |
                    (uint32_t)h[43] << 24;
    CHECK(data == n * channels * 2);

    /* an abandoned writer leaves nothing, and does not touch an existing file */
    CHECK_ERR(ms_wav_create(&w, path, MS_AUDIO_RATE, channels, detail, sizeof detail), MS_OK);
    CHECK_ERR(ms_wav_append(w, pcm, 10), MS_OK);
    CHECK_ERR(ms_wav_close(w, false), MS_OK);
    CHECK(access(tmp, F_OK) != 0);
    CHECK_ERR(ms_wav_read(&wav, path, detail, sizeof detail), MS_OK);
    CHECK(wav.n_frames == n);
    ms_wav_free(&wav);
    free(pcm);
}

static void test_wav_chunks(void)
{
    char path[512], detail[256];
    path_in(path, sizeof path, "chunks.wav");
    static uint8_t buf[1 << 16];
    int16_t pcm[2 * 101];
    make_signal(pcm, 101, 2);
    for (int ext = 0; ext < 2; ext++) {
        wav_spec s = {.format = 1, .channels = 2, .bits = 16, .rate = 48000,
                      .extensible = ext == 1, .junk_chunks = true, .n_frames = 101};
        write_file(path, buf, build_wav(buf, &s, pcm));
        ms_wav wav;
        CHECK_ERR(ms_wav_read(&wav, path, detail, sizeof detail), MS_OK);
        CHECK(wav.channels == 2 && wav.n_frames == 101);
        if (wav.samples != NULL)
            CHECK(memcmp(wav.samples, pcm, sizeof pcm) == 0);
        ms_wav_free(&wav);
    }
}

/* Each bad file is refused with MS_ERR_MEDIA (or MS_ERR_IO) and a detail naming why. */
static void expect_reject(const char *name, const uint8_t *buf, size_t len, ms_err want,
                          const char *why)
{
    char path[512], detail[256] = "";
    path_in(path, sizeof path, name);
    write_file(path, buf, len);
    ms_wav wav;
    CHECK_ERR(ms_wav_read(&wav, path, detail, sizeof detail), want);
    CHECK(wav.samples == NULL);
    if (strstr(detail, why) == NULL) {
        fprintf(stderr, "%s: detail \"%s\" does not say \"%s\"\n", name, detail, why);
        CHECK(!"detail names the cause");
    } else {
        CHECK(1);
    }
}

static void test_wav_reject(void)
{
    static uint8_t buf[1 << 16];
    int16_t pcm[2 * 200];
    make_signal(pcm, 200, 2);
    wav_spec base = {.format = 1, .channels = 1, .bits = 16, .rate = 48000, .n_frames = 200};
    size_t len;

    wav_spec s = base;
    s.rate = 44100;
    expect_reject("44k.wav", buf, build_wav(buf, &s, pcm), MS_ERR_MEDIA,
                  "44100 Hz: calls take 48000 Hz");
    s = base;
    s.rate = 8000;
    s.extensible = true;
    expect_reject("8k.wav", buf, build_wav(buf, &s, pcm), MS_ERR_MEDIA, "8000 Hz");
    s = base;
    s.bits = 8;
    expect_reject("8bit.wav", buf, build_wav(buf, &s, pcm), MS_ERR_MEDIA, "not 16-bit PCM");
    s = base;
    s.format = 3; /* IEEE float */
    s.bits = 16;
    expect_reject("float.wav", buf, build_wav(buf, &s, pcm), MS_ERR_MEDIA, "not 16-bit PCM");
    s = base;
    s.channels = 3;
    s.n_frames = 100;
    expect_reject("3ch.wav", buf, build_wav(buf, &s, pcm), MS_ERR_MEDIA, "3 channels");
    s = base;
    s.data_first = true;
    expect_reject("datafirst.wav", buf, build_wav(buf, &s, pcm), MS_ERR_MEDIA,
                  "before the fmt");

    /* truncated: the file ends before the data the header promises */
    s = base;
    len = build_wav(buf, &s, pcm);
    expect_reject("cut.wav", buf, len - 100, MS_ERR_MEDIA, "truncated");
    s.data_claim = 399; /* not a whole number of frames */
    len = build_wav(buf, &s, pcm);
    expect_reject("odd.wav", buf, len, MS_ERR_MEDIA, "whole number");
    s = base;
    len = build_wav(buf, &s, pcm);
    expect_reject("nodata.wav", buf, 12 + 8 + 16, MS_ERR_MEDIA, "no data chunk");
    expect_reject("cutfmt.wav", buf, 12 + 8 + 10, MS_ERR_MEDIA, "fmt chunk");
    expect_reject("short.wav", buf, 6, MS_ERR_MEDIA, "not a RIFF/WAVE");
    memcpy(buf + 8, "AVI ", 4);
    expect_reject("avi.wav", buf, len, MS_ERR_MEDIA, "not a RIFF/WAVE");

    char path[512], detail[256] = "";
    path_in(path, sizeof path, "missing.wav");
    ms_wav wav;
    CHECK_ERR(ms_wav_read(&wav, path, detail, sizeof detail), MS_ERR_IO);
    CHECK(strstr(detail, "missing.wav") != NULL);

    ms_wav_writer *w = NULL;
    path_in(path, sizeof path, "no/such/dir/out.wav");
    CHECK_ERR(ms_wav_create(&w, path, 48000, 1, detail, sizeof detail), MS_ERR_IO);
    CHECK(w == NULL);
    CHECK_ERR(ms_wav_create(&w, path, 48000, 3, detail, sizeof detail), MS_ERR_ARG);
}

/* Encodes `frames` frames of the signal with a fresh encoder; packets back to back. */
static size_t encode_all(uint8_t *out, size_t *lens, const int16_t *pcm, size_t frames,
                         uint16_t channels)
{
    ms_opus_enc *e = NULL;
    CHECK_ERR(ms_opus_enc_new(&e, channels), MS_OK);
    size_t total = 0;
    for (size_t f = 0; f < frames && e != NULL; f++) {
        size_t n = 0;
        CHECK_ERR(ms_opus_encode(e, out + total, MS_AUDIO_MAX_PACKET, &n,
                                 pcm + f * MS_AUDIO_FRAME * channels),
                  MS_OK);
        lens[f] = n;
        total += n;
    }
    ms_opus_enc_free(e);
    return total;
}

static void decode_all(int16_t *pcm, const uint8_t *packets, const size_t *lens,
                       size_t frames, uint16_t channels)
{
    ms_opus_dec *d = NULL;
    CHECK_ERR(ms_opus_dec_new(&d, channels), MS_OK);
    size_t at = 0;
    for (size_t f = 0; f < frames && d != NULL; f++) {
        /* frame 7 is "lost": concealment is deterministic too */
        const uint8_t *p = f == 7 ? NULL : packets + at;
        CHECK_ERR(ms_opus_decode(d, pcm + f * MS_AUDIO_FRAME * channels, p, lens[f]), MS_OK);
        at += lens[f];
    }
    ms_opus_dec_free(d);
}

static void test_opus(uint16_t channels)
{
    enum { FRAMES = 50 }; /* one second */
    size_t n = (size_t)FRAMES * MS_AUDIO_FRAME * channels;
    int16_t *in = malloc(n * sizeof *in), *out1 = malloc(n * sizeof *in),
            *out2 = malloc(n * sizeof *in);
    uint8_t *pk1 = malloc(FRAMES * MS_AUDIO_MAX_PACKET), *pk2 = malloc(FRAMES * MS_AUDIO_MAX_PACKET);
    size_t len1[FRAMES], len2[FRAMES];
    CHECK(in && out1 && out2 && pk1 && pk2);
    if (!(in && out1 && out2 && pk1 && pk2))
        goto out;
    make_signal(in, (size_t)FRAMES * MS_AUDIO_FRAME, channels);

    size_t t1 = encode_all(pk1, len1, in, FRAMES, channels);
    size_t t2 = encode_all(pk2, len2, in, FRAMES, channels);
    CHECK(t1 == t2 && memcmp(len1, len2, sizeof len1) == 0 && memcmp(pk1, pk2, t1) == 0);
    /* about 32 kbit/s: 80 octets per 20 ms on average, never more than the bound */
    CHECK(t1 > FRAMES * 40 && t1 < FRAMES * 160);

    decode_all(out1, pk1, len1, FRAMES, channels);
    decode_all(out2, pk1, len1, FRAMES, channels);
    CHECK(memcmp(out1, out2, n * sizeof *out1) == 0);

    /* the codec did its job: past Opus's algorithmic delay (some hundreds of samples,
     * found here as the best lag) the decoded signal tracks the input, SNR above 10 dB
     * over the last half second */
    double best_sig = 0, best_err = -1;
    for (size_t lag = 0; lag < 1200; lag++) {
        double sig = 0, err = 0;
        for (size_t i = n / 2; i < n; i += channels) {
            double x = in[i - lag * channels], y = out1[i];
            sig += x * x;
            err += (x - y) * (x - y);
        }
        if (best_err < 0 || err < best_err) {
            best_err = err;
            best_sig = sig;
        }
    }
    CHECK(best_sig > 0 && best_err * 10 < best_sig);

    /* a different input gives different packets */
    in[1000] ^= 0x4000;
    size_t t3 = encode_all(pk2, len2, in, FRAMES, channels);
    CHECK(t3 != t1 || memcmp(pk1, pk2, t1) != 0);

out:
    free(in);
    free(out1);
    free(out2);
    free(pk1);
    free(pk2);
}

static void test_opus_errors(void)
{
    ms_opus_enc *e = NULL;
    ms_opus_dec *d = NULL;
    CHECK_ERR(ms_opus_enc_new(&e, 3), MS_ERR_ARG);
    CHECK_ERR(ms_opus_dec_new(&d, 0), MS_ERR_ARG);
    CHECK_ERR(ms_opus_dec_new(&d, 1), MS_OK);
    int16_t pcm[MS_AUDIO_FRAME];
    uint8_t pkt[64] = {0};
    /* TOC config 2: one 40 ms SILK frame, longer than a call's 20 ms */
    pkt[0] = 2 << 3;
    CHECK_ERR(ms_opus_decode(d, pcm, pkt, 20), MS_ERR_MEDIA);
    /* TOC config 0: 10 ms */
    pkt[0] = 0;
    CHECK_ERR(ms_opus_decode(d, pcm, pkt, 20), MS_ERR_MEDIA);
    CHECK_ERR(ms_opus_decode(d, pcm, pkt, 0), MS_ERR_ARG);
    CHECK_ERR(ms_opus_decode(d, pcm, pkt, MS_AUDIO_MAX_PACKET + 1), MS_ERR_MEDIA);
    CHECK_ERR(ms_opus_decode(d, pcm, NULL, 0), MS_OK); /* concealment */
    ms_opus_dec_free(d);
    ms_opus_enc_free(NULL);
    ms_opus_dec_free(NULL);
}

static void test_soundcard(void)
{
    ms_soundcard *s = (ms_soundcard *)1;
    char detail[256] = "";
    CHECK_ERR(ms_soundcard_open(&s, "ms_test_no_such_pcm", detail, sizeof detail),
              MS_ERR_MEDIA);
    CHECK(s == NULL);
    CHECK(strstr(detail, "ms_test_no_such_pcm") != NULL);
    CHECK(strstr(detail, "capture") != NULL);
    detail[0] = 0;
    CHECK_ERR(ms_soundcard_open(&s, "hw:97,0", detail, sizeof detail), MS_ERR_MEDIA);
    CHECK(strstr(detail, "hw:97,0") != NULL);
    CHECK_ERR(ms_soundcard_open(NULL, NULL, detail, sizeof detail), MS_ERR_ARG);
    ms_soundcard_close(NULL);
}

static void remove_dir(void)
{
    const char *names[] = {"mono.wav", "stereo.wav", "chunks.wav", "44k.wav", "8k.wav",
                           "8bit.wav", "float.wav", "3ch.wav", "datafirst.wav", "cut.wav",
                           "odd.wav", "nodata.wav", "cutfmt.wav", "short.wav", "avi.wav"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in(path, sizeof path, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_wav_round_trip(1);
    test_wav_round_trip(2);
    test_wav_chunks();
    test_wav_reject();
    test_opus(1);
    test_opus(2);
    test_opus_errors();
    test_soundcard();
    remove_dir();
    CHECK(access(dir, F_OK) != 0);
    return ms_test_finish();
}
