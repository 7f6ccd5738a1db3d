#!/usr/bin/env bash
# The speech and call tests against a whisper.cpp built for another instruction set than this
# machine's best: Whisper's output on borderline audio changes with the CPU's kernels, and no test
# may rest on one borderline decode. On a CPU with AVX-512 the build uses AVX2 (with FMA and F16C);
# on one without, AVX alone. Builds into target/portable (a full build: about 15 minutes on 2
# cores), then runs the speech, call and end-of-turn tests in the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
scripts/python-env.sh
if grep -qw avx512f /proc/cpuinfo; then
  isa=(GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON GGML_AVX512=OFF GGML_AVX_VNNI=OFF GGML_BMI2=ON); name="AVX2"
else
  isa=(GGML_AVX=ON GGML_AVX2=OFF GGML_FMA=OFF GGML_F16C=ON GGML_AVX512=OFF GGML_AVX_VNNI=OFF GGML_BMI2=OFF); name="AVX"
fi
echo "test-portable: whisper.cpp for $name only (GGML_NATIVE=OFF); this CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
export GGML_NATIVE=OFF "${isa[@]}" CARGO_TARGET_DIR=target/portable
tests=(--test speech_recognition --test simulate_calls --test sip_calls --test end_of_turn)
cargo build --release --locked -p ivr -p llm-worker --tests
cargo build --release --locked -p voice-pipeline --tests
scripts/sandbox.sh cargo test --release --locked --offline -p ivr "${tests[@]}" -- --test-threads=1
scripts/sandbox.sh cargo test --release --locked --offline -p voice-pipeline --test call_replay --test end_of_turn_replay -- --test-threads=1
