#!/usr/bin/env bash
# Rebuilds the caller recordings of whole calls (provenance; tests use the committed files).
# Each call is the caller's side only: turns spoken by espeak-ng, by the project's Piper voice
# (`ivr say`), or taken from real human recordings (Asterisk's Allison voice, CC-BY-SA-3.0),
# separated by silences long enough for the bot's replies. Written as 8 kHz FLAC (phone audio;
# the silences cost nothing). Needs: espeak-ng, sox, asterisk-core-sounds-en-wav, a built `ivr`.
set -euo pipefail
cd "$(dirname "$0")"
IVR=${IVR:-../../target/release/ivr}
ALLISON=/usr/share/asterisk/sounds/en_US_f_Allison
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0

# Helpers: each appends one piece (8 kHz mono) to the list of parts of the current call.
parts=()
# The next part's file name (not in a subshell, so the counter advances).
piece() { n=$((n + 1)); f="$tmp/$n.wav"; }
espeak() { local f; piece; espeak-ng -v en-us -s 150 -w "$tmp/raw.wav" "$1"; sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$f"; parts+=("$f"); }
piper() { local f; piece; "$IVR" say "$1" -o "$tmp/raw.wav" >/dev/null 2>&1; sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$f"; parts+=("$f"); }
human() { local f; piece; sox "$ALLISON/$1" -r 8000 -c 1 -b 16 "$f"; parts+=("$f"); }
# Allison reads digits one by one, a short breath apart.
digits() { local d; for d in $(echo "$1" | grep -o .); do human "digits/$d.wav"; pause 0.12; done; }
pause() { local f; piece; sox -n -r 8000 -c 1 -b 16 "$f" trim 0 "$1"; parts+=("$f"); }
call() { sox "${parts[@]}" "$1.flac"; parts=(); echo "$1.flac: $(soxi -D "$1.flac") s"; }

# 1. Order status by voice (espeak-ng), then goodbye.
pause 6.5; espeak "Where is my order?"; pause 6; espeak "It is 4 1 2 3 4 5 6 7"; pause 6
espeak "1 0 1 1 5"; pause 14; espeak "Thanks, that's all. Goodbye."; pause 1
call order-status-espeak

# 2. A return question, then a request for a person (Piper).
pause 6.5; piper "I'd like to return a pair of headphones I bought last week."; pause 12
piper "Can I talk to a person please?"; pause 1
call returns-then-person-piper

# 3. Two delivery questions and goodbye (Piper).
pause 6.5; piper "How much does express delivery cost?"; pause 10
piper "Will you carry a washing machine into my flat?"; pause 14
piper "Okay, that's all I needed. Bye."; pause 1
call delivery-questions-piper

# 4. Order status with the numbers read by a real human voice.
pause 6.5; piper "Where is my order?"; pause 6; digits 41234567; pause 6; digits 10115; pause 14
human goodbye.wav; pause 1
call order-status-human-digits

# 5. A damaged delivery, said angrily (Piper: espeak-ng's reading of it was heard as "My new teamy
# Orion broken, a green-in-smash" on one CPU and correctly on another, too close to call).
pause 6.5; piper "My new TV arrived broken, the screen is smashed. This is unacceptable!"; pause 1
call damaged-delivery-piper

# 6. Reward points, verified by keypad (the keys are given to `ivr simulate --keys`).
pause 6.5; piper "How many reward points do I have?"; pause 24; piper "Thank you, goodbye."; pause 1
call reward-points-keypad-piper

# 7. Small talk and a tool answer, for a run with the local LLM (`ivr simulate --llm`).
pause 6.5; piper "Hi there, how are you doing today?"; pause 8; piper "Are you open right now?"; pause 12
piper "Great, thanks. Bye."; pause 1
call small-talk-llm-piper
