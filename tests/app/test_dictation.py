"""The dictation tab, driven like a person would: buttons, the fake microphone, the text box."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app_fakes import FakeCapture, dictate
from voxtral_desk.app.settings import SettingsStore


def ids(tokens):
    return [(t.id, t.index) for t in tokens]


def test_text_grows_while_speaking_and_stop_transcribes_everything(qtbot, make_window, fake_mic, speech, offline):
    window = make_window()
    d = window.dictation
    assert d.record_button.text() == "Start dictation"
    seen = {}

    def while_recording(d):
        seen["state"] = d.state_label.text()
        seen["button"] = d.record_button.text()
        seen["read_only"] = d.editor.isReadOnly()
        seen["tray"] = window.tray.state
        qtbot.waitUntil(lambda: d.editor.toPlainText() != "", timeout=10000)
        seen["partial_text"] = d.editor.toPlainText()
        qtbot.waitUntil(lambda: d.clock_label.text() != "00:00" or d.level_meter.fraction > 0, timeout=10000)
        seen["level"] = d.level_meter.fraction

    result = dictate(qtbot, window, fake_mic, speech, while_recording)
    assert seen["state"] == "● Recording" and seen["button"] == "Stop" and seen["read_only"]
    assert seen["tray"] == "recording" and seen["level"] > 0
    assert ids(result.tokens) == ids(offline(fake_mic.last.all_pushed()))
    assert d.editor.toPlainText() == result.text
    assert result.text.startswith(seen["partial_text"])
    assert [p[0] for p in d.partials] == list(range(1, len(d.partials) + 1))
    assert sum(p[1] for p in d.partials) == len(result.tokens)
    assert d.state == "idle" and not d.editor.isReadOnly() and window.tray.state == "idle"
    assert d.clock_label.text() == "00:04"  # ~4.3 s of speech
    assert window.history.get(result.history_id).text == result.text


def test_second_dictation_appends_on_a_new_line(qtbot, make_window, fake_mic, speech):
    window = make_window()
    first = dictate(qtbot, window, fake_mic, speech)
    second = dictate(qtbot, window, fake_mic, speech[: len(speech) // 2])
    assert window.dictation.text() == first.text + "\n" + second.text
    assert len(window.history.entries()) == 2


def test_copy_clear_and_save(qtbot, make_window, fake_mic, speech, tmp_path):
    window = make_window()
    d = window.dictation
    result = dictate(qtbot, window, fake_mic, speech)
    qtbot.mouseClick(d.copy_button, Qt.LeftButton)
    assert QGuiApplication.clipboard().text() == result.text
    d.save_text(tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == result.text + "\n"
    qtbot.mouseClick(d.clear_button, Qt.LeftButton)
    assert d.text() == "" and d.count_label.text() == "0 words"
    assert window.history.get(result.history_id).text == result.text  # clearing never loses a dictation


def test_delay_setting_is_used_and_persisted(qtbot, make_window, fake_mic, speech, offline):
    window = make_window()
    d = window.dictation
    d.delay_spin.setValue(1280)
    assert SettingsStore().load().delay_ms == 1280
    d.delay_spin.lineEdit().setText("1000")  # not a multiple of 80: snaps to the nearest step
    d.delay_spin.interpretText()
    assert d.delay_spin.value() == 960
    result = dictate(qtbot, window, fake_mic, speech)
    assert window.engine.session.delay_ms == 960
    assert ids(result.tokens) == ids(offline(fake_mic.last.all_pushed(), delay_ms=960))
    assert not d.delay_spin.isEnabled() if d.state != "idle" else d.delay_spin.isEnabled()


def test_device_choice_is_persisted_and_used(qtbot, make_window, fake_mic):
    window = make_window()
    d = window.dictation
    index = d.device_combo.findData("USB Headset")
    d.device_combo.setCurrentIndex(index)
    d.device_combo.activated.emit(index)
    assert SettingsStore().load().input_device == "USB Headset"
    qtbot.mouseClick(d.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    assert fake_mic.last.device_name == "USB Headset"
    with qtbot.waitSignal(d.finished, timeout=30000):
        d.stop()


def test_unplugged_device_during_dictation(qtbot, make_window, fake_mic, speech):
    window = make_window()
    d = window.dictation
    d.editor.setPlainText("Earlier text.")
    qtbot.mouseClick(d.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    fake_mic.last.push(speech)
    qtbot.waitUntil(lambda: len(d.text()) > len("Earlier text.\n"), timeout=10000)
    with qtbot.waitSignal(d.finished, timeout=30000) as blocker:
        fake_mic.last.unplug()
    result = blocker.args[0]
    assert d.banner.isVisible() and "unplugged" in d.banner.text and "text so far is kept" in d.banner.text
    assert result.text and d.text() == "Earlier text.\n" + result.text
    assert d.state == "idle"
    # Still usable: the next dictation works.
    again = dictate(qtbot, window, fake_mic, speech)
    assert again.tokens


def test_no_input_device(qtbot, make_window, fake_mic):
    window = make_window()
    d = window.dictation
    d.editor.setPlainText("Keep me.")
    window.dictation.capture_factory = lambda: FakeCapture(
        fail_open="No microphone found. Connect one, then try again.")
    qtbot.mouseClick(d.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: d.banner.isVisible(), timeout=10000)
    qtbot.waitUntil(lambda: d.state == "idle", timeout=10000)
    assert "No microphone found" in d.banner.text
    assert d.text() == "Keep me." and not d.editor.isReadOnly()
    assert window.tray.state == "idle"


def test_device_list_failure_is_shown_not_raised(qtbot, make_window):
    from voxtral_desk.app.audio_capture import CaptureError

    def broken(_refresh):
        raise CaptureError("Audio input is unavailable: PortAudio library not found.")

    window = make_window(device_lister=broken)
    d = window.dictation
    assert d.banner.isVisible() and "PortAudio" in d.banner.text
    assert d.device_combo.count() == 1 and d.device_combo.currentData() == ""


def test_level_meter_follows_loudness(qtbot, make_window, fake_mic):
    window = make_window()
    d = window.dictation
    qtbot.mouseClick(d.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    fake_mic.last.push(np.full(4000, 0.5, dtype=np.float32))
    qtbot.waitUntil(lambda: d.level_meter.db > -7, timeout=10000)  # 0.5 = -6 dBFS
    fake_mic.last.push(np.zeros(8000, dtype=np.float32))
    qtbot.waitUntil(lambda: d.level_meter.fraction == 0.0, timeout=10000)
    assert d.state == "recording" and not d.banner.isVisible()
    with qtbot.waitSignal(d.finished, timeout=30000):
        d.stop()
