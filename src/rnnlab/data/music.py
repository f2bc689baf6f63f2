"""Polyphonic music as piano rolls: the JSON format of Boulanger-Lewandowski et al. (2012), and Bach chorales.

A piano roll is a ``(T, 88) float32`` array of 0/1: row ``t`` is one time step, column ``k`` the piano key of MIDI
note ``21 + k`` (A0..C8), 1 where that note sounds.

File format (JSB Chorales, Nottingham, MuseData, Piano-midi.de): ``{"train": [...], "valid": [...],
"test": [...]}``, each split a list of sequences, a sequence a non-empty list of time steps, a time step a list
of sounding MIDI note numbers in 21..108 (possibly empty: a rest).

Built-in default: the Bach chorales of ``music21``'s local corpus (the 371 of the Riemenschneider edition,
350 distinct files, parsed without network), all parts merged, sampled on a grid of ``steps_per_quarter``
steps per quarter note (a note sounds at step ``t`` if it has begun by time ``t`` and not yet ended, as in the
JSB data), split seeded 60/20/20 by chorale. Parsing takes a minute or two, so it is done once and cached
(:func:`rnnlab.data.cache.cache_dir`) in the same JSON layout of note lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.cache import atomic_write_text, cache_dir
from rnnlab.data.files import read_json
from rnnlab.data.split import split_indices, take
from rnnlab.errors import InputError

LOWEST_NOTE = 21  # A0
HIGHEST_NOTE = 108  # C8
N_KEYS = HIGHEST_NOTE - LOWEST_NOTE + 1  # 88
SPLITS = ("train", "valid", "test")
_CACHE_FORMAT = "rnnlab.bach_chorales/1"

Progress = Callable[[int, int], None]  # progress(done, total)


@dataclass(frozen=True)
class PolyphonicData:
    """Piano rolls per split: lists of ``(T_i, 88) float32`` arrays. ``steps_per_quarter`` is None when unknown
    (a user file; the standard files use quarter-note steps)."""

    name: str
    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    steps_per_quarter: int | None = None


def sequence_to_roll(sequence: Sequence[Sequence[int]], *, where: str = "sequence") -> np.ndarray:
    """Note lists ``[[60, 64, 67], [], ...]`` (T steps) -> piano roll ``(T, 88) float32``.

    Raises InputError (naming ``where``, the step and the value) for an empty sequence, a step that is not a
    list, or a note that is not an integer in 21..108.
    """
    if not isinstance(sequence, list):
        raise InputError(f"{where}: expected a list of time steps, found {_kind(sequence)}")
    if not sequence:
        raise InputError(f"{where} is empty; expected at least one time step")
    roll = np.zeros((len(sequence), N_KEYS), dtype=np.float32)  # (T, 88)
    for t, step in enumerate(sequence):
        if not isinstance(step, list):
            raise InputError(f"{where} step {t}: expected a list of MIDI note numbers, found {_kind(step)}")
        for note in step:
            if isinstance(note, bool) or not isinstance(note, (int, float)) or note != int(note):
                raise InputError(f"{where} step {t}: expected integer MIDI note numbers, found {note!r}")
            if not LOWEST_NOTE <= note <= HIGHEST_NOTE:
                raise InputError(
                    f"{where} step {t} has note {note}; notes must be MIDI numbers {LOWEST_NOTE}..{HIGHEST_NOTE}"
                )
            roll[t, int(note) - LOWEST_NOTE] = 1.0
    return roll


def roll_to_sequence(roll: np.ndarray, threshold: float = 0.5) -> list[list[int]]:
    """Piano roll ``(T, 88)`` -> note lists (MIDI numbers of the keys above ``threshold``, ascending)."""
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != N_KEYS:
        raise InputError(f"expected a piano roll of shape (T, {N_KEYS}), got {roll.shape}")
    return [(np.flatnonzero(step > threshold) + LOWEST_NOTE).tolist() for step in roll]


def parse_polyphonic(data: Any, source: str) -> dict[str, list[np.ndarray]]:
    """A parsed JSON value in the Boulanger-Lewandowski format -> ``{split: [(T_i, 88) rolls]}``.

    Raises InputError describing what was found when ``data`` is not in the format.
    """
    expected = 'a JSON object {"train": [...], "valid": [...], "test": [...]} of note-list sequences'
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected {expected}; found {_kind(data)}")
    missing = [s for s in SPLITS if s not in data]
    if missing:
        found = ", ".join(map(str, data)) or "none"
        raise InputError(f"{source}: expected {expected}; missing {', '.join(missing)} (found keys: {found})")
    rolls = {}
    for split in SPLITS:
        sequences = data[split]
        if not isinstance(sequences, list):
            raise InputError(f'{source}: "{split}" must be a list of sequences; found {_kind(sequences)}')
        if not sequences:
            raise InputError(f'{source}: "{split}" has no sequences')
        rolls[split] = [sequence_to_roll(seq, where=f"{source}: {split}[{i}]") for i, seq in enumerate(sequences)]
    return rolls


def read_polyphonic(path: str | Path) -> PolyphonicData:
    """Read a JSON file in the Boulanger-Lewandowski format (see the module docstring); keeps its own split."""
    rolls = parse_polyphonic(read_json(path), Path(path).name)
    return PolyphonicData(Path(path).stem, rolls["train"], rolls["valid"], rolls["test"])


def load_polyphonic(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.2,
    steps_per_quarter: int = 1,
    progress: Progress | None = None,
    max_pieces: int | None = None,
) -> PolyphonicData:
    """The user's JSON file (:func:`read_polyphonic`), or the built-in Bach chorales when ``path`` is None
    (:func:`load_bach_chorales`; the other arguments apply to them only)."""
    if path is not None:
        return read_polyphonic(path)
    return load_bach_chorales(
        seed=seed,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        steps_per_quarter=steps_per_quarter,
        progress=progress,
        max_pieces=max_pieces,
    )


def load_bach_chorales(
    *,
    seed: int = 0,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.2,
    steps_per_quarter: int = 1,
    progress: Progress | None = None,
    max_pieces: int | None = None,
    cache: str | Path | None = None,
) -> PolyphonicData:
    """Bach chorales from music21's corpus as piano rolls, split seeded by chorale.

    The first call converts them (``progress(done, total)`` after each chorale) and writes the note lists to
    ``cache`` (default: ``bach_chorales_spq{k}[_n{max}].json`` in :func:`~rnnlab.data.cache.cache_dir`)
    atomically; later calls read that file. ``max_pieces`` keeps only the first chorales (in file-name order).
    """
    if steps_per_quarter not in (1, 2, 4):
        raise InputError(f"steps_per_quarter must be 1, 2 or 4 (quarter, eighth, sixteenth), got {steps_per_quarter}")
    if max_pieces is not None and max_pieces < 1:
        raise InputError(f"max_pieces must be at least 1, got {max_pieces}")
    suffix = f"_n{max_pieces}" if max_pieces else ""
    path = Path(cache) if cache else cache_dir() / f"bach_chorales_spq{steps_per_quarter}{suffix}.json"
    sequences = _read_chorale_cache(path, steps_per_quarter)
    if sequences is None:
        paths = bach_chorale_paths()[:max_pieces]
        sequences = []
        for done, score_path in enumerate(paths, start=1):
            sequences.append(score_to_sequence(score_path, steps_per_quarter))
            if progress is not None:
                progress(done, len(paths))
        state = {
            "format": _CACHE_FORMAT,
            "steps_per_quarter": steps_per_quarter,
            "names": [p.stem for p in paths],
            "sequences": sequences,
        }
        atomic_write_text(path, json.dumps(state, separators=(",", ":")))
    rolls = [sequence_to_roll(seq, where=f"{path.name}: chorale {i}") for i, seq in enumerate(sequences)]
    parts = split_indices(len(rolls), valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed)
    return PolyphonicData(
        "bach_chorales",
        take(rolls, parts.train),
        take(rolls, parts.valid),
        take(rolls, parts.test),
        steps_per_quarter,
    )


def _read_chorale_cache(path: Path, steps_per_quarter: int) -> list | None:
    """The cached note lists, or None when there is no usable cache (missing, corrupt or another format)."""
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if (
        not isinstance(state, dict)
        or state.get("format") != _CACHE_FORMAT
        or state.get("steps_per_quarter") != steps_per_quarter
        or not isinstance(state.get("sequences"), list)
    ):
        return None
    return state["sequences"]


def bach_chorale_paths() -> list[Path]:
    """Files of the Bach chorales in music21's local corpus (Riemenschneider numbering; duplicates removed),
    sorted by name: 349 files. Nothing is downloaded."""
    return list(_bach_chorale_paths())


@lru_cache(maxsize=1)
def _bach_chorale_paths() -> tuple[Path, ...]:
    from music21 import corpus
    from music21.corpus import chorales

    names = sorted(set(chorales.Iterator(returnType="filename")))
    paths = [corpus.getWork(name) for name in names]
    return tuple(sorted({Path(p if not isinstance(p, list) else p[0]) for p in paths}, key=lambda p: p.name))


def score_to_sequence(path: str | Path, steps_per_quarter: int = 1) -> list[list[int]]:
    """A score file (MusicXML, MIDI, ... anything music21 parses) -> note lists, ``steps_per_quarter`` steps per
    quarter note: step ``t`` holds every note ``n`` with ``onset(n) <= t / k < offset(n)``, all parts merged.
    Notes outside 21..108 are dropped (they cannot be on an 88-key roll)."""
    from music21 import converter

    score = converter.parse(str(path), forceSource=True)  # the 349 chorales parse without warnings
    n_steps = max(1, math.ceil(float(score.highestTime) * steps_per_quarter - 1e-9))
    steps: list[set[int]] = [set() for _ in range(n_steps)]
    for element in score.flatten().notes:
        onset = float(element.offset) * steps_per_quarter
        end = onset + float(element.quarterLength) * steps_per_quarter
        first, stop = math.ceil(onset - 1e-9), min(math.ceil(end - 1e-9), n_steps)
        for pitch in element.pitches:
            if LOWEST_NOTE <= pitch.midi <= HIGHEST_NOTE:
                for t in range(first, stop):
                    steps[t].add(pitch.midi)
    return [sorted(s) for s in steps]


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return f"{type(value).__name__} {value!r:.40}"
