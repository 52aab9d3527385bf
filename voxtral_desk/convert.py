"""Mistral's original checkpoint -> Q4_0 GGUF shards (gguf-py's writer, llama.cpp's split naming), with
a manifest of file names, sizes and SHA-256. Tensors are converted one at a time: memory stays at one
tensor, however large the model."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

from .checkpoint import OriginalCheckpoint, TensorSpec, tensor_table
from .config import ModelConfig
from .gguf_io import ARCH, KEY_PARAMS, KEY_TEKKEN_AUDIO
from .quant import BLOCK, BLOCK_BYTES, quantize_q4_0

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
MANIFEST = "manifest.json"
HEADER_BASE, HEADER_PER_TENSOR = 64 << 10, 256  # room for a shard's header inside its size limit


def stored_nbytes(spec: TensorSpec) -> int:
    n = int(np.prod(spec.shape))
    return n // BLOCK * BLOCK_BYTES if spec.quantize else n * 4


def write_gguf(out_path: Path, cfg: ModelConfig, tensors: Iterable[tuple[TensorSpec, np.ndarray]],
               name: str, shard_bytes: int | None, progress: Progress | None = None) -> list[Path]:
    """Write the tensors (float arrays, or Q4_0 bytes already made for quantised specs) in table order.
    Returns the files written. Nothing is left half-written under the final names on failure."""
    specs = tensor_table(cfg)
    split = 0
    if shard_bytes:
        # Tensor data of a shard, less its header and the 32-byte alignment padding of each tensor.
        split = shard_bytes - HEADER_BASE - (HEADER_PER_TENSOR + 32) * len(specs)
        largest = max(stored_nbytes(s) for s in specs)
        if split < largest:
            need = (largest + shard_bytes - split) / 2**20
            raise ValueError(f"shard size too small: the largest tensor alone needs {need:.1f} MiB")
    tmp_dir = out_path.parent / f".{out_path.name}.partial"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        writer = GGUFWriter(tmp_dir / out_path.name, arch=ARCH, split_max_size=split)
        writer.add_name(name)
        writer.add_string(KEY_PARAMS, json.dumps(cfg.params))
        writer.add_string(KEY_TEKKEN_AUDIO, json.dumps(cfg.tekken_audio))
        writer.add_file_type(2)  # MOSTLY_Q4_0
        for s in specs:
            nbytes = stored_nbytes(s)
            if s.quantize:
                writer.add_tensor_info(s.name, (s.shape[0], nbytes // s.shape[0]), np.dtype(np.uint8), nbytes,
                                       raw_dtype=GGMLQuantizationType.Q4_0)
            else:
                writer.add_tensor_info(s.name, s.shape, np.dtype(np.float32), nbytes)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        total, done = sum(stored_nbytes(s) for s in specs), 0
        for spec, arr in tensors:
            if spec.quantize and arr.dtype != np.uint8:
                arr = quantize_q4_0(arr.reshape(spec.shape[0], -1))
            elif not spec.quantize:
                arr = np.ascontiguousarray(arr, dtype=np.float32)
            writer.write_tensor_data(arr)
            done += arr.nbytes
            if progress:
                progress(done, total)
        writer.close()
        written = sorted(tmp_dir.glob("*.gguf"))
        for f in written:
            if shard_bytes and f.stat().st_size > shard_bytes:
                raise RuntimeError(f"{f.name} is {f.stat().st_size} bytes, over the {shard_bytes}-byte shard limit")
        final = []
        for f in written:
            target = out_path.parent / f.name
            f.replace(target)
            final.append(target)
        return final
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, files: list[Path], name: str) -> Path:
    entries = [{"name": f.name, "size": f.stat().st_size, "sha256": sha256_file(f)} for f in files]
    path = folder / MANIFEST
    path.write_text(json.dumps({"model": name, "format": "gguf", "files": entries}, indent=2) + "\n")
    return path


def output_path(out: Path, name: str) -> Path:
    """OUT may be a folder (created) or a .gguf file name."""
    if out.suffix == ".gguf":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{name}.gguf"


def convert_checkpoint(src: Path, out: Path, shard_bytes: int | None = 512 * 2**20,
                       progress: Progress | None = None) -> list[Path]:
    """Convert an original-layout folder. Returns the GGUF files, tekken.json and the manifest."""
    ckpt = OriginalCheckpoint(src)
    name = src.resolve().name
    target = output_path(out, name)
    tensors = ((spec, ckpt.f32(spec.name)) for spec in tensor_table(ckpt.config))
    files = write_gguf(target, ckpt.config, tensors, name, shard_bytes, progress)
    tekken = target.parent / "tekken.json"
    if tekken.resolve() != ckpt.tokenizer_path.resolve():
        shutil.copyfile(ckpt.tokenizer_path, tekken)
    files.append(tekken)
    files.append(write_manifest(target.parent, files, name))
    return files
