"""The on-disk cache of converted built-in data sets, and atomic file writes.

The cache lives in ``$RNNLAB_CACHE`` if set, else ``~/.cache/rnnlab``. Files are written to a temporary file
in the same directory and renamed into place, so a reader never sees half a file, even if the writer is killed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "RNNLAB_CACHE"


def cache_dir() -> Path:
    """The cache directory (created if missing): ``$RNNLAB_CACHE``, else ``~/.cache/rnnlab``."""
    root = os.environ.get(CACHE_ENV)
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "rnnlab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary sibling file, then ``os.replace``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary sibling file, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
