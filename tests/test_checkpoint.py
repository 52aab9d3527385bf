"""Mistral's original layout: a damaged consolidated.safetensors is refused when the model is opened, with a
message naming the file and the problem, never a numpy error when a tensor is read later."""
from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest

from voxtral_desk.checkpoint import ENCODER, SafetensorsFile
from voxtral_desk.config import ModelFileError
from voxtral_desk.loader import load_model

NORM = "layers.1.ffn_norm.weight"
BIAS = ENCODER + "transformer.layers.0.attention.wq.bias"
CONV = ENCODER + "conv_layers.0.conv.weight"
WQ0, WQ1 = "layers.0.attention.wq.weight", "layers.1.attention.wq.weight"
BF16_NAN, BF16_INF = 0x7FC0, 0x7F80
TRUNCATED = r"the file is truncated: it has \d+ bytes, at least \d+ expected \(damaged or incompletely downloaded\)"


def split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<Q", data)
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header, body: bytes, raw_header: bytes | None = None) -> bytes:
    head = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(head)) + head + body


def with_value(header: dict, body: bytes, name: str, index: int, bits: int) -> bytes:
    """The body with one bf16 value of a tensor replaced."""
    out = bytearray(body)
    struct.pack_into("<H", out, header[name]["data_offsets"][0] + 2 * index, bits)
    return join(header, bytes(out))


def crafted(case: str, data: bytes) -> bytes:
    header, body = split(data)
    if case == "empty":
        return b""
    if case == "truncated header":
        return data[:50]
    if case == "truncated data":
        return data[:-100]
    if case == "huge header length":
        return struct.pack("<Q", 1 << 62) + data[8:]
    if case == "header not JSON":
        return join(None, body, b"\xff{ not json" + b" " * 5)
    if case == "header not an object":
        return join([1, 2], body)
    if case == "entry not an object":
        header[NORM] = "F32"
    elif case == "offsets reversed":
        start, end = header[NORM]["data_offsets"]
        header[NORM]["data_offsets"] = [end, start]
    elif case == "offsets not numbers":
        header[NORM]["data_offsets"] = ["0", 128]
    elif case == "negative shape":
        header[NORM]["shape"] = [-64]
    elif case == "fewer bytes than its shape":
        start, _ = header[NORM]["data_offsets"]
        header[NORM]["data_offsets"] = [start, start + 64]
    elif case == "overlapping data":
        header[WQ1]["data_offsets"] = header[WQ0]["data_offsets"]
    elif case == "NaN in a norm":
        return with_value(header, body, NORM, 3, BF16_NAN)
    elif case == "infinity in a bias":
        return with_value(header, body, BIAS, 0, BF16_INF)
    elif case == "NaN in the conv stem":
        return with_value(header, body, CONV, 77, BF16_NAN)
    return join(header, body)


CORPUS = [
    ("empty", r"only 0 bytes, too short to be a safetensors file"),
    ("truncated header", TRUNCATED),
    ("truncated data", TRUNCATED),
    ("huge header length", r"the file is damaged: its header claims 4611686018427387904 bytes"),
    ("header not JSON", r"the file is damaged: its header is not valid JSON"),
    ("header not an object", r"the file is damaged: its header is not a JSON object"),
    ("entry not an object", rf"the file is damaged: the header entry of tensor {NORM} is not a JSON object"),
    ("offsets reversed", rf"the file is damaged: tensor {NORM} has a malformed shape or data range"),
    ("offsets not numbers", rf"the file is damaged: tensor {NORM} has a malformed shape or data range"),
    ("negative shape", rf"the file is damaged: tensor {NORM} has a malformed shape or data range"),
    ("fewer bytes than its shape", rf"the file is damaged: tensor {NORM} holds 64 bytes, but its shape \[64\] in "
                                   r"BF16 needs 128"),
    ("overlapping data", rf"the file is damaged: the data of tensors {WQ0} and {WQ1} overlap"),
    ("NaN in a norm", rf"the file is damaged: tensor {NORM} holds NaN or infinite values"),
    ("infinity in a bias", rf"the file is damaged: tensor {BIAS} holds NaN or infinite values"),
    ("NaN in the conv stem", rf"the file is damaged: tensor {CONV} holds NaN or infinite values"),
]


@pytest.mark.parametrize("case, message", CORPUS, ids=[c for c, _ in CORPUS])
def test_damaged_safetensors_are_refused_on_opening(model_dir, tmp_path, case, message):
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny", 0), folder)
    st = folder / "consolidated.safetensors"
    st.write_bytes(crafted(case, st.read_bytes()))
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(folder)
    text = str(err.value)
    assert text.startswith(f"{st}: ") and not any(w in text for w in ("reshape", "Expecting", "mmap", "Errno")), text


def test_the_good_file_reads_every_tensor(model_dir):
    st = SafetensorsFile(model_dir("tiny", 0) / "consolidated.safetensors")
    for name in st.names():
        assert st.f32(name).shape == st.shape(name) and np.isfinite(st.f32(name)).all()


def test_settings_with_fewer_layers_than_the_weights_are_refused(model_dir, tmp_path):
    """Extra layers in the file were silently ignored: the settings belong to another model."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir("tiny", 0), folder)
    params = json.loads((folder / "params.json").read_text())
    params["n_layers"] = 1
    (folder / "params.json").write_text(json.dumps(params))
    with pytest.raises(ModelFileError, match=r"consolidated.safetensors: holds 2 decoder layers, but the model "
                                             r"settings say n_layers is 1"):
        load_model(folder)
