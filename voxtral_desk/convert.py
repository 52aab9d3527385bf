"""Mistral's original checkpoint -> Q4_0 GGUF shards (gguf-py's writer, llama.cpp's split naming), with
a manifest of file names, sizes and SHA-256. Tensors are converted one at a time: memory stays at one
tensor, however large the model.

The files are written into a hidden folder beside the output (`.NAME.convert/new/`) and swapped in whole
once complete: `swap.json` marks the new set complete, then the old set (the output's GGUF files under any
shard count, and files of the same names as the new ones) is deleted and the new files moved in, tekken.json
first and manifest.json last. Old and new files are never in the folder together, so a run killed at any
point leaves the old set, the new one, or an incomplete set that does not open; the next run into that
folder finishes a swap that was marked complete and deletes anything else its killed predecessor left."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter

from .checkpoint import OriginalCheckpoint, TensorSpec, tensor_table
from .config import ModelConfig
from .fileio import sha256_file, write_json_atomic
from .gguf_io import ARCH, KEY_PARAMS, KEY_TEKKEN_AUDIO, SHARD_RE
from .quant import BLOCK, BLOCK_BYTES, quantize_q4_0

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
MANIFEST = "manifest.json"
SWAP = "swap.json"  # in the hidden folder: the new set is complete and goes in
HEADER_BASE, HEADER_PER_TENSOR = 64 << 10, 256  # room for a shard's header inside its size limit


def stored_nbytes(spec: TensorSpec) -> int:
    n = int(np.prod(spec.shape))
    return n // BLOCK * BLOCK_BYTES if spec.quantize else n * 4


def write_gguf(out_path: Path, cfg: ModelConfig, tensors: Iterable[tuple[TensorSpec, np.ndarray]],
               name: str, shard_bytes: int | None, progress: Progress | None = None) -> list[Path]:
    """Write the tensors (float arrays, or Q4_0 bytes already made for quantised specs) in table order.
    Returns the files written. They replace an earlier conversion to `out_path` whole (see above)."""
    new = _begin(out_path)
    try:
        files = _write_shards(new / out_path.name, cfg, tensors, name, shard_bytes, progress)
    except BaseException:
        shutil.rmtree(new.parent, ignore_errors=True)
        raise
    return _swap_in(new, out_path, [f.name for f in files])


def _write_shards(out_path: Path, cfg: ModelConfig, tensors: Iterable[tuple[TensorSpec, np.ndarray]],
                  name: str, shard_bytes: int | None, progress: Progress | None) -> list[Path]:
    specs = tensor_table(cfg)
    split = 0
    if shard_bytes:
        # Tensor data of a shard, less its header and the 32-byte alignment padding of each tensor.
        split = shard_bytes - HEADER_BASE - (HEADER_PER_TENSOR + 32) * len(specs)
        largest = max(stored_nbytes(s) for s in specs)
        if split < largest:
            need = (largest + shard_bytes - split) / 2**20
            raise ValueError(f"shard size too small: the largest tensor alone needs {need:.1f} MiB")
    writer = GGUFWriter(out_path, arch=ARCH, split_max_size=split)
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
    written = sorted(out_path.parent.glob("*.gguf"))
    for f in written:
        if shard_bytes and f.stat().st_size > shard_bytes:
            raise RuntimeError(f"{f.name} is {f.stat().st_size} bytes, over the {shard_bytes}-byte shard limit")
    return written


def _hidden(out_path: Path) -> Path:
    return out_path.parent / f".{out_path.stem}.convert"


def _begin(out_path: Path) -> Path:
    """An empty folder for the new files, beside `out_path`, once what a killed run left there is dealt with."""
    hidden = _hidden(out_path)
    if hidden.exists():
        try:
            count = json.loads((hidden / SWAP).read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, TypeError, KeyError):
            count = None  # not marked complete: the old set was never touched
        if type(count) is int:
            _finish_swap(hidden, out_path, count)
        shutil.rmtree(hidden)
    (hidden / "new").mkdir(parents=True)
    return hidden / "new"


def _swap_in(new: Path, out_path: Path, names: list[str]) -> list[Path]:
    """Replace the earlier conversion to `out_path` with the complete set of files in `new`."""
    write_json_atomic(new.parent / SWAP, {"files": len(names)})  # from here on, the new set goes in
    _finish_swap(new.parent, out_path, len(names))
    shutil.rmtree(new.parent)
    return [out_path.parent / n for n in names]


def _finish_swap(hidden: Path, out_path: Path, count: int) -> None:
    """Delete the old set (unless new files are already in), then move the new files that are not yet in."""
    folder, new = out_path.parent, hidden / "new"
    waiting = list(new.iterdir()) if new.is_dir() else []
    if len(waiting) == count:  # nothing moved yet: the old set may still be there, and goes first
        replaced = {p.name for p in waiting}
        for p in folder.iterdir():
            m = SHARD_RE.match(p.name)
            ours = p.name == out_path.name or (m is not None and m.group("stem") == out_path.stem)
            if p.is_file() and (ours or p.name in replaced):
                p.unlink()
    # tekken.json first, manifest.json last: the manifest only appears beside the files it lists.
    for p in sorted(waiting, key=lambda p: (p.name == MANIFEST, p.suffix == ".gguf", p.name)):
        os.replace(p, folder / p.name)
    (hidden / SWAP).unlink()  # done: what is left of the hidden folder is only to be deleted


def write_manifest(folder: Path, files: list[Path], name: str) -> Path:
    entries = [{"name": f.name, "size": f.stat().st_size, "sha256": sha256_file(f)} for f in files]
    return write_json_atomic(folder / MANIFEST, {"model": name, "format": "gguf", "files": entries})


def output_path(out: Path, name: str) -> Path:
    """OUT may be a folder (created) or a .gguf file name."""
    if out.suffix == ".gguf":
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{name}.gguf"


def convert_checkpoint(src: Path, out: Path, shard_bytes: int | None = 512 * 2**20,
                       progress: Progress | None = None) -> list[Path]:
    """Convert an original-layout folder. Returns the GGUF files, tekken.json and the manifest. They replace
    an earlier conversion into the same place whole (see above)."""
    ckpt = OriginalCheckpoint(src)
    name = src.resolve().name
    target = output_path(out, name)
    tekken = target.parent / "tekken.json"
    new = _begin(target)
    try:
        tensors = ((spec, ckpt.f32(spec.name)) for spec in tensor_table(ckpt.config))
        ggufs = _write_shards(new / target.name, ckpt.config, tensors, name, shard_bytes, progress)
        copied = tekken.resolve() != ckpt.tokenizer_path.resolve()  # converted in place: the source's own stays
        if copied:
            shutil.copyfile(ckpt.tokenizer_path, new / tekken.name)
        write_manifest(new, ggufs + [new / tekken.name if copied else tekken], name)
    except BaseException:
        shutil.rmtree(new.parent, ignore_errors=True)
        raise
    placed = _swap_in(new, target, [f.name for f in ggufs] + ([tekken.name] if copied else []) + [MANIFEST])
    return placed[:len(ggufs)] + [tekken, target.parent / MANIFEST]
