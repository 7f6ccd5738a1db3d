#!/usr/bin/env bash
# Load benchmark (not a test): sipp places CALLS concurrent calls (default 200) to `ivr serve`,
# each streaming a recorded caller question as PCMU RTP for about 20 s, then hanging up. Prints
# failed calls, the server's CPU time and peak RSS, and the share of outbound frames sent more than
# 10 ms late. Runs on loopback inside a network namespace.
# The caller's line is streamed for the whole call; NOISE=0.01 adds pink noise of that amplitude
# (about -40 dBFS, an office line) under it, so the VAD cannot skip the caller's silences.
# EXTRA_TOML is added to the server's config (e.g. a [session] section to compare settings).
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${CALLS:-200}
IVR=target/release/ivr
[ -x "$IVR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v sipp >/dev/null || { echo "sipp is missing: run scripts/setup.sh" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/q.wav" "How long does standard delivery take?"
sox "$tmp/q.wav" -r 8000 -c 1 "$tmp/q8.wav"
sox -n -r 8000 -c 1 "$tmp/pad.wav" trim 0 6
sox -n -r 8000 -c 1 "$tmp/tail.wav" trim 0 12
sox "$tmp/pad.wav" "$tmp/q8.wav" "$tmp/tail.wav" "$tmp/line.wav"
if [ "${NOISE:-0}" != "0" ]; then
  secs=$(soxi -D "$tmp/line.wav")
  sox -n -r 8000 -c 1 "$tmp/noise.wav" synth "$secs" pinknoise vol "$NOISE"
  sox -m -v 1 "$tmp/line.wav" -v 1 "$tmp/noise.wav" "$tmp/mixed.wav"
  mv "$tmp/mixed.wav" "$tmp/line.wav"
fi
sox "$tmp/line.wav" -t ul "$tmp/q.ulaw"
sed -e "s#\[caller\]#+4930111222#" -e "s#\[question\]#$tmp/q.ulaw#" -e "s#\[listen_ms\]#20000#" sip-bridge/tests/sipp/call-question.xml > "$tmp/call.xml"
cat > "$tmp/ivr.toml" <<TOML
[stt]
threads = ${STT_THREADS:-2}
workers = ${STT_WORKERS:-2}
[llm]
url = "http://127.0.0.1:18690"
[sip]
max_calls = $((CALLS + 10))
invites_per_sec = 1000.0
[records]
url = "sqlite://$tmp/calls.db"
dir = "$tmp/audio"
${EXTRA_TOML:-}
TOML
cat > "$tmp/run.sh" <<SH
set -e
ip link set lo up
$IVR --config $tmp/ivr.toml serve --http 127.0.0.1:18680 --sip 127.0.0.1:15660 2> $tmp/serve.err &
pid=\$!
for i in \$(seq 1 240); do curl -sf 127.0.0.1:18680/healthz > /dev/null && break; sleep 0.5; done
cpu0=\$(awk '{print \$14+\$15}' /proc/\$pid/stat)
t0=\$(date +%s.%N)
sipp 127.0.0.1:15660 -sf $tmp/call.xml -m $CALLS -l $CALLS -r 20 -i 127.0.0.1 -p 15661 -mp 20000 \
  -timeout 180s -nostdin -trace_stat -stf $tmp/stat.csv > $tmp/sipp.out 2>&1 || true
t1=\$(date +%s.%N)
sleep 3
cpu1=\$(awk '{print \$14+\$15}' /proc/\$pid/stat)
echo "wall_s \$(echo "\$t1 - \$t0" | bc)"
echo "cpu_s \$(echo "(\$cpu1 - \$cpu0) / \$(getconf CLK_TCK)" | bc -l)"
grep VmHWM /proc/\$pid/status
curl -s 127.0.0.1:18680/metrics | grep '^ivr_tick_seconds_bucket' > $tmp/tick.txt || true
curl -s 127.0.0.1:18680/healthz
echo
kill \$pid
SH
out=$(unshare -n bash "$tmp/run.sh")
echo "$out" | head -3
health=$(echo "$out" | tail -1)
successful=$(grep -E "Successful call" "$tmp/sipp.out" | awk -F'|' '{print $3}' | tr -d ' ')
failed=$(grep -E "Failed call" "$tmp/sipp.out" | awk -F'|' '{print $3}' | tr -d ' ')
"$IVR" --config "$tmp/ivr.toml" records export > "$tmp/calls.jsonl"
records=$(wc -l < "$tmp/calls.jsonl" 2>/dev/null || echo 0)
python3 - "$health" "$CALLS" "${successful:-?}" "${failed:-?}" "$records" "$tmp/calls.jsonl" <<'PY'
import json, os, sys
h = json.loads(sys.argv[1])["sip"]
calls, ok, failed, records, path = sys.argv[2:7]
answered, v2v = 0, []
for line in open(path) if os.path.exists(path) else []:
    r = json.loads(line)
    answered += any("3 to 5 business days" in t["text"] for t in r["transcript"] if t["who"] == "bot")
    v2v += r["voice_to_voice_ms"]
v2v.sort()
pct = lambda p: v2v[min(len(v2v) - 1, int(p * len(v2v)))] if v2v else None
late = h["frames_late"] / max(h["frames_out"], 1)
print(f"calls {calls} (line noise {os.environ.get('NOISE', '0')}): successful {ok}, failed {failed}; call records written {records}")
print(f"outbound frames {h['frames_out']}, late (>10 ms) {h['frames_late']} = {100 * late:.2f}%")
print(f"calls answered with the delivery time: {answered}; voice-to-voice p50 {pct(0.5)} ms, p95 {pct(0.95)} ms")
PY
# Where late frames come from: ticks that woke late (the machine's scheduling) and ticks whose own
# work was long (the call's cost), from the server's ivr_tick_seconds histogram.
python3 - "$tmp/tick.txt" <<'PY'
import re, sys
buckets = {}
for line in open(sys.argv[1]):
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    if "part" in labels and "le" in labels:
        buckets.setdefault(labels["part"], {})[labels["le"]] = int(line.split()[-1])
for part in ("wake", "work"):
    b = buckets.get(part, {})
    total = b.get("+Inf", 0)
    if total:
        over = lambda le: total - b.get(le, total)
        print(f"ticks {total}: {part} over 10 ms {over('0.01')} ({100 * over('0.01') / total:.2f}%), over 100 ms {over('0.1')}")
PY
