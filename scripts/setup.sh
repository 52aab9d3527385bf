#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine:
#   scripts/setup.sh app    system packages + virtualenv + Voxtral Desk, then start the app
#   scripts/setup.sh test   the same plus test dependencies, then run the whole test suite
# Idempotent; works as root or through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-app}"; shift || true
VENV="${VOXTRAL_VENV:-.venv}"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

system_packages() {
  # Vulkan loader + Mesa's software Vulkan driver (lavapipe) so the engine runs even without a GPU,
  # PortAudio for the microphone, Qt's xcb dependencies for the window, sndfile for audio files.
  local pkgs=(python3 python3-venv python3-pip libvulkan1 mesa-vulkan-drivers libportaudio2 libsndfile1
    libegl1 libgl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
    libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xkb1 libfontconfig1 libdbus-1-3
    libglib2.0-0 xdotool xclip)
  if [ "$mode" = test ]; then
    # Headless display, tray host, a terminal, virtual microphone and spoken test audio for the end-to-end tests;
    # a C compiler builds ggml's own quantisers, the oracle for ours.
    pkgs+=(xvfb xauth x11-utils xterm trayer espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins gcc libc6-dev)
  fi
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing system packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

python_env() {
  local py="${PYTHON:-python3}"
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if [ "$mode" = test ]; then
    # The CPU build of torch first, pinned, so nothing later pulls a CUDA build: a local wheel where the
    # machine has one (pip's find-links; its dependencies from the usual index), else PyTorch's CPU index.
    "$VENV/bin/python" -m pip install -q --no-index "torch==2.13.0" 2>/dev/null ||
      "$VENV/bin/python" -m pip install -q "torch==2.13.0+cpu" 2>/dev/null ||
      "$VENV/bin/python" -m pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
    "$VENV/bin/python" -m pip install -q -e ".[test]"
  else
    "$VENV/bin/python" -m pip install -q -e .
  fi
}

system_packages
python_env

case "$mode" in
  app)  exec "$VENV/bin/voxtral-desk" "$@" ;;
  test) exec scripts/run-tests.sh "$@" ;;
  *)    echo "usage: scripts/setup.sh app|test" >&2; exit 2 ;;
esac
