"""Global hotkey and text injection: platform detection everywhere, the real thing on Xvfb."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from voxtral_desk.app.hotkey import (HotkeyManager, PlatformSupport, TextInjector, X11HotkeyListener,
                                     map_missing_keysyms, parse_hotkey, paste_keys_for, platform_support)
from x11_helpers import die_with_parent, focus_window, have, start_target, start_xvfb, stop, xdotool

X11 = {"DISPLAY": ":5"}


def test_parse_hotkey():
    assert parse_hotkey("ctrl+alt+space") == parse_hotkey("Alt + Control + space")
    assert str(parse_hotkey("Control+super+F9")) == "ctrl+super+F9"
    assert parse_hotkey("F9").modifiers == frozenset()
    for bad, why in (("", "not a key combination"), ("ctrl+", "not a key combination"),
                     ("hyper+a", "unknown modifier"), ("ctrl+alt", "not a modifier")):
        with pytest.raises(ValueError, match=why):
            parse_hotkey(bad)


def test_wayland_is_reported_clearly():
    for env in ({"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}):
        s = platform_support(env, "linux", which=lambda _: "/usr/bin/xdotool")
        assert not s.hotkey and not s.inject
        assert "Wayland" in s.message and "tray icon" in s.message


def test_other_platforms_and_missing_pieces():
    assert "only implemented for Linux with X11" in platform_support({}, "win32").message
    assert "DISPLAY is not set" in platform_support({}, "linux").message
    no_xdotool = platform_support(X11, "linux", which=lambda _: None)
    assert no_xdotool.hotkey and not no_xdotool.inject and "xdotool" in no_xdotool.message
    assert platform_support(X11, "linux", which=lambda _: "/usr/bin/xdotool") == PlatformSupport(True, True, "")


def test_manager_refuses_where_unsupported(qtbot):
    manager = HotkeyManager()
    message = manager.start("ctrl+alt+space", PlatformSupport(False, False, "This is a Wayland session: ..."))
    assert message.startswith("This is a Wayland session") and not manager.active
    assert HotkeyManager().start("ctrl+", PlatformSupport(True, True, "")).startswith("Hotkey: ")


def test_clipboard_mode_and_fallback(qtbot):
    injector = TextInjector(PlatformSupport(False, False, "Wayland"))
    with qtbot.waitSignal(injector.finished) as blocker:
        injector.inject("dictated text", "clipboard")
    assert QGuiApplication.clipboard().text() == "dictated text" and blocker.args == ["Copied to the clipboard."]
    with qtbot.waitSignal(injector.finished) as blocker:
        injector.inject("typed text", "type")  # not possible here: the clipboard gets it, and the user is told
    assert QGuiApplication.clipboard().text() == "typed text" and "not available here" in blocker.args[0]


@pytest.fixture
def xserver(monkeypatch):
    missing = have("Xvfb", "xdotool")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (scripts/setup.sh test installs them)")
    try:
        import Xlib  # noqa: F401
    except ImportError:
        pytest.fail("python-xlib is not installed, but the app depends on it for the global hotkey")
    proc, display = start_xvfb()
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    yield display
    stop(proc)


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


def test_type_into_the_focused_application(qtbot, xserver, tmp_path):
    out = tmp_path / "target.txt"
    target = start_target(xserver, out)
    try:
        injector = TextInjector(platform_support())
        text = "hello wörld, ça va? ✓"
        with qtbot.waitSignal(injector.finished, timeout=10000) as blocker:
            injector.inject(text, "type")
        assert blocker.args == [f"Typed {len(text)} characters."]
        qtbot.waitUntil(lambda: out.read_text() == text, timeout=5000)
    finally:
        stop(target)


def test_characters_missing_from_the_layout_are_mapped_once(xserver):
    from Xlib import display

    session = display.Display()  # a client stays connected, as in a desktop session (Xvfb resets without)
    try:
        assert map_missing_keysyms("wörld ✓ abc") == 2  # Xvfb's US layout has neither
        assert map_missing_keysyms("ö ✓ ö") == 0  # still mapped: reused
    finally:
        session.close()


def test_unknown_key_is_reported(qtbot, xserver):
    assert HotkeyManager().start("ctrl+NoSuchKey").startswith("Hotkey: there is no key called “NoSuchKey”")


def test_display_env_is_redirected_only_inside_the_fixture(xserver):
    assert os.environ["DISPLAY"] == xserver


def test_terminals_get_their_own_paste_keys():
    assert paste_keys_for(("xterm", "XTerm"), "ctrl+v") == ("shift+Insert", True)
    assert paste_keys_for(("gnome-terminal-server", "Gnome-terminal"), "ctrl+v") == ("ctrl+shift+v", False)
    assert paste_keys_for(("kitty", "kitty"), "ctrl+v") == ("ctrl+shift+v", False)
    assert paste_keys_for(("gedit", "Gedit"), "ctrl+v") == ("ctrl+v", False)
    assert paste_keys_for(("xterm", "XTerm"), "super+v") == ("super+v", False)  # the user's own choice stands


def test_with_no_focused_window_the_text_stays_on_the_clipboard(qtbot):
    injector = TextInjector(PlatformSupport(True, True, ""), focused=lambda: None)
    with qtbot.waitSignal(injector.finished) as blocker:
        injector.inject("nowhere to go", "paste")
    assert injector.failed and "No application has the keyboard focus" in blocker.args[0]
    assert QGuiApplication.clipboard().text() == "nowhere to go"


def _paste_with_driver(display, text, keys="ctrl+v"):
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    driver = Path(__file__).with_name("inject_driver.py")
    done = subprocess.run([sys.executable, str(driver), text, "paste", keys], env=env, capture_output=True,
                          text=True, timeout=60)
    return done.stdout.splitlines()


def test_paste_into_xterm_arrives_instead_of_a_literal_ctrl_v(xserver, tmp_path):
    if have("xterm"):
        pytest.skip("needs xterm (scripts/setup.sh test installs it)")
    out = tmp_path / "typed.txt"
    # xterm running a program that writes every byte it reads, as a shell prompt would show it.
    term = subprocess.Popen(["xterm", "-T", "voxtral-xterm", "-e", "sh", "-c", f"stty -icanon -echo; cat > {out}"],
                            env=dict(os.environ, DISPLAY=xserver), preexec_fn=die_with_parent)
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        focus_window(xserver, "voxtral-xterm")
        text = "echo héllo wörld"
        lines = _paste_with_driver(xserver, text)
        assert lines[0] == f"Pasted {len(text)} characters into XTerm (shift+Insert)." and lines[1] == "ok"
        deadline = time.monotonic() + 10
        while out.read_bytes().decode("utf-8", "replace") != text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert out.read_bytes().decode("utf-8", "replace") == text  # not "^V"
    finally:
        stop(term)


def test_paste_into_a_qt_text_field(xserver, tmp_path):
    out = tmp_path / "target.txt"
    target = start_target(xserver, out)
    try:
        text = "pasted, not typed: ça va ✓"
        lines = _paste_with_driver(xserver, text)
        assert lines[0].startswith(f"Pasted {len(text)} characters into ") and lines[0].endswith("(ctrl+v).")
        deadline = time.monotonic() + 10
        while out.read_text() != text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert out.read_text() == text
    finally:
        stop(target)
