"""Where models live on disk, and how they get there: download from the catalog, import of a file or
folder the user has, verify, remove. Engine-free and Qt-free.

Layout under the models folder (default: platformdirs' user data dir / "models"):

    <name>/                   an installed model: what load_model() opens, plus voxtral-model.json
    .partial/<name>/files/    a download in progress: NAME.part while fetching, NAME once its SHA-256
                              matched; kept across runs so a download resumes
    .partial/<name>/model/    the model being assembled (join / convert / copy); renamed to <name>/
                              only when complete and opened by load_model()
    .locks/<name>.lock        held while <name> is downloaded, imported or removed, by whichever process
    store.json                the default model

A model folder counts as installed only when it holds voxtral-model.json, written last, after every
file was verified; nothing else is ever returned to be loaded. The record names the model's files (each
must lie in the model's folder), their sizes and SHA-256, when each was last found intact, and the damage
a later check found, if any.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import platformdirs
from filelock import FileLock, Timeout

from ..config import ModelFileError
from ..fileio import write_json_atomic
from .catalog import NAME_RE, RECORD, SHA256_RE, Catalog, CatalogFile, CatalogModel, load_catalog
from .download import (Control, DiskFull, DownloadError, ModelManagerError, ProgressTracker,
                       RetryPolicy, _disk_error, download_file, free_bytes, hash_file, human_bytes, probe)

MODELS_DIR_ENV = "VOXTRAL_DESK_MODELS_DIR"
DATA_DIR_ENV = "VOXTRAL_DESK_DATA_DIR"  # the app's data folder (app/settings.py)
PARTIAL = ".partial"
LOCKS = ".locks"
STORE_FILE = "store.json"
SPACE_MARGIN = 64 << 20  # room left for everything else
COPY_BLOCK = 4 << 20
BYTE_SPLIT_RE = re.compile(r"^shard-[a-z]{2}$")  # `split -b 512m FILE shard-`


class StoreError(ModelManagerError):
    pass


class UnusableModel(StoreError, ModelFileError):
    """Files that were all verified, but do not open as a model."""


def default_models_dir() -> Path:
    """$VOXTRAL_DESK_MODELS_DIR, else "models" in the app's data folder ($VOXTRAL_DESK_DATA_DIR or
    platformdirs' user data dir, as the app's settings use it)."""
    env = os.environ.get(MODELS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    data = os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir("voxtral-desk", appauthor=False)
    return Path(data).expanduser() / "models"


@dataclass
class InstalledModel:
    name: str
    path: Path  # the model folder: load_model() accepts it
    title: str = ""
    size: int = 0  # bytes on disk
    source: str = ""  # "catalog" or "import"
    origin: str = ""  # where it came from: the catalog entry's home page, or the imported path
    kind: str = "gguf"
    installed_at: str = ""
    # Every file was hash-checked when installed, still has its recorded size, and no later check found damage.
    verified: bool = False
    problem: str = ""  # why not, when not: the damaged file and what is wrong with it
    repair: str = ""  # when damaged: what to do about it, in one line
    repairable: bool = False  # repair() can fetch it again: its catalog entry, or what it was imported from, exists

    @property
    def repair_does(self) -> str:
        """What repair() does for it, to follow "Repair" or a command line (when it is repairable)."""
        return "downloads it again" if self.source == "catalog" else f"imports it again from {self.origin}"

    @property
    def damage_report(self) -> str:
        """What to tell the user about a damaged model: the file, what is wrong with it, and what to do."""
        return f"The model {self.name} is damaged: {self.problem}. {self.repair}." if self.problem else ""


@dataclass
class VerifyResult:
    name: str
    ok: bool
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.name}: ok" if self.ok else f"{self.name}: FAILED: " + "; ".join(self.problems)


@dataclass
class _Planned:
    file: CatalogFile
    url: str
    sha256: str
    size: int | None
    hash_source: str
    commit: str | None


_held_lock = threading.Lock()
_held: dict[Path, str] = {}  # lock file -> what holds it in this process, for a precise message


class _ModelLock:
    """One download, import or removal of a model name at a time, in this process and across processes: a
    lock file that the operating system releases when its process ends, however it ends."""

    def __init__(self, root: Path, name: str, what: str):
        self.path, self.name, self.what = root / LOCKS / f"{name}.lock", name, what
        self.lock = FileLock(self.path, timeout=0)

    def __enter__(self) -> _ModelLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        except Timeout:  # before OSError, which it is a kind of
            with _held_lock:
                what = _held.get(self.path)
            raise StoreError(
                f"{what} is already in progress: wait for it to finish, or cancel it, then try again" if what else
                f"a download or import of {self.name} is already in progress in another Voxtral Desk window or "
                "command: wait for it to finish, or cancel it there, then try again") from None
        except OSError as e:
            raise _disk_error(e, self.path) from None
        with _held_lock:
            _held[self.path] = self.what
        return self

    def __exit__(self, *exc) -> None:
        with _held_lock:
            _held.pop(self.path, None)
        self.lock.release()


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, or nested beyond reason
        return None
    return data if isinstance(data, dict) else None


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise StoreError(f"{name!r} is not a usable model name: use letters, digits, '.', '_' and '-' "
                         "(at most 80, starting with a letter or digit)")
    return name


def name_from_path(path: Path) -> str:
    from ..gguf_io import SHARD_RE

    base = path.name
    if path.is_file():
        m = SHARD_RE.match(base)
        base = m.group("stem") if m else path.stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-._")[:80]
    return name or "model"


class ModelStore:
    def __init__(self, root: Path | str | None = None, catalog: Catalog | None = None, *,
                 policy: RetryPolicy | None = None, endpoint: str | None = None):
        self.root = Path(root).expanduser() if root else default_models_dir()
        self.catalog = catalog if catalog is not None else load_catalog()
        self.policy = policy or RetryPolicy()
        self.endpoint = endpoint  # Hugging Face endpoint; None: $HF_ENDPOINT or huggingface.co

    # --- what is there ---------------------------------------------------------------------------

    def model_dir(self, name: str) -> Path:
        return self.root / check_name(name)

    def _partial_dir(self, name: str) -> Path:
        return self.root / PARTIAL / check_name(name)

    def _read_model(self, folder: Path) -> InstalledModel | None:
        record = _read_json(folder / RECORD)
        if record is None or record.get("name") != folder.name:
            return None
        files, problems = _recorded_files(folder, record)
        problems += [problem for path, f in files if (problem := _size_problem(path, f))]
        if damage := _describe_damage(record.get("damaged")):
            problems.append(damage)
        source, origin = str(record.get("source", "")), str(record.get("origin", ""))
        repair, repairable = self._repair_hint(folder.name, source, origin) if problems else ("", False)
        return InstalledModel(
            name=folder.name, path=folder, title=str(record.get("title", "")), size=sum(f["size"] for _, f in files),
            source=source, origin=origin, kind=str(record.get("kind", "gguf")),
            installed_at=str(record.get("installed_at", "")), verified=not problems, problem="; ".join(problems),
            repair=repair, repairable=repairable)

    def _repair_hint(self, name: str, source: str, origin: str) -> tuple[str, bool]:
        """(what to do about a damaged model, whether repair() can do it)."""
        if source == "catalog" and self.catalog.get(name):
            return "Repair downloads it again", True  # InstalledModel.repair_does
        if source == "import" and origin and Path(origin).exists():
            return f"Import it again from {origin}", True
        why = (f"{origin}, which it was imported from, is gone" if source == "import"
               else "the model catalog no longer lists it")
        return f"Remove it and import the model again ({why})", False

    def installed(self) -> list[InstalledModel]:
        if not self.root.is_dir():
            return []
        found = [m for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")
                 and (m := self._read_model(d)) is not None]
        order = {n: i for i, n in enumerate(self.catalog.names())}
        return sorted(found, key=lambda m: (order.get(m.name, len(order)), m.name))

    def find(self, name: str) -> InstalledModel | None:
        if not NAME_RE.match(name or ""):
            return None
        folder = self.root / name
        return self._read_model(folder) if folder.is_dir() else None

    def model_for_path(self, path: Path | str) -> InstalledModel | None:
        """The installed model whose folder is `path` or holds it, damaged or not (the app keeps the model it
        uses as a path), or None when this store does not manage that path."""
        try:
            target = Path(path).expanduser().resolve()
        except (OSError, ValueError, RuntimeError):  # no such path can be a model folder (a NUL byte, a link loop)
            return None
        return next((m for m in self.installed() if target == (folder := m.path.resolve()) or folder in target.parents),
                    None)

    def default(self) -> InstalledModel | None:
        """The model chosen with set_default(), else the first intact one (the catalog's default first)."""
        usable = [m for m in self.installed() if m.verified]
        chosen = (_read_json(self.root / STORE_FILE) or {}).get("default")
        return next((m for m in usable if m.name == chosen), usable[0] if usable else None)

    def set_default(self, name: str | None) -> None:
        if name is not None and self.find(name) is None:
            raise StoreError(f"no model named {name!r} is installed")
        self.root.mkdir(parents=True, exist_ok=True)
        data = _read_json(self.root / STORE_FILE) or {}
        data["default"] = name
        write_json_atomic(self.root / STORE_FILE, data)

    def partial_bytes(self, name: str) -> int | None:
        """Bytes of an unfinished download kept for resuming, or None when there is none."""
        files = self._partial_dir(name) / "files"
        return _dir_size(files) if files.is_dir() else None

    # --- download --------------------------------------------------------------------------------

    def _entry(self, name: str) -> CatalogModel:
        entry = self.catalog.get(name)
        if entry is None:
            known = ", ".join(self.catalog.names()) or "none"
            raise StoreError(f"no model named {name!r} in the catalog (available: {known})")
        return entry

    def download(self, name: str, progress=None, control: Control | None = None, *,
                 force: bool = False) -> InstalledModel:
        """Download a catalog model, verify every file, assemble it and install it. Resumes what an
        earlier run left. An installed intact model is returned as is unless `force`."""
        entry = self._entry(name)
        control = control or Control()
        existing = self.find(name)
        if existing and existing.verified and not force:
            return existing
        work = self._partial_dir(name)
        with _ModelLock(self.root, name, f"a download of {name}"):
            try:
                (work / "files").mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise _disk_error(e, work / "files") from None
            tracker = ProgressTracker(progress)
            try:
                plan = self._plan(entry, work, control, tracker)
                self._check_space_for_download(entry, plan, work / "files")
                self._fetch_all(plan, work / "files", control, tracker)
            except BaseException:
                if not any((work / "files").iterdir()):
                    shutil.rmtree(work, ignore_errors=True)  # nothing worth keeping for a resume
                raise
            model_dir = work / "model"
            try:
                known = self._assemble(entry, plan, work / "files", model_dir, control, tracker)
                origin = entry.homepage or plan[0].url
                record = self._record(name, entry.title, "catalog", origin, model_dir, known, control, tracker,
                                      downloads=[{"name": p.file.name, "url": p.url, "sha256": p.sha256,
                                                  "hash_source": p.hash_source, "commit": p.commit} for p in plan])
                self._install(model_dir, name, record, work)
            finally:
                shutil.rmtree(model_dir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
            tracker.start("done", None, name)
        return self.find(name)

    def _plan(self, entry: CatalogModel, work: Path, control: Control, tracker: ProgressTracker) -> list[_Planned]:
        """Decide URL, expected SHA-256 and size of every file: the catalog's pins, checked against what
        the server publishes; a branch is resolved to one commit so all files come from the same one.
        What was decided is kept in state.json, so a resumed download fetches the same files."""
        state_path = work / "state.json"
        state = _read_json(state_path) or {}
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
            url = f.resolve_url(self.endpoint, commit)
            info = probe(url, f.name, self.policy, control)
            if f.repo and not commit and info.commit and re.match(r"^[0-9a-f]{40}$", info.commit):
                commit = commits[key] = info.commit
                url = f.resolve_url(self.endpoint, commit)
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
            raise _disk_error(e, state_path) from None
        return plan

    def _check_space_for_download(self, entry: CatalogModel, plan: list[_Planned], files_dir: Path) -> None:
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
        self._require_space(need, f"downloading {entry.name}")

    def _require_space(self, need: int, what: str) -> None:
        free = free_bytes(self.root)
        if free < need + SPACE_MARGIN:
            raise DiskFull(f"not enough free space in {self.root} for {what}: it needs "
                           f"{human_bytes(need + SPACE_MARGIN)}, {human_bytes(free)} is free. Free some space or "
                           "choose another models folder, then retry.", remedy="folder")

    def _fetch_all(self, plan: list[_Planned], files_dir: Path, control: Control, tracker: ProgressTracker) -> None:
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
                intact = hash_file(dest, None, control, step).hexdigest() == p.sha256
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
                                 policy=self.policy)
            tracker.finish_file(size)

    def _assemble(self, entry: CatalogModel, plan: list[_Planned], files_dir: Path, model_dir: Path,
                  control: Control, tracker: ProgressTracker) -> dict[str, str]:
        """Turn the verified downloads into a model folder. Returns the SHA-256 of files already known."""
        shutil.rmtree(model_dir, ignore_errors=True)
        model_dir.mkdir(parents=True)
        known = {p.file.name: p.sha256 for p in plan}
        try:
            if entry.post == "convert":
                if entry.params and not (files_dir / "params.json").exists():
                    write_json_atomic(files_dir / "params.json", entry.params)
                known = self._convert(files_dir, model_dir / f"{entry.name}.gguf", entry.convert_shard_mb, control,
                                      tracker)
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
            raise _disk_error(e, model_dir) from None
        try:
            _check_loads(model_dir, f"{entry.name} was downloaded and every file matches its SHA-256, but")
        except ModelFileError as e:
            others = [m.name for m in self.catalog.models if m.name != entry.name]
            raise UnusableModel(f"{e}. The downloaded files are kept until you remove {entry.name}"
                                + (f"; another catalog model may work: {', '.join(others)}" if others else "")
                                + ".", remedy="remove", model=entry.name) from None
        return known

    def _convert(self, src: Path, out: Path, shard_mb: int | None, control: Control,
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
        manifest = _read_json(out.parent / MANIFEST) or {}
        return {f["name"]: f["sha256"] for f in manifest.get("files", []) if "name" in f and "sha256" in f}

    def _record(self, name: str, title: str, source: str, origin: str, model_dir: Path, known: dict[str, str],
                control: Control, tracker: ProgressTracker, **extra) -> dict:
        files = []
        for p in sorted(model_dir.iterdir()):
            if p.is_file() and p.name != RECORD:
                sha = known.get(p.name) or hash_file(p, None, control).hexdigest()
                # Hashed while it was written (or just now): its first good check.
                files.append({"name": p.name, "size": p.stat().st_size, "sha256": sha, "checked": _stamp(p)})
        kind = "original" if (model_dir / "consolidated.safetensors").exists() else "gguf"
        return {"format_version": 1, "name": name, "title": title, "source": source, "origin": origin, "kind": kind,
                "installed_at": _now(), "files": files, **extra}

    def _install(self, model_dir: Path, name: str, record: dict, work: Path) -> None:
        """Write the record last, then swap the folder into place (replacing an older copy)."""
        try:
            write_json_atomic(model_dir / RECORD, record)
            final = self.root / name
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
            raise StoreError(f"cannot install {name} into {self.root}: {e.strerror or e}") from None

    # --- import ----------------------------------------------------------------------------------

    def import_path(self, path: Path | str, name: str | None = None, progress=None, control: Control | None = None,
                    *, shard_size_mb: int = 512, replace: bool = False) -> InstalledModel:
        """Install a model the user has: a GGUF file, a GGUF shard set (or its folder), a folder of
        byte-split parts (shard-aa, shard-ab, ...), or an original consolidated.safetensors folder
        (converted to Q4_0 GGUF). The source is only read, never changed. An installed model of that name
        is an error, unless `replace` (a repair), which swaps it for the new copy once that is complete."""
        src = Path(path).expanduser()
        if not src.exists():
            raise StoreError(f"{src}: no such file or folder")
        control = control or Control()
        kind, sources = _classify(src)
        name = check_name(name or name_from_path(src))
        work = self.root / PARTIAL / f"{name}.import"
        with _ModelLock(self.root, name, f"an import as {name}"):
            if self.find(name) is not None and not replace:
                raise StoreError(f"a model named {name!r} is installed already: import it under another name, or "
                                 "remove that one first", remedy="rename", model=name)
            tracker = ProgressTracker(progress)
            shutil.rmtree(work, ignore_errors=True)
            model_dir = work / "model"
            try:
                try:
                    model_dir.mkdir(parents=True)
                except OSError as e:
                    raise _disk_error(e, model_dir) from None
                if kind == "original":
                    known = self._import_original(src, name, model_dir, shard_size_mb, control, tracker)
                else:
                    known = self._import_gguf(src, kind, sources, name, model_dir, control, tracker)
                record = self._record(name, name, "import", str(src.resolve()), model_dir, known, control, tracker)
                self._install(model_dir, name, record, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)  # an import does not resume: leave nothing behind
            tracker.start("done", None, name)
        return self.find(name)

    def _import_original(self, src: Path, name: str, model_dir: Path, shard_size_mb: int, control: Control,
                         tracker: ProgressTracker) -> dict[str, str]:
        from ..checkpoint import tensor_table
        from ..convert import stored_nbytes
        from ..loader import load_model

        model = load_model(src)  # checks every tensor before hours of work start
        self._require_space(sum(stored_nbytes(s) for s in tensor_table(model.config)) + (1 << 20)
                            + model.tokenizer_path.stat().st_size, f"converting {src}")
        known = self._convert(src, model_dir / f"{name}.gguf", shard_size_mb or None, control, tracker)
        _check_loads(model_dir, f"{src} was converted, but")
        return known

    def _import_gguf(self, src: Path, kind: str, sources: list[Path], name: str, model_dir: Path, control: Control,
                     tracker: ProgressTracker) -> dict[str, str]:
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
        self._require_space(sum(p.stat().st_size for p in sources + extras), f"importing {src}")
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
            raise _disk_error(e, model_dir) from None
        if not needs_params:
            _check_loads(model_dir, f"{src} was copied, but")
            return known
        # A GGUF made by others may carry no model settings (TrevorJS's does not). Use the settings the
        # catalog ships for the real model, but only if every tensor's shape agrees with them.
        tried = []
        for entry in self.catalog.models:
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

    # --- verify / remove -------------------------------------------------------------------------

    def verify(self, name: str | None = None, progress=None, control: Control | None = None, *,
               changed_only: bool = False) -> list[VerifyResult]:
        """Hash every file of one installed model (or all) against its record, then open it. With `changed_only`,
        only files whose size or modification time differ from their last good check are hashed, and the model
        is not opened: cheap enough to run after every load. A mismatch is recorded in the model's record, so it
        shows as damaged until it is repaired or a later check finds the file intact again."""
        from ..loader import load_model

        control = control or Control()
        if name is not None:
            model = self.find(name)
            if model is None:
                raise StoreError(f"no model named {name!r} is installed")
            models = [model]
        else:
            models = self.installed()
        tracker = ProgressTracker(progress)
        results = []
        for m in models:
            record = _read_json(m.path / RECORD) or {}
            files, problems = _recorded_files(m.path, record)
            todo = []
            for path, f in files:
                if problem := _size_problem(path, f):
                    problems.append(problem)
                elif not (changed_only and f.get("checked") == _stamp(path)):
                    todo.append((path, f))
            tracker.start("verifying", sum(f["size"] for _, f in todo), m.name)
            intact: dict[str, dict] = {}  # file name -> its stamp, for the files found intact
            damage = None
            for path, f in todo:
                done = 0

                def step(n):
                    nonlocal done
                    done += n
                    tracker.file_bytes(done)
                tracker.set_file(path.name)
                stamp = _stamp(path)
                if hash_file(path, None, control, step).hexdigest() == f["sha256"]:
                    intact[path.name] = stamp
                elif damage is None:
                    damage = {"file": path.name, "reason": "does not match its SHA-256 (damaged on disk)"}
                tracker.finish_file(f["size"])
            # Damage found earlier stays until a full check passes or its file is hashed again and is intact.
            recorded = record.get("damaged")
            if damage is None and recorded and (not changed_only or isinstance(recorded, dict)
                                                and recorded.get("file") in intact):
                recorded = None
            damage = damage or recorded or None
            if damage:
                problems.append(_describe_damage(damage))
            if not problems and not changed_only:
                try:
                    load_model(m.path)
                except ModelFileError as e:
                    problems.append(f"does not open: {e}")
            if record.get("damaged") != damage or any(f.get("checked") != intact[p.name] for p, f in files
                                                      if p.name in intact):
                self._record_check(m, record, intact, damage)
            results.append(VerifyResult(m.name, not problems, problems))
        return results

    def _record_check(self, model: InstalledModel, record: dict, intact: dict[str, dict], damage: dict | None) -> None:
        """Keep what a check found in the model's record: when each file was last found intact, and the damage."""
        try:
            with _ModelLock(self.root, model.name, f"a check of {model.name}"):
                fresh = _read_json(model.path / RECORD) or {}
                if fresh.get("installed_at") != record.get("installed_at"):
                    return  # installed again meanwhile: the files that were checked are gone
                for f in fresh.get("files", []):
                    if isinstance(f, dict) and f.get("name") in intact:
                        f["checked"] = intact[f["name"]]
                if damage:
                    fresh["damaged"] = damage
                else:
                    fresh.pop("damaged", None)
                write_json_atomic(model.path / RECORD, fresh)
        except (ModelManagerError, OSError):
            pass  # a download, import or removal of it runs, or its folder is read-only: the result still stands

    def repair(self, name: str, progress=None, control: Control | None = None) -> InstalledModel:
        """Fetch an installed (damaged) model again: a catalog model is downloaded again, an imported one is
        imported again from where it came from. The old copy stays until the new one is complete."""
        model = self.find(name)
        if model is None:
            raise StoreError(f"no model named {name!r} is installed")
        hint, repairable = self._repair_hint(name, model.source, model.origin)
        if not repairable:
            raise StoreError(f"{name} cannot be fetched again here. {hint}.", remedy="remove", model=name)
        if model.source == "catalog":
            return self.download(name, progress, control, force=True)
        return self.import_path(model.origin, name, progress, control, replace=True)

    def remove(self, name: str) -> int:
        """Delete an installed model and any unfinished download of it. Returns the bytes freed."""
        final, work = self.model_dir(name), self._partial_dir(name)
        if final.exists() and not (final / RECORD).is_file():
            raise StoreError(f"{final} was not installed by Voxtral Desk; remove it yourself if you mean to")
        if not final.exists() and not work.exists():
            raise StoreError(f"no model named {name!r} is installed or partly downloaded")
        with _ModelLock(self.root, name, f"the removal of {name}"):
            freed = _dir_size(final) + _dir_size(work)
            for d in (final, work):
                if d.exists():
                    try:
                        shutil.rmtree(d)
                    except OSError as e:
                        raise StoreError(f"cannot remove {d}: {e.strerror or e}") from None
        data = _read_json(self.root / STORE_FILE) or {}
        if data.get("default") == name:
            self.set_default(None)
        return freed


# --- helpers --------------------------------------------------------------------------------------

def _inside(folder: Path, name: object) -> Path | None:
    """folder/name when `name` is one plain file name whose file (links followed) lies in `folder`, else None:
    a record naming ../../etc/passwd or /etc/passwd never makes the store look at that file."""
    if not isinstance(name, str) or name in ("", "..") or Path(name).name != name or "\\" in name or "\0" in name:
        return None
    path = folder / name
    # realpath, not resolve(): it follows links without looking at the file they lead to.
    return path if os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder) else None


def _recorded_files(folder: Path, record: dict) -> tuple[list[tuple[Path, dict]], list[str]]:
    """The files a model's record lists, as (path, entry) with a usable name, size and SHA-256, and what is
    wrong with the record itself."""
    files = record.get("files")
    if not isinstance(files, list) or not files:
        return [], [f"its record ({RECORD}) lists no files"]
    good, problems = [], []
    for f in files:
        name = f.get("name") if isinstance(f, dict) else None
        path = _inside(folder, name)
        if isinstance(name, str) and path is None:
            problems.append(f"its record ({RECORD}) names {name!r}, which is not a file in the model's folder")
        elif (path is None or type(f.get("size")) is not int or f["size"] < 0
              or not isinstance(f.get("sha256"), str) or not SHA256_RE.match(f["sha256"])):
            problems.append(f"its record ({RECORD}) is damaged: a file in its list has no usable name, size or SHA-256")
        else:
            good.append((path, f))
    return good, problems


def _size_problem(path: Path, entry: dict) -> str:
    """The cheap check, made on every look: the file is there, with the size it had when installed."""
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size != entry["size"]:
        return (f"{path.name} has {size} bytes instead of the {entry['size']} it had when installed (changed or "
                "damaged on disk)")
    return ""


def _describe_damage(damaged: object) -> str:
    """The damage a hash check found and recorded (the record's "damaged"), as a problem."""
    if not damaged:
        return ""
    if isinstance(damaged, dict) and isinstance(damaged.get("file"), str) and isinstance(damaged.get("reason"), str):
        return f"{damaged['file']} {damaged['reason']}"
    return f"its record ({RECORD}) says it is damaged"


def _stamp(path: Path) -> dict:
    """What tells a file changed since it was last found intact, without reading it."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


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
