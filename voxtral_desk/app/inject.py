"""Putting finished push-to-talk text into the focused application.

On X11 the text goes in with xdotool (typed, or pasted with the clipboard restored afterwards), or is just
left on the clipboard. Pasting looks at the focused window first: terminals do not paste with Ctrl+V (xterm
shows a literal ^V), so they get their own paste keys, and with no window to paste into the text stays on
the clipboard and the user is told. Where text cannot go into other applications (platform_support.py),
it is left on the clipboard.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QMimeData, QObject, QProcess, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

from .platform_support import PlatformSupport, platform_support
from .settings import DEFAULT_PASTE_KEYS

log = logging.getLogger(__name__)

# Terminals by their X11 window class (lower case). The classic ones paste the PRIMARY selection with
# Shift+Insert and have no clipboard chord by default; the others paste the clipboard with Ctrl+Shift+V.
PRIMARY_TERMINALS = {"xterm", "uxterm", "urxvt", "rxvt", "urxvt-unicode", "st", "st-256color", "eterm", "aterm"}
CLIPBOARD_TERMINALS = {"gnome-terminal", "gnome-terminal-server", "org.gnome.console", "kgx", "konsole",
                       "xfce4-terminal", "mate-terminal", "lxterminal", "qterminal", "terminator", "tilix",
                       "alacritty", "kitty", "org.wezfurlong.wezterm", "wezterm", "guake", "tilda", "terminology",
                       "sakura", "termite", "foot", "cool-retro-term", "hyper", "deepin-terminal", "ptyxis",
                       "com.mitchellh.ghostty", "ghostty", "blackbox", "com.raggesilver.blackbox", "tabby"}


def focused_window_class(display_name: str | None = None) -> tuple[str, str] | None:
    """(instance, class) from WM_CLASS of the X11 window with the keyboard focus (or of its nearest
    ancestor that has one); None when no application window has the focus."""
    from Xlib import X, display

    d = display.Display(display_name)
    try:
        window = d.get_input_focus().focus
        root = d.screen().root
        for _ in range(16):  # the focus may sit on a child of the application's top-level window
            if window in (X.NONE, X.PointerRoot) or not hasattr(window, "get_wm_class") or window == root:
                return None
            wm_class = window.get_wm_class()
            if wm_class:
                return str(wm_class[0]), str(wm_class[1])
            window = window.query_tree().parent
        return None
    finally:
        d.close()


def paste_keys_for(window_class: tuple[str, str] | None, configured: str) -> tuple[str, bool]:
    """(the keys that paste in that window, whether they paste the PRIMARY selection rather than the
    clipboard). Keys the user chose are used as given, except Ctrl+V, which no terminal pastes with."""
    names = {n.lower() for n in window_class or ()}
    if configured.replace(" ", "").lower() not in ("", DEFAULT_PASTE_KEYS):
        return configured, False
    if names & PRIMARY_TERMINALS:
        return "shift+Insert", True
    if names & CLIPBOARD_TERMINALS:
        return "ctrl+shift+v", False
    return DEFAULT_PASTE_KEYS, False


class TextInjector(QObject):
    """Puts finished push-to-talk text into the focused application. finished(message) reports the
    outcome; `failed` is set when the text could not be put there (it is then on the clipboard)."""

    finished = Signal(str)

    RESTORE_DELAY_MS = 1000  # the target application fetches the pasted text lazily; wait before restoring

    def __init__(self, support: PlatformSupport | None = None, parent=None, focused=focused_window_class):
        super().__init__(parent)
        self.support = support or platform_support()
        self.focused = focused  # () -> (instance, class) of the focused window, or None
        self.failed = False
        self._processes: list[QProcess] = []
        self._saved: QMimeData | None = None
        self._saved_selection: QMimeData | None = None
        self._pasted_text = ""

    def inject(self, text: str, mode: str, paste_keys: str = DEFAULT_PASTE_KEYS) -> None:
        self.failed = False
        if not text:
            self.finished.emit("Nothing was recognised.")
            return
        if mode != "clipboard" and not self.support.inject:
            QGuiApplication.clipboard().setText(text)
            self.finished.emit("Copied to the clipboard (typing into other applications is not available here).")
            return
        if mode == "clipboard":
            QGuiApplication.clipboard().setText(text)
            self.finished.emit("Copied to the clipboard.")
        elif mode == "type":
            try:
                map_missing_keysyms(text)
            except Exception as e:  # xdotool still types them, remapping a key for each, less reliably
                log.warning("could not map the keys of the text's characters: %s", e)
            self._run(["type", "--clearmodifiers", "--delay", "8", "--", text], f"Typed {len(text)} characters.")
        elif mode == "paste":
            self._paste(text, paste_keys)
        else:
            self.finished.emit(f"Unknown injection mode {mode!r}.")

    def _paste(self, text: str, paste_keys: str) -> None:
        clipboard = QGuiApplication.clipboard()
        try:
            target = self.focused()
        except Exception as e:  # the X connection failed: paste blind, as before we looked
            log.warning("cannot find the focused window: %s", e)
            target = ("", "")
        if target is None:
            clipboard.setText(text)
            self.failed = True
            self.finished.emit("No application has the keyboard focus, so nothing was pasted: the text is on the "
                               "clipboard (and in History).")
            return
        keys, primary = paste_keys_for(target, paste_keys)
        self._saved = _copy_mime(clipboard.mimeData())
        self._pasted_text = text
        clipboard.setText(text)
        if primary:  # these terminals paste the selection, not the clipboard
            self._saved_selection = _copy_mime(clipboard.mimeData(QClipboard.Selection))
            clipboard.setText(text, QClipboard.Selection)
        where = f" into {target[1]}" if target[1] else ""
        self._run(["key", "--clearmodifiers", keys], f"Pasted {len(text)} characters{where} ({keys}).",
                  restore=True)

    def _run(self, args: list[str], success: str, restore: bool = False) -> None:
        # QProcess runs xdotool without blocking the UI. Python owns each process (no Qt parent) and
        # drops it once it has finished, outside its own signal handlers.
        process = QProcess()
        self._processes.append(process)

        def forget():
            QTimer.singleShot(0, lambda: self._processes.remove(process) if process in self._processes else None)

        def finished(code, _status):
            if restore:
                QTimer.singleShot(self.RESTORE_DELAY_MS, self._restore_clipboard)
            if code == 0:
                self.finished.emit(success)
            else:
                err = bytes(process.readAllStandardError()).decode(errors="replace").strip()
                self.failed = True
                self.finished.emit(f"xdotool failed ({err or f'exit code {code}'}); the text is in the window "
                                   "and in History.")
            forget()

        def error(err):
            if err == QProcess.FailedToStart:  # no finished() follows in that case
                if restore:
                    self._restore_clipboard()
                self.failed = True
                self.finished.emit("xdotool could not be started; the text is in the window and in History.")
                forget()

        process.finished.connect(finished)
        process.errorOccurred.connect(error)
        process.start("xdotool", args)

    def _restore_clipboard(self) -> None:
        clipboard = QGuiApplication.clipboard()
        # Only restore if the clipboard still holds our text: the user may have copied something since.
        if self._saved is not None and clipboard.text() == self._pasted_text:
            clipboard.setMimeData(self._saved)
        if self._saved_selection is not None and clipboard.text(QClipboard.Selection) == self._pasted_text:
            clipboard.setMimeData(self._saved_selection, QClipboard.Selection)
        self._saved = self._saved_selection = None


def _keysym(char: str) -> int:
    """The X keysym of a character: Latin-1 code points are their own keysyms, others 0x01000000 + code."""
    code = ord(char)
    return code if code < 0x100 else 0x01000000 + code


def map_missing_keysyms(text: str) -> int:
    """Map the characters of `text` that the keyboard layout lacks onto unused keycodes before xdotool
    types it. Otherwise xdotool maps a key for each such character, presses it and maps it back at once,
    and a busy application that fetches the keymap only after that sees no character (measured on
    Xvfb with the CPU busy: the 'ö' of "wörld" lost in most runs). The keys stay mapped (they are not on
    the keyboard), so later texts reuse them; when no unused keycode is left, xdotool's own way remains.
    Returns how many characters were mapped."""
    from Xlib import display

    d = display.Display()
    try:
        first = d.display.info.min_keycode
        mapping = d.get_keyboard_mapping(first, d.display.info.max_keycode - first + 1)
        present = {keysym for row in mapping for keysym in row}
        wanted = [k for k in dict.fromkeys(_keysym(c) for c in text if ord(c) >= 0x80) if k not in present]
        spare = [first + i for i, row in enumerate(mapping) if not any(row)]
        for keycode, keysym in zip(spare, wanted, strict=False):
            d.change_keyboard_mapping(keycode, [[keysym] * len(mapping[0])])
        d.sync()
        return min(len(spare), len(wanted))
    finally:
        d.close()


def _copy_mime(source: QMimeData | None) -> QMimeData:
    copy = QMimeData()
    if source is not None:
        for fmt in source.formats():
            copy.setData(fmt, source.data(fmt))
    return copy
