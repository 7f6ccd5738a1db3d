#!/usr/bin/env bash
# Voice to voice of a browser call next to a phone call's: runs the end-to-end test that asks the
# same question from headless Chromium (WebRTC, Opus) and from baresip (SIP, G.711) on one server,
# one call after the other, with tshark capturing loopback, and reports for each call:
#   - as the caller experiences it (the test's report): from the end of the question in what the
#     caller's microphone sent to the start of the answer in what they heard, on one clock (the
#     page records both with Web Audio; baresip writes both directions), and the server's own
#     measure of the same turn (the store's stages);
#   - on the wire: the caller's last speech packet of the question to the server's first answer
#     packet. SRTP hides the browser's audio but not its size: Opus speech packets are large and
#     silence ones small; G.711 silence is read from the payload as in bench-transfer.sh.
# Usage: scripts/bench-browser.sh [runs]   (needs the set-up of scripts/setup.sh; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp -d)
lscpu | grep -m1 "Model name" || true
for i in $(seq "$runs"); do
  pcap="$out/browser-$i.pcap"
  IVR_PCAP="$pcap" scripts/sandbox.sh cargo test --release --offline -p ivr --test browser_calls -- --test-threads=1 \
    voice_to_voice_of_a_browser_call_next_to_a_phone_call >"$out/test-$i.log" 2>&1 || { echo "run $i failed: $out/test-$i.log"; exit 1; }
  echo "caller-experienced: $(cat target/test-artifacts/voice-to-voice-browser-vs-phone.json)"
  tshark -r "$pcap" -T fields -E separator=, -e frame.time_epoch -e udp.srcport -e udp.dstport -e udp.length -e udp.payload \
    2>/dev/null | cut -c1-80 > "$out/udp-$i.csv"
  tshark -r "$pcap" -d udp.port==21900-21920,rtp -T fields -E separator=, -e frame.time_epoch -e udp.srcport -e udp.dstport -e rtp.p_type -e rtp.payload \
    > "$out/phone-$i.csv" 2>/dev/null
  python3 - "$out/udp-$i.csv" "$out/phone-$i.csv" <<'PY'
import sys
udp = [l.rstrip("\n").split(",") for l in open(sys.argv[1])]
phone_rows = [l.rstrip("\n").split(",") for l in open(sys.argv[2])]

def silent(payload):
    b = bytes.fromhex(payload.replace(":", ""))
    return len(b) > 0 and all(x in (0xFF, 0x7F) for x in b)

def voice_to_voice(up, down, speech_up, speech_down):
    """The question: the longest run of speech packets upstream; then the first speech packet
    downstream after its last one."""
    ups = [float(r[0]) for r in up if speech_up(r)]
    runs, start = [], 0
    for k in range(1, len(ups) + 1):
        if k == len(ups) or ups[k] - ups[k - 1] > 0.5:
            runs.append((start, k - 1)); start = k
    q = max(runs, key=lambda r: ups[r[1]] - ups[r[0]])
    end = ups[q[1]]
    answer = next(float(r[0]) for r in down if float(r[0]) > end and speech_down(r))
    return 1000 * (answer - end)

# The browser: the server's media port is where the browser's STUN binding requests (0x0001)
# go; its SRTP packets are RTP version 2 with payload type 111 (Opus) in the clear header. Opus
# at these rates makes silence packets of 74-83 UDP bytes and speech ones of 120-140.
server_port = next(r[2] for r in udp if len(r) > 4 and r[4].startswith("0001"))
def opus(r):
    if len(r) < 5 or len(r[4]) < 4:
        return False
    b0, b1 = int(r[4][0:2], 16), int(r[4][2:4], 16)
    return b0 >> 6 == 2 and b1 & 0x7F == 111
up = [r for r in udp if r[2] == server_port and opus(r)]
down = [r for r in udp if r[1] == server_port and opus(r)]
loud = lambda r: int(r[3]) > 100
browser = voice_to_voice(up, down, loud, loud)
# The phone: baresip's RTP ports 21900-21920 (G.711 PCMU, payload type 0).
baresip = lambda p: 21900 <= int(p) <= 21920
phone_up = [r for r in phone_rows if r[3] == "0" and baresip(r[1]) and r[4]]
phone_down = [r for r in phone_rows if r[3] == "0" and baresip(r[2]) and r[4]]
phone = voice_to_voice(phone_up, phone_down, lambda r: not silent(r[4]), lambda r: not silent(r[4]))
print(f"on the wire: browser {browser:.0f} ms, phone {phone:.0f} ms (the question's last speech packet -> the answer's first)")
PY
done
