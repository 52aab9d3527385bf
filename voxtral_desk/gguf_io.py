"""GGUF files of the model: one file or a llama.cpp-style split set (`name-00001-of-00003.gguf`), memory-mapped
and checked before anything is used.

The header is read here, not by gguf-py's GGUFReader: every count, length and offset is checked against the
file and against bounds before it is used, so a damaged file gets a message instead of a numpy error, and a
count of 2**40 is refused instead of looping or allocating gigabytes. gguf-py supplies the format's constants.
"""
from __future__ import annotations

import math
import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType

from .checkpoint import check_finite, check_tensors, file_damaged, file_truncated, tensor_table
from .config import ModelConfig, ModelFileError
from .quant import dequantize_q4_0

ARCH = "voxtral_realtime"
KEY_PARAMS = f"{ARCH}.params_json"
KEY_TEKKEN_AUDIO = f"{ARCH}.tekken_audio_json"
SHARD_RE = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")

# The tensor types each role may have: the one place to add a quantisation type.
FLOAT_TYPES = (GGMLQuantizationType.F32, GGMLQuantizationType.F16)  # norms, biases, the conv stem
MATRIX_TYPES = FLOAT_TYPES + (GGMLQuantizationType.Q4_0,)  # the big matrices and the token embeddings

# Bounds far above any Voxtral Realtime file (about 700 tensors, a few metadata keys): a count or length
# beyond them is damage, refused before it is looped over or allocated.
MAX_TENSORS = 1 << 14
MAX_KEYS = 1 << 16
MAX_NAME_BYTES = 1 << 16  # a key or tensor name
MAX_TEXT_BYTES = 1 << 24  # one metadata text
MAX_ARRAY_VALUES = 1 << 24  # one metadata array, and all the strings and arrays inside arrays together
MAX_TENSOR_VALUES = 1 << 36

_SCALARS = {GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
            GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
            GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
            GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d"}
_INTEGERS = set(_SCALARS) - {GGUFValueType.FLOAT32, GGUFValueType.FLOAT64, GGUFValueType.BOOL}
_NUMPY = {GGMLQuantizationType.F32: np.float32, GGMLQuantizationType.F16: np.float16}


def _names(types) -> str:
    names = [t.name for t in types]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def shard_paths(path: Path) -> list[Path]:
    """All files of the GGUF named by `path`: a .gguf file, one shard of a set, or a folder."""
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        if not files:
            raise ModelFileError(f"{path}: no .gguf file in this folder")
        sets = {(m.group("stem"), m.group("count")) if (m := SHARD_RE.match(f.name)) else (f.name, "") for f in files}
        if len(sets) > 1:
            names = sorted(f"{stem}-*-of-{count}.gguf" if count else stem for stem, count in sets)
            raise ModelFileError(f"{path}: several different GGUF models or shard sets in one folder: "
                                 f"{', '.join(names)}; keep one")
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


@dataclass
class _TensorInfo:
    name: str
    type: GGMLQuantizationType
    shape: tuple[int, ...]  # PyTorch order
    start: int  # in the file (while the header is read: from the start of the data)
    nbytes: int


class GGUFHeader:
    """One GGUF file's metadata and tensor table, read with every count, length and offset checked; the
    tensors' data stays memory-mapped."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.size = path.stat().st_size
            with open(path, "rb") as f:
                magic = f.read(4)
                if magic != b"GGUF":
                    if self.size < 4:
                        raise ModelFileError(f"{path}: only {self.size} bytes, too short to be a GGUF file")
                    raise ModelFileError(f"{path}: not a GGUF file (wrong magic {magic!r}, expected b'GGUF')")
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise ModelFileError(f"{path}: cannot be read ({e.strerror})") from None
        self._pos, self._values_left = 4, MAX_ARRAY_VALUES
        version = self._read("<I")
        if version and version & 0xFFFF == 0:  # the version's bytes reversed
            raise ModelFileError(f"{path}: a big-endian GGUF file; only little-endian files are supported")
        if version not in (2, 3):
            raise ModelFileError(f"{path}: not a valid GGUF file: it says version {version}; only versions 2 and 3 "
                                 "are supported")
        n_tensors, n_keys = self._read("<Q"), self._read("<Q")
        if n_tensors > MAX_TENSORS:
            raise file_damaged(path, f"its header claims {n_tensors} tensors")
        if n_keys > MAX_KEYS:
            raise file_damaged(path, f"its header claims {n_keys} metadata entries")
        self.fields: dict[str, tuple[GGUFValueType, object]] = {}  # arrays are skipped: their value is None
        for i in range(n_keys):
            key = self._name(f"metadata key {i + 1}")
            if key in self.fields:
                raise file_damaged(path, f"metadata {key} appears twice")
            self.fields[key] = self._value(self._read("<I"), key)
        self.tensors = [self._tensor_info(i) for i in range(n_tensors)]
        seen = set()
        for t in self.tensors:
            if t.name in seen:
                raise ModelFileError(f"{path}: tensor {t.name} appears twice")
            seen.add(t.name)
        alignment = self._alignment()
        data_start = -(-self._pos // alignment) * alignment
        for t in self.tensors:
            if t.start % alignment:
                raise ModelFileError(f"{path}: tensor {t.name} is not aligned to {alignment} bytes")
            t.start += data_start  # the header gives offsets from the start of the data
        self._check_ranges()

    # --- reading, every step checked against the file's size ---

    def _take(self, n: int) -> int:
        at = self._pos
        if at + n > self.size:
            raise file_truncated(self.path, self.size, at + n)
        self._pos += n
        return at

    def _read(self, fmt: str):
        return struct.unpack_from(fmt, self._map, self._take(struct.calcsize(fmt)))[0]

    def _bytes(self, limit: int, what: str, claim: str) -> bytes:
        n = self._read("<Q")
        if n > limit:
            raise file_damaged(self.path, f"{what} claims {claim} of {n} bytes")
        at = self._take(n)
        return self._map[at : at + n]

    def _name(self, what: str) -> str:
        raw = self._bytes(MAX_NAME_BYTES, what, "a name" if what.startswith("tensor") else "a length")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise file_damaged(self.path, f"the name of {what} is not text") from None

    def _value(self, raw_type: int, key: str) -> tuple[GGUFValueType, object]:
        try:
            vtype = GGUFValueType(raw_type)
        except ValueError:
            raise file_damaged(self.path, f"metadata {key} has an unknown value type (number {raw_type})") from None
        if vtype in _SCALARS:
            return vtype, self._read(_SCALARS[vtype])
        if vtype == GGUFValueType.STRING:
            return vtype, self._bytes(MAX_TEXT_BYTES, f"metadata {key}", "a length")
        item_type, count = self._read("<I"), self._read("<Q")
        if count > MAX_ARRAY_VALUES:
            raise file_damaged(self.path, f"metadata {key} claims {count} values")
        if item_type in _SCALARS:  # skipped in one step: nothing here reads their values
            self._take(count * struct.calcsize(_SCALARS[GGUFValueType(item_type)]))
            return vtype, None
        self._values_left -= count  # strings and arrays are walked one by one: bound the walk
        if self._values_left < 0:
            raise file_damaged(self.path, f"metadata {key} claims more than {MAX_ARRAY_VALUES} values in all")
        for _ in range(count):
            self._value(item_type, key)
        return vtype, None

    def _tensor_info(self, i: int) -> _TensorInfo:
        name = self._name(f"tensor {i + 1}")
        n_dims = self._read("<I")
        if not 1 <= n_dims <= 4:
            raise file_damaged(self.path, f"tensor {name} claims {n_dims} dimensions")
        dims = [self._read("<Q") for _ in range(n_dims)]  # innermost first
        raw_type, offset = self._read("<I"), self._read("<Q")
        if (n := math.prod(dims)) > MAX_TENSOR_VALUES:
            raise file_damaged(self.path, f"tensor {name} claims {n} values")
        try:
            ttype = GGMLQuantizationType(raw_type)
        except ValueError:
            raise ModelFileError(f"{self.path}: tensor {name} has an unknown type (number {raw_type}); only "
                                 f"{_names(MATRIX_TYPES)} are supported") from None
        if ttype not in MATRIX_TYPES:
            raise ModelFileError(f"{self.path}: tensor {name} has type {ttype.name}; only {_names(MATRIX_TYPES)} "
                                 "are supported")
        block, block_bytes = GGML_QUANT_SIZES[ttype]
        if dims[0] % block:
            raise file_damaged(self.path, f"tensor {name} has rows of {dims[0]} values, not whole {ttype.name} "
                               f"blocks of {block}")
        return _TensorInfo(name, ttype, tuple(reversed(dims)), offset, n // block * block_bytes)

    def _alignment(self) -> int:
        vtype, value = self.fields.get("general.alignment", (GGUFValueType.UINT32, GGUF_DEFAULT_ALIGNMENT))
        if vtype != GGUFValueType.UINT32 or not value or value & (value - 1):
            raise file_damaged(self.path, f"general.alignment is {value}, not a power of two")
        return value

    def _check_ranges(self) -> None:
        """No two tensors share bytes (a type or offset changed in the header), and all lie in the file."""
        reach, holder = 0, ""  # the furthest end so far, and whose it is
        for t in sorted(self.tensors, key=lambda t: t.start):
            if t.nbytes and t.start < reach:
                raise file_damaged(self.path, f"the data of tensors {holder} and {t.name} overlap")
            if t.start + t.nbytes > reach:
                reach, holder = t.start + t.nbytes, t.name
        if reach > self.size:
            raise file_truncated(self.path, self.size, reach)

    # --- what the model needs ---

    def text(self, key: str) -> str | None:
        if key not in self.fields:
            return None
        vtype, value = self.fields[key]
        if vtype != GGUFValueType.STRING:
            raise ModelFileError(f"{self.path}: metadata {key} holds "
                                 f"{'a list' if vtype == GGUFValueType.ARRAY else 'a number'}, not text")
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFileError(f"{self.path}: metadata {key} is not valid text (damaged?)") from None

    def integer(self, key: str) -> int | None:
        vtype, value = self.fields.get(key, (None, None))
        return value if vtype in _INTEGERS else None

    def array(self, t: _TensorInfo) -> np.ndarray:
        if t.type in _NUMPY:
            return np.frombuffer(self._map, _NUMPY[t.type], math.prod(t.shape), t.start).reshape(t.shape)
        block, block_bytes = GGML_QUANT_SIZES[t.type]
        return np.frombuffer(self._map, np.uint8, t.nbytes, t.start).reshape(
            *t.shape[:-1], t.shape[-1] // block * block_bytes)


def has_model_config(path: Path) -> bool:
    """Whether a GGUF file carries our model settings (ModelFileError if it is damaged)."""
    return KEY_PARAMS in GGUFHeader(path).fields


class GGUFModelFile:
    """A validated GGUF model (one file or a shard set). `config` comes from our metadata keys, or for
    files made by others from params.json + tekken.json lying beside the GGUF."""

    def __init__(self, path: Path):
        self.paths = shard_paths(path)
        self.headers = [GGUFHeader(p) for p in self.paths]
        self.tensors: dict[str, GGUFTensor] = {}
        for h in self.headers:
            for t in h.tensors:
                if t.name in self.tensors:
                    raise ModelFileError(f"{h.path}: tensor {t.name} appears twice in the shard set")
                self.tensors[t.name] = GGUFTensor(t.name, t.type, t.shape, h.array(t), h.path)
        self._check_split_metadata()
        self.config = self._read_config()
        check_tensors(self.config, lambda n: self.tensors[n].shape, set(self.tensors), str(self.paths[0]))
        for spec in tensor_table(self.config):
            t = self.tensors[spec.name]
            if not spec.quantize and t.type not in FLOAT_TYPES:
                raise ModelFileError(f"{t.file}: tensor {t.name} has type {t.type.name}; a norm, bias or conv "
                                     f"weight must be {' or '.join(x.name for x in FLOAT_TYPES)}")
        check_finite(self.config, self.f32, lambda name: self.tensors[name].file)

    def _check_split_metadata(self) -> None:
        if len(self.paths) == 1:
            return
        for i, h in enumerate(self.headers):
            if h.integer("split.no") != i or h.integer("split.count") != len(self.paths):
                raise ModelFileError(f"{h.path}: split metadata says it is not shard {i + 1} of {len(self.paths)}")
        total = self.headers[0].integer("split.tensors.count")
        if total != len(self.tensors):
            raise ModelFileError(f"{self.paths[0].parent}: shard set holds {len(self.tensors)} tensors, "
                                 f"metadata says {total}")

    def _read_config(self) -> ModelConfig:
        first = self.headers[0]
        params, audio = first.text(KEY_PARAMS), first.text(KEY_TEKKEN_AUDIO)
        if params is not None and audio is not None:
            return ModelConfig.from_json_texts(params, audio, f"{first.path}, metadata {KEY_PARAMS}",
                                               f"{first.path}, metadata {KEY_TEKKEN_AUDIO}")
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

    def raw(self, name: str) -> tuple[GGMLQuantizationType, np.ndarray]:
        """The tensor as stored: its type and its data (memory-mapped; uint8 [rows, bytes per row] for block
        formats, the float array otherwise)."""
        t = self.tensors[name]
        return t.type, t.data
