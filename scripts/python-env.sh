#!/usr/bin/env bash
# The Python peers the comparisons run against (faster-whisper, piper-tts, pipecat-ai's Smart Turn
# analyzer), in the repo's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import faster_whisper, piper, pipecat.audio.turn.smart_turn.local_smart_turn_v3" 2>/dev/null; then
  echo "python-env: installing faster-whisper, piper-tts and pipecat-ai into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --no-cache-dir --disable-pip-version-check faster-whisper==1.2.1 piper-tts==1.8.0 pipecat-ai==1.14.0
fi
