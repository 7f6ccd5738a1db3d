#!/usr/bin/env python3
"""Turn-taking on the pause set (audio-fixtures/pauses), for scripts/bench-latency.sh.

Each clip becomes a call: 6.5 s for the greeting, the caller's turn, silence for the answer. The
call runs through `ivr simulate` (real models, each job as long as it takes here) once per config
given as NAME=CONFIG.toml. Per config it prints:
  premature   paused clips the bot started answering aloud inside a mid-sentence pause (the
              caller is cut off), and endpoints placed in a pause (of those, the ones the session
              took back when the caller went on)
  delay       on the complete clips: end-of-turn delay (caller's last word -> turn ended) and
              voice-to-voice (last word -> first reply audio), p50 and p95
Usage: bench_pauses.py IVR NAME=CONFIG [NAME=CONFIG ...]
"""
import json
import statistics
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LEAD = 6.5


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ivr, configs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    clips = tomllib.loads((REPO / "audio-fixtures/pauses/pauses.toml").read_text())["clip"]
    tmp = Path(tempfile.mkdtemp())
    calls = {}
    for c in clips:
        wav = tmp / c["file"].replace(".flac", ".wav")
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", tmp / "lead.wav", "trim", "0", str(LEAD)], check=True)
        subprocess.run(["sox", tmp / "lead.wav", REPO / "audio-fixtures/pauses" / c["file"], "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
        calls[c["file"]] = wav
    for name, config in configs:
        premature_audio, premature_end, rejoined, paused = 0, 0, 0, 0
        delays, v2v, cut = [], [], []
        for c in clips:
            out = subprocess.run([ivr, "--config", config, "simulate", str(calls[c["file"]]), "--json", "--tail-secs", "4"],
                                 capture_output=True, text=True, check=True).stdout
            rec = json.loads(out.strip().splitlines()[-1])
            words_end = LEAD + c["words_end"]
            pauses = [(LEAD + a, LEAD + b) for a, b in c["pauses"]]
            turns = rec["latency"]
            if c["kind"] == "paused":
                paused += 1
                # Turns that ended inside a pause: the caller was not done.
                early = [t for t in turns if any(a - 0.05 <= t["speech_end_secs"] <= b for a, b in pauses)]
                spoke = [t for t in early if t["voice_to_voice_ms"] is not None and t["speech_end_secs"] + t["voice_to_voice_ms"] / 1000 < words_end]
                premature_end += bool(early) or any(t.get("rejoined") for t in turns)
                premature_audio += bool(spoke)
                if spoke:
                    cut.append(c["file"][:-5])
                rejoined += any(t.get("rejoined") for t in turns)
            else:
                last = [t for t in turns if t["speech_end_secs"] >= words_end - 0.3]
                if last and last[0]["voice_to_voice_ms"] is not None:
                    delays.append(last[0]["endpoint_ms"])
                    v2v.append(last[0]["voice_to_voice_ms"])
        n_complete = sum(1 for c in clips if c["kind"] == "complete")
        print(f"{name:10} answered in a pause: {' '.join(cut) or 'none'}")
        print(f"{name:10} pause set: {paused} paused turns: answered aloud in a pause {premature_audio} ({100 * premature_audio / paused:.0f}%), "
              f"turn ended in a pause {premature_end} ({100 * premature_end / paused:.0f}%; {rejoined} taken back when the caller went on)")
        print(f"{'':10} {n_complete} complete turns ({len(v2v)} answered): end-of-turn delay p50 {statistics.median(delays):.0f} ms p95 {pct(delays, 95):.0f} ms;"
              f" voice-to-voice p50 {statistics.median(v2v):.0f} ms p95 {pct(v2v, 95):.0f} ms")


if __name__ == "__main__":
    main()
