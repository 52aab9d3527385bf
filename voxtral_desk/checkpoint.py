"""The model's tensors: the table of names and shapes (spec §1), and Mistral's original layout
(`consolidated.safetensors` + `params.json` + `tekken.json`), read memory-mapped.

safetensors is small enough to read by hand, and the `safetensors` package cannot hand bf16 to numpy.
"""
from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import ModelConfig, ModelFileError

AUDIO = "mm_streams_embeddings.embedding_module."
ENCODER = AUDIO + "whisper_encoder."
TOKEN_EMBEDDINGS = AUDIO + "tok_embeddings.weight"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # PyTorch order: [out, in] for linear weights
    quantize: bool  # stored as Q4_0 in our GGUF (spec §9.1); F32 otherwise


def tensor_table(cfg: ModelConfig) -> list[TensorSpec]:
    """Every tensor of the checkpoint, in file order, with the shape the config implies."""
    e, d = cfg.encoder, cfg.decoder
    t: list[TensorSpec] = []

    def add(name, shape, quantize=False):
        t.append(TensorSpec(name, tuple(shape), quantize))

    add(TOKEN_EMBEDDINGS, (d.vocab_size, d.dim), True)
    add(ENCODER + "conv_layers.0.conv.weight", (e.dim, e.n_mels, 3))
    add(ENCODER + "conv_layers.0.conv.bias", (e.dim,))
    add(ENCODER + "conv_layers.1.conv.weight", (e.dim, e.dim, 3))
    add(ENCODER + "conv_layers.1.conv.bias", (e.dim,))
    q_dim, kv_dim = e.n_heads * e.head_dim, e.n_kv_heads * e.head_dim
    for i in range(e.n_layers):
        p = f"{ENCODER}transformer.layers.{i}."
        add(p + "attention.wq.weight", (q_dim, e.dim), True)
        add(p + "attention.wq.bias", (q_dim,))
        add(p + "attention.wk.weight", (kv_dim, e.dim), True)
        add(p + "attention.wv.weight", (kv_dim, e.dim), True)
        add(p + "attention.wv.bias", (kv_dim,))
        add(p + "attention.wo.weight", (e.dim, q_dim), True)
        add(p + "attention.wo.bias", (e.dim,))
        add(p + "attention_norm.weight", (e.dim,))
        add(p + "ffn_norm.weight", (e.dim,))
        add(p + "feed_forward.w1.weight", (e.hidden_dim, e.dim), True)
        add(p + "feed_forward.w2.weight", (e.dim, e.hidden_dim), True)
        add(p + "feed_forward.w2.bias", (e.dim,))
        add(p + "feed_forward.w3.weight", (e.hidden_dim, e.dim), True)
    add(ENCODER + "transformer.norm.weight", (e.dim,))
    add(AUDIO + "audio_language_projection.0.weight", (d.dim, e.dim * e.downsample_factor), True)
    add(AUDIO + "audio_language_projection.2.weight", (d.dim, d.dim), True)
    q_dim, kv_dim = d.n_heads * d.head_dim, d.n_kv_heads * d.head_dim
    for j in range(d.n_layers):
        p = f"layers.{j}."
        add(p + "attention_norm.weight", (d.dim,))
        add(p + "ffn_norm.weight", (d.dim,))
        add(p + "attention.wq.weight", (q_dim, d.dim), True)
        add(p + "attention.wk.weight", (kv_dim, d.dim), True)
        add(p + "attention.wv.weight", (kv_dim, d.dim), True)
        add(p + "attention.wo.weight", (d.dim, q_dim), True)
        add(p + "feed_forward.w1.weight", (d.hidden_dim, d.dim), True)
        add(p + "feed_forward.w2.weight", (d.dim, d.hidden_dim), True)
        add(p + "feed_forward.w3.weight", (d.hidden_dim, d.dim), True)
        add(p + "ada_rms_norm_t_cond.0.weight", (d.ada_dim, d.dim), True)
        add(p + "ada_rms_norm_t_cond.2.weight", (d.dim, d.ada_dim), True)
    add("norm.weight", (d.dim,))
    return t


# --- safetensors ---------------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def bf16_to_f32(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(a: np.ndarray) -> np.ndarray:
    """Round to nearest even, as torch does."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """Write float tensors as F32 or BF16 (the dtype of Mistral's released checkpoint)."""
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        data = f32_to_bf16(arr) if dtype == "BF16" else np.ascontiguousarray(arr, dtype=np.float32)
        nbytes = data.nbytes
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + nbytes]}
        blobs.append(data)
        offset += nbytes
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            b.tofile(f)


class SafetensorsFile:
    """Memory-mapped safetensors: tensors are read on demand, never all at once."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = open(path, "rb")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            (n,) = struct.unpack("<Q", self._map[:8])
            if n > len(self._map) - 8:
                raise ValueError("header length runs past the end of the file")
            header = json.loads(bytes(self._map[8 : 8 + n]))
        except (OSError, ValueError, struct.error) as e:
            raise ModelFileError(f"{path}: not a readable safetensors file ({e})") from None
        header.pop("__metadata__", None)
        self._base = 8 + n
        self._entries = header
        for name, h in header.items():
            start, end = h["data_offsets"]
            if h["dtype"] not in _ST_DTYPES:
                raise ModelFileError(f"{path}: tensor {name} has unsupported dtype {h['dtype']}")
            if self._base + end > len(self._map):
                raise ModelFileError(f"{path}: tensor {name} runs past the end of the file (truncated?)")

    def names(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._entries[name]["shape"])

    def dtype(self, name: str) -> str:
        return self._entries[name]["dtype"]

    def f32(self, name: str) -> np.ndarray:
        h = self._entries[name]
        start, end = h["data_offsets"]
        raw = np.frombuffer(self._map, dtype=_ST_DTYPES[h["dtype"]], count=(end - start) // np.dtype(
            _ST_DTYPES[h["dtype"]]).itemsize, offset=self._base + start).reshape(h["shape"])
        return bf16_to_f32(raw) if h["dtype"] == "BF16" else raw.astype(np.float32)


def check_tensors(cfg: ModelConfig, shape_of, names: set[str], where: str) -> None:
    """Fail with one clear message listing missing tensors or wrong shapes."""
    missing, wrong = [], []
    for spec in tensor_table(cfg):
        if spec.name not in names:
            missing.append(spec.name)
        elif tuple(shape_of(spec.name)) != spec.shape:
            wrong.append(f"{spec.name} is {list(shape_of(spec.name))}, expected {list(spec.shape)}")
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise ModelFileError(f"{where}: missing tensors: {', '.join(missing[:3])}{more}")
    if wrong:
        raise ModelFileError(f"{where}: wrong tensor shape: {wrong[0]}")


class OriginalCheckpoint:
    """A folder in Mistral's layout. Weights come back as float32, read lazily."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.config = ModelConfig.from_model_dir(folder / "params.json", folder / "tekken.json")
        st = folder / "consolidated.safetensors"
        if not st.is_file():
            raise ModelFileError(f"{folder}: no consolidated.safetensors")
        self.file = SafetensorsFile(st)
        check_tensors(self.config, self.file.shape, set(self.file.names()), str(st))
        self.tokenizer_path = folder / "tekken.json"

    def f32(self, name: str) -> np.ndarray:
        return self.file.f32(name)

    def q4_0(self, name: str) -> np.ndarray | None:
        return None  # stored as floats; the GPU engine quantises at load time
