#!/usr/bin/env python3
"""Transcribe the fixtures with PyPI faster-whisper on the very model files our converter reads.

Prints one JSON line per file ({"file", "text", "stt_ms", "audio_secs"}), the same shape as
`ivr transcribe --json`, so `ivr wer --hyp` scores both with one normaliser. Decoding matches ours:
greedy, no timestamps, no conditioning on earlier text, English.
"""
import argparse
import json
import time
import wave
from pathlib import Path

from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio

ap = argparse.ArgumentParser()
ap.add_argument("--model-dir", required=True)
ap.add_argument("--fixtures", required=True)
ap.add_argument("--only", default="")
ap.add_argument("--compute-type", default="int8")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--beam-size", type=int, default=1, help="5 is faster-whisper's own default (with its temperature fallback)")
ap.add_argument("--dump-wav", help="also write the 16 kHz audio it transcribed here, with a ref.tsv of its transcripts")
args = ap.parse_args()

model = WhisperModel(args.model_dir, device="cpu", compute_type=args.compute_type, cpu_threads=args.threads)
base = Path(args.fixtures).parent
ref = open(Path(args.dump_wav) / "ref.tsv", "w") if args.dump_wav else None
if ref:
    ref.write("file\ttranscript\n")
for line in Path(args.fixtures).read_text().splitlines()[1:]:
    rel = line.split("\t")[0]
    if args.only not in rel:
        continue
    audio = decode_audio(str(base / rel), sampling_rate=16000)
    started = time.perf_counter()
    if args.beam_size > 1:
        # The reference as faster-whisper ships it: beam search with its temperature fallback.
        segments, info = model.transcribe(audio, language="en", beam_size=args.beam_size, without_timestamps=True,
                                          condition_on_previous_text=False, vad_filter=False)
    else:
        segments, info = model.transcribe(
            audio, language="en", beam_size=1, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False, temperature=0.0,
        )
    text = " ".join(s.text.strip() for s in segments)
    ms = (time.perf_counter() - started) * 1000
    print(json.dumps({"file": rel, "text": text, "stt_ms": ms, "audio_secs": len(audio) / 16000}), flush=True)
    if ref:
        name = Path(rel).name
        with wave.open(str(Path(args.dump_wav) / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((audio.clip(-1, 1) * 32767).round().astype("<i2").tobytes())
        ref.write(f"{name}\t{text}\n")
