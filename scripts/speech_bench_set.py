#!/usr/bin/env python3
"""The real-voice clips scripts/bench-speech.sh scores recognition on, at 16 kHz and through a phone line.

Two groups of real human recordings:
  - the 37 recordings in audio-fixtures/human (three speakers; the ones the STT settings were first
    tuned on), and
  - a held-out set: every third prompt of Asterisk's English core sounds (Allison, recorded for
    phone systems) that has three or more words and is not among the fixtures, with the
    transcripts the package itself ships (core-sounds-en.txt).
Each clip is written twice: as 16 kHz WAV, and after a G.711 round trip (8 kHz, mu-law, then back
to 16 kHz) as a phone line delivers it. Writes DIR/16k/, DIR/g711/ and a transcripts TSV in each.
Needs sox and asterisk-core-sounds-en(-wav) (scripts/setup.sh installs both).
"""
import gzip
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def clips():
    used = set()
    for line in (REPO / "audio-fixtures/transcripts.tsv").read_text().splitlines()[1:]:
        rel, text = line.split("\t")[:2]
        if rel.startswith("human/"):
            used.add(Path(rel).name.removeprefix("asterisk-"))
            yield REPO / "audio-fixtures" / rel, text, "fixtures"
    candidates = []
    for line in gzip.open(TEXTS, "rt", encoding="utf-8", errors="replace"):
        m = re.match(r"^([a-z0-9-]+): (.+)$", line.strip())
        if not m:
            continue
        name, text = m.groups()
        wav = ALLISON / f"{name}.wav"
        # Words only (no "[beep]" descriptions, no spelled-out options lists with odd symbols).
        if not wav.is_file() or f"{name}.wav" in used or "[" in text or len(text.split()) < 3:
            continue
        candidates.append((wav, text))
    for wav, text in candidates[::3]:
        yield wav, text, "held-out"


def sox(*args):
    subprocess.run(["sox", *map(str, args)], check=True, capture_output=True)


def main():
    out = Path(sys.argv[1])
    for sub in ("16k", "g711"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for src, text, group in clips():
        name = f"{group}-{src.name}"
        sox(src, "-r", "16000", "-c", "1", "-b", "16", out / "16k" / name)
        sox(src, "-r", "8000", "-c", "1", "-e", "u-law", out / "g711" / f"{name}.ul.wav")
        sox(out / "g711" / f"{name}.ul.wav", "-r", "16000", "-e", "signed", "-b", "16", out / "g711" / name)
        (out / "g711" / f"{name}.ul.wav").unlink()
        rows.append((name, text.replace("\t", " ")))
    for sub in ("16k", "g711"):
        with open(out / sub / "transcripts.tsv", "w") as f:
            f.write("file\ttranscript\tsource\n")
            for name, text in rows:
                f.write(f"{name}\t{text}\t\n")
    held = sum(1 for n, _ in rows if n.startswith("held-out"))
    print(f"{len(rows)} clips ({len(rows) - held} fixtures, {held} held out)", file=sys.stderr)


if __name__ == "__main__":
    main()
