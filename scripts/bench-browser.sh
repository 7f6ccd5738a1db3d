#!/usr/bin/env bash
# Voice to voice of a browser call next to a phone call's, as each caller experiences it: runs the
# end-to-end test that asks the same question from headless Chromium (WebRTC, Opus) and from
# baresip (SIP, G.711) on one server, one call after the other, and collects its report: from
# the end of the caller's question in what their microphone sent to the start of the answer in
# what they heard (the page records both on one Web Audio clock; baresip writes both directions),
# and the server's own measure of the same turn (the store's stages).
# Usage: scripts/bench-browser.sh [runs]   (needs the set-up of scripts/setup.sh; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=$(mktemp -d)
lscpu | grep -m1 "Model name" || true
for i in $(seq "$runs"); do
  scripts/sandbox.sh cargo test --release --offline -p ivr --test browser_calls -- --test-threads=1 \
    voice_to_voice_of_a_browser_call_next_to_a_phone_call >"$out/test-$i.log" 2>&1 || { echo "run $i failed: $out/test-$i.log"; exit 1; }
  cat target/test-artifacts/voice-to-voice-browser-vs-phone.json; echo
done
