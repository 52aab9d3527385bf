"""The model's tensors: their names (typed per layer), the table of names and shapes (MODEL.md §1), and
Mistral's original layout (`consolidated.safetensors` + `params.json` + `tekken.json`), read memory-mapped.

safetensors is small enough to read by hand, and the `safetensors` package cannot hand bf16 to numpy.
"""
from __future__ import annotations

import json
import math
import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType

from .config import ModelConfig, ModelFileError

AUDIO = "mm_streams_embeddings.embedding_module."
ENCODER = AUDIO + "whisper_encoder."
ENCODER_LAYERS = ENCODER + "transformer.layers."  # + "{i}." + the layer's tensor
DECODER_LAYERS = "layers."
TOKEN_EMBEDDINGS = AUDIO + "tok_embeddings.weight"  # [vocab, D], also the decoder's head (tied)
FINAL_NORM = "norm.weight"  # the decoder's last RMSNorm, before the head
ENCODER_KEY = "multimodal.whisper_model_args.encoder_args."  # where params.json keeps the encoder's settings


def file_truncated(path: Path, size: int, expected: int) -> ModelFileError:
    return ModelFileError(f"{path}: the file is truncated: it has {size} bytes, at least {expected} expected "
                          "(damaged or incompletely downloaded)")


def file_damaged(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: the file is damaged: {problem}; download, convert or import the model again")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # PyTorch order: [out, in] for linear weights
    quantize: bool  # a big matrix: stored as Q4_0 in our GGUF (MODEL.md §9.1); F32 otherwise


@dataclass(frozen=True)
class AudioTensors:
    """The audio side's tensors outside the encoder layers: the causal conv stem, the encoder's final norm
    and the adapter (Linear, GELU, Linear)."""

    conv0: str = ENCODER + "conv_layers.0.conv.weight"  # [De, n_mels, 3]
    conv0_bias: str = ENCODER + "conv_layers.0.conv.bias"
    conv1: str = ENCODER + "conv_layers.1.conv.weight"  # [De, De, 3], stride 2
    conv1_bias: str = ENCODER + "conv_layers.1.conv.bias"
    encoder_norm: str = ENCODER + "transformer.norm.weight"
    adapter_in: str = AUDIO + "audio_language_projection.0.weight"  # [D, De * downsample_factor]
    adapter_out: str = AUDIO + "audio_language_projection.2.weight"  # [D, D]


AUDIO_TENSORS = AudioTensors()


@dataclass(frozen=True)
class EncoderLayer:
    """The tensors of one encoder layer (wk has no bias)."""

    attn_norm: str
    wq: str
    wq_bias: str
    wk: str
    wv: str
    wv_bias: str
    wo: str
    wo_bias: str
    ffn_norm: str
    w1: str  # SwiGLU gate
    w2: str  # down
    w2_bias: str
    w3: str  # SwiGLU up

    @classmethod
    def of(cls, i: int) -> EncoderLayer:
        p = f"{ENCODER_LAYERS}{i}."
        return cls(attn_norm=p + "attention_norm.weight", wq=p + "attention.wq.weight", wq_bias=p + "attention.wq.bias",
                   wk=p + "attention.wk.weight", wv=p + "attention.wv.weight", wv_bias=p + "attention.wv.bias",
                   wo=p + "attention.wo.weight", wo_bias=p + "attention.wo.bias", ffn_norm=p + "ffn_norm.weight",
                   w1=p + "feed_forward.w1.weight", w2=p + "feed_forward.w2.weight",
                   w2_bias=p + "feed_forward.w2.bias", w3=p + "feed_forward.w3.weight")


@dataclass(frozen=True)
class DecoderLayer:
    """The tensors of one decoder layer (no biases)."""

    attn_norm: str
    ffn_norm: str
    wq: str
    wk: str
    wv: str
    wo: str
    w1: str  # SwiGLU gate
    w2: str  # down
    w3: str  # SwiGLU up
    ada_down: str  # the ada-norm's time conditioning: Linear [ada_dim, D], GELU,
    ada_up: str  # Linear [D, ada_dim]

    @classmethod
    def of(cls, j: int) -> DecoderLayer:
        p = f"{DECODER_LAYERS}{j}."
        return cls(attn_norm=p + "attention_norm.weight", ffn_norm=p + "ffn_norm.weight", wq=p + "attention.wq.weight",
                   wk=p + "attention.wk.weight", wv=p + "attention.wv.weight", wo=p + "attention.wo.weight",
                   w1=p + "feed_forward.w1.weight", w2=p + "feed_forward.w2.weight", w3=p + "feed_forward.w3.weight",
                   ada_down=p + "ada_rms_norm_t_cond.0.weight", ada_up=p + "ada_rms_norm_t_cond.2.weight")


def encoder_layers(cfg: ModelConfig) -> list[EncoderLayer]:
    return [EncoderLayer.of(i) for i in range(cfg.encoder.n_layers)]


def decoder_layers(cfg: ModelConfig) -> list[DecoderLayer]:
    return [DecoderLayer.of(j) for j in range(cfg.decoder.n_layers)]


def tensor_table(cfg: ModelConfig) -> list[TensorSpec]:
    """Every tensor of the checkpoint, in file order, with the shape the config implies."""
    e, d = cfg.encoder, cfg.decoder
    a = AUDIO_TENSORS
    t: list[TensorSpec] = []

    def add(name, shape, quantize=False):
        t.append(TensorSpec(name, tuple(shape), quantize))

    add(TOKEN_EMBEDDINGS, (d.vocab_size, d.dim), True)
    add(a.conv0, (e.dim, e.n_mels, 3))
    add(a.conv0_bias, (e.dim,))
    add(a.conv1, (e.dim, e.dim, 3))
    add(a.conv1_bias, (e.dim,))
    q_dim, kv_dim = e.n_heads * e.head_dim, e.n_kv_heads * e.head_dim
    for L in encoder_layers(cfg):
        add(L.wq, (q_dim, e.dim), True)
        add(L.wq_bias, (q_dim,))
        add(L.wk, (kv_dim, e.dim), True)
        add(L.wv, (kv_dim, e.dim), True)
        add(L.wv_bias, (kv_dim,))
        add(L.wo, (e.dim, q_dim), True)
        add(L.wo_bias, (e.dim,))
        add(L.attn_norm, (e.dim,))
        add(L.ffn_norm, (e.dim,))
        add(L.w1, (e.hidden_dim, e.dim), True)
        add(L.w2, (e.dim, e.hidden_dim), True)
        add(L.w2_bias, (e.dim,))
        add(L.w3, (e.hidden_dim, e.dim), True)
    add(a.encoder_norm, (e.dim,))
    add(a.adapter_in, (d.dim, e.dim * e.downsample_factor), True)
    add(a.adapter_out, (d.dim, d.dim), True)
    q_dim, kv_dim = d.n_heads * d.head_dim, d.n_kv_heads * d.head_dim
    for L in decoder_layers(cfg):
        add(L.attn_norm, (d.dim,))
        add(L.ffn_norm, (d.dim,))
        add(L.wq, (q_dim, d.dim), True)
        add(L.wk, (kv_dim, d.dim), True)
        add(L.wv, (kv_dim, d.dim), True)
        add(L.wo, (d.dim, q_dim), True)
        add(L.w1, (d.hidden_dim, d.dim), True)
        add(L.w2, (d.dim, d.hidden_dim), True)
        add(L.w3, (d.hidden_dim, d.dim), True)
        add(L.ada_down, (d.ada_dim, d.dim), True)
        add(L.ada_up, (d.dim, d.ada_dim), True)
    add(FINAL_NORM, (d.dim,))
    return t


# --- safetensors ---------------------------------------------------------------------------------

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
MAX_HEADER_BYTES = 100 << 20  # the safetensors library's own limit: a longer header is damage


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


def _counts(value) -> bool:
    """A JSON list of whole numbers >= 0 (a shape or a data range)."""
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


class SafetensorsFile:
    """Memory-mapped safetensors: tensors are read on demand, never all at once. The whole header is checked
    on opening: dtypes, shapes against byte ranges, ranges inside the file and not overlapping."""

    def __init__(self, path: Path):
        self.path = path
        try:
            size = path.stat().st_size
            if size < 8:
                raise ModelFileError(f"{path}: only {size} bytes, too short to be a safetensors file")
            with open(path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise ModelFileError(f"{path}: cannot be read ({e.strerror})") from None
        (n,) = struct.unpack_from("<Q", self._map, 0)
        if n > MAX_HEADER_BYTES:
            raise file_damaged(path, f"its header claims {n} bytes")
        if 8 + n > size:
            raise file_truncated(path, size, 8 + n)
        try:
            header = json.loads(bytes(self._map[8 : 8 + n]))
        except ValueError:  # not UTF-8 or not JSON
            raise file_damaged(path, "its header is not valid JSON") from None
        if not isinstance(header, dict):
            raise file_damaged(path, "its header is not a JSON object")
        header.pop("__metadata__", None)
        self._base = 8 + n
        self._entries = {name: self._entry(name, h) for name, h in header.items()}
        self._check_ranges(size)

    def _entry(self, name: str, h) -> tuple[str, tuple[int, ...], int, int]:
        """(dtype, shape, start, end) of one header entry, each checked against the others."""
        if not isinstance(h, dict):
            raise file_damaged(self.path, f"the header entry of tensor {name} is not a JSON object")
        dtype, shape, offsets = h.get("dtype"), h.get("shape"), h.get("data_offsets")
        if dtype not in _ST_DTYPES:
            raise ModelFileError(f"{self.path}: tensor {name} has unsupported dtype {dtype}; "
                                 f"only {', '.join(_ST_DTYPES)} are supported")
        if not _counts(shape) or not _counts(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise file_damaged(self.path, f"tensor {name} has a malformed shape or data range")
        need = math.prod(shape) * np.dtype(_ST_DTYPES[dtype]).itemsize
        if offsets[1] - offsets[0] != need:
            raise file_damaged(self.path, f"tensor {name} holds {offsets[1] - offsets[0]} bytes, "
                               f"but its shape {shape} in {dtype} needs {need}")
        return dtype, tuple(shape), offsets[0], offsets[1]

    def _check_ranges(self, size: int) -> None:
        ranges = sorted((start, end, name) for name, (_, _, start, end) in self._entries.items() if end > start)
        reach, holder = 0, ""  # the furthest end so far, and whose it is
        for start, end, name in ranges:
            if start < reach:
                raise file_damaged(self.path, f"the data of tensors {holder} and {name} overlap")
            reach, holder = end, name
        if self._base + reach > size:
            raise file_truncated(self.path, size, self._base + reach)

    def names(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entries[name][1]

    def dtype(self, name: str) -> str:
        return self._entries[name][0]

    def f32(self, name: str) -> np.ndarray:
        dtype, shape, start, end = self._entries[name]
        np_dtype = _ST_DTYPES[dtype]
        raw = np.frombuffer(self._map, dtype=np_dtype, count=(end - start) // np.dtype(np_dtype).itemsize,
                            offset=self._base + start).reshape(shape)
        return bf16_to_f32(raw) if dtype == "BF16" else raw.astype(np.float32)


def _layers_present(names: set[str], prefix: str) -> int:
    found = {int(m.group(1)) for n in names if (m := re.match(re.escape(prefix) + r"(\d+)\.", n))}
    return max(found) + 1 if found else 0


def check_tensors(cfg: ModelConfig, shape_of, names: set[str], where: str) -> None:
    """Fail with one clear message: a layer count that disagrees with the settings, missing tensors or
    wrong shapes."""
    for prefix, key, n_layers, part in ((ENCODER_LAYERS, ENCODER_KEY + "n_layers", cfg.encoder.n_layers, "encoder"),
                                        (DECODER_LAYERS, "n_layers", cfg.decoder.n_layers, "decoder")):
        present = _layers_present(names, prefix)
        if present != n_layers:
            raise ModelFileError(f"{where}: holds {present} {part} layers, but the model settings say {key} is "
                                 f"{n_layers}: the settings and the weights are not of the same model")
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


def check_finite(cfg: ModelConfig, f32, file_of) -> None:
    """Norms, biases and the conv stem (everything but the big matrices, a few MB) must be finite: one NaN
    there turns every output into garbage."""
    for spec in tensor_table(cfg):
        if not spec.quantize and not np.isfinite(f32(spec.name)).all():
            raise file_damaged(file_of(spec.name), f"tensor {spec.name} holds NaN or infinite values")


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
        check_finite(self.config, self.file.f32, lambda name: st)
        self.tokenizer_path = folder / "tekken.json"

    def f32(self, name: str) -> np.ndarray:
        return self.file.f32(name)

    def q4_0(self, name: str) -> np.ndarray | None:
        return None  # stored as floats; the GPU engine quantises at load time

    def raw(self, name: str) -> tuple[GGMLQuantizationType, np.ndarray]:
        """The tensor as the engines get it from this layout: float32 (bf16 and f16 are widened)."""
        return GGMLQuantizationType.F32, self.file.f32(name)
