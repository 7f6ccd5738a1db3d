#!/usr/bin/env bash
# Latency on the wire against the simulator, on the same audio (not a test).
# sipp calls `ivr serve` RUNS times (default 3), one call at a time, streaming a caller line as PCMU
# RTP: questions in the Piper voice and espeak-ng, one said over the greeting and two over an
# answer (barge-in), the others after the answer is over. tshark captures the loopback; scripts/wire_timing.py reads the packets:
#   voice-to-voice  the caller's last speech packet -> the bot's first reply packet
#   barge-in stop   the caller's first speech packet over the bot -> the bot's audio stopping
# Then `ivr simulate` runs the same line (decoded from the same G.711 file) and the same analysis
# reads its recording. Prints both, per turn and as medians, and the CPU. Runs in a network
# namespace, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
IVR=target/release/ivr
[ -x "$IVR" ] || { echo "build first: cargo build --release" >&2; exit 1; }
for c in sipp tshark sox espeak-ng; do command -v $c >/dev/null || { echo "$c is missing: run scripts/setup.sh" >&2; exit 1; }; done
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap '[ -n "${KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"' EXIT
CONFIG=${CONFIG:-}
[ -n "$CONFIG" ] || { CONFIG="$tmp/ivr.toml"; : > "$CONFIG"; }

# The caller's line (8 kHz): PART=SECONDS of silence, or VOICE:TEXT (the words in that voice).
line=(
  "1.8" "piper:Sorry, how long does standard delivery take?" "14"
  "espeak:What payment methods do you take?" "14"
  "piper:How many days do I have to send something back?" "2.5"
  "piper:Where are your stores?" "14"
  "piper:Can I pay with a gift card?" "14"
  "piper:Can I return headphones I have opened?" "2.5"
  "espeak:What are your opening hours on Saturday?" "14"
)
parts=(); i=0
for p in "${line[@]}"; do
  i=$((i + 1)); f="$tmp/part$i.wav"
  case "$p" in
    piper:*) "$IVR" say "${p#piper:}" -o "$tmp/raw.wav" >/dev/null 2>&1; sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$f" ;;
    espeak:*) espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "${p#espeak:}"; sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$f" ;;
    *) sox -n -r 8000 -c 1 -b 16 "$f" trim 0 "$p" ;;
  esac
  parts+=("$f")
done
sox "${parts[@]}" -t ul "$tmp/line.ulaw"
secs=$(python3 -c "import os; print(os.path.getsize('$tmp/line.ulaw') / 8000)")
# The simulator hears the same G.711 bytes, decoded.
sox -t ul -r 8000 -c 1 "$tmp/line.ulaw" -r 16000 -b 16 "$tmp/line16.wav"
listen_ms=$(python3 -c "print(int($secs * 1000) + 1000)")
sed -e "s#\[caller\]#+4930111222#" -e "s#\[question\]#$tmp/line.ulaw#" -e "s#\[listen_ms\]#$listen_ms#" sip-bridge/tests/sipp/call-question.xml > "$tmp/call.xml"
cp "$CONFIG" "$tmp/serve.toml"
# The simulator speaks without the LLM (unless asked); so does the server here (nothing listens at
# that address, so the fixed words are spoken, as in the simulator).
cat >> "$tmp/serve.toml" <<TOML

[llm]
backend = "openai"
url = "http://127.0.0.1:18790"
[records]
url = "sqlite://$tmp/calls.db"
dir = "$tmp/audio"
TOML

cat > "$tmp/run.sh" <<SH
set -e
ip link set lo up
cleanup() { kill \$tshark \$ivr 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
$IVR --config $tmp/serve.toml serve --http 127.0.0.1:18780 --sip 127.0.0.1:15760 2> $tmp/serve.err &
ivr=\$!
for i in \$(seq 1 240); do curl -sf 127.0.0.1:18780/healthz > /dev/null && break; sleep 0.5; done
tshark -q -i lo -f "udp and not port 15760" -F pcap -w $tmp/cap.pcap 2> $tmp/tshark.err &
tshark=\$!
for i in \$(seq 1 100); do grep -q Capturing $tmp/tshark.err 2>/dev/null && break; sleep 0.1; done
sleep 0.5
sipp 127.0.0.1:15760 -sf $tmp/call.xml -m $RUNS -l 1 -i 127.0.0.1 -p 15761 -mp 20000 \
  -timeout 600s -nostdin > $tmp/sipp.out 2>&1 \\
  || echo "sipp: \$(grep -c 'unexpected BYE' $tmp/sipp.out || true) of $RUNS calls ended by the bot first (its goodbye after the caller's silence); other failures: \$(grep -c 'Aborting' $tmp/sipp.out | awk '{print \$1}') aborts in all"
sleep 1
SH
unshare -n bash "$tmp/run.sh"
python3 scripts/wire_timing.py --pcap "$tmp/cap.pcap" --caller-ports 20000-20999 > "$tmp/wire.json"
"$IVR" --config "$CONFIG" simulate "$tmp/line16.wav" -o "$tmp/sim.wav" --json 2>/dev/null | tail -1 > "$tmp/sim-record.json"
python3 scripts/wire_timing.py --wav "$tmp/sim.wav" > "$tmp/sim.json"

python3 - "$tmp/wire.json" "$tmp/sim.json" "$RUNS" <<'PY'
import json, statistics, sys
wire, sim, runs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def show(name, xs):
    ok = [x for x in xs if x is not None]
    return f"{name}: p50 {med(ok)} ms, max {max(ok) if ok else None} ms ({len(ok)}/{len(xs)})"
sim_v2v = [t["v2v_ms"] for t in sim["turns"]]
sim_stop = [b["stop_ms"] for b in sim["barge_ins"]]
wire_v2v = [t["v2v_ms"] for t in wire["turns"]]
wire_stop = [b["stop_ms"] for b in wire["barge_ins"]]
print(f"simulated, one call: {len(sim_v2v)} caller turns, {len(sim_stop)} over the bot")
print(f"  turn ends (s): {[t['end'] for t in sim['turns']]}")
print(f"  voice-to-voice (ms): {sim_v2v}; barge-in stop (ms): {sim_stop}")
print(f"wire, {runs} calls: {len(wire_v2v)} caller turns, {len(wire_stop)} over the bot")
print(f"  voice-to-voice (ms): {wire_v2v}; barge-in stop (ms): {wire_stop}")
print("voice-to-voice  " + show("wire", wire_v2v) + "; " + show("simulated", sim_v2v))
print("barge-in stop   " + show("wire", wire_stop) + "; " + show("simulated", sim_stop))
# The same turn of each wire call against the simulator's (the calls are the same line).
per_call = len(sim_v2v)
if per_call and len(wire_v2v) == per_call * runs:
    d = [w - s for k in range(runs) for w, s in zip(wire_v2v[k * per_call:(k + 1) * per_call], sim_v2v) if w is not None and s is not None]
    print(f"voice-to-voice, wire - simulated, turn by turn: p50 {med(d):+.0f} ms, range {min(d):+.0f}..{max(d):+.0f} ms ({len(d)} turns)")
w, s = med(wire_v2v), med(sim_v2v)
if w is not None and s is not None:
    print(f"wire - simulated (p50): voice-to-voice {w - s:+.0f} ms", end="")
    ws, ss = med(wire_stop), med(sim_stop)
    print(f", barge-in stop {ws - ss:+.0f} ms" if ws is not None and ss is not None else "")
PY
"$IVR" --config "$tmp/serve.toml" records export > "$tmp/calls.jsonl"
grep -h '"who"' "$tmp/calls.jsonl" > /dev/null 2>&1 && python3 - "$tmp/calls.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("wire call heard:", " | ".join(f"{t['who']}: {t['text']}" for t in r["transcript"])[:400])
PY
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
