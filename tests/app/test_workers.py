"""The QThread workers on the tiny model (reference backend) and the fake microphone."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app_fakes import FakeCapture
from voxtral_desk.app import workers
from voxtral_desk.app.history import History
from voxtral_desk.app.workers import DictationThread, FileThread, ModelLoadThread


def ids(tokens):
    return [(t.id, t.index) for t in tokens]


def run_dictation(qtbot, engine_host, cap, before_stop, history=None, delay_ms=480):
    """Start a DictationThread, call before_stop(thread, partials), stop it, return (result, partials)."""
    thread = DictationThread(engine_host, cap, "", delay_ms, history)
    partials, results = [], []
    thread.partial.connect(lambda seq, toks, text: partials.append((seq, list(toks), text)))
    thread.done.connect(results.append)
    with qtbot.waitSignal(thread.capture_started, timeout=10000):
        thread.start()
    before_stop(thread, partials)
    thread.request_stop()
    qtbot.waitUntil(lambda: bool(results), timeout=30000)
    thread.wait(10000)
    return results[0], partials


def test_partials_arrive_in_order_and_stop_loses_no_audio(qtbot, engine_host, speech, offline):
    cap = FakeCapture()
    half = len(speech) // 2
    cap.in_flight = np.sin(np.arange(1600) / 7).astype(np.float32) * 0.1  # PortAudio's last buffers at Stop

    def talk(thread, partials):
        cap.push(speech[:half])
        qtbot.waitUntil(lambda: len(partials) >= 2, timeout=10000)  # text grows while still recording
        cap.push(speech[half:])  # stop right after: the worker is still behind

    result, partials = run_dictation(qtbot, engine_host, cap, talk)
    heard = cap.all_pushed()
    assert len(heard) == len(speech) + 1600
    assert result.seconds == pytest.approx(len(heard) / 16000)
    expected = offline(heard)
    assert ids(result.tokens) == ids(expected)  # every sample, in-flight ones included, was transcribed
    assert [p[0] for p in partials] == list(range(1, len(partials) + 1))
    assert ids([t for p in partials for t in p[1]]) == ids(result.tokens)
    assert partials[-1][2] == result.text
    assert cap.stopped.is_set() and cap.closed


def test_device_unplugged_keeps_the_text_so_far(qtbot, engine_host, speech, offline):
    cap = FakeCapture()
    errors = []

    def talk(thread, partials):
        thread.device_error.connect(errors.append)
        cap.push(speech[:32000])
        qtbot.waitUntil(lambda: len(partials) >= 1, timeout=10000)
        cap.unplug()
        qtbot.waitUntil(lambda: bool(errors), timeout=10000)

    result, _ = run_dictation(qtbot, engine_host, cap, talk)
    assert "unplugged" in errors[0] and result.device_error == errors[0]
    assert ids(result.tokens) == ids(offline(speech[:32000]))


def test_a_silent_device_is_detected(qtbot, engine_host, monkeypatch):
    monkeypatch.setattr(workers, "FIRST_AUDIO_SECONDS", 0.3)
    cap = FakeCapture()
    thread = DictationThread(engine_host, cap, "", 480)
    errors = []
    thread.device_error.connect(errors.append)
    with qtbot.waitSignal(thread.done, timeout=10000):
        thread.start()
    thread.wait()
    assert "stopped delivering audio" in errors[0]


def test_failing_device_reports_and_records_nothing(qtbot, engine_host):
    thread = DictationThread(engine_host, FakeCapture(fail_open="No microphone found."), "", 480)
    with qtbot.waitSignal(thread.failed, timeout=10000) as blocker:
        thread.start()
    thread.wait()
    assert blocker.args == ["No microphone found."]


def test_history_is_written_while_the_dictation_grows(qtbot, engine_host, speech, tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "HISTORY_INTERVAL", 0.0)
    history = History(tmp_path / "h.sqlite3")
    cap = FakeCapture()
    seen = {}

    def talk(thread, partials):
        cap.push(speech)
        qtbot.waitUntil(lambda: bool(partials) and bool(partials[-1][2]), timeout=10000)
        # Before Stop, as a crash would find it: the row exists and holds recent text.
        qtbot.waitUntil(lambda: bool(history.entries()[0].text), timeout=10000)
        seen["entry"] = history.entries()[0]

    result, _ = run_dictation(qtbot, engine_host, cap, talk, history)
    assert seen["entry"].status == "recording" and result.text.startswith(seen["entry"].text[:10])
    final = history.get(result.history_id)
    assert final.status == "done" and final.text == result.text and final.duration == pytest.approx(result.seconds)


def test_resampled_device_feeds_16k(qtbot, engine_host, speech):
    import soxr

    cap = FakeCapture(samplerate=48000)
    audio48 = soxr.resample(speech, 16000, 48000).astype(np.float32)

    def talk(thread, partials):
        cap.push(audio48)

    result, _ = run_dictation(qtbot, engine_host, cap, talk)
    assert result.seconds == pytest.approx(len(audio48) / 48000)
    assert engine_host.session.seconds_fed == pytest.approx(len(speech) / 16000, abs=0.01)
    assert result.tokens


def test_file_thread_transcribes_and_reports_progress(qtbot, engine_host, speech_wav):
    thread = FileThread(engine_host, str(speech_wav), 480)
    progress = []
    thread.progress.connect(progress.append)
    with qtbot.waitSignal(thread.transcribed, timeout=30000) as blocker:
        thread.start()
    thread.wait()
    assert progress[-1] == 1.0 and progress == sorted(progress)
    assert blocker.args[0].tokens


def test_file_yields_to_a_dictation_and_can_restart(qtbot, engine_host, tmp_path):
    import soundfile

    path = tmp_path / "long.wav"
    soundfile.write(path, np.random.default_rng(0).standard_normal(16000 * 35).astype(np.float32) * 0.05, 16000)
    thread = FileThread(engine_host, str(path), 480)
    release = threading.Event()
    holding = threading.Event()

    def dictation_arrives(_fraction):
        # Runs in the file thread after its first block: a dictation now wants the engine.
        def dictate():
            with engine_host.for_dictation():
                holding.set()
                release.wait(10)

        threading.Thread(target=dictate, daemon=True).start()
        _wait(engine_host.dictation_waiting)  # not qtbot: this runs outside the UI thread

    thread.progress.connect(dictation_arrives, Qt.DirectConnection)
    with qtbot.waitSignal(thread.interrupted, timeout=30000):
        thread.start()
    thread.wait()
    assert holding.wait(5)  # the dictation got the engine
    restart = FileThread(engine_host, str(path), 480)
    with qtbot.waitSignal(restart.transcribed, timeout=60000):
        restart.start()
        release.set()
    restart.wait()


def _wait(condition, timeout=5.0):
    import time

    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.005)


def test_file_errors_are_per_file(qtbot, engine_host, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    thread = FileThread(engine_host, str(bad), 480)
    with qtbot.waitSignal(thread.failed, timeout=10000) as blocker:
        thread.start()
    thread.wait()
    assert "not an audio file voxtral desk can read" in blocker.args[0].lower()
    missing = FileThread(engine_host, str(tmp_path / "gone.wav"), 480)
    with qtbot.waitSignal(missing.failed, timeout=10000) as blocker:
        missing.start()
    missing.wait()
    assert "not found" in blocker.args[0].lower()


def test_model_load_reports_errors_and_success(qtbot, tiny_model, tmp_path):
    bad = ModelLoadThread(str(tmp_path / "nothing"), "reference", 480)
    with qtbot.waitSignal(bad.failed, timeout=10000) as blocker:
        bad.start()
    bad.wait()
    assert "no such file" in blocker.args[0]
    good = ModelLoadThread(str(tiny_model), "reference", 480)
    stages = []
    good.progress.connect(stages.append)
    with qtbot.waitSignal(good.loaded, timeout=30000) as blocker:
        good.start()
    good.wait()
    host = blocker.args[0]
    assert host.session.delay_ms == 480 and host.session.engine.name.startswith("reference")
    assert stages == ["Reading the model files…", "Starting the reference engine…"]


def test_long_files_are_streamed_in_bounded_memory(qtbot, engine_host, tmp_path):
    """Memory for a file transcription must not grow with its length (an hour must fit): the peak
    for 80 s of audio stays within 2 MB of the peak for 20 s, where decoding the whole file at once
    would add 3.8 MB of samples alone (and far more of spectrogram)."""
    import tracemalloc

    import soundfile

    rng = np.random.default_rng(5)
    peaks = {}
    for seconds in (20, 80):
        path = tmp_path / f"{seconds}.flac"
        soundfile.write(path, (rng.standard_normal(16000 * seconds) * 0.1).astype(np.float32), 16000)
        thread = FileThread(engine_host, str(path), 480)
        tracemalloc.start()
        try:
            with qtbot.waitSignal(thread.transcribed, timeout=120000) as blocker:
                thread.start()
            thread.wait()
            peaks[seconds] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert blocker.args[0].meta["duration"] == seconds
    assert peaks[80] - peaks[20] < 2_000_000, peaks


def _locked(path):
    import sqlite3

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the history's write lock
    return other


def test_a_locked_history_never_stops_a_dictation(qtbot, engine_host, speech, offline, tmp_path):
    history = History(tmp_path / "h.sqlite3", timeout=0.05)
    other = _locked(tmp_path / "h.sqlite3")
    cap = FakeCapture()

    def talk(thread, partials):
        cap.push(speech)
        qtbot.waitUntil(lambda: len(partials) >= 1, timeout=10000)

    result, _ = run_dictation(qtbot, engine_host, cap, talk, history)
    assert ids(result.tokens) == ids(offline(speech)) and result.device_error is None
    kept = history.get(result.history_id)
    assert kept.text == result.text and kept.status == "done" and history.pending
    other.execute("ROLLBACK")
    assert history.retry()
    assert History(tmp_path / "h.sqlite3").entries()[0].text == result.text
    history.close()


def test_a_locked_history_never_loses_a_file_transcript(qtbot, engine_host, speech_wav, tmp_path):
    history = History(tmp_path / "h.sqlite3", timeout=0.05)
    other = _locked(tmp_path / "h.sqlite3")
    done = []
    thread = FileThread(engine_host, str(speech_wav), 480, history)
    thread.transcribed.connect(lambda t, hid: done.append((t, hid)))
    with qtbot.waitSignal(thread.finished, timeout=60000):
        thread.start()
    transcript, entry_id = done[0]
    assert history.get(entry_id).text == transcript.text
    other.execute("ROLLBACK")
    assert history.retry()
    again = History(tmp_path / "h.sqlite3")
    kept = again.get(again.entries()[0].id)
    assert kept.text == transcript.text and kept.transcript == transcript.to_json_record()
    history.close()
