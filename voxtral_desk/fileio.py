"""Files on disk: written so that a crash, a full disk or a read-only folder never leaves half a file under the
final name (the data goes to a temporary file beside the target, is flushed to disk, and replaces the target in
one rename), and hashed in bounded memory. Used for settings, model records, exports and transcripts alike."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

_UMASK = os.umask(0o022)  # read once at import (setting it is process-wide), and put back at once
os.umask(_UMASK)
HASH_BLOCK = 1 << 22  # 4 MiB read at a time while hashing


class Cancellable(Protocol):
    def check(self) -> None:
        """Raises when the work is to stop (models.jobs.Control)."""


def write_atomic(path: Path | str, data: str | bytes, encoding: str = "utf-8") -> Path:
    """Write `data` to `path` through a temporary file in the same folder; the old file (if any) stays
    untouched until the new one is complete. Raises OSError (the temporary file is removed)."""
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():  # keep the permissions the user gave the file
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_json_atomic(path: Path | str, data) -> Path:
    return write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def sha256_file(path: Path | str, upto: int | None = None, control: Cancellable | None = None,
                on_bytes: Callable[[int], None] | None = None, digest=None) -> str:
    """The SHA-256 (hex) of the file's first `upto` bytes (None: all of it), read a block at a time.
    control.check() runs after each block, so a cancel stops a long hash; on_bytes(n) gets each block's size.
    `digest`: a hashlib object to continue instead of a new one (it holds the hash afterwards)."""
    h = digest if digest is not None else hashlib.sha256()
    left = upto
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(HASH_BLOCK if left is None else min(HASH_BLOCK, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
            if control:
                control.check()
            if on_bytes:
                on_bytes(len(block))
    return h.hexdigest()
