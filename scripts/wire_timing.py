#!/usr/bin/env python3
"""Voice-to-voice and barge-in stop times, read off what the caller sent and heard.

Two sources, one analysis, so the wire and the simulator are measured the same way:
  --pcap CAP --caller-ports LO-HI   a capture of a real call (PCMU RTP; the caller's packets come
                                    from a port in LO-HI, the bot's go to one), each packet at its
                                    capture time
  --wav CALL.wav                    `ivr simulate -o`: the caller left, the bot right, 20 ms frames
                                    at their call time
A 20 ms frame sounds when its RMS is above -50 dBFS. A caller's turn is speech with no gap of
1 s or more. For each turn:
  voice-to-voice  the caller's last sounding frame -> the bot's first sounding frame after it
  barge-in stop   for turns that begin while the bot sounds: the caller's first sounding frame ->
                  the first frame of the bot's next silence of 400 ms or more
A caller frame is timed at its end (a packet leaves when its 20 ms are recorded), a bot frame at
its start (a packet is played as it arrives), on the wire and in the simulator alike.
Prints one JSON object: {"turns": [{"end": s, "v2v_ms": ..}], "barge_ins": [{"onset": s, "stop_ms": ..}]}.
"""
import argparse
import json
import math
import subprocess
import sys
import wave

FRAME = 0.02
SOUND_DBFS = -50.0
TURN_GAP = 1.0
BOT_STOP_SILENCE = 0.4
MAX_REPLY = 6.0


def ulaw_table():
    table = []
    for b in range(256):
        u = ~b & 0xFF
        sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
        magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
        table.append((-magnitude if sign else magnitude) / 32768.0)
    return table


ULAW = ulaw_table()


def dbfs(samples):
    if not samples:
        return -120.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms) if rms > 0 else -120.0


def from_pcap(path, lo, hi):
    """Caller and bot frames, (time, sounding), from the PCMU packets of a capture."""
    fields = subprocess.run(
        ["tshark", "-r", path, "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp.p_type == 0",
         "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "rtp.payload"],
        capture_output=True, text=True, check=True).stdout
    caller, bot = [], []
    for line in fields.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[3]:
            continue
        t, src, dst = float(parts[0]), int(parts[1]), int(parts[2])
        payload = bytes.fromhex(parts[3].replace(":", ""))
        sounding = dbfs([ULAW[b] for b in payload]) > SOUND_DBFS
        if lo <= src <= hi:
            caller.append((t, sounding))
        elif lo <= dst <= hi:
            bot.append((t, sounding))
    if not caller or not bot:
        sys.exit(f"{path}: no PCMU packets both ways with the caller on ports {lo}-{hi}")
    t0 = min(caller[0][0], bot[0][0])
    return [(t - t0, s) for t, s in caller], [(t - t0, s) for t, s in bot]


def from_wav(path):
    with wave.open(path) as w:
        if w.getnchannels() != 2 or w.getsampwidth() != 2:
            sys.exit(f"{path}: expected 16-bit stereo (caller left, bot right) from `ivr simulate -o`")
        rate, raw = w.getframerate(), w.readframes(w.getnframes())
    n = int(rate * FRAME)
    count = len(raw) // 4
    left = [int.from_bytes(raw[4 * i:4 * i + 2], "little", signed=True) / 32768.0 for i in range(count)]
    right = [int.from_bytes(raw[4 * i + 2:4 * i + 4], "little", signed=True) / 32768.0 for i in range(count)]
    caller = [((i + 1) * FRAME, dbfs(left[i * n:(i + 1) * n]) > SOUND_DBFS) for i in range(count // n)]
    bot = [(i * FRAME, dbfs(right[i * n:(i + 1) * n]) > SOUND_DBFS) for i in range(count // n)]
    return caller, bot


def segments(frames, gap):
    """(first sounding time, last sounding time) runs, split where silence lasts `gap` or more."""
    out = []
    for t, s in frames:
        if not s:
            continue
        if out and t - out[-1][1] < gap + FRAME / 2:
            out[-1][1] = t
        else:
            out.append([t, t])
    return out


def analyse(caller, bot):
    turns, barge_ins = [], []
    bot_sounding = [t for t, s in bot if s]
    for start, end in segments(caller, TURN_GAP):
        reply = next((t for t in bot_sounding if end < t <= end + MAX_REPLY), None)
        turns.append({"start": round(start, 3), "end": round(end, 3), "v2v_ms": None if reply is None else round(1000 * (reply - end))})
        # Did the caller start while the bot was speaking?
        if any(start - 0.2 <= t <= start for t in bot_sounding):
            stop = None
            silent_from = None
            for t, s in bot:
                if t < start:
                    continue
                if s:
                    silent_from = None
                elif silent_from is None:
                    silent_from = t
                if silent_from is not None and t - silent_from >= BOT_STOP_SILENCE:
                    stop = silent_from
                    break
            barge_ins.append({"onset": round(start, 3), "stop_ms": None if stop is None else round(1000 * (stop - start))})
    return {"turns": turns, "barge_ins": barge_ins}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pcap")
    ap.add_argument("--caller-ports", default="20000-20999")
    ap.add_argument("--wav")
    a = ap.parse_args()
    if bool(a.pcap) == bool(a.wav):
        ap.error("give one of --pcap or --wav")
    if a.pcap:
        lo, hi = (int(p) for p in a.caller_ports.split("-"))
        caller, bot = from_pcap(a.pcap, lo, hi)
    else:
        caller, bot = from_wav(a.wav)
    print(json.dumps(analyse(caller, bot)))


if __name__ == "__main__":
    main()
