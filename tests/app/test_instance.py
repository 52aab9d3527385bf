"""One running app per data folder: a second launch raises the first one's window, hands over its files
and never opens the history."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from voxtral_desk.app.instance import SingleInstance, send


def test_a_second_instance_hands_its_request_to_the_first(qtbot, tmp_path):
    first = SingleInstance(tmp_path)
    assert first.acquire()
    received = []
    first.message.connect(received.append)
    second = SingleInstance(tmp_path)
    assert not second.acquire() and second.owner_pid() == os.getpid()
    # Another process asks; the first answers from its event loop.
    code = (f"from voxtral_desk.app.instance import send; from pathlib import Path; "
            f"print(send(Path({str(tmp_path)!r}), {{'cmd': 'show', 'files': ['/a.wav']}}))")
    sender = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: sender.poll() is not None, timeout=20000)
    assert received == [{"cmd": "show", "files": ["/a.wav"]}]
    assert sender.stdout.read().strip() == "{'ok': True}"
    first.release()
    assert SingleInstance(tmp_path).acquire()  # free once the first has gone


def test_nobody_answering_is_not_an_instance(tmp_path):
    assert send(tmp_path, {"cmd": "show"}, timeout_ms=200) is None


def _app_env(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1",
               VOXTRAL_DESK_CONFIG_DIR=str(tmp_path / "config"), VOXTRAL_DESK_DATA_DIR=str(tmp_path / "data"),
               VOXTRAL_DESK_MODELS_DIR=str(tmp_path / "models"))
    return env


def test_launching_the_app_twice_raises_the_first_window(tmp_path, speech_wav):
    env = _app_env(tmp_path)
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen([sys.executable, "-m", "voxtral_desk"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        history = tmp_path / "data" / "history.sqlite3"
        deadline = time.monotonic() + 60
        while not history.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        # The first instance is dictating: its row is 'recording'.
        db = sqlite3.connect(history, isolation_level=None)
        db.execute("INSERT INTO entries (kind, source, started, updated, status, text)"
                   " VALUES ('dictation', 'mic', 0, 0, 'recording', 'live words')")
        second = subprocess.run([sys.executable, "-m", "voxtral_desk", str(speech_wav)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr and "1 file was added" in second.stderr
        deadline = time.monotonic() + 20
        while "another launch asked" not in (tmp_path / "first.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "another launch asked to show the window (1 files)" in (tmp_path / "first.log").read_text()
        # The second launch never touched the first one's live dictation.
        assert db.execute("SELECT status FROM entries").fetchall() == [("recording",)]
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
        log.close()
    assert first.returncode == 0
