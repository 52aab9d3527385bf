"""The model manager dialog: the catalog and the installed models, with download (progress, speed,
time left, pause, cancel), verify, repair, import (a GGUF, a shard set, or an original folder, converted
in the background) and remove. All work runs in a QThread; the dialog only shows it.

model_chosen(path) is emitted when the user picks a model to use, after a download or import finishes
(the new model becomes the one in use), and after a repair of the model in use. model_removed(path) is
emitted after Remove deleted an installed model, so the app can let go of it when it was the one in use.
folder_changed(path) is emitted when the user moves the models folder, so the app can remember it."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMenu,
                               QMessageBox, QProgressBar, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout)

from ..config import ModelFileError
from ..models.errors import Cancelled, ModelManagerError
from ..models.jobs import Control, Progress, human_bytes
from ..models.store import InstalledModel, ModelStore
from .theme import note_style

_orphans: set[QThread] = set()  # jobs cancelled by closing the dialog, kept alive until they stop

# What the dialog's buttons do about an error, by its `remedy` (the store's messages name no buttons).
REMEDY_ADVICE = {
    "import": "Import… installs a model file you already have.",
    "folder": "Change folder… picks another models folder.",
    "remove": "Remove… deletes it.",
    "rename": "Remove… deletes the installed one; then import again.",
    "repair": "Repair fetches it again.",
}


class _Job(QThread):
    """Runs fn(progress, control) off the UI thread and reports the outcome by signal."""

    progressed = Signal(object)  # Progress
    succeeded = Signal(object)
    failed = Signal(str, str)  # the message, and the store's remedy ("" when none)
    cancelled = Signal()

    def __init__(self, kind: str, name: str, fn):
        super().__init__()
        self.kind, self.name, self.fn = kind, name, fn
        self.control = Control()

    def run(self) -> None:
        try:
            result = self.fn(self.progressed.emit, self.control)
        except Cancelled:
            self.cancelled.emit()
        except (ModelManagerError, ModelFileError) as e:
            self.failed.emit(str(e), getattr(e, "remedy", ""))
        except Exception as e:  # noqa: BLE001 - a bug must still end the job visibly, not freeze the dialog
            self.failed.emit(f"unexpected error: {e.__class__.__name__}: {e}", "")
        else:
            self.succeeded.emit(result)


class ModelManagerDialog(QDialog):
    model_chosen = Signal(str)  # the path of the model to use (a folder load_model() opens)
    model_removed = Signal(str)  # the folder of a model that Remove deleted
    folder_changed = Signal(str)  # the new models folder

    COLUMNS = ("Model", "Size", "Status")

    def __init__(self, store: ModelStore, parent=None):
        super().__init__(parent)
        self.store = store
        self.job: _Job | None = None
        self.setWindowTitle("Models")
        self.resize(760, 440)

        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.folder_button = QPushButton("Change folder…")
        self.folder_button.clicked.connect(self._pick_folder)
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.folder_button)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(self.COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda *_: self.use_selected())

        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.LinksAccessibleByMouse)
        self.details.setOpenExternalLinks(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.error = QLabel()
        self.error.setObjectName("model-error")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error.setStyleSheet(note_style("model-error", "error"))
        self.error.hide()

        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_job)
        self.verify_button = QPushButton("Verify")
        self.verify_button.clicked.connect(self.verify_selected)
        self.import_button = QPushButton("Import…")
        menu = QMenu(self.import_button)
        menu.addAction("GGUF file or shard…", self._pick_file)
        menu.addAction("Folder (GGUF shards or original checkpoint)…", self._pick_import_folder)
        self.import_button.setMenu(menu)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.clicked.connect(self.remove_selected)
        self.use_button = QPushButton("Use this model")
        self.use_button.setDefault(True)
        self.use_button.clicked.connect(self.use_selected)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for b in (self.download_button, self.pause_button, self.cancel_button, self.verify_button,
                  self.import_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.details)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addLayout(buttons)
        self.refresh()

    # --- the list ------------------------------------------------------------------------------

    def refresh(self, select: str | None = None) -> None:
        select = select or self.selected_name()
        self.folder_label.setText(f"Models folder: {self.store.root}")
        installed = {m.name: m for m in self.store.installed()}
        default = self.store.default()
        self.tree.clear()
        for entry in self.store.catalog.models:
            m = installed.pop(entry.name, None)
            if m:
                status = self._installed_status(m, default)
                size = human_bytes(m.size)
            else:
                part = self.store.partial_bytes(entry.name)
                status = f"Partly downloaded ({human_bytes(part)}): Download resumes" if part else "Not installed"
                size = "~" + human_bytes(entry.approx_size) if entry.approx_size else ""
            self._add_row(entry.name, entry.title or entry.name, size, status)
        for m in installed.values():
            self._add_row(m.name, m.name, human_bytes(m.size), self._installed_status(m, default))
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.UserRole) == select:
                self.tree.setCurrentItem(item)
        self._update_buttons()

    @staticmethod
    def _installed_status(m: InstalledModel, default: InstalledModel | None) -> str:
        if not m.verified:
            return f"Damaged: {m.problem}"
        status = "Installed" if m.source != "import" else "Imported"
        return status + (" (in use)" if default and default.name == m.name else "")

    def _add_row(self, name: str, title: str, size: str, status: str) -> None:
        item = QTreeWidgetItem([f"{title}\n{name}" if title != name else name, size, status])
        item.setData(0, Qt.UserRole, name)
        item.setToolTip(2, status)
        self.tree.addTopLevelItem(item)

    def select(self, name: str) -> None:
        self.refresh(select=name)

    def selected_name(self) -> str | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.UserRole) if items else None

    def _update_buttons(self) -> None:
        name = self.selected_name()
        entry = self.store.catalog.get(name) if name else None
        model = self.store.find(name) if name else None
        busy = self.job is not None
        transfer = busy and self.job.kind in ("download", "import", "repair")
        damaged = bool(model and not model.verified)
        partial = bool(entry) and not model and bool(self.store.partial_bytes(name))
        self.download_button.setText("Repair" if damaged else "Resume" if partial else "Download")
        self.download_button.setEnabled(not busy and (model.repairable if damaged else bool(entry) and not model))
        self.pause_button.setEnabled(transfer)
        self.pause_button.setText("Resume" if transfer and self.job.control.paused else "Pause")
        self.cancel_button.setEnabled(busy)
        self.verify_button.setEnabled(bool(model) and not busy)
        self.import_button.setEnabled(not busy)
        self.folder_button.setEnabled(not busy)
        self.remove_button.setEnabled(not busy and bool(model or (name and self.store.partial_bytes(name))))
        self.use_button.setEnabled(bool(model and model.verified))
        if damaged:
            how = (f"Repair {model.repair_does}" if model.repairable
                   else f"Repair cannot fix it: {model.repair[:1].lower()}{model.repair[1:]}")
            self.details.setText(f"Damaged: {model.problem}. {how}.")
        elif entry:
            text = entry.description
            if entry.homepage:
                text += f' <a href="{entry.homepage}">{entry.homepage}</a>'
            self.details.setText(text)
        elif model:
            self.details.setText(f"Imported from {model.origin}" if model.source == "import" else str(model.path))
        else:
            self.details.setText("")

    # --- jobs ----------------------------------------------------------------------------------

    def _start(self, kind: str, name: str, fn, start_text: str) -> None:
        if self.job is not None:
            return
        self.error.hide()
        self.status.setText(start_text)
        self.progress.setRange(0, 0)
        self.progress.show()
        job = _Job(kind, name, fn)
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_finished)
        self.job = job
        self._update_buttons()
        job.start()

    def _on_progress(self, p: Progress) -> None:
        if p.fraction is None:
            self.progress.setRange(0, 0)  # busy: the size is not known yet
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * p.fraction))
        text = p.describe()
        self.status.setText(text[:1].upper() + text[1:])
        if self.job is not None:
            self.pause_button.setText("Resume" if self.job.control.paused else "Pause")

    def _on_succeeded(self, result) -> None:
        kind = self.job.kind if self.job else ""  # `finished` (which clears the job) is queued after this
        self.progress.hide()
        if kind in ("download", "import") and isinstance(result, InstalledModel):
            self.store.set_default(result.name)
            self.status.setText(f"{result.name} is installed ({human_bytes(result.size)}, every file checked) "
                                "and is now the model in use.")
            self.refresh(select=result.name)
            self.model_chosen.emit(str(result.path))
        elif kind == "repair" and isinstance(result, InstalledModel):
            self.status.setText(f"{result.name} is repaired ({human_bytes(result.size)}, every file checked).")
            self.refresh(select=result.name)
            in_use = self.store.default()
            if in_use is not None and in_use.name == result.name:  # the app may hold the damaged copy: reload
                self.model_chosen.emit(str(result.path))
        elif kind == "verify":
            bad = [r for r in result if not r.ok]
            if bad:
                self._show_error("\n".join(r.describe() for r in bad))
                self.status.setText("")
            else:
                self.status.setText("Verified: every file matches its SHA-256 and the model opens.")
            self.refresh()

    def _on_failed(self, message: str, remedy: str) -> None:
        self.progress.hide()
        self.status.setText("")
        self._show_error(message + (f"\n{REMEDY_ADVICE[remedy]}" if remedy in REMEDY_ADVICE else ""))
        self.refresh()

    def _on_cancelled(self) -> None:
        self.progress.hide()
        kind = self.job.kind if self.job else ""
        self.status.setText("Cancelled. The part already downloaded is kept: Download resumes from there."
                            if kind == "download" else "Cancelled: the model stays as it was." if kind == "repair"
                            else "Cancelled.")
        self.refresh()

    def _on_finished(self) -> None:
        self.job = None
        self._update_buttons()

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    # --- actions -------------------------------------------------------------------------------

    def start_download(self, name: str) -> None:
        self._start("download", name, lambda p, c: self.store.download(name, p, c), f"Starting {name}…")

    def start_repair(self, name: str) -> None:
        self._start("repair", name, lambda p, c: self.store.repair(name, p, c), f"Repairing {name}…")

    def download_selected(self) -> None:
        """Download, Resume or Repair, as the button says."""
        if name := self.selected_name():
            model = self.store.find(name)
            if model is not None and not model.verified:
                self.start_repair(name)
            else:
                self.start_download(name)

    def import_path(self, path: str | Path, name: str | None = None) -> None:
        path = Path(path)
        self._start("import", path.name, lambda p, c: self.store.import_path(path, name, p, c), f"Importing {path}…")

    def verify_selected(self) -> None:
        if name := self.selected_name():
            self._start("verify", name, lambda p, c: self.store.verify(name, p, c), f"Verifying {name}…")

    def toggle_pause(self) -> None:
        if self.job is None:
            return
        if self.job.control.paused:
            self.job.control.resume()
        else:
            self.job.control.pause()
            self.status.setText("Paused.")
        self.pause_button.setText("Resume" if self.job.control.paused else "Pause")

    def cancel_job(self) -> None:
        if self.job is not None:
            self.job.control.cancel()
            self.status.setText("Cancelling…")

    def use_selected(self) -> None:
        name = self.selected_name()
        model = self.store.find(name) if name else None
        if model is None or not model.verified:
            return
        self.store.set_default(model.name)
        self.model_chosen.emit(str(model.path))
        self.accept()

    def remove_selected(self) -> None:
        name = self.selected_name()
        if not name or self.job is not None:
            return
        model = self.store.find(name)
        what = f"{name} ({human_bytes(model.size)}) from {model.path}" if model else f"the partial download of {name}"
        answer = QMessageBox.question(self, "Remove model", f"Delete {what}?\n\nThis cannot be undone.",
                                      QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer != QMessageBox.Yes:
            return
        try:
            freed = self.store.remove(name)
        except ModelManagerError as e:
            self._show_error(str(e))
            return
        self.error.hide()
        self.status.setText(f"Removed {name} ({human_bytes(freed)} freed).")
        self.refresh()
        if model is not None:
            self.model_removed.emit(str(model.path))

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model file", str(Path.home()),
                                              "GGUF model (*.gguf);;Byte-split part (shard-aa);;All files (*)")
        if path:
            self.import_path(path)

    def _pick_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a model folder", str(Path.home()))
        if path:
            self.import_path(path)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Models folder", str(self.store.root))
        if path:
            self.set_folder(path)

    def set_folder(self, path: str | Path) -> None:
        if self.job is not None:
            return
        self.store = ModelStore(Path(path), self.store.catalog, policy=self.store.policy, endpoint=self.store.endpoint)
        self.error.hide()
        self.status.setText("")
        self.refresh()
        self.folder_changed.emit(str(self.store.root))

    # --- closing -------------------------------------------------------------------------------

    def done(self, result: int) -> None:
        """Closing while work runs cancels it; the thread is kept alive until it has stopped."""
        if self.job is not None:
            job = self.job
            job.control.cancel()
            _orphans.add(job)
            job.finished.connect(lambda: _orphans.discard(job))
            self.job = None
        super().done(result)
