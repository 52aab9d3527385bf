"""The loader checks GGUF shards against the manifest.json the converter writes beside them (names and
sizes), so a shard set that mixes two conversions is refused, and a manifest it cannot read is reported."""
from __future__ import annotations

import json
import shutil

import pytest

from voxtral_desk.config import ModelFileError
from voxtral_desk.convert import convert_checkpoint
from voxtral_desk.loader import load_model

MIXED = "this shard set mixes two conversions or was damaged; convert or import it again"


@pytest.fixture(scope="module")
def converted(model_dir, tmp_path_factory):
    """The tiny model as a set of shards and as one file, each with tekken.json and manifest.json."""
    out = tmp_path_factory.mktemp("converted")
    convert_checkpoint(model_dir("tiny", 0), out / "shards", shard_bytes=200 << 10)
    convert_checkpoint(model_dir("tiny", 0), out / "single", shard_bytes=None)
    return out


def copy_of(converted, tmp_path, which: str):
    folder = tmp_path / which
    shutil.copytree(converted / which, folder)
    return folder, sorted(folder.glob("*.gguf")), folder / "manifest.json"


def edit_manifest(manifest, change) -> None:
    doc = json.loads(manifest.read_text())
    change(doc)
    manifest.write_text(json.dumps(doc))


def test_a_matching_manifest_loads(converted, tmp_path):
    folder, shards, _ = copy_of(converted, tmp_path, "shards")
    assert len(load_model(folder).weights.paths) == len(shards) > 2


@pytest.mark.parametrize("which", ["shards", "single"])
def test_a_shard_of_another_size_is_refused(converted, tmp_path, which):
    folder, shards, _ = copy_of(converted, tmp_path, which)
    victim = shards[-1]
    size = victim.stat().st_size
    with open(victim, "ab") as f:
        f.write(b"\0" * 32)  # still a valid GGUF: only the manifest can tell
    with pytest.raises(ModelFileError) as err:
        load_model(folder)
    assert str(err.value) == f"{victim}: {size + 32} bytes, the manifest says {size}: {MIXED}"


def test_a_shard_the_manifest_does_not_list_is_refused(converted, tmp_path):
    folder, shards, manifest = copy_of(converted, tmp_path, "shards")
    edit_manifest(manifest, lambda doc: doc["files"].pop(1))
    with pytest.raises(ModelFileError) as err:
        load_model(folder)
    assert str(err.value) == f"{shards[1]}: not listed in manifest.json beside it: {MIXED}"


def test_a_listed_shard_outside_the_set_is_refused(converted, tmp_path):
    folder, shards, manifest = copy_of(converted, tmp_path, "shards")
    other = "tiny-0-00001-of-00009.gguf"
    edit_manifest(manifest, lambda doc: doc["files"].append({"name": other, "size": 1000, "sha256": "0" * 64}))
    with pytest.raises(ModelFileError) as err:
        load_model(folder)
    assert str(err.value) == f"{manifest}: lists {other}, which is not part of this shard set: {MIXED}"


def test_two_shard_sets_in_one_folder_are_refused(converted, tmp_path):
    folder, shards, _ = copy_of(converted, tmp_path, "shards")
    stray = folder / shards[0].name.replace(f"-of-{len(shards):05d}", "-of-00009")
    shutil.copyfile(shards[0], stray)
    sets = rf"tiny-0-\*-of-{len(shards):05d}.gguf, tiny-0-\*-of-00009.gguf"
    with pytest.raises(ModelFileError, match=rf"several different GGUF models or shard sets in one folder: {sets}"):
        load_model(folder)


UNREADABLE = [
    ("not JSON", "{\"files\": [", r"not valid JSON \(line 1, column 12\)"),
    ("not an object", "[]", r"not a list of model files"),
    ("files not a list", '{"files": 3}', r"not a list of model files"),
    ("entry without a size", '{"files": [{"name": "tiny-0-00001-of-00004.gguf"}]}', r"not a list of model files"),
    ("size not a number", '{"files": [{"name": "a.gguf", "size": "big"}]}', r"not a list of model files"),
    ("not text", b"\xff\xfe{}", r"not valid JSON"),
    ("a folder", None, r"cannot be read \(Is a directory\)"),
]


@pytest.mark.parametrize("case, content, message", UNREADABLE, ids=[c for c, _, _ in UNREADABLE])
def test_an_unreadable_manifest_is_reported(converted, tmp_path, case, content, message):
    folder, _, manifest = copy_of(converted, tmp_path, "shards")
    if content is None:
        manifest.unlink()
        manifest.mkdir()
    elif isinstance(content, bytes):
        manifest.write_bytes(content)
    else:
        manifest.write_text(content)
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(folder)
    assert str(err.value).startswith(f"{manifest}: ") and "convert or import the model again" in str(err.value)
