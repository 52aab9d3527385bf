"""The file queue's state, apart from its view (files.FileQueueWidget): which files wait, run, are paused
for a dictation, finished or failed, and the rules for moving between those states. Qt-free, so it is
tested on its own.

The queue is kept on disk (file_queue.json in the app's data folder): after a restart finished files come
back with their transcripts (kept in History), and files that had not finished start again.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from ..fileio import write_json_atomic

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}


class Status(str, Enum):
    QUEUED = "queued"
    WAITING = "waiting"  # its worker waits for the engine (a dictation holds it)
    RUNNING = "running"
    PAUSED = "paused"  # stopped for a dictation where it was; continues from there
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


LABELS = {Status.QUEUED: "Queued", Status.WAITING: "Waiting", Status.RUNNING: "Transcribing…",
          Status.PAUSED: "Paused for dictation", Status.CANCELLING: "Cancelling…", Status.DONE: "Done",
          Status.FAILED: "Failed", Status.CANCELLED: "Cancelled"}
FINISHED = {Status.DONE, Status.FAILED, Status.CANCELLED}
ACTIVE = {Status.WAITING, Status.RUNNING, Status.CANCELLING}  # a worker thread has it
RESTARTED_NOTE = "started again: Voxtral Desk was closed before it finished"


@dataclass(eq=False)
class FileJob:
    path: str
    status: Status = Status.QUEUED
    progress: float = 0.0
    duration: float | None = None
    transcript: object | None = None  # transcript.Transcript once done
    error: str = ""
    note: str = ""  # e.g. "waiting for the model"
    history_id: int | None = None
    paused: object | None = None  # the interrupted transcription, to continue where it stopped

    @property
    def label(self) -> str:
        if self.status == Status.FAILED:
            return f"Failed: {self.error}"
        if self.status == Status.WAITING and self.paused is not None:
            return LABELS[Status.PAUSED]  # still paused until the engine is free again
        label = LABELS[self.status]
        return f"{label} ({self.note})" if self.note else label


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given; folders become the audio files inside them (recursively, sorted)."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(str(p))
    return out


class FileQueue:
    """Jobs in the order they were added. Every change of status is saved (progress is not)."""

    def __init__(self, state_path: Path | None = None):
        self.jobs: list[FileJob] = []
        self.state_path = state_path
        self.save_error = ""  # why the last save failed, for the view to show

    # --- what there is ---------------------------------------------------------------------------
    def next_job(self) -> FileJob | None:
        """Paused files continue first (they had started), then queued ones in order."""
        for wanted in (Status.PAUSED, Status.QUEUED):
            job = next((j for j in self.jobs if j.status == wanted), None)
            if job is not None:
                return job
        return None

    def unfinished(self) -> int:
        return sum(1 for j in self.jobs if j.status not in FINISHED)

    # --- changes ---------------------------------------------------------------------------------
    def add(self, paths: list[str]) -> tuple[list[FileJob], list[str]]:
        """Add files (folders become their audio files). Returns (new jobs, paths skipped because they
        are already waiting or running in the queue)."""
        added, skipped = [], []
        for path in expand_paths(paths):
            if any(j.path == path and j.status not in FINISHED for j in self.jobs):
                skipped.append(path)
                continue
            job = FileJob(path)
            self.jobs.append(job)
            added.append(job)
        if added:
            self.save()
        return added, skipped

    def set_status(self, job: FileJob, status: Status, *, note: str = "", error: str = "") -> None:
        job.status, job.note, job.error = status, note, error
        if status in (Status.QUEUED, Status.FAILED, Status.CANCELLED) and job.paused is not None:
            if hasattr(job.paused, "close"):
                job.paused.close()  # the paused transcription's open file and saved stream
            job.paused = None
        if status == Status.QUEUED:
            job.progress = 0.0
        self.save()

    def pause(self, job: FileJob, state: object) -> None:
        """A dictation took the engine: the job keeps its progress and continues from `state`."""
        job.paused = state
        self.set_status(job, Status.PAUSED)

    def finish(self, job: FileJob, transcript: object, history_id: int | None) -> None:
        job.transcript, job.history_id, job.progress, job.paused = transcript, history_id, 1.0, None
        self.set_status(job, Status.DONE)

    def cancel(self, job: FileJob) -> bool:
        """Cancel a job. Returns True when its worker must be told (it stops at its next block)."""
        if job.status in ACTIVE:
            if job.status != Status.CANCELLING:
                self.set_status(job, Status.CANCELLING)
            return True
        if job.status in (Status.QUEUED, Status.PAUSED):
            self.set_status(job, Status.CANCELLED)
        return False

    def retry(self, job: FileJob) -> bool:
        if job.status not in (Status.FAILED, Status.CANCELLED):
            return False
        self.set_status(job, Status.QUEUED)
        return True

    def remove(self, job: FileJob) -> bool:
        if job.status in ACTIVE:
            return False
        if job.status == Status.PAUSED:
            self.set_status(job, Status.CANCELLED)  # let go of what the paused transcription holds
        self.jobs.remove(job)
        self.save()
        return True

    def clear_finished(self) -> list[FileJob]:
        gone = [j for j in self.jobs if j.status in FINISHED]
        self.jobs = [j for j in self.jobs if j.status not in FINISHED]
        if gone:
            self.save()
        return gone

    # --- on disk ---------------------------------------------------------------------------------
    def save(self) -> None:
        if self.state_path is None:
            return
        doc = {"version": 1, "jobs": [
            {"path": j.path, "status": j.status.value, "error": j.error, "duration": j.duration,
             "history_id": j.history_id} for j in self.jobs]}
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.state_path, doc)
            self.save_error = ""
        except OSError as e:  # the queue still works; only a restart would forget it
            self.save_error = f"the file queue could not be saved ({e.strerror or e})"

    def load(self, transcript_of: Callable[[int], object | None]) -> list[str]:
        """Bring back the queue of the last run. transcript_of(history_id) gives a finished file's
        transcript (None: it was deleted from History, and the file leaves the queue). Returns messages
        for the user (an unreadable queue file is set aside, never fatal)."""
        if self.state_path is None or not self.state_path.exists():
            return []
        try:
            doc = json.loads(self.state_path.read_text(encoding="utf-8"))
            rows = doc["jobs"]
            if not isinstance(rows, list):
                raise ValueError("'jobs' is not a list")
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
            try:
                self.state_path.replace(self.state_path.with_name(self.state_path.name + ".bak"))
            except OSError:
                pass
            return [f"The file queue of the last session could not be read ({e}); it starts empty."]
        for row in rows:
            try:
                job = FileJob(str(row["path"]), Status(row["status"]), error=str(row.get("error") or ""),
                              duration=row.get("duration"), history_id=row.get("history_id"))
            except (KeyError, TypeError, ValueError):
                continue  # one bad row costs only that row
            if job.status == Status.DONE:
                job.transcript = transcript_of(job.history_id) if isinstance(job.history_id, int) else None
                if job.transcript is None:
                    continue
                job.progress = 1.0
            elif job.status not in FINISHED:
                job.status, job.note = Status.QUEUED, RESTARTED_NOTE
            self.jobs.append(job)
        self.save()
        return []
