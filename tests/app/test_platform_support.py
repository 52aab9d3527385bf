"""What the desktop allows, in words: Wayland, other platforms, missing pieces."""
from __future__ import annotations

from voxtral_desk.app.platform_support import PlatformSupport, platform_support

X11 = {"DISPLAY": ":5"}


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
