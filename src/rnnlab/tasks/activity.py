"""Activity recognition and other multichannel sequence classification: one label per (variable-length) sequence.

Data (:mod:`rnnlab.data.sensors`): a set of the UEA/UCR archive shipped in sktime's wheel (``--dataset
BasicMotions``: smartwatch accelerometer and gyroscope, 4 activities; ``JapaneseVowels``: 12 channels, 7-29
steps, 9 speakers; ``GunPoint``, ``ItalyPowerDemand``, ``ArrowHead``: univariate) with the archive's own test
split, or the user's long table (``--data FILE --id-column ID --label-column LABEL [--channel-columns a,b,c]
[--time-column T]``). Every channel is standardised with statistics of the training steps only.

Model: the recurrent layer reads each sequence at its own length (a ``PackedSequence``); a linear head on the last
real step gives the class logits; cross-entropy.

Baselines, scored on the test split and fitted on the training and validation sequences together (for the
archive sets, the archive's whole training split, as the published figures are): the majority class; a random
forest on per-channel summary statistics (mean, deviation, minimum, maximum, first, last, slope; the plain metric
names of the baseline are this one); 1-nearest-neighbour DTW (dependent warping over all channels, full window),
computed here; and, for the archive sets, the published DTW 1-NN accuracy (:data:`~rnnlab.data.sensors.PUBLISHED_DTW`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from rnnlab.data.sensors import PUBLISHED_DTW, UEA_SETS, SensorData, load_sensor_set, read_sequence_table
from rnnlab.errors import InputError
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.classification import class_prior_logits, classification_sums
from rnnlab.tasks.heads import LastStep
from rnnlab.tasks.variable import VariableLengthTask

__all__ = ["Activity", "dtw_distances", "summary_features"]


def summary_features(sequences: list[np.ndarray]) -> np.ndarray:
    """``(N, 7 C)`` per-channel summary statistics of ``(T_i, C)`` sequences: mean, standard deviation, minimum,
    maximum, first value, last value and least-squares slope over the step index."""
    rows = []
    for x in sequences:
        t = np.arange(len(x), dtype=np.float64)
        t = (t - t.mean()) / max(float((t - t.mean()).std()), 1e-12)  # (T,) centred, unit spread
        slope = (t[:, None] * (x - x.mean(axis=0))).mean(axis=0)  # (C,)
        rows.append(np.concatenate([x.mean(0), x.std(0), x.min(0), x.max(0), x[0], x[-1], slope]))
    return np.stack(rows)


def dtw_distances(queries: list[np.ndarray], references: list[np.ndarray]) -> np.ndarray:
    """``(Nq, Nr)`` dynamic-time-warping distances between ``(T_i, C)`` sequences: squared Euclidean cost of
    all channels at once per aligned pair of steps (dependent warping, DTW_D), full window.

    ``D[i, j] = c[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])``, run for all pairs at once on zero-padded
    arrays; the distance of a pair is ``D[len_q - 1, len_r - 1]``, which depends on its own steps only.
    """
    def pad(seqs):
        out = np.zeros((len(seqs), max(len(s) for s in seqs), seqs[0].shape[1]))
        for n, s in enumerate(seqs):
            out[n, : len(s)] = s
        return out, np.array([len(s) for s in seqs])

    a, la = pad(queries)  # (Nq, Ta, C)
    b, lb = pad(references)  # (Nr, Tb, C)
    b2 = (b**2).sum(-1)  # (Nr, Tb)
    out = np.empty((len(a), len(b)))
    previous = np.full((len(a), len(b), b.shape[1]), np.inf)  # D[i-1, :] for every pair
    for i in range(a.shape[1]):
        cost = (a[:, i] ** 2).sum(-1)[:, None, None] + b2[None] - 2 * np.einsum("nc,mtc->nmt", a[:, i], b)
        row = np.empty_like(previous)  # (Nq, Nr, Tb)
        for j in range(b.shape[1]):
            if i == 0 and j == 0:
                best = 0.0
            elif i == 0:
                best = row[:, :, j - 1]
            elif j == 0:
                best = previous[:, :, 0]
            else:
                best = np.minimum(np.minimum(previous[:, :, j - 1], previous[:, :, j]), row[:, :, j - 1])
            row[:, :, j] = np.maximum(cost[:, :, j], 0.0) + best
        ends = la - 1 == i  # (Nq,) queries whose last step is i
        out[ends] = row[ends][:, np.arange(len(b)), lb - 1]
        previous = row
    return out


@register_task
class Activity(VariableLengthTask):
    """Whole-sequence classification of multichannel sensor sequences (packed, variable lengths), accuracy."""

    name = "activity"
    summary = (
        "multichannel sequence classification (activity recognition): UEA/UCR sets shipped in sktime "
        "(BasicMotions, JapaneseVowels, ...) or --data FILE (one row per step); accuracy beside DTW 1-NN"
    )
    options = (
        TaskOption("dataset", str, "BasicMotions", "built-in UEA/UCR set (without --data)", choices=tuple(UEA_SETS)),
        TaskOption("data", str, "", "the user's table: one row per time step (CSV, TSV, JSON Lines)"),
        TaskOption("id_column", str, "", "with --data: the column naming each sequence"),
        TaskOption("label_column", str, "", "with --data: the class of each sequence"),
        TaskOption("channel_columns", str, "", "with --data: channel columns, comma-separated (default: the rest)"),
        TaskOption("time_column", str, "", "with --data: a column (numbers or dates) that orders the steps"),
    )
    monitor = "accuracy"
    higher_is_better = True
    defaults = {
        "hidden_size": 64,
        "epochs": 150,
        "batch_size": 16,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 10,
        "schedule": "cosine",
        "patience": 20,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        s = self.settings
        user_columns = ("id_column", "label_column", "channel_columns", "time_column")
        if s["data"]:
            if not s["id_column"] or not s["label_column"]:
                raise InputError("--data needs --id-column and --label-column: the rows of a sequence, its class")
        elif any(s[k] for k in user_columns):
            raise InputError("--id-column, --label-column, --channel-columns and --time-column apply to --data FILE; "
                             "got no --data")
        self._sensors: SensorData | None = None
        if s["data"]:
            _ = self.sensors  # read and check the user's file now, before any run directory exists
        self.input_size = len(self.sensors.channels) if s["data"] else _channels_of(s["dataset"])

    @property
    def sensors(self) -> SensorData:
        """The scaled sequences of every split (read on first use)."""
        if self._sensors is None:
            s = self.settings
            if s["data"]:
                channels = [c.strip() for c in s["channel_columns"].split(",") if c.strip()]
                self._sensors = read_sequence_table(s["data"], id_column=s["id_column"],
                                                    label_column=s["label_column"], channel_columns=channels,
                                                    time_column=s["time_column"])
            else:
                self._sensors = load_sensor_set(s["dataset"])
        return self._sensors

    @property
    def n_classes(self) -> int:
        return len(self.sensors.classes)

    def load_split(self, split: str) -> list[tuple[torch.Tensor, int]]:
        part = getattr(self.sensors, split)
        return [(torch.from_numpy(x), int(y)) for x, y in zip(part.inputs, part.labels, strict=True)]

    def example_lengths(self, split: str) -> torch.Tensor:
        return torch.tensor([len(x) for x, _ in self.data(split)], dtype=torch.long)

    def collate(self, split: str, indices: torch.Tensor) -> Batch:
        examples = [self.data(split)[i] for i in indices.tolist()]
        steps = [x for x, _ in examples]  # [(T_i, C)]
        labels = torch.tensor([y for _, y in examples], dtype=torch.long)  # (B,)
        lengths = torch.tensor([len(x) for x in steps], dtype=torch.long)
        return Batch(inputs=pack_sequence(steps, enforce_sorted=False), targets=labels, lengths=lengths)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return LastStep(features, self.n_classes, num_directions)  # (B, classes), at each sequence's last step

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        return classification_sums(outputs, batch.targets)

    # --------------------------------------------------------------------------------------------- baselines
    def _fit_and_test(self) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
        data = self.sensors
        fit_x = list(data.train.inputs) + list(data.valid.inputs)
        fit_y = np.concatenate([data.train.labels, data.valid.labels])
        return fit_x, fit_y, list(data.test.inputs), data.test.labels

    def baseline(self) -> dict[str, float]:
        """The summary-statistics forest's accuracy and cross-entropy under the plain names; every baseline's
        accuracy as ``<baseline>_accuracy``: ``majority``, ``features`` (the forest), ``dtw_1nn`` (computed here)
        and, for an archive set, ``published_dtw_1nn``."""
        from sklearn.ensemble import RandomForestClassifier

        fit_x, fit_y, test_x, test_y = self._fit_and_test()
        forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1)
        forest.fit(summary_features(fit_x), fit_y)
        probabilities = np.full((len(test_x), self.n_classes), 1e-3)  # (N, classes), floored: finite log
        probabilities[:, forest.classes_] += forest.predict_proba(summary_features(test_x))
        log_p = torch.from_numpy(np.log(probabilities / probabilities.sum(1, keepdims=True)))
        out = {k: total / count for k, (total, count) in classification_sums(log_p, torch.from_numpy(test_y)).items()}
        majority = int(class_prior_logits(fit_y, self.n_classes).argmax())
        out["majority_accuracy"] = float((test_y == majority).mean())
        out["features_accuracy"] = out["accuracy"]
        nearest = dtw_distances(test_x, fit_x).argmin(axis=1)  # (N,) index of the nearest fitted sequence
        out["dtw_1nn_accuracy"] = float((fit_y[nearest] == test_y).mean())
        if not self.settings["data"]:
            out["published_dtw_1nn_accuracy"] = PUBLISHED_DTW[self.settings["dataset"]][0]
        return out


def _channels_of(dataset: str) -> int:
    """Channels of a built-in set, from its first case (cheap: no split, no scaling)."""
    from rnnlab.data.packages import package_data_path
    from rnnlab.data.sensors import read_ts

    sequences, _ = read_ts(package_data_path("sktime", f"datasets/data/{dataset}/{dataset}_TRAIN.ts"))
    return sequences[0].shape[1]
