"""Splitting a data set into train / valid / test: seeded (optionally stratified) or chronological.

Every loader that makes its own split calls one of the two functions here, so a seed means the same thing
everywhere: the same ``(n, fractions, seed, labels)`` always gives the same indices, on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from rnnlab.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class SplitIndices:
    """Row indices of each split, ``int64`` arrays; disjoint, together ``0..n-1``."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Labelled(Generic[T]):
    """One split of a labelled data set: ``inputs[i]`` has class index ``labels[i]``.

    ``inputs`` is a list (texts, variable-length arrays) or an array whose first axis is the example;
    ``labels`` is ``(N,) int64``.
    """

    inputs: T
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def check_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Raise InputError unless both fractions are in [0, 1) and leave some training data."""
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise InputError(f"{name} must be in [0, 1); got {value}")
    if valid_fraction + test_fraction >= 1.0:
        raise InputError(
            f"valid_fraction + test_fraction must be below 1 to leave training data; "
            f"got {valid_fraction} + {test_fraction}"
        )


def split_indices(
    n: int,
    *,
    valid_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: Sequence[Any] | np.ndarray | None = None,
) -> SplitIndices:
    """A seeded random split of ``n`` rows; with ``stratify`` (one label per row), each class is split alike.

    Each split gets ``round(fraction * n_c)`` rows of every class ``c`` (of all rows without ``stratify``), so
    class proportions are kept. A nonzero fraction that rounds to no rows raises InputError. Indices within
    each split are sorted, so the file order is kept.
    """
    check_fractions(valid_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    if stratify is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(stratify)
        if len(labels) != n:
            raise InputError(f"expected {n} labels to stratify on, got {len(labels)}")
        _, inverse = np.unique(labels, return_inverse=True)
        groups = [np.flatnonzero(inverse == k) for k in range(inverse.max() + 1 if n else 0)]
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    for members in groups:
        shuffled = members[rng.permutation(len(members))]
        n_valid = int(round(valid_fraction * len(members)))
        n_test = int(round(test_fraction * len(members)))
        parts["valid"].append(shuffled[:n_valid])
        parts["test"].append(shuffled[n_valid : n_valid + n_test])
        parts["train"].append(shuffled[n_valid + n_test :])
    result = {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}
    for name, fraction in (("valid", valid_fraction), ("test", test_fraction)):
        if fraction > 0 and len(result[name]) == 0:
            raise InputError(f"{name}_fraction {fraction} of {n} rows gives an empty {name} split; need more rows")
    if len(result["train"]) == 0:
        raise InputError(f"no training rows left from {n} rows after the valid and test splits")
    return SplitIndices(**result)


def chronological_split(n: int, *, valid_fraction: float, test_fraction: float) -> SplitIndices:
    """First ``1 - valid - test`` of the ``n`` rows train, then valid, then test (contiguous, in order).

    Sizes are ``round(fraction * n)`` for valid and test; train gets the rest.
    """
    check_fractions(valid_fraction, test_fraction)
    n_valid = int(round(valid_fraction * n))
    n_test = int(round(test_fraction * n))
    n_train = n - n_valid - n_test
    if n_train <= 0:
        raise InputError(f"no training rows left from {n} rows after the valid and test splits")
    for name, fraction, size in (("valid", valid_fraction, n_valid), ("test", test_fraction, n_test)):
        if fraction > 0 and size == 0:
            raise InputError(f"{name}_fraction {fraction} of {n} rows gives an empty {name} split; need more rows")
    rows = np.arange(n, dtype=np.int64)
    return SplitIndices(rows[:n_train], rows[n_train : n_train + n_valid], rows[n_train + n_valid :])


def take(items: T, indices: np.ndarray) -> T:
    """``items`` at ``indices``: fancy indexing for arrays, a new list for lists and tuples."""
    if isinstance(items, np.ndarray):
        return items[indices]
    return [items[i] for i in indices.tolist()]  # type: ignore[index, return-value]
