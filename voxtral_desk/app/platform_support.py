"""What this desktop lets the app do outside its own window: grab a global hotkey, and type or paste text
into another application.

Only Linux with X11 has both so far: the hotkey through python-xlib (hotkey.py), the text through xdotool
(inject.py). Wayland does not let an application watch the keyboard or type into other windows, and Windows
and macOS are not implemented yet; platform_support() says so in words the settings dialog shows, and the
tray and window controls keep working everywhere.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass


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
