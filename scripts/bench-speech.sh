#!/usr/bin/env bash
# Speech benchmark, all in one run on the same clips and this machine's cores:
#  - STT on real human voices (scripts/speech_bench_set.py: the 37 fixture recordings and 79 held-out
#    Asterisk prompts), at 16 kHz and after a G.711 round trip (8 kHz mu-law, as a phone line gives
#    it): WER and time per clip for tiny.en greedy as it was, each safeguard added (temperature
#    fallback with the no-speech test, the tenant's names as prompt), beam search, base, the default,
#    and PyPI faster-whisper beam 5 (the reference, same CTranslate2 model files);
#  - TTS: ivr vs PyPI piper-tts, same voice files: time to first audio and real-time factor;
#  - VAD: Silero cost per second of audio; the end-of-turn model's time per question.
# Models are loaded and warmed before timing; both sides use 2 threads. Prints the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/python-env.sh
ivr=target/release/ivr
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 scripts/speech_bench_set.py "$tmp/set"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)

# name | config (TOML under [stt]); "fw:MODEL" rows run faster-whisper beam 5 instead.
configs=(
  "tiny.en greedy (as before)|tenant_vocabulary = false\ntemperature_fallback = false\ndrop_hallucinations = false"
  "+ temperature fallback, no-speech|tenant_vocabulary = false\ndrop_hallucinations = false"
  "+ hallucination filter (default)|tenant_vocabulary = false"
  "+ tenant names as prompt|tenant_vocabulary = true"
  "tiny.en beam 5|tenant_vocabulary = false\nbeam_size = 5"
  "base greedy + safeguards|model = \"base\"\nlanguage = \"en\"\ntenant_vocabulary = false"
  "base beam 5|model = \"base\"\nlanguage = \"en\"\ntenant_vocabulary = false\nbeam_size = 5"
  "faster-whisper tiny.en beam 5|fw:tiny.en"
  "faster-whisper base beam 5|fw:base"
)
: > "$tmp/rows.tsv"
for i in "${!configs[@]}"; do
  name=${configs[$i]%%|*}; body=${configs[$i]#*|}
  for set in 16k g711; do
    echo "bench: STT $name ($set)" >&2
    if [ "${body#fw:}" != "$body" ]; then
      model=${body#fw:}
      .venv/bin/python scripts/faster_whisper_transcribe.py --model-dir "models/data/whisper/$model/ct2" \
        --fixtures "$tmp/set/$set/transcripts.tsv" --compute-type int8 --threads 2 --beam-size 5 > "$tmp/fw.jsonl"
      ms=$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(sum(x["stt_ms"] for x in r) / len(r))' "$tmp/fw.jsonl")
      wer=$($ivr wer --fixtures "$tmp/set/$set/transcripts.tsv" --hyp "$tmp/fw.jsonl" --json | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["wer"])')
    else
      printf "[stt]\n$body\n" > "$tmp/c$i.toml"
      out=$($ivr --config "$tmp/c$i.toml" wer --fixtures "$tmp/set/$set/transcripts.tsv" --json | tail -1)
      ms=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["stt_ms_total"] / d["files"])')
      wer=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["wer"])')
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$set" "$wer" "$ms" >> "$tmp/rows.tsv"
  done
done
echo "bench: TTS" >&2
$ivr bench tts scripts/tts_bench_texts.txt > "$tmp/tts-ivr.jsonl"
.venv/bin/python scripts/piper_tts_bench.py models/data/piper/en_US-joe-medium.onnx scripts/tts_bench_texts.txt > "$tmp/tts-piper.jsonl"
echo "bench: VAD" >&2
$ivr bench vad audio-fixtures/human/*.wav > "$tmp/vad.json"

echo "bench: end-of-turn model" >&2
ls "$tmp/set/16k/"*.wav | head -40 | xargs $ivr bench turn > "$tmp/turn.jsonl"

python3 - "$tmp" "$cpu" <<'PY'
import json, statistics, sys
from pathlib import Path
t = Path(sys.argv[1])
def load(name): return json.loads((t / name).read_text())
def lines(name): return [json.loads(l) for l in (t / name).read_text().splitlines() if l.strip()]
rows = [l.split("\t") for l in (t / "rows.tsv").read_text().splitlines()]
n = len((t / "set/16k/transcripts.tsv").read_text().splitlines()) - 1
print(f"STT on {n} real-voice clips (37 fixtures, held-out Asterisk prompts), 2 threads, CPU: {sys.argv[2]}")
print(f"  {'recogniser':<40} {'16 kHz WER':>10} {'ms/clip':>8} {'G.711 WER':>10} {'ms/clip':>8} {'time vs first':>13}")
by = {}
for name, s, wer, ms in rows:
    by.setdefault(name, {})[s] = (float(wer), float(ms))
first = None
for name, r in by.items():
    w16, m16 = r["16k"]; w8, m8 = r["g711"]
    first = first or (m16 + m8)
    print(f"  {name:<40} {100 * w16:9.1f}% {m16:8.0f} {100 * w8:9.1f}% {m8:8.0f} {(m16 + m8) / first:12.2f}x")
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
tm = [r["ms"] for r in lines("turn.jsonl")]
print(f"End of turn, Smart Turn v3.2 (1 thread): median {statistics.median(tm):.0f} ms per question, max {max(tm):.0f} ms ({len(tm)} questions)")
PY
