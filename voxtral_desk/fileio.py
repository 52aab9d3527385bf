"""Writing files so that a crash, a full disk or a read-only folder never leaves half a file under the
final name: the data goes to a temporary file beside the target, is flushed to disk, and replaces the
target in one rename. Used for settings, model records, exports and transcripts alike."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0o022)  # read once at import (setting it is process-wide), and put back at once
os.umask(_UMASK)


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
