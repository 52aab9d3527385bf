#!/usr/bin/env bash
# The whole test suite, as CI runs it. Called by `scripts/setup.sh test` once everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VOXTRAL_VENV:-.venv}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
"$VENV/bin/ruff" check --quiet . || { echo "ruff found problems (see above)" >&2; exit 1; }
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
