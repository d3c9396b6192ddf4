#!/usr/bin/env python3
"""Writes a test signal as a 48 kHz mono 16-bit WAV: a gliding tone with a little seeded
noise, distinct per seed, so each direction of a call carries recognisable audio.
Usage: make_wav.py OUT.wav SECONDS SEED"""
import math
import random
import struct
import sys
import wave

out, seconds, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
rate = 48000
base = 220.0 + 110.0 * (seed % 5)
frames = bytearray()
phase = 0.0
for i in range(int(seconds * rate)):
    t = i / rate
    f = base * (1.0 + 0.5 * math.sin(2 * math.pi * 0.5 * t))
    phase += 2 * math.pi * f / rate
    v = 0.4 * math.sin(phase) + 0.05 * (rng.random() - 0.5)
    frames += struct.pack('<h', int(max(-1.0, min(1.0, v)) * 32767))
with wave.open(out, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(bytes(frames))
