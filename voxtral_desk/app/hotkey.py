"""The global hold-to-talk hotkey: its text form ("ctrl+alt+space"), and on X11 a passive key grab on the
root window (python-xlib), so it works whichever application has focus and the key never reaches that
application. HotkeyManager is the Qt side: pressed / released on the UI thread.

Where the platform has no global hotkey (platform_support.py says which), HotkeyManager.start() returns why.
"""
from __future__ import annotations

import logging
import select
import threading
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from .platform_support import PlatformSupport, platform_support

log = logging.getLogger(__name__)

MODIFIER_NAMES = {"ctrl": "ctrl", "control": "ctrl", "alt": "alt", "shift": "shift", "super": "super",
                  "win": "super", "meta": "super", "cmd": "super"}


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


def x11_keysym(XK, name: str) -> int:
    """The X keysym a key name stands for, however it is capitalised ("f9", "pause"); 0 for none."""
    return next(filter(None, map(XK.string_to_keysym, (name, name.capitalize(), name.upper(), name.lower()))), 0)


def key_exists(name: str) -> bool:
    """Whether `name` is a key an X keyboard can have (an X keysym name, as the grab looks it up)."""
    try:
        from Xlib import XK
    except ImportError:  # not on X11: no key table to check against; the platform's hotkey layer checks
        return bool(name)
    return bool(x11_keysym(XK, name))


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
            keysym = x11_keysym(XK, self.hotkey.key)
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
        for mask, keycodes in zip(mod_masks, d.get_modifier_mapping(), strict=False):
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
