"""Run directories: one run, one directory.

::

    <run>/
      config.json        everything needed to rerun it (RunConfig.to_dict())
      metrics.jsonl      one JSON object per logged training step or evaluation
      results.json       the final results: task, cell, variant, params, test metrics, baseline, timings
      checkpoints/
        last.pt          the latest state (resume from here)
        best.pt          the state with the best validation metric (evaluated on test at the end)

Nothing here ever deletes or truncates what a previous session wrote, except that resuming drops the log
lines written after the checkpoint it resumes from (the resumed run writes them again, identically).
JSON files are written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rnnlab.errors import InputError

__all__ = ["RunDir", "default_run_path", "write_json_atomic"]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_run_path(task: str, cell: str, variant: str | None, seed: int, root: str = "runs") -> Path:
    """``runs/<task>-<cell>[-<variant>]-s<seed>-<YYYYmmdd-HHMMSS>``, suffixed to be new."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = "-".join([task, cell] + ([variant] if variant else []) + [f"s{seed}", stamp])
    path, k = Path(root) / base, 1
    while path.exists():
        k += 1
        path = Path(root) / f"{base}-{k}"
    return path


class RunDir:
    """The files of one run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.metrics_path = self.path / "metrics.jsonl"
        self.results_path = self.path / "results.json"
        self.checkpoints = self.path / "checkpoints"
        self.last_checkpoint = self.checkpoints / "last.pt"
        self.best_checkpoint = self.checkpoints / "best.pt"

    # ---------------------------------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | os.PathLike) -> RunDir:
        """A new run directory at ``path``: created, or an existing empty directory.

        Raises:
            InputError: ``path`` already holds files (a run, or anything else), is a file, or cannot be
                created or written.
        """
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise InputError(f"--out {run.path} is a file, not a directory")
        if run.path.is_dir() and any(run.path.iterdir()):
            hint = "; pass --resume to continue it" if run.config_path.exists() else ""
            raise InputError(f"--out {run.path} is not empty{hint}; choose another directory")
        try:
            run.checkpoints.mkdir(parents=True, exist_ok=True)
            probe = run.path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise InputError(f"cannot write the run directory {run.path}: {exc.strerror or exc}") from None
        return run

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run directory (one with a ``config.json``).

        Raises:
            InputError: ``path`` is not a run directory.
        """
        run = cls(path)
        if not run.config_path.is_file():
            raise InputError(f"{run.path} is not a run directory (no config.json)")
        return run

    # ------------------------------------------------------------------------------------------ files
    def write_config(self, config: dict[str, Any]) -> None:
        write_json_atomic(self.config_path, config)

    def read_config(self) -> dict[str, Any]:
        return self._read_json(self.config_path)

    def write_results(self, results: dict[str, Any]) -> None:
        write_json_atomic(self.results_path, results)

    def read_results(self) -> dict[str, Any]:
        return self._read_json(self.results_path)

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON object to ``metrics.jsonl`` (flushed at once)."""
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl`` (a torn last line, from a killed run, is skipped)."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def rewind_metrics(self, step: int) -> None:
        """Keep only the records up to ``step`` (resuming from a checkpoint at ``step`` rewrites the rest)."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=self.path)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.metrics_path)

    def _read_json(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{self.path} has no {path.name}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path} does not hold a JSON object")
        return data
