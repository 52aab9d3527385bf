"""The main window: dictation, file queue and history tabs; settings; and the wiring between the model host
(model_host.py: the model's prompt, loading and damage), the tray, the global hotkey and the dictation widget."""
from __future__ import annotations

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from .. import __version__
from ..paths import data_dir
from .audio_capture import SoundDeviceCapture, list_input_devices, refresh_devices
from .dictation import DictationWidget
from .file_queue import FileQueue
from .files import FileQueueWidget
from .history_panel import HistoryPanel, transcript_of
from .hotkey import HotkeyManager, parse_hotkey
from .inject import TextInjector
from .model_host import ModelHost
from .platform_support import PlatformSupport, platform_support
from .resources import icon
from .settings import Settings, SettingsStore
from .settings_dialog import SettingsDialog
from .theme import APP_STYLE, STATUS_BAR_LABEL
from .tray import Tray
from .widgets import Notices, Toast
from .workers import EngineHost

HISTORY_RETRY_MS = 2000  # how often writes the history database refused are tried again


def default_device_lister(refresh: bool):
    if refresh:
        refresh_devices()
    return list_input_devices()


class MainWindow(QMainWindow):
    app_state_changed = Signal(str)  # idle, recording, busy
    closed = Signal()  # the window really closed (quit), not just hidden to the tray

    def __init__(self, settings_store: SettingsStore, settings: Settings, history=None, capture_factory=None,
                 device_lister=None, model_store=None, support: PlatformSupport | None = None,
                 use_tray: bool = True, parent=None):
        super().__init__(parent)
        self.settings_store = settings_store
        self.settings = settings
        self.history = history
        self.capture_factory = capture_factory or SoundDeviceCapture
        self.device_lister = device_lister or default_device_lister
        self.support = support or platform_support()
        self._ptt_active = False
        self._quitting = False
        self._shut_down = False
        self._tray_hint_shown = False
        self._startup_notes: list[str] = []
        self.model_host = ModelHost(settings, self.save_settings,
                                    lambda: self.dictation.active or self.files.thread is not None, model_store, self)

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

    @property
    def engine(self) -> EngineHost | None:
        """The loaded model's engine, for the tabs; None while there is none."""
        return self.model_host.engine

    # -- layout -------------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 10, 10, 0)
        layout.setSpacing(8)
        layout.addWidget(self.model_host.banner)
        self.notices = Notices()  # one banner per topic: start-up, hotkey, history, ...
        self.notices.action.connect(lambda _topic, key: self.open_settings() if key == "settings" else None)
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
        self.tabs.currentChanged.connect(
            lambda i: self.history_panel.reload() if self.tabs.widget(i) is self.history_panel else None)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.toast = Toast(central)

        for w in (self.dictation, self.files, self.history_panel):
            w.message.connect(self.show_feedback)
        self.dictation.state_changed.connect(self._on_dictation_state)
        self.dictation.finished.connect(self._on_dictation_finished)
        self.dictation.model_needed.connect(self.model_host.model_needed)
        self.dictation.settings_changed.connect(self.save_settings)
        self.files.busy_changed.connect(lambda _b: self._update_state())
        self.files.model_needed.connect(self.model_host.model_needed)
        self.files.settings_changed.connect(self.save_settings)
        self.files.job_finished.connect(lambda _j: self.history_panel.reload())
        self.history_panel.settings_changed.connect(self.save_settings)
        host = self.model_host
        host.engine_ready.connect(lambda _engine: self.files.engine_changed())
        host.changed.connect(self._update_state)
        host.idle_text.connect(self.dictation.set_idle_text)
        host.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        host.settings_requested.connect(self.open_settings)

        status = self.statusBar()
        status.addPermanentWidget(host.load_bar)
        self.hotkey_label = QLabel()
        self.hotkey_label.setStyleSheet(STATUS_BAR_LABEL)
        status.addPermanentWidget(self.hotkey_label)
        status.addPermanentWidget(host.model_label, 1)
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
        self._action(model_menu, "Manage models…", self.model_host.open_model_manager)
        self._action(model_menu, "Reload model", self.model_host.load_model)
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
        self.model_host.load_model(first_run=True)

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
        dialog.manage_models_requested.connect(self.model_host.open_model_manager)
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
            self.model_host.load_model()

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
        if self.model_host.loader is not None:
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
        if state == "idle":
            self.model_host.reload_if_pending()
        self.app_state_changed.emit(state)

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
                self.tray.notify("Voxtral Desk is still running",
                                 "Use the tray icon to dictate, show the window or quit.")
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
        self.model_host.shutdown()
        if self.tray is not None:
            self.tray.hide()
