"""Live dictation tab: start/stop, level meter, elapsed time, input device, delay, and the growing text.

The widget owns the DictationThread of the dictation in progress. Text from earlier dictations stays in
the editor; each new dictation is appended as its own line while it grows, and the editor is read-only
while recording so that typing cannot get mixed with live text.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication, QTextCursor
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QToolButton,
                               QVBoxLayout, QWidget)

from .audio_capture import CaptureError, InputDevice
from .resources import icon
from ..paths import data_dir
from .settings import Settings
from .theme import FAINT_LABEL, pill_style
from .widgets import Banner, DelaySpinBox, LevelMeter, fill_device_combo, format_clock
from .workers import DictationResult, DictationThread, EngineHost

STATE_TEXT = {"idle": "Ready", "starting": "Starting microphone…", "recording": "● Recording",
              "finishing": "Finishing…"}


class DictationWidget(QWidget):
    state_changed = Signal(str)  # idle, starting, recording, finishing
    finished = Signal(object)  # DictationResult
    model_needed = Signal()  # Start pressed with no model loaded
    settings_changed = Signal()  # delay or device changed here
    message = Signal(str)  # for the status bar

    def __init__(self, settings: Settings, engine_provider: Callable[[], EngineHost | None],
                 capture_factory: Callable[[], object], device_lister: Callable[[bool], list[InputDevice]],
                 history=None, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.engine_provider = engine_provider
        self.capture_factory = capture_factory
        self.device_lister = device_lister
        self.history = history
        self.state = "idle"
        self.idle_text = "Ready"  # the main window says "No model" or "Loading model…" here when so
        self.thread: DictationThread | None = None
        self.last_result: DictationResult | None = None
        self._result: DictationResult | None = None  # of the dictation in progress
        # This dictation's partial signals in arrival order: (sequence number, number of new tokens).
        # Not the texts: an hour of them would be gigabytes.
        self.partials: list[tuple[int, int]] = []
        self._live_start = 0  # editor position where the live text begins
        self._live_text = ""
        self._build()
        self.reload_devices(refresh=False)

    # -- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(16, 14, 16, 12)
        root.setSpacing(10)

        top = QHBoxLayout()
        top.setSpacing(12)
        self.record_button = QPushButton("Start dictation")
        self.record_button.setObjectName("recordButton")
        self.record_button.setIcon(icon("mic-white"))
        self.record_button.setMinimumWidth(170)
        self.record_button.setCursor(Qt.PointingHandCursor)
        self.record_button.setIconSize(QSize(18, 18))
        self.record_button.clicked.connect(self.toggle)
        top.addWidget(self.record_button)
        self.state_label = QLabel()
        self.state_label.setObjectName("stateLabel")
        self.state_label.setAlignment(Qt.AlignCenter)
        self.state_label.setMinimumWidth(150)
        self.state_label.setFixedHeight(26)
        top.addWidget(self.state_label, 0, Qt.AlignVCenter)
        self.clock_label = QLabel("00:00")
        clock_font = QFont()
        clock_font.setPointSize(13)
        clock_font.setStyleHint(QFont.Monospace)
        clock_font.setFamily("DejaVu Sans Mono")
        self.clock_label.setFont(clock_font)
        self.clock_label.setToolTip("Recording time")
        top.addWidget(self.clock_label)
        self.level_meter = LevelMeter()
        top.addWidget(self.level_meter, 1)
        root.addLayout(top)

        options = QHBoxLayout()
        options.setSpacing(8)
        options.addWidget(QLabel("Microphone:"))
        self.device_combo = QComboBox()
        self.device_combo.setMinimumWidth(260)
        self.device_combo.activated.connect(self._device_chosen)
        options.addWidget(self.device_combo, 1)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("⟳")
        self.refresh_button.setToolTip("Look for microphones again")
        self.refresh_button.clicked.connect(lambda: self.reload_devices(refresh=True))
        options.addWidget(self.refresh_button)
        options.addSpacing(16)
        delay_label = QLabel("Delay:")
        options.addWidget(delay_label)
        self.delay_spin = DelaySpinBox()
        self.delay_spin.setValue(self.settings.delay_ms)
        tip = ("How far the transcription runs behind your voice (80–2400 ms, in 80 ms steps). "
               "Shorter shows words sooner; longer is more accurate. Applies from the next dictation.")
        self.delay_spin.setToolTip(tip)
        delay_label.setToolTip(tip)
        self.delay_spin.valueChanged.connect(self._delay_chosen)
        options.addWidget(self.delay_spin)
        root.addLayout(options)

        self.banner = Banner()
        root.addWidget(self.banner)

        self.editor = QPlainTextEdit()
        self.editor.setObjectName("dictationText")
        self.editor.setPlaceholderText("Press “Start dictation” (or hold the push-to-talk key) and speak. "
                                       "The text appears here while you talk.")
        self.editor.setAcceptDrops(False)  # dropped files go to the window (file queue), not into the text
        text_font = QFont()
        text_font.setPointSize(12)
        self.editor.setFont(text_font)
        self.editor.textChanged.connect(self._update_counts)
        root.addWidget(self.editor, 1)

        bottom = QHBoxLayout()
        bottom.setSpacing(8)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy all the text to the clipboard")
        self.copy_button.clicked.connect(self.copy_text)
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the text to a file")
        self.save_button.clicked.connect(self.save_text_dialog)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Clear the text (every dictation stays in History)")
        self.clear_button.clicked.connect(self.clear_text)
        for b in (self.copy_button, self.save_button, self.clear_button):
            bottom.addWidget(b)
        bottom.addStretch(1)
        self.count_label = QLabel()
        self.count_label.setStyleSheet(FAINT_LABEL)
        bottom.addWidget(self.count_label)
        root.addLayout(bottom)
        self._set_state("idle")
        self._update_counts()

    # -- devices and delay ----------------------------------------------------------------------------
    def reload_devices(self, refresh: bool = True) -> None:
        if self.thread is not None:
            return  # PortAudio cannot re-scan while a stream is open
        try:
            devices = self.device_lister(refresh)
        except CaptureError as e:
            devices = []
            self.banner.show_message(str(e), "warning")
        fill_device_combo(self.device_combo, devices, self.settings.input_device)
        if refresh:
            self.message.emit(f"{len(devices)} microphone{'s' if len(devices) != 1 else ''} found.")

    def _device_chosen(self, index: int) -> None:
        self.settings.input_device = self.device_combo.itemData(index) or ""
        self.settings_changed.emit()

    def _delay_chosen(self, value: int) -> None:
        self.settings.delay_ms = int(value)
        self.settings_changed.emit()

    # -- start / stop ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.thread is not None

    def toggle(self) -> None:
        if self.state in ("starting", "recording"):
            self.stop()
        elif self.state == "idle":
            self.start()

    def start(self) -> bool:
        if self.thread is not None:
            return False
        engine = self.engine_provider()
        if engine is None:
            self.model_needed.emit()
            return False
        self.banner.hide()
        record_path = None
        if self.settings.keep_recordings:
            record_path = data_dir() / "recordings" / time.strftime("dictation-%Y%m%d-%H%M%S.wav")
        thread = DictationThread(engine, self.capture_factory(), self.settings.input_device, self.settings.delay_ms,
                                 self.history, record_path)
        thread.capture_started.connect(self._on_capture_started)
        thread.partial.connect(self._on_partial)
        thread.stats.connect(self._on_stats)
        thread.failed.connect(self._on_failed)
        thread.device_error.connect(self._on_device_error)
        thread.done.connect(self._on_done)
        thread.finished.connect(self._on_thread_finished)
        self.thread = thread
        self.partials = []
        self._begin_live_text()
        self.clock_label.setText("00:00")
        self._set_state("starting")
        thread.start()
        return True

    def stop(self) -> None:
        if self.thread is not None and self.state in ("starting", "recording"):
            self.thread.request_stop()
            self._set_state("finishing")

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Stop (flushing) and wait for the worker; used when the app quits."""
        if self.thread is None:
            return True
        self.stop()
        return self.thread.wait(timeout_ms)

    def _on_capture_started(self, device: str, rate: int) -> None:
        if self.state == "starting":
            self._set_state("recording")
        note = "" if rate == 16000 else f" at {rate} Hz (resampled to 16 kHz)"
        self.message.emit(f"Recording from “{device}”{note}.")

    def _on_partial(self, seq: int, tokens: list, text: str) -> None:
        self.partials.append((seq, len(tokens)))
        self._show_live_text(text)

    def _on_stats(self, seconds: float, level_db: float, dropped: float) -> None:
        self.clock_label.setText(format_clock(seconds))
        self.level_meter.set_level(level_db if self.state == "recording" else -120.0)

    def _on_failed(self, message: str) -> None:
        self.banner.show_message(message, "error", [("devices", "Look for microphones again")])
        self.banner.action.connect(self._banner_action, Qt.UniqueConnection)
        self._end_live_text()

    def _on_device_error(self, message: str) -> None:
        self.banner.show_message(message + " The text so far is kept below and in History.", "error",
                                 [("devices", "Look for microphones again")])
        self.banner.action.connect(self._banner_action, Qt.UniqueConnection)

    def _banner_action(self, key: str) -> None:
        if key == "devices":
            self.reload_devices(refresh=True)
            self.banner.hide()

    def _on_done(self, result: DictationResult) -> None:
        self.last_result = self._result = result
        self._show_live_text(result.text)
        self._end_live_text()
        if result.dropped_seconds > 0:
            self.banner.show_message(f"{result.dropped_seconds:.1f} s of audio could not be transcribed because the "
                                     "engine fell behind. Try the GPU backend or a longer delay.", "warning")
        self.message.emit(f"Dictation finished: {format_clock(result.seconds)} transcribed.")

    def _on_thread_finished(self) -> None:
        # QThread.finished is queued after the worker's own signals, so done() has been handled.
        result, self._result = self._result, None
        self.thread = None
        self.level_meter.set_level(-120.0)
        if result is not None:  # before going idle, so listeners see the result of the dictation that ended
            self.finished.emit(result)
        self._set_state("idle")

    def set_idle_text(self, text: str) -> None:
        self.idle_text = text
        if self.state == "idle":
            self.state_label.setText(text)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_label.setText(self.idle_text if state == "idle" else STATE_TEXT[state])
        self.state_label.setStyleSheet(pill_style(state))
        recording = state in ("starting", "recording")
        self.record_button.setText("Stop" if recording else "Start dictation")
        self.record_button.setIcon(icon("stop-white" if recording else "mic-white"))
        self.record_button.setEnabled(state != "finishing")
        self.record_button.setProperty("recording", recording)
        self.record_button.style().unpolish(self.record_button)  # re-read the style sheet for the property
        self.record_button.style().polish(self.record_button)
        busy = state != "idle"
        self.device_combo.setEnabled(not busy)
        self.refresh_button.setEnabled(not busy)
        self.delay_spin.setEnabled(not busy)
        self.clear_button.setEnabled(not busy)
        self.editor.setReadOnly(busy)
        self.state_changed.emit(state)

    # -- text ----------------------------------------------------------------------------------------
    def _begin_live_text(self) -> None:
        existing = self.editor.toPlainText()
        cursor = self.editor.textCursor()
        cursor.movePosition(QTextCursor.End)
        if existing and not existing.endswith("\n"):
            cursor.insertText("\n")
        self._live_start = cursor.position()
        self._live_text = ""

    def _show_live_text(self, text: str) -> None:
        if text == self._live_text:
            return
        cursor = QTextCursor(self.editor.document())
        if text.startswith(self._live_text):  # the usual case: only append what is new
            cursor.movePosition(QTextCursor.End)
            cursor.insertText(text[len(self._live_text):])
        else:  # the tokenizer re-joined a character across tokens: replace the live part
            cursor.setPosition(self._live_start)
            cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
            cursor.insertText(text)
        self._live_text = text
        self.editor.moveCursor(QTextCursor.End)
        self.editor.ensureCursorVisible()

    def _end_live_text(self) -> None:
        if not self._live_text:  # nothing recognised: drop the line break added at the start
            cursor = QTextCursor(self.editor.document())
            cursor.setPosition(min(self._live_start, len(self.editor.toPlainText())))
            cursor.movePosition(QTextCursor.End, QTextCursor.KeepAnchor)
            if not cursor.selectedText().strip():
                cursor.removeSelectedText()
                text = self.editor.toPlainText()
                if text.endswith("\n"):
                    cursor.movePosition(QTextCursor.End)
                    cursor.deletePreviousChar()
        self._live_text = ""

    def text(self) -> str:
        return self.editor.toPlainText()

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.text())
        self.message.emit("Copied to the clipboard.")

    def clear_text(self) -> None:
        self.editor.clear()
        self.message.emit("Cleared. Every dictation is still in History.")

    def save_text(self, path: str | Path) -> None:
        Path(path).write_text(self.text() + ("\n" if not self.text().endswith("\n") else ""), encoding="utf-8")
        self.message.emit(f"Saved to {path}.")

    def save_text_dialog(self) -> None:
        start = str(Path(self.settings.last_dir or Path.home()) / time.strftime("dictation-%Y-%m-%d.txt"))
        path, _ = QFileDialog.getSaveFileName(self, "Save dictation", start, "Text files (*.txt);;All files (*)")
        if not path:
            return
        try:
            self.save_text(path)
        except OSError as e:
            self.banner.show_message(f"Could not save {path}: {e.strerror or e}", "error")
            return
        self.settings.last_dir = str(Path(path).parent)
        self.settings_changed.emit()

    def _update_counts(self) -> None:
        words = len(self.editor.toPlainText().split())
        self.count_label.setText(f"{words} word{'s' if words != 1 else ''}")
