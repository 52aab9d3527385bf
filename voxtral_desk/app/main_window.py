"""The main window: dictation, file queue and history tabs; the model prompt and loading; settings; and the
wiring between the tray, the global hotkey and the dictation widget."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar, QTabWidget, QVBoxLayout,
                               QWidget)

from .. import __version__
from .audio_capture import SoundDeviceCapture, list_input_devices, refresh_devices
from .dictation import DictationWidget
from .files import FileQueueWidget
from .history_panel import HistoryPanel
from .hotkey import HotkeyManager, PlatformSupport, TextInjector, parse_hotkey, platform_support
from .resources import icon
from .settings import Settings, SettingsStore
from .settings_dialog import SettingsDialog
from .tray import Tray
from .widgets import APP_STYLE, Banner
from .workers import EngineHost, ModelLoadThread

log = logging.getLogger(__name__)

NO_MODEL_TEXT = ("<b>No speech model yet.</b> Voxtral Desk transcribes on your own computer with Mistral's "
                 "Voxtral Mini 4B Realtime. Open the model manager to download it, or to import or convert a copy "
                 "you already have.")


def default_device_lister(refresh: bool):
    if refresh:
        refresh_devices()
    return list_input_devices()


class MainWindow(QMainWindow):
    app_state_changed = Signal(str)  # idle, recording, busy
    closed = Signal()  # the window really closed (quit), not just hidden to the tray
    engine_ready = Signal(object)  # EngineHost

    def __init__(self, settings_store: SettingsStore, settings: Settings, history=None, capture_factory=None,
                 device_lister=None, model_store=None, support: PlatformSupport | None = None,
                 use_tray: bool = True, parent=None):
        super().__init__(parent)
        self.settings_store = settings_store
        self.settings = settings
        self.history = history
        self.capture_factory = capture_factory or SoundDeviceCapture
        self.device_lister = device_lister or default_device_lister
        self._model_store = model_store
        self.support = support or platform_support()
        self.engine: EngineHost | None = None
        self.loader: ModelLoadThread | None = None
        self.load_error = ""
        self._reload_pending = False
        self._ptt_active = False
        self._quitting = False
        self._shut_down = False
        self._tray_hint_shown = False
        self.model_dialog = None

        self.setWindowTitle("Voxtral Desk")
        self.setWindowIcon(icon("voxtral-desk"))
        self.resize(920, 640)
        self.setAcceptDrops(True)
        self.setStyleSheet(APP_STYLE)
        self._build()
        self.tray = Tray(self) if use_tray else None
        if self.tray is not None:
            self.tray.show_requested.connect(self.show_window)
            self.tray.toggle_requested.connect(self.dictation.toggle)
            self.tray.quit_requested.connect(self.quit)
            self.tray.show()
        self.hotkeys = HotkeyManager(self)
        self.hotkeys.pressed.connect(self._ptt_pressed)
        self.hotkeys.released.connect(self._ptt_released)
        self.hotkeys.error.connect(lambda m: self.notice.show_message(f"Push-to-talk: {m}", "warning"))
        self.injector = TextInjector(self.support, self)
        self.injector.finished.connect(lambda m: self.statusBar().showMessage(m, 6000))
        self._update_state()

    # -- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 10, 10, 0)
        layout.setSpacing(8)
        self.banner = Banner()  # the model prompt / model errors
        self.banner.action.connect(self._banner_action)
        layout.addWidget(self.banner)
        self.notice = Banner()  # other notices: recovered history, settings reset, hotkey problems
        layout.addWidget(self.notice)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.dictation = DictationWidget(self.settings, lambda: self.engine, self.capture_factory, self.device_lister,
                                         self.history)
        self.files = FileQueueWidget(self.settings, lambda: self.engine, self.history)
        self.history_panel = HistoryPanel(self.history)
        self.tabs.addTab(self.dictation, "Dictation")
        self.tabs.addTab(self.files, "Files")
        self.tabs.addTab(self.history_panel, "History")
        self.tabs.currentChanged.connect(lambda i: self.history_panel.reload() if self.tabs.widget(i) is self.history_panel else None)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        for w in (self.dictation, self.files, self.history_panel):
            w.message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        self.dictation.state_changed.connect(self._on_dictation_state)
        self.dictation.finished.connect(self._on_dictation_finished)
        self.dictation.model_needed.connect(self._model_needed)
        self.dictation.settings_changed.connect(self.save_settings)
        self.files.busy_changed.connect(lambda _b: self._update_state())
        self.files.model_needed.connect(self._model_needed)
        self.files.settings_changed.connect(self.save_settings)
        self.files.job_finished.connect(lambda _j: self.history_panel.reload())

        status = self.statusBar()
        self.load_bar = QProgressBar()
        self.load_bar.setRange(0, 0)  # loading reports stages, not fractions: a busy indicator
        self.load_bar.setMaximumWidth(140)
        self.load_bar.setMaximumHeight(14)
        self.load_bar.hide()
        status.addPermanentWidget(self.load_bar)
        self.hotkey_label = QLabel()
        self.hotkey_label.setStyleSheet("color: #4b5563; padding: 0 6px;")
        status.addPermanentWidget(self.hotkey_label)
        self.model_label = QLabel()
        self.model_label.setStyleSheet("color: #4b5563; padding: 0 6px;")
        status.addPermanentWidget(self.model_label)
        self._build_menus()

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self._action(file_menu, "Add audio files…", self._add_files, QKeySequence.Open)
        self._action(file_menu, "Save dictation…", self.dictation.save_text_dialog, QKeySequence.Save)
        file_menu.addSeparator()
        self._action(file_menu, "Settings…", self.open_settings, QKeySequence.Preferences)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.quit, QKeySequence.Quit)
        dictation_menu = menu.addMenu("&Dictation")
        self.toggle_action = self._action(dictation_menu, "Start / stop dictation", self.dictation.toggle, "Ctrl+R")
        self._action(dictation_menu, "Copy text", self.dictation.copy_text, "Ctrl+Shift+C")
        model_menu = menu.addMenu("&Model")
        self._action(model_menu, "Manage models…", self.open_model_manager)
        self._action(model_menu, "Reload model", self.load_model)
        help_menu = menu.addMenu("&Help")
        self._action(help_menu, "About Voxtral Desk", self._about)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _=False: slot())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    # -- startup --------------------------------------------------------------------------------------
    def start(self, startup_messages: list[str] | None = None) -> None:
        """Called once after show(): report start-up problems, grab the hotkey, load the model."""
        notes = list(startup_messages or [])
        if self.history is not None and self.history.recovered:
            n = self.history.recovered
            notes.append(f"{n} dictation{'s were' if n > 1 else ' was'} still recording when Voxtral Desk last "
                         "stopped; the text is kept in History.")
        if notes:
            self.notice.show_message(" ".join(notes), "warning" if startup_messages else "info")
        self.apply_hotkey()
        self.load_model()

    def apply_hotkey(self) -> None:
        self.hotkeys.stop()
        if not self.settings.hotkey_enabled:
            self.hotkey_label.setText("Push-to-talk off")
            self.hotkey_label.setToolTip("Turn it on in Settings.")
            return
        problem = self.hotkeys.start(self.settings.hotkey, self.support)
        if problem and self.support.hotkey:  # platform limits are explained in Settings, not at every start
            self.notice.show_message(problem, "warning")
        if problem:
            self.hotkey_label.setText("Push-to-talk unavailable")
            self.hotkey_label.setToolTip(problem)
        else:
            keys = "+".join(part.capitalize() if len(part) > 1 else part.upper()
                            for part in str(parse_hotkey(self.settings.hotkey)).split("+"))
            self.hotkey_label.setText(f"Hold {keys} to dictate")
            self.hotkey_label.setToolTip("Works in any application; the text is "
                                         + {"paste": "pasted", "type": "typed",
                                            "clipboard": "copied to the clipboard"}[self.settings.injection] + ".")

    def model_store(self):
        if self._model_store is None:
            try:
                from ..models.store import ModelStore
            except ImportError:
                return None
            self._model_store = ModelStore(self.settings.models_dir or None)
        return self._model_store

    def resolve_model_path(self) -> str:
        if self.settings.model_path:
            return self.settings.model_path
        store = self.model_store()
        default = store.default() if store is not None else None
        return str(default.path) if default is not None else ""

    # -- model loading ------------------------------------------------------------------------------
    def load_model(self) -> None:
        if self.loader is not None:
            return
        if self.dictation.active or self.files.thread is not None:
            self._reload_pending = True  # never pull the engine from under running work
            self.statusBar().showMessage("The model will be reloaded when the current work is finished.", 6000)
            return
        path = self.resolve_model_path()
        if not path:
            self.engine = None
            self.load_error = ""
            self.banner.show_message(NO_MODEL_TEXT, "info", [("models", "Open model manager…")], closable=False)
            self.model_label.setText("No model")
            self.dictation.set_idle_text("No model")
            self._update_state()
            return
        self.banner.hide()
        self.engine = None
        self.load_error = ""
        loader = ModelLoadThread(path, self.settings.backend, self.settings.delay_ms)
        loader.progress.connect(self._on_load_progress)
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_load_failed)
        loader.finished.connect(self._on_loader_finished)
        self.loader = loader
        self.load_bar.show()
        self.model_label.setText(f"Loading {Path(path).name}…")
        self.dictation.set_idle_text("Loading model…")
        self._update_state()
        loader.start()

    def _on_load_progress(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def _on_loaded(self, engine: EngineHost) -> None:
        self.engine = engine
        self.model_label.setText(f"Model: {engine.description}")
        self.dictation.set_idle_text("Ready")
        self.statusBar().showMessage("Model ready.", 4000)
        self.banner.hide()
        self.engine_ready.emit(engine)
        self.files.engine_changed()

    def _on_load_failed(self, message: str) -> None:
        self.load_error = message
        self.model_label.setText("Model not loaded")
        self.dictation.set_idle_text("No model")
        self.statusBar().clearMessage()
        self.banner.show_message(message, "error", [("models", "Open model manager…"), ("settings", "Settings…")])

    def _on_loader_finished(self) -> None:
        self.loader = None
        self.load_bar.hide()
        self._update_state()

    def _model_needed(self) -> None:
        if self.loader is not None:
            self.statusBar().showMessage("The model is still loading; try again in a moment.", 6000)
        else:
            self.open_model_manager()

    def _banner_action(self, key: str) -> None:
        if key == "models":
            self.open_model_manager()
        elif key == "settings":
            self.open_settings()

    def open_model_manager(self) -> None:
        try:
            from .model_dialog import ModelManagerDialog
        except ImportError:
            ModelManagerDialog = None
        store = self.model_store()
        if ModelManagerDialog is None or store is None:
            # Without the manager the user can still point at a model they have.
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (GGUF shards or original checkpoint)")
            if folder:
                self.use_model(folder)
            return
        if self.model_dialog is None:
            self.model_dialog = ModelManagerDialog(store, self)
            self.model_dialog.model_chosen.connect(self.use_model)
            self.model_dialog.folder_changed.connect(self._models_folder_changed)
        self.model_dialog.show()
        self.model_dialog.raise_()
        self.model_dialog.activateWindow()

    def _models_folder_changed(self, folder: str) -> None:
        self.settings.models_dir = folder
        self._model_store = None  # re-created on the new folder when next needed
        self.save_settings()

    def use_model(self, path: str) -> None:
        self.settings.model_path = str(path)
        self.save_settings()
        self.load_model()

    # -- settings -----------------------------------------------------------------------------------
    def save_settings(self) -> None:
        try:
            self.settings_store.save(self.settings)
        except OSError as e:
            self.notice.show_message(f"Settings could not be saved: {e}", "error")

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.settings, self.support, self.device_lister, self)
        dialog.manage_models_requested.connect(self.open_model_manager)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()
        return dialog

    def apply_settings(self, new: Settings) -> None:
        old = Settings(**vars(self.settings))
        for key, value in vars(new).items():
            setattr(self.settings, key, value)  # the widgets share this object
        self.save_settings()
        self.dictation.delay_spin.setValue(self.settings.delay_ms)
        if old.input_device != new.input_device:
            self.dictation.reload_devices(refresh=False)
        if (old.hotkey, old.hotkey_enabled) != (new.hotkey, new.hotkey_enabled):
            self.apply_hotkey()
        if (old.model_path, old.backend) != (new.model_path, new.backend) or (self.engine is None and new.model_path):
            self.load_model()

    # -- push-to-talk ----------------------------------------------------------------------------------
    def _ptt_pressed(self) -> None:
        if self.dictation.state == "idle" and self.dictation.start():
            self._ptt_active = True

    def _ptt_released(self) -> None:
        if self._ptt_active:
            self.dictation.stop()

    def _on_dictation_finished(self, result) -> None:
        self.history_panel.reload()
        if self._ptt_active:
            self._ptt_active = False
            self.injector.inject(result.text, self.settings.injection, self.settings.paste_keys)

    def _on_dictation_state(self, state: str) -> None:
        if state == "idle":
            self._ptt_active = False  # also after a dictation that could not start
        self._update_state()

    # -- state ----------------------------------------------------------------------------------------
    def app_state(self) -> tuple[str, str]:
        d = self.dictation.state
        if d in ("starting", "recording"):
            return "recording", ""
        if d == "finishing":
            return "busy", "finishing dictation"
        if self.loader is not None:
            return "busy", "loading the model"
        if self.files.busy:
            left = sum(1 for j in self.files.jobs if j.status in ("queued", "running"))
            return "busy", f"transcribing {left} file{'s' if left != 1 else ''}"
        return "idle", ""

    def _update_state(self) -> None:
        state, detail = self.app_state()
        if self.tray is not None:
            self.tray.set_state(state, detail)
            self.tray.set_dictating(self.dictation.state in ("starting", "recording"),
                                    enabled=self.dictation.state != "finishing")
        if state == "idle" and self._reload_pending and self.files.thread is None and not self.dictation.active:
            self._reload_pending = False
            QTimer.singleShot(0, self.load_model)
        self.app_state_changed.emit(state)

    # -- drops, window ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.tabs.setCurrentWidget(self.files)
            self.files.add_files(paths)

    def _add_files(self) -> None:
        self.tabs.setCurrentWidget(self.files)
        self.files.add_files_dialog()

    def show_window(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowMinimized)
        self.raise_()
        self.activateWindow()

    def _about(self) -> None:
        QMessageBox.about(self, "About Voxtral Desk",
                          f"<b>Voxtral Desk {__version__}</b><p>Local, streaming speech-to-text with Mistral's "
                          "Voxtral Mini 4B Realtime. Nothing you say leaves this computer.</p>")

    def closeEvent(self, event) -> None:
        if not self._quitting and self.tray is not None and self.tray.available() and self.settings.close_to_tray:
            event.ignore()
            self.hide()
            if not self._tray_hint_shown:
                self._tray_hint_shown = True
                self.tray.notify("Voxtral Desk is still running", "Use the tray icon to dictate, show the window or quit.")
            return
        self.shutdown()
        event.accept()
        self.closed.emit()

    def quit(self) -> None:
        self._quitting = True
        self.close()

    def shutdown(self) -> None:
        """Finish what the user started before the process ends: a dictation is stopped and flushed
        (its text saved to history), file jobs are cancelled, a model load is waited for."""
        if self._shut_down:
            return
        self._quitting = self._shut_down = True
        self.hotkeys.stop()
        self.files.cancel_all()
        self.dictation.wait(60000)
        if self.files.thread is not None:
            self.files.thread.wait(60000)
        if self.loader is not None:
            self.loader.wait(120000)
        if self.tray is not None:
            self.tray.hide()
