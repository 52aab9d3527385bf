"""Drag-and-drop file queue: enqueue, progress, per-file errors, cancel, exports."""
from __future__ import annotations

import json
import re

import numpy as np
import soundfile
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from voxtral_desk.pipeline import open_session, transcribe_file


def drop(widget, paths):
    """Drag paths over widget and drop them, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(widget.width() // 2, widget.height() // 2)  # QPointF only from PySide6 6.12
    enter = QDragEnterEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    accepted = enter.isAccepted()
    event = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, event)
    return accepted


def wait_idle(qtbot, files, timeout=60000):
    qtbot.waitUntil(lambda: not files.busy, timeout=timeout)


def test_dropping_files_on_the_queue_enqueues_and_transcribes_them(qtbot, make_window, speech_wav, tmp_path,
                                                                   tiny_model):
    window = make_window()
    files = window.files
    second = tmp_path / "second.flac"
    soundfile.write(second, soundfile.read(speech_wav)[0][:30000], 22050)
    assert drop(files.table.viewport(), [speech_wav, second])
    assert [j.path for j in files.jobs] == [str(speech_wav), str(second)]
    assert files.table.topLevelItemCount() == 2
    progress = []
    files.jobs[0].bar.valueChanged.connect(progress.append)
    wait_idle(qtbot, files)
    assert [j.status for j in files.jobs] == ["done", "done"]
    assert progress[-1] == 1000 and progress == sorted(progress)
    assert files.jobs[0].item.text(1) == "00:04" and files.jobs[0].item.text(2) == "Done"
    # The same tokens as the pipeline gives on its own.
    ref = transcribe_file(open_session(tiny_model, "reference"), speech_wav)
    assert [t.id for t in files.jobs[0].transcript.tokens] == [t.id for t in ref.tokens]
    assert [e.kind for e in window.history.entries()] == ["file", "file"]


def test_dropping_on_the_window_switches_to_the_files_tab(qtbot, make_window, speech_wav):
    window = make_window()
    assert window.tabs.currentWidget() is window.dictation
    assert drop(window, [speech_wav])
    assert window.tabs.currentWidget() is window.files and len(window.files.jobs) == 1
    wait_idle(qtbot, window.files)


def test_a_dropped_folder_adds_its_audio_files(qtbot, make_window, speech_wav, tmp_path):
    window = make_window()
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.wav").write_bytes(speech_wav.read_bytes())
    (folder / "sub" / "a.wav").write_bytes(speech_wav.read_bytes())
    (folder / "notes.txt").write_text("not audio")
    drop(window.files.table.viewport(), [folder])
    assert [j.path for j in window.files.jobs] == [str(folder / "b.wav"), str(folder / "sub" / "a.wav")]
    wait_idle(qtbot, window.files)


def test_non_file_drops_are_refused(qtbot, make_window):
    window = make_window()
    mime = QMimeData()
    mime.setText("just text")
    enter = QDragEnterEvent(QPoint(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window.files.table.viewport(), enter)
    assert not enter.isAccepted()


def test_a_bad_file_fails_alone(qtbot, make_window, speech_wav, tmp_path):
    window = make_window()
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    window.files.add_files([str(speech_wav), str(bad), str(tmp_path / "missing.mp3"), str(speech_wav)])
    wait_idle(qtbot, window.files)
    statuses = [j.status for j in window.files.jobs]
    assert statuses == ["done", "failed", "failed", "done"]
    assert window.files.jobs[1].item.text(2).startswith("Failed: Cannot read audio")
    assert window.files.jobs[2].error == "File not found (moved or deleted?)"
    window.files.table.clearSelection()
    window.files.jobs[1].item.setSelected(True)
    assert "Cannot read audio" in window.files.preview.toPlainText()
    assert not window.files.export_buttons["srt"].isEnabled()


def test_cancel_a_queued_file_and_retry_it(qtbot, make_window, speech_wav):
    window = make_window()
    files = window.files
    # Hold the engine so that both files stay queued/waiting while we cancel.
    lock_ctx = window.engine.for_dictation()
    lock_ctx.__enter__()
    try:
        files.add_files([str(speech_wav), str(speech_wav)])
        files.table.clearSelection()
        files.jobs[1].item.setSelected(True)
        qtbot.mouseClick(files.cancel_button, Qt.LeftButton)
        assert files.jobs[1].status == "cancelled"
        files.table.clearSelection()
        files.jobs[0].item.setSelected(True)
        qtbot.mouseClick(files.cancel_button, Qt.LeftButton)  # the running one, waiting for the engine
        qtbot.waitUntil(lambda: files.jobs[0].status == "cancelled", timeout=10000)
    finally:
        lock_ctx.__exit__(None, None, None)
    wait_idle(qtbot, files)
    files.table.clearSelection()
    files.jobs[1].item.setSelected(True)
    qtbot.mouseClick(files.retry_button, Qt.LeftButton)
    wait_idle(qtbot, files)
    assert [j.status for j in files.jobs] == ["cancelled", "done"]


def test_files_wait_for_a_running_dictation(qtbot, make_window, fake_mic, speech_wav, speech):
    window = make_window()
    d = window.dictation
    qtbot.mouseClick(d.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    fake_mic.last.push(speech)
    qtbot.waitUntil(lambda: len(d.partials) >= 1, timeout=10000)
    window.files.add_files([str(speech_wav)])
    assert window.tray.state == "recording"
    with qtbot.waitSignal(d.finished, timeout=30000):
        d.stop()
    wait_idle(qtbot, window.files)
    assert window.files.jobs[0].status == "done"
    assert window.tray.state == "idle"


SRT_CUE = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)$", re.S)
VTT_TIME = re.compile(r"^(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)$")


def _seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_exports_are_valid_txt_srt_vtt_json(qtbot, make_window, tmp_path):
    window = make_window()
    # 12 s of speech-like noise bursts: several cues.
    rng = np.random.default_rng(3)
    audio = np.concatenate([np.concatenate([rng.standard_normal(16000).astype(np.float32) * 0.2,
                                            np.zeros(8000, np.float32)]) for _ in range(8)])
    path = tmp_path / "talk.wav"
    soundfile.write(path, audio, 16000)
    window.files.add_files([str(path)])
    wait_idle(qtbot, window.files)
    job = window.files.jobs[0]
    assert job.status == "done"
    written = window.files.export_all(tmp_path / "out")
    assert sorted(p.name for p in written) == ["talk.json", "talk.srt", "talk.txt", "talk.vtt"]
    transcript = job.transcript
    text = (tmp_path / "out" / "talk.txt").read_text()
    assert text == transcript.text + "\n"

    srt = (tmp_path / "out" / "talk.srt").read_text().strip().split("\n\n")
    segments = transcript.segments()
    assert len(srt) == len(segments) >= 1
    last_end = 0.0
    for i, (block, seg) in enumerate(zip(srt, segments), 1):
        m = SRT_CUE.match(block)
        assert m, block
        start, end = _seconds(m[2]), _seconds(m[3])
        assert int(m[1]) == i and last_end <= start < end and m[4] == seg.text
        assert round(start / 0.08, 6).is_integer() and round(end / 0.08, 6).is_integer()  # the 80 ms grid
        last_end = end

    vtt = (tmp_path / "out" / "talk.vtt").read_text()
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt[len("WEBVTT\n\n"):].strip().split("\n\n")
    assert len(cues) == len(segments)
    for cue, seg in zip(cues, segments):
        timing, body = cue.split("\n", 1)
        m = VTT_TIME.match(timing)
        assert m and body == seg.text and _seconds(m[1]) == seg.start

    doc = json.loads((tmp_path / "out" / "talk.json").read_text())
    assert doc["text"] == transcript.text and len(doc["tokens"]) == len(transcript.tokens)
    assert all(abs(t["end"] - t["start"] - 0.08) < 1e-6 for t in doc["tokens"])
    assert doc["duration"] == 12.0


def test_export_button_uses_the_save_dialog(qtbot, make_window, speech_wav, tmp_path, monkeypatch):
    from voxtral_desk.app import files as files_module

    window = make_window()
    window.files.add_files([str(speech_wav)])
    wait_idle(qtbot, window.files)
    window.files.jobs[0].item.setSelected(True)
    assert window.files.preview.toPlainText() == window.files.jobs[0].transcript.text
    target = tmp_path / "chosen.vtt"
    monkeypatch.setattr(files_module.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(window.files.export_buttons["vtt"], Qt.LeftButton)
    assert target.read_text().startswith("WEBVTT")
    assert window.settings.last_dir == str(tmp_path)
