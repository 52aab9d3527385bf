"""History tab: every entry exported again, in every format its kept tokens allow."""
from __future__ import annotations

from PySide6.QtCore import Qt

from app_fakes import dictate
from voxtral_desk.app import history_panel as panel_module


def wait_idle(qtbot, files, timeout=60000):
    qtbot.waitUntil(lambda: not files.busy, timeout=timeout)


def test_a_file_is_exported_from_history_in_every_format(qtbot, make_window, speech_wav, tmp_path, monkeypatch):
    window = make_window()
    window.files.add_files([str(speech_wav)])
    wait_idle(qtbot, window.files)
    transcript = window.files.jobs[0].transcript
    panel = window.history_panel
    panel.reload()
    panel.list.setCurrentRow(0)
    for fmt in ("txt", "srt", "vtt", "json"):
        assert panel.export_buttons[fmt].isEnabled()
        target = tmp_path / f"out.{fmt}"
        monkeypatch.setattr(panel_module.QFileDialog, "getSaveFileName", lambda *a, t=target, **k: (str(t), ""))
        qtbot.mouseClick(panel.export_buttons[fmt], Qt.LeftButton)
        assert target.read_text() == transcript.render(fmt)
    assert window.toast.text() == f"Exported out.json to {tmp_path}."


def test_a_dictation_keeps_its_timings_for_subtitles(qtbot, make_window, fake_mic, speech, tmp_path):
    window = make_window()
    d = window.dictation
    dictate(qtbot, window, fake_mic, speech)
    panel = window.history_panel
    panel.reload()
    panel.list.setCurrentRow(0)
    entry = panel.current_entry()
    srt = panel.export(entry, "srt", tmp_path / "d.srt").read_text()
    assert srt.startswith("1\n00:00:") and d.last_result.text.split()[0] in srt
    assert panel.export(entry, "txt", tmp_path / "d.txt").read_text() == d.last_result.text + "\n"


def test_an_entry_without_kept_tokens_exports_its_text(qtbot, make_window, tmp_path):
    window = make_window()
    window.history.add("dictation", "Fake Microphone", "older words", 1.0)  # as an earlier version kept it
    panel = window.history_panel
    panel.reload()
    panel.list.setCurrentRow(0)
    assert panel.export_buttons["txt"].isEnabled() and not panel.export_buttons["srt"].isEnabled()
    assert "TXT only" in panel.export_buttons["srt"].toolTip()
    assert panel.export(panel.current_entry(), "txt", tmp_path / "o.txt").read_text() == "older words\n"
