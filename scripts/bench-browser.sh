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
  tshark -r "$pcap" --enable-heuristic rtp_udp -T fields -E separator=, \
    -e frame.time_epoch -e udp.srcport -e udp.dstport -e udp.length -e stun.type -e rtp.p_type -e rtp.payload > "$out/fields-$i.csv" 2>/dev/null
  python3 - "$out/fields-$i.csv" <<'PY'
import sys
rows = [l.rstrip("\n").split(",") for l in open(sys.argv[1])]
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

# The browser: the server's media port is where the browser's STUN binding requests go.
stun = [r for r in rows if r[4] == "0x0001"]
server_port = stun[0][2]
srtp = [r for r in rows if r[5] == "111" and server_port in (r[1], r[2])]
opus = lambda r: int(r[3]) - 8 - 12 - 10  # UDP length - UDP header - RTP header - SRTP tag
up = [r for r in srtp if r[2] == server_port]
down = [r for r in srtp if r[1] == server_port]
browser = voice_to_voice(up, down, lambda r: opus(r) > 40, lambda r: opus(r) > 40)
# The phone: baresip's RTP port 21900 (G.711 PCMU, payload type 0).
phone_up = [r for r in rows if r[5] == "0" and r[1] == "21900" and r[6]]
phone_down = [r for r in rows if r[5] == "0" and r[2] == "21900" and r[6]]
phone = voice_to_voice(phone_up, phone_down, lambda r: not silent(r[6]), lambda r: not silent(r[6]))
print(f"on the wire: browser {browser:.0f} ms, phone {phone:.0f} ms (question's last speech packet -> answer's first)")
PY
done
