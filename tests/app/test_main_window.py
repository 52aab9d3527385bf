"""The main window: first run without a model, model loading, settings, start-up notices, closing."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QLabel

from app_fakes import dictate
from voxtral_desk.app.history import History
from voxtral_desk.app.model_host import NO_MODEL_TEXT
from voxtral_desk.app.platform_support import PlatformSupport
from voxtral_desk.app.settings import SettingsStore


def test_first_run_without_a_model_leads_to_the_model_manager(qtbot, make_window, tiny_model):
    window = make_window(model_path="")
    host = window.model_host
    assert window.engine is None and host.loader is None
    assert host.banner.isVisible() and host.banner.text == NO_MODEL_TEXT
    assert host.model_label.text() == "No model"
    # The model manager opens by itself on a first run.
    qtbot.waitUntil(lambda: host.model_dialog is not None and host.model_dialog.isVisible(), timeout=5000)
    host.model_dialog.close()
    # Start without a model: no crash, the model manager opens again.
    qtbot.mouseClick(window.dictation.record_button, Qt.LeftButton)
    dialog = host.model_dialog
    assert dialog is not None and dialog.isVisible()
    assert window.dictation.state == "idle"
    dialog.close()
    qtbot.mouseClick(host.banner.button("models"), Qt.LeftButton)
    assert dialog.isVisible()
    # The user imports a model there and picks it.
    installed = dialog.store.import_path(tiny_model)
    dialog.select(installed.name)
    with qtbot.waitSignal(host.engine_ready, timeout=30000):
        dialog.use_selected()
    assert window.engine is not None and not host.banner.isVisible()
    assert SettingsStore().load().model_path == str(installed.path)
    assert host.model_label.text().startswith(f"Model: {installed.name}")


def test_files_dropped_before_a_model_wait_for_it(qtbot, make_window, speech_wav, tiny_model):
    window = make_window(model_path="")
    host = window.model_host
    window.files.add_files([str(speech_wav)])
    assert "waiting for the model" in window.files.item(window.files.jobs[0]).text(2)
    host.model_dialog.close()
    host.use_model(str(tiny_model))
    qtbot.waitUntil(lambda: window.files.jobs[0].status == "done", timeout=30000)


def test_installed_default_model_loads_without_asking(qtbot, make_window, tiny_model):
    from voxtral_desk.models.store import ModelStore

    ModelStore().import_path(tiny_model)
    window = make_window(model_path="")
    assert window.engine is not None and window.model_host.model_dialog is None
    assert window.engine.model_path.endswith(f"models/{tiny_model.name}")


def test_a_broken_model_path_is_explained(qtbot, make_window, tmp_path):
    window = make_window(model_path=str(tmp_path / "gone"))
    host = window.model_host
    assert window.engine is None
    assert host.banner.isVisible() and host.banner.kind == "error"
    assert "no such file or folder" in host.banner.text
    assert host.banner.button("models") is not None and host.banner.button("settings") is not None


def test_model_loads_off_the_ui_thread_with_progress(qtbot, make_window):
    window = make_window(start=False)
    host = window.model_host
    stages = []
    window.start()
    assert host.loader is not None and host.load_bar.isVisible()  # start() returned while loading
    assert window.app_state() == ("busy", "loading the model") and window.tray.state == "busy"
    host.loader.progress.connect(stages.append)
    qtbot.waitUntil(lambda: window.engine is not None, timeout=30000)
    qtbot.waitUntil(lambda: host.loader is None, timeout=10000)
    assert not host.load_bar.isVisible() and window.tray.state == "idle"


def test_missing_gpu_engine_or_backend_failure_is_explained(qtbot, make_window, monkeypatch):
    from voxtral_desk import pipeline

    def broken(model, backend="gpu", **options):
        raise RuntimeError("no suitable GPU adapter")

    monkeypatch.setattr(pipeline, "create_engine", broken)
    window = make_window(backend="gpu")
    assert window.engine is None
    assert "gpu engine could not start: no suitable GPU adapter" in window.model_host.banner.text


def test_settings_dialog_applies_and_persists(qtbot, make_window, monkeypatch):
    window = make_window()
    dialog = window.open_settings()
    assert dialog.isVisible()
    assert dialog.support_label.text() == "Global hotkeys are off in tests."
    assert not dialog.hotkey_edit.isEnabled()  # platform without global hotkeys
    dialog.delay_spin.setValue(800)
    dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("USB Headset"))
    dialog.injection_combo.setCurrentIndex(dialog.injection_combo.findData("type"))
    dialog.buttons.button(QDialogButtonBox.Ok).click()
    saved = SettingsStore().load()
    assert (saved.delay_ms, saved.input_device, saved.injection) == (800, "USB Headset", "type")
    assert window.dictation.delay_spin.value() == 800
    assert window.dictation.device_combo.currentData() == "USB Headset"


def test_settings_dialog_rejects_a_bad_hotkey(qtbot, make_window):
    window = make_window(support=PlatformSupport(True, True, ""))
    window.hotkeys.stop()
    dialog = window.open_settings()
    assert not dialog.support_label.isVisible()
    dialog.hotkey_edit.setText("ctrl+")
    ok = dialog.buttons.button(QDialogButtonBox.Ok)
    assert not ok.isEnabled() and "not a key combination" in dialog.hotkey_error.text()
    dialog.hotkey_edit.setText("ctrl+alt+h")
    assert ok.isEnabled()
    place = ok.mapTo(dialog, ok.rect().topLeft())
    dialog.hotkey_edit.setText("ctrl+banana")  # a key that does not exist is refused before OK
    assert not ok.isEnabled() and "no key called “banana”" in dialog.hotkey_error.text()
    assert ok.mapTo(dialog, ok.rect().topLeft()) == place  # the message does not move the buttons
    dialog.reject()


def test_the_hotkey_is_recorded_by_pressing_it(qtbot, make_window):
    window = make_window(support=PlatformSupport(True, True, ""))
    window.hotkeys.stop()
    dialog = window.open_settings()
    ok = dialog.buttons.button(QDialogButtonBox.Ok)
    qtbot.mouseClick(dialog.record_button, Qt.LeftButton)
    assert dialog.hotkey_edit.recording and not ok.isEnabled()
    qtbot.keyClick(dialog.hotkey_edit, Qt.Key_Control, Qt.ControlModifier)  # a modifier alone: still waiting
    assert dialog.hotkey_edit.recording
    qtbot.keyClick(dialog.hotkey_edit, Qt.Key_F9, Qt.ControlModifier | Qt.AltModifier)
    assert dialog.hotkey_edit.text() == "ctrl+alt+F9" and ok.isEnabled()
    qtbot.mouseClick(dialog.record_button, Qt.LeftButton)
    qtbot.keyClick(dialog.hotkey_edit, Qt.Key_Escape)  # changed their mind: the old one stays
    assert dialog.hotkey_edit.text() == "ctrl+alt+F9" and not dialog.hotkey_edit.recording
    dialog.reject()


def test_a_corrupt_settings_file_is_reported_at_start(qtbot, app_dirs, tiny_model, fake_mic):
    from app_fakes import fake_devices
    from voxtral_desk.app.main_window import MainWindow

    store = SettingsStore()
    store.path.write_text("{not json", encoding="utf-8")
    settings = store.load()
    window = MainWindow(store, settings, History(), capture_factory=fake_mic, device_lister=fake_devices,
                        support=PlatformSupport(False, False, "off"))
    qtbot.addWidget(window)
    window.show()
    window.start(store.messages)
    assert (b := window.notices.banner("startup")) and "could not be read" in b.text
    assert "settings.json.bak" in b.text
    window.shutdown()


def test_recovered_dictations_are_announced(qtbot, make_window):
    h = History()
    entry = h.start("dictation", "Fake Microphone")
    h.update(entry, "words before the crash", 2.0)
    del h
    window = make_window()
    assert (b := window.notices.banner("startup")) and "still recording when Voxtral Desk last stopped" in b.text
    window.tabs.setCurrentWidget(window.history_panel)
    panel = window.history_panel
    assert panel.list.count() == 1 and "recovered" in panel.list.item(0).text()
    panel.list.setCurrentRow(0)
    assert panel.viewer.toPlainText() == "words before the crash"


def test_history_tab_lists_copies_and_deletes(qtbot, make_window, monkeypatch):
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    window.history.add("dictation", "Fake Microphone", "first words", 1.0)
    window.history.add("file", "/audio/talk.wav", "file words", 60.0)
    panel = window.history_panel
    panel.reload()
    assert panel.list.count() == 2 and "talk.wav" in panel.list.item(0).text()
    panel.list.setCurrentRow(1)
    qtbot.mouseClick(panel.copy_button, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == "first words"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    qtbot.mouseClick(panel.delete_button, Qt.LeftButton)
    assert [e.text for e in window.history.entries()] == ["file words"]


def test_quit_stops_and_saves_a_running_dictation(qtbot, make_window, fake_mic, speech):
    window = make_window()
    d = window.dictation
    d.start()
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    fake_mic.last.push(speech)
    window.quit()  # flushes the dictation before closing
    assert not window.isVisible()
    entries = window.history.entries()
    assert entries[0].status == "done" and entries[0].text


def test_closing_hides_to_the_tray_when_there_is_one(qtbot, make_window, monkeypatch):
    from voxtral_desk.app.tray import Tray

    monkeypatch.setattr(Tray, "available", staticmethod(lambda: True))
    window = make_window()
    window.close()
    assert not window.isVisible() and not window._shut_down
    window.tray.show_action.trigger()
    assert window.isVisible()
    with qtbot.waitSignal(window.closed, timeout=10000):
        window.tray.quit_action.trigger()
    assert window._shut_down


def test_settings_file_never_in_the_real_home(app_dirs):
    import os

    assert SettingsStore().path.is_relative_to(app_dirs["config"])
    assert os.environ["HOME"] == str(app_dirs["home"])
    assert json.loads(json.dumps({"ok": True}))


def test_push_to_talk_dictates_and_delivers_the_text(qtbot, make_window, fake_mic, speech):
    from PySide6.QtGui import QGuiApplication

    window = make_window(injection="clipboard")
    QGuiApplication.clipboard().setText("old")
    window.hotkeys.pressed.emit()  # as the X11 listener does when the key goes down
    qtbot.waitUntil(lambda: window.dictation.state == "recording", timeout=10000)
    fake_mic.last.push(speech)
    with qtbot.waitSignal(window.injector.finished, timeout=30000) as blocker:
        window.hotkeys.released.emit()
    result = window.dictation.last_result
    assert blocker.args == ["Copied to the clipboard."]
    assert result.text and QGuiApplication.clipboard().text() == result.text
    # A dictation started with the button is not pushed anywhere.
    QGuiApplication.clipboard().setText("untouched")
    window.dictation.start()
    qtbot.waitUntil(lambda: window.dictation.state == "recording", timeout=10000)
    fake_mic.last.push(speech)
    window.hotkeys.released.emit()  # a stray release must not stop it
    assert window.dictation.state == "recording"
    with qtbot.waitSignal(window.dictation.finished, timeout=30000):
        window.dictation.stop()
    assert QGuiApplication.clipboard().text() == "untouched"


def test_a_history_that_cannot_be_written_is_announced_and_saved_later(qtbot, make_window, fake_mic, speech):
    import sqlite3

    window = make_window()
    window.history._db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(window.history.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    d = window.dictation
    dictate(qtbot, window, fake_mic, speech)
    assert d.text().strip() == d.last_result.text  # the text is shown as always
    window._check_history()
    assert (b := window.notices.banner("history")) and "cannot be saved right now" in b.text
    other.execute("ROLLBACK")
    window._check_history()
    assert window.notices.banner("history") is None
    assert History().entries()[0].text == d.last_result.text


def test_a_fixed_hotkey_takes_its_warning_with_it(qtbot, make_window, monkeypatch):
    window = make_window(support=PlatformSupport(True, True, ""))
    monkeypatch.setattr(window.hotkeys, "start", lambda text, support: None if text == "F9" else
                        "Hotkey: ctrl+alt+space is already used by another application; choose another hotkey")
    window.apply_hotkey()
    assert (b := window.notices.banner("hotkey")) and "already used" in b.text
    new = SettingsStore().load()
    new.hotkey = "F9"
    window.apply_settings(new)
    assert window.notices.banner("hotkey") is None and window.hotkey_label.text() == "Hold F9 to dictate"


def test_the_window_comes_back_where_it_was(qtbot, make_window):
    window = make_window()
    window.resize(760, 520)  # the offscreen screen is 800 x 600
    window.quit()
    again = make_window()
    assert (again.width(), again.height()) == (760, 520)


def test_copy_save_and_export_say_what_they_did(qtbot, make_window, tmp_path):
    window = make_window()
    window.dictation.editor.setPlainText("some words")
    qtbot.mouseClick(window.dictation.copy_button, Qt.LeftButton)
    assert window.toast.isVisible() and window.toast.text() == "Copied to the clipboard."
    window.dictation.save_text(tmp_path / "d.txt")
    assert window.toast.text() == f"Saved to {tmp_path / 'd.txt'}."


def test_the_model_text_in_the_status_bar_is_shortened_not_cut(qtbot, make_window):
    window = make_window()
    label = window.model_host.model_label
    label.setText("Model: a-model-with-a-really-long-name-that-does-not-fit · gpu: llvmpipe (LLVM 15.0.6, 256 bits)")
    label.resize(200, label.height())
    assert label.toolTip() == label.text() and "…" in QLabel.text(label)


def _installed(tiny_model):
    from voxtral_desk.models.store import ModelStore

    store = ModelStore()
    return store, store.import_path(tiny_model)


def test_a_truncated_model_is_named_and_repaired_from_where_it_came(qtbot, make_window, tiny_model):
    store, model = _installed(tiny_model)
    gguf = next(model.path.glob("*.gguf"))
    gguf.write_bytes(gguf.read_bytes()[:150000])
    window = make_window(model_path="")
    host = window.model_host
    assert window.engine is None and host.loader is None  # not even tried: the sizes already say it
    assert host.banner.kind == "error"
    assert f"{gguf.name} has 150000 bytes" in host.banner.text and "Import it again from" in host.banner.text
    with qtbot.waitSignal(host.engine_ready, timeout=60000):
        qtbot.mouseClick(host.banner.button("repair"), Qt.LeftButton)
    assert window.engine is not None and store.find(model.name).verified


def test_same_size_damage_is_found_after_loading(qtbot, make_window, tiny_model):
    store, model = _installed(tiny_model)
    gguf = next(model.path.glob("*.gguf"))
    window = make_window(model_path="")
    host = window.model_host
    assert window.engine is not None
    qtbot.waitUntil(lambda: host.model_check is None or host.model_check.isFinished(), timeout=20000)
    data = bytearray(gguf.read_bytes())
    data[-100] ^= 0xFF  # inside the last tensor's data: loads without an error
    gguf.write_bytes(bytes(data))
    host.load_model()  # e.g. the next start
    qtbot.waitUntil(lambda: host.banner.isVisible() and host.banner.kind == "error", timeout=30000)
    assert f"{gguf.name} does not match its SHA-256" in host.banner.text
    assert window.engine is None and host.banner.button("repair") is not None
    assert not store.find(model.name).verified  # remembered: the next start says it before loading


def test_removing_the_model_in_use_unloads_it(qtbot, make_window, tiny_model, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    store, model = _installed(tiny_model)
    window = make_window(model_path="")
    host = window.model_host
    assert window.engine is not None
    host.open_model_manager()
    dialog = host.model_dialog
    dialog.select(model.name)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    dialog.remove_selected()
    assert window.engine is None and host.model_label.text() == "No model"
    assert host.banner.text == NO_MODEL_TEXT and window.dictation.state_label.text() == "No model"
    window.shutdown()
    again = make_window(model_path=str(model.path))  # a setting still naming it: the first-run state, not an error
    assert again.model_host.banner.text == NO_MODEL_TEXT and again.model_host.banner.kind == "info"
