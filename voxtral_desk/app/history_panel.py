"""History tab: every dictation and file transcription, newest first, with its full text; each can be
copied or exported again (TXT always; SRT, VTT and JSON when its tokens were kept)."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox,
                               QPlainTextEdit, QPushButton, QSplitter, QVBoxLayout, QWidget)

from ..fileio import write_atomic
from ..transcript import FORMATS, Transcript
from .history import Entry, History
from .theme import MUTED_LABEL
from .widgets import Banner, format_clock


def describe(entry: Entry) -> str:
    when = time.localtime(entry.started)
    today = time.localtime()
    day = "Today" if when[:3] == today[:3] else time.strftime("%Y-%m-%d", when)
    kind = "Dictation" if entry.kind == "dictation" else Path(entry.source).name
    status = {"recording": " · recording", "interrupted": " · recovered"}.get(entry.status, "")
    preview = " ".join(entry.text.split())[:70] or "(no speech recognised)"
    return f"{day} {time.strftime('%H:%M', when)} · {kind} · {format_clock(entry.duration)}{status}\n{preview}"


def transcript_of(entry: Entry | None) -> Transcript | None:
    """The entry's kept transcript, or None (none kept, or not readable)."""
    if entry is None or not entry.transcript:
        return None
    try:
        return Transcript.from_json_record(entry.transcript)
    except ValueError:
        return None


def export_name(entry: Entry, fmt: str) -> str:
    if entry.kind == "file":
        return f"{Path(entry.source).stem}.{fmt}"
    return time.strftime("dictation-%Y-%m-%d-%H%M", time.localtime(entry.started)) + f".{fmt}"


class HistoryPanel(QWidget):
    message = Signal(str)
    settings_changed = Signal()  # the last folder used for exports changed

    def __init__(self, history: History | None, settings=None, parent=None):
        super().__init__(parent)
        self.history = history
        self.settings = settings
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 14, 16, 12)
        root.setSpacing(10)
        self.info = QLabel("Every dictation and transcribed file is kept here, even if the app stops unexpectedly.")
        self.info.setStyleSheet(MUTED_LABEL)
        self.info.setWordWrap(True)
        root.addWidget(self.info)
        self.banner = Banner()
        root.addWidget(self.banner)
        splitter = QSplitter(Qt.Horizontal)
        self.list = QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.currentItemChanged.connect(self._show_current)
        splitter.addWidget(self.list)
        self.viewer = QPlainTextEdit()
        self.viewer.setReadOnly(True)
        self.viewer.setPlaceholderText("Select an entry to read it.")
        splitter.addWidget(self.viewer)
        splitter.setSizes([330, 450])
        root.addWidget(splitter, 1)
        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_current)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(lambda: self.delete_current())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.reload)
        for b in (self.copy_button, self.delete_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        buttons.addSpacing(12)
        buttons.addWidget(QLabel("Export:"))
        self.export_buttons = {}
        for fmt in ("txt", "srt", "vtt", "json"):
            b = QPushButton(fmt.upper())
            b.clicked.connect(lambda _=False, f=fmt: self.export_dialog(f))
            buttons.addWidget(b)
            self.export_buttons[fmt] = b
        root.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        current = self.current_entry()
        self.list.clear()
        if self.history is None:
            self.info.setText("History is unavailable (its database could not be opened).")
            self._show_current()
            return
        for entry in self.history.entries(preview_chars=200):
            item = QListWidgetItem(describe(entry))
            item.setData(Qt.UserRole, entry.id)
            self.list.addItem(item)
            if current is not None and entry.id == current.id:
                self.list.setCurrentItem(item)
        self._show_current()

    def current_entry(self) -> Entry | None:
        item = self.list.currentItem()
        if item is None or self.history is None:
            return None
        return self.history.get(item.data(Qt.UserRole))

    def _show_current(self, *_args) -> None:
        entry = self.current_entry()
        self.viewer.setPlainText(entry.text if entry else "")
        self.copy_button.setEnabled(entry is not None)
        self.delete_button.setEnabled(entry is not None)
        timed = transcript_of(entry) is not None
        for fmt, b in self.export_buttons.items():
            b.setEnabled(entry is not None and (fmt == "txt" or timed))
            b.setToolTip(f"Save this transcript as {fmt.upper()}" if b.isEnabled() or entry is None else
                         "Only the text was kept for this entry (made by an earlier version): TXT only.")

    def export(self, entry: Entry, fmt: str, path: str | Path) -> Path:
        transcript = transcript_of(entry)
        if transcript is not None:
            text = transcript.render(fmt)
        elif fmt == "txt":
            text = entry.text + "\n"
        else:
            raise ValueError("no timed transcript was kept for this entry; only TXT can be exported")
        return write_atomic(path, text)

    def export_dialog(self, fmt: str) -> None:
        entry = self.current_entry()
        if entry is None or fmt not in FORMATS:
            return
        folder = Path(self.settings.last_dir) if self.settings is not None and self.settings.last_dir else Path.home()
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", str(folder / export_name(entry, fmt)),
                                              f"{fmt.upper()} files (*.{fmt});;All files (*)")
        if not path:
            return
        try:
            written = self.export(entry, fmt, path)
        except (OSError, ValueError) as e:
            self.banner.show_message(f"Could not export to {path}: {getattr(e, 'strerror', None) or e}", "error")
            return
        self.banner.hide()
        if self.settings is not None:
            self.settings.last_dir = str(written.parent)
            self.settings_changed.emit()
        self.message.emit(f"Exported {written.name} to {written.parent}.")

    def copy_current(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            QGuiApplication.clipboard().setText(entry.text)
            self.message.emit("Copied to the clipboard.")

    def delete_current(self, confirm: bool = True) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        if confirm and QMessageBox.question(self, "Delete from history",
                                            "Delete this entry from the history? "
                                            "This cannot be undone.") != QMessageBox.Yes:
            return
        self.history.delete(entry.id)
        self.reload()
