"""User settings: a small JSON file in the platform's config folder (paths.config_dir).

A file that cannot be read never stops the app: the defaults are used, the bad file is kept beside it as
settings.json.bak for the user to look at, and a message says so. A single bad value falls back to its
default on its own, so one typo does not reset everything else."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..config import MAX_DELAY_MS
from ..fileio import write_json_atomic
from ..paths import config_dir

INJECTION_MODES = ("paste", "type", "clipboard")
DEFAULT_PASTE_KEYS = "ctrl+v"  # what pastes in most applications; terminals get their own (inject.paste_keys_for)
# The real model's token is 80 ms; a model with other tokens is checked by AudioConfig.delay_tokens when it loads.
DELAY_STEP_MS = DELAY_MIN_MS = 80
DELAY_MAX_MS = MAX_DELAY_MS


@dataclass
class Settings:
    model_path: str = ""  # "" = not chosen yet: the model manager's default, or the first-run prompt
    models_dir: str = ""  # the model manager's folder; "" = its default under the data folder
    backend: str = "gpu"
    delay_ms: int = 480
    input_device: str = ""  # device name; "" = the system default input
    hotkey_enabled: bool = True
    hotkey: str = "ctrl+alt+space"
    injection: str = "paste"  # what push-to-talk does with the text: paste, type, or clipboard only
    paste_keys: str = DEFAULT_PASTE_KEYS
    keep_recordings: bool = False  # also save each dictation's audio (16 kHz WAV) beside the history
    close_to_tray: bool = True
    last_dir: str = ""  # last folder used for opening or exporting files
    window_geometry: str = ""  # the main window's size and place when last closed (Qt's saveGeometry, base64)

    def validate(self) -> list[str]:
        """Reset invalid values to their defaults; return one message per value reset."""
        from ..pipeline import BACKENDS  # here, not at the top: a second launch's hand-over needs no engine code

        problems = []
        default = Settings()
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, type(getattr(default, f.name))) or (isinstance(value, bool) and f.type != "bool"):
                problems.append(f"{f.name}: expected {type(getattr(default, f.name)).__name__}, got {value!r}")
                setattr(self, f.name, getattr(default, f.name))
        if self.input_device.lower() in ("default", "sysdefault", "pulse", "pipewire"):
            self.input_device = ""  # ALSA's aliases of the system default, as earlier versions listed them
        checks = {
            "backend": self.backend in BACKENDS,
            "delay_ms": DELAY_MIN_MS <= self.delay_ms <= DELAY_MAX_MS and self.delay_ms % DELAY_STEP_MS == 0,
            "injection": self.injection in INJECTION_MODES,
        }
        for name, ok in checks.items():
            if not ok:
                problems.append(f"{name}: {getattr(self, name)!r} is not allowed")
                setattr(self, name, getattr(default, name))
        return problems


class SettingsStore:
    """Loads and saves Settings. `messages` holds what went wrong while loading, for the UI to show."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / "settings.json"
        self.messages: list[str] = []

    def load(self) -> Settings:
        self.messages = []
        if not self.path.exists():
            return Settings()
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("the file does not hold a JSON object")
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:  # deep nesting: RecursionError
            backup = self.path.with_name(self.path.name + ".bak")
            try:
                os.replace(self.path, backup)
                kept = f"the unreadable file was kept as {backup}"
            except OSError as move_error:
                kept = f"it could not be moved aside either ({move_error})"
            self.messages.append(f"Your settings file could not be read ({e}); default settings are used and {kept}.")
            return Settings()
        known = {f.name for f in fields(Settings)}
        settings = Settings(**{k: v for k, v in raw.items() if k in known})
        problems = settings.validate()
        if problems:
            self.messages.append("Some settings were invalid and were reset to their defaults: " + "; ".join(problems))
        return settings

    def save(self, settings: Settings) -> None:
        """Write atomically so a crash mid-write never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, asdict(settings))
