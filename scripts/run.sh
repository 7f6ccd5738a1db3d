#!/usr/bin/env bash
# Set up (idempotent), then run the voice agent on the embedded default models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec target/release/ivr serve "$@"
