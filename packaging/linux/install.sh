#!/usr/bin/env bash
# Install Voxtral Desk from this unpacked archive for the current user (no root needed):
#   ~/.local/lib/voxtral-desk/                              the application
#   ~/.local/bin/voxtral-desk                               a link to it, for the command line
#   ~/.local/share/applications/voxtral-desk.desktop       the menu entry
#   ~/.local/share/icons/hicolor/scalable/apps/voxtral-desk.svg
# Usage: ./install.sh [--prefix DIR] [--uninstall]      (DIR defaults to ~/.local)
# Models (~/.local/share/voxtral-desk) and settings (~/.config/voxtral-desk) are never touched.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="$HOME/.local"
ACTION=install
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --uninstall) ACTION=uninstall; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

APP=voxtral-desk
LIBDIR="$PREFIX/lib/$APP"
BIN="$PREFIX/bin/$APP"
DESKTOP="$PREFIX/share/applications/$APP.desktop"
ICONS="$PREFIX/share/icons/hicolor"

refresh_caches() {
  # Desktops pick up new menu entries and icons by themselves. Only an icon cache that already exists
  # (another installer made it) must be refreshed; none is created, so uninstalling leaves nothing.
  if [ -f "$ICONS/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null; then
    gtk-update-icon-cache -q -f -t "$ICONS" 2>/dev/null || true
  fi
}

if [ "$ACTION" = uninstall ]; then
  rm -rf "$LIBDIR"
  rm -f "$DESKTOP" "$ICONS/scalable/apps/$APP.svg"
  if [ -L "$BIN" ]; then rm -f "$BIN"; fi
  refresh_caches
  echo "Voxtral Desk removed. Models and settings were kept: ~/.local/share/$APP, ~/.config/$APP"
  exit 0
fi

[ -x "$HERE/$APP/$APP" ] || { echo "error: run install.sh from the unpacked archive ($HERE/$APP/$APP is missing)" >&2; exit 1; }

# The application: replace any previous version as a whole.
mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$PREFIX/share/applications"
rm -rf "$LIBDIR.new"
cp -a "$HERE/$APP" "$LIBDIR.new"
rm -rf "$LIBDIR"
mv "$LIBDIR.new" "$LIBDIR"
ln -sfn "$LIBDIR/$APP" "$BIN"

mkdir -p "$ICONS/scalable/apps"
cp "$HERE/$APP.svg" "$ICONS/scalable/apps/$APP.svg"

# Menu entry, starting the installed binary by its full path (~/.local/bin is not always on the
# desktop session's PATH).
sed "s|^Exec=.*|Exec=$LIBDIR/$APP|" "$HERE/$APP.desktop" > "$DESKTOP"
chmod 644 "$DESKTOP"
refresh_caches

echo "Voxtral Desk installed in $LIBDIR"
echo "  menu entry: $DESKTOP"
echo "  command:    $BIN"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "  note: $PREFIX/bin is not on your PATH" ;; esac

# What the bundle does not carry: the Vulkan loader and a driver, and PortAudio for the microphone.
have_lib() { /sbin/ldconfig -p 2>/dev/null | grep -q "$1" || ldconfig -p 2>/dev/null | grep -q "$1"; }
missing=()
have_lib libvulkan.so.1 || missing+=("the Vulkan loader (Debian/Ubuntu: libvulkan1, Fedora: vulkan-loader)")
have_icd() { for f in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do [ -e "$f" ] && return 0; done; return 1; }
have_icd || missing+=("a Vulkan driver (your GPU's, or Mesa's: Debian/Ubuntu mesa-vulkan-drivers, Fedora mesa-vulkan-drivers)")
have_lib libportaudio.so.2 || missing+=("PortAudio for the microphone (Debian/Ubuntu: libportaudio2, Fedora: portaudio)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "Missing system libraries:"
  for m in "${missing[@]}"; do echo "  - $m"; done
fi
echo "Check the installation with: $BIN --self-test"
