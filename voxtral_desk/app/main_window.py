"""The main window: dictation, file queue and history tabs; the model prompt and loading; settings; and the
wiring between the tray, the global hotkey and the dictation widget."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar, QTabWidget, QVBoxLayout,
                               QWidget)

from .. import __version__
from .audio_capture import SoundDeviceCapture, list_input_devices, refresh_devices
from .dictation import DictationWidget
from .file_queue import FileQueue
from .files import FileQueueWidget
from .history_panel import HistoryPanel, transcript_of
from .hotkey import HotkeyManager, PlatformSupport, TextInjector, parse_hotkey, platform_support
from .resources import icon
from .settings import Settings, SettingsStore, data_dir
from .settings_dialog import SettingsDialog
from .tray import Tray
from .widgets import APP_STYLE, Banner, ElidedLabel, Notices, Toast
from .workers import EngineHost, ModelCheckThread, ModelLoadThread

log = logging.getLogger(__name__)
HISTORY_RETRY_MS = 2000  # how often writes the history database refused are tried again

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
        self._startup_notes: list[str] = []
        self._damaged = ""  # the damaged model the banner offers to repair
        self.model_check = None  # the background check of the loaded model's files
        self.model_dialog = None

        self.setWindowTitle("Voxtral Desk")
        self.setWindowIcon(icon("voxtral-desk"))
        self.resize(920, 640)
        self.restore_geometry()
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
        self.hotkeys.error.connect(lambda m: self.notices.show_message("hotkey", f"Push-to-talk: {m}", "warning",
                                                                       [("settings", "Settings…")]))
        self.injector = TextInjector(self.support, self)
        self.injector.finished.connect(self._on_injected)
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
        self.notices = Notices()  # one banner per topic: start-up, hotkey, history, ...
        self.notices.action.connect(self._notice_action)
        layout.addWidget(self.notices)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.dictation = DictationWidget(self.settings, lambda: self.engine, self.capture_factory, self.device_lister,
                                         self.history)
        self.files = FileQueueWidget(self.settings, lambda: self.engine, self.history, self._load_file_queue())
        self.history_panel = HistoryPanel(self.history, self.settings)
        self.tabs.addTab(self.dictation, "Dictation")
        self.tabs.addTab(self.files, "Files")
        self.tabs.addTab(self.history_panel, "History")
        self.tabs.currentChanged.connect(lambda i: self.history_panel.reload() if self.tabs.widget(i) is self.history_panel else None)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.toast = Toast(central)

        for w in (self.dictation, self.files, self.history_panel):
            w.message.connect(self.show_feedback)
        self.dictation.state_changed.connect(self._on_dictation_state)
        self.dictation.finished.connect(self._on_dictation_finished)
        self.dictation.model_needed.connect(self._model_needed)
        self.dictation.settings_changed.connect(self.save_settings)
        self.files.busy_changed.connect(lambda _b: self._update_state())
        self.files.model_needed.connect(self._model_needed)
        self.files.settings_changed.connect(self.save_settings)
        self.files.job_finished.connect(lambda _j: self.history_panel.reload())
        self.history_panel.settings_changed.connect(self.save_settings)

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
        self.model_label = ElidedLabel()
        self.model_label.setStyleSheet("color: #4b5563; padding: 0 6px;")
        status.addPermanentWidget(self.model_label, 1)
        self._build_menus()
        self.history_timer = QTimer(self)
        self.history_timer.timeout.connect(self._check_history)
        self.history_timer.start(HISTORY_RETRY_MS)

    def _load_file_queue(self) -> FileQueue:
        """The file queue of the last session, its finished files' transcripts read back from History."""
        if self.history is None:
            return FileQueue()
        queue = FileQueue(data_dir() / "file_queue.json")
        for message in queue.load(lambda entry_id: transcript_of(self.history.get(entry_id))):
            self._startup_notes.append(message)
        return queue

    def show_feedback(self, text: str) -> None:
        """A short confirmation: in the status bar and, visibly, as a toast over the window."""
        self.statusBar().showMessage(text, 6000)
        self.toast.show_text(text)

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
        notes = list(startup_messages or []) + self._startup_notes
        if self.history is not None and self.history.recovered:
            n = self.history.recovered
            notes.append(f"{n} dictation{'s were' if n > 1 else ' was'} still recording when Voxtral Desk last "
                         "stopped; the text is kept in History.")
        if notes:
            self.notices.show_message("startup", " ".join(notes),
                                      "warning" if startup_messages or self._startup_notes else "info")
        self.apply_hotkey()
        self.load_model(first_run=True)

    def apply_hotkey(self) -> None:
        self.hotkeys.stop()
        if not self.settings.hotkey_enabled:
            self.hotkey_label.setText("Push-to-talk off")
            self.hotkey_label.setToolTip("Turn it on in Settings.")
            return
        problem = self.hotkeys.start(self.settings.hotkey, self.support)
        if problem and self.support.hotkey:  # platform limits are explained in Settings, not at every start
            self.notices.show_message("hotkey", problem, "warning", [("settings", "Settings…")])
        else:
            self.notices.clear("hotkey")  # a problem fixed in Settings takes its notice with it
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
            from ..models.store import ModelStore

            self._model_store = ModelStore(self.settings.models_dir or None)
        return self._model_store

    def resolve_model_path(self) -> str:
        """The model to load: the one chosen in Settings, else the model manager's default, else "".
        A chosen model that was a managed one and is gone (removed) counts as not chosen."""
        chosen = self.settings.model_path
        if chosen and not Path(chosen).expanduser().exists() and self._inside_models_folder(chosen):
            self.settings.model_path = chosen = ""
            self.save_settings()
        if chosen:
            return chosen
        store = self.model_store()
        # The default, or else a damaged one: its damage is then shown with the way to repair it.
        model = store.default() or next(iter(store.installed()), None)
        return str(model.path) if model is not None else ""

    def _inside_models_folder(self, path: str) -> bool:
        root = self.model_store().root.expanduser().resolve()
        return Path(path).expanduser().resolve().is_relative_to(root)

    # -- model loading ------------------------------------------------------------------------------
    def load_model(self, first_run: bool = False) -> None:
        """first_run: at start-up, where having no model at all opens the model manager by itself."""
        if self.loader is not None and self.loader.isRunning():
            return  # (a loader that has returned may still have its `finished` on the way: that one is done)
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
            if first_run:
                QTimer.singleShot(0, self.open_model_manager)  # once the window is on screen
            return
        managed = self.model_store().model_for_path(path)
        if managed is not None and not managed.verified:  # sizes and recorded damage: cheap, before loading
            self._show_damage(managed)
            return
        self.banner.hide()
        self.engine = None
        self.load_error = ""
        loader = ModelLoadThread(path, self.settings.backend, self.settings.delay_ms)
        loader.progress.connect(self._on_load_progress)
        loader.loaded.connect(self._on_loaded)
        loader.failed.connect(self._on_load_failed)
        loader.finished.connect(lambda done=loader: self._on_loader_finished(done))
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
        self._check_model_files(engine.model_path)

    def _check_model_files(self, path: str) -> None:
        """Hash, in the background, the files of a managed model that changed since their last good check
        (same-size damage loads without an error and transcribes nothing)."""
        managed = self.model_store().model_for_path(path)
        if managed is None or self._shut_down:
            return
        check = ModelCheckThread(self.model_store(), managed.name, self)
        check.damaged.connect(lambda _report, p=path: self._on_model_damaged(p))
        self.model_check = check
        check.start()

    def _on_model_damaged(self, path: str) -> None:
        managed = self.model_store().model_for_path(path)
        if managed is None or managed.verified:
            return
        in_use = self.engine is not None and self.engine.model_path == path
        if in_use and not self.dictation.active and self.files.thread is None:
            self.engine = None  # its weights came from the damaged file
        self._show_damage(managed)

    def _show_damage(self, model) -> None:
        self.load_error = model.damage_report
        self.model_label.setText("Model damaged")
        self.dictation.set_idle_text("No model")
        actions = [("repair", "Repair…")] if model.repairable else []
        self.banner.show_message(model.damage_report, "error", actions + [("models", "Open model manager…")])
        self._damaged = model.name
        self._update_state()

    def _on_load_failed(self, message: str) -> None:
        self.load_error = message
        self.model_label.setText("Model not loaded")
        self.dictation.set_idle_text("No model")
        self.statusBar().clearMessage()
        self.banner.show_message(message, "error", [("models", "Open model manager…"), ("settings", "Settings…")])

    def _on_loader_finished(self, done: ModelLoadThread) -> None:
        if self.loader is not done:
            return  # a newer load runs
        self.loader = None
        self.load_bar.hide()
        self._update_state()

    def _model_needed(self) -> None:
        if self.loader is not None:
            self.statusBar().showMessage("The model is still loading; try again in a moment.", 6000)
        else:
            self.open_model_manager()

    def _notice_action(self, _topic: str, key: str) -> None:
        self._banner_action(key)

    def _check_history(self) -> None:
        """Write what the history database refused earlier, and say so while it keeps refusing."""
        if self.history is None or not self.history.pending:
            return
        if self.history.retry():
            self.notices.clear("history")
            self.statusBar().showMessage("History saved.", 4000)
        else:
            self.notices.show_message(
                "history", f"Your history cannot be saved right now ({self.history.error}). Your transcripts are "
                "kept in memory and saved as soon as the database can be written again (another program may be "
                "using it, or the disk may be full).", "warning", closable=False)

    def _banner_action(self, key: str) -> None:
        if key == "repair":
            self.open_model_manager()
            self.model_dialog.select(self._damaged)
            self.model_dialog.start_repair(self._damaged)
            return
        if key == "models":
            self.open_model_manager()
        elif key == "settings":
            self.open_settings()

    def open_model_manager(self) -> None:
        from .model_dialog import ModelManagerDialog

        if self._shut_down:
            return
        if self.model_dialog is None:
            self.model_dialog = ModelManagerDialog(self.model_store(), self)
            self.model_dialog.model_chosen.connect(self.use_model)
            self.model_dialog.folder_changed.connect(self._models_folder_changed)
            self.model_dialog.model_removed.connect(self._model_removed)
        self.model_dialog.show()
        self.model_dialog.raise_()
        self.model_dialog.activateWindow()

    def _models_folder_changed(self, folder: str) -> None:
        self.settings.models_dir = folder
        self._model_store = None  # re-created on the new folder when next needed
        self.save_settings()

    def _model_removed(self, folder: str) -> None:
        """A model was deleted in the model manager: if it was the one in use, unload it (the window must
        not say "Ready" over a model that is gone) and fall back to the default or the first-run state."""
        gone = Path(folder).expanduser().resolve()
        in_use = self.engine.model_path if self.engine is not None else self.resolve_model_path()
        chosen = self.settings.model_path
        if chosen and Path(chosen).expanduser().resolve().is_relative_to(gone):
            self.settings.model_path = ""
            self.save_settings()
        if in_use and Path(in_use).expanduser().resolve().is_relative_to(gone):
            if self.dictation.active or self.files.thread is not None:
                self._reload_pending = True
            else:
                self.engine = None
                self.load_model()

    def use_model(self, path: str) -> None:
        self.settings.model_path = str(path)
        self.save_settings()
        self.load_model()

    # -- settings -----------------------------------------------------------------------------------
    def save_settings(self) -> None:
        try:
            self.settings_store.save(self.settings)
        except OSError as e:
            self.notices.show_message("settings", f"Settings could not be saved: {e.strerror or e}", "error")
        else:
            self.notices.clear("settings")

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

    def _on_injected(self, message: str) -> None:
        self.statusBar().showMessage(message, 6000)
        if self.injector.failed and self.tray is not None and not self.isActiveWindow():
            self.tray.notify("The text was not inserted", message)  # the window may be hidden: say it where it shows

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
            left = self.files.queue.unfinished()
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

    def open_files(self, paths: list[str]) -> None:
        """Files given on the command line (also to a second launch of the app): into the file queue."""
        self.show_window()
        if paths:
            self.tabs.setCurrentWidget(self.files)
            self.files.add_files(paths)

    def show_window(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowMinimized)
        self.raise_()
        self.activateWindow()

    def restore_geometry(self) -> None:
        """The size and place the window had when it was last closed (on a screen that still exists)."""
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.window_geometry.encode("ascii")))

    def _remember_geometry(self) -> None:
        geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        if geometry != self.settings.window_geometry:
            self.settings.window_geometry = geometry
            self.save_settings()

    def _about(self) -> None:
        QMessageBox.about(self, "About Voxtral Desk",
                          f"<b>Voxtral Desk {__version__}</b><p>Local, streaming speech-to-text with Mistral's "
                          "Voxtral Mini 4B Realtime. Nothing you say leaves this computer.</p>")

    def closeEvent(self, event) -> None:
        self._remember_geometry()
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
        self.files.stop_for_quit()
        self.dictation.wait(60000)
        if self.files.thread is not None:
            self.files.thread.wait(60000)
        if self.loader is not None:
            self.loader.wait(120000)
        if self.model_check is not None and self.model_check.isRunning():
            self.model_check.control.cancel()
            self.model_check.wait(10000)
        if self.tray is not None:
            self.tray.hide()
