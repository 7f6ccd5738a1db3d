#!/usr/bin/env python3
"""PyPI piper-tts with the same voice files: time to first audio chunk and real-time factor per text.

Prints JSON lines like `ivr bench tts`. piper-tts streams one chunk per sentence, as ivr does.
"""
import json
import sys
import time

from piper import PiperVoice

model, texts = sys.argv[1], sys.argv[2]
voice = PiperVoice.load(model, config_path=model + ".json")
for _ in voice.synthesize("Warming up."):
    pass
for text in open(texts).read().splitlines():
    if not text.strip():
        continue
    started = time.perf_counter()
    first = None
    samples = 0
    rate = voice.config.sample_rate
    for chunk in voice.synthesize(text):
        samples += len(chunk.audio_int16_array)
        rate = chunk.sample_rate
        if first is None:
            first = (time.perf_counter() - started) * 1000
    total = (time.perf_counter() - started) * 1000
    secs = samples / rate
    print(json.dumps({"text": text, "first_audio_ms": first, "total_ms": total, "audio_secs": secs,
                      "rtf": total / 1000 / secs}), flush=True)
