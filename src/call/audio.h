/*
 * Audio: WAV files (16-bit PCM), Opus at 48 kHz with 20 ms frames, and the sound card
 * (ALSA) for live calls.
 */
#ifndef MS_CALL_AUDIO_H
#define MS_CALL_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_AUDIO_RATE 48000
#define MS_AUDIO_FRAME 960       /* samples per channel in 20 ms */
#define MS_AUDIO_MAX_PACKET 1275 /* largest Opus packet (RFC 6716) */

/* ---- WAV -------------------------------------------------------------------------------- */

typedef struct ms_wav {
    uint32_t rate;      /* must be 48000 for a call */
    uint16_t channels;  /* 1 (mono) or 2 */
    size_t n_frames;    /* samples per channel */
    int16_t *samples;   /* interleaved; malloc'd, ms_wav_free releases */
} ms_wav;

/* Reads RIFF/WAVE PCM 16-bit. MS_ERR_MEDIA with detail ("not 16-bit PCM", "44100 Hz:
 * calls take 48000 Hz") otherwise. */
ms_err ms_wav_read(ms_wav *out, const char *path, char *detail, size_t detail_cap);
void ms_wav_free(ms_wav *w);

/* Streaming writer: the header is fixed up on close; atomic (path.tmp, renamed). */
typedef struct ms_wav_writer ms_wav_writer;
ms_err ms_wav_create(ms_wav_writer **out, const char *path, uint32_t rate, uint16_t channels,
                     char *detail, size_t detail_cap);
ms_err ms_wav_append(ms_wav_writer *w, const int16_t *samples, size_t n_frames);
ms_err ms_wav_close(ms_wav_writer *w, bool commit); /* frees */

/* ---- Opus ------------------------------------------------------------------------------- */

/* Fixed settings (VoIP application, 32 kbit/s CBR-constrained VBR, complexity 10) so a
 * local encode/decode of the same WAV gives the same samples, bit for bit. */
typedef struct ms_opus_enc ms_opus_enc;
typedef struct ms_opus_dec ms_opus_dec;
ms_err ms_opus_enc_new(ms_opus_enc **out, uint16_t channels);
void ms_opus_enc_free(ms_opus_enc *e);
/* pcm: MS_AUDIO_FRAME * channels samples. */
ms_err ms_opus_encode(ms_opus_enc *e, uint8_t *out, size_t cap, size_t *out_len,
                      const int16_t *pcm);
ms_err ms_opus_dec_new(ms_opus_dec **out, uint16_t channels);
void ms_opus_dec_free(ms_opus_dec *d);
/* pcm receives MS_AUDIO_FRAME * channels samples; packet NULL = conceal a lost one. */
ms_err ms_opus_decode(ms_opus_dec *d, int16_t *pcm, const uint8_t *packet, size_t len);

/* ---- sound card ------------------------------------------------------------------------- */

typedef struct ms_soundcard ms_soundcard;
/* device NULL: "default". Capture and playback at 48 kHz mono, 20 ms periods. */
ms_err ms_soundcard_open(ms_soundcard **out, const char *device, char *detail,
                         size_t detail_cap);
/* Blocks until a whole frame is captured / queued. */
ms_err ms_soundcard_read(ms_soundcard *s, int16_t pcm[MS_AUDIO_FRAME]);
ms_err ms_soundcard_write(ms_soundcard *s, const int16_t pcm[MS_AUDIO_FRAME]);
void ms_soundcard_close(ms_soundcard *s);

#endif
