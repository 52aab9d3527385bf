"""Global hold-to-talk hotkey and putting the text into the focused application.

X11 only: the hotkey is a passive key grab on the root window (python-xlib), so it works whichever
application has focus and the key never reaches that application. Text goes in with xdotool (typed,
or pasted with the clipboard restored afterwards), or is just left on the clipboard. Pasting looks at the
focused window first: terminals do not paste with Ctrl+V (xterm shows a literal ^V), so they get their
own paste keys, and with no window to paste into the text stays on the clipboard and the user is told.

Wayland does not let an application watch the keyboard or type into other windows, and Windows and
macOS are not implemented yet; platform_support() says so in words the settings dialog shows, and the
tray and window controls keep working everywhere.
"""
from __future__ import annotations

import logging
import os
import select
import shutil
import sys
import threading
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QMimeData, QObject, QProcess, QTimer, Signal
from PySide6.QtGui import QClipboard, QGuiApplication

log = logging.getLogger(__name__)

MODIFIER_NAMES = {"ctrl": "ctrl", "control": "ctrl", "alt": "alt", "shift": "shift", "super": "super",
                  "win": "super", "meta": "super", "cmd": "super"}
DEFAULT_PASTE_KEYS = "ctrl+v"  # what pastes in most applications; never in a terminal
# Terminals by their X11 window class (lower case). The classic ones paste the PRIMARY selection with
# Shift+Insert and have no clipboard chord by default; the others paste the clipboard with Ctrl+Shift+V.
PRIMARY_TERMINALS = {"xterm", "uxterm", "urxvt", "rxvt", "urxvt-unicode", "st", "st-256color", "eterm", "aterm"}
CLIPBOARD_TERMINALS = {"gnome-terminal", "gnome-terminal-server", "org.gnome.console", "kgx", "konsole",
                       "xfce4-terminal", "mate-terminal", "lxterminal", "qterminal", "terminator", "tilix",
                       "alacritty", "kitty", "org.wezfurlong.wezterm", "wezterm", "guake", "tilda", "terminology",
                       "sakura", "termite", "foot", "cool-retro-term", "hyper", "deepin-terminal", "ptyxis",
                       "com.mitchellh.ghostty", "ghostty", "blackbox", "com.raggesilver.blackbox", "tabby"}


@dataclass(frozen=True)
class PlatformSupport:
    hotkey: bool  # a global hotkey can be grabbed
    inject: bool  # text can be typed or pasted into another application
    message: str  # "" when both work; otherwise what does not and what to use instead


def platform_support(env=None, platform: str | None = None, which=shutil.which) -> PlatformSupport:
    env = os.environ if env is None else env
    platform = platform or sys.platform
    fallback = "Use the tray icon or the window's Start button; the text can be copied from the window."
    if not platform.startswith("linux"):
        return PlatformSupport(False, False, "Global hotkeys and typing into other applications are only "
                                             f"implemented for Linux with X11 so far. {fallback}")
    if env.get("XDG_SESSION_TYPE", "").lower() == "wayland" or env.get("WAYLAND_DISPLAY"):
        return PlatformSupport(False, False, "This is a Wayland session: Wayland does not let applications "
                                             "watch the keyboard or type into other windows, so the global "
                                             f"hotkey and typing/pasting are off. {fallback}")
    if not env.get("DISPLAY"):
        return PlatformSupport(False, False, f"No X11 display (DISPLAY is not set). {fallback}")
    try:
        import Xlib  # noqa: F401
    except ImportError:
        return PlatformSupport(False, False, "The python-xlib package is not installed, so the global hotkey "
                                             f"is off. {fallback}")
    if which("xdotool") is None:
        return PlatformSupport(True, False, "xdotool is not installed, so push-to-talk text is left on the "
                                            "clipboard instead of being typed or pasted (install xdotool).")
    return PlatformSupport(True, True, "")


@dataclass(frozen=True)
class Hotkey:
    modifiers: frozenset[str]
    key: str  # X keysym name: "space", "F9", "a", "Pause"

    def __str__(self) -> str:
        order = [m for m in ("ctrl", "alt", "shift", "super") if m in self.modifiers]
        return "+".join(order + [self.key])


def parse_hotkey(text: str) -> Hotkey:
    """'ctrl+alt+space' -> Hotkey({'ctrl','alt'}, 'space'). Raises ValueError with a readable message."""
    parts = [p.strip() for p in text.replace(" ", "").split("+")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"“{text}” is not a key combination; write it like ctrl+alt+space or F9")
    *mods, key = parts
    unknown = [m for m in mods if m.lower() not in MODIFIER_NAMES]
    if unknown:
        raise ValueError(f"unknown modifier {unknown[0]!r}; use ctrl, alt, shift or super")
    if key.lower() in MODIFIER_NAMES:
        raise ValueError("the combination needs a key that is not a modifier, e.g. ctrl+alt+space")
    return Hotkey(frozenset(MODIFIER_NAMES[m.lower()] for m in mods), key)


def key_exists(name: str) -> bool:
    """Whether `name` is a key an X keyboard can have (an X keysym name, as the grab looks it up)."""
    try:
        from Xlib import XK
    except ImportError:  # not on X11: no key table to check against; the platform's hotkey layer checks
        return bool(name)
    return any(XK.string_to_keysym(v) for v in (name, name.capitalize(), name.upper(), name.lower()))


def check_hotkey(text: str) -> Hotkey:
    """parse_hotkey, and the key must exist: "ctrl+banana" is refused here, not after OK."""
    hotkey = parse_hotkey(text)
    if not key_exists(hotkey.key):
        raise ValueError(f"there is no key called “{hotkey.key}”; press the keys you want, or write a key name "
                         "such as space, F9, Pause or a letter")
    return hotkey


class X11HotkeyListener(threading.Thread):
    """Grabs the hotkey on the root window and calls on_press / on_release from this thread."""

    def __init__(self, hotkey: Hotkey, on_press, on_release, on_error, display_name: str | None = None):
        super().__init__(name="x11-hotkey", daemon=True)
        self.hotkey = hotkey
        self.on_press, self.on_release, self.on_error = on_press, on_release, on_error
        self.display_name = display_name
        self.ready = threading.Event()  # set once the grab is in place (or failed)
        self.error: str | None = None
        self._quit = threading.Event()
        self._queue: deque = deque()

    def stop(self) -> None:
        self._quit.set()
        if self.is_alive():
            self.join(timeout=2)

    def run(self) -> None:
        from Xlib import X, XK, display, error

        try:
            d = display.Display(self.display_name)
        except Exception as e:
            return self._fail(f"cannot connect to the X display ({e})")
        try:
            keysym = 0
            for name in (self.hotkey.key, self.hotkey.key.capitalize(), self.hotkey.key.upper(), self.hotkey.key.lower()):
                keysym = XK.string_to_keysym(name)
                if keysym:
                    break
            keycode = d.keysym_to_keycode(keysym) if keysym else 0
            if not keycode:
                return self._fail(f"the key “{self.hotkey.key}” does not exist on this keyboard")
            masks = {"ctrl": X.ControlMask, "alt": X.Mod1Mask, "shift": X.ShiftMask, "super": X.Mod4Mask}
            mask = 0
            for m in self.hotkey.modifiers:
                mask |= masks[m]
            # Grab with every combination of Caps Lock and Num Lock, or the hotkey dies when one is on.
            num_lock = self._num_lock_mask(d, X, XK)
            root = d.screen().root
            catch = error.CatchError(error.BadAccess)
            for extra in {0, X.LockMask, num_lock, X.LockMask | num_lock}:
                root.grab_key(keycode, mask | extra, True, X.GrabModeAsync, X.GrabModeAsync, onerror=catch)
            d.sync()
            if catch.get_error():
                return self._fail(f"{self.hotkey} is already used by another application; choose another hotkey")
            self.ready.set()
            try:
                self._loop(d, keycode, mask, X)
            except Exception as e:  # the X connection went away: say so, the window keeps working
                log.exception("hotkey listener stopped")
                self.error = f"the hotkey stopped working ({e})"
                self.on_error(self.error)
        finally:
            try:
                d.close()  # closing the connection releases the grabs
            except Exception:
                pass

    def _fail(self, message: str) -> None:
        # Start-up failures are returned by HotkeyManager.start(); no signal from here, as the manager
        # that asked may already be gone when a thread would deliver it.
        self.error = message
        self.ready.set()

    @staticmethod
    def _num_lock_mask(d, X, XK) -> int:
        num_lock = d.keysym_to_keycode(XK.string_to_keysym("Num_Lock"))
        mod_masks = [X.ShiftMask, X.LockMask, X.ControlMask, X.Mod1Mask, X.Mod2Mask, X.Mod3Mask, X.Mod4Mask, X.Mod5Mask]
        for mask, keycodes in zip(mod_masks, d.get_modifier_mapping()):
            if num_lock and num_lock in keycodes:
                return mask
        return X.Mod2Mask

    def _next(self, d):
        return self._queue.popleft() if self._queue else d.next_event()

    def _pending(self, d) -> bool:
        return bool(self._queue) or d.pending_events() > 0

    def _loop(self, d, keycode: int, mask: int, X) -> None:
        held = False
        # Lock keys (Caps, Num) may be on; the other modifiers must be exactly the hotkey's.
        relevant = X.ShiftMask | X.ControlMask | X.Mod1Mask | X.Mod4Mask
        while not self._quit.is_set():
            if not self._pending(d):
                select.select([d], [], [], 0.1)
                continue
            e = self._next(d)
            if e.type == X.MappingNotify:
                d.refresh_keyboard_mapping(e)
            elif e.type == X.KeyPress and e.detail == keycode and not held and e.state & relevant == mask:
                held = True
                self.on_press()
            elif e.type == X.KeyRelease and held:
                if e.detail == keycode and self._is_autorepeat(d, e, X):
                    continue
                # Releasing the key or any modifier of the combination ends the talk.
                held = False
                self.on_release()

    def _is_autorepeat(self, d, release, X) -> bool:
        """Holding a key makes X send Release+Press pairs with the same timestamp; drop those pairs."""
        if not self._pending(d):
            select.select([d], [], [], 0.02)  # the pair is sent together; give it a moment to arrive
        if not self._pending(d):
            return False
        nxt = self._next(d)
        if nxt.type == X.KeyPress and nxt.detail == release.detail and nxt.time == release.time:
            return True
        self._queue.appendleft(nxt)
        return False


class HotkeyManager(QObject):
    """Qt side of the global hotkey: pressed / released signals on the UI thread."""

    pressed = Signal()
    released = Signal()
    error = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._listener: X11HotkeyListener | None = None

    @property
    def active(self) -> bool:
        return self._listener is not None and self._listener.error is None and self._listener.is_alive()

    def start(self, hotkey_text: str, support: PlatformSupport | None = None, wait: bool = True) -> str | None:
        """Grab the hotkey; returns None on success or the reason it is not available."""
        self.stop()
        support = support or platform_support()
        if not support.hotkey:
            return support.message
        try:
            hotkey = check_hotkey(hotkey_text)
        except ValueError as e:
            return f"Hotkey: {e}"
        self._listener = X11HotkeyListener(hotkey, self.pressed.emit, self.released.emit, self.error.emit)
        self._listener.start()
        if wait:
            self._listener.ready.wait(3)
            if self._listener.error:
                message = f"Hotkey: {self._listener.error}"
                self.stop()
                return message
        return None

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


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
        for keycode, keysym in zip(spare, wanted):
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
