"""System tray icon: the app's state at a glance (idle / recording / busy) and a menu to show the window,
start or stop dictation, and quit. Where the desktop has no tray the window alone is used."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from .resources import icon

STATE_TOOLTIPS = {
    "idle": "Voxtral Desk — ready",
    "recording": "Voxtral Desk — recording",
    "busy": "Voxtral Desk — working…",
}


class Tray(QObject):
    show_requested = Signal()
    toggle_requested = Signal()
    quit_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state = "idle"
        self.icon = QSystemTrayIcon(icon("tray-idle"), self)
        self.menu = QMenu()
        self.show_action = self.menu.addAction("Show window")
        self.show_action.triggered.connect(self.show_requested)
        self.toggle_action = self.menu.addAction("Start dictation")
        self.toggle_action.triggered.connect(self.toggle_requested)
        self.menu.addSeparator()
        self.state_action = self.menu.addAction("")
        self.state_action.setEnabled(False)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit Voxtral Desk")
        self.quit_action.triggered.connect(self.quit_requested)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.set_state("idle")

    @staticmethod
    def available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def set_state(self, state: str, detail: str = "") -> None:
        """state: idle, recording or busy. The menu's toggle follows whether a dictation is running."""
        self.state = state
        self.icon.setIcon(icon(f"tray-{state}"))
        self.icon.setToolTip(STATE_TOOLTIPS[state] + (f"\n{detail}" if detail else ""))
        self.state_action.setText({"idle": "Idle", "recording": "● Recording", "busy": "Busy"}[state]
                                  + (f" — {detail}" if detail else ""))

    def set_dictating(self, dictating: bool, enabled: bool = True) -> None:
        self.toggle_action.setText("Stop dictation" if dictating else "Start dictation")
        self.toggle_action.setEnabled(enabled)

    def notify(self, title: str, text: str) -> None:
        if self.icon.isVisible() and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, text, icon("voxtral-desk"), 4000)

    def _activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.Trigger, QSystemTrayIcon.DoubleClick):
            self.show_requested.emit()
