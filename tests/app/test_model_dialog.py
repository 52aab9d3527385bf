"""The model manager dialog (offscreen): listing, download with model_chosen, cancel, pause, import,
verify, remove, errors. Work runs in a QThread; these tests wait for its signals."""
import re
import shutil

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from models_helpers import FAST, MODEL, catalog_for, closed_port, wait_for
from models_helpers import isolated_environment, server, store, tiny  # noqa: F401  (fixtures)

from voxtral_desk.app import model_dialog
from voxtral_desk.app.model_dialog import ModelManagerDialog
from voxtral_desk.loader import load_model
from voxtral_desk.models.store import ModelStore


def rows(dlg):
    items = [dlg.tree.topLevelItem(i) for i in range(dlg.tree.topLevelItemCount())]
    return {item.data(0, Qt.UserRole): item.text(2) for item in items}


@pytest.fixture
def dialog(qtbot, store):
    dlg = ModelManagerDialog(store)
    qtbot.addWidget(dlg)
    yield dlg
    if dlg.job is not None:  # never leave a running thread behind a test
        dlg.job.control.cancel()
        dlg.job.wait(10_000)


def wait_idle(qtbot, dlg):
    qtbot.waitUntil(lambda: dlg.job is None, timeout=15_000)


def test_lists_catalog_and_installed_models(qtbot, store, tiny):
    store.import_path(tiny.single / "tiny.gguf", name="mine")
    dlg = ModelManagerDialog(store)
    qtbot.addWidget(dlg)
    assert rows(dlg) == {MODEL: "Not installed", "tiny-converted": "Not installed", "mine": "Imported (in use)"}
    assert str(store.root) in dlg.folder_label.text()
    dlg.select(MODEL)
    assert dlg.download_button.isEnabled() and not dlg.use_button.isEnabled()
    assert "Tiny test model" in dlg.tree.currentItem().text(0)


def test_download_completes_and_emits_model_chosen(qtbot, dialog, store, tiny):
    dialog.select(MODEL)
    with qtbot.waitSignal(dialog.model_chosen, timeout=15_000) as chosen:
        qtbot.mouseClick(dialog.download_button, Qt.LeftButton)
        assert dialog.job is not None  # running in the background, not on the UI thread
    assert chosen.args == [str(store.root / MODEL)]
    load_model(chosen.args[0])
    wait_idle(qtbot, dialog)
    assert rows(dialog)[MODEL] == "Installed (in use)"
    assert "is installed" in dialog.status.text() and dialog.error.isHidden()
    assert not dialog.download_button.isEnabled() and dialog.use_button.isEnabled()


def test_cancel_keeps_the_partial_download(qtbot, dialog, store, server):
    server.fault("shard-aa", ("slow", 0.02))
    dialog.select(MODEL)
    dialog.download_selected()
    wait_for(lambda: server.sent["shard-aa"] >= 8192)
    assert dialog.cancel_button.isEnabled()
    qtbot.mouseClick(dialog.cancel_button, Qt.LeftButton)
    wait_idle(qtbot, dialog)
    assert dialog.status.text().startswith("Cancelled")
    assert store.find(MODEL) is None
    assert rows(dialog)[MODEL].startswith("Partly downloaded")
    assert dialog.download_button.isEnabled() and dialog.download_button.text() == "Resume"
    assert not dialog.cancel_button.isEnabled()


def test_pause_and_resume(qtbot, dialog, store, server):
    server.fault("shard-aa", ("slow", 0.02))
    dialog.select(MODEL)
    dialog.download_selected()
    wait_for(lambda: server.sent["shard-aa"] >= 8192)
    qtbot.mouseClick(dialog.pause_button, Qt.LeftButton)
    assert dialog.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: "paused" in dialog.status.text().lower(), timeout=10_000)
    with qtbot.waitSignal(dialog.model_chosen, timeout=15_000):
        qtbot.mouseClick(dialog.pause_button, Qt.LeftButton)
    assert store.find(MODEL).verified


def test_import_a_gguf(qtbot, dialog, store, tiny):
    with qtbot.waitSignal(dialog.model_chosen, timeout=15_000) as chosen:
        dialog.import_path(tiny.single / "tiny.gguf")
    assert chosen.args == [str(store.root / "tiny")]
    wait_idle(qtbot, dialog)
    assert rows(dialog)["tiny"] == "Imported (in use)"


def test_import_an_original_folder_converts_in_the_background(qtbot, dialog, store, tiny):
    with qtbot.waitSignal(dialog.model_chosen, timeout=15_000) as chosen:
        dialog.import_path(tiny.original)
        assert dialog.job is not None and dialog.job.kind == "import"
    assert load_model(chosen.args[0]).config.params == tiny.params


def test_a_bad_import_shows_a_clear_error(qtbot, dialog, store, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    dialog.import_path(bad)
    wait_idle(qtbot, dialog)
    assert not dialog.error.isHidden() and re.search(r"broken.gguf: not a (valid )?GGUF file", dialog.error.text())
    assert store.installed() == []


def test_unreachable_server_shows_what_to_do(qtbot, tmp_path, server, tiny):
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=FAST, endpoint=f"http://127.0.0.1:{closed_port()}")
    dlg = ModelManagerDialog(store)
    qtbot.addWidget(dlg)
    dlg.start_download(MODEL)
    wait_idle(qtbot, dlg)
    assert "cannot reach" in dlg.error.text() and "import" in dlg.error.text()
    assert rows(dlg)[MODEL] == "Not installed"


def test_verify_use_and_remove(qtbot, dialog, store, tiny, monkeypatch):
    store.import_path(tiny.single / "tiny.gguf")
    dialog.refresh(select="tiny")
    qtbot.mouseClick(dialog.verify_button, Qt.LeftButton)
    wait_idle(qtbot, dialog)
    assert dialog.status.text().startswith("Verified")

    with qtbot.waitSignal(dialog.model_chosen) as chosen:
        qtbot.mouseClick(dialog.use_button, Qt.LeftButton)
    assert chosen.args == [str(store.root / "tiny")]

    monkeypatch.setattr(model_dialog.QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    dialog.refresh(select="tiny")
    dialog.remove_selected()
    assert store.find("tiny") is not None  # the user said no
    monkeypatch.setattr(model_dialog.QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    dialog.remove_selected()
    assert store.find("tiny") is None and "tiny" not in rows(dialog)


def test_closing_while_downloading_cancels(qtbot, dialog, store, server):
    server.fault("shard-aa", ("slow", 0.02))
    dialog.start_download(MODEL)
    job = dialog.job
    wait_for(lambda: server.sent["shard-aa"] >= 4096)
    dialog.reject()
    assert job.control.cancelled
    assert job.wait(10_000)
    assert store.find(MODEL) is None


def test_changing_the_folder(qtbot, dialog, store, tiny, tmp_path):
    other = ModelStore(tmp_path / "elsewhere", store.catalog)
    other.import_path(tiny.single / "tiny.gguf")
    with qtbot.waitSignal(dialog.folder_changed) as changed:
        dialog.set_folder(tmp_path / "elsewhere")
    assert changed.args == [str(tmp_path / "elsewhere")]
    assert "tiny" in rows(dialog)


# --- damaged models ---------------------------------------------------------------------------------

def _damage_same_size(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_repair_downloads_a_damaged_catalog_model_again(qtbot, dialog, store, server):
    m = store.download(MODEL)
    _damage_same_size(m.path / "tiny-q4.gguf")
    store.verify(MODEL, changed_only=True)  # what the app runs in the background after a load
    dialog.refresh(select=MODEL)
    assert rows(dialog)[MODEL].startswith("Damaged: tiny-q4.gguf does not match its SHA-256")
    assert dialog.download_button.text() == "Repair" and dialog.download_button.isEnabled()
    assert "Repair downloads it again" in dialog.details.text()
    with qtbot.waitSignal(dialog.model_chosen, timeout=15_000) as chosen:  # it is the model in use: reload it
        qtbot.mouseClick(dialog.download_button, Qt.LeftButton)
    assert chosen.args == [str(m.path)]
    wait_idle(qtbot, dialog)
    assert store.find(MODEL).verified and rows(dialog)[MODEL] == "Installed (in use)"
    assert dialog.status.text().startswith(f"{MODEL} is repaired")


def test_repair_imports_a_damaged_imported_model_again(qtbot, dialog, store, tiny, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(tiny.single, src)
    m = store.import_path(src / "tiny.gguf")
    _damage_same_size(m.path / "tiny.gguf")
    store.verify("tiny", changed_only=True)
    dialog.refresh(select="tiny")
    assert dialog.download_button.text() == "Repair" and dialog.download_button.isEnabled()
    assert f"Repair imports it again from {src / 'tiny.gguf'}" in dialog.details.text()
    qtbot.mouseClick(dialog.download_button, Qt.LeftButton)
    wait_idle(qtbot, dialog)
    assert store.find("tiny").verified and rows(dialog)["tiny"].startswith("Imported")
    assert dialog.error.isHidden()


def test_repair_is_disabled_with_a_hint_when_nothing_can_repair_it(qtbot, dialog, store, tiny, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(tiny.single, src)
    m = store.import_path(src / "tiny.gguf")
    (m.path / "tekken.json").unlink()
    shutil.rmtree(src)
    dialog.refresh(select="tiny")
    assert rows(dialog)["tiny"] == "Damaged: tekken.json is missing"
    assert dialog.download_button.text() == "Repair" and not dialog.download_button.isEnabled()
    assert not dialog.details.isHidden()
    assert dialog.details.text() == (f"Damaged: tekken.json is missing. Repair cannot fix it: remove it and import the "
                                     f"model again ({src / 'tiny.gguf'}, which it was imported from, is gone).")
    assert dialog.remove_button.isEnabled()


def test_remove_emits_model_removed_with_its_folder(qtbot, dialog, store, tiny, monkeypatch):
    m = store.import_path(tiny.single / "tiny.gguf")
    dialog.refresh(select="tiny")
    monkeypatch.setattr(model_dialog.QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    with qtbot.waitSignal(dialog.model_removed, timeout=5_000) as removed:
        dialog.remove_selected()
    assert removed.args == [str(m.path)] and not m.path.exists()


def test_errors_get_the_dialogs_own_advice(qtbot, tmp_path, server, tiny):
    store = ModelStore(tmp_path, catalog_for(server, tiny), policy=FAST, endpoint=f"http://127.0.0.1:{closed_port()}")
    dlg = ModelManagerDialog(store)
    qtbot.addWidget(dlg)
    dlg.start_download(MODEL)
    wait_idle(qtbot, dlg)
    assert "import a model file you already have" in dlg.error.text()
    assert "Import… installs a model file you already have" in dlg.error.text()
    assert "models import" not in dlg.error.text()
