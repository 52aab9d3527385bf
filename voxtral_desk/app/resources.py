"""Icons and other files from the top-level `resources/` folder, found the same way from a source
checkout, an editable install and a PyInstaller bundle (which unpacks data under sys._MEIPASS)."""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from .theme import PALETTE, STATE_COLORS


def resources_dir() -> Path:
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def resource_path(name: str) -> Path:
    return resources_dir() / name


def icon(name: str) -> QIcon:
    """QIcon for resources/<name>.svg (or .png). If the file is missing (a packaging mistake), a plain
    coloured disc is drawn instead so that the tray never shows an empty slot. Not cached: QIcon loads
    lazily, and Qt objects kept in module globals would outlive the QApplication at exit."""
    for ext in (".svg", ".png"):
        path = resource_path(name + ext)
        if path.is_file():
            found = QIcon(str(path))
            if not found.isNull():
                return found
    return _drawn_icon(STATE_COLORS.get(name.removeprefix("tray-"), PALETTE.accent))


def _drawn_icon(color: str) -> QIcon:
    pixmap = QPixmap(64, 64)
    pixmap.fill(Qt.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setBrush(QColor(color))
    painter.setPen(Qt.NoPen)
    painter.drawEllipse(2, 2, 60, 60)
    painter.end()
    return QIcon(pixmap)
