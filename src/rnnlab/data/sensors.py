"""Multichannel sensor sequences with one label each: UEA/UCR archive sets shipped in a package, or the user's table.

Built-in sets are read from the ``.ts`` files inside the installed ``sktime`` wheel
(``sktime/datasets/data/<Name>/<Name>_TRAIN.ts`` and ``_TEST.ts``; sktime itself is never imported) by
:func:`read_ts`, a small reader of the archive's ``.ts`` format (``@`` header lines, then one case per line: the
channels separated by ``:``, values by ``,``, ``?`` for a missing value, the class label last). The archive's
own train/test split is kept (so accuracies compare with the published ones); a stratified, seeded fifth of the
training cases becomes the validation split.

The user's table (:func:`read_sequence_table`) has one row per time step: a sequence id column, one label column
(constant within a sequence) and channel columns (every other numeric column unless named), optionally a time
column that orders the steps of each sequence. The split is stratified by label and seeded over whole sequences
(70/15/15), so no sequence is cut between splits.

Every channel is standardised with the mean and deviation of the *training* steps only
(:class:`~rnnlab.data.scaling.Standardizer`); missing values of the archive files (``?``) are filled by linear
interpolation along the time of their own sequence and channel.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.data.files import is_missing, read_table, time_in_seconds, to_numeric
from rnnlab.data.packages import package_data_path
from rnnlab.data.scaling import Standardizer
from rnnlab.data.split import Labelled, split_indices, take
from rnnlab.errors import InputError, InputWarning

__all__ = [
    "UEA_SETS",
    "PUBLISHED_DTW",
    "SensorData",
    "load_sensor_set",
    "read_sequence_table",
    "read_ts",
    "scale_and_split",
]

#: The archive sets shipped in sktime's wheel that the activity task offers: name -> what they hold.
UEA_SETS = {
    "BasicMotions": "smartwatch accelerometer + gyroscope, 6 channels x 100 steps; walk, rest, run, badminton",
    "JapaneseVowels": "12 LPC cepstrum channels, 7-29 steps; 9 speakers",
    "GunPoint": "hand centroid x-coordinate, 1 channel x 150 steps; gun drawn or pointed",
    "ItalyPowerDemand": "daily electricity demand, 1 channel x 24 hours; winter or summer",
    "ArrowHead": "outline of an arrowhead, 1 channel x 251 steps; 3 types",
}

#: Published test accuracy of 1-nearest-neighbour DTW on each set's own split, and where it comes from.
#: Multivariate sets: DTW_D (dependent warping, full window) of Bagnall et al. 2018, "The UEA multivariate time
#: series classification archive", Table 3 (normalised data). Univariate sets: DTW with a full window, one minus
#: the error rate of the UCR archive's summary table (Dau et al. 2019, "The UCR time series archive").
PUBLISHED_DTW = {
    "BasicMotions": (0.975, "DTW_D 1-NN, Bagnall et al. 2018"),
    "JapaneseVowels": (0.949, "DTW_D 1-NN, Bagnall et al. 2018"),
    "GunPoint": (0.907, "DTW 1-NN (full window), UCR archive 2018"),
    "ItalyPowerDemand": (0.950, "DTW 1-NN (full window), UCR archive 2018"),
    "ArrowHead": (0.703, "DTW 1-NN (full window), UCR archive 2018"),
}

VALID_FRACTION_OF_TRAIN = 0.2


@dataclass(frozen=True)
class SensorData:
    """Labelled sequences per split: ``inputs`` a list of ``(T_i, C) float32`` standardised arrays, ``labels (N,)
    int64`` class ids into ``classes``; ``channels`` the channel names; ``scaler`` fitted on the training steps."""

    name: str
    train: Labelled[list[np.ndarray]]
    valid: Labelled[list[np.ndarray]]
    test: Labelled[list[np.ndarray]]
    classes: list[str]
    channels: list[str]
    scaler: Standardizer


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """The cases of a ``.ts`` file: ``([(T_i, C) float64 arrays, NaN where missing], [label strings])``.

    Raises InputError on a file without ``@data``, a case whose channels disagree in number or a value that is
    not a number (naming the line).
    """
    path = Path(path)
    sequences: list[np.ndarray] = []
    labels: list[str] = []
    in_data, channels = False, None
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            in_data = line.lower() == "@data"
            continue
        *dims, label = line.split(":")
        if channels is None:
            channels = len(dims)
        if not dims or len(dims) != channels:
            raise InputError(f"{path.name} line {line_number}: expected {channels} channels, got {len(dims)}")
        try:
            columns = [np.array([math.nan if v == "?" else float(v) for v in d.split(",")]) for d in dims]
        except ValueError:
            raise InputError(f"{path.name} line {line_number}: a value is not a number") from None
        length = max(len(c) for c in columns)
        padded = [np.concatenate([c, np.full(length - len(c), math.nan)]) for c in columns]  # ragged channels
        sequences.append(np.stack(padded, axis=1))  # (T, C)
        labels.append(label.strip())
    if not in_data:
        raise InputError(f"{path.name} has no @data section; expected a .ts file of the UEA/UCR archive")
    return sequences, labels


def _fill_missing(x: np.ndarray) -> np.ndarray:
    """``(T, C)`` with NaN gaps -> linear interpolation along time per channel (ends: the nearest value)."""
    x = np.array(x, dtype=np.float64)
    steps = np.arange(len(x))
    for c in range(x.shape[1]):
        gaps = np.isnan(x[:, c])
        if gaps.all():
            x[:, c] = 0.0
        elif gaps.any():
            x[gaps, c] = np.interp(steps[gaps], steps[~gaps], x[~gaps, c])
    return x


def load_sensor_set(name: str, *, seed: int = 0) -> SensorData:
    """The archive set ``name`` (one of :data:`UEA_SETS`) from sktime's wheel, split and scaled (see the module
    docstring: the archive's test split, a stratified fifth of its train split as validation)."""
    if name not in UEA_SETS:
        raise InputError(f"built-in sensor set must be one of {', '.join(UEA_SETS)}; got {name!r}")
    parts = {}
    for split in ("TRAIN", "TEST"):
        path = package_data_path("sktime", f"datasets/data/{name}/{name}_{split}.ts")
        sequences, labels = read_ts(path)
        parts[split] = ([_fill_missing(x) for x in sequences], labels)
    train_x, train_y = parts["TRAIN"]
    test_x, test_y = parts["TEST"]
    classes = sorted(set(train_y), key=_label_key)
    unknown = sorted(set(test_y) - set(classes))
    if unknown:
        raise InputError(f"{name}: test labels {unknown} never occur in training")
    index = {c: k for k, c in enumerate(classes)}
    y_train = np.array([index[c] for c in train_y], dtype=np.int64)
    y_test = np.array([index[c] for c in test_y], dtype=np.int64)
    rows = split_indices(len(y_train), valid_fraction=VALID_FRACTION_OF_TRAIN, test_fraction=0.0, seed=seed,
                         stratify=y_train)
    channels = [f"dim_{c}" for c in range(train_x[0].shape[1])]
    return scale_and_split(name, {"train": (take(train_x, rows.train), y_train[rows.train]),
                                  "valid": (take(train_x, rows.valid), y_train[rows.valid]),
                                  "test": (test_x, y_test)}, classes, channels)


def _label_key(label: str) -> tuple[int, float | str]:
    """Numeric labels in numeric order ("2" before "10"), then text labels."""
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def scale_and_split(
    name: str,
    splits: dict[str, tuple[list[np.ndarray], np.ndarray]],
    classes: list[str],
    channels: list[str],
) -> SensorData:
    """Fit a per-channel standardiser on the training steps only and apply it to every split."""
    scaler = Standardizer.fit(splits["train"][0])
    scaled = {s: Labelled([scaler.transform(x).astype(np.float32) for x in xs], np.asarray(ys, np.int64))
              for s, (xs, ys) in splits.items()}
    return SensorData(name, scaled["train"], scaled["valid"], scaled["test"], classes, channels, scaler)


def read_sequence_table(
    path: str | Path,
    *,
    id_column: str,
    label_column: str,
    channel_columns: Sequence[str] = (),
    time_column: str = "",
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> SensorData:
    """The user's long table (one row per time step) as labelled sequences, split over whole sequences and scaled.

    Channels are ``channel_columns``, or every column other than the id, label and time columns (each must then
    be numeric). With ``time_column`` (numbers or dates) the steps of each sequence are sorted by it; a sequence
    whose steps were out of order is sorted with a one-line warning.

    Raises InputError for: a missing label (naming the data row), a label that changes within a sequence, a
    sequence of one step, a single class, a non-numeric or missing channel value.
    """
    source = Path(path).name
    required = [id_column, label_column] + ([time_column] if time_column else [])
    frame = read_table(path, columns=required)
    if not channel_columns:
        channel_columns = [c for c in frame.columns if c not in required]
        if not channel_columns:
            raise InputError(f"{source} has no channel columns besides {', '.join(required)}")
    for column in channel_columns:
        frame[column] = to_numeric(frame[column], column, source)
        gaps = np.flatnonzero(frame[column].isna().to_numpy())
        if len(gaps):
            raise InputError(f"column '{column}' of {source} has a missing value at data row {gaps[0] + 1}")
    labels = frame[label_column].tolist()
    for row, value in enumerate(labels):
        if is_missing(value):
            raise InputError(f"label column '{label_column}' of {source} is empty at data row {row + 1}")
    frame[label_column] = [str(v).strip() for v in labels]
    frame["__row"] = np.arange(len(frame))
    if time_column:
        frame["__time"] = time_in_seconds(frame[time_column], time_column, source)
    sequences, sequence_labels, ids, unsorted = [], [], [], 0
    for key, group in frame.groupby(id_column, sort=False):
        if time_column:
            order = np.argsort(group["__time"].to_numpy(), kind="stable")
            unsorted += int(not np.array_equal(order, np.arange(len(order))))
            group = group.iloc[order]
        if group[label_column].nunique() > 1:
            first_row = int(group["__row"].iloc[0]) + 1
            raise InputError(f"sequence '{key}' of {source} (from data row {first_row}) has more than one label "
                             f"in column '{label_column}': {sorted(group[label_column].unique())[:3]}")
        if len(group) < 2:
            raise InputError(f"sequence '{key}' of {source} has 1 time step; a sequence needs at least 2")
        sequences.append(group[list(channel_columns)].to_numpy(np.float64))  # (T_i, C)
        sequence_labels.append(group[label_column].iloc[0])
        ids.append(key)
    if unsorted:
        warnings.warn(f"{unsorted} sequence(s) of {source} had steps out of order in '{time_column}'; "
                      f"sorted them by time", InputWarning, stacklevel=2)
    classes = sorted(set(sequence_labels), key=_label_key)
    if len(classes) < 2:
        raise InputError(f"label column '{label_column}' of {source} has one class only ({classes[0]!r}); "
                         f"classification needs at least 2")
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[c] for c in sequence_labels], dtype=np.int64)
    rows = split_indices(len(y), valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed, stratify=y)
    return scale_and_split(Path(path).stem, {s: (take(sequences, r), y[r]) for s, r in vars(rows).items()},
                           classes, list(channel_columns))
