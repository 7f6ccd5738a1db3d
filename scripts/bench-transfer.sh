#!/usr/bin/env bash
# Warm transfer on the wire: runs the end-to-end test (a baresip caller asks for a person, the
# server rings a registered baresip agent who keys 1) while tshark captures loopback, then reads
# from the capture what the caller and the agent experience:
#   - the end of the caller's request (the last RTP packet of their speech) to the bot's spoken
#     hand-over ("I'm putting you through...", voice to voice) and to the agent's INVITE, which
#     goes out once that sentence has been said;
#   - the agent's key 1 (its RFC 4733 packet) to the first packet the caller gets from the agent's
#     line (the agent is silent then, so the packet is digital silence; hold audio never is).
# Usage: scripts/bench-transfer.sh [runs]   (needs the set-up of scripts/setup.sh; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp -d)
lscpu | grep -m1 "Model name" || true
for i in $(seq "$runs"); do
  pcap="$out/transfer-$i.pcap"
  IVR_PCAP="$pcap" scripts/sandbox.sh cargo test --release --offline -p ivr --test agents -- --test-threads=1 \
    a_caller_asking_for_a_person_is_warm_transferred_to_a_registered_agent >"$out/test-$i.log" 2>&1 || { echo "run $i failed: $out/test-$i.log"; exit 1; }
  tshark -r "$pcap" -d udp.port==21600-21620,rtp -d udp.port==21500-21520,rtp -T fields -E separator=, \
    -e frame.time_epoch -e udp.srcport -e udp.dstport -e sip.Method -e rtp.p_type -e rtp.payload > "$out/fields-$i.csv" 2>/dev/null
  python3 - "$out/fields-$i.csv" <<'PY'
import sys
rows = [l.rstrip("\n").split(",") for l in open(sys.argv[1])]
def silent(payload):
    b = bytes.fromhex(payload.replace(":", ""))
    return len(b) > 0 and all(x in (0xFF, 0x7F) for x in b)
caller = lambda p: 21600 <= int(p) <= 21620
agent_rtp = lambda p: 21500 <= int(p) <= 21520
invite = next(float(r[0]) for r in rows if r[3] == "INVITE" and r[2] == "15292")
speech = [float(r[0]) for r in rows if r[4] == "0" and caller(r[1]) and r[5] and not silent(r[5]) and float(r[0]) < invite]
key = next(float(r[0]) for r in rows if r[4] == "101" and agent_rtp(r[1]))
bridged = next(float(r[0]) for r in rows if r[4] == "0" and caller(r[2]) and float(r[0]) > key and r[5] and silent(r[5]))
reply = next(float(r[0]) for r in rows if r[4] == "0" and caller(r[2]) and float(r[0]) > speech[-1] and r[5] and not silent(r[5]))
print(f"request end -> bot's hand-over words {1000 * (reply - speech[-1]):.0f} ms -> agent's INVITE {invite - speech[-1]:.2f} s (the words take the rest); "
      f"key 1 -> the caller hears the agent's line {1000 * (bridged - key):.0f} ms")
PY
done
