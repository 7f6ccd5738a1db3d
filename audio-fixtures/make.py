#!/usr/bin/env python3
"""Rebuilds the committed fixtures from Debian packages and espeak-ng (provenance, not run by tests).

Needs: asterisk-core-sounds-en(-wav), pocketsphinx-testdata, alsa-utils, espeak-ng, sox.
Writes human/*.wav (real recordings), generated/*.wav (espeak-ng caller questions), noise/Noise.wav,
and transcripts.tsv (file, transcript, source).
"""
import gzip
import random
import re
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
CARDS = Path("/usr/share/pocketsphinx/test/data/cards")
ALSA = Path("/usr/share/sounds/alsa")

rows = []
(HERE / "human").mkdir(exist_ok=True)
(HERE / "generated").mkdir(exist_ok=True)
(HERE / "noise").mkdir(exist_ok=True)

# Asterisk IVR prompts (a woman's voice, 8 kHz): plain sentences of 4 to 16 words.
text = gzip.open("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz", "rt").read()
candidates = []
for line in text.splitlines():
    m = re.match(r"^([a-z0-9-]+): (.+)$", line)
    if not m:
        continue
    name, words = m.groups()
    if re.search(r"[\[\]<>/…]|\.\.\.|[0-9]", words):
        continue
    if 4 <= len(words.split()) <= 16 and (ASTERISK / f"{name}.wav").exists():
        candidates.append((name, words))
random.Random(7).shuffle(candidates)
for name, words in sorted(candidates[:24]):
    shutil.copy(ASTERISK / f"{name}.wav", HERE / "human" / f"asterisk-{name}.wav")
    rows.append((f"human/asterisk-{name}.wav", words, "asterisk-core-sounds-en (CC-BY-SA-3.0)"))

# Pocketsphinx test cards (a man's voice, 16 kHz).
for line in (CARDS / "cards.transcription").read_text().splitlines():
    m = re.match(r"<s> (.+?)\s+</s> \((\d+)\)", line)
    if m:
        words, n = m.groups()
        shutil.copy(CARDS / f"{n}.wav", HERE / "human" / f"cards-{n}.wav")
        rows.append((f"human/cards-{n}.wav", words, "pocketsphinx-testdata (BSD)"))

# ALSA channel names (48 kHz stereo voice).
for name in ["Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left", "Side_Right"]:
    shutil.copy(ALSA / f"{name}.wav", HERE / "human" / f"alsa-{name}.wav")
    rows.append((f"human/alsa-{name}.wav", name.replace("_", " "), "alsa-utils (GPL-2)"))
shutil.copy(ALSA / "Noise.wav", HERE / "noise" / "Noise.wav")
rows.append(("noise/Noise.wav", "", "alsa-utils (GPL-2): no speech"))

# Generated caller questions, 8 kHz like a phone line.
questions = [
    "What are your opening hours on Saturday?",
    "Where is my order? The number is four one two three four five six seven.",
    "I would like to return a pair of headphones.",
    "How long does express delivery take?",
    "Can I talk to a person please?",
    "My smart home hub is offline.",
    "How many reward points do I have?",
    "I want to cancel my order.",
]
for i, q in enumerate(questions, 1):
    out = HERE / "generated" / f"espeak-question-{i:02}.wav"
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(raw), q], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True)
    raw.unlink()
    rows.append((f"generated/{out.name}", q, "espeak-ng en-us, 8 kHz"))

# A Mandarin caller (espeak-ng's pinyin voice reads Chinese characters as Mandarin; plain "cmn" does not).
zh = HERE / "generated" / "espeak-zh-01.wav"
subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-w", str(zh), "你好，请问我的订单什么时候到？"], check=True)
rows.append((f"generated/{zh.name}", "你好，请问我的订单什么时候到？", "espeak-ng cmn-latn-pinyin"))

with open(HERE / "transcripts.tsv", "w") as f:
    f.write("file\ttranscript\tsource\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
print(f"{len(rows)} fixtures")
