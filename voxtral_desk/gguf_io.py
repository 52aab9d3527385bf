"""GGUF files of the model: one file or a llama.cpp-style split set (`name-00001-of-00003.gguf`),
read through gguf-py's memory-mapped reader and checked before anything is used."""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFReader

from .checkpoint import check_tensors
from .config import ModelConfig, ModelFileError
from .quant import dequantize_q4_0

ARCH = "voxtral_realtime"
KEY_PARAMS = f"{ARCH}.params_json"
KEY_TEKKEN_AUDIO = f"{ARCH}.tekken_audio_json"
SHARD_RE = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
ALLOWED_TYPES = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.Q4_0}


def shard_paths(path: Path) -> list[Path]:
    """All files of the GGUF named by `path`: a .gguf file, one shard of a set, or a folder."""
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        if not files:
            raise ModelFileError(f"{path}: no .gguf file in this folder")
        stems = {m.group("stem") if (m := SHARD_RE.match(f.name)) else f.name for f in files}
        if len(stems) > 1:
            raise ModelFileError(f"{path}: several different GGUF models in one folder: {', '.join(sorted(stems))}")
        path = files[0]
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found")
    m = SHARD_RE.match(path.name)
    if not m:
        return [path]
    count = int(m.group("count"))
    paths = [path.with_name(f"{m.group('stem')}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ModelFileError(f"{path.parent}: shard set incomplete, missing {', '.join(missing)}")
    return paths


@dataclass
class GGUFTensor:
    name: str
    type: GGMLQuantizationType
    shape: tuple[int, ...]  # PyTorch order [out, in]
    data: np.ndarray  # memory-mapped: uint8 [rows, bytes] for Q4_0, float otherwise
    file: Path


def _open_one(path: Path) -> GGUFReader:
    try:
        size = path.stat().st_size
        if size < 24:
            raise ValueError(f"only {size} bytes, too short for a GGUF header")
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise ValueError(f"wrong magic {magic!r}, expected b'GGUF'")
        reader = GGUFReader(path)
    except ModelFileError:
        raise
    except (OSError, ValueError, IndexError, KeyError, struct.error, OverflowError, TypeError) as e:
        raise ModelFileError(f"{path}: not a valid GGUF file: {e}") from None
    if reader.data_offset % reader.alignment:
        raise ModelFileError(f"{path}: tensor data does not start on a {reader.alignment}-byte boundary")
    for t in reader.tensors:
        if (t.data_offset - reader.data_offset) % reader.alignment:
            raise ModelFileError(f"{path}: tensor {t.name} is not aligned to {reader.alignment} bytes")
        if t.data_offset + t.n_bytes > size:
            raise ModelFileError(f"{path}: tensor {t.name} runs past the end of the file (truncated?)")
    return reader


def _field_str(reader: GGUFReader, key: str) -> str | None:
    f = reader.get_field(key)
    return None if f is None else str(f.contents())


class GGUFModelFile:
    """A validated GGUF model (one file or a shard set). `config` comes from our metadata keys, or for
    files made by others from params.json + tekken.json lying beside the GGUF."""

    def __init__(self, path: Path):
        self.paths = shard_paths(path)
        self.readers = [_open_one(p) for p in self.paths]
        self.tensors: dict[str, GGUFTensor] = {}
        for p, r in zip(self.paths, self.readers):
            for t in r.tensors:
                ttype = GGMLQuantizationType(t.tensor_type)
                if ttype not in ALLOWED_TYPES:
                    raise ModelFileError(f"{p}: tensor {t.name} has type {ttype.name}; only F32, F16 and Q4_0 are supported")
                if t.name in self.tensors:
                    raise ModelFileError(f"{p}: tensor {t.name} appears twice")
                shape = tuple(int(x) for x in reversed(t.shape.tolist()))
                self.tensors[t.name] = GGUFTensor(t.name, ttype, shape, t.data, p)
        self._check_split_metadata()
        self.config = self._read_config()
        check_tensors(self.config, lambda n: self.tensors[n].shape, set(self.tensors), str(self.paths[0]))
        for name, t in self.tensors.items():
            block, block_bytes = GGML_QUANT_SIZES[t.type]
            expected_bytes = int(np.prod(t.shape)) // block * block_bytes
            if t.data.nbytes != expected_bytes:
                raise ModelFileError(f"{t.file}: tensor {name} holds {t.data.nbytes} bytes, expected {expected_bytes}")

    def _check_split_metadata(self) -> None:
        if len(self.paths) == 1:
            return
        total = 0
        for i, (p, r) in enumerate(zip(self.paths, self.readers)):
            no, count = r.get_field("split.no"), r.get_field("split.count")
            if no is None or count is None or int(no.contents()) != i or int(count.contents()) != len(self.paths):
                raise ModelFileError(f"{p}: split metadata says it is not shard {i + 1} of {len(self.paths)}")
            total = int(r.get_field("split.tensors.count").contents())
        if total != len(self.tensors):
            raise ModelFileError(f"{self.paths[0].parent}: shard set holds {len(self.tensors)} tensors, metadata says {total}")

    def _read_config(self) -> ModelConfig:
        first = self.readers[0]
        params, audio = _field_str(first, KEY_PARAMS), _field_str(first, KEY_TEKKEN_AUDIO)
        if params is not None and audio is not None:
            return ModelConfig.from_json_texts(params, audio)
        folder = self.paths[0].parent
        if (folder / "params.json").is_file():
            return ModelConfig.from_model_dir(folder / "params.json", folder / "tekken.json")
        raise ModelFileError(f"{self.paths[0]}: no model configuration in the file and no params.json beside it")

    def f32(self, name: str) -> np.ndarray:
        t = self.tensors[name]
        if t.type == GGMLQuantizationType.Q4_0:
            return dequantize_q4_0(t.data).reshape(t.shape)
        return np.asarray(t.data, dtype=np.float32).reshape(t.shape)

    def q4_0(self, name: str) -> np.ndarray | None:
        t = self.tensors[name]
        return t.data if t.type == GGMLQuantizationType.Q4_0 else None
