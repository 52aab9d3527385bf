"""Small widgets shared by the windows: a message banner, a stack of notices each about one topic, a short
confirmation toast, and an audio level meter."""
from __future__ import annotations

from PySide6.QtCore import QEvent, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from .settings import DELAY_MAX_MS, DELAY_MIN_MS, DELAY_STEP_MS
from .theme import PALETTE, TOAST, banner_style


class Banner(QFrame):
    """A dismissable message strip with up to two action buttons. Hidden until show_message()."""

    action = Signal(str)  # the key of the button pressed

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.setSpacing(8)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        self._button_row = QHBoxLayout()
        self._button_row.setSpacing(6)
        layout.addLayout(self._button_row)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        layout.addWidget(self.close_button)
        self.kind = "info"
        self.hide()

    def show_message(self, text: str, kind: str = "info", actions: list[tuple[str, str]] | None = None,
                     closable: bool = True) -> None:
        """actions: (key, button label) pairs; pressing one emits action(key)."""
        self.kind = kind
        self.setStyleSheet(banner_style(kind))
        self.label.setText(text)
        for b in self._buttons:
            b.deleteLater()
        self._buttons = []
        for key, label in actions or []:
            button = QPushButton(label)
            button.setObjectName(f"banner-{key}")
            button.clicked.connect(lambda _=False, k=key: self.action.emit(k))
            self._button_row.addWidget(button)
            self._buttons.append(button)
        self.close_button.setVisible(closable)
        self.show()

    def button(self, key: str) -> QPushButton | None:
        return next((b for b in self._buttons if b.objectName() == f"banner-{key}"), None)

    @property
    def text(self) -> str:
        return self.label.text()


class Notices(QWidget):
    """Banners stacked one per topic ("startup", "hotkey", "history", ...): a topic's new message replaces
    its old one, and clear(topic) takes it away once the problem is gone, leaving the others alone."""

    action = Signal(str, str)  # topic, the key of the button pressed

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._banners: dict[str, Banner] = {}

    def show_message(self, topic: str, text: str, kind: str = "info", actions: list[tuple[str, str]] | None = None,
                     closable: bool = True) -> None:
        banner = self._banners.get(topic)
        if banner is None:
            banner = self._banners[topic] = Banner()
            banner.action.connect(lambda key, t=topic: self.action.emit(t, key))
            self._layout.addWidget(banner)
        banner.show_message(text, kind, actions, closable)

    def clear(self, topic: str) -> None:
        if topic in self._banners:
            self._banners[topic].hide()

    def banner(self, topic: str) -> Banner | None:
        """The topic's banner while it is shown, else None."""
        banner = self._banners.get(topic)
        return banner if banner is not None and not banner.isHidden() else None


class ElidedLabel(QLabel):
    """One line that shortens itself with "…" to the room it gets; the whole text is in its tooltip."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setMinimumWidth(60)
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        margins = self.contentsMargins()
        room = max(0, self.width() - margins.left() - margins.right() - 12)  # 12: the style sheet's padding
        super().setText(self.fontMetrics().elidedText(self._full, Qt.ElideMiddle, room) if room else self._full)


class Toast(QLabel):
    """A short confirmation ("Copied to the clipboard.") shown over the bottom of its parent for a few
    seconds, where the eye already is after pressing a button."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("toast")
        self.setStyleSheet(TOAST)
        self.setWordWrap(True)
        self.setAttribute(Qt.WA_TransparentForMouseEvents)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        parent.installEventFilter(self)
        self.hide()

    def show_text(self, text: str, seconds: float = 3.0) -> None:
        self.setText(text)
        self._place()
        self.show()
        self.raise_()
        self._timer.start(int(seconds * 1000))

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Resize and self.isVisible():
            self._place()
        return False

    def _place(self) -> None:
        parent = self.parentWidget()
        self.setMaximumWidth(max(200, parent.width() - 80))
        self.adjustSize()
        self.move((parent.width() - self.width()) // 2, parent.height() - self.height() - 48)


class DelaySpinBox(QSpinBox):
    """80-2400 ms in 80 ms steps; a typed value snaps to the nearest step instead of being rejected."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRange(DELAY_MIN_MS, DELAY_MAX_MS)
        self.setSingleStep(DELAY_STEP_MS)
        self.setSuffix(" ms")
        self.setKeyboardTracking(False)
        self.setAccelerated(True)

    def valueFromText(self, text: str) -> int:
        value = super().valueFromText(text)
        return min(max(round(value / DELAY_STEP_MS) * DELAY_STEP_MS, DELAY_MIN_MS), DELAY_MAX_MS)


def fill_device_combo(combo, devices, wanted: str) -> None:
    """The microphones to choose from, each once by its human name, the system default first (naming the
    device it is now); a chosen device that is unplugged stays listed as such."""
    combo.clear()
    default = next((d for d in devices if d.is_default), None)
    combo.addItem(f"System default ({default.name})" if default else "System default", "")
    for d in devices:
        combo.addItem(d.name, d.setting)
    index = combo.findData(wanted)
    if index < 0:
        combo.addItem(f"{wanted.split(':', 1)[-1]}  (not connected)", wanted)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


class LevelMeter(QWidget):
    """Input level as a bar: -60 dBFS empty, 0 dBFS full; green, then amber near clipping, red at it."""

    FLOOR_DB = -60.0

    def __init__(self, parent=None):
        super().__init__(parent)
        self.db = -120.0
        self.setMinimumSize(120, 10)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setFixedHeight(10)
        self.setToolTip("Microphone level")

    def set_level(self, db: float) -> None:
        self.db = db
        self.update()

    @property
    def fraction(self) -> float:
        return min(max((self.db - self.FLOOR_DB) / -self.FLOOR_DB, 0.0), 1.0)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QColor(PALETTE.border_strong))
        p.setBrush(QColor(PALETTE.panel))
        p.drawRoundedRect(r, 4, 4)
        if self.fraction > 0:
            color = PALETTE.level_ok if self.db < -12 else PALETTE.busy if self.db < -1 else PALETTE.recording
            p.setPen(Qt.NoPen)
            p.setBrush(QColor(color))
            p.drawRoundedRect(QRectF(r.x(), r.y(), max(r.width() * self.fraction, 6), r.height()), 4, 4)
        p.end()


def format_clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"

