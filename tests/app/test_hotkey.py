"""The global hotkey: its text form, and the real grab on Xvfb."""
from __future__ import annotations

import os
import time

import pytest

from voxtral_desk.app.hotkey import HotkeyManager, X11HotkeyListener, parse_hotkey
from voxtral_desk.app.platform_support import PlatformSupport
from x11_helpers import xdotool


def test_parse_hotkey():
    assert parse_hotkey("ctrl+alt+space") == parse_hotkey("Alt + Control + space")
    assert str(parse_hotkey("Control+super+F9")) == "ctrl+super+F9"
    assert parse_hotkey("F9").modifiers == frozenset()
    for bad, why in (("", "not a key combination"), ("ctrl+", "not a key combination"),
                     ("hyper+a", "unknown modifier"), ("ctrl+alt", "not a modifier")):
        with pytest.raises(ValueError, match=why):
            parse_hotkey(bad)


def test_manager_refuses_where_unsupported(qtbot):
    manager = HotkeyManager()
    message = manager.start("ctrl+alt+space", PlatformSupport(False, False, "This is a Wayland session: ..."))
    assert message.startswith("This is a Wayland session") and not manager.active
    assert HotkeyManager().start("ctrl+", PlatformSupport(True, True, "")).startswith("Hotkey: ")


def test_hold_and_release_under_x11(qtbot, xserver):
    manager = HotkeyManager()
    assert manager.start("ctrl+alt+space") is None and manager.active
    events = []
    manager.pressed.connect(lambda: events.append("press"))
    manager.released.connect(lambda: events.append("release"))
    xdotool(xserver, "keydown", "ctrl+alt+space")
    qtbot.waitUntil(lambda: events == ["press"], timeout=5000)
    time.sleep(1.0)  # held: X sends auto-repeat release/press pairs meanwhile, which must be ignored
    xdotool(xserver, "keyup", "space")
    qtbot.waitUntil(lambda: "release" in events, timeout=5000)
    xdotool(xserver, "keyup", "ctrl+alt")
    xdotool(xserver, "key", "space")  # without the modifiers: not the hotkey
    qtbot.wait(300)
    assert events == ["press", "release"]
    xdotool(xserver, "key", "ctrl+alt+space")  # a second, quick press
    qtbot.waitUntil(lambda: len(events) == 4, timeout=5000)
    assert events == ["press", "release", "press", "release"]
    manager.stop()
    assert not manager.active


def test_a_hotkey_taken_by_another_application(qtbot, xserver):
    other = X11HotkeyListener(parse_hotkey("F9"), lambda: None, lambda: None, lambda m: None)
    other.start()
    assert other.ready.wait(5) and other.error is None
    try:
        message = HotkeyManager().start("F9")
        assert message == "Hotkey: F9 is already used by another application; choose another hotkey"
    finally:
        other.stop()


def test_unknown_key_is_reported(qtbot, xserver):
    assert HotkeyManager().start("ctrl+NoSuchKey").startswith("Hotkey: there is no key called “NoSuchKey”")


def test_display_env_is_redirected_only_inside_the_fixture(xserver):
    assert os.environ["DISPLAY"] == xserver
