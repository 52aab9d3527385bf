"""Getting a model into the models folder (layout.py): a download from the catalog (plan, fetch, then join
or convert), or an import of what the user has (copy, join of byte-split parts, or conversion of an original
checkpoint). The model is assembled beside the installed ones and swapped in whole, its record written last.
ModelStore.download, import_path and repair run these."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ModelFileError
from ..fileio import sha256_file, write_json_atomic
from .catalog import COMMIT_RE, RECORD, Catalog, CatalogFile, CatalogModel
from .download import RetryPolicy, download_file, probe
from .errors import DiskFull, DownloadError, StoreError, UnusableModel
from .jobs import Control, ProgressTracker, human_bytes
from .layout import PARTIAL, ModelLock, check_name, disk_error, free_bytes, partial_dir, read_json, stamp

if TYPE_CHECKING:  # the store calls in here; only its type is needed
    from .store import InstalledModel, ModelStore

SPACE_MARGIN = 64 << 20  # room left for everything else
COPY_BLOCK = 4 << 20
BYTE_SPLIT_RE = re.compile(r"^shard-[a-z]{2}$")  # `split -b 512m FILE shard-`


@dataclass
class _Planned:
    file: CatalogFile
    url: str
    sha256: str
    size: int | None
    hash_source: str
    commit: str | None


# --- download -------------------------------------------------------------------------------------

def _entry(catalog: Catalog, name: str) -> CatalogModel:
    entry = catalog.get(name)
    if entry is None:
        known = ", ".join(catalog.names()) or "none"
        raise StoreError(f"no model named {name!r} in the catalog (available: {known})")
    return entry


def download(store: ModelStore, name: str, progress, control: Control, force: bool) -> InstalledModel:
    """ModelStore.download: fetch, verify, assemble and install a catalog model, resuming what an earlier run left."""
    entry = _entry(store.catalog, name)
    existing = store.find(name)
    if existing and existing.verified and not force:
        return existing
    work = partial_dir(store.root, name)
    with ModelLock(store.root, name, f"a download of {name}"):
        try:
            (work / "files").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise disk_error(e, work / "files") from None
        tracker = ProgressTracker(progress)
        try:
            plan = _plan(entry, work, store.endpoint, store.policy, control, tracker)
            _check_space_for_download(store.root, entry, plan, work / "files")
            _fetch_all(plan, work / "files", store.policy, control, tracker)
        except BaseException:
            if not any((work / "files").iterdir()):
                shutil.rmtree(work, ignore_errors=True)  # nothing worth keeping for a resume
            raise
        model_dir = work / "model"
        try:
            known = _assemble(entry, store.catalog, plan, work / "files", model_dir, control, tracker)
            origin = entry.homepage or plan[0].url
            record = _record(name, entry.title, "catalog", origin, model_dir, known, control,
                             downloads=[{"name": p.file.name, "url": p.url, "sha256": p.sha256,
                                         "hash_source": p.hash_source, "commit": p.commit} for p in plan])
            _install(store.root, model_dir, name, record, work)
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        tracker.start("done", None, name)
    return store.find(name)


def _plan(entry: CatalogModel, work: Path, endpoint: str | None, policy: RetryPolicy, control: Control,
          tracker: ProgressTracker) -> list[_Planned]:
    """Decide URL, expected SHA-256 and size of every file: the catalog's pins, checked against what
    the server publishes; a branch is resolved to one commit so all files come from the same one.
    What was decided is kept in state.json, so a resumed download fetches the same files."""
    state_path = work / "state.json"
    state = read_json(state_path) or {}
    commits: dict = state.setdefault("commits", {})
    decided: dict = state.setdefault("files", {})
    plan = []
    for i, f in enumerate(entry.files):
        tracker.start("checking", None, f.name)
        tracker.set_note(f"file {i + 1} of {len(entry.files)}")
        source = f"{f.url or f.repo}@{f.revision}:{f.path}:{f.sha256}"  # what the catalog asked for
        prior = decided.get(f.name)
        if prior and prior.get("source") == source and prior.get("sha256"):
            plan.append(_Planned(f, prior["url"], prior["sha256"], prior.get("size"), prior["hash_source"],
                                 prior.get("commit")))
            continue
        key = f"{f.repo}@{f.revision}"
        commit = f.revision if f.revision_is_commit else commits.get(key) if f.repo else None
        url = f.resolve_url(endpoint, commit)
        info = probe(url, f.name, policy, control)
        if f.repo and not commit and info.commit and COMMIT_RE.match(info.commit):
            commit = commits[key] = info.commit
            url = f.resolve_url(endpoint, commit)
        if f.sha256 and info.sha256 and f.sha256 != info.sha256:
            raise DownloadError(
                f"{f.name}: the server publishes SHA-256 {info.sha256}, but this version of Voxtral Desk expects "
                f"{f.sha256}: the file changed upstream. Update Voxtral Desk, or download the model yourself "
                "and import it.", remedy="import")
        sha = f.sha256 or info.sha256
        if not sha:
            raise DownloadError(
                f"{f.name}: cannot be verified: the catalog pins no SHA-256 for it and {url} publishes none. "
                "Nothing was downloaded; download the model yourself and import it.", remedy="import")
        if f.size is not None and info.size is not None and f.size != info.size:
            raise DownloadError(f"{f.name}: the server has {info.size} bytes, this version of Voxtral Desk "
                                f"expects {f.size}: the file changed upstream. Update Voxtral Desk, or import the "
                                "model yourself.", remedy="import")
        planned = _Planned(f, url, sha, f.size if f.size is not None else info.size,
                           "catalog" if f.sha256 else "server (X-Linked-Etag / ETag)", commit)
        decided[f.name] = {"url": url, "sha256": sha, "size": planned.size, "hash_source": planned.hash_source,
                           "commit": commit, "source": source}
        plan.append(planned)
    try:
        write_json_atomic(state_path, state)
    except OSError as e:
        raise disk_error(e, state_path) from None
    return plan


def _check_space_for_download(root: Path, entry: CatalogModel, plan: list[_Planned], files_dir: Path) -> None:
    need = 0
    for p in plan:
        have = files_dir / p.file.name
        part = files_dir / (p.file.name + ".part")
        got = have.stat().st_size if have.exists() else part.stat().st_size if part.exists() else 0
        need += max(0, (p.size or 0) - got)
    sizes = {p.file.name: p.size or 0 for p in plan}
    if entry.post == "join":
        need += sum(sizes[n] for n in entry.join_parts)  # the joined copy, before the parts go
    elif entry.post == "convert":
        need += entry.convert_output_size or entry.approx_size or 0
    if any(p.size is None for p in plan) and entry.approx_size:
        need = max(need, entry.approx_size)
    _require_space(root, need, f"downloading {entry.name}")


def _require_space(root: Path, need: int, what: str) -> None:
    free = free_bytes(root)
    if free < need + SPACE_MARGIN:
        raise DiskFull(f"not enough free space in {root} for {what}: it needs "
                       f"{human_bytes(need + SPACE_MARGIN)}, {human_bytes(free)} is free. Free some space or "
                       "choose another models folder, then retry.", remedy="folder")


def _fetch_all(plan: list[_Planned], files_dir: Path, policy: RetryPolicy, control: Control,
               tracker: ProgressTracker) -> None:
    # Files verified in an earlier run are hashed again: they may have been damaged since.
    for p in plan:
        dest = files_dir / p.file.name
        if dest.exists():
            tracker.start("verifying", dest.stat().st_size, p.file.name)
            done = 0

            def step(n):
                nonlocal done
                done += n
                tracker.file_bytes(done)
            intact = sha256_file(dest, None, control, step) == p.sha256
            if not intact or (p.size and dest.stat().st_size != p.size):
                dest.unlink()  # damaged: fetched again below
    total = sum(p.size for p in plan) if all(p.size is not None for p in plan) else None
    tracker.start("downloading", total)
    for p in plan:
        dest = files_dir / p.file.name
        if dest.exists():
            tracker.finish_file(dest.stat().st_size)
            continue
        tracker.set_file(p.file.name)
        size = download_file(p.url, dest, sha256=p.sha256, size=p.size, control=control, tracker=tracker,
                             policy=policy)
        tracker.finish_file(size)


def _assemble(entry: CatalogModel, catalog: Catalog, plan: list[_Planned], files_dir: Path, model_dir: Path,
              control: Control, tracker: ProgressTracker) -> dict[str, str]:
    """Turn the verified downloads into a model folder. Returns the SHA-256 of files already known."""
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    known = {p.file.name: p.sha256 for p in plan}
    try:
        if entry.post == "convert":
            if entry.params and not (files_dir / "params.json").exists():
                write_json_atomic(files_dir / "params.json", entry.params)
            known = _convert(files_dir, model_dir / f"{entry.name}.gguf", entry.convert_shard_mb, control, tracker)
        else:
            if entry.post == "join":
                out = model_dir / entry.join_output
                known[out.name] = _join([files_dir / n for n in entry.join_parts], out, control, tracker)
            for p in plan:
                if p.file.name not in entry.join_parts:
                    shutil.copyfile(files_dir / p.file.name, model_dir / p.file.name)
            if entry.params and not (model_dir / "params.json").exists():
                write_json_atomic(model_dir / "params.json", entry.params)
    except OSError as e:
        raise disk_error(e, model_dir) from None
    try:
        _check_loads(model_dir, f"{entry.name} was downloaded and every file matches its SHA-256, but")
    except ModelFileError as e:
        others = [m.name for m in catalog.models if m.name != entry.name]
        raise UnusableModel(f"{e}. The downloaded files are kept until you remove {entry.name}"
                            + (f"; another catalog model may work: {', '.join(others)}" if others else "")
                            + ".", remedy="remove", model=entry.name) from None
    return known


def _convert(src: Path, out: Path, shard_mb: int | None, control: Control,
             tracker: ProgressTracker) -> dict[str, str]:
    from ..convert import MANIFEST, convert_checkpoint

    started = False

    def step(done: int, total: int) -> None:
        nonlocal started
        if not started:
            tracker.start("converting", total)
            started = True
        control.check()  # raising here aborts the converter, which removes its temporary files
        if control.paused:
            tracker.set_note("paused", phase="paused")
            control.wait_while_paused()
            tracker.set_note("", phase="converting")
        tracker.file_bytes(done)

    convert_checkpoint(src, out, shard_mb * 2**20 if shard_mb else None, step)
    manifest = read_json(out.parent / MANIFEST) or {}
    return {f["name"]: f["sha256"] for f in manifest.get("files", []) if "name" in f and "sha256" in f}


def _record(name: str, title: str, source: str, origin: str, model_dir: Path, known: dict[str, str],
            control: Control, **extra) -> dict:
    files = []
    for p in sorted(model_dir.iterdir()):
        if p.is_file() and p.name != RECORD:
            sha = known.get(p.name) or sha256_file(p, None, control)
            # Hashed while it was written (or just now): its first good check.
            files.append({"name": p.name, "size": p.stat().st_size, "sha256": sha, "checked": stamp(p)})
    kind = "original" if (model_dir / "consolidated.safetensors").exists() else "gguf"
    return {"format_version": 1, "name": name, "title": title, "source": source, "origin": origin, "kind": kind,
            "installed_at": _now(), "files": files, **extra}


def _install(root: Path, model_dir: Path, name: str, record: dict, work: Path) -> None:
    """Write the record last, then swap the folder into place (replacing an older copy)."""
    try:
        write_json_atomic(model_dir / RECORD, record)
        final = root / name
        old = work / "old"
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        try:
            model_dir.rename(final)
        except OSError:
            if old.exists():
                old.rename(final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        raise StoreError(f"cannot install {name} into {root}: {e.strerror or e}") from None


# --- import ---------------------------------------------------------------------------------------

def import_path(store: ModelStore, path: Path | str, name: str | None, progress, control: Control, shard_size_mb: int,
                replace: bool) -> InstalledModel:
    """ModelStore.import_path: copy, join or convert what the user has into the models folder."""
    src = Path(path).expanduser()
    if not src.exists():
        raise StoreError(f"{src}: no such file or folder")
    kind, sources = _classify(src)
    name = check_name(name or name_from_path(src))
    work = store.root / PARTIAL / f"{name}.import"
    with ModelLock(store.root, name, f"an import as {name}"):
        if store.find(name) is not None and not replace:
            raise StoreError(f"a model named {name!r} is installed already: import it under another name, or "
                             "remove that one first", remedy="rename", model=name)
        tracker = ProgressTracker(progress)
        shutil.rmtree(work, ignore_errors=True)
        model_dir = work / "model"
        try:
            try:
                model_dir.mkdir(parents=True)
            except OSError as e:
                raise disk_error(e, model_dir) from None
            if kind == "original":
                known = _import_original(store.root, src, name, model_dir, shard_size_mb, control, tracker)
            else:
                known = _import_gguf(store.root, store.catalog, src, kind, sources, name, model_dir, control,
                                     tracker)
            record = _record(name, name, "import", str(src.resolve()), model_dir, known, control)
            _install(store.root, model_dir, name, record, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # an import does not resume: leave nothing behind
        tracker.start("done", None, name)
    return store.find(name)


def _import_original(root: Path, src: Path, name: str, model_dir: Path, shard_size_mb: int, control: Control,
                     tracker: ProgressTracker) -> dict[str, str]:
    from ..checkpoint import tensor_table
    from ..convert import stored_nbytes
    from ..loader import load_model

    model = load_model(src)  # checks every tensor before hours of work start
    _require_space(root, sum(stored_nbytes(s) for s in tensor_table(model.config)) + (1 << 20)
                   + model.tokenizer_path.stat().st_size, f"converting {src}")
    known = _convert(src, model_dir / f"{name}.gguf", shard_size_mb or None, control, tracker)
    _check_loads(model_dir, f"{src} was converted, but")
    return known


def _import_gguf(root: Path, catalog: Catalog, src: Path, kind: str, sources: list[Path], name: str, model_dir: Path,
                 control: Control, tracker: ProgressTracker) -> dict[str, str]:
    from ..loader import load_model

    folder = sources[0].parent
    params = folder / "params.json"
    needs_params = not params.is_file() and not (kind == "gguf" and _has_own_config(sources[0]))
    if kind == "gguf" and not needs_params:
        load_model(src)  # a clear message about a bad file before anything is copied
    tokenizer = folder / "tekken.json"
    if not tokenizer.is_file():
        raise ModelFileError(f"{folder}: tekken.json (the tokenizer) must lie beside the GGUF file; put it "
                             "there and import again")
    if kind == "byte-split" and (not sources or sources[0].name != "shard-aa"):
        raise StoreError(f"{folder}: the byte-split parts must start with shard-aa")
    extras = [tokenizer] + ([params] if params.is_file() else [])
    _require_space(root, sum(p.stat().st_size for p in sources + extras), f"importing {src}")
    known: dict[str, str] = {}
    try:
        if kind == "byte-split":
            out = model_dir / f"{name}.gguf"
            known[out.name] = _join(sources, out, control, tracker)
            needs_params = not params.is_file() and not _has_own_config(out)
            to_copy = extras
        else:
            to_copy = sources + extras
        tracker.start("copying", sum(p.stat().st_size for p in to_copy))
        for p in to_copy:
            tracker.set_file(p.name)
            known[p.name] = _copy_hashed(p, model_dir / p.name, control, tracker)
            tracker.finish_file(p.stat().st_size)
    except OSError as e:
        raise disk_error(e, model_dir) from None
    if not needs_params:
        _check_loads(model_dir, f"{src} was copied, but")
        return known
    # A GGUF made by others may carry no model settings (TrevorJS's does not). Use the settings the
    # catalog ships for the real model, but only if every tensor's shape agrees with them.
    tried = []
    for entry in catalog.models:
        if entry.params and json.dumps(entry.params, sort_keys=True) not in tried:
            tried.append(json.dumps(entry.params, sort_keys=True))
            write_json_atomic(model_dir / "params.json", entry.params)
            try:
                load_model(model_dir)
                return known
            except ModelFileError:
                continue
    (model_dir / "params.json").unlink(missing_ok=True)
    raise ModelFileError(f"{sources[0]} holds no model settings and there is no params.json beside it"
                         + (", and it does not match the known Voxtral Realtime settings" if tried else "")
                         + ". Put the model's params.json beside the file and import again.")


# --- helpers --------------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def name_from_path(path: Path) -> str:
    from ..gguf_io import SHARD_RE

    base = path.name
    if path.is_file():
        m = SHARD_RE.match(base)
        base = m.group("stem") if m else path.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")[:80]
    return name or "model"


def _classify(src: Path) -> tuple[str, list[Path]]:
    """('original' | 'gguf' | 'byte-split', the files that hold the weights)."""
    from ..gguf_io import shard_paths

    if src.is_dir() and (src / "consolidated.safetensors").is_file():
        return "original", [src / "consolidated.safetensors"]
    if src.is_dir():
        parts = sorted(p for p in src.iterdir() if p.is_file() and BYTE_SPLIT_RE.match(p.name))
        if parts and not any(src.glob("*.gguf")):
            return "byte-split", parts
    if src.is_file() and BYTE_SPLIT_RE.match(src.name):
        return "byte-split", sorted(p for p in src.parent.iterdir() if p.is_file() and BYTE_SPLIT_RE.match(p.name))
    if src.is_dir() or src.suffix == ".gguf":
        return "gguf", shard_paths(src)
    raise StoreError(f"{src} is not a model: expected a .gguf file, a GGUF shard set or its folder, a folder of "
                     "byte-split parts (shard-aa, shard-ab, ...), or a folder holding consolidated.safetensors, "
                     "params.json and tekken.json")


def _has_own_config(first: Path) -> bool:
    from ..gguf_io import has_model_config

    try:
        return has_model_config(first)
    except ModelFileError:  # a broken file: load_model() gives the precise message
        return True


def _check_loads(model_dir: Path, context: str) -> None:
    from ..loader import load_model

    try:
        load_model(model_dir)
    except ModelFileError as e:
        raise ModelFileError(f"{context} it does not open as a model: {e}") from None


def _append_hashed(src: Path, w, h, control: Control, tracker: ProgressTracker, done: int) -> int:
    """Copy src onto the open file w block by block, hashing and reporting progress; returns bytes so far."""
    with open(src, "rb") as r:
        while block := r.read(COPY_BLOCK):
            control.check()
            w.write(block)
            h.update(block)
            done += len(block)
            tracker.file_bytes(done)
    return done


def _copy_hashed(src: Path, dst: Path, control: Control, tracker: ProgressTracker) -> str:
    h = hashlib.sha256()
    with open(dst, "wb") as w:
        _append_hashed(src, w, h, control, tracker, 0)
        w.flush()
        os.fsync(w.fileno())
    return h.hexdigest()


def _join(parts: list[Path], out: Path, control: Control, tracker: ProgressTracker) -> str:
    """Concatenate byte-split parts into `out` (through `out.part`), streaming. Returns its SHA-256."""
    tmp = out.with_name(out.name + ".part")
    h = hashlib.sha256()
    tracker.start("joining", sum(p.stat().st_size for p in parts), out.name)
    done = 0
    try:
        with open(tmp, "wb") as w:
            for p in parts:
                done = _append_hashed(p, w, h, control, tracker, done)
            w.flush()
            os.fsync(w.fileno())
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest()
