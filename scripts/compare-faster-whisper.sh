#!/usr/bin/env bash
# Does our converted whisper.cpp model agree with the CTranslate2 original? Runs PyPI faster-whisper on
# the very model files the converter reads, and our `ivr` on the converted file, over the real human
# recordings in audio-fixtures/, and prints both WERs and how far the two transcripts differ.
# With --check it fails when our WER exceeds 10% or, with the full encoder window (the same
# computation as faster-whisper), the transcripts differ in more than 3% of words.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0; [ "${1:-}" = "--check" ] && check=1
scripts/python-env.sh
ivr=target/release/ivr
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fixtures=audio-fixtures/transcripts.tsv

.venv/bin/python scripts/faster_whisper_transcribe.py --model-dir models/data/whisper/tiny.en/ct2 \
  --fixtures $fixtures --only human/ --compute-type float32 > "$tmp/fw.jsonl"
# faster-whisper's transcripts as the reference, to measure agreement.
.venv/bin/python - "$tmp/fw.jsonl" "$tmp/fwref.tsv" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    f.write("file\ttranscript\n")
    for r in rows:
        f.write(f"{r['file']}\t{r['text']}\n")
PY
cp "$tmp/fwref.tsv" audio-fixtures/.faster-whisper-reference.tsv
trap 'rm -rf "$tmp" audio-fixtures/.faster-whisper-reference.tsv' EXIT
printf '[stt]\ntrim_audio_ctx = false\n' > "$tmp/full.toml"

wer() { "$@" --json | tail -1 | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); print("%.1f%% (%d/%d words, %d files)" % (100*d["wer"], d["errors"], d["words"], d["files"]))'; }
fw_wer=$(wer $ivr wer --only human/ --hyp "$tmp/fw.jsonl")
ours_wer=$(wer $ivr wer --only human/)
ours_full_wer=$(wer $ivr --config "$tmp/full.toml" wer --only human/)
agree_trim=$(wer $ivr wer --fixtures audio-fixtures/.faster-whisper-reference.tsv)
agree_full=$(wer $ivr --config "$tmp/full.toml" wer --fixtures audio-fixtures/.faster-whisper-reference.tsv)
cat <<TABLE
Whisper tiny.en on the real human recordings of audio-fixtures/ (same model files)
  faster-whisper (CTranslate2, float32)        WER vs transcripts   $fw_wer
  ivr (converted ggml f16, trimmed window)     WER vs transcripts   $ours_wer
  ivr (converted ggml f16, full 30 s window)   WER vs transcripts   $ours_full_wer
  ivr trimmed vs faster-whisper                word disagreement    $agree_trim
  ivr full window vs faster-whisper            word disagreement    $agree_full
TABLE
if [ $check = 1 ]; then
  pct() { echo "$1" | cut -d% -f1; }
  awk -v w="$(pct "$ours_wer")" -v a="$(pct "$agree_full")" 'BEGIN { exit !(w <= 10 && a <= 3) }' \
    || { echo "compare: FAILED (need WER <= 10% and full-window disagreement <= 3%)" >&2; exit 1; }
  echo "compare: ok"
fi
