#!/usr/bin/env bash
# Voice-to-voice latency (caller stops -> first reply audio) over 32 caller turns in 4 whole calls,
# on the real models, with `ivr simulate` (each job takes what it measurably takes on this machine).
# The caller's turns (scripts/latency_turns.txt) are spoken alternately by the Piper voice and
# espeak-ng. Pipelines run in the same command:
#   ivr    the default: the end-of-turn model and the words end a turn, transcription started
#          early on a tentative end of speech, fixed sentences and knowledge answers pre-rendered
#   fixed  as it was: every turn ends after a fixed 400 ms of silence
#   naive  transcription only after the endpoint, everything synthesised when needed
# and a run with the local LLM wording small talk and tool answers (ivr + llm).
# Prints p50/p95 and where the time goes, per pipeline, and the ratio ivr / naive; then ivr and
# fixed on the pause set (scripts/bench_pauses.py): callers answered inside a mid-sentence pause,
# and the end-of-turn delay on finished turns. Prints the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
IVR=target/release/ivr
[ -x "$IVR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Build the calls: a 6.5 s wait for the greeting, then each turn followed by 12 s for the answer.
call=0; turn=0; parts=()
flush() {
  [ ${#parts[@]} -gt 0 ] || return 0
  call=$((call + 1)); sox "${parts[@]}" "$tmp/call$call.wav"; parts=()
}
sox -n -r 16000 -c 1 -b 16 "$tmp/gap.wav" trim 0 12
sox -n -r 16000 -c 1 -b 16 "$tmp/lead.wav" trim 0 6.5
while IFS= read -r line; do
  case "$line" in \#*) continue ;; esac
  if [ -z "$line" ]; then flush; continue; fi
  [ ${#parts[@]} -gt 0 ] || parts+=("$tmp/lead.wav")
  turn=$((turn + 1)); f="$tmp/t$turn.wav"
  if [ $((turn % 2)) -eq 0 ]; then
    espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "$line"
  else
    "$IVR" say "$line" -o "$tmp/raw.wav" >/dev/null 2>&1
  fi
  sox "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$f"
  parts+=("$f" "$tmp/gap.wav")
done < scripts/latency_turns.txt
flush
echo "$turn caller turns in $call calls" >&2

cat > "$tmp/naive.toml" <<'TOML'
[session]
end_of_turn_model = false
tentative_end_ms = 400
[tts]
prerender = false
TOML
cat > "$tmp/fixed.toml" <<'TOML'
[session]
end_of_turn_model = false
tentative_end_ms = 200
TOML
: > "$tmp/default.toml"
"$IVR" simulate "$tmp/call1.wav" --json > /dev/null 2>&1 # renders the speech cache once
for mode in ivr fixed naive llm; do
  for c in $(seq 1 "$call"); do
    case $mode in
      ivr) "$IVR" simulate "$tmp/call$c.wav" --json ;;
      fixed) "$IVR" --config "$tmp/fixed.toml" simulate "$tmp/call$c.wav" --json ;;
      naive) "$IVR" --config "$tmp/naive.toml" simulate "$tmp/call$c.wav" --json ;;
      llm) "$IVR" simulate "$tmp/call$c.wav" --json --llm ;;
    esac 2>/dev/null | tail -1 > "$tmp/$mode-$c.json"
  done
done

python3 - "$tmp" "$call" <<'PY'
import json, statistics, sys
tmp, calls = sys.argv[1], int(sys.argv[2])
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
p50 = {}
for mode in ["ivr", "fixed", "naive", "llm"]:
    turns = []
    for c in range(1, calls + 1):
        turns += [t for t in json.load(open(f"{tmp}/{mode}-{c}.json"))["latency"] if t["voice_to_voice_ms"] is not None]
    v2v = [t["voice_to_voice_ms"] for t in turns]
    p50[mode] = statistics.median(v2v)
    def stage(key, base):
        xs = [t[key] - (t[base] if base else 0) for t in turns if t.get(key) is not None and (base is None or t.get(base) is not None)]
        return f"{statistics.median(xs):.0f}" if xs else "-"
    name = {"ivr": "ivr", "fixed": "fixed 400", "naive": "naive", "llm": "ivr + llm"}[mode]
    print(f"{name:10} turns {len(turns):2}  voice-to-voice p50 {p50[mode]:5.0f} ms  p95 {pct(v2v, 95):5.0f} ms  max {max(v2v):5.0f} ms")
    print(f"{'':10} median after the caller stopped: endpoint {stage('endpoint_ms', None)} ms, transcript {stage('stt_final_ms', None)},"
          f" understood {stage('understood_ms', None)}, first TTS audio {stage('first_tts_audio_ms', None)};"
          f" early STT used in {sum(t['early_stt'] for t in turns)}/{len(turns)}, LLM-worded {sum(t['llm'] for t in turns)}, fillers {sum(t['filler'] for t in turns)}")
print(f"ratio ivr / naive (p50): {p50['ivr'] / p50['naive']:.2f}; goal p50 <= 600 ms: {'met' if p50['ivr'] <= 600 else 'not met'}")
PY
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
python3 scripts/bench_pauses.py "$IVR" ivr="$tmp/default.toml" "fixed 400=$tmp/fixed.toml"
