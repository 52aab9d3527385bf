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


def _lock(path):
    """Another process's connection holding the database's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_a_locked_database_keeps_writes_in_memory_and_saves_them_later(tmp_path):
    path = tmp_path / "h.sqlite3"
    h = History(path, timeout=0.05)
    other = _lock(path)
    entry = h.start("dictation", "Fake Microphone", "/models/tiny", 480)  # never raises
    h.update(entry, "hello", 1.0)
    h.update(entry, "hello world", 2.0, "done")
    assert h.pending and "locked" in h.error
    shown = h.get(entry)
    assert (shown.text, shown.status, shown.duration) == ("hello world", "done", 2.0)
    assert [e.text for e in h.entries()] == ["hello world"]
    assert not h.retry()  # still locked
    other.execute("ROLLBACK")
    other.close()
    assert h.retry() and not h.pending and h.error == ""
    rows = sqlite3.connect(path).execute("SELECT kind, text, status, delay_ms FROM entries").fetchall()
    assert rows == [("dictation", "hello world", "done", 480)]
    h.update(entry, "hello world again", 3.0)  # the provisional id still names the row
    assert sqlite3.connect(path).execute("SELECT text FROM entries").fetchall() == [("hello world again",)]
    h.close()


def test_updates_to_a_saved_row_wait_while_locked(tmp_path):
    path = tmp_path / "h.sqlite3"
    h = History(path, timeout=0.05)
    entry = h.add("file", "/audio/a.wav", "text", 10.0)
    other = _lock(path)
    h.delete(entry)
    assert h.get(entry) is None and h.entries() == []
    other.execute("ROLLBACK")
    other.close()
    assert h.retry()
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)
    h.close()


def test_closing_with_unsaved_writes_tries_once_more(tmp_path):
    path = tmp_path / "h.sqlite3"
    h = History(path, timeout=0.05)
    other = _lock(path)
    h.add("dictation", "mic", "kept", 1.0)
    other.execute("ROLLBACK")
    other.close()
    h.close()
    assert History(path).entries()[0].text == "kept"
