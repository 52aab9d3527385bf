#!/usr/bin/env bash
# Build the one-folder Linux bundle and its archive:
#   dist/voxtral-desk/                                  the bundle (run dist/voxtral-desk/voxtral-desk)
#   dist/voxtral-desk-<version>-linux-<arch>.tar.gz     bundle + .desktop file + icon + install.sh
# Usage: packaging/build_linux.sh [--python PATH]   (default: .venv/bin/python, else python3)
# The Python environment needs Voxtral Desk's dependencies and PyInstaller (pip install -e ".[package]").
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=""
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON="$2"; shift 2 ;;
    *) echo "usage: packaging/build_linux.sh [--python PATH]" >&2; exit 2 ;;
  esac
done
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

APP=voxtral-desk
VERSION=$("$PYTHON" -c 'import re, pathlib; print(re.search(r"__version__ = \"([^\"]+)\"", pathlib.Path("voxtral_desk/__init__.py").read_text()).group(1))')
ARCH=$(uname -m)
NAME="$APP-$VERSION-linux-$ARCH"
BUNDLE="dist/$APP"
ICON=resources/voxtral-desk.svg

start=$(date +%s)
echo "== PyInstaller ($("$PYTHON" -m PyInstaller --version)), Voxtral Desk $VERSION"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/voxtral-desk.spec

# The interpreter's own libraries may carry debug info (pyenv builds do: ~25 MB). Only they are
# stripped: stripping wheel libraries that auditwheel patched breaks them.
if command -v strip >/dev/null; then
  strip --strip-debug "$BUNDLE"/_internal/libpython3*.so* "$BUNDLE"/_internal/python3*/lib-dynload/*.so 2>/dev/null || true
fi

echo "== archive"
STAGE="build/archive/$NAME"
rm -rf "build/archive" && mkdir -p "$STAGE"
cp -a "$BUNDLE" "$STAGE/$APP"
cp packaging/linux/voxtral-desk.desktop "$STAGE/"
cp "$ICON" "$STAGE/voxtral-desk.svg"
cp packaging/linux/install.sh "$STAGE/install.sh"
chmod +x "$STAGE/install.sh"
tar -C build/archive -czf "dist/$NAME.tar.gz" "$NAME"

end=$(date +%s)
echo "== done in $((end - start)) s"
echo "bundle:  $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo "archive: dist/$NAME.tar.gz ($(du -sh "dist/$NAME.tar.gz" | cut -f1))"
