"""Open a model from whatever the user has: a GGUF file, a GGUF shard set or folder, or a folder in
Mistral's original layout. Everything is validated here, before an engine touches it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import OriginalCheckpoint, tensor_table
from .config import ModelConfig, ModelFileError
from .convert import MANIFEST
from .gguf_io import GGUFModelFile, shard_paths

MIXED = "this shard set mixes two conversions or was damaged; convert or import it again"


@dataclass
class Model:
    source: Path
    config: ModelConfig
    weights: OriginalCheckpoint | GGUFModelFile  # .f32(name), .q4_0(name)
    tokenizer_path: Path

    @property
    def tensor_names(self) -> list[str]:
        return [t.name for t in tensor_table(self.config)]


def _is_size(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(shards: list[Path]) -> None:
    """Check the shards against the manifest.json the converter writes beside them, by name and size (cheap,
    unlike hashes), so that a set mixing two conversions is refused before anything is read from it."""
    manifest = shards[0].parent / MANIFEST
    if not manifest.exists():
        return
    again = "convert or import the model again"
    try:
        doc = json.loads(manifest.read_bytes().decode("utf-8"))
    except OSError as e:
        raise ModelFileError(f"{manifest}: cannot be read ({e.strerror}); {again}") from None
    except ValueError as e:  # not UTF-8, or not JSON
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise ModelFileError(f"{manifest}: not valid JSON{where}; {again}") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                              and _is_size(f.get("size")) for f in files):
        raise ModelFileError(f"{manifest}: not a list of model files, each with a name and a size; {again}")
    listed = {f["name"]: f["size"] for f in files if f["name"].endswith(".gguf")}
    for shard in shards:
        if shard.name not in listed:
            raise ModelFileError(f"{shard}: not listed in {MANIFEST} beside it: {MIXED}")
        if (size := shard.stat().st_size) != listed[shard.name]:
            raise ModelFileError(f"{shard}: {size} bytes, the manifest says {listed[shard.name]}: {MIXED}")
    if extra := sorted(set(listed) - {s.name for s in shards}):
        raise ModelFileError(f"{manifest}: lists {', '.join(extra)}, which {'is' if len(extra) == 1 else 'are'} "
                             f"not part of this shard set: {MIXED}")


def load_model(path: Path | str) -> Model:
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(f"{path}: no such file or folder")
    if path.is_dir() and (path / "consolidated.safetensors").exists():
        ckpt = OriginalCheckpoint(path)
        return Model(path, ckpt.config, ckpt, ckpt.tokenizer_path)
    check_manifest(shard_paths(path))
    gguf = GGUFModelFile(path)
    tokenizer = gguf.paths[0].parent / "tekken.json"
    if not tokenizer.is_file():
        raise ModelFileError(f"{gguf.paths[0].parent}: tekken.json (the tokenizer) must lie beside the GGUF file")
    return Model(path, gguf.config, gguf, tokenizer)
