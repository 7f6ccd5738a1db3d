#!/usr/bin/env bash
# The dialogue LLM on this machine: SmolLM2-135M (Q4_1) through ivr-llm, per turn: time to the first
# token and to the first sentence, generation speed, and what the prefix KV cache saves (warm: the
# system prompt is already cached from the turn before; cold: a system prompt it has not seen).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cargo build --release --locked -p llm-worker >/dev/null 2>&1
threads=${1:-1}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '[llm]\nthreads = %s\n' "$threads" > "$tmp/ivr.toml"
target/release/ivr --config "$tmp/ivr.toml" bench llm --turns 8 > "$tmp/llm.jsonl"
python3 - "$tmp/llm.jsonl" "$threads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"LLM: SmolLM2-135M-Instruct Q4_1 via ivr-llm, {sys.argv[2]} thread(s), ~290-token system prompt, up to 48 new tokens (medians of 8 turns)")
print(f"  {'':6} {'prompt':>7} {'cached':>7} {'1st token ms':>13} {'1st sentence ms':>16} {'tokens/s':>9}")
med = {}
for mode in ("cold", "warm"):
    r = [x for x in rows if x["mode"] == mode]
    m = lambda k: statistics.median(x[k] for x in r if x[k] is not None)
    med[mode] = m("first_token_ms")
    print(f"  {mode:6} {m('prompt_tokens'):7.0f} {m('cached_tokens'):7.0f} {m('first_token_ms'):13.0f} {m('first_sentence_ms'):16.0f} {m('tokens_per_s'):9.0f}")
print(f"  prefix cache: first token {med['cold'] / med['warm']:.1f}x sooner when warm")
PY
