"""History tab: every dictation and file transcription, newest first, with its full text."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPlainTextEdit,
                               QPushButton, QSplitter, QVBoxLayout, QWidget)

from .history import Entry, History
from .widgets import format_clock


def describe(entry: Entry) -> str:
    when = time.localtime(entry.started)
    today = time.localtime()
    day = "Today" if when[:3] == today[:3] else time.strftime("%Y-%m-%d", when)
    kind = "Dictation" if entry.kind == "dictation" else Path(entry.source).name
    status = {"recording": " · recording", "interrupted": " · recovered"}.get(entry.status, "")
    preview = " ".join(entry.text.split())[:70] or "(no speech recognised)"
    return f"{day} {time.strftime('%H:%M', when)} · {kind} · {format_clock(entry.duration)}{status}\n{preview}"


class HistoryPanel(QWidget):
    message = Signal(str)

    def __init__(self, history: History | None, parent=None):
        super().__init__(parent)
        self.history = history
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 14, 16, 12)
        root.setSpacing(10)
        self.info = QLabel("Every dictation and transcribed file is kept here, even if the app stops unexpectedly.")
        self.info.setStyleSheet("color: #4b5563;")
        self.info.setWordWrap(True)
        root.addWidget(self.info)
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
        root.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        current = self.current_entry()
        self.list.clear()
        if self.history is None:
            self.info.setText("History is unavailable (its database could not be opened).")
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
                                            "Delete this entry from the history? This cannot be undone.") != QMessageBox.Yes:
            return
        self.history.delete(entry.id)
        self.reload()
