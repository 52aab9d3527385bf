"""The store without a network: import of every layout, verify, remove, the default model, and the
models folder."""
import os
import shutil

import pytest

from models_helpers import MODEL

from voxtral_desk.config import ModelFileError
from voxtral_desk.gguf_io import GGUFModelFile
from voxtral_desk.loader import load_model
from voxtral_desk.models import install as install_mod
from voxtral_desk.models import store as store_mod
from voxtral_desk.models.catalog import RECORD
from voxtral_desk.models.errors import Cancelled, DiskFull, DownloadError, StoreError
from voxtral_desk.models.jobs import Control
from voxtral_desk.models.layout import read_json
from voxtral_desk.models.store import InstalledModel, ModelStore, resolve_model
from voxtral_desk.paths import default_models_dir


def test_default_models_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("VOXTRAL_DESK_DATA_DIR", raising=False)
    monkeypatch.delenv("VOXTRAL_DESK_MODELS_DIR", raising=False)
    assert default_models_dir().parts[-2:] == ("voxtral-desk", "models")
    monkeypatch.setenv("VOXTRAL_DESK_DATA_DIR", str(tmp_path / "data"))
    assert default_models_dir() == tmp_path / "data" / "models"
    monkeypatch.setenv("VOXTRAL_DESK_MODELS_DIR", str(tmp_path / "m"))
    assert default_models_dir() == tmp_path / "m"
    assert ModelStore().root == tmp_path / "m"


def test_empty_store(tmp_path):
    store = ModelStore(tmp_path / "nothing-here")
    assert store.installed() == [] and store.default() is None and store.find("x") is None
    assert not (tmp_path / "nothing-here").exists()  # looking creates nothing


def test_import_single_gguf(store, tiny):
    seen = []
    m = store.import_path(tiny.single / "tiny.gguf", progress=seen.append)
    assert isinstance(m, InstalledModel) and m.name == "tiny" and m.verified and m.source == "import"
    assert m.origin == str((tiny.single / "tiny.gguf").resolve())
    assert isinstance(load_model(m.path).weights, GGUFModelFile)
    assert "copying" in [p.phase for p in seen]
    assert (tiny.single / "tiny.gguf").exists()  # the source is left as it was
    assert store.default().name == "tiny"


@pytest.mark.parametrize("pick", ["one shard", "folder"])
def test_import_shard_set(store, tiny, pick):
    src = sorted(tiny.shards.glob("*.gguf"))[1] if pick == "one shard" else tiny.shards
    m = store.import_path(src, name="tiny-shards")
    names = sorted(p.name for p in m.path.iterdir())
    assert [n for n in names if n.endswith(".gguf")] == sorted(p.name for p in tiny.shards.glob("*.gguf"))
    assert len(load_model(m.path).weights.paths) > 1


def test_import_original_folder_converts_it(store, tiny):
    seen = []
    m = store.import_path(tiny.original, progress=seen.append)
    assert m.name == "tiny-original" and m.kind == "gguf"
    assert "converting" in [p.phase for p in seen]
    assert not (m.path / "consolidated.safetensors").exists()
    assert load_model(m.path).config.params == tiny.params


def test_import_byte_split_parts_uses_known_settings(store, tiny, tmp_path):
    """TrevorJS-style parts without params.json: joined, and the catalog's settings are used because
    every tensor shape matches them."""
    src = tmp_path / "dl"
    src.mkdir()
    for name, data in tiny.parts.items():
        (src / name).write_bytes(data)
    (src / "tekken.json").write_bytes(tiny.tekken)
    m = store.import_path(src / "shard-aa", name="from-parts")
    assert (m.path / "from-parts.gguf").read_bytes() == tiny.plain_gguf
    assert load_model(m.path).config.params == tiny.params


def test_plain_gguf_whose_shapes_match_no_known_settings(tmp_path, tiny):
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.gguf").write_bytes(tiny.plain_gguf)
    (src / "tekken.json").write_bytes(tiny.tekken)
    real = ModelStore(tmp_path / "models")  # the packaged catalog: the real model's settings only
    with pytest.raises(ModelFileError, match="no model settings and there is no params.json.*does not match"):
        real.import_path(src / "m.gguf")
    assert real.installed() == [] and not (tmp_path / "models" / "m").exists()
    assert not any((tmp_path / "models" / ".partial").iterdir())


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("not a model", "is not a model"),
    ("bad gguf", "broken.gguf: not a (valid )?GGUF file"),
    ("no tokenizer", "tekken.json .* must lie beside"),
    ("bad name", "not a usable model name"),
])
def test_import_refuses_bad_input_clearly(store, tiny, tmp_path, case, message):
    src = tmp_path / "src"
    src.mkdir()
    name = None
    if case == "missing":
        path = tmp_path / "nope.gguf"
    elif case == "not a model":
        path = src / "notes.txt"
        path.write_text("hello")
    elif case == "bad gguf":
        path = src / "broken.gguf"
        path.write_bytes(b"GGUF" + b"\0" * 100)
        shutil.copyfile(tiny.single / "tekken.json", src / "tekken.json")
    elif case == "no tokenizer":
        path = src / "tiny.gguf"
        shutil.copyfile(tiny.single / "tiny.gguf", path)
    else:
        path, name = tiny.single / "tiny.gguf", "../escape"
    with pytest.raises((StoreError, ModelFileError), match=message):
        store.import_path(path, name)
    assert store.installed() == []


def test_import_name_clash_keeps_the_installed_model(store, tiny):
    first = store.import_path(tiny.single / "tiny.gguf")
    with pytest.raises(StoreError, match="installed already: import it under another name, or remove that one") as e:
        store.import_path(tiny.single / "tiny.gguf")
    assert (e.value.remedy, e.value.model) == ("rename", "tiny")  # the CLI says --name, the dialog Remove
    assert store.find("tiny").verified and load_model(first.path)


def test_resolve_model_takes_the_path_given_else_the_default_else_says_how_to_get_one(store, tiny):
    assert resolve_model("/somewhere/model.gguf", store.root) == "/somewhere/model.gguf"
    with pytest.raises(ModelFileError, match=r"^no model installed: run `voxtral-desk models download .*--model PATH$"):
        resolve_model(None, store.root)
    m = store.import_path(tiny.single / "tiny.gguf")
    assert resolve_model(None, store.root) == str(m.path)
    with pytest.raises(ModelFileError, match="no model installed"):
        resolve_model(None)  # the default models folder (conftest's, empty) is another one


def test_import_refused_without_space(store, tiny, monkeypatch):
    monkeypatch.setattr(install_mod, "free_bytes", lambda path: 1000)
    with pytest.raises(DiskFull, match="not enough free space"):
        store.import_path(tiny.single / "tiny.gguf")
    assert store.installed() == []


def test_cancelled_import_leaves_nothing(store, tiny):
    control = Control()
    control.cancel()
    with pytest.raises(Cancelled):
        store.import_path(tiny.original, control=control)
    assert store.installed() == [] and not any((store.root / ".partial").iterdir())


def test_verify_finds_damage_and_download_repairs_it(store, server, tiny):
    store.download(MODEL)
    assert [r.ok for r in store.verify()] == [True]
    gguf = store.root / MODEL / "tiny-q4.gguf"
    data = bytearray(gguf.read_bytes())
    data[len(data) // 2] ^= 0xFF
    gguf.write_bytes(bytes(data))
    [result] = store.verify(MODEL)
    assert not result.ok
    assert "tiny-q4.gguf does not match its SHA-256" in result.describe()
    assert "models " not in result.describe() and "--" not in result.describe()  # no command line inside the app
    m = store.find(MODEL)
    assert not m.verified and m.repairable and m.repair == "Repair downloads it again"
    store.download(MODEL, force=True)
    assert [r.ok for r in store.verify(MODEL)] == [True]


def test_a_missing_file_marks_the_model_damaged(store, tiny):
    m = store.import_path(tiny.single / "tiny.gguf")
    (m.path / "tekken.json").unlink()
    m = store.find("tiny")
    assert not m.verified and "tekken.json is missing" in m.problem
    assert store.default() is None  # a damaged model is never the one to use
    [result] = store.verify("tiny")
    assert not result.ok


def test_verify_unknown_name(store):
    with pytest.raises(StoreError, match="no model named 'x' is installed"):
        store.verify("x")


def test_default_and_remove(store, tiny):
    a = store.import_path(tiny.single / "tiny.gguf", name="a")
    b = store.import_path(tiny.single / "tiny.gguf", name="b")
    assert store.default().name == "a"
    store.set_default("b")
    assert store.default().name == "b"
    with pytest.raises(StoreError, match="no model named 'c' is installed"):
        store.set_default("c")
    record_size = (b.path / RECORD).stat().st_size
    assert store.remove("b") == b.size + record_size
    assert not b.path.exists() and store.default().name == "a"
    assert a.path.exists()
    with pytest.raises(StoreError, match="no model named 'b' is installed or partly downloaded"):
        store.remove("b")


def test_remove_refuses_a_folder_it_did_not_install(store, tiny):
    foreign = store.root / "mine"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not installed by Voxtral Desk"):
        store.remove("mine")
    assert (foreign / "notes.txt").exists()
    assert store.installed() == []  # and it is not listed as a model


def test_remove_a_partial_download(store, server):
    server.fault("shard-ac", *[("status", 500)] * 3)
    with pytest.raises(DownloadError, match="HTTP 500"):
        store.download(MODEL)
    assert store.partial_bytes(MODEL) > 0
    store.remove(MODEL)
    assert store.partial_bytes(MODEL) is None


# --- which model a path is, and what to do about a damaged one --------------------------------------

def test_model_for_path(store, tiny, tmp_path):
    m = store.import_path(tiny.single / "tiny.gguf")
    assert store.model_for_path(m.path).name == "tiny"
    assert store.model_for_path(m.path / "tiny.gguf").name == "tiny"  # a file inside the model's folder
    assert store.model_for_path(store.root / "tiny" / ".." / "tiny").name == "tiny"
    assert store.model_for_path(tiny.single / "tiny.gguf") is None  # the original it came from: not managed
    assert store.model_for_path(store.root) is None
    assert store.model_for_path(tmp_path / "nowhere") is None
    (m.path / "tekken.json").unlink()
    damaged = store.model_for_path(m.path)
    assert damaged.name == "tiny" and not damaged.verified  # still the store's, damaged


def spy_on_hashing(monkeypatch) -> list[str]:
    """The names of the files the store hashes from now on."""
    hashed, real_hash = [], store_mod.sha256_file

    def spy(path, *args, **kwargs):
        hashed.append(path.name)
        return real_hash(path, *args, **kwargs)
    monkeypatch.setattr(store_mod, "sha256_file", spy)
    return hashed


def _damage_same_size(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_changed_size_names_the_file_what_is_wrong_and_the_fix(store, server, tiny):
    m = store.download(MODEL)
    gguf = m.path / "tiny-q4.gguf"
    size = gguf.stat().st_size
    with open(gguf, "ab") as f:
        f.write(b"x")
    m = store.find(MODEL)
    assert not m.verified
    assert m.problem == (f"tiny-q4.gguf has {size + 1} bytes instead of the {size} it had when installed (changed or "
                         "damaged on disk)")
    assert m.repair == "Repair downloads it again" and m.repairable
    assert m.damage_report == f"The model {MODEL} is damaged: {m.problem}. Repair downloads it again."


def test_repair_hints_for_imported_models(store, tiny, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(tiny.single, src)
    m = store.import_path(src / "tiny.gguf")
    (m.path / "tekken.json").unlink()
    m = store.find("tiny")
    assert m.problem == "tekken.json is missing"
    assert m.repairable and m.repair == f"Import it again from {src / 'tiny.gguf'}"
    shutil.rmtree(src)
    m = store.find("tiny")
    assert not m.repairable
    gone = src / "tiny.gguf"
    assert m.repair == f"Remove it and import the model again ({gone}, which it was imported from, is gone)"
    with pytest.raises(StoreError, match="tiny cannot be fetched again here. Remove it and import the model again"):
        store.repair("tiny")


def test_background_check_hashes_only_changed_files_and_records_damage(store, server, tiny, monkeypatch):
    m = store.download(MODEL)
    hashed = spy_on_hashing(monkeypatch)
    assert [r.ok for r in store.verify(MODEL, changed_only=True)] == [True]
    assert hashed == []  # every file is as it was when installed (and hashed)
    gguf = m.path / "tiny-q4.gguf"
    _damage_same_size(gguf)  # same size: the cheap check on load cannot see it
    assert store.find(MODEL).verified
    [result] = store.verify(MODEL, changed_only=True)
    assert hashed == ["tiny-q4.gguf"] and not result.ok
    assert result.problems == ["tiny-q4.gguf does not match its SHA-256 (damaged on disk)"]
    # Recorded: from now on the model shows as damaged, without hashing anything.
    hashed.clear()
    m = store.find(MODEL)
    assert not m.verified and m.problem == "tiny-q4.gguf does not match its SHA-256 (damaged on disk)"
    assert m.repairable and m.repair == "Repair downloads it again"
    assert [x.name for x in store.installed() if not x.verified] == [MODEL]
    assert store.default() is None and hashed == []
    record = read_json(m.path / RECORD)
    assert record["damaged"] == {"file": "tiny-q4.gguf", "reason": "does not match its SHA-256 (damaged on disk)"}
    assert not list(m.path.glob("*.tmp"))  # written through a temporary file
    store.repair(MODEL)
    m = store.find(MODEL)
    assert m.verified and m.problem == "" and store.default().name == MODEL
    hashed.clear()
    assert [r.ok for r in store.verify(MODEL, changed_only=True)] == [True] and hashed == []


def test_a_touched_but_intact_file_is_hashed_once(store, tiny, monkeypatch):
    m = store.import_path(tiny.single / "tiny.gguf")
    tekken = m.path / "tekken.json"
    os.utime(tekken, ns=(tekken.stat().st_atime_ns, tekken.stat().st_mtime_ns + 10**9))
    hashed = spy_on_hashing(monkeypatch)
    assert [r.ok for r in store.verify("tiny", changed_only=True)] == [True] and hashed == ["tekken.json"]
    assert [r.ok for r in store.verify("tiny", changed_only=True)] == [True] and hashed == ["tekken.json"]


def test_a_full_check_clears_damage_once_the_file_is_intact_again(store, tiny):
    m = store.import_path(tiny.single / "tiny.gguf")
    gguf = m.path / "tiny.gguf"
    good = gguf.read_bytes()
    _damage_same_size(gguf)
    assert not store.verify("tiny", changed_only=True)[0].ok and not store.find("tiny").verified
    gguf.write_bytes(good)  # put back by hand
    assert store.verify("tiny")[0].ok
    assert store.find("tiny").verified


def test_repair_imports_again_from_where_it_came_from(store, tiny):
    m = store.import_path(tiny.single / "tiny.gguf")
    _damage_same_size(m.path / "tiny.gguf")
    store.verify("tiny", changed_only=True)
    assert store.find("tiny").repair == f"Import it again from {(tiny.single / 'tiny.gguf').resolve()}"
    seen = []
    repaired = store.repair("tiny", progress=seen.append)
    assert repaired.verified and "copying" in [p.phase for p in seen]
    assert (repaired.path / "tiny.gguf").read_bytes() == (tiny.single / "tiny.gguf").read_bytes()
    assert store.verify("tiny")[0].ok
