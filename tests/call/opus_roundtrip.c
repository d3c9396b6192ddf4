/*
 * Test helper for the call tests: what a listener should hear. Encodes a 48 kHz mono WAV
 * with the call's Opus settings in 20 ms frames (the last one padded with silence, as
 * the phone does), decodes each packet in order, and writes the result.
 * Usage: opus_roundtrip IN.wav OUT.wav [PACKETS.hex]   (one Opus packet per line)
 */
#include <stdio.h>
#include <string.h>

#include "call/audio.h"

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: opus_roundtrip IN.wav OUT.wav [PACKETS.hex]\n");
        return 2;
    }
    FILE *packets = argc == 4 ? fopen(argv[3], "w") : NULL;
    if (argc == 4 && packets == NULL) {
        perror(argv[3]);
        return 1;
    }
    char detail[256] = "";
    ms_wav in;
    if (ms_wav_read(&in, argv[1], detail, sizeof detail) != MS_OK || in.channels != 1) {
        fprintf(stderr, "opus_roundtrip: %s: %s\n", argv[1], detail[0] ? detail : "not mono");
        return 1;
    }
    ms_opus_enc *enc = NULL;
    ms_opus_dec *dec = NULL;
    ms_wav_writer *out = NULL;
    int rc = 1;
    if (ms_opus_enc_new(&enc, 1) != MS_OK || ms_opus_dec_new(&dec, 1) != MS_OK ||
        ms_wav_create(&out, argv[2], MS_AUDIO_RATE, 1, detail, sizeof detail) != MS_OK)
        goto done;
    for (size_t pos = 0; pos < in.n_frames; pos += MS_AUDIO_FRAME) {
        int16_t pcm[MS_AUDIO_FRAME] = {0};
        size_t n = in.n_frames - pos < MS_AUDIO_FRAME ? in.n_frames - pos : MS_AUDIO_FRAME;
        memcpy(pcm, in.samples + pos, n * sizeof(int16_t));
        uint8_t pkt[MS_AUDIO_MAX_PACKET];
        size_t len;
        if (ms_opus_encode(enc, pkt, sizeof pkt, &len, pcm) != MS_OK ||
            ms_opus_decode(dec, pcm, pkt, len) != MS_OK ||
            ms_wav_append(out, pcm, MS_AUDIO_FRAME) != MS_OK)
            goto done;
        for (size_t i = 0; packets != NULL && i < len; i++)
            fprintf(packets, "%02x%s", pkt[i], i + 1 == len ? "\n" : "");
    }
    rc = ms_wav_close(out, true) == MS_OK ? 0 : 1;
    out = NULL;
done:
    if (out != NULL)
        (void)ms_wav_close(out, false);
    ms_opus_enc_free(enc);
    ms_opus_dec_free(dec);
    ms_wav_free(&in);
    if (packets != NULL && fclose(packets) != 0)
        rc = 1;
    if (rc != 0)
        fprintf(stderr, "opus_roundtrip: failed %s\n", detail);
    return rc;
}
