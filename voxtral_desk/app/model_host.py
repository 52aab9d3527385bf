"""The speech model's life in the window: which model to load, loading it in the background, the damage
check after a load, repair, the model manager dialog, and letting go of a model that was removed.

ModelHost owns the widgets that show the model's state (the banner with the model prompt and model errors,
the model's name and the loading indicator in the status bar); the window places them and passes on what
the host asks for (status bar messages, the dictation tab's idle text, Settings)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QProgressBar

from .settings import Settings
from .theme import STATUS_BAR_LABEL
from .widgets import Banner, ElidedLabel
from .workers import EngineHost, ModelCheckThread, ModelLoadThread

NO_MODEL_TEXT = ("<b>No speech model yet.</b> Voxtral Desk transcribes on your own computer with Mistral's "
                 "Voxtral Mini 4B Realtime. Open the model manager to download it, or to import or convert a copy "
                 "you already have.")


class ModelHost(QObject):
    engine_ready = Signal(object)  # EngineHost
    changed = Signal()  # a load began or ended, or the model went: the app's state may differ
    idle_text = Signal(str)  # what the dictation tab says while idle: "Ready", "No model", "Loading model…"
    message = Signal(str, int)  # for the status bar: text, milliseconds (0: until replaced)
    settings_requested = Signal()  # a banner button asks for Settings

    def __init__(self, settings: Settings, save_settings: Callable[[], None], work_running: Callable[[], bool],
                 model_store=None, parent=None):
        """work_running(): a dictation or a file job uses the engine, which must not be pulled from under it.
        parent: the window, which the model manager dialog belongs to."""
        super().__init__(parent)
        self.settings = settings
        self.save_settings = save_settings
        self.work_running = work_running
        self._model_store = model_store
        self.engine: EngineHost | None = None
        self.loader: ModelLoadThread | None = None
        self.load_error = ""
        self.model_check: ModelCheckThread | None = None  # the background check of the loaded model's files
        self.model_dialog = None
        self._reload_pending = False
        self._damaged = ""  # the damaged model the banner offers to repair
        self._shut_down = False

        self.banner = Banner()  # the model prompt / model errors
        self.banner.action.connect(self._banner_action)
        self.load_bar = QProgressBar()
        self.load_bar.setRange(0, 0)  # loading reports stages, not fractions: a busy indicator
        self.load_bar.setMaximumWidth(140)
        self.load_bar.setMaximumHeight(14)
        self.load_bar.hide()
        self.model_label = ElidedLabel()
        self.model_label.setStyleSheet(STATUS_BAR_LABEL)

    # -- which model ----------------------------------------------------------------------------------
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

    def use_model(self, path: str) -> None:
        self.settings.model_path = str(path)
        self.save_settings()
        self.load_model()

    # -- loading --------------------------------------------------------------------------------------
    def load_model(self, first_run: bool = False) -> None:
        """first_run: at start-up, where having no model at all opens the model manager by itself."""
        if self.loader is not None and self.loader.isRunning():
            return  # (a loader that has returned may still have its `finished` on the way: that one is done)
        if self.work_running():
            self._reload_pending = True  # never pull the engine from under running work
            self.message.emit("The model will be reloaded when the current work is finished.", 6000)
            return
        path = self.resolve_model_path()
        if not path:
            self.engine = None
            self.load_error = ""
            self.banner.show_message(NO_MODEL_TEXT, "info", [("models", "Open model manager…")], closable=False)
            self._show_status("No model", "No model")
            self.changed.emit()
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
        self._show_status(f"Loading {Path(path).name}…", "Loading model…")
        self.changed.emit()
        loader.start()

    def reload_if_pending(self) -> None:
        """The app went idle: a reload that had to wait for running work happens now."""
        if self._reload_pending and not self.work_running():
            self._reload_pending = False
            QTimer.singleShot(0, self.load_model)

    def model_needed(self) -> None:
        """Start was pressed (or a file added) with no model loaded."""
        if self.loader is not None:
            self.message.emit("The model is still loading; try again in a moment.", 6000)
        else:
            self.open_model_manager()

    def _show_status(self, label: str, idle_text: str) -> None:
        self.model_label.setText(label)
        self.idle_text.emit(idle_text)

    def _on_load_progress(self, text: str) -> None:
        self.message.emit(text, 0)

    def _on_loaded(self, engine: EngineHost) -> None:
        self.engine = engine
        self._show_status(f"Model: {engine.description}", "Ready")
        self.message.emit("Model ready.", 4000)
        self.banner.hide()
        self.engine_ready.emit(engine)
        self._check_model_files(engine.model_path)

    def _on_load_failed(self, message: str) -> None:
        self.load_error = message
        self._show_status("Model not loaded", "No model")
        self.message.emit("", 0)  # the loading stage no longer holds
        self.banner.show_message(message, "error", [("models", "Open model manager…"), ("settings", "Settings…")])

    def _on_loader_finished(self, done: ModelLoadThread) -> None:
        if self.loader is not done:
            return  # a newer load runs
        self.loader = None
        self.load_bar.hide()
        self.changed.emit()

    # -- damage ---------------------------------------------------------------------------------------
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
        if in_use and not self.work_running():
            self.engine = None  # its weights came from the damaged file
        self._show_damage(managed)

    def _show_damage(self, model) -> None:
        self.load_error = model.damage_report
        self._show_status("Model damaged", "No model")
        actions = [("repair", "Repair…")] if model.repairable else []
        self.banner.show_message(model.damage_report, "error", actions + [("models", "Open model manager…")])
        self._damaged = model.name
        self.changed.emit()

    def _banner_action(self, key: str) -> None:
        if key == "repair":
            self.open_model_manager()
            self.model_dialog.select(self._damaged)
            self.model_dialog.start_repair(self._damaged)
        elif key == "models":
            self.open_model_manager()
        elif key == "settings":
            self.settings_requested.emit()

    # -- the model manager ----------------------------------------------------------------------------
    def open_model_manager(self) -> None:
        from .model_dialog import ModelManagerDialog

        if self._shut_down:
            return
        if self.model_dialog is None:
            self.model_dialog = ModelManagerDialog(self.model_store(), self.parent())
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
            if self.work_running():
                self._reload_pending = True
            else:
                self.engine = None
                self.load_model()

    def shutdown(self) -> None:
        """The app quits: a model load is waited for, a running check of the model's files is cancelled."""
        self._shut_down = True
        if self.loader is not None:
            self.loader.wait(120000)
        if self.model_check is not None and self.model_check.isRunning():
            self.model_check.control.cancel()
            self.model_check.wait(10000)
