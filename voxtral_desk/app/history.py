"""History of dictations and file transcriptions: sqlite in the platform's data folder.

A dictation's row is created when recording starts and its text is rewritten while it grows (every
few seconds, and on Stop), in WAL mode with synchronous=FULL, so a crash or power cut loses at most the
last seconds. Rows still marked 'recording' when the app starts again are from a session that never
ended; they are marked 'interrupted' and kept, text and all. A file's row also keeps its whole transcript
(tokens and timings, transcript.Transcript.to_record), so every export works later from History.

A write that fails (the database locked by another program, the disk full) never stops or loses a
transcription: the row's new values are kept in memory, shown by entries()/get() as if written, and
written by the next write or retry(); `pending` and `error` let the window say so. A row that could not
even be inserted gets a provisional negative id, which keeps naming it after it is written.

Worker threads write; the UI thread reads. One connection guarded by a lock is enough for a handful of
small writes a second."""
from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

from ..paths import data_dir

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
    audio_path TEXT NOT NULL DEFAULT '',  -- saved recording, when recordings are kept
    transcript TEXT NOT NULL DEFAULT ''   -- JSON: tokens with their times (Transcript.to_record), for exports
);
CREATE INDEX IF NOT EXISTS entries_started ON entries(started);
"""
COLUMNS = ("kind", "source", "started", "updated", "duration", "status", "text", "model", "delay_ms", "audio_path",
           "transcript")
LIST_COLUMNS = COLUMNS[:-1]  # lists never load whole transcripts


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
    transcript: str = ""  # "" when none was kept (dictations before this version, lists)


class History:
    def __init__(self, path: Path | None = None, timeout: float = 0.5):
        """timeout: how long a write waits for a lock held by another program before it is kept for later."""
        self.path = path or data_dir() / "history.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=timeout)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
        if "transcript" not in have:  # a history made by an earlier version
            self._db.execute("ALTER TABLE entries ADD COLUMN transcript TEXT NOT NULL DEFAULT ''")
        self._pending: dict[int, dict] = {}  # id -> values not written yet ("_new": insert, "_delete": delete)
        self._real: dict[int, int] = {}  # provisional id -> its row id once inserted
        self._next_provisional = -1
        self.error = ""  # the last failed write's reason while writes are pending
        self.recovered = self._recover()

    def _recover(self) -> int:
        """Sessions left 'recording' by a crash become 'interrupted'; returns how many."""
        with self._lock:
            cur = self._db.execute("UPDATE entries SET status='interrupted' WHERE status='recording'")
            return cur.rowcount

    # --- writes: never raise; what cannot be written now waits in memory ---------------------------

    def start(self, kind: str, source: str, model: str = "", delay_ms: int = 0, audio_path: str = "") -> int:
        now = time.time()
        values = dict(kind=kind, source=source, started=now, updated=now, duration=0.0, status="recording", text="",
                      model=model, delay_ms=delay_ms, audio_path=audio_path, transcript="", _new=True)
        with self._lock:
            entry_id = self._next_provisional
            self._next_provisional -= 1
            self._pending[entry_id] = values
            self._flush()
            return entry_id if entry_id in self._pending else self._real[entry_id]

    def update(self, entry_id: int, text: str, duration: float, status: str | None = None,
               transcript: str | None = None) -> None:
        values = dict(text=text, duration=duration, updated=time.time())
        if status is not None:
            values["status"] = status
        if transcript is not None:
            values["transcript"] = transcript
        with self._lock:
            entry_id = self._real.get(entry_id, entry_id)
            self._pending.setdefault(entry_id, {}).update(values)
            self._flush()

    def add(self, kind: str, source: str, text: str, duration: float, status: str = "done", model: str = "",
            delay_ms: int = 0, transcript: str = "") -> int:
        entry_id = self.start(kind, source, model, delay_ms)
        self.update(entry_id, text, duration, status, transcript)
        return entry_id

    def delete(self, entry_id: int) -> None:
        with self._lock:
            entry_id = self._real.get(entry_id, entry_id)
            if self._pending.get(entry_id, {}).get("_new"):
                del self._pending[entry_id]  # never written: nothing to delete on disk
            else:
                self._pending[entry_id] = {"_delete": True}
                self._flush()

    @property
    def pending(self) -> int:
        """Rows with changes not written yet."""
        with self._lock:
            return len(self._pending)

    def retry(self) -> bool:
        """Write what is pending; True when nothing is left."""
        with self._lock:
            self._flush()
            return not self._pending

    def _flush(self) -> None:
        """Write pending rows in order until one fails (the lock is held)."""
        for entry_id in list(self._pending):
            values = self._pending[entry_id]
            try:
                if values.get("_delete"):
                    self._db.execute("DELETE FROM entries WHERE id=?", (entry_id,))
                elif values.get("_new"):
                    cols = [c for c in COLUMNS if c in values]
                    cur = self._db.execute(f"INSERT INTO entries ({', '.join(cols)}) "
                                           f"VALUES ({', '.join('?' * len(cols))})",
                                           [values[c] for c in cols])
                    self._real[entry_id] = int(cur.lastrowid)
                else:
                    cols = [c for c in COLUMNS if c in values]
                    self._db.execute(f"UPDATE entries SET {', '.join(c + '=?' for c in cols)} WHERE id=?",
                                     [values[c] for c in cols] + [entry_id])
            except sqlite3.Error as e:
                self.error = str(e)
                return
            del self._pending[entry_id]
        self.error = ""

    # --- reads: the database with what is pending laid over it --------------------------------------

    def entries(self, limit: int = 500, preview_chars: int | None = None) -> list[Entry]:
        """Newest first. preview_chars cuts each text (a list need not load hours of dictation); lists
        carry no transcripts (get() does)."""
        text = "text" if preview_chars is None else f"substr(text, 1, {int(preview_chars)})"
        cols = ", ".join(text if c == "text" else c for c in LIST_COLUMNS)
        with self._lock:
            try:
                rows = self._db.execute(f"SELECT id, {cols} FROM entries ORDER BY started DESC, id DESC LIMIT ?",
                                        (limit,)).fetchall()
            except sqlite3.Error as e:
                self.error, rows = str(e), []
            found = {row[0]: Entry(*row) for row in rows}
            self._overlay(found, preview_chars, with_transcript=False)
        # Provisional (negative) ids are the newest rows.
        return sorted(found.values(), key=lambda e: (e.started, e.id if e.id > 0 else (1 << 62) - e.id),
                      reverse=True)[:limit]

    def get(self, entry_id: int) -> Entry | None:
        with self._lock:
            entry_id = self._real.get(entry_id, entry_id)
            found = {}
            if entry_id > 0:
                try:
                    row = self._db.execute(f"SELECT id, {', '.join(COLUMNS)} FROM entries WHERE id=?",
                                           (entry_id,)).fetchone()
                except sqlite3.Error as e:
                    self.error, row = str(e), None
                if row:
                    found[entry_id] = Entry(*row)
            self._overlay(found, None, with_transcript=True, only=entry_id)
        return found.get(entry_id)

    def _overlay(self, found: dict[int, Entry], preview_chars: int | None, with_transcript: bool,
                 only: int | None = None) -> None:
        names = {f.name for f in fields(Entry)}
        for entry_id, values in self._pending.items():
            if only is not None and entry_id != only:
                continue
            if values.get("_delete"):
                found.pop(entry_id, None)
                continue
            values = {k: v for k, v in values.items() if k in names and (with_transcript or k != "transcript")}
            if preview_chars is not None and "text" in values:
                values["text"] = values["text"][:preview_chars]
            if entry_id in found:
                for k, v in values.items():
                    setattr(found[entry_id], k, v)
            elif self._pending[entry_id].get("_new"):
                found[entry_id] = Entry(id=entry_id, **values)

    def close(self) -> None:
        with self._lock:
            self._flush()  # one last try for what is pending
            self._db.close()
