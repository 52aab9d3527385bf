"""Fixtures for the app tests: Qt offscreen, settings/data/model folders in tmp (never the real home),
the tiny random model on the fast reference backend, and a fake microphone."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from app_fakes import FakeCapture, fake_devices  # noqa: E402
from x11_helpers import have, start_xvfb, stop  # noqa: E402


@pytest.fixture(autouse=True)
def app_dirs(tmp_path, monkeypatch):
    """Point every platformdirs location the app (and the model store) uses into tmp_path."""
    dirs = {name: tmp_path / name for name in ("config", "data", "cache", "home")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("VOXTRAL_DESK_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("VOXTRAL_DESK_DATA_DIR", str(dirs["data"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["config"]))
    monkeypatch.setenv("XDG_DATA_HOME", str(dirs["data"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["cache"]))
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.delenv("VOXTRAL_DESK_MODELS_DIR", raising=False)
    return dirs


@pytest.fixture(scope="session")
def tiny_model(model_dir):
    return model_dir("tiny", 0)


@pytest.fixture(scope="session")
def speech(clips) -> np.ndarray:
    """~4 s of espeak speech, 16 kHz mono float32."""
    return clips["speech"]


@pytest.fixture(scope="session")
def engine_host(tiny_model):
    """One loaded tiny model on the reference backend, shared: every job resets the session first."""
    from voxtral_desk.app.workers import EngineHost
    from voxtral_desk.pipeline import open_session

    return EngineHost(open_session(tiny_model, "reference"), str(tiny_model))


@pytest.fixture(scope="session")
def offline(tiny_model):
    """offline(samples, delay_ms=480) -> tokens of feed(all) + flush() on a fresh session."""
    from voxtral_desk.pipeline import open_session

    session = open_session(tiny_model, "reference")

    def run(samples: np.ndarray, delay_ms: int = 480):
        session.reset(delay_ms)
        session.feed(samples)
        session.flush()
        return list(session.tokens)

    return run


@pytest.fixture
def fake_mic():
    """The FakeCapture the next dictation opens (a new one per dictation, like a real stream)."""
    made: list[FakeCapture] = []

    class Factory:
        def __call__(self):
            cap = FakeCapture()
            made.append(cap)
            return cap

        @property
        def last(self) -> FakeCapture:
            return made[-1]

    return Factory()


@pytest.fixture
def xserver(monkeypatch):
    """An Xvfb display for this test, with the environment of an X11 session pointing at it."""
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


@pytest.fixture
def make_window(qtbot, fake_mic, tiny_model):
    """make_window(**settings) -> MainWindow on the fake microphone, no global hotkey, tray object created."""
    from voxtral_desk.app.history import History
    from voxtral_desk.app.main_window import MainWindow
    from voxtral_desk.app.platform_support import PlatformSupport
    from voxtral_desk.app.settings import SettingsStore

    windows = []

    def make(start: bool = True, support=None, device_lister=None, **overrides):
        store = SettingsStore()
        settings = store.load()
        settings.backend = "reference"
        settings.model_path = str(tiny_model)
        for k, v in overrides.items():
            setattr(settings, k, v)
        store.save(settings)
        window = MainWindow(store, settings, History(), capture_factory=fake_mic,
                            device_lister=device_lister or fake_devices,
                            support=support or PlatformSupport(False, False, "Global hotkeys are off in tests."))
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        if start:
            window.start(store.messages)
            if window.model_host.loader is not None:
                qtbot.waitUntil(lambda: window.engine is not None or bool(window.model_host.load_error), timeout=30000)
        return window

    yield make
    for w in windows:
        w.shutdown()
        if w.history is not None:
            w.history.close()

