"""History of dictations and file transcriptions: sqlite in the platform's data folder.

A dictation's row is created when recording starts and its text is rewritten while it grows (every
few seconds, and on Stop), in WAL mode with synchronous=FULL, so a crash or power cut loses at most the
last seconds. Rows still marked 'recording' when the app starts again are from a session that never
ended; they are marked 'interrupted' and kept, text and all.

Worker threads write; the UI thread reads. One connection guarded by a lock is enough for a handful of
small writes a second."""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .settings import data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,            -- 'dictation' or 'file'
    source TEXT NOT NULL,          -- input device name or audio file path
    started REAL NOT NULL,         -- unix time
    updated REAL NOT NULL,
    duration REAL NOT NULL DEFAULT 0,  -- seconds of audio transcribed
    status TEXT NOT NULL,          -- 'recording', 'done', 'interrupted', 'error'
    text TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    delay_ms INTEGER NOT NULL DEFAULT 0,
    audio_path TEXT NOT NULL DEFAULT ''  -- saved recording, when recordings are kept
);
CREATE INDEX IF NOT EXISTS entries_started ON entries(started);
"""


@dataclass
class Entry:
    id: int
    kind: str
    source: str
    started: float
    updated: float
    duration: float
    status: str
    text: str
    model: str
    delay_ms: int
    audio_path: str


class History:
    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / "history.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self.recovered = self._recover()

    def _recover(self) -> int:
        """Sessions left 'recording' by a crash become 'interrupted'; returns how many."""
        with self._lock:
            cur = self._db.execute("UPDATE entries SET status='interrupted' WHERE status='recording'")
            return cur.rowcount

    def start(self, kind: str, source: str, model: str = "", delay_ms: int = 0, audio_path: str = "") -> int:
        now = time.time()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO entries (kind, source, started, updated, status, model, delay_ms, audio_path)"
                " VALUES (?, ?, ?, ?, 'recording', ?, ?, ?)", (kind, source, now, now, model, delay_ms, audio_path))
            return int(cur.lastrowid)

    def update(self, entry_id: int, text: str, duration: float, status: str | None = None) -> None:
        with self._lock:
            if status is None:
                self._db.execute("UPDATE entries SET text=?, duration=?, updated=? WHERE id=?",
                                 (text, duration, time.time(), entry_id))
            else:
                self._db.execute("UPDATE entries SET text=?, duration=?, updated=?, status=? WHERE id=?",
                                 (text, duration, time.time(), status, entry_id))

    def add(self, kind: str, source: str, text: str, duration: float, status: str = "done", model: str = "",
            delay_ms: int = 0) -> int:
        entry_id = self.start(kind, source, model, delay_ms)
        self.update(entry_id, text, duration, status)
        return entry_id

    def entries(self, limit: int = 500, preview_chars: int | None = None) -> list[Entry]:
        """Newest first. preview_chars cuts each text (a list need not load hours of dictation)."""
        text = "text" if preview_chars is None else f"substr(text, 1, {int(preview_chars)})"
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, kind, source, started, updated, duration, status, {text}, model, delay_ms, audio_path"
                " FROM entries ORDER BY started DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [Entry(*row) for row in rows]

    def get(self, entry_id: int) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, source, started, updated, duration, status, text, model, delay_ms, audio_path"
                " FROM entries WHERE id=?", (entry_id,)).fetchone()
        return Entry(*row) if row else None

    def delete(self, entry_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM entries WHERE id=?", (entry_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
