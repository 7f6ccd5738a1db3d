#!/usr/bin/env bash
# Does our converted whisper.cpp model agree with the CTranslate2 original? Runs PyPI faster-whisper on
# the very model files the converter reads, and our `ivr` on the converted file, over the real human
# recordings in audio-fixtures/, and prints both WERs and how far the two transcripts differ.
# With --check it fails when our WER exceeds 10% or, on the same samples with the same computation
# (full encoder window, no added silence), the transcripts differ in more than 3% of words.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0; [ "${1:-}" = "--check" ] && check=1
scripts/python-env.sh
ivr=target/release/ivr
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fixtures=audio-fixtures/transcripts.tsv

# faster-whisper decodes the files itself (PyAV); it also writes the 16 kHz samples it transcribed and
# its transcripts (ref.tsv), so ours can be run on exactly the same samples and compared word by word.
mkdir -p "$tmp/same"
.venv/bin/python scripts/faster_whisper_transcribe.py --model-dir models/data/whisper/tiny.en/ct2 \
  --fixtures $fixtures --only human/ --compute-type float32 --dump-wav "$tmp/same" > "$tmp/fw.jsonl"
# The same computation as faster-whisper: full 30 s window, no silence added around the audio.
printf '[stt]\ntrim_audio_ctx = false\nlead_in_ms = 0\ntail_pad_ms = 0\n' > "$tmp/same.toml"

wer() { "$@" --json | tail -1 | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); print("%.1f%% (%d/%d words, %d files)" % (100*d["wer"], d["errors"], d["words"], d["files"]))'; }
fw_wer=$(wer $ivr wer --only human/ --hyp "$tmp/fw.jsonl")
ours_wer=$(wer $ivr wer --only human/)
agree_same=$(wer $ivr --config "$tmp/same.toml" wer --fixtures "$tmp/same/ref.tsv")
agree_ours=$(wer $ivr wer --fixtures "$tmp/same/ref.tsv")
cat <<TABLE
Whisper tiny.en on the real human recordings of audio-fixtures/ (same model files)
  faster-whisper (CTranslate2, float32)        WER vs transcripts   $fw_wer
  ivr (converted ggml f16, default settings)   WER vs transcripts   $ours_wer
  ivr, same samples and computation            disagreement with faster-whisper   $agree_same
  ivr, same samples, default settings          disagreement with faster-whisper   $agree_ours
(default settings: encoder window trimmed to the turn, 0.3 s lead-in, 1 s tail of silence)
TABLE
if [ $check = 1 ]; then
  pct() { echo "$1" | cut -d% -f1; }
  awk -v w="$(pct "$ours_wer")" -v a="$(pct "$agree_same")" 'BEGIN { exit !(w <= 10 && a <= 3) }' \
    || { echo "compare: FAILED (need WER <= 10%, and <= 3% disagreement on the same samples)" >&2; exit 1; }
  echo "compare: ok"
fi
