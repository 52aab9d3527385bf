"""Settings dialog: model, engine backend, delay, microphone, push-to-talk hotkey and how its text is
delivered. What the platform does not allow (global hotkeys on Wayland, ...) is said here in words."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout)

from .audio_capture import CaptureError
from .dictation import DelaySpinBox
from .hotkey import PlatformSupport, parse_hotkey
from .settings import Settings

BACKEND_LABELS = {"gpu": "GPU (WGSL; any Vulkan, Metal or DirectX 12 GPU)", "reference": "CPU reference (numpy; slow)"}
INJECTION_LABELS = {"paste": "Paste it (the clipboard is restored afterwards)", "type": "Type it key by key",
                    "clipboard": "Copy it to the clipboard only"}


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
        self.device_combo.addItem("System default", "")
        try:
            for d in device_lister(False):
                self.device_combo.addItem(d.name, d.name)
        except CaptureError as e:
            audio_form.addRow(QLabel(str(e)))
        if self.device_combo.findData(settings.input_device) < 0:
            self.device_combo.addItem(f"{settings.input_device}  (not connected)", settings.input_device)
        self.device_combo.setCurrentIndex(self.device_combo.findData(settings.input_device))
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
        self.support_label.setStyleSheet("QLabel#supportLabel { background: #fff6e0; border: 1px solid #f0c96a;"
                                         " border-radius: 6px; padding: 6px; color: #5c4200; font-weight: normal; }")
        self.support_label.setVisible(bool(support.message))
        ptt_layout.addWidget(self.support_label)
        ptt_form = QFormLayout()
        ptt_layout.addLayout(ptt_form)
        self.hotkey_enabled = QCheckBox("Hold a key anywhere to dictate into the focused application")
        self.hotkey_enabled.setChecked(settings.hotkey_enabled)
        self.hotkey_enabled.toggled.connect(self._validate)
        ptt_form.addRow(self.hotkey_enabled)
        self.hotkey_edit = QLineEdit(settings.hotkey)
        self.hotkey_edit.setPlaceholderText("e.g. ctrl+alt+space, F9, super+h")
        self.hotkey_edit.textChanged.connect(self._validate)
        ptt_form.addRow("Hotkey:", self.hotkey_edit)
        self.injection_combo = QComboBox()
        for key, label in INJECTION_LABELS.items():
            self.injection_combo.addItem(label, key)
        self.injection_combo.setCurrentIndex(self.injection_combo.findData(settings.injection))
        ptt_form.addRow("On release:", self.injection_combo)
        self.paste_keys_edit = QLineEdit(settings.paste_keys)
        self.paste_keys_edit.setToolTip("Keys that paste in your applications (terminals often use ctrl+shift+v)")
        ptt_form.addRow("Paste keys:", self.paste_keys_edit)
        self.hotkey_error = QLabel()
        self.hotkey_error.setStyleSheet("color: #c92a2a;")
        ptt_form.addRow(self.hotkey_error)
        for w in (self.hotkey_enabled, self.hotkey_edit, self.paste_keys_edit):
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
        try:
            parse_hotkey(self.hotkey_edit.text())
            message = ""
        except ValueError as e:
            message = str(e)
        self.hotkey_error.setText(message)
        self.hotkey_error.setVisible(bool(message))
        ok = not message or not self.hotkey_enabled.isChecked()
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(ok)
        return ok

    def set_model_path(self, path: str) -> None:
        self.model_edit.setText(path)

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
                       paste_keys=self.paste_keys_edit.text().strip() or "ctrl+v",
                       close_to_tray=self.close_to_tray.isChecked())
