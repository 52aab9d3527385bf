"""Crafted malformed inputs (catalogs, model records, a conversion a killed run left behind), each kept as a
test case: a clear message naming the file and the problem, no traceback, and nothing touched outside the
models folder."""
import json
import os
import pathlib
import re

import pytest

from models_helpers import MODEL, catalog_data

from voxtral_desk.models import store as store_mod
from voxtral_desk.models.catalog import RECORD, parse_catalog
from voxtral_desk.models.cli import main
from voxtral_desk.models.errors import CatalogError


def _one_model(**fields) -> dict:
    model = {"name": "x", "files": [{"name": "a.gguf", "url": "https://h/a.gguf"}]}
    model.update(fields)
    return {"models": [model]}


@pytest.mark.parametrize("data, message", [
    (_one_model(post="join", join={"output": "/tmp/evil.gguf", "parts": ["a.gguf"]}),
     r"model 'x': the join output '/tmp/evil.gguf' must be a plain file name ending in .gguf"),
    (_one_model(post="join", join={"output": "../../evil.gguf", "parts": ["a.gguf"]}),
     r"model 'x': the join output '../../evil.gguf' must be a plain file name ending in .gguf"),
    (_one_model(post="join", join={"output": "sub/evil.gguf", "parts": ["a.gguf"]}),
     r"model 'x': the join output 'sub/evil.gguf' must be a plain file name"),
    (_one_model(post="join", join={"output": "..\\evil.gguf", "parts": ["a.gguf"]}),
     r"model 'x': the join output '..\\\\evil.gguf' must be a plain file name"),
    (_one_model(post="join", join=["a.gguf"]), r"model 'x': 'join' must be an object"),
    (_one_model(post="join", join={"output": "o.gguf", "parts": "a.gguf"}), r"model 'x': 'join' needs an output"),
    (_one_model(files="a.gguf"), r"model 'x': 'files' must be a list of files"),
    (_one_model(files=["a.gguf"]), r"model 'x': 'files' must be a list of files"),
    (_one_model(files=[{"name": "voxtral-model.json", "url": "https://h/r"}]),
     r"model 'x', file 'voxtral-model.json': that name is reserved"),
    (_one_model(files=[{"name": "a.gguf", "url": "file:///etc/passwd"}]),
     r"model 'x', file 'a.gguf': the url must start with https:// or http://"),
    (_one_model(files=[{"name": "a.gguf", "url": 7}]), r"model 'x', file 'a.gguf': the url must start with https://"),
    (_one_model(files=[{"name": "a.gguf", "repo": "r/r", "path": 7}]), r"model 'x', file 'a.gguf': 'path' must be"),
    (_one_model(convert={"shard_size_mb": "big"}), r"model 'x': convert.shard_size_mb must be a whole number"),
    (_one_model(approx_size="big"), r"model 'x': approx_size must be a byte count"),
    (_one_model(params=[1, 2]), r"model 'x': 'params' must be an object"),
    (_one_model(params_from=["x"]), r"model 'x': params_from names no earlier model with params"),
    ({"models": ["x"]}, r"bad model name"),
    ({"models": {"x": {}}}, r"no 'models' list"),
])
def test_malformed_catalog_entries_are_refused(data, message):
    with pytest.raises(CatalogError, match=rf"^model catalog test.json: {message}"):
        parse_catalog(data, "test.json")


@pytest.mark.parametrize("output", ["absolute", "../../outside.gguf"])
def test_a_catalog_writing_outside_the_models_folder_writes_nothing(tmp_path, server, tiny, monkeypatch, capsys,
                                                                    output):
    outside = tmp_path / "outside.gguf"
    data = catalog_data(server, tiny)
    data["models"][0]["join"]["output"] = str(outside) if output == "absolute" else output
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(data))
    monkeypatch.setenv("HF_ENDPOINT", server.base)
    root = tmp_path / "models" / "inner"  # ../../outside.gguf from .partial/NAME/model/ is tmp_path/models/
    code = main(["models", "download", MODEL, "--dir", str(root), "--catalog", str(catalog)])
    _, err = capsys.readouterr()
    assert code == 1 and err.startswith(f"error: model catalog {catalog}: model '{MODEL}': the join output")
    assert "Traceback" not in err
    assert not outside.exists() and not (tmp_path / "models" / "outside.gguf").exists()
    assert not root.exists() and server.requests == []


# --- model records ----------------------------------------------------------------------------------

def _outside_entry(path):
    return {"name": path, "size": 5, "sha256": "0" * 64}


def _rewrite(record: dict, change: str, folder, outside) -> None:
    """Make the record of the model in `folder` bad in the way `change` says; `outside` is a file elsewhere."""
    files = record["files"]
    if change == "relative outside":
        files.append(_outside_entry("../../outside.txt"))
    elif change == "absolute":
        files.append(_outside_entry("/etc/passwd"))
    elif change == "absolute to ours":
        files.append(_outside_entry(str(outside)))
    elif change == "link to outside":
        os.symlink(outside, folder / "linked.txt")
        files.append(_outside_entry("linked.txt"))
    elif change == "nested":
        files.append(_outside_entry("sub/tiny.gguf"))
    elif change == "dot-dot":
        files.append(_outside_entry(".."))
    elif change == "NUL byte":
        files.append(_outside_entry("tiny.gguf\0../../outside.txt"))
    elif change == "entry not an object":
        files.append("tiny.gguf")
    elif change == "size not a number":
        files[0]["size"] = str(files[0]["size"])
    elif change == "no sha256":
        del files[0]["sha256"]
    elif change == "files not a list":
        record["files"] = {"tiny.gguf": 1}
    elif change == "damaged not an object":
        record["damaged"] = "yes"


@pytest.mark.parametrize("change, problem", [
    ("relative outside", r"its record \(voxtral-model.json\) names '../../outside.txt', which is not a file in the "
                         r"model's folder"),
    ("absolute", r"names '/etc/passwd', which is not a file in the model's folder"),
    ("absolute to ours", r"names '/.*/outside.txt', which is not a file in the model's folder"),
    ("nested", r"names 'sub/tiny.gguf', which is not a file in the model's folder"),
    ("dot-dot", r"names '..', which is not a file in the model's folder"),
    ("NUL byte", r"names 'tiny.gguf\\x00../../outside.txt', which is not a file in the model's folder"),
    ("link to outside", r"names 'linked.txt', which is not a file in the model's folder"),
    ("entry not an object", r"its record \(voxtral-model.json\) is damaged: a file in its list has no usable name"),
    ("size not a number", r"its record \(voxtral-model.json\) is damaged"),
    ("no sha256", r"its record \(voxtral-model.json\) is damaged"),
    ("files not a list", r"its record \(voxtral-model.json\) lists no files"),
    ("damaged not an object", r"its record \(voxtral-model.json\) says it is damaged"),
])
def test_a_bad_record_makes_the_model_damaged_without_touching_other_files(store, tiny, tmp_path, monkeypatch, capsys,
                                                                           change, problem):
    m = store.import_path(tiny.single / "tiny.gguf")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    record = json.loads((m.path / RECORD).read_text())
    _rewrite(record, change, m.path, outside)
    (m.path / RECORD).write_text(json.dumps(record))

    touched = []
    real_stat, real_hash = pathlib.Path.stat, store_mod.sha256_file
    monkeypatch.setattr(pathlib.Path, "stat", lambda self, **k: touched.append(str(self)) or real_stat(self, **k))
    monkeypatch.setattr(store_mod, "sha256_file", lambda p, *a, **k: touched.append(str(p)) or real_hash(p, *a, **k))
    found = store.find("tiny")
    assert found is not None and not found.verified
    assert re.search(problem, found.problem), found.problem
    assert found.repairable and found.repair.startswith("Import it again from")
    assert [x.name for x in store.installed()] == ["tiny"] and store.default() is None
    assert store.model_for_path(m.path).name == "tiny"
    (tmp_path / "empty-catalog.json").write_text('{"models": []}')
    code = main(["models", "list", "--dir", str(store.root), "--catalog", str(tmp_path / "empty-catalog.json")])
    out, err = capsys.readouterr()
    assert code == 0 and "  tiny" in out and "damaged: " in out and err == ""
    [result] = store.verify("tiny")
    if change == "damaged not an object":  # every file is intact: a full check clears what the record said
        assert result.ok and store.find("tiny").verified
    else:
        assert not result.ok and re.search(problem, result.describe())
    assert not [t for t in touched if "outside" in t or "passwd" in t or "linked" in t]
    assert outside.read_text() == "keep"
    monkeypatch.undo()
    assert store.repair("tiny").verified  # imported again from where it came from: a clean record


def test_a_record_nested_beyond_reason_is_not_a_model(store, tiny):
    m = store.import_path(tiny.single / "tiny.gguf")
    (m.path / RECORD).write_text("[" * 100_000 + "]" * 100_000)
    assert store.find("tiny") is None and store.installed() == [] and store.model_for_path(m.path) is None
    assert store.model_for_path(str(m.path) + "\0") is None
