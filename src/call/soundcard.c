/* The sound card through ALSA: capture and playback, 48 kHz mono S16, 20 ms periods. */
#include "call/audio.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <alsa/asoundlib.h>

#define PERIODS 4 /* buffer = 80 ms: enough slack for a scheduling hiccup, little delay */

struct ms_soundcard {
    snd_pcm_t *capture;
    snd_pcm_t *playback;
};

/* ALSA prints its own errors on stderr; ours carry the cause in the detail instead. */
static void alsa_quiet(const char *file, int line, const char *function, int err,
                       const char *fmt, ...)
{
    (void)file;
    (void)line;
    (void)function;
    (void)err;
    (void)fmt;
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void quiet_alsa(void)
{
    snd_lib_error_set_handler(alsa_quiet);
}

static void say(char *detail, size_t cap, const char *what, const char *device,
                const char *dir, int rc)
{
    if (detail != NULL && cap > 0)
        snprintf(detail, cap, "sound card \"%s\" (%s): %s: %s", device, dir, what,
                 snd_strerror(rc));
}

/* Opens one direction and fixes its format; ALSA's messages name the failing step. */
static ms_err open_pcm(snd_pcm_t **out, const char *device, snd_pcm_stream_t stream,
                       char *detail, size_t cap)
{
    const char *dir = stream == SND_PCM_STREAM_CAPTURE ? "capture" : "playback";
    snd_pcm_t *pcm = NULL;
    int rc = snd_pcm_open(&pcm, device, stream, 0);
    if (rc < 0) {
        say(detail, cap, "cannot open", device, dir, rc);
        return MS_ERR_MEDIA;
    }
    snd_pcm_hw_params_t *hw = NULL;
    snd_pcm_uframes_t period = MS_AUDIO_FRAME;
    snd_pcm_uframes_t buffer = (snd_pcm_uframes_t)MS_AUDIO_FRAME * PERIODS;
    unsigned int rate = MS_AUDIO_RATE;
    const char *step = "cannot allocate parameters";
    rc = snd_pcm_hw_params_malloc(&hw);
    if (rc < 0)
        goto fail;
    step = "no usable configuration";
    if ((rc = snd_pcm_hw_params_any(pcm, hw)) < 0)
        goto fail;
    step = "interleaved access refused";
    if ((rc = snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0)
        goto fail;
    step = "16-bit samples refused";
    if ((rc = snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16)) < 0)
        goto fail;
    step = "mono refused";
    if ((rc = snd_pcm_hw_params_set_channels(pcm, hw, 1)) < 0)
        goto fail;
    step = "48000 Hz refused";
    if ((rc = snd_pcm_hw_params_set_rate_resample(pcm, hw, 1)) < 0 ||
        (rc = snd_pcm_hw_params_set_rate(pcm, hw, rate, 0)) < 0)
        goto fail;
    step = "20 ms period refused";
    if ((rc = snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, NULL)) < 0)
        goto fail;
    step = "buffer size refused";
    if ((rc = snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer)) < 0)
        goto fail;
    step = "cannot apply parameters";
    if ((rc = snd_pcm_hw_params(pcm, hw)) < 0)
        goto fail;
    step = "cannot prepare";
    if ((rc = snd_pcm_prepare(pcm)) < 0)
        goto fail;
    snd_pcm_hw_params_free(hw);
    *out = pcm;
    return MS_OK;
fail:
    say(detail, cap, step, device, dir, rc);
    if (hw != NULL)
        snd_pcm_hw_params_free(hw);
    snd_pcm_close(pcm);
    return MS_ERR_MEDIA;
}

ms_err ms_soundcard_open(ms_soundcard **out, const char *device, char *detail,
                         size_t detail_cap)
{
    if (out == NULL)
        return MS_ERR_ARG;
    *out = NULL;
    if (device == NULL)
        device = "default";
    pthread_once(&quiet_once, quiet_alsa);
    ms_soundcard *s = calloc(1, sizeof *s);
    if (s == NULL)
        return MS_ERR_NOMEM;
    ms_err err = open_pcm(&s->capture, device, SND_PCM_STREAM_CAPTURE, detail, detail_cap);
    if (err == MS_OK)
        err = open_pcm(&s->playback, device, SND_PCM_STREAM_PLAYBACK, detail, detail_cap);
    if (err != MS_OK) {
        ms_soundcard_close(s);
        return err;
    }
    *out = s;
    return MS_OK;
}

/* Recovers from an overrun or underrun (and a suspend) once, then gives up. */
static int recover(snd_pcm_t *pcm, int rc)
{
    return snd_pcm_recover(pcm, rc, 1);
}

ms_err ms_soundcard_read(ms_soundcard *s, int16_t pcm[MS_AUDIO_FRAME])
{
    if (s == NULL || pcm == NULL)
        return MS_ERR_ARG;
    snd_pcm_uframes_t done = 0;
    while (done < MS_AUDIO_FRAME) {
        snd_pcm_sframes_t n = snd_pcm_readi(s->capture, pcm + done, MS_AUDIO_FRAME - done);
        if (n < 0) {
            if (recover(s->capture, (int)n) < 0)
                return MS_ERR_MEDIA;
            continue;
        }
        done += (snd_pcm_uframes_t)n;
    }
    return MS_OK;
}

ms_err ms_soundcard_write(ms_soundcard *s, const int16_t pcm[MS_AUDIO_FRAME])
{
    if (s == NULL || pcm == NULL)
        return MS_ERR_ARG;
    snd_pcm_uframes_t done = 0;
    while (done < MS_AUDIO_FRAME) {
        snd_pcm_sframes_t n = snd_pcm_writei(s->playback, pcm + done, MS_AUDIO_FRAME - done);
        if (n < 0) {
            if (recover(s->playback, (int)n) < 0)
                return MS_ERR_MEDIA;
            continue;
        }
        done += (snd_pcm_uframes_t)n;
    }
    return MS_OK;
}

void ms_soundcard_close(ms_soundcard *s)
{
    if (s == NULL)
        return;
    if (s->capture != NULL)
        snd_pcm_close(s->capture);
    if (s->playback != NULL) {
        snd_pcm_drain(s->playback);
        snd_pcm_close(s->playback);
    }
    free(s);
}
