/* WAV files (RIFF/WAVE, 16-bit PCM) and the Opus codec with the call's fixed settings. */
#define _GNU_SOURCE 1 /* sync_file_range (Linux) */
#include "call/audio.h"
#include "util/detail.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opus.h>

#define WAVE_FORMAT_PCM 1
#define WAVE_FORMAT_EXTENSIBLE 0xfffe
#define WAV_HEADER 44
/* RIFF sizes are 32-bit: the data chunk may not pass 4 GiB less the header. */
#define WAV_MAX_DATA (0xffffffffu - (WAV_HEADER - 8))

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The KSDATAFORMAT_SUBTYPE_PCM GUID's tail after its first two octets (format 1). */
static const uint8_t pcm_guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                          0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71};

static ms_err read_whole(uint8_t **out, size_t *out_len, const char *path, char *detail,
                         size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot open %s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0, room = 0;
    for (;;) {
        if (len == room) {
            size_t grow = room == 0 ? 65536 : room * 2;
            uint8_t *nb = realloc(buf, grow);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return ms_detail_fail(MS_ERR_NOMEM, detail, cap, "out of memory reading %s", path);
            }
            buf = nb;
            room = grow;
        }
        size_t n = fread(buf + len, 1, room - len, f);
        len += n;
        if (n == 0)
            break;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        return ms_detail_fail(MS_ERR_IO, detail, cap, "cannot read %s", path);
    }
    *out = buf;
    *out_len = len;
    return MS_OK;
}

ms_err ms_wav_read(ms_wav *out, const char *path, char *detail, size_t detail_cap)
{
    if (out == NULL || path == NULL)
        return MS_ERR_ARG;
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t len = 0;
    ms_err err = read_whole(&buf, &len, path, detail, detail_cap);
    if (err != MS_OK)
        return err;

    err = MS_ERR_MEDIA;
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) {
        ms_detail_fail(err, detail, detail_cap, "%s: not a RIFF/WAVE file", path);
        goto out;
    }
    bool have_fmt = false;
    uint16_t channels = 0;
    uint32_t rate = 0;
    size_t pos = 12;
    for (;;) {
        if (len - pos < 8) {
            ms_detail_fail(err, detail, detail_cap, "%s: truncated: no data chunk", path);
            goto out;
        }
        const uint8_t *id = buf + pos;
        size_t size = le32(buf + pos + 4);
        pos += 8;
        if (memcmp(id, "fmt ", 4) == 0) {
            if (size < 16 || size > len - pos) {
                ms_detail_fail(err, detail, detail_cap, "%s: truncated or short fmt chunk", path);
                goto out;
            }
            const uint8_t *f = buf + pos;
            uint16_t format = le16(f);
            channels = le16(f + 2);
            rate = le32(f + 4);
            uint16_t block_align = le16(f + 12);
            uint16_t bits = le16(f + 14);
            if (format == WAVE_FORMAT_EXTENSIBLE && size >= 40 && le16(f + 16) >= 22 &&
                memcmp(f + 26, pcm_guid_tail, sizeof pcm_guid_tail) == 0)
                format = le16(f + 24);
            if (format != WAVE_FORMAT_PCM || bits != 16) {
                ms_detail_fail(err, detail, detail_cap, "%s: not 16-bit PCM (format %u, %u bits)",
                     path, format, bits);
                goto out;
            }
            if (channels != 1 && channels != 2) {
                ms_detail_fail(err, detail, detail_cap, "%s: %u channels: only mono or stereo", path,
                     channels);
                goto out;
            }
            if (block_align != 2u * channels) {
                ms_detail_fail(err, detail, detail_cap, "%s: block align %u does not match %u channels",
                     path, block_align, channels);
                goto out;
            }
            if (rate != MS_AUDIO_RATE) {
                ms_detail_fail(err, detail, detail_cap, "%s: %u Hz: calls take %u Hz", path, rate,
                     (unsigned)MS_AUDIO_RATE);
                goto out;
            }
            have_fmt = true;
        } else if (memcmp(id, "data", 4) == 0) {
            if (!have_fmt) {
                ms_detail_fail(err, detail, detail_cap, "%s: data chunk before the fmt chunk", path);
                goto out;
            }
            if (size > len - pos) {
                ms_detail_fail(err, detail, detail_cap,
                     "%s: truncated: data chunk says %zu octets, file has %zu", path, size,
                     len - pos);
                goto out;
            }
            size_t frame_octets = 2u * channels;
            if (size % frame_octets != 0) {
                ms_detail_fail(err, detail, detail_cap, "%s: data is not a whole number of frames",
                     path);
                goto out;
            }
            size_t n = size / 2;
            int16_t *samples = malloc(n > 0 ? n * sizeof *samples : 1);
            if (samples == NULL) {
                err = ms_detail_fail(MS_ERR_NOMEM, detail, detail_cap, "out of memory reading %s", path);
                goto out;
            }
            for (size_t i = 0; i < n; i++)
                samples[i] = (int16_t)le16(buf + pos + 2 * i);
            out->rate = rate;
            out->channels = channels;
            out->n_frames = size / frame_octets;
            out->samples = samples;
            err = MS_OK;
            goto out;
        } else if (size > len - pos) {
            ms_detail_fail(err, detail, detail_cap, "%s: truncated chunk", path);
            goto out;
        }
        /* chunks are padded to an even length */
        size_t skip = size + (size & 1);
        pos += skip <= len - pos ? skip : len - pos;
    }
out:
    free(buf);
    return err;
}

void ms_wav_free(ms_wav *w)
{
    if (w == NULL)
        return;
    free(w->samples);
    memset(w, 0, sizeof *w);
}

/* ---- writing ---------------------------------------------------------------------------- */

struct ms_wav_writer {
    FILE *f;
    char *path;
    char *tmp;
    uint32_t rate;
    uint16_t channels;
    uint64_t data_octets;
    uint64_t written_back; /* file octets handed to early writeback */
    bool failed;
};

/* Every this many octets the file's new data is handed to the kernel's writeback without
 * waiting for it, so that the fsync at the end (the file is evidence, for the auditor)
 * finds less left to write while the rest of the file is still being decoded. */
#define WAV_WRITEBACK ((uint64_t)1 << 18)

static void wav_start_writeback(ms_wav_writer *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
    uint64_t end = WAV_HEADER + w->data_octets;
    if (end - w->written_back < WAV_WRITEBACK || fflush(w->f) != 0)
        return;
    /* best effort: a failure only leaves the work to the fsync */
    (void)sync_file_range(fileno(w->f), (off_t)w->written_back, (off_t)(end - w->written_back),
                          SYNC_FILE_RANGE_WRITE);
    w->written_back = end;
#else
    (void)w;
#endif
}

static void wav_header(uint8_t h[WAV_HEADER], uint32_t rate, uint16_t channels,
                       uint32_t data_octets)
{
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, data_octets + WAV_HEADER - 8);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);
    put_le16(h + 20, WAVE_FORMAT_PCM);
    put_le16(h + 22, channels);
    put_le32(h + 24, rate);
    put_le32(h + 28, rate * 2u * channels);
    put_le16(h + 32, (uint16_t)(2u * channels));
    put_le16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data_octets);
}

ms_err ms_wav_create(ms_wav_writer **out, const char *path, uint32_t rate, uint16_t channels,
                     char *detail, size_t detail_cap)
{
    if (out == NULL || path == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if ((channels != 1 && channels != 2) || rate == 0 || rate > 384000)
        return ms_detail_fail(MS_ERR_ARG, detail, detail_cap, "%s: %u Hz, %u channels not supported",
                    path, rate, channels);
    ms_wav_writer *w = calloc(1, sizeof *w);
    size_t plen = strlen(path);
    if (w == NULL || (w->path = malloc(plen + 1)) == NULL ||
        (w->tmp = malloc(plen + 5)) == NULL) {
        if (w != NULL)
            free(w->path);
        free(w);
        return ms_detail_fail(MS_ERR_NOMEM, detail, detail_cap, "out of memory");
    }
    memcpy(w->path, path, plen + 1);
    memcpy(w->tmp, path, plen);
    memcpy(w->tmp + plen, ".tmp", 5);
    w->rate = rate;
    w->channels = channels;
    /* a call's audio is private: owner-only, whatever the umask */
    unlink(w->tmp); /* a leftover of an interrupted run, with its own mode */
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    w->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (w->f == NULL) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        ms_err e = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot create %s: %s", w->tmp,
                        strerror(saved));
        free(w->tmp);
        free(w->path);
        free(w);
        return e;
    }
    /* stdio's default buffer is one 4 KiB block: a minute of audio would be ~1,400 write
     * calls. 64 KiB makes it ~90 (the auditor writes whole calls as fast as it decodes). */
    setvbuf(w->f, NULL, _IOFBF, (size_t)1 << 16);
    uint8_t h[WAV_HEADER];
    wav_header(h, rate, channels, 0);
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        ms_err e = ms_detail_fail(MS_ERR_IO, detail, detail_cap, "cannot write %s", w->tmp);
        ms_wav_close(w, false);
        return e;
    }
    *out = w;
    return MS_OK;
}

ms_err ms_wav_append(ms_wav_writer *w, const int16_t *samples, size_t n_frames)
{
    if (w == NULL || (samples == NULL && n_frames > 0))
        return MS_ERR_ARG;
    if (w->failed)
        return MS_ERR_IO;
    size_t n = n_frames * w->channels;
    if (w->data_octets + 2 * (uint64_t)n > WAV_MAX_DATA) {
        w->failed = true;
        return MS_ERR_MEDIA;
    }
    uint8_t chunk[4096];
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        for (; i < n && k + 2 <= sizeof chunk; i++, k += 2)
            put_le16(chunk + k, (uint16_t)samples[i]);
        if (fwrite(chunk, 1, k, w->f) != k) {
            w->failed = true;
            return MS_ERR_IO;
        }
    }
    w->data_octets += 2 * (uint64_t)n;
    wav_start_writeback(w);
    return MS_OK;
}

ms_err ms_wav_close(ms_wav_writer *w, bool commit)
{
    if (w == NULL)
        return MS_ERR_ARG;
    ms_err err = MS_OK;
    if (commit && w->failed)
        err = MS_ERR_IO;
    if (commit && err == MS_OK) {
        uint8_t h[WAV_HEADER];
        wav_header(h, w->rate, w->channels, (uint32_t)w->data_octets);
        if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h ||
            fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
            err = MS_ERR_IO;
    }
    if (fclose(w->f) != 0 && err == MS_OK)
        err = MS_ERR_IO;
    if (commit && err == MS_OK && rename(w->tmp, w->path) != 0)
        err = MS_ERR_IO;
    if (!commit || err != MS_OK)
        unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w);
    return err;
}

/* ---- Opus ------------------------------------------------------------------------------- */

#define OPUS_BITRATE 32000
#define OPUS_COMPLEXITY 10

struct ms_opus_enc {
    OpusEncoder *enc;
    uint16_t channels;
};

struct ms_opus_dec {
    OpusDecoder *dec;
    uint16_t channels;
};

ms_err ms_opus_enc_new(ms_opus_enc **out, uint16_t channels)
{
    if (out == NULL || (channels != 1 && channels != 2))
        return MS_ERR_ARG;
    *out = NULL;
    ms_opus_enc *e = calloc(1, sizeof *e);
    if (e == NULL)
        return MS_ERR_NOMEM;
    int oerr = OPUS_OK;
    e->enc = opus_encoder_create(MS_AUDIO_RATE, channels, OPUS_APPLICATION_VOIP, &oerr);
    if (e->enc == NULL || oerr != OPUS_OK) {
        free(e);
        return oerr == OPUS_ALLOC_FAIL ? MS_ERR_NOMEM : MS_ERR_MEDIA;
    }
    e->channels = channels;
    /* Every setting that the encoder would otherwise pick for itself is pinned, so the
     * same PCM always gives the same packets. */
    if (opus_encoder_ctl(e->enc, OPUS_SET_BITRATE(OPUS_BITRATE)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_VBR(1)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_VBR_CONSTRAINT(1)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_COMPLEXITY(OPUS_COMPLEXITY)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_INBAND_FEC(0)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_DTX(0)) != OPUS_OK ||
        opus_encoder_ctl(e->enc, OPUS_SET_PACKET_LOSS_PERC(0)) != OPUS_OK) {
        ms_opus_enc_free(e);
        return MS_ERR_MEDIA;
    }
    *out = e;
    return MS_OK;
}

void ms_opus_enc_free(ms_opus_enc *e)
{
    if (e == NULL)
        return;
    opus_encoder_destroy(e->enc);
    free(e);
}

ms_err ms_opus_encode(ms_opus_enc *e, uint8_t *out, size_t cap, size_t *out_len,
                      const int16_t *pcm)
{
    if (e == NULL || out == NULL || out_len == NULL || pcm == NULL || cap == 0)
        return MS_ERR_ARG;
    opus_int32 room = cap > MS_AUDIO_MAX_PACKET ? MS_AUDIO_MAX_PACKET : (opus_int32)cap;
    opus_int32 n = opus_encode(e->enc, pcm, MS_AUDIO_FRAME, out, room);
    if (n == OPUS_BUFFER_TOO_SMALL)
        return MS_ERR_BUFFER_TOO_SMALL;
    if (n < 0)
        return MS_ERR_MEDIA;
    *out_len = (size_t)n;
    return MS_OK;
}

ms_err ms_opus_dec_new(ms_opus_dec **out, uint16_t channels)
{
    if (out == NULL || (channels != 1 && channels != 2))
        return MS_ERR_ARG;
    *out = NULL;
    ms_opus_dec *d = calloc(1, sizeof *d);
    if (d == NULL)
        return MS_ERR_NOMEM;
    int oerr = OPUS_OK;
    d->dec = opus_decoder_create(MS_AUDIO_RATE, channels, &oerr);
    if (d->dec == NULL || oerr != OPUS_OK) {
        free(d);
        return oerr == OPUS_ALLOC_FAIL ? MS_ERR_NOMEM : MS_ERR_MEDIA;
    }
    d->channels = channels;
    *out = d;
    return MS_OK;
}

void ms_opus_dec_free(ms_opus_dec *d)
{
    if (d == NULL)
        return;
    opus_decoder_destroy(d->dec);
    free(d);
}

ms_err ms_opus_decode(ms_opus_dec *d, int16_t *pcm, const uint8_t *packet, size_t len)
{
    if (d == NULL || pcm == NULL || (packet != NULL && len == 0))
        return MS_ERR_ARG;
    if (packet != NULL && len > MS_AUDIO_MAX_PACKET)
        return MS_ERR_MEDIA;
    int n = opus_decode(d->dec, packet, packet != NULL ? (opus_int32)len : 0, pcm,
                        MS_AUDIO_FRAME, 0);
    if (n < 0)
        return MS_ERR_MEDIA;
    /* a packet of another duration than 20 ms is not what a call sends */
    if (n != MS_AUDIO_FRAME)
        return MS_ERR_MEDIA;
    return MS_OK;
}
