"""The models folder on disk, as the store (what is installed) and the installer (what gets there) both see it.

    <name>/                   an installed model: what load_model() opens, plus voxtral-model.json
    .partial/<name>/files/    a download in progress: NAME.part while fetching, NAME once its SHA-256
                              matched; kept across runs so a download resumes
    .partial/<name>/model/    the model being assembled (join / convert / copy); renamed to <name>/
                              only when complete and opened by load_model()
    .locks/<name>.lock        held while <name> is downloaded, imported or removed, by whichever process
    store.json                the default model

A model folder counts as installed only when it holds voxtral-model.json (catalog.RECORD), written last, after
every file was verified; nothing else is ever returned to be loaded. The record names the model's files (each
must lie in the model's folder), their sizes and SHA-256, when each was last found intact, and the damage a
later check found, if any.
"""
from __future__ import annotations

import errno
import json
import shutil
import threading
from pathlib import Path

from filelock import FileLock, Timeout

from .catalog import NAME_RE
from .errors import DiskFull, DownloadError, StoreError
from .jobs import human_bytes

PARTIAL = ".partial"
LOCKS = ".locks"
STORE_FILE = "store.json"

_held_lock = threading.Lock()
_held: dict[Path, str] = {}  # lock file -> what holds it in this process, for a precise message


class ModelLock:
    """One download, import or removal of a model name at a time, in this process and across processes: a
    lock file that the operating system releases when its process ends, however it ends."""

    def __init__(self, root: Path, name: str, what: str):
        self.path, self.name, self.what = root / LOCKS / f"{name}.lock", name, what
        self.lock = FileLock(self.path, timeout=0)

    def __enter__(self) -> ModelLock:
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
            raise disk_error(e, self.path) from None
        with _held_lock:
            _held[self.path] = self.what
        return self

    def __exit__(self, *exc) -> None:
        with _held_lock:
            _held.pop(self.path, None)
        self.lock.release()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise StoreError(f"{name!r} is not a usable model name: use letters, digits, '.', '_' and '-' "
                         "(at most 80, starting with a letter or digit)")
    return name


def partial_dir(root: Path, name: str) -> Path:
    """Where a download of `name` keeps what it fetched until the model is installed."""
    return root / PARTIAL / check_name(name)


def read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # unreadable, not JSON, or nested beyond reason
        return None
    return data if isinstance(data, dict) else None


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def stamp(path: Path) -> dict:
    """What tells a file changed since it was last found intact, without reading it."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def free_bytes(path: Path) -> int:
    """Free space on the disk holding `path` (its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return shutil.disk_usage(path).free


def disk_error(e: OSError, path: Path) -> DownloadError:
    """A failure to write `path` in the models folder, in words: a full disk, or a folder that cannot be written."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        try:
            free = f" ({human_bytes(free_bytes(path.parent))} free)"
        except OSError:
            free = ""
        return DiskFull(f"the disk is full while writing {path.name} in {path.parent}{free}. Free some space or choose "
                        "another models folder, then retry: the download resumes where it stopped.", remedy="folder")
    return DownloadError(f"cannot write {path}: {e.strerror or e}. Choose another models folder or check its "
                         "permissions.", remedy="folder")
