"""Settings file: defaults, round trip, corrupt files and bad values."""
from __future__ import annotations

import json

from voxtral_desk.app.settings import Settings, SettingsStore
from voxtral_desk.paths import config_dir


def test_settings_live_in_the_redirected_config_dir(app_dirs):
    assert config_dir() == app_dirs["config"]
    assert SettingsStore().path == app_dirs["config"] / "settings.json"


def test_defaults_when_there_is_no_file():
    store = SettingsStore()
    s = store.load()
    assert s == Settings()
    assert s.backend == "gpu" and s.delay_ms == 480 and store.messages == []


def test_round_trip():
    store = SettingsStore()
    s = Settings(model_path="/models/voxtral", backend="reference", delay_ms=1280, input_device="USB Headset",
                 hotkey="F9", injection="type", keep_recordings=True)
    store.save(s)
    assert SettingsStore().load() == s


def test_corrupt_file_gives_defaults_a_message_and_a_backup():
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text('{"backend": "reference", "delay_ms": 9', encoding="utf-8")
    s = store.load()
    assert s == Settings()
    assert len(store.messages) == 1 and "could not be read" in store.messages[0]
    backup = store.path.with_name("settings.json.bak")
    assert backup.read_text() == '{"backend": "reference", "delay_ms": 9'
    assert not store.path.exists()
    store.save(s)  # and the app can write a good one again
    assert json.loads(store.path.read_text())["backend"] == "gpu"


def test_bad_values_fall_back_one_by_one():
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"backend": "cuda", "delay_ms": 500, "injection": "type", "hotkey": "F9",
                                      "keep_recordings": "yes", "unknown_key": 1}), encoding="utf-8")
    s = store.load()
    assert (s.backend, s.delay_ms, s.keep_recordings) == ("gpu", 480, False)  # reset
    assert (s.injection, s.hotkey) == ("type", "F9")  # kept
    assert "backend" in store.messages[0] and "delay_ms" in store.messages[0] and "keep_recordings" in store.messages[0]


def test_delay_limits():
    for ms, ok in ((80, True), (2400, True), (2480, False), (0, False), (160, True), (100, False)):
        s = Settings(delay_ms=ms)
        assert (s.validate() == []) is ok, ms


def test_deeply_nested_json_gives_defaults_and_a_backup():
    # json.loads raises RecursionError, not ValueError, on thousands of nested brackets.
    store = SettingsStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text("[" * 200000 + "]" * 200000, encoding="utf-8")
    assert store.load() == Settings()
    assert "could not be read" in store.messages[0]
    assert store.path.with_name("settings.json.bak").exists() and not store.path.exists()


def test_a_settings_file_that_is_a_folder_gives_defaults():
    store = SettingsStore()
    store.path.mkdir(parents=True)
    assert store.load() == Settings()
    assert "could not be read" in store.messages[0]
