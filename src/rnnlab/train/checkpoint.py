"""Checkpoints: written atomically, read without executing code.

A checkpoint is a ``torch.save`` of a dict holding only tensors and plain Python values (the model's,
optimizer's and scheduler's state dicts, the RNG states, counters), so ``torch.load(..., weights_only=True)``
reads it: loading a checkpoint never runs code. It is written to a temporary file in the same directory,
flushed to disk and renamed over the old one, so a crash leaves either the old or the new checkpoint, never
half of one. Anything that is not a readable rnnlab checkpoint raises :class:`InputError`.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.errors import InputError

__all__ = ["FORMAT", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]

FORMAT = "rnnlab-checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors and plain values) to ``path`` atomically, tagged as an rnnlab checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, safely (``weights_only=True``).

    Raises:
        InputError: the file is missing, truncated, corrupt, would need code to load, or is not an rnnlab
            checkpoint of this version.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (unpickling errors come in many types)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read checkpoint {path}: corrupt or not a safe checkpoint ({reason[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not an rnnlab checkpoint")
    if payload.get("version") != VERSION:
        raise InputError(f"{path}: unsupported checkpoint version {payload.get('version')!r}, expected {VERSION}")
    return payload


def capture_rng() -> dict[str, Any]:
    """The states of torch's, numpy's and Python's global random generators, as tensors and plain values."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": np_kind,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Restore the generators captured by :func:`capture_rng`."""
    try:
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"checkpoint holds no valid random-generator state ({exc})") from None
