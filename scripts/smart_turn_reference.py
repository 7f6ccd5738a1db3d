#!/usr/bin/env python3
"""Smart Turn's reference: pipecat-ai's own LocalSmartTurnAnalyzerV3 on WAV files (16 kHz mono).

Prints one JSON line per file ({"file", "probability"}), as `ivr bench turn` does, so the two
can be compared clip by clip. Runs in the repo's .venv (scripts/python-env.sh installs pipecat-ai).
"""
import json
import sys
import wave

import numpy as np
from loguru import logger

logger.remove()  # pipecat logs every load and prediction
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3  # noqa: E402

analyzer = LocalSmartTurnAnalyzerV3(cpu_count=1)
for path in sys.argv[1:]:
    with wave.open(path) as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: need 16 kHz mono 16-bit WAV")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = pcm.astype(np.float32) / 32768.0
    result = analyzer._predict_endpoint(audio)
    print(json.dumps({"file": path, "probability": result["probability"]}), flush=True)
