"""Converter round trip and the reader's refusal of broken files, each with a message naming the problem."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from voxtral_desk.checkpoint import OriginalCheckpoint, tensor_table
from voxtral_desk.config import ModelFileError
from voxtral_desk.convert import convert_checkpoint, sha256_file
from voxtral_desk.gguf_io import ARCH, KEY_PARAMS, KEY_TEKKEN_AUDIO
from voxtral_desk.loader import load_model
from voxtral_desk.quant import dequantize_q4_0, quantize_q4_0

Q4_0 = GGMLQuantizationType.Q4_0


@pytest.fixture(scope="module")
def converted(model_dir, tmp_path_factory):
    """The tiny model as one GGUF and as a set of shards of at most 200 KiB."""
    src = model_dir("tiny", 0)
    out = tmp_path_factory.mktemp("gguf")
    single = convert_checkpoint(src, out / "single", shard_bytes=None)
    shards = convert_checkpoint(src, out / "shards", shard_bytes=200 << 10)
    return src, single, shards


def test_round_trip_single_and_sharded(converted):
    src, single, shards = converted
    original = OriginalCheckpoint(src)
    assert [f.name for f in single] == ["tiny-0.gguf", "tekken.json", "manifest.json"]
    gguf_shards = [f for f in shards if f.suffix == ".gguf"]
    assert len(gguf_shards) > 2 and all(f.stat().st_size <= 200 << 10 for f in gguf_shards)
    for files in (single, shards):
        model = load_model(files[0].parent)
        assert model.config == original.config
        for spec in tensor_table(original.config):
            w = original.f32(spec.name)
            expected = dequantize_q4_0(quantize_q4_0(w.reshape(w.shape[0], -1))).reshape(w.shape) if spec.quantize else w
            np.testing.assert_array_equal(model.weights.f32(spec.name), expected, err_msg=spec.name)
            assert (model.weights.q4_0(spec.name) is not None) == spec.quantize


def test_manifest_lists_sizes_and_hashes(converted):
    _, _, shards = converted
    manifest = json.loads(shards[-1].read_text())
    listed = {e["name"]: e for e in manifest["files"]}
    for f in shards[:-1]:
        assert listed[f.name]["size"] == f.stat().st_size
        assert listed[f.name]["sha256"] == sha256_file(f)


def test_opening_any_shard_opens_the_set(converted):
    _, _, shards = converted
    model = load_model(shards[1])
    assert len(model.weights.paths) == len([f for f in shards if f.suffix == ".gguf"])


def test_shard_size_too_small_is_refused(model_dir, tmp_path):
    with pytest.raises(ValueError, match="shard size too small"):
        convert_checkpoint(model_dir("tiny", 0), tmp_path / "out", shard_bytes=20 << 10)
    assert not list((tmp_path / "out").glob("*.gguf"))


# --- a corpus of broken files -------------------------------------------------------------------


def write_custom(path, cfg, tensors, alignment=None):
    """tensors: name -> (array, ggml quantisation type or None for a plain float array)."""
    w = GGUFWriter(path, arch=ARCH)
    w.add_string(KEY_PARAMS, json.dumps(cfg.params))
    w.add_string(KEY_TEKKEN_AUDIO, json.dumps(cfg.tekken_audio))
    if alignment:
        w.add_uint32("general.alignment", alignment)
    for name, (arr, qtype) in tensors.items():
        if qtype is not None:
            w.add_tensor(name, arr, raw_shape=arr.shape, raw_dtype=qtype)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture
def good_tensors(model_dir):
    ckpt = OriginalCheckpoint(model_dir("tiny", 0))
    tensors = {}
    for spec in tensor_table(ckpt.config):
        w = ckpt.f32(spec.name)
        tensors[spec.name] = (quantize_q4_0(w.reshape(w.shape[0], -1)), Q4_0) if spec.quantize else (w, None)
    return ckpt, tensors


def broken(tmp_path, ckpt, name):
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(ckpt.tokenizer_path, folder / "tekken.json")
    return folder / "model.gguf"


def test_reader_accepts_the_good_custom_file(tmp_path, good_tensors):
    ckpt, tensors = good_tensors
    path = broken(tmp_path, ckpt, "good")
    write_custom(path, ckpt.config, tensors)
    load_model(path)


@pytest.mark.parametrize("case, message", [
    ("truncated", "truncated"),
    ("wrong_magic", "wrong magic"),
    ("empty", "too short"),
    ("bad_alignment", "aligned|boundary"),
    ("wrong_shape", "wrong tensor shape"),
    ("missing_tensor", "missing tensors"),
    ("unsupported_type", "only F32, F16 and Q4_0"),
    ("no_tokenizer", "tekken.json"),
])
def test_reader_rejects_broken_files(tmp_path, good_tensors, case, message):
    ckpt, tensors = good_tensors
    path = broken(tmp_path, ckpt, case)
    if case == "truncated":
        write_custom(path, ckpt.config, tensors)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 5000])
    elif case == "wrong_magic":
        write_custom(path, ckpt.config, tensors)
        data = bytearray(path.read_bytes())
        data[:4] = b"GGML"
        path.write_bytes(bytes(data))
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "bad_alignment":
        write_custom(path, ckpt.config, tensors, alignment=64)  # the data is laid out for 32
    elif case == "wrong_shape":
        name = "layers.0.attention.wq.weight"
        arr, _ = tensors[name]
        tensors[name] = (arr[:-1], Q4_0)
        write_custom(path, ckpt.config, tensors)
    elif case == "missing_tensor":
        del tensors["norm.weight"]
        write_custom(path, ckpt.config, tensors)
    elif case == "unsupported_type":
        name = "layers.1.feed_forward.w2.weight"
        w = ckpt.f32(name)
        tensors[name] = (np.zeros((w.shape[0], w.shape[1] // 32 * 34), np.uint8), GGMLQuantizationType.Q8_0)
        write_custom(path, ckpt.config, tensors)
    elif case == "no_tokenizer":
        write_custom(path, ckpt.config, tensors)
        (path.parent / "tekken.json").unlink()
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(path)
    assert str(path.parent) in str(err.value)


def test_missing_shard_is_named(converted, tmp_path):
    _, _, shards = converted
    folder = tmp_path / "incomplete"
    shutil.copytree(shards[0].parent, folder)
    victim = folder / shards[1].name
    victim.unlink()
    with pytest.raises(ModelFileError, match=victim.name):
        load_model(folder)


def test_original_checkpoint_problems_are_named(model_dir, tmp_path):
    folder = tmp_path / "orig"
    shutil.copytree(model_dir("tiny", 0), folder)
    st = folder / "consolidated.safetensors"
    st.write_bytes(st.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated"):
        load_model(folder)
    (folder / "params.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="params.json|configuration"):
        load_model(folder)
