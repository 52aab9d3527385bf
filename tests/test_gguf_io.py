"""Converter round trip and the reader's refusal of broken files, each with a message naming the problem."""
from __future__ import annotations

import json
import shutil
import struct
import tracemalloc

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

from voxtral_desk.checkpoint import TOKEN_EMBEDDINGS, OriginalCheckpoint, tensor_table
from voxtral_desk.config import ModelFileError
from voxtral_desk.convert import convert_checkpoint
from voxtral_desk.fileio import sha256_file
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
            expected = (dequantize_q4_0(quantize_q4_0(w.reshape(w.shape[0], -1))).reshape(w.shape)
                        if spec.quantize else w)
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


def write_custom(path, cfg, tensors, alignment=None, params=None, params_value=None, extra_array=None):
    """tensors: name -> (array, ggml quantisation type or None for a plain float array). params: the
    settings to store instead of cfg's; params_value: a raw value (not JSON text) to store instead."""
    w = GGUFWriter(path, arch=ARCH)
    if isinstance(params_value, int):
        w.add_uint32(KEY_PARAMS, params_value)
    else:
        w.add_string(KEY_PARAMS, params_value or json.dumps(params or cfg.params))
    w.add_string(KEY_TEKKEN_AUDIO, json.dumps(cfg.tekken_audio))
    if alignment:
        w.add_uint32("general.alignment", alignment)
    if extra_array:
        w.add_array(extra_array, [1, 2, 3])
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


# --- a corpus of damaged headers, wrong types, overlaps and bad values, crafted byte by byte ---------


def tensor_info_at(data: bytes, name: str) -> int:
    """Offset of a tensor info's n_dims field (just after its name) in a GGUF file's bytes."""
    key = struct.pack("<Q", len(name)) + name.encode()
    return data.index(key) + len(key)


def tensor_type_and_offset_at(data: bytes, name: str) -> tuple[int, int]:
    """Offsets of the type field and of the data offset field of one tensor's info."""
    pos = tensor_info_at(data, name)
    (n_dims,) = struct.unpack_from("<I", data, pos)
    type_at = pos + 4 + 8 * n_dims
    return type_at, type_at + 4


def value_at(data: bytes, key: str) -> int:
    """Offset of a metadata value (just after its key and type)."""
    raw = struct.pack("<Q", len(key)) + key.encode()
    return data.index(raw) + len(raw) + 4


def patch(data: bytes, at: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


WQ0, WQ1 = "layers.0.attention.wq.weight", "layers.1.attention.wq.weight"
NORM = "layers.0.attention_norm.weight"
CONV_BIAS = "mm_streams_embeddings.embedding_module.whisper_encoder.conv_layers.0.conv.bias"
CONV_WEIGHT = "mm_streams_embeddings.embedding_module.whisper_encoder.conv_layers.1.conv.weight"
TRUNCATED = r"the file is truncated: it has \d+ bytes, at least \d+ expected \(damaged or incompletely downloaded\)"
INTERNALS = ("reshape", "out of bounds", "GGMLQuantizationType", "unpack", "buffer", "Errno", "Traceback", "numpy")


def crafted(case: str, data: bytes) -> bytes:
    """The good file's bytes, damaged the way one case says."""
    if case == "truncated header":
        return data[:20]
    if case == "truncated metadata":
        return data[: value_at(data, KEY_PARAMS) + 200]
    if case == "truncated tensor info":
        return data[: tensor_info_at(data, WQ1) - 10]
    if case == "truncated data":
        return data[: len(data) - 5000]
    if case == "huge tensor count":
        return patch(data, 8, "<Q", 1 << 40)
    if case == "huge metadata count":
        return patch(data, 16, "<Q", 1 << 40)
    if case == "huge key length":
        return patch(data, 24, "<Q", 1 << 62)
    if case == "huge string length":
        return patch(data, value_at(data, KEY_PARAMS), "<Q", 1 << 62)
    if case == "huge array length":
        return patch(data, value_at(data, "test.array") + 4, "<Q", 1 << 40)
    if case == "huge tensor name length":
        return patch(data, tensor_info_at(data, TOKEN_EMBEDDINGS) - len(TOKEN_EMBEDDINGS) - 8, "<Q", 1 << 62)
    if case == "huge dimension":
        return patch(data, tensor_info_at(data, WQ0) + 4, "<Q", 1 << 50)
    if case == "nine dimensions":
        return patch(data, tensor_info_at(data, WQ0), "<I", 9)
    if case == "unknown tensor type":
        return patch(data, tensor_type_and_offset_at(data, WQ0)[0], "<I", 99)
    if case == "unknown value type":
        return patch(data, value_at(data, KEY_PARAMS) - 4, "<I", 77)
    if case == "big-endian":
        return patch(data, 4, ">I", 3)
    if case == "version 1":
        return patch(data, 4, "<I", 1)
    if case == "Q4_0 flipped to F16":
        return patch(data, tensor_type_and_offset_at(data, WQ0)[0], "<I", int(GGMLQuantizationType.F16))
    if case == "duplicate tensor name":
        at = tensor_info_at(data, WQ1) - len(WQ1)
        return data[:at] + WQ0.encode() + data[at + len(WQ0):]  # the same length: only the layer number differs
    if case == "overlapping data":
        (offset,) = struct.unpack_from("<Q", data, tensor_type_and_offset_at(data, WQ0)[1])
        return patch(data, tensor_type_and_offset_at(data, WQ1)[1], "<Q", offset)
    raise AssertionError(case)


DAMAGED = [
    ("truncated header", TRUNCATED),
    ("truncated metadata", TRUNCATED),
    ("truncated tensor info", TRUNCATED),
    ("truncated data", TRUNCATED),
    ("huge tensor count", r"damaged: its header claims 1099511627776 tensors"),
    ("huge metadata count", r"damaged: its header claims 1099511627776 metadata entries"),
    ("huge key length", r"damaged: metadata key 1 claims a length of 4611686018427387904 bytes"),
    ("huge string length", rf"damaged: metadata {KEY_PARAMS} claims a length of 4611686018427387904 bytes"),
    ("huge array length", r"damaged: metadata test.array claims 1099511627776 values"),
    ("huge tensor name length", r"damaged: tensor 1 claims a name of 4611686018427387904 bytes"),
    ("huge dimension", rf"damaged: tensor {WQ0} claims \d+ values"),
    ("nine dimensions", rf"damaged: tensor {WQ0} claims 9 dimensions"),
    ("unknown tensor type", rf"tensor {WQ0} has an unknown type \(number 99\); only F32, F16 and Q4_0"),
    ("unknown value type", rf"damaged: metadata {KEY_PARAMS} has an unknown value type \(number 77\)"),
    ("big-endian", r"big-endian GGUF file; only little-endian files are supported"),
    ("version 1", r"not a valid GGUF file: it says version 1; only versions 2 and 3 are supported"),
    ("Q4_0 flipped to F16", rf"damaged: the data of tensors {WQ0} and .* overlap"),
    ("overlapping data", rf"damaged: the data of tensors {WQ0} and {WQ1} overlap"),
    ("duplicate tensor name", rf"tensor {WQ0} appears twice"),
]


@pytest.mark.parametrize("case, message", DAMAGED, ids=[c for c, _ in DAMAGED])
def test_damaged_gguf_is_named_without_library_internals(tmp_path, good_tensors, case, message):
    ckpt, tensors = good_tensors
    path = broken(tmp_path, ckpt, case.replace(" ", "_"))
    write_custom(path, ckpt.config, tensors, extra_array="test.array" if case == "huge array length" else None)
    path.write_bytes(crafted(case, path.read_bytes()))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=message) as err:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(err.value)
    assert text.startswith(f"{path}: ") and not any(word in text for word in INTERNALS), text
    assert peak < 32 << 20, f"{peak} bytes allocated before refusing the file"


def test_truncation_says_how_much_is_missing(tmp_path, good_tensors):
    ckpt, tensors = good_tensors
    path = broken(tmp_path, ckpt, "cut")
    write_custom(path, ckpt.config, tensors)
    data = path.read_bytes()
    path.write_bytes(data[:150000])
    with pytest.raises(ModelFileError, match=r"it has 150000 bytes, at least \d+ expected") as err:
        load_model(path)
    expected = int(str(err.value).split("at least ")[1].split()[0])
    assert len(data) - 32 < expected <= len(data)  # the end of the last tensor's data; padding may follow


def tensor_with(tensors, name, index, value):
    arr, qtype = tensors[name]
    arr = arr.copy()
    arr.reshape(-1)[index] = value
    tensors[name] = (arr, qtype)


WRONG = [
    ("norm stored as Q4_0", rf"tensor {NORM} has type Q4_0; a norm, bias or conv weight must be F32 or F16"),
    ("NaN in a norm", rf"tensor {NORM} holds NaN or infinite values"),
    ("infinity in a bias", rf"tensor {CONV_BIAS} holds NaN or infinite values"),
    ("NaN in the conv stem", rf"tensor {CONV_WEIGHT} holds NaN or infinite values"),
    ("n_layers 1e9 in the metadata",
     rf"metadata {KEY_PARAMS}: n_layers is 1000000000; a Voxtral Realtime model has between 1 and 256"),
    ("settings that are not text", rf"metadata {KEY_PARAMS} holds a number, not text"),
    ("settings that are not JSON", rf"metadata {KEY_PARAMS}: not valid JSON"),
]


@pytest.mark.parametrize("case, message", WRONG, ids=[c for c, _ in WRONG])
def test_wrong_types_and_values_are_refused(tmp_path, good_tensors, case, message):
    ckpt, tensors = good_tensors
    path = broken(tmp_path, ckpt, case.replace(" ", "_"))
    params = dict(ckpt.config.params)
    if case == "norm stored as Q4_0":
        tensors[NORM] = (quantize_q4_0(tensors[NORM][0]), Q4_0)
    elif case == "NaN in a norm":
        tensor_with(tensors, NORM, 5, np.nan)
    elif case == "infinity in a bias":
        tensor_with(tensors, CONV_BIAS, 0, np.inf)
    elif case == "NaN in the conv stem":
        tensor_with(tensors, CONV_WEIGHT, 100, np.nan)
    elif case == "n_layers 1e9 in the metadata":
        params["n_layers"] = 1_000_000_000
    write_custom(path, ckpt.config, tensors, params=params,
                 params_value=7 if case == "settings that are not text" else
                 "{not json" if case == "settings that are not JSON" else None)
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}")


@pytest.mark.parametrize("name", [WQ0, NORM, CONV_WEIGHT])
def test_float16_is_accepted_for_any_role(tmp_path, good_tensors, name):
    ckpt, tensors = good_tensors
    path = broken(tmp_path, ckpt, "f16")
    tensors[name] = (ckpt.f32(name).astype(np.float16), None)
    write_custom(path, ckpt.config, tensors)
    np.testing.assert_array_equal(load_model(path).weights.f32(name), ckpt.f32(name).astype(np.float16))
