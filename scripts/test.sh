#!/usr/bin/env bash
# The project's test command: set-up (idempotent), then every test against the real models, the
# end-to-end ones included. Tests run in scripts/sandbox.sh: a network namespace with only loopback
# up, so nothing a test starts can reach another address, and a PID namespace that fails the run if
# a test leaves a process behind. Heavy tests run one at a time: Whisper's threads spin, and
# two transcriptions sharing two cores are many times slower than one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/python-env.sh
cargo build --release --locked --workspace --tests
# The dependency direction between the crates (transports know nothing of models or dialogue);
# after the build (cargo metadata may fetch the manifests of crates the build did not need).
scripts/check-layers.py
log=$(mktemp); trap 'rm -f "$log"' EXIT
scripts/sandbox.sh cargo test --release --locked --offline --workspace -- --test-threads=1 2>&1 | tee "$log"
# The converted Whisper model against its CTranslate2 original (PyPI faster-whisper, same files).
scripts/sandbox.sh scripts/compare-faster-whisper.sh --check
# One closing line for the whole run (cargo's last line is a doc-test summary of 0 tests).
awk '/^test result:/ { p += $4; f += $6 } END { printf "test: %d passed, %d failed (cargo) + faster-whisper agreement check\n", p, f; print p + 1 " passed, " f " failed" }' "$log"
