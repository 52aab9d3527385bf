"""The catalog of downloadable models: a JSON data file shipped in the package
(`voxtral_desk/catalog/models.json`), read and checked here. Each model lists its files with where to
get them (a Hugging Face repository + revision + path, or a plain URL), and the size and SHA-256 where
they are known; what is not pinned is verified against the hash the server publishes (see download.py).
Every name that becomes a file is a plain file name, so a catalog can never write outside its model's folder."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from .errors import CatalogError

CATALOG_ENV = "VOXTRAL_DESK_CATALOG"  # a catalog file to use instead of the packaged one
HF_ENDPOINT_ENV = "HF_ENDPOINT"  # a Hugging Face mirror, as huggingface_hub honours it
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
POST_STEPS = (None, "join", "convert")
RECORD = "voxtral-model.json"  # the record of an installed model (layout.py): no catalog file may be named so


@dataclass(frozen=True)
class CatalogFile:
    name: str  # the file name on disk
    url: str | None = None  # a plain URL, or:
    repo: str | None = None  # a Hugging Face repository "owner/name"
    revision: str = "main"  # branch, tag or commit
    path: str | None = None  # the file's path in the repository
    size: int | None = None
    sha256: str | None = None

    def resolve_url(self, endpoint: str | None = None, revision: str | None = None) -> str:
        """The download URL. `revision` overrides the catalog's (a branch resolved to its commit)."""
        if self.url:
            return self.url
        base = (endpoint or os.environ.get(HF_ENDPOINT_ENV) or HF_DEFAULT_ENDPOINT).rstrip("/")
        rev = quote(revision or self.revision, safe="")
        return f"{base}/{self.repo}/resolve/{rev}/{quote(self.path or self.name)}"

    @property
    def revision_is_commit(self) -> bool:
        return bool(COMMIT_RE.match(self.revision))


@dataclass(frozen=True)
class CatalogModel:
    name: str
    title: str
    description: str
    files: tuple[CatalogFile, ...]
    default: bool = False
    approx_size: int | None = None  # installed size, for display before sizes are known
    homepage: str = ""
    license: str = ""
    post: str | None = None  # None, "join" (byte-split GGUF) or "convert" (original checkpoint)
    join_output: str | None = None
    join_parts: tuple[str, ...] = ()
    convert_output_size: int | None = None
    convert_shard_mb: int = 512
    params: dict | None = field(default=None, compare=False)  # params.json to write beside the model

    def file(self, name: str) -> CatalogFile:
        return next(f for f in self.files if f.name == name)


@dataclass
class Catalog:
    models: list[CatalogModel]
    source: str = ""

    def get(self, name: str) -> CatalogModel | None:
        return next((m for m in self.models if m.name == name), None)

    def names(self) -> list[str]:
        return [m.name for m in self.models]


def _bad(source: str, what: str) -> CatalogError:
    return CatalogError(f"model catalog {source}: {what}")


def _count(value) -> bool:
    """A byte count or whole number (JSON true/false are not numbers here)."""
    return type(value) is int and value >= 0


def _parse_file(source: str, model: str, raw: dict) -> CatalogFile:
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(raw, dict):
        raise _bad(source, f"model {model!r}: 'files' must be a list of files, each an object with a name")
    where = f"model {model!r}, file {name!r}"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise _bad(source, f"{where}: a file needs a plain file name")
    if name == RECORD:
        raise _bad(source, f"{where}: that name is reserved for the installed model's record")
    if bool(raw.get("url")) == bool(raw.get("repo")):
        raise _bad(source, f"{where}: give either 'url' or 'repo' (+ 'revision', 'path')")
    url = raw.get("url")
    if url and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        raise _bad(source, f"{where}: the url must start with https:// or http://")
    for key in ("repo", "revision", "path"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            raise _bad(source, f"{where}: {key!r} must be a string")
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not SHA256_RE.match(sha.lower())):
        raise _bad(source, f"{where}: sha256 must be 64 hex digits or null")
    size = raw.get("size")
    if size is not None and not _count(size):
        raise _bad(source, f"{where}: size must be a byte count or null")
    return CatalogFile(name=name, url=url, repo=raw.get("repo"), revision=raw.get("revision") or "main",
                       path=raw.get("path"), size=size, sha256=sha.lower() if sha else None)


def parse_catalog(data: dict, source: str = "<memory>") -> Catalog:
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise _bad(source, "no 'models' list")
    by_name: dict[str, dict] = {}
    models = []
    for raw in data["models"]:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _bad(source, f"bad model name {name!r}")
        if name in by_name:
            raise _bad(source, f"model {name!r} is listed twice")
        by_name[name] = raw
        if not isinstance(raw.get("files", []), list):
            raise _bad(source, f"model {name!r}: 'files' must be a list of files, each an object with a name")
        files = tuple(_parse_file(source, name, f) for f in raw.get("files", []))
        if not files:
            raise _bad(source, f"model {name!r} has no files")
        if len({f.name for f in files}) != len(files):
            raise _bad(source, f"model {name!r} lists a file name twice")
        post = raw.get("post")
        if post not in POST_STEPS:
            raise _bad(source, f"model {name!r}: unknown post step {post!r}")
        join, convert = raw.get("join") or {}, raw.get("convert") or {}
        for key, value in (("join", join), ("convert", convert)):
            if not isinstance(value, dict):
                raise _bad(source, f"model {name!r}: {key!r} must be an object")
        if post == "join":
            parts, output = join.get("parts"), join.get("output")
            if (not isinstance(parts, list) or not parts or not set(parts) <= {f.name for f in files}
                    or not isinstance(output, str)):
                raise _bad(source, f"model {name!r}: 'join' needs an output .gguf name and parts that are listed files")
            # The joined file is written into the model's folder under this name: never a path.
            if not NAME_RE.match(output) or not output.endswith(".gguf"):
                raise _bad(source, f"model {name!r}: the join output {output!r} must be a plain file name ending in "
                                   ".gguf")
        params = raw.get("params")
        if "params_from" in raw:
            ref = by_name.get(raw["params_from"]) if isinstance(raw["params_from"], str) else None
            if ref is None or "params" not in ref:
                raise _bad(source, f"model {name!r}: params_from names no earlier model with params")
            params = ref["params"]
        if params is not None and not isinstance(params, dict):
            raise _bad(source, f"model {name!r}: 'params' must be an object (the model's params.json)")
        if post == "convert" and "consolidated.safetensors" not in {f.name for f in files}:
            raise _bad(source, f"model {name!r}: 'convert' needs consolidated.safetensors among its files")
        for key, value in (("approx_size", raw.get("approx_size")),
                           ("convert.approx_output_size", convert.get("approx_output_size"))):
            if value is not None and not _count(value):
                raise _bad(source, f"model {name!r}: {key} must be a byte count or null")
        shard_mb = convert.get("shard_size_mb", 512)
        if not _count(shard_mb):
            raise _bad(source, f"model {name!r}: convert.shard_size_mb must be a whole number of MiB")
        models.append(CatalogModel(
            name=name, title=str(raw.get("title", name)), description=str(raw.get("description", "")),
            files=files, default=bool(raw.get("default", False)), approx_size=raw.get("approx_size"),
            homepage=str(raw.get("homepage", "")), license=str(raw.get("license", "")), post=post,
            join_output=join.get("output"), join_parts=tuple(join.get("parts", ())),
            convert_output_size=convert.get("approx_output_size"), convert_shard_mb=shard_mb, params=params))
    # The default model comes first, so lists and "the model to use" agree.
    models.sort(key=lambda m: not m.default)
    return Catalog(models, source)


def load_catalog(path: Path | str | None = None) -> Catalog:
    """The packaged catalog, or `path`, or the file named by $VOXTRAL_DESK_CATALOG."""
    path = path or os.environ.get(CATALOG_ENV)
    try:
        if path:
            text, source = Path(path).expanduser().read_text(encoding="utf-8"), str(path)
        else:
            ref = resources.files("voxtral_desk").joinpath("catalog", "models.json")
            text, source = ref.read_text(encoding="utf-8"), "(built in)"
    except OSError as e:
        raise CatalogError(f"cannot read the model catalog {path or '(built in)'}: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise _bad(source, f"not valid JSON: {e}") from None
    return parse_catalog(data, source)
