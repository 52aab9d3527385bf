"""File transcription tab: the view of the file queue (file_queue.FileQueue holds its state), one
FileThread at a time.

Each file has its own status, progress and error; a file that fails or is cancelled never stops the
others. A dictation pauses the running file where it is; it continues from there afterwards. A finished
file's transcript can be viewed and exported as TXT, SRT, VTT or JSON (timestamps on the model's 80 ms
token grid, from transcript.Transcript), also after a restart: the queue and its transcripts are kept.
Files are read in 10 s blocks by the pipeline, so an hour-long file never sits in memory; only its tokens do.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from ..fileio import write_atomic
from ..transcript import FORMATS, Transcript, export_names
from .file_queue import ACTIVE, AUDIO_EXTENSIONS, FINISHED, FileJob, FileQueue, Status
from .settings import Settings
from .theme import MUTED_LABEL, PALETTE, STATUS_COLORS
from .widgets import Banner, format_clock
from .workers import EngineHost, FileThread

AUDIO_FILTER = "Audio files (" + " ".join(f"*{e}" for e in sorted(AUDIO_EXTENSIONS)) + ");;All files (*)"
COL_FILE, COL_LENGTH, COL_STATUS, COL_PROGRESS = range(4)
FORMATS_ORDER = [f for f in ("txt", "srt", "vtt", "json") if f in FORMATS]


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
            p.setPen(QColor(PALETTE.text_hint))
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
                 queue: FileQueue | None = None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.engine_provider = engine_provider
        self.history = history
        self.queue = queue or FileQueue()
        self.rows: dict[FileJob, tuple[QTreeWidgetItem, QProgressBar]] = {}
        self.thread: FileThread | None = None
        self._running: FileJob | None = None
        self._build()
        for job in self.queue.jobs:  # brought back from the last session
            self._add_row(job)
        self._selection_changed()

    @property
    def jobs(self) -> list[FileJob]:
        return self.queue.jobs

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 14, 16, 12)
        root.setSpacing(10)

        top = QHBoxLayout()
        hint = QLabel("Drop audio files anywhere in this window, or")
        hint.setStyleSheet(MUTED_LABEL)
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

    # -- queue ---------------------------------------------------------------------------------------
    def _add_row(self, job: FileJob) -> None:
        item = QTreeWidgetItem([Path(job.path).name, "—", "", ""])
        item.setToolTip(COL_FILE, job.path)
        self.table.addTopLevelItem(item)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setTextVisible(True)
        bar.setMaximumHeight(18)
        self.table.setItemWidget(item, COL_PROGRESS, bar)
        self.rows[job] = (item, bar)
        self._show(job)

    def item(self, job: FileJob) -> QTreeWidgetItem:
        return self.rows[job][0]

    def add_files(self, paths: list[str]) -> list[FileJob]:
        added, skipped = self.queue.add(paths)
        for job in added:
            self._add_row(job)
        notes = []
        if added:
            notes.append(f"{len(added)} file{'s' if len(added) != 1 else ''} added to the queue.")
        if skipped:
            notes.append(f"{len(skipped)} already waiting in the queue.")
        if notes:
            self.message.emit(" ".join(notes))
        elif paths:
            self.message.emit("No audio files found in what was dropped.")
        self._report_save_error()
        if added:
            self._start_next()
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
        return self.thread is not None or self.queue.next_job() is not None

    def _set(self, job: FileJob, status: Status, **kw) -> None:
        self.queue.set_status(job, status, **kw)
        self._show(job)
        self._report_save_error()

    def _start_next(self) -> None:
        if self.thread is not None:
            return
        job = self.queue.next_job()
        if job is None:
            self.busy_changed.emit(False)
            return
        engine = self.engine_provider()
        if engine is None:
            for j in self.jobs:
                if j.status == Status.QUEUED:
                    j.note = "waiting for the model"
                    self._show(j)
            self.model_needed.emit()
            return
        resume = job.paused
        if resume is None:
            job.progress = 0.0
        self._set(job, Status.WAITING, note="")
        thread = FileThread(engine, job.path, self.settings.delay_ms, self.history, resume=resume)
        thread.running.connect(lambda j=job: self._on_running(j))
        thread.waiting.connect(lambda j=job: self._on_waiting(j))
        thread.info.connect(lambda d, j=job: self._on_info(j, d))
        thread.progress.connect(lambda f, j=job: self._on_progress(j, f))
        thread.transcribed.connect(lambda t, hid, j=job: self._on_transcribed(j, t, hid))
        thread.failed.connect(lambda m, j=job: self._on_failed(j, m))
        thread.cancelled.connect(lambda j=job: self._on_cancelled(j))
        thread.interrupted.connect(lambda state, j=job: self._on_interrupted(j, state))
        thread.finished.connect(self._on_thread_finished)
        self.thread, self._running = thread, job
        self.busy_changed.emit(True)
        thread.start()

    def _on_thread_finished(self) -> None:
        self.thread, self._running = None, None
        self._selection_changed()
        self._start_next()

    def _on_running(self, job: FileJob) -> None:
        if job.status == Status.WAITING:
            self._set(job, Status.RUNNING)

    def _on_waiting(self, job: FileJob) -> None:
        if job.status == Status.WAITING and job.paused is None:  # (a paused file already says so)
            job.note = "until the dictation ends"
            self._show(job)

    def _on_info(self, job: FileJob, duration: float) -> None:
        job.duration = duration
        self._show(job)

    def _on_progress(self, job: FileJob, fraction: float) -> None:
        job.progress = fraction
        self._show(job)

    def _on_transcribed(self, job: FileJob, transcript: Transcript, history_id) -> None:
        self.queue.finish(job, transcript, history_id)
        self._show(job)
        self._selection_changed()
        self.job_finished.emit(job)

    def _on_failed(self, job: FileJob, message: str) -> None:
        self._set(job, Status.FAILED, error=message)
        self._selection_changed()
        self.job_finished.emit(job)

    def _on_cancelled(self, job: FileJob) -> None:
        self._set(job, Status.CANCELLED)
        self._selection_changed()
        self.job_finished.emit(job)

    def _on_interrupted(self, job: FileJob, state: object) -> None:
        # A dictation took the engine; the file continues from where it stopped once it is done.
        if job.status == Status.CANCELLING:  # cancelled while it was yielding
            self._set(job, Status.CANCELLED)
            self.job_finished.emit(job)
        else:
            self.queue.pause(job, state)
            self._show(job)
        self._selection_changed()

    def _report_save_error(self) -> None:
        if self.queue.save_error:
            self.banner.show_message(f"{self.queue.save_error[:1].upper()}{self.queue.save_error[1:]}: it is "
                                     "forgotten if Voxtral Desk is closed.", "warning")

    def _show(self, job: FileJob) -> None:
        if job not in self.rows:
            return
        item, bar = self.rows[job]
        item.setText(COL_LENGTH, format_clock(job.duration) if job.duration is not None else "—")
        item.setText(COL_STATUS, job.label)
        item.setToolTip(COL_STATUS, job.error or job.label)
        item.setForeground(COL_STATUS, QColor(STATUS_COLORS[job.status.value]))
        bar.setValue(int(job.progress * 1000))
        shown = job.status in (Status.RUNNING, Status.DONE, Status.PAUSED, Status.CANCELLING) or job.progress > 0
        bar.setEnabled(shown)
        bar.setFormat("%p%" if shown else "")

    # -- selection actions --------------------------------------------------------------------------
    def selected_jobs(self) -> list[FileJob]:
        selected = set(id(i) for i in self.table.selectedItems())
        return [j for j in self.jobs if j in self.rows and id(self.rows[j][0]) in selected]

    def _job_for_current(self) -> FileJob | None:
        jobs = self.selected_jobs()
        return jobs[0] if len(jobs) == 1 else None

    def _selection_changed(self) -> None:
        job = self._job_for_current()
        if job is not None and job.transcript is not None:
            self.preview_label.setText(f"Transcript — {Path(job.path).name}")
            self.preview.setPlainText(job.transcript.text)
        elif job is not None and job.status == Status.FAILED:
            self.preview_label.setText(f"Error — {Path(job.path).name}")
            self.preview.setPlainText(job.error)
        else:
            self.preview_label.setText("Transcript")
            self.preview.clear()
        for b in self.export_buttons.values():
            b.setEnabled(job is not None and job.transcript is not None)
        jobs = self.selected_jobs()
        self.cancel_button.setEnabled(any(j.status not in FINISHED and j.status != Status.CANCELLING for j in jobs))
        self.retry_button.setEnabled(any(j.status in (Status.FAILED, Status.CANCELLED) for j in jobs))
        self.remove_button.setEnabled(any(j.status not in ACTIVE for j in jobs))
        self.clear_button.setEnabled(any(j.status in FINISHED for j in self.jobs))
        self.export_all_button.setEnabled(any(j.transcript is not None for j in self.jobs))

    def cancel_selected(self) -> None:
        for job in self.selected_jobs():
            self.cancel(job)
        self._selection_changed()

    def cancel(self, job: FileJob) -> None:
        was = job.status
        if self.queue.cancel(job) and job is self._running and self.thread is not None:
            self.thread.cancel()  # the thread reports cancelled() at its next block
        self._show(job)
        if job.status == Status.CANCELLED and was != Status.CANCELLED:
            self.job_finished.emit(job)

    def stop_for_quit(self) -> None:
        """The app quits: stop the running file, but keep the queue on disk as it is, so that unfinished
        files start again at the next start."""
        self.queue.save()
        self.queue.state_path = None  # what the stopping worker reports is not saved
        if self.thread is not None:
            self.thread.cancel()

    def retry_selected(self) -> None:
        for job in self.selected_jobs():
            if self.queue.retry(job):
                self._show(job)
        self._selection_changed()
        self._start_next()

    def remove_selected(self) -> None:
        for job in self.selected_jobs():
            if self.queue.remove(job):
                self._drop_row(job)
        self._selection_changed()

    def clear_finished(self) -> None:
        for job in self.queue.clear_finished():
            self._drop_row(job)
        self._selection_changed()

    def _drop_row(self, job: FileJob) -> None:
        item, _bar = self.rows.pop(job)
        self.table.takeTopLevelItem(self.table.indexOfTopLevelItem(item))

    # -- export --------------------------------------------------------------------------------------
    def export(self, job: FileJob, fmt: str, path: str | Path) -> Path:
        if job.transcript is None:
            raise ValueError(f"{job.path} has no transcript yet")
        return write_atomic(path, job.transcript.render(fmt))

    def export_selected_dialog(self, fmt: str) -> None:
        job = self._job_for_current()
        if job is None or job.transcript is None:
            return
        folder = Path(self.settings.last_dir) if self.settings.last_dir else Path(job.path).parent
        start = str(folder / f"{Path(job.path).stem}.{fmt}")
        # The platform's save dialog asks before replacing a file.
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

    def export_all(self, folder: str | Path, formats: tuple[str, ...] = ("txt", "srt", "vtt", "json"),
                   existing: str = "ask") -> list[Path]:
        """Every finished transcript into `folder`, never two under one name (memo.ogg.srt and memo.mp3.srt
        when stems collide). existing: what to do with files already there: "ask", "replace" or "skip"."""
        folder = Path(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.banner.show_message(f"Cannot create the folder {folder}: {e.strerror or e}", "error")
            return []
        done = [j for j in self.jobs if j.transcript is not None]
        targets = [(job, fmt, folder / name) for fmt in formats
                   for job, name in zip(done, export_names([j.path for j in done], fmt), strict=True)]
        there = [t for t in targets if t[2].exists()]
        if there and existing == "ask":
            existing = self._ask_replace([t[2] for t in there], folder)
        if existing == "cancel":
            return []
        if existing == "skip":
            targets = [t for t in targets if not t[2].exists()]
        return self._write_exports(targets)

    def _ask_replace(self, paths: list[Path], folder: Path) -> str:
        """"replace", "skip" or "cancel"."""
        names = ", ".join(p.name for p in paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
        box = QMessageBox(QMessageBox.Warning, "Replace files?",
                          f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
                          f" already exist{'' if len(paths) != 1 else 's'}"
                          f" in {folder}: {names}.", parent=self)
        replace = box.addButton("Replace", QMessageBox.DestructiveRole)
        skip = box.addButton("Keep them, write the others", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "replace" if clicked is replace else "skip" if clicked is skip else "cancel"

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
            what = written[0].name if len(written) == 1 else f"{len(written)} files"
            self.message.emit(f"Exported {what} to {written[-1].parent}.")
        if errors:
            self.banner.show_message("Some exports failed: " + "; ".join(errors), "error")
        return written
