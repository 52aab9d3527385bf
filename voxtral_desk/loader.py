"""Open a model from whatever the user has: a GGUF file, a GGUF shard set or folder, or a folder in
Mistral's original layout. Everything is validated here, before an engine touches it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .checkpoint import OriginalCheckpoint, tensor_table
from .config import ModelConfig, ModelFileError
from .gguf_io import GGUFModelFile


@dataclass
class Model:
    source: Path
    config: ModelConfig
    weights: OriginalCheckpoint | GGUFModelFile  # .f32(name), .q4_0(name)
    tokenizer_path: Path

    @property
    def tensor_names(self) -> list[str]:
        return [t.name for t in tensor_table(self.config)]


def load_model(path: Path | str) -> Model:
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelFileError(f"{path}: no such file or folder")
    if path.is_dir() and (path / "consolidated.safetensors").exists():
        ckpt = OriginalCheckpoint(path)
        return Model(path, ckpt.config, ckpt, ckpt.tokenizer_path)
    gguf = GGUFModelFile(path)
    tokenizer = gguf.paths[0].parent / "tekken.json"
    if not tokenizer.is_file():
        raise ModelFileError(f"{gguf.paths[0].parent}: tekken.json (the tokenizer) must lie beside the GGUF file")
    return Model(path, gguf.config, gguf, tokenizer)
