"""The results store of a study: one SQLite file (``study.sqlite``) in the study's directory.

One row per finished run, written in its own transaction the moment the run ends, so a study that is
killed loses no finished result; rerun with the same arguments, it skips them. The store also keeps the
study's *signature* (task, task options, budget, parameter matching): results are only comparable under
one signature, so opening a directory that holds a different study is an error.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from rnnlab.errors import InputError

FILENAME = "study.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    cell TEXT NOT NULL,
    variant TEXT NOT NULL,
    seed INTEGER NOT NULL,
    results TEXT NOT NULL,
    finished_at REAL NOT NULL
);
"""


class ResultsStore:
    """Finished runs of one study, keyed by run id.

    Args:
        directory: the study's output directory (created if missing).
        signature: what makes results comparable; stored on first use and checked on every later one.

    Raises:
        InputError: the directory holds a study with a different signature, or a file that is not a store.
    """

    def __init__(self, directory: str | Path, signature: dict[str, Any]) -> None:
        self.path = Path(directory) / FILENAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path} is not an rnnlab results store ({exc})") from None
        except OSError as exc:
            raise InputError(f"cannot write the study directory {self.path.parent}: {exc.strerror or exc}") from None
        wanted = json.dumps(signature, sort_keys=True)
        row = self._db.execute("SELECT value FROM study WHERE key = 'signature'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO study VALUES ('signature', ?)", (wanted,))
        elif row[0] != wanted:
            stored = json.loads(row[0])
            diff = ", ".join(f"{k}: {stored.get(k)!r} there, {signature.get(k)!r} here"
                             for k in sorted(set(stored) | set(signature)) if stored.get(k) != signature.get(k))
            self.close()
            raise InputError(f"{self.path.parent} holds a different study ({diff}); choose another --out")

    @classmethod
    def read(cls, directory: str | Path) -> list[dict[str, Any]]:
        """The finished runs of the study in ``directory`` without checking a signature (for listing)."""
        path = Path(directory) / FILENAME
        if not path.is_file():
            raise InputError(f"{directory} holds no study (no {FILENAME})")
        db = sqlite3.connect(path)
        try:
            rows = db.execute("SELECT run_id, results FROM runs ORDER BY run_id").fetchall()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{path} is not an rnnlab results store ({exc})") from None
        finally:
            db.close()
        return [{"run_id": run_id, **json.loads(results)} for run_id, results in rows]

    def finished(self) -> set[str]:
        """Ids of the runs already recorded."""
        return {r[0] for r in self._db.execute("SELECT run_id FROM runs")}

    def record(self, run_id: str, results: dict[str, Any]) -> None:
        """Store one finished run (atomically; a second record of the same id replaces the first)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                             (run_id, results["cell"], results["variant"], int(results["seed"]),
                              json.dumps(results), time.time()))

    def results(self) -> dict[str, dict[str, Any]]:
        """``{run_id: results}`` of every finished run."""
        return {run_id: json.loads(r) for run_id, r in self._db.execute("SELECT run_id, results FROM runs")}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
