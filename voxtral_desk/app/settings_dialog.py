"""Settings dialog: model, engine backend, delay, microphone, push-to-talk hotkey and how its text is
delivered. What the platform does not allow (global hotkeys on Wayland, ...) is said here in words."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout)

from .audio_capture import CaptureError
from .hotkey import check_hotkey
from .platform_support import PlatformSupport
from .settings import DEFAULT_PASTE_KEYS, Settings
from .theme import ERROR_LABEL, note_style
from .widgets import DelaySpinBox, fill_device_combo

BACKEND_LABELS = {"gpu": "GPU (WGSL; any Vulkan, Metal or DirectX 12 GPU)", "reference": "CPU reference (numpy; slow)"}
INJECTION_LABELS = {"paste": "Paste it (the clipboard is restored afterwards)", "type": "Type it key by key",
                    "clipboard": "Copy it to the clipboard only"}


# Qt keys -> X keysym names (the names parse_hotkey and the X11 grab use); letters and digits map themselves.
QT_KEY_NAMES = {Qt.Key_Space: "space", Qt.Key_Pause: "Pause", Qt.Key_Insert: "Insert", Qt.Key_Delete: "Delete",
                Qt.Key_Home: "Home", Qt.Key_End: "End", Qt.Key_PageUp: "Prior", Qt.Key_PageDown: "Next",
                Qt.Key_Left: "Left", Qt.Key_Right: "Right", Qt.Key_Up: "Up", Qt.Key_Down: "Down",
                Qt.Key_Return: "Return", Qt.Key_Enter: "KP_Enter", Qt.Key_Tab: "Tab", Qt.Key_Backspace: "BackSpace",
                Qt.Key_Print: "Print", Qt.Key_ScrollLock: "Scroll_Lock", Qt.Key_Menu: "Menu",
                Qt.Key_Comma: "comma", Qt.Key_Period: "period", Qt.Key_Slash: "slash", Qt.Key_Semicolon: "semicolon",
                Qt.Key_Apostrophe: "apostrophe", Qt.Key_BracketLeft: "bracketleft", Qt.Key_BracketRight: "bracketright",
                Qt.Key_Backslash: "backslash", Qt.Key_Minus: "minus", Qt.Key_Equal: "equal",
                Qt.Key_QuoteLeft: "grave"}
MODIFIER_KEYS = {Qt.Key_Control, Qt.Key_Alt, Qt.Key_Shift, Qt.Key_Meta, Qt.Key_Super_L, Qt.Key_Super_R,
                 Qt.Key_AltGr, Qt.Key_CapsLock, Qt.Key_NumLock}


def hotkey_from_key_event(key: int, modifiers) -> str | None:
    """The hotkey text for a key pressed with modifiers ("ctrl+alt+space"); None for a modifier alone or a
    key that has no name the hotkey can use."""
    if key in MODIFIER_KEYS:
        return None
    if Qt.Key_F1 <= key <= Qt.Key_F35:
        name = f"F{key - Qt.Key_F1 + 1}"
    elif Qt.Key_A <= key <= Qt.Key_Z or Qt.Key_0 <= key <= Qt.Key_9:
        name = chr(key).lower()
    else:
        name = QT_KEY_NAMES.get(Qt.Key(key))
    if name is None:
        return None
    mods = [m for flag, m in ((Qt.ControlModifier, "ctrl"), (Qt.AltModifier, "alt"), (Qt.ShiftModifier, "shift"),
                              (Qt.MetaModifier, "super")) if modifiers & flag]
    return "+".join(mods + [name])


class HotkeyEdit(QLineEdit):
    """The hotkey as text, or recorded by pressing it: while "recording", the next key pressed with its
    modifiers becomes the hotkey (Escape gives up)."""

    recording_changed = Signal(bool)

    def __init__(self, text: str, parent=None):
        super().__init__(text, parent)
        self.recording = False
        self._before = text

    def start_recording(self) -> None:
        self._before = self.text()
        self.recording = True
        self.setPlaceholderText("Press the keys now…")
        self.clear()
        self.setFocus()
        self.recording_changed.emit(True)

    def stop_recording(self, text: str | None = None) -> None:
        self.recording = False
        self.setPlaceholderText("e.g. ctrl+alt+space, F9, super+h")
        self.setText(self._before if text is None else text)
        self.recording_changed.emit(False)

    def keyPressEvent(self, event) -> None:
        if not self.recording:
            return super().keyPressEvent(event)
        if event.key() == Qt.Key_Escape:
            self.stop_recording()
        elif (combo := hotkey_from_key_event(event.key(), event.modifiers())) is not None:
            self.stop_recording(combo)
        event.accept()  # a modifier alone: keep waiting for the key

    def focusOutEvent(self, event) -> None:
        if self.recording:
            self.stop_recording()
        super().focusOutEvent(event)


class SettingsDialog(QDialog):
    manage_models_requested = Signal()

    def __init__(self, settings: Settings, support: PlatformSupport, device_lister, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Voxtral Desk settings")
        self.setMinimumWidth(660)
        self.original = settings
        self.support = support
        root = QVBoxLayout(self)
        root.setSpacing(12)

        model_box = QGroupBox("Speech model")
        model_form = QFormLayout(model_box)
        path_row = QHBoxLayout()
        self.model_edit = QLineEdit(settings.model_path)
        self.model_edit.setPlaceholderText("Not chosen yet")
        self.model_edit.setMinimumWidth(240)
        path_row.addWidget(self.model_edit, 1)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_model)
        path_row.addWidget(browse)
        manage = QPushButton("Manage models…")
        manage.clicked.connect(self.manage_models_requested)
        path_row.addWidget(manage)
        model_form.addRow("Model:", path_row)
        self.backend_combo = QComboBox()
        for key, label in BACKEND_LABELS.items():
            self.backend_combo.addItem(label, key)
        self.backend_combo.setCurrentIndex(self.backend_combo.findData(settings.backend))
        model_form.addRow("Engine:", self.backend_combo)
        self.delay_spin = DelaySpinBox()
        self.delay_spin.setValue(settings.delay_ms)
        self.delay_spin.setMaximumWidth(140)
        model_form.addRow("Transcription delay:", self.delay_spin)
        root.addWidget(model_box)

        audio_box = QGroupBox("Microphone")
        audio_form = QFormLayout(audio_box)
        self.device_combo = QComboBox()
        try:
            devices = device_lister(False)
        except CaptureError as e:
            devices = []
            audio_form.addRow(QLabel(str(e)))
        fill_device_combo(self.device_combo, devices, settings.input_device)
        audio_form.addRow("Input device:", self.device_combo)
        self.keep_recordings = QCheckBox("Keep the audio of each dictation (WAV files next to the history)")
        self.keep_recordings.setChecked(settings.keep_recordings)
        audio_form.addRow(self.keep_recordings)
        root.addWidget(audio_box)

        ptt_box = QGroupBox("Push-to-talk")
        ptt_layout = QVBoxLayout(ptt_box)
        self.support_label = QLabel(support.message)
        self.support_label.setWordWrap(True)
        self.support_label.setObjectName("supportLabel")
        self.support_label.setStyleSheet(note_style("supportLabel", "warning"))
        self.support_label.setVisible(bool(support.message))
        ptt_layout.addWidget(self.support_label)
        ptt_form = QFormLayout()
        ptt_layout.addLayout(ptt_form)
        self.hotkey_enabled = QCheckBox("Hold a key anywhere to dictate into the focused application")
        self.hotkey_enabled.setChecked(settings.hotkey_enabled)
        self.hotkey_enabled.toggled.connect(self._validate)
        ptt_form.addRow(self.hotkey_enabled)
        hotkey_row = QHBoxLayout()
        self.hotkey_edit = HotkeyEdit(settings.hotkey)
        self.hotkey_edit.setPlaceholderText("e.g. ctrl+alt+space, F9, super+h")
        self.hotkey_edit.textChanged.connect(self._validate)
        hotkey_row.addWidget(self.hotkey_edit, 1)
        self.record_button = QPushButton("Record…")
        self.record_button.setToolTip("Press this, then the key combination you want to hold")
        self.record_button.clicked.connect(self.hotkey_edit.start_recording)
        self.hotkey_edit.recording_changed.connect(lambda on: self.record_button.setText("Press the keys…" if on
                                                                                         else "Record…"))
        self.hotkey_edit.recording_changed.connect(lambda _on: self._validate())
        hotkey_row.addWidget(self.record_button)
        ptt_form.addRow("Hotkey:", hotkey_row)
        self.injection_combo = QComboBox()
        for key, label in INJECTION_LABELS.items():
            self.injection_combo.addItem(label, key)
        self.injection_combo.setCurrentIndex(self.injection_combo.findData(settings.injection))
        ptt_form.addRow("On release:", self.injection_combo)
        self.paste_keys_edit = QLineEdit(settings.paste_keys)
        self.paste_keys_edit.setToolTip("Keys that paste in your applications. With ctrl+v, terminals get their own "
                                        "(ctrl+shift+v, or shift+Insert in xterm) by themselves.")
        ptt_form.addRow("Paste keys:", self.paste_keys_edit)
        self.hotkey_error = QLabel()
        self.hotkey_error.setStyleSheet(ERROR_LABEL)
        self.hotkey_error.setWordWrap(True)
        # Room for two lines kept at all times: the message coming and going never moves the buttons.
        self.hotkey_error.setFixedHeight(2 * self.hotkey_error.fontMetrics().lineSpacing() + 4)
        ptt_form.addRow(self.hotkey_error)
        for w in (self.hotkey_enabled, self.hotkey_edit, self.paste_keys_edit, self.record_button):
            w.setEnabled(support.hotkey)
        self.injection_combo.setEnabled(support.hotkey)
        root.addWidget(ptt_box)

        self.close_to_tray = QCheckBox("Keep running in the system tray when the window is closed")
        self.close_to_tray.setChecked(settings.close_to_tray)
        root.addWidget(self.close_to_tray)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        root.addWidget(self.buttons)
        self._validate()
        self.adjustSize()  # the wrapped platform note needs its full height

    def _browse_model(self) -> None:
        start = self.model_edit.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if folder:
            self.model_edit.setText(folder)

    def _validate(self) -> bool:
        message = ""
        if self.hotkey_enabled.isChecked() and not self.hotkey_edit.recording:
            try:
                check_hotkey(self.hotkey_edit.text())
            except ValueError as e:
                message = str(e)[:1].upper() + str(e)[1:]
        self.hotkey_error.setText(message)
        ok = not message and not self.hotkey_edit.recording
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(ok)
        return ok

    def result_settings(self) -> Settings:
        return replace(self.original,
                       model_path=self.model_edit.text().strip(),
                       backend=self.backend_combo.currentData(),
                       delay_ms=int(self.delay_spin.value()),
                       input_device=self.device_combo.currentData() or "",
                       keep_recordings=self.keep_recordings.isChecked(),
                       hotkey_enabled=self.hotkey_enabled.isChecked(),
                       hotkey=self.hotkey_edit.text().strip(),
                       injection=self.injection_combo.currentData(),
                       paste_keys=self.paste_keys_edit.text().strip() or DEFAULT_PASTE_KEYS,
                       close_to_tray=self.close_to_tray.isChecked())
