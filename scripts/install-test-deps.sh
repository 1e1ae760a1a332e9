#!/usr/bin/env bash
# Installs what the test suite needs besides node_modules, on Debian/Ubuntu: the system packages
# below (only the missing ones; apt-get, via sudo when not root) and, for the ARM tier, Node for
# arm64/armv7/18 plus the ARM sysroots under .arm/ (scripts/arm-sysroot.sh). Does nothing when all
# is there. `npm run test:all` runs it and then the suite; test/global-setup.ts says which of these
# a plain `npm test` misses.
set -euo pipefail
. "$(dirname "$0")/apt-update.sh"
cd "$(dirname "$0")/.."

apt_packages=(
  python3-onnx      # onnx.checker validates every ONNX file the tests write
  python3-numpy
  python3-torch     # PyTorch 1.13: regenerates the foreign-model fixtures (test/fixtures/torch/make.py)
  qemu-user-static  # emulated AVX2-without-VNNI CPUs for the int8 cross-CPU test, emulated ARM boards
  libonnx-testdata  # ONNX's own backend tests: foreign LSTM/GRU/RNN models for streamify
  chromium          # headless browser for the HTML report and dashboard tests, via playwright-core
  socat             # real pseudo-terminals standing in for USB serial adapters
  mosquitto         # a real MQTT broker (the tests start their own on a loopback port)
  ansible           # fleet rollout engine driven by streamcell deploy
  openssh-server    # real sshd test hosts on loopback ports for the fleet tests
  openssh-client
)

missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "install-test-deps: no apt-get here; install these by hand: ${missing[*]}" >&2
    exit 1
  fi
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-test-deps: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "install-test-deps: installing ${missing[*]}" >&2
  apt_update "${sudo[@]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
/usr/bin/python3 -c 'import onnx; print("onnx", onnx.__version__)'

# Node for arm64/armv7 + Debian sysroots: the tests run models on emulated ARM boards (qemu).
# arm-sysroot.sh needs root only to add the foreign dpkg architectures: do that here (via sudo),
# so that .arm/ stays owned by the user who runs the tests.
if [ "$(id -u)" -ne 0 ]; then
  for a in arm64 armhf; do
    if ! dpkg --print-foreign-architectures | grep -qx "$a"; then
      sudo dpkg --add-architecture "$a" && apt_update sudo
    fi
  done
fi
bash scripts/arm-sysroot.sh
