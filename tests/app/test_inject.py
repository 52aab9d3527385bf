"""Putting the text into the focused application: the clipboard where nothing else works, and typing and
pasting into real applications (xterm, a Qt field) on Xvfb."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from voxtral_desk.app.inject import TextInjector, map_missing_keysyms, paste_keys_for
from voxtral_desk.app.platform_support import PlatformSupport, platform_support
from x11_helpers import die_with_parent, focus_window, have, start_target, stop


def test_clipboard_mode_and_fallback(qtbot):
    injector = TextInjector(PlatformSupport(False, False, "Wayland"))
    with qtbot.waitSignal(injector.finished) as blocker:
        injector.inject("dictated text", "clipboard")
    assert QGuiApplication.clipboard().text() == "dictated text" and blocker.args == ["Copied to the clipboard."]
    with qtbot.waitSignal(injector.finished) as blocker:
        injector.inject("typed text", "type")  # not possible here: the clipboard gets it, and the user is told
    assert QGuiApplication.clipboard().text() == "typed text" and "not available here" in blocker.args[0]


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
