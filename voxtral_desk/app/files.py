"""File transcription tab: a queue of dropped or picked audio files, one FileThread at a time.

Each file has its own status, progress and error; a file that fails or is cancelled never stops the
others. A finished file's transcript can be viewed and exported as TXT, SRT, VTT or JSON (timestamps on
the model's 80 ms token grid, from transcript.Transcript). Files are read in 10 s blocks by the pipeline,
so an hour-long file never sits in memory; only its tokens do.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit,
                               QProgressBar, QPushButton, QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from ..transcript import FORMATS, Transcript
from .settings import Settings
from .widgets import Banner, format_clock
from .workers import EngineHost, FileThread

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}
AUDIO_FILTER = "Audio files (" + " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS)) + ");;All files (*)"
STATUS_COLORS = {"queued": "#5b6472", "running": "#1d6fd8", "done": "#2b8a3e", "failed": "#c92a2a",
                 "cancelled": "#8a5a00"}
COL_FILE, COL_LENGTH, COL_STATUS, COL_PROGRESS = range(4)
FORMATS_ORDER = [f for f in ("txt", "srt", "vtt", "json") if f in FORMATS]


@dataclass
class FileJob:
    path: str
    item: QTreeWidgetItem
    bar: QProgressBar
    status: str = "queued"  # queued, running, done, failed, cancelled
    progress: float = 0.0
    duration: float | None = None
    transcript: Transcript | None = None
    error: str = ""
    note: str = ""  # e.g. "paused for dictation"


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given; folders become the audio files inside them (recursively, sorted)."""
    out: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(str(f) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(str(p))
    return out


class FileTable(QTreeWidget):
    """The queue view. Accepts dropped files and folders; draws a hint while empty."""

    files_dropped = Signal(list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(False)
        self.setDragDropMode(QAbstractItemView.DropOnly)

    @staticmethod
    def _local_files(event) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]

    def dragEnterEvent(self, event) -> None:
        if self._local_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if self._local_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        files = self._local_files(event)
        if files:
            event.acceptProposedAction()
            self.files_dropped.emit(files)
        else:
            event.ignore()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.topLevelItemCount() == 0:
            p = QPainter(self.viewport())
            p.setPen(QColor("#8a919c"))
            p.drawText(self.viewport().rect(), Qt.AlignCenter,
                       "Drop audio files or folders here\n(WAV, FLAC, OGG, MP3 … any length)")
            p.end()


class FileQueueWidget(QWidget):
    busy_changed = Signal(bool)
    message = Signal(str)
    model_needed = Signal()
    settings_changed = Signal()
    job_finished = Signal(object)  # FileJob, when it reaches done / failed / cancelled

    def __init__(self, settings: Settings, engine_provider: Callable[[], EngineHost | None], history=None,
                 parent=None):
        super().__init__(parent)
        self.settings = settings
        self.engine_provider = engine_provider
        self.history = history
        self.jobs: list[FileJob] = []
        self.thread: FileThread | None = None
        self._running: FileJob | None = None
        self._build()

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 14, 16, 12)
        root.setSpacing(10)

        top = QHBoxLayout()
        hint = QLabel("Drop audio files anywhere in this window, or")
        hint.setStyleSheet("color: #4b5563;")
        top.addWidget(hint)
        self.add_button = QPushButton("Add files…")
        self.add_button.clicked.connect(self.add_files_dialog)
        top.addWidget(self.add_button)
        top.addStretch(1)
        self.export_all_button = QPushButton("Export all…")
        self.export_all_button.setToolTip("Write every finished transcript into a folder")
        self.export_all_button.clicked.connect(self.export_all_dialog)
        top.addWidget(self.export_all_button)
        root.addLayout(top)

        self.banner = Banner()
        root.addWidget(self.banner)

        splitter = QSplitter(Qt.Vertical)
        self.table = FileTable()
        self.table.setHeaderLabels(["File", "Length", "Status", "Progress"])
        self.table.setRootIsDecorated(False)
        self.table.setUniformRowHeights(True)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        header = self.table.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_FILE, QHeaderView.Stretch)
        header.setSectionResizeMode(COL_LENGTH, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(COL_STATUS, QHeaderView.Stretch)  # room for an error message
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.Fixed)
        self.table.setColumnWidth(COL_PROGRESS, 150)
        self.table.files_dropped.connect(self.add_files)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        splitter.addWidget(self.table)

        preview_box = QWidget()
        preview_layout = QVBoxLayout(preview_box)
        preview_layout.setContentsMargins(0, 6, 0, 0)
        preview_layout.setSpacing(6)
        self.preview_label = QLabel("Transcript")
        self.preview_label.setStyleSheet("font-weight: 600;")
        preview_layout.addWidget(self.preview_label)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setPlaceholderText("Select a finished file to read its transcript.")
        preview_layout.addWidget(self.preview, 1)
        splitter.addWidget(preview_box)
        splitter.setSizes([260, 160])
        root.addWidget(splitter, 1)

        buttons = QHBoxLayout()
        buttons.setSpacing(8)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the selected files (the others continue)")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        for b in (self.cancel_button, self.retry_button, self.remove_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("Export:"))
        self.export_buttons = {}
        for fmt in FORMATS_ORDER:
            b = QPushButton(fmt.upper())
            b.setToolTip(f"Save the selected transcript as {fmt.upper()}")
            b.clicked.connect(lambda _=False, f=fmt: self.export_selected_dialog(f))
            buttons.addWidget(b)
            self.export_buttons[fmt] = b
        root.addLayout(buttons)
        self._selection_changed()

    # -- queue ---------------------------------------------------------------------------------------
    def add_files(self, paths: list[str]) -> list[FileJob]:
        added = []
        for path in expand_paths(paths):
            item = QTreeWidgetItem([Path(path).name, "—", "", ""])
            item.setToolTip(COL_FILE, path)
            self.table.addTopLevelItem(item)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setFormat("%p%")
            bar.setMaximumHeight(18)
            self.table.setItemWidget(item, COL_PROGRESS, bar)
            job = FileJob(path, item, bar)
            self.jobs.append(job)
            self._show(job)
            added.append(job)
        if added:
            self.message.emit(f"{len(added)} file(s) added to the queue.")
            self._start_next()
        elif paths:
            self.message.emit("No audio files found in what was dropped.")
        return added

    def add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add audio files", self.settings.last_dir or str(Path.home()),
                                                AUDIO_FILTER)
        if paths:
            self.settings.last_dir = str(Path(paths[0]).parent)
            self.settings_changed.emit()
            self.add_files(paths)

    def engine_changed(self) -> None:
        """Called when a model finishes loading: queued files can start."""
        self._start_next()

    @property
    def busy(self) -> bool:
        return self.thread is not None or any(j.status == "queued" for j in self.jobs)

    def _start_next(self) -> None:
        if self.thread is not None:
            return
        job = next((j for j in self.jobs if j.status == "queued"), None)
        if job is None:
            self.busy_changed.emit(False)
            return
        engine = self.engine_provider()
        if engine is None:
            for j in self.jobs:
                if j.status == "queued":
                    j.note = "waiting for the model"
                    self._show(j)
            self.model_needed.emit()
            return
        job.status, job.progress, job.note, job.error = "running", 0.0, "", ""
        thread = FileThread(engine, job.path, self.settings.delay_ms, self.history)
        thread.info.connect(lambda d, j=job: self._on_info(j, d))
        thread.progress.connect(lambda f, j=job: self._on_progress(j, f))
        thread.transcribed.connect(lambda t, j=job: self._on_transcribed(j, t))
        thread.failed.connect(lambda m, j=job: self._on_failed(j, m))
        thread.cancelled.connect(lambda j=job: self._on_cancelled(j))
        thread.interrupted.connect(lambda j=job: self._on_interrupted(j))
        thread.finished.connect(self._on_thread_finished)
        self.thread, self._running = thread, job
        self._show(job)
        self.busy_changed.emit(True)
        thread.start()

    def _on_thread_finished(self) -> None:
        self.thread, self._running = None, None
        self._start_next()

    def _on_info(self, job: FileJob, duration: float) -> None:
        job.duration = duration
        self._show(job)

    def _on_progress(self, job: FileJob, fraction: float) -> None:
        job.progress = fraction
        self._show(job)

    def _on_transcribed(self, job: FileJob, transcript: Transcript) -> None:
        job.status, job.transcript, job.progress = "done", transcript, 1.0
        self._show(job)
        self._selection_changed()
        self.job_finished.emit(job)

    def _on_failed(self, job: FileJob, message: str) -> None:
        job.status, job.error = "failed", message
        self._show(job)
        self.job_finished.emit(job)

    def _on_cancelled(self, job: FileJob) -> None:
        job.status = "cancelled"
        self._show(job)
        self.job_finished.emit(job)

    def _on_interrupted(self, job: FileJob) -> None:
        # A dictation took the engine; this file starts again from the beginning once it is done.
        job.status, job.progress, job.note = "queued", 0.0, "paused for dictation, restarts after it"
        self._show(job)

    def _show(self, job: FileJob) -> None:
        item = job.item
        item.setText(COL_LENGTH, format_clock(job.duration) if job.duration is not None else "—")
        label = {"queued": "Queued", "running": "Transcribing…", "done": "Done", "failed": "Failed",
                 "cancelled": "Cancelled"}[job.status]
        if job.status == "failed":
            label = f"Failed: {job.error}"
        elif job.note:
            label = f"{label} ({job.note})"
        item.setText(COL_STATUS, label)
        item.setToolTip(COL_STATUS, job.error or label)
        item.setForeground(COL_STATUS, QColor(STATUS_COLORS[job.status]))
        job.bar.setValue(int(job.progress * 1000))
        job.bar.setEnabled(job.status in ("running", "done"))
        job.bar.setFormat("%p%" if job.status in ("running", "done") else "")

    # -- selection actions --------------------------------------------------------------------------
    def selected_jobs(self) -> list[FileJob]:
        selected = set(id(i) for i in self.table.selectedItems())
        return [j for j in self.jobs if id(j.item) in selected]

    def _job_for_current(self) -> FileJob | None:
        jobs = self.selected_jobs()
        return jobs[0] if len(jobs) == 1 else None

    def _selection_changed(self) -> None:
        job = self._job_for_current()
        if job is not None and job.transcript is not None:
            self.preview_label.setText(f"Transcript — {Path(job.path).name}")
            self.preview.setPlainText(job.transcript.text)
        elif job is not None and job.status == "failed":
            self.preview_label.setText(f"Error — {Path(job.path).name}")
            self.preview.setPlainText(job.error)
        else:
            self.preview_label.setText("Transcript")
            self.preview.clear()
        for b in self.export_buttons.values():
            b.setEnabled(job is not None and job.transcript is not None)
        jobs = self.selected_jobs()
        self.cancel_button.setEnabled(any(j.status in ("queued", "running") for j in jobs))
        self.retry_button.setEnabled(any(j.status in ("failed", "cancelled") for j in jobs))
        self.remove_button.setEnabled(any(j.status != "running" for j in jobs))

    def cancel_selected(self) -> None:
        for job in self.selected_jobs():
            self.cancel(job)
        self._selection_changed()

    def cancel(self, job: FileJob) -> None:
        if job is self._running and self.thread is not None:
            self.thread.cancel()  # the thread reports cancelled() at its next block
        elif job.status == "queued":
            job.status = "cancelled"
            self._show(job)
            self.job_finished.emit(job)

    def cancel_all(self) -> None:
        for job in self.jobs:
            self.cancel(job)

    def retry_selected(self) -> None:
        for job in self.selected_jobs():
            if job.status in ("failed", "cancelled"):
                job.status, job.progress, job.error, job.note = "queued", 0.0, "", ""
                self._show(job)
        self._selection_changed()
        self._start_next()

    def remove_selected(self) -> None:
        for job in self.selected_jobs():
            if job.status == "running":
                continue
            self.jobs.remove(job)
            self.table.takeTopLevelItem(self.table.indexOfTopLevelItem(job.item))
        self._selection_changed()

    def clear_finished(self) -> None:
        for job in [j for j in self.jobs if j.status in ("done", "failed", "cancelled")]:
            self.jobs.remove(job)
            self.table.takeTopLevelItem(self.table.indexOfTopLevelItem(job.item))
        self._selection_changed()

    # -- export --------------------------------------------------------------------------------------
    def export(self, job: FileJob, fmt: str, path: str | Path) -> Path:
        if job.transcript is None:
            raise ValueError(f"{job.path} has no transcript yet")
        path = Path(path)
        path.write_text(job.transcript.render(fmt), encoding="utf-8")
        return path

    def export_selected_dialog(self, fmt: str) -> None:
        job = self._job_for_current()
        if job is None or job.transcript is None:
            return
        folder = Path(self.settings.last_dir) if self.settings.last_dir else Path(job.path).parent
        start = str(folder / f"{Path(job.path).stem}.{fmt}")
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", start,
                                              f"{fmt.upper()} files (*.{fmt});;All files (*)")
        if not path:
            return
        self._write_exports([(job, fmt, Path(path))])

    def export_all_dialog(self) -> None:
        done = [j for j in self.jobs if j.transcript is not None]
        if not done:
            self.banner.show_message("No finished transcripts to export yet.", "info")
            return
        folder = QFileDialog.getExistingDirectory(self, "Export all transcripts to", self.settings.last_dir or
                                                  str(Path(done[0].path).parent))
        if folder:
            self.export_all(folder)

    def export_all(self, folder: str | Path, formats: tuple[str, ...] = ("txt", "srt", "vtt", "json")) -> list[Path]:
        Path(folder).mkdir(parents=True, exist_ok=True)
        targets = [(job, fmt, Path(folder) / f"{Path(job.path).stem}.{fmt}")
                   for job in self.jobs if job.transcript is not None for fmt in formats]
        return self._write_exports(targets)

    def _write_exports(self, targets) -> list[Path]:
        written, errors = [], []
        for job, fmt, path in targets:
            try:
                written.append(self.export(job, fmt, path))
            except OSError as e:
                errors.append(f"{path}: {e.strerror or e}")
        if written:
            self.settings.last_dir = str(written[-1].parent)
            self.settings_changed.emit()
            self.message.emit(f"Exported {len(written)} file(s) to {written[-1].parent}.")
        if errors:
            self.banner.show_message("Some exports failed: " + "; ".join(errors), "error")
        return written
