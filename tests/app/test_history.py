"""History database: growing rows, crash recovery, deletion."""
from __future__ import annotations

import sqlite3

from voxtral_desk.app.history import History


def test_history_lives_in_the_redirected_data_dir(app_dirs):
    h = History()
    assert h.path == app_dirs["data"] / "history.sqlite3"
    h.close()


def test_a_growing_dictation_is_on_disk_before_it_ends(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    entry = h.start("dictation", "Fake Microphone", "/models/tiny", 480)
    h.update(entry, "hello", 1.5)
    # Another connection (as after a crash) already sees the partial text.
    row = sqlite3.connect(tmp_path / "h.sqlite3").execute("SELECT text, status FROM entries").fetchone()
    assert row == ("hello", "recording")
    h.update(entry, "hello world", 3.0, "done")
    assert h.get(entry).text == "hello world" and h.get(entry).status == "done"
    h.close()


def test_a_dictation_left_recording_by_a_crash_is_recovered(tmp_path):
    path = tmp_path / "h.sqlite3"
    h = History(path)
    done = h.add("file", "/audio/a.wav", "finished text", 10.0)
    crashed = h.start("dictation", "Fake Microphone")
    h.update(crashed, "said before the crash", 4.0)
    del h  # no close(): the process died

    again = History(path)
    assert again.recovered == 1
    entry = again.get(crashed)
    assert entry.status == "interrupted" and entry.text == "said before the crash"
    assert again.get(done).status == "done"
    assert [e.id for e in again.entries()] == [crashed, done]  # newest first
    assert [e.text for e in again.entries(preview_chars=4)] == ["said", "fini"]
    again.delete(crashed)
    assert again.get(crashed) is None
    assert History(path).recovered == 0
