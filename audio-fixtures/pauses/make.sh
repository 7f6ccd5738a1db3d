#!/usr/bin/env bash
# Rebuilds the pause set (provenance; tests and benchmarks use the committed files): single caller
# turns, each 0.5 s of silence, the turn, 3 s of silence, as 8 kHz FLAC (phone audio).
#   paused    the caller stops in mid-sentence (a hesitation, a list, a number read in groups) for
#             0.3-2 s and goes on: ending the turn in such a pause is a premature end
#   complete  turns of many shapes (questions, statements, short answers) that are over when the
#             words stop: how soon the bot answers them is the end-of-turn delay
# Voices: the project's Piper voice (`ivr say`), espeak-ng in three voices (SSML breaks keep the
# sentence's intonation across the pause), and a real human voice (Asterisk's Allison, CC-BY-SA-3.0,
# from phrases recorded to be joined). "|" in a text marks a pause; its length follows the text.
# Writes pauses.toml: for each clip its words, the pauses and where the words end (seconds).
# Needs: espeak-ng, sox, asterisk-core-sounds-en-wav, a built `ivr`.
set -euo pipefail
cd "$(dirname "$0")"
IVR=${IVR:-../../target/release/ivr}
ALLISON=/usr/share/asterisk/sounds/en_US_f_Allison
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f ./*.flac
labels=pauses.toml
cat > "$labels" <<'TOML'
# Made by make.sh. Each clip is one caller turn: `pauses` are the silences inside it (start, end in
# seconds from the clip's start), `words_end` is where its last word ends; `kind` is "paused" (the
# turn must not end in a pause) or "complete".
TOML

# A piece of speech (8 kHz mono, silence trimmed from both ends) in $tmp/piece.wav.
trim() { sox "$1" -r 8000 -c 1 -b 16 "$tmp/piece.wav" silence 1 0.01 0.3% reverse silence 1 0.01 0.3% reverse; }
say_piper() { "$IVR" say "$1" -o "$tmp/raw.wav" >/dev/null 2>&1; trim "$tmp/raw.wav"; }
say_espeak() { espeak-ng -v "$1" -s 150 -w "$tmp/raw.wav" "$2"; trim "$tmp/raw.wav"; }
say_human() { local f parts=(); for f in "$@"; do parts+=("$ALLISON/$f.wav"); done; sox "${parts[@]}" -r 8000 -c 1 -b 16 "$tmp/raw.wav"; trim "$tmp/raw.wav"; }
silence() { sox -n -r 8000 -c 1 -b 16 "$tmp/sil-$1.wav" trim 0 "$1"; echo "$tmp/sil-$1.wav"; }
dur() { soxi -D "$1"; }

# clip NAME KIND VOICE TEXT PAUSES... : speaks TEXT's parts (split at "|") in VOICE with the
# given pauses between them. VOICE: piper, espeak:<voice>, human (parts name Allison's files).
clip() {
  local name=$1 kind=$2 voice=$3 text=$4; shift 4
  local pauses=("$@") files=() t=0.5 i=0 spans=() part
  files+=("$(silence 0.5)")
  IFS='|' read -r -a parts <<< "$text"
  for part in "${parts[@]}"; do
    part=$(echo "$part" | sed 's/^ *//; s/ *$//')
    case $voice in
      piper) say_piper "$part" ;;
      espeak:*) say_espeak "${voice#espeak:}" "$part" ;;
      human) say_human $part ;;
    esac
    cp "$tmp/piece.wav" "$tmp/$name-$i.wav"; files+=("$tmp/$name-$i.wav")
    t=$(python3 -c "print(round($t + $(dur "$tmp/piece.wav"), 3))")
    if [ "$i" -lt "${#pauses[@]}" ]; then
      local p=${pauses[$i]}
      files+=("$(silence "$p")")
      spans+=("[$t, $(python3 -c "print(round($t + $p, 3))")]")
      t=$(python3 -c "print(round($t + $p, 3))")
    fi
    i=$((i + 1))
  done
  files+=("$(silence 3)")
  sox "${files[@]}" "$name.flac"
  local joined; joined=$(IFS=,; echo "${spans[*]:-}")
  printf '\n[[clip]]\nfile = "%s.flac"\nkind = "%s"\nvoice = "%s"\ntext = "%s"\npauses = [%s]\nwords_end = %s\n' \
    "$name" "$kind" "$voice" "$text" "$joined" "$t" >> "$labels"
  echo "$name.flac: $kind, $(dur "$name.flac") s" >&2
}

# --- paused: hesitations, lists, numbers in groups ----------------------------------------------
clip p01 paused piper "I want to return, | some headphones that I opened." 1.0
clip p02 paused piper "I'd like to know, um, | how long the delivery takes." 0.8
clip p03 paused piper "My order number is | 4 1 2 3, | 4 5 6 7." 1.2 0.9
clip p04 paused piper "I ordered a kettle, | a toaster, | and a blender." 0.7 0.6
clip p05 paused piper "Could you tell me, | whether the store in Berlin is open on Sunday?" 1.5
clip p06 paused piper "The thing is, | my parcel never arrived." 2.0
clip p07 paused espeak:en-us "I was wondering if | you could help me with my bill." 0.6
clip p08 paused espeak:en-us "My postcode is | 1 0 1 | 1 5." 1.0 0.8
clip p09 paused espeak:en-gb+f3 "So I bought a washing machine | and it still has not been delivered." 1.2
clip p10 paused espeak:en-gb+f3 "Can I change the address | for my delivery?" 0.5
clip p11 paused espeak:en-us+m3 "I need to cancel | the order I made yesterday." 0.9
clip p12 paused espeak:en-us+m3 "Hello, yes, I am calling because | my TV has a problem." 1.6
clip p13 paused piper "How much is | express delivery?" 0.4
clip p14 paused piper "I would like to speak about, | well, | a refund." 0.9 0.7
clip p15 paused espeak:en-gb+f3 "The number is | 4 2 0 0, | 0 1 1 1." 1.1 1.3
clip p16 paused human "vm-youhave | digits/3 vm-messages" 0.8
clip p17 paused human "digits/4 digits/1 digits/2 digits/3 | digits/4 digits/5 digits/6 digits/7" 1.0
clip p18 paused human "your | telephone-number" 0.6
clip p19 paused piper "It's about my order, | the one with the | smart speaker." 0.7 1.0
clip p20 paused espeak:en-us "What time do you | open tomorrow?" 0.3
clip p21 paused piper "Do you have, | uh, | a store near Hamburg?" 0.6 1.2
clip p22 paused espeak:en-us+m3 "I paid with a gift card | and I want my money back." 1.8
clip p23 paused piper "Hello. | I have a question about my bill." 0.4
clip p24 paused espeak:en-us "Hi, | I'm calling about a delivery." 0.5
# --- complete: when the words stop, the turn is over --------------------------------------------
clip c01 complete piper "How long does standard delivery take?"
clip c02 complete piper "I want to talk to a person."
clip c03 complete piper "Yes, please."
clip c04 complete piper "No, thanks, that's all."
clip c05 complete piper "Where is my order?"
clip c06 complete piper "My parcel arrived damaged."
clip c07 complete espeak:en-us "What are your opening hours on Saturday?"
clip c08 complete espeak:en-us "Goodbye."
clip c09 complete espeak:en-gb+f3 "Can I return headphones I have opened?"
clip c10 complete espeak:en-gb+f3 "I would like to cancel my order."
clip c11 complete espeak:en-us+m3 "How many reward points do I have?"
clip c12 complete espeak:en-us+m3 "Agent."
clip c13 complete human "pls-hold-while-try"
clip c14 complete human "something-terribly-wrong"
clip c15 complete human "please-try-call-later"
clip c16 complete human "goodbye"
clip c17 complete piper "Hello, I have a question about my bill."
clip c18 complete piper "Okay."
