#!/usr/bin/env bash
# Speech benchmark, all in one run on the same clips and this machine's cores:
#  - STT: ivr (whisper.cpp, converted tiny.en: f16/q8_0, trimmed and full window) vs PyPI faster-whisper
#    (the same CTranslate2 tiny.en files, int8 and float32): time and WER on the real human recordings;
#  - TTS: ivr vs PyPI piper-tts, same voice files: time to first audio and real-time factor;
#  - VAD: Silero cost per second of audio.
# Models are loaded and warmed before timing; both sides use 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/python-env.sh
ivr=target/release/ivr
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fixtures=audio-fixtures/transcripts.tsv
printf '[stt]\ntrim_audio_ctx = false\n' > "$tmp/full.toml"

echo "bench: STT (ivr)" >&2
$ivr wer --only human/ --json | tail -1 > "$tmp/ivr-f16.json"
$ivr wer --only human/ --json --precision q8_0 | tail -1 > "$tmp/ivr-q8.json"
$ivr --config "$tmp/full.toml" wer --only human/ --json | tail -1 > "$tmp/ivr-full.json"
for ct in int8 float32; do
  echo "bench: STT (faster-whisper $ct)" >&2
  .venv/bin/python scripts/faster_whisper_transcribe.py --model-dir models/data/whisper/tiny.en/ct2 \
    --fixtures $fixtures --only human/ --compute-type $ct --threads 2 > "$tmp/fw-$ct.jsonl"
  $ivr wer --only human/ --json --hyp "$tmp/fw-$ct.jsonl" | tail -1 > "$tmp/fw-$ct.json"
done
echo "bench: TTS" >&2
$ivr bench tts scripts/tts_bench_texts.txt > "$tmp/tts-ivr.jsonl"
.venv/bin/python scripts/piper_tts_bench.py models/data/piper/en_US-joe-medium.onnx scripts/tts_bench_texts.txt > "$tmp/tts-piper.jsonl"
echo "bench: VAD" >&2
$ivr bench vad audio-fixtures/human/*.wav > "$tmp/vad.json"

python3 - "$tmp" <<'PY'
import json, statistics, sys
from pathlib import Path
t = Path(sys.argv[1])
def load(name): return json.loads((t / name).read_text())
def lines(name): return [json.loads(l) for l in (t / name).read_text().splitlines() if l.strip()]
fw_ms = {ct: sum(r["stt_ms"] for r in lines(f"fw-{ct}.jsonl")) for ct in ("int8", "float32")}
audio = load("ivr-f16.json")["audio_secs_total"]
rows = [
    ("ivr whisper.cpp f16, trimmed window", load("ivr-f16.json")["stt_ms_total"], load("ivr-f16.json")),
    ("ivr whisper.cpp q8_0, trimmed window", load("ivr-q8.json")["stt_ms_total"], load("ivr-q8.json")),
    ("ivr whisper.cpp f16, full 30 s window", load("ivr-full.json")["stt_ms_total"], load("ivr-full.json")),
    ("faster-whisper int8", fw_ms["int8"], load("fw-int8.json")),
    ("faster-whisper float32", fw_ms["float32"], load("fw-float32.json")),
]
n = rows[0][2]["files"]
base = fw_ms["int8"]
print(f"STT, Whisper tiny.en, {n} real recordings, {audio:.1f} s of audio, 2 threads")
print(f"  {'engine':<40} {'total ms':>9} {'ms/clip':>8} {'RTF':>6} {'vs fw int8':>10} {'WER':>6}")
for name, ms, s in rows:
    print(f"  {name:<40} {ms:9.0f} {ms / n:8.0f} {ms / 1000 / audio:6.3f} {ms / base:9.2f}x {100 * s['wer']:5.1f}%")
print()
ti, tp = lines("tts-ivr.jsonl"), lines("tts-piper.jsonl")
def agg(rows, key): return statistics.median(r[key] for r in rows)
print(f"TTS, en_US-joe-medium, {len(ti)} replies of 1-2 sentences (medians)")
print(f"  {'engine':<40} {'first audio ms':>14} {'total ms':>9} {'RTF':>6}")
for name, r in (("ivr (ONNX Runtime 1.32, Rust)", ti), ("piper-tts (PyPI, Python)", tp)):
    print(f"  {name:<40} {agg(r, 'first_audio_ms'):14.0f} {agg(r, 'total_ms'):9.0f} {agg(r, 'rtf'):6.3f}")
print(f"  ivr / piper-tts: first audio {agg(ti, 'first_audio_ms') / agg(tp, 'first_audio_ms'):.2f}x, RTF {agg(ti, 'rtf') / agg(tp, 'rtf'):.2f}x")
print()
v = load("vad.json")
print(f"VAD, Silero v6: {v['ms_per_audio_sec']:.2f} ms of CPU per second of audio ({v['audio_secs']:.0f} s measured, {100 * v['ms_per_audio_sec'] / 1000:.2f}% of one core per call)")
PY
