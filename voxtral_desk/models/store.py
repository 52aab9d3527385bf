"""The installed models: which there are, which is the default, whether each is intact (verify), repair and
removal; getting them there (download, import) is install.py's, the folder's layout is layout.py's. Engine-free
and Qt-free.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ModelFileError
from ..fileio import sha256_file, write_json_atomic
from ..paths import default_models_dir
from . import install
from .catalog import NAME_RE, RECORD, SHA256_RE, Catalog, load_catalog
from .download import RetryPolicy
from .errors import ModelManagerError, StoreError
from .jobs import Control, ProgressTracker
from .layout import STORE_FILE, ModelLock, check_name, dir_size, partial_dir, read_json, stamp


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

    def _read_model(self, folder: Path) -> InstalledModel | None:
        record = read_json(folder / RECORD)
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
        chosen = (read_json(self.root / STORE_FILE) or {}).get("default")
        return next((m for m in usable if m.name == chosen), usable[0] if usable else None)

    def set_default(self, name: str | None) -> None:
        if name is not None and self.find(name) is None:
            raise StoreError(f"no model named {name!r} is installed")
        self.root.mkdir(parents=True, exist_ok=True)
        data = read_json(self.root / STORE_FILE) or {}
        data["default"] = name
        write_json_atomic(self.root / STORE_FILE, data)

    def partial_bytes(self, name: str) -> int | None:
        """Bytes of an unfinished download kept for resuming, or None when there is none."""
        files = partial_dir(self.root, name) / "files"
        return dir_size(files) if files.is_dir() else None

    # --- download / import (install.py) -----------------------------------------------------------

    def download(self, name: str, progress=None, control: Control | None = None, *,
                 force: bool = False) -> InstalledModel:
        """Download a catalog model, verify every file, assemble it and install it. Resumes what an
        earlier run left. An installed intact model is returned as is unless `force`."""
        return install.download(self, name, progress, control or Control(), force)

    def import_path(self, path: Path | str, name: str | None = None, progress=None, control: Control | None = None,
                    *, shard_size_mb: int = 512, replace: bool = False) -> InstalledModel:
        """Install a model the user has: a GGUF file, a GGUF shard set (or its folder), a folder of
        byte-split parts (shard-aa, shard-ab, ...), or an original consolidated.safetensors folder
        (converted to Q4_0 GGUF). The source is only read, never changed. An installed model of that name
        is an error, unless `replace` (a repair), which swaps it for the new copy once that is complete."""
        return install.import_path(self, path, name, progress, control or Control(), shard_size_mb, replace)

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
            record = read_json(m.path / RECORD) or {}
            files, problems = _recorded_files(m.path, record)
            todo = []
            for path, f in files:
                if problem := _size_problem(path, f):
                    problems.append(problem)
                elif not (changed_only and f.get("checked") == stamp(path)):
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
                before = stamp(path)  # taken before the hash: a change while it runs is seen next time
                if sha256_file(path, None, control, step) == f["sha256"]:
                    intact[path.name] = before
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
            with ModelLock(self.root, model.name, f"a check of {model.name}"):
                fresh = read_json(model.path / RECORD) or {}
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
        final, work = self.model_dir(name), partial_dir(self.root, name)
        if final.exists() and not (final / RECORD).is_file():
            raise StoreError(f"{final} was not installed by Voxtral Desk; remove it yourself if you mean to")
        if not final.exists() and not work.exists():
            raise StoreError(f"no model named {name!r} is installed or partly downloaded")
        with ModelLock(self.root, name, f"the removal of {name}"):
            freed = dir_size(final) + dir_size(work)
            for d in (final, work):
                if d.exists():
                    try:
                        shutil.rmtree(d)
                    except OSError as e:
                        raise StoreError(f"cannot remove {d}: {e.strerror or e}") from None
        data = read_json(self.root / STORE_FILE) or {}
        if data.get("default") == name:
            self.set_default(None)
        return freed


def resolve_model(path: str | None, root: Path | str | None = None) -> str:
    """The model to open: `path` (--model) when given, else the default installed model of the models folder
    `root` (default: default_models_dir()); ModelFileError, saying how to get one, when there is none."""
    if path:
        return path
    model = ModelStore(root).default()
    if model is None:
        raise ModelFileError("no model installed: run `voxtral-desk models download voxtral-mini-4b-realtime-q4`, "
                             "`voxtral-desk models import PATH`, or pass --model PATH")
    return str(model.path)


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
