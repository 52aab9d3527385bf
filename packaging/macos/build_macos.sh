#!/usr/bin/env bash
# Build Voxtral Desk for macOS (on the Mac whose architecture you target: arm64 or x86_64):
#   dist/Voxtral Desk.app                                 the app (PyInstaller BUNDLE, Metal through wgpu)
#   dist/voxtral-desk-<version>-macos-<arch>.dmg          a disk image with the app and an Applications link
# Usage: packaging/macos/build_macos.sh [--python PATH] [--skip-self-test]
# Signing: without CODESIGN_IDENTITY the app is signed ad hoc by PyInstaller (fine on the machine that
# built it; elsewhere Gatekeeper asks for right-click > Open). With CODESIGN_IDENTITY="Developer ID
# Application: ..." the spec signs it with the hardened runtime and entitlements.plist, and with
# NOTARY_PROFILE (a `xcrun notarytool store-credentials` profile) the dmg is notarised and stapled.
# Not built in this project's CI (Linux only): see packaging/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=""
SELF_TEST=1
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PYTHON="$2"; shift 2 ;;
    --skip-self-test) SELF_TEST=0; shift ;;
    *) echo "usage: packaging/macos/build_macos.sh [--python PATH] [--skip-self-test]" >&2; exit 2 ;;
  esac
done
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' voxtral_desk/__init__.py)
ARCH=$(uname -m)
APP="dist/Voxtral Desk.app"
DMG="dist/voxtral-desk-$VERSION-macos-$ARCH.dmg"
start=$(date +%s)

echo "== PyInstaller, Voxtral Desk $VERSION ($ARCH)"
"$PYTHON" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/voxtral-desk.spec
# Info.plist must carry the microphone prompt's text, or macOS silently denies the microphone.
/usr/libexec/PlistBuddy -c "Print :NSMicrophoneUsageDescription" "$APP/Contents/Info.plist" >/dev/null

# The spec signed it (CODESIGN_IDENTITY: Developer ID + hardened runtime; otherwise ad hoc).
codesign --verify --deep --strict "$APP"

if [ "$SELF_TEST" = 1 ]; then
  echo "== self-test"
  "$APP/Contents/MacOS/voxtral-desk" --self-test
fi

echo "== dmg"
STAGE=build/dmg
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "Voxtral Desk $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
  codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$DMG"
  if [ -n "${NOTARY_PROFILE:-}" ]; then
    echo "== notarisation"
    xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
  fi
fi

echo "== done in $(( $(date +%s) - start )) s"
echo "app: $APP ($(du -sh "$APP" | cut -f1))"
echo "dmg: $DMG ($(du -sh "$DMG" | cut -f1))"
