#!/usr/bin/env python3
"""The dependency direction is the architecture: this fails when a crate reaches a layer it must not.

Reads `cargo metadata` (the resolved graph of normal dependencies, which is what a crate links)
and checks each rule below. Run by scripts/test.sh; prints one line per broken rule and exits 1.

Layers, bottom up:
  ivr-audio       the 16 kHz / 20 ms frame, G.711, resampling, files     (no models)
  sip-bridge      transports: SIP, SDP, RTP/RTCP, jitter, DTMF, codecs   (no models, no dialogue)
  ivr-models      model files and their loaders
  dialogue        understanding, knowledge, tools                         (no transport, no speech)
  voice-pipeline  VAD, STT, TTS, the session                              (no transport)
  call-control    joins legs to sessions: ringing, transfers, timeouts, records
  ivr, llm-worker the binaries: wiring only; nothing depends on them
"""
import json
import subprocess
import sys

MODELS = {"whisper-rs", "whisper-rs-sys", "ort", "ort-sys", "candle-core", "candle-nn", "candle-transformers",
          "llama-cpp-2", "llama-cpp-sys-2", "tokenizers", "espeak-rs", "ivr-models"}
# crate -> what it must never link, directly or through another crate.
FORBIDDEN = {
    "ivr-audio": MODELS | {"sip-bridge", "dialogue", "voice-pipeline", "call-control"},
    "sip-bridge": MODELS | {"dialogue", "voice-pipeline", "call-control"},
    "dialogue": {"sip-bridge", "voice-pipeline", "call-control", "whisper-rs", "llama-cpp-2", "ort"},
    "voice-pipeline": {"sip-bridge", "call-control", "llama-cpp-2"},
    "call-control": {"llama-cpp-2"},
}
BINARIES = {"ivr", "llm-worker"}


def main():
    host = next(l.split(": ", 1)[1] for l in subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout.splitlines()
                if l.startswith("host: "))
    # This machine's platform only: the others' crates are not downloaded, and are not linked here.
    meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
                                     check=True, capture_output=True, text=True).stdout)
    name = {p["id"]: p["name"] for p in meta["packages"]}
    workspace = {name[i] for i in meta["workspace_members"]}
    deps = {}
    for node in meta["resolve"]["nodes"]:
        deps[name[node["id"]]] = deps.get(name[node["id"]], set()) | {
            name[d["pkg"]] for d in node["deps"] if any(k["kind"] is None for k in d["dep_kinds"])}

    def closure(crate):
        seen, todo = set(), [crate]
        while todo:
            for d in deps.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    broken = []
    for crate, forbidden in FORBIDDEN.items():
        if crate not in workspace:
            broken.append(f"{crate}: not in the workspace (update scripts/check-layers.py)")
            continue
        for bad in sorted(closure(crate) & forbidden):
            broken.append(f"{crate} links {bad}, which its layer must not")
    for crate in sorted(workspace):
        for b in sorted(deps.get(crate, set()) & BINARIES):
            broken.append(f"{crate} depends on the binary crate {b}")
        # whisper.cpp and llama.cpp each bundle ggml: one binary cannot hold both.
        c = closure(crate)
        if "whisper-rs" in c and "llama-cpp-2" in c:
            broken.append(f"{crate} links both whisper-rs and llama-cpp-2 (duplicate ggml symbols)")
    orts = sorted({p["version"] for p in meta["packages"] if p["name"] == "ort"})
    if len(orts) > 1:
        broken.append(f"several ort versions in the graph: {orts}")
    for line in broken:
        print(f"layers: {line}")
    print(f"layers: {len(FORBIDDEN)} crates checked, {len(broken)} broken rules")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
