"""Drag-and-drop file queue: enqueue, progress, per-file errors, cancel, exports."""
from __future__ import annotations

import json
import re
from pathlib import Path

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
    files.rows[files.jobs[0]][1].valueChanged.connect(progress.append)
    wait_idle(qtbot, files)
    assert [j.status for j in files.jobs] == ["done", "done"]
    assert progress[-1] == 1000 and progress == sorted(progress)
    assert files.item(files.jobs[0]).text(1) == "00:04" and files.item(files.jobs[0]).text(2) == "Done"
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
    messages = []
    window.files.message.connect(messages.append)
    # The same file twice in one drop is queued once.
    window.files.add_files([str(speech_wav), str(bad), str(tmp_path / "missing.mp3"), str(speech_wav)])
    assert messages[0] == "3 files added to the queue. 1 already waiting in the queue."
    wait_idle(qtbot, window.files)
    statuses = [j.status for j in window.files.jobs]
    assert statuses == ["done", "failed", "failed"]
    assert window.files.item(window.files.jobs[1]).text(2).startswith(
        "Failed: This is not an audio file Voxtral Desk can read")
    assert window.files.jobs[2].error == "File not found (moved or deleted?)"
    window.files.table.clearSelection()
    window.files.item(window.files.jobs[1]).setSelected(True)
    assert "This is not an audio file" in window.files.preview.toPlainText()
    assert not window.files.export_buttons["srt"].isEnabled()


def test_cancel_a_queued_file_and_retry_it(qtbot, make_window, speech_wav, tmp_path):
    window = make_window()
    files = window.files
    other = tmp_path / "other.wav"
    other.write_bytes(speech_wav.read_bytes())
    # Hold the engine so that both files stay queued/waiting while we cancel.
    lock_ctx = window.engine.for_dictation()
    lock_ctx.__enter__()
    try:
        files.add_files([str(speech_wav), str(other)])
        files.table.clearSelection()
        files.item(files.jobs[1]).setSelected(True)
        qtbot.mouseClick(files.cancel_button, Qt.LeftButton)
        assert files.jobs[1].status == "cancelled"
        # The buttons follow at once, without selecting another row first.
        assert files.retry_button.isEnabled() and files.remove_button.isEnabled()
        assert not files.cancel_button.isEnabled()
        files.table.clearSelection()
        files.item(files.jobs[0]).setSelected(True)
        qtbot.mouseClick(files.cancel_button, Qt.LeftButton)  # the running one, waiting for the engine
        # It stops at its next check: meanwhile it says so and cannot be cancelled twice.
        assert files.jobs[0].status in ("cancelling", "cancelled")
        if files.jobs[0].status == "cancelling":
            assert files.item(files.jobs[0]).text(2) == "Cancelling…" and not files.cancel_button.isEnabled()
        qtbot.waitUntil(lambda: files.jobs[0].status == "cancelled", timeout=10000)
        assert files.retry_button.isEnabled() and files.remove_button.isEnabled()
        assert not files.cancel_button.isEnabled()
    finally:
        lock_ctx.__exit__(None, None, None)
    wait_idle(qtbot, files)
    files.table.clearSelection()
    files.item(files.jobs[1]).setSelected(True)
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
    for i, (block, seg) in enumerate(zip(srt, segments, strict=True), 1):
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
    for cue, seg in zip(cues, segments, strict=True):
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
    window.files.item(window.files.jobs[0]).setSelected(True)
    assert window.files.preview.toPlainText() == window.files.jobs[0].transcript.text
    target = tmp_path / "chosen.vtt"
    monkeypatch.setattr(files_module.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(window.files.export_buttons["vtt"], Qt.LeftButton)
    assert target.read_text().startswith("WEBVTT")
    assert window.settings.last_dir == str(tmp_path)


def test_export_all_never_writes_two_transcripts_under_one_name(qtbot, make_window, speech_wav, tmp_path,
                                                                  monkeypatch):
    from voxtral_desk.app.files import FileQueueWidget

    window = make_window()
    audio, rate = soundfile.read(speech_wav)
    (tmp_path / "in").mkdir()
    ogg, flac = tmp_path / "in" / "memo.ogg", tmp_path / "in" / "memo.flac"
    soundfile.write(ogg, audio, rate)
    soundfile.write(flac, audio[: len(audio) // 2], rate)
    window.files.add_files([str(ogg), str(flac)])
    wait_idle(qtbot, window.files)
    out = tmp_path / "out"
    written = window.files.export_all(out, ("txt", "srt"))
    assert sorted(p.name for p in written) == ["memo.flac.srt", "memo.flac.txt", "memo.ogg.srt", "memo.ogg.txt"]
    jobs = {Path(j.path).name: j for j in window.files.jobs}
    assert (out / "memo.ogg.txt").read_text() == jobs["memo.ogg"].transcript.text + "\n"
    assert (out / "memo.flac.txt").read_text() == jobs["memo.flac"].transcript.text + "\n"

    # Files already in the folder are not replaced without asking; the answer decides.
    (out / "memo.ogg.txt").write_text("mine")
    answers = []
    monkeypatch.setattr(FileQueueWidget, "_ask_replace", lambda self, paths, folder: answers.append(
        sorted(p.name for p in paths)) or "skip")
    written = window.files.export_all(out, ("txt",))
    assert answers == [["memo.flac.txt", "memo.ogg.txt"]]
    assert (out / "memo.ogg.txt").read_text() == "mine" and written == []
    monkeypatch.setattr(FileQueueWidget, "_ask_replace", lambda self, paths, folder: "cancel")
    assert window.files.export_all(out, ("srt",)) == [] and (out / "memo.ogg.txt").read_text() == "mine"
    monkeypatch.setattr(FileQueueWidget, "_ask_replace", lambda self, paths, folder: "replace")
    assert len(window.files.export_all(out, ("txt",))) == 2
    assert (out / "memo.ogg.txt").read_text() == jobs["memo.ogg"].transcript.text + "\n"


def test_finished_files_and_their_exports_survive_a_restart(qtbot, make_window, speech_wav, tmp_path):
    window = make_window()
    window.files.add_files([str(speech_wav)])
    wait_idle(qtbot, window.files)
    before = window.files.jobs[0].transcript
    window.close()  # quit: the queue stays on disk, its transcripts in History
    window.shutdown()

    again = make_window()
    job = again.files.jobs[0]
    assert job.path == str(speech_wav) and job.status == "done"
    assert again.files.item(job).text(2) == "Done"
    for fmt in ("txt", "srt", "vtt", "json"):
        assert job.transcript.render(fmt) == before.render(fmt)
    again.files.export_all(tmp_path / "out", ("srt",))
    assert (tmp_path / "out" / "speech.srt").read_text() == before.to_srt()


def test_files_not_finished_at_quit_start_again(qtbot, make_window, speech_wav, tmp_path):
    window = make_window()
    hold = window.engine.for_dictation()
    hold.__enter__()  # the file cannot start before the app quits
    window.files.add_files([str(speech_wav)])
    window.shutdown()
    hold.__exit__(None, None, None)
    window.files.thread is None or window.files.thread.wait(10000)

    again = make_window()
    job = again.files.jobs[0]
    assert job.path == str(speech_wav)
    wait_idle(qtbot, again.files)
    assert job.status == "done" and job.transcript is not None


def test_a_dictation_pauses_a_file_which_then_continues_where_it_was(qtbot, make_window, fake_mic, speech, tmp_path,
                                                                      monkeypatch, tiny_model):
    from voxtral_desk import pipeline

    monkeypatch.setattr(pipeline, "FILE_BLOCK_SECONDS", 0.5)  # many blocks: room to interrupt between two
    long = tmp_path / "long.wav"
    soundfile.write(long, np.concatenate([speech] * 8), 16000)
    window = make_window()
    files, d = window.files, window.dictation
    progress, labels = [], []
    window.files.add_files([str(long)])
    job = files.jobs[0]
    files.rows[job][1].valueChanged.connect(progress.append)
    files.rows[job][1].valueChanged.connect(lambda _v: labels.append(files.item(job).text(2)))
    qtbot.waitUntil(lambda: job.progress > 0.1, timeout=30000)
    d.start()  # the file yields the engine at its next block
    qtbot.waitUntil(lambda: d.state == "recording", timeout=10000)
    qtbot.waitUntil(lambda: job.status in ("paused", "waiting"), timeout=10000)
    paused_at = job.progress
    assert 0.1 < paused_at < 0.98 and "paused for dictation" in files.item(job).text(2).lower()
    fake_mic.last.push(speech)
    with qtbot.waitSignal(d.finished, timeout=30000):
        d.stop()
    wait_idle(qtbot, files)
    assert job.status == "done"
    assert progress == sorted(progress) and min(p for p in progress if p > 0) < paused_at * 1000 + 1  # never back to 0
    reference = pipeline.transcribe_file(pipeline.open_session(tiny_model, "reference"), long)
    assert [(t.id, t.index) for t in job.transcript.tokens] == [(t.id, t.index) for t in reference.tokens]
    assert d.last_result.text  # and the dictation had its own, correct, stream
