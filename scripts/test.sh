#!/usr/bin/env bash
# The project's test command: set-up (idempotent), then every test against the real models, the
# end-to-end ones included. Tests run inside a network namespace with only loopback up, so nothing a
# test starts can reach another address. Heavy tests run one at a time: Whisper's threads spin, and
# two transcriptions sharing two cores are many times slower than one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/python-env.sh
cargo build --release --locked --workspace --tests
netns() {
  if [ "$(id -u)" -eq 0 ] && unshare -n true 2>/dev/null; then
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
  else
    echo "test: warning: cannot create a network namespace (needs root); running on the host's loopback" >&2
    "$@"
  fi
}
log=$(mktemp); trap 'rm -f "$log"' EXIT
netns cargo test --release --locked --offline --workspace -- --test-threads=1 2>&1 | tee "$log"
# The converted Whisper model against its CTranslate2 original (PyPI faster-whisper, same files).
netns scripts/compare-faster-whisper.sh --check
# One closing line for the whole run (cargo's last line is a doc-test summary of 0 tests).
awk '/^test result:/ { p += $4; f += $6 } END { printf "test: %d passed, %d failed (cargo) + faster-whisper agreement check\n", p, f; print p + 1 " passed, " f " failed" }' "$log"
